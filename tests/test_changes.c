/* changes_sync against a real state database: SEQUENCE raised once per
 * change of time, place or status; removed sessions come back as
 * cancelled ghosts; read-only state stores nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "changes.h"
#include "tz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *db_path(const char *name)
{
	return xasprintf("/tmp/kallad-test-changes-%d-%s", (int)getpid(), name);
}

static void add(struct calendar *cal, const char *uid, time_t start, const char *location)
{
	struct session *s;

	cal->sessions = xrealloc(cal->sessions, (cal->n_sessions + 1) * sizeof(*s));
	s = &cal->sessions[cal->n_sessions++];
	memset(s, 0, sizeof(*s));
	s->uid = xstrdup(uid);
	s->summary = xstrdup("Leda samhällsutveckling");
	s->location = xstrdup(location);
	s->description = xstrdup("Syftet är att skapa en plattform.");
	s->start = start;
	s->end = start + 26 * 3600;
}

static void remove_db(char *path)
{
	char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);

	unlink(path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	free(path);
}

static struct calendar *two_sessions(void)
{
	struct calendar *cal = xcalloc(1, sizeof(*cal));

	add(cal, "s1@x", 1582189200, "Långholmen");
	add(cal, "s2@x", 1584003600, "Långholmen");
	return cal;
}

static struct state *open_state(const char *path, bool readonly)
{
	struct errlist errs = {0};
	struct state *st = state_open(path, readonly, &errs);

	assert_non_null(st);
	errlist_free(&errs);
	return st;
}

/* changes_sync with one removal allowed at once, no file to compare. */
static size_t sync_cal(struct calendar *cal, struct state *st, bool description)
{
	struct changes_opts o = {.description = description, .max_removed = 1};
	size_t held;

	assert_true(changes_sync(cal, st, &o, &held));
	return held;
}

static void test_sequence_follows_changes(void **state UNUSED)
{
	char *path = db_path("seq.db");
	struct state *st = open_state(path, false);
	struct calendar *cal = two_sessions();

	sync_cal(cal, st, false); /* first sight: stored as is */
	assert_int_equal(cal->sessions[0].sequence, 0);
	sync_cal(cal, st, false); /* nothing changed */
	assert_int_equal(cal->sessions[0].sequence, 0);
	calendar_free(cal);

	/* Moved, SEQUENCE left as it was in the file: raised once. */
	cal = two_sessions();
	cal->sessions[0].start += 7 * 86400;
	sync_cal(cal, st, false);
	assert_int_equal(cal->sessions[0].sequence, 1);
	assert_int_equal(cal->sessions[1].sequence, 0);
	calendar_free(cal);
	cal = two_sessions();
	cal->sessions[0].start += 7 * 86400;
	sync_cal(cal, st, false); /* the same move again is no new change */
	assert_int_equal(cal->sessions[0].sequence, 1);

	/* A new description alone: no update unless asked for. */
	free(cal->sessions[1].description);
	cal->sessions[1].description = xstrdup("Ny text.");
	sync_cal(cal, st, false);
	assert_int_equal(cal->sessions[1].sequence, 0);
	free(cal->sessions[1].description);
	cal->sessions[1].description = xstrdup("Ännu en ny text.");
	sync_cal(cal, st, true);
	assert_int_equal(cal->sessions[1].sequence, 1);

	/* A file that raised SEQUENCE itself past ours is believed. */
	free(cal->sessions[1].location);
	cal->sessions[1].location = xstrdup("Stadshuset");
	cal->sessions[1].sequence = 5;
	sync_cal(cal, st, false);
	assert_int_equal(cal->sessions[1].sequence, 5);

	/* Cancelled in the file: a change of status. */
	cal->sessions[0].cancelled = true;
	sync_cal(cal, st, false);
	assert_int_equal(cal->sessions[0].sequence, 2);
	calendar_free(cal);
	state_close(st);
	remove_db(path);
}

static void test_removed_session_is_a_cancelled_ghost(void **state UNUSED)
{
	char *path = db_path("ghost.db");
	struct state *st = open_state(path, false);
	struct calendar *cal = two_sessions();
	const struct session *g;

	sync_cal(cal, st, false);
	calendar_free(cal);

	cal = two_sessions();
	free(cal->sessions[1].uid);
	free(cal->sessions[1].summary);
	free(cal->sessions[1].location);
	free(cal->sessions[1].description);
	cal->n_sessions = 1; /* s2 removed from the file */
	sync_cal(cal, st, false);
	assert_int_equal(cal->n_sessions, 2);
	g = calendar_session(cal, "s2@x");
	assert_non_null(g);
	assert_true(g->cancelled);
	assert_int_equal(g->sequence, 1);
	assert_string_equal(g->location, "Långholmen"); /* from the stored copy */
	assert_int_equal(g->start, 1584003600);
	/* Another pass on the same calendar adds nothing and raises nothing. */
	sync_cal(cal, st, false);
	assert_int_equal(cal->n_sessions, 2);
	assert_int_equal(calendar_session(cal, "s2@x")->sequence, 1);
	calendar_free(cal);

	/* A new reading of the file: the ghost is back, still at 1. */
	cal = two_sessions();
	cal->n_sessions = 1;
	free(cal->sessions[1].uid);
	free(cal->sessions[1].summary);
	free(cal->sessions[1].location);
	free(cal->sessions[1].description);
	sync_cal(cal, st, false);
	assert_int_equal(calendar_session(cal, "s2@x")->sequence, 1);
	calendar_free(cal);
	state_close(st);
	remove_db(path);
}

static void test_read_only_stores_nothing(void **state UNUSED)
{
	char *path = db_path("ro.db");
	struct state *st = open_state(path, false);
	struct calendar *cal = two_sessions();

	sync_cal(cal, st, false);
	state_close(st);
	calendar_free(cal);

	st = open_state(path, true);
	for (int i = 0; i < 2; i++) {
		cal = two_sessions();
		cal->sessions[0].start += 3600;
		sync_cal(cal, st, false);
		/* What it would become, every time: nothing was stored. */
		assert_int_equal(cal->sessions[0].sequence, 1);
		calendar_free(cal);
	}
	state_close(st);
	remove_db(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence_follows_changes),
		cmocka_unit_test(test_removed_session_is_a_cancelled_ghost),
		cmocka_unit_test(test_read_only_stores_nothing),
	};

	tz_set("Europe/Stockholm");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
