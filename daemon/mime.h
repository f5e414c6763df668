/* mime.h: the pieces of a 7-bit RFC 5322 message: cleaned and encoded
 * headers (RFC 2047 encoded words, RFC 2231 file names), quoted-printable
 * and base64 bodies, and a small tree of MIME parts written with CRLF line
 * ends, no line over 998 octets (INTEROP.md M6, M11, M13). */
#ifndef KALLAD_MIME_H
#define KALLAD_MIME_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Flags for mime_sanitize(). */
enum {
	MIME_KEEP_NEWLINES = 1, /* keep line breaks (as LF); else they become spaces */
	MIME_NAME = 2,          /* a person's name: also drop '"' and '\\', squeeze spaces */
};

/* A copy of s (NULL reads as "") safe to put in a header or calendar
 * value: bytes that are not valid UTF-8 become '?', CR LF and CR become
 * LF or a space, other control characters are dropped (TAB becomes a
 * space). The caller frees it. */
char *mime_sanitize(const char *s, unsigned flags);

/* Appends "Name: value" CRLF, value cleaned and, when it holds non-ASCII
 * or very long words, written as Q encoded words (at most 75 characters
 * each, never splitting a UTF-8 sequence); folded to 76 columns. */
void mime_header_text(struct strbuf *sb, const char *name, const char *value);
/* Appends "Name: display <addr>" CRLF: display cleaned as a name, quoted
 * or encoded as RFC 5322 needs; only "addr" when display is empty. */
void mime_header_mailbox(struct strbuf *sb, const char *name, const char *display,
			 const char *addr);
/* Appends "Date: Thu, 20 Feb 2020 10:00:00 +0100" CRLF in the programme zone. */
void mime_header_date(struct strbuf *sb, time_t t);

/* An address cleaned for <...> or mailto: printable ASCII without
 * spaces or delimiters. The caller frees it. */
char *mime_clean_addr(const char *addr);
/* Splits "Display Name <addr>" (or a bare "addr") into new strings the
 * caller frees; *display is "" when there is none. False if no address. */
bool mime_split_address(const char *from, char **display, char **addr);

/* Quoted-printable (RFC 2045) of text with LF or CRLF line ends: CRLF hard
 * breaks, lines of at most 76 octets, a leading '.' or 'F' encoded. */
void mime_qp(struct strbuf *sb, const char *data, size_t n);
/* Base64 in lines of 76 characters joined by CRLF (no CRLF after the last). */
void mime_base64(struct strbuf *sb, const char *data, size_t n);

/* The media type for a file name by its extension (pdf, docx, xlsx, pptx,
 * txt, csv, png, jpg, ...); application/octet-stream otherwise, an .ics
 * file too: never a bare text/calendar (INTEROP M10) nor one clients take
 * for an invitation's (M1, M5). */
const char *mime_type_for_name(const char *filename);
/* The parameters naming an attachment, for Content-Disposition, e.g.
 * "attachment; filename=\"x.pdf\"" or, for a non-ASCII name, an ASCII
 * fallback plus RFC 2231 filename*0*=UTF-8''... pieces. Caller frees. */
char *mime_disposition(const char *filename);
/* The Content-Type parameter naming an attachment: name="x.pdf", or for a
 * non-ASCII name RFC 2047 B encoded words inside the quotes (folded, one
 * word a line), which mutt, MHonArc and others read where they ignore
 * RFC 2231. Caller frees. */
char *mime_name_param(const char *filename);
/* The ASCII stand-in for a file name (non-ASCII letters as '_'). Caller frees. */
char *mime_ascii_filename(const char *filename);

/* A tree of MIME parts. Leaves own a copy of their data. */
enum mime_encoding { MIME_QUOTED_PRINTABLE, MIME_BASE64 };
struct mime_part;

/* content_type is the whole value, e.g. "text/plain; charset=UTF-8";
 * disposition NULL for none. */
struct mime_part *mime_leaf(const char *content_type, const char *disposition, const char *data,
			    size_t n, enum mime_encoding enc);
/* A leaf whose body is already encoded with enc, as mime_qp() or
 * mime_base64() write it (no CRLF after the last line): written as it is,
 * so that a body two parts share, or one much of which many messages
 * share, is encoded once. */
struct mime_part *mime_leaf_encoded(const char *content_type, const char *disposition,
				    const char *encoded, size_t n, enum mime_encoding enc);
/* subtype: "mixed", "alternative". */
struct mime_part *mime_multipart(const char *subtype);
/* parent takes ownership of child. */
void mime_add(struct mime_part *parent, struct mime_part *child);
/* Appends the part's Content-* headers, a blank line and its body,
 * ending in CRLF (a single-part body keeps its own last line break; one
 * without gets one). Boundaries derive from seed, so the same seed
 * and parts give the same bytes; they cannot occur in QP or base64 text. */
void mime_write(struct strbuf *sb, const struct mime_part *p, const char *seed);
void mime_free(struct mime_part *p);

#endif
