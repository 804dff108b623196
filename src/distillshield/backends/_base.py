"""The small interface every backend implements, and SQL transpilation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot

from distillshield._sql import quote_name
from distillshield.errors import DistillShieldError
from distillshield.schema import TableSpec, table_paths

#: The dialect all SQL in this package is written in.
REFERENCE_DIALECT = "duckdb"


class BackendError(DistillShieldError):
    """A query failed; the message carries the SQL that failed and the engine's reason."""


_SQL_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint32(): "UINTEGER",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
}


def sql_type(t: pa.DataType) -> str:
    """The reference-dialect SQL type of an Arrow type used in the canonical schema."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return sql_type(t.value_type) + "[]"
    if t in _SQL_TYPES:
        return _SQL_TYPES[t]
    raise BackendError(f"no SQL type for Arrow type {t}")


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (reference dialect) rewritten for ``dialect``."""
    if dialect == REFERENCE_DIALECT:
        return sql
    try:
        return ";\n".join(sqlglot.transpile(sql, read=REFERENCE_DIALECT, write=dialect))
    except sqlglot.errors.ParseError as exc:
        raise BackendError(f"cannot transpile SQL to {dialect}: {exc}\n--- SQL ---\n{sql}") from exc


class Backend(ABC):
    """An engine that can register canonical tables and run reference-dialect SQL."""

    dialect: str

    @abstractmethod
    def register(self, name: str, source: str | Path | pa.Table) -> None:
        """Make ``source`` (Parquet file, folder of part files, or Arrow table) queryable as ``name``."""

    def register_table(self, name: str, root: str | Path, spec: TableSpec) -> None:
        """Register canonical table ``spec`` of dataset ``root`` as ``name``, conformed.

        Like :func:`distillshield.schema.read_table`, but lazily, inside the engine: columns
        are cast to canonical types and nullable columns absent from every file read as null,
        so SQL can name any canonical column whatever the producer left out.
        """
        paths = table_paths(root, spec)
        present: dict[str, pa.DataType] = {}
        for p in paths:
            for f in pq.read_schema(p):
                present.setdefault(f.name, f.type)
        missing = [f.name for f in spec.schema if not f.nullable and f.name not in present]
        if missing:
            raise BackendError(f"{root}: table {spec.name!r} lacks required column(s) {missing}")
        view = quote_name(name)
        raw = f"{name}__raw"
        single = Path(root) / f"{spec.name}.parquet"
        self.register(raw, single if single.is_file() else Path(root) / spec.name)
        cols = []
        for f in spec.schema:
            source = f'"{f.name}"' if f.name in present else "NULL"
            cols.append(f'CAST({source} AS {sql_type(f.type)}) AS "{f.name}"')
        self.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(cols)} FROM {quote_name(raw)}")

    @abstractmethod
    def _run(self, sql: str) -> pa.Table:
        """Execute one statement already in this backend's dialect."""

    def query(self, sql: str) -> pa.Table:
        """Run reference-dialect ``sql`` and return the result as Arrow."""
        native = transpile(sql, self.dialect)
        try:
            return self._run(native)
        except BackendError:
            raise
        except Exception as exc:  # engines raise their own types; keep the SQL with the reason
            raise BackendError(
                f"{type(exc).__name__}: {exc}\n--- SQL ({self.dialect}) ---\n{native}"
            ) from exc

    def execute(self, sql: str) -> None:
        """Run a statement for its effect (CREATE VIEW/TABLE ...)."""
        self.query(sql)
