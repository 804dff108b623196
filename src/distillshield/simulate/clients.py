"""Client identities for the simulator: realistic User-Agent strings and TLS fingerprints.

Why this exists: attribution links accounts through "request metadata" and client fingerprints,
and a classic tell of an attacker's harness is a User-Agent that claims an official SDK while
the TLS handshake comes from a different stack.  The simulator therefore needs both halves,
drawn realistically and *independently*:

* the User-Agent is what the client software writes (``OpenAI/Python 1.54.3``,
  ``Go-http-client/2.0``, a browser string), with real version numbers from each package's
  release history (early 2024 to early 2026), recent releases more likely;
* the TLS fingerprint is a JA4-style string fixed by the TLS stack that made the handshake --
  runtime and its major version (CPython + OpenSSL 3.0, Node 20, Go 1.23, Chrome 131, JDK 17)
  -- never by the UA text.  Two libraries on the same runtime share a fingerprint, as they do in
  real traffic; a spoofed UA keeps its real stack's fingerprint.

The fingerprints are **synthetic but consistent**: ``t13d{ciphers}{extensions}{alpn}_{b}_{c}``
with plausible counts per stack, ``b`` a hash of the stack's cipher-suite family (shared by,
e.g., every Chromium) and ``c`` a hash of the stack and major version.  They are not the values a
real JA4 sensor would print for those stacks.  Browser User-Agents come from fake-useragent's
bundled market-share data (read directly; drawn with the caller's generator).  See
docs/simulator-identity.md.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

ClientFamily = Literal[
    "openai-python",
    "openai-node",
    "anthropic-python",
    "anthropic-typescript",
    "litellm",
    "langchain",
    "python-requests",
    "python-httpx",
    "curl",
    "go-http",
    "java-okhttp",
    "browser",
    "custom",
]

#: Every family, in declaration order.
CLIENT_FAMILIES: Final[tuple[ClientFamily, ...]] = get_args(ClientFamily)


@dataclass(frozen=True)
class Client:
    """One client identity as the API sees it, plus what really produced it.

    ``family`` is the software that actually made the request (for a spoofed client, the real
    stack, not the family its UA claims).  ``sdk_version`` is the version the UA advertises
    (the SDK, library, tool or browser version); for ``go-http``, whose UA carries none, it is
    the Go toolchain version.
    """

    user_agent: str
    tls_fingerprint: str
    family: ClientFamily
    sdk_version: str | None


# ---------------------------------------------------------------------------------------------
# TLS stacks (data)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tls:
    """A TLS client stack and the JA4 shape it produces.

    ``extensions`` counts the ClientHello extensions *including* ALPN when ``alpn`` is not
    "00"; like JA4, the ``c`` hash ignores ALPN, so one runtime with and without ALPN differs
    only in the first section.
    """

    key: str  # runtime and major version, e.g. "node-20"
    cipher_family: str  # stacks with the same cipher-suite list share JA4 part b
    ciphers: int
    extensions: int
    alpn: str = "h1"
    version: str = "13"

    def ja4(self) -> str:
        b = hashlib.sha256(f"ja4-ciphers:{self.cipher_family}".encode()).hexdigest()[:12]
        c = hashlib.sha256(f"ja4-extensions:{self.key}".encode()).hexdigest()[:12]
        return f"t{self.version}d{self.ciphers:02d}{self.extensions:02d}{self.alpn}_{b}_{c}"

    def without_alpn(self) -> _Tls:
        """The same runtime used by a library that sends no ALPN (one extension fewer)."""
        return _Tls(self.key, self.cipher_family, self.ciphers, self.extensions - 1, "00", self.version)


def _runtime(tls: Sequence[_Tls], weights: Sequence[float]) -> tuple[tuple[_Tls, ...], tuple[float, ...]]:
    return tuple(tls), tuple(weights)


# CPython's ssl module with the HTTP/1.1 ALPN that httpx and urllib3 2.x send.  Which OpenSSL a
# Python links decides the handshake: distro Pythons (Ubuntu 22.04/24.04, Debian 12) ship 3.0,
# python.org / Homebrew / uv builds 3.2+, older distros 1.1.1, macOS system Python LibreSSL.
_PYTHON: Final = _runtime(
    (
        _Tls("cpython/openssl-1.1.1", "openssl-1.1-python", 17, 12),
        _Tls("cpython/openssl-3.0", "openssl-3-python", 18, 12),
        _Tls("cpython/openssl-3.x", "openssl-3-python", 18, 13),
        _Tls("cpython/libressl-2.8", "libressl-python", 23, 11),
    ),
    (0.15, 0.50, 0.30, 0.05),
)
# Node's bundled OpenSSL 3, per Node major.  Older SDKs (openai-node 4, @anthropic-ai/sdk before
# 0.50) go through node-fetch / https (no ALPN); newer ones through undici's fetch (http/1.1).
_NODE_MAJORS: Final = (("18", 0.20), ("20", 0.40), ("22", 0.35), ("24", 0.05))
_NODE_FETCH: Final = _runtime(
    tuple(_Tls(f"node-{m}", "openssl-3-node", 17, 12) for m, _ in _NODE_MAJORS),
    tuple(w for _, w in _NODE_MAJORS),
)
_NODE_HTTPS: Final = _runtime(tuple(t.without_alpn() for t in _NODE_FETCH[0]), _NODE_FETCH[1])
# Go's crypto/tls (net/http offers h2): one shape per Go minor release.
_GO_MINORS: Final = ("1.21", "1.22", "1.23", "1.24", "1.25")
_GO: Final = MappingProxyType({m: _Tls(f"go-{m}", "go-crypto-tls", 13, 10, "h2") for m in _GO_MINORS})
# curl: OpenSSL on Linux, LibreSSL in macOS's /usr/bin/curl, Schannel in Windows' curl.exe.
_CURL: Final = _runtime(
    (
        _Tls("curl/openssl-3", "openssl-3-curl", 31, 12, "h2"),
        _Tls("curl/libressl-3.3", "libressl-curl", 24, 11, "h2"),
        _Tls("curl/schannel", "schannel", 22, 10, "h2"),
    ),
    (0.65, 0.25, 0.10),
)
# OkHttp restricts cipher suites itself; the JDK (or Android's Conscrypt) decides the rest.
_JAVA: Final = _runtime(
    (
        _Tls("jdk-11", "okhttp-modern-tls", 17, 11, "h2"),
        _Tls("jdk-17", "okhttp-modern-tls", 17, 12, "h2"),
        _Tls("jdk-21", "okhttp-modern-tls", 17, 12, "h2"),
        _Tls("android-conscrypt", "okhttp-modern-tls", 16, 13, "h2"),
    ),
    (0.20, 0.45, 0.30, 0.05),
)
_BUN: Final = _runtime((_Tls("bun/boringssl", "boringssl-bun", 16, 13),), (1.0,))
_DENO: Final = _runtime((_Tls("deno/rustls", "rustls", 9, 10),), (1.0,))


# ---------------------------------------------------------------------------------------------
# release histories (data): real versions, oldest first, spanning early 2024 - early 2026
# ---------------------------------------------------------------------------------------------
def _v(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_OPENAI_PYTHON: Final = _v(
    """1.12.0 1.13.3 1.14.3 1.31.0 1.33.0 1.35.3 1.35.10 1.35.15 1.37.1 1.40.2 1.40.8 1.42.0 1.44.1
    1.45.1 1.47.1 1.50.2 1.51.2 1.52.2 1.54.3 1.54.4 1.55.3 1.56.2 1.57.4 1.58.1 1.59.7 1.59.9 1.60.2
    1.61.1 1.63.2 1.65.4 1.66.3 1.68.2 1.70.0 1.72.0 1.75.0 1.76.2 1.78.1 1.79.0 1.82.1 1.84.0 1.86.0
    1.88.0 1.91.0 1.93.3 1.95.1 1.97.1 1.99.9 1.101.0 1.102.0 1.104.2 1.106.1 1.107.3 1.108.2 1.109.1
    2.0.1 2.1.0 2.2.0 2.3.0 2.5.0 2.6.1 2.7.2 2.8.1 2.9.0 2.11.0 2.13.0 2.14.0 2.15.0 2.16.0"""
)
_OPENAI_NODE: Final = _v(
    """4.44.0 4.47.1 4.49.1 4.52.7 4.53.2 4.55.9 4.56.2 4.58.2 4.61.1 4.63.0 4.67.3 4.68.4 4.70.3
    4.71.1 4.73.1 4.76.3 4.77.4 4.78.1 4.79.4 4.80.1 4.82.0 4.85.4 4.86.2 4.87.4 4.89.1 4.91.1 4.93.0
    4.96.2 4.98.0 4.100.0 4.103.0 4.104.0 5.0.2 5.1.1 5.3.0 5.5.1 5.8.4 5.9.2 5.10.3 5.12.2 5.13.1
    5.16.0 5.19.1 5.20.3 5.22.1 5.23.2 6.0.1 6.2.0 6.3.0 6.5.0 6.7.0 6.8.1 6.9.1 6.10.0 6.13.0 6.15.0
    6.16.0"""
)
_ANTHROPIC_PYTHON: Final = _v(
    """0.17.0 0.18.0 0.19.2 0.21.0 0.23.0 0.25.9 0.26.1 0.28.1 0.29.1 0.30.1 0.31.2 0.32.0 0.34.2
    0.36.2 0.37.1 0.39.0 0.40.0 0.42.0 0.43.1 0.45.2 0.47.2 0.49.0 0.50.0 0.51.0 0.52.2 0.54.0 0.57.1
    0.58.2 0.59.0 0.60.0 0.62.0 0.64.0 0.66.0 0.68.2 0.69.0 0.71.1 0.72.1 0.74.1 0.75.0 0.77.1 0.79.0"""
)
_ANTHROPIC_TS: Final = _v(
    """0.16.1 0.17.2 0.18.0 0.19.2 0.20.9 0.21.1 0.22.0 0.24.3 0.25.2 0.26.1 0.27.3 0.29.2 0.30.1
    0.32.1 0.33.1 0.35.0 0.36.3 0.37.0 0.39.0 0.40.1 0.41.0 0.50.4 0.51.0 0.52.0 0.53.0 0.54.0 0.55.1
    0.56.0 0.57.0 0.59.0 0.60.0 0.62.0 0.63.1 0.65.0 0.67.1 0.68.0 0.69.0 0.70.1 0.71.2 0.72.1 0.74.0"""
)
_LITELLM: Final = _v(
    """1.37.20 1.38.0 1.55.4 1.59.9 1.60.2 1.60.8 1.61.3 1.61.20 1.63.0 1.63.14 1.65.3 1.65.8 1.66.3
    1.67.2 1.68.2 1.69.3 1.70.4 1.71.3 1.72.6 1.73.6 1.74.3 1.74.9 1.75.0 1.75.8 1.76.3 1.77.4 1.77.7
    1.78.5 1.79.1 1.79.3 1.80.0 1.80.5 1.80.10 1.80.15 1.81.0"""
)
_REQUESTS: Final = _v("2.31.0 2.32.2 2.32.3 2.32.4 2.32.5")
_HTTPX: Final = _v("0.25.2 0.26.0 0.27.0 0.27.2 0.28.0 0.28.1")
# curl as distributions ship it: Ubuntu 22.04 (7.81), Debian 12 (7.88), macOS 14/15 (8.4, 8.7),
# Ubuntu 24.04 (8.5), then upstream releases.
_CURL_VERSIONS: Final = _v(
    "7.81.0 7.88.1 8.4.0 8.5.0 8.6.0 8.7.1 8.9.1 8.10.1 8.11.1 8.12.1 8.13.0 8.14.1 8.15.0 8.16.0 8.17.0"
)
_GO_VERSIONS: Final = _v("1.21.13 1.22.5 1.22.12 1.23.4 1.23.8 1.24.2 1.24.6 1.25.1 1.25.4")
_OKHTTP: Final = _v("4.9.3 4.10.0 4.11.0 4.12.0 5.0.0 5.1.0")
_AIOHTTP: Final = _v("3.9.5 3.10.10 3.11.11 3.11.18 3.12.15 3.13.2")
_AXIOS: Final = _v("1.6.8 1.7.2 1.7.9 1.8.4 1.9.0 1.11.0 1.12.2 1.13.2")
_BUN_VERSIONS: Final = _v("1.1.34 1.1.38 1.2.2 1.2.10 1.2.19 1.3.1")
_DENO_VERSIONS: Final = _v("1.46.3 2.0.6 2.1.4 2.2.12 2.4.5 2.5.6")
_APACHE_HTTPCLIENT: Final = _v("4.5.13 4.5.14 5.2.1 5.3.1 5.4.1 5.5")
_PY_MINORS: Final = ("3.10", "3.11", "3.12", "3.13")
_JDK_BUILDS: Final = MappingProxyType({"jdk-11": "11.0.24", "jdk-17": "17.0.12", "jdk-21": "21.0.5"})

#: ``recent`` = 1 makes the newest release this many times likelier than the oldest (e^6 ~ 400).
_RECENCY_STRENGTH: Final = 6.0


# ---------------------------------------------------------------------------------------------
# family specifications
# ---------------------------------------------------------------------------------------------
_Draw = tuple[str, _Tls, str | None]  # (user agent, TLS stack, sdk_version)
_Sampler = Callable[[int, np.random.Generator, float], list[_Draw]]


def _recency_weights(n: int, recent: float) -> npt.NDArray[np.float64]:
    x = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    w = np.exp(_RECENCY_STRENGTH * recent * x)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _choice(
    rng: np.random.Generator, n: int, weights: Sequence[float] | npt.NDArray[np.float64]
) -> list[int]:
    p = np.asarray(weights, dtype=np.float64)
    return [int(i) for i in rng.choice(len(p), size=n, p=p / p.sum())]


def _versions(rng: np.random.Generator, n: int, history: Sequence[str], recent: float) -> list[str]:
    return [history[i] for i in _choice(rng, n, _recency_weights(len(history), recent))]


def _stacks(
    rng: np.random.Generator, n: int, runtime: tuple[tuple[_Tls, ...], tuple[float, ...]]
) -> list[_Tls]:
    tls, weights = runtime
    return [tls[i] for i in _choice(rng, n, weights)]


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def _sdk(
    template: Callable[[str, int], str],
    history: Sequence[str],
    runtime: Callable[[str], tuple[tuple[_Tls, ...], tuple[float, ...]]],
    variants: Sequence[float] = (1.0,),
) -> _Sampler:
    """A family whose UA is ``template(version, variant)`` and whose stack depends on the runtime."""

    def sample(n: int, rng: np.random.Generator, recent: float) -> list[_Draw]:
        versions = _versions(rng, n, history, recent)
        variant = _choice(rng, n, variants)
        by_runtime: dict[tuple[tuple[_Tls, ...], tuple[float, ...]], list[int]] = {}
        for i, v in enumerate(versions):
            by_runtime.setdefault(runtime(v), []).append(i)
        stack_of: dict[int, _Tls] = {}
        for rt, rows in by_runtime.items():  # insertion order: deterministic
            stack_of.update(zip(rows, _stacks(rng, len(rows), rt), strict=True))
        return [
            (template(v, k), stack_of[i], v) for i, (v, k) in enumerate(zip(versions, variant, strict=True))
        ]

    return sample


def _python_client(name: str) -> Callable[[str, int], str]:
    """openai-python / anthropic-python: ``f"{client class}/Python {version}"`` (sync or async class)."""
    return lambda v, k: f"{'Async' if k else ''}{name}/Python {v}"


def _openai_node_runtime(v: str) -> tuple[tuple[_Tls, ...], tuple[float, ...]]:
    return _NODE_HTTPS if _major(v) < 5 else _NODE_FETCH


def _anthropic_ts_runtime(v: str) -> tuple[tuple[_Tls, ...], tuple[float, ...]]:
    return _NODE_HTTPS if _minor(v) < 50 else _NODE_FETCH


def _langchain(n: int, rng: np.random.Generator, recent: float) -> list[_Draw]:
    """LangChain's ChatOpenAI / ChatAnthropic call the vendor SDKs, which write their own UA.

    So LangChain traffic is indistinguishable from the SDK's by UA and TLS, as in reality;
    ``invoke`` uses the sync client, ``ainvoke`` the async one.
    """
    use_anthropic = rng.random(n) < 0.3
    anthropic = iter(_SAMPLERS["anthropic-python"](int(use_anthropic.sum()), rng, recent))
    openai = iter(_SAMPLERS["openai-python"](n - int(use_anthropic.sum()), rng, recent))
    return [next(anthropic) if u else next(openai) for u in use_anthropic.tolist()]


def _go(n: int, rng: np.random.Generator, recent: float) -> list[_Draw]:
    """net/http's default UA names the protocol, not the Go version; the handshake tells the minor."""
    versions = _versions(rng, n, _GO_VERSIONS, recent)
    h2 = rng.random(n) < 0.85
    return [
        (f"Go-http-client/{'2.0' if h else '1.1'}", _GO[v.rsplit(".", 1)[0]], v)
        for v, h in zip(versions, h2.tolist(), strict=True)
    ]


def _custom(n: int, rng: np.random.Generator, recent: float) -> list[_Draw]:
    """Hand-rolled clients: generic HTTP libraries and runtimes with their default UAs."""
    kinds = _choice(rng, n, (0.30, 0.20, 0.10, 0.10, 0.08, 0.07, 0.15))
    out: list[_Draw] = []
    for kind in kinds:
        if kind == 0:  # aiohttp: "Python/3.x aiohttp/v", no ALPN
            v = _versions(rng, 1, _AIOHTTP, recent)[0]
            py = _PY_MINORS[int(rng.integers(len(_PY_MINORS)))]
            out.append((f"Python/{py} aiohttp/{v}", _stacks(rng, 1, _PYTHON)[0].without_alpn(), v))
        elif kind == 1:  # axios on Node's https module
            v = _versions(rng, 1, _AXIOS, recent)[0]
            out.append((f"axios/{v}", _stacks(rng, 1, _NODE_HTTPS)[0], v))
        elif kind == 2:
            v = _versions(rng, 1, _BUN_VERSIONS, recent)[0]
            out.append((f"Bun/{v}", _BUN[0][0], v))
        elif kind == 3:
            v = _versions(rng, 1, _DENO_VERSIONS, recent)[0]
            out.append((f"Deno/{v}", _DENO[0][0], v))
        elif kind == 4:  # Apache HttpClient names the JDK in its UA
            v = _versions(rng, 1, _APACHE_HTTPCLIENT, recent)[0]
            tls = _stacks(rng, 1, (_JAVA[0][:3], _JAVA[1][:3]))[0]
            out.append((f"Apache-HttpClient/{v} (Java/{_JDK_BUILDS[tls.key]})", tls, v))
        elif kind == 5:  # urllib from the standard library
            py = _PY_MINORS[int(rng.integers(len(_PY_MINORS)))]
            out.append((f"Python-urllib/{py}", _stacks(rng, 1, _PYTHON)[0], py))
        else:  # scripts that set their own name, on Python or Node
            name = _CUSTOM_NAMES[int(rng.integers(len(_CUSTOM_NAMES)))]
            v = f"{int(rng.integers(0, 3))}.{int(rng.integers(0, 20))}.{int(rng.integers(0, 10))}"
            tls = _stacks(rng, 1, _PYTHON if rng.random() < 0.7 else _NODE_FETCH)[0]
            out.append((f"{name}/{v}", tls, v))
    return out


_CUSTOM_NAMES: Final = ("llm-client", "eval-runner", "batch-worker", "api-bench", "gen-pipeline", "agent")

_SAMPLERS: Final[Mapping[str, _Sampler]] = MappingProxyType(
    {
        "openai-python": _sdk(_python_client("OpenAI"), _OPENAI_PYTHON, lambda v: _PYTHON, (0.62, 0.38)),
        "anthropic-python": _sdk(
            _python_client("Anthropic"), _ANTHROPIC_PYTHON, lambda v: _PYTHON, (0.62, 0.38)
        ),
        "openai-node": _sdk(lambda v, k: f"OpenAI/JS {v}", _OPENAI_NODE, _openai_node_runtime),
        "anthropic-typescript": _sdk(lambda v, k: f"Anthropic/JS {v}", _ANTHROPIC_TS, _anthropic_ts_runtime),
        "litellm": _sdk(lambda v, k: f"litellm/{v}", _LITELLM, lambda v: _PYTHON),
        "langchain": _langchain,
        "python-requests": _sdk(lambda v, k: f"python-requests/{v}", _REQUESTS, lambda v: _PYTHON),
        "python-httpx": _sdk(lambda v, k: f"python-httpx/{v}", _HTTPX, lambda v: _PYTHON),
        "curl": _sdk(lambda v, k: f"curl/{v}", _CURL_VERSIONS, lambda v: _CURL),
        "go-http": _go,
        "java-okhttp": _sdk(lambda v, k: f"okhttp/{v}", _OKHTTP, lambda v: _JAVA),
        "custom": _custom,
    }
)


# ---------------------------------------------------------------------------------------------
# browsers: fake-useragent's bundled market-share data
# ---------------------------------------------------------------------------------------------
_CHROMIUM_MAJOR: Final = re.compile(r"Chrome/(\d+)")
_FIREFOX_MAJOR: Final = re.compile(r"Firefox/(\d+)")


def _browser_tls(row: Mapping[str, object]) -> _Tls:
    """The TLS stack behind a browser UA.

    Every iOS browser is WebKit underneath (Chrome on iPhone handshakes like Safari); Edge,
    Opera, Samsung Internet and in-app Android browsers are Chromium and handshake like the
    Chrome of the same major; TLS 1.3 arrived in Chrome 70, Firefox 63 and Safari 12.1.
    """
    ua = str(row["useragent"])
    os_name = str(row.get("os") or "")
    if os_name == "iOS":
        major = int(str(row.get("os_version") or "0").split(".")[0] or 0)
        return _Tls(f"webkit-ios-{major}", "webkit", 20, 14, "h2", "13" if major >= 13 else "12")
    if str(row.get("browser")) == "Safari":
        major = int(float(str(row.get("browser_version_major_minor") or 0)))
        return _Tls(f"safari-macos-{major}", "webkit", 20, 14, "h2", "13" if major >= 13 else "12")
    if m := _FIREFOX_MAJOR.search(ua):
        major = int(m.group(1))
        return _Tls(f"firefox-{major}", "nss", 17, 15, "h2", "13" if major >= 63 else "12")
    if m := _CHROMIUM_MAJOR.search(ua):
        major = int(m.group(1))
        if major >= 70:
            return _Tls(f"chromium-{major}", "boringssl-chrome", 15, 16, "h2")
        return _Tls(f"chromium-{major}", "boringssl-chrome-legacy", 17, 13, "h2", "12")
    return _Tls("browser-other", "browser-other", 16, 12, "h2")


@dataclass(frozen=True)
class _Browsers:
    user_agents: tuple[str, ...]
    versions: tuple[str | None, ...]
    tls: tuple[_Tls, ...]
    cdf: npt.NDArray[np.float64] = field(repr=False)


def _load_browsers() -> _Browsers:
    resource = importlib.resources.files("fake_useragent").joinpath("data", "browsers.jsonl")
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise RuntimeError("fake-useragent's bundled data/browsers.jsonl is missing") from exc
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = [r for r in rows if r.get("useragent") and float(r.get("percent") or 0) > 0]
    if not rows:
        raise RuntimeError("fake-useragent's browsers.jsonl has no weighted user agents")
    weights = np.array([float(r["percent"]) for r in rows], dtype=np.float64)
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return _Browsers(
        tuple(str(r["useragent"]) for r in rows),
        tuple(None if r.get("browser_version") is None else str(r["browser_version"]) for r in rows),
        tuple(_browser_tls(r) for r in rows),
        cdf,
    )


# ---------------------------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------------------------
class ClientCatalog:
    """Draws :class:`Client` identities by family, deterministically from the caller's generator.

    Browser data (fake-useragent's bundled file) loads on first use.  ``recent`` in [0, 1] tilts
    SDK and tool versions towards recent releases (0: uniform over the last two years; 1: the
    newest about 400 times likelier than the oldest); browsers follow their market-share
    snapshot instead.
    """

    def __init__(self) -> None:
        self._browsers: _Browsers | None = None

    def sample(
        self, family: ClientFamily, n: int, rng: np.random.Generator, *, recent: float = 0.5
    ) -> list[Client]:
        """``n`` clients of ``family``."""
        _check(family, n, recent)
        return self._build(family, self._draws(family, n, rng, recent))

    def mix(self, weights: Mapping[ClientFamily, float], n: int, rng: np.random.Generator) -> list[Client]:
        """``n`` clients whose families follow ``weights`` (unnormalised), in random order."""
        families = list(weights)
        for fam in families:
            _check(fam, n, 0.5)
        w = np.array([weights[f] for f in families], dtype=np.float64)
        if len(w) == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("mix weights must be non-negative, finite and not all zero")
        which = rng.choice(len(families), size=n, p=w / w.sum())
        out: list[Client | None] = [None] * n
        for k, fam in enumerate(families):
            rows = np.flatnonzero(which == k)
            for i, client in zip(rows.tolist(), self.sample(fam, len(rows), rng), strict=True):
                out[i] = client
        return [c for c in out if c is not None]

    def spoofed(
        self, claimed: ClientFamily, actual_stack: ClientFamily, n: int, rng: np.random.Generator
    ) -> list[Client]:
        """Clients whose UA (and advertised version) is ``claimed``'s but whose TLS is ``actual_stack``'s.

        This is an attacker's harness dressed as an official SDK: the handshake still comes from
        the real runtime.  ``family`` records the real stack.
        """
        _check(claimed, n, 0.5)
        _check(actual_stack, n, 0.5)
        shown = self._draws(claimed, n, rng, 0.5)
        real = self._draws(actual_stack, n, rng, 0.5)
        return self._build(
            actual_stack, [(ua, tls, v) for (ua, _, v), (_, tls, _) in zip(shown, real, strict=True)]
        )

    def tls_fingerprints(self, family: ClientFamily) -> frozenset[str]:
        """Every TLS fingerprint ``family`` can present honestly (for consistency checks)."""
        _check(family, 0, 0.5)
        if family == "browser":
            return frozenset(t.ja4() for t in self._browser_data().tls)
        stacks: dict[ClientFamily, tuple[tuple[_Tls, ...], ...]] = {
            "openai-python": (_PYTHON[0],),
            "anthropic-python": (_PYTHON[0],),
            "litellm": (_PYTHON[0],),
            "langchain": (_PYTHON[0],),
            "python-requests": (_PYTHON[0],),
            "python-httpx": (_PYTHON[0],),
            "openai-node": (_NODE_HTTPS[0], _NODE_FETCH[0]),
            "anthropic-typescript": (_NODE_HTTPS[0], _NODE_FETCH[0]),
            "curl": (_CURL[0],),
            "go-http": (tuple(_GO.values()),),
            "java-okhttp": (_JAVA[0],),
            "custom": (
                tuple(t.without_alpn() for t in _PYTHON[0]),
                _PYTHON[0],
                _NODE_HTTPS[0],
                _NODE_FETCH[0],
                _BUN[0],
                _DENO[0],
                _JAVA[0][:3],
            ),
        }
        return frozenset(t.ja4() for group in stacks[family] for t in group)

    # ---- internals -------------------------------------------------------------------------
    def _draws(self, family: ClientFamily, n: int, rng: np.random.Generator, recent: float) -> list[_Draw]:
        if n == 0:
            return []
        if family == "browser":
            data = self._browser_data()
            rows = np.minimum(np.searchsorted(data.cdf, rng.random(n), side="right"), len(data.cdf) - 1)
            return [(data.user_agents[i], data.tls[i], data.versions[i]) for i in rows.tolist()]
        return _SAMPLERS[family](n, rng, recent)

    def _browser_data(self) -> _Browsers:
        if self._browsers is None:
            self._browsers = _load_browsers()
        return self._browsers

    @staticmethod
    def _build(family: ClientFamily, draws: list[_Draw]) -> list[Client]:
        """Clients for ``draws``; identical identities share one object (cheap at 10^6 clients)."""
        seen: dict[_Draw, Client] = {}
        out: list[Client] = []
        for draw in draws:
            client = seen.get(draw)
            if client is None:
                ua, tls, version = draw
                client = seen[draw] = Client(ua, tls.ja4(), family, version)
            out.append(client)
        return out


def _check(family: str, n: int, recent: float) -> None:
    if family not in CLIENT_FAMILIES:
        raise ValueError(f"unknown client family {family!r}; expected one of {', '.join(CLIENT_FAMILIES)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= recent <= 1.0:
        raise ValueError(f"recent must be in [0, 1], got {recent}")
