"""An SMTP sink for madoguchi's integration tests and benchmarks (aiosmtpd only).

    /usr/bin/python3 tests/support/smtp_sink.py --port P --dir D [--exit-on-stdin-eof]

Listens on 127.0.0.1:P (P = 0 picks a free port) and prints "READY <port>" once listening.
Every accepted message becomes two files, each written to a temporary name and renamed:

    D/<n>.envelope   line 1: MAIL FROM address (empty for <>), then one RCPT TO address a line
    D/<n>.eml        the message data exactly as received (dot-stuffing undone)

<n> is a six-digit counter that continues after the files already in D, so a restarted sink
never overwrites. The envelope is renamed into place first: when <n>.eml exists, so does its
envelope.

With --auth USER:PASSWORD the sink requires AUTH (PLAIN or LOGIN; allowed without TLS, it is
a loopback test server) and accepts only that pair.

With --tls CERT:KEY the sink offers STARTTLS with that certificate chain and key; adding
--implicit-tls makes it speak TLS from the first byte instead (SMTPS).

D/mode is read at every RCPT and DATA, so tests switch behaviour without a restart:
    accept         (default, also when the file is missing)
    tempfail       451 to RCPT TO          permfail       550 to RCPT TO
    tempfail-data  451 after the data      permfail-data  554 after the data
    greylist       451 to RCPT TO the first time an address is given, 250 from then on
    552-data       552 after the data (message too big, storage exceeded: permanent)
    drop-after-data
                   the message is taken (written as above) and the connection closed after
                   the final dot, without an answer: the client cannot know it was taken
    endless-reply  the answer to RCPT TO is a line without end ("250-xxx…", never a line
                   end), sent as fast as the client reads
An address after the mode ("552-data a@example.jp") limits it to transactions with that
recipient; the others are accepted. Every refusal appends a line "MODE RCPT..." to D/refused.
"""

import argparse
import asyncio
import os
import re
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLIES = {
    "tempfail": "451 4.3.0 Sink in tempfail mode, try again later",
    "permfail": "550 5.1.1 Sink in permfail mode: mailbox unavailable",
    "tempfail-data": "451 4.3.0 Sink in tempfail mode, try again later",
    "permfail-data": "554 5.6.0 Sink in permfail mode: message refused",
    "greylist": "451 4.7.1 Greylisted: try again later",
    "552-data": "552 5.3.4 Message too big for system: storage allocation exceeded",
}


class Sink:
    def __init__(self, directory):
        self.dir = directory
        numbers = [int(m.group(1)) for m in
                   (re.fullmatch(r"(\d+)\.eml", n) for n in os.listdir(directory)) if m]
        self.count = max(numbers, default=0)
        # Addresses already greylisted once.
        self.greylisted = set()

    def mode(self, recipients):
        """The mode for a transaction to `recipients`."""
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                words = f.read().split()
        except FileNotFoundError:
            words = []
        if not words:
            return "accept"
        if len(words) > 1 and words[1] not in recipients:
            return "accept"
        return words[0]

    def refuse(self, mode, recipients):
        with open(os.path.join(self.dir, "refused"), "a") as f:
            f.write(" ".join([mode] + list(recipients)) + "\n")
        return REPLIES.get(mode)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.mode([address])
        if mode in ("tempfail", "permfail"):
            return self.refuse(mode, [address])
        if mode == "endless-reply":
            self.refuse(mode, [address])
            chunk = b"x" * 65536
            try:
                server._writer.write(b"250-")
                while True:
                    server._writer.write(chunk)
                    await server._writer.drain()
            except ConnectionError:
                return "421 gone"
        if mode == "greylist" and address not in self.greylisted:
            self.greylisted.add(address)
            return self.refuse(mode, [address])
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode(envelope.rcpt_tos)
        if mode in ("tempfail-data", "permfail-data", "552-data"):
            return self.refuse(mode, envelope.rcpt_tos)
        stem = self.store(envelope)
        if mode == "drop-after-data":
            # Taken, but the answer never comes: the client sees the connection go.
            server.transport.abort()
        return "250 OK: queued as " + stem

    def store(self, envelope):
        self.count += 1
        stem = "%06d" % self.count
        lines = [envelope.mail_from or ""] + list(envelope.rcpt_tos)
        self.write(stem + ".envelope", ("\n".join(lines) + "\n").encode("utf-8"))
        self.write(stem + ".eml", envelope.original_content)
        return stem


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
    parser.add_argument("--tls", metavar="CERT:KEY", help="offer STARTTLS with this certificate")
    parser.add_argument("--implicit-tls", action="store_true",
                        help="with --tls: TLS from the first byte instead of STARTTLS")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (the harness died without cleaning up)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args.dir)
    options = {}
    if args.auth:
        user, password = (x.encode() for x in args.auth.split(":", 1))

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (user, password)
            # handled=False: aiosmtpd then answers a failure with 535 itself.
            return AuthResult(success=ok, handled=False)

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    implicit = None
    if args.tls:
        cert, key = args.tls.split(":", 1)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if args.implicit_tls:
            implicit = context
        else:
            options.update(tls_context=context)
    loop = asyncio.get_running_loop()
    # A fixed hostname: aiosmtpd would otherwise look up the FQDN on every connection.
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", enable_SMTPUTF8=True, **options),
        host="127.0.0.1", port=args.port, reuse_address=True, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    print("READY", port, flush=True)
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)),
                         daemon=True).start()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
