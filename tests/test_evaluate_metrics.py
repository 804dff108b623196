"""The evaluation harness on small hand-built datasets whose every metric is computed by hand.

The base dataset (times are hours after 2026-01-01T00:00Z):

    campaign A (actor op-a): c1 @0,2,4   c2 @1,5   c3 @3   c4 @6
    campaign B (actor op-b): d1 @10,12   d2 @11 (+ an unlabelled exchange @13: a reseller mixing)
    legitimate: l1 @7 (saas_backend)  l2 @8 (saas_backend)  l3 @9 (researcher)  l4 @20 (university)

The last exchange is l4's at 20 h: the flag time of a batch flag (null first_flagged_at).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from distillshield.errors import DetectionsError, SchemaError
from distillshield.evaluate import EvaluationReport, evaluate, render_report
from distillshield.evaluate.metrics import (
    account_metrics,
    adjusted_rand_index,
    best_cluster,
    flagged_by_index,
)
from distillshield.schema import ACCOUNT_LABELS, DETECTION_ACCOUNTS, EXCHANGE_LABELS, EXCHANGES, write_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def at_or_none(hours: float | None) -> datetime | None:
    return None if hours is None else at(hours)


LABELS = [  # account_id, campaign_id, actor, persona
    ("c1", "A", "op-a", "campaign_a"),
    ("c2", "A", "op-a", "campaign_a"),
    ("c3", "A", "op-a", "campaign_a"),
    ("c4", "A", "op-a", "campaign_a"),
    ("d1", "B", "op-b", "campaign_b"),
    ("d2", "B", "op-b", "campaign_b"),
    ("l1", None, None, "saas_backend"),
    ("l2", None, None, "saas_backend"),
    ("l3", None, None, "researcher"),
    ("l4", None, None, "university"),
]

TRAFFIC = [  # account_id, hours, exchange campaign label
    ("c1", 0, "A"),
    ("c1", 2, "A"),
    ("c1", 4, "A"),
    ("c2", 1, "A"),
    ("c2", 5, "A"),
    ("c3", 3, "A"),
    ("c4", 6, "A"),
    ("d1", 10, "B"),
    ("d1", 12, "B"),
    ("d2", 11, "B"),
    ("d2", 13, None),
    ("l1", 7, None),
    ("l2", 8, None),
    ("l3", 9, None),
    ("l4", 20, None),
]


def exchanges_table(traffic: Sequence[tuple[str, float, str | None]]) -> pa.Table:
    n = len(traffic)
    return pa.table(
        {
            "request_id": [f"r{i:03d}" for i in range(n)],
            "ts": pa.array([at(h) for _, h, _ in traffic], pa.timestamp("us", tz="UTC")),
            "account_id": [a for a, _, _ in traffic],
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


def make_dataset(root: Path, *, parts: bool = False) -> Path:
    """Write the base dataset to ``root`` and return its labels dir."""
    exchanges = exchanges_table(TRAFFIC)
    if parts:  # the NAME/part-*.parquet layout must read the same as NAME.parquet
        write_table(exchanges.slice(0, 7), root, EXCHANGES, part=0)
        write_table(exchanges.slice(7), root, EXCHANGES, part=1)
    else:
        write_table(exchanges, root, EXCHANGES)
    write_table(
        pa.table(
            {
                k: [row[i] for row in LABELS]
                for i, k in enumerate(["account_id", "campaign_id", "actor", "persona"])
            }
        ),
        root,
        ACCOUNT_LABELS,
    )
    write_table(
        pa.table({"request_id": exchanges.column("request_id"), "campaign_id": [c for _, _, c in TRAFFIC]}),
        root,
        EXCHANGE_LABELS,
    )
    return root / "labels"


Det = dict[str, tuple[bool, str | None, float | None]]  # account → (flagged, cluster, first flag hour)


def write_det(
    root: Path, det: Det, campaigns: list[dict[str, Any]] | None = None, score: float = 0.5
) -> Path:
    ids = list(det)
    table = pa.table(
        {
            "account_id": pa.array(ids, pa.string()),
            "score": pa.array([score if det[a][0] else 0.0 for a in ids], pa.float64()),
            "flagged": pa.array([det[a][0] for a in ids], pa.bool_()),
            "campaign_id": pa.array([det[a][1] for a in ids], pa.string()),
            "first_flagged_at": pa.array([at_or_none(det[a][2]) for a in ids], pa.timestamp("us", tz="UTC")),
        }
    )
    write_table(table, root, DETECTION_ACCOUNTS)
    if campaigns is not None:
        (root / "campaigns.json").write_text(json.dumps(campaigns))
    return root


MIXED: Det = {
    "c1": (True, "K1", 2),  # flagged exactly at its 2 h exchange: that exchange leaked
    "c2": (True, "K1", 0.5),  # flagged before both its exchanges
    "c3": (True, "K2", None),  # batch flag: at the end of the data (20 h)
    "c4": (False, None, None),
    "d1": (True, "K2", 12),
    # d2 and l4 are absent: unflagged, score 0
    "l1": (True, "K1", 7),
    "l2": (False, None, None),
    "l3": (True, None, 9),  # flagged, unclustered: a singleton
    "x9": (True, "K1", 1),  # unknown to the labels: ignored, counted
}


@pytest.fixture
def labels_dir(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


def run(
    labels: Path, tmp_path: Path, det: Det, campaigns: list[dict[str, Any]] | None = None
) -> EvaluationReport:
    return evaluate(labels, write_det(tmp_path / "det", det, campaigns))


def campaign(report: EvaluationReport, cid: str) -> Any:
    (result,) = [c for c in report.campaigns if c.campaign_id == cid]
    return result


# --- the mixed case: partial detection, batch and online flags, unknown and missing accounts


def test_mixed_account_metrics(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, MIXED)
    a = r.accounts
    assert (a.tp, a.fp, a.fn, a.tn) == (4, 2, 2, 2)
    assert a.precision == pytest.approx(4 / 6)
    assert a.recall == pytest.approx(4 / 6)
    assert a.f1 == pytest.approx(2 / 3)
    c = r.counts
    assert (c.accounts, c.campaign_accounts, c.legitimate_accounts, c.flagged) == (10, 6, 4, 6)
    assert (c.detection_rows, c.unknown_accounts, c.unknown_flagged) == (9, 1, 1)
    assert (c.campaigns, c.detected_clusters, c.campaign_objects) == (2, 2, 0)
    assert (c.exchanges, c.campaign_exchanges) == (15, 10)
    assert r.data_end_at == at(20)


def test_mixed_false_positives_per_persona(labels_dir: Path, tmp_path: Path) -> None:
    fp = run(labels_dir, tmp_path, MIXED).false_positives
    assert (fp.accounts, fp.flagged, fp.rate) == (4, 2, 0.5)
    assert [(p.persona, p.accounts, p.flagged, p.rate) for p in fp.by_persona] == [
        ("researcher", 1, 1, 1.0),
        ("saas_backend", 2, 1, 0.5),
        ("university", 1, 0, 0.0),
    ]


def test_mixed_campaign_recovery(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, MIXED)
    a, b = campaign(r, "A"), campaign(r, "B")
    # K1 = {c1, c2, l1} (x9 is unknown, not counted), K2 = {c3, d1}.
    assert (a.accounts, a.flagged, a.recall) == (4, 3, 0.75)
    assert (a.best_cluster, a.cluster_size, a.overlap) == ("K1", 3, 2)
    assert a.coverage == 0.5
    assert a.purity == pytest.approx(2 / 3)
    assert (b.accounts, b.flagged, b.recall) == (2, 1, 0.5)
    assert (b.best_cluster, b.cluster_size, b.overlap, b.coverage, b.purity) == ("K2", 2, 1, 0.5, 0.5)
    assert a.actor == "op-a"
    assert (a.attributed_actor, a.actor_correct) == (None, None)
    # Flagged: c1(A,K1) c2(A,K1) c3(A,K2) d1(B,K2) l1(-,K1) l3(-,-). Pair counts: index 1,
    # true pairs 3, predicted pairs 4, total 15 → (1 - 12/15) / (3.5 - 12/15) = 2/27.
    assert r.adjusted_rand_index == pytest.approx(2 / 27)


def test_mixed_time_to_detect(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, MIXED)
    a, b = campaign(r, "A"), campaign(r, "B")
    assert (a.first_exchange_at, a.first_flag_at, a.hours_to_first_flag) == (at(0), at(0.5), 0.5)
    # 90% of 4 accounts is 4; only 3 were ever flagged.
    assert (a.flagged_90pct_at, a.hours_to_90pct_flagged) == (None, None)
    assert (b.first_exchange_at, b.first_flag_at, b.hours_to_first_flag) == (at(10), at(12), 2.0)
    assert b.hours_to_90pct_flagged is None


def test_mixed_leakage(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, MIXED)
    a, b = campaign(r, "A"), campaign(r, "B")
    # A: c1 leaks @0 and @2 (flag at 2 h, inclusive), c2 none, c3 its one (batch), c4 its one.
    assert (a.exchanges, a.leaked_exchanges) == (7, 4)
    assert a.leakage == pytest.approx(4 / 7)
    # B: d1 leaks @10 and @12, d2 (never flagged) @11; d2's unlabelled exchange is not B's.
    assert (b.exchanges, b.leaked_exchanges, b.leakage) == (3, 3, 1.0)
    assert (r.leakage.exchanges, r.leakage.leaked, r.leakage.share) == (10, 7, 0.7)


def test_parts_layout_reads_the_same(tmp_path: Path) -> None:
    single = run(make_dataset(tmp_path / "one"), tmp_path / "r1", MIXED).to_dict()
    parted = run(make_dataset(tmp_path / "two", parts=True), tmp_path / "r2", MIXED).to_dict()
    for d in (single, parted):
        d.pop("inputs")
    assert single == parted


# --- the extremes


def test_no_detections(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, {})
    a = r.accounts
    assert (a.tp, a.fp, a.fn, a.tn) == (0, 0, 6, 4)
    assert (a.precision, a.recall, a.f1) == (None, 0.0, 0.0)
    assert (r.false_positives.rate, r.adjusted_rand_index) == (0.0, None)
    for c in r.campaigns:
        assert (c.flagged, c.recall, c.coverage) == (0, 0.0, 0.0)
        assert (c.best_cluster, c.cluster_size, c.purity) == (None, None, None)
        assert (c.first_flag_at, c.hours_to_first_flag, c.hours_to_90pct_flagged) == (None, None, None)
        assert c.leakage == 1.0
    assert r.leakage.share == 1.0
    n = r.counts
    assert (n.flagged, n.unknown_accounts, n.unknown_flagged, n.campaign_objects) == (0, 0, 0, 0)


def test_everything_flagged_by_a_batch_run(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, {acct: (True, None, None) for acct, *_ in LABELS})
    a = r.accounts
    assert (a.tp, a.fp, a.fn, a.tn) == (6, 4, 0, 0)
    assert (a.precision, a.recall, a.f1) == (0.6, 1.0, 0.75)
    assert r.false_positives.rate == 1.0
    assert all(p.rate == 1.0 for p in r.false_positives.by_persona)
    # Every prediction is a singleton: no pair agrees, ARI is exactly 0.
    assert r.adjusted_rand_index == 0.0
    ca, cb = campaign(r, "A"), campaign(r, "B")
    assert (ca.best_cluster, ca.cluster_size, ca.overlap, ca.coverage, ca.purity) == (None, 1, 1, 0.25, 1.0)
    # Flag time is the end of the data (20 h): honest batch scoring leaks everything.
    assert (ca.hours_to_first_flag, ca.hours_to_90pct_flagged) == (20.0, 20.0)
    assert (cb.hours_to_first_flag, cb.hours_to_90pct_flagged) == (10.0, 10.0)
    assert r.leakage.share == 1.0


def test_batch_flag_leaks_an_exchange_at_the_very_end(tmp_path: Path) -> None:
    traffic = [("c1", 0, "A"), ("c1", 5, "A"), ("l1", 1, None)]
    root = tmp_path / "data"
    write_table(exchanges_table(traffic), root, EXCHANGES)
    write_table(
        pa.table({"account_id": ["c1", "l1"], "campaign_id": ["A", None], "persona": ["p", "q"]}),
        root,
        ACCOUNT_LABELS,
    )
    write_table(
        pa.table({"request_id": ["r000", "r001", "r002"], "campaign_id": ["A", "A", None]}),
        root,
        EXCHANGE_LABELS,
    )
    r = evaluate(root / "labels", write_det(tmp_path / "det", {"c1": (True, None, None)}))
    assert (r.leakage.exchanges, r.leakage.leaked) == (2, 2)
    assert campaign(r, "A").hours_to_first_flag == 5.0


def test_perfect_detection_with_attribution(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {f"c{i}": (True, "K1", i) for i in range(1, 5)}
    det |= {"d1": (True, "K2", 10.5), "d2": (True, "K2", 14)}
    campaigns = [
        {"id": "K1", "accounts": ["c1", "c2", "c3", "c4"], "actor": "op-a"},
        {"id": "K2", "accounts": ["d1", "d2"], "actor": "op-z"},
    ]
    r = run(labels_dir, tmp_path, det, campaigns)
    assert (r.accounts.precision, r.accounts.recall, r.accounts.f1) == (1.0, 1.0, 1.0)
    assert r.adjusted_rand_index == 1.0
    a, b = campaign(r, "A"), campaign(r, "B")
    assert (a.coverage, a.purity, b.coverage, b.purity) == (1.0, 1.0, 1.0, 1.0)
    assert (a.attributed_actor, a.actor_correct) == ("op-a", True)
    assert (b.attributed_actor, b.actor_correct) == ("op-z", False)
    # A: flags at 1,2,3,4 h; 90% of 4 → the 4th flag. B: 90% of 2 → the 2nd flag, 14 h.
    assert (a.hours_to_first_flag, a.hours_to_90pct_flagged) == (1.0, 4.0)
    assert (b.hours_to_first_flag, b.hours_to_90pct_flagged) == (0.5, 4.0)
    # A leaks: c1 @0 (flag 1h), c2 @1 (flag 2h; @5 not), c3 @3 (flag 3h), c4 @6 > 4h no → 3/7.
    assert (a.leaked_exchanges, b.leaked_exchanges) == (3, 2)
    assert r.counts.campaign_objects == 2


def test_campaign_split_in_two_clusters(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {"c1": (True, "K1", 1), "c2": (True, "K1", 1), "c3": (True, "K2", 1), "c4": (True, "K2", 1)}
    a = campaign(run(labels_dir, tmp_path, det), "A")
    # Equal overlap and equal size: the smaller id wins, deterministically.
    assert (a.best_cluster, a.cluster_size, a.overlap, a.coverage, a.purity) == ("K1", 2, 2, 0.5, 1.0)


def test_split_tie_goes_to_the_purer_cluster(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {"c1": (True, "K1", 1), "c2": (True, "K1", 1), "l1": (True, "K1", 1)}
    det |= {"c3": (True, "K2", 1), "c4": (True, "K2", 1)}
    a = campaign(run(labels_dir, tmp_path, det), "A")
    assert (a.best_cluster, a.cluster_size, a.coverage, a.purity) == ("K2", 2, 0.5, 1.0)


def test_cluster_merging_two_campaigns(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {acct: (True, "M", 1) for acct in ("c1", "c2", "c3", "c4", "d1", "d2")}
    r = run(labels_dir, tmp_path, det)
    a, b = campaign(r, "A"), campaign(r, "B")
    assert (a.best_cluster, a.cluster_size, a.coverage) == ("M", 6, 1.0)
    assert a.purity == pytest.approx(4 / 6)
    assert b.purity == pytest.approx(2 / 6)
    # One predicted cluster against two true ones: index 7 = expected 7 → ARI 0.
    assert r.adjusted_rand_index == pytest.approx(0.0)


def test_cluster_on_unflagged_account_is_ignored(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {"c1": (True, "K1", 1), "c2": (False, "K1", None), "l2": (False, "K1", None)}
    a = campaign(run(labels_dir, tmp_path, det), "A")
    assert (a.best_cluster, a.cluster_size, a.purity) == ("K1", 1, 1.0)


def test_flag_before_first_exchange_is_zero_hours(labels_dir: Path, tmp_path: Path) -> None:
    det: Det = {"d1": (True, None, 2), "d2": (True, None, 3)}  # B starts at 10 h
    b = campaign(run(labels_dir, tmp_path, det), "B")
    assert (b.hours_to_first_flag, b.hours_to_90pct_flagged, b.leakage) == (0.0, 0.0, 0.0)


# --- inputs, output, rendering


def test_dataset_dir_and_explicit_data_dir(labels_dir: Path, tmp_path: Path) -> None:
    det = write_det(tmp_path / "det", MIXED)
    expected = evaluate(labels_dir, det).to_dict()
    for kwargs in (
        {"labels_dir": labels_dir.parent},
        {"labels_dir": labels_dir, "data_dir": labels_dir.parent},
    ):
        got = evaluate(kwargs.pop("labels_dir"), det, **kwargs).to_dict()
        assert got == expected


def test_to_dict_is_json_with_stable_keys(labels_dir: Path, tmp_path: Path) -> None:
    d = run(labels_dir, tmp_path, MIXED).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert list(d) == [
        "version",
        "inputs",
        "data_end_at",
        "counts",
        "accounts",
        "false_positives",
        "adjusted_rand_index",
        "campaigns",
        "leakage",
    ]
    assert d["version"] == 1
    assert d["data_end_at"] == "2026-01-01T20:00:00+00:00"
    assert d["accounts"] == {
        "tp": 4, "fp": 2, "fn": 2, "tn": 2,
        "precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3),
    }  # fmt: skip
    assert set(d["campaigns"][0]) == {
        "campaign_id", "actor", "accounts", "flagged", "recall", "best_cluster", "cluster_size", "overlap",
        "coverage", "purity", "attributed_actor", "actor_correct", "exchanges", "first_exchange_at",
        "first_flag_at", "hours_to_first_flag", "flagged_90pct_at", "hours_to_90pct_flagged",
        "leaked_exchanges", "leakage",
    }  # fmt: skip
    assert d["campaigns"][0]["first_flag_at"] == "2026-01-01T00:30:00+00:00"
    assert d["leakage"] == {"exchanges": 10, "leaked": 7, "share": 0.7}


def test_render_report(labels_dir: Path, tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    for table in render_report(run(labels_dir, tmp_path, MIXED)):
        console.print(table)
    text = console.export_text()
    assert "saas_backend" in text
    assert "57.1%" in text  # A's leakage, 4/7
    assert "—" in text  # undefined 90% times print as a dash, not 0


def test_report_is_frozen(labels_dir: Path, tmp_path: Path) -> None:
    r = run(labels_dir, tmp_path, {})
    with pytest.raises(AttributeError):
        r.adjusted_rand_index = 1.0  # type: ignore[misc]


def test_duplicate_labels_are_a_schema_error(tmp_path: Path) -> None:
    labels = make_dataset(tmp_path / "data")
    write_table(
        pa.table({"account_id": ["a", "a"], "persona": ["p", "p"]}), tmp_path / "data", ACCOUNT_LABELS
    )
    with pytest.raises(SchemaError, match="'a'"):
        evaluate(labels, write_det(tmp_path / "det", {}))


# --- the detector output contract


def _raw_det(tmp_path: Path, columns: dict[str, pa.Array | list[Any]]) -> Path:
    root = tmp_path / "det"
    root.mkdir()
    pq.write_table(pa.table(columns), root / "accounts.parquet")
    return root


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"account_id": ["c1", "c2", "c1"], "score": [0.1, 0.2, 0.3], "flagged": [True, False, True]},
         r"account 'c1' appears 2 times \(first at row 0\)"),
        ({"account_id": ["c1", "c2"], "score": [0.1, 1.5], "flagged": [True, True]},
         r"row 1 \(account 'c2'\): score 1.5 is outside \[0, 1\]"),
        ({"account_id": ["c1", "c2"], "score": [-0.1, 0.5], "flagged": [False, True]},
         r"row 0 \(account 'c1'\): score -0.1 is outside"),
        ({"account_id": ["c1", "c2"], "score": [0.1, math.nan], "flagged": [True, True]},
         r"row 1 \(account 'c2'\): score is NaN"),
        ({"account_id": ["c1", "c2"], "score": [None, 0.5], "flagged": [True, True]},
         r"row 0 \(account 'c1'\): score is null"),
        ({"account_id": ["c1", "c2"], "score": [0.5, 0.5], "flagged": [True, None]},
         r"row 1 \(account 'c2'\): flagged is null"),
        ({"account_id": ["c1", None], "score": [0.5, 0.5], "flagged": [True, True]},
         r"row 1 .*account_id is null"),
        ({"account_id": ["c1"], "flagged": [True]},
         r"required column 'score' is missing"),
        ({"account_id": ["c1"], "score": ["high"], "flagged": [True]},
         r"column 'score'"),
        ({"account_id": ["c1"], "score": [0.2], "flagged": [False],
          "first_flagged_at": pa.array([T0], pa.timestamp("us", tz="UTC"))},
         r"row 0 \(account 'c1'\): first_flagged_at is set but flagged is false"),
    ],
)  # fmt: skip
def test_invalid_accounts_file(
    labels_dir: Path, tmp_path: Path, columns: dict[str, list[Any]], message: str
) -> None:
    det = _raw_det(tmp_path, columns)
    with pytest.raises(DetectionsError, match=message) as info:
        evaluate(labels_dir, det)
    assert "accounts.parquet" in str(info.value)


@pytest.mark.parametrize(
    ("campaigns", "message"),
    [
        ('{"id": "K1"}', "expected a JSON list"),
        ("[1, 2", "not valid JSON"),
        ('[{"accounts": []}]', r"campaign \[0\]: 'id' must be"),
        ('[{"id": "K1", "accounts": "c1"}]', "'accounts' must be a list"),
        (
            '[{"id": "K1", "accounts": []}, {"id": "K1", "accounts": []}]',
            r"campaign \[1\]: id 'K1' is used twice",
        ),
        (
            '[{"id": "K2", "accounts": ["c1"]}]',
            "lists account 'c1', but accounts.parquet puts it in campaign 'K1'",
        ),
        ('[{"id": "K1", "accounts": [], "actor": 3}]', "'actor' must be a string"),
    ],
)
def test_invalid_campaigns_file(labels_dir: Path, tmp_path: Path, campaigns: str, message: str) -> None:
    det = write_det(tmp_path / "det", {"c1": (True, "K1", 1)})
    (det / "campaigns.json").write_text(campaigns)
    with pytest.raises(DetectionsError, match=message) as info:
        evaluate(labels_dir, det)
    assert "campaigns.json" in str(info.value)


def test_missing_detections(labels_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DetectionsError, match="detections directory not found"):
        evaluate(labels_dir, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DetectionsError, match=r"no accounts\.parquet"):
        evaluate(labels_dir, tmp_path / "empty")


# --- the pure building blocks


def test_account_metric_conventions() -> None:
    nothing = account_metrics(0, 0, 0, 5)  # no campaign accounts, nothing flagged
    assert (nothing.precision, nothing.recall, nothing.f1) == (None, None, None)
    only_fp = account_metrics(0, 3, 0, 2)  # no campaign accounts, some flagged
    assert (only_fp.precision, only_fp.recall, only_fp.f1) == (0.0, None, 0.0)
    usual = account_metrics(3, 1, 2, 4)
    assert usual.precision == 0.75
    assert usual.recall == 0.6
    assert usual.f1 == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))


def test_flagged_by_index_uses_exact_ceiling() -> None:
    times = list(range(100, 0, -1))  # unsorted on purpose
    assert flagged_by_index(times[:63], 70) == 100  # 90% of 70 is exactly 63 accounts
    assert flagged_by_index(times[:62], 70) is None
    assert flagged_by_index([5, 1, 3], 3) == 5  # ceil(2.7) = 3
    assert flagged_by_index([5, 1], 2) == 5  # ceil(1.8) = 2
    assert flagged_by_index([7], 1) == 7
    assert flagged_by_index([], 0) is None


def test_best_cluster_tie_breaks() -> None:
    assert best_cluster({}, {}, 0).cluster_size is None
    assert best_cluster({"K9": 1}, {"K9": 1}, 1).cluster == "K9"  # named beats singleton at equal purity
    assert best_cluster({"K9": 1}, {"K9": 4}, 1).cluster is None  # a singleton is purer
    assert best_cluster({"K2": 3, "K1": 3}, {"K1": 5, "K2": 3}, 0).cluster == "K2"


def test_ari_null_means_singleton() -> None:
    assert adjusted_rand_index([], []) is None
    assert adjusted_rand_index(["A", "A", None], ["K", "K", None]) == 1.0
    # Two legitimate accounts put together by the detector is a wrong pair.
    assert adjusted_rand_index([None, "A", "A"], ["K", "K", None]) < 0.5
    # Only legitimate accounts flagged: no campaign clustering to score (not a trivial 1.0).
    assert adjusted_rand_index([None, None], [None, None]) is None
    assert adjusted_rand_index([None, None], ["K", "K"]) is None
    with pytest.raises(ValueError, match="same length"):
        adjusted_rand_index(["A"], [])


def test_public_api_is_pinned() -> None:
    import distillshield.evaluate
    import distillshield.scoring

    assert sorted(distillshield.evaluate.__all__) == sorted(
        [
            "REPORT_VERSION", "AccountMetrics", "CampaignResult", "Counts", "DetectedCampaign", "Detections",
            "EvaluationReport", "FalsePositives", "Leakage", "PersonaFalsePositives", "evaluate",
            "load_detections", "render_report",
        ]
    )  # fmt: skip
    assert distillshield.scoring.__all__ == ["volume_baseline"]
