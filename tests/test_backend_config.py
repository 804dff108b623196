"""The backend configuration file (--backend-config) and backend selection; no engine started."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillshield.backends import (
    BackendError,
    DuckDBBackend,
    backend_options,
    get_backend,
    load_backend_config,
    open_backend,
)
from distillshield.cli import app

FULL = """
backend = "spark"

[spark]
master = "local[2]"
app_name = "scan"
shuffle_partitions = 8
[spark.conf]
"spark.executor.memory" = "4g"
"spark.sql.adaptive.enabled" = true

[duckdb]
memory_limit = "4GB"
threads = 2
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backend.toml"
    path.write_text(text)
    return path


def test_a_full_file_is_read_into_constructor_options(tmp_path: Path) -> None:
    name, sections = load_backend_config(_write(tmp_path, FULL))
    assert name == "spark"
    assert sections["spark"] == {
        "master": "local[2]",
        "app_name": "scan",
        "shuffle_partitions": 8,
        "conf": {"spark.executor.memory": "4g", "spark.sql.adaptive.enabled": "true"},
    }
    assert sections["duckdb"] == {"memory_limit": "4GB", "threads": 2}


def test_cli_name_wins_over_the_file_and_overrides_win_over_its_section(tmp_path: Path) -> None:
    cfg = _write(tmp_path, FULL)
    assert backend_options(None, cfg)[0] == "spark"
    assert backend_options("duckdb", cfg, {"memory_limit": "1GB"}) == (
        "duckdb",
        {"memory_limit": "1GB", "threads": 2},
    )
    assert backend_options(None, None) == ("duckdb", {})
    with pytest.raises(BackendError, match="memory_limit does not apply to the spark backend"):
        backend_options(None, cfg, {"memory_limit": "1GB"})
    with open_backend("duckdb", cfg) as b:
        assert isinstance(b, DuckDBBackend)
        assert b.query("SELECT current_setting('threads') AS t").column("t")[0].as_py() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[spark]\nmaster = "local[1]"\nmastr = "x"\n', r"unknown key 'mastr' in \[spark\]"),
        ('[duckdb]\nmemory = "4GB"\n', r"unknown key 'memory' in \[duckdb\]"),
        ('engine = "spark"\n', r"unknown key 'engine'"),
        ('[postgres]\nhost = "x"\n', r"unknown key 'postgres'"),
        ('backend = "postgres"\n', r"backend = 'postgres' is not one of"),
        ('[spark]\nshuffle_partitions = "8"\n', r"shuffle_partitions must be int, got str"),
        ("[duckdb]\nthreads = true\n", r"threads must be int, got bool"),
        ('[spark.conf]\n"a" = [1]\n', r"'a' must be a single value"),
        ("backend = \n", r"not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BackendError, match=message) as info:
        load_backend_config(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot read backend config"):
        load_backend_config(tmp_path / "nope.toml")


def test_unknown_backend_and_missing_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match="unknown backend 'postgres'"):
        get_backend("postgres")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(BackendError, match=r"pip install 'distillshield\[spark\]'"):
        get_backend("spark")


def test_cli_reports_a_bad_config_file_in_one_line(tmp_path: Path) -> None:
    cfg = _write(tmp_path, '[spark]\nmastr = "local[1]"\n')
    result = CliRunner().invoke(
        app, ["scan", str(tmp_path), "--out", str(tmp_path / "det"), "--backend-config", str(cfg)]
    )
    assert result.exit_code == 1
    assert "unknown key 'mastr'" in result.output and str(cfg) in result.output.replace("\n", "")
    assert "Traceback" not in result.output
