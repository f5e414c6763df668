#include "cli.h"
#include "cli_internal.h"

#include "clock.h"
#include "daemon.h"
#include "handle.h"
#include "linesort.h"
#include "log.h"
#include "message.h"
#include "plan_table.h"
#include "preflight.h"
#include "programme.h"
#include "send.h"
#include "transport.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

bool cli_parse_statuses(const char *list, unsigned *mask)
{
	char *copy = xstrdup(list), *save = NULL;
	bool ok = true;

	*mask = 0;
	for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
		enum pstatus st;

		t = str_trim(t);
		if (str_eq(t, "all")) {
			*mask |= 1u << PS_REGISTERED | 1u << PS_INVITED | 1u << PS_WAITLISTED;
		} else if (!reg_parse_status(t, &st)) {
			fprintf(stderr, "kallad: --status: unknown status \"%s\" (registered, invited, "
					"waitlisted or all)\n", t);
			ok = false;
		} else if (st == PS_CANCELLED) {
			fputs("kallad: --status: cancelled participants never get mail\n", stderr);
			ok = false;
		} else {
			*mask |= 1u << st;
		}
	}
	if (ok && !*mask) {
		fputs("kallad: --status: name at least one status\n", stderr);
		ok = false;
	}
	free(copy);
	return ok;
}

int cli_validate(const struct cli *c)
{
	bool targets = c->session || c->deadline;
	const char *bad = NULL;

	if (c->session && c->deadline)
		bad = "--session and --deadline exclude each other";
	else if (c->mode == MODE_PREVIEW && c->n_to != 1)
		bad = "--preview needs exactly one --to EMAIL";
	else if (c->mode == MODE_SEND_NOW && !c->n_to && !c->all)
		bad = "--send-now needs --to EMAIL or --all";
	else if (c->mode == MODE_SEND_NOW && c->n_to && c->all)
		bad = "--to and --all exclude each other";
	else if (c->deadline && c->mode != MODE_PREVIEW && c->mode != MODE_SEND_NOW)
		bad = "--deadline goes with --send-now or --preview";
	else if (targets && c->mode != MODE_PREVIEW && c->mode != MODE_SEND_NOW &&
		 c->mode != MODE_RELEASE && c->mode != MODE_RESPONSES)
		bad = "--session goes with --send-now, --preview, --release-changes or --responses";
	else if (c->force && c->mode != MODE_SEND_NOW && c->mode != MODE_PREVIEW)
		bad = "--force goes with --send-now or --preview";
	else if ((c->dry_run || c->test_to) && c->mode != MODE_SEND_NOW)
		bad = "--dry-run and --test-to go with --send-now";
	else if (c->statuses && !(c->mode == MODE_SEND_NOW && c->all))
		bad = "--status STATUS[,...] goes with --send-now --all";
	else if (c->n_to && c->mode != MODE_SEND_NOW && c->mode != MODE_PREVIEW)
		bad = "--to goes with --send-now or --preview";
	else if (c->days >= 0 && c->mode != MODE_PLAN)
		bad = "--days goes with --plan";
	else if (c->explain && c->mode != MODE_PLAN)
		bad = "--explain goes with --plan";
	else if (c->all && c->mode != MODE_PLAN && c->mode != MODE_SEND_NOW)
		bad = "--all goes with --plan or --send-now";
	else if (c->failed && c->mode != MODE_STATUS)
		bad = "--failed goes with --status";
	else if (c->out && c->mode != MODE_PREVIEW)
		bad = "--out goes with --preview";
	if (bad) {
		fprintf(stderr, "kallad: %s\n", bad);
		return -1;
	}
	return 0;
}

void cli_print_errors(const struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->items[i]);
}

/* Starts the clock at --now (read in the programme zone: tz_set first). */
bool cli_start_clock(const struct cli *c)
{
	time_t now = 0;

	if (c->now_arg && !tz_parse_rfc3339(c->now_arg, &now)) {
		fprintf(stderr, "kallad: --now: not an RFC 3339 time in the years " TZ_RANGE_TEXT
			": %s\n", c->now_arg);
		return false;
	}
	clock_start(now);
	return true;
}

struct programme *cli_load(const struct cli *c, int *rc)
{
	struct errlist errs = {0};
	struct programme *pg;
	int failed;

	pg = programme_load(c->config, &errs, &failed);
	cli_print_errors(&errs);
	errlist_free(&errs);
	if (!pg) {
		*rc = failed & (PART_CONFIG | PART_TEMPLATES | PART_CALENDAR) ? EX_CONFIG : 1;
		return NULL;
	}
	for (size_t i = 0; i < pg->warnings.n; i++)
		log_warn("%s", pg->warnings.items[i]);
	if (!cli_start_clock(c)) {
		programme_free(pg);
		*rc = EX_USAGE;
		return NULL;
	}
	*rc = 0;
	return pg;
}

struct plan_view {
	const struct cli *c;
	time_t now;
	bool count_only;              /* --status: the held notices, no lines */
	struct linesort *lines;       /* sorted on disk: bounded memory */
	struct plan_table *table;     /* on a terminal: columns in words */
	const struct plan_ctx *ctx;
	long held;                    /* change notices waiting for a release */
	size_t removals_held, removed; /* as in struct send_stats */
	size_t removed_held;
};

static void plan_collect(const struct delivery *d, void *arg)
{
	struct plan_view *v = arg;
	const char *target = d->session ? d->session->uid : d->deadline->uid;
	char when[64];

	bool held = d->skip && strcmp(d->skip, "held") == 0;
	char why[512] = "";

	if (held && !d->rule)
		v->held++;
	if (v->count_only)
		return;
	if (v->c->explain && !str_caseeq(d->p->email, v->c->explain))
		return;
	/* Held change notices are shown: they are what an administrator
	 * reviews before --release-changes. */
	if (d->skip && !held && !v->c->all && !v->c->explain)
		return;
	if (!d->skip && v->c->days >= 0 && d->due > v->now + (time_t)v->c->days * 86400)
		return;
	if (held)
		snprintf(when, sizeof(when), "held");
	else if (d->skip)
		snprintf(when, sizeof(when), "skipped:%s", d->skip);
	else
		tz_rfc3339(d->due, when, sizeof(when));
	if (v->c->explain) {
		why[0] = '\t';
		plan_explain(d, v->now, why + 1, sizeof(why) - 1);
	}
	char *text = xasprintf("%s\t%s\t%s\t%s\t%s%s", when, d->message, d->p->email, target,
			       d->rule ? d->rule->name : "-", why);
	if (v->table) {
		char *row = plan_table_row(v->table, v->ctx->cal, d, text, d->skip ? when : NULL,
					   v->c->explain ? why + 1 : NULL);

		free(text);
		text = row;
	}
	linesort_add(v->lines, d->skip ? d->trigger : d->due, text);
	free(text);
}

static void plan_removed(const struct participant *p, void *arg)
{
	struct plan_view *v = arg;

	plan_participant(v->ctx, p, plan_collect, v);
}

/* What a pass at v->now would do, from a state it only reads: every
 * participant, and those whose rows are gone. False if the registrations
 * failed part-way. */
static bool view_plan(struct programme **pg, struct state *st, struct plan_view *v)
{
	struct plan_ctx ctx;
	bool ok;

	v->now = clock_now();
	programme_sync_fresh(pg, st, NULL, &v->removals_held);
	programme_plan_ctx(*pg, st, v->now, &ctx);
	v->ctx = &ctx;
	ok = plan_all(&ctx, plan_collect, NULL, v);
	v->removed = programme_each_removed(*pg, st, NULL, plan_removed, v, false,
					    &ctx.removed_held, NULL);
	v->removed_held = ctx.removed_held;
	v->ctx = NULL;
	programme_plan_done(&ctx);
	return ok;
}

/* "held: ..." for --status and --check: what waits for a release. */
static void print_held(const struct plan_view *v)
{
	printf("held\t%ld", v->held);
	if (v->removals_held)
		printf("\t%zu sessions gone from the calendar at once wait for --release-changes",
		       v->removals_held);
	if (v->removed_held)
		printf("\t%zu participants gone from the registrations at once wait for "
		       "--release-changes", v->removed_held);
	putchar('\n');
}

static int run_plan(const struct cli *c)
{
	struct plan_view v = {.c = c};
	struct errlist errs = {0};
	struct programme *pg;
	struct state *st;
	int rc;

	if (!(pg = cli_load(c, &rc)))
		return rc;
	rc = 0;
	if (!(st = state_open(pg->cfg->state, true, &errs))) {
		cli_print_errors(&errs);
		errlist_free(&errs);
		programme_free(pg);
		return 1;
	}
	/* A person reads columns in words; a pipe gets SPEC's lines. */
	if (isatty(STDOUT_FILENO))
		v.table = plan_table_new(c->explain != NULL);
	if (!(v.lines = linesort_new()) || !view_plan(&pg, st, &v))
		rc = 1;
	if (v.removals_held || v.removed_held)
		fprintf(stderr, "kallad: a mass removal is held: its cancels are listed as held "
			"and wait for --release-changes or --discard-changes\n");
	if (v.lines && !(v.table ? plan_table_write(v.table, v.lines, stdout)
				 : linesort_write(v.lines, stdout)))
		rc = 1;
	linesort_free(v.lines);
	plan_table_free(v.table);
	state_close(st);
	programme_free(pg);
	return rc;
}

/* The session or deadline a preview or manual send is about: the one
 * named (by UID, position or prefix: handle.h), or the next one that has
 * not started, so `--preview invite --to X` just works. Says why not. */
static bool pick_target(const struct programme *pg, const struct cli *c, const char *message,
			const struct session **s, const struct deadline **d)
{
	time_t now = clock_now();
	char *err = NULL;

	*s = NULL;
	*d = NULL;
	if (c->session)
		*s = handle_session(pg->cal, c->session, &err);
	else if (c->deadline)
		*d = handle_deadline(pg->cal, c->deadline, &err);
	else if (strcmp(message, "deadline-reminder") == 0) {
		for (size_t i = 0; i < pg->cal->n_deadlines && !*d; i++)
			if (pg->cal->deadlines[i].due > now || i + 1 == pg->cal->n_deadlines)
				*d = &pg->cal->deadlines[i];
	} else {
		for (size_t i = 0; i < pg->cal->n_sessions && !*s; i++)
			if (pg->cal->sessions[i].start > now || i + 1 == pg->cal->n_sessions)
				*s = &pg->cal->sessions[i];
	}
	if (*s || *d)
		return true;
	if (err)
		fprintf(stderr, "kallad: %s: %s\n", c->session ? "--session" : "--deadline", err);
	else
		fprintf(stderr, "kallad: %s has no %s\n", pg->cfg->calendar,
			strcmp(message, "deadline-reminder") == 0 ? "deadline" : "session");
	free(err);
	return false;
}

static int write_out(const char *path, const char *data, size_t len)
{
	FILE *f = path ? fopen(path, "wb") : stdout;

	if (!f) {
		fprintf(stderr, "kallad: %s: %m\n", path);
		return 1;
	}
	if (fwrite(data, 1, len, f) != len || (path ? fclose(f) : fflush(f)) != 0) {
		fprintf(stderr, "kallad: %s: write failed: %m\n", path ? path : "stdout");
		return 1;
	}
	return 0;
}

/* Everything a sending mode needs, opened in order and closed in reverse. */
struct run {
	struct programme *pg;
	struct state *st;
	struct transport *tr;
	struct sender *snd;
};

static void run_close(struct run *r)
{
	send_free(r->snd);
	transport_close(r->tr);
	state_close(r->st);
	programme_free(r->pg);
}

/* writable: false for what must leave the state database as it was
 * (--dry-run, --test-to, --preview). */
static int run_open(const struct cli *c, struct run *r, bool transport, bool writable)
{
	struct errlist errs = {0};
	int rc;

	memset(r, 0, sizeof(*r));
	if (!(r->pg = cli_load(c, &rc)))
		return rc;
	if ((rc = preflight(r->pg, &errs))) {
		cli_print_errors(&errs);
		errlist_free(&errs);
		run_close(r);
		return rc;
	}
	r->st = state_open(r->pg->cfg->state, !writable, &errs);
	if (r->st && transport)
		r->tr = transport_open(r->pg->cfg, &errs);
	cli_print_errors(&errs);
	errlist_free(&errs);
	if (!r->st || (transport && !r->tr)) {
		run_close(r);
		return 1;
	}
	r->snd = send_new(r->pg, r->st, r->tr);
	send_set_progress(r->snd, true);
	return 0;
}

/* The calendar compared with the stored copies, the programme read again
 * while another process stored a newer version. */
static bool sync_run(struct run *r)
{
	size_t held;
	bool ok = programme_sync_fresh(&r->pg, r->st, NULL, &held);

	send_set_programme(r->snd, r->pg);
	return ok;
}

static int run_preview(const struct cli *c)
{
	struct participant p;
	struct manual m = {.message = c->message, .force = c->force};
	struct errlist errs = {0};
	struct delivery d;
	struct run r;
	const char *why;
	char *msg = NULL;
	size_t len;
	int rc;

	/* The same delivery as --send-now would make, from a state it only
	 * reads: byte for byte what would go, but for Date:. */
	if ((rc = run_open(c, &r, false, false)))
		return rc;
	sync_run(&r);
	if (!pick_target(r.pg, c, c->message, &m.session, &m.deadline)) {
		run_close(&r);
		return 1;
	}
	if (!reg_find(r.pg->reg, c->to[0], &p)) {
		fprintf(stderr, "kallad: no participant %s in %s\n", c->to[0],
			r.pg->cfg->registrations);
		run_close(&r);
		return 1;
	}
	send_manual_begin(r.snd, &m, clock_now(), &(struct send_stats){0});
	/* Refused as --send-now would refuse it: by what it is, then by what
	 * the ledger holds. */
	if ((why = send_manual_delivery(r.snd, &m, &p, &d)) ||
	    send_manual_verdict(r.snd, &m, &d, &why) != MV_SEND)
		fprintf(stderr, "kallad: --send-now %s to %s would be refused: %s\n", c->message,
			p.email, why);
	else
		msg = send_build_message(r.snd, &d, &len, &errs);
	cli_print_errors(&errs);
	errlist_free(&errs);
	rc = msg ? write_out(c->out, msg, len) : 1;
	free(msg);
	reg_participant_clear(&p);
	run_close(&r);
	return rc;
}

static void print_stats(const struct send_stats *st)
{
	char when[40];

	printf("%ld sent, %ld deferred, %ld unknown, %ld failed, %ld skipped\n", st->sent,
	       st->transient, st->unknown, st->failed, st->skipped);
	if (!st->relay_until)
		return;
	tz_rfc3339(st->relay_until, when, sizeof(when));
	fprintf(stderr,
		"kallad: the relay is down: %s\n"
		"kallad: no message is failed for it; %ld due waited; next try at %s "
		"(kallad --status shows it)\n",
		st->relay_fault ? st->relay_fault : "?", st->waiting, when);
}

/* --release-changes --session S: the UID S names (handle.h), copied, as
 * a reload may replace the calendar. A whole UID the file no longer has
 * (a removed session's cancels) is taken as it is. NULL: said why. */
static char *release_session(const struct run *r, const char *arg)
{
	char *err = NULL;
	const struct session *s = handle_session(r->pg->cal, arg, &err);

	if (s)
		return xstrdup(s->uid);
	if (strchr(arg, '@') && strncmp(err, "no session", 10) == 0) {
		free(err);
		return xstrdup(arg);
	}
	fprintf(stderr, "kallad: --session: %s\n", err);
	free(err);
	return NULL;
}

static int run_once(const struct cli *c)
{
	/* --release-changes is --once with held updates and cancels let go. */
	struct send_stats stats;
	char *release_uid = NULL;
	struct run r;
	bool ok;
	int rc;

	if ((rc = run_open(c, &r, c->mode != MODE_DISCARD, true)))
		return rc;
	if (c->session && !(release_uid = release_session(&r, c->session))) {
		run_close(&r);
		return 1;
	}
	send_set_release(r.snd, c->mode == MODE_RELEASE, release_uid);
	send_set_discard(r.snd, c->mode == MODE_DISCARD);
	for (int tries = 0;; tries++) {
		struct errlist errs = {0};

		send_note_known(r.snd, clock_now());
		ok = send_due(r.snd, clock_now(), &stats);
		if (!stats.stale || tries == 3)
			break;
		r.pg = programme_reload(r.pg, &errs);
		cli_print_errors(&errs);
		errlist_free(&errs);
		send_set_programme(r.snd, r.pg);
	}
	if (stats.stale)
		ok = false;
	if (c->mode == MODE_DISCARD)
		printf("%ld held change notices discarded\n", stats.held);
	else
		print_stats(&stats);
	if (stats.removals_held || stats.removed_held)
		fprintf(stderr, "kallad: a mass removal is held (see --plan): --release-changes "
			"sends its cancels, --discard-changes takes it without\n");
	programme_nudge_daemon(r.pg->cfg);
	run_close(&r);
	free(release_uid);
	/* 0: everything owed went, or waits for a reason of its own (a
	 * retry after a 4xx for that message, quiet hours); 1: something
	 * failed, or the relay is down. */
	return ok && !stats.failed && !stats.relay_until && !stats.build_errors ? 0 : 1;
}

static int run_send_now(const struct cli *c)
{
	struct manual m = {.message = c->message, .all = c->all, .force = c->force,
			   .dry_run = c->dry_run, .test_to = c->test_to,
			   .statuses = 1u << PS_REGISTERED};
	struct send_stats stats;
	struct run r;
	int rc;

	if (c->statuses && !cli_parse_statuses(c->statuses, &m.statuses))
		return EX_USAGE;
	if ((rc = run_open(c, &r, !c->dry_run, !c->dry_run && !c->test_to)))
		return rc;
	if (!tpl_has(r.pg->tpl, r.pg->cfg->language, r.pg->cfg->language, c->message)) {
		fprintf(stderr, "kallad: no template %s\n", c->message);
		run_close(&r);
		return 1;
	}
	sync_run(&r);
	if (!pick_target(r.pg, c, c->message, &m.session, &m.deadline)) {
		run_close(&r);
		return 1;
	}
	if (!send_salt_ready(r.snd)) {
		run_close(&r);
		return 1;
	}
	send_manual_begin(r.snd, &m, clock_now(), &stats);
	if (c->all) {
		/* --all: the registered (or those --status names), not absent
		 * from the session; each page's sends are claimed together. */
		if (!reg_each(r.pg->reg, send_manual_each, send_manual_flush, r.snd))
			rc = 1;
	}
	/* The participants live until their claims are made and sent. */
	struct participant *to = xcalloc(c->n_to ? c->n_to : 1, sizeof(*to));
	size_t n_found = 0;

	for (size_t i = 0; !c->all && i < c->n_to; i++) {
		if (!reg_find(r.pg->reg, c->to[i], &to[n_found])) {
			fprintf(stderr, "kallad: no participant %s in %s\n", c->to[i],
				r.pg->cfg->registrations);
			rc = 1;
			continue;
		}
		send_manual_each(&to[n_found++], r.snd);
	}
	if (!send_manual_end(r.snd))
		rc = 1;
	for (size_t i = 0; i < n_found; i++)
		reg_participant_clear(&to[i]);
	free(to);
	if (c->all && !stats.sent && !stats.failed && !stats.transient && !stats.unknown &&
	    !c->dry_run)
		log_warn("--all: nobody to send %s to (nobody %s, or all absent?)", c->message,
			 c->statuses ? "with that --status" : "registered");
	if (!c->dry_run) {
		print_stats(&stats);
		programme_nudge_daemon(r.pg->cfg); /* its retries are the daemon's */
	}
	run_close(&r);
	return rc;
}

static void print_failed(const struct delivery_row *row, void *arg UNUSED)
{
	char when[40];

	tz_rfc3339(row->updated, when, sizeof(when));
	printf("%s\t%s\t%s\t%s\t%s\n", when, row->message, row->email, row->target,
	       row->detail ? row->detail : "-");
}

int cli_open_ledger(const struct cli *c, bool readonly, struct config **cfg,
		    struct state **st)
{
	struct errlist errs = {0};
	int rc = 0;

	*st = NULL;
	if (!(*cfg = config_load(c->config, &errs)))
		rc = EX_CONFIG;
	else if (!tz_set((*cfg)->timezone) || !cli_start_clock(c))
		rc = EX_USAGE;
	else if (!(*st = state_open((*cfg)->state, readonly, &errs)))
		rc = 1;
	cli_print_errors(&errs);
	errlist_free(&errs);
	if (rc) {
		config_free(*cfg);
		*cfg = NULL;
	}
	return rc;
}

/* What waits for --release-changes, if the programme can be read at all:
 * --status works from the ledger alone when it cannot. */
static void status_held(const struct cli *c, struct state *st)
{
	struct plan_view v = {.c = c, .count_only = true};
	struct errlist errs = {0};
	int failed;
	struct programme *pg = programme_load(c->config, &errs, &failed);

	errlist_free(&errs);
	if (!pg) {
		printf("held\t?\tthe programme does not load (see --check)\n");
		return;
	}
	view_plan(&pg, st, &v);
	if (v.held || v.removals_held || v.removed_held)
		print_held(&v);
	programme_free(pg);
}

/* A delivery waiting for a retry: when it is tried next, and the last
 * reply (or why it was not attempted). */
static void print_deferred(const struct delivery_row *row, void *arg UNUSED)
{
	char when[40];

	tz_rfc3339(row->next_attempt, when, sizeof(when));
	printf("%s\t%s\t%s\t%s\t%s: %s\n", when, row->message, row->email, row->target,
	       row->state == DS_UNKNOWN ? "unknown, to be resent" : "deferred",
	       row->detail ? row->detail : "-");
}

/* The relay's suspension, when there is one: first, as it holds up all. */
static void print_relay(struct state *st)
{
	struct relay_row r;
	char since[40], until[40];

	if (!state_relay_get(st, &r))
		return;
	tz_rfc3339(r.since, since, sizeof(since));
	tz_rfc3339(r.until, until, sizeof(until));
	printf("relay\t%s since %s, %d fault%s in a row, next try %s: %s\n",
	       r.until > clock_now() ? "suspended" : "failing", since, r.faults,
	       r.faults == 1 ? "" : "s", until, r.fault);
	state_relay_free(&r);
}

static int run_status(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	long counts[6];
	int rc;

	if ((rc = cli_open_ledger(c, true, &cfg, &st)))
		return rc;
	state_delivery_counts(st, counts);
	for (int i = 0; i < 6; i++)
		printf("%s\t%ld\n", state_name((enum dstate)i), counts[i]);
	status_held(c, st);
	print_relay(st);
	if (c->failed) {
		state_delivery_each(st, DS_FAILED, print_failed, NULL);
		cli_status_bounced(st);
		state_delivery_each(st, DS_TRANSIENT, print_deferred, NULL);
		state_delivery_each(st, DS_UNKNOWN, print_deferred, NULL);
	}
	state_close(st);
	config_free(cfg);
	return 0;
}

static int run_retry(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	long n;
	int rc;

	if ((rc = cli_open_ledger(c, false, &cfg, &st)))
		return rc;
	n = state_retry_failed(st, clock_now());
	printf("%ld failed deliver%s queued again\n", n, n == 1 ? "y" : "ies");
	/* The administrator fixed something: the relay is tried at once. */
	state_relay_clear(st, clock_now());
	programme_nudge_daemon(cfg);
	state_close(st);
	config_free(cfg);
	return 0;
}

int cli_run(const struct cli *c)
{
	switch (c->mode) {
	case MODE_CHECK:
		return cli_run_check(c);
	case MODE_PLAN:
		return run_plan(c);
	case MODE_PREVIEW:
		return run_preview(c);
	case MODE_ONCE:
	case MODE_RELEASE:
	case MODE_DISCARD:
		return run_once(c);
	case MODE_SEND_NOW:
		return run_send_now(c);
	case MODE_STATUS:
		return run_status(c);
	case MODE_RETRY:
		return run_retry(c);
	case MODE_DAEMON:
		return daemon_run(c);
	case MODE_FETCH_REPLIES:
	case MODE_RESPONSES:
	case MODE_HISTORY:
	case MODE_REPORT:
	case MODE_UNSUPPRESS:
		return cli_replies_run(c);
	default:
		fprintf(stderr, "kallad: this mode is not built yet\n");
		return 1;
	}
}
