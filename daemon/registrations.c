/* registrations.c: reads the registration database (SPEC §1.3).
 *
 * The database belongs to someone else (a registration form, another
 * system): it is opened read-only, never created, and a writer holding it
 * busy is waited for. Columns are read by name, so a site's own SELECTs
 * only need to return the right names.
 *
 * Participants are never all in memory, so kallad's memory does not grow
 * with them: reg_load reads them once in address order, counting them and
 * reporting bad rows as it goes, and reg_each reads them again a page at
 * a time, each page starting after the last address of the one before
 * (keyset pagination). Every query is the site's SELECT, or the shipped
 * table, wrapped as a subquery, so the shipped table's NOCASE primary key
 * serves the paging. */
#include "registrations.h"

#include "reg_row.h"
#include "reg_extras.h"
#include "reg_sql.h"
#include "regdigest.h"

#include "log.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Participants per page of reg_each: a few hundred kB, and a read
 * transaction short enough not to hold a writer up. */
enum { REG_PAGE = 1000 };

/* --- participants --- */

/* reg_keep_digests(): each load fingerprints what it read (the daemon's). */
static bool keep_digests;

void reg_keep_digests(bool on)
{
	keep_digests = on;
}

struct regdigest *reg_take_digests(struct registrations *reg)
{
	struct regdigest *r = reg ? reg->digests : NULL;

	if (reg)
		reg->digests = NULL;
	return r;
}


static const struct column participant_columns[PC_N] = {
    {"email", true, -1},          {"name", true, -1},        {"organisation", false, -1},
    {"role", false, -1},          {"language", false, -1},   {"status", true, -1},
    {"registered_at", false, -1}, {"updated_at", false, -1},
};

static const char *const participants_label = "[registrations] participants query";

static void participant_free(struct participant *p)
{
	free(p->email);
	free(p->name);
	free(p->organisation);
	free(p->role);
	free(p->language);
	*p = (struct participant){0};
}

void reg_participant_clear(struct participant *p)
{
	if (p)
		participant_free(p);
}

static void participant_copy(struct participant *dst, const struct participant *src)
{
	*dst = *src;
	dst->email = xstrdup(src->email);
	dst->name = xstrdup(src->name);
	dst->organisation = xstrdup(src->organisation);
	dst->role = xstrdup(src->role);
	dst->language = xstrdup(src->language);
}

struct row_at {
	const struct source *src;
	long row;
};

static void warn_row(void *arg, const char *email, const char *what)
{
	struct row_at *at = arg;

	rsql_row_warn(at->src, at->row, email, "%s", what);
}

/* One row into *p (owned by the caller); false, with a warning naming the
 * row when src has a warnings list, if it is no usable participant. */
static bool participant_read(sqlite3_stmt *st, const struct column *c, long row,
                             const struct source *src, const char *deflang, struct participant *p)
{
	struct reg_field f[PC_N];
	struct row_at at = {src, row};

	for (int i = 0; i < PC_N; i++)
		f[i] = rsql_col_field(st, c[i].idx);
	return reg_row_participant(f, deflang, warn_row, &at, p);
}

/* reg_load's pass: rows come in address order, so a duplicate follows
 * the first valid row with its address. */
struct count_ctx {
	struct registrations *reg;
	char *prev; /* the last valid participant's address */
	long prev_row;
};

static void participant_count(sqlite3_stmt *st, const struct column *c, long row,
                              const struct source *src, void *arg)
{
	struct count_ctx *ctx = arg;
	struct participant p;

	if (!participant_read(st, c, row, src, ctx->reg->default_language, &p)) {
		char *email = sqlite3_column_type(st, c[PC_EMAIL].idx) == SQLITE_TEXT
				      ? rsql_col_text(st, c[PC_EMAIL].idx) : NULL;
		char *where = xasprintf("%s row %ld", src->label, row);

		ctx->reg->n_skipped_participants++;
		ctx->reg->n_skipped_rows++;
		reg_note_unreadable(ctx->reg, email, where);
		free(where);
		free(email);
		return;
	}
	if (ctx->prev && strcasecmp(ctx->prev, p.email) == 0) {
		rsql_row_warn(src, row, p.email, "duplicate of row %ld, skipped", ctx->prev_row);
		ctx->reg->n_skipped_participants++;
		ctx->reg->n_skipped_rows++;
	} else {
		if (ctx->reg->digests)
			regdigest_participant(ctx->reg->digests, &p);
		free(ctx->prev);
		ctx->prev = p.email;
		p.email = NULL;
		ctx->prev_row = row;
		ctx->reg->n_participants++;
		ctx->reg->by_status[p.status]++;
	}
	participant_free(&p);
}

/* The queries reg_each and reg_find run: over the shipped table, the
 * primary key (email COLLATE NOCASE) serves both. */
static void participant_queries(struct registrations *reg, const char *from, bool has_rowid)
{
	reg->q_page = xasprintf("SELECT * FROM (\n%s\n) WHERE typeof(email) = 'text' AND "
	                        "email COLLATE NOCASE > ?1 ORDER BY email COLLATE NOCASE%s "
	                        "LIMIT %d",
	                        from, has_rowid ? ", kallad_rowid" : "", REG_PAGE);
	reg->q_one = xasprintf("SELECT * FROM (\n%s\n) WHERE typeof(email) = 'text' AND "
	                       "email COLLATE NOCASE = ?1%s",
	                       from, has_rowid ? " ORDER BY kallad_rowid" : "");
	reg->q_one_trimmed = xasprintf("SELECT * FROM (\n%s\n) WHERE typeof(email) = 'text' AND "
	                               "trim(email, ' ' || char(9)) = ?1 COLLATE NOCASE%s",
	                               from, has_rowid ? " ORDER BY kallad_rowid" : "");
}

/* Reads every participant once, in address order (then row order, so the
 * first of duplicates is kept), counting the valid ones. Without a rowid
 * the row is the position in the site's query. */
static bool load_participants(sqlite3 *db, const struct config *cfg, struct registrations *reg,
                              struct source *src, struct errlist *errs)
{
	struct column cols[PC_N];
	struct pending pending = {0};
	struct count_ctx ctx = {reg, NULL, 0};
	bool has_rowid, missing, ok;
	char *from, *sql;

	memcpy(cols, participant_columns, sizeof(cols));
	src->label = cfg->sql_participants ? participants_label : "participants";
	from = rsql_source_sql(db, cfg->sql_participants, "participants", false, cols, PC_N, src,
	                  &has_rowid, &missing, errs);
	if (!from)
		return false;
	participant_queries(reg, from, has_rowid);
	if (has_rowid)
		sql = xasprintf(
		    "SELECT * FROM (\n%s\n) ORDER BY email COLLATE NOCASE, kallad_rowid", from);
	else
		sql = xasprintf("SELECT * FROM (SELECT row_number() OVER () AS kallad_rowid, * "
		                "FROM (\n%s\n)) ORDER BY email COLLATE NOCASE, kallad_rowid",
		                from);
	src->pending = &pending;
	ok = rsql_run_rows(db, sql, cols, PC_N, src, participant_count, &ctx, errs);
	rsql_pending_flush(src);
	free(ctx.prev);
	free(sql);
	free(from);
	return ok;
}

/* --- reading participants after reg_load --- */

/* The first valid participant with this address (the key, its bytes as
 * stored) into *out: 1, 0 if none, -1 if the database failed (logged). */
static int find_by(const struct registrations *reg, const char *sql, const char *key, int len,
                   struct participant *out)
{
	struct source quiet = {reg->path, participants_label, NULL, NULL};
	struct column cols[PC_N];
	sqlite3_stmt *st;
	int rc, found = 0;

	memcpy(cols, participant_columns, sizeof(cols));
	st = rsql_prepare(reg, sql, "participants", cols, PC_N);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, key, len, SQLITE_TRANSIENT);
	while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW)
		found = participant_read(st, cols, 0, &quiet, reg->default_language, out);
	if (!found && !rsql_step_done(reg, "participants", rc))
		found = -1;
	sqlite3_finalize(st);
	return found;
}

/* By the address as stored (the index serves it), else by the address
 * with the spaces around it trimmed, as participants carry it: a slower
 * scan, only for addresses stored with stray spaces (or none at all). */
static int find_one(const struct registrations *reg, const char *key, int len,
                    struct participant *out)
{
	int found = find_by(reg, reg->q_one, key, len, out);

	return found ? found : find_by(reg, reg->q_one_trimmed, key, len, out);
}

/* One page of reg_each: the valid participants, and the key (address as
 * stored) of the last row read, where the next page starts. */
struct page {
	struct participant *p;
	size_t n, cap, rows;
	char *last;
	int last_len;
};

static void page_add(struct page *pg, struct participant *p)
{
	pg->p = xgrow(pg->p, &pg->cap, pg->n, sizeof(*pg->p));
	pg->p[pg->n++] = *p;
}

static void page_free(struct page *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		participant_free(&pg->p[i]);
	free(pg->p);
	free(pg->last);
}

static void page_key(struct page *pg, sqlite3_stmt *st, int idx)
{
	const char *t = (const char *)sqlite3_column_text(st, idx);
	int len = sqlite3_column_bytes(st, idx);

	free(pg->last);
	pg->last = xmalloc((size_t)len + 1);
	memcpy(pg->last, t ? t : "", (size_t)len);
	pg->last[len] = '\0';
	pg->last_len = len;
}

/* Only the first valid row of an address counts; the rows of an address
 * are together, in row order. */
static bool page_has(const struct page *pg, const char *email)
{
	return pg->n && strcasecmp(pg->p[pg->n - 1].email, email) == 0;
}

static bool page_rows(const struct registrations *reg, const char *after, int after_len,
                      struct page *pg)
{
	struct source quiet = {reg->path, participants_label, NULL, NULL};
	struct column cols[PC_N];
	sqlite3_stmt *st;
	bool ok;
	int rc;

	memcpy(cols, participant_columns, sizeof(cols));
	st = rsql_prepare(reg, reg->q_page, "participants", cols, PC_N);
	if (!st)
		return false;
	sqlite3_bind_text(st, 1, after, after_len, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct participant p;

		pg->rows++;
		page_key(pg, st, cols[PC_EMAIL].idx);
		if (participant_read(st, cols, 0, &quiet, reg->default_language, &p) &&
		    !page_has(pg, p.email))
			page_add(pg, &p);
		else
			participant_free(&p);
	}
	ok = rsql_step_done(reg, "participants", rc);
	sqlite3_finalize(st);
	return ok;
}

/* A full page may end in the middle of an address's rows, and the next
 * page starts after that address: if no valid row of it came yet, the
 * rest are looked up now. */
static bool page_last_address(const struct registrations *reg, struct page *pg)
{
	struct participant p;
	int found;

	if (pg->rows < REG_PAGE || page_has(pg, pg->last))
		return true;
	found = find_one(reg, pg->last, pg->last_len, &p);
	if (found > 0)
		page_add(pg, &p);
	return found >= 0;
}

/* A page of the pass's snapshot. */
static bool page_read(const struct registrations *reg, const char *after, int after_len,
                      struct page *pg)
{
	return page_rows(reg, after, after_len, pg) && page_last_address(reg, pg);
}

static bool is_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	bool wal = false;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		wal = strcasecmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	return wal;
}

/* The database as it is now, copied into a private temporary database
 * (SQLite keeps it in memory up to its cache size, then in a file) in
 * one read transaction: a rollback-journal database could not otherwise
 * be read consistently across a long pass without holding its writers. */
static sqlite3 *snapshot_copy(const struct registrations *reg)
{
	sqlite3 *copy = NULL;
	sqlite3_backup *b;
	int rc = sqlite3_open_v2("", &copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

	if (rc == SQLITE_OK && (b = sqlite3_backup_init(copy, "main", reg->db, "main"))) {
		/* A busy writer is waited for, as every read is. */
		for (int tries = 0; tries < REG_BUSY_TIMEOUT_MS / 50; tries++) {
			rc = sqlite3_backup_step(b, -1);
			if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
				break;
			sqlite3_sleep(50);
		}
		sqlite3_backup_finish(b);
		if (rc == SQLITE_DONE)
			return copy;
	}
	log_error("%s: cannot take a snapshot of the registrations: %s", reg->path,
		  copy ? sqlite3_errmsg(copy) : sqlite3_errstr(rc));
	sqlite3_close(copy);
	return NULL;
}

/* Starts the pass's snapshot: *copy is the copy to read, or NULL when the
 * read transaction on db is the snapshot. False if neither could be had. */
static bool snapshot_begin(struct registrations *reg, sqlite3 **copy)
{
	int rc;

	*copy = NULL;
	if (is_wal(reg->db)) {
		rc = sqlite3_exec(reg->db, "BEGIN", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return rsql_step_done(reg, "participants", rc);
	} else if (!(*copy = snapshot_copy(reg))) {
		return false;
	}
	reg->snapshot = true;
	return true;
}

static void snapshot_end(struct registrations *reg, sqlite3 *origin, sqlite3 *copy)
{
	reg->snapshot = false;
	reg->db = origin;
	if (copy)
		sqlite3_close(copy);
	else
		sqlite3_exec(origin, "COMMIT", NULL, NULL, NULL);
}

/* reg_each's walk through the held participants beside the others. */
struct held_walk {
	const struct registrations *reg;
	size_t next;
	void (*fn)(const struct participant *, void *);
	void *arg;
};

/* Calls fn for the held participants before email in order (all that
 * are left when email is NULL); true if it called it at all. */
static bool held_before(struct held_walk *w, const char *email)
{
	const struct registrations *reg = w->reg;
	bool any = false;

	while (w->next < reg->n_held &&
	       (!email || strcasecmp(reg->held[w->next].email, email) < 0)) {
		w->fn(&reg->held[w->next++], w->arg);
		any = true;
	}
	return any;
}

static void each_in_memory(const struct registrations *reg, struct held_walk *w,
                           void (*page_done)(void *))
{
	for (size_t i = 0; i < reg->n_participants; i++) {
		held_before(w, reg->participants[i].email);
		w->fn(&reg->participants[i], w->arg);
	}
	held_before(w, NULL);
	if (page_done)
		page_done(w->arg);
}

bool reg_each(const struct registrations *reg, void (*fn)(const struct participant *, void *),
              void (*page_done)(void *), void *arg)
{
	/* The snapshot is the registrations' own state for the pass, hence
	 * the cast: reg stays the same set of registrations. */
	struct registrations *snap = (struct registrations *)reg;
	sqlite3 *origin = reg ? reg->db : NULL, *copy = NULL;
	bool more = true, ok = true, own_snapshot = false;
	char *after;
	int after_len = 0;
	struct held_walk w = {reg, 0, fn, arg};

	if (reg && !reg->db) {
		each_in_memory(reg, &w, page_done);
		return true;
	}
	if (!reg)
		return true;
	if (!reg->snapshot) {
		if (!snapshot_begin(snap, &copy))
			return false;
		own_snapshot = true;
		if (copy)
			snap->db = copy;
	}
	after = xstrdup("");
	while (ok && more) {
		struct page pg = {0};

		ok = page_read(reg, after, after_len, &pg);
		for (size_t i = 0; ok && i < pg.n; i++) {
			held_before(&w, pg.p[i].email);
			fn(&pg.p[i], arg);
		}
		if (ok && pg.n && page_done)
			page_done(arg);
		/* Each page ends on a greater address: this ends. */
		more = pg.rows == REG_PAGE;
		if (more) {
			free(after);
			after = pg.last;
			after_len = pg.last_len;
			pg.last = NULL;
		}
		page_free(&pg);
	}
	if (reg && reg->db && ok && held_before(&w, NULL) && page_done)
		page_done(arg);
	free(after);
	if (own_snapshot)
		snapshot_end(snap, origin, copy);
	return ok;
}

static int email_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct participant *)a)->email,
			  ((const struct participant *)b)->email);
}

int reg_lookup(const struct registrations *reg, const char *email, struct participant *out)
{
	int found;

	*out = (struct participant){0};
	if (!reg || !email)
		return 0;
	if (reg->db && (found = find_one(reg, email, (int)strlen(email), out)) != 0)
		return found;
	if (!reg->db) {
		const struct participant key = {.email = (char *)email};
		const struct participant *p = reg->n_participants
			? bsearch(&key, reg->participants, reg->n_participants, sizeof(key), email_cmp)
			: NULL;

		if (p) {
			participant_copy(out, p);
			return 1;
		}
	}
	for (size_t i = 0; i < reg->n_held; i++) {
		if (str_caseeq(reg->held[i].email, email)) {
			participant_copy(out, &reg->held[i]);
			return 1;
		}
	}
	return 0;
}

bool reg_find(const struct registrations *reg, const char *email, struct participant *out)
{
	return reg_lookup(reg, email, out) > 0;
}

/* --- last good state --- */

static int str_case_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

void reg_note_unaddressed(struct registrations *reg, const char *where, const char *why)
{
	reg->unaddressed = xgrow(reg->unaddressed, &reg->cap_unaddressed, reg->n_unaddressed,
				 sizeof(char *));
	reg->unaddressed[reg->n_unaddressed++] = xasprintf("%s: %s", where, why);
}

/* Appended as rows come; sorted once by reg_unreadable_done. */
void reg_note_unreadable(struct registrations *reg, const char *email, const char *where)
{
	if (!reg_valid_email(email)) {
		reg_note_unaddressed(reg, where, "no address kallad can read");
		return;
	}
	reg->unreadable = xgrow(reg->unreadable, &reg->cap_unreadable, reg->n_unreadable,
				sizeof(char *));
	reg->unreadable[reg->n_unreadable++] = xstrdup(email);
}

void reg_unreadable_done(struct registrations *reg)
{
	size_t n = 0;

	if (reg->n_unreadable)
		qsort(reg->unreadable, reg->n_unreadable, sizeof(char *), str_case_cmp);
	for (size_t i = 0; i < reg->n_unreadable; i++) {
		if (n && strcasecmp(reg->unreadable[n - 1], reg->unreadable[i]) == 0)
			free(reg->unreadable[i]);
		else
			reg->unreadable[n++] = reg->unreadable[i];
	}
	reg->n_unreadable = n;
}

bool reg_is_unreadable(const struct registrations *reg, const char *email)
{
	if (!reg || !email || !reg->n_unreadable)
		return false;
	return bsearch(&email, reg->unreadable, reg->n_unreadable, sizeof(char *), str_case_cmp);
}

void reg_keep_last_good(struct registrations *reg, const struct registrations *old,
			struct errlist *warnings)
{
	for (size_t i = 0; old && i < reg->n_unreadable; i++) {
		const char *email = reg->unreadable[i];
		struct participant p;

		if (reg_find(reg, email, &p)) {
			participant_free(&p);
			continue;
		}
		if (!reg_find(old, email, &p))
			continue;
		reg_hold(reg, &p, warnings);
	}
}

static int held_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct participant *)a)->email,
			  ((const struct participant *)b)->email);
}

void reg_hold(struct registrations *reg, struct participant *p, struct errlist *warnings)
{
	errlist_add(warnings,
		    "%s: %s: the row cannot be used now (see above): keeping the participant's last good state (%s)",
		    reg->path, p->email, reg_status_name(p->status));
	p->removed = false;
	reg->held = xrealloc(reg->held, (reg->n_held + 1) * sizeof(*reg->held));
	reg->held[reg->n_held++] = *p; /* not in n_participants: the rows' count */
	*p = (struct participant){0};
	qsort(reg->held, reg->n_held, sizeof(*reg->held), held_cmp);
}

/* --- opening --- */

static sqlite3 *open_db(const char *path, struct errlist *errs)
{
	struct stat sb;
	sqlite3 *db = NULL;
	int rc;

	/* SQLITE_OPEN_READONLY never creates, but says only "unable to open". */
	if (stat(path, &sb) < 0) {
		errlist_add(errs, "%s: cannot open the registration database: %s", path,
		            strerror(errno));
		return NULL;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		errlist_add(errs, "%s: cannot open the registration database: %s", path,
		            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, REG_BUSY_TIMEOUT_MS);
	return db;
}

static char *default_language(const struct config *cfg)
{
	char *tag = cfg->language ? reg_row_language_tag(cfg->language) : NULL;

	return tag ? tag : xstrdup("sv");
}

struct registrations *reg_load(const struct config *cfg, struct errlist *warnings,
                               struct errlist *errs)
{
	struct source src = {cfg->registrations, "participants", warnings, NULL};
	struct registrations *reg;
	sqlite3 *db;
	bool ok;
	int rc;

	if (!cfg->registrations) {
		errlist_add(errs, "%s: [programme] registrations is not set",
		            cfg->path ? cfg->path : "configuration");
		return NULL;
	}
	if (reg_is_csv(cfg->registrations))
		return reg_load_csv(cfg, warnings, errs);
	db = open_db(cfg->registrations, errs);
	if (!db)
		return NULL;
	reg = xcalloc(1, sizeof(*reg));
	reg->db = db;
	reg->path = xstrdup(cfg->registrations);
	reg->default_language = default_language(cfg);
	if (keep_digests)
		reg->digests = regdigest_new(); /* NULL: reloads plan everyone */
	/* One read transaction: the three queries see the same snapshot. */
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rsql_error(db, &src, rc, errs);
	ok = rc == SQLITE_OK && load_participants(db, cfg, reg, &src, errs);
	ok = ok && reg_load_absences(db, cfg, reg, &src, errs);
	ok = ok && reg_load_attachments(db, cfg, reg, &src, errs);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (!ok) {
		reg_free(reg);
		return NULL;
	}
	reg_unreadable_done(reg);
	if (reg->digests)
		regdigest_done(reg->digests);
	return reg;
}

void reg_free(struct registrations *reg)
{
	if (!reg)
		return;
	sqlite3_close(reg->db);
	regdigest_free(reg->digests);
	for (size_t i = 0; i < reg->n_absences; i++) {
		free(reg->absences[i].email);
		free(reg->absences[i].session_uid);
		free(reg->absences[i].row);
	}
	if (!reg->db) {
		for (size_t i = 0; i < reg->n_participants; i++)
			participant_free(&reg->participants[i]);
		reg_attachments_free(reg->attachments, reg->n_attachments);
	}
	for (size_t i = 0; i < reg->n_held; i++)
		participant_free(&reg->held[i]);
	free(reg->held);
	for (size_t i = 0; i < reg->n_unreadable; i++)
		free(reg->unreadable[i]);
	free(reg->unreadable);
	for (size_t i = 0; i < reg->n_unaddressed; i++)
		free(reg->unaddressed[i]);
	free(reg->unaddressed);
	free(reg->participants);
	free(reg->absences);
	free(reg->path);
	free(reg->q_page);
	free(reg->q_one);
	free(reg->q_one_trimmed);
	free(reg->q_attachments);
	for (size_t i = 0; i < reg->n_attachment_messages; i++)
		free(reg->attachment_messages[i]);
	free(reg->attachment_messages);
	free(reg->default_language);
	free(reg);
}
