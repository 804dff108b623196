"""Where a replay's leakage and promotions come from (docs/results.md, docs/gateway-evaluation.md).

Usage:
    python bench/explain_leakage.py DATA --replay DET [--split-at ISO]
    python bench/explain_leakage.py DATA --gateway GW [--every 6h]

``--replay DET`` (a ``distillshield replay`` output): per campaign, accounts flagged, those
first flagged more than one cadence step (``--every``) after their first request ("late") and
the share of the leaked exchanges that are theirs; the first reason of the flagged campaign
accounts; the client stacks (user agent + TLS) over linking's client cap that each campaign
holds most of (docs/scoring.md, "Client-stack hubs"); with ``--split-at``, how many were
flagged before that time; and, per persona, the accounts promoted by coordinated novelty or
corroboration (their reasons say so).

``--gateway GW`` (a ``distillshield gateway replay`` output): exchanges protected by the
``batch-suspect`` rule alone, by how many requests the account had sent when the verdict in
force was computed (the last cadence step before the exchange), as protected / with the
raw reasoning withheld, for legitimate accounts and per campaign; then each campaign's
exchanges and leakage (served with no countermeasure) split by whether the account was fresh
(created less than 30 days before its first exchange, the online model term's gate).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from distillshield.detect.replay import parse_every
from distillshield.linking import EdgeParams


def _labels(con: duckdb.DuckDBPyConnection, data: Path) -> None:
    con.execute(
        f"CREATE TABLE lab AS SELECT account_id, campaign_id AS truth, persona "
        f"FROM read_parquet('{data}/labels/accounts.parquet')"
    )
    con.execute(f"CREATE TABLE ex AS SELECT account_id, ts FROM read_parquet('{data}/exchanges/*.parquet')")


def replay_report(
    con: duckdb.DuckDBPyConnection, data: Path, det: Path, step_s: float, split_at: str | None
) -> None:
    con.execute(f"CREATE TABLE det AS SELECT * FROM read_parquet('{det}/accounts.parquet')")
    con.execute(
        """CREATE TABLE per AS
        SELECT l.truth, x.account_id, min(x.ts) AS first_ts, any_value(d.first_flagged_at) AS ff,
               any_value(d.flagged) AS flagged,
               any_value(list_filter(d.top_reasons, r -> NOT starts_with(r, 'tactic:'))[1]) AS reason,
               count(*) FILTER (WHERE d.first_flagged_at IS NULL OR x.ts < d.first_flagged_at) AS leaked
        FROM ex AS x JOIN lab AS l USING (account_id) LEFT JOIN det AS d USING (account_id)
        WHERE l.truth IS NOT NULL GROUP BY ALL"""
    )
    late = f"(ff IS NULL OR epoch(ff) - epoch(first_ts) > {step_s})"
    split = f"count(*) FILTER (WHERE ff < TIMESTAMPTZ '{split_at}')" if split_at else "NULL"
    print("campaign | accounts | flagged | flagged before split | late | leaked | late share of leak")
    for row in con.execute(
        f"""SELECT truth, count(*), count(*) FILTER (WHERE flagged), {split},
                   count(*) FILTER (WHERE {late}), sum(leaked),
                   round(sum(leaked) FILTER (WHERE {late}) / nullif(sum(leaked), 0), 3)
            FROM per GROUP BY 1 ORDER BY 1"""
    ).fetchall():
        print(" | ".join(str(v) for v in row))
    print("\ncampaign | first reason of flagged accounts | accounts")
    for row in con.execute(
        """SELECT truth, split_part(reason, '=', 1)[1:60], count(*) FROM per
           WHERE flagged GROUP BY ALL ORDER BY 1, 3 DESC"""
    ).fetchall():
        print(" | ".join(str(v) for v in row))
    cap = EdgeParams().max_client_accounts
    print(f"\ncampaign | client stacks held by > {cap} accounts, most of them its own | holders | its own")
    for row in con.execute(
        f"""WITH h AS (SELECT DISTINCT account_id, user_agent || chr(31) || tls_fingerprint AS stack
                     FROM read_parquet('{data}/exchanges/*.parquet')
                     WHERE user_agent IS NOT NULL AND tls_fingerprint IS NOT NULL),
               s AS (SELECT stack, l.truth, count(*) AS n, sum(count(*)) OVER (PARTITION BY stack) AS holders
                     FROM h JOIN lab AS l USING (account_id) GROUP BY stack, l.truth)
            SELECT truth, count(*), min(holders) || '-' || max(holders), min(n) || '-' || max(n) FROM s
            WHERE truth IS NOT NULL AND holders > {cap} AND 2 * n > holders GROUP BY 1 ORDER BY 1"""
    ).fetchall():
        print(" | ".join(str(v) for v in row))
    print("\npersona | promoted by coordinated novelty | by corroboration")
    for row in con.execute(
        """SELECT l.persona,
                  count(*) FILTER (WHERE list_contains(list_transform(d.top_reasons,
                      r -> starts_with(r, 'coordinated_novelty')), true)),
                  count(*) FILTER (WHERE list_contains(list_transform(d.top_reasons,
                      r -> starts_with(r, 'corroborated')), true))
           FROM det AS d JOIN lab AS l USING (account_id) WHERE d.flagged GROUP BY 1 ORDER BY 1"""
    ).fetchall():
        print(" | ".join(str(v) for v in row))


def gateway_report(con: duckdb.DuckDBPyConnection, data: Path, gw: Path, step_s: float) -> None:
    con.execute(
        f"""CREATE TABLE dec AS
        SELECT d.account_id, d.ts, d.altered,
               CASE WHEN l.truth IS NOT NULL THEN l.truth
                    WHEN l.persona LIKE 'attack.%' THEN 'collateral' ELSE 'legitimate' END AS who
        FROM read_parquet('{gw}/decisions.parquet') AS d JOIN lab AS l USING (account_id)
        WHERE d.action = 'protect' AND d.reasons = ['rule:batch-suspect']"""
    )
    t0 = con.execute("SELECT min(ts) FROM ex").fetchone()
    assert t0 is not None
    start = f"TIMESTAMPTZ '{t0[0].isoformat()}'"
    con.execute(  # the step whose verdicts were in force: the last one at or before ts
        f"""CREATE TABLE v AS SELECT *, {start} + to_microseconds(CAST(
                floor((epoch(ts) - epoch({start})) / {step_s}) * {step_s} * 1e6 AS BIGINT)) AS vt
            FROM dec"""
    )
    con.execute(
        """CREATE TABLE n AS SELECT k.account_id, k.vt, count(x.ts) AS n
           FROM (SELECT DISTINCT account_id, vt FROM v) AS k
           LEFT JOIN ex AS x ON x.account_id = k.account_id AND x.ts < k.vt GROUP BY ALL"""
    )
    print("who | requests behind the verdict | protected | reasoning withheld | accounts")
    for row in con.execute(
        """SELECT who, CASE WHEN n < 10 THEN '< 10' WHEN n < 30 THEN '10-29' ELSE '>= 30' END,
                  count(*), count(*) FILTER (WHERE altered), count(DISTINCT account_id)
           FROM v JOIN n USING (account_id, vt) GROUP BY ALL ORDER BY 1, 2"""
    ).fetchall():
        print(" | ".join(str(v) for v in row))
    # campaign exchanges served with no countermeasure, by whether the account was fresh
    # (created less than 30 days before its first exchange: the online model term's gate)
    print("\ncampaign | account fresh | exchanges | leaked | leakage")
    for row in con.execute(
        f"""WITH d AS (SELECT * FROM read_parquet('{gw}/decisions.parquet')),
                 first AS (SELECT account_id, min(ts) AS first FROM d GROUP BY 1),
                 acc AS (SELECT account_id, created_at FROM read_parquet('{data}/accounts.parquet'))
            SELECT l.truth, epoch(f.first) - epoch(a.created_at) < 30 * 86400 AS fresh, count(*),
                   count(*) FILTER (WHERE d.forwarded AND NOT d.refused
                       AND NOT list_contains(d.actions, 'protect')
                       AND NOT list_contains(d.actions, 'mark')) AS leaked
            FROM d JOIN lab AS l USING (account_id) JOIN first AS f USING (account_id)
                 JOIN acc AS a USING (account_id)
            WHERE l.truth IS NOT NULL GROUP BY ALL ORDER BY 1, 2"""
    ).fetchall():
        print(" | ".join(str(v) for v in row), f"| {100 * row[3] / row[2]:.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description="Where a replay's leakage and promotions come from.")
    ap.add_argument("data", type=Path, help="the prepared, labelled dataset that was replayed")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--replay", type=Path, help="a `distillshield replay` output")
    what.add_argument("--gateway", type=Path, help="a `distillshield gateway replay` output")
    ap.add_argument("--every", default="6h", help="the replay's cadence")
    ap.add_argument("--split-at", help="also count campaign accounts flagged before this time (ISO)")
    args = ap.parse_args()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _labels(con, args.data)
    step_s = parse_every(args.every).total_seconds()
    if args.replay:
        replay_report(con, args.data, args.replay, step_s, args.split_at)
    else:
        gateway_report(con, args.data, args.gateway, step_s)


if __name__ == "__main__":
    main()
