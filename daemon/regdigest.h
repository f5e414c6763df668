/* regdigest.h: a fingerprint of the registrations as one load read them,
 * so that after a reload the daemon can tell which participants changed
 * without another pass over the database: a 64-bit hash of each
 * participant as read (by address), and one of the absences and one of
 * the attachment rows as a whole. Kept in a private SQLite database in a
 * temporary file, so memory does not grow with the programme. */
#ifndef KALLAD_REGDIGEST_H
#define KALLAD_REGDIGEST_H

#include "registrations.h"

#include <stdbool.h>

struct regdigest;

/* NULL (with why logged) if the temporary database cannot be made. */
struct regdigest *regdigest_new(void);
void regdigest_free(struct regdigest *r);
/* Notes a participant as read (the first valid row of its address). */
void regdigest_participant(struct regdigest *r, const struct participant *p);
/* Folds one absence or attachment row into its table's fingerprint (in
 * any order). */
void regdigest_absence(struct regdigest *r, const char *email, const char *session_uid);
void regdigest_attachment(struct regdigest *r, const char *email, const char *message,
			  const char *path);
/* Ends the load. */
void regdigest_done(struct regdigest *r);
/* Calls fn for each participant of after that is new or changed since
 * before. False (fn perhaps called for some) when the difference is more
 * than that: a participant gone (or stored under other bytes of the same
 * address), absences or attachments changed, or either fingerprint
 * unreliable. Then only a pass over everyone can tell what changed. */
bool regdigest_diff(struct regdigest *before, struct regdigest *after,
		    void (*fn)(const char *email, void *arg), void *arg);

#endif
