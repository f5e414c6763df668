/* The planner against hand-computed instants (Europe/Stockholm). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plan.h"
#include "testutil.h"
#include "tz.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAXD 64

/* A small world the tests edit before planning. */
struct world {
	struct config cfg;
	struct rule rules[4];
	struct offset offs[4][4];
	struct calendar cal;
	struct session sessions[4];
	struct deadline deadlines[2];
	struct registrations reg;
	struct participant people[4];
	struct absence absences[2];
	struct attachment files[4]; /* one material file for each participant */
	time_t known;              /* what known_since answers for everything */
	time_t now;                /* of the current run */
	struct {
		const char *email, *uid;
		struct attendance a;
	} held[8];                 /* what participants' calendars hold */
	size_t n_held;
	const char *recorded[8];   /* keys the ledger already holds */
	const char *released[4];   /* held notices let go by --release-changes */
	struct {
		const char *email, *uid;
		enum answer a;
	} answers[4];              /* replies to invitations */
	const char *bounced[2];    /* addresses that bounced */
	struct delivery out[MAXD]; /* what the planner emitted */
	size_t n;
};

static time_t mem_known(void *opaque, const char *kind UNUSED, const char *id UNUSED, time_t now)
{
	struct world *w = opaque;
	return w->known ? w->known : now;
}

static bool mem_recorded(void *opaque, const char *key, time_t *retry_at)
{
	struct world *w = opaque;

	if (retry_at)
		*retry_at = 0;
	for (size_t i = 0; i < ARRAY_SIZE(w->recorded) && w->recorded[i]; i++)
		if (strcmp(w->recorded[i], key) == 0)
			return true;
	return false;
}

/* Owed since kallad knew everything, or since the participant registered
 * when that came later: the model as a writing pass would have kept it. */
static bool mem_owed_since(void *opaque, const struct delivery *d, time_t *since)
{
	struct world *w = opaque;
	time_t known = w->known ? w->known : w->now;

	*since = d->p->registered_at > known ? d->p->registered_at : known;
	return w->known != 0;
}

static bool mem_fulfilled(void *opaque, const char *oid)
{
	return mem_recorded(opaque, oid, NULL);
}

static bool mem_released(void *opaque, const char *key)
{
	struct world *w = opaque;
	for (size_t i = 0; i < ARRAY_SIZE(w->released) && w->released[i]; i++)
		if (strcmp(w->released[i], key) == 0)
			return true;
	return false;
}

static bool mem_attendance(void *opaque, const char *email, const struct session *s,
			   struct attendance *out)
{
	struct world *w = opaque;
	const char *uid = s->uid;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < w->n_held; i++)
		if (strcasecmp(w->held[i].email, email) == 0 && strcmp(w->held[i].uid, uid) == 0) {
			*out = w->held[i].a;
			return true;
		}
	return false;
}

static enum answer mem_answer(void *opaque, const char *email, const char *uid)
{
	struct world *w = opaque;

	for (size_t i = 0; i < ARRAY_SIZE(w->answers) && w->answers[i].email; i++)
		if (strcasecmp(w->answers[i].email, email) == 0 && strcmp(w->answers[i].uid, uid) == 0)
			return w->answers[i].a;
	return ANS_NONE;
}

static bool mem_bounced(void *opaque, const char *email)
{
	struct world *w = opaque;

	for (size_t i = 0; i < ARRAY_SIZE(w->bounced) && w->bounced[i]; i++)
		if (strcasecmp(w->bounced[i], email) == 0)
			return true;
	return false;
}

static void collect(const struct delivery *d, void *arg)
{
	struct world *w = arg;
	assert_true(w->n < MAXD);
	w->out[w->n++] = *d;
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	w->cfg.quiet_start = w->cfg.quiet_end = -1;
	w->cfg.rules = w->rules;
	w->cal.sessions = w->sessions;
	w->cal.deadlines = w->deadlines;
	w->reg.participants = w->people;
	w->reg.absences = w->absences;
	w->reg.attachments = w->files;
	return w;
}

static struct rule *add_rule(struct world *w, const char *name, const char *message,
			     enum audience to, int at, const char *befores)
{
	size_t i = w->cfg.n_rules++;
	struct rule *r = &w->rules[i];
	const char *p = befores;

	r->name = (char *)name;
	r->message = (char *)message;
	r->deadlines = strcmp(message, "deadline-reminder") == 0;
	r->to = to;
	r->at = at;
	r->offsets = w->offs[i];
	while (*p) {
		char *end;
		struct offset *o = &w->offs[i][r->n_offsets++];
		o->amount = (int)strtol(p, &end, 10);
		o->days = *end == 'd';
		p = end + 1;
		if (*p == ',')
			p++;
	}
	return r;
}

static struct session *add_session(struct world *w, const char *uid, time_t start, time_t end)
{
	struct session *s = &w->sessions[w->cal.n_sessions++];
	s->uid = s->summary = (char *)uid;
	s->start = start;
	s->end = end;
	return s;
}

static struct participant *add_person(struct world *w, const char *email, enum pstatus st,
				      time_t registered)
{
	struct participant *p = &w->people[w->reg.n_participants++];
	p->email = p->name = (char *)email;
	p->language = "sv";
	p->status = st;
	p->registered_at = registered;
	w->files[w->reg.n_attachments++] =
	    (struct attachment){.email = (char *)email, .message = "material", .path = "f.pdf"};
	return p;
}

static void run(struct world *w, time_t now)
{
	struct plan_ctx ctx = {.cfg = &w->cfg, .cal = &w->cal, .reg = &w->reg, .now = now,
			       .mem = {.known_since = mem_known, .recorded = mem_recorded,
				       .owed_since = mem_owed_since, .fulfilled = mem_fulfilled,
				       .released = mem_released, .attendance = mem_attendance,
				       .answer = mem_answer, .bounced = mem_bounced, .opaque = w}};
	w->n = 0;
	w->now = now;
	assert_true(plan_all(&ctx, collect, NULL, w));
}

static const struct delivery *find(struct world *w, const char *message, const char *email,
				   const char *uid, int offset)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct delivery *d = &w->out[i];
		const char *target = d->session ? d->session->uid : d->deadline->uid;
		if (strcmp(d->message, message) == 0 && strcmp(d->p->email, email) == 0 &&
		    strcmp(target, uid) == 0 && d->offset == offset)
			return d;
	}
	return NULL;
}

static const struct delivery *must(struct world *w, const char *message, const char *email,
				   const char *uid, int offset)
{
	const struct delivery *d = find(w, message, email, uid, offset);
	if (!d)
		fail_msg("no %s for %s / %s offset %d", message, email, uid, offset);
	return d;
}

static void assert_due(const struct delivery *d, time_t want)
{
	char got[40], exp[40];
	tz_rfc3339(d->due, got, sizeof(got));
	tz_rfc3339(want, exp, sizeof(exp));
	assert_null(d->skip);
	assert_string_equal(got, exp);
}

static int setup(void **state UNUSED)
{
	assert_true(tz_set("Europe/Stockholm"));
	return 0;
}

/* Day offsets keep local wall-clock time across both 2026 DST changes;
 * hour offsets are elapsed time. */
static void test_dst_days(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2026, 1, 1, 12, 0);

	w->known = now - 3600;
	add_rule(w, "at9", "session-reminder", AUD_REGISTERED, 9 * 60, "14d,1d");
	add_rule(w, "own", "material", AUD_REGISTERED, -1, "2d,48h");
	add_session(w, "spring@x", utc(2026, 3, 29, 8, 0), utc(2026, 3, 30, 11, 0)); /* 10.00 CEST */
	add_session(w, "after-spring@x", utc(2026, 3, 30, 8, 0), utc(2026, 3, 30, 11, 0));
	add_session(w, "autumn@x", utc(2026, 10, 25, 9, 0), utc(2026, 10, 26, 12, 0)); /* 10.00 CET */
	add_session(w, "after-autumn@x", utc(2026, 10, 26, 9, 0), utc(2026, 10, 26, 12, 0));
	add_person(w, "a@x.se", PS_REGISTERED, utc(2025, 12, 1, 10, 0));
	run(w, now);

	/* 28 Mar is still CET: 09:00 local is 08:00Z; 15 Mar likewise. */
	assert_due(must(w, "session-reminder", "a@x.se", "spring@x", 0), utc(2026, 3, 15, 8, 0));
	assert_due(must(w, "session-reminder", "a@x.se", "spring@x", 1), utc(2026, 3, 28, 8, 0));
	/* Two calendar days before 10.00 CEST on 30 Mar is 10.00 CET on 28 Mar,
	 * while 48 elapsed hours before 08:00Z on 30 Mar is 08:00Z. */
	assert_due(must(w, "material", "a@x.se", "after-spring@x", 0), utc(2026, 3, 28, 9, 0));
	assert_due(must(w, "material", "a@x.se", "after-spring@x", 1), utc(2026, 3, 28, 8, 0));
	/* Autumn: 24 Oct is CEST, so 09:00 local is 07:00Z. */
	assert_due(must(w, "session-reminder", "a@x.se", "autumn@x", 1), utc(2026, 10, 24, 7, 0));
	/* 2d before 10.00 CET on 26 Oct is 10.00 CEST on 24 Oct = 08:00Z; 48h is 09:00Z. */
	assert_due(must(w, "material", "a@x.se", "after-autumn@x", 0), utc(2026, 10, 24, 8, 0));
	assert_due(must(w, "material", "a@x.se", "after-autumn@x", 1), utc(2026, 10, 24, 9, 0));
	/* A session on the DST day itself: 2d before 10.00 CEST on 29 Mar is
	 * 10.00 CET on 27 Mar; 48h before is 09:00 CET. */
	assert_due(must(w, "material", "a@x.se", "spring@x", 0), utc(2026, 3, 27, 9, 0));
	assert_due(must(w, "material", "a@x.se", "spring@x", 1), utc(2026, 3, 27, 8, 0));
	free(w);
}

static void test_audiences(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2019, 11, 1, 12, 0);
	struct deadline *dl = &w->deadlines[w->cal.n_deadlines++];

	w->known = now - 60;
	dl->uid = dl->summary = "anmalan@x";
	dl->due = utc(2019, 12, 13, 23, 0); /* end of 13 Dec, Stockholm */
	dl->date_only = true;
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	add_rule(w, "nudge", "deadline-reminder", AUD_INVITED, 9 * 60, "14d,1d");
	add_rule(w, "wait", "session-reminder", AUD_WAITLISTED, 9 * 60, "14d");
	add_rule(w, "everyone", "material", AUD_ALL, 9 * 60, "2d");
	add_person(w, "inv@x.se", PS_INVITED, 0);
	add_person(w, "reg@x.se", PS_REGISTERED, utc(2019, 10, 1, 8, 0));
	add_person(w, "wait@x.se", PS_WAITLISTED, 0);
	add_person(w, "gone@x.se", PS_CANCELLED, 0);
	run(w, now);

	/* 14 days before 13 Dec is 29 Nov; 1 day before is 12 Dec; 09:00 CET. */
	assert_due(must(w, "deadline-reminder", "inv@x.se", "anmalan@x", 0), utc(2019, 11, 29, 8, 0));
	assert_due(must(w, "deadline-reminder", "inv@x.se", "anmalan@x", 1), utc(2019, 12, 12, 8, 0));
	assert_null(find(w, "deadline-reminder", "reg@x.se", "anmalan@x", 0));
	assert_non_null(find(w, "session-reminder", "wait@x.se", "s1@x", 0));
	assert_null(find(w, "session-reminder", "inv@x.se", "s1@x", 0)); /* not waitlisted */
	/* `all` is everyone but the cancelled. */
	for (size_t i = 0; i < 3; i++)
		assert_non_null(find(w, "material", w->people[i].email, "s1@x", 0));
	for (size_t i = 0; i < w->n; i++)
		assert_string_not_equal(w->out[i].p->email, "gone@x.se");
	/* Only the registered get invites. */
	assert_non_null(find(w, "invite", "reg@x.se", "s1@x", -1));
	assert_null(find(w, "invite", "inv@x.se", "s1@x", -1));
	assert_null(find(w, "invite", "wait@x.se", "s1@x", -1));
	free(w);
}

static void test_late_registrant(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 2, 10, 12, 0);
	const struct delivery *d;

	w->known = utc(2019, 10, 1, 0, 0);
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d,2d");
	add_person(w, "late@x.se", PS_REGISTERED, utc(2020, 2, 8, 15, 0));
	run(w, now);
	d = must(w, "session-reminder", "late@x.se", "s1@x", 0);
	assert_string_equal(d->skip, "late-registration");
	assert_due(must(w, "session-reminder", "late@x.se", "s1@x", 1), utc(2020, 2, 18, 8, 0));
	/* Invite goes now. */
	assert_due(must(w, "invite", "late@x.se", "s1@x", -1), now);

	w->cfg.late_send = true;
	run(w, now);
	assert_due(must(w, "session-reminder", "late@x.se", "s1@x", 0), now);
	free(w);
}

static void test_absence_and_cancelled(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 1, 1, 12, 0);
	struct session *c;

	w->known = now - 60;
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	c = add_session(w, "s2@x", utc(2020, 3, 12, 9, 0), utc(2020, 3, 13, 12, 0));
	c->cancelled = true;
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d");
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	w->absences[0] = (struct absence){"A@x.se", "s1@x", NULL};
	w->reg.n_absences = 1;
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "absent");
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s2@x", 0)->skip,
			    "session-cancelled");
	assert_string_equal(must(w, "invite", "a@x.se", "s1@x", -1)->skip, "absent");
	assert_null(find(w, "invite", "a@x.se", "s2@x", -1));
	free(w);
}

/* Replies and bounces (replies.h): a declined session gets no reminders
 * (material before the programme still goes), `unanswered` rules skip
 * whoever answered, and nothing at all goes to an address that bounced.
 * All of them not owed: never recorded, so they go again once that
 * changes. */
static void test_replies_and_bounces(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 1, 1, 12, 0);
	struct rule *nudge;
	const char *uids[] = {"s1@x", "s2@x"};

	w->known = now - 60;
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	add_session(w, "s2@x", utc(2020, 3, 12, 9, 0), utc(2020, 3, 13, 12, 0));
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d");
	nudge = add_rule(w, "n", "session-reminder", AUD_REGISTERED, 9 * 60, "7d");
	nudge->unanswered = true;
	add_rule(w, "m", "material", AUD_REGISTERED, 9 * 60, "14d")->first_only = true;
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	add_person(w, "b@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	add_person(w, "c@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	for (size_t p = 0; p < 3; p++)
		for (size_t u = 0; u < 2; u++)
			if (p != 1)
				w->held[w->n_held++] = (typeof(w->held[0])){
					w->people[p].email, uids[u], {.invited = true}};
	w->answers[0] = (typeof(w->answers[0])){"A@X.SE", "s1@x", ANS_DECLINED};
	w->answers[1] = (typeof(w->answers[0])){"a@x.se", "s2@x", ANS_ACCEPTED};
	w->bounced[0] = "B@x.se";
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "declined");
	assert_null(must(w, "session-reminder", "a@x.se", "s2@x", 0)->skip);
	assert_null(must(w, "material", "a@x.se", "s1@x", 0)->skip);
	for (size_t i = 0; i < w->n; i++) {
		const struct delivery *d = &w->out[i];

		if (d->rule == nudge && str_eq(d->p->email, "a@x.se"))
			assert_string_equal(d->skip, str_eq(d->session->uid, "s1@x") ? "declined"
										     : "answered");
		if (d->rule == nudge && str_eq(d->p->email, "c@x.se"))
			assert_null(d->skip);
		if (str_eq(d->p->email, "b@x.se"))
			assert_string_equal(d->skip, "bounced");
		/* Not owed: no obligation a writing pass would record. */
		if (d->skip && d->rule)
			assert_string_equal(d->oid, "");
	}
	assert_string_equal(must(w, "invite", "b@x.se", "s1@x", -1)->skip, "bounced");
	assert_string_equal(must(w, "material", "b@x.se", "s1@x", 0)->skip, "bounced");
	free(w);
}

static void test_min_lead_and_quiet(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 1, 1, 12, 0);

	w->known = now - 60;
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0)); /* 10.00 CET */
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, -1, "2h,6h,1d");
	add_rule(w, "late", "session-reminder", AUD_REGISTERED, 22 * 60, "1d");
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	w->cfg.quiet_start = 21 * 60;
	w->cfg.quiet_end = 7 * 60;
	run(w, now);
	/* 08:00 local: outside quiet hours. */
	assert_due(must(w, "session-reminder", "a@x.se", "s1@x", 0), utc(2020, 2, 20, 7, 0));
	/* 04:00 local is quiet: deferred to 07:00, one hour before the 2h
	 * reminder where the rules put four: superseded by it, once it goes. */
	const struct delivery *six = must(w, "session-reminder", "a@x.se", "s1@x", 1);
	assert_int_equal(six->due, utc(2020, 2, 20, 6, 0));
	assert_string_equal(six->skip, "superseded");
	assert_int_equal(six->superseder_due, utc(2020, 2, 20, 7, 0));
	/* 22:00 the evening before: deferred across midnight to 07:00, where
	 * the 6h reminder (a later trigger) goes too: only that one goes. */
	const struct delivery *d = NULL;
	for (size_t i = 0; i < w->n; i++)
		if (w->out[i].rule == &w->rules[1])
			d = &w->out[i];
	assert_non_null(d);
	assert_int_equal(d->due, utc(2020, 2, 20, 6, 0));
	assert_string_equal(d->skip, "superseded");

	w->cfg.min_lead = 6 * 3600;
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "min-lead");
	/* Deferred to 07:00, three hours before: inside min-lead too (the 2h
	 * reminder, skipped, supersedes nothing). */
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 1)->skip, "min-lead");
	assert_due(must(w, "session-reminder", "a@x.se", "s1@x", 2), utc(2020, 2, 19, 9, 0));
	free(w);
}

/* Quiet hours 22:00-02:30 on both nights the clocks change (2020): the
 * end is the first instant after which the clock reads outside them, and
 * always later than the time asked about. */
static void test_quiet_on_dst_nights(void **state UNUSED)
{
	struct config cfg = {.quiet_start = 22 * 60, .quiet_end = 2 * 60 + 30};

	/* Autumn, 25 Oct: 03:00 CEST becomes 02:00 CET. From 23:00 CEST the
	 * window ends at the first 02:30 (CEST, 00:30Z). */
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 10, 24, 21, 0)), utc(2020, 10, 25, 0, 30));
	/* In the repeated hour's second run (02:10 CET), at the second 02:30. */
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 10, 25, 1, 10)), utc(2020, 10, 25, 1, 30));
	/* In its first run (02:10 CEST), at the first. */
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 10, 25, 0, 10)), utc(2020, 10, 25, 0, 30));
	/* Spring, 29 Mar: 02:00 CET jumps to 03:00 CEST, 02:30 never shows:
	 * the window ends with the jump (01:00Z). */
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 3, 28, 22, 0)), utc(2020, 3, 29, 1, 0));
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 3, 29, 0, 59)), utc(2020, 3, 29, 1, 0));
	/* Outside quiet hours: t itself. */
	assert_int_equal(plan_after_quiet(&cfg, utc(2020, 3, 29, 1, 0)), utc(2020, 3, 29, 1, 0));
}

static void test_known_and_catch_up(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 2, 19, 12, 0);
	const struct delivery *d;

	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	add_session(w, "past@x", utc(2020, 2, 1, 9, 0), utc(2020, 2, 2, 12, 0));
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d,2d");
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));

	/* First sight now: the passed triggers are not blasted out. */
	w->known = 0;
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "before-known");
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 1)->skip, "before-known");
	assert_null(find(w, "invite", "a@x.se", "past@x", -1)); /* no invite to the past */
	assert_due(must(w, "invite", "a@x.se", "s1@x", -1), now);

	/* Known since before the 2d trigger (18 Feb 09:00), stopped over it:
	 * caught up now; the 14d one passed before kallad knew. */
	w->known = utc(2020, 2, 10, 0, 0);
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "before-known");
	d = must(w, "session-reminder", "a@x.se", "s1@x", 1);
	assert_due(d, now);
	assert_true(d->trigger == utc(2020, 2, 18, 8, 0));
	/* Nothing after the event, even when kallad knew of it in time. */
	w->known = utc(2020, 1, 1, 0, 0);
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "past@x", 1)->skip,
			    "event-passed");
	w->known = utc(2020, 2, 10, 0, 0);

	/* Stopped over the 14d trigger (6 Feb 09:00 local) and back on 18 Feb
	 * at 08:55, five minutes before the 2d one: the 14d one would go late
	 * and twelve days closer to the next than the rule put it: superseded. */
	w->known = utc(2020, 1, 1, 0, 0);
	run(w, utc(2020, 2, 18, 7, 55));
	d = must(w, "session-reminder", "a@x.se", "s1@x", 0);
	assert_string_equal(d->skip, "superseded");
	assert_int_equal(d->superseder_due, utc(2020, 2, 18, 8, 0));
	assert_due(must(w, "session-reminder", "a@x.se", "s1@x", 1), utc(2020, 2, 18, 8, 0));
	/* Back on 11 Feb, seven days before the 2d one (more than half of the
	 * twelve): the 14d one is caught up now. */
	run(w, utc(2020, 2, 11, 12, 0));
	assert_due(must(w, "session-reminder", "a@x.se", "s1@x", 0), utc(2020, 2, 11, 12, 0));
	/* Back on 13 Feb, five days before: superseded. */
	run(w, utc(2020, 2, 13, 12, 0));
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "superseded");
	w->known = utc(2020, 2, 10, 0, 0);

	/* What the ledger holds is not planned again. */
	w->recorded[0] = "session-reminder|a@x.se|s1@x|r|2d|0";
	w->recorded[1] = "invite|a@x.se|s1@x|-|-|0";
	run(w, now);
	assert_null(find(w, "session-reminder", "a@x.se", "s1@x", 1));
	assert_null(find(w, "invite", "a@x.se", "s1@x", -1));
	free(w);
}

static void test_deadline_never_after(void **state UNUSED)
{
	struct world *w = world_new();
	struct deadline *dl = &w->deadlines[w->cal.n_deadlines++];

	dl->uid = dl->summary = "anmalan@x";
	dl->due = utc(2019, 12, 13, 23, 0);
	dl->date_only = true;
	add_rule(w, "nudge", "deadline-reminder", AUD_INVITED, 9 * 60, "0d");
	add_person(w, "inv@x.se", PS_INVITED, 0);
	w->known = utc(2019, 11, 1, 0, 0);
	run(w, utc(2019, 12, 13, 7, 0));
	assert_due(must(w, "deadline-reminder", "inv@x.se", "anmalan@x", 0), utc(2019, 12, 13, 8, 0));
	/* At 23:30 local on the day, a caught-up reminder is still in time. */
	run(w, utc(2019, 12, 13, 22, 30));
	assert_due(must(w, "deadline-reminder", "inv@x.se", "anmalan@x", 0),
		   utc(2019, 12, 13, 22, 30));
	run(w, utc(2019, 12, 14, 0, 0));
	assert_string_equal(must(w, "deadline-reminder", "inv@x.se", "anmalan@x", 0)->skip,
			    "event-passed");
	free(w);
}

static void test_key_and_first_only(void **state UNUSED)
{
	struct world *w = world_new();
	char key[PLAN_KEY_MAX];
	struct offset off = {.days = true, .amount = 14};
	struct rule *r;

	plan_key(key, sizeof(key), "session-reminder", "Anna+X@Ex.se", "s1@x", "r", &off, 2);
	assert_string_equal(key, "session-reminder|anna+x@ex.se|s1@x|r|14d|2");

	w->known = utc(2019, 1, 1, 0, 0);
	add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0))->cancelled = true;
	add_session(w, "s2@x", utc(2020, 3, 12, 9, 0), utc(2020, 3, 13, 12, 0));
	add_session(w, "s3@x", utc(2020, 5, 7, 8, 0), utc(2020, 5, 8, 11, 0));
	r = add_rule(w, "mat", "material", AUD_REGISTERED, 9 * 60, "14d");
	r->first_only = true;
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	run(w, utc(2020, 1, 1, 0, 0));
	assert_null(find(w, "material", "a@x.se", "s1@x", 0));
	assert_due(must(w, "material", "a@x.se", "s2@x", 0), utc(2020, 2, 27, 8, 0));
	assert_null(find(w, "material", "a@x.se", "s3@x", 0));
	free(w);
}

static void hold(struct world *w, const char *email, const char *uid, bool invited, int seq,
		 int content)
{
	w->held[w->n_held].email = email;
	w->held[w->n_held].uid = uid;
	w->held[w->n_held++].a = (struct attendance){invited, seq, content};
}

/* Invites, updates and cancels bring each calendar to what it should hold. */
static void test_notices(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 1, 10, 12, 0);
	struct session *moved, *off, *gone;
	const struct delivery *d;

	w->known = now - 60;
	moved = add_session(w, "moved@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	moved->sequence = 1; /* its time changed since the invite */
	off = add_session(w, "off@x", utc(2020, 3, 12, 9, 0), utc(2020, 3, 13, 12, 0));
	off->sequence = 1;
	off->cancelled = true;
	add_session(w, "kept@x", utc(2020, 5, 7, 8, 0), utc(2020, 5, 8, 11, 0));
	gone = add_session(w, "past@x", utc(2020, 1, 2, 9, 0), utc(2020, 1, 3, 12, 0));
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d");
	add_person(w, "reg@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	add_person(w, "left@x.se", PS_CANCELLED, utc(2019, 12, 1, 0, 0));
	add_person(w, "back@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	add_person(w, "away@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	for (const char *who = "reg@x.se"; who; who = strcmp(who, "reg@x.se") ? NULL : "left@x.se") {
		hold(w, who, "moved@x", true, 0, 0);
		hold(w, who, "off@x", true, 0, 0);
	}
	hold(w, "left@x.se", "kept@x", true, 0, 0);
	hold(w, "back@x.se", "kept@x", false, 2, 0); /* cancelled once, registered again */
	hold(w, "away@x.se", "kept@x", true, 0, 0);
	w->absences[0] = (struct absence){"away@x.se", "kept@x", NULL};
	w->reg.n_absences = 1;
	run(w, now);

	/* A moved session: an update, SEQUENCE raised, due now. */
	d = must(w, "update", "reg@x.se", "moved@x", -1);
	assert_due(d, now);
	assert_int_equal(d->sequence, 1);
	assert_string_equal(d->key, "update|reg@x.se|moved@x|-|-|1");
	/* A cancelled session: a cancel above what they hold, no reminder. */
	d = must(w, "cancel", "reg@x.se", "off@x", -1);
	assert_int_equal(d->sequence, 1);
	assert_string_equal(must(w, "session-reminder", "reg@x.se", "off@x", 0)->skip,
			    "session-cancelled");
	/* Not yet invited to kept@x: an invite at the session's SEQUENCE. */
	assert_int_equal(must(w, "invite", "reg@x.se", "kept@x", -1)->sequence, 0);
	/* Someone who cancelled: a cancel for each session they hold, and
	 * nothing for the one already cancelled by the calendar... which
	 * they also hold: that one is cancelled for them too. */
	assert_int_equal(must(w, "cancel", "left@x.se", "moved@x", -1)->sequence, 1);
	assert_int_equal(must(w, "cancel", "left@x.se", "kept@x", -1)->sequence, 1);
	assert_non_null(find(w, "cancel", "left@x.se", "off@x", -1));
	assert_null(find(w, "session-reminder", "left@x.se", "kept@x", 0));
	/* Registered again after a cancel: the invite outranks the cancel. */
	assert_int_equal(must(w, "invite", "back@x.se", "kept@x", -1)->sequence, 3);
	/* A new absence: a cancel; the reminder is skipped. */
	assert_int_equal(must(w, "cancel", "away@x.se", "kept@x", -1)->sequence, 1);
	assert_string_equal(must(w, "session-reminder", "away@x.se", "kept@x", 0)->skip, "absent");
	/* Nothing at all about a session that has begun. */
	assert_null(find(w, "invite", "reg@x.se", gone->uid, -1));
	assert_null(find(w, "cancel", "left@x.se", gone->uid, -1));
	/* A reminder carries what the participant will hold once this pass's
	 * invite has gone: never lower than it. */
	assert_int_equal(must(w, "session-reminder", "back@x.se", "kept@x", 0)->sequence, 3);

	/* changes = hold: updates and cancels wait; invites do not. */
	w->cfg.changes_hold = true;
	run(w, now);
	assert_string_equal(must(w, "update", "reg@x.se", "moved@x", -1)->skip, "held");
	assert_string_equal(must(w, "cancel", "left@x.se", "kept@x", -1)->skip, "held");
	assert_null(must(w, "invite", "reg@x.se", "kept@x", -1)->skip);
	/* A reminder of the moved session would show the new time first. */
	assert_string_equal(must(w, "session-reminder", "reg@x.se", "moved@x", 0)->skip, "held");
	/* Released by --release-changes: no longer held, in any later run. */
	w->released[0] = "update|reg@x.se|moved@x|-|-|1";
	run(w, now);
	assert_null(must(w, "update", "reg@x.se", "moved@x", -1)->skip);
	assert_string_equal(must(w, "cancel", "left@x.se", "kept@x", -1)->skip, "held");
	free(w);
}

/* A reminder whose session moved is not sent twice when its new time has
 * already passed when kallad learns of the move: the obligation at the new
 * time is owed from now. */
static void test_moved_reminder_not_repeated(void **state UNUSED)
{
	struct world *w = world_new();
	time_t now = utc(2020, 2, 10, 12, 0);
	struct session *s;

	s = add_session(w, "s1@x", utc(2020, 2, 20, 9, 0), utc(2020, 2, 21, 12, 0));
	s->sequence = 1; /* moved from 27 Feb: the 14d trigger is now 6 Feb, passed */
	add_rule(w, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "14d,2d");
	add_person(w, "a@x.se", PS_REGISTERED, utc(2019, 12, 1, 0, 0));
	hold(w, "a@x.se", "s1@x", true, 0, 0);
	w->recorded[0] = "session-reminder|a@x.se|s1@x|r|14d|0";
	run(w, now);
	assert_string_equal(must(w, "session-reminder", "a@x.se", "s1@x", 0)->skip, "before-known");
	/* The 2d one moves with the session. */
	assert_due(must(w, "session-reminder", "a@x.se", "s1@x", 1), utc(2020, 2, 18, 8, 0));
	free(w);
}

/* A calendar exported by Outlook (Windows zone "W. Europe Standard Time"
 * defined in the file) plans the same instants as the IANA one, across
 * both 2026 changes of daylight-saving time. */
static void test_outlook_calendar(void **state UNUSED)
{
	struct errlist errs = {0};
	struct calendar *outlook = calendar_load(FIXTURES "/calendar-outlook.ics", &errs);
	struct calendar *iana = calendar_load(FIXTURES "/calendar-iana.ics", &errs);
	struct world *w = world_new(), *v = world_new();
	time_t now = utc(2019, 11, 1, 0, 0);

	assert_int_equal(errs.n, 0);
	assert_non_null(outlook);
	assert_non_null(iana);
	assert_int_equal(outlook->n_sessions, iana->n_sessions);
	for (struct world *x = w; x; x = x == w ? v : NULL) {
		x->known = now - 60;
		add_rule(x, "r", "session-reminder", AUD_REGISTERED, 9 * 60, "1d");
		add_rule(x, "own", "material", AUD_REGISTERED, -1, "1d");
		add_person(x, "a@x.se", PS_REGISTERED, utc(2019, 10, 1, 0, 0));
	}
	w->cal = *outlook;
	v->cal = *iana;
	run(w, now);
	run(v, now);
	assert_int_equal(w->n, v->n);
	for (size_t i = 0; i < outlook->n_sessions; i++) {
		const struct session *o = &outlook->sessions[i], *n = &iana->sessions[i];
		const struct delivery *a = must(w, "material", "a@x.se", o->uid, 0);
		const struct delivery *b = must(v, "material", "a@x.se", n->uid, 0);

		assert_true(o->start == n->start);
		/* One calendar day before, at the session's own 10.00. */
		assert_true(a->due == b->due);
		assert_int_equal(tz_minute_of_day(a->due), 10 * 60);
		assert_int_equal(tz_day_diff(a->due, o->start), 1);
		assert_true(must(w, "session-reminder", "a@x.se", o->uid, 0)->due ==
			    must(v, "session-reminder", "a@x.se", n->uid, 0)->due);
	}
	/* The session on 29 March 2026 (CEST from 03.00): 1d before at
	 * 10.00 is 28 March, still CET: 09:00Z. */
	assert_due(must(w, "material", "a@x.se", outlook->sessions[3].uid, 0), utc(2026, 3, 28, 9, 0));
	calendar_free(outlook);
	calendar_free(iana);
	errlist_free(&errs);
	free(w);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dst_days),
		cmocka_unit_test(test_audiences),
		cmocka_unit_test(test_late_registrant),
		cmocka_unit_test(test_absence_and_cancelled),
		cmocka_unit_test(test_replies_and_bounces),
		cmocka_unit_test(test_min_lead_and_quiet),
		cmocka_unit_test(test_quiet_on_dst_nights),
		cmocka_unit_test(test_known_and_catch_up),
		cmocka_unit_test(test_deadline_never_after),
		cmocka_unit_test(test_key_and_first_only),
		cmocka_unit_test(test_notices),
		cmocka_unit_test(test_moved_reminder_not_repeated),
		cmocka_unit_test(test_outlook_calendar),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
