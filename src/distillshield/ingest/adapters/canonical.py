"""``canonical``: data already in the canonical schema (docs/schema.md).

Accepts a dataset directory (``exchanges`` plus ``accounts`` and ``releases`` when
present), a table directory or files of Parquet parts, and JSONL with one exchange per
line under the canonical column names (``ts`` as ISO-8601 text; ``tools`` a list of names;
``metadata`` an object or its JSON text).

Parquet is converted column by column with Arrow casts, the fast path that lets a
benchmark-scale ingest run far above 50k exchanges/s; only a column that fails to cast is
re-read value by value, so one bad value costs one quarantined row, not the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.ingest._accounts import account_facts
from distillshield.ingest._batch import CANDIDATE_SCHEMA, Batch, Rejected, RowBuilder, truncate_raw
from distillshield.ingest._convert import ConvertError, RecordError, to_str, to_ts
from distillshield.ingest._mapping import COLUMNS, F, FieldMapping, default_converter, record_hash
from distillshield.ingest._rules import Reason
from distillshield.ingest._validate import RowError
from distillshield.ingest.adapters._base import (
    JSON_SUFFIXES,
    Adapter,
    FactBatch,
    IngestInputError,
    ReadContext,
    Source,
    check_readable,
    expand,
    expect_object,
    iter_lines,
    parse_json,
    too_large,
)
from distillshield.schema import ACCOUNTS, EXCHANGES, RELEASES, table_paths

#: Canonical JSONL: every column from the key of the same name.
MAPPING = FieldMapping(fields=tuple(F(c, c) for c in COLUMNS), derive=None, id_prefix="canon")


def _parquet_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestInputError(f"{path}: not a readable Parquet file: {exc}") from exc


def _is_dataset(d: Path) -> bool:
    return (d / "exchanges.parquet").is_file() or (d / "exchanges").is_dir()


def _uncastable(src: pa.DataType, target: pa.DataType) -> bool:
    """Casts Arrow would do but that hide a type error (true → 1, 1 → true, text → time)."""
    if pa.types.is_boolean(src) != pa.types.is_boolean(target):
        return True
    return pa.types.is_timestamp(target) and not pa.types.is_timestamp(src)


def coerce_column(
    col: pa.ChunkedArray | pa.Array, name: str, target: pa.DataType
) -> tuple[pa.Array, list[RowError]]:
    """``col`` as ``target``: an Arrow cast when it fits, else value by value with reasons."""
    if col.type.equals(target):
        return col, []
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
        if col.type.equals(target):
            return col, []
    if not _uncastable(col.type, target):
        try:
            if pa.types.is_timestamp(target) and pa.types.is_timestamp(col.type):
                if col.type.tz is None:  # naive timestamps are UTC, as docs/schema.md says
                    col = pc.assume_timezone(col, "UTC")
                return col.cast(target, safe=False), []
            return col.cast(target, safe=True), []
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    convert = default_converter(name)
    values: list[Any] = []
    errors: list[RowError] = []
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            values.append(None)
            continue
        try:
            values.append(convert(v))
        except ConvertError as exc:
            errors.append((i, exc.reason, name, f"{name}: {exc.detail}"))
            values.append(None)
    return pa.array(values, type=target), errors


def coerce(batch: pa.RecordBatch | pa.Table, defaults: dict[str, Any]) -> tuple[pa.Table, list[RowError]]:
    """Candidate rows from a Parquet batch: canonical columns and types, defaults filled."""
    n = batch.num_rows
    have = set(batch.schema.names)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    errors: list[RowError] = []
    for f in CANDIDATE_SCHEMA:
        if f.name in have:
            arr, errs = coerce_column(batch.column(f.name), f.name, f.type)
            errors.extend(errs)
        else:
            arr = pa.nulls(n, f.type)
        if f.name in defaults and arr.null_count:
            arr = pc.fill_null(arr, pa.scalar(defaults[f.name], f.type))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=CANDIDATE_SCHEMA), errors


class CanonicalAdapter(Adapter):
    name = "canonical"
    summary = "canonical Parquet (dataset dir, table dir or files) or JSONL with canonical column names"

    def plan(self, inputs: Sequence[Path]) -> list[Source]:
        sources: list[Source] = []
        for p in inputs:
            check_readable(p)
            if p.is_dir() and _is_dataset(p):
                for spec, kind in ((EXCHANGES, "parquet"), (ACCOUNTS, "accounts"), (RELEASES, "releases")):
                    for f in table_paths(p, spec, optional=spec is not EXCHANGES):
                        sources.append(Source(str(f), (f,), kind, _parquet_rows(f)))
                continue
            files = expand([p], (".parquet", *JSON_SUFFIXES)) if p.is_dir() else [p]
            for f in files:
                name = f.name.lower().removesuffix(".gz")
                if name.endswith(".parquet"):
                    sources.append(Source(str(f), (f,), "parquet", _parquet_rows(f)))
                elif name.endswith(JSON_SUFFIXES):
                    sources.append(Source(str(f), (f,), "jsonl"))
                else:
                    raise IngestInputError(f"{f}: not a canonical input (expected .parquet or .jsonl)")
        return sources

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Batch | FactBatch]:
        if source.kind == "parquet":
            yield from self._parquet(source, ctx)
        elif source.kind == "jsonl":
            yield from self._jsonl(source, ctx)
        else:
            yield from self._facts(source, ctx)

    def _parquet(self, source: Source, ctx: ReadContext) -> Iterator[Batch]:
        path = source.paths[0]
        pf = pq.ParquetFile(path)
        wanted = [n for n in pf.schema_arrow.names if n in COLUMNS]
        offset = 0
        defaults = dict(ctx.defaults)
        for rb in pf.iter_batches(batch_size=ctx.chunk_rows, columns=wanted):
            table, errors = coerce(rb, defaults)
            start = offset

            def locate(i: int, start: int = start) -> tuple[str, int | None, int | None, str]:
                return source.label, None, start + i, f"row {start + i}"

            yield Batch(
                source=source.label,
                table=table,
                locate=locate,
                raws=None,
                hashes=None,
                source_rows=pa.Table.from_batches([rb]),
                pre_errors=errors,
                read=rb.num_rows,
            )
            offset += rb.num_rows

    def _jsonl(self, source: Source, ctx: ReadContext) -> Iterator[Batch]:
        b = RowBuilder(source.label, MAPPING, ctx.defaults, ctx.batch_rows)
        for row, (line, raw, complete) in enumerate(iter_lines(source.paths[0])):
            try:
                if not complete:
                    raise too_large()
                record = expect_object(parse_json(raw), "$")
            except RecordError as exc:
                b.reject_error(raw, exc, file=source.label, line=line, row=row)
            else:
                b.add(record, raw, file=source.label, line=line, row=row)
            if b.full():
                yield b.take()
        if len(b):
            yield b.take()

    def _facts(self, source: Source, ctx: ReadContext) -> Iterator[FactBatch]:
        """Accounts and releases tables of a canonical dataset, validated row by row."""
        path = source.paths[0]
        pf = pq.ParquetFile(path)
        offset = 0
        for rb in pf.iter_batches(batch_size=ctx.chunk_rows):
            fb = FactBatch(source.label, source.kind)
            for i, rec in enumerate(rb.to_pylist()):
                try:
                    fb.facts.append(account_facts(rec) if source.kind == "accounts" else _release(rec))
                except RecordError as exc:
                    b = json.dumps(rec, sort_keys=True, default=str).encode()
                    text, cut = truncate_raw(b)
                    row = offset + i
                    fb.rejected.append(
                        Rejected(
                            source.label,
                            None,
                            row,
                            f"row {row}",
                            exc.reason,
                            exc.field,
                            exc.detail,
                            text,
                            cut,
                            record_hash(b),
                        )
                    )
                fb.read += 1
            offset += rb.num_rows
            yield fb


def _release(rec: dict[str, Any]) -> dict[str, Any]:
    """One release row, validated (model and release time are both required)."""
    out: dict[str, Any] = {}
    for name, convert in (("model", to_str), ("released_at", to_ts)):
        if rec.get(name) is None:
            raise RecordError(Reason.MISSING_REQUIRED, name, f"{name} is required for a release")
        try:
            out[name] = convert(rec[name])
        except ConvertError as exc:
            raise RecordError(exc.reason, name, exc.detail) from None
    return out
