/* calendar_time.c: the times of a calendar item (calendar_internal.h):
 * zoned, UTC or a date, in the zone its TZID names, checked for the
 * traps libical leaves (an unknown TZID read as floating, a VTIMEZONE
 * without rules read as UTC, the spring-forward gap). */
#include "calendar_internal.h"
#include "tz.h"

#include <string.h>
#include <strings.h>
#include <time.h>

static struct icaltimetype prop_time(icalproperty *p)
{
	switch (icalproperty_isa(p)) {
	case ICAL_DTSTART_PROPERTY: return icalproperty_get_dtstart(p);
	case ICAL_DTEND_PROPERTY: return icalproperty_get_dtend(p);
	case ICAL_DUE_PROPERTY: return icalproperty_get_due(p);
	default: return icaltime_null_time();
	}
}

/* The zone a TZID names: the file's own VTIMEZONE first (Outlook's
 * "W. Europe Standard Time"), else the system tz database. NULL if
 * neither knows it: libical itself would quietly read the time as
 * floating. */
static icaltimezone *find_zone(icalcomponent *vcal, const char *tzid)
{
	icaltimezone *z = icalcomponent_get_timezone(vcal, tzid);

	if (z)
		return z;
	if (strstr(tzid, ".."))
		return NULL; /* it becomes a path under /usr/share/zoneinfo */
	z = icaltimezone_get_builtin_timezone(tzid);
	return z ? z : icaltimezone_get_builtin_timezone_from_tzid(tzid);
}

/* The calendar's X-WR-TIMEZONE (Google and Apple write it: the zone the
 * calendar is kept in), or NULL. RFC 7986 does not define it; it names
 * the zone of floating times only, never overriding a TZID or UTC. */
static const char *wr_timezone(icalcomponent *vcal)
{
	icalproperty *p;

	for (p = icalcomponent_get_first_property(vcal, ICAL_X_PROPERTY); p;
	     p = icalcomponent_get_next_property(vcal, ICAL_X_PROPERTY)) {
		const char *name = icalproperty_get_x_name(p);

		if (name && strcasecmp(name, "X-WR-TIMEZONE") == 0)
			return icalproperty_get_x(p);
	}
	return NULL;
}

/* A VTIMEZONE without observances converts with offset 0, silently. */
static bool zone_has_rules(icaltimezone *z)
{
	icalcomponent *c = icaltimezone_get_component(z);

	if (!c)
		return true; /* the UTC zone */
	return icalcomponent_get_first_component(c, ICAL_XSTANDARD_COMPONENT) ||
	       icalcomponent_get_first_component(c, ICAL_XDAYLIGHT_COMPONENT);
}

static long zone_offset(time_t t, void *arg)
{
	icaltimezone *zone = arg;
	struct icaltimetype utc = icaltime_from_timet_with_zone(t, 0, icaltimezone_get_utc_timezone());

	return icaltimezone_get_utc_offset_of_utc_time(zone, &utc, NULL);
}

/* A wall-clock time in zone as an instant. libical reads a time in the
 * spring-forward gap with the offset after it (02:30 as 01:30 CET); RFC
 * 5545 §3.3.5 wants the offset before it (03:30 CEST), and the first of
 * a repeated hour: tz_resolve's rule, as for the programme zone. */
static time_t zoned_instant(struct icaltimetype t, icaltimezone *zone)
{
	struct tm tm = {.tm_year = t.year - 1900, .tm_mon = t.month - 1, .tm_mday = t.day,
			.tm_hour = t.hour, .tm_min = t.minute, .tm_sec = t.second};

	if (zone == icaltimezone_get_utc_timezone())
		return timegm(&tm);
	return tz_resolve(timegm(&tm), zone_offset, zone);
}

/* The zone of a floating time: the calendar's X-WR-TIMEZONE when it names
 * one kallad knows. NULL, reported, otherwise. */
static icaltimezone *floating_zone(struct loader *ld, const struct when *w, const char *name,
				   int line)
{
	const char *wr = wr_timezone(w->vcal);
	icaltimezone *zone = str_empty(wr) ? NULL : find_zone(w->vcal, wr);

	if (zone && zone_has_rules(zone))
		return zone;
	if (str_empty(wr))
		cal_fail(ld, line, "%s: %s is a floating time; give it a TZID or write it in UTC",
			 w->label, name);
	else
		cal_fail(ld, line, "%s: %s is a floating time, and X-WR-TIMEZONE \"%s\" names no zone "
			 "kallad knows; give it a TZID or write it in UTC", w->label, name, wr);
	return NULL;
}

/* A floating time read through X-WR-TIMEZONE is the wall clock of that
 * zone: said in a warning when the programme zone's clock shows another
 * time then (a calendar kept in New York, a programme in Stockholm),
 * since whoever typed it may have meant the programme's own hour. */
static void note_floating(struct loader *ld, const struct when *w, const char *name, int line,
			  icaltimezone *zone, time_t t)
{
	struct tm local;
	char buf[40];

	tz_local(t, &local);
	if (local.tm_gmtoff == zone_offset(t, zone))
		return;
	tz_rfc3339(t, buf, sizeof(buf));
	cal_note(ld, line, "%s: %s is a floating time, read in X-WR-TIMEZONE \"%s\", whose clock is "
		 "not the programme zone's (%s): %s; give it a TZID if another zone was meant",
		 w->label, name, wr_timezone(w->vcal), tz_name(), buf);
}

bool cal_read_instant(struct loader *ld, const struct when *w, icalproperty_kind kind,
		      bool *date_only, time_t *out, struct icaltimetype *day)
{
	const char *name = icalproperty_kind_to_string(kind);
	icalproperty *p = icalcomponent_get_first_property(w->comp, kind);
	int line = caltext_prop_line(&ld->text, w->sp, name);
	struct icaltimetype t;
	icalparameter *tzp;
	icaltimezone *zone;
	bool floating = false;

	if (!p) {
		cal_fail(ld, ld->text.lines[w->sp->first].line, "%s: no %s", w->label, name);
		return false;
	}
	t = prop_time(p);
	if (icaltime_is_null_time(t) || !icaltime_is_valid_time(t)) {
		cal_fail(ld, line, "%s: %s is not a valid date or date-time", w->label, name);
		return false;
	}
	/* Checked before any zone arithmetic (libical expands a zone's rules
	 * up to the year asked), and exactly once it is an instant. */
	if (t.year < 1969 || t.year > 2201 || (t.is_date && (t.year < 1970 || t.year > 2200))) {
		cal_fail(ld, line, "%s: %s is outside the years " TZ_RANGE_TEXT, w->label, name);
		return false;
	}
	if (t.is_date) {
		if (!date_only) {
			if (kind == ICAL_DTSTART_PROPERTY)
				cal_fail(ld, line, "%s: %s is a date without a time (an all-day event); a session needs a date-time with a TZID or in UTC, a deadline CATEGORIES:deadline or a [deadline <its UID>] section in kallad.conf",
				     w->label, name);
			else
				cal_fail(ld, line, "%s: %s is a date without a time", w->label, name);
			return false;
		}
		*date_only = true;
		*day = t;
		return true;
	}
	tzp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
	if (tzp) {
		const char *tzid = icalparameter_get_tzid(tzp);
		zone = find_zone(w->vcal, tzid ? tzid : "");
		if (!zone) {
			cal_fail(ld, line, "%s: %s: unknown TZID \"%s\" (no VTIMEZONE in the file, not in the tz database)",
			     w->label, name, tzid ? tzid : "");
			return false;
		}
		if (!zone_has_rules(zone)) {
			cal_fail(ld, line, "%s: %s: VTIMEZONE \"%s\" has no STANDARD or DAYLIGHT rules",
			     w->label, name, tzid);
			return false;
		}
	} else if (icaltime_is_utc(t)) {
		zone = icaltimezone_get_utc_timezone();
	} else if (!(zone = floating_zone(ld, w, name, line))) {
		return false;
	} else {
		floating = true;
	}
	*out = zoned_instant(t, zone);
	if (!tz_in_range(*out)) {
		cal_fail(ld, line, "%s: %s is outside the years " TZ_RANGE_TEXT, w->label, name);
		return false;
	}
	if (floating)
		note_floating(ld, w, name, line, zone, *out);
	return true;
}
