"""The embedded default: DuckDB, in process, over Parquet files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from distillshield._sql import quote_name
from distillshield.backends._base import Backend, BackendError


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


#: Spill directories are ``<tempdir>/distillshield-duckdb-*``, each with an ``OWNER`` file
#: its backend holds an exclusive ``flock`` on for its life.
SPILL_PREFIX = "distillshield-duckdb-"
_OWNER = "OWNER"


def sweep_spill_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove the spill directories under ``root`` (default: the temporary directory) whose
    backend is gone; returns them.

    A process killed without closing its backend (SIGKILL, the OOM killer) leaves its spill
    files behind — up to 18 GB for a seed-scale scan — and a few such runs fill the disk. An
    owner's ``flock`` is released by the kernel when the process dies, so a directory whose
    ``OWNER`` lock can be taken is an orphan. Directories without an ``OWNER`` file (being
    created, or left by an older version) are not touched: nothing says their owner is gone.
    """
    removed: list[Path] = []
    for path in sorted(Path(root or tempfile.gettempdir()).glob(SPILL_PREFIX + "*")):
        try:
            fd = os.open(path / _OWNER, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held: its backend is alive
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def _owned_spill_dir() -> tuple[tempfile.TemporaryDirectory[str], int]:
    """A new spill directory and the fd holding its ``OWNER`` lock. The lock is taken on a
    file of another name that is then renamed, so a concurrent sweep never sees the ``OWNER``
    file unlocked."""
    spill = tempfile.TemporaryDirectory(prefix=SPILL_PREFIX)
    pending = Path(spill.name) / f"{_OWNER}.new"
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\n".encode())  # for operators; the lock is what counts
    os.rename(pending, Path(spill.name) / _OWNER)
    return spill, fd


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
        # spill files left in a checkout by a seed-scale scan). Those of killed runs are
        # removed first (:func:`sweep_spill_dirs`).
        sweep_spill_dirs()
        self._spill, self._owner = _owned_spill_dir()
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
        if self._owner >= 0:
            with contextlib.suppress(OSError):
                os.close(self._owner)
            self._owner = -1

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
