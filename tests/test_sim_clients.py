"""Client identities: realistic UAs, and TLS fingerprints that follow the stack, not the UA."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections import Counter

import numpy as np
import pytest

from distillshield.simulate.clients import CLIENT_FAMILIES, Client, ClientCatalog, ClientFamily

JA4 = re.compile(r"^t1[23]d\d{4}(h1|h2|00)_[0-9a-f]{12}_[0-9a-f]{12}$")
SEMVER = r"\d+\.\d+(\.\d+)?"
UA: dict[ClientFamily, re.Pattern[str]] = {
    "openai-python": re.compile(rf"^(Async)?OpenAI/Python {SEMVER}$"),
    "anthropic-python": re.compile(rf"^(Async)?Anthropic/Python {SEMVER}$"),
    "openai-node": re.compile(rf"^OpenAI/JS {SEMVER}$"),
    "anthropic-typescript": re.compile(rf"^Anthropic/JS {SEMVER}$"),
    "litellm": re.compile(rf"^litellm/{SEMVER}$"),
    "langchain": re.compile(rf"^(Async)?(OpenAI|Anthropic)/Python {SEMVER}$"),
    "python-requests": re.compile(rf"^python-requests/{SEMVER}$"),
    "python-httpx": re.compile(rf"^python-httpx/{SEMVER}$"),
    "curl": re.compile(rf"^curl/{SEMVER}$"),
    "go-http": re.compile(r"^Go-http-client/(1\.1|2\.0)$"),
    "java-okhttp": re.compile(rf"^okhttp/{SEMVER}$"),
    "browser": re.compile(r"^Mozilla/5\.0 \(.+"),
}
PYTHON_SDKS: tuple[ClientFamily, ...] = (
    "openai-python",
    "anthropic-python",
    "litellm",
    "langchain",
    "python-requests",
    "python-httpx",
)


@pytest.fixture(scope="module")
def catalog() -> ClientCatalog:
    return ClientCatalog()


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


@pytest.mark.parametrize("family", CLIENT_FAMILIES)
def test_user_agents_and_fingerprints_look_real(catalog: ClientCatalog, family: ClientFamily) -> None:
    clients = catalog.sample(family, 600, _rng(1))
    assert len(clients) == 600
    allowed = catalog.tls_fingerprints(family)
    for c in clients:
        assert isinstance(c, Client) and c.family == family
        assert JA4.match(c.tls_fingerprint), c
        assert c.tls_fingerprint in allowed, c
        if family in UA:
            assert UA[family].match(c.user_agent), c
        if family == "go-http":
            assert c.sdk_version is not None and re.fullmatch(r"1\.2\d\.\d+", c.sdk_version)
        elif family not in ("browser", "custom"):
            assert c.sdk_version is not None and c.user_agent.endswith(c.sdk_version)
    if family == "custom":  # hand-rolled clients never pass for an official SDK by accident
        official = [
            UA[f] for f in ("openai-python", "anthropic-python", "openai-node", "anthropic-typescript")
        ]
        assert not any(p.match(c.user_agent) for c in clients for p in official)


def test_release_histories_are_real_and_ordered(catalog: ClientCatalog) -> None:
    seen: dict[ClientFamily, set[str]] = {}
    for family in (
        "openai-python",
        "anthropic-python",
        "openai-node",
        "anthropic-typescript",
        "litellm",
        "curl",
    ):
        seen[family] = {
            c.sdk_version for c in catalog.sample(family, 4000, _rng(2), recent=0.0) if c.sdk_version
        }
    assert {"1.54.3", "1.109.1", "2.0.1"} <= seen["openai-python"]
    assert "0.39.0" in seen["anthropic-python"] and "4.73.1" in seen["openai-node"]
    assert "0.32.1" in seen["anthropic-typescript"] and "1.55.4" in seen["litellm"]
    assert "8.5.0" in seen["curl"]
    # versions that never existed (anthropic-typescript jumped from 0.41 to 0.50)
    assert not any(v.startswith("0.45.") for v in seen["anthropic-typescript"])
    # recency ordering is by real release order: the histories are increasing
    from distillshield.simulate import clients as mod

    for name in (
        "_OPENAI_PYTHON",
        "_OPENAI_NODE",
        "_ANTHROPIC_PYTHON",
        "_ANTHROPIC_TS",
        "_LITELLM",
        "_CURL_VERSIONS",
    ):
        history = getattr(mod, name)
        assert [_version_key(v) for v in history] == sorted(_version_key(v) for v in history), name
        assert len(set(history)) == len(history)


def test_recent_tilts_towards_new_releases(catalog: ClientCatalog) -> None:
    def mean_version(recent: float) -> float:
        vs = [
            _version_key(c.sdk_version or "0")
            for c in catalog.sample("openai-python", 3000, _rng(3), recent=recent)
        ]
        return float(np.mean([v[0] * 1000 + v[1] for v in vs]))

    assert mean_version(0.0) < mean_version(0.5) < mean_version(1.0)
    newest = Counter(c.sdk_version for c in catalog.sample("openai-python", 6000, _rng(4), recent=1.0))
    assert newest.most_common(1)[0][0] == "2.16.0"
    uniform = Counter(c.sdk_version for c in catalog.sample("anthropic-python", 8000, _rng(4), recent=0.0))
    assert max(uniform.values()) < 3 * min(uniform.values())  # ~uniform over ~40 releases


def test_tls_follows_the_runtime_not_the_user_agent(catalog: ClientCatalog) -> None:
    python = catalog.tls_fingerprints("openai-python")
    for fam in PYTHON_SDKS:  # every Python library on CPython handshakes alike
        assert catalog.tls_fingerprints(fam) == python
    assert not python & catalog.tls_fingerprints("go-http")
    assert not python & catalog.tls_fingerprints("openai-node")
    assert catalog.tls_fingerprints("openai-node") == catalog.tls_fingerprints("anthropic-typescript")
    # one UA, several runtimes: the fingerprint is not a function of the UA text
    clients = catalog.sample("python-requests", 3000, _rng(5))
    by_ua: dict[str, set[str]] = {}
    for c in clients:
        by_ua.setdefault(c.user_agent, set()).add(c.tls_fingerprint)
    assert max(len(v) for v in by_ua.values()) >= 3
    # openai-node 4 (node-fetch, no ALPN) and 5+ (fetch, http/1.1) on the same Node differ only in ALPN
    node = catalog.sample("openai-node", 3000, _rng(6), recent=0.5)
    v4 = {c.tls_fingerprint for c in node if (c.sdk_version or "").startswith("4.")}
    v6 = {c.tls_fingerprint for c in node if (c.sdk_version or "").startswith("6.")}
    assert all("00_" in f for f in v4) and all("h1_" in f for f in v6)
    assert {f.split("_", 1)[1] for f in v4} == {f.split("_", 1)[1] for f in v6}


def test_browsers_follow_fake_useragent_market_share(catalog: ClientCatalog) -> None:
    path = importlib.resources.files("fake_useragent").joinpath("data", "browsers.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    known = {r["useragent"] for r in rows}
    ios_share = sum(r["percent"] for r in rows if r["os"] == "iOS") / sum(r["percent"] for r in rows)
    clients = catalog.sample("browser", 20_000, _rng(7))
    assert {c.user_agent for c in clients} <= known
    observed = np.mean(["iPhone" in c.user_agent or "iPad" in c.user_agent for c in clients])
    assert abs(observed - ios_share) < 0.03
    # Chromium-based browsers of one major share Chrome's handshake; iOS Chrome is WebKit
    tls_of = {c.user_agent: c.tls_fingerprint for c in clients}
    chrome = {
        ua for ua in tls_of if re.search(r"Chrome/135\.", ua) and "Edg/" not in ua and "Mobile" not in ua
    }
    edge = {ua for ua in tls_of if re.search(r"Chrome/135\..*Edg/135", ua)}
    assert chrome and edge and {tls_of[u] for u in chrome} == {tls_of[u] for u in edge}
    crios = {tls_of[u] for u in tls_of if "CriOS/" in u and "iPhone OS 18_" in u}
    safari = {tls_of[u] for u in tls_of if "iPhone OS 18_" in u and "CriOS/" not in u and "Version/" in u}
    assert crios and crios <= safari


def test_spoofed_clients_claim_one_stack_and_handshake_as_another(catalog: ClientCatalog) -> None:
    spoof = catalog.spoofed("openai-python", "go-http", 500, _rng(8))
    go, python = catalog.tls_fingerprints("go-http"), catalog.tls_fingerprints("openai-python")
    for c in spoof:
        assert UA["openai-python"].match(c.user_agent) and c.user_agent.endswith(c.sdk_version or "?")
        assert c.tls_fingerprint in go and c.tls_fingerprint not in python
        assert c.family == "go-http"
    assert spoof == catalog.spoofed("openai-python", "go-http", 500, _rng(8))
    node_as_anthropic = catalog.spoofed("anthropic-python", "openai-node", 200, _rng(9))
    assert all(c.tls_fingerprint in catalog.tls_fingerprints("openai-node") for c in node_as_anthropic)
    honest = catalog.sample("openai-python", 500, _rng(8))
    assert all(c.tls_fingerprint in python for c in honest)


def test_mix_follows_weights(catalog: ClientCatalog) -> None:
    weights: dict[ClientFamily, float] = {"openai-python": 6, "browser": 3, "curl": 1, "go-http": 0}
    clients = catalog.mix(weights, 20_000, _rng(10))
    counts = Counter(c.family for c in clients)
    assert set(counts) == {"openai-python", "browser", "curl"}
    for fam, w in weights.items():
        assert abs(counts[fam] / 20_000 - w / 10) < 0.02
    families = [c.family for c in clients[:200]]
    assert families != sorted(families)  # interleaved, not grouped by family


def test_deterministic_per_seed(catalog: ClientCatalog) -> None:
    w: dict[ClientFamily, float] = {f: 1.0 for f in CLIENT_FAMILIES}
    assert catalog.mix(w, 300, _rng(11)) == ClientCatalog().mix(w, 300, _rng(11))
    assert catalog.mix(w, 300, _rng(11)) != catalog.mix(w, 300, _rng(12))


def test_identical_identities_share_one_object(catalog: ClientCatalog) -> None:
    clients = catalog.sample("go-http", 2000, _rng(13))
    assert len({id(c) for c in clients}) == len(set(clients)) < 100


def test_invalid_arguments(catalog: ClientCatalog) -> None:
    rng = _rng(14)
    with pytest.raises(ValueError, match="unknown client family"):
        catalog.sample("netscape", 1, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recent"):
        catalog.sample("curl", 1, rng, recent=1.5)
    with pytest.raises(ValueError, match="mix weights"):
        catalog.mix({"curl": -1.0}, 3, rng)
    with pytest.raises(ValueError, match="unknown client family"):
        catalog.spoofed("openai-python", "rust", 1, rng)  # type: ignore[arg-type]
    assert catalog.sample("curl", 0, rng) == []
