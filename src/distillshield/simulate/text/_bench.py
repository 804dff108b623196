"""Throughput of the text source: ``python -m distillshield.simulate.text._bench [--corpus DIR]``.

Prints prompts/s per kind and responses/s per style for batches of ``--n`` rows, and the
mixed-kind rate the simulator sees (several kinds per batch, in the engine's call
pattern). Kept out of the unit tests because timings depend on the machine; the figures
in docs/simulator-text.md come from this command.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from distillshield.simulate.text import PROMPT_KINDS, RESPONSE_KINDS, TextSource


def _rate(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Rows per second of ``fn`` (which renders ``n`` rows), after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return n * repeat / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000, help="rows per call")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--lang-mix", type=float, default=0.1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    src = TextSource(seed=1, corpus=args.corpus)
    print(f"construction: {time.perf_counter() - t0:.2f} s (corpus={args.corpus})")
    rng = np.random.default_rng(0)
    n = args.n
    variant = rng.integers(0, 1000, size=n)
    total_rows = 0
    total_time = 0.0
    for kind in PROMPT_KINDS:
        r = _rate(partial(src.prompts, kind, n, rng, variant=variant, lang_mix=args.lang_mix), n, args.repeat)
        total_rows += n
        total_time += n / r
        print(f"prompts  {kind:24s} {r:12,.0f} /s")
    print(f"prompts  {'(all kinds, equal rows)':24s} {total_rows / total_time:12,.0f} /s")
    for kind in RESPONSE_KINDS:
        vr = rng.random(n) < 0.3
        r = _rate(partial(src.responses, kind, n, rng, visible_reasoning=vr), n, args.repeat)
        print(f"response {kind:24s} {r:12,.0f} /s")
    # The engine renders a persona-day at a time: a few kinds, a few thousand rows each.
    small = 2_000
    kinds = ("chat", "coding_question", "agent_step", "cot_harvest", "saas_input")
    v_small = variant[:small]

    def day() -> None:
        for k in kinds:
            pb = src.prompts(k, small, rng, variant=v_small, lang_mix=args.lang_mix)
            src.responses("chat", small, rng, visible_reasoning=pb.cot_elicit)

    r = _rate(day, small * len(kinds), args.repeat)
    print(f"exchanges (prompt+response, {small}-row calls) {r:12,.0f} /s")


if __name__ == "__main__":
    main()
