"""The OpenAI-compatible enforcement proxy (Starlette + httpx; served by uvicorn).

One request: authenticate the API key → parse the body (size-limited, OpenAI-style errors
for malformed JSON) → :meth:`Engine.decide_policy` → rate-limit buckets for throttled
accounts/campaigns (shared store) → block / throttle / refuse, or forward to the upstream
→ protect reasoning and mark the answer while it streams → append the exchange to the
crash-safe log → answer → learn online (a unary answer's learning once it is out).
Decisions are explained in ``x-distillshield-action`` and ``x-distillshield-reasons``
response headers and in the log.

The upstream is an injectable :class:`httpx.AsyncBaseTransport` so tests and benchmarks
never touch the network. Background tasks poll the shared store for new batch verdicts and
the policy file for edits: both are swapped in without a restart. Another shares the
per-account online state with the other workers through the store (``_share.py``), so the
online risk model sees an account's traffic fleet-wide, never touching the store per request.

Failure modes (``fail_mode`` in the policy): when the shared store is unreachable, ``open``
keeps serving with the last known verdicts and in-process rate limits; ``closed`` answers
503 until the store is back. Either way ``distillshield_store_degraded`` and
``distillshield_fail_mode_applied`` say so. Authentication never fails open: a key that is
neither cached nor resolvable is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from distillshield.gateway._json import dumps, loads
from distillshield.gateway._metrics import GatewayMetrics
from distillshield.gateway._request import (
    BadRequestError,
    content_text,
    parse_chat,
    parse_responses,
    request_context,
)
from distillshield.gateway._share import OnlineShare
from distillshield.gateway._store import KeyRecord, MemoryStore, StoreUnavailable, hash_key, open_store
from distillshield.gateway._types import Action, Decision, RequestContext
from distillshield.gateway._upstream import (
    UpstreamClient,
    UpstreamReply,
    UpstreamTimeout,
    UpstreamUnavailable,
    make_upstream,
)
from distillshield.gateway.config import ConfigError, GatewayConfig
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from distillshield.gateway.risk import OnlineRisk, online_risk
from distillshield.gateway.verdicts import VerdictSet, build_verdicts

__all__ = ["BadRequestError", "Gateway", "create_app", "open_exchange_log", "parse_chat", "parse_responses"]

log = logging.getLogger("distillshield.gateway")

#: Hop-by-hop and framing headers never copied between client and upstream (RFC 9110 §7.6.1).
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
        "content-encoding",
    }
)


def _error(status: int, message: str, type_: str, code: str | None = None, **headers: str) -> JSONResponse:
    """An OpenAI-style error body, so clients raise their usual exception types."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(slots=True)
class _Exchange:
    """What the log needs about one exchange, filled in as the response is produced."""

    ctx: RequestContext
    key: KeyRecord
    decision: Decision
    status: int = 0
    response_text: str | None = None
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    input_tokens: int = 0
    protected: bool = False
    marked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


#: What the online learning of one exchange reads (:meth:`Gateway._learn`): the context, the
#: decision, the status, the output and reasoning token counts and the response text.
_Learn = tuple[RequestContext, Decision, int, int, int | None, str | None]


class _Timing:
    """Per request: when it reached the gateway, and how long it waited on the upstream since
    (time to the upstream's response headers, to its body, and between stream chunks); and,
    when the app runs it after the response (``learn`` not ``None``), the online learning the
    request still owes (see :meth:`Gateway._finish`)."""

    __slots__ = ("learn", "t0", "upstream_s")

    def __init__(self, t0: float, *, defer_learning: bool = False) -> None:
        self.t0 = t0
        self.upstream_s = 0.0
        self.learn: list[_Learn] | None = [] if defer_learning else None


_TIMING_KEY = "distillshield.timing"
#: How often a worker of several writes its state gauges (exchange log, online states) for the
#: others' scrapes.
_STATE_METRICS_S = 1.0


def _timing_of(scope: Scope, clock: Callable[[], float]) -> _Timing:
    timing = scope.get(_TIMING_KEY)
    if timing is None:  # called from elsewhere than _GatewayApp (embedding): time from here
        timing = scope[_TIMING_KEY] = _Timing(clock())
    return timing


class _Admission:
    """At most ``limit`` requests in the gateway at once (0: no limit), ``queue`` more waiting
    for a slot for at most ``timeout_s``; the rest are turned away at once with 503 +
    ``Retry-After`` instead of queueing until every request is late (see GatewayConfig)."""

    def __init__(self, limit: int, queue: int, timeout_s: float) -> None:
        self.limit, self.queue, self.timeout_s = limit, queue, timeout_s
        self.in_flight = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    async def acquire(self) -> str | None:
        """``None`` when admitted (call :meth:`release` after), else why not."""
        if not self.limit:
            self.in_flight += 1
            return None
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        if self._sem.locked():
            if self.waiting >= self.queue:
                return "queue_full"
            self.waiting += 1
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._sem.acquire()
            except TimeoutError:
                return "queue_timeout"
            finally:
                self.waiting -= 1
        else:
            await self._sem.acquire()
        self.in_flight += 1
        return None

    def release(self) -> None:
        self.in_flight -= 1
        if self._sem is not None:
            self._sem.release()


#: The proxied endpoints, by path: what :class:`_GatewayApp` times and admits.
_PROXIED = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}


#: Cyclic-GC thresholds while serving (CPython's default: 700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)


def _tune_gc() -> None:
    """Fewer, shorter collector pauses on the event loop (``gc_tune``; docs/gateway.md).

    What start-up loaded (enrichment tables, verdicts, keys, policy) lives as long as the
    process: frozen, the full collections stop rescanning it. And a request's garbage is freed
    by reference counting as it ends; the few cycles it leaves (exception tracebacks, task
    references) are collected by a young-generation pass every ``GC_THRESHOLDS[0]`` net
    allocations instead of every 700, so the collector runs rarely rather than hundreds of
    times a minute. Measured under load before this: gen-2 collections up to 143 ms, gen-1
    ones up to 15 ms (docs/benchmarks.md, "Gateway latency").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class _GatewayApp(Starlette):
    """The Starlette app, with the two proxied endpoints served on a short path.

    A ``POST`` to ``/v1/chat/completions`` or ``/v1/responses`` goes straight to
    :meth:`Gateway.handle` — no routing table, no middleware stack: per request that is a
    tenth of a millisecond the gateway's latency budget cannot spare — with admission control
    and the ``distillshield_added_latency_seconds`` histogram around it: the request's whole
    time in the app (from the ASGI call, before the body is read and parsed, to the last byte
    handed to the server, streams included) minus the time it waited on the upstream. The
    online learning of a unary exchange runs after that (its log record does not: it is in
    the log before the answer ends), so no answer waits for it; the event loop does not switch
    to another request in between unless writing the answer had to wait for the client. A
    stream learns before its last events, as it logs (:meth:`Gateway._relay`).
    Everything else (admin, metrics, other methods) takes Starlette's usual path.
    """

    gateway: Gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _PROXIED.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        gw = self.gateway
        timing = scope[_TIMING_KEY] = _Timing(gw.perf_clock(), defer_learning=True)
        refused = await gw.admission.acquire()
        try:
            if refused is not None:
                gw.metrics.admission_rejected.labels(refused).inc()
                gw.metrics.request(endpoint, "503").inc()
                response: Response = _error(
                    503,
                    "The gateway is at capacity; retry shortly.",
                    "server_error",
                    "gateway_overloaded",
                    **{"Retry-After": "1"},
                )
            else:
                gw.metrics.in_flight.set(gw.admission.in_flight)
                try:
                    response = await gw.handle(Request(scope, receive), endpoint)
                except Exception:  # a bug must not take the connection down without an answer
                    log.exception("unhandled error on %s", scope["path"])
                    gw.metrics.request(endpoint, "500").inc()
                    response = _error(
                        500, "The gateway failed on this request.", "server_error", "internal_error"
                    )
            await response(scope, receive, send)
        finally:
            if refused is None:
                gw.admission.release()
                gw.metrics.in_flight.set(gw.admission.in_flight)
            gw.metrics.latency(endpoint).observe(max(0.0, gw.perf_clock() - timing.t0 - timing.upstream_s))
            if timing.learn:  # after the last byte went to the server: no answer waits for it
                for owed in timing.learn:
                    gw._learn(owed)


class Gateway:
    """The proxy's state and handlers; :func:`create_app` wraps it in a Starlette app."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: Any = None,
        upstream: UpstreamClient | None = None,
        store: Any = None,
        engine: Engine | None = None,
        exchange_log: Any = None,
        clock: Callable[[], float] = time.time,
        perf_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.config = config
        self.clock = clock
        self.perf_clock = perf_clock
        shared_store = store is not None
        self.store = (
            store if store is not None else open_store(config.store, timeout_s=config.store_timeout_s)
        )
        self.policy_path = Path(config.policy) if config.policy else DEFAULT_POLICY
        self._policy_mtime = self._mtime()
        policy = load_policy(self.policy_path)
        self.metrics = GatewayMetrics(policy.fail_mode, multiprocess_dir=config.metrics_dir)
        self.engine = engine or Engine(
            policy,
            account_facts=self._account_facts,
            risk=online_risk(
                config.online_model, model_at=config.online_model_at, max_accounts=config.online_max_accounts
            ),
        )
        if engine is not None:
            self.engine.set_policy(policy)
        if config.verdicts:
            self.engine.set_verdicts(build_verdicts(config.verdicts))
        self._verdict_version: str | None = None
        self.worker_id = config.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        # per-account online state shared through the store; a memory:// store the gateway
        # opened itself is this process's alone: there is no other worker to share with
        self.online_share: OnlineShare | None = None
        if (
            config.online_sync_s > 0
            and isinstance(self.engine.risk, OnlineRisk)
            and (shared_store or not isinstance(self.store, MemoryStore))
        ):
            self.online_share = OnlineShare(self.engine.risk, self.store, self.worker_id)
        self.exchange_log = exchange_log
        self._keys: dict[str, tuple[KeyRecord, float]] = {}
        self._accounts: dict[str, KeyRecord] = {}
        self.degraded = False
        self.admin_token = config.secret(config.admin_token_env)
        self.mark_key = (config.secret(config.mark_key_env) or "").encode() or None
        headers = {}
        upstream_key = config.secret(config.upstream_api_key_env)
        if upstream_key:
            headers["authorization"] = f"Bearer {upstream_key}"
        self.upstream: UpstreamClient = upstream or make_upstream(
            config.upstream_client,
            config.upstream,
            transport=transport,
            headers=headers,
            timeout_s=config.upstream_timeout_s,
            connect_timeout_s=config.upstream_connect_timeout_s,
        )
        self.admission = _Admission(config.max_in_flight, config.max_queued, config.queue_timeout_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._verifier: Any = None
        self._verifier_verdicts: VerdictSet | None = None
        self._verifier_peers: tuple[tuple[str, float], ...] | None = None
        self._peers_built: float | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def _mtime(self) -> float:
        try:
            return self.policy_path.stat().st_mtime
        except OSError:
            return 0.0

    async def load_keys_file(self) -> int:
        """Register the keys of ``config.keys_file`` (hashes, or secrets hashed on load)."""
        path = self.config.keys_file
        if not path:
            return 0
        n = 0
        for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key_hash = row.pop("key_sha256", None) or hash_key(row.pop("key"))
                row.setdefault("key_id", f"key_{key_hash[:12]}")
                record = KeyRecord(**row)
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{lineno}: not a key record: {exc}") from exc
            await self.store.put_key(key_hash, record)
            n += 1
        return n

    async def startup(self) -> None:
        if self.config.verify_peers:
            self._load_peers()  # a peers' file that cannot be used stops the start, with its reason
        await self.load_keys_file()
        if self.exchange_log is None:
            self.exchange_log = self._open_log()
        if self.exchange_log is not None:
            await _maybe_await(self.exchange_log.start())
        await self.refresh_verdicts()
        await asyncio.to_thread(self.engine.warm)
        await asyncio.to_thread(_warm_answer_paths)
        if self.config.gc_tune:
            _tune_gc()
        self._tasks = [
            asyncio.create_task(self._every(self.config.verdict_refresh_s, self.refresh_verdicts)),
            asyncio.create_task(self._every(self.config.policy_refresh_s, self.reload_policy_if_changed)),
        ]
        if self.online_share is not None:
            self._tasks.append(asyncio.create_task(self._every(self.config.online_sync_s, self.sync_online)))
        if self.metrics.multiprocess_dir is not None:
            # a scrape reaches one worker: the others' state gauges must already be in their files
            self._tasks.append(
                asyncio.create_task(self._every(_STATE_METRICS_S, self._publish_state_metrics))
            )

    async def shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.sync_online()  # what was learned since the last round reaches the fleet
        if self.exchange_log is not None:
            closer = getattr(self.exchange_log, "aclose", None) or self.exchange_log.close
            await _maybe_await(closer())
        await self.upstream.aclose()
        await self.store.close()
        self.metrics.process_exited()

    def _open_log(self) -> Any:
        return open_exchange_log(self.config)

    async def _every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception:  # a background refresh must never die silently
                log.exception("background task %s failed", getattr(fn, "__name__", fn))

    async def refresh_verdicts(self) -> None:
        """Load the store's verdicts when their version changed (hot reload)."""
        try:
            version = await self.store.verdict_version()
            if version is not None and version != self._verdict_version:
                blob = await self.store.get_verdicts(version)
                if blob is not None:
                    verdicts = VerdictSet.from_bytes(blob)
                    self.engine.set_verdicts(verdicts)
                    self._verdict_version = version
                    self.metrics.verdict_version.set(self.clock())
                    self.metrics.verdict_accounts.set(len(verdicts.accounts))
                    log.info("verdicts %s loaded: %d accounts", version, len(verdicts.accounts))
            await self.store.ping()
            self._set_degraded(False)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("verdicts").inc()
            self._set_degraded(True, str(exc))

    async def sync_online(self) -> None:
        """Share this worker's per-account online state with the fleet (one round; the
        background task calls it every ``online_sync_s``). A store failure degrades to
        local-only state — this worker keeps learning, with the peers it last read — and is
        counted like every store failure; the changed accounts are retried next round."""
        if self.online_share is None:
            return
        try:
            synced = await self.online_share.sync()
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("online_sync").inc()
            self._set_degraded(True, str(exc))
            return
        share = self.online_share
        self.metrics.cohort_values_synced.inc(share.values_synced)
        self.metrics.cohorts_fired_by_fleet.inc(share.cohorts_fired)
        if synced or share.values_synced:
            self.metrics.online_synced.inc(synced)
            self._set_degraded(False)  # the store answered

    def _set_degraded(self, value: bool, why: str = "") -> None:
        if value != self.degraded:
            (log.warning if value else log.info)(
                "shared store %s%s", "unreachable: " if value else "reachable again", why
            )
        self.degraded = value
        self.metrics.store_degraded.set(1 if value else 0)

    async def reload_policy_if_changed(self) -> None:
        mtime = self._mtime()
        if mtime != self._policy_mtime:
            self._policy_mtime = mtime
            self.reload_policy()

    def reload_policy(self) -> Policy | None:
        try:
            policy = load_policy(self.policy_path)
        except PolicyError as exc:
            self.metrics.policy_reloads.labels("rejected").inc()
            log.error("policy reload rejected, keeping the previous policy: %s", exc)
            return None
        self.engine.set_policy(policy)
        self.metrics.set_fail_mode(policy.fail_mode)
        self.metrics.policy_reloads.labels("ok").inc()
        log.info("policy reloaded from %s: rules %s", self.policy_path, ", ".join(policy.rule_ids))
        return policy

    def verifier(self) -> Any:
        """The sign-up verifier, rebuilt when the verdicts or the peers' files change (or the
        peers' index is an hour old: expired indicators drop out); velocity state carries over."""
        from distillshield.access import Verifier

        current = self.engine.verdicts
        peers_stamp = self._peers_stamp()
        stale = self._peers_built is not None and time.monotonic() - self._peers_built > 3600.0
        if (
            self._verifier is None
            or self._verifier_verdicts is not current
            or peers_stamp != self._verifier_peers
            or stale
        ):
            old = self._verifier.state if self._verifier is not None else None
            try:
                peers, key = self._load_peers() if self.config.verify_peers else (None, None)
            except (ConfigError, OSError) as exc:
                if self._verifier is None:
                    raise
                # a bad edit of a peers' file: keep answering with what was loaded before
                log.error("verify_peers not reloaded, the previous indicators stay: %s", exc)
                self._verifier_peers = peers_stamp
                return self._verifier
            self._verifier = Verifier(verdicts=current, state=old, peers=peers, peer_key=key)
            self._verifier_verdicts = current
            self._verifier_peers = peers_stamp
        return self._verifier

    def _peers_stamp(self) -> tuple[tuple[str, float], ...]:
        out = []
        for path in self.config.verify_peers:
            try:
                out.append((path, os.stat(path).st_mtime))
            except OSError:
                out.append((path, -1.0))
        return tuple(out)

    def _load_peers(self) -> tuple[Any, bytes | None]:
        """Peers' indicators for the verifier; a bundle that cannot be used is a config error."""
        from distillshield.intel import IntelError
        from distillshield.intel._keyed import parse_key
        from distillshield.intel.peers import load_peer_index

        secret = self.config.secret(self.config.peer_key_env)
        key = parse_key(secret.encode("utf-8")) if secret else None
        as_of = datetime.fromtimestamp(time.time(), UTC)
        try:
            paths = [Path(p) for p in self.config.verify_peers]
            index, _ = load_peer_index(paths, community_key=key, as_of=as_of)
        except IntelError as exc:
            raise ConfigError(f"verify_peers: {exc}") from exc
        self._peers_built = time.monotonic()
        return index, key

    # -- identity -------------------------------------------------------------------------
    def _account_facts(self, account_id: str) -> KeyRecord | None:
        return self._accounts.get(account_id)

    async def resolve_key(self, request: Request) -> KeyRecord | Response:
        return await self._resolve_auth(request.headers.get("authorization", ""))

    async def _resolve_auth(self, auth: str) -> KeyRecord | Response:
        """The key record of an ``Authorization`` header's value, or the 401/503 answer."""
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return _error(
                401,
                "Missing API key (Authorization: Bearer ...).",
                "invalid_request_error",
                "invalid_api_key",
            )
        key_hash = hash_key(secret.strip())
        now = self.clock()
        cached = self._keys.get(key_hash)
        if cached is not None and now - cached[1] <= self.config.key_cache_s:
            record: KeyRecord | None = cached[0]
        else:
            try:
                record = await self.store.get_key(key_hash)
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("keys").inc()
                self._set_degraded(True, str(exc))
                if cached is None:  # authentication never fails open
                    return _error(
                        503,
                        "Key registry unavailable; retry shortly.",
                        "server_error",
                        "store_unavailable",
                        **{"Retry-After": "1"},
                    )
                record = cached[0]
            if record is not None:
                self._keys[key_hash] = (record, now)
                self._accounts[record.account_id] = record
        if record is None or record.disabled:
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return record

    async def check_admin(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not self.admin_token or not secrets.compare_digest(auth, f"Bearer {self.admin_token}"):
            return _error(401, "Admin credentials required.", "invalid_request_error", "invalid_admin_token")
        return None

    # -- decisions ------------------------------------------------------------------------
    def client_ip(self, request: Request) -> str:
        return self._client_ip(request.scope, request.headers)

    def _client_ip(self, scope: Scope, headers: Any) -> str:
        """``headers``: a mapping of lower-case header names to (first) values."""
        if self.config.trust_forwarded_for:
            fwd = headers.get("x-forwarded-for")
            if fwd:
                return str(fwd).split(",")[0].strip()
        client = scope.get("client")
        return client[0] if client is not None else "0.0.0.0"

    async def decide(self, ctx: RequestContext) -> Decision:
        policy = self.engine.policy
        if self.degraded and policy.fail_mode == "closed":
            self.metrics.fail_mode_applied.labels("closed").inc()
            return Decision(
                actions=frozenset({Action.BLOCK}),
                reasons=("fail:closed:store_unavailable",),
                fail_mode="closed",
                retry_after=1.0,
            )
        if isinstance(self.store, MemoryStore):
            decision = self.engine.decide(ctx)
        else:
            decision = self.engine.decide_policy(ctx)
            if Action.THROTTLE in decision.actions:
                decision = await self._throttle(ctx, decision)
        return decision

    async def _throttle(self, ctx: RequestContext, decision: Decision) -> Decision:
        wait = 0.0
        try:
            for name, rate, burst in self.engine.buckets(decision, ctx):
                wait = max(wait, await self.store.take(name, rate, burst, ctx.ts))
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("rate_limit").inc()
            self._set_degraded(True, str(exc))
            mode = self.engine.policy.fail_mode
            self.metrics.fail_mode_applied.labels(mode).inc()
            if mode == "closed":
                return replace(
                    decision,
                    retry_after=1.0,
                    fail_mode="closed",
                    reasons=(*decision.reasons, "fail:closed:rate_limit_unavailable"),
                )
            # open: fall back to this process's own buckets rather than no limit at all (the
            # decision's facts and signals stand: only the rate limit is resolved again)
            local = self.engine.throttle_locally(decision, ctx)
            return replace(local, fail_mode="open", reasons=(*local.reasons, "fail:open:local_rate_limit"))
        return self.engine.apply_throttle(decision, wait)

    # -- handlers -------------------------------------------------------------------------
    async def _read_body(self, request: Request) -> bytes | Response:
        """The raw request body, refused with 413 past ``max_request_bytes``."""
        return await self._receive_body(request.receive, request.headers.get("content-length"))

    async def _receive_body(self, receive: Receive, declared: str | None) -> bytes | Response:
        """:meth:`_read_body` from the ASGI ``receive`` (what ``Request.stream`` does, without
        its async generator); ``declared`` is the ``Content-Length`` header."""
        limit = self.config.max_request_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        return _too_large(limit)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _read_json(self, request: Request) -> dict[str, Any] | Response:
        raw = await self._read_body(request)
        if isinstance(raw, Response):
            return raw
        return _parse_object(raw)

    async def handle(self, request: Request, endpoint: str) -> Response:
        scope = request.scope
        timing = _timing_of(scope, self.perf_clock)
        headers_in = _first_headers(scope["headers"])
        key = await self._resolve_auth(headers_in.get("authorization", ""))
        if isinstance(key, Response):
            self.metrics.request(endpoint, str(key.status_code)).inc()
            return key
        raw = await self._receive_body(request.receive, headers_in.get("content-length"))
        body = raw if isinstance(raw, Response) else _parse_object(raw)
        if isinstance(body, Response):
            self.metrics.request(endpoint, str(body.status_code)).inc()
            return body
        assert isinstance(raw, bytes)
        try:
            parsed = parse_chat(body) if endpoint == "chat" else parse_responses(body)
        except BadRequestError as exc:
            self.metrics.request(endpoint, "400").inc()
            return _error(400, str(exc), "invalid_request_error", "invalid_request")
        tls_header = self.config.tls_fingerprint_header
        ctx = request_context(
            parsed,
            request_id=_request_id(),
            ts=self.clock(),
            account_id=key.account_id,
            api_key_id=key.key_id,
            model=body["model"],
            endpoint="/v1/chat/completions" if endpoint == "chat" else "/v1/responses",
            ip=self._client_ip(scope, headers_in),
            user_agent=headers_in.get("user-agent"),
            tls_fingerprint=headers_in.get(tls_header.lower()) if tls_header else None,
        )
        decision = await self.decide(ctx)
        self._count(decision)
        ex = _Exchange(ctx, key, decision)
        headers = self._decision_headers(decision, ctx)
        stop = self._stop_response(decision, headers)
        if stop is not None:
            ex.status = stop.status_code
            await self._finish(ex, timing)
            self.metrics.request(endpoint, str(stop.status_code)).inc()
            return stop
        path = "/chat/completions" if endpoint == "chat" else "/responses"
        if parsed.stream and endpoint == "chat" and not _includes_usage(body):
            raw = dumps(_with_usage(body))  # the log needs the token counts: ask for the usage chunk
        up_headers = _forward(scope["headers"], json_body=True)
        reply = await self._call_upstream(ex, endpoint, timing, path, raw, up_headers, read=not parsed.stream)
        if isinstance(reply, Response):
            return reply
        upstream, content = reply
        ex.status = upstream.status
        out_headers = {**_passthrough(upstream.headers), **headers}
        if upstream.status != 200:
            self.metrics.upstream_errors.labels(f"status_{upstream.status // 100}xx").inc()
            await self._finish(ex, timing)
            self.metrics.request(endpoint, str(upstream.status)).inc()
            return Response(content, status_code=upstream.status, headers=out_headers)
        self.metrics.request(endpoint, "200").inc()
        if parsed.stream:
            transform = _StreamTransform(ex, endpoint, self.mark_key)
            return StreamingResponse(
                self._relay(upstream, transform, ex, timing),
                status_code=200,
                headers=out_headers,
                media_type="text/event-stream",
            )
        assert content is not None
        return await self._unary(ex, content, out_headers, endpoint, timing)

    async def _call_upstream(
        self,
        ex: _Exchange,
        endpoint: str,
        timing: _Timing,
        path: str,
        payload: bytes,
        up_headers: dict[str, str],
        *,
        read: bool,
    ) -> tuple[UpstreamReply, bytes | None] | Response:
        """Send ``payload`` upstream under the gateway's deadline and, when ``read`` (or on an
        error status), read the answer whole. An unreachable or timed-out upstream is logged
        and answered here (502 / 504, OpenAI-style). Time spent waiting is upstream time."""
        t_up = self.perf_clock()
        try:
            # a deadline of our own: transports without socket timeouts (ASGI, custom) honour it too
            async with asyncio.timeout(self.config.upstream_timeout_s):
                reply = await self.upstream.send("POST", path, payload, up_headers)
                content = await reply.read() if read or reply.status != 200 else None
        except (TimeoutError, UpstreamTimeout):
            self.metrics.upstream_errors.labels("timeout").inc()
            resp = _error(504, "The model server did not answer in time.", "server_error", "upstream_timeout")
        except UpstreamUnavailable as exc:
            self.metrics.upstream_errors.labels("connect").inc()
            resp = _error(
                502, f"The model server is unreachable: {exc}.", "server_error", "upstream_unavailable"
            )
        else:
            return reply, content
        finally:
            timing.upstream_s += self.perf_clock() - t_up
        ex.status = resp.status_code
        await self._finish(ex, timing)
        self.metrics.request(endpoint, str(resp.status_code)).inc()
        return resp

    def _count(self, decision: Decision) -> None:
        self.metrics.decision(_action_names(decision.actions)[0]).inc()
        for r in decision.reasons:
            if r.startswith("rule:"):
                self.metrics.rule(r[5:]).inc()

    def _decision_headers(self, decision: Decision, ctx: RequestContext) -> dict[str, str]:
        return {
            "x-request-id": ctx.request_id,
            "x-distillshield-action": _action_names(decision.actions)[1],
            "x-distillshield-reasons": ";".join(r for r in decision.reasons if not r.startswith("campaign:")),
        }

    def _stop_response(self, decision: Decision, headers: dict[str, str]) -> Response | None:
        if decision.fail_mode == "closed":
            return _error(
                503,
                "Enforcement store unavailable and the gateway fails closed; retry shortly.",
                "server_error",
                "store_unavailable",
                **headers,
                **{"Retry-After": "1"},
            )
        if decision.action is Action.BLOCK:
            return _error(
                403,
                "This account is not permitted to use the API (reason codes in x-distillshield-reasons).",
                "permission_error",
                "distillshield_blocked",
                **headers,
            )
        if decision.action is Action.THROTTLE:
            wait = str(max(1, math.ceil(decision.retry_after or 1.0)))
            return _error(
                429,
                "Rate limit exceeded for this account.",
                "rate_limit_error",
                "distillshield_throttled",
                **headers,
                **{"Retry-After": wait},
            )
        if decision.refuse_reasoning_request:
            return _error(
                403,
                "Requests to reveal the model's hidden reasoning are not permitted.",
                "permission_error",
                "reasoning_request_refused",
                **headers,
            )
        return None

    def _forward_headers(self, request: Request, *, json_body: bool = True) -> dict[str, str]:
        return _forward(request.scope["headers"], json_body=json_body)

    async def _unary(
        self, ex: _Exchange, content: bytes, out_headers: dict[str, str], endpoint: str, timing: _Timing
    ) -> Response:
        try:
            data = loads(content)
        except ValueError:
            data = None
        if not isinstance(data, dict):  # not a JSON object: relayed as is
            await self._finish(ex, timing)
            return Response(content, status_code=200, headers=out_headers)
        new = self._transform_unary(ex, data, endpoint)
        await self._finish(ex, timing)
        if new is data:  # nothing rewritten: the upstream's bytes, untouched
            return Response(content, status_code=200, headers=out_headers)
        out_headers.pop("content-type", None)
        return Response(dumps(new), status_code=200, headers=out_headers, media_type="application/json")

    def _transform_unary(self, ex: _Exchange, data: dict[str, Any], endpoint: str) -> dict[str, Any]:
        d = ex.decision
        if Action.PROTECT in d.actions:
            from distillshield.gateway import protect

            fn = protect.protect_chat_completion if endpoint == "chat" else protect.protect_response
            data, report = fn(data, d.protect_mode)
            ex.protected = _report_changed(report)
        if Action.MARK in d.actions and d.mark_tag and self.mark_key:
            data = _mark_body(data, self.mark_key, d.mark_tag, endpoint)
            ex.marked = True
        raw_usage = data.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        if endpoint == "chat":
            choices = data.get("choices") or [{}]
            msg = choices[0].get("message") or {} if isinstance(choices[0], dict) else {}
            ex.response_text = content_text(msg.get("content"))
            ex.output_tokens = int(usage.get("completion_tokens") or 0)
            ex.input_tokens = int(usage.get("prompt_tokens") or 0)
            details = usage.get("completion_tokens_details") or {}
        else:
            ex.response_text = _responses_text(data)
            ex.output_tokens = int(usage.get("output_tokens") or 0)
            ex.input_tokens = int(usage.get("input_tokens") or 0)
            details = usage.get("output_tokens_details") or {}
        rt = details.get("reasoning_tokens") if isinstance(details, dict) else None
        ex.reasoning_tokens = int(rt) if isinstance(rt, int) else None
        return data

    async def _relay(
        self, reply: UpstreamReply, transform: _StreamTransform, ex: _Exchange, timing: _Timing
    ) -> AsyncIterator[bytes]:
        buf = b""
        done = False
        chunks = reply.chunks()
        try:
            while True:
                t_up = self.perf_clock()
                try:
                    async with asyncio.timeout(self.config.upstream_timeout_s):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise UpstreamTimeout("upstream stream stalled") from exc
                finally:
                    timing.upstream_s += self.perf_clock() - t_up
                buf += chunk
                while True:
                    cut = buf.find(b"\n\n")
                    if cut < 0:
                        break
                    event, buf = buf[: cut + 2], buf[cut + 2 :]
                    if event.startswith(b"data: [DONE]") or (not transform.chat and _is_final(event)):
                        done = True
                        tail = transform.finish()
                        last = [event] if event.startswith(b"data: [DONE]") else transform.feed(event)
                        transform.close()
                        # the record is in the log before the client sees the end of the stream;
                        # the learning too (the rest of the stream awaits the upstream: others
                        # run meanwhile, and the client may have sent its next request)
                        await self._finish(ex)
                        for out in (*tail, *last):
                            yield out
                        continue
                    for out in transform.feed(event):
                        yield out
            if buf:
                for out in transform.feed(buf):
                    yield out
        except (UpstreamTimeout, UpstreamUnavailable) as exc:
            self.metrics.upstream_errors.labels("stream").inc()
            ex.status = 502
            err = {"error": {"message": f"upstream stream failed: {exc}", "type": "server_error"}}
            yield b"data: " + dumps(err) + b"\n\n"
        finally:
            with contextlib.suppress(Exception):
                await chunks.aclose()  # type: ignore[attr-defined]
            await reply.aclose()
            if not done:
                transform.close()
                await self._finish(ex)

    async def _finish(self, ex: _Exchange, timing: _Timing | None = None) -> None:
        """Log the exchange (acknowledged once ``append`` returns) and learn online from it.

        The log record is written here, before the client can see the end of the answer. The
        learning is owed to ``timing`` when given one that takes it (a unary answer served by
        :class:`_GatewayApp`, which learns once the answer is out: the exchange as it is now),
        so no answer waits for it; else (streams, an embedding that calls :meth:`handle`
        itself) it is done here, first."""
        owed: _Learn = (
            ex.ctx,
            ex.decision,
            ex.status,
            ex.output_tokens,
            ex.reasoning_tokens,
            ex.response_text,
        )
        if timing is not None and timing.learn is not None:
            timing.learn.append(owed)
        else:
            self._learn(owed)
        if self.exchange_log is None:
            return
        await _maybe_await(self.exchange_log.append(self._record(ex)))

    def _learn(self, owed: _Learn) -> None:
        ctx, decision, status, output_tokens, reasoning_tokens, response_text = owed
        try:
            self.engine.record(
                ctx,
                decision,
                status=status,
                output_tokens=output_tokens,
                reasoning_tokens=reasoning_tokens,
                response_text=response_text,
            )
        except Exception:
            log.exception("online learning failed for %s", ctx.request_id)

    async def _publish_state_metrics(self) -> None:
        self._set_state_metrics()

    def _set_state_metrics(self) -> None:
        snap = getattr(self.exchange_log, "snapshot", None)
        st = snap() if snap is not None else None
        if st is not None:
            self.metrics.log_appended.set(getattr(st, "appended", 0))
            self.metrics.log_pending.set(getattr(st, "pending", 0))
            self.metrics.log_sink_errors.set(getattr(st, "sink_errors", 0))
        risk = self.engine.risk
        if isinstance(risk, OnlineRisk):
            self.metrics.online_accounts.set(risk.n_accounts)
            self.metrics.online_accounts_forgotten.set(risk.forgotten)

    def render_metrics(self) -> bytes:
        """The Prometheus exposition, with the state gauges (exchange log, online states) read
        at scrape time (with several workers, the other workers' as of their last
        :data:`_STATE_METRICS_S` round)."""
        self._set_state_metrics()
        return self.metrics.render()

    def _record(self, ex: _Exchange) -> dict[str, Any]:
        c = ex.ctx
        content = self.config.log_content == "full"
        return {
            "request_id": c.request_id,
            "ts": datetime.fromtimestamp(c.ts, UTC),
            "account_id": c.account_id,
            "org_id": ex.key.org_id,
            "api_key_id": c.api_key_id,
            "model": c.model,
            "endpoint": c.endpoint,
            "ip": c.ip,
            "user_agent": c.user_agent,
            "tls_fingerprint": c.tls_fingerprint,
            "metadata": c.metadata,
            "conversation_id": c.conversation_id,
            "n_messages": c.n_messages,
            "system_prompt": c.system_prompt if content else None,
            "prompt": c.prompt if content else None,
            "tools": list(c.tools) or None,
            "response": ex.response_text if content else None,
            "input_tokens": ex.input_tokens or c.input_tokens,
            "output_tokens": ex.output_tokens,
            "reasoning_tokens": ex.reasoning_tokens,
            "max_tokens": c.max_tokens,
            "temperature": c.temperature,
            "stream": c.stream,
            "status": ex.status,
            "action": _action_names(ex.decision.actions)[0],
            "reasons": list(ex.decision.reasons),
            "campaign_id": ex.decision.campaign_id,
            "risk": ex.decision.risk,
            "protected": ex.protected,
            "marked": ex.marked,
        }

    async def models(self, request: Request) -> Response:
        key = await self.resolve_key(request)
        if isinstance(key, Response):
            return key
        try:
            async with asyncio.timeout(self.config.upstream_timeout_s):
                reply = await self.upstream.send(
                    "GET", "/models", None, self._forward_headers(request, json_body=False)
                )
                content = await reply.read()
        except (TimeoutError, UpstreamTimeout, UpstreamUnavailable) as exc:
            timeout = not isinstance(exc, UpstreamUnavailable)
            return _error(
                504 if timeout else 502,
                "The model server is unavailable.",
                "server_error",
                "upstream_timeout" if timeout else "upstream_unavailable",
            )
        return Response(content, status_code=reply.status, headers=_passthrough(reply.headers))


def _is_final(event: bytes) -> bool:
    """The last event of a Responses API stream (it carries the usage; no [DONE] follows)."""
    return b"response.completed" in event[:200] or b"response.failed" in event[:200]


def _report_changed(report: Any) -> bool:
    """Whether protection altered the answer (a ProtectReport, or None when none ran)."""
    return report is not None and bool(report.changed)


def _passthrough(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The upstream's end-to-end headers, names lower-cased (ours then override theirs)."""
    out: dict[str, str] = {}
    for k, v in headers:
        name = k.lower()
        if name not in _HOP:
            out[name] = v
    return out


_ACTION_NAMES: dict[frozenset[Action], tuple[str, str]] = {}


def _action_names(actions: frozenset[Action]) -> tuple[str, str]:
    """(the strongest action's name, every action's name sorted and comma-joined) of a
    decision's ``actions`` (what :attr:`Decision.action` and the action header say), worked
    out once per set of actions (there are at most 32)."""
    names = _ACTION_NAMES.get(actions)
    if names is None:
        strongest = max(actions) if actions else Action.ALLOW
        names = (strongest.name.lower(), ",".join(sorted(a.name.lower() for a in actions)))
        _ACTION_NAMES[actions] = names
    return names


def _first_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's headers by name (ASGI names are lower case), the first of repeated ones:
    what ``Request.headers.get`` answers, decoded once for all the lookups of a request."""
    out: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1")
        if name not in out:
            out[name] = v.decode("latin-1")
    return out


def _forward(raw: list[tuple[bytes, bytes]], *, json_body: bool) -> dict[str, str]:
    """The client's end-to-end headers for the upstream (the last of repeated ones), minus the
    client's TLS fingerprint headers (``x-ja*``)."""
    out: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1")
        if name not in _HOP and not name.startswith("x-ja"):  # ASGI header names are lower case
            out[name] = v.decode("latin-1")
    out["accept-encoding"] = "identity"
    if json_body:
        out["content-type"] = "application/json"  # the body forwarded is the JSON object parsed
    return out


def _request_id() -> str:
    """``"req_" + uuid.uuid4().hex``, without building the UUID object: 128 random bits with
    the version (4) and variant (RFC 4122) bits set as :class:`uuid.UUID` sets them."""
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    n = (n & ~(0xF000 << 64)) | (4 << 76)
    return f"req_{n:032x}"


def _too_large(limit: int) -> Response:
    return _error(
        413, f"Request body larger than {limit} bytes.", "invalid_request_error", "request_too_large"
    )


def _parse_object(raw: bytes) -> dict[str, Any] | Response:
    """The JSON object of a request body, or the OpenAI-style 400 for anything else."""
    try:
        body = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(
            400,
            f"We could not parse the JSON body of your request: {exc}",
            "invalid_request_error",
            "invalid_json",
        )
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json")
    return body


def _includes_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


def _with_usage(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` asking for the final usage chunk of a chat stream (the log needs token counts)."""
    opts = body.get("stream_options")
    return {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True}}


def _responses_text(data: dict[str, Any]) -> str | None:
    parts: list[str] = []
    for item in data.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for c in item.get("content") or []:
                if isinstance(c, dict) and isinstance(c.get("text"), str):
                    parts.append(c["text"])
    return "".join(parts) if parts else None


def _mark_body(data: dict[str, Any], key: bytes, tag: str, endpoint: str) -> dict[str, Any]:
    from distillshield.gateway.mark import mark_chat_completion, mark_response

    marked, _ = (mark_chat_completion if endpoint == "chat" else mark_response)(data, key, tag)
    return marked


class _StreamTransform:
    """Per-stream SSE rewriting: reasoning protection and marking on parsed events, plain
    pass-through (bytes untouched) when neither applies; collects text and usage for the log."""

    def __init__(self, ex: _Exchange, endpoint: str, mark_key: bytes | None) -> None:
        self.ex = ex
        self.chat = endpoint == "chat"
        d = ex.decision
        self.protector: Any = None
        self.marker: Any = None
        if Action.PROTECT in d.actions:
            from distillshield.gateway import protect

            cls = protect.ChatStreamProtector if self.chat else protect.ResponsesStreamProtector
            self.protector = cls(d.protect_mode)
        if Action.MARK in d.actions and d.mark_tag and mark_key and self.chat:
            from distillshield.gateway.mark import ChatStreamMarker

            # one marker per choice; held text is released in that choice's finish chunk
            self.marker = ChatStreamMarker(mark_key, d.mark_tag)
        self.text: list[str] = []
        self.last_id: Any = None

    def _observe(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage") if self.chat else (chunk.get("response") or {}).get("usage")
        if isinstance(usage, dict):
            if self.chat:
                self.ex.output_tokens = int(usage.get("completion_tokens") or 0)
                self.ex.input_tokens = int(usage.get("prompt_tokens") or 0)
                det = usage.get("completion_tokens_details") or {}
            else:
                self.ex.output_tokens = int(usage.get("output_tokens") or 0)
                self.ex.input_tokens = int(usage.get("input_tokens") or 0)
                det = usage.get("output_tokens_details") or {}
            rt = det.get("reasoning_tokens") if isinstance(det, dict) else None
            self.ex.reasoning_tokens = int(rt) if isinstance(rt, int) else self.ex.reasoning_tokens
        if self.chat:
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
        elif chunk.get("type") == "response.output_text.delta" and isinstance(chunk.get("delta"), str):
            self.text.append(chunk["delta"])

    def feed(self, event: bytes) -> list[bytes]:
        if not event.startswith(b"data: ") and b"\ndata: " not in event:
            return [event]
        lines = event.split(b"\n")
        data_lines = [ln[6:] for ln in lines if ln.startswith(b"data: ")]
        try:
            chunk = loads(b"\n".join(data_lines))
        except ValueError:
            return [event]
        if not isinstance(chunk, dict):
            return [event]
        if self.protector is None and self.marker is None:
            self._observe(chunk)
            return [event]
        outs = self.protector.feed(chunk) if self.protector is not None else [chunk]
        return self._emit(outs)

    def _emit(self, chunks: list[dict[str, Any]]) -> list[bytes]:
        if self.marker is not None:
            marked: list[dict[str, Any]] = []
            for c in chunks:
                marked.extend(self.marker.feed(c))
            chunks = marked
            self.ex.marked = True
        return [self._encode(c) for c in chunks]

    def _encode(self, c: dict[str, Any]) -> bytes:
        self._observe(c)
        prefix = b"" if self.chat or not isinstance(c.get("type"), str) else f"event: {c['type']}\n".encode()
        return prefix + b"data: " + dumps(c) + b"\n\n"

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self.protector is not None:
            out.extend(self._emit(self.protector.finish()))
            self.ex.protected = _report_changed(getattr(self.protector, "report", None))
        if self.marker is not None:
            out.extend(self._encode(c) for c in self.marker.finish())
        return out

    def close(self) -> None:
        self.ex.response_text = "".join(self.text) if self.text else None


def _warm_answer_paths() -> None:
    """Import the answer rewriters now: loaded by the first protected or marked answer, their
    module-level tables and patterns cost that request some hundreds of milliseconds."""
    from distillshield.gateway import mark, protect  # noqa: F401


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def open_exchange_log(config: GatewayConfig, wal_dir: str | Path | None = None) -> Any:
    """The exchange log ``config`` asks for (not started): its sink (Parquet parts under
    ``log_dir/exchanges``, or the Redis stream) and its write-ahead log in ``wal_dir``
    (default ``log_dir/wal``; one directory per process: ``gateway --workers N`` gives each
    worker its own, all writing into the same sink)."""
    from distillshield.gateway._log import ExchangeLog, ParquetSink, RedisStreamSink

    sink: Any = RedisStreamSink(config.store) if config.log_sink == "redis" else ParquetSink(config.log_dir)
    wal = Path(config.log_dir) / "wal" if wal_dir is None else Path(wal_dir)
    return ExchangeLog(wal, sink, fsync=config.log_fsync)


def create_app(config: GatewayConfig, **kwargs: Any) -> Starlette:
    """The ASGI app for ``config`` (``kwargs`` go to :class:`Gateway`: transport, store...)."""
    gw = Gateway(config, **kwargs)

    async def chat(request: Request) -> Response:
        return await gw.handle(request, "chat")

    async def responses(request: Request) -> Response:
        return await gw.handle(request, "responses")

    async def metrics(request: Request) -> Response:
        if not config.metrics_public:
            denied = await gw.check_admin(request)
            if denied is not None:
                return denied
        return Response(gw.render_metrics(), media_type="text/plain; version=0.0.4")

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "degraded" if gw.degraded else "ok", "fail_mode": gw.engine.policy.fail_mode}
        )

    async def admin_keys(request: Request) -> Response:
        denied = await gw.check_admin(request)
        if denied is not None:
            return denied
        body = await gw._read_json(request)
        if isinstance(body, Response):
            return body
        account = body.get("account_id")
        if not isinstance(account, str) or not account:
            return _error(400, "'account_id' is required.", "invalid_request_error", "invalid_request")
        secret = "sk-ds-" + secrets.token_urlsafe(24)
        try:
            record = KeyRecord(
                key_id=f"key_{secrets.token_hex(6)}",
                account_id=account,
                org_id=body.get("org_id"),
                pathway=body.get("pathway"),
                payment_fingerprint=body.get("payment_fingerprint"),
                created_at=_num(body.get("created_at")),
                signup_ip=body.get("signup_ip") if isinstance(body.get("signup_ip"), str) else None,
                declared_country=body.get("declared_country"),
            )
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request_error", "invalid_request")
        try:
            await gw.store.put_key(hash_key(secret), record)
        except StoreUnavailable as exc:
            return _error(503, str(exc), "server_error", "store_unavailable")
        return JSONResponse({"key": secret, "key_id": record.key_id, "account_id": account}, status_code=201)

    async def admin_verdicts(request: Request) -> Response:
        denied = await gw.check_admin(request)
        if denied is not None:
            return denied
        await gw.refresh_verdicts()
        return JSONResponse({"version": gw._verdict_version, "accounts": len(gw.engine.verdicts.accounts)})

    async def admin_verify(request: Request) -> Response:
        """Sign-up / upgrade verification risk (docs/verify.md), with the fleet's verdicts."""
        denied = await gw.check_admin(request)
        if denied is not None:
            return denied
        body = await gw._read_json(request)
        if isinstance(body, Response):
            return body
        from distillshield.access import verify_json

        status, out = verify_json(gw.verifier(), body, now=gw.clock())
        return JSONResponse(out, status_code=status)

    async def admin_policy(request: Request) -> Response:
        denied = await gw.check_admin(request)
        if denied is not None:
            return denied
        policy = gw.reload_policy()
        if policy is None:
            return _error(
                422,
                "Policy rejected; the previous policy stays active (see the gateway log).",
                "invalid_request_error",
                "invalid_policy",
            )
        return JSONResponse({"rules": list(policy.rule_ids), "fail_mode": policy.fail_mode})

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/models", gw.models, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/admin/keys", admin_keys, methods=["POST"]),
        Route("/admin/verdicts/refresh", admin_verdicts, methods=["POST"]),
        Route("/admin/policy/reload", admin_policy, methods=["POST"]),
        Route("/admin/verify", admin_verify, methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.startup()
        try:
            yield
        finally:
            await gw.shutdown()

    app = _GatewayApp(routes=routes, lifespan=lifespan)
    app.gateway = gw
    app.state.gateway = gw
    return app
