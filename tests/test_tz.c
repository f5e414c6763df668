/* test_tz.c: local wall-clock times to instants (daemon/tz.c): the DST
 * gap moves forward by the gap, the repeated hour takes its first
 * occurrence (RFC 5545 §3.3.5), in zones north and south, with whole and
 * half-hour changes; and the 1970-2200 range of accepted dates. */
#include "tz.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect(const char *zone, int y, int mo, int d, int h, int mi, const char *want)
{
	char got[40];

	assert_true(tz_set(zone));
	tz_rfc3339(tz_mktime(y, mo, d, h, mi, 0), got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s %04d-%02d-%02d %02d:%02d: got %s, want %s", zone, y, mo, d, h, mi, got, want);
}

static void test_spring_gap(void **state)
{
	(void)state;
	expect("Europe/Stockholm", 2020, 3, 29, 2, 0, "2020-03-29T03:00:00+02:00");
	expect("Europe/Stockholm", 2020, 3, 29, 2, 30, "2020-03-29T03:30:00+02:00");
	expect("Europe/Stockholm", 2020, 3, 29, 1, 59, "2020-03-29T01:59:00+01:00");
	expect("Europe/Stockholm", 2020, 3, 29, 3, 0, "2020-03-29T03:00:00+02:00");
	expect("America/New_York", 2020, 3, 8, 2, 30, "2020-03-08T03:30:00-04:00");
	/* Southern hemisphere: Sydney springs forward in October. */
	expect("Australia/Sydney", 2020, 10, 4, 2, 30, "2020-10-04T03:30:00+11:00");
	/* Half an hour forward at 02:00 on Lord Howe Island. */
	expect("Australia/Lord_Howe", 2020, 10, 4, 2, 15, "2020-10-04T02:45:00+11:00");
}

static void test_autumn_repeat(void **state)
{
	(void)state;
	expect("Europe/Stockholm", 2020, 10, 25, 2, 30, "2020-10-25T02:30:00+02:00");
	expect("Europe/Stockholm", 2020, 10, 25, 2, 0, "2020-10-25T02:00:00+02:00");
	expect("Europe/Stockholm", 2020, 10, 25, 3, 0, "2020-10-25T03:00:00+01:00");
	expect("Europe/Stockholm", 2020, 10, 25, 1, 59, "2020-10-25T01:59:00+02:00");
	expect("America/New_York", 2020, 11, 1, 1, 30, "2020-11-01T01:30:00-04:00");
	expect("Australia/Sydney", 2020, 4, 5, 2, 30, "2020-04-05T02:30:00+11:00");
	expect("Australia/Lord_Howe", 2020, 4, 5, 1, 45, "2020-04-05T01:45:00+11:00");
}

static void test_ordinary_days_and_normalising(void **state)
{
	(void)state;
	expect("Europe/Stockholm", 2020, 2, 20, 10, 0, "2020-02-20T10:00:00+01:00");
	expect("Europe/Stockholm", 2020, 7, 1, 9, 0, "2020-07-01T09:00:00+02:00");
	/* Days out of range are normalised: 14 days before 6 April. */
	expect("Europe/Stockholm", 2020, 4, 6 - 14, 9, 0, "2020-03-23T09:00:00+01:00");
	expect("UTC", 2020, 3, 29, 2, 30, "2020-03-29T02:30:00+00:00");
}

static void test_range(void **state)
{
	time_t t;

	(void)state;
	assert_true(tz_set("Europe/Stockholm"));
	assert_true(tz_parse_rfc3339("1970-01-01T00:00:00Z", &t));
	assert_true(tz_parse_rfc3339("2200-12-31T23:59:59Z", &t));
	assert_false(tz_parse_rfc3339("2201-01-01T00:00:00Z", &t));
	assert_false(tz_parse_rfc3339("1969-12-31T23:59:59Z", &t));
	assert_false(tz_parse_rfc3339("9999-12-31T23:59:59+14:00", &t));
	assert_false(tz_parse_rfc3339("2300-01-01T00:00:00", &t));
	/* Days the calendar does not have are not normalised into March. */
	assert_false(tz_parse_rfc3339("2020-02-31T08:00", &t));
	assert_false(tz_parse_rfc3339("2019-02-29T08:00:00+01:00", &t));
	assert_false(tz_parse_rfc3339("2020-04-31 08:00", &t));
	assert_true(tz_parse_rfc3339("2020-02-29T08:00", &t));
	assert_true(tz_parse_rfc3339("2000-02-29T08:00Z", &t));
	assert_false(tz_parse_rfc3339("2100-02-29T08:00Z", &t));
	assert_true(tz_date_exists(2020, 12, 31));
	assert_false(tz_date_exists(2020, 13, 1));
	assert_false(tz_date_exists(2020, 1, 0));
	assert_true(tz_in_range(0));
	assert_false(tz_in_range(-1));
	assert_false(tz_in_range(TZ_END));
}

/* The exact "YYYY-MM-DD HH:MM" head is read without sscanf; every other
 * form that sscanf's "%4d-%2d-%2d" and "%2d" take still reads the same. */
static void test_parse_forms(void **state)
{
	static const struct {
		const char *text;
		bool ok;
		time_t t;
	} cases[] = {
	    {"2019-11-20T08:00:00+01:00", true, 1574233200},
	    {"2019-11-20 08:00", true, 1574233200},
	    {"2019-11-20 08:00:30", true, 1574233230},
	    {"2019-11-20t08:00:00Z", true, 1574236800},
	    {"2019-11-20T08:00:00.250Z", true, 1574236800},
	    {"2019-11-20 07:00-00:00", true, 1574233200},
	    {"2019-1-20 08:00", true, 1547967600}, /* sscanf's, as before */
	    {"2019-11-20 8:00", true, 1574233200},
	    {"2019-11-20 08:0", true, 1574233200},
	    {"2019-11-20X08:00", false, 0},
	    {"2019-11-20 08:00+0100", false, 0},
	    {"2019-13-20 08:00", false, 0},
	    {"2019-11-20 24:00", false, 0},
	    {"2019-11-20 08:00x", false, 0},
	    {"2019-11-2a 08:00", false, 0},
	};
	time_t t;

	(void)state;
	assert_true(tz_set("Europe/Stockholm"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = tz_parse_rfc3339(cases[i].text, &t);

		if (ok != cases[i].ok || (ok && t != cases[i].t))
			fail_msg("%s: %s %lld", cases[i].text, ok ? "read as" : "refused",
				 ok ? (long long)t : 0LL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spring_gap),
		cmocka_unit_test(test_autumn_repeat),
		cmocka_unit_test(test_ordinary_days_and_normalising),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_parse_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
