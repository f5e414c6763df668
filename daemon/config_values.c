/* config_values.c: the values of kallad.conf's plain keys (SPEC §1.1):
 * the syntax of each kind of value, the table of keys with their setters,
 * and what an empty value restores. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ZONEINFO "/usr/share/zoneinfo"

/* ---- value syntax ------------------------------------------------------ */

/* "HH:MM", 00:00-23:59, as minutes after midnight; -1 if malformed. */
int parse_hhmm(const char *s, size_t n)
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
char parse_amount(const char *s, size_t n, long max, long *amount)
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
bool mailbox_valid(const char *s, const char **addr, size_t *alen)
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

bool name_chars(const char *s, const char *extra)
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
const char *url_host(const char *url, char *host, size_t size)
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

bool host_loopback(const char *host)
{
	return str_eq(host, "127.0.0.1") || str_eq(host, "::1") || str_caseeq(host, "localhost");
}

/* ---- [programme], [organizer], [smtp], [policy], [registrations] --------- */


void put_string(char **dst, char *value)
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

/* min-lead: in days it counts calendar days, as `before` does (a day
 * across a daylight-saving change is 23 or 25 hours). */
static void set_min_lead(struct loader *ld, const struct keydef *kd, const char *v)
{
	long n;

	set_lead(ld, kd, v);
	ld->cfg->min_lead_days = parse_amount(v, strlen(v), 525600, &n) == 'd' ? (int)n : 0;
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

const struct keydef keys[] = {
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
	{SEC_SMTP, "connections", set_int, OFF(smtp_connections), "1", NULL, 1, 16},
	{SEC_SMTP, "ca-file", set_path, OFF(smtp_ca_file), NULL, NULL, 0, 0},
	{SEC_POLICY, "quiet-hours", set_quiet, 0, NULL, NULL, 0, 0},
	{SEC_POLICY, "late-registrations", set_choice, OFF(late_send), "skip", "send", 0, 0},
	{SEC_POLICY, "min-lead", set_min_lead, OFF(min_lead), "0m", NULL, 0, 0},
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
	{SEC_REPLIES, "ca-file", set_path, OFF(replies_ca_file), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "material", set_path, OFF(material), NULL, NULL, 0, 0},
	{SEC_PROGRAMME, "sessions-category", set_text, OFF(sessions_category), NULL, NULL, 0, 0},
};

const size_t n_keys = ARRAY_SIZE(keys);


bool text_ok(struct loader *ld, const char *name, const char *value)
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

void plain_key(struct loader *ld, enum section_kind sec, const char *name, const char *value)
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
