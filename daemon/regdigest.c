#include "regdigest.h"

#include "log.h"
#include "scratch.h"
#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this much memory the fingerprints live in their temporary file. */
#define CACHE_KIB 1024

struct regdigest {
	sqlite3 *db;
	sqlite3_stmt *add;
	uint64_t absences, attachments; /* sums of row hashes: any order */
	bool failed, done;
};

/* FNV-1a, 64 bits, over each field and a separator that no text holds. */
static uint64_t mix(uint64_t h, const char *s)
{
	if (!s) {
		h ^= 0xff;
		return h * 0x100000001b3ULL;
	}
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= 0x1f;
	return h * 0x100000001b3ULL;
}

static uint64_t mix_int(uint64_t h, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return mix(h, buf);
}

#define FNV_BASIS 0xcbf29ce484222325ULL

static void fail(struct regdigest *r, const char *what)
{
	if (!r->failed)
		log_error("fingerprinting the registrations (%s): %s", what, sqlite3_errmsg(r->db));
	r->failed = true;
}

struct regdigest *regdigest_new(void)
{
	struct regdigest *r = xcalloc(1, sizeof(*r));

	r->db = scratch_open("to fingerprint the registrations", CACHE_KIB,
			     "CREATE TABLE d(email TEXT PRIMARY KEY COLLATE NOCASE, h INTEGER NOT NULL)"
			     " WITHOUT ROWID; BEGIN");
	if (!r->db) {
		regdigest_free(r);
		return NULL;
	}
	if (sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO d(email, h) VALUES (?, ?)", -1,
			       &r->add, NULL) != SQLITE_OK) {
		fail(r, "setting up");
		regdigest_free(r);
		return NULL;
	}
	return r;
}

void regdigest_free(struct regdigest *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->add);
	sqlite3_close(r->db);
	free(r);
}

void regdigest_participant(struct regdigest *r, const struct participant *p)
{
	uint64_t h = FNV_BASIS;

	if (r->failed || r->done)
		return;
	h = mix(h, p->email);
	h = mix(h, p->name);
	h = mix(h, p->organisation);
	h = mix(h, p->role);
	h = mix(h, p->language);
	h = mix_int(h, p->status);
	h = mix_int(h, (long long)p->registered_at);
	h = mix_int(h, (long long)p->updated_at);
	sqlite3_bind_text(r->add, 1, p->email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(r->add, 2, (sqlite3_int64)h);
	if (sqlite3_step(r->add) != SQLITE_DONE)
		fail(r, "adding");
	sqlite3_reset(r->add);
}

void regdigest_absence(struct regdigest *r, const char *email, const char *session_uid)
{
	r->absences += mix(mix(FNV_BASIS, email), session_uid);
}

void regdigest_attachment(struct regdigest *r, const char *email, const char *message,
			  const char *path)
{
	r->attachments += mix(mix(mix(FNV_BASIS, email), message), path);
}

void regdigest_done(struct regdigest *r)
{
	if (r->done)
		return;
	r->done = true;
	if (!r->failed && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		fail(r, "ending");
}

/* A walk over one set in address order. */
struct walk {
	struct regdigest *r;
	sqlite3_stmt *q;
	const char *email; /* NULL past the end */
	sqlite3_int64 h;
};

static bool walk_step(struct walk *w)
{
	int rc = sqlite3_step(w->q);

	w->email = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(w->q, 0) : NULL;
	w->h = rc == SQLITE_ROW ? sqlite3_column_int64(w->q, 1) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		fail(w->r, "reading");
		return false;
	}
	return true;
}

static bool walk_start(struct walk *w, struct regdigest *r)
{
	w->r = r;
	if (sqlite3_prepare_v2(r->db, "SELECT email, h FROM d ORDER BY email", -1, &w->q, NULL) !=
	    SQLITE_OK) {
		fail(r, "reading");
		return false;
	}
	return walk_step(w);
}

bool regdigest_diff(struct regdigest *before, struct regdigest *after,
		    void (*fn)(const char *email, void *arg), void *arg)
{
	struct walk b = {0}, a = {0};
	bool ok;

	if (!before || !after)
		return false;
	regdigest_done(before);
	regdigest_done(after);
	if (before->failed || after->failed || before->absences != after->absences ||
	    before->attachments != after->attachments)
		return false;
	ok = walk_start(&b, before) && walk_start(&a, after);
	while (ok && (a.email || b.email)) {
		int c = !a.email ? 1 : !b.email ? -1 : sqlite3_stricmp(a.email, b.email);

		if (c > 0 || (c == 0 && strcmp(a.email, b.email) != 0)) {
			ok = false; /* gone, or the same address in other bytes */
		} else if (c < 0) {
			fn(a.email, arg); /* new */
			ok = walk_step(&a);
		} else {
			if (a.h != b.h)
				fn(a.email, arg);
			ok = walk_step(&a) && walk_step(&b);
		}
	}
	sqlite3_finalize(a.q);
	sqlite3_finalize(b.q);
	return ok;
}
