/* fuzz_pipeline.c: the whole of one programme from arbitrary bytes. The
 * input is up to three parts separated by form feeds (\f): kallad.conf,
 * the calendar it names as programme.ics, and the registrations CSV it
 * names as deltagare.csv. They are loaded as the daemon loads them
 * (programme_load: configuration, zone, calendar, the shipped and the
 * example's own templates, registrations), synchronised with an empty
 * state database in memory and planned against it as the daemon's first
 * pass does, then planned at three moments with
 * a memory in which some participants already hold the sessions (so
 * updates and cancels are planned too), and every delivery not skipped is
 * built into a whole message (template, iCalendar part, MIME; an update
 * against the session as it was an hour earlier elsewhere) and described
 * in words as --plan --explain and the log describe it.
 *
 * A crash, a sanitizer report, a programme or message refused without a
 * word, or a message that is not what INTEROP.md says we send (CRLF lines
 * of at most 998 octets, ASCII headers with no bare CR or LF, one blank
 * line before the body, a To: and a Message-ID) is a bug.
 *
 *   scripts/fuzz (cmake -DKALLAD_FUZZ=ON with clang) builds and runs it;
 *   seeds: tests/fuzz/corpus/fuzz_pipeline/ (the example programme). */
#include "describe.h"
#include "message.h"
#include "plan.h"
#include "programme.h"
#include "tz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Deliveries built per input at most: a large programme is no more
 * interesting than a small one, only slower. */
#define MAX_BUILT 16

static char dir[64];
static char old_place[] = "Rådhuset, Storgatan 1";
static char conf[128], ics[128], csv[128];

struct run {
	const struct programme *pg;
	time_t now;
	size_t built;
};

/* What setup() made: gone when the fuzzer exits. */
static void cleanup(void)
{
	const char *names[] = {"kallad.conf", "programme.ics", "deltagare.csv", "templates",
			       "material"};
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void setup(void)
{
	char link[256];

	snprintf(dir, sizeof(dir), "/tmp/kallad-fuzz-pipeline-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
	snprintf(conf, sizeof(conf), "%s/kallad.conf", dir);
	snprintf(ics, sizeof(ics), "%s/programme.ics", dir);
	snprintf(csv, sizeof(csv), "%s/deltagare.csv", dir);
	/* The example programme's own templates and material, beside the
	 * configuration as `templates = templates` and the default material/. */
	snprintf(link, sizeof(link), "%s/templates", dir);
	if (symlink(KALLAD_SOURCE_TEMPLATES "/../config/templates", link) < 0)
		abort();
	snprintf(link, sizeof(link), "%s/material", dir);
	if (symlink(KALLAD_SOURCE_TEMPLATES "/../config/material", link) < 0)
		abort();
}

static void put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

/* ---- a memory: nothing recorded; some participants hold sessions ------- */

static time_t mem_known(void *o, const char *kind, const char *id, time_t now)
{
	(void)o, (void)kind, (void)id;
	return now - 400 * 86400L;
}

static bool mem_recorded(void *o, const char *key, time_t *retry_at)
{
	(void)o, (void)key;
	if (retry_at)
		*retry_at = 0;
	return false;
}

static bool mem_owed_since(void *o, const struct delivery *d, time_t *since)
{
	(void)o;
	*since = d->p->registered_at;
	return true;
}

static bool mem_fulfilled(void *o, const char *oid)
{
	(void)o, (void)oid;
	return false;
}

static bool mem_released(void *o, const char *key)
{
	(void)o, (void)key;
	return false;
}

/* Those whose address has an odd length hold every session, at an older
 * SEQUENCE and content: they get updates (or cancels), the others invites. */
static bool mem_attendance(void *o, const char *email, const struct session *s,
			   struct attendance *out)
{
	(void)o, (void)s;
	memset(out, 0, sizeof(*out));
	if (strlen(email) % 2 == 0)
		return false;
	*out = (struct attendance){.invited = true, .sequence = 0, .content = 1};
	return true;
}

static enum answer mem_answer(void *o, const char *email, const char *uid)
{
	(void)o, (void)uid;
	return strlen(email) % 3 == 0 ? ANS_DECLINED : ANS_NONE;
}

static bool mem_bounced(void *o, const char *email)
{
	(void)o;
	return strlen(email) % 7 == 0;
}

/* ---- what we send ------------------------------------------------------ */

static void check_message(const char *msg, size_t len)
{
	const char *end = msg + len, *line = msg;
	bool in_header = true, to = false, id = false;

	if (!len || memchr(msg, '\0', len))
		abort();
	while (line < end) {
		const char *crlf = memmem(line, (size_t)(end - line), "\r\n", 2);
		size_t n;

		if (!crlf)
			abort(); /* the last line too ends in CRLF */
		n = (size_t)(crlf - line);
		if (n > 998 || memchr(line, '\n', n) || memchr(line, '\r', n))
			abort();
		if (in_header) {
			if (n == 0) {
				in_header = false;
			} else if (line[0] == ' ' || line[0] == '\t') {
				if (line == msg)
					abort();
			} else {
				const char *colon = memchr(line, ':', n);

				if (!colon || colon == line)
					abort(); /* neither a header nor a continuation: injected */
				for (const char *c = line; c < colon; c++)
					if (*c <= ' ' || *c > '~')
						abort();
				to |= colon - line == 2 && strncasecmp(line, "To", 2) == 0;
				id |= colon - line == 10 && strncasecmp(line, "Message-ID", 10) == 0;
			}
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)line[i] >= 0x80)
					abort(); /* headers are ASCII (RFC 2047 words) */
		}
		line = crlf + 2;
	}
	if (in_header || !to || !id)
		abort();
}

static void build(const struct delivery *d, void *arg)
{
	struct run *r = arg;
	struct errlist errs = {0};
	struct message_req req;
	size_t len = 0;
	char *msg;

	char why[512], *words;
	struct session before;

	if (r->built >= MAX_BUILT)
		return;
	r->built++;
	plan_explain(d, r->now, why, sizeof(why));
	words = describe_delivery(d);
	if (!why[0] || !words || !*words)
		abort();
	free(words);
	if (d->skip)
		return;
	if (d->session) {
		before = *d->session;
		before.start -= 3600;
		before.end -= 3600;
		before.location = old_place;
	}
	req = (struct message_req){.message = d->message, .p = d->p, .session = d->session,
				   .deadline = d->deadline,
				   .previous = d->session && strcmp(d->message, "update") == 0
						       ? &before : NULL,
				   .sequence = d->sequence, .key = d->key, .now = r->now};
	msg = message_build(r->pg->cfg, r->pg->cal, r->pg->reg, r->pg->tpl, &req, &len, &errs);
	if (!msg && !errs.n)
		abort();
	if (msg)
		check_message(msg, len);
	free(msg);
	errlist_free(&errs);
}

static void plan_at(const struct programme *pg, time_t now)
{
	struct run r = {pg, now, 0};
	struct plan_ctx ctx = {.cfg = pg->cfg, .cal = pg->cal, .reg = pg->reg, .now = now,
			       .mem = {.known_since = mem_known, .recorded = mem_recorded,
				       .owed_since = mem_owed_since, .fulfilled = mem_fulfilled,
				       .released = mem_released, .attendance = mem_attendance,
				       .answer = mem_answer, .bounced = mem_bounced}};

	plan_all(&ctx, build, NULL, &r);
}

/* The first pass as the daemon makes it: the calendar synchronised with
 * a state database (an empty one, in memory) and planned against it. */
static void plan_stored(struct programme *pg, time_t now)
{
	struct errlist errs = {0};
	struct state *st = state_open("/nonexistent/kallad-fuzz/state.db", true, &errs);
	struct run r = {pg, now, 0};
	struct plan_ctx ctx;
	size_t held = 0;

	if (!st)
		abort();
	if (programme_sync(pg, st, NULL, &held)) {
		programme_plan_ctx(pg, st, now, &ctx);
		plan_all(&ctx, build, NULL, &r);
		programme_plan_done(&ctx);
	}
	state_close(st);
	errlist_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[3] = {data, NULL, NULL};
	size_t len[3] = {size, 0, 0};
	struct errlist errs = {0};
	struct programme *pg;
	int failed = 0;

	if (!dir[0])
		setup();
	for (int i = 1; i < 3; i++) {
		const uint8_t *ff = memchr(part[i - 1], '\f', len[i - 1]);

		if (!ff)
			break;
		part[i] = ff + 1;
		len[i] = len[i - 1] - (size_t)(part[i] - part[i - 1]);
		len[i - 1] = (size_t)(ff - part[i - 1]);
	}
	put(conf, data, len[0]);
	put(ics, part[1] ? part[1] : data, len[1]);
	put(csv, part[2] ? part[2] : data, len[2]);
	pg = programme_load(conf, &errs, &failed);
	if (!pg && !errs.n)
		abort();
	if (pg && pg->cal->n_sessions) {
		/* Before the first session (invites, reminders due), between
		 * (some passed), and after the last (events passed). */
		const struct calendar *cal = pg->cal;

		plan_stored(pg, cal->sessions[0].start - 20 * 86400L);
		plan_at(pg, cal->sessions[0].start - 20 * 86400L);
		plan_at(pg, cal->sessions[cal->n_sessions / 2].start - 86400L);
		plan_at(pg, cal->sessions[cal->n_sessions - 1].end + 3600);
	}
	programme_free(pg);
	errlist_free(&errs);
	return 0;
}
