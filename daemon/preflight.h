/* preflight.h: the one decision whether a programme can run. --check,
 * --once, --send-now and the daemon all ask it after loading, so that
 * --check says OK exactly when the run would start, and every mode
 * refuses the same configuration with the same exit status. */
#ifndef KALLAD_PREFLIGHT_H
#define KALLAD_PREFLIGHT_H

#include "programme.h"
#include "util.h"

/* Checks what loading alone does not and sending would trip on at its
 * first message: a template for every rule's message and for invite,
 * update and cancel in the programme language; the SMTP password, opened
 * with sending's checks; a state database kallad can open and a state
 * directory it can write. Returns 0, or EX_CONFIG with each problem in
 * errs. */
int preflight(const struct programme *pg, struct errlist *errs);

#endif
