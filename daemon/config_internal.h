/* config_internal.h: what the readers of kallad.conf share: config.c reads
 * files and sections and checks what spans them, config_values.c checks
 * and stores the values of plain keys, config_rules.c the [rule NAME] and
 * [deadline NAME] sections. Not for use outside them. */
#ifndef KALLAD_CONFIG_INTERNAL_H
#define KALLAD_CONFIG_INTERNAL_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

/* Where a key or section was last given; file points into loader.files. */
struct where {
	const char *file;
	int line;
};

struct diag {
	int line;
	size_t seq;
	char *text;
};

enum section_kind { SEC_NONE, SEC_PROGRAMME, SEC_ORGANIZER, SEC_SMTP, SEC_POLICY,
		    SEC_REGISTRATIONS, SEC_REPLIES, SEC_RULE, SEC_DEADLINE, SEC_UNKNOWN };

extern const char *const section_names[];

enum rule_key { RK_MESSAGE, RK_CATEGORY, RK_BEFORE, RK_AT, RK_TO, RK_SESSIONS, RK_COUNT };

/* What the loader knows about a rule beyond struct rule. */
struct rule_seen {
	struct where key[RK_COUNT]; /* line 0: not set */
	bool bad[RK_COUNT];         /* given, but wrong: already reported */
};

struct keydef;

struct loader {
	struct config *cfg;
	struct errlist *errs;
	struct strbuf planned; /* every key outside [smtp], as read: cfg->plan_digest */
	size_t n_errors;
	char **files;
	size_t n_files, cap_files;
	/* the file being read */
	const char *file;
	char *dir;
	const char *text;
	size_t len, pos;
	int line, n_lines;
	bool at_bol;
	unsigned char *lines;
	struct diag *diags;
	size_t n_diags, cap_diags;
	/* what spans files */
	struct where section[SEC_UNKNOWN];
	struct where *key;        /* per entry of keys[] */
	bool *bad;                /* per entry of keys[]: given, but wrong */
	struct rule_seen *rseen;  /* per cfg->rules */
	size_t cap_rseen;
	/* the sections of the file being read, to refuse one given twice */
	struct file_section {
		char *name;
		int line;
	} *fsec;
	size_t n_fsec, cap_fsec;
};

struct keydef {
	enum section_kind section;
	const char *name;
	void (*set)(struct loader *, const struct keydef *, const char *);
	size_t off; /* into struct config */
	const char *dflt; /* what an empty value restores; NULL: unset */
	const char *alt;  /* set_choice: the word meaning true */
	long min, max;
};

#define FIELD(ld, kd, type) ((type *)((char *)(ld)->cfg + (kd)->off))

extern const struct keydef keys[];
extern const size_t n_keys;

/* Indexes into keys[] of the keys checked across sections. */
enum { K_NAME, K_CALENDAR, K_REGISTRATIONS, K_STATE, K_TIMEZONE, K_LANGUAGE, K_TEMPLATES,
       K_ORG_NAME, K_EMAIL, K_FROM, K_REPLY_TO, K_URL, K_TLS };

/* Errors, kept per file and sorted by line (config.c). */
void diag_add(struct loader *ld, int line, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void late_error(struct loader *ld, struct where w, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define key_error(ld, key, ...) diag_add((ld), (ld)->line, (key), __VA_ARGS__)

/* Value syntax and plain keys (config_values.c). */
int parse_hhmm(const char *s, size_t n);
char parse_amount(const char *s, size_t n, long max, long *amount);
bool mailbox_valid(const char *s, const char **addr, size_t *alen);
bool name_chars(const char *s, const char *extra);
const char *url_host(const char *url, char *host, size_t size);
bool host_loopback(const char *host);
void put_string(char **dst, char *value);
bool text_ok(struct loader *ld, const char *name, const char *value);
void plain_key(struct loader *ld, enum section_kind sec, const char *name, const char *value);

/* [rule NAME] and [deadline NAME] (config_rules.c). */
void rule_declare(struct loader *ld, const char *name, int line);
void deadline_declare(struct loader *ld, const char *name, int line);
void rule_key(struct loader *ld, const char *rule, const char *name, const char *value);
void deadline_key(struct loader *ld, const char *dname, const char *name, const char *value);

#endif
