"""Keyed hashing of values peers may match but must not learn (payment fingerprints, metadata).

Scheme ``distillshield-hmac-sha256-v1`` (docs/intel.md, "Keyed hashing")::

    key_id(K)         = hex(SHA-256(K))[:16]
    keyed_hash(K,k,v) = hex(HMAC-SHA256(K, "distillshield-hmac-sha256-v1" 0x1f k 0x1f normalise(k, v)))

``K`` is a community key of at least :data:`MIN_KEY_BYTES` bytes, agreed out of band among
the peers of one sharing community and never put in a bundle. ``k`` is the value's kind
(``payment`` or ``metadata``): the same string under two kinds hashes differently, so a
metadata value can never match a payment fingerprint. Without the key, a hash cannot be
tested against guesses (unlike a plain SHA-256 of a 24-hex fingerprint or a user name); with
it, every member computes the same hash from the same raw value, so matching needs no raw
value to leave anyone's system. ``key_id`` names the key in a bundle so a peer holding another
key skips those hashes instead of reporting false misses; it reveals nothing about the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from distillshield.intel._common import IntelError

__all__ = [
    "KEYED_KINDS",
    "MIN_KEY_BYTES",
    "SCHEME",
    "check_key",
    "key_id",
    "keyed_hash",
    "meta_pairs",
    "normalise",
    "read_key",
]

SCHEME = "distillshield-hmac-sha256-v1"
#: 128 bits: shorter keys could be brute-forced from a published hash of a known value.
MIN_KEY_BYTES = 16
#: Kinds of value the scheme hashes, as named inside the HMAC input and in bundles.
KEYED_KINDS: tuple[str, ...] = ("payment", "metadata")


def check_key(key: bytes | None) -> bytes:
    """``key`` itself, or :class:`IntelError` when it is missing or too short."""
    if not isinstance(key, bytes | bytearray):
        raise IntelError("a community key (bytes) is needed for keyed hashes")
    if len(key) < MIN_KEY_BYTES:
        raise IntelError(f"the community key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return bytes(key)


def key_id(key: bytes) -> str:
    """Public name of a community key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(check_key(key)).hexdigest()[:16]


def normalise(kind: str, value: str) -> str:
    """The canonical form hashed for ``kind``: payment fingerprints are trimmed and lowercased;
    metadata pairs are ``key=value`` with the key trimmed and lowercased, the value trimmed."""
    if kind == "payment":
        return value.strip().lower()
    if kind == "metadata":
        key, sep, val = value.partition("=")
        if not sep:
            raise IntelError(f"metadata value {value!r} is not key=value")
        return f"{key.strip().lower()}={val.strip()}"
    raise IntelError(f"unknown keyed kind {kind!r}; known: {KEYED_KINDS}")


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised ``value`` of ``kind`` under the community ``key`` (hex)."""
    msg = "\x1f".join((SCHEME, kind, normalise(kind, value))).encode("utf-8")
    return hmac.new(check_key(key), msg, hashlib.sha256).hexdigest()


def meta_pairs(metadata: str | None) -> list[str]:
    """The ``key=value`` pairs of one request-metadata value (a JSON object of scalars).

    Nested values, lists and nulls are left out; text that is not a JSON object gives no pairs
    (it cannot be compared across providers). Sorted, without duplicates.
    """
    if not metadata:
        return []
    try:
        doc = json.loads(metadata)
    except (ValueError, RecursionError):
        return []
    if not isinstance(doc, dict):
        return []
    pairs = set()
    for k, v in doc.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        if isinstance(v, str | int | float) and str(k).strip():
            pairs.add(normalise("metadata", f"{k}={v}"))
    return sorted(pairs)


def parse_key(raw: bytes) -> bytes:
    """A community key from its stored form: 32+ hex digits are decoded, anything else is used
    as bytes (a trailing newline is dropped); too short a key is refused."""
    raw = raw.rstrip(b"\r\n")
    text = raw.decode("ascii", errors="ignore").strip()
    if len(text) == len(raw) and len(text) >= 2 * MIN_KEY_BYTES and len(text) % 2 == 0:
        try:
            return check_key(bytes.fromhex(text))
        except ValueError:
            pass
    return check_key(raw)


def read_key(path: str | Path) -> bytes:
    """A community key from a file (:func:`parse_key`). For the CLI's ``--key-file``."""
    return parse_key(Path(path).read_bytes())
