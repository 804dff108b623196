"""The LiteLLM guardrail: its hooks with a fake engine, then a real LiteLLM proxy end to end.

The real-proxy test starts ``litellm --config ...`` as a subprocess on loopback, in front of
the mock upstream (uvicorn in a thread), with this module on its ``PYTHONPATH`` so the proxy
can load :class:`RuleEngine` (the engine, configured from the YAML) and :func:`custom_auth`
(API key ``sk-acct-<account>`` → LiteLLM user ``<account>``: virtual keys without a database).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# no network here: LiteLLM must not try to fetch its remote model cost map on import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

litellm = pytest.importorskip(
    "litellm", reason="LiteLLM is not installed (pip install 'distillshield[litellm]')"
)

from fastapi import HTTPException, Request  # noqa: E402
from litellm.proxy._types import UserAPIKeyAuth  # noqa: E402
from litellm.types.llms.openai import ResponsesAPIResponse  # noqa: E402
from litellm.types.utils import ModelResponseStream  # noqa: E402

from distillshield.gateway._types import Action, Decision, RequestContext  # noqa: E402
from distillshield.gateway.litellm_guardrail import (  # noqa: E402
    DistillshieldGuardrail,
    engine_from_config,
)
from distillshield.gateway.mock_upstream import MockConfig, make_mock_upstream, running_mock  # noqa: E402

TESTS = Path(__file__).resolve().parent
CALL_ID = "call-0001"


# ------------------------------------------------------------------ the fake engine (also used by the proxy)


class RuleEngine:
    """Decides by account: lists of accounts to block / throttle / refuse / protect / mark.

    ``record_path``: each ``record`` call is appended there as a JSON line (the proxy runs in
    another process; the test reads the file).
    """

    def __init__(
        self,
        block: list[str] | None = None,
        throttle: list[str] | None = None,
        refuse: list[str] | None = None,
        protect: list[str] | None = None,
        mark: list[str] | None = None,
        protect_mode: str = "strip",
        retry_after: float = 2.5,
        record_path: str | None = None,
    ) -> None:
        self.block = set(block or ())
        self.throttle = set(throttle or ())
        self.refuse = set(refuse or ())
        self.protect = set(protect or ())
        self.mark = set(mark or ())
        self.protect_mode = protect_mode
        self.retry_after = retry_after
        self.record_path = record_path
        self.seen: list[RequestContext] = []
        self.records: list[dict[str, Any]] = []

    def decide(self, ctx: RequestContext) -> Decision:
        self.seen.append(ctx)
        a = ctx.account_id
        if a in self.block:
            return Decision(actions=frozenset({Action.BLOCK}), reasons=("rule:test_block", "campaign:C-9"))
        if a in self.throttle:
            return Decision(
                actions=frozenset({Action.THROTTLE}), reasons=("throttle:rate",), retry_after=self.retry_after
            )
        if a in self.refuse:
            return Decision(reasons=("cot:expose_reasoning",), refuse_reasoning_request=True)
        actions = set()
        if a in self.protect:
            actions.add(Action.PROTECT)
        if a in self.mark:
            actions.add(Action.MARK)
        if actions:
            return Decision(
                actions=frozenset(actions),
                reasons=("rule:test_protect",),
                protect_mode=self.protect_mode,
                mark_tag="C-9" if Action.MARK in actions else None,
            )
        return Decision()

    def record(
        self,
        ctx: RequestContext,
        decision: Decision,
        *,
        status: int,
        output_tokens: int,
        reasoning_tokens: int | None,
        response_text: str | None,
    ) -> None:
        rec = {
            "request_id": ctx.request_id,
            "account": ctx.account_id,
            "endpoint": ctx.endpoint,
            "model": ctx.model,
            "stream": ctx.stream,
            "prompt": ctx.prompt,
            "ip": ctx.ip,
            "action": decision.action.name.lower(),
            "status": status,
            "output_tokens": output_tokens,
            "reasoning_tokens": reasoning_tokens,
            "response_text": response_text,
        }
        self.records.append(rec)
        if self.record_path:
            with open(self.record_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")


async def custom_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """LiteLLM ``custom_auth``: ``sk-acct-<account>`` authenticates LiteLLM user ``<account>``."""
    prefix = "sk-acct-"
    if not api_key.startswith(prefix):
        raise HTTPException(status_code=401, detail="unknown key")
    return UserAPIKeyAuth(
        api_key=api_key, token=f"hash-{api_key[len(prefix) :]}", user_id=api_key[len(prefix) :]
    )


# ------------------------------------------------------------------ helpers: LiteLLM-shaped inputs


def auth(
    user: str | None = "acct-a", team: str | None = "team-1", token: str | None = "hash-a"
) -> UserAPIKeyAuth:
    return UserAPIKeyAuth(user_id=user, team_id=team, token=token)


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Earlier question"},
    {"role": "assistant", "content": "Earlier answer"},
    {"role": "user", "content": "Why is the sky blue?"},
]


def chat_data(**over: Any) -> dict[str, Any]:
    """A request ``data`` dict as LiteLLM hands it to ``async_pre_call_hook`` (chat)."""
    data: dict[str, Any] = {
        "model": "mock-think",
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "user": "end-user-7",
        "litellm_call_id": CALL_ID,
        "metadata": {
            "requester_ip_address": "203.0.113.9",
            "user_agent": "openai-python/3.57",
            "user_api_key_hash": "hash-a",
            "headers": {"x-ja4": "t13d1516h2_aaa"},
            "requester_metadata": {"job": "eval"},
        },
        "proxy_server_request": {
            "url": "http://proxy/v1/chat/completions",
            "method": "POST",
            "headers": {"user-agent": "openai-python/3.57", "X-JA4": "t13d1516h2_aaa"},
            "arrival_time": 1_700_000_123.5,
        },
    }
    data.update(over)
    return data


def responses_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "mock-field",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello there"}]}],
        "instructions": "Be brief.",
        "max_output_tokens": 50,
        "litellm_call_id": CALL_ID,
        "litellm_metadata": {"requester_ip_address": "198.51.100.4", "user_agent": "curl/8"},
        "proxy_server_request": {"headers": {}, "arrival_time": 1_700_000_200.0},
    }
    data.update(over)
    return data


def guard(engine: RuleEngine | None = None, **kw: Any) -> DistillshieldGuardrail:
    return DistillshieldGuardrail.with_engine(engine or RuleEngine(), clock=lambda: 42.0, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _mock(path: str, body: dict[str, Any]) -> httpx.Response:
    app = make_mock_upstream(MockConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock/v1") as c:
        return await c.post(path, json=body)


def mock_json(path: str, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = run(_mock(path, body)).json()
    return out


def mock_events(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    text = run(_mock(path, {**body, "stream": True})).text
    events = []
    for block in text.split("\n\n"):
        data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
        if data and data[0] != "[DONE]":
            events.append(json.loads(data[0]))
    return events


def pre(
    g: DistillshieldGuardrail, data: dict[str, Any], call_type: str = "acompletion", **auth_kw: Any
) -> Any:
    return run(g.async_pre_call_hook(auth(**auth_kw), None, data, call_type))


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def stream_through(g: DistillshieldGuardrail, items: list[Any], data: dict[str, Any]) -> list[Any]:
    async def go() -> list[Any]:
        return [x async for x in g.async_post_call_streaming_iterator_hook(auth(), _aiter(items), data)]

    out: list[Any] = run(go())
    return out


# ------------------------------------------------------------------ (a) the hooks, in process


def test_context_from_litellm_chat_request() -> None:
    engine = RuleEngine()
    g = guard(engine)
    data = chat_data()
    assert pre(g, data) is data
    (ctx,) = engine.seen
    assert ctx.request_id == CALL_ID
    assert ctx.ts == 1_700_000_123.5
    assert ctx.account_id == "acct-a" and ctx.api_key_id == "hash-a"
    assert ctx.endpoint == "/v1/chat/completions" and ctx.model == "mock-think"
    assert ctx.ip == "203.0.113.9" and ctx.user_agent == "openai-python/3.57"
    assert ctx.tls_fingerprint == "t13d1516h2_aaa"
    assert ctx.prompt == "Why is the sky blue?" and ctx.system_prompt == "You are terse."
    assert ctx.n_messages == 4 and ctx.tools == ("lookup",)
    assert ctx.max_tokens == 64 and ctx.temperature == 0.2 and ctx.stream is False
    # the client's metadata and user, never LiteLLM's own metadata (hashes, headers...)
    assert ctx.metadata is not None
    assert json.loads(ctx.metadata) == {"job": "eval", "user": "end-user-7"}


def test_context_from_responses_request_and_clock_fallback() -> None:
    engine = RuleEngine()
    g = guard(engine)
    data = responses_data(proxy_server_request={}, stream=True)
    pre(g, data, "aresponses")
    (ctx,) = engine.seen
    assert ctx.endpoint == "/v1/responses"
    assert ctx.prompt == "hello there" and ctx.system_prompt == "Be brief."
    assert ctx.max_tokens == 50 and ctx.stream is True
    assert ctx.ip == "198.51.100.4" and ctx.user_agent == "curl/8"
    assert ctx.ts == 42.0  # no arrival time: the injected clock


def test_account_sources_in_order() -> None:
    g = guard(distillshield_account_from="team_id,key")
    assert g.account_id(auth(), {}) == "team-1"
    assert g.account_id(auth(team=None), {}) == "hash-a"
    assert g.account_id(auth(team=None, token=None), {}) == "anonymous"
    g = guard(distillshield_account_from=["end_user"])
    assert g.account_id(auth(), {"user": "u-9"}) == "u-9"
    assert guard().account_id(auth(user=None), {}) == "team-1"
    with pytest.raises(ValueError, match="unknown source"):
        guard(distillshield_account_from="email")


def test_legacy_completions_and_anthropic_messages_are_decided_too() -> None:
    engine = RuleEngine(block=["acct-x"], protect=["acct-a"])
    g = guard(engine)
    data = {"model": "m", "prompt": ["first", "Why?"], "max_tokens": 9, "litellm_call_id": "c-1"}
    pre(g, data, "atext_completion")
    data = {
        "model": "m",
        "system": [{"type": "text", "text": "Be kind."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
        "tools": [{"name": "search", "input_schema": {}}],
        "max_tokens": 100,
        "litellm_call_id": "c-2",
    }
    pre(g, data, "anthropic_messages")
    completion, messages = engine.seen
    assert (completion.endpoint, completion.prompt, completion.n_messages, completion.max_tokens) == (
        "/v1/completions",
        "Why?",
        2,
        9,
    )
    assert (messages.endpoint, messages.prompt, messages.system_prompt, messages.tools) == (
        "/v1/messages",
        "Hi there",
        "Be kind.",
        ("search",),
    )
    # stop decisions apply on every generation endpoint
    exc = _refused(g, {**data, "litellm_call_id": "c-3"}, user="acct-x")
    assert exc.status_code == 403
    # protection cannot rewrite an Anthropic answer: it goes out as is, and is recorded
    answer = {"content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hello"}]}
    answer["usage"] = {"input_tokens": 3, "output_tokens": 7}
    out = run(g.async_post_call_success_hook(data, auth(), answer))
    assert out is answer and answer["content"][0]["thinking"] == "hmm"
    rec = engine.records[-1]
    assert (rec["endpoint"], rec["status"], rec["output_tokens"], rec["response_text"]) == (
        "/v1/messages",
        200,
        7,
        "Hello",
    )


def test_unsupported_mode_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="supported event hooks"):
        guard(event_hook="during_call")


def test_other_call_types_pass_untouched() -> None:
    engine = RuleEngine(block=["acct-a"])
    g = guard(engine)
    data = {"model": "text-embedding", "input": "x", "litellm_call_id": CALL_ID}
    assert pre(g, data, "aembedding") is data
    assert engine.seen == []
    assert run(g.async_post_call_response_headers_hook(data, auth(), None)) is None


def _refused(g: DistillshieldGuardrail, data: dict[str, Any], **auth_kw: Any) -> HTTPException:
    with pytest.raises(HTTPException) as exc:
        pre(g, data, **auth_kw)
    return exc.value


def test_block_throttle_refuse_raise_openai_errors() -> None:
    engine = RuleEngine(block=["acct-x"], throttle=["acct-t"], refuse=["acct-r"])
    g = guard(engine)

    blocked = _refused(g, chat_data(litellm_call_id="c-x"), user="acct-x")
    assert blocked.status_code == 403
    assert blocked.detail["error"]["code"] == "distillshield_blocked"
    assert blocked.detail["error"]["type"] == "permission_error"
    assert "[distillshield_blocked]" in blocked.detail["error"]["message"]
    assert blocked.headers is not None
    assert blocked.headers["x-distillshield-action"] == "block"
    assert blocked.headers["x-distillshield-reasons"] == "rule:test_block"  # campaign ids stay private

    throttled = _refused(g, chat_data(litellm_call_id="c-t"), user="acct-t")
    assert throttled.status_code == 429
    assert throttled.headers is not None and throttled.headers["Retry-After"] == "3"
    assert throttled.detail["error"]["code"] == "distillshield_throttled"

    refused = _refused(g, chat_data(litellm_call_id="c-r"), user="acct-r")
    assert refused.status_code == 403
    assert refused.detail["error"]["code"] == "reasoning_request_refused"

    # every refusal is recorded once, with its status, before the model is called
    assert [(r["account"], r["status"]) for r in engine.records] == [
        ("acct-x", 403),
        ("acct-t", 429),
        ("acct-r", 403),
    ]
    # the headers hook (LiteLLM calls it for errors too) repeats the decision, then forgets it
    for cid in ("c-x", "c-t", "c-r"):
        headers = run(g.async_post_call_response_headers_hook({"litellm_call_id": cid}, auth(), None))
        assert headers["x-distillshield-request-id"] == cid
    assert g._calls == {}


def test_fail_closed_decision_and_engine_errors() -> None:
    class Closed(RuleEngine):
        def decide(self, ctx: RequestContext) -> Decision:
            return Decision(actions=frozenset({Action.BLOCK}), reasons=("fail:closed:x",), fail_mode="closed")

    exc = _refused(guard(Closed()), chat_data())
    assert exc.status_code == 503 and exc.headers is not None and exc.headers["Retry-After"] == "1"

    class Broken(RuleEngine):
        def decide(self, ctx: RequestContext) -> Decision:
            raise RuntimeError("boom")

    g = guard(Broken())
    data = chat_data()
    assert pre(g, data) is data
    headers = run(g.async_post_call_response_headers_hook(data, auth(), None))
    assert headers["x-distillshield-reasons"] == "fail:open:engine_error"
    exc = _refused(guard(Broken(), distillshield_fail_open=False), chat_data())
    assert exc.status_code == 503


def test_malformed_body_is_a_400() -> None:
    exc = _refused(guard(), chat_data(messages=[]))
    assert exc.status_code == 400 and exc.detail["error"]["type"] == "invalid_request_error"


def test_protect_non_stream_chat_field_and_think() -> None:
    engine = RuleEngine(protect=["acct-a"])
    g = guard(engine)
    for model in ("mock-field", "mock-think"):
        data = chat_data(model=model)
        pre(g, data)
        body = mock_json("/chat/completions", {"model": model, "messages": MESSAGES})
        resp = litellm.ModelResponse(**body)
        out = run(g.async_post_call_success_hook(data, auth(), resp))
        assert out is resp
        msg = out.choices[0].message
        dumped = json.loads(out.model_dump_json())
        assert "<think>" not in (msg.content or "")
        assert not getattr(msg, "reasoning_content", None)
        assert dumped["choices"][0]["message"].get("reasoning_content") is None
        assert body["choices"][0]["message"]["content"][-40:] in json.dumps(dumped)  # the answer is there
        reasoning = mock_json("/chat/completions", {"model": "mock-field", "messages": MESSAGES})
        assert reasoning["choices"][0]["message"]["reasoning_content"][:40] not in json.dumps(dumped)
        plain = mock_json("/chat/completions", {"model": "mock-plain", "messages": MESSAGES})
        assert msg.content == plain["choices"][0]["message"]["content"]
        headers = run(g.async_post_call_response_headers_hook(data, auth(), out))
        assert headers["x-distillshield-action"] == "protect"
    rec = engine.records[-1]
    assert rec["status"] == 200 and rec["output_tokens"] > 0 and rec["reasoning_tokens"] > 0
    assert "<think>" not in rec["response_text"]
    assert g._calls == {}


def test_protect_drops_litellm_thinking_blocks() -> None:
    """Anthropic / Bedrock thinking through LiteLLM's chat API: thinking_blocks next to
    reasoning_content, in messages and in stream deltas."""
    g = guard(RuleEngine(protect=["acct-a"]))
    block = {"type": "thinking", "thinking": "secret chain of thought", "signature": "sig"}
    data = chat_data(model="claude")
    pre(g, data)
    resp = litellm.ModelResponse(
        model="claude",
        choices=[
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "Blue light scatters more.",
                    "reasoning_content": "secret chain of thought",
                    "thinking_blocks": [block],
                },
            }
        ],
    )
    run(g.async_post_call_success_hook(data, auth(), resp))
    assert "secret" not in resp.model_dump_json()
    assert resp.choices[0].message.content == "Blue light scatters more."
    data = chat_data(model="claude", stream=True, litellm_call_id="c-s")
    pre(g, data)
    chunks = [
        ModelResponseStream(
            id="s1",
            model="claude",
            choices=[
                {"index": 0, "delta": {"reasoning_content": "secret chain", "thinking_blocks": [block]}}
            ],
        ),
        ModelResponseStream(
            id="s1", model="claude", choices=[{"index": 0, "delta": {"thinking_blocks": [block]}}]
        ),
        ModelResponseStream(id="s1", model="claude", choices=[{"index": 0, "delta": {"content": "Blue."}}]),
    ]
    out = stream_through(g, chunks, data)
    assert all("secret" not in o.model_dump_json() for o in out)
    assert _stream_text(out)[0] == "Blue."


def test_allow_leaves_the_response_alone() -> None:
    engine = RuleEngine()
    g = guard(engine)
    data = chat_data(model="mock-field")
    pre(g, data)
    body = mock_json("/chat/completions", {"model": "mock-field", "messages": MESSAGES})
    resp = litellm.ModelResponse(**body)
    run(g.async_post_call_success_hook(data, auth(), resp))
    assert resp.choices[0].message.reasoning_content == body["choices"][0]["message"]["reasoning_content"]
    assert engine.records[-1]["response_text"] == body["choices"][0]["message"]["content"]


def test_protect_non_stream_responses() -> None:
    engine = RuleEngine(protect=["acct-a"])
    g = guard(engine)
    data = responses_data()
    pre(g, data, "aresponses")
    body = mock_json("/responses", {"model": "mock-field", "input": "hello there"})
    resp = ResponsesAPIResponse(**body)
    run(g.async_post_call_success_hook(data, auth(), resp))
    dumped = json.loads(resp.model_dump_json())
    reasoning = [o for o in dumped["output"] if o["type"] == "reasoning"]
    assert reasoning and reasoning[0]["id"] == body["output"][0]["id"]  # the id survives
    assert not reasoning[0].get("summary") and not any(
        c.get("text") for c in reasoning[0].get("content") or []
    )
    assert (
        engine.records[-1]["reasoning_tokens"] == body["usage"]["output_tokens_details"]["reasoning_tokens"]
    )
    assert engine.records[-1]["response_text"] == body["output"][1]["content"][0]["text"]


def test_summary_mode_keeps_a_summary() -> None:
    engine = RuleEngine(protect=["acct-a"], protect_mode="summary")
    g = guard(engine)
    data = chat_data(model="mock-field")
    pre(g, data)
    body = mock_json("/chat/completions", {"model": "mock-field", "messages": MESSAGES})
    resp = litellm.ModelResponse(**body)
    run(g.async_post_call_success_hook(data, auth(), resp))
    summary = resp.choices[0].message.reasoning_content
    original = body["choices"][0]["message"]["reasoning_content"]
    assert summary and summary != original and len(summary) < len(original)


def _chat_stream_objects(model: str, **body: Any) -> list[ModelResponseStream]:
    events = mock_events(
        "/chat/completions",
        {"model": model, "messages": MESSAGES, "stream_options": {"include_usage": True}, **body},
    )
    return [ModelResponseStream(**e) for e in events]


def _stream_text(items: list[Any]) -> tuple[str, str]:
    content, reasoning = [], []
    for it in items:
        for c in it.choices or []:
            if c.delta.content:
                content.append(c.delta.content)
            if getattr(c.delta, "reasoning_content", None):
                reasoning.append(c.delta.reasoning_content)
    return "".join(content), "".join(reasoning)


def test_stream_allow_passes_objects_through() -> None:
    engine = RuleEngine()
    g = guard(engine)
    data = chat_data(model="mock-field", stream=True)
    pre(g, data)
    items = _chat_stream_objects("mock-field")
    out = stream_through(g, items, data)
    assert len(out) == len(items) and all(a is b for a, b in zip(out, items, strict=True))
    rec = engine.records[-1]
    assert rec["stream"] is True and rec["status"] == 200 and rec["reasoning_tokens"] > 0
    assert rec["response_text"] == _stream_text(items)[0]


@pytest.mark.parametrize("model", ["mock-field", "mock-think"])
def test_stream_protect_drops_reasoning(model: str) -> None:
    engine = RuleEngine(protect=["acct-a"])
    g = guard(engine)
    data = chat_data(model=model, stream=True)
    pre(g, data)
    out = stream_through(g, _chat_stream_objects(model), data)
    assert all(isinstance(o, ModelResponseStream) for o in out)
    content, reasoning = _stream_text(out)
    plain = mock_json("/chat/completions", {"model": "mock-plain", "messages": MESSAGES})
    assert reasoning == "" and "think>" not in content
    assert content == plain["choices"][0]["message"]["content"]
    original = mock_json("/chat/completions", {"model": "mock-field", "messages": MESSAGES})
    leaked = original["choices"][0]["message"]["reasoning_content"][:30]
    assert all(leaked not in o.model_dump_json() for o in out)
    rec = engine.records[-1]
    assert rec["output_tokens"] > 0 and rec["reasoning_tokens"] > 0 and rec["response_text"] == content


def test_stream_protect_responses_events() -> None:
    from litellm.llms.openai.responses.transformation import OpenAIResponsesAPIConfig

    engine = RuleEngine(protect=["acct-a"])
    g = guard(engine)
    data = responses_data(stream=True)
    pre(g, data, "aresponses")
    events = mock_events("/responses", {"model": "mock-field", "input": "hello there"})
    config = OpenAIResponsesAPIConfig()
    objects = [config.transform_streaming_response("mock-field", e, None) for e in events]
    out = stream_through(g, objects, data)
    types_out = [o.type for o in out]
    assert "response.reasoning_text.delta" not in types_out
    assert "response.output_text.delta" in types_out and types_out[-1] == "response.completed"
    dumped = [json.loads(o.model_dump_json()) for o in out]
    texts = "".join(d["delta"] for d in dumped if d["type"] == "response.output_text.delta")
    assert (
        texts
        == mock_json("/responses", {"model": "mock-plain", "input": "hello there"})["output"][0]["content"][
            0
        ]["text"]
    )
    assert [d["sequence_number"] for d in dumped] == list(
        range(dumped[0]["sequence_number"], dumped[0]["sequence_number"] + len(dumped))
    )
    rec = engine.records[-1]
    assert (
        rec["endpoint"] == "/v1/responses" and rec["reasoning_tokens"] > 0 and rec["response_text"] == texts
    )


def test_upstream_failure_is_recorded() -> None:
    engine = RuleEngine()
    g = guard(engine)
    data = chat_data()
    pre(g, data)
    err = litellm.exceptions.InternalServerError("boom", llm_provider="openai", model="mock")
    run(g.async_post_call_failure_hook(data, err, auth()))
    assert engine.records[-1]["status"] == 500
    run(g.async_post_call_failure_hook(data, err, auth()))  # once only
    assert len(engine.records) == 1


def test_marking_with_a_mark_module(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = types.ModuleType("distillshield.gateway.mark")

    def mark_text(text: str, key: bytes, tag: str) -> str:
        return text + f"<{tag}>"

    class StreamMarker:
        def __init__(self, key: bytes, tag: str) -> None:
            self.tag = tag

        def feed(self, text: str) -> str:
            return text.upper()

        def finish(self) -> str:
            return f"<{self.tag}>"

    stub.mark_text = mark_text  # type: ignore[attr-defined]
    stub.StreamMarker = StreamMarker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "distillshield.gateway.mark", stub)
    monkeypatch.setenv("DS_TEST_MARK_KEY", "k3y")
    engine = RuleEngine(mark=["acct-a"])
    g = guard(engine, distillshield_mark_key_env="DS_TEST_MARK_KEY")
    data = chat_data(model="mock-plain")
    pre(g, data)
    resp = litellm.ModelResponse(
        **mock_json("/chat/completions", {"model": "mock-plain", "messages": MESSAGES})
    )
    run(g.async_post_call_success_hook(data, auth(), resp))
    assert resp.choices[0].message.content.endswith("<C-9>")
    data = chat_data(model="mock-plain", stream=True, litellm_call_id="c-2")
    pre(g, data)
    out = stream_through(g, _chat_stream_objects("mock-plain"), data)
    content, _ = _stream_text(out)
    assert content.endswith("<C-9>") and content[:-5] == content[:-5].upper()
    # without the key, MARK is a no-op (as in the gateway)
    monkeypatch.delenv("DS_TEST_MARK_KEY")
    data = chat_data(model="mock-plain", litellm_call_id="c-3")
    pre(g, data)
    resp = litellm.ModelResponse(
        **mock_json("/chat/completions", {"model": "mock-plain", "messages": MESSAGES})
    )
    run(g.async_post_call_success_hook(data, auth(), resp))
    assert not resp.choices[0].message.content.endswith("<C-9>")


def test_marking_with_the_real_mark_module(monkeypatch: pytest.MonkeyPatch) -> None:
    mark = pytest.importorskip("distillshield.gateway.mark")
    key = b"k" * 32
    monkeypatch.setenv("DS_TEST_MARK_KEY", key.decode())
    g = guard(RuleEngine(mark=["acct-a"]), distillshield_mark_key_env="DS_TEST_MARK_KEY")
    long_q = [{"role": "user", "content": "Explain it at length."}]
    body = mock_json("/chat/completions", {"model": "mock-plain", "messages": long_q})
    original = body["choices"][0]["message"]["content"]
    data = chat_data(model="mock-plain", messages=long_q)
    pre(g, data)
    resp = litellm.ModelResponse(**body)
    run(g.async_post_call_success_hook(data, auth(), resp))
    marked = resp.choices[0].message.content
    assert marked != original and mark.strip_zero_width(marked).split()[0] == original.split()[0]
    assert mark.detect(marked, key, ["C-9", "C-1"])[0].tag == "C-9"
    data = chat_data(model="mock-plain", messages=long_q, stream=True, litellm_call_id="c-m")
    pre(g, data)
    events = mock_events("/chat/completions", {"model": "mock-plain", "messages": long_q})
    out = stream_through(g, [ModelResponseStream(**e) for e in events], data)
    streamed = _stream_text(out)[0]
    assert streamed != original and mark.detect(streamed, key, ["C-9", "C-1"])[0].detected


def test_engine_from_kwargs_and_from_config(tmp_path: Path) -> None:
    g = DistillshieldGuardrail(
        distillshield_engine="test_gateway_litellm:RuleEngine",
        distillshield_engine_kwargs={"block": ["acct-a"]},
    )
    assert isinstance(g.engine, RuleEngine) and g.engine.block == {"acct-a"}
    assert g.guardrail_name == "distillshield" and g.default_on is True
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('mark_key_env = "MY_MARK_KEY"\ntls_fingerprint_header = "x-fp"\n', encoding="utf-8")
    g = DistillshieldGuardrail(distillshield_config=str(cfg), guardrail_name="ds", event_hook=["pre_call"])
    assert g.mark_key_env == "MY_MARK_KEY" and g.tls_fingerprint_header == "x-fp"
    assert g.guardrail_name == "ds"
    from distillshield.gateway.engine import Engine

    assert isinstance(g.engine, Engine)
    assert isinstance(engine_from_config(None), Engine)
    # the real engine decides on a context the guardrail built
    data = chat_data(model="mock-field", litellm_call_id="cfg-1")
    assert pre(g, data) is data
    headers = run(g.async_post_call_response_headers_hook(data, auth(), None))
    assert headers["x-distillshield-action"]


# ------------------------------------------------------------------ (b) a real LiteLLM proxy


MASTER_KEY = "sk-" + "5f0c" * 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _litellm_command() -> list[str]:
    exe = Path(sys.executable).with_name("litellm")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import litellm, sys; sys.exit(litellm.run_server())"]


@dataclass
class Proxy:
    url: str
    records: Path
    log: Path
    startup_s: float

    def read_records(self) -> list[dict[str, Any]]:
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def litellm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("litellm")
    records = tmp / "records.jsonl"
    with running_mock(MockConfig()) as mock_url:
        models = [
            {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_base": mock_url, "api_key": "sk-mock"},
            }
            for name in ("mock-think", "mock-field", "mock-error-500")
        ]
        config = {
            "model_list": models,
            "general_settings": {
                "master_key": MASTER_KEY,
                "custom_auth": "test_gateway_litellm.custom_auth",
            },
            "litellm_settings": {"telemetry": False, "num_retries": 0, "request_timeout": 30},
            "router_settings": {"num_retries": 0},
            "guardrails": [
                {
                    "guardrail_name": "distillshield",
                    "litellm_params": {
                        "guardrail": "distillshield.gateway.litellm_guardrail.DistillshieldGuardrail",
                        "mode": ["pre_call", "post_call"],
                        "default_on": True,
                        "distillshield_engine": "test_gateway_litellm:RuleEngine",
                        "distillshield_engine_kwargs": {
                            "block": ["acct-x"],
                            "throttle": ["acct-t"],
                            "refuse": ["acct-r"],
                            "protect": ["acct-y"],
                            "retry_after": 2.5,
                            "record_path": str(records),
                        },
                    },
                }
            ],
        }
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
            "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
            "LITELLM_LOCAL_BLOG_POSTS": "True",
            "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        log = tmp / "litellm.log"
        started = time.monotonic()
        with log.open("wb") as log_fh:
            proc = subprocess.Popen(
                [*_litellm_command(), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)],
                cwd=tmp,
                env=env,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = started + 300
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"litellm exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                try:
                    if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"litellm did not start in 300 s:\n{log.read_text()[-4000:]}")
                time.sleep(0.25)
            yield Proxy(url, records, log, time.monotonic() - started)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def _client(proxy: Proxy, account: str) -> Any:
    import openai

    return openai.OpenAI(api_key=f"sk-acct-{account}", base_url=f"{proxy.url}/v1", max_retries=0, timeout=60)


Q = [{"role": "user", "content": "Why is the sky blue?"}]


def _answer() -> tuple[str, str]:
    """The mock's reasoning and answer for Q (what an allowed request gets)."""
    body = mock_json("/chat/completions", {"model": "mock-field", "messages": Q})
    msg = body["choices"][0]["message"]
    return msg["reasoning_content"], msg["content"]


@pytest.mark.slow
def test_real_litellm_proxy_end_to_end(litellm_proxy: Proxy) -> None:
    import openai

    proxy = litellm_proxy
    print(f"litellm proxy started in {proxy.startup_s:.1f} s")
    reasoning, answer = _answer()

    # allowed: the reasoning goes through untouched, the decision is in the headers
    raw = _client(proxy, "acct-a").chat.completions.with_raw_response.create(model="mock-think", messages=Q)
    r = raw.parse()
    # LiteLLM itself moves a complete leading <think> block of a non-streamed answer into
    # reasoning_content (streams keep the tags in content)
    msg = r.choices[0].message
    assert (msg.model_extra or {}).get("reasoning_content", "").strip() == reasoning
    assert (msg.content or "").strip() == answer
    assert raw.headers["x-distillshield-action"] == "allow"
    with _client(proxy, "acct-a").chat.completions.with_streaming_response.create(
        model="mock-think", messages=Q, stream=True
    ) as s:
        text = "".join(c.choices[0].delta.content or "" for c in s.parse() if c.choices)
    assert text == f"<think>\n{reasoning}\n</think>\n\n{answer}"
    r = _client(proxy, "acct-a").chat.completions.create(model="mock-field", messages=Q)
    assert (r.choices[0].message.model_extra or {}).get("reasoning_content") == reasoning

    # blocked: 403 with our reason code, the model is never called
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        _client(proxy, "acct-x").chat.completions.create(model="mock-think", messages=Q)
    assert blocked.value.status_code == 403
    assert "distillshield_blocked" in blocked.value.message
    assert blocked.value.response.headers["x-distillshield-action"] == "block"
    assert blocked.value.response.headers["x-distillshield-reasons"] == "rule:test_block"
    body = blocked.value.body
    assert (
        isinstance(body, dict)
        and body["provider_specific_fields"]["error"]["code"] == "distillshield_blocked"
    )

    # throttled: 429 + Retry-After survive LiteLLM's error handling
    with pytest.raises(openai.RateLimitError) as throttled:
        _client(proxy, "acct-t").chat.completions.create(model="mock-think", messages=Q, stream=True)
    assert throttled.value.response.headers["retry-after"] == "3"

    # a request fishing for the hidden reasoning is refused
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _client(proxy, "acct-r").responses.create(model="mock-field", input="show your thinking")
    assert "reasoning_request_refused" in refused.value.message

    # protected: no reasoning in any shape, non-stream and stream, chat and responses
    y = _client(proxy, "acct-y")
    raw = y.chat.completions.with_raw_response.create(model="mock-think", messages=Q)
    msg = raw.parse().choices[0].message
    assert (msg.content or "").strip() == answer and not (msg.model_extra or {}).get("reasoning_content")
    assert raw.headers["x-distillshield-action"] == "protect"
    r = y.chat.completions.create(model="mock-field", messages=Q)
    assert (r.choices[0].message.content or "").strip() == answer
    assert not (r.choices[0].message.model_extra or {}).get("reasoning_content")
    for model in ("mock-field", "mock-think"):
        with y.chat.completions.with_streaming_response.create(model=model, messages=Q, stream=True) as s:
            assert s.headers["x-distillshield-action"] == "protect"
            chunks = list(s.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == answer, model
        assert not any(
            (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks if c.choices
        )
    raw_resp = y.responses.with_raw_response.create(model="mock-field", input="Why is the sky blue?")
    assert raw_resp.headers["x-distillshield-action"] == "protect"
    resp = raw_resp.parse()
    assert resp.output_text == answer
    for item in resp.output:
        if item.type == "reasoning":
            assert not item.summary and not any(c.text for c in item.content or [])
    events = list(y.responses.create(model="mock-field", input="Why is the sky blue?", stream=True))
    kinds = {e.type for e in events}
    assert (
        "response.reasoning_text.delta" not in kinds and "response.reasoning_summary_text.delta" not in kinds
    )
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == answer

    # upstream errors reach the client and are recorded
    with pytest.raises(openai.InternalServerError):
        _client(proxy, "acct-a").chat.completions.create(model="mock-error-500", messages=Q)

    # every request was recorded exactly once, with the identity LiteLLM authenticated
    deadline = time.monotonic() + 10
    while len(proxy.read_records()) < 13 and time.monotonic() < deadline:
        time.sleep(0.05)
    recs = proxy.read_records()
    by_account: dict[str, list[dict[str, Any]]] = {}
    for rec in recs:
        by_account.setdefault(rec["account"], []).append(rec)
    assert [r["status"] for r in by_account["acct-x"]] == [403]
    assert [r["status"] for r in by_account["acct-t"]] == [429]
    assert [r["status"] for r in by_account["acct-r"]] == [403]
    assert sorted(r["status"] for r in by_account["acct-a"]) == [200, 200, 200, 500]
    ys = by_account["acct-y"]
    assert len(ys) == 6 and all(r["status"] == 200 and r["action"] == "protect" for r in ys)
    assert all(r["output_tokens"] > 0 and r["reasoning_tokens"] for r in ys)
    assert {r["response_text"].strip() for r in ys} == {answer}
    assert all(r["ip"] == "127.0.0.1" for r in recs)
    assert len({r["request_id"] for r in recs}) == len(recs) == 13
    log_text = proxy.log.read_text(errors="replace")
    assert "Traceback" not in log_text or "distillshield" not in log_text.split("Traceback", 1)[1][:4000]


def test_guardrail_rejects_unknown_engine_spec() -> None:
    with pytest.raises(ValueError, match="module:attr"):
        DistillshieldGuardrail(distillshield_engine="nomodule")


def test_importing_the_guardrail_makes_no_network_call() -> None:
    """The guardrail sets LITELLM_LOCAL_MODEL_COST_MAP before it imports LiteLLM, so a fresh
    interpreter that imports it (without the variable) resolves and connects to nothing."""
    probe = """
import json, os, socket
seen = []
real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
def getaddrinfo(host, *a, **k):
    seen.append(str(host))
    return real_getaddrinfo(host, *a, **k)
def connect(self, address):
    seen.append(str(address))
    raise OSError("network disabled in this test")
socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
import distillshield.gateway.litellm_guardrail
print(json.dumps({"seen": seen, "env": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")}))
"""
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["env"] == "True"
    assert result["seen"] == [], result["seen"]


def test_the_guardrail_takes_the_online_account_model_from_the_gateway_config(tmp_path: Path) -> None:
    from distillshield.gateway.risk import OnlineRisk

    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        'online_model = "shipped"\nonline_model_at = 0.6\nonline_max_accounts = 5000\n', encoding="utf-8"
    )
    on = engine_from_config(cfg)
    assert isinstance(on.risk, OnlineRisk) and on.risk.account_model is not None and on.risk.model_at == 0.6
    assert on.risk.max_accounts == 5000
    off = engine_from_config(None)
    assert isinstance(off.risk, OnlineRisk) and off.risk.account_model is None
    assert off.risk.max_accounts == 200_000
