#!/usr/bin/python3
"""Writes every kind of message kallad makes, for fixed inputs, with one
binary or two, and compares them byte for byte: the check that a change
to how messages are built (caching, encoders) left the mail the same.

    bench/compare_messages.py OLD_KALLAD NEW_KALLAD   # prints differences; exit 1 if any
    bench/compare_messages.py --keep DIR KALLAD       # writes the corpus into DIR

The corpus: the example programme (config/) with extra participants whose
names and organisations are hard on the encoders (quotes, non-ASCII, long
names, ';' and ':' for the calendar's CN=, an English speaker), passed
through its whole year with `--once` at fixed times (invitations, deadline
reminders, material with attachments, session reminders), then the
calendar changed (a session moved into the autumn's repeated hour, a place
changed, a session added in the spring gap) and a session cancelled
(updates, new invites, cancels), then sends and previews by hand. Each
message is keyed by step and Message-ID; the Date is --now's, so two
runs of one binary give the same bytes."""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)

EXTRA = [
    ("sean.obrien@example.org", 'Seán "Ó" O\'Brien-Ñúñez, Jr.', "Dún Laoghaire; Rathdown",
     "councillor: chair", "en", "registered"),
    ("lang.namn@example.se",
     "Karl-Johan Åkesson Östergren Lindqvist Björklund Söderström Hägglund Wästberg",
     "Region Västra Götaland med en mycket lång organisationsbeteckning som inte får plats",
     "ordförande", "sv", "registered"),
    ("tecken@example.se", "Märta\tÖ. \"Tecken\" ; Semikolon, Kolon: Backslash\\",
     "Kommun = Lika med =?utf-8?q?x?=", "råd", "sv", "registered"),
    ("english.only@example.org", "Plain Ascii Person", "Town Council", "mayor", "en",
     "registered"),
    ("inbjuden@example.se", "Inbjuden Person", "Kommun", "råd", "sv", "invited"),
]

ATTACH = [
    ("sean.obrien@example.org", "material", "basfakta-lund.pdf"),
    ("lang.namn@example.se", "material", "basfakta-umea.pdf"),
]

EXTRA_SESSION = (
    "BEGIN:VEVENT\r\nUID:styra-leda-2020-4@example.org\r\nDTSTAMP:20191001T080000Z\r\n"
    "DTSTART;TZID=Europe/Stockholm:20200329T023000\r\n"
    "DTEND;TZID=Europe/Stockholm:20200329T110000\r\n"
    "SUMMARY:Extra: vårens glapp – en lång rubrik med många ord som ska vikas i kalendern\r\n"
    "LOCATION:Sal \"A\"\\; våning 3\\, Stockholm\r\n"
    "DESCRIPTION:Rad ett\\nRad två med = och trailing space \\nRad tre\\n.punkt\\nFrom here\r\n"
    "SEQUENCE:0\r\nSTATUS:CONFIRMED\r\nCATEGORIES:session\r\nEND:VEVENT\r\n")


def setup(tmp):
    d = os.path.join(tmp, "prog")
    shutil.copytree(os.path.join(SOURCE, "config"), d)
    con = sqlite3.connect(os.path.join(d, "registrations.db"))
    for f in ("registrations.sql", "participants.sql"):
        with open(os.path.join(SOURCE, "config", f), encoding="utf-8") as fh:
            con.executescript(fh.read())
    con.executemany("INSERT INTO participants(email, name, organisation, role, language, status,"
                    " registered_at, updated_at) VALUES (?,?,?,?,?,?,'2019-11-01 10:00',"
                    "'2019-11-01 10:00')", EXTRA)
    con.executemany("INSERT INTO attachments(email, message, path) VALUES (?,?,?)", ATTACH)
    con.commit()
    con.close()
    return os.path.join(d, "kallad.conf")


def edit_calendar(conf, step):
    ics = os.path.join(os.path.dirname(conf), "programme.ics")
    with open(ics, encoding="utf-8", newline="") as f:
        text = f.read()
    if step == "change":
        # Session 2 into the repeated hour of 25 October (written in UTC),
        # session 3 to another place, and a fourth session in the spring gap.
        text = text.replace("DTSTART;TZID=Europe/Stockholm:20200312T100000",
                            "DTSTART;TZID=Europe/Stockholm:20201025T023000")
        text = text.replace("DTEND;TZID=Europe/Stockholm:20200313T130000",
                            "DTEND;TZID=Europe/Stockholm:20201025T025000")
        head, rest = text.split("UID:styra-leda-2020-3@example.org", 1)
        loc = rest.index("LOCATION:")
        end = rest.index("\r\n", loc)
        rest = rest[:loc] + "LOCATION:Nya lokalen\\, Gamla stan" + rest[end:]
        text = head + "UID:styra-leda-2020-3@example.org" + rest
        text = text.replace("BEGIN:VTODO", EXTRA_SESSION + "BEGIN:VTODO", 1)
    elif step == "cancel":
        head, rest = text.split("UID:styra-leda-2020-3@example.org", 1)
        rest = rest.replace("STATUS:CONFIRMED", "STATUS:CANCELLED", 1)
        rest = rest.replace("SEQUENCE:0", "SEQUENCE:1", 1)
        text = head + "UID:styra-leda-2020-3@example.org" + rest
    with open(ics, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def corpus(kallad, tmp):
    """{(step, Message-ID or name): bytes} and the commands' outputs."""
    conf = setup(tmp)
    outbox = os.path.join(os.path.dirname(conf), "state", "outbox", "new")
    # One Message-ID for one key in both runs: the state made by a command
    # that sends nothing, its salt none (as a ledger from before salts; a
    # binary from before them makes the same IDs).
    subprocess.run([kallad, "--config", conf, "--unsuppress", "nobody@example.org"],
                   capture_output=True)
    con = sqlite3.connect(os.path.join(os.path.dirname(conf), "state", "state.db"))
    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('message-id-salt', '')")
    con.commit()
    con.close()
    seen, out, log = set(), {}, []

    def run(step, *args):
        p = subprocess.run([kallad, "--config", conf, *args], capture_output=True)
        log.append((step, args, p.returncode, p.stdout))
        if os.path.isdir(outbox):
            for name in sorted(os.listdir(outbox)):
                if name in seen:
                    continue
                seen.add(name)
                with open(os.path.join(outbox, name), "rb") as f:
                    data = f.read()
                mid = next((l for l in data.split(b"\r\n") if l.startswith(b"Message-ID:")),
                           name.encode())
                out[(step, mid.decode())] = data
        return p

    times = ["2019-11-20T08:00:00+01:00", "2019-11-29T09:00:00+01:00",
             "2019-12-06T09:00:00+01:00", "2019-12-12T09:00:00+01:00",
             "2020-02-06T09:00:00+01:00", "2020-02-18T09:00:00+01:00"]
    for t in times:
        run("once " + t, "--once", "--now", t)
    edit_calendar(conf, "change")
    run("change", "--once", "--now", "2020-02-19T08:00:00+01:00")
    edit_calendar(conf, "cancel")
    run("cancel", "--once", "--now", "2020-02-19T10:00:00+01:00")
    s1, s4 = "styra-leda-2020-1@example.org", "styra-leda-2020-4@example.org"
    run("send-now update", "--send-now", "update", "--session", s1, "--to",
        "anna.berglund@gavle.example.se", "--force", "--now", "2020-02-19T11:00:00+01:00")
    run("send-now cancel", "--send-now", "cancel", "--session", s4, "--to",
        "sean.obrien@example.org", "--now", "2020-02-19T11:00:00+01:00")
    run("send-now invite all", "--send-now", "invite", "--session", s4, "--all", "--force",
        "--now", "2020-02-19T11:30:00+01:00")
    for who in ("anna.berglund@gavle.example.se", "sean.obrien@example.org",
                "tecken@example.se", "sofia.nyberg@regionuppsala.example.se"):
        for msg, extra in (("invite", ["--session", s4]), ("session-reminder", ["--session", s1]),
                           ("cancel", ["--session", s4]), ("material", []),
                           ("deadline-reminder", ["--deadline", "anmalan-2020@example.org"])):
            p = run(f"preview {msg} {who}", "--preview", msg, "--to", who, *extra, "--force",
                    "--now", "2020-02-19T12:00:00+01:00")
            out[(f"preview {msg} {who}", "stdout")] = p.stdout
    return out, log


def main():
    args = sys.argv[1:]
    keep = None
    if args[:1] == ["--keep"]:
        keep, args = args[1], args[2:]
    results = []
    for k in args:
        tmp = tempfile.mkdtemp(prefix="kallad-msgs-")
        try:
            results.append(corpus(os.path.abspath(k), tmp))
        finally:
            shutil.rmtree(tmp, True)
    if keep:
        os.makedirs(keep, exist_ok=True)
        for i, ((step, mid), data) in enumerate(sorted(results[0][0].items())):
            with open(os.path.join(keep, f"{i:04d}.eml"), "wb") as f:
                f.write(data)
    msgs = results[0][0]
    print(f"{len(msgs)} messages and previews"
          f" ({sum(1 for k in msgs if k[1] != 'stdout')} from the outbox)")
    if len(results) < 2:
        return 0
    a, b = results[0][0], results[1][0]
    bad = 0
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            bad += 1
            print(f"differs: {key[0]}: {key[1]}")
    for (s1, args1, rc1, _), (s2, args2, rc2, _) in zip(results[0][1], results[1][1]):
        if rc1 != rc2:
            bad += 1
            print(f"exit status differs: {s1}: {rc1} vs {rc2}")
    print(f"{'all the same' if not bad else f'{bad} differ'}: {sys.argv[-2]} vs {sys.argv[-1]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
