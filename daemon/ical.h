/* ical.h: the iTIP object (RFC 5545/5546) of one message: a VCALENDAR
 * with METHOD:REQUEST or CANCEL, the programme zone as one compact
 * VTIMEZONE, and one VEVENT for one session and one attendee
 * (INTEROP.md I1-I20). Built with libical. */
#ifndef KALLAD_ICAL_H
#define KALLAD_ICAL_H

#include "calendar.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct strbuf;

/* ICAL_KIND_*: libical owns the ICAL_METHOD_* names. */
enum ical_method { ICAL_KIND_REQUEST, ICAL_KIND_CANCEL };

struct ical_req {
	enum ical_method method;
	const struct session *session; /* UID, summary, location, description, instants */
	int sequence;
	const char *organizer_name, *organizer_email;
	const char *attendee_name, *attendee_email;
	time_t now; /* DTSTAMP */
};

/* The calendar object as UTF-8 text with CRLF line ends, folded at 75
 * octets, times in the programme zone (tz_name()). The caller frees it.
 * Pure: the same request gives the same bytes. */
char *ical_build(const struct ical_req *req);

/* ical_build() in two pieces, for messages to many attendees of one
 * session: the head (every line up to the event's ATTENDEE, the same for
 * all of them; r's attendee is not read) as a new string of *len bytes,
 * and then, appended to a copy of the head, the ATTENDEE line and the
 * lines that close the object. Head and tail make ical_build()'s bytes. */
char *ical_build_head(const struct ical_req *r, size_t *len);
void ical_add_attendee(struct strbuf *sb, const struct ical_req *r);

/* "REQUEST" or "CANCEL". */
const char *ical_method_name(enum ical_method m);

/* The compact VTIMEZONE (I18) with TZID tzid for the zone installed by
 * tz_set(), with the rule the tz database applies in the local year of
 * `around`: one STANDARD and, when that year has daylight saving, one
 * DAYLIGHT observance, each with a yearly RRULE. Returns a new
 * icalcomponent the caller frees with icalcomponent_free() (void * keeps
 * libical out of this header). */
void *ical_vtimezone(const char *tzid, time_t around);

/* Folds one unfolded content line (no CRLF) into sb: pieces of at most 75
 * octets, never splitting a UTF-8 sequence, each ending in CRLF. */
void ical_fold_line(struct strbuf *sb, const char *line, size_t n);

#endif
