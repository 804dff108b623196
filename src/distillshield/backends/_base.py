"""The small interface every backend implements, and SQL transpilation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

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


def _rewriter(dialect: str) -> Callable[[exp.Expression], exp.Expression] | None:
    """AST fixes for ``dialect`` where sqlglot's translation from DuckDB falls short."""
    if dialect == "spark":
        from distillshield.backends._spark import spark_rewrite  # sqlglot only, no pyspark

        return spark_rewrite
    return None


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (reference dialect) rewritten for ``dialect`` (with that backend's AST fixes)."""
    if dialect == REFERENCE_DIALECT:
        return sql
    rewrite = _rewriter(dialect)
    try:
        trees = [cast(exp.Expression, t) for t in sqlglot.parse(sql, read=REFERENCE_DIALECT) if t is not None]
        return ";\n".join((rewrite(t) if rewrite else t).sql(dialect=dialect) for t in trees)
    except sqlglot.errors.SqlglotError as exc:
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
        source = self._table_source(root, spec)
        present = self._table_columns(root, spec, source)
        missing = [f.name for f in spec.schema if not f.nullable and f.name not in present]
        if missing:
            raise BackendError(f"{root}: table {spec.name!r} lacks required column(s) {missing}")
        view = quote_name(name)
        raw = f"{name}__raw"
        self.register(raw, source)
        cols = []
        for f in spec.schema:
            source = f'"{f.name}"' if f.name in present else "NULL"
            cols.append(f'CAST({source} AS {sql_type(f.type)}) AS "{f.name}"')
        self.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(cols)} FROM {quote_name(raw)}")

    def _table_source(self, root: str | Path, spec: TableSpec) -> str | Path:
        """What :meth:`register` reads for ``spec`` under ``root``: ``NAME.parquet`` or ``NAME/``."""
        table_paths(root, spec)  # raises, naming what is missing
        single = Path(root) / f"{spec.name}.parquet"
        return single if single.is_file() else Path(root) / spec.name

    def _table_columns(self, root: str | Path, spec: TableSpec, source: str | Path) -> set[str]:
        """The column names present in any file of ``spec`` under ``root``."""
        return {f.name for p in table_paths(root, spec) for f in pq.read_schema(p)}

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

    def close(self) -> None:  # noqa: B027 - optional: engines without resources need nothing
        """Release the engine (connections, sessions, temporary files). Idempotent."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
