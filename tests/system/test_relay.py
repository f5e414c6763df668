"""The real binary against relays that really misbehave (issue 15): a
fault of the relay as a whole (a wrong password, an untrusted certificate,
a refused sender, a server that never greets, a rate limit at MAIL FROM)
fails no message, ends the pass and suspends the relay with backoff; only
replies to RCPT and DATA are about a message; an idle connection the relay
closed is replaced without a fault. Servers: tests/smtp_tls_server.py
(aiosmtpd) with STARTTLS, AUTH and a private CA, and its fault options."""

import os
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, AioServer, KalladCase, main, parse, private_ca  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
INVITES = 28
ANNA = "anna.berglund@gavle.example.se"


def at(minutes):
    """NOW plus minutes, as --now takes it."""
    h, m = divmod(minutes, 60)
    return f"2019-11-20T{8 + h:02d}:{m:02d}:00+01:00"


class RelayCase(KalladCase):
    def status(self, now=NOW):
        out = self.prog.run("--status", "--now", now, check=0).stdout
        lines = out.splitlines()
        counts = {k: int(v) for k, v in (line.split("\t") for line in lines[:6])}
        relay = [line for line in lines[6:] if line.startswith("relay\t")]
        return counts, relay[0] if relay else None

    def attempts(self):
        """Attempts counted per delivery in the ledger."""
        con = sqlite3.connect(self.prog.state)
        rows = con.execute("SELECT attempts FROM deliveries").fetchall()
        con.close()
        return [r[0] for r in rows]

    def tls_server(self, *args):
        ca, cert, key = private_ca(self.tmpdir)
        server = AioServer(self.tmpdir, tls=(cert, key), args=args)
        self.addCleanup(server.stop)
        return server, ca

    def use_tls(self, port, ca, password, ca_file=True):
        pw = os.path.join(self.tmpdir, "smtp-password")
        with open(pw, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        os.chmod(pw, 0o600)
        self.prog.append_conf(f"[smtp]\nurl = smtp://127.0.0.1:{port}\ntls = required\n"
                              f"user = kallad\npassword = {pw}\n"
                              + (f"ca-file = {ca}\n" if ca_file else "") +
                              f"max-per-minute = 0\ntimeout = 5")
        return pw

    def plain_server(self, *args):
        server = AioServer(self.tmpdir, args=args)
        self.addCleanup(server.stop)
        self.prog.use_smtp(server.port)
        return server

    def assert_nothing_failed_all_due(self, counts):
        self.assertEqual(counts["failed"], 0, counts)
        self.assertEqual(counts["sent"], 0, counts)
        # Whatever was claimed went back without an attempt counted.
        self.assertEqual(set(self.attempts()) - {0}, set())


class AuthAndCaTest(RelayCase):
    def test_wrong_password_suspends_and_fails_nothing(self):
        server, ca = self.tls_server()
        pw = self.use_tls(server.port, ca, "not-the-password")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("the relay is down", p.stderr)
        self.assertIn("535", p.stderr)
        self.assertNotIn("not-the-password", p.stderr)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertRegex(relay, r"^relay\tsuspended since 2019-11-20T08:00:00\+01:00, 1 fault "
                                r"in a row, next try 2019-11-20T08:(1[5-9]|[2-5]\d).*535 .*at AUTH")
        # One login tried, on one connection: a relay's lockout counts these.
        ev = server.events()
        self.assertEqual(ev.count("auth failed"), 1, ev)
        self.assertEqual(ev.count("connect"), 1, ev)
        # AUTH backs off a quarter of an hour at least: runs before that
        # do not knock again.
        for minutes in (1, 5, 14):
            p = self.prog.run("--once", "--now", at(minutes))
            self.assertEqual(p.returncode, 1)
        self.assertEqual(server.events().count("connect"), 1, server.events())
        # The password is put right; once the backoff passed, all go, once.
        with open(pw, "w", encoding="utf-8") as f:
            f.write("secret\n")
        p = self.prog.run("--once", "--now", at(61), check=0)
        self.assertIn(f"{INVITES} sent", p.stdout)
        got = server.messages()
        self.assertEqual(len(got), INVITES)
        self.assertEqual(len({str(parse(m)["Message-ID"]) for m in got}), INVITES)
        counts, relay = self.status()
        self.assertEqual(counts["sent"], INVITES)
        self.assertIsNone(relay)
        with open(os.path.join(server.dir, "1.env"), encoding="utf-8") as f:
            self.assertEqual(f.read().splitlines()[-2:], ["tls yes", "user kallad"])

    def test_private_ca_through_ca_file(self):
        server, ca = self.tls_server()
        self.use_tls(server.port, ca, "secret")
        # --check reads it: a missing or wrong CA file is a configuration
        # error naming the key, before anything is sent.
        self.prog.edit_conf(f"ca-file = {ca}", "ca-file = no-such-ca.pem")
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 78)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: ca-file: .*no-such-ca\.pem: cannot read")
        self.assertEqual(self.prog.run("--once", "--now", NOW).returncode, 78)
        self.prog.edit_conf("ca-file = no-such-ca.pem", f"ca-file = {self.prog.conf}")
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 78)
        self.assertIn("holds no PEM certificate", p.stderr)
        # Without it the system's CAs do not know the relay: a TLS fault
        # of the relay, not 28 failed messages.
        self.prog.edit_conf(f"ca-file = {self.prog.conf}\n", "")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1)
        self.assertIn("certificate", p.stderr)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertIn("[smtp] ca-file", relay)
        # With it, every message goes, certificate checked.
        self.prog.edit_conf("timeout = 5", f"ca-file = {ca}\ntimeout = 5")
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.prog.run("--once", "--now", at(5), check=0)
        self.assertEqual(len(server.messages()), INVITES)


class RefusalTest(RelayCase):
    def test_refused_sender_fails_no_message(self):
        refusal = "553 5.7.1 <program@example.org>: Sender address rejected: not owned by user kallad"
        server = self.plain_server("--mail-reply", refusal)
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertIn(refusal + " (at MAIL)", relay)
        # One MAIL FROM refused, not one per message.
        self.assertEqual(server.events().count("mail 553"), 1, server.events())
        # --status --failed says why the deliveries wait, and until when.
        out = self.prog.run("--status", "--failed", "--now", NOW, check=0).stdout
        waiting = [line for line in out.splitlines()[7:] if "deferred:" in line]
        self.assertTrue(waiting)
        self.assertIn("not attempted: the relay is down: 553 5.7.1", waiting[0])
        # Fixed: after the backoff, everything goes.
        server.stop()
        good = AioServer(self.tmpdir)
        self.addCleanup(good.stop)
        self.prog.edit_conf(f"127.0.0.1:{server.port}", f"127.0.0.1:{good.port}")
        self.prog.run("--once", "--now", at(3), check=0)
        self.assertEqual(len(good.messages()), INVITES)
        self.assertIsNone(self.status()[1])

    def test_server_that_never_greets(self):
        server = AioServer(self.tmpdir, args=["--silent"])
        self.addCleanup(server.stop)
        self.prog.use_smtp(server.port)
        start = time.monotonic()
        p = self.prog.run("--once", "--now", NOW, timeout=100)
        took = time.monotonic() - start
        self.assertEqual(p.returncode, 1)
        # One wait for the greeting ([smtp] timeout = 5), not one per message.
        self.assertLess(took, 15, p.stderr)
        self.assertEqual(server.events().count("connect"), 1)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertIn("accepted the connection but sent no greeting within 5 s", relay)

    def test_greylisted_recipient_waits_alone(self):
        grey = (f"450 4.2.0 <{ANNA}>: Recipient address rejected: Greylisted, "
                "see http://postgrey.schweikert.ch/help/gavle.example.se.html")
        server = self.plain_server("--rcpt-reply", f"{ANNA}={grey}")
        start = time.monotonic()
        p = self.prog.run("--once", "--now", NOW)
        # Waiting for a retry of its own is no failure.
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.monotonic() - start, 15)
        anna_invites = 3
        self.assertIn(f"{INVITES - anna_invites} sent, {anna_invites} deferred", p.stdout)
        self.assertEqual(len(server.messages()), INVITES - anna_invites)
        counts, relay = self.status()
        self.assertEqual(counts["transient"], anna_invites)
        self.assertIsNone(relay)
        # --status --failed shows her deliveries' last reply and next try.
        out = self.prog.run("--status", "--failed", "--now", NOW,
                            check=0).stdout.splitlines()[6:]
        self.assertEqual(len(out), anna_invites, out)
        for line in out:
            when, message, email, target, detail = line.split("\t")
            self.assertEqual(email, ANNA)
            # The first retry: a minute with jitter (half to one and a
            # half, send_backoff), from a pass that took under 15 s.
            self.assertGreaterEqual(when, "2019-11-20T08:00:30+01:00")
            self.assertLess(when, "2019-11-20T08:01:46+01:00")
            self.assertEqual(detail, "deferred: " + grey + " (at RCPT)")


class LimitTest(RelayCase):
    def test_postfix_rate_limit_at_mail_stops_the_pass(self):
        # anvil's smtpd_client_message_rate_limit: 5 a minute, then
        # "450 4.7.1 Error: too much mail from 127.0.0.1" at MAIL FROM.
        server = self.plain_server("--rate", "5/60")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1)
        self.assertIn("too much mail", p.stderr)
        ev = server.events()
        # Five go; the first refusal ends the pass: no reconnect storm.
        self.assertEqual(ev.count("mail 250"), 5, ev)
        self.assertEqual(ev.count("mail 450"), 1, ev)
        counts, relay = self.status()
        self.assertEqual(counts["sent"], 5)
        self.assertEqual(counts["failed"], 0)
        self.assertIn("450 4.7.1 Error: too much mail from 127.0.0.1 (at MAIL)", relay)
        # Within the backoff nothing knocks again.
        self.prog.run("--once", "--now", "2019-11-20T08:00:30+01:00")
        self.assertEqual(server.events().count("connect"), ev.count("connect"))

    def test_at_most_one_connection_a_second(self):
        # Every RCPT refused: libcurl closes the connection after each, so
        # each message needs a new one; never more than one a second.
        server = self.plain_server("--rcpt-reply", f"{ANNA}=450 4.2.0 busy",
                                   "--rcpt-reply",
                                   "maria.ekstrom@lund.example.se=450 4.2.0 busy")
        self.prog.run("--once", "--now", NOW, check=0)
        with open(os.path.join(server.dir, "events"), encoding="utf-8") as f:
            times = [float(line.split()[0]) for line in f if line.split()[1] == "connect"]
        self.assertGreaterEqual(len(times), 6)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreaterEqual(min(gaps), 0.95, gaps)

    def test_daemon_shows_the_relay_down_in_its_status(self):
        server, ca = self.tls_server()
        self.use_tls(server.port, ca, "wrong")
        path = os.path.join(self.tmpdir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.5)
        self.addCleanup(sock.close)
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+", encoding="utf-8")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", NOW],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, NOTIFY_SOCKET=path))
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        seen, end = [], time.time() + 20
        while time.time() < end and not any("relay down" in m for m in seen):
            try:
                seen.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        status = [m for m in seen if "STATUS=relay down" in m]
        self.assertTrue(status, seen)
        self.assertRegex(status[0], r"STATUS=relay down, next try 20 nov 08:(1[5-9]|[2-5]\d): "
                                    r"authentication failed .*535")
        self.assertEqual(server.events().count("auth failed"), 1)
        counts, relay = self.status()
        self.assertEqual(counts["failed"], 0)
        self.assertIsNotNone(relay)


class ConnectionLifeTest(RelayCase):
    def wait_messages(self, server, n, timeout=30):
        end = time.time() + timeout
        while time.time() < end and len(server.messages()) < n:
            time.sleep(0.1)
        return len(server.messages())

    def test_daemon_does_not_meet_the_idle_timeout_421(self):
        # The relay (over STARTTLS, as in production) ends a connection idle
        # for 2 s with Postfix's "421 4.4.2 ... Error: timeout exceeded".
        # The daemon keeps no idle connection for that 421 to meet its next
        # message: a registration after the pass is invited at once.
        server, ca = self.tls_server("--idle", "2")
        # The CA through the environment (kallad(8)): this test asks nothing
        # new of the configuration.
        self.use_tls(server.port, ca, "secret", ca_file=False)
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+", encoding="utf-8")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", NOW],
                                stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, KALLAD_SMTP_CAINFO=ca))
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertEqual(self.wait_messages(server, INVITES), INVITES)
        time.sleep(3.5)
        self.prog.sql("INSERT INTO participants(email, name, status, registered_at, updated_at)"
                      " VALUES ('ny.deltagare@falun.example.se', 'Ny Deltagare', 'registered',"
                      " '2019-11-20 08:00', '2019-11-20 08:00')")
        self.assertEqual(self.wait_messages(server, INVITES + 3), INVITES + 3)
        time.sleep(0.5)
        counts, relay = self.status()
        log.seek(0)
        self.assertEqual(counts["transient"], 0, log.read())
        self.assertEqual(counts["sent"], INVITES + 3)
        self.assertIsNone(relay)


class FixedRelayTest(RelayCase):
    """An administrator who fixes the relay gets a try at once (README:
    --retry-failed, a changed [smtp] on reload and a start of the daemon
    end the suspension): the deliveries claimed when it began, released
    to wait for the relay's next try, go then too, not at the end of the
    suspension it no longer has."""

    def suspend(self):
        """A wrong password: the 28 invites are claimed, the first meets
        AUTH's 535, all 28 go back to wait for the relay (08:15 or later)."""
        server, ca = self.tls_server()
        pw = self.use_tls(server.port, ca, "not-the-password")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertIsNotNone(relay)
        con = sqlite3.connect(self.prog.state)
        waiting = con.execute("SELECT min(next_attempt) FROM deliveries").fetchone()[0]
        con.close()
        self.assertGreaterEqual(waiting, 1574233200 + 15 * 60)  # 08:15
        with open(pw, "w", encoding="utf-8") as f:
            f.write("secret\n")
        return server

    def daemon(self, now):
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+", encoding="utf-8")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", now],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        return log

    def wait_messages(self, server, n, log, timeout=15):
        end = time.time() + timeout
        while time.time() < end and len(server.messages()) < n:
            time.sleep(0.1)
        log.seek(0)
        self.assertEqual(len(server.messages()), n, log.read()[-3000:])
        got = server.messages()
        self.assertEqual(len({str(parse(m)["Message-ID"]) for m in got}), n)

    def test_retry_failed_tries_what_waited_at_once(self):
        server = self.suspend()
        p = self.prog.run("--retry-failed", "--now", at(1))
        self.assertIn("0 failed deliveries queued again", p.stdout)
        p = self.prog.run("--once", "--now", at(1), check=0)
        self.assertIn(f"{INVITES} sent", p.stdout, p.stderr)
        self.assertEqual(len(server.messages()), INVITES)
        counts, relay = self.status(at(1))
        self.assertEqual(counts["sent"], INVITES)
        self.assertIsNone(relay)

    def test_daemon_start_tries_what_waited_at_once(self):
        server = self.suspend()
        log = self.daemon(at(1))
        self.wait_messages(server, INVITES, log)

    def test_changed_smtp_tries_what_waited_at_once(self):
        server, ca = self.tls_server()
        pw = self.use_tls(server.port, ca, "not-the-password")
        log = self.daemon(NOW)
        end = time.time() + 15
        while time.time() < end and self.status()[1] is None:
            time.sleep(0.1)
        self.assertIsNotNone(self.status()[1])
        time.sleep(0.5)
        self.assertEqual(server.messages(), [])
        with open(pw, "w", encoding="utf-8") as f:
            f.write("secret\n")
        self.prog.edit_conf("timeout = 5", "timeout = 6")
        self.wait_messages(server, INVITES, log)
        log.seek(0)
        self.assertIn("[smtp] changed: using the new settings", log.read())

    def test_retry_failed_while_the_daemon_still_sends(self):
        # Two connections: the first message goes, the second meets a
        # refused MAIL FROM (the relay is suspended), the third's refusal
        # takes 4 s. While the daemon waits for it, --retry-failed ends the
        # suspension; the rest of the batch goes back after that (held for
        # the relay that this daemon still sees suspended), and goes at once.
        fixed = os.path.join(self.tmpdir, "fixed")
        server = self.plain_server("--mail-reply-after", "1", "--slow-refusal", "4",
                                   "--mail-reply", "550 5.7.1 sender refused",
                                   "--fixed", fixed)
        self.prog.append_conf("connections = 2")
        log = self.daemon(NOW)
        end = time.time() + 15
        while time.time() < end and self.status()[1] is None:
            time.sleep(0.05)
        self.assertIsNotNone(self.status()[1])
        open(fixed, "w").close()
        self.prog.run("--retry-failed", "--now", NOW)
        self.wait_messages(server, INVITES, log)


if __name__ == "__main__":
    main()
