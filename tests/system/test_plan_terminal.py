#!/usr/bin/env python3
"""--plan for a person (issue 13): on a terminal (a real pseudo-terminal,
Python's pty) aligned columns in words, with the participant's name, the
session or deadline by title and date, and the handle --session or
--deadline takes; piped, SPEC's tab-separated lines, unchanged."""

import os
import pty
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from kallad_test import KALLAD, KalladCase, main  # noqa: E402

NOW = "2019-11-20T08:00:00+01:00"
TITLES = {
    "styra-leda-2020-1@example.org": ("Leda samhällsutveckling", "20 Feb 10:00", "--session 1"),
    "styra-leda-2020-2@example.org": ("Styrning och risker", "12 Mar 10:00", "--session 2"),
    "styra-leda-2020-3@example.org": ("Dialog och samspel", "7 May 10:00", "--session 3"),
    "anmalan-2020@example.org": ("Sista anmälningsdag", "Friday 13 December 2019",
                                 "--deadline 1"),
}
SPEC_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d|held|skipped:[a-z-]+)"
                       r"\t[a-z-]+\t[^\t\s]+@[^\t\s]+\t[^\t\s]+\t[^\t\s]+$")


def on_terminal(prog, *args):
    """Runs kallad with its stdout on a pseudo-terminal; returns what the
    terminal got (its CR LF as LF) and the exit status."""
    master, slave = pty.openpty()
    p = subprocess.Popen([KALLAD, "--config", prog.conf, *args], stdout=slave,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout=60)
    return out.decode("utf-8").replace("\r\n", "\n"), rc


def columns(header):
    """Where each column of the header starts, by name."""
    return {m.group(0): m.start() for m in re.finditer(r"[A-Z]+", header)}


class PlanOnTerminal(KalladCase):
    def names(self):
        con = sqlite3.connect(self.prog.db)
        names = dict(con.execute("SELECT email, name FROM participants"))
        con.close()
        return names

    def check_table(self, text, piped, why=False):
        rows = text.rstrip("\n").split("\n")
        head = columns(rows[0])
        want = ["WHEN", "MESSAGE", "TO", "FOR", "HANDLE"] + (["WHY"] if why else [])
        self.assertEqual(list(head), want, rows[0])
        rows = rows[1:]
        lines = [line.split("\t") for line in piped.splitlines()]
        # One row per line of the piped plan, in its order.
        self.assertEqual(len(rows), len(lines))
        names = self.names()
        starts = list(head.values())
        for row, line in zip(rows, lines):
            # Aligned: every column starts where its heading does, after
            # at least two spaces.
            for col in starts[1:]:
                self.assertEqual(row[col - 2:col], "  ", row)
                self.assertNotEqual(row[col], " ", row)
            cell = {name: row[start:(starts + [None])[i + 1]].strip()
                    for i, (name, start) in enumerate(head.items())}
            when, message, email, uid, _rule = line[:5]
            title, date, handle = TITLES[uid]
            self.assertEqual(cell["MESSAGE"], message)
            self.assertEqual(cell["TO"], names[email] or email)
            self.assertEqual(cell["FOR"], f'"{title}" ({date})')
            self.assertEqual(cell["HANDLE"], handle)
            if when[0].isdigit():
                # The due time in words: "29 Nov 9:00" for 2019-11-29T09:00.
                day, month = int(when[8:10]), ["Nov", "Dec", "Jan", "Feb", "Mar", "Apr",
                                               "May"][(int(when[5:7]) - 11) % 12]
                self.assertEqual(cell["WHEN"], f"{day} {month} {int(when[11:13])}:{when[14:16]}")
            else:
                self.assertEqual(cell["WHEN"], when)
            if why:
                self.assertEqual(cell["WHY"], line[5])
        return rows

    def test_columns_in_words_piped_unchanged(self):
        piped = self.prog.run("--plan", "--now", NOW, check=0).stdout
        # Piped: SPEC's five tab-separated fields, nothing of the table.
        self.assertTrue(piped)
        for line in piped.splitlines():
            self.assertRegex(line, SPEC_LINE)
        self.assertNotIn("WHEN", piped)
        self.assertNotIn("Anna Berglund", piped)
        text, rc = on_terminal(self.prog, "--plan", "--now", NOW)
        self.assertEqual(rc, 0)
        rows = self.check_table(text, piped)
        self.assertIn("Anna Berglund", text)
        self.assertIn("Åsa Granqvist", text)
        self.assertTrue(any("--deadline 1" in r and "Henrik Dahl" in r for r in rows))
        # A handle shown is one --session takes, for that session.
        p = self.prog.run("--preview", "session-reminder", "--session", "2", "--to",
                          "anna.berglund@gavle.example.se", "--now", NOW, check=0)
        self.assertIn("Subject: =?UTF-8?Q?P=C3=A5minnelse=3A_Styrning_och_risker", p.stdout)

    def test_skipped_and_explained(self):
        piped = self.prog.run("--plan", "--all", "--now", NOW, check=0).stdout
        text, rc = on_terminal(self.prog, "--plan", "--all", "--now", NOW)
        self.assertEqual(rc, 0)
        rows = self.check_table(text, piped)
        self.assertTrue(any(r.startswith("skipped:absent") and "Karin Hedlund" in r
                            for r in rows))
        anna = "anna.berglund@gavle.example.se"
        piped = self.prog.run("--plan", "--explain", anna, "--now", NOW, check=0).stdout
        text, rc = on_terminal(self.prog, "--plan", "--explain", anna, "--now", NOW)
        self.assertEqual(rc, 0)
        self.check_table(text, piped, why=True)

    def test_long_title_is_cut_and_control_characters_go(self):
        path = os.path.join(self.prog.dir, "programme.ics")
        with open(path, encoding="utf-8", newline="") as f:
            ics = f.read()
        long_title = "Dialog och samspel " + "mycket " * 20
        ics = ics.replace("SUMMARY:Dialog och samspel", "SUMMARY:" + long_title.rstrip()
                          + "\\tmed\\nslut")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(ics)
        piped = self.prog.run("--plan", "--now", NOW, check=0).stdout
        text, _ = on_terminal(self.prog, "--plan", "--now", NOW)
        rows = text.rstrip("\n").split("\n")
        head = columns(rows[0])
        long_rows = [r for r in rows if "--session 3" in r]
        self.assertTrue(long_rows)
        for r in long_rows:
            cell = r[head["FOR"]:head["HANDLE"]].rstrip()
            # Capped at 56 characters, the last one "…"; no tab, no newline.
            self.assertEqual(len(cell), 56, cell)
            self.assertTrue(cell.startswith('"Dialog och samspel mycket'), cell)
            self.assertTrue(cell.endswith("…"), cell)
            self.assertEqual(r[head["HANDLE"]:].strip(), "--session 3")
        self.assertEqual(len(rows) - 1, len(piped.splitlines()))
        self.assertFalse(any("\t" in r for r in rows))

    def test_empty_plan_says_so(self):
        text, rc = on_terminal(self.prog, "--plan", "--now", "2020-06-01T10:00:00+02:00")
        self.assertEqual((text, rc), ("nothing planned\n", 0))
        self.assertEqual(self.prog.run("--plan", "--now", "2020-06-01T10:00:00+02:00",
                                       check=0).stdout, "")


if __name__ == "__main__":
    main()
