/* test_message.c: whole messages from the shipped templates for a
 * programme modelled on the reference one (Stockholm, 2020) plus sessions
 * over the 2026 daylight-saving changes, for ordinary and hostile
 * participants. Every message is checked by tests/check_message.py (and
 * ../shared/tools/check-message when present)
 * and read back by Python's email and icalendar packages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "datefmt.h"
#include "message.h"
#include "mime.h"
#include "template.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ORGANIZER "lena.lindgren@example.org"
#define HEADERS "From,To,Reply-To,Subject,Date,Message-ID,MIME-Version,Auto-Submitted,Content-Type"

static char tmpdir[64];
static struct config cfg;
static struct calendar cal;
static struct registrations reg;
static struct templates *tpl;
static struct session sessions[7];
static struct deadline deadline;
static struct participant people[6];
static struct attachment attachments[4];
static struct strbuf long_desc, long_name;

enum { S_LEDA, S_CANCELLED, S_STYRNING, S_DIALOG, S_SPRING, S_AUTUMN, S_HOSTILE };
enum { P_ANNA, P_JOHN, P_EVE, P_QUOTE, P_PLUS, P_LONG };

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static void make_session(int i, const char *uid, const char *title, const char *location,
			 const char *desc, time_t start, time_t end)
{
	sessions[i] = (struct session){
		.uid = (char *)uid,
		.summary = (char *)title,
		.location = (char *)location,
		.description = (char *)desc,
		.start = start,
		.end = end,
	};
}

static void make_calendar(void)
{
	sb_init(&long_desc);
	while (long_desc.len < 10240)
		sb_add(&long_desc, "Räksmörgås; komma, och \"citat\" – en mycket lång beskrivning. ");
	make_session(S_LEDA, "2020-1-leda@example.org", "Leda samhällsutveckling",
		     "Långholmens konferens, Stockholm",
		     "Utmaningar och komplexa frågor\nSamverkan\nDigitalisering",
		     tz_mktime(2020, 2, 20, 10, 0, 0), tz_mktime(2020, 2, 21, 13, 0, 0));
	make_session(S_CANCELLED, "2020-x-installt@example.org", "Inställt seminarium", "", "",
		     tz_mktime(2020, 3, 1, 10, 0, 0), tz_mktime(2020, 3, 1, 12, 0, 0));
	sessions[S_CANCELLED].cancelled = true;
	make_session(S_STYRNING, "2020-2-styrning@example.org", "Styrning och risker",
		     "Långholmens konferens, Stockholm", "Bra beslutsunderlag",
		     tz_mktime(2020, 3, 12, 10, 0, 0), tz_mktime(2020, 3, 13, 13, 0, 0));
	make_session(S_DIALOG, "2020-3-dialog@example.org", "Dialog och samspel",
		     "Långholmens konferens, Stockholm", NULL, tz_mktime(2020, 5, 7, 10, 0, 0),
		     tz_mktime(2020, 5, 8, 13, 0, 0));
	make_session(S_SPRING, "2026-var@example.org", "Vårträff över sommartiden", "Stockholm",
		     "", tz_mktime(2026, 3, 28, 10, 0, 0), tz_mktime(2026, 3, 29, 13, 0, 0));
	make_session(S_AUTUMN, "2026-host@example.org", "Höstträff över vintertiden", "Stockholm",
		     "", tz_mktime(2026, 10, 24, 10, 0, 0), tz_mktime(2026, 10, 25, 13, 0, 0));
	make_session(S_HOSTILE, "2027-ond@example.org", "Ond\r\nBcc: x@evil.example",
		     "Rum 1; hus 2, \"A\"", long_desc.buf, tz_mktime(2027, 1, 14, 9, 0, 0),
		     tz_mktime(2027, 1, 14, 16, 30, 0));
	cal.sessions = sessions;
	cal.n_sessions = ARRAY_SIZE(sessions);
	deadline = (struct deadline){
		.uid = "2019-anmalan@example.org",
		.summary = "Sista anmälningsdag",
		.description = "Anmäl dig via webbplatsen.",
		.due = tz_mktime(2019, 12, 14, 0, 0, 0),
		.date_only = true,
	};
	cal.deadlines = &deadline;
	cal.n_deadlines = 1;
}

static void make_person(int i, const char *email, const char *name, const char *org,
			const char *lang)
{
	people[i] = (struct participant){
		.email = (char *)email,
		.name = (char *)name,
		.organisation = (char *)org,
		.role = "Kommunstyrelsens ordförande",
		.language = (char *)lang,
		.status = PS_REGISTERED,
	};
}

static void make_people(void)
{
	sb_init(&long_name);
	while (long_name.len < 300)
		sb_add(&long_name, "Åke Östen Ärlebäck-");
	sb_add(&long_name, "Ödmark");
	make_person(P_ANNA, "anna.andersson@exempelby.example.se", "Anna Andersson",
		    "Exempelby kommun", "sv");
	make_person(P_JOHN, "john.smith@region.example.org", "John Smith", NULL, "en");
	make_person(P_EVE, "eve@example.net", "Eve\r\nBcc: x@evil.example", "Ond\r\nX-Evil: 1",
		    "sv");
	make_person(P_QUOTE, "quote@example.net", "\"Quoted\" O'Hara, Jr. \\ <x@y>", "Region Ö",
		    "de"); /* no German templates: falls back to sv */
	make_person(P_PLUS, "asa+kallad@kommun.example.se", "Åsa Öberg-Lindström", "Åre kommun",
		    "sv");
	make_person(P_LONG, "long@example.org", long_name.buf, NULL, "en");
	reg.participants = people;
	reg.n_participants = ARRAY_SIZE(people);
}

static void make_attachments(void)
{
	char *dir = tmp_path("material");

	assert_int_equal(mkdir(dir, 0700), 0);
	put_file(tmpdir, "material/program.pdf", "%PDF-1.4\n% kallad test\n");
	put_file(tmpdir, "material/Välkommen till Långholmen.docx", "PK\003\004 not really a docx");
	put_file(tmpdir, "material/abs.txt", "Absolut sökväg.\n");
	put_file(tmpdir, "outside.txt", "Utanför.\n");
	attachments[0] = (struct attachment){"anna.andersson@exempelby.example.se", "material",
					     "program.pdf"};
	attachments[1] = (struct attachment){"ANNA.andersson@exempelby.example.se", "material",
					     "./Välkommen till Långholmen.docx"};
	attachments[2] = (struct attachment){"john.smith@region.example.org", "material", "abs.txt"};
	attachments[3] = (struct attachment){"anna.andersson@exempelby.example.se", "invite",
					     "program.pdf"};
	reg.attachments = attachments;
	reg.n_attachments = ARRAY_SIZE(attachments);
	free(dir);
}

/* A site template for a manual send ("welcome"), loaded over the shipped. */
#define MIXED_BODY                                                                           \
	"Hej {{participant.name}}, välkommen till {{programme.name}}!\n"                       \
	"{{#sessions}}- {{session.title}}, {{session.when}}, för {{participant.name}}   \n"    \
	"{{/sessions}}.\nFrom the start of a line, {{participant.email}} \n"                  \
	"{{#attachments}}Fil: {{attachment.name}}\n{{/attachments}}"                          \
	"{{^attachments}}Inga filer.\n{{/attachments}}"                                       \
	"{{#changed}}Ändrat: {{previous.when}} -> {{session.when}}, {{previous.location}}\n" \
	"{{/changed}}Lång rad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "   \
	"{{participant.organisation}} bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"             \
	"{{participant.role}}\n.\nF\n= tecken = =?utf-8?q?x?= \t\n"                         \
	"{{session.title}}\n\nSlut utan radbrytning {{participant.name}}"
#define MIXED_TEMPLATE "Subject: Blandat {{participant.name}} {{session.title}}\n\n" MIXED_BODY
#define MIXED_TEMPLATE_HTML "<p>\"&amp;\"</p>\n" MIXED_BODY "<br>\n"

static void make_site_templates(void)
{
	char *p = tmp_path("site");

	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = tmp_path("site/sv");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	put_file(tmpdir, "site/sv/welcome.txt",
		 "Subject: Välkommen, {{participant.name}}\n\nHej {{participant.name}}!\n"
		 "{{#session.title}}Vi ses på {{session.title}}.\n{{/session.title}}");
	/* The recipient's values among shared ones in every position the
	 * bodies rendered ahead must get right (cache_gives_the_same_bytes):
	 * inside sections, in the middle of lines longer than 76 octets,
	 * before trailing spaces, at a line's start ('.', "From "), last. */
	put_file(tmpdir, "site/sv/mixed.txt", MIXED_TEMPLATE);
	put_file(tmpdir, "site/sv/mixed.html", MIXED_TEMPLATE_HTML);
}

static int setup(void **state)
{
	struct errlist errs = {0};

	(void)state;
	strcpy(tmpdir, "/tmp/kallad-message-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	assert_true(tz_set("Europe/Stockholm"));
	cfg = (struct config){
		.path = tmp_path("kallad.conf"),
		.material = tmp_path("material"),
		.name = "Fördjupningsprogram i att styra och leda 2020",
		.timezone = "Europe/Stockholm",
		.language = "sv",
		.organizer_name = "Lena Lindgren",
		.organizer_email = ORGANIZER,
		.from = "Fördjupningsprogrammet <program@example.org>",
		.reply_to = "program@example.org",
	};
	make_calendar();
	make_people();
	make_attachments();
	make_site_templates();
	{
		char *site = tmp_path("site");

		tpl = tpl_load(SOURCE_DIR "/templates", site, &errs);
		free(site);
	}
	for (size_t i = 0; i < errs.n; i++)
		print_error("%s\n", errs.items[i]);
	assert_non_null(tpl);
	errlist_free(&errs);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_true(remove_tree(tmpdir));
	free(cfg.path);
	free(cfg.material);
	tpl_free(tpl);
	sb_free(&long_desc);
	sb_free(&long_name);
	return 0;
}

static struct message_req req_for(const char *message, int person, const struct session *s,
				  const struct deadline *d)
{
	struct message_req r = {
		.message = message,
		.p = &people[person],
		.session = s,
		.deadline = d,
		.sequence = str_eq(message, "update") ? 1 : str_eq(message, "cancel") ? 2 : 0,
		.key = "test-key",
		.now = tz_mktime(2020, 1, 10, 9, 0, 0),
	};
	return r;
}

/* Builds, writes dir/name and returns the message. */
static char *build(const char *dir, const char *name, const struct message_req *r)
{
	struct errlist errs = {0};
	size_t len = 0;
	char *msg = message_build(&cfg, &cal, &reg, tpl, r, &len, &errs);
	char *path;

	if (!msg)
		fail_msg("%s: %s", name, errs.n ? errs.items[0] : "no error given");
	assert_int_equal(errs.n, 0);
	assert_int_equal(strlen(msg), len);
	path = xasprintf("%s/%s", dir, name);
	write_text(path, msg);
	free(path);
	errlist_free(&errs);
	return msg;
}

/* The readback block of one file. */
static char *block(const char *out, const char *path)
{
	char *head = xasprintf("File: %s\n", path);
	const char *p = strstr(out, head), *end;

	if (!p)
		fail_msg("no readback for %s", path);
	p += strlen(head);
	end = strstr(p, "\nFile: ");
	free(head);
	return xstrndup(p - 1, end ? (size_t)(end - p + 2) : strlen(p - 1));
}

static void expect(const char *blk, const char *key, const char *value)
{
	char *want = xasprintf("\n%s: %s\n", key, value);

	if (!strstr(blk, want))
		fail_msg("want \"%s: %s\" in\n%.3000s", key, value, blk);
	free(want);
}

struct built {
	char name[64];
	const char *kind;
	int person;
	const struct session *s;
	const struct deadline *d;
};

static const char *lang_of(int person)
{
	return str_eq(people[person].language, "en") ? "en" : "sv";
}

/* The subject the shipped templates give (SPEC §2 examples). */
static char *subject_for(const struct built *b)
{
	const char *lang = lang_of(b->person);
	bool sv = str_eq(lang, "sv");
	char *title = b->s ? mime_sanitize(b->s->summary, 0) : NULL;
	char *date = b->s ? datefmt_date(lang, b->s->start)
			  : b->d ? datefmt_date(lang, b->d->due - 1) : NULL;
	char *out = NULL;

	if (str_eq(b->kind, "invite"))
		out = xasprintf("%s: %s, %s", sv ? "Inbjudan" : "Invitation", title, date);
	else if (str_eq(b->kind, "session-reminder"))
		out = xasprintf("%s: %s, %s", sv ? "Påminnelse" : "Reminder", title, date);
	else if (str_eq(b->kind, "cancel"))
		out = xasprintf("%s: %s, %s",
				b->s->cancelled ? (sv ? "Inställt" : "Cancelled")
						: (sv ? "Avbokat" : "Booking cancelled"),
				title, date);
	else if (str_eq(b->kind, "update")) /* no older copy here: the date as it stands */
		out = xasprintf("%s: %s, %s", sv ? "Ändrat" : "Changed", title, date);
	else if (str_eq(b->kind, "deadline-reminder"))
		out = xasprintf("%s: %s, %s", sv ? "Påminnelse" : "Reminder", b->d->summary, date);
	else if (str_eq(b->kind, "material") && b->s)
		out = xasprintf("%s %s", sv ? "Material inför" : "Material for", title);
	else if (str_eq(b->kind, "material"))
		out = xasprintf("%s %s", sv ? "Material från" : "Material from", cfg.name);
	free(title);
	free(date);
	return out;
}

static void check_readback(const char *out, const char *dir, const struct built *b)
{
	char *path = xasprintf("%s/%s", dir, b->name);
	char *blk = block(out, path);
	char *name = mime_sanitize(people[b->person].name, MIME_NAME);
	char *subject = subject_for(b);
	bool cal_part = b->s && !str_eq(b->kind, "material");

	expect(blk, "Bcc", "none");
	expect(blk, "To-Count", "1");
	expect(blk, "To-Addr", people[b->person].email);
	if (strlen(name) < 40) /* longer names span encoded words: see test_mime */
		expect(blk, "To-Name", name);
	expect(blk, "From-Name", "Fördjupningsprogrammet");
	expect(blk, "From-Addr", "program@example.org");
	expect(blk, "Reply-To-Addr", "program@example.org");
	if (subject)
		expect(blk, "Subject", subject);
	/* No injected header (the hostile text is in the body, harmless). */
	if (!strstr(blk, "\nHeader-Names: " HEADERS "\n") &&
	    !strstr(blk, "\nHeader-Names: " HEADERS ",Content-Transfer-Encoding\n"))
		fail_msg("unexpected headers in\n%.2000s", blk);
	if (cal_part) {
		char *ev = xasprintf("%s|%s|%lld|%lld|%lld|%lld|", b->s->uid,
				     str_eq(b->kind, "cancel") ? "CANCEL" : "REQUEST",
				     (long long)b->s->start, (long long)b->s->end,
				     (long long)b->s->start, (long long)b->s->end);
		char *pat = xasprintf("\nEvent: %s", ev);

		if (!strstr(blk, pat))
			fail_msg("want %s in\n%.3000s", pat, blk);
		free(pat);
		free(ev);
	} else {
		assert_null(strstr(blk, "Event:"));
		assert_null(strstr(blk, "text/calendar"));
	}
	free(subject);
	free(name);
	free(blk);
	free(path);
}

/* Every kind for every participant and the interesting sessions; all pass
 * check-message and read back right. */
static void every_kind_passes(void **state)
{
	static const char *const kinds[] = {"invite", "session-reminder", "update", "cancel"};
	static const int which[] = {S_LEDA, S_SPRING, S_AUTUMN, S_HOSTILE, S_CANCELLED};
	struct built *b = xcalloc(200, sizeof(*b));
	char *dir = tmp_path("out"), *cmd, *out, *files = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int p = 0; p < (int)ARRAY_SIZE(people); p++) {
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
			for (size_t s = 0; s < ARRAY_SIZE(which); s++)
				b[n++] = (struct built){"", kinds[k], p, &sessions[which[s]], NULL};
		b[n++] = (struct built){"", "material", p, &sessions[S_LEDA], NULL};
		b[n++] = (struct built){"", "material", p, NULL, NULL};
		b[n++] = (struct built){"", "deadline-reminder", p, NULL, &deadline};
		b[n++] = (struct built){"", "welcome", p, &sessions[S_STYRNING], NULL};
		b[n++] = (struct built){"", "welcome", p, NULL, NULL};
	}
	for (size_t i = 0; i < n; i++) {
		struct message_req r = req_for(b[i].kind, b[i].person, b[i].s, b[i].d);

		snprintf(b[i].name, sizeof(b[i].name), "%03zu-%s.eml", i, b[i].kind);
		free(build(dir, b[i].name, &r));
	}
	cmd = check_message_cmd(ORGANIZER, dir);
	out = cmd_output(cmd, 0);
	{
		char *want = xasprintf("%zu passed, 0 failed\n", n);

		assert_string_equal(out, want);
		free(want);
	}
	free(out);
	free(cmd);
	out = readback(dir, "*.eml", false);
	for (size_t i = 0; i < n; i++)
		check_readback(out, dir, &b[i]);
	free(out);
	free(files);
	free(dir);
	free(b);
}

/* M1 structure and the invite text for the reference programme. */
static void invite_structure(void **state)
{
	struct message_req r = req_for("invite", P_ANNA, &sessions[S_LEDA], NULL);
	char *dir = tmp_path("one"), *msg, *out, *line;
	char *when;

	(void)state;
	mkdir(dir, 0700);
	msg = build(dir, "invite.eml", &r);
	out = readback(dir, "invite.eml", false);
	/* The parts in order: mixed { alternative { plain, html, calendar },
	 * invite.ics, the invite's own attachment row }. */
	assert_non_null(strstr(out, "Multipart: multipart/mixed\nMultipart: multipart/alternative\n"
				    "Part: text/plain|-|-|"));
	assert_non_null(strstr(out, "\nPart: text/html|-|-|"));
	assert_non_null(strstr(out, "\nPart: text/calendar|-|REQUEST|"));
	assert_non_null(strstr(out, "\nPart: application/ics|invite.ics|-|"));
	assert_non_null(strstr(out, "\nPart: application/pdf|program.pdf|-|"));
	assert_true(strstr(out, "text/calendar") < strstr(out, "application/ics"));
	/* The text: greeting, the session, every session that takes place
	 * (not the cancelled one), in Swedish. */
	expect(out, "Text", "Hej Anna Andersson!");
	when = datefmt_range("sv", sessions[S_LEDA].start, sessions[S_LEDA].end);
	line = xasprintf("Tid: %s", when);
	assert_non_null(strstr(out, line));
	free(line);
	line = xasprintf("1. Leda samhällsutveckling: %s", when);
	assert_non_null(strstr(out, line));
	free(line);
	free(when);
	assert_non_null(strstr(out, "\nText: 2. Styrning och risker: "));
	assert_null(strstr(out, "Inställt seminarium"));
	/* The shipped texts hold no programme's facts. */
	assert_null(strstr(out, "2023"));
	assert_null(strstr(out, "moms"));
	/* M11 headers; no key exposed. */
	assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(msg, "\r\nAuto-Submitted: auto-generated\r\n"));
	assert_non_null(strstr(msg, "\r\nDate: Fri, 10 Jan 2020 09:00:00 +0100\r\n"));
	assert_null(strstr(msg, "test-key"));
	/* M13, M6: CRLF only, 7-bit, short lines. */
	for (const char *p = msg, *nl; *p; p = nl + 2) {
		nl = strstr(p, "\r\n");
		assert_non_null(nl);
		assert_true(nl - p <= 998);
		for (const char *c = p; c < nl; c++)
			assert_true((unsigned char)*c < 0x80 && *c != '\n' && *c != '\r');
	}
	free(out);
	free(msg);
	free(dir);
}

static void message_id_and_determinism(void **state)
{
	struct message_req r = req_for("session-reminder", P_PLUS, &sessions[S_AUTUMN], NULL);
	struct errlist errs = {0};
	size_t la, lb;
	char *a = message_build(&cfg, &cal, &reg, tpl, &r, &la, &errs);
	char *b = message_build(&cfg, &cal, &reg, tpl, &r, &lb, &errs);
	char *id = message_id(cfg.organizer_email, "test-key", NULL), *other = message_id(cfg.organizer_email, "other-key", NULL);
	char hash[33], *want, *hdr;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	hash_hex("test-key", 8, hash);
	want = xasprintf("<%s@example.org>", hash);
	assert_string_equal(id, want);
	assert_string_not_equal(id, other);
	hdr = xasprintf("\r\nMessage-ID: %s\r\n", id);
	assert_non_null(strstr(a, hdr));
	/* Another key: another Message-ID and other boundaries. */
	r.key = "other-key";
	free(b);
	b = message_build(&cfg, &cal, &reg, tpl, &r, &lb, &errs);
	assert_non_null(b);
	assert_null(strstr(b, hdr));
	assert_int_equal(errs.n, 0);
	/* A programme's salt: another Message-ID for the same key, which
	 * message_id_is knows by that salt only. */
	char *salted = message_id(cfg.organizer_email, "test-key", "5a17");
	assert_string_not_equal(salted, id);
	assert_true(message_id_is(salted + 1, "test-key", "5a17"));
	assert_false(message_id_is(salted + 1, "test-key", NULL));
	assert_false(message_id_is(id + 1, "test-key", "5a17"));
	assert_true(message_id_is(id + 1, "test-key", ""));
	free(salted);
	free(hdr);
	free(want);
	free(id);
	free(other);
	free(a);
	free(b);
}

static const struct config *use_cfg = &cfg;

/* message_build() with and without a cache; the same bytes, or fail
 * naming the first difference. */
static void assert_cached_same(struct message_req *r, struct message_cache *c, const char *what)
{
	struct errlist errs = {0};
	size_t la = 0, lb = 0, i = 0;
	char *a, *b;

	r->cache = NULL;
	a = message_build(use_cfg, &cal, &reg, tpl, r, &la, &errs);
	r->cache = c;
	b = message_build(use_cfg, &cal, &reg, tpl, r, &lb, &errs);
	r->cache = NULL;
	if (!a || !b)
		fail_msg("%s: %s", what, errs.n ? errs.items[0] : "not built");
	while (i < la && i < lb && a[i] == b[i])
		i++;
	if (la != lb || i != la)
		fail_msg("%s: with a cache differs at byte %zu: ...%.60s... vs ...%.60s...", what, i,
			 a + (i > 20 ? i - 20 : 0), b + (i > 20 ? i - 20 : 0));
	errlist_free(&errs);
	free(a);
	free(b);
}

/* The per-pass cache changes no byte: every kind to every participant
 * about every session (the hostile one, the DST ones, a cancelled one),
 * interleaved so entries are found again, with an update's previous
 * copy; a session changed in place (same address) after it was cached;
 * DTSTAMP and Date moving within a pass; more targets than the cache
 * holds; another configuration meeting the cache. */
static void cache_gives_the_same_bytes(void **state)
{
	static const char *const kinds[] = {"invite", "session-reminder", "update", "cancel",
					    "material", "welcome", "mixed"};
	struct message_cache *c = message_cache_new();
	struct session before = sessions[S_LEDA];
	struct message_req r;
	char what[128];

	(void)state;
	before.start -= 86400;
	before.location = "Gamla stan";
	for (int round = 0; round < 2; round++)
		for (size_t s = 0; s < ARRAY_SIZE(sessions); s++)
			for (int p = 0; p < (int)ARRAY_SIZE(people); p++)
				for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
					r = req_for(kinds[k], p, &sessions[s], NULL);
					if (str_eq(kinds[k], "update") && p % 2)
						r.previous = &before;
					r.sequence = round;
					snprintf(what, sizeof(what), "%s to %d about %zu", kinds[k], p, s);
					assert_cached_same(&r, c, what);
				}
	for (int p = 0; p < (int)ARRAY_SIZE(people); p++) {
		r = req_for("deadline-reminder", p, NULL, &deadline);
		assert_cached_same(&r, c, "deadline-reminder");
		r = req_for("mixed", p, NULL, &deadline);
		assert_cached_same(&r, c, "mixed about a deadline");
		r = req_for("mixed", p, &sessions[S_LEDA], NULL);
		r.previous = &before;
		assert_cached_same(&r, c, "mixed, an update");
		r = req_for("material", p, NULL, NULL);
		assert_cached_same(&r, c, "material without a session");
	}
	/* The session moves and changes place after it was cached. */
	{
		struct session keep = sessions[S_STYRNING];

		sessions[S_STYRNING].start += 3600;
		sessions[S_STYRNING].location = "Annan plats";
		r = req_for("invite", P_ANNA, &sessions[S_STYRNING], NULL);
		assert_cached_same(&r, c, "a session changed in place");
		sessions[S_STYRNING] = keep;
	}
	/* Time moves on within a pass: more DTSTAMPs than the cache holds. */
	for (int i = 0; i < 70; i++) {
		r = req_for("invite", i % (int)ARRAY_SIZE(people), &sessions[S_SPRING], NULL);
		r.now += i * 7;
		assert_cached_same(&r, c, "time moving on");
	}
	/* Another configuration (as a reload makes): the cache starts over. */
	{
		struct config other = cfg;

		other.name = "Ett annat program";
		other.from = "Annan Avsändare <annan@example.org>";
		other.reply_to = NULL;
		use_cfg = &other;
		r = req_for("invite", P_JOHN, &sessions[S_LEDA], NULL);
		assert_cached_same(&r, c, "another configuration");
		use_cfg = &cfg;
		r = req_for("invite", P_JOHN, &sessions[S_LEDA], NULL);
		assert_cached_same(&r, c, "the first configuration again");
	}
	message_cache_free(c);
}

static void assert_fails(const struct message_req *r, const char *const *words)
{
	struct errlist errs = {0};
	size_t len = 12345;
	char *msg = message_build(&cfg, &cal, &reg, tpl, r, &len, &errs);

	assert_null(msg);
	assert_int_equal(errs.n, 1);
	for (size_t i = 0; words[i]; i++)
		if (!strstr(errs.items[0], words[i]))
			fail_msg("error \"%s\" does not name \"%s\"", errs.items[0], words[i]);
	errlist_free(&errs);
}

/* Missing template, session, deadline or file: NULL with an error naming
 * the message, the participant and what is wrong; never a partial mail. */
static void errors_name_the_delivery(void **state)
{
	struct message_req r;

	(void)state;
	r = req_for("no-such-template", P_ANNA, &sessions[S_LEDA], NULL);
	assert_fails(&r, (const char *const[]){"no-such-template", "anna.andersson@exempelby.example.se",
					       "2020-1-leda@example.org", "template", NULL});
	r = req_for("invite", P_JOHN, NULL, NULL);
	assert_fails(&r, (const char *const[]){"invite", "john.smith@region.example.org", "session",
					       NULL});
	r = req_for("cancel", P_JOHN, NULL, NULL);
	assert_fails(&r, (const char *const[]){"cancel", "session", NULL});
	r = req_for("deadline-reminder", P_JOHN, NULL, NULL);
	assert_fails(&r, (const char *const[]){"deadline-reminder", "deadline", NULL});
	/* The organizer never gets an invite (I11). */
	{
		struct participant lena = people[P_ANNA];

		lena.email = ORGANIZER;
		r = req_for("invite", P_ANNA, &sessions[S_LEDA], NULL);
		r.p = &lena;
		assert_fails(&r, (const char *const[]){"organizer", NULL});
	}
	/* A missing attachment file. */
	{
		struct attachment saved = attachments[2];

		attachments[2].path = "saknas.pdf";
		r = req_for("material", P_JOHN, NULL, NULL);
		assert_fails(&r, (const char *const[]){"material", "john.smith@region.example.org",
						       "saknas.pdf", NULL});
		attachments[2] = saved;
	}
}

/* Material: the participant's own rows only, paths resolved beneath
 * [programme] material and nowhere else, non-ASCII names in RFC 2231. */
static void material_attachments(void **state)
{
	struct message_req r = req_for("material", P_ANNA, NULL, NULL);
	char *dir = tmp_path("mat"), *msg, *out;

	(void)state;
	mkdir(dir, 0700);
	msg = build(dir, "material.eml", &r);
	assert_non_null(strstr(msg, "filename*=UTF-8''V%C3%A4lkommen"));
	out = readback(dir, "material.eml", false);
	assert_non_null(strstr(out, "Multipart: multipart/mixed\nMultipart: multipart/alternative\n"
				    "Part: text/plain|"));
	assert_non_null(strstr(out, "\nPart: application/pdf|program.pdf|-|23\n"));
	assert_non_null(strstr(out,
			       "\nPart: application/vnd.openxmlformats-officedocument.wordprocessingml"
			       ".document|Välkommen till Långholmen.docx|-|"));
	assert_null(strstr(out, "abs.txt"));
	assert_null(strstr(out, "text/calendar"));
	expect(out, "Text", "– program.pdf");
	expect(out, "Text", "– Välkommen till Långholmen.docx");
	free(out);
	free(msg);
	r = req_for("material", P_JOHN, NULL, NULL);
	msg = build(dir, "material-john.eml", &r);
	assert_non_null(strstr(msg, "filename=\"abs.txt\""));
	free(msg);
	/* An absolute path, .. or a symbolic link out: refused, naming the row. */
	{
		struct attachment saved = attachments[2];
		char *outside = tmp_path("outside.txt"), *link = tmp_path("material/out");

		attachments[2].path = outside;
		assert_fails(&r, (const char *const[]){"attachments row", "john.smith@region.example.org",
						       "outside.txt", "absolute", NULL});
		attachments[2].path = "../outside.txt";
		assert_fails(&r, (const char *const[]){"../outside.txt", "leads out", NULL});
		assert_int_equal(symlink(outside, link), 0);
		free(outside);
		attachments[2].path = "out";
		assert_fails(&r, (const char *const[]){"\"out\"", "leads out", NULL});
		attachments[2] = saved;
		unlink(link);
		free(link);
	}
	free(dir);
}

/* Without html and calendar: one text/plain part. A message with only
 * text keeps the 7-bit, CRLF rules. */
static void plain_only_message(void **state)
{
	struct message_req r = req_for("welcome", P_ANNA, NULL, NULL);
	char *dir = tmp_path("plain"), *msg, *out;

	(void)state;
	mkdir(dir, 0700);
	msg = build(dir, "welcome.eml", &r);
	assert_null(strstr(msg, "multipart"));
	assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n"
				    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
	out = readback(dir, "welcome.eml", false);
	expect(out, "Subject", "Välkommen, Anna Andersson");
	expect(out, "Text", "Hej Anna Andersson!");
	free(out);
	free(msg);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_kind_passes),
		cmocka_unit_test(invite_structure),
		cmocka_unit_test(message_id_and_determinism),
		cmocka_unit_test(cache_gives_the_same_bytes),
		cmocka_unit_test(errors_name_the_delivery),
		cmocka_unit_test(material_attachments),
		cmocka_unit_test(plain_only_message),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
