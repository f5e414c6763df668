#include "ical.h"

#include "mime.h"
#include "tz.h"
#include "util.h"

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KALLAD_VERSION
#define KALLAD_VERSION "0"
#endif

#define FOLD_OCTETS 75 /* RFC 5545 §3.1, without the CRLF */

const char *ical_method_name(enum ical_method m)
{
	return m == ICAL_KIND_CANCEL ? "CANCEL" : "REQUEST";
}

/* --- the compact VTIMEZONE ------------------------------------------- */

struct transition {
	time_t at;      /* first second of the new offset */
	long from, to;  /* UTC offsets in seconds */
	char name[16];  /* abbreviation after it, e.g. "CEST" */
};

static long offset_at(time_t t)
{
	struct tm tm;

	tz_local(t, &tm);
	return tm.tm_gmtoff;
}

/* The first second in (lo, hi] whose offset differs from lo's. */
static time_t bisect(time_t lo, time_t hi)
{
	long a = offset_at(lo);

	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (offset_at(mid) == a)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* The offset changes within a local year, from the C library's tz data.
 * No zone changes offset twice within a day, so a day's step finds all. */
static size_t year_transitions(int year, struct transition *out, size_t max)
{
	time_t t = tz_mktime(year, 1, 1, 0, 0, 0), end = tz_mktime(year + 1, 1, 1, 0, 0, 0);
	long off = offset_at(t);
	size_t n = 0;

	for (; t < end && n < max; t += 86400) {
		long next = offset_at(t + 86400);
		struct tm tm;

		if (next == off)
			continue;
		out[n].at = bisect(t, t + 86400);
		out[n].from = off;
		out[n].to = next;
		tz_local(out[n].at, &tm);
		snprintf(out[n].name, sizeof(out[n].name), "%s", tm.tm_zone ? tm.tm_zone : "");
		off = next;
		n++;
	}
	return n;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return days[month - 1] + (month == 2 && leap);
}

/* Day of month of the nth (or, for -1, last) weekday wday (0 = Sunday). */
static int rule_day(int year, int month, int nth, int wday)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = 1};
	time_t t = timegm(&tm);
	int first, last = days_in_month(year, month);

	gmtime_r(&t, &tm);
	first = tm.tm_wday;
	if (nth > 0)
		return 1 + (wday - first + 7) % 7 + 7 * (nth - 1);
	return last - ((first + last - 1) % 7 - wday + 7) % 7;
}

/* One observance. The transition's local wall clock (in the old offset)
 * names the rule: "last Sunday of March at 02:00" and so on; DTSTART is
 * its first occurrence in 1970, as clients expect of a yearly rule. */
static icalcomponent *observance(const struct transition *tr, bool summer)
{
	static const char *const wd[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};
	icalcomponent *c = icalcomponent_new(summer ? ICAL_XDAYLIGHT_COMPONENT
						      : ICAL_XSTANDARD_COMPONENT);
	time_t local = tr->at + tr->from;
	struct icaltimetype start = icaltime_null_time();
	struct tm tm;
	int nth;
	char rule[64];

	gmtime_r(&local, &tm);
	nth = tm.tm_mday + 7 > days_in_month(tm.tm_year + 1900, tm.tm_mon + 1)
		      ? -1
		      : (tm.tm_mday - 1) / 7 + 1;
	start.year = 1970;
	start.month = tm.tm_mon + 1;
	start.day = rule_day(1970, tm.tm_mon + 1, nth, tm.tm_wday);
	start.hour = tm.tm_hour;
	start.minute = tm.tm_min;
	start.second = tm.tm_sec;
	snprintf(rule, sizeof(rule), "FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", tm.tm_mon + 1, nth,
		 wd[tm.tm_wday]);
	icalcomponent_add_property(c, icalproperty_new_dtstart(start));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetfrom((int)tr->from));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetto((int)tr->to));
	if (tr->name[0])
		icalcomponent_add_property(c, icalproperty_new_tzname(tr->name));
	icalcomponent_add_property(c, icalproperty_new_rrule(icalrecurrencetype_from_string(rule)));
	return c;
}

/* A zone without daylight saving: one STANDARD that never changes. */
static icalcomponent *fixed_observance(time_t around)
{
	icalcomponent *c = icalcomponent_new(ICAL_XSTANDARD_COMPONENT);
	struct icaltimetype start = icaltime_null_time();
	struct tm tm;

	tz_local(around, &tm);
	start.year = 1970;
	start.month = 1;
	start.day = 1;
	icalcomponent_add_property(c, icalproperty_new_dtstart(start));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetfrom((int)tm.tm_gmtoff));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetto((int)tm.tm_gmtoff));
	if (tm.tm_zone && tm.tm_zone[0])
		icalcomponent_add_property(c, icalproperty_new_tzname(tm.tm_zone));
	return c;
}

static icalcomponent *build_vtimezone(const char *tzid, time_t around, int year)
{
	icalcomponent *z = icalcomponent_new(ICAL_VTIMEZONE_COMPONENT);
	struct transition tr[8];
	const struct transition *dst = NULL, *std = NULL;
	size_t n;

	n = year_transitions(year, tr, ARRAY_SIZE(tr));
	/* The larger offset is "daylight", as clients understand it, even for
	 * zones (Europe/Dublin) whose tz data calls winter the exception. */
	for (size_t i = 0; i < n; i++) {
		if (tr[i].to > tr[i].from)
			dst = &tr[i];
		else
			std = &tr[i];
	}
	icalcomponent_add_property(z, icalproperty_new_tzid(tzid));
	if (dst && std) {
		icalcomponent_add_component(z, observance(std, false));
		icalcomponent_add_component(z, observance(dst, true));
	} else {
		icalcomponent_add_component(z, fixed_observance(around));
	}
	return z;
}

/* Finding a year's transitions probes the tz data a few hundred times;
 * every message of a programme asks for the same zone and year. */
void *ical_vtimezone(const char *tzid, time_t around)
{
	static struct {
		char *tzid, *zone;
		int year;
		icalcomponent *z;
	} cache[4];
	static unsigned next;
	struct tm tm;
	int year;

	tz_local(around, &tm);
	year = tm.tm_year + 1900;
	for (size_t i = 0; i < ARRAY_SIZE(cache); i++)
		if (cache[i].z && cache[i].year == year && str_eq(cache[i].tzid, tzid) &&
		    str_eq(cache[i].zone, tz_name()))
			return icalcomponent_new_clone(cache[i].z);
	unsigned k = next++ % ARRAY_SIZE(cache);
	if (cache[k].z)
		icalcomponent_free(cache[k].z);
	free(cache[k].tzid);
	free(cache[k].zone);
	cache[k].tzid = xstrdup(tzid);
	cache[k].zone = xstrdup(tz_name()); /* the programme zone may change on reload */
	cache[k].year = year;
	cache[k].z = build_vtimezone(tzid, around, year);
	return icalcomponent_new_clone(cache[k].z);
}

/* --- serialising ---------------------------------------------------- */

void ical_fold_line(struct strbuf *sb, const char *line, size_t n)
{
	size_t pos = 0;
	bool first = true;

	while (pos < n) {
		size_t room = first ? FOLD_OCTETS : FOLD_OCTETS - 1; /* continuation's space */
		size_t take = n - pos <= room ? n - pos : room;

		/* Back up to the start of a UTF-8 sequence. */
		while (pos + take < n && take > 0 && ((unsigned char)line[pos + take] & 0xc0) == 0x80)
			take--;
		if (take == 0)
			take = n - pos <= room ? n - pos : room;
		if (!first)
			sb_addc(sb, ' ');
		sb_addn(sb, line + pos, take);
		sb_add(sb, "\r\n");
		pos += take;
		first = false;
	}
}

/* libical folds by its own measure (3.0 may split a UTF-8 sequence and
 * counts differently), so unfold its output and fold again to I2. */
static char *refold(const char *raw)
{
	struct strbuf out, logical;

	sb_init(&out);
	sb_init(&logical);
	while (*raw) {
		size_t n = strcspn(raw, "\r\n");

		if (*raw == ' ' || *raw == '\t') {
			sb_addn(&logical, raw + 1, n - 1);
		} else {
			ical_fold_line(&out, logical.buf, logical.len);
			logical.len = 0;
			sb_addn(&logical, raw, n);
		}
		raw += n;
		if (*raw == '\r')
			raw++;
		if (*raw == '\n')
			raw++;
	}
	ical_fold_line(&out, logical.buf, logical.len);
	sb_free(&logical);
	return sb_take(&out);
}

/* --- the event -------------------------------------------------------- */

static struct icaltimetype local_time(time_t t)
{
	struct icaltimetype it = icaltime_null_time();
	struct tm tm;

	tz_local(t, &tm);
	it.year = tm.tm_year + 1900;
	it.month = tm.tm_mon + 1;
	it.day = tm.tm_mday;
	it.hour = tm.tm_hour;
	it.minute = tm.tm_min;
	it.second = tm.tm_sec;
	return it;
}

/* A local wall-clock time in the hour repeated in autumn names two
 * instants, and clients disagree on which they take (RFC 5545 §3.3.5 says
 * the first, pytz the second): such a time is written in UTC instead.
 * Clocks go back by half an hour, an hour or two. The wall clock at t-s
 * is the one at t when the offset there is s more (at t+s, s less): seven
 * look-ups of the zone's offset decide it. */
static bool local_is_exact(time_t t)
{
	static const int shifts[] = {1800, 3600, 7200};
	long off = offset_at(t);

	for (size_t i = 0; i < ARRAY_SIZE(shifts); i++)
		if (offset_at(t - shifts[i]) - off == shifts[i] ||
		    offset_at(t + shifts[i]) - off == -shifts[i])
			return false;
	return true;
}

/* DTSTART/DTEND as local time with an explicit TZID parameter (the
 * icalproperty_new_dt*() constructors alone would write a floating
 * time), or in UTC when the local time is ambiguous. */
static icalproperty *when(icalproperty *(*make)(struct icaltimetype), time_t t, bool exact,
			  const char *tzid)
{
	icalproperty *p;

	if (!exact)
		return make(icaltime_from_timet_with_zone(t, 0, icaltimezone_get_utc_timezone()));
	p = make(local_time(t));
	icalproperty_add_parameter(p, icalparameter_new_tzid(tzid));
	return p;
}

/* CN= (I14): a name without '"', '^', CR, LF or controls; libical quotes
 * values holding ':', ';' or ','. */
static char *cn_value(const char *name)
{
	char *cn = mime_sanitize(name, MIME_NAME);
	char *w = cn;

	for (char *r = cn; *r; r++)
		if (*r != '^')
			*w++ = *r;
	*w = '\0';
	return cn;
}

static icalproperty *person(icalproperty *p, const char *name)
{
	char *cn = cn_value(name);

	if (*cn)
		icalproperty_add_parameter(p, icalparameter_new_cn(cn));
	free(cn);
	return p;
}

static char *mailto(const char *addr)
{
	char *a = mime_clean_addr(addr);
	char *uri = xasprintf("mailto:%s", a);

	free(a);
	return uri;
}

static void add_text(icalcomponent *ev, icalproperty *(*make)(const char *), const char *value,
		     unsigned flags)
{
	char *v = mime_sanitize(value, flags);

	if (*v) /* I15: omit what is unknown */
		icalcomponent_add_property(ev, make(v));
	free(v);
}

static icalproperty *attendee(const struct ical_req *r)
{
	char *uri = mailto(r->attendee_email);
	icalproperty *a = person(icalproperty_new_attendee(uri), r->attendee_name);

	free(uri);
	icalproperty_add_parameter(a, icalparameter_new_cutype(ICAL_CUTYPE_INDIVIDUAL));
	icalproperty_add_parameter(a, icalparameter_new_role(ICAL_ROLE_REQPARTICIPANT));
	icalproperty_add_parameter(a, icalparameter_new_partstat(ICAL_PARTSTAT_NEEDSACTION));
	icalproperty_add_parameter(a, icalparameter_new_rsvp(r->method == ICAL_KIND_CANCEL
								    ? ICAL_RSVP_FALSE
								    : ICAL_RSVP_TRUE));
	return a;
}

static void add_organizer(icalcomponent *ev, const struct ical_req *r)
{
	char *uri = mailto(r->organizer_email);

	icalcomponent_add_property(ev, person(icalproperty_new_organizer(uri), r->organizer_name));
	free(uri);
}

/* The event without its ATTENDEE, the last property (ical_add_attendee). */
static icalcomponent *vevent(const struct ical_req *r, bool exact_start, bool exact_end,
			     const char *tzid)
{
	const struct session *s = r->session;
	icalcomponent *ev = icalcomponent_new(ICAL_VEVENT_COMPONENT);
	char *summary = mime_sanitize(s->summary, 0);
	icaltimezone *utc = icaltimezone_get_utc_timezone();

	icalcomponent_add_property(ev, icalproperty_new_uid(s->uid ? s->uid : ""));
	icalcomponent_add_property(ev,
				   icalproperty_new_dtstamp(icaltime_from_timet_with_zone(r->now, 0, utc)));
	icalcomponent_add_property(ev, when(icalproperty_new_dtstart, s->start, exact_start, tzid));
	icalcomponent_add_property(ev, when(icalproperty_new_dtend, s->end, exact_end, tzid));
	icalcomponent_add_property(ev, icalproperty_new_summary(*summary ? summary : "-"));
	free(summary);
	add_text(ev, icalproperty_new_location, s->location, 0);
	add_text(ev, icalproperty_new_description, s->description, MIME_KEEP_NEWLINES);
	icalcomponent_add_property(ev, icalproperty_new_sequence(r->sequence));
	icalcomponent_add_property(ev, icalproperty_new_status(r->method == ICAL_KIND_CANCEL
								       ? ICAL_STATUS_CANCELLED
								       : ICAL_STATUS_CONFIRMED));
	icalcomponent_add_property(ev, icalproperty_new_transp(ICAL_TRANSP_OPAQUE));
	add_organizer(ev, r);
	return ev;
}

#define ICAL_END "END:VEVENT\r\nEND:VCALENDAR\r\n"

char *ical_build_head(const struct ical_req *r, size_t *len)
{
	const char *tzid = tz_name();
	icalcomponent *cal = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
	bool exact_start = local_is_exact(r->session->start);
	bool exact_end = local_is_exact(r->session->end);
	char *raw, *out;
	size_t n;

	icalcomponent_add_property(cal, icalproperty_new_prodid("-//kallad//kallad " KALLAD_VERSION "//EN"));
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(cal, icalproperty_new_method(r->method == ICAL_KIND_CANCEL
									? ICAL_METHOD_CANCEL
									: ICAL_METHOD_REQUEST));
	/* I17: the zone only when a time uses it. */
	if (exact_start || exact_end)
		icalcomponent_add_component(cal, ical_vtimezone(tzid, r->session->start));
	icalcomponent_add_component(cal, vevent(r, exact_start, exact_end, tzid));
	raw = icalcomponent_as_ical_string_r(cal);
	out = refold(raw);
	icalmemory_free_buffer(raw);
	icalcomponent_free(cal);
	/* The event is the last component and the ATTENDEE goes last in it:
	 * what follows is the same for every attendee. */
	n = strlen(out);
	if (n >= strlen(ICAL_END) && strcmp(out + n - strlen(ICAL_END), ICAL_END) == 0)
		n -= strlen(ICAL_END);
	out[n] = '\0';
	if (len)
		*len = n;
	return out;
}

void ical_add_attendee(struct strbuf *sb, const struct ical_req *r)
{
	icalproperty *a = attendee(r);
	char *raw = icalproperty_as_ical_string_r(a);
	char *line = refold(raw);

	sb_add(sb, line);
	sb_add(sb, ICAL_END);
	free(line);
	icalmemory_free_buffer(raw);
	icalproperty_free(a);
}

char *ical_build(const struct ical_req *r)
{
	struct strbuf sb;
	size_t n;
	char *head = ical_build_head(r, &n);

	sb_init(&sb);
	sb_addn(&sb, head, n);
	free(head);
	ical_add_attendee(&sb, r);
	return sb_take(&sb);
}
