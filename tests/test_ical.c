/* test_ical.c: the iTIP object of daemon/ical.c, held against INTEROP.md
 * line by line, read back by libical and by Python's icalendar/pytz, and
 * sent through tests/check_message.py (and ../shared/tools/check-message
 * when present) inside a real MIME message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ical.h"
#include "mime.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/kallad-ical-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_true(remove_tree(tmpdir));
	return 0;
}

static int stockholm(void **state)
{
	(void)state;
	assert_true(tz_set("Europe/Stockholm"));
	return 0;
}

static struct session example(void)
{
	struct session s = {
		.uid = "2020-1-leda@example.org",
		.summary = "Leda samhällsutveckling",
		.location = "Långholmens konferens, Stockholm",
		.description = "Utmaningar och komplexa frågor\nSamverkan\nDigitalisering",
		.start = tz_mktime(2020, 2, 20, 10, 0, 0),
		.end = tz_mktime(2020, 2, 21, 13, 0, 0),
	};
	return s;
}

static struct ical_req request(const struct session *s, enum ical_method m)
{
	struct ical_req r = {
		.method = m,
		.session = s,
		.sequence = m == ICAL_KIND_CANCEL ? 2 : 1,
		.organizer_name = "Lena Lindgren",
		.organizer_email = "lena.lindgren@example.org",
		.attendee_name = "Åsa Öberg",
		.attendee_email = "asa.oberg@kommun.example.se",
		.now = 1577872800, /* 2020-01-01 10:00 UTC */
	};
	return r;
}

/* The unfolded content lines of an object, for exact comparisons. */
static bool has_line(const char *ics, const char *line)
{
	char *unfolded = xstrdup(ics), *w = unfolded, *pat;
	bool found;

	for (const char *r = ics; *r; r++) {
		if (r[0] == '\r' && r[1] == '\n' && r[2] == ' ') {
			r += 2;
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
	pat = xasprintf("\r\n%s\r\n", line);
	found = strstr(unfolded, pat) != NULL;
	free(pat);
	free(unfolded);
	return found;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

#define assert_line(ics, line) \
	do { \
		if (!has_line(ics, line)) \
			fail_msg("missing line %s in\n%s", line, ics); \
	} while (0)

/* I1, I2: CRLF only, no empty line, at most 75 octets, folds never inside
 * a UTF-8 sequence, valid UTF-8 throughout. */
static void assert_lines(const char *ics)
{
	const char *p = ics;

	while (*p) {
		const char *end = strstr(p, "\r\n");
		size_t n;

		assert_non_null(end);
		n = (size_t)(end - p);
		assert_true(n > 0);
		if (n > 75)
			fail_msg("line of %zu octets: %.*s", n, (int)n, p);
		assert_null(memchr(p, '\n', n));
		assert_null(memchr(p, '\r', n));
		if (*p == ' ') /* a continuation never starts mid-sequence */
			assert_int_not_equal((unsigned char)p[1] & 0xc0, 0x80);
		for (size_t i = 0; i < n; i++) /* TAB aside, no controls */
			assert_false((unsigned char)p[i] < 0x20);
		p = end + 2;
	}
	/* Whole-object UTF-8 check with line ends removed (str_valid_utf8
	 * rejects control characters). */
	{
		char *flat = xstrdup(ics), *w = flat;

		for (char *r = flat; *r; r++)
			if (*r != '\r' && *r != '\n')
				*w++ = *r;
		*w = '\0';
		assert_true(str_valid_utf8(flat, strlen(flat)));
		free(flat);
	}
}

static void request_structure(void **state)
{
	struct session s = example();
	struct ical_req r = request(&s, ICAL_KIND_REQUEST);
	char *ics = ical_build(&r);

	(void)state;
	assert_lines(ics);
	assert_true(strncmp(ics, "BEGIN:VCALENDAR\r\n", 17) == 0);
	assert_line(ics, "VERSION:2.0");
	assert_line(ics, "METHOD:REQUEST");
	assert_int_equal(count(ics, "\r\nPRODID:-//kallad//kallad "), 1);
	assert_int_equal(count(ics, "BEGIN:VTIMEZONE"), 1);
	assert_line(ics, "TZID:Europe/Stockholm");
	assert_int_equal(count(ics, "BEGIN:STANDARD"), 1);
	assert_int_equal(count(ics, "BEGIN:DAYLIGHT"), 1);
	assert_line(ics, "DTSTART:19701025T030000");
	assert_line(ics, "DTSTART:19700329T020000");
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10");
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3");
	assert_line(ics, "TZOFFSETFROM:+0100");
	assert_line(ics, "TZOFFSETTO:+0200");
	assert_int_equal(count(ics, "BEGIN:VEVENT"), 1);
	assert_line(ics, "UID:2020-1-leda@example.org");
	assert_line(ics, "DTSTAMP:20200101T100000Z");
	assert_line(ics, "DTSTART;TZID=Europe/Stockholm:20200220T100000");
	assert_line(ics, "DTEND;TZID=Europe/Stockholm:20200221T130000");
	assert_line(ics, "SUMMARY:Leda samhällsutveckling");
	assert_line(ics, "LOCATION:Långholmens konferens\\, Stockholm");
	assert_line(ics, "DESCRIPTION:Utmaningar och komplexa frågor\\nSamverkan\\nDigitalisering");
	assert_line(ics, "SEQUENCE:1");
	assert_line(ics, "STATUS:CONFIRMED");
	assert_line(ics, "ORGANIZER;CN=Lena Lindgren:mailto:lena.lindgren@example.org");
	assert_line(ics, "ATTENDEE;CN=Åsa Öberg;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;"
			 "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:asa.oberg@kommun.example.se");
	assert_int_equal(count(ics, "ATTENDEE"), 1);
	assert_true(strcmp(ics + strlen(ics) - 15, "END:VCALENDAR\r\n") == 0);
	/* I4, I5, I16, I18, I20 */
	assert_null(strstr(ics, "X-WR"));
	assert_null(strstr(ics, "VALARM"));
	assert_null(strstr(ics, "RDATE"));
	assert_null(strstr(ics, "DURATION"));
	assert_null(strstr(ics, "freeassociation"));
	assert_null(strstr(ics, "X-LIC"));
	free(ics);
}

static void cancel_form(void **state)
{
	struct session s = example();
	struct ical_req r = request(&s, ICAL_KIND_CANCEL);
	char *ics = ical_build(&r);

	(void)state;
	assert_lines(ics);
	assert_line(ics, "METHOD:CANCEL");
	assert_line(ics, "STATUS:CANCELLED");
	assert_line(ics, "SEQUENCE:2");
	assert_line(ics, "UID:2020-1-leda@example.org");
	assert_line(ics, "ORGANIZER;CN=Lena Lindgren:mailto:lena.lindgren@example.org");
	assert_non_null(strstr(ics, "RSVP=FALSE"));
	assert_null(strstr(ics, "RSVP=TRUE"));
	assert_null(strstr(ics, "CONFIRMED"));
	assert_string_equal(ical_method_name(ICAL_KIND_CANCEL), "CANCEL");
	assert_string_equal(ical_method_name(ICAL_KIND_REQUEST), "REQUEST");
	free(ics);
}

/* I13 once, I14, I15. */
static void escaping_and_names(void **state)
{
	struct session s = example();
	struct ical_req r = request(&s, ICAL_KIND_REQUEST);
	char *ics;

	(void)state;
	s.summary = "Mål, medel; och \\ risker\r\nrad två";
	s.location = "";
	s.description = NULL;
	r.attendee_name = "Eve \"the\" ^Hacker\r\nATTENDEE:mailto:x@evil.example; Jr, Esq: x";
	r.organizer_name = "";
	ics = ical_build(&r);
	assert_lines(ics);
	assert_line(ics, "SUMMARY:Mål\\, medel\\; och \\\\ risker rad två");
	assert_null(strstr(ics, "LOCATION"));
	assert_null(strstr(ics, "DESCRIPTION"));
	assert_line(ics, "ORGANIZER:mailto:lena.lindgren@example.org");
	assert_line(ics, "ATTENDEE;CN=\"Eve the Hacker ATTENDEE:mailto:x@evil.example; Jr, Esq: x\";"
			 "CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:"
			 "mailto:asa.oberg@kommun.example.se");
	assert_int_equal(count(ics, "ATTENDEE"), 2); /* the property, and the text in CN */
	assert_int_equal(count(ics, "\r\nATTENDEE"), 1);
	free(ics);
}

/* I2 with multibyte text: 10 kB of Swedish and four-byte characters. */
static void folding_multibyte(void **state)
{
	struct session s = example();
	struct ical_req r = request(&s, ICAL_KIND_REQUEST);
	struct strbuf desc, want;
	icalcomponent *back, *ev;
	char *ics;

	(void)state;
	sb_init(&desc);
	while (desc.len < 10000)
		sb_add(&desc, "Åäö 📅 räksmörgås, ");
	sb_add(&desc, "slut");
	s.description = desc.buf;
	s.summary = "ÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅ€€€€€€€€€€€€€€";
	ics = ical_build(&r);
	assert_lines(ics);
	/* libical reads back exactly the text (escaped once, unescaped once). */
	back = icalparser_parse_string(ics);
	assert_non_null(back);
	assert_int_equal(icalcomponent_count_errors(back), 0);
	ev = icalcomponent_get_first_component(back, ICAL_VEVENT_COMPONENT);
	assert_string_equal(icalcomponent_get_description(ev), desc.buf);
	assert_string_equal(icalcomponent_get_summary(ev), s.summary);
	icalcomponent_free(back);
	/* A line of two-byte letters: 37 of them fill 74 octets, not 75. */
	sb_init(&want);
	for (int i = 0; i < 100; i++)
		sb_add(&want, "å");
	{
		struct strbuf out;

		sb_init(&out);
		ical_fold_line(&out, want.buf, want.len);
		assert_int_equal(strstr(out.buf, "\r\n") - out.buf, 74);
		assert_lines(out.buf);
		sb_free(&out);
	}
	sb_free(&want);
	sb_free(&desc);
	free(ics);
}

static void deterministic(void **state)
{
	struct session s = example();
	struct ical_req r = request(&s, ICAL_KIND_REQUEST);
	char *a = ical_build(&r), *b = ical_build(&r);

	(void)state;
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* The "Event:" lines of the readback script: Python's UTC instants, via
 * the tz database (pytz) and via the object's own VTIMEZONE. */
static void assert_instants(const char *ics, const struct session *s)
{
	char *out, *want;

	put_file(tmpdir, "event.ics", ics);
	out = readback(tmpdir, "event.ics", false);
	want = xasprintf("Event: %s|%s|%lld|%lld|%lld|%lld|", s->uid, "REQUEST",
			 (long long)s->start, (long long)s->end, (long long)s->start,
			 (long long)s->end);
	if (!strstr(out, want))
		fail_msg("want %s in\n%s\n%s", want, out, ics);
	free(want);
	free(out);
}

static void check_instants(const struct session *s)
{
	struct ical_req r = request(s, ICAL_KIND_REQUEST);
	char *ics = ical_build(&r);

	assert_lines(ics);
	assert_instants(ics, s);
	free(ics);
}

/* Sessions over both 2026 changes of daylight saving, 26 and 24 real
 * hours long, and one starting in the spring gap hour. */
static void instants_across_dst(void **state)
{
	struct session s = example();

	(void)state;
	check_instants(&s);
	s.start = tz_mktime(2026, 3, 28, 10, 0, 0);
	s.end = tz_mktime(2026, 3, 29, 13, 0, 0);
	assert_int_equal(s.end - s.start, 26 * 3600);
	check_instants(&s);
	s.start = tz_mktime(2026, 3, 29, 10, 0, 0);
	s.end = tz_mktime(2026, 3, 29, 13, 0, 0);
	check_instants(&s);
	s.start = tz_mktime(2026, 10, 24, 10, 0, 0);
	s.end = tz_mktime(2026, 10, 25, 13, 0, 0);
	assert_int_equal(s.end - s.start, 28 * 3600);
	check_instants(&s);
	/* 02:30 on 25 October 2026 happens twice: both are written in UTC. */
	s.start = 1792888200; /* 2026-10-25T00:30:00Z = 02:30 CEST */
	s.end = s.start + 2 * 3600; /* 03:30 CET */
	check_instants(&s);
	{
		struct ical_req r = request(&s, ICAL_KIND_REQUEST);
		char *ics = ical_build(&r);

		assert_line(ics, "DTSTART:20261025T003000Z");
		free(ics);
	}
	s.start = 1792891800; /* 2026-10-25T01:30:00Z = 02:30 CET, the second */
	s.end = s.start + 3600;
	check_instants(&s);
	{
		struct ical_req r = request(&s, ICAL_KIND_REQUEST);
		char *ics = ical_build(&r);

		assert_line(ics, "DTSTART:20261025T013000Z");
		assert_line(ics, "DTEND;TZID=Europe/Stockholm:20261025T033000");
		free(ics);
	}
	/* Both ends in the repeated hour: no TZID used, so no VTIMEZONE (I17). */
	s.end = s.start + 900;
	{
		struct ical_req r = request(&s, ICAL_KIND_REQUEST);
		char *ics = ical_build(&r);

		assert_line(ics, "DTEND:20261025T014500Z");
		assert_null(strstr(ics, "VTIMEZONE"));
		free(ics);
	}
}

/* An Outlook calendar with a Windows zone: libical resolves it from the
 * file; the session's instants come out in Europe/Stockholm unchanged. */
static void instants_from_outlook_zone(void **state)
{
	char *path = xasprintf("%s/ical-outlook.ics", FIXTURES);
	char *text = read_file(path, NULL);
	icalcomponent *cal, *ev;
	int n = 0;

	(void)state;
	assert_non_null(text);
	cal = icalparser_parse_string(text);
	assert_non_null(cal);
	for (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
	     ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
		struct icaltimetype a = icalcomponent_get_dtstart(ev), b = icalcomponent_get_dtend(ev);
		struct session s = example();

		assert_non_null(a.zone);
		s.uid = (char *)icalcomponent_get_uid(ev);
		s.summary = (char *)icalcomponent_get_summary(ev);
		s.start = icaltime_as_timet_with_zone(a, a.zone);
		s.end = icaltime_as_timet_with_zone(b, b.zone);
		/* The Windows zone is CET/CEST: same wall clock in Stockholm. */
		assert_int_equal(s.start, tz_mktime(a.year, a.month, a.day, a.hour, a.minute, 0));
		assert_int_equal(s.end, tz_mktime(b.year, b.month, b.day, b.hour, b.minute, 0));
		check_instants(&s);
		n++;
	}
	assert_int_equal(n, 2);
	icalcomponent_free(cal);
	free(text);
	free(path);
}

static char *zone_object(const char *zone, time_t when)
{
	struct session s = example();
	struct ical_req r;
	char *ics;

	assert_true(tz_set(zone));
	s.start = when;
	s.end = when + 3600;
	r = request(&s, ICAL_KIND_REQUEST);
	ics = ical_build(&r);
	assert_lines(ics);
	assert_instants(ics, &s);
	return ics;
}

/* Other rules: the US second/first Sunday, the southern hemisphere, and a
 * zone without daylight saving (one STANDARD, no RRULE). */
static void other_zones(void **state)
{
	char *ics;

	(void)state;
	ics = zone_object("America/New_York", 1783000000);
	assert_line(ics, "TZID:America/New_York");
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3");
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11");
	assert_line(ics, "DTSTART;TZID=America/New_York:20260702T094640");
	free(ics);
	ics = zone_object("Australia/Sydney", 1783000000);
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=10");
	assert_line(ics, "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4");
	free(ics);
	ics = zone_object("Asia/Tokyo", 1783000000);
	assert_int_equal(count(ics, "BEGIN:STANDARD"), 1);
	assert_null(strstr(ics, "DAYLIGHT"));
	assert_null(strstr(ics, "RRULE"));
	assert_line(ics, "TZOFFSETTO:+0900");
	free(ics);
	assert_true(tz_set("Europe/Stockholm"));
}

/* The object inside a real message passes check-message (REQUEST and
 * CANCEL). */
static void passes_check_message(void **state)
{
	struct session s = example();

	(void)state;
	for (int m = 0; m < 2; m++) {
		struct ical_req r = request(&s, m ? ICAL_KIND_CANCEL : ICAL_KIND_REQUEST);
		char *ics = ical_build(&r), *type, *path, *cmd, *out;
		struct mime_part *mixed = mime_multipart("mixed"), *alt = mime_multipart("alternative");
		struct strbuf sb;

		type = xasprintf("text/calendar; charset=UTF-8; method=%s", ical_method_name(r.method));
		mime_add(alt, mime_leaf("text/plain; charset=UTF-8", NULL, "Hej!\n", 5,
					MIME_QUOTED_PRINTABLE));
		mime_add(alt, mime_leaf(type, NULL, ics, strlen(ics), MIME_BASE64));
		mime_add(mixed, alt);
		mime_add(mixed, mime_leaf("application/ics; name=\"invite.ics\"",
					  "attachment; filename=\"invite.ics\"", ics, strlen(ics),
					  MIME_BASE64));
		sb_init(&sb);
		mime_header_mailbox(&sb, "From", "Fördjupningsprogrammet", "program@example.org");
		mime_header_mailbox(&sb, "To", r.attendee_name, r.attendee_email);
		mime_header_text(&sb, "Subject", "Inbjudan");
		mime_header_date(&sb, r.now);
		sb_add(&sb, "Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n"
			    "Auto-Submitted: auto-generated\r\n");
		mime_write(&sb, mixed, "k");
		path = write_in(tmpdir, m ? "cancel.eml" : "request.eml", sb.buf, sb.len);
		cmd = check_message_cmd("lena.lindgren@example.org", path);
		out = cmd_output(cmd, 0);
		assert_string_equal(out, "1 passed, 0 failed\n");
		free(out);
		free(cmd);
		free(path);
		free(type);
		free(ics);
		sb_free(&sb);
		mime_free(mixed);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(request_structure, stockholm),
		cmocka_unit_test_setup(cancel_form, stockholm),
		cmocka_unit_test_setup(escaping_and_names, stockholm),
		cmocka_unit_test_setup(folding_multibyte, stockholm),
		cmocka_unit_test_setup(deterministic, stockholm),
		cmocka_unit_test_setup(instants_across_dst, stockholm),
		cmocka_unit_test_setup(instants_from_outlook_zone, stockholm),
		cmocka_unit_test_setup(other_zones, stockholm),
		cmocka_unit_test_setup(passes_check_message, stockholm),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
