/* fuzz_calendar.c: arbitrary bytes as the session calendar, through the
 * readers of daemon/calendar.c (libical underneath: the strict one and
 * the tolerant one the daemon uses), and each session they
 * accept through the invite writer of daemon/ical.c. A crash, a sanitizer
 * report, a calendar rejected without a word, an accepted one whose
 * sessions end before they start or lie outside 1970-2200, or an invite
 * whose lines are not folded CRLF lines of one VEVENT (a summary that
 * injects properties or components) is a bug.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it. */
#include "calendar.h"
#include "ical.h"
#include "tz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The reader takes a path: the input goes to a memory file behind one. */
static int memfd = -1;
static char path[64];

/* CRLF lines of at most 75 octets; one VEVENT; nothing after END:VCALENDAR. */
static void check_invite(const struct session *s)
{
	struct ical_req req = {ICAL_KIND_REQUEST, s, 1, "Lena", "lena@example.org", "Anna",
			       "anna@example.org", 1577836800};
	char *ics = ical_build(&req);
	int events = 0;

	if (!ics)
		abort();
	for (char *line = ics; *line;) {
		char *crlf = strstr(line, "\r\n");

		if (!crlf || crlf - line > 75 || memchr(line, '\n', (size_t)(crlf - line)) ||
		    memchr(line, '\r', (size_t)(crlf - line)))
			abort();
		events += strncmp(line, "BEGIN:VEVENT\r\n", 14) == 0;
		if (strncmp(line, "END:VCALENDAR\r\n", 15) == 0 && crlf[2])
			abort();
		line = crlf + 2;
	}
	if (events != 1)
		abort();
	free(ics);
}

static void check(const struct calendar *cal)
{
	for (size_t i = 0; cal && i < cal->n_sessions; i++) {
		const struct session *s = &cal->sessions[i];

		if (s->end <= s->start || !tz_in_range(s->start) || !tz_in_range(s->end) || !s->uid)
			abort();
		if (i && cal->sessions[i - 1].start > s->start)
			abort(); /* sorted by start */
		check_invite(s);
	}
	for (size_t i = 0; cal && i < cal->n_deadlines; i++)
		if (!cal->deadlines[i].uid || cal->deadlines[i].due <= 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const deadlines[] = {"5r6s7t8u9v0w1x2y3z4a5b6c7d@google.com"};
	static const struct calendar_opts opts = {"Styra och leda", deadlines, 1};
	struct errlist errs = {0}, warnings = {0};
	struct calendar *cal;

	if (memfd < 0) {
		if (!tz_set("Europe/Stockholm") || (memfd = memfd_create("fuzz.ics", 0)) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	/* Strict (calendar_load), then as organisers' tools export it
	 * (calendar_read, what the daemon uses), with and without a
	 * sessions category and a deadline named by UID (the corpus's
	 * Google export): the same promises of what comes out. */
	cal = calendar_load(path, &errs);
	if (!cal && !errs.n)
		abort();
	check(cal);
	calendar_free(cal);
	errlist_free(&errs);
	cal = calendar_read(path, size % 2 ? &opts : NULL, &warnings, &errs);
	if (!cal && !errs.n)
		abort();
	if (cal && cal->n_unreadable > warnings.n)
		abort(); /* every event skipped has its warning */
	check(cal);
	calendar_free(cal);
	errlist_free(&errs);
	errlist_free(&warnings);
	return 0;
}
