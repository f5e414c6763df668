/* calendar_item.c: one VEVENT or VTODO of a calendar made a session or a
 * deadline (calendar_internal.h), or skipped with each of its problems
 * named by file and line. */
#include "calendar_internal.h"
#include "tz.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
			cal_fail(ld, caltext_prop_line(&ld->text, sp, name), "%s: more than one %s", label, name);
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
			cal_fail(ld, caltext_prop_line(&ld->text, sp, name),
			     "%s: %s: recurring sessions are not supported; give each session its own VEVENT",
			     label, name);
			return false;
		}
	}
	return true;
}

/* SEQUENCE as written, 0 when absent; -1 when it is not a whole number
 * >= 0 (libical reads "SEQUENCE:abc" as 0 without a word), *line and
 * *raw then saying where and what. */
static long sequence_of(struct loader *ld, icalcomponent *comp, const struct span *sp,
			int *line, const char **raw)
{
	long v;

	if (!icalcomponent_get_first_property(comp, ICAL_SEQUENCE_PROPERTY))
		return 0;
	for (size_t i = sp->first + 1; i < sp->last && i < ld->text.n_lines; i++) {
		const char *text = ld->text.lines[i].text;
		if (!caltext_is(text, "SEQUENCE"))
			continue;
		*line = ld->text.lines[i].line;
		*raw = caltext_value(text);
		return parse_int(*raw, 0, INT_MAX, &v) ? v : -1;
	}
	return icalcomponent_get_sequence(comp);
}

/* A session's SEQUENCE, which must be a number. */
static bool read_sequence(struct loader *ld, icalcomponent *comp, const struct span *sp,
			  const char *label, int *out)
{
	const char *raw = "";
	int line = 0;
	long v = sequence_of(ld, comp, sp, &line, &raw);

	*out = v < 0 ? 0 : (int)v;
	if (v < 0)
		cal_fail(ld, line, "%s: SEQUENCE \"%s\" is not a whole number >= 0", label, raw);
	return v >= 0;
}

/* ---- sessions and deadlines ---- */

void cal_session_clear(struct session *s)
{
	free(s->uid);
	free(s->summary);
	free(s->location);
	free(s->description);
	free(s->categories);
}

void cal_deadline_clear(struct deadline *d)
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
		cal_fail(ld, line, "%s: no UID", label);
		ok = false;
	}
	if (!*summary) {
		cal_fail(ld, line, "%s: no SUMMARY", label);
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
static bool item_end(struct loader *ld, icalcomponent *c, const struct span *sp, bool ok,
		     const char *uid)
{
	bool strict = ld->warnings == ld->file_errs;

	ld->errs = ld->file_errs;
	if (!ok && ld->item.n == 0) {
		/* Every item skipped is named: a reader that returns false
		 * without a word is a bug, not a reason for silence. */
		char *label = item_label(c);
		errlist_add_at(&ld->item, ld->path, ld->text.lines[sp->first].line,
			       "%s: could not be read", label);
		free(label);
	}
	ok = ok && ld->item.n == 0;
	for (size_t i = 0; i < ld->item.n; i++) {
		if (strict)
			errlist_add(ld->errs, "%s", ld->item.items[i]);
		else if (uid)
			errlist_add(ld->warnings, "%s; skipped (UID %s)", ld->item.items[i], uid);
		else
			errlist_add(ld->warnings, "%s; skipped", ld->item.items[i]);
	}
	for (size_t i = 0; ok && !strict && i < ld->notes.n; i++)
		errlist_add(ld->warnings, "%s (UID %s)", ld->notes.items[i], uid);
	errlist_free(&ld->item);
	errlist_free(&ld->notes);
	if (!ok && uid)
		calendar_mark_unreadable(ld->cal, uid);
	return ok;
}

/* DTEND;VALUE=DATE after a timed DTSTART (RFC 5545 wants both of one
 * type): the hour is not given, and a date end is exclusive (an all-day
 * event of 12 March ends "20200313"). 00:00 on that day in the programme
 * zone, or the end of it when that is not after the start (a tool that
 * writes the last day itself), said in a warning, is read rather than the
 * session dropped. */
static void date_end(struct loader *ld, const struct span *sp, const char *label,
		     struct icaltimetype day, struct session *s)
{
	char buf[40];

	s->end_date = tz_mktime(day.year, day.month, day.day, 0, 0, 0);
	s->end = s->end_date > s->start ? s->end_date
					: tz_mktime(day.year, day.month, day.day + 1, 0, 0, 0);
	tz_rfc3339(s->end, buf, sizeof(buf));
	if (s->end == s->end_date)
		cal_note(ld, caltext_prop_line(&ld->text, sp, "DTEND"),
			 "%s: DTEND is a date without a time: read as the start of that day (a date "
			 "end is exclusive, RFC 5545), %s", label, buf);
	else
		cal_note(ld, caltext_prop_line(&ld->text, sp, "DTEND"),
			 "%s: DTEND is a date without a time, the day of DTSTART: read as the end of "
			 "that day, %s", label, buf);
}

static bool read_session(struct loader *ld, icalcomponent *vcal, icalcomponent *ev,
			 const struct span *sp, struct session *s)
{
	char *label = item_label(ev);
	struct when w = {vcal, ev, sp, label};
	struct icaltimetype unused, end_day;
	bool end_is_date = false;
	bool ok = check_single(ld, ev, sp, label);

	*s = (struct session){.line = ld->text.lines[sp->first].line};
	ok &= read_ids(ld, ev, sp, label, &s->uid, &s->summary);
	ok &= check_not_recurring(ld, ev, sp, label);
	bool have_start = cal_read_instant(ld, &w, ICAL_DTSTART_PROPERTY, NULL, &s->start, &unused);
	bool have_end = cal_read_instant(ld, &w, ICAL_DTEND_PROPERTY, &end_is_date, &s->end,
					 &end_day);
	if (have_start && have_end && end_is_date)
		date_end(ld, sp, label, end_day, s);
	s->end_is_date = end_is_date;
	if (have_start && have_end && s->end <= s->start) {
		char a[32], b[32];
		tz_rfc3339(s->start, a, sizeof(a));
		tz_rfc3339(s->end, b, sizeof(b));
		cal_fail(ld, caltext_prop_line(&ld->text, sp, "DTEND"), "%s: DTEND %s is not after DTSTART %s",
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
 * all day when that is a date: at the end of its last day when it spans
 * several ("registration open 2-13 December" is due on the 13th). */
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
	ok &= cal_read_instant(ld, &w, event ? ICAL_DTSTART_PROPERTY : ICAL_DUE_PROPERTY,
			       &d->date_only, &d->due, &day);
	/* A deadline day ends at local midnight in the programme zone. */
	if (ok && d->date_only) {
		icaltimetype end = event ? icalcomponent_get_dtend(comp) : icaltime_null_time();

		d->due = tz_mktime(day.year, day.month, day.day + 1, 0, 0, 0);
		/* DTEND of a date is exclusive (RFC 5545): midnight ending the last day. */
		if (!icaltime_is_null_time(end) && end.is_date) {
			time_t last = tz_mktime(end.year, end.month, end.day, 0, 0, 0);
			if (last > d->due)
				d->due = last;
		}
	}
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

static bool is_recurring(icalcomponent *c)
{
	return icalcomponent_get_first_property(c, ICAL_RRULE_PROPERTY) ||
	       icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY) ||
	       icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
}

/* Notes an item read (used: as a session or deadline) for
 * calendar_uid.c, with its SEQUENCE: a deadline's is not read otherwise,
 * and one that is no number orders nothing. */
static void note_seen(struct loader *ld, icalcomponent *c, const struct span *sp,
		      const char *uid, bool used, bool deadline)
{
	const char *raw;
	int line;

	if (!uid)
		return;
	ld->seen = xgrow(ld->seen, &ld->cap_seen, ld->n_seen, sizeof(*ld->seen));
	ld->seen[ld->n_seen++] = (struct seen){
		.uid = xstrdup(uid), .label = item_label(c), .line = ld->text.lines[sp->first].line,
		.recurring = is_recurring(c), .used = used, .deadline = deadline,
		.sequence = (int)sequence_of(ld, c, sp, &line, &raw)};
}

/* Lists an event outside sessions-category (uid is taken). */
static void note_ignored(struct loader *ld, icalcomponent *c, const struct span *sp, char *uid)
{
	ld->cal->ignored = xgrow(ld->cal->ignored, &ld->cap_ignored, ld->cal->n_ignored,
				 sizeof(*ld->cal->ignored));
	ld->cal->ignored[ld->cal->n_ignored++] = (struct cal_ignored){
		.uid = uid, .label = item_label(c), .line = ld->text.lines[sp->first].line,
		.cancelled = icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED};
}

/* True if uid is one of the UIDs that kallad.conf names as deadlines. */
static bool named_deadline(const struct calendar_opts *o, const char *uid)
{
	for (size_t i = 0; uid && i < o->n_deadline_uids; i++)
		if (strcmp(o->deadline_uids[i], uid) == 0)
			return true;
	return false;
}

/* One VEVENT or VTODO: a session, a deadline, or (outside
 * sessions-category) none of kallad's business. */
void cal_read_item(struct loader *ld, icalcomponent *vcal, icalcomponent *c,
		   const struct span *sp)
{
	char *cats = categories_prop(c);
	char *uid = text_prop(c, ICAL_UID_PROPERTY);
	bool todo = icalcomponent_isa(c) == ICAL_VTODO_COMPONENT;
	bool deadline = todo || calendar_has_category(cats, "deadline") ||
			named_deadline(ld->opts, uid);
	bool ignored = !deadline && ld->opts->sessions_category &&
		       !calendar_has_category(cats, ld->opts->sessions_category);
	struct session s;
	struct deadline d;
	bool ok;

	free(cats);
	if (ignored) {
		note_ignored(ld, c, sp, uid);
		return;
	}
	item_begin(ld);
	caltext_xlic(&ld->text, c, sp, ld->errs);
	ok = deadline ? read_deadline(ld, vcal, c, sp, &d) : read_session(ld, vcal, c, sp, &s);
	ok = item_end(ld, c, sp, ok, uid);
	note_seen(ld, c, sp, uid, ok, deadline);
	if (!ok) {
		if (deadline)
			cal_deadline_clear(&d);
		else
			cal_session_clear(&s);
	} else if (deadline) {
		add_deadline(ld, &d);
	} else {
		add_session(ld, &s);
	}
	free(uid);
}

