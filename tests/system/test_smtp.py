"""The real binary against Postfix's smtp-sink on loopback: every due
message arrives exactly once whatever the server does, and what cannot be
delivered is retried or recorded, never lost."""

import collections
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, AioServer, KalladCase, check_messages, main, parse  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
LATER = "2019-11-20T14:00:00+01:00"   # past any backoff of the first attempts
INVITES = 28                          # the example's registered x sessions attended


def ids(raw_messages):
    return [str(parse(m)["Message-ID"]) for m in raw_messages]


def status(prog):
    out = prog.run("--status", check=0).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines()[:6])}


class SmtpTest(KalladCase):
    def test_each_message_arrives_once(self):
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.run("--once", "--now", NOW, check=0)
        got = sink.messages()
        self.assertEqual(len(got), INVITES)
        self.assertEqual(len(set(ids(got))), INVITES)
        for raw in got:
            m = parse(raw)
            # The envelope recipient is the one in To:, alone.
            self.assertEqual(m["X-Rcpt-Args"].strip("<> "), m["To"].addresses[0].addr_spec)
        paths = []
        for i, raw in enumerate(got):
            p = os.path.join(self.tmpdir, f"m{i}.eml")
            with open(p, "wb") as f:
                f.write(raw)
            paths.append(p)
        check_messages(self, paths)
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(len(sink.messages()), INVITES)
        self.assertEqual(status(self.prog)["sent"], INVITES)

    def retry_on_good_server(self, port_sink_flags, expect_state):
        bad = self.sink(*port_sink_flags)
        self.prog.use_smtp(bad.port)
        self.prog.run("--once", "--now", NOW)
        st = status(self.prog)
        self.assertEqual(st[expect_state], INVITES, st)
        self.assertEqual(st["sent"], 0)
        return bad

    def test_soft_rejection_is_retried(self):
        bad = self.retry_on_good_server(["-r", "RCPT"], "transient")
        bad.stop()
        good = self.sink()
        self.prog.edit_conf(f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}")
        # Not before the backoff has passed...
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(len(good.messages()), 0)
        # ...and then every one, once.
        self.prog.run("--once", "--now", LATER, check=0)
        self.assertEqual(len(good.messages()), INVITES)
        self.assertEqual(len(set(ids(good.messages()))), INVITES)

    def test_hard_rejection_is_recorded(self):
        bad = self.retry_on_good_server(["-f", "RCPT"], "failed")
        out = self.prog.run("--status", "--failed", check=0).stdout
        failed = out.splitlines()[6:]
        self.assertEqual(len(failed), INVITES)
        self.assertRegex(failed[0], r"\t5\d\d ")   # the server's words are kept
        # Permanent: a later run does not try again...
        self.prog.run("--once", "--now", LATER)
        self.assertEqual(status(self.prog)["failed"], INVITES)
        # ...until an administrator asks.
        bad.stop()
        good = self.sink()
        self.prog.edit_conf(f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}")
        self.prog.run("--retry-failed", "--now", LATER, check=0)
        self.prog.run("--once", "--now", LATER, check=0)
        self.assertEqual(len(good.messages()), INVITES)

    def test_disconnect_after_data_is_unknown_and_resent_same_id(self):
        bad = self.sink("-q", ".")
        self.prog.use_smtp(bad.port)
        self.prog.run("--once", "--now", NOW)
        st = status(self.prog)
        self.assertEqual(st["unknown"], INVITES, st)
        bad.stop()
        good = self.sink()
        self.prog.edit_conf(f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}")
        self.prog.run("--once", "--now", LATER, check=0)
        self.assertEqual(len(good.messages()), INVITES)
        self.assertEqual(status(self.prog)["sent"], INVITES)

    def test_test_to_sends_the_exact_message_elsewhere_and_records_nothing(self):
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        anna = "anna.berglund@gavle.example.se"
        self.prog.run("--send-now", "invite", "--to", anna, "--test-to", "lena.lindgren@example.org",
                      "--now", NOW, check=0)
        got = sink.messages()
        self.assertEqual(len(got), 1)
        m = parse(got[0])
        # The envelope goes to the tester; the message is Anna's, unchanged.
        self.assertEqual(m["X-Rcpt-Args"].strip("<> "), "lena.lindgren@example.org")
        self.assertEqual(m["To"].addresses[0].addr_spec, anna)
        self.assertEqual(sum(status(self.prog).values()), 0)
        # Nothing recorded: the real send still goes.
        self.prog.run("--send-now", "invite", "--to", anna, "--now", NOW, check=0)
        self.assertEqual(len(sink.messages()), 2)

    def test_send_now_refuses_what_the_daemon_sent(self):
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        anna = "anna.berglund@gavle.example.se"
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(len(sink.messages()), INVITES)
        # Her invite went as the daemon's notice: a manual one is the same
        # message, refused.
        p = self.prog.run("--send-now", "invite", "--to", anna, "--now", NOW)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already got (or is getting) SEQUENCE 0", p.stderr)
        self.assertEqual(len(sink.messages()), INVITES)
        # --force sends it anew, on purpose.
        self.prog.run("--send-now", "invite", "--to", anna, "--force", "--now", NOW, check=0)
        self.assertEqual(len(sink.messages()), INVITES + 1)

    def test_send_now_and_the_daemon_never_both_send_an_invite(self):
        import sqlite3
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        anna = "anna.berglund@gavle.example.se"
        uid = "styra-leda-2020-1@example.org"
        key = f"invite|{anna}|{uid}|-|-|0"
        # Another kallad (alive: this test's pid) is sending her invite now.
        self.prog.run("--retry-failed", "--now", NOW, check=0)  # creates the ledger
        con = sqlite3.connect(self.prog.state)
        con.execute("INSERT INTO deliveries(key, message, email, target, rule, state, due, updated,"
                    " owner_pid) VALUES (?, 'invite', ?, ?, '-', 0, 0, 1574233200, ?)",
                    (key, anna, uid, os.getpid()))
        con.commit()
        con.close()
        p = self.prog.run("--send-now", "invite", "--to", anna, "--session", uid, "--now", NOW)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already got (or is getting) SEQUENCE 0", p.stderr)
        self.assertEqual(len(sink.messages()), 0)
        # That kallad is gone without sending; the manual invite goes, and
        # the daemon then leaves that invite alone: one invite, not two.
        con = sqlite3.connect(self.prog.state)
        con.execute("DELETE FROM deliveries WHERE key = ?", (key,))
        con.commit()
        con.close()
        self.prog.run("--send-now", "invite", "--to", anna, "--session", uid, "--now", NOW, check=0)
        self.prog.run("--once", "--now", NOW, check=0)
        got = [parse(m) for m in sink.messages()]
        to_anna = [m for m in got if m["To"].addresses[0].addr_spec == anna]
        # Her three sessions, one invite each.
        self.assertEqual(len(to_anna), 3, [str(m["Subject"]) for m in to_anna])
        self.assertEqual(len(got), INVITES)

    def test_manual_send_is_retried(self):
        bad = self.sink("-r", "RCPT")
        self.prog.use_smtp(bad.port)
        anna = "anna.berglund@gavle.example.se"
        p = self.prog.run("--send-now", "session-reminder", "--to", anna, "--now", NOW)
        # A 4xx for the message: it waits for its retry, legitimately (exit 0,
        # as --once would).
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0 sent, 1 deferred", p.stdout)
        self.assertEqual(status(self.prog)["transient"], 1)
        again = self.prog.run("--send-now", "session-reminder", "--to", anna, "--now", NOW)
        self.assertIn("is waiting for a retry", again.stderr)
        bad.stop()
        good = self.sink()
        self.prog.edit_conf(f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}")
        trace = os.path.join(self.tmpdir, "strace")
        p = subprocess.run(["strace", "-f", "-y", "-o", trace, "-e",
                            "trace=fsync,fdatasync,sendto,pwrite64",
                            KALLAD, "--config", self.prog.conf, "--once", "--now", LATER],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, ASAN_OPTIONS=(
                               os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")))
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        got = [parse(m) for m in good.messages()]
        reminders = [m for m in got if str(m["Subject"]).startswith("Påminnelse")]
        self.assertEqual([m["To"].addresses[0].addr_spec for m in reminders], [anna])
        # The retry (the pass's last message) was claimed on disk before it
        # left: the state's log synced after its last write, as every
        # batch of claims is.
        synced, last_mail_synced = True, None
        with open(trace, encoding="utf-8", errors="replace") as f:
            for line in f:
                if re.search(r"\bf(data)?sync\(\d+<[^>]*state\.db-wal>", line):
                    synced = True
                elif re.search(r"\bpwrite64\(\d+<[^>]*state\.db-wal>", line):
                    synced = False
                elif "MAIL FROM:" in line:
                    last_mail_synced = synced
        self.assertTrue(last_mail_synced, "the retry's claim was not synced before it left")

    def test_retry_no_longer_planned_is_given_up(self):
        bad = self.retry_on_good_server(["-r", "RCPT"], "transient")
        # Anna cancels before the retries: her invites are no longer meant.
        self.prog.sql("UPDATE participants SET status = 'cancelled' WHERE email = ?",
                      "anna.berglund@gavle.example.se")
        bad.stop()
        good = self.sink()
        self.prog.edit_conf(f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}")
        self.prog.run("--once", "--now", LATER, check=0)
        st = status(self.prog)
        # Given up and forgotten: no retry pending, nothing blocked.
        self.assertEqual(st, {"claimed": 0, "sent": INVITES - 3, "unknown": 0, "transient": 0,
                              "failed": 0, "skipped": 0})
        self.assertEqual(len(good.messages()), INVITES - 3)  # and no cancel: she had nothing
        # She registers again: her invites go after all.
        self.prog.sql("UPDATE participants SET status = 'registered' WHERE email = ?",
                      "anna.berglund@gavle.example.se")
        self.prog.run("--once", "--now", LATER, check=0)
        self.assertEqual(len(good.messages()), INVITES)

    def test_421_suspends_the_relay(self):
        # A 421 at MAIL is the relay closing, not a verdict on a message:
        # the pass stops at once, every claimed delivery goes back without
        # an attempt counted, and nothing is hammered.
        start = time.monotonic()
        bad = self.retry_on_good_server(["-Q", "MAIL"], "transient")
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(len(bad.messages()), 0)
        out = self.prog.run("--status", "--now", NOW, check=0).stdout
        self.assertRegex(out.splitlines()[6], r"^relay\tsuspended since .*: 421 ")

    def test_slow_reply_to_data_is_unknown_and_not_off_by_one(self):
        # The reply to the first message's "." comes after 8 s; the reply
        # timeout is 5 s. That message's fate is unknown; every later
        # message must get its own reply, not the late one (libcurl would
        # read it as the next command's without a fresh connection).
        server = AioServer(self.tmpdir, slow_first=8)
        self.addCleanup(server.stop)
        self.prog.use_smtp(server.port, "end-of-data-timeout = 5")
        self.prog.run("--once", "--now", NOW, timeout=300)
        st = status(self.prog)
        self.assertEqual(st["unknown"], 1, st)
        self.assertEqual(st["sent"], INVITES - 1, st)
        self.assertEqual(len(server.messages()), INVITES)  # the server did get it
        self.prog.run("--once", "--now", LATER, check=0, timeout=300)
        got = ids(server.messages())
        # Every key arrived; the one resent carries the same Message-ID.
        self.assertEqual(len(set(got)), INVITES)
        self.assertEqual(len(got), INVITES + 1)
        self.assertEqual(status(self.prog)["sent"], INVITES)

    def test_slow_replies_time_out_as_unknown(self):
        # smtp-sink -W delays every reply to "." past the timeout.
        sink = self.sink("-W", ".:7")
        self.prog.use_smtp(sink.port, "end-of-data-timeout = 2")
        self.prog.edit_conf("timeout = 5", "timeout = 2")
        self.prog.run("--send-now", "session-reminder", "--to",
                      "anna.berglund@gavle.example.se", "--now", NOW, timeout=60)
        self.assertEqual(status(self.prog)["unknown"], 1)

    def test_slow_reply_to_data_within_its_own_timeout_is_sent(self):
        # RFC 5321 4.5.3.2.6: ten minutes for the reply to "."; `timeout`
        # (2 s here) bounds the other replies only. A relay that takes 4 s
        # to queue a message is not a timeout, and no duplicate follows.
        sink = self.sink("-W", ".:4")
        self.prog.use_smtp(sink.port)
        self.prog.edit_conf("timeout = 5", "timeout = 2")
        p = self.prog.run("--send-now", "session-reminder", "--to",
                          "anna.berglund@gavle.example.se", "--now", NOW, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(status(self.prog)["sent"], 1)
        self.assertEqual(len(sink.messages()), 1)

    def test_rate_limit(self):
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 300")
        start = time.monotonic()
        self.prog.run("--once", "--now", NOW, check=0)
        elapsed = time.monotonic() - start
        self.assertEqual(len(sink.messages()), INVITES)
        # 28 messages 0.2 s apart: 27 gaps.
        ideal = (INVITES - 1) * 60 / 300
        self.assertGreaterEqual(elapsed, ideal * 0.98)
        self.assertLessEqual(elapsed, ideal * 1.1 + 0.5)

    def test_no_message_starts_in_quiet_hours_after_its_turn(self):
        # 12 a minute: the second message's turn comes 5 s after the first,
        # at 21:00:02, inside quiet hours (21:00-07:00): it waits for 07:00,
        # with the rest.
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 12")
        p = self.prog.run("--once", "--now", "2019-11-20T20:59:57+01:00", check=0)
        self.assertEqual(len(sink.messages()), 1, p.stdout + p.stderr)
        self.assertIn("1 sent", p.stdout)
        p = self.prog.run("--status", "--failed", check=0)
        self.assertEqual(p.stdout.count("quiet hours began"), INVITES - 1, p.stdout)
        self.prog.edit_conf("max-per-minute = 12", "max-per-minute = 0")
        self.prog.run("--once", "--now", "2019-11-21T07:00:00+01:00", check=0)
        self.assertEqual(len(sink.messages()), INVITES)

    def paced_last_call(self, min_lead, now):
        """The invitations go; a rule one hour before each session, with
        min-lead as given (or none); what is overdue on 20 Feb goes at
        08:00; then 12 a minute (one each 5 s) and a pass at `now` near
        session 1 (20 Feb 10:00): what that pass sent, and the process."""
        sink = self.paced_sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(len(sink.messages()), INVITES)
        self.prog.edit_conf("min-lead           = 6h",
                            f"min-lead           = {min_lead}" if min_lead else "")
        self.prog.append_conf("[rule last-call]\nmessage = session-reminder\nbefore = 1h\n"
                              "to = registered\n")
        self.prog.run("--once", "--now", "2020-02-20T08:00:00+01:00", check=0)
        before = len(sink.messages())
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 12")
        p = self.prog.run("--once", "--now", now, check=0)
        return sink.messages()[before:], p

    def test_no_reminder_starts_after_its_session_began_after_its_turn(self):
        # Ten reminders due at 09:00, the pass at 09:59:52: turns at :52,
        # :57, 10:00:02... Only what starts before 10:00 goes; the rest
        # is skipped as the planner would (event-passed), not sent late.
        went, p = self.paced_last_call(None, "2020-02-20T09:59:52+01:00")
        self.assertEqual(len(went), 2, p.stdout + p.stderr)
        self.assertIn("not sent (event-passed)", p.stderr)
        status = self.prog.run("--history", "anna.berglund@gavle.example.se", check=0).stdout
        self.assertNotIn("not attempted", status)
        # Nothing of it later either.
        count = len(self.paced_sink.messages())
        self.prog.run("--once", "--now", "2020-02-20T10:00:30+01:00", check=0)
        self.assertEqual(len(self.paced_sink.messages()), count)

    def test_no_reminder_starts_within_min_lead_after_its_turn(self):
        # min-lead = 1h and the rule's hour before: the first at 09:00:00
        # goes; the next turn, 09:00:05, is within min-lead.
        went, p = self.paced_last_call("1h", "2020-02-20T09:00:00+01:00")
        self.assertEqual(len(went), 1, p.stdout + p.stderr)
        self.assertIn("not sent (min-lead)", p.stderr)


class CrashTest(KalladCase):
    def test_kill_9_loses_nothing(self):
        con_rows = [(f"p{i:04d}@kommun{i % 40}.example.se", f"Deltagare {i}", "registered",
                     "2019-11-01 10:00", "2019-11-01 10:00") for i in range(700)]
        import sqlite3
        con = sqlite3.connect(self.prog.db)
        con.executemany("INSERT INTO participants(email, name, status, registered_at, "
                        "updated_at) VALUES (?,?,?,?,?)", con_rows)
        con.commit()
        con.close()
        total = (700 + 10) * 3 - 2
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        kills = 0
        for delay in (0.6, 0.9, 1.3):
            p = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--once", "--now", NOW],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
        self.assertGreater(kills, 0, "kallad finished before it could be killed")
        self.prog.run("--once", "--now", NOW, check=0, timeout=300)
        got = ids(sink.messages())
        counts = collections.Counter(got)
        self.assertEqual(len(counts), total)                 # nothing lost
        # A kill repeats what was in flight (SPEC §3): an outcome is
        # committed before the next message starts, so one connection
        # repeats at most one.
        self.assertLessEqual(len(got) - total, kills)
        self.assertEqual(status(self.prog)["sent"], total)


if __name__ == "__main__":
    main()
