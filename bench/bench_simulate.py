"""Simulator throughput and memory: runs scenarios and writes the results table.

    python bench/bench_simulate.py [--scenario default] [--scale 1.0] [--repeat 3] [--out /tmp/bench]

Prints median wall time, exchanges/s and peak RSS (of a child process per run, so runs
don't share memory) and appends a Markdown row block to stdout for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, time
from distillshield.simulate import load_scenario, simulate
t = time.perf_counter()
m = simulate(load_scenario(sys.argv[1]), sys.argv[2], scale=float(sys.argv[3]), overwrite=True)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "exchanges": m.exchanges, "accounts": m.accounts,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"{mem:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="/tmp/distillshield-bench")
    args = ap.parse_args()
    runs = []
    for i in range(args.repeat):
        out = Path(args.out) / f"run{i}"
        res = subprocess.run(
            [sys.executable, "-c", CHILD, args.scenario, str(out), str(args.scale)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        r["disk_mb"] = size / 2**20
        runs.append(r)
        print(json.dumps(r), file=sys.stderr)
        shutil.rmtree(out, ignore_errors=True)
    secs = statistics.median(r["seconds"] for r in runs)
    ex = runs[0]["exchanges"]
    print(f"machine: {machine()}")
    print(
        f"| {args.scenario} | {args.scale:g} | {runs[0]['accounts']:,} | {ex:,} | {secs:.1f} s "
        f"(median of {len(runs)}) | {ex / secs:,.0f} | {max(r['peak_rss_mb'] for r in runs):,.0f} MB "
        f"| {runs[0]['disk_mb']:,.0f} MB |"
    )


if __name__ == "__main__":
    main()
