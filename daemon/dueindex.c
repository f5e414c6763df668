#include "dueindex.h"

#include "log.h"
#include "scratch.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

/* Past this much memory the index lives in its temporary file. */
#define CACHE_KIB 2048

enum { Q_PUT, Q_ADD, Q_LOWER, Q_WOKEN, Q_WAKE, Q_DUE, Q_COUNT, Q_HELD, Q_N };

static const char *const sql[Q_N] = {
	[Q_PUT] = "INSERT OR REPLACE INTO w(email, wake, due, message, target, n, held, removed)"
		  " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[Q_ADD] = "INSERT OR IGNORE INTO w(email, n, held, removed) VALUES (?, 0, 0, 0)",
	[Q_LOWER] = "UPDATE w SET wake = ?2 WHERE email = ?1 AND (wake IS NULL OR wake > ?2)",
	[Q_WOKEN] = "SELECT email, removed FROM w WHERE wake IS NOT NULL AND wake <= ?",
	[Q_WAKE] = "SELECT min(wake) FROM w",
	[Q_DUE] = "SELECT due, message, target FROM w WHERE due IS NOT NULL"
		  " ORDER BY due, email LIMIT 1",
	[Q_COUNT] = "SELECT total(n) FROM w WHERE due = ? AND message = ? AND target = ?",
	[Q_HELD] = "SELECT total(held) FROM w WHERE held > 0",
};

struct dueindex {
	sqlite3 *db;
	sqlite3_stmt *q[Q_N];
	bool failed;
};

static bool exec(struct dueindex *ix, const char *s)
{
	char *err = NULL;

	if (sqlite3_exec(ix->db, s, NULL, NULL, &err) == SQLITE_OK)
		return true;
	log_error("the index of what is due: %s", err ? err : "?");
	sqlite3_free(err);
	ix->failed = true;
	return false;
}

struct dueindex *dueindex_new(void)
{
	struct dueindex *ix = xcalloc(1, sizeof(*ix));

	ix->db = scratch_open("for the index of what is due", CACHE_KIB,
			      "CREATE TABLE w(email TEXT PRIMARY KEY, wake INTEGER, due INTEGER,"
			      " message TEXT, target TEXT, n INTEGER, held INTEGER, removed INTEGER);"
			      "CREATE INDEX w_wake ON w(wake);"
			      "CREATE INDEX w_due ON w(due, email);"
			      /* What a wake asks must not read every participant's row:
			       * the held are few (a partial index), and the deliveries
			       * at the next due time are counted from an index alone. */
			      "CREATE INDEX w_held ON w(held) WHERE held > 0;"
			      "CREATE INDEX w_group ON w(due, message, target, n);");
	if (!ix->db) {
		dueindex_free(ix);
		return NULL;
	}
	for (int i = 0; i < Q_N; i++)
		if (sqlite3_prepare_v2(ix->db, sql[i], -1, &ix->q[i], NULL) != SQLITE_OK) {
			log_error("the index of what is due: %s", sqlite3_errmsg(ix->db));
			dueindex_free(ix);
			return NULL;
		}
	return ix;
}

void dueindex_free(struct dueindex *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(ix->q[i]);
	sqlite3_close(ix->db);
	free(ix);
}

void dueindex_clear(struct dueindex *ix)
{
	ix->failed = false;
	exec(ix, "DELETE FROM w");
}

void dueindex_begin(struct dueindex *ix)
{
	if (sqlite3_get_autocommit(ix->db))
		exec(ix, "BEGIN");
}

void dueindex_commit(struct dueindex *ix)
{
	if (!sqlite3_get_autocommit(ix->db))
		exec(ix, "COMMIT");
}

static void bind_time(sqlite3_stmt *s, int i, time_t t)
{
	if (t)
		sqlite3_bind_int64(s, i, (sqlite3_int64)t);
	else
		sqlite3_bind_null(s, i);
}

/* Steps a statement to its end; false (and the index unreliable) on an
 * error. */
static bool done(struct dueindex *ix, sqlite3_stmt *s, int rc)
{
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("the index of what is due: %s", sqlite3_errmsg(ix->db));
		ix->failed = true;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return !ix->failed;
}

void dueindex_put(struct dueindex *ix, const char *email, const struct due_entry *e)
{
	sqlite3_stmt *s = ix->q[Q_PUT];

	sqlite3_bind_text(s, 1, email, -1, SQLITE_STATIC);
	bind_time(s, 2, e->wake);
	bind_time(s, 3, e->due);
	sqlite3_bind_text(s, 4, e->due ? e->message : NULL, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, e->due ? e->target : NULL, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, e->count);
	sqlite3_bind_int64(s, 7, e->held);
	sqlite3_bind_int(s, 8, e->removed);
	done(ix, s, sqlite3_step(s));
}

void dueindex_lower(struct dueindex *ix, const char *email, time_t wake)
{
	sqlite3_stmt *a = ix->q[Q_ADD], *l = ix->q[Q_LOWER];

	sqlite3_bind_text(a, 1, email, -1, SQLITE_STATIC);
	if (!done(ix, a, sqlite3_step(a)))
		return;
	sqlite3_bind_text(l, 1, email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(l, 2, (sqlite3_int64)wake);
	done(ix, l, sqlite3_step(l));
}

char **dueindex_woken(struct dueindex *ix, time_t now, bool *removed)
{
	sqlite3_stmt *s = ix->q[Q_WOKEN];
	char **out = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*removed = false;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		out = xgrow(out, &cap, n + 1, sizeof(*out));
		out[n++] = xstrdup((const char *)sqlite3_column_text(s, 0));
		if (sqlite3_column_int(s, 1))
			*removed = true;
	}
	done(ix, s, rc);
	out = xgrow(out, &cap, n + 1, sizeof(*out));
	out[n] = NULL;
	return out;
}

time_t dueindex_next_wake(struct dueindex *ix)
{
	sqlite3_stmt *s = ix->q[Q_WAKE];
	int rc = sqlite3_step(s);
	time_t t = rc == SQLITE_ROW ? (time_t)sqlite3_column_int64(s, 0) : 0;

	done(ix, s, rc);
	return t;
}

time_t dueindex_next_due(struct dueindex *ix, char **message, char **target, long *count)
{
	sqlite3_stmt *s = ix->q[Q_DUE], *c = ix->q[Q_COUNT];
	int rc = sqlite3_step(s);
	time_t due = 0;

	*message = *target = NULL;
	*count = 0;
	if (rc == SQLITE_ROW) {
		due = (time_t)sqlite3_column_int64(s, 0);
		*message = xstrdup((const char *)sqlite3_column_text(s, 1));
		*target = xstrdup((const char *)sqlite3_column_text(s, 2));
	}
	done(ix, s, rc);
	if (!due)
		return 0;
	sqlite3_bind_int64(c, 1, (sqlite3_int64)due);
	sqlite3_bind_text(c, 2, *message, -1, SQLITE_STATIC);
	sqlite3_bind_text(c, 3, *target, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(c)) == SQLITE_ROW)
		*count = (long)sqlite3_column_double(c, 0);
	done(ix, c, rc);
	return due;
}

long dueindex_held(struct dueindex *ix)
{
	sqlite3_stmt *s = ix->q[Q_HELD];
	int rc = sqlite3_step(s);
	long n = rc == SQLITE_ROW ? (long)sqlite3_column_double(s, 0) : 0;

	done(ix, s, rc);
	return n;
}

bool dueindex_ok(const struct dueindex *ix)
{
	return ix && !ix->failed;
}
