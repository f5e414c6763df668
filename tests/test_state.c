/* test_state.c: daemon/state.c on real SQLite files, including several
 * processes racing for one delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "state.h"
#include "state_internal.h"
#include "testutil.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static const time_t T0 = 1580976000; /* 2020-02-06 08:00 UTC */

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static struct state *open_ok(const char *path, bool readonly)
{
	struct errlist errs = {0};
	struct state *st = state_open(path, readonly, &errs);

	dump(&errs);
	assert_non_null(st);
	assert_int_equal(errs.n, 0);
	errlist_free(&errs);
	return st;
}

static struct delivery_row sample(const char *key)
{
	struct delivery_row r = {0};

	r.key = (char *)key;
	r.message = "session-reminder";
	r.email = "anna.berglund@gavle.example.se";
	r.target = "styra-leda-2020-1@example.org";
	r.rule = "session-early";
	r.due = T0;
	r.message_id = "<k1.kallad@example.org>";
	return r;
}

/* The first value of the first row sql gives, through a connection of
 * its own (NULL: no row). */
static char *first_value(const char *path, const char *sql)
{
	char *v = NULL;
	sqlite3 *db;
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Reads one PRAGMA through a connection of its own. */
static char *pragma(const char *path, const char *name)
{
	char *sql = xasprintf("PRAGMA %s", name), *v = first_value(path, sql);

	free(sql);
	return v;
}

static void test_open_creates_and_migrates(void **state UNUSED)
{
	char *path = tmp_path("new/dir/state.db"), *dir = tmp_path("new/dir"), *v;
	mode_t old_mask = umask(022);
	struct state *st = open_ok(path, false);
	struct stat sb;

	umask(old_mask);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0750);
	assert_int_equal(state_schema_version(st), 13);
	v = pragma(path, "journal_mode");
	assert_string_equal(v, "wal");
	free(v);
	v = pragma(path, "user_version");
	assert_string_equal(v, "13");
	free(v);
	state_close(st);

	/* Opening again migrates nothing and fails nothing. */
	st = open_ok(path, false);
	assert_int_equal(state_schema_version(st), 13);
	state_close(st);
	free(path);
	free(dir);
}

static void test_known_and_sequence_persist(void **state UNUSED)
{
	char *path = tmp_path("known.db");
	struct state *st = open_ok(path, false);

	assert_int_equal(state_known_since(st, "rule", "session-early", T0), T0);
	state_note_known(st, "rule", "session-early", T0 - 100);
	state_note_known(st, "rule", "session-early", T0 - 50); /* already known */
	assert_int_equal(state_known_since(st, "rule", "session-early", T0), T0 - 100);
	assert_int_equal(state_known_since(st, "session", "session-early", T0), T0);

	/* The last seen copy of a session, with the SEQUENCE kallad gave it. */
	struct session copy, ses = {.uid = "s1@example.org", .summary = "Leda",
				    .location = "Långholmen", .start = T0, .end = T0 + 3600};
	assert_false(state_session_copy(st, "s1@example.org", &copy));
	state_session_store(st, &ses, 3);
	state_close(st);

	st = open_ok(path, false);
	assert_int_equal(state_known_since(st, "rule", "session-early", T0), T0 - 100);
	assert_true(state_session_copy(st, "s1@example.org", &copy));
	assert_int_equal(copy.sequence, 3);
	assert_string_equal(copy.location, "Långholmen");
	assert_true(copy.start == T0 && copy.end == T0 + 3600 && !copy.cancelled);
	assert_null(copy.description);
	assert_null(copy.categories);
	state_session_clear(&copy);
	state_close(st);
	free(path);
}

/* Schema 10: a session's categories and a whole copy of each deadline,
 * what a fresh start keeps of an item it finds unreadable. */
static void test_last_good_copies(void **state UNUSED)
{
	char *path = tmp_path("copies.db");
	struct state *st = open_ok(path, false);
	struct session scopy, ses = {.uid = "s1@example.org", .summary = "Leda",
				     .categories = "kurs,Ledning", .start = T0, .end = T0 + 3600};
	struct deadline dcopy, dl = {.uid = "anmalan@example.org", .summary = "Sista dag",
				     .description = "Anmäl dig", .categories = "registration",
				     .due = T0 + 86400, .date_only = true};
	bool moved;

	state_session_store(st, &ses, 0);
	/* Never seen, and seen only by its revision (as before schema 10):
	 * no copy to keep. */
	assert_false(state_deadline_copy(st, dl.uid, &dcopy));
	assert_int_equal(state_deadline_revision(st, dl.uid, dl.due, &moved), 0);
	assert_false(state_deadline_copy(st, dl.uid, &dcopy));
	state_deadline_store(st, &dl);
	/* It moved: its revision rises and the copy follows. */
	dl.due += 3600;
	dl.categories = "registration,deadline";
	assert_int_equal(state_deadline_revision(st, dl.uid, dl.due, &moved), 1);
	state_deadline_store(st, &dl);
	state_close(st);

	st = open_ok(path, true);
	assert_true(state_session_copy(st, "s1@example.org", &scopy));
	assert_string_equal(scopy.categories, "kurs,Ledning");
	state_session_clear(&scopy);
	assert_true(state_deadline_copy(st, dl.uid, &dcopy));
	assert_string_equal(dcopy.uid, "anmalan@example.org");
	assert_string_equal(dcopy.summary, "Sista dag");
	assert_string_equal(dcopy.description, "Anmäl dig");
	assert_string_equal(dcopy.categories, "registration,deadline");
	assert_true(dcopy.date_only);
	assert_true(dcopy.due == T0 + 86400 + 3600);
	assert_int_equal(dcopy.revision, 1);
	state_deadline_clear(&dcopy);
	assert_null(dcopy.uid);
	/* A read-only handle stores nothing. */
	dl.summary = "Changed";
	state_deadline_store(st, &dl);
	state_close(st);
	st = open_ok(path, false);
	assert_true(state_deadline_copy(st, dl.uid, &dcopy));
	assert_string_equal(dcopy.summary, "Sista dag");
	state_deadline_clear(&dcopy);
	state_close(st);
	free(path);
}

/* A ledger of schema 9 (no categories, deadlines by revision only) takes
 * step 10 and keeps what it had. */
static void test_migrates_from_9(void **state UNUSED)
{
	char *path = tmp_path("nine.db");
	struct state *st = open_ok(path, false);
	struct session copy, ses = {.uid = "s9@example.org", .summary = "Nio", .start = T0,
				    .end = T0 + 60, .categories = "x"};
	struct deadline dcopy;
	sqlite3 *db;
	bool moved;

	state_session_store(st, &ses, 2);
	assert_int_equal(state_deadline_revision(st, "d9", T0, &moved), 0);
	state_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE sessions DROP COLUMN categories;"
				      "ALTER TABLE deadlines DROP COLUMN summary;"
				      "ALTER TABLE deadlines DROP COLUMN description;"
				      "ALTER TABLE deadlines DROP COLUMN categories;"
				      "ALTER TABLE deadlines DROP COLUMN date_only;"
				      "DROP INDEX deliveries_waits_relay;"
				      "ALTER TABLE deliveries DROP COLUMN waits_relay;"
				      "DROP TABLE held_removals;"
				      "PRAGMA user_version = 9;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	st = open_ok(path, false);
	assert_int_equal(state_schema_version(st), 13);
	assert_true(state_session_copy(st, "s9@example.org", &copy));
	assert_int_equal(copy.sequence, 2);
	assert_null(copy.categories);
	state_session_clear(&copy);
	assert_false(state_deadline_copy(st, "d9", &dcopy));
	assert_int_equal(state_deadline_revision(st, "d9", T0, &moved), 0);
	state_deadline_store(st, &(struct deadline){.uid = "d9", .summary = "Nio", .due = T0});
	assert_true(state_deadline_copy(st, "d9", &dcopy));
	assert_string_equal(dcopy.summary, "Nio");
	assert_null(dcopy.categories);
	assert_false(dcopy.date_only);
	state_deadline_clear(&dcopy);
	state_close(st);
	free(path);
}

static void test_claim_semantics(void **state UNUSED)
{
	char *path = tmp_path("claim.db");
	struct state *st = open_ok(path, false);
	struct delivery_row r = sample("k1"), got;

	assert_false(state_delivery_get(st, "k1", &got));
	assert_true(state_delivery_claim(st, &r, T0, 600));
	assert_false(state_delivery_claim(st, &r, T0 + 1, 600)); /* held */
	assert_true(state_delivery_get(st, "k1", &got));
	assert_int_equal(got.state, DS_CLAIMED);
	assert_string_equal(got.email, "anna.berglund@gavle.example.se");
	assert_string_equal(got.target, "styra-leda-2020-1@example.org");
	assert_string_equal(got.rule, "session-early");
	assert_string_equal(got.message_id, "<k1.kallad@example.org>");
	assert_int_equal(got.due, T0);
	assert_int_equal(got.attempts, 0);
	state_row_free(&got);

	/* Transient: claimable only once next_attempt has come. */
	state_delivery_mark(st, "k1", DS_TRANSIENT, "421 try later", T0 + 300, T0 + 2);
	assert_false(state_delivery_claim(st, &r, T0 + 299, 600));
	assert_true(state_delivery_claim(st, &r, T0 + 300, 600));

	/* Unknown: claimable at once, keeping the Message-ID. */
	state_delivery_mark(st, "k1", DS_UNKNOWN, "timeout after DATA", 0, T0 + 301);
	r.message_id = "<other@example.org>";
	assert_true(state_delivery_claim(st, &r, T0 + 302, 600));
	state_delivery_mark(st, "k1", DS_SENT, "250 ok", 0, T0 + 303);
	assert_true(state_delivery_get(st, "k1", &got));
	assert_int_equal(got.state, DS_SENT);
	assert_int_equal(got.attempts, 3);
	assert_string_equal(got.message_id, "<k1.kallad@example.org>");
	assert_string_equal(got.detail, "250 ok");
	assert_int_equal(got.updated, T0 + 303);
	state_row_free(&got);
	/* Sent is final. */
	assert_false(state_delivery_claim(st, &r, T0 + 10000, 600));

	/* A claim older than stale_after: its process died. */
	r = sample("k2");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	assert_false(state_delivery_claim(st, &r, T0 + 600, 600));
	assert_true(state_delivery_claim(st, &r, T0 + 601, 600));

	/* A fresh claim whose process was killed is taken over at once. */
	{
		pid_t child = fork();
		struct state *other;

		assert_true(child >= 0);
		if (child == 0) {
			struct state *cst = state_open(path, false, &(struct errlist){0});
			struct delivery_row cr = sample("k4");
			_exit(cst && state_delivery_claim(cst, &cr, T0, 600) ? 0 : 1);
		}
		int status;
		waitpid(child, &status, 0);
		assert_int_equal(WEXITSTATUS(status), 0);
		other = state_open(path, false, &(struct errlist){0});
		r = sample("k4");
		assert_true(state_delivery_claim(other, &r, T0 + 1, 600));
		/* ...but not while its claimer (this process) lives. */
		assert_false(state_delivery_claim(st, &r, T0 + 2, 600));
		state_close(other);
		r = sample("k2");
	}

	/* Failed and skipped are final too. */
	state_delivery_mark(st, "k2", DS_FAILED, "550 no such user", 0, T0 + 602);
	assert_false(state_delivery_claim(st, &r, T0 + 10000, 600));
	r = sample("k3");
	state_delivery_skip(st, &r, "late registration", T0);
	assert_false(state_delivery_claim(st, &r, T0 + 10000, 600));
	state_close(st);
	free(path);
}

static void test_mark_attempts_and_skip(void **state UNUSED)
{
	char *path = tmp_path("mark.db");
	struct state *st = open_ok(path, false);
	struct delivery_row r = sample("m1"), got;

	assert_true(state_delivery_claim(st, &r, T0, 600));
	state_delivery_mark(st, "m1", DS_FAILED, "550 5.1.1 unknown", 0, T0 + 1);
	/* Moves that are not outcomes of a send do not count. */
	state_delivery_mark(st, "m1", DS_TRANSIENT, NULL, T0 + 5, T0 + 2);
	assert_true(state_delivery_get(st, "m1", &got));
	assert_int_equal(got.attempts, 1);
	assert_int_equal(got.state, DS_TRANSIENT);
	assert_int_equal(got.next_attempt, T0 + 5);
	assert_null(got.detail);
	state_row_free(&got);
	state_delivery_mark(st, "no-such-key", DS_SENT, "250", 0, T0); /* logged, harmless */

	r = sample("s1");
	state_delivery_skip(st, &r, "before kallad knew the rule", T0);
	state_delivery_skip(st, &r, "another reason", T0 + 5);
	assert_true(state_delivery_get(st, "s1", &got));
	assert_int_equal(got.state, DS_SKIPPED);
	assert_string_equal(got.detail, "before kallad knew the rule");
	assert_int_equal(got.updated, T0);
	state_row_free(&got);
	/* A skip never overwrites an existing delivery. */
	r = sample("m1");
	state_delivery_skip(st, &r, "late", T0 + 9);
	assert_true(state_delivery_get(st, "m1", &got));
	assert_int_equal(got.state, DS_TRANSIENT);
	state_row_free(&got);
	state_close(st);
	free(path);
}

struct seen {
	char keys[8][8];
	int n;
};

static void collect(const struct delivery_row *row, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", row->key);
}

/* The rows in state s are exactly the one under key. */
static void assert_only_row(struct state *st, int s, const char *key)
{
	struct seen seen = {0};

	state_delivery_each(st, s, collect, &seen);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.keys[0], key);
}

/* The SQL SQLite keeps for a table or index of the file at path. */
static char *schema_sql(const char *path, const char *name)
{
	char *sql = xasprintf("SELECT sql FROM sqlite_master WHERE name = '%s'", name);
	char *v = first_value(path, sql);

	free(sql);
	return v;
}

/* A ledger of schema 10 (attendance and participant copies with rowids,
 * every row in the index by state) takes step 11 and keeps what it had. */
static void test_migrates_from_10(void **state UNUSED)
{
	char *path = tmp_path("ten.db"), *v;
	struct state *st = open_ok(path, false);
	struct participant p = {.email = "Anna@x.se", .name = "Anna Berglund", .language = "sv",
				.status = PS_REGISTERED}, copy;
	struct delivery_row r = sample("sent");
	struct attendance a;
	sqlite3 *db;

	state_set_attendance(st, "anna@x.se", "s1", &(struct attendance){true, 2, 1});
	state_participant_store(st, &p, T0);
	assert_true(state_delivery_claim(st, &r, T0, 600));
	state_delivery_mark(st, "sent", DS_SENT, "250 ok", 0, T0 + 1);
	r = sample("later");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	state_delivery_mark(st, "later", DS_TRANSIENT, "451 later", T0 + 60, T0 + 2);
	state_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
			 "CREATE TABLE a10(email TEXT NOT NULL COLLATE NOCASE, uid TEXT NOT NULL,"
			 " invited INTEGER NOT NULL, sequence INTEGER NOT NULL,"
			 " content INTEGER NOT NULL, PRIMARY KEY(email, uid));"
			 "INSERT INTO a10 SELECT * FROM attendance; DROP TABLE attendance;"
			 "ALTER TABLE a10 RENAME TO attendance;"
			 "CREATE TABLE p10(email TEXT PRIMARY KEY COLLATE NOCASE, status TEXT,"
			 " updated_at INTEGER, name TEXT, language TEXT, organisation TEXT, role TEXT);"
			 "INSERT INTO p10 SELECT * FROM participants_seen; DROP TABLE participants_seen;"
			 "INSERT INTO p10(email, name) VALUES(NULL, 'no address');"
			 "ALTER TABLE p10 RENAME TO participants_seen;"
			 "DROP INDEX deliveries_state;"
			 "CREATE INDEX deliveries_state ON deliveries(state, updated);"
			 "DROP INDEX deliveries_waits_relay;"
			 "ALTER TABLE deliveries DROP COLUMN waits_relay;"
			 "DROP TABLE held_removals;"
			 "PRAGMA user_version = 10;",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	v = schema_sql(path, "attendance");
	assert_null(strstr(v, "WITHOUT ROWID"));
	free(v);

	st = open_ok(path, false);
	assert_int_equal(state_schema_version(st), 13);
	assert_true(state_attendance(st, "ANNA@x.se", "s1", &a));
	assert_true(a.invited);
	assert_int_equal(a.sequence, 2);
	assert_true(state_participant_copy(st, "anna@X.se", &copy));
	assert_string_equal(copy.name, "Anna Berglund");
	reg_participant_clear(&copy);
	assert_only_row(st, DS_TRANSIENT, "later");
	assert_only_row(st, DS_SENT, "sent");
	state_close(st);
	v = schema_sql(path, "attendance");
	assert_non_null(strstr(v, "WITHOUT ROWID"));
	free(v);
	v = schema_sql(path, "participants_seen");
	assert_non_null(strstr(v, "WITHOUT ROWID"));
	free(v);
	v = schema_sql(path, "deliveries_state");
	assert_non_null(strstr(v, "WHERE " STATE_INDEXED));
	free(v);
	v = first_value(path, "SELECT count(*) FROM participants_seen");
	assert_string_equal(v, "1"); /* the copy without an address is not kept */
	free(v);
	free(path);
}

static void never_gone(sqlite3_context *c, int argc UNUSED, sqlite3_value **argv UNUSED)
{
	sqlite3_result_int(c, 0);
}

/* The queries by state that run on every pass or wake use the index by
 * state (a query that stops naming its condition reads the whole ledger). */
static void test_queries_by_state_use_the_index(void **state UNUSED)
{
	static const enum query by_state[] = {Q_ORPHANS, Q_RETRY, Q_EACH_STATE};
	char *path = tmp_path("plans.db");
	struct state *st = open_ok(path, false);
	sqlite3 *db;

	state_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* kallad_pid_gone() is kallad's own function: a stand-in. */
	sqlite3_create_function(db, "kallad_pid_gone", 1, SQLITE_UTF8, NULL, never_gone, NULL, NULL);
	for (size_t i = 0; i < sizeof(by_state) / sizeof(by_state[0]); i++) {
		char *sql = xasprintf("EXPLAIN QUERY PLAN %s", query_sql[by_state[i]]);
		sqlite3_stmt *q;
		bool indexed = false;

		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
		while (sqlite3_step(q) == SQLITE_ROW)
			indexed = indexed || strstr((const char *)sqlite3_column_text(q, 3),
						    "USING INDEX deliveries_state");
		sqlite3_finalize(q);
		if (!indexed)
			fail_msg("not by the index: %s", query_sql[by_state[i]]);
		free(sql);
	}
	sqlite3_close(db);
	free(path);
}

static void test_counts_each_retry(void **state UNUSED)
{
	char *path = tmp_path("counts.db");
	struct state *st = open_ok(path, false);
	struct delivery_row r;
	struct seen seen = {0};
	long counts[6];
	const char *keys[] = {"a", "b", "c", "d", "e"};

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		r = sample(keys[i]);
		assert_true(state_delivery_claim(st, &r, T0, 600));
	}
	state_delivery_mark(st, "a", DS_SENT, "250", 0, T0 + 50);
	state_delivery_mark(st, "b", DS_FAILED, "550 one", 0, T0 + 40);
	state_delivery_mark(st, "c", DS_FAILED, "550 two", 0, T0 + 30);
	state_delivery_mark(st, "d", DS_UNKNOWN, NULL, 0, T0 + 20);
	r = sample("f");
	state_delivery_skip(st, &r, "min-lead", T0 + 10);

	state_delivery_counts(st, counts);
	assert_int_equal(counts[DS_CLAIMED], 1);
	assert_int_equal(counts[DS_SENT], 1);
	assert_int_equal(counts[DS_UNKNOWN], 1);
	assert_int_equal(counts[DS_TRANSIENT], 0);
	assert_int_equal(counts[DS_FAILED], 2);
	assert_int_equal(counts[DS_SKIPPED], 1);

	state_delivery_each(st, DS_FAILED, collect, &seen); /* oldest first */
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.keys[0], "c");
	assert_string_equal(seen.keys[1], "b");
	/* Sent and skipped rows are not in the index by state: read all
	 * the same. */
	assert_only_row(st, DS_SENT, "a");
	assert_only_row(st, DS_SKIPPED, "f");
	seen.n = 0;
	state_delivery_each(st, -1, collect, &seen);
	assert_int_equal(seen.n, 6);
	assert_string_equal(seen.keys[0], "e");
	assert_string_equal(seen.keys[5], "a");

	assert_int_equal(state_retry_failed(st, T0 + 100), 2);
	assert_int_equal(state_retry_failed(st, T0 + 100), 0);
	state_delivery_counts(st, counts);
	assert_int_equal(counts[DS_FAILED], 0);
	assert_int_equal(counts[DS_TRANSIENT], 2);
	r = sample("b");
	assert_true(state_delivery_claim(st, &r, T0 + 100, 600));

	assert_true(state_begin(st));
	r = sample("g");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	state_rollback(st);
	assert_false(state_delivery_get(st, "g", &r));
	assert_true(state_begin(st));
	r = sample("g");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	assert_true(state_commit(st));
	assert_true(state_delivery_get(st, "g", &r));
	state_row_free(&r);
	state_close(st);
	free(path);
}

/* Several processes, each with its own handle, open a new state and
 * claim one key at once. */
static void test_claim_race(void **state UNUSED)
{
	enum { N = 8 };
	char *path = tmp_path("race.db");
	int go[2], results[2], hold[2], winners = 0;
	pid_t pids[N];

	/* The file does not exist yet: they race to create and migrate it too.
	 * Every child stays alive until all have tried: a claim whose process
	 * is gone may be taken over, by design. */
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(results), 0);
	assert_int_equal(pipe(hold), 0);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct errlist errs = {0};
			struct state *mine = state_open(path, false, &errs);
			struct delivery_row r = sample("race");
			char c;
			close(go[1]);
			close(hold[1]);
			if (!mine) {
				for (size_t k = 0; k < errs.n; k++)
					fprintf(stderr, "child: %s\n", errs.items[k]);
				c = 'E'; /* the parent must not wait for a result */
				_exit(write(results[1], &c, 1) == 1 ? 2 : 2);
			}
			if (read(go[0], &c, 1) != 0)
				_exit(3);
			c = state_delivery_claim(mine, &r, T0, 600) ? 'W' : 'L';
			if (write(results[1], &c, 1) != 1)
				_exit(4);
			if (read(hold[0], &c, 1) != 0)
				_exit(5);
			_exit(0);
		}
	}
	close(go[0]);
	close(hold[0]);
	close(results[1]);
	usleep(200 * 1000); /* let every child open its handle */
	close(go[1]);       /* EOF releases them all at once */
	for (int i = 0; i < N; i++) {
		char c;
		assert_int_equal(read(results[0], &c, 1), 1);
		assert_int_not_equal(c, 'E'); /* every one of them opened the state */
		winners += c == 'W';
	}
	close(hold[1]);
	for (int i = 0; i < N; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	close(results[0]);
	assert_int_equal(winners, 1);

	/* Two handles in one process: the second sees the first's claim. */
	struct state *a = open_ok(path, false), *b = open_ok(path, false);
	struct delivery_row r = sample("two");
	assert_true(state_delivery_claim(a, &r, T0, 600));
	assert_false(state_delivery_claim(b, &r, T0, 600));
	state_delivery_mark(a, "two", DS_UNKNOWN, NULL, 0, T0 + 1);
	assert_true(state_delivery_claim(b, &r, T0 + 2, 600));
	assert_false(state_delivery_claim(a, &r, T0 + 3, 600));
	state_close(a);
	state_close(b);
	free(path);
}

static void test_readonly(void **state UNUSED)
{
	char *dir = tmp_path("ro-missing"), *path = tmp_path("ro-missing/state.db");
	struct state *st = open_ok(path, true);
	struct delivery_row r = sample("x");
	long counts[6];

	/* Missing file: an empty in-memory state, nothing created. */
	assert_int_equal(state_schema_version(st), 13);
	assert_int_equal(state_known_since(st, "rule", "r", T0), T0);
	{
		struct session none;
		assert_false(state_session_copy(st, "s@example.org", &none));
	}
	state_delivery_counts(st, counts);
	for (int i = 0; i < 6; i++)
		assert_int_equal(counts[i], 0);
	assert_false(state_delivery_get(st, "x", &r));
	/* Its queries are the file's: a claim asks kallad_pid_gone(). */
	r = sample("x");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	assert_false(state_delivery_claim(st, &r, T0 + 1, 600));
	state_close(st);
	assert_int_not_equal(access(dir, F_OK), 0);
	free(path);

	/* Existing file: read, never written, while a writer has it open. */
	path = tmp_path("ro.db");
	struct state *w = open_ok(path, false);
	r = sample("x");
	assert_true(state_delivery_claim(w, &r, T0, 600));
	state_note_known(w, "rule", "r", T0 - 10);
	st = open_ok(path, true);
	assert_int_equal(state_known_since(st, "rule", "r", T0), T0 - 10);
	assert_true(state_delivery_get(st, "x", &r));
	assert_int_equal(r.state, DS_CLAIMED);
	state_row_free(&r);
	r = sample("y");
	assert_false(state_delivery_claim(st, &r, T0, 600));
	state_note_known(st, "rule", "other", T0);
	assert_int_equal(state_retry_failed(st, T0), 0);
	state_delivery_counts(st, counts);
	assert_int_equal(counts[DS_CLAIMED], 1);
	state_close(st);
	assert_false(state_delivery_get(w, "y", &r));
	assert_int_equal(state_known_since(w, "rule", "other", T0 + 5), T0 + 5);
	state_close(w);

	/* And once the writer is gone. */
	st = open_ok(path, true);
	assert_true(state_delivery_get(st, "x", &r));
	state_row_free(&r);
	state_close(st);
	free(path);
	free(dir);
}

static void test_open_errors(void **state UNUSED)
{
	char *path = tmp_path("garbage.db");
	struct errlist errs = {0};
	FILE *f = fopen(path, "w");
	sqlite3 *db;

	assert_non_null(f);
	fputs("not a database, just text that is long enough to fill a header....\n", f);
	fclose(f);
	assert_null(state_open(path, false, &errs));
	assert_true(errs.n >= 1);
	assert_non_null(strstr(errs.items[0], path));
	errlist_free(&errs);
	free(path);

	/* Written by a newer kallad: refused, not clobbered. */
	path = tmp_path("newer.db");
	state_close(open_ok(path, false));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(state_open(path, false, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.items[0], "newer"));
	errlist_free(&errs);
	free(path);
}

static int setup(void **state UNUSED)
{
	strcpy(tmpdir, "/tmp/kallad-test-state-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state UNUSED)
{
	return remove_tree(tmpdir) ? 0 : -1;
}

/* What went back while the relay was suspended is due the moment the
 * suspension ends, early or not; a retry of its own keeps its time. */
static void test_relay_clear_makes_what_waited_due(void **state UNUSED)
{
	char *path = tmp_path("relay-wait.db");
	struct state *st = open_ok(path, false);
	struct delivery_row a = sample("waits"), b = sample("own-retry"), c = sample("sent-after"),
			    got;
	struct relay_row r = {"535 at AUTH", 1, 1, T0, T0 + 3600};

	state_relay_put(st, &r);
	assert_true(state_delivery_claim(st, &a, T0, 600));
	state_delivery_release(st, "waits", "not attempted: the relay is down", T0 + 3600, T0, true);
	assert_true(state_delivery_claim(st, &b, T0, 600));
	state_delivery_mark(st, "own-retry", DS_TRANSIENT, "451 greylisted", T0 + 900, T0);
	/* Released for the relay, then claimed again and sent: nothing waits. */
	assert_true(state_delivery_claim(st, &c, T0, 600));
	state_delivery_release(st, "sent-after", "not attempted: the relay is down", T0, T0, true);
	assert_true(state_delivery_claim(st, &c, T0 + 1, 600));
	state_delivery_mark(st, "sent-after", DS_TRANSIENT, "451 later", T0 + 1200, T0 + 1);

	state_relay_clear(st, T0 + 60);
	assert_false(state_relay_get(st, &r));
	assert_true(state_delivery_get(st, "waits", &got));
	assert_int_equal(got.next_attempt, T0 + 60);
	assert_int_equal(got.state, DS_TRANSIENT);
	assert_int_equal(got.attempts, 0);
	state_row_free(&got);
	assert_true(state_delivery_get(st, "own-retry", &got));
	assert_int_equal(got.next_attempt, T0 + 900);
	state_row_free(&got);
	assert_true(state_delivery_get(st, "sent-after", &got));
	assert_int_equal(got.next_attempt, T0 + 1200);
	state_row_free(&got);

	/* A release for the relay after another kallad ended the suspension
	 * (this one still saw it): due at once, nothing left to wait for. */
	assert_true(state_delivery_claim(st, &c, T0 + 1300, 600));
	state_delivery_release(st, "sent-after", "not attempted: the relay is down", T0 + 3600,
			       T0 + 1300, true);
	assert_true(state_delivery_get(st, "sent-after", &got));
	assert_int_equal(got.next_attempt, T0 + 1300);
	state_row_free(&got);

	/* The marker goes with the clear: a later clear moves nothing. */
	state_delivery_mark(st, "waits", DS_TRANSIENT, "451 greylisted", T0 + 5000, T0 + 61);
	state_relay_clear(st, T0 + 62);
	assert_true(state_delivery_get(st, "waits", &got));
	assert_int_equal(got.next_attempt, T0 + 5000);
	state_row_free(&got);
	state_close(st);
	free(path);
}

/* What a calendar holds only moves forward; a release is not an attempt;
 * an unknown outcome waits for its backoff; released notices stay so. */
static void test_forward_only(void **state UNUSED)
{
	char *path = tmp_path("forward.db");
	struct state *st = open_ok(path, false);
	struct attendance a;
	struct delivery_row r = sample("f1"), got;

	state_set_attendance(st, "Anna@x.se", "s1", &(struct attendance){true, 2, 1});
	state_set_attendance(st, "anna@x.se", "s1", &(struct attendance){true, 1, 1});
	assert_true(state_attendance(st, "anna@x.se", "s1", &a));
	assert_true(a.invited);
	assert_int_equal(a.sequence, 2);
	state_set_attendance(st, "anna@x.se", "s1", &(struct attendance){false, 3, 1});
	state_set_attendance(st, "anna@x.se", "s1", &(struct attendance){true, 2, 2});
	assert_true(state_attendance(st, "anna@x.se", "s1", &a));
	assert_false(a.invited); /* the later cancel stands */
	assert_int_equal(a.sequence, 3);
	assert_int_equal(a.content, 2);
	assert_false(state_attendance(st, "anna@x.se", "s2", &a));

	assert_true(state_delivery_claim(st, &r, T0, 600));
	state_delivery_release(st, "f1", "not attempted: kallad stopped", T0, T0, false);
	assert_true(state_delivery_get(st, "f1", &got));
	assert_int_equal(got.state, DS_TRANSIENT);
	assert_int_equal(got.attempts, 0);
	state_row_free(&got);

	assert_true(state_delivery_claim(st, &r, T0 + 1, 600));
	state_delivery_mark(st, "f1", DS_UNKNOWN, "timeout after DATA", T0 + 120, T0 + 2);
	assert_false(state_delivery_claim(st, &r, T0 + 119, 600));
	assert_true(state_delivery_claim(st, &r, T0 + 120, 600));

	/* Released unattempted, an unknown outcome stays unknown. */
	state_delivery_mark(st, "f1", DS_UNKNOWN, "timeout after DATA", T0 + 200, T0 + 122);
	assert_true(state_delivery_claim(st, &r, T0 + 200, 600));
	state_delivery_release(st, "f1", "not attempted: kallad stopped", T0 + 200, T0 + 201, false);
	assert_true(state_delivery_get(st, "f1", &got));
	assert_int_equal(got.state, DS_UNKNOWN);
	assert_string_equal(got.detail, "timeout after DATA");
	state_row_free(&got);

	/* A claim whose process is gone becomes unknown, retryable now. */
	{
		pid_t child = fork();
		int status;
		if (child == 0) {
			struct state *cst = state_open(path, false, &(struct errlist){0});
			struct delivery_row cr = sample("orphan");
			_exit(cst && state_delivery_claim(cst, &cr, T0, 600) ? 0 : 1);
		}
		waitpid(child, &status, 0);
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	r = sample("mine");
	assert_true(state_delivery_claim(st, &r, T0, 600));
	assert_int_equal(state_recover_orphans(st, T0 + 5, 600), 1);
	assert_true(state_delivery_get(st, "orphan", &got));
	assert_int_equal(got.state, DS_UNKNOWN);
	assert_int_equal(got.next_attempt, T0 + 5);
	state_row_free(&got);
	assert_true(state_delivery_get(st, "mine", &got)); /* ours, alive: untouched */
	assert_int_equal(got.state, DS_CLAIMED);
	state_row_free(&got);
	state_delivery_forget(st, "mine");
	assert_false(state_delivery_get(st, "mine", &got));

	assert_false(state_is_released(st, "update|a|s1|-|-|1"));
	state_release_notice(st, "update|a|s1|-|-|1");
	state_release_notice(st, "update|a|s1|-|-|1");
	assert_true(state_is_released(st, "update|a|s1|-|-|1"));
	state_close(st);
	st = open_ok(path, false);
	assert_true(state_is_released(st, "update|a|s1|-|-|1"));
	state_close(st);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_creates_and_migrates),
	    cmocka_unit_test(test_known_and_sequence_persist),
	    cmocka_unit_test(test_last_good_copies),
	    cmocka_unit_test(test_migrates_from_9),
	    cmocka_unit_test(test_migrates_from_10),
	    cmocka_unit_test(test_queries_by_state_use_the_index),
	    cmocka_unit_test(test_claim_semantics),
	    cmocka_unit_test(test_mark_attempts_and_skip),
	    cmocka_unit_test(test_counts_each_retry),
	    cmocka_unit_test(test_claim_race),
	    cmocka_unit_test(test_relay_clear_makes_what_waited_due),
	    cmocka_unit_test(test_forward_only),
	    cmocka_unit_test(test_readonly),
	    cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
