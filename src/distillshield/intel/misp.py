"""MISP export: the same campaigns and indicators as the STIX bundle, as one MISP event.

Built with PyMISP objects offline (no MISP server). Mapping (docs/intel.md, "MISP"):

    ipv4 / ipv6 / cidr       attribute ``ip-src``
    asn (an AS *name*)       attribute ``text``, tag ``distillshield:kind="asn-name"``
    user agent               attribute ``user-agent``; with a TLS fingerprint, object
                             ``distillshield-client`` (user-agent, tls-fingerprint)
    template id + MinHash    object ``distillshield-template-fingerprint``
    payment / metadata hash  object ``distillshield-keyed-hash``
    campaign                 object ``annotation`` (its description), tags below

Every attribute and object carries ``distillshield:campaign="<id>"`` (and
``distillshield:operator="<id>"`` when attributed) and ``distillshield:confidence="<0-100>"``;
the event carries the TLP 2.0 tag (``tlp:amber`` ...) and ``distillshield:producer="<name>"``.
UUIDs are deterministic: an attribute or object has the UUID of the STIX indicator it mirrors,
so a sighting reported against either format names the same indicator. The custom object
templates are :data:`MISP_OBJECT_TEMPLATES` (install them in a MISP instance to edit the
objects there; MISP stores objects of unknown templates as they are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymisp import MISPAttribute, MISPEvent, MISPObject

from distillshield.intel._collect import ExportCampaign, ExportIndicator, collect
from distillshield.intel._common import MINHASH_SCHEME, IntelError, det_uuid, stix_id, tlp_level
from distillshield.intel._keyed import SCHEME as KEYED_SCHEME

__all__ = ["MISP_OBJECT_TEMPLATES", "export_misp", "misp_tag"]


def _template(
    name: str, description: str, attrs: dict[str, tuple[str, str]], required: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "uuid": det_uuid("misp-object-template", name),
        "version": 1,
        "meta-category": "network" if name == "distillshield-client" else "misc",
        "description": description,
        "attributes": {
            rel: {"misp-attribute": typ, "description": desc, "ui-priority": 1, "disable_correlation": False}
            for rel, (typ, desc) in attrs.items()
        },
        "required": required,
    }


#: Our custom MISP object templates (the misp-objects ``definition.json`` format).
MISP_OBJECT_TEMPLATES: dict[str, dict[str, Any]] = {
    t["name"]: t
    for t in (
        _template(
            "distillshield-client",
            "An API client fingerprint: user agent and the TLS fingerprint it was seen with.",
            {
                "user-agent": ("user-agent", "HTTP User-Agent"),
                "tls-fingerprint": ("text", "TLS client fingerprint (JA4-style)"),
            },
            ["user-agent", "tls-fingerprint"],
        ),
        _template(
            "distillshield-template-fingerprint",
            "A prompt template: 16-hex id of its normalised skeleton and a MinHash signature of "
            "its word 3-gram shingles (distillshield-skeleton-minhash-v1). Raw text only if shared.",
            {
                "template-id": ("text", "16-hex template id"),
                "minhash": ("text", "MinHash signature: space-separated uint32"),
                "minhash-scheme": ("text", "scheme, num_perm, ngram, seed"),
                "shingles": ("counter", "number of shingles of the skeleton"),
                "skeleton": ("text", "normalised skeleton (only when content is shared)"),
                "example-prompt": ("text", "one prompt of a campaign account (only when content is shared)"),
            },
            ["template-id"],
        ),
        _template(
            "distillshield-keyed-hash",
            f"A value matched without being revealed: {KEYED_SCHEME}, HMAC-SHA256 under a "
            "community key shared out of band, named by its key id.",
            {
                "kind": ("text", "payment or metadata"),
                "key-id": ("text", "first 8 bytes of SHA-256 of the community key, hex"),
                "hmac-sha256": ("text", "the keyed hash, hex"),
                "keyed-scheme": ("text", KEYED_SCHEME),
                "raw-value": ("text", "the raw value (only when content is shared)"),
            },
            ["kind", "key-id", "hmac-sha256"],
        ),
    )
}

#: MISP distribution per TLP level: red / amber+strict -> your organisation only,
#: amber -> this community, green -> connected communities, clear -> all.
_DISTRIBUTION = {"red": 0, "amber+strict": 0, "amber": 1, "green": 2, "clear": 3}


def misp_tag(key: str, value: str) -> str:
    """A ``distillshield:<key>="<value>"`` machine tag."""
    return f'distillshield:{key}="{value}"'


def _uuid(ind: ExportIndicator, producer: str) -> str:
    return stix_id("indicator", producer, ind.kind, ind.value, ind.tls or "").split("--", 1)[1]


def _tags(ind: ExportIndicator, c: ExportCampaign) -> list[str]:
    tags = [misp_tag("campaign", c.id), misp_tag("kind", "asn-name" if ind.kind == "asn" else ind.kind)]
    if c.actor:
        tags.append(misp_tag("operator", c.actor))
    tags.append(misp_tag("confidence", str(ind.confidence)))
    return tags


def _attribute(ev: MISPEvent, typ: str, value: str, uid: str, comment: str, tags: list[str]) -> None:
    attr = ev.add_attribute(typ, value, uuid=uid, to_ids=True, comment=comment)
    assert isinstance(attr, MISPAttribute)  # one value gives one attribute
    for tag in tags:
        attr.add_tag(tag)


def _object(
    name: str,
    uid: str,
    attrs: list[tuple[str, str | int]],
    comment: str,
    tags: list[str],
    *,
    to_ids: bool = True,
) -> MISPObject:
    """A MISP object of our template ``name`` (or of PyMISP's bundled one), every attribute tagged."""
    custom = MISP_OBJECT_TEMPLATES.get(name)
    obj = (
        MISPObject(name, standalone=False, misp_objects_template_custom=custom)
        if custom
        else MISPObject(name, standalone=False)
    )
    obj.uuid = uid
    obj.comment = comment
    for rel, value in attrs:
        attr = obj.add_attribute(rel, value=value, uuid=det_uuid("misp-attribute", uid, rel), to_ids=to_ids)
        if attr is None:
            raise IntelError(f"MISP object {name}: attribute {rel!r} was refused")
        for tag in tags:
            attr.add_tag(tag)
    return obj


def export_misp(
    det_dir: str | Path,
    *,
    data: str | Path | None = None,
    tlp: str = "amber",
    share_content: bool = False,
    community_key: bytes,
    producer: str = "distillshield",
    min_members: int = 3,
    min_specificity: float = 0.95,
    export_asn: bool = False,
) -> dict[str, Any]:
    """One MISP event (``{"Event": {...}}``, MISP's JSON) with the indicators of ``det_dir``.

    Same content, hashing and privacy rules as :func:`~distillshield.intel.export_stix`.
    """
    from distillshield.intel.stix import _campaign_description, _indicator_description

    level = tlp_level(tlp)
    col = collect(
        det_dir,
        data=data,
        community_key=community_key,
        share_content=share_content,
        min_members=min_members,
        min_specificity=min_specificity,
        asn=export_asn,
    )
    ev = MISPEvent()
    ev.uuid = det_uuid("misp-event", producer, *(c.id for c in col.campaigns))
    ev.info = (
        f"distillshield: {len(col.campaigns)} distillation campaign(s) reported by {producer} "
        f"(data until {col.as_of.date().isoformat()})"
    )
    ev.date = col.as_of.date()
    ev.distribution = _DISTRIBUTION[level]
    ev.threat_level_id = 2
    ev.analysis = 2
    ev.add_tag(f"tlp:{level}")
    ev.add_tag(misp_tag("producer", producer))
    camps = {c.id: c for c in col.campaigns}
    for c in col.campaigns:
        tags = [misp_tag("campaign", c.id)] + ([misp_tag("operator", c.actor)] if c.actor else [])
        uid = stix_id("campaign", producer, c.id).split("--", 1)[1]
        attrs: list[tuple[str, str | int]] = [
            ("text", _campaign_description(c)),
            ("type", "campaign summary"),
        ]
        ev.add_object(_object("annotation", uid, attrs, f"campaign {c.id}", tags, to_ids=False))
    for ind in col.indicators:
        c = camps[ind.campaign_id]
        tags = _tags(ind, c)
        uid = _uuid(ind, producer)
        comment = _indicator_description(ind, c, col.measured)
        if ind.kind in ("ipv4", "ipv6", "cidr"):
            _attribute(ev, "ip-src", ind.value, uid, comment, tags)
        elif ind.kind == "asn":
            _attribute(ev, "text", ind.value, uid, "autonomous system name. " + comment, tags)
        elif ind.kind == "user_agent" and not ind.tls:
            _attribute(ev, "user-agent", ind.value, uid, comment, tags)
        elif ind.kind == "user_agent":
            attrs = [("user-agent", ind.value), ("tls-fingerprint", ind.tls or "")]
            ev.add_object(_object("distillshield-client", uid, attrs, comment, tags))
        elif ind.kind == "template_id":
            attrs = [("template-id", ind.value)]
            if ind.minhash is not None:
                scheme = " ".join(f"{k}={v}" for k, v in MINHASH_SCHEME.items())
                attrs += [
                    ("minhash", " ".join(str(x) for x in ind.minhash)),
                    ("minhash-scheme", scheme),
                    ("shingles", int(ind.shingles or 0)),
                ]
            if ind.skeleton is not None:
                attrs.append(("skeleton", ind.skeleton))
            if ind.example is not None:
                attrs.append(("example-prompt", ind.example))
            ev.add_object(_object("distillshield-template-fingerprint", uid, attrs, comment, tags))
        else:  # payment_hash, meta
            attrs = [
                ("kind", "payment" if ind.kind == "payment_hash" else "metadata"),
                ("key-id", ind.key_id or ""),
                ("hmac-sha256", ind.value),
                ("keyed-scheme", KEYED_SCHEME),
            ]
            if ind.raw is not None:
                attrs.append(("raw-value", ind.raw))
            ev.add_object(_object("distillshield-keyed-hash", uid, attrs, comment, tags))
    out: dict[str, Any] = json.loads(ev.to_json())
    return {"Event": out}
