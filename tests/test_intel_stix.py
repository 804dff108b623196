"""Intelligence export: STIX 2.1 bundles and MISP events from a scan, privacy, determinism, round trip."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pymisp import MISPEvent

from distillshield.detect import scan
from distillshield.intel import (
    TLP2,
    IntelError,
    export_misp,
    export_stix,
    key_id,
    keyed_hash,
    load_indicators,
    read_key,
    validate_bundle,
    validation_warnings,
)
from distillshield.intel._common import EXT_FINGERPRINT, SCHEMA_IDENTITY, TLP2_EXTENSION, tlp_level
from distillshield.intel._keyed import meta_pairs
from distillshield.schema import EXCHANGES, read_table

KEY = b"test-community-key-0123456789abcdef"


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy: scanning prepares the dataset in place."""
    out = tmp_path_factory.mktemp("intel-data") / "data"
    shutil.copytree(small_dataset, out)
    return out


@pytest.fixture(scope="module")
def det(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("intel-det") / "det"
    scan(data, out)
    return out


@pytest.fixture(scope="module")
def bundle(det: Path, data: Path) -> dict[str, Any]:
    return export_stix(det, data=data, community_key=KEY)


def _indicators(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in bundle["objects"] if o["type"] == "indicator"]


def _members(det: Path) -> set[str]:
    acc = pq.read_table(det / "accounts.parquet", columns=["account_id", "campaign_id"])
    return set(acc.filter(pc.is_valid(acc.column("campaign_id"))).column("account_id").to_pylist())


def test_bundle_validates_and_carries_the_object_model(bundle: dict[str, Any]) -> None:
    assert validate_bundle(bundle) == []
    # the only warning: deterministic ids are UUIDv5 where the spec recommends v4 for SDOs
    codes = {w.split("{", 1)[1].split("}", 1)[0] for w in validation_warnings(bundle)}
    assert codes <= {"103"}
    types = {o["type"] for o in bundle["objects"]}
    assert {
        "identity",
        "campaign",
        "intrusion-set",
        "infrastructure",
        "indicator",
        "relationship",
        "sighting",
        "marking-definition",
        "extension-definition",
    } <= types
    kinds = {o["labels"][1] for o in _indicators(bundle)}
    assert {"cidr", "template_id", "payment_hash", "user_agent", "meta"} <= kinds
    rels = {o["relationship_type"] for o in bundle["objects"] if o["type"] == "relationship"}
    assert {"indicates", "attributed-to", "uses"} <= rels
    # every indicator indicates something; every template indicator carries its MinHash
    targets = {o["source_ref"] for o in bundle["objects"] if o["type"] == "relationship"}
    for ind in _indicators(bundle):
        assert ind["id"] in targets
        assert 0 <= ind["confidence"] <= 100 and ind["valid_until"] > ind["valid_from"]
        if "template_id" in ind["labels"]:
            ext = ind["extensions"][EXT_FINGERPRINT]
            assert len(ext["minhash"]) == 64 and ext["template_id"] in ind["pattern"]


def test_tlp_marking_is_the_oasis_tlp2_object_on_every_authored_object(bundle: dict[str, Any]) -> None:
    amber_id, amber_name = TLP2["amber"]
    markings = [o for o in bundle["objects"] if o["type"] == "marking-definition"]
    assert len(markings) == 1
    assert markings[0]["id"] == amber_id == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    assert markings[0]["name"] == amber_name
    assert markings[0]["extensions"][TLP2_EXTENSION] == {
        "extension_type": "property-extension",
        "tlp_2_0": "amber",
    }
    for obj in bundle["objects"]:
        if obj["type"] in ("marking-definition", "extension-definition") or obj["id"] == SCHEMA_IDENTITY:
            continue  # public schema objects: the same for every producer and marking
        assert obj["object_marking_refs"] == [amber_id], obj["id"]


def test_export_is_deterministic(bundle: dict[str, Any], det: Path, data: Path) -> None:
    again = export_stix(det, data=data, community_key=KEY, validate=False)
    assert json.dumps(again, sort_keys=True) == json.dumps(bundle, sort_keys=True)
    assert again["id"] == bundle["id"]
    # another key changes the keyed hashes (and the bundle), not the other objects' ids
    other = export_stix(det, data=data, community_key=b"another-key-0123456789abcdef", validate=False)
    ids = {o["id"] for o in bundle["objects"]}
    other_ids = {o["id"] for o in other["objects"]}
    changed = ids - other_ids
    assert changed and all(
        o["type"] in ("indicator", "relationship") for o in bundle["objects"] if o["id"] in changed
    )
    assert {o["id"] for o in bundle["objects"] if o["type"] == "campaign"} <= other_ids


def test_no_raw_content_leaves_unless_asked(bundle: dict[str, Any], det: Path, data: Path) -> None:
    members = _members(det)
    text = json.dumps(bundle, ensure_ascii=False)
    acc = pq.read_table(data / "accounts.parquet", columns=["account_id", "payment_fingerprint"])
    payments = {
        p
        for a, p in zip(*(acc.column(c).to_pylist() for c in acc.column_names), strict=True)
        if a in members and p
    }
    assert payments and not any(p in text for p in payments)
    assert not any(a in text for a in members)  # no account id of ours either
    ex = read_table(data, EXCHANGES, columns=["account_id", "prompt", "metadata"])
    rows = [r for r in ex.to_pylist() if r["account_id"] in members]
    prompts = [r["prompt"] for r in rows if r["prompt"] and len(r["prompt"]) > 40][:300]
    assert prompts and not any(p[:40] in text for p in prompts)
    pairs = {p.split("=", 1)[1] for r in rows for p in meta_pairs(r["metadata"])}
    assert pairs and not any(json.dumps(v)[1:-1] in text for v in pairs if len(v) > 4)
    for ind in _indicators(bundle):
        ext = ind.get("extensions", {}).get(EXT_FINGERPRINT, {})
        assert not {"raw_value", "skeleton", "example_prompt"} & set(ext)


def test_share_content_adds_raw_values(det: Path, data: Path) -> None:
    shared = export_stix(det, data=data, community_key=KEY, share_content=True)
    assert validate_bundle(shared) == []
    exts = [i.get("extensions", {}).get(EXT_FINGERPRINT, {}) for i in _indicators(shared)]
    raw = [e["raw_value"] for e in exts if e.get("fingerprint_type") == "keyed-hash" and "raw_value" in e]
    examples = [e["example_prompt"] for e in exts if "example_prompt" in e]
    assert raw and examples and all(e.get("skeleton") for e in exts if "example_prompt" in e)
    acc = pq.read_table(data / "accounts.parquet", columns=["payment_fingerprint"])
    assert set(raw) & set(acc.column("payment_fingerprint").to_pylist())
    # the example prompts come from campaign members only
    members = _members(det)
    ex = read_table(data, EXCHANGES, columns=["account_id", "prompt"])
    member_prompts = {
        r["prompt"][:2000] for r in ex.to_pylist() if r["account_id"] in members and r["prompt"]
    }
    assert set(examples) <= member_prompts


def test_as_names_leave_only_on_request(bundle: dict[str, Any], det: Path, data: Path) -> None:
    assert not [i for i in _indicators(bundle) if "asn" in i["labels"]]
    with_asn = export_stix(det, data=data, community_key=KEY, export_asn=True, validate=False)
    asns = [i for i in _indicators(with_asn) if "asn" in i["labels"]]
    assert asns and all(i["confidence"] <= 50 and "autonomous-system:name" in i["pattern"] for i in asns)
    assert validate_bundle({**with_asn, "objects": asns}) == []


def test_tlp_levels_and_validity(det: Path) -> None:
    red = export_stix(det, community_key=KEY, tlp="TLP:RED", valid_days=7)
    assert validate_bundle(red) == []
    red_id = TLP2["red"][0]
    assert red_id == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
    assert [o["id"] for o in red["objects"] if o["type"] == "marking-definition"] == [red_id]
    assert tlp_level("white") == "clear" and tlp_level("amber+strict") == "amber+strict"
    with pytest.raises(IntelError, match="unknown TLP"):
        export_stix(det, community_key=KEY, tlp="purple")
    with pytest.raises(IntelError, match="valid_days"):
        export_stix(det, community_key=KEY, valid_days=0)


def test_without_data_only_keyed_payment_hashes_leave(det: Path) -> None:
    bare = export_stix(det, community_key=KEY)
    assert validate_bundle(bare) == []
    inds = _indicators(bare)
    assert inds and {i["labels"][1] for i in inds} == {"payment_hash"}
    assert all(i["confidence"] <= 70 for i in inds)  # specificity not measured
    assert all("not measured" in i["description"] for i in inds)


def test_keyed_hashing_scheme(tmp_path: Path) -> None:
    value = "AbC123 "
    want = hmac.new(KEY, b"distillshield-hmac-sha256-v1\x1fpayment\x1fabc123", hashlib.sha256).hexdigest()
    assert keyed_hash(KEY, "payment", value) == want
    assert keyed_hash(KEY, "metadata", "user=abc123") != keyed_hash(KEY, "payment", "user=abc123")
    assert key_id(KEY) == hashlib.sha256(KEY).hexdigest()[:16]
    with pytest.raises(IntelError, match="at least 16"):
        keyed_hash(b"short", "payment", value)
    assert meta_pairs('{"User": " tan.data ", "n": 3, "x": null, "l": [1]}') == ["n=3", "user=tan.data"]
    assert meta_pairs("not json") == [] and meta_pairs('["a"]') == []
    (tmp_path / "hex").write_text(KEY.hex() + "\n")
    (tmp_path / "raw").write_bytes(KEY + b"\n")
    assert read_key(tmp_path / "hex") == KEY == read_key(tmp_path / "raw")


def test_misp_event_has_the_same_indicators(bundle: dict[str, Any], det: Path, data: Path) -> None:
    event = export_misp(det, data=data, community_key=KEY)
    before = json.dumps(event, sort_keys=True)
    assert json.dumps(event, sort_keys=True) == json.dumps(
        export_misp(det, data=data, community_key=KEY), sort_keys=True
    )
    ev = MISPEvent()
    ev.load(json.dumps(event))  # PyMISP reads it back
    assert "tlp:amber" in {t.name for t in ev.tags}
    names = {o.name for o in ev.objects}
    assert {"distillshield-template-fingerprint", "distillshield-keyed-hash", "annotation"} <= names
    assert any(a.type == "ip-src" for a in ev.attributes)
    assert all(any(t.name.startswith("distillshield:campaign=") for t in a.tags) for a in ev.attributes)
    from_stix = load_indicators([bundle], community_key=KEY)
    from_misp = load_indicators([event], community_key=KEY)
    assert json.dumps(event, sort_keys=True) == before  # the import does not touch its input
    assert from_stix.rejected == [] == from_misp.rejected
    assert from_stix.skipped == [] == from_misp.skipped
    assert {(i.kind, i.value, i.campaign) for i in from_stix.indicators} == {
        (i.kind, i.value, i.campaign) for i in from_misp.indicators
    }
    # a MISP attribute has the UUID of the STIX indicator it mirrors
    assert {i.ref for i in from_misp.indicators} <= {o["id"] for o in _indicators(bundle)}
    text = json.dumps(event)
    acc = pq.read_table(data / "accounts.parquet", columns=["account_id", "payment_fingerprint"])
    members = _members(det)
    payments = [
        p
        for a, p in zip(*(acc.column(c).to_pylist() for c in acc.column_names), strict=True)
        if a in members and p
    ]
    assert not any(p in text for p in payments)


def test_import_round_trip(bundle: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    got = load_indicators([path], community_key=KEY)
    assert got.rejected == [] and got.skipped == []
    exported: set[tuple[str, str]] = set()
    campaigns = {o["id"]: o["name"] for o in bundle["objects"] if o["type"] == "campaign"}
    for ind in _indicators(bundle):
        kind = ind["labels"][1]
        if kind in ("payment_hash", "meta"):
            value = ind["pattern"].rsplit("hmac_sha256 = '", 1)[1].split("'", 1)[0]
        else:
            value = ind["pattern"].split(" = '", 1)[1].split("'", 1)[0]
        exported.add((kind, " ".join(value.split()).casefold() if kind == "asn" else value))
        if kind == "template_id":
            exported.add(("template_minhash", value))
    imported = {(i.kind, i.value) for i in got.indicators}
    assert imported == exported
    assert set(got.indicators.campaigns()) == set(campaigns.values())
    assert {i.source for i in got.indicators} == {"distillshield"}
    mh = got.indicators.of("template_minhash")
    assert mh and all(i.minhash is not None and len(i.minhash) == 64 for i in mh)
    ua = got.indicators.of("user_agent")
    assert ua and all(i.tls for i in ua)  # client fingerprints keep their TLS half
    # without the community key the keyed hashes cannot be used: skipped, with the reason
    keyless = load_indicators([path], community_key=None)
    assert not keyless.indicators.of("payment_hash") and not keyless.indicators.of("meta")
    assert any("no community key" in s for s in keyless.skipped)
