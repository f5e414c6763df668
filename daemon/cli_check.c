/* cli_check.c: kallad --check (SPEC §4): what the programme holds, what
 * would be refused, exactly as a run decides it (preflight.h), and what
 * a run would hold back; the last line counts what was reported. */
#include "cli.h"
#include "cli_internal.h"

#include "langcheck.h"
#include "log.h"
#include "material.h"
#include "preflight.h"
#include "programme.h"
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static void print_when(const char *label, time_t t)
{
	char buf[40];

	tz_rfc3339(t, buf, sizeof(buf));
	printf("%s%s", label, buf);
}

static void check_sessions(const struct calendar *cal)
{
	printf("calendar: %zu sessions, %zu deadlines", cal->n_sessions, cal->n_deadlines);
	if (cal->n_ignored)
		printf(", %zu other events (not in sessions-category)", cal->n_ignored);
	printf("\n");
	for (size_t i = 0; i < cal->n_sessions; i++) {
		const struct session *s = &cal->sessions[i];
		print_when("  session  ", s->start);
		print_when(" – ", s->end);
		printf("  %s  %s%s%s\n", s->uid, s->summary, s->cancelled ? "  (cancelled)" : "",
		       s->kept ? "  (unreadable: its last good copy)" : "");
	}
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		const struct deadline *d = &cal->deadlines[i];
		if (d->date_only) {
			struct tm tm;
			tz_local(d->due - 1, &tm);
			printf("  deadline %04d-%02d-%02d (the whole day)", tm.tm_year + 1900,
			       tm.tm_mon + 1, tm.tm_mday);
		} else {
			print_when("  deadline ", d->due);
		}
		printf("  %s  %s%s%s%s\n", d->uid, d->summary, d->categories ? "  categories: " : "",
		       d->categories ? d->categories : "",
		       d->kept ? "  (unreadable: its last good copy)" : "");
	}
}

/* Whether each rule's template exists is preflight's to say. */
static void check_rules(const struct config *cfg)
{
	printf("rules: %zu\n", cfg->n_rules);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];

		printf("  %s: %s", r->name, r->message);
		for (size_t o = 0; o < r->n_offsets; o++)
			printf("%s%d%c", o ? ", " : " ", r->offsets[o].amount,
			       r->offsets[o].days ? 'd' : 'h');
		if (r->at >= 0)
			printf(" at %02d:%02d", r->at / 60, r->at % 60);
		printf(" before %s to %s\n",
		       r->deadlines ? "each deadline" : r->first_only ? "the first session" : "each session",
		       config_audience_name(r->to));
	}
}

struct lang_check {
	const struct programme *pg;
	int *problems;
};

static void check_language(const struct participant *p, void *arg)
{
	struct lang_check *lc = arg;

	if (!tpl_has(lc->pg->tpl, p->language, lc->pg->cfg->language, "invite")) {
		fprintf(stderr, "%s: %s: no templates in language %s or %s\n",
			lc->pg->cfg->registrations, p->email, p->language, lc->pg->cfg->language);
		(*lc->problems)++;
	}
}

static void check_participants(const struct programme *pg, int *problems)
{
	const struct registrations *reg = pg->reg;
	struct lang_check lc = {pg, problems};

	printf("registrations: %zu participants: %zu registered, %zu invited, %zu waitlisted, "
	       "%zu cancelled; %zu absences, %zu attachments; %zu rows skipped\n",
	       reg->n_participants, reg->by_status[PS_REGISTERED], reg->by_status[PS_INVITED],
	       reg->by_status[PS_WAITLISTED], reg->by_status[PS_CANCELLED], reg->n_absences,
	       reg->n_attachments, reg->n_skipped_rows);
	if (!reg_each(reg, check_language, NULL, &lc))
		(*problems)++;
}

static void count_removed(const struct participant *p UNUSED, void *arg UNUSED)
{
}

/* What the next run would hold back as a mass removal: an empty or
 * partial calendar export, a registration database that lost rows.
 * *warned: the warnings it logged (removals waiting for a row that may
 * be anyone's). */
static bool check_removals(struct programme **pg, struct state *st, size_t *warned)
{
	size_t sessions = 0, people, waiting = 0;
	size_t people_held = 0;

	if ((*pg)->cal->n_sessions == 0)
		printf("calendar: warning: %s holds no session\n", (*pg)->cfg->calendar);
	if (!programme_sync_fresh(pg, st, NULL, &sessions))
		return false;
	people = programme_each_removed(*pg, st, NULL, count_removed, NULL, false, &people_held,
					&waiting);
	*warned += waiting > 0;
	if (sessions)
		printf("calendar: warning: %zu sessions kallad sent are gone from it at once: "
		       "their cancels would be held\n", sessions);
	if (people && !people_held)
		printf("registrations: %zu participants kallad invited are gone: each gets a "
		       "cancel\n", people);
	else if (people)
		printf("registrations: warning: %zu participants kallad invited are gone, %zu of "
		       "them at once: their cancels would be held\n", people, people_held);
	return sessions || people_held;
}

int cli_run_check(const struct cli *c)
{
	struct programme *pg;
	struct errlist errs = {0};
	struct state *st;
	int rc, problems = 0;
	bool held = false;
	size_t unattachable, warned = 0;

	if (!(pg = cli_load(c, &rc)))
		return rc;
	printf("programme: %s (%s, language %s)\n", pg->cfg->name, pg->cfg->timezone,
	       pg->cfg->language);
	check_sessions(pg->cal);
	check_rules(pg->cfg);
	check_participants(pg, &problems);
	/* Messages some will get in the programme's language, not their own. */
	if (langcheck_report(pg) < 0)
		problems++;
	/* Every file a message will carry, opened as sending opens it. Their
	 * messages would fail and the rest go: the run starts, but this is
	 * no "OK" (exit 1, not EX_CONFIG). */
	material_check(pg, &errs);
	cli_print_errors(&errs);
	unattachable = errs.n;
	if (errs.n)
		printf("attachments: %zu row%s cannot be attached from %s\n", errs.n,
		       errs.n == 1 ? "" : "s", pg->cfg->material);
	errlist_free(&errs);
	/* What the run would refuse, exactly as the run decides it. */
	preflight(pg, &errs);
	cli_print_errors(&errs);
	problems += (int)errs.n;
	errlist_free(&errs);
	st = state_open(pg->cfg->state, true, &errs);
	if (st && access(pg->cfg->state, F_OK) == 0)
		printf("state: %s (schema version %d)\n", pg->cfg->state, state_schema_version(st));
	else if (st)
		printf("state: %s (created on the first run)\n", pg->cfg->state);
	errlist_free(&errs);
	if (st)
		held = check_removals(&pg, st, &warned);
	state_close(st);
	printf("transport: %s\n", pg->cfg->smtp_url ? pg->cfg->smtp_url : "outbox (no [smtp] url)");
	/* The last line counts what was reported above. */
	size_t warnings = pg->warnings.n + warned, skipped = pg->reg->n_skipped_rows;
	size_t people = pg->reg->n_skipped_participants;
	if (problems) {
		printf("%d problem%s\n", problems, problems == 1 ? "" : "s");
		rc = EX_CONFIG;
	} else if (held) {
		printf("a mass removal would be held: see --plan, then --release-changes or "
		       "--discard-changes\n");
		rc = 1;
	} else if (people || unattachable) {
		if (people)
			printf("%zu warning%s, %zu row%s skipped, %zu of them participant%s: fix the "
			       "rows above\n", warnings, warnings == 1 ? "" : "s", skipped,
			       skipped == 1 ? "" : "s", people, people == 1 ? "" : "s");
		if (unattachable)
			printf("configuration OK, but %zu attachment%s missing or unreadable: "
			       "those messages would fail\n", unattachable,
			       unattachable == 1 ? " is" : "s are");
		rc = 1;
	} else if (warnings) {
		printf("configuration OK; %zu warning%s, %zu row%s skipped\n", warnings,
		       warnings == 1 ? "" : "s", skipped, skipped == 1 ? "" : "s");
	} else {
		printf("configuration OK\n");
	}
	programme_free(pg);
	return rc;
}
