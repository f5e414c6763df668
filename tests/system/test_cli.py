"""The real kallad binary on the example programme: --check, --plan,
--preview, --once into the outbox, --status, and errors that name the
file and line."""

import datetime
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KalladCase, Programme, check_messages, main, message_hash, parse  # noqa: E402

BEFORE_DEADLINE = "2019-11-20T08:00:00+01:00"
S1 = "styra-leda-2020-1@example.org"
S2 = "styra-leda-2020-2@example.org"
DEADLINE = "anmalan-2020@example.org"
ANNA = "anna.berglund@gavle.example.se"
HENRIK = "henrik.dahl@karlstad.example.se"
KARIN = "karin.hedlund@skane.example.se"


def plan_lines(out):
    return [line.split("\t") for line in out.splitlines() if line]


class CheckTest(KalladCase):
    def test_example_is_valid(self):
        p = self.prog.run("--check", check=0)
        self.assertIn("3 sessions, 1 deadlines", p.stdout)
        self.assertIn("10 registered, 2 invited, 1 waitlisted, 1 cancelled", p.stdout)
        self.assertIn("configuration OK", p.stdout)

    def test_config_errors_name_file_line_key(self):
        self.prog.edit_conf("to      = registered", "to      = everybody")
        self.prog.append_conf("[smtp]\nbogus = 1\n[rule manual]\nmessage = invite")
        p = self.prog.run("--check", check=78)
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: \[rule manual\]: .*--send-now")
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: to: .*everybody")
        self.assertRegex(p.stderr, r"kallad\.conf:\d+: bogus: ")
        # Every error at once, not only the first.
        self.assertGreaterEqual(len(p.stderr.strip().splitlines()), 2)

    def test_broken_calendar_names_line(self):
        ics = os.path.join(self.prog.dir, "programme.ics")
        with open(ics, encoding="utf-8") as f:
            text = f.read()
        # Drop the first session's DTEND: that session is skipped, named.
        broken = re.sub(r"DTEND;TZID=Europe/Stockholm:20200221T130000\r?\n", "", text, count=1)
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(broken)
        p = self.prog.run("--check", check=0)
        self.assertRegex(p.stderr, r"programme\.ics:\d+: .*no DTEND; skipped \(UID styra-leda-2020-1@example\.org\)")
        self.assertIn("2 sessions, 1 deadlines", p.stdout)
        self.assertTrue(p.stdout.rstrip().endswith("configuration OK; 1 warning, 0 rows skipped"), p.stdout)
        # A file whose BEGIN/END do not nest is rejected whole.
        broken = text.replace("END:VEVENT", "END:VTODO", 1)
        with open(ics, "w", encoding="utf-8", newline="") as f:
            f.write(broken)
        p = self.prog.run("--check", check=78)
        self.assertRegex(p.stderr, r"programme\.ics:\d+: END:VTODO does not close BEGIN:VEVENT")

    def test_bad_row_is_reported_and_rest_goes_on(self):
        self.prog.sql("INSERT INTO participants(email, name, status, updated_at) "
                      "VALUES ('not an address', 'X', 'registered', '2019-11-01 10:00')")
        # Reported, the rest used, and --check fails: someone gets no mail.
        p = self.prog.run("--check", check=1)
        self.assertIn("not an address", p.stderr)
        self.assertIn("10 registered", p.stdout)
        self.assertIn("1 warning, 1 row skipped, 1 of them participant", p.stdout.splitlines()[-1])

    def test_usage_errors(self):
        self.assertEqual(self.prog.run("--plan", "--failed").returncode, 64)
        self.assertEqual(self.prog.run("--bogus").returncode, 64)
        self.assertEqual(self.prog.run("--now", "yesterday", "--plan").returncode, 64)


class PlanTest(KalladCase):
    def test_plan_before_deadline(self):
        p = self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0)
        lines = plan_lines(p.stdout)
        self.assertTrue(all(len(line) == 5 for line in lines), lines[:3])
        # In due order.
        dues = [line[0] for line in lines]
        self.assertEqual(dues, sorted(dues))
        self.assertIn(["2019-11-29T09:00:00+01:00", "deadline-reminder", HENRIK, DEADLINE,
                       "registration-deadline"], lines)
        self.assertIn(["2019-12-12T09:00:00+01:00", "deadline-reminder", HENRIK, DEADLINE,
                       "registration-deadline"], lines)
        self.assertIn(["2020-02-06T09:00:00+01:00", "session-reminder", ANNA, S1,
                       "session-reminders"], lines)
        self.assertIn(["2020-02-18T09:00:00+01:00", "session-reminder", ANNA, S1,
                       "session-reminders"], lines)
        self.assertIn([BEFORE_DEADLINE, "invite", ANNA, S1, "-"], lines)
        # Absent from session 2: no reminder for it, unless --all shows why.
        self.assertNotIn(KARIN, [line[2] for line in lines if line[3] == S2])
        every = plan_lines(self.prog.run("--plan", "--all", "--now", BEFORE_DEADLINE,
                                         check=0).stdout)
        self.assertIn(["skipped:absent", "session-reminder", KARIN, S2, "session-reminders"],
                      every)
        # Nobody cancelled is ever planned.
        self.assertNotIn("helena.strand@gotland.example.se", p.stdout)

    def test_days_limits_the_horizon(self):
        lines = plan_lines(self.prog.run("--plan", "--days", "10", "--now", BEFORE_DEADLINE,
                                         check=0).stdout)
        self.assertTrue(lines)
        self.assertTrue(all(line[0] < "2019-11-30T09:00:01" for line in lines), lines)
        self.assertTrue(any(line[1] == "deadline-reminder" for line in lines))

    def test_empty_plan(self):
        # After the programme nothing is left to plan: no lines, exit 0
        # (an empty plan once tripped UBSan in the sort).
        p = self.prog.run("--plan", "--now", "2020-06-01T10:00:00+02:00", check=0)
        self.assertEqual(p.stdout, "")

    def test_many_lines_sorted_on_disk(self):
        # 3000 more participants, some in upper case and beyond ASCII: the
        # lines come out sorted by time, then bytewise, as they were when
        # kept in memory and sorted with strcmp; and nothing is left in
        # TMPDIR after.
        names = [f"{c}{i:04d}@example.org" for i in range(1000) for c in ("z", "A", "å")]
        con = sqlite3.connect(self.prog.db)
        con.executemany("INSERT INTO participants(email, name, language, status, registered_at,"
                        " updated_at) VALUES (?, 'X', 'sv', 'registered', '2019-11-01 10:00',"
                        " '2019-11-01 10:00')", [(n,) for n in names])
        con.commit()
        con.close()
        tmp = os.path.join(self.tmpdir, "tmp")
        os.mkdir(tmp)
        p = self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0, env={"TMPDIR": tmp})
        raw = p.stdout.encode().splitlines()
        self.assertGreater(len(raw), 3000 * 4)
        key = [(datetime.datetime.fromisoformat(line.split(b"\t")[0].decode()), line)
               for line in raw]
        self.assertEqual(key, sorted(key))
        self.assertEqual(os.listdir(tmp), [])

    def test_plan_writes_nothing(self):
        self.prog.run("--plan", "--now", BEFORE_DEADLINE, check=0)
        self.assertFalse(os.path.exists(self.prog.state))


class MessageIdTest(KalladCase):
    NOW = "2019-11-20T08:00:00+01:00"

    def ids(self, prog, paths):
        out = {}
        for p in paths:
            m = parse(p)
            out[str(m["Message-ID"])] = m
        return out

    def test_two_programmes_never_share_a_message_id(self):
        # The same session UIDs, rules and organizer domain (a programme
        # copied from another): the same delivery keys. Gmail drops a
        # message whose Message-ID it has already seen, so each programme
        # salts its own.
        other = Programme(os.path.join(self.tmpdir, "other"))
        self.prog.run("--once", "--now", self.NOW, check=0)
        other.run("--once", "--now", self.NOW, check=0)
        a = set(self.ids(self.prog, self.prog.outbox_messages()))
        b = set(self.ids(other, other.outbox_messages()))
        self.assertEqual(len(a), 28)
        self.assertEqual(len(b), 28)
        self.assertEqual(a & b, set())

    def test_a_ledger_from_before_salts_keeps_its_message_ids(self):
        # Sent before this version (no salt recorded): what it sends from
        # now on, repeats of what may have gone among it, keeps the
        # unsalted Message-IDs.
        self.prog.run("--once", "--now", self.NOW, check=0)
        con = sqlite3.connect(self.prog.state)
        con.execute("DELETE FROM meta WHERE key = 'message-id-salt'")
        con.commit()
        con.close()
        before = set(self.prog.outbox_messages())
        self.prog.run("--once", "--now", "2020-02-06T09:00:00+01:00", check=0)
        later = self.ids(self.prog, set(self.prog.outbox_messages()) - before)
        self.assertGreater(len(later), 0)
        con = sqlite3.connect(self.prog.state)
        keys = [k for k, in con.execute("SELECT key FROM deliveries WHERE state = 1 "
                                        "AND message != 'invite'")]
        con.close()
        self.assertEqual({i.split("@")[0].lstrip("<") for i in later},
                         {message_hash(k) for k in keys})


class SendTest(KalladCase):
    def test_once_into_outbox_exactly_once(self):
        p = self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        files = self.prog.outbox_messages()
        # One invite per registered participant per session they attend.
        self.assertEqual(len(files), 10 * 3 - 2, p.stderr)
        check_messages(self, files)
        invites = [parse(f) for f in files]
        subjects = {str(m["Subject"]) for m in invites}
        self.assertTrue(any("Leda samhällsutveckling" in s for s in subjects), subjects)
        self.assertEqual(self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0).returncode, 0)
        self.assertEqual(len(self.prog.outbox_messages()), len(files))
        status = self.prog.run("--status", check=0).stdout
        self.assertIn("sent\t28", status)

    def test_reminders_fall_due(self):
        self.prog.run("--once", "--now", BEFORE_DEADLINE, check=0)
        before = set(self.prog.outbox_messages())
        self.prog.run("--once", "--now", "2019-11-29T09:00:30+01:00", check=0)
        new = [parse(f) for f in set(self.prog.outbox_messages()) - before]
        self.assertEqual(sorted(str(m["To"].addresses[0].addr_spec) for m in new),
                         sorted([HENRIK, "ingrid.wallin@regiondalarna.example.se"]))

    def test_preview_every_message(self):
        out = os.path.join(self.tmpdir, "preview")
        os.mkdir(out)
        kinds = ["invite", "session-reminder", "update", "material", "deadline-reminder"]
        for kind in kinds:
            path = os.path.join(out, kind + ".eml")
            # An update of a session that never changed is refused unless forced.
            force = ["--force"] if kind == "update" else []
            self.prog.run("--preview", kind, "--to", ANNA, "--out", path,
                          "--now", BEFORE_DEADLINE, *force, check=0)
        p = self.prog.run("--preview", "update", "--to", ANNA, "--now", BEFORE_DEADLINE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has not changed", p.stderr)
        # A cancel to one who attends, holding nothing yet, is refused
        # unless forced (kallad would invite her again).
        p = self.prog.run("--preview", "cancel", "--session", S1, "--to", ANNA,
                          "--now", BEFORE_DEADLINE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("they attend this session", p.stderr)
        self.prog.run("--preview", "cancel", "--session", S1, "--to", ANNA, "--force",
                      "--out", os.path.join(out, "cancel.eml"), "--now", BEFORE_DEADLINE,
                      check=0)
        kinds.append("cancel")
        check_messages(self, [os.path.join(out, k + ".eml") for k in kinds])
        material = parse(os.path.join(out, "material.eml"))
        names = [part.get_filename() for part in material.iter_attachments()]
        self.assertIn("basfakta-gavle.pdf", names)

    def test_send_now_dry_run_and_once_only(self):
        now = ["--now", BEFORE_DEADLINE]
        p = self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA,
                          "--dry-run", *now, check=0)
        self.assertIn(f"would send session-reminder to {ANNA}", p.stdout)
        self.assertEqual(self.prog.outbox_messages(), [])
        self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA, *now,
                      check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 1)
        again = self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA,
                              *now)
        self.assertEqual(again.returncode, 1)
        self.assertIn("already sent", again.stderr)
        # A dry run says what the real run would: already sent, exit 1.
        dry = self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA,
                            "--dry-run", *now)
        self.assertEqual(dry.returncode, 1)
        self.assertIn(f"already sent session-reminder to {ANNA}", dry.stdout)
        self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA,
                      "--force", *now, check=0)
        self.assertEqual(len(self.prog.outbox_messages()), 2)
        # Nothing about a session that has begun, unless forced.
        late = self.prog.run("--send-now", "session-reminder", "--session", S1, "--to", ANNA,
                             "--now", "2020-02-20T11:00:00+01:00")
        self.assertEqual(late.returncode, 1)
        self.assertIn("has begun", late.stderr)
        self.assertEqual(len(self.prog.outbox_messages()), 2)


if __name__ == "__main__":
    main()
