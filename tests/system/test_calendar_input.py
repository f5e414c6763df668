"""Calendars as administrators export them, through the real binary:
which events are sessions and which are deadlines, what is read with a
warning and what is skipped with one, and that nothing kallad knew turns
into mail nobody meant: a deadline into a session with invitations for
everyone, a second copy of an event into an update."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, SOURCE, KalladCase, check_messages, main, parse  # noqa: E402

BEFORE = "2019-11-20T08:00:00+01:00"
NEXT_DAY = "2019-11-21T08:00:00+01:00"
HENRIK = "henrik.dahl@karlstad.example.se"  # invited: the deadline's reminders
S1 = "s1@example.org"
DL = "7q3k7m1f0v2a8b9c0d1e2f3g4h@google.com"
DUP = "dup@example.org"


def vevent(uid, summary, start, end, extra=""):
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20191001T080000Z\r\n{start}\r\n{end}\r\n"
            f"SUMMARY:{summary}\r\n{extra}END:VEVENT\r\n")


def zoned(day, hhmm):
    return f"TZID=Europe/Stockholm:{day}T{hhmm}00"


def session_1(uid=S1, summary="Leda samhällsutveckling"):
    return vevent(uid, summary, "DTSTART;" + zoned("20200220", "1000"),
                  "DTEND;" + zoned("20200221", "1300"))


def calendar(*events, head=""):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + head + "".join(events)
            + "END:VCALENDAR\r\n")


def plan_lines(out):
    return [line.split("\t") for line in out.splitlines() if line]


def wait_for(condition, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def calendar_part(path):
    """The text/calendar part of a message in the outbox, or ""."""
    for part in parse(path).walk():
        if part.get_content_type() == "text/calendar":
            return part.get_content()
    return ""


def begin_lines(text, uid):
    """The lines of the BEGIN:VEVENT of each event with this UID."""
    lines, begin, found = text.replace("\r\n", "\n").split("\n"), 0, []
    for i, line in enumerate(lines, 1):
        if line == "BEGIN:VEVENT":
            begin = i
        elif line == "UID:" + uid:
            found.append(begin)
    return found


class CalendarCase(KalladCase):
    def write(self, text):
        with open(os.path.join(self.prog.dir, "programme.ics"), "w", encoding="utf-8",
                  newline="") as f:
            f.write(text)
        return text

    def plan(self, now, *args):
        p = self.prog.run("--plan", "--now", now, *args, check=0)
        return p, plan_lines(p.stdout)


class DeadlineNamedInConf(CalendarCase):
    """Google exports no categories: `[deadline UID]` makes that event the
    deadline, timed or all-day, and never a session."""

    def google(self, start, end, section="", name=DL):
        self.write(calendar(
            vevent(S1, "Leda samhällsutveckling", "DTSTART:20200220T090000Z",
                   "DTEND:20200221T120000Z"),
            vevent(DL, "Sista anmälningsdag", start, end),
            head="X-WR-TIMEZONE:Europe/Stockholm\r\n"))
        self.prog.append_conf(f"[deadline {name}]\ncategory = registration\n{section}")

    def assert_deadline_not_session(self, listed):
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 1 sessions, 1 deadlines", p.stdout)
        self.assertIn(f"  deadline {listed}  {DL}  Sista anmälningsdag  categories: registration",
                      p.stdout)
        self.assertNotIn("not used", p.stderr)
        p, plan = self.plan(BEFORE, "--all")
        self.assertEqual([line for line in plan if line[3] == DL
                          and line[1] != "deadline-reminder"], [])
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK, DL,
                       "registration-deadline"], plan)
        return p

    def test_timed_event(self):
        self.google("DTSTART:20191213T150000Z", "DTEND:20191213T153000Z")
        self.assert_deadline_not_session("2019-12-13T16:00:00+01:00")
        self.prog.run("--once", "--now", BEFORE, check=0)
        self.assertTrue(self.prog.outbox_messages())
        self.assertEqual([f for f in self.prog.outbox_messages() if DL.encode() in read(f)], [])

    def test_all_day_event(self):
        self.google("DTSTART;VALUE=DATE:20191213", "DTEND;VALUE=DATE:20191214")
        self.assert_deadline_not_session("2019-12-13 (the whole day)")

    def test_all_day_event_over_several_days_is_due_on_the_last(self):
        # "Registration open 2-13 December": due at the end of the 13th
        # (DTEND of a date is exclusive), not of the 2nd.
        self.google("DTSTART;VALUE=DATE:20191202", "DTEND;VALUE=DATE:20191214")
        self.assert_deadline_not_session("2019-12-13 (the whole day)")

    def test_title_of_the_section_wins(self):
        self.google("DTSTART:20191213T150000Z", "DTEND:20191213T153000Z",
                    "title = Anmälan senast")
        p = self.prog.run("--check", check=0)
        self.assertIn(f"{DL}  Anmälan senast  categories: registration", p.stdout)

    def test_due_beside_an_event_is_not_used(self):
        self.google("DTSTART:20191213T150000Z", "DTEND:20191213T153000Z", "due = 2019-12-20")
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: \[deadline " + re.escape(DL) +
                         r"\]: due 2019-12-20 is not used: the calendar's event gives the time, "
                         r"2019-12-13T16:00:00\+01:00")
        self.assertIn(f"  deadline 2019-12-13T16:00:00+01:00  {DL}", p.stdout)
        self.assertIn("calendar: 1 sessions, 1 deadlines", p.stdout)
        _, plan = self.plan(BEFORE)
        self.assertEqual([line for line in plan if line[3] == DL
                          and line[1] != "deadline-reminder"], [])

    def assert_not_used(self, name, near):
        """A section without due that names no event is an error: nothing
        runs on that configuration, and nobody is invited to the event it
        meant, which would otherwise be read as a session."""
        said = (r"kallad\.conf:\d+: \[deadline " + re.escape(name) + r"\]: the calendar has no "
                r"event with this UID, and the section has no due: it names no deadline ")
        said += (r"\(UIDs are compared exactly: the event with UID \"" + re.escape(near) + r"\"\?\)"
                 if near else r"\(give the UID of the deadline's event, or a due\)")
        for mode in (["--check"], ["--plan", "--now", BEFORE], ["--once", "--now", BEFORE]):
            p = self.prog.run(*mode, check=78)
            self.assertRegex(p.stderr, said)
            self.assertEqual(p.stdout, "")
        self.assertEqual(self.prog.outbox_messages(), [])

    def test_section_without_due_naming_no_event(self):
        self.prog.append_conf("[deadline nowhere@example.org]\ncategory = registration")
        self.assert_not_used("nowhere@example.org", None)

    def test_section_missing_the_domain_of_the_uid(self):
        name = DL.split("@")[0]
        self.google("DTSTART:20191213T150000Z", "DTEND:20191213T153000Z", name=name)
        self.assert_not_used(name, DL)
        # Corrected, it is the deadline: nothing was taken as a session.
        self.prog.edit_conf(f"[deadline {name}]", f"[deadline {DL}]")
        self.assert_deadline_not_session("2019-12-13T16:00:00+01:00")

    def test_section_with_the_uid_in_another_case(self):
        self.google("DTSTART;VALUE=DATE:20191213", "DTEND;VALUE=DATE:20191214",
                    name=DL.upper())
        self.assert_not_used(DL.upper(), DL)

    def test_section_naming_no_event_on_reload(self):
        # The daemon keeps the programme it had: no half of the new one.
        self.google("DTSTART:20191213T150000Z", "DTEND:20191213T153000Z")
        logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        wait_for(lambda: len(self.prog.outbox_messages()) >= 10)
        time.sleep(1)
        sent = set(self.prog.outbox_messages())
        self.assertEqual(len(sent), 10)  # the ten registered, the one session
        self.prog.edit_conf(f"[deadline {DL}]", f"[deadline {DL.split('@')[0]}]")
        wait_for(lambda: "it names no deadline" in read(logpath).decode())
        time.sleep(1.5)
        self.assertEqual(set(self.prog.outbox_messages()), sent)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)


class SectionNamingASession(CalendarCase):
    """A [deadline NAME] section whose NAME is the UID of a session kallad
    knows (it invited people to it) does not turn that session into a
    deadline and cancel it for everyone: the session stays, the section
    is not used, a warning says why; with a due or without."""

    S2 = "styra-leda-2020-2@example.org"

    def assert_session_stays(self, p, plan, sent):
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: \[deadline " + re.escape(self.S2) +
                         r"\]: kallad knows this UID as a session: a section does not turn a "
                         r"session into a deadline \(a deadline needs a UID of its own\); the "
                         r"session stays, and this section is not used")
        p = self.prog.run("--check", check=0)
        self.assertIn("  session  2020-03-12T10:00:00+01:00 – 2020-03-13T13:00:00+01:00  " +
                      self.S2, p.stdout)
        self.assertNotIn("deadline", [x.split()[0] for x in p.stdout.splitlines()
                                      if self.S2 in x])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def check(self, section):
        self.prog.run("--once", "--now", BEFORE, check=0)
        sent = set(self.prog.outbox_messages())
        self.prog.append_conf(f"[deadline {self.S2}]\n{section}")
        p, plan = self.plan(NEXT_DAY, "--all")
        self.assert_session_stays(p, plan, sent)

    def test_with_due(self):
        # An older kallad's configuration: its section was "not used".
        self.check("due = 2020-01-15")

    def test_without_due(self):
        self.check("category = registration")

    def test_on_reload(self):
        # The daemon: what it knew is the calendar before the reload.
        logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        wait_for(lambda: len(self.prog.outbox_messages()) >= 28)
        time.sleep(1)
        sent = set(self.prog.outbox_messages())
        self.assertEqual(len(sent), 28)
        self.prog.append_conf(f"[deadline {self.S2}]\ndue = 2020-01-15")
        wait_for(lambda: "this section is not used" in read(logpath).decode())
        time.sleep(1.5)
        self.assertNotIn("cancelled", read(logpath).decode())
        self.assertEqual(set(self.prog.outbox_messages()), sent)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)


class LostCategoryIsSaid(CalendarCase):
    """A deadline (or session) that loses a category a rule asks for
    loses that rule's reminders: said on every read, not in silence."""

    def test_deadline_loses_the_rule_s_category(self):
        ics = os.path.join(self.prog.dir, "programme.ics")
        self.prog.run("--once", "--now", BEFORE, check=0)
        with open(ics, encoding="utf-8", newline="") as f:
            text = f.read()
        self.write(text.replace("CATEGORIES:registration\r\n", ""))
        for mode in (("--check",), ("--plan", "--now", NEXT_DAY)):
            p = self.prog.run(*mode, check=0)
            self.assertIn("programme.ics: deadline \"Sista anmälningsdag\" (UID "
                          "anmalan-2020@example.org) is no longer in the category registration: "
                          "rule registration-deadline no longer reminds of it", p.stderr)

    def test_a_category_never_held_is_not_said(self):
        self.prog.run("--once", "--now", BEFORE, check=0)
        p = self.prog.run("--check", check=0)
        self.assertNotIn("no longer in the category", p.stderr)


class KnownDeadlineStaysDeadline(CalendarCase):
    """Outlook: a deadline whose CATEGORIES:Deadline a re-export lost is
    no session: kallad keeps its last good copy, as it does for any item
    it knew that cannot be read as what it was."""

    OUTLOOK_DL = "040000008200E00074C5B7101A82E008000000009F8E7D6C5B4A3928"

    def deadline(self, extra):
        return vevent(self.OUTLOOK_DL, "Sista anmälningsdag", "DTSTART;" + zoned("20191213", "1600"),
                      "DTEND;" + zoned("20191213", "1630"), extra)

    def test_lost_category(self):
        self.prog.edit_conf("category = registration", "category = deadline")
        self.write(calendar(session_1(), self.deadline("CATEGORIES:Deadline\r\n")))
        self.prog.run("--once", "--now", BEFORE, check=0)
        sent = set(self.prog.outbox_messages())
        text = self.write(calendar(session_1(), self.deadline("")))
        line = begin_lines(text, self.OUTLOOK_DL)[0]
        p, plan = self.plan(NEXT_DAY, "--all")
        self.assertEqual([x for x in plan if x[3] == self.OUTLOOK_DL and "deadline" not in x[1]], [])
        self.assertIn(f"programme.ics:{line}: VEVENT \"Sista anmälningsdag\": kallad knows this "
                      "UID as a deadline, and the event is no deadline now (no CATEGORIES "
                      "deadline, no [deadline UID] section): a deadline does not become a "
                      f"session; skipped (UID {self.OUTLOOK_DL})", p.stderr)
        self.assertIn("keeping the last good copy of the deadline \"Sista anmälningsdag\"",
                      p.stderr)
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK, self.OUTLOOK_DL,
                       "registration-deadline"], plan)
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_lost_category_on_reload(self):
        # The daemon: what it knew is the calendar before the reload.
        self.prog.edit_conf("category = registration", "category = deadline")
        self.write(calendar(session_1(), self.deadline("CATEGORIES:Deadline\r\n")))
        logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        wait_for(lambda: len(self.prog.outbox_messages()) >= 10)
        time.sleep(1)
        sent = set(self.prog.outbox_messages())
        self.assertEqual(len(sent), 10)  # the ten registered, session 1
        self.write(calendar(session_1(), self.deadline("")))
        wait_for(lambda: "keeping the last good copy of the deadline" in read(logpath).decode())
        self.assertIn("a deadline does not become a session", read(logpath).decode())
        time.sleep(1.5)
        self.assertEqual(set(self.prog.outbox_messages()), sent)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)


class DateEnd(CalendarCase):
    """A timed DTSTART with DTEND;VALUE=DATE: RFC 5545 reads a date end as
    exclusive, so the session ends at 00:00 on that day (or, when that is
    not after its start, at the end of it); read with a warning rather
    than dropped without one. A session kallad knew ending on that day or
    the day before keeps the end it knew."""

    def date_end(self, day="20200313"):
        return vevent("s2@example.org", "Styrning och risker", "DTSTART;" + zoned("20200312", "1000"),
                      "DTEND;VALUE=DATE:" + day)

    def test_new_session(self):
        text = self.write(calendar(session_1(), self.date_end()))
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-03-12T10:00:00+01:00 – 2020-03-13T00:00:00+01:00  "
                      "s2@example.org", p.stdout)
        line = begin_lines(text, "s2@example.org")[0] + 4
        self.assertIn(f"programme.ics:{line}: VEVENT \"Styrning och risker\": DTEND is a date "
                      "without a time: read as the start of that day (a date end is exclusive, "
                      "RFC 5545), 2020-03-13T00:00:00+01:00 (UID s2@example.org)", p.stderr)

    def test_new_session_ending_on_its_first_day(self):
        text = self.write(calendar(session_1(), self.date_end("20200312")))
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-03-12T10:00:00+01:00 – 2020-03-13T00:00:00+01:00  "
                      "s2@example.org", p.stdout)
        line = begin_lines(text, "s2@example.org")[0] + 4
        self.assertIn(f"programme.ics:{line}: VEVENT \"Styrning och risker\": DTEND is a date "
                      "without a time, the day of DTSTART: read as the end of that day, "
                      "2020-03-13T00:00:00+01:00 (UID s2@example.org)", p.stderr)

    def known(self, day):
        """Known to end 13 March 13:00, now DTEND;VALUE=DATE:day."""
        self.write(calendar(session_1(), vevent(
            "s2@example.org", "Styrning och risker", "DTSTART;" + zoned("20200312", "1000"),
            "DTEND;" + zoned("20200313", "1300"))))
        self.prog.run("--once", "--now", BEFORE, check=0)
        sent = set(self.prog.outbox_messages())
        text = self.write(calendar(session_1(), self.date_end(day)))
        p, plan = self.plan(NEXT_DAY)
        return sent, text, p, plan

    def assert_known_end_kept(self, day):
        # Nothing new is said, and nothing is sent; no "could not be read
        # (see above)" with nothing above.
        sent, text, p, plan = self.known(day)
        self.assertNotIn("could not be read", p.stderr)
        self.assertIn("DTEND is a date without a time", p.stderr)
        self.assertIn(f"programme.ics:{begin_lines(text, 's2@example.org')[0]}: VEVENT "
                      "\"Styrning och risker\": its DTEND is a date, and kallad knew it ending "
                      "on that day or the day before: it keeps the end kallad knew, "
                      "2020-03-13T13:00:00+01:00 (UID s2@example.org)", p.stderr)
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_known_session_keeps_its_hour_written_the_rfc_way(self):
        # RFC 5545: the date after the last day, as Google and Apple write it.
        self.assert_known_end_kept("20200314")

    def test_known_session_keeps_its_hour_on_that_day(self):
        # The last day itself, as some tools write it.
        self.assert_known_end_kept("20200313")

    def test_known_session_another_day_is_a_change(self):
        _, _, p, plan = self.known("20200315")
        self.assertNotIn("keeps the end kallad knew", p.stderr)
        self.assertIn("update", [x[1] for x in plan if x[3] == "s2@example.org"])
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-03-12T10:00:00+01:00 – 2020-03-15T00:00:00+01:00  "
                      "s2@example.org", p.stdout)


class OutsideSessionsCategory(CalendarCase):
    """With sessions-category, an event kallad knew (a deadline, a
    session) that is still in the file but now outside what kallad reads
    keeps its last good copy with a warning, as an unreadable one does:
    its reminders go on, nobody gets a cancel."""

    S2 = "styra-leda-2020-2@example.org"
    DL = "anmalan-2020@example.org"

    def example(self, deadline_categories, s2_categories="session"):
        with open(os.path.join(SOURCE, "config", "programme.ics"), encoding="utf-8") as f:
            text = f.read()
        text = text.replace("BEGIN:VTODO", "BEGIN:VEVENT").replace("END:VTODO", "END:VEVENT")
        text = text.replace("DUE;VALUE=DATE:20191213", "DTSTART;VALUE=DATE:20191213")
        text = text.replace("CATEGORIES:registration", "CATEGORIES:" + deadline_categories)
        s2 = text.index("UID:" + self.S2)
        end = text.index("END:VEVENT", s2)
        part = text[s2:end].replace("CATEGORIES:session", "CATEGORIES:" + s2_categories)
        return self.write(text[:s2] + part + text[end:])

    def base_run(self):
        self.prog.edit_conf("timezone ", "sessions-category = session\ntimezone ")
        self.example("Deadline,registration")
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 3 sessions, 1 deadlines\n", p.stdout)
        self.prog.run("--once", "--now", BEFORE, check=0)
        return set(self.prog.outbox_messages())

    def test_known_deadline_loses_its_category(self):
        sent = self.base_run()
        text = self.example("registration")
        line = begin_lines(text, self.DL)[0]
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 3 sessions, 1 deadlines", p.stdout)
        self.assertIn(f"  deadline 2019-12-13 (the whole day)  {self.DL}  Sista anmälningsdag  "
                      "categories: Deadline,registration  (unreadable: its last good copy)",
                      p.stdout)
        self.assertIn(f"programme.ics:{line}: VEVENT \"Sista anmälningsdag\": kallad knows this "
                      "UID as a deadline, and the event is now outside sessions-category "
                      "\"session\" (and no deadline: no CATEGORIES deadline, no [deadline UID] "
                      f"section); skipped (UID {self.DL})", p.stderr)
        self.assertIn("keeping the last good copy of the deadline \"Sista anmälningsdag\"",
                      p.stderr)
        _, plan = self.plan(NEXT_DAY)
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK, self.DL,
                       "registration-deadline"], plan)
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_known_session_loses_its_category(self):
        sent = self.base_run()
        text = self.example("Deadline,registration", s2_categories="workshop")
        line = begin_lines(text, self.S2)[0]
        p, plan = self.plan(NEXT_DAY, "--all")
        self.assertIn(f"programme.ics:{line}: VEVENT \"Styrning och risker\": kallad knows this "
                      "UID as a session, and the event is now outside sessions-category "
                      f"\"session\"; skipped (UID {self.S2})", p.stderr)
        self.assertIn("keeping the last good copy of the session \"Styrning och risker\"",
                      p.stderr)
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
        self.assertIn(self.S2, [x[3] for x in plan if x[1] == "session-reminder"])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def cancelled_outside(self):
        """Outlook's re-export: every CATEGORIES:session lost, and session 2
        cancelled in Outlook."""
        text = re.sub(r"CATEGORIES:session\r?\n", "", self.example("Deadline,registration"))
        s2 = text.index("UID:" + self.S2)
        end = text.index("END:VEVENT", s2)
        return self.write(text[:s2] + text[s2:end].replace("STATUS:CONFIRMED", "STATUS:CANCELLED")
                          + text[end:])

    def test_known_session_outside_takes_its_cancellation(self):
        sent = self.base_run()
        invites = [f for f in sent if "UID:" + self.S2 in calendar_part(f)]
        self.assertEqual(len(invites), 9)
        text = self.cancelled_outside()
        line = begin_lines(text, self.S2)[0]
        p, plan = self.plan(NEXT_DAY)
        self.assertIn(f"programme.ics:{line}: VEVENT \"Styrning och risker\": kallad knows this "
                      "UID as a session, and the event is now outside sessions-category "
                      f"\"session\"; skipped (UID {self.S2})", p.stderr)
        self.assertIn(f"programme.ics:{line}: VEVENT \"Styrning och risker\": its STATUS:CANCELLED "
                      "is taken all the same (a cancellation is no accident of an export): the "
                      f"session kallad knew is cancelled (UID {self.S2})", p.stderr)
        self.assertEqual(len({x[2] for x in plan if x[1] == "cancel" and x[3] == self.S2}), 9)
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel") and x[3] != self.S2], [])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        new = set(self.prog.outbox_messages()) - sent
        self.assertEqual(len(new), 9)
        for path in new:
            ics = calendar_part(path)
            self.assertIn("METHOD:CANCEL", ics)
            self.assertIn("UID:" + self.S2, ics)
        check_messages(self, sorted(new))
        # Its reminders are gone; the other sessions keep theirs.
        p, plan = self.plan("2020-02-27T09:00:00+01:00", "--days", "1", "--all")
        self.assertEqual([x for x in plan if x[3] == self.S2 and not x[0].startswith("skipped")],
                         [])
        self.assertIn("its STATUS:CANCELLED is taken all the same", p.stderr)
        p = self.prog.run("--check", check=0)
        self.assertIn(f"{self.S2}  Styrning och risker  (cancelled)", p.stdout)
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(len(set(self.prog.outbox_messages()) - sent), 9)

    def test_copies_outside_that_disagree_cancel_nothing(self):
        sent = self.base_run()
        text = self.cancelled_outside()
        s2 = text.index("BEGIN:VEVENT", text.index("UID:" + self.S2) - 20)
        end = text.index("\n", text.index("END:VEVENT", s2)) + 1
        copy = text[s2:end].replace("STATUS:CANCELLED", "STATUS:CONFIRMED")
        self.write(text[:end] + copy + text[end:])
        p, plan = self.plan(NEXT_DAY)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("STATUS:CANCELLED is taken", p.stderr)
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_known_deadline_loses_its_category_on_reload(self):
        # The daemon: what it knew is the calendar before the reload.
        self.prog.edit_conf("timezone ", "sessions-category = session\ntimezone ")
        self.example("Deadline,registration")
        logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        wait_for(lambda: len(self.prog.outbox_messages()) >= 28)
        time.sleep(1)
        sent = set(self.prog.outbox_messages())
        self.assertEqual(len(sent), 28)
        self.example("registration")
        wait_for(lambda: "keeping the last good copy of the deadline" in read(logpath).decode())
        self.assertIn("kallad knows this UID as a deadline, and the event is now outside "
                      "sessions-category", read(logpath).decode())
        time.sleep(1.5)
        self.assertEqual(set(self.prog.outbox_messages()), sent)
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)

    def test_unknown_event_outside_is_ignored(self):
        self.prog.edit_conf("timezone ", "sessions-category = session\ntimezone ")
        self.example("registration")
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 3 sessions, 0 deadlines, 1 other events (not in "
                      "sessions-category)", p.stdout)
        self.assertNotIn(self.DL, p.stderr)


class OneUidTwoEvents(CalendarCase):
    """Outlook's copy of a meeting keeps its UID: two copies that differ
    are reported, both lines; file order decides nothing."""

    A = vevent(DUP, "Dup A", "DTSTART;" + zoned("20200312", "1000"),
               "DTEND;" + zoned("20200313", "1300"))
    B = vevent(DUP, "Dup B", "DTSTART;" + zoned("20200319", "1000"),
               "DTEND;" + zoned("20200320", "1300"))

    def assert_both_reported(self, text, stderr):
        first, second = begin_lines(text, DUP)
        for line, other in ((first, second), (second, first)):
            self.assertRegex(stderr, rf"programme\.ics:{line}: VEVENT \"Dup [AB]\": UID \"{DUP}\" "
                             rf"is also the UID of VEVENT \"Dup [AB]\" at line {other}, which "
                             rf"differs: which one is meant cannot be told; skipped "
                             rf"\(UID {DUP}\)")

    def test_known_session_keeps_its_last_good_copy(self):
        self.write(calendar(session_1(), self.A))
        self.prog.run("--once", "--now", BEFORE, check=0)
        sent = set(self.prog.outbox_messages())
        for events in ((self.B, self.A), (self.A, self.B)):
            text = self.write(calendar(session_1(), *events))
            p, plan = self.plan(NEXT_DAY, "--all")
            self.assert_both_reported(text, p.stderr)
            self.assertIn("keeping the last good copy of the session \"Dup A\"", p.stderr)
            self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
            self.prog.run("--once", "--now", NEXT_DAY, check=0)
            self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_new_uid_is_skipped(self):
        text = self.write(calendar(session_1(), self.B, self.A))
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 1 sessions", p.stdout)
        self.assert_both_reported(text, p.stderr)
        _, plan = self.plan(BEFORE)
        self.assertNotIn(DUP, [x[3] for x in plan])

    def test_highest_sequence_is_the_edit(self):
        # A moved copy with a higher SEQUENCE (RFC 5545: it orders the
        # revisions of one UID) is the edit, whichever comes first.
        moved = self.B.replace("Dup B", "Dup A").replace(
            "DTSTAMP:20191001T080000Z", "DTSTAMP:20191115T080000Z\r\nSEQUENCE:1")
        self.write(calendar(session_1(), self.A))
        self.prog.run("--once", "--now", BEFORE, check=0)
        for events in ((self.A, moved), (moved, self.A)):
            text = self.write(calendar(session_1(), *events))
            lines = begin_lines(text, DUP)
            old, new = (lines[0], lines[1]) if events[0] is self.A else (lines[1], lines[0])
            p, plan = self.plan(NEXT_DAY)
            self.assertIn(f"programme.ics:{old}: VEVENT \"Dup A\": UID \"{DUP}\" is also the UID "
                          f"of VEVENT \"Dup A\" at line {new}, a later revision (SEQUENCE 1): "
                          f"this one (SEQUENCE 0) is not read (UID {DUP})", p.stderr)
            self.assertNotIn("cannot be told", p.stderr)
            self.assertNotIn("last good copy", p.stderr)
            self.assertIn("update", [x[1] for x in plan if x[3] == DUP])
            p = self.prog.run("--check", check=0)
            self.assertIn("session  2020-03-19T10:00:00+01:00 – 2020-03-20T13:00:00+01:00  " + DUP,
                          p.stdout)

    def test_copies_that_differ_at_the_highest_sequence_stay_a_conflict(self):
        self.write(calendar(session_1(), self.A))
        self.prog.run("--once", "--now", BEFORE, check=0)
        sent = set(self.prog.outbox_messages())
        one = "DTSTAMP:20191001T080000Z\r\nSEQUENCE:1"
        text = self.write(calendar(session_1(), self.A.replace("DTSTAMP:20191001T080000Z", one),
                                   self.B.replace("DTSTAMP:20191001T080000Z", one)))
        p, plan = self.plan(NEXT_DAY, "--all")
        self.assert_both_reported(text, p.stderr)
        self.assertIn("keeping the last good copy of the session \"Dup A\"", p.stderr)
        self.assertEqual([x for x in plan if x[1] in ("update", "cancel")], [])
        self.prog.run("--once", "--now", NEXT_DAY, check=0)
        self.assertEqual(set(self.prog.outbox_messages()), sent)

    def test_identical_copies_are_one_event(self):
        text = self.write(calendar(session_1(), self.A, self.A))
        first, second = begin_lines(text, DUP)
        p = self.prog.run("--check", check=0)
        self.assertIn("calendar: 2 sessions", p.stdout)
        self.assertIn(f"programme.ics:{second}: VEVENT \"Dup A\": the same event as line {first} "
                      f"again: read once (UID {DUP})", p.stderr)


class FloatingTimes(CalendarCase):
    """Google and Apple name the calendar's zone in X-WR-TIMEZONE: a
    floating time is read in it; a TZID or UTC time is never changed."""

    def test_read_in_x_wr_timezone(self):
        self.write(calendar(
            vevent(S1, "Flytande", "DTSTART:20200220T100000", "DTEND:20200221T130000"),
            vevent("utc@example.org", "UTC", "DTSTART:20200312T090000Z", "DTEND:20200313T120000Z"),
            vevent("ny@example.org", "New York", "DTSTART;TZID=America/New_York:20200507T100000",
                   "DTEND;TZID=America/New_York:20200507T130000"),
            head="X-WR-TIMEZONE:Europe/Stockholm\r\n"))
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-02-20T10:00:00+01:00 – 2020-02-21T13:00:00+01:00  " + S1,
                      p.stdout)
        self.assertIn("session  2020-03-12T10:00:00+01:00 – 2020-03-13T13:00:00+01:00  utc@",
                      p.stdout)
        self.assertIn("session  2020-05-07T16:00:00+02:00 – 2020-05-07T19:00:00+02:00  ny@",
                      p.stdout)
        self.assertNotIn("floating", p.stderr)

    def test_zone_other_than_the_programme_s_warns(self):
        # Read in New York: 10:00 there is 15:00 in Stockholm. Whoever
        # typed it may have meant the programme's own 10:00.
        text = self.write(calendar(
            session_1(), vevent("f@example.org", "Flytande", "DTSTART:20200312T100000",
                                "DTEND:20200313T130000"),
            head="X-WR-TIMEZONE:America/New_York\r\n"))
        line = begin_lines(text, "f@example.org")[0] + 3
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-03-12T15:00:00+01:00 – 2020-03-13T18:00:00+01:00  f@",
                      p.stdout)
        for name, when in (("DTSTART", "2020-03-12T15:00:00+01:00"),
                           ("DTEND", "2020-03-13T18:00:00+01:00")):
            self.assertIn(f"programme.ics:{line}: VEVENT \"Flytande\": {name} is a floating time, "
                          "read in X-WR-TIMEZONE \"America/New_York\", whose clock is not the "
                          f"programme zone's (Europe/Stockholm): {when}; give it a TZID if "
                          "another zone was meant (UID f@example.org)", p.stderr)
            line += 1

    def test_zone_with_the_programme_s_clock_is_quiet(self):
        self.write(calendar(
            session_1(), vevent("f@example.org", "Flytande", "DTSTART:20200312T100000",
                                "DTEND:20200313T130000"),
            head="X-WR-TIMEZONE:Europe/Berlin\r\n"))
        p = self.prog.run("--check", check=0)
        self.assertIn("session  2020-03-12T10:00:00+01:00 – 2020-03-13T13:00:00+01:00  f@",
                      p.stdout)
        self.assertNotIn("floating", p.stderr)

    def test_unknown_zone_skips_with_its_name(self):
        text = self.write(calendar(
            session_1(), vevent("f@example.org", "Flytande", "DTSTART:20200312T100000",
                                "DTEND:20200313T130000"),
            head="X-WR-TIMEZONE:Mars/Olympus_Mons\r\n"))
        line = begin_lines(text, "f@example.org")[0] + 3
        p = self.prog.run("--check", check=0)
        self.assertIn(f"programme.ics:{line}: VEVENT \"Flytande\": DTSTART is a floating time, and "
                      "X-WR-TIMEZONE \"Mars/Olympus_Mons\" names no zone kallad knows; give it a "
                      "TZID or write it in UTC; skipped (UID f@example.org)", p.stderr)
        self.assertIn("calendar: 1 sessions", p.stdout)


class AbsenceOfUnknownSession(KalladCase):
    """An absence from a session the calendar does not have is named by
    its own file and line, like every other row that cannot be used."""

    def test_csv(self):
        with open(os.path.join(self.prog.dir, "people.csv"), "w", encoding="utf-8") as f:
            f.write("email;name;status\nanna.berglund@gavle.example.se;Anna Berglund;registered\n"
                    "sofia.nyberg@regionuppsala.example.se;Sofia Nyberg;registered\n")
        with open(os.path.join(self.prog.dir, "franvaro.csv"), "w", encoding="utf-8") as f:
            f.write("email;session_uid\n"
                    "anna.berglund@gavle.example.se;styra-leda-2020-1@example.org\n"
                    "anna.berglund@gavle.example.se;Styra-Leda-2020-2@example.org\n"
                    "sofia.nyberg@regionuppsala.example.se;2\n")
        self.prog.edit_conf("registrations = registrations.db", "registrations = people.csv")
        self.prog.append_conf("[registrations]\nabsences = franvaro.csv")
        p = self.prog.run("--check", check=0)
        self.assertIn("franvaro.csv: line 3 (anna.berglund@gavle.example.se): no session in "
                      "the calendar has the UID \"Styra-Leda-2020-2@example.org\" (UIDs are "
                      "compared exactly: \"styra-leda-2020-2@example.org\"?); this absence "
                      "applies to none", p.stderr)
        self.assertIn("franvaro.csv: line 4 (sofia.nyberg@regionuppsala.example.se): no session "
                      "in the calendar has the UID \"2\"; this absence applies to none", p.stderr)
        self.assertNotIn("people.csv", p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "configuration OK; 2 warnings, 0 rows skipped")

    def test_sqlite(self):
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES "
                      "('anna.berglund@gavle.example.se', 'no-such-session@example.org')")
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"registrations\.db: absences row \d+ "
                         r"\(anna\.berglund@gavle\.example\.se\): no session in the calendar has "
                         r"the UID \"no-such-session@example\.org\"; this absence applies to none")


if __name__ == "__main__":
    main()
