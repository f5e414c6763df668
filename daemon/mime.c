#include "mime.h"

#include "tz.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_COLS 76 /* RFC 2045/5322 recommend 78; 76 leaves room */
#define EW_OVERHEAD 12   /* "=?UTF-8?Q?" + "?=" */
#define EW_MAX 75        /* RFC 2047 §2 */

static const char hex_digit[] = "0123456789ABCDEF";

/* Length of the valid UTF-8 sequence of two or more bytes at p, else 0.
 * C1 controls (U+0080-U+009F) count as invalid: they never belong in mail. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t len;

	if (p[0] < 0x80)
		return 0;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4;
	else
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
	if (!str_valid_utf8((const char *)p, len))
		return 0;
	if (p[0] == 0xc2 && p[1] < 0xa0)
		return 0;
	return len;
}

static void squeeze_spaces(char *s)
{
	char *w = s;
	bool space = true; /* drops leading spaces */

	for (char *r = s; *r; r++) {
		if (*r == ' ') {
			if (!space)
				*w++ = ' ';
			space = true;
		} else {
			*w++ = *r;
			space = false;
		}
	}
	if (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
}

char *mime_sanitize(const char *s, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	const char brk = (flags & MIME_KEEP_NEWLINES) ? '\n' : ' ';
	struct strbuf sb;

	sb_init(&sb);
	while (*p) {
		size_t n = utf8_seq(p);
		unsigned c;

		if (n) {
			sb_addn(&sb, (const char *)p, n);
			p += n;
			continue;
		}
		c = *p++;
		if (c == '\r' && *p == '\n')
			p++;
		if (c == '\r' || c == '\n')
			c = (unsigned char)brk;
		else if (c == '\t')
			c = ' ';
		else if (c >= 0x80)
			c = '?';
		else if (c < 0x20 || c == 0x7f)
			continue;
		if ((flags & MIME_NAME) && (c == '"' || c == '\\'))
			continue;
		sb_addc(&sb, (char)c);
	}
	if (!(flags & MIME_KEEP_NEWLINES))
		squeeze_spaces(sb.buf);
	return sb_take(&sb);
}

/* --- RFC 2047 encoded words ------------------------------------------ */

/* Characters a Q-encoded word may carry as themselves in any header
 * position, phrases included (RFC 2047 §5 (3)). */
static bool q_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!*+-/", c) != NULL;
}

static void q_encode_char(struct strbuf *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == ' ')
			sb_addc(out, '_');
		else if (q_safe(p[i]))
			sb_addc(out, (char)p[i]);
		else
			sb_addn(out, (char[3]){'=', hex_digit[p[i] >> 4], hex_digit[p[i] & 15]}, 3);
	}
}

static void flush_word(struct strbuf *sb, struct strbuf *word, size_t *col)
{
	sb_add(sb, "=?UTF-8?Q?");
	sb_addn(sb, word->buf, word->len);
	sb_add(sb, "?=");
	*col += word->len + EW_OVERHEAD;
	word->len = 0;
	word->buf[0] = '\0';
}

static void new_line(struct strbuf *sb, size_t *col)
{
	sb_add(sb, "\r\n ");
	*col = 1;
}

static bool word_fits(const struct strbuf *word, size_t more, size_t col)
{
	return word->len + more + EW_OVERHEAD <= EW_MAX &&
	       col + word->len + more + EW_OVERHEAD <= LINE_MAX_COLS;
}

/* Adds one token (a word and the space after it) to the current encoded
 * word, starting a new one, or splitting a token too long for any, by
 * whole characters so that each word decodes on its own. */
static void add_token(struct strbuf *sb, struct strbuf *word, const unsigned char *p, size_t n,
		      size_t *col)
{
	struct strbuf enc;

	sb_init(&enc);
	q_encode_char(&enc, p, n);
	if (!word_fits(word, enc.len, *col) && word->len) {
		flush_word(sb, word, col);
		new_line(sb, col);
	}
	if (word_fits(word, enc.len, *col)) {
		sb_addn(word, enc.buf, enc.len);
	} else {
		for (size_t i = 0; i < n;) {
			size_t k = utf8_seq(p + i);

			k = k ? k : 1;
			enc.len = 0;
			q_encode_char(&enc, p + i, k);
			if (!word_fits(word, enc.len, *col) && word->len) {
				flush_word(sb, word, col);
				new_line(sb, col);
			}
			sb_addn(word, enc.buf, enc.len);
			i += k;
		}
	}
	sb_free(&enc);
}

/* Writes text (clean UTF-8) as Q encoded words, one per folded line.
 * Words break after a space where they can: RFC 2047 decoders drop the
 * folding between encoded words, and the space inside the word survives
 * (Python's address parser, which keeps the fold, shows two spaces). */
static void add_encoded_words(struct strbuf *sb, const char *text, size_t *col)
{
	const unsigned char *p = (const unsigned char *)text;
	struct strbuf word;

	sb_init(&word);
	if (*col + EW_OVERHEAD + 9 > LINE_MAX_COLS)
		new_line(sb, col);
	while (*p) {
		size_t n = strcspn((const char *)p, " ");

		n += strspn((const char *)p + n, " ");
		add_token(sb, &word, p, n, col);
		p += n;
	}
	if (word.len || *text == '\0')
		flush_word(sb, &word, col);
	sb_free(&word);
}

/* Plain text is fine as long as it is ASCII, holds nothing a decoder would
 * take for an encoded word, and every word fits on a folded line. */
static bool needs_encoding(const char *s, size_t max_word)
{
	size_t word = 0;

	if (strstr(s, "=?"))
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80)
			return true;
		word = *p == ' ' ? 0 : word + 1;
		if (word > max_word)
			return true;
	}
	return false;
}

static void add_folded_ascii(struct strbuf *sb, const char *s, size_t *col)
{
	bool first = true;

	while (*s) {
		size_t n = strcspn(s, " ");

		if (!first) {
			if (*col + 1 + n > LINE_MAX_COLS) {
				sb_add(sb, "\r\n ");
				*col = 1;
			} else {
				sb_addc(sb, ' ');
				(*col)++;
			}
		}
		sb_addn(sb, s, n);
		*col += n;
		first = false;
		s += n;
		s += strspn(s, " ");
	}
}

void mime_header_text(struct strbuf *sb, const char *name, const char *value)
{
	char *v = mime_sanitize(value, 0);
	size_t col = strlen(name) + 2;

	sb_add(sb, name);
	sb_add(sb, ": ");
	if (needs_encoding(v, LINE_MAX_COLS - 10))
		add_encoded_words(sb, v, &col);
	else
		add_folded_ascii(sb, v, &col);
	sb_add(sb, "\r\n");
	free(v);
}

/* atext (RFC 5322 §3.2.3) and space: a phrase of these needs no quotes. */
static bool phrase_plain(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(" !#$%&'*+-/=?^_`{|}~", *s)))
			return false;
	return true;
}

char *mime_clean_addr(const char *addr)
{
	struct strbuf sb;

	sb_init(&sb);
	for (const char *p = addr ? addr : ""; *p; p++)
		if (*p > ' ' && *p < 0x7f && !strchr("<>\"\\(),;:[]", *p))
			sb_addc(&sb, *p);
	return sb_take(&sb);
}

void mime_header_mailbox(struct strbuf *sb, const char *name, const char *display,
			 const char *addr)
{
	char *d = mime_sanitize(display, MIME_NAME);
	char *a = mime_clean_addr(addr);
	size_t col = strlen(name) + 2;

	sb_add(sb, name);
	sb_add(sb, ": ");
	if (*d == '\0') {
		sb_add(sb, a);
		sb_add(sb, "\r\n");
		goto out;
	}
	/* Long names are encoded too: encoded words fold, quoted strings do not. */
	if (needs_encoding(d, 40) || strlen(d) > 60) {
		add_encoded_words(sb, d, &col);
	} else if (phrase_plain(d)) {
		sb_add(sb, d);
		col += strlen(d);
	} else {
		sb_addf(sb, "\"%s\"", d);
		col += strlen(d) + 2;
	}
	if (col + 3 + strlen(a) > LINE_MAX_COLS)
		sb_add(sb, "\r\n");
	sb_add(sb, " <");
	sb_add(sb, a);
	sb_add(sb, ">\r\n");
out:
	free(d);
	free(a);
}

void mime_header_date(struct strbuf *sb, time_t t)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	long off;

	tz_local(t, &tm);
	off = tm.tm_gmtoff / 60;
	sb_addf(sb, "Date: %s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld\r\n", days[tm.tm_wday],
		tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

bool mime_split_address(const char *from, char **display, char **addr)
{
	const char *lt = from ? strrchr(from, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;
	char *d, *a;

	if (!from)
		return false;
	if (lt && gt) {
		d = xstrndup(from, (size_t)(lt - from));
		a = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	} else {
		d = xstrdup("");
		a = xstrdup(from);
	}
	*display = mime_sanitize(d, MIME_NAME); /* drops the quotes around it too */
	*addr = mime_clean_addr(a);
	free(d);
	free(a);
	if (!strchr(*addr, '@')) {
		free(*display);
		free(*addr);
		*display = *addr = NULL;
		return false;
	}
	return true;
}

/* --- bodies ------------------------------------------------------------ */

/* What quoted-printable does with each byte (RFC 2045 §6.7): QP_LIT
 * stands for itself (rule 2: 33-126 but '='), QP_WS (space, TAB) stands
 * for itself unless it ends a line (rule 3), QP_LF is a hard line break,
 * QP_CR one when LF follows, and QP_ENC (all else, '=' and 8-bit bytes
 * among them) is written "=XX". */
enum { QP_ENC, QP_LIT, QP_WS, QP_LF, QP_CR }; /* up to QP_WS: no line break */

static const unsigned char qp_class[256] = {
	[33 ... 60] = QP_LIT, /* '=' (61) is encoded */
	[62 ... 126] = QP_LIT,
	[' '] = QP_WS,
	['\t'] = QP_WS,
	['\n'] = QP_LF,
	['\r'] = QP_CR,
};

/* True when byte i of d is the last of its line: the data ends after it,
 * or a line break (LF, or CR LF) follows. */
static bool qp_at_eol(const unsigned char *d, size_t i, size_t n)
{
	return i + 1 == n || d[i + 1] == '\n' || (d[i + 1] == '\r' && i + 2 < n && d[i + 2] == '\n');
}

/* One pass over the data, one table look-up a byte. A line holds at most
 * 76 octets: 75 and a soft break "=", or 76 when its hard break follows.
 * '.' and 'F' opening a line are encoded so that no line reads "." (SMTP
 * end of data) or "From " (mbox). */
void mime_qp(struct strbuf *sb, const char *data, size_t n)
{
	const unsigned char *d = (const unsigned char *)data;
	size_t col = 0;
	char *out;

	/* At worst every byte becomes "=XX" plus a soft break every 25 bytes:
	 * room for that once, then plain stores (a hot path: every body). */
	sb_reserve(sb, n * 3 + (n / 25 + 1) * 3);
	out = sb->buf + sb->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = d[i];
		unsigned k = qp_class[c];
		bool literal;

		/* The common case: inside a line, a printable byte, or a space
		 * or TAB that something other than a line break follows. */
		if (col - 1 < 74 && (k == QP_LIT || (k == QP_WS && i + 1 < n &&
						     qp_class[d[i + 1]] <= QP_WS))) {
			*out++ = (char)c;
			col++;
			continue;
		}
		if (k == QP_LF || (k == QP_CR && i + 1 < n && d[i + 1] == '\n')) {
			i += k == QP_CR;
			*out++ = '\r';
			*out++ = '\n';
			col = 0;
			continue;
		}
		bool eol = qp_at_eol(d, i, n);

		literal = k == QP_LIT || (k == QP_WS && !eol);
		/* A soft break "=" needs the 76th column unless the line ends here. */
		if (col + (literal ? 1 : 3) > (eol ? 76u : 75u)) {
			memcpy(out, "=\r\n", 3);
			out += 3;
			col = 0;
		}
		if (col == 0 && (c == '.' || c == 'F'))
			literal = false;
		if (literal) {
			*out++ = (char)c;
			col++;
		} else {
			out[0] = '=';
			out[1] = hex_digit[c >> 4];
			out[2] = hex_digit[c & 15];
			out += 3;
			col += 3;
		}
	}
	sb->len = (size_t)(out - sb->buf);
	sb->buf[sb->len] = '\0';
}

void mime_base64(struct strbuf *sb, const char *data, size_t n)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *d = (const unsigned char *)data;
	size_t quads = (n + 2) / 3, col = 0;
	char *out;

	/* 4 characters per 3 bytes, CRLF after each 76 but the last line. */
	sb_reserve(sb, quads * 4 + (quads / 19 + 1) * 2);
	out = sb->buf + sb->len;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)d[i + 1] << 8;
		if (left > 2)
			v |= d[i + 2];
		if (col == 76) {
			*out++ = '\r';
			*out++ = '\n';
			col = 0;
		}
		out[0] = tbl[(v >> 18) & 63];
		out[1] = tbl[(v >> 12) & 63];
		out[2] = left > 1 ? tbl[(v >> 6) & 63] : '=';
		out[3] = left > 2 ? tbl[v & 63] : '=';
		out += 4;
		col += 4;
	}
	sb->len = (size_t)(out - sb->buf);
	sb->buf[sb->len] = '\0';
}

/* --- attachments ------------------------------------------------------- */

const char *mime_type_for_name(const char *filename)
{
	static const char *const map[][2] = {
		{"pdf", "application/pdf"},
		{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
		{"doc", "application/msword"},
		{"xls", "application/vnd.ms-excel"},
		{"ppt", "application/vnd.ms-powerpoint"},
		{"odt", "application/vnd.oasis.opendocument.text"},
		{"txt", "text/plain"},
		{"csv", "text/csv"},
		{"png", "image/png"},
		{"jpg", "image/jpeg"},
		{"jpeg", "image/jpeg"},
		{"gif", "image/gif"},
		/* A file, opened by its name: text/calendar without method= is
		 * what INTEROP M10 forbids, with one it is a second invitation
		 * (M5), and application/ics is the invitation's own attachment
		 * (M1), which clients and checkers take it for. */
		{"ics", "application/octet-stream"},
		{"zip", "application/zip"},
	};
	const char *dot = filename ? strrchr(filename, '.') : NULL;

	if (!dot || strchr(dot, '/'))
		return "application/octet-stream";
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (str_caseeq(dot + 1, map[i][0]))
			return map[i][1];
	return "application/octet-stream";
}

char *mime_ascii_filename(const char *filename)
{
	char *clean = mime_sanitize(filename, MIME_NAME);
	const unsigned char *p = (const unsigned char *)clean;
	struct strbuf sb;

	sb_init(&sb);
	while (*p) {
		size_t n = utf8_seq(p);

		if (n) {
			sb_addc(&sb, '_');
			p += n;
			continue;
		}
		/* ';' and '/' would confuse naive parsers and file systems. */
		sb_addc(&sb, strchr(";/", *p) ? '_' : (char)*p);
		p++;
	}
	free(clean);
	if (sb.len > 100) { /* keep the extension: clients pick the viewer by it */
		const char *dot = strrchr(sb.buf, '.');
		size_t ext = dot && strlen(dot) <= 10 ? strlen(dot) : 0;

		memmove(sb.buf + 100 - ext, sb.buf + sb.len - ext, ext + 1);
		sb.len = 100;
	}
	if (sb.len == 0)
		sb_add(&sb, "attachment");
	return sb_take(&sb);
}

/* RFC 2231 §7 attribute-char: what stands unencoded in a parameter value. */
static bool attr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$&+-.^_`|~", c) != NULL;
}

char *mime_disposition(const char *filename)
{
	char *clean = mime_sanitize(filename, MIME_NAME);
	char *ascii = mime_ascii_filename(filename);
	struct strbuf sb, pct;
	size_t start = 0, piece = 0;

	sb_init(&sb);
	sb_add(&sb, "attachment");
	if (str_eq(clean, ascii) || *clean == '\0')
		goto out;
	sb_init(&pct);
	for (const unsigned char *p = (const unsigned char *)clean; *p; p++)
		if (attr_char(*p))
			sb_addc(&pct, (char)*p);
		else
			sb_addf(&pct, "%%%02X", *p);
	/* Pieces of at most 60 characters, never splitting a %XX triple. */
	while (start < pct.len) {
		size_t end = start + 60 < pct.len ? start + 60 : pct.len;

		if (end < pct.len && pct.buf[end - 1] == '%')
			end -= 1;
		else if (end < pct.len && pct.buf[end - 2] == '%')
			end -= 2;
		if (start == 0 && end == pct.len)
			sb_add(&sb, "; filename*=UTF-8''");
		else
			sb_addf(&sb, "; filename*%zu*=%s", piece, piece == 0 ? "UTF-8''" : "");
		sb_addn(&sb, pct.buf + start, end - start);
		piece++;
		start = end;
	}
	sb_free(&pct);
out:
	/* The plain name last: parsers (Python's) take the first they find,
	 * and RFC 6266 readers prefer filename* anyway. */
	sb_addf(&sb, "; filename=\"%s\"", ascii);
	free(clean);
	free(ascii);
	return sb_take(&sb);
}

char *mime_name_param(const char *filename)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *clean = mime_sanitize(filename, MIME_NAME);
	char *ascii = mime_ascii_filename(filename);
	const unsigned char *p = (const unsigned char *)clean;
	struct strbuf sb;

	sb_init(&sb);
	if (str_eq(clean, ascii) || *clean == '\0') {
		sb_addf(&sb, "name=\"%s\"", ascii);
		goto out;
	}
	/* B words of at most 45 octets (60 characters, 72 with the frame),
	 * each ending on a whole UTF-8 character, one per folded line, as
	 * Thunderbird and Gmail write them. */
	sb_add(&sb, "name=\"");
	while (*p) {
		size_t n = 0, k;

		while (p[n] && n + ((k = utf8_seq(p + n)) ? k : 1) <= 45)
			n += k ? k : 1;
		if (sb.buf[sb.len - 1] != '"')
			sb_add(&sb, "\r\n ");
		sb_add(&sb, "=?UTF-8?B?");
		for (size_t i = 0; i < n; i += 3) {
			unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
				     (i + 2 < n ? p[i + 2] : 0);

			sb_addc(&sb, b64[v >> 18 & 63]);
			sb_addc(&sb, b64[v >> 12 & 63]);
			sb_addc(&sb, i + 1 < n ? b64[v >> 6 & 63] : '=');
			sb_addc(&sb, i + 2 < n ? b64[v & 63] : '=');
		}
		sb_add(&sb, "?=");
		p += n;
	}
	sb_addc(&sb, '"');
out:
	free(clean);
	free(ascii);
	return sb_take(&sb);
}

/* --- the part tree ----------------------------------------------------- */

struct mime_part {
	char *content_type, *disposition; /* content_type of a multipart: its subtype */
	char *data;
	size_t n;
	enum mime_encoding enc;
	bool encoded; /* data is the body as written (mime_leaf_encoded) */
	bool multi;
	struct mime_part **kids;
	size_t n_kids, cap_kids;
};

struct mime_part *mime_leaf(const char *content_type, const char *disposition, const char *data,
			    size_t n, enum mime_encoding enc)
{
	struct mime_part *p = xcalloc(1, sizeof(*p));

	p->content_type = xstrdup(content_type);
	p->disposition = xstrdup(disposition);
	p->data = xstrndup(data ? data : "", data ? n : 0);
	p->n = data ? n : 0;
	p->enc = enc;
	return p;
}

struct mime_part *mime_leaf_encoded(const char *content_type, const char *disposition,
				    const char *encoded, size_t n, enum mime_encoding enc)
{
	struct mime_part *p = mime_leaf(content_type, disposition, encoded, n, enc);

	p->encoded = true;
	return p;
}

struct mime_part *mime_multipart(const char *subtype)
{
	struct mime_part *p = xcalloc(1, sizeof(*p));

	p->content_type = xstrdup(subtype);
	p->multi = true;
	return p;
}

void mime_add(struct mime_part *parent, struct mime_part *child)
{
	parent->kids = xgrow(parent->kids, &parent->cap_kids, parent->n_kids, sizeof(*parent->kids));
	parent->kids[parent->n_kids++] = child;
}

void mime_free(struct mime_part *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_kids; i++)
		mime_free(p->kids[i]);
	free(p->kids);
	free(p->content_type);
	free(p->disposition);
	free(p->data);
	free(p);
}

/* "Name: a; b; c" folded between parameters. Parameters are ASCII and
 * short (RFC 2231 pieces), so no line comes near 998 octets. */
static void add_param_header(struct strbuf *sb, const char *name, const char *value)
{
	size_t col = strlen(name) + 2;
	bool first = true;

	sb_add(sb, name);
	sb_add(sb, ": ");
	while (*value) {
		const char *end = strstr(value, "; ");
		size_t n = end ? (size_t)(end - value) : strlen(value);

		if (!first) {
			if (col + 2 + n > LINE_MAX_COLS) {
				sb_add(sb, ";\r\n ");
				col = 1;
			} else {
				sb_add(sb, "; ");
				col += 2;
			}
		}
		sb_addn(sb, value, n);
		col += n;
		/* A value folded ahead of time (an encoded name) goes on from
		 * its last line. */
		for (size_t i = 0; i + 1 < n; i++)
			if (value[i] == '\r' && value[i + 1] == '\n')
				col = n - i - 2;
		first = false;
		value += n;
		if (*value)
			value += 2;
	}
	sb_add(sb, "\r\n");
}

/* "=_" cannot occur in base64 or quoted-printable text ('=' is always
 * followed by hex there), so the boundary is safe by construction. */
static void write_part(struct strbuf *sb, const struct mime_part *p, const char *seed,
		       unsigned *counter)
{
	char *type, *key, hash[33];

	if (!p->multi) {
		add_param_header(sb, "Content-Type", p->content_type);
		sb_add(sb, p->enc == MIME_BASE64 ? "Content-Transfer-Encoding: base64\r\n"
						 : "Content-Transfer-Encoding: quoted-printable\r\n");
		if (p->disposition)
			add_param_header(sb, "Content-Disposition", p->disposition);
		sb_add(sb, "\r\n");
		if (p->encoded)
			sb_addn(sb, p->data, p->n);
		else if (p->enc == MIME_BASE64)
			mime_base64(sb, p->data, p->n);
		else
			mime_qp(sb, p->data, p->n);
		return;
	}
	key = xasprintf("%s/%u", seed ? seed : "", (*counter)++);
	hash_hex(key, strlen(key), hash);
	free(key);
	type = xasprintf("multipart/%s; boundary=\"=_%s\"", p->content_type, hash);
	add_param_header(sb, "Content-Type", type);
	free(type);
	sb_add(sb, "\r\n");
	for (size_t i = 0; i < p->n_kids; i++) {
		sb_add(sb, i ? "\r\n--=_" : "--=_");
		sb_addn(sb, hash, 32);
		sb_add(sb, "\r\n");
		write_part(sb, p->kids[i], seed, counter);
	}
	sb_add(sb, "\r\n--=_");
	sb_addn(sb, hash, 32);
	sb_add(sb, "--");
}

void mime_write(struct strbuf *sb, const struct mime_part *p, const char *seed)
{
	unsigned counter = 0;

	write_part(sb, p, seed, &counter);
	if (sb->len < 2 || strcmp(sb->buf + sb->len - 2, "\r\n") != 0)
		sb_add(sb, "\r\n");
}
