#include "send_internal.h"

#include "backoff.h"
#include "changes.h"
#include "clock.h"
#include "describe.h"
#include "log.h"
#include "message.h"
#include "met.h"
#include "tz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tick(void *arg);

struct sender *send_new(struct programme *pg, struct state *st, struct transport *tr)
{
	struct sender *s = xcalloc(1, sizeof(*s));

	s->pg = pg;
	s->st = st;
	s->tr = tr;
	s->bo = backoff_new(pg->cfg, st);
	warn_organizer(s);
	if (tr)
		transport_set_tick(tr, tick, s);
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
	dueindex_free(s->ix);
	message_cache_free(s->msg_cache);
	free(s->held_why);
	free(s->org_uid);
	free(s->org);
	free(s->id_salt);
	free(s->id_from);
	backoff_free(s->bo);
	free(s);
}

void send_set_programme(struct sender *s, struct programme *pg)
{
	s->pg = pg;
	message_cache_free(s->msg_cache);
	s->msg_cache = NULL;
	wake_invalidate(s);
	backoff_set_config(s->bo, pg->cfg);
	free(s->org_uid);
	s->org_uid = NULL;
	warn_organizer(s);
}

void send_set_transport(struct sender *s, struct transport *tr)
{
	s->tr = tr;
	if (tr)
		transport_set_tick(tr, tick, s);
}

/* While a reply is awaited: asked too, so the watchdog is fed and a
 * SIGTERM heard; the message in flight is finished all the same. */
static void tick(void *arg)
{
	struct sender *s = arg;

	/* No write lock held across a long wait for a server. */
	ledger_commit(s);
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

const char *target_uid(const struct delivery *d)
{
	return d->session ? d->session->uid : d->deadline ? d->deadline->uid : "-";
}

void row_of(const struct delivery *d, struct delivery_row *row)
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

bool stop_now(struct sender *s)
{
	if (!s->stopped && s->should_stop && s->should_stop(s->stop_arg))
		s->stopped = true;
	return s->stopped;
}

/* True if a message bringing the participant's calendar to SEQUENCE seq of
 * the session (for a REQUEST an invite or an update, for a CANCEL a cancel;
 * the planner's or one by hand) is claimed, sent or may have gone under a
 * key other than `except`: that transition is taken. Asked under a claim's
 * write lock. */
bool transition_taken(struct sender *s, const struct delivery *d, const char *except)
{
	static const char *const requests[] = {"invite", "update", NULL},
				 *const cancels[] = {"cancel", NULL};
	static const char *const rules[] = {NULL, "manual"};
	const char *const *messages = str_eq(d->message, "cancel") ? cancels : requests;
	char key[PLAN_KEY_MAX];

	for (size_t m = 0; messages[m]; m++)
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
	had = programme_attendance(s->pg->cfg, s->st, d->p->email, d->session, &a);
	if (str_eq(d->message, "invite"))
		return (!had || !a.invited) && !transition_taken(s, d, d->key);
	if (str_eq(d->message, "update"))
		return had && a.invited && a.content < d->session->sequence &&
		       !transition_taken(s, d, d->key);
	if (str_eq(d->message, "cancel"))
		return had && a.invited && !transition_taken(s, d, d->key);
	return true;
}

/* The claimed delivery of the batch's first n to start next (n: none
 * left): the first whose participant has no message in the air, so that
 * others' messages fill the free connections while a participant's go one
 * after another, in the order planned; else the first left, and *waits:
 * it would wait for the answer to the one before it. todo[] holds what is
 * still to start, from *first on. */
static size_t next_to_start(const struct sender *s, const bool *todo, size_t n, size_t *first,
			    bool *waits)
{
	size_t pick = n;

	*waits = false;
	while (*first < n && !todo[*first])
		(*first)++;
	/* Over one connection everything goes in the order planned. */
	if (*first == n || !s->tr || transport_connections(s->tr) < 2)
		return *first;
	for (size_t i = *first; i < n; i++) {
		if (!todo[i])
			continue;
		if (!in_flight_to(s, s->batch[i].p->email))
			return i;
		if (pick == n)
			pick = i;
	}
	*waits = pick < n;
	return pick;
}

/* Keeps the claimed deliveries of the batch's first n still to start
 * (todo[]) at its front, in order, for later: the deliveries planned and
 * not claimed yet (from n on) follow them. */
static void carry(struct sender *s, const bool *todo, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		if (k != i)
			s->batch[k] = s->batch[i];
		k++;
	}
	if (k != n)
		memmove(&s->batch[k], &s->batch[n], (s->n_batch - n) * sizeof(*s->batch));
	s->n_batch -= n - k;
	s->n_carried = k;
}

/* Whether a connection is free for another message now, once the
 * outcomes already in are taken (which commits them). */
static bool room_now(struct sender *s)
{
	if (!s->tr)
		return true;
	if (transport_ready(s->tr))
		land_ready(s);
	return transport_can_start(s->tr);
}

/* Starts the claimed deliveries of the batch's first n (todo[]). final:
 * the participants they point into go next (the end of a page, of a wake,
 * of the pass): everything starts now, in order, waiting for connections
 * and mailboxes as it must. Else, while CARRY_MAX or fewer are left and
 * no spacing holds the pace (backoff_spaced), nothing waits: what finds no
 * free connection, or would wait for another message to the same address,
 * is carried (carry) and started while the next participants are planned
 * (send_pump). Under spacing a claim waits for its turn as before: a
 * deeper queue would only make the last claims of a batch older. */
static void start_claimed(struct sender *s, bool *todo, size_t n, bool final)
{
	const char *why = NULL;
	time_t next = s->now;
	bool waits;
	size_t left = 0;

	for (size_t i = 0; i < n; i++)
		left += todo[i];
	/* [smtp] connections in flight: the next message is built while the
	 * server answers those before. Time moves on during a long batch:
	 * claims, outcomes and quiet hours read the clock as they go. */
	for (size_t first = 0, i; (i = next_to_start(s, todo, n, &first, &waits)) < n;) {
		const struct delivery *d = &s->batch[i];
		struct flight cur = {.d = d, .rcpt = d->p->email, .record = true};

		/* Only messages to addresses in the air are left: the next
		 * participants are planned meanwhile, or, at the end, the next
		 * answer is awaited and the choice made again. */
		if (waits) {
			if (!final)
				break;
			land_next(s);
			continue;
		}
		s->now = clock_now();
		why = s->broken ? NULL : held_back(s, &next);
		/* Carried only while the next participants may go before it
		 * is claimed long (no spacing); what is held back now is
		 * released now, before a later message to its mailbox could
		 * start (the outcomes room_now() lands may hold it back). */
		if (!final && !s->broken && !why && left <= CARRY_MAX &&
		    !backoff_spaced(s->bo) && !room_now(s)) {
			s->now = clock_now();
			if (!s->broken && !(why = held_back(s, &next)))
				break;
		}
		todo[i] = false;
		left--;
		if (s->broken || why) {
			hold(s, d, why, next);
			continue;
		}
		if (!build(s, &cur))
			continue;
		make_room(s, cur.rcpt);
		/* An outcome just landed may have suspended the relay: no
		 * connection takes a new message then. */
		if (s->broken || (why = held_back(s, &next))) {
			hold(s, d, why, next);
			free(cur.msg);
			continue;
		}
		take_off(s, &cur);
	}
	carry(s, todo, n);
}

/* Claims the batch and starts its messages (start_claimed). The first
 * n_carried are claimed already (carry). */
static void flush(struct sender *s, bool final)
{
	const char *why;
	size_t carried = s->n_carried;
	bool *todo;
	time_t next;

	if (!s->n_batch)
		return;
	s->n_carried = 0;
	/* The outcomes of the batch before that are in (a fault of the relay
	 * among them holds this one back), and no transaction of them is
	 * open under the claims'. */
	land_ready(s);
	/* Nothing is claimed that cannot go now: it stays for the next pass. */
	s->now = clock_now();
	why = held_back(s, &next);
	if (s->broken || why) {
		/* Left unclaimed, due and unfiled: the next wake plans everyone;
		 * what was carried goes back, with why. */
		wake_invalidate(s);
		for (size_t i = 0; i < carried; i++)
			hold(s, &s->batch[i], why, next);
		if (backoff_suspended(s->bo, s->now, NULL))
			s->stats->waiting += (long)(s->n_batch - carried);
		s->n_batch = 0;
		return;
	}
	/* todo[i]: claimed, and not started yet. */
	todo = xcalloc(s->n_batch, sizeof(*todo));
	for (size_t i = 0; i < carried; i++)
		todo[i] = true;
	if (s->n_batch > carried) {
		if (state_begin(s->st)) {
			for (size_t i = carried; i < s->n_batch; i++) {
				struct delivery_row row;
				row_of(&s->batch[i], &row);
				todo[i] = still_needed(s, &s->batch[i]) &&
					  claim(s, &s->batch[i], &row);
			}
		}
		if (!state_commit(s->st)) {
			s->broken = true;
			for (size_t i = 0; i < carried; i++)
				hold(s, &s->batch[i], NULL, s->now);
			s->n_batch = 0;
			free(todo);
			return;
		}
	}
	for (size_t i = carried; i < s->n_batch; i++) {
		if (!todo[i]) {
			log_debug("%s: held by another process or not yet due", s->batch[i].key);
			wake_invalidate(s);
		}
	}
	start_claimed(s, todo, s->n_batch, final);
	/* The last messages stay in the air while the next participants are
	 * planned; their outcomes land with the next batch, or at the end of
	 * the page (flush_batch_landed). */
	ledger_commit(s);
	free(todo);
}

/* Starts carried messages on the connections that are free, waiting for
 * nothing: between two participants planned, so that planning the next
 * ones overlaps sending the claimed ones. */
static void send_pump(struct sender *s)
{
	bool todo[CARRY_MAX + CLAIM_BATCH];
	size_t n = s->n_carried;

	if (!n || n > ARRAY_SIZE(todo) || s->broken || backoff_spaced(s->bo) || !room_now(s))
		return;
	for (size_t i = 0; i < n; i++)
		todo[i] = true;
	start_claimed(s, todo, n, false);
}

void flush_batch(struct sender *s)
{
	flush(s, false);
}

void flush_batch_landed(struct sender *s)
{
	flush(s, true);
	land_all(s);
}

static void record_skip(struct sender *s, const struct delivery *d)
{
	struct delivery_row row, old;

	row_of(d, &row);
	row.due = d->trigger;
	ledger_begin(s);
	if (state_delivery_get(s->st, d->key, &old)) {
		/* A retry that stopped meaning anything ends here, with why. */
		if (old.state == DS_TRANSIENT || old.state == DS_UNKNOWN) {
			char *why = xasprintf("gave up: %s (last: %s)", d->skip,
					      old.detail ? old.detail : "-");
			state_delivery_mark(s->st, d->key, DS_SKIPPED, why, 0, s->now);
			describe_log(LOG_WARNING, d, why);
			free(why);
		}
		state_row_free(&old);
		return;
	}
	state_delivery_skip(s->st, &row, d->skip, s->now);
	s->stats->skipped++;
	{
		char *why = xasprintf("skipped: %s", d->skip);
		describe_log(LOG_INFO, d, why);
		free(why);
	}
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

/* Superseded only once the one that supersedes it goes: until then it is
 * judged again each pass (if that one stops being owed, this one goes
 * after all), and a retry of it is not given up. */
bool superseded_waits(const struct sender *s, const struct delivery *d)
{
	return d->skip && strcmp(d->skip, "superseded") == 0 &&
	       (d->due > s->now || d->superseder_due > s->now);
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
	ledger_begin(s);
	for (size_t i = 0; i < s->n_pending; i++) {
		const struct delivery *d = &s->pending[i];

		note_attendance(s, d);
		keep_copy(s, d);
		describe_log(LOG_NOTICE, d, "discarded (--discard-changes)");
	}
	ledger_commit(s);
	s->n_pending = 0;
}

/* Gathers what the planner says of one participant; acted on once its
 * read transaction is over (writes do not belong inside it). */
static void on_delivery(const struct delivery *d, void *arg)
{
	struct sender *s = arg;
	bool held = d->skip && strcmp(d->skip, "held") == 0;

	wake_note(s, d);
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
		if (superseded_waits(s, d))
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
void on_owed(const struct delivery *d, void *arg)
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
 * are `stored` rows, of which n - fresh still hold. In the pass's light
 * transaction: committed before any claim (flush_batch), so a delivery is
 * never claimed before the obligation it follows is recorded. */
static void record_owed(struct sender *s, const struct participant *p, long stored)
{
	struct owed_set *o = &s->owed;

	if (o->fresh || stored != (long)(o->n - o->fresh)) {
		char **keep = xcalloc(o->n ? o->n : 1, sizeof(*keep));

		ledger_begin(s);
		for (size_t i = 0; i < o->n; i++) {
			keep[i] = o->items[i].oid;
			if (o->items[i].since)
				state_owed_put(s->st, keep[i], p->email, o->items[i].since);
		}
		state_owed_prune(s->st, p->email, keep, o->n);
		free(keep);
	}
	for (size_t i = 0; i < o->n; i++)
		free(o->items[i].oid);
	o->n = o->fresh = 0;
}

void plan_one(const struct participant *p, void *arg)
{
	struct sender *s = arg;
	bool own_read = !s->tx_open;
	long stored;

	if (s->stopped || s->broken)
		return;
	s->planned++;
	/* The planner's reads for one participant in one snapshot: one lock
	 * round instead of one per query (or inside the light transaction,
	 * which sees its own writes). */
	if (own_read)
		state_begin_read(s->st);
	plan_participant(s->ctx, p, on_delivery, s);
	stored = state_owed_count(s->st, p->email);
	if (own_read)
		state_commit(s->st);
	wake_put(s, p);
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
		if (releases(s, d)) {
			ledger_begin(s);
			state_release_notice(s->st, d->key);
		}
		if (d->due > s->now)
			continue;
		s->batch = xgrow(s->batch, &s->cap_batch, s->n_batch, sizeof(*s->batch));
		s->batch[s->n_batch++] = *d;
	}
	s->n_pending = 0;
	if (s->n_batch - s->n_carried >= CLAIM_BATCH)
		flush_batch(s);
	else if (s->tx_open && ++s->tx_planned >= LEDGER_PARTICIPANTS)
		ledger_commit(s);
	if (!stop_now(s))
		send_pump(s);
}

/* The full pass: each participant is also noted as met, for the merges
 * after it (programme_each_removed, programme_forget_vanished). */
static void plan_met(const struct participant *p, void *arg)
{
	struct sender *s = arg;

	if (s->met)
		met_add(s->met, p->email);
	plan_one(p, arg);
}

static void page_done(void *arg)
{
	flush_batch_landed(arg);
}

/* A participant gone from the registrations lives for this call only. */
static void plan_removed(const struct participant *p, void *arg)
{
	plan_one(p, arg);
	flush_batch_landed(arg);
}

/* Tells the caller whether the relay is suspended, and since what. */
void note_relay(struct sender *s)
{
	time_t until;

	if (backoff_suspended(s->bo, clock_now(), &until)) {
		s->stats->relay_until = until;
		s->stats->relay_fault = backoff_fault(s->bo);
	}
}

bool send_due(struct sender *s, time_t now, struct send_stats *stats)
{
	struct plan_ctx ctx;

	memset(stats, 0, sizeof(*stats));
	s->now = now;
	s->stats = stats;
	s->stopped = s->broken = false;
	s->planned = 0;
	backoff_begin(s->bo, now, true);
	if (!send_salt_ready(s))
		return false;
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
	wake_full_begin(s);
	retry_begin(s);
	s->met = met_new(); /* NULL: programme_each_removed makes its own */
	if (!reg_each(s->pg->reg, plan_met, page_done, s))
		s->broken = true;
	flush_batch_landed(s);
	/* Those whose rows are gone: a cancel for what their calendars hold;
	 * then what is recorded of those who left without a session. */
	if (!s->broken && !s->stopped)
		stats->removed = programme_each_removed(s->pg, s->st, s->met, plan_removed, s,
							s->release && !s->release_uid,
							&ctx.removed_held, NULL);
	if (!s->broken && !s->stopped && s->met)
		programme_forget_vanished(s->pg, s->st, s->met);
	met_free(s->met);
	s->met = NULL;
	stats->removed_held = ctx.removed_held;
	wake_full_end(s, !s->broken && !s->stopped);
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
	note_relay(s);
	message_cache_free(s->msg_cache); /* the pass's shared values */
	s->msg_cache = NULL;
	return !s->broken;
}
