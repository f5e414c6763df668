/* state_ledger.c: the deliveries table, kallad's ledger (SPEC §3): the
 * claim before a message leaves, its outcome after, retries, releases of
 * held changes, and claims orphaned by a kallad that stopped. */
#include "state_internal.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fills row from the ROW_COLUMNS of the current result row. */
static void row_fill(sqlite3_stmt *s, struct delivery_row *row)
{
	row->key = column_dup(s, 0);
	row->message = column_dup(s, 1);
	row->email = column_dup(s, 2);
	row->target = column_dup(s, 3);
	row->rule = column_dup(s, 4);
	row->state = (enum dstate)sqlite3_column_int(s, 5);
	row->due = (time_t)sqlite3_column_int64(s, 6);
	row->updated = (time_t)sqlite3_column_int64(s, 7);
	row->next_attempt = (time_t)sqlite3_column_int64(s, 8);
	row->attempts = sqlite3_column_int(s, 9);
	row->message_id = column_dup(s, 10);
	row->detail = column_dup(s, 11);
}

bool state_delivery_get(struct state *st, const char *key, struct delivery_row *row)
{
	sqlite3_stmt *s = st_query(st, Q_GET);
	bool found = false;
	int rc;

	memset(row, 0, sizeof(*row));
	if (!s)
		return false;
	bind_text(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		row_fill(s, row);
		found = true;
	} else if (rc != SQLITE_DONE) {
		st_log(st, "reading a delivery");
	}
	sqlite3_reset(s);
	return found;
}

void state_row_free(struct delivery_row *row)
{
	if (!row)
		return;
	free(row->key);
	free(row->message);
	free(row->email);
	free(row->target);
	free(row->rule);
	free(row->message_id);
	free(row->detail);
	memset(row, 0, sizeof(*row));
}

/* Binds key, message, email, target, rule and due as ?1..?6. */
static void bind_row(sqlite3_stmt *s, const struct delivery_row *row)
{
	bind_text(s, 1, row->key);
	bind_text(s, 2, row->message);
	bind_text(s, 3, row->email);
	bind_text(s, 4, row->target);
	bind_text(s, 5, row->rule);
	bind_time(s, 6, row->due);
}

bool state_delivery_claim(struct state *st, const struct delivery_row *row, time_t now,
			      int stale_after)
{
	sqlite3_stmt *s = st_query(st, Q_CLAIM);

	if (!s || st->readonly || !row->key)
		return false;
	bind_row(s, row);
	bind_time(s, 7, now);
	bind_text(s, 8, row->message_id);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)getpid());
	sqlite3_bind_int64(s, 10, stale_after);
	bind_text(s, 11, row->obligation);
	if (!st_run(st, s, "claiming a delivery"))
		return false;
	return sqlite3_changes(st->db) == 1;
}

void state_delivery_mark(struct state *st, const char *key, enum dstate s, const char *detail,
			     time_t next_attempt, time_t now)
{
	sqlite3_stmt *q = st_query(st, Q_MARK);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	sqlite3_bind_int(q, 2, (int)s);
	bind_text(q, 3, detail);
	bind_time(q, 4, next_attempt);
	bind_time(q, 5, now);
	if (st_run(st, q, "recording a delivery's outcome") && sqlite3_changes(st->db) == 0)
		log_error("%s: recording a delivery's outcome: no delivery %s", st->path, key);
}

void state_delivery_skip(struct state *st, const struct delivery_row *row, const char *reason,
			     time_t now)
{
	sqlite3_stmt *s = st_query(st, Q_SKIP);

	if (!s || st->readonly || !row->key)
		return;
	bind_row(s, row);
	bind_time(s, 7, now);
	bind_text(s, 8, row->message_id);
	bind_text(s, 9, reason);
	bind_text(s, 10, row->obligation);
	st_run(st, s, "recording a skipped delivery");
}

void state_delivery_each(struct state *st, int s, void (*fn)(const struct delivery_row *, void *),
			     void *arg)
{
	/* Its own statement: fn may call back into the state. */
	sqlite3_stmt *q;
	struct delivery_row row;
	int rc;

	enum query which = s < 0 ? Q_EACH
			 : s == DS_SENT || s == DS_SKIPPED ? Q_EACH_DONE : Q_EACH_STATE;
	const char *sql = query_sql[which];

	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
		st_log(st, "listing deliveries");
		return;
	}
	if (s >= 0)
		sqlite3_bind_int(q, 1, s);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row_fill(q, &row);
		fn(&row, arg);
		state_row_free(&row);
	}
	if (rc != SQLITE_DONE)
		st_log(st, "listing deliveries");
	sqlite3_finalize(q);
}

void state_delivery_counts(struct state *st, long counts[6])
{
	sqlite3_stmt *s = st_query(st, Q_COUNTS);
	int rc;

	memset(counts, 0, 6 * sizeof(*counts));
	if (!s)
		return;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int i = sqlite3_column_int(s, 0);
		if (i >= 0 && i < 6)
			counts[i] = (long)sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_DONE)
		st_log(st, "counting deliveries");
	sqlite3_reset(s);
}

long state_retry_failed(struct state *st, time_t now)
{
	sqlite3_stmt *s = st_query(st, Q_RETRY);

	if (!s || st->readonly)
		return 0;
	bind_time(s, 1, now);
	if (!st_run(st, s, "queueing failed deliveries again"))
		return 0;
	return (long)sqlite3_changes(st->db);
}

void state_delivery_release(struct state *st, const char *key, const char *why, time_t next_attempt,
			    time_t now, bool for_relay)
{
	sqlite3_stmt *q = st_query(st, Q_RELEASE);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	bind_text(q, 2, why);
	bind_time(q, 3, next_attempt);
	bind_time(q, 4, now);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)getpid()); /* not one another kallad took over */
	sqlite3_bind_int(q, 6, for_relay);
	st_run(st, q, "releasing a claim");
}

int state_delivery_renew(struct state *st, const char *key, time_t now)
{
	sqlite3_stmt *q = st_query(st, Q_RENEW);

	if (!q || st->readonly)
		return -1;
	bind_text(q, 1, key);
	bind_time(q, 2, now);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)getpid());
	if (!st_run(st, q, "renewing a claim"))
		return -1;
	return sqlite3_changes(st->db) == 1;
}

bool state_is_released(struct state *st, const char *key)
{
	sqlite3_stmt *q = st_query(st, Q_RELEASED_GET);
	bool found;

	if (!q)
		return false;
	bind_text(q, 1, key);
	found = sqlite3_step(q) == SQLITE_ROW;
	sqlite3_reset(q);
	return found;
}

void state_release_notice(struct state *st, const char *key)
{
	sqlite3_stmt *q = st_query(st, Q_RELEASED_PUT);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	st_run(st, q, "recording a released change notice");
}

static bool hold_removal(struct state *st, const char *email)
{
	sqlite3_stmt *q = st_query(st, Q_HELD_REMOVAL_PUT);

	if (!q)
		return false;
	bind_text(q, 1, email);
	return st_run(st, q, "recording a removal held");
}

bool *state_hold_removals(struct state *st, char *const *gone, size_t n, bool mass,
			  char *const *unsure, size_t n_unsure, bool release_all)
{
	bool *held = xcalloc(n ? n : 1, sizeof(*held));
	bool *kept = xcalloc(n_unsure ? n_unsure : 1, sizeof(*kept));
	/* All or nothing, in one transaction (the caller's, if open): no
	 * other kallad reads the set half written, and a crash or a failed
	 * write keeps the old one. */
	bool own = sqlite3_get_autocommit(st->db);
	bool ok = (!own || state_begin_light(st)) &&
		  (st->readonly || st_exec(st, "SAVEPOINT held_removals", NULL));
	sqlite3_stmt *q;

	/* Not read (the ledger locked): every one held, for this pass. */
	for (size_t i = 0; i < n; i++)
		held[i] = mass || !ok || st_one_row(st, Q_HELD_REMOVAL_GET, gone[i], NULL);
	for (size_t i = 0; i < n_unsure; i++)
		kept[i] = ok && st_one_row(st, Q_HELD_REMOVAL_GET, unsure[i], NULL);
	if (ok && !st->readonly) {
		bool wrote = (q = st_query(st, Q_HELD_REMOVALS_CLEAR)) &&
			     st_run(st, q, "forgetting the removals held");

		for (size_t i = 0; wrote && !release_all && i < n; i++)
			wrote = !held[i] || hold_removal(st, gone[i]);
		for (size_t i = 0; wrote && !release_all && i < n_unsure; i++)
			wrote = !kept[i] || hold_removal(st, unsure[i]);
		if (!wrote)
			st_exec(st, "ROLLBACK TO held_removals", NULL);
		st_exec(st, "RELEASE held_removals", NULL);
	}
	if (own && ok && !state_commit(st))
		st_log(st, "keeping the removals held");
	free(kept);
	return held;
}

long state_recover_orphans(struct state *st, time_t now, int stale_after)
{
	sqlite3_stmt *q = st_query(st, Q_ORPHANS);

	if (!q || st->readonly)
		return 0;
	bind_time(q, 1, now);
	sqlite3_bind_int64(q, 2, stale_after);
	if (!st_run(st, q, "recovering claims of stopped processes"))
		return 0;
	return (long)sqlite3_changes(st->db);
}

void state_delivery_forget(struct state *st, const char *key)
{
	sqlite3_stmt *q = st_query(st, Q_DELETE);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	st_run(st, q, "forgetting a delivery");
}

bool state_fulfilled(struct state *st, const char *oid)
{
	return st_one_row(st, Q_FULFILLED, oid, NULL);
}

void state_delivery_unlink(struct state *st, const char *key)
{
	sqlite3_stmt *s = st_query(st, Q_UNLINK);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, key);
	st_run(st, s, "detaching a delivery from its obligation");
}
