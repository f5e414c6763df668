/* langcheck.h: for --check, whether each participant's language has a
 * template of every message they will get. A message missing in their
 * language goes out in the programme's language instead: worth a
 * warning before an English speaker gets Swedish mail. */
#ifndef KALLAD_LANGCHECK_H
#define KALLAD_LANGCHECK_H

#include "programme.h"

#include <stdbool.h>

/* True if a participant of status st gets message: invite, update and
 * cancel when registered, and each rule's message when st is in the
 * rule's audience. Nothing for the cancelled. */
bool langcheck_gets(const struct config *cfg, enum pstatus st, const char *message);

/* Prints one warning per language and message that some participants
 * will get without a template in their language (how many, and one
 * address), saying which language they get instead. Returns how many
 * such (language, message) pairs there are; -1 when the registration
 * database failed part-way. */
long langcheck_report(const struct programme *pg);

#endif
