#!/usr/bin/env python3
"""[replies] over TLS and across a lost connection, against the real
Dovecot of test_replies.py: a private CA and server certificates made with
openssl for this test; Dovecot with ssl = required, read over imaps:// and
over imap:// with STARTTLS; a CA that did not sign the certificate, and a
certificate for another name, refused with nothing recorded. Then the
connection cut (by a TCP relay on loopback) after the first message was
fetched: libcurl would connect again and SELECT the mailbox read-write,
so kallad must stop there, with every flag as it was."""

import os
import selectors
import socket
import threading

from kallad_test import KalladCase, main, private_ca
from test_replies import (ANNA, ASA, INVITES_AT, JOHAN, READ_AT, S1, S2, Dovecot, RepliesCase,
                          lines)


class TlsCase(KalladCase):
    def setUp(self):
        super().setUp()
        self.ca, cert, key = private_ca(self.tmpdir, san="IP:127.0.0.1,DNS:localhost")
        self.imap = self.dovecot((self.ca, cert, key))
        self.pw = os.path.join(self.tmpdir, "imap-password")
        with open(self.pw, "w", encoding="utf-8") as f:
            f.write("secret\n")
        os.chmod(self.pw, 0o600)
        self.prog.run("--once", "--now", INVITES_AT, check=0)

    def dovecot(self, tls):
        d = Dovecot(tls=tls, state=self.prog.state)
        self.addCleanup(d.stop)
        return d

    def use(self, url, ca, tls="required"):
        self.prog.append_conf(f"[replies]\nurl = {url}\ntls = {tls}\nuser = organiser\n"
                              f"password = {self.pw}\nca-file = {ca}\n")

    def fetch(self, check):
        return self.prog.run("--fetch-replies", "--now", READ_AT, check=check)

    def partstat(self, session, who):
        out = self.prog.run("--responses", "--session", session, "--now", READ_AT, check=0).stdout
        return {row[1]: row[2] for row in lines(out)}[who]


class TestRepliesTls(TlsCase):
    def test_imaps_with_a_private_ca(self):
        self.use(f"imaps://127.0.0.1:{self.imap.imaps_port}/INBOX", self.ca)
        self.imap.deliver("outlook-accepted.eml", "gmail-tentative.eml")
        before = self.imap.snapshot()
        p = self.fetch(0)
        self.assertIn("2 replies, 0 bounces, 0 delays, 0 ignored", p.stderr)
        self.assertEqual(self.partstat(S1, ASA), "accepted")
        self.assertEqual(self.partstat(S1, JOHAN), "tentative")
        self.assertEqual(self.imap.snapshot(), before)
        self.assertIn("0 replies", self.fetch(0).stderr)

    def test_starttls_with_a_private_ca(self):
        # localhost: the certificate's DNS name, checked as well as its IP.
        self.use(f"imap://localhost:{self.imap.port}/INBOX", self.ca)
        self.imap.deliver("thunderbird-declined.eml")
        p = self.fetch(0)
        self.assertIn("1 reply, 0 bounces", p.stderr)
        self.assertEqual(self.partstat(S2, ANNA), "declined")

    def test_a_ca_that_did_not_sign_is_refused_and_nothing_recorded(self):
        other_ca = private_ca(self.tmpdir)[0]
        self.use(f"imaps://127.0.0.1:{self.imap.imaps_port}/INBOX", other_ca)
        self.imap.deliver("outlook-accepted.eml")
        url = f"imaps://127.0.0.1:{self.imap.imaps_port}/INBOX"
        for next_url in (f"imap://127.0.0.1:{self.imap.port}/INBOX", None):
            p = self.fetch(1)
            self.assertIn(f"[replies] {url}: server certificate not trusted", p.stderr)
            self.assertIn("[replies] ca-file", p.stderr)
            self.assertEqual(self.partstat(S1, ASA), "needs-action")
            if next_url:  # the same over STARTTLS
                self.prog.edit_conf(f"url = {url}\n", f"url = {next_url}\n")
                url = next_url
        # The right CA: what was refused had not been counted as read.
        self.prog.edit_conf(f"ca-file = {other_ca}", f"ca-file = {self.ca}")
        self.assertIn("1 reply", self.fetch(0).stderr)
        self.assertEqual(self.partstat(S1, ASA), "accepted")

    def test_a_certificate_for_another_name_is_refused(self):
        _, cert, key = private_ca(self.tmpdir, san="DNS:imap.example.org", ca=self.ca)
        other = self.dovecot((self.ca, cert, key))
        other.deliver("outlook-accepted.eml")
        self.use(f"imaps://127.0.0.1:{other.imaps_port}/INBOX", self.ca)
        p = self.fetch(1)
        self.assertIn("server certificate not trusted", p.stderr)
        self.assertIn("target host name '127.0.0.1'", p.stderr)  # the name, not the CA
        self.assertEqual(self.partstat(S1, ASA), "needs-action")

    def test_ca_file_is_checked_with_the_configuration(self):
        missing = os.path.join(self.tmpdir, "no-such-ca.pem")
        self.use(f"imaps://127.0.0.1:{self.imap.imaps_port}/INBOX", missing)
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 78)
        self.assertIn(f"ca-file: {missing}: cannot read", p.stderr)
        self.assertIn("kallad.conf:", p.stderr)
        self.assertEqual(self.fetch(78).returncode, 78)
        with open(missing, "w", encoding="ascii") as f:
            f.write("not a certificate\n")
        p = self.prog.run("--check")
        self.assertEqual(p.returncode, 78)
        self.assertIn("holds no PEM certificate", p.stderr)


class CuttingRelay:
    """A TCP relay on loopback to port that records each connection's
    commands and cuts the first connection (both sides) as soon as the
    server has answered its first FETCH."""

    def __init__(self, port):
        self.upstream = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.commands = []  # per connection, the client's lines
        self.cut = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client):
        up = socket.create_connection(("127.0.0.1", self.upstream))
        log, cut, self.cut = [], self.cut, False
        self.commands.append(log)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, up)
        sel.register(up, selectors.EVENT_READ, client)
        pending, tag, answered = b"", None, b""
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                    if key.fileobj is client:
                        pending += data
                        while b"\r\n" in pending:
                            line, pending = pending.split(b"\r\n", 1)
                            log.append(line.decode("ascii", "replace"))
                            if cut and tag is None and b" FETCH " in line.upper():
                                tag = line.split(b" ", 1)[0]
                    elif tag is not None:
                        answered = (answered + data)[-4096:]
                        if b"\r\n" + tag + b" OK" in answered:
                            return  # the answer went out whole: cut here
        finally:
            client.close()
            up.close()

    def stop(self):
        self.server.close()


class TestReconnect(RepliesCase):
    def test_a_lost_connection_never_opens_the_mailbox_read_write(self):
        relay = CuttingRelay(self.imap.port)
        self.addCleanup(relay.stop)
        self.prog.edit_conf(f"127.0.0.1:{self.imap.port}/", f"127.0.0.1:{relay.port}/")
        self.imap.deliver("outlook-accepted.eml", "gmail-tentative.eml", "thunderbird-declined.eml")
        before = self.imap.snapshot()
        self.assertTrue(all(flags == "" for _, flags, _ in before[1]), before)

        p = self.fetch(check=1)
        self.assertIn("the connection was lost", p.stderr)
        self.assertIn("1 reply", p.stderr)  # the first, fetched before the cut
        self.assertEqual(self.responses(S1)[ASA][2], "accepted")
        self.assertEqual(self.responses(S1)[JOHAN][2], "needs-action")
        # No flag changed: nothing was fetched from a mailbox opened read-write.
        self.assertEqual(self.imap.snapshot(), before)
        # On every connection, whatever fetched or searched came after
        # EXAMINE, with no SELECT in between.
        for log in relay.commands:
            mode = None
            for line in log:
                words = line.upper().split()
                if len(words) > 1 and words[1] in ("SELECT", "EXAMINE"):
                    mode = words[1]
                elif "FETCH" in words or "SEARCH" in words:
                    self.assertEqual(mode, "EXAMINE", log)
        self.assertTrue(any("EXAMINE" in line for line in relay.commands[0]))
        # Not even a second connection: on it, libcurl would SELECT first.
        self.assertEqual(len(relay.commands), 1, relay.commands)

        # The next pass reads the rest, and one more changes nothing.
        p = self.fetch()
        self.assertIn("2 replies, 0 bounces", p.stderr)
        self.assertEqual(self.responses(S1)[JOHAN][2], "tentative")
        self.assertEqual(self.responses(S2)[ANNA][2], "declined")
        self.assertIn("0 replies, 0 bounces", self.fetch().stderr)
        self.assertEqual(self.imap.snapshot(), before)


if __name__ == "__main__":
    main()
