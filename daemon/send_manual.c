/* send_manual.c: sends by hand (--send-now) and their retries, which no
 * rule makes again: they come from the ledger. */
#include "send_internal.h"
#include "describe.h"

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether a send by hand of d would bring the participant's calendar to a
 * SEQUENCE another message (the planner's, or another by hand) brings or
 * brought it to: refused then, unless forced. Asked under the claim's
 * write lock. */
static bool manual_transition_taken(struct sender *s, const struct delivery *d, bool force)
{
	return !force && d->session &&
	       (str_eq(d->message, "invite") || str_eq(d->message, "update") ||
		str_eq(d->message, "cancel")) &&
	       transition_taken(s, d, d->key);
}

/* One claim alone, on disk (synchronous=FULL, an fsync) before its
 * message leaves, as every batch of claims is; *taken: not claimed, as
 * manual_transition_taken. */
static bool claim_durably(struct sender *s, struct delivery *d,
			  const struct delivery_row *row, bool force, bool *taken)
{
	bool claimed = false;

	if (!state_begin(s->st))
		return false;
	*taken = manual_transition_taken(s, d, force);
	if (!*taken)
		claimed = claim(s, d, row);
	if (!state_commit(s->st)) {
		s->broken = true;
		return false;
	}
	return claimed;
}

/* A retry of a manual send that stops meaning anything: recorded as
 * skipped, with why. */
static void give_up(struct sender *s, const struct delivery_row *row, const char *gone)
{
	char *why = xasprintf("gave up: %s (last: %s)", gone, row->detail ? row->detail : "-");

	state_delivery_mark(s->st, row->key, DS_SKIPPED, why, 0, s->now);
	describe_log_row(s->pg->cal, LOG_WARNING, row, why);
	free(why);
}

/* No rule makes a manual send again: its retries come from the ledger.
 * A retry is the same send asked again now: it goes only if it would be
 * sent as it was (send_manual_delivery accepts it; a calendar part at the
 * same SEQUENCE), else it is given up: the session moved, the
 * participant's calendar took a cancel or an update meanwhile, they went
 * absent, their address bounced. */
static void retry_one_manual(struct sender *s, const struct delivery_row *row)
{
	struct participant p;
	struct delivery d = {.message = row->message, .offset = -1, .trigger = s->now,
			     .due = s->now},
			now_d;
	const char *gone = NULL;
	char seq[16], taken_why[80];
	struct delivery_row again;
	bool forced, taken = false;

	/* ...|SEQUENCE, or ...|SEQUENCE|forced@TIME for a forced one. */
	key_field_from_end(row->key, 0, seq, sizeof(seq));
	if ((forced = strncmp(seq, "forced@", 7) == 0))
		key_field_from_end(row->key, 1, seq, sizeof(seq));
	d.sequence = atoi(seq);
	switch (reg_lookup(s->pg->reg, row->email, &p)) {
	case -1:
		/* Not read (locked past the busy timeout): the pass fails, and
		 * the next, soon, tries it again. */
		s->broken = true;
		return;
	case 0:
		give_up(s, row, "the participant is no longer registered");
		return;
	}
	d.p = &p;
	d.session = calendar_session(s->pg->cal, row->target);
	d.deadline = d.session ? NULL : calendar_deadline(s->pg->cal, row->target);
	/* A cancel still goes to one who cancelled: it takes the session out
	 * of their calendar, as the planner's would. */
	if (p.status == PS_CANCELLED && !str_eq(row->message, "cancel"))
		gone = "the participant cancelled";
	else if (!d.session && !d.deadline && !str_eq(row->target, "-"))
		gone = "its session or deadline is gone";
	else if (!forced && ((d.session && d.session->start <= s->now) ||
			     (d.deadline && d.deadline->due <= s->now)))
		gone = "its session began or its deadline passed";
	else
		gone = send_manual_delivery(s,
					    &(struct manual){.message = row->message,
							     .session = d.session,
							     .deadline = d.deadline, .force = forced},
					    &p, &now_d);
	if (!gone && now_d.sequence != d.sequence &&
	    message_calpart(row->message, d.session != NULL, &p) != CAL_NONE)
		gone = "the session, or what their calendar holds of it, changed since";
	if (gone) {
		give_up(s, row, gone);
	} else {
		time_t after = plan_after_quiet(s->pg->cfg, s->now);

		snprintf(d.key, sizeof(d.key), "%s", row->key);
		row_of(&d, &again);
		again.rule = "manual";
		/* A retry is the daemon's doing, not the administrator's: it
		 * keeps quiet hours. */
		if (after != s->now)
			state_delivery_mark(s->st, row->key, row->state, row->detail, after, s->now);
		else if (claim_durably(s, &d, &again, forced, &taken))
			deliver(s, &d, p.email, true);
		else if (taken) {
			snprintf(taken_why, sizeof(taken_why),
				 "their calendar already got SEQUENCE %d of this session", d.sequence);
			give_up(s, row, taken_why);
		}
	}
	reg_participant_clear(&p);
}

static void collect_manual(const struct delivery_row *row, void *arg)
{
	struct sender *s = arg;
	struct retry_set *r = &s->retry;

	if (!is_manual(row) || row->next_attempt > s->now)
		return;
	r->keys = xgrow(r->keys, &r->cap, r->n, sizeof(*r->keys));
	r->keys[r->n++] = xstrdup(row->key);
}

/* Collected first, sent after: the ledger is not changed under a query. */
void retry_manual(struct sender *s)
{
	struct retry_set *r = &s->retry;

	if (!s->tr)
		return; /* --discard-changes: nothing is sent, the retries wait */
	state_delivery_each(s->st, DS_TRANSIENT, collect_manual, s);
	state_delivery_each(s->st, DS_UNKNOWN, collect_manual, s);
	for (size_t i = 0; i < r->n; i++) {
		struct delivery_row row;

		if (!stop_now(s) && !backoff_suspended(s->bo, s->now, NULL) && !s->broken &&
		    state_delivery_get(s->st, r->keys[i], &row)) {
			if (row.state == DS_TRANSIENT || row.state == DS_UNKNOWN)
				retry_one_manual(s, &row);
			state_row_free(&row);
		}
		free(r->keys[i]);
	}
	free(r->keys);
	memset(r, 0, sizeof(*r));
}

static int max_of(int a, int b)
{
	return a > b ? a : b;
}

const char *send_manual_delivery(struct sender *s, const struct manual *m,
				 const struct participant *p, struct delivery *d)
{
	const struct session *ses = m->session;
	bool cancel = str_eq(m->message, "cancel");

	memset(d, 0, sizeof(*d));
	*d = (struct delivery){.message = m->message, .p = p, .session = ses,
			       .deadline = m->deadline, .offset = -1, .trigger = s->now,
			       .due = s->now};
	/* Nothing more goes to an address that bounced, by hand either. */
	if (!m->test_to && replies_bounced(s->st, p->email))
		return "mail to this address bounced (kallad --unsuppress EMAIL lifts that)";
	if (ses) {
		struct attendance a;
		bool had = programme_attendance(s->pg->cfg, s->st, p->email, ses, &a),
		     update = str_eq(m->message, "update");
		/* What their calendar holds of it, as kallad sent it. */
		bool holds = had && a.invited,
		     absent = reg_is_absent(s->pg->reg, p->email, ses->uid),
		     request = message_calpart(m->message, true, p) == CAL_REQUEST;

		/* A REQUEST would put a cancelled session back in calendars. */
		if (ses->cancelled && !cancel)
			return "its session is cancelled: only a cancel can be sent";
		/* What the planner would take back at its next pass: a REQUEST
		 * to one absent (it cancels again), a cancel to one who attends
		 * (it invites again). */
		if (absent && request && !m->force)
			return "they are absent from this session: kallad would cancel it again "
			       "(remove the absence first; --force sends it all the same)";
		if (cancel && p->status == PS_REGISTERED && !ses->cancelled && !absent && !m->force)
			return "they attend this session: kallad would invite them again (cancel "
			       "the session in the calendar, or record their absence; --force "
			       "sends it all the same)";
		if (ses->start <= s->now && !m->force)
			return "its session has begun (--force sends it all the same)";
		if (update && (!holds || a.content >= ses->sequence) && !m->force)
			return "the session has not changed since their invitation "
			       "(--force sends it all the same)";
		if (cancel && !holds && !m->force)
			return "their calendar does not hold this session (no invitation from "
			       "kallad, or cancelled already; --force sends it all the same)";
		/* Any other REQUEST would show them the new version without the
		 * update's words, or one that changes = hold keeps back. */
		if (request && !update && holds && a.content < ses->sequence && !m->force)
			return "their calendar holds an earlier version of this session: its "
			       "update goes first (--release-changes if it is held; --force "
			       "sends it all the same)";
		/* As the planner would: a cancel or an update outranks what they
		 * hold, and so does any REQUEST after a cancel; any other REQUEST
		 * matches it. */
		if (cancel || update)
			d->sequence = had ? max_of(ses->sequence, a.sequence + 1) : ses->sequence;
		else
			d->sequence = had ? max_of(ses->sequence, a.sequence + !a.invited)
					  : ses->sequence;
	} else if (m->deadline && m->deadline->due <= s->now && !m->force) {
		return "its deadline has passed (--force sends it all the same)";
	}
	plan_key(d->key, sizeof(d->key), m->message, p->email, target_uid(d), "manual", NULL,
		 d->sequence);
	/* A forced resend is a new message, and so is a test copy: each has a
	 * Message-ID of its own. */
	if (m->force || m->test_to) {
		char extra[48];

		snprintf(extra, sizeof(extra), "|%s@%lld", m->test_to ? "test" : "forced",
			 (long long)s->now);
		strncat(d->key, extra, sizeof(d->key) - strlen(d->key) - 1);
	}
	return NULL;
}

/* What the ledger says of a manual key that cannot be claimed. */
static const char *ledger_says(struct sender *s, const char *key)
{
	struct delivery_row old;
	const char *what = NULL;

	if (state_delivery_get(s->st, key, &old)) {
		what = old.state == DS_SENT	 ? "was already sent"
		       : old.state == DS_FAILED	 ? "failed before (see --status --failed)"
		       : old.state == DS_SKIPPED ? "was given up before (see --status)"
		       : old.state == DS_CLAIMED ? "is being sent by another kallad"
						 : "is waiting for a retry";
		state_row_free(&old);
	}
	return what;
}

enum manual_verdict send_manual_verdict(struct sender *s, const struct manual *m,
					const struct delivery *d, const char **why)
{
	const char *what;

	*why = NULL;
	if (manual_transition_taken(s, d, m->force)) {
		*why = "their calendar already got (or is getting) this SEQUENCE of the session "
		       "(--force sends it all the same)";
		return MV_TAKEN;
	}
	/* The claim's own test: what it would take, it would send. */
	if (state_delivery_claimable(s->st, d->key, s->now, STALE_CLAIM))
		return MV_SEND;
	what = ledger_says(s, d->key);
	*why = what ? what : "is being sent by another kallad";
	return what && strcmp(what, "was already sent") == 0 ? MV_SENT : MV_REFUSED;
}

/* Refused, previewed (--dry-run) or sent to --test-to at once; a real
 * send is queued, to be claimed with the rest of its batch. */
static bool manual_one(struct sender *s, const struct manual *m, const struct participant *p)
{
	struct delivery d;
	const char *why = send_manual_delivery(s, m, p, &d), *what;

	if (why) {
		fprintf(stderr, "kallad: %s to %s refused: %s\n", m->message, p->email, why);
		return false;
	}
	if (m->dry_run) {
		/* What the real run would do, from the same ledger. */
		enum manual_verdict v = send_manual_verdict(s, m, &d, &what);

		printf("%s %s to %s\n", v == MV_SEND ? "would send" : v == MV_SENT ? "already sent"
										: "would refuse",
		       m->message, p->email);
		return v == MV_SEND;
	}
	if (m->test_to) {
		deliver(s, &d, m->test_to, false);
		return true;
	}
	s->batch = xgrow(s->batch, &s->cap_batch, s->n_batch, sizeof(*s->batch));
	s->batch[s->n_batch++] = d;
	if (s->n_batch >= CLAIM_BATCH)
		send_manual_flush(s);
	return true;
}

/* The relay failed as a whole earlier in this run: what is claimed and
 * not sent yet waits for it (the daemon retries it), and the run says so. */
static bool relay_down_before(struct sender *s, const struct delivery *d)
{
	time_t until;
	char *why;

	if (!backoff_suspended(s->bo, clock_now(), &until))
		return false;
	why = xasprintf("not attempted: the relay is down: %s", backoff_fault(s->bo));
	state_delivery_release(s->st, d->key, why, until, s->now, true);
	free(why);
	s->stats->waiting++;
	s->manual_ok = false;
	return true;
}

/* What a queued delivery came to when its batch was claimed. */
enum manual_claim { MC_NOT, MC_CLAIMED, MC_TAKEN };

/* Claims the queued deliveries in one transaction committed with an
 * fsync (the README's promise: durable before the first of them leaves),
 * then sends them, [smtp] connections at once. The participants they point to must live
 * until then: the end of reg_each's page, or send_manual_end. */
void send_manual_flush(void *arg)
{
	struct sender *s = arg;
	const struct manual *m = s->manual;
	enum manual_claim *c;
	bool committed;

	if (!s->n_batch)
		return;
	c = xcalloc(s->n_batch, sizeof(*c));
	/* An invitation or update by hand and the daemon's never carry one
	 * transition twice: checked and claimed under one write lock. */
	committed = state_begin(s->st);
	for (size_t i = 0; committed && i < s->n_batch; i++) {
		struct delivery *d = &s->batch[i];
		struct delivery_row row;

		if (manual_transition_taken(s, d, m->force)) {
			c[i] = MC_TAKEN;
			continue;
		}
		row_of(d, &row);
		row.rule = "manual";
		c[i] = claim(s, d, &row) ? MC_CLAIMED : MC_NOT;
	}
	if (!state_commit(s->st) || !committed)
		memset(c, 0, s->n_batch * sizeof(*c)); /* nothing claimed (MC_NOT) */
	for (size_t i = 0; i < s->n_batch; i++) {
		const struct delivery *d = &s->batch[i];
		struct flight f;
		const char *what;

		switch (c[i]) {
		case MC_TAKEN:
			fprintf(stderr, "kallad: %s to %s refused: their calendar already got (or is "
				"getting) SEQUENCE %d of this session (--force sends it all the same)\n",
				m->message, d->p->email, d->sequence);
			s->manual_ok = false;
			break;
		case MC_NOT:
			what = ledger_says(s, d->key);
			fprintf(stderr, "kallad: %s to %s %s (use --force to send it anew)\n",
				m->message, d->p->email, what ? what : "is being sent by another kallad");
			s->manual_ok = false;
			break;
		case MC_CLAIMED:
			if (stop_now(s)) {
				state_delivery_release(s->st, d->key, "not attempted: kallad stopped",
						       s->now, s->now, false);
				break;
			}
			f = (struct flight){.d = d, .rcpt = d->p->email, .record = true,
					    .by_hand = true};
			if (!build(s, &f))
				break;
			/* [smtp] connections in flight; an outcome landed to make
			 * room may have suspended the relay. */
			make_room(s, f.rcpt);
			if (relay_down_before(s, d)) {
				free(f.msg);
				break;
			}
			take_off(s, &f);
			break;
		}
	}
	land_all(s);
	free(c);
	s->n_batch = 0;
}

void send_manual_begin(struct sender *s, const struct manual *m, time_t now,
		       struct send_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	s->now = now;
	s->stats = stats;
	s->stopped = false;
	s->manual = m;
	s->manual_ok = true;
	s->n_batch = 0;
	if (!m->dry_run && !m->test_to)
		backoff_begin(s->bo, now, false);
}

void send_manual_each(const struct participant *p, void *arg)
{
	struct sender *s = arg;
	const struct manual *m = s->manual;

	if (stop_now(s))
		return;
	if (backoff_suspended(s->bo, clock_now(), NULL)) {
		/* The relay failed as a whole earlier in this run. */
		s->stats->waiting++;
		s->manual_ok = false;
		return;
	}
	if (p->status == PS_CANCELLED) {
		/* Never anything to someone who cancelled, even by hand. */
		if (!m->all) {
			fprintf(stderr, "kallad: %s has cancelled: nothing sent\n", p->email);
			s->manual_ok = false;
		}
		return;
	}
	if (m->all && !(m->statuses & 1u << p->status))
		return;
	if (m->all && m->session && reg_is_absent(s->pg->reg, p->email, m->session->uid))
		return;
	if (!manual_one(s, m, p))
		s->manual_ok = false;
}

bool send_manual_end(struct sender *s)
{
	const struct send_stats *st = s->stats;

	send_manual_flush(s);
	if (s->progress && st->sent + st->failed + st->transient + st->unknown > 1)
		fputc('\n', stderr);
	note_relay(s);
	return s->manual_ok && !st->failed && !st->waiting && !st->relay_until;
}
