/* reg_row.c: one registration row checked and made a participant, the
 * same whether it came from SQLite or a CSV file. */
#include "reg_row.h"

#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const reg_participant_columns[PC_N] = {
	[PC_EMAIL] = "email",	    [PC_NAME] = "name",	    [PC_ORG] = "organisation",
	[PC_ROLE] = "role",	    [PC_LANG] = "language", [PC_STATUS] = "status",
	[PC_REGISTERED] = "registered_at", [PC_UPDATED] = "updated_at",
};

static const char *const status_names[] = {"invited", "registered", "waitlisted", "cancelled"};

const char *reg_status_name(enum pstatus s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "?";
}

bool reg_parse_status(const char *s, enum pstatus *out)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(status_names); i++) {
		if (strcasecmp(s, status_names[i]) == 0) {
			*out = (enum pstatus)i;
			return true;
		}
	}
	return false;
}

/* RFC 5322 atext: what a dot-atom local part may hold. No quoted local
 * parts, and no non-ASCII (kallad does not speak SMTPUTF8). */
static bool is_atext(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool valid_local(const char *s, size_t n)
{
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

static bool valid_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

/* Host names only (IDNs as xn--), at least two labels or "localhost";
 * an all-digit last label would be an IP address, which we do not take. */
static bool valid_domain(const char *s)
{
	size_t n = strlen(s), labels = 0;
	const char *last = s;

	if (n == 0 || n > 253)
		return false;
	if (strcasecmp(s, "localhost") == 0)
		return true;
	for (const char *p = s;; p++) {
		if (*p != '.' && *p != '\0')
			continue;
		if (!valid_label(last, (size_t)(p - last)))
			return false;
		labels++;
		if (*p == '\0')
			break;
		last = p + 1;
	}
	return labels >= 2 && strspn(last, "0123456789") != strlen(last);
}

bool reg_valid_email(const char *email)
{
	const char *at;

	if (!email || strlen(email) > 254)
		return false;
	at = strchr(email, '@');
	if (!at || strchr(at + 1, '@'))
		return false;
	return valid_local(email, (size_t)(at - email)) && valid_domain(at + 1);
}

bool reg_row_utf8(const char *s)
{
	char *copy = xstrdup(s);
	bool ok;

	/* Names are sanitised where they are put into mail: a stray tab or
	 * newline should not cost a politician their invitation. */
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	ok = str_valid_utf8(copy, strlen(copy));
	free(copy);
	return ok;
}

char *reg_row_show(const char *s)
{
	struct strbuf sb;
	bool utf8 = reg_row_utf8(s);
	size_t i;

	sb_init(&sb);
	for (i = 0; s[i] && i < 80; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			sb_addf(&sb, "\\x%02x", c);
		else
			sb_addc(&sb, (char)c);
	}
	if (s[i])
		sb_add(&sb, "...");
	return sb_take(&sb);
}

char *reg_row_from_1252(const char *s, size_t len, size_t *out_len)
{
	iconv_t cd = iconv_open("UTF-8", "WINDOWS-1252");
	size_t cap = len * 3 + 1, left = cap - 1;
	char *out, *op, *ip = (char *)s;
	size_t in_left = len;

	if (cd == (iconv_t)-1)
		return NULL;
	out = xmalloc(cap);
	op = out;
	if (iconv(cd, &ip, &in_left, &op, &left) == (size_t)-1) {
		iconv_close(cd);
		free(out);
		return NULL;
	}
	iconv_close(cd);
	*op = '\0';
	if (out_len)
		*out_len = (size_t)(op - out);
	return out;
}

char *reg_row_text(const struct reg_field *f)
{
	char *copy, *t;

	if (f->type == RF_NULL || !f->text)
		return NULL;
	if (strlen(f->text) != f->len)
		return xstrdup("");
	copy = xstrdup(f->text);
	t = str_trim(copy);
	if (t != copy)
		memmove(copy, t, strlen(t) + 1);
	return copy;
}

/* White space as Unicode has it (and the invisible spaces that paste
 * along with addresses: zero-width, word joiner, BOM), in UTF-8. */
static const char *const unicode_spaces[] = {
	"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe1\xa0\x8e", "\xe2\x80\x80",
	"\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85",
	"\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a",
	"\xe2\x80\x8b", "\xe2\x80\x8c", "\xe2\x80\x8d", "\xe2\x80\xa8", "\xe2\x80\xa9",
	"\xe2\x80\xaf", "\xe2\x81\x9f", "\xe2\x81\xa0", "\xe3\x80\x80", "\xef\xbb\xbf",
};

/* The length of the space that s[0, n) starts (at_end: ends) with, 0 if none. */
static size_t space_at(const char *s, size_t n, bool at_end)
{
	if (n && isspace((unsigned char)s[at_end ? n - 1 : 0]))
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(unicode_spaces); i++) {
		size_t k = strlen(unicode_spaces[i]);

		if (k <= n && memcmp(at_end ? s + n - k : s, unicode_spaces[i], k) == 0)
			return k;
	}
	return 0;
}

/* s[*from, *to) without the spaces around it. */
static void trim_spaces(const char *s, size_t *from, size_t *to)
{
	size_t k;

	while ((k = space_at(s + *from, *to - *from, false)))
		*from += k;
	while ((k = space_at(s + *from, *to - *from, true)))
		*to -= k;
}

static size_t count_char(const char *s, size_t n, char c)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

/* Of "Display Name <address>", as Outlook copies a recipient, narrows
 * s[*from, *to) to the address in the brackets; text without brackets is
 * left as it is. False, leaving it, when the cell is not one mailbox:
 * a second address ("A <a@x.se>, B <b@x.se>", "a@x.se <b@x.se>"), text
 * after the '>', brackets that do not pair. Taking the last <...> of
 * those would give one person's mail to another. */
static bool one_mailbox(const char *s, size_t *from, size_t *to)
{
	const char *b = s + *from, *lt;
	size_t n = *to - *from;

	if (count_char(b, n, '@') > 1)
		return false;
	lt = memchr(b, '<', n);
	if (!lt && !memchr(b, '>', n))
		return true;
	if (!lt || count_char(b, n, '<') != 1 || count_char(b, n, '>') != 1 || b[n - 1] != '>' ||
	    memchr(b, '@', (size_t)(lt - b)))
		return false;
	*from = (size_t)(lt - s) + 1;
	(*to)--;
	trim_spaces(s, from, to);
	return true;
}

char *reg_row_address(const struct reg_field *f, const char **problem)
{
	char *text = reg_row_text(f), *out;
	size_t from = 0, to;

	if (problem)
		*problem = NULL;
	if (!text)
		return NULL;
	to = strlen(text);
	trim_spaces(text, &from, &to);
	if (!one_mailbox(text, &from, &to) && problem)
		*problem = "not one address: write one address, or one Name <address>, per row";
	out = xstrndup(text + from, to - from);
	free(text);
	return out;
}

char *reg_row_language_tag(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	char *tag;

	if (n < 2 || n > 3 || (s[n] != '\0' && s[n] != '-' && s[n] != '_'))
		return NULL;
	tag = xstrndup(s, n);
	for (char *p = tag; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return tag;
}

static void warnf(reg_warn_fn warn, void *arg, const char *email, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void warnf(reg_warn_fn warn, void *arg, const char *email, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	if (!warn)
		return;
	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	warn(arg, email, sb.buf);
	sb_free(&sb);
}

char *reg_row_optional(char *v, const char *what, reg_warn_fn warn, void *arg, const char *email)
{
	if (v && !reg_row_utf8(v)) {
		warnf(warn, arg, email, "%s is not valid UTF-8, ignored", what);
		free(v);
		return NULL;
	}
	if (v && !*v) {
		free(v);
		return NULL;
	}
	return v;
}

static char *participant_language(char *v, const char *deflang, reg_warn_fn warn, void *arg,
				  const char *email)
{
	char *tag = v && *v ? reg_row_language_tag(v) : NULL;

	if (v && *v && !tag) {
		char *s = reg_row_show(v);
		warnf(warn, arg, email, "language \"%s\" is not a language tag such as sv or en, using %s",
		      s, deflang);
		free(s);
	}
	free(v);
	return tag ? tag : xstrdup(deflang);
}

/* A time: NULL is 0 (unknown), an integer Unix time, text a date, a
 * date and time, or RFC 3339, in the programme zone unless it says, or
 * digits alone: a Unix time as text (what a CSV file holds of one). */
static bool field_time(const struct reg_field *f, time_t *out, char **bad)
{
	char *t;
	int y, mo, d, n = 0;
	bool ok;

	*out = 0;
	*bad = NULL;
	if (f->type == RF_NULL)
		return true;
	if (f->type == RF_INT) {
		*out = (time_t)f->ival;
		if (tz_in_range(*out))
			return true;
		*out = 0;
		*bad = xasprintf("%lld", f->ival);
		return false;
	}
	t = reg_row_text(f);
	if (!*t) {
		free(t);
		return f->type == RF_TEXT && f->len == strlen(f->text); /* blanks: unknown */
	}
	/* (A date alone is ten characters: the sscanf only for those.) */
	if (strnlen(t, 11) == 10 && sscanf(t, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
		/* A day that exists: 2019-02-30 is no date. */
		ok = tz_date_exists(y, mo, d);
		*out = ok ? tz_mktime(y, mo, d, 0, 0, 0) : 0;
	} else if (t[strspn(t, "0123456789")] == '\0') {
		long v;

		ok = parse_int(t, 0, LONG_MAX, &v);
		*out = ok ? (time_t)v : 0;
	} else {
		ok = f->type == RF_TEXT && tz_parse_rfc3339(t, out);
	}
	if (ok && !tz_in_range(*out)) {
		*out = 0;
		ok = false;
	}
	if (!ok)
		*bad = reg_row_show(t);
	free(t);
	return ok;
}

static const char *type_name(enum reg_ftype t)
{
	switch (t) {
	case RF_INT: return "an integer";
	case RF_FLOAT: return "a number";
	case RF_BLOB: return "a BLOB";
	default: return "NULL";
	}
}

/* The name: required, and read as Windows-1252 when it is not UTF-8. */
static bool participant_name(const struct reg_field *f, reg_warn_fn warn, void *arg,
			     struct participant *p)
{
	char *fixed;

	p->name = reg_row_text(f);
	if (!p->name || !*p->name) {
		warnf(warn, arg, p->email, "no name");
		return false;
	}
	if (reg_row_utf8(p->name))
		return true;
	fixed = reg_row_from_1252(p->name, strlen(p->name), NULL);
	if (fixed && reg_row_utf8(fixed)) {
		warnf(warn, arg, p->email, "name is not valid UTF-8; read as Windows-1252: \"%s\"",
		      fixed);
		free(p->name);
		p->name = fixed;
		return true;
	}
	free(fixed);
	warnf(warn, arg, p->email,
	      "name is neither UTF-8 nor Windows-1252; mail goes to the address alone");
	free(p->name);
	p->name = xstrdup("");
	return true;
}

static bool participant_required(const struct reg_field f[PC_N], reg_warn_fn warn, void *arg,
				 struct participant *p)
{
	char *status = reg_row_text(&f[PC_STATUS]), *bad = NULL;
	bool ok = false;

	if (f[PC_EMAIL].type != RF_TEXT && f[PC_EMAIL].type != RF_NULL) {
		warnf(warn, arg, p->email, "the e-mail address is stored as %s, not as text",
		      type_name(f[PC_EMAIL].type));
	} else if (!reg_valid_email(p->email)) {
		warnf(warn, arg, p->email, "invalid e-mail address");
	} else if (!participant_name(&f[PC_NAME], warn, arg, p)) {
	} else if (!reg_parse_status(status, &p->status)) {
		bad = status ? reg_row_show(status) : xstrdup("NULL");
		warnf(warn, arg, p->email,
		      "unknown status \"%s\" (want invited, registered, waitlisted or cancelled)", bad);
	} else {
		ok = true;
	}
	free(status);
	free(bad);
	return ok;
}

/* registered_at, updated_at: unknown (0) when they cannot be read, with a
 * warning, not a reason to skip the participant. Nothing kallad sends
 * depends on them: when a delivery became owed is the moment kallad first
 * saw everything it hangs on hold (state_owed_since), not what a sheet says. */
static time_t optional_time(const struct reg_field *f, const char *what, reg_warn_fn warn,
			    void *arg, const char *email)
{
	time_t t;
	char *bad;

	if (!field_time(f, &t, &bad)) {
		warnf(warn, arg, email,
		      "%s \"%s\" is not an ISO 8601 time in the years " TZ_RANGE_TEXT " (YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS], RFC 3339 or a Unix time): read without it",
		      what, bad ? bad : "");
		t = 0;
	}
	free(bad);
	return t;
}

bool reg_row_participant(const struct reg_field f[PC_N], const char *deflang, reg_warn_fn warn,
			 void *arg, struct participant *p)
{
	*p = (struct participant){0};
	p->email = reg_row_text(&f[PC_EMAIL]);
	if (!participant_required(f, warn, arg, p)) {
		reg_participant_clear(p);
		return false;
	}
	p->organisation = reg_row_optional(reg_row_text(&f[PC_ORG]), "organisation", warn, arg,
					   p->email);
	p->role = reg_row_optional(reg_row_text(&f[PC_ROLE]), "role", warn, arg, p->email);
	p->language = participant_language(reg_row_text(&f[PC_LANG]), deflang, warn, arg, p->email);
	p->registered_at = optional_time(&f[PC_REGISTERED], "registered_at", warn, arg, p->email);
	p->updated_at = optional_time(&f[PC_UPDATED], "updated_at", warn, arg, p->email);
	return true;
}
