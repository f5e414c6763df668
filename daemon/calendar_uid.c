/* calendar_uid.c: one UID, one item (calendar_internal.h): UIDs key
 * deliveries and state (INTEROP I6). */
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

/* Removes the i-th item (as item_at counts). */
static void drop_item(struct calendar *cal, size_t i)
{
	if (i < cal->n_sessions) {
		cal_session_clear(&cal->sessions[i]);
		memmove(&cal->sessions[i], &cal->sessions[i + 1],
			(cal->n_sessions - i - 1) * sizeof(*cal->sessions));
		cal->n_sessions--;
		return;
	}
	i -= cal->n_sessions;
	cal_deadline_clear(&cal->deadlines[i]);
	memmove(&cal->deadlines[i], &cal->deadlines[i + 1],
		(cal->n_deadlines - i - 1) * sizeof(*cal->deadlines));
	cal->n_deadlines--;
}

void cal_check_unique(struct loader *ld)
{
	for (size_t i = 0; i < ld->cal->n_sessions + ld->cal->n_deadlines; i++) {
		char *label, *other_label;
		int line, first;
		const char *uid = item_at(ld->cal, i, &line, &label);
		bool dup = false;

		for (size_t j = 0; j < i && !dup; j++) {
			const char *other = item_at(ld->cal, j, &first, &other_label);

			if ((dup = strcmp(uid, other) == 0))
				errlist_add_at(ld->warnings, ld->path, line,
					       "%s: duplicate UID \"%s\", already used by %s at line %d%s",
					       label, uid, other_label, first,
					       ld->warnings == ld->file_errs ? "" : "; skipped");
			free(other_label);
		}
		free(label);
		if (dup && ld->warnings != ld->file_errs)
			drop_item(ld->cal, i--);
	}
}
