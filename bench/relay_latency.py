#!/usr/bin/python3
"""kallad's rate into a relay that takes a while to accept each message
(not a test): tests/smtp_tls_server.py --plain --data-delay SECONDS on
loopback, as a relay that scans each message before its reply to ".";
`kallad --once` sends N invites with [smtp] connections = 1, 2, 4, ...,
taking turns, `--rounds` times each. Prints messages per second.

usage: bench/relay_latency.py [--kallad BINARY] [--invites N] [--delay S]
                              [--connections 1,4] [--rounds N]"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (bench/run.py: programme(), use_sink())

SERVER = os.path.join(run.SOURCE, "tests", "smtp_tls_server.py")


def once(kallad, tmp, n, delay, connections):
    port = run.free_port()
    d = tempfile.mkdtemp(dir=tmp)
    srv = subprocess.Popen(["/usr/bin/python3", SERVER, "--port", str(port), "--dir", d,
                            "--plain", "--data-delay", str(delay)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        srv.stdout.readline()
        run.wait_port(port)
        conf = run.programme(tmp, n)
        run.use_sink(conf, port, connections)
        start = time.monotonic()
        p = subprocess.run([kallad, "--config", conf, "--once", "--now", run.NOW],
                           capture_output=True, text=True)
        elapsed = time.monotonic() - start
        got = sum(name.endswith(".eml") for name in os.listdir(d))
        if p.returncode != 0 or got != n:
            sys.exit(f"kallad sent {got} of {n}:\n{p.stderr[-2000:]}")
        return n / elapsed
    finally:
        srv.terminate()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kallad", default=os.path.join(run.SOURCE, "build-bench", "kallad"))
    ap.add_argument("--invites", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--connections", default="1,4")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    counts = [int(c) for c in a.connections.split(",")]
    rates = {c: [] for c in counts}
    tmp = tempfile.mkdtemp(prefix="kallad-latency-")
    try:
        for _ in range(a.rounds):
            for c in counts:
                rates[c].append(once(a.kallad, tmp, a.invites, a.delay, c))
    finally:
        shutil.rmtree(tmp, True)
    print(f"{a.invites} invites into a relay answering each \".\" after {a.delay} s "
          f"(tests/smtp_tls_server.py --data-delay), {a.rounds} rounds each, taking turns:")
    base = statistics.median(rates[counts[0]])
    for c in counts:
        m = statistics.median(rates[c])
        print(f"  connections = {c:2d}: median {m:6.1f} messages/s "
              f"(runs: {', '.join(f'{x:.1f}' for x in rates[c])}); x{m / base:.2f}")


if __name__ == "__main__":
    main()
