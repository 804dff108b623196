"""The command line: the main job end to end, tables, and one-line errors with non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillshield.cli import app

runner = CliRunner()


def test_help_everywhere() -> None:
    for cmd in (
        [],
        ["simulate"],
        ["evaluate"],
        ["demo"],
        ["baseline"],
        ["scenarios"],
        ["ingest"],
        ["prepare"],
        ["scan"],
        ["replay"],
        ["train"],
        ["rules"],
        ["rules", "lint"],
        ["verify"],
        ["intel"],
        ["intel", "export"],
        ["intel", "push"],
        ["intel", "pull"],
        ["intel", "hunt"],
        ["gateway"],
        ["gateway", "keys"],
        ["gateway", "publish"],
        ["gateway", "replay"],
        ["gateway", "mock-upstream"],
    ):
        res = runner.invoke(app, [*cmd, "--help"])
        assert res.exit_code == 0, res.output
        assert "Usage" in res.output


def test_demo_runs_simulate_detect_evaluate(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--scale", "0.02", "--every", "2d"])
    assert res.exit_code == 0, res.output
    assert "campaign-a" in res.output and "legit.university_class" in res.output
    assert "harvest leakage" in res.output
    assert (tmp_path / "demo" / "scan" / "report.html").is_file()
    assert (tmp_path / "demo" / "replay" / "campaigns.json").is_file()
    report = json.loads((tmp_path / "demo" / "evaluation.json").read_text())
    acc = report["accounts"]
    assert report["counts"]["accounts"] == acc["tp"] + acc["fp"] + acc["fn"] + acc["tn"]


def test_simulate_then_evaluate_with_json(tmp_path: Path) -> None:
    data = tmp_path / "d"
    res = runner.invoke(app, ["simulate", "--out", str(data), "--scale", "0.02", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads((data / "manifest.json").read_text())["seed"] == 3
    res = runner.invoke(app, ["baseline", str(data), "--out", str(tmp_path / "det")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--labels",
            str(data / "labels"),
            "--detections",
            str(tmp_path / "det"),
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "precision" in json.dumps(json.loads((tmp_path / "m.json").read_text()))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["simulate", "--out", "{tmp}/x", "--scenario", "nope"], "unknown scenario"),
        (["simulate", "--out", "{tmp}/x", "--scenario", "{tmp}/missing.yaml"], "not found"),
        (["evaluate", "--labels", "{tmp}/none/labels", "--detections", "{tmp}/none"], "error"),
        (["baseline", "{tmp}/none", "--out", "{tmp}/det"], "error"),
    ],
)
def test_errors_are_one_line_and_non_zero(tmp_path: Path, args: list[str], reason: str) -> None:
    res = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 1
    assert reason in res.output
    assert "Traceback" not in res.output


def test_scenarios_lists_builtins() -> None:
    res = runner.invoke(app, ["scenarios"])
    assert res.exit_code == 0
    assert "default" in res.output and "seed-scale" in res.output


def test_rules_lint_command(tmp_path: Path) -> None:
    res = runner.invoke(app, ["rules", "lint"])
    assert res.exit_code == 0, res.output
    assert "clean" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad Id\n")
    res = runner.invoke(app, ["rules", "lint", str(bad)])
    assert res.exit_code == 1
    assert "bad.yaml" in res.output


def test_scan_rejects_a_bad_time_bound(tmp_path: Path) -> None:
    res = runner.invoke(app, ["scan", str(tmp_path), "--out", str(tmp_path / "d"), "--until", "yesterday"])
    assert res.exit_code == 1
    assert "--until" in res.output


def test_gateway_keys_refuses_a_declared_country_that_is_not_a_code() -> None:
    """A name where an ISO code belongs would make every request of the account look abroad."""
    res = runner.invoke(app, ["gateway", "keys", "acct_1", "--declared-country", "Germany"])
    assert res.exit_code == 1 and "ISO 3166" in res.output
