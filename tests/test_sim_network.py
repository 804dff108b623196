"""The simulator's address space: real blocks whose geoip2fast country and ASN match the kind.

What a detector will lean on is checked directly: every drawn address looks up (through
geoip2fast's own tables, and through ``GeoIP2Fast`` itself in a subprocess) to the network's
country and an ASN of the requested kind; cloud and VPN picks land in the independent
reference lists of ../shared/data/infra when they are present.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from distillshield.simulate.network import (
    ASN_NAMES,
    NET_KINDS,
    UNIVERSITY_ASN,
    AddressSpace,
    NetKind,
    Network,
)

INFRA = Path(__file__).resolve().parents[2] / "shared" / "data" / "infra"
COUNTRIES = (None, "US", "DE", "JP", "SG", "GB", "IN", "BR", "CN", "FR")


@pytest.fixture(scope="module")
def space() -> AddressSpace:
    return AddressSpace()


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _names(space: AddressSpace, kind: NetKind) -> frozenset[str]:
    return space.tor_asn_names() if kind == "tor" else ASN_NAMES[kind]


def _infra(name: str) -> Path:
    path = INFRA / name
    if not path.is_file():
        pytest.skip(f"../shared/data/infra/{name} is absent")
    return path


def _ranges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    nets = [ipaddress.ip_network(s) for s in path.read_text().split() if s and not s.startswith("#")]
    start = np.array([int(n.network_address) for n in nets if n.version == 4], dtype=np.int64)
    end = np.array([int(n.broadcast_address) for n in nets if n.version == 4], dtype=np.int64)
    order = np.argsort(start)
    return start[order], np.maximum.accumulate(end[order])


def _inside(ips: np.ndarray, ranges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    start, end = ranges
    v = np.array([int(ipaddress.IPv4Address(ip)) for ip in ips], dtype=np.int64)
    k = np.searchsorted(start, v, side="right") - 1
    return (k >= 0) & (v <= end[np.maximum(k, 0)])


# ---- lookups ------------------------------------------------------------------------------------
def test_lookup_known_addresses(space: AddressSpace) -> None:
    assert space.lookup("171.64.1.1") == ("US", "STANFORD")
    assert space.lookup("8.8.8.8") == ("US", "GOOGLE")
    assert space.lookup("10.1.2.3")[0] is None  # private range: no country, as geoip2fast says "--"
    assert space.lookup("2001:4860:4860::8888")[1] == "GOOGLE"


def _oracle(ips: list[str], data_file: str) -> list[tuple[str | None, str | None]]:
    """GeoIP2Fast's own answers, in a subprocess: it keeps its tables in module globals."""
    code = (
        "import sys, json\n"
        "from geoip2fast import GeoIP2Fast\n"
        "g = GeoIP2Fast(geoip2fast_data_file=sys.argv[1])\n"
        "print(json.dumps([[r.country_code, r.asn_name] for r in map(g.lookup, json.load(sys.stdin))]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, data_file],
        input=json.dumps(ips),
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        (None if c in ("--", "") else c, None if a in ("", "<unknown>") else a)
        for c, a in json.loads(done.stdout)
    ]


def test_lookup_reproduces_geoip2fast(space: AddressSpace) -> None:
    rng = _rng(5)
    v4 = [str(ip) for kind in NET_KINDS for ip in space.sample(kind, 150, rng)]
    v4 += [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 2000)]  # anywhere, reserved too
    v6 = [
        str(ip)
        for kind in ("cloud", "residential", "mobile", "campus")
        for ip in space.sample(kind, 60, rng, v6=True)
    ]
    v6 += ["2001:4860:4860::8888", "2a00:1450:4001:81c::200e", "fe80::1", "2c0f:fb50:4002::1"]
    assert [space.lookup(ip) for ip in v4] == _oracle(v4, "geoip2fast-asn.dat.gz")
    assert [space.lookup(ip) for ip in v6] == _oracle(v6, "geoip2fast-asn-ipv6.dat.gz")


# ---- consistency of every kind -----------------------------------------------------------------
@pytest.mark.parametrize("kind", NET_KINDS)
def test_networks_and_addresses_agree_with_geoip(space: AddressSpace, kind: NetKind) -> None:
    rng = _rng(1)
    names = _names(space, kind)
    for country in COUNTRIES:
        nets = space.networks(kind, 12, rng, country=country)
        assert len(nets) == 12
        for net in nets:
            assert net.kind == kind and net.asn_name in names
            if country is not None and country in space.countries(kind):
                assert net.country == country
            block = ipaddress.ip_network(net.cidr)  # strict: a real block boundary
            ips = space.addresses(net, 5, rng, distinct=False)
            for ip in ips:
                addr = ipaddress.ip_address(ip)
                assert addr in block and addr not in (block.network_address, block.broadcast_address)
                assert space.lookup(ip) == (net.country, net.asn_name), (net, ip)


@pytest.mark.parametrize("kind", NET_KINDS)
def test_sample_country_and_asn(space: AddressSpace, kind: NetKind) -> None:
    rng = _rng(2)
    names = _names(space, kind)
    available = set(space.countries(kind))
    for country in COUNTRIES:
        ips = space.sample(kind, 300, rng, country=country)
        assert len(ips) == 300 and ips.dtype == object
        looked = [space.lookup(ip) for ip in ips]
        assert all(asn in names for _, asn in looked)
        if country in available:
            assert all(c == country for c, _ in looked)
        if kind != "tor":  # Tor exits are few and shared; everything else is distinct
            assert len(set(ips)) == len(ips)


def test_kinds_are_what_they_claim(space: AddressSpace) -> None:
    """Spot checks with knowledge outside the catalogue."""
    rng = _rng(3)
    us_campus = {n.asn_name for n in space.networks("campus", 300, rng, country="US")}
    assert {"STANFORD", "MIT-GATEWAYS", "UCB"} <= us_campus
    assert Counter(space.lookup(ip)[1] for ip in space.sample("campus", 200, rng, country="CN")).keys() <= {
        "China Education and Research Network Center",
        "Computer Network Information Center of Chinese Academy of Sciences CNIC-CAS",
    }
    cloud = Counter(space.lookup(ip)[1] for ip in space.sample("cloud", 4000, rng))
    assert cloud["AMAZON-02"] + cloud["AMAZON-AES"] > cloud["DIGITALOCEAN-ASN"] > 0
    assert "GOOGLE-CLOUD-PLATFORM" in cloud and "MICROSOFT-CORP-MSN-AS-BLOCK" in cloud
    assert {"Chinanet", "CHINA UNICOM China169 Backbone", "China Unicom Beijing Province Network"} >= {
        space.lookup(ip)[1] for ip in space.sample("residential", 300, rng, country="CN")
    }
    assert "COMCAST-7922" in {
        space.lookup(ip)[1] for ip in space.sample("residential", 500, rng, country="US")
    }
    assert len(space.countries("cloud")) >= 30  # regional blocks of the big clouds
    assert {"US", "GB", "DE", "JP", "SG", "IN", "CN", "KR", "BR", "AU"} <= set(space.countries("residential"))
    for kind in ("residential", "mobile", "campus", "corporate", "cloud", "hosting", "vpn"):
        assert not (ASN_NAMES[kind] & {"GOOGLE", "CLOUDFLARENET", "IANA.ORG"})


def test_asn_filter(space: AddressSpace) -> None:
    rng = _rng(4)
    nets = space.networks("campus", 5, rng, country="US", asn_name="STANFORD")
    assert {n.asn_name for n in nets} == {"STANFORD"} and {n.country for n in nets} == {"US"}
    assert {space.lookup(ip)[1] for ip in space.sample("campus", 50, rng, asn_name="STANFORD")} == {
        "STANFORD"
    }
    with pytest.raises(ValueError, match="ASN name"):
        space.networks("campus", 1, rng, asn_name="NOT-A-UNIVERSITY")


def test_university_domains_map_to_their_campus_blocks(space: AddressSpace) -> None:
    tld_country = {"edu": "US", "uk": "GB", "ch": "CH", "de": "DE", "jp": "JP", "sg": "SG", "kr": "KR"}
    tld_country |= {"in": "IN", "br": "BR", "au": "AU", "cn": "CN", "hk": "HK", "tw": "TW", "ca": "CA"}
    rng = _rng(16)
    for domain, asn in UNIVERSITY_ASN.items():
        assert asn in ASN_NAMES["campus"], domain
        ips = space.sample("campus", 20, rng, asn_name=asn)
        assert {space.lookup(ip) for ip in ips} == {(tld_country[domain.rsplit(".", 1)[1]], asn)}, domain


# ---- sampling properties -----------------------------------------------------------------------
def test_deterministic_per_seed_and_independent_of_history(space: AddressSpace) -> None:
    def draw(s: AddressSpace, seed: int) -> tuple[list[Network], list[str], list[str]]:
        rng = _rng(seed)
        nets = s.networks("residential", 8, rng, country="DE")
        return nets, list(s.addresses(nets[0], 20, rng)), list(s.sample("vpn", 100, rng))

    first = draw(space, 11)
    fresh = AddressSpace()  # no pools built yet
    assert draw(fresh, 11) == first
    assert draw(space, 12) != first


def test_distinct_and_never_network_or_broadcast(space: AddressSpace) -> None:
    rng = _rng(6)
    net = Network("192.0.2.0/29", "TEST", "US", "hosting")
    hosts = {f"192.0.2.{i}" for i in range(1, 7)}
    assert set(space.addresses(net, 6, rng)) == hosts
    assert set(space.addresses(net, 200, rng, distinct=False)) == hosts
    with pytest.raises(ValueError, match="distinct"):
        space.addresses(net, 7, rng)
    big = space.networks("cloud", 1, rng, country="US")[0]
    ips = space.addresses(big, 5000, rng)
    assert len(set(ips)) == 5000
    v6 = Network("2001:db8::/64", "TEST", "US", "residential")
    ips6 = space.addresses(v6, 300, rng)
    assert len(set(ips6)) == 300 and all(
        ipaddress.ip_address(ip) in ipaddress.ip_network(v6.cidr) for ip in ips6
    )
    assert "2001:db8::" not in set(ips6)


def test_sample_spreads_over_networks(space: AddressSpace) -> None:
    ips = space.sample("residential", 2500, _rng(7), country="US")
    blocks = {ipaddress.ip_network(f"{ip}/16", strict=False) for ip in ips}
    assert len(blocks) >= 20  # about sqrt(n) networks, not one block
    assert len({space.lookup(ip)[1] for ip in ips}) >= 5  # and several ISPs


def test_networks_distinct_while_pool_lasts(space: AddressSpace) -> None:
    rng = _rng(8)
    nets = space.networks("campus", 40, rng, country="GB")
    assert len(set(nets)) == 40
    tor = space.networks("tor", 500, rng)  # more than there are: repeats, no error
    assert len(tor) == 500 and len(set(tor)) == len(space._pool("tor", False, None, None))


def test_country_fallback_is_the_worldwide_pool(space: AddressSpace) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fallback = space.sample("campus", 40, _rng(9), country="ZZ")
    assert list(fallback) == list(space.sample("campus", 40, _rng(9)))
    assert "ZZ" not in space.countries("campus")


def test_tor_exits(space: AddressSpace) -> None:
    ips = space.sample("tor", 400, _rng(10))
    assert len(set(ips)) == 400  # the snapshot holds ~700 exits
    assert len(space.sample("tor", 2000, _rng(10))) == 2000  # more than exist: shared exits repeat
    exits = {line.strip() for line in _infra("tor-exit-nodes.lst").read_text().splitlines()}
    assert set(ips) <= exits


@pytest.mark.corpus
def test_cloud_addresses_are_in_published_cloud_ranges(space: AddressSpace) -> None:
    ips = space.sample("cloud", 6000, _rng(11))
    asn = np.array([space.lookup(ip)[1] for ip in ips], dtype=object)
    lists = {
        "amazon": ("AMAZON-02", "AMAZON-AES"),
        "google": ("GOOGLE-CLOUD-PLATFORM",),
        "microsoft": ("MICROSOFT-CORP-MSN-AS-BLOCK",),
        "oracle": ("ORACLE-BMC-31898",),
        "digitalocean": ("DIGITALOCEAN-ASN",),
        "linode": ("Akamai Connected Cloud",),
    }
    hits = total = 0
    for provider, names in lists.items():
        mine = ips[np.isin(asn, names)]
        assert len(mine) > 0, provider
        inside = _inside(mine, _ranges(_infra(f"ipranges_{provider}_ipv4_merged.txt")))
        hits, total = hits + int(inside.sum()), total + len(mine)
        assert inside.mean() > 0.3, provider  # published lists lag and omit some announced blocks
    assert hits / total > 0.85


@pytest.mark.corpus
def test_vpn_and_hosting_are_in_datacenter_lists_and_homes_are_not(space: AddressSpace) -> None:
    rng = _rng(12)
    vpn_list = _ranges(_infra("x4b_vpn_ipv4.txt"))
    dc_list = _ranges(_infra("x4b_datacenter_ipv4.txt"))

    def listed(kind: NetKind) -> float:
        ips = space.sample(kind, 2000, rng)
        return float((_inside(ips, vpn_list) | _inside(ips, dc_list)).mean())

    assert listed("vpn") > 0.5
    assert listed("hosting") > 0.5
    assert listed("residential") < 0.05
    assert listed("mobile") < 0.05
    assert listed("campus") < 0.05


# ---- IPv6 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["residential", "mobile", "cloud", "campus"])
def test_ipv6(space: AddressSpace, kind: NetKind) -> None:
    ips = space.sample(kind, 200, _rng(13), v6=True, country="US")
    assert len(set(ips)) == 200
    for ip in ips:
        assert ipaddress.ip_address(ip).version == 6
        country, asn = space.lookup(ip)
        assert country == "US" and asn in ASN_NAMES[kind]
    net = space.networks(kind, 1, _rng(13), v6=True)[0]
    assert ipaddress.ip_network(net.cidr).version == 6


# ---- errors and speed ---------------------------------------------------------------------------
def test_invalid_arguments(space: AddressSpace) -> None:
    rng = _rng(14)
    with pytest.raises(ValueError, match="unknown network kind"):
        space.sample("satellite", 1, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IPv6 Tor"):
        space.sample("tor", 1, rng, v6=True)
    with pytest.raises(ValueError, match="n must be"):
        space.networks("cloud", -1, rng)
    assert len(space.sample("cloud", 0, rng)) == 0


def test_sample_is_fast_after_first_load(space: AddressSpace) -> None:
    rng = _rng(15)
    space.sample("residential", 10, rng)
    t = time.perf_counter()
    ips = space.sample("residential", 10_000, rng)
    assert time.perf_counter() - t < 0.5
    assert len(set(ips)) == 10_000
    t = time.perf_counter()
    for _ in range(200):
        space.sample("cloud", 3, rng, country="US")
    assert (time.perf_counter() - t) / 200 < 0.005  # personas call it once per account
