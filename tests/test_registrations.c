/* test_registrations.c: daemon/registrations.c against real SQLite files
 * built from the shipped schema and example participants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "registrations.h"
#include "tz.h"
#include "util.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

/* A fresh database file in tmpdir built by running each SQL file. */
static char *make_db(const char *name, const char *const *sql_files)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	sqlite3 *db;

	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (; *sql_files; sql_files++) {
		char *sql = read_file(*sql_files, NULL), *msg = NULL;
		assert_non_null(sql);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			fail_msg("%s: %s", *sql_files, msg);
		free(sql);
	}
	sqlite3_close(db);
	return path;
}

static char *make_example_db(void)
{
	const char *files[] = {SOURCE_DIR "/config/registrations.sql",
	                       SOURCE_DIR "/config/participants.sql", NULL};
	return make_db("example.db", files);
}

static struct config example_config(char *db)
{
	struct config cfg = {0};

	cfg.path = "/etc/kallad/kallad.conf";
	cfg.registrations = db;
	cfg.language = "sv";
	return cfg;
}

static bool has_warning(const struct errlist *w, const char *a, const char *b)
{
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->items[i], a) && (!b || strstr(w->items[i], b)))
			return true;
	return false;
}

static void dump(const struct errlist *w)
{
	for (size_t i = 0; i < w->n; i++)
		print_message("  %s\n", w->items[i]);
}

static time_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return timegm(&tm);
}

static void test_example_programme(void **state)
{
	char *db = make_example_db();
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	size_t by_status[4] = {0};
	const struct participant *p;

	dump(&warn);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, 14);
	for (size_t i = 0; i < reg->n_participants; i++) {
		by_status[reg->participants[i].status]++;
		if (i)
			assert_true(strcasecmp(reg->participants[i - 1].email,
			                       reg->participants[i].email) < 0);
	}
	assert_int_equal(by_status[PS_REGISTERED], 10);
	assert_int_equal(by_status[PS_INVITED], 2);
	assert_int_equal(by_status[PS_WAITLISTED], 1);
	assert_int_equal(by_status[PS_CANCELLED], 1);

	/* "2019-11-04 09:12:00" has no offset: Stockholm time, UTC+1 then. */
	p = reg_participant(reg, "Anna.Berglund@GAVLE.example.se");
	assert_non_null(p);
	assert_string_equal(p->name, "Anna Berglund");
	assert_string_equal(p->organisation, "Gävle kommun");
	assert_string_equal(p->role, "kommunstyrelsens ordförande");
	assert_int_equal(p->registered_at, utc(2019, 11, 4, 8, 12));
	p = reg_participant(reg, "karin.hedlund@skane.example.se");
	assert_int_equal(p->registered_at, utc(2019, 11, 15, 8, 30));
	p = reg_participant(reg, "johan.lindqvist@regionvasterbotten.example.se");
	assert_int_equal(p->updated_at, utc(2019, 11, 6, 12, 40));
	p = reg_participant(reg, "PER.HALLBERG+styraleda@umea.example.se");
	assert_non_null(p);
	assert_string_equal(p->email, "per.hallberg+styraleda@umea.example.se");
	p = reg_participant(reg, "sofia.nyberg@regionuppsala.example.se");
	assert_string_equal(p->language, "en");
	p = reg_participant(reg, "henrik.dahl@karlstad.example.se");
	assert_int_equal(p->status, PS_INVITED);
	assert_int_equal(p->registered_at, 0);
	assert_null(reg_participant(reg, "nobody@example.se"));
	assert_null(reg_participant(reg, NULL));

	assert_int_equal(reg->n_absences, 2);
	assert_true(
	    reg_is_absent(reg, "KARIN.hedlund@skane.example.se", "styra-leda-2020-2@example.org"));
	assert_false(
	    reg_is_absent(reg, "karin.hedlund@skane.example.se", "styra-leda-2020-1@example.org"));
	assert_true(
	    reg_is_absent(reg, "lars.ostlund@orebro.example.se", "styra-leda-2020-3@example.org"));
	assert_false(
	    reg_is_absent(reg, "anna.berglund@gavle.example.se", "styra-leda-2020-2@example.org"));

	assert_int_equal(reg->n_attachments, 10);
	assert_string_equal(reg->attachments[0].email, "anna.berglund@gavle.example.se");
	assert_string_equal(reg->attachments[0].message, "material");
	assert_string_equal(reg->attachments[0].path, "material/basfakta-gavle.pdf");
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(db);
}

static void test_bad_rows_skipped(void **state)
{
	const char *files[] = {FIXTURES "/registrations-bad-rows.sql", NULL};
	char *db = make_db("bad.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	const struct participant *p;

	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(errs.n, 0);
	/* ok.one, ok.two, ok.three, ok.four */
	assert_int_equal(reg->n_participants, 4);
	assert_true(has_warning(&warn,
	                        "bad.db: participants row 2 (anna@@x.example.org): "
	                        "invalid e-mail address",
	                        NULL));
	assert_true(has_warning(
	    &warn, "participants row 3 (eve@example.org\\x0d\\x0aBcc: ", "invalid e-mail address"));
	assert_true(has_warning(&warn, "participants row 4 (maybe@example.org)",
	                        "unknown status \"maybe\""));
	assert_true(has_warning(&warn, "participants row 5 (when@example.org)",
	                        "registered_at \"yesterday\" is not an ISO 8601 time"));
	assert_true(
	    has_warning(&warn, "participants row 6 (OK.ONE@example.org)", "duplicate of row 1"));
	assert_true(has_warning(&warn, "participants row 8 (ok.three@example.org)",
	                        "language \"klingon\""));
	assert_true(has_warning(&warn, "participants row 9 (noname@example.org)", "no name"));
	assert_true(has_warning(&warn, "participants row 10", "invalid e-mail address"));
	assert_true(has_warning(&warn, "participants row 11", "invalid e-mail address"));
	assert_true(has_warning(&warn, "participants row 12 (ok.four@example.org)",
	                        "organisation is not valid UTF-8"));

	p = reg_participant(reg, "ok.one@example.org");
	assert_string_equal(p->name, "Ok Ett"); /* the first of the duplicates */
	p = reg_participant(reg, "ok.two@example.org");
	assert_string_equal(p->language, "en");
	assert_int_equal(p->status, PS_INVITED);
	p = reg_participant(reg, "ok.three@example.org");
	assert_string_equal(p->language, "sv");
	assert_int_equal(p->updated_at, 1572703380);
	p = reg_participant(reg, "ok.four@example.org");
	assert_null(p->organisation);
	assert_int_equal(p->status, PS_CANCELLED);

	assert_int_equal(reg->n_absences, 1);
	assert_true(has_warning(&warn, "absences row 2 (not an address)", "invalid e-mail"));
	assert_true(has_warning(&warn, "absences row 3 (nobody@example.org)", "no participant"));
	assert_int_equal(reg->n_attachments, 1);
	assert_string_equal(reg->attachments[0].path, "/srv/material/basfakta-gavle.pdf");
	assert_true(has_warning(&warn, "attachments row 2", "invalid e-mail"));
	assert_true(has_warning(&warn, "attachments row 3 (ok.two@example.org)", "message"));
	assert_int_equal(warn.n, 14);
	reg_free(reg);
	errlist_free(&warn);
	free(db);
}

static void test_custom_queries(void **state)
{
	const char *files[] = {FIXTURES "/registrations-people.sql", NULL};
	char *db = make_db("people.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	const struct participant *p;

	cfg.sql_participants =
	    "SELECT state AS status, andrad AS updated_at, mail AS email, full_name AS name, "
	    "kommun AS organisation, uppdrag AS role, sprak AS language, "
	    "anmald AS registered_at FROM people";
	cfg.sql_absences = "SELECT tillfalle AS session_uid, person AS Email FROM franvaro";
	cfg.sql_attachments = "SELECT person AS email, vad AS message, fil AS path FROM bilagor";
	reg = reg_load(&cfg, &warn, &errs);
	dump(&warn);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, 2);
	p = reg_participant(reg, "berit.holm@sundsvall.example.se");
	assert_string_equal(p->name, "Berit Holm");
	assert_string_equal(p->organisation, "Sundsvalls kommun");
	assert_int_equal(p->status, PS_REGISTERED);
	assert_int_equal(p->registered_at, utc(2019, 11, 20, 9, 0));
	p = reg_participant(reg, "ola.nord@kiruna.example.se");
	assert_string_equal(p->language, "en");
	assert_true(
	    reg_is_absent(reg, "ola.nord@kiruna.example.se", "styra-leda-2020-1@example.org"));
	assert_int_equal(reg->n_attachments, 1);
	assert_string_equal(reg->attachments[0].path, "material/basfakta-sundsvall.pdf");
	reg_free(reg);

	/* Without the shipped tables and without a status column: an error
	 * naming the query and the column. */
	cfg.sql_participants = "SELECT mail AS email, full_name AS name FROM people";
	reg = reg_load(&cfg, &warn, &errs);
	assert_null(reg);
	assert_true(has_warning(&errs, "people.db: [registrations] participants query",
	                        "no column \"status\""));
	errlist_free(&errs);

	/* The shipped query on a database without the shipped tables. */
	cfg.sql_participants = cfg.sql_absences = cfg.sql_attachments = NULL;
	reg = reg_load(&cfg, &warn, &errs);
	assert_null(reg);
	assert_true(has_warning(&errs, "people.db: participants", "no such table"));
	errlist_free(&errs);
	errlist_free(&warn);
	free(db);
}

/* A view as participants (no rowid) and no attachments/absences tables. */
static void test_view_and_missing_tables(void **state)
{
	const char *files[] = {FIXTURES "/registrations-people.sql", NULL};
	char *db = make_db("view.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	sqlite3 *h;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
	                              "CREATE VIEW participants AS SELECT mail AS email, "
	                              "full_name AS name, state AS status, andrad AS updated_at "
	                              "FROM people",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(h);
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 2);
	assert_int_equal(reg->n_absences, 0);
	assert_int_equal(reg->n_attachments, 0);
	assert_string_equal(reg_participant(reg, "ola.nord@kiruna.example.se")->language, "sv");
	reg_free(reg);
	errlist_free(&warn);
	free(db);
}

struct writer {
	sqlite3 *db;
	int hold_ms;
};

static void *release_later(void *arg)
{
	struct writer *w = arg;

	usleep((useconds_t)w->hold_ms * 1000);
	sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
	return NULL;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static char *file_digest(const char *path, struct timespec *mtime)
{
	size_t n;
	char *data = read_file(path, &n), *hex = xmalloc(33);
	struct stat sb;

	assert_non_null(data);
	hash_hex(data, n, hex);
	free(data);
	assert_int_equal(stat(path, &sb), 0);
	*mtime = sb.st_mtim;
	return hex;
}

/* A writer holds the database exclusively for a second: kallad waits and
 * loads everything, and leaves the file exactly as it was. */
static void test_waits_for_writer_and_never_writes(void **state)
{
	char *db = make_example_db(), *before, *after, *journal;
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct writer w = {NULL, 1000};
	struct timespec m0, m1, t0;
	struct registrations *reg;
	pthread_t th;
	double waited;

	before = file_digest(db, &m0);
	assert_int_equal(sqlite3_open(db, &w.db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(w.db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pthread_create(&th, NULL, release_later, &w), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	reg = reg_load(&cfg, &warn, &errs);
	waited = seconds_since(&t0);
	pthread_join(th, NULL);
	sqlite3_close(w.db);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 14);
	assert_true(waited >= 0.8);
	assert_true(waited < 9.0);

	after = file_digest(db, &m1);
	assert_string_equal(before, after);
	assert_true(m0.tv_sec == m1.tv_sec && m0.tv_nsec == m1.tv_nsec);
	journal = xasprintf("%s-wal", db);
	assert_int_not_equal(access(journal, F_OK), 0);
	free(journal);
	reg_free(reg);
	errlist_free(&warn);
	free(before);
	free(after);
	free(db);
}

static void test_missing_database_not_created(void **state)
{
	char *db = xasprintf("%s/nothing-here.db", tmpdir);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};

	assert_null(reg_load(&cfg, &warn, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.items[0], db));
	assert_non_null(strstr(errs.items[0], "No such file"));
	assert_int_not_equal(access(db, F_OK), 0);
	errlist_free(&errs);

	/* Not a database at all. */
	free(db);
	db = xasprintf("%s/not-a-db.db", tmpdir);
	FILE *f = fopen(db, "w");
	assert_non_null(f);
	fputs("this is a text file, not SQLite, and long enough to have a header....\n", f);
	fclose(f);
	cfg.registrations = db;
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.items[0], "not a database"));
	errlist_free(&errs);
	errlist_free(&warn);
	free(db);
}

static void test_valid_email(void **state)
{
	const char *good[] = {"anna.berglund@gavle.example.se",
	                      "per.hallberg+styraleda@umea.example.se",
	                      "x@localhost",
	                      "o'brien@example.ie",
	                      "A_B-C@sub.xn--gvle-loa.example",
	                      "1@2.se"};
	const char *bad[] = {"",
	                     "anna",
	                     "@example.org",
	                     "anna@",
	                     "anna@se",
	                     "anna berglund@example.org",
	                     "\"anna\"@example.org",
	                     "<anna@example.org>",
	                     "anna@example.org\r\n",
	                     "anna@exa\nmple.org",
	                     "anna,b@example.org",
	                     "anna;b@example.org",
	                     "anna..b@example.org",
	                     ".anna@example.org",
	                     "anna.@example.org",
	                     "anna@-x.example.org",
	                     "anna@x..example.org",
	                     "anna@example.org.",
	                     "åsa@example.se",
	                     "asa@gävle.se",
	                     "anna@1.2.3.4",
	                     "anna@[127.0.0.1]",
	                     "a@b@example.org",
	                     "anna@exam_ple.org",
	                     "anna\t@example.org"};
	char long_local[80];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!reg_valid_email(good[i]))
			fail_msg("should be valid: %s", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (reg_valid_email(bad[i]))
			fail_msg("should be invalid: %s", bad[i]);
	assert_false(reg_valid_email(NULL));
	memset(long_local, 'a', 65);
	strcpy(long_local + 65, "@example.org");
	assert_false(reg_valid_email(long_local));
	strcpy(long_local + 64, "@example.org");
	assert_true(reg_valid_email(long_local));
}

static void test_status_names(void **state)
{
	enum pstatus s;

	for (int i = PS_INVITED; i <= PS_CANCELLED; i++) {
		assert_true(reg_parse_status(reg_status_name((enum pstatus)i), &s));
		assert_int_equal(s, i);
	}
	assert_string_equal(reg_status_name(PS_WAITLISTED), "waitlisted");
	assert_true(reg_parse_status("Registered", &s));
	assert_int_equal(s, PS_REGISTERED);
	assert_false(reg_parse_status("registered ", &s));
	assert_false(reg_parse_status("attending", &s));
	assert_false(reg_parse_status(NULL, &s));
}

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/kallad-test-reg-XXXXXX");
	if (!mkdtemp(tmpdir) || !tz_set("Europe/Stockholm"))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int rc = system(cmd);

	free(cmd);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_programme),
	    cmocka_unit_test(test_bad_rows_skipped),
	    cmocka_unit_test(test_custom_queries),
	    cmocka_unit_test(test_view_and_missing_tables),
	    cmocka_unit_test(test_waits_for_writer_and_never_writes),
	    cmocka_unit_test(test_missing_database_not_created),
	    cmocka_unit_test(test_valid_email),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
