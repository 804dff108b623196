"""Gateway latency: what `distillshield gateway` and a LiteLLM proxy with our guardrail add to a request.

Usage::

    python bench/bench_gateway.py --out RESULTS.json [--rates 50,200,1000] [--duration 20]
        [--warmup 4] [--repeat 3] [--prime 4096] [--workdir DIR] [--profile PROFILE.txt]
        [--configs direct,gateway-memory,gateway-redis,litellm,litellm-guardrail[,floor-httpx,floor-aiohttp]]

Every part is its own process, on loopback: the mock model server (``distillshield gateway
mock-upstream``, uvicorn), the gateway twice (``distillshield gateway --config ...``: one with the
in-process store, one on a real ``redis-server``), LiteLLM's proxy twice (with and without the
distillshield guardrail) and this script, the open-loop load generator. All of them stay up for
the whole run; configurations are measured one after another, in a rotated order per repetition,
so they share the machine's noise. Two optional reference proxies (``floor-httpx``,
``floor-aiohttp``: uvicorn + Starlette forwarding the body with no enforcement at all) show how
much of the gateway's cost is its HTTP stack rather than its own work.

The workload is realistic for the decision path: 10,000 API keys in the key registry (hashes
only), published batch verdicts (two campaigns, flagged accounts, a campaign payment fingerprint
that links new accounts online), traffic from 2,000 active accounts with their own client IPs
(``X-Forwarded-For``), user agents and TLS fingerprints, non-streamed chat completions with
varied prompts of a few hundred characters, a reasoning model (the mock's ``reasoning_content``),
and about 12 % of requests from campaign members, flagged or linked accounts whose answers are
protected (reasoning replaced by a summary) and marked. The bench policy is the shipped default
with higher throttle rates, so the confirmed campaign is rate-limited (a Redis bucket per request
with the Redis store) without being refused.

Load is open-loop: arrival times are drawn (Poisson) before the phase starts and each request's
latency is measured from its *scheduled* send time to the last byte of its response, so a
server that falls behind is charged for the queueing it causes (no coordinated omission).
Requests are sent over a pool of keep-alive HTTP/1.1 connections by a small asyncio client
(uvloop, hand-written parser) so the generator costs little CPU. The warm-up of each phase is
excluded, and before the first phase every target gets the whole request corpus once
(``--prime``), so keys, client IPs and connections are cached: the phases measure the steady
state. After each phase the script waits until every server is idle again (a saturated proxy
keeps working on requests whose client gave up). Per phase: achieved rate, errors (timeouts,
non-200, requests still queued at the end), latency percentiles, the generator's own send lag,
CPU seconds per request of every process (from /proc), and for the gateways their own
``distillshield_added_latency_seconds`` histogram (scraped from /metrics before and after).

``--profile FILE`` instead runs only the in-process-store gateway under cProfile (CPU time of
its event-loop thread, in a child process started by this script, enabled after priming) at
the first rate for one phase, and writes its own time by area and the top functions.
``--client-scaling`` only measures the upstream client's CPU per request (httpx as the gateway
configures it, and aiohttp) at 4, 64, 256 and 512 requests in flight; ``--micro`` only times the
gateway's own steps (IP facts, signals, decide, record, protect, mark, log, metrics) in process.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CONFIGS = ("direct", "gateway-memory", "gateway-redis", "litellm", "litellm-guardrail")
#: Reference proxies (not in the default run): the gateway's HTTP stack with no enforcement at
#: all - uvicorn + Starlette, read the body, forward it with httpx (as the gateway does) or
#: aiohttp, return the parsed answer - to separate the framework's cost from the gateway's own.
FLOORS = ("floor-httpx", "floor-aiohttp")
#: Gateway variants (not in the default run), memory store like ``gateway-memory``:
#: ``gateway-httpx-h11`` is the gateway's stack before the upstream client change (httpx as
#: upstream client, uvicorn's pure-Python h11 parser) for a same-run before/after comparison;
#: ``gateway-admit`` has admission control on (:data:`ADMIT`), showing what the overloaded
#: rates look like when the excess is turned away with 503 instead of queued.
#: ``gateway-redis-nosync`` is ``gateway-redis`` with ``online_sync_s = 0`` (no background sharing
#: of per-account online state), showing what the sharing costs.
#: ``gateway-model`` is ``gateway-memory`` with the opt-in online account-model term on
#: (``online_model = "shipped"``) and every account created two days before the run, so every
#: account is fresh and no batch run has judged it: the term scores every answered request
#: (its worst case; with real traffic only new accounts pay it).
VARIANTS = ("gateway-httpx-h11", "gateway-admit", "gateway-redis-nosync", "gateway-model")
#: ``max_in_flight``, ``max_queued``, ``queue_timeout_s`` of ``gateway-admit``.
ADMIT = (32, 32, 0.05)
MODEL = "mock-field"
MARK_KEY = "bench-mark-key-0123456789abcdef"
MASTER_KEY = "sk-bench-master-key"
N_KEYS = 10_000
N_ACTIVE = 2_000

# account ranges (index into the key registry)
C7 = range(0, 40)  # campaign C-7, score 0.72: protect + mark (rule campaign-suspect)
C9 = range(40, 80)  # campaign C-9, score 0.95: protect + mark + throttle (under its rate)
FLAGGED = range(80, 100)  # flagged alone: protect + mark
HEADS = range(100, 140)  # not in the verdicts, pay with C-9's card: linked online, protect + mark
NORMAL = range(140, 140 + N_ACTIVE)  # active legitimate accounts (the rest of the registry is idle)
MIX = (("normal", 0.88), ("c7", 0.05), ("c9", 0.03), ("flagged", 0.02), ("head", 0.02))


def secret(i: int) -> str:
    return f"sk-bench-{i:05d}-{hashlib.sha256(str(i).encode()).hexdigest()[:16]}"


def account(i: int) -> str:
    return f"acct-{i:05d}"


# --------------------------------------------------------------------------------------------
# fixtures: keys, verdicts, policy, configs
# --------------------------------------------------------------------------------------------


def write_fixtures(work: Path, mock_url: str, redis_url: str) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillshield.gateway import DEFAULT_POLICY, hash_key

    work.mkdir(parents=True, exist_ok=True)
    pathways = ("self_serve", "self_serve", "self_serve", "enterprise", "education", "startup")
    keys = work / "keys.jsonl"
    with keys.open("w", encoding="utf-8") as fh:
        for i in range(N_KEYS):
            pf = "pf-hydra-9" if i in HEADS or i in range(40, 45) else f"pf-{i:05d}"
            row = {
                "key_sha256": hash_key(secret(i)),
                "account_id": account(i),
                "org_id": f"org-{i // 7:04d}",
                "pathway": pathways[i % len(pathways)],
                "payment_fingerprint": pf,
            }
            fh.write(json.dumps(row) + "\n")
    det = work / "det"
    det.mkdir(exist_ok=True)
    rows: list[tuple[str, float, bool, str | None]] = []
    rows += [(account(i), 0.7 + (i % 5) / 100, True, "C-7") for i in C7]
    rows += [(account(i), 0.96, True, "C-9") for i in C9]
    rows += [(account(i), 0.85, True, None) for i in FLAGGED]
    rows += [(account(i), 0.05, False, None) for i in range(140, 640)]  # scanned, not flagged
    cols = list(zip(*rows, strict=True))
    pq.write_table(
        pa.table(
            {
                "account_id": pa.array(cols[0], pa.string()),
                "score": pa.array(cols[1], pa.float64()),
                "flagged": pa.array(cols[2], pa.bool_()),
                "campaign_id": pa.array(cols[3], pa.string()),
            }
        ),
        det / "accounts.parquet",
    )
    campaigns = {
        "campaigns": [
            {"id": "C-7", "score": 0.72, "infrastructure": {"payment_fingerprints": []}},
            {
                "id": "C-9",
                "score": 0.95,
                "infrastructure": {"payment_fingerprints": [{"value": "pf-hydra-9", "accounts": 5}]},
            },
        ]
    }
    (det / "campaigns.json").write_text(json.dumps(campaigns), encoding="utf-8")
    policy = work / "policy.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    text = re.sub(
        r"account: \{rate_per_s: [0-9.]+, burst: [0-9]+\}", "account: {rate_per_s: 200, burst: 2000}", text
    )
    text = re.sub(
        r"campaign: \{rate_per_s: [0-9.]+, burst: [0-9]+\}",
        "campaign: {rate_per_s: 2000, burst: 20000}",
        text,
    )
    policy.write_text(text, encoding="utf-8")
    common = (
        f'upstream = "{mock_url}"\npolicy = "{policy}"\nkeys_file = "{keys}"\n'
        'trust_forwarded_for = true\nlog_fsync = "none"\nmetrics_public = true\n'
    )
    mem = work / "gateway-memory.toml"
    mem.write_text(common + f'store = "memory://"\nverdicts = "{det}"\nlog_dir = "{work / "log-memory"}"\n')
    red = work / "gateway-redis.toml"
    red.write_text(common + f'store = "{redis_url}"\nlog_dir = "{work / "log-redis"}"\n')
    out = {"keys": keys, "det": det, "policy": policy, "gateway-memory": mem, "gateway-redis": red}
    # the Redis gateway without the background online-state sync: what sharing costs
    out["gateway-redis-nosync"] = work / "gateway-redis-nosync.toml"
    out["gateway-redis-nosync"].write_text(
        common + f'store = "{redis_url}"\nonline_sync_s = 0\nlog_dir = "{work / "log-redis-nosync"}"\n'
    )
    memory_common = common + f'store = "memory://"\nverdicts = "{det}"\n'
    out["gateway-httpx-h11"] = work / "gateway-httpx-h11.toml"
    out["gateway-httpx-h11"].write_text(
        memory_common + f'upstream_client = "httpx"\nlog_dir = "{work / "log-httpx-h11"}"\n'
    )
    # every account fresh (created two days ago, by the wall clock the gateway reads too)
    fresh_keys = work / "keys-fresh.jsonl"
    created = time.time() - 2 * 86_400.0
    with keys.open(encoding="utf-8") as src, fresh_keys.open("w", encoding="utf-8") as dst:
        for line in src:
            dst.write(json.dumps({**json.loads(line), "created_at": created}) + "\n")
    out["gateway-model"] = work / "gateway-model.toml"
    out["gateway-model"].write_text(
        memory_common.replace(f'keys_file = "{keys}"', f'keys_file = "{fresh_keys}"')
        + f'online_model = "shipped"\nlog_dir = "{work / "log-model"}"\n'
    )
    out["gateway-admit"] = work / "gateway-admit.toml"
    out["gateway-admit"].write_text(
        memory_common
        + f"max_in_flight = {ADMIT[0]}\nmax_queued = {ADMIT[1]}\nqueue_timeout_s = {ADMIT[2]}\n"
        + f'log_dir = "{work / "log-admit"}"\n'
    )
    for name, guard in (("litellm", False), ("litellm-guardrail", True)):
        cfg: dict[str, Any] = {
            "model_list": [
                {
                    "model_name": MODEL,
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": mock_url,
                        "api_key": "sk-mock",
                    },
                }
            ],
            "general_settings": {
                "master_key": MASTER_KEY,
                "custom_auth": "bench_gateway.litellm_custom_auth",
                "use_x_forwarded_for": True,
            },
            "litellm_settings": {"telemetry": False, "num_retries": 0, "request_timeout": 30},
            "router_settings": {"num_retries": 0},
        }
        if guard:
            cfg["guardrails"] = [
                {
                    "guardrail_name": "distillshield",
                    "litellm_params": {
                        "guardrail": "distillshield.gateway.litellm_guardrail.DistillshieldGuardrail",
                        "mode": ["pre_call", "post_call"],
                        "default_on": True,
                        "distillshield_engine": "bench_gateway:litellm_engine",
                        "distillshield_engine_kwargs": {
                            "policy": str(policy),
                            "det": str(det),
                            "keys": str(keys),
                        },
                    },
                }
            ]
        path = work / f"{name}.yaml"
        path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")  # JSON is YAML
        out[name] = path
    return out


def publish_verdicts(redis_url: str, det: Path) -> str:
    from distillshield.gateway import build_verdicts, open_store

    verdicts = build_verdicts(det)

    async def put() -> None:
        st = open_store(redis_url, timeout_s=5.0)
        try:
            await st.publish_verdicts(verdicts.version, verdicts.to_bytes())
        finally:
            await st.close()

    asyncio.run(put())
    return verdicts.version


# --------------------------------------------------------------------------------------------
# hooks loaded by the LiteLLM proxy (this file is on its PYTHONPATH)
# --------------------------------------------------------------------------------------------

_LITELLM_KEYS: dict[str, str] | None = None


def _keys_by_hash() -> dict[str, str]:
    global _LITELLM_KEYS
    if _LITELLM_KEYS is None:
        path = os.environ["DISTILLSHIELD_BENCH_KEYS"]
        with open(path, encoding="utf-8") as fh:
            _LITELLM_KEYS = {r["key_sha256"]: r["account_id"] for r in map(json.loads, fh)}
    return _LITELLM_KEYS


async def litellm_custom_auth(request: Any, api_key: str) -> Any:
    """LiteLLM ``custom_auth`` against the same key registry as the gateway (hash → account)."""
    from fastapi import HTTPException
    from litellm.proxy._types import UserAPIKeyAuth

    key_hash = hashlib.sha256(api_key.encode()).hexdigest()
    acct = _keys_by_hash().get(key_hash)
    if acct is None:
        raise HTTPException(status_code=401, detail="unknown key")
    return UserAPIKeyAuth(api_key=api_key, token=key_hash, user_id=acct)


def litellm_engine(policy: str, det: str, keys: str) -> Any:
    """The guardrail's engine, built as the gateway builds its own: the same policy and
    verdicts, and the key registry's account facts (payment fingerprint, pathway) for linking."""
    from distillshield.gateway import Engine, KeyRecord, build_verdicts, load_policy

    facts: dict[str, KeyRecord] = {}
    with open(keys, encoding="utf-8") as fh:
        for row in map(json.loads, fh):
            row.pop("key_sha256")
            rec = KeyRecord(key_id="k", **row)
            facts[rec.account_id] = rec
    engine = Engine(load_policy(Path(policy)), account_facts=facts.get)
    engine.set_verdicts(build_verdicts(det))
    return engine


# --------------------------------------------------------------------------------------------
# the request corpus
# --------------------------------------------------------------------------------------------

_TOPICS = (
    "a Postgres query that got slow after we added an index on created_at",
    "a React component that re-renders on every keystroke",
    "the monthly churn numbers for our subscription product",
    "a Kubernetes deployment whose pods restart with OOMKilled",
    "a grant proposal about soil microbiome sampling",
    "the onboarding email sequence for a B2B analytics tool",
    "a Python script that parses 40 GB of CSV logs",
    "a lesson plan on photosynthesis for 14-year-olds",
    "the error handling in a Go HTTP client with retries",
    "a contract clause about limitation of liability",
    "a recipe that needs to be scaled from 4 to 30 servings",
    "the unit economics of a food-delivery startup in two cities",
)
_TASKS = (
    "explain what is going on and what I should check first",
    "suggest three alternatives and compare their trade-offs",
    "rewrite it so that it is clearer and shorter",
    "find the bug and propose a minimal fix",
    "summarise the key points for a non-technical manager",
    "write a checklist I can follow tomorrow morning",
    "estimate the effort and list the risks",
)
_CONTEXT = (
    "We are a team of five, the deadline is next Friday and we cannot change the database schema.",
    "This runs on a single 4-core VM with 16 GB of memory; costs matter more than latency.",
    "The audience is internal, but the document will be forwarded to two customers.",
    "I already tried the obvious things (restarting, clearing caches, upgrading the library).",
    "Our style guide prefers short sentences, no jargon and concrete numbers where possible.",
    "Previous attempts were reviewed and rejected because they were too generic.",
)
_ASKS = (
    "Please keep the answer under 200 words.",
    "Think step by step, then give the final recommendation.",
    "Use a numbered list.",
    "If something is ambiguous, state your assumption and go on.",
    "Answer in plain English.",
)
_SYSTEMS = (
    None,
    None,
    "You are a helpful assistant for a software company. Be precise and concise.",
    "You are an experienced analyst. Cite the assumptions behind every number.",
)
_UAS = (
    "OpenAI/Python 1.57.0",
    "OpenAI/Python 1.82.1",
    "OpenAI/JS 4.77.0",
    "langchain-openai/0.2.14",
    "curl/8.5.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
)
_JA4 = (
    "t13d1516h2_8daaf6152771_b186095e22b6",
    "t13d1715h2_5b57614c22b0_3d5424432f57",
    "t13d301000_1d37bd780c83",
)


def _prompt(rng: random.Random) -> str:
    topic, task = rng.choice(_TOPICS), rng.choice(_TASKS)
    parts = [f"I'm working on {topic} and I need you to {task}."]
    for _ in range(rng.randint(1, 3)):
        parts.append(rng.choice(_CONTEXT))
    parts.append(f"Ticket #{rng.randint(1000, 99999)}, revision {rng.randint(1, 9)}.")
    parts.append(rng.choice(_ASKS))
    return " ".join(parts)


def _ip(i: int, k: int) -> str:
    h = hashlib.sha256(f"{i}/{k}".encode()).digest()
    return f"{h[0] % 200 + 20}.{h[1]}.{h[2]}.{h[3] % 250 + 1}"


@dataclass(frozen=True)
class Corpus:
    requests: list[bytes]  # full HTTP/1.1 request bytes
    kinds: list[str]
    prompt_chars: tuple[int, int, int]  # min, median, max

    @staticmethod
    def build(n: int = 4096, seed: int = 7) -> Corpus:
        rng = random.Random(seed)
        ranges = {"normal": NORMAL, "c7": C7, "c9": C9, "flagged": FLAGGED, "head": HEADS}
        names, weights = zip(*MIX, strict=True)
        reqs, kinds, lengths = [], [], []
        for _ in range(n):
            kind = rng.choices(names, weights)[0]
            r = ranges[kind]
            # a few heavy users, a long tail (Zipf-like) among active accounts
            i = r[min(len(r) - 1, int(len(r) * rng.random() ** 2.5))]
            prompt = _prompt(rng)
            lengths.append(len(prompt))
            messages: list[dict[str, str]] = []
            system = _SYSTEMS[i % len(_SYSTEMS)]
            if system:
                messages.append({"role": "system", "content": system})
            messages.append({"role": "user", "content": prompt})
            body = json.dumps(
                {"model": MODEL, "messages": messages, "max_tokens": 512, "temperature": 0.7},
                separators=(",", ":"),
            ).encode()
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\n"
                "host: bench\r\n"
                f"authorization: Bearer {secret(i)}\r\n"
                "content-type: application/json\r\n"
                f"user-agent: {_UAS[i % len(_UAS)]}\r\n"
                f"x-ja4: {_JA4[i % len(_JA4)]}\r\n"
                f"x-forwarded-for: {_ip(i, rng.randrange(2))}\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            ).encode()
            reqs.append(head + body)
            kinds.append(kind)
        lengths.sort()
        return Corpus(reqs, kinds, (lengths[0], lengths[len(lengths) // 2], lengths[-1]))


# --------------------------------------------------------------------------------------------
# the open-loop load generator
# --------------------------------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.req: int = -1  # slot of the request in flight
        self.need: int = -1  # total bytes of the response once the head is parsed
        self.chunked = False
        self.status = 0
        self.action = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, slot: int, data: bytes) -> None:
        self.req = slot
        self.buf.clear()
        self.need = -1
        self.chunked = False
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            m = re.search(rb"\r\ncontent-length: *(\d+)", head)
            if m:
                self.need = end + 4 + int(m.group(1))
            elif b"transfer-encoding: chunked" in head:
                self.chunked = True
                self.need = 0
            else:
                self.need = 1 << 62  # until close
            a = head.find(b"\r\nx-distillshield-action:")
            self.action = head[a + 25 : head.find(b"\r\n", a + 2)].strip() if a >= 0 else b""
        done = buf.endswith(b"0\r\n\r\n") if self.chunked else len(buf) >= self.need
        if done and self.req >= 0:
            slot, self.req = self.req, -1
            self.gen.complete(self, slot, self.status, self.action)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.req >= 0:
            slot, self.req = self.req, -1
            self.gen.fail(self, slot, "connection_lost")


class Generator:
    """Open-loop arrivals on a pool of keep-alive connections to one target."""

    def __init__(self, port: int, corpus: Corpus, max_conns: int, timeout_s: float) -> None:
        self.port = port
        self.corpus = corpus
        self.max_conns = max_conns
        self.timeout_s = timeout_s
        self.idle: list[_Conn] = []
        self.conns: set[_Conn] = set()
        self.opening = 0
        self.waiting: deque[int] = deque()
        self.inflight: dict[_Conn, int] = {}
        self.done_event: asyncio.Event | None = None
        self.remaining = 0

    async def run(self, rate: float, duration: float, seed: int, pre_open: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        sched: list[float] = []
        t = rng.expovariate(rate)
        while t < duration:
            sched.append(t)
            t += rng.expovariate(rate)
        n = len(sched)
        self.sched = sched
        self.sent = [math.nan] * n
        self.end = [math.nan] * n
        self.status = [0] * n
        self.action: list[bytes] = [b""] * n
        self.error: list[str | None] = [None] * n
        self.start_idx = rng.randrange(len(self.corpus.requests))
        self.remaining = n
        self.done_event = asyncio.Event()
        for _ in range(min(pre_open, self.max_conns)):
            self.idle.append(await self._connect())
        reaper = loop.create_task(self._reap())
        base = time.perf_counter() + 0.02
        self.base = base
        i = 0
        perf = time.perf_counter
        while i < n:
            now = perf()
            while i < n and base + sched[i] <= now:
                self._submit(i)
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, base + sched[i] - perf()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done_event.wait(), self.timeout_s + 5)
        reaper.cancel()
        for c in list(self.conns):
            c.req = -1  # still in flight at the deadline: "unfinished", not a lost connection
            if c.transport is not None:
                c.transport.close()
        self.idle.clear()
        self.conns.clear()
        return {
            "base": base,
            "sched": sched,
            "sent": self.sent,
            "end": self.end,
            "status": self.status,
            "action": self.action,
            "error": self.error,
        }

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
        self.conns.add(proto)
        return proto

    def _data(self, slot: int) -> bytes:
        reqs = self.corpus.requests
        return reqs[(self.start_idx + slot) % len(reqs)]

    def _submit(self, slot: int) -> None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self._send(conn, slot)
                return
            self.conns.discard(conn)
        if len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            asyncio.get_running_loop().create_task(self._open_and_send(slot))
        else:
            self.waiting.append(slot)

    async def _open_and_send(self, slot: int) -> None:
        try:
            conn = await self._connect()
        except OSError as exc:
            self.opening -= 1
            self._record_error(slot, f"connect:{type(exc).__name__}")
            return
        self.opening -= 1
        self._send(conn, slot)

    def _send(self, conn: _Conn, slot: int) -> None:
        self.sent[slot] = time.perf_counter()
        self.inflight[conn] = slot
        conn.send(slot, self._data(slot))

    def _release(self, conn: _Conn) -> None:
        self.inflight.pop(conn, None)
        if conn.closed:
            self.conns.discard(conn)
            if self.waiting:
                slot = self.waiting.popleft()
                self.opening += 1
                asyncio.get_running_loop().create_task(self._open_and_send(slot))
            return
        if self.waiting:
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def _finish_one(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and self.done_event is not None:
            self.done_event.set()

    def complete(self, conn: _Conn, slot: int, status: int, action: bytes) -> None:
        self.end[slot] = time.perf_counter()
        self.status[slot] = status
        self.action[slot] = action
        self._finish_one()
        self._release(conn)

    def _record_error(self, slot: int, what: str) -> None:
        self.end[slot] = time.perf_counter()
        self.error[slot] = what
        self._finish_one()

    def fail(self, conn: _Conn, slot: int, what: str) -> None:
        self._record_error(slot, what)
        self._release(conn)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for conn, slot in list(self.inflight.items()):
                if now - self.sent[slot] > self.timeout_s and conn.req == slot:
                    conn.req = -1
                    self.inflight.pop(conn, None)
                    self._record_error(slot, "timeout")
                    if conn.transport is not None:
                        conn.transport.close()
                    conn.closed = True
                    self.conns.discard(conn)


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """The process and its descendants (LiteLLM may fork), from /proc."""
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            with contextlib.suppress(OSError):
                for tid in os.listdir(f"/proc/{p}/task"):
                    with contextlib.suppress(OSError):
                        todo += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
        return sorted(set(out))

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def start(name: str, cmd: list[str], port: int, work: Path, env: dict[str, str] | None = None) -> Proc:
    log = work / f"{name}.log"
    fh = log.open("wb")
    popen = subprocess.Popen(
        cmd,
        cwd=work,
        env={**os.environ, **(env or {})},
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fh.close()
    return Proc(name, popen, port, log)


def wait_http(proc: Proc, path: str, timeout: float) -> float:
    import httpx

    t0 = time.monotonic()
    while True:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log.read_text()[-3000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{proc.port}{path}", timeout=2).status_code == 200:
                return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(
                f"{proc.name} did not answer {path} in {timeout} s:\n{proc.log.read_text()[-3000:]}"
            )
        time.sleep(0.2)


def litellm_command() -> list[str]:
    exe = Path(sys.executable).with_name("litellm")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "import litellm, sys; sys.exit(litellm.run_server())"]
    )


LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "LITELLM_TELEMETRY": "False",
    "DISABLE_SCHEMA_UPDATE": "True",
    "NO_PROXY": "127.0.0.1,localhost",
    "LITELLM_LOG": "ERROR",
}


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return math.nan
    k = (len(sorted_vals) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


_HIST = re.compile(
    r'^distillshield_added_latency_seconds_bucket\{endpoint="chat",le="([^"]+)"\} ([0-9.e+]+)$', re.M
)


def scrape_hist(port: int) -> dict[float, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {math.inf if le == "+Inf" else float(le): float(v) for le, v in _HIST.findall(text)}


def hist_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """p50 / p90 / p99 of the histogram's increase (linear within a bucket, Prometheus-style)."""
    bounds = sorted(after)
    cum = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cum[-1] if cum else 0.0
    out: dict[str, float] = {"count": total}
    for name, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
        if total <= 0:
            out[name] = math.nan
            continue
        rank = q * total
        j = bisect.bisect_left(cum, rank)
        upper = bounds[j]
        lower = bounds[j - 1] if j > 0 else 0.0
        below = cum[j - 1] if j > 0 else 0.0
        if math.isinf(upper):
            out[name] = lower * 1e3
            continue
        span = cum[j] - below
        out[name] = (lower + (upper - lower) * ((rank - below) / span if span else 1.0)) * 1e3
    return out


def summarise(raw: dict[str, Any], warmup: float, duration: float) -> dict[str, Any]:
    base, sched, sent, end = raw["base"], raw["sched"], raw["sent"], raw["end"]
    idx = [i for i, t in enumerate(sched) if t >= warmup]
    lat, svc, lag, ok_ends = [], [], [], []
    errors: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for i in idx:
        err, st = raw["error"][i], raw["status"][i]
        if err is None and math.isnan(end[i]):
            err = "unfinished" if not math.isnan(sent[i]) else "never_sent"  # still queued at the deadline
        if err is not None:
            errors[err] += 1
            continue
        if st != 200:
            errors[f"http_{st}"] += 1
            continue
        lat.append(end[i] - (base + sched[i]))
        svc.append(end[i] - sent[i])
        lag.append(sent[i] - (base + sched[i]))
        ok_ends.append(end[i])
        actions[raw["action"][i].decode() or "-"] += 1
    lat.sort()
    svc.sort()
    lag.sort()
    window = duration - warmup
    span = (max(ok_ends) - (base + warmup)) if ok_ends else math.nan
    ms = 1e3
    return {
        "scheduled": len(idx),
        "offered_rps": len(idx) / window,
        "ok": len(lat),
        "achieved_rps": len(lat) / max(window, span) if lat else 0.0,
        "errors": dict(errors),
        "actions": dict(actions),
        "p50_ms": pct(lat, 0.5) * ms,
        "p90_ms": pct(lat, 0.9) * ms,
        "p99_ms": pct(lat, 0.99) * ms,
        "p999_ms": pct(lat, 0.999) * ms,
        "max_ms": (lat[-1] * ms) if lat else math.nan,
        "mean_ms": (statistics.fmean(lat) * ms) if lat else math.nan,
        "service_p50_ms": pct(svc, 0.5) * ms,
        "service_p99_ms": pct(svc, 0.99) * ms,
        "send_lag_p50_ms": pct(lag, 0.5) * ms,
        "send_lag_p99_ms": pct(lag, 0.99) * ms,
    }


# --------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    versions = {}
    for mod in (
        "uvicorn",
        "starlette",
        "httpx",
        "aiohttp",
        "orjson",
        "httptools",
        "litellm",
        "uvloop",
        "redis",
    ):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[mod] = version(mod)
    redis_v = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        redis_v = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2]
    try:
        import httptools  # noqa: F401

        http_impl = "httptools"
    except ImportError:
        http_impl = "h11 (httptools not installed)"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "redis_server": redis_v,
        "uvicorn_http": http_impl,
    }


def sanity(procs: dict[str, Proc], corpus: Corpus) -> dict[str, dict[str, str]]:
    """One request of each account kind through each configuration: status, actions, reasoning."""
    import httpx

    out: dict[str, dict[str, str]] = {}
    first = {}
    for k, kind in enumerate(corpus.kinds):
        first.setdefault(kind, k)
    for name, proc in procs.items():
        row = {}
        for kind, k in sorted(first.items()):
            raw = corpus.requests[k]
            head, body = raw.split(b"\r\n\r\n", 1)
            headers = dict(
                line.split(": ", 1)
                for line in head.decode().split("\r\n")[1:]
                if not line.startswith("content-length")
            )
            headers.pop("host", None)
            r = httpx.post(
                f"http://127.0.0.1:{proc.port}/v1/chat/completions", content=body, headers=headers, timeout=30
            )
            reasoning = "?"
            if r.status_code == 200:
                msg = r.json()["choices"][0]["message"]
                rc = msg.get("reasoning_content")
                reasoning = (
                    "raw"
                    if rc and rc.startswith(("Okay", "Let me", "First", "Hmm"))
                    else ("summary" if rc else "none")
                )
            row[kind] = (
                f"{r.status_code} {r.headers.get('x-distillshield-action', '-')} reasoning={reasoning}"
            )
        out[name] = row
    return out


async def _prime(port: int, corpus: Corpus, concurrency: int, n: int) -> Counter[int]:
    """Send the first ``n`` requests of the corpus once, closed-loop (warms the key, IP and
    connection caches of the proxy: the phases measure its steady state)."""
    gen = Generator(port, corpus, concurrency, 60.0)
    statuses: Counter[int] = Counter()
    n = min(n, len(corpus.requests))
    queue = deque(range(n))
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    conns = [await gen._connect() for _ in range(concurrency)]

    # closed loop: each connection sends the next request when its answer arrived
    def on_done(conn: _Conn, slot: int, status: int, action: bytes) -> None:
        statuses[status] += 1
        if queue:
            k = queue.popleft()
            conn.send(k, corpus.requests[k])
        elif sum(statuses.values()) == n and not done.done():
            done.set_result(None)

    def on_fail(conn: _Conn, slot: int, what: str) -> None:
        statuses[0] += 1
        if sum(statuses.values()) == n and not done.done():
            done.set_result(None)

    gen.complete = on_done  # type: ignore[method-assign]
    gen.fail = on_fail  # type: ignore[method-assign]
    for c in conns:
        if queue:
            k = queue.popleft()
            c.send(k, corpus.requests[k])
    await asyncio.wait_for(done, 600)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return statuses


def quiesce(procs: list[Proc], max_s: float = 120.0, busy: float = 0.05) -> float:
    """Wait until ``procs`` are idle (below ``busy`` of a core over 0.5 s): a saturated proxy
    goes on working through requests whose client gave up, which must not leak into the
    next phase."""
    t0 = time.monotonic()
    pids = [p.pids() for p in procs]
    while time.monotonic() - t0 < max_s:
        c0 = [cpu_seconds(x) for x in pids]
        time.sleep(0.5)
        if all((cpu_seconds(x) - c) / 0.5 < busy for x, c in zip(pids, c0, strict=True)):
            break
    return time.monotonic() - t0


def run_phase(
    proc: Proc,
    corpus: Corpus,
    rate: float,
    args: argparse.Namespace,
    seed: int,
    others: list[Proc],
    gen_pid: int,
) -> dict[str, Any]:
    is_gateway = proc.name.startswith("gateway")
    hist0 = scrape_hist(proc.port) if is_gateway else {}
    watched = {p.name: p.pids() for p in others}
    cpu0 = {k: cpu_seconds(v) for k, v in watched.items()}
    cpu0["generator"] = cpu_seconds([gen_pid])
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    gen = Generator(proc.port, corpus, args.max_conns, args.timeout)
    total = args.warmup + args.duration
    raw = asyncio.run(gen.run(rate, total, seed, pre_open=min(64, int(rate / 10) + 8)))
    wall = time.perf_counter() - t0
    cpu = {k: cpu_seconds(v) - cpu0[k] for k, v in watched.items()}
    cpu["generator"] = cpu_seconds([gen_pid]) - cpu0["generator"]
    res = summarise(raw, args.warmup, total)
    res["wall_s"] = wall
    res["loadavg_1m"] = [load0, os.getloadavg()[0]]
    # CPU over the whole phase (warm-up and drain included) per request answered 200 in it;
    # a saturated proxy also burns CPU on requests whose client gave up, charged here too
    answered = sum(1 for st in raw["status"] if st == 200)
    res["answered_all"] = answered
    res["cpu_ms_per_answered"] = {k: v * 1e3 / max(1, answered) for k, v in cpu.items()}
    res["cpu_cores_busy"] = {k: v / wall for k, v in cpu.items()}
    res["kept_up"] = res["ok"] >= 0.99 * res["scheduled"] and res["achieved_rps"] >= 0.95 * res["offered_rps"]
    if is_gateway:
        # the histogram also holds the warm-up: it is the gateway's view of the whole phase
        res["gateway_histogram"] = hist_quantiles(hist0, scrape_hist(proc.port))
    return res


def aggregate(phases: list[dict[str, Any]], configs: list[str], rates: list[float]) -> dict[str, Any]:
    """Medians over repetitions per (configuration, rate); added latency is paired per
    repetition with that repetition's direct phase, then the median is taken."""
    agg: dict[str, Any] = {}
    for rate in rates:
        direct = {p["rep"]: p for p in phases if p["config"] == "direct" and p["rate"] == rate}
        for cfg in configs:
            ps = [p for p in phases if p["config"] == cfg and p["rate"] == rate]
            if not ps:
                continue

            def med(key: str, ps: list[dict[str, Any]] = ps) -> float:
                vals = [p[key] for p in ps if not math.isnan(p[key])]
                return statistics.median(vals) if vals else math.nan

            def med_of(key: str, name: str, ps: list[dict[str, Any]] = ps) -> float:
                vals = [p[key][name] for p in ps if name in p[key]]
                return statistics.median(vals) if vals else math.nan

            row: dict[str, Any] = {
                "runs": len(ps),
                "kept_up": sum(bool(p["kept_up"]) for p in ps),
                "achieved_rps": med("achieved_rps"),
                "errors": sum(sum(p["errors"].values()) for p in ps),
                "scheduled": sum(p["scheduled"] for p in ps),
                "p50_ms": med("p50_ms"),
                "p99_ms": med("p99_ms"),
                "p50_ms_runs": [round(p["p50_ms"], 3) for p in ps],
                "p99_ms_runs": [round(p["p99_ms"], 3) for p in ps],
                "loadavg_runs": [round(p["loadavg_1m"][1], 1) for p in ps],
                "cpu_ms_per_answered": {
                    k: med_of("cpu_ms_per_answered", k) for k in ps[0]["cpu_ms_per_answered"]
                },
                "cpu_cores_busy": {k: med_of("cpu_cores_busy", k) for k in ps[0]["cpu_cores_busy"]},
            }
            if cfg != "direct" and direct:
                add50 = [p["p50_ms"] - direct[p["rep"]]["p50_ms"] for p in ps if p["rep"] in direct]
                add99 = [p["p99_ms"] - direct[p["rep"]]["p99_ms"] for p in ps if p["rep"] in direct]
                row["added_p50_ms"] = statistics.median(add50) if add50 else math.nan
                row["added_p99_ms"] = statistics.median(add99) if add99 else math.nan
            if "gateway_histogram" in ps[0]:
                for q in ("p50", "p99"):
                    vals = [p["gateway_histogram"][f"{q}_ms"] for p in ps]
                    row[f"gateway_histogram_{q}_ms"] = statistics.median(vals)
            actions: Counter[str] = Counter()
            for p in ps:
                actions.update(p["actions"])
            row["actions"] = dict(actions)
            agg[f"{cfg}@{rate:g}"] = row
        for lite in ("litellm-guardrail", "litellm"):
            a = agg.get(f"{lite}@{rate:g}")
            if not a:
                continue
            for gw in ("gateway-memory", "gateway-redis"):
                b = agg.get(f"{gw}@{rate:g}")
                if not b:
                    continue
                both = a["kept_up"] == a["runs"] and b["kept_up"] == b["runs"]
                ratios = a.setdefault("ratio_vs", {})
                for q in ("p50", "p99"):
                    den, num = b.get(f"added_{q}_ms", math.nan), a.get(f"added_{q}_ms", math.nan)
                    ok = both and den > 0
                    ratios[f"added_{q}_vs_{gw}"] = num / den if ok else math.nan
                name = lite if lite in a["cpu_ms_per_answered"] else None
                if name and gw in b["cpu_ms_per_answered"]:
                    ratios[f"cpu_vs_{gw}"] = a["cpu_ms_per_answered"][name] / b["cpu_ms_per_answered"][gw]
    return agg


def fmt(v: float, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def table(agg: dict[str, Any], configs: list[str], rates: list[float]) -> str:
    cols = (
        "offered req/s",
        "configuration",
        "kept up",
        "achieved req/s",
        "errors",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "gateway's own histogram p50 / p99 ms",
        "proxy CPU ms per answered request",
        "proxy cores busy",
    )
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rate in rates:
        for cfg in configs:
            r = agg.get(f"{cfg}@{rate:g}")
            if r is None:
                continue
            name = cfg if cfg != "direct" else "upstream"
            hist = (
                f"{fmt(r['gateway_histogram_p50_ms'])} / {fmt(r['gateway_histogram_p99_ms'])}"
                if "gateway_histogram_p50_ms" in r
                else ""
            )
            cells = (
                f"{rate:g}",
                cfg if cfg != "direct" else "direct (mock upstream)",
                f"{r['kept_up']}/{r['runs']}",
                f"{r['achieved_rps']:.0f}",
                f"{r['errors']} / {r['scheduled']}",
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r.get("added_p50_ms", math.nan)),
                fmt(r.get("added_p99_ms", math.nan)),
                hist,
                fmt(r["cpu_ms_per_answered"].get(name, math.nan)),
                fmt(r["cpu_cores_busy"].get(name, math.nan)),
            )
            lines.append("| " + " | ".join(cells) + " |")
    ratio_lines = []
    for rate in rates:
        for lite in ("litellm-guardrail", "litellm"):
            r = agg.get(f"{lite}@{rate:g}")
            if r and "ratio_vs" in r:
                parts = ", ".join(
                    f"{k} " + ("n/a (saturated)" if math.isnan(v) else f"{v:.1f}x")
                    for k, v in r["ratio_vs"].items()
                )
                ratio_lines.append(f"- {rate:g} req/s, {lite}: {parts}")
    return "\n".join(lines) + "\n\n" + "\n".join(ratio_lines)


def phase_line(res: dict[str, Any]) -> str:
    hist = res.get("gateway_histogram")
    cpu = {k: round(v, 2) for k, v in res["cpu_ms_per_answered"].items()}
    return (
        f"rep {res['rep']} rate {res['rate']:g} {res['config']:18s} ok {res['ok']:6d} "
        f"err {sum(res['errors'].values()):5d} achieved {res['achieved_rps']:7.1f}/s "
        f"p50 {res['p50_ms']:8.2f} p99 {res['p99_ms']:9.2f} ms "
        f"(service p50 {res['service_p50_ms']:.2f}, send lag p99 {res['send_lag_p99_ms']:.2f}) "
        f"cpu ms/answered {json.dumps(cpu)} load {res['loadavg_1m'][1]:.1f}"
        + (f" hist p50 {hist['p50_ms']:.3f} p99 {hist['p99_ms']:.3f}" if hist else "")
    )


def _serve_floor(argv: list[str]) -> None:
    """Child mode: a pass-through proxy on the gateway's stack (see :data:`FLOORS`)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    kind, upstream, port = argv[0], argv[1].rstrip("/"), int(argv[2])
    state: dict[str, Any] = {}

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        if kind == "floor-httpx":
            resp = await state["client"].post("/chat/completions", json=body)
            return JSONResponse(resp.json(), status_code=resp.status_code)
        async with state["client"].post(upstream + "/chat/completions", json=body) as r:
            return JSONResponse(await r.json(), status_code=r.status)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        if kind == "floor-httpx":
            import httpx

            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)  # the gateway's
            state["client"] = httpx.AsyncClient(base_url=upstream, limits=limits, timeout=600)
        else:
            import aiohttp

            state["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        yield
        await (state["client"].aclose() if kind == "floor-httpx" else state["client"].close())

    app = Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/healthz", health)],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve_gateway_h11(argv: list[str]) -> None:
    """Child mode: the gateway as the CLI serves it, but on uvicorn's h11 parser (the stack it
    had before httptools; ``gateway-httpx-h11``)."""
    import uvicorn

    from distillshield.gateway import create_app, load_config

    config, port = argv[0], int(argv[1])
    app = create_app(load_config(config))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http="h11")


def _serve_gateway(argv: list[str]) -> None:
    """Child mode for --profile: the gateway as the CLI serves it, under cProfile, stopped by
    closing stdin (so the profile is written after a clean shutdown)."""
    import cProfile
    import pstats
    import threading

    import uvicorn

    from distillshield.gateway import create_app, load_config

    config, port, out = argv[0], int(argv[1]), argv[2]
    app = create_app(load_config(config))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )

    def watch() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    prof = cProfile.Profile(time.thread_time)  # CPU time of the event loop's thread: preemption by
    # other processes on a loaded machine would otherwise be charged to whatever ran at the time
    # SIGUSR1 starts the profile (after start-up and priming), closing stdin ends it
    signal.signal(signal.SIGUSR1, lambda *_: prof.enable())
    server.run()
    prof.disable()
    prof.dump_stats(out + ".pstats")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(profile_by_area(out + ".pstats") + "\n\n")
        st = pstats.Stats(prof, stream=fh)
        st.sort_stats("tottime").print_stats(60)


#: Where a function's own time is charged, by the path of its file (first match wins).
_AREAS = (
    ("distillshield: request signals", "distillshield/signals/"),
    ("distillshield: online risk", ("distillshield/gateway/risk.py", "distillshield/features/")),
    ("distillshield: protect + mark", ("distillshield/gateway/protect.py", "distillshield/gateway/mark.py")),
    ("distillshield: exchange log", "distillshield/gateway/_log.py"),
    (
        "distillshield: engine + policy",
        ("distillshield/gateway/engine.py", "distillshield/gateway/policy.py"),
    ),
    ("distillshield: app (handler)", "distillshield/gateway/app.py"),
    ("distillshield: other", "distillshield/"),
    ("prometheus_client", "prometheus_client/"),
    ("httpx + httpcore + anyio (upstream client)", ("/httpx/", "/httpcore/", "/anyio/", "/sniffio/")),
    (
        "aiohttp + yarl + multidict (upstream client)",
        ("/aiohttp/", "/yarl/", "/multidict/", "/propcache/", "/frozenlist/"),
    ),
    ("uvicorn httptools parser", "/httptools/"),
    ("h11 (HTTP parsing, server and client)", "/h11/"),
    ("uvicorn + starlette (server, routing)", ("/uvicorn/", "/starlette/")),
    ("json (stdlib)", "/json/"),
    ("asyncio (stdlib)", "/asyncio/"),
)


def profile_by_area(path: str) -> str:
    """Own (``tottime``) CPU time of a profile grouped by area, built-ins charged to their caller's area."""
    import pstats

    stats: Any = pstats.Stats(path).stats
    own: Counter[str] = Counter()

    def area(filename: str) -> str | None:
        for name, pats in _AREAS:
            if any(p in filename for p in ((pats,) if isinstance(pats, str) else pats)):
                return name
        return None

    for (filename, _, _), (_, _, tt, _, callers) in stats.items():
        a = area(filename)
        if a is None and filename == "~" and callers:  # a built-in: charge its callers' areas
            total = sum(c[2] for c in callers.values()) or 1.0
            for (cf, _, _), c in callers.items():
                own[area(cf) or "other"] += tt * c[2] / total
            continue
        own[a or "other"] += tt
    total = sum(own.values())
    lines = ["| area | own CPU s | share |", "|---|---|---|"]
    for name, t in own.most_common():
        lines.append(f"| {name} | {t:.2f} | {t / total:.0%} |")
    return "\n".join(lines)


def micro(work: Path) -> dict[str, float]:
    """Microseconds per call of the gateway's own steps, in process, on the bench workload."""
    import copy

    from distillshield.gateway import RequestContext, protect
    from distillshield.gateway._log import ExchangeLog, ParquetSink
    from distillshield.gateway._metrics import GatewayMetrics
    from distillshield.gateway.engine import _IpCache
    from distillshield.gateway.mark import mark_text
    from distillshield.gateway.mock_upstream import make_mock_upstream

    fx = write_fixtures(work, "http://127.0.0.1:9/v1", "redis://127.0.0.1:9/0")
    engine = litellm_engine(str(fx["policy"]), str(fx["det"]), str(fx["keys"]))
    corpus = Corpus.build()
    ctxs = []
    for k, raw in enumerate(corpus.requests[:2000]):
        head, body = raw.split(b"\r\n\r\n", 1)
        h = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        b = json.loads(body)
        msgs = b["messages"]
        i = int(h["authorization"].split()[1].split("-")[2])
        ctxs.append(
            RequestContext(
                request_id=f"r{k}",
                ts=time.time(),
                account_id=account(i),
                api_key_id="k",
                model=b["model"],
                endpoint="/v1/chat/completions",
                ip=h["x-forwarded-for"],
                user_agent=h["user-agent"],
                tls_fingerprint=h["x-ja4"],
                n_messages=len(msgs),
                system_prompt=msgs[0]["content"] if len(msgs) > 1 else None,
                prompt=msgs[-1]["content"],
                max_tokens=512,
                temperature=0.7,
            )
        )

    def per_call(fn: Any, n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - t0) / n * 1e6

    out: dict[str, float] = {}
    cold = _IpCache()
    cold.warm()
    out["ip facts, first sight of an address (batch enrichment, before)"] = per_call(
        lambda i: cold.lookup_batch(ctxs[i].ip), 300
    )
    out["ip facts, first sight of an address"] = per_call(lambda i: cold.get(ctxs[i].ip), 1000)
    out["ip facts, cached"] = per_call(lambda i: cold.get(ctxs[0].ip), 20000)
    for c in ctxs:
        engine._ips.get(c.ip)
    sig = engine.signals
    out["request signals (ScalarSignals.compute)"] = per_call(
        lambda i: sig.compute(ctxs[i].prompt, ctxs[i].system_prompt, (), ctxs[i].n_messages), 2000
    )
    out["Engine.decide (IP cached)"] = per_call(lambda i: engine.decide(ctxs[i]), 2000)
    d = engine.decide(ctxs[0])
    out["Engine.record (online learning)"] = per_call(
        lambda i: engine.record(
            ctxs[i], d, status=200, output_tokens=150, reasoning_tokens=90, response_text="x" * 300
        ),
        2000,
    )
    import httpx

    async def answer() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=make_mock_upstream())
        async with httpx.AsyncClient(transport=transport, base_url="http://mock/v1") as cl:
            r = await cl.post(
                "/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "q"}]}
            )
            data: dict[str, Any] = r.json()
            return data

    data = asyncio.run(answer())
    text = data["choices"][0]["message"]["content"]
    out["protect_chat_completion (summary)"] = per_call(
        lambda i: protect.protect_chat_completion(copy.deepcopy(data), "summary"), 500
    )
    out["mark_text"] = per_call(lambda i: mark_text(text, MARK_KEY.encode(), "C-7"), 500)
    log = ExchangeLog(work / "micro-wal", ParquetSink(work / "micro-log"), fsync="none")
    log.start()
    rec = {
        "request_id": "r",
        "ts": time.time(),
        "account_id": "acct-00001",
        "org_id": None,
        "api_key_id": "k",
        "model": MODEL,
        "endpoint": "/v1/chat/completions",
        "ip": "192.0.2.1",
        "user_agent": _UAS[0],
        "tls_fingerprint": _JA4[0],
        "metadata": None,
        "conversation_id": None,
        "n_messages": 2,
        "system_prompt": _SYSTEMS[2],
        "prompt": ctxs[0].prompt,
        "tools": None,
        "response": text,
        "input_tokens": 100,
        "output_tokens": 150,
        "reasoning_tokens": 90,
        "max_tokens": 512,
        "temperature": 0.7,
        "stream": False,
        "status": 200,
        "action": "allow",
        "reasons": [],
        "campaign_id": None,
        "risk": 0.1,
        "protected": False,
        "marked": False,
    }

    async def appends(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            await log.append({**rec, "request_id": f"r{i}"})
        return (time.perf_counter() - t0) / n * 1e6

    out["exchange log append (fsync none)"] = asyncio.run(appends(3000))
    log.close()
    m = GatewayMetrics("open")

    def metrics(i: int) -> None:
        m.decisions.labels("allow").inc()
        m.requests.labels("chat", "200").inc()
        m.added_latency.labels("chat").observe(0.001)

    out["3 metric updates"] = per_call(metrics, 20000)
    from distillshield.gateway import _json

    raw_answer = json.dumps(data).encode()
    out["answer JSON parse, stdlib json"] = per_call(lambda i: json.loads(raw_answer), 5000)
    out["answer JSON parse, gateway (orjson when installed)"] = per_call(
        lambda i: _json.loads(raw_answer), 5000
    )
    out["answer JSON serialise, stdlib json"] = per_call(lambda i: json.dumps(data).encode(), 5000)
    out["answer JSON serialise, gateway"] = per_call(lambda i: _json.dumps(data), 5000)
    for k, v in out.items():
        print(f"{k}: {v:.1f} µs", flush=True)
    return out


def client_scaling(concurrency: list[int], n: int = 2048) -> dict[str, Any]:
    """CPU per request of the upstream client alone (httpx as the gateway configures it, and
    aiohttp) against the mock upstream, closed loop at each concurrency: the gateway's pool
    holds about as many connections as it has requests in flight."""
    import aiohttp
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "distillshield.cli", "gateway", "mock-upstream", "--port", str(port)]
    mock = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    body = {"model": MODEL, "messages": [{"role": "user", "content": _prompt(random.Random(1))}]}
    url = f"http://127.0.0.1:{port}/v1"

    async def measure(kind: str, c: int) -> float:
        if kind == "httpx":
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)  # the gateway's
            client: Any = httpx.AsyncClient(base_url=url, limits=limits, timeout=60)

            async def one() -> None:
                (await client.post("/chat/completions", json=body)).json()
        else:
            client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))

            async def one() -> None:
                async with client.post(url + "/chat/completions", json=body) as r:
                    await r.json()

        async def worker(k: int) -> None:
            for _ in range(k):
                await one()

        try:
            await asyncio.gather(*(worker(2) for _ in range(c)))  # open the connections
            t0 = time.process_time()
            await asyncio.gather(*(worker(max(1, n // c)) for _ in range(c)))
            return (time.process_time() - t0) * 1e3 / (max(1, n // c) * c)
        finally:
            await (client.aclose() if kind == "httpx" else client.close())

    out: dict[str, Any] = {}
    try:
        wait_http(Proc("upstream", mock, port, Path(os.devnull)), "/health", 60)
        for c in concurrency:
            out[str(c)] = {kind: asyncio.run(measure(kind, c)) for kind in ("httpx", "aiohttp")}
            print(f"concurrency {c}: client CPU ms/request {json.dumps(out[str(c)])}", flush=True)
    finally:
        os.killpg(mock.pid, signal.SIGTERM)
        mock.wait(timeout=20)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve-gateway":
        _serve_gateway(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_serve-floor":
        _serve_floor(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_serve-gateway-h11":
        _serve_gateway_h11(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--rates", default="50,200,1000")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds per phase excluded from the figures")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--max-conns", type=int, default=512, help="connection pool cap of the generator")
    ap.add_argument("--timeout", type=float, default=15.0, help="per-request timeout (an error)")
    ap.add_argument("--prime", type=int, default=4096, help="requests sent to each target before measuring")
    ap.add_argument("--mock-latency", type=float, default=0.0, help="seconds the mock waits before answering")
    ap.add_argument(
        "--profile", type=Path, default=None, help="profile the memory gateway instead (cProfile)"
    )
    ap.add_argument(
        "--client-scaling",
        action="store_true",
        help="only measure the upstream client's CPU per request (httpx vs aiohttp) at 4..512 in flight",
    )
    ap.add_argument("--micro", action="store_true", help="only time the gateway's own steps in process")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.micro:
        work = args.workdir or Path(f"/tmp/distillshield-bench-gateway-{os.getpid()}")
        res = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
        res["microseconds_per_call"] = micro(work)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
        return
    if args.client_scaling:
        res = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
        res["client_cpu_ms_per_request"] = client_scaling([4, 64, 256, 512])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1), encoding="utf-8")
        return
    rates = [float(r) for r in args.rates.split(",")]
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS) - set(FLOORS) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown configurations {sorted(unknown)}")
    if args.profile:
        configs = ["direct", "gateway-memory"]
    if "direct" not in configs:
        configs.insert(0, "direct")
    work = args.workdir or Path(f"/tmp/distillshield-bench-gateway-{os.getpid()}")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    command = " ".join(["python", "bench/bench_gateway.py", *sys.argv[1:]])
    py = sys.executable
    procs: dict[str, Proc] = {}
    started: list[Proc] = []
    env = {"DISTILLSHIELD_MARK_KEY": MARK_KEY, "PYTHONUNBUFFERED": "1"}
    try:
        redis_url = ""
        if any(c.startswith("gateway-redis") for c in configs):
            redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
            rport = free_port()
            rp = start(
                "redis",
                [redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                rport,
                work,
            )
            started.append(rp)
            redis_url = f"redis://127.0.0.1:{rport}/0"
            import redis

            t_end = time.monotonic() + 20
            while True:
                try:
                    redis.Redis.from_url(redis_url, socket_timeout=0.5).ping()
                    break
                except redis.RedisError:
                    if time.monotonic() > t_end:
                        raise
                    time.sleep(0.05)
        mport = free_port()
        mock = start(
            "upstream",
            [
                py,
                "-m",
                "distillshield.cli",
                "gateway",
                "mock-upstream",
                "--port",
                str(mport),
                "--latency",
                str(args.mock_latency),
            ],
            mport,
            work,
        )
        started.append(mock)
        wait_http(mock, "/health", 60)
        procs["direct"] = mock
        fx = write_fixtures(work, f"http://127.0.0.1:{mport}/v1", redis_url or "redis://127.0.0.1:1/0")
        if redis_url:
            version = publish_verdicts(redis_url, fx["det"])
            print(f"verdicts {version} published to {redis_url}", flush=True)
        startup: dict[str, float] = {}
        prof_stdin = None
        for cfg in configs:
            if cfg == "direct":
                continue
            port = free_port()
            if cfg in FLOORS:
                upstream = f"http://127.0.0.1:{mport}/v1"
                cmd = [py, str(Path(__file__).resolve()), "_serve-floor", cfg, upstream, str(port)]
                proc = start(cfg, cmd, port, work, env)
                started.append(proc)
                startup[cfg] = wait_http(proc, "/healthz", 60)
            elif cfg.startswith("gateway"):
                if args.profile:
                    p = subprocess.Popen(
                        [
                            py,
                            str(Path(__file__).resolve()),
                            "_serve-gateway",
                            str(fx[cfg]),
                            str(port),
                            str(args.profile),
                        ],
                        cwd=work,
                        env={**os.environ, **env},
                        stdin=subprocess.PIPE,
                        stdout=(work / f"{cfg}.log").open("wb"),
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    prof_stdin = p.stdin
                    proc = Proc(cfg, p, port, work / f"{cfg}.log")
                elif cfg == "gateway-httpx-h11":
                    cmd = [py, str(Path(__file__).resolve()), "_serve-gateway-h11", str(fx[cfg]), str(port)]
                    proc = start(cfg, cmd, port, work, env)
                else:
                    cmd = [
                        py,
                        "-m",
                        "distillshield.cli",
                        "gateway",
                        "--config",
                        str(fx[cfg]),
                        "--port",
                        str(port),
                    ]
                    proc = start(cfg, cmd, port, work, env)
                started.append(proc)
                startup[cfg] = wait_http(proc, "/healthz", 120)
            else:
                lenv = {
                    **env,
                    **LITELLM_ENV,
                    "PYTHONPATH": os.pathsep.join(
                        filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])
                    ),
                    "DISTILLSHIELD_BENCH_KEYS": str(fx["keys"]),
                }
                cmd = [
                    *litellm_command(),
                    "--config",
                    str(fx[cfg]),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ]
                proc = start(cfg, cmd, port, work, lenv)
                started.append(proc)
                startup[cfg] = wait_http(proc, "/health/liveliness", 400)
            procs[cfg] = proc
            print(f"{cfg} up on :{port} in {startup[cfg]:.1f} s", flush=True)
        corpus = Corpus.build()
        checks = sanity(procs, corpus)
        for name, row in checks.items():
            print(f"sanity {name}: " + "; ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        priming: dict[str, Any] = {}
        for cfg, proc in procs.items():
            t0 = time.perf_counter()
            statuses = asyncio.run(_prime(proc.port, corpus, 8, args.prime))
            priming[cfg] = {"seconds": time.perf_counter() - t0, "statuses": dict(statuses)}
            took = priming[cfg]["seconds"]
            print(
                f"primed {cfg}: {len(corpus.requests)} requests in {took:.1f} s {dict(statuses)}", flush=True
            )
        kinds = Counter(corpus.kinds)
        if args.profile:
            os.kill(procs["gateway-memory"].pid, signal.SIGUSR1)
        phases: list[dict[str, Any]] = []
        reps = 1 if args.profile else args.repeat
        plan_rates = rates[:1] if args.profile else rates
        for rep in range(reps):
            for ri, rate in enumerate(plan_rates):
                k = (rep + ri) % len(configs)
                order = configs[k:] + configs[:k]
                for cfg in order:
                    proc = procs[cfg]
                    others = [p for p in started if p.name in ("upstream", "redis") or p.name == cfg]
                    seed = 1000 * rep + int(rate)
                    res = run_phase(proc, corpus, rate, args, seed, others, os.getpid())
                    res.update(config=cfg, rate=rate, rep=rep)
                    phases.append(res)
                    print(phase_line(res), flush=True)
                    res["quiesce_s"] = quiesce([p for p in started if p.name != "redis"])
        if prof_stdin is not None:
            prof_stdin.close()
            procs["gateway-memory"].popen.wait(timeout=60)
        agg = aggregate(phases, configs, plan_rates)
        md = table(agg, configs, plan_rates)
        print()
        print(md)
        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "machine": machine(),
            "settings": {
                "rates": plan_rates,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": reps,
                "configs": configs,
                "max_conns": args.max_conns,
                "prime": args.prime,
                "timeout_s": args.timeout,
                "mock_latency_s": args.mock_latency,
                "keys": N_KEYS,
                "active_accounts": N_ACTIVE,
                "mix": dict(MIX),
                "corpus_kinds": dict(kinds),
                "prompt_chars_min_median_max": corpus.prompt_chars,
            },
            "startup_s": startup,
            "priming": priming,
            "sanity": checks,
            "aggregate": agg,
            "phases": phases,
            "table_markdown": md,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        print(f"\nresults: {args.out}")
        if args.profile:
            print(f"profile: {args.profile}")
    finally:
        for p in reversed(started):
            p.stop()


if __name__ == "__main__":
    main()
