#include "changes.h"

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

static void sync_one(struct session *s, struct state *st, bool description)
{
	struct session copy;
	int seq;

	if (!state_session_copy(st, s->uid, &copy)) {
		state_session_store(st, s, s->sequence);
		return;
	}
	if (moved(s, &copy) || (description && retitled(s, &copy))) {
		/* Raised once per change; a file that raised it itself wins. */
		seq = s->sequence > copy.sequence ? s->sequence : copy.sequence + 1;
		log_notice("session %s changed%s: SEQUENCE %d", s->uid,
			   s->cancelled && !copy.cancelled ? " (cancelled)" : "", seq);
		state_session_store(st, s, seq);
	} else {
		/* Nothing a calendar shows changed, or only what is sent quietly:
		 * a SEQUENCE the file raised for it would make an update out of
		 * an edit the administrator asked to keep quiet. */
		seq = copy.sequence;
		if (retitled(s, &copy))
			state_session_store(st, s, seq);
	}
	s->sequence = seq;
	state_session_clear(&copy);
}

struct ghosts {
	struct calendar *cal;
	struct state *st;
	size_t cap;
};

/* A stored session the file no longer has: it was removed, which for the
 * people invited to it is a cancellation. */
static void add_ghost(const struct session *copy, void *arg)
{
	struct ghosts *g = arg;
	struct calendar *cal = g->cal;
	struct session *s;

	if (calendar_session(cal, copy->uid))
		return;
	cal->sessions = xrealloc(cal->sessions, (cal->n_sessions + 1) * sizeof(*cal->sessions));
	s = &cal->sessions[cal->n_sessions++];
	memset(s, 0, sizeof(*s));
	s->uid = xstrdup(copy->uid);
	s->summary = xstrdup(copy->summary);
	s->location = xstrdup(copy->location);
	s->description = xstrdup(copy->description);
	s->start = copy->start;
	s->end = copy->end;
	s->sequence = copy->sequence;
	s->cancelled = true;
	s->line = 0;
	if (!copy->cancelled) {
		s->sequence++;
		log_notice("session %s was removed from the calendar: cancelled, SEQUENCE %d",
			   s->uid, s->sequence);
	}
}

void changes_sync(struct calendar *cal, struct state *st, bool description)
{
	struct ghosts g = {cal, st, 0};
	size_t n = cal->n_sessions;

	for (size_t i = 0; i < n; i++)
		sync_one(&cal->sessions[i], st, description);
	/* Collect first, store after: storing while listing would disturb it. */
	state_session_each(st, add_ghost, &g);
	for (size_t i = n; i < cal->n_sessions; i++)
		state_session_store(st, &cal->sessions[i], cal->sessions[i].sequence);
	for (size_t i = 0; i < cal->n_deadlines; i++) {
		struct deadline *dl = &cal->deadlines[i];
		bool moved;

		dl->revision = state_deadline_revision(st, dl->uid, dl->due, &moved);
		if (moved)
			log_notice("deadline %s moved: its reminders are planned anew (revision %d)",
				   dl->uid, dl->revision);
	}
}
