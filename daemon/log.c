#include "log.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static bool log_verbose;
static bool log_journal;

/* JOURNAL_STREAM names the device and inode of the journal's stream; only
 * when stderr is that stream are "<N>" prefixes right (sd-daemon(3)). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_init(bool verbose)
{
	log_verbose = verbose;
	log_journal = stderr_is_journal();
}

bool log_is_verbose(void)
{
	return log_verbose;
}

void log_msg(int priority, const char *fmt, ...)
{
	static const char *names[] = {"emergency", "alert", "critical", "error",
				      "warning", "notice", "info", "debug"};
	struct strbuf sb;
	va_list ap;

	if (priority == LOG_DEBUG && !log_verbose)
		return;
	sb_init(&sb);
	if (log_journal)
		sb_addf(&sb, "<%d>", priority);
	else if (priority <= LOG_WARNING)
		sb_addf(&sb, "kallad: %s: ", names[priority & 7]);
	else
		sb_add(&sb, "kallad: ");
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	/* A value logged may carry a newline from bad input; one event, one line. */
	for (size_t i = 0; i < sb.len; i++)
		if (sb.buf[i] == '\n' || sb.buf[i] == '\r')
			sb.buf[i] = ' ';
	sb_addc(&sb, '\n');
	fputs(sb.buf, stderr);
	sb_free(&sb);
}
