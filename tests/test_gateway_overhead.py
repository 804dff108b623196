"""What the gateway costs and how it behaves under load, tested without timing anything real.

* ``distillshield_added_latency_seconds`` measures the gateway's own time honestly: from the
  ASGI call (before routing, body read and parsing) to the last byte handed to the server,
  minus the time spent waiting on the upstream. An injected clock that only moves when the
  test says so makes the expected value exact.
* Admission control turns requests away with 503 + ``Retry-After`` when the gateway is full.
* Both upstream clients (aiohttp, httpx) behave the same against the mock model on loopback.
* The fail-open fallback of a throttle reuses the decision's facts (signals computed once).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from distillshield.gateway import (
    KeyRecord,
    MemoryStore,
    RequestContext,
    StoreUnavailable,
    VerdictSet,
    create_app,
    hash_key,
    load_config,
)
from distillshield.gateway._serve import serving
from distillshield.gateway.mock_upstream import MockConfig, running_mock
from distillshield.gateway.verdicts import AccountVerdict

KEY = "sk-overhead-0001"
MSG = [{"role": "user", "content": "What is the capital of France?"}]
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


class FakeClock:
    """A ``perf_counter`` stand-in that moves only when told to."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class _SlowStream(httpx.AsyncByteStream):
    def __init__(self, clock: FakeClock, chunks: list[bytes], wait: float) -> None:
        self.clock, self.chunks, self.wait = clock, chunks, wait

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.clock.advance(self.wait)  # the upstream takes its time for every chunk
            yield chunk


class SlowUpstream(httpx.AsyncBaseTransport):
    """An upstream that takes ``headers_s`` (fake seconds) to answer, ``chunk_s`` per chunk."""

    def __init__(self, clock: FakeClock, headers_s: float = 10.0, chunk_s: float = 2.0) -> None:
        self.clock, self.headers_s, self.chunk_s = clock, headers_s, chunk_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread())
        self.clock.advance(self.headers_s)
        if not body.get("stream"):
            return httpx.Response(200, json=COMPLETION)
        chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}
        events = [
            b"data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": w}}]}).encode()
            for w in ("Par", "is.")
        ]
        events.append(b"data: " + json.dumps({**chunk, "choices": [], "usage": COMPLETION["usage"]}).encode())
        events.append(b"data: [DONE]")
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_SlowStream(self.clock, [e + b"\n\n" for e in events], self.chunk_s),
        )


def _app(tmp: Path, transport: httpx.AsyncBaseTransport, clock: Any = None, **cfg: Any) -> Any:
    store = MemoryStore()
    asyncio.run(store.put_key(hash_key(KEY), KeyRecord("k1", "acct_1")))
    config = load_config(None, upstream="http://upstream.test/v1", log_dir=str(tmp / "log"), **cfg)
    kwargs = {"perf_clock": clock} if clock is not None else {}
    return create_app(config, transport=transport, store=store, **kwargs)


async def _call_asgi(
    app: Any, body: dict[str, Any], clock: FakeClock, *, receive_s: float, send_s: float
) -> tuple[int, list[bytes]]:
    """One request straight through the ASGI interface: reading the body costs ``receive_s``,
    each body message handed to the server ``send_s`` (fake seconds)."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("198.51.100.7", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent_body = False
    never = asyncio.Event()
    status = 0
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            clock.advance(receive_s)
            return {"type": "http.request", "body": payload, "more_body": False}
        await never.wait()  # no disconnect
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            clock.advance(send_s)
            bodies.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, bodies


def _latency(app: Any) -> tuple[float, float]:
    reg = app.state.gateway.metrics.registry
    labels = {"endpoint": "chat"}
    total = reg.get_sample_value("distillshield_added_latency_seconds_sum", labels)
    count = reg.get_sample_value("distillshield_added_latency_seconds_count", labels)
    return float(total or 0.0), float(count or 0.0)


def _delay_before_handle(app: Any, clock: FakeClock, seconds: float) -> None:
    """Make routing (what happens before ``Gateway.handle``) cost ``seconds``."""
    gw = app.state.gateway
    inner = gw.handle

    async def handle(request: Any, endpoint: str) -> Any:
        clock.advance(seconds)
        return await inner(request, endpoint)

    gw.handle = handle


def test_added_latency_counts_the_gateway_and_not_the_upstream_unary(tmp_path: Path) -> None:
    clock = FakeClock()
    app = _app(tmp_path, SlowUpstream(clock, headers_s=10.0), clock)
    _delay_before_handle(app, clock, 0.25)
    status, bodies = asyncio.run(
        _call_asgi(app, {"model": "m", "messages": MSG}, clock, receive_s=1.0, send_s=0.5)
    )
    assert status == 200 and json.loads(b"".join(bodies))["choices"][0]["message"]["content"] == "Paris."
    total, count = _latency(app)
    # routing 0.25 + body read 1.0 + one body message written 0.5; the upstream's 10 s is not ours
    assert count == 1
    assert total == pytest.approx(0.25 + 1.0 + 0.5 * len(bodies), abs=1e-6)


def test_added_latency_counts_the_gateway_and_not_the_upstream_stream(tmp_path: Path) -> None:
    clock = FakeClock()
    app = _app(tmp_path, SlowUpstream(clock, headers_s=10.0, chunk_s=2.0), clock)
    _delay_before_handle(app, clock, 0.25)
    body = {"model": "m", "messages": MSG, "stream": True}
    status, bodies = asyncio.run(_call_asgi(app, body, clock, receive_s=1.0, send_s=0.1))
    text = b"".join(bodies)
    assert status == 200 and b"Par" in text and text.rstrip().endswith(b"data: [DONE]")
    total, count = _latency(app)
    # headers 10 s and 4 chunks x 2 s upstream are excluded; every message written to the
    # client (the stream's events and its closing empty body) is the gateway's time
    assert count == 1 and len(bodies) >= 4
    assert total == pytest.approx(0.25 + 1.0 + 0.1 * len(bodies), abs=1e-6)


def test_refusals_are_timed_too(tmp_path: Path) -> None:
    """A request the gateway answers itself (here: no API key) costs it all its time."""
    clock = FakeClock()
    app = _app(tmp_path, SlowUpstream(clock), clock)
    _delay_before_handle(app, clock, 0.25)

    async def run() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            r = await client.post("/v1/chat/completions", json={"model": "m", "messages": MSG})
            return r.status_code

    assert asyncio.run(run()) == 401
    total, count = _latency(app)
    assert count == 1 and total == pytest.approx(0.25, abs=1e-6)


# ----------------------------------------------------------------------- admission control


class GatedUpstream(httpx.AsyncBaseTransport):
    """Answers once ``gate`` is set; counts the requests that reached it."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.arrived = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrived += 1
        await self.gate.wait()
        return httpx.Response(200, json=COMPLETION)


def _post(client: httpx.AsyncClient) -> Any:
    return client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": MSG},
        headers={"authorization": f"Bearer {KEY}"},
    )


def test_admission_control_turns_away_what_does_not_fit(tmp_path: Path) -> None:
    upstream = GatedUpstream()
    app = _app(tmp_path, upstream, max_in_flight=2, max_queued=1, queue_timeout_s=30)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
            first = [asyncio.create_task(_post(client)) for _ in range(2)]  # the two slots
            while upstream.arrived < 2:
                await asyncio.sleep(0.001)
            queued = asyncio.create_task(_post(client))  # waits for a slot
            while app.state.gateway.admission.waiting < 1:
                await asyncio.sleep(0.001)
            refused = await _post(client)  # slots and queue full: answered at once
            assert upstream.arrived == 2 and not queued.done()
            upstream.gate.set()
            return [refused, *(await asyncio.gather(*first, queued))]

    refused, *served = asyncio.run(run())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "gateway_overloaded"
    assert [r.status_code for r in served] == [200, 200, 200]
    assert upstream.arrived == 3
    gw = app.state.gateway
    assert gw.admission.in_flight == 0 and gw.admission.waiting == 0
    text = gw.render_metrics().decode()
    assert 'distillshield_admission_rejected_total{reason="queue_full"} 1.0' in text


def test_admission_queue_wait_is_bounded(tmp_path: Path) -> None:
    upstream = GatedUpstream()
    app = _app(tmp_path, upstream, max_in_flight=1, max_queued=4, queue_timeout_s=0.05)

    async def run() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
            first = asyncio.create_task(_post(client))
            while upstream.arrived < 1:
                await asyncio.sleep(0.001)
            late = await _post(client)  # waits 0.05 s for the only slot, then gives up
            upstream.gate.set()
            return late, await first

    late, first = asyncio.run(run())
    assert late.status_code == 503 and late.json()["error"]["code"] == "gateway_overloaded"
    assert first.status_code == 200
    text = app.state.gateway.render_metrics().decode()
    assert 'distillshield_admission_rejected_total{reason="queue_timeout"} 1.0' in text


def test_admission_control_is_off_by_default(tmp_path: Path) -> None:
    upstream = GatedUpstream()
    app = _app(tmp_path, upstream)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
            tasks = [asyncio.create_task(_post(client)) for _ in range(50)]
            while upstream.arrived < 50:
                await asyncio.sleep(0.001)
            upstream.gate.set()
            return [r.status_code for r in await asyncio.gather(*tasks)]

    assert asyncio.run(run()) == [200] * 50


# ---------------------------------------------------------------- both upstream clients, live


@pytest.mark.parametrize("client_kind", ["aiohttp", "httpx"])
def test_upstream_clients_behave_the_same_on_loopback(tmp_path: Path, client_kind: str) -> None:
    if client_kind == "aiohttp":
        pytest.importorskip("aiohttp")
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"key": KEY, "account_id": "acct_1"}) + "\n")
    with running_mock(MockConfig(reasoning="field", timeout_sleep_s=30)) as upstream:
        config = load_config(
            None,
            upstream=upstream,
            upstream_client=client_kind,
            keys_file=str(keys),
            upstream_timeout_s=0.5,
            log_dir=str(tmp_path / "log"),
        )
        app = create_app(config)
        assert app.state.gateway.upstream.name == client_kind
        with serving(app) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=20)
            raw = client.chat.completions.with_raw_response.create(model="mock-field", messages=MSG)  # type: ignore[arg-type]
            resp = raw.parse()
            assert resp.choices[0].message.content and resp.usage and resp.usage.completion_tokens > 0
            assert raw.headers["x-request-id"].startswith("req_")  # ours, not the upstream's
            assert raw.headers["x-distillshield-action"] == "allow"
            stream: Any = client.chat.completions.create(model="mock-field", messages=MSG, stream=True)  # type: ignore[arg-type]
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert streamed == resp.choices[0].message.content  # the mock is deterministic
            r = client.responses.create(model="mock-plain", input="Say hello")
            assert r.output_text
            assert "mock" in {m.id for m in client.models.list().data}
            with pytest.raises(openai.InternalServerError) as err:
                client.chat.completions.create(model="mock-error-500", messages=MSG)  # type: ignore[arg-type]
            assert err.value.status_code == 500
            with pytest.raises(openai.APIStatusError) as late:
                client.chat.completions.create(model="mock-timeout", messages=MSG)  # type: ignore[arg-type]
            assert late.value.status_code == 504
            metrics = httpx.get(f"{url}/metrics").text
    assert 'distillshield_upstream_errors_total{kind="timeout"} 1.0' in metrics
    m = re.search(r'distillshield_added_latency_seconds_count\{endpoint="chat"\} (\d+)', metrics)
    assert m is not None and int(m.group(1)) == 4


@pytest.mark.parametrize("client_kind", ["aiohttp", "httpx"])
def test_unreachable_upstream_is_502(tmp_path: Path, client_kind: str) -> None:
    if client_kind == "aiohttp":
        pytest.importorskip("aiohttp")
    from _redis_server import free_port

    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"key": KEY, "account_id": "acct_1"}) + "\n")
    config = load_config(
        None,
        upstream=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        upstream_client=client_kind,
        keys_file=str(keys),
        log_dir=str(tmp_path / "log"),
    )
    with serving(create_app(config)) as url:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "m", "messages": MSG},
            headers={"authorization": f"Bearer {KEY}"},
            timeout=20,
        )
        models = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {KEY}"}, timeout=20)
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
    assert models.status_code == 502


def test_an_injected_transport_needs_the_httpx_client(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="httpx"):
        _app(tmp_path, GatedUpstream(), upstream_client="aiohttp")
    assert _app(tmp_path, GatedUpstream()).state.gateway.upstream.name == "httpx"


# ------------------------------------------------------------------- fail-open throttling


class CountingSignals:
    def __init__(self) -> None:
        self.calls = 0

    def compute(self, prompt: str, system: str | None, tools: Any, n_messages: int) -> None:
        self.calls += 1


class DeadBuckets:
    """A shared store (not the in-process one) whose rate-limit buckets are unreachable."""

    async def close(self) -> None:
        return None

    async def take(self, bucket: str, rate_per_s: float, burst: float, now: float) -> float:
        raise StoreUnavailable("buckets down")


def test_fail_open_throttle_reuses_the_decision(tmp_path: Path) -> None:
    from distillshield.gateway import DEFAULT_POLICY, Engine, load_policy

    signals = CountingSignals()
    engine = Engine(
        load_policy(DEFAULT_POLICY),
        signals=signals,
        verdicts=VerdictSet(
            accounts={"acct_c": AccountVerdict("campaign", "cmp-1", 0.99, 0.99)}, campaigns={"cmp-1": 0.99}
        ),
    )
    config = load_config(None, upstream="http://upstream.test/v1", log_dir=str(tmp_path / "log"))
    app = create_app(config, transport=GatedUpstream(), store=DeadBuckets(), engine=engine)
    gw = app.state.gateway
    ctx = RequestContext(
        "r1", 1_770_000_000.0, "acct_c", None, "m", "/v1/chat/completions", "1.2.3.4", prompt="hi"
    )
    decision = asyncio.run(gw.decide(ctx))
    assert signals.calls == 1  # the fallback did not decide again
    assert "fail:open:local_rate_limit" in decision.reasons
    assert "rule:confirmed-campaign" in decision.reasons and decision.campaign_id == "cmp-1"
    assert decision.fail_mode == "open" and gw.degraded


# ------------------------------------------------------------------ learning after the answer


class _Events:
    """What happened, in order: the exchange logged, the answer's last byte sent, learned."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def append(self, record: dict[str, Any]) -> None:
        self.seen.append("log")

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None


def _watched_app(tmp: Path, events: _Events, *, fail_learning: bool = False) -> Any:
    store = MemoryStore()
    asyncio.run(store.put_key(hash_key(KEY), KeyRecord("k1", "acct_1")))
    config = load_config(None, upstream="http://upstream.test/v1", log_dir=str(tmp / "log"))
    app = create_app(config, transport=SlowUpstream(FakeClock(), 0.0, 0.0), store=store, exchange_log=events)
    engine = app.state.gateway.engine
    record = engine.record

    def watched(*args: Any, **kwargs: Any) -> None:
        events.seen.append("learn")
        if fail_learning:
            raise RuntimeError("learning broke")
        record(*args, **kwargs)

    engine.record = watched
    return app


async def _send_watched(app: Any, events: _Events, body: dict[str, Any]) -> int:
    clock = FakeClock()
    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            events.seen.append("end")

    async def call(scope: Any, receive: Any, _: Any) -> None:
        await app(scope, receive, send)

    await _call_asgi(call, body, clock, receive_s=0.0, send_s=0.0)
    return status


def test_a_unary_exchange_is_logged_before_its_answer_ends_and_learned_after(tmp_path: Path) -> None:
    events = _Events()
    app = _watched_app(tmp_path, events)
    assert asyncio.run(_send_watched(app, events, {"model": "m", "messages": MSG})) == 200
    assert events.seen == ["log", "end", "learn"]
    state = app.state.gateway.engine.risk.fleet_state("acct_1")
    assert state is not None and state.get()["n_requests"] == 1


def test_a_stream_learns_and_logs_before_its_last_event(tmp_path: Path) -> None:
    events = _Events()
    app = _watched_app(tmp_path, events)
    body = {"model": "m", "messages": MSG, "stream": True}
    assert asyncio.run(_send_watched(app, events, body)) == 200
    assert events.seen == ["learn", "log", "end"]


def test_handle_called_directly_learns_before_it_returns(tmp_path: Path) -> None:
    """An embedding that calls ``Gateway.handle`` itself has nobody to learn after the answer."""
    from starlette.requests import Request

    events = _Events()
    app = _watched_app(tmp_path, events)
    gw = app.state.gateway
    payload = json.dumps({"model": "m", "messages": MSG}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"authorization", f"Bearer {KEY}".encode())],
        "client": ("198.51.100.7", 50000),
    }
    response = asyncio.run(gw.handle(Request(scope, receive), "chat"))
    assert response.status_code == 200 and events.seen == ["learn", "log"]


def test_learning_that_fails_after_the_answer_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = _Events()
    app = _watched_app(tmp_path, events, fail_learning=True)
    with caplog.at_level("ERROR", logger="distillshield.gateway"):
        assert asyncio.run(_send_watched(app, events, {"model": "m", "messages": MSG})) == 200
    assert events.seen == ["log", "end", "learn"]
    assert "online learning failed" in caplog.text
