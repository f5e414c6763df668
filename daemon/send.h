/* send.h: the delivery engine (SPEC §3). Turns due deliveries into sent
 * mail exactly once: claim in the ledger, build, send, record. Retries
 * with backoff, honours max-per-minute, slows down when the server asks. */
#ifndef KALLAD_SEND_H
#define KALLAD_SEND_H

#include "programme.h"
#include "state.h"
#include "transport.h"

#include <stdbool.h>
#include <time.h>

struct sender;

/* A sender over pg, st and tr (all borrowed: they must outlive it, and
 * send_set_programme swaps pg after a reload). */
struct sender *send_new(struct programme *pg, struct state *st, struct transport *tr);
void send_free(struct sender *s);
void send_set_programme(struct sender *s, struct programme *pg);
void send_set_transport(struct sender *s, struct transport *tr);
/* Asked between messages whether to stop (SIGTERM): the message in
 * flight is always finished and recorded first. */
void send_set_stop(struct sender *s, bool (*should_stop)(void *arg), void *arg);
/* --release-changes [--session UID]: updates and cancels held (changes =
 * hold, or the guard against mass vanishing) go too; uid NULL: all. */
void send_set_release(struct sender *s, bool on, const char *uid);
/* --discard-changes: a pass that sends nothing and takes what is held as
 * done: held cancels and updates are recorded as if sent (the files as
 * they are become the truth), held removals are accepted. */
void send_set_discard(struct sender *s, bool on);
/* Shows a progress line on stderr when it is a terminal. */
void send_set_progress(struct sender *s, bool on);

/* Records what kallad knows now (rules, sessions, deadlines, participants),
 * so later runs can tell new things from old ones (no retroactive blasts). */
void send_note_known(struct sender *s, time_t now);

struct send_stats {
	long sent, transient, failed, unknown, skipped, build_errors;
	long waiting;         /* due but not attempted: the relay is suspended */
	time_t relay_until;   /* the relay is suspended until then; 0 while it works */
	const char *relay_fault; /* what suspended it (valid until the next pass) */
	time_t next_due; /* earliest future due time, 0 when nothing is ahead */
	struct delivery next; /* the delivery at next_due (pointers into the programme) */
	long next_count;      /* how many deliveries share next_due's message and target */
	long held;            /* change notices waiting for --release-changes */
	size_t removals_held; /* sessions gone at once, their cancels held by the guard */
	size_t removed;       /* participants gone from the registrations */
	size_t removed_held;  /* ... of them, how many have their cancels held */
	bool stale;           /* the calendar changed while read: reload and pass again */
	time_t next_wake;     /* the daemon's: next instant some plan may change (0: none) */
};

/* Sends everything due at `now` and records skips whose time has come.
 * A fault of the relay as a whole (connection, TLS, AUTH, MAIL FROM)
 * fails no message: it ends the pass and suspends the relay (backoff.h),
 * and everything due stays due; a suspension recorded by any kallad holds
 * the pass too. Fills stats; returns false if the ledger failed.
 * With stats->stale set nothing was done: the calendar changed since the
 * programme was read (reload it and call again). */
bool send_due(struct sender *s, time_t now, struct send_stats *stats);

/* The daemon's: keep an index of what is due (dueindex.h) so that
 * send_due_wake() plans only those whose plan may have changed. */
void send_keep_due_index(struct sender *s);
/* An input of the planner changed (besides a new programme, which
 * send_set_programme() notes): the next wake plans everyone. */
void send_inputs_changed(struct sender *s);
/* A new programme after a reload in which only the registrations, or
 * the site templates (which the planner does not read), changed: `what`,
 * for the log. before and after are the fingerprints of the
 * registrations then and now (regdigest.h; borrowed, either may be NULL).
 * If the index was valid and the difference is only participants new or
 * changed (or none), the index stays valid and the next wake plans those;
 * else (someone gone, absences or attachments changed, no fingerprints)
 * it plans everyone. The messages built so far are forgotten either way. */
struct regdigest;
void send_set_programme_registrations(struct sender *s, struct programme *pg,
				      struct regdigest *before, struct regdigest *after,
				      const char *what);
/* As send_due, planning only the participants whose instant in the index
 * has come, or whose retry has; a full pass when the index is not valid. */
bool send_due_wake(struct sender *s, time_t now, struct send_stats *stats);

/* A manual send (--send-now): message and target chosen by hand, to the
 * participants then given one by one to send_manual_each(). */
struct manual {
	const char *message;
	const struct session *session;
	const struct deadline *deadline;
	bool all;            /* --all: skip the cancelled and the absent quietly */
	unsigned statuses;   /* with all: who, as bits 1 << enum pstatus */
	bool force, dry_run;
	const char *test_to; /* send to this address instead, record nothing */
};
/* Whether the programme's Message-ID salt is recorded (state_message_id_salt),
 * tried again if it was not: nothing may be sent before. */
bool send_salt_ready(struct sender *s);
void send_manual_begin(struct sender *s, const struct manual *m, time_t now,
		       struct send_stats *stats);
/* One participant (arg is the sender). A real send is queued and goes
 * when its batch is claimed, durably, as a whole: p must stay valid until
 * send_manual_flush() or send_manual_end(). With reg_each(), pass
 * send_manual_flush as the page callback. */
void send_manual_each(const struct participant *p, void *sender);
/* Claims what is queued (one commit with an fsync), then sends it. */
void send_manual_flush(void *sender);
/* Sends what is still queued. True if every message went, would go
 * (--dry-run) or waits for a retry of its own (a 4xx for that message);
 * false if one failed, was refused, or the relay is down. A manual send
 * tries the relay even while it is suspended (a person asked), once: its
 * first fault stops the rest. */
bool send_manual_end(struct sender *s);

/* The delivery a manual send makes for p (key, SEQUENCE as the planner
 * would give it), for --send-now and --preview alike. NULL, or why it is
 * refused: a REQUEST about a cancelled session, anything about a session
 * that has begun or a deadline that passed (unless force), an update of a
 * session that did not change since the participant's invitation (unless
 * force). */
const char *send_manual_delivery(struct sender *s, const struct manual *m,
				 const struct participant *p, struct delivery *d);
/* What the real send of d (send_manual_delivery's) would meet in the
 * ledger now, as --dry-run and --preview tell it: MV_SEND; MV_TAKEN, its
 * SEQUENCE already went to the participant (or is going); MV_SENT, the key
 * was sent; MV_REFUSED, it failed, was given up or is being sent. *why
 * says it in words (static). */
enum manual_verdict { MV_SEND, MV_TAKEN, MV_SENT, MV_REFUSED };
enum manual_verdict send_manual_verdict(struct sender *s, const struct manual *m,
					const struct delivery *d, const char **why);
/* The message for d, byte for byte as it is sent (Date: from now). */
char *send_build_message(struct sender *s, const struct delivery *d, size_t *len,
			 struct errlist *errs);

/* Backoff before attempt n+1 after n failed attempts: exponential with
 * jitter (r in [0,1)), from one minute up to six hours. */
time_t send_backoff(int attempts, double r);

#endif
