"""A fast, deterministic OpenAI-compatible mock model server (raw ASGI) for tests, chaos tests
and benchmarks of the gateway.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (plain and ``stream: true``, with
``stream_options.include_usage``) and ``POST /v1/responses`` (plain and streamed with the
Responses event types, including a ``reasoning`` output item). The ``/v1`` prefix is
optional, and ``GET /health`` answers ``{"status": "ok"}``.

Content is a pure function of the request's messages (seeded by a SHA-256 of their text), so
the same prompt always gets the same reasoning and answer whatever the model name, and the
same bytes on every run. How the reasoning is exposed follows :attr:`MockConfig.reasoning`:

``"field"``
    a separate field, as vLLM's and DeepSeek's reasoning parsers do: ``message.reasoning_content``
    / ``delta.reasoning_content`` on chat, a ``reasoning`` output item (``content`` of
    ``reasoning_text`` plus a one-sentence ``summary``) on Responses;
``"think"``
    inline, ``<think>...</think>`` at the start of the content / output text (a model served
    without a reasoning parser);
``"none"``
    no reasoning at all.

Per request, the model name overrides the configuration: it is split on ``-`` after an optional
provider prefix (``openai/mock-think`` -> ``mock``, ``think``) and each part may be
``field`` / ``think`` / ``plain`` (= ``none``), ``error`` followed by a status
(``mock-error-500``, ``mock-error-429``: an OpenAI error body), ``timeout`` (never answers:
sleeps :attr:`MockConfig.timeout_sleep_s`) or ``cut`` (the connection is dropped half way
through the body). The same can be asked by header: ``x-mock-reasoning``, ``x-mock-error``
(a status), ``x-mock-fault`` (``timeout`` / ``cut``), ``x-mock-latency`` and
``x-mock-chunk-delay`` (seconds).

Usage is realistic in shape: ``prompt_tokens`` is the request's text length / 4 (rounded up),
every generated piece (a word, a tag, a line break) is one completion token, and
``completion_tokens_details.reasoning_tokens`` counts the reasoning pieces (also in ``"think"``
mode, where they sit inside the content). ``max_tokens`` / ``max_completion_tokens`` /
``max_output_tokens`` cut the generation (reasoning first, then the answer) and give
``finish_reason: "length"`` (Responses: ``status: "incomplete"``).

Serving it: :func:`make_mock_upstream` is the ASGI app; :class:`MockTransport` hands it to an
``httpx.AsyncClient`` in process (honouring client timeouts, which ``httpx.ASGITransport``
ignores); :func:`running_mock` runs it with uvicorn on a loopback port in a background thread
(real sockets: incremental streams, dropped connections); :func:`serve_mock` is the blocking
command-line server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import random
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = [
    "ASGIApp",
    "MockConfig",
    "MockStreamCutError",
    "MockTransport",
    "make_mock_upstream",
    "running_mock",
    "serve_mock",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ReasoningMode = Literal["field", "think", "none"]

try:  # orjson is several times faster; the stdlib is the fallback so the mock needs nothing
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(raw: bytes) -> Any:
        return orjson.loads(raw)

except ImportError:  # pragma: no cover - exercised only where orjson is absent

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def _loads(raw: bytes) -> Any:
        return json.loads(raw)


class MockStreamCutError(RuntimeError):
    """Raised inside the app to drop the connection mid-body (the ``cut`` fault)."""


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the mock answers. All times are seconds; everything else is deterministic.

    ``answer_tokens`` / ``reasoning_tokens`` are the mean lengths (each request gets between
    half and one and a half times that, drawn from its seed). ``tokens_per_chunk`` groups
    pieces into stream chunks (1 = one token per chunk, like a real server). ``created`` is
    the fixed timestamp put in every object, so responses are byte-identical across runs.
    """

    reasoning: ReasoningMode = "field"
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    answer_tokens: int = 48
    reasoning_tokens: int = 96
    tokens_per_chunk: int = 1
    timeout_sleep_s: float = 3600.0
    retry_after_s: int = 1
    created: int = 1_735_689_600
    models: tuple[str, ...] = ("mock", "mock-field", "mock-think", "mock-plain")
    max_choices: int = 8


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one request asked for, after model-name and header overrides."""

    reasoning: ReasoningMode
    latency_s: float
    chunk_delay_s: float
    error_status: int | None
    timeout: bool
    cut: bool


_VOCAB: tuple[str, ...] = tuple(
    " ".join(
        (
            "the model answer data value result function number system method input output first",
            "second next then because therefore check compute consider case step approach note",
            "example list table query field record simple direct final total small large correct",
            "error rule order process token signal score group key time rate point test sample",
            "pattern update state cache index path range limit count build merge split sort",
        )
    ).split()
)
_REASONING_OPENERS = (
    "Okay, let me think about this step by step.",
    "Let me work through the question carefully.",
    "First, I need to understand what is being asked.",
    "Hmm, let me reason about this before answering.",
)
_ANSWER_OPENERS = ("Here is the answer.", "In short:", "The result is as follows.", "Sure.")

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


# ----------------------------------------------------------------------------- content


def _text_of(content: Any) -> str:
    """The text of a message ``content`` (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def _sentences(rng: random.Random, n_tokens: int, opener: str) -> list[str]:
    """``n_tokens`` pieces of prose: the opener's words, then words with periodic full stops."""
    pieces: list[str] = []
    for i, word in enumerate(opener.split()):
        pieces.append(word if i == 0 else " " + word)
    since_stop = 0
    while len(pieces) < n_tokens:
        word = _VOCAB[rng.randrange(len(_VOCAB))]
        if since_stop == 0:
            word = word.capitalize()
        since_stop += 1
        if since_stop >= 6 and rng.random() < 0.2:
            word += "."
            since_stop = 0
        pieces.append(" " + word)
    pieces = pieces[:n_tokens]
    if pieces and not pieces[-1].endswith("."):
        pieces[-1] += "."
    return pieces


@dataclass(frozen=True, slots=True)
class _Generation:
    """One choice's output as token pieces, already cut to the token budget."""

    reasoning: list[str]  # reasoning pieces (field mode) or the whole think block (think mode)
    answer: list[str]
    reasoning_count: int
    truncated: bool

    @property
    def completion_tokens(self) -> int:
        return len(self.reasoning) + len(self.answer)


def _generate(
    seed: bytes, index: int, cfg: MockConfig, mode: ReasoningMode, budget: int | None
) -> _Generation:
    rng = random.Random(int.from_bytes(hashlib.sha256(seed + index.to_bytes(4, "big")).digest()[:8], "big"))
    n_answer = max(3, cfg.answer_tokens // 2 + rng.randrange(max(1, cfg.answer_tokens)))
    n_reason = max(6, cfg.reasoning_tokens // 2 + rng.randrange(max(1, cfg.reasoning_tokens)))
    reasoning = _sentences(rng, n_reason, _REASONING_OPENERS[rng.randrange(len(_REASONING_OPENERS))])
    answer = _sentences(rng, n_answer, _ANSWER_OPENERS[rng.randrange(len(_ANSWER_OPENERS))])
    if mode == "none":
        reasoning = []
    elif mode == "think":
        reasoning = ["<think>", "\n", reasoning[0].lstrip(), *reasoning[1:], "\n", "</think>", "\n\n"]
    if budget is None or budget >= len(reasoning) + len(answer):
        return _Generation(reasoning, answer, len(reasoning), False)
    budget = max(0, budget)
    cut_reasoning = reasoning[:budget]
    cut_answer = answer[: max(0, budget - len(reasoning))]
    return _Generation(cut_reasoning, cut_answer, len(cut_reasoning), True)


def _usage_prompt_tokens(body: dict[str, Any]) -> int:
    chars = 0
    for msg in body.get("messages") or ():
        if isinstance(msg, dict):
            chars += len(_text_of(msg.get("content")))
    inp = body.get("input")
    if isinstance(inp, str):
        chars += len(inp)
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict):
                chars += len(_text_of(item.get("content")))
            elif isinstance(item, str):
                chars += len(item)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        chars += len(instructions)
    tools = body.get("tools")
    if tools:
        chars += len(_dumps(tools))
    return max(1, math.ceil(chars / 4))


def _seed_of(body: dict[str, Any]) -> bytes:
    h = hashlib.sha256()
    for msg in body.get("messages") or ():
        if isinstance(msg, dict):
            h.update(str(msg.get("role", "")).encode())
            h.update(b"\x00")
            h.update(_text_of(msg.get("content")).encode())
            h.update(b"\x01")
    inp = body.get("input")
    if isinstance(inp, str):
        h.update(b"user\x00" + inp.encode() + b"\x01")
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict):
                h.update(str(item.get("role", "user")).encode())
                h.update(b"\x00")
                h.update(_text_of(item.get("content")).encode())
                h.update(b"\x01")
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        h.update(b"system\x00" + instructions.encode() + b"\x01")
    return h.digest()


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


# ----------------------------------------------------------------------------- planning


def _plan(cfg: MockConfig, model: str, headers: dict[str, str]) -> _Plan:
    reasoning: ReasoningMode = cfg.reasoning
    error_status: int | None = None
    timeout = cut = False
    parts = model.rsplit("/", 1)[-1].lower().split("-")
    for i, part in enumerate(parts):
        if part in ("field", "think"):
            reasoning = "field" if part == "field" else "think"
        elif part in ("plain", "none"):
            reasoning = "none"
        elif part == "error" and i + 1 < len(parts) and parts[i + 1].isdigit():
            error_status = int(parts[i + 1])
        elif part == "timeout":
            timeout = True
        elif part == "cut":
            cut = True
    h_reason = headers.get("x-mock-reasoning")
    if h_reason in ("field", "think", "none"):
        reasoning = "field" if h_reason == "field" else "think" if h_reason == "think" else "none"
    h_error = headers.get("x-mock-error", "")
    if h_error.isdigit():
        error_status = int(h_error)
    h_fault = headers.get("x-mock-fault", "")
    timeout = timeout or h_fault == "timeout"
    cut = cut or h_fault == "cut"
    return _Plan(
        reasoning=reasoning,
        latency_s=_float_header(headers, "x-mock-latency", cfg.latency_s),
        chunk_delay_s=_float_header(headers, "x-mock-chunk-delay", cfg.chunk_delay_s),
        error_status=error_status if error_status is not None and 400 <= error_status <= 599 else None,
        timeout=timeout,
        cut=cut,
    )


def _float_header(headers: dict[str, str], name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


# ----------------------------------------------------------------------------- ASGI plumbing

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(
    send: Send,
    status: int,
    obj: Any,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    cut: bool = False,
) -> None:
    body = _dumps(obj)
    headers = [*_JSON_HEADERS, *(extra_headers or [])]
    if not cut:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if cut:
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise MockStreamCutError("mock fault: connection cut mid-body")
    await send({"type": "http.response.body", "body": body})


def _error_body(status: int, message: str) -> dict[str, Any]:
    etype, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


class _SSE:
    """Sends server-sent events, honouring the per-chunk delay and the ``cut`` fault."""

    __slots__ = ("_cut_after", "_delay", "_n", "_send")

    def __init__(self, send: Send, delay: float, cut_after: int | None) -> None:
        self._send = send
        self._delay = delay
        self._cut_after = cut_after
        self._n = 0

    async def start(self, request_id: str) -> None:
        headers = [*_SSE_HEADERS, (b"x-request-id", request_id.encode())]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def event(self, data: Any, event: str | None = None) -> None:
        if self._cut_after is not None and self._n >= self._cut_after:
            raise MockStreamCutError("mock fault: stream cut")
        if self._delay > 0 and self._n > 0:
            await asyncio.sleep(self._delay)
        payload = data if isinstance(data, bytes) else _dumps(data)
        prefix = b"event: " + event.encode() + b"\n" if event else b""
        await self._send(
            {"type": "http.response.body", "body": prefix + b"data: " + payload + b"\n\n", "more_body": True}
        )
        self._n += 1

    async def close(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def _chunks(pieces: list[str], size: int) -> Iterator[str]:
    size = max(1, size)
    for i in range(0, len(pieces), size):
        yield "".join(pieces[i : i + size])


# ----------------------------------------------------------------------------- the app


def make_mock_upstream(config: MockConfig | None = None) -> ASGIApp:
    """The mock server as a raw ASGI app (serve it with uvicorn or ``httpx.ASGITransport``)."""
    cfg = config or MockConfig()
    counter = itertools.count(1)
    models_body = _dumps(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": cfg.created, "owned_by": "distillshield-mock"}
                for m in cfg.models
            ],
        }
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            path = path[3:]
        method: str = scope["method"]
        if method == "GET" and path == "/models":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(models_body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": models_body})
            return
        if method == "GET" and path in ("/health", "/healthz"):
            await _send_json(send, 200, {"status": "ok"})
            return
        if path not in ("/chat/completions", "/responses"):
            await _send_json(send, 404, _error_body(404, f"Unknown route {method} {scope['path']}"))
            return
        if method != "POST":
            await _send_json(send, 405, _error_body(405, f"Method {method} not allowed"))
            return
        raw = await _read_body(receive)
        try:
            body = _loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            await _send_json(send, 400, _error_body(400, "Request body must be a JSON object"))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        model = body.get("model")
        if not isinstance(model, str) or not model:
            await _send_json(send, 400, _error_body(400, "you must provide a model parameter"))
            return
        plan = _plan(cfg, model, headers)
        if plan.latency_s > 0:
            await asyncio.sleep(plan.latency_s)
        if plan.timeout:
            await asyncio.sleep(cfg.timeout_sleep_s)
            await _send_json(send, 504, _error_body(504, "mock timeout elapsed"))
            return
        if plan.error_status is not None:
            extra = [(b"retry-after", str(cfg.retry_after_s).encode())] if plan.error_status == 429 else None
            msg = f"mock upstream error {plan.error_status} for model {model}"
            await _send_json(send, plan.error_status, _error_body(plan.error_status, msg), extra)
            return
        n = next(counter)
        seed = _seed_of(body)
        rid = f"{seed[:6].hex()}{n:06d}"
        if path == "/chat/completions":
            await _chat(send, cfg, plan, body, model, seed, rid)
        else:
            await _responses(send, cfg, plan, body, model, seed, rid)

    return app


# ----------------------------------------------------------------------------- chat completions


def _chat_usage(prompt_tokens: int, gens: list[_Generation]) -> dict[str, Any]:
    completion = sum(g.completion_tokens for g in gens)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": sum(g.reasoning_count for g in gens)},
    }


async def _chat(
    send: Send, cfg: MockConfig, plan: _Plan, body: dict[str, Any], model: str, seed: bytes, rid: str
) -> None:
    budget = _int_or_none(body.get("max_completion_tokens"))
    if budget is None:
        budget = _int_or_none(body.get("max_tokens"))
    n = max(1, min(cfg.max_choices, _int_or_none(body.get("n")) or 1))
    gens = [_generate(seed, i, cfg, plan.reasoning, budget) for i in range(n)]
    prompt_tokens = _usage_prompt_tokens(body)
    cid = "chatcmpl-" + rid
    if not body.get("stream"):
        choices = []
        for i, g in enumerate(gens):
            answer = "".join(g.answer)
            message: dict[str, Any] = {"role": "assistant", "refusal": None}
            if plan.reasoning == "think":
                message["content"] = "".join(g.reasoning) + answer
            else:
                message["content"] = answer if g.answer or not g.reasoning else None
                if plan.reasoning == "field":
                    message["reasoning_content"] = "".join(g.reasoning)
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "length" if g.truncated else "stop",
                }
            )
        await _send_json(
            send,
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": cfg.created,
                "model": model,
                "system_fingerprint": "fp_mock",
                "choices": choices,
                "usage": _chat_usage(prompt_tokens, gens),
            },
            [(b"x-request-id", rid.encode())],
            cut=plan.cut,
        )
        return

    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    total_chunks = sum(2 + math.ceil(g.completion_tokens / max(1, cfg.tokens_per_chunk)) for g in gens) + int(
        include_usage
    )
    sse = _SSE(send, plan.chunk_delay_s, total_chunks // 2 if plan.cut else None)
    head = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": cfg.created,
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        obj = {
            **head,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return obj

    await sse.start(rid)
    for i, g in enumerate(gens):
        await sse.event(chunk(i, {"role": "assistant", "content": ""}))
        if plan.reasoning == "think":
            for text in _chunks(g.reasoning + g.answer, cfg.tokens_per_chunk):
                await sse.event(chunk(i, {"content": text}))
        else:
            for text in _chunks(g.reasoning, cfg.tokens_per_chunk):
                await sse.event(chunk(i, {"reasoning_content": text}))
            for text in _chunks(g.answer, cfg.tokens_per_chunk):
                await sse.event(chunk(i, {"content": text}))
        await sse.event(chunk(i, {}, "length" if g.truncated else "stop"))
    if include_usage:
        await sse.event({**head, "choices": [], "usage": _chat_usage(prompt_tokens, gens)})
    await sse.event(b"[DONE]")
    await sse.close()


# ----------------------------------------------------------------------------- responses


async def _responses(
    send: Send, cfg: MockConfig, plan: _Plan, body: dict[str, Any], model: str, seed: bytes, rid: str
) -> None:
    budget = _int_or_none(body.get("max_output_tokens"))
    g = _generate(seed, 0, cfg, plan.reasoning, budget)
    prompt_tokens = _usage_prompt_tokens(body)
    resp_id, rs_id, msg_id = "resp_" + rid, "rs_" + rid, "msg_" + rid
    reasoning_text = "".join(g.reasoning)
    answer = "".join(g.answer)
    output_text = reasoning_text + answer if plan.reasoning == "think" else answer
    summary_text = reasoning_text.split(".")[0].strip() + "." if reasoning_text else ""
    usage = {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": g.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": g.reasoning_count},
        "total_tokens": prompt_tokens + g.completion_tokens,
    }
    status = "incomplete" if g.truncated else "completed"

    def reasoning_item(done: bool) -> dict[str, Any]:
        return {
            "id": rs_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": summary_text}] if done else [],
            "content": [{"type": "reasoning_text", "text": reasoning_text if done else ""}],
            "status": status if done else "in_progress",
        }

    def message_item(done: bool) -> dict[str, Any]:
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "status": status if done else "in_progress",
            "content": [{"type": "output_text", "text": output_text, "annotations": [], "logprobs": []}]
            if done
            else [],
        }

    has_reasoning_item = plan.reasoning == "field" and bool(g.reasoning)
    has_message = bool(output_text) or not has_reasoning_item

    def response(done: bool) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        if done and has_reasoning_item:
            output.append(reasoning_item(True))
        if done and has_message:
            output.append(message_item(True))
        return {
            "id": resp_id,
            "object": "response",
            "created_at": cfg.created,
            "status": status if done else "in_progress",
            "model": model,
            "output": output,
            "usage": usage if done else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if done and g.truncated else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": budget,
            "metadata": body.get("metadata") or {},
            "parallel_tool_calls": True,
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "reasoning": {"effort": None, "summary": None},
            "text": {"format": {"type": "text"}},
            "store": False,
        }

    if not body.get("stream"):
        await _send_json(send, 200, response(True), [(b"x-request-id", rid.encode())], cut=plan.cut)
        return

    reasoning_deltas = list(_chunks(g.reasoning, cfg.tokens_per_chunk)) if has_reasoning_item else []
    text_deltas = list(
        _chunks(g.reasoning + g.answer if plan.reasoning == "think" else g.answer, cfg.tokens_per_chunk)
    )
    n_events = 3 + len(reasoning_deltas) + len(text_deltas) + (10 if has_reasoning_item else 0) + 6
    sse = _SSE(send, plan.chunk_delay_s, n_events // 2 if plan.cut else None)
    seq = itertools.count()

    async def emit(etype: str, **fields: Any) -> None:
        await sse.event({"type": etype, "sequence_number": next(seq), **fields}, event=etype)

    await sse.start(rid)
    await emit("response.created", response=response(False))
    await emit("response.in_progress", response=response(False))
    out_index = 0
    if has_reasoning_item:
        await emit("response.output_item.added", output_index=out_index, item=reasoning_item(False))
        part = {"type": "reasoning_text", "text": ""}
        await emit(
            "response.content_part.added", item_id=rs_id, output_index=out_index, content_index=0, part=part
        )
        for d in reasoning_deltas:
            await emit(
                "response.reasoning_text.delta",
                item_id=rs_id,
                output_index=out_index,
                content_index=0,
                delta=d,
            )
        await emit(
            "response.reasoning_text.done",
            item_id=rs_id,
            output_index=out_index,
            content_index=0,
            text=reasoning_text,
        )
        await emit(
            "response.content_part.done",
            item_id=rs_id,
            output_index=out_index,
            content_index=0,
            part={"type": "reasoning_text", "text": reasoning_text},
        )
        summary_part = {"type": "summary_text", "text": ""}
        await emit(
            "response.reasoning_summary_part.added",
            item_id=rs_id,
            output_index=out_index,
            summary_index=0,
            part=summary_part,
        )
        await emit(
            "response.reasoning_summary_text.delta",
            item_id=rs_id,
            output_index=out_index,
            summary_index=0,
            delta=summary_text,
        )
        await emit(
            "response.reasoning_summary_text.done",
            item_id=rs_id,
            output_index=out_index,
            summary_index=0,
            text=summary_text,
        )
        await emit(
            "response.reasoning_summary_part.done",
            item_id=rs_id,
            output_index=out_index,
            summary_index=0,
            part={"type": "summary_text", "text": summary_text},
        )
        await emit("response.output_item.done", output_index=out_index, item=reasoning_item(True))
        out_index += 1
    if has_message:
        await emit("response.output_item.added", output_index=out_index, item=message_item(False))
        await emit(
            "response.content_part.added",
            item_id=msg_id,
            output_index=out_index,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        )
        for d in text_deltas:
            await emit(
                "response.output_text.delta",
                item_id=msg_id,
                output_index=out_index,
                content_index=0,
                delta=d,
                logprobs=[],
            )
        await emit(
            "response.output_text.done",
            item_id=msg_id,
            output_index=out_index,
            content_index=0,
            text=output_text,
            logprobs=[],
        )
        await emit(
            "response.content_part.done",
            item_id=msg_id,
            output_index=out_index,
            content_index=0,
            part={"type": "output_text", "text": output_text, "annotations": [], "logprobs": []},
        )
        await emit("response.output_item.done", output_index=out_index, item=message_item(True))
    final = "response.incomplete" if g.truncated else "response.completed"
    await emit(final, response=response(True))
    await sse.close()


# ----------------------------------------------------------------------------- serving


def serve_mock(host: str = "127.0.0.1", port: int = 8099, config: MockConfig | None = None) -> None:
    """Run the mock with uvicorn until interrupted (the ``distillshield gateway mock`` command)."""
    import uvicorn

    uvicorn.run(make_mock_upstream(config), host=host, port=port, log_level="warning", access_log=False)


class MockTransport(httpx.AsyncBaseTransport):
    """The mock in process, for an ``httpx.AsyncClient`` (no socket).

    ``httpx.ASGITransport`` ignores timeouts, so a client pointed at ``mock-timeout`` through
    it waits for :attr:`MockConfig.timeout_sleep_s`; this transport applies the request's read
    timeout to the whole exchange and raises ``httpx.ReadTimeout``, as a socket would. Like
    ``httpx.ASGITransport`` it returns a response once the app has finished (streams arrive
    whole) and lets app exceptions (the ``cut`` fault) propagate.
    """

    def __init__(self, config: MockConfig | None = None, *, app: ASGIApp | None = None) -> None:
        self.app = app or make_mock_upstream(config)
        self._inner = httpx.ASGITransport(app=self.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        read = timeouts.get("read") if isinstance(timeouts, dict) else None
        try:
            return await asyncio.wait_for(self._inner.handle_async_request(request), read)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"mock upstream: no answer within {read} s", request=request) from exc


@contextlib.contextmanager
def running_mock(config: MockConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the mock with uvicorn in a background thread; yields its base URL (``.../v1``).

    ``port=0`` picks a free port. The server is stopped when the block exits.
    """
    from distillshield.gateway._serve import serving

    with serving(make_mock_upstream(config), host=host, port=port) as url:
        yield url + "/v1"
