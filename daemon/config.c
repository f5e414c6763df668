/* config.c: kallad.conf and its drop-ins (SPEC §1.1).
 *
 * libinih does the INI syntax. Debian's build calls the handler without a
 * line number and never for a bad line, so each file is fed to inih
 * through a reader over the file's bytes that counts lines, and a scan of
 * the same bytes finds section headers (inih reports none) and lines inih
 * skipped as malformed. Values are checked as they arrive; what spans keys,
 * sections or files (required keys, tls against url, From against the
 * organizer) is checked once every file has been read. */
#include "config_internal.h"

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

/* Per line of the file being read. */
enum { LINE_KEY = 1, LINE_HANDLED = 2, LINE_IGNORED = 4 };

const char *const section_names[] = {
	[SEC_PROGRAMME] = "programme", [SEC_ORGANIZER] = "organizer", [SEC_SMTP] = "smtp",
	[SEC_POLICY] = "policy", [SEC_REGISTRATIONS] = "registrations", [SEC_REPLIES] = "replies",
};

/* ---- errors ------------------------------------------------------------ */

/* Errors of one file are kept with their line and sorted before they go to
 * errs, so that an operator reads them top to bottom. */
void diag_add(struct loader *ld, int line, const char *what, const char *fmt, ...)
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
void late_error(struct loader *ld, struct where w, const char *what, const char *fmt, ...)
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
	/* With the folder of its file, which a relative path is read from. */
	if (k != SEC_SMTP)
		sb_addf(&ld->planned, "%s\x1f%s\x1f%s\x1f%s\x1e", ld->dir, sec, name, value);
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

char *config_dropin_dir(const char *main_file)
{
	const char *slash = strrchr(main_file, '/');

	return slash ? xasprintf("%.*s/kallad.conf.d", (int)(slash - main_file), main_file)
		     : xstrdup("kallad.conf.d");
}

static void load_dropins(struct loader *ld, const char *main_file)
{
	char *dir = config_dropin_dir(main_file);
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

/* The key of keys[] by section and name, for checks across keys. */
static struct where key_where(struct loader *ld, enum section_kind sec, const char *name)
{
	for (size_t i = 0; i < n_keys; i++)
		if (keys[i].section == sec && str_eq(keys[i].name, name))
			return ld->key[i];
	return ld->section[sec];
}

/* A private CA must be there and hold a certificate when kallad starts,
 * not when the first message fails its handshake hours later. */
static void check_ca_file(struct loader *ld, enum section_kind sec, const char *path)
{
	size_t len;
	char *pem;

	if (!path)
		return;
	if (!(pem = read_file(path, &len)))
		late_error(ld, key_where(ld, sec, "ca-file"), "ca-file", "%s: cannot read: %s",
			   path, strerror(errno));
	else if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
		late_error(ld, key_where(ld, sec, "ca-file"), "ca-file",
			   "%s: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path);
	free(pem);
}

/* tls = none, in [smtp] or [replies]: never with the implicit-TLS scheme
 * (smtps://, imaps://), and only for a server on loopback. */
static void check_tls_none(struct loader *ld, enum section_kind sec, const char *url,
			   const char *tls_scheme)
{
	struct where w = key_where(ld, sec, "tls");
	char host[256];

	if (strncmp(url, tls_scheme, strlen(tls_scheme)) == 0)
		late_error(ld, w, "tls", "none contradicts the %s url (implicit TLS)", tls_scheme);
	else if (!url_host(url, host, sizeof(host)) && !host_loopback(host))
		late_error(ld, w, "tls",
			   "none is allowed only for a loopback server (127.0.0.1, ::1, localhost), not %s", host);
}

static void check_smtp(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	check_ca_file(ld, SEC_SMTP, ld->cfg->smtp_ca_file);
	if (cfg->smtp_url && !cfg->smtp_tls_required)
		check_tls_none(ld, SEC_SMTP, cfg->smtp_url, "smtps://");
}

/* The same TLS rules as [smtp]; a user needs a password and back. */
static void check_replies(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	struct where w = ld->section[SEC_REPLIES];

	if (!w.file)
		return;
	if (!cfg->replies_url) {
		late_error(ld, w, "url", "[replies] needs url (imap://host[:port]/MAILBOX)");
		return;
	}
	check_ca_file(ld, SEC_REPLIES, cfg->replies_ca_file);
	if (str_empty(cfg->replies_user) != str_empty(cfg->replies_password))
		late_error(ld, w, str_empty(cfg->replies_user) ? "user" : "password",
			   "[replies] password and user go together");
	if (cfg->replies_interval < 60)
		late_error(ld, key_where(ld, SEC_REPLIES, "interval"), "interval",
			   "must be at least 1m");
	if (!cfg->replies_tls_required)
		check_tls_none(ld, SEC_REPLIES, cfg->replies_url, "imaps://");
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
	cfg->smtp_connections = 1;
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
	sb_init(&ld.planned);
	ld.key = xcalloc(n_keys, sizeof(*ld.key));
	ld.bad = xcalloc(n_keys, sizeof(*ld.bad));
	ld.dir = dir_of(path);
	/* Without the main file every required key would be reported missing:
	 * the one error that matters is that it cannot be read. */
	if (load_file(&ld, path)) {
		load_dropins(&ld, path);
		check_programme(&ld);
		check_smtp(&ld);
		check_replies(&ld);
		check_rules(&ld);
		check_registrations(&ld);
	}
	if (!ld.cfg->material) {
		char *dir = dir_of(path);

		ld.cfg->material = xasprintf("%s/material", dir);
		free(dir);
	}
	hash_hex(ld.planned.buf ? ld.planned.buf : "", ld.planned.len, ld.cfg->plan_digest);
	sb_free(&ld.planned);
	for (size_t i = 0; i < ld.n_files; i++)
		free(ld.files[i]);
	free(ld.files);
	free(ld.diags);
	free(ld.key);
	free(ld.bad);
	free(ld.rseen);
	sections_forget(&ld);
	free(ld.fsec);
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
		&cfg->replies_ca_file,
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
