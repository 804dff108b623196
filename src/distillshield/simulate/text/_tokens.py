"""Token estimation from text, vectorised over Arrow string arrays.

The rule (also what ingest uses when a log has text but no token counts):

    tokens = max(1, round_half_up(narrow_bytes / 4) + wide_chars)

where ``wide_chars`` is the number of characters whose UTF-8 encoding takes 3 or 4 bytes
(CJK ideographs, kana, Hangul, most symbols and emoji) and ``narrow_bytes`` is the UTF-8
size of everything else. Why this shape: BPE tokenisers average about four bytes of
English (or code) per token, while a CJK character costs roughly one token on its own;
Cyrillic, Greek and accented Latin (2-byte characters) fall on the byte rule, which gives
about half a token per character, close to what current tokenisers produce. Null or empty
text counts as one token, since a request always carries at least one.

The counts are additive over concatenation (bytes and characters simply add), so the
simulator can precompute them for pooled response pieces and sum, instead of re-scanning
millions of assembled responses: :func:`text_counts` returns the two additive parts and
:func:`tokens_from_counts` applies the rounding.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["estimate_tokens", "text_counts", "tokens_from_counts"]

#: Scan at most this many bytes of string data per numpy pass, so memory stays bounded
#: when a batch holds hundreds of megabytes of responses.
_SCAN_BYTES = 1 << 24


def tokens_from_counts(narrow_bytes: np.ndarray, wide_chars: np.ndarray) -> np.ndarray:
    """Apply the token rule to additive counts (see the module docstring)."""
    tok = (np.asarray(narrow_bytes, dtype=np.int64) + 2) // 4 + np.asarray(wide_chars, dtype=np.int64)
    return np.maximum(tok, 1).astype(np.int32)


def _array_counts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(narrow_bytes, wide_chars) per row of one string/large_string array."""
    n = len(arr)
    narrow = np.zeros(n, dtype=np.int64)
    wide = np.zeros(n, dtype=np.int64)
    if n == 0:
        return narrow, wide
    if pa.types.is_string(arr.type):
        off_type: type[np.int32] | type[np.int64] = np.int32
    elif pa.types.is_large_string(arr.type):
        off_type = np.int64
    else:
        raise TypeError(f"estimate_tokens needs string text, got {arr.type}")
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset : arr.offset + n + 1].astype(np.int64)
    if bufs[2] is None or offsets[-1] == offsets[0]:
        return narrow, wide
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    lo = 0
    while lo < n:
        # Rows [lo, hi) whose bytes fit one scan window (always at least one row).
        hi = int(np.searchsorted(offsets, offsets[lo] + _SCAN_BYTES, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        base = int(offsets[lo])
        chunk = data[base : int(offsets[hi])]
        # Lead bytes: 0xE0-0xEF start 3-byte characters, 0xF0-0xF7 start 4-byte ones.
        lead3 = (chunk >= 0xE0) & (chunk < 0xF0)
        lead4 = chunk >= 0xF0
        c3 = np.concatenate(([0], np.cumsum(lead3, dtype=np.int64)))
        c4 = np.concatenate(([0], np.cumsum(lead4, dtype=np.int64)))
        start = offsets[lo:hi] - base
        end = offsets[lo + 1 : hi + 1] - base
        n3 = c3[end] - c3[start]
        n4 = c4[end] - c4[start]
        wide[lo:hi] = n3 + n4
        narrow[lo:hi] = (end - start) - 3 * n3 - 4 * n4
        lo = hi
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        narrow[~valid] = 0
        wide[~valid] = 0
    return narrow, wide


def text_counts(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Additive (narrow_bytes, wide_chars) per row; see the module docstring."""
    if isinstance(text, pa.ChunkedArray):
        if text.num_chunks == 0:
            z = np.zeros(0, dtype=np.int64)
            return z, z.copy()
        parts = [_array_counts(c) for c in text.chunks]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _array_counts(text)


def estimate_tokens(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Estimated token count per row (int32), vectorised; see the module docstring for the rule."""
    narrow, wide = text_counts(text)
    return tokens_from_counts(narrow, wide)
