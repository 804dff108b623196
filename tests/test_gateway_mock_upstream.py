"""The mock model server, seen through the official ``openai`` client.

The client talks to the raw ASGI app in process (:class:`MockTransport`: ``httpx.ASGITransport``
plus the request's read timeout, which httpx's ASGI transport ignores; a small sync adapter for
``openai.OpenAI``), and over a real loopback socket (uvicorn) where streaming and dropped
connections need one.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import anyio.from_thread
import httpx
import openai
import pytest

from distillshield.gateway.mock_upstream import (
    MockConfig,
    MockStreamCutError,
    MockTransport,
    make_mock_upstream,
    running_mock,
)

BASE = "http://mock.test/v1"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Why is the sky blue?"},
]


class SyncASGITransport(httpx.BaseTransport):
    """A sync transport running the ASGI app on an anyio portal's event loop."""

    def __init__(self, config: MockConfig, portal: anyio.from_thread.BlockingPortal) -> None:
        self._inner = MockTransport(config)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        areq = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.read(),
            extensions=request.extensions,
        )

        async def go() -> tuple[int, httpx.Headers, bytes]:
            resp = await self._inner.handle_async_request(areq)
            return resp.status_code, resp.headers, await resp.aread()

        status, headers, content = self._portal.call(go)
        return httpx.Response(status, headers=headers, content=content, request=request)


@pytest.fixture(scope="module")
def portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    with anyio.from_thread.start_blocking_portal() as p:
        yield p


@pytest.fixture()
def make_client(portal: anyio.from_thread.BlockingPortal) -> Callable[..., openai.OpenAI]:
    def make(config: MockConfig | None = None, timeout: float = 30.0) -> openai.OpenAI:
        http = httpx.Client(transport=SyncASGITransport(config or MockConfig(), portal))
        return openai.OpenAI(
            api_key="sk-test", base_url=BASE, http_client=http, max_retries=0, timeout=timeout
        )

    return make


def async_client(config: MockConfig | None = None, timeout: float = 30.0) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=MockTransport(config))
    return openai.AsyncOpenAI(
        api_key="sk-test", base_url=BASE, http_client=http, max_retries=0, timeout=timeout
    )


def extra(obj: Any, name: str) -> Any:
    """A field the ``openai`` types do not declare (``reasoning_content``)."""
    return (obj.model_extra or {}).get(name)


# ------------------------------------------------------------------ chat completions


def test_chat_field_mode_reasoning_and_usage(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    r = client.chat.completions.create(model="mock", messages=MESSAGES)
    msg = r.choices[0].message
    reasoning = extra(msg, "reasoning_content")
    assert isinstance(reasoning, str) and len(reasoning.split()) >= 10
    assert msg.content and "<think>" not in msg.content
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == "mock"
    u = r.usage
    assert u is not None
    chars = sum(len(m["content"]) for m in MESSAGES)
    assert u.prompt_tokens == math.ceil(chars / 4)
    assert u.completion_tokens_details is not None
    rt = u.completion_tokens_details.reasoning_tokens
    assert rt is not None and rt > 0
    assert u.completion_tokens > rt
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_is_deterministic_per_prompt(make_client: Callable[..., openai.OpenAI]) -> None:
    a = make_client().chat.completions.create(model="mock", messages=MESSAGES)
    b = make_client().chat.completions.create(model="mock-field", messages=MESSAGES)
    other = [{"role": "user", "content": "Name three prime numbers."}]
    c = make_client().chat.completions.create(model="mock", messages=other)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert extra(a.choices[0].message, "reasoning_content") == extra(
        b.choices[0].message, "reasoning_content"
    )
    assert a.choices[0].message.content != c.choices[0].message.content


def test_chat_think_and_plain_modes(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    field = client.chat.completions.create(model="mock-field", messages=MESSAGES)
    think = client.chat.completions.create(model="mock-think", messages=MESSAGES)
    plain = client.chat.completions.create(model="mock-plain", messages=MESSAGES)
    content = think.choices[0].message.content or ""
    assert content.startswith("<think>\n") and "</think>\n\n" in content
    assert extra(think.choices[0].message, "reasoning_content") is None
    inner, answer = content[len("<think>\n") :].split("\n</think>\n\n")
    assert inner == extra(field.choices[0].message, "reasoning_content")
    assert answer == field.choices[0].message.content
    assert plain.choices[0].message.content == field.choices[0].message.content
    assert extra(plain.choices[0].message, "reasoning_content") is None
    assert plain.usage is not None and plain.usage.completion_tokens_details is not None
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0


def test_reasoning_mode_from_config_and_header(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(MockConfig(reasoning="think"))
    r = client.chat.completions.create(model="mock", messages=MESSAGES)
    assert (r.choices[0].message.content or "").startswith("<think>")
    r = client.chat.completions.create(
        model="mock",
        messages=MESSAGES,
        extra_headers={"x-mock-reasoning": "none"},
    )
    assert "<think>" not in (r.choices[0].message.content or "")
    # a provider prefix is ignored (LiteLLM sends "mock-field" for "openai/mock-field")
    r = client.chat.completions.create(model="openai/mock-field", messages=MESSAGES)
    assert extra(r.choices[0].message, "reasoning_content")


def test_max_tokens_cuts_with_length(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    r = client.chat.completions.create(model="mock-field", messages=MESSAGES, max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5
    assert r.choices[0].message.content is None  # the budget ran out inside the reasoning
    assert len(extra(r.choices[0].message, "reasoning_content").split()) == 5
    r = client.chat.completions.create(
        model="mock-plain",
        messages=MESSAGES,
        max_completion_tokens=7,
    )
    assert r.choices[0].finish_reason == "length"
    assert len((r.choices[0].message.content or "").split()) == 7


def test_n_choices_differ(make_client: Callable[..., openai.OpenAI]) -> None:
    r = make_client().chat.completions.create(model="mock-plain", messages=MESSAGES, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({c.message.content for c in r.choices}) == 3


def _collect_chat_stream(chunks: Any) -> tuple[str, str, list[Any], Any]:
    content, reasoning, finishes, usage = [], [], [], None
    for ch in chunks:
        assert ch.object == "chat.completion.chunk"
        if ch.usage is not None:
            usage = ch.usage
        for c in ch.choices:
            if c.delta.content:
                content.append(c.delta.content)
            rc = extra(c.delta, "reasoning_content")
            if rc:
                reasoning.append(rc)
            if c.finish_reason:
                finishes.append(c.finish_reason)
    return "".join(content), "".join(reasoning), finishes, usage


def test_chat_stream_matches_non_stream(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    full = client.chat.completions.create(model="mock-field", messages=MESSAGES)
    stream = client.chat.completions.create(
        model="mock-field",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content, reasoning, finishes, usage = _collect_chat_stream(chunks)
    assert content == full.choices[0].message.content
    assert reasoning == extra(full.choices[0].message, "reasoning_content")
    assert finishes == ["stop"]
    assert usage is not None and full.usage is not None
    assert usage.model_dump() == full.usage.model_dump()
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[0].choices[0].delta.role == "assistant"
    # one token per chunk by default: many chunks, all with the same id
    assert len(chunks) > 20 and len({c.id for c in chunks}) == 1


def test_chat_stream_without_usage_and_think(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(MockConfig(tokens_per_chunk=3))
    chunks = list(
        client.chat.completions.create(
            model="mock-think",
            messages=MESSAGES,
            stream=True,
            max_tokens=12,
        )
    )
    content, reasoning, finishes, usage = _collect_chat_stream(chunks)
    assert usage is None
    assert reasoning == ""
    assert content.startswith("<think>\n")
    assert finishes == ["length"]
    assert len(chunks) == 1 + 4 + 1  # role chunk, 12 tokens / 3 per chunk, finish chunk


def test_async_chat_and_stream() -> None:
    async def main() -> None:
        client = async_client()
        r = await client.chat.completions.create(model="mock-think", messages=MESSAGES)
        assert (r.choices[0].message.content or "").startswith("<think>")
        stream = await client.chat.completions.create(
            model="mock-field",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        reasoning, usage = [], None
        async for ch in stream:
            usage = ch.usage or usage
            for c in ch.choices:
                if extra(c.delta, "reasoning_content"):
                    reasoning.append(extra(c.delta, "reasoning_content"))
        assert reasoning and usage is not None
        await client.close()

    asyncio.run(main())


# ------------------------------------------------------------------ responses


def test_responses_field_reasoning_item(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    chat = client.chat.completions.create(model="mock-field", messages=[{"role": "user", "content": "hello"}])
    r = client.responses.create(model="mock-field", input="hello")
    assert [o.type for o in r.output] == ["reasoning", "message"]
    item = r.output[0]
    assert item.type == "reasoning"
    assert item.content is not None
    assert item.content[0].text == extra(chat.choices[0].message, "reasoning_content")
    assert item.summary and item.content[0].text.startswith(item.summary[0].text.rstrip("."))
    assert r.output_text == chat.choices[0].message.content
    assert r.status == "completed"
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0
    assert r.usage.input_tokens == math.ceil(len("hello") / 4)


def test_responses_think_plain_and_budget(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    think = client.responses.create(model="mock-think", input="hello", instructions="Be brief.")
    assert [o.type for o in think.output] == ["message"]
    assert think.output_text.startswith("<think>\n")
    plain = client.responses.create(model="mock-plain", input=[{"role": "user", "content": "hello"}])
    assert [o.type for o in plain.output] == ["message"]
    assert "<think>" not in plain.output_text
    cut = client.responses.create(model="mock-plain", input="hello", max_output_tokens=4)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None and cut.incomplete_details.reason == "max_output_tokens"
    assert len(cut.output_text.split()) == 4


def test_responses_stream_events(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    full = client.responses.create(model="mock-field", input="hello")
    events = list(client.responses.create(model="mock-field", input="hello", stream=True))
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    for t in (
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.reasoning_summary_text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert t in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert full.output[0].type == "reasoning" and full.output[0].content is not None
    assert reasoning == full.output[0].content[0].text
    assert text == full.output_text
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["reasoning", "message"]
    final = events[-1].response
    assert final.output_text == full.output_text
    assert final.usage is not None and full.usage is not None
    assert final.usage.model_dump() == full.usage.model_dump()


def test_responses_stream_async_incomplete() -> None:
    async def main() -> list[str]:
        client = async_client()
        stream = await client.responses.create(
            model="mock-think", input="hello", stream=True, max_output_tokens=3
        )
        types = [e.type async for e in stream]
        await client.close()
        return types

    types = asyncio.run(main())
    assert types[-1] == "response.incomplete"
    assert "response.reasoning_text.delta" not in types


def test_models_list(make_client: Callable[..., openai.OpenAI]) -> None:
    ids = [m.id for m in make_client().models.list()]
    assert {"mock", "mock-field", "mock-think", "mock-plain"} <= set(ids)


# ------------------------------------------------------------------ faults


def test_status_errors_have_openai_bodies(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    with pytest.raises(openai.InternalServerError) as e500:
        client.chat.completions.create(model="mock-error-500", messages=MESSAGES)
    assert e500.value.status_code == 500
    assert isinstance(e500.value.body, dict) and e500.value.body["type"] == "server_error"
    with pytest.raises(openai.RateLimitError) as e429:
        client.chat.completions.create(model="mock-error-429", messages=MESSAGES, stream=True)
    assert e429.value.response.headers["retry-after"] == "1"
    assert e429.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="mock", input="x", extra_headers={"x-mock-error": "400"})


def test_timeout_never_answers(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="mock-timeout", messages=MESSAGES)

    async def main() -> None:
        client = async_client(timeout=0.2)
        with pytest.raises(openai.APITimeoutError):
            await client.responses.create(model="mock-timeout", input="x")
        await client.close()

    asyncio.run(main())


def test_cut_in_process_raises_in_the_app() -> None:
    app = make_mock_upstream()

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            body = {"model": "mock-cut", "messages": MESSAGES, "stream": True}
            with pytest.raises(MockStreamCutError):
                await http.post("/chat/completions", json=body)

    asyncio.run(main())


def test_bad_requests() -> None:
    app = make_mock_upstream()

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            r = await http.post("/chat/completions", content=b"{nope")
            assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
            r = await http.post("/chat/completions", json={"messages": []})
            assert r.status_code == 400
            r = await http.get("/embeddings")
            assert r.status_code == 404
            r = await http.get("/chat/completions")
            assert r.status_code == 405
            r = await http.get("http://mock.test/health")
            assert r.json() == {"status": "ok"}

    asyncio.run(main())


def test_prompt_tokens_count_tools(make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    plain = client.chat.completions.create(model="mock-plain", messages=MESSAGES)
    with_tools = client.chat.completions.create(model="mock-plain", messages=MESSAGES, tools=tools)
    assert plain.usage is not None and with_tools.usage is not None
    assert with_tools.usage.prompt_tokens > plain.usage.prompt_tokens


# ------------------------------------------------------------------ over a real socket


def test_served_over_loopback_streams_and_cuts() -> None:
    with running_mock(MockConfig(chunk_delay_s=0.001)) as base_url:
        client = openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0, timeout=10)
        chunks = list(
            client.chat.completions.create(
                model="mock-field",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        content, reasoning, finishes, usage = _collect_chat_stream(chunks)
        assert content and reasoning and finishes == ["stop"] and usage is not None
        # raw SSE framing as a real server sends it
        raw = httpx.post(
            f"{base_url}/chat/completions",
            json={"model": "mock-plain", "messages": MESSAGES, "stream": True, "max_tokens": 2},
        )
        events = [e for e in raw.text.split("\n\n") if e]
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert events[-1] == "data: [DONE]"
        assert json.loads(events[0][len("data: ") :])["choices"][0]["delta"]["role"] == "assistant"
        r = httpx.post(
            f"{base_url}/responses",
            json={"model": "mock-field", "input": "hi", "stream": True, "max_output_tokens": 2},
        )
        first = r.text.split("\n\n")[0].split("\n")
        assert first[0] == "event: response.created" and first[1].startswith("data: {")
        # a dropped connection mid-stream is an error for the client, never a clean end
        with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
            list(client.chat.completions.create(model="mock-cut", messages=MESSAGES, stream=True))
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="mock-cut", messages=MESSAGES)
