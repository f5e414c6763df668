/* describe.h: deliveries in words, for the log and the terminal: what an
 * administrator reads, e.g. `invite to Anna Berglund <anna@example.org>
 * for "Leda samhällsutveckling" (20 Feb 10:00)`. With --verbose the
 * delivery key follows in brackets. */
#ifndef KALLAD_DESCRIBE_H
#define KALLAD_DESCRIBE_H

#include "calendar.h"
#include "plan.h"
#include "state.h"

/* The delivery in words (caller frees). */
char *describe_delivery(const struct delivery *d);
/* A ledger row in words, its session or deadline looked up in cal (may
 * be NULL; a target cal lacks is named by its UID). Caller frees. */
char *describe_row(const struct calendar *cal, const struct delivery_row *row);

/* A session or deadline in words: `"Leda samhällsutveckling" (20 Feb
 * 10:00)`, its UID in brackets with --verbose. Caller frees. */
char *describe_session(const struct session *s);
char *describe_deadline(const struct deadline *d);

/* Logs "<the delivery in words>: what" at priority (log.h). */
void describe_log(int priority, const struct delivery *d, const char *what);
void describe_log_row(const struct calendar *cal, int priority, const struct delivery_row *row,
		      const char *what);

#endif
