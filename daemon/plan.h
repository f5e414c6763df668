/* plan.h: what is due, when and to whom. A pure function of the
 * configuration, the calendar, the participants, what kallad knows and
 * has recorded, and the time: no clock, no disk, no network (SPEC §2). */
#ifndef KALLAD_PLAN_H
#define KALLAD_PLAN_H

#include "calendar.h"
#include "config.h"
#include "registrations.h"
#include "replies.h"
#include "state.h"

#include <stdbool.h>
#include <time.h>

struct delivery;

/* What the planner asks of kallad's state; tests give plain functions. */
struct plan_memory {
	/* First time kallad knew kind/id ("rule", "session", "deadline",
	 * "participant"); `now` when never. */
	time_t (*known_since)(void *opaque, const char *kind, const char *id, time_t now);
	/* True if the ledger holds key in a final state (sent, failed or
	 * skipped): retryable and claimed rows are planned again, not before
	 * *retry_at (set to 0 when there is no such wait). */
	bool (*recorded)(void *opaque, const char *key, time_t *retry_at);
	/* When the obligation d->oid became owed (into *since). False when it
	 * is not recorded yet: then *since is when it becomes owed, which is
	 * now (or, in the first pass after the upgrade to this model, when
	 * the old model first knew its rule, target and participant). */
	bool (*owed_since)(void *opaque, const struct delivery *d, time_t *since);
	/* True if some delivery of the obligation oid, under any key, is
	 * final in the ledger: an obligation is met once. */
	bool (*fulfilled)(void *opaque, const char *oid);
	/* True if --release-changes let the held notice key go. */
	bool (*released)(void *opaque, const char *key);
	/* What the participant's calendar holds of the session (by what kallad
	 * sent; programme_attendance); false when nothing was ever sent. */
	bool (*attendance)(void *opaque, const char *email, const struct session *s,
			   struct attendance *out);
	/* The participant's latest answer to the session's invitation, and
	 * whether their address bounced (replies.h). Either may be NULL: no
	 * answers, nothing bounced. */
	enum answer (*answer)(void *opaque, const char *email, const char *uid);
	bool (*bounced)(void *opaque, const char *email);
	void *opaque;
};

/* Each session's `sequence` in cal is the effective one (changes_sync). */
struct plan_ctx {
	const struct config *cfg;
	const struct calendar *cal;
	const struct registrations *reg;
	time_t now;
	bool release_changes; /* --release-changes: updates and cancels go even when held */
	const char *release_session; /* ... only those of this session (NULL: all) */
	size_t removed_held;  /* participants gone from the registrations whose cancels
			       * wait (programme_each_removed) */
	struct plan_memory mem;
	/* Called (when set) for every obligation that holds in this pass, met
	 * or not, with the `arg` of plan_participant: what a writing pass
	 * records, so that the moment it became owed is kept. */
	void (*owed)(const struct delivery *d, void *arg);
};

#define PLAN_KEY_MAX 768

struct delivery {
	const char *message;               /* template name */
	const struct participant *p;
	const struct session *session;     /* NULL for deadline reminders */
	const struct deadline *deadline;   /* NULL unless a deadline reminder */
	const struct rule *rule;           /* NULL for invites, updates and cancels */
	int offset;                        /* index in rule->offsets; -1 without a rule */
	int sequence;                      /* SEQUENCE its calendar part carries; 0 for deadlines */
	time_t trigger;                    /* when the rule meant it to go */
	time_t due;                        /* when it goes: after quiet hours, or now on catch-up */
	const char *skip;                  /* NULL, or why it will not be sent */
	time_t superseder_due;             /* superseded: when the one that supersedes it goes */
	char key[PLAN_KEY_MAX];            /* message|email|uid|rule|offset|sequence */
	/* A rule's delivery is an obligation: what it hangs on, as
	 * message|email|target|rule|offset@time (target "first" for a rule
	 * with sessions = first). Empty for invites, updates and cancels. */
	char oid[PLAN_KEY_MAX];
	time_t owed_since;                 /* when it became owed */
	bool owed_fresh;                   /* not recorded yet: a writing pass records it */
	time_t claimed;                    /* the sender's: when this process claimed it */
};

typedef void (*plan_fn)(const struct delivery *d, void *arg);

/* Calls fn for every delivery of one participant that is not recorded yet,
 * due or skipped: the invites, updates and cancels that bring the
 * participant's calendar to what it should hold (INTEROP life cycle), and
 * what the rules send. Deliveries whose trigger is further ahead are
 * included (their due time is in the future): callers filter by due <= now.
 *
 * A rule's delivery is sent only if it was owed at or before its trigger
 * (see plan.c); of the deliveries of one message to one participant for
 * one target, one that goes late is superseded by a later trigger that
 * goes at the same moment or soon after (supersede() in plan.c).
 * Skip reasons: bounced, absent, session-cancelled, declined, answered,
 * no-material (not owed: shown by --plan --all, never recorded, so they go
 * once that changes), late-registration, before-known,
 * event-passed, min-lead, superseded, held (changes = hold). */
void plan_participant(const struct plan_ctx *ctx, const struct participant *p, plan_fn fn,
		      void *arg);
/* plan_participant for every participant, read through reg_each(): a
 * delivery's participant lives until page_done (may be NULL) is called.
 * False if the registration database failed part-way. */
bool plan_all(const struct plan_ctx *ctx, plan_fn fn, void (*page_done)(void *), void *arg);

/* One line of plain words for an administrator (--plan --explain): why
 * the delivery goes, waits or was skipped, and since when it is owed. */
void plan_explain(const struct delivery *d, time_t now, char *out, size_t len);

/* The delivery key of SPEC §3. */
void plan_key(char *out, size_t len, const char *message, const char *email, const char *uid,
	      const char *rule, const struct offset *off, int sequence);
/* The identities whose first sight decides before-known against
 * late-registration: a rule offset as it is defined now, and a target at
 * its current time (and categories). Written by send_note_known(). */
void plan_rule_sig(char *out, size_t len, const struct rule *r, const struct offset *off);
/* Of a session (s) or else a deadline (d). */
void plan_target_sig(char *out, size_t len, const struct session *s, const struct deadline *d);
/* Moves t out of the quiet hours (to their end); t if none apply. The
 * result is always later than t when t is inside them. */
time_t plan_after_quiet(const struct config *cfg, time_t t);
/* The moment min-lead before event begins: nothing of a rule goes after it
 * (in days, calendar days back at the same local time, as `before`
 * counts). 0 without min-lead. */
time_t plan_lead_start(const struct config *cfg, time_t event);
/* What d is about begins: its session's start or its deadline's due (0:
 * neither). */
time_t plan_event(const struct delivery *d);
/* Why d cannot go at `at`: "event-passed" (nothing goes once its session
 * or deadline began) or, for a rule's message, "min-lead"; NULL if it may.
 * The planner's judgement, and a paced message's when its turn comes. */
const char *plan_late(const struct config *cfg, const struct delivery *d, time_t at);

#endif
