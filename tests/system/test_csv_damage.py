"""Registrations in a CSV file as spreadsheets and people damage it, through
the real binary: nothing in the file that kallad cannot read, or reads two
ways, makes anybody gone. Each test invites ten participants (--once), then
edits the file as a tester did, then asks --plan what would go a day later:
a cancel to someone who did not cancel is the worst mail kallad can send.

- an address with a no-break space pasted from Outlook, or written
  "Name <address>", is that address; a row whose address cannot be read
  at all keeps every removal waiting until it can;
- a [registrations] columns mapping wins over a column that carries
  kallad's own name (a Microsoft Forms export); two columns for one field
  are an error naming both;
- a quote never closed, a NUL byte, a file caught half-written: the file
  is not read, and nobody is taken for gone;
- two rows for one address that disagree: reported, neither used;
- an unreadable registered_at is a warning, not a skipped participant."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KalladCase, main  # noqa: E402

BEFORE = "2019-11-20T08:00:00+01:00"
AFTER = "2019-11-21T08:00:00+01:00"
SESSIONS = ["styra-leda-2020-1@example.org", "styra-leda-2020-2@example.org",
            "styra-leda-2020-3@example.org"]
HEADER = "E-post;Namn;Kommun;Status;Anmäld"


def person(i, status="registered", address=None):
    return f"{address or 'p%02d@x.se' % i};Person {i};Gävle;{status};2019-11-04"


def people(n=10):
    return [HEADER] + [person(i) for i in range(1, n + 1)]


class CsvCase(KalladCase):
    columns = "E-post:email, Namn:name, Kommun:organisation, Status:status, Anmäld:registered_at"

    def setUp(self):
        super().setUp()
        self.csv = os.path.join(self.prog.dir, "deltagare.csv")
        self.prog.edit_conf("registrations = registrations.db", "registrations = deltagare.csv")
        self.prog.append_conf(f"[registrations]\ncolumns = {self.columns}")

    def write(self, lines, encoding="utf-8", end="\r\n"):
        data = end.join(lines) + end if isinstance(lines, list) else lines
        with open(self.csv, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode(encoding))

    def invite_all(self, lines=None):
        """R: everyone in the file invited to the three sessions."""
        lines = lines or people()
        self.write(lines)
        self.prog.run("--once", "--now", BEFORE, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 3 * (len(lines) - 1))

    def plan(self, check=0, now=AFTER):
        p = self.prog.run("--plan", "--all", "--now", now, check=check)
        return p, [line.split("\t") for line in p.stdout.splitlines() if line]

    def cancels(self, lines):
        """Every cancel --plan lists, due or held."""
        return sorted((line[2], line[3]) for line in lines if line[1] == "cancel")

    def reminded(self, lines):
        return {line[2] for line in lines if line[1] == "session-reminder"}


class AddressTest(CsvCase):
    def test_no_break_space_and_display_name(self):
        self.invite_all()
        lines = people()
        lines[5] = person(5, address="p05@x.se\u00a0")
        lines[6] = person(6, address="Person Sex <p06@x.se>")
        lines[7] = person(7, address="\u2002p07@x.se\u200b")
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertNotIn("invalid e-mail address", p.stderr)
        self.assertTrue({"p05@x.se", "p06@x.se", "p07@x.se"} <= self.reminded(plan), p.stdout)

    def test_unreadable_address_keeps_removals_waiting(self):
        self.invite_all()
        lines = people()
        lines[5] = person(5, address="p05(at)x.se")
        del lines[9]  # p09 leaves for real
        self.write(lines)
        p, plan = self.plan()
        # Line 6 may be anyone missing: nobody is gone while it is unread.
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 6 (p05(at)x.se): invalid e-mail address", p.stderr)
        self.assertRegex(p.stderr, r"deltagare\.csv: line 6: no address kallad can read: the "
                         r"2 participants missing from the file \(p05@x\.se, p09@x\.se\) are not "
                         r"taken for gone until it can be read \(their cancels wait\)")
        self.prog.run("--once", "--now", AFTER, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 30)
        # Fixed, the one who left is cancelled, as a deleted row is.
        lines[5] = person(5)
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [("p09@x.se", s) for s in SESSIONS], p.stderr)

    def test_blank_row_is_no_row(self):
        # A row of empty cells is no row; a deleted row still cancels.
        self.invite_all()
        lines = people()
        lines[9] = ";;;;"
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [("p09@x.se", s) for s in SESSIONS], p.stderr)


class ColumnsTest(CsvCase):
    columns = "E-postadress:email, Fullständigt namn:name, Anmälningsstatus:status"

    def test_mapping_wins_over_own_names(self):
        # A Microsoft Forms export: its Email and Name are the respondent's
        # login; the form's own questions carry the participant.
        self.write(["ID;Start time;Completion time;Email;Name;E-postadress;Fullständigt namn;"
                    "Status;Anmälningsstatus",
                    "1;2019-11-04;2019-11-04;anonymous;;p01@x.se;Person 1;Completed;registered",
                    "2;2019-11-04;2019-11-04;kansliet@x.se;Kansliet;p02@x.se;Person 2;Completed;"
                    "registered"])
        p = self.prog.run("--check", check=0)
        self.assertIn("2 participants: 2 registered", p.stdout)
        p, plan = self.plan(now=BEFORE)
        self.assertEqual(sorted({line[2] for line in plan if line[1] == "invite"}),
                         ["p01@x.se", "p02@x.se"], p.stderr)

    def test_two_columns_for_one_field(self):
        self.prog.edit_conf(f"columns = {self.columns}",
                            f"columns = {self.columns}, Mejl:email")
        self.write(["E-postadress;Fullständigt namn;Anmälningsstatus;Mejl",
                    "p01@x.se;Person 1;registered;p02@x.se"])
        p = self.prog.run("--check", check=1)
        self.assertIn("deltagare.csv: line 1: columns 1 (E-postadress) and 4 (Mejl) both give "
                      "email", p.stderr)
        # Two columns with kallad's own name, and none mapped: the same.
        self.write(["email;Fullständigt namn;Anmälningsstatus;EMAIL",
                    "p01@x.se;Person 1;registered;p02@x.se"])
        p = self.prog.run("--check", check=1)
        self.assertIn("deltagare.csv: line 1: columns 1 (email) and 4 (EMAIL) both give email",
                      p.stderr)


if __name__ == "__main__":
    main()
