#include "plan_table.h"

#include "datefmt.h"
#include "describe.h"
#include "handle.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

enum { COL_WHEN, COL_MESSAGE, COL_TO, COL_FOR, COL_HANDLE, COL_WHY, N_COLS };

static const char *const heads[N_COLS] = {"WHEN", "MESSAGE", "TO", "FOR", "HANDLE", "WHY"};
/* The widest a column gets, in characters: one long title or name must
 * not push every other line off the screen. The last column is not
 * padded, so it needs no cap. */
static const size_t caps[N_COLS] = {24, 24, 32, 56, 14, 0};

/* Between the line of SPEC and the columns, and between columns: bytes
 * that the columns never hold (sanitised away) and the line never ends with. */
#define LINE_END '\x1e'
#define COL_SEP '\x1f'

struct plan_table {
	const struct calendar *cal;
	int *session_pos, *deadline_pos; /* by index in cal's arrays */
	size_t n_sessions, n_deadlines;
	size_t n_cols;
	size_t width[N_COLS];
	size_t rows;
};

static size_t chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

struct plan_table *plan_table_new(bool explain)
{
	struct plan_table *t = xcalloc(1, sizeof(*t));

	t->n_cols = explain ? N_COLS : N_COLS - 1;
	for (size_t c = 0; c < t->n_cols; c++)
		t->width[c] = strlen(heads[c]);
	return t;
}

/* Adds one column to sb: control characters (a tab or newline in a
 * title) as spaces, cut at its cap; widens the column to fit. */
static void add_col(struct plan_table *t, struct strbuf *sb, size_t c, const char *text)
{
	size_t total = chars(text, strlen(text));
	size_t keep = caps[c] && total > caps[c] ? caps[c] - 1 : total;
	size_t n = 0;

	if (c > 0)
		sb_addc(sb, COL_SEP);
	for (size_t i = 0; text[i]; i++) {
		unsigned char b = (unsigned char)text[i];

		if ((b & 0xc0) != 0x80 && n++ == keep)
			break;
		sb_addc(sb, b < 0x20 || b == 0x7f ? ' ' : (char)b);
	}
	if (keep < total)
		sb_add(sb, "…");
	if (keep + (keep < total) > t->width[c])
		t->width[c] = keep + (keep < total);
}

static char *handle_of(const struct plan_table *t, const struct delivery *d)
{
	if (d->session && d->session >= t->cal->sessions &&
	    d->session < t->cal->sessions + t->cal->n_sessions)
		return xasprintf("--session %d", t->session_pos[d->session - t->cal->sessions]);
	if (d->deadline && d->deadline >= t->cal->deadlines &&
	    d->deadline < t->cal->deadlines + t->cal->n_deadlines)
		return xasprintf("--deadline %d", t->deadline_pos[d->deadline - t->cal->deadlines]);
	return xstrdup("-");
}

/* The positions --session N and --deadline N take, in cal. */
static void number(struct plan_table *t, const struct calendar *cal)
{
	if (t->cal == cal && t->n_sessions == cal->n_sessions && t->n_deadlines == cal->n_deadlines)
		return;
	free(t->session_pos);
	free(t->deadline_pos);
	t->cal = cal;
	t->n_sessions = cal->n_sessions;
	t->n_deadlines = cal->n_deadlines;
	t->session_pos = handle_session_positions(cal);
	t->deadline_pos = handle_deadline_positions(cal);
}

char *plan_table_row(struct plan_table *t, const struct calendar *cal, const struct delivery *d,
		     const char *line, const char *when, const char *why)
{
	char *due = when ? xstrdup(when) : datefmt_brief("en", d->due);
	char *target = d->session ? describe_session(d->session) : describe_deadline(d->deadline);
	char *handle;
	struct strbuf sb;

	number(t, cal);
	handle = handle_of(t, d);

	sb_init(&sb);
	sb_add(&sb, line);
	sb_addc(&sb, LINE_END);
	add_col(t, &sb, COL_WHEN, due);
	add_col(t, &sb, COL_MESSAGE, d->message);
	add_col(t, &sb, COL_TO, !str_empty(d->p->name) ? d->p->name : d->p->email);
	add_col(t, &sb, COL_FOR, target);
	add_col(t, &sb, COL_HANDLE, handle);
	if (t->n_cols > COL_WHY)
		add_col(t, &sb, COL_WHY, why ? why : "");
	t->rows++;
	free(due);
	free(target);
	free(handle);
	return sb_take(&sb);
}

/* Prints the columns of one row, each padded to its width but the last. */
static void put_cols(const struct plan_table *t, const char *cols, FILE *out)
{
	for (size_t c = 0; c < t->n_cols && cols; c++) {
		const char *end = strchr(cols, COL_SEP);
		size_t n = end ? (size_t)(end - cols) : strlen(cols);

		if (c > 0)
			fputs("  ", out);
		fwrite(cols, 1, n, out);
		if (c + 1 < t->n_cols)
			for (size_t w = chars(cols, n); w < t->width[c]; w++)
				fputc(' ', out);
		cols = end ? end + 1 : NULL;
	}
	fputc('\n', out);
}

static void put_row(const char *text, size_t len, void *arg)
{
	void **a = arg;
	const char *cols = memrchr(text, LINE_END, len);

	put_cols(a[0], cols ? cols + 1 : text, a[1]);
}

bool plan_table_write(struct plan_table *t, struct linesort *ls, FILE *out)
{
	void *arg[2] = {t, out};
	struct strbuf head;

	if (t->rows == 0) {
		fputs("nothing planned\n", out);
		return linesort_each(ls, put_row, arg);
	}
	sb_init(&head);
	for (size_t c = 0; c < t->n_cols; c++) {
		if (c > 0)
			sb_addc(&head, COL_SEP);
		sb_add(&head, heads[c]);
	}
	put_cols(t, head.buf, out);
	sb_free(&head);
	return linesort_each(ls, put_row, arg);
}

void plan_table_free(struct plan_table *t)
{
	if (!t)
		return;
	free(t->session_pos);
	free(t->deadline_pos);
	free(t);
}
