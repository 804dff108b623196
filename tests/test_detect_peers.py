"""Peers' evidence in the score (``distillshield scan --intel``): the noisy-OR and its guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillshield.detect.peers import apply_intel, campaign_intel, read_intel_evidence
from distillshield.errors import DistillShieldError
from distillshield.schema import INTEL_EVIDENCE, write_table


def _evidence(rows: list[tuple[str, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "account_id": a,
                "intel_indicators": 2,
                "intel_exact_indicators": 2,
                "intel_kinds": ["ipv4", "user_agent"],
                "intel_campaigns": ["peer-campaign-1"],
                "intel_sources": ["provider-a"],
                "intel_exchanges": 7,
                "intel_confidence": c,
            }
            for a, c in rows
        ],
        schema=INTEL_EVIDENCE.schema,
    )


def test_noisy_or_raises_only_reported_accounts() -> None:
    ev = _evidence([("b", 0.9), ("zz-no-traffic", 0.5)])
    got = apply_intel(["a", "b", "c"], np.array([0.2, 0.3, 0.99]), ev)
    assert got.score.tolist() == pytest.approx([0.2, 1 - 0.7 * 0.1, 0.99])
    assert np.isnan(got.confidence[0]) and got.confidence[1] == 0.9
    assert got.reasons[0] is None and got.reasons[2] is None
    assert got.reasons[1] == (
        "intel:indicators=2 kinds=ipv4,user_agent peers=provider-a confidence=0.9 (+0.63)"
    )
    assert (got.matched, got.unknown) == (1, 1)


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_weight_scales_trust_and_score_never_falls(weight: float) -> None:
    rng = np.random.default_rng(7)
    p = rng.random(50)
    ids = [f"a{i}" for i in range(50)]
    ev = _evidence([(a, float(c)) for a, c in zip(ids[::2], rng.random(25), strict=True)])
    got = apply_intel(ids, p, ev, weight=weight)
    assert np.all(got.score >= p)
    if weight == 0.0:
        assert np.array_equal(got.score, p)
        assert all(r is None for r in got.reasons)
    conf = dict(
        zip(ev.column("account_id").to_pylist(), ev.column("intel_confidence").to_pylist(), strict=True)
    )
    for i, a in enumerate(ids):
        c = conf.get(a, 0.0)
        assert got.score[i] == pytest.approx(1 - (1 - p[i]) * (1 - weight * c))


def test_weight_out_of_range_is_refused() -> None:
    with pytest.raises(DistillShieldError, match="intel-weight"):
        apply_intel(["a"], np.array([0.1]), _evidence([]), weight=1.5)


def test_read_accepts_directory_or_file_and_refuses_bad_evidence(tmp_path: Path) -> None:
    write_table(_evidence([("a", 0.5), ("b", 0.25)]), tmp_path, INTEL_EVIDENCE)
    assert read_intel_evidence(tmp_path).num_rows == 2
    assert read_intel_evidence(tmp_path / "intel_evidence.parquet").num_rows == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillShieldError, match=r"no intel_evidence\.parquet"):
        read_intel_evidence(tmp_path / "empty")
    with pytest.raises(DistillShieldError, match="no such file"):
        read_intel_evidence(tmp_path / "missing")
    dup = tmp_path / "dup"
    write_table(_evidence([("a", 0.5), ("a", 0.25)]), dup, INTEL_EVIDENCE)
    with pytest.raises(DistillShieldError, match="'a' appears more than once"):
        read_intel_evidence(dup)
    bad = tmp_path / "bad"
    write_table(_evidence([("a", 0.5), ("b", 1.5)]), bad, INTEL_EVIDENCE)
    with pytest.raises(DistillShieldError, match=r"row 1 \(account 'b'\).*not in \[0, 1\]"):
        read_intel_evidence(bad)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "sightings.parquet").write_bytes(b"")
    with pytest.raises(DistillShieldError, match=r"expected intel_evidence\.parquet"):
        read_intel_evidence(wrong / "sightings.parquet")


def test_campaign_intel_summarises_reported_members() -> None:
    campaigns = [
        {"id": "c1", "accounts": ["a", "b", "x"], "summary": "Three accounts."},
        {"id": "c2", "accounts": ["y"], "summary": "One account."},
    ]
    campaign_intel(campaigns, _evidence([("a", 0.9), ("b", 0.4)]))
    assert campaigns[0]["peer_intel"] == {
        "accounts_reported": 2,
        "peer_campaigns": ["peer-campaign-1"],
        "sources": ["provider-a"],
        "kinds": ["ipv4", "user_agent"],
    }
    assert campaigns[0]["summary"].endswith("reported 2 of its 3 accounts (ipv4, user_agent).")
    assert campaigns[1]["peer_intel"] is None and campaigns[1]["summary"] == "One account."
