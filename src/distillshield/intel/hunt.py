"""Retro-hunt: match peers' indicators against our stored traffic and accounts.

Matching rules (docs/intel.md, "Hunt"):

==================  ======================================================================
kind                matches
==================  ======================================================================
ipv4, ipv6          an exchange from that address (both sides in canonical form)
cidr                an exchange from an address inside the prefix
asn                 an exchange whose AS *name* (derived/enrichment) equals the indicator's,
                    case-insensitively, whitespace collapsed (our data has names, not numbers)
user_agent          an exchange with that User-Agent (and that TLS fingerprint, when given)
template_id         an exchange whose prompt has that template id (derived/signals)
template_minhash    an exchange whose template's MinHash agrees with the peer's signature on
                    at least ``minhash_threshold`` of positions (LSH banding 16x4 finds the
                    candidates, as for template families); skeletons under ``min_shingles``
                    shingles are not compared
payment_hash        an account whose payment fingerprint has that keyed hash under our key
meta                an exchange whose request metadata has a ``key=value`` pair with that hash
==================  ======================================================================

An exchange after an indicator's ``valid_until`` does not match it (payment fingerprints are
a property of the account and are not windowed). An account is *reported* only when the
matches corroborate each other (:func:`_corroborated`): a keyed payment or metadata hash, or
``min_indicators`` distinct peer indicators; fewer matches are counted, not reported.

Outputs (written together, atomically, into ``out_dir``):

* ``sightings.parquet`` — one row per (reported account, indicator): peer campaign, source, kind, value,
  the peer's indicator id, confidence, MinHash similarity, matched exchanges, first/last seen;
* ``intel_evidence.parquet`` — one row per reported account: the evidence the scorer can use
  (:data:`~distillshield.schema.INTEL_EVIDENCE`; ``distillshield scan --intel`` reads it);
* ``sightings.json`` — summary, per peer campaign, per indicator, per account.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.intel._common import MINHASH_SCHEME, IntelError, stix_id, stix_ts, tlp_level
from distillshield.intel._keyed import check_key, keyed_hash, meta_pairs
from distillshield.intel.imports import IndicatorSet, IntelIndicator, _asn
from distillshield.schema import INTEL_EVIDENCE

__all__ = ["EVIDENCE_SCHEMA", "SIGHTINGS_SCHEMA", "HuntResult", "hunt", "sightings_bundle"]

_TS = pa.timestamp("us", tz="UTC")

#: ``sightings.parquet``: one row per (account, indicator).
SIGHTINGS_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("peer_campaign", pa.string()),
        pa.field("source", pa.string()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("indicator_ref", pa.string()),
        pa.field("confidence", pa.int32()),
        pa.field("similarity", pa.float64()),
        pa.field("exchanges", pa.int64(), nullable=False),
        pa.field("first_seen", _TS),
        pa.field("last_seen", _TS),
    ]
)

#: ``intel_evidence.parquet``: what the peers' intelligence says about each matched account
#: (the contract ``distillshield scan --intel`` reads).
EVIDENCE_SCHEMA = INTEL_EVIDENCE.schema

#: Confidence assumed for an indicator that states none (0-100).
DEFAULT_CONFIDENCE = 50
#: Weight of a near-duplicate template match (MinHash, not the same template id) in the
#: evidence: legitimate prompts can resemble a harvesting wrapper (benchmark questions with
#: "think step by step"), an identical wrapper much less often.
NEAR_DUPLICATE_WEIGHT = 0.5


@dataclass(frozen=True)
class HuntResult:
    """What a hunt found (also written to ``out_dir``)."""

    sightings: pa.Table  # SIGHTINGS_SCHEMA
    evidence: pa.Table  # EVIDENCE_SCHEMA
    campaigns: list[dict[str, Any]]  # per peer campaign
    indicators: list[dict[str, Any]]  # per peer indicator matched (ref, kind, accounts, exchanges, ...)
    summary: dict[str, Any]
    out_dir: Path


# --- value maps computed in Python (canonical forms, keyed hashes, LSH) ---------------------


def _ip_map(ips: list[str], items: tuple[IntelIndicator, ...]) -> list[tuple[str, int]]:
    """(our ip string, indicator index) for exact addresses and prefixes."""
    exact: dict[str, list[int]] = defaultdict(list)
    nets: dict[tuple[int, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, ind in enumerate(items):
        if ind.kind in ("ipv4", "ipv6"):
            exact[ind.value].append(i)
        elif ind.kind == "cidr":
            net = ipaddress.ip_network(ind.value)
            nets[(net.version, net.prefixlen)][int(net.network_address)].append(i)
    out: list[tuple[str, int]] = []
    if not exact and not nets:
        return out
    for ip in ips:
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            continue
        out += [(ip, j) for j in exact.get(str(addr), [])]
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        for (version, length), table in nets.items():
            if version == addr.version:
                out += [(ip, j) for j in table.get(value >> (bits - length) << (bits - length), [])]
    return out


def _minhash_map(
    ours: pa.Table, peers: list[tuple[int, IntelIndicator]], threshold: float, min_shingles: int
) -> list[tuple[str, int, float]]:
    """(our template id, indicator index, similarity) for signatures agreeing >= threshold."""
    from distillshield.signals.lsh import band_keys

    peers = [
        (j, p)
        for j, p in peers
        if p.minhash is not None and (p.shingles is None or p.shingles >= min_shingles)
    ]
    if not peers or ours.num_rows == 0:
        return []
    n = int(MINHASH_SCHEME["num_perm"])
    keep = [
        i
        for i, (mh, sh) in enumerate(
            zip(ours.column("minhash").to_pylist(), ours.column("shingles").to_pylist(), strict=True)
        )
        if mh is not None and len(mh) == n and (sh is None or sh >= min_shingles)
    ]
    if not keep:
        return []
    ids = ours.column("template_id").to_pylist()
    mine = np.asarray([ours.column("minhash")[i].as_py() for i in keep], dtype=np.uint32)
    theirs = np.asarray([p.minhash for _, p in peers], dtype=np.uint32)
    mk = band_keys(mine, 16, 4)
    tk = band_keys(theirs, 16, 4)
    their_keys: dict[tuple[int, int], list[int]] = defaultdict(list)
    for item, band, key in zip(*(tk.column(c).to_pylist() for c in ("item", "band", "key")), strict=True):
        their_keys[(band, key)].append(item)
    m_band = np.asarray(mk.column("band").to_numpy())
    m_key = np.asarray(mk.column("key").to_numpy())
    m_item = np.asarray(mk.column("item").to_numpy())
    t_key = np.asarray(tk.column("key").to_numpy())
    hit = np.isin(m_key, t_key)
    pairs: set[tuple[int, int]] = set()
    for item, band, key in zip(m_item[hit].tolist(), m_band[hit].tolist(), m_key[hit].tolist(), strict=True):
        for t in their_keys.get((band, key), []):
            pairs.add((item, t))
    out: list[tuple[str, int, float]] = []
    for a, b in sorted(pairs):
        sim = float((mine[a] == theirs[b]).mean())
        if sim >= threshold - 1e-9:
            out.append((str(ids[keep[a]]), peers[b][0], sim))
    return out


def _our_signatures(backend: Any, data: Path) -> pa.Table:
    """template_id, minhash, shingles for every template id in our traffic."""
    from distillshield.schema import TEMPLATE_FINGERPRINTS, table_paths
    from distillshield.signals.template import signatures, skeleton

    if table_paths(data, TEMPLATE_FINGERPRINTS, optional=True):
        backend.register("_ds_fp", data / TEMPLATE_FINGERPRINTS.name)
        fp: pa.Table = backend.query(
            "SELECT template_id, any_value(minhash) AS minhash, any_value(shingles) AS shingles "
            "FROM _ds_fp WHERE template_id IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        if fp.num_rows:
            return fp
    reps = backend.query(
        "SELECT sig.template_id, arg_min(ex.prompt, ex.request_id) AS prompt "
        "FROM ex JOIN sig USING (request_id) "
        "WHERE sig.template_id IS NOT NULL AND ex.prompt IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    if reps.num_rows == 0:
        return pa.table({"template_id": [], "minhash": pa.array([], pa.list_(pa.uint32())), "shingles": []})
    sig, nsh = signatures(
        skeleton(reps.column("prompt")),
        num_perm=int(MINHASH_SCHEME["num_perm"]),
        ngram=int(MINHASH_SCHEME["ngram"]),
        seed=int(MINHASH_SCHEME["seed"]),
    )
    n = sig.shape[1]
    offsets = pa.array(np.arange(0, sig.size + 1, n, dtype=np.int32))
    return pa.table(
        {
            "template_id": reps.column("template_id"),
            "minhash": pa.ListArray.from_arrays(offsets, pa.array(sig.reshape(-1))),
            "shingles": pa.array(nsh.astype(np.int64)),
        }
    )


def _col(table: pa.Table, name: str) -> list[Any]:
    return list(table.column(name).to_pylist())


# --- the hunt -------------------------------------------------------------------------------


#: Per match source: the FROM/WHERE yielding (exchange, indicator) hits. ``i`` is the indicator
#: index, ``m`` the value map computed in Python. Exchanges after ``valid_until`` do not match,
#: except for payment fingerprints (a property of the account, not of a request).
_WINDOW = "(i.valid_until IS NULL OR ex.ts <= i.valid_until)"
_HIT_SQL: dict[str, str] = {
    "ip": f"1.0 AS similarity FROM ex JOIN _ds_map_ip m ON m.ip = ex.ip JOIN _ds_ind i ON i.idx = m.idx "
    f"WHERE {_WINDOW}",
    "asn": "1.0 AS similarity FROM ex JOIN enr USING (request_id) "
    "JOIN _ds_map_asn m ON m.asn_name = enr.asn_name "
    f"JOIN _ds_ind i ON i.idx = m.idx WHERE {_WINDOW}",
    "user_agent": "1.0 AS similarity FROM ex "
    "JOIN _ds_ind i ON i.kind = 'user_agent' AND ex.user_agent = i.value "
    f"WHERE (i.tls IS NULL OR ex.tls_fingerprint = i.tls) AND {_WINDOW}",
    "template_id": "1.0 AS similarity FROM ex JOIN sig USING (request_id) "
    f"JOIN _ds_ind i ON i.kind = 'template_id' AND sig.template_id = i.value WHERE {_WINDOW}",
    "tpl": "m.similarity FROM ex JOIN sig USING (request_id) JOIN _ds_map_tpl m "
    f"ON m.template_id = sig.template_id JOIN _ds_ind i ON i.idx = m.idx WHERE {_WINDOW}",
    "meta": "1.0 AS similarity FROM ex JOIN _ds_map_meta m ON m.metadata = ex.metadata "
    f"JOIN _ds_ind i ON i.idx = m.idx WHERE {_WINDOW}",
    "pay": "1.0 AS similarity FROM ex JOIN _ds_map_pay m USING (account_id) JOIN _ds_ind i ON i.idx = m.idx",
}
_AGG = (
    "count(DISTINCT h.account_id) AS accounts, count(DISTINCT h.request_id) AS exchanges, "
    "min(h.ts) AS first_seen, max(h.ts) AS last_seen FROM _ds_hits h JOIN _ds_idx_camp c USING (idx) "
    "JOIN _ds_reported r ON r.account_id = h.account_id"
)
#: Kinds strong enough to report an account alone: the same card, or the operator's own
#: request metadata (staff names, harness tags), under the community's keyed hash.
STRONG_KINDS = frozenset({"payment_hash", "meta"})


def _corroborated(
    items: tuple[IntelIndicator, ...], pairs: list[tuple[str, int]], min_indicators: int
) -> tuple[set[str], set[str]]:
    """(accounts reported, accounts matched but not corroborated).

    An account is reported when it matches a strong indicator (:data:`STRONG_KINDS`) or at
    least ``min_indicators`` distinct peer indicators, all its near-duplicate template matches
    counting as one (similar wrappers come in families). One shared proxy address, SDK
    fingerprint or template alone happens to legitimate customers by chance.
    """
    exact: dict[str, set[str]] = defaultdict(set)
    near: dict[str, set[str]] = defaultdict(set)
    strong: set[str] = set()
    for a, j in pairs:
        ind = items[j]
        ident = ind.ref or f"{ind.kind}:{ind.value}"
        (near if ind.kind == "template_minhash" else exact)[a].add(ident)
        if ind.kind in STRONG_KINDS:
            strong.add(a)
    accounts = set(exact) | set(near)
    reported = {
        a
        for a in accounts
        if a in strong or len(exact[a]) + (1 if near[a] - exact[a] else 0) >= min_indicators
    }
    return reported, accounts - reported


def _pairs(column: str, rows: list[tuple[Any, ...]], similarity: bool = False) -> pa.Table:
    cols: dict[str, Any] = {
        column: [r[0] for r in rows],
        "idx": pa.array([r[1] for r in rows], pa.int64()),
    }
    if similarity:
        cols["similarity"] = pa.array([r[2] for r in rows], pa.float64())
    return pa.table(cols)


def _positions(items: tuple[IntelIndicator, ...], kind: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for j, ind in enumerate(items):
        if ind.kind == kind:
            out[ind.value].append(j)
    return out


def _value_maps(
    backend: Any,
    data: Path,
    items: tuple[IntelIndicator, ...],
    key: bytes | None,
    minhash_threshold: float,
    min_shingles: int,
) -> dict[str, pa.Table]:
    """Our values that match each indicator, where matching is not plain SQL equality."""
    kinds = {i.kind for i in items}
    maps: dict[str, pa.Table] = {}
    if kinds & {"ipv4", "ipv6", "cidr"}:
        ips = _col(backend.query("SELECT DISTINCT ip FROM ex WHERE ip IS NOT NULL"), "ip")
        maps["ip"] = _pairs("ip", list(_ip_map(ips, items)))
    if "asn" in kinds:
        wanted = _positions(items, "asn")
        names = _col(
            backend.query("SELECT DISTINCT asn_name FROM enr WHERE asn_name IS NOT NULL"), "asn_name"
        )
        maps["asn"] = _pairs("asn_name", [(n, j) for n in names for j in wanted.get(_asn(n), [])])
    if "template_minhash" in kinds:
        peers = [(j, ind) for j, ind in enumerate(items) if ind.kind == "template_minhash"]
        rows = _minhash_map(_our_signatures(backend, data), peers, minhash_threshold, min_shingles)
        maps["tpl"] = _pairs("template_id", list(rows), similarity=True)
    if key is not None and "meta" in kinds:
        by_hash = _positions(items, "meta")
        sql = "SELECT DISTINCT metadata FROM ex WHERE metadata IS NOT NULL AND metadata <> ''"
        pairs = [
            (m, j)
            for m in _col(backend.query(sql), "metadata")
            for p in meta_pairs(m)
            for j in by_hash.get(keyed_hash(key, "metadata", p), [])
        ]
        maps["meta"] = _pairs("metadata", pairs)
    if key is not None and "payment_hash" in kinds:
        by_pay = _positions(items, "payment_hash")
        accs = backend.query(
            "SELECT account_id, payment_fingerprint FROM acc WHERE payment_fingerprint IS NOT NULL"
        )
        pairs = [
            (a, j)
            for a, p in zip(_col(accs, "account_id"), _col(accs, "payment_fingerprint"), strict=True)
            for j in by_pay.get(keyed_hash(key, "payment", str(p)), [])
        ]
        maps["pay"] = _pairs("account_id", pairs)
    return maps


def hunt(
    data_dir: str | Path,
    indicators: IndicatorSet,
    out_dir: str | Path,
    *,
    community_key: bytes | None,
    minhash_threshold: float = 0.9,
    min_shingles: int = 8,
    min_indicators: int = 2,
) -> HuntResult:
    """Match ``indicators`` against the prepared dataset ``data_dir``; write the sightings.

    Nothing is written unless the whole hunt succeeds. ``community_key`` must be the key the
    indicators' keyed hashes were imported under (:func:`load_indicators`); without it,
    payment and metadata hashes cannot be compared with our values and are ignored.
    An account is reported when it matches a keyed payment or metadata hash, or at least
    ``min_indicators`` distinct peer indicators (near-duplicate templates counting as one);
    accounts with fewer matches are only counted (``accounts_not_corroborated``).
    """
    from distillshield.backends import open_backend
    from distillshield.features.account import register_dataset

    if min_indicators < 1:
        raise IntelError(f"min_indicators must be at least 1, got {min_indicators}")
    if not 0.0 < minhash_threshold <= 1.0:
        raise IntelError(f"minhash_threshold must be in (0, 1], got {minhash_threshold}")
    key = check_key(community_key) if community_key is not None else None
    data = Path(data_dir)
    items = indicators.items
    index = pa.table(
        {
            "idx": pa.array(range(len(items)), pa.int64()),
            "kind": pa.array([i.kind for i in items], pa.string()),
            "value": pa.array([i.value for i in items], pa.string()),
            "tls": pa.array([i.tls for i in items], pa.string()),
            "valid_until": pa.array([i.valid_until for i in items], _TS),
            "campaign": pa.array([i.campaign for i in items], pa.string()),
            "ref": pa.array([i.ref for i in items], pa.string()),
        }
    )
    with open_backend("duckdb") as backend:
        register_dataset(backend, data)
        backend.register("_ds_ind", index)
        backend.register("_ds_idx_camp", index.select(["idx", "campaign", "ref"]))
        maps = _value_maps(backend, data, items, key, minhash_threshold, min_shingles)
        for name, table in maps.items():
            backend.register(f"_ds_map_{name}", table)
        sources = [n for n in maps if n in _HIT_SQL] + [
            k for k in ("user_agent", "template_id") if indicators.of(k)
        ]
        selects = [
            f"(SELECT ex.request_id, ex.account_id, ex.ts, i.idx, {_HIT_SQL[n]})" for n in sources
        ] or [
            "(SELECT request_id, account_id, ts, 0::BIGINT AS idx, 1.0::DOUBLE AS similarity "
            "FROM ex WHERE false)"
        ]
        backend.execute("CREATE OR REPLACE TEMP TABLE _ds_hits AS " + " UNION ALL ".join(selects))
        try:
            per = backend.query(
                "SELECT account_id, idx, count(DISTINCT request_id) AS exchanges, min(ts) AS first_seen, "
                "max(ts) AS last_seen, max(similarity) AS similarity FROM _ds_hits "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            )
            pay = maps.get("pay")
            pay_rows = list(zip(_col(pay, "account_id"), _col(pay, "idx"), strict=True)) if pay else []
            pairs = list(zip(_col(per, "account_id"), _col(per, "idx"), strict=True)) + pay_rows
            reported, weak = _corroborated(items, pairs, min_indicators)
            backend.register(
                "_ds_reported", pa.table({"account_id": pa.array(sorted(reported), pa.string())})
            )
            acct_ex = backend.query(
                "SELECT h.account_id, count(DISTINCT h.request_id) AS n, min(h.ts) AS first_seen, "
                "max(h.ts) AS last_seen FROM _ds_hits h JOIN _ds_reported r ON r.account_id = h.account_id "
                "GROUP BY 1 ORDER BY 1"
            )
            camp_ex = backend.query(f"SELECT c.campaign, {_AGG} GROUP BY 1 ORDER BY 1")
            ref_ex = backend.query(f"SELECT c.ref, {_AGG} GROUP BY 1 ORDER BY 1")
        finally:
            backend.execute("DROP TABLE IF EXISTS _ds_hits")
    per = per.filter(pc.is_in(per.column("account_id"), value_set=pa.array(sorted(reported), pa.string())))
    pay_rows = [(a, j) for a, j in pay_rows if a in reported]
    result = _assemble(items, indicators, per, acct_ex, camp_ex, ref_ex, pay_rows, Path(out_dir), data)
    result.summary.update({"min_indicators": min_indicators, "accounts_not_corroborated": len(weak)})
    for camp in result.campaigns:
        camp["accounts_not_corroborated"] = len(
            {a for a, j in pairs if a in weak and items[j].campaign == camp["campaign"]}
        )
    _write(result)
    return result


def _assemble(
    items: tuple[IntelIndicator, ...],
    indicators: IndicatorSet,
    per: pa.Table,
    acct_ex: pa.Table,
    camp_ex: pa.Table,
    ref_ex: pa.Table,
    pay_rows: list[tuple[str, int]],
    out: Path,
    data: Path,
) -> HuntResult:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for a, j, n, first, last, sim in zip(*(_col(per, c) for c in per.column_names), strict=True):
        rows[(a, j)] = {"exchanges": int(n), "first_seen": first, "last_seen": last, "similarity": float(sim)}
    for a, j in pay_rows:  # accounts matched by payment with no exchanges still count
        rows.setdefault((a, j), {"exchanges": 0, "first_seen": None, "last_seen": None, "similarity": 1.0})
    keys = sorted(rows)
    sightings = pa.table(
        {
            "account_id": [a for a, _ in keys],
            "peer_campaign": [items[j].campaign for _, j in keys],
            "source": [items[j].source for _, j in keys],
            "kind": [items[j].kind for _, j in keys],
            "value": [items[j].value for _, j in keys],
            "indicator_ref": [items[j].ref for _, j in keys],
            "confidence": pa.array([items[j].confidence for _, j in keys], pa.int32()),
            "similarity": [rows[k]["similarity"] for k in keys],
            "exchanges": pa.array([rows[k]["exchanges"] for k in keys], pa.int64()),
            "first_seen": pa.array([rows[k]["first_seen"] for k in keys], _TS),
            "last_seen": pa.array([rows[k]["last_seen"] for k in keys], _TS),
        },
        schema=SIGHTINGS_SCHEMA,
    )
    ex_of = {
        a: (int(n), f, last)
        for a, n, f, last in zip(*(_col(acct_ex, c) for c in acct_ex.column_names), strict=True)
    }
    per_acct: dict[str, list[int]] = defaultdict(list)
    for a, j in keys:
        per_acct[a].append(j)
    ev_rows = []
    for a in sorted(per_acct):
        js = per_acct[a]
        refs: dict[str, float] = {}  # peer indicator -> its evidence (best match)
        exact: set[str] = set()
        for j in js:
            stated = items[j].confidence
            conf = max(0.0, min(1.0, (stated if stated is not None else DEFAULT_CONFIDENCE) / 100.0))
            ident = items[j].ref or f"{items[j].kind}:{items[j].value}"
            if items[j].kind == "template_minhash":
                conf *= NEAR_DUPLICATE_WEIGHT * rows[(a, j)]["similarity"]
            else:
                exact.add(ident)
            refs[ident] = max(refs.get(ident, 0.0), conf)
        # exact matches combine as independent evidence; near-duplicate templates are one
        # piece of evidence however many (similar wrappers come in families)
        near = max((c for r, c in refs.items() if r not in exact), default=0.0)
        confidence = 1.0 - (1.0 - near) * float(np.prod([1.0 - refs[r] for r in exact]))
        n, first, last = ex_of.get(a, (0, None, None))
        ev_rows.append(
            {
                "account_id": a,
                "intel_indicators": len(refs),
                "intel_exact_indicators": len(exact),
                "intel_kinds": sorted({items[j].kind for j in js}),
                "intel_campaigns": sorted({items[j].campaign for j in js}),
                "intel_sources": sorted({items[j].source for j in js}),
                "intel_exchanges": n,
                "intel_confidence": round(confidence, 6),
                "first_seen": first,
                "last_seen": last,
            }
        )
    evidence = pa.Table.from_pylist(ev_rows, schema=EVIDENCE_SCHEMA)
    camp_stats = {
        c: (int(a), int(n), f, last)
        for c, a, n, f, last in zip(*(_col(camp_ex, x) for x in camp_ex.column_names), strict=True)
    }
    by_camp: dict[str, dict[str, Any]] = {}
    for c in indicators.campaigns():
        total = [i for i in items if i.campaign == c]
        hit = [j for _, j in keys if items[j].campaign == c]
        accounts_c = sorted({a for a, j in keys if items[j].campaign == c})
        a_n, e_n, f, last = camp_stats.get(c, (0, 0, None, None))
        by_kind: dict[str, int] = defaultdict(int)
        for j in set(hit):
            by_kind[items[j].kind] += 1
        by_camp[c] = {
            "campaign": c,
            "sources": sorted({i.source for i in total}),
            "indicators": len({i.ref or f"{i.kind}:{i.value}" for i in total}),
            "indicators_matched": len(
                {items[j].ref or f"{items[j].kind}:{items[j].value}" for j in set(hit)}
            ),
            "matched_by_kind": dict(sorted(by_kind.items())),
            "accounts": max(a_n, len(accounts_c)),
            "exchanges": e_n,
            "first_seen": _iso(f),
            "last_seen": _iso(last),
        }
    ref_stats = {
        r: (int(a), int(n), f, last)
        for r, a, n, f, last in zip(*(_col(ref_ex, x) for x in ref_ex.column_names), strict=True)
    }
    per_ref: dict[str, dict[str, Any]] = {}
    for a, j in keys:
        ind = items[j]
        if not ind.ref:
            continue
        entry = per_ref.setdefault(
            ind.ref,
            {"ref": ind.ref, "kinds": set(), "campaigns": set(), "source": ind.source, "accounts": set()},
        )
        entry["kinds"].add(ind.kind)
        entry["campaigns"].add(ind.campaign)
        entry["accounts"].add(a)
    ref_list = []
    for ref, entry in sorted(per_ref.items()):
        _, n, f, last = ref_stats.get(ref, (0, 0, None, None))
        ref_list.append(
            {
                "ref": ref,
                "kinds": sorted(entry["kinds"]),
                "campaigns": sorted(entry["campaigns"]),
                "source": entry["source"],
                "accounts": len(entry["accounts"]),
                "exchanges": n,
                "first_seen": _iso(f),
                "last_seen": _iso(last),
            }
        )
    summary = {
        "data": str(data),
        "indicators": len(items),
        "indicators_by_kind": indicators.counts(),
        "indicators_matched": len({items[j].ref or f"{items[j].kind}:{items[j].value}" for _, j in keys}),
        "accounts_matched": evidence.num_rows,
        "exchanges_matched": int(sum(v[0] for v in ex_of.values())),
        "peer_campaigns": len(by_camp),
    }
    return HuntResult(sightings, evidence, list(by_camp.values()), ref_list, summary, out)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _write(result: HuntResult) -> None:
    """Write the three files together: temporary names first, renamed only when all exist."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "summary": result.summary,
        "campaigns": result.campaigns,
        "indicators": result.indicators,
        "accounts": [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
            for row in result.evidence.to_pylist()
        ],
    }
    text = json.dumps(doc, indent=1, default=str) + "\n"
    targets: dict[str, pa.Table | str] = {
        "sightings.parquet": result.sightings,
        "intel_evidence.parquet": result.evidence,
        "sightings.json": text,
    }
    tmps: list[tuple[Path, Path]] = []
    try:
        for name, body in targets.items():
            tmp = out / f".{name}.tmp-{os.getpid()}"
            tmps.append((tmp, out / name))
            if isinstance(body, str):
                tmp.write_text(body, encoding="utf-8")
            else:
                pq.write_table(body, tmp)
        for tmp, final in tmps:
            tmp.replace(final)
    finally:
        for tmp, _ in tmps:
            tmp.unlink(missing_ok=True)


# --- sightings back to the peers ------------------------------------------------------------


def sightings_bundle(
    result: HuntResult,
    *,
    producer: str = "distillshield",
    tlp: str = "amber",
    validate: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """A STIX 2.1 bundle of Sightings of the peers' indicators we matched (validated).

    One sighting per matched indicator: ``sighting_of_ref`` is the peer's indicator id,
    ``where_sighted_refs`` our identity, ``count`` the matched exchanges, first/last seen the
    matched traffic. Counts only: no account id, address or content of ours leaves. Ids are
    deterministic (a later hunt gives a new version of the same sighting).
    """
    import re

    import stix2  # type: ignore[import-untyped, unused-ignore]

    from distillshield.intel._common import SCHEMA_CREATED
    from distillshield.intel.stix import MAX_COUNT, bundle_of, tlp_marking, validate_bundle

    level = tlp_level(tlp)
    marking = tlp_marking(level)
    identity = stix_id("identity", producer)
    objects: list[dict[str, Any]] = [
        marking,
        json.loads(
            stix2.v21.Identity(
                id=identity,
                name=producer,
                description="Producer of this intelligence (distillshield intel hunt).",
                identity_class="organization",
                created=SCHEMA_CREATED,
                modified=SCHEMA_CREATED,
                object_marking_refs=[marking["id"]],
            ).serialize()
        ),
    ]
    pattern = re.compile(
        r"^[a-z][a-z0-9-]+--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    for entry in result.indicators:
        ref = entry["ref"]
        if not pattern.match(ref):
            continue
        first = entry["first_seen"]
        last = entry["last_seen"]
        kwargs: dict[str, Any] = {}
        created = SCHEMA_CREATED
        modified = SCHEMA_CREATED
        if first and last:
            f_dt, l_dt = datetime.fromisoformat(first), datetime.fromisoformat(last)
            kwargs = {"first_seen": stix_ts(f_dt), "last_seen": stix_ts(max(l_dt, f_dt))}
            created, modified = stix_ts(f_dt), stix_ts(max(l_dt, f_dt))
        sighting = stix2.v21.Sighting(
            id=stix_id("sighting", producer, ref),
            sighting_of_ref=ref,
            where_sighted_refs=[identity],
            count=max(0, min(MAX_COUNT, int(entry["exchanges"]))),
            description=(
                f"Retro-hunt at {producer}: {entry['accounts']} account(s), "
                f"{entry['exchanges']:,} request(s) matched ({', '.join(entry['kinds'])})."
            ),
            created=created,
            modified=modified,
            created_by_ref=identity,
            object_marking_refs=[marking["id"]],
            allow_custom=True,
            **kwargs,
        )
        objects.append(json.loads(sighting.serialize()))
    bundle = bundle_of(objects, producer)
    errors = validate_bundle(bundle, workers=workers) if validate else []
    if errors:
        raise IntelError(f"the sightings bundle is not valid STIX ({len(errors)} errors): {errors[:3]}")
    return bundle
