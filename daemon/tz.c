#include "tz.h"

#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *current_zone;

bool tz_set(const char *zone)
{
	char *path;
	bool ok;

	/* Reject names that are not plain zone paths before touching TZ. */
	if (str_empty(zone) || zone[0] == '/' || strstr(zone, ".."))
		return false;
	path = xasprintf("/usr/share/zoneinfo/%s", zone);
	ok = access(path, R_OK) == 0;
	free(path);
	if (!ok)
		return false;
	setenv("TZ", zone, 1);
	tzset();
	free(current_zone);
	current_zone = xstrdup(zone);
	return true;
}

const char *tz_name(void)
{
	return current_zone ? current_zone : "UTC";
}

time_t tz_resolve(time_t wall, long (*offset_at)(time_t t, void *arg), void *arg)
{
	/* Every zone's offset is within a day of UTC, and no zone changes
	 * twice in two days: the offsets a day either side are the two
	 * candidates. */
	long before = offset_at(wall - 86400, arg), after = offset_at(wall + 86400, arg);
	time_t first = wall - before, second = wall - after;
	bool first_ok = offset_at(first, arg) == before, second_ok = offset_at(second, arg) == after;

	if (first_ok && second_ok)
		return first < second ? first : second; /* the repeated hour: its first time */
	if (first_ok)
		return first;
	if (second_ok)
		return second;
	/* In the gap: RFC 5545 §3.3.5, the offset from before the gap, which
	 * moves the time forward by the gap (02:30 becomes 03:30). */
	return first;
}

static long local_offset(time_t t, void *arg)
{
	struct tm tm;

	(void)arg;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

time_t tz_mktime(int year, int month, int day, int hour, int min, int sec)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
			.tm_hour = hour, .tm_min = min, .tm_sec = sec};

	/* timegm normalises day, hour and minute as plain arithmetic; the
	 * zone's rules are applied once, on the result. */
	return tz_resolve(timegm(&tm), local_offset, NULL);
}

bool tz_in_range(time_t t)
{
	return t >= TZ_FIRST && t < TZ_END;
}

void tz_local(time_t t, struct tm *out)
{
	localtime_r(&t, out);
}

void tz_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;
	long off;

	tz_local(t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
		 labs(off) / 60, labs(off) % 60);
}

/* The number of the len digits at s, or -1 if one is not a digit. */
static int digits(const char *s, int len)
{
	int v = 0;

	for (int i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* "YYYY-MM-DD HH:MM" exactly, as nearly every value is: what the sscanf
 * below reads of it, at a tenth of its cost (a registration's times are
 * read on every pass). */
static bool exact_head(const char *s, int *y, int *mo, int *d, int *h, int *mi)
{
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':')
		return false;
	*y = digits(s, 4);
	*mo = digits(s + 5, 2);
	*d = digits(s + 8, 2);
	*h = digits(s + 11, 2);
	*mi = digits(s + 14, 2);
	return *y >= 0 && *mo >= 0 && *d >= 0 && *h >= 0 && *mi >= 0;
}

bool tz_date_exists(int year, int month, int day)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (month < 1 || month > 12 || day < 1)
		return false;
	return day <= days[month - 1] + (month == 2 && leap);
}

bool tz_parse_rfc3339(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec = 0, n = 0, oh, om;
	const char *p;

	if (strnlen(s, 16) == 16 && exact_head(s, &y, &mo, &d, &h, &mi))
		n = 16;
	else if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || !n)
		return false;
	p = s + n;
	if (*p == ':') {
		int k = 0;
		if (sscanf(p, ":%2d%n", &sec, &k) != 1)
			return false;
		p += k;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
	}
	if (!tz_date_exists(y, mo, d) || h > 23 || mi > 59 || sec > 60)
		return false;
	if (*p == '\0') {
		*out = tz_mktime(y, mo, d, h, mi, sec);
		return tz_in_range(*out);
	}
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t utc = timegm(&tm);
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		*out = utc;
		return tz_in_range(*out);
	}
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 &&
	    strlen(p) == 6 && oh < 24 && om < 60) {
		long off = (oh * 60L + om) * 60L;
		*out = *p == '+' ? utc - off : utc + off;
		return tz_in_range(*out);
	}
	return false;
}

int tz_minute_of_day(time_t t)
{
	struct tm tm;

	tz_local(t, &tm);
	return tm.tm_hour * 60 + tm.tm_min;
}

int tz_day_diff(time_t a, time_t b)
{
	struct tm ta, tb;

	tz_local(a, &ta);
	tz_local(b, &tb);
	/* Whole local dates as UTC midnights: exact day counts whatever DST does. */
	struct tm da = {.tm_year = ta.tm_year, .tm_mon = ta.tm_mon, .tm_mday = ta.tm_mday};
	struct tm db = {.tm_year = tb.tm_year, .tm_mon = tb.tm_mon, .tm_mday = tb.tm_mday};
	return (int)((timegm(&db) - timegm(&da)) / 86400);
}
