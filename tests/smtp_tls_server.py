#!/usr/bin/python3
"""A real SMTP server on loopback for tests/test_transport.c (aiosmtpd).

By default it offers STARTTLS and AUTH, demands STARTTLS before anything
else (require_starttls) and before AUTH (auth_require_tls), and accepts one
user/password. Each message received is written to DIR as N.eml holding
the exact DATA bytes (dot-unstuffed, line endings as sent), with N.env
beside it: "from <addr>", "rcpt <addr>", "tls yes|no", "user NAME|-".
Files appear by rename, so a reader never sees half a message.

--plain drops TLS and AUTH; --slow-first S delays the reply to the first
message's final "." by S seconds (to test clients that time out there).
Runs until SIGTERM or SIGINT.
"""
import argparse
import asyncio
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, directory, slow_first):
        self.directory = directory
        self.slow_first = slow_first
        self.count = 0

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.directory, name))

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        env = ["from " + envelope.mail_from]
        env += ["rcpt " + r for r in envelope.rcpt_tos]
        env.append("tls " + ("yes" if session.ssl else "no"))
        user = session.auth_data.login.decode() if session.authenticated else "-"
        env.append("user " + user)
        self._write("%d.env" % n, ("\n".join(env) + "\n").encode())
        self._write("%d.eml" % n, envelope.original_content)
        if n == 1 and self.slow_first > 0:
            await asyncio.sleep(self.slow_first)
        return "250 2.0.0 Ok: queued as %d" % n


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user", default="kallad")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--slow-first", type=float, default=0)
    args = ap.parse_args()

    kwargs = {}
    if not args.plain:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs = dict(tls_context=ctx, require_starttls=True, auth_require_tls=True,
                      auth_required=True, authenticator=authenticator(args.user, args.password))
    ctl = Controller(Recorder(args.dir, args.slow_first), hostname="127.0.0.1",
                     port=args.port, ready_timeout=10, **kwargs)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    ctl.start()
    print("ready", flush=True)
    done.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
