/* material.h: the files attached to mail, read only from beneath the
 * programme's material directory ([programme] material, SPEC §6).
 *
 * The attachments table belongs to another system: a row naming
 * /etc/passwd, ../../etc/passwd, the SMTP password file or a symbolic link
 * out must never put that file in a participant's inbox. */
#ifndef KALLAD_MATERIAL_H
#define KALLAD_MATERIAL_H

#include "programme.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

/* Reads the regular file at the relative path rel beneath dir, resolved
 * with openat2(RESOLVE_BENEATH) (or, where the kernel lacks it, a walk
 * that refuses "..", absolute paths and every symbolic link). Returns
 * the bytes (caller frees; length in *len), or NULL with why it was
 * refused in *why (caller frees). */
char *material_read(const char *dir, const char *rel, size_t *len, char **why);

/* Why rel cannot be attached (caller frees), or NULL when it can. */
char *material_problem(const char *dir, const char *rel);

/* Checks every attachment row of every participant of pg who is not
 * cancelled (--check), opening each file as sending does: each that
 * cannot be attached is a line in errs naming the row. */
void material_check(const struct programme *pg, struct errlist *errs);

#endif
