/* changes.h: what changed in the calendar since kallad last looked, and
 * the SEQUENCE each session's invites carry from now on (INTEROP life
 * cycle: raised whenever start, end, location or status change). */
#ifndef KALLAD_CHANGES_H
#define KALLAD_CHANGES_H

#include "calendar.h"
#include "state.h"

#include <stdbool.h>
#include <stddef.h>

struct changes_opts {
	bool description;      /* description-changes = update */
	int max_removed;       /* more sessions gone at once than this are held */
	const char *release;   /* NULL; "" lets every held removal go; or one UID */
	const char *path;      /* the calendar file */
	const char *loaded_id; /* its file_identity() when cal was read from it */
};

/* Compares each session of cal with kallad's stored copy. A session whose
 * start, end, location or status changed gets the stored SEQUENCE + 1 (and
 * never less than the file's own); one that vanished from the file is
 * appended to cal as cancelled, from its stored copy, its SEQUENCE raised
 * once. A change of anything else (title, description) updates the copy
 * but not the SEQUENCE, unless `description`. Every session's `sequence`
 * in cal is set to the effective one, and each deadline's `revision`
 * (raised when its due moved). Logs each change it finds.
 *
 * The guard against mass vanishing: when more than max_removed sessions
 * that were not cancelled vanish at once (a partial or empty export), they
 * are appended with `removal_held` and nothing of them is stored, so their
 * cancels wait and the file coming back changes nothing; `release` lets
 * them (or one) go, storing them as cancelled. *held gets their number.
 *
 * One writer of session state: cal is compared only if it was read from
 * the file whose copies are stored, or from the file on disk now. Else
 * another process stored a newer version than cal: nothing is done and
 * false is returned (reload and call again). With a read-only st nothing
 * is stored: the SEQUENCEs are what they would become. */
bool changes_sync(struct calendar *cal, struct state *st, const struct changes_opts *o,
		  size_t *held);

/* Whether a calendar shows sessions a and b alike: the same start, end,
 * location and status, and (with `description`, description-changes =
 * update) the same title and description. What raises a SEQUENCE. */
bool changes_shown_same(const struct session *a, const struct session *b, bool description);

/* --discard-changes: the removals held in cal are taken as they are,
 * without a cancel: their stored copies become cancelled. */
void changes_accept_removals(const struct calendar *cal, struct state *st);

#endif
