"""``distillshield ingest``: help, the report table, and one-line errors with exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillshield.cli import app

runner = CliRunner()
DATA = Path(__file__).parent / "data" / "ingest"


def test_help() -> None:
    res = runner.invoke(app, ["ingest", "--help"])
    assert res.exit_code == 0
    for word in ("--format", "--out", "--no-content", "--chunk-rows", "--default"):
        assert word in res.output


def test_ingest_prints_per_file_report_and_reconciles(tmp_path: Path) -> None:
    bad = tmp_path / "in" / "bad.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"request": {"model": "m"}, "context": {"client_ip": "300.0.0.1"}}\n{"truncated": \n')
    args = [
        "ingest",
        "--format",
        "openai",
        str(DATA / "openai" / "chat_logs.jsonl"),
        str(bad),
        "--out",
        str(tmp_path / "out"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "2 (invalid_json 1, missing_required 1)" in res.output
    assert "read 11 = accepted 9 + duplicates 0 + quarantined 2: reconciles" in res.output
    report = json.loads((tmp_path / "out" / "ingest_report.json").read_text())
    # one row per source file (the table wraps long paths, so check the report, not the screen)
    sources = {Path(s["source"]).name for s in report["sources"]}
    assert {"chat_logs.jsonl", "bad.jsonl"} <= sources
    assert report["totals"]["quarantined"] == 2
    res = runner.invoke(app, args)
    assert "read 11 = accepted 0 + duplicates 9 + quarantined 2" in res.output


def test_defaults_and_no_content_options(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "ingest",
            "-f",
            "openai",
            str(DATA / "openai"),
            "--out",
            str(tmp_path / "out"),
            "--default",
            "account_id=acct_batch",
            "--default",
            "ip=198.51.100.1",
            "--default",
            "ts=2026-02-02T05:00:00Z",
            "--no-content",
            "--chunk-rows",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "read 13 = accepted 13" in res.output
    assert len(list((tmp_path / "out" / "exchanges").glob("part-*.parquet"))) == 3


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-f", "csv", "{data}/canonical"], "unknown format 'csv'"),
        (["-f", "openai", "{tmp}/nope.jsonl"], "nope.jsonl: no such file or directory"),
        (["-f", "canonical", "{tmp}/bad.parquet"], "bad.parquet: not a readable Parquet file"),
        (["-f", "canonical", "{data}/canonical", "--default", "account_id"], "expected COLUMN=VALUE"),
    ],
)
def test_errors_are_one_line_with_exit_1(tmp_path: Path, args: list[str], reason: str) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    argv = ["ingest", *[a.format(tmp=tmp_path, data=DATA) for a in args], "--out", str(tmp_path / "out")]
    res = runner.invoke(app, argv)
    assert res.exit_code == 1, res.output
    assert reason in res.output
    assert "Traceback" not in res.output
