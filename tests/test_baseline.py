"""The trivial volume baseline on a hand-built dataset, and end to end through the evaluator.

Traffic (hours after 2026-01-01T00:00Z; days are UTC days):

    heavy: day 0 @ 1, 2, 3, 4 (two requests at 3 h: request_id breaks the tie) ; day 1 @ 25
    burst: day 0 @ 23 ; day 1 @ 24, 24.5, 25   (3 on day 1: a day boundary resets the count)
    light: day 0 @ 5 ; day 1 @ 30
    quiet: day 1 @ 26

Per account-day counts: heavy 5, 1; burst 1, 3; light 1, 1; quiet 1 → sorted 1 1 1 1 1 3 5.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillshield.evaluate import evaluate
from distillshield.evaluate._detections import load_detections
from distillshield.schema import ACCOUNT_LABELS, DETECTION_ACCOUNTS, EXCHANGE_LABELS, EXCHANGES, write_table
from distillshield.scoring.baseline import volume_baseline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


TRAFFIC = [  # request_id, account_id, hours
    ("r01", "heavy", 1),
    ("r02", "heavy", 2),
    ("r04", "heavy", 3),
    ("r03", "heavy", 3),
    ("r05", "heavy", 4),
    ("r06", "heavy", 25),
    ("r07", "burst", 23),
    ("r08", "burst", 24),
    ("r09", "burst", 24.5),
    ("r10", "burst", 25),
    ("r11", "light", 5),
    ("r12", "light", 30),
    ("r13", "quiet", 26),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    n = len(TRAFFIC)
    exchanges = pa.table(
        {
            "request_id": [r for r, _, _ in TRAFFIC],
            "ts": pa.array([at(h) for _, _, h in TRAFFIC], pa.timestamp("us", tz="UTC")),
            "account_id": [a for _, a, _ in TRAFFIC],
            "model": ["m1"] * n,
            "endpoint": ["/v1/messages"] * n,
            "ip": ["192.0.2.1"] * n,
            "n_messages": pa.array([1] * n, pa.int32()),
            "input_tokens": pa.array([10] * n, pa.int32()),
            "output_tokens": pa.array([20] * n, pa.int32()),
            "stream": [False] * n,
            "status": pa.array([200] * n, pa.int16()),
        }
    )
    write_table(exchanges, root, EXCHANGES)
    return root


def read(out: Path) -> dict[str, dict[str, object]]:
    table = pq.read_table(out / "accounts.parquet")
    assert table.schema.equals(DETECTION_ACCOUNTS.schema)
    return {row["account_id"]: row for row in table.to_pylist()}


def test_fixed_threshold(data_dir: Path, tmp_path: Path) -> None:
    out = volume_baseline(data_dir, tmp_path / "det", daily_threshold=2)
    assert out == tmp_path / "det"
    rows = read(out)
    assert list(rows) == ["burst", "heavy", "light", "quiet"]  # sorted, only accounts with traffic
    # heavy's day 0 running count reaches 3 (> 2) at its third exchange: at 3 h, request r03
    # (ts tie broken by request_id). burst reaches 3 on day 1 at 25 h; day 0's one does not carry over.
    assert rows["heavy"]["flagged"] is True
    assert rows["heavy"]["first_flagged_at"] == at(3)
    assert rows["burst"]["first_flagged_at"] == at(25)
    assert rows["heavy"]["top_reasons"] == ["daily_volume>=3"]
    for name in ("light", "quiet"):
        assert (rows[name]["flagged"], rows[name]["first_flagged_at"], rows[name]["top_reasons"]) == (
            False,
            None,
            None,
        )
    assert all(r["campaign_id"] is None for r in rows.values())
    # Peak daily counts: heavy 5, burst 3, light 1, quiet 1 → cume_dist 1, 3/4, 2/4, 2/4.
    assert [rows[a]["score"] for a in ("heavy", "burst", "light", "quiet")] == [1.0, 0.75, 0.5, 0.5]
    assert json.loads((out / "campaigns.json").read_text()) == []
    load_detections(out)  # the output honours the contract the evaluator enforces


def test_threshold_is_an_exact_boundary(data_dir: Path, tmp_path: Path) -> None:
    rows = read(volume_baseline(data_dir, tmp_path / "det", daily_threshold=3))
    # burst's busiest day has exactly 3: not above the threshold.
    assert (rows["heavy"]["flagged"], rows["burst"]["flagged"]) == (True, False)
    assert rows["heavy"]["first_flagged_at"] == at(3)  # 4th exchange of day 0 is r04, also at 3 h


def test_quantile_threshold(data_dir: Path, tmp_path: Path) -> None:
    # Account-day counts 1 1 1 1 1 3 5: the 0.8 quantile (discrete) is 3, so only heavy (5) exceeds it.
    rows = read(volume_baseline(data_dir, tmp_path / "a", quantile=0.8))
    assert [a for a, r in rows.items() if r["flagged"]] == ["heavy"]
    assert rows["heavy"]["top_reasons"] == ["daily_volume>=4"]
    assert rows["heavy"]["first_flagged_at"] == at(3)  # 4th of day 0: r04 at 3 h
    # The 0.5 quantile is 1: anything with two requests in one day is flagged.
    rows = read(volume_baseline(data_dir, tmp_path / "b", quantile=0.5))
    assert [a for a, r in rows.items() if r["flagged"]] == ["burst", "heavy"]
    assert rows["burst"]["first_flagged_at"] == at(24.5)


def test_invalid_arguments(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quantile"):
        volume_baseline(data_dir, tmp_path / "det", quantile=1.5)
    with pytest.raises(ValueError, match="daily_threshold"):
        volume_baseline(data_dir, tmp_path / "det", daily_threshold=-1)


def test_end_to_end_through_the_evaluator(data_dir: Path, tmp_path: Path) -> None:
    write_table(
        pa.table(
            {
                "account_id": ["heavy", "burst", "light", "quiet"],
                "campaign_id": ["A", "A", None, None],
                "persona": ["campaign_a", "campaign_a", "saas_backend", "researcher"],
            }
        ),
        data_dir,
        ACCOUNT_LABELS,
    )
    campaign = {"heavy", "burst"}
    write_table(
        pa.table(
            {
                "request_id": [r for r, _, _ in TRAFFIC],
                "campaign_id": ["A" if a in campaign else None for _, a, _ in TRAFFIC],
            }
        ),
        data_dir,
        EXCHANGE_LABELS,
    )
    det = volume_baseline(data_dir, tmp_path / "det", daily_threshold=2)
    report = evaluate(data_dir / "labels", det)
    assert (report.accounts.precision, report.accounts.recall) == (1.0, 1.0)
    (a,) = report.campaigns
    # A starts at 1 h; heavy flagged at 3 h (2 h), burst at 25 h (24 h, the 90% point of 2 accounts).
    assert (a.hours_to_first_flag, a.hours_to_90pct_flagged) == (2.0, 24.0)
    # heavy leaks r01 r02 r03 r04 (r04 shares the 3 h flag instant); burst leaks all four (23..25 h).
    assert (a.exchanges, a.leaked_exchanges) == (10, 8)


def test_paths_with_quotes(data_dir: Path, tmp_path: Path) -> None:
    quoted = tmp_path / "it's data"
    data_dir.rename(quoted)
    rows = read(volume_baseline(quoted, tmp_path / "det", daily_threshold=2))
    assert [a for a, r in rows.items() if r["flagged"]] == ["burst", "heavy"]
