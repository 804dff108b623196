"""``distillshield scan``: from a prepared dataset to scored accounts and campaigns.

The scan is a chain of named steps (like :func:`distillshield.prepare.prepare`), each
timed and counted in :class:`ScanResult.steps` so a run can be inspected:

``register``     canonical and derived tables as views, restricted to ``[since, until)``:
                 exchanges by ``ts``, accounts by ``created_at < until``, releases by
                 ``released_at < until`` — nothing from after ``until`` is visible, which
                 is what makes :mod:`distillshield.detect.replay` honest.
``stats``        one pass over the window's exchanges into mergeable per-account statistics
                 (:mod:`distillshield.features.stats`); an incremental run
                 (:mod:`distillshield.detect.incremental`) takes them for the new day only.
``fingerprints`` the behavioural fingerprint per account (:mod:`distillshield.features`).
``edges``        evidence edges between accounts (:mod:`distillshield.linking`).
``graph``        per-account graph features (:mod:`distillshield.detect.graph`).
``score``        the account model's calibrated probability, its top reasons, and an
                 unsupervised novelty score (:mod:`distillshield.detect.novelty`).
``campaigns``    flagged accounts clustered into campaigns with their evidence dossier
                 (:mod:`distillshield.detect.campaigns`).

Everything relational runs through :class:`~distillshield.backends.Backend`; what runs in
Python works on one row per account (thousands to a few hundred thousand rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield._sql import quote_name
from distillshield.backends import Backend, get_backend
from distillshield.detect.design import FEATURES
from distillshield.detect.dormant import Dormant, name_dormant, with_dormant
from distillshield.detect.floor import THIN_FLOOR, hold_thin_flags
from distillshield.detect.graph import graph_features, organisations
from distillshield.detect.model import AccountModel, load_model
from distillshield.detect.neighbours import SHARED_COLUMN, score_with_peers
from distillshield.detect.novelty import novelty_scores
from distillshield.detect.reasons import top_reasons
from distillshield.errors import DistillShieldError
from distillshield.features import account_fingerprints, register_dataset
from distillshield.features.stats import StatsNames, summarise
from distillshield.linking import EdgeParams, account_edges
from distillshield.linking.edges import stats_params
from distillshield.schema import EXCHANGES

#: Edge kinds the scoring reads (``sync`` only feeds the campaign dossier).
SCORING_EDGES = EdgeParams(kinds=tuple(k for k in EdgeParams().kinds if k != "sync"))
#: Score from which an account's reasons name the model head (tactic) that scored it: more
#: likely than not a campaign's, the same level as the gateway's ``suspect`` verdict.
TACTIC_SHOWN_AT = 0.5

__all__ = [
    "ScanResult",
    "StepStat",
    "account_table",
    "cache_inputs",
    "register_window",
    "scan",
    "scan_tables",
    "windowed_fingerprints",
]


@dataclass(frozen=True)
class StepStat:
    """What one step did: output rows and seconds."""

    name: str
    rows: int
    seconds: float


@dataclass
class ScanResult:
    """Everything a scan produced (:func:`scan` writes the files from it)."""

    accounts: pa.Table
    campaigns: list[dict[str, Any]]
    edges: pa.Table
    table: pa.Table
    steps: list[StepStat] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _ts_literal(value: datetime) -> str:
    if value.tzinfo is None:
        raise DistillShieldError(
            f"time bound {value!r} has no time zone; give one (e.g. 2026-02-03T00:00:00Z)"
        )
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def register_window(
    backend: Backend,
    data_dir: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    registered: dict[str, str | None] | None = None,
) -> dict[str, str | None]:
    """Register the dataset with only ``[since, until)`` visible; returns fingerprint kwargs.

    Raw tables are registered as ``*_all``; the names returned are views that hide the
    future. ``since`` only narrows the exchanges (accounts created earlier still exist).
    ``registered``: the result of an earlier call on this backend (e.g. after
    :func:`cache_inputs`): the raw tables are reused, only the window views are redefined.
    """
    names = (
        dict(registered)
        if registered is not None
        else register_dataset(backend, data_dir, exchanges="ex_all", accounts="acc_all", releases="rel_all")
    )
    cond = []
    if since is not None:
        cond.append(f"ts >= {_ts_literal(since)}")
    if until is not None:
        cond.append(f"ts < {_ts_literal(until)}")
    where = f" WHERE {' AND '.join(cond)}" if cond else ""
    backend.execute(f"CREATE OR REPLACE VIEW ex AS SELECT * FROM ex_all{where}")
    acc_where = f" WHERE created_at < {_ts_literal(until)}" if until is not None else ""
    backend.execute(f"CREATE OR REPLACE VIEW acc AS SELECT * FROM acc_all{acc_where}")
    rel: str | None = None
    if names["releases"] is not None:
        rel_where = f" WHERE released_at < {_ts_literal(until)}" if until is not None else ""
        backend.execute(f"CREATE OR REPLACE VIEW rel AS SELECT * FROM rel_all{rel_where}")
        rel = "rel"
    names.update(exchanges="ex", accounts="acc", releases=rel)
    return names


#: Exchange columns a scan never reads (the text): left out of the in-memory copy.
_TEXT_COLUMNS = ("prompt", "response", "system_prompt")


def cache_inputs(backend: Backend, names: dict[str, str | None]) -> None:
    """Copy the inputs a scan reads into engine memory, exchanges sorted by time.

    For a replay, which scans the same data dozens of times with a growing window: the
    Parquet files are decoded and the joins' inputs laid out once, and each step's
    ``ts < t`` filter skips whole row groups of the sorted copy. ``names`` as returned by
    :func:`register_window`; the raw names then point at the copies.
    """
    cols = ", ".join(quote_name(f.name) for f in EXCHANGES.schema if f.name not in _TEXT_COLUMNS)
    backend.execute(f"CREATE OR REPLACE TABLE _ds_ex_mem AS SELECT {cols} FROM ex_all ORDER BY ts")
    backend.execute("CREATE OR REPLACE VIEW ex_all AS SELECT * FROM _ds_ex_mem")
    for key in ("signals", "enrichment"):
        name = str(names[key])
        backend.execute(f"CREATE OR REPLACE TABLE _ds_{key}_mem AS SELECT * FROM {quote_name(name)}")
        backend.execute(f"CREATE OR REPLACE VIEW {quote_name(name)} AS SELECT * FROM _ds_{key}_mem")


def _timed(steps: list[StepStat], name: str, fn: Callable[[], pa.Table]) -> pa.Table:
    t0 = time.perf_counter()
    out = fn()
    steps.append(StepStat(name, out.num_rows, time.perf_counter() - t0))
    return out


def account_table(
    backend: Backend,
    names: dict[str, str | None],
    *,
    steps: list[StepStat] | None = None,
    edge_params: EdgeParams | None = None,
    stats: StatsNames | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Fingerprint + graph features per account with traffic, and the edges.

    ``names`` are the registered tables (:func:`register_window`). Returns
    ``(table, edges)``; ``table`` has one row per account, ordered by account id.
    ``stats``: statistics tables already registered (an incremental state's); without it the
    window's exchanges are summarised first (step ``stats``).
    """
    log = steps if steps is not None else []
    if stats is None:
        stats = StatsNames()
        t0 = time.perf_counter()
        summarise(backend, names, params=stats_params(params=edge_params), into=stats)
        log.append(StepStat("stats", 0, time.perf_counter() - t0))
    fp = _timed(
        log,
        "fingerprints",
        lambda: account_fingerprints(
            backend,
            accounts=str(names["accounts"]),
            account_enrichment=str(names["account_enrichment"]),
            stats=stats,
        ),
    )
    edges = _timed(
        log,
        "edges",
        lambda: account_edges(backend, accounts=str(names["accounts"]), params=edge_params, stats=stats),
    )
    backend.register("_ds_population", fp.select(["account_id"]))
    graph = _timed(
        log,
        "graph",
        lambda: graph_features(
            backend,
            edges,
            population="_ds_population",
            accounts=str(names["accounts"]),
            account_enrichment=str(names["account_enrichment"]),
        ),
    )
    if graph.column("account_id").to_pylist() != fp.column("account_id").to_pylist():
        raise DistillShieldError("internal: graph features and fingerprints disagree on accounts")
    table = fp
    for name in graph.column_names[1:]:
        table = table.append_column(name, graph.column(name))
    table = _timed(log, "rules", lambda: _with_rules(backend, table))
    st = stats
    table = _timed(log, "shared metadata", lambda: _with_shared_metadata(backend, table, st))
    return table, edges


def _with_shared_metadata(backend: Backend, table: pa.Table, stats: StatsNames) -> pa.Table:
    """Add ``shared_metadata``: the metadata pairs each account sent that another account sent
    too, sorted (what :mod:`distillshield.detect.neighbours` reads). Every holder counts, with
    no ``max_group`` cap: the work is linear in holders, no pairs are formed."""
    vals = quote_name(stats.vals)
    rows = backend.query(
        f"WITH m AS (SELECT val, account_id FROM {vals} WHERE kind = 'metadata' AND val IS NOT NULL "
        "GROUP BY val, account_id), "
        "g AS (SELECT val FROM m GROUP BY val HAVING count(*) >= 2) "
        "SELECT m.account_id, m.val FROM m JOIN g ON g.val = m.val"
    )
    held: dict[str, list[str]] = {}
    for a, v in zip(rows.column("account_id").to_pylist(), rows.column("val").to_pylist(), strict=True):
        held.setdefault(a, []).append(v)
    ids = table.column("account_id").to_pylist()
    column = pa.array([sorted(held.get(a, ())) for a in ids], pa.list_(pa.string()))
    return table.append_column(SHARED_COLUMN, column)


def windowed_fingerprints(
    backend: Backend,
    data_dir: str | Path,
    *,
    every: timedelta = timedelta(days=1),
    since: datetime | None = None,
    until: datetime | None = None,
    registered: dict[str, str | None] | None = None,
) -> pa.Table:
    """The behavioural fingerprint per account and window (UTC days by default).

    One row per (window, account with traffic in it), with ``window_start`` and the columns
    of :func:`~distillshield.features.account_fingerprints` computed on that window alone —
    what an analyst reads to see when an account changed behaviour (a release pivot, a
    trace-harvesting phase). The scan's model reads the whole-period table.
    """
    reg = registered or register_window(backend, data_dir)
    span = backend.query("SELECT min(ts) AS t0, max(ts) AS t1 FROM ex_all").to_pylist()[0]
    if span["t0"] is None:
        return pa.table({"window_start": pa.array([], pa.timestamp("us", tz="UTC"))})
    step = every.total_seconds()
    first = max(span["t0"], since) if since else span["t0"]
    last = min(span["t1"], until - timedelta(microseconds=1)) if until else span["t1"]
    start = datetime.fromtimestamp(first.timestamp() // step * step, tz=UTC)
    parts = []
    lo = start
    while lo <= last:
        hi = lo + every
        names = register_window(
            backend,
            data_dir,
            since=max(lo, since) if since else lo,
            until=min(hi, until) if until else hi,
            registered=reg,
        )
        fp = account_fingerprints(backend, **names)  # type: ignore[arg-type]
        if fp.num_rows:
            col = pa.array([lo] * fp.num_rows, pa.timestamp("us", tz="UTC"))
            parts.append(fp.add_column(0, "window_start", col))
        lo = hi
    register_window(backend, data_dir, registered=reg)
    if not parts:
        return pa.table({"window_start": pa.array([], pa.timestamp("us", tz="UTC"))})
    return pa.concat_tables(parts)


def _with_rules(backend: Backend, table: pa.Table) -> pa.Table:
    """Add ``rule_score`` (sum of fired rules' weights, clipped to [0, 1]) and ``rules_fired``.

    The shipped detection rules (``scoring/rules/*.yaml``, docs/rules.md) run over the same
    per-account table the model reads; their combined weight is one model input (so the
    trained model decides how far to trust hand-written rules) and the rules that fired
    appear in the reasons.
    """
    from distillshield.scoring.rules import evaluate_rules, load_rules

    backend.register("_ds_rule_input", table)
    try:
        firings = evaluate_rules(backend, "_ds_rule_input", load_rules())
    finally:
        backend.register("_ds_rule_input", pa.table({"account_id": pa.array([], pa.string())}))
    fired: dict[str, list[str]] = {}
    weight: dict[str, float] = {}
    for a, reason, w in zip(
        firings.column("account_id").to_pylist(),
        firings.column("reason").to_pylist(),
        firings.column("weight").to_pylist(),
        strict=True,
    ):
        fired.setdefault(a, []).append(reason)
        weight[a] = weight.get(a, 0.0) + float(w)
    ids = table.column("account_id").to_pylist()
    return table.append_column(
        "rule_score", pa.array([min(1.0, max(0.0, weight.get(a, 0.0))) for a in ids], pa.float64())
    ).append_column("rules_fired", pa.array([fired.get(a, []) for a in ids], pa.list_(pa.string())))


def scan_tables(
    data_dir: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    backend: Backend | None = None,
    model: AccountModel | None = None,
    seed: int = 0,
    edge_params: EdgeParams | None = None,
    dossiers: bool = True,
    registered: dict[str, str | None] | None = None,
    stats: StatsNames | None = None,
    intel: pa.Table | None = None,
    intel_weight: float = 1.0,
    thin_floor: int = THIN_FLOOR,
    dormant: bool = True,
) -> ScanResult:
    """Run every step of the scan on ``data_dir`` (prepared) and return the results.

    ``dormant``: also flag the registered accounts without traffic in the window that a card
    or a sign-up ties to flagged accounts, most of their active partners
    (:mod:`distillshield.detect.dormant`).

    ``thin_floor``: an account flagged on fewer requests than this, with no card, address,
    prefix, sign-up, metadata value or hub shared with another flagged account, is held
    (:mod:`distillshield.detect.floor`); 0 holds nothing.

    ``intel``: peers' evidence from ``distillshield intel hunt``
    (:func:`~distillshield.detect.peers.read_intel_evidence`), folded into the scores before
    flagging and clustering (:func:`~distillshield.detect.peers.apply_intel`).

    ``dossiers=False`` clusters flagged accounts but skips the campaign evidence queries
    (what a replay needs at every step but the last). ``stats``: statistics tables already
    registered for the window (an incremental state's, :mod:`distillshield.detect.incremental`);
    the window's exchanges are then read only for the campaign dossiers.
    """
    from distillshield.detect.campaigns import build_campaigns, hub_values

    b = backend or get_backend()
    m = model or load_model()
    m.check_features(FEATURES)
    steps: list[StepStat] = []
    t0 = time.perf_counter()
    names = register_window(b, data_dir, since=since, until=until, registered=registered)
    steps.append(StepStat("register", 0, time.perf_counter() - t0))
    params = edge_params or (EdgeParams() if dossiers else SCORING_EDGES)
    table, edges = account_table(b, names, steps=steps, edge_params=params, stats=stats)

    t0 = time.perf_counter()
    table, x = score_with_peers(m, table, features=FEATURES)
    prob, contrib, win = m.explain(x)
    novelty = novelty_scores(x, seed=seed)
    tactics: list[str | None] | None = None
    if len(m.heads) > 1 and table.num_rows:
        winners = np.asarray(m.head_names, dtype=object)[win]
        tactics = [str(t) if p >= TACTIC_SHOWN_AT else None for t, p in zip(winners, prob, strict=True)]
    reasons = top_reasons(table, contrib, FEATURES, novelty=novelty, tactics=tactics)
    intel_conf = np.full(table.num_rows, np.nan)
    intel_summary: dict[str, Any] = {}
    if intel is not None:
        from distillshield.detect.peers import apply_intel

        ids = table.column("account_id").to_pylist()
        combined = apply_intel(ids, prob, intel, weight=intel_weight)
        raised = int(np.sum((prob < m.threshold) & (combined.score >= m.threshold)))
        prob, intel_conf = combined.score, combined.confidence
        for i, r in enumerate(combined.reasons):
            if r is not None:
                reasons[i] = [r, *reasons[i]]
        intel_summary = {
            "intel_accounts": combined.matched,
            "intel_accounts_without_traffic": combined.unknown,
            "intel_flagged_by_intel": raised,
            "intel_weight": intel_weight,
        }
    flagged = prob >= m.threshold
    held: dict[str, str] = {}
    if thin_floor > 0 and table.num_rows:
        ids = table.column("account_id").to_pylist()
        n_req = table.column("n_requests").to_numpy(zero_copy_only=False)
        thin = flagged & (n_req < thin_floor)
        hubs = (
            hub_values(
                b,
                (stats or StatsNames()).vals,
                str(names["accounts"]),
                [a for a, f in zip(ids, flagged, strict=True) if f],
                params.max_group,
                params.max_client_accounts,
            )
            if thin.any()
            else {}
        )
        # peers' intelligence is evidence beyond the account's own requests: never held
        flagged, held = hold_thin_flags(
            ids, n_req, flagged, edges, floor=thin_floor, exempt=~np.isnan(intel_conf), hubs=hubs
        )
        for i, a in enumerate(ids):
            if a in held:
                reasons[i] = [held[a], *reasons[i]]
    steps.append(StepStat("score", table.num_rows, time.perf_counter() - t0))

    t0 = time.perf_counter()
    accounts = pa.table(
        {
            "account_id": table.column("account_id"),
            "score": pa.array(prob, pa.float64()),
            "flagged": pa.array(flagged, pa.bool_()),
            "novelty": pa.array(novelty, pa.float64()),
            "top_reasons": pa.array(reasons, pa.list_(pa.string())),
            "intel_confidence": pa.array(intel_conf, pa.float64(), from_pandas=True),
            "held": pa.array([a in held for a in table.column("account_id").to_pylist()], pa.bool_()),
        }
    )
    enr = names.get("account_enrichment")
    org = organisations(b, accounts=str(names["accounts"]), account_enrichment=str(enr)) if enr else None
    accounts, campaigns = build_campaigns(
        b,
        names,
        accounts,
        edges,
        dossiers=dossiers,
        seed=seed,
        stats=stats,
        max_group=params.max_group,
        max_client=params.max_client_accounts,
        organisation=org,
    )
    if held:  # corroboration may have flagged a held account after all
        still = pc.and_(accounts.column("held"), pc.invert(accounts.column("flagged")))
        accounts = accounts.set_column(accounts.schema.get_field_index("held"), "held", still)
    named: list[Dormant] = []
    if dormant:
        named = name_dormant(accounts, edges, organisation=org)
        accounts, campaigns = with_dormant(accounts, campaigns, named)
    if intel is not None:
        from distillshield.detect.peers import campaign_intel

        campaign_intel(campaigns, intel)
    steps.append(StepStat("campaigns", len(campaigns), time.perf_counter() - t0))
    chunks = quote_name((stats or StatsNames()).chunks)
    span = b.query(
        f"SELECT CAST(sum(n) AS BIGINT) AS n, min(first_ts) AS lo, max(last_ts) AS hi FROM {chunks}"
    ).to_pylist()[0]
    summary = {
        "accounts_scanned": table.num_rows,
        "accounts_flagged": int(pc.sum(accounts.column("flagged")).as_py() or 0),
        "campaigns": len(campaigns),
        "exchanges": int(span["n"] or 0),
        "period": [
            span["lo"].isoformat() if span["lo"] else None,
            span["hi"].isoformat() if span["hi"] else None,
        ],
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "backend": b.dialect,
        "model": m.provenance.get("name", "account-lr"),
        "thin_floor": thin_floor,
        "held_thin_flags": int(pc.sum(accounts.column("held")).as_py() or 0),
        "dormant_flagged": len(named),
        **intel_summary,
    }
    return ScanResult(
        accounts=accounts, campaigns=campaigns, edges=edges, table=table, steps=steps, summary=summary
    )


def scan(
    data_dir: str | Path,
    out: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    backend: Backend | None = None,
    model: AccountModel | None = None,
    seed: int = 0,
    report: bool = True,
    daily: bool = False,
    intel: str | Path | None = None,
    intel_weight: float = 1.0,
    thin_floor: int = THIN_FLOOR,
    dormant: bool = True,
) -> ScanResult:
    """Prepare what is missing, scan, and write the detection directory ``out``.

    Besides the detection contract it writes ``fingerprints.parquet`` (the per-account table
    the model read: fingerprint, graph features, rule score) and, with ``daily``,
    ``daily_fingerprints.parquet`` (:func:`windowed_fingerprints`).

    Preparation (signals, enrichment, templates) runs only for steps whose output is absent,
    so a dataset prepared once is scanned many times at the cost of the scan alone.
    ``intel``: a ``distillshield intel hunt`` output directory (or its
    ``intel_evidence.parquet``) whose evidence raises the scores of the accounts peers reported
    (:mod:`distillshield.detect.peers`). ``thin_floor``, ``dormant``: see :func:`scan_tables`.
    """
    from distillshield.detect.output import run_record, write_detections, write_parquet
    from distillshield.detect.peers import read_intel_evidence
    from distillshield.prepare import prepare

    evidence = read_intel_evidence(intel) if intel is not None else None  # fail before the work
    t0 = time.perf_counter()
    prepared = prepare(data_dir, backend=backend)
    prep = StepStat("prepare", sum(r.rows for r in prepared), time.perf_counter() - t0)
    result = scan_tables(
        data_dir,
        since=since,
        until=until,
        backend=backend,
        model=model,
        seed=seed,
        intel=evidence,
        intel_weight=intel_weight,
        thin_floor=thin_floor,
        dormant=dormant,
    )
    result.steps.insert(0, prep)
    t0 = time.perf_counter()
    run = run_record(data_dir, result.summary, result.steps)
    write_detections(Path(out), result.accounts, result.campaigns, run=run, report=report)
    write_parquet(Path(out) / "fingerprints.parquet", result.table)
    result.steps.append(StepStat("write", result.accounts.num_rows, time.perf_counter() - t0))
    if daily:
        t0 = time.perf_counter()
        b = backend or get_backend()
        table = windowed_fingerprints(b, data_dir, since=since, until=until)
        write_parquet(Path(out) / "daily_fingerprints.parquet", table)
        result.steps.append(StepStat("daily", table.num_rows, time.perf_counter() - t0))
    return result
