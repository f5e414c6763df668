/* test_calendar.c: the session calendar read from real files with the real
 * libical and tz database: the example programme, an Outlook export with
 * a Windows zone, and calendars that must be rejected with file:line. */
#include "calendar.h"
#include "tz.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

static int setup(void **state)
{
	(void)state;
	return tz_set("Europe/Stockholm") ? 0 : -1;
}

/* Loads a fixture that must parse; prints the errors if it does not. */
static struct calendar *load_ok(const char *path)
{
	struct errlist errs = {0};
	struct calendar *cal = calendar_load(path, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_error("unexpected: %s\n", errs.items[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(cal);
	errlist_free(&errs);
	return cal;
}

/* Loads a fixture that must be rejected with exactly n_want errors, each
 * containing the corresponding substring (in order). */
static void expect_rejected(const char *name, size_t n_want, const char *const *want)
{
	char path[512];
	struct errlist errs = {0};
	struct calendar *cal;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	cal = calendar_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("%s\n", errs.items[i]);
	assert_null(cal);
	assert_int_equal(errs.n, n_want);
	for (size_t i = 0; i < n_want; i++) {
		if (!strstr(errs.items[i], want[i]))
			fail_msg("error %zu \"%s\" lacks \"%s\"", i, errs.items[i], want[i]);
		/* Every message names the file. */
		assert_non_null(strstr(errs.items[i], name));
	}
	errlist_free(&errs);
}

static void test_example_programme(void **state)
{
	struct calendar *cal = load_ok(SOURCE_DIR "/config/programme.ics");
	const struct session *s;
	const struct deadline *d;

	(void)state;
	assert_int_equal(cal->n_sessions, 3);
	s = &cal->sessions[0];
	assert_string_equal(s->uid, "styra-leda-2020-1@example.org");
	assert_string_equal(s->summary, "Leda samhällsutveckling");
	assert_string_equal(s->location, "Långholmens konferens, Långholmsmuren 20, Stockholm");
	assert_non_null(strstr(s->description, "\n- Digitalisering\n"));
	assert_string_equal(s->categories, "session");
	assert_int_equal(s->sequence, 0);
	assert_false(s->cancelled);
	assert_int_equal(s->line, 22);
	assert_int_equal(s->start, utc(2020, 2, 20, 9, 0));
	assert_int_equal(s->end, utc(2020, 2, 21, 12, 0));

	s = &cal->sessions[1];
	assert_string_equal(s->summary, "Styrning och risker");
	assert_int_equal(s->start, utc(2020, 3, 12, 9, 0));
	assert_int_equal(s->end, utc(2020, 3, 13, 12, 0));
	/* May is summer time: 10:00 local is 08:00 UTC. */
	s = &cal->sessions[2];
	assert_string_equal(s->summary, "Dialog och samspel");
	assert_non_null(strstr(s->description, "delaktighet, legitimitet och tillit"));
	assert_int_equal(s->start, utc(2020, 5, 7, 8, 0));
	assert_int_equal(s->end, utc(2020, 5, 8, 11, 0));

	assert_int_equal(cal->n_deadlines, 1);
	d = &cal->deadlines[0];
	assert_string_equal(d->uid, "anmalan-2020@example.org");
	assert_string_equal(d->summary, "Sista anmälningsdag");
	assert_true(d->date_only);
	/* 13 December ends at local midnight: 23:00 UTC. */
	assert_int_equal(d->due, utc(2019, 12, 13, 23, 0));
	assert_true(calendar_has_category(d->categories, "registration"));
	assert_non_null(d->description);

	assert_ptr_equal(calendar_session(cal, "styra-leda-2020-2@example.org"), &cal->sessions[1]);
	assert_null(calendar_session(cal, "anmalan-2020@example.org"));
	assert_ptr_equal(calendar_deadline(cal, "anmalan-2020@example.org"), d);
	assert_null(calendar_deadline(cal, "styra-leda-2020-1@example.org"));
	assert_null(calendar_session(cal, NULL));
	calendar_free(cal);
}

/* Outlook names a Windows zone defined by its own VTIMEZONE (from 1601);
 * the same sessions in Europe/Stockholm from the tz database, and the
 * programme zone's own arithmetic, must give the same instants, also on
 * the days the clocks change. */
static void test_outlook_windows_zone(void **state)
{
	struct calendar *ol = load_ok(FIXTURES "/calendar-outlook.ics");
	struct calendar *iana = load_ok(FIXTURES "/calendar-iana.ics");
	static const int local[5][10] = {
		{2020, 2, 20, 10, 0, 2020, 2, 21, 13, 0},
		{2020, 3, 12, 10, 0, 2020, 3, 13, 13, 0},
		{2020, 5, 7, 10, 0, 2020, 5, 8, 13, 0},
		{2026, 3, 29, 10, 0, 2026, 3, 29, 12, 0},
		{2026, 10, 25, 10, 0, 2026, 10, 25, 12, 0},
	};

	(void)state;
	assert_int_equal(ol->n_sessions, 5);
	assert_int_equal(iana->n_sessions, 5);
	for (size_t i = 0; i < 5; i++) {
		const int *l = local[i];
		assert_string_equal(ol->sessions[i].summary, iana->sessions[i].summary);
		assert_int_equal(ol->sessions[i].start, iana->sessions[i].start);
		assert_int_equal(ol->sessions[i].end, iana->sessions[i].end);
		assert_int_equal(ol->sessions[i].start, tz_mktime(l[0], l[1], l[2], l[3], l[4], 0));
		assert_int_equal(ol->sessions[i].end, tz_mktime(l[5], l[6], l[7], l[8], l[9], 0));
	}
	assert_int_equal(ol->sessions[0].start, utc(2020, 2, 20, 9, 0));
	/* Spring forward: 10:00 CEST; autumn back: 10:00 CET. */
	assert_int_equal(ol->sessions[3].start, utc(2026, 3, 29, 8, 0));
	assert_int_equal(ol->sessions[3].end, utc(2026, 3, 29, 10, 0));
	assert_int_equal(ol->sessions[4].start, utc(2026, 10, 25, 9, 0));
	assert_int_equal(ol->sessions[4].end, utc(2026, 10, 25, 11, 0));
	/* Outlook's folded UID, LANGUAGE parameter and escaped commas. */
	assert_string_equal(ol->sessions[0].uid,
			    "040000008200E00074C5B7101A82E00800000000B0A3F2C54978D50100000000000000"
			    "0010000000E1C94F0D3B6A2C47A1B5C0D2E3F40511");
	assert_string_equal(ol->sessions[0].location,
			    "Långholmens konferens, Långholmsmuren 20, Stockholm");
	assert_string_equal(ol->sessions[0].description,
			    "Utmaningar och komplexa frågor, samverkan, digitalisering.\n");
	assert_int_equal(ol->sessions[3].sequence, 1);
	assert_int_equal(ol->sessions[0].line, 29);
	assert_int_equal(ol->n_deadlines, 0);
	calendar_free(ol);
	calendar_free(iana);
}

static void test_features(void **state)
{
	struct calendar *cal = load_ok(FIXTURES "/calendar-features.ics");
	const struct session *s;
	const struct deadline *d;

	(void)state;
	assert_int_equal(cal->n_sessions, 2);
	/* Sorted by start, not by file order. */
	s = &cal->sessions[0];
	assert_string_equal(s->uid, "cancelled@example.org");
	assert_true(s->cancelled);
	assert_int_equal(s->sequence, 3);
	assert_int_equal(s->line, 13);
	assert_string_equal(s->description, "Första raden\nandra raden, med komma");
	assert_string_equal(s->location, "Långholmen");

	s = calendar_session(cal, "utc@example.org");
	assert_ptr_equal(s, &cal->sessions[1]);
	assert_false(s->cancelled);
	assert_int_equal(s->start, utc(2020, 4, 1, 8, 0));
	assert_int_equal(s->end, utc(2020, 4, 1, 10, 0));
	assert_null(s->location);
	assert_null(s->description);
	assert_int_equal(s->sequence, 0);
	assert_string_equal(s->categories, "Session,Workshop,extra");
	assert_true(calendar_has_category(s->categories, "session"));
	assert_true(calendar_has_category(s->categories, "EXTRA"));
	assert_false(calendar_has_category(s->categories, "registration"));

	assert_int_equal(cal->n_deadlines, 3);
	d = &cal->deadlines[0];
	assert_string_equal(d->uid, "utc-due@example.org");
	assert_false(d->date_only);
	assert_int_equal(d->due, utc(2020, 1, 10, 23, 0));
	assert_null(d->categories);
	assert_null(d->description);
	d = &cal->deadlines[1];
	assert_string_equal(d->uid, "zoned-due@example.org");
	assert_int_equal(d->due, utc(2020, 1, 15, 11, 0));
	/* 29 March 2020 has 23 hours; its end is midnight CEST. */
	d = &cal->deadlines[2];
	assert_string_equal(d->uid, "dst-day@example.org");
	assert_true(d->date_only);
	assert_int_equal(d->due, utc(2020, 3, 29, 22, 0));
	assert_int_equal(d->line, 43);
	assert_true(calendar_has_category(d->categories, "reminder"));
	calendar_free(cal);
}

static void test_has_category(void **state)
{
	(void)state;
	assert_true(calendar_has_category("session", "session"));
	assert_true(calendar_has_category(" Session , registration ", "REGISTRATION"));
	assert_true(calendar_has_category("a,b", " b "));
	assert_false(calendar_has_category("sessions", "session"));
	assert_false(calendar_has_category("a,,b", ""));
	assert_false(calendar_has_category(NULL, "session"));
	assert_false(calendar_has_category("session", NULL));
}

static void test_garbage(void **state)
{
	static const char *const want[] = {"calendar-garbage.ics:1: not an iCalendar file"};

	(void)state;
	expect_rejected("calendar-garbage.ics", 1, want);
}

/* Each bad item is reported, the good one does not save the file. */
static void test_missing_properties(void **state)
{
	static const char *const want[] = {
		"calendar-no-dtend.ics:11: VEVENT \"Leda samhällsutveckling\": no DTEND",
		"calendar-no-dtend.ics:17: VEVENT \"Utan UID\": no UID",
		"calendar-no-dtend.ics:23: VTODO \"Sista anmälningsdag\": no DUE",
	};

	(void)state;
	expect_rejected("calendar-no-dtend.ics", 3, want);
}

/* libical would read an unknown zone as floating time without a word. */
static void test_unknown_tzid(void **state)
{
	static const char *const want[] = {
		"calendar-unknown-tzid.ics:7: VEVENT \"Sjunken ö\": DTSTART: unknown TZID \"Europe/Atlantis\"",
		"calendar-unknown-tzid.ics:8: VEVENT \"Sjunken ö\": DTEND: unknown TZID",
		"calendar-unknown-tzid.ics:14: VEVENT \"Windowszon utan VTIMEZONE\": DTSTART: unknown TZID \"W. Europe Standard Time\"",
		"calendar-unknown-tzid.ics:15: ",
	};

	(void)state;
	expect_rejected("calendar-unknown-tzid.ics", 4, want);
}

static void test_duplicate_uid(void **state)
{
	static const char *const want[] = {
		"calendar-duplicate-uid.ics:11: VEVENT \"Andra\": duplicate UID \"same@example.org\", already used by VEVENT \"Första\" at line 4",
	};

	(void)state;
	expect_rejected("calendar-duplicate-uid.ics", 1, want);
}

static void test_end_before_start(void **state)
{
	static const char *const want[] = {
		"calendar-end-before-start.ics:8: VEVENT \"Baklänges\": DTEND 2020-02-20T10:00:00+01:00 is not after DTSTART 2020-02-21T13:00:00+01:00",
		"calendar-end-before-start.ics:15: VEVENT \"Noll minuter\": DTEND",
	};

	(void)state;
	expect_rejected("calendar-end-before-start.ics", 2, want);
}

static void test_floating_date_recurring(void **state)
{
	static const char *const want[] = {
		"calendar-bad-times.ics:7: VEVENT \"Flytande tid\": DTSTART is a floating time",
		"calendar-bad-times.ics:8: VEVENT \"Flytande tid\": DTEND is a floating time",
		"calendar-bad-times.ics:14: VEVENT \"Heldag\": DTSTART is a date without a time",
		"calendar-bad-times.ics:23: VEVENT \"Varje vecka\": RRULE: recurring sessions are not supported",
		"calendar-bad-times.ics:29: VTODO \"Flytande deadline\": DUE is a floating time",
	};

	(void)state;
	expect_rejected("calendar-bad-times.ics", 5, want);
}

/* Lines libical cannot parse become X-LIC-ERROR; SEQUENCE:two it would
 * quietly read as 0. */
static void test_bad_lines(void **state)
{
	static const char *const want[] = {
		"calendar-bad-lines.ics:6: Can't parse as DATE-TIME value in DTSTAMP property",
		"calendar-bad-lines.ics:10: Got a data line, but could not find a property name or component begin tag: this line has no property name",
		"calendar-bad-lines.ics:11: VEVENT \"Trasiga rader\": SEQUENCE \"two\" is not a whole number",
	};

	(void)state;
	expect_rejected("calendar-bad-lines.ics", 3, want);
}

/* libical returns nothing at all for an unclosed component. */
static void test_unclosed(void **state)
{
	static const char *const want[] = {
		"calendar-unclosed.ics:14: END:VEVENT does not close BEGIN:VTODO of line 10",
		"calendar-unclosed.ics:4: BEGIN:VEVENT is never closed",
		"calendar-unclosed.ics:1: BEGIN:VCALENDAR is never closed",
	};

	(void)state;
	expect_rejected("calendar-unclosed.ics", 3, want);
}

static void test_missing_file(void **state)
{
	struct errlist errs = {0};

	(void)state;
	assert_null(calendar_load(FIXTURES "/calendar-does-not-exist.ics", &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.items[0], "calendar-does-not-exist.ics: cannot read the calendar: No such file"));
	errlist_free(&errs);
	calendar_free(NULL);
}

/* As organisers' tools export: each unusable item skipped and named, the
 * rest used; empty properties are absent ones. */
static void test_google_export_lenient(void **state)
{
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(SOURCE_DIR "/tests/system/data/google-export.ics",
					     NULL, &warn, &errs);
	const struct session *s;

	(void)state;
	for (size_t i = 0; i < warn.n; i++)
		print_message("%s\n", warn.items[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(cal);
	assert_int_equal(cal->n_sessions, 3);
	assert_int_equal(cal->n_deadlines, 0);
	assert_int_equal(warn.n, 2);
	assert_non_null(strstr(warn.items[0], "google-export.ics:63: "));
	assert_non_null(strstr(warn.items[0], "; skipped (UID 0a1b2c3d4e5f6g7h8i9j0k1l2m@google.com)"));
	assert_non_null(strstr(warn.items[1], "google-export.ics:81: "));
	assert_int_equal(cal->n_unreadable, 2);
	assert_true(calendar_is_unreadable(cal, "5r6s7t8u9v0w1x2y3z4a5b6c7d@google.com"));
	s = calendar_session(cal, "7h3k9m2n4p6q8r0s1t3u5v7w9x@google.com");
	assert_non_null(s);
	assert_null(s->location);
	assert_null(s->description);
	assert_int_equal(s->start, utc(2020, 3, 12, 9, 0));
	calendar_free(cal);
	errlist_free(&warn);
}

static void test_outlook_export_category(void **state)
{
	struct calendar_opts opts = {.sessions_category = "STYRA OCH LEDA"};
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(SOURCE_DIR "/tests/system/data/outlook-export.ics",
					     &opts, &warn, &errs);

	(void)state;
	assert_non_null(cal);
	assert_int_equal(cal->n_sessions, 3);
	assert_int_equal(cal->n_ignored, 1); /* the dentist, listed by UID and line */
	assert_int_equal(cal->ignored[0].line, 140);
	assert_string_equal(cal->ignored[0].label, "VEVENT \"Tandläkare\"");
	assert_non_null(strstr(cal->ignored[0].uid, "D9E8F7A6B5C4D3"));
	assert_int_equal(cal->n_deadlines, 1);
	assert_true(cal->deadlines[0].date_only);
	/* The whole of 13 December, Stockholm time. */
	assert_int_equal(cal->deadlines[0].due, utc(2019, 12, 13, 23, 0));
	assert_int_equal(cal->sessions[0].start, utc(2020, 2, 20, 9, 0));
	assert_int_equal(warn.n, 2);
	calendar_free(cal);
	errlist_free(&warn);
}

/* Lenient, two events of one UID that differ are both skipped, each
 * named with the other's line: file order decides nothing. */
static void test_duplicate_uid_lenient(void **state)
{
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(FIXTURES "/calendar-duplicate-uid.ics", NULL, &warn,
					     &errs);

	(void)state;
	for (size_t i = 0; i < warn.n; i++)
		print_message("%s\n", warn.items[i]);
	assert_non_null(cal);
	assert_int_equal(errs.n, 0);
	assert_int_equal(cal->n_sessions, 0);
	assert_true(calendar_is_unreadable(cal, "same@example.org"));
	assert_int_equal(warn.n, 2);
	assert_non_null(strstr(warn.items[0], "calendar-duplicate-uid.ics:4: VEVENT \"Första\": UID "
			       "\"same@example.org\" is also the UID of VEVENT \"Andra\" at line 11, "
			       "which differs: which one is meant cannot be told; skipped (UID "
			       "same@example.org)"));
	assert_non_null(strstr(warn.items[1], "calendar-duplicate-uid.ics:11: VEVENT \"Andra\": UID "
			       "\"same@example.org\" is also the UID of VEVENT \"Första\" at line 4"));
	calendar_free(cal);
	errlist_free(&warn);
}

/* Copies of one UID that differ: the only one at the highest SEQUENCE is
 * read, in any order, sessions and deadlines alike; copies that differ
 * at the highest are all skipped as before. */
static void test_duplicate_uid_sequence(void **state)
{
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(FIXTURES "/calendar-duplicate-uid-sequence.ics", NULL,
					     &warn, &errs);
	const struct session *s;
	const struct deadline *d;

	(void)state;
	for (size_t i = 0; i < warn.n; i++)
		print_message("%s\n", warn.items[i]);
	assert_non_null(cal);
	assert_int_equal(cal->n_sessions, 1);
	s = calendar_session(cal, "moved@example.org");
	assert_non_null(s);
	assert_int_equal(s->start, utc(2020, 3, 19, 9, 0));
	assert_int_equal(s->sequence, 3);
	assert_int_equal(s->line, 4);
	assert_int_equal(cal->n_deadlines, 1);
	d = calendar_deadline(cal, "todo@example.org");
	assert_non_null(d);
	assert_int_equal(d->due, utc(2019, 12, 20, 23, 0));
	assert_null(calendar_session(cal, "tie@example.org"));
	assert_true(calendar_is_unreadable(cal, "tie@example.org"));
	assert_false(calendar_is_unreadable(cal, "moved@example.org"));
	assert_int_equal(warn.n, 5);
	assert_non_null(strstr(warn.items[0], "calendar-duplicate-uid-sequence.ics:12: VEVENT "
			       "\"Flyttad\": UID \"moved@example.org\" is also the UID of VEVENT "
			       "\"Flyttad\" at line 4, a later revision (SEQUENCE 3): this one "
			       "(SEQUENCE 2) is not read (UID moved@example.org)"));
	assert_non_null(strstr(warn.items[1], "calendar-duplicate-uid-sequence.ics:33: VEVENT "
			       "\"Oavgjord\": UID \"tie@example.org\" is also the UID of VEVENT "
			       "\"Oavgjord\" at line 40, which differs: which one is meant cannot "
			       "be told; skipped"));
	assert_non_null(strstr(warn.items[4], "calendar-duplicate-uid-sequence.ics:20: VTODO "
			       "\"Sista anmälningsdag\": UID \"todo@example.org\" is also the UID "
			       "of VTODO \"Sista anmälningsdag\" at line 26, a later revision "
			       "(SEQUENCE 1): this one (SEQUENCE 0) is not read (UID todo@example.org)"));
	calendar_free(cal);
	errlist_free(&warn);
}

/* DTEND;VALUE=DATE after a timed DTSTART: read as 00:00 on that day in
 * the programme zone (RFC 5545: a date end is exclusive), or as the end
 * of that day when it is the day of the start, with a warning; one that
 * ends before it starts is skipped with its own, never in silence. */
static void test_date_end(void **state)
{
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(FIXTURES "/calendar-date-end.ics", NULL, &warn, &errs);
	const struct session *s;

	(void)state;
	for (size_t i = 0; i < warn.n; i++)
		print_message("%s\n", warn.items[i]);
	assert_non_null(cal);
	assert_int_equal(cal->n_sessions, 2);
	s = calendar_session(cal, "date-end@example.org");
	assert_int_equal(s->start, utc(2020, 3, 12, 9, 0));
	assert_int_equal(s->end, utc(2020, 3, 12, 23, 0));
	assert_true(s->end_is_date);
	assert_int_equal(s->end_date, utc(2020, 3, 12, 23, 0));
	s = calendar_session(cal, "date-end-first-day@example.org");
	assert_int_equal(s->end, utc(2020, 5, 7, 22, 0));
	assert_int_equal(s->end_date, utc(2020, 5, 6, 22, 0));
	assert_int_equal(warn.n, 3);
	assert_non_null(strstr(warn.items[0], "calendar-date-end.ics:8: VEVENT \"Slutar en dag\": "
			       "DTEND is a date without a time: read as the start of that day (a "
			       "date end is exclusive, RFC 5545), 2020-03-13T00:00:00+01:00 (UID "
			       "date-end@example.org)"));
	assert_non_null(strstr(warn.items[1], "calendar-date-end.ics:15: VEVENT \"Slutar dagen före\": "
			       "DTEND 2020-03-12T00:00:00+01:00 is not after DTSTART"));
	assert_non_null(strstr(warn.items[1], "; skipped (UID date-end-before@example.org)"));
	assert_non_null(strstr(warn.items[2], "calendar-date-end.ics:22: VEVENT \"Slutar samma dag\": "
			       "DTEND is a date without a time, the day of DTSTART: read as the end "
			       "of that day, 2020-05-08T00:00:00+02:00 (UID "
			       "date-end-first-day@example.org)"));
	assert_true(calendar_is_unreadable(cal, "date-end-before@example.org"));
	calendar_free(cal);
	errlist_free(&warn);
}

/* Google exports no categories: an event named in kallad.conf is a
 * deadline, all-day (the end of that day) or timed, never a session. */
static void test_named_deadline(void **state)
{
	static const char *const uids[] = {"5r6s7t8u9v0w1x2y3z4a5b6c7d@google.com",
					   "7h3k9m2n4p6q8r0s1t3u5v7w9x@google.com"};
	struct calendar_opts opts = {.deadline_uids = uids, .n_deadline_uids = 2};
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(SOURCE_DIR "/tests/system/data/google-export.ics",
					     &opts, &warn, &errs);
	const struct deadline *d;

	(void)state;
	assert_non_null(cal);
	assert_int_equal(cal->n_sessions, 2);
	assert_int_equal(cal->n_deadlines, 2);
	assert_null(calendar_session(cal, uids[1]));
	d = calendar_deadline(cal, uids[0]);
	assert_non_null(d);
	assert_true(d->date_only);
	assert_int_equal(d->due, utc(2019, 12, 13, 23, 0));
	d = calendar_deadline(cal, uids[1]);
	assert_non_null(d);
	assert_false(d->date_only);
	assert_int_equal(d->due, utc(2020, 3, 12, 9, 0));
	assert_int_equal(warn.n, 1); /* the weekly meeting alone */
	calendar_free(cal);
	errlist_free(&warn);
}

/* Google and Apple name the calendar's zone in X-WR-TIMEZONE: a floating
 * time is read in it (summer time included), with a warning when its
 * clock is not the programme zone's; a TZID or UTC time is not touched
 * by it. */
static void test_x_wr_timezone(void **state)
{
	struct errlist warn = {0}, errs = {0};
	struct calendar *cal = calendar_read(FIXTURES "/calendar-x-wr-timezone.ics", NULL, &warn,
					     &errs);
	const struct session *s;

	(void)state;
	assert_non_null(cal);
	for (size_t i = 0; i < warn.n; i++)
		print_message("%s\n", warn.items[i]);
	assert_int_equal(warn.n, 2);
	assert_non_null(strstr(warn.items[0], "calendar-x-wr-timezone.ics:9: VEVENT \"Flytande i New "
			       "York\": DTSTART is a floating time, read in X-WR-TIMEZONE "
			       "\"America/New_York\", whose clock is not the programme zone's "
			       "(Europe/Stockholm): 2020-05-07T16:00:00+02:00; give it a TZID if "
			       "another zone was meant (UID floating-summer@example.org)"));
	assert_non_null(strstr(warn.items[1], "calendar-x-wr-timezone.ics:10: VEVENT \"Flytande i "
			       "New York\": DTEND is a floating time"));
	s = calendar_session(cal, "floating-summer@example.org");
	assert_non_null(s);
	assert_int_equal(s->start, utc(2020, 5, 7, 14, 0)); /* 10:00 EDT */
	assert_int_equal(s->end, utc(2020, 5, 7, 17, 0));
	s = calendar_session(cal, "zoned@example.org");
	assert_non_null(s);
	assert_int_equal(s->start, utc(2020, 2, 20, 9, 0));
	assert_int_equal(s->end, utc(2020, 2, 21, 12, 0));
	calendar_free(cal);
	errlist_free(&warn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_programme),
		cmocka_unit_test(test_outlook_windows_zone),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_has_category),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_missing_properties),
		cmocka_unit_test(test_unknown_tzid),
		cmocka_unit_test(test_duplicate_uid),
		cmocka_unit_test(test_end_before_start),
		cmocka_unit_test(test_floating_date_recurring),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_unclosed),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_google_export_lenient),
		cmocka_unit_test(test_outlook_export_category),
		cmocka_unit_test(test_duplicate_uid_lenient),
		cmocka_unit_test(test_duplicate_uid_sequence),
		cmocka_unit_test(test_date_end),
		cmocka_unit_test(test_named_deadline),
		cmocka_unit_test(test_x_wr_timezone),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
