"""IP enrichment: geography against known addresses and the scalar reference, prefixes, list flags.

The geography must be exactly what geoip2fast says (the simulator places its personas with the
same tables), so the vectorised lookup is checked against ``AddressSpace.lookup``, which is
itself checked against ``GeoIP2Fast`` (tests/test_sim_network.py).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.enrich import CidrSet, InfraLists, IpEnricher
from distillshield.enrich.ip import (
    IP_FIELDS,
    asn_name_keys,
    normalise_asn_name,
    parse_asn_lines,
    parse_cidr_lines,
)
from distillshield.simulate.network import AddressSpace

INFRA = Path(__file__).resolve().parents[2] / "shared" / "data" / "infra"


@pytest.fixture(scope="module")
def enricher() -> IpEnricher:
    return IpEnricher()


@pytest.fixture(scope="module")
def infra_lists() -> InfraLists:
    if not INFRA.is_dir():
        pytest.skip("../shared/data/infra is absent")
    return InfraLists.from_dir(INFRA)


def _one(enricher: IpEnricher, ip: str | None) -> dict[str, object]:
    return enricher.enrich(pa.array([ip], type=pa.string())).to_pylist()[0]


# ---- known addresses -----------------------------------------------------------------------------
def test_google_dns(enricher: IpEnricher) -> None:
    assert _one(enricher, "8.8.8.8") == {
        "ip_version": 4,
        "ip_country": "US",
        "asn_name": "GOOGLE",
        "asn_network": "8.8.8.0/24",
        "ip_prefix": "8.8.8.0/24",
        "is_hosting": True,
        "is_vpn": False,
        "is_tor": False,
    }


def test_aws_address(enricher: IpEnricher) -> None:
    row = _one(enricher, "52.94.76.1")  # an AWS us-east-1 service address
    assert (row["ip_country"], row["asn_name"], row["is_hosting"]) == ("US", "AMAZON-02", True)
    assert row["asn_network"] == "52.94.72.0/21"
    assert row["ip_prefix"] == "52.94.76.0/24"


def test_ipv6(enricher: IpEnricher) -> None:
    row = _one(enricher, "2001:4860:4860::8888")
    assert row["ip_version"] == 6
    assert (row["ip_country"], row["asn_name"]) == ("US", "GOOGLE")
    assert row["asn_network"] == "2001:4860:4840::/42"
    assert row["ip_prefix"] == "2001:4860:4860::/48"


def test_residential_and_campus_are_not_flagged(enricher: IpEnricher) -> None:
    for ip, asn in (("171.64.1.1", "STANFORD"), ("73.15.20.7", "COMCAST-7922")):
        row = _one(enricher, ip)
        assert row["asn_name"] == asn
        assert (row["is_hosting"], row["is_vpn"], row["is_tor"]) == (False, False, False)


@pytest.mark.parametrize(
    "bad",
    [
        "bogus",
        "",
        "   ",
        "256.1.1.1",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4.5",
        "1.2.3.4:443",
        ":::",
        "1::2::3",
        "😀",
    ],
)
def test_invalid_addresses_give_nulls(enricher: IpEnricher, bad: str) -> None:
    assert _one(enricher, bad) == dict.fromkeys(IP_FIELDS.names)


def test_null_gives_nulls(enricher: IpEnricher) -> None:
    assert _one(enricher, None) == dict.fromkeys(IP_FIELDS.names)


def test_private_and_special_addresses(enricher: IpEnricher) -> None:
    row = _one(enricher, "10.1.2.3")
    assert (row["ip_version"], row["ip_country"], row["ip_prefix"], row["is_hosting"]) == (
        4,
        None,
        "10.1.2.0/24",
        False,
    )
    loop6 = _one(enricher, "::1")
    assert (loop6["ip_version"], loop6["ip_country"], loop6["asn_name"], loop6["ip_prefix"]) == (
        6,
        None,
        None,
        "::/48",
    )
    zone = _one(enricher, "fe80::1%eth0")  # zone ids are accepted, as ipaddress does
    assert zone["ip_prefix"] == "fe80::/48"


def test_ipv4_mapped_ipv6_is_the_ipv4_address(enricher: IpEnricher) -> None:
    assert _one(enricher, "::ffff:8.8.8.8") == _one(enricher, "8.8.8.8")
    assert _one(enricher, " 8.8.8.8 ") == _one(enricher, "8.8.8.8")  # surrounding blanks are trimmed


# ---- against the scalar reference ----------------------------------------------------------------
def test_matches_scalar_lookup_on_many_addresses(enricher: IpEnricher) -> None:
    space = AddressSpace()
    rng = np.random.default_rng(11)
    v4 = [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 5000)]
    v4 += [
        str(ip)
        for kind in ("cloud", "residential", "campus", "vpn", "tor")
        for ip in space.sample(kind, 200, rng)
    ]
    v6 = [
        str(ip) for kind in ("cloud", "residential", "mobile") for ip in space.sample(kind, 150, rng, v6=True)
    ]
    ips = v4 + v6
    got = enricher.enrich(pa.array(ips, type=pa.string()))
    country, asn = got.column("ip_country").to_pylist(), got.column("asn_name").to_pylist()
    for i, ip in enumerate(ips):
        want_country, want_asn = space.lookup(ip)
        assert (country[i], asn[i]) == (want_country, want_asn), ip
    versions = got.column("ip_version").to_pylist()
    assert versions == [4] * len(v4) + [6] * len(v6)


def test_prefixes_and_networks_contain_the_address(enricher: IpEnricher) -> None:
    rng = np.random.default_rng(3)
    space = AddressSpace()
    ips = [str(ip) for ip in space.sample("residential", 300, rng)] + [
        str(ip) for ip in space.sample("mobile", 100, rng, v6=True)
    ]
    got = enricher.enrich(ips).to_pylist()
    for ip, row in zip(ips, got, strict=True):
        addr = ipaddress.ip_address(ip)
        prefix = ipaddress.ip_network(row["ip_prefix"])
        assert addr in prefix and prefix.prefixlen == (24 if addr.version == 4 else 48)
        assert str(prefix) == row["ip_prefix"]  # canonical text
        network = ipaddress.ip_network(row["asn_network"])
        assert addr in network and str(network) == row["asn_network"]


def test_batch_equals_row_by_row_and_keeps_order(enricher: IpEnricher) -> None:
    ips = ["8.8.8.8", None, "bogus", "1.1.1.1", "8.8.8.8", "2001:4860:4860::8888", "185.220.101.1", "8.8.8.8"]
    batch = enricher.enrich(pa.array(ips, type=pa.string())).to_pylist()
    assert batch == [_one(enricher, ip) for ip in ips]
    chunked = pa.chunked_array([pa.array(ips[:3], pa.string()), pa.array(ips[3:], pa.string())])
    assert enricher.enrich(chunked).to_pylist() == batch
    assert enricher.enrich(pa.array(ips, pa.string()).dictionary_encode()).to_pylist() == batch
    assert enricher.enrich(pa.array(ips, pa.large_string())).to_pylist() == batch
    assert enricher.enrich(pa.array([], pa.string())).num_rows == 0


_SHARED = IpEnricher(InfraLists())  # empty lists: the property test needs no list files


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40), st.ip_addresses().map(str)), max_size=30))
def test_never_raises_and_keeps_length(ips: list[str | None]) -> None:
    out = _SHARED.enrich(pa.array(ips, type=pa.string()))
    assert out.num_rows == len(ips)
    assert out.schema == IP_FIELDS
    for ip, version in zip(ips, out.column("ip_version").to_pylist(), strict=True):
        if version is not None:
            assert ip is not None


# ---- list flags: shipped defaults ------------------------------------------------------------------
def test_default_lists_flag_hosting_vpn_and_tor(enricher: IpEnricher) -> None:
    assert _one(enricher, "5.9.1.1")["is_hosting"] is True  # Hetzner, by ASN name
    mullvad = _one(enricher, "193.32.126.10")
    assert (mullvad["asn_name"], mullvad["is_vpn"]) == ("31173 Services AB", True)
    tor = _one(enricher, "185.220.101.1")
    assert (tor["is_tor"], tor["is_hosting"]) == (True, False)
    assert _one(enricher, "185.220.101.254")["is_tor"] is False  # same block, not a listed exit


def test_default_lists_are_small_and_documented() -> None:
    lists = InfraLists.default()
    summary = lists.summary()
    assert 100 <= summary["hosting_ranges"] <= 1000
    assert 50 <= summary["vpn_ranges"] <= 1000
    assert summary["tor_exit_addresses"] > 1000
    assert summary["hosting_asn_names"] > 50 and summary["vpn_asn_names"] > 10
    assert all(s.startswith("distillshield:enrich/data/infra/") for s in lists.sources)


def test_shipped_asn_names_are_spelled_as_geoip2fast_spells_them() -> None:
    from distillshield.enrich._geo import load_geo_table

    known = set(load_geo_table(False).asn_names) | set(load_geo_table(True).asn_names)
    lists = InfraLists.default()
    for names in (lists.hosting_asns, lists.vpn_asns):
        assert [n for n in names.entries if n not in known] == []


def test_lists_flag_by_cidr_without_asn_match() -> None:
    lists = InfraLists.build(
        hosting_cidrs=["171.64.0.0/16"], vpn_cidrs=["2001:db8::/32"], tor_exits=["73.15.20.7"]
    )
    e = IpEnricher(lists)
    assert _one(e, "171.64.1.1")["is_hosting"] is True
    assert _one(e, "171.65.1.1")["is_hosting"] is False
    assert _one(e, "2001:db8:1::5")["is_vpn"] is True
    assert _one(e, "73.15.20.7")["is_tor"] is True
    assert _one(e, "8.8.8.8")["is_hosting"] is False  # no ASN names in these lists


# ---- list flags: the operator's files (../shared/data/infra) --------------------------------------
def test_from_dir_reads_every_shared_list(infra_lists: InfraLists) -> None:
    names = {Path(s).name for s in infra_lists.sources}
    assert {"ipranges_amazon_ipv4_merged.txt", "x4b_vpn_ipv4.txt", "x4b_datacenter_ASN.txt"} <= names
    assert {"bad-asn-list.csv", "tor-exit-nodes.lst", "x4b_vpn_ASN.txt"} <= names
    summary = infra_lists.summary()
    assert summary["tor_exit_addresses"] == 1746
    assert summary["hosting_asn_names"] > 800 and summary["hosting_ranges"] > 10_000


def test_from_dir_flags(infra_lists: InfraLists) -> None:
    e = IpEnricher(infra_lists)
    assert _one(e, "3.5.140.2")["is_hosting"] is True  # ipranges_amazon
    first_vpn = next(
        line.strip() for line in (INFRA / "x4b_vpn_ipv4.txt").read_text().splitlines() if line.strip()
    )
    inside = str(ipaddress.ip_network(first_vpn).network_address + 1)
    assert _one(e, inside)["is_vpn"] is True
    # the list writes IPv6 exits zero-padded; matching is on the address, not the text
    assert _one(e, "2001:470:1:908::9001")["is_tor"] is True
    assert _one(e, "171.64.1.1")["is_hosting"] is False
    assert _one(e, "73.15.20.7")["is_vpn"] is False


def test_merge_unions_lists(infra_lists: InfraLists) -> None:
    merged = InfraLists.default().merge(infra_lists)
    assert merged.summary()["hosting_asn_names"] >= infra_lists.summary()["hosting_asn_names"]
    assert "185.220.101.1" in merged.tor_exits and "3.5.140.2" in merged.hosting_cidrs


def test_from_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        InfraLists.from_dir(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("nothing here\n")
    with pytest.raises(FileNotFoundError, match="no recognised list files"):
        InfraLists.from_dir(tmp_path)
    (tmp_path / "hosting_cidrs_mine.txt").write_text("10.0.0.0/8\nnot-a-network\n")
    with pytest.raises(ValueError, match=r"hosting_cidrs_mine.txt:2"):
        InfraLists.from_dir(tmp_path)


# ---- list formats ---------------------------------------------------------------------------------
def test_cidr_set_merges_and_tests_membership() -> None:
    cs = parse_cidr_lines("# comment\n10.0.0.1/8\n1.2.3.4\n1.2.3.5 # next one\n2001:db8::/32 note\n\n", "t")
    assert len(cs) == 3  # 10/8, 1.2.3.4-5 merged, the IPv6 block
    assert "10.255.255.255" in cs and "11.0.0.0" not in cs
    assert "1.2.3.5" in cs and "1.2.3.6" not in cs
    assert "2001:db8:ffff::1" in cs and "2001:db9::" not in cs
    assert cs.addresses == 2**24 + 2 + 2**96
    assert len(CidrSet.of(["10.0.0.0/9", "10.128.0.0/9"])) == 1  # adjacent blocks merge
    assert len(CidrSet.empty().union(cs)) == 3


def test_asn_list_formats() -> None:
    assert parse_asn_lines(
        'ASN,Entity\n3223,"VOXILITY, RO"\n51447, "RootLayer Web Services Ltd, NL"\n', "x.csv"
    ) == [
        "VOXILITY, RO",
        "RootLayer Web Services Ltd, NL",
    ]
    assert parse_asn_lines("AS9009 # M247, GB (NordVPN)\nAS123\n# only a comment\n", "x4b_vpn_ASN.txt") == [
        "M247, GB (NordVPN)"
    ]
    assert parse_asn_lines("# names\nAMAZON-02\nHetzner Online GmbH  # note\n", "hosting_asn_names.txt") == [
        "AMAZON-02",
        "Hetzner Online GmbH",
    ]


@pytest.mark.parametrize(
    ("entry", "geo_name"),
    [
        ("VOXILITY, RO", "Voxility LLP"),
        ("M247, GB (NordVPN)", "M247 Ltd"),
        ("MICROSOFT-CORP-MSN-AS-BLOCK - Microsoft Corporation, US", "MICROSOFT-CORP-MSN-AS-BLOCK"),
        ("ST-BGP - Sharktech, US", "SHARKTECH"),
        ("Packethub (NordVPN)", "PacketHub S.A."),
        ("AS-CHOOPA - Choopa, LLC, US", "AS-CHOOPA"),
    ],
)
def test_asn_names_match_across_spellings(entry: str, geo_name: str) -> None:
    assert normalise_asn_name(geo_name) in asn_name_keys(entry)


def test_asn_names_do_not_match_loosely() -> None:
    keys = asn_name_keys("GOOGLE - Google LLC, US")
    assert normalise_asn_name("GOOGLE-FIBER") not in keys  # residential, not Google's servers
    assert normalise_asn_name("Google Fiber Inc.") not in keys
