"""Day one of an installed kallad: the configuration is there but the
calendar or the registration database is not yet. The real daemon starts,
stays up, says in its systemd status and its log what is missing, sends
nothing, and starts sending as soon as the missing inputs appear."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, SOURCE, main  # noqa: E402
from test_daemon import DaemonCase  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"  # 28 invitations are due at once


def build_db(path):
    """The example registrations, written in place statement by statement,
    the way an operator's sqlite3 session creates the file."""
    con = sqlite3.connect(path)
    for f in ("registrations.sql", "participants.sql"):
        with open(os.path.join(SOURCE, "config", f), encoding="utf-8") as fh:
            con.executescript(fh.read())
            con.commit()
    con.close()


class WaitingTest(DaemonCase):
    def setUp(self):
        super().setUp()
        self.saved_db = os.path.join(self.tmpdir, "saved-registrations.db")
        shutil.move(self.prog.db, self.saved_db)

    def assert_waiting(self, seconds=1.0):
        """Up, and nothing sent, for a while."""
        time.sleep(seconds)
        self.assertIsNone(self.proc.poll(), self.logtext())
        self.assertEqual(self.prog.outbox_messages(), [])
        self.assertFalse(os.path.exists(self.prog.state), "state created while waiting")

    def test_no_registrations_yet_then_they_appear(self):
        self.start(NOW)
        status = self.notify.wait_for("STATUS=waiting")
        self.assertIn(f"no registration database at {self.prog.db}", status)
        self.assert_waiting()
        log = self.logtext()
        self.assertIn(f"no registration database at {self.prog.db}: waiting", log)
        self.assertNotIn("error", log)

        build_db(self.prog.db)
        self.notify.wait_for("STATUS=next", timeout=10)
        files = self.wait_outbox(28)
        self.assertEqual(len(files), 28)
        self.assertIn("what was missing is there: starting", self.logtext())

    def test_nothing_yet_then_calendar_then_registrations(self):
        cal = os.path.join(self.prog.dir, "programme.ics")
        saved_cal = os.path.join(self.tmpdir, "saved.ics")
        shutil.move(cal, saved_cal)
        self.start(NOW)
        status = self.notify.wait_for("STATUS=waiting")
        self.assertIn(f"no calendar at {cal}, no registration database at {self.prog.db}",
                      status)
        self.assert_waiting(0.5)

        shutil.copy(saved_cal, cal)
        status = self.notify.wait_for("STATUS=waiting")
        self.assertNotIn("calendar", status)
        self.assertIn(f"no registration database at {self.prog.db}", status)

        # SIGHUP while waiting: a fresh look, still up.
        self.proc.send_signal(signal.SIGHUP)
        self.assert_waiting(0.5)

        shutil.copy(self.saved_db, self.prog.db)
        self.notify.wait_for("STATUS=next")
        self.assertEqual(len(self.wait_outbox(28)), 28)

    def test_an_input_that_appears_broken_is_reported_and_waited_for(self):
        self.start(NOW)
        self.notify.wait_for("STATUS=waiting: no registration database")
        with open(self.prog.db, "w", encoding="utf-8") as f:
            f.write("not a database\n" * 100)
        status = self.notify.wait_for(f"STATUS=waiting: {self.prog.db}")
        self.assertIn("not a database", status)
        self.assert_waiting(0.5)
        self.assertIn(f"error: {self.prog.db}", self.logtext())

        tmp = self.prog.db + ".new"
        shutil.copy(self.saved_db, tmp)
        os.rename(tmp, self.prog.db)
        self.notify.wait_for("STATUS=next")
        self.assertEqual(len(self.wait_outbox(28)), 28)

    def test_sigterm_while_waiting_exits_0(self):
        self.start(NOW)
        self.notify.wait_for("STATUS=waiting")
        self.proc.send_signal(signal.SIGTERM)
        self.notify.wait_for("STOPPING=1")
        self.assertEqual(self.proc.wait(timeout=5), 0, self.logtext())

    def test_state_folder_not_there_yet(self):
        # Registrations in a folder that does not exist yet (the service's
        # StateDirectory before its first start): the parent is watched.
        sub = os.path.join(self.prog.dir, "var", "lib")
        db = os.path.join(sub, "registrations.db")
        self.prog.edit_conf("registrations = registrations.db", f"registrations = {db}")
        self.start(NOW)
        self.notify.wait_for(f"STATUS=waiting: no registration database at {db}")
        os.makedirs(sub)
        shutil.copy(self.saved_db, db)
        self.notify.wait_for("STATUS=next")
        self.assertEqual(len(self.wait_outbox(28)), 28)


class NotWaitingTest(DaemonCase):
    """What is there but wrong at start still stops the daemon, as before:
    waiting is for what is missing."""

    def run_daemon(self):
        return subprocess.run([KALLAD, "--config", self.prog.conf, "--now", NOW],
                              capture_output=True, text=True, timeout=10)

    def test_broken_configuration_exits_78(self):
        os.unlink(self.prog.db)
        self.prog.edit_conf("= 21:00-07:00", "= nonsense")
        p = self.run_daemon()
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("quiet-hours", p.stderr)

    def test_broken_calendar_exits_78(self):
        with open(os.path.join(self.prog.dir, "programme.ics"), "w", encoding="utf-8") as f:
            f.write("BEGIN:VCALENDAR\r\nnonsense\r\n")
        p = self.run_daemon()
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("programme.ics", p.stderr)


if __name__ == "__main__":
    main()
