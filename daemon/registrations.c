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

#include "log.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* How long a writer may hold the database before a read gives up. */
static const int reg_busy_timeout_ms = 10000;

/* Participants per page of reg_each: a few hundred kB, and a read
 * transaction short enough not to hold a writer up. */
enum { REG_PAGE = 1000 };

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

static const char *const status_names[] = {"invited", "registered", "waitlisted", "cancelled"};

const char *reg_status_name(enum pstatus s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "?";
}

bool reg_parse_status(const char *s, enum pstatus *out)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(status_names); i++) {
		if (strcasecmp(s, status_names[i]) == 0) {
			*out = (enum pstatus)i;
			return true;
		}
	}
	return false;
}

/* RFC 5322 atext: what a dot-atom local part may hold. No quoted local
 * parts, and no non-ASCII (kallad does not speak SMTPUTF8). */
static bool is_atext(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool valid_local(const char *s, size_t n)
{
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

static bool valid_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* Host names only (IDNs as xn--), at least two labels or "localhost";
 * an all-digit last label would be an IP address, which we do not take. */
static bool valid_domain(const char *s)
{
	size_t n = strlen(s), labels = 0;
	const char *last = s;

	if (n == 0 || n > 253)
		return false;
	if (strcasecmp(s, "localhost") == 0)
		return true;
	for (const char *p = s;; p++) {
		if (*p != '.' && *p != '\0')
			continue;
		if (!valid_label(last, (size_t)(p - last)))
			return false;
		labels++;
		if (*p == '\0')
			break;
		last = p + 1;
	}
	return labels >= 2 && strspn(last, "0123456789") != strlen(last);
}

bool reg_valid_email(const char *email)
{
	const char *at;

	if (!email || strlen(email) > 254)
		return false;
	at = strchr(email, '@');
	if (!at || strchr(at + 1, '@'))
		return false;
	return valid_local(email, (size_t)(at - email)) && valid_domain(at + 1);
}

/* Valid UTF-8, control characters allowed: names are sanitised where they
 * are put into mail, and a stray tab or newline should not cost a
 * politician their invitation. */
static bool utf8_ok(const char *s)
{
	char *copy = xstrdup(s);
	bool ok;

	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	ok = str_valid_utf8(copy, strlen(copy));
	free(copy);
	return ok;
}

/* A short printable form of a value for a message: control characters
 * and invalid UTF-8 escaped, long values cut. */
static char *show(const char *s)
{
	struct strbuf sb;
	bool utf8 = utf8_ok(s);
	size_t i;

	sb_init(&sb);
	for (i = 0; s[i] && i < 80; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			sb_addf(&sb, "\\x%02x", c);
		else
			sb_addc(&sb, (char)c);
	}
	if (s[i])
		sb_add(&sb, "...");
	return sb_take(&sb);
}

static void row_warn(const struct source *src, long row, const char *email, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void row_warn(const struct source *src, long row, const char *email, const char *fmt, ...)
{
	char *who, *msg;
	struct pending *p = src->pending;
	struct strbuf sb;
	va_list ap;

	if (!src->warnings)
		return;
	who = email ? show(email) : xstrdup("no e-mail");
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
static void pending_flush(struct source *src)
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
static char *col_text(sqlite3_stmt *st, int idx)
{
	const char *t;

	if (idx < 0 || sqlite3_column_type(st, idx) == SQLITE_NULL)
		return NULL;
	t = (const char *)sqlite3_column_text(st, idx);
	if (!t)
		return NULL;
	if (strlen(t) != (size_t)sqlite3_column_bytes(st, idx))
		return xstrdup("");
	return xstrdup(t);
}

/* A time column: NULL or absent is 0 (unknown), an integer is Unix time,
 * text is ISO 8601 / RFC 3339 in the programme zone unless it says. */
static bool col_time(sqlite3_stmt *st, int idx, time_t *out, char **bad)
{
	const char *t;

	*out = 0;
	*bad = NULL;
	if (idx < 0 || sqlite3_column_type(st, idx) == SQLITE_NULL)
		return true;
	if (sqlite3_column_type(st, idx) == SQLITE_INTEGER) {
		*out = (time_t)sqlite3_column_int64(st, idx);
		if (tz_in_range(*out))
			return true;
		*out = 0;
		*bad = xasprintf("%lld", (long long)sqlite3_column_int64(st, idx));
		return false;
	}
	t = (const char *)sqlite3_column_text(st, idx);
	if (t && strlen(t) == (size_t)sqlite3_column_bytes(st, idx) && tz_parse_rfc3339(t, out))
		return true;
	*bad = show(t ? t : "");
	return false;
}

/* Finds each wanted column by name (case-insensitive, first wins). */
static bool map_columns(sqlite3_stmt *st, struct column *cols, size_t n, const struct source *src,
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

static void sql_error(sqlite3 *db, const struct source *src, int rc, struct errlist *errs)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		errlist_add(errs, "%s: %s: the database stayed locked by another process for %d s",
		            src->db, src->label, reg_busy_timeout_ms / 1000);
	else
		errlist_add(errs, "%s: %s: %s", src->db, src->label, sqlite3_errmsg(db));
}

/* After reg_load there is no errlist: errors go to the log. */
static void log_errs(struct errlist *errs)
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
static char *source_sql(sqlite3 *db, const char *custom, const char *table, bool optional,
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
			sql_error(db, src, rc, errs);
		return NULL;
	}
	rc = custom ? prepare_custom(db, custom, &st, &sql)
	            : prepare_table(db, table, &st, &sql, has_rowid);
	if (rc != SQLITE_OK || !st) {
		if (rc == SQLITE_OK)
			errlist_add(errs, "%s: %s: the query is empty", src->db, src->label);
		else
			sql_error(db, src, rc, errs);
	} else if (map_columns(st, cols, ncols, src, errs)) {
		sqlite3_finalize(st);
		return sql;
	}
	sqlite3_finalize(st);
	free(sql);
	return NULL;
}

/* Runs one query and calls row() for each row with the mapped columns.
 * The row number is the column kallad_rowid when the query has it, else
 * the position in the result. */
typedef void (*row_fn)(sqlite3_stmt *st, const struct column *cols, long row,
                       const struct source *src, void *arg);

static bool run_rows(sqlite3 *db, const char *sql, struct column *cols, size_t ncols,
                     const struct source *src, row_fn fn, void *arg, struct errlist *errs)
{
	struct column rowid = {"kallad_rowid", false, -1};
	sqlite3_stmt *st = NULL;
	long n = 0;
	bool ok;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		sql_error(db, src, rc, errs);
		sqlite3_finalize(st);
		return false;
	}
	ok = map_columns(st, cols, ncols, src, errs);
	map_columns(st, &rowid, 1, src, errs);
	while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		fn(st, cols, rowid.idx >= 0 ? (long)sqlite3_column_int64(st, rowid.idx) : n, src,
		   arg);
	}
	if (ok && rc != SQLITE_DONE) {
		sql_error(db, src, rc, errs);
		ok = false;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Prepares one of reg's queries for a read after reg_load; logged. */
static sqlite3_stmt *reg_prepare(const struct registrations *reg, const char *sql,
                                 const char *label, struct column *cols, size_t ncols)
{
	struct source src = {reg->path, label, NULL, NULL};
	struct errlist errs = {0};
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		sql_error(reg->db, &src, rc, &errs);
	else if (!map_columns(st, cols, ncols, &src, &errs))
		rc = SQLITE_ERROR;
	log_errs(&errs);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* The end of a read after reg_load: true if it ran to the end (rc). */
static bool reg_step_done(const struct registrations *reg, const char *label, int rc)
{
	struct source src = {reg->path, label, NULL, NULL};
	struct errlist errs = {0};

	if (rc == SQLITE_DONE)
		return true;
	sql_error(reg->db, &src, rc, &errs);
	log_errs(&errs);
	return false;
}

/* --- participants --- */

enum { PC_EMAIL, PC_NAME, PC_ORG, PC_ROLE, PC_LANG, PC_STATUS, PC_REGISTERED, PC_UPDATED, PC_N };

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

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void participant_copy(struct participant *dst, const struct participant *src)
{
	*dst = *src;
	dst->email = dup_or_null(src->email);
	dst->name = dup_or_null(src->name);
	dst->organisation = dup_or_null(src->organisation);
	dst->role = dup_or_null(src->role);
	dst->language = dup_or_null(src->language);
}

/* A short tag [a-z]{2,3}; "en-GB" is taken as "en". */
static char *language_tag(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	char *tag;

	if (n < 2 || n > 3 || (s[n] != '\0' && s[n] != '-' && s[n] != '_'))
		return NULL;
	tag = xstrndup(s, n);
	for (char *p = tag; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return tag;
}

/* Optional text fields: invalid UTF-8 is dropped with a warning. */
static char *optional_text(char *v, const char *what, const struct source *src, long row,
                           const char *email)
{
	if (v && !utf8_ok(v)) {
		row_warn(src, row, email, "%s is not valid UTF-8, ignored", what);
		free(v);
		return NULL;
	}
	if (v && !*v) {
		free(v);
		return NULL;
	}
	return v;
}

static char *participant_language(char *v, const char *deflang, const struct source *src, long row,
                                  const char *email)
{
	char *tag = v && *v ? language_tag(v) : NULL;

	if (v && *v && !tag) {
		char *s = show(v);
		row_warn(src, row, email,
		         "language \"%s\" is not a language tag such as sv or en, "
		         "using %s",
		         s, deflang);
		free(s);
	}
	free(v);
	return tag ? tag : xstrdup(deflang);
}

/* Checks the required fields; false (with a warning) skips the row. An
 * address stored as a number or a blob is not one: paging compares text. */
static bool participant_required(sqlite3_stmt *st, const struct column *c, struct participant *p,
                                 const struct source *src, long row)
{
	char *status = col_text(st, c[PC_STATUS].idx), *bad = NULL;
	bool ok = false;

	if (sqlite3_column_type(st, c[PC_EMAIL].idx) != SQLITE_TEXT || !reg_valid_email(p->email)) {
		row_warn(src, row, p->email, "invalid e-mail address");
	} else if (!p->name || p->name[strspn(p->name, " \t\r\n")] == '\0') {
		row_warn(src, row, p->email, "no name");
	} else if (!utf8_ok(p->name)) {
		row_warn(src, row, p->email, "name is not valid UTF-8");
	} else if (!reg_parse_status(status, &p->status)) {
		bad = status ? show(status) : xstrdup("NULL");
		row_warn(
		    src, row, p->email,
		    "unknown status \"%s\" (want invited, registered, waitlisted or cancelled)",
		    bad);
	} else if (!col_time(st, c[PC_REGISTERED].idx, &p->registered_at, &bad)) {
		row_warn(src, row, p->email, "registered_at \"%s\" is not an ISO 8601 time in the years "
			 TZ_RANGE_TEXT, bad);
	} else if (!col_time(st, c[PC_UPDATED].idx, &p->updated_at, &bad)) {
		row_warn(src, row, p->email, "updated_at \"%s\" is not an ISO 8601 time in the years "
			 TZ_RANGE_TEXT, bad);
	} else {
		ok = true;
	}
	free(status);
	free(bad);
	return ok;
}

/* One row into *p (owned by the caller); false, with a warning naming the
 * row when src has a warnings list, if it is no usable participant. */
static bool participant_read(sqlite3_stmt *st, const struct column *c, long row,
                             const struct source *src, const char *deflang, struct participant *p)
{
	*p = (struct participant){0};
	p->email = col_text(st, c[PC_EMAIL].idx);
	p->name = col_text(st, c[PC_NAME].idx);
	if (!participant_required(st, c, p, src, row)) {
		participant_free(p);
		return false;
	}
	p->organisation =
	    optional_text(col_text(st, c[PC_ORG].idx), "organisation", src, row, p->email);
	p->role = optional_text(col_text(st, c[PC_ROLE].idx), "role", src, row, p->email);
	p->language =
	    participant_language(col_text(st, c[PC_LANG].idx), deflang, src, row, p->email);
	return true;
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

	if (!participant_read(st, c, row, src, ctx->reg->default_language, &p))
		return;
	if (ctx->prev && strcasecmp(ctx->prev, p.email) == 0) {
		row_warn(src, row, p.email, "duplicate of row %ld, skipped", ctx->prev_row);
	} else {
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
	from = source_sql(db, cfg->sql_participants, "participants", false, cols, PC_N, src,
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
	ok = run_rows(db, sql, cols, PC_N, src, participant_count, &ctx, errs);
	pending_flush(src);
	free(ctx.prev);
	free(sql);
	free(from);
	return ok;
}

/* --- reading participants after reg_load --- */

/* The first valid participant with this address (the key, its bytes as
 * stored) into *out: 1, 0 if none, -1 if the database failed (logged). */
static int find_one(const struct registrations *reg, const char *key, int len,
                    struct participant *out)
{
	struct source quiet = {reg->path, participants_label, NULL, NULL};
	struct column cols[PC_N];
	sqlite3_stmt *st;
	int rc, found = 0;

	memcpy(cols, participant_columns, sizeof(cols));
	st = reg_prepare(reg, reg->q_one, "participants", cols, PC_N);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, key, len, SQLITE_TRANSIENT);
	while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW)
		found = participant_read(st, cols, 0, &quiet, reg->default_language, out);
	if (!found && !reg_step_done(reg, "participants", rc))
		found = -1;
	sqlite3_finalize(st);
	return found;
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
	st = reg_prepare(reg, reg->q_page, "participants", cols, PC_N);
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
	ok = reg_step_done(reg, "participants", rc);
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

/* A page in its own read transaction, ended before the caller's work. */
static bool page_read(const struct registrations *reg, const char *after, int after_len,
                      struct page *pg)
{
	sqlite3 *db = reg->db;
	int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	bool ok = rc == SQLITE_OK;

	if (!ok)
		reg_step_done(reg, "participants", rc);
	ok = ok && page_rows(reg, after, after_len, pg) && page_last_address(reg, pg);
	if (rc == SQLITE_OK)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return ok;
}

static void each_in_memory(const struct registrations *reg,
                           void (*fn)(const struct participant *, void *),
                           void (*page_done)(void *), void *arg)
{
	for (size_t i = 0; i < reg->n_participants; i++)
		fn(&reg->participants[i], arg);
	if (page_done)
		page_done(arg);
}

bool reg_each(const struct registrations *reg, void (*fn)(const struct participant *, void *),
              void (*page_done)(void *), void *arg)
{
	char *after = xstrdup("");
	int after_len = 0;
	bool more = true, ok = true;

	if (reg && !reg->db)
		each_in_memory(reg, fn, page_done, arg);
	while (reg && reg->db && ok && more) {
		struct page pg = {0};

		ok = page_read(reg, after, after_len, &pg);
		for (size_t i = 0; ok && i < pg.n; i++)
			fn(&pg.p[i], arg);
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
	free(after);
	return ok;
}

bool reg_find(const struct registrations *reg, const char *email, struct participant *out)
{
	*out = (struct participant){0};
	if (!reg || !email)
		return false;
	if (reg->db)
		return find_one(reg, email, (int)strlen(email), out) > 0;
	for (size_t i = 0; i < reg->n_participants; i++) {
		if (str_caseeq(reg->participants[i].email, email)) {
			participant_copy(out, &reg->participants[i]);
			return true;
		}
	}
	return false;
}

/* --- absences and attachments --- */

/* A required text field that ends up in headers or file names. */
static bool clean_text(const char *s)
{
	return s && *s && str_valid_utf8(s, strlen(s));
}

static bool known_participant(const struct registrations *reg, const char *email,
                              const struct source *src, long row)
{
	struct participant p;

	if (!reg_valid_email(email)) {
		row_warn(src, row, email, "invalid e-mail address");
		return false;
	}
	if (!reg_find(reg, email, &p)) {
		row_warn(src, row, email, "no participant has this address, skipped");
		return false;
	}
	participant_free(&p);
	return true;
}

struct absences_ctx {
	struct registrations *reg;
	size_t cap;
};

static void absence_row(sqlite3_stmt *st, const struct column *c, long row,
                        const struct source *src, void *arg)
{
	struct absences_ctx *ctx = arg;
	struct registrations *reg = ctx->reg;
	struct absence a = {col_text(st, c[0].idx), col_text(st, c[1].idx)};

	if (!known_participant(reg, a.email, src, row)) {
	} else if (!clean_text(a.session_uid)) {
		row_warn(src, row, a.email, "no valid session_uid");
	} else {
		reg->absences = xgrow(reg->absences, &ctx->cap, reg->n_absences, sizeof(a));
		reg->absences[reg->n_absences++] = a;
		return;
	}
	free(a.email);
	free(a.session_uid);
}

enum { AC_EMAIL, AC_MESSAGE, AC_PATH, AC_N };

static const struct column attachment_columns[AC_N] = {
    {"email", true, -1}, {"message", true, -1}, {"path", true, -1}};

/* The row as an attachment (owned by the caller), or false with a warning
 * when src has a warnings list. Whether a participant has the address is
 * not asked: that would be a query per row, and such a row is never read
 * (reg_attachments asks by a participant's address). */
static bool attachment_read(sqlite3_stmt *st, const struct column *c, long row,
                            const struct source *src, struct attachment *a)
{
	*a = (struct attachment){col_text(st, c[AC_EMAIL].idx), col_text(st, c[AC_MESSAGE].idx),
	                         col_text(st, c[AC_PATH].idx)};
	if (!reg_valid_email(a->email))
		row_warn(src, row, a->email, "invalid e-mail address");
	else if (!clean_text(a->message))
		row_warn(src, row, a->email, "no valid message name");
	else if (!clean_text(a->path))
		row_warn(src, row, a->email, "no valid path");
	else
		return true;
	free(a->email);
	free(a->message);
	free(a->path);
	*a = (struct attachment){0};
	return false;
}

static void attachment_count(sqlite3_stmt *st, const struct column *c, long row,
                             const struct source *src, void *arg)
{
	struct registrations *reg = arg;
	struct attachment a;

	if (!attachment_read(st, c, row, src, &a))
		return;
	reg->n_attachments++;
	free(a.email);
	free(a.path);
	/* The few message names with files: most messages need no query. */
	for (size_t i = 0; i < reg->n_attachment_messages; i++)
		if (strcmp(reg->attachment_messages[i], a.message) == 0) {
			free(a.message);
			return;
		}
	reg->attachment_messages = xrealloc(reg->attachment_messages,
					    (reg->n_attachment_messages + 1) * sizeof(char *));
	reg->attachment_messages[reg->n_attachment_messages++] = a.message;
}

static bool has_attachments(const struct registrations *reg, const char *message)
{
	for (size_t i = 0; i < reg->n_attachment_messages; i++)
		if (strcmp(reg->attachment_messages[i], message) == 0)
			return true;
	return false;
}

static int absence_cmp(const void *a, const void *b)
{
	const struct absence *x = a, *y = b;
	int c = strcasecmp(x->email, y->email);

	return c ? c : strcmp(x->session_uid, y->session_uid);
}

static bool load_absences(sqlite3 *db, const struct config *cfg, struct registrations *reg,
                          struct source *src, struct errlist *errs)
{
	struct column cols[] = {{"email", true, -1}, {"session_uid", true, -1}};
	struct absences_ctx ctx = {reg, 0};
	bool has_rowid, missing, ok;
	char *from;

	src->label = cfg->sql_absences ? "[registrations] absences query" : "absences";
	from = source_sql(db, cfg->sql_absences, "absences", true, cols, ARRAY_SIZE(cols), src,
	                  &has_rowid, &missing, errs);
	if (!from)
		return missing;
	ok = run_rows(db, from, cols, ARRAY_SIZE(cols), src, absence_row, &ctx, errs);
	if (reg->n_absences)
		qsort(reg->absences, reg->n_absences, sizeof(*reg->absences), absence_cmp);
	free(from);
	return ok;
}

static bool load_attachments(sqlite3 *db, const struct config *cfg, struct registrations *reg,
                             struct source *src, struct errlist *errs)
{
	struct column cols[AC_N];
	bool has_rowid, missing, ok;
	char *from;

	memcpy(cols, attachment_columns, sizeof(cols));
	src->label = cfg->sql_attachments ? "[registrations] attachments query" : "attachments";
	from = source_sql(db, cfg->sql_attachments, "attachments", true, cols, AC_N, src,
	                  &has_rowid, &missing, errs);
	if (!from)
		return missing;
	ok = run_rows(db, from, cols, AC_N, src, attachment_count, reg, errs);
	/* Over the shipped table, its index on (email COLLATE NOCASE, message). */
	reg->q_attachments = xasprintf("SELECT * FROM (\n%s\n) WHERE email COLLATE NOCASE = ?1 "
	                               "AND message = ?2%s",
	                               from, has_rowid ? " ORDER BY kallad_rowid" : "");
	free(from);
	return ok;
}

static size_t attachments_in_memory(const struct registrations *reg, const char *email,
                                    const char *message, struct attachment **out)
{
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < reg->n_attachments; i++) {
		const struct attachment *a = &reg->attachments[i];

		if (!str_caseeq(a->email, email) || !str_eq(a->message, message))
			continue;
		*out = xgrow(*out, &cap, n, sizeof(**out));
		(*out)[n++] =
		    (struct attachment){xstrdup(a->email), xstrdup(a->message), xstrdup(a->path)};
	}
	return n;
}

size_t reg_attachments(const struct registrations *reg, const char *email, const char *message,
                       struct attachment **out)
{
	struct source quiet = {NULL, NULL, NULL, NULL};
	struct column cols[AC_N];
	struct attachment a;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	if (!reg || !email || !message)
		return 0;
	if (!reg->db)
		return attachments_in_memory(reg, email, message, out);
	if (!reg->q_attachments || !has_attachments(reg, message))
		return 0;
	memcpy(cols, attachment_columns, sizeof(cols));
	if (!(st = reg_prepare(reg, reg->q_attachments, "attachments", cols, AC_N)))
		return REG_ATTACHMENTS_FAILED;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, message, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!attachment_read(st, cols, 0, &quiet, &a))
			continue;
		*out = xgrow(*out, &cap, n, sizeof(**out));
		(*out)[n++] = a;
	}
	sqlite3_finalize(st);
	if (!reg_step_done(reg, "attachments", rc)) {
		reg_attachments_free(*out, n);
		*out = NULL;
		return REG_ATTACHMENTS_FAILED;
	}
	return n;
}

void reg_attachments_free(struct attachment *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		free(a[i].email);
		free(a[i].message);
		free(a[i].path);
	}
	free(a);
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
	sqlite3_busy_timeout(db, reg_busy_timeout_ms);
	return db;
}

static char *default_language(const struct config *cfg)
{
	char *tag = cfg->language ? language_tag(cfg->language) : NULL;

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
	db = open_db(cfg->registrations, errs);
	if (!db)
		return NULL;
	reg = xcalloc(1, sizeof(*reg));
	reg->db = db;
	reg->path = xstrdup(cfg->registrations);
	reg->default_language = default_language(cfg);
	/* One read transaction: the three queries see the same snapshot. */
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		sql_error(db, &src, rc, errs);
	ok = rc == SQLITE_OK && load_participants(db, cfg, reg, &src, errs);
	ok = ok && load_absences(db, cfg, reg, &src, errs);
	ok = ok && load_attachments(db, cfg, reg, &src, errs);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (!ok) {
		reg_free(reg);
		return NULL;
	}
	return reg;
}

void reg_free(struct registrations *reg)
{
	if (!reg)
		return;
	sqlite3_close(reg->db);
	for (size_t i = 0; i < reg->n_absences; i++) {
		free(reg->absences[i].email);
		free(reg->absences[i].session_uid);
	}
	if (!reg->db) {
		for (size_t i = 0; i < reg->n_participants; i++)
			participant_free(&reg->participants[i]);
		reg_attachments_free(reg->attachments, reg->n_attachments);
	}
	free(reg->participants);
	free(reg->absences);
	free(reg->path);
	free(reg->q_page);
	free(reg->q_one);
	free(reg->q_attachments);
	for (size_t i = 0; i < reg->n_attachment_messages; i++)
		free(reg->attachment_messages[i]);
	free(reg->attachment_messages);
	free(reg->default_language);
	free(reg);
}

bool reg_is_absent(const struct registrations *reg, const char *email, const char *session_uid)
{
	struct absence key = {(char *)email, (char *)session_uid};

	if (!reg || !email || !session_uid || !reg->n_absences)
		return false;
	return bsearch(&key, reg->absences, reg->n_absences, sizeof(key), absence_cmp) != NULL;
}
