"""The gateway's upstream client: one small interface, two implementations.

The proxy needs four things from an HTTP client: send a request and get the status and
headers back (:meth:`UpstreamClient.send`), read a short body whole
(:meth:`UpstreamReply.read`), iterate a streamed body chunk by chunk
(:meth:`UpstreamReply.chunks`), and close. Failures come back as two exceptions of ours,
:class:`UpstreamTimeout` (→ 504) and :class:`UpstreamUnavailable` (→ 502), whatever the
client, so the handler has one error path.

* :class:`AiohttpUpstream` — the default when aiohttp is installed. Its connection pool does
  constant work per request; httpx's (httpcore's) re-scans every pooled connection whenever
  a request starts or ends, which made the client most of the gateway's CPU and made the cost
  per request grow with the number in flight (docs/benchmarks.md, "Gateway latency").
* :class:`HttpxUpstream` — httpx with an injectable :class:`httpx.AsyncBaseTransport`, so tests
  and the offline replay run the gateway against an in-process ASGI app with no socket at all.
  Used whenever a transport is injected, when aiohttp is missing, or when the config says so
  (``upstream_client = "httpx"``).

Deadlines are the caller's (``asyncio.timeout`` around :meth:`~UpstreamClient.send` and each
chunk), so transports without socket timeouts of their own honour them too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

__all__ = [
    "AiohttpUpstream",
    "HttpxUpstream",
    "UpstreamClient",
    "UpstreamReply",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "aiohttp_available",
    "make_upstream",
]


class UpstreamTimeout(Exception):  # noqa: N818 - reads as a condition, like TimeoutError
    """The upstream did not answer (or stalled mid-stream) within the deadline."""


class UpstreamUnavailable(Exception):  # noqa: N818
    """The upstream could not be reached or broke the connection."""


class UpstreamReply(Protocol):
    """An upstream response whose status and headers arrived; the body is still to be read."""

    status: int
    headers: list[tuple[str, str]]

    async def read(self) -> bytes: ...
    def chunks(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """What the proxy needs from an HTTP client (see the module docstring)."""

    name: str

    async def send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> UpstreamReply: ...
    async def aclose(self) -> None: ...


#: How long an idle pooled connection to the upstream is kept. Below uvicorn's default
#: keep-alive (5 s; vLLM and the mock model serve with it): a server that closes an idle
#: connection just as a request is sent on it makes that request fail (502), so the pool lets
#: connections go first. (httpx's pool checks an idle socket for EOF before reusing it.)
KEEPALIVE_S = 4.0


def aiohttp_available() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


# ----------------------------------------------------------------------------------- httpx


class _HttpxReply:
    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self.status: int = resp.status_code
        self.headers: list[tuple[str, str]] = resp.headers.items()

    async def read(self) -> bytes:
        import httpx

        try:
            data: bytes = await self._resp.aread()
            return data
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc) or type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        finally:
            await self._resp.aclose()

    async def chunks(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc) or type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._resp.aclose()


class HttpxUpstream:
    """httpx client on ``base_url``; ``transport`` replaces the network (tests, replay)."""

    name = "httpx"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        transport: Any = None,
        max_connections: int = 1000,
    ) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=200),
        )

    async def send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> _HttpxReply:
        import httpx

        req = self._client.build_request(method, path, content=body, headers=headers)
        try:
            resp = await self._client.send(req, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc) or type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        return _HttpxReply(resp)

    async def aclose(self) -> None:
        await self._client.aclose()


# --------------------------------------------------------------------------------- aiohttp


class _AiohttpReply:
    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self.status: int = resp.status
        self.headers: list[tuple[str, str]] = list(resp.headers.items())

    async def read(self) -> bytes:
        import aiohttp

        try:
            data: bytes = await self._resp.read()
            return data
        except TimeoutError as exc:
            raise UpstreamTimeout("read timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout("read timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._resp.release()


class AiohttpUpstream:
    """aiohttp client on ``base_url`` (the session is opened lazily, in the serving loop)."""

    name = "aiohttp"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        max_connections: int = 1000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._session: Any = None

    def _open(self) -> Any:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=KEEPALIVE_S, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            # total: the caller's deadlines apply; sock_read bounds a stall between chunks
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self._connect_timeout_s, sock_read=self._timeout_s
            ),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> _AiohttpReply:
        import aiohttp

        session = self._session or self._open()
        try:
            resp = await session.request(method, self.base_url + path, data=body, headers=headers)
        except TimeoutError as exc:
            raise UpstreamTimeout("connect or read timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        return _AiohttpReply(resp)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_upstream(
    kind: str,
    base_url: str,
    *,
    transport: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 600.0,
    connect_timeout_s: float = 5.0,
) -> UpstreamClient:
    """The client for ``kind`` (``auto``, ``aiohttp`` or ``httpx``): ``auto`` is aiohttp when it
    is installed and no httpx ``transport`` is injected, else httpx."""
    if kind == "aiohttp" and transport is not None:
        raise ValueError("an injected transport is an httpx transport: use upstream_client = 'httpx'")
    use_aiohttp = kind == "aiohttp" or (kind == "auto" and transport is None and aiohttp_available())
    if use_aiohttp:
        return AiohttpUpstream(
            base_url, headers=headers, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s
        )
    return HttpxUpstream(
        base_url,
        headers=headers,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        transport=transport,
    )
