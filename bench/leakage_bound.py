"""The least leakage any per-account detector can reach at a batch cadence (docs/results.md).

Usage:
    python bench/leakage_bound.py DATA [DATA ...] --every 6h --out DIR

A batch job run every ``--every`` hours (cut-offs ``t0 + k * every``, ``t0`` the first
exchange: ``detect.replay.cutoffs``, as ``distillshield replay`` cuts them) sees an
account's traffic only at the first cut-off after it. This script writes, per dataset, the
detection contract of an **oracle** that reads the ground truth: every campaign account is
flagged, in its true campaign, at the first cut-off after its first request, and no other
account is flagged.
``distillshield evaluate`` then scores it with the same code as a real replay, so its
leakage is what a perfect per-account detector would leak at that cadence: each account's
traffic before the first batch run that could see it.

Only evidence that names an account *before* its first request (a sibling's card: the
``dormant`` step of ``detect.scan``) or acts *during* its first hours (the gateway's online
state, docs/gateway-evaluation.md) can leak less. The figures this prints are the floor
under which a change to scoring alone cannot push a batch replay's leakage.

Writes ``DIR/<dataset name>/oracle/`` (accounts.parquet, campaigns.json) and
``DIR/<dataset name>/evaluation.json``; prints per campaign the oracle's leakage.
"""

from __future__ import annotations

import argparse
import bisect
import json
from datetime import timedelta
from pathlib import Path

import duckdb

from distillshield.detect.output import write_flag_times
from distillshield.detect.replay import cutoffs, parse_every
from distillshield.evaluate import evaluate


def oracle_detections(data: Path, step: timedelta, out: Path) -> int:
    """Write the oracle's detection contract for ``data`` to ``out``; returns its flags."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        ex = f"read_parquet('{data}/exchanges/*.parquet')"
        t0, t1 = con.execute(f"SELECT min(ts), max(ts) FROM {ex}").fetchone()  # type: ignore[misc]
        rows = con.execute(
            f"""SELECT l.account_id, l.campaign_id, min(x.ts) AS first_ts
                FROM read_parquet('{data}/labels/accounts.parquet') AS l JOIN {ex} AS x USING (account_id)
                WHERE l.campaign_id IS NOT NULL GROUP BY ALL"""
        ).fetchall()
    finally:
        con.close()
    cuts = cutoffs(t0, t1, step)  # replay's own cut-offs; the last one sees everything
    write_flag_times(
        out,
        {a: cuts[bisect.bisect_right(cuts, first)] for a, _, first in rows},  # first cut-off after it
        {a: c for a, c, _ in rows},
        reason="oracle: ground truth",
    )
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--every", default="6h")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    step = parse_every(args.every)
    for data in args.data:
        out = args.out / data.name
        n = oracle_detections(data, step, out / "oracle")
        report = evaluate(data / "labels", out / "oracle", data_dir=data)
        body = report.to_dict()
        (out / "evaluation.json").write_text(json.dumps(body, indent=2, default=str))
        cells = ", ".join(
            f"{c['campaign_id']} {100 * c['leakage']:.2f} %"
            for c in sorted(body["campaigns"], key=lambda c: c["campaign_id"])
        )
        print(f"{data}: {n} campaign accounts; oracle leakage at {args.every}: {cells}")


if __name__ == "__main__":
    main()
