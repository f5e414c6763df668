/* calendar.h: the session calendar, RFC 5545, read with libical (SPEC §1.2). */
#ifndef KALLAD_CALENDAR_H
#define KALLAD_CALENDAR_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct session {
	char *uid, *summary, *location, *description, *categories; /* categories comma-joined */
	time_t start, end; /* true instants, whatever zone the file used */
	int sequence;      /* the file's SEQUENCE, 0 when absent */
	bool cancelled;    /* STATUS:CANCELLED */
	bool removal_held; /* gone from the file with too many others: its cancel
			    * waits (changes_sync, the guard against mass vanishing) */
	int line;          /* line of its BEGIN:VEVENT in the file */
	bool kept;         /* unreadable now: this is its last good copy */
	bool end_is_date;  /* DTEND was a date D (calendar_item.c: end is 00:00 on D,
			    * or the end of D when that is not after start) */
	time_t end_date;   /* with end_is_date: 00:00 on D in the programme zone */
};

struct deadline {
	char *uid, *summary, *description, *categories;
	time_t due;     /* the instant it passes */
	bool date_only; /* DUE;VALUE=DATE: due is the end of that local day */
	int revision;   /* times kallad saw it move (changes_sync): its keys' SEQUENCE */
	int line;       /* 0 for a [deadline NAME] of kallad.conf */
	bool kept;      /* unreadable now: this is its last good copy */
};

/* An event outside [programme] sessions-category, not read. */
struct cal_ignored {
	char *uid;   /* NULL when it has none */
	char *label; /* VEVENT "its SUMMARY" */
	int line;    /* of its BEGIN:VEVENT */
	bool cancelled; /* STATUS:CANCELLED: a known session takes it all the same */
};

struct calendar {
	struct session *sessions; /* sorted by start */
	size_t n_sessions;
	struct deadline *deadlines; /* sorted by due */
	size_t n_deadlines;
	/* The UIDs of events and to-dos skipped because they could not be
	 * read: a session or deadline kallad knew by that UID keeps its last
	 * good copy (programme.c). */
	char **unreadable;
	size_t n_unreadable;
	/* The events outside [programme] sessions-category: a session or
	 * deadline kallad knew by one's UID keeps its last good copy
	 * (programme_calendar.c). */
	struct cal_ignored *ignored;
	size_t n_ignored;
};

/* Parses path. A calendar that does not parse, or whose sessions or
 * deadlines lack a required property or hold an unknown TZID, is rejected
 * as a whole: NULL, with each problem in errs as "file:line: what". The
 * caller frees the result with calendar_free(). Date-only deadlines are
 * resolved in the current programme zone (tz_set). */
struct calendar *calendar_load(const char *path, struct errlist *errs);

/* What decides which events are sessions and which deadlines. */
struct calendar_opts {
	/* Only events whose CATEGORIES hold it are sessions; NULL: all. */
	const char *sessions_category;
	/* The events with these UIDs are deadlines ([deadline NAME]). */
	const char *const *deadline_uids;
	size_t n_deadline_uids;
};

/* Reads path as organisers' tools export it: a VEVENT or VTODO kallad
 * cannot use (recurring, no DTSTART, a bad value, ...) is skipped with a
 * line in warnings ("file:line: ...; skipped (UID x)") and its UID listed
 * in cal->unreadable; only a file that does not parse as a whole (or
 * breaks the nesting of BEGIN/END, or holds invalid UTF-8) is rejected,
 * NULL with errs. A VEVENT whose CATEGORIES include "deadline", or whose
 * UID is one of opts->deadline_uids, is a deadline due at its DTSTART (an
 * all-day one at the end of that day). With opts->sessions_category,
 * other events are not sessions (listed in ignored). opts may be NULL. Empty
 * properties ("LOCATION:") count as absent in both readers. */
struct calendar *calendar_read(const char *path, const struct calendar_opts *opts,
			       struct errlist *warnings, struct errlist *errs);
void calendar_free(struct calendar *cal);

/* Adds a copy of s or d (strings duplicated), keeping the order. */
void calendar_add_session(struct calendar *cal, const struct session *s);
void calendar_add_deadline(struct calendar *cal, const struct deadline *d);
bool calendar_is_unreadable(const struct calendar *cal, const char *uid);
/* Lists uid in cal->unreadable (once). */
void calendar_mark_unreadable(struct calendar *cal, const char *uid);
/* Removes the session with this UID, if there is one. */
void calendar_remove_session(struct calendar *cal, const char *uid);

const struct session *calendar_session(const struct calendar *cal, const char *uid);
const struct deadline *calendar_deadline(const struct calendar *cal, const char *uid);
/* True if the comma-separated list holds name (ASCII case-insensitive). */
bool calendar_has_category(const char *categories, const char *name);

#endif
