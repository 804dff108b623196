"""How far template sharing could separate campaigns from legitimate personas (docs/results.md).

Usage:
    python bench/explain_template_peers.py [--hours 6,24,96] [--first-turns] [--account ID] DATA

An upper bound for the ``template_peer_score`` experiment (``bench/experiments/
template-peers.patch``): the same statistic — per account, the share of its requests in template
families other accounts also use, each family weighted by the other holders' mean score, an
account's uses of a family counted at most as many as the other holders' average use — but
with the *ground truth* (1 = campaign account) as every account's score instead of a model's
first pass. If campaign and legitimate accounts overlap here, no first pass separates them.
``--first-turns`` counts only requests with at most two messages (a conversation's opening
prompt, not an agent's tool results and follow-ups). Prints, per persona or campaign and
cut-off (hours after the first exchange), the distribution over accounts; with ``--account``,
also that account's shared families at each cut-off: its uses, the holders, who they are, and
one of the family's prompts (the first 80 characters; this reads prompt text, so it is for a
simulated dataset, not customers' logs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--hours", default="6,24,96")
    ap.add_argument("--first-turns", action="store_true", help="only requests with <= 2 messages")
    ap.add_argument("--account", default=None, help="list this account's shared families")
    args = ap.parse_args()
    d = args.data
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE x AS SELECT e.account_id, e.ts, e.n_messages, s.template_family AS fam, "
        "left(e.prompt, 80) AS prompt "
        f"FROM read_parquet('{d}/exchanges/**/*.parquet', hive_partitioning = false) e "
        f"JOIN read_parquet('{d}/derived/signals/*.parquet') s USING (request_id)"
    )
    con.execute(
        "CREATE TABLE lab AS SELECT account_id, coalesce(campaign_id, persona) AS who, "
        f"(campaign_id IS NOT NULL)::INT AS y FROM read_parquet('{d}/labels/accounts.parquet')"
    )
    row = con.execute("SELECT min(ts) FROM x").fetchone()
    if row is None or row[0] is None:
        raise SystemExit(f"{d}: no exchanges")
    counted = "n_messages <= 2" if args.first_turns else "true"
    for h in (float(v) for v in args.hours.split(",")):
        rows = con.execute(
            f"""
            WITH w AS (SELECT * FROM x
                       WHERE ts < ?::TIMESTAMPTZ + to_microseconds(CAST(? * 3.6e9 AS BIGINT))),
            tot AS (SELECT account_id, count(*) AS n FROM w GROUP BY 1),
            m AS (SELECT fam, account_id, count(*) AS c FROM w
                  WHERE fam IS NOT NULL AND {counted} GROUP BY ALL),
            ml AS (SELECT m.*, y FROM m JOIN lab USING (account_id)),
            f AS (SELECT fam, count(*) AS holders, sum(y) AS s, sum(c) AS uses FROM ml
                  GROUP BY 1 HAVING count(*) >= 2),
            a AS (SELECT account_id,
                         sum(least(c, (uses - c) / (holders - 1)) * (s - y) / (holders - 1)) AS v
                  FROM ml JOIN f USING (fam) GROUP BY 1),
            sc AS (SELECT lab.who, coalesce(a.v, 0) / tot.n AS v
                   FROM tot JOIN lab USING (account_id) LEFT JOIN a USING (account_id))
            SELECT who, count(*), quantile_cont(v, 0.1), median(v), quantile_cont(v, 0.9), max(v)
            FROM sc GROUP BY 1 ORDER BY 1
            """,
            [row[0], h],
        ).fetchall()
        scope = "first turns" if args.first_turns else "all requests"
        print(f"\n{d.name}, {h:g} h, families of {scope}; label-weighted peer share per account")
        print("| who | accounts | p10 | median | p90 | max |")
        print("|---|---|---|---|---|---|")
        for who, n, p10, p50, p90, mx in rows:
            print(f"| {who} | {n} | {p10:.3f} | {p50:.3f} | {p90:.3f} | {mx:.3f} |")
        if args.account:
            _families(con, args.account, row[0], h, counted)


def _families(con: duckdb.DuckDBPyConnection, account: str, t0: object, h: float, counted: str) -> None:
    rows = con.execute(
        f"""
        WITH w AS (SELECT * FROM x WHERE ts < ?::TIMESTAMPTZ + to_microseconds(CAST(? * 3.6e9 AS BIGINT))
                   AND fam IS NOT NULL AND {counted}),
        m AS (SELECT fam, account_id, count(*) AS c FROM w GROUP BY ALL),
        mine AS (SELECT fam, c FROM m WHERE account_id = ?)
        SELECT mine.fam, mine.c, count(*) AS holders, list(DISTINCT lab.who ORDER BY lab.who),
               (SELECT any_value(prompt) FROM w WHERE w.fam = mine.fam AND w.account_id = ?)
        FROM mine JOIN m USING (fam) JOIN lab ON lab.account_id = m.account_id
        GROUP BY ALL HAVING count(*) >= 2 ORDER BY mine.c DESC, holders DESC LIMIT 15
        """,
        [t0, h, account, account],
    ).fetchall()
    print(f"\n{account}: shared families at {h:g} h (its uses, holders, who, one of its prompts)")
    for fam, c, holders, who, prompt in rows:
        print(f"- {fam} x{c}, {holders} holders {who}: {prompt!r}")


if __name__ == "__main__":
    main()
