"""[smtp] connections = 4 through the real binary (issue 16): every due
message arrives once, over several connections really at once; each
mailbox gets its messages one after another, in one connection's order,
and a mailbox slow to take them holds up no one else's; a kill -9
mid-send loses nothing and the resends carry the same Message-IDs;
max-per-minute holds for all connections together; a fault of the relay
on one connection stops them all (a wrong password is tried once).
Servers: tests/smtp_tls_server.py (aiosmtpd), which notes per message the
client's port and when its transaction began and ended, and Postfix's
smtp-sink."""

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, AioServer, main, parse  # noqa: E402
import test_relay  # noqa: E402
from test_relay import RelayCase  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
INVITES = 28
CONNECTIONS = 4


def ids(raw_messages):
    return [str(parse(m)["Message-ID"]) for m in raw_messages]


def envs(server):
    """Per message received: {"peer": port, "began": t, "ended": t,
    "rcpt": address, "subject": its Subject}."""
    out = []
    for n in os.listdir(server.dir):
        if n.endswith(".conn"):
            with open(os.path.join(server.dir, n), encoding="utf-8") as f:
                fields = dict(line.split(" ", 1) for line in f.read().splitlines())
            with open(os.path.join(server.dir, n[:-5] + ".env"), encoding="utf-8") as f:
                rcpt = [line[5:] for line in f.read().splitlines() if line.startswith("rcpt ")]
            with open(os.path.join(server.dir, n[:-5] + ".eml"), "rb") as f:
                subject = str(parse(f.read())["Subject"])
            out.append({"peer": int(fields["peer"]), "began": float(fields["began"]),
                        "ended": float(fields["ended"]), "rcpt": rcpt[0], "subject": subject})
    return out


def by_mailbox(spans):
    """Each recipient's messages in the order their transactions began."""
    out = collections.defaultdict(list)
    for s in sorted(spans, key=lambda s: s["began"]):
        out[s["rcpt"]].append(s)
    return out


def most_at_once(spans):
    """The largest number of transactions under way at one moment."""
    edges = sorted([(s["began"], 1) for s in spans] + [(s["ended"], -1) for s in spans],
                   key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


class ConnectionsTest(RelayCase):
    def add_participants(self, n):
        con = sqlite3.connect(self.prog.db)
        con.executemany("INSERT INTO participants(email, name, status, registered_at, "
                        "updated_at) VALUES (?,?,?,?,?)",
                        [(f"p{i:04d}@kommun{i % 40}.example.se", f"Deltagare {i}", "registered",
                          "2019-11-01 10:00", "2019-11-01 10:00") for i in range(n)])
        con.commit()
        con.close()
        return (n + 10) * 3 - 2  # what is due at NOW, as test_smtp's CrashTest counts

    def sent(self):
        con = sqlite3.connect(self.prog.state)
        n = con.execute("SELECT count(*) FROM deliveries WHERE state = 1").fetchone()[0]
        con.close()
        return n

    def assert_stopped_by_the_limit(self, sent):
        """sent went, none failed, what did not go went back without an
        attempt counted, and the relay is suspended for the rate limit;
        its --status line."""
        counts, relay = self.status()
        self.assertEqual(counts["sent"], sent)
        self.assertEqual(counts["failed"], 0)
        con = sqlite3.connect(self.prog.state)
        tried = con.execute("SELECT count(*) FROM deliveries WHERE state != 1 AND attempts > 0")
        self.assertEqual(tried.fetchone()[0], 0)
        con.close()
        self.assertIn("too much mail", relay)
        return relay

    def test_each_message_once_over_connections_at_once(self):
        # The relay takes 0.3 s to answer each "." (a scan): one connection
        # would need 28 x 0.3 s; four overlap.
        server = self.plain_server("--data-delay", "0.3")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        start = time.monotonic()
        p = self.prog.run("--once", "--now", NOW, check=0)
        took = time.monotonic() - start
        got = ids(server.messages())
        self.assertEqual(len(got), INVITES, p.stderr)
        self.assertEqual(len(set(got)), INVITES)
        spans = envs(server)
        self.assertGreater(len({s["peer"] for s in spans}), 1, spans)
        self.assertGreaterEqual(most_at_once(spans), 3, spans)
        self.assertLess(took, INVITES * 0.3 * 0.6, "no faster than one connection")
        self.assertEqual(self.sent(), INVITES)
        # Nothing twice: a second pass finds nothing due.
        self.prog.run("--once", "--now", NOW, check=0)
        self.assertEqual(len(server.messages()), INVITES)

    def test_each_mailbox_gets_its_messages_in_order(self):
        # Most participants have three invites due at once. Over four
        # connections the others' messages fill the free ones, while each
        # mailbox gets its own one after another (the next begins after
        # the reply to the one before it), in the order of one connection.
        server = self.plain_server("--data-delay", "0.1")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        self.prog.run("--once", "--now", NOW, check=0)
        spans = envs(server)
        self.assertEqual(len(spans), INVITES)
        self.assertGreaterEqual(most_at_once(spans), 3, spans)
        mailboxes = by_mailbox(spans)
        self.assertGreater(max(len(m) for m in mailboxes.values()), 2, mailboxes)
        for rcpt, got in mailboxes.items():
            for before, after in zip(got, got[1:]):
                self.assertGreaterEqual(after["began"], before["ended"], (rcpt, got))
        # The same programme from scratch over one connection.
        for n in os.listdir(server.dir):
            os.unlink(os.path.join(server.dir, n))
        os.unlink(self.prog.state)
        with open(self.prog.conf, encoding="utf-8") as f:
            text = f.read()
        with open(self.prog.conf, "w", encoding="utf-8") as f:
            f.write(text.replace(f"connections = {CONNECTIONS}", "connections = 1"))
        self.prog.run("--once", "--now", NOW, check=0)
        one = by_mailbox(envs(server))
        self.assertEqual({r: [s["subject"] for s in m] for r, m in mailboxes.items()},
                         {r: [s["subject"] for s in m] for r, m in one.items()})

    def test_a_slow_mailbox_holds_up_only_itself(self):
        # The relay takes 2 s over each message to one participant, in the
        # first claim batch: their three invites go one after another, and
        # the others' 325 go over the other connections meanwhile, not
        # after them.
        total = self.add_participants(100)
        slow = "p0005@kommun5.example.se"
        server = self.plain_server("--data-delay", "0.005", "--slow-rcpt", f"{slow}=2")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        self.prog.run("--once", "--now", NOW, check=0)
        spans = envs(server)
        self.assertEqual(len(spans), total)
        mine = by_mailbox(spans)[slow]
        self.assertEqual(len(mine), 3, mine)
        for before, after in zip(mine, mine[1:]):
            self.assertGreaterEqual(after["began"], before["ended"], mine)
        last = max(s["ended"] for s in spans if s["rcpt"] != slow)
        self.assertLess(last, mine[2]["began"], "the others waited for the slow mailbox")

    def test_kill_9_mid_send_resends_with_the_same_message_ids(self):
        total = self.add_participants(100)
        server = self.plain_server("--data-delay", "0.02")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        p = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--once", "--now", NOW],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 30
        while time.time() < end and sum(n.endswith(".eml") for n in os.listdir(server.dir)) < 40:
            time.sleep(0.02)
        self.assertIsNone(p.poll(), "kallad finished before it could be killed")
        p.send_signal(signal.SIGKILL)
        p.wait()
        # The server saves a message after its 20 ms: those in the air at
        # the kill land a moment later.
        settled, last = time.time(), -1
        while time.time() - settled < 0.3:
            n = sum(x.endswith(".eml") for x in os.listdir(server.dir))
            if n != last:
                settled, last = time.time(), n
            time.sleep(0.02)
        before = ids(server.messages())
        self.assertGreater(len(before), 0)
        self.assertLess(len(before), total)
        # What planning recorded is committed with the claims or before
        # them: everyone with a delivery on record has the moments their
        # obligations (the programme's reminders) began on record too.
        con = sqlite3.connect(self.prog.state)
        claimed, orphans = con.execute(
            "SELECT count(DISTINCT email), count(DISTINCT CASE WHEN NOT EXISTS"
            " (SELECT 1 FROM owed o WHERE o.email = d.email) THEN email END)"
            " FROM deliveries d").fetchone()
        con.close()
        self.assertGreater(claimed, 0)
        self.assertEqual(orphans, 0)
        self.prog.run("--once", "--now", NOW, check=0, timeout=120)
        got = ids(server.messages())
        counts = collections.Counter(got)
        self.assertEqual(len(counts), total)  # nothing lost
        repeats = [i for i, c in counts.items() if c > 1]
        # Only what was in the air goes again (an outcome is committed
        # before another message starts: one per connection at most), under
        # the Message-ID it had: a repeat is recognisable.
        self.assertLessEqual(len(got) - total, CONNECTIONS, repeats)
        self.assertTrue(set(repeats) <= set(before))
        self.assertEqual(max(counts.values()), 1 if not repeats else 2)
        self.assertEqual(self.sent(), total)

    def test_max_per_minute_holds_for_all_connections(self):
        server = self.plain_server()
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 600")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        start = time.monotonic()
        self.prog.run("--once", "--now", NOW, check=0)
        took = time.monotonic() - start
        self.assertEqual(len(server.messages()), INVITES)
        # 600 a minute: 0.1 s apart, 27 gaps, whatever the connections.
        self.assertGreaterEqual(took, (INVITES - 1) * 0.1 * 0.98)
        began = sorted(s["began"] for s in envs(server))
        self.assertGreaterEqual(began[-1] - began[0], (INVITES - 1) * 0.1 * 0.9)
        # No burst: no ten messages within much less than nine gaps (a
        # burst puts them within milliseconds; the server's own clock
        # readings, on a loaded machine, may pull two turns together).
        self.assertGreaterEqual(min(b - a for a, b in zip(began, began[9:])), 0.6)

    def test_a_claim_taken_over_while_it_waits_is_not_sent_here(self):
        # Under max-per-minute, claims wait for their turns. Another kallad
        # may take one over meanwhile (one older than STALE_CLAIM, its
        # process thought gone) and send it: this one must not send it too.
        server = self.plain_server()
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 300")
        p = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--once", "--now", NOW],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        # A turn every 0.2 s: from the sixth on, the claims (all taken at
        # the start) are over a second old, and renewed before they go.
        end = time.monotonic() + 20
        while len(server.messages()) < 6:
            self.assertLess(time.monotonic(), end)
            time.sleep(0.02)
        con = sqlite3.connect(self.prog.state, timeout=10)
        taken = con.execute("UPDATE deliveries SET owner_pid = ? WHERE state = 0 AND owner_pid = ?",
                            (os.getpid(), p.pid)).rowcount
        con.commit()
        con.close()
        _, err = p.communicate(timeout=60)
        self.assertGreater(taken, 10, err)
        # At most the one message in the air when they were taken still
        # went from here; none of the others.
        skipped = err.count("another kallad took it over while it waited")
        self.assertIn(skipped, (taken - 1, taken), err)
        self.assertEqual(len(server.messages()), INVITES - skipped, err)
        # Their claims stay the other kallad's: none released by this one.
        con = sqlite3.connect(self.prog.state)
        mine = con.execute("SELECT count(*) FROM deliveries WHERE state = 0 AND owner_pid = ?",
                           (os.getpid(),)).fetchone()[0]
        con.close()
        self.assertEqual(mine, skipped)

    def test_wrong_password_is_tried_once_not_per_connection(self):
        server, ca = self.tls_server()
        self.use_tls(server.port, ca, "not-the-password")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        ev = server.events()
        self.assertEqual(ev.count("auth failed"), 1, ev)
        self.assertEqual(ev.count("connect"), 1, ev)
        counts, relay = self.status()
        self.assert_nothing_failed_all_due(counts)
        self.assertRegex(relay, r"535 .*at AUTH")

    def test_rate_limit_on_one_connection_stops_all(self):
        # Postfix's anvil after 8 messages: "450 4.7.1 Error: too much mail"
        # at MAIL FROM, on whichever connection asks next. The others stop
        # taking new messages: only those already under way meet it too.
        server = self.plain_server("--rate", "8/60", "--data-delay", "0.05")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1, p.stderr)
        ev = server.events()
        mails = [e for e in ev if e.startswith("mail ")]
        first = mails.index("mail 450")
        # (The server counts a message when its data is in, so a MAIL or
        # three under way may pass the eighth.)
        self.assertGreaterEqual(mails[:first].count("mail 250"), 8, ev)
        self.assertLessEqual(mails[:first].count("mail 250"), 8 + CONNECTIONS - 1, ev)
        # After the first refusal, only MAILs of connections that took their
        # message before kallad heard of it: at most one each of the others.
        self.assertLessEqual(len(mails) - first - 1, CONNECTIONS - 1, ev)
        self.assertNotIn("mail 250", mails[first:], ev)
        relay = self.assert_stopped_by_the_limit(ev.count("data 250"))
        # The refusals met by the other connections are the same fault, not
        # more of them: the backoff starts from one.
        self.assertIn(", 1 fault in a row,", relay)
        # Within the backoff nothing knocks again, on any connection.
        connects = ev.count("connect")
        self.prog.run("--once", "--now", "2019-11-20T08:00:30+01:00")
        self.assertEqual(server.events().count("connect"), connects)

    def test_fault_heard_while_waiting_for_a_turn_stops_the_next(self):
        # max-per-minute = 300: a turn every 0.2 s, each transaction over
        # in a few ms, so kallad is waiting for the next turn when the
        # ninth MAIL is refused. What comes in during that wait counts:
        # the next message does not start (it did, and met the refusal).
        server = self.plain_server("--rate", "8/60")
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 300")
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        p = self.prog.run("--once", "--now", NOW)
        self.assertEqual(p.returncode, 1, p.stderr)
        mails = [e for e in server.events() if e.startswith("mail ")]
        self.assertEqual(mails.count("mail 250"), 8, mails)
        self.assertEqual(mails[8:], ["mail 450"], p.stderr)
        self.assert_stopped_by_the_limit(8)


class DaemonConnectionsTest(test_relay.ConnectionLifeTest):
    """The daemon with four connections meets no idle-timeout 421 either:
    it closes all of them after its pass, and the next message opens one
    anew (test_relay's test, over a pool)."""

    def use_tls(self, port, ca, password, ca_file=True):
        pw = super().use_tls(port, ca, password, ca_file)
        self.prog.append_conf(f"connections = {CONNECTIONS}")
        return pw


if __name__ == "__main__":
    main()
