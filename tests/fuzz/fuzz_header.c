/* fuzz_header.c: arbitrary bytes as a Subject and as a display name and
 * address, through the header encoder of daemon/mime.c. A crash, a
 * sanitizer report, a non-ASCII or over-long line, a line that starts a
 * new header (injection), or a Subject that does not decode back to the
 * cleaned input is a bug.
 *
 *   clang -std=gnu17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Idaemon \
 *     daemon/util.c daemon/log.c daemon/tz.c daemon/mime.c tests/fuzz/fuzz_header.c \
 *     -o fuzz_header
 *   ./fuzz_header -max_total_time=20 */
#include "mime.h"
#include "registrations.h"
#include "tz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One header: lines of ASCII, CRLF-terminated, every line after the first
 * a continuation, none longer than max octets. */
static void check_wire(const char *h, size_t max)
{
	size_t col = 0;
	bool first = true;

	for (const char *p = h; *p; p++) {
		if ((unsigned char)*p >= 0x80 || (*p < 0x20 && *p != '\r'))
			abort();
		if (*p == '\r') {
			if (p[1] != '\n')
				abort();
			p++;
			col = 0;
			first = false;
			if (p[1] && p[1] != ' ')
				abort(); /* would start a new header */
			continue;
		}
		if (++col > max)
			abort();
	}
	if (first || strcmp(h + strlen(h) - 2, "\r\n") != 0)
		abort();
}

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes what mime_header_text() wrote, the way RFC 2047 and RFC 5322
 * say: unfold, then decode encoded words, dropping the space between two. */
static char *decode(const char *h)
{
	struct strbuf out;
	const char *p = strchr(h, ':') + 2;
	bool prev_ew = false;

	sb_init(&out);
	while (*p) {
		if (p[0] == '\r' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (strncmp(p, "=?UTF-8?Q?", 10) == 0) {
			if (prev_ew && out.len && out.buf[out.len - 1] == ' ')
				out.buf[--out.len] = '\0';
			for (p += 10; !(p[0] == '?' && p[1] == '='); p++) {
				if (!*p)
					abort();
				if (*p == '_') {
					sb_addc(&out, ' ');
				} else if (*p == '=') {
					if (hex(p[1]) < 0 || hex(p[2]) < 0)
						abort();
					sb_addc(&out, (char)(hex(p[1]) * 16 + hex(p[2])));
					p += 2;
				} else {
					sb_addc(&out, *p);
				}
			}
			p += 2;
			prev_ew = true;
			continue;
		}
		if (*p != ' ')
			prev_ew = false;
		sb_addc(&out, *p++);
	}
	return sb_take(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size);
	char *split = memchr(in, '|', strlen(in));
	const char *addr = "x@example.org";
	struct strbuf sb;
	char *want, *got;

	tz_set("Europe/Stockholm");
	sb_init(&sb);
	mime_header_text(&sb, "Subject", in);
	check_wire(sb.buf, 76);
	want = mime_sanitize(in, 0);
	got = decode(sb.buf);
	if (strcmp(want, got) != 0)
		abort();
	free(want);
	free(got);
	sb.len = 0;
	/* Addresses reach headers only after reg_valid_email() (at most 254
	 * characters, no specials): the fuzzer may vary the name freely, the
	 * address only within what the registrations let through. */
	if (split) {
		*split = '\0';
		if (reg_valid_email(split + 1))
			addr = split + 1;
	}
	mime_header_mailbox(&sb, "To", in, addr);
	check_wire(sb.buf, 998);
	sb_free(&sb);
	free(in);
	return 0;
}
