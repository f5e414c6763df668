/* calendar.c: the session calendar (SPEC §1.2), read with libical.
 *
 * libical parses leniently and silently: it never fails on a bad line (it
 * leaves X-LIC-ERROR properties), drops unknown components, accepts a
 * mismatched END, reads "SEQUENCE:abc" as 0, leaves an unknown TZID
 * unresolved, and keeps no line numbers. So the raw text is indexed too
 * (calendar_text.c) and every problem is reported as "file:line: what".
 * An item kallad cannot use is skipped with a warning (or, strict, the
 * whole file rejected). */
#include "calendar_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cal_fail(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errlist_vadd_at(ld->errs, ld->path, line, fmt, ap);
	va_end(ap);
}

void cal_note(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errlist_vadd_at(&ld->notes, ld->path, line, fmt, ap);
	va_end(ap);
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
		cal_fail(ld, caltext_xlic_line(&ld->text, &whole, msg ? msg : ""), "%s", msg ? msg : "parse error");
	}
	for (it = icalcomponent_begin_component(vcal, ICAL_ANY_COMPONENT);
	     icalcompiter_deref(&it); icalcompiter_next(&it)) {
		icalcomponent *c = icalcompiter_deref(&it);
		struct span sp;

		switch (icalcomponent_isa(c)) {
		case ICAL_VEVENT_COMPONENT:
			sp = next_span(ld, &ld->text.events, &ld->next_event);
			cal_read_item(ld, vcal, c, &sp);
			break;
		case ICAL_VTODO_COMPONENT:
			sp = next_span(ld, &ld->text.todos, &ld->next_todo);
			cal_read_item(ld, vcal, c, &sp);
			break;
		default:
			caltext_xlic(&ld->text, c, &whole, ld->errs);
			break;
		}
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
		cal_fail(ld, 1, "not an iCalendar file: no BEGIN:VCALENDAR");
	else if (kind != ICAL_VCALENDAR_COMPONENT && kind != ICAL_XROOT_COMPONENT &&
		 ld->errs->n == ld->errs_before)
		cal_fail(ld, 1, "does not parse as iCalendar");
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

struct calendar *calendar_read(const char *path, const struct calendar_opts *opts,
			       struct errlist *warnings, struct errlist *errs)
{
	static const struct calendar_opts none;
	struct loader ld = {.path = path, .errs = errs, .file_errs = errs, .warnings = warnings,
			    .opts = opts ? opts : &none, .errs_before = errs->n};
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
	cal_check_unique(&ld);
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

void calendar_mark_unreadable(struct calendar *cal, const char *uid)
{
	if (calendar_is_unreadable(cal, uid))
		return;
	cal->unreadable = xrealloc(cal->unreadable, (cal->n_unreadable + 1) * sizeof(*cal->unreadable));
	cal->unreadable[cal->n_unreadable++] = xstrdup(uid);
}

void calendar_remove_session(struct calendar *cal, const char *uid)
{
	for (size_t i = 0; i < cal->n_sessions; i++) {
		if (strcmp(cal->sessions[i].uid, uid) != 0)
			continue;
		cal_session_clear(&cal->sessions[i]);
		memmove(&cal->sessions[i], &cal->sessions[i + 1],
			(cal->n_sessions - i - 1) * sizeof(*cal->sessions));
		cal->n_sessions--;
		return;
	}
}

void calendar_free(struct calendar *cal)
{
	if (!cal)
		return;
	for (size_t i = 0; i < cal->n_sessions; i++)
		cal_session_clear(&cal->sessions[i]);
	for (size_t i = 0; i < cal->n_deadlines; i++)
		cal_deadline_clear(&cal->deadlines[i]);
	for (size_t i = 0; i < cal->n_unreadable; i++)
		free(cal->unreadable[i]);
	free(cal->unreadable);
	for (size_t i = 0; i < cal->n_ignored; i++) {
		free(cal->ignored[i].uid);
		free(cal->ignored[i].label);
	}
	free(cal->ignored);
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
