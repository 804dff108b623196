"""What prometheus multiprocess mode (``gateway --workers N``) costs the request path.

Usage:
    python bench/bench_metrics_multiprocess.py [--rounds 7] [--n 20000]

Runs the metric updates one proxied request makes (request counter, decision counter,
added-latency histogram, in-flight gauge up and down) in two child processes, alternating:
one with in-memory values (a single gateway process) and one with memory-mapped values in a
temporary ``PROMETHEUS_MULTIPROC_DIR`` (each worker of ``--workers N``). prometheus_client
picks its value storage when first imported, hence a process per mode. Prints the median
microseconds per request of each mode and their ratio (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, os, sys, time
from distillshield.gateway._metrics import GatewayMetrics
n = int(sys.argv[1])
m = GatewayMetrics("open", multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
req, dec, lat = m.request("chat", "200"), m.decision("allow"), m.latency("chat")
def one():
    m.in_flight.set(1)
    req.inc()
    dec.inc()
    lat.observe(0.0012)
    m.in_flight.set(0)
for _ in range(2000):
    one()
t = time.perf_counter()
for _ in range(n):
    one()
print(json.dumps((time.perf_counter() - t) / n * 1e6))
"""


def _run(n: int, multiproc_dir: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n)], env=env, check=True, capture_output=True, text=True
    )
    return float(json.loads(out.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=20_000, help="requests' worth of updates per round")
    args = ap.parse_args()
    single: list[float] = []
    multi: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            d = os.path.join(tmp, f"round-{r}")
            os.mkdir(d)
            single.append(_run(args.n, None))
            multi.append(_run(args.n, d))
    ratios = [m / s for m, s in zip(multi, single, strict=True)]
    print(f"in-memory values (one process):      {statistics.median(single):.2f} µs per request")
    print(f"memory-mapped values (--workers N):  {statistics.median(multi):.2f} µs per request")
    print(f"ratio, median of the per-round ratios: x{statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
