"""The quarantine table: every refused input record, why, and where it came from.

``OUT/quarantine/part-*.parquet``. Defined here rather than in :mod:`distillshield.schema`
because only ingest writes it. Raw records are redacted like any stored text, truncated
to :data:`~._rules.RAW_LIMIT` bytes, and dropped entirely under ``--no-content``.
Re-ingesting the same input adds no quarantine rows: each row's ``quarantine_id`` hashes
its file name, location, record and reason, and ids already in OUT are skipped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillshield.ingest._batch import Rejected
from distillshield.ingest.redact import redact_chunked
from distillshield.schema import TableSpec, iter_batches, write_table

QUARANTINE = TableSpec(
    "quarantine",
    pa.schema(
        [
            pa.field("quarantine_id", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("field", pa.string()),
            pa.field("detail", pa.string(), nullable=False),
            pa.field("file", pa.string(), nullable=False),
            pa.field("line", pa.int64()),
            pa.field("row", pa.int64()),
            pa.field("location", pa.string(), nullable=False),
            pa.field("request_id", pa.string()),
            pa.field("record_hash", pa.string(), nullable=False),
            pa.field("raw", pa.string()),
            pa.field("raw_truncated", pa.bool_(), nullable=False),
        ]
    ),
    key="quarantine_id",
)


def quarantine_id(r: Rejected) -> str:
    key = f"{Path(r.file).name}\x1f{r.location}\x1f{r.record_hash}\x1f{r.reason.value}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


class QuarantineSink:
    """Buffers refused records and writes them as part files, skipping ones OUT already has."""

    def __init__(self, out: Path, *, no_content: bool, flush_rows: int, next_part: int) -> None:
        self.out = out
        self.no_content = no_content
        self.flush_rows = max(1, flush_rows)
        self.next_part = next_part
        self.buffer: list[Rejected] = []
        self.seen: set[str] = set()
        for t in iter_batches(out, QUARANTINE, columns=["quarantine_id"], optional=True):
            self.seen.update(t.column("quarantine_id").to_pylist())
        self.parts: list[str] = []
        self.rows_written = 0
        self.redactions = 0

    def add(self, rejected: list[Rejected]) -> None:
        self.buffer.extend(rejected)
        if len(self.buffer) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        rows: list[Rejected] = []
        ids: list[str] = []
        for r in self.buffer:
            qid = quarantine_id(r)
            if qid not in self.seen:
                self.seen.add(qid)
                rows.append(r)
                ids.append(qid)
        self.buffer = []
        if not rows:
            return
        if self.no_content:
            raw: pa.Array | pa.ChunkedArray = pa.nulls(len(rows), pa.string())
        else:
            raw, counts = redact_chunked(pa.array([r.raw for r in rows], pa.string()))
            self.redactions += int(np.sum(counts))
        table = pa.table(
            {
                "quarantine_id": ids,
                "reason": [r.reason.value for r in rows],
                "field": [r.field for r in rows],
                "detail": [r.detail for r in rows],
                "file": [r.file for r in rows],
                "line": pa.array([r.line for r in rows], pa.int64()),
                "row": pa.array([r.row for r in rows], pa.int64()),
                "location": [r.location for r in rows],
                "request_id": pa.array([r.request_id for r in rows], pa.string()),
                "record_hash": [r.record_hash for r in rows],
                "raw": raw,
                "raw_truncated": [r.raw_truncated and not self.no_content for r in rows],
            }
        )
        path = write_table(table, self.out, QUARANTINE, part=self.next_part)
        self.next_part += 1
        self.parts.append(str(path))
        self.rows_written += len(rows)
