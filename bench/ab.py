#!/usr/bin/python3
"""Two (or more) kallad binaries side by side: `kallad --once` sending the
benchmark's invites into one smtp-sink, over one connection and over
several, the binaries taking turns round after round (loopback rates on a
shared machine drift by a third within minutes: only alternating runs
compare). Prints each binary's messages per second, every run and the
median, the median CPU time (user and system) of its runs: a steadier
measure of kallad's own work than the rate, and how many of the
machine's cores kallad and smtp-sink kept busy together (their CPU time
over the run's). Not a test.

usage: bench/ab.py [--invites N] [--sessions 1|3] [--rounds R] [--connections N[,N...]]
                   BINARY...
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: the programme, the sink)


def cpu_of(pid):
    """User and system seconds of a running process (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--invites", type=int, default=4000,
                    help="participants, each invited to every session")
    ap.add_argument("--sessions", type=int, default=1, choices=(1, 3),
                    help="the example programme's first session only, or all three: "
                         "invites due at once a participant")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--connections", default="4",
                    help="also over N connections ([smtp] connections); "
                         "several: N,N,...")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kallad-ab-")
    port = run.free_port()
    sink = run.sink(port)
    try:
        run.wait_port(port)
        conf = run.programme(tmp, a.invites, a.sessions)
        run.use_sink(conf, port, 1)
        state = os.path.join(os.path.dirname(conf), "state")
        rates, cpu, busy = {}, {}, {}
        conns = [1] + [int(c) for c in a.connections.split(",")]
        for _ in range(a.rounds):
            for b in a.binaries:
                for c in conns:
                    with open(conf, encoding="utf-8") as f:
                        text = f.read()
                    with open(conf, "w", encoding="utf-8") as f:
                        f.write(text.replace(text[text.rindex("connections = "):],
                                             f"connections = {c}\n"))
                    shutil.rmtree(state, ignore_errors=True)
                    used = resource.getrusage(resource.RUSAGE_CHILDREN)
                    sink_before = cpu_of(sink.pid)
                    start = time.monotonic()
                    p = subprocess.run([b, "--config", conf, "--once", "--now", run.NOW],
                                       capture_output=True, text=True)
                    took = time.monotonic() - start
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if p.returncode != 0:
                        sys.exit(f"{b} failed:\n{p.stderr[-2000:]}")
                    sent = int(p.stdout.split()[0])  # "N sent, ..."
                    rates.setdefault((b, c), []).append(sent / took)
                    own = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
                    cpu.setdefault((b, c), []).append(own)
                    busy.setdefault((b, c), []).append(
                        (own + cpu_of(sink.pid) - sink_before) / took)
        print(f"{a.invites} participants, {a.sessions} invite{'s' if a.sessions > 1 else ''} "
              f"each, into smtp-sink, {a.rounds} rounds, taking turns:")
        for (b, c), r in sorted(rates.items()):
            print(f"  {b}, {c} connection{'s' if c > 1 else ''}: median "
                  f"{statistics.median(r):6.0f} messages/s, CPU "
                  f"{statistics.median(cpu[(b, c)]) * 1000:5.0f} ms, cores busy "
                  f"{statistics.median(busy[(b, c)]):.2f}  (runs: "
                  f"{', '.join(f'{x:.0f}' for x in r)})")
        for b in a.binaries:
            one = statistics.median(rates[(b, 1)])
            print(f"  {b}: " + ", ".join(
                f"{c} connections {statistics.median(rates[(b, c)]) / one:.2f} times one"
                for c in conns[1:]))
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
