"""The real daemon: on time to the second, silent while it waits, talking
to a stand-in systemd notify socket, reloading on SIGHUP and on edits of
its inputs, finishing the message in flight on SIGTERM, and following a
jump of the system clock."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from guard_test import ATTENDING, MARIA, S3, SOFIA, Mail, cancelled  # noqa: E402
from kallad_test import KALLAD, KalladCase, main, parse  # noqa: E402

HENRIK = "henrik.dahl@karlstad.example.se"
INGRID = "ingrid.wallin@regiondalarna.example.se"


class Notify:
    """A stand-in for systemd's notify socket."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.seen = []

    def wait_for(self, text, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            for msg in self.seen:
                if text in msg:
                    self.seen.remove(msg)
                    return msg
            try:
                self.seen.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        raise AssertionError(f"no {text!r} on the notify socket; got {self.seen}")


class DaemonCase(KalladCase):
    def start(self, now, *args, env=None):
        self.notify = Notify(self.tmpdir)
        self.log = open(os.path.join(self.tmpdir, "daemon.log"), "w+")
        e = dict(os.environ, NOTIFY_SOCKET=self.notify.path, **(env or {}))
        self.started = time.time()
        self.proc = subprocess.Popen([KALLAD, "--config", self.prog.conf, "--now", now, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        self.addCleanup(self.stop)
        self.addCleanup(self.log.close)
        self.addCleanup(self.notify.sock.close)
        self.notify.wait_for("READY=1")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logtext(self):
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def add_waitlisted(self, n):
        """n more participants, waitlisted: planned on every full pass,
        owed nothing."""
        con = sqlite3.connect(self.prog.db)
        con.executemany("INSERT INTO participants(email, name, language, status, registered_at,"
                        " updated_at) VALUES (?, 'X', 'sv', 'waitlisted', '2019-11-01 10:00',"
                        " '2019-11-01 10:00')",
                        [(f"vantar{i:04d}@example.org",) for i in range(n)])
        con.commit()
        con.close()

    def wait_outbox(self, n, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            files = self.prog.outbox_messages()
            if len(files) >= n:
                return files
            time.sleep(0.02)
        raise AssertionError(f"{len(self.prog.outbox_messages())} messages, not {n}:\n"
                             + self.logtext())


class TimingTest(DaemonCase):
    def test_on_time_and_silent_while_waiting(self):
        # The first deadline nudges are due at 09:00:00; start 6 s before.
        self.start("2019-11-29T08:59:54+01:00")
        due_real = self.started + 6
        invites = self.wait_outbox(28)
        self.notify.wait_for("STATUS=next: 29 nov 09:00, deadline-reminder "
                             "'Sista anmälningsdag' to 2")
        # Idle until then: strace sees no system call at all.
        self.assertLess(time.time(), due_real - 2.5, "too slow to watch it idle")
        if True:
            tr = subprocess.Popen(["strace", "-c", "-p", str(self.proc.pid)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            tr.send_signal(signal.SIGINT)
            _, err = tr.communicate(timeout=5)
            calls = re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", err,
                               re.M)
            counted = {name: int(n) for n, name in calls if name not in ("total",)}
            # Attaching interrupts the poll once; nothing else may run.
            counted.pop("restart_syscall", None)
            counted.pop("poll", None)
            self.assertEqual(counted, {}, err)
            self.assertIn("attached", err)  # strace watched it (and printed no table)
        files = self.wait_outbox(30, timeout=8)
        new = sorted(set(files) - set(invites), key=os.path.getmtime)
        self.assertEqual(len(new), 2)
        sent_at = os.path.getmtime(new[0])
        self.assertGreaterEqual(sent_at, due_real - 0.05)
        self.assertLessEqual(sent_at, due_real + 1.0)
        self.assertEqual(sorted(parse(f)["To"].addresses[0].addr_spec for f in new),
                         sorted([HENRIK, INGRID]))


class WatchdogTest(DaemonCase):
    def test_watchdog_when_asked(self):
        # As systemd sets it for WatchdogSec=: pings at half the interval.
        self.start("2019-11-20T08:00:00+01:00", env={"WATCHDOG_USEC": "400000"})
        start = time.time()
        for _ in range(4):
            self.notify.wait_for("WATCHDOG=1", timeout=2)
        self.assertLess(time.time() - start, 2.0)


class ReloadTest(DaemonCase):
    def test_sighup_with_broken_config_keeps_running_and_sending(self):
        self.start("2019-11-29T08:59:55+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next")
        with open(self.prog.conf, "a", encoding="utf-8") as f:
            f.write("\n[nonsense]\nkey = value\n")
        self.proc.send_signal(signal.SIGHUP)
        self.notify.wait_for("RELOADING=1")
        self.notify.wait_for("READY=1")
        time.sleep(0.3)
        self.assertIsNone(self.proc.poll())
        self.assertRegex(self.logtext(), r"kallad\.conf:\d+: \[nonsense\]")
        self.assertIn("still running on the previous configuration", self.logtext())
        # ...and the reminders still leave at 09:00.
        self.wait_outbox(30, timeout=10)

    def test_sighup_takes_new_smtp_settings(self):
        self.start("2019-11-29T08:59:56+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next")
        sink = self.sink()
        self.prog.use_smtp(sink.port)  # from the outbox to a real server
        self.proc.send_signal(signal.SIGHUP)
        self.notify.wait_for("READY=1")
        end = time.time() + 10
        while time.time() < end and len(sink.messages()) < 2:
            time.sleep(0.05)
        got = sorted(parse(m)["To"].addresses[0].addr_spec for m in sink.messages())
        self.assertEqual(got, sorted([HENRIK, INGRID]), self.logtext())
        self.assertEqual(len(self.prog.outbox_messages()), 28)
        self.assertIn("[smtp] changed", self.logtext())

    def test_calendar_edit_replans_within_a_second(self):
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next")
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8") as f:
            text = f.read()
        extra = ("BEGIN:VEVENT\r\nUID:extra-2020@example.org\r\nDTSTAMP:20191120T070000Z\r\n"
                 "DTSTART;TZID=Europe/Stockholm:20200604T100000\r\n"
                 "DTEND;TZID=Europe/Stockholm:20200605T130000\r\n"
                 "SUMMARY:Extra tillfälle\r\nLOCATION:Långholmen\r\nSTATUS:CONFIRMED\r\n"
                 "END:VEVENT\r\n")
        text = text.replace("BEGIN:VTODO", extra + "BEGIN:VTODO", 1)
        # Replace the file the way an editor or export job does: by rename.
        tmp = ics + ".new"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        edited = time.time()
        os.rename(tmp, ics)
        files = self.wait_outbox(28 + 10, timeout=5)
        newest = max(os.path.getmtime(f) for f in files)
        self.assertLess(newest - edited, 1.0)

    def test_broken_calendar_keeps_last_good(self):
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, "w", encoding="utf-8") as f:
            f.write("this is not a calendar\n")
        self.proc.send_signal(signal.SIGHUP)
        self.notify.wait_for("RELOADING=1")
        self.notify.wait_for("READY=1")
        self.assertIn("programme.ics", self.logtext())
        self.notify.wait_for("STATUS=next")
        self.assertIsNone(self.proc.poll())


class NudgeTest(DaemonCase):
    def test_commands_that_change_the_ledger_wake_the_daemon(self):
        # The daemon plans from its ledger only when it wakes; a release,
        # a manual send or --retry-failed by another process tells it
        # (SIGUSR1, through the pid file beside the state database).
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next")
        pidfile = os.path.join(self.prog.dir, "state", "kallad.pid")
        with open(pidfile, encoding="ascii") as f:
            self.assertEqual(int(f.read()), self.proc.pid)
        self.prog.run("--retry-failed", "--now", "2019-11-20T08:00:05+01:00", check=0)
        self.notify.wait_for("STATUS=next")
        self.assertIn("another kallad changed the ledger", self.logtext())
        self.assertIsNone(self.proc.poll())
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(pidfile))


class StopTest(DaemonCase):
    def test_sigterm_during_a_send_loses_nothing(self):
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 300")
        self.start("2019-11-20T08:00:00+01:00")
        time.sleep(1.5)
        self.proc.send_signal(signal.SIGTERM)
        self.notify.wait_for("STOPPING=1")
        self.assertEqual(self.proc.wait(timeout=10), 0)
        sent = len(sink.messages())
        self.assertGreater(sent, 0)
        self.assertLess(sent, 28)
        out = self.prog.run("--status", check=0).stdout
        self.assertIn(f"sent\t{sent}", out)
        self.assertIn("unknown\t0", out)
        self.assertIn("claimed\t0", out)
        self.prog.run("--once", "--now", "2019-11-20T08:00:10+01:00", check=0)
        got = [str(parse(m)["Message-ID"]) for m in sink.messages()]
        self.assertEqual(len(got), 28)
        self.assertEqual(len(set(got)), 28)


@__import__("unittest").skipUnless(
    os.geteuid() == 0 and not os.environ.get("KALLAD_TEST_NO_CLOCK"),
    "needs root to set the system clock (KALLAD_TEST_NO_CLOCK set: other work shares this clock)")
class ClockJumpTest(DaemonCase):
    def test_wall_clock_jump_forward_sends_what_became_due(self):
        # Next due: 09:00 on kallad's clock, an hour ahead. Jump the system
        # clock forward an hour: the timer is cancelled and it goes out.
        self.start("2019-11-29T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next: 29 nov 09:00")
        subprocess.run(["date", "-s", "+3600 seconds"], check=True, capture_output=True)
        try:
            self.wait_outbox(30, timeout=5)
        finally:
            subprocess.run(["date", "-s", "-3600 seconds"], check=True, capture_output=True)
        self.assertIn("the system clock changed", self.logtext())


class WakeTest(DaemonCase):
    """A wake-up for what is due to a few plans those few, not everyone:
    among 3000 more participants (waitlisted: planned, owed nothing), the
    deadline reminder due for two at 09:00 goes on time, and the log says
    that the wake planned two participants."""

    def test_one_due_among_many_goes_on_time(self):
        self.add_waitlisted(3000)
        self.start("2019-11-29T08:59:54+01:00")
        due_real = self.started + 6
        invites = self.wait_outbox(28)
        self.notify.wait_for("STATUS=next: 29 nov 09:00, deadline-reminder "
                             "'Sista anmälningsdag' to 2")
        files = self.wait_outbox(30, timeout=10)
        new = sorted(set(files) - set(invites), key=os.path.getmtime)
        self.assertEqual(sorted(parse(f)["To"].addresses[0].addr_spec for f in new),
                         sorted([HENRIK, INGRID]))
        sent_at = os.path.getmtime(new[0])
        self.assertGreaterEqual(sent_at, due_real - 0.05)
        self.assertLessEqual(sent_at, due_real + 1.0)
        # The next thing due is told as a full pass would tell it.
        self.notify.wait_for("STATUS=next: 6 dec 09:00, deadline-reminder "
                             "'Sista anmälningsdag' to 2")
        log = self.logtext()
        self.assertRegex(log, r"woke at \d+: planned 2 participants")
        self.assertNotRegex(log, r"woke at \d+: planned \d{3,} participants")
        # What --plan says at the same moment is what the daemon did.
        self.stop()
        p = self.prog.run("--plan", "--now", "2019-11-29T09:00:00+01:00", check=0)
        self.assertNotIn("2019-11-29T09:00:00+01:00\tdeadline-reminder", p.stdout)


class TemplateChangeTest(DaemonCase):
    """Issue 16: an edit of the site templates changes the words of the
    next messages, not what is due. Among 3000 more participants nobody is
    planned again, and the deadline reminder due a few seconds later goes
    on time, in the new words."""

    WORDS = "Nu med nya ord."
    NEW = "ny.deltagare@example.org"

    def edit_template(self, lang, name):
        path = os.path.join(self.prog.dir, "templates", lang, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("\n{{organizer.name}}\n", text)
        # As an editor saves: a new file renamed over the old one.
        with open(path + ".new", "w", encoding="utf-8") as f:
            f.write(text.replace("\n{{organizer.name}}\n",
                                 f"\n{self.WORDS}\n{{{{organizer.name}}}}\n"))
        os.rename(path + ".new", path)

    def test_template_edit_plans_nobody_and_is_used(self):
        self.add_waitlisted(3000)
        self.start("2019-11-29T08:59:52+01:00")
        due_real = self.started + 8
        invites = set(self.wait_outbox(28))
        self.notify.wait_for("STATUS=next: 29 nov 09:00, deadline-reminder")
        for lang in ("sv", "en"):
            self.edit_template(lang, "deadline-reminder.txt")
        end = time.time() + 5
        while "the templates changed" not in self.logtext():
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)
        files = self.wait_outbox(30, timeout=15)
        new = sorted(set(files) - invites)
        self.assertEqual(sorted(parse(f)["To"].addresses[0].addr_spec for f in new),
                         sorted([HENRIK, INGRID]))
        for f in new:
            self.assertIn(self.WORDS, parse(f).get_body(("plain",)).get_content())
            self.assertLessEqual(os.path.getmtime(f), due_real + 1.0)
        log = self.logtext()
        self.assertEqual(len(re.findall("planned everyone", log)), 1, log[-3000:])
        self.assertRegex(log, r"woke at \d+: planned 2 participants")
        self.assertIn("the templates changed: nobody is planned again", log)
        # A template and a registration at once (one reload or two): the
        # registrant's fingerprint is compared all the same, and their
        # invites go, in the new words of the invite.
        before = set(files)
        self.edit_template("sv", "invite.txt")
        self.prog.sql("INSERT INTO participants(email, name, language, status, registered_at,"
                      " updated_at) VALUES (?, 'Ny Deltagare', 'sv', 'registered',"
                      " '2019-11-29 09:00', '2019-11-29 09:00')", self.NEW)
        files = self.wait_outbox(33, timeout=15)
        new = sorted(set(files) - before)
        self.assertEqual([parse(f)["To"].addresses[0].addr_spec for f in new], [self.NEW] * 3)
        for f in new:
            self.assertIn(self.WORDS, parse(f).get_body(("plain",)).get_content())
        log = self.logtext()
        self.assertRegex(log, r"(registrations|registrations and templates) changed: "
                              r"1 participant new or changed")
        self.assertEqual(len(re.findall("planned everyone", log)), 1, log[-3000:])


    def test_reading_a_wal_database_is_no_change(self):
        # A registration database in WAL mode (as a web application keeps
        # it): the reload's own read of it must not be seen as a change,
        # or the daemon reloads again and again.
        con = sqlite3.connect(self.prog.db)
        self.assertEqual(con.execute("PRAGMA journal_mode=WAL").fetchone()[0], "wal")
        con.close()
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next:")
        self.edit_template("sv", "invite.txt")
        end = time.time() + 5
        while "the templates changed" not in self.logtext():
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)
        time.sleep(2)
        self.assertEqual(self.logtext().count("reloaded "), 1, self.logtext()[-3000:])


class ReloadWindowTest(DaemonCase):
    """A registration written while a reload reads the inputs is planned:
    the write's change waits in the daemon's inotify descriptor, which the
    reload keeps. Registrations in CSV, their absences a named pipe that
    this test serves: the reload holds at the absences, after it read the
    registrations, while the test writes a new registrant."""

    ANNA = "anna.berglund@gavle.example.se"
    NEW = "ny.deltagare@example.org"

    def serve_absences(self, fifo):
        """Each open of the pipe by kallad gets the absences; once
        self.hold is set, the next open waits for self.go first."""
        self.hold, self.reading, self.go = False, threading.Event(), threading.Event()
        self.done = False

        def serve():
            while not self.done:
                fd = os.open(fifo, os.O_WRONLY)
                if self.hold and not self.done:
                    self.hold = False
                    self.reading.set()
                    self.go.wait(20)
                try:
                    os.write(fd, b"email,session_uid\nnobody@example.se,x@example.org\n")
                except BrokenPipeError:
                    pass
                os.close(fd)
                time.sleep(0.1)  # kallad reads the end and closes: one copy each

        def finish():
            self.done = True
            self.go.set()
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # frees a waiting open
            time.sleep(0.1)
            os.close(fd)
            t.join(5)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        self.addCleanup(finish)

    def write_people(self, rows, path=None):
        path = path or os.path.join(self.prog.dir, "people.csv")
        with open(path + ".new", "w", encoding="utf-8") as f:
            f.write("email;name;status\n")
            for email, name in rows:
                f.write(f"{email};{name};registered\n")
        os.rename(path + ".new", path)

    def use_pipe(self):
        self.write_people([(self.ANNA, "Anna Berglund")])
        self.prog.edit_conf("registrations = registrations.db", "registrations = people.csv")
        self.prog.append_conf("[registrations]\nabsences = absences.csv\n")
        fifo = os.path.join(self.prog.dir, "absences.csv")
        os.mkfifo(fifo)
        self.serve_absences(fifo)

    def test_a_row_written_while_the_daemon_starts_is_planned(self):
        # The first read of the inputs holds at the absences.
        self.use_pipe()
        self.hold = True
        starting = threading.Thread(target=self.start, args=("2019-11-20T08:00:00+01:00",))
        starting.start()
        self.assertTrue(self.reading.wait(10))
        self.write_people([(self.ANNA, "Anna Berglund"), (self.NEW, "Ny Deltagare")])
        time.sleep(0.3)
        self.go.set()
        starting.join(20)
        files = self.wait_outbox(6, timeout=10)
        self.assertEqual(sorted(parse(f)["To"].addresses[0].addr_spec for f in files),
                         sorted([self.ANNA] * 3 + [self.NEW] * 3))

    def test_a_row_written_while_a_reload_reads_is_planned(self):
        self.use_pipe()
        self.start("2019-11-20T08:00:00+01:00")
        before = set(self.wait_outbox(3))
        self.notify.wait_for("STATUS=next:")
        # The calendar saved again, unchanged: a reload, which holds at
        # the absences once it has read the registrations.
        self.hold = True
        cal = os.path.join(self.prog.dir, "programme.ics")
        with open(cal, "rb") as f:
            text = f.read()
        with open(cal + ".new", "wb") as f:
            f.write(text)
        os.rename(cal + ".new", cal)
        self.new_registrant_while_held(before)

    def new_registrant_while_held(self, before, people=None):
        """While the reload holds at the absences: a new registrant in
        `people`, then the reload goes on; nothing else changes, and the
        new registrant's three invites go."""
        self.assertTrue(self.reading.wait(10), self.logtext()[-3000:])
        self.write_people([(self.ANNA, "Anna Berglund"), (self.NEW, "Ny Deltagare")], people)
        time.sleep(0.3)
        self.go.set()
        files = self.wait_outbox(6, timeout=10)
        self.assertEqual(sorted(parse(f)["To"].addresses[0].addr_spec
                                for f in set(files) - before), [self.NEW] * 3)

    def test_a_row_written_in_a_folder_the_reload_names_anew_is_planned(self):
        # The configuration moves the registrations and their absences to
        # a folder never watched; the reload reads them there, holds at the
        # absences, and a registrant is written there meanwhile.
        self.use_pipe()
        self.start("2019-11-20T08:00:00+01:00")
        before = set(self.wait_outbox(3))
        self.notify.wait_for("STATUS=next:")
        elsewhere = os.path.join(self.prog.dir, "elsewhere")
        os.mkdir(elsewhere)
        people = os.path.join(elsewhere, "people.csv")
        shutil.copy(os.path.join(self.prog.dir, "people.csv"), people)
        os.mkfifo(os.path.join(elsewhere, "absences.csv"))
        self.serve_absences(os.path.join(elsewhere, "absences.csv"))
        self.hold = True
        with open(self.prog.conf, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("registrations = people.csv", f"registrations = {people}")
        text = text.replace("absences = absences.csv",
                            f"absences = {os.path.join(elsewhere, 'absences.csv')}")
        with open(self.prog.conf + ".new", "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(self.prog.conf + ".new", self.prog.conf)  # one change
        self.new_registrant_while_held(before, people)


class LongPassTest(DaemonCase):
    """28 invitations at two a second: a pass of 14 s. An input changes six
    seconds in: the pass stops, the change is read, and what the pass had
    not sent is planned again from it."""

    def changed_at_six(self, change):
        """(REQUESTs and CANCELs that went, as (address, UID) sets; the
        REQUESTs that started more than 1.5 s after the change: the
        debounce and a message in flight)."""
        sink = self.sink()
        self.prog.use_smtp(sink.port)
        self.prog.edit_conf("max-per-minute = 0", "max-per-minute = 120")
        self.start("2019-11-20T08:00:00+01:00")
        time.sleep(max(0, self.started + 6 - time.time()))
        change()
        changed = time.time()
        end = time.time() + 40
        while time.time() < end and not re.search(r"this pass stops.*reloaded.*planned everyone",
                                                  self.logtext(), re.S):
            time.sleep(0.1)
        self.assertIn("the inputs changed while sending: this pass stops", self.logtext())
        requests, cancels, late = set(), set(), []
        for path in sink.files():
            m = Mail(path)
            if m.method == "REQUEST":
                requests.add((m.to, m.uid))
                if os.path.getmtime(path) > changed + 1.5:
                    late.append((m.to, m.uid))
            elif m.method == "CANCEL":
                cancels.add((m.to, m.uid))
        return requests, cancels, late

    def test_a_cancelled_session_and_participant(self):
        def change():
            ics = os.path.join(self.prog.dir, "programme.ics")
            with open(ics, encoding="utf-8", newline="") as f:
                text = f.read()
            with open(ics + ".new", "w", encoding="utf-8", newline="") as f:
                f.write(cancelled(text, S3))
            os.rename(ics + ".new", ics)
            self.prog.sql("UPDATE participants SET status = 'cancelled' WHERE email = ?", SOFIA)

        requests, cancels, late = self.changed_at_six(change)
        self.assertEqual([(e, u) for e, u in late if u == S3 or e == SOFIA], [],
                         self.logtext()[-3000:])
        self.assertLess(len({e for e, u in requests if u == S3}), len(ATTENDING[S3]))
        # What went and is wrong now is cancelled; nothing else is.
        self.assertEqual(cancels, {(e, u) for e, u in requests if u == S3 or e == SOFIA})

    def test_an_absence(self):
        # Absences are read on reload only: the pass after the stop waits
        # for it (it went on with the old ones for 5 s).
        requests, cancels, late = self.changed_at_six(lambda: self.prog.sql(
            "INSERT INTO absences(email, session_uid) VALUES (?, ?)", MARIA, S3))
        self.assertNotIn((MARIA, S3), late, self.logtext()[-3000:])
        self.assertEqual(cancels, {(MARIA, S3)} & requests)


class NudgesCase(DaemonCase):
    def start_before_nudges(self):
        """Starts the daemon 6 s before the two deadline nudges (09:00:00),
        waits for the 28 invitations and returns, 2 s before the nudges,
        the moment (time.time()) they fall due."""
        self.start("2019-11-29T08:59:54+01:00")
        due = self.started + 6
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next: 29 nov 09:00, deadline-reminder")
        time.sleep(max(0, due - 2 - time.time()))
        return due


class WrittenAgainAndAgainTest(NudgesCase):
    def test_inputs_written_all_the_time_hold_nothing_back(self):
        # The configuration touched every 100 ms from 2 s before the
        # deadline nudges (09:00:00) until 10 s after: the reload waits
        # for the writes to settle, but no longer than 2 s, and what falls
        # due goes meanwhile.
        due = self.start_before_nudges()
        went = None
        while time.time() < due + 10:
            os.utime(self.prog.conf)  # IN_ATTRIB: a change of the configuration
            if went is None and len(self.prog.outbox_messages()) == 30:
                went = time.time()
            time.sleep(0.1)
        self.assertIsNotNone(went, self.logtext()[-3000:])
        self.assertLess(went, due + 4)


class LockedRegistrationsTest(NudgesCase):
    def test_a_wake_that_cannot_read_the_registrations_loses_nobody(self):
        # The two deadline nudges fall due at 09:00:00 (wakes plan only
        # those due). A writer holds the registration database from 2 s
        # before until 13 s after, past the 10 s busy timeout: that wake
        # fails, takes nobody for gone, and the next one, 5 s later,
        # sends them.
        due = self.start_before_nudges()
        con = sqlite3.connect(self.prog.db, isolation_level=None, timeout=5)
        con.execute("BEGIN EXCLUSIVE")
        time.sleep(max(0, due + 13 - time.time()))
        con.execute("ROLLBACK")
        con.close()
        self.wait_outbox(30, timeout=20)
        log = self.logtext()
        self.assertIn("the ledger or the registrations failed (above); trying again in 5 s",
                      log)
        self.assertIn("stayed locked", log)


class ConfigChangeTest(DaemonCase):
    """Issue 16: an edit of the configuration's [smtp] alone (a password,
    a timeout, more connections) plans nobody again: the planner never
    reads it. Any other setting plans everyone."""

    def test_smtp_edit_plans_nobody_and_a_planning_setting_everyone(self):
        self.add_waitlisted(3000)
        self.prog.append_conf("[smtp]\ntimeout = 30")
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next:")
        self.prog.edit_conf("timeout = 30", "timeout = 45")
        end = time.time() + 10
        while "changed: nobody is planned again" not in self.logtext():
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)
        log = self.logtext()
        self.assertIn("the configuration (no planning setting) changed: nobody is planned again",
                      log)
        self.assertEqual(len(re.findall("planned everyone", log)), 1, log[-3000:])
        self.prog.edit_conf("late-registrations = skip", "late-registrations = send")
        end = time.time() + 15
        while len(re.findall("planned everyone", self.logtext())) < 2:
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)

    def relay_dropin_seen(self, dropins, timeout):
        """Writes an [smtp]-only drop-in; the daemon reloads and plans nobody."""
        n = self.logtext().count("the configuration (no planning setting) changed")
        with open(os.path.join(dropins, "50-relay.conf"), "w", encoding="utf-8") as f:
            f.write(f"[smtp]\ntimeout = {timeout}\n")
        end = time.time() + 10
        while self.logtext().count("the configuration (no planning setting) changed") == n:
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)

    def test_dropin_folder_made_after_the_start(self):
        # No kallad.conf.d at the start (nothing to warn of: it is
        # optional); one made later, with a drop-in, is watched and read.
        dropins = os.path.join(self.prog.dir, "kallad.conf.d")
        self.assertFalse(os.path.exists(dropins))
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next:")
        self.assertNotIn("cannot watch", self.logtext())
        os.mkdir(dropins)
        self.relay_dropin_seen(dropins, 40)
        # Watched now: an edit of the drop-in is a change too.
        self.relay_dropin_seen(dropins, 41)

    def test_dropin_beside_a_file_not_named_kallad_conf(self):
        # The drop-ins are read from kallad.conf.d beside the main file,
        # whatever its name: an edit there is seen too.
        other = os.path.join(self.prog.dir, "programme.conf")
        os.rename(self.prog.conf, other)
        self.prog.conf = other
        dropins = os.path.join(self.prog.dir, "kallad.conf.d")
        os.mkdir(dropins)
        self.start("2019-11-20T08:00:00+01:00")
        self.wait_outbox(28)
        self.notify.wait_for("STATUS=next:")
        self.relay_dropin_seen(dropins, 40)


class RegistrationChangeTest(DaemonCase):
    """Issue 16: a change of the registration database re-plans whom it
    touches. Among 3000 more participants, a new row and a changed row are
    planned by themselves (one pass over the database, the reload's, and
    a wake for two), while a deleted row or a new absence still plan
    everyone: a deletion may owe cancels under the mass-removal guard, an
    absence is no participant's row."""

    ANNA = "anna.berglund@gavle.example.se"
    NEW = "ny.deltagare@example.org"

    def wait_log(self, pattern, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.logtext())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the log:\n{self.logtext()[-3000:]}")

    def to(self, files):
        return sorted(parse(f)["To"].addresses[0].addr_spec for f in files)

    def test_new_and_changed_rows_plan_only_themselves(self):
        self.add_waitlisted(3000)
        self.start("2019-11-20T08:00:00+01:00")
        before = set(self.wait_outbox(28))
        self.notify.wait_for("STATUS=next:")
        self.prog.sql("INSERT INTO participants(email, name, language, status, registered_at,"
                      " updated_at) VALUES (?, 'Ny Deltagare', 'sv', 'registered',"
                      " '2019-11-20 08:00', '2019-11-20 08:00')", self.NEW)
        self.prog.sql("UPDATE participants SET status = 'registered', "
                      "updated_at = '2019-11-20 08:00' WHERE email = ?", HENRIK)
        files = self.wait_outbox(34)
        self.assertEqual(self.to(set(files) - before), sorted([HENRIK] * 3 + [self.NEW] * 3))
        # One change or two (the debounce may split them): never everyone.
        log = self.logtext()
        changed = [int(n) for n in re.findall(r"registrations changed: (\d+) participants? new "
                                              r"or changed", log)]
        self.assertIn(sum(changed), (2, 3), log[-3000:])
        self.assertNotIn("planning everyone again", log)
        self.assertNotRegex(log, r"woke at \d+: planned \d{3,} participants")
        before = set(files)
        # A deleted row: everyone is planned again, and the cancels go.
        self.prog.sql("DELETE FROM participants WHERE email = ?", self.ANNA)
        self.wait_log(r"registrations changed: planning everyone again")
        files = self.wait_outbox(37)
        self.assertEqual(self.to(set(files) - before), [self.ANNA] * 3)
        # A new absence: not a participant's row, everyone again.
        n = len(re.findall("planning everyone again", self.logtext()))
        self.prog.sql("INSERT INTO absences(email, session_uid) VALUES (?, ?)", self.NEW,
                      "styra-leda-2020-2@example.org")
        end = time.time() + 15
        while len(re.findall("planning everyone again", self.logtext())) == n:
            self.assertLess(time.time(), end, self.logtext()[-3000:])
            time.sleep(0.05)


if __name__ == "__main__":
    main()
