"""What sharing the fresh-account cohort windows across gateway workers costs.

Usage:
    python bench/bench_cohort_share.py [--rounds 5] [--requests 20000] [--accounts 5000]

One synthetic request stream (seeded): ``--accounts`` accounts, 5 % of them fresh, each on one
of 50 client strings (Zipf-like popularity) and its own /24, 1,000 requests per simulated
second. Measured side by side, alternating, on fresh engines each round:

* the request path: ``Engine.decide`` + ``Engine.record`` per request, with the online model
  not sharing (a single process) and sharing (``track_changes``: cohort users stamped and
  values wanted are recorded for the next round), in alternating order;
* the background round: every simulated second (what ``online_sync_s = 1`` does at 1,000
  requests/s), the cohort half of ``OnlineShare.sync`` against a ``MemoryStore`` and against a
  real ``redis-server`` on loopback (started here; skipped when it is not installed): median
  milliseconds per round and values per round.

Prints one JSON object (medians over rounds); docs/benchmarks.md quotes it with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from types import SimpleNamespace
from typing import Any

from distillshield.gateway._share import OnlineShare
from distillshield.gateway._store import KeyRecord, MemoryStore, RedisStore
from distillshield.gateway._types import RequestContext
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, load_policy
from distillshield.gateway.risk import OnlineRisk

T0 = 1_770_000_000.0
DAY = 86_400.0


#: A content-free caller: the engine computes no request signals (both sides alike).
NO_SIGNALS = SimpleNamespace(for_request=lambda ctx: None)


def stream(n_requests: int, n_accounts: int, seed: int) -> tuple[dict[str, KeyRecord], list[RequestContext]]:
    rng = random.Random(seed)
    accounts: dict[str, KeyRecord] = {}
    client: dict[str, str] = {}
    for i in range(n_accounts):
        a = f"acct_{i:06d}"
        fresh = rng.random() < 0.05
        accounts[a] = KeyRecord(f"key_{i}", a, created_at=T0 - (2 if fresh else 400) * DAY)
        client[a] = f"sdk/{min(int(rng.paretovariate(1.2)), 50)}"
    ids = list(accounts)
    ctxs = []
    for j in range(n_requests):
        a = ids[rng.randrange(n_accounts)]
        i = int(a[5:])
        ctxs.append(
            RequestContext(
                request_id=f"r{j}",
                ts=T0 + j / 1000.0,
                account_id=a,
                api_key_id=None,
                model="m",
                endpoint="chat.completions",
                ip=f"10.{i // 256 % 256}.{i % 256}.7",
                user_agent=client[a],
                tls_fingerprint="t13d",
            )
        )
    return accounts, ctxs


def engine(accounts: dict[str, KeyRecord]) -> Engine:
    return Engine(
        load_policy(DEFAULT_POLICY), signals=NO_SIGNALS, account_facts=accounts.get, risk=OnlineRisk()
    )


def request_path(accounts: dict[str, KeyRecord], ctxs: list[RequestContext], share: bool) -> float:
    """Microseconds per request (decide + record), sharing on or off."""
    eng = engine(accounts)
    if share:
        assert isinstance(eng.risk, OnlineRisk)
        eng.risk.track_changes()
    t = time.perf_counter()
    for ctx in ctxs:
        d = eng.decide(ctx)
        eng.record(ctx, d, status=200, output_tokens=100, reasoning_tokens=10, response_text=None)
    return (time.perf_counter() - t) / len(ctxs) * 1e6


async def rounds(
    accounts: dict[str, KeyRecord], ctxs: list[RequestContext], store: Any
) -> tuple[float, float]:
    """Median milliseconds and values per cohort round, one round per simulated second."""
    eng = engine(accounts)
    assert isinstance(eng.risk, OnlineRisk)
    share = OnlineShare(eng.risk, store, "w-bench")
    eng.risk.changed()  # the accounts' half is measured elsewhere (docs/gateway.md, "Cost")
    ms: list[float] = []
    values: list[int] = []
    for start in range(0, len(ctxs), 1000):
        for ctx in ctxs[start : start + 1000]:
            d = eng.decide(ctx)
            eng.record(ctx, d, status=200, output_tokens=100, reasoning_tokens=10, response_text=None)
        eng.risk.changed()
        t = time.perf_counter()
        await share._sync_cohorts()
        ms.append((time.perf_counter() - t) * 1e3)
        values.append(share.values_synced)
    return statistics.median(ms[1:]), statistics.median(values[1:])  # the first round fills the sets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--accounts", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    accounts, ctxs = stream(args.requests, args.accounts, args.seed)
    off: list[float] = []
    on: list[float] = []
    for r in range(args.rounds):  # the order alternates: the second run of a pair is warmer
        for share in (False, True) if r % 2 == 0 else (True, False):
            (on if share else off).append(request_path(accounts, ctxs, share=share))
    out: dict[str, Any] = {
        "requests": args.requests,
        "accounts": args.accounts,
        "rounds": args.rounds,
        "request_us_not_sharing": round(statistics.median(off), 2),
        "request_us_sharing": round(statistics.median(on), 2),
        "request_ratio": round(statistics.median(on) / statistics.median(off), 3),
    }
    mem_ms, mem_values = asyncio.run(rounds(accounts, ctxs, MemoryStore()))
    out["round_ms_memory"] = round(mem_ms, 2)
    out["values_per_round"] = mem_values
    binary = shutil.which("redis-server")
    if binary:
        with tempfile.TemporaryDirectory(prefix="distillshield-bench-cohort-") as work:
            port = free_port()
            proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    work,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                url = f"redis://127.0.0.1:{port}/0"

                async def on_redis() -> tuple[float, float, int]:
                    store = RedisStore(url, timeout_s=5.0)
                    for _ in range(200):
                        try:
                            await store.ping()
                            break
                        except Exception:
                            await asyncio.sleep(0.05)
                    res = await rounds(accounts, ctxs, store)
                    used = int((await store._redis.info("memory"))["used_memory"])
                    await store.close()
                    return res[0], res[1], used

                red_ms, _, used = asyncio.run(on_redis())
                out["round_ms_redis"] = round(red_ms, 2)
                out["redis_used_memory_mb"] = round(used / 2**20, 1)
            finally:
                proc.terminate()
                proc.wait(10)
    out["machine"] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
