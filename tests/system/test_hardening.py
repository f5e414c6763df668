"""Hardening (issue 14), through the real binary: nothing read from outside
the programme's material, nothing merged or dropped in silence, --check
deciding exactly as the run does, daylight-saving nights, far dates, a pass
that ends while a writer keeps inserting."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, SOURCE, KalladCase, main, parse  # noqa: E402

ANNA = "anna.berglund@gavle.example.se"
MARIA = "maria.ekstrom@lund.example.se"
S1 = "styra-leda-2020-1@example.org"
BEFORE_DEADLINE = "2019-11-20T12:00:00+01:00"


class MaterialTest(KalladCase):
    """Issue 14.1: attachment paths stay beneath [programme] material."""

    def hostile_rows(self):
        secret = os.path.join(self.prog.dir, "smtp-password")
        with open(secret, "w", encoding="utf-8") as f:
            f.write("hemligt-lösenord\n")
        os.chmod(secret, 0o600)
        os.symlink("/etc/passwd", os.path.join(self.prog.dir, "material", "link.pdf"))
        self.prog.sql("DELETE FROM attachments WHERE email = ?", ANNA)
        for path in ("/etc/passwd", "../../../../../../etc/passwd", secret, "../smtp-password",
                     "link.pdf"):
            self.prog.sql("INSERT INTO attachments VALUES (?, 'material', ?)", ANNA, path)
        return secret

    def test_check_names_each_row(self):
        secret = self.hostile_rows()
        p = self.prog.run("--check", check=1)  # the run starts; those messages would fail
        for path, why in (("/etc/passwd", "is absolute"),
                          ("../../../../../../etc/passwd", "leads out"),
                          (secret, "is absolute"), ("../smtp-password", "leads out"),
                          ("link.pdf", "leads out")):
            self.assertIn(f'attachments row ({ANNA}, material): path "{path}" {why}', p.stderr)
        self.assertIn("attachments: 5 rows cannot be attached", p.stdout)
        # The other participants' rows are fine.
        self.assertNotIn(MARIA, p.stderr)

    def test_sending_refuses_and_the_rest_go(self):
        self.hostile_rows()
        p = self.prog.run("--send-now", "material", "--to", ANNA, "--to", MARIA,
                          "--now", "2019-11-20T08:00:00+01:00")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('path "/etc/passwd" is absolute', p.stderr)
        files = self.prog.outbox_messages()
        self.assertEqual(len(files), 1, p.stderr)
        msg = parse(files[0])
        self.assertEqual(msg["To"].addresses[0].addr_spec, MARIA)
        self.assertEqual([a.get_filename() for a in msg.iter_attachments()],
                         ["basfakta-lund.pdf"])
        for f in files:
            with open(f, "rb") as fh:
                raw = fh.read()
            self.assertNotIn(b"root:x:0:0", raw)
            self.assertNotIn("hemligt".encode(), raw)
        failed = self.prog.run("--status", "--failed", check=0).stdout
        self.assertIn(ANNA, failed)
        self.assertIn("attachments row", failed)

    def test_material_setting(self):
        other = os.path.join(self.tmpdir, "bilagor")
        os.mkdir(other)
        with open(os.path.join(other, "basfakta-lund.pdf"), "wb") as f:
            f.write(b"%PDF-1.4 annan\n")
        self.prog.edit_conf("[programme]", f"[programme]\nmaterial = {other}")
        p = self.prog.run("--check", check=1)
        # Only Lund's file is in the new folder: the other nine rows are named.
        self.assertIn("attachments: 9 rows cannot be attached", p.stdout)
        self.prog.run("--send-now", "material", "--to", MARIA,
                      "--now", "2019-11-20T08:00:00+01:00", check=0)
        msg = parse(self.prog.outbox_messages()[0])
        part = next(msg.iter_attachments())
        self.assertEqual(part.get_content(), b"%PDF-1.4 annan\n")


class ReloadPreflightTest(KalladCase):
    """Issue 14.3: a running daemon does not switch to what --check refuses."""

    def test_sighup_keeps_a_configuration_that_can_run(self):
        log = open(os.path.join(self.tmpdir, "daemon.log"), "w+")
        self.addCleanup(log.close)
        d = subprocess.Popen([KALLAD, "--config", self.prog.conf,
                              "--now", "2019-11-29T08:59:45+01:00"],
                             stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: d.poll() is None and (d.kill(), d.wait()))

        def wait(cond, what, timeout=20):
            end = time.time() + timeout
            while time.time() < end:
                if cond():
                    return
                time.sleep(0.05)
            log.flush()
            with open(log.name, encoding="utf-8") as f:
                raise AssertionError(f"no {what}:\n{f.read()}")

        def text():
            log.flush()
            with open(log.name, encoding="utf-8") as f:
                return f.read()

        wait(lambda: len(self.prog.outbox_messages()) >= 28, "invites")
        self.prog.edit_conf("message  = deadline-reminder", "message  = no-such-template")
        d.send_signal(signal.SIGHUP)
        wait(lambda: "still running on the previous configuration" in text(), "refused reload")
        self.assertIn("message: no template no-such-template in language sv", text())
        self.assertIsNone(d.poll())
        # At 09:00 the deadline reminders of the configuration in force still go.
        wait(lambda: len(self.prog.outbox_messages()) >= 30, "reminders at 09:00", timeout=30)
        self.assertNotIn("not sent", text())


class UnitCredentialTest(KalladCase):
    """Issue 14.1: under systemd the password is a credential and nothing else."""

    def test_password_file_hidden_from_the_service(self):
        for name, src in (("kallad.service", "/etc/kallad/smtp-password"),
                          ("kallad@.service", "/etc/kallad/%i/smtp-password")):
            with open(os.path.join(SOURCE, "systemd", name), encoding="utf-8") as f:
                lines = f.read().splitlines()
            self.assertIn(f"LoadCredential=smtp-password:{src}", lines)
            self.assertIn(f"InaccessiblePaths=-{src}", lines)


class DuplicateSectionTest(KalladCase):
    """Issue 14.2: a section given twice in one file is an error."""

    def test_duplicate_rule_names_both_lines(self):
        with open(self.prog.conf, encoding="utf-8") as f:
            first = f.read().splitlines().index("[rule session-reminders]") + 1
        self.prog.append_conf("[rule session-reminders]\nbefore = 1d")
        with open(self.prog.conf, encoding="utf-8") as f:
            second = f.read().splitlines().index("[rule session-reminders]", first) + 1
        for mode in ("--check", "--once"):
            p = self.prog.run(mode, "--now", BEFORE_DEADLINE, check=78)
            self.assertIn(f"kallad.conf:{second}: [rule session-reminders]: given twice in this "
                          f"file (lines {first} and {second})", p.stderr)
        self.assertEqual(self.prog.outbox_messages(), [])

    def test_duplicate_plain_section(self):
        self.prog.append_conf("[policy]\nmin-lead = 1h")
        p = self.prog.run("--check", check=78)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: \[policy\]: given twice in this file")

    def test_dropin_may_override(self):
        d = os.path.join(self.prog.dir, "kallad.conf.d")
        os.mkdir(d)
        with open(os.path.join(d, "50-local.conf"), "w", encoding="utf-8") as f:
            f.write("[rule session-reminders]\nbefore = 1d\n[policy]\nmin-lead = 1h\n")
        p = self.prog.run("--check", check=0)
        self.assertIn("session-reminders: session-reminder 1d at 09:00", p.stdout)


class PreflightTest(KalladCase):
    """Issue 14.3: --check, --once, --send-now and the daemon decide alike."""

    def modes(self):
        return (("--check",), ("--once",), ("--send-now", "invite", "--to", ANNA), ())

    def assert_all_refuse(self, text):
        for mode in self.modes():
            p = self.prog.run(*mode, "--now", BEFORE_DEADLINE, timeout=30)
            self.assertEqual(p.returncode, 78, f"{mode}: {p.stdout}\n{p.stderr}")
            self.assertIn(text, p.stderr, mode)
        self.assertEqual(self.prog.outbox_messages(), [])

    def test_missing_template(self):
        self.prog.edit_conf("message = session-reminder", "message = no-such-template")
        self.assert_all_refuse("message: no template no-such-template in language sv")

    def smtp(self, password):
        self.prog.append_conf("[smtp]\nurl = smtp://127.0.0.1:2525\ntls = none\n"
                              f"user = program@example.org\npassword = {password}")

    def test_world_readable_password(self):
        path = os.path.join(self.prog.dir, "smtp-password")
        with open(path, "w", encoding="utf-8") as f:
            f.write("x\n")
        os.chmod(path, 0o644)
        self.smtp(path)
        self.assert_all_refuse("refused: the file is open to group or others")

    def test_missing_password(self):
        self.smtp(os.path.join(self.prog.dir, "no-such-file"))
        self.assert_all_refuse("cannot read")

    def test_missing_credential(self):
        self.smtp("smtp-password")
        self.assert_all_refuse("CREDENTIALS_DIRECTORY is not set")

    def test_unwritable_state_directory(self):
        state = os.path.join(self.tmpdir, "locked")
        os.mkdir(state)
        os.chmod(state, 0o555)
        os.chmod(self.tmpdir, 0o755)
        self.prog.edit_conf("= state/state.db", f"= {state}/state.db")
        prefix, kallad, env = [], KALLAD, dict(os.environ)
        if os.geteuid() == 0:
            # root writes anywhere: run as nobody, as the unit's DynamicUser would be.
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            # nobody may not reach the checkout (CI clones into a 0700 mktemp
            # folder): give it its own copy of the binary and shipped texts.
            kallad = os.path.join(self.tmpdir, "kallad")
            shutil.copy(KALLAD, kallad)
            env["KALLAD_TEMPLATES_DIR"] = os.path.join(self.tmpdir, "shipped")
            shutil.copytree(os.path.join(SOURCE, "templates"), env["KALLAD_TEMPLATES_DIR"])
        for mode in self.modes():
            p = subprocess.run([*prefix, kallad, "--config", self.prog.conf, *mode,
                                "--now", BEFORE_DEADLINE], env=env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 78, f"{mode}: {p.stdout}\n{p.stderr}")
            self.assertIn(f"kallad cannot write in {state}", p.stderr, mode)


STOCKHOLM_TZ = open(os.path.join(SOURCE, "config", "programme.ics"), encoding="utf-8").read()
STOCKHOLM_TZ = STOCKHOLM_TZ[STOCKHOLM_TZ.index("BEGIN:VTIMEZONE"):
                            STOCKHOLM_TZ.index("END:VTIMEZONE") + len("END:VTIMEZONE")]
OUTLOOK_TZ = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE"""


def event(uid, start, end, tzid="Europe/Stockholm"):
    q = f'"{tzid}"' if " " in tzid else tzid
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20191001T080000Z\n"
            f"DTSTART;TZID={q}:{start}\nDTEND;TZID={q}:{end}\nSUMMARY:{uid}\n"
            "LOCATION:Stockholm\nEND:VEVENT")


def write_calendar(prog, *items, zones=(STOCKHOLM_TZ,)):
    text = "\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//kallad test//EN",
                      *zones, *items, "END:VCALENDAR", ""])
    with open(os.path.join(prog.dir, "programme.ics"), "w", encoding="utf-8") as f:
        f.write(text.replace("\n", "\r\n"))


class DaylightSavingTest(KalladCase):
    """Issue 14.4: RFC 5545 §3.3.5 on both nights, in the calendar and in rules."""

    def test_calendar_times_on_both_nights(self):
        write_calendar(self.prog,
                       event("spring", "20200329T023000", "20200329T050000"),
                       event("autumn", "20201025T023000", "20201025T050000"),
                       event("spring-outlook", "20200329T023000", "20200329T050000",
                             "W. Europe Standard Time"),
                       event("autumn-outlook", "20201025T023000", "20201025T050000",
                             "W. Europe Standard Time"),
                       event("spring-tzdb", "20200329T023000", "20200329T050000",
                             "Europe/Oslo"),
                       zones=(STOCKHOLM_TZ, OUTLOOK_TZ))
        out = self.prog.run("--check", check=0).stdout
        # In the gap: moved forward by the gap, 02:30 CET does not exist -> 03:30 CEST.
        for uid in ("spring", "spring-outlook", "spring-tzdb"):
            self.assertIn(f"session  2020-03-29T03:30:00+02:00 – 2020-03-29T05:00:00+02:00  {uid} ",
                          out)
        # The repeated hour: its first occurrence, still in summer time.
        for uid in ("autumn", "autumn-outlook"):
            self.assertIn(f"session  2020-10-25T02:30:00+02:00 – 2020-10-25T05:00:00+01:00  {uid} ",
                          out)

    def test_rule_times_on_both_nights(self):
        write_calendar(self.prog,
                       event("after-spring", "20200330T100000", "20200330T120000"),
                       event("after-autumn", "20201026T100000", "20201026T120000"))
        with open(self.prog.conf, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("before  = 14d, 2d\nat      = 09:00", "before  = 1d\nat      = 02:30")
        text = text.replace("quiet-hours        = 21:00-07:00", "quiet-hours        =")
        with open(self.prog.conf, "w", encoding="utf-8") as f:
            f.write(text)
        plan = self.prog.run("--plan", "--now", "2020-01-10T12:00:00+01:00", check=0).stdout
        lines = [ln.split("\t") for ln in plan.splitlines()]
        spring = {ln[0] for ln in lines if ln[1] == "session-reminder" and ln[3] == "after-spring"}
        autumn = {ln[0] for ln in lines if ln[1] == "session-reminder" and ln[3] == "after-autumn"}
        self.assertEqual(spring, {"2020-03-29T03:30:00+02:00"}, plan)
        self.assertEqual(autumn, {"2020-10-25T02:30:00+02:00"}, plan)


class FarDatesTest(KalladCase):
    """Issue 14.5: dates outside 1970-2200 are errors naming their source."""

    def test_now_out_of_range(self):
        # Days the calendar does not have too: 31 February is not 2 March.
        for now in ("9999-01-01T00:00:00Z", "2300-06-01T12:00:00+02:00", "1969-12-31T23:59:59Z",
                    "2020-02-31T08:00", "2019-02-29T08:00:00+01:00"):
            for mode in (("--plan",), ("--once",), ("--check",)):
                p = self.prog.run(*mode, "--now", now)
                self.assertEqual(p.returncode, 64, f"{mode} {now}: {p.stdout}{p.stderr}")
                self.assertIn(f"--now: not an RFC 3339 time in the years 1970-2200: {now}",
                              p.stderr)
        self.assertEqual(self.prog.outbox_messages(), [])

    def test_calendar_out_of_range(self):
        write_calendar(self.prog,
                       event("ok", "20200329T100000", "20200329T120000"),
                       event("far", "23000329T100000", "23000329T120000"),
                       event("old", "19600329T100000", "19600329T120000"))
        # Each is skipped, named, and the rest is used (issue 11).
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"programme\.ics:\d+: .*far.*: DTSTART is outside the years "
                                   r"1970-2200.*; skipped \(UID far\)")
        self.assertRegex(p.stderr, r"programme\.ics:\d+: .*old.*: DTSTART is outside the years "
                                   r"1970-2200.*; skipped \(UID old\)")
        self.assertIn("1 sessions", p.stdout)

    def test_registration_row_out_of_range(self):
        self.prog.sql("UPDATE participants SET updated_at = '2300-01-01 00:00:00' WHERE email = ?",
                      ANNA)
        # Named (issue 11), and the row read without it: nothing sent
        # depends on updated_at.
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"registrations\.db: participants row \d+ \(" + ANNA +
                         r"\): updated_at \"2300-01-01 00:00:00\" is not an ISO 8601 time in the "
                         r"years 1970-2200 .*: read without it")
        self.assertIn("0 rows skipped", p.stdout)

    def test_daemon_at_the_end_of_the_range(self):
        # The last second kallad accepts: the clock and its timer still work.
        p = self.prog.run("--plan", "--now", "2200-12-31T23:59:59Z", check=0)
        self.assertNotIn("1816", p.stdout)
        d = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", "2200-12-31T23:59:59Z"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        d.terminate()
        out, err = d.communicate(timeout=30)
        self.assertEqual(d.returncode, 0, err)
        self.assertNotIn("cannot arm the timer", err)
        self.assertNotIn("runtime error", err)


class SnapshotTest(KalladCase):
    """Issue 14.7: a pass reads one snapshot and ends while a writer inserts."""

    def inserter(self, stop, counter):
        con = sqlite3.connect(self.prog.db, timeout=30)
        n = 0
        while not stop.is_set():
            # 1000 a second: faster than a pass sends their invites.
            rows = [(f"zz{n + i:09d}@example.org", f"Deltagare {n + i}", "registered",
                     "2019-11-01 10:00:00") for i in range(100)]
            con.executemany("INSERT INTO participants (email, name, status, updated_at) "
                            "VALUES (?, ?, ?, ?)", rows)
            con.commit()
            n += len(rows)
            counter[0] = n
            time.sleep(0.1)
        con.close()

    def run_while_inserting(self):
        stop, counter = threading.Event(), [0]
        t = threading.Thread(target=self.inserter, args=(stop, counter))
        t.start()
        try:
            while counter[0] < 1100:  # more than a page of 1000
                time.sleep(0.01)
            # Between the second and the third session: one invite each.
            p = self.prog.run("--once", "--now", "2020-03-20T12:00:00+01:00",
                              timeout=float(os.environ.get("KALLAD_SNAPSHOT_TIMEOUT", 120)))
            at_end = counter[0]
        finally:
            stop.set()
            t.join()
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        sent = len(self.prog.outbox_messages())
        # The example's own registered, and one invite per inserted participant
        # of the snapshot: never more than were there when the pass ended.
        self.assertGreaterEqual(sent, 1000)
        self.assertLessEqual(sent, 14 + at_end)
        self.assertIn(f"{sent} sent", p.stdout)

    def test_rollback_journal(self):
        self.run_while_inserting()

    def test_wal(self):
        con = sqlite3.connect(self.prog.db)
        self.assertEqual(con.execute("PRAGMA journal_mode=wal").fetchone()[0], "wal")
        con.close()
        self.run_while_inserting()


class FuzzFindingsTest(KalladCase):
    """What the fuzz targets of issue 14.8 found, through the real binary."""

    def test_csv_with_an_address_three_times(self):
        # fuzz_csv: the third row of one address read a cleared one (SIGSEGV).
        src = os.path.join(self.prog.dir, "deltagare.csv")
        with open(src, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
        with open(os.path.join(self.prog.dir, "tre.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines + [lines[1], lines[1]]) + "\n")
        self.prog.edit_conf("= registrations.db", "= tre.csv")
        self.prog.append_conf(
            "[registrations]\ncolumns = E-post:email, Namn:name, Kommun/region:organisation, "
            "Roll:role, Språk:language, Status:status, Anmäld:registered_at, Ändrad:updated_at")
        p = self.prog.run("--check")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        n = len(lines)
        for row in (n + 1, n + 2):
            self.assertIn(f"tre.csv: line {row} ({ANNA}): duplicate of line 2, skipped", p.stderr)


if __name__ == "__main__":
    main()
