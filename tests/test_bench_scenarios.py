"""The held-out evaluation scenarios under ``bench/scenarios`` stay valid and stay held out."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distillshield.detect.train import training_scenarios
from distillshield.simulate import load_scenario, simulate

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "bench" / "scenarios").glob("*.yaml"))


def test_there_are_bench_scenarios() -> None:
    names = ["evasive-2.yaml", "evasive-3.yaml", "evasive-4.yaml", "evasive.yaml"]
    assert [p.name for p in SCENARIOS] == names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_bench_scenario_simulates_every_campaign(path: Path, tmp_path: Path) -> None:
    """Every parameter is one the personas know (an unknown one is an error) and every
    campaign still produces labelled accounts at a small scale."""
    sc = load_scenario(path)
    simulate(sc, tmp_path / "data", scale=0.05)
    labels = pq.read_table(tmp_path / "data" / "labels" / "accounts.parquet").to_pylist()
    campaigns = {r["campaign_id"] for r in labels if r["campaign_id"] is not None}
    assert campaigns == {c.id for c in sc.campaigns}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_bench_scenario_is_not_a_training_seed(path: Path) -> None:
    """A held-out scenario shares no seed with what the shipped model was fitted on."""
    assert load_scenario(path).seed not in {load_scenario(t).seed for t in training_scenarios()}
