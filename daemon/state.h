/* state.h: kallad's own database (SPEC §1.4): what it knows since when,
 * the SEQUENCE of every session, and the delivery ledger. SQLite in WAL
 * mode, schema versioned and migrated on open. */
#ifndef KALLAD_STATE_H
#define KALLAD_STATE_H

#include "calendar.h"
#include "registrations.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct state;

/* Delivery states in the ledger. CLAIMED: a process is sending it now (or
 * died doing so: an old claim is treated as UNKNOWN). UNKNOWN: the server
 * may have it; retried with the same Message-ID. TRANSIENT: retried at
 * next_attempt. FAILED: permanent, kept for --status --failed. */
enum dstate { DS_CLAIMED, DS_SENT, DS_UNKNOWN, DS_TRANSIENT, DS_FAILED, DS_SKIPPED };

struct delivery_row {
	char *key, *message, *email, *target, *rule; /* target: session or deadline UID */
	enum dstate state;
	time_t due, updated, next_attempt;
	int attempts;
	char *message_id, *detail; /* detail: the server's words or the skip reason */
	const char *obligation;    /* the obligation a rule's delivery meets (claims and
				    * skips only; NULL for notices and manual sends) */
};

/* Opens (creating it and its directory when not readonly) and migrates.
 * readonly on a file that does not exist yet returns an empty in-memory
 * state, so --plan works before the first run. NULL with errs on failure. */
struct state *state_open(const char *path, bool readonly, struct errlist *errs);
void state_close(struct state *st);
int state_schema_version(struct state *st);
/* The database handle, for the modules that keep tables of their own in
 * it (replies.c); borrowed. Its statements follow the transactions above. */
struct sqlite3 *state_sqlite(struct state *st);
const char *state_path(const struct state *st);

/* BEGIN IMMEDIATE, waiting on busy; its commit is fsync'd (with it every
 * commit before it). */
bool state_begin(struct state *st);
/* The same, but its commit is not fsync'd of its own: it survives a crash
 * of kallad, and the next state_begin() transaction's fsync makes it
 * durable against power loss. For outcomes. */
bool state_begin_light(struct state *st);
/* A read transaction: the reads until state_commit() see one snapshot and
 * take the database's locks once. No writes inside. */
bool state_begin_read(struct state *st);
bool state_commit(struct state *st);
void state_rollback(struct state *st);

/* When kallad first knew kind/id ("rule", "session", "deadline",
 * "participant"); `now` when never. */
time_t state_known_since(struct state *st, const char *kind, const char *id, time_t now);
/* Records now as the first sight of kind/id unless already known. */
void state_note_known(struct state *st, const char *kind, const char *id, time_t now);

/* The ledger. state_delivery_get fills row (free with state_row_free) and
 * returns true if the key is known. */
bool state_delivery_get(struct state *st, const char *key, struct delivery_row *row);
void state_row_free(struct delivery_row *row);
/* Claims key for sending by this process: inserts it as CLAIMED, or moves
 * an UNKNOWN or TRANSIENT row whose next_attempt has come, or a CLAIMED
 * row whose process is gone (or that is older than stale_after seconds, in
 * case its pid was reused), to CLAIMED. False if another process holds it
 * or it is SENT, FAILED or SKIPPED. Atomic across processes. */
bool state_delivery_claim(struct state *st, const struct delivery_row *row, time_t now,
			  int stale_after);
/* Sets state, detail, next_attempt (and attempts+1 for outcomes of a send). */
void state_delivery_mark(struct state *st, const char *key, enum dstate s, const char *detail,
			 time_t next_attempt, time_t now);
/* Puts a claimed delivery that was never attempted (kallad stopping, the
 * server asking to slow down) back as it was before the claim (UNKNOWN
 * stays UNKNOWN, else TRANSIENT), without counting an attempt; only a
 * claim of this process. for_relay: it went back because the relay is
 * suspended, and is due again as soon as that ends (state_relay_clear),
 * whatever next_attempt says; at once if another kallad ended it already
 * (the ledger has no suspension left). */
void state_delivery_release(struct state *st, const char *key, const char *why, time_t next_attempt,
			    time_t now, bool for_relay);
/* Renews this process's claim of key (as of now): 1; 0 if it is no longer
 * this process's (a claim that waited long may have been taken over by
 * another kallad: state_delivery_claim's stale_after); -1 if the database
 * failed. */
int state_delivery_renew(struct state *st, const char *key, time_t now);
/* Claims whose process is gone (or older than stale_after) become
 * UNKNOWN, retryable now: the server may have them. Returns how many. */
long state_recover_orphans(struct state *st, time_t now, int stale_after);
/* Removes a delivery from the ledger, as if never planned: for notices
 * given up, which a later change may need to send after all. */
void state_delivery_forget(struct state *st, const char *key);
/* --release-changes: a held change notice (by key) let go for good, so it
 * goes when quiet hours or a retry allow, in whichever run that is. */
void state_release_notice(struct state *st, const char *key);
bool state_is_released(struct state *st, const char *key);
/* The guard's participants whose removal is held (programme_each_removed):
 * of those gone now (n of them), which are held: all if `mass`, else
 * those held before; the set becomes those (none with release_all), and
 * the ones of `unsure` (rows unreadable or locked now: gone or not, not
 * known) held before stay held. All or nothing, in one transaction (a
 * savepoint in the caller's); nothing is written with a read-only st; if
 * the set cannot be read, all n are held. Returns the n flags (caller
 * frees). */
bool *state_hold_removals(struct state *st, char *const *gone, size_t n, bool mass,
			  char *const *unsure, size_t n_unsure, bool release_all);
/* Records a skipped delivery (once; an existing row is left alone). */
void state_delivery_skip(struct state *st, const struct delivery_row *row, const char *reason,
			 time_t now);
/* Calls fn for each row in state s (all rows if s < 0), oldest first. */
void state_delivery_each(struct state *st, int s, void (*fn)(const struct delivery_row *, void *),
			 void *arg);
/* Number of rows in each state, indexed by enum dstate. */
void state_delivery_counts(struct state *st, long counts[6]);
/* FAILED rows back to TRANSIENT with next_attempt = now; returns how many. */
long state_retry_failed(struct state *st, time_t now);

/* The copy of a session as kallad last saw it in the calendar: what change
 * detection compares with, what a cancel of a session removed from the
 * file is built from, and (categories too) what a fresh start keeps of a
 * session it finds unreadable. state_session_copy fills *out with owned strings
 * (free with state_session_clear); false if kallad never stored it. */
bool state_session_copy(struct state *st, const char *uid, struct session *out);
void state_session_store(struct state *st, const struct session *s, int sequence);
/* Calls fn with each stored copy (valid during the call), by start. */
void state_session_each(struct state *st, void (*fn)(const struct session *, void *), void *arg);
void state_session_clear(struct session *s);
/* The session as it was before its current SEQUENCE (now->sequence), as
 * the participant `email` last got it (the copy whose time and place
 * kallad's last message to them carried; NULL email: the newest older
 * copy). Fills *out with owned strings (free with state_session_clear);
 * false when kallad has no older copy. What an update names as "before". */
bool state_session_previous(struct state *st, const char *email, const struct session *now,
			    struct session *out);
/* The session as its SEQUENCE `sequence` showed it: the newest copy at or
 * below it (a SEQUENCE the file raised has no copy of its own). Owned
 * strings as above; false when there is none. */
bool state_session_version(struct state *st, const char *uid, int sequence, struct session *out);

/* What one participant's calendar holds of one session, by what kallad
 * sent (never moving backwards: a lower SEQUENCE than the stored one
 * changes nothing): invited (a REQUEST and no CANCEL after it), the SEQUENCE of the
 * last message, and `content`: the session SEQUENCE whose time, place and
 * status that message carried (an update is due when it is lower). */
struct attendance {
	bool invited;
	int sequence;
	int content;
};
/* False (and *out zeroed) when kallad never sent this participant
 * anything for this session. */
bool state_attendance(struct state *st, const char *email, const char *uid, struct attendance *out);
void state_set_attendance(struct state *st, const char *email, const char *uid,
			  const struct attendance *a);
/* A notice at `sequence` whose outcome was never known, given up: the
 * calendar may hold the session at a version not known (content -1), so
 * what it should hold goes again, an update or a cancel, above it; unless
 * a message at a higher SEQUENCE went to them since. */
void state_attendance_unknown(struct state *st, const char *email, const char *uid, int sequence);
/* Whether a notice (invite, update, cancel) to email about session uid
 * has an outcome not known (one refused with a 4xx did not arrive): what
 * their calendar holds is not sure. True on an error too. */
bool state_notice_pending(struct state *st, const char *email, const char *uid);
const char *state_name(enum dstate s);

/* Small facts by name ("calendar": which file the session copies came
 * from). state_meta_get returns a copy the caller frees, or NULL. */
char *state_meta_get(struct state *st, const char *key);
void state_meta_put(struct state *st, const char *key, const char *value);
/* The programme's salt of Message-IDs (message_id), so that two
 * programmes never give one Message-ID to different messages (Gmail drops
 * the second): made once from this machine (its machine-id), the state
 * file's path and identity (the programme's name and organizer), and kept,
 * whatever changes later; "" for a ledger that sent before salts existed.
 * Read-only, one not kept yet is worked out the same way; writable, NULL
 * if it could not be recorded (nothing may be sent then). The caller
 * frees it. */
char *state_message_id_salt(struct state *st, const char *identity);
/* What later messages must keep, by name (meta): the value kept, or else
 * value, recorded (the first of two processes wins). Read-only, value
 * unrecorded. NULL if it could not be recorded. The caller frees it. */
char *state_pin(struct state *st, const char *key, const char *value);
/* Before the outcome of key (claimed) is marked refused: if the attempt
 * before this one may have arrived (its outcome unknown), the
 * participant's calendar of uid is not known (as state_attendance_unknown
 * at sequence). */
void state_attendance_doubt(struct state *st, const char *key, const char *email, const char *uid,
			    int sequence);
/* Whether a claim of key now would take it (state_delivery_claim's test,
 * nothing written): none yet, a retry that is due, a claim of a kallad
 * that died or went stale. */
bool state_delivery_claimable(struct state *st, const char *key, time_t now, long stale_after);
/* The address the calendars of session uid carry as ORGANIZER: the same in
 * every message for a UID (INTEROP I9; Google and Apple ignore an update
 * or cancel from another organizer): the one [organizer] email named when
 * the first calendar of that session was made, whatever it says now. A new
 * session takes the configured one. The caller frees it. */
char *state_calendar_organizer(struct state *st, const char *uid, const char *configured);
/* Whether the calendars of some session keep an ORGANIZER other than
 * configured: *kept, one such (the caller frees it). */
bool state_organizer_kept_elsewhere(struct state *st, const char *configured, char **kept);
/* The last known copy of a participant kallad invited: what a cancel
 * after their row was deleted greets them with, and (status included)
 * what a row that turns unusable keeps. The copy's strings are the
 * caller's (reg_participant_clear). */
void state_participant_store(struct state *st, const struct participant *p, time_t now);
bool state_participant_copy(struct state *st, const char *email, struct participant *out);
/* Calls fn with each address whose calendar holds a session kallad sent. */
void state_invited_each(struct state *st, void (*fn)(const char *email, void *arg), void *arg);

/* What is owed (plan.h): when each obligation became owed. */
bool state_owed_since(struct state *st, const char *oid, time_t *since);
/* Records since unless the obligation is recorded already. */
void state_owed_put(struct state *st, const char *oid, const char *email, time_t since);
/* Forgets the participant's obligations not in keep[] (n entries, sorted
 * here): they stopped holding, and holding again is a new moment. */
void state_owed_prune(struct state *st, const char *email, char **keep, size_t n);
/* How many obligations of the participant are recorded. */
long state_owed_count(struct state *st, const char *email);
/* Calls fn with each address that has obligations recorded, in address
 * order (case-insensitive, SQLite's NOCASE). */
void state_owed_emails_each(struct state *st, void (*fn)(const char *email, void *arg),
			    void *arg);
/* Forgets every obligation recorded for the address. */
void state_owed_forget(struct state *st, const char *email);
/* True if the address's calendar holds a session kallad sent (a cancel
 * may still be owed to them); true on an error too. */
bool state_holds_sessions(struct state *st, const char *email);
/* Whether a message kallad sent ever put a session in the participant's
 * calendar (or took one out): any attendance row; true on an error too. */
bool state_was_invited(struct state *st, const char *email);
/* A retry given up because no rule makes it any more (another key took
 * its place) met nothing: its obligation stays open. */
void state_delivery_unlink(struct state *st, const char *key);
/* True if a delivery meeting oid is sent, failed for good or skipped. */
bool state_fulfilled(struct state *st, const char *oid);
/* Forgets the "known" rows of kind whose id is not in keep[]. */
void state_known_prune(struct state *st, const char *kind, char **keep, size_t n);
/* The revision of a deadline at due: 0 when first seen, +1 each time its
 * due moved (stored unless read-only); *moved says it moved just now. */
int state_deadline_revision(struct state *st, const char *uid, time_t due, bool *moved);
/* The copy of a deadline as kallad last saw it (title, text, categories,
 * whole day; due and revision as above): stored on every pass where it
 * differs (a row state_deadline_revision made first), and read back on a
 * fresh start that finds it unreadable. state_deadline_copy fills *out
 * with owned strings (free with state_deadline_clear); false if there is
 * no whole copy (never seen, or seen only before schema 10). */
void state_deadline_store(struct state *st, const struct deadline *d);
bool state_deadline_copy(struct state *st, const char *uid, struct deadline *out);
void state_deadline_clear(struct deadline *d);
/* True until the first complete pass after the migration to the owed
 * model: obligations not recorded yet take the old "known" answer. */
bool state_legacy_known(struct state *st);
void state_legacy_known_done(struct state *st);
/* The relay's suspension after a fault of the relay as a whole (AUTH,
 * TLS, connection, MAIL FROM): every kallad on this ledger waits for
 * `until` and shows `fault`. kind is an enum relay_fault; faults counts
 * them in a row. state_relay_get fills r (free with state_relay_free) and
 * returns false when none is recorded. */
struct relay_row {
	char *fault;
	int kind, faults;
	time_t since, until;
};
bool state_relay_get(struct state *st, struct relay_row *r);
void state_relay_put(struct state *st, const struct relay_row *r);
/* Ends the suspension, and what went back to wait for the relay while it
 * lasted (state_delivery_release's for_relay) is due at now. */
void state_relay_clear(struct state *st, time_t now);
void state_relay_free(struct relay_row *r);

#endif
