/* handle.h: sessions and deadlines named the way an administrator types
 * them (--session, --deadline): the whole UID, the position in time order
 * ("2"), or a unique case-insensitive prefix of the UID or of the title. */
#ifndef KALLAD_HANDLE_H
#define KALLAD_HANDLE_H

#include "calendar.h"

/* The session arg names, or NULL with *err set (caller frees) to a
 * message saying why: nothing matches, or which sessions (position, UID,
 * title, one a line) an ambiguous prefix matches. A whole UID, then an
 * all-digit position, then a whole title (case-insensitive), then a
 * prefix of UIDs and titles. */
const struct session *handle_session(const struct calendar *cal, const char *arg, char **err);
/* The same for deadlines, by due time. */
const struct deadline *handle_deadline(const struct calendar *cal, const char *arg, char **err);

/* A session's position, from 1, among all the calendar's sessions in time
 * order (start, then UID; cancelled ones count): what "--session N" takes. */
int handle_session_position(const struct calendar *cal, const struct session *s);
int handle_deadline_position(const struct calendar *cal, const struct deadline *d);
/* Every position at once, indexed as the calendar's array (caller frees):
 * for a caller that names many, e.g. every line of --plan. */
int *handle_session_positions(const struct calendar *cal);
int *handle_deadline_positions(const struct calendar *cal);

#endif
