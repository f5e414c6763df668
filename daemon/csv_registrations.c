/* csv_registrations.c: registrations from a spreadsheet (SPEC §6 Inputs):
 * `registrations = FILE.csv`, with absences and attachments as CSV files
 * too, read whole into memory with libcsv (Debian's libcsv-dev).
 *
 * What spreadsheets write is taken as it comes: UTF-8 with or without a
 * byte order mark, or Windows-1252 (Excel in Sweden), converted with
 * iconv; `,` or `;` between fields, whichever the header row uses; quoted
 * fields with separators, quotes and line breaks inside; CRLF or LF. The
 * header row names the columns: the shipped schema's names, or others
 * mapped with `[registrations] columns = E-post:email, Namn:name`. A row
 * is named by the line of the file it starts on (blank lines and line
 * breaks inside quotes counted), as an editor shows it. */
#include "registrations.h"

#include "reg_row.h"

#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool reg_is_csv(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	return n > 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

/* One record: its fields as read (NUL-terminated, len without it). */
struct record {
	char **v;
	size_t *len;
	size_t n;
	long row; /* the line of the file it starts on */
};

struct table {
	const char *path;
	struct record *rec;
	size_t n, cap;
	struct record cur;
	long line;  /* the line being parsed, from 1 */
	long start; /* the line the record being parsed starts on; 0 between records */
};

static void on_field(void *data, size_t len, void *arg)
{
	struct table *t = arg;
	struct record *r = &t->cur;

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->len = xrealloc(r->len, (r->n + 1) * sizeof(*r->len));
	r->v[r->n] = xstrndup(data ? data : "", len);
	r->len[r->n++] = len;
}

static void on_record(int c, void *arg)
{
	struct table *t = arg;

	(void)c;
	/* A line of spaces alone, if the parser takes it as a record. */
	t->cur.row = t->start ? t->start : t->line;
	t->start = 0;
	t->rec = xgrow(t->rec, &t->cap, t->n, sizeof(*t->rec));
	t->rec[t->n++] = t->cur;
	t->cur = (struct record){0};
}

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	free(r->len);
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		record_free(&t->rec[i]);
	free(t->rec);
	record_free(&t->cur);
}

/* Valid UTF-8 multi-byte sequences and bytes that are none: a UTF-8 file
 * with a stray Latin-1 name has many more of the first. */
static void utf8_census(const unsigned char *s, size_t len, size_t *good, size_t *bad)
{
	*good = *bad = 0;
	for (size_t i = 0; i < len;) {
		size_t n = s[i] < 0x80 ? 1 : (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3
		       : (s[i] & 0xF8) == 0xF0 ? 4 : 0;
		bool ok = n > 0 && i + n <= len;

		for (size_t k = 1; ok && k < n; k++)
			ok = (s[i + k] & 0xC0) == 0x80;
		if (n == 1) {
			i++;
		} else if (ok) {
			(*good)++;
			i += n;
		} else {
			(*bad)++;
			i++;
		}
	}
}

/* The file as UTF-8 (caller frees), BOM removed. */
static char *decode(const char *path, char *text, size_t *len, struct errlist *warnings)
{
	size_t good, bad, n = *len;
	char *body = text, *out;

	if (n >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		n -= 3;
	}
	utf8_census((const unsigned char *)body, n, &good, &bad);
	/* Mostly UTF-8: a stray byte is the field's problem (reg_row). */
	if (bad == 0 || good > bad) {
		out = xstrndup(body, n);
		*len = n;
		return out;
	}
	out = reg_row_from_1252(body, n);
	if (!out) {
		errlist_add(warnings, "%s: neither UTF-8 nor Windows-1252; read as it is", path);
		out = xstrndup(body, n);
		*len = n;
		return out;
	}
	*len = strlen(out);
	return out;
}

/* ';' when the header row has more of them than ',' (outside quotes). */
static unsigned char separator(const char *text, size_t len)
{
	size_t commas = 0, semis = 0;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '"')
			quoted = !quoted;
		else if (!quoted && (text[i] == '\n' || text[i] == '\r'))
			break;
		else if (!quoted && text[i] == ',')
			commas++;
		else if (!quoted && text[i] == ';')
			semis++;
	}
	return semis > commas ? ';' : ',';
}

/* The end of the line that starts at text[i]: past its LF, CRLF or lone CR. */
static size_t line_end(const char *text, size_t len, size_t i)
{
	while (i < len && text[i] != '\n' && text[i] != '\r')
		i++;
	if (i < len && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
		i++;
	return i < len ? i + 1 : len;
}

/* Feeds the parser a line at a time, so that each record knows the line
 * it starts on: the first line after the last record with anything but
 * spaces on it (the parser skips blank lines without a word). False (t->line
 * the line) on a parse error. */
static bool parse_lines(struct csv_parser *p, const char *text, size_t len, struct table *t)
{
	for (size_t i = 0, end; i < len; i = end) {
		end = line_end(text, len, i);
		t->line++;
		if (!t->start && strspn(text + i, " \t\r\n") < end - i)
			t->start = t->line;
		if (csv_parse(p, text + i, end - i, on_field, on_record, t) != end - i)
			return false;
	}
	return true;
}

/* Reads path into t; false with a line in errs if it cannot be read. */
static bool read_table(const char *path, struct table *t, struct errlist *warnings,
		       struct errlist *errs)
{
	struct csv_parser p;
	size_t len;
	char *raw = read_file(path, &len), *text;
	bool ok = true;

	*t = (struct table){.path = path};
	if (!raw) {
		errlist_add(errs, "%s: cannot read: %s", path, strerror(errno));
		return false;
	}
	text = decode(path, raw, &len, warnings);
	free(raw);
	if (csv_init(&p, CSV_APPEND_NULL) != 0) {
		errlist_add(errs, "%s: cannot start the CSV parser", path);
		free(text);
		return false;
	}
	csv_set_delim(&p, separator(text, len));
	ok = parse_lines(&p, text, len, t);
	if (ok && csv_fini(&p, on_field, on_record, t) != 0) {
		t->line = t->start ? t->start : t->line; /* where the open quote's record began */
		ok = false;
	}
	if (!ok)
		errlist_add(errs, "%s: line %ld: %s", path, t->line, csv_strerror(csv_error(&p)));
	csv_free(&p);
	free(text);
	if (ok && t->n == 0) {
		errlist_add(errs, "%s: empty: no header row", path);
		ok = false;
	}
	return ok;
}

/* --- columns --- */

/* The column a header names: by [registrations] columns, else its own
 * name (case-insensitive); NULL for a column kallad does not read. */
static char *header_column(const struct config *cfg, const char *header)
{
	char *h = xstrdup(header), *name = str_trim(h), *found = NULL;

	if (cfg->csv_columns) {
		char *copy = xstrdup(cfg->csv_columns), *save = NULL;

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
	}
	if (!found && config_csv_column(name))
		found = xstrdup(name);
	free(h);
	return found;
}

/* Maps names[i] to its index in the header row (-1: absent); false with
 * a line in errs naming the required columns missing. */
static bool map_header(const struct config *cfg, const struct table *t, const char *const *names,
		       size_t n, size_t required, int *idx, struct errlist *errs)
{
	const struct record *h = &t->rec[0];
	struct strbuf missing;
	bool ok;

	for (size_t i = 0; i < n; i++)
		idx[i] = -1;
	for (size_t c = 0; c < h->n; c++) {
		char *col = header_column(cfg, h->v[c]);

		for (size_t i = 0; col && i < n; i++)
			if (idx[i] < 0 && strcasecmp(col, names[i]) == 0)
				idx[i] = (int)c;
		free(col);
	}
	sb_init(&missing);
	for (size_t i = 0; i < n; i++)
		if ((required >> i & 1) && idx[i] < 0)
			sb_addf(&missing, "%s%s", missing.len ? ", " : "", names[i]);
	ok = missing.len == 0;
	if (!ok)
		errlist_add(errs,
			    "%s: line %ld: the header row has no column for %s (map yours with [registrations] columns = HEADER:COLUMN, ...)",
			    t->path, h->row, missing.buf);
	sb_free(&missing);
	return ok;
}

static struct reg_field field_at(const struct record *r, int idx)
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

static bool record_blank(const struct record *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i][strspn(r->v[i], " \t\r\n")] != '\0')
			return false;
	return true;
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

static bool load_participants(const struct config *cfg, struct registrations *reg,
			      struct rowmsgs *msgs, struct errlist *warnings, struct errlist *errs)
{
	struct table t;
	int idx[PC_N];
	struct indexed *all = NULL;
	size_t n = 0, cap = 0;

	if (!read_table(cfg->registrations, &t, warnings, errs))
		return false;
	if (!map_header(cfg, &t, reg_participant_columns, PC_N,
			1u << PC_EMAIL | 1u << PC_NAME | 1u << PC_STATUS, idx, errs)) {
		table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct reg_field f[PC_N];
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct participant p;

		if (record_blank(&t.rec[r]))
			continue;
		for (int i = 0; i < PC_N; i++)
			f[i] = field_at(&t.rec[r], idx[i]);
		if (!reg_row_participant(f, reg->default_language, warn_row, &rc, &p)) {
			char *email = reg_row_text(&f[PC_EMAIL]);

			reg->n_skipped_participants++;
			reg->n_skipped_rows++;
			reg_note_unreadable(reg, email);
			free(email);
			continue;
		}
		all = xgrow(all, &cap, n, sizeof(*all));
		all[n++] = (struct indexed){p, t.rec[r].row};
	}
	table_free(&t);
	if (n)
		qsort(all, n, sizeof(*all), indexed_cmp);
	reg->participants = xcalloc(n ? n : 1, sizeof(*reg->participants));
	for (size_t i = 0; i < n; i++) {
		if (reg->n_participants &&
		    strcasecmp(reg->participants[reg->n_participants - 1].email, all[i].p.email) == 0) {
			long first = 0;

			/* Duplicates before this one are cleared already. */
			for (size_t k = i; k-- > 0;)
				if (all[k].p.email && strcasecmp(all[k].p.email, all[i].p.email) == 0)
					first = all[k].row;
			msg_add(msgs, all[i].row,
				xasprintf("%s: line %ld (%s): duplicate of line %ld, skipped", t.path,
					  all[i].row, all[i].p.email, first));
			reg_participant_clear(&all[i].p);
			reg->n_skipped_participants++;
			reg->n_skipped_rows++;
			continue;
		}
		reg->by_status[all[i].p.status]++;
		reg->participants[reg->n_participants++] = all[i].p;
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
	struct table t;
	int idx[2];
	size_t cap = 0;

	if (!read_table(cfg->csv_absences, &t, warnings, errs))
		return false;
	if (!map_header(cfg, &t, names, 2, 3, idx, errs)) {
		table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct reg_field fe = field_at(&t.rec[r], idx[0]), fs = field_at(&t.rec[r], idx[1]);
		struct absence a = {reg_row_text(&fe), reg_row_text(&fs), NULL};

		if (record_blank(&t.rec[r])) {
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
	table_free(&t);
	if (reg->n_absences)
		qsort(reg->absences, reg->n_absences, sizeof(*reg->absences), absence_cmp);
	return true;
}

static bool load_attachments(const struct config *cfg, struct registrations *reg,
			     struct rowmsgs *msgs, struct errlist *warnings, struct errlist *errs)
{
	static const char *const names[] = {"email", "message", "path"};
	struct table t;
	int idx[3];
	size_t cap = 0;

	if (!read_table(cfg->csv_attachments, &t, warnings, errs))
		return false;
	if (!map_header(cfg, &t, names, 3, 7, idx, errs)) {
		table_free(&t);
		return false;
	}
	for (size_t r = 1; r < t.n; r++) {
		struct row_ctx rc = {t.path, t.rec[r].row, msgs};
		struct reg_field f[3];
		struct attachment a;

		for (int i = 0; i < 3; i++)
			f[i] = field_at(&t.rec[r], idx[i]);
		a = (struct attachment){reg_row_text(&f[0]), reg_row_text(&f[1]), reg_row_text(&f[2])};
		if (record_blank(&t.rec[r])) {
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
	table_free(&t);
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
