"""Peers' intelligence as scoring evidence: ``distillshield scan --intel HUNT``.

``distillshield intel hunt`` matches indicators that other providers shared against our own
traffic and writes, per corroborated account, ``HUNT/intel_evidence.parquet``
(:data:`~distillshield.schema.INTEL_EVIDENCE`, docs/intel.md). This module folds that into
the account score.

Why a noisy-OR and not a model feature: the account model is trained on simulated traffic
where no peer ever reports anything, so it could not learn a weight for intel columns; and
a peer's report is evidence *independent* of our behavioural view (another provider saw the
same operator's cards, addresses or templates in *its* traffic). Under that independence
the probability that an account belongs to a campaign is one minus the chance that both
views are wrong::

    p' = 1 - (1 - p) * (1 - w * c)

``p`` our calibrated score, ``c`` the hunt's ``intel_confidence`` (itself a noisy-OR of the
peers' stated confidences, near-duplicate template matches discounted), ``w`` how far the
operator trusts the peers (``--intel-weight``, default 1: take their confidence at face
value; 0 ignores intel). The score can only rise, and an account with no intel keeps its
score exactly. Every account that intel moved carries a reason
``intel:indicators=3 kinds=ipv4,payment_hash peers=... confidence=0.97 (+0.41)`` (the score
increase) and its ``intel_confidence`` in ``accounts.parquet``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distillshield.errors import DistillShieldError
from distillshield.schema import INTEL_EVIDENCE, read_table

__all__ = ["IntelScores", "apply_intel", "campaign_intel", "read_intel_evidence"]

#: Peers named in a reason, at most.
_MAX_NAMED = 3


def read_intel_evidence(path: str | Path) -> pa.Table:
    """Read a hunt's evidence: ``path`` is the hunt's output directory or the Parquet file.

    Refuses a file that lacks the contract's required columns or repeats an account
    (one row per account is what the hunt writes; two would make the score ambiguous).
    """
    p = Path(path)
    if p.is_file():
        root, name = p.parent, p.name
        if name != f"{INTEL_EVIDENCE.name}.parquet":
            raise DistillShieldError(
                f"{p}: expected {INTEL_EVIDENCE.name}.parquet (written by `distillshield intel hunt`)"
            )
    elif p.is_dir():
        root = p
        if not (p / f"{INTEL_EVIDENCE.name}.parquet").exists():
            raise DistillShieldError(
                f"{p}: no {INTEL_EVIDENCE.name}.parquet here "
                "(expected the --out directory of `distillshield intel hunt`)"
            )
    else:
        raise DistillShieldError(f"{p}: no such file or directory (--intel)")
    table = read_table(root, INTEL_EVIDENCE)
    ids = table.column("account_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = next(a for a, n in Counter(ids).items() if n > 1)
        raise DistillShieldError(f"{p}: account {dup!r} appears more than once in the intel evidence")
    conf = np.asarray(table.column("intel_confidence").to_numpy(zero_copy_only=False), dtype=float)
    bad = np.flatnonzero(~np.isfinite(conf) | (conf < 0) | (conf > 1))
    if bad.size:
        i = int(bad[0])
        raise DistillShieldError(
            f"{p}: row {i} (account {ids[i]!r}): intel_confidence {conf[i]!r} is not in [0, 1]"
        )
    return table


@dataclass(frozen=True)
class IntelScores:
    """The combined scores, aligned with the accounts passed to :func:`apply_intel`."""

    score: np.ndarray  # p' per account
    confidence: np.ndarray  # the hunt's intel_confidence, NaN where no peer reported the account
    reasons: list[str | None]  # the reason to add, None where intel did not apply
    matched: int  # accounts of ours the evidence named
    unknown: int  # evidence rows for accounts this scan did not score (no traffic in the window)


def apply_intel(
    account_ids: list[str], score: np.ndarray, evidence: pa.Table, *, weight: float = 1.0
) -> IntelScores:
    """Combine our scores with the peers' evidence (noisy-OR, see the module docstring)."""
    if not 0.0 <= weight <= 1.0:
        raise DistillShieldError(f"--intel-weight must be in [0, 1], got {weight}")
    row_of = {a: i for i, a in enumerate(evidence.column("account_id").to_pylist())}
    conf_col = evidence.column("intel_confidence").to_pylist()
    ind_col = evidence.column("intel_indicators").to_pylist()
    kinds_col = evidence.column("intel_kinds").to_pylist()
    src_col = evidence.column("intel_sources").to_pylist()
    out = np.asarray(score, dtype=float).copy()
    confidence = np.full(len(account_ids), np.nan)
    reasons: list[str | None] = [None] * len(account_ids)
    matched = 0
    for i, a in enumerate(account_ids):
        j = row_of.get(a)
        if j is None:
            continue
        matched += 1
        c = float(conf_col[j])
        confidence[i] = c
        new = 1.0 - (1.0 - out[i]) * (1.0 - weight * c)
        if weight > 0:
            sources = sorted(src_col[j] or [])
            peers = ",".join(sources[:_MAX_NAMED]) + (
                f"+{len(sources) - _MAX_NAMED}" if len(sources) > _MAX_NAMED else ""
            )
            reasons[i] = (
                f"intel:indicators={ind_col[j]} kinds={','.join(kinds_col[j] or [])} "
                f"peers={peers or '?'} confidence={c:.3g} (+{new - out[i]:.2f})"
            )
        out[i] = new
    return IntelScores(
        score=out, confidence=confidence, reasons=reasons, matched=matched, unknown=len(row_of) - matched
    )


def campaign_intel(campaigns: list[dict[str, Any]], evidence: pa.Table) -> None:
    """Add ``peer_intel`` to each campaign (in place): which members peers reported, and as what.

    ``{"accounts_reported": n, "peer_campaigns": [...], "sources": [...], "kinds": [...]}``, or
    None when no member was reported; the plain-language summary gets one more sentence.
    """
    rows = {
        r["account_id"]: r
        for r in evidence.select(
            ["account_id", "intel_campaigns", "intel_sources", "intel_kinds"]
        ).to_pylist()
    }
    for c in campaigns:
        hit = [rows[a] for a in c["accounts"] if a in rows]
        if not hit:
            c["peer_intel"] = None
            continue
        sources = sorted({x for r in hit for x in r["intel_sources"] or []})
        kinds = sorted({x for r in hit for x in r["intel_kinds"] or []})
        c["peer_intel"] = {
            "accounts_reported": len(hit),
            "peer_campaigns": sorted({x for r in hit for x in r["intel_campaigns"] or []}),
            "sources": sources,
            "kinds": kinds,
        }
        named = ", ".join(sources[:_MAX_NAMED]) or "a peer"
        c["summary"] = (
            f"{c['summary']} Peers' intelligence ({named}) reported {len(hit)} of its "
            f"{len(c['accounts'])} accounts ({', '.join(kinds)})."
        )
