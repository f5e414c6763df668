#include "programme.h"

#include "tz.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KALLAD_SOURCE_TEMPLATES
#define KALLAD_SOURCE_TEMPLATES ""
#endif

char *programme_pidfile(const struct config *cfg)
{
	const char *slash = strrchr(cfg->state, '/');

	if (!slash)
		return xstrdup("kallad.pid");
	return xasprintf("%.*s/kallad.pid", (int)(slash - cfg->state), cfg->state);
}

void programme_nudge_daemon(const struct config *cfg)
{
	char *path = programme_pidfile(cfg), *comm_path, *comm;
	char *text = read_file(path, NULL);
	long pid = text ? strtol(text, NULL, 10) : 0;

	/* A pid file left by a crash may name another process by now: only
	 * a process called kallad gets the signal. */
	if (pid > 0 && pid != (long)getpid()) {
		comm_path = xasprintf("/proc/%ld/comm", pid);
		comm = read_file(comm_path, NULL);
		if (comm && strncmp(comm, "kallad", 6) == 0)
			kill((pid_t)pid, SIGUSR1);
		free(comm);
		free(comm_path);
	}
	free(text);
	free(path);
}

const char *programme_shipped_templates(void)
{
	const char *env = getenv("KALLAD_TEMPLATES_DIR");

	if (!str_empty(env))
		return env;
	if (access(KALLAD_DATADIR "/templates", R_OK) == 0)
		return KALLAD_DATADIR "/templates";
	return KALLAD_SOURCE_TEMPLATES;
}

void programme_free(struct programme *pg)
{
	if (!pg)
		return;
	reg_free(pg->reg);
	tpl_free(pg->tpl);
	calendar_free(pg->cal);
	config_free(pg->cfg);
	errlist_free(&pg->warnings);
	free(pg);
}

/* Reads every part, each even when another failed (--check reports all);
 * the parts that failed are NULL and named in *failed. */
static struct programme *load_parts(const char *config_path, struct errlist *errs, int *failed)
{
	struct programme *pg = xcalloc(1, sizeof(*pg));

	*failed = 0;
	if (!(pg->cfg = config_load(config_path, errs))) {
		*failed = PART_CONFIG;
		return pg;
	}
	if (!tz_set(pg->cfg->timezone)) {
		errlist_add(errs, "%s: timezone: no zone %s in the tz database", pg->cfg->path,
			    pg->cfg->timezone);
		*failed |= PART_CONFIG;
	}
	if (!(pg->cal = calendar_load(pg->cfg->calendar, errs)))
		*failed |= PART_CALENDAR;
	if (!(pg->tpl = tpl_load(programme_shipped_templates(), pg->cfg->templates, errs)))
		*failed |= PART_TEMPLATES;
	if (!(pg->reg = reg_load(pg->cfg, &pg->warnings, errs)))
		*failed |= PART_REGISTRATIONS;
	return pg;
}

struct programme *programme_load(const char *config_path, struct errlist *errs, int *failed)
{
	struct programme *pg = load_parts(config_path, errs, failed);

	if (*failed) {
		programme_free(pg);
		return NULL;
	}
	return pg;
}

/* The answers of the state database that do not change during a pass,
 * kept for the pass: when rule definitions and targets were first known
 * (a handful). Each saved query is a database transaction less per
 * delivery. */
struct plan_memo {
	struct state *st;
	struct {
		char *kind, *id;
		time_t t;
	} *items;
	size_t n, cap;
	bool legacy; /* state_legacy_known() */
	time_t now;
};

static time_t latest_of(time_t a, time_t b)
{
	return a > b ? a : b;
}

static time_t mem_known(void *opaque, const char *kind, const char *id, time_t now)
{
	struct plan_memo *m = opaque;

	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[i].kind, kind) == 0 && strcmp(m->items[i].id, id) == 0)
			return m->items[i].t;
	m->items = xgrow(m->items, &m->cap, m->n, sizeof(*m->items));
	m->items[m->n].kind = xstrdup(kind);
	m->items[m->n].id = xstrdup(id);
	return m->items[m->n++].t = state_known_since(m->st, kind, id, now);
}

static bool mem_recorded(void *opaque, const char *key, time_t *retry_at)
{
	struct plan_memo *m = opaque;
	struct delivery_row row;
	bool done;

	*retry_at = 0;
	if (!state_delivery_get(m->st, key, &row))
		return false;
	/* Retryable rows, and claims whose process may have died, are planned
	 * again; claiming decides whether they go. */
	done = row.state == DS_SENT || row.state == DS_FAILED || row.state == DS_SKIPPED;
	if (row.state == DS_TRANSIENT || row.state == DS_UNKNOWN)
		*retry_at = row.next_attempt;
	state_row_free(&row);
	return done;
}

static bool mem_owed_since(void *opaque, const struct delivery *d, time_t *since)
{
	struct plan_memo *m = opaque;
	const struct offset *off;
	char id[300];
	time_t never = (time_t)1 << 62;

	if (state_owed_since(m->st, d->oid, since))
		return true;
	*since = m->now;
	if (!m->legacy)
		return false;
	/* The first pass after the upgrade: what the old model knew stands,
	 * so nothing that was owed before is lost to the migration. */
	off = &d->rule->offsets[d->offset];
	snprintf(id, sizeof(id), "%s/%d%c", d->rule->name, off->amount, off->days ? 'd' : 'h');
	*since = state_known_since(m->st, "rule", id, never);
	*since = latest_of(*since, state_known_since(m->st, d->session ? "session" : "deadline",
						     d->session ? d->session->uid : d->deadline->uid,
						     never));
	*since = latest_of(*since, state_known_since(m->st, "participant", d->p->email, never));
	if (*since == never)
		*since = m->now;
	return false;
}

static bool mem_fulfilled(void *opaque, const char *oid)
{
	struct plan_memo *m = opaque;

	return state_fulfilled(m->st, oid);
}

static bool mem_released(void *opaque, const char *key)
{
	struct plan_memo *m = opaque;

	return state_is_released(m->st, key);
}

static bool mem_attendance(void *opaque, const char *email, const char *uid,
			   struct attendance *out)
{
	struct plan_memo *m = opaque;

	return state_attendance(m->st, email, uid, out);
}

void programme_plan_ctx(const struct programme *pg, struct state *st, time_t now,
			struct plan_ctx *ctx)
{
	struct plan_memo *m = xcalloc(1, sizeof(*m));

	m->st = st;
	m->legacy = state_legacy_known(st);
	m->now = now;
	ctx->cfg = pg->cfg;
	ctx->owed = NULL;
	ctx->cal = pg->cal;
	ctx->reg = pg->reg;
	ctx->now = now;
	ctx->release_changes = false;
	ctx->mem.known_since = mem_known;
	ctx->mem.recorded = mem_recorded;
	ctx->mem.owed_since = mem_owed_since;
	ctx->mem.fulfilled = mem_fulfilled;
	ctx->mem.released = mem_released;
	ctx->mem.attendance = mem_attendance;
	ctx->mem.opaque = m;
}

void programme_plan_done(struct plan_ctx *ctx)
{
	struct plan_memo *m = ctx->mem.opaque;

	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].kind);
		free(m->items[i].id);
	}
	free(m->items);
	free(m);
	ctx->mem.opaque = NULL;
}

/* Takes *from, leaving NULL behind, so a part moves between programmes. */
#define TAKE(from) ({ __typeof__(from) _p = (from); (from) = NULL; _p; })

struct programme *programme_reload(struct programme *old, struct errlist *errs)
{
	int failed;
	struct programme *pg = load_parts(old->cfg->path, errs, &failed);

	/* A bad zone leaves TZ as it was (tz_set changes nothing then). */
	if (failed & PART_CONFIG) {
		programme_free(pg);
		return old;
	}
	if (!pg->cal)
		pg->cal = TAKE(old->cal);
	if (!pg->tpl)
		pg->tpl = TAKE(old->tpl);
	if (!pg->reg)
		pg->reg = TAKE(old->reg);
	if (failed)
		errlist_add(errs, "kept the last good version of what failed above");
	programme_free(old);
	return pg;
}
