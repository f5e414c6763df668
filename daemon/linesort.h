/* linesort.h: lines of text put out in order of a time, then of the text
 * itself, without holding them in memory: they go to a private SQLite
 * database in a temporary file (deleted when it is closed), which sorts
 * them within a bounded cache. For --plan, whose lines number one or more
 * per participant. */
#ifndef KALLAD_LINESORT_H
#define KALLAD_LINESORT_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

struct linesort;

/* NULL (with why logged) if the temporary database cannot be made. */
struct linesort *linesort_new(void);
/* False (with why logged) if the line could not be kept. */
bool linesort_add(struct linesort *ls, time_t when, const char *text);
/* Writes every line, each followed by a newline, ordered by when and then
 * by text (bytewise, as strcmp). False on an error. */
bool linesort_write(struct linesort *ls, FILE *out);
/* The same order, each line (without a newline; text[len] is NUL) given
 * to fn instead. Call once, in place of linesort_write. */
typedef void (*linesort_fn)(const char *text, size_t len, void *arg);
bool linesort_each(struct linesort *ls, linesort_fn fn, void *arg);
void linesort_free(struct linesort *ls);

#endif
