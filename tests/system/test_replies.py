#!/usr/bin/env python3
"""Replies and bounces read from a real IMAP server: Debian's Dovecot, run
unprivileged on a loopback port with a throw-away configuration and a
Maildir holding replies as Outlook, Thunderbird, Gmail and Apple Mail write
them, a forged reply, Postfix bounces and ordinary mail
(tests/fixtures/replies). Read back with Python's imaplib to show kallad
left the mailbox as it was."""

import csv
import imaplib
import io
import os
import pwd
import grp
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time

from kallad_test import KALLAD, SOURCE, KalladCase, free_port, main, message_hash, wait_port
from test_daemon import Notify


DOVECOT = "/usr/sbin/dovecot"
FIXTURES = os.path.join(SOURCE, "tests", "fixtures", "replies")
INVITES_AT = "2020-01-20T10:00:00+01:00"
READ_AT = "2020-01-30T10:00:00+01:00"
S1, S2, S3 = (f"styra-leda-2020-{n}@example.org" for n in (1, 2, 3))
ASA = "asa.granqvist@vasteras.example.se"
ANNA = "anna.berglund@gavle.example.se"
JOHAN = "johan.lindqvist@regionvasterbotten.example.se"
MARIA = "maria.ekstrom@lund.example.se"
KARIN = "karin.hedlund@skane.example.se"
PER = "per.hallberg+styraleda@umea.example.se"
LARS = "lars.ostlund@orebro.example.se"
FIRST_BATCH = ["outlook-accepted.eml", "gmail-tentative.eml", "apple-accepted.eml",
               "thunderbird-declined.eml", "thunderbird-accepted-older.eml",
               "forged-declined.eml", "postfix-bounce.eml", "postfix-delayed.eml",
               "ordinary.eml"]


class Dovecot:
    """dovecot -F with its own configuration, base and state folders. As
    root it runs as nobody; otherwise as the user running the tests. With
    tls=(ca, cert, key), ssl = required with that certificate and key
    (copied where that user can read them), STARTTLS on port and implicit
    TLS on imaps_port."""

    def __init__(self, tls=None, state=None):
        self.state = state  # kallad's state database: deliver() salts Message-IDs by it
        self.dir = tempfile.mkdtemp(prefix="kallad-dovecot-")
        os.chmod(self.dir, 0o755)
        self.maildir = os.path.join(self.dir, "maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        for sub in ("base", "state", "home"):
            os.makedirs(os.path.join(self.dir, sub))
        self.port = free_port()
        self.imaps_port = free_port() if tls else 0
        self.ca = tls[0] if tls else None
        ssl_conf = "ssl = no"
        if tls:
            # CI's checkout and temporary folders are 0700 root's: the
            # user dovecot runs as reads its own copies (chowned below).
            os.makedirs(os.path.join(self.dir, "ssl"))
            for src, name in ((tls[1], "cert.pem"), (tls[2], "key.pem")):
                shutil.copy(src, os.path.join(self.dir, "ssl", name))
            os.chmod(os.path.join(self.dir, "ssl", "key.pem"), 0o600)
            ssl_conf = (f"ssl = required\nssl_cert = <{self.dir}/ssl/cert.pem\n"
                        f"ssl_key = <{self.dir}/ssl/key.pem")
        self.root = os.getuid() == 0
        if self.root:
            self.uid, self.gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        user = pwd.getpwuid(self.uid).pw_name
        group = grp.getgrgid(self.gid).gr_name
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(f"""base_dir = {self.dir}/base
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.dir}/home mail=maildir:{self.maildir}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
""")
        self.chown()
        cmd = [DOVECOT, "-F", "-c", self.conf]
        if self.root:
            cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port)
            if tls:
                wait_port(self.imaps_port)
        except RuntimeError:
            self.stop()
            raise

    def chown(self):
        if not self.root:
            return
        for top, dirs, files in os.walk(self.dir):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                os.chown(n, self.uid, self.gid)

    def salted(self, raw):
        """The fixture with each Message-ID kallad would make for a key of
        the ledger without a salt (as the fixtures were written) made with
        this programme's salt (state meta message-id-salt), as kallad sent it."""
        if not self.state or not os.path.exists(self.state):
            return raw
        con = sqlite3.connect(self.state)
        salt = con.execute("SELECT value FROM meta WHERE key = 'message-id-salt'").fetchone()
        keys = [k for k, in con.execute("SELECT key FROM deliveries")]
        con.close()
        if not salt or not salt[0]:
            return raw
        for k in keys:
            raw = raw.replace(message_hash(k).encode(), message_hash(f"{salt[0]}|{k}").encode())
        return raw

    def deliver(self, *names):
        """Puts fixtures (or files by absolute path) into new/ as a delivery
        agent would (tmp, then rename), their Message-IDs salted."""
        for n in names:
            stamp = f"{time.time():.6f}".replace(".", ".M") + f"P{os.getpid()}"
            tmp = os.path.join(self.maildir, "tmp", f"{stamp}.{os.path.basename(n)}")
            with open(os.path.join(FIXTURES, n), "rb") as f, open(tmp, "wb") as out:
                out.write(self.salted(f.read()))
            os.rename(tmp, os.path.join(self.maildir, "new", os.path.basename(tmp)))
            time.sleep(0.01)
        self.chown()

    def snapshot(self):
        """UIDVALIDITY, and each message's UID, flags and bytes, read with
        EXAMINE by an independent client."""
        if self.ca:
            imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port,
                                     ssl_context=ssl.create_default_context(cafile=self.ca))
        else:
            imap = imaplib.IMAP4("127.0.0.1", self.port)
        imap.login("organiser", "secret")
        typ, _ = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        validity = imap.response("UIDVALIDITY")[1]
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        msgs = []
        for item in data:
            if isinstance(item, tuple):
                head = item[0].decode()
                flags = head[head.index("FLAGS (") + 7:].split(")")[0]
                flags = " ".join(sorted(f for f in flags.split() if f != "\\Recent"))
                uid = head.split("UID ")[1].split()[0]
                msgs.append((uid, flags, item[1]))
        imap.logout()
        return validity, sorted(msgs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        shutil.rmtree(self.dir, True)


def lines(out):
    return [l.split("\t") for l in out.splitlines() if l.strip()]


class RepliesCase(KalladCase):
    def setUp(self):
        super().setUp()
        self.imap = Dovecot(state=self.prog.state)
        self.addCleanup(self.imap.stop)
        self.pw = os.path.join(self.tmpdir, "imap-password")
        with open(self.pw, "w", encoding="utf-8") as f:
            f.write("secret\n")
        os.chmod(self.pw, 0o600)
        self.prog.append_conf(f"[replies]\nurl = imap://127.0.0.1:{self.imap.port}/INBOX\n"
                              f"tls = none\nuser = organiser\npassword = {self.pw}\n")
        # Invitations to everyone registered (into the outbox).
        self.prog.run("--once", "--now", INVITES_AT, check=0)

    def kallad(self, *args, now=READ_AT, check=0):
        return self.prog.run(*args, "--now", now, check=check)

    def fetch(self, now=READ_AT, check=0):
        return self.kallad("--fetch-replies", now=now, check=check)

    def responses(self, session):
        return {row[1]: row for row in lines(self.kallad("--responses", "--session", session).stdout)}

    def plan(self, now=READ_AT):
        return lines(self.kallad("--plan", "--all", now=now).stdout)


class TestReplies(RepliesCase):
    def test_replies_bounces_and_an_unchanged_mailbox(self):
        self.imap.deliver(*FIRST_BATCH)
        before = self.imap.snapshot()
        self.assertEqual(len(before[1]), len(FIRST_BATCH))

        p = self.fetch()
        found = lines(p.stdout)
        self.assertIn(["reply", ASA, "accepted", S1, "SEQUENCE 0"], found)
        self.assertIn(["reply", JOHAN, "tentative", S1, "SEQUENCE 0"], found)
        self.assertIn(["reply", MARIA, "accepted", S3, "SEQUENCE 0"], found)
        self.assertTrue(any(r[:4] == ["reply", ANNA, "declined", S2] for r in found), found)
        forged = [r for r in found if r[1] == KARIN]
        self.assertEqual(len(forged), 1, found)
        self.assertEqual(forged[0][0], "ignored")
        self.assertIn("mallory@evil.example", forged[0][4])
        bounce = [r for r in found if r[0] == "bounce"]
        self.assertEqual([r[1:3] for r in bounce], [[PER, "5.1.1"]])
        self.assertIn("User unknown", bounce[0][4])
        self.assertEqual([r[1:3] for r in found if r[0] == "delay"], [[LARS, "4.4.1"]])
        self.assertIn(["ignored", "sofia.nyberg@regionuppsala.example.se", "-", "-"],
                      [r[:4] for r in found])
        self.assertIn("5 replies, 1 bounce, 1 delay, 2 ignored", p.stderr)

        # Read-only: no flag set, nothing moved or deleted.
        self.assertEqual(self.imap.snapshot(), before)
        # Reading twice changes nothing.
        again = self.fetch()
        self.assertEqual(again.stdout, "")
        self.assertIn("0 replies, 0 bounces, 0 delays, 0 ignored", again.stderr)
        self.assertEqual(self.imap.snapshot(), before)

        r1 = self.responses(S1)
        self.assertEqual(r1[ASA][2:], ["accepted", "2020-01-27T10:14:22+01:00"])
        self.assertEqual(r1[JOHAN][2], "tentative")
        self.assertEqual(r1[KARIN][2:], ["needs-action", "-"])  # the forgery changed nothing
        self.assertEqual(r1[PER][2], "needs-action")
        # Only those invited: the waitlisted and the cancelled are not listed.
        self.assertNotIn("tomas.falk@vaxjo.example.se", r1)
        self.assertNotIn("helena.strand@gotland.example.se", r1)
        # The older acceptance arrived after the decline: the decline stands.
        self.assertEqual(self.responses(S2)[ANNA][2:], ["declined", "2020-01-28T11:15:00+01:00"])
        self.assertEqual(self.responses(S3)[MARIA][2], "accepted")
        # --session takes a position or a prefix too, from the stored sessions.
        self.assertEqual(self.kallad("--responses", "--session", "2").stdout,
                         self.kallad("--responses", "--session", S2).stdout)
        self.assertEqual(self.kallad("--responses", "--session", "styra", check=64).returncode, 64)

        plan = self.plan()
        per = [r for r in plan if r[2] == PER]
        self.assertTrue(per)
        self.assertTrue(all(r[0] == "skipped:bounced" for r in per), per)
        anna2 = [r for r in plan if r[2] == ANNA and r[3] == S2 and r[1] == "session-reminder"]
        self.assertTrue(anna2 and all(r[0] == "skipped:declined" for r in anna2), anna2)
        anna1 = [r for r in plan if r[2] == ANNA and r[3] == S1 and r[1] == "session-reminder"]
        self.assertTrue(anna1 and not any(r[0].startswith("skipped") for r in anna1), anna1)
        explain = self.kallad("--plan", "--all", "--explain", PER).stdout
        self.assertIn("bounced", explain)

        status = self.kallad("--status", "--failed").stdout
        self.assertIn(f"bounced\t{PER}\t-\t5.1.1 smtp; 550 5.1.1", status)
        # Not by hand either.
        p = self.kallad("--send-now", "session-reminder", "--session", S3, "--to", PER, check=1)
        self.assertIn("bounced", p.stdout + p.stderr)

        # The report before anything changes.
        rows = list(csv.DictReader(io.StringIO(self.kallad("--report").stdout)))
        self.assertEqual(len(rows), 14 * 3)
        asa1 = [r for r in rows if r["email"] == ASA and r["session_uid"] == S1][0]
        self.assertEqual(asa1["partstat"], "accepted")
        self.assertEqual(asa1["invite_sent_at"], INVITES_AT)
        self.assertEqual(asa1["session_title"], "Leda samhällsutveckling")
        self.assertEqual(asa1["organisation"], "Västerås stad")
        self.assertEqual(asa1["bounced"], "no")
        self.assertEqual({r["bounced"] for r in rows if r["email"] == PER}, {"yes"})
        self.assertEqual([r["partstat"] for r in rows if r["email"] == ANNA],
                         ["needs-action", "declined", "needs-action"])

        # Reminders for session 2 fall due: not to Anna (declined), not to
        # Per (bounced), to Maria.
        self.kallad("--once", now="2020-02-27T09:30:00+01:00")
        sent = lambda who: [r for r in lines(self.kallad("--history", who).stdout)
                            if r[1] == "sent" and r[2] == "session-reminder" and r[3] == S2]
        self.assertEqual(len(sent(MARIA)), 1)
        self.assertEqual(sent(ANNA), [])
        self.assertEqual(sent(PER), [])

        # A later acceptance arrives: reminders for session 2 resume.
        self.imap.deliver("thunderbird-accepted-later.eml")
        later = self.fetch(now="2020-03-01T10:00:00+01:00")
        self.assertIn("1 reply, 0 bounces, 0 delays, 0 ignored", later.stderr)
        self.assertEqual(self.responses(S2)[ANNA][2], "accepted")
        plan = self.plan(now="2020-03-01T10:00:00+01:00")
        anna2 = [r for r in plan if r[2] == ANNA and r[3] == S2 and r[1] == "session-reminder"]
        # The 14-day reminder's trigger passed while she had declined: that
        # one stays skipped; the 2-day one goes.
        self.assertIn(["2020-03-10T09:00:00+01:00", S2], [[r[0], r[3]] for r in anna2])

        # Per's history: the invite sent, the bounce; then --unsuppress.
        hist = lines(self.kallad("--history", PER).stdout)
        self.assertIn(["sent", "invite", S1], [r[1:4] for r in hist])
        self.assertTrue(any(r[1] == "bounce" and r[2] == "5.1.1" for r in hist), hist)
        self.assertEqual(hist[-1][1], "suppressed")
        times = [r[0] for r in hist if r[0] != "-"]
        self.assertEqual(times, sorted(times))
        p = self.kallad("--unsuppress", PER.upper())
        self.assertIn("mail goes to it again", p.stdout)
        self.assertEqual(self.kallad("--unsuppress", PER, check=1).returncode, 1)
        plan = self.plan(now="2020-03-01T10:00:00+01:00")
        self.assertFalse([r for r in plan if r[2] == PER and r[0] == "skipped:bounced"])
        self.assertTrue([r for r in plan if r[2] == PER and r[3] == S2 and r[0][0].isdigit()])
        self.assertIn("unsuppressed", [r[1] for r in lines(self.kallad("--history", PER).stdout)])
        self.assertEqual(self.kallad("--history", "nobody@example.org", check=1).returncode, 1)

    def test_unanswered_rule_nudges_only_the_silent(self):
        self.prog.append_conf("[rule nudge]\nmessage = session-reminder\nbefore = 7d\n"
                              "at = 09:00\nto = registered, unanswered\n")
        self.imap.deliver("outlook-accepted.eml", "gmail-tentative.eml")
        self.fetch()
        nudge = {r[2]: r[0] for r in self.plan()
                 if r[4] == "nudge" and r[3] == S1 and r[1] == "session-reminder"}
        self.assertEqual(nudge[ASA], "skipped:answered")
        self.assertEqual(nudge[JOHAN], "skipped:answered")
        self.assertTrue(nudge[KARIN].startswith("2020-02-13T09:00"), nudge)

    def test_wrong_password_reads_nothing(self):
        with open(self.pw, "w", encoding="utf-8") as f:
            f.write("wrong\n")
        self.imap.deliver("outlook-accepted.eml")
        p = self.fetch(check=1)
        self.assertIn("[replies]", p.stderr)
        self.assertEqual(self.responses(S1)[ASA][2], "needs-action")
        os.chmod(self.pw, 0o644)
        p = self.fetch(check=1)
        self.assertIn("chmod 600", p.stderr)
        # --check (and the daemon's start) refuse it too.
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 78)
        self.assertIn("[replies] password", p.stderr)

    def test_tls_required_refuses_a_server_without_starttls(self):
        self.prog.edit_conf("tls = none\nuser = organiser", "tls = required\nuser = organiser")
        self.imap.deliver("outlook-accepted.eml")
        p = self.fetch(check=1)
        self.assertIn(f"[replies] imap://127.0.0.1:{self.imap.port}/INBOX", p.stderr)
        self.assertEqual(self.responses(S1)[ASA][2], "needs-action")

    def test_daemon_reads_the_mailbox(self):
        self.imap.deliver("outlook-accepted.eml", "postfix-bounce.eml")
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+")
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", READ_AT],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            end = time.time() + 30
            while time.time() < end:
                if self.responses(S1)[ASA][2] == "accepted":
                    break
                time.sleep(0.2)
            self.assertEqual(self.responses(S1)[ASA][2], "accepted")
            end = time.time() + 10
            while time.time() < end and "bounced" not in self.kallad("--status", "--failed").stdout:
                time.sleep(0.2)
            self.assertIn(f"bounced\t{PER}", self.kallad("--status", "--failed").stdout)
        finally:
            proc.terminate()
            proc.wait()
            log.close()


class TestWhatWasLearnedStays(RepliesCase):
    """What replies and bounces taught kallad holds until a later answer or
    --unsuppress: not undone by [replies] taken out, nor by the mailbox
    read again; bounces as forwarding servers and SMTPUTF8 mail give them
    count; a hostile calendar part cannot hold the reading."""

    def bounced_and_declined(self):
        plan = self.plan()
        per = {r[0] for r in plan if r[2] == PER}
        anna2 = {r[0] for r in plan if r[2] == ANNA and r[3] == S2 and r[1] == "session-reminder"}
        return per, anna2

    def test_a_bounce_and_a_decline_outlast_the_replies_section(self):
        self.imap.deliver("postfix-bounce.eml", "thunderbird-declined.eml")
        self.fetch()
        self.assertEqual(self.bounced_and_declined(), ({"skipped:bounced"}, {"skipped:declined"}))
        # The IMAP password changed; reading is turned off for now.
        with open(self.prog.conf, encoding="utf-8") as f:
            conf = f.read()
        with open(self.prog.conf, "w", encoding="utf-8") as f:
            f.write(conf[:conf.index("[replies]")])
        self.assertEqual(self.bounced_and_declined(), ({"skipped:bounced"}, {"skipped:declined"}))
        self.kallad("--once", now="2020-02-27T09:30:00+01:00")
        sent = lambda who: [r for r in lines(self.kallad("--history", who).stdout)
                            if r[1] == "sent" and r[2] == "session-reminder" and r[3] == S2]
        self.assertEqual(sent(PER), [])
        self.assertEqual(sent(ANNA), [])
        self.assertEqual(len(sent(MARIA)), 1)

    def test_unsuppress_outlasts_the_mailbox_read_again(self):
        self.imap.deliver("postfix-bounce.eml")
        self.fetch()
        self.kallad("--unsuppress", PER)
        # A new UIDVALIDITY (the server's index rebuilt, a migration):
        # everything is read again, and nothing read before counts twice.
        con = sqlite3.connect(self.prog.state)
        con.execute("UPDATE mailboxes SET uidvalidity = uidvalidity + 1")
        con.commit()
        con.close()
        p = self.fetch()
        self.assertEqual([r[:3] for r in lines(p.stdout)], [["ignored", PER, "5.1.1"]])
        self.assertIn("read before", p.stdout)
        self.assertNotIn(f"bounced\t{PER}", self.kallad("--status", "--failed").stdout)
        self.assertFalse([r for r in self.plan() if r[0] == "skipped:bounced"])
        self.assertEqual(lines(self.kallad("--history", PER).stdout)[-1][1], "unsuppressed")

    def test_a_bounce_after_a_forward_and_a_global_bounce_count(self):
        self.imap.deliver("forwarded-bounce.eml", "postfix-global-bounce.eml")
        found = lines(self.fetch().stdout)
        self.assertEqual(sorted(r[:3] for r in found),
                         [["bounce", ANNA, "5.1.1"], ["bounce", PER, "5.2.1"]])
        status = self.kallad("--status", "--failed").stdout
        self.assertIn(f"bounced\t{PER}", status)
        self.assertIn(f"bounced\t{ANNA}", status)

    def test_a_bounce_of_the_organisers_own_mail_suppresses_nobody(self):
        # The organiser wrote to Per from the programme's mailbox; his
        # server refused it as too large. The report returns that message:
        # not one kallad sent, so Per still gets the programme's mail.
        self.imap.deliver("organiser-mail-bounce.eml")
        found = lines(self.fetch().stdout)
        self.assertEqual([r[:3] for r in found], [["ignored", PER, "5.3.4"]])
        self.assertIn("about a message kallad did not send", found[0][4])
        self.assertNotIn("bounced", self.kallad("--status", "--failed").stdout)
        self.assertFalse([r for r in self.plan() if r[0] == "skipped:bounced"])
        self.assertIn("ignored", [r[1] for r in lines(self.kallad("--history", PER).stdout)])

    def test_a_huge_calendar_part_is_passed_over_quickly(self):
        # 4 MB on one unfolded line took libical 3 s, 8 MB 12 s (its time
        # grows with the square of the line): such a part is no answer, and
        # the reply after it is read.
        ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nMETHOD:REPLY\r\n"
               f"BEGIN:VEVENT\r\nUID:{S2}\r\nDTSTAMP:20200128T101500Z\r\nSEQUENCE:0\r\n"
               f"ATTENDEE;PARTSTAT=DECLINED:mailto:{ANNA}\r\n"
               "COMMENT:" + "x" * 6_000_000 + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        huge = os.path.join(self.tmpdir, "huge.eml")
        with open(huge, "w", encoding="utf-8", newline="") as f:
            f.write(f"From: Anna Berglund <{ANNA}>\r\nTo: program@example.org\r\n"
                    "Subject: Declined\r\nMessage-ID: <huge@gavle.example.se>\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: text/calendar; charset=UTF-8; method=REPLY\r\n\r\n" + ics)
        self.imap.deliver(huge, "outlook-accepted.eml")
        began = time.time()
        found = lines(self.fetch().stdout)
        self.assertLess(time.time() - began, 3)
        self.assertEqual(sorted(r[:2] for r in found), [["ignored", ANNA], ["reply", ASA]])
        self.assertEqual(self.responses(S2)[ANNA][2], "needs-action")


class TestALargeMailbox(RepliesCase):
    """A first read of an organiser's mailbox of years: 4 000 messages
    (about a second here)."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(FIXTURES, "ordinary.eml"), "rb") as f:
            mail = f.read()
        for i in range(4000):
            with open(os.path.join(self.imap.maildir, "new", f"{i}.ordinary"), "wb") as f:
                f.write(mail.replace(b"Message-ID: <", f"Message-ID: <{i}.".encode(), 1))
        self.imap.chown()

    def test_every_message_is_read(self):
        # UID SEARCH answers in one line; libcurl 7.88 cut the middle out
        # of a line longer than its buffer: 517 of 4 000 were read, and
        # the mark moved past the others for good.
        self.assertIn("4000 ignored", self.fetch().stderr)
        self.imap.deliver("outlook-accepted.eml")
        found = lines(self.fetch().stdout)
        self.assertEqual([r[:2] for r in found], [["reply", ASA]])

    def test_the_watchdog_is_fed_while_a_large_mailbox_is_read(self):
        # With WatchdogSec= (here 0.2 s) the daemon says it lives between
        # messages, not only between passes.
        notify = Notify(self.tmpdir)
        self.addCleanup(notify.sock.close)
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+")
        self.addCleanup(log.close)
        env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="200000")
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", READ_AT],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            notify.wait_for("READY=1")
            began, pings = time.time(), []
            while time.time() < began + 30:
                try:
                    msg = notify.sock.recv(4096).decode()
                except socket.timeout:
                    msg = ""
                if "WATCHDOG=1" in msg:
                    pings.append(time.time())
                log.flush()
                with open(log.name, encoding="utf-8") as f:
                    if "4000 ignored" in f.read():
                        break
            ended = time.time()
        finally:
            proc.terminate()
            proc.wait()
        with open(log.name, encoding="utf-8") as f:
            self.assertIn("4000 ignored", f.read())
        self.assertGreater(ended - began, 0.8, "the read was too quick to show anything")
        gaps = [b - a for a, b in zip([began] + pings, pings + [ended])]
        self.assertLess(max(gaps), 0.5, f"{len(pings)} pings in {ended - began:.1f} s")


class TestRepliesConfig(KalladCase):
    def check(self, text):
        self.prog.append_conf(text)
        return self.prog.run("--check")

    def test_tls_none_only_on_loopback(self):
        p = self.check("[replies]\nurl = imap://mail.example.org/INBOX\ntls = none\n")
        self.assertEqual(p.returncode, 78)
        self.assertIn("tls: none is allowed only for a loopback server", p.stderr)

    def test_url_names_one_mailbox(self):
        p = self.check("[replies]\nurl = imaps://mail.example.org:993\n")
        self.assertEqual(p.returncode, 78)
        self.assertIn("must name one mailbox", p.stderr)
        self.assertIn("kallad.conf:", p.stderr)

    def test_imaps_with_tls_none(self):
        p = self.check("[replies]\nurl = imaps://127.0.0.1/INBOX\ntls = none\n")
        self.assertEqual(p.returncode, 78)
        self.assertIn("contradicts the imaps:// url", p.stderr)

    def test_unanswered_needs_sessions(self):
        p = self.check("[rule late]\nmessage = deadline-reminder\nbefore = 1d\n"
                       "to = invited, unanswered\n")
        self.assertEqual(p.returncode, 78)
        self.assertIn("unanswered applies to session messages", p.stderr)
        p = self.check("[rule other]\nmessage = session-reminder\nbefore = 1d\n"
                       "to = registered, silent\n")
        self.assertIn('not "registered, silent"', p.stderr)

    def test_without_replies_fetch_refuses(self):
        p = self.prog.run("--fetch-replies")
        self.assertEqual(p.returncode, 78)
        self.assertIn("no [replies] section", p.stderr)


if __name__ == "__main__":
    main()
