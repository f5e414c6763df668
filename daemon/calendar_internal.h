/* calendar_internal.h: what the readers of one calendar file share.
 * calendar.c reads the file and answers questions about the result;
 * calendar_item.c makes one VEVENT or VTODO a session or a deadline;
 * calendar_time.c reads its times and zones; calendar_uid.c keeps one
 * UID to one item. */
#ifndef KALLAD_CALENDAR_INTERNAL_H
#define KALLAD_CALENDAR_INTERNAL_H

#include "calendar.h"
#include "calendar_text.h"

#include <libical/ical.h>

/* An item read, used or not: what calendar_uid.c needs to tell copies of
 * one UID apart. */
struct seen {
	char *uid, *label;
	int line;       /* of its BEGIN */
	bool recurring; /* RRULE, RDATE or RECURRENCE-ID: skipped as such */
	bool used;      /* it became a session or deadline */
	bool deadline;  /* read as a deadline, not a session */
	int sequence;   /* its SEQUENCE (0 when absent); -1 when not a number */
};

struct loader {
	const char *path;
	struct errlist *errs;     /* where cal_fail() writes: the file's, or an item's */
	struct errlist *file_errs;
	struct errlist *warnings; /* == file_errs: strict, every problem rejects */
	struct errlist item;      /* the problems of the item being read */
	struct errlist notes;     /* how it was read where it took a guess */
	const struct calendar_opts *opts;
	size_t errs_before;
	struct caltext text;
	size_t next_event, next_todo;
	struct calendar *cal;
	size_t cap_sessions, cap_deadlines, cap_ignored;
	struct seen *seen; /* every item of the file but those outside sessions-category */
	size_t n_seen, cap_seen;
};

/* A problem at line of the file being read, into ld->errs. */
void cal_fail(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* How the item being read was read where the file left a guess: a
 * warning, with its UID, if the item is used. */
void cal_note(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* calendar_item.c: reads the VEVENT or VTODO c (at sp in the text) of
 * vcal into ld->cal, or skips it with its problems as warnings. */
void cal_read_item(struct loader *ld, icalcomponent *vcal, icalcomponent *c,
		   const struct span *sp);
/* Frees what a session or deadline owns. */
void cal_session_clear(struct session *s);
void cal_deadline_clear(struct deadline *d);

/* calendar_time.c: where an item's times are read from. */
struct when {
	icalcomponent *vcal, *comp;
	const struct span *sp;
	const char *label;
};

/* The property kind of w->comp as an instant: a zoned or UTC DATE-TIME;
 * a DATE only when date_only is not NULL (*date_only set, the day in
 * *day). Reports with cal_fail() and returns false otherwise. */
bool cal_read_instant(struct loader *ld, const struct when *w, icalproperty_kind kind,
		      bool *date_only, time_t *out, struct icaltimetype *day);

/* calendar_uid.c: one namespace for UIDs. Strict, a duplicate rejects
 * the file. Else of copies of one UID that differ, read as one kind, the
 * only one at the highest SEQUENCE is read (RFC 5545: SEQUENCE orders
 * the revisions of one UID); otherwise (Outlook's copy of a meeting keeps
 * its UID) all are skipped, each named with another's line: file order
 * must not decide which is meant. Identical copies are read once. Frees
 * ld->seen. */
void cal_check_unique(struct loader *ld);

#endif
