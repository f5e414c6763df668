/* test_registrations.c: daemon/registrations.c against real SQLite files
 * built from the shipped schema and example participants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "registrations.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

/* AddressSanitizer has its own malloc, which mallinfo2() does not see. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

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
	return registrations_config("/etc/kallad/kallad.conf", db);
}

/* What reg_each showed: the addresses in order, checked as they come. */
struct seen {
	char **emails;
	char **names;
	size_t n, cap;
	size_t by_status[4];
	size_t pages, in_page, max_in_page;
	const struct participant *page[1000]; /* this page's, checked at page_done */
	bool out_of_order;
};

static void seen_one(const struct participant *p, void *arg)
{
	struct seen *s = arg;

	if (s->n && strcasecmp(s->emails[s->n - 1], p->email) >= 0)
		s->out_of_order = true;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->emails = realloc(s->emails, s->cap * sizeof(*s->emails));
		s->names = realloc(s->names, s->cap * sizeof(*s->names));
		assert_non_null(s->emails);
		assert_non_null(s->names);
	}
	s->emails[s->n] = xstrdup(p->email);
	s->names[s->n] = xstrdup(p->name);
	s->n++;
	s->by_status[p->status]++;
	if (s->in_page < ARRAY_SIZE(s->page))
		s->page[s->in_page] = p;
	s->in_page++;
}

/* The participants of the page must still be there (ASan would say). */
static void seen_page_done(void *arg)
{
	struct seen *s = arg;

	for (size_t i = 0; i < s->in_page && i < ARRAY_SIZE(s->page); i++)
		assert_true(reg_valid_email(s->page[i]->email));
	if (s->in_page > s->max_in_page)
		s->max_in_page = s->in_page;
	s->in_page = 0;
	s->pages++;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->emails[i]);
		free(s->names[i]);
	}
	free(s->emails);
	free(s->names);
	*s = (struct seen){0};
}

static void test_example_programme(void **state UNUSED)
{
	char *db = make_example_db();
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct seen s = {0};
	struct participant p;
	struct attachment *a;

	dump(&warn);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, 14);
	assert_true(reg_each(reg, seen_one, seen_page_done, &s));
	assert_int_equal(s.n, 14);
	assert_false(s.out_of_order);
	assert_int_equal(s.pages, 1);
	assert_int_equal(s.by_status[PS_REGISTERED], 10);
	assert_int_equal(s.by_status[PS_INVITED], 2);
	assert_int_equal(s.by_status[PS_WAITLISTED], 1);
	assert_int_equal(s.by_status[PS_CANCELLED], 1);
	assert_memory_equal(s.by_status, reg->by_status, sizeof(s.by_status));
	seen_free(&s);

	/* "2019-11-04 09:12:00" has no offset: Stockholm time, UTC+1 then. */
	assert_true(reg_find(reg, "Anna.Berglund@GAVLE.example.se", &p));
	assert_string_equal(p.name, "Anna Berglund");
	assert_string_equal(p.organisation, "Gävle kommun");
	assert_string_equal(p.role, "kommunstyrelsens ordförande");
	assert_int_equal(p.registered_at, utc(2019, 11, 4, 8, 12));
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "karin.hedlund@skane.example.se", &p));
	assert_int_equal(p.registered_at, utc(2019, 11, 15, 8, 30));
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "johan.lindqvist@regionvasterbotten.example.se", &p));
	assert_int_equal(p.updated_at, utc(2019, 11, 6, 12, 40));
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "PER.HALLBERG+styraleda@umea.example.se", &p));
	assert_string_equal(p.email, "per.hallberg+styraleda@umea.example.se");
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "sofia.nyberg@regionuppsala.example.se", &p));
	assert_string_equal(p.language, "en");
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "henrik.dahl@karlstad.example.se", &p));
	assert_int_equal(p.status, PS_INVITED);
	assert_int_equal(p.registered_at, 0);
	reg_participant_clear(&p);
	assert_false(reg_find(reg, "nobody@example.se", &p));
	assert_null(p.email);
	assert_false(reg_find(reg, NULL, &p));
	/* A LIKE pattern is no address. */
	assert_false(reg_find(reg, "%", &p));

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
	assert_int_equal(reg_attachments(reg, "ANNA.berglund@gavle.example.se", "material", &a), 1);
	assert_string_equal(a[0].email, "anna.berglund@gavle.example.se");
	assert_string_equal(a[0].message, "material");
	assert_string_equal(a[0].path, "basfakta-gavle.pdf");
	reg_attachments_free(a, 1);
	assert_int_equal(reg_attachments(reg, "anna.berglund@gavle.example.se", "invite", &a), 0);
	assert_null(a);
	assert_int_equal(reg_attachments(reg, "henrik.dahl@karlstad.example.se", "material", &a),
	                 0);
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(db);
}

static void test_bad_rows_skipped(void **state UNUSED)
{
	const char *files[] = {FIXTURES "/registrations-bad-rows.sql", NULL};
	char *db = make_db("bad.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;
	struct attachment *a;
	struct seen s = {0};

	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(errs.n, 0);
	/* ok.one, ok.two, ok.three, ok.four, and when: a registered_at that
	 * cannot be read is no reason to skip anyone. */
	assert_int_equal(reg->n_participants, 5);
	assert_true(has_entry(&warn,
	                        "bad.db: participants row 2 (anna@@x.example.org): "
	                        "invalid e-mail address",
	                        NULL));
	assert_true(has_entry(
	    &warn, "participants row 3 (eve@example.org\\x0d\\x0aBcc: ", "invalid e-mail address"));
	assert_true(has_entry(&warn, "participants row 4 (maybe@example.org)",
	                        "unknown status \"maybe\""));
	assert_true(has_entry(&warn, "participants row 5 (when@example.org)",
	                        "registered_at \"yesterday\" is not an ISO 8601 time"));
	assert_true(has_entry(&warn, "participants row 5 (when@example.org)", "read without it"));
	assert_true(
	    has_entry(&warn, "participants row 6 (OK.ONE@example.org)", "duplicate of row 1"));
	assert_true(has_entry(&warn, "participants row 8 (ok.three@example.org)",
	                        "language \"klingon\""));
	assert_true(has_entry(&warn, "participants row 9 (noname@example.org)", "no name"));
	assert_true(has_entry(&warn, "participants row 10", "invalid e-mail address"));
	assert_true(has_entry(&warn, "participants row 11", "invalid e-mail address"));
	assert_true(has_entry(&warn, "participants row 12 (ok.four@example.org)",
	                        "organisation is not valid UTF-8"));
	/* Read in address order, reported in row order. */
	assert_non_null(strstr(warn.items[0], "participants row 2 "));
	assert_non_null(strstr(warn.items[4], "participants row 6 "));
	assert_non_null(strstr(warn.items[9], "participants row 12 "));

	assert_true(reg_find(reg, "ok.one@example.org", &p));
	assert_string_equal(p.name, "Ok Ett"); /* the first of the duplicates */
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "ok.two@example.org", &p));
	assert_string_equal(p.language, "en");
	assert_int_equal(p.status, PS_INVITED);
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "ok.three@example.org", &p));
	assert_string_equal(p.language, "sv");
	assert_int_equal(p.updated_at, 1572703380);
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "ok.four@example.org", &p));
	assert_null(p.organisation);
	assert_int_equal(p.status, PS_CANCELLED);
	reg_participant_clear(&p);
	assert_false(reg_find(reg, "maybe@example.org", &p));
	assert_true(reg_find(reg, "when@example.org", &p));
	assert_int_equal(p.registered_at, 0);
	reg_participant_clear(&p);

	/* reg_each skips the same rows without a word, the duplicate too. */
	assert_true(reg_each(reg, seen_one, NULL, &s));
	assert_int_equal(s.n, 5);
	assert_string_equal(s.emails[0], "ok.four@example.org");
	assert_string_equal(s.emails[1], "ok.one@example.org");
	assert_string_equal(s.names[1], "Ok Ett");
	assert_string_equal(s.emails[2], "ok.three@example.org");
	assert_string_equal(s.emails[3], "ok.two@example.org");
	assert_string_equal(s.emails[4], "when@example.org");
	seen_free(&s);

	assert_int_equal(reg->n_absences, 1);
	assert_true(has_entry(&warn, "absences row 2 (not an address)", "invalid e-mail"));
	assert_true(has_entry(&warn, "absences row 3 (nobody@example.org)", "no participant"));
	assert_int_equal(reg->n_attachments, 1);
	assert_int_equal(reg_attachments(reg, "ok.one@example.org", "material", &a), 1);
	assert_string_equal(a[0].path, "/srv/material/basfakta-gavle.pdf");
	reg_attachments_free(a, 1);
	/* The row without a message name is not served either. */
	assert_int_equal(reg_attachments(reg, "ok.two@example.org", "", &a), 0);
	assert_true(has_entry(&warn, "attachments row 2", "invalid e-mail"));
	assert_true(has_entry(&warn, "attachments row 3 (ok.two@example.org)", "message"));
	assert_int_equal(warn.n, 14);
	reg_free(reg);
	errlist_free(&warn);
	free(db);
}

static void test_custom_queries(void **state UNUSED)
{
	const char *files[] = {FIXTURES "/registrations-people.sql", NULL};
	char *db = make_db("people.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	struct participant p;
	struct attachment *a;
	struct seen s = {0};

	/* A trailing ";" and comment are fine: the query becomes a subquery. */
	cfg.sql_participants =
	    "SELECT state AS status, andrad AS updated_at, mail AS email, full_name AS name, "
	    "kommun AS organisation, uppdrag AS role, sprak AS language, "
	    "anmald AS registered_at FROM people; -- the site's own\n";
	cfg.sql_absences = "SELECT tillfalle AS session_uid, person AS Email FROM franvaro";
	cfg.sql_attachments = "SELECT person AS email, vad AS message, fil AS path FROM bilagor";
	reg = reg_load(&cfg, &warn, &errs);
	dump(&warn);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, 2);
	assert_int_equal(reg->by_status[PS_REGISTERED], 1);
	assert_int_equal(reg->by_status[PS_INVITED], 1);
	assert_true(reg_find(reg, "berit.holm@sundsvall.example.se", &p));
	assert_string_equal(p.name, "Berit Holm");
	assert_string_equal(p.organisation, "Sundsvalls kommun");
	assert_int_equal(p.status, PS_REGISTERED);
	assert_int_equal(p.registered_at, utc(2019, 11, 20, 9, 0));
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "ola.nord@kiruna.example.se", &p));
	assert_string_equal(p.language, "en");
	reg_participant_clear(&p);
	assert_true(reg_each(reg, seen_one, seen_page_done, &s));
	assert_int_equal(s.n, 2);
	assert_string_equal(s.emails[0], "berit.holm@sundsvall.example.se");
	assert_string_equal(s.emails[1], "ola.nord@kiruna.example.se");
	assert_int_equal(s.pages, 1);
	seen_free(&s);
	assert_true(
	    reg_is_absent(reg, "ola.nord@kiruna.example.se", "styra-leda-2020-1@example.org"));
	assert_int_equal(reg->n_attachments, 1);
	assert_int_equal(reg_attachments(reg, "Berit.Holm@sundsvall.example.se", "material", &a),
	                 1);
	assert_string_equal(a[0].path, "material/basfakta-sundsvall.pdf");
	reg_attachments_free(a, 1);
	reg_free(reg);

	/* Without the shipped tables and without a status column: an error
	 * naming the query and the column. */
	cfg.sql_participants = "SELECT mail AS email, full_name AS name FROM people";
	reg = reg_load(&cfg, &warn, &errs);
	assert_null(reg);
	assert_true(has_entry(&errs, "people.db: [registrations] participants query",
	                        "no column \"status\""));
	errlist_free(&errs);

	/* A query that is no query. */
	cfg.sql_participants = "-- nothing\n";
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "participants query", "the query is empty"));
	errlist_free(&errs);

	/* The shipped query on a database without the shipped tables. */
	cfg.sql_participants = cfg.sql_absences = cfg.sql_attachments = NULL;
	reg = reg_load(&cfg, &warn, &errs);
	assert_null(reg);
	assert_true(has_entry(&errs, "people.db: participants", "no such table"));
	errlist_free(&errs);
	errlist_free(&warn);
	free(db);
}

/* A view as participants (no rowid) and no attachments/absences tables. */
static void test_view_and_missing_tables(void **state UNUSED)
{
	const char *files[] = {FIXTURES "/registrations-people.sql", NULL};
	char *db = make_db("view.db", files);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	struct participant p;
	struct attachment *a;
	struct seen s = {0};
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
	assert_true(reg_find(reg, "ola.nord@kiruna.example.se", &p));
	assert_string_equal(p.language, "sv");
	reg_participant_clear(&p);
	assert_true(reg_each(reg, seen_one, NULL, &s));
	assert_int_equal(s.n, 2);
	seen_free(&s);
	assert_int_equal(reg_attachments(reg, "ola.nord@kiruna.example.se", "material", &a), 0);
	assert_null(a);
	reg_free(reg);
	errlist_free(&warn);
	free(db);
}

/* --- paging --- */

struct gen {
	sqlite3 *db;
	sqlite3_stmt *ins;
	long rows; /* rows inserted so far: their position in address order */
};

static void gen_row(struct gen *g, const char *email, const char *name, const char *status)
{
	sqlite3_bind_text(g->ins, 1, email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(g->ins, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(g->ins, 3, status, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(g->ins), SQLITE_DONE);
	sqlite3_reset(g->ins);
	g->rows++;
}

static const char *const gen_status[] = {"registered", "invited", "waitlisted", "cancelled"};

/* The rows of address i, in the order reg_load and reg_each read them
 * (address, then rowid): what name the one participant must have. */
static const char *gen_address(struct gen *g, int i, bool *straddled)
{
	char lower[64], upper[64];
	const char *st = gen_status[i % 4];

	snprintf(lower, sizeof(lower), "p%04d@example.org", i);
	snprintf(upper, sizeof(upper), "P%04d@Example.ORG", i);
	/* A page of 1000 rows ends inside these: 4 bad rows, then the one. */
	if (!straddled[0] && g->rows >= 997 && g->rows < 1000) {
		straddled[0] = true;
		for (int k = 0; k < 4; k++)
			gen_row(g, k % 2 ? upper : lower, "Bad", "maybe");
		gen_row(g, upper, "Late", st);
		return "Late";
	}
	/* Here the first is good and its case duplicates cross a page. */
	if (!straddled[1] && g->rows >= 1997 && g->rows < 2000) {
		straddled[1] = true;
		gen_row(g, lower, "First", st);
		for (int k = 0; k < 4; k++)
			gen_row(g, upper, "Again", st);
		return "First";
	}
	if (i % 13 == 0) {
		char bad[64];
		snprintf(bad, sizeof(bad), "p%04d-x@@example.org", i);
		gen_row(g, bad, "Bad", st);
	}
	if (i % 11 == 5) {
		gen_row(g, lower, "Bad", "maybe");
		gen_row(g, upper, "Second", st);
		return "Second";
	}
	gen_row(g, lower, "First", st);
	if (i % 7 == 3)
		gen_row(g, upper, "Again", st);
	return "First";
}

/* A participants table without a primary key, as a careless site has it,
 * rows in address order. */
static char *make_paging_db(int n, const char ***names, long *rows)
{
	char *path = xasprintf("%s/paging.db", tmpdir);
	struct gen g = {0};
	bool straddled[2] = {false, false};

	unlink(path);
	assert_int_equal(sqlite3_open(path, &g.db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(g.db,
	                              "CREATE TABLE participants(email TEXT, name TEXT, "
	                              "status TEXT, updated_at TEXT DEFAULT '2019-11-02 14:03:00');"
	                              "CREATE INDEX participants_email ON "
	                              "participants(email COLLATE NOCASE); BEGIN",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(g.db,
	                                    "INSERT INTO participants(email, name, status) "
	                                    "VALUES (?1, ?2, ?3)",
	                                    -1, &g.ins, NULL),
	                 SQLITE_OK);
	*names = xcalloc((size_t)n, sizeof(**names));
	for (int i = 0; i < n; i++)
		(*names)[i] = gen_address(&g, i, straddled);
	assert_true(straddled[0] && straddled[1]);
	sqlite3_finalize(g.ins);
	assert_int_equal(sqlite3_exec(g.db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(g.db);
	*rows = g.rows;
	return path;
}

static void check_paging(const struct config *cfg, int n, const char **names, long rows)
{
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(cfg, &warn, &errs);
	struct seen s = {0};
	size_t want[4] = {0};

	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, n);
	for (int i = 0; i < n; i++)
		want[i % 4]++;
	assert_memory_equal(reg->by_status, want, sizeof(want));
	assert_true(has_entry(&warn, "row 6 (P0003@Example.ORG)", "duplicate of row 5"));
	assert_true(reg_each(reg, seen_one, seen_page_done, &s));
	assert_false(s.out_of_order);
	assert_int_equal(s.n, n);
	for (int i = 0; i < n; i++) {
		char want_email[64];
		snprintf(want_email, sizeof(want_email), "p%04d@example.org", i);
		if (strcasecmp(s.emails[i], want_email) != 0 || strcmp(s.names[i], names[i]) != 0)
			fail_msg("participant %d: %s \"%s\", want %s \"%s\"", i, s.emails[i],
			         s.names[i], want_email, names[i]);
	}
	assert_memory_equal(s.by_status, want, sizeof(want));
	/* A page of 1000 rows: never more participants than that at once. */
	assert_int_equal(s.pages, (size_t)(rows + 999) / 1000);
	assert_true(s.max_in_page <= 1000);
	seen_free(&s);
	reg_free(reg);
	errlist_free(&warn);
}

/* 2 500 addresses in some 3 300 rows: bad rows and case duplicates on
 * every page and across the page ends. Each valid participant comes once,
 * in order, the first valid row of its address. */
static void test_paging(void **state UNUSED)
{
	const char **names;
	long rows;
	char *db = make_paging_db(2500, &names, &rows);
	struct config cfg = example_config(db);

	assert_true(rows > 3000 && rows < 4000); /* four pages */
	check_paging(&cfg, 2500, names, rows);
	/* The same through a site's query: no rowid, the row is the position. */
	cfg.sql_participants = "SELECT email, name, status, updated_at FROM participants;";
	check_paging(&cfg, 2500, names, rows);
	free(names);
	free(db);
}

/* reg_each reads the database as it is now; the counts are reg_load's. */
static void test_each_reads_current_rows(void **state UNUSED)
{
	char *db = make_example_db();
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;
	struct seen s = {0};
	sqlite3 *h;

	assert_non_null(reg);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
	                              "INSERT INTO participants(email, name, status, updated_at) "
	                              "VALUES ('ny@example.se', 'Ny Person', 'registered', "
	                              "'2019-12-01 10:00:00');"
	                              "DELETE FROM participants "
	                              "WHERE email = 'henrik.dahl@karlstad.example.se'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(h);
	assert_true(reg_each(reg, seen_one, NULL, &s));
	assert_int_equal(s.n, 14);
	assert_int_equal(reg->n_participants, 14);
	assert_true(reg_find(reg, "NY@example.se", &p));
	assert_string_equal(p.name, "Ny Person");
	reg_participant_clear(&p);
	assert_false(reg_find(reg, "henrik.dahl@karlstad.example.se", &p));
	seen_free(&s);
	reg_free(reg);
	errlist_free(&warn);
	free(db);
}

/* A struct filled by hand (db NULL), as other modules' tests build it. */
static void test_in_memory(void **state UNUSED)
{
	struct participant ps[] = {
	    {"anna@example.se", "Anna", NULL, NULL, "sv", PS_REGISTERED, 0, 0, false, false},
	    {"Bo@example.se", "Bo", "Kommunen", "ordförande", "en", PS_INVITED, 10, 20, false, false},
	    {"cia@example.se", "Cia", NULL, NULL, "sv", PS_CANCELLED, 0, 0, false, false},
	};
	struct absence abs[] = {{"bo@example.se", "s1@example.org", NULL}};
	struct attachment att[] = {
	    {"BO@example.se", "material", "a.pdf"},
	    {"anna@example.se", "material", "b.pdf"},
	    {"bo@example.se", "Material", "c.pdf"},
	    {"bo@example.se", "material", "d.pdf"},
	};
	struct registrations reg = {.participants = ps,
	                            .n_participants = 3,
	                            .absences = abs,
	                            .n_absences = 1,
	                            .attachments = att,
	                            .n_attachments = 4};
	struct participant p;
	struct attachment *a;
	struct seen s = {0};

	assert_true(reg_each(&reg, seen_one, seen_page_done, &s));
	assert_int_equal(s.n, 3);
	assert_int_equal(s.pages, 1);
	assert_string_equal(s.emails[1], "Bo@example.se");
	seen_free(&s);

	assert_true(reg_find(&reg, "bo@EXAMPLE.se", &p));
	assert_ptr_not_equal(p.email, ps[1].email); /* a copy, the caller's */
	assert_string_equal(p.email, "Bo@example.se");
	assert_string_equal(p.organisation, "Kommunen");
	assert_int_equal(p.updated_at, 20);
	reg_participant_clear(&p);
	assert_null(p.email);
	assert_false(reg_find(&reg, "dan@example.se", &p));

	assert_int_equal(reg_attachments(&reg, "bo@example.se", "material", &a), 2);
	assert_string_equal(a[0].path, "a.pdf");
	assert_string_equal(a[1].path, "d.pdf");
	reg_attachments_free(a, 2);
	assert_int_equal(reg_attachments(&reg, "cia@example.se", "material", &a), 0);
	assert_null(a);

	assert_true(reg_is_absent(&reg, "BO@example.se", "s1@example.org"));
	assert_false(reg_is_absent(&reg, "anna@example.se", "s1@example.org"));
}

/* --- memory --- */

/* The shipped schema with n participants, inserted out of address order. */
static char *make_big_db(int n)
{
	char *path = xasprintf("%s/big-%d.db", tmpdir, n);
	char *schema = read_file(SOURCE_DIR "/config/registrations.sql", NULL);
	sqlite3_stmt *ins;
	sqlite3 *db;

	unlink(path);
	assert_non_null(schema);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO participants VALUES (printf('deltagare%06d@kommun%03d"
	                       ".example.se', ?1, ?1 % 290), 'Deltagare ' || ?1, "
	                       "'Kommun ' || (?1 % 290), 'ledamot', "
	                       "CASE WHEN ?1 % 5 THEN 'sv' ELSE 'en' END, ?2, "
	                       "'2019-11-02 14:03:00', '2019-11-02T14:03:00+01:00')",
	                       -1, &ins, NULL),
	    SQLITE_OK);
	for (int i = 0; i < n; i++) {
		int k = (int)(((long)i * 7919) % n); /* 7919 is prime: a permutation */
		sqlite3_bind_int(ins, 1, k);
		sqlite3_bind_text(ins, 2, gen_status[k % 4], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(schema);
	return path;
}

struct mem_run {
	size_t base, after_load, each_peak; /* bytes in use (malloc) */
	long long sqlite_load_peak;         /* SQLite's own high-water mark in reg_load */
	size_t n;
};

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

static void mem_sample(const struct participant *p, void *arg)
{
	struct mem_run *m = arg;
	size_t now = heap_in_use();

	if (now > m->each_peak)
		m->each_peak = now;
	m->n += p->email != NULL;
}

static void measure(int n, struct mem_run *m)
{
	char *db = make_big_db(n);
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;

	*m = (struct mem_run){0};
	m->base = heap_in_use();
	sqlite3_memory_highwater(1);
	reg = reg_load(&cfg, &warn, &errs);
	m->sqlite_load_peak = sqlite3_memory_highwater(1);
	dump(&errs);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, n);
	assert_int_equal(reg->by_status[PS_WAITLISTED], n / 4);
	m->after_load = heap_in_use();
	assert_true(reg_each(reg, mem_sample, NULL, m));
	assert_int_equal(m->n, n);
	reg_free(reg);
	unlink(db);
	free(db);
	print_message("  %6d participants: heap %zu B before, %zu after reg_load, peak %zu in "
	              "reg_each; SQLite's peak in reg_load %lld B\n",
	              n, m->base, m->after_load, m->each_peak, m->sqlite_load_peak);
}

/* Memory must not grow with the participants (SPEC §5): 100 000 take no
 * more than 20 000, give or take 1 MiB. */
static void test_memory_does_not_grow(void **state UNUSED)
{
	const long long slack = 1 << 20;
	struct mem_run small, big;

	measure(20000, &small);
	measure(100000, &big);
	assert_true(big.sqlite_load_peak - small.sqlite_load_peak < slack);
	if (UNDER_ASAN) {
		print_message("  heap figures skipped: AddressSanitizer replaces malloc\n");
		return;
	}
	assert_true(small.each_peak > 0);
	assert_true((long long)(big.each_peak - big.base) -
	                (long long)(small.each_peak - small.base) <
	            slack);
	assert_true((long long)(big.after_load - big.base) -
	                (long long)(small.after_load - small.base) <
	            slack);
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
static void test_waits_for_writer_and_never_writes(void **state UNUSED)
{
	char *db = make_example_db(), *before, *after, *journal;
	struct config cfg = example_config(db);
	struct errlist warn = {0}, errs = {0};
	struct writer w = {NULL, 1000};
	struct timespec m0, m1, t0;
	struct registrations *reg;
	struct seen s = {0};
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

	/* reg_each reads later, and waits the same way. */
	assert_int_equal(sqlite3_open(db, &w.db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(w.db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pthread_create(&th, NULL, release_later, &w), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(reg_each(reg, seen_one, NULL, &s));
	waited = seconds_since(&t0);
	pthread_join(th, NULL);
	sqlite3_close(w.db);
	assert_int_equal(s.n, 14);
	assert_true(waited >= 0.8);
	assert_true(waited < 9.0);
	seen_free(&s);

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

static void test_missing_database_not_created(void **state UNUSED)
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

static void test_valid_email(void **state UNUSED)
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

static void test_status_names(void **state UNUSED)
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

static int setup(void **state UNUSED)
{
	strcpy(tmpdir, "/tmp/kallad-test-reg-XXXXXX");
	if (!mkdtemp(tmpdir) || !tz_set("Europe/Stockholm"))
		return -1;
	return 0;
}

static int teardown(void **state UNUSED)
{
	return remove_tree(tmpdir) ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_programme),
	    cmocka_unit_test(test_bad_rows_skipped),
	    cmocka_unit_test(test_custom_queries),
	    cmocka_unit_test(test_view_and_missing_tables),
	    cmocka_unit_test(test_paging),
	    cmocka_unit_test(test_each_reads_current_rows),
	    cmocka_unit_test(test_in_memory),
	    cmocka_unit_test(test_memory_does_not_grow),
	    cmocka_unit_test(test_waits_for_writer_and_never_writes),
	    cmocka_unit_test(test_missing_database_not_created),
	    cmocka_unit_test(test_valid_email),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
