"""Deterministic, opaque identifiers, generated vectorised.

Ids are a keyed 64-bit mix (splitmix64) of a namespace and a counter, so they are unique,
stable for a seed, and carry nothing a detector could cheat with (no persona name, no
campaign, no ordering).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def stable_hash(*parts: object) -> int:
    """A 63-bit hash of ``parts`` that, unlike ``hash()``, is the same in every process."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection on uint64 with good avalanche."""
    z = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def hex_ids(prefix: str, namespace: int, counters: np.ndarray, width: int = 16) -> pa.StringArray:
    """``prefix`` + ``width`` hex digits of ``splitmix64(namespace ^ counter)``.

    ``width`` <= 16; distinct counters give distinct ids within a namespace (the mix is a
    bijection), and namespaces are mixed in so two personas never collide in practice.
    """
    keyed = splitmix64(np.asarray(counters, dtype=np.uint64) ^ splitmix64(np.array([namespace], np.uint64)))
    as_bytes = keyed.astype(">u8").view(np.uint8).reshape(-1, 8)
    hexed = np.ascontiguousarray(_HEX[as_bytes]).view("S16").ravel()
    arr = pa.array(hexed, type=pa.binary(16)).cast(pa.binary()).cast(pa.string())
    if width < 16:
        arr = pc.utf8_slice_codeunits(arr, 0, width)
    return pc.binary_join_element_wise(prefix, arr, "")
