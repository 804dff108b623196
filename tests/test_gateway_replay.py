"""Replaying logged traffic through the gateway: decisions per exchange, counts that
reconcile, determinism, and batch verdicts that never see the future.

The small scenario (10 %) is cut to its first four days to keep the batch steps cheap.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillshield.gateway.replay import DECISIONS_SCHEMA, ReplayReport, replay_gateway
from distillshield.gateway.verdicts import VerdictSet
from distillshield.prepare import prepare
from distillshield.schema import EXCHANGE_LABELS, EXCHANGES, read_table, write_table

EVERY = "12h"


def _cut(src: Path, dst: Path, days: float) -> None:
    """A copy holding only the first ``days`` of exchanges (and their labels)."""
    shutil.copytree(src, dst)
    ex = read_table(dst, EXCHANGES)
    until = pc.min(ex.column("ts")).as_py() + timedelta(days=days)
    kept = ex.filter(pc.less(ex.column("ts"), pa.scalar(until, ex.schema.field("ts").type)))
    shutil.rmtree(dst / EXCHANGES.name)
    write_table(kept, dst, EXCHANGES, part=0)
    labels = read_table(dst, EXCHANGE_LABELS)
    keep = pc.is_in(labels.column("request_id"), kept.column("request_id"))
    shutil.rmtree(dst / EXCHANGE_LABELS.name)
    write_table(labels.filter(keep), dst, EXCHANGE_LABELS, part=0)


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gw-replay") / "data"
    _cut(small_dataset, out, 4)
    prepare(out)
    return out


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplayReport, Path]:
    out = tmp_path_factory.mktemp("gw-replay-out")
    return replay_gateway(data, out, every=EVERY), out


def test_every_exchange_gets_one_decision_and_the_counts_reconcile(
    run: tuple[ReplayReport, Path], data: Path
) -> None:
    report, out = run
    decisions = pq.read_table(out / "decisions.parquet")
    assert decisions.schema.equals(DECISIONS_SCHEMA)
    ex = read_table(data, EXCHANGES, columns=["request_id", "ts"])
    assert decisions.num_rows == ex.num_rows == report.exchanges
    assert sorted(decisions.column("request_id").to_pylist()) == sorted(ex.column("request_id").to_pylist())
    ts = decisions.column("ts").to_pylist()
    assert ts == sorted(ts)  # decided in time order
    assert sum(report.actions.values()) == report.exchanges
    assert report.has_labels and report.overall["reconciles"]
    camp = report.overall["campaign"]
    assert camp["exchanges"] == sum(c["exchanges"] for c in report.campaigns)
    assert camp["exchanges"] + report.overall["non_campaign"] == report.exchanges
    legit = report.overall["legit"]
    assert legit["exchanges"] == sum(p["exchanges"] for p in report.personas)
    assert (
        legit["exchanges"] + sum(p["exchanges"] for p in report.collateral) == report.overall["non_campaign"]
    )
    assert legit["affected"] == sum(p["affected"] for p in report.personas)
    for c in report.campaigns:
        assert 0 <= c["leaked"] <= c["strict_leaked"] <= c["exchanges"]
    # the gateway does something: batch verdicts arrive and campaign traffic is countered
    assert camp["leakage"] < 0.5
    assert legit["affected_share"] < 0.05
    written = json.loads((out / "report.json").read_text())
    assert written["exchanges"] == report.exchanges and "campaign" in report.table()


def test_outcome_columns_follow_the_actions(run: tuple[ReplayReport, Path]) -> None:
    _, out = run
    rows = pq.read_table(out / "decisions.parquet").to_pylist()
    for r in rows:
        stopped = r["action"] in ("throttle", "block") or r["refused"]
        assert r["forwarded"] == (not stopped)
        if r["altered"]:
            assert r["forwarded"] and (
                "mark" in r["actions"] or ("protect" in r["actions"] and r["had_reasoning"])
            )
        if r["forwarded"] and "mark" in r["actions"]:
            assert r["altered"]


def test_a_second_replay_decides_identically(
    run: tuple[ReplayReport, Path], data: Path, tmp_path: Path
) -> None:
    report, out = run
    again = replay_gateway(data, tmp_path / "again", every=EVERY)  # own batch state, from scratch
    a = pq.read_table(out / "decisions.parquet")
    b = pq.read_table(tmp_path / "again" / "decisions.parquet")
    assert a.drop(["verdicts"]).equals(b.drop(["verdicts"]))
    assert a.column("verdicts").to_pylist() == b.column("verdicts").to_pylist()
    assert again.campaigns == report.campaigns and again.personas == report.personas


def _mutate(data: Path, dst: Path, at: Any, accounts: list[str]) -> list[str]:
    """``data`` plus one exchange per account at ``at``, each carrying a new metadata handle
    (copies of the account's first exchange); returns the new request ids."""
    shutil.copytree(data, dst)
    ex = read_table(dst, EXCHANGES)
    rows = []
    for i, acct in enumerate(accounts):
        first = ex.filter(pc.equal(ex.column("account_id"), acct)).slice(0, 1).to_pylist()[0]
        first.update(request_id=f"req_mutation_{i:04d}", ts=at, metadata="ds-test-handle-from-the-future")
        rows.append(first)
    extra = pa.Table.from_pylist(rows, schema=ex.schema)
    write_table(extra, dst, EXCHANGES, part=1)
    shutil.rmtree(dst / "derived")
    prepare(dst)
    return [r["request_id"] for r in rows]


def test_batch_verdicts_at_t_are_built_only_from_data_before_t(
    run: tuple[ReplayReport, Path], data: Path, tmp_path: Path
) -> None:
    report, out = run
    det_dirs = sorted((out / "batch" / "det").iterdir())
    # three accounts of one campaign, as the first steps saw them
    members: dict[str, list[str]] = {}
    for d in det_dirs:
        acc = pq.read_table(d / "accounts.parquet", columns=["account_id", "campaign_id"]).to_pylist()
        for r in acc:
            if r["campaign_id"] is not None:
                members.setdefault(r["campaign_id"], []).append(r["account_id"])
        if any(len(set(v)) >= 3 for v in members.values()):
            break
    trio = sorted(next(set(v) for v in members.values() if len(set(v)) >= 3))[:3]
    ex = read_table(data, EXCHANGES, columns=["ts"])
    t0 = pc.min(ex.column("ts")).as_py()
    at = t0 + timedelta(days=2, hours=3)  # inside the fifth 12-hour window
    mutated = tmp_path / "mutated"
    _mutate(data, mutated, at, trio)
    rep2 = replay_gateway(mutated, tmp_path / "out2", every=EVERY)
    a = pq.read_table(out / "decisions.parquet").to_pylist()
    b = pq.read_table(tmp_path / "out2" / "decisions.parquet").to_pylist()
    before_a = [r for r in a if r["ts"] < at]
    before_b = [r for r in b if r["ts"] < at]
    assert before_a and before_a == before_b  # nothing decided before `at` changed
    # ... while the batch did see the injected exchanges at its next step
    steps = sorted((tmp_path / "out2" / "batch" / "verdicts").glob("*/*.bin"))
    key = ("meta", "ds-test-handle-from-the-future")
    seen = [(p.name, key in VerdictSet.from_bytes(p.read_bytes()).indicators) for p in steps]
    cut = at.strftime("%Y%m%dT%H%M%S")
    assert not any(hit for name, hit in seen if name.split("-", 1)[1][:15] <= cut)
    assert any(hit for name, hit in seen if name.split("-", 1)[1][:15] > cut), seen
    assert rep2.exchanges == report.exchanges + 3


def test_the_online_account_model_through_the_cli_reuses_the_batch_and_changes_only_decisions(
    run: tuple[ReplayReport, Path], data: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from distillshield.cli import app

    _, base = run
    out = tmp_path / "with-model"
    res = CliRunner().invoke(
        app,
        [
            "gateway",
            "replay",
            str(data),
            "--out",
            str(out),
            "--every",
            EVERY,
            "--online-model",
            "shipped",
            "--batch-dir",
            str(base / "batch"),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert not (out / "batch").exists()  # the earlier run's batch verdicts were read, not rebuilt
    assert report["overall"]["reconciles"] and report["exchanges"] == run[0].exchanges
    assert "model" in report["risk"]["kinds"]
    reasons = pq.read_table(out / "decisions.parquet", columns=["reasons"]).column("reasons").to_pylist()
    fired = [r for rs in reasons for r in rs if r.startswith("model:")]
    assert fired and all(
        r.split(":")[1] in ("agentic_coding_pivot", "agentic_extraction", "cot_harvest", "hydra_reseller")
        for r in fired
    )
    assert "model" not in json.loads((base / "report.json").read_text())["risk"]["kinds"]
