"""Accounts that have sent nothing yet, named by the card or sign-up they share with flags.

Why
    A farm registers its accounts ahead of use: the operator buys or creates them in batches,
    pays for them with the same few cards and brings them into rotation over days. Every
    request a sibling sends before the batch run that would flag it is served, and a
    detector that scores only accounts with traffic can flag a sibling at the earliest at
    the first run after its first request. But its card and its sign-up were on record
    before that request. On the default scenario's six-hourly replays, about a third of the
    campaign accounts that hold a card held a card already held by two flagged accounts of
    their own campaign before they sent anything (docs/results.md, "Accounts that have not
    sent a request yet").

    So a scan also names the registered accounts *without traffic in its window* whose
    identity edges (:data:`DORMANT_KINDS`: the same card, a sign-up from the same ``/24``
    within the linking window) tie them to at least :data:`MIN_FLAGGED` flagged accounts
    that are a majority of the active accounts they are tied to. The majority is what keeps
    a corporate card or a campus sign-up burst out: there the active holders are mostly
    customers the detector did not flag. A flagged holder that claims the same organisation
    as the dormant account (:func:`~distillshield.detect.graph.organisations`) does not
    count, as for coordinated novelty: colleagues share a card by employment.

What a named account is
    Flagged, with score ``(f + 1) / (p + 2)`` for ``f`` flagged of ``p`` active partners
    (the rule of succession: the share of its card's and sign-up's active holders that the
    detector convicted, shrunk towards one half), a reason that says so, and the campaign
    most of those flagged partners belong to. Nothing about its own behaviour is claimed: it
    has none. Once it sends requests, the next scan judges it on them like any other account
    (a replay's flags are sticky, a gateway's verdict is refreshed at the next publication).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from distillshield.linking.edges import edges_touching

__all__ = ["DORMANT_KINDS", "MIN_FLAGGED", "Dormant", "name_dormant", "with_dormant"]

#: Identity edge kinds a registration carries before any request (module docstring).
DORMANT_KINDS: tuple[str, ...] = ("payment", "signup")
#: Flagged partners needed, besides being a majority of the active ones.
MIN_FLAGGED = 2

_WORDS = {"payment": "card", "signup": "sign-up"}


@dataclass(frozen=True)
class Dormant:
    """A registered account without traffic that its identity ties to flagged accounts."""

    account_id: str
    score: float
    flagged_partners: int
    active_partners: int
    campaign_id: str | None
    reason: str


def name_dormant(
    accounts: pa.Table,
    edges: pa.Table,
    *,
    organisation: Mapping[str, str] | None = None,
    kinds: tuple[str, ...] = DORMANT_KINDS,
    min_flagged: int = MIN_FLAGGED,
) -> list[Dormant]:
    """The accounts without traffic to flag, sorted by id (module docstring).

    ``accounts``: the scan's scored accounts (account_id, flagged and, optionally,
    campaign_id), one row per account with traffic in the window; ``edges``: the linking
    step's edges (:data:`distillshield.linking.EDGE_SCHEMA`), whose ``payment`` and
    ``signup`` kinds also reach registered accounts without traffic. ``organisation``:
    account -> the organisation it claims.
    """
    if min_flagged < 1:
        raise ValueError(f"min_flagged must be at least 1, not {min_flagged}")
    ids = accounts.column("account_id").to_pylist()
    active = set(ids)
    flagged = {a for a, f in zip(ids, accounts.column("flagged").to_pylist(), strict=True) if f}
    if not flagged or edges.num_rows == 0:
        return []
    campaign: dict[str, str] = {}
    if "campaign_id" in accounts.column_names:
        cids = accounts.column("campaign_id").to_pylist()
        campaign = {a: c for a, c in zip(ids, cids, strict=True) if c is not None}
    # only edges between an account with traffic and one without, filtered in Arrow: at seed
    # scale most payment edges join two active accounts
    near = edges_touching(edges, kinds, ids, ends="one")
    partners: dict[str, set[str]] = {}
    convicting: dict[str, dict[str, set[str]]] = {}  # dormant -> flagged partner -> kinds
    org = organisation or {}
    src, dst, kind = (near.column(c).to_pylist() for c in ("src", "dst", "kind"))
    for s, d, k in zip(src, dst, kind, strict=True):
        for a, b in ((s, d), (d, s)):
            if a in active or b not in active:
                continue
            partners.setdefault(a, set()).add(b)
            if b in flagged and not (org.get(a) is not None and org.get(a) == org.get(b)):
                convicting.setdefault(a, {}).setdefault(b, set()).add(k)
    out: list[Dormant] = []
    for a in sorted(convicting):
        f, p = len(convicting[a]), len(partners[a])
        if f < min_flagged or 2 * f <= p:
            continue
        held = Counter(campaign[b] for b in convicting[a] if b in campaign)
        cid = min(held, key=lambda c: (-held[c], c)) if held else None
        what = " or ".join(_WORDS.get(k, k) for k in sorted({k for ks in convicting[a].values() for k in ks}))
        reason = (
            f"dormant: no request in the window; its {what} is shared with {f} flagged of the "
            f"{p} active accounts it ties to" + (f", most in campaign {cid}" if cid else "")
        )
        out.append(Dormant(a, (f + 1) / (p + 2), f, p, cid, reason))
    return out


def with_dormant(
    accounts: pa.Table, campaigns: list[dict[str, Any]], named: list[Dormant]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """``accounts`` with a flagged row per named account, and ``campaigns`` with them as members.

    ``accounts`` is a scan's account table (:func:`~distillshield.detect.campaigns.build_campaigns`'s
    columns); a named account's columns other than id, score, flagged, top_reasons, held
    and campaign_id are null. Every campaign gets a ``dormant_accounts`` list (empty when
    none), and its named accounts join ``accounts`` and ``size``; its score, dossier and id
    stay those of its members with traffic. A named account whose campaign is not among
    ``campaigns`` (a step without dossiers) is flagged without one.
    """
    from distillshield.detect.campaigns import campaign_summary

    known = {c["id"] for c in campaigns}
    rows = [
        {
            "account_id": d.account_id,
            "score": d.score,
            "flagged": True,
            "top_reasons": [d.reason],
            "held": False,
            "campaign_id": d.campaign_id if d.campaign_id in known else None,
        }
        for d in named
    ]
    out = accounts
    if rows:
        out = pa.concat_tables([accounts, pa.Table.from_pylist(rows, schema=accounts.schema)])
    by_campaign: dict[str, list[str]] = {}
    for r in rows:
        if r["campaign_id"] is not None:
            by_campaign.setdefault(str(r["campaign_id"]), []).append(str(r["account_id"]))
    updated = []
    for c in campaigns:
        extra = sorted(by_campaign.get(c["id"], []))
        c = {**c, "accounts": sorted([*c["accounts"], *extra]), "dormant_accounts": extra}
        c["size"] = len(c["accounts"])
        c["summary"] = campaign_summary(c)
        updated.append(c)
    return out, updated
