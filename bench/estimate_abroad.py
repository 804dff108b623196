"""What would first-contact-abroad evidence have protected? (docs/gateway-evaluation.md)

Usage:
    python bench/estimate_abroad.py DATA --gateway GW [--requests 10]

Reads a ``distillshield gateway replay`` output (``GW/decisions.parquet``) made *without* the
``abroad`` evidence and marks the exchanges it would fire on: the account is fresh (created
less than 30 days before the exchange), no batch run had judged it (its first exchange came
after the verdicts in force were computed: the first exchange of their version), the exchange
is among its first ``--requests`` (0: any), and it exits from a country other than the
declared one. Prints, per campaign and for legitimate accounts, the exchanges served
unprotected that it would have protected (and those with reasoning, the only ones a protect
costs a legitimate customer), and the leakage and legitimate cost that would follow if
nothing else changed — an estimate: the built evidence is also worth only what batch
verdicts confirm, so it can switch itself off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared dataset with labels/")
    ap.add_argument("--gateway", type=Path, required=True, help="a `distillshield gateway replay` output")
    ap.add_argument("--requests", type=int, default=10, help="first N requests of an account (0: any)")
    args = ap.parse_args()
    data, gw = args.data, args.gateway
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE d AS SELECT d.*, "
        "coalesce(x.campaign_id, "
        "  CASE WHEN l.campaign_id IS NOT NULL THEN 'collateral' ELSE 'legitimate' END) AS who, "
        "e.ip_country, a.declared_country, epoch(d.ts) - epoch(a.created_at) AS age_s, "
        "row_number() OVER (PARTITION BY d.account_id ORDER BY d.ts) AS k "
        f"FROM read_parquet('{gw / 'decisions.parquet'}') d "
        f"JOIN read_parquet('{data / 'labels' / 'accounts.parquet'}') l USING (account_id) "
        f"JOIN read_parquet('{data / 'labels' / 'exchanges' / '*.parquet'}') x USING (request_id) "
        f"JOIN read_parquet('{data / 'accounts.parquet'}') a USING (account_id) "
        f"JOIN read_parquet('{data / 'derived' / 'enrichment' / '*.parquet'}') e USING (request_id)"
    )
    rows = con.execute(
        "WITH g AS (SELECT verdicts, min(ts) AS t FROM d GROUP BY verdicts), "
        "f AS (SELECT account_id, min(ts) AS t0 FROM d GROUP BY account_id), "
        "h AS (SELECT d.*, (g.verdicts IS NULL OR f.t0 >= g.t) AND d.age_s < 30 * 86400 "
        "  AND d.ip_country <> d.declared_country AND (? = 0 OR d.k <= ?) AS fires "
        "  FROM d JOIN f USING (account_id) LEFT JOIN g ON d.verdicts IS NOT DISTINCT FROM g.verdicts) "
        "SELECT who, count(*) AS n, count(*) FILTER (WHERE action = 'allow') AS leaked, "
        "count(*) FILTER (WHERE action = 'allow' AND fires) AS hit, "
        "count(*) FILTER (WHERE action = 'allow' AND fires AND had_reasoning) AS hit_reasoning, "
        "count(*) FILTER (WHERE altered OR refused OR NOT forwarded) AS affected "
        "FROM h GROUP BY who ORDER BY who",
        [args.requests, args.requests],
    ).fetchall()
    print("who | exchanges | served unprotected | would be protected | of them with reasoning")
    for who, n, leaked, hit, hit_r, _ in rows:
        print(f"{who} | {n} | {leaked} | {hit} | {hit_r}")
    camp = [r for r in rows if r[0].startswith("campaign")]
    n, leaked, hit = (sum(r[i] for r in camp) for i in (1, 2, 3))
    legit = next((r for r in rows if r[0] == "legitimate"), None)
    print(f"leakage {leaked / n:.2%} -> {(leaked - hit) / n:.2%}")
    if legit is not None:
        print(f"legitimate affected {legit[5] / legit[1]:.3%} -> {(legit[5] + legit[4]) / legit[1]:.3%}")


if __name__ == "__main__":
    main()
