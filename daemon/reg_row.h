/* reg_row.h: one registration row, from the SQLite database or a CSV
 * file, checked and made usable (SPEC §1.3): a row that can be used is
 * used, a row that cannot is reported with what is wrong. */
#ifndef KALLAD_REG_ROW_H
#define KALLAD_REG_ROW_H

#include "registrations.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The participant columns, by name (reg_participant_columns). */
enum { PC_EMAIL, PC_NAME, PC_ORG, PC_ROLE, PC_LANG, PC_STATUS, PC_REGISTERED, PC_UPDATED, PC_N };
extern const char *const reg_participant_columns[PC_N];

/* One value as stored: SQLite's storage classes; a CSV field is TEXT,
 * or NULL when empty. text is NUL-terminated with len bytes (an embedded
 * NUL makes it unusable); ival is set for RF_INT. */
enum reg_ftype { RF_NULL, RF_TEXT, RF_INT, RF_FLOAT, RF_BLOB };
struct reg_field {
	enum reg_ftype type;
	const char *text;
	size_t len;
	long long ival;
};

/* Called with each problem of a row: email as read (may be NULL), and
 * what is wrong; the row is skipped when reg_row_participant fails. */
typedef void (*reg_warn_fn)(void *arg, const char *email, const char *what);

/* The row as a participant (*p, owned by the caller: reg_participant_clear)
 * or false. Addresses and statuses are trimmed; a name that is not UTF-8
 * is read as Windows-1252 when that decodes, else dropped (mail goes to
 * the address alone), with a warning; times take YYYY-MM-DD, YYYY-MM-DD
 * HH:MM[:SS], RFC 3339 (the programme zone when no offset is given) or,
 * from SQLite, an integer of Unix time. */
bool reg_row_participant(const struct reg_field f[PC_N], const char *deflang, reg_warn_fn warn,
			 void *arg, struct participant *p);

/* The field's text as a new string with the spaces around it removed;
 * NULL for NULL; "" for text with an embedded NUL. */
char *reg_row_text(const struct reg_field *f);
/* The address in a cell as people paste it (caller frees; NULL for NULL,
 * "" for text with an embedded NUL): white space around it trimmed,
 * Unicode's too (a no-break space copied from Outlook, a zero-width
 * space), and of "Display Name <address>" the address. A cell that is
 * not one mailbox (two addresses, text after the '>') comes back as it
 * is, never a valid address, with *problem (if problem is not NULL; a
 * static string, else NULL) saying so. Not checked: reg_valid_email says
 * whether it is one. */
char *reg_row_address(const struct reg_field *f, const char **problem);
/* A short printable form of a value for messages (caller frees). */
char *reg_row_show(const char *s);
/* Valid UTF-8, control characters allowed (they are cleaned where used). */
bool reg_row_utf8(const char *s);
/* Windows-1252 (what Excel writes in Sweden) to UTF-8 (caller frees), its
 * length in *out_len (may be NULL; the text may hold a NUL of s's); NULL
 * if s holds a byte that is not a character there. */
char *reg_row_from_1252(const char *s, size_t len, size_t *out_len);
/* A short tag [a-z]{2,3}; "en-GB" is taken as "en"; NULL if s is none. */
char *reg_row_language_tag(const char *s);
/* Optional text fields: invalid UTF-8 is dropped with a warning. */
char *reg_row_optional(char *v, const char *what, reg_warn_fn warn, void *arg, const char *email);

/* Lists the address of an unusable participant row in reg->unreadable,
 * or, when email is no address, where the row is (`where`, "line 7") in
 * reg->unaddressed, as reg_note_unaddressed; reg_unreadable_done sorts
 * the list once all rows are read (registrations.c). */
void reg_note_unreadable(struct registrations *reg, const char *email, const char *where);
/* Lists "where: why" in reg->unaddressed: a participant row that may be
 * anyone's ("line 7: a row with a NUL byte"). */
void reg_note_unaddressed(struct registrations *reg, const char *where, const char *why);
void reg_unreadable_done(struct registrations *reg);

#endif
