/* registrations.c: reads the registration database (SPEC §1.3).
 *
 * The database belongs to someone else (a registration form, another
 * system): it is opened read-only, never created, and a writer holding it
 * busy is waited for. Everything valid is loaded into memory in one read
 * transaction, so the three queries see one snapshot. Columns are read by
 * name, so a site's own SELECTs only need to return the right names. */
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

/* How long a writer may hold the database before a load gives up. */
static const int reg_busy_timeout_ms = 10000;

/* Where rows come from, for messages: "path: label row N (email): what". */
struct source {
	const char *db;    /* the database file */
	const char *label; /* table name or "[registrations] NAME query" */
	struct errlist *warnings;
};

struct column {
	const char *name;
	bool required;
	int idx; /* -1 when the query does not return it */
};

/* A participant and the row it came from, while loading. */
struct prow {
	struct participant p;
	long row;
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
	char *who = email ? show(email) : xstrdup("no e-mail");
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	errlist_add(src->warnings, "%s: %s row %ld (%s): %s", src->db, src->label, row, who,
	            sb.buf);
	sb_free(&sb);
	free(who);
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
		return true;
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

/* Prepares the configured SELECT, or the shipped one. The shipped one
 * asks for rowid so messages can name the row an administrator would look
 * for; a view has none, so that is tried without. *missing is set when a
 * shipped optional table does not exist. */
static int prepare_query(sqlite3 *db, const char *custom, const char *table, bool optional,
			     sqlite3_stmt **st, bool *missing)
{
	char *sql;
	int rc;

	*st = NULL;
	*missing = false;
	if (custom)
		return sqlite3_prepare_v2(db, custom, -1, st, NULL);
	if (optional && !table_exists(db, table, &rc)) {
		*missing = rc == SQLITE_OK;
		return rc;
	}
	sql = xasprintf("SELECT rowid AS kallad_rowid, * FROM \"%s\"", table);
	rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	free(sql);
	if (rc == SQLITE_ERROR) {
		sql = xasprintf("SELECT * FROM \"%s\"", table);
		rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
		free(sql);
	}
	return rc;
}

/* Runs one query and calls row() for each row with the mapped columns. */
typedef void (*row_fn)(sqlite3_stmt *st, const struct column *cols, long row,
			   const struct source *src, void *arg);

static bool run_query(sqlite3 *db, const struct source *src, const char *custom, const char *table,
			  bool optional, struct column *cols, size_t ncols, row_fn fn, void *arg,
			  struct errlist *errs)
{
	struct column rowid = {"kallad_rowid", false, -1};
	sqlite3_stmt *st;
	bool missing, ok;
	long n = 0;
	int rc;

	rc = prepare_query(db, custom, table, optional, &st, &missing);
	if (missing)
		return true;
	if (rc != SQLITE_OK || !st) {
		if (rc == SQLITE_OK)
			errlist_add(errs, "%s: %s: the query is empty", src->db, src->label);
		else
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

/* --- participants --- */

enum { PC_EMAIL, PC_NAME, PC_ORG, PC_ROLE, PC_LANG, PC_STATUS, PC_REGISTERED, PC_UPDATED, PC_N };

struct plist {
	struct prow *rows;
	size_t n, cap;
	const char *default_language;
};

static void participant_free(struct participant *p)
{
	free(p->email);
	free(p->name);
	free(p->organisation);
	free(p->role);
	free(p->language);
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

static char *participant_language(char *v, const struct plist *pl, const struct source *src,
				      long row, const char *email)
{
	char *tag = v && *v ? language_tag(v) : NULL;

	if (v && *v && !tag) {
		char *s = show(v);
		row_warn(src, row, email,
		         "language \"%s\" is not a language tag such as sv or en, "
		         "using %s",
		         s, pl->default_language);
		free(s);
	}
	free(v);
	return tag ? tag : xstrdup(pl->default_language);
}

/* Checks the required fields; false (with a warning) skips the row. */
static bool participant_required(sqlite3_stmt *st, const struct column *c, struct participant *p,
				     const struct source *src, long row)
{
	char *status = col_text(st, c[PC_STATUS].idx), *bad = NULL;
	bool ok = false;

	if (!reg_valid_email(p->email)) {
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
		row_warn(src, row, p->email, "registered_at \"%s\" is not an ISO 8601 time", bad);
	} else if (!col_time(st, c[PC_UPDATED].idx, &p->updated_at, &bad)) {
		row_warn(src, row, p->email, "updated_at \"%s\" is not an ISO 8601 time", bad);
	} else {
		ok = true;
	}
	free(status);
	free(bad);
	return ok;
}

static void participant_row(sqlite3_stmt *st, const struct column *c, long row,
				const struct source *src, void *arg)
{
	struct plist *pl = arg;
	struct participant p = {0};

	p.email = col_text(st, c[PC_EMAIL].idx);
	p.name = col_text(st, c[PC_NAME].idx);
	if (!participant_required(st, c, &p, src, row)) {
		participant_free(&p);
		return;
	}
	p.organisation =
	    optional_text(col_text(st, c[PC_ORG].idx), "organisation", src, row, p.email);
	p.role = optional_text(col_text(st, c[PC_ROLE].idx), "role", src, row, p.email);
	p.language = participant_language(col_text(st, c[PC_LANG].idx), pl, src, row, p.email);
	pl->rows = xgrow(pl->rows, &pl->cap, pl->n, sizeof(*pl->rows));
	pl->rows[pl->n++] = (struct prow){p, row};
}

static int prow_cmp(const void *a, const void *b)
{
	const struct prow *x = a, *y = b;
	int c = strcasecmp(x->p.email, y->p.email);

	return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Sorts by address and keeps the first row of each address. */
static void participants_finish(struct registrations *reg, struct plist *pl,
				    const struct source *src)
{
	if (pl->n)
		qsort(pl->rows, pl->n, sizeof(*pl->rows), prow_cmp);
	reg->participants = xcalloc(pl->n ? pl->n : 1, sizeof(*reg->participants));
	for (size_t i = 0; i < pl->n; i++) {
		struct prow *r = &pl->rows[i];
		if (reg->n_participants &&
		    strcasecmp(reg->participants[reg->n_participants - 1].email, r->p.email) == 0) {
			row_warn(src, r->row, r->p.email, "duplicate of row %ld, skipped",
			         pl->rows[i - 1].row);
			/* keep pointing at the first row for the next duplicate */
			r->row = pl->rows[i - 1].row;
			participant_free(&r->p);
			continue;
		}
		reg->participants[reg->n_participants++] = r->p;
	}
	free(pl->rows);
}

static bool load_participants(sqlite3 *db, const struct config *cfg, struct registrations *reg,
				  struct source *src, struct errlist *errs)
{
	struct column cols[PC_N] = {
	    {"email", true, -1},          {"name", true, -1},        {"organisation", false, -1},
	    {"role", false, -1},          {"language", false, -1},   {"status", true, -1},
	    {"registered_at", false, -1}, {"updated_at", false, -1},
	};
	struct plist pl = {NULL, 0, 0, "sv"};
	char *deflang = cfg->language ? language_tag(cfg->language) : NULL;
	bool ok;

	if (deflang)
		pl.default_language = deflang;
	src->label = cfg->sql_participants ? "[registrations] participants query" : "participants";
	ok = run_query(db, src, cfg->sql_participants, "participants", false, cols, PC_N,
	               participant_row, &pl, errs);
	participants_finish(reg, &pl, src);
	free(deflang);
	return ok;
}

/* --- absences and attachments --- */

static bool known_participant(const struct registrations *reg, const char *email,
				  const struct source *src, long row)
{
	if (!reg_valid_email(email)) {
		row_warn(src, row, email, "invalid e-mail address");
		return false;
	}
	if (!reg_participant(reg, email)) {
		row_warn(src, row, email, "no participant has this address, skipped");
		return false;
	}
	return true;
}

/* A required text field that ends up in headers or file names. */
static bool clean_text(const char *s)
{
	return s && *s && str_valid_utf8(s, strlen(s));
}

struct rows_ctx {
	struct registrations *reg;
	size_t cap;
};

static void absence_row(sqlite3_stmt *st, const struct column *c, long row,
			    const struct source *src, void *arg)
{
	struct rows_ctx *ctx = arg;
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

static void attachment_row(sqlite3_stmt *st, const struct column *c, long row,
			       const struct source *src, void *arg)
{
	struct rows_ctx *ctx = arg;
	struct registrations *reg = ctx->reg;
	struct attachment a = {col_text(st, c[0].idx), col_text(st, c[1].idx),
	                       col_text(st, c[2].idx)};

	if (!known_participant(reg, a.email, src, row)) {
	} else if (!clean_text(a.message)) {
		row_warn(src, row, a.email, "no valid message name");
	} else if (!clean_text(a.path)) {
		row_warn(src, row, a.email, "no valid path");
	} else {
		reg->attachments =
		    xgrow(reg->attachments, &ctx->cap, reg->n_attachments, sizeof(a));
		reg->attachments[reg->n_attachments++] = a;
		return;
	}
	free(a.email);
	free(a.message);
	free(a.path);
}

static int absence_cmp(const void *a, const void *b)
{
	const struct absence *x = a, *y = b;
	int c = strcasecmp(x->email, y->email);

	return c ? c : strcmp(x->session_uid, y->session_uid);
}

static bool load_others(sqlite3 *db, const struct config *cfg, struct registrations *reg,
			    struct source *src, struct errlist *errs)
{
	struct column acols[] = {{"email", true, -1}, {"session_uid", true, -1}};
	struct column tcols[] = {{"email", true, -1}, {"message", true, -1}, {"path", true, -1}};
	struct rows_ctx actx = {reg, 0}, tctx = {reg, 0};
	bool ok;

	src->label = cfg->sql_absences ? "[registrations] absences query" : "absences";
	ok = run_query(db, src, cfg->sql_absences, "absences", true, acols, ARRAY_SIZE(acols),
	               absence_row, &actx, errs);
	if (reg->n_absences)
		qsort(reg->absences, reg->n_absences, sizeof(*reg->absences), absence_cmp);
	src->label = cfg->sql_attachments ? "[registrations] attachments query" : "attachments";
	return run_query(db, src, cfg->sql_attachments, "attachments", true, tcols,
	                 ARRAY_SIZE(tcols), attachment_row, &tctx, errs) &&
	       ok;
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

struct registrations *reg_load(const struct config *cfg, struct errlist *warnings,
				   struct errlist *errs)
{
	struct source src = {cfg->registrations, "participants", warnings};
	struct registrations *reg;
	sqlite3 *db;
	bool ok;

	if (!cfg->registrations) {
		errlist_add(errs, "%s: [programme] registrations is not set",
		            cfg->path ? cfg->path : "configuration");
		return NULL;
	}
	db = open_db(cfg->registrations, errs);
	if (!db)
		return NULL;
	reg = xcalloc(1, sizeof(*reg));
	/* One read transaction: the three queries see the same snapshot. */
	ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
	     load_participants(db, cfg, reg, &src, errs) && load_others(db, cfg, reg, &src, errs);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
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
	for (size_t i = 0; i < reg->n_participants; i++)
		participant_free(&reg->participants[i]);
	for (size_t i = 0; i < reg->n_absences; i++) {
		free(reg->absences[i].email);
		free(reg->absences[i].session_uid);
	}
	for (size_t i = 0; i < reg->n_attachments; i++) {
		free(reg->attachments[i].email);
		free(reg->attachments[i].message);
		free(reg->attachments[i].path);
	}
	free(reg->participants);
	free(reg->absences);
	free(reg->attachments);
	free(reg);
}

const struct participant *reg_participant(const struct registrations *reg, const char *email)
{
	size_t lo = 0, hi = reg && email ? reg->n_participants : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(email, reg->participants[mid].email);
		if (c == 0)
			return &reg->participants[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool reg_is_absent(const struct registrations *reg, const char *email, const char *session_uid)
{
	struct absence key = {(char *)email, (char *)session_uid};

	if (!reg || !email || !session_uid || !reg->n_absences)
		return false;
	return bsearch(&key, reg->absences, reg->n_absences, sizeof(key), absence_cmp) != NULL;
}
