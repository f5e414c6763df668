/* testutil.h: fixtures the unit tests share (scratch files, commands run
 * for their output, error lists, times, a registrations configuration).
 *
 * Header-only so that CMake can keep building each tests/test_*.c as its
 * own programme: every helper is static inline, and a test that includes
 * this file and uses only some of them still builds -Wall -Wextra clean.
 * Include it after <cmocka.h> (the helpers fail the running test with
 * cmocka's assertions). */
#ifndef KALLAD_TESTUTIL_H
#define KALLAD_TESTUTIL_H

#include "config.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* The Python with the e-mail and icalendar packages (Debian's, not a
 * pyenv one). */
#ifndef PYTHON
#define PYTHON "/usr/bin/python3"
#endif

/* Removes a scratch folder and all below it; true if rm said so. */
static inline bool remove_tree(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int rc = system(cmd);

	free(cmd);
	return rc == 0;
}

/* Writes len bytes to path, made anew; fails the test if it cannot. */
static inline void write_bytes(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
}

/* write_bytes() of a string without its NUL. */
static inline void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

/* Writes len bytes to dir/name; returns the path, which the caller frees. */
static inline char *write_in(const char *dir, const char *name, const void *bytes, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);

	write_bytes(path, bytes, len);
	return path;
}

/* Writes text to dir/name, made anew. */
static inline void put_file(const char *dir, const char *name, const char *text)
{
	free(write_in(dir, name, text, strlen(text)));
}

/* The standard output of the shell command cmd, which the caller frees.
 * Fails the test, showing that output, unless cmd exits with want_status
 * (a death by a signal is no exit status). */
static inline char *cmd_output(const char *cmd, int want_status)
{
	FILE *p = popen(cmd, "r");
	struct strbuf sb;
	char buf[8192];
	size_t n;
	int st;

	assert_non_null(p);
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		sb_addn(&sb, buf, n);
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != want_status)
		fail_msg("%s: status %#x, want exit %d\n%s", cmd, (unsigned)st, want_status, sb.buf);
	return sb_take(&sb);
}

/* What tests/fixtures/mime-readback.py (Python's email and icalendar,
 * which share no code with kallad) reads in dir/name, one "Key: value"
 * line each; with hex, the bodies in hex. name is a shell word left
 * unquoted, so "*.eml" reads every message of dir. The caller frees it. */
static inline char *readback(const char *dir, const char *name, bool hex)
{
	char *cmd = xasprintf("%s '%s/mime-readback.py' %s'%s'/%s", PYTHON, FIXTURES,
			      hex ? "--hex " : "", dir, name);
	char *out = cmd_output(cmd, 0);

	free(cmd);
	return out;
}

/* A shell command (the caller frees it) that runs tests/check_message.py
 * (the interop rules, read with Python's email and icalendar) over path,
 * then ../shared/tools/check-message too when it is there (its report to
 * stderr: a failure shows in the exit status). */
static inline char *check_message_cmd(const char *organizer, const char *path)
{
	const char *d = getenv("KALLAD_SHARED_DIR");
	char *shared = xasprintf("%s/tools/check-message", d && *d ? d : SOURCE_DIR "/../shared");
	char *cmd = xasprintf("%s '%s/tests/check_message.py' --organizer %s '%s' && "
			      "{ [ ! -x '%s' ] || '%s' --organizer %s '%s' >&2; }",
			      PYTHON, SOURCE_DIR, organizer, path, shared, shared, organizer, path);

	free(shared);
	return cmd;
}

/* Whether an entry of the error or warning list holds a, and b too
 * unless b is NULL. */
static inline bool has_entry(const struct errlist *list, const char *a, const char *b)
{
	for (size_t i = 0; i < list->n; i++)
		if (strstr(list->items[i], a) && (!b || strstr(list->items[i], b)))
			return true;
	return false;
}

/* Prints each entry of an error or warning list (to read when a test
 * fails). */
static inline void dump(const struct errlist *list)
{
	for (size_t i = 0; i < list->n; i++)
		print_message("  %s\n", list->items[i]);
}

/* The time_t of a UTC wall-clock time. */
static inline time_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi};

	return timegm(&tm);
}

/* A configuration read from conf_path whose registrations are at
 * registrations (a database or a CSV file), in Swedish. */
static inline struct config registrations_config(const char *conf_path, char *registrations)
{
	struct config cfg = {0};

	cfg.path = (char *)conf_path;
	cfg.registrations = registrations;
	cfg.language = "sv";
	return cfg;
}

#endif
