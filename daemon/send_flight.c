/* send_flight.c: one claimed delivery from its message to its recorded
 * outcome: built, spaced (max-per-minute, the relay's suspension, quiet
 * hours), started on a free connection, landed when the relay answers,
 * and its outcome committed with others in a batch (send_internal.h). */
#include "send_internal.h"

#include "backoff.h"
#include "clock.h"
#include "describe.h"
#include "log.h"
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void land_one(struct sender *s);

static void count_progress(struct sender *s)
{
	struct send_stats *st = s->stats;

	if (s->progress)
		fprintf(stderr, "\rkallad: %ld sent, %ld retrying, %ld failed", st->sent,
			st->transient + st->unknown, st->failed);
}

/* A message that puts the session in the participant's calendar as
 * theirs to attend: any REQUEST to the registered. A REQUEST that a rule
 * sends to others is theirs to keep, not a registration to follow. */
static bool enrols(const struct delivery *d)
{
	return d->session && d->p->status == PS_REGISTERED &&
	       (str_eq(d->message, "invite") || str_eq(d->message, "update") ||
		str_eq(d->message, "session-reminder"));
}

/* What the participant's calendar holds once a message went: any REQUEST
 * puts the session there at its SEQUENCE (enrols), a CANCEL takes it out. */
void note_attendance(struct sender *s, const struct delivery *d)
{
	struct attendance a = {.sequence = d->sequence};
	bool cancel = str_eq(d->message, "cancel");

	if (!d->session || (!cancel && !enrols(d)))
		return;
	a.invited = !cancel;
	a.content = d->session->sequence;
	state_set_attendance(s->st, d->p->email, d->session->uid, &a);
}

void keep_copy(struct sender *s, const struct delivery *d)
{
	/* Taken with the claim, before the message leaves: so the copy is
	 * written with a batch of claims, not with each outcome (the outcome
	 * is committed alone before the next message on its connection). */
	if (enrols(d) && !d->p->removed)
		state_participant_store(s->st, d->p, s->now);
}

bool claim(struct sender *s, struct delivery *d, const struct delivery_row *row)
{
	if (!state_delivery_claim(s->st, row, s->now, STALE_CLAIM))
		return false;
	d->claimed = s->now;
	keep_copy(s, d);
	if (d->session)
		session_organizer(s, d->session->uid);
	return true;
}

/* Claimed but never sent: released for the next pass, as not attempted. */
static void release(struct sender *s, const struct delivery *d, const char *why, time_t next)
{
	/* Held for the relay: it goes when the suspension ends, however it
	 * ends (an administrator's fix ends it early). */
	state_delivery_release(s->st, d->key, why, next, s->now,
			       backoff_suspended(s->bo, s->now, NULL));
	wake_retry_at(s, d, next);
}

/* Builds the message; a delivery whose message cannot be built is failed
 * with why (recorded unless --test-to). */
bool build(struct sender *s, struct flight *f)
{
	const struct delivery *d = f->d;
	struct errlist errs = {0};

	f->msg = send_build_message(s, d, &f->len, &errs);
	if (f->msg)
		return true;
	const char *why = errs.n ? errs.items[0] : "message could not be built";
	char *words = describe_delivery(d);

	log_error("%s: not sent: %s", words, why);
	free(words);
	if (f->record)
		state_delivery_mark(s->st, d->key, DS_FAILED, why, 0, s->now);
	s->stats->build_errors++;
	s->stats->failed++;
	errlist_free(&errs);
	return false;
}

/* While waiting for the next message's turn: the sends in flight go on,
 * the outcomes that came meanwhile are taken and committed (no lock held
 * across a wait). One of them may have suspended the relay: then the
 * wait ends, and the message waiting for its turn does not start. */
static bool pause_cb(void *arg, double secs)
{
	struct sender *s = arg;

	ledger_commit(s);
	transport_pause(s->tr, secs);
	land_ready(s);
	return !stop_now(s) && !s->broken && !backoff_suspended(s->bo, clock_now(), NULL);
}

/* Whether d's claim has waited long enough to be renewed before its
 * message starts: a second under spacing, RENEW_CLAIM otherwise. */
static bool must_renew(const struct sender *s, const struct delivery *d)
{
	time_t age = clock_now() - d->claimed;

	return age >= RENEW_CLAIM || (age >= 1 && backoff_spaced(s->bo));
}

/* What the planner would say of a message whose turn (max-per-minute, a
 * slow relay) comes at `at` (plan_late). A send by hand (and its retry) was
 * judged when asked: --force may send late. */
static const char *too_late(const struct sender *s, const struct flight *f, time_t at)
{
	return f->record && !f->by_hand ? plan_late(s->pg->cfg, f->d, at) : NULL;
}

/* Not sent, its turn too late. A rule's message is skipped, as the
 * planner skips it. A notice goes back as not attempted; one whose outcome
 * was not known (a retry) is given up now, as the next pass would give it
 * up, its calendar in doubt: that pass sends what the calendar should
 * hold above it. */
static void skip_late(struct sender *s, const struct flight *f, const char *why)
{
	char *words = describe_delivery(f->d);
	struct delivery_row row;

	ledger_begin(s);
	if (f->d->rule) {
		state_delivery_mark(s->st, f->d->key, DS_SKIPPED, why, 0, s->now);
		s->stats->skipped++;
	} else {
		hold(s, f->d, "not attempted: its session began", s->now);
		if (state_delivery_get(s->st, f->d->key, &row)) {
			if (row.state == DS_UNKNOWN)
				retry_give_up(s, &row);
			state_row_free(&row);
		}
	}
	ledger_commit(s);
	log_notice("%s: not sent (%s): its turn came too late", words, why);
	free(words);
	free(f->msg);
}

bool take_off(struct sender *s, const struct flight *f)
{
	struct flight *slot = NULL;
	const char *why;
	time_t next;
	bool go;

	/* Its turn comes too late: skipped without waiting for it (a paced
	 * pass would otherwise wait out every turn of what cannot go). */
	s->now = clock_now();
	if ((why = too_late(s, f, s->now + (time_t)(backoff_turn_in(s->bo) + 0.999)))) {
		skip_late(s, f, why);
		return false;
	}
	go = backoff_wait_turn(s->bo, pause_cb, s);

	/* An outcome taken while waiting may have suspended the relay or,
	 * a sign of a limit, brought the pool back to one at a time; the
	 * wait may have run into quiet hours, which a pass keeps (a send by
	 * hand does not). */
	if (go) {
		make_room(s, f->rcpt);
		s->now = clock_now();
		go = !stop_now(s) && !s->broken && !backoff_suspended(s->bo, s->now, NULL) &&
		     (s->manual || plan_after_quiet(s->pg->cfg, s->now) == s->now);
	}
	/* A claim that waited (for its turns under spacing, or behind a
	 * slow relay) is renewed before its message starts, and committed
	 * (no lock is held across the send): one older than STALE_CLAIM may
	 * have been taken over by another kallad, which sends it then; this
	 * one does not. A claim taken a moment ago is not: the first message
	 * after a batch of claims leaves with nothing written since their
	 * fsync. */
	if (go && f->record && must_renew(s, f->d)) {
		int mine = -1;

		ledger_begin(s);
		if (!s->broken)
			mine = state_delivery_renew(s->st, f->d->key, clock_now());
		ledger_commit(s);
		if (mine < 0 || s->broken) {
			s->broken = true;
			go = false;
		} else if (!mine) {
			char *words = describe_delivery(f->d);

			log_warn("%s: not sent here: another kallad took it over while it waited",
				 words);
			free(words);
			free(f->msg);
			return false;
		}
	}
	if (!go) {
		s->now = clock_now();
		if (f->record) {
			why = held_back(s, &next);
			hold(s, f->d, why ? why : "not attempted: kallad stopped", next);
		}
		free(f->msg);
		return false;
	}
	if ((why = too_late(s, f, s->now))) {
		skip_late(s, f, why);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(s->fleet) && !slot; i++)
		if (!s->fleet[i].busy)
			slot = &s->fleet[i];
	if (!slot)
		abort(); /* make_room() was not called: a bug */
	*slot = *f;
	slot->dv = *f->d;
	slot->d = &slot->dv;
	slot->busy = true;
	slot->gen = backoff_generation(s->bo);
	transport_start(s->tr, slot->rcpt, slot->msg, slot->len, slot);
	return true;
}

static void log_outcome(struct sender *s, const struct flight *f, enum send_result res,
			const char *detail, time_t next)
{
	const char *why = detail ? detail : "";
	char *key = describe_delivery(f->d);
	/* A --test-to copy names where it really went. */
	bool elsewhere = !str_caseeq(f->rcpt, f->d->p->email);

	switch (res) {
	case SEND_OK:
		s->stats->sent++;
		log_info("%s: sent%s%s: %s", key, elsewhere ? " to " : "", elsewhere ? f->rcpt : "",
			 why);
		break;
	case SEND_TRANSIENT:
		s->stats->transient++;
		log_warn("%s: deferred (retry in %lds): %s", key, (long)(next - s->now), why);
		break;
	case SEND_UNKNOWN:
		s->stats->unknown++;
		log_warn("%s: outcome unknown, will resend with the same Message-ID: %s", key, why);
		break;
	case SEND_PERMANENT:
		s->stats->failed++;
		log_error("%s: failed: %s", key, why);
		break;
	case SEND_RELAY:
		s->stats->waiting++;
		log_warn("%s: not sent: the relay is down, the message waits for it", key);
		break;
	}
	free(key);
}

/* A fault of the relay as a whole: the message was not delivered and
 * nothing is held against it. It goes back to the queue, no attempt
 * counted, for when the relay is tried again. */
static void relay_down(struct sender *s, const struct flight *f, const char *detail)
{
	time_t until;

	backoff_suspended(s->bo, s->now, &until);
	log_outcome(s, f, SEND_RELAY, detail, until);
	if (f->record) {
		char *why = xasprintf("not attempted: the relay is down: %s", detail);
		release(s, f->d, why, until);
		free(why);
	}
}

void ledger_begin(struct sender *s)
{
	if (s->tx_open)
		return;
	s->tx_open = state_begin_light(s->st);
	s->tx_n = s->tx_planned = 0;
	/* Without the write lock (another process held it past the busy
	 * timeout), what follows would be written piecemeal, a failure unseen:
	 * the pass stops before anything more is claimed, and the next pass
	 * plans again what this one could not record. */
	if (!s->tx_open)
		s->broken = true;
}

void ledger_commit(struct sender *s)
{
	if (!s->tx_open)
		return;
	s->tx_open = false;
	if (!state_commit(s->st)) {
		/* The outcomes are lost with the transaction: stop sending before
		 * more are. Their rows stay claimed by this process and become
		 * "unknown" when it ends: resent with the same Message-IDs. What
		 * planning recorded is recorded again by the next pass. */
		log_error("the ledger could not commit %d outcomes and what planning recorded "
			  "with them; stopping this pass", s->tx_n);
		s->broken = true;
	}
	s->tx_n = s->tx_planned = 0;
}

/* Takes the next outcome of the sends in flight and records it. */
static void land_one(struct sender *s)
{
	static const enum dstate to_state[] = {[SEND_OK] = DS_SENT, [SEND_TRANSIENT] = DS_TRANSIENT,
					       [SEND_PERMANENT] = DS_FAILED,
					       [SEND_UNKNOWN] = DS_UNKNOWN};
	struct outcome o;
	struct flight *f;
	const struct delivery *d;
	struct delivery_row row;
	enum send_result res;
	time_t next = 0;
	int attempts = 0;

	if (!transport_finish(s->tr, &o))
		return;
	f = o.tag;
	d = f->d;
	res = o.result;
	s->now = clock_now();
	free(f->msg);
	f->msg = NULL;
	f->busy = false;
	/* A send that started before the relay was suspended says nothing
	 * new of it: its fault is the same one, its success no sign that
	 * the relay is back (every connection stops at the first fault). */
	if (f->gen == backoff_generation(s->bo))
		backoff_note(s->bo, res, o.fault, o.slow, o.detail, s->now);
	if (res == SEND_RELAY) {
		relay_down(s, f, o.detail);
		free(o.detail);
		count_progress(s);
		return;
	}
	if (res == SEND_TRANSIENT || res == SEND_UNKNOWN) {
		/* Only a retry needs the count; a success costs no extra read. */
		if (f->record && state_delivery_get(s->st, d->key, &row)) {
			attempts = row.attempts + 1;
			state_row_free(&row);
		}
		next = s->now + send_backoff(attempts, rand_r(&s->seed) / (RAND_MAX + 1.0));
		wake_retry_at(s, d, next);
	}
	log_outcome(s, f, res, o.detail, next);
	if (f->record) {
		/* The outcome and what it did to the participant's calendar, with
		 * the outcomes that landed with it: one transaction, no fsync of
		 * its own (see state.c), committed before another message starts
		 * (make_room). */
		ledger_begin(s);
		/* Refused now, but the attempt before may have arrived. */
		if (res == SEND_PERMANENT && d->session &&
		    message_calpart(d->message, true, d->p) != CAL_NONE)
			state_attendance_doubt(s->st, d->key, d->p->email, d->session->uid,
					       d->sequence);
		state_delivery_mark(s->st, d->key, to_state[res], o.detail, next, s->now);
		if (res == SEND_OK)
			note_attendance(s, d);
		s->tx_n++;
	}
	free(o.detail);
	count_progress(s);
}

/* Takes the outcomes already in, without waiting, and commits them with
 * whatever else is open: what landed is recorded before anything else
 * leaves (a crash then repeats only what is in flight) and before any
 * wait for a server (no write lock is held across one). */
void land_ready(struct sender *s)
{
	while (s->tr && transport_ready(s->tr))
		land_one(s);
	ledger_commit(s);
}

bool in_flight_to(const struct sender *s, const char *rcpt)
{
	for (size_t i = 0; i < ARRAY_SIZE(s->fleet); i++)
		if (s->fleet[i].busy && str_caseeq(s->fleet[i].rcpt, rcpt))
			return true;
	return false;
}

void make_room(struct sender *s, const char *rcpt)
{
	/* Every outcome in already, so that a fault of the relay is known
	 * before another message starts; then waits for room, and for the
	 * answer to a message to the same address: one mailbox gets its
	 * messages one after another, in the order they started, as over
	 * one connection. */
	land_ready(s);
	while ((!transport_can_start(s->tr) || in_flight_to(s, rcpt)) &&
	       transport_in_flight(s->tr) > 0)
		land_next(s);
}

void land_next(struct sender *s)
{
	land_one(s);
	land_ready(s);
}

void land_all(struct sender *s)
{
	/* (--discard-changes runs without a transport.) */
	land_ready(s);
	while (s->tr && transport_in_flight(s->tr) > 0)
		land_next(s);
}

/* Builds, sends and records one claimed delivery by hand (or its retry),
 * start to end. */
void deliver(struct sender *s, const struct delivery *d, const char *rcpt, bool record)
{
	struct flight f = {.d = d, .rcpt = rcpt, .record = record, .by_hand = true};

	if (!build(s, &f))
		return;
	make_room(s, rcpt);
	take_off(s, &f);
	land_all(s);
}

/* Why the rest of a batch does not go now, and when it may: kallad is
 * stopping, the relay is suspended (after a fault of its own, or asking
 * again and again to slow down), or a long pass ran into quiet hours.
 * NULL when it may go. */
const char *held_back(struct sender *s, time_t *next)
{
	time_t after = plan_after_quiet(s->pg->cfg, s->now);

	*next = s->now;
	if (stop_now(s))
		return "not attempted: kallad stopped";
	if (backoff_suspended(s->bo, s->now, next)) {
		free(s->held_why);
		s->held_why = xasprintf("not attempted: the relay is suspended: %s",
					backoff_fault(s->bo));
		return s->held_why;
	}
	if (after != s->now) {
		*next = after;
		return "not attempted: quiet hours began";
	}
	return NULL;
}

/* A claimed delivery that does not go in this pass, released with why. */
void hold(struct sender *s, const struct delivery *d, const char *why, time_t next)
{
	release(s, d, s->broken ? "not attempted: the ledger failed" : why, next);
	if (!s->broken && backoff_suspended(s->bo, s->now, NULL))
		s->stats->waiting++;
}
