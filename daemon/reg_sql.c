/* reg_sql.c: the SQLite plumbing of the registration database (reg_sql.h). */
#include "reg_sql.h"

#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rsql_row_warn(const struct source *src, long row, const char *email, const char *fmt, ...)
{
	char *who, *msg;
	struct pending *p = src->pending;
	struct strbuf sb;
	va_list ap;

	if (!src->warnings)
		return;
	who = email ? reg_row_show(email) : xstrdup("no e-mail");
	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	msg = xasprintf("%s: %s row %ld (%s): %s", src->db, src->label, row, who, sb.buf);
	sb_free(&sb);
	free(who);
	if (!p) {
		errlist_add(src->warnings, "%s", msg);
		free(msg);
		return;
	}
	p->items = xgrow(p->items, &p->cap, p->n, sizeof(*p->items));
	p->items[p->n] = (struct rowmsg){row, p->n, msg};
	p->n++;
}

static int rowmsg_cmp(const void *a, const void *b)
{
	const struct rowmsg *x = a, *y = b;

	if (x->row != y->row)
		return (x->row > y->row) - (x->row < y->row);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Hands the held-back warnings to src->warnings in row order. */
void rsql_pending_flush(struct source *src)
{
	struct pending *p = src->pending;

	if (p->n)
		qsort(p->items, p->n, sizeof(*p->items), rowmsg_cmp);
	for (size_t i = 0; i < p->n; i++) {
		errlist_add(src->warnings, "%s", p->items[i].msg);
		free(p->items[i].msg);
	}
	free(p->items);
	*p = (struct pending){0};
	src->pending = NULL;
}

/* The text of a column as a new string; NULL for SQL NULL or a column the
 * query lacks. An embedded NUL makes the value unusable: "" stands for it
 * so validation rejects it. */
char *rsql_col_text(sqlite3_stmt *st, int idx)
{
	struct reg_field f = rsql_col_field(st, idx);

	return reg_row_text(&f);
}

/* Finds each wanted column by name (case-insensitive, first wins). */
bool rsql_map_columns(sqlite3_stmt *st, struct column *cols, size_t n, const struct source *src,
                        struct errlist *errs)
{
	int ncol = sqlite3_column_count(st);
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		cols[i].idx = -1;
		for (int c = 0; c < ncol && cols[i].idx < 0; c++) {
			const char *name = sqlite3_column_name(st, c);
			if (name && strcasecmp(name, cols[i].name) == 0)
				cols[i].idx = c;
		}
		if (cols[i].idx < 0 && cols[i].required) {
			errlist_add(errs, "%s: %s: returns no column \"%s\"", src->db, src->label,
			            cols[i].name);
			ok = false;
		}
	}
	return ok;
}

void rsql_error(sqlite3 *db, const struct source *src, int rc, struct errlist *errs)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		errlist_add(errs, "%s: %s: the database stayed locked by another process for %d s",
		            src->db, src->label, REG_BUSY_TIMEOUT_MS / 1000);
	else
		errlist_add(errs, "%s: %s: %s", src->db, src->label, sqlite3_errmsg(db));
}

/* After reg_load there is no errlist: errors go to the log. */
void rsql_log_errs(struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		log_error("%s", errs->items[i]);
	errlist_free(errs);
}

static bool table_exists(sqlite3 *db, const char *name, int *rc)
{
	sqlite3_stmt *st = NULL;
	bool found = false;

	*rc = sqlite3_prepare_v2(db,
	                         "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') "
	                         "AND name = ?1 COLLATE NOCASE",
	                         -1, &st, NULL);
	if (*rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		*rc = sqlite3_step(st);
		found = *rc == SQLITE_ROW;
		if (*rc == SQLITE_ROW || *rc == SQLITE_DONE)
			*rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return found;
}

/* --- the queries --- */

/* The site's first statement, without the ";" and the blanks after it,
 * ready to go between parentheses. */
static int prepare_custom(sqlite3 *db, const char *custom, sqlite3_stmt **st, char **sql)
{
	const char *tail = NULL;
	int rc = sqlite3_prepare_v2(db, custom, -1, st, &tail);
	size_t n = tail ? (size_t)(tail - custom) : strlen(custom);

	while (n && (isspace((unsigned char)custom[n - 1]) || custom[n - 1] == ';'))
		n--;
	*sql = xstrndup(custom, n);
	return rc;
}

/* The shipped table asks for rowid so messages can name the row an
 * administrator would look for; a view has none, so that is tried
 * without. */
static int prepare_table(sqlite3 *db, const char *table, sqlite3_stmt **st, char **sql,
                         bool *has_rowid)
{
	int rc;

	*sql = xasprintf("SELECT rowid AS kallad_rowid, * FROM \"%s\"", table);
	rc = sqlite3_prepare_v2(db, *sql, -1, st, NULL);
	*has_rowid = rc == SQLITE_OK;
	if (rc == SQLITE_ERROR) {
		free(*sql);
		*sql = xasprintf("SELECT * FROM \"%s\"", table);
		rc = sqlite3_prepare_v2(db, *sql, -1, st, NULL);
	}
	return rc;
}

/* The SELECT rows come from (the configured one or the shipped table's),
 * as text to wrap as a subquery, once it is known to return the required
 * columns. NULL with a line in errs, or NULL with *missing set when a
 * shipped optional table does not exist. *has_rowid: it returns the
 * column kallad_rowid. */
char *rsql_source_sql(sqlite3 *db, const char *custom, const char *table, bool optional,
                        struct column *cols, size_t ncols, const struct source *src,
                        bool *has_rowid, bool *missing, struct errlist *errs)
{
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	int rc;

	*has_rowid = *missing = false;
	if (!custom && optional && !table_exists(db, table, &rc)) {
		*missing = rc == SQLITE_OK;
		if (!*missing)
			rsql_error(db, src, rc, errs);
		return NULL;
	}
	rc = custom ? prepare_custom(db, custom, &st, &sql)
	            : prepare_table(db, table, &st, &sql, has_rowid);
	if (rc != SQLITE_OK || !st) {
		if (rc == SQLITE_OK)
			errlist_add(errs, "%s: %s: the query is empty", src->db, src->label);
		else
			rsql_error(db, src, rc, errs);
	} else if (rsql_map_columns(st, cols, ncols, src, errs)) {
		sqlite3_finalize(st);
		return sql;
	}
	sqlite3_finalize(st);
	free(sql);
	return NULL;
}

bool rsql_run_rows(sqlite3 *db, const char *sql, struct column *cols, size_t ncols,
                     const struct source *src, rsql_row_fn fn, void *arg, struct errlist *errs)
{
	struct column rowid = {"kallad_rowid", false, -1};
	sqlite3_stmt *st = NULL;
	long n = 0;
	bool ok;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		rsql_error(db, src, rc, errs);
		sqlite3_finalize(st);
		return false;
	}
	ok = rsql_map_columns(st, cols, ncols, src, errs);
	rsql_map_columns(st, &rowid, 1, src, errs);
	while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		fn(st, cols, rowid.idx >= 0 ? (long)sqlite3_column_int64(st, rowid.idx) : n, src,
		   arg);
	}
	if (ok && rc != SQLITE_DONE) {
		rsql_error(db, src, rc, errs);
		ok = false;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Prepares one of reg's queries for a read after reg_load; logged. */
sqlite3_stmt *rsql_prepare(const struct registrations *reg, const char *sql,
                                 const char *label, struct column *cols, size_t ncols)
{
	struct source src = {reg->path, label, NULL, NULL};
	struct errlist errs = {0};
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		rsql_error(reg->db, &src, rc, &errs);
	else if (!rsql_map_columns(st, cols, ncols, &src, &errs))
		rc = SQLITE_ERROR;
	rsql_log_errs(&errs);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* The end of a read after reg_load: true if it ran to the end (rc). */
bool rsql_step_done(const struct registrations *reg, const char *label, int rc)
{
	struct source src = {reg->path, label, NULL, NULL};
	struct errlist errs = {0};

	if (rc == SQLITE_DONE)
		return true;
	rsql_error(reg->db, &src, rc, &errs);
	rsql_log_errs(&errs);
	return false;
}

/* A column as a field for reg_row: its storage class, then its value
 * (reading the text first could convert it). */
struct reg_field rsql_col_field(sqlite3_stmt *st, int idx)
{
	struct reg_field f = {RF_NULL, NULL, 0, 0};

	if (idx < 0)
		return f;
	switch (sqlite3_column_type(st, idx)) {
	case SQLITE_NULL: return f;
	case SQLITE_INTEGER:
		f.type = RF_INT;
		f.ival = sqlite3_column_int64(st, idx);
		break;
	case SQLITE_FLOAT: f.type = RF_FLOAT; break;
	case SQLITE_BLOB: f.type = RF_BLOB; break;
	default: f.type = RF_TEXT; break;
	}
	f.text = (const char *)sqlite3_column_text(st, idx);
	f.len = (size_t)sqlite3_column_bytes(st, idx);
	if (!f.text)
		f.type = RF_NULL;
	return f;
}

