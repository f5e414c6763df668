/* state.c: kallad's own database (SPEC §1.4, §3).
 *
 * SQLite in WAL mode. Explicit transactions (the batched claims made
 * before sending) commit with synchronous=FULL: a claim must be on disk
 * before its message leaves. Outcomes (several to a transaction) commit
 * with synchronous=NORMAL: in WAL mode that survives any crash of kallad, and
 * the next FULL commit, one per batch of claims, makes them durable
 * against power loss too. One fsync per batch instead of one per message
 * keeps the ledger from capping the sending rate; a power cut repeats at
 * most the messages since that fsync, with their same Message-IDs. The ledger
 * is shared by the daemon and manual sends, so every claim is a single
 * conditional statement that SQLite serialises across processes. Errors
 * are logged and answered with the safe value (nothing claimed, nothing
 * known) rather than a crash. */
#include "state_internal.h"

#include "log.h"
#include "scratch.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long to wait for another kallad process holding the database. */
static const int state_busy_timeout_ms = 10000;

/* Migrations, in order: step i takes the schema from version i to i + 1.
 * Never edit a shipped step; append a new one. */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE known(kind TEXT NOT NULL, id TEXT NOT NULL, first_seen INTEGER NOT NULL,"
	" PRIMARY KEY(kind, id));"
	"CREATE TABLE sessions(uid TEXT PRIMARY KEY, sequence INTEGER NOT NULL DEFAULT 0,"
	" start TEXT, \"end\" TEXT, location TEXT, status TEXT, summary TEXT, description TEXT);"
	"CREATE TABLE participants_seen(email TEXT PRIMARY KEY COLLATE NOCASE, status TEXT,"
	" updated_at INTEGER);"
	"CREATE TABLE deliveries(key TEXT PRIMARY KEY, message TEXT NOT NULL, email TEXT NOT NULL,"
	" target TEXT, rule TEXT, state INTEGER NOT NULL, due INTEGER, updated INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
	" message_id TEXT, detail TEXT, owner_pid INTEGER);"
	"CREATE INDEX deliveries_state ON deliveries(state, updated);",
	/* 2: what each participant's calendar holds of each session */
	"CREATE TABLE attendance(email TEXT NOT NULL COLLATE NOCASE, uid TEXT NOT NULL,"
	" invited INTEGER NOT NULL, sequence INTEGER NOT NULL, content INTEGER NOT NULL,"
	" PRIMARY KEY(email, uid));",
	/* 3: change notices an administrator released from changes = hold */
	"CREATE TABLE released(key TEXT PRIMARY KEY);",
	/* 4: the state a claim took a row from, so an unattempted release
	 * gives back "unknown" where the server may already have it */
	"ALTER TABLE deliveries ADD COLUMN prior INTEGER;",
	/* 5: one model of what is owed. When each obligation became owed;
	 * which obligation each delivery met; how often each deadline moved
	 * (its reminders' SEQUENCE). An installation that already ran keeps
	 * its old answer ("known" rows) for the obligations of its first pass. */
	"CREATE TABLE owed(oid TEXT PRIMARY KEY, email TEXT NOT NULL COLLATE NOCASE,"
	" since INTEGER NOT NULL);"
	"CREATE INDEX owed_email ON owed(email);"
	"ALTER TABLE deliveries ADD COLUMN obligation TEXT;"
	"CREATE INDEX deliveries_obligation ON deliveries(obligation)"
	" WHERE obligation IS NOT NULL;"
	"CREATE TABLE deadlines(uid TEXT PRIMARY KEY, due INTEGER NOT NULL,"
	" revision INTEGER NOT NULL);"
	"CREATE TABLE legacy_known(pending INTEGER);"
	"INSERT INTO legacy_known SELECT 1 WHERE EXISTS (SELECT 1 FROM known);",
	/* 6: change notices to trust. Which calendar file the stored session
	 * copies came from (one writer of session state), and the last known
	 * copy of each participant kallad invited, for the cancel a deleted
	 * row brings. */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"ALTER TABLE participants_seen ADD COLUMN name TEXT;"
	"ALTER TABLE participants_seen ADD COLUMN language TEXT;"
	"ALTER TABLE participants_seen ADD COLUMN organisation TEXT;"
	"ALTER TABLE participants_seen ADD COLUMN role TEXT;",
	/* 7: each SEQUENCE's copy of a session, so an update can say what
	 * the participant's calendar held before (seeded with today's) */
	"CREATE TABLE session_versions(uid TEXT NOT NULL, sequence INTEGER NOT NULL,"
	" start INTEGER, \"end\" INTEGER, location TEXT, status TEXT, summary TEXT,"
	" description TEXT, PRIMARY KEY(uid, sequence));"
	"INSERT OR IGNORE INTO session_versions SELECT uid, sequence, start, \"end\", location,"
	" status, summary, description FROM sessions WHERE start IS NOT NULL;",
	/* 8: what comes back (replies.h). The latest reply of each
	 * participant to each session; every reply, bounce and ignored
	 * message read, for --history; addresses that bounced; and how far
	 * each mailbox was read (by UIDVALIDITY and UID). */
	"CREATE TABLE responses(email TEXT NOT NULL COLLATE NOCASE, uid TEXT NOT NULL,"
	" partstat TEXT NOT NULL, dtstamp INTEGER NOT NULL, sequence INTEGER NOT NULL,"
	" received INTEGER NOT NULL, PRIMARY KEY(email, uid));"
	"CREATE TABLE inbound(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,"
	" email TEXT COLLATE NOCASE, uid TEXT, what TEXT, detail TEXT, message_id TEXT,"
	" mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL, imap_uid INTEGER NOT NULL);"
	"CREATE INDEX inbound_email ON inbound(email, at);"
	"CREATE TABLE suppressed(email TEXT PRIMARY KEY COLLATE NOCASE, since INTEGER NOT NULL,"
	" status TEXT NOT NULL, diagnostic TEXT);"
	"CREATE TABLE mailboxes(url TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL,"
	" last_uid INTEGER NOT NULL);",
	/* 9: the relay's suspension after a fault of the relay as a whole,
	 * shared by every kallad on this ledger (one row, or none) */
	"CREATE TABLE relay(id INTEGER PRIMARY KEY CHECK(id = 1), fault TEXT NOT NULL,"
	" kind INTEGER NOT NULL, faults INTEGER NOT NULL, since INTEGER NOT NULL,"
	" until INTEGER NOT NULL);",
	/* 10: whole last good copies, for a fresh start that finds a session
	 * or deadline unreadable: a session's categories (which rules match
	 * it), a deadline's title, text, categories and whether it is a whole
	 * day. A deadline row without a summary is no copy yet. */
	"ALTER TABLE sessions ADD COLUMN categories TEXT;"
	"ALTER TABLE deadlines ADD COLUMN summary TEXT;"
	"ALTER TABLE deadlines ADD COLUMN description TEXT;"
	"ALTER TABLE deadlines ADD COLUMN categories TEXT;"
	"ALTER TABLE deadlines ADD COLUMN date_only INTEGER;",
	/* 11: fewer pages written for each outcome recorded (its commit
	 * writes every page it touched to the log, before the next message
	 * on that connection may start). What each participant's calendar
	 * holds, and the copies of participants, kept in their primary keys'
	 * order alone (WITHOUT ROWID): a row is one B-tree's page, not a
	 * table's and its key index's. The index by state leaves out what
	 * was sent or skipped (most rows, and the state an outcome moves a
	 * row to): a query by state names the condition, "state NOT IN (1,
	 * 5)", for SQLite to use the index (STATE_INDEXED, which must stay
	 * these words: this step is written out, as shipped). A copy without
	 * an address could never be found: not kept. */
	"CREATE TABLE attendance_11(email TEXT NOT NULL COLLATE NOCASE, uid TEXT NOT NULL,"
	" invited INTEGER NOT NULL, sequence INTEGER NOT NULL, content INTEGER NOT NULL,"
	" PRIMARY KEY(email, uid)) WITHOUT ROWID;"
	"INSERT INTO attendance_11 SELECT email, uid, invited, sequence, content FROM attendance;"
	"DROP TABLE attendance;"
	"ALTER TABLE attendance_11 RENAME TO attendance;"
	"CREATE TABLE participants_seen_11(email TEXT PRIMARY KEY COLLATE NOCASE, status TEXT,"
	" updated_at INTEGER, name TEXT, language TEXT, organisation TEXT, role TEXT)"
	" WITHOUT ROWID;"
	"INSERT INTO participants_seen_11 SELECT email, status, updated_at, name, language,"
	" organisation, role FROM participants_seen WHERE email IS NOT NULL;"
	"DROP TABLE participants_seen;"
	"ALTER TABLE participants_seen_11 RENAME TO participants_seen;"
	"DROP INDEX deliveries_state;"
	"CREATE INDEX deliveries_state ON deliveries(state, updated) WHERE state NOT IN (1, 5);",
	/* 12: the deliveries that went back, unattempted, while the relay
	 * was suspended: they wait for the relay, not for a retry of their
	 * own, and go as soon as its suspension ends (state_relay_clear),
	 * however it ends (an administrator's fix or a message that went). */
	"ALTER TABLE deliveries ADD COLUMN waits_relay INTEGER;"
	"CREATE INDEX deliveries_waits_relay ON deliveries(waits_relay)"
	" WHERE waits_relay IS NOT NULL;"
	/* (What went back under schema 11 says so in its words; an unknown
	 * outcome kept its own, and waits for its time.) */
	"UPDATE deliveries SET waits_relay = 1 WHERE state = 3"
	" AND detail LIKE 'not attempted: the relay is %';",
	/* 13: the participants whose removal the guard against mass
	 * vanishing holds, held each until released, discarded or back: a
	 * few of them coming back, or new registrations raising the number
	 * a mass vanishing is measured by, lets none of the others go. (A
	 * removal held under schema 12 is found held again at the next pass.) */
	"CREATE TABLE held_removals(email TEXT PRIMARY KEY COLLATE NOCASE) WITHOUT ROWID;",
};



/* Whether a claim takes the row as it is (now NOW, stale after
 * STALE): a retry that is due, or a claim of a kallad that died or went
 * stale. Q_CLAIM's condition and Q_CLAIMABLE's question. */
#define CLAIM_TAKES(NOW, STALE)                                                          \
	"(deliveries.state IN (2, 3) AND deliveries.next_attempt <= " NOW ")"            \
	" OR (deliveries.state = 0 AND (deliveries.updated < " NOW " - " STALE           \
	"     OR kallad_pid_gone(deliveries.owner_pid)))"

const char *const query_sql[Q_N] = {
	[Q_KNOWN_GET] = "SELECT first_seen FROM known WHERE kind = ?1 AND id = ?2",
	[Q_KNOWN_PUT] = "INSERT OR IGNORE INTO known(kind, id, first_seen) VALUES(?1, ?2, ?3)",
	[Q_GET] = "SELECT " ROW_COLUMNS " FROM deliveries WHERE key = ?1",
	/* The claim: one statement, so SQLite's write lock makes it atomic
	 * across processes; sqlite3_changes() says whether it took. An
	 * existing row keeps its Message-ID so a resend is recognisable. */
	[Q_CLAIM] = "INSERT INTO deliveries(key, message, email, target, rule, state, due,"
		    " updated, next_attempt, attempts, message_id, detail, owner_pid, obligation)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, 0, 0, ?8, NULL, ?9, ?11)"
		    " ON CONFLICT(key) DO UPDATE SET state = 0, updated = excluded.updated,"
		    " owner_pid = excluded.owner_pid, waits_relay = NULL,"
		    /* A claim taken from a kallad that died: it may have gone. */
		    " prior = CASE WHEN deliveries.state = 0 THEN 2 ELSE deliveries.state END,"
		    " message_id = coalesce(deliveries.message_id, excluded.message_id)"
		    " WHERE " CLAIM_TAKES("?7", "?10"),
	/* A send's outcome (leaving CLAIMED) counts as an attempt. A retry
	 * of one whose outcome is unknown that meets a 4xx stays unknown: the
	 * refusal says nothing of the first attempt, which may have arrived. */
	[Q_MARK] = "UPDATE deliveries SET attempts = attempts +"
		   " (state = 0 AND ?2 IN (1, 2, 3, 4)),"
		   " state = CASE WHEN ?2 = 3 AND state = 0 AND prior = 2 THEN 2 ELSE ?2 END,"
		   " detail = ?3,"
		   " next_attempt = ?4, updated = ?5, owner_pid = NULL, waits_relay = NULL"
		   " WHERE key = ?1",
	/* Claimed, never attempted: back to the queue without counting. */
	[Q_RELEASE] = "UPDATE deliveries SET state = CASE WHEN prior = 2 THEN 2 ELSE 3 END,"
		      " detail = coalesce(CASE WHEN prior = 2 THEN detail END, ?2),"
		      " updated = ?4, owner_pid = NULL,"
		      /* For the relay (?6), while it is suspended in the ledger:
		       * it waits for the relay. If another kallad ended the
		       * suspension since this one saw it, it is due at once. */
		      " next_attempt = CASE WHEN ?6 AND NOT EXISTS (SELECT 1 FROM relay) THEN ?4"
		      "  ELSE ?3 END,"
		      " waits_relay = CASE WHEN ?6 AND EXISTS (SELECT 1 FROM relay) THEN 1 END"
		      " WHERE key = ?1 AND state = 0 AND owner_pid = ?5",
	/* A claim of this process that is still its own, renewed. */
	[Q_RENEW] = "UPDATE deliveries SET updated = ?2 WHERE key = ?1 AND state = 0"
		    " AND owner_pid = ?3",
	/* Claims of processes that are gone: the server may have those. */
	[Q_ORPHANS] = "UPDATE deliveries SET state = 2, next_attempt = ?1, owner_pid = NULL,"
		      " detail = coalesce(detail, 'claimed by a kallad that stopped: may have gone')"
		      " WHERE state = 0 AND " STATE_INDEXED
		      " AND (kallad_pid_gone(owner_pid) OR updated < ?1 - ?2)",
	[Q_DELETE] = "DELETE FROM deliveries WHERE key = ?1",
	[Q_RELEASED_GET] = "SELECT 1 FROM released WHERE key = ?1",
	[Q_RELEASED_PUT] = "INSERT OR IGNORE INTO released(key) VALUES(?1)",
	[Q_HELD_REMOVAL_GET] = "SELECT 1 FROM held_removals WHERE email = ?1",
	[Q_HELD_REMOVAL_PUT] = "INSERT OR IGNORE INTO held_removals(email) VALUES(?1)",
	[Q_HELD_REMOVALS_CLEAR] = "DELETE FROM held_removals",
	[Q_SKIP] = "INSERT INTO deliveries(key, message, email, target, rule, state, due, updated,"
		   " next_attempt, attempts, message_id, detail, obligation)"
		   " VALUES(?1, ?2, ?3, ?4, ?5, 5, ?6, ?7, 0, 0, ?8, ?9, ?10)"
		   " ON CONFLICT(key) DO NOTHING",
	[Q_EACH] = "SELECT " ROW_COLUMNS " FROM deliveries ORDER BY updated, rowid",
	/* One state: the index by state gives the rows in order, so a wake
	 * that asks for its few retries does not read the whole ledger. */
	[Q_EACH_STATE] = "SELECT " ROW_COLUMNS " FROM deliveries WHERE state = ?1 AND "
			 STATE_INDEXED " ORDER BY updated, rowid",
	/* Sent or skipped: not in that index. */
	[Q_EACH_DONE] = "SELECT " ROW_COLUMNS " FROM deliveries WHERE state = ?1"
			" ORDER BY updated, rowid",
	[Q_COUNTS] = "SELECT state, count(*) FROM deliveries GROUP BY state",
	[Q_COPY_GET] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
		       " description, categories FROM sessions WHERE uid = ?1 AND start IS NOT NULL",
	[Q_COPY_PUT] = "INSERT INTO sessions(uid, sequence, start, \"end\", location, status,"
		       " summary, description, categories) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		       " ON CONFLICT(uid) DO UPDATE SET sequence = excluded.sequence,"
		       " start = excluded.start, \"end\" = excluded.\"end\","
		       " location = excluded.location, status = excluded.status,"
		       " summary = excluded.summary, description = excluded.description,"
		       " categories = excluded.categories",
	[Q_COPY_EACH] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
			" description, categories FROM sessions WHERE start IS NOT NULL"
			" ORDER BY start, uid",
	[Q_ATT_GET] = "SELECT invited, sequence, content FROM attendance"
		      " WHERE email = ?1 AND uid = ?2",
	[Q_ATT_PUT] = "INSERT INTO attendance(email, uid, invited, sequence, content)"
		      " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(email, uid) DO UPDATE SET"
		      /* What a calendar holds only moves forward: a message with a
		       * lower SEQUENCE than the last one changes nothing there. */
		      " invited = CASE WHEN excluded.sequence >= attendance.sequence"
		      "   THEN excluded.invited ELSE attendance.invited END,"
		      " sequence = max(attendance.sequence, excluded.sequence),"
		      " content = max(attendance.content, excluded.content)",
	[Q_NOTICE_PENDING] = "SELECT 1 FROM deliveries WHERE state = 2 AND " STATE_INDEXED
			     " AND email = ?1 AND target = ?2 AND rule = '-' LIMIT 1",
	/* A notice that may or may not have arrived: the calendar holds the
	 * session, or held it, at a version not known (content -1); unless a
	 * later message (a higher SEQUENCE, which calendars keep) went since. */
	[Q_ATT_UNKNOWN] = "INSERT INTO attendance(email, uid, invited, sequence, content)"
			  " VALUES(?1, ?2, 1, ?3, -1) ON CONFLICT(email, uid) DO UPDATE SET"
			  " invited = 1, sequence = excluded.sequence, content = -1"
			  " WHERE excluded.sequence >= attendance.sequence",
	[Q_VERSION_PUT] = "INSERT INTO session_versions(uid, sequence, start, \"end\", location,"
			  " status, summary, description) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
			  " ON CONFLICT(uid, sequence) DO UPDATE SET start = excluded.start,"
			  " \"end\" = excluded.\"end\", location = excluded.location,"
			  " status = excluded.status, summary = excluded.summary,"
			  " description = excluded.description",
	/* The newest copy at or below SEQUENCE ?2. */
	[Q_VERSION_AT] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
			 " description, NULL FROM session_versions WHERE uid = ?1 AND sequence <= ?2"
			 " ORDER BY sequence DESC LIMIT 1",
	[Q_RELAY_GET] = "SELECT fault, kind, faults, since, until FROM relay WHERE id = 1",
	[Q_RELAY_PUT] = "INSERT OR REPLACE INTO relay(id, fault, kind, faults, since, until)"
			" VALUES(1, ?1, ?2, ?3, ?4, ?5)",
	[Q_RELAY_CLEAR] = "DELETE FROM relay",
	/* What waited for the relay is due once its suspension ends. */
	[Q_RELAY_WAITING] = "UPDATE deliveries SET next_attempt = min(next_attempt, ?1), waits_relay = NULL"
			    " WHERE waits_relay IS NOT NULL AND state IN (2, 3)",
	[Q_RETRY] = "UPDATE deliveries SET state = 3, next_attempt = ?1, updated = ?1"
		    " WHERE state = 4 AND " STATE_INDEXED,
	[Q_OWED_GET] = "SELECT since FROM owed WHERE oid = ?1",
	[Q_OWED_PUT] = "INSERT OR IGNORE INTO owed(oid, email, since) VALUES(?1, ?2, ?3)",
	[Q_OWED_EACH] = "SELECT oid FROM owed WHERE email = ?1",
	[Q_OWED_DEL] = "DELETE FROM owed WHERE email = ?1 AND oid = ?2",
	/* Met: sent, failed for good or skipped. An unknown outcome or a
	 * retry is still the same key's to finish. */
	[Q_FULFILLED] = "SELECT 1 FROM deliveries WHERE obligation = ?1 AND state IN (1, 4, 5)"
			" LIMIT 1",
	[Q_DL_GET] = "SELECT due, revision FROM deadlines WHERE uid = ?1",
	[Q_DL_PUT] = "INSERT INTO deadlines(uid, due, revision) VALUES(?1, ?2, ?3)"
		     " ON CONFLICT(uid) DO UPDATE SET due = excluded.due, revision = excluded.revision",
	[Q_DL_COPY_GET] = "SELECT uid, due, revision, summary, description, categories, date_only"
			  " FROM deadlines WHERE uid = ?1 AND summary IS NOT NULL",
	/* Written only when it differs: every pass stores what it read. */
	[Q_DL_COPY_PUT] = "UPDATE deadlines SET summary = ?2, description = ?3, categories = ?4,"
			  " date_only = ?5 WHERE uid = ?1 AND (summary IS NOT ?2"
			  " OR description IS NOT ?3 OR categories IS NOT ?4 OR date_only IS NOT ?5)",
	[Q_KNOWN_EACH] = "SELECT id FROM known WHERE kind = ?1",
	[Q_KNOWN_DEL] = "DELETE FROM known WHERE kind = ?1 AND id = ?2",
	[Q_LEGACY] = "SELECT 1 FROM legacy_known LIMIT 1",
	[Q_OWED_COUNT] = "SELECT count(*) FROM owed WHERE email = ?1",
	[Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	/* Anything that left, or may have: claimed, sent, unknown, refused. */
	[Q_ANY_SENT] = "SELECT 1 FROM deliveries WHERE state IN (0, 1, 2, 3, 4) LIMIT 1",
	[Q_OWED_FORGET] = "DELETE FROM owed WHERE email = ?1",
	/* Once per participant gone from the registrations: prepared once. */
	[Q_HOLDS_SESSIONS] = "SELECT 1 FROM attendance WHERE email = ?1 AND invited = 1 LIMIT 1",
	[Q_WAS_INVITED] = "SELECT 1 FROM attendance WHERE email = ?1 LIMIT 1",
	[Q_TX_READ] = "BEGIN",
	[Q_TX_WRITE] = "BEGIN IMMEDIATE",
	[Q_TX_COMMIT] = "COMMIT",
	[Q_META_PUT] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
		       " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	/* A claim whose attempt before may have arrived (its outcome
	 * unknown), asked before the claim's outcome is marked. */
	[Q_PRIOR_UNKNOWN] = "SELECT 1 FROM deliveries WHERE key = ?1 AND state = 0 AND prior = 2",
	/* Whether Q_CLAIM would take key now (no row: it would). */
	[Q_CLAIMABLE] = "SELECT " CLAIM_TAKES("?2", "?3") " FROM deliveries WHERE key = ?1",
	/* Only if none is there: the first of two processes wins. */
	[Q_META_ADD] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO NOTHING",
	[Q_PSEEN_GET] = "SELECT email, name, language, organisation, role, updated_at, status"
			" FROM participants_seen WHERE email = ?1",
	[Q_PSEEN_PUT] = "INSERT INTO participants_seen(email, status, updated_at, name, language,"
			" organisation, role) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
			" ON CONFLICT(email) DO UPDATE SET status = excluded.status,"
			" updated_at = excluded.updated_at, name = excluded.name,"
			" language = excluded.language, organisation = excluded.organisation,"
			" role = excluded.role"
			" WHERE participants_seen.name IS NOT excluded.name"
			" OR participants_seen.language IS NOT excluded.language"
			" OR participants_seen.organisation IS NOT excluded.organisation"
			" OR participants_seen.role IS NOT excluded.role"
			" OR participants_seen.status IS NOT excluded.status",
	[Q_UNLINK] = "UPDATE deliveries SET obligation = NULL WHERE key = ?1",
};


static const char *const dstate_names[] = {"claimed",   "sent",   "unknown",
					       "transient", "failed", "skipped"};

const char *state_name(enum dstate s)
{
	return (unsigned)s < ARRAY_SIZE(dstate_names) ? dstate_names[s] : "?";
}

void st_log(struct state *st, const char *what)
{
	log_error("%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

/* The prepared statement for q, reset and unbound; NULL (logged) on error. */
sqlite3_stmt *st_query(struct state *st, enum query q)
{
	sqlite3_stmt **s = &st->stmts[q];

	if (!*s && sqlite3_prepare_v3(st->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, s,
	                              NULL) != SQLITE_OK) {
		st_log(st, "preparing a statement");
		*s = NULL;
		return NULL;
	}
	sqlite3_reset(*s);
	sqlite3_clear_bindings(*s);
	return *s;
}

/* Steps a statement that returns no rows; false (logged) on error. */
bool st_run(struct state *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;

	if (!ok)
		st_log(st, what);
	sqlite3_reset(s);
	return ok;
}

bool st_exec(struct state *st, const char *sql, struct errlist *errs)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return true;
	if (errs)
		errlist_add(errs, "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
	else
		log_error("%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
	sqlite3_free(msg);
	return false;
}

static int user_version(struct state *st)
{
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* One migration step in its own transaction. The version is read again
 * under the write lock: another process may have migrated meanwhile. */
static bool migrate_step(struct state *st, int to, struct errlist *errs)
{
	char *bump;
	bool ok;

	if (!st_exec(st, "BEGIN IMMEDIATE", errs))
		return false;
	if (user_version(st) >= to)
		return st_exec(st, "COMMIT", errs);
	bump = xasprintf("PRAGMA user_version = %d", to);
	ok = st_exec(st, migrations[to - 1], errs) && st_exec(st, bump, errs) && st_exec(st, "COMMIT", errs);
	free(bump);
	if (!ok) {
		errlist_add(errs, "%s: migrating the schema to version %d failed", st->path, to);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return ok;
}

static void sql_pid_gone(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* What the queries call besides SQL's own (every database a state uses:
 * the file, an empty one in memory, a migrated copy). */
static void add_functions(sqlite3 *db)
{
	sqlite3_create_function(db, "kallad_pid_gone", 1, SQLITE_UTF8, NULL, sql_pid_gone, NULL,
				NULL);
}

/* A read-only open of an older schema works on a copy, migrated there: a
 * private temporary file (scratch.h) with a bounded cache, so the first
 * --plan after an upgrade does not hold the whole ledger in memory. */
static bool copy_to_scratch(struct state *st, struct errlist *errs)
{
	sqlite3 *copy = scratch_open("for an older schema's copy", 8 * 1024, "");
	sqlite3_backup *b;
	bool ok = false;

	if (copy && (b = sqlite3_backup_init(copy, "main", st->db, "main"))) {
		ok = sqlite3_backup_step(b, -1) == SQLITE_DONE;
		ok = sqlite3_backup_finish(b) == SQLITE_OK && ok;
	}
	if (!ok) {
		errlist_add(errs, "%s: cannot copy an older schema to migrate it: %s", st->path,
			    copy ? sqlite3_errmsg(copy) : "no temporary database");
		sqlite3_close(copy);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(st->stmts); i++) {
		sqlite3_finalize(st->stmts[i]);
		st->stmts[i] = NULL;
	}
	sqlite3_close(st->db);
	st->db = copy;
	add_functions(copy);
	return true;
}

static bool migrate(struct state *st, struct errlist *errs)
{
	int latest = (int)ARRAY_SIZE(migrations), v = user_version(st);

	if (v < 0) {
		errlist_add(errs, "%s: %s", st->path, sqlite3_errmsg(st->db));
		return false;
	}
	if (v > latest) {
		errlist_add(errs, "%s: schema version %d is newer than this kallad knows (%d)",
		            st->path, v, latest);
		return false;
	}
	/* Read-only and older (an upgrade, before its first run): the reader
	 * works on a migrated copy and the file stays as it is. */
	if (v < latest && st->readonly && !copy_to_scratch(st, errs))
		return false;
	for (int to = v + 1; to <= latest; to++)
		if (!migrate_step(st, to, errs))
			return false;
	return true;
}

/* mkdir -p for the directory holding path, each new level 0750. */
static bool make_parent(const char *path, struct errlist *errs)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	bool ok = true;

	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; ok; p++) {
			if (*p != '/' && *p != '\0')
				continue;
			char c = *p;
			*p = '\0';
			if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
				errlist_add(errs, "%s: cannot create directory %s: %s", path, dir,
				            strerror(errno));
				ok = false;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(dir);
	return ok;
}

/* kallad_pid_gone(pid): true when the process that claimed a delivery no
 * longer exists (killed mid-send), so its claim can be taken over at once
 * instead of after the stale timeout. The state database is local, so its
 * pids are this host's. */
static void sql_pid_gone(sqlite3_context *ctx, int argc UNUSED, sqlite3_value **argv)
{
	pid_t pid;

	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_int(ctx, 1);
		return;
	}
	pid = (pid_t)sqlite3_value_int64(argv[0]);
	sqlite3_result_int(ctx, pid > 0 && kill(pid, 0) < 0 && errno == ESRCH);
}

/* WAL so readers (--plan, --status) never block the daemon; FULL so a
 * committed transaction survives a power cut. */
static bool configure(struct state *st, struct errlist *errs)
{
	sqlite3_stmt *s;
	bool wal = false;

	sqlite3_busy_timeout(st->db, state_busy_timeout_ms);
	if (st->readonly)
		return st_exec(st, "PRAGMA query_only = ON", errs);
	/* Switching to WAL needs the database to itself, and SQLite does not
	 * wait for that with the busy handler: two kallads creating the state
	 * at the same moment would see "locked". So wait here. */
	for (int waited = 0; !wal && waited < state_busy_timeout_ms; waited += 10) {
		int rc = SQLITE_ERROR;

		if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) ==
		    SQLITE_OK) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				wal = strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
			sqlite3_finalize(s);
		}
		if (wal || (rc != SQLITE_BUSY && rc != SQLITE_LOCKED))
			break;
		usleep(10 * 1000);
	}
	if (!wal) {
		errlist_add(errs, "%s: cannot switch to WAL mode: %s", st->path,
		            sqlite3_errmsg(st->db));
		return false;
	}
	return st_exec(st, "PRAGMA synchronous = NORMAL", errs);
}

struct state *state_open(const char *path, bool readonly, struct errlist *errs)
{
	struct state *st = xcalloc(1, sizeof(*st));
	struct stat sb;
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	const char *file = path;

	st->path = xstrdup(path);
	st->readonly = readonly;
	if (readonly && stat(path, &sb) < 0 && errno == ENOENT) {
		/* Nothing recorded yet: an empty state answers every question. */
		file = ":memory:";
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY;
		st->readonly = false;
	} else if (!readonly && !make_parent(path, errs)) {
		state_close(st);
		return NULL;
	}
	if (sqlite3_open_v2(file, &st->db, flags, NULL) != SQLITE_OK) {
		errlist_add(errs, "%s: cannot open the state database: %s", path,
		            st->db ? sqlite3_errmsg(st->db) : "out of memory");
		state_close(st);
		return NULL;
	}
	add_functions(st->db);
	if ((file == path && !configure(st, errs)) || !migrate(st, errs)) {
		state_close(st);
		return NULL;
	}
	return st;
}

void state_close(struct state *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(st->stmts[i]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_error("%s: closing: %s", st->path, sqlite3_errmsg(st->db));
	free(st->path);
	free(st);
}

struct sqlite3 *state_sqlite(struct state *st)
{
	return st->db;
}

const char *state_path(const struct state *st)
{
	return st->path;
}

int state_schema_version(struct state *st)
{
	return st ? user_version(st) : -1;
}

/* BEGIN, BEGIN IMMEDIATE or COMMIT, from a statement prepared once. */
static bool tx(struct state *st, enum query q)
{
	sqlite3_stmt *s = st_query(st, q);

	if (!s)
		return st_exec(st, query_sql[q], NULL);
	return st_run(st, s, q == Q_TX_COMMIT ? "committing" : "starting a transaction");
}

bool state_begin(struct state *st)
{
	if (!st->readonly && !st->full)
		st->full = st_exec(st, "PRAGMA synchronous = FULL", NULL);
	return tx(st, st->readonly ? Q_TX_READ : Q_TX_WRITE);
}

bool state_begin_light(struct state *st)
{
	return tx(st, st->readonly ? Q_TX_READ : Q_TX_WRITE);
}

bool state_begin_read(struct state *st)
{
	return tx(st, Q_TX_READ);
}

bool state_commit(struct state *st)
{
	bool ok = tx(st, Q_TX_COMMIT);

	/* A failed COMMIT (disk full, I/O error) leaves the transaction open
	 * and its lock held: give both up. */
	if (!ok && !sqlite3_get_autocommit(st->db))
		st_exec(st, "ROLLBACK", NULL);
	/* Back to NORMAL only after a FULL transaction: not a PRAGMA per
	 * outcome's commit. */
	if (!st->readonly && st->full)
		st->full = !st_exec(st, "PRAGMA synchronous = NORMAL", NULL);
	return ok;
}

void state_rollback(struct state *st)
{
	if (!sqlite3_get_autocommit(st->db))
		st_exec(st, "ROLLBACK", NULL);
	/* Back to NORMAL only after a FULL transaction: not a PRAGMA per
	 * outcome's commit. */
	if (!st->readonly && st->full)
		st->full = !st_exec(st, "PRAGMA synchronous = NORMAL", NULL);
}

/* Runs q with ?1 bound to arg (if not NULL); true if it gave a row, its
 * first column into *out (may be NULL). */
bool st_one_row(struct state *st, enum query q, const char *arg, long long *out)
{
	sqlite3_stmt *s = st_query(st, q);
	bool found;

	if (!s)
		return false;
	if (arg)
		bind_text(s, 1, arg);
	found = sqlite3_step(s) == SQLITE_ROW;
	if (found && out)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return found;
}
