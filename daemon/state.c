/* state.c: kallad's own database (SPEC §1.4, §3).
 *
 * SQLite in WAL mode. Explicit transactions (the batched claims made
 * before sending) commit with synchronous=FULL: a claim must be on disk
 * before its message leaves. Single statements (each outcome) commit with
 * synchronous=NORMAL: in WAL mode that survives any crash of kallad, and
 * the next FULL commit, one per batch of claims, makes them durable
 * against power loss too. One fsync per batch instead of one per message
 * keeps the ledger from capping the sending rate; a power cut repeats at
 * most the messages since that fsync, with their same Message-IDs. The ledger
 * is shared by the daemon and manual sends, so every claim is a single
 * conditional statement that SQLite serialises across processes. Errors
 * are logged and answered with the safe value (nothing claimed, nothing
 * known) rather than a crash. */
#include "state.h"

#include "log.h"

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
};

/* Every statement kallad runs, prepared once per handle. */
enum query {
	Q_KNOWN_GET,
	Q_KNOWN_PUT,
	Q_GET,
	Q_CLAIM,
	Q_MARK,
	Q_SKIP,
	Q_RELEASE,
	Q_ORPHANS,
	Q_DELETE,
	Q_RELEASED_GET,
	Q_RELEASED_PUT,
	Q_EACH,
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
	Q_KNOWN_EACH,
	Q_KNOWN_DEL,
	Q_LEGACY,
	Q_OWED_COUNT,
	Q_META_GET,
	Q_META_PUT,
	Q_PSEEN_GET,
	Q_PSEEN_PUT,
	Q_UNLINK,
	Q_VERSION_PUT,
	Q_VERSION_BEFORE,
	Q_RELAY_GET,
	Q_RELAY_PUT,
	Q_RELAY_CLEAR,
	Q_N
};

#define ROW_COLUMNS                                                                                \
	"key, message, email, target, rule, state, due, updated, next_attempt, attempts,"          \
	" message_id, detail"

static const char *const query_sql[Q_N] = {
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
		    " owner_pid = excluded.owner_pid, prior = deliveries.state,"
		    " message_id = coalesce(deliveries.message_id, excluded.message_id)"
		    " WHERE (deliveries.state IN (2, 3) AND deliveries.next_attempt <= ?7)"
		    " OR (deliveries.state = 0 AND (deliveries.updated < ?7 - ?10"
		    "     OR kallad_pid_gone(deliveries.owner_pid)))",
	/* A send's outcome (leaving CLAIMED) counts as an attempt. */
	[Q_MARK] = "UPDATE deliveries SET attempts = attempts +"
		   " (state = 0 AND ?2 IN (1, 2, 3, 4)), state = ?2, detail = ?3,"
		   " next_attempt = ?4, updated = ?5, owner_pid = NULL WHERE key = ?1",
	/* Claimed, never attempted: back to the queue without counting. */
	[Q_RELEASE] = "UPDATE deliveries SET state = CASE WHEN prior = 2 THEN 2 ELSE 3 END,"
		      " detail = coalesce(CASE WHEN prior = 2 THEN detail END, ?2),"
		      " next_attempt = ?3, updated = ?4, owner_pid = NULL WHERE key = ?1 AND state = 0",
	/* Claims of processes that are gone: the server may have those. */
	[Q_ORPHANS] = "UPDATE deliveries SET state = 2, next_attempt = ?1, owner_pid = NULL,"
		      " detail = coalesce(detail, 'claimed by a kallad that stopped: may have gone')"
		      " WHERE state = 0 AND (kallad_pid_gone(owner_pid) OR updated < ?1 - ?2)",
	[Q_DELETE] = "DELETE FROM deliveries WHERE key = ?1",
	[Q_RELEASED_GET] = "SELECT 1 FROM released WHERE key = ?1",
	[Q_RELEASED_PUT] = "INSERT OR IGNORE INTO released(key) VALUES(?1)",
	[Q_SKIP] = "INSERT INTO deliveries(key, message, email, target, rule, state, due, updated,"
		   " next_attempt, attempts, message_id, detail, obligation)"
		   " VALUES(?1, ?2, ?3, ?4, ?5, 5, ?6, ?7, 0, 0, ?8, ?9, ?10)"
		   " ON CONFLICT(key) DO NOTHING",
	[Q_EACH] = "SELECT " ROW_COLUMNS " FROM deliveries WHERE ?1 < 0 OR state = ?1"
		   " ORDER BY updated, rowid",
	[Q_COUNTS] = "SELECT state, count(*) FROM deliveries GROUP BY state",
	[Q_COPY_GET] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
		       " description FROM sessions WHERE uid = ?1 AND start IS NOT NULL",
	[Q_COPY_PUT] = "INSERT INTO sessions(uid, sequence, start, \"end\", location, status,"
		       " summary, description) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		       " ON CONFLICT(uid) DO UPDATE SET sequence = excluded.sequence,"
		       " start = excluded.start, \"end\" = excluded.\"end\","
		       " location = excluded.location, status = excluded.status,"
		       " summary = excluded.summary, description = excluded.description",
	[Q_COPY_EACH] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
			" description FROM sessions WHERE start IS NOT NULL ORDER BY start, uid",
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
	[Q_VERSION_PUT] = "INSERT INTO session_versions(uid, sequence, start, \"end\", location,"
			  " status, summary, description) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
			  " ON CONFLICT(uid, sequence) DO UPDATE SET start = excluded.start,"
			  " \"end\" = excluded.\"end\", location = excluded.location,"
			  " status = excluded.status, summary = excluded.summary,"
			  " description = excluded.description",
	/* The newest copy older than ?2 and no newer than ?3. */
	[Q_VERSION_BEFORE] = "SELECT uid, sequence, start, \"end\", location, status, summary,"
			     " description FROM session_versions WHERE uid = ?1 AND sequence < ?2"
			     " AND sequence <= ?3 ORDER BY sequence DESC LIMIT 1",
	[Q_RELAY_GET] = "SELECT fault, kind, faults, since, until FROM relay WHERE id = 1",
	[Q_RELAY_PUT] = "INSERT OR REPLACE INTO relay(id, fault, kind, faults, since, until)"
			" VALUES(1, ?1, ?2, ?3, ?4, ?5)",
	[Q_RELAY_CLEAR] = "DELETE FROM relay",
	[Q_RETRY] = "UPDATE deliveries SET state = 3, next_attempt = ?1, updated = ?1"
		    " WHERE state = 4",
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
	[Q_KNOWN_EACH] = "SELECT id FROM known WHERE kind = ?1",
	[Q_KNOWN_DEL] = "DELETE FROM known WHERE kind = ?1 AND id = ?2",
	[Q_LEGACY] = "SELECT 1 FROM legacy_known LIMIT 1",
	[Q_OWED_COUNT] = "SELECT count(*) FROM owed WHERE email = ?1",
	[Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[Q_META_PUT] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
		       " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
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

struct state {
	sqlite3 *db;
	char *path;
	bool readonly;
	sqlite3_stmt *stmts[Q_N];
};

static const char *const dstate_names[] = {"claimed",   "sent",   "unknown",
					       "transient", "failed", "skipped"};

const char *state_name(enum dstate s)
{
	return (unsigned)s < ARRAY_SIZE(dstate_names) ? dstate_names[s] : "?";
}

static void sql_log(struct state *st, const char *what)
{
	log_error("%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

/* The prepared statement for q, reset and unbound; NULL (logged) on error. */
static sqlite3_stmt *query(struct state *st, enum query q)
{
	sqlite3_stmt **s = &st->stmts[q];

	if (!*s && sqlite3_prepare_v3(st->db, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, s,
	                              NULL) != SQLITE_OK) {
		sql_log(st, "preparing a statement");
		*s = NULL;
		return NULL;
	}
	sqlite3_reset(*s);
	sqlite3_clear_bindings(*s);
	return *s;
}

/* Steps a statement that returns no rows; false (logged) on error. */
static bool run(struct state *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;

	if (!ok)
		sql_log(st, what);
	sqlite3_reset(s);
	return ok;
}

static bool exec(struct state *st, const char *sql, struct errlist *errs)
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

	if (!exec(st, "BEGIN IMMEDIATE", errs))
		return false;
	if (user_version(st) >= to)
		return exec(st, "COMMIT", errs);
	bump = xasprintf("PRAGMA user_version = %d", to);
	ok = exec(st, migrations[to - 1], errs) && exec(st, bump, errs) && exec(st, "COMMIT", errs);
	free(bump);
	if (!ok) {
		errlist_add(errs, "%s: migrating the schema to version %d failed", st->path, to);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return ok;
}

static void sql_pid_gone(sqlite3_context *ctx, int argc, sqlite3_value **argv);

static bool copy_to_memory(struct state *st, struct errlist *errs)
{
	sqlite3 *mem = NULL;
	sqlite3_backup *b;
	bool ok = false;

	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) ==
		SQLITE_OK && (b = sqlite3_backup_init(mem, "main", st->db, "main"))) {
		ok = sqlite3_backup_step(b, -1) == SQLITE_DONE;
		ok = sqlite3_backup_finish(b) == SQLITE_OK && ok;
	}
	if (!ok) {
		errlist_add(errs, "%s: cannot read an older schema into memory: %s", st->path,
			    sqlite3_errmsg(mem ? mem : st->db));
		sqlite3_close(mem);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(st->stmts); i++) {
		sqlite3_finalize(st->stmts[i]);
		st->stmts[i] = NULL;
	}
	sqlite3_close(st->db);
	st->db = mem;
	sqlite3_create_function(mem, "kallad_pid_gone", 1, SQLITE_UTF8, NULL, sql_pid_gone, NULL,
				NULL);
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
	 * works on a migrated copy in memory and the file stays as it is. */
	if (v < latest && st->readonly && !copy_to_memory(st, errs))
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
	sqlite3_create_function(st->db, "kallad_pid_gone", 1, SQLITE_UTF8, NULL, sql_pid_gone,
				NULL, NULL);
	if (st->readonly)
		return exec(st, "PRAGMA query_only = ON", errs);
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
	return exec(st, "PRAGMA synchronous = NORMAL", errs);
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

bool state_begin(struct state *st)
{
	if (!st->readonly)
		exec(st, "PRAGMA synchronous = FULL", NULL);
	return exec(st, st->readonly ? "BEGIN" : "BEGIN IMMEDIATE", NULL);
}

bool state_begin_light(struct state *st)
{
	return exec(st, st->readonly ? "BEGIN" : "BEGIN IMMEDIATE", NULL);
}

bool state_begin_read(struct state *st)
{
	return exec(st, "BEGIN", NULL);
}

bool state_commit(struct state *st)
{
	bool ok = exec(st, "COMMIT", NULL);

	/* A failed COMMIT (disk full, I/O error) leaves the transaction open
	 * and its lock held: give both up. */
	if (!ok && !sqlite3_get_autocommit(st->db))
		exec(st, "ROLLBACK", NULL);
	if (!st->readonly)
		exec(st, "PRAGMA synchronous = NORMAL", NULL);
	return ok;
}

void state_rollback(struct state *st)
{
	if (!sqlite3_get_autocommit(st->db))
		exec(st, "ROLLBACK", NULL);
	if (!st->readonly)
		exec(st, "PRAGMA synchronous = NORMAL", NULL);
}

/* Binds a time; 0 means "none" in the structs but is a real value here. */
static void bind_time(sqlite3_stmt *s, int i, time_t t)
{
	sqlite3_bind_int64(s, i, (sqlite3_int64)t);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

time_t state_known_since(struct state *st, const char *kind, const char *id, time_t now)
{
	sqlite3_stmt *s = query(st, Q_KNOWN_GET);
	time_t t = now;
	int rc;

	if (!s)
		return now;
	bind_text(s, 1, kind);
	bind_text(s, 2, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		t = (time_t)sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		sql_log(st, "reading when a thing was first known");
	sqlite3_reset(s);
	return t;
}

void state_note_known(struct state *st, const char *kind, const char *id, time_t now)
{
	sqlite3_stmt *s = query(st, Q_KNOWN_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, kind);
	bind_text(s, 2, id);
	bind_time(s, 3, now);
	run(st, s, "recording when a thing was first known");
}

static char *column_dup(sqlite3_stmt *s, int i)
{
	return xstrdup((const char *)sqlite3_column_text(s, i));
}

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
	sqlite3_stmt *s = query(st, Q_GET);
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
		sql_log(st, "reading a delivery");
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
	sqlite3_stmt *s = query(st, Q_CLAIM);

	if (!s || st->readonly || !row->key)
		return false;
	bind_row(s, row);
	bind_time(s, 7, now);
	bind_text(s, 8, row->message_id);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)getpid());
	sqlite3_bind_int64(s, 10, stale_after);
	bind_text(s, 11, row->obligation);
	if (!run(st, s, "claiming a delivery"))
		return false;
	return sqlite3_changes(st->db) == 1;
}

void state_delivery_mark(struct state *st, const char *key, enum dstate s, const char *detail,
			     time_t next_attempt, time_t now)
{
	sqlite3_stmt *q = query(st, Q_MARK);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	sqlite3_bind_int(q, 2, (int)s);
	bind_text(q, 3, detail);
	bind_time(q, 4, next_attempt);
	bind_time(q, 5, now);
	if (run(st, q, "recording a delivery's outcome") && sqlite3_changes(st->db) == 0)
		log_error("%s: recording a delivery's outcome: no delivery %s", st->path, key);
}

void state_delivery_skip(struct state *st, const struct delivery_row *row, const char *reason,
			     time_t now)
{
	sqlite3_stmt *s = query(st, Q_SKIP);

	if (!s || st->readonly || !row->key)
		return;
	bind_row(s, row);
	bind_time(s, 7, now);
	bind_text(s, 8, row->message_id);
	bind_text(s, 9, reason);
	bind_text(s, 10, row->obligation);
	run(st, s, "recording a skipped delivery");
}

void state_delivery_each(struct state *st, int s, void (*fn)(const struct delivery_row *, void *),
			     void *arg)
{
	/* Its own statement: fn may call back into the state. */
	sqlite3_stmt *q;
	struct delivery_row row;
	int rc;

	if (sqlite3_prepare_v2(st->db, query_sql[Q_EACH], -1, &q, NULL) != SQLITE_OK) {
		sql_log(st, "listing deliveries");
		return;
	}
	sqlite3_bind_int(q, 1, s);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row_fill(q, &row);
		fn(&row, arg);
		state_row_free(&row);
	}
	if (rc != SQLITE_DONE)
		sql_log(st, "listing deliveries");
	sqlite3_finalize(q);
}

void state_delivery_counts(struct state *st, long counts[6])
{
	sqlite3_stmt *s = query(st, Q_COUNTS);
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
		sql_log(st, "counting deliveries");
	sqlite3_reset(s);
}

long state_retry_failed(struct state *st, time_t now)
{
	sqlite3_stmt *s = query(st, Q_RETRY);

	if (!s || st->readonly)
		return 0;
	bind_time(s, 1, now);
	if (!run(st, s, "queueing failed deliveries again"))
		return 0;
	return (long)sqlite3_changes(st->db);
}

/* --- the last seen copy of each session, and what participants hold --- */

static void copy_from_row(sqlite3_stmt *s, struct session *out)
{
	const char *status = (const char *)sqlite3_column_text(s, 5);

	memset(out, 0, sizeof(*out));
	out->uid = column_dup(s, 0);
	out->sequence = sqlite3_column_int(s, 1);
	out->start = (time_t)sqlite3_column_int64(s, 2);
	out->end = (time_t)sqlite3_column_int64(s, 3);
	out->location = sqlite3_column_type(s, 4) == SQLITE_NULL ? NULL : column_dup(s, 4);
	out->cancelled = status && strcmp(status, "CANCELLED") == 0;
	out->summary = column_dup(s, 6);
	out->description = sqlite3_column_type(s, 7) == SQLITE_NULL ? NULL : column_dup(s, 7);
}

bool state_session_copy(struct state *st, const char *uid, struct session *out)
{
	sqlite3_stmt *s = query(st, Q_COPY_GET);
	bool found = false;
	int rc;

	if (!s)
		return false;
	bind_text(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_from_row(s, out);
		found = true;
	} else if (rc != SQLITE_DONE) {
		sql_log(st, "reading a session's last seen copy");
	}
	sqlite3_reset(s);
	return found;
}

void state_session_store(struct state *st, const struct session *ses, int sequence)
{
	sqlite3_stmt *s = query(st, Q_COPY_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, ses->uid);
	sqlite3_bind_int(s, 2, sequence);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)ses->start);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)ses->end);
	bind_text(s, 5, ses->location);
	bind_text(s, 6, ses->cancelled ? "CANCELLED" : "CONFIRMED");
	bind_text(s, 7, ses->summary);
	bind_text(s, 8, ses->description);
	if (!run(st, s, "storing a session's last seen copy"))
		return;
	if (!(s = query(st, Q_VERSION_PUT)))
		return;
	bind_text(s, 1, ses->uid);
	sqlite3_bind_int(s, 2, sequence);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)ses->start);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)ses->end);
	bind_text(s, 5, ses->location);
	bind_text(s, 6, ses->cancelled ? "CANCELLED" : "CONFIRMED");
	bind_text(s, 7, ses->summary);
	bind_text(s, 8, ses->description);
	run(st, s, "storing a session's copy for its SEQUENCE");
}

bool state_session_previous(struct state *st, const char *email, const struct session *now,
			    struct session *out)
{
	struct attendance a;
	sqlite3_stmt *s;
	bool found = false;
	int rc, held = now->sequence;

	memset(out, 0, sizeof(*out));
	/* What the participant's calendar holds, by what kallad sent them. */
	if (email && state_attendance(st, email, now->uid, &a) && a.content >= 0 &&
	    a.content < held)
		held = a.content;
	if (!(s = query(st, Q_VERSION_BEFORE)))
		return false;
	bind_text(s, 1, now->uid);
	sqlite3_bind_int(s, 2, now->sequence);
	sqlite3_bind_int(s, 3, held);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_from_row(s, out);
		found = true;
	} else if (rc != SQLITE_DONE) {
		sql_log(st, "reading a session's previous copy");
	}
	sqlite3_reset(s);
	return found;
}

void state_session_each(struct state *st, void (*fn)(const struct session *, void *), void *arg)
{
	sqlite3_stmt *s = query(st, Q_COPY_EACH);
	int rc;

	if (!s)
		return;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct session copy;
		copy_from_row(s, &copy);
		fn(&copy, arg);
		state_session_clear(&copy);
	}
	if (rc != SQLITE_DONE)
		sql_log(st, "listing the sessions kallad has seen");
	sqlite3_reset(s);
}

void state_session_clear(struct session *s)
{
	free(s->uid);
	free(s->summary);
	free(s->location);
	free(s->description);
	free(s->categories);
	memset(s, 0, sizeof(*s));
}

bool state_attendance(struct state *st, const char *email, const char *uid, struct attendance *out)
{
	sqlite3_stmt *s = query(st, Q_ATT_GET);
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->invited = sqlite3_column_int(s, 0) != 0;
		out->sequence = sqlite3_column_int(s, 1);
		out->content = sqlite3_column_int(s, 2);
		found = true;
	} else if (rc != SQLITE_DONE) {
		sql_log(st, "reading what a participant's calendar holds");
	}
	sqlite3_reset(s);
	return found;
}

void state_set_attendance(struct state *st, const char *email, const char *uid,
			  const struct attendance *a)
{
	sqlite3_stmt *s = query(st, Q_ATT_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	sqlite3_bind_int(s, 3, a->invited);
	sqlite3_bind_int(s, 4, a->sequence);
	sqlite3_bind_int(s, 5, a->content);
	run(st, s, "recording what a participant's calendar holds");
}

void state_delivery_release(struct state *st, const char *key, const char *why, time_t next_attempt,
			    time_t now)
{
	sqlite3_stmt *q = query(st, Q_RELEASE);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	bind_text(q, 2, why);
	bind_time(q, 3, next_attempt);
	bind_time(q, 4, now);
	run(st, q, "releasing a claim");
}

bool state_is_released(struct state *st, const char *key)
{
	sqlite3_stmt *q = query(st, Q_RELEASED_GET);
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
	sqlite3_stmt *q = query(st, Q_RELEASED_PUT);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	run(st, q, "recording a released change notice");
}

long state_recover_orphans(struct state *st, time_t now, int stale_after)
{
	sqlite3_stmt *q = query(st, Q_ORPHANS);

	if (!q || st->readonly)
		return 0;
	bind_time(q, 1, now);
	sqlite3_bind_int64(q, 2, stale_after);
	if (!run(st, q, "recovering claims of stopped processes"))
		return 0;
	return (long)sqlite3_changes(st->db);
}

void state_delivery_forget(struct state *st, const char *key)
{
	sqlite3_stmt *q = query(st, Q_DELETE);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, key);
	run(st, q, "forgetting a delivery");
}

/* Runs q with ?1 bound to arg (if not NULL); true if it gave a row, its
 * first column into *out (may be NULL). */
static bool one_row(struct state *st, enum query q, const char *arg, long long *out)
{
	sqlite3_stmt *s = query(st, q);
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

bool state_owed_since(struct state *st, const char *oid, time_t *since)
{
	long long v;

	if (!one_row(st, Q_OWED_GET, oid, &v))
		return false;
	*since = (time_t)v;
	return true;
}

void state_owed_put(struct state *st, const char *oid, const char *email, time_t since)
{
	sqlite3_stmt *s = query(st, Q_OWED_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, oid);
	bind_text(s, 2, email);
	bind_time(s, 3, since);
	run(st, s, "recording when a delivery became owed");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the rows that q lists for a whose id is not in keep[] (sorted
 * here), with del(a, id): for owed and known alike. */
static void prune(struct state *st, enum query q, enum query del, const char *a, char **keep,
		  size_t n)
{
	sqlite3_stmt *s = query(st, q);
	char **gone = NULL;
	size_t n_gone = 0, cap = 0;

	if (!s || st->readonly)
		return;
	qsort(keep, n, sizeof(*keep), cmp_str);
	bind_text(s, 1, a);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);

		if (id && !bsearch(&id, keep, n, sizeof(*keep), cmp_str)) {
			gone = xgrow(gone, &cap, n_gone, sizeof(*gone));
			gone[n_gone++] = xstrdup(id);
		}
	}
	sqlite3_reset(s);
	for (size_t i = 0; i < n_gone; i++) {
		sqlite3_stmt *d = query(st, del);

		if (d) {
			bind_text(d, 1, a);
			bind_text(d, 2, gone[i]);
			run(st, d, "forgetting what no longer holds");
		}
		free(gone[i]);
	}
	free(gone);
}

void state_owed_prune(struct state *st, const char *email, char **keep, size_t n)
{
	prune(st, Q_OWED_EACH, Q_OWED_DEL, email, keep, n);
}

void state_known_prune(struct state *st, const char *kind, char **keep, size_t n)
{
	prune(st, Q_KNOWN_EACH, Q_KNOWN_DEL, kind, keep, n);
}

bool state_fulfilled(struct state *st, const char *oid)
{
	return one_row(st, Q_FULFILLED, oid, NULL);
}

int state_deadline_revision(struct state *st, const char *uid, time_t due, bool *moved)
{
	sqlite3_stmt *s = query(st, Q_DL_GET);
	int rev = 0;
	bool known = false;

	*moved = false;
	if (!s)
		return 0;
	bind_text(s, 1, uid);
	if (sqlite3_step(s) == SQLITE_ROW) {
		known = true;
		rev = sqlite3_column_int(s, 1);
		if ((time_t)sqlite3_column_int64(s, 0) != due) {
			rev++;
			*moved = true;
		}
	}
	sqlite3_reset(s);
	if ((!known || *moved) && !st->readonly && (s = query(st, Q_DL_PUT))) {
		bind_text(s, 1, uid);
		bind_time(s, 2, due);
		sqlite3_bind_int(s, 3, rev);
		run(st, s, "recording a deadline");
	}
	return rev;
}

bool state_legacy_known(struct state *st)
{
	return one_row(st, Q_LEGACY, NULL, NULL);
}

void state_legacy_known_done(struct state *st)
{
	if (!st->readonly)
		exec(st, "DELETE FROM legacy_known", NULL);
}

long state_owed_count(struct state *st, const char *email)
{
	long long n = 0;

	one_row(st, Q_OWED_COUNT, email, &n);
	return (long)n;
}

void state_delivery_unlink(struct state *st, const char *key)
{
	sqlite3_stmt *s = query(st, Q_UNLINK);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, key);
	run(st, s, "detaching a delivery from its obligation");
}

char *state_meta_get(struct state *st, const char *key)
{
	sqlite3_stmt *s = query(st, Q_META_GET);
	char *v = NULL;

	if (!s)
		return NULL;
	bind_text(s, 1, key);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = column_dup(s, 0);
	sqlite3_reset(s);
	return v;
}

void state_meta_put(struct state *st, const char *key, const char *value)
{
	sqlite3_stmt *s = query(st, Q_META_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	run(st, s, "recording what kallad last read");
}

void state_participant_store(struct state *st, const struct participant *p, time_t now)
{
	sqlite3_stmt *s = query(st, Q_PSEEN_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, p->email);
	bind_text(s, 2, reg_status_name(p->status));
	bind_time(s, 3, now);
	bind_text(s, 4, p->name);
	bind_text(s, 5, p->language);
	bind_text(s, 6, p->organisation);
	bind_text(s, 7, p->role);
	run(st, s, "keeping a copy of a participant");
}

bool state_participant_copy(struct state *st, const char *email, struct participant *out)
{
	sqlite3_stmt *s = query(st, Q_PSEEN_GET);
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	bind_text(s, 1, email);
	if (sqlite3_step(s) == SQLITE_ROW) {
		out->email = column_dup(s, 0);
		out->name = column_dup(s, 1);
		out->language = column_dup(s, 2);
		out->organisation = column_dup(s, 3);
		out->role = column_dup(s, 4);
		out->updated_at = (time_t)sqlite3_column_int64(s, 5);
		if (!reg_parse_status((const char *)sqlite3_column_text(s, 6), &out->status))
			out->status = PS_REGISTERED; /* kallad invited them */
		found = true;
	}
	sqlite3_reset(s);
	return found;
}

void state_invited_each(struct state *st, void (*fn)(const char *email, void *arg), void *arg)
{
	/* Its own statement: fn may call back into the state. */
	sqlite3_stmt *q;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT DISTINCT email FROM attendance WHERE invited = 1 ORDER BY email",
			       -1, &q, NULL) != SQLITE_OK) {
		sql_log(st, "listing invited participants");
		return;
	}
	while (sqlite3_step(q) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), arg);
	sqlite3_finalize(q);
}

bool state_relay_get(struct state *st, struct relay_row *out)
{
	sqlite3_stmt *q = query(st, Q_RELAY_GET);
	bool found;

	memset(out, 0, sizeof(*out));
	if (!q)
		return false;
	found = sqlite3_step(q) == SQLITE_ROW;
	if (found) {
		out->fault = column_dup(q, 0);
		out->kind = sqlite3_column_int(q, 1);
		out->faults = sqlite3_column_int(q, 2);
		out->since = (time_t)sqlite3_column_int64(q, 3);
		out->until = (time_t)sqlite3_column_int64(q, 4);
	}
	sqlite3_reset(q);
	return found;
}

void state_relay_put(struct state *st, const struct relay_row *r)
{
	sqlite3_stmt *q = query(st, Q_RELAY_PUT);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, r->fault ? r->fault : "");
	sqlite3_bind_int(q, 2, r->kind);
	sqlite3_bind_int(q, 3, r->faults);
	bind_time(q, 4, r->since);
	bind_time(q, 5, r->until);
	run(st, q, "recording the relay's suspension");
}

void state_relay_clear(struct state *st)
{
	sqlite3_stmt *q = query(st, Q_RELAY_CLEAR);

	if (q && !st->readonly)
		run(st, q, "clearing the relay's suspension");
}

void state_relay_free(struct relay_row *r)
{
	free(r->fault);
	memset(r, 0, sizeof(*r));
}
