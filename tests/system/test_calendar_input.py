"""Calendars as administrators export them, through the real binary:
which events are sessions and which are deadlines, what is read with a
warning and what is skipped with one, and that nothing kallad knew turns
into mail nobody meant: a deadline into a session with invitations for
everyone, a second copy of an event into an update."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KalladCase, main  # noqa: E402

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


def read(path):
    with open(path, "rb") as f:
        return f.read()


def begin_lines(text, uid):
    """The lines of the BEGIN:VEVENT of each event with this UID."""
    lines, begin, found = text.split("\r\n"), 0, []
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

    def google(self, start, end, section=""):
        self.write(calendar(
            vevent(S1, "Leda samhällsutveckling", "DTSTART:20200220T090000Z",
                   "DTEND:20200221T120000Z"),
            vevent(DL, "Sista anmälningsdag", start, end),
            head="X-WR-TIMEZONE:Europe/Stockholm\r\n"))
        self.prog.append_conf(f"[deadline {DL}]\ncategory = registration\n{section}")

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

    def test_section_without_due_naming_no_event(self):
        self.prog.append_conf("[deadline nowhere@example.org]\ncategory = registration")
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: \[deadline nowhere@example\.org\]: the "
                         r"calendar has no event with this UID that can be read, and the section "
                         r"has no due: no such deadline")
        self.assertNotIn("nowhere@example.org", p.stdout)


if __name__ == "__main__":
    main()
