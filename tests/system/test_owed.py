"""Issue 9, one model of what is owed: each numbered case of the issue run
through the real binary into the outbox, with --now as the clock.

A rule delivery becomes owed at the first writing pass in which all it
hangs on holds (the rule as it is now, the target at its current time, the
participant in the audience and not absent); it is sent only if it was owed
at or before its trigger. Every --once here is checked against the
--plan --all of the same moment: what the plan shows due by then is
exactly what that --once sends."""

import collections
import datetime
import os
import re
import sqlite3
import sys
import time

import icalendar

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KalladCase, main, parse  # noqa: E402
from test_daemon import DaemonCase  # noqa: E402

NOV20 = "2019-11-20T08:00:00+01:00"
S1 = "styra-leda-2020-1@example.org"
S2 = "styra-leda-2020-2@example.org"
S3 = "styra-leda-2020-3@example.org"
S4 = "styra-leda-2020-4@example.org"
DEADLINE = "anmalan-2020@example.org"
ANNA = "anna.berglund@gavle.example.se"
JOHAN = "johan.lindqvist@regionvasterbotten.example.se"
KARIN = "karin.hedlund@skane.example.se"
LARS = "lars.ostlund@orebro.example.se"
HENRIK = "henrik.dahl@karlstad.example.se"
INGRID = "ingrid.wallin@regiondalarna.example.se"
TOMAS = "tomas.falk@vaxjo.example.se"
HELENA = "helena.strand@gotland.example.se"
REGISTERED = 10          # registered in the example
ATTENDING_S1 = 10        # none of them absent from session 1
ATTENDING_S2 = 9         # Karin is absent from session 2

SESSION_RULE = ("[rule session-reminders]\nmessage = session-reminder\n"
                "before  = 14d, 2d\nat      = 09:00\nto      = registered\n")


# --- shared with test_owed_property.py ---------------------------------

Sent = collections.namedtuple("Sent", "key message email target rule offset seq due path")


def when(text):
    return datetime.datetime.fromisoformat(text)


def plan_lines(out):
    return [line.split("\t") for line in out.splitlines() if line]


def due_lines(lines, now):
    """The lines of a --plan --all that are due at `now` (not skipped, not
    held)."""
    t = when(now)
    out = []
    for line in lines:
        if line[0].startswith("skipped:") or line[0] == "held":
            continue
        if when(line[0]) <= t:
            out.append(line)
    return out


def sent_rows(state_path):
    """key -> Sent for every row of the ledger in state 1 (sent)."""
    if not os.path.exists(state_path):
        return {}
    con = sqlite3.connect(state_path, timeout=30)
    try:
        rows = con.execute("SELECT key, message, email, target, rule, due, detail "
                           "FROM deliveries WHERE state = 1").fetchall()
    finally:
        con.close()
    out = {}
    for key, message, email, target, rule, due, detail in rows:
        parts = key.split("|")
        m = re.match(r"written to (.*)$", detail or "")
        out[key] = Sent(key, message, email.lower(), target, rule or "-", parts[4], parts[5],
                        due, m.group(1) if m else None)
    return out


def once_checked(tc, prog, now):
    """--plan --all --now NOW, then --once --now NOW: asserts that what the
    plan showed due is exactly what was sent (as (message, email, uid,
    rule)), one outbox file per sent row. Returns (sent rows, plan lines)."""
    lines = plan_lines(prog.run("--plan", "--all", "--now", now, check=0).stdout)
    before = sent_rows(prog.state)
    files = set(prog.outbox_messages())
    prog.run("--once", "--now", now, check=0)
    after = sent_rows(prog.state)
    new = [row for key, row in sorted(after.items()) if key not in before]
    new_files = set(prog.outbox_messages()) - files
    tc.assertEqual(len(new_files), len(new), f"--once --now {now}: outbox files vs ledger")
    planned = collections.Counter((l[1], l[2].lower(), l[3], l[4]) for l in due_lines(lines, now))
    got = collections.Counter((r.message, r.email, r.target, r.rule) for r in new)
    if planned != got:
        tc.fail(f"at {now} the plan and --once differ\n"
                f"planned, not sent: {sorted((planned - got).elements())}\n"
                f"sent, not planned: {sorted((got - planned).elements())}")
    return new, lines


def edit_calendar(prog, fn):
    ics = os.path.join(prog.dir, "programme.ics")
    with open(ics, encoding="utf-8", newline="") as f:
        text = f.read()
    new = fn(text)
    if new == text:
        raise AssertionError("the calendar edit changed nothing")
    with open(ics, "w", encoding="utf-8", newline="") as f:
        f.write(new)


def add_session(prog, uid, start, end):
    block = (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20191001T080000Z\r\n"
             f"DTSTART;TZID=Europe/Stockholm:{start}\r\n"
             f"DTEND;TZID=Europe/Stockholm:{end}\r\n"
             "SUMMARY:Extra tillfälle\r\nLOCATION:Långholmen\r\nSEQUENCE:0\r\n"
             "STATUS:CONFIRMED\r\nCATEGORIES:session\r\nEND:VEVENT\r\n")
    edit_calendar(prog, lambda t: t.replace("BEGIN:VTODO", block + "BEGIN:VTODO", 1))


# --- the case tests -------------------------------------------------------


class OwedCase(KalladCase):
    def once(self, now):
        sent, self.last_plan = once_checked(self, self.prog, now)
        return sent

    def plan(self, now, *extra):
        return plan_lines(self.prog.run("--plan", *extra, "--now", now, check=0).stdout)

    def edit_calendar(self, fn):
        edit_calendar(self.prog, fn)

    def edit_session(self, uid, fn):
        def edit(text):
            start = text.index("UID:" + uid)
            end = text.index("END:VEVENT", start)
            return text[:start] + fn(text[start:end]) + text[end:]
        self.edit_calendar(edit)

    def assertPlanHas(self, line, plan=None):
        """The plan line, or a failure showing only the lines of the same
        message, participant, target and rule."""
        plan = self.last_plan if plan is None else plan
        if line not in plan:
            near = [l for l in plan if l[1:5] == line[1:5]]
            self.fail(f"{line} not in the plan; its lines for {line[1:5]}: {near}")

    def what(self, sent, message=None, target=None):
        """(email, target, rule, offset) of the sent rows of one message."""
        return sorted((r.email, r.target, r.rule, r.offset) for r in sent
                      if (message is None or r.message == message)
                      and (target is None or r.target == target))

    def emails(self, sent, message, target=None):
        return sorted(email for email, _, _, _ in self.what(sent, message, target))


class Case1CatchUpAcrossRules(OwedCase):
    def test_case_1_catch_up_sends_only_the_latest_trigger_whatever_rule(self):
        """Case 1: two rules remind of one session (14 days and 1 day
        before); kallad is stopped across both due times. One reminder per
        participant goes, from the rule with the latest trigger; the other
        is skipped:superseded."""
        self.prog.edit_conf(SESSION_RULE, "[rule session-early]\nmessage = session-reminder\n"
                            "before = 14d\nat = 09:00\nto = registered\n")
        self.prog.append_conf("[rule session-late]\nmessage = session-reminder\n"
                              "before = 1d\nat = 09:00\nto = registered")
        self.assertEqual(len(self.once(NOV20)), 28)
        # Stopped until 19 Feb 10:00: 6 Feb 09:00 (14d) and 19 Feb 09:00 (1d)
        # of session 1 both passed.
        sent = self.once("2020-02-19T10:00:00+01:00")
        self.assertPlanHas(["skipped:superseded", "session-reminder", ANNA, S1,
                            "session-early"])
        reminders = self.what(sent, "session-reminder", S1)
        self.assertEqual(len(reminders), ATTENDING_S1, reminders)
        self.assertEqual({(rule, off) for _, _, rule, off in reminders}, {("session-late", "1d")})
        self.assertEqual(len(set(e for e, _, _, _ in reminders)), ATTENDING_S1)
        self.assertEqual(self.once("2020-02-19T10:05:00+01:00"), [])


class CatchUpJustBeforeTheNext(OwedCase):
    def test_a_reminder_caught_up_minutes_before_the_next_is_superseded(self):
        """Stopped over the 14-day reminder, back at 08:55 on the day of
        the 2-day one: the 14-day one does not go five minutes before it;
        it is recorded superseded when the 2-day one goes. Back with more
        than half the twelve days to go, it is caught up."""
        self.assertEqual(len(self.once(NOV20)), 28)  # SESSION_RULE: 14d, 2d
        # (The material, 14 days before, is caught up: another message.)
        self.assertEqual(self.what(self.once("2020-02-18T08:55:00+01:00"), "session-reminder",
                                   S1), [])
        self.assertPlanHas(["skipped:superseded", "session-reminder", ANNA, S1,
                            "session-reminders"])
        sent = self.once("2020-02-18T09:00:00+01:00")
        reminders = self.what(sent, "session-reminder", S1)
        self.assertEqual(len(reminders), ATTENDING_S1, reminders)
        self.assertEqual({(rule, off) for _, _, rule, off in reminders},
                         {("session-reminders", "2d")})
        self.assertEqual(self.once("2020-02-18T10:00:00+01:00"), [])

    def test_a_reminder_caught_up_with_days_to_the_next_goes(self):
        self.assertEqual(len(self.once(NOV20)), 28)
        sent = self.once("2020-02-11T12:00:00+01:00")
        reminders = self.what(sent, "session-reminder", S1)
        self.assertEqual(len(reminders), ATTENDING_S1, reminders)
        self.assertEqual({off for _, _, _, off in reminders}, {"14d"})


class SupersededRetryTest(OwedCase):
    def refused_then(self, now):
        """Anna's 14-day reminder of session 1 refused with a 4xx (a
        retry due at once); a pass at now."""
        self.once(NOV20)
        self.once("2020-02-06T09:00:00+01:00")
        con = sqlite3.connect(self.prog.state)
        con.execute("UPDATE deliveries SET state = 3, next_attempt = 0 WHERE email = ? AND "
                    "message = 'session-reminder' AND target = ?", (ANNA, S1))
        con.commit()
        con.close()
        return self.once(now)

    def state_of_14d(self):
        con = sqlite3.connect(self.prog.state)
        state, = con.execute("SELECT state FROM deliveries WHERE email = ? AND message = "
                             "'session-reminder' AND target = ?", (ANNA, S1)).fetchone()
        con.close()
        return state

    def test_a_retry_superseded_by_one_ahead_waits_for_it(self):
        # On 13 Feb the 2-day reminder is five days ahead, less than half
        # of the twelve: the retry is superseded, but not given up until
        # the 2-day one goes.
        self.assertEqual(self.what(self.refused_then("2020-02-13T12:00:00+01:00"),
                                   "session-reminder"), [])
        self.assertEqual(self.state_of_14d(), 3)
        sent = self.once("2020-02-18T09:00:00+01:00")
        self.assertIn((ANNA, S1, "session-reminders", "2d"), self.what(sent, "session-reminder"))
        self.assertEqual(self.state_of_14d(), 5)

    def test_a_retry_goes_after_all_when_the_one_ahead_stops_being_owed(self):
        self.refused_then("2020-02-13T12:00:00+01:00")
        self.prog.edit_conf(SESSION_RULE, SESSION_RULE.replace("14d, 2d", "14d"))
        sent = self.once("2020-02-14T09:00:00+01:00")
        self.assertEqual(self.what(sent, "session-reminder"),
                         [(ANNA, S1, "session-reminders", "14d")])


class CalendarMentionedTest(OwedCase):
    def test_a_reminder_mentions_the_calendar_only_when_it_carries_one(self):
        """A rule to all reaches the invited too: their reminder has no
        calendar (kallad follows only what the registered hold), and its
        text does not say one is attached ({{calendar.attached}})."""
        self.prog.edit_conf(SESSION_RULE, SESSION_RULE.replace("= registered", "= all"))
        self.once(NOV20)
        sent = [r for r in self.once("2020-02-06T09:00:00+01:00")
                if r.message == "session-reminder"]
        seen = set()
        for r in sent:
            m = parse(r.path)
            has_cal = any(p.get_content_type() == "text/calendar" for p in m.walk())
            text = next(p for p in m.walk() if p.get_content_type() == "text/plain")
            text = text.get_content()
            says = ("Kalenderinbjudan är bifogad" in text
                    or "calendar invitation is attached" in text)
            self.assertEqual(has_cal, says, (r.email, text))
            seen.add(has_cal)
        self.assertEqual(seen, {True, False})


class Case2LateRegistration(OwedCase):
    def setUp(self):
        super().setUp()
        # Henrik gets material once registered: he has a file.
        self.prog.sql("INSERT INTO attachments(email, message, path) VALUES (?, 'material', "
                      "'basfakta-gavle.pdf')", HENRIK)

    def test_case_2_status_change_after_triggers_is_late_registration(self):
        """Case 2: late-registrations = skip. Participants who join the
        audience by a status change (invited -> registered with
        registered_at NULL, waitlisted -> registered, cancelled ->
        registered) or by an absence removed, after reminders of sessions
        ahead passed: they get the invites, not the passed reminders nor
        the material (skipped:late-registration); later triggers reach
        them."""
        self.once(NOV20)
        self.once("2020-02-10T12:00:00+01:00")   # 14d reminders and material went
        self.prog.sql("UPDATE participants SET status = 'registered', registered_at = NULL, "
                      "updated_at = '2020-02-10 12:30' WHERE email = ?", HENRIK)
        self.prog.sql("UPDATE participants SET status = 'registered', "
                      "updated_at = '2020-02-10 12:30' WHERE email = ?", TOMAS)
        self.prog.sql("UPDATE participants SET status = 'registered', "
                      "updated_at = '2020-02-10 12:30' WHERE email = ?", HELENA)
        sent = self.once("2020-02-10T13:00:00+01:00")
        joined = sorted([HENRIK, TOMAS, HELENA])
        self.assertEqual(sorted((r.message, r.email, r.target) for r in sent),
                         sorted(("invite", e, s) for e in joined for s in (S1, S2, S3)))
        for who in joined:
            self.assertPlanHas(["skipped:late-registration", "session-reminder", who, S1,
                                "session-reminders"])
        self.assertPlanHas(["skipped:late-registration", "material", HENRIK, S1, "material"])
        # Their later triggers are owed in time: the 2d reminder of session 1.
        sent = self.once("2020-02-18T09:00:30+01:00")
        self.assertEqual(self.emails(sent, "session-reminder", S1),
                         sorted(joined + self.registered_before()))
        # An absence removed after the 14d trigger of session 2 (27 Feb).
        self.prog.sql("DELETE FROM absences WHERE email = ? AND session_uid = ?", KARIN, S2)
        sent = self.once("2020-03-01T12:00:00+01:00")
        self.assertEqual([(r.message, r.target) for r in sent if r.email == KARIN],
                         [("invite", S2)])
        self.assertPlanHas(["skipped:late-registration", "session-reminder", KARIN, S2,
                            "session-reminders"])
        self.assertPlanHas(["2020-03-10T09:00:00+01:00", "session-reminder", KARIN, S2,
                            "session-reminders"])
        sent = self.once("2020-03-10T09:00:00+01:00")
        self.assertIn(KARIN, self.emails(sent, "session-reminder", S2))

    def registered_before(self):
        return [ANNA, JOHAN, "maria.ekstrom@lund.example.se", KARIN,
                "per.hallberg+styraleda@umea.example.se", LARS,
                "sofia.nyberg@regionuppsala.example.se", "asa.granqvist@vasteras.example.se",
                "mikael.sandberg@jamtland.example.se", "eva.lundgren@norrkoping.example.se"]

    def test_case_2_late_registrations_send_goes_at_once(self):
        """Case 2, the other policy: with late-registrations = send the
        passed reminder and the material go at once to who joined late."""
        self.prog.edit_conf("late-registrations = skip", "late-registrations = send")
        self.once(NOV20)
        self.once("2020-02-10T12:00:00+01:00")
        self.prog.sql("UPDATE participants SET status = 'registered', registered_at = NULL, "
                      "updated_at = '2020-02-10 12:30' WHERE email = ?", HENRIK)
        sent = self.once("2020-02-10T13:00:00+01:00")
        self.assertEqual(sorted((r.message, r.target, r.offset) for r in sent),
                         sorted([("invite", S1, "-"), ("invite", S2, "-"), ("invite", S3, "-"),
                                 ("session-reminder", S1, "14d"), ("material", S1, "14d")]))


class Case3DeadlineExtended(OwedCase):
    def test_case_3_extended_deadline_reminds_again_for_the_new_date(self):
        """Case 3: the deadline's DUE moves from 13 Dec to 31 Jan after its
        14d and 7d triggers were skipped (kallad started on 10 Dec): the
        reminders for the new date are planned and sent, under keys with
        the deadline's revision 1."""
        self.once("2019-12-10T10:00:00+01:00")
        self.assertPlanHas(["skipped:before-known", "deadline-reminder", HENRIK, DEADLINE,
                            "registration-deadline"])
        self.edit_calendar(lambda t: t.replace("DUE;VALUE=DATE:20191213",
                                               "DUE;VALUE=DATE:20200131"))
        self.assertEqual(self.once("2019-12-10T11:00:00+01:00"), [])
        for day in ("2020-01-17", "2020-01-24", "2020-01-30"):
            for who in (HENRIK, INGRID):
                self.assertPlanHas([f"{day}T09:00:00+01:00", "deadline-reminder", who, DEADLINE,
                                    "registration-deadline"])
        # Nothing for the old date any more.
        self.assertEqual(self.once("2019-12-12T09:00:30+01:00"), [])
        for day, off in (("2020-01-17", "14d"), ("2020-01-24", "7d"), ("2020-01-30", "1d")):
            sent = self.once(f"{day}T09:00:30+01:00")
            self.assertEqual(sorted(r.key for r in sent),
                             sorted(f"deadline-reminder|{who}|{DEADLINE}|registration-deadline"
                                    f"|{off}|1" for who in (HENRIK, INGRID)))
            subject = str(parse(sent[0].path)["Subject"])
            self.assertRegex(subject, r"(?i)31 jan|jan\w* 31", subject)


class Case4MovedAfterReminder(OwedCase):
    def test_case_4_moved_session_gets_its_reminder_at_the_new_time(self):
        """Case 4: session 1 moves a week later after its 2-day reminder
        went. The 2d reminder for the new time (25 Feb, still ahead) is in
        the plan and goes at that time; the 14d one for the new time (13
        Feb) had passed when kallad learnt of the move: before-known."""
        self.once(NOV20)
        self.once("2020-02-06T09:00:30+01:00")
        sent = self.once("2020-02-18T09:00:30+01:00")
        self.assertEqual(len(self.what(sent, "session-reminder", S1)), ATTENDING_S1)
        self.edit_session(S1, lambda b: b.replace("20200220T100000", "20200227T100000")
                          .replace("20200221T130000", "20200228T130000"))
        sent = self.once("2020-02-18T12:00:00+01:00")
        self.assertEqual({r.message for r in sent}, {"update"})
        at_move = self.last_plan
        self.assertPlanHas(["2020-02-25T09:00:00+01:00", "session-reminder", ANNA, S1,
                            "session-reminders"])
        self.assertEqual(self.what(self.once("2020-02-24T09:00:00+01:00"), "session-reminder"),
                         [])
        sent = self.once("2020-02-25T09:00:00+01:00")
        reminders = [r for r in sent if r.message == "session-reminder" and r.target == S1]
        self.assertEqual(len(reminders), ATTENDING_S1)
        self.assertEqual({r.offset for r in reminders}, {"2d"})
        anna = [r for r in reminders if r.email == ANNA][0]
        cal = [p for p in parse(anna.path).walk() if p.get_content_type() == "text/calendar"]
        self.assertTrue(cal, "the reminder carries the session's calendar entry")
        ev = [c for c in icalendar.Calendar.from_ical(cal[0].get_payload(decode=True)).walk()
              if c.name == "VEVENT"][0]
        self.assertEqual(ev["DTSTART"].dt.isoformat(), "2020-02-27T10:00:00+01:00")
        self.assertEqual(self.once("2020-02-25T09:10:00+01:00"), [])
        # The 14d trigger for the new time (13 Feb) had passed when kallad
        # learnt of the move.
        self.assertPlanHas(["skipped:before-known", "session-reminder", ANNA, S1,
                            "session-reminders"], at_move)


class Case5OffsetAddedInDowntime(OwedCase):
    def test_case_5_offset_added_while_stopped(self):
        """Case 5: before = 14d becomes 14d, 2d while kallad is stopped
        across both triggers. The 2d became owed after its trigger
        (before-known) and so supersedes nothing: the 14d, owed since
        November, is caught up."""
        self.prog.edit_conf("before  = 14d, 2d", "before  = 14d")
        self.once(NOV20)
        self.prog.edit_conf("before  = 14d\nat      = 09:00\nto      = registered",
                            "before  = 14d, 2d\nat      = 09:00\nto      = registered")
        sent = self.once("2020-02-19T10:00:00+01:00")
        self.assertPlanHas(["skipped:before-known", "session-reminder", ANNA, S1,
                            "session-reminders"])
        reminders = self.what(sent, "session-reminder", S1)
        self.assertEqual(len(reminders), ATTENDING_S1, reminders)
        self.assertEqual({off for _, _, _, off in reminders}, {"14d"})


class Case6ScopeChanges(OwedCase):
    def test_case_6_rule_removed_and_put_back(self):
        """Case 6: a rule removed, then put back after a trigger passed:
        that trigger was not owed in time (before-known); nothing of the
        past is sent, the triggers ahead are."""
        self.once(NOV20)
        self.prog.edit_conf(SESSION_RULE, "")
        self.once("2020-02-01T10:00:00+01:00")
        self.prog.append_conf(SESSION_RULE)
        sent = self.once("2020-02-10T10:00:00+01:00")
        self.assertEqual(self.what(sent, "session-reminder"), [])
        self.assertPlanHas(["skipped:before-known", "session-reminder", ANNA, S1,
                            "session-reminders"])
        self.assertPlanHas(["2020-02-18T09:00:00+01:00", "session-reminder", ANNA, S1,
                            "session-reminders"])

    def test_case_6_audience_widened(self):
        """Case 6: `to = registered` widened to `to = all` after the 14d
        trigger of session 1: the invited and waitlisted never get that
        passed reminder; they get the 2d one."""
        self.once(NOV20)
        self.once("2020-02-06T09:00:30+01:00")
        self.prog.edit_conf("to      = registered", "to      = all")
        sent = self.once("2020-02-10T10:00:00+01:00")
        self.assertEqual(self.what(sent, "session-reminder"), [])
        # The rule as it is now was not known before the trigger
        # (before-known); read as "the rule was known, they joined its
        # audience late" it is late-registration. Skipped either way.
        for who in (HENRIK, INGRID, TOMAS):
            reasons = {l[0] for l in self.last_plan
                       if l[1:5] == ["session-reminder", who, S1, "session-reminders"]
                       and l[0].startswith("skipped:")}
            self.assertTrue(reasons & {"skipped:before-known", "skipped:late-registration"},
                            (who, reasons))
        sent = self.once("2020-02-18T09:00:30+01:00")
        got = self.emails(sent, "session-reminder", S1)
        self.assertEqual(len(got), ATTENDING_S1 + 3)
        self.assertTrue({HENRIK, INGRID, TOMAS} <= set(got))

    def test_case_6_session_gains_the_rules_category(self):
        """Case 6: sessions 1 and 2 gain the category of a rule after its
        trigger for session 1 passed: no reminder of session 1 from it;
        the one of session 2 is planned."""
        self.prog.append_conf("[rule focus-reminders]\nmessage = session-reminder\n"
                              "category = fokus\nbefore = 10d\nat = 09:00\nto = registered")
        self.once(NOV20)
        self.once("2020-02-06T09:00:30+01:00")
        for uid in (S1, S2):
            self.edit_session(uid, lambda b: b.replace("CATEGORIES:session",
                                                       "CATEGORIES:session,fokus"))
        sent = self.once("2020-02-12T10:00:00+01:00")
        self.assertEqual(self.what(sent, "session-reminder"), [])
        self.assertPlanHas(["skipped:before-known", "session-reminder", ANNA, S1,
                            "focus-reminders"])
        self.assertPlanHas(["2020-03-02T09:00:00+01:00", "session-reminder", ANNA, S2,
                            "focus-reminders"])

    def test_case_6_rule_added_with_late_registrations_send(self):
        """Case 6: late-registrations = send, a rule added after its trigger
        for session 1 passed: nobody gets it, also not someone registered
        after that trigger (the rule was not known in time)."""
        self.prog.edit_conf("late-registrations = skip", "late-registrations = send")
        self.once(NOV20)
        self.prog.sql("UPDATE participants SET status = 'registered', "
                      "registered_at = '2020-02-10 09:30', updated_at = '2020-02-10 09:30' "
                      "WHERE email = ?", HENRIK)
        sent = self.once("2020-02-10T09:30:00+01:00")
        self.assertIn((HENRIK, S1, "session-reminders", "14d"),
                      self.what(sent, "session-reminder"))
        self.prog.append_conf("[rule extra]\nmessage = session-reminder\nbefore = 10d\n"
                              "at = 09:00\nto = registered")
        sent = self.once("2020-02-10T10:00:00+01:00")
        self.assertEqual(self.what(sent, "session-reminder"), [])
        self.assertPlanHas(["skipped:before-known", "session-reminder", HENRIK, S1, "extra"])


class Case7MaterialOnlyWithFiles(OwedCase):
    def test_case_7_material_only_to_who_has_attachment_rows(self):
        """Case 7: `material` goes only to participants with attachment
        rows for it; rows added after the trigger do not make it owed in
        time; rows added before it do."""
        self.prog.sql("DELETE FROM attachments WHERE email IN (?, ?)", ANNA, JOHAN)
        self.once(NOV20)
        self.prog.sql("INSERT INTO attachments(email, message, path) VALUES (?, 'material', "
                      "'basfakta-region-vasterbotten.pdf')", JOHAN)
        self.once("2020-02-01T10:00:00+01:00")
        self.assertNotIn(ANNA, [l[2] for l in due_lines(
            self.plan("2020-02-06T09:00:00+01:00", "--all"), "2020-02-06T09:00:00+01:00")
            if l[1] == "material"])
        sent = self.once("2020-02-06T09:00:30+01:00")
        material = [r for r in sent if r.message == "material"]
        self.assertEqual(len(material), REGISTERED - 1)
        self.assertNotIn(ANNA, [r.email for r in material])
        for r in material:
            names = [p.get_filename() for p in parse(r.path).iter_attachments()]
            self.assertTrue(any(n and n.endswith(".pdf") for n in names), (r.email, names))
        johan = [r for r in material if r.email == JOHAN][0]
        self.assertIn("basfakta-region-vasterbotten.pdf",
                      [p.get_filename() for p in parse(johan.path).iter_attachments()])
        self.prog.sql("INSERT INTO attachments(email, message, path) VALUES (?, 'material', "
                      "'basfakta-gavle.pdf')", ANNA)
        sent = self.once("2020-02-10T10:00:00+01:00")
        self.assertEqual([r for r in sent if r.message == "material"], [])


class Case8DescriptionQuiet(OwedCase):
    def test_case_8_description_only_edit_with_sequence_raised_is_quiet(self):
        """Case 8: description-changes = quiet; a calendar tool edits only
        the description and raises SEQUENCE: no update. A later change of
        place does send one, carrying the new description."""
        self.prog.append_conf("description-changes = quiet")
        self.assertEqual(len(self.once(NOV20)), 28)
        self.edit_session(S1, lambda b: b.replace("Inspiratör meddelas senare.",
                                                  "Inspiratör: Ulla Ek.")
                          .replace("SEQUENCE:0", "SEQUENCE:1"))
        self.assertEqual(self.once("2019-11-21T10:00:00+01:00"), [])
        self.assertEqual(self.once("2019-11-22T10:00:00+01:00"), [])
        self.edit_session(S1, lambda b: b.replace("Långholmens konferens", "Nya platsen"))
        sent = self.once("2019-11-23T10:00:00+01:00")
        self.assertEqual(sorted({(r.message, r.target) for r in sent}), [("update", S1)])
        self.assertEqual(len(sent), ATTENDING_S1)
        ev = [p for p in parse(sent[0].path).walk() if p.get_content_type() == "text/calendar"]
        text = ev[0].get_payload(decode=True).decode()
        self.assertIn("Nya platsen", text)
        self.assertIn("Ulla Ek", text.replace("\r\n ", ""))


class Case9FirstSession(OwedCase):
    def cancel(self, uid):
        self.edit_session(uid, lambda b: b.replace("STATUS:CONFIRMED", "STATUS:CANCELLED"))

    def test_case_9_first_session_cancelled_after_material_went(self):
        """Case 9: `sessions = first`: the material reaches every registered
        participant, also one absent from the first session; when that
        session is cancelled afterwards, it is not sent again for the new
        first session."""
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S1)
        self.once(NOV20)
        sent = self.once("2020-02-06T09:00:30+01:00")
        self.assertEqual(len(self.emails(sent, "material")), REGISTERED)
        self.assertIn(ANNA, self.emails(sent, "material"))
        self.cancel(S1)
        sent = self.once("2020-02-10T10:00:00+01:00")
        self.assertEqual({r.message for r in sent}, {"cancel"})
        self.assertNotIn("material", [l[1] for l in self.plan("2020-02-10T10:00:00+01:00")])
        sent = self.once("2020-02-27T09:00:30+01:00")
        self.assertEqual(self.emails(sent, "material"), [])
        self.assertEqual(len(self.emails(sent, "session-reminder", S2)), ATTENDING_S2)

    def test_case_9_first_session_cancelled_after_material_was_skipped(self):
        """Case 9: kallad started after the material's trigger (skipped,
        before-known); the first session is then cancelled: the material
        does not go for the new first session either."""
        self.once("2020-02-10T10:00:00+01:00")
        self.assertPlanHas(["skipped:before-known", "material", ANNA, S1, "material"])
        self.cancel(S1)
        self.once("2020-02-10T11:00:00+01:00")
        self.assertNotIn("material", [l[1] for l in self.plan("2020-02-10T11:00:00+01:00")])
        sent = self.once("2020-02-27T09:00:30+01:00")
        self.assertEqual(self.emails(sent, "material"), [])


class Case10QuietHoursOnDstNights(OwedCase):
    def setUp(self):
        super().setUp()
        self.prog.edit_conf("quiet-hours        = 21:00-07:00", "quiet-hours        = 22:00-02:30")

    def test_case_10_quiet_hours_end_in_the_repeated_autumn_hour(self):
        """Case 10: quiet 22:00-02:30 on the night of 24-25 Oct 2020 (03:00
        CEST -> 02:00 CET). Invites held at 23:00 are due when the clock
        first reads 02:30 (CEST; 02:30 CET is read as right too). Looked
        at again inside the repeated hour (02:10 CET), they are due at
        02:30 CET: never at a time in the past; --once sends them then."""
        add_session(self.prog, S4, "20201119T100000", "20201120T130000")
        self.assertEqual(self.once("2020-10-24T23:00:00+02:00"), [])
        invites = [l for l in self.last_plan if l[1] == "invite" and l[3] == S4]
        self.assertEqual(len(invites), REGISTERED)
        dues = {l[0] for l in invites}
        self.assertEqual(len(dues), 1, dues)
        self.assertIn(dues.pop(), ("2020-10-25T02:30:00+02:00", "2020-10-25T02:30:00+01:00"))
        # Inside the repeated hour (02:10 CET): held, due later than now.
        self.assertEqual(self.once("2020-10-25T02:10:00+01:00"), [])
        dues = {l[0] for l in self.last_plan if l[1] == "invite" and l[3] == S4}
        self.assertEqual(dues, {"2020-10-25T02:30:00+01:00"})
        self.assertEqual(self.once("2020-10-25T02:29:59+01:00"), [])
        sent = self.once("2020-10-25T02:30:00+01:00")
        self.assertEqual(sorted((r.message, r.target) for r in sent),
                         [("invite", S4)] * REGISTERED)

    def test_case_10_quiet_hours_end_on_the_spring_night(self):
        """Case 10: quiet 22:00-02:30 on 29 Mar 2020 (02:00 CET -> 03:00
        CEST: 02:30 never shows on the clock). The window ends when the
        clock jumps past 02:30, at 03:00 CEST: the plan says so (a time
        after now) and --once sends the held invites then, not before."""
        now = "2020-03-29T01:30:00+01:00"
        self.assertEqual(self.once(now), [])
        held = [l for l in self.last_plan if l[1] == "invite" and not l[0].startswith("skipped:")]
        self.assertEqual(len(held), REGISTERED - 1)   # session 3; Lars is absent
        self.assertEqual({l[0] for l in held}, {"2020-03-29T03:00:00+02:00"})
        self.assertEqual(self.once("2020-03-29T01:59:59+01:00"), [])
        sent = self.once("2020-03-29T03:00:00+02:00")
        self.assertEqual(sorted((r.message, r.target) for r in sent),
                         [("invite", S3)] * (REGISTERED - 1))


class MinLeadInDaysTest(OwedCase):
    def test_min_lead_in_days_counts_calendar_days_across_the_spring_change(self):
        """min-lead = 1d and a rule 1d before at 10:00: the day before a
        session at 10:00 on 29 Mar 2020 (clocks go forward that night) is
        23 hours long. A day of min-lead is a calendar day, as `before`
        counts it: the reminder goes at 10:00 on the 28th, as it does
        before a session on an ordinary day."""
        self.prog.edit_conf("min-lead           = 6h", "min-lead           = 1d")
        self.prog.append_conf("[rule day-before]\nmessage = session-reminder\nbefore = 1d\n"
                              "at = 10:00\nto = registered\n")
        add_session(self.prog, S4, "20200329T100000", "20200329T160000")
        self.once("2020-03-20T10:00:00+01:00")
        sent = self.once("2020-03-28T10:00:00+01:00")
        self.assertEqual(len(self.what(sent, "session-reminder", S4)), REGISTERED)
        self.assertFalse([l for l in self.last_plan if l[0] == "skipped:min-lead" and l[3] == S4])


class Case10Daemon(DaemonCase):
    def test_case_10_daemon_wakes_for_work_held_into_the_repeated_hour(self):
        """Case 10, the daemon: started at 02:29:57 CET on 25 Oct 2020,
        inside the repeated hour, with invites held by quiet hours
        22:00-02:30: its timer is armed for 02:30 CET and it sends them
        then, not before."""
        self.prog.edit_conf("quiet-hours        = 21:00-07:00", "quiet-hours        = 22:00-02:30")
        add_session(self.prog, S4, "20201119T100000", "20201120T130000")
        self.start("2020-10-25T02:29:57+01:00")
        status = self.notify.wait_for("STATUS=next")
        self.assertIn("02:30", status)
        self.assertEqual(self.prog.outbox_messages(), [])
        files = self.wait_outbox(REGISTERED, timeout=10)
        first = min(os.path.getmtime(f) for f in files)
        self.assertGreaterEqual(first, self.started + 2.5, "sent before 02:30 CET")
        self.assertLess(time.time() - self.started, 10)



class ExplainTest(OwedCase):
    def test_explain_one_participant(self):
        """--plan --all --explain EMAIL: only that participant, each line
        with a last column saying why, "owed since" for an owed line."""
        self.once(NOV20)
        p = self.prog.run("--plan", "--all", "--explain", ANNA, "--now",
                          "2019-11-21T10:00:00+01:00", check=0)
        lines = plan_lines(p.stdout)
        self.assertTrue(lines)
        self.assertEqual({l[2] for l in lines}, {ANNA})
        self.assertTrue(all(len(l) == 6 and l[5].strip() for l in lines), lines[:3])
        owed = [l for l in lines if l[1] == "session-reminder" and l[3] == S1
                and not l[0].startswith("skipped:")]
        self.assertTrue(owed, lines)
        self.assertTrue(all("owed since" in l[5] for l in owed), owed)


class MigrationTest(OwedCase):
    """An installation made by the kallad before the model of what is owed
    (state schema 4: "known" rows per rule offset, session and participant)
    upgrades without resending anything, and what the old model owed after
    downtime is still caught up."""

    def downgrade_to_schema_4(self):
        """The state as the kallad of schema 4 left it: no owed moments, no
        obligations, no deadline revisions or calendar identity, and the
        first sights it kept of rule offsets, sessions and participants."""
        con = sqlite3.connect(self.prog.state)
        first = 1574233200  # 2019-11-20T08:00:00+01:00: the first run
        for stmt in ("DROP TABLE owed", "DROP TABLE deadlines", "DROP TABLE legacy_known",
                     "DROP TABLE meta", "DROP TABLE session_versions", "DROP TABLE relay",
                     "DROP TABLE held_removals",
                     "DROP INDEX deliveries_obligation", "DROP INDEX deliveries_waits_relay",
                     "ALTER TABLE deliveries DROP COLUMN waits_relay",
                     "ALTER TABLE deliveries DROP COLUMN obligation",
                     "ALTER TABLE participants_seen DROP COLUMN name",
                     "ALTER TABLE participants_seen DROP COLUMN language",
                     "ALTER TABLE participants_seen DROP COLUMN organisation",
                     "ALTER TABLE participants_seen DROP COLUMN role",
                     "DROP TABLE responses", "DROP TABLE inbound", "DROP TABLE suppressed",
                     "DROP TABLE mailboxes", "ALTER TABLE sessions DROP COLUMN categories",
                     "DELETE FROM known", "DELETE FROM participants_seen"):
            con.execute(stmt)
        known = [("rule", f"session-reminders/{o}") for o in ("14d", "2d")]
        known += [("rule", "material/14d")]
        known += [("rule", f"registration-deadline/{o}") for o in ("14d", "7d", "1d")]
        known += [("session", s) for s in (S1, S2, S3)] + [("deadline", DEADLINE)]
        known += [("participant", e) for (e,) in
                  sqlite3.connect(self.prog.db).execute("SELECT email FROM participants")]
        con.executemany("INSERT INTO known(kind, id, first_seen) VALUES(?, ?, ?)",
                        [(k, i, first) for k, i in known])
        con.execute("PRAGMA user_version = 4")
        con.commit()
        con.close()

    def test_upgrade_resends_nothing_and_catches_up_what_was_owed(self):
        sent = self.once(NOV20)
        self.assertEqual(len(sent), 28)
        # Up to the deadline's 14d reminder, under the old kallad.
        self.once("2019-11-29T09:00:30+01:00")
        before = sqlite3.connect(self.prog.state).execute(
            "SELECT key, state FROM deliveries").fetchall()
        self.downgrade_to_schema_4()
        # Stopped over the 7d reminder of the deadline (6 Dec 09:00) and
        # upgraded: the new kallad migrates, sends nothing twice and
        # catches up the 7d reminder the old model owed.
        sent = self.once("2019-12-06T12:00:00+01:00")
        con = sqlite3.connect(self.prog.state)
        self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], 13)
        after = dict(con.execute("SELECT key, state FROM deliveries").fetchall())
        for key, state in before:
            self.assertEqual(after[key], state, key)
        self.assertTrue(sent)
        self.assertEqual({(r.message, r.offset) for r in sent}, {("deadline-reminder", "7d")})
        keys = [r.key for r in sent]
        self.assertFalse(set(keys) & {k for k, _ in before})
        # The old answers served the first pass only: then the model's own.
        self.assertEqual(con.execute("SELECT count(*) FROM legacy_known").fetchone()[0], 0)
        self.assertGreater(con.execute("SELECT count(*) FROM owed").fetchone()[0], 0)
        # And nothing more until the next trigger.
        self.assertEqual(self.once("2019-12-06T13:00:00+01:00"), [])

    def test_plan_reads_an_older_schema_from_a_migrated_copy(self):
        self.once(NOV20)
        self.once("2019-11-29T09:00:30+01:00")
        self.downgrade_to_schema_4()
        # --plan only reads: it migrates a private temporary copy (not the
        # whole ledger in memory) and leaves the file at schema 4 for the
        # writing run that upgrades it.
        p = self.prog.run("--plan", "--now", "2019-12-06T12:00:00+01:00", check=0)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deadline-reminder", p.stdout)
        con = sqlite3.connect(self.prog.state)
        self.assertEqual(con.execute("PRAGMA user_version").fetchone()[0], 4)
        con.close()


class VanishedTest(OwedCase):
    """Issue 16: the obligations recorded for a participant who leaves the
    registrations without ever holding a session are forgotten by the next
    full pass (nothing else would ever plan them again); someone a cancel
    is owed to keeps what is kept of them until it goes, and an unusable
    row is no departure."""

    LATER = "2019-11-21T08:00:00+01:00"

    def owed(self, email):
        con = sqlite3.connect(self.prog.state, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM owed WHERE email = ?",
                               (email,)).fetchone()[0]
        finally:
            con.close()

    def test_a_vanished_participant_without_sessions_is_forgotten(self):
        self.once(NOV20)
        # Henrik and Ingrid are invited (the deadline's reminders are owed to
        # them), never registered: no session in their calendars.
        for who in (HENRIK, INGRID, ANNA):
            self.assertGreater(self.owed(who), 0, who)
        self.prog.sql("DELETE FROM participants WHERE email = ?", HENRIK)
        # Ingrid's row turns unusable: a typo is no departure.
        self.prog.sql("UPDATE participants SET updated_at = 'igår' WHERE email = ?", INGRID)
        ingrid = self.owed(INGRID)
        p = self.prog.run("--once", "--now", self.LATER, check=0)
        self.assertEqual(self.owed(HENRIK), 0, p.stderr)
        self.assertIn("1 participants gone from", p.stderr)
        self.assertEqual(self.owed(INGRID), ingrid)
        self.assertGreater(self.owed(ANNA), 0)
        # Back again: owed from now, as anyone new.
        self.prog.sql("INSERT INTO participants(email, name, status, updated_at) VALUES "
                      "(?, 'Henrik Dahl', 'invited', '2019-11-21 09:00')", HENRIK)
        self.once("2019-11-22T08:00:00+01:00")
        self.assertGreater(self.owed(HENRIK), 0)
        self.assertPlanHas(["2019-12-06T09:00:00+01:00", "deadline-reminder", HENRIK, DEADLINE,
                            "registration-deadline"],
                           self.plan("2019-11-22T08:00:00+01:00", "--all"))

    def test_held_cancels_still_go_after_the_pass_that_forgets(self):
        """Three of ten invited gone at once: their cancels are held. The
        pass that forgets Henrik (who had no session) leaves them theirs;
        released, the cancels go, greeted by name."""
        self.once(NOV20)
        lost = (ANNA, JOHAN, LARS)
        con = sqlite3.connect(self.prog.state)
        held = sorted((e.lower(), u) for e, u in con.execute(
            "SELECT email, uid FROM attendance WHERE invited = 1") if e.lower() in lost)
        con.close()
        for who in lost + (HENRIK,):
            self.prog.sql("DELETE FROM participants WHERE email = ?", who)
        self.assertEqual(self.once(self.LATER), [])
        self.assertEqual(self.owed(HENRIK), 0)
        self.prog.run("--release-changes", "--now", self.LATER, check=0)
        cancels = [r for r in sent_rows(self.prog.state).values() if r.message == "cancel"]
        self.assertEqual(sorted((r.email, r.target) for r in cancels), held)
        self.assertEqual(sorted({r.email for r in cancels}), sorted(lost))
        for r in cancels:
            if r.email == ANNA:
                self.assertIn("Anna", parse(r.path).get_body(("plain",)).get_content())
        self.assertEqual(self.once("2019-11-22T08:00:00+01:00"), [])

    def test_an_address_stored_otherwise_is_no_removal(self):
        """The merge of the invited with the registrations is by address
        without regard to case or stray spaces, as the look-up it replaces
        was: the same participant stored in capitals, with spaces, gets no
        cancel."""
        self.once(NOV20)
        self.prog.sql("UPDATE participants SET email = ? WHERE email = ?",
                      "  " + ANNA.upper() + " ", ANNA)
        sent = self.once(self.LATER)
        self.assertEqual([r for r in sent if r.message == "cancel"], [])
        self.assertGreater(self.owed(ANNA), 0)


if __name__ == "__main__":
    main()
