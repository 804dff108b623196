"""How client-stack hubs should cluster flagged accounts: the shipped rule against alternatives.

Usage:
    python bench/eval_client_hubs.py DATA [--memory-limit 6GB] [--star-weights 0.25,1,5]

Runs ``scan`` on DATA (a simulated, prepared dataset with labels/) and keeps exactly what the
campaign step clusters: the flagged accounts, the evidence edges among them and the over-cap
hubs (cards, staff handles, client stacks held mostly by flagged accounts). Then clusters them

* ``no hubs``: Leiden over the pair edges plus the identity merge, hubs ignored;
* ``shipped``: :func:`distillshield.detect.campaigns._cluster` as the scan runs it (cards and
  staff handles join, client stacks weave communities together and place loners, a stack no
  community owns gathers its loners);
* ``shipped, unowned stacks not gathered``: the same without that last step
  (:func:`distillshield.detect.campaigns._gather_unowned`; docs/results.md, "An operator that
  shares nothing but its harness");
* ``star W``: every client hub added to the Leiden graph as a node with an edge of weight W
  to each of its flagged holders, so that modularity alone decides what a stack ties
  (cards and staff handles as shipped). The alternative measured and not shipped
  (docs/scoring.md, "Client stacks that weave card groups together").

and prints, per method, each true campaign's coverage and purity (its best cluster, as
``distillshield evaluate`` picks it), the number of clusters and the flagged legitimate
accounts placed in a campaign.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import distillshield.detect.campaigns as campaigns
from distillshield.backends import get_backend
from distillshield.detect.scan import scan_tables


def capture(data: Path, memory_limit: str | None) -> tuple[list[str], pa.Table, dict[str, list[str]]]:
    """The scan's clustering inputs: flagged ids, their edges of the clustering kinds, hubs."""
    seen: dict[str, Any] = {}
    shipped = campaigns._cluster

    def spy(flagged_ids: list[str], edges: pa.Table, *, seed: int = 0, hubs: Any = None) -> dict[str, str]:
        seen.update(flagged=list(flagged_ids), edges=edges, hubs=dict(hubs or {}))
        return shipped(flagged_ids, edges, seed=seed, hubs=hubs)

    campaigns._cluster = spy  # type: ignore[assignment]
    try:
        options = {"memory_limit": memory_limit} if memory_limit else {}
        scan_tables(data, dossiers=True, backend=get_backend("duckdb", **options))
    finally:
        campaigns._cluster = shipped  # type: ignore[assignment]
    keep = pa.array(seen["flagged"], pa.string())
    e = seen["edges"]
    e = e.filter(
        pc.and_(
            pc.is_in(e.column("kind"), value_set=pa.array(campaigns.CLUSTER_KINDS, pa.string())),
            pc.and_(pc.is_in(e.column("src"), value_set=keep), pc.is_in(e.column("dst"), value_set=keep)),
        )
    )
    return seen["flagged"], e, seen["hubs"]


def star(flagged: list[str], edges: pa.Table, hubs: dict[str, list[str]], weight: float) -> dict[str, str]:
    """Client hubs as Leiden nodes (star expansion), then the shipped identity merge and card hubs."""
    import igraph as ig
    import leidenalg

    nodes = sorted(flagged)
    index = {a: i for i, a in enumerate(nodes)}
    w: dict[tuple[int, int], float] = {}
    identity: list[tuple[int, int]] = []
    columns = (edges.column(c).to_pylist() for c in ("src", "dst", "kind", "weight"))
    for s, d, k, x in zip(*columns, strict=True):
        key = (index[s], index[d])
        w[key] = w.get(key, 0.0) + float(x)
        if k in campaigns.IDENTITY_KINDS:
            identity.append(key)
    stacks = [v for v in sorted(hubs) if campaigns._hub_kind(v) == "client" and len(hubs[v]) >= 2]
    for h, v in enumerate(stacks):
        for a in hubs[v]:
            w[(index[a], len(nodes) + h)] = weight
    pairs = sorted(w)
    graph = ig.Graph(n=len(nodes) + len(stacks), edges=pairs)
    graph.es["weight"] = [w[p] for p in pairs]
    part = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition, weights="weight", seed=0)
    community = list(part.membership)[: len(nodes)]
    parent = list(range(max(community) + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    between = Counter((min(community[a], community[b]), max(community[a], community[b])) for a, b in identity)
    for (ca, cb), n in sorted(between.items()):
        if ca != cb and n >= campaigns.MERGE_MIN_EDGES:
            parent[find(ca)] = find(cb)
    degree = {i for p in pairs for i in p if i < len(nodes)}
    cards = {v: hs for v, hs in hubs.items() if campaigns._hub_kind(v) != "client"}
    if cards:
        n_comm = len(parent)
        community = [c if i in degree else n_comm + i for i, c in enumerate(community)]
        parent.extend(range(n_comm, n_comm + len(nodes) + len(cards)))
        campaigns._join_hubs(cards, index, community, degree, parent, find, n_comm + len(nodes))
        degree |= {index[a] for hs in cards.values() for a in hs}
    groups: dict[int, list[str]] = {}
    for i, a in enumerate(nodes):
        if i in degree:
            groups.setdefault(find(community[i]), []).append(a)
    return {a: str(g) for g, members in groups.items() if len(members) >= 2 for a in members}


def report(name: str, assign: dict[str, str], flagged: list[str], truth: dict[str, str]) -> None:
    size = Counter(assign.values())
    n_true = Counter(truth.values())
    cells = []
    for c in sorted(v for v in n_true if v != "legitimate"):
        overlap = Counter(assign[a] for a in flagged if truth.get(a) == c and a in assign)
        if not overlap:
            cells.append(f"{c} 0 % / -")
            continue
        best, n = max(overlap.items(), key=lambda kv: (kv[1], -size[kv[0]]))
        cells.append(f"{c} {100 * n / n_true[c]:.1f} % / {100 * n / size[best]:.1f} %")
    legit = sum(1 for a in flagged if truth.get(a, "legitimate") == "legitimate" and a in assign)
    print(f"| {name} | {' ; '.join(cells)} | {len(size)} | {legit} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit for the scan (e.g. 6GB)")
    ap.add_argument("--star-weights", default="0.25,1,5", help="comma-separated star edge weights")
    args = ap.parse_args()
    flagged, edges, hubs = capture(args.data, args.memory_limit)
    truth = {
        r["account_id"]: r["campaign_id"] or "legitimate"
        for r in pq.read_table(args.data / "labels" / "accounts.parquet").to_pylist()
    }
    kinds = Counter(campaigns._hub_kind(v) for v in hubs)
    print(f"{len(flagged)} flagged accounts, {edges.num_rows} edges among them, hubs {dict(kinds)}")
    print("| method | per campaign: coverage / purity | clusters | legitimate in a campaign |")
    print("|---|---|---|---|")
    report("no hubs", campaigns._cluster(flagged, edges), flagged, truth)
    report("shipped", campaigns._cluster(flagged, edges, hubs=hubs), flagged, truth)
    gather = campaigns._gather_unowned
    campaigns._gather_unowned = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        kept = campaigns._cluster(flagged, edges, hubs=hubs)
        report("shipped, unowned stacks not gathered", kept, flagged, truth)
    finally:
        campaigns._gather_unowned = gather  # type: ignore[assignment]
    for w in (float(x) for x in args.star_weights.split(",")):
        report(f"star {w:g}", star(flagged, edges, hubs, w), flagged, truth)


if __name__ == "__main__":
    main()
