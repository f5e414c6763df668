"""Manual sends that cannot contradict the calendar (issue 10, cases 4-7),
with the real binary on the example programme writing to its outbox:

- no invitation or reminder by hand for a cancelled session (a cancel is
  allowed), nothing by hand about a session that has begun unless --force;
- --dry-run and --test-to change nothing in the state database (compared
  as a full SQL dump before and after), even with an edited calendar, and
  --dry-run says what the real run does, "already sent" included;
- --preview is byte for byte what --send-now sends, Date: and DTSTAMP
  apart (the moment each process built it);
- a --test-to copy has a Message-ID of its own;
- --send-now --all claims in batches, each committed with an fsync before
  the first of its messages leaves (watched with strace);
- a send by hand never contradicts what the participant's calendar holds:
  a cancel only of what it holds, once, whoever sent the first; a REQUEST
  after a cancel outranks it; nothing but the update shows a changed
  session to one who holds it (changes = hold keeps it back); a retry goes
  only as it would be sent now, else it is given up.

Every message read passes the project's message checker."""

import base64
import datetime
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from guard_test import (ANNA, ATTENDING, INVITES, JOHAN, NOW, S1, S2, Mail,  # noqa: E402
                        OutboxCase, cancelled, check_messages, dump_state, moved)
from kallad_test import KALLAD, AioServer, KalladCase, main  # noqa: E402

HENRIK = "henrik.dahl@karlstad.example.se"   # invited, not registered: sent no invitation
BEGUN = "2020-02-20T11:00:00+01:00"          # session 1 began at 10:00
TESTER = "lena.lindgren@example.org"


def without_date(raw):
    """The message with its Date: header line (and its folds) left out."""
    lines = raw.split(b"\r\n")
    out, skipping = [], False
    for line in lines:
        if line.lower().startswith(b"date:"):
            skipping = True
            continue
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        out.append(line)
    return b"\r\n".join(out)


CALENDAR_PART = re.compile(rb"content-type: *(text/calendar|application/ics)", re.I)
DTSTAMP = re.compile(rb"^DTSTAMP:(\d{8}T\d{6}Z)$")


def comparable(raw):
    """The message's lines, Date: apart, with each calendar part (base64)
    decoded and its DTSTAMP lines left out, and the DTSTAMPs found. A
    preview and the send that follows it are two processes, each with its
    clock started at --now: the moment each built the message may differ
    by a second, and DTSTAMP is that moment."""
    lines = without_date(raw).split(b"\r\n")
    out, stamps, in_calendar, i = [], [], False, 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if CALENDAR_PART.match(line):
            in_calendar = True
        elif in_calendar and line == b"":
            end = i
            while end < len(lines) and lines[end] and not lines[end].startswith(b"--"):
                end += 1
            for ics in base64.b64decode(b"".join(lines[i:end])).split(b"\r\n"):
                m = DTSTAMP.match(ics)
                if m:
                    stamps.append(m.group(1))
                else:
                    out.append(ics)
            in_calendar, i = False, end
    return out, stamps


class ManualCase(OutboxCase):
    def send_now(self, message, *args, check=None, now=NOW):
        return self.prog.run("--send-now", message, *args, "--now", now, check=check)

    def refused(self, p, why):
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, re.compile(why, re.I))
        self.assertEqual(self.new_mail(), [])


class CancelledSessionTest(ManualCase):
    def test_no_request_by_hand_for_a_cancelled_session(self):
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(cancelled(self.original, S1))
        for message in ("invite", "session-reminder"):
            for force in ((), ("--force",)):
                with self.subTest(message=message, force=force):
                    p = self.send_now(message, "--session", S1, "--to", ANNA, *force)
                    self.refused(p, r"cancel")
        # A cancel by hand goes, at the cancel's SEQUENCE...
        self.send_now("cancel", "--session", S1, "--to", ANNA, check=0)
        sent = self.new_mail()
        self.assertEqual([(m.method, m.to, m.uid, m.sequence) for m in sent],
                         [("CANCEL", ANNA, S1, 1)])
        self.assertEqual(str(sent[0].event["STATUS"]), "CANCELLED")
        # ...and the planner sends the others theirs, not Anna a second one.
        sent = self.once()
        self.assertEqual({(m.method, m.to, m.uid, m.sequence) for m in sent},
                         {("CANCEL", e, S1, 1) for e in ATTENDING[S1] - {ANNA}})
        self.assertEqual(len(sent), len(ATTENDING[S1]) - 1)
        self.assertEqual(self.once(), [])


class BegunSessionTest(ManualCase):
    def test_nothing_by_hand_about_a_begun_session_without_force(self):
        self.assertEqual(len(self.once()), INVITES)
        p = self.send_now("session-reminder", "--session", S1, "--to", ANNA, now=BEGUN)
        self.refused(p, r"begun")
        p = self.send_now("invite", "--session", S1, "--to", HENRIK, now=BEGUN)
        self.refused(p, r"begun")
        p = self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--dry-run",
                          now=BEGUN)
        self.refused(p, r"begun")
        # --force: the administrator means it.
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--force",
                      now=BEGUN, check=0)
        sent = self.new_mail()
        self.assertEqual([(m.to, m.uid) for m in sent], [(ANNA, S1)])
        # Session 2 is ahead: sent as usual.
        self.send_now("session-reminder", "--session", S2, "--to", ANNA, now=BEGUN, check=0)
        self.assertEqual([(m.to, m.uid) for m in self.new_mail()], [(ANNA, S2)])


class NothingWrittenTest(ManualCase):
    def test_dry_run_changes_nothing_even_after_an_edit(self):
        self.assertEqual(len(self.once()), INVITES)
        before = dump_state(self.prog.state)
        # A mistaken export moves session 1 a week; dry runs look at it.
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        p = self.send_now("update", "--session", S1, "--to", ANNA, "--dry-run", check=0)
        self.assertIn(f"would send update to {ANNA}", p.stdout + p.stderr)
        self.send_now("session-reminder", "--session", S2, "--to", ANNA, "--dry-run", check=0)
        self.assertEqual(dump_state(self.prog.state), before)
        self.assertEqual(self.new_mail(), [])
        # The file is put back: no pointless update goes.
        self.restore_calendar()
        self.assertEqual(self.once(), [])

    def test_test_to_changes_nothing_even_after_an_edit(self):
        self.assertEqual(len(self.once()), INVITES)
        before = dump_state(self.prog.state)
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        self.send_now("update", "--session", S1, "--to", ANNA, "--test-to", TESTER, check=0)
        copy = self.new_mail()
        self.assertEqual(len(copy), 1)
        self.assertEqual(copy[0].start, "2020-02-27T10:00:00+01:00")
        self.assertEqual(dump_state(self.prog.state), before)
        self.restore_calendar()
        self.assertEqual(self.once(), [])

    def test_dry_run_says_already_sent_as_the_real_run_does(self):
        self.assertEqual(len(self.once()), INVITES)
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, check=0)
        self.assertEqual(len(self.new_mail()), 1)
        before = dump_state(self.prog.state)
        dry = self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--to", JOHAN,
                            "--dry-run")
        out = dry.stdout + dry.stderr
        self.assertIn(f"already sent session-reminder to {ANNA}", out)
        self.assertNotIn(f"would send session-reminder to {ANNA}", out)
        self.assertIn(f"would send session-reminder to {JOHAN}", out)
        self.assertEqual(self.new_mail(), [])
        self.assertEqual(dump_state(self.prog.state), before)
        # The real run: Johan's goes, Anna's is refused as already sent.
        real = self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--to", JOHAN)
        self.assertIn("already sent", real.stderr)
        self.assertEqual([(m.to, m.uid) for m in self.new_mail()], [(JOHAN, S1)])
        self.assertEqual(dry.returncode, real.returncode)
        self.assertEqual(real.returncode, 1)


class PreviewTest(ManualCase):
    def preview(self, message, who, session):
        path = os.path.join(self.tmpdir, f"preview-{message}.eml")
        self.prog.run("--preview", message, "--to", who, "--session", session, "--out", path,
                      "--now", NOW, check=0)
        check_messages(self, [path])
        with open(path, "rb") as f:
            return path, f.read()

    def preview_and_send(self, message, who, session, *force):
        path, shown = self.preview(message, who, session)
        self.assertIn(b"\r\nDate: ", shown)
        self.send_now(message, "--session", session, "--to", who, *force, check=0)
        sent = self.new_mail()
        self.assertEqual(len(sent), 1)
        return Mail(path), sent[0]

    def assert_same_bytes(self, preview, sent):
        sent_lines, sent_stamps = comparable(sent.raw)
        shown_lines, shown_stamps = comparable(preview.raw)
        self.assertEqual(sent_lines, shown_lines)
        # Both calendar parts (the inline one and invite.ics) of each.
        self.assertEqual(len(sent_stamps), 2)
        self.assertEqual(len(shown_stamps), 2)
        self.assertEqual(len(set(sent_stamps)), 1)
        self.assertEqual(len(set(shown_stamps)), 1)
        moments = [datetime.datetime.strptime(s[0].decode(), "%Y%m%dT%H%M%SZ")
                   for s in (shown_stamps, sent_stamps)]
        self.assertLessEqual(abs((moments[1] - moments[0]).total_seconds()), 10)

    def test_preview_invite_is_what_goes(self):
        preview, sent = self.preview_and_send("invite", ANNA, S1)
        self.assertEqual((sent.method, sent.sequence), ("REQUEST", 0))
        self.assert_same_bytes(preview, sent)

    def test_preview_cancel_of_a_cancelled_session_is_what_goes(self):
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(cancelled(self.original, S1))
        preview, sent = self.preview_and_send("cancel", ANNA, S1)
        self.assertEqual((preview.method, preview.sequence), ("CANCEL", 1))
        self.assertEqual((sent.method, sent.sequence), ("CANCEL", 1))
        self.assert_same_bytes(preview, sent)

    def test_preview_cancel_by_hand_is_what_goes(self):
        # Anna's invitation went at SEQUENCE 0; she will not come to session
        # 2: her cancel carries 1, in the preview as in the message sent.
        self.assertEqual(len(self.once()), INVITES)
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S2)
        preview, sent = self.preview_and_send("cancel", ANNA, S2)
        self.assertEqual((preview.method, preview.sequence), ("CANCEL", 1))
        self.assertEqual((sent.method, sent.sequence), ("CANCEL", 1))
        self.assert_same_bytes(preview, sent)

    def test_preview_update_of_a_moved_session_is_what_goes(self):
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        preview, sent = self.preview_and_send("update", ANNA, S1)
        self.assertEqual((preview.method, preview.sequence), ("REQUEST", 1))
        self.assertEqual((sent.method, sent.sequence), ("REQUEST", 1))
        self.assertEqual(sent.start, "2020-02-27T10:00:00+01:00")
        self.assert_same_bytes(preview, sent)

    def test_preview_refuses_what_send_now_refuses_by_the_ledger(self):
        # The session moved and its update (SEQUENCE 1) went: an invite by
        # hand would carry SEQUENCE 1 again, and --send-now refuses it;
        # so does its preview, and both say so; a key already sent too.
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        self.assertEqual(len(self.once()), len(ATTENDING[S1]))
        for message, session in (("invite", S1), ("invite", S2)):
            p = self.prog.run("--preview", message, "--to", ANNA, "--session", session,
                              "--now", NOW)
            s = self.send_now(message, "--session", session, "--to", ANNA)
            self.assertEqual((p.returncode, s.returncode), (1, 1), p.stderr + s.stderr)
            self.assertIn(f"--send-now {message} to {ANNA} would be refused: ", p.stderr)
            self.assertEqual(p.stdout, "")
        self.assertEqual(self.new_mail(), [])

    def test_preview_judges_a_claim_as_send_now_does(self):
        # A reminder by hand waiting for its retry: both refuse. The same
        # row claimed by a kallad that died: both take it (and send it).
        self.assertEqual(len(self.once()), INVITES)
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, check=0)
        self.assertEqual(len(self.new_mail()), 1)
        for state, extra, rc in ((3, ", next_attempt = 4102444800", 1),
                                 (0, ", owner_pid = 999999999, updated = 1", 0)):
            con = sqlite3.connect(self.prog.state)
            con.execute(f"UPDATE deliveries SET state = ?{extra} WHERE rule = 'manual'", (state,))
            con.commit()
            con.close()
            p = self.prog.run("--preview", "session-reminder", "--to", ANNA, "--session", S1,
                              "--now", NOW)
            d = self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--dry-run")
            s = self.send_now("session-reminder", "--session", S1, "--to", ANNA)
            self.assertEqual((p.returncode, s.returncode), (rc, rc), p.stderr + s.stderr)
            self.assertTrue(d.stdout.startswith("would refuse" if rc else "would send"), d.stdout)
            self.assertEqual(len(self.new_mail()), 1 - rc)

    def test_update_of_an_unchanged_session_needs_force(self):
        self.assertEqual(len(self.once()), INVITES)
        p = self.send_now("update", "--session", S1, "--to", ANNA)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(self.new_mail(), [])
        self.send_now("update", "--session", S1, "--to", ANNA, "--force", check=0)
        sent = self.new_mail()
        self.assertEqual([(m.method, m.to, m.uid) for m in sent], [("REQUEST", ANNA, S1)])


class TestCopyTest(ManualCase):
    def test_test_copy_has_its_own_message_id(self):
        self.assertEqual(len(self.once()), INVITES)
        before = dump_state(self.prog.state)
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--test-to", TESTER,
                      check=0)
        copy = self.new_mail()
        self.assertEqual(len(copy), 1)
        self.assertEqual(dump_state(self.prog.state), before)
        # Recorded nothing: the real one still goes, with an id of its own.
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, check=0)
        real = self.new_mail()
        self.assertEqual(len(real), 1)
        self.assertEqual(copy[0].to, real[0].to)
        self.assertEqual(copy[0].uid, real[0].uid)
        self.assertNotEqual(str(copy[0].msg["Message-ID"]), str(real[0].msg["Message-ID"]))


class DurableClaimsTest(KalladCase):
    """The README's promise for a send by hand: a claim is on disk before
    its message leaves. Claims go in batches of 64, each one transaction
    committed with an fsync (SQLite's fdatasync of the WAL), so 150
    messages cost a handful of syncs, not one each."""

    EXTRA = 140
    CONNECTIONS = 1
    SPACED = False

    def test_claims_synced_in_batches_before_their_messages(self):
        rows = ", ".join(f"('p{i:03d}@example.org', 'P {i}', 'sv', 'registered', "
                         f"'2019-11-01 10:00:00', '2019-11-01 10:00:00')"
                         for i in range(self.EXTRA))
        self.prog.sql("INSERT INTO participants(email, name, language, status, registered_at, "
                      "updated_at) VALUES " + rows)
        sink = self.sink()
        self.prog.use_smtp(sink.port, f"connections = {self.CONNECTIONS}")
        if self.SPACED:
            self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 6000")
        trace = os.path.join(self.tmpdir, "strace")
        p = subprocess.run(["strace", "-f", "-y", "-o", trace, "-e",
                            "trace=fsync,fdatasync,sendto,write,pwrite64",
                            KALLAD, "--config", self.prog.conf, "--send-now", "invite",
                            "--all", "--session", S1, "--now", NOW],
                           capture_output=True, text=True, timeout=300,
                           # LeakSanitizer cannot run under ptrace (the
                           # sanitizer build): leaks are checked elsewhere.
                           env=dict(os.environ, ASAN_OPTIONS=(
                               os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")))
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        sent = len(sink.messages())
        self.assertGreater(sent, self.EXTRA)
        syncs, mails, wal_write_since_sync = 0, 0, False
        with open(trace, encoding="utf-8", errors="replace") as f:
            for line in f:
                if re.search(r"\bf(data)?sync\(\d+<[^>]*state\.db-wal>", line):
                    syncs += 1
                    wal_write_since_sync = False
                elif re.search(r"\bpwrite64\(\d+<[^>]*state\.db-wal>", line):
                    wal_write_since_sync = True
                elif "MAIL FROM:" in line:
                    mails += 1
                    # The k-th message leaves after the sync of its batch.
                    self.assertGreaterEqual(syncs, -(-mails // 64), line)
                    if mails == 1:
                        self.assertFalse(wal_write_since_sync,
                                         "a claim was written after the last sync")
        self.assertEqual(mails, sent)
        # In batches: not one sync per message. Besides the batches: the
        # database's creation, and SQLite's WAL checkpoint once the log
        # passes 1000 pages (the schema's own pages bring that nearer).
        self.assertLessEqual(syncs, -(-sent // 64) + 5, f"{syncs} syncs for {sent} messages")
        con = sqlite3.connect(self.prog.state)
        states = dict(con.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        con.close()
        self.assertEqual(states, {1: sent})  # every row sent (state 1)



class DurableClaimsOverFourConnectionsTest(DurableClaimsTest):
    """The same with [smtp] connections = 4: the MAIL FROMs leave from the
    connections' threads, still each after its batch's sync."""

    CONNECTIONS = 4


class DurableClaimsSpacedTest(DurableClaimsTest):
    """The same under max-per-minute (a turn each 10 ms): a claim that
    waited for its turn is renewed before its message starts, but none
    written a moment ago, so the first message of a batch still leaves
    with nothing written since the batch's sync."""

    SPACED = True


class CalendarTruthTest(ManualCase):
    """Sends by hand, and their retries, over a real server: one greylists
    Anna (450 at RCPT), one takes everything."""

    LATER, LATEST = "2019-11-20T09:00:00+01:00", "2019-11-20T10:00:00+01:00"

    def setUp(self):
        super().setUp()
        self.servers = []
        self.grey = self.server("--rcpt-reply",
                                f"{ANNA}=450 4.2.0 <{ANNA}>: Recipient address rejected: "
                                "Greylisted")
        self.ok = self.server()
        self.prog.use_smtp(self.ok.port)
        self.relay = self.ok

    def server(self, *args):
        s = AioServer(self.tmpdir, args=args)
        self.addCleanup(s.stop)
        self.servers.append(s)
        return s

    def use(self, server):
        self.prog.edit_conf(f"127.0.0.1:{self.relay.port}", f"127.0.0.1:{server.port}")
        self.relay = server

    def mail_files(self):
        return [os.path.join(s.dir, n) for s in self.servers
                for n in sorted(os.listdir(s.dir), key=lambda n: (len(n), n))
                if n.endswith(".eml")]

    def manual_rows(self):
        con = sqlite3.connect(self.prog.state)
        rows = con.execute("SELECT key, state, detail FROM deliveries WHERE rule = 'manual'"
                           " ORDER BY key").fetchall()
        con.close()
        return rows

    def greylisted_reminder(self):
        """Anna's invitations went; a session reminder by hand meets the 450
        and waits for its retry."""
        self.assertEqual(len(self.once()), INVITES)
        self.use(self.grey)
        p = self.send_now("session-reminder", "--session", S1, "--to", ANNA, check=0)
        self.assertIn("1 deferred", p.stdout)
        self.assertEqual([r[1] for r in self.manual_rows()], [3])  # transient
        self.use(self.ok)

    def test_a_retry_after_an_update_is_given_up(self):
        self.greylisted_reminder()
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        to_anna = [m for m in self.once(self.LATER) if m.to == ANNA]
        # Her update, not the reminder of the old time at the old SEQUENCE.
        self.assertEqual([(m.method, m.uid, m.sequence, m.start) for m in to_anna],
                         [("REQUEST", S1, 1, "2020-02-27T10:00:00+01:00")])
        (key, state, detail), = self.manual_rows()
        self.assertEqual(state, 5, detail)  # skipped
        self.assertRegex(detail, r"^gave up: .*changed since")
        self.assertEqual(self.once(self.LATEST), [])

    def test_a_retry_after_a_cancel_is_given_up(self):
        self.greylisted_reminder()
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S1)
        to_anna = [m for m in self.once(self.LATER) if m.to == ANNA]
        self.assertEqual([(m.method, m.sequence) for m in to_anna], [("CANCEL", 1)])
        self.assertEqual([r[1] for r in self.manual_rows()], [5])
        self.assertEqual(self.once(self.LATEST), [])

    def test_discard_changes_leaves_a_retry_for_the_next_pass(self):
        self.greylisted_reminder()
        p = self.prog.run("--discard-changes", "--now", self.LATER, check=0)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.new_mail(), [])
        self.assertEqual([r[1] for r in self.manual_rows()], [3])
        sent = self.once(self.LATEST)
        self.assertEqual([(m.to, m.uid, m.sequence) for m in sent], [(ANNA, S1, 0)])

    def test_a_forced_retry_after_the_session_began_goes(self):
        # Forced after session 1 began, greylisted; its retry in the next
        # pass goes, as --force asked, however late its turn comes.
        self.assertEqual(len(self.once()), INVITES)
        self.use(self.grey)
        self.send_now("session-reminder", "--session", S1, "--to", ANNA, "--force",
                      now=BEGUN, check=0)
        self.assertEqual([r[1] for r in self.manual_rows()], [3])
        self.use(self.ok)
        sent = self.once("2020-02-20T11:10:00+01:00")
        self.assertEqual([(m.to, m.uid) for m in sent], [(ANNA, S1)])
        self.assertEqual([r[1] for r in self.manual_rows()], [1])

    def test_a_request_by_hand_after_a_cancel_outranks_it(self):
        self.assertEqual(len(self.once()), INVITES)
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S1)
        self.assertEqual([(m.to, m.method, m.sequence) for m in self.once(self.LATER)],
                         [(ANNA, "CANCEL", 1)])
        self.prog.sql("DELETE FROM absences WHERE email = ?", ANNA)
        self.send_now("invite", "--session", S1, "--to", ANNA, now=self.LATER, check=0)
        self.assertEqual([(m.to, m.method, m.sequence) for m in self.new_mail()],
                         [(ANNA, "REQUEST", 2)])
        self.assertEqual(self.once(self.LATEST), [])

    def test_a_cancel_by_hand_goes_once(self):
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(cancelled(self.original, S1))
        # The planner's cancel to Anna is being sent by another kallad.
        con = sqlite3.connect(self.prog.state)
        con.execute("INSERT INTO deliveries(key, message, email, target, state, updated,"
                    " owner_pid) VALUES (?, 'cancel', ?, ?, 0, 0, ?)",
                    (f"cancel|{ANNA}|{S1}|-|-|1", ANNA, S1, os.getpid()))
        con.commit()
        con.close()
        p = self.send_now("cancel", "--session", S1, "--to", ANNA)
        self.refused(p, r"already got \(or is getting\) SEQUENCE 1")
        con = sqlite3.connect(self.prog.state)
        con.execute("DELETE FROM deliveries WHERE key = ?", (f"cancel|{ANNA}|{S1}|-|-|1",))
        con.commit()
        con.close()
        # The planner's cancels go; one by hand after them is refused.
        sent = self.once(self.LATER)
        self.assertEqual({(m.method, m.uid, m.sequence) for m in sent}, {("CANCEL", S1, 1)})
        p = self.send_now("cancel", "--session", S1, "--all", "--dry-run", now=self.LATER)
        self.assertNotIn("would send", p.stdout)
        p = self.send_now("cancel", "--session", S1, "--all", now=self.LATER)
        self.refused(p, r"does not hold this session")

    def test_nothing_by_hand_the_planner_would_take_back(self):
        # A REQUEST to one absent from the session, a cancel to one who
        # attends: kallad would cancel, or invite, at its next pass
        # (--force sends them all the same).
        self.assertEqual(len(self.once()), INVITES)
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", ANNA, S1)
        self.assertEqual([(m.to, m.method) for m in self.once(self.LATER)], [(ANNA, "CANCEL")])
        for message in ("session-reminder", "invite"):
            with self.subTest(message=message):
                p = self.send_now(message, "--session", S1, "--to", ANNA, now=self.LATER)
                self.refused(p, r"absent from this session")
        p = self.send_now("cancel", "--session", S2, "--to", ANNA, now=self.LATER)
        self.refused(p, r"they attend this session")
        # Material carries no calendar: it goes.
        self.send_now("material", "--session", S1, "--to", ANNA, now=self.LATER, check=0)
        self.assertEqual([(m.to, m.method) for m in self.new_mail()], [(ANNA, None)])
        self.assertEqual(self.once(self.LATEST), [])

    def test_a_retry_without_a_calendar_survives_an_update(self):
        self.assertEqual(len(self.once()), INVITES)
        self.use(self.grey)
        self.send_now("material", "--session", S1, "--to", ANNA, check=0)
        self.use(self.ok)
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        to_anna = sorted((m.method or "-", m.sequence or 0) for m in self.once(self.LATER)
                         if m.to == ANNA)
        self.assertEqual(to_anna, [("-", 0), ("REQUEST", 1)])
        self.assertEqual([r[1] for r in self.manual_rows()], [1])  # sent

    def test_nothing_by_hand_shows_a_held_change(self):
        self.prog.edit_conf("changes            = send", "changes            = hold")
        self.assertEqual(len(self.once()), INVITES)
        self.write_calendar(moved(self.original, S1, "20200220", "20200227"))
        for message in ("session-reminder", "invite"):
            with self.subTest(message=message):
                p = self.send_now(message, "--session", S1, "--to", ANNA)
                self.refused(p, r"earlier version of this session")
        self.assertIn(ANNA, "".join("\t".join(line) for line in self.plan()
                                    if line[0] == "held"))
        # Material carries no calendar: it goes.
        self.send_now("material", "--session", S1, "--to", ANNA, check=0)
        self.assertEqual([(m.to, m.method) for m in self.new_mail()], [(ANNA, None)])
        # The update by hand is the change itself: it goes.
        self.send_now("update", "--session", S1, "--to", ANNA, check=0)
        self.assertEqual([(m.to, m.method, m.sequence, m.start) for m in self.new_mail()],
                         [(ANNA, "REQUEST", 1, "2020-02-27T10:00:00+01:00")])


if __name__ == "__main__":
    main()
