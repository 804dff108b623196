"""The backend layer: errors carry the SQL, conformed registration, transpilation."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillshield.backends import BackendError, get_backend, transpile
from distillshield.errors import DistillShieldError
from distillshield.schema import EXCHANGES


def _minimal_exchanges(tmp_path: Path) -> Path:
    """Only the required columns, with wider types than canonical (as a provider might write)."""
    t = pa.table(
        {
            "request_id": ["r1", "r2"],
            "ts": pa.array([0, 3_600_000_000], pa.timestamp("us", tz="UTC")),
            "account_id": ["a", "a"],
            "model": ["m", "m"],
            "endpoint": ["chat.completions"] * 2,
            "ip": ["203.0.113.1", "203.0.113.2"],
            "n_messages": pa.array([1, 3], pa.int64()),
            "input_tokens": pa.array([10, 20], pa.int64()),
            "output_tokens": pa.array([5, 6], pa.int64()),
            "stream": [False, True],
            "status": pa.array([200, 429], pa.int64()),
        }
    )
    (tmp_path / "exchanges").mkdir()
    pq.write_table(t, tmp_path / "exchanges" / "part-0.parquet")
    return tmp_path


def test_register_table_fills_absent_nullable_columns_and_casts(tmp_path: Path) -> None:
    b = get_backend()
    b.register_table("ex", _minimal_exchanges(tmp_path), EXCHANGES)
    out = b.query("SELECT count(reasoning_tokens) AS r, sum(input_tokens) AS i, max(prompt) AS p FROM ex")
    assert out.to_pylist() == [{"r": 0, "i": 30, "p": None}]
    schema = b.query("SELECT * FROM ex LIMIT 0").schema
    assert schema.names == EXCHANGES.schema.names
    assert schema.field("input_tokens").type == pa.int32()


def test_register_table_refuses_missing_required_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"request_id": ["r"]}), tmp_path / "exchanges.parquet")
    with pytest.raises(BackendError, match="required column"):
        get_backend().register_table("ex", tmp_path, EXCHANGES)


def test_query_errors_carry_the_sql() -> None:
    b = get_backend()
    b.register("t", pa.table({"x": [1, 2]}))
    assert b.query("SELECT sum(x) AS s FROM t").to_pylist() == [{"s": 3}]
    with pytest.raises(BackendError, match=r"(?s)nope.*SELECT nope FROM t"):
        b.query("SELECT nope FROM t")


def test_transpile_to_spark() -> None:
    assert "COLLECT_LIST" in transpile("SELECT list(x) FROM t", "spark")
    assert transpile("SELECT 1", "duckdb") == "SELECT 1"


def test_names_that_could_smuggle_sql_are_refused() -> None:
    from distillshield.backends import quote_name

    assert quote_name("ex") == '"ex"'
    for bad in ("", 'ex"; DROP TABLE x; --', "a;b"):
        with pytest.raises(DistillShieldError, match="invalid table name"):
            quote_name(bad)
    with pytest.raises(ValueError, match="invalid table name"):
        get_backend().register("x;y", pa.table({"a": [1]}))


def test_spill_dirs_of_killed_runs_are_swept_and_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import tempfile

    from distillshield.backends._duckdb import SPILL_PREFIX, DuckDBBackend, sweep_spill_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where new spill dirs go
    live = DuckDBBackend()
    try:
        mine = Path(live._spill.name)
        assert mine.parent == tmp_path and (mine / "OWNER").exists()
        # a run killed with SIGKILL: its spill dir and OWNER file stay, its lock is gone
        code = (
            "import os, signal; from distillshield.backends._duckdb import DuckDBBackend; "
            "b = DuckDBBackend(); (open(os.path.join(b._spill.name, 'spill.tmp'), 'w')); "
            "print(b._spill.name, flush=True); os.kill(os.getpid(), signal.SIGKILL)"
        )
        env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        killed = Path(out.stdout.strip())
        assert out.returncode == -9 and (killed / "spill.tmp").exists()
        legacy = tmp_path / f"{SPILL_PREFIX}old"  # no OWNER file: nothing says it is orphaned
        legacy.mkdir()
        assert sweep_spill_dirs(tmp_path) == [killed]
        assert not killed.exists() and mine.exists() and legacy.exists()
        DuckDBBackend().close()  # a new backend sweeps too; the live one still holds its lock
        assert mine.exists()
    finally:
        live.close()
    assert not mine.exists()
    assert sweep_spill_dirs(tmp_path) == []
