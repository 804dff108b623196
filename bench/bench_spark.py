"""The scan on DuckDB and on Spark local mode, side by side on one prepared dataset.

Usage: python bench/bench_spark.py DATA [--master local[2]] [--runs 1] [--driver-memory 4g]

Runs :func:`distillshield.detect.scan_tables` (no dossier-less shortcuts: the full scan)
alternately on an embedded DuckDB and on PySpark local mode, ``--runs`` times each, and
prints per-step seconds, the medians, the Spark/DuckDB ratio per step and overall, and
whether both engines flagged the same accounts into the same campaigns
(docs/benchmarks.md, "Spark local mode").
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from distillshield.backends import get_backend
from distillshield.detect import scan_tables


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--driver-memory", default="4g", help="spark.driver.memory (local mode: the whole JVM)")
    args = ap.parse_args()
    spark = get_backend("spark", master=args.master, conf={"spark.driver.memory": args.driver_memory})
    t0 = time.perf_counter()
    spark.query("SELECT 1 AS x")  # JVM and session start, reported apart
    print(f"spark session start: {time.perf_counter() - t0:.1f} s")
    times: dict[str, dict[str, list[float]]] = {"duckdb": {}, "spark": {}}
    verdicts: dict[str, tuple[set[str], list[list[str]]]] = {}
    for i in range(args.runs):
        for name in ("duckdb", "spark"):
            backend = spark if name == "spark" else get_backend()
            t0 = time.perf_counter()
            result = scan_tables(args.data, backend=backend)
            total = time.perf_counter() - t0
            times[name].setdefault("total", []).append(total)
            for s in result.steps:
                times[name].setdefault(s.name, []).append(s.seconds)
            acc = result.accounts.to_pylist()
            verdicts[name] = (
                {r["account_id"] for r in acc if r["flagged"]},
                sorted(sorted(c["accounts"]) for c in result.campaigns),
            )
            n = result.summary["exchanges"]
            print(f"run {i + 1} {name}: {total:.1f} s ({n:,} exchanges)", flush=True)
    spark.close()
    print(f"{'step':<14}{'duckdb s':>10}{'spark s':>10}{'ratio':>8}")
    for step in times["duckdb"]:
        d = statistics.median(times["duckdb"][step])
        s = statistics.median(times["spark"].get(step, [float("nan")]))
        print(f"{step:<14}{d:>10.2f}{s:>10.2f}{(s / d if d else float('nan')):>8.1f}")
    same_flags = verdicts["duckdb"][0] == verdicts["spark"][0]
    same_campaigns = verdicts["duckdb"][1] == verdicts["spark"][1]
    print(f"same flagged accounts: {same_flags}; same campaign memberships: {same_campaigns}")


if __name__ == "__main__":
    main()
