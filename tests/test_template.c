/* test_template.c: the shipped templates load and read well in both
 * languages; the placeholder language escapes, scopes, drops standalone
 * section lines and reports every error with file and line. */
#include "datefmt.h"
#include "template.h"
#include "tz.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#define SHIPPED SOURCE_DIR "/templates"

static const char *const messages[] = {"invite",  "session-reminder", "deadline-reminder",
				       "update",  "cancel",           "material"};

/* ---- helpers ---- */

static void write_file(const char *dir, const char *rel, const char *content)
{
	char *path = xasprintf("%s/%s", dir, rel);
	char *slash = strrchr(path, '/');

	*slash = '\0';
	mkdir(path, 0755);
	*slash = '/';
	write_text(path, content);
	free(path);
}

static char *temp_dir(void)
{
	char *d = xstrdup("/tmp/kallad-test-template-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

/* Sample values for the reference programme's first session. */
static struct tpl_vars *sample_vars(const char *lang)
{
	struct tpl_vars *v = tpl_vars_new();
	static const char *const titles[] = {"Leda samhällsutveckling", "Styrning och risker",
					     "Dialog och samspel"};
	static const int days[][2] = {{2, 20}, {3, 12}, {5, 7}};
	time_t s0 = tz_mktime(2020, 2, 20, 10, 0, 0), e0 = tz_mktime(2020, 2, 21, 13, 0, 0);
	char *when = datefmt_range(lang, s0, e0), *date = datefmt_date(lang, s0);

	tpl_vars_set(v, "participant.name", "Anna Andersson");
	tpl_vars_set(v, "participant.email", "anna.andersson@example.se");
	tpl_vars_set(v, "participant.organisation", "Exempelkommun");
	tpl_vars_set(v, "calendar.attached", "yes");
	tpl_vars_set(v, "programme.name", "Fördjupningsprogram i att styra och leda 2020");
	tpl_vars_set(v, "organizer.name", "Lena Lindgren");
	tpl_vars_set(v, "organizer.email", "lena.lindgren@example.org");
	tpl_vars_set(v, "contact.email", "program@example.org");
	tpl_vars_set(v, "session.title", titles[0]);
	tpl_vars_set(v, "session.when", when);
	tpl_vars_set(v, "session.date", date);
	tpl_vars_set(v, "session.location", "Långholmens konferens, Stockholm");
	tpl_vars_set(v, "deadline.title", "Sista anmälningsdag");
	tpl_vars_set(v, "deadline.when", "fredag 13 december 2019 kl. 23.59");
	tpl_vars_set(v, "deadline.date", "fredag 13 december 2019");
	for (int i = 0; i < 3; i++) {
		struct tpl_vars *it = tpl_vars_item(v, "sessions");
		time_t s = tz_mktime(2020, days[i][0], days[i][1], 10, 0, 0);
		time_t e = tz_mktime(2020, days[i][0], days[i][1] + 1, 13, 0, 0);
		char *w = datefmt_range(lang, s, e), *n = xasprintf("%d", i + 1);

		tpl_vars_set(it, "session.title", titles[i]);
		tpl_vars_set(it, "session.when", w);
		tpl_vars_set(it, "session.number", n);
		free(w);
		free(n);
	}
	tpl_vars_set(tpl_vars_item(v, "attachments"), "attachment.name", "basfakta-exempelkommun.pdf");
	tpl_vars_set(tpl_vars_item(v, "attachments"), "attachment.name", "program-2020.pdf");
	free(when);
	free(date);
	return v;
}

static struct templates *load_shipped(void)
{
	struct errlist errs = {0};
	struct templates *t = tpl_load(SHIPPED, NULL, &errs);

	dump(&errs);
	assert_int_equal(errs.n, 0);
	assert_non_null(t);
	errlist_free(&errs);
	return t;
}

/* Renders a small in-memory template; html may be NULL. */
static void render_mem(const char *txt, const char *html, const struct tpl_vars *v, char **subject,
		       char **text, char **out_html)
{
	struct errlist errs = {0};
	struct templates *t =
		tpl_parse_mem("sv", "t", txt, strlen(txt), html, html ? strlen(html) : 0, &errs);

	dump(&errs);
	assert_non_null(t);
	assert_true(tpl_render(t, "sv", "en", "t", v, subject, text, out_html, &errs));
	tpl_free(t);
	errlist_free(&errs);
}

static int setup(void **state)
{
	(void)state;
	return tz_set("Europe/Stockholm") ? 0 : -1;
}

/* ---- the shipped templates ---- */

static void test_shipped_load(void **state)
{
	struct templates *t = load_shipped();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(messages); i++) {
		assert_true(tpl_has(t, "sv", NULL, messages[i]));
		assert_true(tpl_has(t, "en", NULL, messages[i]));
	}
	assert_false(tpl_has(t, "sv", "en", "no-such-message"));
	tpl_free(t);
}

/* What every rendered message must satisfy, whatever it is about. */
static void check_common(const char *lang, const char *msg, const char *subject,
			 const char *text, const char *html)
{
	char *lang_attr = xasprintf("<html lang=\"%s\">", lang);

	print_message("%s/%s: %s\n", lang, msg, subject);
	assert_true(strlen(subject) > 5);
	assert_null(strchr(subject, '\n'));
	assert_null(strstr(subject, "{{"));
	assert_null(strstr(text, "{{"));
	/* No blank-line pile-ups, no leading blank line, one final newline. */
	assert_null(strstr(text, "\n\n\n"));
	assert_true(text[0] != '\n');
	assert_true(text[strlen(text) - 1] == '\n');
	assert_non_null(strstr(text, "Anna Andersson"));
	assert_non_null(strstr(text, "Lena Lindgren"));
	assert_non_null(strstr(text, "program@example.org"));
	assert_non_null(html);
	assert_null(strstr(html, "{{"));
	assert_non_null(strstr(html, lang_attr));
	assert_non_null(strstr(html, "Anna Andersson"));
	assert_non_null(strstr(html, "mailto:program@example.org"));
	/* No scripts, no external resources. */
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "http"));
	assert_null(strstr(html, "<link"));
	free(lang_attr);
}

static void render_shipped(const struct templates *t, const char *lang, const char *msg,
			   const struct tpl_vars *v, char **subject, char **text, char **html)
{
	struct errlist errs = {0};

	assert_true(tpl_render(t, lang, "sv", msg, v, subject, text, html, &errs));
	assert_int_equal(errs.n, 0);
	check_common(lang, msg, *subject, *text, *html);
}

/* What message.c sets for an update when kallad has the older copy: the
 * session moved a week and from Malmö. */
static void set_moved(struct tpl_vars *v, const char *lang)
{
	bool sv = str_eq(lang, "sv");

	tpl_vars_set(v, "session.brief", sv ? "20 feb 10.00" : "20 Feb 10:00");
	tpl_vars_set(v, "previous.when", sv ? "torsdag 13 februari 2020 kl. 10.00 – fredag 14 februari kl. 13.00"
					    : "Thursday 13 February 2020 at 10:00 – Friday 14 February at 13:00");
	tpl_vars_set(v, "previous.brief", sv ? "13 feb 10.00" : "13 Feb 10:00");
	tpl_vars_set(v, "previous.location", "Stadshuset, Malmö");
	tpl_vars_set(v, "changed", "yes");
	tpl_vars_set(v, "changed.time", "yes");
	tpl_vars_set(v, "changed.place", "yes");
}

static void clear_moved(struct tpl_vars *v)
{
	static const char *const names[] = {"previous.when", "previous.brief", "previous.location",
					    "changed", "changed.time", "changed.place"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		tpl_vars_set(v, names[i], "");
}

/* The shipped texts serve any programme: none of the example's facts. */
static void test_shipped_generic(void **state)
{
	static const char *const facts[] = {"2023", "moms", "VAT", "000", "Basfakta", "röda tråden",
					    "red thread", "anmälningsdag", "Registration closes",
					    "förtroendevald", "elected"};
	static const char *const langs[] = {"sv", "en"};
	struct templates *t = load_shipped();
	char *s, *x, *h;

	(void)state;
	for (size_t l = 0; l < ARRAY_SIZE(langs); l++) {
		struct tpl_vars *v = sample_vars(langs[l]);

		tpl_vars_set(v, "deadline.title", "Deadline");
		for (size_t i = 0; i < ARRAY_SIZE(messages); i++) {
			render_shipped(t, langs[l], messages[i], v, &s, &x, &h);
			for (size_t f = 0; f < ARRAY_SIZE(facts); f++) {
				if (strstr(s, facts[f]) || strstr(x, facts[f]) || (h && strstr(h, facts[f])))
					fail_msg("%s/%s carries \"%s\"", langs[l], messages[i], facts[f]);
			}
			free(s), free(x), free(h);
		}
		tpl_vars_free(v);
	}
	tpl_free(t);
}

static void test_shipped_sv(void **state)
{
	struct templates *t = load_shipped();
	struct tpl_vars *v = sample_vars("sv");
	const char *when = "torsdag 20 februari 2020 kl. 10.00 – fredag 21 februari kl. 13.00";
	char *s, *x, *h;

	(void)state;
	render_shipped(t, "sv", "invite", v, &s, &x, &h);
	assert_string_equal(s, "Inbjudan: Leda samhällsutveckling, torsdag 20 februari 2020");
	assert_non_null(strstr(x, "Hej Anna Andersson!\n"));
	assert_non_null(strstr(x, "Välkommen till Fördjupningsprogram i att styra och leda 2020"));
	assert_non_null(strstr(x, when));
	assert_non_null(strstr(x, "Plats: Långholmens konferens, Stockholm\n"));
	assert_non_null(strstr(x, "Kalenderinbjudan är bifogad"));
	assert_non_null(strstr(x, "\n1. Leda samhällsutveckling: torsdag 20 februari"));
	assert_non_null(strstr(x, "\n3. Dialog och samspel: torsdag 7 maj 2020 kl. 10.00 – fredag 8 maj kl. 13.00\n"));
	assert_non_null(strstr(h, "<li style=\"margin:0 0 0.5em 0;\"><strong>Styrning och risker</strong>"));
	free(s), free(x), free(h);

	render_shipped(t, "sv", "session-reminder", v, &s, &x, &h);
	assert_string_equal(s, "Påminnelse: Leda samhällsutveckling, torsdag 20 februari 2020");
	assert_non_null(strstr(x, when));
	assert_non_null(strstr(x, "Långholmens konferens"));
	assert_non_null(strstr(x, "Kalenderinbjudan är bifogad igen"));
	free(s), free(x), free(h);
	/* No calendar in the message (one not registered): no word of it. */
	tpl_vars_set(v, "calendar.attached", "");
	for (int i = 0; i < 2; i++) {
		render_shipped(t, "sv", i ? "invite" : "session-reminder", v, &s, &x, &h);
		assert_null(strstr(x, "Kalenderinbjudan"));
		assert_null(strstr(h, "Kalenderinbjudan"));
		assert_null(strstr(x, "\n\n\n"));
		free(s), free(x), free(h);
	}
	tpl_vars_set(v, "calendar.attached", "yes");

	/* A deadline is named by its own title: any deadline, not only
	 * registration. */
	render_shipped(t, "sv", "deadline-reminder", v, &s, &x, &h);
	assert_string_equal(s, "Påminnelse: Sista anmälningsdag, fredag 13 december 2019");
	assert_non_null(strstr(x, "\nSista anmälningsdag: fredag 13 december 2019 kl. 23.59\n"));
	assert_null(strstr(x, "Långholmens"));
	free(s), free(x), free(h);
	tpl_vars_set(v, "deadline.title", "Inlämning av hemuppgift");
	render_shipped(t, "sv", "deadline-reminder", v, &s, &x, &h);
	tpl_vars_set(v, "deadline.title", "Sista anmälningsdag");
	assert_string_equal(s, "Påminnelse: Inlämning av hemuppgift, fredag 13 december 2019");
	assert_null(strstr(x, "nmälan"));
	assert_non_null(strstr(h, "<strong>Inlämning av hemuppgift</strong>"));
	free(s), free(x), free(h);

	/* An update without an older copy says what holds now... */
	render_shipped(t, "sv", "update", v, &s, &x, &h);
	assert_string_equal(s, "Ändrat: Leda samhällsutveckling, torsdag 20 februari 2020");
	assert_non_null(strstr(x, "Det här gäller nu:\n\nTid: "));
	assert_non_null(strstr(x, when));
	free(s), free(x), free(h);
	/* ...and with one, the old and new time and place. */
	set_moved(v, "sv");
	render_shipped(t, "sv", "update", v, &s, &x, &h);
	assert_string_equal(s, "Ändrat: Leda samhällsutveckling, flyttat från 13 feb 10.00 till "
			       "20 feb 10.00, ny plats Långholmens konferens, Stockholm "
			       "(förut Stadshuset, Malmö)");
	assert_non_null(strstr(x, "Ny tid: torsdag 20 februari 2020 kl. 10.00"));
	assert_non_null(strstr(x, "\nTidigare: torsdag 13 februari 2020 kl. 10.00"));
	assert_non_null(strstr(x, "\nNy plats: Långholmens konferens, Stockholm\nTidigare: Stadshuset, Malmö\n"));
	assert_non_null(strstr(h, "Tidigare: <s>Stadshuset, Malmö</s>"));
	assert_non_null(strstr(h, "Tidigare: <s>torsdag 13 februari 2020 kl. 10.00"));
	free(s), free(x), free(h);
	/* Only the place moved: the time is named once, as it stands. */
	tpl_vars_set(v, "changed.time", "");
	render_shipped(t, "sv", "update", v, &s, &x, &h);
	assert_string_equal(s, "Ändrat: Leda samhällsutveckling, ny plats Långholmens konferens, "
			       "Stockholm (förut Stadshuset, Malmö)");
	assert_non_null(strstr(x, "\nTid: torsdag 20 februari 2020"));
	assert_null(strstr(x, "13 februari"));
	free(s), free(x), free(h);
	clear_moved(v);

	/* A participant's own place cancelled... */
	render_shipped(t, "sv", "cancel", v, &s, &x, &h);
	assert_string_equal(s, "Avbokat: Leda samhällsutveckling, torsdag 20 februari 2020");
	assert_non_null(strstr(x, "Du är avbokad från tillfället ”Leda samhällsutveckling”"));
	assert_null(strstr(x, "ställa in"));
	free(s), free(x), free(h);
	/* ...or the session itself. */
	tpl_vars_set(v, "session.cancelled", "yes");
	render_shipped(t, "sv", "cancel", v, &s, &x, &h);
	tpl_vars_set(v, "session.cancelled", "");
	assert_string_equal(s, "Inställt: Leda samhällsutveckling, torsdag 20 februari 2020");
	assert_non_null(strstr(x, "ställa in tillfället ”Leda samhällsutveckling”"));
	assert_non_null(strstr(x, "tar bort tillfället ur din kalender"));
	free(s), free(x), free(h);

	render_shipped(t, "sv", "material", v, &s, &x, &h);
	assert_string_equal(s, "Material inför Leda samhällsutveckling");
	assert_non_null(strstr(x, "Bifogade filer:\n– basfakta-exempelkommun.pdf\n– program-2020.pdf\n\n"));
	assert_non_null(strstr(h, "<li>program-2020.pdf</li>"));
	free(s), free(x), free(h);

	tpl_vars_free(v);
	tpl_free(t);
}

static void test_shipped_en(void **state)
{
	struct templates *t = load_shipped();
	struct tpl_vars *v = sample_vars("en");
	const char *when = "Thursday 20 February 2020 at 10:00 – Friday 21 February at 13:00";
	char *s, *x, *h;

	(void)state;
	render_shipped(t, "en", "invite", v, &s, &x, &h);
	assert_string_equal(s, "Invitation: Leda samhällsutveckling, Thursday 20 February 2020");
	assert_non_null(strstr(x, "Dear Anna Andersson,\n"));
	assert_non_null(strstr(x, when));
	assert_non_null(strstr(x, "The calendar invitation is attached"));
	assert_non_null(strstr(x, "Where: Långholmens konferens, Stockholm\n"));
	free(s), free(x), free(h);

	for (size_t i = 1; i < ARRAY_SIZE(messages); i++) {
		render_shipped(t, "en", messages[i], v, &s, &x, &h);
		assert_non_null(strstr(x, "Dear Anna Andersson,"));
		assert_null(strstr(x, "Hej"));
		free(s), free(x), free(h);
	}
	render_shipped(t, "en", "cancel", v, &s, &x, &h);
	assert_string_equal(s,
			    "Booking cancelled: Leda samhällsutveckling, Thursday 20 February 2020");
	assert_non_null(strstr(x, "Your place at the session “Leda samhällsutveckling”"));
	free(s), free(x), free(h);
	tpl_vars_set(v, "session.cancelled", "yes");
	render_shipped(t, "en", "cancel", v, &s, &x, &h);
	tpl_vars_set(v, "session.cancelled", "");
	assert_string_equal(s, "Cancelled: Leda samhällsutveckling, Thursday 20 February 2020");
	assert_non_null(strstr(x, "cancel the session “Leda samhällsutveckling”"));
	assert_non_null(strstr(x, "removes the session from your calendar"));
	free(s), free(x), free(h);

	render_shipped(t, "en", "deadline-reminder", v, &s, &x, &h);
	assert_string_equal(s, "Reminder: Sista anmälningsdag, fredag 13 december 2019");
	assert_non_null(strstr(x, "\nSista anmälningsdag: "));
	free(s), free(x), free(h);

	set_moved(v, "en");
	render_shipped(t, "en", "update", v, &s, &x, &h);
	assert_string_equal(s, "Changed: Leda samhällsutveckling, moved from 13 Feb 10:00 to "
			       "20 Feb 10:00, now at Långholmens konferens, Stockholm "
			       "(was Stadshuset, Malmö)");
	assert_non_null(strstr(x, "New time: Thursday 20 February 2020 at 10:00"));
	assert_non_null(strstr(x, "\nBefore: Thursday 13 February 2020 at 10:00"));
	assert_non_null(strstr(x, "\nNew place: Långholmens konferens, Stockholm\nBefore: Stadshuset, Malmö\n"));
	assert_non_null(strstr(h, "Before: <s>Stadshuset, Malmö</s>"));
	free(s), free(x), free(h);
	clear_moved(v);
	tpl_vars_free(v);
	tpl_free(t);
}

/* Optional values missing: the text still reads cleanly. */
static void test_shipped_sparse(void **state)
{
	struct templates *t = load_shipped();
	struct tpl_vars *v = tpl_vars_new();
	char *s, *x, *h;
	struct errlist errs = {0};

	(void)state;
	tpl_vars_set(v, "participant.name", "Anna Andersson");
	tpl_vars_set(v, "programme.name", "Programmet");
	assert_true(tpl_render(t, "sv", "en", "material", v, &s, &x, &h, &errs));
	assert_string_equal(s, "Material från Programmet");
	assert_non_null(strstr(x, "Här kommer material från Programmet.\n"));
	assert_null(strstr(x, "Tid:"));
	assert_null(strstr(x, "\n\n\n"));
	free(s), free(x), free(h);
	assert_true(tpl_render(t, "sv", "en", "invite", v, &s, &x, &h, &errs));
	assert_null(strstr(x, "Plats:")); /* no place given: no empty line for it */
	assert_null(strstr(h, "Plats:"));
	assert_null(strstr(x, "\n\n\n"));
	free(s), free(x), free(h);
	tpl_vars_free(v);
	tpl_free(t);
}

/* ---- the placeholder language ---- */

static void test_html_escaping(void **state)
{
	const char *hostile = "<script>alert(\"x\")</script> & 'y'";
	struct tpl_vars *v = tpl_vars_new();
	struct templates *t = load_shipped();
	struct errlist errs = {0};
	char *s, *x, *h;

	(void)state;
	tpl_vars_set(v, "participant.name", hostile);
	render_mem("Subject: Hej {{participant.name}}\n\nNamn: {{participant.name}}\n",
		   "<p title=\"{{participant.name}}\">{{ participant.name }}</p>\n", v, &s, &x, &h);
	assert_string_equal(s, "Hej <script>alert(\"x\")</script> & 'y'");
	assert_string_equal(x, "Namn: <script>alert(\"x\")</script> & 'y'\n");
	assert_string_equal(h, "<p title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
			       "&#39;y&#39;\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
			       "&amp; &#39;y&#39;</p>\n");
	free(s), free(x), free(h);

	/* Line breaks in a value keep their lines in HTML. */
	tpl_vars_set(v, "session.description", "Rad ett\nRad <två>");
	render_mem("Subject: x\n\n{{session.description}}\n", "<p>{{session.description}}</p>\n", v,
		   &s, &x, &h);
	assert_string_equal(x, "Rad ett\nRad <två>\n");
	assert_string_equal(h, "<p>Rad ett<br>\nRad &lt;två&gt;</p>\n");
	free(s), free(x), free(h);

	/* The shipped HTML too; its plain text keeps the value as it is. */
	assert_true(tpl_render(t, "en", "sv", "invite", v, &s, &x, &h, &errs));
	assert_null(strstr(h, "<script>"));
	assert_non_null(strstr(h, "&lt;script&gt;"));
	assert_non_null(strstr(x, hostile));
	free(s), free(x), free(h);
	tpl_vars_free(v);
	tpl_free(t);
}

static void test_no_reexpansion(void **state)
{
	struct tpl_vars *v = tpl_vars_new();
	char *s, *x, *h;

	(void)state;
	tpl_vars_set(v, "participant.name", "{{participant.email}} {{#sessions}}");
	tpl_vars_set(v, "participant.email", "secret@example.org");
	render_mem("Subject: {{participant.name}}\n\n[{{participant.name}}]\n",
		   "<p>{{participant.name}}</p>\n", v, &s, &x, &h);
	assert_string_equal(s, "{{participant.email}} {{#sessions}}");
	assert_string_equal(x, "[{{participant.email}} {{#sessions}}]\n");
	assert_string_equal(h, "<p>{{participant.email}} {{#sessions}}</p>\n");
	free(s), free(x), free(h);
	tpl_vars_free(v);
}

static void test_sections(void **state)
{
	struct tpl_vars *v = tpl_vars_new();
	struct tpl_vars *a, *b;
	char *s, *x, *h;

	(void)state;
	tpl_vars_set(v, "session.title", "outer title");
	tpl_vars_set(v, "session.location", "Outer place");
	a = tpl_vars_item(v, "sessions");
	tpl_vars_set(a, "session.title", "A");
	tpl_vars_set(a, "session.location", "Here");
	b = tpl_vars_item(v, "sessions");
	tpl_vars_set(b, "session.title", "B");
	tpl_vars_set(v, "session.description", "");
	/* Inner values first, then outer; empty values and absent lists hide
	 * {{#x}} and show {{^x}}; a set value shows {{#x}} once. */
	render_mem("Subject: {{#sessions}}{{session.title}}{{/sessions}}\n\n"
		   "{{#sessions}}[{{session.title}}@{{session.location}}]{{/sessions}}\n"
		   "{{session.title}}\n"
		   "{{#session.description}}desc{{/session.description}}"
		   "{{^session.description}}no desc{{/session.description}}\n"
		   "{{#attachments}}files{{/attachments}}{{^attachments}}no files{{/attachments}}\n"
		   "{{^sessions}}no sessions{{/sessions}}\n"
		   "{{#session.location}}at {{session.location}}{{/session.location}}\n",
		   NULL, v, &s, &x, &h);
	assert_string_equal(s, "AB");
	assert_string_equal(x, "[A@Here][B@Outer place]\nouter title\nno desc\nno files\n\nat Outer place\n");
	assert_null(h);
	free(s), free(x);
	tpl_vars_free(v);
}

static void test_standalone_lines(void **state)
{
	struct tpl_vars *v = tpl_vars_new();
	char *s, *x, *h;

	(void)state;
	tpl_vars_set(tpl_vars_item(v, "sessions"), "session.title", "one");
	tpl_vars_set(tpl_vars_item(v, "sessions"), "session.title", "two");
	render_mem("Subject: S\n\n"
		   "A\n"
		   "{{#sessions}}\n"
		   "- {{session.title}}\n"
		   "{{/sessions}}\n"
		   "B\n"
		   "  {{^attachments}}\t\n"
		   "none\n"
		   "  {{/attachments}}\n"
		   "{{#attachments}}\n"
		   "never\n"
		   "{{/attachments}}\n"
		   "C {{#sessions}}x{{/sessions}} D\n"
		   "{{! a note for template authors }}\n"
		   "E\n"
		   "{{#sessions}}\n"
		   "{{/sessions}}",
		   NULL, v, &s, &x, &h);
	assert_string_equal(x, "A\n- one\n- two\nB\nnone\nC xx D\nE\n");
	free(s), free(x);

	/* CRLF files read like LF files. */
	render_mem("Subject: S\r\n\r\nA\r\n{{#sessions}}\r\n{{session.title}}\r\n{{/sessions}}\r\n",
		   NULL, v, &s, &x, &h);
	assert_string_equal(s, "S");
	assert_string_equal(x, "A\none\ntwo\n");
	free(s), free(x);
	tpl_vars_free(v);
}

static void test_subject_is_one_line(void **state)
{
	struct tpl_vars *v = tpl_vars_new();
	char *s, *x, *h;

	(void)state;
	tpl_vars_set(v, "session.title", "Evil\r\nBcc: victim@example.org");
	render_mem("Subject:   Om {{session.title}}  \n\n", NULL, v, &s, &x, &h);
	assert_string_equal(s, "Om Evil  Bcc: victim@example.org");
	assert_string_equal(x, "");
	free(s), free(x);
	tpl_vars_free(v);
}

static void test_fallback(void **state)
{
	struct templates *t = load_shipped();
	struct errlist errs = {0};
	char *s, *x, *h;

	(void)state;
	assert_true(tpl_render(t, "fi", "sv", "cancel", NULL, &s, &x, &h, &errs));
	assert_true(strncmp(s, "Avbokat: ", 9) == 0);
	assert_non_null(strstr(x, "Hej !"));
	free(s), free(x), free(h);
	assert_true(tpl_has(t, "fi", "en", "cancel"));
	assert_false(tpl_has(t, "fi", "de", "cancel"));
	assert_false(tpl_render(t, "fi", "de", "cancel", NULL, &s, &x, &h, &errs));
	assert_null(s);
	assert_null(x);
	assert_null(h);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.items[0], "no template cancel in fi or de");
	errlist_free(&errs);
	tpl_free(t);
}

static void test_site_override(void **state)
{
	char *site = temp_dir();
	struct errlist errs = {0};
	struct templates *t;
	char *s, *x, *h;

	(void)state;
	write_file(site, "sv/invite.txt", "Subject: Lokal inbjudan: {{session.title}}\n\nLokal text.\n");
	write_file(site, "fi/invite.txt", "Subject: Kutsu\n\nTervetuloa.\n");
	write_file(site, "README", "not a language\n");
	write_file(site, "sv/notes.md", "ignored\n");
	t = tpl_load(SHIPPED, site, &errs);
	dump(&errs);
	assert_non_null(t);
	assert_int_equal(errs.n, 0);

	assert_true(tpl_render(t, "sv", "en", "invite", NULL, &s, &x, &h, &errs));
	assert_string_equal(s, "Lokal inbjudan:");
	assert_string_equal(x, "Lokal text.\n");
	assert_null(h); /* the site's message replaces the shipped one whole */
	free(s), free(x);
	assert_true(tpl_render(t, "fi", "en", "invite", NULL, &s, &x, &h, &errs));
	assert_string_equal(s, "Kutsu");
	free(s), free(x);
	assert_true(tpl_render(t, "en", "sv", "invite", NULL, &s, &x, &h, &errs));
	assert_true(strncmp(s, "Invitation: ", 12) == 0);
	assert_non_null(h);
	free(s), free(x), free(h);
	assert_true(tpl_render(t, "sv", "en", "cancel", NULL, &s, &x, &h, &errs));
	assert_true(strncmp(s, "Avbokat: ", 9) == 0);
	free(s), free(x), free(h);
	tpl_free(t);

	/* A missing site directory is no error; a missing shipped one is. */
	t = tpl_load(SHIPPED, "/nonexistent/kallad/templates", &errs);
	assert_non_null(t);
	assert_int_equal(errs.n, 0);
	tpl_free(t);
	assert_null(tpl_load("/nonexistent/kallad/shipped", site, &errs));
	assert_true(has_entry(&errs, "/nonexistent/kallad/shipped: ", "cannot read"));
	errlist_free(&errs);
	assert_true(remove_tree(site));
	free(site);
}

static void test_load_errors(void **state)
{
	char *site = temp_dir();
	char *path, *link;
	struct errlist errs = {0};

	(void)state;
	write_file(site, "sv/unknown.txt", "Subject: x\n\nHej\nHej {{participant.nme}}!\n");
	write_file(site, "sv/unclosed.txt", "Subject: x\n\nA\n{{#sessions}}\nB\n");
	write_file(site, "sv/nosubject.txt", "Hej\n\nText\n");
	write_file(site, "sv/badutf.txt", "Subject: x\n\nok\nbad \xff\xfe\n");
	write_file(site, "sv/mismatch.txt", "Subject: x\n\nok\n");
	write_file(site, "sv/mismatch.html", "<p>\n{{#sessions}}\n{{/attachments}}\n");
	write_file(site, "sv/subject-section.txt", "Subject: {{#sessions}}x\n\nok\n");
	write_file(site, "sv/noblank.txt", "Subject: x\nText {{participant.nam}}\n");
	write_file(site, "en/orphan.html", "<p>no txt</p>\n");
	write_file(site, "en/fine.txt", "Subject: fine\n\nFine.\n");
	path = xasprintf("%s/en/dangling.txt", site);
	assert_int_equal(symlink("/nonexistent/kallad/x.txt", path), 0);
	free(path);

	assert_null(tpl_load(SHIPPED, site, &errs));
	dump(&errs);
#define EXPECT(file, what)                                                                         \
	do {                                                                                       \
		link = xasprintf("%s/%s", site, file);                                             \
		assert_true(has_entry(&errs, link, what));                                         \
		free(link);                                                                        \
	} while (0)
	EXPECT("sv/unknown.txt:4: ", "unknown placeholder {{participant.nme}}");
	EXPECT("sv/unclosed.txt:4: ", "{{#sessions}} is not closed");
	EXPECT("sv/nosubject.txt:1: ", "missing Subject line");
	EXPECT("sv/badutf.txt:4: ", "invalid UTF-8");
	EXPECT("sv/mismatch.html:2: ", "{{#sessions}} is not closed");
	EXPECT("sv/mismatch.html:3: ", "{{/attachments}} closes no open section");
	EXPECT("sv/subject-section.txt:1: ", "{{#sessions}} is not closed");
	EXPECT("sv/noblank.txt:2: ", "expected a blank line");
	EXPECT("sv/noblank.txt:2: ", "unknown placeholder {{participant.nam}}");
	EXPECT("en/orphan.html: ", "no orphan.txt beside it");
	EXPECT("en/dangling.txt: ", "cannot read");
#undef EXPECT
	assert_int_equal(errs.n, 11);
	errlist_free(&errs);
	assert_true(remove_tree(site));
	free(site);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *txt, *want;
	} cases[] = {
		{"Subject: x\n\n{{sessions}}\n", "sv/t.txt:3: {{sessions}} is a list"},
		{"Subject: x\n\n{{#sessions}}\n{{/sessions}}\n{{/sessions}}\n",
		 "sv/t.txt:5: {{/sessions}} closes no open section"},
		{"Subject: x\n\nHej {{ participant.name\n", "sv/t.txt:3: \"{{\" without \"}}\""},
		{"Subject: x\n\n{{}}\n", "sv/t.txt:3: bad placeholder {{}}"},
		{"Subject: x\n\n{{{participant.name}}}\n", "sv/t.txt:3: bad placeholder"},
		{"Subject: x\n\n{{#sessions}}{{#sessions}}{{/sessions}}{{/sessions}}\n",
		 "sv/t.txt:3: section sessions is nested inside itself"},
		{"Subject: x\n\n{{#sessions}}\n{{^attachments}}\n{{/sessions}}\n",
		 "sv/t.txt:4: {{^attachments}} is not closed before {{/sessions}} on line 5"},
		{"Subject:\n\nx\n", "sv/t.txt:1: empty Subject line"},
		{"Subject: x\n\nnul\0here\n", NULL},
		{"Subject: x\n\nform\ffeed\n", "sv/t.txt:3: invalid UTF-8"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct errlist errs = {0};
		size_t len = strlen(cases[i].txt);

		if (!cases[i].want)
			len += 1 + strlen(cases[i].txt + len + 1); /* keep the NUL inside */
		assert_null(tpl_parse_mem("sv", "t", cases[i].txt, len, NULL, 0, &errs));
		dump(&errs);
		assert_true(errs.n >= 1);
		assert_true(has_entry(&errs, cases[i].want ? cases[i].want : "sv/t.txt:3: invalid UTF-8", NULL));
		errlist_free(&errs);
	}
}

static void test_known_names(void **state)
{
	size_t n = 0;
	bool sessions = false, attachment = false, cancelled = false, previous = false;

	(void)state;
	for (; tpl_known_names[n]; n++) {
		sessions |= strcmp(tpl_known_names[n], "sessions") == 0;
		attachment |= strcmp(tpl_known_names[n], "attachment.name") == 0;
		cancelled |= strcmp(tpl_known_names[n], "session.cancelled") == 0;
		previous |= strcmp(tpl_known_names[n], "previous.location") == 0;
	}
	assert_int_equal(n, 35);
	assert_true(sessions && attachment && cancelled && previous);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_load),
		cmocka_unit_test(test_shipped_generic),
		cmocka_unit_test(test_shipped_sv),
		cmocka_unit_test(test_shipped_en),
		cmocka_unit_test(test_shipped_sparse),
		cmocka_unit_test(test_html_escaping),
		cmocka_unit_test(test_no_reexpansion),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_standalone_lines),
		cmocka_unit_test(test_subject_is_one_line),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_site_override),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_known_names),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
