#include "datefmt.h"

#include "tz.h"
#include "util.h"

#include <ctype.h>
#include <stdbool.h>

/* Names are spelled out here rather than taken from strftime(%A/%B):
 * the daemon must not depend on which locales the host has installed. */
static const char *const sv_weekdays[7] = {"söndag",  "måndag", "tisdag", "onsdag",
					   "torsdag", "fredag", "lördag"};
static const char *const sv_months[12] = {"januari", "februari", "mars",      "april",
					  "maj",     "juni",     "juli",      "augusti",
					  "september", "oktober", "november", "december"};
static const char *const en_weekdays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
					   "Thursday", "Friday", "Saturday"};
static const char *const en_months[12] = {"January", "February", "March",     "April",
					  "May",     "June",     "July",      "August",
					  "September", "October", "November", "December"};

/* "sv", "SV", "sv-SE", "sv_FI" are Swedish; everything else is English. */
static bool is_swedish(const char *lang)
{
	if (!lang || tolower((unsigned char)lang[0]) != 's' ||
	    tolower((unsigned char)lang[1]) != 'v')
		return false;
	return lang[2] == '\0' || lang[2] == '-' || lang[2] == '_';
}

/* Weekday, day and month, plus the year when with_year. */
static void add_date(struct strbuf *sb, bool sv, const struct tm *tm, bool with_year)
{
	int wd = tm->tm_wday % 7, mon = tm->tm_mon % 12;

	sb_addf(sb, "%s %d %s", sv ? sv_weekdays[wd] : en_weekdays[wd], tm->tm_mday,
		sv ? sv_months[mon] : en_months[mon]);
	if (with_year)
		sb_addf(sb, " %d", tm->tm_year + 1900);
}

/* Swedish writes "9.00", English "9:00"; hours carry no leading zero,
 * as in running text in both languages. */
static void add_time(struct strbuf *sb, bool sv, const struct tm *tm)
{
	sb_addf(sb, "%d%c%02d", tm->tm_hour, sv ? '.' : ':', tm->tm_min);
}

static void add_when(struct strbuf *sb, bool sv, const struct tm *tm, bool with_year)
{
	add_date(sb, sv, tm, with_year);
	sb_add(sb, sv ? " kl. " : " at ");
	add_time(sb, sv, tm);
}

char *datefmt_when(const char *lang, time_t t)
{
	struct strbuf sb;
	struct tm tm;

	tz_local(t, &tm);
	sb_init(&sb);
	add_when(&sb, is_swedish(lang), &tm, true);
	return sb_take(&sb);
}

char *datefmt_date(const char *lang, time_t t)
{
	struct strbuf sb;
	struct tm tm;

	tz_local(t, &tm);
	sb_init(&sb);
	add_date(&sb, is_swedish(lang), &tm, true);
	return sb_take(&sb);
}

char *datefmt_brief(const char *lang, time_t t)
{
	bool sv = is_swedish(lang);
	const char *month;
	struct strbuf sb;
	struct tm tm;

	tz_local(t, &tm);
	month = sv ? sv_months[tm.tm_mon % 12] : en_months[tm.tm_mon % 12];
	sb_init(&sb);
	/* Months to their first three letters, as in "20 feb" and "20 Feb". */
	sb_addf(&sb, "%d %.3s ", tm.tm_mday, month);
	add_time(&sb, sv, &tm);
	return sb_take(&sb);
}

char *datefmt_time(const char *lang, time_t t)
{
	struct strbuf sb;
	struct tm tm;

	tz_local(t, &tm);
	sb_init(&sb);
	add_time(&sb, is_swedish(lang), &tm);
	return sb_take(&sb);
}

/* "–" (U+2013 EN DASH): closed up between times of one day, spaced
 * between two full dates, as Swedish and English typography both want.
 * An end at or before the start says nothing useful: only the start. */
char *datefmt_range(const char *lang, time_t start, time_t end)
{
	bool sv = is_swedish(lang);
	struct strbuf sb;
	struct tm a, b;

	tz_local(start, &a);
	tz_local(end, &b);
	sb_init(&sb);
	add_when(&sb, sv, &a, true);
	if (end <= start)
		return sb_take(&sb);
	if (a.tm_year == b.tm_year && a.tm_yday == b.tm_yday) {
		sb_add(&sb, "\u2013");
		add_time(&sb, sv, &b);
	} else {
		sb_add(&sb, " \u2013 ");
		add_when(&sb, sv, &b, a.tm_year != b.tm_year);
	}
	return sb_take(&sb);
}
