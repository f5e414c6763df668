/* test_mime.c: header encoding, bodies and MIME trees, read back by
 * Python's own e-mail parser (policy.default), which shares no code with
 * daemon/mime.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mime.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/kallad-mime-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_true(tz_set("Europe/Stockholm"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_true(remove_tree(tmpdir));
	return 0;
}

/* The value of the first "key: value" line of out. */
static char *field(const char *out, const char *key)
{
	char *pat = xasprintf("\n%s: ", key);
	const char *p = strstr(out, pat);
	char *v;

	if (!p) {
		free(pat);
		return NULL;
	}
	p += strlen(pat);
	v = xstrndup(p, strcspn(p, "\n"));
	free(pat);
	return v;
}

static void assert_field(const char *out, const char *key, const char *want)
{
	char *got = field(out, key);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"\n%s", key, got ? got : "(none)", want, out);
	free(got);
}

/* Every line ends in CRLF, is ASCII and at most `max` octets long. */
static void assert_wire(const char *s, size_t max)
{
	size_t col = 0;

	for (const char *p = s; *p; p++) {
		assert_true((unsigned char)*p < 0x80);
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			p++;
			col = 0;
			continue;
		}
		assert_int_not_equal(*p, '\n');
		col++;
		if (col > max)
			fail_msg("line longer than %zu: %s", max, s);
	}
}

/* What Python reads in a message (written as name) holding one header
 * under test plus the fixed ones. */
static char *readback_with(const char *extra, const char *name)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_add(&sb, extra);
	sb_add(&sb, "Message-ID: <x@example.org>\r\nMIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=UTF-8\r\n\r\nbody\r\n");
	free(write_in(tmpdir, name, sb.buf, sb.len));
	sb_free(&sb);
	return readback(tmpdir, name, false);
}

static void check_subject(const char *subject, const char *want)
{
	struct strbuf sb;
	char *out;

	sb_init(&sb);
	mime_header_text(&sb, "Subject", subject);
	assert_wire(sb.buf, 76);
	/* Each encoded word stays within RFC 2047's 75 characters. */
	for (const char *w = strstr(sb.buf, "=?"); w; w = strstr(w + 2, "=?")) {
		const char *end = strstr(w + 10, "?=");

		assert_non_null(end);
		assert_true(end + 2 - w <= 75);
		w = end;
	}
	out = readback_with(sb.buf, "subject.eml");
	assert_field(out, "Subject", want);
	free(out);
	sb_free(&sb);
}

static void subjects_round_trip(void **state)
{
	struct strbuf long_sv;

	(void)state;
	check_subject("Inbjudan: Leda samhällsutveckling, torsdag 20 februari 2020",
		      "Inbjudan: Leda samhällsutveckling, torsdag 20 februari 2020");
	check_subject("Påminnelse: Styrning och risker", "Påminnelse: Styrning och risker");
	check_subject("Plain ASCII subject", "Plain ASCII subject");
	check_subject("Looks like =?UTF-8?Q?x?= an encoded word",
		      "Looks like =?UTF-8?Q?x?= an encoded word");
	check_subject("Tab\tand\r\nnewline", "Tab and newline");
	check_subject("Emoji 📅 och ÅÄÖ åäö – tankstreck", "Emoji 📅 och ÅÄÖ åäö – tankstreck");
	/* 300 characters of two-byte letters with no spaces: many encoded words. */
	sb_init(&long_sv);
	for (int i = 0; i < 100; i++)
		sb_add(&long_sv, "åäö");
	check_subject(long_sv.buf, long_sv.buf);
	sb_free(&long_sv);
	sb_init(&long_sv);
	for (int i = 0; i < 40; i++)
		sb_add(&long_sv, "Dialog och samspel ");
	long_sv.buf[--long_sv.len] = '\0';
	check_subject(long_sv.buf, long_sv.buf);
	sb_free(&long_sv);
}

/* Python's address parser keeps the fold between encoded words as a
 * space (RFC 2047 says drop it), so a name long enough to need two words
 * reads back with one doubled space there: compare it squeezed. */
static void squeeze(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++)
		if (!(*r == ' ' && w > s && w[-1] == ' '))
			*w++ = *r;
	*w = '\0';
}

static void check_mailbox(const char *display, const char *addr, const char *want_name)
{
	struct strbuf sb;
	char *out, *name;

	sb_init(&sb);
	mime_header_mailbox(&sb, "To", display, addr);
	mime_header_mailbox(&sb, "From", "Fördjupningsprogrammet", "program@example.org");
	sb_add(&sb, "Subject: x\r\n");
	assert_wire(sb.buf, 998);
	out = readback_with(sb.buf, "to.eml");
	assert_field(out, "To-Count", "1");
	name = field(out, "To-Name");
	assert_non_null(name);
	if (strlen(want_name) < 40) /* one encoded word: exact */
		assert_string_equal(name, want_name);
	squeeze(name);
	assert_string_equal(name, want_name);
	free(name);
	assert_field(out, "To-Addr", addr);
	assert_field(out, "From-Name", "Fördjupningsprogrammet");
	assert_field(out, "Bcc", "none");
	assert_field(out, "Header-Names", "To,From,Subject,Message-ID,MIME-Version,Content-Type");
	free(out);
	sb_free(&sb);
}

static void names_round_trip(void **state)
{
	struct strbuf big;

	(void)state;
	check_mailbox("Åsa Öberg-Lindström", "asa@example.org", "Åsa Öberg-Lindström");
	check_mailbox("Lindgren, Lena", "lena@example.org", "Lindgren, Lena");
	check_mailbox("Anna \"Ankan\" Svensson", "anna+sthlm@example.org", "Anna Ankan Svensson");
	check_mailbox("O'Brien (Sthlm) <x>", "ob@example.org", "O'Brien (Sthlm) <x>");
	check_mailbox("Back\\slash", "b@example.org", "Backslash");
	check_mailbox("", "noname@example.org", "");
	sb_init(&big);
	for (int i = 0; i < 50; i++)
		sb_add(&big, "Ärlig Åkesson ");
	big.buf[--big.len] = '\0';
	check_mailbox(big.buf, "long@example.org", big.buf);
	sb_free(&big);
}

static void injection_adds_no_header(void **state)
{
	(void)state;
	check_mailbox("Eve\r\nBcc: x@evil.example", "eve@example.org", "Eve Bcc: x@evil.example");
	check_mailbox("Eve\nBcc: x@evil.example\n", "eve@example.org", "Eve Bcc: x@evil.example");
	check_mailbox("Eve\rTo: y@evil.example", "eve@example.org", "Eve To: y@evil.example");
	/* An address with CR/LF (never valid, but cleaned anyway). */
	{
		struct strbuf sb;

		sb_init(&sb);
		mime_header_mailbox(&sb, "To", "Eve", "eve@example.org\r\nBcc: x@evil.example");
		assert_null(strstr(sb.buf, "\r\nBcc"));
		/* One line: the only CRLF ends it. */
		assert_int_equal((size_t)(strstr(sb.buf, "\r\n") - sb.buf) + 2, sb.len);
		sb_free(&sb);
	}
	check_subject("Hej\r\nBcc: x@evil.example", "Hej Bcc: x@evil.example");
}

static void sanitize_cleans(void **state)
{
	char *s;

	(void)state;
	s = mime_sanitize("a\x01" "b\x7f" "c\xff" "d\xc3" "e", 0);
	assert_string_equal(s, "abc?d?e");
	free(s);
	s = mime_sanitize("rad 1\r\nrad 2\rrad 3\n", MIME_KEEP_NEWLINES);
	assert_string_equal(s, "rad 1\nrad 2\nrad 3\n");
	free(s);
	s = mime_sanitize("  \"Anna\"  \\  Åberg \r\n", MIME_NAME);
	assert_string_equal(s, "Anna Åberg");
	free(s);
	s = mime_sanitize(NULL, 0);
	assert_string_equal(s, "");
	free(s);
	/* C1 controls and overlong forms are not letters. */
	s = mime_sanitize("x\xc2\x85y\xc0\xafz", 0);
	assert_string_equal(s, "x??y??z");
	free(s);
}

static void hex_of(struct strbuf *sb, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_addf(sb, "%02x", (unsigned char)data[i]);
}

/* Builds a text/plain message from body with enc; checks the wire and
 * that Python decodes `want` from it. */
static void check_body(const char *body, const char *want, enum mime_encoding enc)
{
	struct mime_part *p = mime_leaf("text/plain; charset=UTF-8", NULL, body, strlen(body), enc);
	struct strbuf sb, hex;
	char *out, *line;

	sb_init(&sb);
	sb_add(&sb, "From: a@example.org\r\nTo: b@example.org\r\nSubject: qp\r\n"
		    "MIME-Version: 1.0\r\n");
	mime_write(&sb, p, "seed");
	assert_wire(sb.buf, 76);
	/* No line is "." alone or starts with "From ". */
	assert_null(strstr(sb.buf, "\r\n.\r\n"));
	assert_null(strstr(sb.buf, "\r\nFrom "));
	free(write_in(tmpdir, "body.eml", sb.buf, sb.len));
	out = readback(tmpdir, "body.eml", true);
	sb_init(&hex);
	sb_add(&hex, "text/plain|-|-|");
	hex_of(&hex, want, strlen(want));
	line = field(out, "Part");
	assert_non_null(line);
	if (strcmp(line, hex.buf) != 0) {
		size_t i = 0;

		while (line[i] == hex.buf[i])
			i++;
		fail_msg("decoded body differs at hex offset %zu: got ...%.40s want ...%.40s", i,
			 line + i, hex.buf + i);
	}
	free(line);
	free(out);
	sb_free(&hex);
	sb_free(&sb);
	mime_free(p);
}

static void quoted_printable(void **state)
{
	struct strbuf in, want;

	(void)state;
	sb_init(&in);
	sb_init(&want);
	sb_add(&in, "Hej!\n");
	for (int i = 0; i < 120; i++)
		sb_add(&in, "å=ä ");
	sb_add(&in, "\n.\nFrom here\ntrailing space \nCRLF line\r\n");
	for (int i = 0; i < 2000; i++) /* one line far over 998 octets */
		sb_addc(&in, (char)('a' + i % 26));
	sb_add(&in, "\n");
	for (const char *p = in.buf; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			sb_add(&want, "\r\n");
		else
			sb_addc(&want, *p);
	}
	check_body(in.buf, want.buf, MIME_QUOTED_PRINTABLE);
	check_body(in.buf, in.buf, MIME_BASE64);
	/* A one-part message's body ends with a line break, its own or added. */
	check_body("no newline at end", "no newline at end\r\n", MIME_QUOTED_PRINTABLE);
	sb_free(&in);
	sb_free(&want);
}

static void base64_vectors(void **state)
{
	static const char *const vec[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"},
	};
	struct strbuf sb;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
		sb_init(&sb);
		mime_base64(&sb, vec[i][0], strlen(vec[i][0]));
		assert_string_equal(sb.buf, vec[i][1]);
		sb_free(&sb);
	}
	sb_init(&sb);
	{
		char data[100];

		memset(data, 0xff, sizeof(data));
		mime_base64(&sb, data, sizeof(data));
	}
	/* 100 bytes: 136 characters, 76 on the first line. */
	assert_int_equal(strcspn(sb.buf, "\r"), 76);
	assert_int_equal(sb.len, 136 + 2);
	sb_free(&sb);
}

/* Quoted-printable as RFC 2045 §6.7 writes it, byte by byte and slowly:
 * the reference the table-driven mime_qp() must match on every input. */
static void qp_reference(struct strbuf *sb, const unsigned char *d, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = d[i];
		bool eol, literal;
		size_t len;

		if (c == '\r' && i + 1 < n && d[i + 1] == '\n')
			continue;
		if (c == '\n') {
			sb_add(sb, "\r\n");
			col = 0;
			continue;
		}
		eol = i + 1 == n || d[i + 1] == '\n' ||
		      (d[i + 1] == '\r' && i + 2 < n && d[i + 2] == '\n');
		literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol);
		len = literal && !(col == 0 && (c == '.' || c == 'F')) ? 1 : 3;
		if (col + len > (eol ? 76u : 75u)) {
			sb_add(sb, "=\r\n");
			col = 0;
		}
		if (literal && !(col == 0 && (c == '.' || c == 'F'))) {
			sb_addc(sb, (char)c);
			col++;
		} else {
			sb_addf(sb, "=%02X", c);
			col += 3;
		}
	}
}

static char *qp_of(const char *data, size_t n)
{
	struct strbuf sb;

	sb_init(&sb);
	mime_qp(&sb, data, n);
	return sb_take(&sb);
}

static void qp_vectors(void **state)
{
	char a[200];
	static const char *const vec[][2] = {
		{"", ""},
		{"abc", "abc"},
		{"a=b", "a=3Db"},
		{"trailing \n", "trailing=20\r\n"},
		{"trailing \r\nnext", "trailing=20\r\nnext"},
		{"tab\t", "tab=09"},
		{"mid space and\ttab x", "mid space and\ttab x"},
		{".\n", "=2E\r\n"},
		{"From here\nFrom", "=46rom here\r\n=46rom"},
		{"x.y\nxFy", "x.y\r\nxFy"},
		{"\xc3\xa5r", "=C3=A5r"},
		{"lone\rcr", "lone=0Dcr"},
		{"end cr\r", "end cr=0D"},
		{"nul\x01\x7f\xff", "nul=01=7F=FF"},
		{"\n\n", "\r\n\r\n"},
		{" ", "=20"},
		{"  \n", " =20\r\n"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
		char *got = qp_of(vec[i][0], strlen(vec[i][0]));

		if (strcmp(got, vec[i][1]) != 0)
			fail_msg("vector %zu: got \"%s\", want \"%s\"", i, got, vec[i][1]);
		free(got);
	}
	/* 76 octets fit on a line its hard break ends (or the data's end)... */
	memset(a, 'a', 76);
	a[76] = '\n';
	char *got = qp_of(a, 77);
	assert_int_equal(strlen(got), 78);
	assert_memory_equal(got, a, 76);
	free(got);
	got = qp_of(a, 76);
	assert_int_equal(strlen(got), 76);
	free(got);
	/* ... but a line going on breaks after 75 and "=". */
	memset(a, 'a', 77);
	got = qp_of(a, 77);
	assert_int_equal(strncmp(got + 75, "=\r\naa", 6), 0);
	assert_int_equal(strlen(got), 75 + 3 + 2);
	free(got);
	/* "=3D" does not fit after 74 octets, even at the end of the data. */
	memset(a, 'a', 74);
	a[74] = '=';
	got = qp_of(a, 75);
	assert_string_equal(got + 74, "=\r\n=3D");
	free(got);
	/* A space where the line must break is not trailing: the "=" follows. */
	memset(a, 'a', 75);
	a[75] = ' ';
	a[76] = 'b';
	got = qp_of(a, 77);
	assert_string_equal(got + 75, "=\r\n b");
	free(got);
	/* A '.' or 'F' opening a line after a soft break is encoded too. */
	a[75] = '.';
	got = qp_of(a, 77);
	assert_string_equal(got + 75, "=\r\n=2Eb");
	free(got);
	a[75] = 'F';
	got = qp_of(a, 77);
	assert_string_equal(got + 75, "=\r\n=46b");
	free(got);
}

/* A small deterministic generator (xorshift), so failures repeat. */
static uint32_t rnd_state = 2463534242u;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Random data heavy in what the rules are about: spaces and tabs before
 * line breaks, CR, '.', 'F', '=', 8-bit bytes, long lines. */
static size_t random_text(unsigned char *buf, size_t max)
{
	static const unsigned char pick[] = {' ', '\t', '\n', '\r', '.', 'F', '=', 'a', 'z', '0',
					     0xc3, 0xa5, 0xff, 0x00, 0x7f, '~', '!'};
	size_t n = rnd() % max;

	for (size_t i = 0; i < n; i++) {
		uint32_t r = rnd();

		buf[i] = r % 4 ? pick[r / 4 % ARRAY_SIZE(pick)] : (unsigned char)(r >> 8);
		if (r % 97 == 0) /* a long run of letters: soft breaks */
			for (size_t k = 0; k < 150 && i + 1 < n; k++)
				buf[++i] = (unsigned char)('a' + k % 26);
	}
	return n;
}

/* Every line ends in CRLF and holds at most 76 octets, printable ASCII,
 * no trailing space or TAB, '=' only as a soft break or before two
 * upper-case hex digits, no line "." or starting "From ". */
static void assert_qp_wire(const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		size_t len;
		const char *line = s + start;

		if (i < n && s[i] != '\r')
			continue;
		len = i - start;
		if (i < n)
			assert_true(i + 1 < n && s[i + 1] == '\n');
		assert_true(len <= 76);
		if (len > 0)
			assert_true(line[len - 1] != ' ' && line[len - 1] != '\t');
		assert_false(len == 1 && line[0] == '.');
		assert_false(len >= 5 && memcmp(line, "From ", 5) == 0);
		for (size_t k = 0; k < len; k++) {
			unsigned char c = (unsigned char)line[k];

			assert_true((c >= 33 && c <= 126) || c == ' ' || c == '\t');
			if (c == '=' && k + 1 < len) {
				assert_true(k + 2 < len);
				assert_non_null(strchr("0123456789ABCDEF", line[k + 1]));
				assert_non_null(strchr("0123456789ABCDEF", line[k + 2]));
				k += 2;
			}
		}
		start = i + 2;
		i++;
	}
}

static void qp_matches_reference(void **state)
{
	unsigned char buf[2000];

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t n = random_text(buf, sizeof(buf));
		struct strbuf want;
		char *got = qp_of((const char *)buf, n);

		sb_init(&want);
		qp_reference(&want, buf, n);
		if (strcmp(got, want.buf) != 0)
			fail_msg("round %d: mime_qp differs from the reference", round);
		assert_qp_wire(got, strlen(got));
		sb_free(&want);
		free(got);
	}
}

/* The round trips through Python: each case i an input tmpdir/ENC/i.in
 * beside its encoding tmpdir/ENC/i.ENC, for a script that decodes each and
 * says how many it checked and how many came out wrong. */
static void make_case_dir(const char *enc)
{
	char *dir = xasprintf("%s/%s", tmpdir, enc);

	assert_int_equal(mkdir(dir, 0700), 0);
	free(dir);
}

static void write_case(const char *enc, int i, const unsigned char *raw, size_t n,
		       const char *encoded, size_t len)
{
	char *in_name = xasprintf("%s/%04d.in", enc, i);
	char *enc_name = xasprintf("%s/%04d.%s", enc, i, enc);

	free(write_in(tmpdir, in_name, raw, n));
	free(write_in(tmpdir, enc_name, encoded, len));
	free(in_name);
	free(enc_name);
}

/* Runs script (written as tmpdir/ENC-check.py) over tmpdir/ENC; fails,
 * naming the decoder, unless it checked all n cases and none was bad. */
static void python_checks(const char *decoder, const char *script, const char *enc, int n)
{
	char *name = xasprintf("%s-check.py", enc), *dir = xasprintf("%s/%s", tmpdir, enc);
	char *py = write_in(tmpdir, name, script, strlen(script));
	char *cmd = xasprintf("%s '%s' '%s'", PYTHON, py, dir);
	char *out = cmd_output(cmd, 0), *want = xasprintf("checked %d bad 0\n", n);

	if (strcmp(out, want) != 0)
		fail_msg("%s: %s", decoder, out);
	free(want);
	free(out);
	free(cmd);
	free(py);
	free(dir);
	free(name);
}

/* Python's quopri (binascii.a2b_qp: no code shared with kallad) decodes
 * what mime_qp() wrote to the input, line breaks as CRLF. */
static void qp_python_round_trip(void **state)
{
	static const char script[] =
		"import quopri, sys, os\n"
		"d = sys.argv[1]; bad = 0; n = 0\n"
		"for name in sorted(os.listdir(d)):\n"
		"    if not name.endswith('.in'): continue\n"
		"    raw = open(os.path.join(d, name), 'rb').read()\n"
		"    enc = open(os.path.join(d, name[:-3] + '.qp'), 'rb').read()\n"
		"    want = raw.replace(b'\\r\\n', b'\\n').replace(b'\\n', b'\\r\\n')\n"
		"    n += 1\n"
		"    if quopri.decodestring(enc) != want:\n"
		"        bad += 1; print('differs:', name)\n"
		"print('checked', n, 'bad', bad)\n";
	unsigned char buf[3000];

	(void)state;
	make_case_dir("qp");
	for (int i = 0; i < 400; i++) {
		size_t n = random_text(buf, sizeof(buf));
		char *qp = qp_of((const char *)buf, n);

		write_case("qp", i, buf, n, qp, strlen(qp));
		free(qp);
	}
	python_checks("quopri", script, "qp", 400);
}

/* Base64 against Python's decoder, random lengths around the 57-byte
 * line and the 3-byte group. */
static void base64_python_round_trip(void **state)
{
	static const char script[] =
		"import base64, sys, os\n"
		"d = sys.argv[1]; bad = 0; n = 0\n"
		"for name in sorted(os.listdir(d)):\n"
		"    if not name.endswith('.in'): continue\n"
		"    raw = open(os.path.join(d, name), 'rb').read()\n"
		"    enc = open(os.path.join(d, name[:-3] + '.b64'), 'rb').read()\n"
		"    lines = enc.split(b'\\r\\n')\n"
		"    n += 1\n"
		"    if base64.b64decode(b''.join(lines), validate=True) != raw or \\\n"
		"            any(len(l) != 76 for l in lines[:-1]) or len(lines[-1]) > 76 or \\\n"
		"            b'\\n' in enc.replace(b'\\r\\n', b''):\n"
		"        bad += 1; print('differs:', name)\n"
		"print('checked', n, 'bad', bad)\n";
	unsigned char buf[400];

	(void)state;
	make_case_dir("b64");
	for (int i = 0; i < 300; i++) {
		size_t n = (size_t)i < 200 ? (size_t)i : rnd() % sizeof(buf);
		struct strbuf sb;

		for (size_t k = 0; k < n; k++)
			buf[k] = (unsigned char)rnd();
		sb_init(&sb);
		mime_base64(&sb, (const char *)buf, n);
		assert_int_equal(strlen(sb.buf), sb.len);
		write_case("b64", i, buf, n, sb.buf, sb.len);
		sb_free(&sb);
	}
	python_checks("base64", script, "b64", 300);
}

static void media_types(void **state)
{
	(void)state;
	assert_string_equal(mime_type_for_name("Program.PDF"), "application/pdf");
	assert_string_equal(mime_type_for_name("a.docx"),
			    "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
	assert_string_equal(mime_type_for_name("a.xlsx"),
			    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
	assert_string_equal(mime_type_for_name("a.pptx"),
			    "application/vnd.openxmlformats-officedocument.presentationml.presentation");
	assert_string_equal(mime_type_for_name("a.txt"), "text/plain");
	assert_string_equal(mime_type_for_name("a.csv"), "text/csv");
	assert_string_equal(mime_type_for_name("a.png"), "image/png");
	assert_string_equal(mime_type_for_name("a.jpg"), "image/jpeg");
	assert_string_equal(mime_type_for_name("a.ics"), "application/octet-stream");
	assert_string_equal(mime_type_for_name("Kalender.ICS"), "application/octet-stream");
	assert_string_equal(mime_type_for_name("a.weird"), "application/octet-stream");
	assert_string_equal(mime_type_for_name("noext"), "application/octet-stream");
	assert_string_equal(mime_type_for_name("dir.pdf/file"), "application/octet-stream");
}

/* An attachment named `name` survives Python's get_filename(). */
static void check_filename(const char *name, const char *want)
{
	struct mime_part *mixed = mime_multipart("mixed");
	char *disp = mime_disposition(name), *ascii = mime_name_param(name);
	char *type = xasprintf("application/pdf; %s", ascii);
	struct strbuf sb;
	char *out, *expect;

	mime_add(mixed, mime_leaf("text/plain; charset=UTF-8", NULL, "Se bilaga.\n", 11,
				  MIME_QUOTED_PRINTABLE));
	mime_add(mixed, mime_leaf(type, disp, "%PDF-1.4\n", 9, MIME_BASE64));
	sb_init(&sb);
	sb_add(&sb, "From: a@example.org\r\nTo: b@example.org\r\nSubject: att\r\n"
		    "MIME-Version: 1.0\r\n");
	mime_write(&sb, mixed, "seed");
	assert_wire(sb.buf, 998);
	free(write_in(tmpdir, "att.eml", sb.buf, sb.len));
	out = readback(tmpdir, "att.eml", false);
	expect = xasprintf("\nPart: application/pdf|%s|-|9\n", want);
	if (!strstr(out, expect))
		fail_msg("want %s in\n%s", expect, out);
	free(expect);
	free(out);
	free(type);
	free(disp);
	free(ascii);
	sb_free(&sb);
	mime_free(mixed);
}

static void attachment_names(void **state)
{
	struct strbuf big;
	char *a;

	(void)state;
	check_filename("program.pdf", "program.pdf");
	check_filename("Välkommen till Långholmen.pdf", "Välkommen till Långholmen.pdf");
	check_filename("a;b\"c\r\n.pdf", "a;bc .pdf");
	sb_init(&big);
	for (int i = 0; i < 30; i++)
		sb_add(&big, "Fördjupning ");
	sb_add(&big, "– schema.pdf");
	check_filename(big.buf, big.buf);
	sb_free(&big);
	a = mime_ascii_filename("Årsmöte.pdf");
	assert_string_equal(a, "_rsm_te.pdf");
	free(a);
	a = mime_disposition("plain.pdf");
	assert_string_equal(a, "attachment; filename=\"plain.pdf\"");
	free(a);
}

/* The Content-Type name: plain when ASCII, else RFC 2047 B words of at most
 * 75 characters, one a folded line, inside the quotes. */
static void name_parameter(void **state)
{
	char *a, *line, *save = NULL;
	int words = 0;

	(void)state;
	a = mime_name_param("plain.pdf");
	assert_string_equal(a, "name=\"plain.pdf\"");
	free(a);
	a = mime_name_param("Årsmöte.pdf");
	assert_string_equal(a, "name=\"=?UTF-8?B?w4Vyc23DtnRlLnBkZg==?=\"");
	free(a);
	a = mime_name_param("Basfakta Västerås – region Jämtland Härjedalen, en mycket lång titel.pdf");
	assert_non_null(strstr(a, "?=\r\n =?UTF-8?B?"));
	for (line = strtok_r(a, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char *w = strstr(line, "=?UTF-8?B?");
		assert_non_null(w);
		assert_true(strlen(w) - (w[strlen(w) - 1] == '"') <= 75);
		words++;
	}
	assert_true(words >= 2);
	free(a);
}

/* Same parts and seed, same bytes; another seed, other boundaries. */
static void deterministic_boundaries(void **state)
{
	struct strbuf a, b, c;

	(void)state;
	sb_init(&a);
	sb_init(&b);
	sb_init(&c);
	for (int i = 0; i < 3; i++) {
		struct mime_part *mixed = mime_multipart("mixed"), *alt = mime_multipart("alternative");

		mime_add(alt, mime_leaf("text/plain; charset=UTF-8", NULL, "x", 1, MIME_QUOTED_PRINTABLE));
		mime_add(alt, mime_leaf("text/html; charset=UTF-8", NULL, "<p>x</p>", 8,
					MIME_QUOTED_PRINTABLE));
		mime_add(mixed, alt);
		mime_write(i == 0 ? &a : i == 1 ? &b : &c, mixed, i == 2 ? "other" : "key");
		mime_free(mixed);
	}
	assert_string_equal(a.buf, b.buf);
	assert_string_not_equal(a.buf, c.buf);
	/* Two different boundaries in one message. */
	{
		const char *b1 = strstr(a.buf, "boundary=\""), *b2 = strstr(b1 + 1, "boundary=\"");

		assert_non_null(b2);
		assert_memory_not_equal(b1 + 10, b2 + 10, 34);
	}
	sb_free(&a);
	sb_free(&b);
	sb_free(&c);
}

static void date_header(void **state)
{
	struct strbuf sb;

	(void)state;
	sb_init(&sb);
	mime_header_date(&sb, 1582189200); /* 2020-02-20 09:00 UTC */
	mime_header_date(&sb, 1593597600); /* 2020-07-01 10:00 UTC */
	assert_string_equal(sb.buf, "Date: Thu, 20 Feb 2020 10:00:00 +0100\r\n"
				    "Date: Wed, 1 Jul 2020 12:00:00 +0200\r\n");
	sb_free(&sb);
}

static void split_address(void **state)
{
	char *d, *a;

	(void)state;
	assert_true(mime_split_address("Fördjupningsprogrammet <program@example.org>", &d, &a));
	assert_string_equal(d, "Fördjupningsprogrammet");
	assert_string_equal(a, "program@example.org");
	free(d);
	free(a);
	assert_true(mime_split_address("\"Lindgren, Lena\" <lena@example.org>", &d, &a));
	assert_string_equal(d, "Lindgren, Lena");
	assert_string_equal(a, "lena@example.org");
	free(d);
	free(a);
	assert_true(mime_split_address("program@example.org", &d, &a));
	assert_string_equal(d, "");
	assert_string_equal(a, "program@example.org");
	free(d);
	free(a);
	assert_false(mime_split_address("no address here", &d, &a));
	assert_false(mime_split_address(NULL, &d, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(subjects_round_trip),
		cmocka_unit_test(names_round_trip),
		cmocka_unit_test(injection_adds_no_header),
		cmocka_unit_test(sanitize_cleans),
		cmocka_unit_test(quoted_printable),
		cmocka_unit_test(base64_vectors),
		cmocka_unit_test(qp_vectors),
		cmocka_unit_test(qp_matches_reference),
		cmocka_unit_test(qp_python_round_trip),
		cmocka_unit_test(base64_python_round_trip),
		cmocka_unit_test(media_types),
		cmocka_unit_test(attachment_names),
		cmocka_unit_test(name_parameter),
		cmocka_unit_test(deterministic_boundaries),
		cmocka_unit_test(date_header),
		cmocka_unit_test(split_address),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
