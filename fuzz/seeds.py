#!/usr/bin/env python3
"""Seeds each target's working corpus (fuzz/corpus/TARGET/, git-ignored) from the committed
hand-made seeds (fuzz/seeds/TARGET/), the golden fixtures and, when given, the third-party
corpus folder (../shared/corpus; read in place, never copied into the repository).

Mail goes to mail_decide whole; its decoded parts feed the text targets: text/plain bodies
to form and staff_reply (staff replies with fixtures/staff_replies/internal.txt after a NUL),
text/html to html, format=flowed bodies to flowed (first byte the DelSp flag).
Usage: seeds.py REPO [THIRD_PARTY_CORPUS] [OUT] (OUT defaults to REPO/fuzz/corpus)"""
import email
import email.policy
import hashlib
import pathlib
import sys

MAX_SEED = 64 * 1024  # libFuzzer's -max_len in scripts/fuzz
repo = pathlib.Path(sys.argv[1])
third = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
out = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 else repo / "fuzz" / "corpus"
counts = {}


def add(target, data):
    if not data or len(data) > MAX_SEED:
        return
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    p = d / hashlib.sha1(data).hexdigest()
    if not p.exists():
        p.write_bytes(data)
        counts[target] = counts.get(target, 0) + 1


def parts(raw):
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype not in ("text/plain", "text/html"):
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, errors="replace")
            except LookupError:
                text = payload.decode("utf-8", errors="replace")
            flowed = (part.get_param("format") or "").lower() == "flowed"
            delsp = (part.get_param("delsp") or "").lower() == "yes"
            yield ctype, text, flowed, delsp
    except Exception:  # a seed extractor: skip what Python cannot read
        return


internal = (repo / "fixtures/staff_replies/internal.txt").read_bytes()
for target in (repo / "fuzz" / "seeds").iterdir():
    for f in target.iterdir():
        add(target.name, f.read_bytes())

mails = sorted((repo / "fixtures").glob("**/*.eml"))
mails += sorted((repo / "fixtures/demo/inbox").iterdir())
if third:
    mails += sorted(third.glob("**/*.eml")) + sorted(third.glob("**/*.raw"))
for path in mails:
    raw = path.read_bytes()
    add("mail_decide", raw)
    own = third is None or third not in path.parents
    for ctype, text, flowed, delsp in parts(raw):
        body = text.encode("utf-8")
        if ctype == "text/html":
            add("html", body)
        else:
            if flowed:
                add("flowed", bytes([1 if delsp else 0]) + body)
            if own or "【" in text:
                add("form", body)
            if own or "wrote" in text or "書きました" in text:
                add("staff_reply", body + b"\0" + internal)
for toml in (repo / "deploy").glob("*.toml"):
    add("config", toml.read_bytes())
for toml in (repo / "fixtures/config").glob("*.toml"):
    add("config", toml.read_bytes())
for name, n in sorted(counts.items()):
    print(f"seeds: {name}: {n} new")
