/* state_memory.c: what kallad remembers of its inputs between passes:
 * when each obligation became owed and each thing was first known, the
 * last good copy of sessions, deadlines and participants, what each
 * calendar holds (attendance), free-form meta values, and the relay's
 * suspension. */
#include "state_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

time_t state_known_since(struct state *st, const char *kind, const char *id, time_t now)
{
	sqlite3_stmt *s = st_query(st, Q_KNOWN_GET);
	time_t t = now;
	int rc;

	if (!s)
		return now;
	bind_text(s, 1, kind);
	bind_text(s, 2, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		t = (time_t)sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		st_log(st, "reading when a thing was first known");
	sqlite3_reset(s);
	return t;
}

void state_note_known(struct state *st, const char *kind, const char *id, time_t now)
{
	sqlite3_stmt *s = st_query(st, Q_KNOWN_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, kind);
	bind_text(s, 2, id);
	bind_time(s, 3, now);
	st_run(st, s, "recording when a thing was first known");
}

/* --- the last seen copy of each session, and what participants hold --- */

static void copy_from_row(sqlite3_stmt *s, struct session *out)
{
	const char *status = (const char *)sqlite3_column_text(s, 5);

	memset(out, 0, sizeof(*out));
	out->uid = column_dup(s, 0);
	out->sequence = sqlite3_column_int(s, 1);
	out->start = (time_t)sqlite3_column_int64(s, 2);
	out->end = (time_t)sqlite3_column_int64(s, 3);
	out->location = sqlite3_column_type(s, 4) == SQLITE_NULL ? NULL : column_dup(s, 4);
	out->cancelled = status && strcmp(status, "CANCELLED") == 0;
	out->summary = column_dup(s, 6);
	out->description = sqlite3_column_type(s, 7) == SQLITE_NULL ? NULL : column_dup(s, 7);
	out->categories = sqlite3_column_type(s, 8) == SQLITE_NULL ? NULL : column_dup(s, 8);
}

bool state_session_copy(struct state *st, const char *uid, struct session *out)
{
	sqlite3_stmt *s = st_query(st, Q_COPY_GET);
	bool found = false;
	int rc;

	if (!s)
		return false;
	bind_text(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_from_row(s, out);
		found = true;
	} else if (rc != SQLITE_DONE) {
		st_log(st, "reading a session's last seen copy");
	}
	sqlite3_reset(s);
	return found;
}

void state_session_store(struct state *st, const struct session *ses, int sequence)
{
	sqlite3_stmt *s = st_query(st, Q_COPY_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, ses->uid);
	sqlite3_bind_int(s, 2, sequence);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)ses->start);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)ses->end);
	bind_text(s, 5, ses->location);
	bind_text(s, 6, ses->cancelled ? "CANCELLED" : "CONFIRMED");
	bind_text(s, 7, ses->summary);
	bind_text(s, 8, ses->description);
	bind_text(s, 9, ses->categories);
	if (!st_run(st, s, "storing a session's last seen copy"))
		return;
	if (!(s = st_query(st, Q_VERSION_PUT)))
		return;
	bind_text(s, 1, ses->uid);
	sqlite3_bind_int(s, 2, sequence);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)ses->start);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)ses->end);
	bind_text(s, 5, ses->location);
	bind_text(s, 6, ses->cancelled ? "CANCELLED" : "CONFIRMED");
	bind_text(s, 7, ses->summary);
	bind_text(s, 8, ses->description);
	st_run(st, s, "storing a session's copy for its SEQUENCE");
}

bool state_session_version(struct state *st, const char *uid, int sequence, struct session *out)
{
	sqlite3_stmt *s;
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!(s = st_query(st, Q_VERSION_AT)))
		return false;
	bind_text(s, 1, uid);
	sqlite3_bind_int(s, 2, sequence);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_from_row(s, out);
		found = true;
	} else if (rc != SQLITE_DONE) {
		st_log(st, "reading a session's previous copy");
	}
	sqlite3_reset(s);
	return found;
}

bool state_session_previous(struct state *st, const char *email, const struct session *now,
			    struct session *out)
{
	struct attendance a;
	int held = now->sequence - 1;

	/* What the participant's calendar holds, by what kallad sent them. */
	if (email && state_attendance(st, email, now->uid, &a) && a.content >= 0 &&
	    a.content < held)
		held = a.content;
	return state_session_version(st, now->uid, held, out);
}

void state_session_each(struct state *st, void (*fn)(const struct session *, void *), void *arg)
{
	sqlite3_stmt *s = st_query(st, Q_COPY_EACH);
	int rc;

	if (!s)
		return;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct session copy;
		copy_from_row(s, &copy);
		fn(&copy, arg);
		state_session_clear(&copy);
	}
	if (rc != SQLITE_DONE)
		st_log(st, "listing the sessions kallad has seen");
	sqlite3_reset(s);
}

void state_session_clear(struct session *s)
{
	free(s->uid);
	free(s->summary);
	free(s->location);
	free(s->description);
	free(s->categories);
	memset(s, 0, sizeof(*s));
}

bool state_attendance(struct state *st, const char *email, const char *uid, struct attendance *out)
{
	sqlite3_stmt *s = st_query(st, Q_ATT_GET);
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->invited = sqlite3_column_int(s, 0) != 0;
		out->sequence = sqlite3_column_int(s, 1);
		out->content = sqlite3_column_int(s, 2);
		found = true;
	} else if (rc != SQLITE_DONE) {
		st_log(st, "reading what a participant's calendar holds");
	}
	sqlite3_reset(s);
	return found;
}

void state_set_attendance(struct state *st, const char *email, const char *uid,
			  const struct attendance *a)
{
	sqlite3_stmt *s = st_query(st, Q_ATT_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	sqlite3_bind_int(s, 3, a->invited);
	sqlite3_bind_int(s, 4, a->sequence);
	sqlite3_bind_int(s, 5, a->content);
	st_run(st, s, "recording what a participant's calendar holds");
}

bool state_notice_pending(struct state *st, const char *email, const char *uid)
{
	sqlite3_stmt *s = st_query(st, Q_NOTICE_PENDING);
	bool found;

	if (!s)
		return true; /* not known: as if pending */
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_reset(s);
	return found;
}

void state_attendance_doubt(struct state *st, const char *key, const char *email, const char *uid,
			    int sequence)
{
	if (st_one_row(st, Q_PRIOR_UNKNOWN, key, NULL))
		state_attendance_unknown(st, email, uid, sequence);
}

bool state_delivery_claimable(struct state *st, const char *key, time_t now, long stale_after)
{
	sqlite3_stmt *s = st_query(st, Q_CLAIMABLE);
	bool yes = true;

	if (!s)
		return false;
	bind_text(s, 1, key);
	bind_time(s, 2, now);
	sqlite3_bind_int64(s, 3, stale_after);
	if (sqlite3_step(s) == SQLITE_ROW)
		yes = sqlite3_column_int(s, 0) != 0;
	sqlite3_reset(s);
	return yes;
}

void state_attendance_unknown(struct state *st, const char *email, const char *uid, int sequence)
{
	sqlite3_stmt *s = st_query(st, Q_ATT_UNKNOWN);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, email);
	bind_text(s, 2, uid);
	sqlite3_bind_int(s, 3, sequence);
	st_run(st, s, "recording that a participant's calendar is not known");
}

bool state_owed_since(struct state *st, const char *oid, time_t *since)
{
	long long v;

	if (!st_one_row(st, Q_OWED_GET, oid, &v))
		return false;
	*since = (time_t)v;
	return true;
}

void state_owed_put(struct state *st, const char *oid, const char *email, time_t since)
{
	sqlite3_stmt *s = st_query(st, Q_OWED_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, oid);
	bind_text(s, 2, email);
	bind_time(s, 3, since);
	st_run(st, s, "recording when a delivery became owed");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the rows that q lists for a whose id is not in keep[] (sorted
 * here), with del(a, id): for owed and known alike. */
static void prune(struct state *st, enum query q, enum query del, const char *a, char **keep,
		  size_t n)
{
	sqlite3_stmt *s = st_query(st, q);
	char **gone = NULL;
	size_t n_gone = 0, cap = 0;

	if (!s || st->readonly)
		return;
	qsort(keep, n, sizeof(*keep), cmp_str);
	bind_text(s, 1, a);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);

		if (id && !bsearch(&id, keep, n, sizeof(*keep), cmp_str)) {
			gone = xgrow(gone, &cap, n_gone, sizeof(*gone));
			gone[n_gone++] = xstrdup(id);
		}
	}
	sqlite3_reset(s);
	for (size_t i = 0; i < n_gone; i++) {
		sqlite3_stmt *d = st_query(st, del);

		if (d) {
			bind_text(d, 1, a);
			bind_text(d, 2, gone[i]);
			st_run(st, d, "forgetting what no longer holds");
		}
		free(gone[i]);
	}
	free(gone);
}

void state_owed_prune(struct state *st, const char *email, char **keep, size_t n)
{
	prune(st, Q_OWED_EACH, Q_OWED_DEL, email, keep, n);
}

void state_known_prune(struct state *st, const char *kind, char **keep, size_t n)
{
	prune(st, Q_KNOWN_EACH, Q_KNOWN_DEL, kind, keep, n);
}

int state_deadline_revision(struct state *st, const char *uid, time_t due, bool *moved)
{
	sqlite3_stmt *s = st_query(st, Q_DL_GET);
	int rev = 0;
	bool known = false;

	*moved = false;
	if (!s)
		return 0;
	bind_text(s, 1, uid);
	if (sqlite3_step(s) == SQLITE_ROW) {
		known = true;
		rev = sqlite3_column_int(s, 1);
		if ((time_t)sqlite3_column_int64(s, 0) != due) {
			rev++;
			*moved = true;
		}
	}
	sqlite3_reset(s);
	if ((!known || *moved) && !st->readonly && (s = st_query(st, Q_DL_PUT))) {
		bind_text(s, 1, uid);
		bind_time(s, 2, due);
		sqlite3_bind_int(s, 3, rev);
		st_run(st, s, "recording a deadline");
	}
	return rev;
}

void state_deadline_store(struct state *st, const struct deadline *d)
{
	sqlite3_stmt *s;

	if (st->readonly || !(s = st_query(st, Q_DL_COPY_PUT)))
		return;
	bind_text(s, 1, d->uid);
	bind_text(s, 2, d->summary ? d->summary : "");
	bind_text(s, 3, d->description);
	bind_text(s, 4, d->categories);
	sqlite3_bind_int(s, 5, d->date_only);
	st_run(st, s, "storing a deadline's last seen copy");
}

bool state_deadline_copy(struct state *st, const char *uid, struct deadline *out)
{
	sqlite3_stmt *s = st_query(st, Q_DL_COPY_GET);
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	bind_text(s, 1, uid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->uid = column_dup(s, 0);
		out->due = (time_t)sqlite3_column_int64(s, 1);
		out->revision = sqlite3_column_int(s, 2);
		out->summary = column_dup(s, 3);
		out->description = sqlite3_column_type(s, 4) == SQLITE_NULL ? NULL : column_dup(s, 4);
		out->categories = sqlite3_column_type(s, 5) == SQLITE_NULL ? NULL : column_dup(s, 5);
		out->date_only = sqlite3_column_int(s, 6) != 0;
		found = true;
	} else if (rc != SQLITE_DONE) {
		st_log(st, "reading a deadline's last seen copy");
	}
	sqlite3_reset(s);
	return found;
}

void state_deadline_clear(struct deadline *d)
{
	free(d->uid);
	free(d->summary);
	free(d->description);
	free(d->categories);
	memset(d, 0, sizeof(*d));
}

bool state_legacy_known(struct state *st)
{
	return st_one_row(st, Q_LEGACY, NULL, NULL);
}

void state_legacy_known_done(struct state *st)
{
	if (!st->readonly)
		st_exec(st, "DELETE FROM legacy_known", NULL);
}

long state_owed_count(struct state *st, const char *email)
{
	long long n = 0;

	st_one_row(st, Q_OWED_COUNT, email, &n);
	return (long)n;
}

void state_owed_emails_each(struct state *st, void (*fn)(const char *email, void *arg),
			    void *arg)
{
	/* Its own statement: fn may call back into the state. */
	sqlite3_stmt *q;

	if (sqlite3_prepare_v2(st->db, "SELECT DISTINCT email FROM owed ORDER BY email", -1, &q,
			       NULL) != SQLITE_OK) {
		st_log(st, "listing participants with obligations");
		return;
	}
	while (sqlite3_step(q) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), arg);
	sqlite3_finalize(q);
}

/* Whether q finds a row of attendance for email; yes on an error, the
 * safe answer to both questions below (it keeps the participant). */
static bool attendance_any(struct state *st, enum query which, const char *email)
{
	sqlite3_stmt *q = st_query(st, which);
	bool found = true;

	if (!q)
		return found;
	bind_text(q, 1, email);
	found = sqlite3_step(q) != SQLITE_DONE;
	sqlite3_reset(q);
	return found;
}

bool state_holds_sessions(struct state *st, const char *email)
{
	return attendance_any(st, Q_HOLDS_SESSIONS, email);
}

bool state_was_invited(struct state *st, const char *email)
{
	return attendance_any(st, Q_WAS_INVITED, email);
}

void state_owed_forget(struct state *st, const char *email)
{
	sqlite3_stmt *q = st_query(st, Q_OWED_FORGET);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, email);
	st_run(st, q, "forgetting a participant's obligations");
}

char *state_meta_get(struct state *st, const char *key)
{
	sqlite3_stmt *s = st_query(st, Q_META_GET);
	char *v = NULL;

	if (!s)
		return NULL;
	bind_text(s, 1, key);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = column_dup(s, 0);
	sqlite3_reset(s);
	return v;
}

void state_meta_put(struct state *st, const char *key, const char *value)
{
	sqlite3_stmt *s = st_query(st, Q_META_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	st_run(st, s, "recording what kallad last read");
}

char *state_message_id_salt(struct state *st, const char *identity)
{
	char *salt = state_meta_get(st, "message-id-salt"), *machine, *seed;
	char hex[33], host[256] = "";
	size_t n;

	if (salt)
		return salt;
	/* A ledger that sent without one keeps none: its repeats and the
	 * bounces it reads must meet the Message-IDs that went. */
	if (st_one_row(st, Q_ANY_SENT, NULL, NULL)) {
		hex[0] = '\0';
	} else {
		/* This machine, this ledger, this programme: what a --preview
		 * that cannot write works out too, before the first send. */
		if (!(machine = read_file("/etc/machine-id", &n))) {
			gethostname(host, sizeof(host) - 1);
			machine = xstrdup(host);
		}
		seed = xasprintf("%s|%s|%s", machine, st->path, identity ? identity : "");
		hash_hex(seed, strlen(seed), hex);
		free(seed);
		free(machine);
	}
	return state_pin(st, "message-id-salt", hex);
}

char *state_pin(struct state *st, const char *key, const char *value)
{
	char *kept = state_meta_get(st, key);
	sqlite3_stmt *s;

	if (kept || st->readonly)
		return kept ? kept : xstrdup(value);
	if (!(s = st_query(st, Q_META_ADD)))
		return NULL;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	st_run(st, s, "recording what later messages must keep");
	return state_meta_get(st, key);
}

char *state_calendar_organizer(struct state *st, const char *uid, const char *configured)
{
	char *key = xasprintf("calendar-organizer:%s", uid), *org = state_pin(st, key, configured);

	free(key);
	return org ? org : xstrdup(configured);
}

bool state_organizer_kept_elsewhere(struct state *st, const char *configured, char **kept)
{
	sqlite3_stmt *s = NULL;

	*kept = NULL;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT value FROM meta WHERE key LIKE 'calendar-organizer:%'"
			       " AND value <> ?1 COLLATE NOCASE LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return false;
	bind_text(s, 1, configured);
	if (sqlite3_step(s) == SQLITE_ROW)
		*kept = column_dup(s, 0);
	sqlite3_finalize(s);
	return *kept != NULL;
}

void state_participant_store(struct state *st, const struct participant *p, time_t now)
{
	sqlite3_stmt *s = st_query(st, Q_PSEEN_PUT);

	if (!s || st->readonly)
		return;
	bind_text(s, 1, p->email);
	bind_text(s, 2, reg_status_name(p->status));
	bind_time(s, 3, now);
	bind_text(s, 4, p->name);
	bind_text(s, 5, p->language);
	bind_text(s, 6, p->organisation);
	bind_text(s, 7, p->role);
	st_run(st, s, "keeping a copy of a participant");
}

bool state_participant_copy(struct state *st, const char *email, struct participant *out)
{
	sqlite3_stmt *s = st_query(st, Q_PSEEN_GET);
	bool found = false;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	bind_text(s, 1, email);
	if (sqlite3_step(s) == SQLITE_ROW) {
		out->email = column_dup(s, 0);
		out->name = column_dup(s, 1);
		out->language = column_dup(s, 2);
		out->organisation = column_dup(s, 3);
		out->role = column_dup(s, 4);
		out->updated_at = (time_t)sqlite3_column_int64(s, 5);
		if (!reg_parse_status((const char *)sqlite3_column_text(s, 6), &out->status))
			out->status = PS_REGISTERED; /* kallad invited them */
		found = true;
	}
	sqlite3_reset(s);
	return found;
}

void state_invited_each(struct state *st, void (*fn)(const char *email, void *arg), void *arg)
{
	/* Its own statement: fn may call back into the state. */
	sqlite3_stmt *q;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT DISTINCT email FROM attendance WHERE invited = 1 ORDER BY email",
			       -1, &q, NULL) != SQLITE_OK) {
		st_log(st, "listing invited participants");
		return;
	}
	while (sqlite3_step(q) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), arg);
	sqlite3_finalize(q);
}

bool state_relay_get(struct state *st, struct relay_row *out)
{
	sqlite3_stmt *q = st_query(st, Q_RELAY_GET);
	bool found;

	memset(out, 0, sizeof(*out));
	if (!q)
		return false;
	found = sqlite3_step(q) == SQLITE_ROW;
	if (found) {
		out->fault = column_dup(q, 0);
		out->kind = sqlite3_column_int(q, 1);
		out->faults = sqlite3_column_int(q, 2);
		out->since = (time_t)sqlite3_column_int64(q, 3);
		out->until = (time_t)sqlite3_column_int64(q, 4);
	}
	sqlite3_reset(q);
	return found;
}

void state_relay_put(struct state *st, const struct relay_row *r)
{
	sqlite3_stmt *q = st_query(st, Q_RELAY_PUT);

	if (!q || st->readonly)
		return;
	bind_text(q, 1, r->fault ? r->fault : "");
	sqlite3_bind_int(q, 2, r->kind);
	sqlite3_bind_int(q, 3, r->faults);
	bind_time(q, 4, r->since);
	bind_time(q, 5, r->until);
	st_run(st, q, "recording the relay's suspension");
}

void state_relay_clear(struct state *st, time_t now)
{
	sqlite3_stmt *q = st_query(st, Q_RELAY_WAITING);

	if (st->readonly)
		return;
	/* First what waited for it (a crash between the two leaves it due
	 * under a suspension, which holds it back again). */
	if (q) {
		bind_time(q, 1, now);
		st_run(st, q, "making what waited for the relay due");
	}
	if ((q = st_query(st, Q_RELAY_CLEAR)))
		st_run(st, q, "clearing the relay's suspension");
}

void state_relay_free(struct relay_row *r)
{
	free(r->fault);
	memset(r, 0, sizeof(*r));
}
