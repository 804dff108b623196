"""Per-request latency of the single-request fast path against the batch signals on one row.

    python bench/bench_signals_scalar.py [DATA] [--scale 0.1] [--sample 2000] [--vector-sample 200]

Requests are a seeded sample of the exchanges of DATA (a simulated dataset; without DATA the
default scenario is simulated at ``--scale`` into a temporary folder). Both paths are warmed on
the sample first (RE2 builds its DFA states lazily; a gateway is long-lived), then every request
is timed alone with ``perf_counter_ns``. Prints the median (and p90 / p99) microseconds per
request for each signal: ``ScalarSignals.compute`` and its parts against ``template_ids`` /
``cot_elicitation`` / ``classify`` / ``script_language`` called on a one-row Arrow array (array
construction included). The batch path is timed on the first ``--vector-sample`` requests only
(it takes tens of milliseconds per request). Values are checked equal on every timed request.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from distillshield.signals.capability import classify
from distillshield.signals.cot import cot_elicitation
from distillshield.signals.language import script_language
from distillshield.signals.scalar import ScalarSignals
from distillshield.signals.template import template_ids

Request = tuple[str | None, str | None, list[str] | None, int]


def load_requests(data: Path, n: int, seed: int = 0) -> list[Request]:
    cols = ["prompt", "system_prompt", "tools", "n_messages"]
    files = sorted((data / "exchanges").glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f, columns=cols) for f in files])
    idx = np.random.default_rng(seed).choice(table.num_rows, size=min(n, table.num_rows), replace=False)
    rows = table.take(pa.array(np.sort(idx))).to_pylist()
    return [(r["prompt"], r["system_prompt"], r["tools"], int(r["n_messages"])) for r in rows]


def per_request_us(fn: Callable[[Request], Any], reqs: Sequence[Request]) -> list[float]:
    out = []
    for r in reqs:
        t0 = time.perf_counter_ns()
        fn(r)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def _one(r: Request) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    return (
        pa.array([r[0]], pa.string()),
        pa.array([r[1]], pa.string()),
        pa.array([r[2]], pa.list_(pa.string())),
        pa.array([r[3]], pa.int32()),
    )


def vector_all(r: Request) -> tuple[Any, ...]:
    p, s, t, n = _one(r)
    label, score = cot_elicitation(p)
    return (
        template_ids(p)[0].as_py(),
        label[0].as_py(),
        float(score[0]),
        classify(p, s, t, n)[0].as_py(),
        script_language(p)[0].as_py(),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path, nargs="?")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--vector-sample", type=int, default=200)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from distillshield.simulate import load_scenario, simulate

            data = Path(tmp) / "sim"
            simulate(load_scenario("default"), data, scale=args.scale)
        reqs = load_requests(data, args.sample)

    t0 = time.perf_counter()
    sc = ScalarSignals()
    init_s = time.perf_counter() - t0

    def scalar_all(r: Request) -> tuple[Any, ...]:
        o = sc.compute(*r)
        return (o.template_id, o.cot_elicit, o.cot_score, o.capability, o.language)

    def low(r: Request) -> bytes:
        return sc._lower(r[0] or "").encode()

    vreqs = reqs[: args.vector_sample]
    for r in reqs:  # warm-up (and the equality check)
        scalar_all(r)
    for r in vreqs:
        if vector_all(r) != scalar_all(r):
            raise SystemExit(f"mismatch on {r[0]!r:.200}: {vector_all(r)} != {scalar_all(r)}")

    rows: list[tuple[str, Callable[[Request], Any], Callable[[Request], Any]]] = [
        ("template_id", lambda r: template_ids(_one(r)[0]), lambda r: sc.template_id(r[0])),
        (
            "cot_elicitation",
            lambda r: cot_elicitation(_one(r)[0]),
            lambda r: r[0] is not None and sc._cot(r[0].encode(), low(r)),
        ),
        ("capability", lambda r: classify(*_one(r)), lambda r: sc._classify(r[0], None, r[1], r[2], r[3])),
        (
            "script_language",
            lambda r: script_language(_one(r)[0]),
            lambda r: r[0] is not None and sc._language(r[0].encode()),
        ),
        ("all (compute)", vector_all, scalar_all),
    ]
    chars = [len(r[0] or "") for r in reqs]
    print(
        f"{len(reqs):,} simulated requests (prompt chars: median {statistics.median(chars):.0f}, "
        f"max {max(chars):,}); batch path timed on {len(vreqs)}; "
        f"ScalarSignals() {init_s * 1000:.0f} ms once; "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    print(
        f"{'signal':18s} {'batch, 1 row':>13s} {'scalar p50':>11s} {'p90':>8s} {'p99':>8s} {'speed-up':>9s}"
    )
    for name, vec, one in rows:
        for r in vreqs[:20]:
            vec(r)
        v = statistics.median(per_request_us(vec, vreqs))
        s = per_request_us(one, reqs)
        q50, q90, q99 = np.percentile(s, [50, 90, 99])
        print(f"{name:18s} {v:10.0f} us {q50:8.1f} us {q90:5.0f} us {q99:5.0f} us {v / q50:8.0f}x")


if __name__ == "__main__":
    main()
