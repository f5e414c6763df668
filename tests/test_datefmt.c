/* test_datefmt.c: dates as Swedish and English readers expect them, in
 * the programme zone, whatever TZ or locale the process started with. */
#include "datefmt.h"
#include "tz.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
	(void)state;
	return tz_set("Europe/Stockholm") ? 0 : -1;
}

/* Compares and frees what a datefmt function returned. */
static void expect_str(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_when_date_time(void **state)
{
	time_t t = tz_mktime(2020, 2, 20, 10, 0, 0);

	(void)state;
	expect_str(datefmt_when("sv", t), "torsdag 20 februari 2020 kl. 10.00");
	expect_str(datefmt_when("en", t), "Thursday 20 February 2020 at 10:00");
	expect_str(datefmt_date("sv", tz_mktime(2019, 12, 13, 23, 59, 0)), "fredag 13 december 2019");
	expect_str(datefmt_date("en", tz_mktime(2019, 12, 13, 0, 0, 0)), "Friday 13 December 2019");
	expect_str(datefmt_time("sv", t), "10.00");
	expect_str(datefmt_time("en", t), "10:00");
	/* Hours without a leading zero, minutes always two digits. */
	expect_str(datefmt_time("sv", tz_mktime(2020, 3, 12, 9, 5, 0)), "9.05");
	expect_str(datefmt_time("en", tz_mktime(2020, 3, 12, 9, 5, 0)), "9:05");
}

static void test_all_names(void **state)
{
	/* 2020-05-04 was a Monday: one week covers every weekday. */
	static const char *const sv_days[] = {"måndag", "tisdag", "onsdag", "torsdag",
					      "fredag", "lördag", "söndag"};
	static const char *const sv_months[] = {"januari", "februari", "mars", "april",
						"maj", "juni", "juli", "augusti",
						"september", "oktober", "november", "december"};
	char want[64];

	(void)state;
	for (int i = 0; i < 7; i++) {
		snprintf(want, sizeof(want), "%s %d maj 2020", sv_days[i], 4 + i);
		expect_str(datefmt_date("sv", tz_mktime(2020, 5, 4 + i, 12, 0, 0)), want);
	}
	for (int m = 0; m < 12; m++) {
		snprintf(want, sizeof(want), " %s 2021", sv_months[m]);
		char *got = datefmt_date("sv", tz_mktime(2021, m + 1, 1, 12, 0, 0));
		assert_non_null(strstr(got, want));
		free(got);
	}
	expect_str(datefmt_date("en", tz_mktime(2020, 5, 9, 12, 0, 0)), "Saturday 9 May 2020");
	expect_str(datefmt_date("en", tz_mktime(2020, 5, 10, 12, 0, 0)), "Sunday 10 May 2020");
}

static void test_range_two_days(void **state)
{
	time_t a = tz_mktime(2020, 2, 20, 10, 0, 0), b = tz_mktime(2020, 2, 21, 13, 0, 0);

	(void)state;
	expect_str(datefmt_range("sv", a, b),
		   "torsdag 20 februari 2020 kl. 10.00 – fredag 21 februari kl. 13.00");
	expect_str(datefmt_range("en", a, b),
		   "Thursday 20 February 2020 at 10:00 – Friday 21 February at 13:00");
}

static void test_range_same_day(void **state)
{
	time_t a = tz_mktime(2020, 3, 12, 10, 0, 0), b = tz_mktime(2020, 3, 12, 13, 0, 0);

	(void)state;
	expect_str(datefmt_range("sv", a, b), "torsdag 12 mars 2020 kl. 10.00–13.00");
	expect_str(datefmt_range("en", a, b), "Thursday 12 March 2020 at 10:00–13:00");
}

static void test_range_new_year(void **state)
{
	time_t a = tz_mktime(2019, 12, 31, 10, 0, 0), b = tz_mktime(2020, 1, 1, 13, 0, 0);

	(void)state;
	expect_str(datefmt_range("sv", a, b),
		   "tisdag 31 december 2019 kl. 10.00 – onsdag 1 januari 2020 kl. 13.00");
	expect_str(datefmt_range("en", a, b),
		   "Tuesday 31 December 2019 at 10:00 – Wednesday 1 January 2020 at 13:00");
}

static void test_range_degenerate(void **state)
{
	time_t a = tz_mktime(2020, 2, 20, 10, 0, 0);

	(void)state;
	expect_str(datefmt_range("sv", a, a), "torsdag 20 februari 2020 kl. 10.00");
	expect_str(datefmt_range("sv", a, a - 3600), "torsdag 20 februari 2020 kl. 10.00");
}

/* Local wall-clock times on the spring-forward day (2026-03-29, 02:00
 * CET becomes 03:00 CEST) are printed as the clock on the wall shows. */
static void test_dst_day(void **state)
{
	time_t t = tz_mktime(2026, 3, 29, 10, 0, 0);

	(void)state;
	expect_str(datefmt_when("sv", t), "söndag 29 mars 2026 kl. 10.00");
	expect_str(datefmt_when("en", t), "Sunday 29 March 2026 at 10:00");
	/* 01:00 to 04:00 is two real hours but three on the wall. */
	expect_str(datefmt_range("sv", tz_mktime(2026, 3, 29, 1, 0, 0), tz_mktime(2026, 3, 29, 4, 0, 0)),
		   "söndag 29 mars 2026 kl. 1.00–4.00");
	/* The autumn day: 25 October 2026, 03:00 CEST becomes 02:00 CET. */
	expect_str(datefmt_when("sv", tz_mktime(2026, 10, 25, 10, 0, 0)),
		   "söndag 25 oktober 2026 kl. 10.00");
	/* Instants straddling midnight UTC land on the local date. */
	expect_str(datefmt_date("sv", (time_t)1582153200), "torsdag 20 februari 2020");
}

static void test_language_variants(void **state)
{
	time_t t = tz_mktime(2020, 2, 20, 10, 0, 0);

	(void)state;
	expect_str(datefmt_when("sv-SE", t), "torsdag 20 februari 2020 kl. 10.00");
	expect_str(datefmt_when("SV", t), "torsdag 20 februari 2020 kl. 10.00");
	expect_str(datefmt_when("de", t), "Thursday 20 February 2020 at 10:00");
	expect_str(datefmt_when("svenska", t), "Thursday 20 February 2020 at 10:00");
	expect_str(datefmt_when("", t), "Thursday 20 February 2020 at 10:00");
	expect_str(datefmt_when(NULL, t), "Thursday 20 February 2020 at 10:00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_when_date_time),
		cmocka_unit_test(test_all_names),
		cmocka_unit_test(test_range_two_days),
		cmocka_unit_test(test_range_same_day),
		cmocka_unit_test(test_range_new_year),
		cmocka_unit_test(test_range_degenerate),
		cmocka_unit_test(test_dst_day),
		cmocka_unit_test(test_language_variants),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
