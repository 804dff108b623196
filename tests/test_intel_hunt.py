"""Intelligence import and retro-hunt: hostile input, matching rules, sightings, atomic output."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillshield.detect import scan
from distillshield.errors import DistillShieldError
from distillshield.intel import (
    IndicatorSet,
    IntelError,
    IntelIndicator,
    export_stix,
    hunt,
    key_id,
    keyed_hash,
    load_indicators,
    sightings_bundle,
    validate_bundle,
)
from distillshield.schema import EXCHANGES, read_table

KEY = b"test-community-key-0123456789abcdef"
T0 = "2026-02-01T00:00:00.000Z"
T1 = "2026-03-01T00:00:00.000Z"
IDENTITY = "identity--0a5c1f4e-7d2b-4c1a-9e3f-1b2c3d4e5f60"
CAMPAIGN = "campaign--1b6d2a5f-8e3c-4d2b-8f4a-2c3d4e5f6a71"


def _indicator(n: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--2c7e3b6a-9f4d-4e3c-9a5b-{n:012d}",
        "created": T0,
        "modified": T0,
        "created_by_ref": IDENTITY,
        "name": f"indicator {n}",
        "description": "test",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": T0,
        **extra,
    }


def _bundle(*objects: dict[str, Any], link: bool = True) -> dict[str, Any]:
    """A small valid bundle: peer identity, one campaign, the objects, each indicator -> campaign."""
    base: list[dict[str, Any]] = [
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": IDENTITY,
            "created": T0,
            "modified": T0,
            "name": "peer-lab",
            "identity_class": "organization",
        },
        {
            "type": "campaign",
            "spec_version": "2.1",
            "id": CAMPAIGN,
            "created": T0,
            "modified": T0,
            "created_by_ref": IDENTITY,
            "name": "peer-campaign-1",
            "description": "test",
        },
    ]
    rels = [
        {
            "type": "relationship",
            "spec_version": "2.1",
            "id": f"relationship--3d8f4c7b-0a5e-4f4d-8b6c-{i:012d}",
            "created": T0,
            "modified": T0,
            "relationship_type": "indicates",
            "source_ref": o["id"],
            "target_ref": CAMPAIGN,
        }
        for i, o in enumerate(objects)
        if link and o.get("type") == "indicator"
    ]
    return {
        "type": "bundle",
        "id": "bundle--4e9a5d8c-1b6f-4a5e-9c7d-3e4f5a6b7c80",
        "objects": [*base, *objects, *rels],
    }


# --- hostile and malformed input ------------------------------------------------------------


def test_good_small_bundle_loads() -> None:
    got = load_indicators(
        [
            _bundle(
                _indicator(1, "[ipv4-addr:value = '198.51.100.7'] OR [ipv4-addr:value = '203.0.113.0/24']")
            )
        ],
        community_key=None,
    )
    assert got.rejected == [] and got.skipped == []
    assert {(i.kind, i.value, i.campaign, i.source) for i in got.indicators} == {
        ("ipv4", "198.51.100.7", "peer-campaign-1", "peer-lab"),
        ("cidr", "203.0.113.0/24", "peer-campaign-1", "peer-lab"),
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2, 3]", "neither a STIX 2.1 bundle nor a MISP event"),
        (b'{"type": "report"}', "neither a STIX 2.1 bundle nor a MISP event"),
        (b'{"type": "bundle", "id": "bundle--x", "objects": {"a": 1}}', "'objects' is not a list"),
        (b'{"type": "bundle", "id": "bundle--x", "objects": [1]}', "is not a STIX object"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_unreadable_sources_are_rejected(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "peer.json"
    path.write_bytes(content)
    got = load_indicators([path], community_key=KEY)
    assert len(got.indicators) == 0 and len(got.rejected) == 1
    assert reason in got.rejected[0] and str(path) in got.rejected[0]


def test_missing_file_and_unserialisable_dict_are_rejected(tmp_path: Path) -> None:
    got = load_indicators(
        [tmp_path / "absent.json", {"type": "bundle", "objects": [object()]}], community_key=KEY
    )
    assert len(got.rejected) == 2 and "cannot read" in got.rejected[0] and "serialisable" in got.rejected[1]


def test_size_and_count_limits(tmp_path: Path) -> None:
    bundle = _bundle(*[_indicator(i, f"[ipv4-addr:value = '198.51.100.{i}']") for i in range(1, 30)])
    path = tmp_path / "big.json"
    path.write_text(json.dumps(bundle))
    too_big = load_indicators([path], community_key=KEY, max_bytes=1_000)
    assert too_big.rejected and "over the limit" in too_big.rejected[0] and len(too_big.indicators) == 0
    too_many = load_indicators([bundle], community_key=KEY, max_objects=10)
    assert too_many.rejected and "objects, over the limit of 10" in too_many.rejected[0]
    long = _bundle(
        _indicator(1, "[ipv4-addr:value = '198.51.100.1']" + " OR [ipv4-addr:value = '1.2.3.4']" * 3000)
    )
    assert "pattern of" in load_indicators([long], community_key=KEY).rejected[0]


def test_invalid_stix_and_unparsable_patterns_reject_the_whole_bundle() -> None:
    good = _indicator(1, "[ipv4-addr:value = '198.51.100.7']")
    broken = _indicator(2, "[ipv4-addr:value = '198.51.100.8'")  # missing bracket
    got = load_indicators([_bundle(good, broken)], community_key=KEY)
    assert len(got.indicators) == 0  # all or nothing: the good indicator is not taken either
    assert len(got.rejected) == 1 and "invalid STIX" in got.rejected[0] and "Pattern" in got.rejected[0]
    no_pattern = {k: v for k, v in good.items() if k != "pattern"}
    assert "invalid STIX" in load_indicators([_bundle(no_pattern)], community_key=KEY).rejected[0]
    bad_time = dict(good, valid_from="yesterday")
    assert "invalid STIX" in load_indicators([_bundle(bad_time)], community_key=KEY).rejected[0]
    # a rejected source does not stop the next one
    both = load_indicators([_bundle(broken), _bundle(good)], community_key=KEY)
    assert len(both.rejected) == 1 and len(both.indicators) == 1


def test_unknown_expired_revoked_and_unsupported_objects_are_skipped() -> None:
    objects = [
        _indicator(1, "[ipv4-addr:value = '198.51.100.7']"),
        {
            "type": "x-weird-thing",
            "spec_version": "2.1",
            "id": "x-weird-thing--5fab6e9d-2c7a-4b6f-8d8e-4f5a6b7c8d91",
            "created": T0,
            "modified": T0,
        },
        _indicator(2, "[ipv4-addr:value = '198.51.100.9']", valid_until="2026-02-02T00:00:00.000Z"),
        _indicator(3, "[ipv4-addr:value = '198.51.100.10']", revoked=True),
        _indicator(4, "[autonomous-system:number = 64500]"),
        _indicator(5, "[ipv4-addr:value = '0.0.0.0/0']"),
        _indicator(6, "[ipv4-addr:value = '198.51.100.11'] REPEATS 3 TIMES"),
        _indicator(7, "[file:name = 'a.exe'] OR [ipv4-addr:value = '198.51.100.12']"),
        _indicator(8, "[ipv4-addr:value NOT = '198.51.100.13']"),
        _indicator(9, "[ipv4-addr:value = 'nonsense']"),
        _indicator(10, "title: x", pattern_type="sigma"),
    ]
    got = load_indicators([_bundle(*objects)], community_key=KEY, as_of="2026-02-10T00:00:00Z")
    assert got.rejected == []
    assert sorted(i.value for i in got.indicators) == ["198.51.100.12", "198.51.100.7"]
    text = "\n".join(got.skipped)
    for reason in (
        "unknown object type 'x-weird-thing'",
        "expired",
        "revoked",
        "AS numbers",
        "prefix broader than /16",
        "qualifiers",
        "object path file:name",
        "negated",
        "not an IP address",
        "pattern type 'sigma'",
    ):
        assert reason in text, reason
    # without as_of, age is no reason to skip: a retro-hunt looks at past traffic
    assert "198.51.100.9" in {
        i.value for i in load_indicators([_bundle(*objects)], community_key=KEY).indicators
    }
    # a flood of unknown objects gives one message per reason, not one per object
    flood = [dict(objects[1], id=f"x-weird-thing--6abc7f0e-3d8b-4c7a-9e9f-{i:012d}") for i in range(50)]
    assert len(load_indicators([_bundle(*flood)], community_key=KEY).skipped) == 1


def test_keyed_hashes_need_the_same_community_key() -> None:
    def keyed(n: int, kid: str, value: str) -> dict[str, Any]:
        t = "x-distillshield-keyed-hash"
        return _indicator(
            n, f"[{t}:kind = 'payment' AND {t}:key_id = '{kid}' AND {t}:hmac_sha256 = '{value}']"
        )

    ours = keyed(1, key_id(KEY), keyed_hash(KEY, "payment", "abc"))
    other_key = b"another-key-0123456789abcdef"
    theirs = keyed(2, key_id(other_key), keyed_hash(other_key, "payment", "def"))
    got = load_indicators([_bundle(ours, theirs)], community_key=KEY)
    assert [i.value for i in got.indicators] == [keyed_hash(KEY, "payment", "abc")]
    assert any("keyed with community key" in s for s in got.skipped)
    with pytest.raises(IntelError):
        load_indicators([], community_key=b"short")


def test_misp_garbage_is_rejected_and_misp_attributes_load() -> None:
    bad = load_indicators([{"Event": {"info": "x", "Attribute": "nope"}}], community_key=KEY)
    assert bad.rejected and "not lists" in bad.rejected[0]
    event = {
        "Event": {
            "info": "peer event",
            "Tag": [{"name": 'distillshield:producer="peer-lab"'}],
            "Attribute": [
                {
                    "type": "ip-src",
                    "value": "198.51.100.0/24",
                    "uuid": "7bcd8a1f-4e9c-4d8b-8fa0-5a6b7c8d9ea2",
                },
                {
                    "type": "user-agent",
                    "value": "EvilBot/1.0",
                    "uuid": "8cde9b2a-5fad-4e9c-9ab1-6b7c8d9eafb3",
                },
                {"type": "AS", "value": "64500", "uuid": "9def0c3b-6abe-4fad-8bc2-7c8d9eafb0c4"},
                {
                    "type": "md5",
                    "value": "d41d8cd98f00b204e9800998ecf8427e",
                    "uuid": "0ef01d4c-7bcf-4abe-9cd3-8d9eafb0c1d5",
                },
            ],
        }
    }
    got = load_indicators([event], community_key=KEY)
    assert got.rejected == []
    assert {(i.kind, i.value, i.source, i.campaign) for i in got.indicators} == {
        ("cidr", "198.51.100.0/24", "peer-lab", "peer event"),
        ("user_agent", "EvilBot/1.0", "peer-lab", "peer event"),
    }
    assert any("AS numbers" in s for s in got.skipped) and any("'md5' not matched" in s for s in got.skipped)


def test_indicator_set_is_immutable() -> None:
    s = IndicatorSet((IntelIndicator("ipv4", "1.2.3.4"), IntelIndicator("ipv4", "1.2.3.4")))
    assert len(s) == 1 and s.values("ipv4") == frozenset({"1.2.3.4"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.items = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.by_kind["ipv4"] = ()  # type: ignore[index]
    with pytest.raises(IntelError, match="unknown indicator kind"):
        IndicatorSet((IntelIndicator("phone", "1"),))


# --- the hunt on a scanned dataset -----------------------------------------------------------


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hunt-data") / "data"
    shutil.copytree(small_dataset, out)
    return out


@pytest.fixture(scope="module")
def det(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hunt-det") / "det"
    scan(data, out)
    return out


@pytest.fixture(scope="module")
def hunted(det: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    bundle = export_stix(det, data=data, community_key=KEY, validate=False)
    imported = load_indicators([bundle], community_key=KEY)
    assert imported.rejected == []
    out = tmp_path_factory.mktemp("hunt-out") / "out"
    return hunt(data, imported.indicators, out, community_key=KEY)


def test_hunt_finds_the_campaigns_and_no_legitimate_account(hunted: Any, det: Path, data: Path) -> None:
    acc = pq.read_table(det / "accounts.parquet", columns=["account_id", "campaign_id"])
    members = set(acc.filter(pc.is_valid(acc.column("campaign_id"))).column("account_id").to_pylist())
    found = set(hunted.evidence.column("account_id").to_pylist())
    assert members and members <= found
    labels = pq.read_table(data / "labels" / "accounts.parquet", columns=["account_id", "persona"])
    persona = dict(zip(*(labels.column(c).to_pylist() for c in labels.column_names), strict=True))
    assert not [a for a in found if persona[a].startswith("legit")]
    assert {c["campaign"] for c in hunted.campaigns} == {
        c["id"] for c in json.loads((det / "campaigns.json").read_text())
    }
    kinds = set(hunted.sightings.column("kind").to_pylist())
    assert {"cidr", "template_id", "template_minhash", "payment_hash", "user_agent"} <= kinds
    ev = hunted.evidence.to_pylist()
    assert all(0 < r["intel_confidence"] <= 1 and r["intel_indicators"] >= 1 for r in ev)


def test_hunt_writes_its_files(hunted: Any) -> None:
    out: Path = hunted.out_dir
    assert {p.name for p in out.iterdir()} == {
        "sightings.parquet",
        "sightings.json",
        "intel_evidence.parquet",
    }
    assert pq.read_table(out / "sightings.parquet").num_rows == hunted.sightings.num_rows
    doc = json.loads((out / "sightings.json").read_text())
    assert doc["summary"]["accounts_matched"] == hunted.evidence.num_rows == len(doc["accounts"])
    assert {"campaigns", "indicators"} <= set(doc)


def test_sightings_bundle_validates_and_reveals_only_counts(hunted: Any) -> None:
    bundle = sightings_bundle(hunted, producer="lab-b")
    assert validate_bundle(bundle) == []
    sightings = [o for o in bundle["objects"] if o["type"] == "sighting"]
    assert len(sightings) == len(hunted.indicators)
    assert {s["sighting_of_ref"] for s in sightings} == {i["ref"] for i in hunted.indicators}
    text = json.dumps(bundle)
    assert not any(a in text for a in hunted.evidence.column("account_id").to_pylist()[:50])
    assert json.dumps(sightings_bundle(hunted, producer="lab-b"), sort_keys=True) == json.dumps(
        bundle, sort_keys=True
    )


def test_matching_rules(data: Path, tmp_path: Path) -> None:
    ex = read_table(data, EXCHANGES, columns=["account_id", "ip", "user_agent", "tls_fingerprint"])
    row = ex.slice(0, 1).to_pylist()[0]
    ip, ua, tls = row["ip"], row["user_agent"], row["tls_fingerprint"]
    users_of_prefix = {
        r["account_id"] for r in ex.to_pylist() if r["ip"].rsplit(".", 1)[0] == ip.rsplit(".", 1)[0]
    }
    prefix = ip.rsplit(".", 1)[0] + ".0/24"
    inds = IndicatorSet(
        (
            IntelIndicator(
                "cidr", prefix, campaign="p", ref="indicator--5a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"
            ),
            IntelIndicator("user_agent", ua, campaign="q", tls="no-such-tls"),
        )
    )
    # one indicator alone is not corroboration: matched accounts are counted, not reported
    alone = hunt(data, inds, tmp_path / "alone", community_key=None)
    assert alone.sightings.num_rows == 0 and alone.evidence.num_rows == 0
    assert alone.summary["accounts_not_corroborated"] == len(users_of_prefix)
    got = hunt(data, inds, tmp_path / "a", community_key=None, min_indicators=1)
    assert set(got.evidence.column("account_id").to_pylist()) == users_of_prefix
    assert set(got.sightings.column("kind").to_pylist()) == {"cidr"}  # the UA needs its TLS too
    # an indicator expired before all traffic matches no exchange
    old = IndicatorSet((dataclasses.replace(inds.items[0], valid_until=_ts("2020-01-01T00:00:00Z")),))
    assert hunt(data, old, tmp_path / "b", community_key=None, min_indicators=1).sightings.num_rows == 0
    # AS names compare case-insensitively
    enr = pq.read_table(next((data / "derived" / "enrichment").glob("*.parquet")), columns=["asn_name"])
    asn = next(a for a in enr.column("asn_name").to_pylist() if a)
    asn_hit = hunt(
        data,
        IndicatorSet((IntelIndicator("asn", asn.upper().casefold()),)),
        tmp_path / "c",
        community_key=None,
        min_indicators=1,
    )
    assert asn_hit.sightings.num_rows > 0
    with_tls = hunt(
        data,
        IndicatorSet((IntelIndicator("user_agent", ua, tls=tls),)),
        tmp_path / "d",
        community_key=None,
        min_indicators=1,
    )
    assert with_tls.sightings.num_rows > 0


def test_minhash_similarity_threshold(hunted: Any, data: Path, tmp_path: Path) -> None:
    from distillshield.backends import open_backend
    from distillshield.features.account import register_dataset
    from distillshield.intel.hunt import _our_signatures

    with open_backend("duckdb") as backend:
        register_dataset(backend, data)
        ours = _our_signatures(backend, data)
    rows = [r for r in ours.to_pylist() if (r["shingles"] or 0) >= 20]
    target = rows[0]
    sig = list(target["minhash"])
    near = tuple(sig[:60] + [(x + 1) % 2**32 for x in sig[60:]])  # 60/64 = 0.94 agree
    far = tuple(sig[:20] + [(x + 1) % 2**32 for x in sig[20:]])  # 0.31
    inds = IndicatorSet(
        (
            IntelIndicator(
                "template_minhash", "00000000000000aa", campaign="near", minhash=near, shingles=20
            ),
            IntelIndicator("template_minhash", "00000000000000bb", campaign="far", minhash=far, shingles=20),
        )
    )
    got = hunt(data, inds, tmp_path / "m", community_key=None, min_indicators=1)
    assert set(got.sightings.column("peer_campaign").to_pylist()) == {"near"}
    assert min(got.sightings.column("similarity").to_pylist()) >= 0.9


def test_failed_hunt_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    empty = tmp_path / "not-data"
    empty.mkdir()
    with pytest.raises(DistillShieldError):
        hunt(empty, IndicatorSet((IntelIndicator("ipv4", "1.2.3.4"),)), out, community_key=None)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(IntelError):
        hunt(empty, IndicatorSet(), out, community_key=None, minhash_threshold=0)
    with pytest.raises(IntelError):
        hunt(empty, IndicatorSet(), out, community_key=None, min_indicators=0)


def _ts(text: str) -> Any:
    from distillshield.intel._common import parse_ts

    return parse_ts(text)
