/* programme.h: everything one programme is made of, loaded together and
 * validated together, so a reload can build a new one and swap it in
 * whole (STYLE: parse into a new object, validate, swap). */
#ifndef KALLAD_PROGRAMME_H
#define KALLAD_PROGRAMME_H

#include "calendar.h"
#include "config.h"
#include "plan.h"
#include "registrations.h"
#include "state.h"
#include "template.h"
#include "util.h"

struct programme {
	struct config *cfg;
	struct calendar *cal;
	struct registrations *reg;
	struct templates *tpl;
	struct errlist warnings; /* rows skipped and the like: reported, not fatal */
	char cal_id[FILE_ID_MAX]; /* file_identity() of the calendar cal was read from */
};

enum programme_part { PART_CONFIG = 1, PART_CALENDAR = 2, PART_TEMPLATES = 4, PART_REGISTRATIONS = 8 };

/* Loads configuration, zone, calendar, templates and registrations. On
 * success returns a programme the caller frees with programme_free(). On
 * failure NULL, with each problem in errs and the parts that failed in
 * *failed (enum programme_part bits). */
struct programme *programme_load(const char *config_path, struct errlist *errs, int *failed);
void programme_free(struct programme *pg);

/* The daemon's pid file, beside the state database (caller frees). */
char *programme_pidfile(const struct config *cfg);
/* Tells a running daemon of this programme (SIGUSR1) that the ledger
 * changed under it (a manual send, a release, a retry), so it plans again
 * now instead of at its next wake-up. Quiet when there is none. */
void programme_nudge_daemon(const struct config *cfg);

/* Where the shipped templates are: $KALLAD_TEMPLATES_DIR, the installed
 * data directory, or the source tree this binary was built from. */
const char *programme_shipped_templates(void);

/* A plan context over pg whose memory is the state database st, for one
 * pass at `now`; end it with programme_plan_done(). */
void programme_plan_ctx(const struct programme *pg, struct state *st, time_t now,
			struct plan_ctx *ctx);
void programme_plan_done(struct plan_ctx *ctx);

/* changes_sync() with pg's settings: false when pg's calendar is stale
 * (another process stored a newer version): reload and call again.
 * release as in struct changes_opts; *held: sessions whose removal waits. */
bool programme_sync(struct programme *pg, struct state *st, const char *release, size_t *held);
/* What the participant's calendar holds of session s (state_attendance),
 * where an older version it holds shows just what s shows now (a change
 * undone before its update went) counted as the current one: content is
 * s->sequence then. False when kallad never sent them anything of it. The
 * one answer the planner, a send's last check and a send by hand share. */
bool programme_attendance(const struct config *cfg, struct state *st, const char *email,
			  const struct session *s, struct attendance *out);
/* programme_sync(), reloading pg (into *pg) while it is stale, at most a
 * few times; false if it stays stale. */
bool programme_sync_fresh(struct programme **pg, struct state *st, const char *release,
			  size_t *held);

/* The participants kallad invited whose rows are gone from the
 * registrations (a deleted row is a cancellation): fn gets each, as the
 * last known copy with status cancelled and `removed` set. Too many gone
 * at once ([policy] max-removed-participants) are each `removal_held`:
 * their cancels wait; each stays held (stored) while gone, until
 * release_all (--release-changes) lets every one go or --discard-changes
 * takes it. *held: how many are held. *waiting (waiting may be NULL):
 * how many are missing while a row that may be anyone's holds their
 * cancels (not passed to fn; one warning names them). met: the addresses
 * a complete pass over the registrations met (met.h), or NULL to make
 * that pass here. One merge of the state's invited addresses with those.
 * Returns how many (0 if the registrations failed part-way: nobody is
 * taken for removed then). */
struct met;
size_t programme_each_removed(const struct programme *pg, struct state *st, struct met *met,
			      void (*fn)(const struct participant *, void *), void *arg,
			      bool release_all, size_t *held, size_t *waiting);
/* Forgets the obligations (owed) of the addresses that a complete pass
 * (met) did not meet, that are no unusable row now, and whose calendars
 * hold no session kallad sent (else a cancel is still theirs): those
 * who vanished from the registrations without a session. Returns how
 * many addresses. */
size_t programme_forget_vanished(const struct programme *pg, struct state *st, struct met *met);

/* Reloads from old->cfg->path into a new programme: a configuration that
 * fails, or that preflight() refuses, keeps old whole; a calendar, template set or registration database
 * that fails keeps old's part (moved into the new one). Returns the new
 * programme and frees old, or returns old unchanged; errs says why. */
struct programme *programme_reload(struct programme *old, struct errlist *errs);
#endif
