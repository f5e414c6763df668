/* reg_sql.h: the SQLite plumbing of the registration database
 * (registrations.c): queries by column name, errors and row warnings
 * named by file, query and row. Internal to the registrations modules. */
#ifndef KALLAD_REG_SQL_H
#define KALLAD_REG_SQL_H

#include "reg_row.h"
#include "registrations.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* How long a writer may hold the database before a read gives up. */
#define REG_BUSY_TIMEOUT_MS 10000

/* A warning held back so that reg_load can report the participants, which
 * it reads in address order, in row order. */
struct rowmsg {
	long row;
	size_t seq;
	char *msg;
};

struct pending {
	struct rowmsg *items;
	size_t n, cap;
};

/* Where rows come from, for messages: "path: label row N (email): what". */
struct source {
	const char *db;           /* the database file */
	const char *label;        /* table name or "[registrations] NAME query" */
	struct errlist *warnings; /* NULL: rows are checked without a word */
	struct pending *pending;  /* non-NULL: warnings wait here to be sorted */
};

struct column {
	const char *name;
	bool required;
	int idx; /* -1 when the query does not return it */
};

/* A warning about a row: "db: label row N (email): what", to
 * src->warnings (or held in src->pending); nothing without warnings. */
void rsql_row_warn(const struct source *src, long row, const char *email, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Hands the held-back warnings to src->warnings in row order. */
void rsql_pending_flush(struct source *src);

/* A column as a reg_row field; as a trimmed string (NULL for NULL). */
struct reg_field rsql_col_field(sqlite3_stmt *st, int idx);
char *rsql_col_text(sqlite3_stmt *st, int idx);

/* Finds each wanted column by name (case-insensitive, first wins). */
bool rsql_map_columns(sqlite3_stmt *st, struct column *cols, size_t n, const struct source *src,
		      struct errlist *errs);
void rsql_error(sqlite3 *db, const struct source *src, int rc, struct errlist *errs);
/* After reg_load there is no errlist: errors go to the log. */
void rsql_log_errs(struct errlist *errs);

/* The SELECT rows come from (the configured one or the shipped table's),
 * as text to wrap as a subquery, once it is known to return the required
 * columns. NULL with a line in errs, or NULL with *missing set when a
 * shipped optional table does not exist. *has_rowid: it returns the
 * column kallad_rowid. */
char *rsql_source_sql(sqlite3 *db, const char *custom, const char *table, bool optional,
		      struct column *cols, size_t ncols, const struct source *src,
		      bool *has_rowid, bool *missing, struct errlist *errs);

/* Runs one query and calls row() for each row with the mapped columns.
 * The row number is the column kallad_rowid when the query has it, else
 * the position in the result. */
typedef void (*rsql_row_fn)(sqlite3_stmt *st, const struct column *cols, long row,
                       const struct source *src, void *arg);

bool rsql_run_rows(sqlite3 *db, const char *sql, struct column *cols, size_t ncols,
		   const struct source *src, rsql_row_fn fn, void *arg, struct errlist *errs);

/* Prepares one of reg's queries for a read after reg_load; logged. */
sqlite3_stmt *rsql_prepare(const struct registrations *reg, const char *sql, const char *label,
			   struct column *cols, size_t ncols);
/* The end of a read after reg_load: true if it ran to the end (rc). */
bool rsql_step_done(const struct registrations *reg, const char *label, int rc);

#endif
