"""Incremental scans (``scan --state``): day by day equals one run over the whole period."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillshield.backends import get_backend
from distillshield.detect.incremental import StateError, load_state, scan_increment
from distillshield.detect.scan import ScanResult, scan_tables
from distillshield.prepare import prepare
from distillshield.schema import EXCHANGES, read_table


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private, prepared copy of the small scenario (14 days)."""
    out = tmp_path_factory.mktemp("incr-data") / "data"
    shutil.copytree(small_dataset, out)
    prepare(out)
    return out


def _day_ends(data: Path) -> list[datetime]:
    ts = read_table(data, EXCHANGES, columns=["ts"]).column("ts")
    first, last = min(ts.to_pylist()), max(ts.to_pylist())
    day = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=1)
    ends = []
    while day <= last:
        ends.append(day)
        day += timedelta(days=1)
    return [*ends, day]


@pytest.fixture(scope="module")
def daily(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ScanResult], Path, Path]:
    """One incremental run per UTC day, each on a fresh engine (as a daily job would be)."""
    work = tmp_path_factory.mktemp("incr")
    results = [
        scan_increment(data, work / "state", work / "det", until=u, backend=get_backend(), report=False)
        for u in _day_ends(data)
    ]
    return results, work / "state", work / "det"


def _first_difference(a: pa.Table, b: pa.Table, key: str, tol: float) -> str | None:
    """The first column (in order) where two tables keyed by ``key`` differ, with examples."""
    if a.column_names != b.column_names:
        return f"columns differ: {a.column_names} vs {b.column_names}"
    ra = {r[key]: r for r in a.to_pylist()}
    rb = {r[key]: r for r in b.to_pylist()}
    if ra.keys() != rb.keys():
        return f"{key} differ: only in one: {sorted(ra.keys() ^ rb.keys())[:5]}"
    for col in a.column_names:
        bad = []
        for k in sorted(ra):
            u, v = ra[k][col], rb[k][col]
            same = (
                math.isclose(u, v, rel_tol=tol, abs_tol=tol)
                if isinstance(u, float) and isinstance(v, float)
                else u == v
            )
            if not same:
                bad.append((k, u, v))
        if bad:
            return f"column {col!r}: {len(bad)} rows differ, e.g. {bad[:3]}"
    return None


def _flagged(r: ScanResult) -> set[str]:
    acc = r.accounts
    return {
        a
        for a, f in zip(acc.column("account_id").to_pylist(), acc.column("flagged").to_pylist(), strict=True)
        if f
    }


def test_day_by_day_equals_one_run(data: Path, daily: tuple[list[ScanResult], Path, Path]) -> None:
    results, _, _ = daily
    assert len(results) >= 14, "the small scenario spans 14 days"
    last = results[-1]
    whole = scan_tables(data, until=_day_ends(data)[-1], backend=get_backend())
    assert _first_difference(whole.table, last.table, "account_id", 1e-9) is None
    edge_key = [("kind", "ascending"), ("src", "ascending"), ("dst", "ascending")]
    assert whole.edges.sort_by(edge_key).equals(last.edges.sort_by(edge_key))
    assert _flagged(whole) == _flagged(last)
    assert _flagged(last), "the scenario's campaigns are found"
    members = sorted(sorted(c["accounts"]) for c in whole.campaigns)
    assert members == sorted(sorted(c["accounts"]) for c in last.campaigns)
    ids, score = whole.accounts.column("account_id").to_pylist(), whole.accounts.column("score").to_pylist()
    assert last.accounts.column("account_id").to_pylist() == ids
    assert last.accounts.column("score").to_pylist() == pytest.approx(score, abs=1e-9)


def test_each_run_reads_only_its_day(data: Path, daily: tuple[list[ScanResult], Path, Path]) -> None:
    results, state_dir, _ = daily
    state = load_state(state_dir)
    total = read_table(data, EXCHANGES, columns=["ts"]).num_rows
    assert [c["exchanges"] for c in state["chunks"]] == [r.summary["chunk_exchanges"] for r in results]
    assert sum(c["exchanges"] for c in state["chunks"]) == total  # every exchange once, none twice
    assert all(c["exchanges"] < total / 3 for c in state["chunks"])
    for prev, cur in zip(state["chunks"], state["chunks"][1:], strict=False):
        assert cur["since"] == prev["until"]


def test_campaign_ids_are_stable(daily: tuple[list[ScanResult], Path, Path]) -> None:
    results, state_dir, det = daily
    state = load_state(state_dir)
    events: list[dict[str, Any]] = [e for c in state["chunks"] for e in c["campaign_events"]]
    born = {e["campaign"] for e in events if e["event"] in ("new", "split")}
    for r in results:  # every id a run reports was announced (new/split) when it first appeared
        assert {c["id"] for c in r.campaigns} <= born
    final = {c["id"] for c in results[-1].campaigns}
    assert set(state["campaigns"]) == final
    # a campaign found on the first day and still running keeps its id to the end
    first_day = {c["id"] for c in results[0].campaigns}
    assert first_day & final
    written = json.loads((det / "campaigns.json").read_text())
    assert {c["id"] for c in written} == final
    assert all(c["first_detected_until"] <= state["until"] for c in written)
    acc = pq.read_table(det / "accounts.parquet")
    assert set(x for x in acc.column("campaign_id").to_pylist() if x) == final


def test_a_gap_an_overlap_or_other_bins_are_refused(
    data: Path, daily: tuple[list[ScanResult], Path, Path], tmp_path: Path
) -> None:
    _, state_dir, _ = daily
    copy = tmp_path / "state"
    shutil.copytree(state_dir, copy)
    end = datetime.fromisoformat(load_state(copy)["until"])
    with pytest.raises(StateError, match="must start there"):
        scan_increment(
            data, copy, tmp_path / "d", since=end + timedelta(hours=1), until=end + timedelta(days=1)
        )
    with pytest.raises(StateError, match="not after"):
        scan_increment(data, copy, tmp_path / "d", until=end - timedelta(days=1))
    with pytest.raises(StateError, match="built with"):
        scan_increment(data, copy, tmp_path / "d", until=end + timedelta(days=1), window_hours=12)
    manifest = json.loads((copy / "state.json").read_text())
    manifest["version"] = 999
    (copy / "state.json").write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="version"):
        load_state(copy)


def test_a_crashed_run_leaves_the_state_usable(data: Path, tmp_path: Path) -> None:
    """Statistics written by a run that died before its manifest are ignored and replaced."""
    ends = _day_ends(data)
    state = tmp_path / "state"
    scan_increment(data, state, tmp_path / "d1", until=ends[0], report=False)
    # a second run crashed after writing its statistics but before the manifest
    stray = state / "stats" / "chunks" / "00001.parquet"
    pq.write_table(pq.read_table(state / "stats" / "chunks" / "00000.parquet"), stray)
    before = load_state(state)
    assert len(before["chunks"]) == 1
    r = scan_increment(data, state, tmp_path / "d2", until=ends[1], report=False)
    after = load_state(state)
    assert len(after["chunks"]) == 2
    assert r.summary["exchanges"] == sum(c["exchanges"] for c in after["chunks"])
    whole = scan_tables(data, until=ends[1], backend=get_backend())
    assert _first_difference(whole.table, r.table, "account_id", 1e-9) is None


def test_cli_scan_with_state(data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distillshield.cli import app

    runner = CliRunner()
    ends = _day_ends(data)
    base = ["scan", str(data), "--out", str(tmp_path / "det"), "--state", str(tmp_path / "st"), "--no-report"]
    for end in ends[:2]:
        res = runner.invoke(app, [*base, "--until", end.isoformat()])
        assert res.exit_code == 0, res.output
    assert len(load_state(tmp_path / "st")["chunks"]) == 2
    res = runner.invoke(app, [*base, "--since", ends[0].isoformat(), "--until", ends[3].isoformat()])
    assert res.exit_code == 1 and "must start there" in res.output
    assert len(load_state(tmp_path / "st")["chunks"]) == 2  # the refused run changed nothing
