"""What a request says, read once from its body: shared by the proxy and the LiteLLM guardrail.

:func:`parse_chat` / :func:`parse_responses` read the facts of an OpenAI request body
(``/v1/chat/completions`` / ``/v1/responses``); :func:`request_context` joins them with what
the caller knows about the connection (account, key, address, client) into the
:class:`~distillshield.gateway._types.RequestContext` the engine decides on. The proxy
(``app.py``) and the guardrail (``litellm_guardrail.py``) both build their contexts here, so
the same request yields the same context — and the same decision — either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from distillshield.gateway._types import RequestContext

__all__ = [
    "BadRequestError",
    "ParsedRequest",
    "content_text",
    "parse_chat",
    "parse_responses",
    "request_context",
]


def content_text(content: Any) -> str | None:
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
class ParsedRequest:
    """The facts of one request body (see :func:`parse_chat`)."""

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


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_chat(body: dict[str, Any]) -> ParsedRequest:
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
        text = content_text(m.get("content"))
        if m["role"] in ("system", "developer") and text:
            system.append(text)
        elif m["role"] == "user":
            prompt = text
    temp = body.get("temperature")
    return ParsedRequest(
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


def parse_responses(body: dict[str, Any]) -> ParsedRequest:
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
                prompt = content_text(item.get("content"))
            elif isinstance(item, dict) and item.get("role") in ("system", "developer"):
                system = "\n".join(filter(None, [system, content_text(item.get("content"))])) or None
    elif inp is not None:
        raise BadRequestError("'input' must be a string or an array of items")
    temp = body.get("temperature")
    prev = body.get("previous_response_id")
    return ParsedRequest(
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


def request_context(
    parsed: ParsedRequest,
    *,
    request_id: str,
    ts: float,
    account_id: str,
    api_key_id: str | None,
    model: str,
    endpoint: str,
    ip: str,
    user_agent: str | None,
    tls_fingerprint: str | None,
) -> RequestContext:
    """The engine's view of a request: its parsed body plus the caller's connection facts."""
    return RequestContext(
        request_id=request_id,
        ts=ts,
        account_id=account_id,
        api_key_id=api_key_id,
        model=model,
        endpoint=endpoint,
        ip=ip,
        user_agent=user_agent,
        tls_fingerprint=tls_fingerprint,
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
