"""What every adapter shares: the adapter interface, input expansion and record reading."""

from __future__ import annotations

import gzip
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, cast

from distillshield.errors import DistillShieldError
from distillshield.ingest._batch import Batch, Rejected
from distillshield.ingest._convert import RecordError
from distillshield.ingest._rules import MAX_RECORD_BYTES, RAW_LIMIT, Reason

#: Records parsed in Python are handed over in batches of at most this many, whatever
#: ``--chunk-rows`` says, so a batch's truncated raw records stay small; the pipeline
#: gathers batches into parts of ``--chunk-rows`` rows.
PY_BATCH_ROWS = 8192

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


class IngestInputError(DistillShieldError):
    """An input cannot be read at all (missing, unreadable, wrong kind): the run stops."""


@dataclass(frozen=True)
class Source:
    """One unit of input with its own report line: a file, or a Batch API input+output pair."""

    label: str
    paths: tuple[Path, ...]
    kind: str
    rows: int | None = None


@dataclass(frozen=True)
class ReadContext:
    """Per-run settings adapters need."""

    defaults: Mapping[str, Any]
    chunk_rows: int

    @property
    def batch_rows(self) -> int:
        return max(1, min(self.chunk_rows, PY_BATCH_ROWS))


@dataclass
class FactBatch:
    """Rows for the accounts or releases table (canonical datasets carry them)."""

    source: str
    table: str
    facts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    read: int = 0


class Adapter(ABC):
    """A log format: how to find its inputs and turn them into canonical batches."""

    name: ClassVar[str]
    summary: ClassVar[str]

    @abstractmethod
    def plan(self, inputs: Sequence[Path]) -> list[Source]:
        """Expand and check ``inputs``; raise :class:`IngestInputError` if any is unusable."""

    @abstractmethod
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Batch | FactBatch]:
        """Stream ``source`` in batches."""


def _has_suffix(path: Path, suffixes: Sequence[str]) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return any(name.endswith(s) for s in suffixes)


def check_readable(path: Path) -> None:
    """Fail early, with the file named, on a path that cannot be opened."""
    if not path.exists():
        raise IngestInputError(f"{path}: no such file or directory")
    if path.is_file():
        try:
            with path.open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise IngestInputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def expand(inputs: Sequence[Path], suffixes: Sequence[str]) -> list[Path]:
    """Files named, plus files with ``suffixes`` (optionally .gz) under directories named."""
    files: list[Path] = []
    for p in inputs:
        check_readable(p)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _has_suffix(f, suffixes))
            if not found:
                raise IngestInputError(f"{p}: no input files ({', '.join('*' + s for s in suffixes)}) in it")
            for f in found:
                check_readable(f)
            files.extend(found)
        else:
            files.append(p)
    return files


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, bytes, complete)`` for each non-blank line, streaming.

    A line longer than :data:`MAX_RECORD_BYTES` is never held whole: its first
    :data:`RAW_LIMIT` (+1) bytes come back with ``complete=False`` and the rest is skipped.
    """
    with open_binary(path) as f:
        n = 0
        while True:
            line = f.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            n += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                head = line[: RAW_LIMIT + 1]  # one byte over: quarantine marks it truncated
                while line and not line.endswith(b"\n"):
                    line = f.readline(1 << 20)
                yield n, head, False
                continue
            data = line.strip()
            if data:
                yield n, data, True


def parse_json(raw: bytes) -> Any:
    """Parse one JSON record, or :class:`RecordError` (``invalid_json``) saying what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(Reason.INVALID_JSON, "$", f"invalid UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            detail = f"truncated JSON: the record ends inside a value ({exc.msg}, char {exc.pos})"
        else:
            detail = f"invalid JSON: {exc.msg} (char {exc.pos})"
        raise RecordError(Reason.INVALID_JSON, "$", detail) from None
    except RecursionError:
        raise RecordError(Reason.INVALID_JSON, "$", "JSON nested too deeply") from None


def too_large(limit: int = MAX_RECORD_BYTES) -> RecordError:
    return RecordError(Reason.FIELD_TOO_LARGE, "$", f"record is over {limit:,} bytes")


def expect_object(value: Any, field: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a ``wrong_type`` error naming ``field``."""
    if not isinstance(value, dict):
        raise RecordError(Reason.WRONG_TYPE, field, f"expected a JSON object, got {type(value).__name__}")
    return value
