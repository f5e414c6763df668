"""Issue 9, the property test: seeded random sequences of edits (rules,
statuses, absences, attachments, sessions and the deadline moved, sessions
cancelled and back) and of time, with downtime, through the real binary.

At every pass (--plan --all --now T, then --once --now T) it checks:
 1. what the plan shows due by T is exactly what that --once sends;
 2. nothing is sent twice for one (message, participant, target, rule,
    offset, target time), whatever its key; with sessions = first, the
    target is the programme's start: sent once at most;
 3. every rule delivery sent was owed, by this test's own model, at or
    before its trigger (owed: from the first --once at which all it hangs
    on held, continuously since), and it went before its target began;
 4. one pass sends one participant at most one reminder of one message
    for one target (the rest of a catch-up is superseded);
 5. a promise is kept: when nothing was edited since the last pass, the
    rule deliveries this pass sends are exactly what that pass's plan
    showed due in between (of each participant, message and target, the
    latest due; none whose target began meanwhile, none that a later one
    ahead supersedes: it comes before half the time the rules put between
    them has passed), none lost, none added;
 6. each participant's calendar, as the messages that arrived build it
    (read with Python's email and icalendar, not from kallad's ledger),
    is right: a CANCEL only of what it holds, at a higher SEQUENCE; a
    REQUEST that changes what it shows at a higher SEQUENCE, none lower;
    an update only where the time or status it holds differs; and after
    each pass outside quiet hours and changes = hold (an edit toggles it)
    it holds every session ahead that the participant attends
    (registered, not absent, not cancelled), at the session's time, and
    no other.

The seeds are fixed; KALLAD_PROPERTY_SEED=N runs seed N (and the
KALLAD_PROPERTY_RUNS - 1 after it), KALLAD_PROPERTY_RUNS=N alone adds N
random seeds, KALLAD_PROPERTY_STEPS sets the steps per run, KALLAD_PROPERTY_EDITS=a,b
limits the kinds of edit. A failure
names its seed and the steps that led to it."""

import collections
import datetime

import icalendar
import os
import random
import re
import shutil
import sys
import tempfile
import unittest
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import Programme, SmtpSink, main, parse  # noqa: E402
from test_owed import once_checked, when as plan_time  # noqa: E402

TZ = zoneinfo.ZoneInfo("Europe/Stockholm")
SEEDS = [11, 23, 37, 41, 59, 73, 89, 97]
STEPS = int(os.environ.get("KALLAD_PROPERTY_STEPS", "45"))
# The kinds of edit, as often as they come; KALLAD_PROPERTY_EDITS=a,b,c
# limits a run to some of them (to narrow a failure down).
EDITS = ["offsets", "offsets", "to", "category", "extra", "status", "status", "absence",
         "attachment", "move", "move", "cancel", "deadline", "fokus", "spare", "hold"]
if os.environ.get("KALLAD_PROPERTY_EDITS"):
    EDITS = os.environ["KALLAD_PROPERTY_EDITS"].split(",")

SESSIONS = ["styra-leda-2020-1@example.org", "styra-leda-2020-2@example.org",
            "styra-leda-2020-3@example.org"]
DEADLINE = "anmalan-2020@example.org"
KEEP = {  # the participants of the small programme, as in the example
    "anna.berglund@gavle.example.se": "registered",
    "karin.hedlund@skane.example.se": "registered",
    "lars.ostlund@orebro.example.se": "registered",
    "henrik.dahl@karlstad.example.se": "invited",
    "tomas.falk@vaxjo.example.se": "waitlisted",
    "helena.strand@gotland.example.se": "cancelled",
}
SPARE = "nils.berg@sundsvall.example.se"   # a row that appears later
STATUSES = ["invited", "registered", "waitlisted", "cancelled"]
AUDIENCE = {"registered": {"registered"}, "invited": {"invited"},
            "waitlisted": {"waitlisted"}, "all": {"invited", "registered", "waitlisted"}}
START = datetime.datetime(2019, 11, 10, 10, 0, tzinfo=TZ)
END = datetime.datetime(2020, 5, 12, 12, 0, tzinfo=TZ)


def iso(t):
    return t.isoformat()


def in_quiet_hours(t):
    """The example's quiet hours: 21:00-07:00 local."""
    return t.hour >= 21 or t.hour < 7


# The example's min-lead: nothing goes closer than this to its event (the
# planner skips it as "min-lead"). Run() checks the configuration says so.
MIN_LEAD = datetime.timedelta(hours=6)


def trigger(days, target_date):
    """09:00 local, `days` calendar days before the target's local date."""
    d = target_date - datetime.timedelta(days=days)
    return datetime.datetime(d.year, d.month, d.day, 9, 0, tzinfo=TZ)


class Model:
    """What the test itself knows of the programme, and what it says is
    owed since when."""

    def __init__(self, rng):
        self.rng = rng
        self.rules = {
            "session-reminders": dict(message="session-reminder", offsets=[14, 2],
                                      to="registered", category=None, first=False),
            "registration-deadline": dict(message="deadline-reminder", offsets=[14, 7, 1],
                                          to="invited", category="registration", first=False),
            "material": dict(message="material", offsets=[14], to="registered",
                             category=None, first=True),
            "extra-reminders": None,
        }
        self.sessions = {
            SESSIONS[0]: dict(start=datetime.datetime(2020, 2, 20, 10, 0, tzinfo=TZ)),
            SESSIONS[1]: dict(start=datetime.datetime(2020, 3, 12, 10, 0, tzinfo=TZ)),
            SESSIONS[2]: dict(start=datetime.datetime(2020, 5, 7, 10, 0, tzinfo=TZ)),
        }
        for s in self.sessions.values():
            s.update(cancelled=False, cats={"session"}, used={s["start"]})
        self.hold = False  # [policy] changes = hold
        self.deadline = datetime.date(2019, 12, 13)
        self.deadline_used = {self.deadline}
        self.people = dict(KEEP)
        self.absences = {("karin.hedlund@skane.example.se", SESSIONS[1]),
                         ("lars.ostlund@orebro.example.se", SESSIONS[2])}
        self.attachments = {"anna.berglund@gavle.example.se", "karin.hedlund@skane.example.se"}
        # (message, email, uid or "first", rule, offset) ->
        #     (signature, identity, since, target uid, target time)
        self.owed = {}
        self.sent = set()  # the same keys, with the identity of the target

    # --- what is owed -------------------------------------------------

    def first_session(self):
        for uid in SESSIONS:
            if not self.sessions[uid]["cancelled"]:
                return uid
        return None

    def owed_now(self):
        out = {}
        first = self.first_session()
        for name, r in self.rules.items():
            if r is None:
                continue
            # The loosest reading: what makes a delivery owed is that its
            # rule targets it and its participant is in the audience. A
            # model that also restarts the moment when `to` or `category`
            # is edited (for those it reached before too) sends less,
            # which these checks never blame.
            sig = (name, r["message"])
            if r["message"] == "deadline-reminder":
                targets = [(DEADLINE, self.deadline)]
            else:
                targets = [(uid, s["start"]) for uid, s in self.sessions.items()
                           if not s["cancelled"]
                           and (r["category"] is None or r["category"] in s["cats"])
                           and (not r["first"] or uid == first)]
            for days in r["offsets"]:
                for uid, when in targets:
                    for email, status in self.people.items():
                        if status not in AUDIENCE[r["to"]]:
                            continue
                        if uid != DEADLINE and not r["first"] and (email, uid) in self.absences:
                            continue
                        if r["message"] == "material" and email not in self.attachments:
                            continue
                        # sessions = first aims at the programme's start,
                        # whichever session that is and whenever it is: one
                        # obligation that a move or a cancelled first session
                        # does not restart (and that is met once).
                        ident = "first" if r["first"] else when
                        key = (r["message"], email, "first" if r["first"] else uid, name,
                               f"{days}d")
                        out[key] = (sig, ident, uid, when)
        return out

    def observe(self, now):
        """A writing pass at `now`: what holds now is owed since the first
        pass it held at, without a break."""
        owed = {}
        for key, (sig, ident, uid, when) in self.owed_now().items():
            old = self.owed.get(key)
            since = old[2] if old and old[:2] == (sig, ident) else now
            owed[key] = (sig, ident, since, uid, when)
        self.owed = owed

    def target_date(self, uid, when):
        return when if uid == DEADLINE else when.date()

    def target_start(self, uid, when):
        if uid == DEADLINE:  # a date-only deadline is the whole of its day
            d = when + datetime.timedelta(days=1)
            return datetime.datetime(d.year, d.month, d.day, tzinfo=TZ)
        return when

    def next_trigger(self, now):
        ts = [trigger(int(k[4][:-1]), self.target_date(uid, when))
              for k, (_, _, _, uid, when) in self.owed.items()]
        ts = [t for t in ts if t > now]
        return min(ts) if ts else None

    # --- the files ----------------------------------------------------

    def conf_rules(self):
        out = []
        for name, r in self.rules.items():
            if r is None:
                continue
            out.append(f"[rule {name}]\nmessage = {r['message']}\n"
                       f"before = {', '.join(f'{d}d' for d in r['offsets'])}\n"
                       f"at = 09:00\nto = {r['to']}\n")
            if r["category"]:
                out.append(f"category = {r['category']}\n")
            if r["first"]:
                out.append("sessions = first\n")
            out.append("\n")
        return "".join(out)

    def calendar(self, pristine):
        text = pristine
        for uid, s in self.sessions.items():
            a = text.index("UID:" + uid)
            b = text.index("END:VEVENT", a)
            block = text[a:b]
            start, end = s["start"], s["start"] + datetime.timedelta(days=1, hours=3)
            block = re.sub(r"DTSTART;TZID=Europe/Stockholm:\d{8}T\d{6}",
                           "DTSTART;TZID=Europe/Stockholm:" + start.strftime("%Y%m%dT%H%M%S"),
                           block)
            block = re.sub(r"DTEND;TZID=Europe/Stockholm:\d{8}T\d{6}",
                           "DTEND;TZID=Europe/Stockholm:" + end.strftime("%Y%m%dT%H%M%S"), block)
            block = re.sub(r"STATUS:\w+",
                           "STATUS:" + ("CANCELLED" if s["cancelled"] else "CONFIRMED"), block)
            block = re.sub(r"CATEGORIES:[^\r\n]*", "CATEGORIES:" + ",".join(sorted(s["cats"])),
                           block)
            text = text[:a] + block + text[b:]
        return re.sub(r"DUE;VALUE=DATE:\d{8}", "DUE;VALUE=DATE:" +
                      self.deadline.strftime("%Y%m%d"), text)


class Run:
    """One seeded sequence on a fresh copy of the example programme."""

    def __init__(self, tc, seed, tmp, connections=0):
        self.tc = tc
        self.seed = seed
        self.rng = random.Random(seed)
        self.model = Model(self.rng)
        self.prog = Programme(tmp)
        self.sink = None
        if connections:
            # Through a real SMTP server over several connections instead
            # of the outbox: what arrived is counted where the outbox was.
            self.sink = SmtpSink(tmp)
            self.prog.use_smtp(self.sink.port, f"connections = {connections}\n")
            self.prog.outbox_messages = self.sink.files
        self.log = []
        self.calendars = {}  # (email, uid) -> what the messages put there (check 6)
        self.calendar_messages = 0
        self.promises = []
        self.kept = 0  # promised deliveries check 5 saw go
        with open(self.prog.conf, encoding="utf-8") as f:
            text = f.read()
        if not re.search(r"^min-lead\s*=\s*6h\b", text, re.M):
            tc.fail("the example's min-lead is no longer 6h: change MIN_LEAD")
        self.conf_head = text[:text.index("\n[rule ")] + "\n\n"
        self.conf_tail = text[text.index("\n[policy]"):]
        self.ics = os.path.join(self.prog.dir, "programme.ics")
        with open(self.ics, encoding="utf-8", newline="") as f:
            self.pristine = f.read()
        keep = tuple(KEEP)
        marks = ",".join("?" * len(keep))
        for table in ("participants", "attachments", "absences"):
            self.prog.sql(f"DELETE FROM {table} WHERE email NOT IN ({marks})", *keep)
        self.prog.sql("DELETE FROM attachments WHERE email NOT IN (?, ?)",
                      *sorted(self.model.attachments))
        self.write_files()

    def fail(self, msg):
        steps = "\n  ".join(self.log[-20:])
        self.tc.fail(f"seed {self.seed} (rerun: KALLAD_PROPERTY_SEED={self.seed} "
                     f"KALLAD_PROPERTY_STEPS={STEPS}): {msg}\nlast steps:\n  {steps}")

    def write_files(self):
        tail = self.conf_tail
        if self.model.hold:
            tail = tail.replace("changes            = send", "changes            = hold", 1)
        with open(self.prog.conf, "w", encoding="utf-8") as f:
            f.write(self.conf_head + self.model.conf_rules() + tail)
        with open(self.ics, "w", encoding="utf-8", newline="") as f:
            f.write(self.model.calendar(self.pristine))

    # --- edits --------------------------------------------------------

    def edit(self, now):
        m, rng = self.model, self.rng
        kind = rng.choice(EDITS)
        if kind == "offsets":
            name = rng.choice(["session-reminders", "registration-deadline", "material"])
            r = m.rules[name]
            pool = {"session-reminders": [14, 7, 2, 1], "registration-deadline": [14, 7, 1],
                    "material": [14, 7]}[name]
            d = rng.choice(pool)
            if d in r["offsets"] and len(r["offsets"]) > 1:
                r["offsets"].remove(d)
            elif d not in r["offsets"]:
                r["offsets"] = sorted(r["offsets"] + [d], reverse=True)
            return f"rule {name} before = {r['offsets']}"
        if kind == "to":
            name = rng.choice(["session-reminders", "registration-deadline"])
            r = m.rules[name]
            r["to"] = {"session-reminders": {"registered": "all", "all": "registered"},
                       "registration-deadline": {"invited": "all", "all": "invited"}}[name][r["to"]]
            return f"rule {name} to = {r['to']}"
        if kind == "category":
            r = m.rules["session-reminders"]
            r["category"] = None if r["category"] else "fokus"
            return f"rule session-reminders category = {r['category']}"
        if kind == "extra":
            if m.rules["extra-reminders"] is None or rng.random() < 0.3:
                m.rules["extra-reminders"] = dict(
                    message="session-reminder", offsets=rng.choice([[10], [3], [10, 3]]),
                    to="registered", category=rng.choice([None, "fokus"]), first=False)
            else:
                m.rules["extra-reminders"] = None
            return f"rule extra-reminders = {m.rules['extra-reminders']}"
        if kind in ("status", "spare"):
            if kind == "spare" and SPARE not in m.people:
                status = rng.choice(["registered", "invited"])
                m.people[SPARE] = status
                self.prog.sql("INSERT INTO participants(email, name, language, status, "
                              "registered_at, updated_at) VALUES (?, 'Nils Berg', 'sv', ?, ?, ?)",
                              SPARE, status, self.stamp(now), self.stamp(now))
                return f"new participant {SPARE} {status}"
            email = rng.choice(sorted(m.people))
            status = rng.choice([s for s in STATUSES if s != m.people[email]])
            m.people[email] = status
            # registered_at says nothing about when kallad learnt of it.
            reg = rng.choice([None, self.stamp(now), "2019-11-01 10:00:00"])
            self.prog.sql("UPDATE participants SET status = ?, registered_at = ?, "
                          "updated_at = ? WHERE email = ?", status, reg, self.stamp(now), email)
            return f"{email} -> {status} (registered_at {reg})"
        if kind == "absence":
            email = rng.choice(sorted(m.people))
            uid = rng.choice(SESSIONS)
            if (email, uid) in m.absences:
                m.absences.discard((email, uid))
                self.prog.sql("DELETE FROM absences WHERE email = ? AND session_uid = ?",
                              email, uid)
                return f"absence removed {email} {uid}"
            m.absences.add((email, uid))
            self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", email, uid)
            return f"absence added {email} {uid}"
        if kind == "attachment":
            email = rng.choice(sorted(m.people))
            if email in m.attachments:
                m.attachments.discard(email)
                self.prog.sql("DELETE FROM attachments WHERE email = ?", email)
                return f"attachments removed {email}"
            m.attachments.add(email)
            self.prog.sql("INSERT INTO attachments(email, message, path) VALUES "
                          "(?, 'material', 'basfakta-umea.pdf')", email)
            return f"attachment added {email}"
        if kind == "move":
            return self.move_session(now)
        if kind == "hold":
            # Held: updates and cancels wait, with the reminders of a
            # session whose update waits; back to send lets them go.
            m.hold = not m.hold
            return f"changes = {'hold' if m.hold else 'send'}"
        if kind == "cancel":
            ahead = [u for u in SESSIONS if m.sessions[u]["start"] > now + datetime.timedelta(
                days=1)]
            if not ahead:
                return "no session ahead to cancel"
            uid = rng.choice(ahead)
            s = m.sessions[uid]
            s["cancelled"] = not s["cancelled"]
            return f"{uid} cancelled = {s['cancelled']}"
        if kind == "fokus":
            uid = rng.choice(SESSIONS)
            cats = m.sessions[uid]["cats"]
            cats.symmetric_difference_update({"fokus"})
            return f"{uid} categories {sorted(cats)}"
        if kind == "deadline":
            if m.deadline <= now.date() + datetime.timedelta(days=1):
                return "deadline passed"
            for _ in range(10):
                d = m.deadline + datetime.timedelta(days=self.rng.choice(
                    [-9, -6, -3, -1, 1, 2, 5, 8, 14, 30]))
                if d > now.date() + datetime.timedelta(days=1) and d not in m.deadline_used:
                    m.deadline = d
                    m.deadline_used.add(d)
                    return f"deadline moved to {d}"
            return "deadline not moved"
        raise AssertionError(kind)

    def move_session(self, now):
        m = self.model
        i = self.rng.randrange(3)
        uid = SESSIONS[i]
        s = m.sessions[uid]
        if s["start"] <= now + datetime.timedelta(days=1):
            return f"{uid} has begun or is too close to move"
        lo = m.sessions[SESSIONS[i - 1]]["start"] + datetime.timedelta(days=2) if i else None
        hi = m.sessions[SESSIONS[i + 1]]["start"] - datetime.timedelta(days=2) if i < 2 else None
        for _ in range(10):
            new = s["start"] + datetime.timedelta(days=self.rng.choice(
                [-10, -7, -4, -2, -1, 1, 2, 3, 7, 12]))
            if new in s["used"] or new <= now + datetime.timedelta(days=1):
                continue
            if (lo and new < lo) or (hi and new > hi):
                continue
            s["start"] = new
            s["used"].add(new)
            return f"{uid} moved to {new.isoformat()}"
        return f"{uid} not moved"

    @staticmethod
    def stamp(now):
        return now.strftime("%Y-%m-%d %H:%M:%S")

    # --- time ---------------------------------------------------------

    def advance(self, now):
        r = self.rng.random()
        if r < 0.3:
            nxt = self.model.next_trigger(now)
            if nxt:
                return nxt + datetime.timedelta(seconds=self.rng.choice([0, 0, 30]))
        if r < 0.5:
            return now + datetime.timedelta(hours=self.rng.randint(1, 14),
                                            minutes=self.rng.randint(0, 59))
        if r < 0.9:
            return now + datetime.timedelta(days=self.rng.randint(1, 6),
                                            hours=self.rng.randint(0, 23),
                                            minutes=self.rng.randint(0, 59))
        return now + datetime.timedelta(days=self.rng.randint(10, 25),
                                        hours=self.rng.randint(0, 23))

    # --- one pass and its checks -------------------------------------

    def run_pass(self, now, edited=True):
        t = iso(now)
        files = set(self.prog.outbox_messages())
        try:
            sent, lines = once_checked(self.tc, self.prog, t)
        except AssertionError as e:
            self.fail(f"check 1 (plan = once) at {t}: {e}")
        self.check_calendars(now, set(self.prog.outbox_messages()) - files)
        if not edited:
            self.check_promises(now, sent, lines)
        self.promises = [(plan_time(l[0]), (l[1], l[2].lower(), l[3], l[4])) for l in lines
                         if not l[0].startswith("skipped:") and l[0] != "held"
                         and l[4] != "-" and plan_time(l[0]) > now]
        self.model.observe(now)
        per_target = collections.Counter()
        for r in sent:
            if r.rule == "-":
                continue
            k = (r.message, r.email, r.target, r.rule, r.offset)
            if k not in self.model.owed:
                k = (r.message, r.email, "first", r.rule, r.offset)
            if k not in self.model.owed or self.model.owed[k][3] != r.target:
                self.fail(f"check 3 at {t}: sent {r.key}, not owed by the model "
                          f"(owed of {r.email}: "
                          f"{sorted(x for x in self.model.owed if x[1] == r.email)})")
            _, ident, since, _, when = self.model.owed[k]
            trig = trigger(int(r.offset[:-1]), self.model.target_date(r.target, when))
            if trig < since:
                self.fail(f"check 3 at {t}: sent {r.key}: its trigger {iso(trig)} is before "
                          f"it was owed ({iso(since)})")
            if now >= self.model.target_start(r.target, when):
                self.fail(f"check 3 at {t}: sent {r.key} after its target began "
                          f"({iso(self.model.target_start(r.target, when))})")
            once = k + (ident,)
            if once in self.model.sent:
                self.fail(f"check 2 at {t}: {r.key} sent again for the same target "
                          f"({ident})")
            self.model.sent.add(once)
            per_target[(r.message, r.email, r.target)] += 1
        many = [k for k, n in per_target.items() if n > 1]
        if many:
            self.fail(f"check 4 at {t}: several reminders at once for {many}: "
                      f"{[r.key for r in sent]}")
        return sent

    def check_calendars(self, now, paths):
        """Check 6 (see the module doc)."""
        arrived = []
        for path in paths:
            m = parse(path)
            subject = str(m["Subject"])
            for part in m.walk():
                if part.get_content_type() != "text/calendar":
                    continue
                cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
                ev = [c for c in cal.walk() if c.name == "VEVENT"][0]
                # A reminder at a SEQUENCE goes after the invite or update
                # that brought it (in one pass, to one participant).
                reminder = subject.startswith(("Påminnelse", "Reminder"))
                arrived.append((int(ev["SEQUENCE"]), reminder, str(cal["METHOD"]),
                                m["To"].addresses[0].addr_spec.lower(), str(ev["UID"]),
                                ev.decoded("DTSTART"), str(ev.get("STATUS", "")), subject))
                break
        self.calendar_messages += len(arrived)
        for seq, _, method, email, uid, start, status, subject in sorted(arrived):
            held = self.calendars.get((email, uid))
            what = f"check 6 at {iso(now)}: {method} {subject!r} to {email} about {uid} at " \
                   f"SEQUENCE {seq} ({start.isoformat()}), their calendar held {held}"
            update = subject.startswith(("Ändrat", "Changed"))
            if method == "CANCEL":
                if not held or not held["holds"] or seq <= held["seq"]:
                    self.fail(what)
            elif held:
                same = held["holds"] and held["start"] == start and status != "CANCELLED"
                if seq < held["seq"] or (not same and seq == held["seq"]):
                    self.fail(what)
                if update and same:
                    self.fail(what + ": an update that changes nothing")
            elif update:
                self.fail(what + ": an update of what it never held")
            self.calendars[(email, uid)] = dict(holds=method != "CANCEL", seq=seq, start=start)
        m = self.model
        if in_quiet_hours(now) or m.hold:
            return  # change notices wait for 07:00, or for changes = send
        for uid, ses in m.sessions.items():
            if ses["start"] <= now + datetime.timedelta(days=1):
                continue
            for email, status in m.people.items():
                want = (status == "registered" and not ses["cancelled"]
                        and (email, uid) not in m.absences)
                held = self.calendars.get((email, uid))
                holds = bool(held and held["holds"])
                if want != holds or (want and held["start"] != ses["start"]):
                    self.fail(f"check 6 at {iso(now)}: {email}'s calendar should "
                              f"{'' if want else 'not '}hold {uid} "
                              f"({ses['start'].isoformat()}), it holds {held}")

    def check_promises(self, now, sent, lines):
        """Check 5: what the last pass's plan promised for (then, now] is
        what went, nothing lost, nothing added; inside quiet hours
        (21:00-07:00 in the example) it is promised again for 07:00."""
        latest = {}
        # When what is overdue goes: now, or when quiet hours end.
        go = now
        if in_quiet_hours(now):
            go = now.replace(hour=7, minute=0, second=0)
            if now.hour >= 21:
                go += datetime.timedelta(days=1)
        # The soonest promise still ahead, of each participant, message
        # and target: what would supersede one going late.
        ahead = {}
        for due, k in self.promises:
            if due > now and (k[:3] not in ahead or due < ahead[k[:3]]):
                ahead[k[:3]] = due
        for due, k in self.promises:
            if due > now:
                continue
            # A promise that would go closer than min-lead to its event (or
            # after it began) lapses: a pass late enough skips it.
            uid = k[2]
            if uid in self.model.sessions and self.model.sessions[uid]["start"] - MIN_LEAD < go:
                continue
            if (uid == DEADLINE and
                    self.model.target_start(DEADLINE, self.model.deadline) - MIN_LEAD < go):
                continue
            group = k[:3]
            if group not in latest or due > latest[group][0]:
                latest[group] = (due, k)
        # One going late lapses when a later one goes before half the time
        # the rules put between them has passed (their triggers at 09:00,
        # outside quiet hours: as promised).
        for group, (due, k) in list(latest.items()):
            nxt = ahead.get(group)
            if nxt is not None and nxt - go < (nxt - due) / 2:
                del latest[group]
        promised = collections.Counter(k for _, k in latest.values())
        got = collections.Counter((r.message, r.email.lower(), r.target, r.rule)
                                  for r in sent if r.rule != "-")
        if in_quiet_hours(now):
            again = collections.Counter(
                (l[1], l[2].lower(), l[3], l[4]) for l in lines
                if not l[0].startswith("skipped:") and l[0] != "held"
                and plan_time(l[0]) == go)
            promised -= again
        self.kept += sum(promised.values())
        if promised != got:
            self.fail(f"check 5 at {iso(now)}: nothing was edited since the last pass, "
                      f"but what it promised is not what went\n"
                      f"promised, not sent: {sorted((promised - got).elements())}\n"
                      f"sent, not promised: {sorted((got - promised).elements())}")

    def go(self):
        now = START
        self.log.append(f"{iso(now)} first pass")
        self.run_pass(now)
        passes = sends = 0
        edited = False
        for step in range(STEPS):
            edits = [self.edit(now) for _ in range(self.rng.choice([0, 1, 1, 1, 2]))]
            edited = edited or bool(edits)
            self.write_files()
            now = self.advance(now)
            if now > END:
                break
            down = self.rng.random() < 0.2
            self.log.append(f"{iso(now)} {'(down) ' if down else ''}{'; '.join(edits)}")
            if down:
                continue
            sent = self.run_pass(now, edited)
            edited = False
            passes += 1
            sends += len(sent)
            self.log[-1] += f" -> sent {len(sent)}: " + ", ".join(
                f"{r.message}/{r.email.split('@')[0]}/{r.target.split('@')[0][-1]}/{r.offset}"
                for r in sent if r.rule != "-")
            if self.rng.random() < 0.1:
                again, _ = once_checked(self.tc, self.prog, iso(now))
                if again:
                    self.fail(f"a second --once at {iso(now)} sent {[r.key for r in again]}")
        return passes, sends


def seeds():
    seed = os.environ.get("KALLAD_PROPERTY_SEED")
    runs = os.environ.get("KALLAD_PROPERTY_RUNS")
    if seed:
        return [int(seed) + i for i in range(int(runs or 1))]
    if runs:
        extra = [random.SystemRandom().randrange(1, 10**6) for _ in range(int(runs))]
        return SEEDS + extra
    return SEEDS


class OwedPropertyTest(unittest.TestCase):
    def runs(self, seeds_, connections=0):
        total_sent = total_reminders = total_kept = total_calendar = 0
        for seed in seeds_:
            with self.subTest(seed=seed, connections=connections):
                tmp = tempfile.mkdtemp(prefix=f"kallad-property-{seed}-")
                run = None
                try:
                    run = Run(self, seed, tmp, connections)
                    passes, sends = run.go()
                    total_sent += sends
                    total_reminders += len(run.model.sent)
                    total_kept += run.kept
                    total_calendar += run.calendar_messages
                    self.assertGreater(passes, 3, f"seed {seed}: too few passes")
                finally:
                    if run and run.sink:
                        run.sink.stop()
                    shutil.rmtree(tmp, True)
        # The runs did exercise reminders, not only invites.
        self.assertGreater(total_reminders, 0)
        # ... and promises made by one pass were checked at the next.
        self.assertGreater(total_kept, 0)
        # ... and calendars were built from what arrived (check 6).
        self.assertGreater(total_calendar, 0)
        print(f"\nproperty: seeds {seeds_}, connections {connections or 'none (outbox)'}, "
              f"{total_sent} sent, {total_reminders} reminders, {total_kept} kept as promised, "
              f"{total_calendar} calendar messages",
              file=sys.stderr)

    def test_random_edits_and_downtime(self):
        """Random edits and downtime: plan = once, nothing twice, nothing
        sent that was not owed before its trigger, promises kept (see the
        module doc)."""
        self.runs(seeds())

    def test_random_edits_over_four_smtp_connections(self):
        """The same through smtp-sink over [smtp] connections = 4, where
        outcomes land out of order and are committed several at once
        (KALLAD_PROPERTY_CONNECTIONS=N changes the 4). Two of the fixed
        seeds, unless KALLAD_PROPERTY_SEED or _RUNS asks for more."""
        asked = os.environ.get("KALLAD_PROPERTY_SEED") or os.environ.get("KALLAD_PROPERTY_RUNS")
        self.runs(seeds() if asked else seeds()[:2],
                  int(os.environ.get("KALLAD_PROPERTY_CONNECTIONS", "4")))


if __name__ == "__main__":
    main()
