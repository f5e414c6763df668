#!/usr/bin/python3
"""kallad's benchmarks (not tests): end-to-end messages per second into a
loopback smtp-sink over one connection and over several, beside
smtp-source -d sending kallad's own message over one and four, and
libcurl alone, in the same run; instructions per message (callgrind);
peak memory with growing numbers of participants; system calls while idle.

usage: bench/run.py [--build DIR] [--invites N] [--connections N] [--memory N,N,...]
                    [--idle SECONDS] [--plan-memory N,N,...] [--send-now N]
                    [--wake N,N,...] [--wake-lead SECONDS] [--callgrind N,M]
                    [--kallad BINARY]
(0 or "" leaves a measure out)
Prints what it measured and the commands it ran."""

import argparse
import datetime
import os
import resource
import shutil
import socket
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
NOW = "2019-11-20T08:00:00+01:00"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("sink did not start")


def programme(tmp, participants, sessions=1):
    d = os.path.join(tempfile.mkdtemp(dir=tmp), f"p{participants}")
    shutil.copytree(os.path.join(SOURCE, "config"), d)
    db = os.path.join(d, "registrations.db")
    con = sqlite3.connect(db)
    with open(os.path.join(SOURCE, "config", "registrations.sql"), encoding="utf-8") as f:
        con.executescript(f.read())
    con.executemany(
        "INSERT INTO participants(email, name, organisation, role, status, registered_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?)",
        ((f"deltagare{i}@kommun{i % 290}.example.se", f"Deltagare Nummer {i}",
          f"Kommun {i % 290}", "kommunstyrelsens ordförande", "registered",
          "2019-11-01 10:00", "2019-11-01 10:00") for i in range(participants)))
    con.commit()
    con.close()
    ics = os.path.join(d, "programme.ics")
    with open(ics, encoding="utf-8") as f:
        text = f.read()
    if sessions == 1:
        # Keep only the first session: one invite per participant.
        head, rest = text.split("BEGIN:VEVENT", 1)
        first, rest = rest.split("END:VEVENT", 1)
        tail = rest[rest.index("BEGIN:VTODO"):]
        text = head + "BEGIN:VEVENT" + first + "END:VEVENT\r\n" + tail
    with open(ics, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return os.path.join(d, "kallad.conf")


def use_sink(conf, port, connections=None):
    """Sends into the sink; `connections` writes [smtp] connections = N
    (None leaves kallad's default of one, and works with any kallad)."""
    with open(conf, "a", encoding="utf-8") as f:
        f.write(f"\n[smtp]\nurl = smtp://127.0.0.1:{port}\ntls = none\nmax-per-minute = 0\n")
        if connections is not None:
            f.write(f"connections = {connections}\n")


def supports_connections(kallad, tmp):
    """Whether this kallad knows [smtp] connections (its --check says)."""
    conf = programme(tmp, 1)
    use_sink(conf, 25, 2)
    p = subprocess.run([kallad, "--config", conf, "--check"], capture_output=True, text=True)
    return "connections" not in p.stderr + p.stdout or p.returncode == 0


def sink(port):
    return subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "root", f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_kallad(kallad, conf, *args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    p = subprocess.run([kallad, "--config", conf, *args], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"kallad failed:\n{p.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, peak if peak > before else None, p


def preview_size(kallad, conf):
    p = subprocess.run([kallad, "--config", conf, "--preview", "invite", "--to",
                        "deltagare1@kommun1.example.se", "--now", NOW],
                       capture_output=True)
    return len(p.stdout)


def build_curl_raw(tmp):
    out = os.path.join(tmp, "curl_raw")
    subprocess.run(["cc", "-O2", "-o", out, os.path.join(HERE, "curl_raw.c"), "-lcurl",
                    "-lpthread"],
                   check=True)
    return out


def outbox_message(kallad, tmp):
    """A message kallad wrote into its outbox (an invite of the bench
    programme), with LF line ends: smtp-source -F appends CRLF to each
    line, so on the wire it is the same size as kallad's own."""
    conf = programme(tmp, 2)
    run_kallad(kallad, conf, "--once", "--now", NOW)
    outbox = os.path.join(os.path.dirname(conf), "state", "outbox", "new")
    with open(os.path.join(outbox, sorted(os.listdir(outbox))[0]), "rb") as f:
        wire = f.read()
    path = os.path.join(tmp, "kallad-invite.eml")
    with open(path, "wb") as f:
        f.write(wire.replace(b"\r\n", b"\n"))
    return path, len(wire)


def rate_line(label, rates, what):
    return (f"  {label:<30} median {statistics.median(rates):6.0f} messages/s  "
            f"(runs: {', '.join(f'{x:.0f}' for x in rates)}; {what})")


def throughput(kallad, tmp, n, rounds, connections):
    """kallad (one connection, and `connections` if given), smtp-source
    with -d over one and over four connections, and libcurl alone take
    turns against one sink, `rounds` times each; loopback rates vary from
    run to run, so medians are compared."""
    rates = {}
    curl_raw = build_curl_raw(tmp)
    eml, size = outbox_message(kallad, tmp)
    if connections and not supports_connections(kallad, tmp):
        print(f"  (this kallad has no [smtp] connections: measured with one only)")
        connections = None
    port = free_port()
    s = sink(port)
    wait_port(port)
    source = ["/usr/sbin/smtp-source", "-d", "-m", str(n), "-F", eml,
              "-f", "program@example.org", "-t", "deltagare@kommun.example.se"]
    cmds = {}

    def timed(key, cmd):
        start = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rates.setdefault(key, []).append(n / (time.monotonic() - start))
        cmds[key] = cmd

    try:
        for r in range(rounds):
            for c in [None] + ([connections] if connections else []):
                os.makedirs(os.path.join(tmp, f"round{r}-{c}"))
                conf = programme(os.path.join(tmp, f"round{r}-{c}"), n)
                use_sink(conf, port, c)
                elapsed, _, p = run_kallad(kallad, conf, "--once", "--now", NOW)
                sent = int(p.stdout.split()[0])
                if sent != n:
                    sys.exit(f"kallad sent {sent} of {n}")
                rates.setdefault(("kallad", c), []).append(sent / elapsed)
            timed(("source", 1), source[:1] + ["-s", "1"] + source[1:] + [f"127.0.0.1:{port}"])
            timed(("source", 4), source[:1] + ["-s", "4"] + source[1:] + [f"127.0.0.1:{port}"])
            for threads in (1, 4):
                out = subprocess.run([curl_raw, f"smtp://127.0.0.1:{port}", eml, str(n),
                                      str(threads)],
                                     capture_output=True, text=True, check=True).stdout
                rates.setdefault(("curl", threads), []).append(float(out))
    finally:
        s.kill()
        s.wait()
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"throughput: {n} invites of {size} bytes, {rounds} rounds, taking turns")
    print(rate_line("kallad --once, 1 connection", rates[("kallad", None)],
                    "plan, build, claim, send, record"))
    if connections:
        print(rate_line(f"kallad --once, {connections} connections",
                        rates[("kallad", connections)], f"[smtp] connections = {connections}"))
    src = " ".join(cmds[("source", 1)][:-1]).replace(eml, "KALLAD-INVITE")
    print(rate_line("smtp-source -d, 1 connection", rates[("source", 1)], src + " 127.0.0.1:PORT"))
    print(rate_line("smtp-source -d, 4 connections", rates[("source", 4)], "-s 4"))
    print(rate_line("libcurl alone, 1 connection", rates[("curl", 1)],
                    "bench/curl_raw.c, kallad's invite, one reused handle"))
    print(rate_line("libcurl alone, 4 connections", rates[("curl", 4)],
                    "bench/curl_raw.c, a thread and a handle each"))
    print(f"  ratio kallad/smtp-source -d, 1 connection: {med[('kallad', None)] / med[('source', 1)]:.2f}")
    print(f"  ratio kallad/libcurl alone:                {med[('kallad', None)] / med[('curl', 1)]:.2f}")
    if connections:
        print(f"  ratio kallad {connections} connections / kallad 1:      "
              f"{med[('kallad', connections)] / med[('kallad', None)]:.2f}")
        print(f"  ratio kallad {connections} / smtp-source -d -s 4:       "
              f"{med[('kallad', connections)] / med[('source', 4)]:.2f}")
    print(f"  ratio smtp-source -d, 4 connections / 1:   {med[('source', 4)] / med[('source', 1)]:.2f}")


def callgrind(kallad, tmp, counts):
    """Instructions per message, which a busy machine does not change:
    `valgrind --tool=callgrind kallad --once` sending n invites into
    smtp-sink, for each n; the difference between two counts divided by
    the difference in messages is the cost of one more message, start-up
    and the programme's loading left out. message_build is the building
    of the message alone (inclusive, from callgrind_annotate)."""
    totals, builds = [], []
    port = free_port()
    s = sink(port)
    wait_port(port)
    try:
        for n in counts:
            os.makedirs(os.path.join(tmp, f"cg{n}"))
            conf = programme(os.path.join(tmp, f"cg{n}"), n)
            use_sink(conf, port)
            out = os.path.join(tmp, f"callgrind.{n}")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", kallad,
                   "--config", conf, "--once", "--now", NOW]
            subprocess.run(cmd, check=True, capture_output=True)
            total = 0
            with open(out, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        total = int(line.split()[1])
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                                 capture_output=True, text=True).stdout
            build = next((int(l.split()[0].replace(",", "")) for l in ann.splitlines()
                          if l.rstrip().endswith("[" + os.path.abspath(kallad) + "]")
                          and ":message_build " in l), 0)
            totals.append(total)
            builds.append(build)
    finally:
        s.kill()
        s.wait()
    print("instructions per message (callgrind; "
          "valgrind --tool=callgrind kallad --once, n invites into smtp-sink):")
    for n, t, b in zip(counts, totals, builds):
        print(f"  {n:6d} invites: {t:14,d} instructions in all, {t / n:10,.0f} a message; "
              f"message_build {b / n:9,.0f} a message")
    if len(counts) >= 2 and counts[-1] != counts[0]:
        d = (totals[-1] - totals[0]) / (counts[-1] - counts[0])
        print(f"  one more message costs {d:,.0f} instructions "
              f"(({counts[-1]} - {counts[0]}) invites)")


def memory(kallad, tmp, counts):
    print("peak memory (max RSS of kallad --once sending one invite each into smtp-sink):")
    for n in counts:
        conf = programme(tmp, n)
        port = free_port()
        s = sink(port)
        wait_port(port)
        try:
            use_sink(conf, port)
            # A fresh child per run: ru_maxrss of children is the largest so far,
            # so each run goes through its own python process.
            out = subprocess.run(
                [sys.executable, "-c",
                 "import resource,subprocess,sys;"
                 "subprocess.run(sys.argv[1:],check=True,capture_output=True);"
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
                 kallad, "--config", conf, "--once", "--now", NOW],
                check=True, capture_output=True, text=True).stdout
        finally:
            s.kill()
            s.wait()
        print(f"  {n:7d} participants: {int(out) / 1024:7.1f} MiB")


def max_rss(*cmd):
    """Peak RSS in KiB of cmd, run in a fresh child (ru_maxrss of children
    is the largest so far)."""
    return int(subprocess.run(
        [sys.executable, "-c",
         "import resource,subprocess,sys;"
         "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,"
         "stderr=subprocess.DEVNULL);"
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", *cmd],
        check=True, capture_output=True, text=True).stdout)


def plan_memory(kallad, tmp, counts):
    print("peak memory of kallad --plan (max RSS; every participant owes an invite):")
    for n in counts:
        conf = programme(tmp, n)
        kib = max_rss(kallad, "--config", conf, "--plan", "--now", NOW)
        print(f"  {n:7d} participants: {kib / 1024:7.1f} MiB")


def send_now(kallad, tmp, n, rounds):
    """kallad --send-now invite --all: claims in batches, then sends."""
    conf = programme(tmp, n)
    port = free_port()
    s = sink(port)
    wait_port(port)
    rates = []
    try:
        use_sink(conf, port)
        state = os.path.join(os.path.dirname(conf), "state")
        for _ in range(rounds):
            shutil.rmtree(state, True)
            elapsed, _, _ = run_kallad(kallad, conf, "--send-now", "invite", "--all",
                                       "--session", "styra-leda-2020-1@example.org",
                                       "--now", NOW)
            rates.append(n / elapsed)
    finally:
        s.kill()
        s.wait()
    print(f"--send-now invite --all to {n}, {rounds} rounds:")
    print(f"  median {statistics.median(rates):6.0f} messages/s  "
          f"(runs: {', '.join(f'{r:.0f}' for r in rates)})")


def wake(kallad, tmp, counts, lead=30):
    """How late a deadline reminder due for one participant among n goes:
    n registered (their invites sent first, into the outbox) and one
    invited, whose reminder is due at 09:00; the daemon starts `lead`
    seconds before (its first pass plans everyone; --now holds from the
    daemon's start) and the wake at 09:00 is timed from the due instant to
    the message's file in the outbox. The first pass must be over by then
    (its time is printed): else the lead is too short for n. Then a row is
    inserted into the registrations, as a registration form would: timed
    from the insert to the new participant's invite in the outbox."""
    print(f"a reminder for one participant among n, late by (daemon started {lead} s before):")
    for n in counts:
        conf = programme(tmp, n)
        con = sqlite3.connect(os.path.join(os.path.dirname(conf), "registrations.db"))
        con.execute("INSERT INTO participants(email, name, status, updated_at) VALUES"
                    " ('ensam@example.org', 'Ensam', 'invited', '2019-11-01 10:00')")
        con.commit()
        con.close()
        run_kallad(kallad, conf, "--once", "--now", NOW)
        outbox = os.path.join(os.path.dirname(conf), "state", "outbox", "new")
        # The invites of the set-up are not needed any more: only the ledger.
        shutil.rmtree(outbox)
        os.makedirs(outbox)
        at_start = datetime.datetime.fromisoformat("2019-11-29T09:00:00+01:00") - \
            datetime.timedelta(seconds=lead)
        log = open(os.path.join(tmp, f"wake{n}.log"), "w+")
        start = time.time()
        p = subprocess.Popen([kallad, "--config", conf, "--now", at_start.isoformat()],
                             stdout=subprocess.DEVNULL, stderr=log)
        due = start + lead
        new, first = [], None
        while time.time() < due + 60 and not new:
            new = os.listdir(outbox)
            if first is None:
                log.flush()
                with open(log.name, encoding="utf-8", errors="replace") as f:
                    done = [l for l in f if "planned everyone:" in l]
                if done:
                    first = (time.time() - start, done[0].split("planned everyone: ")[1].strip())
            time.sleep(0.01)
        # Then a registration form adds a participant: how long until the
        # daemon (inotify, reload, re-plan) has their invite in the outbox.
        joined = None
        if new:
            seen = set(os.listdir(outbox))
            con = sqlite3.connect(os.path.join(os.path.dirname(conf), "registrations.db"))
            con.execute("INSERT INTO participants(email, name, status, registered_at,"
                        " updated_at) VALUES ('ny@example.org', 'Ny', 'registered',"
                        " '2019-11-29 09:00', '2019-11-29 09:00')")
            con.commit()
            con.close()
            t0 = time.time()
            while time.time() < t0 + 600 and joined is None:
                if set(os.listdir(outbox)) - seen:
                    joined = time.time() - t0
                time.sleep(0.01)
        with open(f"/proc/{p.pid}/status", encoding="utf-8") as f:
            hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
        p.terminate()
        p.wait()
        log.close()
        said = f"first pass: {first[1]}" if first else "first pass not over"
        if first and first[0] > lead:
            said += ", over after the due time: measure with a longer --wake-lead"
        if not new:
            print(f"  {n:7d} participants: nothing sent within a minute ({said})")
            continue
        at = os.path.getmtime(os.path.join(outbox, new[0]))
        print(f"  {n:7d} participants: {at - due:6.2f} s  ({said}; daemon's peak RSS "
              f"{hwm / 1024:.1f} MiB)")
        print(f"  {'':7s} then a row inserted: its invite in the outbox after "
              + (f"{joined:.2f} s" if joined is not None else "more than 10 minutes"))


def idle(kallad, tmp, seconds):
    conf = programme(tmp, 10)
    p = subprocess.Popen([kallad, "--config", conf, "--now", NOW],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    tr = subprocess.run(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-p",
                         str(p.pid)], capture_output=True, text=True)
    p.terminate()
    p.wait()
    table = [l for l in tr.stderr.splitlines() if not l.startswith("strace:")]
    print(f"system calls while idle for {seconds} s (strace -c -p): "
          f"{'none' if not table else chr(10) + chr(10).join(table)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SOURCE, "build-bench"))
    ap.add_argument("--invites", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory", default="10000,100000")
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--plan-memory", default="10000,100000")
    ap.add_argument("--send-now", type=int, default=4000)
    ap.add_argument("--wake", default="10000")
    ap.add_argument("--connections", type=int, default=4,
                    help="also run kallad with [smtp] connections = N (0: not)")
    ap.add_argument("--callgrind", default="",
                    help="N,M: instructions per message of kallad --once over N and M invites")
    ap.add_argument("--wake-lead", type=int, default=30,
                    help="seconds between the daemon's start and the due time")
    ap.add_argument("--kallad", help="measure this binary instead of building one")
    a = ap.parse_args()
    if a.kallad:
        kallad = a.kallad
    else:
        subprocess.run(["cmake", "-S", SOURCE, "-B", a.build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", a.build, "-j", str(os.cpu_count()), "--target",
                        "kallad"], check=True, stdout=subprocess.DEVNULL)
        kallad = os.path.join(a.build, "kallad")
    tmp = tempfile.mkdtemp(prefix="kallad-bench-")
    try:
        if a.invites:
            throughput(kallad, tmp, a.invites, a.rounds, a.connections)
        if a.callgrind:
            callgrind(kallad, tmp, [int(x) for x in a.callgrind.split(",")])
        if a.memory:
            memory(kallad, tmp, [int(x) for x in a.memory.split(",")])
        if a.plan_memory:
            plan_memory(kallad, tmp, [int(x) for x in a.plan_memory.split(",")])
        if a.send_now:
            send_now(kallad, tmp, a.send_now, a.rounds)
        if a.wake:
            wake(kallad, tmp, [int(x) for x in a.wake.split(",")], a.wake_lead)
        if a.idle:
            idle(kallad, tmp, a.idle)
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
