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
};

struct absence {
	char *email, *session_uid;
};

struct attachment {
	char *email, *message, *path;
};

struct registrations {
	struct participant *participants; /* sorted by email (case-insensitive) */
	size_t n_participants;
	struct absence *absences;
	size_t n_absences;
	struct attachment *attachments;
	size_t n_attachments;
};

/* Opens cfg->registrations read-only with a busy timeout, runs the shipped
 * or configured SELECTs and returns everything valid; the caller frees it
 * with reg_free(). Each invalid row (bad address, unknown status,
 * unparsable time, duplicate) is skipped with a line in warnings naming the
 * row. NULL with a line in errs when the database cannot be read at all. */
struct registrations *reg_load(const struct config *cfg, struct errlist *warnings,
			       struct errlist *errs);
void reg_free(struct registrations *reg);

const struct participant *reg_participant(const struct registrations *reg, const char *email);
bool reg_is_absent(const struct registrations *reg, const char *email, const char *session_uid);

const char *reg_status_name(enum pstatus s);
bool reg_parse_status(const char *s, enum pstatus *out);
/* True for an address kallad will put in To: (an addr-spec without
 * spaces, quotes, angle brackets, CR/LF or control characters). */
bool reg_valid_email(const char *email);

#endif
