"""distillshield's decisions inside a LiteLLM proxy, as a custom guardrail.

Teams that already run LiteLLM's proxy add one entry to its ``config.yaml`` instead of
putting ``distillshield gateway`` in front of it (docs/litellm.md)::

    guardrails:
      - guardrail_name: distillshield
        litellm_params:
          guardrail: distillshield.gateway.litellm_guardrail.DistillshieldGuardrail
          mode: [pre_call, post_call]   # both: pre_call decides, post_call protects and records
          default_on: true
          distillshield_config: /etc/distillshield/gateway.toml   # optional

The guardrail builds the same :class:`~distillshield.gateway._types.RequestContext` the
gateway builds (:func:`~distillshield.gateway._request.parse_chat` /
:func:`~distillshield.gateway._request.parse_responses` on the request body, then
:func:`~distillshield.gateway._request.request_context`) and asks the same engine, so a
request gets the same :class:`~distillshield.gateway._types.Decision` either way.
What LiteLLM's hooks let it do with that decision (LiteLLM 1.108; docs/litellm.md says which
point ``tests/test_gateway_litellm.py`` checks against a running proxy, which at hook level):

* **block / throttle / refuse** — ``async_pre_call_hook`` raises a FastAPI ``HTTPException``;
  LiteLLM answers with its status (403 / 429 / 503), keeps its headers (``Retry-After``) and
  turns the detail into an OpenAI error body. LiteLLM sets ``error.code`` to the status
  (``"403"``), so our reason code travels in the message (``[distillshield_blocked]``), in
  ``error.provider_specific_fields.error.code`` and in the ``x-distillshield-*`` headers.
* **decision headers** — ``async_post_call_response_headers_hook`` adds
  ``x-distillshield-action`` / ``x-distillshield-reasons`` to successes, refusals, upstream
  errors and (before the first byte) streams.
* **protect / mark, non-stream** — ``async_post_call_success_hook`` rewrites LiteLLM's
  ``ModelResponse`` / ``ResponsesAPIResponse`` in place with
  :func:`~distillshield.gateway.protect.protect_chat_completion` /
  :func:`~distillshield.gateway.protect.protect_response`.
* **protect / mark, stream** — ``async_post_call_streaming_iterator_hook`` wraps the chunk
  iterator *before* anything is sent, so chunks can be rewritten, dropped, held back and added
  (:class:`~distillshield.gateway.protect.ChatStreamProtector` /
  :class:`~distillshield.gateway.protect.ResponsesStreamProtector`): reasoning never leaves
  the proxy, also for ``<think>`` tags split across chunks. LiteLLM's own reasoning carriers
  (``thinking_blocks``, ``reasoning_items``: Anthropic / Bedrock thinking) are nulled too.
* **other endpoints** — legacy ``/v1/completions`` and Anthropic ``/v1/messages`` calls are
  decided (block / throttle / refuse apply) and recorded, but their answers are not rewritten:
  a protect / mark decision there is logged as not enforced.

What it cannot do, and what ``distillshield gateway`` does instead:

* LiteLLM fixes ``error.code`` to the HTTP status; the gateway sends ``distillshield_blocked``
  etc. as ``error.code`` itself.
* The response headers of a stream are sent before the first chunk: a stream cannot be
  *stopped* with a status code once it started (a raise in the iterator becomes an SSE error
  frame after a 200). Decisions are all taken before the upstream call, so this only matters
  for failures of the protector itself.
* ``usage`` (and ``reasoning_tokens``) is what LiteLLM reports; LiteLLM forces
  ``include_usage`` upstream and strips the usage chunk again when the client did not ask for
  it, so streams are recorded with their token counts like in the gateway.
* The shared-store features of the gateway (Redis rate-limit buckets shared by workers,
  verdict hot reload from the store, the crash-safe exchange log) are not wired in: the engine
  decides with its in-process buckets and the verdicts it was built with. Whether LiteLLM's
  own logging callbacks record the raw or the protected answer was not checked: assume raw.
* LiteLLM's ``apply_guardrail`` interface (texts in, texts out) cannot see reasoning fields,
  identities or set statuses, so this guardrail uses the native lifecycle hooks
  (``use_native_lifecycle_hooks``). It supports ``mode: [pre_call, post_call]`` only: LiteLLM
  refuses ``during_call`` (run in parallel with the model call, too late to stop it) at start.
* LiteLLM's provider pass-through routes (``/openai/...``, ``/anthropic/...``) run guardrails
  only where configured per route, on raw provider bodies; they are not covered (nor tested).
* For a non-streamed chat answer LiteLLM itself moves a leading ``<think>...</think>`` block
  into ``reasoning_content`` before any hook runs, leaving ``"\n\n"`` before the answer; a
  protected answer keeps that whitespace (the gateway strips it with the block).

Where the engine comes from (first that applies): the ``engine=`` constructor argument
(:meth:`DistillshieldGuardrail.with_engine` for tests and embedding);
``distillshield_engine: "module:attr"`` (a class or factory called with
``distillshield_engine_kwargs``, or an instance); ``distillshield_config: path`` (the
gateway's TOML file: its policy, verdicts directory, marking-key variable and TLS-fingerprint
header are used, its upstream is ignored); otherwise an engine with the shipped default
policy and no verdicts.
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
import os
import time
import tomllib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from distillshield.gateway._request import (
    BadRequestError,
    ParsedRequest,
    parse_chat,
    parse_responses,
    request_context,
)
from distillshield.gateway._types import Action, Decision, RequestContext

# No network at run time: importing litellm otherwise fetches its model cost map from the
# internet (and waits for the timeout on an offline host). Only a default: an operator's own
# setting wins, and a proxy that imported litellm before loading this module has already
# decided (docs/litellm.md: set it in the proxy's environment).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

try:
    from fastapi import HTTPException
    from litellm.integrations.custom_guardrail import CustomGuardrail
    from litellm.proxy._types import UserAPIKeyAuth
    from litellm.types.guardrails import GuardrailEventHooks
    from litellm.types.utils import ModelResponseStream
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "distillshield.gateway.litellm_guardrail needs LiteLLM's proxy: pip install 'distillshield[litellm]'"
    ) from _exc

__all__ = ["DecisionEngine", "DistillshieldGuardrail", "engine_from_config"]

log = logging.getLogger("distillshield.gateway.litellm")

#: LiteLLM call types decided on, by the endpoint they stand for. Answers are protected and
#: marked on chat completions and Responses; on the others (legacy completions, Anthropic
#: ``/v1/messages``) block / throttle / refuse apply and a protect / mark decision is logged
#: as not enforceable (see the module docstring).
CALL_ENDPOINTS: Mapping[str, str] = {
    "completion": "/v1/chat/completions",
    "acompletion": "/v1/chat/completions",
    "responses": "/v1/responses",
    "aresponses": "/v1/responses",
    "text_completion": "/v1/completions",
    "atext_completion": "/v1/completions",
    "anthropic_messages": "/v1/messages",
    "aanthropic_messages": "/v1/messages",
}
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
#: Where the account id is taken from, in order (``distillshield_account_from``).
ACCOUNT_SOURCES = ("user_id", "team_id", "org_id", "key_alias", "key", "end_user")
DEFAULT_ACCOUNT_FROM = ("user_id", "team_id", "key")
_MAX_INFLIGHT = 100_000


class DecisionEngine(Protocol):
    """What the guardrail needs from an engine (:class:`~distillshield.gateway.engine.Engine`)."""

    def decide(self, ctx: RequestContext) -> Decision: ...

    def record(
        self,
        ctx: RequestContext,
        decision: Decision,
        *,
        status: int,
        output_tokens: int,
        reasoning_tokens: int | None,
        response_text: str | None,
    ) -> None: ...


# --------------------------------------------------------------------------------------------
# engine construction
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    """What the guardrail takes from a gateway config file besides the engine."""

    mark_key_env: str = "DISTILLSHIELD_MARK_KEY"
    tls_fingerprint_header: str | None = "x-ja4"


def engine_from_config(path: str | Path | None) -> DecisionEngine:
    """An :class:`~distillshield.gateway.engine.Engine` as ``distillshield gateway`` builds it
    from its TOML config file (policy + verdicts directory); the default policy when ``path``
    is ``None``. The file's ``upstream`` is not needed here (LiteLLM routes the calls)."""
    return _engine_and_settings(path)[0]


def _engine_and_settings(path: str | Path | None) -> tuple[DecisionEngine, _Settings]:
    from distillshield.gateway.engine import Engine
    from distillshield.gateway.policy import DEFAULT_POLICY, load_policy

    if path is None:
        return Engine(load_policy(DEFAULT_POLICY)), _Settings()
    from distillshield.gateway.config import load_config

    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        raw = {}  # load_config reports the problem with the file's name
    section = raw.get("gateway", raw) if isinstance(raw, dict) else {}
    overrides = {} if "upstream" in section else {"upstream": "http://upstream-managed-by-litellm.invalid"}
    cfg = load_config(path, **overrides)
    from distillshield.gateway.risk import online_risk

    engine = Engine(
        load_policy(cfg.policy or DEFAULT_POLICY),
        risk=online_risk(
            cfg.online_model, model_at=cfg.online_model_at, max_accounts=cfg.online_max_accounts
        ),
    )
    if cfg.verdicts:
        from distillshield.gateway.verdicts import build_verdicts

        engine.set_verdicts(build_verdicts(cfg.verdicts))
    return engine, _Settings(mark_key_env=cfg.mark_key_env, tls_fingerprint_header=cfg.tls_fingerprint_header)


def _import_object(spec: str) -> Any:
    """``module:attr`` or ``module.attr`` → the object."""
    module, sep, attr = spec.partition(":")
    if not sep:
        module, _, attr = spec.rpartition(".")
    if not module or not attr:
        raise ValueError(f"distillshield_engine must be 'module:attr', got {spec!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------------------------
# per-call state
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    ctx: RequestContext
    decision: Decision
    headers: dict[str, str]
    recorded: bool = False
    headers_sent: bool = False


@dataclass(slots=True)
class _Observed:
    """Token counts and answer text gathered from a response for :meth:`DecisionEngine.record`."""

    output_tokens: int = 0
    reasoning_tokens: int | None = None
    text: list[str] = field(default_factory=list)

    def usage(self, usage: Any) -> None:
        """Chat (``completion_tokens``) or Responses / Anthropic (``output_tokens``) usage."""
        if not isinstance(usage, Mapping):
            return
        for out_key, details_key in (
            ("completion_tokens", "completion_tokens_details"),
            ("output_tokens", "output_tokens_details"),
        ):
            out = usage.get(out_key)
            if isinstance(out, int) and not isinstance(out, bool):
                self.output_tokens = out
                details = usage.get(details_key)
                rt = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
                if isinstance(rt, int) and not isinstance(rt, bool):
                    self.reasoning_tokens = rt
                return

    @property
    def response_text(self) -> str | None:
        return "".join(self.text) if self.text else None


def _decision_headers(decision: Decision, request_id: str) -> dict[str, str]:
    """The gateway's decision headers (same names and values as ``distillshield gateway``)."""
    return {
        "x-distillshield-request-id": request_id,
        "x-distillshield-action": ",".join(sorted(a.name.lower() for a in decision.actions)),
        "x-distillshield-reasons": ";".join(r for r in decision.reasons if not r.startswith("campaign:")),
    }


def _refusal(decision: Decision) -> tuple[int, str, str, str, dict[str, str]] | None:
    """(status, message, type, code, extra headers) when ``decision`` stops the request."""
    if decision.fail_mode == "closed":
        return (
            503,
            "Enforcement store unavailable and the gateway fails closed; retry shortly.",
            "server_error",
            "store_unavailable",
            {"Retry-After": "1"},
        )
    if decision.action is Action.BLOCK:
        return (
            403,
            "This account is not permitted to use the API (reason codes in x-distillshield-reasons).",
            "permission_error",
            "distillshield_blocked",
            {},
        )
    if decision.action is Action.THROTTLE:
        wait = str(max(1, math.ceil(decision.retry_after or 1.0)))
        return (
            429,
            "Rate limit exceeded for this account.",
            "rate_limit_error",
            "distillshield_throttled",
            {"Retry-After": wait},
        )
    if decision.refuse_reasoning_request:
        return (
            403,
            "Requests to reveal the model's hidden reasoning are not permitted.",
            "permission_error",
            "reasoning_request_refused",
            {},
        )
    return None


def _dump(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        out = dump()
        if isinstance(out, dict):
            return out
    return {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse(endpoint: str, body: dict[str, Any]) -> ParsedRequest:
    """The gateway's parse of ``body`` (``parse_chat`` / ``parse_responses``); legacy completions
    and Anthropic messages are read into the same fields."""
    if endpoint == CHAT:
        return parse_chat(body)
    if endpoint == RESPONSES:
        return parse_responses(body)
    if endpoint == "/v1/messages":
        parsed = parse_chat(body)
        system = body.get("system")
        if isinstance(system, list):
            system = "\n".join(
                b["text"] for b in system if isinstance(b, Mapping) and isinstance(b.get("text"), str)
            )
        if isinstance(system, str) and system:
            parsed = replace(parsed, system="\n".join(filter(None, [system, parsed.system])))
        return parsed
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        n, prompt = len(prompt), (prompt[-1] if prompt else None)
    elif isinstance(prompt, str):
        n = 1
    else:
        raise BadRequestError("'prompt' must be a string or an array of strings")
    # the chat parser reads the shared fields (model, max_tokens, temperature, stream, metadata)
    return replace(parse_chat({**body, "messages": [{"role": "user", "content": prompt}]}), n_messages=n)


# --------------------------------------------------------------------------------------------
# the guardrail
# --------------------------------------------------------------------------------------------


class DistillshieldGuardrail(CustomGuardrail):
    """distillshield's allow / mark / protect / throttle / block decisions as a LiteLLM guardrail.

    Configuration keys (``litellm_params`` in LiteLLM's config, or keyword arguments):

    ``distillshield_config``
        path of a ``distillshield gateway`` TOML config (policy, verdicts, marking key env).
    ``distillshield_engine`` / ``distillshield_engine_kwargs``
        ``"module:attr"`` of an engine class / factory / instance (see :class:`DecisionEngine`)
        and the keyword arguments it is called with.
    ``distillshield_account_from``
        where the account id comes from, in order of preference: a list (or comma-separated
        string) of ``user_id``, ``team_id``, ``org_id``, ``key_alias``, ``key`` (the hashed
        virtual key), ``end_user`` (LiteLLM's end user, i.e. the body's ``user``). Default
        ``user_id, team_id, key``; ``"anonymous"`` when none is set.
    ``distillshield_fail_open``
        when the engine raises: ``true`` (default) lets the request through with reason
        ``fail:open:engine_error``; ``false`` answers 503.
    ``distillshield_mark_key_env``
        environment variable holding the marking key (``MARK`` decisions are applied only
        when it is set and :mod:`distillshield.gateway.mark` is available).
    ``distillshield_tls_fingerprint_header``
        request header with the client's TLS fingerprint (default from the config file, else
        ``x-ja4``), as set by the TLS-terminating load balancer in front of LiteLLM.

    LiteLLM's own keys (``guardrail_name``, ``mode`` → ``event_hook``, ``default_on``...) go to
    :class:`CustomGuardrail`; defaults here: ``distillshield``, ``[pre_call, post_call]``, on.
    """

    use_native_lifecycle_hooks: ClassVar[bool] = True

    def __init__(
        self,
        *,
        engine: DecisionEngine | None = None,
        distillshield_config: str | None = None,
        distillshield_engine: str | None = None,
        distillshield_engine_kwargs: Mapping[str, Any] | None = None,
        distillshield_account_from: str | list[str] | tuple[str, ...] | None = None,
        distillshield_fail_open: bool = True,
        distillshield_mark_key_env: str | None = None,
        distillshield_tls_fingerprint_header: str | None = None,
        clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("guardrail_name", "distillshield")
        kwargs.setdefault("event_hook", ["pre_call", "post_call"])
        kwargs.setdefault("default_on", True)
        kwargs.setdefault(
            "supported_event_hooks", [GuardrailEventHooks.pre_call, GuardrailEventHooks.post_call]
        )
        super().__init__(**kwargs)
        settings = _Settings()
        if engine is None and distillshield_engine:
            factory = _import_object(distillshield_engine)
            engine_kwargs = dict(distillshield_engine_kwargs or {})
            engine = factory(**engine_kwargs) if callable(factory) else factory
        if engine is None:
            engine, settings = _engine_and_settings(distillshield_config)
        elif distillshield_config:
            settings = _engine_and_settings(distillshield_config)[1]
        self.engine: DecisionEngine = engine
        self.account_from = self._parse_sources(distillshield_account_from)
        self.fail_open = bool(distillshield_fail_open)
        self.mark_key_env = distillshield_mark_key_env or settings.mark_key_env
        self.tls_fingerprint_header = (
            distillshield_tls_fingerprint_header
            if distillshield_tls_fingerprint_header is not None
            else settings.tls_fingerprint_header
        )
        self._clock = clock or time.time
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    @classmethod
    def with_engine(cls, engine: DecisionEngine, **kwargs: Any) -> Self:
        """A guardrail deciding with ``engine`` (tests, or a proxy built in Python)."""
        return cls(engine=engine, **kwargs)

    @staticmethod
    def _parse_sources(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        if value is None:
            return DEFAULT_ACCOUNT_FROM
        items = value.split(",") if isinstance(value, str) else list(value)
        sources = tuple(s.strip() for s in items if s.strip())
        unknown = [s for s in sources if s not in ACCOUNT_SOURCES]
        if unknown or not sources:
            raise ValueError(
                f"distillshield_account_from: unknown source(s) {unknown}; use {ACCOUNT_SOURCES}"
            )
        return sources

    # -- request context ------------------------------------------------------------------
    def account_id(self, auth: Any, data: Mapping[str, Any]) -> str:
        """The account a request is attributed to (see ``distillshield_account_from``)."""
        for source in self.account_from:
            if source == "key":
                value = _str_or_none(getattr(auth, "token", None))
            elif source == "end_user":
                value = _str_or_none(getattr(auth, "end_user_id", None)) or _str_or_none(data.get("user"))
            else:
                value = _str_or_none(getattr(auth, source, None))
            if value is not None:
                return value
        return "anonymous"

    @staticmethod
    def _litellm_metadata(data: Mapping[str, Any]) -> Mapping[str, Any]:
        for key in ("metadata", "litellm_metadata"):
            meta = data.get(key)
            if isinstance(meta, Mapping) and "requester_ip_address" in meta:
                return meta
        meta = data.get("litellm_metadata") or data.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    def build_context(
        self, auth: Any, data: Mapping[str, Any], call_type: str, call_id: str
    ) -> RequestContext | None:
        """The gateway's view of a LiteLLM request; ``None`` for call types it does not handle.

        Raises :class:`~distillshield.gateway._request.BadRequestError` for a malformed body.
        """
        endpoint = CALL_ENDPOINTS.get(call_type)
        if endpoint is None:
            return None
        meta = self._litellm_metadata(data)
        # LiteLLM's "metadata" is its own (keys, spend, headers...): only what the client sent
        # in the body's metadata (kept as requester_metadata) counts, as in the gateway.
        body = {k: v for k, v in data.items() if k not in ("metadata", "litellm_metadata")}
        requester = meta.get("requester_metadata")
        if isinstance(requester, Mapping) and requester:
            body["metadata"] = dict(requester)
        parsed = _parse(endpoint, body)
        psr = data.get("proxy_server_request")
        psr = psr if isinstance(psr, Mapping) else {}
        raw_headers = psr.get("headers")
        headers: Mapping[str, Any] = (
            {str(k).lower(): v for k, v in raw_headers.items()} if isinstance(raw_headers, Mapping) else {}
        )
        arrival = psr.get("arrival_time")
        ts = (
            float(arrival)
            if isinstance(arrival, int | float) and not isinstance(arrival, bool)
            else self._clock()
        )
        tls = headers.get(self.tls_fingerprint_header.lower()) if self.tls_fingerprint_header else None
        user_agent = _str_or_none(meta.get("user_agent")) or _str_or_none(headers.get("user-agent"))
        return request_context(
            parsed,
            request_id=call_id,
            ts=ts,
            account_id=self.account_id(auth, data),
            api_key_id=_str_or_none(getattr(auth, "token", None)),
            model=str(data.get("model", "")),
            endpoint=endpoint,
            ip=_str_or_none(meta.get("requester_ip_address")) or "0.0.0.0",
            user_agent=user_agent,
            tls_fingerprint=_str_or_none(tls),
        )

    # -- bookkeeping ----------------------------------------------------------------------
    @staticmethod
    def _call_id(data: Mapping[str, Any]) -> str:
        cid = data.get("litellm_call_id")
        return cid if isinstance(cid, str) and cid else f"obj-{id(data):x}"

    def _remember(self, key: str, call: _Call) -> None:
        self._calls[key] = call
        while len(self._calls) > _MAX_INFLIGHT:
            self._calls.popitem(last=False)

    def _maybe_forget(self, key: str, call: _Call) -> None:
        if call.recorded and call.headers_sent:
            self._calls.pop(key, None)

    def _record(self, call: _Call, status: int, observed: _Observed | None = None) -> None:
        if call.recorded:
            return
        call.recorded = True
        obs = observed or _Observed()
        try:
            self.engine.record(
                call.ctx,
                call.decision,
                status=status,
                output_tokens=obs.output_tokens,
                reasoning_tokens=obs.reasoning_tokens,
                response_text=obs.response_text,
            )
        except Exception:  # learning must never break serving
            log.exception("online learning failed for %s", call.ctx.request_id)

    def _decide(self, ctx: RequestContext) -> Decision:
        try:
            return self.engine.decide(ctx)
        except Exception:
            log.exception("distillshield engine failed for %s", ctx.request_id)
            if self.fail_open:
                return Decision(reasons=("fail:open:engine_error",), fail_mode="open")
            return Decision(
                actions=frozenset({Action.BLOCK}), reasons=("fail:closed:engine_error",), fail_mode="closed"
            )

    # -- hooks ----------------------------------------------------------------------------
    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: Any,
        data: dict[str, Any],
        call_type: Any,
    ) -> dict[str, Any] | None:
        """Decide; raise ``HTTPException`` for block / throttle / refuse / fail-closed."""
        key = self._call_id(data)
        try:
            ctx = self.build_context(user_api_key_dict, data, str(call_type), key)
        except BadRequestError as exc:
            raise HTTPException(
                status_code=400,
                detail={
                    "error": {"message": str(exc), "type": "invalid_request_error", "code": "invalid_request"}
                },
            ) from exc
        if ctx is None:
            return data
        decision = self._decide(ctx)
        call = _Call(ctx, decision, _decision_headers(decision, ctx.request_id))
        self._remember(key, call)
        if ctx.endpoint not in (CHAT, RESPONSES) and decision.actions & {Action.PROTECT, Action.MARK}:
            log.warning(
                "%s: %s decided on %s, which this guardrail cannot rewrite; answer sent as is",
                ctx.request_id,
                ",".join(sorted(a.name.lower() for a in decision.actions)),
                ctx.endpoint,
            )
        refusal = _refusal(decision)
        if refusal is None:
            return data
        status, message, etype, code, extra = refusal
        self._record(call, status)
        raise HTTPException(
            status_code=status,
            detail={"error": {"message": f"{message} [{code}]", "type": etype, "code": code}},
            headers={**call.headers, **extra},
        )

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        """``x-distillshield-*`` headers on every answer (success, refusal, error, stream)."""
        key = self._call_id(data)
        call = self._calls.get(key)
        if call is None:
            return None
        call.headers_sent = True
        self._maybe_forget(key, call)
        return dict(call.headers)

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> Any:
        """Record upstream failures (a refusal of ours was recorded when it was decided)."""
        key = self._call_id(request_data)
        call = self._calls.get(key)
        if call is not None and not call.recorded:
            status = getattr(original_exception, "status_code", None)
            self._record(call, status if isinstance(status, int) else 500)
            self._maybe_forget(key, call)
        return None

    async def async_post_call_success_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
    ) -> Any:
        """Protect and mark a non-streamed answer in place, then record the exchange."""
        key = self._call_id(data)
        call = self._calls.get(key)
        if call is None:
            return response
        endpoint = call.ctx.endpoint
        chat = endpoint == CHAT
        d = call.decision
        body = _dump(response)
        observed = _Observed()
        observed.usage(body.get("usage"))
        if Action.PROTECT in d.actions and endpoint in (CHAT, RESPONSES):
            protect = importlib.import_module("distillshield.gateway.protect")
            fn = protect.protect_chat_completion if chat else protect.protect_response
            original, dropped = body, False
            if chat:
                body = copy.deepcopy(body)
                dropped = _drop_litellm_reasoning(body)
            new_body, _report = fn(body, d.protect_mode)
            if new_body is not body or dropped:
                _write_back(response, original, new_body, chat)
                body = new_body
        mark_key = self._mark_key(d)
        if mark_key is not None and d.mark_tag and endpoint in (CHAT, RESPONSES):
            mark = _mark_module()
            if mark is not None:
                _mark_in_place(response, mark, mark_key, d.mark_tag, chat)
                body = _dump(response)
        text = _answer_text(endpoint, body)
        if text is not None:
            observed.text.append(text)
        self._record(call, 200, observed)
        self._maybe_forget(key, call)
        return response

    async def async_post_call_streaming_iterator_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_data: dict[str, Any],
    ) -> AsyncGenerator[Any, None]:
        """Rewrite the stream before it is sent: drop / summarise reasoning, mark the answer,
        collect usage and text; record the exchange when the stream ends (or is abandoned)."""
        key = self._call_id(request_data)
        call = self._calls.get(key)
        if call is None:
            async for item in response:
                yield item
            return
        endpoint = call.ctx.endpoint
        chat = endpoint == CHAT
        d = call.decision
        protector: Any = None
        if Action.PROTECT in d.actions and endpoint in (CHAT, RESPONSES):
            protect = importlib.import_module("distillshield.gateway.protect")
            cls = protect.ChatStreamProtector if chat else protect.ResponsesStreamProtector
            protector = cls(d.protect_mode)
        marker: Any = None
        mark_key = self._mark_key(d)
        if mark_key is not None and d.mark_tag and chat:
            mark = _mark_module()
            if mark is not None:
                marker = mark.StreamMarker(mark_key, d.mark_tag)
        observed = _Observed()
        status = 200
        try:
            async for item in _rewrite_stream(response, endpoint, protector, marker, observed):
                yield item
        except Exception:
            status = 502
            raise
        finally:
            self._record(call, status, observed)
            self._maybe_forget(key, call)

    # -- marking --------------------------------------------------------------------------
    def _mark_key(self, decision: Decision) -> bytes | None:
        if Action.MARK not in decision.actions or not decision.mark_tag:
            return None
        value = os.environ.get(self.mark_key_env) if self.mark_key_env else None
        return value.encode() if value else None


# --------------------------------------------------------------------------------------------
# response rewriting helpers
# --------------------------------------------------------------------------------------------


def _mark_module() -> Any:
    try:
        return importlib.import_module("distillshield.gateway.mark")
    except ImportError:
        log.warning("MARK decided but distillshield.gateway.mark is not available; answer not marked")
        return None


def _set_field(obj: Any, name: str, value: Any) -> None:
    if isinstance(obj, dict):
        if value is None and name not in obj:
            return
        obj[name] = value
        return
    try:
        setattr(obj, name, value)
    except (AttributeError, TypeError, ValueError):
        log.debug("cannot set %s on %s", name, type(obj).__name__)


def _write_back(response: Any, old: Mapping[str, Any], new: Mapping[str, Any], chat: bool) -> None:
    """Carry the protector's changes (a new body dict) into LiteLLM's response object."""
    if not chat:
        _set_field(response, "output", new.get("output"))
        return
    choices = response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)
    old_choices = old.get("choices") or []
    new_choices = new.get("choices") or []
    for choice_obj, old_choice, new_choice in zip(choices or [], old_choices, new_choices, strict=False):
        if old_choice is new_choice or not isinstance(new_choice, Mapping):
            continue
        if new_choice.get("logprobs") is None and old_choice.get("logprobs") is not None:
            _set_field(choice_obj, "logprobs", None)
        old_msg = old_choice.get("message")
        new_msg = new_choice.get("message")
        msg_obj = (
            choice_obj.get("message")
            if isinstance(choice_obj, dict)
            else getattr(choice_obj, "message", None)
        )
        if not isinstance(old_msg, Mapping) or not isinstance(new_msg, Mapping) or msg_obj is None:
            continue
        for name in set(old_msg) | set(new_msg):
            if old_msg.get(name) != new_msg.get(name):
                _set_field(msg_obj, name, new_msg.get(name))
        psf = getattr(msg_obj, "provider_specific_fields", None)
        if isinstance(psf, dict):  # LiteLLM keeps unknown provider fields here too
            for name in ("reasoning_content", "reasoning", "thinking", "reasoning_details"):
                if name in psf and new_msg.get(name) is None:
                    psf.pop(name, None)


def _mark_in_place(response: Any, mark: Any, key: bytes, tag: str, chat: bool) -> None:
    if chat:
        for choice in getattr(response, "choices", None) or []:
            msg = getattr(choice, "message", None)
            content = getattr(msg, "content", None)
            if isinstance(content, str):
                _set_field(msg, "content", mark.mark_text(content, key, tag))
        return
    body = _dump(response)
    output = body.get("output")
    if not isinstance(output, list):
        return
    for item in output:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = mark.mark_text(part["text"], key, tag)
    _set_field(response, "output", output)


def _answer_text(endpoint: str, body: Mapping[str, Any]) -> str | None:
    """The answer text of a non-streamed response, as the gateway logs it."""
    if endpoint == RESPONSES:
        parts = [
            c["text"]
            for item in body.get("output") or []
            if isinstance(item, Mapping) and item.get("type") == "message"
            for c in item.get("content") or []
            if isinstance(c, Mapping) and isinstance(c.get("text"), str)
        ]
        return "".join(parts) if parts else None
    if endpoint == "/v1/messages":
        parts = [
            b["text"]
            for b in body.get("content") or []
            if isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        return "".join(parts) if parts else None
    choices = body.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    msg = first.get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else first.get("text")
    return content if isinstance(content, str) else None


def _chunk_object(chunk: dict[str, Any], chat: bool) -> Any:
    """A LiteLLM stream object for a (rewritten) chunk dict, built as LiteLLM builds its own."""
    if chat:
        return ModelResponseStream(**chunk)
    from litellm.llms.openai.responses.transformation import OpenAIResponsesAPIConfig
    from pydantic import ValidationError

    try:
        cls: Any = OpenAIResponsesAPIConfig.get_event_model_class(event_type=str(chunk.get("type")))
    except ValueError:
        from litellm.types.llms.openai import GenericEvent

        cls = GenericEvent
    try:
        return cls(**chunk)
    except ValidationError:
        return cls.model_construct(**chunk)


def _observe_chunk(chunk: Mapping[str, Any], endpoint: str, observed: _Observed) -> None:
    observed.usage(chunk.get("usage"))
    if endpoint == RESPONSES:
        if chunk.get("type") == "response.output_text.delta" and isinstance(chunk.get("delta"), str):
            observed.text.append(chunk["delta"])
        resp = chunk.get("response")
        if isinstance(resp, Mapping):
            observed.usage(resp.get("usage"))
        return
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, Mapping) else None
        if isinstance(delta, Mapping) and isinstance(delta.get("content"), str):
            observed.text.append(delta["content"])
        elif isinstance(choice, Mapping) and isinstance(choice.get("text"), str):
            observed.text.append(choice["text"])


async def _rewrite_stream(
    response: AsyncIterator[Any], endpoint: str, protector: Any, marker: Any, observed: _Observed
) -> AsyncGenerator[Any, None]:
    chat = endpoint == CHAT
    last: Any = None
    async for item in response:
        chunk = _dump(item)
        if not chunk:
            yield item
            continue
        last = item
        if protector is None and marker is None:
            _observe_chunk(chunk, endpoint, observed)
            yield item
            continue
        dropped = chat and protector is not None and _drop_litellm_reasoning(chunk)
        outs = protector.feed(chunk) if protector is not None else [chunk]
        for out in outs:
            changed = dropped or out is not chunk
            if marker is not None:
                changed = _mark_chunk(out, marker) or changed
            _observe_chunk(out, endpoint, observed)
            yield _chunk_object(out, chat) if changed else item
    tail: list[dict[str, Any]] = list(protector.finish()) if protector is not None else []
    if marker is not None:
        rest = marker.finish()
        if rest:
            tail.append(
                {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": rest}}]}
            )
    for out in tail:
        base: dict[str, Any] = _dump(last) if chat and last is not None else {}
        full: dict[str, Any] = {k: base[k] for k in ("id", "created", "model", "object") if k in base}
        full.update(out)
        _observe_chunk(full, endpoint, observed)
        yield _chunk_object(full, chat)


#: Reasoning carriers LiteLLM adds to chat messages and deltas on top of the OpenAI-compatible
#: fields the gateway's protector knows (Anthropic / Bedrock thinking, OpenAI reasoning items).
LITELLM_REASONING_FIELDS = ("thinking_blocks", "reasoning_items")


def _drop_litellm_reasoning(chunk: dict[str, Any]) -> bool:
    """Null LiteLLM's own reasoning carriers in a chat body or chunk dict (in place)."""
    dropped = False
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict):
                for name in LITELLM_REASONING_FIELDS:
                    if part.get(name):
                        part[name] = None
                        dropped = True
    return dropped


def _mark_chunk(chunk: dict[str, Any], marker: Any) -> bool:
    changed = False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str) and delta["content"]:
            new = marker.feed(delta["content"])
            if new != delta["content"]:
                delta["content"] = new
                changed = True
    return changed
