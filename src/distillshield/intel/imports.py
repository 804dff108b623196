"""Import peers' STIX 2.1 bundles and MISP events as an immutable :class:`IndicatorSet`.

Every source is taken whole or not at all (docs/intel.md, "Import rules"):

* **rejected** (nothing from it is used; ``ImportResult.rejected`` says why): a file larger
  than ``max_bytes``, text that is not JSON (or nested too deeply to parse), JSON that is
  neither a STIX bundle nor a MISP event, more than ``max_objects`` objects (attributes for
  MISP), objects without ``type``/``id``, a pattern longer than ``max_pattern_chars``, and any
  bundle stix2-validator finds errors in (a pattern that does not parse is such an error);
* **skipped** (the rest of the source is used; ``ImportResult.skipped`` says what and why):
  objects of types we do not know or use, revoked or expired indicators (``valid_until``
  before ``as_of``, when given), pattern types other than ``stix``, patterns or parts of
  patterns we cannot evaluate on our data (qualifiers, FOLLOWEDBY, negation, AS numbers, ...),
  prefixes broader than :data:`MIN_PREFIX`, keyed hashes under another community key.

An OR of comparisons keeps the parts we can evaluate (matching fewer alternatives never adds
a false match); an AND is evaluated only when it is one we know (user agent + TLS
fingerprint; the three properties of a keyed hash), otherwise the indicator is skipped.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from distillshield.intel._common import (
    EXT_FINGERPRINT,
    HEX16,
    HEX64,
    INDICATOR_KINDS,
    MINHASH_SCHEME,
    IntelError,
    parse_ts,
)
from distillshield.intel._keyed import check_key, key_id, keyed_hash

__all__ = [
    "MIN_PREFIX",
    "ImportResult",
    "IndicatorSet",
    "IntelIndicator",
    "load_indicators",
]

#: Shortest prefix accepted per IP version: a /0 from a careless or hostile peer would
#: otherwise "match" every account.
MIN_PREFIX = {4: 16, 6: 32}
#: Longest pattern accepted (characters), checked before any parsing.
MAX_PATTERN_CHARS = 65_536
#: Skip messages kept per (source, reason); the rest are counted.
_SKIP_EXAMPLES = 5

_KNOWN_TYPES = frozenset(
    # STIX 2.1 SDOs, SROs, SCOs and meta objects: known, even where they carry nothing we match
    [
        *("attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident"),
        *("indicator", "infrastructure", "intrusion-set", "location", "malware", "malware-analysis"),
        *("note", "observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability"),
        *("relationship", "sighting", "marking-definition", "language-content", "extension-definition"),
        *("artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message"),
        *("file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process"),
        *("software", "url", "user-account", "windows-registry-key", "x509-certificate"),
    ]
)

_UA = "network-traffic:extensions.http-request-ext.request_header.User-Agent"
_TLS = "network-traffic:x_tls_fingerprint"
_IP_PATHS = frozenset(
    {
        "ipv4-addr:value",
        "ipv6-addr:value",
        "network-traffic:src_ref.value",
        "network-traffic:dst_ref.value",
    }
)
_TEMPLATE = "x-distillshield-prompt-template:template_id"
_KEYED = (
    "x-distillshield-keyed-hash:kind",
    "x-distillshield-keyed-hash:key_id",
    "x-distillshield-keyed-hash:hmac_sha256",
)


@dataclass(frozen=True, slots=True)
class IntelIndicator:
    """One indicator a peer shared, in the form the hunt matches.

    ``value``: an IP, a prefix (``cidr``), an AS name (``asn``), a user agent, a template id
    (for ``template_minhash`` too: the peer's template id, with ``minhash`` its signature), or
    a keyed hash under *our* community key (``payment_hash``, ``meta``). ``ref`` is the peer's
    STIX id for it (a MISP attribute's UUID becomes ``indicator--<uuid>``): sightings name it.
    """

    kind: str
    value: str
    campaign: str = ""  # the peer's campaign name ("" when the indicator names none)
    source: str = ""  # the producer (identity name, or the file)
    ref: str = ""
    confidence: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    tls: str | None = None  # user_agent: the TLS fingerprint must match too
    minhash: tuple[int, ...] | None = None  # template_minhash
    shingles: int | None = None


@dataclass(frozen=True)
class IndicatorSet:
    """Peers' indicators, immutable, deduplicated and sorted; grouped per kind."""

    items: tuple[IntelIndicator, ...] = ()
    by_kind: Mapping[str, tuple[IntelIndicator, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = {i.kind for i in self.items} - set(INDICATOR_KINDS)
        if unknown:
            raise IntelError(f"unknown indicator kind(s) {sorted(unknown)}; known: {INDICATOR_KINDS}")
        items = tuple(sorted(set(self.items), key=_sort_key))
        object.__setattr__(self, "items", items)
        groups: dict[str, list[IntelIndicator]] = {k: [] for k in INDICATOR_KINDS}
        for i in items:
            groups[i.kind].append(i)
        object.__setattr__(self, "by_kind", MappingProxyType({k: tuple(v) for k, v in groups.items()}))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[IntelIndicator]:
        return iter(self.items)

    def of(self, kind: str) -> tuple[IntelIndicator, ...]:
        """The indicators of one kind."""
        return self.by_kind.get(kind, ())

    def values(self, kind: str) -> frozenset[str]:
        """The distinct values of one kind."""
        return frozenset(i.value for i in self.of(kind))

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.by_kind.items() if v}

    def campaigns(self) -> tuple[str, ...]:
        return tuple(sorted({i.campaign for i in self.items}))

    def union(self, other: IndicatorSet) -> IndicatorSet:
        return IndicatorSet(self.items + other.items)


def _sort_key(i: IntelIndicator) -> tuple[str, ...]:
    return (i.kind, i.value, i.campaign, i.source, i.ref, i.tls or "")


@dataclass(frozen=True)
class ImportResult:
    """What :func:`load_indicators` took, refused and left out."""

    indicators: IndicatorSet
    rejected: list[str]  # whole sources refused, with the reason
    skipped: list[str]  # objects (or parts of patterns) left out, with the reason
    accepted: list[str] = field(default_factory=list)  # per source taken: what it gave


class _RejectError(Exception):
    pass


class _UnsupportedError(Exception):
    pass


class _Skips:
    """Skip messages grouped per reason: a hostile bundle cannot flood the report."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.reasons: dict[str, list[str]] = {}

    def add(self, reason: str, what: str) -> None:
        self.reasons.setdefault(reason, []).append(what)

    def render(self) -> list[str]:
        out = []
        for reason, whats in self.reasons.items():
            shown = ", ".join(whats[:_SKIP_EXAMPLES])
            more = f" (+{len(whats) - _SKIP_EXAMPLES} more)" if len(whats) > _SKIP_EXAMPLES else ""
            out.append(f"{self.label}: {reason}: {shown}{more}")
        return out


# --- reading -------------------------------------------------------------------------------


def _read(src: str | Path | Mapping[str, Any], index: int, max_bytes: int) -> tuple[str, Any]:
    if isinstance(src, Mapping):
        label = f"source #{index} ({src.get('id') or 'in memory'})"
        try:
            size = len(json.dumps(src, separators=(",", ":")).encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise _RejectError(f"{label}: not JSON-serialisable: {type(exc).__name__}") from exc
        if size > max_bytes:
            raise _RejectError(f"{label}: {size:,} bytes, over the limit of {max_bytes:,}")
        return label, src
    path = Path(src)
    label = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _RejectError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise _RejectError(f"{label}: not a file")
    if size > max_bytes:
        raise _RejectError(f"{label}: {size:,} bytes, over the limit of {max_bytes:,}")
    try:
        return label, json.loads(path.read_bytes())
    except RecursionError as exc:
        raise _RejectError(f"{label}: not JSON: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise _RejectError(f"{label}: not JSON: {exc}") from exc


def _misp_events(doc: Any) -> list[dict[str, Any]] | None:
    """The MISP events in ``doc`` ({"Event": ...}, a bare event, a search response), or None."""
    if isinstance(doc, dict):
        if isinstance(doc.get("Event"), dict):
            return [doc["Event"]]
        if isinstance(doc.get("response"), list):
            events = [e.get("Event") if isinstance(e, dict) else None for e in doc["response"]]
            return events if events and all(isinstance(e, dict) for e in events) else None  # type: ignore[return-value]
        if "info" in doc and ("Attribute" in doc or "Object" in doc):
            return [doc]
    return None


def load_indicators(
    sources: Sequence[str | Path | Mapping[str, Any]],
    *,
    community_key: bytes | None,
    max_bytes: int = 50_000_000,
    max_objects: int = 200_000,
    as_of: datetime | str | None = None,
    max_pattern_chars: int = MAX_PATTERN_CHARS,
    workers: int = 1,
) -> ImportResult:
    """Indicators from peers' STIX bundles and MISP events (files or parsed JSON).

    ``community_key`` lets keyed hashes match (and raw shared values be hashed); without it
    they are skipped. ``as_of`` (e.g. now) skips indicators whose ``valid_until`` is before it;
    by default none is skipped for age, since a retro-hunt looks at past traffic.
    ``workers`` is passed to :func:`~distillshield.intel.validate_bundle`.
    """
    key = check_key(community_key) if community_key is not None else None
    when = parse_ts(as_of) if as_of is not None else None
    if as_of is not None and when is None:
        raise IntelError(f"as_of {as_of!r} is not a timestamp")
    indicators: list[IntelIndicator] = []
    rejected: list[str] = []
    skipped: list[str] = []
    accepted: list[str] = []
    for index, src in enumerate(sources):
        try:
            label, doc = _read(src, index, max_bytes)
            skips = _Skips(label)
            if isinstance(doc, dict) and doc.get("type") == "bundle":
                got = _from_stix(doc, label, skips, key, when, max_objects, max_pattern_chars, workers)
                what = "STIX bundle"
            else:
                events = _misp_events(doc)
                if events is None:
                    raise _RejectError(f"{label}: neither a STIX 2.1 bundle nor a MISP event")
                got = []
                for ev in events:
                    got += _from_misp(ev, label, skips, key, max_objects)
                what = f"MISP ({len(events)} event{'s' if len(events) != 1 else ''})"
        except _RejectError as exc:
            rejected.append(str(exc))
            continue
        except (RecursionError, MemoryError) as exc:
            rejected.append(f"source #{index}: refused: {type(exc).__name__}")
            continue
        indicators += got
        skipped += skips.render()
        accepted.append(f"{label}: {what}, {len(got)} indicators")
    return ImportResult(IndicatorSet(tuple(indicators)), rejected, skipped, accepted)


# --- STIX ----------------------------------------------------------------------------------


def _from_stix(
    doc: dict[str, Any],
    label: str,
    skips: _Skips,
    key: bytes | None,
    as_of: datetime | None,
    max_objects: int,
    max_pattern_chars: int,
    workers: int,
) -> list[IntelIndicator]:
    from distillshield.intel.stix import validate_bundle

    objects = doc.get("objects", [])
    if not isinstance(objects, list):
        raise _RejectError(f"{label}: bundle 'objects' is not a list")
    if len(objects) > max_objects:
        raise _RejectError(f"{label}: {len(objects):,} objects, over the limit of {max_objects:,}")
    for i, obj in enumerate(objects):
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("type"), str)
            or not isinstance(obj.get("id"), str)
        ):
            raise _RejectError(f"{label}: object #{i} is not a STIX object (needs string 'type' and 'id')")
        pattern = obj.get("pattern")
        if isinstance(pattern, str) and len(pattern) > max_pattern_chars:
            raise _RejectError(
                f"{label}: {obj['id']}: pattern of {len(pattern):,} characters (limit {max_pattern_chars:,})"
            )
    errors = validate_bundle(doc, workers=workers)
    if errors:
        raise _RejectError(f"{label}: invalid STIX 2.1 ({len(errors)} errors), e.g. {'; '.join(errors[:3])}")
    by_id = {o["id"]: o for o in objects}
    names = {o["id"]: str(o.get("name") or o["id"]) for o in objects}
    indicates: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    for o in objects:
        if o["type"] != "relationship" or o.get("revoked"):
            continue
        src, rel, dst = o.get("source_ref"), o.get("relationship_type"), o.get("target_ref")
        if rel == "indicates":
            indicates.setdefault(str(src), []).append(str(dst))
        elif rel == "uses" and str(src).startswith("campaign--"):
            users.setdefault(str(dst), []).append(str(src))

    def campaigns_of(ind_id: str) -> list[str]:
        out: set[str] = set()
        for dst in indicates.get(ind_id, []):
            if dst.startswith("campaign--"):
                out.add(names.get(dst, dst))
            elif dst.startswith("infrastructure--") and users.get(dst):
                out |= {names.get(c, c) for c in users[dst]}
            elif dst in by_id:
                out.add(names.get(dst, dst))
        return sorted(out) or [""]

    result: list[IntelIndicator] = []
    for o in objects:
        otype, oid = o["type"], o["id"]
        if otype not in _KNOWN_TYPES:
            skips.add(f"unknown object type {otype[:60]!r}", oid[:100])
            continue
        if otype != "indicator":
            continue
        creator = by_id.get(str(o.get("created_by_ref")), {})
        source = str(creator.get("name") or o.get("created_by_ref") or label)
        result += _stix_indicator(o, source, campaigns_of(oid), skips, key, as_of)
    return result


def _stix_indicator(
    o: dict[str, Any],
    source: str,
    campaigns: list[str],
    skips: _Skips,
    key: bytes | None,
    as_of: datetime | None,
) -> list[IntelIndicator]:
    from stix2.pattern_visitor import create_pattern_object  # type: ignore[import-untyped, unused-ignore]

    oid = o["id"]
    if o.get("revoked"):
        skips.add("revoked indicator", oid)
        return []
    if o.get("pattern_type") != "stix":
        skips.add(f"pattern type {str(o.get('pattern_type'))[:40]!r} not supported", oid)
        return []
    valid_until = parse_ts(o.get("valid_until"))
    if as_of is not None and valid_until is not None and valid_until < as_of:
        skips.add("expired (valid_until before as_of)", oid)
        return []
    try:
        ast = create_pattern_object(o["pattern"], version="2.1")
    except (Exception, RecursionError) as exc:  # the validator parsed it; a second parser may not
        skips.add(f"pattern does not parse ({type(exc).__name__})", oid)
        return []
    unsupported: list[str] = []
    try:
        terms = _observation_terms(ast, unsupported)
    except _UnsupportedError as exc:
        skips.add(f"pattern not evaluable on our data: {exc}", oid)
        return []
    for reason in sorted(set(unsupported)):
        skips.add(f"part of pattern not evaluable: {reason}", oid)
    ext = (o.get("extensions") or {}).get(EXT_FINGERPRINT)
    conf = o.get("confidence")
    base = {
        "ref": oid,
        "source": source,
        "confidence": int(conf) if isinstance(conf, int) and not isinstance(conf, bool) else None,
        "valid_from": parse_ts(o.get("valid_from")),
        "valid_until": valid_until,
    }
    out: list[IntelIndicator] = []
    for term in terms:
        made = _term_indicators(term, ext, key, skips, oid)
        out += [IntelIndicator(kind, value, campaign=c, tls=tls, minhash=mh, shingles=sh, **base)
                for (kind, value, tls, mh, sh) in made for c in campaigns]  # fmt: skip
    return out


_Term = tuple[str, tuple[str, ...]]  # (kind, values): ("ip", (v,)), ("ua", (ua, tls)), ("keyed", (k, id, h))


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _path(obj_path: Any) -> str:
    parts = [str(getattr(c, "property_name", "")) for c in obj_path.property_path]
    return f"{obj_path.object_type_name}:" + ".".join(p.strip("'") for p in parts if p)


def _constants(rhs: Any) -> list[Any]:
    vals = rhs.value if type(rhs).__name__ == "ListConstant" else [rhs]
    return [_unescape(v.value) if isinstance(v.value, str) else v.value for v in vals]


def _alternatives(
    operands: Any, terms: Callable[[Any, list[str]], list[_Term]], unsupported: list[str]
) -> list[_Term]:
    """The terms of an OR: alternatives we cannot evaluate are noted and skipped (the others
    still match); an OR with none left is unsupported as a whole."""
    out: list[_Term] = []
    for op in operands:
        try:
            out += terms(op, unsupported)
        except _UnsupportedError as exc:
            unsupported.append(str(exc))
    if not out:
        raise _UnsupportedError("no alternative of the OR can be evaluated")
    return out


def _observation_terms(expr: Any, unsupported: list[str]) -> list[_Term]:
    name = type(expr).__name__
    if name == "OrObservationExpression":
        return _alternatives(expr.operands, _observation_terms, unsupported)
    if name == "ParentheticalExpression":
        return _observation_terms(expr.expression, unsupported)
    if name == "ObservationExpression":
        return _comparison_terms(expr.operand, unsupported)
    if name == "QualifiedObservationExpression":
        raise _UnsupportedError("observation qualifiers (WITHIN / REPEATS / START-STOP)")
    if name in ("AndObservationExpression", "FollowedByObservationExpression"):
        raise _UnsupportedError(f"{expr.operator} between observations")
    raise _UnsupportedError(f"expression {name}")


def _comparison_terms(expr: Any, unsupported: list[str]) -> list[_Term]:
    name = type(expr).__name__
    if name == "ParentheticalExpression":
        return _comparison_terms(expr.expression, unsupported)
    if name == "OrBooleanExpression":
        return _alternatives(expr.operands, _comparison_terms, unsupported)
    if name == "AndBooleanExpression":
        return [_conjunction(list(_flatten_and(expr)))]
    return _atom(expr)


def _flatten_and(expr: Any) -> Iterator[Any]:
    for op in expr.operands:
        name = type(op).__name__
        if name == "AndBooleanExpression":
            yield from _flatten_and(op)
        elif name == "ParentheticalExpression" and type(op.expression).__name__ == "AndBooleanExpression":
            yield from _flatten_and(op.expression)
        else:
            yield op


def _equality(expr: Any) -> tuple[str, Any]:
    name = type(expr).__name__
    if name != "EqualityComparisonExpression" or expr.negated:
        negated = "negated " if getattr(expr, "negated", False) else ""
        raise _UnsupportedError(f"{negated}{getattr(expr, 'operator', name)} inside AND")
    vals = _constants(expr.rhs)
    return _path(expr.lhs), vals[0]


def _conjunction(parts: list[Any]) -> _Term:
    pairs = dict(_equality(p) for p in parts)
    if set(pairs) == {_UA, _TLS}:
        return ("ua", (str(pairs[_UA]), str(pairs[_TLS])))
    if set(pairs) == set(_KEYED):
        return ("keyed", tuple(str(pairs[p]) for p in _KEYED))
    raise _UnsupportedError("AND of " + " & ".join(sorted(pairs))[:200])


def _atom(expr: Any) -> list[_Term]:
    name = type(expr).__name__
    if getattr(expr, "negated", False):
        raise _UnsupportedError("negated comparison")
    if name not in ("EqualityComparisonExpression", "InComparisonExpression", "IsSubsetComparisonExpression"):
        raise _UnsupportedError(f"operator {getattr(expr, 'operator', name)}")
    path = _path(expr.lhs)
    values = _constants(expr.rhs)
    if path in _IP_PATHS:
        return [("ip", (str(v),)) for v in values]
    if name == "IsSubsetComparisonExpression":
        raise _UnsupportedError(f"ISSUBSET on {path}")
    if path == "autonomous-system:name":
        return [("asn", (str(v),)) for v in values]
    if path == "autonomous-system:number":
        raise _UnsupportedError("AS numbers (our traffic carries AS names)")
    if path == _UA:
        return [("ua", (str(v), "")) for v in values]
    if path == _TEMPLATE:
        return [("template", (str(v),)) for v in values]
    raise _UnsupportedError(f"object path {path[:120]}")


def _term_indicators(
    term: _Term, ext: Any, key: bytes | None, skips: _Skips, oid: str
) -> list[tuple[str, str, str | None, tuple[int, ...] | None, int | None]]:
    kind, vals = term
    if kind == "ip":
        got = _ip_value(vals[0])
        if isinstance(got, str):
            skips.add(got, oid)
            return []
        return [(got[0], got[1], None, None, None)]
    if kind == "asn":
        name = _asn(vals[0])
        return [("asn", name, None, None, None)] if name else []
    if kind == "ua":
        ua = vals[0].strip()
        return [("user_agent", ua, vals[1] or None, None, None)] if ua else []
    if kind == "template":
        tid = vals[0].strip().lower()
        if not HEX16.match(tid):
            skips.add("template id is not 16 hex digits", oid)
            return []
        out: list[tuple[str, str, str | None, tuple[int, ...] | None, int | None]] = [
            ("template_id", tid, None, None, None)
        ]
        mh = _minhash(ext, tid)
        if isinstance(mh, str):
            skips.add(mh, oid)
        elif mh is not None:
            out.append(("template_minhash", tid, None, mh[0], mh[1]))
        return out
    # keyed: (kind, key_id, hmac)
    hashed = _keyed_value(vals[0], vals[1], vals[2], _raw_of(ext), key)
    if isinstance(hashed, str) and hashed.startswith("!"):
        skips.add(hashed[1:], oid)
        return []
    return [("payment_hash" if vals[0] == "payment" else "meta", hashed, None, None, None)]


def _ip_value(value: str) -> tuple[str, str] | str:
    """``(kind, canonical value)`` or a skip reason."""
    try:
        if "/" in value:
            net = ipaddress.ip_network(value.strip(), strict=False)
            if net.prefixlen == net.max_prefixlen:
                return ("ipv4" if net.version == 4 else "ipv6"), str(net.network_address)
            if net.prefixlen < MIN_PREFIX[net.version]:
                return f"prefix broader than /{MIN_PREFIX[net.version]}"
            return "cidr", str(net)
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return "not an IP address or prefix"
    return ("ipv4" if addr.version == 4 else "ipv6"), str(addr)


def _asn(value: str) -> str:
    """AS names compare case-insensitively, whitespace collapsed."""
    return " ".join(str(value).split()).casefold()


def _raw_of(ext: Any) -> str | None:
    if (
        isinstance(ext, dict)
        and ext.get("fingerprint_type") == "keyed-hash"
        and isinstance(ext.get("raw_value"), str)
    ):
        return str(ext["raw_value"])
    return None


def _keyed_value(kind: str, kid: str, value: str, raw: str | None, key: bytes | None) -> str:
    """The hash under our key, or ``"!" + reason``."""
    if kind not in ("payment", "metadata"):
        return f"!keyed hash of unknown kind {kind[:40]!r}"
    if key is None:
        return "!keyed hash: no community key given"
    if raw is not None:  # the peer shared the raw value: hash it under our key
        try:
            return keyed_hash(key, kind, raw)
        except IntelError:
            return "!keyed hash: raw value unusable"
    if kid != key_id(key):
        return f"!keyed with community key {kid[:16]!r}, ours is {key_id(key)!r}"
    value = value.strip().lower()
    if not HEX64.match(value):
        return "!keyed hash is not 64 hex digits"
    return value


def _minhash(ext: Any, tid: str) -> tuple[tuple[int, ...], int | None] | str | None:
    """The template's MinHash signature from the fingerprint extension, a skip reason, or None."""
    if not isinstance(ext, dict) or ext.get("fingerprint_type") != "template" or "minhash" not in ext:
        return None
    if ext.get("template_id") not in (None, tid):
        return "fingerprint extension names another template id"
    for k, v in MINHASH_SCHEME.items():
        got = ext.get("minhash_scheme") if k == "scheme" else ext.get(k)
        if got != v:
            return f"MinHash {k} {str(got)[:40]!r} differs from ours ({v}): signature not comparable"
    sig = ext.get("minhash")
    n = int(MINHASH_SCHEME["num_perm"])
    if (
        not isinstance(sig, list)
        or len(sig) != n
        or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in sig)
    ):
        return f"MinHash signature is not {n} unsigned 32-bit integers"
    sh = ext.get("shingles")
    return tuple(sig), (int(sh) if isinstance(sh, int) and not isinstance(sh, bool) else None)


# --- MISP ----------------------------------------------------------------------------------


def _tag_value(tags: Iterable[Any], key: str) -> str | None:
    prefix = f'distillshield:{key}="'
    for t in tags:
        name = getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None)
        if isinstance(name, str) and name.startswith(prefix) and name.endswith('"'):
            return name[len(prefix) : -1]
    return None


def _from_misp(
    event: dict[str, Any], label: str, skips: _Skips, key: bytes | None, max_objects: int
) -> list[IntelIndicator]:
    from pymisp import MISPEvent

    attrs = event.get("Attribute") or []
    objs = event.get("Object") or []
    if not isinstance(attrs, list) or not isinstance(objs, list):
        raise _RejectError(f"{label}: MISP event 'Attribute' / 'Object' are not lists")
    total = len(attrs) + sum(len(o.get("Attribute") or []) if isinstance(o, dict) else 1 for o in objs)
    if total > max_objects:
        raise _RejectError(f"{label}: {total:,} MISP attributes, over the limit of {max_objects:,}")
    ev = MISPEvent()
    try:
        ev.from_dict(**copy.deepcopy(event))  # PyMISP pops keys from what it reads
    except Exception as exc:  # PyMISP raises many types on malformed events
        raise _RejectError(
            f"{label}: not a readable MISP event: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc
    source = _tag_value(ev.tags, "producer") or (ev.Orgc.name if getattr(ev, "Orgc", None) else "") or label
    default_campaign = _tag_value(ev.tags, "campaign") or str(getattr(ev, "info", "") or "")
    out: list[IntelIndicator] = []

    def base(tags: Iterable[Any], uid: str) -> dict[str, Any]:
        conf = _tag_value(tags, "confidence")
        return {
            "campaign": _tag_value(tags, "campaign") or default_campaign,
            "source": source,
            "ref": f"indicator--{uid}",
            "confidence": int(conf) if conf and conf.isdigit() else None,
        }

    for attr in ev.attributes:
        uid = str(attr.uuid)
        made = _misp_attribute(str(attr.type), str(attr.value), attr.tags, skips, uid)
        out += [IntelIndicator(k, v, **base(attr.tags, uid)) for k, v in made]
    for obj in ev.objects:
        uid = str(obj.uuid)
        rel = {str(a.object_relation): str(a.value) for a in obj.attributes}
        tags = [t for a in obj.attributes for t in a.tags]
        name = str(obj.name)
        if name == "distillshield-client":
            if rel.get("user-agent"):
                out.append(
                    IntelIndicator(
                        "user_agent",
                        rel["user-agent"].strip(),
                        tls=rel.get("tls-fingerprint") or None,
                        **base(tags, uid),
                    )
                )
        elif name == "distillshield-template-fingerprint":
            tid = rel.get("template-id", "").strip().lower()
            if not HEX16.match(tid):
                skips.add("template id is not 16 hex digits", uid)
                continue
            out.append(IntelIndicator("template_id", tid, **base(tags, uid)))
            mh = _misp_minhash(rel, tid)
            if isinstance(mh, str):
                skips.add(mh, uid)
            elif mh is not None:
                out.append(
                    IntelIndicator("template_minhash", tid, minhash=mh[0], shingles=mh[1], **base(tags, uid))
                )
        elif name == "distillshield-keyed-hash":
            kind = rel.get("kind", "")
            hashed = _keyed_value(
                kind, rel.get("key-id", ""), rel.get("hmac-sha256", ""), rel.get("raw-value"), key
            )
            if hashed.startswith("!"):
                skips.add(hashed[1:], uid)
                continue
            out.append(
                IntelIndicator("payment_hash" if kind == "payment" else "meta", hashed, **base(tags, uid))
            )
        elif name == "annotation":
            continue
        else:
            got = []
            for a in obj.attributes:
                got += _misp_attribute(str(a.type), str(a.value), a.tags, skips, str(a.uuid), quiet=True)
            if not got:
                skips.add(f"MISP object {name[:60]!r} carries nothing we match", uid)
            out += [IntelIndicator(k, v, **base(tags, uid)) for k, v in got]
    return out


def _misp_attribute(
    typ: str, value: str, tags: Iterable[Any], skips: _Skips, uid: str, *, quiet: bool = False
) -> list[tuple[str, str]]:
    if typ in ("ip-src", "ip-dst", "ip-src|port", "ip-dst|port"):
        got = _ip_value(value.split("|", 1)[0])
        if isinstance(got, str):
            skips.add(got, uid)
            return []
        return [got]
    if typ == "user-agent":
        return [("user_agent", value.strip())] if value.strip() else []
    if typ == "text" and _tag_value(tags, "kind") == "asn-name":
        return [("asn", _asn(value))] if value.strip() else []
    if typ == "AS":
        skips.add("AS numbers (our traffic carries AS names)", uid)
        return []
    if not quiet:
        skips.add(f"MISP attribute type {typ[:40]!r} not matched", uid)
    return []


def _misp_minhash(rel: Mapping[str, str], tid: str) -> tuple[tuple[int, ...], int | None] | str | None:
    if "minhash" not in rel:
        return None
    scheme = dict(p.split("=", 1) for p in rel.get("minhash-scheme", "").split() if "=" in p)
    if any(scheme.get(k) != str(v) for k, v in MINHASH_SCHEME.items()):
        return "MinHash scheme differs from ours: signature not comparable"
    try:
        sig = tuple(int(x) for x in rel["minhash"].split())
    except ValueError:
        return "MinHash signature is not integers"
    if len(sig) != int(MINHASH_SCHEME["num_perm"]) or not all(0 <= x < 2**32 for x in sig):
        return "MinHash signature has the wrong length or range"
    sh = rel.get("shingles", "")
    return sig, (int(sh) if sh.isdigit() else None)
