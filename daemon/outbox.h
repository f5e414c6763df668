/* outbox.h: the Maildir where mail goes when no [smtp] url is set
 * (SPEC §1.1): <directory of the state database>/outbox/{tmp,new,cur}. */
#ifndef KALLAD_OUTBOX_H
#define KALLAD_OUTBOX_H

#include "transport.h"
#include "util.h"

#include <stddef.h>

struct outbox;

/* "<dirname(state)>/outbox" for a state database path; caller frees. */
char *outbox_dir(const char *state);
/* Creates dir and its tmp/, new/ and cur/ as needed (mode 0750).
 * NULL with errs when it cannot. */
struct outbox *outbox_open(const char *dir, struct errlist *errs);
/* Writes msg, exactly these bytes, to tmp/, fsyncs it, renames it into
 * new/ under a unique Maildir name and fsyncs new/. SEND_OK with *detail
 * "written to PATH", else SEND_TRANSIENT with what failed; the caller frees
 * *detail. */
enum send_result outbox_send(struct outbox *o, const char *msg, size_t len, char **detail);
void outbox_close(struct outbox *o);

#endif
