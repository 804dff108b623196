"""Per-value converters from what a log holds to canonical Python values.

Each converter either returns the canonical value or raises :class:`ConvertError` with the
quarantine reason, so a record fails for a *precise* reason (a string where a number
belongs is ``wrong_type``; an unparseable date is ``bad_timestamp``). Numeric strings are
accepted for numbers because CSV exports (LiteLLM SpendLogs) carry nothing else.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from distillshield.ingest._rules import Reason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


class ConvertError(Exception):
    """A value cannot become its canonical column; carries the quarantine reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RecordError(Exception):
    """A whole record is refused: reason, the field at fault and a one-line detail."""

    def __init__(self, reason: Reason, field: str, detail: str) -> None:
        super().__init__(f"{reason}: {field}: {detail}")
        self.reason = reason
        self.field = field
        self.detail = detail


Converter = Callable[[Any], Any]


def _kind(v: Any) -> str:
    return "boolean" if isinstance(v, bool) else type(v).__name__


def _preview(v: Any, limit: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _wrong(v: Any, expected: str) -> ConvertError:
    return ConvertError(Reason.WRONG_TYPE, f"expected {expected}, got {_kind(v)} {_preview(v)}")


def to_str(v: Any) -> str:
    """Strings as they are; integers become their decimal text (numeric ids are common)."""
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise _wrong(v, "string")


def _to_int(v: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool):
        raise _wrong(v, what)
    if isinstance(v, int):
        out = v
    elif isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise _wrong(v, what)
        out = int(v)
    elif isinstance(v, str) and _INT_RE.match(v.strip()):
        out = int(v.strip())
    else:
        raise _wrong(v, what)
    if not lo <= out <= hi:
        raise ConvertError(Reason.OUT_OF_RANGE, f"{out} does not fit {what} ({lo}..{hi})")
    return out


def to_int32(v: Any) -> int:
    """An integer that fits int32 (token counts, limits)."""
    return _to_int(v, -(2**31), 2**31 - 1, "int32")


def to_int16(v: Any) -> int:
    """An integer that fits int16 (HTTP status)."""
    return _to_int(v, -(2**15), 2**15 - 1, "int16")


def to_float(v: Any) -> float:
    """A number (bools are not numbers here, though Python thinks so)."""
    if isinstance(v, bool):
        raise _wrong(v, "number")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and _FLOAT_RE.match(v.strip()):
        return float(v.strip())
    raise _wrong(v, "number")


def to_bool(v: Any) -> bool:
    """JSON booleans, and the words true/false that CSV exports write."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise _wrong(v, "boolean")


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise ConvertError(Reason.BAD_TIMESTAMP, f"{seconds} is not a time")
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ConvertError(
            Reason.BAD_TIMESTAMP, f"{seconds} seconds since the epoch is out of range"
        ) from exc


def _from_iso(s: str) -> datetime:
    try:
        dt = datetime.fromisoformat(s.strip())
    except ValueError as exc:
        raise ConvertError(Reason.BAD_TIMESTAMP, f"{_preview(s)} is not an ISO-8601 time") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def to_ts(v: Any) -> datetime:
    """ISO-8601 text (naive = UTC) or Unix seconds (number or numeric text)."""
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if isinstance(v, bool):
        raise _wrong(v, "timestamp")
    if isinstance(v, int | float):
        return _from_unix(float(v))
    if isinstance(v, str):
        s = v.strip()
        if _FLOAT_RE.match(s):
            return _from_unix(float(s))
        return _from_iso(s)
    raise _wrong(v, "timestamp")


def to_ts_iso(v: Any) -> datetime:
    """ISO-8601 text only (the canonical JSONL form, where a bare number is ambiguous)."""
    if isinstance(v, str):
        return _from_iso(v)
    raise _wrong(v, "ISO-8601 timestamp string")


def to_ts_unix_nano(v: Any) -> datetime:
    """OTLP ``*TimeUnixNano``: a uint64 as a JSON string or number."""
    if isinstance(v, bool):
        raise _wrong(v, "integer nanoseconds")
    if isinstance(v, str) and _INT_RE.match(v.strip()):
        ns = int(v.strip())
    elif isinstance(v, int):
        ns = v
    else:
        raise _wrong(v, "integer nanoseconds")
    seconds, rest = divmod(ns, 1_000_000_000)
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=rest // 1000)
    except OverflowError as exc:
        raise ConvertError(Reason.BAD_TIMESTAMP, f"{ns} ns since the epoch is out of range") from exc


def to_str_list(v: Any) -> list[str]:
    """A list of strings (tool names)."""
    if not isinstance(v, list):
        raise _wrong(v, "list of strings")
    for x in v:
        if not isinstance(x, str):
            raise _wrong(x, "string in list")
    return v


def to_json_text(v: Any) -> str:
    """A JSON object kept as compact text (metadata); text is kept as it is."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    raise _wrong(v, "JSON object")
