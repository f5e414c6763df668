/* send_internal.h: what the parts of the delivery engine share (send.c:
 * the pass and the flight of each message; send_retry.c: the retryable
 * rows a pass no longer makes; send_manual.c: sends by hand and their
 * retries). Not for use outside them. */
#ifndef KALLAD_SEND_INTERNAL_H
#define KALLAD_SEND_INTERNAL_H

#include "dueindex.h"
#include "send.h"

/* Claims are committed in batches: one durable commit per message (its
 * outcome) instead of two keeps the ledger far from capping the rate. */
#define CLAIM_BATCH 64
/* A claim older than this is renewed before its message starts (while
 * messages are spaced, one older than a second): see take_off(). */
#define RENEW_CLAIM 60
/* Claimed messages that may wait for a free connection while the next
 * participants are planned: planning overlaps sending, and no more is
 * claimed ahead of the connections than this and a batch. */
#define CARRY_MAX (2 * CLAIM_BATCH)
/* A claim whose process is gone is taken over at once; this bound is only
 * for a process id that was reused meanwhile. It must outlast any batch
 * at the slowest rate, or a live process's claim could be taken. */
#define STALE_CLAIM (6 * 3600)
/* Writes of a pass that need no fsync of their own share a transaction
 * (ledger_begin/ledger_commit): what planning records of participants
 * (their obligations, skips, releases), committed with the next claim
 * batch or after this many participants; and the outcomes that landed,
 * committed before another message starts. SPEC §3 promises that a crash
 * resends at most the message in flight: with N connections, at most the
 * N whose outcome is not committed (synchronous=NORMAL: a kill of kallad
 * keeps a commit; a power cut repeats at most the messages since the last
 * claim batch's fsync). */
#define LEDGER_PARTICIPANTS 64
/* [smtp] connections at most. */
#define FLEET_MAX 16

/* One message on its way: built, then started, then landed. */
struct flight {
	const struct delivery *d;
	const char *rcpt; /* the participant, or --test-to */
	bool record;      /* false: leave no trace (--test-to) */
	bool by_hand;     /* a send by hand or its retry: judged when asked */
	bool busy;        /* in the air: started, its outcome not taken */
	struct delivery dv; /* in the air: its own copy of *d (d points here), as the
			     * batch it came from is refilled meanwhile */
	unsigned gen;     /* the relay's suspensions in this run when it started */
	char *msg;
	size_t len;
};

struct sender {
	struct programme *pg;
	struct state *st;
	struct transport *tr;
	bool (*should_stop)(void *);
	void *stop_arg;
	bool progress;
	bool release;     /* --release-changes */
	const char *release_uid; /* ... --session UID */
	bool discard;     /* --discard-changes */
	struct backoff *bo; /* spacing, and the relay's suspension (backoff.h) */
	char *held_why;   /* "not attempted: ..." while the relay is suspended */
	char *org_uid, *org; /* the last session's ORGANIZER (state_calendar_organizer) */
	char *id_salt;    /* the Message-IDs' salt (state_message_id_salt) ... */
	char *id_from;    /* ... and the address whose domain they take, both kept */
	unsigned seed;

	/* per run */
	const struct plan_ctx *ctx;
	struct retry_set {
		char **keys; /* retryable rows the planner made, sorted */
		bool *seen;  /* planned again in this pass */
		size_t n, cap;
	} retry;
	struct delivery *pending; /* one participant's, gathered while planning */
	size_t n_pending, cap_pending;
	struct owed_set {
		struct owed_item {
			char *oid;
			time_t since; /* 0 when recorded already */
		} *items;      /* the participant's obligations that hold */
		size_t n, cap;
		size_t fresh;  /* how many of them are not recorded yet */
	} owed;
	const struct manual *manual;
	bool manual_ok;
	time_t now;
	struct send_stats *stats;
	struct met *met;     /* the addresses the full pass met (met.h) */
	size_t planned;      /* participants planned in this pass */
	struct dueindex *ix; /* the daemon's index of what is due (send_wake.c) */
	bool ix_valid;       /* ... made by a complete pass, no input changed since */
	struct due_entry entry; /* the participant being planned, for the index */
	size_t removals_held_last, removed_last; /* as the last full pass found */
	size_t removed_held_last;
	struct message_cache *msg_cache; /* what this pass's messages share (message.h) */
	struct delivery *batch; /* due, to be claimed together */
	size_t n_batch, cap_batch;
	size_t n_carried;       /* the first of them: claimed, not started yet */
	bool stopped, broken;
	struct flight fleet[FLEET_MAX]; /* sends in flight ([smtp] connections) */
	bool tx_open;     /* a transaction of the ledger's writes is open */
	int tx_n;         /* outcomes in it */
	int tx_planned;   /* participants whose writes are in it */
};

/* send.c */
bool stop_now(struct sender *s);
const char *target_uid(const struct delivery *d);
void row_of(const struct delivery *d, struct delivery_row *row);
/* Builds, sends and records one claimed delivery, start to end. */
void deliver(struct sender *s, const struct delivery *d, const char *rcpt, bool record);
/* The same in steps, for several in flight at once: build f's message
 * (false: it cannot be, and that is recorded); make room for it (lands
 * outcomes until another send may start, and none to rcpt is in the
 * air); take_off() waits for its turn and starts it (false: kallad stops,
 * the claim is released); land_all() takes every outcome still in the
 * air and commits the outcomes. */
bool build(struct sender *s, struct flight *f);
void make_room(struct sender *s, const char *rcpt);
/* Whether a message to rcpt is in the air. */
bool in_flight_to(const struct sender *s, const char *rcpt);
bool take_off(struct sender *s, const struct flight *f);
void land_all(struct sender *s);
/* Waits for the next outcome of the sends in the air, takes it and any
 * others in, and commits them. */
void land_next(struct sender *s);
/* Takes the outcomes already in, without waiting, and commits them. */
void land_ready(struct sender *s);
/* Opens the transaction of the pass's light writes, unless it is open. */
void ledger_begin(struct sender *s);
/* Commits it, if open (if that fails, the pass stops: s->broken). */
void ledger_commit(struct sender *s);
bool transition_taken(struct sender *s, const struct delivery *d, const char *except);
/* Fills the caller's stats with the relay's suspension, if there is one. */
void note_relay(struct sender *s);

/* Why the rest of a batch does not go now (NULL: it may), and when. */
const char *held_back(struct sender *s, time_t *next);
/* A claimed delivery that does not go in this pass, released with why. */
void hold(struct sender *s, const struct delivery *d, const char *why, time_t next);
/* A retry (transient or unknown) that no longer means anything, given up
 * (send_retry.c): a notice forgotten, its calendar in doubt if its outcome
 * was not known; a rule's delivery skipped. */
void retry_give_up(struct sender *s, const struct delivery_row *row);
/* What the participant's calendar holds once d went (attendance). */
void note_attendance(struct sender *s, const struct delivery *d);
/* Claims d as row, under the caller's transaction (false: another
 * process holds it, or it is not due), and notes when in d; a claimed
 * REQUEST to a registered participant keeps their copy (keep_copy) in the
 * same transaction. */
bool claim(struct sender *s, struct delivery *d, const struct delivery_row *row);
/* The copy of d's participant a cancel greets if their row is deleted
 * later, when d puts a session in their calendar. */
void keep_copy(struct sender *s, const struct delivery *d);

void on_owed(const struct delivery *d, void *arg);
void plan_one(const struct participant *p, void *arg);
/* Claims and sends the batch; its last messages may still be in the air
 * (their participants must live until land_all()). */
void flush_batch(struct sender *s);
/* flush_batch(), then every outcome in: before the participants go. */
void flush_batch_landed(struct sender *s);

/* send_wake.c */
void wake_invalidate(struct sender *s);
void wake_note(struct sender *s, const struct delivery *d);
void wake_put(struct sender *s, const struct participant *p);
void wake_retry_at(struct sender *s, const struct delivery *d, time_t next);
void wake_full_begin(struct sender *s);
void wake_full_end(struct sender *s, bool complete);

/* send_retry.c */
void key_field_from_end(const char *key, int n, char *buf, size_t len);
bool is_manual(const struct delivery_row *row);
void retry_begin(struct sender *s);
void retry_seen(struct sender *s, const struct delivery *d);
/* Says, on each start and reload, when calendars already sent keep an
 * ORGANIZER other than [organizer] email (send_message.c). */
void warn_organizer(struct sender *s);
/* The ORGANIZER of session uid's calendars (state_calendar_organizer),
 * the last one kept at hand; recorded when first asked by a claim (in
 * its transaction, on disk with it). */
const char *session_organizer(struct sender *s, const char *uid);
/* Superseded by one that has not gone yet: judged again each pass. */
bool superseded_waits(const struct sender *s, const struct delivery *d);
void retry_end(struct sender *s, bool complete);

/* send_manual.c */
void retry_manual(struct sender *s);

#endif
