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
}


class Sink:
    def __init__(self, directory):
        self.dir = directory
        numbers = [int(m.group(1)) for m in
                   (re.fullmatch(r"(\d+)\.eml", n) for n in os.listdir(directory)) if m]
        self.count = max(numbers, default=0)

    def mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                return f.read().strip() or "accept"
        except FileNotFoundError:
            return "accept"

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.mode()
        if mode in ("tempfail", "permfail"):
            return REPLIES[mode]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode()
        if mode in ("tempfail-data", "permfail-data"):
            return REPLIES[mode]
        self.count += 1
        stem = "%06d" % self.count
        lines = [envelope.mail_from or ""] + list(envelope.rcpt_tos)
        self.write(stem + ".envelope", ("\n".join(lines) + "\n").encode("utf-8"))
        self.write(stem + ".eml", envelope.original_content)
        return "250 OK: queued as " + stem


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
