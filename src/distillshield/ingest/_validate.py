"""Vectorised validation of candidate exchange rows (one Arrow pass per rule).

Runs on every batch, whatever the format, after the adapter has converted types, so each
rule in :mod:`._rules` is enforced exactly once. A row gets the *first* failing rule's
reason, in this order: missing required field, field too large, bad timestamp, unknown
endpoint, status out of the HTTP range, invalid IP, negative count or bad temperature.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.ingest._rules import (
    ENDPOINTS,
    LONG_TEXT_COLUMNS,
    MAX_SHORT_BYTES,
    MAX_TEXT_BYTES,
    MAX_TOOLS,
    NON_NEGATIVE,
    SHORT_TEXT_COLUMNS,
    STATUS_MAX,
    STATUS_MIN,
    TS_MAX,
    TS_MIN,
    Reason,
)
from distillshield.schema import EXCHANGES

RowError = tuple[int, Reason, str, str]

#: Dotted-quad IPv4 with no leading zeros; anything else is checked by :mod:`ipaddress`.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"
_TS = pa.timestamp("us", tz="UTC")
_ENDPOINT_SET = pa.array(sorted(ENDPOINTS), pa.string())
# Typed scalars: passing Python numbers to Arrow kernels costs a failed optional import per
# call (pandas detection), which dominated validation of small batches.
_STATUS_MIN = pa.scalar(STATUS_MIN, pa.int16())
_STATUS_MAX = pa.scalar(STATUS_MAX, pa.int16())
_ZERO_I32 = pa.scalar(0, pa.int32())
_ZERO_F64 = pa.scalar(0.0, pa.float64())
_TS_MIN = pa.scalar(TS_MIN, _TS)
_TS_MAX = pa.scalar(TS_MAX, _TS)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean Arrow result as numpy, null read as False."""
    out: np.ndarray = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
    return out.astype(bool, copy=False)


def byte_lengths(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 byte length per value (0 for null); dictionary columns are measured once per value."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    parts: list[np.ndarray] = []
    for ch in chunks:
        if pa.types.is_dictionary(ch.type):
            dl = pc.fill_null(pc.binary_length(ch.dictionary), 0).to_numpy(zero_copy_only=False)
            idx = pc.fill_null(ch.indices, 0).to_numpy(zero_copy_only=False)
            lengths = dl[idx] if len(dl) else np.zeros(len(ch), dtype=np.int64)
            parts.append(np.where(_np(pc.is_null(ch)), 0, lengths))
        else:
            parts.append(pc.fill_null(pc.binary_length(ch), 0).to_numpy(zero_copy_only=False))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def valid_ip(value: str) -> bool:
    """IPv4 or IPv6 text, exactly (no spaces, no ports, no CIDR)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _invalid_ips(ip: pa.ChunkedArray) -> np.ndarray:
    present = ~_np(pc.is_null(ip))
    v4 = _np(pc.match_substring_regex(ip, _IPV4))
    other = present & ~v4
    if not other.any():
        return np.zeros(len(ip), dtype=bool)
    # Few distinct non-IPv4 values per batch (IPv6 clients): check each once in Python.
    uniq = pc.unique(ip.filter(pa.array(other))).to_pylist()
    good = pa.array([u for u in uniq if valid_ip(u)], pa.string())
    out: np.ndarray = other & ~_np(pc.is_in(ip, value_set=good))
    return out


def _tools_too_large(tools: pa.ChunkedArray) -> np.ndarray:
    n = len(tools)
    out = np.zeros(n, dtype=bool)
    if tools.null_count == n:
        return out
    arr = tools.combine_chunks()
    out |= pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False) > MAX_TOOLS
    flat = pc.list_flatten(arr)
    if len(flat):
        long_name = byte_lengths(flat) > MAX_SHORT_BYTES
        parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
        out[parents[long_name]] = True
    return out


def validate(table: pa.Table, pre_errors: list[RowError] | None = None) -> tuple[np.ndarray, list[RowError]]:
    """``(ok, errors)``: a keep-mask over ``table`` and ``(row, reason, field, detail)`` per bad row.

    ``pre_errors`` are failures the adapter already found (type conversion); they win over
    any rule here because they explain why a value is missing.
    """
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    errors: list[RowError] = []
    for i, reason, field, detail in pre_errors or ():
        if not bad[i]:
            bad[i] = True
            errors.append((i, reason, field, detail))

    def flag(mask: np.ndarray, reason: Reason, column: str, detail: Callable[[int, Any], str]) -> None:
        new = mask & ~bad
        idx = np.flatnonzero(new)
        if not idx.size:
            return
        values = (
            table.column(column).take(pa.array(idx)).to_pylist()
            if column not in LONG_TEXT_COLUMNS and column != "tools"
            else [None] * idx.size
        )
        errors.extend((int(i), reason, column, detail(int(i), v)) for i, v in zip(idx, values, strict=True))
        bad[new] = True

    def missing(_i: int, _v: Any, c: str) -> str:
        return f"{c} is required and missing or null"

    def too_large(i: int, _v: Any, c: str, limit: int, lengths: np.ndarray) -> str:
        return f"{c} is {lengths[i]:,} bytes (limit {limit:,})"

    def negative(_i: int, v: Any, c: str) -> str:
        return f"{c} {v} is negative"

    for column in EXCHANGES.required:
        flag(
            _np(pc.is_null(table.column(column))), Reason.MISSING_REQUIRED, column, partial(missing, c=column)
        )
    for column, limit in [(c, MAX_TEXT_BYTES) for c in LONG_TEXT_COLUMNS] + [
        (c, MAX_SHORT_BYTES) for c in SHORT_TEXT_COLUMNS
    ]:
        lengths = byte_lengths(table.column(column))
        flag(
            lengths > limit,
            Reason.FIELD_TOO_LARGE,
            column,
            partial(too_large, c=column, limit=limit, lengths=lengths),
        )
    flag(
        _tools_too_large(table.column("tools")),
        Reason.FIELD_TOO_LARGE,
        "tools",
        lambda _i, _v: f"tools: more than {MAX_TOOLS} tools or a name over {MAX_SHORT_BYTES} bytes",
    )
    ts = table.column("ts")
    flag(
        _np(pc.or_(pc.less(ts, _TS_MIN), pc.greater(ts, _TS_MAX))),
        Reason.BAD_TIMESTAMP,
        "ts",
        lambda _i, v: f"ts {v} is outside {TS_MIN.year}..{TS_MAX.year}",
    )
    flag(
        ~_np(pc.is_in(table.column("endpoint"), value_set=_ENDPOINT_SET))
        & ~_np(pc.is_null(table["endpoint"])),
        Reason.UNKNOWN_ENUM,
        "endpoint",
        lambda _i, v: f"endpoint {v!r} is not one of {', '.join(sorted(ENDPOINTS))}",
    )
    status = table.column("status")
    flag(
        _np(pc.or_(pc.less(status, _STATUS_MIN), pc.greater(status, _STATUS_MAX))),
        Reason.UNKNOWN_ENUM,
        "status",
        lambda _i, v: f"status {v} is not an HTTP status ({STATUS_MIN}..{STATUS_MAX})",
    )
    flag(
        _invalid_ips(table.column("ip")),
        Reason.INVALID_IP,
        "ip",
        lambda _i, v: f"ip {v!r} is not an IPv4 or IPv6 address",
    )
    for column in NON_NEGATIVE:
        flag(
            _np(pc.less(table.column(column), _ZERO_I32)),
            Reason.OUT_OF_RANGE,
            column,
            partial(negative, c=column),
        )
    temp = table.column("temperature")
    flag(
        _np(pc.or_(pc.invert(pc.is_finite(temp)), pc.less(temp, _ZERO_F64))),
        Reason.OUT_OF_RANGE,
        "temperature",
        lambda _i, v: f"temperature {v} is not a finite number >= 0",
    )
    errors.sort(key=lambda e: e[0])
    return ~bad, errors
