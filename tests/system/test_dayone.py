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
                body = parse(p.stdout.encode()).get_body(("plain",)).get_content()
                self.assertTrue(words in " ".join(body.split()), body)
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
        self.prog.sql("INSERT INTO attachments VALUES(?, 'material', ?)", ANNA,
                      "material/" + self.NAME)
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


if __name__ == "__main__":
    main()
