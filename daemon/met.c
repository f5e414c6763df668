#include "met.h"

#include "log.h"
#include "scratch.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this much memory the set lives in its temporary file. */
#define CACHE_KIB 1024

struct met {
	sqlite3 *db;
	sqlite3_stmt *add, *walk, *one;
	char *at;     /* the walk's current address; NULL past its end */
	char *passed; /* the last address the walk stepped over, NULL before */
	bool failed, walking;
};

static void fail(struct met *m, const char *what)
{
	if (!m->failed)
		log_error("the addresses a pass met (%s): %s", what, sqlite3_errmsg(m->db));
	m->failed = true;
}

static bool exec(struct met *m, const char *sql)
{
	if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return true;
	fail(m, "setting up");
	return false;
}

struct met *met_new(void)
{
	struct met *m = xcalloc(1, sizeof(*m));

	m->db = scratch_open("for the addresses a pass met", CACHE_KIB,
			     "CREATE TABLE m(email TEXT PRIMARY KEY COLLATE NOCASE) WITHOUT ROWID;"
			     " BEGIN");
	if (!m->db) {
		met_free(m);
		return NULL;
	}
	if (sqlite3_prepare_v2(m->db, "INSERT OR IGNORE INTO m(email) VALUES (?)", -1, &m->add,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(m->db, "SELECT email FROM m ORDER BY email", -1, &m->walk, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(m->db, "SELECT 1 FROM m WHERE email = ?", -1, &m->one, NULL) !=
		    SQLITE_OK) {
		if (!m->failed)
			fail(m, "setting up");
		met_free(m);
		return NULL;
	}
	return m;
}

void met_free(struct met *m)
{
	if (!m)
		return;
	sqlite3_finalize(m->add);
	sqlite3_finalize(m->walk);
	sqlite3_finalize(m->one);
	sqlite3_close(m->db);
	free(m->at);
	free(m->passed);
	free(m);
}

void met_add(struct met *m, const char *email)
{
	if (m->failed || m->walking)
		return;
	sqlite3_bind_text(m->add, 1, email, -1, SQLITE_STATIC);
	if (sqlite3_step(m->add) != SQLITE_DONE)
		fail(m, "adding");
	sqlite3_reset(m->add);
}

/* The walk one step on: m->at is the next address, NULL at the end. */
static void step(struct met *m)
{
	int rc = sqlite3_step(m->walk);

	free(m->passed);
	m->passed = m->at;
	m->at = rc == SQLITE_ROW ? xstrdup((const char *)sqlite3_column_text(m->walk, 0)) : NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail(m, "reading");
}

void met_done(struct met *m)
{
	if (m->walking)
		return;
	m->walking = true;
	if (!exec(m, "COMMIT"))
		return;
	step(m);
}

void met_rewind(struct met *m)
{
	met_done(m);
	if (m->failed)
		return;
	sqlite3_reset(m->walk);
	free(m->at);
	free(m->passed);
	m->at = m->passed = NULL;
	step(m);
	free(m->passed);
	m->passed = NULL;
}

/* Out of order: the index answers. */
static bool lookup(struct met *m, const char *email)
{
	int rc;
	bool found;

	sqlite3_bind_text(m->one, 1, email, -1, SQLITE_STATIC);
	rc = sqlite3_step(m->one);
	found = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail(m, "reading");
	sqlite3_reset(m->one);
	return found;
}

bool met_has(struct met *m, const char *email)
{
	met_done(m);
	if (m->failed)
		return true; /* unreliable: nobody is taken for gone */
	/* Behind the walk (asked out of order): the index answers. */
	if (m->passed && sqlite3_stricmp(m->passed, email) >= 0)
		return lookup(m, email);
	/* The same NOCASE order as the table's key: a merge. */
	while (m->at && sqlite3_stricmp(m->at, email) < 0)
		step(m);
	return m->at && sqlite3_stricmp(m->at, email) == 0;
}

bool met_ok(const struct met *m)
{
	return m && !m->failed;
}
