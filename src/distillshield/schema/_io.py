"""Reading and writing canonical tables in a dataset directory.

A dataset directory holds, per table, either ``NAME.parquet`` or a folder ``NAME/`` of part
files (read recursively, in name order). Readers *conform* what they find to the canonical
schema: extra columns are dropped, absent nullable columns become null, types are cast
(naive timestamps are taken as UTC), and anything that cannot be made to fit raises
:class:`~distillshield.errors.SchemaError` naming the file and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.errors import SchemaError
from distillshield.schema._tables import TableSpec

#: Compression for every Parquet file we write: zstd is the best size/speed trade-off for text.
_COMPRESSION = "zstd"

TABLE_FILES = "NAME.parquet or NAME/*.parquet"


def table_paths(root: str | Path, spec: TableSpec, *, optional: bool = False) -> list[Path]:
    """The Parquet files holding ``spec`` under ``root`` (empty only if ``optional``)."""
    base = Path(root) / spec.name
    single = base.with_name(base.name + ".parquet")
    if single.is_file():
        return [single]
    if base.is_dir():
        parts = sorted(p for p in base.rglob("*.parquet") if p.is_file())
        if parts or optional:
            return parts
    if optional:
        return []
    raise SchemaError(f"{spec.name}: no table found under {root} (looked for {single} and {base}/*.parquet)")


def _conform_column(col: pa.ChunkedArray | pa.Array, field: pa.Field, source: str) -> pa.ChunkedArray:
    target = field.type
    if isinstance(col, pa.Array):
        col = pa.chunked_array([col], type=col.type)
    if col.type.equals(target):
        return col
    try:
        if pa.types.is_timestamp(target) and pa.types.is_timestamp(col.type):
            if col.type.tz is None:  # naive timestamps are taken to be UTC
                col = pc.assume_timezone(col, "UTC")
            return col.cast(target)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        return col.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(
            f"{source}: column {field.name!r} has type {col.type}, cannot be read as {target}: {exc}"
        ) from exc


def conform(table: pa.Table | pa.RecordBatch, spec: TableSpec, source: str = "<memory>") -> pa.Table:
    """Return ``table`` with exactly ``spec``'s columns, in order, with canonical types."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    columns: list[pa.ChunkedArray] = []
    present = set(table.column_names)
    for field in spec.schema:
        if field.name in present:
            col = _conform_column(table.column(field.name), field, source)
            if not field.nullable and col.null_count:
                first = pc.index(pc.is_null(col), True).as_py()
                raise SchemaError(
                    f"{source}: required column {field.name!r} has {col.null_count} null value(s), "
                    f"first at row {first}"
                )
            columns.append(col)
        elif field.nullable:
            columns.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)], type=field.type))
        else:
            raise SchemaError(
                f"{source}: required column {field.name!r} of table {spec.name!r} is missing "
                f"(has: {', '.join(table.column_names)})"
            )
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _select(spec: TableSpec, columns: Sequence[str] | None) -> TableSpec:
    if columns is None:
        return spec
    unknown = [c for c in columns if spec.schema.get_field_index(c) < 0]
    if unknown:
        raise SchemaError(f"{spec.name}: unknown column(s) {unknown}")
    schema = pa.schema([spec.schema.field(c) for c in columns])
    return TableSpec(spec.name, schema, spec.key if spec.key in columns else None)


def iter_batches(
    root: str | Path,
    spec: TableSpec,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = 262_144,
    optional: bool = False,
) -> Iterator[pa.Table]:
    """Stream ``spec`` from ``root`` as conformed tables of at most ``batch_size`` rows.

    Memory stays bounded by one batch, whatever the size of the dataset.
    """
    sub = _select(spec, columns)
    for path in table_paths(root, spec, optional=optional):
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{path}: not a readable Parquet file: {exc}") from exc
        have = set(pf.schema_arrow.names)
        wanted = [f.name for f in sub.schema if f.name in have]
        for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
            yield conform(batch, sub, str(path))


def rechunk(batches: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Batches of exactly ``rows`` rows (the last one shorter), whatever the part-file sizes.

    :func:`iter_batches` yields per file, and simulated or streamed datasets often hold many
    small files; vectorised work has a fixed cost per call (compiling regexes, starting
    kernels), so a few large chunks are far faster than many small ones.
    """
    buffer: list[pa.Table] = []
    held = 0
    for batch in batches:
        buffer.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.concat_tables(buffer)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            buffer, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(buffer)


def read_table(
    root: str | Path,
    spec: TableSpec,
    *,
    columns: Sequence[str] | None = None,
    optional: bool = False,
) -> pa.Table:
    """Read a whole canonical table (use :func:`iter_batches` for large ones)."""
    sub = _select(spec, columns)
    parts = list(iter_batches(root, spec, columns=columns, optional=optional))
    if not parts:
        return sub.schema.empty_table()
    return pa.concat_tables(parts)


def write_table(
    table: pa.Table,
    root: str | Path,
    spec: TableSpec,
    *,
    part: int | None = None,
    row_group_size: int = 262_144,
) -> Path:
    """Write ``table`` conformed to ``spec``; ``part`` writes ``NAME/part-NNNNN.parquet``."""
    data = conform(table, spec)
    base = Path(root) / spec.name
    path = base.with_name(base.name + ".parquet") if part is None else base / f"part-{part:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Write then rename, so a crash never leaves a truncated file that readers would pick up.
    pq.write_table(data, tmp, compression=_COMPRESSION, row_group_size=row_group_size)
    tmp.replace(path)
    return path
