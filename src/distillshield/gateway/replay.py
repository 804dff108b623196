"""Replay logged traffic through the gateway: exchange-level decisions, leakage and cost.

:func:`replay_gateway` plays a prepared dataset's exchanges through one
:class:`~distillshield.gateway.engine.Engine`, in timestamp order (ties: request id), the
way a provider that had deployed the gateway would have served them:

* every ``every`` (the batch cadence, default 6 h) batch detection runs on the data
  logged **before** that instant only — :func:`~distillshield.detect.incremental.
  scan_increment` steps a state directory to ``until=t``, then :func:`~distillshield.
  gateway.verdicts.build_verdicts` builds the verdicts and the indicator index with
  ``until=t`` — and the engine's verdicts are swapped (what ``gateway publish`` does);
* each exchange becomes a :class:`~distillshield.gateway._types.RequestContext` (account
  facts — pathway, payment fingerprint — from ``accounts.parquet``), is decided by
  :meth:`Engine.decide`, and the logged response (status, output and reasoning tokens) is
  fed back with :meth:`Engine.record`, as the proxy does after the upstream answers.

Memory is bounded by one cadence window of exchanges (read ordered from DuckDB) plus the
engine's per-account state. Request signals come from the prepared ``derived/signals`` by
request id (the values :class:`distillshield.signals.scalar.ScalarSignals` computes from the
text; equal by test) unless a signals extractor is given.

Outputs: ``OUT/decisions.parquet`` (one row per exchange), ``OUT/report.json`` and the
table :meth:`ReplayReport.table` prints. With ground truth (``labels/``) the report gives,
per campaign and overall, **harvest leakage** — campaign exchanges forwarded with no
countermeasure (neither protected nor marked, nor refused/throttled/blocked) — a
**strict** leakage (forwarded without ``protect``: the answer, and any raw reasoning, went
out as is; a mark alone does not stop a harvest) and the hours from a campaign's first
exchange to its first countered one; and per persona the share of **legitimate exchanges
affected** — throttled, blocked, refused, or altered (``mark`` always alters the answer;
``protect`` only when the logged response had reasoning to withhold). Exchanges of campaign
accounts that the labels do not attribute to the campaign (a hydra reseller's resold
customer traffic) are reported apart, as collateral, not as legitimate customers.

Batch verdicts do not depend on what the gateway decided (the logs replayed are what was
served without it), so they are cached per step under ``OUT/batch/verdicts`` and reused by a
rerun with the same data, cadence and indicator parameters: iterating on the online model
costs the decision pass only.

Limits (docs/gateway-evaluation.md): the traffic is the log of an unprotected service, so an
attacker's reaction to being throttled or protected is not replayed; and template families
(``derived/templates``) are computed by ``prepare`` over the whole dataset, as for
``distillshield replay`` — the gateway itself reads only the per-request template id.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distillshield.backends import Backend, get_backend
from distillshield.errors import DistillShieldError
from distillshield.gateway._types import Action, Decision, RequestContext
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, Policy, load_policy
from distillshield.gateway.risk import RiskModel
from distillshield.gateway.verdicts import INDICATOR_KINDS, VerdictSet, build_verdicts

__all__ = ["DECISIONS_SCHEMA", "LoggedSignals", "ReplayReport", "main", "replay_gateway"]

#: ``OUT/decisions.parquet``: one row per replayed exchange.
DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("actions", pa.list_(pa.string())),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("campaign_id", pa.string()),
        pa.field("risk", pa.float64()),
        pa.field("forwarded", pa.bool_(), nullable=False),
        pa.field("altered", pa.bool_(), nullable=False),
        pa.field("refused", pa.bool_(), nullable=False),
        pa.field("had_reasoning", pa.bool_(), nullable=False),
        pa.field("verdicts", pa.string()),
    ]
)

_SIGNAL_COLUMNS = ("template_id", "cot_elicit", "cot_score", "capability", "language")


@dataclass(frozen=True, slots=True)
class _Signals:
    template_id: str | None
    cot_elicit: str | None
    cot_score: float
    capability: str | None
    language: str | None


class LoggedSignals:
    """Request signals looked up from the prepared ``derived/signals`` by request id.

    The engine asks :meth:`for_request` (the hook for providers that answer per request);
    the replay loads one window's rows at a time with :meth:`load`. ``compute`` exists for
    the engine's text path and returns nothing: this provider never sees text.
    """

    def __init__(self) -> None:
        self._rows: dict[str, _Signals] = {}

    def load(self, table: pa.Table) -> None:
        cols = [table.column(c).to_pylist() for c in ("request_id", *_SIGNAL_COLUMNS)]
        self._rows = {
            rid: _Signals(t, c, float(s or 0.0), cap, lang)
            for rid, t, c, s, cap, lang in zip(*cols, strict=True)
        }

    def for_request(self, ctx: RequestContext) -> _Signals | None:
        return self._rows.get(ctx.request_id)

    def compute(self, prompt: str | None, system_prompt: str | None, tools: Any, n_messages: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _AccountFacts:
    pathway: str | None
    payment_fingerprint: str | None
    signup_ip: str | None
    created_at: float | None
    declared_country: str | None


@dataclass
class ReplayReport:
    """What a gateway replay measured (``OUT/report.json``); see the module docstring."""

    data: str
    out: str
    every_s: float
    steps: int
    exchanges: int
    seconds: dict[str, float] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    has_labels: bool = False
    overall: dict[str, Any] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    personas: list[dict[str, Any]] = field(default_factory=list)
    collateral: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, dict[str, int]] = field(default_factory=dict)
    engine: dict[str, int] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The printed summary: campaigns (leakage), personas (legitimate cost), totals."""
        lines = [
            f"gateway replay of {self.data}: {self.exchanges:,} exchanges, batch every "
            f"{self.every_s / 3600:g} h ({self.steps} steps), {self.seconds.get('total', 0.0):.0f} s",
            "actions: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.actions.items())),
        ]
        if not self.has_labels:
            return "\n".join(lines)
        lines += [
            "",
            f"{'campaign':<16}{'exchanges':>10}{'leaked':>9}{'leakage':>9}{'strict':>9}{'h to 1st':>9}",
        ]
        for row in [*self.campaigns, {**self.overall["campaign"], "campaign_id": "all campaigns"}]:
            h = row.get("hours_to_first_protection")
            lines.append(
                f"{row['campaign_id']:<16}{row['exchanges']:>10,}{row['leaked']:>9,}"
                f"{row['leakage']:>9.2%}{row['strict_leakage']:>9.2%}{'-' if h is None else f'{h:.1f}':>9}"
            )
        lines += [
            "",
            f"{'persona (legitimate)':<34}{'exchanges':>10}{'affected':>9}{'share':>9}{'accounts':>9}",
        ]
        for row in [*self.personas, {**self.overall["legit"], "persona": "all legitimate"}]:
            lines.append(
                f"{row['persona']:<34}{row['exchanges']:>10,}{row['affected']:>9,}"
                f"{row['affected_share']:>9.3%}{row['accounts_affected']:>9,}"
            )
        for row in self.collateral:
            lines.append(
                f"{'(collateral) ' + row['persona']:<34}{row['exchanges']:>10,}{row['affected']:>9,}"
                f"{row['affected_share']:>9.3%}{row['accounts_affected']:>9,}"
            )
        return "\n".join(lines)


def _parse_every(every: str | timedelta) -> timedelta:
    from distillshield.detect.replay import parse_every

    return parse_every(every) if isinstance(every, str) else every


def _dataset_key(data: Path) -> str:
    """Identity of the dataset's files (names, sizes, modification times)."""
    h = hashlib.sha256()
    for sub in ("exchanges", "accounts.parquet", "releases.parquet", "derived"):
        p = data / sub
        files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p] if p.is_file() else []
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(data)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class _BatchVerdicts:
    """Batch detection stepped at the cadence, blind to the future, cached per step.

    Two cache levels under ``root``: the detections of every step (``det/NNNNN/``:
    ``accounts.parquet`` and ``campaigns.json``, keyed by the dataset's files and the
    cadence) and the verdict sets built from them (``verdicts/<key>/NNNNN.bin``, keyed also
    by the indicator parameters), so changing how indicators are indexed does not rerun
    the scans.
    """

    def __init__(
        self, data: Path, root: Path, *, key: dict[str, Any], backend: Backend, verdict_kwargs: dict[str, Any]
    ) -> None:
        self.data = data
        self.root = root
        self.backend = backend
        self.verdict_kwargs = verdict_kwargs
        key_path = root / "key.json"
        key_text = json.dumps(key, sort_keys=True)
        if not key_path.is_file() or key_path.read_text(encoding="utf-8") != key_text:
            shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        key_path.write_text(key_text, encoding="utf-8")
        vkey = hashlib.sha256(json.dumps(verdict_kwargs, sort_keys=True, default=list).encode()).hexdigest()[
            :12
        ]
        self.cache = root / "verdicts" / vkey
        self.cache.mkdir(parents=True, exist_ok=True)
        self.scan_s = 0.0
        self.verdicts_s = 0.0

    def _detections(self, index: int, t: datetime) -> Path:
        """Step ``index``'s detection directory: batch detection on ``ts < t`` only."""
        from distillshield.detect.incremental import load_state, scan_increment

        step_dir = self.root / "det" / f"{index:05d}"
        if (step_dir / "campaigns.json").is_file():
            return step_dir
        state, det = self.root / "state", self.root / "current"
        known = load_state(state)["until"]
        if known is not None and datetime.fromisoformat(known) >= t:  # a cache hole: start over
            shutil.rmtree(state, ignore_errors=True)
        t0 = time.perf_counter()
        # a state started over covers everything before t in one chunk (same finishing SQL)
        scan_increment(self.data, state, det, until=t, backend=self.backend, report=False)
        self.scan_s += time.perf_counter() - t0
        tmp = step_dir.with_name(step_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in ("accounts.parquet", "campaigns.json", "scan.json"):
            if (det / name).is_file():
                shutil.copy2(det / name, tmp / name)
        if (det / "fingerprints.parquet").is_file():  # only what the verdicts read: request counts
            pq.write_table(
                pq.read_table(det / "fingerprints.parquet", columns=["account_id", "n_requests"]),
                tmp / "fingerprints.parquet",
            )
        tmp.replace(step_dir)
        return step_dir

    def at(self, index: int, t: datetime) -> VerdictSet:
        """Verdicts published at ``t`` (step ``index``): from data with ``ts < t`` only."""
        cached = self.cache / f"{index:05d}-{t.strftime('%Y%m%dT%H%M%S')}.bin"
        if cached.is_file():
            return VerdictSet.from_bytes(cached.read_bytes())
        det = self._detections(index, t)
        t1 = time.perf_counter()
        verdicts = build_verdicts(det, data=self.data, until=t.isoformat(), **self.verdict_kwargs)
        # named by the step, not the cache path: the content hash is the same in any directory
        verdicts = replace(verdicts, source=f"batch step {index} (data before {t.isoformat()})")
        self.verdicts_s += time.perf_counter() - t1
        tmp = cached.with_name(cached.name + ".tmp")
        tmp.write_bytes(verdicts.to_bytes())
        tmp.replace(cached)
        return verdicts


_WINDOW_SQL = """
SELECT e.request_id, e.ts, e.account_id, e.api_key_id, e.model, e.endpoint, e.ip, e.user_agent,
       e.tls_fingerprint, e.metadata, e.conversation_id, e.n_messages, e.tools, e.max_tokens,
       e.temperature, e.stream, e.input_tokens, e.output_tokens, e.reasoning_tokens, e.status{text},
       s.template_id, s.cot_elicit, s.cot_score, s.capability, s.language
FROM ex_all e LEFT JOIN sig s USING (request_id)
WHERE e.ts >= {lo} AND e.ts < {hi}
ORDER BY e.ts, e.request_id
"""


def _ts(t: datetime) -> str:
    return f"TIMESTAMPTZ '{t.isoformat()}'"


def _contexts(table: pa.Table, with_text: bool) -> Iterator[tuple[RequestContext, int, int, int | None]]:
    """(context, status, output tokens, reasoning tokens) per row of a window."""
    names = [
        "request_id",
        "ts",
        "account_id",
        "api_key_id",
        "model",
        "endpoint",
        "ip",
        "user_agent",
        "tls_fingerprint",
        "metadata",
        "conversation_id",
        "n_messages",
        "tools",
        "max_tokens",
        "temperature",
        "stream",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "status",
    ]
    cols = {n: table.column(n).to_pylist() for n in names}
    ts = table.column("ts").cast(pa.int64()).to_pylist()  # microseconds since the epoch
    text = (
        (table.column("system_prompt").to_pylist(), table.column("prompt").to_pylist()) if with_text else None
    )
    for i in range(table.num_rows):
        ctx = RequestContext(
            request_id=cols["request_id"][i],
            ts=ts[i] / 1e6,
            account_id=cols["account_id"][i],
            api_key_id=cols["api_key_id"][i],
            model=cols["model"][i],
            endpoint=cols["endpoint"][i],
            ip=cols["ip"][i],
            user_agent=cols["user_agent"][i],
            tls_fingerprint=cols["tls_fingerprint"][i],
            metadata=cols["metadata"][i],
            conversation_id=cols["conversation_id"][i],
            n_messages=cols["n_messages"][i],
            system_prompt=text[0][i] if text else None,
            prompt=text[1][i] if text else None,
            tools=tuple(cols["tools"][i] or ()),
            max_tokens=cols["max_tokens"][i],
            temperature=cols["temperature"][i],
            stream=bool(cols["stream"][i]),
            input_tokens=cols["input_tokens"][i],
        )
        yield ctx, int(cols["status"][i]), int(cols["output_tokens"][i]), cols["reasoning_tokens"][i]


def _outcome(decision: Decision, reasoning: int | None) -> tuple[bool, bool, bool]:
    """(forwarded, altered, refused) of an exchange under ``decision``."""
    forwarded = decision.forwards
    refused = decision.refuse_reasoning_request and decision.action < Action.THROTTLE
    had_reasoning = bool(reasoning and reasoning > 0)
    altered = forwarded and (
        Action.MARK in decision.actions or (Action.PROTECT in decision.actions and had_reasoning)
    )
    return forwarded, altered, refused


def replay_gateway(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    every: str | timedelta = "6h",
    policy: Policy | str | Path | None = None,
    risk: RiskModel | None = None,
    signals: Any = None,
    engine_factory: Callable[..., Engine] | None = None,
    kinds: tuple[str, ...] = INDICATOR_KINDS,
    min_members: int = 3,
    min_specificity: float = 0.95,
    suspect_score: float | None = 0.5,
    backend: Backend | None = None,
    batch_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay ``data_dir`` (prepared) through the gateway; write decisions and the report.

    ``policy``: a :class:`Policy`, a policy file, or ``None`` for the default policy.
    ``risk``: the online risk model (default: the engine's). ``signals``: a request-signal
    extractor with ``compute(prompt, system_prompt, tools, n_messages)`` (the text is then
    read and passed); ``None`` looks the prepared ``derived/signals`` up by request id.
    ``kinds``, ``min_members``, ``min_specificity``, ``suspect_score``: the verdicts and
    indicator index of :func:`build_verdicts`. ``batch_dir``: where the batch state, the
    detections and the verdict cache live (default ``OUT/batch``).
    """
    from distillshield.features.account import register_dataset
    from distillshield.prepare import prepare

    started = time.perf_counter()
    data, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = _parse_every(every)
    pol = policy if isinstance(policy, Policy) else load_policy(policy or DEFAULT_POLICY)
    own_backend = backend is None
    b = backend or get_backend()
    try:
        prepare(data, backend=b)
        register_dataset(b, data, exchanges="ex_all", accounts="acc_all", releases="rel_all")
        span = b.query("SELECT min(ts) AS t0, max(ts) AS t1, count(*) AS n FROM ex_all").to_pylist()[0]
        if span["t0"] is None:
            raise DistillShieldError(f"{data}: no exchanges to replay")
        from distillshield.detect.replay import cutoffs as batch_cutoffs

        cutoffs = batch_cutoffs(span["t0"], span["t1"], step)
        acc = b.query(
            "SELECT account_id, pathway, payment_fingerprint, signup_ip, epoch(created_at) AS created, "
            "declared_country FROM acc_all"
        )
        accounts = {
            a: _AccountFacts(p, f, s, c, d)
            for a, p, f, s, c, d in zip(*(acc.column(c).to_pylist() for c in acc.column_names), strict=True)
        }
        logged = signals is None
        provider = LoggedSignals() if logged else signals
        factory = engine_factory or Engine
        engine = factory(pol, signals=provider, risk=risk, account_facts=accounts.get)
        batch = _BatchVerdicts(
            data,
            Path(batch_dir) if batch_dir else out / "batch",
            key={
                "data": str(data.resolve()),
                "files": _dataset_key(data),
                "every_s": step.total_seconds(),
            },
            backend=b,
            verdict_kwargs={
                "kinds": list(kinds),
                "min_members": min_members,
                "min_specificity": min_specificity,
                "suspect_score": suspect_score,
            },
        )
        counts = _replay_windows(b, engine, batch, span["t0"], cutoffs, out, provider, logged, progress)
        decide_s = counts.pop("_decide_s")
        exchanges = counts.pop("_rows")
        report = ReplayReport(
            data=str(data),
            out=str(out),
            every_s=step.total_seconds(),
            steps=len(cutoffs),
            exchanges=exchanges,
            actions=counts,
            engine={
                "decisions": engine.stats.decisions,
                "linked": engine.stats.linked,
                "throttled": engine.stats.throttled,
            },
        )
        risk_stats = getattr(engine.risk, "stats", None)
        if callable(risk_stats):
            report.risk = dict(risk_stats())
        _evaluate(b, data, out / "decisions.parquet", report)
        report.seconds = {
            "batch_scan": round(batch.scan_s, 2),
            "batch_verdicts": round(batch.verdicts_s, 2),
            "decide": round(decide_s, 2),
            "total": round(time.perf_counter() - started, 2),
        }
    finally:
        if own_backend:
            b.close()
    (out / "report.json").write_text(
        json.dumps(report.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return report


def _replay_windows(
    b: Backend,
    engine: Engine,
    batch: _BatchVerdicts,
    t0: datetime,
    cutoffs: list[datetime],
    out: Path,
    provider: Any,
    logged: bool,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Decide every exchange window by window; stream the decisions to Parquet."""
    counts: dict[str, Any] = {}
    rows = 0
    decide_s = 0.0
    tmp = out / ".decisions.parquet.tmp"
    lo = t0
    version = ""
    with pq.ParquetWriter(tmp, DECISIONS_SCHEMA) as writer:
        for i, hi in enumerate(cutoffs):
            if i > 0:  # the batch job that finished at `lo` saw only ts < lo
                verdicts = batch.at(i - 1, lo)
                engine.set_verdicts(verdicts)
                version = verdicts.version
            text = ", e.system_prompt, e.prompt" if not logged else ""
            window = b.query(_WINDOW_SQL.format(text=text, lo=_ts(lo), hi=_ts(hi)))
            t_dec = time.perf_counter()
            if logged:
                provider.load(window)
            cols: dict[str, list[Any]] = {f.name: [] for f in DECISIONS_SCHEMA}
            for ctx, status, output_tokens, reasoning in _contexts(window, with_text=not logged):
                decision = engine.decide(ctx)
                engine.record(
                    ctx,
                    decision,
                    status=status,
                    output_tokens=output_tokens,
                    reasoning_tokens=reasoning,
                    response_text=None,
                )
                forwarded, altered, refused = _outcome(decision, reasoning)
                name = decision.action.name.lower()
                counts[name] = counts.get(name, 0) + 1
                cols["request_id"].append(ctx.request_id)
                cols["account_id"].append(ctx.account_id)
                cols["action"].append(name)
                cols["actions"].append(sorted(a.name.lower() for a in decision.actions))
                cols["reasons"].append(list(decision.reasons))
                cols["campaign_id"].append(decision.campaign_id)
                cols["risk"].append(float(decision.risk))
                cols["forwarded"].append(forwarded)
                cols["altered"].append(altered)
                cols["refused"].append(refused)
                cols["had_reasoning"].append(bool(reasoning and reasoning > 0))
                cols["verdicts"].append(version or None)
            cols["ts"] = window.column("ts").to_pylist()
            decide_s += time.perf_counter() - t_dec
            rows += window.num_rows
            writer.write_table(pa.table(cols, schema=DECISIONS_SCHEMA))
            lo = hi
            if progress is not None:
                progress(i + 1, len(cutoffs))
    tmp.replace(out / "decisions.parquet")
    counts["_rows"] = rows
    counts["_decide_s"] = decide_s
    return counts


# -- evaluation against ground truth ---------------------------------------------------------

_EVAL_SQL = """
CREATE OR REPLACE TEMP TABLE _gw_eval AS
SELECT d.request_id, d.ts, d.account_id, d.forwarded, d.altered, d.refused, d.had_reasoning,
       d.reasons, list_contains(d.actions, 'protect') AS protect, list_contains(d.actions, 'mark') AS mark,
       d.action, l.campaign_id AS truth, coalesce(a.persona, 'unknown') AS persona,
       a.campaign_id AS account_campaign
FROM read_parquet({path}) d
LEFT JOIN _gw_lab_ex l USING (request_id)
LEFT JOIN _gw_lab_acc a USING (account_id)
"""

# leaked: served with no countermeasure; strict: served without protect
_CAMPAIGN_SQL = """
SELECT truth AS campaign_id, count(*) AS exchanges,
       count(*) FILTER (WHERE forwarded AND NOT protect AND NOT mark) AS leaked,
       count(*) FILTER (WHERE forwarded AND NOT protect) AS strict_leaked,
       count(*) FILTER (WHERE had_reasoning) AS with_reasoning,
       count(*) FILTER (WHERE had_reasoning AND forwarded AND NOT protect) AS reasoning_served,
       count(*) FILTER (WHERE NOT forwarded) AS stopped,
       count(DISTINCT account_id) AS accounts,
       epoch(min(ts)) AS first_ts,
       epoch(min(ts) FILTER (WHERE NOT (forwarded AND NOT protect AND NOT mark))) AS first_protected_ts
FROM _gw_eval WHERE truth IS NOT NULL {group}
"""

_AFFECTED = "(NOT forwarded OR altered)"

_PERSONA_SQL = f"""
SELECT persona, count(*) AS exchanges,
       count(*) FILTER (WHERE {_AFFECTED}) AS affected,
       count(*) FILTER (WHERE action = 'throttle') AS throttled,
       count(*) FILTER (WHERE action = 'block') AS blocked,
       count(*) FILTER (WHERE refused) AS refused,
       count(*) FILTER (WHERE forwarded AND altered) AS altered,
       count(DISTINCT account_id) AS accounts,
       count(DISTINCT account_id) FILTER (WHERE {_AFFECTED}) AS accounts_affected
FROM _gw_eval WHERE truth IS NULL AND {{where}} {{group}}
"""


def _share(n: int, d: int) -> float:
    return n / d if d else 0.0


def _campaign_row(r: dict[str, Any]) -> dict[str, Any]:
    first, prot = r.pop("first_ts"), r.pop("first_protected_ts")
    r["leakage"] = _share(r["leaked"], r["exchanges"])
    r["strict_leakage"] = _share(r["strict_leaked"], r["exchanges"])
    r["reasoning_served_share"] = _share(r["reasoning_served"], r["with_reasoning"])
    r["hours_to_first_protection"] = None if prot is None or first is None else (prot - first) / 3600.0
    return r


def _persona_row(r: dict[str, Any]) -> dict[str, Any]:
    r["affected_share"] = _share(r["affected"], r["exchanges"])
    return r


def _evaluate(b: Backend, data: Path, decisions: Path, report: ReplayReport) -> None:
    """Fill the report's ground-truth sections when ``data/labels`` exists."""
    from distillshield.schema import ACCOUNT_LABELS, EXCHANGE_LABELS, table_paths

    if not table_paths(data, EXCHANGE_LABELS, optional=True) or not table_paths(
        data, ACCOUNT_LABELS, optional=True
    ):
        return
    b.register_table("_gw_lab_ex", data, EXCHANGE_LABELS)
    b.register_table("_gw_lab_acc", data, ACCOUNT_LABELS)
    path = "'" + str(decisions).replace("'", "''") + "'"
    b.execute(_EVAL_SQL.format(path=path))
    report.has_labels = True
    report.campaigns = [
        _campaign_row(r) for r in b.query(_CAMPAIGN_SQL.format(group="GROUP BY 1 ORDER BY 1")).to_pylist()
    ]
    overall = b.query(_CAMPAIGN_SQL.replace("truth AS campaign_id", "'all' AS campaign_id").format(group=""))
    camp = _campaign_row(overall.to_pylist()[0])
    camp.pop("hours_to_first_protection")
    legit_where = "persona NOT LIKE 'attack.%'"
    report.personas = [
        _persona_row(r)
        for r in b.query(_PERSONA_SQL.format(where=legit_where, group="GROUP BY 1 ORDER BY 1")).to_pylist()
    ]
    legit = _persona_row(
        b.query(
            _PERSONA_SQL.replace("SELECT persona,", "SELECT 'all' AS persona,").format(
                where=legit_where, group=""
            )
        ).to_pylist()[0]
    )
    report.collateral = [
        _persona_row(r)
        for r in b.query(
            _PERSONA_SQL.format(where="persona LIKE 'attack.%'", group="GROUP BY 1 ORDER BY 1")
        ).to_pylist()
    ]
    total = b.query("SELECT count(*) AS n, count(*) FILTER (WHERE truth IS NULL) AS legit FROM _gw_eval")
    tot = total.to_pylist()[0]
    report.overall = {
        "exchanges": tot["n"],
        "campaign": camp,
        "legit": legit,
        "non_campaign": tot["legit"],
        "reconciles": tot["n"] == camp["exchanges"] + tot["legit"] == report.exchanges
        and sum(report.actions.values()) == report.exchanges,
    }
    rules: dict[str, dict[str, int]] = {}
    for r in b.query(
        "SELECT truth IS NOT NULL AS campaign, r AS reason, count(*) AS n FROM "
        "(SELECT truth, unnest(reasons) AS r FROM _gw_eval) WHERE r LIKE 'rule:%' GROUP BY ALL ORDER BY ALL"
    ).to_pylist():
        rules.setdefault(r["reason"][5:], {})["campaign" if r["campaign"] else "other"] = r["n"]
    report.rules = rules


def main(argv: list[str] | None = None) -> int:
    """``python -m distillshield.gateway.replay DATA OUT [--every 6h] [--policy FILE]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m distillshield.gateway.replay", description=main.__doc__)
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--every", default="6h")
    p.add_argument("--policy", default=None)
    args = p.parse_args(argv)
    report = replay_gateway(args.data, args.out, every=args.every, policy=args.policy)
    print(report.table())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
