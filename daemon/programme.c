#include "programme.h"

#include "changes.h"
#include "log.h"
#include "met.h"
#include "preflight.h"
#include "programme_calendar.h"
#include "tz.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* On a fresh start, a participant kallad invited whose row is unusable
 * now keeps the state database's copy of them (status included), so the
 * row is not taken for a deleted one, which would cancel them. */
static void keep_participants_from_state(struct programme *pg)
{
	struct registrations *reg = pg->reg;
	struct errlist ignored = {0};
	struct state *st = NULL;

	if (!reg->n_unreadable || access(pg->cfg->state, F_OK) != 0)
		return;
	st = state_open(pg->cfg->state, true, &ignored);
	errlist_free(&ignored);
	for (size_t i = 0; st && i < reg->n_unreadable; i++) {
		struct participant p;

		if (reg_find(reg, reg->unreadable[i], &p)) {
			reg_participant_clear(&p);
			continue;
		}
		/* A copy is kept from the claim of an invite on: only one that
		 * went (its calendar state recorded) makes them "invited". */
		if (!state_was_invited(st, reg->unreadable[i]) ||
		    !state_participant_copy(st, reg->unreadable[i], &p))
			continue;
		if (!p.name)
			p.name = xstrdup("");
		if (!p.language)
			p.language = xstrdup(reg->default_language);
		reg_hold(reg, &p, &pg->warnings);
	}
	state_close(st);
}

/* An absence from a session the calendar does not have changes nothing
 * (a typo in the UID, or a session since removed): the row is named by
 * its own file and line, as every row that cannot be used is, and kept,
 * so it counts once a session of that UID appears. No one goes without
 * mail for it: a warning, not a skipped participant. */
static void check_absences(struct programme *pg)
{
	const struct registrations *reg = pg->reg;

	for (size_t i = 0; i < reg->n_absences; i++) {
		const struct absence *a = &reg->absences[i];
		const char *near = NULL;

		if (calendar_session(pg->cal, a->session_uid))
			continue;
		for (size_t s = 0; s < pg->cal->n_sessions && !near; s++)
			if (strcasecmp(pg->cal->sessions[s].uid, a->session_uid) == 0)
				near = pg->cal->sessions[s].uid;
		if (near)
			errlist_add(&pg->warnings, "%s: no session in the calendar has the UID \"%s\" "
				    "(UIDs are compared exactly: \"%s\"?); this absence applies to none",
				    a->row, a->session_uid, near);
		else
			errlist_add(&pg->warnings, "%s: no session in the calendar has the UID \"%s\"; "
				    "this absence applies to none", a->row, a->session_uid);
	}
}

/* Reads every part, each even when another failed (--check reports all);
 * the parts that failed are NULL and named in *failed. old, on a reload,
 * holds the last good copies. */
static struct programme *load_parts(const char *config_path, const struct programme *old,
				    struct errlist *errs, int *failed)
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
	if (!(pg->cal = programme_calendar_read(pg->cfg, old ? old->cal : NULL, pg->cal_id,
						&pg->warnings, errs)))
		*failed |= PART_CALENDAR;
	else if (!programme_calendar_check_sections(pg->cfg, pg->cal, errs))
		*failed |= PART_CONFIG;
	if (!(pg->tpl = tpl_load(programme_shipped_templates(), pg->cfg->templates, errs)))
		*failed |= PART_TEMPLATES;
	if (!(pg->reg = reg_load(pg->cfg, &pg->warnings, errs)))
		*failed |= PART_REGISTRATIONS;
	else if (old)
		reg_keep_last_good(pg->reg, old->reg, &pg->warnings);
	else
		keep_participants_from_state(pg);
	if (pg->cal && pg->reg)
		check_absences(pg);
	return pg;
}

struct programme *programme_load(const char *config_path, struct errlist *errs, int *failed)
{
	struct programme *pg = load_parts(config_path, NULL, errs, failed);

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
	const struct config *cfg;
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

static bool mem_attendance(void *opaque, const char *email, const struct session *s,
			   struct attendance *out)
{
	struct plan_memo *m = opaque;

	return programme_attendance(m->cfg, m->st, email, s, out);
}

bool programme_attendance(const struct config *cfg, struct state *st, const char *email,
			  const struct session *s, struct attendance *out)
{
	struct session held;

	if (!state_attendance(st, email, s->uid, out))
		return false;
	/* A change undone before its update went (held by changes = hold, or
	 * the session removed and put back): their calendar shows what the
	 * session is now, and nothing is owed for it. Not while a notice to
	 * them about it is in doubt (a cancel whose outcome is not known:
	 * that calendar may hold nothing). */
	if (out->invited && out->content >= 0 && out->content < s->sequence &&
	    !state_notice_pending(st, email, s->uid) &&
	    state_session_version(st, s->uid, out->content, &held)) {
		if (changes_shown_same(&held, s, cfg->description_updates))
			out->content = s->sequence;
		state_session_clear(&held);
	}
	return true;
}

static enum answer mem_answer(void *opaque, const char *email, const char *uid)
{
	return replies_answer(((struct plan_memo *)opaque)->st, email, uid);
}

static bool mem_bounced(void *opaque, const char *email)
{
	return replies_bounced(((struct plan_memo *)opaque)->st, email);
}

void programme_plan_ctx(const struct programme *pg, struct state *st, time_t now,
			struct plan_ctx *ctx)
{
	struct plan_memo *m = xcalloc(1, sizeof(*m));

	memset(ctx, 0, sizeof(*ctx));
	m->cfg = pg->cfg;
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
	/* What was read stays true without [replies] (taken out, or its
	 * password gone): a decline or a bounce is lifted only by a later
	 * answer or --unsuppress. Nothing read: nothing to ask. */
	ctx->mem.answer = replies_any_answer(st) ? mem_answer : NULL;
	ctx->mem.bounced = replies_any_bounce(st) ? mem_bounced : NULL;
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
	struct programme *pg = load_parts(old->cfg->path, old, errs, &failed);

	/* A bad zone leaves TZ as it was (tz_set changes nothing then). */
	if (failed & PART_CONFIG) {
		programme_free(pg);
		return old;
	}
	bool took_cal = !pg->cal, took_tpl = !pg->tpl, took_reg = !pg->reg;

	if (took_cal) {
		pg->cal = TAKE(old->cal);
		memcpy(pg->cal_id, old->cal_id, sizeof(pg->cal_id));
	}
	if (took_tpl)
		pg->tpl = TAKE(old->tpl);
	if (took_reg)
		pg->reg = TAKE(old->reg);
	/* What --check would refuse to run, a running daemon does not switch to. */
	if (preflight(pg, errs)) {
		if (took_cal)
			old->cal = TAKE(pg->cal);
		if (took_tpl)
			old->tpl = TAKE(pg->tpl);
		if (took_reg)
			old->reg = TAKE(pg->reg);
		programme_free(pg);
		tz_set(old->cfg->timezone);
		return old;
	}
	if (failed)
		errlist_add(errs, "kept the last good version of what failed above");
	programme_free(old);
	return pg;
}

bool programme_sync(struct programme *pg, struct state *st, const char *release, size_t *held)
{
	struct changes_opts o = {.description = pg->cfg->description_updates,
				 .max_removed = pg->cfg->max_removed_sessions,
				 .release = release,
				 .path = pg->cfg->calendar,
				 .loaded_id = pg->cal_id};

	return changes_sync(pg->cal, st, &o, held);
}

bool programme_sync_fresh(struct programme **pg, struct state *st, const char *release,
			  size_t *held)
{
	for (int tries = 0; tries < 3; tries++) {
		struct errlist errs = {0};

		if (programme_sync(*pg, st, release, held))
			return true;
		*pg = programme_reload(*pg, &errs);
		for (size_t i = 0; i < errs.n; i++)
			log_warn("%s", errs.items[i]);
		errlist_free(&errs);
	}
	log_error("%s: another kallad read a newer version of the calendar than can be read now: "
		  "nothing is sent about sessions until it reads cleanly", (*pg)->cfg->calendar);
	return false;
}

struct removed_scan {
	const struct programme *pg;
	struct met *met; /* NULL: reg_find answers */
	char **emails;
	size_t n, cap, invited;
	char **unsure; /* invited, their rows unreadable or locked now */
	size_t n_unsure, cap_unsure;
	struct strbuf waiting; /* of them, those missing while a row has no address */
	size_t n_waiting;
};

/* 1: the row is there; 0: gone; -1: not known. */
static int registered(struct removed_scan *r, const char *email)
{
	struct participant p;
	int found;

	if (r->met)
		return met_has(r->met, email);
	found = reg_lookup(r->pg->reg, email, &p);
	if (found > 0)
		reg_participant_clear(&p);
	return found;
}

static void note_unsure(struct removed_scan *r, const char *email)
{
	r->unsure = xgrow(r->unsure, &r->cap_unsure, r->n_unsure, sizeof(*r->unsure));
	r->unsure[r->n_unsure++] = xstrdup(email);
}

static void note_invited(const char *email, void *arg)
{
	struct removed_scan *r = arg;
	int found;

	r->invited++;
	/* A row that is unusable now (issue 11), or that could not be read
	 * (the database locked past the busy timeout), is no deleted row:
	 * nobody gets a cancel for a lock; nor is it back. */
	if (reg_is_unreadable(r->pg->reg, email) || (found = registered(r, email)) < 0) {
		note_unsure(r, email);
		return;
	}
	if (found)
		return;
	/* Nor is a row missing while one whose address cannot be read may be
	 * it, with the address mistyped. */
	if (r->pg->reg->n_unaddressed) {
		note_unsure(r, email);
		sb_addf(&r->waiting, "%s%s", r->n_waiting++ ? ", " : "", email);
		return;
	}
	r->emails = xgrow(r->emails, &r->cap, r->n, sizeof(*r->emails));
	r->emails[r->n++] = xstrdup(email);
}

/* Which rows hold whose removals, each pass that holds any. */
static void warn_unaddressed(const struct programme *pg, size_t n, const char *emails)
{
	const struct registrations *reg = pg->reg;
	struct strbuf rows;

	sb_init(&rows);
	for (size_t i = 0; i < reg->n_unaddressed; i++)
		sb_addf(&rows, "%s%s", i ? "; " : "", reg->unaddressed[i]);
	log_warn("%s: %s: the %zu participant%s missing from %s (%s) "
		 "%s not taken for gone until %s can be read (their cancels wait)",
		 pg->cfg->registrations, rows.buf, n, n == 1 ? "" : "s",
		 reg_is_csv(pg->cfg->registrations) ? "the file" : "the registrations", emails,
		 n == 1 ? "is" : "are", reg->n_unaddressed == 1 ? "it" : "they");
	sb_free(&rows);
}

static void meet(const struct participant *p, void *arg)
{
	met_add(arg, p->email);
}

/* The addresses in the registrations now, in one pass; NULL (and
 * *failed) if the registrations failed part-way, NULL alone if no set
 * could be made. */
static struct met *meet_all(const struct programme *pg, bool *failed)
{
	struct met *m = met_new();

	*failed = false;
	if (m && !reg_each(pg->reg, meet, NULL, m)) {
		met_free(m);
		*failed = true;
		return NULL;
	}
	return m;
}

size_t programme_each_removed(const struct programme *pg, struct state *st, struct met *met,
			      void (*fn)(const struct participant *, void *), void *arg,
			      bool release_all, size_t *held, size_t *waiting)
{
	struct removed_scan r = {.pg = pg, .met = met};
	struct met *own = NULL;
	bool failed = false, mass, *held_each;
	size_t limit, n_held = 0;

	*held = 0;
	if (waiting)
		*waiting = 0;
	if (!met)
		r.met = own = meet_all(pg, &failed);
	else
		met_rewind(met);
	if (failed) {
		log_error("%s: the registrations failed part-way: nobody is taken for removed "
			  "in this pass", pg->cfg->registrations);
		return 0;
	}
	if (r.met && !met_ok(r.met))
		r.met = NULL; /* said why: each address is looked up instead */
	sb_init(&r.waiting);
	/* Both in address order: a merge, one step per address. */
	state_invited_each(st, note_invited, &r);
	met_free(own);
	if (r.n_waiting)
		warn_unaddressed(pg, r.n_waiting, r.waiting.buf);
	if (waiting)
		*waiting = r.n_waiting;
	sb_free(&r.waiting);
	limit = pg->cfg->max_removed_percent
			? r.invited * (size_t)pg->cfg->max_removed_participants / 100
			: (size_t)pg->cfg->max_removed_participants;
	/* One row deleted on purpose is always a cancellation. */
	mass = r.n > 1 && r.n > limit;
	/* A removal held stays held until released, discarded or back: some
	 * coming back, or new rows raising the limit, let none of it go. */
	held_each = state_hold_removals(st, r.emails, r.n, mass, r.unsure, r.n_unsure,
					release_all);
	for (size_t i = 0; i < r.n; i++)
		n_held += held_each[i];
	for (size_t i = 0; i < r.n_unsure; i++)
		free(r.unsure[i]);
	free(r.unsure);
	*held = n_held;
	if (n_held && !mass)
		log_warn("%zu of the participants gone from %s at once are still gone: their "
			 "cancels wait for --release-changes", n_held, pg->cfg->registrations);
	if (mass) {
		struct strbuf names;

		sb_init(&names);
		for (size_t i = 0; i < r.n; i++)
			sb_addf(&names, "%s%s", i ? ", " : "", r.emails[i]);
		log_warn("%zu of the %zu participants kallad invited are gone from %s at once "
			 "(%s): their cancels wait for --release-changes (or for the rows to "
			 "come back)", r.n, r.invited, pg->cfg->registrations, names.buf);
		sb_free(&names);
	}
	for (size_t i = 0; i < r.n; i++) {
		struct participant p;

		if (!state_participant_copy(st, r.emails[i], &p)) {
			p.email = xstrdup(r.emails[i]);
			p.name = xstrdup(r.emails[i]);
		}
		if (!p.name)
			p.name = xstrdup(p.email);
		if (!p.language)
			p.language = xstrdup(pg->cfg->language);
		p.status = PS_CANCELLED;
		p.removed = true;
		p.removal_held = held_each[i];
		fn(&p, arg);
		reg_participant_clear(&p);
		free(r.emails[i]);
	}
	free(r.emails);
	free(held_each);
	return r.n;
}

struct vanished_scan {
	const struct programme *pg;
	struct met *met;
	char **emails;
	size_t n, cap;
};

static void note_owed(const char *email, void *arg)
{
	struct vanished_scan *v = arg;

	if (reg_is_unreadable(v->pg->reg, email) || met_has(v->met, email))
		return;
	v->emails = xgrow(v->emails, &v->cap, v->n, sizeof(*v->emails));
	v->emails[v->n++] = xstrdup(email);
}

size_t programme_forget_vanished(const struct programme *pg, struct state *st, struct met *met)
{
	struct vanished_scan v = {.pg = pg, .met = met};
	size_t forgotten = 0;

	/* Someone missing may be the row whose address cannot be read. */
	if (!met_ok(met) || pg->reg->n_unaddressed)
		return 0;
	met_rewind(met);
	state_owed_emails_each(st, note_owed, &v);
	if (v.n && state_begin_light(st)) {
		for (size_t i = 0; i < v.n; i++) {
			/* A cancel still owed keeps them until it goes. */
			if (state_holds_sessions(st, v.emails[i]))
				continue;
			state_owed_forget(st, v.emails[i]);
			forgotten++;
		}
		if (!state_commit(st))
			forgotten = 0;
	}
	for (size_t i = 0; i < v.n; i++)
		free(v.emails[i]);
	free(v.emails);
	if (forgotten)
		log_info("%zu participants gone from %s who hold no session: their obligations "
			 "are forgotten", forgotten, pg->cfg->registrations);
	return forgotten;
}
