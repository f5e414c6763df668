/* registrations.h: the registration database, SQLite, read-only (SPEC §1.3). */
#ifndef KALLAD_REGISTRATIONS_H
#define KALLAD_REGISTRATIONS_H

#include "config.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum pstatus { PS_INVITED, PS_REGISTERED, PS_WAITLISTED, PS_CANCELLED };

struct participant {
	char *email; /* validated addr-spec, as stored */
	char *name, *organisation, *role; /* organisation, role may be NULL */
	char *language;                   /* "sv", "en", ... never NULL */
	enum pstatus status;
	time_t registered_at; /* 0 when unknown */
	time_t updated_at;
	bool removed;         /* gone from the registrations: kallad's last copy */
	bool removal_held;    /* ... with too many others: its cancels wait */
};

struct absence {
	char *email, *session_uid;
	char *row; /* where it came from, as messages name a row: "file: line 3 (email)" */
};

struct attachment {
	char *email, *message, *path;
};

/* The registration database, or (in tests) participants held in memory.
 *
 * Loaded from a database, participants are not kept in memory: reg_each()
 * reads them a page at a time, so kallad's memory does not grow with the
 * number of participants. Absences (a row per missed session: few) are
 * kept in memory; attachments are read per participant when a message
 * needs them. A struct filled by hand (db NULL) serves the arrays below. */
struct registrations {
	void *db;            /* the open read-only connection, or NULL */
	bool snapshot;       /* inside reg_each: db is the pass's snapshot */
	char *path;          /* the database file */
	char *q_page, *q_one, *q_one_trimmed, *q_attachments; /* prepared SQL (owned) */
	char *default_language;

	/* Without db: the participants, sorted by email (case-insensitive). */
	struct participant *participants;
	size_t n_participants; /* with db: valid participants at the last full read */
	size_t by_status[4];   /* with db: counts by status at the last full read */
	struct absence *absences; /* sorted by email, then session UID */
	size_t n_absences;
	struct attachment *attachments; /* without db only */
	size_t n_attachments;           /* with db: valid rows at load */
	char **attachment_messages;     /* with db: the message names those rows name */
	size_t n_attachment_messages;

	/* Rows skipped at load: participant rows (unusable or duplicates),
	 * and all rows, absences and attachments included. */
	size_t n_skipped_participants, n_skipped_rows;
	/* The addresses of participant rows skipped as unusable (not as
	 * duplicates), sorted case-insensitively. */
	char **unreadable;
	size_t n_unreadable, cap_unreadable;
	/* Where the participant rows are that may be anyone's, and why
	 * ("line 7: no address kallad can read", "participants row 7: ...",
	 * "line 9: a row with a NUL byte"), in row order: while there is one
	 * nobody missing is taken for gone. */
	char **unaddressed;
	size_t n_unaddressed, cap_unaddressed;
	/* Participants kallad knew whose rows are unusable now, as they last
	 * were (reg_keep_last_good), sorted by email: reg_each and reg_find
	 * serve them like the others, so a typo cancels no one. */
	struct participant *held;
	size_t n_held;
	/* With reg_keep_digests(true), a database's load fingerprints what it
	 * read (regdigest.h); else NULL. */
	struct regdigest *digests;
};

/* Opens cfg->registrations read-only with a busy timeout, checks the
 * shipped or configured SELECTs, reads every participant once (counting
 * them and reporting each invalid row, as below), loads the absences and
 * checks the attachment rows. The caller frees the result with reg_free().
 * Each invalid row (bad address, unknown status, unparsable time,
 * duplicate) is skipped with a line in warnings naming the row. NULL with
 * a line in errs when the database cannot be read at all. */
struct registrations *reg_load(const struct config *cfg, struct errlist *warnings,
			       struct errlist *errs);
void reg_free(struct registrations *reg);

/* From now on, each reg_load of a database also fingerprints what it read
 * (reg->digests), for the daemon to tell what a reload changed. */
void reg_keep_digests(bool on);
/* Takes reg's fingerprints (the caller frees them), NULL if none. */
struct regdigest *reg_take_digests(struct registrations *reg);

/* registrations = FILE.csv: the same, read from CSV files (csv_registrations.c). */
bool reg_is_csv(const char *path);
struct registrations *reg_load_csv(const struct config *cfg, struct errlist *warnings,
				   struct errlist *errs);

/* For each address whose participant row is unusable now and that old
 * (the registrations before this reload, or NULL) had as a valid
 * participant: keeps old's participant in reg->held, with a line in
 * warnings. */
void reg_keep_last_good(struct registrations *reg, const struct registrations *old,
			struct errlist *warnings);
/* Keeps p (taken over: *p is emptied) as a held participant, in address
 * order, with a line in warnings: for a participant kallad knew whose
 * row is unusable now (from the registrations before, or on a fresh start
 * the state database's copy). */
void reg_hold(struct registrations *reg, struct participant *p, struct errlist *warnings);
/* True if a participant row with this address was skipped as unusable:
 * whoever has no other state for them must not take it as removed. */
bool reg_is_unreadable(const struct registrations *reg, const char *email);

/* Calls fn for each valid participant in email order (case-insensitive),
 * reading the database a page at a time, every page from one snapshot
 * taken when the call begins, so a pass sees one consistent set of
 * registrations and ends however fast another process inserts. In WAL
 * mode the snapshot is one read transaction (writers go on); otherwise it
 * is a copy made in one short read transaction (sqlite3_backup), so a
 * writer is never held up for long either way. reg_find and
 * reg_attachments called from fn read the same snapshot. The participant
 * lives until page_done (may be NULL) has been called for its page: a
 * caller that keeps pointers across participants must let go of them
 * there. Invalid rows are skipped silently (reg_load reported them).
 * False if the database failed part-way (logged). */
bool reg_each(const struct registrations *reg, void (*fn)(const struct participant *, void *),
	      void (*page_done)(void *), void *arg);

/* Looks a participant up by address (case-insensitive) into *out, whose
 * strings the caller frees with reg_participant_clear(). False if there is
 * no valid participant with that address, or the database could not be
 * read; reg_lookup tells the two apart: 1 found, 0 none, -1 not read
 * (logged: locked past the busy timeout, say). */
bool reg_find(const struct registrations *reg, const char *email, struct participant *out);
int reg_lookup(const struct registrations *reg, const char *email, struct participant *out);
void reg_participant_clear(struct participant *p);

bool reg_is_absent(const struct registrations *reg, const char *email, const char *session_uid);

/* The attachment rows of one participant for one message, in row order,
 * into a new array (*out, freed with reg_attachments_free); the count, or
 * REG_ATTACHMENTS_FAILED (*out NULL) if the database failed (logged), so
 * that a message never goes out without its files. */
#define REG_ATTACHMENTS_FAILED ((size_t)-1)
size_t reg_attachments(const struct registrations *reg, const char *email, const char *message,
		       struct attachment **out);
void reg_attachments_free(struct attachment *a, size_t n);

const char *reg_status_name(enum pstatus s);
bool reg_parse_status(const char *s, enum pstatus *out);
/* True for an address kallad will put in To: (an addr-spec without
 * spaces, quotes, angle brackets, CR/LF or control characters). */
bool reg_valid_email(const char *email);

#endif
