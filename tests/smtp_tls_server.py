#!/usr/bin/python3
"""A real SMTP server on loopback for the tests (aiosmtpd), which can be
made to misbehave the way real relays do.

By default it offers STARTTLS and AUTH, demands STARTTLS before anything
else (require_starttls) and before AUTH (auth_require_tls), and accepts one
user/password. Each message received is written to DIR as N.eml holding
the exact DATA bytes (dot-unstuffed, line endings as sent), with N.env
beside it: "from <addr>", "rcpt <addr>", "tls yes|no", "user NAME|-".
Files appear by rename, so a reader never sees half a message. What
happens is appended to DIR/events, one line each ("connect", "auth ok",
"auth failed", "mail 250", "mail 450", "rcpt 451 ADDR", "idle 421", ...),
so a test can count connections and refusals.

--plain drops TLS and AUTH; --slow-first S delays the reply to the first
message's final "." by S seconds (to test clients that time out there);
--data-delay S delays the reply to every final "." by S seconds (a relay
that scans each message: connections in parallel overlap these);
--slow-rcpt ADDR=S delays it by S seconds for messages to ADDR instead.
N.conn beside it holds "peer PORT" (the client's port: one per
connection) and "began T" / "ended T" (MAIL FROM accepted, reply to "."
about to go).
Faults, each as a real relay words it:
  --mail-reply TEXT       every MAIL FROM gets TEXT (a refused sender)
  --rcpt-reply ADDR=TEXT  RCPT TO:<ADDR> gets TEXT (a greylisted recipient)
  --rate N/SECONDS        Postfix's anvil: after N messages in SECONDS from
                          the first, MAIL gets "450 4.7.1 Error: too much
                          mail from 127.0.0.1" until the window ends
  --idle SECONDS          after SECONDS without a command, "421 4.4.2 ...
                          Error: timeout exceeded" and the connection closes
  --data-reply TEXT       the final "." gets TEXT
  --silent                accept connections and never greet
  --reject-in-data TEXT   (plain) DATA gets its 354, then at once TEXT,
                          and the connection is closed with the data unread
Runs until SIGTERM or SIGINT.
"""
import argparse
import asyncio
import os
import signal
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Events:
    def __init__(self, directory):
        self.path = os.path.join(directory, "events")
        self.lock = threading.Lock()

    def add(self, text):
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write("%.3f %s\n" % (time.time(), text))


class Recorder:
    def __init__(self, directory, events, args):
        self.directory = directory
        self.events = events
        self.slow_first = args.slow_first
        self.data_delay = args.data_delay
        self.slow_rcpts = {a: float(t) for a, t in (r.split("=", 1) for r in args.slow_rcpt)}
        self.mail_reply = args.mail_reply
        self.mail_reply_after = args.mail_reply_after
        self.fixed = args.fixed
        self.slow_refusal = args.slow_refusal
        self.mails = self.refused = 0
        self.data_reply = args.data_reply
        self.rcpt_replies = dict(r.split("=", 1) for r in args.rcpt_reply)
        self.rate = None
        if args.rate:
            n, secs = args.rate.split("/")
            self.rate = (int(n), float(secs))
        self.window = (0.0, 0)  # (start, messages accepted in it)
        self.count = 0

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.directory, name))

    def _over_rate(self):
        if not self.rate:
            return False
        n, secs = self.rate
        start, used = self.window
        now = time.time()
        if now - start >= secs:
            self.window = (now, 0)
            return False
        return used >= n

    def _refuses_mail(self):
        """--mail-reply, from the MAIL after the first --mail-reply-after,
        until the file --fixed exists (an administrator put it right)."""
        self.mails += 1
        return (self.mail_reply and self.mails > self.mail_reply_after and
                not (self.fixed and os.path.exists(self.fixed)))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self._refuses_mail():
            # Every refusal after the first takes --slow-refusal seconds.
            self.refused += 1
            if self.refused > 1 and self.slow_refusal:
                await asyncio.sleep(self.slow_refusal)
            reply = self.mail_reply
        elif self._over_rate():
            reply = "450 4.7.1 Error: too much mail from 127.0.0.1"
        else:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            envelope.began = time.time()
            reply = "250 2.1.0 Ok"
        self.events.add("mail " + reply[:3])
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            self.events.add("rcpt %s %s" % (reply[:3], address))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            self.events.add("data " + self.data_reply[:3])
            return self.data_reply
        self.count += 1
        n = self.count
        if self.rate:
            start, used = self.window
            self.window = (start if used else time.time(), used + 1)
        delay = max([self.slow_rcpts.get(r, self.data_delay) for r in envelope.rcpt_tos]
                    or [self.data_delay])
        if delay > 0:
            await asyncio.sleep(delay)
        env = ["from " + envelope.mail_from]
        env += ["rcpt " + r for r in envelope.rcpt_tos]
        env.append("tls " + ("yes" if session.ssl else "no"))
        user = session.auth_data.login.decode() if session.authenticated else "-"
        env.append("user " + user)
        self._write("%d.conn" % n, ("peer %d\nbegan %.6f\nended %.6f\n" % (
            session.peer[1], getattr(envelope, "began", 0.0), time.time())).encode())
        self._write("%d.env" % n, ("\n".join(env) + "\n").encode())
        self._write("%d.eml" % n, envelope.original_content)
        self.events.add("data 250")
        if n == 1 and self.slow_first > 0:
            await asyncio.sleep(self.slow_first)
        return "250 2.0.0 Ok: queued as %d" % n


class FaultySMTP(SMTP):
    """Logs connections; on idle timeout says 421 first, as Postfix does."""

    events = None

    def connection_made(self, transport):
        if not getattr(self, "_counted", False):
            self._counted = True  # STARTTLS calls this again
            self.events.add("connect")
        super().connection_made(transport)

    def _timeout_cb(self):
        self.events.add("idle 421")
        try:
            self._writer.write(b"421 4.4.2 mail.example.org Error: timeout exceeded\r\n")
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass
        self.transport.close()


class FaultyController(Controller):
    def factory(self):
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


def authenticator(user, password, events):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        events.add("auth ok" if ok else "auth failed")
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


async def silent(port, events, ready):
    """Accepts and holds each connection without a word."""
    held = []

    async def hold(reader, writer):
        events.add("connect")
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    ready.set()
    async with server:
        await server.serve_forever()


async def reject_in_data(port, text, events, ready):
    """Takes MAIL and RCPT, then answers in the middle of the data."""

    async def session(reader, writer):
        events.add("connect")
        writer.write(b"220 mail.example.org ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 mail.example.org\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                events.add("data " + text[:3])
                writer.write(text.encode() + b"\r\n")
                await writer.drain()
                break
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n")
                break
            else:
                writer.write(b"250 Ok\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", port)
    ready.set()
    async with server:
        await server.serve_forever()


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
    ap.add_argument("--data-delay", type=float, default=0)
    ap.add_argument("--slow-rcpt", action="append", default=[])
    ap.add_argument("--mail-reply")
    ap.add_argument("--mail-reply-after", type=int, default=0)
    ap.add_argument("--fixed")
    ap.add_argument("--slow-refusal", type=float, default=0)
    ap.add_argument("--rcpt-reply", action="append", default=[])
    ap.add_argument("--rate")
    ap.add_argument("--idle", type=float, default=300)
    ap.add_argument("--data-reply")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--reject-in-data")
    args = ap.parse_args()
    events = Events(args.dir)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.silent or args.reject_in_data:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        serve = (silent(args.port, events, ready) if args.silent else
                 reject_in_data(args.port, args.reject_in_data, events, ready))
        threading.Thread(target=lambda: loop.run_until_complete(serve), daemon=True).start()
        ready.wait(10)
        print("ready", flush=True)
        done.wait()
        return

    kwargs = {"timeout": args.idle}
    if not args.plain:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True,
                      auth_required=True,
                      authenticator=authenticator(args.user, args.password, events))
    FaultySMTP.events = events
    ctl = FaultyController(Recorder(args.dir, events, args), hostname="127.0.0.1",
                           port=args.port, ready_timeout=10, **kwargs)
    ctl.start()
    # start() greets itself once to know the server is up: not a client.
    open(events.path, "w").close()
    print("ready", flush=True)
    done.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
