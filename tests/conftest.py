"""Shared fixtures: one small simulated dataset reused by many tests (simulation is deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default scenario at 10% scale: every persona and campaign, a few seconds to build."""
    from distillshield.simulate import load_scenario, simulate

    out = tmp_path_factory.mktemp("sim") / "data"
    simulate(load_scenario("default"), out, scale=0.1)
    return out


@pytest.fixture(scope="session")
def prompts_corpus() -> Path:
    """../shared/data/prompts, or skip: the project must work without it."""
    path = SHARED_DATA / "prompts"
    if not path.is_dir():
        pytest.skip("../shared/data/prompts is absent")
    return path
