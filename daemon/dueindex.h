/* dueindex.h: what the daemon keeps between passes so that a wake-up
 * re-plans only the participants it concerns (SPEC §3). For each
 * participant the last pass planned: the next instant at which the
 * planner's word on them may change (a trigger, a due time, a retry, the
 * start of a session or deadline, min-lead before it), and what is due
 * next for them (for the daemon's STATUS=). Derived from the planner's
 * output alone and thrown away on every change of its inputs: a wake that
 * uses it plans exactly those whose plan could differ from the last one.
 * Kept in a private SQLite database in a temporary file, so memory does
 * not grow with the programme. */
#ifndef KALLAD_DUEINDEX_H
#define KALLAD_DUEINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct dueindex;

/* What one pass planned for one participant. */
struct due_entry {
	time_t wake;         /* next instant their plan may change; 0: never */
	time_t due;          /* earliest due time of what goes; 0: none ahead */
	const char *message; /* ... its message and target (session or deadline uid) */
	const char *target;
	long count;          /* deliveries of theirs at `due` with that message and target */
	long held;           /* change notices of theirs waiting for a release */
	bool removed;        /* gone from the registrations */
};

/* NULL (with why logged) if the temporary database cannot be made. */
struct dueindex *dueindex_new(void);
void dueindex_free(struct dueindex *ix);
/* Forgets everything (a full pass follows). */
void dueindex_clear(struct dueindex *ix);
/* Writes are grouped in transactions for speed: begin ... commit. */
void dueindex_begin(struct dueindex *ix);
void dueindex_commit(struct dueindex *ix);
void dueindex_put(struct dueindex *ix, const char *email, const struct due_entry *e);
/* Brings the participant's wake forward to `wake` if it is later (a retry
 * that a send of this pass set); files them if they are not. */
void dueindex_lower(struct dueindex *ix, const char *email, time_t wake);
/* The participants whose wake has come by now (removed ones: *removed
 * set), into a NULL-terminated array of strings the caller frees. */
char **dueindex_woken(struct dueindex *ix, time_t now, bool *removed);
/* The earliest wake ahead, 0 when none. */
time_t dueindex_next_wake(struct dueindex *ix);
/* The earliest due time ahead (0: none) with its message and target
 * (strings the caller frees) and how many deliveries share all three;
 * and the sum of held notices. */
time_t dueindex_next_due(struct dueindex *ix, char **message, char **target, long *count);
long dueindex_held(struct dueindex *ix);
/* False once an error made it unreliable (then plan everyone again). */
bool dueindex_ok(const struct dueindex *ix);

#endif
