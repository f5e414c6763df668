"""Change notices to trust (issue 10, cases 1, 2, 3 and 8), with the real
binary on the example programme (outbox), and the real daemon:

- a calendar export that leaves out more than [policy] max-removed-sessions
  sessions, or registrations that leave out more than
  max-removed-participants of those invited, is a mass removal: held (shown
  by --plan, --status and the daemon's STATUS=) until --release-changes,
  --discard-changes or the file coming back; one session or one row left
  out is cancelled as usual (a deleted row is a cancellation);
- held changes are steered one session at a time (--release-changes
  --session) or dropped (--discard-changes);
- a calendar saved while the daemon runs, with another kallad sending at
  the same moment, gives one update per participant, never one back.

Every message read passes the project's message checker."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from guard_test import (ANNA, ATTENDING, INVITES, JOHAN, KARIN, MARIA, NOW, PER, SOFIA,  # noqa: E402
                        S1, S2, S3, OutboxCase, held_line, held_numbers,
                        moved, no_sessions, relocated, without_sessions)
from kallad_test import KALLAD, main  # noqa: E402
from test_daemon import DaemonCase  # noqa: E402

REMINDER_S2 = "2020-02-27T09:00:30+01:00"  # 14 days before session 2, just after 09:00
LOST = (JOHAN, MARIA, PER)  # rows lost in a re-import (ParticipantGuardTest)


def cancels(mails):
    return {(m.to, m.uid) for m in mails if m.method == "CANCEL"}


def expected_cancels(*uids, who=None):
    return {(e, u) for u in uids for e in ATTENDING[u] if who is None or e in who}


class GuardCase(OutboxCase):
    def invite_everyone(self):
        self.assertEqual(len(self.once()), INVITES)

    def held_plan(self, now=NOW):
        return {(l[1], l[2], l[3]) for l in self.plan(now) if l[0] == "held"}

    def held_cancels(self, now=NOW):
        return {(l[1], l[2], l[3]) for l in self.plan(now) if l[0] == "held" and l[1] == "cancel"}

    def unheld_about(self, uids, now=NOW):
        """What --plan lists with a due time (or skipped) about these
        sessions, or any cancel so listed."""
        return [l for l in self.plan(now)
                if l[0] != "held" and (l[1] == "cancel" or l[3] in uids)]

    def assert_held(self, notices, removed=None):
        """--status's held line counts the held change notices, or, for a
        mass removal, what was removed (sessions or participants)."""
        status = self.status()
        numbers = held_numbers(status)
        self.assertTrue(notices in numbers or (removed is not None and removed in numbers),
                        status)

    def assert_cancels(self, mails, expected):
        self.assertEqual(cancels(mails), expected, mails)
        self.assertEqual(len(mails), len(expected), mails)
        for m in mails:
            self.assertEqual(m.method, "CANCEL")
            self.assertEqual(str(m.event["STATUS"]), "CANCELLED")
            self.assertEqual(m.sequence, 1, m)

    def assert_nothing_held(self):
        status = self.status()
        self.assertFalse(any(held_numbers(status)), status)
        self.assertEqual(self.held_plan(), set())

    def policy(self, text):
        self.prog.edit_conf("changes            = send", "changes            = send\n" + text)


class SessionGuardTest(GuardCase):
    def hold_two_sessions(self):
        self.invite_everyone()
        self.write_calendar(without_sessions(self.original, S2, S3))

    def test_two_sessions_left_out_are_held_until_the_file_comes_back(self):
        self.hold_two_sessions()
        # --plan lists the 18 cancels as held, and nothing about the two
        # sessions as due.
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S2, S3)})
        self.assertEqual(self.unheld_about({S2, S3}), [])
        status = self.status()
        self.assert_held(18, removed=2)
        # ...and says that a mass removal waits for a release.
        self.assertRegex(held_line(status), re.compile(r"remov|mass|release", re.I))
        # Nothing goes; the warning names both sessions.
        self.assertEqual(self.once(), [])
        warnings = [l for l in self.last.stderr.splitlines() if "warning" in l.lower()]
        self.assertTrue(any(S2 in l for l in warnings), self.last.stderr)
        self.assertTrue(any(S3 in l for l in warnings), self.last.stderr)
        self.assertEqual(self.once(), [])
        # The export is fixed: nothing at all goes, no update, no re-invite.
        self.restore_calendar()
        self.assertEqual(self.once(), [])
        self.assert_nothing_held()
        self.assertEqual(self.once("2019-11-21T08:00:00+01:00"), [])

    def test_held_sessions_keep_their_last_known_state(self):
        self.hold_two_sessions()
        self.assertEqual(self.once(), [])
        # At session 2's 14-day reminder: neither a cancel nor a reminder
        # about the sessions that are held.
        sent = self.once(REMINDER_S2)
        self.assertEqual([m for m in sent if m.uid in (S2, S3)], [])
        self.assert_held(18, removed=2)

    def test_release_sends_the_held_cancels(self):
        self.hold_two_sessions()
        self.assertEqual(self.once(), [])
        self.prog.run("--release-changes", "--now", NOW, check=0)
        self.assert_cancels(self.new_mail() + self.once(), expected_cancels(S2, S3))
        self.assertEqual(self.once(), [])
        self.assert_nothing_held()

    def test_release_one_session(self):
        self.hold_two_sessions()
        self.assertEqual(self.once(), [])
        self.prog.run("--release-changes", "--session", S2, "--now", NOW, check=0)
        self.assert_cancels(self.new_mail() + self.once(), expected_cancels(S2))
        self.assert_held(9, removed=1)
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S3)})
        self.prog.run("--release-changes", "--session", S3, "--now", NOW, check=0)
        self.assert_cancels(self.new_mail() + self.once(), expected_cancels(S3))
        self.assert_nothing_held()

    def test_discard_takes_the_files_as_truth_without_sending(self):
        self.hold_two_sessions()
        self.assertEqual(self.once(), [])
        self.prog.run("--discard-changes", "--now", NOW, check=0)
        self.assertEqual(self.new_mail(), [])
        self.assert_nothing_held()
        self.assertEqual(self.once(), [])
        self.assertEqual(self.once("2019-11-21T08:00:00+01:00"), [])
        # The next real change is sent from there: session 1 moves a week.
        self.write_calendar(moved(without_sessions(self.original, S2, S3),
                                  S1, "20200220", "20200227"))
        sent = self.once("2019-11-21T08:00:00+01:00")
        self.assertEqual({(m.to, m.uid) for m in sent}, {(e, S1) for e in ATTENDING[S1]})
        for m in sent:
            self.assertEqual(m.method, "REQUEST")
            self.assertEqual(m.start, "2020-02-27T10:00:00+01:00")
            self.assertGreaterEqual(m.sequence, 1)

    def test_empty_export_is_a_mass_removal(self):
        self.invite_everyone()
        self.write_calendar(no_sessions(self.original))
        p = self.prog.run("--check")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        # It warns that a mass removal is held (waits for a release).
        self.assertRegex(p.stdout + p.stderr,
                         re.compile(r"\bheld\b|\bhold|mass|release-changes", re.I))
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3)})
        self.assertEqual(self.unheld_about({S1, S2, S3}), [])
        self.assert_held(INVITES, removed=3)
        self.assertEqual(self.once(), [])
        self.restore_calendar()
        self.assertEqual(self.once(), [])
        self.assert_nothing_held()

    def test_one_session_left_out_is_cancelled(self):
        self.invite_everyone()
        self.write_calendar(without_sessions(self.original, S3))
        self.assertEqual(self.held_plan(), set())
        self.assert_cancels(self.once(), expected_cancels(S3))
        self.assertEqual(self.once(), [])
        # A second session left out later is one more, not a mass removal.
        self.write_calendar(without_sessions(self.original, S2, S3))
        self.assert_cancels(self.once(), expected_cancels(S2))

    def test_cancelled_in_the_calendar_is_not_a_removal(self):
        # Sessions marked STATUS:CANCELLED are cancelled, whatever their number.
        self.invite_everyone()
        text = self.original
        for uid in (S1, S2, S3):
            start = text.index("UID:" + uid)
            end = text.index("END:VEVENT", start)
            text = text[:start] + text[start:end].replace("STATUS:CONFIRMED",
                                                          "STATUS:CANCELLED") + text[end:]
        self.write_calendar(text)
        self.assert_cancels(self.once(), expected_cancels(S1, S2, S3))
        self.assert_nothing_held()

    def test_thresholds_from_policy(self):
        self.policy("max-removed-sessions = 2")
        self.invite_everyone()
        self.write_calendar(without_sessions(self.original, S2, S3))
        self.assert_cancels(self.once(), expected_cancels(S2, S3))

    def test_zero_holds_a_single_session(self):
        self.policy("max-removed-sessions = 0")
        self.invite_everyone()
        self.write_calendar(without_sessions(self.original, S3))
        self.assertEqual(self.once(), [])
        self.assert_held(9, removed=1)


class ParticipantGuardTest(GuardCase):
    def rows(self, *emails):
        con = sqlite3.connect(self.prog.db)
        try:
            return [con.execute("SELECT * FROM participants WHERE email = ?", (e,)).fetchone()
                    for e in emails]
        finally:
            con.close()

    def delete(self, *emails):
        for e in emails:
            self.prog.sql("DELETE FROM participants WHERE email = ?", e)

    def lose_three(self):
        """Everyone invited; then Johan's, Maria's and Per's rows are lost
        at once (three of ten: a mass removal, held, nothing sent). Their
        rows, to put back."""
        self.invite_everyone()
        rows = self.rows(*LOST)
        self.delete(*LOST)
        self.assertEqual(self.once(), [])
        return rows

    def put_back(self, rows):
        for row in rows:
            self.prog.sql(f"INSERT INTO participants VALUES ({', '.join('?' * len(row))})", *row)

    def test_deleted_row_is_a_cancellation(self):
        self.invite_everyone()
        self.delete(ANNA)
        self.assertEqual(self.held_plan(), set())
        sent = self.once()
        self.assert_cancels(sent, expected_cancels(S1, S2, S3, who={ANNA}))
        for m in sent:
            # Greeted by the name kallad last knew.
            self.assertEqual(m.msg["To"].addresses[0].display_name, "Anna Berglund")
            self.assertIn("Anna", m.text())
        self.assertEqual(self.once(), [])

    def test_a_fifth_is_not_mass(self):
        # Two of the ten invited: not more than 20 %. Karin is absent from
        # session 2: she had no invitation to cancel there.
        self.invite_everyone()
        self.delete(ANNA, KARIN)
        self.assert_cancels(self.once(), expected_cancels(S1, S2, S3, who={ANNA, KARIN}))

    def test_rows_lost_in_a_reimport_are_held(self):
        self.invite_everyone()
        lost = (JOHAN, MARIA, PER)
        rows = self.rows(*lost)
        self.delete(*lost)
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3, who=lost)})
        # Nothing about them is due: no cancel, no reminder.
        self.assertEqual([l for l in self.plan()
                          if l[0] != "held" and (l[1] == "cancel" or l[2] in lost)], [])
        self.assert_held(9, removed=3)
        self.assertEqual(self.once(), [])
        warnings = "\n".join(l for l in self.last.stderr.splitlines() if "warning" in l.lower())
        for e in lost:
            self.assertIn(e, warnings)
        # The rows come back: nothing goes.
        self.put_back(rows)
        self.assertEqual(self.once(), [])
        self.assert_nothing_held()

    def test_release_cancels_the_lost_rows(self):
        self.lose_three()
        self.prog.run("--release-changes", "--now", NOW, check=0)
        sent = self.new_mail() + self.once()
        self.assert_cancels(sent, expected_cancels(S1, S2, S3, who=LOST))
        self.assertEqual(self.once(), [])
        self.assert_nothing_held()

    def test_rows_partly_back_keep_the_rest_held(self):
        # One of the three lost rows comes back: two gone are no longer
        # more than a fifth, but their removal stays held.
        rows = self.lose_three()
        self.put_back(rows[:1])
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3,
                                                                        who=LOST[1:])})
        self.assertEqual(self.once(), [])
        self.assert_held(6, removed=2)
        self.prog.run("--release-changes", "--now", NOW, check=0)
        self.assert_cancels(self.new_mail(), expected_cancels(S1, S2, S3, who=LOST[1:]))
        self.assert_nothing_held()

    def test_a_row_back_but_unreadable_stays_held(self):
        # Three rows lost (held). Johan's comes back with its name empty
        # (unreadable: gone or not, not known), Maria's comes back
        # whole; then Johan's goes again. Two gone are no mass removal, but
        # both were held and nobody released them: no cancel goes.
        rows = self.lose_three()
        self.put_back(rows[:2])
        self.prog.sql("UPDATE participants SET name = '' WHERE email = ?", JOHAN)
        self.assertEqual(self.once(), [])
        self.delete(JOHAN)
        self.assertEqual(self.once(), [])
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3,
                                                                        who=(JOHAN, PER))})

    def test_new_registrations_keep_a_held_removal_held(self):
        # Five sign up while three lost rows are held: the limit grows to
        # three of fifteen, but the three stay held; the five are invited.
        self.lose_three()
        for i in range(5):
            self.prog.sql("INSERT INTO participants(email, name, language, status, "
                          "registered_at, updated_at) VALUES (?, ?, 'sv', 'registered', "
                          "'2019-11-19T10:00:00+01:00', '2019-11-19T10:00:00+01:00')",
                          f"ny{i}@example.se", f"Ny Deltagare {i}")
        sent = self.once()
        self.assertEqual({(m.method, m.to) for m in sent},
                         {("REQUEST", f"ny{i}@example.se") for i in range(5)})
        self.assertEqual(len(sent), 15)
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3, who=LOST)})

    def test_one_sessions_release_lets_no_held_removal_go(self):
        # Rows lost (held) while session 1 moved: releasing session 1's
        # changes sends its update, not cancels of session 1 to the lost.
        self.lose_three()
        self.prog.run("--release-changes", "--session", S1, "--now", NOW, check=None)
        self.assertEqual(self.new_mail(), [])
        self.assertEqual(self.held_cancels(),
                         {("cancel", e, u) for e, u in expected_cancels(S1, S2, S3, who=LOST)})
        self.prog.run("--release-changes", "--now", NOW, check=0)
        self.assert_cancels(self.new_mail(), expected_cancels(S1, S2, S3, who=LOST))

    def test_after_a_release_one_row_deleted_is_a_cancellation(self):
        # What was held is let go with the release: a later single
        # deletion is a cancellation again, and nothing stays held.
        self.lose_three()
        self.prog.run("--release-changes", "--now", NOW, check=0)
        self.new_mail()
        self.delete(ANNA)
        self.assert_cancels(self.once(), expected_cancels(S1, S2, S3, who={ANNA}))
        self.assert_nothing_held()

    def test_cancelled_rows_are_not_a_removal(self):
        # Status `cancelled` says so explicitly, for however many.
        self.invite_everyone()
        who = {ANNA, JOHAN, MARIA, PER}
        for e in who:
            self.prog.sql("UPDATE participants SET status = 'cancelled' WHERE email = ?", e)
        self.assert_cancels(self.once(), expected_cancels(S1, S2, S3, who=who))
        self.assert_nothing_held()

    def test_participant_thresholds_from_policy(self):
        self.policy("max-removed-participants = 3")
        self.invite_everyone()
        self.delete(JOHAN, MARIA, PER)
        self.assert_cancels(self.once(), expected_cancels(S1, S2, S3, who={JOHAN, MARIA, PER}))

    def test_percentage_threshold_from_policy(self):
        self.policy("max-removed-participants = 10%")
        self.invite_everyone()
        self.delete(JOHAN, MARIA)
        self.assertEqual(self.once(), [])
        self.assert_held(6, removed=2)


class HeldChangesTest(GuardCase):
    def test_held_updates_counted_released_per_session_and_discarded(self):
        self.prog.edit_conf("changes            = send", "changes            = hold")
        self.invite_everyone()
        self.write_calendar(relocated(relocated(self.original, S1, "Nya platsen 1"),
                                      S2, "Nya platsen 2"))
        held = self.held_plan()
        self.assertEqual({(m, e, u) for m, e, u in held if m == "update"},
                         {("update", e, u) for u in (S1, S2) for e in ATTENDING[u]})
        self.assert_held(19)
        self.assertEqual(self.once(), [])
        # Only session 1's.
        self.prog.run("--release-changes", "--session", S1, "--now", NOW, check=0)
        sent = self.new_mail() + self.once()
        self.assertEqual({(m.to, m.uid) for m in sent}, {(e, S1) for e in ATTENDING[S1]})
        self.assertTrue(all("Nya platsen 1" in str(m.event["LOCATION"]) for m in sent))
        self.assert_held(9)
        self.assertEqual({u for _, _, u in self.held_plan()}, {S2})
        # Session 2's were a mistake: dropped, nothing sent, now or later.
        self.prog.run("--discard-changes", "--now", NOW, check=0)
        self.assertEqual(self.new_mail(), [])
        self.assert_nothing_held()
        self.assertEqual(self.once(), [])
        self.assertEqual(self.once("2019-11-21T08:00:00+01:00"), [])
        # The next change to session 2 is held, then sent from the new truth.
        self.write_calendar(moved(relocated(relocated(self.original, S1, "Nya platsen 1"),
                                            S2, "Nya platsen 2"), S2, "20200312", "20200319"))
        self.assertEqual(self.once("2019-11-21T08:00:00+01:00"), [])
        self.assert_held(9)
        self.prog.run("--release-changes", "--now", "2019-11-21T08:00:00+01:00", check=0)
        sent = self.new_mail() + self.once("2019-11-21T08:00:00+01:00")
        self.assertEqual({(m.to, m.uid) for m in sent}, {(e, S2) for e in ATTENDING[S2]})
        for m in sent:
            self.assertEqual(m.start, "2020-03-19T10:00:00+01:00")
            self.assertIn("Nya platsen 2", str(m.event["LOCATION"]))
            self.assertGreaterEqual(m.sequence, 1)


class DaemonGuardTest(GuardCase, DaemonCase):
    """The real daemon, writing to the outbox (or to smtp-sink, paced by
    max-per-minute), with a stand-in systemd notify socket
    (test_daemon.DaemonCase)."""

    def start(self, now=NOW, invited=False):
        DaemonCase.start(self, now)
        if not invited:
            self.wait_outbox(INVITES)
        self.notify.wait_for("STATUS=next")
        self.assertEqual(len(self.new_mail()), 0 if invited else INVITES)

    def stop(self):
        # SIGTERM: it finishes the message in flight and records it.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_outbox(self, n, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.mail_files()) >= n:
                return
            time.sleep(0.02)
        raise AssertionError(f"{len(self.mail_files())} messages, not {n}:\n"
                             + self.logtext())

    def settle(self, quiet=1.5, timeout=20):
        """Waits until the outbox has not grown for `quiet` seconds."""
        end = time.time() + timeout
        count, since = len(self.mail_files()), time.time()
        while time.time() < end:
            time.sleep(0.05)
            now = len(self.mail_files())
            if now != count:
                count, since = now, time.time()
            elif time.time() - since >= quiet:
                return
        raise AssertionError("the outbox never settled:\n" + self.logtext())

    def test_daemon_status_says_a_mass_removal_is_held(self):
        self.start()
        self.write_calendar(without_sessions(self.original, S2, S3))
        msg = self.notify.wait_for("STATUS=held:")
        self.assertRegex(msg, r"STATUS=held:")
        self.settle(quiet=1.0)
        self.assertEqual(self.new_mail(), [], self.logtext())
        self.assertIsNone(self.proc.poll())
        self.assertTrue(any(S2 in l and "warning" in l.lower()
                            for l in self.logtext().splitlines()), self.logtext())

    def moved_s2_while_another_sends(self, *other):
        """Saves session 2 a week later by rename, and within ~100 ms runs
        another kallad at the same --now; returns every mail that follows."""
        self.start()
        self.write_calendar(moved(self.original, S2, "20200312", "20200319"))
        saved = time.time()
        p = self.other_kallad(*other)
        self.assertLess(time.time() - saved, 0.2)
        return self.finish(p)

    def other_kallad(self, *args):
        return subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", NOW, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, p):
        out, err = p.communicate(timeout=60)
        self.other = (p.returncode, out, err)
        self.settle(quiet=2.5)
        self.assertIsNone(self.proc.poll(), self.logtext())
        return self.new_mail()

    def slow_daemon(self):
        """The invitations sent by --once to smtp-sink, then the daemon
        started with [smtp] max-per-minute = 120: a pass of nine updates
        takes four seconds, and another kallad can run in the middle."""
        sink = self.sink()
        self.mail_files = sink.files
        self.prog.use_smtp(sink.port)
        self.invite_everyone()
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 120")
        self.start(invited=True)

    def assert_one_update_per_participant(self, sent, manual=()):
        context = f"{sent}\nother kallad: {self.other}\ndaemon:\n{self.logtext()}"
        about_s2 = [m for m in sent if m.uid == S2]
        self.assertEqual([m for m in sent if m.uid != S2], [], context)
        # Never back to the old day, never a SEQUENCE 2.
        for m in about_s2:
            self.assertEqual(m.method, "REQUEST", context)
            self.assertEqual(m.start, "2020-03-19T10:00:00+01:00", context)
            self.assertEqual(m.sequence, 1, context)
        # One message per participant of session 2 at SEQUENCE 1: an update,
        # or for someone sent an invitation by hand, that invitation alone.
        per_person = {}
        for m in about_s2:
            per_person.setdefault(m.to, []).append(m)
        self.assertEqual(set(per_person), ATTENDING[S2], context)
        for who, mails in per_person.items():
            self.assertEqual(len(mails), 1, f"{who}: {mails}\n{context}")
        updates = [m for m in about_s2 if m.to not in manual]
        self.assertEqual(len(updates), len(ATTENDING[S2]) - len(manual), context)

    def test_once_beside_the_daemon_sends_one_update_each(self):
        sent = self.moved_s2_while_another_sends("--once")
        self.assert_one_update_per_participant(sent)

    def test_send_now_beside_the_daemon_sends_one_transition(self):
        sent = self.moved_s2_while_another_sends("--send-now", "invite", "--to", ANNA,
                                                 "--session", S2)
        self.assert_one_update_per_participant(sent, manual={ANNA})

    def test_once_during_a_slow_pass(self):
        self.slow_daemon()
        self.write_calendar(moved(self.original, S2, "20200312", "20200319"))
        self.wait_outbox(INVITES + 1)   # the daemon's pass has begun
        sent = self.finish(self.other_kallad("--once"))
        self.assert_one_update_per_participant(sent)

    def test_send_now_during_a_slow_pass(self):
        # Sofia's update comes last in the daemon's pass; her invitation by
        # hand goes while the daemon sends the others theirs.
        self.slow_daemon()
        self.write_calendar(moved(self.original, S2, "20200312", "20200319"))
        self.wait_outbox(INVITES + 1)
        sent = self.finish(self.other_kallad("--send-now", "invite", "--to", SOFIA,
                                             "--session", S2))
        self.assert_one_update_per_participant(sent, manual={SOFIA})


if __name__ == "__main__":
    main()
