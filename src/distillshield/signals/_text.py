"""Vectorised helpers over Arrow string arrays: hashing whole strings, hex formatting.

Arrow's compute module has no scalar string hash, and a per-row ``hashlib`` loop costs
more than the whole regex pipeline, so strings are hashed in numpy straight from the
Arrow buffers, eight bytes at a time (see :func:`_hash_each`). Every key comes from a fixed
seed, so a hash is stable across runs, processes, machines and batch composition.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

U64 = npt.NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: ``_TAIL_MASKS[k]`` keeps the low ``k`` bytes of a little-endian word (k = 0..8).
_TAIL_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2").view(np.uint8).reshape(256, 2)


def splitmix64(x: U64) -> U64:
    """The splitmix64 finaliser, element-wise: a bijective avalanche of 64-bit integers."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True)
        z += _GOLDEN
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def as_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous string array (chunked input combined, ``large_string`` kept)."""
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks() if texts.num_chunks else pa.array([], texts.type)
    return texts


def offsets_and_bytes(arr: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Row offsets (rebased to 0, length n+1) and the UTF-8 bytes they index, zero-copy."""
    n = len(arr)
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    bufs = arr.buffers()
    off_dtype = np.int64 if large else np.int32
    width = 8 if large else 4
    offsets = np.frombuffer(bufs[1], dtype=off_dtype, count=n + 1, offset=arr.offset * width).astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def hash_strings(arr: pa.Array | pa.ChunkedArray, *, salt: int = 0) -> U64:
    """A 64-bit hash of every string (null and empty hash alike; mask them yourself).

    Distinct strings are hashed once: templated traffic repeats its skeletons, and Arrow's
    dictionary encoding is far cheaper per row than hashing bytes.
    """
    arr = as_array(arr)
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    if n > 1024:
        enc = pc.dictionary_encode(arr)
        if len(enc.dictionary) < 0.9 * n:
            codes = np.asarray(pc.fill_null(enc.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            uniq = _hash_each(enc.dictionary, salt)
            return uniq[codes] if len(uniq) else np.zeros(n, np.uint64)
    return _hash_each(arr, salt)


def _hash_each(arr: pa.Array, salt: int) -> U64:
    """Hash every string eight bytes at a time.

    A string is cut into 8-byte little-endian chunks (the last one zero-padded); chunk ``j``
    is read from the two aligned words around its byte offset with a shift, so the chunks of
    a string do not depend on where it sits in the buffer. The chunks are multiplied by odd
    pseudo-random keys for their position and summed per row (prefix sums, wrapping modulo
    2**64), and the sum is finalised with the length by splitmix64: strings that differ in
    one chunk always differ before the finaliser; otherwise a collision is a 2**-64-ish event.
    """
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    offsets, data = offsets_and_bytes(arr)
    lengths = np.diff(offsets)
    sums = np.zeros(n, np.uint64)
    n_chunks = (lengths + 7) // 8
    total = int(n_chunks.sum())
    if total:
        words = np.zeros(len(data) // 8 + 2, np.dtype("<u8"))  # little-endian on every platform
        words.view(np.uint8)[: len(data)] = data
        row = np.repeat(np.arange(n), n_chunks)
        first_chunk = np.cumsum(n_chunks) - n_chunks
        j = np.arange(total, dtype=np.int64) - first_chunk[row]
        at = offsets[:-1][row] + 8 * j  # byte offset of each chunk
        shift = ((at & 7) * 8).astype(np.uint64)
        word = at >> 3
        # (w << (63 - shift)) << 1 is w << (64 - shift), and 0 when shift is 0
        chunk = (words[word] >> shift) | ((words[word + 1] << (np.uint64(63) - shift)) << np.uint64(1))
        chunk &= _TAIL_MASKS[np.minimum(offsets[1:][row] - at, 8)]  # drop bytes past the row
        keys = splitmix64(np.arange(int(n_chunks.max()), dtype=np.uint64) + np.uint64(salt * 0x1000003 + 1))
        with np.errstate(over="ignore"):
            # odd position keys: a chunk that differs changes the sum (odd numbers are units mod 2**64)
            csum = np.cumsum(chunk * (keys[j] | np.uint64(1)), dtype=np.uint64)
            last = np.maximum(first_chunk + n_chunks - 1, 0)
            before = np.where(first_chunk > 0, csum[np.maximum(first_chunk - 1, 0)], np.uint64(0))
            sums = np.where(n_chunks > 0, csum[last] - before, np.uint64(0))
    with np.errstate(over="ignore"):
        mixed_len = sums ^ (lengths.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93))
    return splitmix64(mixed_len ^ np.uint64(salt))


def hex16(values: U64, mask: npt.NDArray[np.bool_] | None = None) -> pa.StringArray:
    """``values`` as 16-character lowercase hex strings (big-endian), null where ``mask``."""
    n = len(values)
    digits = _HEX[values.astype(">u8").view(np.uint8)].reshape(n * 16)
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        null_count = int(mask.sum())
    out = pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()), validity, null_count
    )
    return out


def null_or_empty(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """True where a string is null or has no characters."""
    empty = pc.equal(pc.binary_length(arr), 0)
    return np.asarray(pc.fill_null(empty, True).to_numpy(zero_copy_only=False), dtype=bool)
