/* calendar.c: the session calendar (SPEC §1.2), read with libical.
 *
 * libical parses leniently and silently: it never fails on a bad line (it
 * leaves X-LIC-ERROR properties), drops unknown components, accepts a
 * mismatched END, reads "SEQUENCE:abc" as 0, leaves an unknown TZID
 * unresolved, and keeps no line numbers. So the raw text is indexed too
 * (calendar_text.c) and every problem is reported as "file:line: what".
 * An item kallad cannot use is skipped with a warning (or, strict, the
 * whole file rejected). */
#include "calendar.h"
#include "calendar_text.h"
#include "tz.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libical/ical.h>

struct loader {
	const char *path;
	struct errlist *errs;     /* where fail() writes: the file's, or an item's */
	struct errlist *file_errs;
	struct errlist *warnings; /* == file_errs: strict, every problem rejects */
	struct errlist item;      /* the problems of the item being read */
	const char *sessions_category;
	size_t errs_before;
	struct caltext text;
	size_t next_event, next_todo;
	struct calendar *cal;
	size_t cap_sessions, cap_deadlines;
};

static void fail(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errlist_vadd_at(ld->errs, ld->path, line, fmt, ap);
	va_end(ap);
}

/* ---- properties ---- */

/* A text property's value, or NULL when absent or empty. */
static char *text_prop(icalcomponent *comp, icalproperty_kind kind)
{
	icalproperty *p = icalcomponent_get_first_property(comp, kind);
	const char *v = NULL;

	if (!p)
		return NULL;
	/* The typed getters give the unescaped text. */
	switch (kind) {
	case ICAL_UID_PROPERTY: v = icalproperty_get_uid(p); break;
	case ICAL_SUMMARY_PROPERTY: v = icalproperty_get_summary(p); break;
	case ICAL_LOCATION_PROPERTY: v = icalproperty_get_location(p); break;
	case ICAL_DESCRIPTION_PROPERTY: v = icalproperty_get_description(p); break;
	default: break;
	}
	return str_empty(v) ? NULL : xstrdup(v);
}

/* All CATEGORIES values (libical splits "a,b" into one property each),
 * trimmed and joined with ","; NULL when there are none. */
static char *categories_prop(icalcomponent *comp)
{
	struct strbuf sb;
	icalproperty *p;

	sb_init(&sb);
	for (p = icalcomponent_get_first_property(comp, ICAL_CATEGORIES_PROPERTY); p;
	     p = icalcomponent_get_next_property(comp, ICAL_CATEGORIES_PROPERTY)) {
		const char *v = icalproperty_get_categories(p);
		char *copy = xstrdup(v ? v : ""), *t = str_trim(copy);
		if (*t) {
			if (sb.len)
				sb_addc(&sb, ',');
			sb_add(&sb, t);
		}
		free(copy);
	}
	if (sb.len == 0) {
		sb_free(&sb);
		return NULL;
	}
	return sb_take(&sb);
}

/* "VEVENT \"title\"" for messages, by SUMMARY, else UID. */
static char *item_label(icalcomponent *comp)
{
	const char *kind = icalcomponent_kind_to_string(icalcomponent_isa(comp));
	const char *summary = icalcomponent_get_summary(comp);
	const char *uid = icalcomponent_get_uid(comp);

	if (!str_empty(summary))
		return xasprintf("%s \"%s\"", kind, summary);
	if (!str_empty(uid))
		return xasprintf("%s UID \"%s\"", kind, uid);
	return xstrdup(kind);
}

/* Properties that may occur at most once (RFC 5545 §3.6.1, §3.6.2). */
static bool check_single(struct loader *ld, icalcomponent *comp, const struct span *sp,
			 const char *label)
{
	static const icalproperty_kind kinds[] = {
		ICAL_UID_PROPERTY, ICAL_SUMMARY_PROPERTY, ICAL_DTSTART_PROPERTY,
		ICAL_DTEND_PROPERTY, ICAL_DUE_PROPERTY, ICAL_SEQUENCE_PROPERTY,
		ICAL_STATUS_PROPERTY, ICAL_LOCATION_PROPERTY,
	};
	bool ok = true;

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (icalcomponent_count_properties(comp, kinds[i]) > 1) {
			const char *name = icalproperty_kind_to_string(kinds[i]);
			fail(ld, caltext_prop_line(&ld->text, sp, name), "%s: more than one %s", label, name);
			ok = false;
		}
	}
	return ok;
}

/* Sessions are single events: a recurring one would silently lose its
 * later occurrences. */
static bool check_not_recurring(struct loader *ld, icalcomponent *comp,
				const struct span *sp, const char *label)
{
	static const icalproperty_kind kinds[] = {
		ICAL_RRULE_PROPERTY, ICAL_RDATE_PROPERTY, ICAL_RECURRENCEID_PROPERTY,
	};

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (icalcomponent_get_first_property(comp, kinds[i])) {
			const char *name = icalproperty_kind_to_string(kinds[i]);
			fail(ld, caltext_prop_line(&ld->text, sp, name),
			     "%s: %s: recurring sessions are not supported; give each session its own VEVENT",
			     label, name);
			return false;
		}
	}
	return true;
}

/* SEQUENCE as written: libical reads "SEQUENCE:abc" as 0 without a word. */
static bool read_sequence(struct loader *ld, icalcomponent *comp, const struct span *sp,
			  const char *label, int *out)
{
	long v;

	*out = 0;
	if (!icalcomponent_get_first_property(comp, ICAL_SEQUENCE_PROPERTY))
		return true;
	for (size_t i = sp->first + 1; i < sp->last && i < ld->text.n_lines; i++) {
		const char *text = ld->text.lines[i].text;
		if (!caltext_is(text, "SEQUENCE"))
			continue;
		if (!parse_int(caltext_value(text), 0, INT_MAX, &v)) {
			fail(ld, ld->text.lines[i].line, "%s: SEQUENCE \"%s\" is not a whole number >= 0",
			     label, caltext_value(text));
			return false;
		}
		*out = (int)v;
		return true;
	}
	*out = icalcomponent_get_sequence(comp);
	return true;
}

/* ---- times ---- */

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

struct when {
	icalcomponent *vcal, *comp;
	const struct span *sp;
	const char *label;
};

/* A zoned or UTC DATE-TIME as an instant; a DATE (when date_only is not
 * NULL) as its calendar day. Reports and returns false otherwise. */
static bool read_instant(struct loader *ld, const struct when *w, icalproperty_kind kind,
			 bool *date_only, time_t *out, struct icaltimetype *day)
{
	const char *name = icalproperty_kind_to_string(kind);
	icalproperty *p = icalcomponent_get_first_property(w->comp, kind);
	int line = caltext_prop_line(&ld->text, w->sp, name);
	struct icaltimetype t;
	icalparameter *tzp;
	icaltimezone *zone;

	if (!p) {
		fail(ld, ld->text.lines[w->sp->first].line, "%s: no %s", w->label, name);
		return false;
	}
	t = prop_time(p);
	if (icaltime_is_null_time(t) || !icaltime_is_valid_time(t)) {
		fail(ld, line, "%s: %s is not a valid date or date-time", w->label, name);
		return false;
	}
	/* Checked before any zone arithmetic (libical expands a zone's rules
	 * up to the year asked), and exactly once it is an instant. */
	if (t.year < 1969 || t.year > 2201 || (t.is_date && (t.year < 1970 || t.year > 2200))) {
		fail(ld, line, "%s: %s is outside the years " TZ_RANGE_TEXT, w->label, name);
		return false;
	}
	if (t.is_date) {
		if (!date_only) {
			if (kind == ICAL_DTSTART_PROPERTY)
				fail(ld, line, "%s: %s is a date without a time (an all-day event); a session needs a date-time with a TZID or in UTC, a deadline CATEGORIES:deadline or a [deadline NAME] in kallad.conf",
				     w->label, name);
			else if (kind != ICAL_DTEND_PROPERTY)
				fail(ld, line, "%s: %s is a date without a time", w->label, name);
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
			fail(ld, line, "%s: %s: unknown TZID \"%s\" (no VTIMEZONE in the file, not in the tz database)",
			     w->label, name, tzid ? tzid : "");
			return false;
		}
		if (!zone_has_rules(zone)) {
			fail(ld, line, "%s: %s: VTIMEZONE \"%s\" has no STANDARD or DAYLIGHT rules",
			     w->label, name, tzid);
			return false;
		}
	} else if (icaltime_is_utc(t)) {
		zone = icaltimezone_get_utc_timezone();
	} else {
		fail(ld, line, "%s: %s is a floating time; give it a TZID or write it in UTC",
		     w->label, name);
		return false;
	}
	*out = zoned_instant(t, zone);
	if (!tz_in_range(*out)) {
		fail(ld, line, "%s: %s is outside the years " TZ_RANGE_TEXT, w->label, name);
		return false;
	}
	return true;
}

/* ---- sessions and deadlines ---- */

static void session_clear(struct session *s)
{
	free(s->uid);
	free(s->summary);
	free(s->location);
	free(s->description);
	free(s->categories);
}

static void deadline_clear(struct deadline *d)
{
	free(d->uid);
	free(d->summary);
	free(d->description);
	free(d->categories);
}

/* UID and SUMMARY, required of both sessions and deadlines. */
static bool read_ids(struct loader *ld, icalcomponent *comp, const struct span *sp,
		     const char *label, char **uid, char **summary)
{
	int line = ld->text.lines[sp->first].line;
	bool ok = true;

	*uid = text_prop(comp, ICAL_UID_PROPERTY);
	*summary = text_prop(comp, ICAL_SUMMARY_PROPERTY);
	if (!*uid) {
		fail(ld, line, "%s: no UID", label);
		ok = false;
	}
	if (!*summary) {
		fail(ld, line, "%s: no SUMMARY", label);
		ok = false;
	}
	return ok;
}

/* An item (VEVENT or VTODO) is read with its problems collected apart:
 * strict, they reject the file; else they skip the item alone. */
static void item_begin(struct loader *ld)
{
	ld->errs = &ld->item;
}

/* True if the item may be used. Its problems go where they belong. */
static bool item_end(struct loader *ld, bool ok, const char *uid)
{
	bool strict = ld->warnings == ld->file_errs;

	ld->errs = ld->file_errs;
	ok = ok && ld->item.n == 0;
	for (size_t i = 0; i < ld->item.n; i++) {
		if (strict)
			errlist_add(ld->errs, "%s", ld->item.items[i]);
		else if (uid)
			errlist_add(ld->warnings, "%s; skipped (UID %s)", ld->item.items[i], uid);
		else
			errlist_add(ld->warnings, "%s; skipped", ld->item.items[i]);
	}
	errlist_free(&ld->item);
	if (!ok && uid && !calendar_is_unreadable(ld->cal, uid)) {
		struct calendar *cal = ld->cal;
		cal->unreadable = xrealloc(cal->unreadable,
					   (cal->n_unreadable + 1) * sizeof(*cal->unreadable));
		cal->unreadable[cal->n_unreadable++] = xstrdup(uid);
	}
	return ok;
}

static bool read_session(struct loader *ld, icalcomponent *vcal, icalcomponent *ev,
			 const struct span *sp, struct session *s)
{
	char *label = item_label(ev);
	struct when w = {vcal, ev, sp, label};
	struct icaltimetype unused;
	bool ok = check_single(ld, ev, sp, label);

	*s = (struct session){.line = ld->text.lines[sp->first].line};
	ok &= read_ids(ld, ev, sp, label, &s->uid, &s->summary);
	ok &= check_not_recurring(ld, ev, sp, label);
	bool have_start = read_instant(ld, &w, ICAL_DTSTART_PROPERTY, NULL, &s->start, &unused);
	bool have_end = read_instant(ld, &w, ICAL_DTEND_PROPERTY, NULL, &s->end, &unused);
	if (have_start && have_end && s->end <= s->start) {
		char a[32], b[32];
		tz_rfc3339(s->start, a, sizeof(a));
		tz_rfc3339(s->end, b, sizeof(b));
		fail(ld, caltext_prop_line(&ld->text, sp, "DTEND"), "%s: DTEND %s is not after DTSTART %s",
		     label, b, a);
		ok = false;
	}
	ok &= have_start && have_end;
	ok &= read_sequence(ld, ev, sp, label, &s->sequence);
	s->location = text_prop(ev, ICAL_LOCATION_PROPERTY);
	s->description = text_prop(ev, ICAL_DESCRIPTION_PROPERTY);
	s->categories = categories_prop(ev);
	s->cancelled = icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED;
	free(label);
	return ok;
}

/* A VTODO is due at DUE; a VEVENT in the category "deadline" (what
 * Outlook and Google can export: neither exports tasks) at its DTSTART,
 * all day when that is a date. */
static bool read_deadline(struct loader *ld, icalcomponent *vcal, icalcomponent *comp,
			  const struct span *sp, struct deadline *d)
{
	char *label = item_label(comp);
	struct when w = {vcal, comp, sp, label};
	struct icaltimetype day;
	bool event = icalcomponent_isa(comp) == ICAL_VEVENT_COMPONENT;
	bool ok = check_single(ld, comp, sp, label);

	*d = (struct deadline){.line = ld->text.lines[sp->first].line};
	ok &= read_ids(ld, comp, sp, label, &d->uid, &d->summary);
	if (event)
		ok &= check_not_recurring(ld, comp, sp, label);
	ok &= read_instant(ld, &w, event ? ICAL_DTSTART_PROPERTY : ICAL_DUE_PROPERTY,
			   &d->date_only, &d->due, &day);
	/* A deadline day ends at local midnight in the programme zone. */
	if (ok && d->date_only)
		d->due = tz_mktime(day.year, day.month, day.day + 1, 0, 0, 0);
	d->description = text_prop(comp, ICAL_DESCRIPTION_PROPERTY);
	d->categories = categories_prop(comp);
	free(label);
	return ok;
}

static void add_session(struct loader *ld, struct session *s)
{
	ld->cal->sessions = xgrow(ld->cal->sessions, &ld->cap_sessions, ld->cal->n_sessions,
				  sizeof(*s));
	ld->cal->sessions[ld->cal->n_sessions++] = *s;
}

static void add_deadline(struct loader *ld, struct deadline *d)
{
	ld->cal->deadlines = xgrow(ld->cal->deadlines, &ld->cap_deadlines,
				   ld->cal->n_deadlines, sizeof(*d));
	ld->cal->deadlines[ld->cal->n_deadlines++] = *d;
}

/* One VEVENT or VTODO: a session, a deadline, or (outside
 * sessions-category) none of kallad's business. */
static void read_item(struct loader *ld, icalcomponent *vcal, icalcomponent *c,
		      const struct span *sp)
{
	char *cats = categories_prop(c);
	bool todo = icalcomponent_isa(c) == ICAL_VTODO_COMPONENT;
	bool deadline = todo || calendar_has_category(cats, "deadline");
	bool ignored = !deadline && ld->sessions_category &&
		       !calendar_has_category(cats, ld->sessions_category);
	char *uid = text_prop(c, ICAL_UID_PROPERTY);
	struct session s;
	struct deadline d;
	bool ok;

	free(cats);
	if (ignored) {
		ld->cal->n_ignored++;
		free(uid);
		return;
	}
	item_begin(ld);
	caltext_xlic(&ld->text, c, sp, ld->errs);
	ok = deadline ? read_deadline(ld, vcal, c, sp, &d) : read_session(ld, vcal, c, sp, &s);
	if (!item_end(ld, ok, uid)) {
		if (deadline)
			deadline_clear(&d);
		else
			session_clear(&s);
	} else if (deadline) {
		add_deadline(ld, &d);
	} else {
		add_session(ld, &s);
	}
	free(uid);
}

/* The span of the next VEVENT or VTODO; the whole file if the raw scan
 * and libical disagree (the file is then rejected for its structure). */
static struct span next_span(struct loader *ld, struct spans *s, size_t *next)
{
	struct span whole = {0, ld->text.n_lines ? ld->text.n_lines - 1 : 0};

	return *next < s->n ? s->v[(*next)++] : whole;
}

static void read_vcalendar(struct loader *ld, icalcomponent *vcal)
{
	struct span whole = {0, ld->text.n_lines ? ld->text.n_lines - 1 : 0};
	icalcompiter it;
	icalproperty *p;

	for (p = icalcomponent_get_first_property(vcal, ICAL_XLICERROR_PROPERTY); p;
	     p = icalcomponent_get_next_property(vcal, ICAL_XLICERROR_PROPERTY)) {
		const char *msg = icalproperty_get_xlicerror(p);
		fail(ld, caltext_xlic_line(&ld->text, &whole, msg ? msg : ""), "%s", msg ? msg : "parse error");
	}
	for (it = icalcomponent_begin_component(vcal, ICAL_ANY_COMPONENT);
	     icalcompiter_deref(&it); icalcompiter_next(&it)) {
		icalcomponent *c = icalcompiter_deref(&it);
		struct span sp;

		switch (icalcomponent_isa(c)) {
		case ICAL_VEVENT_COMPONENT:
			sp = next_span(ld, &ld->text.events, &ld->next_event);
			read_item(ld, vcal, c, &sp);
			break;
		case ICAL_VTODO_COMPONENT:
			sp = next_span(ld, &ld->text.todos, &ld->next_todo);
			read_item(ld, vcal, c, &sp);
			break;
		default:
			caltext_xlic(&ld->text, c, &whole, ld->errs);
			break;
		}
	}
}

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
		session_clear(&cal->sessions[i]);
		memmove(&cal->sessions[i], &cal->sessions[i + 1],
			(cal->n_sessions - i - 1) * sizeof(*cal->sessions));
		cal->n_sessions--;
		return;
	}
	i -= cal->n_sessions;
	deadline_clear(&cal->deadlines[i]);
	memmove(&cal->deadlines[i], &cal->deadlines[i + 1],
		(cal->n_deadlines - i - 1) * sizeof(*cal->deadlines));
	cal->n_deadlines--;
}

/* One namespace for UIDs: they key deliveries and state (INTEROP I6).
 * Strict, a duplicate rejects the file; else the later one is skipped. */
static void check_unique(struct loader *ld)
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

static int session_cmp(const void *a, const void *b)
{
	const struct session *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(x->uid, y->uid);
}

static int deadline_cmp(const void *a, const void *b)
{
	const struct deadline *x = a, *y = b;

	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return strcmp(x->uid, y->uid);
}

/* Parses the text and reads every VCALENDAR in it. */
static void load_text(struct loader *ld, const char *text)
{
	icalcomponent *root = icalparser_parse_string(text);
	icalcomponent_kind kind = root ? icalcomponent_isa(root) : ICAL_NO_COMPONENT;

	if (kind == ICAL_VCALENDAR_COMPONENT) {
		read_vcalendar(ld, root);
	} else if (kind == ICAL_XROOT_COMPONENT) {
		icalcompiter it;
		for (it = icalcomponent_begin_component(root, ICAL_VCALENDAR_COMPONENT);
		     icalcompiter_deref(&it); icalcompiter_next(&it))
			read_vcalendar(ld, icalcompiter_deref(&it));
	}
	if (!ld->text.has_vcalendar)
		fail(ld, 1, "not an iCalendar file: no BEGIN:VCALENDAR");
	else if (kind != ICAL_VCALENDAR_COMPONENT && kind != ICAL_XROOT_COMPONENT &&
		 ld->errs->n == ld->errs_before)
		fail(ld, 1, "does not parse as iCalendar");
	if (root)
		icalcomponent_free(root);
}

static void calendar_sort(struct calendar *cal)
{
	if (cal->n_sessions)
		qsort(cal->sessions, cal->n_sessions, sizeof(struct session), session_cmp);
	if (cal->n_deadlines)
		qsort(cal->deadlines, cal->n_deadlines, sizeof(struct deadline), deadline_cmp);
}

struct calendar *calendar_read(const char *path, const char *sessions_category,
			       struct errlist *warnings, struct errlist *errs)
{
	struct loader ld = {.path = path, .errs = errs, .file_errs = errs, .warnings = warnings,
			    .sessions_category = sessions_category, .errs_before = errs->n};
	size_t len;
	char *text = read_file(path, &len), *body, *parsed;

	if (!text) {
		errlist_add(errs, "%s: cannot read the calendar: %s", path, strerror(errno));
		return NULL;
	}
	/* Windows tools may write a byte order mark; libical does not skip it. */
	body = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;
	caltext_read(&ld.text, path, body, len - (size_t)(body - text), errs);
	ld.cal = xcalloc(1, sizeof(*ld.cal));
	parsed = caltext_for_libical(&ld.text);
	load_text(&ld, parsed);
	free(parsed);
	check_unique(&ld);
	free(text);
	caltext_free(&ld.text);
	if (errs->n > ld.errs_before) {
		calendar_free(ld.cal);
		return NULL;
	}
	calendar_sort(ld.cal);
	return ld.cal;
}

struct calendar *calendar_load(const char *path, struct errlist *errs)
{
	return calendar_read(path, NULL, errs, errs);
}

void calendar_add_session(struct calendar *cal, const struct session *s)
{
	struct session *c;

	cal->sessions = xrealloc(cal->sessions, (cal->n_sessions + 1) * sizeof(*cal->sessions));
	c = &cal->sessions[cal->n_sessions++];
	*c = *s;
	c->uid = xstrdup(s->uid);
	c->summary = xstrdup(s->summary);
	c->location = xstrdup(s->location);
	c->description = xstrdup(s->description);
	c->categories = xstrdup(s->categories);
	calendar_sort(cal);
}

void calendar_add_deadline(struct calendar *cal, const struct deadline *d)
{
	struct deadline *c;

	cal->deadlines = xrealloc(cal->deadlines, (cal->n_deadlines + 1) * sizeof(*cal->deadlines));
	c = &cal->deadlines[cal->n_deadlines++];
	*c = *d;
	c->uid = xstrdup(d->uid);
	c->summary = xstrdup(d->summary);
	c->description = xstrdup(d->description);
	c->categories = xstrdup(d->categories);
	calendar_sort(cal);
}

bool calendar_is_unreadable(const struct calendar *cal, const char *uid)
{
	for (size_t i = 0; cal && uid && i < cal->n_unreadable; i++)
		if (strcmp(cal->unreadable[i], uid) == 0)
			return true;
	return false;
}

void calendar_free(struct calendar *cal)
{
	if (!cal)
		return;
	for (size_t i = 0; i < cal->n_sessions; i++)
		session_clear(&cal->sessions[i]);
	for (size_t i = 0; i < cal->n_deadlines; i++)
		deadline_clear(&cal->deadlines[i]);
	for (size_t i = 0; i < cal->n_unreadable; i++)
		free(cal->unreadable[i]);
	free(cal->unreadable);
	free(cal->sessions);
	free(cal->deadlines);
	free(cal);
}

const struct session *calendar_session(const struct calendar *cal, const char *uid)
{
	for (size_t i = 0; cal && uid && i < cal->n_sessions; i++)
		if (strcmp(cal->sessions[i].uid, uid) == 0)
			return &cal->sessions[i];
	return NULL;
}

const struct deadline *calendar_deadline(const struct calendar *cal, const char *uid)
{
	for (size_t i = 0; cal && uid && i < cal->n_deadlines; i++)
		if (strcmp(cal->deadlines[i].uid, uid) == 0)
			return &cal->deadlines[i];
	return NULL;
}

/* Compares s[0..n) trimmed of spaces with name, ASCII case-insensitively. */
static bool trimmed_caseeq(const char *s, size_t n, const char *name, size_t len)
{
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n == len && strncasecmp(s, name, n) == 0;
}

bool calendar_has_category(const char *categories, const char *name)
{
	size_t len;

	if (!categories || !name)
		return false;
	while (*name == ' ' || *name == '\t')
		name++;
	len = strlen(name);
	while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
		len--;
	if (len == 0)
		return false;
	for (const char *p = categories;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (trimmed_caseeq(p, n, name, len))
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}
