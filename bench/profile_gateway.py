"""The gateway's own CPU per request, in process: no sockets, no server, no real upstream.

Usage::

    # CPU per request of the gateway and of a pass-through floor, alternating rounds
    .venv/bin/python bench/profile_gateway.py [--n 4096] [--rounds 5]

    # the same, plus a cProfile of the gateway's rounds: own time by area, top functions
    .venv/bin/python bench/profile_gateway.py --rounds 2 --profile /tmp/gw.prof.txt

    # before/after in one process: a copy of an older source tree (e.g. `cp -r src /tmp/before/`
    # before a change) is imported as `distillshield_before`, and its gateway's rounds alternate
    # with the working tree's gateway's and the floor's, on the same corpus
    .venv/bin/python bench/profile_gateway.py --before /tmp/before/src [--rounds 7]

What runs: the app of ``distillshield gateway`` as the latency benchmark configures it
(bench/bench_gateway.py's fixtures: 10,000 keys, published verdicts with two campaigns, the bench
policy, the marking key, the in-process store, the real exchange log with ``fsync = "none"``),
called straight through its ASGI interface, one request at a time, on the benchmark's request
corpus (non-streamed chat completions from 2,000 active accounts and the campaign ranges, with
their ``X-Forwarded-For`` addresses, user agents, JA4 headers and prompts of a few hundred
characters; about 12 % protected and marked). The upstream is an in-memory client that answers
each forwarded body with the mock model's bytes for it, computed once before measuring, so
neither a socket nor the mock's generation is measured.

The **floor** is a pass-through on the same harness and the same canned upstream: a Starlette
route that parses the body, forwards it re-encoded and returns the parsed answer (what
``floor-aiohttp`` does in bench/bench_gateway.py). The gateway minus the floor is the gateway's
own work; what both share (the harness's ASGI calls, a Starlette request object) is not. What
neither has here is the HTTP server (uvicorn, httptools) and the upstream client: the benchmark's
per-request CPU is that much higher for both.

Every request of the corpus is sent once to each app first (keys, client addresses and verdict
links cached, as after the benchmark's priming); then rounds of the whole corpus rotate between
the apps, and per app the median over rounds of the CPU per request is reported, in µs:
``time.process_time()`` (the whole process, the exchange log's flusher thread included),
``time.thread_time()`` (the event loop's thread), the same until each answer's last byte was
handed over (what a client waits for: work after it, such as the gateway's online learning, is
not in it), and the minimum of the first (the least disturbed round). On a shared machine the
rounds of one rotation ran under the same load: with ``--before``, the before/after ratios are
also given as medians of the per-rotation ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096, help="requests in the corpus (one round)")
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds per app")
    ap.add_argument("--profile", help="write a cProfile breakdown of the gateway's rounds here")
    ap.add_argument("--before", help="an older source tree (its src/) measured beside the working tree's")
    ap.add_argument(
        "--no-answer-time",
        action="store_true",
        help="do not read the thread's CPU clock at each answer's end (under a sampling profiler "
        "such as py-spy, whose pauses make those reads look expensive)",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="with --before: also require both gateways' answers (status, decision headers, body) "
        "and logged records to be the same, request ids and times aside",
    )
    return ap.parse_args(argv)


# --------------------------------------------------------------------------------------------
# the canned upstream
# --------------------------------------------------------------------------------------------


class _Reply:
    __slots__ = ("_content", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], content: bytes) -> None:
        self.status, self.headers, self._content = status, headers, content

    async def read(self) -> bytes:
        return self._content

    async def chunks(self) -> Any:  # pragma: no cover - the corpus is not streamed
        yield self._content

    async def aclose(self) -> None:
        return None


class CannedUpstream:
    """An :class:`~distillshield.gateway._upstream.UpstreamClient` answering each body with the
    mock model's answer to it (looked up by the body's bytes; re-encoded bodies by their JSON)."""

    name = "canned"

    def __init__(self, answers: dict[bytes, tuple[int, list[tuple[str, str]], bytes]]) -> None:
        self.answers = answers
        self.by_json = {json.dumps(json.loads(k), sort_keys=True): v for k, v in answers.items()}

    async def send(self, method: str, path: str, body: bytes | None, headers: Any) -> _Reply:
        got = self.answers.get(body or b"")
        if got is None:
            got = self.by_json[json.dumps(json.loads(body or b"{}"), sort_keys=True)]
        return _Reply(*got)

    async def aclose(self) -> None:
        return None


async def _mock_answers(bodies: list[bytes]) -> dict[bytes, tuple[int, list[tuple[str, str]], bytes]]:
    from distillshield.gateway.mock_upstream import MockConfig, make_mock_upstream

    app = make_mock_upstream(MockConfig())
    out: dict[bytes, tuple[int, list[tuple[str, str]], bytes]] = {}
    for body in bodies:
        if body in out:
            continue
        status, headers, chunks = await _call(app, _scope("/v1/chat/completions", [], None), body)
        out[body] = (status, [(k.decode(), v.decode()) for k, v in headers], b"".join(chunks))
    return out


# --------------------------------------------------------------------------------------------
# ASGI calls
# --------------------------------------------------------------------------------------------


def _scope(path: str, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": client or ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


#: ``time.thread_time()`` when the last answer handed over its last byte (see :func:`_call`).
_ENDED = [0.0]
_CLOCK = [time.thread_time]


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], list[bytes]]:
    """One request through ``app``; the time its answer ended is left in ``_ENDED``."""
    sent = False
    status = 0
    out_headers: list[Any] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers = message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                _ENDED[0] = _CLOCK[0]()

    await app(dict(scope), receive, send)
    return status, out_headers, chunks


def _corpus(n: int) -> list[tuple[dict[str, Any], bytes]]:
    """The benchmark's requests as (ASGI scope, body)."""
    import bench_gateway as bg

    out = []
    for raw in bg.Corpus.build(n).requests:
        head, body = raw.split(b"\r\n\r\n", 1)
        headers = []
        for line in head.split(b"\r\n")[1:]:
            k, v = line.split(b": ", 1)
            headers.append((k.lower(), v))
        out.append((_scope("/v1/chat/completions", headers, ("10.0.0.1", 40000)), body))
    return out


# --------------------------------------------------------------------------------------------
# the apps
# --------------------------------------------------------------------------------------------


def _gateway_app(work: Path, upstream: CannedUpstream, package: str = "distillshield") -> Any:
    import bench_gateway as bg

    gateway = importlib.import_module(f"{package}.gateway")
    os.environ["DISTILLSHIELD_MARK_KEY"] = bg.MARK_KEY
    fx = bg.write_fixtures(work, "http://mock.invalid/v1", "redis://127.0.0.1:9/0")
    config = gateway.load_config(fx["gateway-memory"])
    return gateway.create_app(config, upstream=upstream)


def _import_as_before(src: Path, tmp: Path) -> str:
    """Copy ``src/distillshield`` to ``tmp/distillshield_before`` with its imports renamed, and
    put it on ``sys.path``: an older version of the package, importable beside the current one."""
    dest = tmp / "distillshield_before"
    shutil.copytree(src / "distillshield", dest, ignore=shutil.ignore_patterns("__pycache__"))
    pattern = re.compile(r"\bdistillshield(?=\.[a-z_]|\s+import\b|$)", re.MULTILINE)
    for path in dest.rglob("*.py"):
        path.write_text(
            pattern.sub("distillshield_before", path.read_text(encoding="utf-8")), encoding="utf-8"
        )
    sys.path.insert(0, str(tmp))
    return "distillshield_before"


def _floor_app(upstream: CannedUpstream) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        # re-encoded as the corpus encoded it: the canned upstream finds it by its bytes
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        reply = await upstream.send("POST", "/chat/completions", payload, headers)
        return JSONResponse(json.loads(await reply.read()), status_code=reply.status)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


# --------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------


async def _round(app: Any, corpus: list[tuple[dict[str, Any], bytes]]) -> tuple[float, float, float]:
    """CPU µs per request of one pass over ``corpus``: the process's, the event loop thread's,
    and the loop thread's until each answer's last byte was handed over (what the client
    waits for; work done after it, such as the gateway's online learning, is not in it)."""
    on_path = 0.0
    p0, t0 = time.process_time(), time.thread_time()
    clock = _CLOCK[0]
    for scope, body in corpus:
        start = clock()
        await _call(app, scope, body)
        on_path += _ENDED[0] - start
    p1, t1 = time.process_time(), time.thread_time()
    n = len(corpus)
    return (p1 - p0) / n * 1e6, (t1 - t0) / n * 1e6, on_path / n * 1e6


async def _measure(args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    import gc

    corpus = _corpus(args.n)
    upstream = CannedUpstream(await _mock_answers([b for _, b in corpus]))
    apps: dict[str, Any] = {}
    if args.before:
        package = _import_as_before(Path(args.before), work)
        apps["before"] = _gateway_app(work / "before", upstream, package)
    apps["gateway"] = _gateway_app(work / "gateway", upstream)
    apps["floor"] = _floor_app(upstream)
    gateways = [a.gateway for a in apps.values() if hasattr(a, "gateway")]
    for gw in gateways:
        await gw.startup()
    samples: dict[str, dict[str, list[float]]] = {
        name: {"proc": [], "thread": [], "answer": []} for name in apps
    }
    prof: Any = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile(time.thread_time)
    try:
        answers: dict[str, list[Any]] = {}
        for name, app in apps.items():  # keys, addresses, links cached
            answers[name] = [await _call(app, scope, body) for scope, body in corpus]
            statuses = {status for status, _, _ in answers[name]}
            if statuses != {200}:
                raise SystemExit(f"{name} did not answer every request with 200: {statuses}")
        if args.check and "before" in apps:
            _same_answers(answers["before"], answers["gateway"])
        names = list(apps)
        for k in range(args.rounds):
            for name in names[k % len(names) :] + names[: k % len(names)]:
                gc.collect()
                profiled = prof is not None and name == "gateway"
                if profiled:
                    prof.enable()
                p, t, a = await _round(apps[name], corpus)
                if profiled:
                    prof.disable()
                samples[name]["proc"].append(p)
                samples[name]["thread"].append(t)
                samples[name]["answer"].append(a)
    finally:
        for gw in gateways:
            await gw.shutdown()
    if args.check and "before" in apps:
        _same_logs(work / "before" / "log-memory", work / "gateway" / "log-memory")
    if prof is not None:
        _write_profile(prof, args.profile, args.rounds * len(corpus))
    out: dict[str, dict[str, Any]] = {}
    for name, got in samples.items():
        out[name] = {
            "proc": statistics.median(got["proc"]),
            "thread": statistics.median(got["thread"]),
            "answer": statistics.median(got["answer"]),
            "proc_min": min(got["proc"]),
            "thread_min": min(got["thread"]),
            "rounds_proc": got["proc"],
            "rounds_answer": got["answer"],
        }
    return out


def _same_answers(before: list[Any], after: list[Any]) -> None:
    def norm(answer: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        status, headers, chunks = answer
        return status, [(k, v) for k, v in headers if k != b"x-request-id"], b"".join(chunks)

    diff = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if norm(b) != norm(a)]
    if diff:
        raise SystemExit(f"answers differ on {len(diff)} requests, first {diff[0]}: {norm(before[diff[0]])}")
    print(f"check: the {len(after)} answers of the priming round are the same")


def _same_logs(before: Path, after: Path) -> None:
    from distillshield.gateway._log import read_gateway_log

    def rows(path: Path) -> list[dict[str, Any]]:
        table = read_gateway_log(path).drop_columns(["request_id", "ts"])
        out: list[dict[str, Any]] = table.to_pylist()
        return out

    b, a = rows(before), rows(after)
    diff = [i for i, (x, y) in enumerate(zip(b, a, strict=True)) if x != y]
    if len(a) != len(b) or diff:
        raise SystemExit(f"logged records differ: {len(b)} vs {len(a)} rows, {len(diff)} differ")
    print(f"check: the {len(a)} logged records are the same (request ids and times aside)")


def _write_profile(prof: Any, path: str, n_requests: int) -> None:
    import io
    import pstats

    import bench_gateway as bg

    prof.dump_stats(path + ".pstats")
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(45)
    st.sort_stats("cumulative").print_stats(60)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{n_requests} requests; own CPU by area (s):\n\n")
        fh.write(bg.profile_by_area(path + ".pstats") + "\n\n" + buf.getvalue())


def _run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    if args.no_answer_time:
        _CLOCK[0] = float  # float() is 0.0: the "until the answer's last byte" column reads 0
    with tempfile.TemporaryDirectory(prefix="profile-gateway-") as tmp:
        return asyncio.run(_measure(args, Path(tmp)))


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    out = _run(args)
    floor = out["floor"]
    print(f"{args.n} requests a round, {args.rounds} rounds per app; CPU µs per request:")
    print(
        "| app | process (median) | event-loop thread (median) | ... until the answer's last byte "
        "(median) | process (min) | process minus floor (median) |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in out.items():
        minus = "" if name == "floor" else f"{r['proc'] - floor['proc']:.0f}"
        cells = [f"{r[k]:.0f}" for k in ("proc", "thread", "answer", "proc_min")]
        print(f"| {name} | {' | '.join(cells)} | {minus} |")
    for name, r in out.items():
        print(f"  {name} rounds: {', '.join(f'{x:.0f}' for x in r['rounds_proc'])}")
    if "before" in out:
        # paired by rotation: a rotation's rounds ran one after the other, under the same load
        b, a = out["before"], out["gateway"]
        rot = list(zip(b["rounds_proc"], a["rounds_proc"], floor["rounds_proc"], strict=True))
        ans = list(zip(b["rounds_answer"], a["rounds_answer"], strict=True))
        ratio = statistics.median(y / x for x, y, _ in rot)
        own = statistics.median((y - f) / (x - f) for x, y, f in rot)
        ans_ratio = statistics.median(y / x for x, y in ans) if ans[0][0] else float("nan")
        print(
            f"gateway vs before, per rotation (median): CPU per request x{ratio:.2f}, own work "
            f"(minus the floor) x{own:.2f}, until the answer's last byte x{ans_ratio:.2f}"
        )
    if args.profile:
        print(f"profile: {args.profile}")


if __name__ == "__main__":
    main()
