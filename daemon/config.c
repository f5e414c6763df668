/* config.c: kallad.conf and its drop-ins (SPEC §1.1).
 *
 * libinih does the INI syntax. Debian's build calls the handler without a
 * line number and never for a bad line, so each file is fed to inih
 * through a reader over the file's bytes that counts lines, and a scan of
 * the same bytes finds section headers (inih reports none) and lines inih
 * skipped as malformed. Values are checked as they arrive; what spans keys,
 * sections or files (required keys, tls against url, From against the
 * organizer) is checked once every file has been read. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define LINE_MAX_BYTES 65536 /* room for a long custom SELECT on one line */
#define SECTION_MAX 49       /* inih truncates longer section names */
#define ZONEINFO "/usr/share/zoneinfo"

/* Where a key or section was last given; file points into loader.files. */
struct where {
	const char *file;
	int line;
};

/* Per line of the file being read. */
enum { LINE_KEY = 1, LINE_HANDLED = 2, LINE_IGNORED = 4 };

struct diag {
	int line;
	size_t seq;
	char *text;
};

enum section_kind { SEC_NONE, SEC_PROGRAMME, SEC_ORGANIZER, SEC_SMTP, SEC_POLICY,
		    SEC_REGISTRATIONS, SEC_REPLIES, SEC_RULE, SEC_DEADLINE, SEC_UNKNOWN };

static const char *const section_names[] = {
	[SEC_PROGRAMME] = "programme", [SEC_ORGANIZER] = "organizer", [SEC_SMTP] = "smtp",
	[SEC_POLICY] = "policy", [SEC_REGISTRATIONS] = "registrations", [SEC_REPLIES] = "replies",
};

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
	bool *due_seen;           /* per cfg->deadlines: due given (or given wrong) */
	size_t cap_due_seen;
};

/* ---- errors ------------------------------------------------------------ */

static void diag_add(struct loader *ld, int line, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Errors of one file are kept with their line and sorted before they go to
 * errs, so that an operator reads them top to bottom. */
static void diag_add(struct loader *ld, int line, const char *what, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	sb_addf(&sb, "%s:%d: %s: ", ld->file, line, what);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	ld->diags = xgrow(ld->diags, &ld->cap_diags, ld->n_diags, sizeof(*ld->diags));
	ld->diags[ld->n_diags] = (struct diag){line, ld->n_diags, sb_take(&sb)};
	ld->n_diags++;
}

#define key_error(ld, key, ...) diag_add((ld), (ld)->line, (key), __VA_ARGS__)

static int diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void diags_flush(struct loader *ld)
{
	if (ld->n_diags)
		qsort(ld->diags, ld->n_diags, sizeof(*ld->diags), diag_cmp);
	for (size_t i = 0; i < ld->n_diags; i++) {
		errlist_add(ld->errs, "%s", ld->diags[i].text);
		free(ld->diags[i].text);
	}
	ld->n_errors += ld->n_diags;
	ld->n_diags = 0;
}

/* An error found after every file was read, at a remembered place. */
static void late_error(struct loader *ld, struct where w, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void late_error(struct loader *ld, struct where w, const char *what, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	if (w.line > 0)
		sb_addf(&sb, "%s:%d: %s: ", w.file, w.line, what);
	else
		sb_addf(&sb, "%s: %s: ", w.file, what);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	errlist_add(ld->errs, "%s", sb.buf);
	sb_free(&sb);
	ld->n_errors++;
}

/* ---- value syntax ------------------------------------------------------ */

/* "HH:MM", 00:00-23:59, as minutes after midnight; -1 if malformed. */
static int parse_hhmm(const char *s, size_t n)
{
	int h, m;

	if (n != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

/* Digits then one unit letter, e.g. "14d"; amount in *n, unit returned. */
static char parse_amount(const char *s, size_t n, long max, long *amount)
{
	char digits[16];

	if (n < 2 || n - 1 >= sizeof(digits))
		return 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	memcpy(digits, s, n - 1);
	digits[n - 1] = '\0';
	if (!parse_int(digits, 0, max, amount))
		return 0;
	return s[n - 1];
}

static bool is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c);
}

static bool domain_valid(const char *d, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)d[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
				return false;
			label = 0;
		} else if (isalnum(c) || c == '-') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* A plain dot-atom address, local@domain; quoted local parts and
 * non-ASCII addresses are not accepted: kallad does not speak SMTPUTF8. */
static bool addr_valid(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	size_t local;

	if (!at || n > 254)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
		return false;
	for (size_t i = 0; i < local; i++)
		if (!(is_atext((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] != '.')))
			return false;
	return domain_valid(at + 1, n - local - 1);
}

/* "addr" or "Display Name <addr>"; the address part goes to addr and alen. */
static bool mailbox_valid(const char *s, const char **addr, size_t *alen)
{
	size_t n = strlen(s);
	const char *lt;

	*addr = s;
	*alen = n;
	if (n == 0 || s[n - 1] != '>')
		return addr_valid(s, n);
	lt = strrchr(s, '<');
	if (!lt || lt == s || memchr(s, '>', (size_t)(lt - s)) || memchr(s, '<', (size_t)(lt - s)))
		return false;
	*addr = lt + 1;
	*alen = n - (size_t)(lt - s) - 2;
	return addr_valid(*addr, *alen);
}

static bool name_chars(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || strchr(extra, *s)))
			return false;
	return true;
}

/* "sv", "en", "en-GB": what selects templates/<language>/. */
static bool language_valid(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz");

	if (n < 2 || n > 3)
		return false;
	if (!s[n])
		return true;
	if (s[n] != '-')
		return false;
	s += n + 1;
	n = strlen(s);
	return n >= 2 && n <= 8 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == n;
}

/* The zone file itself, not a directory such as "Europe": the same
 * database tz_set() installs from, without touching TZ here. */
static bool zone_exists(const char *zone)
{
	char magic[4];
	bool ok = false;
	char *path;
	FILE *f;

	if (zone[0] == '/' || strstr(zone, "..") ||
	    strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") != strlen(zone))
		return false;
	path = xasprintf("%s/%s", ZONEINFO, zone);
	f = fopen(path, "rb");
	if (f) {
		struct stat st;

		ok = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
		     fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
		fclose(f);
	}
	free(path);
	return ok;
}

/* The host of an smtp[s]:// or imap[s]:// URL into host[]; an error text or NULL. */
static const char *url_host(const char *url, char *host, size_t size)
{
	const char *p = strstr(url, "://") + 3, *h = p, *hend, *port = NULL;
	size_t n = strcspn(p, "/?#");
	const char *end = p + n;

	if (memchr(p, '@', n))
		return "must not carry a user or password: use user = and password =";
	if (*p == '[') {
		hend = memchr(p, ']', n);
		if (!hend)
			return "has an unterminated [IPv6] host";
		h = p + 1;
		if (hend + 1 < end && hend[1] != ':')
			return "has text after the [IPv6] host";
		port = hend + 1 < end ? hend + 2 : NULL;
	} else {
		hend = memchr(p, ':', n);
		port = hend ? hend + 1 : NULL;
		hend = hend ? hend : end;
	}
	if (hend == h || (size_t)(hend - h) >= size)
		return "has no host";
	if (port) {
		char digits[8];
		long v;

		if (end - port < 1 || (size_t)(end - port) >= sizeof(digits))
			return "has a bad port (1-65535)";
		memcpy(digits, port, (size_t)(end - port));
		digits[end - port] = '\0';
		if (strspn(digits, "0123456789") != strlen(digits) || !parse_int(digits, 1, 65535, &v))
			return "has a bad port (1-65535)";
	}
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	return NULL;
}

static bool host_loopback(const char *host)
{
	return str_eq(host, "127.0.0.1") || str_eq(host, "::1") || str_caseeq(host, "localhost");
}

/* ---- [programme], [organizer], [smtp], [policy], [registrations] --------- */

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

static void put_string(char **dst, char *value)
{
	free(*dst);
	*dst = value;
}

static void set_text(struct loader *ld, const struct keydef *kd, const char *v)
{
	put_string(FIELD(ld, kd, char *), xstrdup(v));
}

/* Relative to the directory of the file that names it, so a drop-in can
 * sit beside its own files. */
static char *resolve(struct loader *ld, const char *v)
{
	return v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", ld->dir, v);
}

static void set_path(struct loader *ld, const struct keydef *kd, const char *v)
{
	put_string(FIELD(ld, kd, char *), resolve(ld, v));
}

static void set_password(struct loader *ld, const struct keydef *kd, const char *v)
{
	put_string(FIELD(ld, kd, char *), strchr(v, '/') ? resolve(ld, v) : xstrdup(v));
}

static void set_address(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!addr_valid(v, strlen(v))) {
		key_error(ld, kd->name, "\"%s\" is not an e-mail address (local@domain)", v);
		return;
	}
	set_text(ld, kd, v);
}

static void set_mailbox(struct loader *ld, const struct keydef *kd, const char *v)
{
	const char *addr;
	size_t alen;

	if (!mailbox_valid(v, &addr, &alen)) {
		key_error(ld, kd->name, "\"%s\" is not an address or \"Name <local@domain>\"", v);
		return;
	}
	set_text(ld, kd, v);
}

static void set_language(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!language_valid(v)) {
		key_error(ld, kd->name, "\"%s\" is not a language tag such as sv or en", v);
		return;
	}
	set_text(ld, kd, v);
}

static void set_zone(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!zone_exists(v)) {
		key_error(ld, kd->name, "\"%s\" is not a time zone in %s", v, ZONEINFO);
		return;
	}
	set_text(ld, kd, v);
}

static void set_url(struct loader *ld, const struct keydef *kd, const char *v)
{
	char host[256];
	const char *why;

	if (strncmp(v, "smtp://", 7) != 0 && strncmp(v, "smtps://", 8) != 0) {
		/* the value is not repeated: it may hold a password */
		key_error(ld, kd->name, "must start with smtp:// or smtps://");
		return;
	}
	why = url_host(v, host, sizeof(host));
	if (why) {
		key_error(ld, kd->name, "%s", why);
		return;
	}
	set_text(ld, kd, v);
}

/* [replies] url: imap://host[:port]/MAILBOX or imaps://...: one mailbox. */
static void set_imap_url(struct loader *ld, const struct keydef *kd, const char *v)
{
	char host[256];
	const char *why, *path;

	if (strncmp(v, "imap://", 7) != 0 && strncmp(v, "imaps://", 8) != 0) {
		key_error(ld, kd->name, "must start with imap:// or imaps://");
		return;
	}
	if ((why = url_host(v, host, sizeof(host)))) {
		key_error(ld, kd->name, "%s", why);
		return;
	}
	path = strstr(v, "://") + 3;
	path += strcspn(path, "/?#");
	if (*path != '/' || !path[1] || strpbrk(path + 1, "/;?#")) {
		key_error(ld, kd->name, "must name one mailbox: imap://host[:port]/MAILBOX");
		return;
	}
	set_text(ld, kd, v);
}

static void set_tls(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!str_eq(v, "required") && !str_eq(v, "none")) {
		key_error(ld, kd->name, "must be required or none, not \"%s\"", v);
		return;
	}
	*FIELD(ld, kd, bool) = str_eq(v, "required");
}

static void set_int(struct loader *ld, const struct keydef *kd, const char *v)
{
	long n;

	if (!parse_int(v, kd->min, kd->max, &n)) {
		key_error(ld, kd->name, "\"%s\" is not a whole number from %ld to %ld", v, kd->min, kd->max);
		return;
	}
	*FIELD(ld, kd, int) = (int)n;
}

static void set_quiet(struct loader *ld, const struct keydef *kd, const char *v)
{
	const char *dash = strchr(v, '-');
	int start = -1, end = -1;

	if (dash) {
		char *copy = xstrndup(v, (size_t)(dash - v));
		char *a = str_trim(copy);
		const char *b = dash + 1 + strspn(dash + 1, " \t");

		start = parse_hhmm(a, strlen(a));
		end = parse_hhmm(b, strlen(b));
		free(copy);
	}
	if (start < 0 || end < 0) {
		key_error(ld, kd->name, "\"%s\" is not HH:MM-HH:MM (00:00-23:59)", v);
		return;
	}
	if (start == end) {
		key_error(ld, kd->name, "\"%s\" starts and ends at the same time", v);
		return;
	}
	ld->cfg->quiet_start = start;
	ld->cfg->quiet_end = end;
}

/* Two words: dflt means false, alt means true. */
static void set_choice(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!str_eq(v, kd->dflt) && !str_eq(v, kd->alt)) {
		key_error(ld, kd->name, "must be %s or %s, not \"%s\"", kd->dflt, kd->alt, v);
		return;
	}
	*FIELD(ld, kd, bool) = str_eq(v, kd->alt);
}

/* "N%" of the participants kallad invited, or "N" participants. */
static void set_share(struct loader *ld, const struct keydef *kd, const char *v)
{
	size_t n = strlen(v);
	bool percent = n > 0 && v[n - 1] == '%';
	char *num = xstrndup(v, percent ? n - 1 : n);
	long value;

	if (!parse_int(str_trim(num), 0, percent ? 100 : 10000000, &value))
		key_error(ld, kd->name, "\"%s\" is neither a number of participants nor a "
			  "percentage from 0%% to 100%%", v);
	else {
		ld->cfg->max_removed_participants = (int)value;
		ld->cfg->max_removed_percent = percent;
	}
	free(num);
}

static void set_lead(struct loader *ld, const struct keydef *kd, const char *v)
{
	long n;
	char unit = parse_amount(v, strlen(v), 525600, &n);
	long secs = unit == 'm' ? n * 60 : unit == 'h' ? n * 3600 : unit == 'd' ? n * 86400 : -1;

	if (secs < 0 || secs > 366L * 86400) {
		key_error(ld, kd->name, "\"%s\" is not a duration such as 30m, 6h or 2d (at most 366d)", v);
		return;
	}
	*FIELD(ld, kd, int) = (int)secs;
}

static bool starts_word(const char *s, const char *word)
{
	size_t n = strlen(word);

	return strncasecmp(s, word, n) == 0 && isspace((unsigned char)s[n]);
}

static void set_select(struct loader *ld, const struct keydef *kd, const char *v)
{
	if (!starts_word(v, "select") && !starts_word(v, "with")) {
		key_error(ld, kd->name, "must be a SELECT statement");
		return;
	}
	set_text(ld, kd, v);
}

/* absences, attachments: a SELECT over the database, or a CSV file. */
static void set_select_or_csv(struct loader *ld, const struct keydef *kd, const char *v)
{
	char **csv = str_eq(kd->name, "absences") ? &ld->cfg->csv_absences
						  : &ld->cfg->csv_attachments;
	size_t n = strlen(v);

	if (n > 4 && strcasecmp(v + n - 4, ".csv") == 0 && !starts_word(v, "select") &&
	    !starts_word(v, "with")) {
		put_string(csv, resolve(ld, v));
		put_string(FIELD(ld, kd, char *), NULL);
		return;
	}
	if (!starts_word(v, "select") && !starts_word(v, "with")) {
		key_error(ld, kd->name, "must be a SELECT statement or a file ending in .csv");
		return;
	}
	put_string(csv, NULL);
	set_text(ld, kd, v);
}

static const char *const csv_columns[] = {
	"email", "name", "organisation", "role", "language", "status", "registered_at",
	"updated_at", "session_uid", "message", "path",
};

bool config_csv_column(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(csv_columns); i++)
		if (str_caseeq(name, csv_columns[i]))
			return true;
	return false;
}

/* "E-post:email, Namn:name": each item a header, ':', a column kallad reads. */
static void set_columns(struct loader *ld, const struct keydef *kd, const char *v)
{
	char *copy = xstrdup(v), *save = NULL;
	bool ok = true;

	for (char *item = strtok_r(copy, ",", &save); item && ok;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		const char *col = colon ? str_trim(colon + 1) : "";

		if (colon)
			*colon = '\0';
		if (!colon || !*str_trim(item)) {
			key_error(ld, kd->name, "\"%s\" is not HEADER:COLUMN", str_trim(item));
			ok = false;
		} else if (!config_csv_column(col)) {
			key_error(ld, kd->name,
				  "\"%s\" is not a column kallad reads (email, name, organisation, role, "
				  "language, status, registered_at, updated_at, session_uid, message, path)",
				  col);
			ok = false;
		}
	}
	free(copy);
	if (ok)
		set_text(ld, kd, v);
}

#define OFF(f) offsetof(struct config, f)

static const struct keydef keys[] = {
	{SEC_PROGRAMME, "name", set_text, OFF(name), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "calendar", set_path, OFF(calendar), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "registrations", set_path, OFF(registrations), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "state", set_path, OFF(state), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "timezone", set_zone, OFF(timezone), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "language", set_language, OFF(language), "sv", NULL, 0, 0},
	{SEC_PROGRAMME, "templates", set_path, OFF(templates), NULL, NULL, 0, 0},
	{SEC_ORGANIZER, "name", set_text, OFF(organizer_name), NULL, NULL, 0, 0},
	{SEC_ORGANIZER, "email", set_address, OFF(organizer_email), NULL, NULL, 0, 0},
	{SEC_ORGANIZER, "from", set_mailbox, OFF(from), NULL, NULL, 0, 0},
	{SEC_ORGANIZER, "reply-to", set_mailbox, OFF(reply_to), NULL, NULL, 0, 0},
	{SEC_SMTP, "url", set_url, OFF(smtp_url), NULL, NULL, 0, 0},
	{SEC_SMTP, "tls", set_tls, OFF(smtp_tls_required), "required", NULL, 0, 0},
	{SEC_SMTP, "user", set_text, OFF(smtp_user), NULL, NULL, 0, 0},
	{SEC_SMTP, "password", set_password, OFF(smtp_password), NULL, NULL, 0, 0},
	{SEC_SMTP, "max-per-minute", set_int, OFF(max_per_minute), "30", NULL, 0, 100000},
	{SEC_SMTP, "timeout", set_int, OFF(timeout), "60", NULL, 1, 3600},
	{SEC_SMTP, "end-of-data-timeout", set_int, OFF(end_of_data_timeout), "600", NULL, 1, 3600},
	{SEC_SMTP, "idle-timeout", set_int, OFF(idle_timeout), "30", NULL, 1, 3600},
	{SEC_SMTP, "ca-file", set_path, OFF(smtp_ca_file), NULL, NULL, 0, 0},
	{SEC_POLICY, "quiet-hours", set_quiet, 0, NULL, NULL, 0, 0},
	{SEC_POLICY, "late-registrations", set_choice, OFF(late_send), "skip", "send", 0, 0},
	{SEC_POLICY, "min-lead", set_lead, OFF(min_lead), "0m", NULL, 0, 0},
	{SEC_POLICY, "changes", set_choice, OFF(changes_hold), "send", "hold", 0, 0},
	{SEC_POLICY, "description-changes", set_choice, OFF(description_updates), "quiet", "update",
	 0, 0},
	{SEC_POLICY, "max-removed-sessions", set_int, OFF(max_removed_sessions), "1", NULL, 0,
	 100000},
	{SEC_POLICY, "max-removed-participants", set_share, 0, "20%", NULL, 0, 0},
	{SEC_REGISTRATIONS, "participants", set_select, OFF(sql_participants), NULL, NULL, 0, 0},
	{SEC_REGISTRATIONS, "attachments", set_select_or_csv, OFF(sql_attachments), NULL, NULL, 0, 0},
	{SEC_REGISTRATIONS, "absences", set_select_or_csv, OFF(sql_absences), NULL, NULL, 0, 0},
	{SEC_REGISTRATIONS, "columns", set_columns, OFF(csv_columns), NULL, NULL, 0, 0},
	/* Later than the K_ indexes below. */
	{SEC_REPLIES, "url", set_imap_url, OFF(replies_url), NULL, NULL, 0, 0},
	{SEC_REPLIES, "tls", set_tls, OFF(replies_tls_required), "required", NULL, 0, 0},
	{SEC_REPLIES, "user", set_text, OFF(replies_user), NULL, NULL, 0, 0},
	{SEC_REPLIES, "password", set_password, OFF(replies_password), NULL, NULL, 0, 0},
	{SEC_REPLIES, "interval", set_lead, OFF(replies_interval), "5m", NULL, 0, 0},
	{SEC_PROGRAMME, "material", set_path, OFF(material), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "sessions-category", set_text, OFF(sessions_category), NULL, NULL, 0, 0},
};

enum { K_NAME, K_CALENDAR, K_REGISTRATIONS, K_STATE, K_TIMEZONE, K_LANGUAGE, K_TEMPLATES,
       K_ORG_NAME, K_EMAIL, K_FROM, K_REPLY_TO, K_URL, K_TLS };

static bool text_ok(struct loader *ld, const char *name, const char *value)
{
	if (str_valid_utf8(value, strlen(value)))
		return true;
	key_error(ld, name, "value is not valid UTF-8 text");
	return false;
}

/* An empty value restores the default, so a drop-in can undo the main
 * file (`url =` returns to the outbox). */
static void reset_key(struct loader *ld, const struct keydef *kd)
{
	if (kd->dflt)
		kd->set(ld, kd, kd->dflt);
	else if (kd->set == set_quiet)
		ld->cfg->quiet_start = ld->cfg->quiet_end = -1;
	else
		put_string(FIELD(ld, kd, char *), NULL);
	if (kd->set == set_select_or_csv)
		put_string(str_eq(kd->name, "absences") ? &ld->cfg->csv_absences
							 : &ld->cfg->csv_attachments, NULL);
}

static void plain_key(struct loader *ld, enum section_kind sec, const char *name, const char *value)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].section != sec || !str_eq(keys[i].name, name))
			continue;
		size_t n_diags = ld->n_diags;

		if (text_ok(ld, name, value) && *value)
			keys[i].set(ld, &keys[i], value);
		else if (!*value)
			reset_key(ld, &keys[i]);
		ld->key[i] = (struct where){ld->file, ld->line};
		ld->bad[i] = ld->n_diags > n_diags;
		return;
	}
	key_error(ld, name, "unknown key in [%s]", section_names[sec]);
}

/* ---- [rule NAME] ----------------------------------------------------- */

static const char *const audiences[] = {
	[AUD_REGISTERED] = "registered", [AUD_INVITED] = "invited",
	[AUD_WAITLISTED] = "waitlisted", [AUD_ALL] = "all",
};

static const char *const rule_keys[RK_COUNT] = {
	[RK_MESSAGE] = "message", [RK_CATEGORY] = "category", [RK_BEFORE] = "before",
	[RK_AT] = "at", [RK_TO] = "to", [RK_SESSIONS] = "sessions",
};

static struct rule *rule_find(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (str_eq(cfg->rules[i].name, name))
			return &cfg->rules[i];
	return NULL;
}

/* Defining a rule twice (a drop-in overriding it) keeps the first place. */
static void rule_declare(struct loader *ld, const char *name, int line)
{
	struct config *cfg = ld->cfg;
	struct rule *r;

	if (rule_find(cfg, name))
		return;
	cfg->rules = xgrow(cfg->rules, &cfg->cap_rules, cfg->n_rules, sizeof(*cfg->rules));
	ld->rseen = xgrow(ld->rseen, &ld->cap_rseen, cfg->n_rules, sizeof(*ld->rseen));
	r = &cfg->rules[cfg->n_rules++];
	*r = (struct rule){.name = xstrdup(name), .at = -1, .file = xstrdup(ld->file), .line = line};
}

/* "14d, 2d" or "6h": returns false after reporting the bad item. */
static bool parse_before(struct loader *ld, const char *v, struct offset **out, size_t *n)
{
	char *copy = xstrdup(v), *save = NULL, *item;
	bool ok = true;

	*out = NULL;
	*n = 0;
	for (char *p = copy; ok; p = NULL) {
		long amount;
		char unit;

		item = strtok_r(p, ",", &save);
		if (!item)
			break;
		item = str_trim(item);
		unit = parse_amount(item, strlen(item), 87600, &amount);
		if ((unit != 'd' && unit != 'h') || (unit == 'd' && amount > 3650)) {
			key_error(ld, "before", "\"%s\" is not Nd (days, 0-3650) or Nh (hours, 0-87600)", item);
			ok = false;
			break;
		}
		for (size_t i = 0; i < *n && ok; i++)
			if ((*out)[i].days == (unit == 'd') && (*out)[i].amount == amount) {
				key_error(ld, "before", "\"%s\" is given twice", item);
				ok = false;
			}
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = (struct offset){unit == 'd', (int)amount};
	}
	/* strtok_r skips empty items: count commas to catch "14d,,2d" and "14d," */
	if (ok) {
		size_t commas = 0;

		for (const char *c = v; *c; c++)
			commas += *c == ',';
		if (commas + 1 != *n) {
			key_error(ld, "before", "\"%s\" has an empty item", v);
			ok = false;
		}
	}
	free(copy);
	if (!ok) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ok;
}

static bool rule_set(struct loader *ld, struct rule *r, enum rule_key k, const char *v)
{
	size_t i;

	switch (k) {
	case RK_MESSAGE:
		if (!name_chars(v, "-")) {
			key_error(ld, "message", "\"%s\" is not a template name (a-z, 0-9, -)", v);
			return false;
		}
		put_string(&r->message, xstrdup(v));
		r->deadlines = str_eq(v, "deadline-reminder");
		return true;
	case RK_CATEGORY:
		put_string(&r->category, xstrdup(v));
		return true;
	case RK_BEFORE: {
		struct offset *o;
		size_t n;

		if (!parse_before(ld, v, &o, &n))
			return false;
		free(r->offsets);
		r->offsets = o;
		r->n_offsets = n;
		return true;
	}
	case RK_AT:
		if (parse_hhmm(v, strlen(v)) < 0) {
			key_error(ld, "at", "\"%s\" is not HH:MM (00:00-23:59)", v);
			return false;
		}
		r->at = parse_hhmm(v, strlen(v));
		return true;
	case RK_TO: {
		/* An audience, optionally narrowed: "registered, unanswered". */
		size_t n = strcspn(v, ",");
		const char *more = v[n] ? v + n + 1 + strspn(v + n + 1, " \t") : NULL;

		while (n && isspace((unsigned char)v[n - 1]))
			n--;
		for (i = 0; i < ARRAY_SIZE(audiences) &&
			    !(strlen(audiences[i]) == n && strncmp(v, audiences[i], n) == 0); i++)
			;
		if (i == ARRAY_SIZE(audiences) || (more && !str_eq(more, "unanswered"))) {
			key_error(ld, "to", "must be registered, invited, waitlisted or all, optionally "
				  "followed by \", unanswered\", not \"%s\"", v);
			return false;
		}
		r->to = (enum audience)i;
		r->unanswered = more != NULL;
		return true;
	}
	case RK_SESSIONS:
		if (!str_eq(v, "all") && !str_eq(v, "first")) {
			key_error(ld, "sessions", "must be all or first, not \"%s\"", v);
			return false;
		}
		r->first_only = str_eq(v, "first");
		return true;
	default:
		return false;
	}
}

static void rule_reset(struct rule *r, enum rule_key k)
{
	switch (k) {
	case RK_MESSAGE: put_string(&r->message, NULL); r->deadlines = false; break;
	case RK_CATEGORY: put_string(&r->category, NULL); break;
	case RK_BEFORE: free(r->offsets); r->offsets = NULL; r->n_offsets = 0; break;
	case RK_AT: r->at = -1; break;
	case RK_TO: r->to = AUD_REGISTERED; r->unanswered = false; break;
	case RK_SESSIONS: r->first_only = false; break;
	default: break;
	}
}

static void rule_key(struct loader *ld, const char *rule, const char *name, const char *value)
{
	struct rule *r = rule_find(ld->cfg, rule);
	struct rule_seen *seen;
	size_t k;

	if (!r) /* its header was rejected */
		return;
	seen = &ld->rseen[r - ld->cfg->rules];
	for (k = 0; k < RK_COUNT && !str_eq(rule_keys[k], name); k++)
		;
	if (k == RK_COUNT) {
		key_error(ld, name, "unknown key in [rule %s]", rule);
		return;
	}
	seen->bad[k] = false;
	if (!text_ok(ld, name, value)) {
		seen->bad[k] = true;
	} else if (!*value) {
		rule_reset(r, (enum rule_key)k);
		seen->key[k] = (struct where){NULL, 0};
	} else if (rule_set(ld, r, (enum rule_key)k, value)) {
		seen->key[k] = (struct where){ld->file, ld->line};
	} else {
		seen->bad[k] = true;
	}
}

/* ---- [deadline NAME] ------------------------------------------------- */

static struct cfg_deadline *deadline_find(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_deadlines; i++)
		if (str_eq(cfg->deadlines[i].name, name))
			return &cfg->deadlines[i];
	return NULL;
}

static void deadline_declare(struct loader *ld, const char *name, int line)
{
	struct config *cfg = ld->cfg;
	size_t cap = cfg->cap_deadlines;

	if (deadline_find(cfg, name))
		return;
	cfg->deadlines = xgrow(cfg->deadlines, &cfg->cap_deadlines, cfg->n_deadlines,
			       sizeof(*cfg->deadlines));
	ld->due_seen = xgrow(ld->due_seen, &cap, cfg->n_deadlines, sizeof(*ld->due_seen));
	ld->due_seen[cfg->n_deadlines] = false;
	cfg->deadlines[cfg->n_deadlines++] = (struct cfg_deadline){
		.name = xstrdup(name), .file = xstrdup(ld->file), .line = line};
}

/* "2020-01-31" (the whole day) or "2020-01-31T12:00" / "2020-01-31 12:00". */
static bool parse_due(const char *v, struct cfg_deadline *d)
{
	int y, mo, day, h = 0, mi = 0, n = 0;
	struct tm tm;

	if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &day, &n) != 3 || n != 10)
		return false;
	if (v[n] != '\0') {
		int k = 0;

		if ((v[n] != 'T' && v[n] != ' ') || sscanf(v + n + 1, "%2d:%2d%n", &h, &mi, &k) != 2 ||
		    k != 5 || v[n + 1 + k] != '\0' || h > 23 || mi > 59 || h < 0 || mi < 0)
			return false;
	}
	/* A real date: 2020-02-30 does not come back as itself. */
	tm = (struct tm){.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = day, .tm_hour = 12};
	if (mo < 1 || mo > 12 || day < 1 || timegm(&tm) == (time_t)-1 || tm.tm_mday != day ||
	    tm.tm_mon != mo - 1)
		return false;
	d->year = y;
	d->month = mo;
	d->day = day;
	d->hour = h;
	d->minute = mi;
	d->date_only = v[n] == '\0';
	return true;
}

static void deadline_key(struct loader *ld, const char *dname, const char *name, const char *value)
{
	struct cfg_deadline *d = deadline_find(ld->cfg, dname);

	if (!d) /* its header was rejected */
		return;
	if (!text_ok(ld, name, value))
		return;
	if (str_eq(name, "due")) {
		ld->due_seen[d - ld->cfg->deadlines] = true;
		if (!parse_due(value, d))
			key_error(ld, name, "\"%s\" is not YYYY-MM-DD or YYYY-MM-DDTHH:MM", value);
	} else if (str_eq(name, "title")) {
		put_string(&d->title, *value ? xstrdup(value) : NULL);
	} else if (str_eq(name, "category")) {
		put_string(&d->category, *value ? xstrdup(value) : NULL);
	} else {
		key_error(ld, name, "unknown key in [deadline %s] (due, title, category)", dname);
	}
}

/* ---- sections ------------------------------------------------------------ */

/* "[rule NAME]" gives the rule's name in *rule. */
static enum section_kind section_kind(const char *s, const char **rule)
{
	*rule = NULL;
	for (int k = SEC_PROGRAMME; k < SEC_RULE; k++)
		if (str_eq(s, section_names[k]))
			return (enum section_kind)k;
	if (strncmp(s, "rule", 4) == 0 && (s[4] == '\0' || isspace((unsigned char)s[4]))) {
		*rule = s + 4 + strspn(s + 4, " \t");
		return SEC_RULE;
	}
	if (strncmp(s, "deadline", 8) == 0 && (s[8] == '\0' || isspace((unsigned char)s[8]))) {
		*rule = s + 8 + strspn(s + 8, " \t");
		return SEC_DEADLINE;
	}
	return SEC_UNKNOWN;
}

/* One file names a section once: inih would merge a second [rule NAME]
 * into the first, key by key, and nobody would notice that the first's
 * offsets were lost. A drop-in overriding a section is another file. */
static bool section_once(struct loader *ld, int line, const char *label, const char *name,
			 bool rule)
{
	char *key = rule ? xasprintf("rule %s", name) : xstrdup(name);

	for (size_t i = 0; i < ld->n_fsec; i++) {
		if (str_eq(ld->fsec[i].name, key)) {
			diag_add(ld, line, label, "given twice in this file (lines %d and %d); "
				 "give each section once, or override it in a drop-in",
				 ld->fsec[i].line, line);
			free(key);
			return false;
		}
	}
	ld->fsec = xgrow(ld->fsec, &ld->cap_fsec, ld->n_fsec, sizeof(*ld->fsec));
	ld->fsec[ld->n_fsec++] = (struct file_section){key, line};
	return true;
}

static void sections_forget(struct loader *ld)
{
	for (size_t i = 0; i < ld->n_fsec; i++)
		free(ld->fsec[i].name);
	ld->n_fsec = 0;
}

/* A header line "[...]": checked here because inih only reports keys. Returns
 * false when the keys under it are to be ignored. */
static bool section_header(struct loader *ld, int line, char *raw, const char *rest)
{
	size_t raw_len = strlen(raw);
	const char *name = str_trim(raw);
	const char *rule;
	enum section_kind k;
	char label[SECTION_MAX + 3];

	snprintf(label, sizeof(label), "[%.*s]", SECTION_MAX, name);
	if (*rest && !strchr(";#", *rest))
		diag_add(ld, line, label, "unexpected text after ]");
	if (raw_len > SECTION_MAX) {
		diag_add(ld, line, label, "section name longer than %d characters", SECTION_MAX);
		return false;
	}
	k = section_kind(name, &rule);
	if (k == SEC_UNKNOWN) {
		diag_add(ld, line, label, "unknown section (programme, organizer, smtp, rule NAME, deadline NAME, policy, registrations, replies)");
		return false;
	}
	if (k == SEC_DEADLINE) {
		if (!*rule || !name_chars(rule, "-_.@ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
			diag_add(ld, line, label, "a deadline needs a name of letters, digits, -, _, . and @: [deadline NAME]");
			return false;
		}
		if (!ld->section[k].file)
			ld->section[k] = (struct where){ld->file, line};
		deadline_declare(ld, rule, line);
		return true;
	}
	if (k == SEC_RULE && !*rule) {
		diag_add(ld, line, label, "a rule needs a name: [rule NAME]");
		return false;
	}
	if (k == SEC_RULE && !name_chars(rule, "-_.ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
		diag_add(ld, line, label, "rule name \"%s\" may hold only letters, digits, -, _ and .", rule);
		return false;
	}
	/* Manual sends are recorded under this name. */
	if (k == SEC_RULE && strcmp(rule, "manual") == 0) {
		diag_add(ld, line, label, "rule name \"manual\" is kallad's own, for --send-now");
		return false;
	}
	if (!section_once(ld, line, label, k == SEC_RULE ? rule : section_names[k], k == SEC_RULE))
		return false;
	if (!ld->section[k].file)
		ld->section[k] = (struct where){ld->file, line};
	if (k == SEC_RULE)
		rule_declare(ld, rule, line);
	return true;
}

/* Marks each line: a key line (neither blank, comment nor header), and
 * lines whose keys belong to a rejected section. Mirrors inih's own
 * reading: leading space skipped, ';' and '#' start comments, a header is
 * '[' up to the first ']'. */
static void scan_lines(struct loader *ld)
{
	const char *p = ld->text;
	bool ignored = false;

	if (ld->len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	for (int line = 1; line <= ld->n_lines; line++) {
		const char *eol = strchr(p, '\n');
		char *s = xstrndup(p, eol ? (size_t)(eol - p) : strlen(p));
		char *t = str_trim(s), *close;

		if (*t == '[' && (close = strchr(t, ']'))) {
			*close = '\0';
			ignored = !section_header(ld, line, t + 1, str_trim(close + 1));
		} else if (*t == '[') {
			/* inih would file the keys below under the previous section */
			ld->lines[line] = LINE_KEY;
			ignored = true;
		} else if (*t && !strchr(";#", *t)) {
			ld->lines[line] = LINE_KEY | (ignored ? LINE_IGNORED : 0);
		}
		free(s);
		p = eol ? eol + 1 : p + strlen(p);
	}
}

/* ---- one file ------------------------------------------------------------ */

/* fgets over the file's bytes, counting lines for the handler: inih reads
 * a line, then calls the handler for it, so the count is that line's. */
static char *reader(char *buf, int size, void *arg)
{
	struct loader *ld = arg;
	size_t n = 0;

	if (ld->pos >= ld->len || size < 2)
		return NULL;
	if (ld->at_bol)
		ld->line++;
	while (ld->pos < ld->len && n + 1 < (size_t)size) {
		buf[n] = ld->text[ld->pos++];
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	ld->at_bol = buf[n - 1] == '\n';
	return buf;
}

static int handler(void *arg, const char *section, const char *name, const char *value)
{
	struct loader *ld = arg;
	char sec[SECTION_MAX + 2];
	enum section_kind k;
	const char *rule;

	ld->lines[ld->line] |= LINE_HANDLED;
	if (ld->lines[ld->line] & LINE_IGNORED)
		return 1;
	if (!*section) {
		key_error(ld, name, "outside any section");
		return 1;
	}
	/* inih keeps "key =   # note" as the value "# note"; the comment rule
	 * (# or ; after whitespace) makes that an empty value. */
	if (*value && strchr(";#", *value))
		value = "";
	snprintf(sec, sizeof(sec), "%s", section);
	k = section_kind(str_trim(sec), &rule);
	if (k == SEC_RULE)
		rule_key(ld, rule, name, value);
	else if (k == SEC_DEADLINE)
		deadline_key(ld, rule, name, value);
	else
		plain_key(ld, k, name, value);
	return 1;
}

static bool diag_at(const struct loader *ld, int line)
{
	for (size_t i = 0; i < ld->n_diags; i++)
		if (ld->diags[i].line == line)
			return true;
	return false;
}

/* Lines inih skipped: neither `key = value`, a header nor a comment. Its
 * own first error line is a cross-check on that scan. */
static void report_syntax(struct loader *ld, int first_error)
{
	for (int line = 1; line <= ld->n_lines; line++) {
		if ((ld->lines[line] & (LINE_KEY | LINE_HANDLED)) == LINE_KEY ||
		    (line == first_error && !diag_at(ld, line)))
			diag_add(ld, line, "syntax", "expected `key = value`, `[section]` or a comment");
	}
}

/* Rejects what inih would silently mangle: NUL bytes and over-long lines. */
static bool text_readable(struct loader *ld)
{
	size_t start = 0;

	ld->n_lines = 1;
	for (size_t i = 0; i < ld->len; i++) {
		if (ld->text[i] == '\0') {
			diag_add(ld, ld->n_lines, "file", "contains a NUL byte");
			return false;
		}
		if (ld->text[i] == '\n') {
			if (i - start + 3 > LINE_MAX_BYTES) {
				diag_add(ld, ld->n_lines, "file", "line longer than %d bytes", LINE_MAX_BYTES - 3);
				return false;
			}
			start = i + 1;
			ld->n_lines++;
		}
	}
	if (ld->len - start + 3 > LINE_MAX_BYTES) {
		diag_add(ld, ld->n_lines, "file", "line longer than %d bytes", LINE_MAX_BYTES - 3);
		return false;
	}
	return true;
}

/* inih's run-time settings (a Debian extension); set each time since they
 * are process-wide. */
static void ini_settings(void)
{
	static char comments[] = ";#";

	ini_allow_multiline = false; /* an indented `key = value` stays a key */
	ini_allow_bom = true;
	ini_start_comment_prefixes = comments;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = comments;
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = LINE_MAX_BYTES;
	ini_stop_on_first_error = false;
	ini_allow_no_value = false;
}

static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');
	char *dir = slash ? xstrndup(file, slash == file ? 1 : (size_t)(slash - file)) : xstrdup(".");
	char *real = realpath(dir, NULL);

	if (!real)
		return dir;
	free(dir);
	return real;
}

static const char *remember_file(struct loader *ld, const char *file)
{
	ld->files = xgrow(ld->files, &ld->cap_files, ld->n_files, sizeof(*ld->files));
	return ld->files[ld->n_files++] = xstrdup(file);
}

static bool load_file(struct loader *ld, const char *file)
{
	size_t len;
	char *text = read_file(file, &len);
	int ret;

	ld->file = remember_file(ld, file);
	if (!text) {
		late_error(ld, (struct where){ld->file, 0}, "file", "cannot read: %s", strerror(errno));
		return false;
	}
	ld->text = text;
	ld->len = len;
	ld->pos = 0;
	ld->line = 0;
	ld->at_bol = true;
	if (text_readable(ld)) {
		ld->lines = xcalloc((size_t)ld->n_lines + 2, 1);
		sections_forget(ld);
		scan_lines(ld);
		ini_settings();
		ret = ini_parse_stream(reader, ld, handler, ld);
		report_syntax(ld, ret > 0 ? ret : 0);
		free(ld->lines);
		ld->lines = NULL;
	}
	free(text);
	diags_flush(ld);
	return true;
}

static int dropin_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* Byte order, not the locale's: the same order on every machine. */
static int dropin_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_dropins(struct loader *ld, const char *main_file)
{
	const char *slash = strrchr(main_file, '/');
	char *dir = slash ? xasprintf("%.*s/kallad.conf.d", (int)(slash - main_file), main_file)
			  : xstrdup("kallad.conf.d");
	struct dirent **list;
	int n = scandir(dir, &list, dropin_filter, dropin_cmp);

	if (n < 0 && errno != ENOENT && errno != ENOTDIR)
		late_error(ld, (struct where){remember_file(ld, dir), 0}, "kallad.conf.d", "cannot read: %s",
			   strerror(errno));
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, list[i]->d_name);
		struct stat st;

		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			free(ld->dir);
			ld->dir = dir_of(path);
			load_file(ld, path);
		}
		free(path);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
	free(dir);
}

/* ---- across keys and files ------------------------------------------------ */

/* A required key that was given but rejected is not reported again. */
static void require(struct loader *ld, enum section_kind sec, size_t key, bool present)
{
	struct where w = ld->section[sec].file ? ld->section[sec] : (struct where){ld->files[0], 0};

	if (!present && !ld->bad[key])
		late_error(ld, w, keys[key].name, "[%s] needs %s", section_names[sec], keys[key].name);
}

static const char *domain_of(const char *mailbox)
{
	const char *addr;
	size_t alen;

	if (!mailbox || !mailbox_valid(mailbox, &addr, &alen))
		return NULL;
	return (const char *)memchr(addr, '@', alen) + 1;
}

static bool domain_eq(const char *a, const char *b)
{
	size_t n = strcspn(a, ">");

	return n == strcspn(b, ">") && strncasecmp(a, b, n) == 0;
}

static struct where where_of(struct loader *ld, enum section_kind sec, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].section == sec && str_eq(keys[i].name, name))
			return ld->key[i];
	return (struct where){ld->cfg->path, 0};
}

/* A private CA must be there and hold a certificate when kallad starts,
 * not when the first message fails its handshake hours later. */
static void check_ca_file(struct loader *ld)
{
	const char *path = ld->cfg->smtp_ca_file;
	size_t len;
	char *pem;

	if (!path)
		return;
	if (!(pem = read_file(path, &len)))
		late_error(ld, where_of(ld, SEC_SMTP, "ca-file"), "ca-file", "%s: cannot read: %s",
			   path, strerror(errno));
	else if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
		late_error(ld, where_of(ld, SEC_SMTP, "ca-file"), "ca-file",
			   "%s: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path);
	free(pem);
}

static void check_smtp(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	char host[256];

	check_ca_file(ld);
	if (!cfg->smtp_url || cfg->smtp_tls_required)
		return;
	if (strncmp(cfg->smtp_url, "smtps://", 8) == 0)
		late_error(ld, ld->key[K_TLS], "tls", "none contradicts the smtps:// url (implicit TLS)");
	else if (!url_host(cfg->smtp_url, host, sizeof(host)) && !host_loopback(host))
		late_error(ld, ld->key[K_TLS], "tls",
			   "none is allowed only for a loopback server (127.0.0.1, ::1, localhost), not %s", host);
}

/* The key of keys[] by section and name, for checks across keys. */
static struct where key_where(struct loader *ld, enum section_kind sec, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].section == sec && str_eq(keys[i].name, name))
			return ld->key[i];
	return ld->section[sec];
}

/* The same TLS rules as [smtp]; a user needs a password and back. */
static void check_replies(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	struct where w = ld->section[SEC_REPLIES];
	char host[256];

	if (!w.file)
		return;
	if (!cfg->replies_url) {
		late_error(ld, w, "url", "[replies] needs url (imap://host[:port]/MAILBOX)");
		return;
	}
	if (str_empty(cfg->replies_user) != str_empty(cfg->replies_password))
		late_error(ld, w, str_empty(cfg->replies_user) ? "user" : "password",
			   "[replies] password and user go together");
	if (cfg->replies_interval < 60)
		late_error(ld, key_where(ld, SEC_REPLIES, "interval"), "interval",
			   "must be at least 1m");
	if (cfg->replies_tls_required)
		return;
	if (strncmp(cfg->replies_url, "imaps://", 8) == 0)
		late_error(ld, key_where(ld, SEC_REPLIES, "tls"), "tls",
			   "none contradicts the imaps:// url (implicit TLS)");
	else if (!url_host(cfg->replies_url, host, sizeof(host)) && !host_loopback(host))
		late_error(ld, key_where(ld, SEC_REPLIES, "tls"), "tls",
			   "none is allowed only for a loopback server (127.0.0.1, ::1, localhost), not %s", host);
}

static void check_programme(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	const char *from = domain_of(cfg->from), *org = domain_of(cfg->organizer_email);

	require(ld, SEC_PROGRAMME, K_NAME, !str_empty(cfg->name));
	require(ld, SEC_PROGRAMME, K_CALENDAR, cfg->calendar);
	require(ld, SEC_PROGRAMME, K_REGISTRATIONS, cfg->registrations);
	require(ld, SEC_PROGRAMME, K_STATE, cfg->state);
	require(ld, SEC_PROGRAMME, K_TIMEZONE, cfg->timezone);
	require(ld, SEC_ORGANIZER, K_EMAIL, cfg->organizer_email);
	require(ld, SEC_ORGANIZER, K_FROM, cfg->from);
	/* INTEROP I10: calendar clients distrust an invite whose From is in
	 * another domain than its ORGANIZER. */
	if (from && org && !domain_eq(from, org))
		late_error(ld, ld->key[K_FROM], "from", "must be in the organizer's domain (%.*s)",
			   (int)strcspn(org, ">"), org);
}

static void check_deadlines(struct loader *ld)
{
	for (size_t i = 0; i < ld->cfg->n_deadlines; i++) {
		struct cfg_deadline *d = &ld->cfg->deadlines[i];

		if (!ld->due_seen[i])
			late_error(ld, (struct where){d->file, d->line}, "due",
				   "[deadline %s] needs due", d->name);
	}
}

/* The keys for a CSV file and those for a database do not mix. */
static void check_registrations(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	size_t n = cfg->registrations ? strlen(cfg->registrations) : 0;
	bool csv = n > 4 && strcasecmp(cfg->registrations + n - 4, ".csv") == 0;
	struct where w = ld->section[SEC_REGISTRATIONS];

	if (!w.file)
		return;
	if (csv && (cfg->sql_participants || cfg->sql_absences || cfg->sql_attachments))
		late_error(ld, w, "registrations",
			   "SELECT queries need a SQLite database; with a .csv file, absences and attachments are .csv files too");
	if (!csv && cfg->registrations && (cfg->csv_columns || cfg->csv_absences || cfg->csv_attachments))
		late_error(ld, w, "registrations",
			   "columns and .csv absences or attachments need registrations = FILE.csv");
}

static void check_rules(struct loader *ld)
{
	for (size_t i = 0; i < ld->cfg->n_rules; i++) {
		struct rule *r = &ld->cfg->rules[i];
		struct where w = {r->file, r->line};
		struct rule_seen *seen = &ld->rseen[i];

		if (!r->message && !seen->bad[RK_MESSAGE])
			late_error(ld, w, "message", "[rule %s] needs message", r->name);
		if (!r->n_offsets && !seen->bad[RK_BEFORE])
			late_error(ld, w, "before", "[rule %s] needs before", r->name);
		if (!seen->key[RK_TO].file && !seen->bad[RK_TO])
			late_error(ld, w, "to", "[rule %s] needs to", r->name);
		if (r->first_only && r->deadlines)
			late_error(ld, seen->key[RK_SESSIONS], "sessions",
				   "first applies to session messages, not deadline-reminder");
		/* Replies answer a session's invite; a deadline has none. */
		if (r->unanswered && r->deadlines)
			late_error(ld, seen->key[RK_TO], "to",
				   "unanswered applies to session messages, not deadline-reminder");
	}
}

/* ---- public ------------------------------------------------------------- */

static struct config *config_new(const char *path)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->path = xstrdup(path);
	cfg->language = xstrdup("sv");
	cfg->smtp_tls_required = true;
	cfg->replies_tls_required = true;
	cfg->replies_interval = 300;
	cfg->max_per_minute = 30;
	cfg->timeout = 60;
	cfg->end_of_data_timeout = 600;
	cfg->idle_timeout = 30;
	cfg->quiet_start = cfg->quiet_end = -1;
	cfg->max_removed_sessions = 1;
	cfg->max_removed_participants = 20;
	cfg->max_removed_percent = true;
	return cfg;
}

struct config *config_load(const char *path, struct errlist *errs)
{
	struct loader ld = {.errs = errs};

	ld.cfg = config_new(path);
	ld.key = xcalloc(ARRAY_SIZE(keys), sizeof(*ld.key));
	ld.bad = xcalloc(ARRAY_SIZE(keys), sizeof(*ld.bad));
	ld.dir = dir_of(path);
	/* Without the main file every required key would be reported missing:
	 * the one error that matters is that it cannot be read. */
	if (load_file(&ld, path)) {
		load_dropins(&ld, path);
		check_programme(&ld);
		check_smtp(&ld);
		check_replies(&ld);
		check_rules(&ld);
		check_deadlines(&ld);
		check_registrations(&ld);
	}
	if (!ld.cfg->material) {
		char *dir = dir_of(path);

		ld.cfg->material = xasprintf("%s/material", dir);
		free(dir);
	}
	for (size_t i = 0; i < ld.n_files; i++)
		free(ld.files[i]);
	free(ld.files);
	free(ld.diags);
	free(ld.key);
	free(ld.bad);
	free(ld.rseen);
	sections_forget(&ld);
	free(ld.fsec);
	free(ld.due_seen);
	free(ld.dir);
	if (ld.n_errors) {
		config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;

	char **strings[] = {
		&cfg->path, &cfg->name, &cfg->calendar, &cfg->registrations, &cfg->state,
		&cfg->timezone, &cfg->language, &cfg->templates, &cfg->material, &cfg->organizer_name,
		&cfg->organizer_email, &cfg->from, &cfg->reply_to, &cfg->smtp_url, &cfg->smtp_user,
		&cfg->smtp_password, &cfg->smtp_ca_file, &cfg->sql_participants, &cfg->sql_attachments,
		&cfg->sql_absences, &cfg->sessions_category, &cfg->csv_columns, &cfg->csv_absences,
		&cfg->csv_attachments, &cfg->replies_url, &cfg->replies_user, &cfg->replies_password,
	};
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
		free(*strings[i]);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		struct rule *r = &cfg->rules[i];

		free(r->name);
		free(r->message);
		free(r->category);
		free(r->offsets);
		free(r->file);
	}
	free(cfg->rules);
	for (size_t i = 0; i < cfg->n_deadlines; i++) {
		free(cfg->deadlines[i].name);
		free(cfg->deadlines[i].title);
		free(cfg->deadlines[i].category);
		free(cfg->deadlines[i].file);
	}
	free(cfg->deadlines);
	free(cfg);
}

const char *config_audience_name(enum audience a)
{
	return (unsigned)a < ARRAY_SIZE(audiences) ? audiences[a] : "?";
}
