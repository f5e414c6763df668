#include "linesort.h"

#include "log.h"
#include "scratch.h"
#include "util.h"

#include <sqlite3.h>
#include <stdlib.h>

/* The sorter spills to its temporary file past this much memory. */
#define CACHE_KIB 4096

struct linesort {
	sqlite3 *db;
	sqlite3_stmt *add;
	bool failed;
};

static bool exec(struct linesort *ls, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(ls->db, sql, NULL, NULL, &err) == SQLITE_OK)
		return true;
	log_error("sorting lines in a temporary database: %s", err ? err : "?");
	sqlite3_free(err);
	return false;
}

struct linesort *linesort_new(void)
{
	struct linesort *ls = xcalloc(1, sizeof(*ls));

	ls->db = scratch_open("to sort lines", CACHE_KIB,
			      "CREATE TABLE line(k INTEGER NOT NULL, t TEXT NOT NULL); BEGIN");
	if (!ls->db ||
	    sqlite3_prepare_v2(ls->db, "INSERT INTO line(k, t) VALUES (?, ?)", -1, &ls->add, NULL) !=
		    SQLITE_OK) {
		linesort_free(ls);
		return NULL;
	}
	return ls;
}

bool linesort_add(struct linesort *ls, time_t when, const char *text)
{
	sqlite3_bind_int64(ls->add, 1, (sqlite3_int64)when);
	sqlite3_bind_text(ls->add, 2, text, -1, SQLITE_STATIC);
	if (sqlite3_step(ls->add) != SQLITE_DONE) {
		if (!ls->failed)
			log_error("sorting lines in a temporary database: %s", sqlite3_errmsg(ls->db));
		ls->failed = true;
	}
	sqlite3_reset(ls->add);
	sqlite3_clear_bindings(ls->add);
	return !ls->failed;
}

bool linesort_each(struct linesort *ls, linesort_fn fn, void *arg)
{
	sqlite3_stmt *q;
	int rc;

	if (!exec(ls, "COMMIT"))
		return false;
	/* BINARY collation compares as memcmp, then by length: strcmp's order
	 * for text without NUL bytes. */
	if (sqlite3_prepare_v2(ls->db, "SELECT t FROM line ORDER BY k, t", -1, &q, NULL) !=
	    SQLITE_OK) {
		log_error("sorting lines in a temporary database: %s", sqlite3_errmsg(ls->db));
		return false;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0), arg);
	if (rc != SQLITE_DONE)
		log_error("sorting lines in a temporary database: %s", sqlite3_errmsg(ls->db));
	sqlite3_finalize(q);
	return rc == SQLITE_DONE && !ls->failed;
}

static void write_line(const char *text, size_t len, void *arg)
{
	FILE *out = arg;

	fwrite(text, 1, len, out);
	fputc('\n', out);
}

bool linesort_write(struct linesort *ls, FILE *out)
{
	return linesort_each(ls, write_line, out);
}

void linesort_free(struct linesort *ls)
{
	if (!ls)
		return;
	sqlite3_finalize(ls->add);
	sqlite3_close(ls->db);
	free(ls);
}
