"""STIX 2.1 export: campaigns, operator profiles and their specific indicators as one bundle.

Object model (docs/intel.md has the full description and the extension schemas)::

    identity (producer) ──created_by_ref── every object below
    campaign ──attributed-to──> intrusion-set (operator profile)
    campaign ──uses──> infrastructure (its egress: IPs, prefixes, AS names)
    indicator (ipv4/ipv6/cidr/asn) ──indicates──> infrastructure
    indicator (user agent, template, keyed hash) ──indicates──> campaign
    sighting (of the campaign, where_sighted = producer, count = exchanges)
    marking-definition (TLP 2.0, OASIS ids) on every object we author
    extension-definition x3 (+ their author identity): our custom observable types and the
    fingerprint property extension carried by template and keyed-hash indicators

Ids are deterministic (:func:`~distillshield.intel._common.stix_id`) and timestamps come from
the detections (``created`` = the campaign's first flag, ``modified`` = the scan's data
horizon), so exporting the same detections twice gives the same bytes, and exporting after a
later scan gives new *versions* of the same objects rather than duplicates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import stix2  # type: ignore[import-untyped, unused-ignore]

from distillshield.intel._collect import Collected, ExportCampaign, ExportIndicator, collect
from distillshield.intel._common import (
    EXT_FINGERPRINT,
    EXT_KEYED_HASH,
    EXT_PROMPT_TEMPLATE,
    MINHASH_SCHEME,
    SCHEMA_CREATED,
    SCHEMA_IDENTITY,
    TLP2,
    TLP2_CREATED,
    TLP2_EXTENSION,
    IntelError,
    stix_id,
    stix_ts,
    tlp_level,
)
from distillshield.intel._keyed import SCHEME as KEYED_SCHEME

__all__ = [
    "EXTENSION_SCHEMAS",
    "TLS_PATH",
    "UA_PATH",
    "export_stix",
    "stix_pattern",
    "tlp_marking",
    "validate_bundle",
]

#: Object paths used in patterns for a client fingerprint (STIX has no TLS-fingerprint
#: property; ``x_tls_fingerprint`` is a custom property of network-traffic, documented).
UA_PATH = "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'"
TLS_PATH = "network-traffic:x_tls_fingerprint"
TEMPLATE_TYPE = "x-distillshield-prompt-template"
KEYED_TYPE = "x-distillshield-keyed-hash"
#: STIX caps a sighting's count.
MAX_COUNT = 999_999_999

_HEX16 = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_SCO_COMMON = {
    "type": {"type": "string"},
    "id": {"type": "string"},
    "spec_version": {"type": "string", "enum": ["2.1"]},
}

#: JSON schemas of our three extension definitions (also in docs/intel.md).
EXTENSION_SCHEMAS: dict[str, dict[str, Any]] = {
    EXT_PROMPT_TEMPLATE: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TEMPLATE_TYPE,
        "description": "A prompt template seen at an LLM API, named by the 16-hex id of its normalised "
        "skeleton (distillshield signals/template.py). Used in indicator patterns.",
        "type": "object",
        "properties": {**_SCO_COMMON, "type": {"enum": [TEMPLATE_TYPE]}, "template_id": _HEX16},
        "required": ["type", "template_id"],
    },
    EXT_KEYED_HASH: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": KEYED_TYPE,
        "description": f"A value peers may match but must not learn, as {KEYED_SCHEME}: "
        "HMAC-SHA256 under a community key shared out of band. Used in indicator patterns.",
        "type": "object",
        "properties": {
            **_SCO_COMMON,
            "type": {"enum": [KEYED_TYPE]},
            "kind": {"enum": ["payment", "metadata"]},
            "key_id": _HEX16,
            "hmac_sha256": _HEX64,
        },
        "required": ["type", "kind", "key_id", "hmac_sha256"],
    },
    EXT_FINGERPRINT: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "distillshield-fingerprint",
        "description": "Property extension of an indicator: the MinHash signature of a prompt "
        "template (near-duplicate matching) or the scheme of a keyed hash. Raw content only "
        "when the producer chose to share it.",
        "type": "object",
        "properties": {
            "extension_type": {"enum": ["property-extension"]},
            "fingerprint_type": {"enum": ["template", "keyed-hash"]},
            "template_id": _HEX16,
            "minhash": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 4294967295},
                "minItems": 1,
            },
            "minhash_scheme": {"type": "string"},
            "num_perm": {"type": "integer"},
            "ngram": {"type": "integer"},
            "seed": {"type": "integer"},
            "shingles": {"type": "integer", "minimum": 0},
            "skeleton": {"type": "string", "description": "only with --share-content"},
            "example_prompt": {"type": "string", "description": "only with --share-content"},
            "keyed_scheme": {"enum": [KEYED_SCHEME]},
            "key_id": _HEX16,
            "raw_value": {"type": "string", "description": "only with --share-content"},
        },
        "required": ["extension_type", "fingerprint_type"],
    },
}

_EXT_META: dict[str, tuple[str, str, list[str]]] = {
    EXT_PROMPT_TEMPLATE: (
        TEMPLATE_TYPE,
        "Observable type for prompt templates, matched by template id in indicator patterns.",
        ["new-sco"],
    ),
    EXT_KEYED_HASH: (
        KEYED_TYPE,
        "Observable type for keyed hashes (payment fingerprints, request metadata) in indicator patterns.",
        ["new-sco"],
    ),
    EXT_FINGERPRINT: (
        "distillshield-fingerprint",
        "Indicator property extension: template MinHash signatures and keyed-hash parameters.",
        ["property-extension"],
    ),
}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_pattern(ind: ExportIndicator) -> str:
    """The STIX pattern of one exported indicator."""
    if ind.kind in ("ipv4", "ipv6", "cidr"):
        sco = "ipv6-addr" if ":" in ind.value else "ipv4-addr"
        return f"[{sco}:value = {_quote(ind.value)}]"
    if ind.kind == "asn":
        return f"[autonomous-system:name = {_quote(ind.value)}]"
    if ind.kind == "user_agent":
        ua = f"{UA_PATH} = {_quote(ind.value)}"
        return f"[{ua} AND {TLS_PATH} = {_quote(ind.tls)}]" if ind.tls else f"[{ua}]"
    if ind.kind == "template_id":
        return f"[{TEMPLATE_TYPE}:template_id = {_quote(ind.value)}]"
    if ind.kind in ("payment_hash", "meta"):
        kind = "payment" if ind.kind == "payment_hash" else "metadata"
        return (
            f"[{KEYED_TYPE}:kind = {_quote(kind)} AND {KEYED_TYPE}:key_id = {_quote(ind.key_id or '')} "
            f"AND {KEYED_TYPE}:hmac_sha256 = {_quote(ind.value)}]"
        )
    raise IntelError(f"no STIX pattern for indicator kind {ind.kind!r}")


def tlp_marking(tlp: str) -> dict[str, Any]:
    """The OASIS TLP 2.0 marking-definition object for ``tlp``."""
    level = tlp_level(tlp)
    mid, name = TLP2[level]
    obj = stix2.v21.MarkingDefinition(
        id=mid,
        created=TLP2_CREATED,
        name=name,
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    )
    out: dict[str, Any] = json.loads(obj.serialize())
    return out


_LABELS = {
    "ipv4": "IPv4 address",
    "ipv6": "IPv6 address",
    "cidr": "IP prefix",
    "asn": "autonomous system",
    "user_agent": "client fingerprint",
    "template_id": "prompt template",
    "payment_hash": "payment fingerprint (keyed hash)",
    "meta": "request metadata (keyed hash)",
}
_NETWORK = ("ipv4", "ipv6", "cidr", "asn")


def _campaign_description(c: ExportCampaign) -> str:
    first, last = (stix_ts(t)[:16].replace("T", " ") for t in (c.first_seen, c.last_seen))
    parts = [f"{c.size} accounts sent {c.exchanges:,} requests between {first} and {last} UTC"]
    if c.capability_mix:
        parts.append("capabilities: " + ", ".join(f"{k} {v:.0%}" for k, v in c.capability_mix[:4]))
    if c.cot_share is not None and c.cot_share >= 0.05:
        parts.append(f"{c.cot_share:.0%} of prompts ask the model to expose its reasoning")
    if c.pivot_model and c.pivot_share is not None and c.pivot_share >= 0.2:
        parts.append(
            f"moved {c.pivot_share:.0%} of its traffic to {c.pivot_model} within 48 h of its release"
        )
    return "; ".join(parts) + f". Campaign score {c.score:.2f} (distillshield scan)."


def _indicator_description(ind: ExportIndicator, c: ExportCampaign, measured: bool) -> str:
    text = f"Used by {ind.members} accounts of campaign {c.id}"
    if ind.specificity is not None:
        text += f"; {ind.specificity:.0%} of all accounts that used it belong to the campaign"
    elif not measured:
        text += "; specificity not measured (exported without the traffic)"
    if ind.kind == "asn":
        text += ". AS named, not numbered: the producer's data carries AS names"
    if ind.kind in ("payment_hash", "meta"):
        text += f". {KEYED_SCHEME} under community key {ind.key_id}"
    return text + "."


def _fingerprint_ext(ind: ExportIndicator) -> dict[str, Any] | None:
    if ind.kind == "template_id":
        ext: dict[str, Any] = {
            "extension_type": "property-extension",
            "fingerprint_type": "template",
            "template_id": ind.value,
        }
        if ind.minhash is not None:
            ext |= {
                "minhash": list(ind.minhash),
                "minhash_scheme": MINHASH_SCHEME["scheme"],
                "num_perm": MINHASH_SCHEME["num_perm"],
                "ngram": MINHASH_SCHEME["ngram"],
                "seed": MINHASH_SCHEME["seed"],
                "shingles": int(ind.shingles or 0),
            }
        if ind.skeleton is not None:
            ext["skeleton"] = ind.skeleton
        if ind.example is not None:
            ext["example_prompt"] = ind.example
        return ext
    if ind.kind in ("payment_hash", "meta"):
        ext = {
            "extension_type": "property-extension",
            "fingerprint_type": "keyed-hash",
            "keyed_scheme": KEYED_SCHEME,
            "key_id": ind.key_id,
        }
        if ind.raw is not None:
            ext["raw_value"] = ind.raw
        return ext
    return None


def _dump(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(obj.serialize())
    return out


class _Builder:
    def __init__(self, col: Collected, *, tlp: str, producer: str, valid_days: int) -> None:
        self.col = col
        self.producer = producer
        self.marking = TLP2[tlp_level(tlp)][0]
        self.valid_until = col.as_of + timedelta(days=valid_days)
        self.identity = stix_id("identity", producer)
        self.objects: list[dict[str, Any]] = []

    def common(self, created: datetime) -> dict[str, Any]:
        return {
            "created": stix_ts(created),
            "modified": stix_ts(max(created, self.col.as_of)),
            "created_by_ref": self.identity,
            "object_marking_refs": [self.marking],
        }

    def relate(self, src: str, rel: str, dst: str, created: datetime) -> None:
        rid = stix_id("relationship", self.producer, src, rel, dst)
        self.objects.append(
            _dump(
                stix2.v21.Relationship(
                    id=rid, source_ref=src, relationship_type=rel, target_ref=dst, **self.common(created)
                )
            )
        )

    def schema_objects(self) -> None:
        author = stix2.v21.Identity(
            id=SCHEMA_IDENTITY,
            name="distillshield (schema author)",
            description="Author of the distillshield STIX extension definitions (docs/intel.md).",
            identity_class="organization",
            created=SCHEMA_CREATED,
            modified=SCHEMA_CREATED,
        )
        self.objects.append(_dump(author))
        for ext_id, (name, description, types) in _EXT_META.items():
            self.objects.append(
                _dump(
                    stix2.v21.ExtensionDefinition(
                        id=ext_id,
                        created_by_ref=SCHEMA_IDENTITY,
                        created=SCHEMA_CREATED,
                        modified=SCHEMA_CREATED,
                        name=name,
                        description=description,
                        schema=json.dumps(EXTENSION_SCHEMAS[ext_id], sort_keys=True, separators=(",", ":")),
                        version="1.0.0",
                        extension_types=types,
                    )
                )
            )

    def build(self) -> list[dict[str, Any]]:
        col = self.col
        self.objects.append(tlp_marking_by_id(self.marking))
        self.schema_objects()
        self.objects.append(
            _dump(
                stix2.v21.Identity(
                    id=self.identity,
                    name=self.producer,
                    description="Producer of this intelligence (distillshield intel export).",
                    identity_class="organization",
                    created=SCHEMA_CREATED,
                    modified=SCHEMA_CREATED,
                    object_marking_refs=[self.marking],
                )
            )
        )
        by_actor: dict[str, list[ExportCampaign]] = {}
        for c in col.campaigns:
            if c.actor:
                by_actor.setdefault(c.actor, []).append(c)
        actor_ids: dict[str, str] = {}
        for actor, camps in sorted(by_actor.items()):
            created = min(c.created for c in camps)
            aid = stix_id("intrusion-set", self.producer, actor)
            actor_ids[actor] = aid
            self.objects.append(
                _dump(
                    stix2.v21.IntrusionSet(
                        id=aid,
                        name=actor,
                        description=(
                            f"Operator profile linking {len(camps)} campaign(s) by shared payment "
                            "fingerprints or request metadata (shared as keyed-hash indicators)."
                        ),
                        first_seen=stix_ts(min(c.first_seen for c in camps)),
                        last_seen=stix_ts(max(c.last_seen for c in camps)),
                        goals=["distil a frontier model's capabilities through its API"],
                        **self.common(created),
                    )
                )
            )
        by_campaign: dict[str, list[ExportIndicator]] = {}
        for ind in col.indicators:
            by_campaign.setdefault(ind.campaign_id, []).append(ind)
        for c in col.campaigns:
            self.campaign(c, by_campaign.get(c.id, []), actor_ids.get(c.actor or ""))
        return self.objects

    def campaign(self, c: ExportCampaign, indicators: list[ExportIndicator], actor: str | None) -> None:
        cid = stix_id("campaign", self.producer, c.id)
        top = ", ".join(k for k, _ in c.capability_mix[:3]) or "unknown"
        self.objects.append(
            _dump(
                stix2.v21.Campaign(
                    id=cid,
                    name=c.id,
                    description=_campaign_description(c),
                    objective=f"Harvest model outputs for distillation ({top})",
                    first_seen=stix_ts(c.first_seen),
                    last_seen=stix_ts(c.last_seen),
                    confidence=max(0, min(100, round(100 * c.score))),
                    **self.common(c.created),
                )
            )
        )
        if actor:
            self.relate(cid, "attributed-to", actor, c.created)
        infra: str | None = None
        if any(i.kind in _NETWORK for i in indicators):
            infra = stix_id("infrastructure", self.producer, c.id)
            self.objects.append(
                _dump(
                    stix2.v21.Infrastructure(
                        id=infra,
                        name=f"{c.id} egress",
                        description=(
                            "Addresses, prefixes and networks the campaign's requests came from "
                            "(proxy or hosting egress), each used by (almost) no other account."
                        ),
                        infrastructure_types=["anonymization"],
                        first_seen=stix_ts(c.first_seen),
                        last_seen=stix_ts(c.last_seen),
                        **self.common(c.created),
                    )
                )
            )
            self.relate(cid, "uses", infra, c.created)
        for ind in indicators:
            iid = stix_id("indicator", self.producer, ind.kind, ind.value, ind.tls or "")
            kwargs: dict[str, Any] = {}
            ext = _fingerprint_ext(ind)
            if ext is not None:
                kwargs["extensions"] = {EXT_FINGERPRINT: ext}
            shown = ind.value if ind.kind not in ("payment_hash", "meta") else ind.value[:16] + "..."
            valid_from = c.first_seen
            valid_until = max(self.valid_until, valid_from + timedelta(seconds=1))
            types = ["anonymization"] if ind.kind in _NETWORK else ["malicious-activity"]
            if ind.kind in ("payment_hash", "meta"):
                types = ["attribution"]
            self.objects.append(
                _dump(
                    stix2.v21.Indicator(
                        id=iid,
                        name=f"{c.id}: {_LABELS[ind.kind]} {shown}",
                        description=_indicator_description(ind, c, self.col.measured),
                        indicator_types=types,
                        pattern=stix_pattern(ind),
                        pattern_type="stix",
                        pattern_version="2.1",
                        valid_from=stix_ts(valid_from),
                        valid_until=stix_ts(valid_until),
                        confidence=ind.confidence,
                        labels=["distillshield", ind.kind],
                        **self.common(c.created),
                        **kwargs,
                    )
                )
            )
            target = infra if (infra and ind.kind in _NETWORK) else cid
            self.relate(iid, "indicates", target, c.created)
        sid = stix_id("sighting", self.producer, c.id)
        self.objects.append(
            _dump(
                stix2.v21.Sighting(
                    id=sid,
                    sighting_of_ref=cid,
                    where_sighted_refs=[self.identity],
                    count=max(0, min(MAX_COUNT, c.exchanges)),
                    first_seen=stix_ts(c.first_seen),
                    last_seen=stix_ts(max(c.last_seen, c.first_seen + timedelta(milliseconds=1))),
                    description=f"{c.size} accounts, {c.exchanges:,} requests at {self.producer}.",
                    **self.common(c.created),
                )
            )
        )


def tlp_marking_by_id(marking_id: str) -> dict[str, Any]:
    for level, (mid, _) in TLP2.items():
        if mid == marking_id:
            return tlp_marking(level)
    raise IntelError(f"{marking_id} is not a TLP 2.0 marking definition")


def bundle_of(objects: list[dict[str, Any]], producer: str) -> dict[str, Any]:
    """A bundle with a content-derived id (same objects, same id)."""
    digest = hashlib.sha256(
        json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    return {"type": "bundle", "id": stix_id("bundle", producer, digest), "objects": objects}


def export_stix(
    det_dir: str | Path,
    *,
    data: str | Path | None = None,
    tlp: str = "amber",
    share_content: bool = False,
    community_key: bytes,
    producer: str = "distillshield",
    valid_days: int = 30,
    min_members: int = 3,
    min_specificity: float = 0.95,
    export_asn: bool = False,
    validate: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """The STIX 2.1 bundle (a JSON-ready dict) for detection directory ``det_dir``.

    ``data``: the prepared dataset the detections came from; with it, every indicator's
    specificity is measured on the traffic and templates carry MinHash signatures; without
    it, only keyed hashes of the payment fingerprints the dossiers name are exported.
    ``share_content`` adds raw values (payment fingerprints, metadata pairs, template
    skeletons and one example prompt per template from a campaign member); off by default.
    Raises :class:`IntelError` if the bundle would not pass stix2-validator (``validate``;
    ``workers`` as in :func:`validate_bundle`).
    """
    if not producer.strip():
        raise IntelError("producer name is empty")
    if valid_days < 1:
        raise IntelError(f"valid_days must be at least 1, got {valid_days}")
    tlp_level(tlp)
    col = collect(
        det_dir,
        data=data,
        community_key=community_key,
        share_content=share_content,
        min_members=min_members,
        min_specificity=min_specificity,
        asn=export_asn,
    )
    objects = _Builder(col, tlp=tlp, producer=producer, valid_days=valid_days).build()
    bundle = bundle_of(objects, producer)
    if validate:
        errors = validate_bundle(bundle, workers=workers)
        if errors:
            raise IntelError(f"the exported bundle is not valid STIX ({len(errors)} errors): {errors[:3]}")
    return bundle


# --- validation -----------------------------------------------------------------------------

#: Objects per validator call. stix2-validator works object by object, 5-10 ms each (JSON
#: schema reference resolution dominates); ``workers > 1`` spreads the chunks over processes.
CHUNK_OBJECTS = 1000


def _validate_chunk(envelope: dict[str, Any], objects: list[Any]) -> tuple[list[str], list[str]]:
    from stix2validator import ValidationOptions, validate_instance  # type: ignore[import-untyped, unused-ignore]

    try:
        result = validate_instance(dict(envelope, objects=objects), ValidationOptions(version="2.1"))
    except Exception as exc:  # the validator raises on shapes it cannot read
        return [f"stix2-validator failed: {type(exc).__name__}: {exc}"], []
    return [str(e) for e in result.errors], [str(w) for w in result.warnings]


def _validate(bundle: Mapping[str, Any], workers: int = 1) -> tuple[list[str], list[str]]:
    if not isinstance(bundle, Mapping) or bundle.get("type") != "bundle":
        return ["not a STIX bundle (no 'type': 'bundle')"], []
    objects = bundle.get("objects", [])
    if not isinstance(objects, list):
        return ["bundle 'objects' is not a list"], []
    envelope = {k: v for k, v in bundle.items() if k != "objects"}
    chunks = [objects[i : i + CHUNK_OBJECTS] for i in range(0, max(len(objects), 1), CHUNK_OBJECTS)]
    if workers > 1 and len(chunks) > 1:
        # spawn, not fork: the caller may hold threads (DuckDB, Arrow). Like any spawn pool,
        # this needs the calling script's entry point behind ``if __name__ == "__main__"``.
        with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_validate_chunk, [envelope] * len(chunks), chunks))
    else:
        results = [_validate_chunk(envelope, c) for c in chunks]
    return [e for r in results for e in r[0]], [w for r in results for w in r[1]]


def validate_bundle(bundle: Mapping[str, Any], *, workers: int = 1) -> list[str]:
    """stix2-validator's errors for ``bundle`` (STIX 2.1, default options); empty means valid.

    Warnings (e.g. {103}: our deterministic ids are UUIDv5 where the specification
    recommends v4 for SDOs) are not errors; :func:`validation_warnings` returns them.
    ``workers > 1`` validates chunks of 1,000 objects in that many spawned processes.
    """
    return _validate(bundle, workers)[0]


def validation_warnings(bundle: Mapping[str, Any], *, workers: int = 1) -> list[str]:
    """stix2-validator's warnings for ``bundle``."""
    return _validate(bundle, workers)[1]
