"""The OpenAI-compatible enforcement proxy (Starlette + httpx; served by uvicorn).

One request: authenticate the API key → parse the body (size-limited, OpenAI-style errors
for malformed JSON) → :meth:`Engine.decide_policy` → rate-limit buckets for throttled
accounts/campaigns (shared store) → block / throttle / refuse, or forward to the upstream
→ protect reasoning and mark the answer while it streams → append the exchange to the
crash-safe log → learn online. Decisions are explained in ``x-distillshield-action`` and
``x-distillshield-reasons`` response headers and in the log.

The upstream is an injectable :class:`httpx.AsyncBaseTransport` so tests and benchmarks
never touch the network. Background tasks poll the shared store for new batch verdicts and
the policy file for edits: both are swapped in without a restart.

Failure modes (``fail_mode`` in the policy): when the shared store is unreachable, ``open``
keeps serving with the last known verdicts and in-process rate limits; ``closed`` answers
503 until the store is back. Either way ``distillshield_store_degraded`` and
``distillshield_fail_mode_applied`` say so. Authentication never fails open: a key that is
neither cached nor resolvable is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from distillshield.gateway._metrics import GatewayMetrics
from distillshield.gateway._store import KeyRecord, MemoryStore, StoreUnavailable, hash_key, open_store
from distillshield.gateway._types import Action, Decision, RequestContext
from distillshield.gateway.config import ConfigError, GatewayConfig
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from distillshield.gateway.verdicts import VerdictSet, build_verdicts

__all__ = ["Gateway", "create_app"]

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


def _text(content: Any) -> str | None:
    """Text of a message ``content``: a string, or the text parts of a content list."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text")
        ]
        return "\n".join(parts) if parts else None
    return None


@dataclass(frozen=True, slots=True)
class _Parsed:
    prompt: str | None
    system: str | None
    n_messages: int
    tools: tuple[str, ...]
    max_tokens: int | None
    temperature: float | None
    stream: bool
    metadata: str | None
    conversation_id: str | None


class BadRequestError(ValueError):
    """The body is not a valid request for this endpoint (→ 400 with the reason)."""


def _tool_names(tools: Any) -> tuple[str, ...]:
    out: list[str] = []
    for t in tools if isinstance(tools, list) else []:
        if isinstance(t, dict):
            fn = t.get("function") if isinstance(t.get("function"), dict) else t
            name = fn.get("name") if isinstance(fn, dict) else None
            if isinstance(name, str):
                out.append(name)
    return tuple(out)


def _metadata(body: dict[str, Any]) -> str | None:
    meta: dict[str, Any] = {}
    if isinstance(body.get("metadata"), dict):
        meta.update({str(k): v for k, v in body["metadata"].items()})
    if isinstance(body.get("user"), str):
        meta.setdefault("user", body["user"])
    return json.dumps(meta, sort_keys=True, separators=(",", ":")) if meta else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_chat(body: dict[str, Any]) -> _Parsed:
    """The facts of a ``/v1/chat/completions`` body (raises :class:`BadRequestError`)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty array")
    if not isinstance(body.get("model"), str):
        raise BadRequestError("'model' must be a string")
    prompt = None
    system: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise BadRequestError("each message must be an object with a 'role'")
        text = _text(m.get("content"))
        if m["role"] in ("system", "developer") and text:
            system.append(text)
        elif m["role"] == "user":
            prompt = text
    temp = body.get("temperature")
    return _Parsed(
        prompt=prompt,
        system="\n".join(system) or None,
        n_messages=len(messages),
        tools=_tool_names(body.get("tools")),
        max_tokens=_int(body.get("max_completion_tokens")) or _int(body.get("max_tokens")),
        temperature=float(temp) if isinstance(temp, int | float) and not isinstance(temp, bool) else None,
        stream=body.get("stream") is True,
        metadata=_metadata(body),
        conversation_id=None,
    )


def parse_responses(body: dict[str, Any]) -> _Parsed:
    """The facts of a ``/v1/responses`` body (raises :class:`BadRequestError`)."""
    if not isinstance(body.get("model"), str):
        raise BadRequestError("'model' must be a string")
    inp = body.get("input")
    prompt: str | None = None
    n = 1
    system = body.get("instructions") if isinstance(body.get("instructions"), str) else None
    if isinstance(inp, str):
        prompt = inp
    elif isinstance(inp, list):
        n = len(inp)
        for item in inp:
            if isinstance(item, dict) and item.get("role") == "user":
                prompt = _text(item.get("content"))
            elif isinstance(item, dict) and item.get("role") in ("system", "developer"):
                system = "\n".join(filter(None, [system, _text(item.get("content"))])) or None
    elif inp is not None:
        raise BadRequestError("'input' must be a string or an array of items")
    temp = body.get("temperature")
    prev = body.get("previous_response_id")
    return _Parsed(
        prompt=prompt,
        system=system,
        n_messages=n + (1 if isinstance(prev, str) else 0),
        tools=_tool_names(body.get("tools")),
        max_tokens=_int(body.get("max_output_tokens")),
        temperature=float(temp) if isinstance(temp, int | float) and not isinstance(temp, bool) else None,
        stream=body.get("stream") is True,
        metadata=_metadata(body),
        conversation_id=prev if isinstance(prev, str) else None,
    )


@dataclass
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


class Gateway:
    """The proxy's state and handlers; :func:`create_app` wraps it in a Starlette app."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        store: Any = None,
        engine: Engine | None = None,
        exchange_log: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = (
            store if store is not None else open_store(config.store, timeout_s=config.store_timeout_s)
        )
        self.policy_path = Path(config.policy) if config.policy else DEFAULT_POLICY
        self._policy_mtime = self._mtime()
        policy = load_policy(self.policy_path)
        self.metrics = GatewayMetrics(policy.fail_mode)
        self.engine = engine or Engine(policy, account_facts=self._account_facts)
        if engine is not None:
            self.engine.set_policy(policy)
        if config.verdicts:
            self.engine.set_verdicts(build_verdicts(config.verdicts))
        self._verdict_version: str | None = None
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
        self.client = httpx.AsyncClient(
            base_url=config.upstream.rstrip("/"),
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(config.upstream_timeout_s, connect=config.upstream_connect_timeout_s),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._verifier: Any = None
        self._verifier_verdicts: VerdictSet | None = None

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
        await self.load_keys_file()
        if self.exchange_log is None:
            self.exchange_log = self._open_log()
        if self.exchange_log is not None:
            await _maybe_await(self.exchange_log.start())
        await self.refresh_verdicts()
        self._tasks = [
            asyncio.create_task(self._every(self.config.verdict_refresh_s, self.refresh_verdicts)),
            asyncio.create_task(self._every(self.config.policy_refresh_s, self.reload_policy_if_changed)),
        ]

    async def shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.exchange_log is not None:
            closer = getattr(self.exchange_log, "aclose", None) or self.exchange_log.close
            await _maybe_await(closer())
        await self.client.aclose()
        await self.store.close()

    def _open_log(self) -> Any:
        from distillshield.gateway._log import ExchangeLog, ParquetSink, RedisStreamSink

        sink: Any
        if self.config.log_sink == "redis":
            sink = RedisStreamSink(self.config.store)
        else:
            sink = ParquetSink(self.config.log_dir)
        return ExchangeLog(Path(self.config.log_dir) / "wal", sink, fsync=self.config.log_fsync)

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
        """The sign-up verifier, rebuilt when the verdicts change; velocity state carries over."""
        from distillshield.access import Verifier

        current = self.engine.verdicts
        if self._verifier is None or self._verifier_verdicts is not current:
            old = self._verifier.state if self._verifier is not None else None
            self._verifier = Verifier(verdicts=current, state=old)
            self._verifier_verdicts = current
        return self._verifier

    # -- identity -------------------------------------------------------------------------
    def _account_facts(self, account_id: str) -> KeyRecord | None:
        return self._accounts.get(account_id)

    async def resolve_key(self, request: Request) -> KeyRecord | Response:
        auth = request.headers.get("authorization", "")
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
        if self.config.trust_forwarded_for:
            fwd = request.headers.get("x-forwarded-for")
            if fwd:
                return fwd.split(",")[0].strip()
        return request.client.host if request.client else "0.0.0.0"

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
            # open: fall back to this process's own buckets rather than no limit at all
            local = self.engine.decide(ctx)
            return replace(local, fail_mode="open", reasons=(*local.reasons, "fail:open:local_rate_limit"))
        return self.engine.apply_throttle(decision, wait)

    # -- handlers -------------------------------------------------------------------------
    async def _read_json(self, request: Request) -> dict[str, Any] | Response:
        limit = self.config.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _error(
                413, f"Request body larger than {limit} bytes.", "invalid_request_error", "request_too_large"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _error(
                    413,
                    f"Request body larger than {limit} bytes.",
                    "invalid_request_error",
                    "request_too_large",
                )
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(
                400,
                f"We could not parse the JSON body of your request: {exc}",
                "invalid_request_error",
                "invalid_json",
            )
        if not isinstance(body, dict):
            return _error(
                400, "The request body must be a JSON object.", "invalid_request_error", "invalid_json"
            )
        return body

    async def handle(self, request: Request, endpoint: str) -> Response:
        t0 = time.perf_counter()
        key = await self.resolve_key(request)
        if isinstance(key, Response):
            self.metrics.requests.labels(endpoint, str(key.status_code)).inc()
            return key
        body = await self._read_json(request)
        if isinstance(body, Response):
            self.metrics.requests.labels(endpoint, str(body.status_code)).inc()
            return body
        try:
            parsed = parse_chat(body) if endpoint == "chat" else parse_responses(body)
        except BadRequestError as exc:
            self.metrics.requests.labels(endpoint, "400").inc()
            return _error(400, str(exc), "invalid_request_error", "invalid_request")
        ctx = RequestContext(
            request_id=f"req_{uuid.uuid4().hex}",
            ts=self.clock(),
            account_id=key.account_id,
            api_key_id=key.key_id,
            model=body["model"],
            endpoint="/v1/chat/completions" if endpoint == "chat" else "/v1/responses",
            ip=self.client_ip(request),
            user_agent=request.headers.get("user-agent"),
            tls_fingerprint=(
                request.headers.get(self.config.tls_fingerprint_header)
                if self.config.tls_fingerprint_header
                else None
            ),
            metadata=parsed.metadata,
            conversation_id=parsed.conversation_id,
            n_messages=parsed.n_messages,
            system_prompt=parsed.system,
            prompt=parsed.prompt,
            tools=parsed.tools,
            max_tokens=parsed.max_tokens,
            temperature=parsed.temperature,
            stream=parsed.stream,
        )
        decision = await self.decide(ctx)
        self._count(decision)
        ex = _Exchange(ctx, key, decision)
        headers = self._decision_headers(decision, ctx)
        stop = self._stop_response(decision, headers)
        if stop is not None:
            ex.status = stop.status_code
            await self._finish(ex)
            self.metrics.requests.labels(endpoint, str(stop.status_code)).inc()
            self.metrics.added_latency.labels(endpoint).observe(time.perf_counter() - t0)
            return stop
        path = "/chat/completions" if endpoint == "chat" else "/responses"
        if parsed.stream and endpoint == "chat":
            body = self._with_usage(body)
        upstream_headers = self._forward_headers(request)
        pre = time.perf_counter() - t0
        if parsed.stream:
            return await self._stream(ex, path, body, upstream_headers, headers, endpoint, pre)
        return await self._unary(ex, path, body, upstream_headers, headers, endpoint, t0)

    def _count(self, decision: Decision) -> None:
        self.metrics.decisions.labels(decision.action.name.lower()).inc()
        for r in decision.reasons:
            if r.startswith("rule:"):
                self.metrics.rules.labels(r[5:]).inc()

    def _decision_headers(self, decision: Decision, ctx: RequestContext) -> dict[str, str]:
        return {
            "x-request-id": ctx.request_id,
            "x-distillshield-action": ",".join(sorted(a.name.lower() for a in decision.actions)),
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

    def _forward_headers(self, request: Request) -> dict[str, str]:
        out = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP and not k.lower().startswith("x-ja")
        }
        out["accept-encoding"] = "identity"
        return out

    @staticmethod
    def _with_usage(body: dict[str, Any]) -> dict[str, Any]:
        opts = body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            return body
        return {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True}}

    async def _upstream_error(self, exc: Exception, ex: _Exchange, endpoint: str) -> Response:
        if isinstance(exc, httpx.TimeoutException):
            self.metrics.upstream_errors.labels("timeout").inc()
            resp = _error(504, "The model server did not answer in time.", "server_error", "upstream_timeout")
        else:
            self.metrics.upstream_errors.labels("connect").inc()
            resp = _error(
                502,
                f"The model server is unreachable: {type(exc).__name__}.",
                "server_error",
                "upstream_unavailable",
            )
        ex.status = resp.status_code
        await self._finish(ex)
        self.metrics.requests.labels(endpoint, str(resp.status_code)).inc()
        return resp

    async def _unary(
        self,
        ex: _Exchange,
        path: str,
        body: dict[str, Any],
        up_headers: dict[str, str],
        headers: dict[str, str],
        endpoint: str,
        t0: float,
    ) -> Response:
        t_up = time.perf_counter()
        try:
            # a deadline of our own: transports without socket timeouts (ASGI, custom) honour it too
            resp = await asyncio.wait_for(
                self.client.post(path, json=body, headers=up_headers), self.config.upstream_timeout_s
            )
        except TimeoutError:
            return await self._upstream_error(httpx.ReadTimeout("upstream deadline"), ex, endpoint)
        except httpx.HTTPError as exc:
            return await self._upstream_error(exc, ex, endpoint)
        up = time.perf_counter() - t_up
        ex.status = resp.status_code
        out_headers = {**_passthrough(resp.headers), **headers}
        if resp.status_code != 200:
            self.metrics.upstream_errors.labels(f"status_{resp.status_code // 100}xx").inc()
            await self._finish(ex)
            self.metrics.requests.labels(endpoint, str(resp.status_code)).inc()
            return Response(resp.content, status_code=resp.status_code, headers=out_headers)
        try:
            data = resp.json()
        except ValueError:
            await self._finish(ex)
            self.metrics.requests.labels(endpoint, "200").inc()
            return Response(resp.content, status_code=200, headers=out_headers)
        data = self._transform_unary(ex, data, endpoint)
        await self._finish(ex)
        self.metrics.requests.labels(endpoint, "200").inc()
        self.metrics.added_latency.labels(endpoint).observe(max(0.0, time.perf_counter() - t0 - up))
        out_headers.pop("content-type", None)
        return JSONResponse(data, headers=out_headers)

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
            ex.response_text = _text(msg.get("content"))
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

    async def _stream(
        self,
        ex: _Exchange,
        path: str,
        body: dict[str, Any],
        up_headers: dict[str, str],
        headers: dict[str, str],
        endpoint: str,
        pre: float,
    ) -> Response:
        req = self.client.build_request("POST", path, json=body, headers=up_headers)
        try:
            resp = await asyncio.wait_for(self.client.send(req, stream=True), self.config.upstream_timeout_s)
        except TimeoutError:
            return await self._upstream_error(httpx.ReadTimeout("upstream deadline"), ex, endpoint)
        except httpx.HTTPError as exc:
            return await self._upstream_error(exc, ex, endpoint)
        ex.status = resp.status_code
        out_headers = {**_passthrough(resp.headers), **headers}
        if resp.status_code != 200:
            content = await resp.aread()
            await resp.aclose()
            self.metrics.upstream_errors.labels(f"status_{resp.status_code // 100}xx").inc()
            await self._finish(ex)
            self.metrics.requests.labels(endpoint, str(resp.status_code)).inc()
            return Response(content, status_code=resp.status_code, headers=out_headers)
        self.metrics.added_latency.labels(endpoint).observe(pre)
        self.metrics.requests.labels(endpoint, "200").inc()
        transform = _StreamTransform(ex, endpoint, self.mark_key)
        return StreamingResponse(
            self._relay(resp, transform, ex),
            status_code=200,
            headers=out_headers,
            media_type="text/event-stream",
        )

    async def _relay(
        self, resp: httpx.Response, transform: _StreamTransform, ex: _Exchange
    ) -> AsyncIterator[bytes]:
        buf = b""
        done = False
        try:
            chunks = resp.aiter_bytes()
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(chunks), self.config.upstream_timeout_s)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise httpx.ReadTimeout("upstream stream stalled") from exc
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
                        # the record is in the log before the client sees the end of the stream
                        await self._finish(ex)
                        for out in (*tail, *last):
                            yield out
                        continue
                    for out in transform.feed(event):
                        yield out
            if buf:
                for out in transform.feed(buf):
                    yield out
        except httpx.HTTPError as exc:
            self.metrics.upstream_errors.labels("stream").inc()
            ex.status = 502
            err = {
                "error": {"message": f"upstream stream failed: {type(exc).__name__}", "type": "server_error"}
            }
            yield b"data: " + json.dumps(err).encode() + b"\n\n"
        finally:
            await resp.aclose()
            if not done:
                transform.close()
                await self._finish(ex)

    async def _finish(self, ex: _Exchange) -> None:
        """Log the exchange (acknowledged once ``append`` returns) and learn online."""
        try:
            self.engine.record(
                ex.ctx,
                ex.decision,
                status=ex.status,
                output_tokens=ex.output_tokens,
                reasoning_tokens=ex.reasoning_tokens,
                response_text=ex.response_text,
            )
        except Exception:
            log.exception("online learning failed for %s", ex.ctx.request_id)
        if self.exchange_log is None:
            return
        await _maybe_await(self.exchange_log.append(self._record(ex)))

    def render_metrics(self) -> bytes:
        """The Prometheus exposition, with the log's counters read at scrape time."""
        snap = getattr(self.exchange_log, "snapshot", None)
        st = snap() if snap is not None else None
        if st is not None:
            self.metrics.log_appended.set(getattr(st, "appended", 0))
            self.metrics.log_pending.set(getattr(st, "pending", 0))
            self.metrics.log_sink_errors.set(getattr(st, "sink_errors", 0))
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
            "action": ex.decision.action.name.lower(),
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
            resp = await self.client.get("/models", headers=self._forward_headers(request))
        except httpx.HTTPError as exc:
            kind = "upstream_timeout" if isinstance(exc, httpx.TimeoutException) else "upstream_unavailable"
            return _error(
                504 if kind == "upstream_timeout" else 502,
                "The model server is unavailable.",
                "server_error",
                kind,
            )
        return Response(resp.content, status_code=resp.status_code, headers=_passthrough(resp.headers))


def _is_final(event: bytes) -> bool:
    """The last event of a Responses API stream (it carries the usage; no [DONE] follows)."""
    return b"response.completed" in event[:200] or b"response.failed" in event[:200]


def _report_changed(report: Any) -> bool:
    """Whether protection altered the answer (a ProtectReport, or None when none ran)."""
    return report is not None and bool(report.changed)


def _passthrough(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP}


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
            chunk = json.loads(b"\n".join(data_lines))
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
        return prefix + b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"

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


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


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
        record = KeyRecord(
            key_id=f"key_{secrets.token_hex(6)}",
            account_id=account,
            org_id=body.get("org_id"),
            pathway=body.get("pathway"),
            payment_fingerprint=body.get("payment_fingerprint"),
            created_at=_num(body.get("created_at")),
            signup_ip=body.get("signup_ip") if isinstance(body.get("signup_ip"), str) else None,
        )
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

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gw
    return app
