/* replies.c: the replies and bounces kallad reads, and what it keeps of
 * them (tables of schema step 7 in state.c).
 *
 * A reply counts only when it can only have come from the participant as
 * far as kallad can tell: its UID is a session kallad sent that address,
 * its ATTENDEE is that address and so is the message's From. Anything else
 * is counted as ignored (and, when it names a participant, kept in their
 * history), so a forged reply changes nothing. Of a participant's replies
 * to one session the latest DTSTAMP wins, whatever order they arrive in.
 * A bounce suppresses an address only if kallad sent mail to it. Every
 * write is idempotent, and each message's records and the mailbox mark
 * after it are one transaction: a pass that stops half-way, or two
 * processes reading at once, never count a message twice. */
#include "replies.h"

#include "imap.h"
#include "inbound.h"
#include "log.h"
#include "message.h"
#include "transport.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const answer_names[] = {
	[ANS_NONE] = "needs-action", [ANS_ACCEPTED] = "accepted",
	[ANS_DECLINED] = "declined", [ANS_TENTATIVE] = "tentative",
};

const char *replies_answer_name(enum answer a)
{
	return (unsigned)a < ARRAY_SIZE(answer_names) ? answer_names[a] : "?";
}

static enum answer answer_of(const char *word)
{
	for (size_t i = ANS_ACCEPTED; i < ARRAY_SIZE(answer_names); i++)
		if (str_eq(word, answer_names[i]))
			return (enum answer)i;
	return ANS_NONE;
}

/* A prepared statement with text (or NULL) bound to ?1.. in order; NULL,
 * logged, on error. The caller finalizes it. */
static sqlite3_stmt *prep(struct state *st, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(state_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("%s: %s", state_path(st), sqlite3_errmsg(state_sqlite(st)));
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

static void bind_str(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* Steps a statement that writes; finalizes it. */
static bool finish(struct state *st, sqlite3_stmt *s)
{
	int rc = s ? sqlite3_step(s) : SQLITE_ERROR;

	if (s && rc != SQLITE_DONE && rc != SQLITE_ROW)
		log_error("%s: %s", state_path(st), sqlite3_errmsg(state_sqlite(st)));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

static const char *col(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

enum answer replies_answer(struct state *st, const char *email, const char *uid)
{
	sqlite3_stmt *s = prep(st, "SELECT partstat FROM responses WHERE email = ?1 AND uid = ?2");
	enum answer a = ANS_NONE;

	if (!s)
		return ANS_NONE;
	bind_str(s, 1, email);
	bind_str(s, 2, uid);
	if (sqlite3_step(s) == SQLITE_ROW)
		a = answer_of(col(s, 0));
	sqlite3_finalize(s);
	return a;
}

/* Does sql, with email (if not NULL) as ?1, give a row? */
static bool any_row(struct state *st, const char *sql, const char *email)
{
	sqlite3_stmt *s = prep(st, sql);
	bool yes;

	if (!s)
		return false;
	if (email)
		bind_str(s, 1, email);
	yes = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return yes;
}

bool replies_bounced(struct state *st, const char *email)
{
	return any_row(st, "SELECT 1 FROM suppressed WHERE email = ?1", email);
}

bool replies_any_answer(struct state *st)
{
	return any_row(st, "SELECT 1 FROM responses LIMIT 1", NULL);
}

bool replies_any_bounce(struct state *st)
{
	return any_row(st, "SELECT 1 FROM suppressed LIMIT 1", NULL);
}

/* One line of a participant's history; the same line twice (the mailbox
 * read again after its UIDVALIDITY changed) is kept once. True if it is
 * new. */
static bool note_event(struct state *st, time_t now, const char *kind, const char *email,
		       const char *uid, const char *what, const char *detail, const char *msgid,
		       const char *mailbox, unsigned long uidvalidity, unsigned long imap_uid)
{
	sqlite3_stmt *s = prep(st,
		"INSERT INTO inbound(at, kind, email, uid, what, detail, message_id, mailbox,"
		" uidvalidity, imap_uid) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10"
		" WHERE NOT EXISTS (SELECT 1 FROM inbound WHERE kind = ?2 AND email IS ?3"
		" AND uid IS ?4 AND what IS ?5 AND message_id IS ?7 AND (?7 IS NOT NULL"
		" OR (mailbox = ?8 AND uidvalidity = ?9 AND imap_uid = ?10)))");

	if (!s)
		return false;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)now);
	bind_str(s, 2, kind);
	bind_str(s, 3, email);
	bind_str(s, 4, uid);
	bind_str(s, 5, what);
	bind_str(s, 6, detail);
	bind_str(s, 7, msgid);
	bind_str(s, 8, mailbox);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)uidvalidity);
	sqlite3_bind_int64(s, 10, (sqlite3_int64)imap_uid);
	return finish(st, s) && sqlite3_changes(state_sqlite(st)) > 0;
}

bool replies_unsuppress(struct state *st, const char *email, time_t now)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM suppressed WHERE email = ?1");
	bool was;

	if (!s)
		return false;
	bind_str(s, 1, email);
	was = finish(st, s) && sqlite3_changes(state_sqlite(st)) > 0;
	if (was)
		note_event(st, now, "unsuppressed", email, NULL, "-", "kallad --unsuppress", NULL,
			   "-", 0, 0);
	return was;
}

/* Did kallad ever send (or try to send) mail to email? */
static bool ever_sent(struct state *st, const char *email)
{
	return any_row(st, "SELECT 1 FROM deliveries WHERE email = ?1 COLLATE NOCASE"
			   " AND state IN (1, 2, 3, 4) LIMIT 1", email);
}

/* Whether id, the Message-ID (without <>) of the message a report returns,
 * is one kallad made for a delivery to email (message_id_is). */
static bool kallads_message(struct state *st, const char *email, const char *id)
{
	sqlite3_stmt *s = prep(st, "SELECT key FROM deliveries WHERE email = ?1 COLLATE NOCASE");
	/* Kept since the first send; none (as before salts) if nothing
	 * went, when no report can be about a message of kallad's. */
	char *salt = state_meta_get(st, "message-id-salt");
	bool found = false;

	if (s) {
		bind_str(s, 1, email);
		while (!found && sqlite3_step(s) == SQLITE_ROW)
			found = message_id_is(id, col(s, 0), salt);
		sqlite3_finalize(s);
	}
	free(salt);
	return found;
}

/* ---- one message -------------------------------------------------------- */

struct taking {
	struct state *st;
	time_t now;
	const char *mailbox;
	unsigned long uidvalidity, uid;
	replies_fn fn;
	void *arg;
	struct replies_stats *stats;
};

static void tell(const struct taking *t, const char *kind, const char *email, const char *what,
		 const char *uid, const char *detail)
{
	if (t->fn)
		t->fn(kind, email ? email : "-", what ? what : "-", uid ? uid : "-",
		      detail ? detail : "-", t->arg);
}

/* Why a parsed reply does not count, or NULL. */
static const char *reply_refused(struct state *st, const struct inbound *in, char *buf,
				 size_t len, struct attendance *held)
{
	if (!in->from || !str_eq(in->from, in->attendee)) {
		snprintf(buf, len, "From %s is not the ATTENDEE %s", in->from ? in->from : "(none)",
			 in->attendee);
		return buf;
	}
	if (!state_attendance(st, in->attendee, in->uid, held)) {
		snprintf(buf, len, "kallad sent %s nothing about %s", in->attendee, in->uid);
		return buf;
	}
	if (answer_of(in->partstat) == ANS_NONE) {
		snprintf(buf, len, "PARTSTAT %s is not an answer kallad keeps", in->partstat);
		return buf;
	}
	return NULL;
}

static void take_reply(const struct taking *t, const struct inbound *in)
{
	struct attendance held;
	char why[600], detail[200];
	const char *refused = reply_refused(t->st, in, why, sizeof(why), &held);
	time_t stamp = in->dtstamp ? in->dtstamp : t->now;
	sqlite3_stmt *s;

	if (refused) {
		t->stats->ignored++;
		note_event(t->st, t->now, "ignored", in->attendee, in->uid, in->partstat, refused,
			   in->message_id, t->mailbox, t->uidvalidity, t->uid);
		tell(t, "ignored", in->attendee, in->partstat, in->uid, refused);
		log_notice("reply %s from %s ignored: %s", in->partstat, in->from ? in->from : "-",
			   refused);
		return;
	}
	/* A reply to an older SEQUENCE answers what the participant was
	 * sent then: recorded, and said so. */
	if (in->sequence < held.sequence)
		snprintf(detail, sizeof(detail), "to SEQUENCE %d, older than the %d they hold",
			 in->sequence, held.sequence);
	else
		snprintf(detail, sizeof(detail), "SEQUENCE %d", in->sequence);
	s = prep(t->st, "INSERT INTO responses(email, uid, partstat, dtstamp, sequence, received)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(email, uid) DO UPDATE SET"
			" partstat = excluded.partstat, dtstamp = excluded.dtstamp,"
			" sequence = excluded.sequence, received = excluded.received"
			" WHERE excluded.dtstamp > responses.dtstamp");
	if (s) {
		bind_str(s, 1, in->attendee);
		bind_str(s, 2, in->uid);
		bind_str(s, 3, in->partstat);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)stamp);
		sqlite3_bind_int(s, 5, in->sequence);
		sqlite3_bind_int64(s, 6, (sqlite3_int64)t->now);
		if (finish(t->st, s) && sqlite3_changes(state_sqlite(t->st)) == 0)
			strncat(detail, "; the answer kept has a DTSTAMP as late or later",
				sizeof(detail) - strlen(detail) - 1);
	}
	t->stats->replies++;
	note_event(t->st, stamp, "reply", in->attendee, in->uid, in->partstat, detail,
		   in->message_id, t->mailbox, t->uidvalidity, t->uid);
	tell(t, "reply", in->attendee, in->partstat, in->uid, detail);
	log_info("reply: %s %s %s (%s)", in->attendee, in->partstat, in->uid, detail);
}

static void suppress(const struct taking *t, const char *email, const struct inbound_rcpt *r)
{
	sqlite3_stmt *s = prep(t->st, "INSERT OR IGNORE INTO suppressed(email, since, status,"
				      " diagnostic) VALUES(?1, ?2, ?3, ?4)");

	if (!s)
		return;
	bind_str(s, 1, email);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)t->now);
	bind_str(s, 3, r->status);
	bind_str(s, 4, r->diagnostic);
	finish(t->st, s);
}

static void take_dsn(const struct taking *t, const struct inbound *in)
{
	for (size_t i = 0; i < in->n_rcpts; i++) {
		const struct inbound_rcpt *r = &in->rcpts[i];
		bool failed = str_eq(r->action, "failed") && r->status[0] == '5';
		bool delayed = str_eq(r->action, "delayed") || r->status[0] == '4';
		const char *kind = failed ? "bounce" : delayed ? "delay" : NULL;
		/* Where the recipient's server rewrote the address (an alias, a
		 * forward), Original-Recipient is the one kallad sent to. */
		const char *email = r->original && ever_sent(t->st, r->original) ? r->original
										 : r->email;

		if (!kind || !ever_sent(t->st, email)) {
			t->stats->ignored++;
			tell(t, "ignored", email, r->status, NULL,
			     kind ? "kallad sent nothing to this address" : "not a failure or a delay");
			continue;
		}
		/* The organiser's own mail from the same mailbox (too large, or
		 * refused for its content) says nothing of kallad's: where the
		 * report returns the message, it must be one kallad sent. */
		if (in->original_id && !kallads_message(t->st, email, in->original_id)) {
			char why[300];

			snprintf(why, sizeof(why), "about a message kallad did not send (Message-ID <%.200s>)",
				 in->original_id);
			t->stats->ignored++;
			note_event(t->st, t->now, "ignored", email, NULL, r->status, why,
				   in->message_id, t->mailbox, t->uidvalidity, t->uid);
			tell(t, "ignored", email, r->status, NULL, why);
			log_notice("a report of %s for %s ignored: %s", r->status, email, why);
			continue;
		}
		/* Read before (the mailbox read again under a new UIDVALIDITY):
		 * it changes nothing, and undoes no --unsuppress. */
		if (!note_event(t->st, t->now, kind, email, NULL, r->status, r->diagnostic,
				in->message_id, t->mailbox, t->uidvalidity, t->uid)) {
			t->stats->ignored++;
			tell(t, "ignored", email, r->status, NULL, "read before");
			continue;
		}
		if (failed) {
			suppress(t, email, r);
			t->stats->bounces++;
			log_warn("%s bounced (%s %s): nothing more goes to it until kallad "
				 "--unsuppress %s", email, r->status,
				 r->diagnostic ? r->diagnostic : "-", email);
		} else {
			t->stats->delays++;
		}
		tell(t, kind, email, r->status, NULL, r->diagnostic);
	}
}

void replies_take(struct state *st, const char *data, size_t len, time_t now,
		  const char *mailbox, unsigned long uidvalidity, unsigned long uid, replies_fn fn,
		  void *arg, struct replies_stats *stats)
{
	struct taking t = {st, now, mailbox, uidvalidity, uid, fn, arg, stats};
	struct inbound in;

	inbound_parse(data, len, &in);
	if (in.kind == IN_REPLY) {
		take_reply(&t, &in);
	} else if (in.kind == IN_DSN) {
		take_dsn(&t, &in);
	} else {
		stats->ignored++;
		tell(&t, "ignored", in.from, NULL, NULL, in.why);
	}
	inbound_clear(&in);
}

/* ---- the pass ----------------------------------------------------------- */

static bool mark_get(struct state *st, const char *url, unsigned long *uidvalidity,
		     unsigned long *last)
{
	sqlite3_stmt *s = prep(st, "SELECT uidvalidity, last_uid FROM mailboxes WHERE url = ?1");
	bool found = false;

	*uidvalidity = *last = 0;
	if (!s)
		return false;
	bind_str(s, 1, url);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*uidvalidity = (unsigned long)sqlite3_column_int64(s, 0);
		*last = (unsigned long)sqlite3_column_int64(s, 1);
		found = true;
	}
	sqlite3_finalize(s);
	return found;
}

/* Only forward: another kallad reading at the same time may be ahead. */
static void mark_put(struct state *st, const char *url, unsigned long uidvalidity,
		     unsigned long last)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO mailboxes(url, uidvalidity, last_uid)"
				   " VALUES(?1, ?2, ?3) ON CONFLICT(url) DO UPDATE SET"
				   " last_uid = CASE WHEN uidvalidity = excluded.uidvalidity"
				   "   THEN max(last_uid, excluded.last_uid) ELSE excluded.last_uid END,"
				   " uidvalidity = excluded.uidvalidity");

	if (!s)
		return;
	bind_str(s, 1, url);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)uidvalidity);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)last);
	finish(st, s);
}

static struct imap *open_mailbox(const struct config *cfg, struct errlist *errs)
{
	char *pw = NULL;
	struct imap *im;

	if (!str_empty(cfg->replies_password) &&
	    !(pw = transport_secret("[replies] password", cfg->replies_password, errs)))
		return NULL;
	im = imap_open(cfg, pw, errs);
	if (pw)
		explicit_bzero(pw, strlen(pw));
	free(pw);
	return im;
}

bool replies_fetch(const struct config *cfg, struct state *st, time_t now, replies_fn fn,
		   void *arg, struct replies_stats *stats, struct errlist *errs)
{
	struct imap *im;
	unsigned long uidvalidity, known_validity, last, *uids = NULL;
	size_t n = 0, i;
	bool ok;

	memset(stats, 0, sizeof(*stats));
	if (!cfg->replies_url || !(im = open_mailbox(cfg, errs))) {
		stats->errors++;
		return false;
	}
	ok = imap_examine(im, &uidvalidity, errs);
	if (ok && mark_get(st, cfg->replies_url, &known_validity, &last) &&
	    known_validity != uidvalidity) {
		/* The server renumbered the mailbox: read it all again; the
		 * records of what was read before are not repeated. */
		log_notice("%s: UIDVALIDITY changed (%lu, was %lu): reading the mailbox again",
			   cfg->replies_url, uidvalidity, known_validity);
		last = 0;
	}
	ok = ok && imap_uids_after(im, last, &uids, &n, errs);
	for (i = 0; ok && i < n; i++) {
		size_t len;
		char *msg = imap_fetch(im, uids[i], &len, errs);

		if (!msg) {
			ok = false;
			break;
		}
		state_begin_light(st);
		replies_take(st, msg, len, now, cfg->replies_url, uidvalidity, uids[i], fn, arg,
			     stats);
		mark_put(st, cfg->replies_url, uidvalidity, uids[i]);
		if (!state_commit(st))
			ok = false;
		free(msg);
	}
	if (ok && n == 0) {
		state_begin_light(st);
		mark_put(st, cfg->replies_url, uidvalidity, last);
		state_commit(st);
	}
	if (!ok)
		stats->errors++;
	free(uids);
	imap_close(im);
	return ok;
}

/* ---- reading back ------------------------------------------------------- */

void replies_each_response(struct state *st, const char *uid,
			   void (*fn)(const struct response_row *, void *), void *arg)
{
	sqlite3_stmt *s = prep(st,
		"SELECT a.uid, a.email, coalesce(r.partstat, 'needs-action'), r.dtstamp"
		" FROM attendance a LEFT JOIN responses r ON r.email = a.email AND r.uid = a.uid"
		" LEFT JOIN sessions s ON s.uid = a.uid"
		" WHERE (?1 IS NULL OR a.uid = ?1) AND (a.invited OR r.partstat IS NOT NULL)"
		" ORDER BY s.start IS NULL, s.start, a.uid, lower(a.email)");

	if (!s)
		return;
	bind_str(s, 1, uid);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct response_row row = {col(s, 0), col(s, 1), col(s, 2),
					   (time_t)sqlite3_column_int64(s, 3)};

		fn(&row, arg);
	}
	sqlite3_finalize(s);
}

void replies_each_event(struct state *st, const char *email,
			void (*fn)(const struct inbound_row *, void *), void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT at, kind, email, uid, what, detail FROM inbound"
				   " WHERE email = ?1 ORDER BY at, id");

	if (!s)
		return;
	bind_str(s, 1, email);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct inbound_row row = {(time_t)sqlite3_column_int64(s, 0), col(s, 1), col(s, 2),
					  col(s, 3), col(s, 4), col(s, 5)};

		fn(&row, arg);
	}
	sqlite3_finalize(s);
}

void replies_each_suppressed(struct state *st, void (*fn)(const struct suppressed_row *, void *),
			     void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT email, status, diagnostic, since FROM suppressed"
				   " ORDER BY since, email");

	if (!s)
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct suppressed_row row = {col(s, 0), col(s, 1), col(s, 2),
					     (time_t)sqlite3_column_int64(s, 3)};

		fn(&row, arg);
	}
	sqlite3_finalize(s);
}

static time_t one_time(struct state *st, const char *sql, const char *email, const char *uid)
{
	sqlite3_stmt *s = prep(st, sql);
	time_t t = 0;

	if (!s)
		return 0;
	bind_str(s, 1, email);
	bind_str(s, 2, uid);
	if (sqlite3_step(s) == SQLITE_ROW)
		t = (time_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return t;
}

void replies_sent_times(struct state *st, const char *email, const char *uid, time_t *invite,
			time_t *reminder)
{
	*invite = one_time(st, "SELECT max(updated) FROM deliveries WHERE email = ?1 COLLATE NOCASE"
			       " AND target = ?2 AND message = 'invite' AND state = 1",
			   email, uid);
	*reminder = one_time(st, "SELECT max(updated) FROM deliveries WHERE email = ?1 COLLATE"
				 " NOCASE AND target = ?2 AND message = 'session-reminder'"
				 " AND state = 1",
			     email, uid);
}
