"""Change notices with the real binary and smtp-sink: sessions moved and
cancelled in the calendar, participants who cancel, register late or go
absent; no retroactive blasts; catch-up after downtime; hold and release.
Every message passes tests/check_message.py (and ../shared/tools/check-message
when it is there)."""

import os
import sqlite3
import sys

import icalendar

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import AioServer, KalladCase, check_messages, main, parse  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
S1 = "styra-leda-2020-1@example.org"
S2 = "styra-leda-2020-2@example.org"
ANNA = "anna.berglund@gavle.example.se"
SOFIA = "sofia.nyberg@regionuppsala.example.se"
HENRIK = "henrik.dahl@karlstad.example.se"
ATTENDING_S1 = 10  # registered, none absent from session 1


KINDS = {"Inbjudan": "invite", "Invitation": "invite", "Påminnelse": "session-reminder",
         "Reminder": "session-reminder", "Inställt": "cancel", "Cancelled": "cancel",
         "Avbokat": "cancel", "Booking cancelled": "cancel", "Material": "material",
         "Ändrat": "update", "Changed": "update"}


def kind(m):
    subject = str(m["Subject"])
    for prefix, name in KINDS.items():
        if subject.startswith(prefix):
            return name
    return subject


def event(raw):
    m = parse(raw)
    for part in m.walk():
        if part.get_content_type() == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            method = str(cal["METHOD"])
            ev = [c for c in cal.walk() if c.name == "VEVENT"][0]
            return m, method, ev
    return m, None, None


class ChangesCase(KalladCase):
    def setUp(self):
        super().setUp()
        self.s = self.sink()
        self.prog.use_smtp(self.s.port)
        self.seen = set()

    def new_messages(self):
        new = [p for p in self.s.files() if p not in self.seen]
        self.seen.update(new)
        if new:
            check_messages(self, new)
        out = []
        for path in new:
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def once(self, now=NOW, *extra, check=0):
        self.prog.run("--once", "--now", now, *extra, check=check)
        return [event(raw) for raw in self.new_messages()]

    def edit_calendar(self, fn):
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8", newline="") as f:
            text = f.read()
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(fn(text))

    def plan(self, now=NOW, *extra):
        out = self.prog.run("--plan", "--now", now, *extra, check=0).stdout
        return [line.split("\t") for line in out.splitlines() if line]


class SessionChangeTest(ChangesCase):
    def test_moved_session_updates_everyone_invited(self):
        invites = self.once()
        self.assertEqual(len(invites), 28)
        # Move session 1 a week later, SEQUENCE left as it was in the file.
        self.edit_calendar(lambda t: t.replace("20200220T100000", "20200227T100000")
                           .replace("20200221T130000", "20200228T130000"))
        plan = self.plan()
        updates = [l for l in plan if l[1] == "update"]
        self.assertEqual(len(updates), ATTENDING_S1)
        self.assertIn(["2020-02-13T09:00:00+01:00", "session-reminder", ANNA, S1,
                       "session-reminders"], plan)
        sent = self.once()
        self.assertEqual(len(sent), ATTENDING_S1)
        for m, method, ev in sent:
            self.assertEqual(method, "REQUEST")
            self.assertEqual(str(ev["UID"]), S1)
            self.assertEqual(int(ev["SEQUENCE"]), 1)
            self.assertEqual(kind(m), "update")
            self.assertEqual(ev["DTSTART"].dt.isoformat(), "2020-02-27T10:00:00+01:00")
        # Nothing more: the update is recorded.
        self.assertEqual(self.once(), [])

    def test_cancelled_session_sends_cancel_with_higher_sequence(self):
        self.once()
        def cancel_s1(text):
            start = text.index("UID:" + S1)
            end = text.index("END:VEVENT", start)
            block = text[start:end].replace("STATUS:CONFIRMED", "STATUS:CANCELLED")
            return text[:start] + block + text[end:]
        self.edit_calendar(cancel_s1)
        self.assertNotIn(S1, [l[3] for l in self.plan() if l[1] != "cancel"])
        sent = self.once()
        self.assertEqual(len(sent), ATTENDING_S1)
        for m, method, ev in sent:
            self.assertEqual(method, "CANCEL")
            self.assertEqual(str(ev["STATUS"]), "CANCELLED")
            self.assertEqual(int(ev["SEQUENCE"]), 1)
            self.assertEqual(kind(m), "cancel")
            self.assertRegex(str(m["Subject"]), r"^(Inställt|Cancelled):")
        self.assertEqual([l for l in self.plan("2020-02-01T08:00:00+01:00") if l[3] == S1], [])

    def test_removed_session_is_cancelled(self):
        self.once()
        def drop_s2(text):
            start = text.index("BEGIN:VEVENT\r\nUID:" + S2)
            end = text.index("END:VEVENT\r\n", start) + len("END:VEVENT\r\n")
            return text[:start] + text[end:]
        self.edit_calendar(drop_s2)
        sent = self.once()
        self.assertEqual({(method, str(ev["UID"])) for _, method, ev in sent}, {("CANCEL", S2)})
        self.assertEqual(len(sent), 9)   # one of the ten is absent from session 2
        self.assertEqual(self.once(), [])


class UnknownOutcomeTest(ChangesCase):
    def anna_waits(self, message, state):
        """Anna's `message` as if it met a fault: state 2 (unknown outcome)
        or 3 (refused with a 4xx), a retry planned; the ledger says her
        calendar holds session 1 as first invited."""
        con = sqlite3.connect(self.prog.state)
        con.execute("UPDATE deliveries SET state = ?, next_attempt = 1893456000 "
                    "WHERE message = ? AND email = ?", (state, message, ANNA))
        con.execute("UPDATE attendance SET invited = 1, sequence = 0, content = 0 "
                    "WHERE email = ? AND uid = ?", (ANNA, S1))
        con.commit()
        con.close()

    def test_a_cancel_whose_outcome_is_unknown_is_followed_when_the_session_is_back(self):
        # Session 1 cancelled: Anna's CANCEL went, but the connection was
        # lost after the data (its outcome unknown, a retry planned). The
        # session is put back before the retry: whether the CANCEL arrived
        # or not, an update at a higher SEQUENCE puts it in her calendar.
        self.assertEqual(len(self.once()), 28)
        self.edit_calendar(lambda t: t.replace("STATUS:CONFIRMED", "STATUS:CANCELLED", 1))
        self.assertEqual(len(self.once()), ATTENDING_S1)
        self.anna_waits("cancel", 2)
        self.edit_calendar(lambda t: t.replace("STATUS:CANCELLED", "STATUS:CONFIRMED", 1))
        sent = self.once()
        anna = [(kind(m), method, int(ev["SEQUENCE"])) for m, method, ev in sent
                if str(m["To"].addresses[0].addr_spec) == ANNA]
        self.assertEqual(anna, [("update", "REQUEST", 2)])
        self.assertEqual(len(sent), ATTENDING_S1)
        again = self.once("2019-11-20T09:00:00+01:00")
        self.assertEqual([(kind(m), str(m["To"])) for m, _, _ in again], [])

    def test_an_update_refused_with_a_4xx_and_undone_owes_nothing(self):
        # Anna's update was refused (a 4xx: it did not arrive) and waits
        # for its retry; the move is undone: her calendar shows the session
        # as it is, and nothing goes to her.
        self.assertEqual(len(self.once()), 28)
        move = (("20200220T100000", "20200227T100000"), ("20200221T130000", "20200228T130000"))
        self.edit_calendar(lambda t: t.replace(*move[0]).replace(*move[1]))
        self.assertEqual(len(self.once()), ATTENDING_S1)
        self.anna_waits("update", 3)
        self.edit_calendar(lambda t: t.replace(move[0][1], move[0][0]).replace(move[1][1],
                                                                               move[1][0]))
        sent = self.once()
        self.assertEqual([str(m["To"].addresses[0].addr_spec) for m, _, _ in sent
                          if str(m["To"].addresses[0].addr_spec) == ANNA], [])

    def refused_on_retry_then_undone(self, reply):
        """Anna's update met a lost connection after the data (it may have
        arrived); its retry, through a real server, is refused with reply;
        then the move is undone. The ledger's state of the update after the
        retry, and what went to Anna after the undo."""
        self.assertEqual(len(self.once()), 28)
        move = (("20200220T100000", "20200227T100000"), ("20200221T130000", "20200228T130000"))
        self.edit_calendar(lambda t: t.replace(*move[0]).replace(*move[1]))
        self.assertEqual(len(self.once()), ATTENDING_S1)
        self.anna_waits("update", 2)
        con = sqlite3.connect(self.prog.state)
        con.execute("UPDATE deliveries SET next_attempt = 0 WHERE message = 'update' AND email = ?",
                    (ANNA,))
        con.commit()
        con.close()
        refusing = AioServer(self.tmpdir, args=("--rcpt-reply", f"{ANNA}={reply}"))
        self.addCleanup(refusing.stop)
        self.prog.edit_conf(f"127.0.0.1:{self.s.port}", f"127.0.0.1:{refusing.port}")
        self.prog.run("--once", "--now", "2019-11-20T08:30:00+01:00")
        self.assertIn(f"rcpt {reply[:3]} {ANNA}", refusing.events())
        con = sqlite3.connect(self.prog.state)
        state, = con.execute("SELECT state FROM deliveries WHERE message = 'update' AND email = ?",
                             (ANNA,)).fetchone()
        con.close()
        self.prog.edit_conf(f"127.0.0.1:{refusing.port}", f"127.0.0.1:{self.s.port}")
        self.edit_calendar(lambda t: t.replace(move[0][1], move[0][0]).replace(move[1][1],
                                                                               move[1][0]))
        sent = self.once("2019-11-20T09:00:00+01:00")
        return state, [(kind(m), method, str(ev["DTSTART"].dt)) for m, method, ev in sent
                       if str(m["To"].addresses[0].addr_spec) == ANNA]

    def test_an_unknown_update_refused_on_its_retry_stays_in_doubt(self):
        # A 4xx says nothing of the first attempt: still unknown, and the
        # undo puts the session back in her calendar with an update.
        state, anna = self.refused_on_retry_then_undone("451 4.7.1 try later")
        self.assertEqual(state, 2)
        self.assertEqual([(k, m) for k, m, _ in anna], [("update", "REQUEST")], anna)
        self.assertIn("2020-02-20 10:00", anna[0][2])

    def test_an_unknown_update_refused_for_good_on_its_retry_leaves_doubt(self):
        # A 5xx fails the retry, but the first attempt may have arrived:
        # her calendar is in doubt all the same.
        state, anna = self.refused_on_retry_then_undone("550 5.2.2 mailbox full")
        self.assertEqual(state, 4)
        self.assertEqual([(k, m) for k, m, _ in anna], [("update", "REQUEST")], anna)
        self.assertIn("2020-02-20 10:00", anna[0][2])

    def test_an_unknown_invite_whose_turn_came_too_late_stays_in_doubt(self):
        # Sofia's invitation to session 1 had an unknown outcome; its
        # retry's turn (one a minute) came after the session began, so it
        # was not sent. Postponed a week, then Sofia cancels: the invite
        # may be in her calendar, so a cancel goes.
        self.assertEqual(len(self.once()), 28)
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 1")
        con = sqlite3.connect(self.prog.state)
        for who in (ANNA, SOFIA):
            con.execute("UPDATE deliveries SET state = 2, next_attempt = 0 "
                        "WHERE message = 'invite' AND email = ? AND target = ?", (who, S1))
            con.execute("DELETE FROM attendance WHERE email = ? AND uid = ?", (who, S1))
        con.commit()
        con.close()
        self.assertEqual(len(self.once("2020-02-20T09:59:30+01:00")), 1)
        self.edit_calendar(lambda t: t.replace("20200220T100000", "20200227T100000")
                           .replace("20200221T130000", "20200228T130000"))
        self.prog.sql("UPDATE participants SET status = 'cancelled' WHERE email = ?", SOFIA)
        self.prog.edit_conf("max-per-minute = 1", "max-per-minute = 0")
        sent = self.once("2020-02-20T10:05:00+01:00")
        to_sofia = sorted((method, str(ev["UID"])) for m, method, ev in sent
                          if str(m["To"].addresses[0].addr_spec) == SOFIA)
        self.assertIn(("CANCEL", S1), to_sofia)


class OrganizerChangeTest(ChangesCase):
    NEW = "email    = karin.ny@example.org"
    OLD = "email    = lena.lindgren@example.org"

    def organizers(self, sent):
        return {str(ev["ORGANIZER"]) for _, _, ev in sent}

    def test_calendars_keep_the_organizer_they_went_with(self):
        # A new programme leader mid-programme: updates and cancels of the
        # calendars already sent keep ORGANIZER (INTEROP I9), with a
        # warning; a session nobody was invited to yet takes the new one,
        # and every Message-ID keeps the domain it had.
        first = self.once()
        self.assertEqual(self.organizers(first), {"mailto:lena.lindgren@example.org"})
        self.prog.edit_conf(self.OLD, "email    = karin.ny@styraleda.example.net")
        self.prog.edit_conf("<program@example.org>", "<program@styraleda.example.net>")

        def add_session(t):
            start = t.index("BEGIN:VEVENT")
            end = t.index("END:VEVENT", start) + len("END:VEVENT\r\n")
            extra = (t[start:end].replace("styra-leda-2020-1@", "styra-leda-2020-extra@")
                     .replace("20200220T", "20200910T").replace("20200221T", "20200911T"))
            return t[:end] + extra + t[end:]
        self.edit_calendar(lambda t: add_session(
            t.replace("20200220T100000", "20200220T130000")))
        p = self.prog.run("--once", "--now", "2019-11-21T08:00:00+01:00", check=0)
        self.assertIn("[organizer] email is karin.ny@styraleda.example.net, but calendars "
                      "already sent carry ORGANIZER lena.lindgren@example.org", p.stderr)
        # (The suite's checker knows the example's organizer only.)
        raw = [open(f, "rb").read() for f in self.s.files() if f not in self.seen]
        sent = [event(r) for r in raw]
        by_uid = {}
        for m, _, ev in sent:
            by_uid.setdefault(str(ev["UID"]), set()).add(str(ev["ORGANIZER"]))
        self.assertEqual(by_uid[S1], {"mailto:lena.lindgren@example.org"})
        self.assertEqual(by_uid["styra-leda-2020-extra@example.org"],
                         {"mailto:karin.ny@styraleda.example.net"})
        self.assertEqual({str(m["Message-ID"]).split("@")[1] for m, _, _ in sent},
                         {"example.org>"})

    def test_before_anything_went_the_organizer_may_change(self):
        # A pass that sent nothing (nobody registered yet): the organizer
        # it recorded is not yet in anybody's calendar.
        self.prog.sql("CREATE TABLE later AS SELECT * FROM participants")
        self.prog.sql("DELETE FROM participants")
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(self.new_messages(), [])
        self.prog.sql("INSERT INTO participants SELECT * FROM later")
        self.prog.edit_conf(self.OLD, self.NEW)
        self.prog.run("--once", "--now", NOW, check=0)
        # (The suite's checker knows the example's organizer only.)
        sent = [event(open(f, "rb").read()) for f in self.s.files()]
        self.assertEqual(len(sent), 28)
        self.assertEqual(self.organizers(sent), {"mailto:karin.ny@example.org"})


class ParticipantChangeTest(ChangesCase):
    def test_participant_cancels(self):
        self.once()
        self.prog.sql("UPDATE participants SET status = 'cancelled' WHERE email = ?", ANNA)
        sent = self.once()
        self.assertEqual(sorted(str(ev["UID"]) for _, _, ev in sent),
                         sorted([S1, S2, "styra-leda-2020-3@example.org"]))
        for m, method, ev in sent:
            self.assertEqual(method, "CANCEL")
            self.assertEqual(m["To"].addresses[0].addr_spec, ANNA)
            self.assertRegex(str(m["Subject"]), r"^(Avbokat|Booking cancelled):")
        self.assertEqual(self.once(), [])

    def test_new_registrant_gets_future_sessions_only(self):
        self.once()
        self.prog.sql("UPDATE participants SET status = 'registered', "
                      "registered_at = '2020-02-25 10:00' WHERE email = ?", HENRIK)
        sent = self.once("2020-02-25T10:00:00+01:00")
        self.assertEqual(sorted(str(ev["UID"]) for _, _, ev in sent),
                         [S2, "styra-leda-2020-3@example.org"])
        self.assertTrue(all(method == "REQUEST" for _, method, _ in sent))

    def test_new_absence_cancels_and_removed_absence_invites(self):
        self.once()
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S1)
        sent = self.once()
        self.assertEqual([(method, str(ev["UID"])) for _, method, ev in sent], [("CANCEL", S1)])
        self.prog.sql("DELETE FROM absences WHERE email = ? AND session_uid = ?", ANNA, S1)
        sent = self.once()
        self.assertEqual([(method, str(ev["UID"])) for _, method, ev in sent], [("REQUEST", S1)])
        self.assertEqual(int(sent[0][2]["SEQUENCE"]), 2)


class StartAndDowntimeTest(ChangesCase):
    def test_first_run_under_way_sends_no_past_triggers(self):
        # First run on 19 Feb: the 14d reminders (6 Feb) and the deadline
        # nudges passed before kallad knew of anything.
        skipped = [l for l in self.plan("2020-02-19T10:00:00+01:00", "--all")
                   if l[0] == "skipped:before-known"]
        self.assertIn(["skipped:before-known", "session-reminder", ANNA, S1,
                       "session-reminders"], skipped)
        sent = self.once("2020-02-19T10:00:00+01:00")
        # Invites for the sessions ahead, and nothing else.
        self.assertEqual({kind(m) for m, _, _ in sent}, {"invite"})
        self.assertEqual(len(sent), 28)
        self.assertIn("skipped\t", self.prog.run("--status", check=0).stdout)

    def test_missed_reminder_is_caught_up_after_downtime(self):
        self.once()  # 20 Nov: kallad knows everything from now on
        # Stopped until 19 Feb 10:00: the 2d reminders (18 Feb 09:00) were missed.
        before = self.plan("2020-02-19T10:00:00+01:00", "--all")
        self.assertIn(["skipped:superseded", "session-reminder", ANNA, S1,
                       "session-reminders"], before)
        self.assertIn(["2020-02-19T10:00:00+01:00", "session-reminder", ANNA, S1,
                       "session-reminders"], before)
        sent = self.once("2020-02-19T10:00:00+01:00")
        reminders = [m for m, method, ev in sent if kind(m) == "session-reminder"]
        # The 2d reminder, once each; the 14d one is superseded by it.
        self.assertEqual(len(reminders), ATTENDING_S1)
        self.assertTrue(all(event(m.as_bytes())[2]["UID"] == S1 for m in reminders))
        self.assertEqual(len(self.once("2020-02-19T10:00:00+01:00")), 0)


class HoldTest(ChangesCase):
    def test_hold_until_released(self):
        self.prog.edit_conf("changes            = send", "changes            = hold")
        self.assertEqual(len(self.once()), 28)   # invites are not held
        self.edit_calendar(lambda t: t.replace("Långholmens konferens", "Nya platsen", 1))
        plan = self.plan()
        held = [l for l in plan if l[0] == "held"]
        self.assertEqual(len([l for l in held if l[1] == "update"]), ATTENDING_S1)
        # Its reminders wait too: they would show the new place first.
        self.assertIn(["held", "session-reminder", ANNA, S1, "session-reminders"], held)
        self.assertEqual(self.once(), [])
        # Released at 22:00, inside quiet hours: nothing goes yet...
        self.prog.run("--release-changes", "--now", "2019-11-20T22:00:00+01:00", check=0)
        self.assertEqual(self.new_messages(), [])
        # ...but the release holds: the next ordinary run after 07:00 sends them.
        self.assertEqual(self.plan("2019-11-21T07:00:00+01:00")[0][0],
                         "2019-11-21T07:00:00+01:00")
        updates = self.once("2019-11-21T07:00:00+01:00")
        self.assertEqual(len(updates), ATTENDING_S1)
        self.assertEqual({kind(m) for m, _, _ in updates}, {"update"})
        self.assertTrue(all("Nya platsen" in str(ev["LOCATION"]) for _, _, ev in updates))
        self.assertNotIn("held", [l[0] for l in self.plan("2019-11-21T07:00:00+01:00")])

    def hold_and_undo(self, change):
        """changes = hold; the 28 invitations go; change(text) edits the
        calendar and a pass holds its notices; the file as it was comes
        back, and a pass reads it."""
        self.prog.edit_conf("changes            = send", "changes            = hold")
        self.assertEqual(len(self.once()), 28)
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8", newline="") as f:
            original = f.read()
        self.edit_calendar(change)
        self.assertEqual(self.once("2019-11-21T08:00:00+01:00"), [])
        self.assertIn("held", [l[0] for l in self.plan("2019-11-21T08:00:00+01:00", "--all")])
        self.edit_calendar(lambda _: original)
        self.assertEqual(self.once("2019-11-22T08:00:00+01:00"), [])

    def assert_nothing_owed_for_the_undone_change(self):
        # Their calendars show session 1 as it is: no update is owed, by the
        # plan, by hand, or at release; its reminders are held no longer.
        self.assertEqual([l for l in self.plan("2019-11-22T08:00:00+01:00", "--all")
                          if l[0] == "held" or l[1] == "update"], [])
        p = self.prog.run("--send-now", "update", "--session", S1, "--to", ANNA, "--dry-run",
                          "--now", "2019-11-22T08:00:00+01:00", check=None)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("has not changed", p.stderr)
        reminders = self.once("2020-02-06T09:00:01+01:00")
        # (and the material before the start, which carries no calendar)
        self.assertEqual(sorted(kind(m) for m, _, _ in reminders),
                         ["material"] * ATTENDING_S1 + ["session-reminder"] * ATTENDING_S1)
        for m, method, ev in reminders:
            if kind(m) == "material":
                continue
            self.assertEqual((method, str(ev["UID"])), ("REQUEST", S1))
            self.assertEqual(ev.decoded("DTSTART").isoformat(), "2020-02-20T10:00:00+01:00")
            self.assertIn("Långholmens konferens", str(ev["LOCATION"]))
        self.assertEqual(self.prog.run("--release-changes", "--now", "2020-02-06T09:01:00+01:00",
                                       check=0).returncode, 0)
        self.assertEqual(self.new_messages(), [])

    def test_a_move_undone_before_release_owes_nothing(self):
        self.hold_and_undo(lambda t: t.replace("20200220T100000", "20200227T100000", 1).replace(
            "20200221T130000", "20200228T130000", 1))
        self.assert_nothing_owed_for_the_undone_change()

    def test_a_removal_undone_before_release_owes_nothing(self):
        def remove_s1(text):
            begin = text.index("BEGIN:VEVENT\r\nUID:" + S1)
            end = text.index("END:VEVENT\r\n", begin) + len("END:VEVENT\r\n")
            return text[:begin] + text[end:]
        self.hold_and_undo(remove_s1)
        self.assert_nothing_owed_for_the_undone_change()

    def test_a_change_undone_then_another_owes_its_update(self):
        # Undone, then the session moves for real: the update goes at a
        # SEQUENCE above any the session had, and names the new time.
        self.hold_and_undo(lambda t: t.replace("20200220T100000", "20200227T100000", 1).replace(
            "20200221T130000", "20200228T130000", 1))
        self.edit_calendar(lambda t: t.replace("20200220T100000", "20200219T100000", 1))  # a day longer
        self.prog.run("--release-changes", "--now", "2019-11-23T08:00:00+01:00", check=0)
        updates = self.new_messages()
        self.assertEqual(len(updates), ATTENDING_S1)
        for raw in updates:
            m, method, ev = event(raw)
            self.assertEqual((kind(m), method, int(ev["SEQUENCE"])), ("update", "REQUEST", 3))
            self.assertEqual(ev.decoded("DTSTART").isoformat(), "2020-02-19T10:00:00+01:00")


if __name__ == "__main__":
    main()
