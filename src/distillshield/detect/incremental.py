"""Incremental scans with persisted state: a daily run reads only the new day's exchanges.

``distillshield scan DATA --out DET --state STATE --until 2026-02-08T00:00:00Z`` summarises the
exchanges in ``[state's until, until)`` into the mergeable statistics of
:mod:`distillshield.features.stats`, appends them to ``STATE``, and finishes fingerprints and
edges from every chunk summarised so far — then scores, clusters and writes the detection
contract as a batch scan does. Because a batch scan goes through the very same finishing SQL
(with one chunk), a run day by day ends with the same flags and campaigns as one run over the
whole period (tested in ``tests/test_incremental.py``).

State directory (all files written atomically; the manifest last, so a run that crashes
half-way leaves the previous state intact and is simply re-run)::

    STATE/state.json                    manifest: version, bin parameters, the chunks (label,
                                        since, until, exchanges, and the campaign events of
                                        the run that added it: new, grew, merged, split,
                                        ended), the campaign registry (id -> members)
    STATE/stats/<table>/<n>.parquet     statistics of chunk n (chunks, vals, bins, activity)

Campaign ids stay stable: a campaign found by a run keeps the id of the registered campaign
it continues (the one most of whose members it holds); one that absorbs several registered
campaigns keeps the id of the one it shares most members with and records a ``merged``
event; one split off from a registered campaign gets a new id and a ``split`` event; a
registered campaign none of whose members is in a campaign any more has ``ended``
(:func:`_stabilise`).

What is still read from the history (documented limits, docs/incremental.md): the release
pivot in the campaign dossier reads flagged accounts' exchanges over the whole period;
template families come from ``distillshield prepare`` over the dataset given.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.backends import Backend, get_backend, quote_name
from distillshield.detect.floor import THIN_FLOOR
from distillshield.detect.model import AccountModel
from distillshield.detect.scan import ScanResult, StepStat, register_window, scan_tables
from distillshield.errors import DistillShieldError
from distillshield.features.stats import STATS_SCHEMAS, StatsNames, StatsParams, merge_statement, summarise
from distillshield.linking.edges import stats_params

__all__ = ["STATE_VERSION", "StateError", "load_state", "scan_increment"]

#: Bumped when the statistics tables change meaning; an older state is refused, not misread.
STATE_VERSION = 1

_NAMES = StatsNames(
    chunks="_ds_state_chunks", vals="_ds_state_vals", bins="_ds_state_bins", activity="_ds_state_activity"
)


class StateError(DistillShieldError):
    """An incremental state that cannot be continued as asked (gap, overlap, other parameters)."""


def _write_json(path: Path, body: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_state(state_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``state_dir`` (an empty state when the directory has none)."""
    path = Path(state_dir) / "state.json"
    if not path.is_file():
        return {"version": STATE_VERSION, "params": None, "chunks": [], "until": None, "campaigns": {}}
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if body.get("version") != STATE_VERSION:
        raise StateError(
            f"{path}: state version {body.get('version')!r}, this build reads {STATE_VERSION}; "
            "rebuild the state from the logs"
        )
    return body


def _drop_orphans(state_dir: Path, chunks: list[dict[str, Any]]) -> None:
    """Remove statistics files no manifest chunk names (left by a run that crashed)."""
    keep = {f"{c['index']:05d}.parquet" for c in chunks}
    for key in STATS_SCHEMAS:
        d = state_dir / "stats" / key
        if d.is_dir():
            for f in d.iterdir():
                if f.name not in keep:
                    f.unlink() if f.is_file() else shutil.rmtree(f)


def _register_state(backend: Backend, state_dir: Path) -> StatsNames:
    """The persisted statistics as engine tables: each read once from its chunk files, and
    all but ``chunks`` merged into one row per key (:func:`merge_statement`) — the finishing
    statements read them many times (once per edge kind), and the chunks' rows only ever
    enter them through sums, extremes and distinct counts."""
    for key, name in _NAMES.items():
        files = f"{name}_files"
        backend.register(files, state_dir / "stats" / key)
        backend.execute(f"CREATE OR REPLACE TABLE {quote_name(name)} AS {merge_statement(key, files)}")
    return _NAMES


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _stabilise(
    result: ScanResult, registry: dict[str, dict[str, Any]], until: str
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Give this run's campaigns the ids of the registered campaigns they continue.

    Each registered campaign's *successor* is the current campaign holding most of its
    members (ties: the smaller current id). A current campaign that is the successor of one
    or more registered campaigns takes the id of the one it shares most members with (ties:
    first registered, then smaller id) and the others are ``merged`` into it; a current
    campaign that is nobody's successor but holds former members was ``split`` off (new id);
    one with no former member is ``new``. A registered campaign with no member in any
    current campaign has ``ended``. Returns the new registry and the events; rewrites the
    ids in ``result`` in place.
    """
    prior = {cid: set(c["accounts"]) for cid, c in registry.items()}
    where = {a: c["id"] for c in result.campaigns for a in c["accounts"]}
    successor: dict[str, str] = {}
    for p, members in prior.items():
        counts: dict[str, int] = {}
        for a in members:
            if a in where:
                counts[where[a]] = counts.get(where[a], 0) + 1
        if counts:
            successor[p] = min(counts, key=lambda c: (-counts[c], c))
    rename: dict[str, str] = {}
    events: list[dict[str, Any]] = []
    used = set(registry)
    for c in sorted(result.campaigns, key=lambda c: c["id"]):
        members = set(c["accounts"])
        heirs = sorted(
            (p for p, s in successor.items() if s == c["id"]),
            key=lambda p: (-len(prior[p] & members), registry[p]["first_until"], p),
        )
        if heirs:
            keep = heirs[0]
            rename[c["id"]] = keep
            if heirs[1:]:
                events.append({"event": "merged", "campaign": keep, "absorbed": heirs[1:]})
            if members != prior[keep]:
                events.append(
                    {
                        "event": "changed",
                        "campaign": keep,
                        "accounts": len(members),
                        "added": len(members - prior[keep]),
                        "removed": len(prior[keep] - members),
                    }
                )
            continue
        new_id = c["id"] if c["id"] not in used else f"{c['id']}-{until[:10]}"
        used.add(new_id)
        rename[c["id"]] = new_id
        origins = sorted(p for p in prior if prior[p] & members)
        if origins:
            events.append({"event": "split", "campaign": new_id, "from": origins, "accounts": len(members)})
        else:
            events.append({"event": "new", "campaign": new_id, "accounts": len(members)})
    for p in sorted(set(registry) - set(successor)):
        events.append({"event": "ended", "campaign": p})
    for c in result.campaigns:
        c["id"] = rename[c["id"]]
    col = result.accounts.column("campaign_id").to_pylist()
    result.accounts = result.accounts.set_column(
        result.accounts.schema.get_field_index("campaign_id"),
        "campaign_id",
        pa.array([rename.get(x, x) if x is not None else None for x in col], pa.string()),
    )
    result.campaigns.sort(key=lambda c: (-c["score"], c["id"]))
    new_registry = {
        c["id"]: {
            "accounts": sorted(c["accounts"]),
            "first_until": registry.get(c["id"], {}).get("first_until", until),
        }
        for c in result.campaigns
    }
    for c in result.campaigns:
        c["first_detected_until"] = new_registry[c["id"]]["first_until"]
    for e in events:
        e["until"] = until
    return new_registry, events


def scan_increment(
    data_dir: str | Path,
    state_dir: str | Path,
    out: str | Path,
    *,
    until: datetime | None = None,
    since: datetime | None = None,
    backend: Backend | None = None,
    model: AccountModel | None = None,
    seed: int = 0,
    report: bool = True,
    window_hours: float = 24.0,
    intel: str | Path | None = None,
    intel_weight: float = 1.0,
    thin_floor: int = THIN_FLOOR,
    dormant: bool = True,
) -> ScanResult:
    """Add ``[state's until, until)`` to the state in ``state_dir``, then scan everything so far.

    ``since``, when given, must equal where the state ends (a gap or an overlap would lose or
    double-count exchanges, so it is refused). The first run of a state covers everything
    before ``until``. ``until=None`` takes the dataset's last exchange (plus one
    microsecond); exchanges stamped before a state's ``until`` that arrive later are not
    picked up — run once a day's partition is complete. ``intel``: as for
    :func:`~distillshield.detect.scan.scan` (peers' evidence is not part of the state: pass
    the latest hunt on every run).
    """
    from distillshield.detect.output import run_record, write_detections, write_parquet
    from distillshield.detect.peers import read_intel_evidence

    evidence = read_intel_evidence(intel) if intel is not None else None
    from distillshield.prepare import prepare

    root = Path(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    state = load_state(root)
    params = stats_params(window_hours)
    want = {"window_hours": params.window_hours, "sync_bin_minutes": params.sync_bin_minutes}
    if state["params"] is not None and state["params"] != want:
        raise StateError(f"{root}: state was built with {state['params']}, this run asks for {want}")
    b = backend or get_backend()
    t0 = time.perf_counter()
    prepared = prepare(data_dir, backend=b)
    steps = [StepStat("prepare", sum(r.rows for r in prepared), time.perf_counter() - t0)]

    start = datetime.fromisoformat(state["until"]) if state["until"] else None
    if since is not None and since != start:
        raise StateError(
            f"{root}: the state ends at {state['until'] or '(empty state)'}; a run must start there, "
            f"not at {since.isoformat()}"
        )
    t0 = time.perf_counter()
    names = register_window(b, data_dir, since=start, until=until)
    if until is None:
        last = b.query(f"SELECT max(ts) AS t FROM {names['exchanges']}").to_pylist()[0]["t"]
        if last is None:
            raise StateError(f"{data_dir}: no exchanges after the state's end {state['until']}")
        until = last + timedelta(microseconds=1)
        names = register_window(b, data_dir, since=start, until=until, registered=names)
    if start is not None and until <= start:
        raise StateError(f"{root}: until {until.isoformat()} is not after the state's end {state['until']}")
    index = len(state["chunks"])
    label = f"{_iso(start) or '-inf'}/{_iso(until)}"
    stats = summarise(b, names, chunk=label, params=StatsParams(**want))
    _drop_orphans(root, state["chunks"])
    for key, table in stats.items():
        d = root / "stats" / key
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{index:05d}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(d / f"{index:05d}.parquet")
    chunk_rows = int(pc.sum(stats["chunks"].column("n")).as_py() or 0)
    steps.append(StepStat("stats", chunk_rows, time.perf_counter() - t0))

    t0 = time.perf_counter()
    history = register_window(b, data_dir, until=until, registered=names)  # release pivots read it
    registered = _register_state(b, root)
    steps.append(StepStat("register", 0, time.perf_counter() - t0))
    result = scan_tables(
        data_dir,
        until=until,
        backend=b,
        model=model,
        seed=seed,
        registered=history,
        stats=registered,
        intel=evidence,
        intel_weight=intel_weight,
        thin_floor=thin_floor,
        dormant=dormant,
    )
    result.steps[:0] = steps
    until_iso = until.isoformat()
    registry, events = _stabilise(result, state["campaigns"], until_iso)
    result.summary.update(state_chunks=index + 1, state=str(root), chunk_exchanges=chunk_rows)

    t0 = time.perf_counter()
    run = run_record(data_dir, result.summary, result.steps)
    write_detections(Path(out), result.accounts, result.campaigns, run=run, report=report)
    write_parquet(Path(out) / "fingerprints.parquet", result.table)
    chunks = [
        *state["chunks"],
        {
            "index": index,
            "label": label,
            "since": _iso(start),
            "until": until_iso,
            "exchanges": chunk_rows,
            "campaign_events": events,
        },
    ]
    _write_json(
        root / "state.json",
        {
            "version": STATE_VERSION,
            "params": want,
            "chunks": chunks,
            "until": until_iso,
            "campaigns": registry,
        },
    )
    result.steps.append(StepStat("write", result.accounts.num_rows, time.perf_counter() - t0))
    return result
