/* reg_extras.c: the absences and attachments of the registration
 * database (SPEC §1.3): rows naming a participant and a session or a
 * message, read with the participants and checked the same way. */
#include "registrations.h"

#include "reg_extras.h"

#include "regdigest.h"
#include "reg_row.h"
#include "reg_sql.h"

#include "log.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
		rsql_row_warn(src, row, email, "invalid e-mail address");
		return false;
	}
	if (!reg_find(reg, email, &p)) {
		rsql_row_warn(src, row, email, "no participant has this address, skipped");
		return false;
	}
	reg_participant_clear(&p);
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
	struct absence a = {rsql_col_text(st, c[0].idx), rsql_col_text(st, c[1].idx), NULL};

	if (!known_participant(reg, a.email, src, row)) {
	} else if (!clean_text(a.session_uid)) {
		rsql_row_warn(src, row, a.email, "no valid session_uid");
	} else {
		char *who = reg_row_show(a.email);

		a.row = xasprintf("%s: %s row %ld (%s)", src->db, src->label, row, who);
		free(who);
		if (reg->digests)
			regdigest_absence(reg->digests, a.email, a.session_uid);
		reg->absences = xgrow(reg->absences, &ctx->cap, reg->n_absences, sizeof(a));
		reg->absences[reg->n_absences++] = a;
		return;
	}
	reg->n_skipped_rows++;
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
	*a = (struct attachment){rsql_col_text(st, c[AC_EMAIL].idx), rsql_col_text(st, c[AC_MESSAGE].idx),
	                         rsql_col_text(st, c[AC_PATH].idx)};
	if (!reg_valid_email(a->email))
		rsql_row_warn(src, row, a->email, "invalid e-mail address");
	else if (!clean_text(a->message))
		rsql_row_warn(src, row, a->email, "no valid message name");
	else if (!clean_text(a->path))
		rsql_row_warn(src, row, a->email, "no valid path");
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

	if (!attachment_read(st, c, row, src, &a)) {
		reg->n_skipped_rows++;
		return;
	}
	reg->n_attachments++;
	if (reg->digests)
		regdigest_attachment(reg->digests, a.email, a.message, a.path);
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

bool reg_load_absences(sqlite3 *db, const struct config *cfg, struct registrations *reg,
		       struct source *src, struct errlist *errs)
{
	struct column cols[] = {{"email", true, -1}, {"session_uid", true, -1}};
	struct absences_ctx ctx = {reg, 0};
	bool has_rowid, missing, ok;
	char *from;

	src->label = cfg->sql_absences ? "[registrations] absences query" : "absences";
	from = rsql_source_sql(db, cfg->sql_absences, "absences", true, cols, ARRAY_SIZE(cols), src,
	                  &has_rowid, &missing, errs);
	if (!from)
		return missing;
	ok = rsql_run_rows(db, from, cols, ARRAY_SIZE(cols), src, absence_row, &ctx, errs);
	if (reg->n_absences)
		qsort(reg->absences, reg->n_absences, sizeof(*reg->absences), absence_cmp);
	free(from);
	return ok;
}

bool reg_load_attachments(sqlite3 *db, const struct config *cfg, struct registrations *reg,
			  struct source *src, struct errlist *errs)
{
	struct column cols[AC_N];
	bool has_rowid, missing, ok;
	char *from;

	memcpy(cols, attachment_columns, sizeof(cols));
	src->label = cfg->sql_attachments ? "[registrations] attachments query" : "attachments";
	from = rsql_source_sql(db, cfg->sql_attachments, "attachments", true, cols, AC_N, src,
	                  &has_rowid, &missing, errs);
	if (!from)
		return missing;
	ok = rsql_run_rows(db, from, cols, AC_N, src, attachment_count, reg, errs);
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
	if (!(st = rsql_prepare(reg, reg->q_attachments, "attachments", cols, AC_N)))
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
	if (!rsql_step_done(reg, "attachments", rc)) {
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

bool reg_is_absent(const struct registrations *reg, const char *email, const char *session_uid)
{
	struct absence key = {(char *)email, (char *)session_uid, NULL};

	if (!reg || !email || !session_uid || !reg->n_absences)
		return false;
	return bsearch(&key, reg->absences, reg->n_absences, sizeof(key), absence_cmp) != NULL;
}
