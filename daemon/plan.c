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

/* The address is compared without case everywhere else too. */
static void lower_addr(const char *email, char *addr, size_t len)
{
	size_t i;

	for (i = 0; email[i] && i < len - 1; i++)
		addr[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
	addr[i] = '\0';
}

void plan_key(char *out, size_t len, const char *message, const char *email, const char *uid,
	      const char *rule, const struct offset *off, int sequence)
{
	char offs[24], seq[16], addr[320];

	lower_addr(email, addr, sizeof(addr));
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

/* Quiet hours are wall-clock time: this returns the first instant after t
 * whose local time is outside them, on the nights clocks change too. */
time_t plan_after_quiet(const struct config *cfg, time_t t)
{
	struct tm tm, at_end;
	int minute, day;
	time_t end;

	if (!in_quiet(cfg, minute = tz_minute_of_day(t)))
		return t;
	tz_local(t, &tm);
	/* Inside a window that wraps midnight, before midnight: it ends tomorrow. */
	day = tm.tm_mday + (minute >= cfg->quiet_end ? 1 : 0);
	end = tz_mktime(tm.tm_year + 1900, tm.tm_mon + 1, day, cfg->quiet_end / 60,
			cfg->quiet_end % 60, 0);
	tz_local(end, &at_end);
	/* The end falls in the hour repeated when clocks go back, and t is
	 * already in its second run: it ends at the second run's end. */
	if (end <= t)
		end += at_end.tm_gmtoff - tm.tm_gmtoff;
	/* The end falls in the hour skipped when clocks go forward (moved past
	 * it): the window ends where the clock jumps over it. */
	if (tz_minute_of_day(end) != cfg->quiet_end)
		while (end - 60 > t && !in_quiet(cfg, tz_minute_of_day(end - 60)))
			end -= 60;
	/* Held work always has a moment ahead to wake for. */
	return end > t ? end : t + 60;
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

time_t plan_lead_start(const struct config *cfg, time_t event)
{
	struct tm tm;

	if (cfg->min_lead <= 0)
		return 0;
	if (!cfg->min_lead_days)
		return event - cfg->min_lead;
	tz_local(event, &tm);
	return tz_mktime(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday - cfg->min_lead_days,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

time_t plan_event(const struct delivery *d)
{
	return d->session ? d->session->start : d->deadline ? d->deadline->due : 0;
}

const char *plan_late(const struct config *cfg, const struct delivery *d, time_t at)
{
	time_t event = plan_event(d);

	if (!event)
		return NULL;
	if (at >= event)
		return "event-passed";
	if (d->rule && cfg->min_lead > 0 && at > plan_lead_start(cfg, event))
		return "min-lead";
	return NULL;
}

static time_t latest(time_t a, time_t b)
{
	return a > b ? a : b;
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
	bool bounced;     /* the participant's address bounced: nothing goes */
	enum answer answer; /* their latest reply to the session's invitation */
};

/* An update or cancel that waits: changes = hold, or a mass vanishing of
 * sessions or participants (the guard), until --release-changes lets it go. */
static bool notice_held(const struct plan_ctx *ctx, const struct participant *p,
			const struct session *s, const struct delivery *d)
{
	bool released = (ctx->release_changes &&
			 (!ctx->release_session || str_eq(ctx->release_session, s->uid))) ||
			ctx->mem.released(ctx->mem.opaque, d->key);

	if (d->message[0] == 'i')
		return false;
	/* A removal held by the guard is let go by changes_sync() alone. */
	if (s->removal_held)
		return true;
	/* A participant's removal held by the guard goes with a release of
	 * all that is held, not with one session's: letting a moved session's
	 * update go must not cancel that session for rows lost by accident. */
	if (p->removed && p->removal_held)
		return !((ctx->release_changes && !ctx->release_session) ||
			 ctx->mem.released(ctx->mem.opaque, d->key));
	return ctx->cfg->changes_hold && !released;
}

/* Invite, update or cancel: whatever brings one participant's calendar
 * from what kallad sent it to what it should hold. SEQUENCE only rises
 * for a participant, so every notice has a key of its own. */
static void plan_notice(const struct plan_ctx *ctx, const struct participant *p,
			const struct session *s, struct held *h, plan_fn fn, void *arg)
{
	struct delivery d = {.p = p, .session = s, .offset = -1, .trigger = ctx->now};
	struct attendance a = h->a;
	bool had = h->had;
	time_t retry_at;
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
	if (ctx->mem.recorded(ctx->mem.opaque, d.key, &retry_at))
		return;
	d.due = plan_after_quiet(ctx->cfg, latest(ctx->now, retry_at));
	if (h->bounced)
		d.skip = "bounced";
	else if (!want && !a.invited)
		d.skip = "absent";
	else
		d.skip = plan_late(ctx->cfg, &d, d.due);
	if (!d.skip && notice_held(ctx, p, s, &d))
		d.skip = "held";
	if (!d.skip && d.message[0] != 'c')
		h->seq = d.sequence; /* the invite or update goes first */
	h->change_held = d.skip && strcmp(d.skip, "held") == 0;
	fn(&d, arg);
}

void plan_rule_sig(char *out, size_t len, const struct rule *r, const struct offset *off)
{
	char offs[24];

	offset_name(off, offs, sizeof(offs));
	snprintf(out, len, "%s|%s|%s|%s|%s|%s", r->name, r->message, offs,
		 config_audience_name(r->to), r->category ? r->category : "-",
		 r->deadlines ? "deadlines" : r->first_only ? "first" : "sessions");
}

void plan_target_sig(char *out, size_t len, const struct session *s, const struct deadline *d)
{
	const char *cats = s ? s->categories : d->categories;

	snprintf(out, len, "%s@%lld#%s", s ? s->uid : d->uid, (long long)(s ? s->start : d->due),
		 cats ? cats : "");
}

/* The first session of the programme that is not cancelled. */
static const struct session *first_session(const struct calendar *cal)
{
	for (size_t i = 0; i < cal->n_sessions; i++)
		if (!cal->sessions[i].cancelled)
			return &cal->sessions[i];
	return NULL;
}

static bool rule_targets_session(const struct plan_ctx *ctx, const struct rule *r,
				 const struct session *s)
{
	if (r->category && !calendar_has_category(s->categories, r->category))
		return false;
	return !r->first_only || first_session(ctx->cal) == s;
}

/* One rule offset aimed at one session or deadline. */
struct aim {
	const struct rule *r;
	size_t o;
	const struct session *s;   /* or */
	const struct deadline *dl;
	const struct held *held;   /* the participant's hold on s */
	bool bounced;              /* the participant's address bounced */
};

/* Why the delivery is not owed at all (the participant is not in its
 * audience for this target), or NULL when everything it hangs on holds. */
static const char *not_owed(const struct plan_ctx *ctx, const struct participant *p,
			    const struct aim *a)
{
	/* Material "before the programme starts" reaches those who miss or
	 * decline the first session too; anything carrying the session does not. */
	bool whole = a->r->first_only && str_eq(a->r->message, "material");

	if (a->bounced)
		return "bounced";
	if (a->s && a->s->cancelled)
		return "session-cancelled";
	if (a->s && !whole && reg_is_absent(ctx->reg, p->email, a->s->uid))
		return "absent";
	if (a->s && !whole && a->held->answer == ANS_DECLINED)
		return "declined";
	if (a->s && a->r->unanswered && a->held->answer != ANS_NONE)
		return "answered";
	if (str_eq(a->r->message, "material")) {
		struct attachment *att;
		size_t n = reg_attachments(ctx->reg, p->email, a->r->message, &att);

		if (n == REG_ATTACHMENTS_FAILED)
			return "no-material"; /* not knowable now: never sent without files */
		reg_attachments_free(att, n);
		if (n == 0)
			return "no-material";
	}
	return NULL;
}

/* A trigger that came before the obligation: skipped, or sent at once to a
 * late registrant with late-registrations = send. It is late registration
 * when the rule and the target, as they are now, were both known before
 * the trigger, so that only the participant's joining came after it. */
static const char *owed_too_late(const struct plan_ctx *ctx, const struct aim *a,
				 time_t trigger)
{
	char sig[PLAN_KEY_MAX];

	plan_rule_sig(sig, sizeof(sig), a->r, &a->r->offsets[a->o]);
	if (ctx->mem.known_since(ctx->mem.opaque, "rule-def", sig, ctx->now) > trigger)
		return "before-known";
	plan_target_sig(sig, sizeof(sig), a->s, a->dl);
	if (ctx->mem.known_since(ctx->mem.opaque, "target", sig, ctx->now) > trigger)
		return "before-known";
	return ctx->cfg->late_send ? NULL : "late-registration";
}

/* Judges one rule delivery into *d; false when there is nothing to say
 * (already met, or recorded). */
static bool plan_aim(const struct plan_ctx *ctx, const struct participant *p,
		     const struct aim *a, void *arg, struct delivery *d)
{
	const struct rule *r = a->r;
	const struct offset *off = &r->offsets[a->o];
	time_t event = a->s ? a->s->start : a->dl->due;
	time_t retry_at;
	bool done;
	char offs[24], addr[320];

	memset(d, 0, sizeof(*d));
	d->message = r->message;
	d->p = p;
	d->session = a->s;
	d->deadline = a->dl;
	d->rule = r;
	d->offset = (int)a->o;
	d->sequence = a->s ? a->held->seq : a->dl->revision;
	plan_key(d->key, sizeof(d->key), r->message, p->email, a->s ? a->s->uid : a->dl->uid,
		 r->name, off, d->sequence);
	d->trigger = trigger_time(r, off, event, a->dl && a->dl->date_only);
	done = ctx->mem.recorded(ctx->mem.opaque, d->key, &retry_at);
	/* Due at the trigger, or now on catch-up, or when a retry may go;
	 * never inside quiet hours. */
	d->due = plan_after_quiet(ctx->cfg, latest(latest(d->trigger, ctx->now), retry_at));
	if ((d->skip = not_owed(ctx, p, a)))
		return !done;

	/* The obligation: what it hangs on, the target at its current time. */
	/* With sessions = first the target is the programme's start, met once
	 * whichever session that turns out to be. */
	offset_name(off, offs, sizeof(offs));
	lower_addr(p->email, addr, sizeof(addr));
	if (r->first_only)
		snprintf(d->oid, sizeof(d->oid), "%s|%s|first|%s|%s", r->message, addr, r->name,
			 offs);
	else
		snprintf(d->oid, sizeof(d->oid), "%s|%s|%s|%s|%s@%lld", r->message, addr,
			 a->s ? a->s->uid : a->dl->uid, r->name, offs, (long long)event);
	d->owed_fresh = !ctx->mem.owed_since(ctx->mem.opaque, d, &d->owed_since);
	if (ctx->owed)
		ctx->owed(d, arg);
	if (done || ctx->mem.fulfilled(ctx->mem.opaque, d->oid))
		return false;

	if (d->owed_since > d->trigger)
		d->skip = owed_too_late(ctx, a, d->trigger);
	if (!d->skip)
		d->skip = plan_late(ctx->cfg, d, d->due);
	/* A reminder would show the new time before the update may. */
	if (!d->skip && a->s && a->held->change_held)
		d->skip = "held";
	return true;
}

/* Of what one participant would get of one message for one target, a
 * trigger that goes late (catch-up after downtime, late registration,
 * quiet hours, a retry) is superseded by a later trigger, from whichever
 * rule, that goes before half the time the rules put between the two has
 * passed: at the same moment, or a 14-day reminder caught up minutes
 * before the 2-day one. Of triggers at the same instant going at the same
 * moment, the first stands. Only by something that goes: a delivery
 * skipped supersedes nothing. A trigger that goes on time is never
 * superseded (the later one is at least the whole gap after it). */
static bool superseded_by(const struct delivery *a, size_t i, const struct delivery *b, size_t k)
{
	if (b->skip || !str_eq(b->message, a->message) || b->session != a->session ||
	    b->deadline != a->deadline)
		return false;
	if (b->trigger == a->trigger)
		return b->due == a->due && k < i;
	return b->trigger > a->trigger &&
	       (double)(b->due - a->due) < (double)(b->trigger - a->trigger) / 2;
}

static void supersede(struct delivery *ds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < n && !ds[i].skip; k++)
			if (k != i && superseded_by(&ds[i], i, &ds[k], k)) {
				ds[i].skip = "superseded";
				ds[i].superseder_due = ds[k].due;
			}
}

struct aims {
	struct delivery *ds;
	size_t n, cap;
};

static void aim(const struct plan_ctx *ctx, const struct participant *p, const struct aim *a,
		void *arg, struct aims *out)
{
	out->ds = xgrow(out->ds, &out->cap, out->n, sizeof(*out->ds));
	if (plan_aim(ctx, p, a, arg, &out->ds[out->n]))
		out->n++;
}

static void plan_rule(const struct plan_ctx *ctx, const struct participant *p,
		      const struct held *held, bool bounced, const struct rule *r, void *arg,
		      struct aims *out)
{
	for (size_t o = 0; o < r->n_offsets; o++) {
		if (r->deadlines) {
			for (size_t i = 0; i < ctx->cal->n_deadlines; i++) {
				const struct deadline *dl = &ctx->cal->deadlines[i];
				struct aim a = {.r = r, .o = o, .dl = dl, .bounced = bounced};

				if (!r->category || calendar_has_category(dl->categories, r->category))
					aim(ctx, p, &a, arg, out);
			}
			continue;
		}
		for (size_t i = 0; i < ctx->cal->n_sessions; i++) {
			const struct session *s = &ctx->cal->sessions[i];
			struct aim a = {.r = r, .o = o, .s = s, .held = &held[i],
					.bounced = bounced};

			if (rule_targets_session(ctx, r, s))
				aim(ctx, p, &a, arg, out);
		}
	}
}

void plan_participant(const struct plan_ctx *ctx, const struct participant *p, plan_fn fn,
		      void *arg)
{
	size_t n = ctx->cal->n_sessions;
	struct held *held = xcalloc(n ? n : 1, sizeof(*held));
	struct aims aims = {0};
	bool bounced = ctx->mem.bounced && ctx->mem.bounced(ctx->mem.opaque, p->email);

	for (size_t i = 0; i < n; i++) {
		const struct session *s = &ctx->cal->sessions[i];
		held[i].had = ctx->mem.attendance(ctx->mem.opaque, p->email, s, &held[i].a);
		held[i].bounced = bounced;
		held[i].answer = ctx->mem.answer && held[i].had
					 ? ctx->mem.answer(ctx->mem.opaque, p->email, s->uid)
					 : ANS_NONE;
		plan_notice(ctx, p, s, &held[i], fn, arg);
	}
	/* audience_has() turns the cancelled away from every rule. */
	for (size_t r = 0; r < ctx->cfg->n_rules; r++) {
		const struct rule *rule = &ctx->cfg->rules[r];

		if (audience_has(rule->to, p->status))
			plan_rule(ctx, p, held, bounced, rule, arg, &aims);
	}
	supersede(aims.ds, aims.n);
	for (size_t i = 0; i < aims.n; i++)
		fn(&aims.ds[i], arg);
	free(aims.ds);
	free(held);
}

/* The words of each skip reason, for --plan --explain. */
static const struct {
	const char *reason, *words;
} reasons[] = {
	{"bounced", "not owed: mail to this address bounced (kallad --unsuppress EMAIL)"},
	{"absent", "not owed: absent from this session"},
	{"declined", "not owed: they declined this session's invitation"},
	{"answered", "not owed: they answered this session's invitation (to = ..., unanswered)"},
	{"session-cancelled", "not owed: the session is cancelled"},
	{"no-material", "not owed: no rows in attachments for this message"},
	{"late-registration", "skipped: joined the audience after the trigger"
			      " (late-registrations = skip)"},
	{"before-known", "skipped: its rule or target, as they are now, came after the trigger"},
	{"event-passed", "skipped: it could only go after the event"},
	{"min-lead", "skipped: it could only go within min-lead of the event"},
	{"superseded", "skipped: it would go late, and a later reminder of the same goes at the same moment or soon after"},
	{"held", "waits: the change notice is held (changes = hold)"},
};

void plan_explain(const struct delivery *d, time_t now, char *out, size_t len)
{
	char since[40], trig[40];
	const char *words = d->skip;
	size_t n;

	for (size_t i = 0; d->skip && i < ARRAY_SIZE(reasons); i++)
		if (str_eq(reasons[i].reason, d->skip))
			words = reasons[i].words;
	if (!d->rule)
		words = words ? words : d->due > now ? "waits: a change notice, after quiet hours"
						     : "goes: brings their calendar up to date";
	else if (!d->skip)
		words = d->due > d->trigger && d->trigger <= now ? "goes: caught up, owed before its trigger"
		      : d->due > d->trigger			 ? "waits: deferred by quiet hours"
		      : d->due > now				 ? "waits for its trigger"
								 : "goes at its trigger";
	n = (size_t)snprintf(out, len, "%s", words);
	if (!d->rule || !d->oid[0] || n >= len)
		return;
	tz_rfc3339(d->owed_since, since, sizeof(since));
	tz_rfc3339(d->trigger, trig, sizeof(trig));
	snprintf(out + n, len - n, "; owed since %s%s, trigger %s", since,
		 d->owed_fresh ? " (from this pass)" : "", trig);
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
