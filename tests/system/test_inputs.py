"""Inputs as organisers have them, through the real binary: calendars
exported from Outlook and Google Calendar (tests/system/data), and
registrations in CSV files as spreadsheets write them; rows that can be
used are used, a session or participant kallad knew keeps its last good
copy when it turns unreadable."""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, KalladCase, main, parse  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
BEFORE_DEADLINE = "2019-11-20T08:00:00+01:00"
ANNA = "anna.berglund@gavle.example.se"
HENRIK = "henrik.dahl@karlstad.example.se"
S1 = "styra-leda-2020-1@example.org"
OUTLOOK_S1 = ("040000008200E00074C5B7101A82E00800000000B0A3F2C54978D501000000000000000010"
              "000000E1C94F0D3B6A2C47A1B5C0D2E3F40511")
OUTLOOK_DEADLINE = ("040000008200E00074C5B7101A82E00800000000B0A3F2C54978D50100000000000000"
                    "0010000000E1C94F0D3B6A2C47A1B5C0D2E3F40599")
OUTLOOK_WEEKLY = ("040000008200E00074C5B7101A82E00800000000C1D2E3F4A5B6C70100000000000000"
                  "0010000000AABBCCDDEEFF00112233445566778899")


def plan_lines(out):
    return [line.split("\t") for line in out.splitlines() if line]


def is_cancel(msg):
    """True if a text/calendar part of msg has METHOD:CANCEL (decoded)."""
    for part in msg.walk():
        if part.get_content_type() == "text/calendar" and "METHOD:CANCEL" in part.get_content():
            return True
        if part.get_filename() == "invite.ics" and b"METHOD:CANCEL" in part.get_content():
            return True
    return False


def to_header(msg):
    a = msg["To"].addresses[0]
    return a.display_name, a.addr_spec


class Inputs(KalladCase):
    def use_calendar(self, name):
        shutil.copy(os.path.join(DATA, name), os.path.join(self.prog.dir, name))
        self.prog.edit_conf("calendar      = programme.ics", f"calendar      = {name}")

    def use_csv(self, name, data, columns=None, extra=""):
        with open(os.path.join(self.prog.dir, name), "wb") as f:
            f.write(data)
        self.prog.edit_conf("registrations = registrations.db", f"registrations = {name}")
        conf = "[registrations]\n"
        if columns:
            conf += f"columns = {columns}\n"
        self.prog.append_conf(conf + extra)

    def sent(self):
        return [parse(f) for f in self.prog.outbox_messages()]


class OutlookTest(Inputs):
    def test_outlook_export(self):
        self.use_calendar("outlook-export.ics")
        # Outlook's category for the deadline is "Deadline".
        self.prog.edit_conf("category = registration", "category = deadline")
        p = self.prog.run("--check", check=0)
        # Three sessions in "W. Europe Standard Time", the all-day deadline,
        # and the dentist (no sessions-category yet).
        self.assertIn("4 sessions, 1 deadlines", p.stdout)
        self.assertIn("2020-02-20T10:00:00+01:00 – 2020-02-21T13:00:00+01:00  " + OUTLOOK_S1,
                      p.stdout)
        self.assertIn("2020-04-23T10:00:00+02:00 – 2020-04-24T13:00:00+02:00", p.stdout)
        self.assertIn("deadline 2019-12-13 (the whole day)  " + OUTLOOK_DEADLINE, p.stdout)
        # The weekly meeting and its moved occurrence: skipped, each named.
        self.assertRegex(p.stderr, r"outlook-export\.ics:110: VEVENT \"Veckomöte programgruppen\": "
                         r"RRULE: recurring .*; skipped \(UID " + OUTLOOK_WEEKLY + r"\)")
        self.assertRegex(p.stderr, r"outlook-export\.ics:130: .*RECURRENCE-ID: .*skipped \(UID "
                         + OUTLOOK_WEEKLY + r"\)")
        self.assertEqual(len([x for x in p.stderr.splitlines() if "outlook-export" in x]), 2,
                         p.stderr)
        # The example's two absences name the example calendar's sessions,
        # which this one does not have: each row named, and counted.
        self.assertEqual(len(re.findall(r"registrations\.db: absences row \d+ \(.*\): no "
                                        r"session in the calendar has the UID", p.stderr)), 2)
        self.assertEqual(p.stdout.splitlines()[-1], "configuration OK; 4 warnings, 0 rows skipped")

        # Limited to the programme's category, the dentist is none of ours.
        self.prog.edit_conf("timezone      = Europe/Stockholm",
                            "sessions-category = Styra och leda\ntimezone = Europe/Stockholm")
        p = self.prog.run("--check", check=0)
        self.assertIn("3 sessions, 1 deadlines, 1 other events (not in sessions-category)",
                      p.stdout)
        self.assertNotIn("Tandläkare", p.stdout)

        plan = plan_lines(self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0).stdout)
        self.assertIn([BEFORE_DEADLINE, "invite", ANNA, OUTLOOK_S1, "-"], plan)
        # The all-day deadline ends with 13 December: 14 days before, at 09:00.
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK,
                       OUTLOOK_DEADLINE, "registration-deadline"], plan)


class GoogleTest(Inputs):
    def test_google_export(self):
        self.use_calendar("google-export.ics")
        # Google exports no categories: the deadline is named in kallad.conf.
        self.prog.append_conf("[deadline anmalan]\ndue = 2019-12-13\ntitle = Sista anmälningsdag\n"
                              "category = registration")
        p = self.prog.run("--check", check=0)
        self.assertIn("3 sessions, 1 deadlines", p.stdout)
        # Empty LOCATION: and DESCRIPTION: (Google's) are absent, not errors;
        # a UTC session is a session.
        self.assertIn("2020-03-12T10:00:00+01:00 – 2020-03-13T13:00:00+01:00  "
                      "7h3k9m2n4p6q8r0s1t3u5v7w9x@google.com  Styrning och risker", p.stdout)
        self.assertIn("deadline 2019-12-13 (the whole day)  anmalan  Sista anmälningsdag", p.stdout)
        self.assertRegex(p.stderr, r"google-export\.ics:63: .*RRULE: .*skipped \(UID "
                         r"0a1b2c3d4e5f6g7h8i9j0k1l2m@google\.com\)")
        self.assertRegex(p.stderr, r"google-export\.ics:81: VEVENT \"Sista anmälningsdag\": DTSTART "
                         r"is a date without a time .*\[deadline <its UID>\].*skipped \(UID "
                         r"5r6s7t8u9v0w1x2y3z4a5b6c7d@google\.com\)")
        plan = plan_lines(self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0).stdout)
        self.assertIn([BEFORE_DEADLINE, "invite", ANNA, "4q1v2hu6k0d7s0s8m3p9e2r1tb@google.com",
                       "-"], plan)
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK, "anmalan",
                       "registration-deadline"], plan)
        # --deadline NAME names it.
        p = self.prog.run("--preview", "deadline-reminder", "--to", HENRIK, "--deadline",
                          "anmalan", "--now", BEFORE_DEADLINE, check=0)
        self.assertIn("Sista anm", p.stdout)

    def test_deadline_section_errors(self):
        # A section without due names the calendar's event of its UID
        # (test_calendar_input.py); a due that is no date is an error.
        self.prog.append_conf("[deadline anmalan]\ndue = 2019-13-45\n[deadline x]\ntitle = X")
        p = self.prog.run("--check", check=78)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: due: \"2019-13-45\" is not YYYY-MM-DD")
        self.assertNotIn("[deadline x]", p.stderr)


class LastGoodTest(Inputs):
    def break_session_1(self, how):
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8", newline="") as f:
            text = f.read()
        if how == "unreadable":
            new = re.sub(r"DTEND;TZID=Europe/Stockholm:20200221T130000\r?\n", "", text, count=1)
        else:  # removed
            new = re.sub(r"BEGIN:VEVENT\r?\nUID:styra-leda-2020-1@example\.org.*?END:VEVENT\r?\n",
                         "", text, count=1, flags=re.S)
        self.assertNotEqual(new, text)
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(new)

    def cancels_after_break(self, how):
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        before = set(self.prog.outbox_messages())
        self.assertTrue(before)
        self.break_session_1(how)
        p = self.prog.run("--once", "--now", "2019-11-21T10:00:00+01:00", check=0)
        new = [parse(f) for f in set(self.prog.outbox_messages()) - before]
        return p, [m for m in new if is_cancel(m)]

    def test_session_that_turns_unreadable_is_not_cancelled(self):
        p, cancels = self.cancels_after_break("unreadable")
        self.assertEqual(cancels, [])
        self.assertIn("no DTEND; skipped (UID styra-leda-2020-1@example.org)", p.stderr)
        self.assertIn("keeping the last good copy of the session \"Leda samhällsutveckling\"",
                      p.stderr)
        c = self.prog.run("--check", check=0)
        self.assertIn(S1 + "  Leda samhällsutveckling  (unreadable: its last good copy)", c.stdout)

    def test_session_removed_is_cancelled(self):
        # The same change by removal cancels: the test above can fail.
        p, cancels = self.cancels_after_break("removed")
        self.assertEqual(len(cancels), 10, p.stderr)


class KeptAcrossRestart(Inputs):
    """A fresh start (a restarted daemon, --plan, --once) that finds a
    deadline or session unreadable keeps the copy the state database holds
    of it, categories too, with a warning; the rules go on matching it."""

    DEADLINE = "anmalan-2020@example.org"

    def edit_calendar(self, pattern, repl):
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8", newline="") as f:
            text = f.read()
        new = re.sub(pattern, repl, text, count=1)
        self.assertNotEqual(new, text)
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(new)

    def test_deadline_kept_after_restart(self):
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        # The deadline loses its DUE: no longer readable.
        self.edit_calendar(r"DUE;VALUE=DATE:20191213\r?\n", "")
        p = self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0)
        self.assertIn("no DUE", p.stderr)
        self.assertIn("keeping the last good copy of the deadline \"Sista anmälningsdag\"",
                      p.stderr)
        lines = plan_lines(p.stdout)
        # Its reminders, by the rule scoped to its category (registration),
        # at 09:00 14, 7 and 1 days before the whole day of 13 December.
        self.assertEqual(sorted(line[0] for line in lines
                                if line[2] == HENRIK and line[3] == self.DEADLINE),
                         ["2019-11-29T09:00:00+01:00", "2019-12-06T09:00:00+01:00",
                          "2019-12-12T09:00:00+01:00"])
        c = self.prog.run("--check", check=0)
        self.assertIn(self.DEADLINE + "  Sista anmälningsdag  categories: registration  "
                      "(unreadable: its last good copy)", c.stdout)
        self.assertIn("deadline 2019-12-13 (the whole day)", c.stdout)
        # The restarted daemon's pass sends the reminder when it falls due.
        p = self.prog.run("--once", "--now", "2019-11-29T09:00:30+01:00", check=0)
        self.assertIn("keeping the last good copy of the deadline", p.stderr)
        got = [parse(f) for f in self.prog.outbox_messages()]
        self.assertIn(HENRIK, [to_header(m)[1] for m in got
                               if "anmälningsdag" in str(m["Subject"]).lower()
                               or "anmäl" in m.get_body(("plain",)).get_content()])

    def test_restarted_daemon_sends_the_kept_deadlines_reminder(self):
        def daemon(now, logname):
            logpath = os.path.join(self.tmpdir, logname)
            log = open(logpath, "w")
            self.addCleanup(log.close)
            proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", now],
                                    stdout=log, stderr=subprocess.STDOUT)
            self.addCleanup(proc.wait)
            self.addCleanup(proc.kill)
            return proc, logpath

        def henriks():
            return [m for m in self.sent() if to_header(m)[1] == HENRIK]

        proc, _ = daemon(BEFORE_DEADLINE, "first.log")
        end = time.time() + 20
        while time.time() < end and len(self.prog.outbox_messages()) < 28:
            time.sleep(0.05)
        self.assertEqual(len(self.prog.outbox_messages()), 28)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)
        self.assertEqual(henriks(), [])  # invited: no invitation, only reminders
        self.edit_calendar(r"DUE;VALUE=DATE:20191213\r?\n", "")
        # Started again two seconds before the 14-day reminder is due.
        proc, logpath = daemon("2019-11-29T08:59:58+01:00", "second.log")
        end = time.time() + 20
        while time.time() < end and not henriks():
            time.sleep(0.05)
        proc.terminate()
        proc.wait(timeout=20)
        with open(logpath, encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertIn("keeping the last good copy of the deadline \"Sista anmälningsdag\"", log)
        self.assertEqual(len(henriks()), 1, log)

    def test_deadline_never_stored_is_not_made_up(self):
        # Unreadable from the first start: nothing to keep, nothing planned.
        self.edit_calendar(r"DUE;VALUE=DATE:20191213\r?\n", "")
        p = self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0)
        self.assertNotIn("keeping the last good copy", p.stderr)
        self.assertNotIn(self.DEADLINE, p.stdout)

    def test_kept_session_keeps_its_categories(self):
        # A rule for the sessions of one category: the first session only.
        self.edit_calendar(r"CATEGORIES:session\r?\n", "CATEGORIES:session,Ledning\r\n")
        self.prog.append_conf("[rule ledning]\nmessage = session-reminder\ncategory = ledning\n"
                              "before = 5d\nat = 08:00\nto = registered")
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)

        def ledning(out):
            return sorted((line[2], line[3]) for line in plan_lines(out) if line[4] == "ledning")
        want = ledning(self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0).stdout)
        self.assertEqual(len(want), 10)  # the ten registered, for session 1
        self.assertEqual({uid for _, uid in want}, {S1})
        # Session 1 loses its DTEND; a fresh start keeps the stored copy,
        # categories and all, so the rule still reaches it.
        self.edit_calendar(r"DTEND;TZID=Europe/Stockholm:20200221T130000\r?\n", "")
        p = self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0)
        self.assertIn("keeping the last good copy of the session \"Leda samhällsutveckling\"",
                      p.stderr)
        self.assertEqual(ledning(p.stdout), want)


def cp1252_csv():
    rows = [
        "E-post;Namn;Kommun;Roll;Språk;Status;Anmäld;Ändrad",
        "anna.berglund@gavle.example.se;Anna Berglund;Gävle kommun;ordförande;sv;registered;"
        "2019-11-04;2019-11-04 09:12",
        "asa.granqvist@vasteras.example.se;Åsa Granqvist;Västerås stad;\"KS; ordförande\";sv;"
        "registered;2019-12-02 14:03:00;2019-12-02T14:03:00+01:00",
        "lars.ostlund@orebro.example.se;Lars Östlund;Örebro kommun;oppositionsråd;sv;registered;"
        "25/11/2019;2019-11-25",
        "henrik.dahl@karlstad.example.se;Henrik Dahl;Karlstads kommun;kommunalråd;sv;invited;;"
        "2019-10-01",
        ";;;;;;;",
    ]
    return ("\r\n".join(rows) + "\r\n").encode("cp1252")


SWEDISH = ("E-post:email, Namn:name, Kommun:organisation, Roll:role, Språk:language, "
           "Status:status, Anmäld:registered_at, Ändrad:updated_at")


class CsvTest(Inputs):
    def test_windows_1252_semicolons(self):
        self.use_csv("deltagare.csv", cp1252_csv(), SWEDISH)
        p = self.prog.run("--check", check=0)
        # Lars's registered_at is no date kallad reads: his row is read
        # without it (nothing sent depends on it).
        self.assertIn("deltagare.csv: line 4 (lars.ostlund@orebro.example.se): registered_at "
                      "\"25/11/2019\" is not an ISO 8601 time", p.stderr)
        self.assertIn("4 participants: 3 registered, 1 invited", p.stdout)
        self.assertEqual(p.stdout.splitlines()[-1], "configuration OK; 1 warning, 0 rows skipped")
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        names = {to_header(m) for m in self.sent()}
        self.assertIn(("Åsa Granqvist", "asa.granqvist@vasteras.example.se"), names)
        self.assertIn(("Anna Berglund", ANNA), names)
        self.assertIn(("Lars Östlund", "lars.ostlund@orebro.example.se"), names)

    def test_utf8_bom_commas_quotes(self):
        text = ("email,name,organisation,role,language,status,registered_at,updated_at\n"
                "anna.berglund@gavle.example.se,\"Berglund, Anna\",Gävle kommun,"
                "\"\"\"ordförande\"\"\",sv,registered,2019-11-04T09:12:00+01:00,2019-11-04\n"
                "mikael.sandberg@jamtland.example.se,Mikael Sandberg,\"Region Jämtland\n"
                "Härjedalen\",,en,registered,,2019-12-09 08:15\n")
        self.use_csv("people.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
        p = self.prog.run("--check", check=0)
        self.assertIn("2 participants: 2 registered", p.stdout)
        self.assertEqual(p.stdout.splitlines()[-1], "configuration OK")
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        names = {to_header(m) for m in self.sent()}
        self.assertEqual(names, {("Berglund, Anna", ANNA),
                                 ("Mikael Sandberg", "mikael.sandberg@jamtland.example.se")})
        # Mikael's language is en: his mail is in English.
        en = [m for m in self.sent() if "mikael" in str(m["To"])]
        self.assertTrue(all(m["Content-Language"] in (None, "en") for m in en))

    def test_each_row_case(self):
        rows = [
            b"email,name,status,registered_at,updated_at",
            # A Latin-1 name in a UTF-8 file: read as Windows-1252.
            b"asa@example.se,\xc5sa L\xe4tin,registered,2019-11-01,2019-11-01",
            # Not Windows-1252 either (0x81): the address alone.
            b"odd@example.se,Odd \x81\x8d,registered,2019-11-01 10:00,2019-11-01",
            # Stray spaces around the address and the status.
            b" spaced@example.se  ,Spaced Person, Registered ,2019-11-01T10:00:00Z,2019-11-01",
            # Unusable: reported, skipped.
            "unknown@example.se,Okänd Status,maybe,,2019-11-01".encode(),
            b"not-an-address,Ingen Adress,registered,,2019-11-01",
            "ok@example.se,Östen Ok,registered,,2019-11-01".encode(),
            "dup@example.se,Först Åke,registered,,2019-11-01".encode("utf-8"),
            # The same again (but for case): a duplicate, skipped.
            "DUP@example.se,Först Åke,registered,,2019-11-02".encode("utf-8"),
        ]
        self.use_csv("rows.csv", b"\n".join(rows) + b"\n")
        p = self.prog.run("--check", check=1)
        err = p.stderr
        self.assertIn("rows.csv: line 2 (asa@example.se): name is not valid UTF-8; read as "
                      "Windows-1252: \"Åsa Lätin\"", err)
        self.assertIn("rows.csv: line 3 (odd@example.se): name is neither UTF-8 nor Windows-1252; "
                      "mail goes to the address alone", err)
        self.assertIn("rows.csv: line 5 (unknown@example.se): unknown status \"maybe\"", err)
        self.assertIn("rows.csv: line 6 (not-an-address): invalid e-mail address", err)
        self.assertIn("rows.csv: line 9 (DUP@example.se): duplicate of line 8, skipped", err)
        self.assertNotIn("spaced", err)
        self.assertIn("5 participants: 5 registered", p.stdout)
        self.assertEqual(p.stdout.splitlines()[-1],
                         "5 warnings, 3 rows skipped, 3 of them participants: fix the rows above")
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        names = {to_header(m) for m in self.sent()}
        self.assertEqual(names, {("Åsa Lätin", "asa@example.se"), ("", "odd@example.se"),
                                 ("Spaced Person", "spaced@example.se"),
                                 ("Östen Ok", "ok@example.se"), ("Först Åke", "dup@example.se")})

    def test_lines_and_unix_times(self):
        # Blank lines and a quoted field over three lines: each row is named
        # by the line it starts on. registered_at as a Unix time (digits).
        text = ("email;name;organisation;status;registered_at;updated_at\r\n"
                "\r\n"
                "anna.berglund@gavle.example.se;Anna Berglund;\"Gävle\r\nkommun\r\n"
                "(KS)\";registered;1572859920;2019-11-04\r\n"
                "\r\n"
                "\r\n"
                "lars.ostlund@orebro.example.se;Lars Östlund;Örebro;registrerad;;2019-11-25\r\n"
                "per.hallberg@umea.example.se;Per Hallberg;Umeå;registered;7289654400;"
                "2019-11-20\r\n")
        self.use_csv("people.csv", text.encode("utf-8"))
        p = self.prog.run("--check", check=1)
        self.assertIn("people.csv: line 8 (lars.ostlund@orebro.example.se): unknown status "
                      "\"registrerad\"", p.stderr)
        self.assertIn("people.csv: line 9 (per.hallberg@umea.example.se): registered_at "
                      "\"7289654400\" is not an ISO 8601 time in the years 1970-2200", p.stderr)
        self.assertIn("2 participants: 2 registered", p.stdout)
        # Anna, registered at 1572859920 (2019-11-04T09:32:00Z), gets her
        # invitations; her organisation keeps its line breaks. Per, his
        # registered_at out of range, is read without it.
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        self.assertEqual({to_header(m) for m in self.sent()},
                         {("Anna Berglund", ANNA),
                          ("Per Hallberg", "per.hallberg@umea.example.se")})

    def test_absences_and_attachments_csv(self):
        self.use_csv("people.csv",
                     b"email;name;status\nanna.berglund@gavle.example.se;Anna Berglund;registered\n",
                     extra="absences = absences.csv\nattachments = files.csv\n")
        with open(os.path.join(self.prog.dir, "absences.csv"), "w") as f:
            f.write("email,session_uid\nanna.berglund@gavle.example.se,styra-leda-2020-2@example.org\n"
                    "nobody@example.se,styra-leda-2020-2@example.org\n")
        with open(os.path.join(self.prog.dir, "files.csv"), "w") as f:
            f.write("email;message;path\n"
                    "anna.berglund@gavle.example.se;material;basfakta-gavle.pdf\n")
        p = self.prog.run("--check", check=0)
        self.assertIn("1 absences, 1 attachments; 1 rows skipped", p.stdout)
        self.assertIn("absences.csv: line 3 (nobody@example.se): no participant has this address",
                      p.stderr)
        plan = plan_lines(self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0).stdout)
        self.assertIn([BEFORE_DEADLINE, "invite", ANNA, S1, "-"], plan)
        self.assertNotIn([BEFORE_DEADLINE, "invite", ANNA, "styra-leda-2020-2@example.org", "-"],
                         plan)

    def test_missing_columns_and_mixing(self):
        self.use_csv("people.csv", b"E-post;Namn\nx@example.se;X\n")
        p = self.prog.run("--check")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("people.csv: line 1: the header row has no column for email, name, status", p.stderr)
        self.prog.append_conf("participants = SELECT * FROM participants")
        p = self.prog.run("--check", check=78)
        self.assertIn("SELECT queries need a SQLite database", p.stderr)


class ParticipantLastGoodTest(Inputs):
    """A fresh start (--once): a participant kallad invited whose row turns
    unusable keeps the state database's copy; a deleted row cancels."""

    ASA = "asa.granqvist@vasteras.example.se"

    def after_change(self, new_csv, never_went=None):
        good = cp1252_csv().replace(b"25/11/2019", b"2019-11-25")
        self.use_csv("deltagare.csv", good, SWEDISH)
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        before = set(self.prog.outbox_messages())
        self.assertEqual(len(before), 9)
        if never_went:
            # As if the invites were claimed (and the copy kept) but none
            # went: no calendar state recorded for them.
            con = sqlite3.connect(self.prog.state)
            con.execute("DELETE FROM attendance WHERE email = ?", (never_went,))
            con.commit()
            con.close()
        with open(os.path.join(self.prog.dir, "deltagare.csv"), "wb") as f:
            f.write(new_csv(good))
        p = self.prog.run("--once", "--now", "2019-11-21T10:00:00+01:00")
        new = [parse(f) for f in set(self.prog.outbox_messages()) - before]
        return p, [to_header(m)[1] for m in new if is_cancel(m)]

    def test_unusable_row_keeps_last_good_state(self):
        p, cancelled = self.after_change(lambda good: good.replace(
            b"\"KS; ordf\xf6rande\";sv;registered", b"\"KS; ordf\xf6rande\";sv;registrerad"))
        self.assertEqual(cancelled, [])
        self.assertIn("unknown status \"registrerad\"", p.stderr)
        self.assertIn(self.ASA + ": the row cannot be used now (see above): keeping the "
                      "participant's last good state (registered)", p.stderr)
        plan = plan_lines(self.prog.run("--plan", "--now", "2019-11-21T10:00:00+01:00").stdout)
        self.assertIn(self.ASA, [line[2] for line in plan if line[1] == "session-reminder"])

    def test_unusable_row_of_someone_never_invited_is_not_kept(self):
        # The copy is kept from the claim on; an invite that never went
        # does not make the participant one "kallad invited".
        p, cancelled = self.after_change(lambda good: good.replace(
            b"\"KS; ordf\xf6rande\";sv;registered", b"\"KS; ordf\xf6rande\";sv;registrerad"),
            never_went=self.ASA)
        self.assertEqual(cancelled, [])
        self.assertIn("unknown status \"registrerad\"", p.stderr)
        self.assertNotIn(self.ASA + ": the row cannot be used now", p.stderr)
        plan = plan_lines(self.prog.run("--plan", "--now", "2019-11-21T10:00:00+01:00").stdout)
        self.assertNotIn(self.ASA, [line[2] for line in plan])

    def test_deleted_row_cancels(self):
        # The same person's row deleted: the test above can fail.
        p, cancelled = self.after_change(lambda good: b"\r\n".join(
            line for line in good.split(b"\r\n") if not line.startswith(b"asa.")))
        self.assertEqual(sorted(cancelled), [self.ASA] * 3, p.stderr)


class SqliteRowsTest(KalladCase):
    def test_blob_address_latin1_name_dates_spaces(self):
        sql = self.prog.sql
        sql("INSERT INTO participants(email, name, status, registered_at, updated_at) "
            "VALUES (X'626c6f62406578616d706c652e7365', 'Blob', 'registered', NULL, '2019-11-01')")
        sql("INSERT INTO participants(email, name, status, registered_at, updated_at) "
            "VALUES ('latin@example.se', CAST(X'c5736120476172' AS TEXT), 'registered', "
            "'2019-11-01', '2019-11-01')")
        sql("INSERT INTO participants(email, name, status, registered_at, updated_at) "
            "VALUES ('trail@example.se ', 'Trail', 'registered', '2019-11-01 10:00', "
            "'2019-11-01')")
        p = self.prog.run("--check", check=1)
        self.assertRegex(p.stderr, r"registrations\.db: participants row \d+ \(blob@example\.se\): "
                         r"the e-mail address is stored as a BLOB, not as text")
        self.assertRegex(p.stderr, r"participants row \d+ \(latin@example\.se\): name is not valid "
                         r"UTF-8; read as Windows-1252: \"Åsa Gar\"")
        self.assertIn("12 registered", p.stdout)
        self.assertIn("1 of them participant", p.stdout.splitlines()[-1])
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        names = {to_header(parse(f)) for f in self.prog.outbox_messages()}
        self.assertIn(("Åsa Gar", "latin@example.se"), names)
        self.assertIn(("Trail", "trail@example.se"), names)


class SqliteUnaddressedTest(Inputs):
    def test_row_without_address_keeps_removals_waiting(self):
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        before = set(self.prog.outbox_messages())
        self.prog.sql("UPDATE participants SET email = 'anna.berglund(at)gavle.example.se' "
                      "WHERE email = ?", ANNA)
        self.prog.sql("DELETE FROM participants WHERE email = ?",
                      "eva.lundgren@norrkoping.example.se")
        p = self.prog.run("--once", "--now", "2019-11-21T10:00:00+01:00")
        self.assertEqual(set(self.prog.outbox_messages()), before, p.stderr)
        self.assertRegex(p.stderr, r"registrations\.db: participants row \d+: no address kallad "
                         r"can read: the 2 participants missing from the registrations \("
                         + re.escape(ANNA) + r", eva\.lundgren@norrkoping\.example\.se\) are "
                         r"not taken for gone until it can be read")
        self.prog.sql("UPDATE participants SET email = ? WHERE email LIKE 'anna.berglund(at)%'",
                      ANNA)
        self.prog.run("--once", "--now", "2019-11-21T10:00:00+01:00")
        new = [parse(f) for f in set(self.prog.outbox_messages()) - before]
        self.assertEqual({to_header(m)[1] for m in new if is_cancel(m)},
                         {"eva.lundgren@norrkoping.example.se"})


class ReloadTest(Inputs):
    """The daemon: on each reload, a participant whose row turns unusable
    and a session that turns unreadable keep their last good state."""

    def wait_log(self, text, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            with open(self.logpath, encoding="utf-8", errors="replace") as f:
                log = f.read()
            if text in log:
                return log
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in the log:\n{log}")

    def test_reload_keeps_last_good(self):
        good = cp1252_csv().replace(b"25/11/2019", b"2019-11-25")
        self.use_csv("deltagare.csv", good, SWEDISH)
        self.logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(self.logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE_DEADLINE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        end = time.time() + 20
        while time.time() < end and len(self.prog.outbox_messages()) < 9:
            time.sleep(0.05)
        self.assertEqual(len(self.prog.outbox_messages()), 9)  # 3 registered x 3 sessions
        # Åsa's status turns into a typo; the first session loses its DTEND.
        with open(os.path.join(self.prog.dir, "deltagare.csv"), "wb") as f:
            f.write(good.replace(b"Granqvist;V\xe4ster\xe5s stad;\"KS; ordf\xf6rande\";sv;registered",
                                 b"Granqvist;V\xe4ster\xe5s stad;\"KS; ordf\xf6rande\";sv;registrerad"))
        log_text = self.wait_log("keeping the participant's last good state (registered)")
        self.assertIn("deltagare.csv: line 3 (asa.granqvist@vasteras.example.se): unknown status "
                      "\"registrerad\"", log_text)
        self.wait_log("reloaded")
        time.sleep(0.5)  # its watches renewed after the reload
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8", newline="") as f:
            text = f.read()
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(re.sub(r"DTEND;TZID=Europe/Stockholm:20200221T130000\r?\n", "", text, count=1))
        self.wait_log("keeping the last good copy of the session \"Leda samhällsutveckling\"")
        time.sleep(1.5)
        cancels = [m for m in self.sent() if is_cancel(m)]
        self.assertEqual(cancels, [])
        self.assertEqual(len(self.prog.outbox_messages()), 9)


if __name__ == "__main__":
    main()
