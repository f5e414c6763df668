/* config.h: kallad.conf and its kallad.conf.d/ drop-ins (SPEC §1.1). */
#ifndef KALLAD_CONFIG_H
#define KALLAD_CONFIG_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>

enum audience { AUD_REGISTERED, AUD_INVITED, AUD_WAITLISTED, AUD_ALL };

/* One entry of a rule's `before`: calendar days or elapsed hours. */
struct offset {
	bool days;  /* true: "14d", local calendar days; false: "6h", elapsed hours */
	int amount; /* >= 0 */
};

struct rule {
	char *name;     /* from "[rule NAME]" */
	char *message;  /* template name: session-reminder, deadline-reminder, material, ... */
	char *category; /* only targets whose CATEGORIES hold this (case-insensitive); NULL: all */
	bool deadlines; /* targets deadlines (message deadline-reminder) rather than sessions */
	bool first_only; /* `sessions = first`: only the first session that is not cancelled */
	struct offset *offsets;
	size_t n_offsets;
	int at;         /* minutes after local midnight, or -1 when `at` is absent */
	enum audience to;
	bool unanswered; /* `to = registered, unanswered`: only those who have not
			  * replied to the session's invite */
	char *file;     /* where it was defined, for messages */
	int line;
};

/* [deadline NAME]: a deadline for calendars that carry no categories:
 * the calendar's event with UID NAME, or (without one) a deadline of its
 * own, due at `due`. */
struct cfg_deadline {
	char *name;     /* from "[deadline NAME]": its UID, for --deadline NAME */
	char *title;    /* SUMMARY; the event's, or NAME, when not given */
	char *category; /* CATEGORIES; NULL when not given */
	bool has_due;   /* due given: the fields below hold it */
	int year, month, day, hour, minute; /* local time in the programme zone */
	bool date_only; /* due = YYYY-MM-DD: the end of that day */
	char *file;
	int line;
};

/* The CSV column names, for [registrations] columns. */
bool config_csv_column(const char *name);

struct config {
	char *path; /* the main file */
	/* Every key outside [smtp] (the relay, which planning never reads),
	 * section, name and value in the order read, hashed: the same
	 * digest, the same plan from the same calendar and registrations. */
	char plan_digest[33];

	/* [programme] */
	char *name, *calendar, *registrations, *state, *timezone, *language, *templates;
	char *material; /* attachments are read only beneath it; default material/ beside the file */
	char *sessions_category; /* only events in this category are sessions; NULL: all */
	/* [organizer] */
	char *organizer_name, *organizer_email, *from, *reply_to;
	/* [smtp]; url NULL means the outbox */
	char *smtp_url;
	bool smtp_tls_required; /* tls = required (default) | none */
	char *smtp_user, *smtp_password; /* password: a credential name or a file path */
	int max_per_minute;              /* 0: no limit; default 30 */
	int timeout;                     /* seconds per server reply; default 60 */
	int end_of_data_timeout;         /* seconds for the reply to "."; default 600
					  * (RFC 5321 4.5.3.2.6) */
	int idle_timeout;                /* seconds a connection may sit unused; default 30 */
	int smtp_connections;            /* transactions in flight at once, 1 to 16; default 1 */
	char *smtp_ca_file;              /* CA bundle for a private CA; NULL: the system's */
	/* [replies]; url NULL: kallad reads no mailbox */
	char *replies_url;                     /* imap[s]://host[:port]/MAILBOX */
	bool replies_tls_required;             /* tls = required (default) | none */
	char *replies_user, *replies_password; /* password as in [smtp] */
	int replies_interval;                  /* seconds; default 300 */
	char *replies_ca_file;                 /* CA bundle for a private CA; NULL: the system's */
	/* [registrations] custom SELECTs, NULL for the shipped schema */
	char *sql_participants, *sql_attachments, *sql_absences;
	/* [registrations] for registrations = FILE.csv: the header mapping as
	 * given ("E-post:email, Namn:name"), absences and attachments files */
	char *csv_columns, *csv_absences, *csv_attachments;
	/* [deadline NAME] */
	struct cfg_deadline *deadlines;
	size_t n_deadlines, cap_deadlines;
	/* [rule NAME] */
	struct rule *rules;
	size_t n_rules, cap_rules;
	/* [policy] */
	int quiet_start, quiet_end; /* minutes after midnight; both -1 when none */
	bool late_send;             /* late-registrations = send */
	int min_lead;               /* seconds; 0 when unset */
	int min_lead_days;          /* min-lead in calendar days (Nd), else 0 */
	bool changes_hold;          /* changes = hold */
	bool description_updates;   /* description-changes = update: a new title or
				     * description alone sends an update too */
	/* The guard against mass vanishing: more removed than this is held. */
	int max_removed_sessions;     /* sessions; default 1 */
	int max_removed_participants; /* participants, or a percentage when ... */
	bool max_removed_percent;     /* ... this is set; default 20% */
};

/* Reads path, then the *.conf files of the directory "kallad.conf.d"
 * beside it in lexical order, validates every key and the
 * keys across sections, and resolves relative paths against the directory
 * of the file that named them. Returns a config the caller frees with
 * config_free(), or NULL with every problem appended to errs as
 * "file:line: key: what is wrong". */
struct config *config_load(const char *path, struct errlist *errs);
/* The folder of drop-ins read after main_file: kallad.conf.d beside it. */
char *config_dropin_dir(const char *main_file);
void config_free(struct config *cfg);

/* "registered", "invited", ... for an audience. */
const char *config_audience_name(enum audience a);

#endif
