"""The evidence floor: a flag on a handful of requests needs a link to another flagged account.

Why
    Every false positive the shipped model made on the six evaluation datasets (docs/results.md,
    "A flag on a handful of requests needs a link") was an account flagged *alone* on 1, 2, 5
    or 8 requests: a developer's first two calls, a student's one, a benchmark researcher's
    first five. With fewer requests than the model's pseudo-requests
    (:data:`~distillshield.detect.design.PSEUDO_REQUESTS`, 10) an account's own evidence
    weighs less than the prior it is shrunk towards, and the per-request statistics of a
    short session (a reasoning share of 0.8 on five requests) are the noise of a small sample.

    A campaign's light accounts are flagged on as few requests, but they are seldom alone: a
    hydra's accounts leave from shared proxies, are paid by shared cards, are created by one
    sign-up script or carry its staff's handles. So the floor holds a thin flag only when none
    of that links the account to another flagged account: a card (``payment``), an address
    (``ip``, within the linking window), a ``/24`` (``prefix``), a sign-up ``/24``
    (``signup``) or a ``"key": "value"`` metadata pair (``metadata``), the kinds
    :data:`LINK_KINDS`. Client stacks, prompt templates and synchronised activity do not
    count: a stock SDK release, a public benchmark prompt and office hours are shared by
    strangers.

    A *hub* does count (``hubs``: a card or metadata pair held by more than the linking cap,
    or a client stack held by more than ``max_client_accounts`` accounts, in each case with
    most holders flagged; :func:`distillshield.detect.campaigns.hub_values`): a stack that
    dozens of accounts run and most of them are flagged is an operator's pinned harness, not
    a stock release, which developers outnumber. An operator that pays with one card per
    account and leaves from residential exits has nothing else (docs/results.md, "An
    operator that shares nothing but its harness"): its light accounts were all held.

What a held account is
    Not flagged (so not in a campaign, not shared as intelligence, not counted as detected),
    with its score kept, ``held`` true in ``accounts.parquet`` and a first reason that says why.
    The gateway acts on it as the thin flag it is (protected until the account has sent 10
    more requests, :mod:`distillshield.gateway.verdicts`): holding a flag from the analyst's
    queue and from peers must not serve a harvest. The next batch run decides again on more
    requests or new links. An over-cap card or staff handle held mostly by flagged accounts
    has no pair edges; the corroboration step that follows
    (:func:`~distillshield.detect.campaigns.build_campaigns`) still flags its holders.

Cost (measured, docs/results.md): the light accounts of the hydra and of the agentic
campaign that have no link yet are flagged one or two batch runs later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from distillshield.detect.design import PSEUDO_REQUESTS
from distillshield.linking.edges import edges_touching

__all__ = ["LINK_KINDS", "THIN_FLOOR", "hold_thin_flags"]

#: Fewer requests than this make a flag "thin": the model's pseudo-request count.
THIN_FLOOR = int(PSEUDO_REQUESTS)
#: Edge kinds that link a thin flag to another flagged account (module docstring).
LINK_KINDS: tuple[str, ...] = ("payment", "ip", "prefix", "signup", "metadata")


def hold_thin_flags(
    account_ids: list[str],
    n_requests: np.ndarray,
    flagged: np.ndarray,
    edges: pa.Table,
    *,
    floor: int = THIN_FLOOR,
    exempt: np.ndarray | None = None,
    hubs: Mapping[str, Sequence[str]] | None = None,
) -> tuple[np.ndarray, dict[str, str]]:
    """Unflag accounts flagged on fewer than ``floor`` requests with no link to another flag.

    ``n_requests`` and ``flagged`` are aligned with ``account_ids``; ``edges`` is the linking
    step's edge table (:data:`distillshield.linking.EDGE_SCHEMA`). Returns the new flags (a
    copy) and, per held account, the reason to put first. ``floor <= 0`` holds nothing;
    ``exempt`` (aligned, optional) marks accounts never held (flagged on other evidence);
    ``hubs`` (optional): hub value -> its holders; two flagged holders of one are linked.
    """
    out = np.asarray(flagged, dtype=bool).copy()
    n = np.asarray(n_requests, dtype=float)
    thin = out & (n < floor)
    if exempt is not None:
        thin &= ~np.asarray(exempt, dtype=bool)
    if floor <= 0 or not thin.any():
        return out, {}
    flagged_ids = pa.array([a for a, f in zip(account_ids, out, strict=True) if f], pa.string())
    links = edges_touching(edges, LINK_KINDS, flagged_ids, ends="both")
    linked = set(links.column("src").to_pylist()) | set(links.column("dst").to_pylist())
    on_flags = set(flagged_ids.to_pylist())
    for holders in (hubs or {}).values():
        flagged_holders = [a for a in holders if a in on_flags]
        if len(flagged_holders) >= 2:
            linked.update(flagged_holders)
    held: dict[str, str] = {}
    for i in np.flatnonzero(thin):
        a = account_ids[i]
        if a not in linked:
            out[i] = False
            held[a] = (
                f"held: flagged on {int(n[i])} request(s) (floor {floor}) with no card, address, "
                "prefix, sign-up, metadata value or hub shared with another flagged account"
            )
    return out, held
