/* replies.h: what comes back (SPEC §6 Replies). Each pass reads the new
 * mail of the organiser's mailbox ([replies], imap.c), tells replies and
 * bounces from the rest (inbound.c), and keeps in the state database the
 * latest answer of each participant to each session, every reply, bounce
 * and ignored reply for --history, the addresses that bounced, and how far
 * the mailbox was read (UIDVALIDITY and UID: reading twice changes
 * nothing). */
#ifndef KALLAD_REPLIES_H
#define KALLAD_REPLIES_H

#include "config.h"
#include "state.h"
#include "util.h"

#include <stdbool.h>
#include <time.h>

/* A participant's answer to a session's invitation. */
enum answer { ANS_NONE, ANS_ACCEPTED, ANS_DECLINED, ANS_TENTATIVE };

/* The latest answer of email to session uid (ANS_NONE: no reply). */
enum answer replies_answer(struct state *st, const char *email, const char *uid);
/* "needs-action", "accepted", "declined", "tentative". */
const char *replies_answer_name(enum answer a);
/* True while email is suppressed: a delivery to it failed for good
 * (a DSN with Action: failed and a 5.x.x status). */
bool replies_bounced(struct state *st, const char *email);
/* Whether any answer, or any suppressed address, is recorded at all. */
bool replies_any_answer(struct state *st);
bool replies_any_bounce(struct state *st);
/* Lifts the suppression (--unsuppress); false if email was not suppressed. */
bool replies_unsuppress(struct state *st, const char *email, time_t now);

struct replies_stats {
	long replies, bounces, delays, ignored, errors;
};
/* Called for each message read: kind "reply", "bounce", "delay" or
 * "ignored"; email the participant (or the sender), what the partstat,
 * status or "-", uid the session or "-", detail a few words or "-". */
typedef void (*replies_fn)(const char *kind, const char *email, const char *what,
			   const char *uid, const char *detail, void *arg);
/* One pass over the new mail of [replies] url at `now`. False (with errs)
 * if the mailbox could not be read to the end: what was read is kept, and
 * the next pass goes on from there. */
bool replies_fetch(const struct config *cfg, struct state *st, time_t now, replies_fn fn,
		   void *arg, struct replies_stats *stats, struct errlist *errs);
/* Records one message (its bytes) as if read from mailbox/uidvalidity/uid:
 * what replies_fetch does with each; exposed for tests. */
void replies_take(struct state *st, const char *data, size_t len, time_t now,
		  const char *mailbox, unsigned long uidvalidity, unsigned long uid, replies_fn fn,
		  void *arg, struct replies_stats *stats);

/* ---- reading it back (--responses, --history, --report, --status) ---- */

struct response_row {
	const char *uid, *email, *partstat; /* partstat "needs-action" without a reply */
	time_t replied;                     /* the reply's DTSTAMP; 0 without a reply */
};
/* Every participant invited to each session (or to session uid only),
 * with their answer; by session start, then address. */
void replies_each_response(struct state *st, const char *uid,
			   void (*fn)(const struct response_row *, void *), void *arg);

struct inbound_row {
	time_t at;
	const char *kind, *email, *uid, *what, *detail; /* uid, what, detail may be NULL */
};
/* What was learned about email (replies, bounces, delays, ignored
 * replies in their name), oldest first. */
void replies_each_event(struct state *st, const char *email,
			void (*fn)(const struct inbound_row *, void *), void *arg);

struct suppressed_row {
	const char *email, *status, *diagnostic; /* diagnostic may be NULL */
	time_t since;
};
void replies_each_suppressed(struct state *st, void (*fn)(const struct suppressed_row *, void *),
			     void *arg);
/* When the invite to session uid last went to email, and the last
 * session-reminder for it (0: never). */
void replies_sent_times(struct state *st, const char *email, const char *uid, time_t *invite,
			time_t *reminder);

#endif
