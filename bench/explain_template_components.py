"""Could prompt-template families tie a campaign's flagged accounts together? (docs/results.md)

Usage:
    python bench/explain_template_components.py DATA --replay DET [--min-flagged 3]

Links two flagged accounts of a ``distillshield replay`` output when they send a template
family (``derived/signals.template_family``) that is held by at least ``--min-flagged``
flagged accounts and mostly (over half its holders) by flagged ones — the rule the linking
step applies to over-cap cards and client stacks ("hubs", docs/scoring.md) — and prints the
connected components with the ground-truth campaigns of their members. A usable clustering
signal would give one component per campaign; a family bank every operator draws from gives
one component holding them all.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import duckdb
import networkx as nx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared dataset with labels/")
    ap.add_argument("--replay", type=Path, required=True, help="a `distillshield replay` output directory")
    ap.add_argument("--min-flagged", type=int, default=3)
    args = ap.parse_args()
    con = duckdb.connect()
    data, det = args.data, args.replay
    con.execute(
        "CREATE TABLE fl AS SELECT a.account_id, coalesce(l.campaign_id, 'legitimate') AS truth "
        f"FROM read_parquet('{det / 'accounts.parquet'}') a "
        f"JOIN read_parquet('{data / 'labels' / 'accounts.parquet'}') l USING (account_id) WHERE a.flagged"
    )
    con.execute(
        "CREATE TABLE uf AS SELECT DISTINCT e.account_id, s.template_family AS fam "
        f"FROM read_parquet('{data / 'exchanges' / '*.parquet'}') e "
        f"JOIN read_parquet('{data / 'derived' / 'signals' / '*.parquet'}') s USING (request_id) "
        "WHERE s.template_family IS NOT NULL"
    )
    rows = con.execute(
        "WITH h AS (SELECT fam, count(*) AS n_all, count(fl.account_id) AS n_fl "
        "FROM uf LEFT JOIN fl USING (account_id) GROUP BY fam) "
        "SELECT uf.fam, uf.account_id, fl.truth FROM uf JOIN fl USING (account_id) JOIN h USING (fam) "
        "WHERE h.n_fl >= ? AND 2 * h.n_fl > h.n_all ORDER BY uf.fam, uf.account_id",
        [args.min_flagged],
    ).fetchall()
    graph: nx.Graph = nx.Graph()
    truth: dict[str, str] = {}
    by_family: dict[str, list[str]] = {}
    for fam, account, label in rows:
        truth[account] = label
        by_family.setdefault(fam, []).append(account)
    for holders in by_family.values():
        graph.add_node(holders[0])
        graph.add_edges_from((holders[0], other) for other in holders[1:])
    comps = sorted(nx.connected_components(graph), key=len, reverse=True)
    print(f"{data}: {len(by_family)} families held mostly by flagged accounts, {len(comps)} components")
    print("component | accounts | ground truth (accounts)")
    for i, comp in enumerate(comps[:10]):
        mix = ", ".join(f"{t} {n}" for t, n in Counter(truth[a] for a in comp).most_common())
        print(f"{i} | {len(comp)} | {mix}")


if __name__ == "__main__":
    main()
