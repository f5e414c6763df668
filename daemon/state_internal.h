/* state_internal.h: what the parts of kallad's own database share:
 * state.c (schema, statements, transactions), state_ledger.c (deliveries)
 * and state_memory.c (what kallad remembers of its inputs and replies).
 * Not for use outside them. */
#ifndef KALLAD_STATE_INTERNAL_H
#define KALLAD_STATE_INTERNAL_H

#include "state.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <time.h>

/* Every statement kallad runs, prepared once per handle. */
enum query {
	Q_KNOWN_GET,
	Q_KNOWN_PUT,
	Q_GET,
	Q_CLAIM,
	Q_MARK,
	Q_SKIP,
	Q_RELEASE,
	Q_RENEW,
	Q_ORPHANS,
	Q_DELETE,
	Q_RELEASED_GET,
	Q_RELEASED_PUT,
	Q_ATT_UNKNOWN,
	Q_NOTICE_PENDING,
	Q_HELD_REMOVAL_GET,
	Q_HELD_REMOVAL_PUT,
	Q_HELD_REMOVALS_CLEAR,
	Q_EACH,
	Q_EACH_STATE,
	Q_EACH_DONE,
	Q_COUNTS,
	Q_RETRY,
	Q_COPY_GET,
	Q_COPY_PUT,
	Q_COPY_EACH,
	Q_ATT_GET,
	Q_ATT_PUT,
	Q_OWED_GET,
	Q_OWED_PUT,
	Q_OWED_EACH,
	Q_OWED_DEL,
	Q_FULFILLED,
	Q_DL_GET,
	Q_DL_PUT,
	Q_DL_COPY_GET,
	Q_DL_COPY_PUT,
	Q_KNOWN_EACH,
	Q_KNOWN_DEL,
	Q_LEGACY,
	Q_OWED_COUNT,
	Q_OWED_FORGET,
	Q_HOLDS_SESSIONS,
	Q_WAS_INVITED,
	Q_META_GET,
	Q_META_PUT,
	Q_ANY_SENT,
	Q_META_ADD,
	Q_PRIOR_UNKNOWN,
	Q_CLAIMABLE,
	Q_PSEEN_GET,
	Q_PSEEN_PUT,
	Q_UNLINK,
	Q_VERSION_PUT,
	Q_VERSION_AT,
	Q_RELAY_GET,
	Q_RELAY_PUT,
	Q_RELAY_CLEAR,
	Q_RELAY_WAITING,
	Q_TX_READ,      /* transaction control: prepared once, as each outcome */
	Q_TX_WRITE,     /* ... and each claim batch has its own transaction */
	Q_TX_COMMIT,
	Q_N
};

/* The rows the index deliveries_state holds: all but DS_SENT and
 * DS_SKIPPED (schema 11). A query by state says it, in these words, for
 * SQLite to use the index; without them it reads the whole ledger. */
#define STATE_INDEXED "state NOT IN (1, 5)"

#define ROW_COLUMNS                                                                                \
	"key, message, email, target, rule, state, due, updated, next_attempt, attempts,"          \
	" message_id, detail"

struct state {
	sqlite3 *db;
	char *path;
	bool readonly;
	bool full;  /* synchronous = FULL is set (for a claim's transaction) */
	sqlite3_stmt *stmts[Q_N];
};

/* The SQL of each statement (state.c). */
extern const char *const query_sql[Q_N];

/* The prepared statement for q, reset and unbound; NULL (logged) on error. */
sqlite3_stmt *st_query(struct state *st, enum query q);
/* Steps a statement that returns no rows; false (logged) on error. */
bool st_run(struct state *st, sqlite3_stmt *s, const char *what);
/* Runs SQL without results; errors go to errs, or the log when NULL. */
bool st_exec(struct state *st, const char *sql, struct errlist *errs);
/* Logs SQLite's last error on st with what was being done. */
void st_log(struct state *st, const char *what);
/* Runs q with arg bound to ?1 (when not NULL); true when it gave a row,
 * whose first column goes to *out (when not NULL). */
bool st_one_row(struct state *st, enum query q, const char *arg, long long *out);

/* Binds a time; 0 means "none" in the structs but is a real value here. */
static inline void bind_time(sqlite3_stmt *s, int i, time_t t)
{
	sqlite3_bind_int64(s, i, (sqlite3_int64)t);
}

static inline void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static inline char *column_dup(sqlite3_stmt *s, int i)
{
	return xstrdup((const char *)sqlite3_column_text(s, i));
}


#endif
