/* tests/test_backoff.c: the relay's suspension (daemon/backoff.c) over a
 * real ledger file. */
#include "backoff.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1574233200 /* 2019-11-20 08:00 CET */

static void test_delay_doubles_from_a_minute_to_an_hour(void **state)
{
	(void)state;
	/* r = 0.5: no jitter. */
	assert_int_equal(backoff_relay_delay(1, RELAY_CONNECT, 0.5), 60);
	assert_int_equal(backoff_relay_delay(2, RELAY_CONNECT, 0.5), 120);
	assert_int_equal(backoff_relay_delay(3, RELAY_SENDER, 0.5), 240);
	assert_int_equal(backoff_relay_delay(7, RELAY_TLS, 0.5), 3600);
	assert_int_equal(backoff_relay_delay(1000, RELAY_CONNECT, 0.99), 3600);
	/* Jitter never goes below a minute. */
	assert_int_equal(backoff_relay_delay(1, RELAY_CONNECT, 0.0), 60);
	/* AUTH: a quarter of an hour at least, then doubling on. */
	assert_int_equal(backoff_relay_delay(1, RELAY_AUTH, 0.0), 900);
	assert_int_equal(backoff_relay_delay(5, RELAY_AUTH, 0.5), 960);
	assert_int_equal(backoff_relay_delay(9, RELAY_AUTH, 0.5), 3600);
}

static void test_suspension_is_shared_through_the_ledger(void **state)
{
	char dir[] = "/tmp/kallad-backoff-XXXXXX";
	struct errlist errs = {0};
	struct config cfg = {.smtp_url = "smtp://127.0.0.1:25", .max_per_minute = 0};
	time_t until;

	(void)state;
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/state.db", dir);
	struct state *st = state_open(path, false, &errs);
	assert_non_null(st);
	struct backoff *a = backoff_new(&cfg, st), *b = backoff_new(&cfg, st);

	backoff_begin(a, T0, true);
	assert_false(backoff_suspended(a, T0, NULL));
	backoff_note(a, SEND_RELAY, RELAY_AUTH, false, "535 5.7.8 no (at AUTH)", T0);
	assert_true(backoff_suspended(a, T0, &until));
	assert_true(until >= T0 + 900);
	/* Sends started before it are told apart from those after. */
	assert_int_equal(backoff_generation(a), 1);
	assert_int_equal(backoff_generation(b), 0);
	assert_string_equal(backoff_fault(a), "535 5.7.8 no (at AUTH)");

	/* Another process sees it, and holds to it... */
	backoff_begin(b, T0 + 60, true);
	assert_true(backoff_suspended(b, T0 + 60, NULL));
	assert_string_equal(backoff_fault(b), "535 5.7.8 no (at AUTH)");
	/* ...unless a person asks (--send-now); a new fault counts on. */
	backoff_begin(b, T0 + 60, false);
	assert_false(backoff_suspended(b, T0 + 60, NULL));
	backoff_note(b, SEND_RELAY, RELAY_CONNECT, false, "no greeting (at connect)", T0 + 60);
	struct relay_row r;
	assert_true(state_relay_get(st, &r));
	assert_int_equal(r.faults, 2);
	assert_int_equal(r.since, T0);
	assert_int_equal(r.kind, RELAY_CONNECT);
	state_relay_free(&r);

	/* A message that goes ends it for everyone. */
	backoff_begin(a, T0 + 7200, true);
	assert_false(backoff_suspended(a, T0 + 7200, NULL));
	backoff_note(a, SEND_OK, RELAY_NONE, false, "250 ok", T0 + 7200);
	assert_false(state_relay_get(st, &r));

	/* Three replies in a row asking to slow down suspend it too. */
	backoff_begin(a, T0 + 7300, true);
	for (int i = 0; i < 3; i++)
		backoff_note(a, SEND_TRANSIENT, RELAY_NONE, true, "450 4.7.1 too much mail",
			     T0 + 7300);
	assert_true(backoff_suspended(a, T0 + 7300, NULL));
	assert_true(state_relay_get(st, &r));
	assert_int_equal(r.kind, RELAY_LIMIT);
	state_relay_free(&r);

	backoff_free(a);
	backoff_free(b);
	state_close(st);
	assert_true(remove_tree(dir));
	free(path);
	errlist_free(&errs);
}

struct pauses {
	int calls;
	double total;
	int stop_after;
};

static bool pause_cb(void *arg, double secs)
{
	struct pauses *p = arg;

	p->calls++;
	p->total += secs;
	usleep((useconds_t)(secs * 1e6));
	return p->calls != p->stop_after;
}

/* max-per-minute spaces the turns of every connection together: each
 * wait is spent in the caller's pause (where the sends in flight go on),
 * in slices of at most a second, and the pause can stop it. */
static void test_turns_are_spaced_and_spent_in_pause(void **state)
{
	struct config cfg = {.smtp_url = "smtp://127.0.0.1:25", .max_per_minute = 600};
	struct backoff *b = backoff_new(&cfg, NULL);
	struct pauses p = {0};

	(void)state;
	assert_true(backoff_wait_turn(b, pause_cb, &p)); /* the first goes at once */
	assert_int_equal(p.calls, 0);
	for (int i = 0; i < 3; i++)
		assert_true(backoff_wait_turn(b, pause_cb, &p));
	assert_true(p.calls >= 3);
	assert_true(p.total > 3 * 0.1 * 0.9 && p.total < 3 * 0.1 * 1.5);
	/* 6 a minute: a 10 s gap, waited in slices of a second at most;
	 * stopped by the pause's third answer. */
	cfg.max_per_minute = 6;
	assert_true(backoff_wait_turn(b, pause_cb, &p)); /* still the 0.1 s gap */
	p = (struct pauses){.stop_after = 3};
	assert_false(backoff_wait_turn(b, pause_cb, &p));
	assert_int_equal(p.calls, 3);
	assert_true(p.total <= 3.0 + 1e-9);
	backoff_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_doubles_from_a_minute_to_an_hour),
		cmocka_unit_test(test_suspension_is_shared_through_the_ledger),
		cmocka_unit_test(test_turns_are_spaced_and_spent_in_pause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
