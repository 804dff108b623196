"""Build the analyst's HTML triage report from campaign dicts and the scored accounts table.

The inputs are untrusted in two ways: campaign dicts come from JSON that any producer version may
have written (keys missing, null or of the wrong type), and many values are attacker-controlled
(user agents, metadata, account ids). So every value is coerced defensively here into a small view
model of plain strings and numbers, and the template renders it with autoescaping on for all of it;
no markup is ever built in Python. URLs inside data are defanged (``hxxp://``) so the page holds no
live link and makes no request, which is what lets it be opened offline and attached to a ticket.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.report._svg import GraphChart, Link, TimelineChart, graph_chart, timeline_chart

DASH = "—"
#: Row caps: past these an HTML table stops being triage material and the page gets heavy.
MAX_MEMBER_ROWS = 200
MAX_UNGROUPED_ROWS = 500
MAX_INDICATOR_ROWS = 50
MAX_FALLBACK_IDS = 200
_MAX_TEXT = 2000

_URL_SCHEME = re.compile(r"http(s?)://", re.IGNORECASE)
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

_INFRA_LABELS: dict[str, str] = {
    "ips": "IP addresses",
    "prefixes": "Network prefixes",
    "asns": "ASNs",
    "user_agents": "User agents",
    "tls_fingerprints": "TLS fingerprints",
    "payment_fingerprints": "Payment fingerprints",
    "template_ids": "Prompt templates",
}
_SUMMARY_LABELS: dict[str, str] = {
    "accounts_scanned": "Accounts scanned",
    "accounts_flagged": "Accounts flagged",
    "exchanges": "Exchanges",
    "period": "Period",
    "backend": "Backend",
}
_CAMPAIGN_KEYS = frozenset(
    {
        "id",
        "actor",
        "accounts",
        "size",
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
        "top_reasons",
        "summary",
    }
)
_ACCOUNT_COLUMNS = (
    "account_id",
    "score",
    "flagged",
    "campaign_id",
    "top_reasons",
    "novelty",
    "campaign_share",
    "first_flagged_at",
)


# ------------------------------------------------------------------------------------------- coercion


def _defang(text: str) -> str:
    """Neutralise URL schemes (threat-intel convention) so no live link ends up on the page."""
    return _URL_SCHEME.sub(lambda m: f"hxxp{m.group(1)}://", text)


def _text(value: Any) -> str:
    """Any value as display text: defanged and length-capped (escaping is the template's job)."""
    if value is None:
        return ""
    text = _defang(value if isinstance(value, str) else str(value))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _num(value: Any) -> float | None:
    """A finite number or None; bools are not numbers here (True is not a score of 1)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dict(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    """Parse an ISO-8601 string (or take a datetime); naive times are taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _fmt_time(value: Any) -> str:
    parsed = _time(value)
    if parsed is not None:
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return _text(value) or DASH


def _fmt_int(value: Any) -> str:
    number = _num(value)
    if number is None:
        return DASH
    return f"{int(number):,}" if number.is_integer() else f"{number:,.2f}"


def _fmt_score(value: Any) -> str:
    number = _num(value)
    return DASH if number is None else f"{number:.3f}"


def _fmt_pct(value: Any) -> str:
    number = _num(value)
    return DASH if number is None else f"{100 * number:.1f}%"


def _fmt_value(value: Any, depth: int = 0) -> str:
    """Generic rendering for keys this renderer does not know: readable, bounded, never raises."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        number = _num(value)
        if number is None:
            return DASH
        return f"{int(number):,}" if isinstance(value, int) else f"{number:.4g}"
    if isinstance(value, datetime):
        return _fmt_time(value)
    if depth >= 2:
        return _text(value)
    if isinstance(value, list | tuple):
        return _text(", ".join(_fmt_value(v, depth + 1) for v in value[:50]))
    if isinstance(value, dict):
        return _text("; ".join(f"{k}: {_fmt_value(v, depth + 1)}" for k, v in list(value.items())[:50]))
    return _text(value)


def _severity(score: float | None) -> str:
    if score is None:
        return "sev-none"
    return "sev-high" if score >= 0.9 else "sev-mid" if score >= 0.7 else "sev-low"


# ----------------------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class Figure:
    label: str
    value: str


@dataclass(frozen=True)
class Bar:
    label: str
    share: str
    width: float


@dataclass(frozen=True)
class IndicatorRow:
    key: str
    value: str
    accounts: str
    exchanges: str


@dataclass(frozen=True)
class IndicatorTable:
    title: str
    rows: list[IndicatorRow]
    total: int
    has_key: bool


@dataclass(frozen=True)
class Pivot:
    rows: list[Figure]
    sentence: str


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    score: str
    severity: str
    first_flagged_at: str
    campaign_share: str
    novelty: str
    reasons: list[str]


@dataclass(frozen=True)
class AccountTable:
    rows: list[AccountRow]
    total: int
    columns: frozenset[str]


@dataclass
class CampaignView:
    anchor: str
    id: str
    actor: str
    size: str
    exchanges: str
    score: str
    severity: str
    first_seen: str
    last_seen: str
    first_seen_raw: str
    last_seen_raw: str
    top_capability: str
    cot: str
    summary: str
    reasons: list[str] = field(default_factory=list)
    timeline: TimelineChart | None = None
    timeline_note: str = ""
    graph: GraphChart | None = None
    capability: list[Bar] = field(default_factory=list)
    infrastructure: list[IndicatorTable] = field(default_factory=list)
    clues: IndicatorTable | None = None
    pivot: Pivot | None = None
    members: AccountTable | None = None
    listed_ids: list[str] = field(default_factory=list)
    listed_total: int = 0
    extra: list[Figure] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- accounts


def _score_key(row: dict[str, Any]) -> tuple[float, str]:
    score = _num(row.get("score"))
    return (-score if score is not None else math.inf, _text(row.get("account_id")))


def _select_accounts(accounts: pa.Table | None) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """Rows that can appear on the page (in a campaign, or flagged), as dicts; plus the column set.

    Filtering in Arrow first keeps this cheap when the table holds every scanned account.
    """
    if accounts is None or accounts.num_rows == 0 or "account_id" not in accounts.column_names:
        return [], frozenset()
    present = [c for c in _ACCOUNT_COLUMNS if c in accounts.column_names]
    table = accounts.select(present)
    try:
        mask = None
        if "campaign_id" in present:
            mask = pc.is_valid(table["campaign_id"])
        if "flagged" in present:
            flagged = pc.fill_null(pc.cast(table["flagged"], pa.bool_()), False)
            mask = flagged if mask is None else pc.or_(mask, flagged)
        if mask is None:
            return [], frozenset(present)
        rows: list[dict[str, Any]] = table.filter(mask).to_pylist()
    except (pa.ArrowException, TypeError, ValueError):  # odd column types: filter row by row instead
        rows = [r for r in table.to_pylist() if r.get("campaign_id") is not None or r.get("flagged") is True]
    return rows, frozenset(present)


def _account_row(row: dict[str, Any]) -> AccountRow:
    reasons = [_text(r) for r in _list(row.get("top_reasons")) if r is not None]
    return AccountRow(
        account_id=_text(row.get("account_id")) or DASH,
        score=_fmt_score(row.get("score")),
        severity=_severity(_num(row.get("score"))),
        first_flagged_at=_fmt_time(row.get("first_flagged_at")),
        campaign_share=_fmt_pct(row.get("campaign_share")),
        novelty=_fmt_score(row.get("novelty")),
        reasons=reasons,
    )


def _account_table(rows: list[dict[str, Any]], columns: frozenset[str], cap: int) -> AccountTable:
    ordered = sorted(rows, key=_score_key)
    return AccountTable([_account_row(r) for r in ordered[:cap]], len(rows), columns)


# ------------------------------------------------------------------------------------------ campaigns


def _indicator_rows(entries: Iterable[Any], *, with_key: bool) -> list[IndicatorRow]:
    rows = []
    for entry in entries:
        if isinstance(entry, dict):
            rows.append(
                IndicatorRow(
                    key=_text(entry.get("key")) if with_key else "",
                    value=_text(entry.get("value")) or DASH,
                    accounts=_fmt_int(entry.get("accounts")),
                    exchanges=_fmt_int(entry.get("exchanges")),
                )
            )
        elif entry is not None:
            rows.append(IndicatorRow("", _text(entry), DASH, DASH))
    return rows


def _infrastructure(value: Any) -> list[IndicatorTable]:
    infra = _dict(value)
    keys = [k for k in _INFRA_LABELS if k in infra] + sorted(k for k in infra if k not in _INFRA_LABELS)
    tables = []
    for key in keys:
        entries = _list(infra[key])
        if entries:
            title = _INFRA_LABELS.get(key) or _text(key).replace("_", " ").capitalize()
            rows = _indicator_rows(entries[:MAX_INDICATOR_ROWS], with_key=False)
            tables.append(IndicatorTable(title, rows, len(entries), has_key=False))
    return tables


def _capability(value: Any) -> list[Bar]:
    shares = [(_text(k), n) for k, v in _dict(value).items() if (n := _num(v)) is not None]
    shares.sort(key=lambda kv: (-kv[1], kv[0]))
    return [Bar(k, _fmt_pct(n), round(min(max(n, 0.0), 1.0) * 100, 1)) for k, n in shares]


def _pivot(value: Any) -> Pivot | None:
    pivot = _dict(value)
    if not pivot:
        return None
    model = _text(pivot.get("model")) or "the new model"
    labels = {
        "model": ("Model", _text(pivot.get("model")) or DASH),
        "released_at": ("Released", _fmt_time(pivot.get("released_at"))),
        "share_before": ("Share before release", _fmt_pct(pivot.get("share_before"))),
        "share_24h": ("Share within 24 h", _fmt_pct(pivot.get("share_24h"))),
        "share_48h": ("Share within 48 h", _fmt_pct(pivot.get("share_48h"))),
    }
    rows = [Figure(*labels[k]) for k in labels if k in pivot]
    rows += [Figure(_text(k), _fmt_value(v)) for k, v in sorted(pivot.items()) if k not in labels]
    sentence = ""
    if _num(pivot.get("share_before")) is not None and _num(pivot.get("share_48h")) is not None:
        sentence = (
            f"The campaign's share of exchanges on {model} went from {_fmt_pct(pivot['share_before'])} "
            f"before release to {_fmt_pct(pivot['share_48h'])} within 48 h"
            + (
                f" ({_fmt_pct(pivot['share_24h'])} within 24 h)."
                if _num(pivot.get("share_24h")) is not None
                else "."
            )
        )
    return Pivot(rows, sentence)


def _links(value: Any) -> list[Link]:
    links = []
    for edge in _list(value):
        if isinstance(edge, dict):
            weight = _num(edge.get("weight"))
            links.append(
                Link(
                    src=_text(edge.get("src")),
                    dst=_text(edge.get("dst")),
                    kind=_text(edge.get("kind")) or "other",
                    weight=1.0 if weight is None else weight,
                )
            )
    return links


def _timeline(campaign: dict[str, Any], pivot: dict[str, Any]) -> tuple[TimelineChart | None, str]:
    timeline = _dict(campaign.get("timeline"))
    raw_counts = _list(timeline.get("counts"))
    if not raw_counts:
        return None, ""
    counts = [n if (n := _num(v)) is not None else 0.0 for v in raw_counts]
    bin_hours = _num(timeline.get("bin_hours"))
    release = None
    released_at = _time(pivot.get("released_at"))
    if released_at is not None:
        release = (released_at, _text(pivot.get("model")) or "model")
    start = _time(timeline.get("start"))
    note = "" if bin_hours is not None and bin_hours > 0 else "Bin width missing: assumed 1 h."
    chart = timeline_chart(counts, start, bin_hours if bin_hours and bin_hours > 0 else 1.0, release)
    return chart, note


def _anchor(index: int, campaign_id: str) -> str:
    return f"c{index}-" + _ANCHOR_UNSAFE.sub("-", campaign_id)[:60]


def _campaign_view(
    index: int,
    campaign: dict[str, Any],
    members: list[dict[str, Any]],
    columns: frozenset[str],
) -> CampaignView:
    cid = _text(campaign.get("id")) or "(no id)"
    listed = [_text(a) for a in _list(campaign.get("accounts")) if a is not None]
    size = campaign.get("size") if _num(campaign.get("size")) is not None else len(listed)
    capability = _capability(campaign.get("capability_mix"))
    pivot_dict = _dict(campaign.get("release_pivot"))
    timeline, timeline_note = _timeline(campaign, pivot_dict)
    clue_entries = _list(campaign.get("metadata_clues"))
    score = _num(campaign.get("score"))
    return CampaignView(
        anchor=_anchor(index, cid),
        id=cid,
        actor=_text(campaign.get("actor")) or DASH,
        size=_fmt_int(size),
        exchanges=_fmt_int(campaign.get("exchanges")),
        score=_fmt_score(score),
        severity=_severity(score),
        first_seen=_fmt_time(campaign.get("first_seen")),
        last_seen=_fmt_time(campaign.get("last_seen")),
        first_seen_raw=_text(campaign.get("first_seen")),
        last_seen_raw=_text(campaign.get("last_seen")),
        top_capability=f"{capability[0].label} ({capability[0].share})" if capability else DASH,
        cot=_fmt_pct(campaign.get("cot_elicitation_share")),
        summary=_text(campaign.get("summary")),
        reasons=[_text(r) for r in _list(campaign.get("top_reasons")) if r is not None],
        timeline=timeline,
        timeline_note=timeline_note,
        graph=graph_chart(_links(campaign.get("link_edges")), frozenset(listed)),
        capability=capability,
        infrastructure=_infrastructure(campaign.get("infrastructure")),
        clues=(
            IndicatorTable(
                "Metadata clues",
                _indicator_rows(clue_entries[:MAX_INDICATOR_ROWS], with_key=True),
                len(clue_entries),
                has_key=True,
            )
            if clue_entries
            else None
        ),
        pivot=_pivot(pivot_dict),
        members=_account_table(members, columns, MAX_MEMBER_ROWS) if members else None,
        listed_ids=sorted(listed)[:MAX_FALLBACK_IDS] if not members else [],
        listed_total=len(listed),
        extra=[
            Figure(_text(k), _fmt_value(v)) for k, v in sorted(campaign.items()) if k not in _CAMPAIGN_KEYS
        ],
    )


def _figures(summary: dict[str, Any] | None, n_campaigns: int, n_ungrouped: int) -> list[Figure]:
    figures = [Figure("Campaigns", f"{n_campaigns:,}")]
    data = _dict(summary)
    keys = [k for k in _SUMMARY_LABELS if k in data] + sorted(k for k in data if k not in _SUMMARY_LABELS)
    for key in keys:
        value = data[key]
        label = _SUMMARY_LABELS.get(key) or _text(key).replace("_", " ").capitalize()
        if key == "period" and isinstance(value, list | tuple) and len(value) == 2:
            figures.append(Figure(label, f"{_fmt_time(value[0])} → {_fmt_time(value[1])}"))
        else:
            figures.append(Figure(label, _fmt_value(value)))
    figures.append(Figure("Flagged outside campaigns", f"{n_ungrouped:,}"))
    return figures


# ------------------------------------------------------------------------------------------ rendering


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process. Autoescape is forced on: select_autoescape keys on the file
    suffix, and ``.html.j2`` would silently turn it off."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("distillshield.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(
    campaigns: list[dict[str, Any]],
    accounts: pa.Table | None,
    *,
    title: str = "distillshield scan",
    source: str = "",
    generated_at: str | None = None,
    summary: dict[str, Any] | None = None,
) -> str:
    """Render the self-contained triage page (inline CSS and SVG, no scripts, no external references).

    Campaigns are ordered by score (highest first, ties by id); member rows come from ``accounts``
    where ``campaign_id`` matches. ``generated_at`` is shown verbatim and never taken from the clock,
    so identical inputs give byte-identical output.
    """
    rows, columns = _select_accounts(accounts)
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    ungrouped: list[dict[str, Any]] = []
    for row in rows:
        cid = row.get("campaign_id")
        if cid is not None and str(cid) != "":
            by_campaign.setdefault(_text(cid), []).append(row)
        elif row.get("flagged") is True:
            ungrouped.append(row)

    valid = [c for c in (campaigns or []) if isinstance(c, dict)]

    def order(c: dict[str, Any]) -> tuple[float, str]:
        score = _num(c.get("score"))
        return (-score if score is not None else math.inf, _text(c.get("id")))

    views = [
        _campaign_view(
            i, c, by_campaign.get(_text(c.get("id")), []) if c.get("id") is not None else [], columns
        )
        for i, c in enumerate(sorted(valid, key=order), start=1)
    ]
    known_ids = {_text(c.get("id")) for c in valid if c.get("id") is not None}
    orphans = sorted(set(by_campaign) - known_ids)
    notes = []
    if orphans:
        n_orphan = sum(len(by_campaign[o]) for o in orphans)
        notes.append(
            f"{n_orphan:,} account rows reference {len(orphans):,} campaign id(s) absent from the campaign "
            f"list: {', '.join(orphans[:10])}" + (" …" if len(orphans) > 10 else "")
        )
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=_text(title) or "distillshield scan",
        source=_text(source),
        generated_at=_text(generated_at),
        figures=_figures(summary, len(views), len(ungrouped)),
        notes=notes,
        campaigns=views,
        ungrouped=_account_table(ungrouped, columns - {"campaign_share"}, MAX_UNGROUPED_ROWS),
        member_cap=MAX_MEMBER_ROWS,
    )


def write_report(path: Path, campaigns: list[dict[str, Any]], accounts: pa.Table | None, **kw: Any) -> None:
    """Render and write atomically (temp file in the same directory, then ``os.replace``).

    A reader (browser, watcher, the next pipeline stage) never sees a half-written report, and a
    failed render leaves any previous report in place.
    """
    path = Path(path)
    html = render_report(campaigns, accounts, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
