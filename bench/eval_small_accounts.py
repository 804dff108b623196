"""How the account model treats accounts it has seen little of (docs/results.md, "Small accounts").

Usage:
    python bench/eval_small_accounts.py [--hours 12,24,48,96] [--model MODEL.json] [--out DIR] DATA...

A replay scores every account at every step, most of them on a handful of requests; the
gateway acts on those scores (``batch-suspect`` protects accounts scored >= 0.5). For each
DATA (a simulated dataset with labels/) and each cut-off (hours after the first exchange) this
runs a batch scan on the data before the cut-off and tabulates, per bucket of requests seen
so far, legitimate and campaign accounts: how many, the share scored >= 0.5 (suspect) and
>= the model's threshold (flagged), and the mean score. Pooled over datasets and cut-offs;
per-dataset rows with ``--per-dataset``.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from distillshield.detect import scan
from distillshield.detect.model import load_model

#: Request-count buckets: (label, low, high) inclusive.
BUCKETS = (("1", 1, 1), ("2-4", 2, 4), ("5-19", 5, 19), ("20-99", 20, 99), ("100+", 100, 1 << 62))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--hours", default="12,24,48,96", help="cut-offs, hours after the first exchange")
    ap.add_argument("--model", type=Path, default=None, help="account model JSON (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=None, help="keep the scans here (default: a temp dir)")
    ap.add_argument("--per-dataset", action="store_true")
    args = ap.parse_args()
    model = load_model(args.model)
    hours = [float(h) for h in args.hours.split(",")]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE scored (dataset VARCHAR, hours DOUBLE, account_id VARCHAR, n BIGINT, "
        "score DOUBLE, campaign BOOLEAN)"
    )
    with tempfile.TemporaryDirectory(prefix="ds-small-") as tmp:
        root = args.out or Path(tmp)
        for i, data in enumerate(args.data):
            t0 = con.execute(
                f"SELECT min(ts) FROM read_parquet('{data}/exchanges/**/*.parquet', hive_partitioning=false)"
            ).fetchone()
            if t0 is None or t0[0] is None:
                raise SystemExit(f"{data}: no exchanges")
            for h in hours:
                det = root / f"{i}-{data.name}" / f"{h:g}h"  # two datasets may share a folder name
                scan(data, det, until=t0[0] + timedelta(hours=h), model=model, report=False)
                fp = pq.read_table(det / "fingerprints.parquet", columns=["account_id", "n_requests"])
                con.register("fp", fp)
                con.register("acc", pq.read_table(det / "accounts.parquet", columns=["account_id", "score"]))
                con.execute(
                    "INSERT INTO scored SELECT ?, ?, a.account_id, fp.n_requests, a.score, "
                    "l.campaign_id IS NOT NULL "
                    f"FROM acc a JOIN fp USING (account_id) "
                    f"JOIN read_parquet('{data}/labels/accounts.parquet') l USING (account_id)",
                    [data.name, h],
                )
                con.unregister("fp")
                con.unregister("acc")
    keys = "dataset, " if args.per_dataset else ""
    # the bucket's position first, so the rows sort by size, not by label
    case = " ".join(
        f"WHEN n BETWEEN {lo} AND {hi} THEN '{i}{lab}'" for i, (lab, lo, hi) in enumerate(BUCKETS)
    )
    rows = con.execute(
        f"SELECT {keys}CASE {case} END AS bucket, campaign, count(*) AS accounts, "
        "avg((score >= 0.5)::INT) AS suspect, avg((score >= ?)::INT) AS flagged, avg(score) AS mean "
        f"FROM scored WHERE n >= 1 GROUP BY ALL ORDER BY ALL",
        [model.threshold],
    ).fetchall()
    # and every size together, as counts of account-steps
    rows += con.execute(
        f"SELECT {keys}'9all', campaign, count(*), avg((score >= 0.5)::INT), avg((score >= ?)::INT), "
        "avg(score) FROM scored WHERE n >= 1 GROUP BY ALL ORDER BY ALL",
        [model.threshold],
    ).fetchall()
    print(f"cut-offs (h): {args.hours}; threshold {model.threshold}; account-steps pooled")
    head = "| dataset " if args.per_dataset else ""
    print(f"{head}| requests so far | accounts | legit / campaign | >= 0.5 | flagged | mean score |")
    print(("|---" * (6 + bool(args.per_dataset))) + "|")
    for r in rows:
        lead = f"| {r[0]} " if args.per_dataset else ""
        b, camp, n, sus, flg, mean = r[-6:]
        who = "campaign" if camp else "legit"
        print(f"{lead}| {b[1:]} | {n} | {who} | {sus:.2%} | {flg:.2%} | {mean:.3f} |")


if __name__ == "__main__":
    main()
