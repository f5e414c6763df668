/* imap.h: reading one mailbox over IMAP with libcurl, read-only: kallad
 * never deletes, moves or flags mail ([replies], SPEC §6). */
#ifndef KALLAD_IMAP_H
#define KALLAD_IMAP_H

#include "config.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

struct imap;

/* A session for cfg's [replies] (url, tls, user) with password (may be
 * NULL; not kept). Connects on first use. NULL with errs when libcurl
 * cannot be set up. Free with imap_close(). */
struct imap *imap_open(const struct config *cfg, const char *password, struct errlist *errs);
void imap_close(struct imap *im);
/* Opens the mailbox with EXAMINE, so that nothing read can change it
 * (not even the \Seen flag): its UIDVALIDITY into *uidvalidity. */
bool imap_examine(struct imap *im, unsigned long *uidvalidity, struct errlist *errs);
/* The UIDs greater than `after`, ascending, into *uids (caller frees). */
bool imap_uids_after(struct imap *im, unsigned long after, unsigned long **uids, size_t *n,
		     struct errlist *errs);
/* The whole message with UID uid, as stored (caller frees); NULL with
 * errs on failure. */
char *imap_fetch(struct imap *im, unsigned long uid, size_t *len, struct errlist *errs);

#endif
