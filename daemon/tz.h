/* tz.h: local wall-clock arithmetic in the programme's time zone.
 *
 * The process has one programme zone at a time; tz_set() installs it from
 * the system tz database (/usr/share/zoneinfo) through TZ, so the C
 * library's mktime/localtime do the daylight-saving work. */
#ifndef KALLAD_TZ_H
#define KALLAD_TZ_H

#include <stdbool.h>
#include <time.h>

/* Installs the zone; false if the tz database has no such zone. */
bool tz_set(const char *zone);
const char *tz_name(void);

/* The dates kallad accepts from anywhere (--now, calendars, registration
 * rows): 1970-01-01T00:00:00Z up to, not including, 2201-01-01T00:00:00Z.
 * Inside it, every time and clock computation fits in 64 bits. */
#define TZ_FIRST ((time_t)0)
#define TZ_END ((time_t)7289654400) /* 2201-01-01T00:00:00Z */
#define TZ_RANGE_TEXT "1970-2200"
bool tz_in_range(time_t t);

/* Whether year-month-day (month 1-12) is a day of the calendar:
 * 2020-02-29 is, 2019-02-29 and 2020-04-31 are not. */
bool tz_date_exists(int year, int month, int day);
/* Local wall clock (month 1-12) to an instant. In a spring-forward gap the
 * time is moved forward by the gap; in a fall-back overlap the earlier
 * instant is taken (RFC 5545 §3.3.5). Day may be out of range (normalised). */
time_t tz_mktime(int year, int month, int day, int hour, int min, int sec);
/* The same rule for any zone: wall is the wall-clock time read as if UTC
 * (timegm), offset_at(t, arg) the zone's UTC offset in seconds at instant t. */
time_t tz_resolve(time_t wall, long (*offset_at)(time_t t, void *arg), void *arg);
/* An instant to local broken-down time (tm_gmtoff set). */
void tz_local(time_t t, struct tm *out);
/* "2020-02-06T09:00:00+01:00" into buf (at least 32 bytes). */
void tz_rfc3339(time_t t, char *buf, size_t len);
/* Parses RFC 3339 ("2020-02-06T09:00:00+01:00", "...Z", fraction ignored);
 * a time without an offset is read in the programme zone. False as well
 * for a day that does not exist (2020-02-31) and a time outside
 * TZ_RANGE_TEXT. */
bool tz_parse_rfc3339(const char *s, time_t *out);
/* Minutes since local midnight of t. */
int tz_minute_of_day(time_t t);
/* Days from the local date of a to the local date of b (b - a). */
int tz_day_diff(time_t a, time_t b);

#endif
