"""Shared pieces of the change-notice tests of issue 10 (test_change_guard.py,
test_manual_sends.py): the example programme sending into its outbox, the
messages read back with Python's email and icalendar, the calendar edited
the way an export job does, and the state database dumped to compare."""

import os
import re
import sqlite3
import sys

import icalendar

sys.path.insert(0, os.path.dirname(__file__))
import kallad_test  # noqa: E402
from kallad_test import KalladCase, parse  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
S1 = "styra-leda-2020-1@example.org"
S2 = "styra-leda-2020-2@example.org"
S3 = "styra-leda-2020-3@example.org"
ANNA = "anna.berglund@gavle.example.se"
JOHAN = "johan.lindqvist@regionvasterbotten.example.se"
MARIA = "maria.ekstrom@lund.example.se"
PER = "per.hallberg+styraleda@umea.example.se"
KARIN = "karin.hedlund@skane.example.se"   # absent from session 2
LARS = "lars.ostlund@orebro.example.se"    # absent from session 3
SOFIA = "sofia.nyberg@regionuppsala.example.se"
REGISTERED = [ANNA, JOHAN, MARIA, KARIN, PER, LARS, SOFIA,
              "asa.granqvist@vasteras.example.se", "mikael.sandberg@jamtland.example.se",
              "eva.lundgren@norrkoping.example.se"]
ATTENDING = {S1: set(REGISTERED), S2: set(REGISTERED) - {KARIN}, S3: set(REGISTERED) - {LARS}}
INVITES = 28


def check_messages(testcase, paths):
    """Every message read passes the project's checker (tests/check_message.py
    once it is on main, through kallad_test) or ../shared/tools/check-message."""
    if paths and os.path.exists(kallad_test.CHECK_MESSAGE):
        kallad_test.check_messages(testcase, paths)


class Mail:
    """One message as sent: its headers, METHOD and the VEVENT it carries."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.msg = parse(self.raw)
        self.to = self.msg["To"].addresses[0].addr_spec
        self.method = self.event = None
        for part in self.msg.walk():
            if part.get_content_type() == "text/calendar":
                cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
                self.method = str(cal["METHOD"])
                self.event = [c for c in cal.walk() if c.name == "VEVENT"][0]
        self.uid = str(self.event["UID"]) if self.event is not None else None
        self.sequence = int(self.event["SEQUENCE"]) if self.event is not None else None

    @property
    def start(self):
        return self.event["DTSTART"].dt.isoformat()

    def text(self):
        for part in self.msg.walk():
            if part.get_content_type() == "text/plain":
                return part.get_content()
        return ""

    def __repr__(self):
        return f"<{self.method} {self.uid} SEQ {self.sequence} to {self.to}: {self.msg['Subject']}>"


def held_line(status_out):
    """--status's line of what is held: `held:` as said, or `held` and a
    tab as --status prints its other states when piped ("" when none)."""
    return next((l for l in status_out.splitlines() if re.match(r"held[:\t]", l)), "")


def held_numbers(status_out):
    """The numbers on --status's held line ([] when there is none)."""
    return [int(n) for n in re.findall(r"\b\d+\b", held_line(status_out))]


def dump_state(path):
    """The state database as SQL text (sqlite3 .dump), read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


class OutboxCase(KalladCase):
    """The example programme with no [smtp]: mail goes to the outbox."""

    def setUp(self):
        super().setUp()
        self.seen = set()
        self.ics = os.path.join(self.prog.dir, "programme.ics")
        with open(self.ics, encoding="utf-8", newline="") as f:
            self.original = f.read()

    def mail_files(self):
        """Every message sent so far: the outbox, or a server's dumps."""
        return self.prog.outbox_messages()

    def new_mail(self):
        new = [p for p in self.mail_files() if p not in self.seen]
        self.seen.update(new)
        check_messages(self, new)
        return [Mail(p) for p in new]

    def once(self, now=NOW, check=0):
        p = self.prog.run("--once", "--now", now, check=check)
        self.last = p
        return self.new_mail()

    def plan(self, now=NOW, *extra):
        out = self.prog.run("--plan", "--now", now, *extra, check=0).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def status(self, now=NOW):
        """--status as of `now`: what is held is what a pass then would hold
        (nothing is held about a session that has begun)."""
        return self.prog.run("--status", "--now", now, check=0).stdout

    def write_calendar(self, text):
        """Replaces the calendar the way an editor or an export job does."""
        tmp = self.ics + ".new"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.rename(tmp, self.ics)

    def restore_calendar(self):
        self.write_calendar(self.original)


def without_sessions(text, *uids):
    for uid in uids:
        start = text.index("BEGIN:VEVENT\r\nUID:" + uid)
        end = text.index("END:VEVENT\r\n", start) + len("END:VEVENT\r\n")
        text = text[:start] + text[end:]
    return text


def no_sessions(text):
    """An export of a date range with no session in it: the VTIMEZONE and
    the deadline VTODO, no VEVENT at all."""
    return without_sessions(text, S1, S2, S3)


def moved(text, uid, old_day, new_day):
    """Session uid moved from old_day to new_day (YYYYMMDD, two-day sessions)."""
    start = text.index("UID:" + uid)
    end = text.index("END:VEVENT", start)
    block = text[start:end]
    nxt = lambda d: str(int(d) + 1)  # noqa: E731 (days 1-27 in the example)
    block = block.replace(old_day + "T", new_day + "T").replace(nxt(old_day) + "T",
                                                                 nxt(new_day) + "T")
    return text[:start] + block + text[end:]


def cancelled(text, uid):
    start = text.index("UID:" + uid)
    end = text.index("END:VEVENT", start)
    block = text[start:end].replace("STATUS:CONFIRMED", "STATUS:CANCELLED")
    return text[:start] + block + text[end:]


def relocated(text, uid, place):
    start = text.index("UID:" + uid)
    end = text.index("END:VEVENT", start)
    block = text[start:end].replace("Långholmens konferens", place, 1)
    return text[:start] + block + text[end:]
