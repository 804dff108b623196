"""Client enrichment: which software sent a request, from its User-Agent.

Why: a distillation harness is written once and run from hundreds of accounts, so a rare
client identity shared across accounts links them; and the *kind* of client matters (a
"student" whose traffic comes from ``Go-http-client`` on a VPS is not using a notebook).  The
UA is client-controlled, so it is evidence, not proof: it is meant to be compared with the TLS
fingerprint (a harness dressed as ``OpenAI/Python`` still handshakes like Go).

Official SDKs and the common HTTP libraries write fixed, documented UA formats, matched here by
regular expressions; browsers, operating systems and the long tail of other libraries are left
to ``ua-parser`` (the maintained uap-core rules).  Each distinct UA of a batch is parsed once,
and a :class:`ClientParser` keeps the answers for the next batch.

``client_family`` is a closed vocabulary (:data:`CLIENT_FAMILIES`); ``sdk`` and
``sdk_version`` carry the finer identity (``openai-python-async`` 1.54.3, ``axios`` 1.7.9,
``chrome`` 131.0.0).  ``custom`` means "names some other client"; ``other`` means empty, a
placeholder such as ``-``, or nothing recognisable.  A null UA gives nulls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

#: Values of ``client_family``.
CLIENT_FAMILIES: Final[tuple[str, ...]] = (
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
    "other",
)

#: Columns :func:`parse_clients` returns, in order (a subset of ``EXCHANGE_ENRICHMENT``).
CLIENT_FIELDS: Final = pa.schema(
    [
        pa.field("client_family", pa.string()),
        pa.field("sdk", pa.string()),
        pa.field("sdk_version", pa.string()),
        pa.field("client_os", pa.string()),
        pa.field("is_browser", pa.bool_()),
    ]
)

_VERSION: Final = r"v?(\d+(?:\.\d+)*(?:[-+.]?[0-9A-Za-z]+(?:\.\d+)?)*)"


@dataclass(frozen=True)
class ClientInfo:
    """What one User-Agent says about the client."""

    client_family: str | None
    sdk: str | None = None
    sdk_version: str | None = None
    client_os: str | None = None
    is_browser: bool | None = False


_NULL_INFO: Final = ClientInfo(None, None, None, None, None)

# ---- rules: (pattern, family, sdk or a function of the match) -- first match wins ---------------
# LangChain and LiteLLM come first: they wrap the vendor SDKs and may append their own token.
_Rule = tuple[re.Pattern[str], str, Callable[[re.Match[str]], str]]


def _fixed(name: str) -> Callable[[re.Match[str]], str]:
    return lambda m: name


def _python_sdk(vendor: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{vendor}-python-async" if m.group(1) else f"{vendor}-python"


_RULES: Final[tuple[_Rule, ...]] = (
    (
        re.compile(rf"\b(langchain(?:[-_][a-z]+)*)(?:js)?(?:/{_VERSION})?", re.I),
        "langchain",
        lambda m: m.group(1).lower().replace("_", "-"),
    ),
    (re.compile(rf"\blitellm/{_VERSION}", re.I), "litellm", _fixed("litellm")),
    # Stainless-generated SDKs write "<ClientClass>/<Language> <version>"
    (re.compile(rf"\b(Async)?OpenAI/Python {_VERSION}"), "openai-python", _python_sdk("openai")),
    (re.compile(rf"\bOpenAI/v1 ()PythonBindings/{_VERSION}"), "openai-python", _fixed("openai-python")),
    (re.compile(rf"\bOpenAI/(?:JS|NodeJS)[ /]{_VERSION}"), "openai-node", _fixed("openai-node")),
    (re.compile(rf"\b(Async)?Anthropic/Python {_VERSION}"), "anthropic-python", _python_sdk("anthropic")),
    (
        re.compile(rf"\bAnthropic/(?:JS|TypeScript)[ /]{_VERSION}"),
        "anthropic-typescript",
        _fixed("anthropic-typescript"),
    ),
    (re.compile(rf"^python-requests/{_VERSION}", re.I), "python-requests", _fixed("requests")),
    (re.compile(rf"^python-httpx/{_VERSION}", re.I), "python-httpx", _fixed("httpx")),
    (re.compile(rf"^curl/{_VERSION}", re.I), "curl", _fixed("curl")),
    (re.compile(r"^Go-http-client/\d(?:\.\d)?()"), "go-http", _fixed("go-http-client")),
    (re.compile(rf"^okhttp/{_VERSION}", re.I), "java-okhttp", _fixed("okhttp")),
)
_STAINLESS_OTHER: Final = re.compile(
    rf"^(?:Async)?([A-Z][A-Za-z0-9]*)/(Python|JS|Go|Java|Kotlin|Ruby|PHP) {_VERSION}"
)
_STAINLESS_OS: Final = re.compile(r"x-stainless-os[=:]\s*([A-Za-z][\w .-]*?)\s*(?:[;,)]|$)", re.I)
_PRODUCT: Final = re.compile(rf"^([A-Za-z][\w.+-]*?)(?:/{_VERSION})?(?:[\s;(]|$)")
_PLACEHOLDERS: Final = frozenset({"-", "null", "none", "nil", "unknown", "undefined", "n/a", "na", "empty"})
#: Friendlier names for ua-parser's families of non-browser clients.
_UA_ALIASES: Final = {
    "python aiohttp": "aiohttp",
    "python requests": "requests",
    "python-urllib": "urllib",
    "postmanruntime": "postman",
    "headlesschrome": "headless-chrome",
}
#: ua-parser families that are automation, not a person's browser, even with a Mozilla UA.
_AUTOMATION: Final = frozenset({"headlesschrome", "phantomjs", "electron"})


def _version_of(m: re.Match[str]) -> str | None:
    groups = [g for g in m.groups() if g]
    last = groups[-1] if groups else None
    return last if last and last[0].isdigit() else None


def _ua_version(obj: Any) -> str | None:
    parts = [obj.major, obj.minor, obj.patch, getattr(obj, "patch_minor", None)]
    out = []
    for p in parts:
        if not p:
            break
        out.append(str(p))
    return ".".join(out) or None


class ClientParser:
    """Parses User-Agents; holds a ``ua-parser`` instance and a bounded cache of answers.

    Keep one per run: building the ``ua-parser`` matchers takes ~0.3 s.
    """

    def __init__(self, *, cache_size: int = 200_000) -> None:
        self._cache: dict[str, ClientInfo] = {}
        self._cache_size = cache_size
        self._ua: Any = None

    def parse(self, user_agents: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Table:
        """One row per input User-Agent with the columns of :data:`CLIENT_FIELDS`."""
        arr = user_agents
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        elif not isinstance(arr, pa.Array):
            arr = pa.array(list(arr), type=pa.string())
        if not pa.types.is_dictionary(arr.type):
            if not pa.types.is_string(arr.type):
                arr = arr.cast(pa.string())
            arr = pc.dictionary_encode(arr)
        uniques = arr.dictionary.cast(pa.string()).to_pylist()
        infos = [self.classify(u) for u in uniques]
        facts = pa.Table.from_pylist(
            [
                {
                    "client_family": i.client_family,
                    "sdk": i.sdk,
                    "sdk_version": i.sdk_version,
                    "client_os": i.client_os,
                    "is_browser": i.is_browser,
                }
                for i in infos
            ],
            schema=CLIENT_FIELDS,
        )
        return facts.take(arr.indices)

    def classify(self, user_agent: str | None) -> ClientInfo:
        """What one User-Agent says (cached)."""
        if user_agent is None:
            return _NULL_INFO
        info = self._cache.get(user_agent)
        if info is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            info = self._cache[user_agent] = self._classify(user_agent)
        return info

    # ---- internals -------------------------------------------------------------------------
    def _parser(self) -> Any:
        if self._ua is None:
            import ua_parser

            resolver = getattr(ua_parser, "BestAvailableResolver", ua_parser.BasicResolver)
            matchers = (
                ua_parser.load_lazy_builtins()
                if resolver is not ua_parser.BasicResolver
                else ua_parser.load_builtins()
            )
            self._ua = ua_parser.Parser(resolver(matchers))
        return self._ua

    def _classify(self, raw: str) -> ClientInfo:
        ua = raw.strip()
        if not ua or ua.lower() in _PLACEHOLDERS or not re.search(r"[A-Za-z]{2}", ua):
            return ClientInfo("other")
        os_name = self._os(ua)
        for pattern, family, sdk in _RULES:
            m = pattern.search(ua)
            if m:
                return ClientInfo(family, sdk(m), _version_of(m), os_name)
        m = _STAINLESS_OTHER.match(ua)
        if m:  # another vendor's Stainless SDK, or OpenAI's Go / Java / Ruby SDKs
            return ClientInfo("custom", f"{m.group(1).lower()}-{m.group(2).lower()}", m.group(3), os_name)
        result = self._parser().parse(ua)
        agent = result.user_agent
        ua_family: str | None = agent.family if agent is not None else None
        if ua_family and ua_family != "Other":
            key = ua_family.lower()
            spider = result.device is not None and result.device.family == "Spider"
            if ua.startswith("Mozilla/") and not spider and key not in _AUTOMATION:
                return ClientInfo("browser", key.replace(" ", "-"), _ua_version(agent), os_name, True)
            return ClientInfo(
                "custom", _UA_ALIASES.get(key, key.replace(" ", "-")), _ua_version(agent), os_name
            )
        m = _PRODUCT.match(ua)
        if m:
            return ClientInfo("custom", m.group(1).lower(), m.group(2), os_name)
        return ClientInfo("other", None, None, os_name)

    def _os(self, ua: str) -> str | None:
        m = _STAINLESS_OS.search(ua)
        if m:
            return m.group(1)
        os_ = self._parser().parse_os(ua)
        return None if os_ is None or os_.family == "Other" else str(os_.family)


def parse_clients(
    user_agents: pa.Array | pa.ChunkedArray | Sequence[str | None], *, parser: ClientParser | None = None
) -> pa.Table:
    """Client facts for each User-Agent (see the module docstring).

    Pass a :class:`ClientParser` to reuse across batches; without one a fresh parser is built.
    """
    return (parser or ClientParser()).parse(user_agents)
