"""``bench/leakage_bound.py``: the oracle that flags every campaign account at the first
batch run after its first request, scored by ``distillshield evaluate`` (docs/results.md,
"The floor a 6-hour cadence sets")."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from distillshield.evaluate import evaluate
from distillshield.schema import EXCHANGES, read_table

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "leakage_bound.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leakage_bound", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bound-data") / "data"
    shutil.copytree(small_dataset, out)
    return out


def test_the_oracle_flags_each_campaign_account_at_the_first_cut_off_after_its_first_request(
    data: Path, tmp_path: Path
) -> None:
    step = timedelta(hours=6)
    n = _load().oracle_detections(data, step, tmp_path / "oracle")
    labels = pq.read_table(data / "labels" / "accounts.parquet").to_pylist()
    truth = {r["account_id"]: r["campaign_id"] for r in labels if r["campaign_id"] is not None}
    ex = read_table(data, EXCHANGES, columns=["account_id", "ts"]).to_pylist()
    t0, t1 = min(r["ts"] for r in ex), max(r["ts"] for r in ex)
    end = t1 + timedelta(microseconds=1)
    cuts, k = [], 1  # replay's cut-offs: t0 + k * step while before the end, then the end
    while t0 + k * step < end:
        cuts.append(t0 + k * step)
        k += 1
    cuts.append(end)
    first: dict[str, object] = {}
    for r in ex:
        if r["account_id"] in truth and (r["account_id"] not in first or r["ts"] < first[r["account_id"]]):
            first[r["account_id"]] = r["ts"]
    expected = {a: min(c for c in cuts if c > f) for a, f in first.items()}  # type: ignore[operator]

    det = pq.read_table(tmp_path / "oracle" / "accounts.parquet").to_pylist()
    assert n == len(det) == len(expected) > 0
    assert {r["account_id"]: r["first_flagged_at"] for r in det} == expected
    assert all(r["flagged"] and r["campaign_id"] == truth[r["account_id"]] for r in det)

    report = evaluate(data / "labels", tmp_path / "oracle", data_dir=data).to_dict()
    assert report["accounts"]["recall"] == 1.0 and report["false_positives"]["flagged"] == 0
    # leakage is what each account sent before its flag, nothing after, and is not empty:
    # the first cut-off is six hours after the first exchange
    assert 0.0 < report["leakage"]["share"] < 1.0
    assert all(c["coverage"] == 1.0 and c["purity"] == 1.0 for c in report["campaigns"])
