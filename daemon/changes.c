#include "changes.h"

#include "describe.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* What makes a calendar client show the event differently. */
static bool moved(const struct session *a, const struct session *b)
{
	return a->start != b->start || a->end != b->end || a->cancelled != b->cancelled ||
	       !str_eq(a->location, b->location);
}

static bool retitled(const struct session *a, const struct session *b)
{
	return !str_eq(a->summary, b->summary) || !str_eq(a->description, b->description);
}

bool changes_shown_same(const struct session *a, const struct session *b, bool description)
{
	return !moved(a, b) && !(description && retitled(a, b));
}

static void sync_one(struct session *s, struct state *st, bool description)
{
	struct session copy;
	int seq;

	if (!state_session_copy(st, s->uid, &copy)) {
		state_session_store(st, s, s->sequence);
		return;
	}
	if (!changes_shown_same(s, &copy, description)) {
		/* Raised once per change; a file that raised it itself wins. */
		seq = s->sequence > copy.sequence ? s->sequence : copy.sequence + 1;
		char *words = describe_session(s);

		log_notice("session %s changed%s: SEQUENCE %d", words,
			   s->cancelled && !copy.cancelled ? " (cancelled)" : "", seq);
		free(words);
		state_session_store(st, s, seq);
	} else {
		/* Nothing a calendar shows changed, or only what is sent quietly:
		 * a SEQUENCE the file raised for it would make an update out of
		 * an edit the administrator asked to keep quiet. */
		seq = copy.sequence;
		/* Categories are the copy's too: which rules a kept copy matches. */
		if (retitled(s, &copy) || !str_eq(s->categories, copy.categories))
			state_session_store(st, s, seq);
	}
	s->sequence = seq;
	state_session_clear(&copy);
}

struct ghosts {
	struct calendar *cal;
	const struct changes_opts *o;
	size_t n_removed; /* not cancelled before: the guard counts these */
	bool counting;
	char *held;       /* " UID UID ": removals held since they vanished */
	struct strbuf still; /* those still held after this sync */
};

/* " a b " holds uid as a word. */
static bool listed(const char *list, const char *uid)
{
	size_t n = strlen(uid);

	for (const char *p = list ? strstr(list, uid) : NULL; p; p = strstr(p + 1, uid))
		if (p > list && p[-1] == ' ' && p[n] == ' ')
			return true;
	return false;
}

/* A stored session the file no longer has: it was removed, which for the
 * people invited to it is a cancellation. */
static void add_ghost(const struct session *copy, void *arg)
{
	struct ghosts *g = arg;
	struct calendar *cal = g->cal;
	struct session *s;

	if (calendar_session(cal, copy->uid))
		return;
	if (g->counting) {
		g->n_removed += !copy->cancelled;
		return;
	}
	cal->sessions = xrealloc(cal->sessions, (cal->n_sessions + 1) * sizeof(*cal->sessions));
	s = &cal->sessions[cal->n_sessions++];
	memset(s, 0, sizeof(*s));
	s->uid = xstrdup(copy->uid);
	s->summary = xstrdup(copy->summary);
	s->location = xstrdup(copy->location);
	s->description = xstrdup(copy->description);
	s->categories = xstrdup(copy->categories);
	s->start = copy->start;
	s->end = copy->end;
	s->sequence = copy->sequence;
	s->cancelled = true;
	s->line = 0;
	if (copy->cancelled)
		return;
	s->sequence++;
	/* Held once it vanished with too many others, until released or back:
	 * letting some go never lets the rest go with them. */
	if ((g->n_removed > (size_t)g->o->max_removed || listed(g->held, s->uid)) &&
	    !(g->o->release && (!g->o->release[0] || str_eq(g->o->release, s->uid)))) {
		s->removal_held = true;
		sb_addf(&g->still, "%s ", s->uid);
		char *words = describe_session(s);

		log_warn("session %s is one of %zu sessions gone from the calendar at once: its cancels wait "
			 "for --release-changes --session %s (or for the file to come back)",
			 words, g->n_removed, s->uid);
		free(words);
	} else {
		char *words = describe_session(s);

		log_notice("session %s was removed from the calendar: cancelled, SEQUENCE %d",
			   words, s->sequence);
		free(words);
	}
}

/* Whether cal may be compared with the stored copies (see changes.h). */
static bool current(struct state *st, const struct changes_opts *o)
{
	char *stored = state_meta_get(st, "calendar"), disk[FILE_ID_MAX];
	bool ok = true;

	if (stored && o->loaded_id && o->loaded_id[0] && !str_eq(stored, o->loaded_id)) {
		file_identity(o->path, disk);
		ok = str_eq(disk, o->loaded_id);
	}
	free(stored);
	return ok;
}

bool changes_sync(struct calendar *cal, struct state *st, const struct changes_opts *o,
		  size_t *held)
{
	struct ghosts g = {cal, o, 0, true, NULL, {0}};
	size_t n = cal->n_sessions;

	*held = 0;
	/* One transaction: two processes never interleave their comparisons. */
	state_begin(st);
	if (!current(st, o)) {
		state_rollback(st);
		log_notice("%s changed since it was read: reading it again", o->path);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		sync_one(&cal->sessions[i], st, o->description);
	/* Collect first, store after: storing while listing would disturb it. */
	g.held = state_meta_get(st, "held-removals");
	sb_init(&g.still);
	sb_add(&g.still, " ");
	state_session_each(st, add_ghost, &g);
	g.counting = false;
	state_session_each(st, add_ghost, &g);
	state_meta_put(st, "held-removals", g.still.buf);
	free(g.held);
	sb_free(&g.still);
	for (size_t i = n; i < cal->n_sessions; i++) {
		if (cal->sessions[i].removal_held)
			(*held)++;
		else
			state_session_store(st, &cal->sessions[i], cal->sessions[i].sequence);
	}
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		struct deadline *dl = &cal->deadlines[i];
		bool moved;

		dl->revision = state_deadline_revision(st, dl->uid, dl->due, &moved);
		state_deadline_store(st, dl);
		if (moved) {
			char *words = describe_deadline(dl);

			log_notice("deadline %s moved: its reminders are planned anew (revision %d)",
				   words, dl->revision);
			free(words);
		}
	}
	if (o->loaded_id && o->loaded_id[0])
		state_meta_put(st, "calendar", o->loaded_id);
	state_commit(st);
	return true;
}

void changes_accept_removals(const struct calendar *cal, struct state *st)
{
	for (size_t i = 0; i < cal->n_sessions; i++)
		if (cal->sessions[i].removal_held) {
			state_session_store(st, &cal->sessions[i], cal->sessions[i].sequence);
			char *words = describe_session(&cal->sessions[i]);

			log_notice("session %s: its removal is taken without cancels (--discard-changes)",
				   words);
			free(words);
		}
	state_meta_put(st, "held-removals", " ");
}
