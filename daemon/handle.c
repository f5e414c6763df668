#include "handle.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Sessions and deadlines alike: what a handle is matched against. */
struct item {
	const char *uid, *title;
	time_t when;
	size_t index; /* in the calendar's array */
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	return strcmp(x->uid, y->uid);
}

/* Items in time order (start, then UID), so positions do not depend on
 * the order the calendar (or the sessions added for removed ones) holds. */
static struct item *sessions_in_order(const struct calendar *cal)
{
	struct item *v = xcalloc(cal->n_sessions + 1, sizeof(*v));

	for (size_t i = 0; i < cal->n_sessions; i++)
		v[i] = (struct item){cal->sessions[i].uid, cal->sessions[i].summary,
				     cal->sessions[i].start, i};
	qsort(v, cal->n_sessions, sizeof(*v), item_cmp);
	return v;
}

static struct item *deadlines_in_order(const struct calendar *cal)
{
	struct item *v = xcalloc(cal->n_deadlines + 1, sizeof(*v));

	for (size_t i = 0; i < cal->n_deadlines; i++)
		v[i] = (struct item){cal->deadlines[i].uid, cal->deadlines[i].summary,
				     cal->deadlines[i].due, i};
	qsort(v, cal->n_deadlines, sizeof(*v), item_cmp);
	return v;
}

/* One character folded for comparison: ASCII and the Latin-1 letters
 * (Å, Ä, Ö, É, ...) that Swedish and English titles hold. Advances *p. */
static unsigned fold_next(const unsigned char **p)
{
	const unsigned char *s = *p;

	if (s[0] >= 'A' && s[0] <= 'Z') {
		(*p)++;
		return s[0] + 32u;
	}
	if (s[0] == 0xc3 && s[1] >= 0x80 && s[1] <= 0x9e && s[1] != 0x97) {
		*p += 2;
		return 0xc300u | (s[1] + 32u);
	}
	if (s[0] == 0xc3 && s[1]) {
		*p += 2;
		return 0xc300u | s[1];
	}
	(*p)++;
	return s[0];
}

/* True if prefix starts text, case folded; with whole, if it is all of it. */
static bool fold_prefix(const char *text, const char *prefix, bool whole)
{
	const unsigned char *t = (const unsigned char *)(text ? text : "");
	const unsigned char *p = (const unsigned char *)prefix;

	while (*p) {
		if (!*t || fold_next(&t) != fold_next(&p))
			return false;
	}
	return !whole || !*t;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void list_items(struct strbuf *sb, const struct item *v, size_t n, const bool *pick)
{
	for (size_t i = 0; i < n; i++)
		if (!pick || pick[i])
			sb_addf(sb, "\n  %zu  %s  %s", i + 1, v[i].uid, v[i].title ? v[i].title : "");
}

/* The index into the calendar's array of the item arg names, or -1 with
 * *err. `what` is "session" or "deadline". */
static long find(const struct item *v, size_t n, const char *arg, const char *what, char **err)
{
	bool *pick;
	size_t hits = 0, exact_titles = 0, last = 0, last_exact = 0;
	struct strbuf sb;
	long found = -1;

	*err = NULL;
	for (size_t i = 0; i < n; i++)
		if (str_eq(v[i].uid, arg))
			return (long)v[i].index;
	if (all_digits(arg)) {
		long pos = strlen(arg) < 9 ? atol(arg) : 0;

		if (pos >= 1 && (size_t)pos <= n)
			return (long)v[pos - 1].index;
		*err = xasprintf("no %s %s: the calendar has %zu %s%s%s", what, arg, n, what,
				 n == 1 ? "" : "s", n ? " (positions from 1 in time order)" : "");
		return -1;
	}
	pick = xcalloc(n + 1, sizeof(*pick));
	for (size_t i = 0; i < n; i++) {
		if (fold_prefix(v[i].title, arg, true)) {
			exact_titles++;
			last_exact = i;
		}
		if (fold_prefix(v[i].uid, arg, false) || fold_prefix(v[i].title, arg, false)) {
			pick[i] = true;
			hits++;
			last = i;
		}
	}
	if (exact_titles == 1) {
		found = (long)v[last_exact].index;
	} else if (hits == 1) {
		found = (long)v[last].index;
	} else {
		sb_init(&sb);
		if (hits == 0) {
			sb_addf(&sb, "no %s matches \"%s\" (a position, or the start of a UID or "
				     "title); the %ss are:", what, arg, what);
			list_items(&sb, v, n, NULL);
		} else {
			sb_addf(&sb, "\"%s\" matches %zu %ss; say which by more of the UID or title, "
				     "or by position:", arg, hits, what);
			list_items(&sb, v, n, pick);
		}
		*err = sb_take(&sb);
	}
	free(pick);
	return found;
}

const struct session *handle_session(const struct calendar *cal, const char *arg, char **err)
{
	struct item *v = sessions_in_order(cal);
	long i = find(v, cal->n_sessions, arg, "session", err);

	free(v);
	return i < 0 ? NULL : &cal->sessions[i];
}

const struct deadline *handle_deadline(const struct calendar *cal, const char *arg, char **err)
{
	struct item *v = deadlines_in_order(cal);
	long i = find(v, cal->n_deadlines, arg, "deadline", err);

	free(v);
	return i < 0 ? NULL : &cal->deadlines[i];
}

static int position(struct item *v, size_t n, size_t index)
{
	int pos = 0;

	for (size_t i = 0; i < n && !pos; i++)
		if (v[i].index == index)
			pos = (int)i + 1;
	free(v);
	return pos;
}

int handle_session_position(const struct calendar *cal, const struct session *s)
{
	return position(sessions_in_order(cal), cal->n_sessions, (size_t)(s - cal->sessions));
}

int handle_deadline_position(const struct calendar *cal, const struct deadline *d)
{
	return position(deadlines_in_order(cal), cal->n_deadlines, (size_t)(d - cal->deadlines));
}

static int *positions(struct item *v, size_t n)
{
	int *pos = xcalloc(n + 1, sizeof(*pos));

	for (size_t i = 0; i < n; i++)
		pos[v[i].index] = (int)i + 1;
	free(v);
	return pos;
}

int *handle_session_positions(const struct calendar *cal)
{
	return positions(sessions_in_order(cal), cal->n_sessions);
}

int *handle_deadline_positions(const struct calendar *cal)
{
	return positions(deadlines_in_order(cal), cal->n_deadlines);
}
