"""What an export may share: campaigns and their *specific* indicators, hashed where needed.

An indicator is exported only when it is specific to one campaign: used by at least
``min_members`` of its accounts and by (almost) no account outside it. With the prepared
data, specificity is measured on the whole traffic — :func:`~distillshield.gateway.build_verdicts`
measures payment fingerprints, client fingerprints (user agent + TLS), template ids,
request metadata and /24 prefixes; this module adds single IP addresses by the same rule,
and AS names on request. Without the data only what the campaign dossiers make specific by construction is
exported: the payment fingerprints shared by ``min_members`` or more members (keyed hashes).
A campus NAT, a cloud ASN or a popular SDK is shared with legitimate customers and never
leaves as a campaign indicator.

Raw values never leave unless ``share_content``: payment fingerprints and metadata pairs are
keyed hashes (:mod:`distillshield.intel._keyed`); templates are their id and MinHash signature.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distillshield.intel._common import MINHASH_SCHEME, IntelError, parse_ts
from distillshield.intel._keyed import key_id, keyed_hash, meta_pairs

__all__ = ["Collected", "ExportCampaign", "ExportIndicator", "collect"]

#: Characters of an example prompt kept with ``share_content``.
EXAMPLE_CHARS = 2000
#: AS names are exported only on request (``asn=True``), and only when *no* account outside
#: the campaign used them, at half confidence: an AS is large, and at a peer with other
#: customers it is not as specific as here (measured: docs/intel.md).
ASN_MIN_SPECIFICITY = 1.0
ASN_CONFIDENCE_FACTOR = 0.5
#: Confidence factor for indicators whose specificity was not measured (export without data).
UNMEASURED_FACTOR = 0.7
_FALLBACK_AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExportIndicator:
    """One indicator as it will be shared (``value`` is already hashed for keyed kinds)."""

    kind: str  # ipv4 | ipv6 | cidr | asn | user_agent | template_id | payment_hash | meta
    value: str
    campaign_id: str
    members: int
    specificity: float | None  # None: not measured (exported without the data)
    confidence: int = 0  # 0-100: campaign score x specificity (see :func:`collect`)
    tls: str | None = None  # user_agent: the TLS fingerprint it was seen with
    key_id: str | None = None  # keyed kinds
    raw: str | None = None  # keyed kinds: raw value (shared only with share_content)
    minhash: tuple[int, ...] | None = None  # template_id: MinHash of its skeleton
    shingles: int | None = None
    skeleton: str | None = None  # share_content only
    example: str | None = None  # share_content only


@dataclass(frozen=True, slots=True)
class ExportCampaign:
    """The parts of a campaign dossier that are shared (no account ids, no raw evidence)."""

    id: str
    actor: str | None
    score: float
    size: int
    exchanges: int
    first_seen: datetime
    last_seen: datetime
    created: datetime
    capability_mix: tuple[tuple[str, float], ...]
    cot_share: float | None
    pivot_model: str | None
    pivot_share: float | None


@dataclass(frozen=True)
class Collected:
    campaigns: tuple[ExportCampaign, ...]
    indicators: tuple[ExportIndicator, ...]
    as_of: datetime  # the data horizon of the scan: every object's ``modified``
    measured: bool  # specificity measured on the data
    key_id: str


def _read_campaigns(det: Path) -> list[dict[str, Any]]:
    path = det / "campaigns.json"
    if not path.is_file() or not (det / "accounts.parquet").is_file():
        raise IntelError(f"{det}: not a detection directory (needs accounts.parquet and campaigns.json)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntelError(f"{path}: unreadable: {exc}") from exc
    camps = doc.get("campaigns") if isinstance(doc, dict) else doc
    if not isinstance(camps, list) or not all(isinstance(c, dict) and "id" in c for c in camps):
        raise IntelError(f"{path}: not a list of campaigns")
    return camps


def _scan_as_of(det: Path, camps: list[dict[str, Any]]) -> datetime:
    try:
        doc = json.loads((det / "scan.json").read_text(encoding="utf-8"))
        until = parse_ts(doc.get("summary", {}).get("until"))
    except (OSError, ValueError, AttributeError):
        until = None
    if until is not None:
        return until
    seen = [t for t in (parse_ts(c.get("last_seen")) for c in camps) if t is not None]
    return max(seen) if seen else _FALLBACK_AS_OF


def _campaign(c: dict[str, Any], as_of: datetime) -> ExportCampaign:
    first = parse_ts(c.get("first_seen")) or as_of
    last = max(parse_ts(c.get("last_seen")) or first, first)
    created = min(parse_ts(c.get("first_flagged_at")) or first, as_of)
    mix = c.get("capability_mix") or {}
    pivot = c.get("release_pivot") or {}
    share = max(float(pivot.get("share_24h") or 0.0), float(pivot.get("share_48h") or 0.0)) if pivot else None
    cot = c.get("cot_elicitation_share")
    return ExportCampaign(
        id=str(c["id"]),
        actor=str(c["actor"]) if c.get("actor") else None,
        score=float(c.get("score") or 0.0),
        size=int(c.get("size") or len(c.get("accounts") or [])),
        exchanges=int(c.get("exchanges") or 0),
        first_seen=first,
        last_seen=last,
        created=created,
        capability_mix=tuple(sorted(((str(k), float(v)) for k, v in mix.items()), key=lambda kv: -kv[1])),
        cot_share=float(cot) if cot is not None else None,
        pivot_model=str(pivot["model"]) if pivot and pivot.get("model") else None,
        pivot_share=share,
    )


def _members(det: Path) -> dict[str, str]:
    table = pq.read_table(det / "accounts.parquet", columns=["account_id", "campaign_id"])
    return {
        a: c
        for a, c in zip(
            table.column("account_id").to_pylist(), table.column("campaign_id").to_pylist(), strict=True
        )
        if c is not None
    }


#: Extra indicator kinds measured here with build_verdicts' rule: SQL yielding (account_id, value).
_EXTRA_SQL: dict[str, str] = {
    "ip": "SELECT DISTINCT account_id, ip AS value FROM ex WHERE ip IS NOT NULL",
    "asn": "SELECT DISTINCT ex.account_id, enr.asn_name AS value FROM ex JOIN enr USING (request_id) "
    "WHERE enr.asn_name IS NOT NULL AND enr.asn_name <> ''",
}


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*cols, strict=True))


def _measure(
    data: Path,
    members: Mapping[str, str],
    templates: Mapping[str, str],
    *,
    min_members: int,
    min_specificity: float,
    share_content: bool,
    asn: bool,
) -> tuple[
    list[tuple[str, str, str, int, float]], dict[str, tuple[tuple[int, ...], int, str | None, str | None]]
]:
    """Specific IPs and AS names; MinHash (and, with ``share_content``, skeleton and an example
    prompt of a campaign member) of each exported template id."""
    from distillshield.backends import open_backend
    from distillshield.features.account import register_dataset
    from distillshield.gateway.verdicts import specific_values

    extra: list[tuple[str, str, str, int, float]] = []
    fingerprints: dict[str, tuple[tuple[int, ...], int, str | None, str | None]] = {}
    with open_backend("duckdb") as backend:
        register_dataset(backend, data)
        backend.register(
            "_ds_members", pa.table({"account_id": list(members), "campaign_id": list(members.values())})
        )
        for kind, src in _EXTRA_SQL.items():
            if kind == "asn" and not asn:
                continue
            best = specific_values(
                backend, src, "_ds_members", min_members=min_members, min_specificity=min_specificity
            )
            extra += [(kind, v, c, n, s) for v, (c, n, s) in best.items()]
        if templates:
            fingerprints = _template_fingerprints(backend, data, templates, share_content=share_content)
    return extra, fingerprints


def _template_fingerprints(
    backend: Any, data: Path, templates: Mapping[str, str], *, share_content: bool
) -> dict[str, tuple[tuple[int, ...], int, str | None, str | None]]:
    """template id -> (minhash, shingles, skeleton, example prompt) from a prompt of a member of
    the campaign the template is exported for (never a legitimate customer's prompt)."""
    import numpy as np

    from distillshield.schema import TEMPLATE_FINGERPRINTS, table_paths
    from distillshield.signals.template import signatures, skeleton

    backend.register(
        "_ds_wanted", pa.table({"template_id": list(templates), "campaign_id": list(templates.values())})
    )
    reps = backend.query(
        "SELECT sig.template_id, arg_min(ex.prompt, ex.request_id) AS prompt "
        "FROM ex JOIN sig USING (request_id) JOIN _ds_members m USING (account_id) "
        "JOIN _ds_wanted w ON w.template_id = sig.template_id AND w.campaign_id = m.campaign_id "
        "WHERE ex.prompt IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    out: dict[str, tuple[tuple[int, ...], int, str | None, str | None]] = {}
    if reps.num_rows:
        skel = skeleton(reps.column("prompt"))
        sig, nsh = signatures(
            skel, num_perm=int(MINHASH_SCHEME["num_perm"]), ngram=int(MINHASH_SCHEME["ngram"]), seed=0
        )
        ids = reps.column("template_id").to_pylist()
        prompts = reps.column("prompt").to_pylist()
        skels = skel.to_pylist()
        for i, tid in enumerate(ids):
            out[str(tid)] = (
                tuple(int(x) for x in sig[i]),
                int(nsh[i]),
                skels[i] if share_content else None,
                str(prompts[i])[:EXAMPLE_CHARS] if share_content else None,
            )
    missing = [t for t in templates if t not in out]
    if missing and table_paths(data, TEMPLATE_FINGERPRINTS, optional=True):
        # ingested without content: the signatures ingest kept (no skeleton, no example)
        backend.register("_ds_fp", data / TEMPLATE_FINGERPRINTS.name)
        fp = backend.query(
            "SELECT template_id, any_value(minhash) AS minhash, any_value(shingles) AS shingles "
            "FROM _ds_fp WHERE template_id IN (SELECT template_id FROM _ds_wanted) GROUP BY 1"
        )
        for tid, mh, nsh in _rows(fp):
            if tid in templates and tid not in out and mh is not None:
                vec = np.asarray(mh, dtype=np.uint32)
                out[str(tid)] = (tuple(int(x) for x in vec), int(nsh or 0), None, None)
    return out


def _ip_kind(value: str) -> tuple[str, str] | None:
    try:
        if "/" in value:
            return "cidr", str(ipaddress.ip_network(value, strict=False))
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    return ("ipv4" if addr.version == 4 else "ipv6"), str(addr)


def _covered(
    cid: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, prefixes: set[tuple[str, int, int, int]]
) -> bool:
    """Whether ``addr`` lies in a prefix (``(campaign, version, length, network)``) of ``cid``."""
    bits = 32 if addr.version == 4 else 128
    value = int(addr)
    lengths = {p[2] for p in prefixes if p[0] == cid and p[1] == addr.version}
    return any((cid, addr.version, n, value >> (bits - n) << (bits - n)) in prefixes for n in lengths)


def collect(
    det_dir: str | Path,
    *,
    data: str | Path | None,
    community_key: bytes,
    share_content: bool,
    min_members: int = 3,
    min_specificity: float = 0.95,
    asn: bool = False,
) -> Collected:
    """Campaigns of ``det_dir`` and their specific indicators, ready to serialise."""
    from distillshield.gateway.verdicts import build_verdicts

    det = Path(det_dir)
    kid = key_id(community_key)
    camps = _read_campaigns(det)
    as_of = _scan_as_of(det, camps)
    campaigns = tuple(sorted((_campaign(c, as_of) for c in camps), key=lambda c: c.id))
    known = {c.id for c in campaigns}
    verdicts = build_verdicts(det, data=data, min_members=min_members, min_specificity=min_specificity)
    measured = data is not None
    out: dict[tuple[str, str], ExportIndicator] = {}

    def add(ind: ExportIndicator) -> None:
        if ind.campaign_id not in known:
            return
        key = (ind.kind, ind.value)
        old = out.get(key)
        if old is None or (ind.members, ind.campaign_id) > (old.members, old.campaign_id):
            out[key] = ind

    spec_of = (lambda s: float(s)) if measured else (lambda s: None)
    templates: dict[str, str] = {}
    for (kind, value), ind in sorted(verdicts.indicators.items()):
        cid, n, spec = ind.campaign_id, ind.members, spec_of(ind.specificity)
        if kind == "payment":
            add(
                ExportIndicator(
                    "payment_hash", keyed_hash(community_key, "payment", value), cid, n, spec,
                    key_id=kid, raw=value if share_content else None,
                )
            )  # fmt: skip
        elif kind == "meta":
            for pair in meta_pairs(value):
                add(
                    ExportIndicator(
                        "meta", keyed_hash(community_key, "metadata", pair), cid, n, spec,
                        key_id=kid, raw=pair if share_content else None,
                    )
                )  # fmt: skip
        elif kind == "client":
            ua, _, tls = value.rpartition(" | ")
            if ua:
                add(ExportIndicator("user_agent", ua, cid, n, spec, tls=tls or None))
        elif kind == "template":
            templates[value] = cid
        elif kind == "prefix":
            parsed = _ip_kind(value if "/" in value else value + "/32")
            if parsed:
                add(ExportIndicator("cidr", parsed[1], cid, n, spec))
    extra: list[tuple[str, str, str, int, float]] = []
    fps: dict[str, tuple[tuple[int, ...], int, str | None, str | None]] = {}
    if data is not None:
        members = _members(det)
        if members:
            extra, fps = _measure(
                Path(data),
                members,
                templates,
                min_members=min_members,
                min_specificity=min_specificity,
                share_content=share_content,
                asn=asn,
            )
    for tid, cid in sorted(templates.items()):
        ind = verdicts.indicators[("template", tid)]
        mh, nsh, skel, example = fps.get(tid, (None, None, None, None))
        add(ExportIndicator("template_id", tid, cid, ind.members, spec_of(ind.specificity),
                            minhash=mh, shingles=nsh, skeleton=skel, example=example))  # fmt: skip
    nets = [(i.campaign_id, ipaddress.ip_network(i.value)) for i in out.values() if i.kind == "cidr"]
    prefixes: set[tuple[str, int, int, int]] = {
        (c, int(n.version), n.prefixlen, int(n.network_address)) for c, n in nets
    }
    for kind, value, cid, n, spec in extra:
        if kind == "ip":
            parsed = _ip_kind(value)
            # an address inside a prefix exported for the same campaign adds nothing
            if parsed and not _covered(cid, ipaddress.ip_address(parsed[1]), prefixes):
                add(ExportIndicator(parsed[0], parsed[1], cid, n, spec))
        elif asn and spec >= ASN_MIN_SPECIFICITY - 1e-12:
            add(ExportIndicator("asn", value, cid, n, spec))
    score = {c.id: max(0.0, min(1.0, c.score)) for c in campaigns}

    def confidence(i: ExportIndicator) -> int:
        factor = score[i.campaign_id] * (i.specificity if i.specificity is not None else UNMEASURED_FACTOR)
        if i.kind == "asn":
            factor *= ASN_CONFIDENCE_FACTOR
        return max(0, min(100, round(100 * factor)))

    indicators = tuple(
        replace(i, confidence=confidence(i))
        for i in sorted(out.values(), key=lambda i: (i.campaign_id, i.kind, i.value))
    )
    return Collected(campaigns, indicators, as_of, measured, kid)
