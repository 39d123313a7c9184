"""Identifiers: time-sortable random ids (ULID layout) and secrets.

A ULID-style id is written here rather than taken from a package because it is twelve lines
and on the cold-start path of every write; its layout is the published ULID one (48-bit
millisecond time, 80 random bits, Crockford base32), so ids sort by creation time.

Random bits come from ``os.urandom``, the source the ``secrets`` module reads (``randbits`` and
``token_urlsafe`` are one line over it each): importing ``secrets`` imports ``hmac`` and OpenSSL's
bindings with it, about 1.7 ms of every write route's cold start, for nothing a route uses.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: datetime) -> str:
    """A 26-character, time-sortable, random id."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10))
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A long random credential (API keys, share tokens) with a recognisable prefix."""
    return prefix + base64.urlsafe_b64encode(os.urandom(nbytes)).rstrip(b"=").decode("ascii")


def sha256_hex(value: str) -> str:
    """The SHA-256 hex digest of a credential (what is stored instead of the credential), of any text: a lone
    surrogate (how a header byte that is not UTF-8 can reach a Lambda event, or an argument decoded with
    ``surrogateescape``) is encoded as its own three bytes (``surrogatepass``), which no UTF-8 text encodes
    to, so such a value hashes to what no issued credential does and is refused as unknown, never an error."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
