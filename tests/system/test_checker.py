#!/usr/bin/env python3
"""tests/check_message.py, the suite's own reading of the interop rules,
held to account: a real invite from the binary passes, and each way of
breaking a rule that clients trip over is caught under that rule's ID."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import CHECK_MESSAGE, ORGANIZER, KalladCase, check_messages, main, parse  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
ANNA = "anna.berglund@gavle.example.se"


def checker(*paths, organizer=ORGANIZER):
    return subprocess.run(["/usr/bin/python3", CHECK_MESSAGE, "--organizer", organizer, *paths],
                          capture_output=True, text=True)


def rules(out):
    return set(re.findall(r": ([AIM]\d+): ", out))


class CheckerTest(KalladCase):
    def preview(self, message="invite", **kw):
        out = os.path.join(self.tmpdir, f"{message}.eml")
        self.prog.run("--preview", message, "--to", ANNA, "--now", NOW, "--out", out, check=0)
        with open(out, "rb") as f:
            return f.read()

    def broken(self, raw, name="broken.eml"):
        path = os.path.join(self.tmpdir, name)
        with open(path, "wb") as f:
            f.write(raw)
        return checker(path)

    def calendar_swap(self, raw, old, new):
        """raw with old replaced by new inside the (base64) calendar parts."""
        import base64
        out = raw
        for block in re.findall(rb"\r\n\r\n((?:[A-Za-z0-9+/=]{1,76}\r\n)+)", raw):
            try:
                text = base64.b64decode(block)
            except ValueError:
                continue
            if b"BEGIN:VCALENDAR" not in text:
                continue
            # Unfolded first (a property may be folded anywhere); the long
            # lines that leaves break I2 as well, which is beside the point.
            text = text.replace(b"\r\n ", b"")
            enc = base64.encodebytes(text.replace(old, new)).replace(b"\n", b"\r\n")
            out = out.replace(block, enc)
        return out

    def test_a_real_invite_passes(self):
        raw = self.preview()
        p = self.broken(raw, "good.eml")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("1 passed, 0 failed", p.stdout)

    def test_each_broken_rule_is_caught(self):
        raw = self.preview()
        cases = {
            "M13": raw.replace(b"\r\n", b"\n", 3),  # mixed line ends
            "M3": raw.replace(b"method=REQUEST", b"method=request"),
            "M11": raw.replace(b"Auto-Submitted: auto-generated\r\n", b""),
            "M12": raw.replace(b"To: ", b"To: other@example.org, ", 1),
            "M6": raw.replace(b"Subject: ", "Subject: Ärende ".encode(), 1),
            "I4": self.calendar_swap(raw, b"VERSION:2.0\r\n", b"VERSION:2.0\r\nX-WR-TIMEZONE:Europe/Stockholm\r\n"),
            "I12": self.calendar_swap(raw, b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED"),
            "I8": self.calendar_swap(raw, b"SEQUENCE:0\r\n", b""),
            "I19": self.calendar_swap(raw, b"STATUS:CONFIRMED", b"STATUS:CANCELLED"),
            "I9": raw,  # checked against another organizer below
        }
        for rule, bad in cases.items():
            with self.subTest(rule=rule):
                if rule == "I9":
                    path = os.path.join(self.tmpdir, "i9.eml")
                    with open(path, "wb") as f:
                        f.write(bad)
                    p = checker(path, organizer="someone.else@example.org")
                else:
                    self.assertTrue(bad != raw, "the mutation did not apply")
                    p = self.broken(bad)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn(rule, rules(p.stdout), p.stdout)
                self.assertIn("0 passed, 1 failed", p.stdout)

    def test_a_non_ascii_file_name_needs_both_forms(self):
        """A1: name only as RFC 2231 (what kallad wrote before) is caught."""
        raw = self.preview()
        att = (b"\r\n--=_X\r\nContent-Type: application/pdf;\r\n"
               b" name=\"Basfakta V_ster_s.pdf\"\r\n"
               b"Content-Transfer-Encoding: base64\r\n"
               b"Content-Disposition: attachment;\r\n"
               b" filename*=UTF-8''Basfakta%20V%C3%A4ster%C3%A5s.pdf\r\n\r\nJVBERg==\r\n")
        # Rebuild as a simple mixed message with a text part and that file.
        head = raw.split(b"\r\n\r\n", 1)[0]
        head = re.sub(rb"Content-Type: multipart/mixed;[^\r]*(\r\n [^\r]*)*",
                      b"Content-Type: multipart/mixed; boundary=\"=_X\"", head)
        body = (b"\r\n\r\n--=_X\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\nHej\r\n" + att + b"\r\n--=_X--\r\n")
        p = self.broken(head + body)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("A1", rules(p.stdout), p.stdout)

    def test_bare_text_calendar_is_caught(self):
        """M10: a file attached as text/calendar without method= (how an
        .ics file among a participant's attachments went before) is caught."""
        raw = self.preview("material")
        self.assertIn(b"application/pdf", raw)
        bad = raw.replace(b"Content-Type: application/pdf", b"Content-Type: text/calendar", 1)
        p = self.broken(bad)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("M10", rules(p.stdout), p.stdout)

    def test_ics_file_as_application_ics_is_caught(self):
        """M1: application/ics is the invitation's attachment; a file sent
        as one beside no invitation is taken for a broken invitation."""
        raw = self.preview("material")
        bad = raw.replace(b"Content-Type: application/pdf", b"Content-Type: application/ics", 1)
        p = self.broken(bad)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("M1", rules(p.stdout), p.stdout)

    def test_ics_among_attachments_goes_as_a_file(self):
        """An .ics file in a participant's attachments, with a message that
        carries no invitation (material) and with one that does (a
        session reminder): application/octet-stream, no method=, and every
        rule holds (the invitation's own calendar parts stay the only ones)."""
        ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n"
               "BEGIN:VEVENT\r\nUID:middag@example.org\r\nDTSTAMP:20191101T080000Z\r\n"
               "DTSTART:20200220T170000Z\r\nSUMMARY:Middag\r\nEND:VEVENT\r\n"
               "END:VCALENDAR\r\n")
        with open(os.path.join(self.prog.dir, "material", "Middag.ics"), "w",
                  encoding="utf-8", newline="") as f:
            f.write(ics)
        for message in ("material", "session-reminder"):
            self.prog.sql("INSERT INTO attachments(email, message, path) VALUES (?, ?, ?)",
                          ANNA, message, "Middag.ics")
        for message in ("material", "session-reminder"):
            with self.subTest(message=message):
                raw = self.preview(message)
                msg = parse(raw)
                files = [p for p in msg.walk() if p.get_filename() == "Middag.ics"]
                self.assertEqual(len(files), 1)
                self.assertEqual(files[0].get_content_type(), "application/octet-stream")
                self.assertIsNone(files[0].get_param("method"))
                self.assertEqual(files[0].get_payload(decode=True), ics.encode())
                with_method = [p for p in msg.walk() if p.get_param("method") is not None]
                self.assertEqual(len(with_method), 1 if message == "session-reminder" else 0)
                path = os.path.join(self.tmpdir, f"{message}-ics.eml")
                with open(path, "wb") as f:
                    f.write(raw)
                check_messages(self, [path])


if __name__ == "__main__":
    main()
