/* transport.h: where messages go: SMTP through libcurl when [smtp] url is
 * set, else a Maildir outbox under the state directory (SPEC §1.1, §3). */
#ifndef KALLAD_TRANSPORT_H
#define KALLAD_TRANSPORT_H

#include "config.h"
#include "util.h"

#include <stddef.h>

enum send_result {
	SEND_OK,        /* the server said 250 after the data (or the outbox has it) */
	SEND_TRANSIENT, /* nothing delivered; try again later (connect failure, 4xx) */
	SEND_PERMANENT, /* the server refused it for good (5xx) */
	SEND_UNKNOWN,   /* the server may have it (drop or timeout after ".") */
};

struct transport;

/* Prepares the transport: reads the password (refusing a file readable by
 * group or others), creates the outbox. NULL with errs on failure. */
struct transport *transport_open(const struct config *cfg, struct errlist *errs);
/* Reads the SMTP password as transport_open would (the same checks: set
 * with user, a credential or a private file) and forgets it; false with
 * errs when sending would refuse it. True without [smtp] url. */
bool transport_check_password(const struct config *cfg, struct errlist *errs);
/* Reads a password given as a credential name or a private file (value of
 * a password key; label, e.g. "[smtp] password", names it in errors).
 * The caller frees it (wiping it first). NULL with errs on failure. */
char *transport_secret(const char *label, const char *value, struct errlist *errs);
/* Sends one message to one recipient. *detail gets the server's words
 * (or what went wrong), freed by the caller. Reuses the connection; after
 * any error the next send opens a fresh one. */
enum send_result transport_send(struct transport *t, const char *rcpt, const char *msg,
				size_t len, char **detail);
/* transport_send in two halves: start sends what it can without waiting
 * for the server; finish waits for the outcome. The caller may build the
 * next message in between; msg must stay valid until finish. One send at
 * a time: every start is followed by its finish. */
void transport_start(struct transport *t, const char *rcpt, const char *msg, size_t len);
enum send_result transport_finish(struct transport *t, char **detail);
/* tick(arg) about once a second while a send waits for the server. */
void transport_set_tick(struct transport *t, void (*tick)(void *), void *arg);
/* True if the last result came with a reply that asks the whole transport
 * to slow down (421, 451, 452 or a rate-limit text). */
bool transport_should_slow(const struct transport *t);
void transport_close(struct transport *t);
const char *transport_result_name(enum send_result r);

#endif
