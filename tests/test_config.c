/* test_config.c: kallad.conf, its drop-ins and its errors (daemon/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical directory plus a name, as config resolves paths. */
static char *under(const char *dir, const char *name)
{
	char *real = realpath(dir, NULL);
	char *path;

	assert_non_null(real);
	path = xasprintf("%s/%s", real, name);
	free(real);
	return path;
}

static void assert_path(const char *got, const char *dir, const char *name)
{
	char *want = under(dir, name);

	assert_string_equal(got, want);
	free(want);
}

static void dump(const struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "  error: %s\n", errs->items[i]);
}

/* An error that starts with FIXTURES/file:line: key: and holds `what`. */
static void assert_error(const struct errlist *errs, const char *where, const char *what)
{
	char *prefix = xasprintf("%s/%s", FIXTURES, where);

	for (size_t i = 0; i < errs->n; i++) {
		if (strncmp(errs->items[i], prefix, strlen(prefix)) == 0 && strstr(errs->items[i], what)) {
			free(prefix);
			return;
		}
	}
	fprintf(stderr, "no error \"%s ... %s\" among:\n", prefix, what);
	dump(errs);
	free(prefix);
	fail();
}

static struct config *load_ok(const char *path)
{
	struct errlist errs = {0};
	struct config *cfg = config_load(path, &errs);

	dump(&errs);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	errlist_free(&errs);
	return cfg;
}

static struct config *load_fixture_bad(const char *name, struct errlist *errs)
{
	char *path = xasprintf("%s/%s", FIXTURES, name);
	struct config *cfg = config_load(path, errs);

	free(path);
	return cfg;
}

static void assert_offsets(const struct rule *r, const char *want)
{
	struct strbuf sb;

	sb_init(&sb);
	for (size_t i = 0; i < r->n_offsets; i++)
		sb_addf(&sb, "%s%d%c", i ? "," : "", r->offsets[i].amount, r->offsets[i].days ? 'd' : 'h');
	assert_string_equal(sb.buf, want);
	sb_free(&sb);
}

static void test_example(void **state)
{
	struct config *cfg = load_ok(SOURCE_DIR "/config/kallad.conf");
	const char *dir = SOURCE_DIR "/config";
	struct rule *r;

	(void)state;
	assert_string_equal(cfg->name, "Fördjupningsprogram i att styra och leda 2020");
	assert_path(cfg->calendar, dir, "programme.ics");
	assert_path(cfg->registrations, dir, "registrations.db");
	assert_path(cfg->state, dir, "state/state.db");
	assert_string_equal(cfg->timezone, "Europe/Stockholm");
	assert_string_equal(cfg->language, "sv");
	assert_path(cfg->templates, dir, "templates"); /* the example's own texts */
	assert_string_equal(cfg->organizer_name, "Lena Lindgren");
	assert_string_equal(cfg->organizer_email, "lena.lindgren@example.org");
	assert_string_equal(cfg->from, "Fördjupningsprogrammet <program@example.org>");
	assert_string_equal(cfg->reply_to, "program@example.org");
	assert_null(cfg->smtp_url); /* the outbox */
	assert_true(cfg->smtp_tls_required);
	assert_int_equal(cfg->max_per_minute, 30);
	assert_int_equal(cfg->timeout, 60);
	assert_int_equal(cfg->end_of_data_timeout, 600); /* RFC 5321 4.5.3.2.6 */
	assert_int_equal(cfg->idle_timeout, 30);
	assert_int_equal(cfg->smtp_connections, 1);
	assert_null(cfg->smtp_ca_file);
	assert_null(cfg->sql_participants);

	assert_int_equal(cfg->n_rules, 3);
	r = &cfg->rules[0];
	assert_string_equal(r->name, "session-reminders");
	assert_string_equal(r->message, "session-reminder");
	assert_offsets(r, "14d,2d");
	assert_int_equal(r->at, 9 * 60);
	assert_int_equal(r->to, AUD_REGISTERED);
	assert_false(r->deadlines);
	assert_false(r->first_only);
	assert_null(r->category);
	r = &cfg->rules[1];
	assert_string_equal(r->name, "registration-deadline");
	assert_true(r->deadlines);
	assert_string_equal(r->category, "registration");
	assert_offsets(r, "14d,7d,1d");
	assert_int_equal(r->to, AUD_INVITED);
	r = &cfg->rules[2];
	assert_string_equal(r->name, "material");
	assert_string_equal(r->message, "material");
	assert_true(r->first_only);
	assert_offsets(r, "14d");
	assert_string_equal(r->file, SOURCE_DIR "/config/kallad.conf");

	assert_int_equal(cfg->quiet_start, 21 * 60);
	assert_int_equal(cfg->quiet_end, 7 * 60);
	assert_false(cfg->late_send);
	assert_int_equal(cfg->min_lead, 6 * 3600);
	assert_false(cfg->changes_hold);
	config_free(cfg);
}

static void test_dropins(void **state)
{
	const char *dir = FIXTURES "/config-dropin";
	const char *ddir = FIXTURES "/config-dropin/kallad.conf.d";
	struct config *cfg = load_ok(FIXTURES "/config-dropin/kallad.conf");

	(void)state;
	/* 10-smtp.conf moved the url, 30-final.conf (read later) set the rate */
	assert_string_equal(cfg->smtp_url, "smtp://127.0.0.1:2525");
	assert_false(cfg->smtp_tls_required);
	assert_int_equal(cfg->max_per_minute, 0); /* not 99999: notes.txt, .hidden.conf unread */
	assert_string_equal(cfg->language, "sv");  /* an empty value restores the default */
	/* relative paths follow the file that named them */
	assert_path(cfg->calendar, dir, "programme.ics");
	assert_path(cfg->registrations, dir, "data/registrations.db");
	assert_string_equal(cfg->state, "/var/lib/kallad/state.db");
	assert_path(cfg->templates, ddir, "templates");
	assert_path(cfg->smtp_password, ddir, "secrets/smtp-password");

	assert_int_equal(cfg->n_rules, 2);
	assert_string_equal(cfg->rules[0].name, "early");
	assert_offsets(&cfg->rules[0], "7d,1d"); /* overridden */
	assert_int_equal(cfg->rules[0].at, 9 * 60); /* kept */
	assert_string_equal(cfg->rules[0].file, FIXTURES "/config-dropin/kallad.conf");
	assert_int_equal(cfg->rules[0].line, 18);
	assert_string_equal(cfg->rules[1].name, "late");
	assert_true(cfg->rules[1].deadlines);
	assert_offsets(&cfg->rules[1], "48h");
	assert_int_equal(cfg->rules[1].at, -1);
	assert_int_equal(cfg->rules[1].to, AUD_INVITED);
	assert_string_equal(cfg->rules[1].file, FIXTURES "/config-dropin/kallad.conf.d/20-rules.conf");
	assert_int_equal(cfg->rules[1].line, 5);
	config_free(cfg);
}

static void test_inline_comments(void **state)
{
	const char *dir = FIXTURES;
	struct config *cfg = load_ok(FIXTURES "/config-inline.conf");

	(void)state;
	assert_string_equal(cfg->name, "Kurs i ledarskap");
	assert_path(cfg->calendar, dir, "cal.ics");
	assert_path(cfg->registrations, dir, "reg#1.db"); /* no space before '#': kept */
	assert_string_equal(cfg->state, "/var/lib/kallad/state.db");
	assert_string_equal(cfg->language, "en");
	assert_string_equal(cfg->from, "\"Kurs, ledning\" <kurs@example.org>");
	assert_int_equal(cfg->quiet_start, 22 * 60 + 30);
	assert_int_equal(cfg->quiet_end, 6 * 60 + 15);
	assert_int_equal(cfg->min_lead, 30 * 60);
	assert_true(cfg->late_send);
	assert_true(cfg->changes_hold);
	/* a line far longer than inih's 200-byte default arrives whole */
	assert_true(strlen(cfg->sql_participants) > 200);
	assert_non_null(strstr(cfg->sql_participants, "ORDER BY epost"));
	assert_string_equal(cfg->sql_participants + strlen(cfg->sql_participants) - 14, "ORDER BY epost");
	/* defaults of what is absent */
	assert_null(cfg->smtp_url);
	assert_true(cfg->smtp_tls_required);
	assert_int_equal(cfg->timeout, 60);
	assert_null(cfg->templates);
	assert_int_equal(cfg->n_rules, 0);
	config_free(cfg);
}

static void test_every_error(void **state)
{
	struct errlist errs = {0};
	struct config *cfg = load_fixture_bad("config-errors.conf", &errs);

	(void)state;
	assert_null(cfg);
	assert_error(&errs, "config-errors.conf:7: timezone: ", "\"Europe/Stockolm\" is not a time zone");
	assert_error(&errs, "config-errors.conf:8: colour: ", "unknown key in [programme]");
	assert_error(&errs, "config-errors.conf:16: tls: ", "only for a loopback server");
	assert_error(&errs, "config-errors.conf:17: connections: ", "\"17\" is not a whole number from 1 to 16");
	assert_error(&errs, "config-errors.conf:20: before: ", "\"2w\" is not Nd");
	assert_error(&errs, "config-errors.conf:21: at: ", "\"9.00\" is not HH:MM");
	assert_error(&errs, "config-errors.conf:24: to: ", "[rule no-to] needs to");
	assert_error(&errs, "config-errors.conf:28: [rule]: ", "a rule needs a name");
	assert_error(&errs, "config-errors.conf:32: quiet-hours: ", "same time");
	assert_error(&errs, "config-errors.conf:33: min-lead: ", "\"6 hours\" is not a duration");
	assert_error(&errs, "config-errors.conf:35: [holiday]: ", "unknown section");
	assert_error(&errs, "config-errors.conf:38: syntax: ", "key = value");
	/* all of them, and nothing more: a rejected value is not also "missing" */
	if (errs.n != 12)
		dump(&errs);
	assert_int_equal(errs.n, 12);
	/* one file's errors read top to bottom */
	assert_non_null(strstr(errs.items[0], ":7: "));
	assert_non_null(strstr(errs.items[1], ":8: "));
	errlist_free(&errs);
}

static void test_syntax_slips(void **state)
{
	struct errlist errs = {0};
	struct config *cfg = load_fixture_bad("config-syntax.conf", &errs);

	(void)state;
	assert_null(cfg);
	assert_error(&errs, "config-syntax.conf:1: stray: ", "outside any section");
	assert_error(&errs, "config-syntax.conf:9: timezone: ", "\"Europe\" is not a time zone"); /* a directory */
	assert_error(&errs, "config-syntax.conf:10: syntax: ", "key = value");
	assert_error(&errs, "config-syntax.conf:15: [rule b]: ", "unexpected text after ]");
	assert_error(&errs, "config-syntax.conf:17: before: ", "\"1d\" is given twice");
	/* line 11 sits under the broken header: not checked as [programme] */
	assert_int_equal(errs.n, 5);
	errlist_free(&errs);
}

static void test_missing_keys(void **state)
{
	struct errlist errs = {0};
	struct config *cfg = load_fixture_bad("config-missing.conf", &errs);

	(void)state;
	assert_null(cfg);
	/* at the header of the section that lacks them */
	assert_error(&errs, "config-missing.conf:2: calendar: ", "[programme] needs calendar");
	assert_error(&errs, "config-missing.conf:2: registrations: ", "needs registrations");
	assert_error(&errs, "config-missing.conf:2: state: ", "needs state");
	assert_error(&errs, "config-missing.conf:2: timezone: ", "needs timezone");
	/* no [organizer] at all: no line to name */
	assert_error(&errs, "config-missing.conf: email: ", "[organizer] needs email");
	assert_error(&errs, "config-missing.conf: from: ", "[organizer] needs from");
	assert_error(&errs, "config-missing.conf:7: sessions: ", "not deadline-reminder");
	assert_int_equal(errs.n, 7);
	errlist_free(&errs);
}

static void test_dropin_errors(void **state)
{
	struct errlist errs = {0};
	struct config *cfg = load_fixture_bad("config-dropin-errors/kallad.conf", &errs);

	(void)state;
	assert_null(cfg);
	assert_error(&errs, "config-dropin-errors/kallad.conf.d/50-remote.conf:5: sender: ", "unknown key in [organizer]");
	assert_error(&errs, "config-dropin-errors/kallad.conf.d/50-remote.conf:6: from: ", "organizer's domain (example.org)");
	/* tls = none was fine in the main file until the drop-in moved the url */
	assert_error(&errs, "config-dropin-errors/kallad.conf:15: tls: ", "not mail.example.org");
	assert_int_equal(errs.n, 3);
	errlist_free(&errs);
}

static void test_unreadable(void **state)
{
	struct errlist errs = {0};
	struct config *cfg = config_load(FIXTURES "/config-no-such-file.conf", &errs);

	(void)state;
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	assert_error(&errs, "config-no-such-file.conf: file: ", "No such file");
	errlist_free(&errs);
}

static void test_audience_name(void **state)
{
	(void)state;
	assert_string_equal(config_audience_name(AUD_REGISTERED), "registered");
	assert_string_equal(config_audience_name(AUD_INVITED), "invited");
	assert_string_equal(config_audience_name(AUD_WAITLISTED), "waitlisted");
	assert_string_equal(config_audience_name(AUD_ALL), "all");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_dropins),
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_every_error),
		cmocka_unit_test(test_syntax_slips),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_dropin_errors),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_audience_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
