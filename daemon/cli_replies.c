/* cli_replies.c: the modes about what came back (SPEC §6 Replies):
 * --fetch-replies, --responses, --history, --report, --unsuppress, and
 * the bounced addresses of --status --failed. Output is tab-separated
 * (the report: CSV), one line per fact, for people and for scripts. */
#include "cli.h"

#include "clock.h"
#include "handle.h"
#include "log.h"
#include "programme.h"
#include "replies.h"
#include "tz.h"

#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static void print_errors(const struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->items[i]);
}

/* The configuration and the state database alone: these modes must work
 * when the calendar or the registrations do not load. */
static void close_state(struct config *cfg, struct state *st)
{
	state_close(st);
	config_free(cfg);
}

/* RFC 3339 in the programme zone, or "-" for never. */
static const char *when(time_t t, char *buf, size_t len)
{
	if (!t)
		return "-";
	tz_rfc3339(t, buf, len);
	return buf;
}

/* ---- --fetch-replies ---------------------------------------------------- */

static void print_found(const char *kind, const char *email, const char *what, const char *uid,
			const char *detail, void *arg UNUSED)
{
	printf("%s\t%s\t%s\t%s\t%s\n", kind, email, what, uid, detail);
}

static int run_fetch(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	struct replies_stats stats;
	struct errlist errs = {0};
	int rc;
	bool ok;

	if ((rc = cli_open_ledger(c, false, &cfg, &st)))
		return rc;
	if (!cfg->replies_url) {
		fprintf(stderr, "kallad: %s has no [replies] section: there is no mailbox to read\n",
			cfg->path);
		close_state(cfg, st);
		return EX_CONFIG;
	}
	ok = replies_fetch(cfg, st, clock_now(), print_found, NULL, &stats, &errs);
	print_errors(&errs);
	errlist_free(&errs);
	fprintf(stderr, "kallad: %ld repl%s, %ld bounce%s, %ld delay%s, %ld ignored\n",
		stats.replies, stats.replies == 1 ? "y" : "ies", stats.bounces,
		stats.bounces == 1 ? "" : "s", stats.delays, stats.delays == 1 ? "" : "s",
		stats.ignored);
	/* Answers and bounces change what the daemon plans. */
	if (stats.replies || stats.bounces)
		programme_nudge_daemon(cfg);
	close_state(cfg, st);
	return ok ? 0 : 1;
}

/* ---- --responses -------------------------------------------------------- */

static void print_response(const struct response_row *r, void *arg)
{
	char buf[40];

	(*(long *)arg)++;
	printf("%s\t%s\t%s\t%s\n", r->uid, r->email, r->partstat, when(r->replied, buf, sizeof(buf)));
}

/* The sessions as kallad last stored them, in time order: what --session
 * names (a UID, a position or a prefix) without reading the calendar. */
static void copy_session(const struct session *s, void *arg)
{
	struct calendar *cal = arg;
	struct session *out;

	cal->sessions = xrealloc(cal->sessions, (cal->n_sessions + 1) * sizeof(*cal->sessions));
	out = &cal->sessions[cal->n_sessions++];
	*out = (struct session){.uid = xstrdup(s->uid), .summary = xstrdup(s->summary),
				.start = s->start, .end = s->end, .cancelled = s->cancelled};
}

/* The UID --session names (caller frees), or NULL having said why. */
static char *session_uid(struct state *st, const char *arg)
{
	struct calendar cal = {0};
	const struct session *s;
	char *err = NULL, *uid;

	state_session_each(st, copy_session, &cal);
	s = handle_session(&cal, arg, &err);
	/* A UID kallad never stored is still a UID to ask about. */
	uid = s ? xstrdup(s->uid) : cal.n_sessions ? NULL : xstrdup(arg);
	if (!uid)
		fprintf(stderr, "kallad: --session %s: %s\n", arg, err ? err : "no such session");
	free(err);
	for (size_t i = 0; i < cal.n_sessions; i++) {
		free(cal.sessions[i].uid);
		free(cal.sessions[i].summary);
	}
	free(cal.sessions);
	return uid;
}

static int run_responses(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	char *uid = NULL;
	long n = 0;
	int rc;

	if ((rc = cli_open_ledger(c, true, &cfg, &st)))
		return rc;
	if (c->session && !(uid = session_uid(st, c->session))) {
		close_state(cfg, st);
		return EX_USAGE;
	}
	replies_each_response(st, uid, print_response, &n);
	if (!n && uid)
		fprintf(stderr, "kallad: no one was invited to %s\n", uid);
	free(uid);
	close_state(cfg, st);
	return 0;
}

/* ---- --history ---------------------------------------------------------- */

struct line {
	time_t at;
	long seq; /* keeps the order of equal times */
	char *text;
};

struct history {
	const char *email;
	struct line *lines;
	size_t n, cap;
};

static void add_line(struct history *h, time_t at, char *text)
{
	h->lines = xgrow(h->lines, &h->cap, h->n, sizeof(*h->lines));
	h->lines[h->n] = (struct line){at, (long)h->n, text};
	h->n++;
}

/* What a ledger row says: sent, deferred, failed, skipped and why. */
static void history_delivery(const struct delivery_row *row, void *arg)
{
	struct history *h = arg;
	char *what;

	if (!str_caseeq(row->email, h->email))
		return;
	switch (row->state) {
	case DS_SENT: what = xstrdup("sent"); break;
	case DS_FAILED: what = xstrdup("failed"); break;
	case DS_SKIPPED: what = xasprintf("skipped:%s", row->detail ? row->detail : "-"); break;
	case DS_CLAIMED: what = xstrdup("sending"); break;
	default: what = xstrdup("deferred"); break;
	}
	add_line(h, row->updated,
		 xasprintf("%s\t%s\t%s\t%s", what, row->message, row->target ? row->target : "-",
			   row->state == DS_SKIPPED || !row->detail ? "-" : row->detail));
	free(what);
}

static void history_event(const struct inbound_row *e, void *arg)
{
	add_line(arg, e->at,
		 xasprintf("%s\t%s\t%s\t%s", e->kind, e->what ? e->what : "-", e->uid ? e->uid : "-",
			   e->detail ? e->detail : "-"));
}

static int line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int run_history(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	struct history h = {.email = c->email};
	char buf[40];
	int rc;

	if ((rc = cli_open_ledger(c, true, &cfg, &st)))
		return rc;
	state_delivery_each(st, -1, history_delivery, &h);
	replies_each_event(st, c->email, history_event, &h);
	if (h.n)
		qsort(h.lines, h.n, sizeof(*h.lines), line_cmp);
	for (size_t i = 0; i < h.n; i++) {
		printf("%s\t%s\n", when(h.lines[i].at, buf, sizeof(buf)), h.lines[i].text);
		free(h.lines[i].text);
	}
	if (replies_bounced(st, c->email))
		printf("-\tsuppressed\t-\t-\tnothing goes to this address until kallad --unsuppress %s\n",
		       c->email);
	if (!h.n) {
		fprintf(stderr, "kallad: kallad has sent nothing to %s and heard nothing from it\n",
			c->email);
		rc = 1;
	}
	free(h.lines);
	close_state(cfg, st);
	return rc;
}

/* ---- --report ----------------------------------------------------------- */

struct report {
	const struct programme *pg;
	struct state *st;
};

static void csv_field(const char *v, bool last)
{
	csv_fwrite(stdout, v ? v : "", v ? strlen(v) : 0);
	fputs(last ? "\r\n" : ",", stdout);
}

static void report_participant(const struct participant *p, void *arg)
{
	struct report *r = arg;
	bool bounced = replies_bounced(r->st, p->email);

	for (size_t i = 0; i < r->pg->cal->n_sessions; i++) {
		const struct session *s = &r->pg->cal->sessions[i];
		time_t invite, reminder;
		char a[40] = "", b[40] = "";

		replies_sent_times(r->st, p->email, s->uid, &invite, &reminder);
		if (invite)
			tz_rfc3339(invite, a, sizeof(a));
		if (reminder)
			tz_rfc3339(reminder, b, sizeof(b));
		csv_field(p->email, false);
		csv_field(p->name, false);
		csv_field(p->organisation, false);
		csv_field(reg_status_name(p->status), false);
		csv_field(s->uid, false);
		csv_field(s->summary, false);
		csv_field(a, false);
		csv_field(replies_answer_name(replies_answer(r->st, p->email, s->uid)), false);
		csv_field(b, false);
		csv_field(bounced ? "yes" : "no", true);
	}
}

static int run_report(const struct cli *c)
{
	static const char *const header[] = {
		"email", "name", "organisation", "status", "session_uid", "session_title",
		"invite_sent_at", "partstat", "last_reminder_sent_at", "bounced",
	};
	struct errlist errs = {0};
	struct report r = {0};
	struct programme *pg;
	int failed, rc = 0;

	pg = programme_load(c->config, &errs, &failed);
	print_errors(&errs);
	errlist_free(&errs);
	if (!pg)
		return failed & (PART_CONFIG | PART_TEMPLATES | PART_CALENDAR) ? EX_CONFIG : 1;
	if (!cli_start_clock(c) || !(r.st = state_open(pg->cfg->state, true, &errs))) {
		print_errors(&errs);
		errlist_free(&errs);
		programme_free(pg);
		return 1;
	}
	r.pg = pg;
	for (size_t i = 0; i < ARRAY_SIZE(header); i++)
		csv_field(header[i], i + 1 == ARRAY_SIZE(header));
	if (!reg_each(pg->reg, report_participant, NULL, &r)) {
		fprintf(stderr, "kallad: the registrations could not be read to the end\n");
		rc = 1;
	}
	state_close(r.st);
	programme_free(pg);
	return rc;
}

/* ---- --unsuppress and --status --failed --------------------------------- */

static int run_unsuppress(const struct cli *c)
{
	struct config *cfg;
	struct state *st;
	int rc;

	if ((rc = cli_open_ledger(c, false, &cfg, &st)))
		return rc;
	if (replies_unsuppress(st, c->email, clock_now())) {
		printf("%s: mail goes to it again\n", c->email);
		programme_nudge_daemon(cfg);
	} else {
		fprintf(stderr, "kallad: %s was not suppressed\n", c->email);
		rc = 1;
	}
	close_state(cfg, st);
	return rc;
}

static void print_bounced(const struct suppressed_row *r, void *arg UNUSED)
{
	char buf[40];

	printf("%s\tbounced\t%s\t-\t%s %s\n", when(r->since, buf, sizeof(buf)), r->email,
	       r->status, r->diagnostic ? r->diagnostic : "-");
}

void cli_status_bounced(struct state *st)
{
	replies_each_suppressed(st, print_bounced, NULL);
}

int cli_replies_run(const struct cli *c)
{
	switch (c->mode) {
	case MODE_FETCH_REPLIES:
		return run_fetch(c);
	case MODE_RESPONSES:
		return run_responses(c);
	case MODE_HISTORY:
		return run_history(c);
	case MODE_REPORT:
		return run_report(c);
	case MODE_UNSUPPRESS:
		return run_unsuppress(c);
	default:
		return 1;
	}
}
