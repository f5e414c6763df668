#!/usr/bin/env python3
"""An administrator's day one (issue 13), through the real binary: short
handles for sessions and deadlines, --send-now --all reaching the
registered unless --status says otherwise, attachment names every reader
shows, --check naming what sending would trip over, generic shipped
templates, an update that says what moved, and log lines in words."""

import os
import re
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import SOURCE, KalladCase, check_messages, main, parse  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
ANNA = "anna.berglund@gavle.example.se"
UID2 = "styra-leda-2020-2@example.org"


ASSIGNMENT = """BEGIN:VTODO\r
UID:hemuppgift-2020@example.org\r
DTSTAMP:20191001T080000Z\r
DUE;TZID=Europe/Stockholm:20200301T120000\r
SUMMARY:Inlämning av hemuppgift\r
DESCRIPTION:Skicka in din uppgift till programledningen.\r
CATEGORIES:assignment\r
END:VTODO\r
"""


def add_assignment(prog):
    """A second deadline in the example calendar: an assignment, not a
    registration."""
    path = os.path.join(prog.dir, "programme.ics")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    assert "END:VCALENDAR" in text
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text.replace("END:VCALENDAR", ASSIGNMENT + "END:VCALENDAR"))


def body(msg, kind="plain"):
    """The text of a part, with the wire's CRLF read as line ends."""
    return msg.get_body((kind,)).get_content().replace("\r\n", "\n")


def subject(raw):
    return str(parse(raw)["Subject"])


class Handles(KalladCase):
    def preview(self, *args, check=0):
        return self.prog.run("--preview", "invite", "--to", ANNA, "--now", NOW, *args, check=check)

    def test_position_prefix_and_title(self):
        for handle in ("2", UID2, "styra-leda-2020-2", "STYRNING", "styrning och risker"):
            with self.subTest(handle=handle):
                p = self.preview("--session", handle)
                self.assertIn("Styrning och risker", subject(p.stdout.encode()))
        p = self.preview("--session", "3")
        self.assertIn("Dialog och samspel", subject(p.stdout.encode()))

    def test_case_folds_swedish_letters(self):
        self.prog.edit_conf("calendar      = programme.ics", "calendar      = cal.ics")
        with open(os.path.join(self.prog.dir, "programme.ics"), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(self.prog.dir, "cal.ics"), "w", encoding="utf-8") as f:
            f.write(text.replace("SUMMARY:Dialog och samspel", "SUMMARY:Ärenden och samspel"))
        p = self.preview("--session", "äREND")
        self.assertIn("Ärenden och samspel", subject(p.stdout.encode()))

    def test_ambiguous_lists_candidates(self):
        p = self.preview("--session", "styra-leda", check=1)
        self.assertIn('"styra-leda" matches 3 sessions', p.stderr)
        for n, title in ((1, "Leda samhällsutveckling"), (2, "Styrning och risker"),
                         (3, "Dialog och samspel")):
            self.assertRegex(p.stderr, rf"\n  {n}  styra-leda-2020-{n}@example.org  {title}")
        self.assertEqual(p.stdout, "")

    def test_unknown_and_out_of_range(self):
        p = self.preview("--session", "nothing-like-it", check=1)
        self.assertIn('no session matches "nothing-like-it"', p.stderr)
        self.assertIn(UID2, p.stderr)
        p = self.preview("--session", "4", check=1)
        self.assertIn("no session 4: the calendar has 3 sessions", p.stderr)

    def test_deadline_by_position_and_prefix(self):
        add_assignment(self.prog)
        for handle, words in (("1", "Anmälan gäller alla tre"), ("anmalan", "Anmälan gäller alla tre"),
                              ("sista anm", "Anmälan gäller alla tre"), ("2", "Skicka in din uppgift"),
                              ("INLÄMN", "Skicka in din uppgift"), ("hemuppgift-2020", "Skicka in din uppgift")):
            with self.subTest(handle=handle):
                p = self.prog.run("--preview", "deadline-reminder", "--to", "henrik.dahl@karlstad.example.se",
                                  "--deadline", handle, "--now", NOW, check=0)
                text = body(parse(p.stdout.encode()))
                self.assertTrue(words in " ".join(text.split()), text)
        p = self.prog.run("--preview", "deadline-reminder", "--to", ANNA, "--deadline", "3",
                          "--now", NOW, check=1)
        self.assertIn("no deadline 3: the calendar has 2 deadlines", p.stderr)

    def test_send_now_by_handle_records_the_full_uid(self):
        self.prog.run("--send-now", "session-reminder", "--session", "dialog", "--to", ANNA,
                      "--now", NOW, check=0)
        con = sqlite3.connect(self.prog.state)
        rows = con.execute("SELECT target FROM deliveries WHERE message = 'session-reminder'").fetchall()
        con.close()
        self.assertEqual(rows, [("styra-leda-2020-3@example.org",)])


class SendAll(KalladCase):
    def statuses(self):
        con = sqlite3.connect(self.prog.db)
        rows = dict(con.execute("SELECT email, status FROM participants").fetchall())
        con.close()
        return rows

    def sent_to(self):
        con = sqlite3.connect(self.prog.state)
        rows = {r[0] for r in con.execute(
            "SELECT email FROM deliveries WHERE message = 'deadline-reminder' AND state = 1")}
        con.close()
        return rows

    def test_all_reaches_the_registered_only(self):
        st = self.statuses()
        p = self.prog.run("--send-now", "deadline-reminder", "--all", "--now", NOW, check=0)
        registered = {e for e, s in st.items() if s == "registered"}
        self.assertTrue(registered)
        self.assertEqual(self.sent_to(), registered, p.stderr)
        self.assertEqual(len(self.prog.outbox_messages()), len(registered))

    def test_status_chooses_others(self):
        st = self.statuses()
        self.prog.run("--send-now", "deadline-reminder", "--all", "--status", "invited,waitlisted",
                      "--now", NOW, check=0)
        want = {e for e, s in st.items() if s in ("invited", "waitlisted")}
        self.assertEqual(len(want), 3)
        self.assertEqual(self.sent_to(), want)

    def test_status_all_still_spares_the_cancelled(self):
        st = self.statuses()
        p = self.prog.run("--send-now", "deadline-reminder", "--all", "--status", "all",
                          "--dry-run", "--now", NOW, check=0)
        got = set(re.findall(r"would send deadline-reminder to (\S+)", p.stdout))
        self.assertEqual(got, {e for e, s in st.items() if s != "cancelled"})

    def test_bad_status_is_a_usage_error(self):
        for arg, words in (("cancelled", "cancelled participants never get mail"),
                           ("registred", 'unknown status "registred"')):
            p = self.prog.run("--send-now", "deadline-reminder", "--all", "--status", arg,
                              "--now", NOW, check=64)
            self.assertIn(words, p.stderr)
        p = self.prog.run("--send-now", "deadline-reminder", "--all", "--status", "--dry-run",
                          check=64)
        self.assertIn("--status with --send-now needs STATUS[,...]", p.stderr)
        p = self.prog.run("--send-now", "deadline-reminder", "--to", ANNA, "--status", "invited",
                          check=64)
        self.assertIn("--status STATUS[,...] goes with --send-now --all", p.stderr)
        self.assertEqual(self.prog.outbox_messages(), [])

    def test_status_alone_is_still_the_ledger(self):
        p = self.prog.run("--status", check=0)
        self.assertRegex(p.stdout, r"(?m)^sent\t0$")


class AttachmentNames(KalladCase):
    NAME = "Basfakta Västerås – region Jämtland Härjedalen, en mycket lång titel för tester.pdf"

    def test_rfc2047_name_beside_rfc2231_filename(self):
        shutil.copy(os.path.join(self.prog.dir, "material", "basfakta-vasteras.pdf"),
                    os.path.join(self.prog.dir, "material", self.NAME))
        self.prog.sql("INSERT INTO attachments VALUES(?, 'material', ?)", ANNA, self.NAME)
        out = os.path.join(self.tmpdir, "material.eml")
        self.prog.run("--preview", "material", "--to", ANNA, "--now", NOW, "--out", out, check=0)
        with open(out, "rb") as f:
            raw = f.read()
        msg = parse(raw)
        files = [p for p in msg.iter_attachments() if p.get_filename() == self.NAME]
        self.assertEqual(len(files), 1)
        part = files[0]
        # Readers that take the Content-Type name (mutt, MHonArc) get it whole.
        self.assertEqual(part["Content-Type"].params["name"], self.NAME)
        raw_ct = dict(part.raw_items())["Content-Type"]
        self.assertIn("=?UTF-8?B?", raw_ct)
        self.assertIn("filename*0*=UTF-8''", dict(part.raw_items())["Content-Disposition"])
        with open(os.path.join(self.prog.dir, "material", "basfakta-vasteras.pdf"), "rb") as f:
            self.assertEqual(part.get_payload(decode=True), f.read())
        check_messages(self, [out])


class Check(KalladCase):
    def test_language_without_template_warns(self):
        self.prog.sql("UPDATE participants SET language = 'de' WHERE email = ?", ANNA)
        self.prog.sql("UPDATE participants SET language = 'fi' WHERE email = ?",
                      "henrik.dahl@karlstad.example.se")
        p = self.prog.run("--check", check=0)  # a warning: they get the programme's language
        for message in ("invite", "update", "cancel", "session-reminder", "material"):
            self.assertIn(f"1 participant with language de ({ANNA}) will get {message}, which "
                          f"has no template in de: it goes in sv", p.stderr)
        # Henrik is invited: of all messages, only the deadline reminder reaches him.
        self.assertIn("1 participant with language fi (henrik.dahl@karlstad.example.se) will get "
                      "deadline-reminder, which has no template in fi", p.stderr)
        self.assertNotRegex(p.stderr, r"language fi .* will get (invite|update|material)")
        # English has every message: nobody speaking it is named.
        self.assertNotIn("language en", p.stderr)
        self.assertIn("configuration OK", p.stdout)

    def test_missing_or_unreadable_attachment_fails(self):
        material = os.path.join(self.prog.dir, "material")
        os.unlink(os.path.join(material, "basfakta-lund.pdf"))
        os.unlink(os.path.join(material, "basfakta-umea.pdf"))
        os.mkdir(os.path.join(material, "basfakta-umea.pdf"))  # opens, but is no file
        # A cancelled participant's file is never sent: not a problem.
        self.prog.sql("INSERT INTO attachments VALUES('helena.strand@gotland.example.se', "
                      "'material', 'saknas.pdf')")
        p = self.prog.run("--check", check=1)
        self.assertIn('attachments row (maria.ekstrom@lund.example.se, material): path '
                      '"basfakta-lund.pdf"', p.stderr)
        self.assertIn("No such file", p.stderr)
        self.assertIn('path "basfakta-umea.pdf" is not a regular file', p.stderr)
        self.assertNotIn("saknas.pdf", p.stderr)
        self.assertIn("configuration OK, but 2 attachments are missing or unreadable", p.stdout)
        # What --check named is what sending trips over; the rest go.
        s = self.prog.run("--send-now", "material", "--all", "--now", NOW)
        self.assertEqual(s.returncode, 1)
        self.assertEqual(len(self.prog.outbox_messages()), 8, s.stderr)

    def test_all_fine_is_ok(self):
        p = self.prog.run("--check", check=0)
        self.assertTrue(p.stdout.rstrip().endswith("configuration OK"), p.stdout)
        self.assertNotIn("warning", p.stderr)


class Templates(KalladCase):
    def use_shipped(self):
        self.prog.edit_conf("templates     = templates", "# templates: the shipped ones")

    def test_shipped_texts_carry_no_programme_facts(self):
        self.use_shipped()
        self.prog.sql("UPDATE participants SET language = 'en' WHERE email = ?", ANNA)
        out = os.path.join(self.tmpdir, "out")
        os.mkdir(out)
        files = []
        for message, extra in (("invite", ()), ("session-reminder", ()), ("update", ()),
                               ("cancel", ()), ("material", ()),
                               ("deadline-reminder", ("--deadline", "1"))):
            for who in (ANNA, "maria.ekstrom@lund.example.se"):
                path = os.path.join(out, f"{message}-{who}.eml")
                # --force: an update or cancel of nothing that changed is refused otherwise.
                self.prog.run("--preview", message, "--to", who, "--now", NOW, "--out", path,
                              "--force", *extra, check=0)
                files.append(path)
        for path in files:
            msg = parse(path)
            text = body(msg) + body(msg, "html")
            for fact in ("2023", "moms", "VAT", "24 000", "24\u00a0000", "röda tråden",
                         "red thread", "förtroendevald", "elected", "Registration closes"):
                self.assertNotIn(fact, text, path)
        check_messages(self, files)

    def test_example_keeps_its_own_texts(self):
        p = self.prog.run("--preview", "invite", "--to", ANNA, "--now", NOW, check=0)
        text = body(parse(p.stdout.encode()))
        self.assertIn("24\u00a0000\u00a0kr", text)

    def test_deadline_reminder_speaks_of_its_own_deadline(self):
        self.use_shipped()
        add_assignment(self.prog)
        self.prog.run("--send-now", "deadline-reminder", "--deadline", "inlämning", "--all",
                      "--now", NOW, check=0)
        files = self.prog.outbox_messages()
        self.assertEqual(len(files), 10)
        by_lang = {}
        for f in files:
            msg = parse(f)
            by_lang[str(msg["To"].addresses[0].addr_spec)] = msg
        sv = by_lang[ANNA]
        en = by_lang["sofia.nyberg@regionuppsala.example.se"]
        self.assertEqual(str(sv["Subject"]), "Påminnelse: Inlämning av hemuppgift, söndag 1 mars 2020")
        self.assertEqual(str(en["Subject"]), "Reminder: Inlämning av hemuppgift, Sunday 1 March 2020")
        for msg in (sv, en):
            text = body(msg)
            self.assertIn("Inlämning av hemuppgift: ", text)
            self.assertNotIn("nmälan", text)
            self.assertNotIn("egistration", text)
            self.assertIn("<strong>Inlämning av hemuppgift</strong>",
                          body(msg, "html"))
        check_messages(self, files)


class UpdateNamesTheChange(KalladCase):
    MOVED = ("DTSTART;TZID=Europe/Stockholm:20200220T100000", "DTSTART;TZID=Europe/Stockholm:20200227T130000")

    def move(self, where=None):
        path = os.path.join(self.prog.dir, "programme.ics")
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        for old, new in ((self.MOVED[0], self.MOVED[1]),
                         ("DTEND;TZID=Europe/Stockholm:20200221T130000",
                          "DTEND;TZID=Europe/Stockholm:20200228T160000")):
            self.assertIn(old, text)
            text = text.replace(old, new)
        if where:
            old_loc = re.search(r"LOCATION:[^\r]*(\r\n [^\r]*)*", text).group(0)
            text = text.replace(old_loc, "LOCATION:" + where, 1)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    def test_subject_text_and_html_name_old_and_new(self):
        self.prog.run("--once", "--now", NOW, check=0)  # the invites
        invites = set(self.prog.outbox_messages())
        self.move(where="Stadshuset\\, Malmö")
        p = self.prog.run("--once", "--now", "2019-11-21T08:00:00+01:00", check=0)
        # The log names the session by title and (new) time, the UID only with --verbose.
        self.assertIn('session "Leda samhällsutveckling" (27 Feb 13:00) changed: SEQUENCE 1',
                      p.stderr)
        self.assertNotIn("styra-leda-2020-1@example.org", p.stderr)
        updates = [f for f in self.prog.outbox_messages() if f not in invites]
        self.assertTrue(updates)
        msgs = {parse(f)["To"].addresses[0].addr_spec: parse(f) for f in updates}
        sv, en = msgs[ANNA], msgs["sofia.nyberg@regionuppsala.example.se"]
        self.assertEqual(str(sv["Subject"]),
                         "Ändrat: Leda samhällsutveckling, flyttat från 20 feb 10.00 till "
                         "27 feb 13.00, ny plats Stadshuset, Malmö (förut Långholmens konferens, "
                         "Långholmsmuren 20, Stockholm)")
        self.assertTrue(str(en["Subject"]).startswith(
            "Changed: Leda samhällsutveckling, moved from 20 Feb 10:00 to 27 Feb 13:00, "
            "now at Stadshuset, Malmö (was Långholmens konferens"), str(en["Subject"]))
        text = body(sv)
        self.assertIn("Ny tid: torsdag 27 februari 2020 kl. 13.00 – fredag 28 februari kl. 16.00\n"
                      "Tidigare: torsdag 20 februari 2020 kl. 10.00 – fredag 21 februari kl. 13.00\n",
                      text)
        self.assertIn("Ny plats: Stadshuset, Malmö\nTidigare: Långholmens konferens", text)
        html = body(sv, "html")
        self.assertIn("Tidigare: <s>torsdag 20 februari 2020 kl. 10.00", html)
        self.assertIn("Tidigare: <s>Långholmens konferens", html)
        check_messages(self, updates)

    def test_only_the_time_moved(self):
        self.prog.run("--once", "--now", NOW, check=0)
        self.move()
        p = self.prog.run("--preview", "update", "--to", ANNA, "--session", "1",
                          "--now", "2019-11-21T08:00:00+01:00", check=0)
        msg = parse(p.stdout.encode())
        self.assertEqual(str(msg["Subject"]), "Ändrat: Leda samhällsutveckling, flyttat från "
                         "20 feb 10.00 till 27 feb 13.00")
        text = body(msg)
        self.assertIn("Tidigare: torsdag 20 februari 2020", text)
        self.assertIn("Plats: Långholmens konferens", text)
        self.assertNotIn("Ny plats", text)


class LogLines(KalladCase):
    LINE = ('invite to Anna Berglund <anna.berglund@gavle.example.se> for '
            '"Leda samhällsutveckling" (20 Feb 10:00): sent: written to ')

    def test_log_names_message_person_session_and_date(self):
        p = self.prog.run("--once", "--now", NOW, check=0)
        self.assertIn("kallad: " + self.LINE, p.stderr)
        # No key in the log an administrator reads.
        self.assertNotIn("|", p.stderr)

    def test_skips_are_named_too(self):
        p = self.prog.run("--once", "--now", "2020-01-23T09:00:00+01:00", check=0)
        self.assertIn('deadline-reminder to Henrik Dahl <henrik.dahl@karlstad.example.se> for '
                      '"Sista anmälningsdag" (Friday 13 December 2019) by rule '
                      'registration-deadline (7d before): skipped: ', p.stderr)
        self.assertNotIn("|", p.stderr)

    def test_verbose_adds_the_key(self):
        p = self.prog.run("--once", "--now", NOW, "--verbose", check=0)
        self.assertRegex(p.stderr, r'for "Leda samhällsutveckling" \(20 Feb 10:00\) '
                         r'\[invite\|anna\.berglund@gavle\.example\.se\|'
                         r'styra-leda-2020-1@example\.org\|[^]]*\]: sent: ')

    def test_test_copy_names_where_it_went(self):
        p = self.prog.run("--send-now", "session-reminder", "--session", "2", "--to", ANNA,
                          "--test-to", "granskare@example.org", "--now", NOW, check=0)
        self.assertIn('session-reminder to Anna Berglund <anna.berglund@gavle.example.se> for '
                      '"Styrning och risker" (12 Mar 10:00): sent to granskare@example.org: ',
                      p.stderr)


if __name__ == "__main__":
    main()
