"""Shared pieces of the system tests: a copy of the example programme in a
temporary folder, the real kallad binary, real SMTP servers on loopback."""

import email
import email.policy
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

SOURCE = os.environ.get("KALLAD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("KALLAD_SHARED_DIR", os.path.join(SOURCE, "..", "shared"))
KALLAD = os.environ.get("KALLAD_BIN", os.path.join(SOURCE, "build", "kallad"))
CHECK_MESSAGE = os.path.join(SOURCE, "tests", "check_message.py")
SHARED_CHECK_MESSAGE = os.path.join(SHARED, "tools", "check-message")
ORGANIZER = "lena.lindgren@example.org"
SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Programme:
    """The example programme copied to a temporary folder, with its
    registration database built from the shipped SQL."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "programme")
        shutil.copytree(os.path.join(SOURCE, "config"), self.dir)
        self.conf = os.path.join(self.dir, "kallad.conf")
        self.db = os.path.join(self.dir, "registrations.db")
        self.state = os.path.join(self.dir, "state", "state.db")
        self.outbox = os.path.join(self.dir, "state", "outbox", "new")
        if os.path.exists(self.db):
            os.unlink(self.db)
        con = sqlite3.connect(self.db)
        for f in ("registrations.sql", "participants.sql"):
            with open(os.path.join(SOURCE, "config", f), encoding="utf-8") as fh:
                con.executescript(fh.read())
        con.commit()
        con.close()

    def sql(self, statement, *args):
        con = sqlite3.connect(self.db)
        con.execute(statement, args)
        con.commit()
        con.close()

    def edit_conf(self, old, new):
        with open(self.conf, encoding="utf-8") as f:
            text = f.read()
        if old not in text:
            raise AssertionError(f"{old!r} not in kallad.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new))

    def append_conf(self, text):
        with open(self.conf, "a", encoding="utf-8") as f:
            f.write("\n" + text + "\n")

    def use_smtp(self, port, extra=""):
        self.append_conf(f"[smtp]\nurl = smtp://127.0.0.1:{port}\ntls = none\n"
                         f"max-per-minute = 0\ntimeout = 5\n{extra}")

    def run(self, *args, check=None, timeout=120, env=None):
        cmd = [KALLAD, "--config", self.conf, *args]
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)
        if check is not None and p.returncode != check:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}, not {check}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def outbox_messages(self):
        if not os.path.isdir(self.outbox):
            return []
        return sorted(os.path.join(self.outbox, n) for n in os.listdir(self.outbox))


def parse(path_or_bytes):
    raw = path_or_bytes
    if isinstance(raw, str):
        with open(raw, "rb") as f:
            raw = f.read()
    return email.message_from_bytes(raw, policy=email.policy.default)


def check_messages(testcase, paths, organizer=ORGANIZER):
    """Runs tests/check_message.py (the interop rules, read with Python's
    email and icalendar) over the files, and ../shared/tools/check-message
    too when it is there; asserts all pass."""
    checkers = [["/usr/bin/python3", CHECK_MESSAGE, "--organizer", organizer]]
    if os.access(SHARED_CHECK_MESSAGE, os.X_OK):
        checkers.append([SHARED_CHECK_MESSAGE])
    for cmd in checkers:
        p = subprocess.run([*cmd, *paths], capture_output=True, text=True)
        testcase.assertEqual(p.returncode, 0, f"{cmd[-1]}:\n{p.stdout}{p.stderr}")
        testcase.assertIn(f"{len(paths)} passed, 0 failed", p.stdout)


class SmtpSink:
    """Postfix's smtp-sink on a loopback port, dumping each message to a
    folder (-d), with optional failure injection flags."""

    def __init__(self, tmp, *flags):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="sink-")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "root", "-d", os.path.join(self.dir, "%M."), *flags,
             f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port)

    def files(self):
        """The dump files, oldest first (their names are random)."""
        paths = [os.path.join(self.dir, n) for n in os.listdir(self.dir)]
        return sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, p))

    def messages(self):
        out = []
        for path in self.files():
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


class AioServer:
    """tests/smtp_tls_server.py (Debian's python3-aiosmtpd): plain, or with
    STARTTLS and AUTH (user kallad, password secret) when tls is a
    (cert, key) pair; its reply to the first message's final "." delayed by
    slow_first s; args add its fault options (--mail-reply, --rate, ...)."""

    def __init__(self, tmp, slow_first=0, tls=None, args=()):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="aio-")
        mode = ["--cert", tls[0], "--key", tls[1]] if tls else ["--plain"]
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(SOURCE, "tests", "smtp_tls_server.py"),
             "--port", str(self.port), "--dir", self.dir, *mode,
             "--slow-first", str(slow_first), *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()  # "ready"
        wait_port(self.port)
        # wait_port's probe is not a client either.
        time.sleep(0.1)
        open(os.path.join(self.dir, "events"), "w").close()

    def messages(self):
        out = []
        for n in sorted(os.listdir(self.dir), key=lambda n: (len(n), n)):
            if n.endswith(".eml"):
                with open(os.path.join(self.dir, n), "rb") as f:
                    out.append(f.read())
        return out

    def events(self):
        """What happened, in order, without the times: ["connect", "mail 250", ...]."""
        path = os.path.join(self.dir, "events")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [line.split(" ", 1)[1].rstrip("\n") for line in f]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.proc.stdout.close()


def private_ca(tmp, san="IP:127.0.0.1", ca=None):
    """A private CA and a certificate it signed for san (an openssl
    subjectAltName list; the first name is the CN too), with openssl:
    returns (ca.pem, server cert, server key). With ca (a ca.pem this made
    before), that CA signs instead of a new one."""
    d = tempfile.mkdtemp(dir=tmp, prefix="ca-")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    if ca:
        ca_pem, ca_key = ca, os.path.join(os.path.dirname(ca), "ca.key")
    else:
        ca_pem, ca_key = p("ca.pem"), p("ca.key")
        run("req", "-x509", *ec, "-keyout", ca_key, "-out", ca_pem, "-days", "2",
            "-subj", "/CN=kallad test private CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    cn = san.split(",")[0].split(":", 1)[1]
    run("req", *ec, "-keyout", p("srv.key"), "-out", p("srv.csr"), "-subj", f"/CN={cn}")
    with open(p("ext"), "w", encoding="ascii") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", p("srv.csr"), "-CA", ca_pem, "-CAkey", ca_key,
        "-CAcreateserial", "-CAserial", p("ca.srl"), "-out", p("srv.pem"), "-days", "2",
        "-extfile", p("ext"))
    return ca_pem, p("srv.pem"), p("srv.key")


def message_hash(key):
    """daemon/util.c hash_hex: two FNV-1a 64 passes, forwards and back."""
    data, mask = key.encode(), (1 << 64) - 1
    a, b = 0xcbf29ce484222325, 0x84222325cbf29ce4
    for i in range(len(data)):
        a = ((a ^ data[i]) * 0x100000001b3) & mask
        b = ((b ^ data[len(data) - 1 - i]) * 0x100000001b3) & mask
    return f"{a:016x}{b:016x}"


class KalladCase(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="kallad-test-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.prog = Programme(self.tmpdir)

    def sink(self, *flags):
        s = SmtpSink(self.tmpdir, *flags)
        self.addCleanup(s.stop)
        return s


def main():
    unittest.main(verbosity=2)
