"""Registrations in a CSV file as spreadsheets and people damage it, through
the real binary: nothing in the file that kallad cannot read, or reads two
ways, makes anybody gone. Each test invites ten participants (--once), then
edits the file as a tester did, then asks --plan what would go a day later:
a cancel to someone who did not cancel is the worst mail kallad can send.

- an address with a no-break space pasted from Outlook, or written
  "Name <address>", is that address; a cell with a second address is no
  address (never the second one's); a row whose address cannot be read
  at all keeps every removal waiting until it can;
- a [registrations] columns mapping wins over a column that carries
  kallad's own name (a Microsoft Forms export); two columns for one field
  are an error naming both, and so is a mapped header the file lacks (a
  question retitled): the file is not read;
- a quote never closed is not read at all (the daemon keeps its last good
  reading); a stray one that swallows rows up to the next quoted cell
  makes its row unusable and keeps every removal waiting; a file caught half-written, or whose last row was saved short,
  is read, that row unusable and may be anyone's; a NUL byte spoils its row
  alone, and a row of them (a crash's) is no blank one: it may be
  anyone's;
- two rows for one address that disagree: reported, neither used;
- an unreadable registered_at is a warning, not a skipped participant."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, KalladCase, main, parse  # noqa: E402

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
        # Meanwhile the missing get nothing, reminders neither (README).
        self.assertFalse({"p05@x.se", "p09@x.se"} & self.reminded(plan), p.stdout)
        self.prog.run("--once", "--now", AFTER, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 30)
        # Fixed, the one who left is cancelled, as a deleted row is.
        lines[5] = person(5)
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [("p09@x.se", s) for s in SESSIONS], p.stderr)

    def test_two_addresses_in_one_cell(self):
        # One mailbox or none: the person's mail never goes to a second
        # address pasted beside theirs (an assistant's, a shared inbox).
        self.invite_all()
        for cell in ("Person Sex <p06@x.se>, Assistent <kansli@x.se>",
                     "p06@x.se <kansli@x.se>", "Person Sex <p06@x.se> kansli@x.se",
                     "Person Sex <p06@x.se>>"):
            lines = people()
            lines[6] = person(6, address=f'"{cell}"')
            self.write(lines)
            p, plan = self.plan()
            self.assertNotIn("kansli@x.se", p.stdout)
            self.assertEqual(self.cancels(plan), [], p.stderr)
            self.assertIn(f"deltagare.csv: line 7 ({cell}): not one address: write one address, "
                          "or one Name <address>, per row", p.stderr)
            self.assertIn("deltagare.csv: line 7: no address kallad can read: the 1 participant "
                          "missing from the file (p06@x.se) is not taken for gone", p.stderr)

    def test_check_counts_the_removals_waiting(self):
        # --check's last line counts every warning it printed: the one
        # that removals wait for line 6 too.
        self.invite_all()
        lines = people()
        lines[5] = person(5, address="p05(at)x.se")
        self.write(lines)
        p = self.prog.run("--check", check=1)
        warned = [line for line in p.stderr.splitlines() if "warning:" in line]
        self.assertEqual(len(warned), 2, p.stderr)
        self.assertIn("line 6: no address kallad can read: the 1 participant", warned[1])
        self.assertEqual(p.stdout.splitlines()[-1],
                         "2 warnings, 1 row skipped, 1 of them participant: fix the rows above")

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
        self.prog.edit_conf(f"columns = {self.columns}, Mejl:email",
                            "columns = Fullständigt namn:name, Anmälningsstatus:status")
        self.write(["email;Fullständigt namn;Anmälningsstatus;EMAIL",
                    "p01@x.se;Person 1;registered;p02@x.se"])
        p = self.prog.run("--check", check=1)
        self.assertIn("deltagare.csv: line 1: columns 1 (email) and 4 (EMAIL) both give email",
                      p.stderr)

    def test_mapped_header_retitled(self):
        # The form's question is retitled in the next export: its Email
        # (who filled the form in) must not be read in its place, nor
        # the participants taken for gone. The file is not read.
        self.prog.edit_conf(f"columns = {self.columns}",
                            f"columns = {self.columns}, Språk:language")
        header = "ID;Email;Name;E-postadress;Fullständigt namn;Anmälningsstatus;Språk"
        rows = ["%d;kansliet@x.se;Kansliet;p%02d@x.se;Person %d;registered;sv" % (i, i, i)
                for i in range(1, 4)]
        self.write([header] + rows)
        self.prog.run("--once", "--now", BEFORE, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 9)
        for retitled, lacks in ((header.replace("E-postadress", "E-postadress (arbete)"),
                                 "E-postadress:email"),
                                (header.replace(";Språk", ";Språk (val)"), "Språk:language")):
            self.write([retitled] + rows)
            p = self.prog.run("--check", check=1)
            error = ("deltagare.csv: line 1: [registrations] columns maps %s, but the header "
                     "row has no such column (retitled?): the file is not read" % lacks)
            self.assertIn(error, p.stderr)
            p, plan = self.plan(check=1)
            self.assertIn(error, p.stderr)
            self.assertEqual(self.cancels(plan), [], p.stdout)
            self.assertNotIn("kansliet@x.se", p.stdout)
            p = self.prog.run("--once", "--now", AFTER, check=1)
            self.assertEqual(len(self.prog.outbox_messages()), 9, p.stderr)


class BrokenFileTest(CsvCase):
    def assert_not_read(self, p, plan, error):
        """The run fails as a whole (as for a database locked), cancelling nobody."""
        self.assertEqual(self.cancels(plan), [], p.stdout)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(error, p.stderr)

    def test_quote_never_closed(self):
        self.invite_all()
        lines = people()
        lines[8] = lines[8].replace(";Person 8;", ";\"Person 8;")
        self.write(lines)
        p, plan = self.plan(check=None)
        self.assert_not_read(p, plan, "deltagare.csv: line 9: a quote opened here is never "
                             "closed: the file is not read")

    def test_utf16_is_named(self):
        # Excel's "Unicode text": UTF-16 with its BOM, tab-separated.
        self.invite_all()
        self.write("\r\n".join(l.replace(";", "\t") for l in people()) + "\r\n",
                   encoding="utf-16")
        p, plan = self.plan(check=None)
        self.assert_not_read(p, plan, "deltagare.csv: UTF-16 text (Excel's \"Unicode text\"), "
                             "not CSV: save the sheet as \"CSV UTF-8\" or \"CSV\"; the file "
                             "is not read")

    def test_stray_quote_swallows_rows(self):
        # A quote typed at a cell's start runs on to the next quoted cell
        # (as Excel writes one with a separator in it): the rows between
        # are text, and their people are missing. Gone they are not.
        self.invite_all()
        lines = people()
        lines[4] = lines[4].replace(";Gävle;", ";\"Gävle;")
        lines[7] = lines[7].replace(";Gävle;", ";\"Gävle; Sandviken\";")
        del lines[9]  # p09 leaves for real
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 5 (p04@x.se): a quote opened on line 5 runs past a "
                      "line break onto what look like rows (the separator and an @): a stray "
                      "quote may have swallowed rows: the row cannot be used", p.stderr)
        self.assertIn("deltagare.csv: line 5: a stray quote may have swallowed rows: the 4 "
                      "participants missing from the file (p05@x.se, p06@x.se, p07@x.se, "
                      "p09@x.se) are not taken for gone until it can be read", p.stderr)
        # p04 keeps their last good state; the swallowed get nothing.
        self.assertEqual(self.reminded(plan), {"p%02d@x.se" % i for i in (1, 2, 3, 4, 8, 10)})
        p = self.prog.run("--check", check=1)
        self.assertIn("a stray quote may have swallowed rows", p.stderr)
        # Mended, the one who left is cancelled, as a deleted row is.
        lines[4] = person(4)
        self.write(lines)
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [("p09@x.se", s) for s in SESSIONS], p.stderr)

    def test_nul_byte_in_windows_1252(self):
        self.invite_all()
        lines = people()
        lines[3] = lines[3].replace("Person 3", "Person\0 3")
        self.write(lines, encoding="cp1252")
        p, plan = self.plan()
        # The rows after the NUL are read; the row with it cannot be used
        # and keeps its participant's last good state.
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 4 (p03@x.se): a NUL byte in the row", p.stderr)
        self.assertEqual(self.reminded(plan), {"p%02d@x.se" % i for i in range(1, 11)})

    def test_nul_filled_row_and_tail(self):
        # A crash while the file was written leaves NUL bytes where rows
        # were: such a row is no blank one, and may be anyone's.
        self.invite_all()
        data = "\r\n".join(people()) + "\r\n"
        row = data.index("p05@x.se")
        row = slice(row, data.index("\r\n", row))
        self.write(data[:row.start] + "\0" * (row.stop - row.start) + data[row.stop:])
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 6 (): a NUL byte in the row (a crash while the file "
                      "was written leaves them): the row cannot be used", p.stderr)
        self.assertIn("deltagare.csv: line 6: a row with a NUL byte: the 1 participant missing "
                      "from the file (p05@x.se) is not taken for gone", p.stderr)
        # The file's tail: every row from p09's on.
        tail = data.index("p09@x.se")
        self.write(data[:tail] + "\0" * (len(data) - tail))
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 10 (): a NUL byte in the row", p.stderr)
        self.assertIn("the 2 participants missing from the file (p09@x.se, p10@x.se) are not "
                      "taken for gone", p.stderr)

    def test_half_written(self):
        # Caught while being written: the rows it has are read, the last
        # is cut short, and none of those it lacks is gone.
        self.invite_all()
        data = "\r\n".join(people()) + "\r\n"
        self.write(data[:data.index(";Gävle;registered", data.index("p08@x.se"))])
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 9 (p08@x.se): the last row ends without a line "
                      "break after 2 of the header's 5 fields, without Kommun, Status, Anmäld "
                      "(a file caught while it is written looks like this): the row cannot be "
                      "used", p.stderr)
        self.assertIn("deltagare.csv: line 9: a last row cut short: the 2 participants missing "
                      "from the file (p09@x.se, p10@x.se) are not taken for gone", p.stderr)
        # p08, whose address is whole, keeps their last good state.
        self.assertEqual(self.reminded(plan), {"p%02d@x.se" % i for i in range(1, 9)})
        # A last line without its line break but whole is read as it is.
        self.write(data.rstrip("\r\n"))
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertNotIn("warning", p.stderr)

    def test_short_last_row(self):
        # A row typed in by hand, saved short without its line break: the
        # rest of the file is read and used; only removals wait for it.
        self.invite_all()
        lines = people() + [person(11)]
        del lines[3]  # p03 leaves
        self.write("\r\n".join(lines + ["p12@x.se;Person 12;Gävle"]))
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertEqual(sorted(line[3] for line in plan if line[1] == "invite"
                                and line[2] == "p11@x.se"), SESSIONS, p.stdout)
        self.assertIn("deltagare.csv: line 12 (p12@x.se): the last row ends without a line "
                      "break after 3 of the header's 5 fields, without Status, Anmäld", p.stderr)
        self.assertIn("deltagare.csv: line 12: a last row cut short: the 1 participant missing "
                      "from the file (p03@x.se) is not taken for gone", p.stderr)
        p = self.prog.run("--once", "--now", AFTER, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 33, p.stderr)
        # Finished, the row is read and the one who left is cancelled.
        self.write(lines + [person(12)])
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [("p03@x.se", s) for s in SESSIONS], p.stderr)
        self.assertEqual(sorted(line[3] for line in plan if line[1] == "invite"), SESSIONS)


class DuplicateRowsTest(CsvCase):
    def test_rows_that_disagree(self):
        self.invite_all()
        for order in ((11, 3), (3, 11)):
            lines = people() + [person(3, "cancelled", address="P03@x.se")]
            lines[3], lines[11] = lines[order[0]], lines[order[1]]
            self.write(lines)
            p, plan = self.plan()
            self.assertEqual(self.cancels(plan), [], p.stderr)
            self.assertIn("deltagare.csv: line 12 (%s) disagrees with line 4 (%s) on status: "
                          "neither row is used until they agree" % (
                              "P03@x.se" if order == (3, 11) else "p03@x.se",
                              "p03@x.se" if order == (3, 11) else "P03@x.se"), p.stderr)
            self.assertIn("p03@x.se: the row cannot be used now (see above): keeping the "
                          "participant's last good state (registered)", p.stderr)
            self.assertIn("p03@x.se", self.reminded(plan))

    def test_rows_that_agree(self):
        self.invite_all()
        self.write(people() + [person(3, "registered", address="P03@x.se")])
        p, plan = self.plan()
        self.assertEqual(self.cancels(plan), [], p.stderr)
        self.assertIn("deltagare.csv: line 12 (P03@x.se): duplicate of line 4, skipped", p.stderr)
        self.assertIn("p03@x.se", self.reminded(plan))


class RegisteredAtTest(CsvCase):
    def test_unreadable_registered_at_is_a_warning(self):
        lines = people(3)
        lines[1] = lines[1].replace("2019-11-04", "43773,38")
        lines[2] = lines[2].replace("2019-11-04", "04.11.2019")
        self.write(lines)
        p = self.prog.run("--check", check=0)
        self.assertIn("3 participants: 3 registered", p.stdout)
        self.assertIn("deltagare.csv: line 2 (p01@x.se): registered_at \"43773,38\" is not an "
                      "ISO 8601 time", p.stderr)
        self.assertIn("deltagare.csv: line 3 (p02@x.se): registered_at \"04.11.2019\"", p.stderr)
        self.assertIn("read without it", p.stderr)
        p, plan = self.plan(now=BEFORE)
        self.assertEqual(sorted({line[2] for line in plan if line[1] == "invite"}),
                         ["p01@x.se", "p02@x.se", "p03@x.se"])


class DaemonTest(CsvCase):
    """The daemon cancels nobody while the file is caught half-written,
    keeps its last good reading while it is broken, and reads it again
    once it is whole."""

    def wait_for(self, what, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            found = what()
            if found:
                return found
            time.sleep(0.05)
        with open(self.logpath, encoding="utf-8", errors="replace") as f:
            raise AssertionError(f"gave up waiting; the log:\n{f.read()}")

    def logged(self, text):
        with open(self.logpath, encoding="utf-8", errors="replace") as f:
            return text in f.read()

    def test_keeps_last_good_reading(self):
        self.write(people())
        self.logpath = os.path.join(self.tmpdir, "daemon.log")
        log = open(self.logpath, "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", BEFORE],
                                stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.wait_for(lambda: len(self.prog.outbox_messages()) == 30)
        data = "\r\n".join(people()) + "\r\n"
        self.write(data[:data.index(";Gävle;", data.index("p08@x.se"))])
        self.wait_for(lambda: self.logged("a last row cut short: the 2 participants missing"))
        self.write(data.replace(";Person 8;", ";\"Person 8;"))
        self.wait_for(lambda: self.logged("a quote opened here is never closed"))
        self.wait_for(lambda: self.logged("kept the last good version"))
        time.sleep(1)
        self.assertEqual(len(self.prog.outbox_messages()), 30)
        # Whole again, without p10: the one row gone is a cancellation.
        self.write(people(9))
        self.wait_for(lambda: len(self.prog.outbox_messages()) == 33)
        time.sleep(0.5)
        new = [parse(f) for f in self.prog.outbox_messages()[30:]]
        self.assertEqual(len(self.prog.outbox_messages()), 33)
        self.assertEqual({m["To"].addresses[0].addr_spec for m in new}, {"p10@x.se"})


if __name__ == "__main__":
    main()
