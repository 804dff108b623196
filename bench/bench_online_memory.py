"""Memory one account's online state takes in a gateway worker (``online_max_accounts``).

Usage:
    python bench/bench_online_memory.py [--accounts 500] [--requests 1,20,200] [--seed 1]

Builds ``--accounts`` synthetic :class:`~distillshield.features.online.AccountOnline`
states per request count (seeded: exponential gaps of a minute on average, 50 template ids,
a handful of addresses and conversations) and reports, per account, the Python heap
``tracemalloc`` attributes to them and the serialised size (what the shared store holds).
The gateway's default bound (docs/gateway.md, "Memory") is sized from these figures. Only
the estimator state is measured: ``OnlineRisk`` adds a small per-account record (first-seen
time, memberships) on top.
"""

from __future__ import annotations

import argparse
import json
import random
import tracemalloc

from distillshield.features.online import AccountOnline, OnlineConfig, OnlineEvent


def _account(n: int, cfg: OnlineConfig, rng: random.Random) -> AccountOnline:
    state = AccountOnline(cfg, created_at=1.7e9)
    t = 1.7e9
    for i in range(n):
        t += rng.expovariate(1 / 60)
        state.update(
            OnlineEvent(
                ts=t,
                model="m1",
                ip=f"10.0.{i % 7}.{i % 13}",
                ip_prefix=f"10.0.{i % 7}.0/24",
                asn="AS1",
                is_hosting=False,
                user_agent="sdk/1.0",
                tls_fingerprint="t13d1516h2",
                conversation_id=f"c{i // 3}",
                n_messages=1 + i % 3,
                input_tokens=100,
                output_tokens=300,
                max_tokens=1000,
                reasoning_tokens=50,
                template_id=f"t{rng.randrange(50)}",
                cot_elicit=None,
                capability="math",
            )
        )
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--requests", default="1,20,200", help="requests per account, comma-separated")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cfg = OnlineConfig()
    out = []
    for n in (int(x) for x in args.requests.split(",")):
        tracemalloc.start()
        states = [_account(n, cfg, rng) for _ in range(args.accounts)]
        heap, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        serialised = sum(len(s.to_bytes()) for s in states) / args.accounts
        out.append(
            {
                "requests": n,
                "heap_kib_per_account": round(heap / args.accounts / 1024, 1),
                "serialised_kib_per_account": round(serialised / 1024, 2),
            }
        )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
