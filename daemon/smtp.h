/* smtp.h: one SMTP client connection through libcurl, internal to the
 * transport (transport.c dispatches to it when [smtp] url is set). */
#ifndef KALLAD_SMTP_H
#define KALLAD_SMTP_H

#include "config.h"
#include "transport.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

struct smtp;

/* Sets up one reusable libcurl handle for cfg's server. password (may be
 * NULL: no AUTH) is copied by libcurl. [smtp] ca-file, or else the
 * environment variable KALLAD_SMTP_CAINFO, names a CA bundle used instead
 * of the system's. NULL with errs on a bad URL or from address. */
struct smtp *smtp_open(const struct config *cfg, const char *password, struct errlist *errs);
/* One transaction: MAIL FROM, one RCPT TO, DATA with msg (strict CRLF),
 * in two halves, so the caller can build the next message while this one's
 * replies are awaited: smtp_start() sends what it can without waiting; msg
 * must stay valid until smtp_finish(), which runs the transaction to its
 * end. *detail (never NULL afterwards, caller frees) gets the server's last
 * reply and the command it answered, or what went wrong locally.
 * Each reply waits at most [smtp] timeout seconds, the reply to "." [smtp]
 * end-of-data-timeout. A connection idle for [smtp] idle-timeout is not
 * reused; one that fails at its first command (a 421, a drop) is replaced
 * once at once; no more than one connection is opened a second. */
void smtp_start(struct smtp *s, const char *rcpt, const char *msg, size_t len);
enum send_result smtp_finish(struct smtp *s, char **detail);
/* tick(arg) is called about once a second while a reply is awaited (a
 * server may take [smtp] timeout seconds): the daemon pings its watchdog
 * there. */
void smtp_set_tick(struct smtp *s, void (*tick)(void *), void *arg);
/* True if the last transaction failed with a sign of a limit (421, or
 * 450/451/452 with 4.7.x or rate-limit words). */
bool smtp_should_slow(const struct smtp *s);
/* Where the last SEND_RELAY lay. */
enum relay_fault smtp_fault(const struct smtp *s);
/* Closes the connection if one is open (QUIT). */
void smtp_hangup(struct smtp *s);
/* Sends QUIT on an open connection, frees everything, NULL is fine. */
void smtp_close(struct smtp *s);

#endif
