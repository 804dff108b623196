"""Client enrichment: real User-Agent strings of SDKs, HTTP libraries, browsers and odd clients."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillshield.enrich import CLIENT_FAMILIES, ClientParser, parse_clients
from distillshield.enrich.client import CLIENT_FIELDS
from distillshield.simulate.clients import CLIENT_FAMILIES as SIM_FAMILIES
from distillshield.simulate.clients import ClientCatalog

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.3.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"
EDGE = CHROME_WIN + " Edg/131.0.2903.86"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)

# (user agent, client_family, sdk, sdk_version, client_os, is_browser)
CASES = [
    # official SDKs, as the Stainless-generated clients write them
    ("OpenAI/Python 1.54.3", "openai-python", "openai-python", "1.54.3", None, False),
    ("AsyncOpenAI/Python 2.8.1", "openai-python", "openai-python-async", "2.8.1", None, False),
    ("OpenAI/v1 PythonBindings/0.28.1", "openai-python", "openai-python", "0.28.1", None, False),
    ("OpenAI/JS 4.52.7", "openai-node", "openai-node", "4.52.7", None, False),
    ("OpenAI/NodeJS/3.3.0", "openai-node", "openai-node", "3.3.0", None, False),
    ("Anthropic/Python 0.39.0", "anthropic-python", "anthropic-python", "0.39.0", None, False),
    ("AsyncAnthropic/Python 0.79.0", "anthropic-python", "anthropic-python-async", "0.79.0", None, False),
    ("Anthropic/JS 0.32.1", "anthropic-typescript", "anthropic-typescript", "0.32.1", None, False),
    ("OpenAI/JS 4.0.0-beta.8", "openai-node", "openai-node", "4.0.0-beta.8", None, False),
    (
        "OpenAI/Python 1.54.3 (x-stainless-os: Linux; x-stainless-arch: x64)",
        "openai-python",
        "openai-python",
        "1.54.3",
        "Linux",
        False,
    ),
    ("litellm/1.63.0", "litellm", "litellm", "1.63.0", None, False),
    ("langchain-openai/0.1.8 OpenAI/Python 1.30.1", "langchain", "langchain-openai", "0.1.8", None, False),
    # other Stainless SDKs: named, but not one of the listed families
    ("Groq/Python 0.9.0", "custom", "groq-python", "0.9.0", None, False),
    ("OpenAI/Go 1.1.0", "custom", "openai-go", "1.1.0", None, False),
    # HTTP libraries and tools
    ("python-requests/2.32.3", "python-requests", "requests", "2.32.3", None, False),
    ("python-httpx/0.27.0", "python-httpx", "httpx", "0.27.0", None, False),
    ("curl/8.4.0", "curl", "curl", "8.4.0", None, False),
    ("Go-http-client/2.0", "go-http", "go-http-client", None, None, False),  # "2.0" is HTTP, not Go
    ("Go-http-client/1.1", "go-http", "go-http-client", None, None, False),
    ("okhttp/4.12.0", "java-okhttp", "okhttp", "4.12.0", None, False),
    ("Python/3.11 aiohttp/3.9.5", "custom", "aiohttp", "3.9.5", None, False),
    ("axios/1.7.9", "custom", "axios", "1.7.9", None, False),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "custom", "node-fetch", "1.0", None, False),
    ("node", "custom", "node", None, None, False),  # undici's fetch
    ("PostmanRuntime/7.36.0", "custom", "postman", "7.36.0", None, False),
    ("Apache-HttpClient/4.5.14 (Java/17.0.12)", "custom", "apache-httpclient", "4.5.14", None, False),
    ("Python-urllib/3.11", "custom", "urllib", "3.11", None, False),
    ("Bun/1.1.34", "custom", "bun", "1.1.34", None, False),
    ("Deno/1.46.3", "custom", "deno", "1.46.3", None, False),
    ("Wget/1.21.4", "custom", "wget", "1.21.4", None, False),
    ("llm-client/1.2.3", "custom", "llm-client", "1.2.3", None, False),
    # browsers (ua-parser)
    (CHROME_WIN, "browser", "chrome", "131.0.0.0", "Windows", True),
    (SAFARI_IOS, "browser", "mobile-safari", "18.3.1", "iOS", True),
    (FIREFOX_MAC, "browser", "firefox", "133.0", "Mac OS X", True),
    (EDGE, "browser", "edge", "131.0.2903.86", "Windows", True),
    (CHROME_ANDROID, "browser", "chrome-mobile", "131.0.0.0", "Android", True),
    # automation dressed as a browser is not a browser
    (HEADLESS, "custom", "headless-chrome", "120.0.0", "Linux", False),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "custom",
        "googlebot",
        "2.1",
        None,
        False,
    ),
    ("Mozilla/5.0", "custom", "mozilla", "5.0", None, False),
    # empty and garbage
    ("", "other", None, None, None, False),
    ("   ", "other", None, None, None, False),
    ("-", "other", None, None, None, False),
    ("null", "other", None, None, None, False),
    ("???", "other", None, None, None, False),
    ("12345", "other", None, None, None, False),
]


@pytest.fixture(scope="module")
def parser() -> ClientParser:
    return ClientParser()


@pytest.mark.parametrize(("ua", "family", "sdk", "version", "os_", "browser"), CASES)
def test_user_agents(
    parser: ClientParser,
    ua: str,
    family: str,
    sdk: str | None,
    version: str | None,
    os_: str | None,
    browser: bool,
) -> None:
    row = parse_clients(pa.array([ua]), parser=parser).to_pylist()[0]
    assert row == {
        "client_family": family,
        "sdk": sdk,
        "sdk_version": version,
        "client_os": os_,
        "is_browser": browser,
    }
    assert family in CLIENT_FAMILIES


def test_null_user_agent_gives_nulls(parser: ClientParser) -> None:
    assert parse_clients(pa.array([None], pa.string()), parser=parser).to_pylist()[0] == dict.fromkeys(
        CLIENT_FIELDS.names
    )


def test_batch_keeps_order_and_length(parser: ClientParser) -> None:
    uas = [case[0] for case in CASES] * 3 + [None]
    out = parser.parse(pa.chunked_array([pa.array(uas[:10], pa.string()), pa.array(uas[10:], pa.string())]))
    assert out.schema == CLIENT_FIELDS
    assert out.num_rows == len(uas)
    assert out.column("client_family").to_pylist()[: len(CASES)] == [case[1] for case in CASES]
    assert parser.parse(pa.array(uas, pa.string()).dictionary_encode()).equals(out)
    assert parse_clients(uas).equals(out)  # plain Python list, fresh parser


def test_simulated_families_are_recognised(parser: ClientParser) -> None:
    """Every honest client the simulator emits is classified as the family it really is."""
    catalog = ClientCatalog()
    rng = np.random.default_rng(7)
    for fam in SIM_FAMILIES:
        clients = catalog.sample(fam, 60, rng)
        got = parser.parse(pa.array([c.user_agent for c in clients])).to_pylist()
        for client, row in zip(clients, got, strict=True):
            if fam == "langchain":  # it calls the vendor SDKs, whose UA it keeps, as in reality
                assert row["client_family"] in {"openai-python", "anthropic-python"}
            else:
                assert row["client_family"] == fam, client.user_agent
            if fam in {
                "openai-python",
                "anthropic-python",
                "openai-node",
                "anthropic-typescript",
                "litellm",
                "curl",
            }:
                assert row["sdk_version"] == client.sdk_version
            assert row["is_browser"] == (fam == "browser")


def test_parser_recognises_every_client_family_the_simulator_emits() -> None:
    """Detector and simulator keep separate lists on purpose; this keeps them from drifting.

    LangChain sends the vendor SDK's own user agent, so it can only be seen as that SDK.
    """
    import numpy as np

    from distillshield.simulate.clients import CLIENT_FAMILIES, ClientCatalog

    catalog = ClientCatalog()
    rng = np.random.default_rng(0)
    for family in CLIENT_FAMILIES:
        agents = [c.user_agent for c in catalog.sample(family, 20, rng)]
        got = set(parse_clients(pa.array(agents)).column("client_family").to_pylist())
        expected = {"openai-python", "anthropic-python"} if family == "langchain" else {family}
        assert got <= expected and got, (family, got)
