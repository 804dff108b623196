"""Daily incremental scans (``scan --state``) against one batch scan: time, memory, agreement.

Usage: python bench/bench_incremental.py DATA WORK [--memory-limit 6GB] [--batch DET]

Runs ``distillshield scan DATA --state WORK/state --until <midnight>`` once per UTC day, each
in its own process (as a daily job would run; ``ru_maxrss`` of a child is its own peak),
then compares the last day's verdicts with a batch scan's: with ``--batch DET`` an existing
batch detection directory of the same data, otherwise one batch scan is run here too.
Prints one line per day and a summary (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from distillshield.schema import EXCHANGES, read_table


def _day_ends(data: Path) -> list[datetime]:
    ts = read_table(data, EXCHANGES, columns=["ts"]).column("ts")
    import pyarrow.compute as pc

    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
    day = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=1)
    ends = []
    while day <= last:
        ends.append(day)
        day += timedelta(days=1)
    return [*ends, day]


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS (GB) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    # RUSAGE_CHILDREN reports the largest child so far (days only grow, so it tracks today's)
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return wall, peak / 1024 / 1024


def _flagged(det: Path) -> tuple[set[str], list[list[str]]]:
    acc = pq.read_table(det / "accounts.parquet", columns=["account_id", "flagged"]).to_pylist()
    camps = json.loads((det / "campaigns.json").read_text())
    return {r["account_id"] for r in acc if r["flagged"]}, sorted(sorted(c["accounts"]) for c in camps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--batch", type=Path, default=None)
    args = ap.parse_args()
    exe = [str(Path(sys.executable).parent / "distillshield")]
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    state, det = args.work / "state", args.work / "det"
    if state.exists():
        sys.exit(f"{state} exists; give an empty WORK directory")
    total_wall = 0.0
    for end in _day_ends(args.data):
        opts = ["--state", str(state), "--until", end.isoformat(), "--no-report", *limit]
        wall, peak = _run([*exe, "scan", str(args.data), "--out", str(det), *opts])
        total_wall += wall
        chunk = json.loads((state / "state.json").read_text())["chunks"][-1]
        size = sum(f.stat().st_size for f in (state / "stats").rglob("*.parquet")) / 1e6
        print(
            f"{end.date()}  chunk {chunk['exchanges']:>10,} exchanges  {wall:7.1f} s  "
            f"peak {peak:5.1f} GB (max so far)  state {size:8.1f} MB",
            flush=True,
        )
    batch = args.batch
    if batch is None:
        batch = args.work / "batch"
        wall, peak = _run([*exe, "scan", str(args.data), "--out", str(batch), "--no-report", *limit])
        print(f"batch scan: {wall:.1f} s, peak {peak:.1f} GB (max of all runs)")
    f_inc, c_inc = _flagged(det)
    f_bat, c_bat = _flagged(batch)
    print(f"daily runs: {total_wall:.1f} s in all")
    print(
        f"flagged: incremental {len(f_inc):,}, batch {len(f_bat):,}, differing {len(f_inc ^ f_bat):,}; "
        f"campaigns: incremental {len(c_inc)}, batch {len(c_bat)}, identical memberships {c_inc == c_bat}"
    )


if __name__ == "__main__":
    main()
