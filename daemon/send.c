#include "send.h"

#include "changes.h"
#include "clock.h"
#include "log.h"
#include "message.h"
#include "tz.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Claims are committed in batches: one durable commit per message (its
 * outcome) instead of two keeps the ledger far from capping the rate. */
#define CLAIM_BATCH 64
/* A claim whose process is gone is taken over at once; this bound is only
 * for a process id that was reused meanwhile. It must outlast any batch
 * at the slowest rate, or a live process's claim could be taken. */
#define STALE_CLAIM (6 * 3600)
/* After this many slow-down replies in a row the server means it: the
 * rest of the pass is deferred for PAUSE seconds instead of hammered. */
#define SLOW_REPLIES_TO_PAUSE 3
#define PAUSE 300

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
	double next_slot; /* monotonic time before which no message may start */
	double slow;      /* >1 after the server asked us to slow down */
	int slow_replies; /* slow-down replies in a row */
	bool paused;      /* the rest of this pass waits PAUSE seconds */
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
	struct delivery *batch; /* due, to be claimed together */
	size_t n_batch, cap_batch;
	bool stopped, broken;
};

static bool stop_now(struct sender *s);
static void tick(void *arg);

struct sender *send_new(struct programme *pg, struct state *st, struct transport *tr)
{
	struct sender *s = xcalloc(1, sizeof(*s));

	s->pg = pg;
	s->st = st;
	s->tr = tr;
	s->slow = 1;
	s->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	return s;
}

void send_free(struct sender *s)
{
	if (!s)
		return;
	free(s->batch);
	free(s->pending);
	free(s->owed.items);
	free(s);
}

void send_set_programme(struct sender *s, struct programme *pg)
{
	s->pg = pg;
}

void send_set_transport(struct sender *s, struct transport *tr)
{
	s->tr = tr;
	if (tr && s->should_stop)
		transport_set_tick(tr, tick, s);
}

/* While a reply is awaited: asked too, so the watchdog is fed and a
 * SIGTERM heard; the message in flight is finished all the same. */
static void tick(void *arg)
{
	struct sender *s = arg;

	stop_now(s);
}

void send_set_stop(struct sender *s, bool (*should_stop)(void *arg), void *arg)
{
	s->should_stop = should_stop;
	s->stop_arg = arg;
	if (s->tr)
		transport_set_tick(s->tr, tick, s);
}

void send_set_release(struct sender *s, bool on, const char *uid)
{
	s->release = on;
	s->release_uid = uid;
}

void send_set_discard(struct sender *s, bool on)
{
	s->discard = on;
}

void send_set_progress(struct sender *s, bool on)
{
	s->progress = on && isatty(2);
}

time_t send_backoff(int attempts, double r)
{
	double base = 60.0 * pow(2.0, attempts > 1 ? attempts - 1 : 0);

	if (base > 6 * 3600.0)
		base = 6 * 3600.0;
	return (time_t)(base * (0.5 + r));
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* max-per-minute as spacing between message starts, stretched while the
 * server asks us to slow down. */
/* Waits in slices of at most a second, so that a SIGTERM or the watchdog
 * is heard during a long wait; false when kallad is stopping. */
static bool wait_for_slot(struct sender *s)
{
	int per_minute = s->pg->cfg->smtp_url ? s->pg->cfg->max_per_minute : 0;
	double gap = per_minute > 0 ? 60.0 / per_minute : 0;
	double now = mono();

	if (s->slow > 1 && s->pg->cfg->smtp_url)
		gap = (gap > 0 ? gap : 1.0) * s->slow;
	while (s->next_slot > now) {
		double d = s->next_slot - now < 1.0 ? s->next_slot - now : 1.0;
		struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (stop_now(s))
			return false;
		now = mono();
	}
	s->next_slot = now + gap;
	return true;
}

struct sigs {
	char **v;
	size_t n, cap;
};

static void sigs_add(struct sigs *g, const char *sig)
{
	g->v = xgrow(g->v, &g->cap, g->n, sizeof(*g->v));
	g->v[g->n++] = xstrdup(sig);
}

/* Records the sigs as known since now (unless known already) and forgets
 * the other sigs of kind: a rule or target that goes away and comes back
 * is new again. */
static void note_sigs(struct sender *s, const char *kind, struct sigs *g, time_t now)
{
	for (size_t i = 0; i < g->n; i++)
		state_note_known(s->st, kind, g->v[i], now);
	state_known_prune(s->st, kind, g->v, g->n);
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	memset(g, 0, sizeof(*g));
}

void send_note_known(struct sender *s, time_t now)
{
	const struct programme *pg = s->pg;
	const struct calendar *cal = pg->cal;
	char buf[PLAN_KEY_MAX];
	struct sigs g = {0};

	s->now = now;
	state_begin(s->st);
	for (size_t i = 0; i < pg->cfg->n_rules; i++) {
		const struct rule *r = &pg->cfg->rules[i];
		for (size_t o = 0; o < r->n_offsets; o++) {
			plan_rule_sig(buf, sizeof(buf), r, &r->offsets[o]);
			sigs_add(&g, buf);
		}
	}
	note_sigs(s, "rule-def", &g, now);
	for (size_t i = 0; i < cal->n_sessions; i++) {
		if (!cal->sessions[i].cancelled) {
			plan_target_sig(buf, sizeof(buf), &cal->sessions[i], NULL);
			sigs_add(&g, buf);
		}
	}
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		plan_target_sig(buf, sizeof(buf), NULL, &cal->deadlines[i]);
		sigs_add(&g, buf);
	}
	note_sigs(s, "target", &g, now);
	state_commit(s->st);
}

static const char *target_uid(const struct delivery *d)
{
	return d->session ? d->session->uid : d->deadline ? d->deadline->uid : "-";
}

static void row_of(const struct delivery *d, struct delivery_row *row)
{
	memset(row, 0, sizeof(*row));
	row->key = (char *)d->key;
	row->message = (char *)d->message;
	row->email = d->p->email;
	row->target = (char *)target_uid(d);
	row->rule = d->rule ? d->rule->name : "-";
	row->due = d->due;
	row->obligation = d->oid[0] ? d->oid : NULL;
}

static bool stop_now(struct sender *s)
{
	if (!s->stopped && s->should_stop && s->should_stop(s->stop_arg))
		s->stopped = true;
	return s->stopped;
}

static void count_progress(struct sender *s)
{
	struct send_stats *st = s->stats;

	if (s->progress)
		fprintf(stderr, "\rkallad: %ld sent, %ld retrying, %ld failed", st->sent,
			st->transient + st->unknown, st->failed);
}

/* What the participant's calendar holds once a message went: any REQUEST
 * puts the session there at its SEQUENCE, a CANCEL takes it out. Only
 * for the registered: a REQUEST that a rule sends to others is theirs to
 * keep, not a registration to follow. */
static void note_attendance(struct sender *s, const struct delivery *d)
{
	struct attendance a = {.sequence = d->sequence};
	bool cancel = str_eq(d->message, "cancel");

	if (!d->session)
		return;
	if (!cancel && (d->p->status != PS_REGISTERED ||
			!(str_eq(d->message, "invite") || str_eq(d->message, "update") ||
			  str_eq(d->message, "session-reminder"))))
		return;
	a.invited = !cancel;
	a.content = d->session->sequence;
	state_set_attendance(s->st, d->p->email, d->session->uid, &a);
	/* Whom a cancel greets if their row is deleted later. */
	if (!cancel && !d->p->removed)
		state_participant_store(s->st, d->p, s->now);
}

/* Claimed but never sent: released for the next pass, as not attempted. */
static void release(struct sender *s, const struct delivery *d, const char *why, time_t next)
{
	state_delivery_release(s->st, d->key, why, next, s->now);
}

/* One message on its way: built, then started, then landed. */
struct flight {
	const struct delivery *d;
	const char *rcpt; /* the participant, or --test-to */
	bool record;      /* false: leave no trace (--test-to) */
	char *msg;
	size_t len;
};

/* Builds the message; a delivery whose message cannot be built is failed
 * with why (recorded unless --test-to). */
static bool build(struct sender *s, struct flight *f)
{
	const struct delivery *d = f->d;
	struct errlist errs = {0};

	f->msg = send_build_message(s, d, &f->len, &errs);
	if (f->msg)
		return true;
	const char *why = errs.n ? errs.items[0] : "message could not be built";
	log_error("%s: not sent: %s", d->key, why);
	if (f->record)
		state_delivery_mark(s->st, d->key, DS_FAILED, why, 0, s->now);
	s->stats->build_errors++;
	s->stats->failed++;
	errlist_free(&errs);
	return false;
}

static bool launch(struct sender *s, struct flight *f)
{
	if (!wait_for_slot(s))
		return false;
	transport_start(s->tr, f->rcpt, f->msg, f->len);
	return true;
}

static void slow_down_or_recover(struct sender *s, enum send_result res)
{
	if (transport_should_slow(s->tr)) {
		s->slow = s->slow < 32 ? s->slow * 2 : 32;
		if (++s->slow_replies >= SLOW_REPLIES_TO_PAUSE && !s->paused) {
			s->paused = true;
			log_warn("the server keeps asking to slow down: deferring the rest for %ds",
				 PAUSE);
		}
	} else if (res == SEND_OK) {
		s->slow_replies = 0;
		if (s->slow > 1)
			s->slow /= 2;
	}
}

static void log_outcome(struct sender *s, const struct flight *f, enum send_result res,
			const char *detail, time_t next)
{
	const char *key = f->d->key, *why = detail ? detail : "";

	switch (res) {
	case SEND_OK:
		s->stats->sent++;
		log_info("%s: sent to %s: %s", key, f->rcpt, why);
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
	}
}

/* Waits for the outcome and records it. */
static void land(struct sender *s, struct flight *f)
{
	static const enum dstate to_state[] = {[SEND_OK] = DS_SENT, [SEND_TRANSIENT] = DS_TRANSIENT,
					       [SEND_PERMANENT] = DS_FAILED,
					       [SEND_UNKNOWN] = DS_UNKNOWN};
	const struct delivery *d = f->d;
	struct delivery_row row;
	char *detail = NULL;
	enum send_result res = transport_finish(s->tr, &detail);
	time_t next = 0;
	int attempts = 0;

	s->now = clock_now();
	free(f->msg);
	f->msg = NULL;
	slow_down_or_recover(s, res);
	if (res == SEND_TRANSIENT || res == SEND_UNKNOWN) {
		/* Only a retry needs the count; a success costs no extra read. */
		if (f->record && state_delivery_get(s->st, d->key, &row)) {
			attempts = row.attempts + 1;
			state_row_free(&row);
		}
		next = s->now + send_backoff(attempts, rand_r(&s->seed) / (RAND_MAX + 1.0));
	}
	log_outcome(s, f, res, detail, next);
	if (f->record) {
		/* The outcome and what it did to the participant's calendar: one
		 * transaction, no fsync of its own (see state.c). */
		state_begin_light(s->st);
		state_delivery_mark(s->st, d->key, to_state[res], detail, next, s->now);
		if (res == SEND_OK)
			note_attendance(s, d);
		if (!state_commit(s->st)) {
			/* The outcome is lost with the transaction: stop sending
			 * before more outcomes are. The row stays claimed by this
			 * process and becomes "unknown" when it ends. */
			log_error("%s: %s could not be recorded; stopping this pass", d->key,
				  transport_result_name(res));
			s->broken = true;
		}
	}
	free(detail);
	count_progress(s);
}

/* Builds, sends and records one claimed delivery, start to end. */
static void deliver(struct sender *s, const struct delivery *d, const char *rcpt, bool record)
{
	struct flight f = {.d = d, .rcpt = rcpt, .record = record};

	if (!build(s, &f))
		return;
	if (!launch(s, &f)) {
		if (record)
			release(s, d, "not attempted: kallad stopped", s->now);
		free(f.msg);
		return;
	}
	land(s, &f);
}


/* Why the rest of a batch does not go now, and when it may: kallad is
 * stopping, the server asked to slow down, or a long pass ran into quiet
 * hours. NULL when it may go. */
static const char *held_back(struct sender *s, time_t *next)
{
	time_t after = plan_after_quiet(s->pg->cfg, s->now);

	*next = s->now;
	if (stop_now(s))
		return "not attempted: kallad stopped";
	if (s->paused) {
		*next = s->now + PAUSE;
		return "not attempted: the server asked to slow down";
	}
	if (after != s->now) {
		*next = after;
		return "not attempted: quiet hours began";
	}
	return NULL;
}

/* True if a REQUEST bringing the participant's calendar to SEQUENCE seq of
 * the session (an invite or an update, the planner's or one by hand) is
 * claimed, sent or may have gone under a key other than `except`: that
 * transition is taken. Asked under a claim's write lock. */
static bool transition_taken(struct sender *s, const struct delivery *d, const char *except)
{
	static const char *const messages[] = {"invite", "update"};
	static const char *const rules[] = {NULL, "manual"};
	char key[PLAN_KEY_MAX];

	for (size_t m = 0; m < ARRAY_SIZE(messages); m++)
		for (size_t r = 0; r < ARRAY_SIZE(rules); r++) {
			struct delivery_row row;
			bool taken;

			plan_key(key, sizeof(key), messages[m], d->p->email, d->session->uid, rules[r],
				 NULL, d->sequence);
			if (str_eq(key, except) || !state_delivery_get(s->st, key, &row))
				continue;
			taken = row.state == DS_CLAIMED || row.state == DS_SENT ||
				row.state == DS_UNKNOWN;
			state_row_free(&row);
			if (taken)
				return true;
		}
	return false;
}

/* A change notice is claimed only if the participant's calendar, as the
 * ledger says now (under the claim's write lock), still needs it: another
 * kallad may have sent the same transition meanwhile under another key. */
static bool still_needed(struct sender *s, const struct delivery *d)
{
	struct attendance a;
	bool had;

	if (d->rule || !d->session)
		return true;
	had = state_attendance(s->st, d->p->email, d->session->uid, &a);
	if (str_eq(d->message, "invite"))
		return (!had || !a.invited) && !transition_taken(s, d, d->key);
	if (str_eq(d->message, "update"))
		return had && a.invited && a.content < d->session->sequence &&
		       !transition_taken(s, d, d->key);
	if (str_eq(d->message, "cancel"))
		return had && a.invited;
	return true;
}

static void flush_batch(struct sender *s)
{
	/* Called at the end of each page of participants too: the batch
	 * points into the page, which goes away next. */
	struct flight cur = {0}, prev = {0};
	const char *why;
	bool *claimed;
	time_t next;

	if (!s->n_batch)
		return;
	/* Nothing is claimed that cannot go now: it stays for the next pass. */
	s->now = clock_now();
	if (s->broken || held_back(s, &next)) {
		s->n_batch = 0;
		return;
	}
	claimed = xcalloc(s->n_batch, sizeof(*claimed));
	if (state_begin(s->st)) {
		for (size_t i = 0; i < s->n_batch; i++) {
			struct delivery_row row;
			row_of(&s->batch[i], &row);
			claimed[i] = still_needed(s, &s->batch[i]) &&
				     state_delivery_claim(s->st, &row, s->now, STALE_CLAIM);
		}
	}
	if (!state_commit(s->st)) {
		s->broken = true;
		s->n_batch = 0;
		free(claimed);
		return;
	}
	/* A pipeline of one: the next message is built while the server
	 * answers the one before. Time moves on during a long batch: claims,
	 * outcomes and quiet hours read the clock as they go. */
	for (size_t i = 0; i < s->n_batch; i++) {
		const struct delivery *d = &s->batch[i];

		if (!claimed[i]) {
			log_debug("%s: held by another process or not yet due", d->key);
			continue;
		}
		s->now = clock_now();
		cur = (struct flight){.d = d, .rcpt = d->p->email, .record = true};
		if (s->broken || (why = held_back(s, &next))) {
			release(s, d, s->broken ? "not attempted: the ledger failed" : why, next);
			continue;
		}
		if (!build(s, &cur))
			continue;
		if (prev.msg)
			land(s, &prev);
		if (s->broken || (why = held_back(s, &next))) {
			release(s, d, s->broken ? "not attempted: the ledger failed" : why, next);
			if (s->paused)
				s->stats->transient++;
			free(cur.msg);
			continue;
		}
		if (!launch(s, &cur)) {
			release(s, d, "not attempted: kallad stopped", s->now);
			free(cur.msg);
			continue;
		}
		prev = cur;
	}
	if (prev.msg)
		land(s, &prev);
	s->n_batch = 0;
	free(claimed);
}

/* --- retryable rows the planner no longer makes --- */

/* The field n from the end (0: the last) of a delivery key, into buf:
 * from the end, because an address or a UID may hold a "|" too. */
static void key_field_from_end(const char *key, int n, char *buf, size_t len)
{
	const char *end = key + strlen(key), *p = end;

	for (;;) {
		const char *start = p;
		while (start > key && start[-1] != '|')
			start--;
		if (n-- == 0) {
			snprintf(buf, len, "%.*s", (int)(p - start), start);
			return;
		}
		if (start == key) {
			snprintf(buf, len, "%s", "");
			return;
		}
		p = start - 1;
	}
}

/* A --send-now is recorded under the rule name "manual" (reserved). */
static bool is_manual(const struct delivery_row *row)
{
	return str_eq(row->rule, "manual");
}

static void collect_retry(const struct delivery_row *row, void *arg)
{
	struct retry_set *r = arg;

	if (is_manual(row))
		return; /* no rule makes these: retried from the ledger */
	r->keys = xgrow(r->keys, &r->cap, r->n, sizeof(*r->keys));
	r->keys[r->n++] = xstrdup(row->key);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void retry_begin(struct sender *s)
{
	struct retry_set *r = &s->retry;

	state_delivery_each(s->st, DS_TRANSIENT, collect_retry, r);
	state_delivery_each(s->st, DS_UNKNOWN, collect_retry, r);
	if (r->n)
		qsort(r->keys, r->n, sizeof(*r->keys), key_cmp);
	r->seen = xcalloc(r->n ? r->n : 1, sizeof(*r->seen));
}

/* A retryable row stays only while the planner still means to send it. */
static void retry_seen(struct sender *s, const struct delivery *d)
{
	struct retry_set *r = &s->retry;
	const char *key = d->key;
	char **hit;

	if (!r->n || (d->skip && strcmp(d->skip, "held") != 0))
		return;
	hit = bsearch(&key, r->keys, r->n, sizeof(*r->keys), key_cmp);
	if (hit)
		r->seen[hit - r->keys] = true;
}

/* A notice (invite, update, cancel) follows the participant's state and
 * may be needed again after a later change: it is forgotten, not skipped
 * for good. One that may have arrived (unknown) counts as held by the
 * participant, so a cancel follows it if they no longer attend. A rule's
 * delivery is skipped with why. */
static void give_up(struct sender *s, const struct delivery_row *row)
{
	char *why = xasprintf("gave up: no longer planned (last: %s)", row->detail ? row->detail : "-");

	if (str_eq(row->rule, "-")) {
		if (row->state == DS_UNKNOWN && !str_eq(row->message, "cancel")) {
			char seq[16];
			key_field_from_end(row->key, 0, seq, sizeof(seq));
			state_set_attendance(s->st, row->email, row->target,
					     &(struct attendance){true, atoi(seq), -1});
		}
		state_delivery_forget(s->st, row->key);
	} else {
		state_delivery_mark(s->st, row->key, DS_SKIPPED, why, 0, s->now);
		state_delivery_unlink(s->st, row->key);
	}
	log_warn("%s: %s", row->key, why);
	free(why);
}

/* After a whole pass: what was not planned again (the participant
 * cancelled, the session began or changed) is given up, with why. */
static void retry_end(struct sender *s, bool complete)
{
	struct retry_set *r = &s->retry;

	for (size_t i = 0; i < r->n; i++) {
		struct delivery_row row;

		if (complete && !r->seen[i] && state_delivery_get(s->st, r->keys[i], &row)) {
			if (row.state == DS_TRANSIENT || row.state == DS_UNKNOWN)
				give_up(s, &row);
			state_row_free(&row);
		}
		free(r->keys[i]);
	}
	free(r->keys);
	free(r->seen);
	memset(r, 0, sizeof(*r));
}

static void record_skip(struct sender *s, const struct delivery *d)
{
	struct delivery_row row, old;

	row_of(d, &row);
	row.due = d->trigger;
	if (state_delivery_get(s->st, d->key, &old)) {
		/* A retry that stopped meaning anything ends here, with why. */
		if (old.state == DS_TRANSIENT || old.state == DS_UNKNOWN) {
			char *why = xasprintf("gave up: %s (last: %s)", d->skip,
					      old.detail ? old.detail : "-");
			state_delivery_mark(s->st, d->key, DS_SKIPPED, why, 0, s->now);
			log_warn("%s: %s", d->key, why);
			free(why);
		}
		state_row_free(&old);
		return;
	}
	state_delivery_skip(s->st, &row, d->skip, s->now);
	s->stats->skipped++;
	log_info("%s: skipped: %s", d->key, d->skip);
}

static void note_next(struct send_stats *st, const struct delivery *d)
{
	if (!st->next_due || d->due < st->next_due) {
		st->next_due = d->due;
		st->next = *d;
		st->next_count = 1;
	} else if (d->due == st->next_due && str_eq(d->message, st->next.message) &&
		   str_eq(target_uid(d), target_uid(&st->next))) {
		st->next_count++;
	}
}

/* A change notice that this --release-changes [--session UID] lets go. */
static bool releases(const struct sender *s, const struct delivery *d)
{
	return s->release && !d->rule && d->message[0] != 'i' &&
	       (!s->release_uid || (d->session && str_eq(d->session->uid, s->release_uid)));
}

/* --discard-changes: each held notice of the participant is recorded in
 * their calendar's state as if it had gone, and nothing is sent. */
static void discard_held(struct sender *s)
{
	state_begin_light(s->st);
	for (size_t i = 0; i < s->n_pending; i++) {
		const struct delivery *d = &s->pending[i];

		note_attendance(s, d);
		log_notice("%s to %s for %s: discarded (--discard-changes)", d->message,
			   d->p->email, target_uid(d));
	}
	if (!state_commit(s->st))
		s->broken = true;
	s->n_pending = 0;
}

/* Gathers what the planner says of one participant; acted on once its
 * read transaction is over (writes do not belong inside it). */
static void on_delivery(const struct delivery *d, void *arg)
{
	struct sender *s = arg;
	bool held = d->skip && strcmp(d->skip, "held") == 0;

	retry_seen(s, d);
	if (held && !d->rule)
		s->stats->held++;
	if (s->discard) {
		/* Nothing goes: only what is held is taken as done. */
		if (held && !d->rule) {
			s->pending = xgrow(s->pending, &s->cap_pending, s->n_pending,
					   sizeof(*s->pending));
			s->pending[s->n_pending++] = *d;
		}
		return;
	}
	if (d->skip) {
		/* Notices follow the participant's current state, what is not
		 * owed may be later, and what is held waits for release: none of
		 * these is final. */
		if (!d->rule || !d->oid[0] || d->trigger > s->now || strcmp(d->skip, "held") == 0)
			return;
		/* Superseded only once the one that supersedes it goes. */
		if (d->due > s->now && strcmp(d->skip, "superseded") == 0)
			return;
	} else if (d->due > s->now) {
		note_next(s->stats, d);
		/* A notice released at night goes when quiet hours end. */
		if (!releases(s, d))
			return;
	}
	s->pending = xgrow(s->pending, &s->cap_pending, s->n_pending, sizeof(*s->pending));
	s->pending[s->n_pending++] = *d;
}

/* Every obligation of the participant that holds in this pass. */
static void on_owed(const struct delivery *d, void *arg)
{
	struct owed_set *o = &((struct sender *)arg)->owed;

	o->items = xgrow(o->items, &o->cap, o->n, sizeof(*o->items));
	o->items[o->n].oid = xstrdup(d->oid);
	o->items[o->n++].since = d->owed_fresh ? d->owed_since : 0;
	if (d->owed_fresh)
		o->fresh++;
}

/* Keeps the moment each obligation became owed: records those that hold
 * from now, and forgets those that stopped holding (if they hold again,
 * that is a new moment). Written only when something changed: recorded
 * are `stored` rows, of which n - fresh still hold. */
static void record_owed(struct sender *s, const struct participant *p, long stored)
{
	struct owed_set *o = &s->owed;

	if (o->fresh || stored != (long)(o->n - o->fresh)) {
		char **keep = xcalloc(o->n ? o->n : 1, sizeof(*keep));

		state_begin_light(s->st);
		for (size_t i = 0; i < o->n; i++) {
			keep[i] = o->items[i].oid;
			if (o->items[i].since)
				state_owed_put(s->st, keep[i], p->email, o->items[i].since);
		}
		state_owed_prune(s->st, p->email, keep, o->n);
		if (!state_commit(s->st))
			s->broken = true;
		free(keep);
	}
	for (size_t i = 0; i < o->n; i++)
		free(o->items[i].oid);
	o->n = o->fresh = 0;
}

static void plan_one(const struct participant *p, void *arg)
{
	struct sender *s = arg;
	long stored;

	if (s->stopped || s->broken)
		return;
	/* The planner's reads for one participant in one snapshot: one lock
	 * round instead of one per query. */
	state_begin_read(s->st);
	plan_participant(s->ctx, p, on_delivery, s);
	stored = state_owed_count(s->st, p->email);
	state_commit(s->st);
	record_owed(s, p, stored);
	if (s->discard) {
		discard_held(s);
		return;
	}
	for (size_t i = 0; i < s->n_pending; i++) {
		const struct delivery *d = &s->pending[i];
		if (d->skip) {
			record_skip(s, d);
			continue;
		}
		/* --release-changes lets a held notice go for good: it may still
		 * wait for quiet hours or a retry, in a later run. */
		if (releases(s, d))
			state_release_notice(s->st, d->key);
		if (d->due > s->now)
			continue;
		s->batch = xgrow(s->batch, &s->cap_batch, s->n_batch, sizeof(*s->batch));
		s->batch[s->n_batch++] = *d;
	}
	s->n_pending = 0;
	if (s->n_batch >= CLAIM_BATCH)
		flush_batch(s);
	stop_now(s);
}

static void page_done(void *arg)
{
	flush_batch(arg);
}

/* A participant gone from the registrations lives for this call only. */
static void plan_removed(const struct participant *p, void *arg)
{
	plan_one(p, arg);
	flush_batch(arg);
}

/* No rule makes a manual send again: its retries come from the ledger. */
static void retry_one_manual(struct sender *s, const struct delivery_row *row)
{
	struct participant p;
	struct delivery d = {.message = row->message, .offset = -1, .trigger = s->now,
			     .due = s->now};
	const char *gone = NULL;
	char seq[16];
	struct delivery_row claim;

	if (!reg_find(s->pg->reg, row->email, &p)) {
		gone = "the participant is no longer registered";
	} else {
		d.p = &p;
		d.session = calendar_session(s->pg->cal, row->target);
		d.deadline = d.session ? NULL : calendar_deadline(s->pg->cal, row->target);
		if (p.status == PS_CANCELLED)
			gone = "the participant cancelled";
		else if (!d.session && !d.deadline && !str_eq(row->target, "-"))
			gone = "its session or deadline is gone";
		else if ((d.session && d.session->start <= s->now) ||
			 (d.deadline && d.deadline->due <= s->now))
			gone = "its session began or its deadline passed";
		else if (d.session && d.session->cancelled && !str_eq(row->message, "cancel"))
			gone = "its session was cancelled";
	}
	if (gone) {
		char *why = xasprintf("gave up: %s (last: %s)", gone, row->detail ? row->detail : "-");
		state_delivery_mark(s->st, row->key, DS_SKIPPED, why, 0, s->now);
		log_warn("%s: %s", row->key, why);
		free(why);
	} else {
		/* ...|SEQUENCE, or ...|SEQUENCE|forced@TIME for a forced one. */
		key_field_from_end(row->key, 0, seq, sizeof(seq));
		if (strncmp(seq, "forced@", 7) == 0)
			key_field_from_end(row->key, 1, seq, sizeof(seq));
		d.sequence = atoi(seq);
		time_t after = plan_after_quiet(s->pg->cfg, s->now);

		snprintf(d.key, sizeof(d.key), "%s", row->key);
		row_of(&d, &claim);
		claim.rule = "manual";
		/* A retry is the daemon's doing, not the administrator's: it
		 * keeps quiet hours. */
		if (after != s->now)
			state_delivery_mark(s->st, row->key, row->state, row->detail, after, s->now);
		else if (state_delivery_claim(s->st, &claim, s->now, STALE_CLAIM))
			deliver(s, &d, p.email, true);
	}
	if (d.p)
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
static void retry_manual(struct sender *s)
{
	struct retry_set *r = &s->retry;

	state_delivery_each(s->st, DS_TRANSIENT, collect_manual, s);
	state_delivery_each(s->st, DS_UNKNOWN, collect_manual, s);
	for (size_t i = 0; i < r->n; i++) {
		struct delivery_row row;

		if (!stop_now(s) && !s->paused && !s->broken &&
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

bool send_due(struct sender *s, time_t now, struct send_stats *stats)
{
	struct plan_ctx ctx;

	memset(stats, 0, sizeof(*stats));
	s->now = now;
	s->stats = stats;
	s->stopped = s->broken = s->paused = false;
	/* Claims left by a kallad that died: the server may have those. */
	if (state_recover_orphans(s->st, now, STALE_CLAIM) > 0)
		log_warn("claims of a kallad that stopped mid-send are retried as unknown outcomes");
	if (!programme_sync(s->pg, s->st, s->release ? (s->release_uid ? s->release_uid : "") : NULL,
			    &stats->removals_held)) {
		stats->stale = true;
		return true;
	}
	programme_plan_ctx(s->pg, s->st, now, &ctx);
	ctx.release_changes = s->release;
	ctx.release_session = s->release_uid;
	ctx.owed = on_owed;
	s->ctx = &ctx;
	retry_begin(s);
	if (!reg_each(s->pg->reg, plan_one, page_done, s))
		s->broken = true;
	flush_batch(s);
	/* Those whose rows are gone: a cancel for what their calendars hold. */
	if (!s->broken && !s->stopped)
		stats->removed = programme_each_removed(s->pg, s->st, plan_removed, s,
							&ctx.removed_held);
	stats->removed_held = ctx.removed_held;
	if (s->discard && !s->broken && !s->stopped)
		changes_accept_removals(s->pg->cal, s->st);
	retry_end(s, !s->broken && !s->stopped);
	if (!s->broken && !s->stopped && state_legacy_known(s->st))
		state_legacy_known_done(s->st); /* every obligation now has its moment */
	s->ctx = NULL;
	programme_plan_done(&ctx);
	if (!s->broken && !s->stopped)
		retry_manual(s);
	if (s->progress && (stats->sent || stats->failed || stats->transient))
		fputc('\n', stderr);
	return !s->broken;
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
	if (ses) {
		struct attendance a;
		bool had = state_attendance(s->st, p->email, ses->uid, &a);

		/* A REQUEST would put a cancelled session back in calendars. */
		if (ses->cancelled && !cancel)
			return "its session is cancelled: only a cancel can be sent";
		if (ses->start <= s->now && !m->force)
			return "its session has begun (--force sends it all the same)";
		if (str_eq(m->message, "update") && (!had || a.content >= ses->sequence) &&
		    !m->force)
			return "the session has not changed since their invitation "
			       "(--force sends it all the same)";
		/* As the planner would: a cancel or an update outranks what they
		 * hold; any other REQUEST matches it. */
		if (cancel || str_eq(m->message, "update"))
			d->sequence = had ? max_of(ses->sequence, a.sequence + 1) : ses->sequence;
		else
			d->sequence = had ? max_of(ses->sequence, a.sequence) : ses->sequence;
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

char *send_build_message(struct sender *s, const struct delivery *d, size_t *len,
			 struct errlist *errs)
{
	struct message_req req = {.message = d->message, .p = d->p, .session = d->session,
				  .deadline = d->deadline, .sequence = d->sequence, .key = d->key,
				  .now = s->now};

	return message_build(s->pg->cfg, s->pg->cal, s->pg->reg, s->pg->tpl, &req, len, errs);
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

static bool manual_one(struct sender *s, const struct manual *m, const struct participant *p)
{
	struct delivery d;
	struct delivery_row row;
	const char *why = send_manual_delivery(s, m, p, &d), *what;
	bool claimed;

	if (why) {
		fprintf(stderr, "kallad: %s to %s refused: %s\n", m->message, p->email, why);
		return false;
	}
	if (m->dry_run) {
		/* What the real run would do, from the same ledger. */
		what = ledger_says(s, d.key);
		if (what && strcmp(what, "is waiting for a retry") != 0) {
			printf("%s %s to %s\n", strcmp(what, "was already sent") == 0 ? "already sent"
										: "would refuse",
			       m->message, p->email);
			return false;
		}
		printf("would send %s to %s\n", m->message, p->email);
		return true;
	}
	if (m->test_to) {
		deliver(s, &d, m->test_to, false);
		return true;
	}
	row_of(&d, &row);
	row.rule = "manual";
	/* An invitation or update by hand and the daemon's never carry one
	 * transition twice: checked and claimed under one write lock. */
	state_begin(s->st);
	if (!m->force && d.session &&
	    (str_eq(m->message, "invite") || str_eq(m->message, "update")) &&
	    transition_taken(s, &d, d.key)) {
		state_rollback(s->st);
		fprintf(stderr, "kallad: %s to %s refused: their calendar already got (or is "
			"getting) SEQUENCE %d of this session (--force sends it all the same)\n",
			m->message, p->email, d.sequence);
		return false;
	}
	claimed = state_delivery_claim(s->st, &row, s->now, STALE_CLAIM);
	if (!state_commit(s->st))
		claimed = false;
	if (!claimed) {
		what = ledger_says(s, d.key);
		fprintf(stderr, "kallad: %s to %s %s (use --force to send it anew)\n", m->message,
			p->email, what ? what : "is being sent by another kallad");
		return false;
	}
	deliver(s, &d, p->email, true);
	return true;
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
}

void send_manual_each(const struct participant *p, void *arg)
{
	struct sender *s = arg;
	const struct manual *m = s->manual;

	if (stop_now(s))
		return;
	if (p->status == PS_CANCELLED) {
		/* Never anything to someone who cancelled, even by hand. */
		if (!m->all) {
			fprintf(stderr, "kallad: %s has cancelled: nothing sent\n", p->email);
			s->manual_ok = false;
		}
		return;
	}
	if (m->all && m->session && reg_is_absent(s->pg->reg, p->email, m->session->uid))
		return;
	if (!manual_one(s, m, p))
		s->manual_ok = false;
}

bool send_manual_end(struct sender *s)
{
	const struct send_stats *st = s->stats;

	if (s->progress && st->sent + st->failed + st->transient + st->unknown > 1)
		fputc('\n', stderr);
	return s->manual_ok && !st->failed && !st->transient && !st->unknown;
}
