#include "plan.h"

#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool audience_has(enum audience a, enum pstatus s)
{
	switch (a) {
	case AUD_REGISTERED:
		return s == PS_REGISTERED;
	case AUD_INVITED:
		return s == PS_INVITED;
	case AUD_WAITLISTED:
		return s == PS_WAITLISTED;
	case AUD_ALL:
		return s != PS_CANCELLED;
	}
	return false;
}

static void offset_name(const struct offset *off, char *buf, size_t len)
{
	if (!off)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%d%c", off->amount, off->days ? 'd' : 'h');
}

void plan_key(char *out, size_t len, const char *message, const char *email, const char *uid,
	      const char *rule, const struct offset *off, int sequence)
{
	char offs[24], seq[16], addr[320];
	size_t i;

	/* The address is compared without case everywhere else too. */
	for (i = 0; email[i] && i < sizeof(addr) - 1; i++)
		addr[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
	addr[i] = '\0';
	offset_name(off, offs, sizeof(offs));
	if (sequence < 0)
		snprintf(seq, sizeof(seq), "-");
	else
		snprintf(seq, sizeof(seq), "%d", sequence);
	snprintf(out, len, "%s|%s|%s|%s|%s|%s", message, addr, uid, rule ? rule : "-", offs, seq);
}

static bool in_quiet(const struct config *cfg, int minute)
{
	int s = cfg->quiet_start, e = cfg->quiet_end;

	if (s < 0 || e < 0 || s == e)
		return false;
	if (s < e)
		return minute >= s && minute < e;
	return minute >= s || minute < e;
}

time_t plan_after_quiet(const struct config *cfg, time_t t)
{
	struct tm tm;
	int minute, day;

	if (!in_quiet(cfg, minute = tz_minute_of_day(t)))
		return t;
	tz_local(t, &tm);
	/* Inside a window that wraps midnight, before midnight: it ends tomorrow. */
	day = tm.tm_mday + (minute >= cfg->quiet_end ? 1 : 0);
	return tz_mktime(tm.tm_year + 1900, tm.tm_mon + 1, day, cfg->quiet_end / 60,
			 cfg->quiet_end % 60, 0);
}

/* When a rule's offset falls for an event at `event`. Day offsets count
 * local calendar days and keep the event's own wall-clock time unless the
 * rule says `at`; hour offsets are elapsed time. */
static time_t trigger_time(const struct rule *r, const struct offset *off, time_t event,
			   bool date_only)
{
	struct tm tm;

	if (!off->days)
		return event - (time_t)off->amount * 3600;
	/* A date-only deadline is the whole of its day: count from that day. */
	tz_local(date_only ? event - 1 : event, &tm);
	if (date_only)
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (r->at >= 0) {
		tm.tm_hour = r->at / 60;
		tm.tm_min = r->at % 60;
		tm.tm_sec = 0;
	}
	return tz_mktime(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday - off->amount, tm.tm_hour,
			 tm.tm_min, tm.tm_sec);
}

static time_t latest(time_t a, time_t b)
{
	return a > b ? a : b;
}

/* Everything one delivery needs to be judged, gathered by the callers. */
struct judge {
	const struct plan_ctx *ctx;
	struct delivery *d;
	time_t event;   /* session start or deadline: nothing goes after it */
	time_t known;   /* when kallad first knew all that the delivery hangs on */
	bool reminder;  /* min-lead and late registration apply */
};

static void judge(const struct judge *j)
{
	const struct plan_ctx *ctx = j->ctx;
	const struct config *cfg = ctx->cfg;
	struct delivery *d = j->d;
	time_t registered = d->p->registered_at;

	d->skip = NULL;
	if (d->session && d->session->cancelled) {
		d->skip = "session-cancelled";
	} else if (d->session && reg_is_absent(ctx->reg, d->p->email, d->session->uid)) {
		d->skip = "absent";
	} else if (j->reminder && d->p->status == PS_REGISTERED && registered > d->trigger &&
		   !cfg->late_send) {
		d->skip = "late-registration";
	} else if (d->trigger < j->known && !(j->reminder && cfg->late_send &&
						d->p->status == PS_REGISTERED &&
						registered > d->trigger)) {
		d->skip = "before-known";
	}
	/* Due now at the earliest: a trigger missed while stopped is caught up. */
	d->due = plan_after_quiet(cfg, latest(d->trigger, ctx->now));
	if (d->skip)
		return;
	if (d->due >= j->event)
		d->skip = "event-passed";
	else if (j->reminder && cfg->min_lead > 0 && d->due > j->event - cfg->min_lead)
		d->skip = "min-lead";
}

static time_t known_max(const struct plan_ctx *ctx, time_t a, const char *kind, const char *id)
{
	return latest(a, ctx->mem.known_since(ctx->mem.opaque, kind, id, ctx->now));
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

/* The participant's calendar should hold the session: registered, the
 * session neither cancelled nor begun, and not one they will miss. */
static bool should_attend(const struct plan_ctx *ctx, const struct participant *p,
			  const struct session *s)
{
	return p->status == PS_REGISTERED && !s->cancelled && s->start > ctx->now &&
	       !reg_is_absent(ctx->reg, p->email, s->uid);
}

/* What one participant's calendar holds of one session, read once per
 * participant and pass. */
struct held {
	bool had;
	struct attendance a;
	int seq;          /* what a reminder carries: what they hold once this
			   * pass's invite or update has gone */
	bool change_held; /* an update or cancel waits for --release-changes */
};

/* Invite, update or cancel: whatever brings one participant's calendar
 * from what kallad sent it to what it should hold. SEQUENCE only rises
 * for a participant, so every notice has a key of its own. */
static void plan_notice(const struct plan_ctx *ctx, const struct participant *p,
			const struct session *s, struct held *h, plan_fn fn, void *arg)
{
	struct delivery d = {.p = p, .session = s, .offset = -1, .trigger = ctx->now};
	struct attendance a = h->a;
	bool had = h->had;
	bool want = should_attend(ctx, p, s);

	/* The current REQUEST again (RFC 5546 reconfirm), never lower than
	 * what the participant holds. */
	h->seq = had ? max_int(s->sequence, a.sequence) : s->sequence;
	h->change_held = false;
	if (s->start <= ctx->now)
		return; /* nothing about a session that has begun */
	if (want && !a.invited)
		d.message = "invite";
	else if (want && a.content < s->sequence)
		d.message = "update";
	else if (!want && a.invited)
		d.message = "cancel";
	else if (p->status == PS_REGISTERED && !s->cancelled && !a.invited)
		d.message = "invite"; /* absent: shown by --plan --all */
	else
		return;
	d.sequence = had ? max_int(s->sequence, a.sequence + 1) : s->sequence;
	plan_key(d.key, sizeof(d.key), d.message, p->email, s->uid, NULL, NULL, d.sequence);
	if (ctx->mem.recorded(ctx->mem.opaque, d.key))
		return;
	d.due = plan_after_quiet(ctx->cfg, ctx->now);
	if (!want && !a.invited)
		d.skip = "absent";
	else if (d.due >= s->start)
		d.skip = "event-passed";
	else if (d.message[0] != 'i' && ctx->cfg->changes_hold && !ctx->release_changes &&
		 !ctx->mem.released(ctx->mem.opaque, d.key))
		d.skip = "held";
	if (!d.skip && d.message[0] != 'c')
		h->seq = d.sequence; /* the invite or update goes first */
	h->change_held = d.skip && strcmp(d.skip, "held") == 0;
	fn(&d, arg);
}

/* A reminder of a session that moved has a new key; if its new time has
 * already passed and the participant had this reminder before the move,
 * once is enough. */
static bool reminded_before(const struct plan_ctx *ctx, const struct delivery *d,
			    const struct offset *off)
{
	char key[PLAN_KEY_MAX];

	for (int seq = d->sequence - 1; seq >= 0; seq--) {
		plan_key(key, sizeof(key), d->message, d->p->email, d->session->uid, d->rule->name,
			 off, seq);
		if (ctx->mem.sent(ctx->mem.opaque, key))
			return true;
	}
	return false;
}

static bool rule_targets_session(const struct plan_ctx *ctx, const struct rule *r,
				 const struct session *s)
{
	if (r->category && !calendar_has_category(s->categories, r->category))
		return false;
	if (r->first_only) {
		for (size_t i = 0; i < ctx->cal->n_sessions; i++)
			if (!ctx->cal->sessions[i].cancelled)
				return &ctx->cal->sessions[i] == s;
		return false;
	}
	return true;
}

/* After downtime several offsets of one rule may all have passed: only the
 * latest of them is caught up ("14d" is pointless once "2d" is due too). */
static bool superseded(const struct plan_ctx *ctx, const struct rule *r, size_t o, time_t event,
		       bool date_only, time_t trigger)
{
	if (trigger > ctx->now)
		return false;
	for (size_t k = 0; k < r->n_offsets; k++) {
		time_t t = trigger_time(r, &r->offsets[k], event, date_only);
		if (k != o && t > trigger && t <= ctx->now)
			return true;
	}
	return false;
}

static void plan_rule_offset(const struct plan_ctx *ctx, const struct participant *p,
			     const struct held *held, const struct rule *r, size_t o, plan_fn fn,
			     void *arg)
{
	const struct offset *off = &r->offsets[o];
	char offs[24], rule_id[300];
	time_t known;

	offset_name(off, offs, sizeof(offs));
	snprintf(rule_id, sizeof(rule_id), "%s/%s", r->name, offs);
	known = known_max(ctx, 0, "rule", rule_id);
	known = known_max(ctx, known, "participant", p->email);

	if (r->deadlines) {
		for (size_t i = 0; i < ctx->cal->n_deadlines; i++) {
			const struct deadline *dl = &ctx->cal->deadlines[i];
			struct delivery d = {.message = r->message, .p = p, .deadline = dl,
					     .rule = r, .offset = (int)o};
			struct judge j = {.ctx = ctx, .d = &d, .event = dl->due, .reminder = true};

			if (r->category && !calendar_has_category(dl->categories, r->category))
				continue;
			plan_key(d.key, sizeof(d.key), r->message, p->email, dl->uid, r->name, off, 0);
			if (ctx->mem.recorded(ctx->mem.opaque, d.key))
				continue;
			d.trigger = trigger_time(r, off, dl->due, dl->date_only);
			j.known = known_max(ctx, known, "deadline", dl->uid);
			judge(&j);
			if (!d.skip && superseded(ctx, r, o, dl->due, dl->date_only, d.trigger))
				d.skip = "superseded";
			fn(&d, arg);
		}
		return;
	}
	for (size_t i = 0; i < ctx->cal->n_sessions; i++) {
		const struct session *s = &ctx->cal->sessions[i];
		struct delivery d = {.message = r->message, .p = p, .session = s, .rule = r,
				     .offset = (int)o};
		struct judge j = {.ctx = ctx, .d = &d, .event = s->start, .reminder = true};

		if (!rule_targets_session(ctx, r, s))
			continue;
		d.sequence = held[i].seq;
		plan_key(d.key, sizeof(d.key), r->message, p->email, s->uid, r->name, off,
			 d.sequence);
		if (ctx->mem.recorded(ctx->mem.opaque, d.key))
			continue;
		d.trigger = trigger_time(r, off, s->start, false);
		if (d.trigger <= ctx->now && reminded_before(ctx, &d, off))
			continue;
		j.known = known_max(ctx, known, "session", s->uid);
		judge(&j);
		if (!d.skip && superseded(ctx, r, o, s->start, false, d.trigger))
			d.skip = "superseded";
		/* A reminder would show the new time before the update may. */
		if (!d.skip && held[i].change_held)
			d.skip = "held";
		fn(&d, arg);
	}
}

void plan_participant(const struct plan_ctx *ctx, const struct participant *p, plan_fn fn,
		      void *arg)
{
	size_t n = ctx->cal->n_sessions;
	struct held *held = xcalloc(n ? n : 1, sizeof(*held));

	for (size_t i = 0; i < n; i++) {
		const struct session *s = &ctx->cal->sessions[i];
		held[i].had = ctx->mem.attendance(ctx->mem.opaque, p->email, s->uid, &held[i].a);
		plan_notice(ctx, p, s, &held[i], fn, arg);
	}
	/* audience_has() turns the cancelled away from every rule. */
	for (size_t r = 0; r < ctx->cfg->n_rules; r++) {
		const struct rule *rule = &ctx->cfg->rules[r];

		if (!audience_has(rule->to, p->status))
			continue;
		for (size_t o = 0; o < rule->n_offsets; o++)
			plan_rule_offset(ctx, p, held, rule, o, fn, arg);
	}
	free(held);
}

struct plan_all_arg {
	const struct plan_ctx *ctx;
	plan_fn fn;
	void (*page_done)(void *);
	void *arg;
};

static void plan_one(const struct participant *p, void *arg)
{
	struct plan_all_arg *a = arg;

	plan_participant(a->ctx, p, a->fn, a->arg);
}

static void plan_page_done(void *arg)
{
	struct plan_all_arg *a = arg;

	if (a->page_done)
		a->page_done(a->arg);
}

bool plan_all(const struct plan_ctx *ctx, plan_fn fn, void (*page_done)(void *), void *arg)
{
	struct plan_all_arg a = {ctx, fn, page_done, arg};

	return reg_each(ctx->reg, plan_one, plan_page_done, &a);
}
