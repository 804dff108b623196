"""Compare ways of clustering the flagged accounts into campaigns (docs/scoring.md).

Usage: python bench/eval_clustering.py DATA   (a simulated, prepared dataset with labels/)

Scores the shipped model on DATA, keeps the flagged accounts and the evidence edges among
them, and clusters them several ways: connected components over growing sets of edge kinds,
Leiden (modularity and CPM at a few resolutions), and what the scan does (Leiden over
strong + metadata + client edges, then merging communities tied by >= 3 identity edges).
Prints, per method, the number of clusters, the adjusted Rand index against the campaign
labels (legitimate accounts as singletons) and the three largest clusters' composition.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import igraph as ig
import leidenalg
import networkx as nx
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score

from distillshield.detect.campaigns import CLUSTER_KINDS, _cluster
from distillshield.detect.scan import scan_tables

STRONG = ("payment", "ip", "prefix", "signup")


def main(data: Path) -> None:
    result = scan_tables(data, dossiers=False)
    labels = {
        r["account_id"]: r["campaign_id"] or r["account_id"]
        for r in pq.read_table(data / "labels" / "accounts.parquet").to_pylist()
    }
    flagged = sorted(
        a
        for a, f in zip(
            result.accounts.column("account_id").to_pylist(),
            result.accounts.column("flagged").to_pylist(),
            strict=True,
        )
        if f
    )
    keep = set(flagged)
    edges = [e for e in result.edges.to_pylist() if e["src"] in keep and e["dst"] in keep]
    print(f"{len(flagged)} flagged accounts, {len(edges)} edges among them")
    print(
        "edges joining two different true clusters, by kind:",
        dict(collections.Counter(e["kind"] for e in edges if labels[e["src"]] != labels[e["dst"]])),
    )

    def show(name: str, part: dict[str, object]) -> None:
        groups: dict[object, list[str]] = collections.defaultdict(list)
        for a in flagged:
            groups[part.get(a, ("single", a))].append(a)
        ari = adjusted_rand_score([labels[a] for a in flagged], [str(part.get(a, a)) for a in flagged])
        top = sorted(groups.values(), key=len, reverse=True)[:3]
        comp = [
            dict(collections.Counter(labels[a] if labels[a] != a else "legit" for a in g).most_common(2))
            for g in top
        ]
        print(f"| {name} | {len(groups)} | {ari:.3f} | {comp} |")

    print("| method | clusters | ARI | largest three (composition) |")
    print("|---|---|---|---|")
    for kinds in (STRONG, (*STRONG, "metadata"), (*STRONG, "metadata", "template")):
        g = nx.Graph()
        g.add_nodes_from(flagged)
        g.add_edges_from((e["src"], e["dst"]) for e in edges if e["kind"] in kinds)
        show(
            "components: " + "+".join(kinds),
            {a: i for i, cc in enumerate(nx.connected_components(g)) for a in cc},
        )
    index = {a: i for i, a in enumerate(flagged)}
    for kinds in (
        tuple(k for k in ("payment", "ip", "prefix", "signup", "metadata", "client", "template")),
        CLUSTER_KINDS,
    ):
        w: dict[tuple[int, int], float] = collections.defaultdict(float)
        for e in edges:
            if e["kind"] in kinds:
                w[(index[e["src"]], index[e["dst"]])] += e["weight"]
        graph = ig.Graph(n=len(flagged), edges=list(w))
        graph.es["weight"] = list(w.values())
        p = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition, weights="weight", seed=0)
        show("Leiden modularity: " + "+".join(kinds), {flagged[i]: c for i, c in enumerate(p.membership)})
        for res in (0.05, 0.2):
            p = leidenalg.find_partition(
                graph, leidenalg.CPMVertexPartition, weights="weight", resolution_parameter=res, seed=0
            )
            show(f"Leiden CPM {res}: " + "+".join(kinds), {flagged[i]: c for i, c in enumerate(p.membership)})
    show("scan (Leiden + identity merge)", dict(_cluster(flagged, result.edges)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
