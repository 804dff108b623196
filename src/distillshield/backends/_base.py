"""The small interface every backend implements, and SQL transpilation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import pyarrow as pa
import sqlglot

from distillshield.errors import DistillShieldError

#: The dialect all SQL in this package is written in.
REFERENCE_DIALECT = "duckdb"


class BackendError(DistillShieldError):
    """A query failed; the message carries the SQL that failed and the engine's reason."""


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
