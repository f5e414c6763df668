/* calendar_text.c: the raw text of a calendar file (calendar_text.h). */
#include "calendar_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void fail(struct caltext *t, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct caltext *t, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errlist_vadd_at(t->errs, t->path, line, fmt, ap);
	va_end(ap);
}

/* ---- the raw text ---- */

static void raw_add(struct caltext *t, char *text, int line)
{
	t->lines = xgrow(t->lines, &t->cap_lines, t->n_lines, sizeof(*t->lines));
	t->lines[t->n_lines++] = (struct rawline){.text = text, .line = line};
}

/* Splits text into unfolded content lines (RFC 5545 §3.1: a line starting
 * with a space or tab continues the previous one). Validity of UTF-8 is
 * checked after unfolding, since a careless folder may split a sequence. */
static void raw_split(struct caltext *t, const char *text, size_t len)
{
	struct strbuf cur;
	int line = 0, cur_line = 0;
	size_t pos = 0;
	bool have = false;

	sb_init(&cur);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;

		line++;
		if (n > 0 && text[pos + n - 1] == '\r')
			n--;
		if (have && n > 0 && (text[pos] == ' ' || text[pos] == '\t')) {
			sb_addn(&cur, text + pos + 1, n - 1);
		} else {
			if (have)
				raw_add(t, sb_take(&cur), cur_line);
			sb_addn(&cur, text + pos, n);
			cur_line = line;
			have = true;
		}
		pos = end + 1;
	}
	if (have)
		raw_add(t, sb_take(&cur), cur_line);
	sb_free(&cur);
}

/* True for a property line with an empty value ("LOCATION:", as Google
 * writes for an event without a place): libical rejects those, but to an
 * organiser they are absent. BEGIN and END are never empty. */
static bool raw_empty(const char *text);

/* The text libical parses: the unfolded lines without empty properties.
 * The raw lines keep their numbers for messages. */
char *caltext_for_libical(const struct caltext *t)
{
	struct strbuf sb;

	sb_init(&sb);
	for (size_t i = 0; i < t->n_lines; i++) {
		if (raw_empty(t->lines[i].text))
			continue;
		sb_add(&sb, t->lines[i].text);
		sb_add(&sb, "\r\n");
	}
	return sb_take(&sb);
}

/* True if the content line's property name is name (case-insensitive). */
bool caltext_is(const char *text, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(text, name, n) == 0 && (text[n] == ':' || text[n] == ';');
}

/* The value of a content line: after the first ':' outside a quoted
 * parameter value; "" if there is none. */
const char *caltext_value(const char *text)
{
	bool quoted = false;

	for (; *text; text++) {
		if (*text == '"')
			quoted = !quoted;
		else if (*text == ':' && !quoted)
			return text + 1;
	}
	return text;
}

static bool raw_empty(const char *text)
{
	const char *v = caltext_value(text);

	if (v == text + strlen(text) && !strchr(text, ':'))
		return false; /* no ':' at all: not a property line, libical reports it */
	return v[strspn(v, " \t")] == '\0' && !caltext_is(text, "BEGIN") && !caltext_is(text, "END");
}

/* The BEGIN or END component name of a line, trimmed, into buf. */
static bool raw_marker(const char *text, const char *marker, char *buf, size_t len)
{
	const char *v;
	size_t n;

	if (!caltext_is(text, marker))
		return false;
	v = caltext_value(text);
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return true;
}

struct frame {
	char name[64];
	size_t index;
	struct spans *spans; /* where to record its end, or NULL */
	size_t slot;
};

static void spans_add(struct spans *s, size_t first, size_t last)
{
	s->v = xgrow(s->v, &s->cap, s->n, sizeof(*s->v));
	s->v[s->n++] = (struct span){first, last};
}

static void raw_begin(struct caltext *t, struct frame *stack, size_t depth, size_t i,
		      const char *name)
{
	struct frame *f = &stack[depth];
	bool in_vcal = depth > 0 && strcasecmp(stack[depth - 1].name, "VCALENDAR") == 0;

	snprintf(f->name, sizeof(f->name), "%s", name);
	f->index = i;
	f->spans = NULL;
	if (strcasecmp(name, "VCALENDAR") == 0)
		t->has_vcalendar = true;
	if (in_vcal && strcasecmp(name, "VEVENT") == 0)
		f->spans = &t->events;
	else if (in_vcal && strcasecmp(name, "VTODO") == 0)
		f->spans = &t->todos;
	if (f->spans) {
		f->slot = f->spans->n;
		spans_add(f->spans, i, t->n_lines - 1);
	}
}

/* Checks that BEGIN and END lines nest (libical accepts "BEGIN:VEVENT ...
 * END:VTODO" and returns nothing at all for an unclosed component) and
 * records where each session and deadline is. */
static void raw_structure(struct caltext *t)
{
	enum { MAX_DEPTH = 32 };
	struct frame stack[MAX_DEPTH];
	size_t depth = 0, outside = 0;
	int outside_line = 0;
	char name[64];

	for (size_t i = 0; i < t->n_lines; i++) {
		const char *text = t->lines[i].text;
		int line = t->lines[i].line;

		if (raw_marker(text, "BEGIN", name, sizeof(name))) {
			if (depth == MAX_DEPTH) {
				fail(t, line, "components nested too deeply");
				return;
			}
			raw_begin(t, stack, depth++, i, name);
		} else if (raw_marker(text, "END", name, sizeof(name))) {
			if (depth == 0) {
				fail(t, line, "END:%s without a BEGIN", name);
				continue;
			}
			struct frame *f = &stack[--depth];
			if (strcasecmp(f->name, name) != 0)
				fail(t, line, "END:%s does not close BEGIN:%s of line %d", name,
				     f->name, t->lines[f->index].line);
			if (f->spans)
				f->spans->v[f->slot].last = i;
		} else if (depth == 0 && text[strspn(text, " \t")] != '\0' && !outside++) {
			/* The first is enough; a file of garbage gets one message. */
			outside_line = line;
		}
	}
	if (outside && t->has_vcalendar)
		fail(t, outside_line, "text outside BEGIN:VCALENDAR ... END:VCALENDAR");
	while (depth > 0) {
		struct frame *f = &stack[--depth];
		fail(t, t->lines[f->index].line, "BEGIN:%s is never closed by END:%s", f->name,
		     f->name);
	}
}

/* Reports NUL bytes and invalid UTF-8 or control characters, which
 * libical passes through into mail headers and bodies. */
static void raw_check_text(struct caltext *t, const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len);

	if (nul) {
		int line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		fail(t, line, "NUL byte in the file");
	}
	for (size_t i = 0; i < t->n_lines; i++) {
		const char *s = t->lines[i].text;
		if (!str_valid_utf8(s, strlen(s)))
			fail(t, t->lines[i].line, "invalid UTF-8 or a control character");
	}
}

/* The physical line of property name directly inside the component at sp
 * (not inside a nested VALARM), or the component's own line. */
int caltext_prop_line(const struct caltext *t, const struct span *sp, const char *name)
{
	int depth = 0;

	for (size_t i = sp->first + 1; i < sp->last && i < t->n_lines; i++) {
		const char *text = t->lines[i].text;
		if (caltext_is(text, "BEGIN"))
			depth++;
		else if (caltext_is(text, "END"))
			depth--;
		else if (depth == 0 && caltext_is(text, name))
			return t->lines[i].line;
	}
	return t->lines[sp->first].line;
}

/* ---- X-LIC-ERROR: what libical could not parse ---- */

/* libical's messages end in ": <offending text>"; the first unclaimed line
 * of the span holding that text is where it came from. */
int caltext_xlic_line(struct caltext *t, const struct span *sp, const char *msg)
{
	const char *sep = strstr(msg, ": "), *what;

	while (sep && strstr(sep + 2, ": "))
		sep = strstr(sep + 2, ": ");
	what = sep ? sep + 2 : NULL;
	for (size_t i = sp->first; what && *what && i <= sp->last && i < t->n_lines; i++) {
		struct rawline *rl = &t->lines[i];
		if (!rl->claimed && strstr(rl->text, what)) {
			rl->claimed = true;
			return rl->line;
		}
	}
	return t->n_lines ? t->lines[sp->first].line : 1;
}

/* Reports every X-LIC-ERROR in comp and the components inside it. */
void caltext_xlic(struct caltext *t, icalcomponent *comp, const struct span *sp,
		  struct errlist *errs)
{
	icalproperty *p;
	icalcompiter it;

	for (p = icalcomponent_get_first_property(comp, ICAL_XLICERROR_PROPERTY); p;
	     p = icalcomponent_get_next_property(comp, ICAL_XLICERROR_PROPERTY)) {
		const char *msg = icalproperty_get_xlicerror(p);
		errlist_add_at(errs, t->path, caltext_xlic_line(t, sp, msg ? msg : ""), "%s",
			       msg ? msg : "parse error");
	}
	for (it = icalcomponent_begin_component(comp, ICAL_ANY_COMPONENT);
	     icalcompiter_deref(&it); icalcompiter_next(&it))
		caltext_xlic(t, icalcompiter_deref(&it), sp, errs);
}

void caltext_read(struct caltext *t, const char *path, const char *text, size_t len,
		  struct errlist *errs)
{
	*t = (struct caltext){.path = path, .errs = errs};
	raw_split(t, text, len);
	raw_check_text(t, text, len);
	raw_structure(t);
}

void caltext_free(struct caltext *t)
{
	for (size_t i = 0; i < t->n_lines; i++)
		free(t->lines[i].text);
	free(t->lines);
	free(t->events.v);
	free(t->todos.v);
}
