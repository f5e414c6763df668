/* csv_registrations.c: registrations from a spreadsheet (SPEC §6 Inputs):
 * `registrations = FILE.csv`, with absences and attachments as CSV files
 * too, each read whole into memory (csv_table.c). The header row names
 * the columns: the shipped schema's names, or others mapped with
 * `[registrations] columns = E-post:email, Namn:name`. A row is named by
 * the line of the file it starts on, as an editor shows it. */
#include "registrations.h"

#include "csv_table.h"
#include "reg_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool reg_is_csv(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	return n > 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

/* --- columns --- */

/* The column a header is mapped to by [registrations] columns, NULL if
 * none (the caller frees). */
static char *mapped_column(const struct config *cfg, const char *name)
{
	char *copy, *save = NULL, *found = NULL;

	if (!cfg->csv_columns)
		return NULL;
	copy = xstrdup(cfg->csv_columns);
	for (char *item = strtok_r(copy, ",", &save); item && !found;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		if (!colon)
			continue;
		*colon = '\0';
		if (strcasecmp(str_trim(item), name) == 0)
			found = xstrdup(str_trim(colon + 1));
	}
	free(copy);
	return found;
}

/* False, with a line in errs naming them, if [registrations] columns maps
 * headers to a field names[i] for a bit i of must that t's header row
 * lacks: a question retitled in the form, whose namesake (the own-named
 * column, or nothing) would otherwise be read in its place. */
static bool mapped_present(const struct config *cfg, const struct csv_table *t,
			   const char *const *names, size_t n, unsigned must, struct errlist *errs)
{
	const struct csv_record *h = &t->rec[0];
	char *copy = xstrdup(cfg->csv_columns ? cfg->csv_columns : ""), *save = NULL;
	struct strbuf lack;
	bool ok;

	sb_init(&lack);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':'), *header, *col;
		bool wanted = false, found = false;

		if (!colon)
			continue;
		*colon = '\0';
		header = str_trim(item);
		col = str_trim(colon + 1);
		for (size_t i = 0; i < n; i++)
			wanted = wanted || ((must >> i & 1) && strcasecmp(col, names[i]) == 0);
		for (size_t c = 0; wanted && !found && c < h->n; c++) {
			char *name = xstrdup(h->v[c]);

			found = strcasecmp(str_trim(name), header) == 0;
			free(name);
		}
		if (wanted && !found)
			sb_addf(&lack, "%s%s:%s", lack.len ? ", " : "", header, col);
	}
	ok = lack.len == 0;
	if (!ok)
		errlist_add(errs,
			    "%s: line %ld: [registrations] columns maps %s, but the header row has "
			    "no such column (retitled?): the file is not read, as another column "
			    "would be taken for it",
			    t->path, h->row, lack.buf);
	sb_free(&lack);
	free(copy);
	return ok;
}

static int name_index(const char *const *names, size_t n, const char *col)
{
	for (size_t i = 0; col && i < n; i++)
		if (strcasecmp(col, names[i]) == 0)
			return (int)i;
	return -1;
}

/* Columns c and *at both give one field: an error naming both, else c is it. */
static bool claim(const struct csv_table *t, int *at, size_t c, const char *field,
		  struct errlist *errs)
{
	const struct csv_record *h = &t->rec[0];

	if (*at < 0) {
		*at = (int)c;
		return true;
	}
	errlist_add(errs,
		    "%s: line %ld: columns %d (%s) and %zu (%s) both give %s: map one with "
		    "[registrations] columns = HEADER:COLUMN, or remove one",
		    t->path, h->row, *at + 1, h->v[*at], c + 1, h->v[c], field);
	return false;
}

/* Maps names[i] to its index in the header row (-1: absent). A header
 * that [registrations] columns maps gives the field it is mapped to, and
 * only that one; a header that is a field's own name (any case) gives it
 * when no mapped header does: a Microsoft Forms export's Email (who
 * filled the form in) loses to the mapped E-postadress. False with a
 * line in errs naming the required columns missing, a header mapped to
 * a field of must that the row lacks (its namesake would be read in its
 * place), or two columns that give one field. */
static bool map_header(const struct config *cfg, const struct csv_table *t,
		       const char *const *names, size_t n, size_t required, unsigned must,
		       int *idx, struct errlist *errs)
{
	const struct csv_record *h = &t->rec[0];
	int *own;
	struct strbuf missing;
	bool ok = true;

	if (!mapped_present(cfg, t, names, n, must, errs))
		return false;
	own = xcalloc(n, sizeof(*own));
	for (size_t i = 0; i < n; i++)
		idx[i] = own[i] = -1;
	for (size_t c = 0; c < h->n; c++) {
		char *name = xstrdup(h->v[c]), *mapped = mapped_column(cfg, str_trim(name));
		int i = name_index(names, n, mapped ? mapped : str_trim(name));

		if (i >= 0 && !claim(t, mapped ? &idx[i] : &own[i], c, names[i], errs))
			ok = false;
		free(mapped);
		free(name);
	}
	for (size_t i = 0; i < n; i++)
		if (idx[i] < 0)
			idx[i] = own[i];
	free(own);
	sb_init(&missing);
	for (size_t i = 0; ok && i < n; i++)
		if ((required >> i & 1) && idx[i] < 0)
			sb_addf(&missing, "%s%s", missing.len ? ", " : "", names[i]);
	if (missing.len) {
		errlist_add(errs,
			    "%s: line %ld: the header row has no column for %s (map yours with [registrations] columns = HEADER:COLUMN, ...)",
			    t->path, h->row, missing.buf);
		ok = false;
	}
	sb_free(&missing);
	return ok;
}

static struct reg_field field_at(const struct csv_record *r, int idx)
{
	struct reg_field f = {RF_NULL, NULL, 0, 0};
	const char *v;

	if (idx < 0 || (size_t)idx >= r->n)
		return f;
	v = r->v[idx];
	if (v[strspn(v, " \t")] == '\0' && strlen(v) == r->len[idx])
		return f; /* an empty cell */
	return (struct reg_field){RF_TEXT, v, r->len[idx], 0};
}

/* An address cell as the address it holds (reg_row_address, which sets
 * *problem), over *owned, which the caller frees. */
static struct reg_field address_at(const struct csv_record *r, int idx, char **owned,
				   const char **problem)
{
	struct reg_field f = field_at(r, idx);

	*owned = reg_row_address(&f, problem);
	return *owned ? (struct reg_field){RF_TEXT, *owned, strlen(*owned), 0} : f;
}

/* --- messages, in row order --- */

struct rowmsgs {
	struct {
		long row;
		size_t seq;
		char *msg;
	} *v;
	size_t n, cap;
};

static void msg_add(struct rowmsgs *m, long row, char *msg)
{
	m->v = xgrow(m->v, &m->cap, m->n, sizeof(*m->v));
	m->v[m->n].row = row;
	m->v[m->n].seq = m->n;
	m->v[m->n++].msg = msg;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct rowmsgs *dummy = NULL;
	__typeof__(dummy->v) x = (void *)a, y = (void *)b;

	if (x->row != y->row)
		return (x->row > y->row) - (x->row < y->row);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void msgs_flush(struct rowmsgs *m, struct errlist *warnings)
{
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), msg_cmp);
	for (size_t i = 0; i < m->n; i++) {
		errlist_add(warnings, "%s", m->v[i].msg);
		free(m->v[i].msg);
	}
	free(m->v);
	*m = (struct rowmsgs){0};
}

struct row_ctx {
	const char *path;
	long row;
	struct rowmsgs *msgs;
};

static void warn_row(void *arg, const char *email, const char *what)
{
	struct row_ctx *rc = arg;
	char *who = email ? reg_row_show(email) : xstrdup("no e-mail");

	msg_add(rc->msgs, rc->row, xasprintf("%s: line %ld (%s): %s", rc->path, rc->row, who, what));
	free(who);
}

/* A row with a NUL byte: unusable, whichever cell holds it. */
#define NUL_ROW "a NUL byte in the row (a crash while the file was written leaves them): " \
		"the row cannot be used"

/* --- participants --- */

struct indexed {
	struct participant p;
	long row;
};

static int indexed_cmp(const void *a, const void *b)
{
	const struct indexed *x = a, *y = b;
	int c = strcasecmp(x->p.email, y->p.email);

	return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* What two rows for one address differ in that changes what kallad
 * sends: the field's name, NULL if nothing. */
static const char *disagreement(const struct participant *a, const struct participant *b)
{
	return a->status != b->status			? "status"
	       : !str_eq(a->name, b->name)		? "name"
	       : !str_eq(a->language, b->language)	? "language"
	       : !str_eq(a->organisation, b->organisation) ? "organisation"
	       : !str_eq(a->role, b->role)		? "role"
							: NULL;
}

/* The k rows for one address, in row order: the first is the participant
 * when all agree (the others are duplicates, skipped). Rows that disagree
 * are reported, both lines, and none is used: the file's order is no
 * answer (sorting the sheet would cancel or invite), so the participant
 * keeps their last good state, as for an unusable row. */
static void take_rows(struct registrations *reg, struct indexed *g, size_t k, const char *path,
		      struct rowmsgs *msgs)
{
	bool agree = true;

	for (size_t i = 1; i < k; i++)
		agree = agree && !disagreement(&g[0].p, &g[i].p);
	for (size_t i = 1; i < k; i++) {
		const char *what = disagreement(&g[0].p, &g[i].p);

		msg_add(msgs, g[i].row,
			what ? xasprintf("%s: line %ld (%s) disagrees with line %ld (%s) on %s: neither "
					 "row is used until they agree",
					 path, g[i].row, g[i].p.email, g[0].row, g[0].p.email, what)
			     : xasprintf("%s: line %ld (%s): duplicate of line %ld, skipped", path,
					 g[i].row, g[i].p.email, g[0].row));
	}
	if (!agree)
		reg_note_unreadable(reg, g[0].p.email, NULL);
	for (size_t i = agree; i < k; i++) {
		reg_participant_clear(&g[i].p);
		reg->n_skipped_participants++;
		reg->n_skipped_rows++;
	}
	if (agree) {
		reg->by_status[g[0].p.status]++;
		reg->participants[reg->n_participants++] = g[0].p;
	}
}

/* An unusable row, counted: its address (when it is one) keeps its last
 * good state, and a row that may be anyone's (whose: why) holds every
 * removal, as one without an address does. */
static void skip_row(struct registrations *reg, long row, const char *address, const char *whose)
{
	char where[32];

	reg->n_skipped_participants++;
	reg->n_skipped_rows++;
	snprintf(where, sizeof(where), "line %ld", row);
	if (!whose || reg_valid_email(address))
		reg_note_unreadable(reg, address, where);
	if (whose)
		reg_note_unaddressed(reg, where, whose);
}

/* The last row, cut short: what it lacks, by the header's names. */
static void warn_cut(struct row_ctx *rc, const struct csv_table *t, const char *address)
{
	const struct csv_record *h = &t->rec[0], *last = &t->rec[t->n - 1];
	struct strbuf sb;

	sb_init(&sb);
	sb_addf(&sb, "the last row ends without a line break after %zu of the header's %zu "
		"fields, without ", last->n, h->n);
	for (size_t c = last->n; c < h->n; c++)
		sb_addf(&sb, "%s%s", c > last->n ? ", " : "", h->v[c]);
	sb_add(&sb, " (a file caught while it is written looks like this): the row cannot be used");
	warn_row(rc, address, sb.buf);
	sb_free(&sb);
}

/* Row r of t as a participant into *p (owned by the caller), or false
 * with the row reported and skipped. */
static bool participant_row(struct registrations *reg, const struct csv_table *t, size_t r,
			    const int idx[PC_N], struct row_ctx *rc, struct participant *p)
{
	const struct csv_record *rec = &t->rec[r];
	struct reg_field f[PC_N];
	const char *problem, *whose = NULL;
	char *address;
	bool ok = false;

	for (int i = 0; i < PC_N; i++)
		f[i] = field_at(rec, idx[i]);
	f[PC_EMAIL] = address_at(rec, idx[PC_EMAIL], &address, &problem);
	/* Where a crash left NUL bytes, rows may have been: and line
	 * breaks, so this one may hold (or have swallowed) anyone's. */
	if (csv_record_nul(rec)) {
		warn_row(rc, address, NUL_ROW);
		whose = "a row with a NUL byte";
	} else if (rec->swallowed) {
		/* Its cells after the quote are the swallowed rows'. */
		char *what = xasprintf("a quote opened on line %ld " CSV_SWALLOWED
				       ": the row cannot be used", rec->swallowed);

		warn_row(rc, address, what);
		free(what);
		whose = "a stray quote may have swallowed rows";
	} else if (t->last_cut && r == t->n - 1) {
		/* The rows after it may be on their way. Its address is
		 * whole only if a separator followed it. */
		warn_cut(rc, t, address);
		whose = "a last row cut short";
		if (idx[PC_EMAIL] + 1 >= (int)rec->n) {
			free(address);
			address = NULL;
		}
	} else if (problem) {
		warn_row(rc, address, problem);
	} else {
		ok = reg_row_participant(f, reg->default_language, warn_row, rc, p);
	}
	if (!ok)
		skip_row(reg, rc->row, address, whose);
	free(address);
	return ok;
}

static bool load_participants(const struct config *cfg, struct registrations *reg,
			      struct rowmsgs *msgs, struct errlist *warnings, struct errlist *errs)
{
	struct csv_table t;
	int idx[PC_N];
	struct indexed *all = NULL;
	size_t n = 0, cap = 0;

	if (!csv_table_read(cfg->registrations, &t, warnings, errs))
		return false;
	/* A header that swallowed rows has no row of its own to hold them. */
	if (t.rec[0].swallowed) {
		errlist_add(errs, "%s: line %ld: a quote opened here " CSV_SWALLOWED
			    ": the file is not read", t.path, t.rec[0].swallowed);
		csv_table_free(&t);
		return false;
	}
	if (!map_header(cfg, &t, reg_participant_columns, PC_N,
			1u << PC_EMAIL | 1u << PC_NAME | 1u << PC_STATUS, (1u << PC_N) - 1, idx,
			errs)) {
		csv_table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct participant p;

		if (csv_record_blank(&t.rec[r]) || !participant_row(reg, &t, r, idx, &rc, &p))
			continue;
		all = xgrow(all, &cap, n, sizeof(*all));
		all[n++] = (struct indexed){p, t.rec[r].row};
	}
	csv_table_free(&t);
	if (n)
		qsort(all, n, sizeof(*all), indexed_cmp);
	reg->participants = xcalloc(n ? n : 1, sizeof(*reg->participants));
	for (size_t i = 0, k; i < n; i += k) {
		for (k = 1; i + k < n && strcasecmp(all[i].p.email, all[i + k].p.email) == 0; k++)
			;
		take_rows(reg, all + i, k, t.path, msgs);
	}
	free(all);
	return true;
}

/* --- absences and attachments --- */

static bool clean_text(const char *s)
{
	return s && *s && str_valid_utf8(s, strlen(s));
}

static bool known(const struct registrations *reg, const char *email, struct row_ctx *rc)
{
	struct participant p;

	if (!reg_valid_email(email)) {
		warn_row(rc, email, "invalid e-mail address");
		return false;
	}
	if (!reg_find(reg, email, &p)) {
		warn_row(rc, email, "no participant has this address, skipped");
		return false;
	}
	reg_participant_clear(&p);
	return true;
}

static int absence_cmp(const void *a, const void *b)
{
	const struct absence *x = a, *y = b;
	int c = strcasecmp(x->email, y->email);

	return c ? c : strcmp(x->session_uid, y->session_uid);
}

static bool load_absences(const struct config *cfg, struct registrations *reg,
			  struct rowmsgs *msgs, struct errlist *warnings, struct errlist *errs)
{
	static const char *const names[] = {"email", "session_uid"};
	struct csv_table t;
	int idx[2];
	size_t cap = 0;

	if (!csv_table_read(cfg->csv_absences, &t, warnings, errs))
		return false;
	/* A row it lacks cannot be waited for: the file is not read. */
	if (!csv_table_whole(&t, errs) || !map_header(cfg, &t, names, 2, 3, 2, idx, errs)) {
		csv_table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct reg_field fe = field_at(&t.rec[r], idx[0]), fs = field_at(&t.rec[r], idx[1]);
		struct absence a = {reg_row_address(&fe, NULL), reg_row_text(&fs), NULL};

		if (csv_record_blank(&t.rec[r])) {
		} else if (csv_record_nul(&t.rec[r])) {
			warn_row(&rc, a.email, NUL_ROW);
			reg->n_skipped_rows++;
		} else if (!known(reg, a.email, &rc)) {
			reg->n_skipped_rows++;
		} else if (!clean_text(a.session_uid)) {
			warn_row(&rc, a.email, "no valid session_uid");
			reg->n_skipped_rows++;
		} else {
			char *who = reg_row_show(a.email);

			a.row = xasprintf("%s: line %ld (%s)", t.path, t.rec[r].row, who);
			free(who);
			reg->absences = xgrow(reg->absences, &cap, reg->n_absences, sizeof(a));
			reg->absences[reg->n_absences++] = a;
			continue;
		}
		free(a.email);
		free(a.session_uid);
	}
	csv_table_free(&t);
	if (reg->n_absences)
		qsort(reg->absences, reg->n_absences, sizeof(*reg->absences), absence_cmp);
	return true;
}

static bool load_attachments(const struct config *cfg, struct registrations *reg,
			     struct rowmsgs *msgs, struct errlist *warnings, struct errlist *errs)
{
	static const char *const names[] = {"email", "message", "path"};
	struct csv_table t;
	int idx[3];
	size_t cap = 0;

	if (!csv_table_read(cfg->csv_attachments, &t, warnings, errs))
		return false;
	/* A row it lacks cannot be waited for: the file is not read. */
	if (!csv_table_whole(&t, errs) || !map_header(cfg, &t, names, 3, 7, 6, idx, errs)) {
		csv_table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct reg_field f[3];
		struct attachment a;

		for (int i = 0; i < 3; i++)
			f[i] = field_at(&t.rec[r], idx[i]);
		a = (struct attachment){reg_row_address(&f[0], NULL), reg_row_text(&f[1]),
					reg_row_text(&f[2])};
		if (csv_record_blank(&t.rec[r])) {
		} else if (csv_record_nul(&t.rec[r])) {
			warn_row(&rc, a.email, NUL_ROW);
			reg->n_skipped_rows++;
		} else if (!reg_valid_email(a.email)) {
			warn_row(&rc, a.email, "invalid e-mail address");
			reg->n_skipped_rows++;
		} else if (!clean_text(a.message)) {
			warn_row(&rc, a.email, "no valid message name");
			reg->n_skipped_rows++;
		} else if (!clean_text(a.path)) {
			warn_row(&rc, a.email, "no valid path");
			reg->n_skipped_rows++;
		} else {
			reg->attachments = xgrow(reg->attachments, &cap, reg->n_attachments, sizeof(a));
			reg->attachments[reg->n_attachments++] = a;
			continue;
		}
		free(a.email);
		free(a.message);
		free(a.path);
	}
	csv_table_free(&t);
	return true;
}

struct registrations *reg_load_csv(const struct config *cfg, struct errlist *warnings,
				   struct errlist *errs)
{
	struct registrations *reg = xcalloc(1, sizeof(*reg));
	struct rowmsgs msgs = {0};
	char *tag = cfg->language ? reg_row_language_tag(cfg->language) : NULL;
	bool ok;

	reg->path = xstrdup(cfg->registrations);
	reg->default_language = tag ? tag : xstrdup("sv");
	/* Each file's messages in its row order. */
	ok = load_participants(cfg, reg, &msgs, warnings, errs);
	msgs_flush(&msgs, warnings);
	ok = ok && (!cfg->csv_absences || load_absences(cfg, reg, &msgs, warnings, errs));
	msgs_flush(&msgs, warnings);
	ok = ok && (!cfg->csv_attachments || load_attachments(cfg, reg, &msgs, warnings, errs));
	msgs_flush(&msgs, warnings);
	reg_unreadable_done(reg);
	if (!ok) {
		reg_free(reg);
		return NULL;
	}
	return reg;
}
