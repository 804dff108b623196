"""Geometry for the report's inline SVG charts (timeline and account-link graph).

This module only computes numbers and plain strings; the Jinja template draws them, so every piece
of data that reaches the page goes through autoescaping and nothing here builds markup. Layouts are
deterministic (fixed seed, sorted inputs, rounded coordinates) so the same scan always renders the
same bytes, which keeps reports diffable and tests exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

#: At most this many bars in a timeline; longer series are summed into wider bins so the path stays small.
MAX_TIMELINE_BINS = 720
#: Node and edge caps for the link graph: beyond this a drawing stops being readable anyway.
MAX_GRAPH_NODES = 150
MAX_GRAPH_EDGES = 2000

#: Okabe-Ito-derived palette: distinguishable under the common colour-vision deficiencies.
EDGE_COLOURS: dict[str, str] = {
    "payment": "#d55e00",
    "ip": "#0072b2",
    "prefix": "#56b4e9",
    "signup": "#e69f00",
    "metadata": "#cc79a7",
    "client": "#009e73",
    "template": "#8c6d31",
    "sync": "#6a3d9a",
}
OTHER_COLOUR = "#8a8a8a"


def _r(value: float) -> float:
    """Round a coordinate: one decimal is sub-pixel and keeps output stable and short."""
    return round(float(value), 1)


# --------------------------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class TimelineChart:
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    area_path: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    marker: Tick | None
    caption: str
    notes: list[str]


def _nice_ceiling(value: float) -> float:
    """Round an axis maximum up to 1, 2 or 5 times a power of ten so the labels read cleanly."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        candidate = step * 10.0**exp
        if candidate >= value:
            return candidate
    return 10.0 ** (exp + 1)  # pragma: no cover - the loop always returns


def _fmt_count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _fmt_hours(hours: float) -> str:
    if float(hours).is_integer():
        return f"{int(hours)} h"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:g} h"


def timeline_chart(
    counts: Sequence[float],
    start: datetime | None,
    bin_hours: float,
    release: tuple[datetime, str] | None = None,
) -> TimelineChart | None:
    """Step-area chart of exchanges per bin, with UTC day ticks and an optional release marker.

    A single filled path (instead of one rect per bin) keeps a month of hourly bins to a few KB.
    Returns None when there is nothing to draw.
    """
    if not counts:
        return None
    values = [max(0.0, float(v)) for v in counts]
    source_bins = len(values)
    total_hours = source_bins * bin_hours
    notes: list[str] = []
    factor = 1
    if source_bins > MAX_TIMELINE_BINS:
        factor = math.ceil(source_bins / MAX_TIMELINE_BINS)
        values = [sum(values[i : i + factor]) for i in range(0, source_bins, factor)]
        notes.append(f"{source_bins:,} bins merged {factor} to 1 for drawing.")
    n = len(values)
    width, height = 760, 170
    left, top, right, bottom = 52.0, 12.0, width - 14.0, height - 28.0
    plot_w, plot_h = right - left, bottom - top
    y_max = _nice_ceiling(max(values))

    def x_of(bin_index: int) -> float:
        # positions follow source bins, so a short last merged bin keeps the time axis exact
        return _r(left + plot_w * min(bin_index * factor, source_bins) / source_bins)

    def y_of(v: float) -> float:
        return _r(bottom - plot_h * v / y_max)

    parts = [f"M{_r(left)},{_r(bottom)}"]
    i = 0
    while i < n:  # merge runs of equal height: flat stretches cost one segment
        j = i
        while j + 1 < n and values[j + 1] == values[i]:
            j += 1
        y = y_of(values[i])
        parts.append(f"L{x_of(i)},{y}L{x_of(j + 1)},{y}")
        i = j + 1
    parts.append(f"L{_r(right)},{_r(bottom)}Z")

    y_ticks = [Tick(_r(bottom - plot_h * f), _fmt_count(y_max * f)) for f in (0.0, 0.5, 1.0)]
    x_ticks = _time_ticks(start, total_hours, left, plot_w) if start is not None else []
    if start is None:
        x_ticks = [
            Tick(_r(left + plot_w * f), f"+{total_hours * f:g} h") for f in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]
        notes.append("Timeline start unknown: axis shows hours from the first bin.")

    marker: Tick | None = None
    if release is not None and start is not None:
        released_at, model = release
        offset_h = (released_at - start).total_seconds() / 3600.0
        if 0.0 <= offset_h <= total_hours:
            marker = Tick(_r(left + plot_w * offset_h / total_hours), f"release: {model}")
        else:
            notes.append(f"Release of {model} falls outside the timeline window.")

    caption = f"Exchanges per {_fmt_hours(bin_hours * factor)} bin (UTC); total {_fmt_count(sum(values))}."
    return TimelineChart(
        width, height, left, top, right, bottom, "".join(parts), x_ticks, y_ticks, marker, caption, notes
    )


def _time_ticks(start: datetime, total_hours: float, left: float, plot_w: float) -> list[Tick]:
    """Ticks at UTC midnights (thinned to about ten); start/end times when the span has fewer than two."""
    start = start.astimezone(UTC)
    end = start + timedelta(hours=total_hours)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(days=1)
    days = max(0, (end - first).days + 1) if first <= end else 0
    step = max(1, math.ceil(days / 10))

    def x_of(t: datetime) -> float:
        return _r(left + plot_w * (t - start).total_seconds() / 3600.0 / total_hours)

    ticks: list[Tick] = []
    for d in range(0, days, step):
        t = first + timedelta(days=d)
        if t <= end:
            ticks.append(Tick(x_of(t), t.strftime("%m-%d")))
    if len(ticks) < 2:
        ticks = [
            Tick(x_of(start), start.strftime("%m-%d %H:%M")),
            Tick(x_of(end), end.strftime("%m-%d %H:%M")),
        ]
    return ticks


# ---------------------------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class Link:
    """One input edge, already coerced to plain types."""

    src: str
    dst: str
    kind: str
    weight: float


@dataclass(frozen=True)
class GraphNode:
    x: float
    y: float
    r: float
    account: str
    degree: int
    member: bool
    title: str
    label: str
    label_left: bool


@dataclass(frozen=True)
class EdgeGroup:
    """All edges of one kind and opacity level as a single path: a dense campaign has thousands
    of links, and one element per link would dominate page size and render time."""

    kind: str
    colour: str
    opacity: float
    path: str


@dataclass(frozen=True)
class LegendItem:
    kind: str
    colour: str
    count: int


@dataclass(frozen=True)
class GraphChart:
    width: int
    height: int
    nodes: list[GraphNode]
    edges: list[EdgeGroup]
    legend: list[LegendItem]
    shown_nodes: int
    total_nodes: int
    shown_edges: int
    total_edges: int
    has_outsiders: bool


def spring_layout(
    n: int,
    pairs: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    *,
    iterations: int = 120,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Fruchterman-Reingold force layout (dense numpy), positions scaled to the unit square.

    Seeded start and a fixed iteration count make it deterministic; a weak pull to the centre keeps
    loosely attached nodes near the core. O(n^2) per step, fine for the node cap. Call it per
    connected component (see ``packed_layout``).
    """
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    attract = np.zeros((n, n))
    for (a, b), w in zip(pairs.tolist(), weights.tolist(), strict=True):
        attract[a, b] = attract[b, a] = min(2.0, attract[a, b] + w)
    # normalise by degree so a dense clique (shared card, shared /24) spreads out instead of
    # collapsing into one blob, while chains and stars keep their shape
    degree = np.maximum((attract > 0).sum(axis=1), 1).astype(np.float64)
    attract /= np.sqrt(np.outer(degree, degree)) / 2.0
    k = math.sqrt(1.0 / n)
    t = 0.1
    dt = t / (iterations + 1)
    for _ in range(iterations):
        dx = pos[:, 0:1] - pos[:, 0]
        dy = pos[:, 1:2] - pos[:, 1]
        dist = np.sqrt(np.maximum(dx * dx + dy * dy, 1e-4))
        force = k * k / (dist * dist) - attract * dist / k
        disp = np.stack([(dx * force).sum(axis=1), (dy * force).sum(axis=1)], axis=1)
        disp -= 0.05 * n * k * (pos - pos.mean(axis=0))
        length = np.sqrt((disp * disp).sum(axis=-1))
        length = np.where(length < 0.01, 0.1, length)
        pos += disp * (t / length)[:, None]
        t -= dt
    lo = pos.min(axis=0)
    span = pos.max(axis=0) - lo
    span[span == 0] = 1.0
    out: npt.NDArray[np.float64] = (pos - lo) / span
    return out


def _components(n: int, pairs: npt.NDArray[np.int64]) -> list[list[int]]:
    """Connected components (union-find), largest first, ties by lowest node index."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def packed_layout(
    n: int,
    pairs: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    *,
    aspect: float = 1.0,
) -> npt.NDArray[np.float64]:
    """Lay out each connected component on its own, then shelf-pack them; unit-square output.

    A single force layout pushes separate components to the corners and shrinks each one to a
    speck; packing gives every component room in proportion to its size (side ~ sqrt(nodes)).
    """
    pos = np.zeros((n, 2))
    if n == 0:
        return pos
    comps = _components(n, pairs)
    sides = [math.sqrt(len(c)) + 0.6 for c in comps]
    row_limit = max(max(sides), math.sqrt(sum(side * side for side in sides) * aspect))
    x = y = row_h = 0.0
    for comp, side in zip(comps, sides, strict=True):
        if x > 0 and x + side > row_limit:
            x, y, row_h = 0.0, y + row_h, 0.0
        local = {node: i for i, node in enumerate(comp)}
        sel = [e for e, (a, _b) in enumerate(pairs.tolist()) if a in local]
        sub_pairs = np.array([[local[a], local[b]] for a, b in pairs[sel].tolist()], dtype=np.int64).reshape(
            -1, 2
        )
        inner = spring_layout(len(comp), sub_pairs, weights[sel])
        pos[comp] = np.array([x, y]) + 0.3 + inner * (side - 0.6)
        x += side
        row_h = max(row_h, side)
    lo = pos.min(axis=0)
    span = pos.max(axis=0) - lo
    span[span == 0] = 1.0
    out: npt.NDArray[np.float64] = (pos - lo) / span
    if n == 1:
        out[:] = 0.5
    return out


def graph_chart(
    links: Sequence[Link],
    members: frozenset[str],
    *,
    max_nodes: int = MAX_GRAPH_NODES,
    max_edges: int = MAX_GRAPH_EDGES,
) -> GraphChart | None:
    """Lay out the account-link graph; keeps the best-connected nodes when over the cap.

    Nodes are ranked by weighted degree (ties by id) so the cap keeps the campaign's core, and the
    figure says how much was left out. Members listed by the campaign are filled; linked accounts
    outside it are drawn hollow, since those are the ones an analyst may want to pull in.
    """
    uniq: dict[tuple[str, str, str], float] = {}
    for link in links:
        if not link.src or not link.dst or link.src == link.dst:
            continue
        a, b = sorted((link.src, link.dst))
        key = (a, b, link.kind)
        uniq[key] = max(uniq.get(key, 0.0), link.weight)
    if not uniq:
        return None
    strength: dict[str, float] = {}
    for (a, b, _), w in uniq.items():
        strength[a] = strength.get(a, 0.0) + max(w, 0.05)
        strength[b] = strength.get(b, 0.0) + max(w, 0.05)
    total_nodes, total_edges = len(strength), len(uniq)
    ranked = sorted(strength, key=lambda acc: (-strength[acc], acc))
    keep = set(ranked[:max_nodes])
    kept = sorted(
        ((key, w) for key, w in uniq.items() if key[0] in keep and key[1] in keep),
        key=lambda kw: (-kw[1], kw[0]),
    )[:max_edges]
    names = sorted({acc for (a, b, _), _w in kept for acc in (a, b)})
    index = {acc: i for i, acc in enumerate(names)}
    pairs = np.array([[index[a], index[b]] for (a, b, _), _w in kept], dtype=np.int64).reshape(-1, 2)
    weights = np.array([max(w, 0.1) for _k, w in kept], dtype=np.float64)
    width, height, pad = 760, 460, 24.0
    pos = packed_layout(len(names), pairs, weights, aspect=(width - 2 * pad) / (height - 2 * pad))
    xy = [(_r(pad + p[0] * (width - 2 * pad)), _r(pad + p[1] * (height - 2 * pad))) for p in pos.tolist()]
    degree = dict.fromkeys(names, 0)
    by_kind: dict[str, dict[str, int]] = {acc: {} for acc in names}
    kinds: dict[str, int] = {}
    segments: dict[tuple[float, str], list[str]] = {}
    for (a, b, kind), w in kept:
        for acc in (a, b):
            degree[acc] += 1
            by_kind[acc][kind] = by_kind[acc].get(kind, 0) + 1
        kinds[kind] = kinds.get(kind, 0) + 1
        (x1, y1), (x2, y2) = xy[index[a]], xy[index[b]]
        level = round(0.25 + 0.2 * min(3, int(max(w, 0.0) * 4)), 2)  # four opacity levels by weight
        segments.setdefault((level, kind), []).append(f"M{x1},{y1}L{x2},{y2}")
    edges = [  # faint first, so the strongest links are drawn on top
        EdgeGroup(kind, EDGE_COLOURS.get(kind, OTHER_COLOUR), level, "".join(segments[level, kind]))
        for level, kind in sorted(segments)
    ]
    label_nodes = len(names) <= 24
    nodes = []
    for i, acc in enumerate(names):
        member = (not members) or acc in members
        mix = ", ".join(f"{k} {c}" for k, c in sorted(by_kind[acc].items(), key=lambda kc: (-kc[1], kc[0])))
        nodes.append(
            GraphNode(
                x=xy[i][0],
                y=xy[i][1],
                r=_r(2.5 + min(3.0, 0.7 * math.sqrt(degree[acc]))),
                account=acc,
                degree=degree[acc],
                member=member,
                title=f"{acc}: {degree[acc]} links ({mix})"
                + ("" if member else "; not listed in this campaign"),
                label=(acc if len(acc) <= 18 else "…" + acc[-17:])
                if label_nodes
                else "",  # ids share prefixes
                label_left=xy[i][0] > width - 130,  # keep labels near the right edge inside the frame
            )
        )
    known = [k for k in EDGE_COLOURS if k in kinds]
    legend = [LegendItem(k, EDGE_COLOURS[k], kinds[k]) for k in known]
    legend += [LegendItem(k, OTHER_COLOUR, kinds[k]) for k in sorted(kinds) if k not in EDGE_COLOURS]
    return GraphChart(
        width,
        height,
        nodes,
        edges,
        legend,
        shown_nodes=len(names),
        total_nodes=total_nodes,
        shown_edges=len(kept),
        total_edges=total_edges,
        has_outsiders=any(not node.member for node in nodes),
    )
