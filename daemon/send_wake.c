/* send_wake.c: the daemon's wake-ups without planning everyone again.
 *
 * A full pass (send_due) plans every participant and leaves, in a due
 * index (dueindex.h), for each of them the next instant at which the
 * planner's word on them may change: any trigger, due time or retry still
 * ahead, the start of the session or deadline a delivery is about and
 * min-lead before it. Between those instants nothing the planner reads
 * changes for them but the time, so a wake-up plans only the participants
 * whose instant has come (and those whose retry in the ledger has), sends
 * what is due and files them again. What is sent is what a full pass
 * would send at that moment: the index is derived from the planner's own
 * output, and thrown away whenever one of its inputs changes (a reload of
 * the configuration, calendar or registrations; not of the templates,
 * which the planner does not read; another
 * kallad's change of the ledger, SIGUSR1; a jump of the clock), when a
 * pass stops half-way, and when a message is held back without a claim. */
#include "send_internal.h"

#include "backoff.h"
#include "clock.h"
#include "regdigest.h"
#include "message.h"

#include "log.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

void send_keep_due_index(struct sender *s)
{
	if (!s->ix)
		s->ix = dueindex_new(); /* NULL: every wake plans everyone */
	s->ix_valid = false;
}

void send_inputs_changed(struct sender *s)
{
	s->ix_valid = false;
}

void wake_invalidate(struct sender *s)
{
	s->ix_valid = false;
}

struct changed {
	struct sender *s;
	time_t now;
	long n;
};

static void wake_changed(const char *email, void *arg)
{
	struct changed *c = arg;

	dueindex_lower(c->s->ix, email, c->now);
	c->n++;
}

void send_set_programme_registrations(struct sender *s, struct programme *pg,
				      struct regdigest *before, struct regdigest *after,
				      const char *what)
{
	struct changed c = {.s = s, .now = clock_now()};
	bool valid = s->ix && s->ix_valid;

	send_set_programme(s, pg); /* the index is not valid... */
	if (!valid)
		return;
	dueindex_begin(s->ix);
	valid = regdigest_diff(before, after, wake_changed, &c);
	dueindex_commit(s->ix);
	/* ... unless the registrations differ only by who is new or changed:
	 * those are planned at the next wake, at their own instant. */
	s->ix_valid = valid && dueindex_ok(s->ix);
	if (s->ix_valid && c.n == 0)
		log_info("%s changed: nobody is planned again", what);
	else if (s->ix_valid)
		log_info("%s changed: %ld participant%s new or changed", what, c.n,
			 c.n == 1 ? "" : "s");
	else
		log_info("%s changed: planning everyone again", what);
}

static void lower(time_t *wake, time_t t)
{
	if (!*wake || t < *wake)
		*wake = t;
}

void wake_note(struct sender *s, const struct delivery *d)
{
	struct due_entry *e = &s->entry;
	time_t event = plan_event(d);
	time_t at[] = {d->trigger, d->due, event,
		       event ? plan_lead_start(s->pg->cfg, event) : 0};

	if (!s->ix)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(at); i++)
		if (at[i] > s->now)
			lower(&e->wake, at[i]);
	if (d->skip && strcmp(d->skip, "held") == 0 && !d->rule)
		e->held++;
	if (d->skip || d->due <= s->now)
		return;
	if (!e->due || d->due < e->due) {
		e->due = d->due;
		e->message = d->message;
		e->target = target_uid(d);
		e->count = 1;
	} else if (d->due == e->due && str_eq(d->message, e->message) &&
		   str_eq(target_uid(d), e->target)) {
		e->count++;
	}
}

void wake_put(struct sender *s, const struct participant *p)
{
	if (!s->ix)
		return;
	s->entry.removed = p->removed;
	dueindex_put(s->ix, p->email, &s->entry);
	memset(&s->entry, 0, sizeof(s->entry));
}

void wake_retry_at(struct sender *s, const struct delivery *d, time_t next)
{
	/* Filed when the participant was planned, before the send: the new
	 * instant is added to it. */
	if (s->ix)
		dueindex_lower(s->ix, d->p->email, next > s->now ? next : s->now);
}

void wake_full_begin(struct sender *s)
{
	if (!s->ix)
		return;
	s->ix_valid = false;
	dueindex_clear(s->ix);
	dueindex_begin(s->ix);
	memset(&s->entry, 0, sizeof(s->entry));
}

/* What the daemon says of the next due delivery, from the index: all the
 * programme's, not only those planned in this wake. */
static void next_from_index(struct sender *s, struct send_stats *st)
{
	static const char *const notices[] = {"invite", "update", "cancel"};
	char *message, *target;
	long count;
	time_t due = dueindex_next_due(s->ix, &message, &target, &count);

	memset(&st->next, 0, sizeof(st->next));
	st->next_due = due;
	st->next_count = count;
	if (due) {
		for (size_t i = 0; i < ARRAY_SIZE(notices); i++)
			if (str_eq(message, notices[i]))
				st->next.message = notices[i];
		for (size_t i = 0; !st->next.message && i < s->pg->cfg->n_rules; i++)
			if (str_eq(message, s->pg->cfg->rules[i].message))
				st->next.message = s->pg->cfg->rules[i].message;
		if (!st->next.message)
			st->next.message = "-";
		st->next.session = calendar_session(s->pg->cal, target);
		st->next.deadline = st->next.session ? NULL : calendar_deadline(s->pg->cal, target);
	}
	free(message);
	free(target);
	st->held = dueindex_held(s->ix);
	st->next_wake = dueindex_next_wake(s->ix);
}

void wake_full_end(struct sender *s, bool complete)
{
	if (!s->ix)
		return;
	dueindex_commit(s->ix);
	s->ix_valid = complete && dueindex_ok(s->ix);
	s->removals_held_last = s->stats->removals_held;
	s->removed_last = s->stats->removed;
	s->removed_held_last = s->stats->removed_held;
	s->stats->next_wake = dueindex_next_wake(s->ix);
}

struct woken {
	char **emails;
	size_t n, cap;
	time_t now;
};

/* A planner's delivery whose retry has come: its participant is planned
 * again (a manual send's retry is retry_manual's). */
static void retry_woken(const struct delivery_row *row, void *arg)
{
	struct woken *w = arg;

	if (is_manual(row) || row->next_attempt > w->now)
		return;
	w->emails = xgrow(w->emails, &w->cap, w->n, sizeof(*w->emails));
	w->emails[w->n++] = xstrdup(row->email);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A pass over everyone, said in the log with how long it took. */
static bool full_pass(struct sender *s, time_t now, struct send_stats *stats)
{
	struct timespec t0, t1;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok = send_due(s, now, stats);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!stats->stale)
		log_info("planned everyone: %zu participants in %.1f s", s->planned,
			 (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ok;
}

bool send_due_wake(struct sender *s, time_t now, struct send_stats *stats)
{
	struct woken w = {.now = now};
	struct participant *ps;
	size_t n_ps = 0;
	struct plan_ctx ctx;
	bool removed = false;
	char **due;

	if (!s->ix || !s->ix_valid)
		return full_pass(s, now, stats);
	memset(stats, 0, sizeof(*stats));
	s->now = now;
	s->stats = stats;
	s->stopped = s->broken = false;
	backoff_begin(s->bo, now, true);
	if (state_recover_orphans(s->st, now, STALE_CLAIM) > 0) {
		log_warn("claims of a kallad that stopped mid-send are retried as unknown outcomes");
		return full_pass(s, now, stats);
	}
	if (!programme_sync(s->pg, s->st, NULL, &stats->removals_held)) {
		stats->stale = true;
		return true;
	}
	due = dueindex_woken(s->ix, now, &removed);
	for (size_t i = 0; due[i]; i++) {
		w.emails = xgrow(w.emails, &w.cap, w.n, sizeof(*w.emails));
		w.emails[w.n++] = due[i];
	}
	free(due);
	state_delivery_each(s->st, DS_TRANSIENT, retry_woken, &w);
	state_delivery_each(s->st, DS_UNKNOWN, retry_woken, &w);
	if (removed || !dueindex_ok(s->ix)) {
		/* Those gone from the registrations are planned by a full pass. */
		for (size_t i = 0; i < w.n; i++)
			free(w.emails[i]);
		free(w.emails);
		return full_pass(s, now, stats);
	}
	if (w.n)
		qsort(w.emails, w.n, sizeof(*w.emails), str_cmp);
	programme_plan_ctx(s->pg, s->st, now, &ctx);
	ctx.owed = on_owed;
	s->ctx = &ctx;
	/* The batch points into these participants: they live to its end. */
	ps = xcalloc(w.n ? w.n : 1, sizeof(*ps));
	dueindex_begin(s->ix);
	for (size_t i = 0; i < w.n; i++) {
		if (i && str_eq(w.emails[i], w.emails[i - 1]))
			continue;
		int found = reg_lookup(s->pg->reg, w.emails[i], &ps[n_ps]);

		/* Not read (the database locked past the busy timeout): nobody
		 * is filed as gone for it; the pass fails, and the next plans
		 * everyone (the daemon tries again in a minute). */
		if (found < 0) {
			s->broken = true;
			break;
		}
		if (!found) {
			dueindex_put(s->ix, w.emails[i], &(struct due_entry){0});
			continue;
		}
		plan_one(&ps[n_ps++], s);
	}
	flush_batch_landed(s);
	dueindex_commit(s->ix);
	log_info("woke at %lld: planned %zu participants", (long long)now, n_ps);
	s->ctx = NULL;
	programme_plan_done(&ctx);
	for (size_t i = 0; i < n_ps; i++)
		reg_participant_clear(&ps[i]);
	free(ps);
	for (size_t i = 0; i < w.n; i++)
		free(w.emails[i]);
	free(w.emails);
	if (!s->broken && !s->stopped)
		retry_manual(s);
	if (s->broken || s->stopped || !dueindex_ok(s->ix))
		s->ix_valid = false;
	next_from_index(s, stats);
	stats->removals_held = s->removals_held_last > stats->removals_held
				       ? s->removals_held_last
				       : stats->removals_held;
	stats->removed = s->removed_last;
	stats->removed_held = s->removed_held_last;
	note_relay(s);
	message_cache_free(s->msg_cache); /* the pass's shared values */
	s->msg_cache = NULL;
	return !s->broken;
}
