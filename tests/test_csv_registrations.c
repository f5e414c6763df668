/* test_csv_registrations.c: registrations from CSV files (daemon/
 * csv_registrations.c, daemon/reg_row.c) written as spreadsheets write
 * them, read with the real libcsv and iconv, and the last good state of a
 * participant whose row turns unusable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reg_row.h"
#include "registrations.h"
#include "testutil.h"
#include "tz.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

static int setup(void **state UNUSED)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kallad-csv-XXXXXX");
	if (!mkdtemp(tmpdir) || !tz_set("Europe/Stockholm"))
		return -1;
	return 0;
}

static int teardown(void **state UNUSED)
{
	return remove_tree(tmpdir) ? 0 : -1;
}

#define WRITE(name, lit) write_in(tmpdir, (name), (lit), sizeof(lit) - 1)

static struct config csv_config(char *path)
{
	return registrations_config("kallad.conf", path);
}

struct seen {
	char *emails[16];
	size_t n;
};

static void seen_one(const struct participant *p, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		s->emails[s->n] = xstrdup(p->email);
	s->n++;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n && i < 16; i++)
		free(s->emails[i]);
}

/* Quoted separators in the header do not count; short rows, a missing
 * final line break and blank lines are taken as they come. */
static void test_shapes(void **state UNUSED)
{
	char *path = WRITE("shapes.csv",
			   "\"email;x\",name,status,\"a;b;c\"\n"
			   "a@example.se,\"Lind, \"\"Ann\"\"\",registered\n"
			   "\n"
			   "b@example.se,Bo\n"
			   "c@example.se,Cia,invited,x");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	struct participant p;

	cfg.csv_columns = "email;x:email";
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 2);
	assert_true(reg_find(reg, "A@example.se", &p));
	assert_string_equal(p.name, "Lind, \"Ann\"");
	reg_participant_clear(&p);
	/* A blank line is no record, but a line of the file: a row is
	 * named by the line it starts on, as an editor shows it. */
	assert_true(has_entry(&warn, "shapes.csv: line 4 (b@example.se)", "unknown status \"NULL\""));
	assert_int_equal(reg->n_skipped_participants, 1);
	assert_true(reg_is_unreadable(reg, "B@EXAMPLE.SE"));
	assert_false(reg_is_unreadable(reg, "a@example.se"));
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* Windows-1252 with a byte that is no character there (0x81): the file
 * is read as it is, each name on its own. */
static void test_neither_encoding(void **state UNUSED)
{
	char *path = WRITE("mixed.csv", "email;name;status\r\n"
					"asa@example.se;\xc5sa \xd6" "berg;registered\r\n"
					"odd@example.se;Odd \x81;registered\r\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;

	dump(&warn);
	assert_non_null(reg);
	assert_true(has_entry(&warn, "mixed.csv: neither UTF-8 nor Windows-1252", NULL));
	assert_true(reg_find(reg, "asa@example.se", &p));
	assert_string_equal(p.name, "Åsa Öberg");
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "odd@example.se", &p));
	assert_string_equal(p.name, "");
	reg_participant_clear(&p);
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

static void test_unreadable_files(void **state UNUSED)
{
	char *empty = WRITE("empty.csv", "");
	char *missing = xasprintf("%s/missing.csv", tmpdir);
	struct config cfg = csv_config(empty);
	struct errlist warn = {0}, errs = {0};

	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "empty.csv: empty: no header row", NULL));
	cfg.registrations = missing;
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "missing.csv: cannot read", NULL));
	errlist_free(&warn);
	errlist_free(&errs);
	free(empty);
	free(missing);
}

/* A file that would lose rows read as it is: rejected as a whole, with
 * the line to look at. */
static void test_damaged_files(void **state UNUSED)
{
	/* A stray quote swallows the rest of the file; the line is where it
	 * opened, after a field over two lines. */
	char *path = WRITE("quote.csv", "email;name;organisation;status\n"
					"a@example.se;A;\"Region\nJämtland\";\"registered\n"
					"b@example.se;B;;registered\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	struct participant p;

	assert_null(reg_load(&cfg, &warn, &errs));
	dump(&errs);
	assert_true(has_entry(&errs, "quote.csv: line 3: a quote opened here is never closed", NULL));
	free(path);

	/* Caught half-written: the last line without its break, short. The
	 * rows before it are read; it may be anyone's, its address too. */
	path = WRITE("half.csv", "email;name;status\r\na@example.se;A;registered\r\nb@example.se");
	cfg = csv_config(path);
	reg = reg_load(&cfg, &warn, &errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 1);
	assert_true(has_entry(&warn, "half.csv: line 3 (b@example.se): the last row ends without a "
				     "line break after 1 of the header's 3 fields, without name, status",
			      "the row cannot be used"));
	assert_int_equal(reg->n_unaddressed, 1);
	assert_string_equal(reg->unaddressed[0], "line 3: a last row cut short");
	assert_false(reg_is_unreadable(reg, "b@example.se"));
	reg_free(reg);
	free(path);
	/* Its address whole (a separator after it): that participant keeps
	 * their last good state. */
	path = WRITE("half.csv", "email;name;status\r\na@example.se;A;registered\r\nb@example.se;");
	cfg = csv_config(path);
	reg = reg_load(&cfg, &warn, &errs);
	assert_non_null(reg);
	assert_true(reg_is_unreadable(reg, "b@example.se"));
	assert_int_equal(reg->n_unaddressed, 1);
	reg_free(reg);
	/* An absences file has no such wait: it is not read until whole. */
	cfg.csv_absences = WRITE("half-absences.csv", "email;session_uid\r\na@example.se;s1\r\n"
						      "a@example.se");
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "half-absences.csv: line 3: the last row ends without a line "
				     "break after 1 of the header's 2 fields", "not read until it is whole"));
	free(cfg.csv_absences);
	free(path);
	/* Whole, it is read without the break; a quote inside a field is
	 * the field's. */
	path = WRITE("half.csv", "email;name;status\r\na@example.se;Anna \"Annie\" B;registered\r\n"
				 "b@example.se;B;registered");
	cfg = csv_config(path);
	reg = reg_load(&cfg, &warn, &errs);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 2);
	assert_true(reg_find(reg, "a@example.se", &p));
	assert_string_equal(p.name, "Anna \"Annie\" B");
	reg_participant_clear(&p);
	reg_free(reg);
	free(path);

	/* A NUL in a Windows-1252 file: the rows after it are read; a row
	 * with one, in any cell, cannot be used and may be anyone's. */
	path = WRITE("nul.csv", "email;name;organisation;status;x\r\n"
				"a@example.se;A;G\xe4vle\0;registered\r\n"
				"b@example.se;B\0;G\xe4vle;registered\r\n"
				"\0\0\0\0\0\0\0\0\r\n"
				"c@example.se;C;G\xe4vle;registered;\0\r\n"
				"d@example.se;D;G\xe4vle;registered\r\n"
				"\0\0\0\0");
	cfg = csv_config(path);
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 1);
	assert_true(has_entry(&warn, "nul.csv: line 2 (a@example.se)", "a NUL byte in the row"));
	assert_true(has_entry(&warn, "nul.csv: line 3 (b@example.se)", "a NUL byte in the row"));
	assert_true(has_entry(&warn, "nul.csv: line 4 ()", "a NUL byte in the row"));
	assert_true(has_entry(&warn, "nul.csv: line 5 (c@example.se)", "a NUL byte in the row"));
	assert_true(has_entry(&warn, "nul.csv: line 7 ()", "a NUL byte in the row"));
	assert_true(reg_is_unreadable(reg, "b@example.se"));
	assert_int_equal(reg->n_unaddressed, 5);
	assert_string_equal(reg->unaddressed[2], "line 4: a row with a NUL byte");
	assert_true(reg_find(reg, "d@example.se", &p));
	assert_string_equal(p.organisation, "Gävle");
	reg_participant_clear(&p);
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* Dates: a day that does not exist is no date; one that cannot be read
 * is a warning, and the row is read without it. */
static void test_dates(void **state UNUSED)
{
	char *path = WRITE("dates.csv", "email,name,status,registered_at\n"
					"a@example.se,A,registered,2019-11-01\n"
					"b@example.se,B,registered,2019-02-30\n"
					"c@example.se,C,registered,2019-11-01 10:00\n"
					"d@example.se,D,registered,2019-11-01T10:00:00Z\n"
					"e@example.se,E,registered,2300-01-01\n"
					/* Unix times as text: digits alone, in 1970-2200. */
					"f@example.se,F,registered,1574233200\n"
					"g@example.se,G,registered, 0 \n"
					"h@example.se,H,registered,7289654400\n"
					"i@example.se,I,registered,99999999999999999999\n"
					"j@example.se,J,registered,-1\n"
					"k@example.se,K,registered,1574233200.5\n"
					"l@example.se,L,registered,7289654399\n"
					/* Excel's day number, a date as Swedes write it. */
					"m@example.se,M,registered,\"43773,38\"\n"
					"n@example.se,N,registered,04.11.2019\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;

	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 14);
	assert_int_equal(reg->n_skipped_participants, 0);
	assert_true(has_entry(&warn, "line 3 (b@example.se)", "registered_at \"2019-02-30\""));
	assert_true(has_entry(&warn, "line 3 (b@example.se)", "read without it"));
	assert_true(reg_find(reg, "b@example.se", &p));
	assert_int_equal(p.registered_at, 0);
	reg_participant_clear(&p);
	assert_true(has_entry(&warn, "line 6 (e@example.se)", "registered_at \"2300-01-01\""));
	assert_true(has_entry(&warn, "line 9 (h@example.se)", "registered_at \"7289654400\""));
	assert_true(has_entry(&warn, "line 10 (i@example.se)", "registered_at \"9999999999"));
	assert_true(has_entry(&warn, "line 11 (j@example.se)", "registered_at \"-1\""));
	assert_true(has_entry(&warn, "line 12 (k@example.se)", "or a Unix time"));
	assert_true(has_entry(&warn, "line 14 (m@example.se)", "registered_at \"43773,38\""));
	assert_true(has_entry(&warn, "line 15 (n@example.se)", "registered_at \"04.11.2019\""));
	assert_true(reg_find(reg, "f@example.se", &p));
	assert_int_equal(p.registered_at, 1574233200); /* 2019-11-20 07:00 UTC */
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "g@example.se", &p));
	assert_int_equal(p.registered_at, 0); /* 1970-01-01 00:00 UTC, the first instant */
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "l@example.se", &p));
	assert_int_equal(p.registered_at, 7289654399); /* 2200-12-31 23:59:59 UTC, the last */
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "a@example.se", &p));
	assert_int_equal(p.registered_at, 1572562800); /* 2019-11-01 00:00 CET */
	reg_participant_clear(&p);
	assert_true(reg_find(reg, "c@example.se", &p));
	assert_int_equal(p.registered_at, 1572598800); /* 10:00 CET */
	reg_participant_clear(&p);
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* A row is named by the line of the file it starts on: blank lines (and
 * lines of spaces), CRLF, a lone CR and line breaks inside quotes count. */
static void test_line_numbers(void **state UNUSED)
{
	char *path = WRITE("lines.csv",
			   "\r\n"
			   "email,name,organisation,status\r\n"
			   "\r\n"
			   "a@example.se,A,\"Region\r\nJämtland\r\nHärjedalen\",registered\r\n"
			   "   \r\n"
			   "b@example.se,B,,maybe\r\n"
			   "c@example.se,\"C\nC\",,nope\r"
			   "d@example.se,D,,perhaps\n"
			   "\n"
			   "a@example.se,A,\"Region\r\nJämtland\r\nHärjedalen\",registered");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;

	dump(&errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 1);
	assert_true(reg_find(reg, "a@example.se", &p));
	assert_string_equal(p.organisation, "Region\r\nJämtland\r\nHärjedalen");
	reg_participant_clear(&p);
	assert_true(has_entry(&warn, "lines.csv: line 8 (b@example.se)", "unknown status \"maybe\""));
	assert_true(has_entry(&warn, "lines.csv: line 9 (c@example.se)", "unknown status \"nope\""));
	assert_true(has_entry(&warn, "lines.csv: line 11 (d@example.se)", "\"perhaps\""));
	assert_true(has_entry(&warn, "lines.csv: line 13 (a@example.se)",
				"duplicate of line 4, skipped"));
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);

	/* The header's line, when it lacks a column. */
	path = WRITE("noname.csv", "\n\nemail,status\na@example.se,registered\n");
	cfg = csv_config(path);
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "noname.csv: line 3: the header row has no column for name",
				NULL));
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* A participant whose row turns unusable keeps their last good state:
 * reg_each and reg_find serve them, in address order. */
static void test_keep_last_good(void **state UNUSED)
{
	char *path = WRITE("people.csv", "email,name,status\n"
					 "a@example.se,A,registered\n"
					 "b@example.se,B,invited\n"
					 "c@example.se,C,registered\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *old = reg_load(&cfg, &warn, &errs), *reg;
	struct participant p;
	struct seen s = {0};

	assert_non_null(old);
	free(WRITE("people.csv", "email,name,status\n"
				 "a@example.se,A,registered\n"
				 "b@example.se,B,invitd\n"
				 "c@example.se,C,registered\n"
				 "d@example.se,,registered\n"));
	reg = reg_load(&cfg, &warn, &errs);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 2);
	reg_keep_last_good(reg, old, &warn);
	dump(&warn);
	/* d was never known: nothing to keep. */
	assert_int_equal(reg->n_held, 1);
	assert_true(has_entry(&warn, "b@example.se: the row cannot be used now",
				"keeping the participant's last good state (invited)"));
	assert_true(reg_find(reg, "b@example.se", &p));
	assert_int_equal(p.status, PS_INVITED);
	reg_participant_clear(&p);
	assert_false(reg_find(reg, "d@example.se", &p));
	assert_true(reg_each(reg, seen_one, NULL, &s));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.emails[0], "a@example.se");
	assert_string_equal(s.emails[1], "b@example.se");
	assert_string_equal(s.emails[2], "c@example.se");
	seen_free(&s);
	/* Without the programme before (a fresh start), nothing is kept. */
	reg_free(reg);
	reg = reg_load(&cfg, &warn, &errs);
	reg_keep_last_good(reg, NULL, &warn);
	assert_int_equal(reg->n_held, 0);
	assert_true(reg_is_unreadable(reg, "b@example.se"));
	reg_free(reg);
	reg_free(old);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* Addresses as people paste them: Unicode spaces around them (a no-break
 * space from Outlook), "Display Name <address>"; absences and attachments
 * alike. */
static void test_addresses(void **state UNUSED)
{
	char *path = WRITE("pasted.csv",
			   "email;name;status\n"
			   "a@example.se\xc2\xa0;A;registered\n"
			   "Person Sex <b@example.se>;B;registered\n"
			   "\"\"\"Lind, C\"\" \xe2\x80\xaf< c@example.se >\";C;registered\n"
			   "\xe2\x80\x8b\xe3\x80\x80" "d@example.se\t\xef\xbb\xbf;D;registered\n"
			   "e@exa mple.se;E;registered\n"
			   "<>;F;registered\n"
			   "\"G <g@example.se>, Kansli <k@example.se>\";G;registered\n"
			   "g@example.se <k@example.se>;G;registered\n"
			   "G <g@example.se> k@example.se;G;registered\n");
	char *abs = WRITE("pasted-absences.csv", "email,session_uid\n"
						 "A <a@example.se>,s1\n"
						 "\"B <b@example.se>, C <c@example.se>\",s1\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;

	cfg.csv_absences = abs;
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 4);
	for (const char *e = "a", *all = "abcd"; *e; e = ++all) {
		char addr[16];
		struct participant p;

		snprintf(addr, sizeof(addr), "%c@example.se", *e);
		assert_true(reg_find(reg, addr, &p));
		assert_string_equal(p.email, addr);
		reg_participant_clear(&p);
	}
	assert_true(has_entry(&warn, "pasted.csv: line 6 (e@exa mple.se)", "invalid e-mail address"));
	assert_true(has_entry(&warn, "pasted.csv: line 7 ()", "invalid e-mail address"));
	/* One mailbox or none: never the last of two. */
	assert_true(has_entry(&warn, "pasted.csv: line 8 (G <g@example.se>, Kansli <k@example.se>)",
			      "not one address"));
	assert_true(has_entry(&warn, "pasted.csv: line 9 (g@example.se <k@example.se>)",
			      "not one address"));
	assert_true(has_entry(&warn, "pasted.csv: line 10 (G <g@example.se> k@example.se)",
			      "not one address"));
	for (const char *e = "g", *all = "gk"; *e; e = ++all) {
		char addr[16];
		struct participant p;

		snprintf(addr, sizeof(addr), "%c@example.se", *e);
		assert_false(reg_find(reg, addr, &p));
	}
	/* Rows that may be anyone's: programme_each_removed waits for them. */
	assert_int_equal(reg->n_unaddressed, 5);
	assert_string_equal(reg->unaddressed[0], "line 6: no address kallad can read");
	assert_string_equal(reg->unaddressed[1], "line 7: no address kallad can read");
	assert_string_equal(reg->unaddressed[4], "line 10: no address kallad can read");
	assert_true(reg_is_absent(reg, "a@example.se", "s1"));
	assert_false(reg_is_absent(reg, "c@example.se", "s1"));
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
	free(abs);
}

/* [registrations] columns wins over a header that is a field's own name;
 * two columns that give one field are an error naming both. */
static void test_columns(void **state UNUSED)
{
	char *path = WRITE("forms.csv",
			   "ID;Email;Name;E-postadress;Fullständigt namn;Status;Anmälningsstatus\n"
			   "1;anonymous;;a@example.se;A;Completed;registered\n"
			   "2;me@example.se;Me;b@example.se;B;Completed;invited\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg;
	struct participant p;

	cfg.csv_columns = "E-postadress:email, Fullständigt namn:name, Anmälningsstatus:status";
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(warn.n, 0);
	assert_int_equal(reg->n_participants, 2);
	assert_true(reg_find(reg, "b@example.se", &p));
	assert_string_equal(p.name, "B");
	assert_int_equal(p.status, PS_INVITED);
	reg_participant_clear(&p);
	reg_free(reg);

	/* Two mapped to one field, two own names of one field. */
	cfg.csv_columns = "E-postadress:email, Email:email, Fullständigt namn:name";
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "forms.csv: line 1: columns 2 (Email) and 4 (E-postadress) "
				     "both give email", NULL));
	free(WRITE("forms.csv", "email,name,status,Name\na@example.se,A,registered,B\n"));
	cfg.csv_columns = NULL;
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "forms.csv: line 1: columns 2 (name) and 4 (Name) both give "
				     "name", NULL));
	/* Mapped to another field, a header gives that one alone. */
	free(WRITE("forms.csv", "email,name,Status,Anmälningsstatus\n"
				"a@example.se,A,Completed,registered\n"));
	cfg.csv_columns = "Status:role, Anmälningsstatus:status";
	reg = reg_load(&cfg, &warn, &errs);
	dump(&errs);
	assert_non_null(reg);
	assert_true(reg_find(reg, "a@example.se", &p));
	assert_int_equal(p.status, PS_REGISTERED);
	assert_string_equal(p.role, "Completed");
	reg_participant_clear(&p);
	reg_free(reg);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

/* Rows for one address that disagree on what kallad sends: both lines
 * named, neither used, whatever their order; rows that agree are one. */
static void test_rows_that_disagree(void **state UNUSED)
{
	char *path = WRITE("dups.csv", "email,name,status,registered_at\n"
				       "anna@x.se,Anna,registered,2019-11-01\n"
				       "bo@x.se,Bo,registered,2019-11-01\n"
				       "Anna@x.se,Anna,registered,2019-11-02\n"
				       "ANNA@x.se,Anna,cancelled,\n"
				       "BO@x.se,Bo,registered,\n"
				       "cia@x.se,Cia,invited,\n"
				       "CIA@x.se,Cia Ek,invited,\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *old, *reg = reg_load(&cfg, &warn, &errs);
	struct participant p;

	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 1);
	assert_true(reg_find(reg, "bo@x.se", &p));
	reg_participant_clear(&p);
	assert_false(reg_find(reg, "anna@x.se", &p));
	assert_true(reg_is_unreadable(reg, "anna@x.se"));
	assert_true(reg_is_unreadable(reg, "cia@x.se"));
	assert_int_equal(reg->n_unaddressed, 0);
	assert_true(has_entry(&warn, "dups.csv: line 4 (Anna@x.se): duplicate of line 2, skipped",
				NULL));
	assert_true(has_entry(&warn, "dups.csv: line 5 (ANNA@x.se) disagrees with line 2 (anna@x.se) "
				     "on status: neither row is used until they agree", NULL));
	assert_true(has_entry(&warn, "dups.csv: line 6 (BO@x.se): duplicate of line 3", NULL));
	assert_true(has_entry(&warn, "dups.csv: line 8 (CIA@x.se) disagrees with line 7 (cia@x.se) "
				     "on name", NULL));
	assert_int_equal(reg->n_skipped_participants, 6);
	/* Kallad knew Anna: she keeps her last good state. */
	free(WRITE("dups.csv", "email,name,status\nanna@x.se,Anna,registered\n"));
	old = reg_load(&cfg, &warn, &errs);
	free(WRITE("dups.csv", "email,name,status\nANNA@x.se,Anna,cancelled\n"
			       "anna@x.se,Anna,registered\n"));
	reg_free(reg);
	reg = reg_load(&cfg, &warn, &errs);
	reg_keep_last_good(reg, old, &warn);
	assert_true(reg_find(reg, "anna@x.se", &p));
	assert_int_equal(p.status, PS_REGISTERED);
	reg_participant_clear(&p);
	reg_free(reg);
	reg_free(old);
	errlist_free(&warn);
	errlist_free(&errs);
	free(path);
}

static void test_from_1252(void **state UNUSED)
{
	size_t len;
	char *s = reg_row_from_1252("\x80 \xe5\xe4\xf6 \x96", 7, NULL);

	assert_string_equal(s, "€ åäö –");
	free(s);
	assert_null(reg_row_from_1252("\x81", 1, NULL));
	/* A NUL is a character too: what follows it is not lost. */
	s = reg_row_from_1252("a\0\xe5", 3, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(s, "a\0\xc3\xa5", 4);
	free(s);
}

/* A stray quote at a cell's start runs on to the next quoted cell,
 * taking the rows between for text: that row cannot be used, and while
 * it is there nobody missing is gone (the swallowed may be anyone). A
 * cell over two lines that looks like no rows is read as it is. */
static void test_stray_quote(void **state UNUSED)
{
	char *path = WRITE("stray.csv", "email;name;role;status\r\n"
					"a@example.se;A;\"Region\r\nJämtland\";registered\r\n"
					"j@example.se;J;\"regionråd;registered\r\n"
					"s@example.se;S;\"ordförande; KS\";registered\r\n"
					"t@example.se;T;;registered\r\n");
	struct config cfg = csv_config(path);
	struct errlist warn = {0}, errs = {0};
	struct registrations *reg = reg_load(&cfg, &warn, &errs);

	dump(&warn);
	assert_non_null(reg);
	assert_int_equal(reg->n_participants, 2); /* a and t */
	assert_true(has_entry(&warn, "stray.csv: line 4 (j@example.se): a quote opened on line 4 "
				     "runs past a line break onto what look like rows",
			      "a stray quote may have swallowed rows: the row cannot be used"));
	assert_true(reg_is_unreadable(reg, "j@example.se"));
	assert_int_equal(reg->n_unaddressed, 1);
	assert_string_equal(reg->unaddressed[0],
			    "line 4: a stray quote may have swallowed rows");
	reg_free(reg);
	errlist_free(&warn);
	free(path);

	/* In the header, or an absences file: no row can wait; not read. */
	path = WRITE("stray.csv", "email;\"name;status\r\na@example.se;\"A\";registered\r\n");
	cfg = csv_config(path);
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "stray.csv: line 1: a quote opened here runs past a line break",
			      "the file is not read"));
	free(path);
	path = WRITE("stray.csv", "email;name;status\r\na@example.se;A;registered\r\n");
	cfg = csv_config(path);
	cfg.csv_absences = WRITE("stray-absences.csv", "email;session_uid\r\n"
						       "a@example.se;\"s1\r\na@example.se;\"s2\"\r\n");
	assert_null(reg_load(&cfg, &warn, &errs));
	assert_true(has_entry(&errs, "stray-absences.csv: line 2: a quote opened here runs past",
			      "the file is not read"));
	free(cfg.csv_absences);
	free(path);
	errlist_free(&warn);
	errlist_free(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_neither_encoding),
		cmocka_unit_test(test_unreadable_files),
		cmocka_unit_test(test_damaged_files),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_line_numbers),
		cmocka_unit_test(test_keep_last_good),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_rows_that_disagree),
		cmocka_unit_test(test_from_1252),
		cmocka_unit_test(test_stray_quote),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
