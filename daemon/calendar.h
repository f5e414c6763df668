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
	int line;          /* line of its BEGIN:VEVENT in the file */
};

struct deadline {
	char *uid, *summary, *description, *categories;
	time_t due;     /* the instant it passes */
	bool date_only; /* DUE;VALUE=DATE: due is the end of that local day */
	int revision;   /* times kallad saw it move (changes_sync): its keys' SEQUENCE */
	int line;
};

struct calendar {
	struct session *sessions; /* sorted by start */
	size_t n_sessions;
	struct deadline *deadlines; /* sorted by due */
	size_t n_deadlines;
};

/* Parses path. A calendar that does not parse, or whose sessions or
 * deadlines lack a required property or hold an unknown TZID, is rejected
 * as a whole: NULL, with each problem in errs as "file:line: what". The
 * caller frees the result with calendar_free(). Date-only deadlines are
 * resolved in the current programme zone (tz_set). */
struct calendar *calendar_load(const char *path, struct errlist *errs);
void calendar_free(struct calendar *cal);

const struct session *calendar_session(const struct calendar *cal, const char *uid);
const struct deadline *calendar_deadline(const struct calendar *cal, const char *uid);
/* True if the comma-separated list holds name (ASCII case-insensitive). */
bool calendar_has_category(const char *categories, const char *name);

#endif
