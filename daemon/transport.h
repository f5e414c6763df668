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
	SEND_RELAY,     /* a fault of the relay as a whole, not of this message: it was
			 * not delivered and says nothing against it (see relay_fault) */
};

/* Where a SEND_RELAY fault lies (Postfix's model: a dead destination is
 * suspended, not bounced). Only replies to RCPT and DATA are about a
 * message; everything before them is about the relay. */
enum relay_fault {
	RELAY_NONE,
	RELAY_CONNECT, /* no connection, no greeting, a refusal at greeting or EHLO, a drop
			* or a 421 before the message was under way */
	RELAY_TLS,     /* no STARTTLS, a certificate not trusted, a failed handshake */
	RELAY_AUTH,    /* AUTH refused: a wrong password, or the relay's SASL is down */
	RELAY_SENDER,  /* MAIL FROM refused: the relay will take nothing from this sender */
	RELAY_LIMIT,   /* (backoff.c's, not a result's) the relay kept asking to slow down */
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
/* What came of one send. */
struct outcome {
	void *tag;              /* the caller's, from transport_start() */
	enum send_result result;
	char *detail;           /* the server's words (or what went wrong); the caller
				 * frees it */
	enum relay_fault fault; /* where a SEND_RELAY lay; RELAY_NONE otherwise */
	bool slow;              /* the reply asks the whole transport to slow down: 421,
				 * or 450/451/452 with 4.7.x or words such as "too much
				 * mail", "rate", "try again later" */
};

/* Sends in flight at once at most: [smtp] connections (1 for the outbox). */
int transport_connections(const struct transport *t);
/* Sends started whose outcome was not taken yet. */
int transport_in_flight(const struct transport *t);
/* True if a send ended whose outcome transport_finish() has yet to take
 * (it will not wait then). */
bool transport_ready(struct transport *t);
/* True if one more send may start now (see smtp_can_start()). */
bool transport_can_start(const struct transport *t);
/* Starts one message to one recipient: sends what it can without waiting
 * for the server. The caller may build the next message (and start it, if
 * transport_can_start()) meanwhile; msg must stay valid until
 * transport_finish() hands back its tag. */
void transport_start(struct transport *t, const char *rcpt, const char *msg, size_t len,
		     void *tag);
/* Waits until one of the sends in flight ends: *o gets it. False if none
 * was in flight. */
bool transport_finish(struct transport *t, struct outcome *o);
/* Lets the sends in flight go on for secs seconds (a wait for the next
 * message's turn); their outcomes wait for transport_finish(). */
void transport_pause(struct transport *t, double secs);
/* Sends one message, start to end, with nothing else in flight. *detail
 * gets the server's words (or what went wrong), freed by the caller. */
enum send_result transport_send(struct transport *t, const char *rcpt, const char *msg,
				size_t len, char **detail);
/* tick(arg) about once a second while a send waits for the server. */
void transport_set_tick(struct transport *t, void (*tick)(void *), void *arg);
/* Of the last outcome finished: whether it asked to slow down, and where
 * a SEND_RELAY lay (RELAY_NONE after any other result). */
bool transport_should_slow(const struct transport *t);
enum relay_fault transport_fault(const struct transport *t);
/* Ends the open connections (QUIT) so that none sits idle, unless a send
 * is in flight; the next send opens a new one. */
void transport_hangup(struct transport *t);
void transport_close(struct transport *t);
const char *transport_result_name(enum send_result r);

#endif
