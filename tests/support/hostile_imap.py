"""A small IMAP server that misbehaves on purpose, for madoguchi's tests (standard library only).

    /usr/bin/python3 tests/support/hostile_imap.py --port P --dir D [--exit-on-stdin-eof]

Listens on 127.0.0.1:P (P = 0 picks a free port) and prints "READY <port>" once listening. It
speaks as much IMAP4rev1 as the desk uses, without TLS and with any user and password: the
greeting, CAPABILITY (IMAP4rev1 UIDPLUS MOVE IDLE), LOGIN, LIST, CREATE, SUBSCRIBE, SELECT
(UIDVALIDITY 1, EXISTS), UID SEARCH, UID FETCH (UID, RFC822.SIZE, INTERNALDATE, BODY.PEEK[]),
UID MOVE, IDLE, NOOP and LOGOUT; anything else is answered BAD.

    D/inbox/*.eml   the messages of INBOX, UIDs in name order; files added later are picked up
                    at the next SELECT, UID SEARCH, NOOP, or while idling
    D/state         rewritten after every move: one line "UID FOLDER NAME" per message
    D/log           one line per connection ("C<n> connect") and per command ("C<n> <line>")
    D/mode          the behaviour, read at every command (missing or empty: normal)

Modes (each hits where the desk is most exposed: the answer to a body fetch, BODY.PEEK[]):
    normal            a well-behaved server
    stall             half of the first message's literal, then silence (the connection stays
                      open until the client gives up)
    literal [N]       announces a literal of N bytes (default 2147483648, 2 GiB), sends 64 KiB
                      of it, then silence
    garbage           random bytes and non-IMAP lines instead of the answer, then silence
    endless-line      "* OK " and then text without end, as fast as the client reads
    trickle           "* OK still here" every 0.3 s and never the answer
    drop              answers every command, then closes the connection
    drop-each-once    the first time each kind of command after SELECT comes (UID SEARCH, the
                      size fetch, the body fetch, IDLE, NOOP), it is carried out and the
                      connection closed before the tagged answer; the first UID MOVE closes
                      the connection before the move happens, the second after it happened
"""

import argparse
import asyncio
import os
import re
import sys
import threading

CAPABILITIES = "IMAP4rev1 UIDPLUS MOVE IDLE"
FOLDERS = ("INBOX", "Processed", "Quarantine")


class Closed(Exception):
    """The connection is to end now, without another word."""


class Mailbox:
    """All the server's messages: (uid, folder, name, bytes), shared by every connection."""

    def __init__(self, directory):
        self.dir = directory
        self.inbox = os.path.join(directory, "inbox")
        os.makedirs(self.inbox, exist_ok=True)
        self.messages = []
        self.seen = set()
        self.next_uid = 1
        self.connections = 0
        # The kinds of command drop-each-once has dropped.
        self.dropped = set()
        self.scan()

    def scan(self):
        """Picks up new files in D/inbox; true when there were any."""
        names = sorted(n for n in os.listdir(self.inbox)
                       if n.endswith(".eml") and n not in self.seen)
        for name in names:
            with open(os.path.join(self.inbox, name), "rb") as f:
                data = f.read()
            self.messages.append({"uid": self.next_uid, "folder": "INBOX", "name": name,
                                  "data": data})
            self.seen.add(name)
            self.next_uid += 1
        if names:
            self.save()
        return bool(names)

    def folder(self, name):
        return [m for m in self.messages if m["folder"] == name]

    def save(self):
        path = os.path.join(self.dir, "state")
        with open(path + ".tmp", "w") as f:
            for m in self.messages:
                f.write("%d %s %s\n" % (m["uid"], m["folder"], m["name"]))
        os.rename(path + ".tmp", path)

    def mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                words = f.read().split()
        except FileNotFoundError:
            words = []
        return words or ["normal"]

    def log(self, line):
        with open(os.path.join(self.dir, "log"), "a") as f:
            f.write(line + "\n")


def uid_set(text, known):
    """The UIDs of an IMAP sequence set (`1:3,5`, `*`) among `known`."""
    top = max(known, default=0)
    wanted = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        low = top if low == "*" else int(low)
        high = low if not high else (top if high == "*" else int(high))
        low, high = min(low, high), max(low, high)
        wanted.update(u for u in known if low <= u <= high)
    return sorted(wanted)


def internal_date(uid):
    return '"25-Nov-2026 10:%02d:00 +0900"' % (uid % 60)


class Connection:
    def __init__(self, box, reader, writer):
        self.box = box
        self.reader = reader
        self.writer = writer
        box.connections += 1
        self.number = box.connections
        self.selected = False

    async def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def silence(self):
        """Says nothing more; returns when the client has gone."""
        while await self.reader.read(65536):
            pass
        raise Closed()

    async def serve(self):
        self.box.log("C%d connect" % self.number)
        await self.send("* OK [CAPABILITY %s] hostile test server ready\r\n" % CAPABILITIES)
        while True:
            line = await self.reader.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            self.box.log("C%d %s" % (self.number, text))
            tag, _, rest = text.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "UID":
                sub, _, args = args.partition(" ")
                command = "UID " + sub.upper()
            mode = self.box.mode()
            drop_here = False
            if self.selected and mode[0] == "drop-each-once":
                kind = command + (" body" if "BODY.PEEK[]" in args.upper() else "")
                if kind == "UID MOVE" and kind + " unseen" not in self.box.dropped:
                    self.box.dropped.add(kind + " unseen")
                    raise Closed()
                drop_here = kind not in self.box.dropped
                self.box.dropped.add(kind)
            done = await self.answer(tag, command, args, mode)
            if drop_here:
                raise Closed()
            await self.send("%s %s\r\n" % (tag, done))
            if mode[0] == "drop" or command == "LOGOUT":
                raise Closed()

    async def answer(self, tag, command, args, mode):
        """Sends the untagged part of the answer; returns the tagged status line's text."""
        if command == "CAPABILITY":
            await self.send("* CAPABILITY %s\r\n" % CAPABILITIES)
            return "OK CAPABILITY completed"
        if command == "LOGIN":
            return "OK LOGIN completed"
        if command == "NOOP":
            await self.announce()
            return "OK NOOP completed"
        if command == "LOGOUT":
            await self.send("* BYE logging out\r\n")
            return "OK LOGOUT completed"
        if command == "LIST":
            for name in FOLDERS:
                await self.send('* LIST () "/" "%s"\r\n' % name)
            return "OK LIST completed"
        if command == "CREATE":
            if args.strip('"') in FOLDERS:
                return "NO [ALREADYEXISTS] Mailbox already exists"
            return "NO [CANNOT] Only the three folders exist here"
        if command == "SUBSCRIBE":
            return "OK SUBSCRIBE completed"
        if command == "SELECT":
            if args.strip('"') != "INBOX":
                return "NO [NONEXISTENT] Only INBOX can be selected"
            self.box.scan()
            await self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                            "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Flags permitted\r\n"
                            "* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
                            "* OK [UIDNEXT %d] Predicted next UID\r\n"
                            % (len(self.box.folder("INBOX")), self.box.next_uid))
            self.selected = True
            return "OK [READ-WRITE] SELECT completed"
        if not self.selected:
            return "BAD Unknown command or not selected"
        if command == "UID SEARCH":
            self.box.scan()
            uids = " ".join(str(m["uid"]) for m in self.box.folder("INBOX"))
            await self.send(("* SEARCH %s" % uids).rstrip() + "\r\n")
            return "OK SEARCH completed"
        if command == "UID FETCH":
            return await self.fetch(args, mode)
        if command == "UID MOVE":
            return await self.move(args)
        if command == "IDLE":
            return await self.idle()
        return "BAD Unknown command"

    async def announce(self):
        if self.box.scan():
            await self.send("* %d EXISTS\r\n" % len(self.box.folder("INBOX")))

    async def fetch(self, args, mode):
        match = re.fullmatch(r"(\S+) \((.*)\)", args)
        if not match:
            return "BAD Cannot parse the fetch"
        inbox = self.box.folder("INBOX")
        by_uid = {m["uid"]: (seq, m) for seq, m in enumerate(inbox, 1)}
        wanted = uid_set(match.group(1), list(by_uid))
        body = "BODY.PEEK[]" in match.group(2).upper()
        if body and mode[0] != "normal" and wanted:
            await self.misbehave(mode, by_uid[wanted[0]])
        for uid in wanted:
            seq, m = by_uid[uid]
            head = "* %d FETCH (UID %d INTERNALDATE %s RFC822.SIZE %d" % (
                seq, uid, internal_date(uid), len(m["data"]))
            if body:
                await self.send(("%s BODY[] {%d}\r\n" % (head, len(m["data"]))).encode()
                                + m["data"] + b")\r\n")
            else:
                await self.send(head + ")\r\n")
        return "OK FETCH completed"

    async def misbehave(self, mode, at):
        seq, m = at
        data = m["data"]
        head = "* %d FETCH (UID %d INTERNALDATE %s RFC822.SIZE %d BODY[] " % (
            seq, m["uid"], internal_date(m["uid"]), len(data))
        kind = mode[0]
        if kind == "stall":
            await self.send(("%s{%d}\r\n" % (head, len(data))).encode() + data[:len(data) // 2])
            await self.silence()
        if kind == "literal":
            size = int(mode[1]) if len(mode) > 1 else 2147483648
            await self.send("%s{%d}\r\n" % (head, size))
            await self.send(b"x" * min(size, 65536))
            await self.silence()
        if kind == "garbage":
            await self.send(os.urandom(32768) + b"\r\nHTTP/1.1 400 Bad Request\r\n"
                            b"SSH-2.0-OpenSSH_9.2\r\n* 1 FETCH (((((\r\n)))\r\n"
                            + bytes(range(256)) + b"\r\n" + os.urandom(32768))
            await self.silence()
        if kind == "endless-line":
            await self.send("* OK ")
            chunk = b"a" * 65536
            while True:
                await self.send(chunk)
        if kind == "trickle":
            while True:
                await self.send("* OK still here\r\n")
                await asyncio.sleep(0.3)

    async def move(self, args):
        match = re.fullmatch(r'(\S+) "?([^"]*)"?', args)
        if not match or match.group(2) not in FOLDERS[1:]:
            return "NO [TRYCREATE] No such folder"
        inbox = self.box.folder("INBOX")
        wanted = set(uid_set(match.group(1), [m["uid"] for m in inbox]))
        gone = [seq for seq, m in enumerate(inbox, 1) if m["uid"] in wanted]
        for m in inbox:
            if m["uid"] in wanted:
                m["folder"] = match.group(2)
        self.box.save()
        for seq in reversed(gone):
            await self.send("* %d EXPUNGE\r\n" % seq)
        return "OK MOVE completed"

    async def idle(self):
        await self.send("+ idling\r\n")
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), 0.2)
            except asyncio.TimeoutError:
                await self.announce()
                continue
            if not line:
                raise Closed()
            if line.strip().upper() == b"DONE":
                return "OK IDLE terminated"
            return "BAD Expected DONE"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (the harness died without cleaning up)")
    args = parser.parse_args()
    box = Mailbox(args.dir)

    async def client(reader, writer):
        try:
            await Connection(box, reader, writer).serve()
        except (Closed, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, host="127.0.0.1", port=args.port,
                                        reuse_address=True)
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
