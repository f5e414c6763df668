/* csv_table.c: a CSV file read whole into records (csv_table.h). A
 * record is named by the line of the file it starts on: the parser is fed
 * a line at a time. */
#include "csv_table.h"

#include "reg_row.h"

#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A field with a line break in it holds what look like rows after it:
 * the separator and an @ (a quote typed by mistake at a cell's start
 * runs on to the next quoted cell, taking the rows between for text). */
static bool looks_like_rows(const char *s, size_t len, unsigned char sep)
{
	const char *nl = memchr(s, '\n', len), *cr = memchr(s, '\r', len), *brk;
	size_t rest;

	brk = !nl ? cr : !cr ? nl : nl < cr ? nl : cr;
	if (!brk)
		return false;
	rest = len - (size_t)(brk - s);
	return memchr(brk, sep, rest) && memchr(brk, '@', rest);
}

static void on_field(void *data, size_t len, void *arg)
{
	struct csv_table *t = arg;
	struct csv_record *r = &t->cur;

	if (!r->swallowed && data && looks_like_rows(data, len, t->sep))
		r->swallowed = t->field_line;

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->len = xrealloc(r->len, (r->n + 1) * sizeof(*r->len));
	r->v[r->n] = xstrndup(data ? data : "", len);
	r->len[r->n++] = len;
	t->field_line = t->line; /* the next one begins after this separator */
}

static void on_record(int c, void *arg)
{
	struct csv_table *t = arg;

	(void)c;
	/* A line of spaces alone, if the parser takes it as a record. */
	t->cur.row = t->start ? t->start : t->line;
	t->start = 0;
	t->rec = xgrow(t->rec, &t->cap, t->n, sizeof(*t->rec));
	t->rec[t->n++] = t->cur;
	t->cur = (struct csv_record){0};
}

static void record_free(struct csv_record *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	free(r->len);
}

void csv_table_free(struct csv_table *t)
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
	out = reg_row_from_1252(body, n, len);
	if (!out) {
		errlist_add(warnings, "%s: neither UTF-8 nor Windows-1252; read as it is", path);
		out = xstrndup(body, n);
		*len = n;
	}
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

/* A file caught while being written, or a last row saved short by hand:
 * its last line has no line break and fewer fields than the header. A
 * last line without its break but all its fields is read as it is; one
 * with a NUL byte is an unusable row of its own (a crash's NUL-filled
 * tail). */
static bool last_cut(const struct csv_table *t, const char *text, size_t len)
{
	const struct csv_record *last = &t->rec[t->n - 1];

	return t->n >= 2 && text[len - 1] != '\n' && text[len - 1] != '\r' &&
	       last->n < t->rec[0].n && !csv_record_blank(last) && !csv_record_nul(last);
}

bool csv_table_whole(const struct csv_table *t, struct errlist *errs)
{
	const struct csv_record *last = &t->rec[t->n - 1];

	for (size_t i = 0; i < t->n; i++) {
		if (!t->rec[i].swallowed)
			continue;
		errlist_add(errs, "%s: line %ld: a quote opened here " CSV_SWALLOWED
			    ": the file is not read", t->path, t->rec[i].swallowed);
		return false;
	}
	if (!t->last_cut)
		return true;
	errlist_add(errs,
		    "%s: line %ld: the last row ends without a line break after %zu of the "
		    "header's %zu fields: the file is still being written (or was cut short) and "
		    "is not read until it is whole",
		    t->path, last->row, last->n, t->rec[0].n);
	return false;
}

/* Feeds the parser a line at a time, so that each record knows the line
 * it starts on: the first line after the last record with anything but
 * spaces on it (the parser skips blank lines without a word). False (t->line
 * the line) on a parse error. */
static bool parse_lines(struct csv_parser *p, const char *text, size_t len, struct csv_table *t)
{
	for (size_t i = 0, end; i < len; i = end) {
		end = line_end(text, len, i);
		t->line++;
		if (!t->start && strspn(text + i, " \t\r\n") < end - i)
			t->start = t->field_line = t->line;
		if (csv_parse(p, text + i, end - i, on_field, on_record, t) != end - i)
			return false;
	}
	return true;
}

/* csv_fini, failing on a quote still open at the end (STRICT_FINI, which
 * takes STRICT), rather than making it a field that holds the rest of the
 * file. Strict for that alone: a stray quote inside a field is the row's
 * problem, not the file's. */
static bool fini_strict(struct csv_parser *p, struct csv_table *t)
{
	csv_set_opts(p, (unsigned char)(csv_get_opts(p) | CSV_STRICT));
	return csv_fini(p, on_field, on_record, t) == 0;
}

bool csv_table_read(const char *path, struct csv_table *t, struct errlist *warnings,
		    struct errlist *errs)
{
	struct csv_parser p;
	size_t len;
	char *raw = read_file(path, &len), *text;
	bool ok = true;

	*t = (struct csv_table){.path = path};
	if (!raw) {
		errlist_add(errs, "%s: cannot read: %s", path, strerror(errno));
		return false;
	}
	/* Excel's "Unicode text" and some exports: not something to guess at. */
	if (len >= 2 && (memcmp(raw, "\xFF\xFE", 2) == 0 || memcmp(raw, "\xFE\xFF", 2) == 0)) {
		errlist_add(errs, "%s: UTF-16 text (Excel's \"Unicode text\"), not CSV: save the sheet "
			    "as \"CSV UTF-8\" or \"CSV\"; the file is not read", path);
		free(raw);
		return false;
	}
	text = decode(path, raw, &len, warnings);
	free(raw);
	if (csv_init(&p, CSV_APPEND_NULL | CSV_STRICT_FINI) != 0) {
		errlist_add(errs, "%s: cannot start the CSV parser", path);
		free(text);
		return false;
	}
	t->sep = separator(text, len);
	csv_set_delim(&p, t->sep);
	if (!parse_lines(&p, text, len, t)) {
		errlist_add(errs, "%s: line %ld: %s", path, t->line, csv_strerror(csv_error(&p)));
		ok = false;
	} else if (!fini_strict(&p, t)) {
		errlist_add(errs, "%s: line %ld: a quote opened here is never closed: the file is "
			    "not read", path, t->field_line);
		ok = false;
	} else if (t->n == 0) {
		errlist_add(errs, "%s: empty: no header row", path);
		ok = false;
	} else {
		t->last_cut = last_cut(t, text, len);
	}
	csv_free(&p);
	free(text);
	if (!ok) {
		csv_table_free(t);
		*t = (struct csv_table){.path = path};
	}
	return ok;
}

bool csv_record_blank(const struct csv_record *r)
{
	/* By length: a NUL is no end of the field (a crash's NUL-filled
	 * row is none of the blank ones). */
	for (size_t i = 0; i < r->n; i++)
		if (strspn(r->v[i], " \t\r\n") != r->len[i])
			return false;
	return true;
}

bool csv_record_nul(const struct csv_record *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->v[i]) != r->len[i])
			return true;
	return false;
}
