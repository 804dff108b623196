"""The scan and the replay end to end on a simulated dataset: contract, quality floor, no future."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillshield.detect import ScanResult, load_model, scan, scan_tables
from distillshield.detect.replay import cutoffs, parse_every, replay
from distillshield.errors import DistillShieldError
from distillshield.evaluate import evaluate
from distillshield.schema import ACCOUNTS, EXCHANGES, RELEASES, read_table, write_table


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy: scanning prepares the dataset in place, the session fixture stays raw."""
    out = tmp_path_factory.mktemp("scan-data") / "data"
    shutil.copytree(small_dataset, out)
    return out


@pytest.fixture(scope="module")
def scanned(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "det"
    scan(data, out)
    return out


def test_scan_writes_the_detection_contract(scanned: Path, data: Path) -> None:
    acc = pq.read_table(scanned / "accounts.parquet")
    assert {
        "account_id",
        "score",
        "flagged",
        "campaign_id",
        "top_reasons",
        "novelty",
        "campaign_share",
    } <= set(acc.column_names)
    scores = acc.column("score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    campaigns = json.loads((scanned / "campaigns.json").read_text())
    assert campaigns, "the default scenario has four campaigns"
    c = campaigns[0]
    for key in (
        "id",
        "accounts",
        "score",
        "first_seen",
        "last_seen",
        "exchanges",
        "capability_mix",
        "cot_elicitation_share",
        "infrastructure",
        "metadata_clues",
        "release_pivot",
        "timeline",
        "link_edges",
        "summary",
    ):
        assert key in c, key
    assert set(c["infrastructure"]) <= {
        "ips",
        "prefixes",
        "asns",
        "user_agents",
        "tls_fingerprints",
        "payment_fingerprints",
        "template_ids",
    }
    # every campaign member is flagged and carries that campaign id
    member_of = dict(
        zip(acc.column("account_id").to_pylist(), acc.column("campaign_id").to_pylist(), strict=True)
    )
    flagged = dict(zip(acc.column("account_id").to_pylist(), acc.column("flagged").to_pylist(), strict=True))
    for camp in campaigns:
        assert all(member_of[a] == camp["id"] and flagged[a] for a in camp["accounts"])
    flagged_rows = acc.filter(acc.column("flagged"))
    assert all(r for r in flagged_rows.column("top_reasons").to_pylist()), "every flag has reasons"
    heads = set(load_model().head_names)
    for reasons in flagged_rows.column("top_reasons").to_pylist():  # the head that scored it comes first
        assert reasons[0].startswith("tactic:") and reasons[0].removeprefix("tactic:") in heads, reasons
    html = (scanned / "report.html").read_text()
    assert "://" not in html and "<svg" in html and campaigns[0]["id"] in html  # no network reference
    run = json.loads((scanned / "scan.json").read_text())
    assert [s["name"] for s in run["steps"]][:5] == ["prepare", "register", "stats", "fingerprints", "edges"]


def test_scan_quality_floor_on_the_small_default(scanned: Path, data: Path) -> None:
    """A floor, not the target: docs/results.md has the full-scale figures and their commands."""
    report = evaluate(data / "labels", scanned, data_dir=data).to_dict()
    assert report["accounts"]["precision"] >= 0.95
    assert report["accounts"]["recall"] >= 0.9
    assert report["false_positives"]["rate"] <= 0.01
    for camp in report["campaigns"]:
        assert camp["coverage"] >= 0.8, camp
        assert camp["purity"] >= 0.9, camp


def test_the_floor_holds_a_lone_campaign_account_not_a_linked_one(data: Path, tmp_path: Path) -> None:
    """detect/floor.py through the scan: a campaign's accounts are linked to each other, so a
    floor far above their request counts holds none of them; left alone (every other campaign
    account removed from the logs) the same kind of account is held, and flagged without it."""
    from distillshield.prepare import prepare

    linked = scan_tables(data, dossiers=False, thin_floor=1000)
    assert linked.summary["held_thin_flags"] == 0 and linked.summary["accounts_flagged"] > 0
    labels = pq.read_table(data / "labels" / "accounts.parquet").to_pylist()
    campaign = sorted(r["account_id"] for r in labels if r["campaign_id"] == "campaign-d")
    lone, others = (
        campaign[0],
        [r["account_id"] for r in labels if r["campaign_id"] and r["account_id"] != campaign[0]],
    )
    alone = tmp_path / "alone"
    shutil.copytree(data, alone, ignore=shutil.ignore_patterns("derived"))
    for spec in (EXCHANGES, ACCOUNTS):
        t = read_table(alone, spec)
        _replace(
            alone, spec, t.filter(pc.invert(pc.is_in(t.column("account_id"), value_set=pa.array(others))))
        )
    prepare(alone)

    def row(floor: int) -> dict[str, Any]:
        result = scan_tables(alone, dossiers=False, thin_floor=floor)
        return next(r for r in result.accounts.to_pylist() if r["account_id"] == lone) | result.summary

    off, held = row(0), row(1000)
    assert off["flagged"] and not off["held"] and off["held_thin_flags"] == 0
    assert (
        not held["flagged"]
        and held["held"]
        and held["score"] == off["score"]
        and held["held_thin_flags"] >= 1
    )
    assert held["top_reasons"][0].startswith("held: flagged on ")


def test_the_floor_reads_the_hubs_of_the_flags_before_it(
    scanned: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan hands the floor the hubs (detect.campaigns.hub_values) of the flags before it,
    at replay steps too (``dossiers=False``). With a client cap of 2 a campaign's pinned
    stacks are hubs on the small dataset; every hub holds flagged accounts. (``scanned``: the
    dataset is prepared.)"""
    import importlib

    from distillshield.detect.scan import SCORING_EDGES
    from distillshield.linking import EdgeParams

    scan_module = importlib.import_module("distillshield.detect.scan")
    seen: dict[str, Any] = {}
    real = scan_module.hold_thin_flags

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(flagged=args[2].copy(), ids=args[0], hubs=kwargs["hubs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_module, "hold_thin_flags", spy)
    params = EdgeParams(max_client_accounts=2, kinds=SCORING_EDGES.kinds)
    scan_tables(data, dossiers=False, thin_floor=1000, edge_params=params)
    flagged = {a for a, f in zip(seen["ids"], seen["flagged"], strict=True) if f}
    stacks = {v: h for v, h in seen["hubs"].items() if v.startswith("client=")}
    assert stacks and all(2 * len(flagged & set(h)) > len(h) > 2 for h in stacks.values())


def test_a_campaign_account_that_sent_nothing_is_named_by_its_card(data: Path, tmp_path: Path) -> None:
    """detect/dormant.py through the scan: a campaign account whose requests are removed from
    the logs (registered, never used) is flagged by the card its flagged siblings hold, in
    their campaign; with ``dormant=False`` it is not in the output at all."""
    from collections import Counter

    from distillshield.prepare import prepare

    labels = {
        r["account_id"]: r["campaign_id"]
        for r in pq.read_table(data / "labels" / "accounts.parquet").to_pylist()
    }
    cards = {
        r["account_id"]: r["payment_fingerprint"]
        for r in read_table(data, ACCOUNTS).to_pylist()
        if r["payment_fingerprint"] is not None
    }
    holders = Counter(c for a, c in cards.items() if labels.get(a))
    sleeper = min(a for a, c in cards.items() if labels.get(a) and holders[c] == max(holders.values()))
    cut = tmp_path / "sleeper"
    shutil.copytree(data, cut, ignore=shutil.ignore_patterns("derived"))
    t = read_table(cut, EXCHANGES)
    _replace(cut, EXCHANGES, t.filter(pc.not_equal(t.column("account_id"), sleeper)))
    prepare(cut)

    result = scan_tables(cut)
    row = next(r for r in result.accounts.to_pylist() if r["account_id"] == sleeper)
    assert row["flagged"] and row["top_reasons"][0].startswith("dormant: no request in the window; its card")
    siblings = [
        r
        for r in result.accounts.to_pylist()
        if cards.get(r["account_id"]) == cards[sleeper] and r["flagged"]
    ]
    assert len(siblings) >= 3 and row["campaign_id"] is not None
    assert Counter(r["campaign_id"] for r in siblings).most_common(1)[0][0] == row["campaign_id"]
    campaign = next(c for c in result.campaigns if c["id"] == row["campaign_id"])
    assert sleeper in campaign["dormant_accounts"] and sleeper in campaign["accounts"]
    assert result.summary["dormant_flagged"] >= 1
    off = scan_tables(cut, dossiers=False, dormant=False)
    assert (
        sleeper not in off.accounts.column("account_id").to_pylist() and off.summary["dormant_flagged"] == 0
    )


def _replace(root: Path, spec: Any, kept: pa.Table) -> None:
    """Rewrite one canonical table of the dataset at ``root`` with ``kept``."""
    target = root / spec.name
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.with_name(target.name + ".parquet").unlink()
    write_table(kept, root, spec, part=0 if spec is EXCHANGES else None)


def _truncate(src: Path, dst: Path, until: object) -> None:
    """A copy of a prepared dataset that physically holds only what was known before ``until``."""
    shutil.copytree(src, dst)
    for spec, col in ((EXCHANGES, "ts"), (ACCOUNTS, "created_at"), (RELEASES, "released_at")):
        t = read_table(dst, spec)
        _replace(dst, spec, t.filter(pc.less(t.column(col), pa.scalar(until, t.schema.field(col).type))))


def test_until_sees_nothing_from_the_future(data: Path, tmp_path: Path) -> None:
    scan(data, tmp_path / "warm", report=False)  # make sure derived tables exist
    t0 = read_table(data, EXCHANGES, columns=["ts"]).column("ts")
    until = pc.min(t0).as_py() + timedelta(days=3, hours=5)
    windowed = scan_tables(data, until=until)
    _truncate(data, tmp_path / "cut", until)
    physical = scan_tables(tmp_path / "cut")
    a, b = windowed.accounts, physical.accounts
    assert a.column("account_id").to_pylist() == b.column("account_id").to_pylist()
    assert a.column("flagged").to_pylist() == b.column("flagged").to_pylist()
    assert a.column("score").to_pylist() == pytest.approx(b.column("score").to_pylist(), abs=1e-9)
    assert windowed.summary["exchanges"] == physical.summary["exchanges"]


def test_replay_fills_first_flagged_at_on_the_cadence(data: Path, scanned: Path, tmp_path: Path) -> None:
    seen: list[tuple[datetime, dict[str, bool]]] = []

    def on_step(cut: datetime, step: ScanResult) -> None:
        acc = step.accounts
        flags = acc.column("flagged").to_pylist()
        seen.append((cut, dict(zip(acc.column("account_id").to_pylist(), flags, strict=True))))

    result = replay(data, tmp_path / "rep", every="1d", report=False, on_step=on_step)
    acc = pq.read_table(tmp_path / "rep" / "accounts.parquet")
    flagged = acc.filter(acc.column("flagged"))
    assert flagged.num_rows > 0
    # every step reached the caller, in order; an account's first flag is the first step
    # that flagged it, and an account no step flagged is not flagged
    assert [c for c, _ in seen] == sorted(c for c, _ in seen) and len(seen) == result.summary["steps"]
    first_step: dict[str, datetime] = {}
    for cut, flags in seen:
        for a, f in flags.items():
            if f:
                first_step.setdefault(a, cut)
    ids, firsts = flagged.column("account_id").to_pylist(), flagged.column("first_flagged_at").to_pylist()
    assert dict(zip(ids, firsts, strict=True)) == first_step
    ts = read_table(data, EXCHANGES, columns=["ts", "account_id"])
    t0 = pc.min(ts.column("ts")).as_py()
    first_seen: dict[str, object] = {}
    for a, t in zip(ts.column("account_id").to_pylist(), ts.column("ts").to_pylist(), strict=True):
        if a not in first_seen or t < first_seen[a]:  # type: ignore[operator]
            first_seen[a] = t
    before_use: dict[object, list[str]] = {}
    for a, f in zip(
        flagged.column("account_id").to_pylist(), flagged.column("first_flagged_at").to_pylist(), strict=True
    ):
        assert f is not None
        if a not in first_seen or f <= first_seen[a]:  # type: ignore[operator]
            before_use.setdefault(f, []).append(a)
        steps = (f - t0) / timedelta(days=1)
        last = max(first_seen.values())  # type: ignore[type-var]
        assert abs(steps - round(steps)) < 1e-9 or f > last  # on the cadence, or the final step
    # flagged before its first request: only an account that step named by its card or sign-up
    for f, names in before_use.items():
        step = {r["account_id"]: r for r in scan_tables(data, until=f, dossiers=False).accounts.to_pylist()}
        for a in names:
            assert step[a]["flagged"] and step[a]["top_reasons"][0].startswith("dormant: "), a
    assert result.summary["mode"] == "replay"
    # the last step finishes from the statistics merged step by step: its campaigns are a
    # full scan's, member for member, with the same dossier counts
    doc = json.loads((scanned / "campaigns.json").read_text())
    batch = doc["campaigns"] if isinstance(doc, dict) else doc

    def key(cs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((tuple(c["accounts"]), c["exchanges"], c["first_seen"], c["last_seen"]) for c in cs)

    assert result.campaigns and key(result.campaigns) == key(batch)
    report = evaluate(data / "labels", tmp_path / "rep", data_dir=data).to_dict()
    assert report["leakage"]["share"] < 1.0  # replay catches campaigns before the data ends
    assert report["accounts"]["recall"] >= 0.9


def test_cutoffs_are_the_cadence_then_the_end() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    h6 = timedelta(hours=6)
    end_of = [t0 + h6 * k for k in (1, 2)]
    # a last exchange exactly on a multiple still gets its own run (it is before the end)
    assert cutoffs(t0, t0 + 2 * h6, h6) == [*end_of, t0 + 2 * h6 + timedelta(microseconds=1)]
    last = t0 + timedelta(hours=13)
    assert cutoffs(t0, last, h6) == [*end_of, last + timedelta(microseconds=1)]
    assert cutoffs(t0, t0, h6) == [t0 + timedelta(microseconds=1)]  # one exchange: one run, at the end


def test_parse_every() -> None:
    assert parse_every("6h") == timedelta(hours=6)
    assert parse_every("30m") == timedelta(minutes=30)
    assert parse_every("1.5d") == timedelta(days=1.5)
    for bad in ("6", "h", "0m", "-1h", "6 hours"):
        with pytest.raises(DistillShieldError):
            parse_every(bad)


def test_daily_fingerprints_partition_the_whole_period(scanned: Path, data: Path) -> None:
    from distillshield.backends import get_backend
    from distillshield.detect.scan import windowed_fingerprints

    daily = windowed_fingerprints(get_backend(), data)
    whole = pq.read_table(scanned / "fingerprints.parquet")
    per_account: dict[str, int] = {}
    ids, counts = daily.column("account_id").to_pylist(), daily.column("n_requests").to_pylist()
    for a, n in zip(ids, counts, strict=True):
        per_account[a] = per_account.get(a, 0) + n
    assert per_account == dict(
        zip(whole.column("account_id").to_pylist(), whole.column("n_requests").to_pylist(), strict=True)
    )
    starts = daily.column("window_start").to_pylist()
    assert all(s.hour == 0 and s.minute == 0 for s in starts)  # UTC days


def test_train_fits_a_loadable_model_on_a_small_training_scenario(tmp_path: Path) -> None:
    from distillshield.detect.design import FEATURES, HEAD_DIRECTIONS, head_features
    from distillshield.detect.train import train, training_scenarios

    scenarios = training_scenarios()
    assert [p.name for p in scenarios] == ["train-1.yaml", "train-2.yaml", "train-3.yaml", "train-4.yaml"]
    out = tmp_path / "model.json"
    model = train(out, scenarios=scenarios[:1], scale=0.05, cutoffs=(1.0, None), work_dir=tmp_path / "work")
    again = load_model(out)
    assert again == model
    again.check_features(FEATURES)
    assert again.provenance["scenarios"][0]["scenario"] == "train-1"
    assert again.provenance["positives"] > 0
    assert set(again.head_names) <= set(again.provenance["positives_per_head"])
    for head in again.heads:
        # declared directions hold after any fit, with the head's own exceptions
        for f, c in zip(head_features(head.name), head.coef, strict=True):
            assert c * f.direction >= -1e-9, (head.name, f.name)
    assert again.provenance["head_directions"] == {h: dict(d) for h, d in HEAD_DIRECTIONS.items()}
