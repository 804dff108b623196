"""The embedded default: DuckDB, in process, over Parquet files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from distillshield._sql import quote_name
from distillshield.backends._base import Backend, BackendError


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDBBackend(Backend):
    """DuckDB in process. ``memory_limit`` and ``threads`` bound what one run may take."""

    dialect = "duckdb"

    def __init__(
        self, *, database: str = ":memory:", memory_limit: str | None = None, threads: int | None = None
    ):
        self.con = duckdb.connect(database)
        self.con.execute("SET TimeZone = 'UTC'")
        # Large joins spill to a private temporary directory (removed on close) — DuckDB's
        # default is ./.tmp under whatever directory the caller runs in (seen: 6.6 GB of
        # spill files left in a checkout by a seed-scale scan).
        self._spill = tempfile.TemporaryDirectory(prefix="distillshield-duckdb-")
        self.con.execute(f"SET temp_directory = '{self._spill.name}'")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._tables: dict[str, pa.Table] = {}

    def close(self) -> None:
        self.con.close()
        self._tables.clear()
        self._spill.cleanup()

    def register(self, name: str, source: str | Path | pa.Table) -> None:
        view = quote_name(name)
        if isinstance(source, pa.Table):
            self._tables[name] = source  # keep a reference: DuckDB scans it lazily
            self.con.register(name, source)
            return
        path = Path(source)
        if path.is_dir():
            files = sorted(path.rglob("*.parquet"))
            if not files:
                raise BackendError(f"{path}: no Parquet files to register as {name!r}")
            target = "[" + ", ".join(_quote(f) for f in files) + "]"
        elif path.is_file():
            target = _quote(path)
        else:
            raise BackendError(f"{path}: not found (registering {name!r})")
        self.con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({target}, union_by_name=true)"
        )

    def _run(self, sql: str) -> pa.Table:
        rel = self.con.execute(sql)
        if rel.description is None:
            return pa.table({})
        # DuckDB 1.4 renamed fetch_arrow_table to to_arrow_table; we support >= 1.1.
        fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
        table: pa.Table = fetch()
        return table
