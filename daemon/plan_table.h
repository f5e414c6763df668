/* plan_table.h: --plan for a person at a terminal. The same deliveries
 * in the same order as the tab-separated lines of SPEC §4, shown as
 * aligned columns in words: when, message, the participant's name, the
 * session or deadline by title and date, and the handle --session or
 * --deadline takes for it. Lines still go through the on-disk sorter
 * (linesort.h); only the column widths are kept in memory, each capped
 * (a longer name or title is cut, ending in "…"). */
#ifndef KALLAD_PLAN_TABLE_H
#define KALLAD_PLAN_TABLE_H

#include "calendar.h"
#include "linesort.h"
#include "plan.h"

#include <stdbool.h>
#include <stdio.h>

struct plan_table;

/* An empty table; explain adds a last column of why. */
struct plan_table *plan_table_new(bool explain);
/* The text to give linesort_add() for d, whose session or deadline is in
 * cal (numbered as handle.h does, once per calendar): line (the
 * tab-separated line of SPEC) first, so the order is the piped one, then
 * the columns. `when` is
 * "held", "skipped:REASON" or NULL for d->due; why is the --explain text
 * or NULL. Caller frees. */
char *plan_table_row(struct plan_table *t, const struct calendar *cal, const struct delivery *d,
		     const char *line, const char *when, const char *why);
/* Writes a header and every line of ls (made of plan_table_row() texts)
 * in columns; "nothing planned" when there is none. False on an error. */
bool plan_table_write(struct plan_table *t, struct linesort *ls, FILE *out);
void plan_table_free(struct plan_table *t);

#endif
