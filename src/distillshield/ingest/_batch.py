"""What adapters hand the pipeline: batches of candidate rows plus refused records.

A :class:`Batch` holds canonical columns for records that parsed (validation may still
refuse some), their source locations, and the records that never became a row
(:class:`Rejected`: invalid JSON, wrong types, …). ``read`` counts every input record the
batch stands for, so the pipeline can reconcile read = accepted + duplicates + quarantined.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from distillshield.ingest._convert import RecordError
from distillshield.ingest._mapping import COLUMNS, FieldMapping, record_hash
from distillshield.ingest._rules import RAW_LIMIT, Reason
from distillshield.schema import EXCHANGES

#: The exchanges schema with every column nullable: candidate rows before validation.
CANDIDATE_SCHEMA = pa.schema([f.with_nullable(True) for f in EXCHANGES.schema])


def truncate_raw(raw: bytes | str) -> tuple[str, bool]:
    """The first :data:`RAW_LIMIT` bytes of a record as text, and whether it was cut."""
    b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(b) <= RAW_LIMIT:
        return b.decode("utf-8", "replace"), False
    return b[:RAW_LIMIT].decode("utf-8", "ignore"), True


def location_text(line: int | None, row: int | None, span: int | None = None) -> str:
    """Human form of a record's place in its file: ``line 12``, ``row 5``, ``line 3, span 2``."""
    if line is not None and span is not None:
        return f"line {line}, span {span}"
    if span is not None:
        return f"span {span}"
    if line is not None:
        return f"line {line}"
    return f"row {row}"


@dataclass
class Rejected:
    """One input record refused before or during validation."""

    file: str
    line: int | None
    row: int | None
    location: str
    reason: Reason
    field: str
    detail: str
    raw: str | None
    raw_truncated: bool
    record_hash: str
    request_id: str | None = None


@dataclass
class Batch:
    """Candidate rows from one source, with what is needed to quarantine any of them.

    ``locate(i)`` gives candidate row ``i``'s file, line, row and location text; it is a
    function so that a 100k-row Parquet batch need not build 100k location strings.
    """

    source: str
    table: pa.Table
    locate: Callable[[int], tuple[str, int | None, int | None, str]]
    raws: list[tuple[str, bool]] | None
    hashes: list[str] | None
    source_rows: pa.Table | None = None
    pre_errors: list[tuple[int, Reason, str, str]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    read: int = 0
    skipped: int = 0

    def raws_of(self, rows: list[int]) -> list[tuple[str, bool, str]]:
        """Truncated raw text, truncation flag and record hash of candidate ``rows``.

        Parquet rows have no raw text: they are rendered as JSON of the source row, in one
        ``take`` for all of them (a file of bad rows must not cost a slice per row).
        """
        if self.raws is not None and self.hashes is not None:
            return [(*self.raws[i], self.hashes[i]) for i in rows]
        src = self.source_rows if self.source_rows is not None else self.table
        out: list[tuple[str, bool, str]] = []
        for rec in src.take(pa.array(rows, pa.int64())).to_pylist():
            b = json.dumps(rec, ensure_ascii=False, sort_keys=True, default=str).encode()
            text, cut = truncate_raw(b)
            out.append((text, cut, record_hash(b)))
        return out


class RowBuilder:
    """Collects records parsed in Python into a :class:`Batch` of at most ``limit`` rows.

    Raw text is kept only truncated (:data:`RAW_LIMIT`), so a batch's memory is bounded by
    ``limit`` × (canonical row + 4 KiB) whatever the size of the source records.
    """

    def __init__(self, source: str, mapping: FieldMapping, defaults: Mapping[str, Any], limit: int) -> None:
        self.source = source
        self.mapping = mapping
        self.defaults = defaults
        self.limit = limit
        self._reset()

    def _reset(self) -> None:
        self.columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self.files: list[str] = []
        self.lines: list[int | None] = []
        self.rows: list[int | None] = []
        self.locations: list[str] = []
        self.raws: list[tuple[str, bool]] = []
        self.hashes: list[str] = []
        self.rejected: list[Rejected] = []
        self.accounts: dict[int, dict[str, Any]] = {}
        self.read = 0
        self.skipped = 0

    def __len__(self) -> int:
        return self.read

    def full(self) -> bool:
        return self.read >= self.limit

    def reject_error(
        self,
        raw: bytes | str,
        exc: RecordError,
        *,
        file: str,
        line: int | None,
        row: int | None,
        span: int | None = None,
        rhash: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Refuse one record for the reason a :class:`RecordError` carries."""
        self.reject(
            raw,
            file=file,
            line=line,
            row=row,
            reason=exc.reason,
            field=exc.field,
            detail=exc.detail,
            span=span,
            rhash=rhash,
            request_id=request_id,
        )

    def reject(
        self,
        raw: bytes | str,
        *,
        file: str,
        line: int | None,
        row: int | None,
        reason: Reason,
        field: str,
        detail: str,
        span: int | None = None,
        rhash: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Refuse one record (counts as read)."""
        b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        text, cut = truncate_raw(b)
        self.rejected.append(
            Rejected(
                file,
                line,
                row,
                location_text(line, row, span),
                reason,
                field,
                detail,
                text,
                cut,
                rhash or record_hash(b),
                request_id,
            )
        )
        self.read += 1

    def add(
        self,
        record: dict[str, Any],
        raw: bytes,
        *,
        file: str,
        line: int | None,
        row: int | None,
        span: int | None = None,
        account: dict[str, Any] | None = None,
    ) -> None:
        """Map one parsed record; a mapping failure refuses it with its precise reason."""
        rhash = record_hash(raw)
        try:
            values = self.mapping.apply(record, rhash, self.defaults)
        except RecordError as exc:
            self.reject_error(
                raw,
                exc,
                file=file,
                line=line,
                row=row,
                span=span,
                rhash=rhash,
                request_id=self.mapping.peek_id(record),
            )
            return
        for c in COLUMNS:
            self.columns[c].append(values[c])
        self.files.append(file)
        self.lines.append(line)
        self.rows.append(row)
        self.locations.append(location_text(line, row, span))
        self.raws.append(truncate_raw(raw))
        self.hashes.append(rhash)
        if account is not None:
            self.accounts[len(self.hashes) - 1] = account
        self.read += 1

    def skip(self) -> None:
        """A record that is not an exchange (e.g. a non-GenAI span): outside ``read``."""
        self.skipped += 1

    def take(self) -> Batch:
        """The batch so far; the builder starts empty again."""
        table = pa.table(
            {c: pa.array(self.columns[c], type=CANDIDATE_SCHEMA.field(c).type) for c in COLUMNS},
            schema=CANDIDATE_SCHEMA,
        )
        files, lines, rows, locations = self.files, self.lines, self.rows, self.locations

        def locate(i: int) -> tuple[str, int | None, int | None, str]:
            return files[i], lines[i], rows[i], locations[i]

        batch = Batch(
            source=self.source,
            table=table,
            locate=locate,
            raws=self.raws,
            hashes=self.hashes,
            rejected=self.rejected,
            accounts=self.accounts,
            read=self.read,
            skipped=self.skipped,
        )
        self._reset()
        return batch
