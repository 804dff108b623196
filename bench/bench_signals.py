"""Time each request signal and ``request_signals`` on a dataset's exchanges (one batch).

    python bench/bench_signals.py DATA [--repeat 3]

Prints the median seconds and prompts/s per signal; the figures in docs/signals.md come from it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from distillshield.schema import EXCHANGES, read_table
from distillshield.signals import request_signals
from distillshield.signals.capability import classify
from distillshield.signals.cot import cot_elicitation
from distillshield.signals.language import script_language
from distillshield.signals.template import template_ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cols = ["request_id", "prompt", "response", "system_prompt", "tools", "n_messages"]
    t = read_table(args.data, EXCHANGES, columns=cols).combine_chunks()
    p = t.column("prompt")
    cases: dict[str, Callable[[], object]] = {
        "template_ids": lambda: template_ids(p),
        "cot_elicitation": lambda: cot_elicitation(p),
        "capability": lambda: classify(p, t["system_prompt"], t["tools"], t["n_messages"]),
        "script_language": lambda: script_language(p),
        "request_signals (all)": lambda: request_signals(t),
    }
    print(f"{t.num_rows:,} exchanges, median of {args.repeat}")
    for name, fn in cases.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{name:24s} {med:6.2f} s  {t.num_rows / med:>10,.0f} /s")


if __name__ == "__main__":
    main()
