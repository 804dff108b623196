"""Peak RSS of a replay with and without a DuckDB memory limit (docs/benchmarks.md).

Usage: python bench/bench_replay_memory.py DATA EVERY [LIMIT]
  e.g. python bench/bench_replay_memory.py /tmp/demo/data 24h        # engine default
       python bench/bench_replay_memory.py /tmp/demo/data 24h 1GB    # memory_limit=1GB

Run each setting in its own process: ru_maxrss is the process's peak.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time

from distillshield.backends import get_backend
from distillshield.detect.replay import replay


def main() -> None:
    data, every = sys.argv[1], sys.argv[2]
    limit = sys.argv[3] if len(sys.argv) > 3 else None
    backend = get_backend("duckdb", memory_limit=limit) if limit else get_backend()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        replay(data, out, every=every, backend=backend, report=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    label = limit or "default"
    print(f"memory_limit={label} every={every}: {time.perf_counter() - t0:.1f} s, peak {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
