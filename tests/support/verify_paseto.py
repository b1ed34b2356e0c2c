#!/usr/bin/python3
"""An independent check of a PASETO v4.public token, written from the specification
(github.com/paseto-standard/paseto-spec, docs/01-Protocol-Versions/Version4.md, and PASERK
for k4.public / k4.pid), with Python's `cryptography` for Ed25519 and hashlib for BLAKE2b.
It shares no code with madoguchi or pasetors.

    verify_paseto.py K4_PUBLIC_PASERK TOKEN     (TOKEN "-": read it from stdin)

Valid: prints one JSON document {"payload": <the payload, parsed as JSON>, "footer": <the
footer parsed as JSON, or as text, or null>, "pid": <the k4.pid of the public key>} and exits 0.
Invalid: prints the reason to stderr and exits 1. Usage errors exit 2.
"""

import base64
import hashlib
import json
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = b"v4.public."
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class Invalid(Exception):
    pass


def b64url_decode(text):
    """Unpadded base64url, strictly: only the URL-safe alphabet, canonical length."""
    if not B64URL.match(text) or len(text) % 4 == 1:
        raise Invalid("not unpadded base64url: %r" % text[:40])
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise Invalid("non-canonical base64url")
    return data


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def le64(n):
    """LE64: a 64-bit little-endian unsigned integer with the top bit cleared."""
    return struct.pack("<Q", n & 0x7FFFFFFFFFFFFFFF)


def pae(pieces):
    """Pre-Authentication Encoding."""
    out = le64(len(pieces))
    for piece in pieces:
        out += le64(len(piece)) + piece
    return out


def public_key(paserk):
    prefix = "k4.public."
    if not paserk.startswith(prefix):
        raise Invalid("the public key is not a k4.public PASERK")
    raw = b64url_decode(paserk[len(prefix):])
    if len(raw) != 32:
        raise Invalid("a k4.public key is 32 bytes, not %d" % len(raw))
    return Ed25519PublicKey.from_public_bytes(raw)


def pid(paserk):
    """PASERK ID: "k4.pid." + base64url(BLAKE2b-264("k4.pid." + the k4.public PASERK))."""
    header = "k4.pid."
    digest = hashlib.blake2b((header + paserk).encode(), digest_size=33).digest()
    return header + b64url_encode(digest)


def verify(paserk, token, implicit=b""):
    key = public_key(paserk)
    token_bytes = token.encode("ascii")
    if not token_bytes.startswith(HEADER):
        raise Invalid("not a v4.public token")
    parts = token.split(".")
    if len(parts) == 3:
        footer = b""
    elif len(parts) == 4:
        footer = b64url_decode(parts[3])
    else:
        raise Invalid("a token has 3 or 4 dot-separated parts, not %d" % len(parts))
    signed = b64url_decode(parts[2])
    if len(signed) <= 64:
        raise Invalid("too short to carry a signature")
    message, signature = signed[:-64], signed[-64:]
    try:
        key.verify(signature, pae([HEADER, message, footer, implicit]))
    except InvalidSignature:
        raise Invalid("the signature does not verify")
    return message, footer


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    paserk = argv[1].strip()
    token = (sys.stdin.read() if argv[2] == "-" else argv[2]).strip()
    try:
        message, footer = verify(paserk, token)
        payload = json.loads(message.decode("utf-8"))
    except (Invalid, UnicodeDecodeError, ValueError) as e:
        print("invalid: %s" % e, file=sys.stderr)
        return 1
    if footer:
        text = footer.decode("utf-8", "replace")
        try:
            footer_value = json.loads(text)
        except ValueError:
            footer_value = text
    else:
        footer_value = None
    json.dump(
        {"payload": payload, "footer": footer_value, "pid": pid(paserk)},
        sys.stdout,
        ensure_ascii=False,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
