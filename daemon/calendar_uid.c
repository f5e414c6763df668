/* calendar_uid.c: one UID, one item (calendar_internal.h). UIDs key
 * deliveries and state (INTEROP I6): two events with one UID that differ
 * cannot both be the session, and which one is meant is not in the file
 * (Outlook's copy of a meeting keeps the UID of the original; a swap of
 * their order in the next export must not move anyone's session), unless
 * SEQUENCE, which orders the revisions of one UID, names one. */
#include "calendar_internal.h"

#include <stdlib.h>
#include <string.h>

/* The UID, line and label of the i-th item, sessions first. */
static const char *item_at(const struct calendar *cal, size_t i, int *line, char **label)
{
	if (i < cal->n_sessions) {
		*line = cal->sessions[i].line;
		*label = xasprintf("VEVENT \"%s\"", cal->sessions[i].summary);
		return cal->sessions[i].uid;
	}
	i -= cal->n_sessions;
	*line = cal->deadlines[i].line;
	*label = xasprintf("deadline \"%s\"", cal->deadlines[i].summary);
	return cal->deadlines[i].uid;
}

static void reject_duplicates(struct loader *ld)
{
	for (size_t i = 0; i < ld->cal->n_sessions + ld->cal->n_deadlines; i++) {
		char *label, *other_label;
		int line, first;
		const char *uid = item_at(ld->cal, i, &line, &label);
		bool dup = false;

		for (size_t j = 0; j < i && !dup; j++) {
			const char *other = item_at(ld->cal, j, &first, &other_label);

			if ((dup = strcmp(uid, other) == 0))
				errlist_add_at(ld->errs, ld->path, line,
					       "%s: duplicate UID \"%s\", already used by %s at line %d",
					       label, uid, other_label, first);
			free(other_label);
		}
		free(label);
	}
}

static bool session_same(const struct session *a, const struct session *b)
{
	return a->start == b->start && a->end == b->end && a->sequence == b->sequence &&
	       a->cancelled == b->cancelled && a->end_is_date == b->end_is_date &&
	       a->end_date == b->end_date &&
	       str_eq(a->summary, b->summary) && str_eq(a->location, b->location) &&
	       str_eq(a->description, b->description) && str_eq(a->categories, b->categories);
}

static bool deadline_same(const struct deadline *a, const struct deadline *b)
{
	return a->due == b->due && a->date_only == b->date_only &&
	       str_eq(a->summary, b->summary) && str_eq(a->description, b->description) &&
	       str_eq(a->categories, b->categories);
}

/* True if every session and deadline read with this UID says the same. */
static bool copies_same(const struct calendar *cal, const char *uid)
{
	const struct session *s = NULL;
	const struct deadline *d = NULL;

	for (size_t i = 0; i < cal->n_sessions; i++) {
		if (strcmp(cal->sessions[i].uid, uid) != 0)
			continue;
		if (s && !session_same(s, &cal->sessions[i]))
			return false;
		s = &cal->sessions[i];
	}
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		if (strcmp(cal->deadlines[i].uid, uid) != 0)
			continue;
		if (s || (d && !deadline_same(d, &cal->deadlines[i])))
			return false;
		d = &cal->deadlines[i];
	}
	return true;
}

/* Removes the sessions and deadlines with this UID but the one whose
 * BEGIN is at line keep (0: all of them). */
static void drop_copies(struct calendar *cal, const char *uid, int keep)
{
	for (size_t i = 0; i < cal->n_sessions;) {
		if (strcmp(cal->sessions[i].uid, uid) != 0 || cal->sessions[i].line == keep) {
			i++;
			continue;
		}
		cal_session_clear(&cal->sessions[i]);
		memmove(&cal->sessions[i], &cal->sessions[i + 1],
			(cal->n_sessions - i - 1) * sizeof(*cal->sessions));
		cal->n_sessions--;
	}
	for (size_t i = 0; i < cal->n_deadlines;) {
		if (strcmp(cal->deadlines[i].uid, uid) != 0 || cal->deadlines[i].line == keep) {
			i++;
			continue;
		}
		cal_deadline_clear(&cal->deadlines[i]);
		memmove(&cal->deadlines[i], &cal->deadlines[i + 1],
			(cal->n_deadlines - i - 1) * sizeof(*cal->deadlines));
		cal->n_deadlines--;
	}
}

/* Whether the copies read from items a and b (of one UID and kind) say
 * the same. */
static bool seen_same(const struct calendar *cal, const struct seen *a, const struct seen *b)
{
	const struct session *sa = NULL, *sb = NULL;
	const struct deadline *da = NULL, *db = NULL;

	for (size_t i = 0; i < cal->n_sessions; i++) {
		const struct session *s = &cal->sessions[i];
		if (strcmp(s->uid, a->uid) == 0 && s->line == a->line)
			sa = s;
		if (strcmp(s->uid, b->uid) == 0 && s->line == b->line)
			sb = s;
	}
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		const struct deadline *d = &cal->deadlines[i];
		if (strcmp(d->uid, a->uid) == 0 && d->line == a->line)
			da = d;
		if (strcmp(d->uid, b->uid) == 0 && d->line == b->line)
			db = d;
	}
	if (sa && sb)
		return session_same(sa, sb);
	return da && db && deadline_same(da, db);
}

/* Of copies g[0..n) that all read, as one kind, and differ: the one at
 * the highest SEQUENCE, if it is the only one there (or the others there
 * say the same). RFC 5545 §3.8.7.4: SEQUENCE orders the revisions of one
 * UID, so a moved copy with a higher one is the edit, whatever the file
 * order. NULL when SEQUENCE does not tell. */
static const struct seen *latest_revision(const struct calendar *cal, struct seen **g, size_t n)
{
	const struct seen *top = g[0];

	for (size_t i = 0; i < n; i++) {
		if (!g[i]->used || g[i]->sequence < 0 || g[i]->deadline != g[0]->deadline)
			return NULL;
		if (g[i]->sequence > top->sequence)
			top = g[i];
	}
	for (size_t i = 0; i < n; i++)
		if (g[i] != top && g[i]->sequence == top->sequence && !seen_same(cal, top, g[i]))
			return NULL;
	return top;
}

/* Reads the copy top of g[0..n) alone, naming each other. */
static void take_latest(struct loader *ld, struct seen **g, size_t n, const struct seen *top)
{
	for (size_t i = 0; i < n; i++) {
		if (g[i] == top)
			continue;
		if (g[i]->sequence == top->sequence)
			errlist_add_at(ld->warnings, ld->path, g[i]->line,
				       "%s: the same event as line %d again: read once (UID %s)",
				       g[i]->label, top->line, top->uid);
		else
			errlist_add_at(ld->warnings, ld->path, g[i]->line,
				       "%s: UID \"%s\" is also the UID of %s at line %d, a later revision "
				       "(SEQUENCE %d): this one (SEQUENCE %d) is not read (UID %s)",
				       g[i]->label, top->uid, top->label, top->line, top->sequence,
				       g[i]->sequence, top->uid);
	}
	drop_copies(ld->cal, top->uid, top->line);
}

/* The items g[0..n) of one UID, in file order. Recurring ones (a series
 * and its RECURRENCE-ID overrides share a UID) are skipped as such and
 * named already. */
static void resolve_uid(struct loader *ld, struct seen **g, size_t n)
{
	const char *uid = g[0]->uid;
	const struct seen *top;
	size_t used = 0;

	for (size_t i = 0; i < n; i++)
		used += g[i]->used;
	if (used == n && copies_same(ld->cal, uid)) {
		for (size_t i = 1; i < n; i++)
			errlist_add_at(ld->warnings, ld->path, g[i]->line,
				       "%s: the same event as line %d again: read once (UID %s)",
				       g[i]->label, g[0]->line, uid);
		drop_copies(ld->cal, uid, g[0]->line);
		return;
	}
	if ((top = latest_revision(ld->cal, g, n))) {
		take_latest(ld, g, n, top);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct seen *other = g[i == 0 ? 1 : 0];

		if (!g[i]->used)
			continue; /* skipped already, with its reason */
		errlist_add_at(ld->warnings, ld->path, g[i]->line,
			       "%s: UID \"%s\" is also the UID of %s at line %d, which %s: which one is "
			       "meant cannot be told; skipped (UID %s)",
			       g[i]->label, uid, other->label, other->line,
			       other->used ? "differs" : "cannot be read", uid);
	}
	drop_copies(ld->cal, uid, 0);
	calendar_mark_unreadable(ld->cal, uid);
}

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = *(struct seen *const *)a, *y = *(struct seen *const *)b;
	int c = strcmp(x->uid, y->uid);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

void cal_check_unique(struct loader *ld)
{
	struct seen **v = xcalloc(ld->n_seen + 1, sizeof(*v));
	size_t n = 0;

	if (ld->warnings == ld->file_errs)
		reject_duplicates(ld);
	for (size_t i = 0; i < ld->n_seen; i++)
		if (!ld->seen[i].recurring)
			v[n++] = &ld->seen[i];
	if (n)
		qsort(v, n, sizeof(*v), seen_cmp);
	for (size_t i = 0, j; ld->warnings != ld->file_errs && i < n; i = j) {
		for (j = i + 1; j < n && strcmp(v[j]->uid, v[i]->uid) == 0; j++)
			;
		if (j - i > 1)
			resolve_uid(ld, &v[i], j - i);
	}
	free(v);
	for (size_t i = 0; i < ld->n_seen; i++) {
		free(ld->seen[i].uid);
		free(ld->seen[i].label);
	}
	free(ld->seen);
	ld->seen = NULL;
	ld->n_seen = ld->cap_seen = 0;
}
