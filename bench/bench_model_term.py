"""What the opt-in online account-model term costs per request, in process.

Usage:
    python bench/bench_model_term.py [--requests 20000] [--accounts 2000] [--rounds 5] [--profile]

Drives ``gateway.engine.Engine`` (decide, then record: what the gateway does per request, minus
HTTP) over a seeded synthetic stream — every account created two days before it, so every
account is fresh and unjudged and the term scores every request (its worst case) — once with
``OnlineRisk()`` and once with ``OnlineRisk(account_model=load_model())``, alternating, and
prints the median microseconds per request of each and their difference, then the time of
one ``AccountModel.explain_row`` against ``explain`` on a one-row matrix. ``--profile`` also
prints a cProfile of one round with the term on. docs/benchmarks.md ("Fourth round") quotes it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time
import timeit

import numpy as np

from distillshield.detect.model import load_model
from distillshield.gateway import KeyRecord
from distillshield.gateway._types import RequestContext
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, load_policy
from distillshield.gateway.risk import OnlineRisk

T0 = 1_770_000_000.0


class _NoSignals:
    def for_request(self, ctx: RequestContext) -> None:
        return None


def _round(model: bool, n: int, accounts: int, seed: int) -> float:
    # the record the live gateway resolves a key to: every account two days old (fresh, unjudged)
    facts = {
        f"a{i}": KeyRecord(
            key_id=f"k{i}", account_id=f"a{i}", pathway="self_serve", created_at=T0 - 2 * 86_400.0
        )
        for i in range(accounts)
    }
    risk = OnlineRisk(account_model=load_model() if model else None)
    eng = Engine(load_policy(DEFAULT_POLICY), signals=_NoSignals(), account_facts=facts.get, risk=risk)
    rng = random.Random(seed)
    t = T0
    start = time.perf_counter()
    for i in range(n):
        t += 0.005
        a = f"a{rng.randrange(accounts)}"
        ctx = RequestContext(
            request_id=f"r{i}",
            ts=t,
            account_id=a,
            api_key_id=None,
            model="m",
            endpoint="chat.completions",
            ip=f"203.0.{rng.randrange(50)}.{rng.randrange(250)}",
            input_tokens=500,
            n_messages=1 + i % 4,
            conversation_id=f"{a}-{i // 7}",
            user_agent="sdk/1",
            max_tokens=1000,
        )
        d = eng.decide(ctx)
        eng.record(ctx, d, status=200, output_tokens=300, reasoning_tokens=100, response_text=None)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    off, on = [], []
    for _ in range(args.rounds):
        off.append(_round(False, args.requests, args.accounts, args.seed))
        on.append(_round(True, args.requests, args.accounts, args.seed))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(
        f"term off {m_off:.1f} us/request, on {m_on:.1f} us/request,",
        f"+{m_on - m_off:.1f} us (x{m_on / m_off:.2f})",
    )
    # the model's one-row path against its batch path on a one-row matrix (the same bits)
    model = load_model()
    row = np.asarray(model.mean) + 0.3
    row[::4] = np.nan
    x = np.where(np.isnan(row), np.asarray(model.mean), row).reshape(1, -1)
    for name, call in (
        ("explain_row", lambda: model.explain_row(row)),
        ("explain, one row", lambda: model.explain(x)),
    ):
        best = min(timeit.repeat(call, number=5000, repeat=5)) / 5000 * 1e6
        print(f"{name}: {best:.1f} us (best of 5 x 5,000)")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(_round, True, args.requests, args.accounts, args.seed)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(20)


if __name__ == "__main__":
    main()
