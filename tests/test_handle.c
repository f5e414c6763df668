/* test_handle.c: sessions and deadlines named as an administrator types
 * them: whole UID, position in time order, unique prefix of UID or title
 * (case folded, Swedish letters too), and clear refusals that list the
 * candidates. */
#include "handle.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Out of time order on purpose, with a title that is another's prefix
 * and one that starts with Å. */
static struct session sessions[] = {
	{.uid = "b-3@example.org", .summary = "Leda 2", .start = 3000},
	{.uid = "a-1@example.org", .summary = "Leda", .start = 1000},
	{.uid = "c-2@example.org", .summary = "Årsmöte", .start = 2000, .cancelled = true},
};
static struct deadline deadlines[] = {
	{.uid = "anmalan@example.org", .summary = "Sista anmälningsdag", .due = 500},
	{.uid = "uppgift@example.org", .summary = "Inlämning av uppgift", .due = 4000},
};
static struct calendar cal = {.sessions = sessions, .n_sessions = 3, .deadlines = deadlines,
			      .n_deadlines = 2};

static const char *session_uid(const char *arg)
{
	char *err = NULL;
	const struct session *s = handle_session(&cal, arg, &err);

	if (!s) {
		fprintf(stderr, "%s: %s\n", arg, err);
		free(err);
		return NULL;
	}
	assert_null(err);
	return s->uid;
}

static char *session_error(const char *arg)
{
	char *err = NULL;

	assert_null(handle_session(&cal, arg, &err));
	assert_non_null(err);
	return err;
}

static void test_whole_uid_and_position(void **state)
{
	(void)state;
	assert_string_equal(session_uid("b-3@example.org"), "b-3@example.org");
	/* Positions follow start times, not the array; cancelled ones count. */
	assert_string_equal(session_uid("1"), "a-1@example.org");
	assert_string_equal(session_uid("2"), "c-2@example.org");
	assert_string_equal(session_uid("3"), "b-3@example.org");
	assert_int_equal(handle_session_position(&cal, &sessions[0]), 3);
	assert_int_equal(handle_session_position(&cal, &sessions[1]), 1);
	assert_int_equal(handle_deadline_position(&cal, &deadlines[1]), 2);
}

static void test_prefixes(void **state)
{
	(void)state;
	assert_string_equal(session_uid("C-2"), "c-2@example.org");
	assert_string_equal(session_uid("åRSM"), "c-2@example.org");
	assert_string_equal(session_uid("leda 2"), "b-3@example.org");
	/* A whole title wins over the longer one it begins. */
	assert_string_equal(session_uid("LEDA"), "a-1@example.org");
}

static void test_refusals_name_the_candidates(void **state)
{
	char *err;

	(void)state;
	err = session_error("le");
	assert_non_null(strstr(err, "\"le\" matches 2 sessions"));
	assert_non_null(strstr(err, "\n  1  a-1@example.org  Leda"));
	assert_non_null(strstr(err, "\n  3  b-3@example.org  Leda 2"));
	assert_null(strstr(err, "c-2@example.org"));
	free(err);
	err = session_error("zz");
	assert_non_null(strstr(err, "no session matches \"zz\""));
	assert_non_null(strstr(err, "\n  2  c-2@example.org  Årsmöte"));
	free(err);
	err = session_error("4");
	assert_string_equal(err, "no session 4: the calendar has 3 sessions (positions from 1 in "
				 "time order)");
	free(err);
	err = session_error("0");
	free(err);
	err = session_error("99999999999999999999");
	free(err);
}

static void test_deadlines(void **state)
{
	char *err = NULL;
	const struct deadline *d;

	(void)state;
	d = handle_deadline(&cal, "2", &err);
	assert_non_null(d);
	assert_string_equal(d->uid, "uppgift@example.org");
	d = handle_deadline(&cal, "sista ANM", &err);
	assert_non_null(d);
	assert_string_equal(d->uid, "anmalan@example.org");
	assert_null(handle_deadline(&cal, "3", &err));
	assert_string_equal(err, "no deadline 3: the calendar has 2 deadlines (positions from 1 in "
				 "time order)");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_uid_and_position),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_refusals_name_the_candidates),
		cmocka_unit_test(test_deadlines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
