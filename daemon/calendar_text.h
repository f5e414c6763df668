/* calendar_text.h: the raw text of a calendar file, indexed beside what
 * libical makes of it (calendar.c). libical parses leniently and
 * silently: it never fails on a bad line (it leaves X-LIC-ERROR
 * properties), drops unknown components, accepts a mismatched END, and
 * keeps no line numbers. So the text is indexed here too (unfolded lines,
 * BEGIN/END structure, where each VEVENT and VTODO starts), and every
 * problem can be reported as "file:line: what". */
#ifndef KALLAD_CALENDAR_TEXT_H
#define KALLAD_CALENDAR_TEXT_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>

#include <libical/ical.h>

/* One unfolded content line of the raw file. */
struct rawline {
	char *text; /* unfolded, without CR/LF */
	int line;   /* physical line where it starts */
	bool claimed; /* already named by an X-LIC-ERROR report */
};

/* Where a VEVENT or VTODO directly inside a VCALENDAR sits in the text. */
struct span {
	size_t first, last; /* indices of its BEGIN and END (or last) lines */
};

struct spans {
	struct span *v;
	size_t n, cap;
};

struct caltext {
	const char *path;
	struct errlist *errs; /* problems of the file as a whole */
	struct rawline *lines;
	size_t n_lines, cap_lines;
	struct spans events, todos; /* in file order */
	bool has_vcalendar;
};

/* Indexes text (len bytes, without a byte order mark) as t->path: splits
 * it into unfolded lines, reports NUL bytes, invalid UTF-8 and BEGIN/END
 * that do not nest into errs, and records where each VEVENT and VTODO is. */
void caltext_read(struct caltext *t, const char *path, const char *text, size_t len,
		  struct errlist *errs);
void caltext_free(struct caltext *t);

/* The text libical parses: the unfolded lines without empty properties
 * ("LOCATION:", as Google writes it), which libical rejects but which to
 * an organiser are absent ones. Caller frees. */
char *caltext_for_libical(const struct caltext *t);

/* True if the content line's property name is name (case-insensitive). */
bool caltext_is(const char *text, const char *name);
/* The value of a content line: after the first ':' outside a quoted
 * parameter value; "" if there is none. */
const char *caltext_value(const char *text);
/* The physical line of property name directly inside the component at sp
 * (not inside a nested VALARM), or the component's own line. */
int caltext_prop_line(const struct caltext *t, const struct span *sp, const char *name);

/* Where libical's X-LIC-ERROR message msg came from, within sp. */
int caltext_xlic_line(struct caltext *t, const struct span *sp, const char *msg);
/* Reports every X-LIC-ERROR in comp and the components inside it to errs. */
void caltext_xlic(struct caltext *t, icalcomponent *comp, const struct span *sp,
		  struct errlist *errs);

#endif
