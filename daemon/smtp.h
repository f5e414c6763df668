/* smtp.h: SMTP through libcurl, [smtp] connections transactions in flight
 * at once, internal to the transport (transport.c dispatches to it when
 * [smtp] url is set). */
#ifndef KALLAD_SMTP_H
#define KALLAD_SMTP_H

#include "config.h"
#include "transport.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

struct smtp;

/* Sets up [smtp] connections reusable libcurl handles for cfg's server.
 * password (may be NULL: no AUTH) is copied by libcurl. [smtp] ca-file,
 * or else the environment variable KALLAD_SMTP_CAINFO, names a CA bundle
 * used instead of the system's. NULL with errs on a bad URL or from
 * address. */
struct smtp *smtp_open(const struct config *cfg, const char *password, struct errlist *errs);
/* [smtp] connections. */
int smtp_connections(const struct smtp *s);
/* Transactions started and not yet finished. */
int smtp_in_flight(const struct smtp *s);
/* True if a transaction ended whose outcome smtp_finish() has yet to
 * take (it will not wait then). */
bool smtp_ready(struct smtp *s);
/* True if one more may start now: [smtp] connections in flight at most,
 * and only one until a transaction went through since the connections
 * were (re)opened or a relay fault or a sign of a limit (so a wrong
 * password is tried once, not once per connection). */
bool smtp_can_start(const struct smtp *s);
/* One transaction: MAIL FROM, one RCPT TO, DATA with msg (strict CRLF),
 * in two halves, so the caller can build the next message (and start
 * others) while this one's replies are awaited: smtp_start() sends what
 * it can without waiting; msg must stay valid until smtp_finish() hands
 * back its tag. Only when smtp_can_start().
 * Each reply waits at most [smtp] timeout seconds, the reply to "." [smtp]
 * end-of-data-timeout. Connections idle for [smtp] idle-timeout are not
 * reused; one that fails at its first command (a 421, a drop) is replaced
 * once at once; while transactions fail, no more than one connection is
 * opened a second. */
void smtp_start(struct smtp *s, const char *rcpt, const char *msg, size_t len, void *tag);
/* Runs the transactions in flight until one ends, and fills *o with it.
 * False if none was in flight. */
bool smtp_finish(struct smtp *s, struct outcome *o);
/* Lets the transactions in flight go on for secs seconds (sleeps when
 * there are none); their outcomes wait for smtp_finish(). */
void smtp_pause(struct smtp *s, double secs);
/* tick(arg) is called about once a second while a reply is awaited (a
 * server may take [smtp] timeout seconds): the daemon pings its watchdog
 * there. */
void smtp_set_tick(struct smtp *s, void (*tick)(void *), void *arg);
/* Closes the connections (QUIT) unless a transaction is in flight. */
void smtp_hangup(struct smtp *s);
/* Sends QUIT on an open connection, frees everything, NULL is fine. */
void smtp_close(struct smtp *s);

#endif
