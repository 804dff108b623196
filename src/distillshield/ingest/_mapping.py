"""Declarative field mappings: source path → canonical column, with a converter.

An adapter is mostly a table of :class:`Field` rows (``F("model", "request/model",
"response/model")``: the first path present wins). What a path copy cannot express —
counting messages, picking the latest user turn, joining text parts — is a ``derive``
function of the record. :meth:`Mapping.apply` turns one parsed record into one canonical
row or raises :class:`RecordError` naming the reason and the column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from distillshield.ingest._convert import (
    Converter,
    ConvertError,
    RecordError,
    to_bool,
    to_float,
    to_int16,
    to_int32,
    to_json_text,
    to_str,
    to_str_list,
    to_ts,
)
from distillshield.schema import EXCHANGES

#: Columns in canonical order; every mapped row has exactly these keys.
COLUMNS: tuple[str, ...] = tuple(EXCHANGES.schema.names)


def default_converter(column: str) -> Converter:
    """The converter a canonical column gets unless a field names another."""
    if column == "metadata":
        return to_json_text
    t = EXCHANGES.schema.field(column).type
    if pa.types.is_timestamp(t):
        return to_ts
    if pa.types.is_int32(t):
        return to_int32
    if pa.types.is_int16(t):
        return to_int16
    if pa.types.is_floating(t):
        return to_float
    if pa.types.is_boolean(t):
        return to_bool
    if pa.types.is_list(t):
        return to_str_list
    return to_str


def record_hash(raw: bytes) -> str:
    """Stable 96-bit hash of a raw record: deterministic request ids and quarantine keys."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def lookup(record: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (keys of nested objects, or list indices), None if absent.

    Lookups are tolerant of a differently shaped parent because several sources use union
    types (LiteLLM's ``response`` is text, a list or an object); adapters check the shapes
    that matter explicitly.
    """
    cur = record
    try:  # the common case, nested objects, at dict-indexing speed
        for key in path:
            cur = cur[key]
        return cur
    except (KeyError, TypeError, IndexError):
        pass
    cur = record
    for key in path:
        if isinstance(cur, dict):
            cur = cur.get(key)
        elif isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
            cur = cur[int(key)]
        else:
            return None
        if cur is None:
            return None
    return cur


@dataclass(frozen=True)
class Field:
    """One canonical column filled from the first present of ``paths``."""

    column: str
    paths: tuple[tuple[str, ...], ...]
    convert: Converter


def F(column: str, *paths: str, convert: Converter | None = None) -> Field:  # noqa: N802 - reads as a table
    """``F("input_tokens", "response/usage/prompt_tokens")``: paths use ``/`` between keys."""
    if column not in COLUMNS:
        raise ValueError(f"unknown canonical column {column!r}")
    return Field(column, tuple(tuple(p.split("/")) for p in paths), convert or default_converter(column))


Derive = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class FieldMapping:
    """A format's mapping: field rows, a derive step, and the prefix of generated ids."""

    fields: tuple[Field, ...]
    derive: Derive | None
    id_prefix: str

    def peek_id(self, record: dict[str, Any]) -> str | None:
        """The record's own request id, if it has a usable one (for quarantine triage)."""
        for f in self.fields:
            if f.column == "request_id":
                for path in f.paths:
                    value = lookup(record, path)
                    if isinstance(value, str):
                        return value
        return None

    def apply(self, record: dict[str, Any], rhash: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """One canonical row (all columns, None where unknown) or :class:`RecordError`."""
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        if self.derive is not None:
            row.update(self.derive(record))
        for f in self.fields:
            for path in f.paths:
                value = lookup(record, path)
                if value is None:
                    continue
                try:
                    row[f.column] = f.convert(value)
                except ConvertError as exc:
                    raise RecordError(exc.reason, f.column, f"{'/'.join(path)}: {exc.detail}") from None
                break
        for column, value in defaults.items():
            if row[column] is None:
                row[column] = value
        if row["request_id"] is None:
            # Deterministic: the same source record always gets the same id, so re-ingesting
            # it is recognised as a duplicate.
            row["request_id"] = f"{self.id_prefix}-{rhash}"
        return row


def convert_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert ``--default COLUMN=VALUE`` values once, before any record."""
    out: dict[str, Any] = {}
    for column, value in defaults.items():
        if column not in COLUMNS:
            raise ValueError(f"--default {column}: not a column of exchanges (one of {', '.join(COLUMNS)})")
        try:
            out[column] = default_converter(column)(value)
        except ConvertError as exc:
            raise ValueError(f"--default {column}={value!r}: {exc.detail}") from None
    return out
