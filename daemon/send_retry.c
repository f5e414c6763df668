/* send_retry.c: retryable rows (transient, unknown) that the planner no
 * longer makes are given up after a whole pass, with why. */
#include "send_internal.h"
#include "describe.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The field n from the end (0: the last) of a delivery key, into buf:
 * from the end, because an address or a UID may hold a "|" too. */
void key_field_from_end(const char *key, int n, char *buf, size_t len)
{
	const char *end = key + strlen(key), *p = end;

	for (;;) {
		const char *start = p;
		while (start > key && start[-1] != '|')
			start--;
		if (n-- == 0) {
			snprintf(buf, len, "%.*s", (int)(p - start), start);
			return;
		}
		if (start == key) {
			snprintf(buf, len, "%s", "");
			return;
		}
		p = start - 1;
	}
}

/* A --send-now is recorded under the rule name "manual" (reserved). */
bool is_manual(const struct delivery_row *row)
{
	return str_eq(row->rule, "manual");
}

static void collect_retry(const struct delivery_row *row, void *arg)
{
	struct retry_set *r = arg;

	if (is_manual(row))
		return; /* no rule makes these: retried from the ledger */
	r->keys = xgrow(r->keys, &r->cap, r->n, sizeof(*r->keys));
	r->keys[r->n++] = xstrdup(row->key);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void retry_begin(struct sender *s)
{
	struct retry_set *r = &s->retry;

	state_delivery_each(s->st, DS_TRANSIENT, collect_retry, r);
	state_delivery_each(s->st, DS_UNKNOWN, collect_retry, r);
	if (r->n)
		qsort(r->keys, r->n, sizeof(*r->keys), key_cmp);
	r->seen = xcalloc(r->n ? r->n : 1, sizeof(*r->seen));
}

/* A retryable row stays only while the planner still means to send it. */
void retry_seen(struct sender *s, const struct delivery *d)
{
	struct retry_set *r = &s->retry;
	const char *key = d->key;
	char **hit;

	if (!r->n || (d->skip && strcmp(d->skip, "held") != 0 && !superseded_waits(s, d)))
		return;
	hit = bsearch(&key, r->keys, r->n, sizeof(*r->keys), key_cmp);
	if (hit)
		r->seen[hit - r->keys] = true;
}

/* A notice (invite, update, cancel) follows the participant's state and
 * may be needed again after a later change: it is forgotten, not skipped
 * for good. One that may have arrived (unknown), a cancel too, leaves
 * their calendar not known: what it should hold goes again above it (a
 * cancel if they no longer attend, else an update), whichever way the
 * unknown one went. A rule's delivery is skipped with why. */
void retry_give_up(struct sender *s, const struct delivery_row *row)
{
	char *why = xasprintf("gave up: no longer planned (last: %s)", row->detail ? row->detail : "-");

	if (str_eq(row->rule, "-")) {
		if (row->state == DS_UNKNOWN) {
			char seq[16];

			key_field_from_end(row->key, 0, seq, sizeof(seq));
			state_attendance_unknown(s->st, row->email, row->target, atoi(seq));
		}
		state_delivery_forget(s->st, row->key);
	} else {
		state_delivery_mark(s->st, row->key, DS_SKIPPED, why, 0, s->now);
		state_delivery_unlink(s->st, row->key);
	}
	describe_log_row(s->pg->cal, LOG_WARNING, row, why);
	free(why);
}

/* After a whole pass: what was not planned again (the participant
 * cancelled, the session began or changed) is given up, with why. */
void retry_end(struct sender *s, bool complete)
{
	struct retry_set *r = &s->retry;

	for (size_t i = 0; i < r->n; i++) {
		struct delivery_row row;

		if (complete && !r->seen[i] && state_delivery_get(s->st, r->keys[i], &row)) {
			if (row.state == DS_TRANSIENT || row.state == DS_UNKNOWN)
				retry_give_up(s, &row);
			state_row_free(&row);
		}
		free(r->keys[i]);
	}
	free(r->keys);
	free(r->seen);
	memset(r, 0, sizeof(*r));
}
