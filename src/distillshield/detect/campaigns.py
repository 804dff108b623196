"""From flagged accounts to campaigns an analyst can act on, each with its evidence dossier.

Clustering (why Leiden over flagged accounts, then an identity merge)
    Linking runs on the accounts already flagged, never through an unflagged one, over
    money and addresses (``payment``, ``ip``, ``prefix``, ``signup``), operator metadata and
    client stacks. Leiden community detection (modularity, weighted by the summed evidence
    weights, fixed seed) splits two operators that merely rented the same residential
    prefix on the same day, which plain connected components would merge; communities then
    tied by at least :data:`MERGE_MIN_EDGES` identity edges (one card, one staff handle,
    one sign-up script) are merged, which puts back together a campaign whose server pools
    share no address but are paid by the same cards. Template edges are left out: agentic
    campaigns share prompt skeletons across operators. Measured alternatives in
    docs/scoring.md (``bench/eval_clustering.py``).

Over-cap identity values (scale)
    ``linking`` skips values shared by more than ``max_group`` accounts: at that size a value
    is usually infrastructure everyone uses, and its pairs grow quadratically. A staff handle
    or a card of a large operator grows past the cap too (at seed scale each of campaign B's
    staff handles is held by ~3,000 accounts), and the campaign then falls apart into its
    payment-linked fragments. So, after Leiden, a card or ``"key": "value"`` metadata pair
    held by more than ``max_group`` accounts *of which most were flagged* (a stock framework
    tag is held mostly by accounts nobody flagged) acts as one hub: the communities made
    mostly of its holders (at least half of their members) and the flagged holders left in
    no community are joined through it. A community where its holders are a minority keeps
    its members: a few of one operator's accounts inside another's cluster do not merge two
    campaigns. No pairs are generated, so the cost is the holders, not their square.

    A client stack (user agent + TLS fingerprint) held by more than ``max_client_accounts``
    accounts, most of them flagged, is a hub for clustering (not for corroboration, below).
    Linking stops making client edges at that size because a stock SDK release joins
    everyone, but among *flagged* accounts a release most of whose holders are flagged is
    the operator's pinned harness: on the held-out scenario whose campaign B sends no
    metadata (docs/results.md), B's accounts ran 12 pinned stacks, 7 of them held by 21 to 33
    accounts each, most of them B's, and apart from prompt templates (left out, above) nothing else
    tied its cardless accounts to the rest. Since an operator spreads its accounts over many
    stacks, no one stack is half of its campaign; and since two operators may run one stock
    release, one stack never ties two communities together. Client hubs act in two ways:

    * *weaving*: two communities that hold at least :data:`MERGE_MIN_EDGES` stacks in common,
      with at least half the members of each holding one of them, are merged. An operator
      that pays with a dozen cards and assigns each account a card and a pinned stack
      independently leaves card groups with no pair edge between them, each spread over the
      same stacks: on evasive-2 campaign B was nine card groups and 106 cardless accounts
      (coverage 17.6 %) until this rule, 86.4 % after (docs/results.md, "Client stacks that
      weave card groups together"). A farm that runs a few of those releases on a few of its
      accounts is not woven in, nor is a campaign sharing one or two stock releases;
    * *placing loners*: then a stack's holders in no community join the (merged) community
      that holds a strict majority (at least :data:`MERGE_MIN_EDGES`) of the stack's holders
      that are in communities, unless their stacks point to two communities or a card or
      staff-handle hub already placed them.

Corroboration
    An account the model scores at 0.5 or more (more likely than not) but below its flag
    threshold is flagged when it shares an identity edge (payment, metadata, signup) with
    an account the model flagged outright: a farm's sibling does not have the population's
    prior. One hop, never transitive. A card or staff-handle hub (above) counts as such an
    identity: its holders have no pair edges to be read from. A client-stack hub does not:
    corroborating through one promoted three individual developers on the held-out
    scenario, borderline accounts whose stock SDK release a 700-account hydra also ran.

Coordinated novelty
    An account the model does not flag but that is among the most unusual of this scan
    (novelty percentile >= ``novelty_quantile``) is promoted to flagged when at least
    ``novelty_links`` other such accounts share an address, a card, a sign-up script or a
    staff handle with it (:data:`NOVELTY_KINDS`; not a /24 prefix), and is not a colleague
    of them (the same corporate or academic e-mail domain): an unseen tactic still runs on
    coordinated accounts, a company's unusual team does not. Its reason says so.

Dossier (``campaigns.json``; layout in docs/scoring.md)
    Per campaign: members, score (median member probability), first/last seen, exchanges,
    capability mix, chain-of-thought elicitation share, infrastructure indicators (IPs,
    prefixes, ASNs, user agents, TLS fingerprints, payment fingerprints, template ids, each
    with how many members and exchanges use it), metadata clues, model-release pivot
    evidence, an hourly timeline, the link edges among members, common reasons, an operator
    profile id when money or metadata support one, and a plain-language summary.

Exchange-level share
    ``campaign_share`` per scored account: the share of its exchanges whose template family
    is one a campaign's generator uses (a family used by several members of a campaign and
    by at most one unflagged account). For a reseller or a hydra account that mixes
    customers' requests with the harvest, this is how much of its traffic is the campaign.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.backends import Backend, quote_name
from distillshield.detect.graph import organisations
from distillshield.features.stats import StatsNames
from distillshield.linking import STRONG_KINDS
from distillshield.linking.edges import EdgeParams, edges_touching, stats_params

__all__ = ["CLUSTER_KINDS", "build_campaigns", "campaign_id_for", "campaign_summary", "hub_values"]

#: Evidence kinds that cluster flagged accounts into campaigns.
CLUSTER_KINDS: tuple[str, ...] = (*STRONG_KINDS, "metadata", "client")
#: Kinds that say "same payer or same staff": communities they tie together are merged.
IDENTITY_KINDS: tuple[str, ...] = ("payment", "metadata", "signup")
#: Identity edges needed between two communities to merge them.
MERGE_MIN_EDGES = 3
#: Kinds that count as links for coordinated novelty: the strong kinds but ``prefix``, and
#: metadata. A /24 is a neighbourhood, not an identity: in a hosting provider's range it is
#: shared by unrelated tenants, and the chance that two of the most unusual accounts — heavy
#: legitimate backends run from cloud machines are among them — share one grows with the
#: population. At seed scale (120k accounts) this path promoted exactly three accounts, a SaaS
#: backend, a coding-agent vendor and a synthetic-data enterprise, each linked only by shared
#: hosting /24s (docs/scoring.md); an exact address, a card, a sign-up script or a staff handle
#: is still enough.
NOVELTY_KINDS: tuple[str, ...] = (*(k for k in STRONG_KINDS if k != "prefix"), "metadata")
#: Share of a clue's holders (over all campaigns) a campaign must hold for the clue to tie it
#: to an operator profile (:func:`_attach_operators`).
OPERATOR_MIN_SHARE = 0.1
#: Smallest cluster reported as a campaign.
MIN_CAMPAIGN_SIZE = 2
#: Indicators kept per kind in the dossier.
TOP_INDICATORS = 10
#: Link edges kept per campaign for the report's graph.
MAX_LINK_EDGES = 400

_MEMBERS = "_ds_campaign_members"
_FLAG_EDGES = "_ds_campaign_edges"
_FLAGGED = "_ds_campaign_flagged"
_PAIR = r'"([^"\\]{1,64})"[ ]*:[ ]*"([^"\\]{1,128})"'


#: Hub kinds (:func:`hub_values`) that corroborate, and how a reason names each. Not client
#: stacks: they only cluster. A stock SDK release that a large hydra happens to dominate is
#: still the release its ordinary users run; measured on the held-out scenario, corroborating
#: through client hubs promoted three individual developers (borderline scores) whose SDK
#: release campaign D's 700 accounts also ran (docs/results.md).
_CORROBORATING_HUBS = {"payment": "card", "metadata": "metadata value"}


def _hub_kind(value: str) -> str:
    """The kind of a hub value ``"kind=value"`` (:func:`hub_values`): payment, metadata, client."""
    return value.split("=", 1)[0]


def campaign_id_for(accounts: list[str]) -> str:
    """Deterministic campaign id: a hash of the smallest member account id."""
    return "cmp-" + hashlib.sha256(min(accounts).encode()).hexdigest()[:10]


def _colleagues(org: dict[str, str], a: str, b: str) -> bool:
    """Both accounts claim the same organisation (:func:`~distillshield.detect.graph.organisations`)."""
    oa = org.get(a)
    return oa is not None and oa == org.get(b)


def _promote(
    accounts: pa.Table,
    edges: pa.Table,
    *,
    novelty_quantile: float,
    novelty_links: int,
    corroborated_score: float,
    hubs: dict[str, list[str]] | None = None,
    organisation: dict[str, str] | None = None,
) -> tuple[np.ndarray, dict[str, str]]:
    """Flags beyond the model's threshold, each with the reason that justifies it.

    * coordinated novelty (module docstring); a link between two accounts that claim the
      same organisation (``organisation``: :func:`distillshield.detect.graph.organisations`)
      does not count: colleagues share a card and an egress by employment, and a team whose
      traffic is unusual is not coordinated evasion (on the held-out scenario with real
      prompts, nine corporate-VPN employees, scored 0.000 by the model, were promoted
      through their company card and VPN: docs/results.md);
    * corroboration: an account the model finds more likely than not a campaign account
      (``score >= corroborated_score``) that shares an *identity* edge (a card, a staff
      handle, a sign-up script) with an account the model flagged outright. The prior of a
      farm's sibling is not the population's prior; one hop only, never transitively, and
      never from an account that was itself promoted. An over-cap card or staff handle held
      mostly by flagged accounts (``hubs``, :func:`hub_values`) is such an identity too: it
      has no pair edges, so its holders are read from the hub. A client-stack hub is not
      (:data:`_CORROBORATING_HUBS`): it clusters, it does not flag.
    """
    flagged = accounts.column("flagged").to_numpy(zero_copy_only=False).copy()
    novelty = accounts.column("novelty").to_numpy(zero_copy_only=False)
    score = accounts.column("score").to_numpy(zero_copy_only=False)
    ids = accounts.column("account_id").to_pylist()
    index = {a: i for i, a in enumerate(ids)}
    promoted: dict[str, str] = {}
    org = organisation or {}
    for value, holders in sorted((hubs or {}).items()):
        kind = _CORROBORATING_HUBS.get(_hub_kind(value))
        if kind is None:
            continue
        n_flagged = sum(1 for a in holders if a in index and flagged[index[a]])
        for a in holders:
            i = index.get(a)
            if i is not None and not flagged[i] and score[i] >= corroborated_score:
                promoted.setdefault(
                    a,
                    f"corroborated: holds a {kind} shared by {len(holders)} accounts, "
                    f"{n_flagged} of them flagged",
                )
    if edges.num_rows == 0:
        for a in promoted:
            flagged[index[a]] = True
        return flagged, promoted
    novel = {a for a, n, f in zip(ids, novelty, flagged, strict=True) if n >= novelty_quantile and not f}
    candidates = {
        a for a, sc, f in zip(ids, score, flagged, strict=True) if sc >= corroborated_score and not f
    }
    # only edges that can matter, filtered in Arrow: at seed scale there are millions
    near = edges_touching(edges, {*NOVELTY_KINDS, *IDENTITY_KINDS}, novel | candidates, ends="either")
    src, dst = near.column("src").to_pylist(), near.column("dst").to_pylist()
    kinds = near.column("kind").to_pylist()
    partners: dict[str, set[str]] = {}
    sponsors: dict[str, set[str]] = {}
    for s, d, k in zip(src, dst, kinds, strict=True):
        if k in NOVELTY_KINDS and s in novel and d in novel and not _colleagues(org, s, d):
            partners.setdefault(s, set()).add(d)
            partners.setdefault(d, set()).add(s)
        if k in IDENTITY_KINDS and s in index and d in index:
            for a, b in ((s, d), (d, s)):
                if flagged[index[b]] and not flagged[index[a]] and score[index[a]] >= corroborated_score:
                    sponsors.setdefault(a, set()).add(b)
    for a, p in partners.items():
        if len(p) >= novelty_links:
            promoted[a] = f"coordinated_novelty: linked to {len(p)} other highly unusual accounts"
    for a, b in sponsors.items():
        promoted.setdefault(
            a, f"corroborated: shares a card, staff handle or sign-up with {len(b)} flagged account(s)"
        )
    for a in promoted:
        flagged[index[a]] = True
    return flagged, promoted


def _cluster(
    flagged_ids: list[str],
    edges: pa.Table,
    *,
    seed: int = 0,
    hubs: dict[str, list[str]] | None = None,
) -> dict[str, str]:
    """account -> campaign id for flagged accounts in clusters of >= MIN_CAMPAIGN_SIZE.

    Leiden (modularity, weighted by the summed evidence weights of :data:`CLUSTER_KINDS`) on
    the sub-graph of flagged accounts, then communities joined by at least
    :data:`MERGE_MIN_EDGES` *identity* edges (:data:`IDENTITY_KINDS`: one card, one staff
    handle, one sign-up script) are merged: shared proxies can be a coincidence of two
    operators renting from one provider, shared money and staff cannot. Why not plain
    connected components: see the module docstring and docs/scoring.md.

    ``hubs``: over-cap values (:func:`hub_values`), value -> its flagged holders; a card
    or staff handle joins the communities made mostly of its holders and its holders left
    alone, client stacks weave communities together and place loners (:func:`_join_hubs`).
    """
    if not flagged_ids or (edges.num_rows == 0 and not hubs):
        return {}
    import igraph as ig
    import leidenalg

    sub = edges_touching(edges, CLUSTER_KINDS, flagged_ids, ends="both")
    nodes = sorted(flagged_ids)
    index = {a: i for i, a in enumerate(nodes)}
    weight: dict[tuple[int, int], float] = {}
    identity: list[tuple[int, int]] = []
    for s, d, k, w in zip(
        sub.column("src").to_pylist(),
        sub.column("dst").to_pylist(),
        sub.column("kind").to_pylist(),
        sub.column("weight").to_pylist(),
        strict=True,
    ):
        if k not in CLUSTER_KINDS:
            continue
        key = (index[s], index[d])
        weight[key] = weight.get(key, 0.0) + float(w)
        if k in IDENTITY_KINDS:
            identity.append(key)
    if not weight and not hubs:
        return {}
    pairs = sorted(weight)
    if pairs:
        graph = ig.Graph(n=len(nodes), edges=pairs)
        graph.es["weight"] = [weight[p] for p in pairs]
        part = leidenalg.find_partition(
            graph, leidenalg.ModularityVertexPartition, weights="weight", seed=seed
        )
        community = list(part.membership)
    else:
        community = list(range(len(nodes)))
    # merge communities tied by enough identity edges (union-find over community ids)
    parent = list(range(max(community) + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    between = Counter(
        (min(community[a], community[b]), max(community[a], community[b]))
        for a, b in identity
        if community[a] != community[b]
    )
    for (ca, cb), n in sorted(between.items()):
        if n >= MERGE_MIN_EDGES:
            parent[find(ca)] = find(cb)
    degree = {i for p in pairs for i in p}
    if hubs:
        # union-find ids past the communities': one per node without edges (its own
        # community, whatever id Leiden gave it), then one per hub value
        n_comm = len(parent)
        community = [c if i in degree else n_comm + i for i, c in enumerate(community)]
        first_hub = n_comm + len(nodes)
        parent.extend(range(n_comm, first_hub + len(hubs)))
        _join_hubs(hubs, index, community, degree, parent, find, first_hub)
        degree |= {index[a] for holders in hubs.values() for a in holders if a in index}
    groups: dict[int, list[str]] = {}
    for i, a in enumerate(nodes):
        if i in degree:
            groups.setdefault(find(community[i]), []).append(a)
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) >= MIN_CAMPAIGN_SIZE:
            cid = campaign_id_for(members)
            out.update({a: cid for a in members})
    return out


def _join_hubs(
    hubs: dict[str, list[str]],
    index: dict[str, int],
    community: list[int],
    degree: set[int],
    parent: list[int],
    find: Callable[[int], int],
    first_hub: int,
) -> None:
    """Union each hub value (union-find id ``first_hub + h``) with its communities and loners.

    A card or staff handle: a community joins when at least half of its members hold the
    value; a holder in no community of two or more (no edge, or Leiden left it alone) joins
    on its own. Every member's community is taken after the identity merge (``find``), so
    "half" is of the merged community.

    A client stack (``client=``) is not an identity, so no one stack joins communities: a
    stock release two operators both run must not merge them (it did on seeds 12 and 13,
    through the half rule and through such loners). After the cards and staff handles,
    communities woven together by several stacks are merged (:func:`_merge_by_stacks`);
    then each stack belongs to the community holding a strict majority (and at least
    :data:`MERGE_MIN_EDGES`) of its holders that are in communities, and brings its loners
    there — a loner whose stacks belong to two communities, or that a card or staff handle
    already placed, stays where it is, since it would bridge them. An operator spreads its
    accounts over a dozen pinned stacks, so no one stack is half of its campaign, yet each
    stack's holders sit in that campaign.

    A stack no community owns and whose holders are mostly loners (:func:`_gather_unowned`)
    gathers them instead: an operator whose accounts share nothing but its harness leaves no
    community for the stack to belong to.
    """
    # communities as they were before any hub joined them
    root_of = {i: find(community[i]) for i in {index[a] for hs in hubs.values() for a in hs if a in index}}
    root_size = Counter(find(community[i]) for i in degree)
    tied: set[int] = set()  # loners a card or staff handle already placed
    # per client stack: community -> its holders there, and the stack's loners
    stacks: list[tuple[int, dict[int, set[int]], list[int]]] = []
    for h, value in enumerate(sorted(hubs)):
        node = first_hub + h
        held: dict[int, set[int]] = {}
        loners: list[int] = []
        for a in hubs[value]:
            i = index.get(a)
            if i is None:
                continue
            root = root_of[i]
            if i not in degree or root_size[root] < MIN_CAMPAIGN_SIZE:
                loners.append(root)  # its own community id
            else:
                held.setdefault(root, set()).add(i)
        if _hub_kind(value) == "client":
            stacks.append((node, held, loners))
            continue
        tied.update(loners)
        for root in [*loners, *(r for r, m in sorted(held.items()) if 2 * len(m) >= root_size[r])]:
            parent[find(root)] = find(node)
    _merge_by_stacks([held for _, held, _ in stacks], degree, community, parent, find)
    # each stack's loners go to the (merged) community holding a strict majority of its holders
    targets: dict[int, set[int]] = {}  # loner -> the communities its client stacks belong to
    unowned: list[tuple[int, dict[int, set[int]], list[int]]] = []
    for node, held, loners in stacks:
        merged: dict[int, set[int]] = {}
        for r, m in held.items():
            merged.setdefault(find(r), set()).update(m)
        owner = max(sorted(merged), key=lambda r: len(merged[r]), default=None)
        n_in = sum(len(m) for m in merged.values())
        if owner is not None and len(merged[owner]) >= MERGE_MIN_EDGES and 2 * len(merged[owner]) > n_in:
            for loner in loners:
                targets.setdefault(loner, set()).add(owner)
        else:
            unowned.append((node, merged, loners))
    # a loner whose stacks belong to two campaigns stays out: it would bridge them
    for loner, where in sorted(targets.items()):
        roots = {find(r) for r in where}
        if len(roots) == 1 and loner not in tied:
            parent[find(loner)] = find(next(iter(roots)))
    _gather_unowned(unowned, tied | set(targets), degree, community, parent, find)


def _gather_unowned(
    unowned: list[tuple[int, dict[int, set[int]], list[int]]],
    placed: set[int],
    degree: set[int],
    community: list[int],
    parent: list[int],
    find: Callable[[int], int],
) -> None:
    """Gather the holders of a client stack no community owns (see :func:`_join_hubs`).

    ``unowned``: per such stack, its union-find node, community -> its members holding the
    stack, and its loners. ``placed``: loners a card, a staff handle or an owned stack
    already placed. When the stack's loners that are still free number at least
    :data:`MERGE_MIN_EDGES` and outnumber its holders in communities, they join the stack's
    node, and so do the communities at least half of whose members hold it.

    Why: an operator whose accounts share no card, address or sign-up script (one card each,
    residential exits, no metadata) leaves its accounts as loners and pairs, and a pinned
    harness that more than ``max_client_accounts`` accounts run, most of them flagged, is all
    that ties them (docs/results.md, "An operator that shares nothing but its harness"). A
    stock release is not gathered: a stack is a hub only when most of its holders are
    flagged, and one whose holders sit mostly in one community belongs to that community.
    What this cannot tell apart: two operators whose flagged accounts are mostly loners on
    the same stack become one campaign.
    """
    size = Counter(find(community[i]) for i in degree)
    for node, merged, loners in unowned:
        free = [x for x in loners if x not in placed]
        if len(free) < MERGE_MIN_EDGES or len(free) <= sum(len(m) for m in merged.values()):
            continue
        for x in free:
            parent[find(x)] = find(node)
        for r, m in sorted(merged.items()):
            if 2 * len(m) >= size[r]:
                parent[find(r)] = find(node)


def _merge_by_stacks(
    holding: list[dict[int, set[int]]],
    degree: set[int],
    community: list[int],
    parent: list[int],
    find: Callable[[int], int],
) -> None:
    """Merge two communities woven together by client stacks (see :func:`_join_hubs`).

    ``holding``: per client hub, community -> its members holding the stack. Two communities
    (as merged so far) are merged when they hold at least :data:`MERGE_MIN_EDGES` stacks in
    common *and* most members of each (at least half) hold one of those shared stacks.
    """
    size = Counter(find(community[i]) for i in degree)
    by_pair: dict[tuple[int, int], tuple[set[int], set[int], int]] = {}
    for members in holding:
        merged: dict[int, set[int]] = {}
        for r, held in members.items():
            merged.setdefault(find(r), set()).update(held)
        roots = sorted(merged)
        for k, x in enumerate(roots):
            for y in roots[k + 1 :]:
                hx, hy, n = by_pair.get((x, y), (set(), set(), 0))
                by_pair[(x, y)] = (hx | merged[x], hy | merged[y], n + 1)
    for (x, y), (hx, hy, n) in sorted(by_pair.items()):
        if n >= MERGE_MIN_EDGES and 2 * len(hx) >= size[x] and 2 * len(hy) >= size[y]:
            parent[find(x)] = find(y)


def hub_values(
    backend: Backend,
    vals: str,
    acc: str,
    flagged_ids: list[str],
    max_group: int,
    max_client: int | None = None,
) -> dict[str, list[str]]:
    """Over-cap values held mostly by flagged accounts: the hubs of the module docstring.

    Cards and metadata pairs held by more than ``max_group`` accounts, and client stacks
    (user agent + TLS fingerprint, ``vals`` kind ``client``) held by more than ``max_client``
    accounts (``EdgeParams.max_client_accounts``: the cap past which linking makes no client
    edges; ``None`` leaves client stacks out), in each case with most holders flagged.
    Returns ``"kind=value"`` -> all its holders, flagged or not (sorted). Read from the
    statistics' value sets and the accounts table, with the flagged ids registered as a table.
    """
    backend.register(_FLAGGED, pa.table({"account_id": pa.array(sorted(flagged_ids), pa.string())}))
    client = (
        f"UNION ALL SELECT DISTINCT 'client' AS kind, val, account_id FROM {quote_name(vals)} "
        "WHERE kind = 'client' AND val IS NOT NULL"
        if max_client is not None
        else ""
    )
    cap = (
        str(int(max_group))
        if max_client is None
        else f"CASE WHEN m.kind = 'client' THEN {int(max_client)} ELSE {int(max_group)} END"
    )
    try:
        sql = (
            f"WITH m AS (SELECT DISTINCT 'metadata' AS kind, val, account_id FROM {quote_name(vals)} "
            "WHERE kind = 'metadata' AND val IS NOT NULL "
            "UNION ALL SELECT DISTINCT 'payment' AS kind, payment_fingerprint AS val, account_id "
            f"FROM {acc} WHERE payment_fingerprint IS NOT NULL {client}), "
            "h AS (SELECT m.kind, m.val FROM m LEFT JOIN "
            f"{_FLAGGED} f ON f.account_id = m.account_id GROUP BY m.kind, m.val "
            f"HAVING count(*) > {cap} AND 2 * count(f.account_id) > count(*)) "
            "SELECT h.kind, h.val, m.account_id FROM h JOIN m ON m.kind = h.kind AND m.val = h.val "
            "ORDER BY h.kind, h.val, m.account_id"
        )
        out: dict[str, list[str]] = {}
        for r in _rows(backend, sql):
            out.setdefault(f"{r['kind']}={r['val']}", []).append(str(r["account_id"]))
        return out
    finally:
        backend.register(_FLAGGED, pa.table({"account_id": pa.array([], pa.string())}))


def _rows(backend: Backend, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = backend.query(sql).to_pylist()
    return rows


def _indicators(backend: Backend, vals: str, acc: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per campaign, the infrastructure its members share: value, member accounts, exchanges.

    From the statistics' value sets (``vals``: uses per account and value) and the accounts'
    payment fingerprints — not the exchanges.
    """
    kinds = {
        "ips": "ip",
        "prefixes": "prefix",
        "asns": "asn",
        "user_agents": "ua",
        "tls_fingerprints": "tls",
        "template_ids": "template",
    }
    dims = {
        dim: f"SELECT m.campaign_id, v.val, v.account_id, v.c FROM {quote_name(vals)} v "
        f"JOIN {_MEMBERS} m ON m.account_id = v.account_id WHERE v.kind = '{kind}'"
        for dim, kind in kinds.items()
    }
    dims["payment_fingerprints"] = (
        "SELECT m.campaign_id, a.payment_fingerprint AS val, a.account_id, 1 AS c "
        f"FROM {acc} a JOIN {_MEMBERS} m USING (account_id)"
    )
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for dim, src in dims.items():
        sql = (
            "SELECT campaign_id, val, accounts, exchanges FROM ("
            "SELECT campaign_id, val, count(DISTINCT account_id) AS accounts, sum(c) AS exchanges, "
            "row_number() OVER (PARTITION BY campaign_id ORDER BY count(DISTINCT account_id) DESC, "
            "sum(c) DESC, val) AS rk "
            f"FROM ({src}) d WHERE val IS NOT NULL GROUP BY campaign_id, val) r "
            f"WHERE rk <= {TOP_INDICATORS} AND accounts >= 2 ORDER BY campaign_id, rk"
        )
        for r in _rows(backend, sql):
            item = {"value": str(r["val"]), "accounts": int(r["accounts"]), "exchanges": int(r["exchanges"])}
            out.setdefault(r["campaign_id"], {}).setdefault(dim, []).append(item)
    return out


def _metadata_clues(backend: Backend, vals: str) -> dict[str, list[dict[str, Any]]]:
    sql = (
        "SELECT m.campaign_id, v.val AS pair, count(DISTINCT v.account_id) AS accounts, "
        f"sum(v.c) AS exchanges FROM {quote_name(vals)} v JOIN {_MEMBERS} m ON m.account_id = v.account_id "
        "WHERE v.kind = 'metadata' "
        "GROUP BY m.campaign_id, v.val HAVING count(DISTINCT v.account_id) >= 2 "
        "ORDER BY m.campaign_id, accounts DESC, exchanges DESC, pair"
    )
    out: dict[str, list[dict[str, Any]]] = {}
    pat = re.compile(_PAIR)
    for r in _rows(backend, sql):
        match = pat.fullmatch(str(r["pair"]))
        key, value = (match.group(1), match.group(2)) if match else ("", str(r["pair"]))
        clues = out.setdefault(r["campaign_id"], [])
        if len(clues) < TOP_INDICATORS:
            clues.append(
                {"key": key, "value": value, "accounts": int(r["accounts"]), "exchanges": int(r["exchanges"])}
            )
    return out


def _release_pivots(backend: Backend, ex: str, rel: str | None) -> dict[str, dict[str, Any]]:
    """Per campaign, the release with the largest move onto the new model within 48 h."""
    if rel is None:
        return {}
    sql = (
        "SELECT m.campaign_id, r.model, r.released_at, "
        "avg(CASE WHEN x.ts < r.released_at AND x.ts >= r.released_at - INTERVAL 24 HOUR "
        "THEN (CASE WHEN x.model = r.model THEN 1.0 ELSE 0.0 END) END) AS share_before, "
        "avg(CASE WHEN x.ts >= r.released_at AND x.ts < r.released_at + INTERVAL 24 HOUR "
        "THEN (CASE WHEN x.model = r.model THEN 1.0 ELSE 0.0 END) END) AS share_24h, "
        "avg(CASE WHEN x.ts >= r.released_at + INTERVAL 24 HOUR AND x.ts < r.released_at + INTERVAL 48 HOUR "
        "THEN (CASE WHEN x.model = r.model THEN 1.0 ELSE 0.0 END) END) AS share_48h "
        f"FROM {ex} x JOIN {_MEMBERS} m USING (account_id) CROSS JOIN {rel} r "
        "WHERE x.ts >= r.released_at - INTERVAL 24 HOUR AND x.ts < r.released_at + INTERVAL 48 HOUR "
        "GROUP BY m.campaign_id, r.model, r.released_at"
    )
    best: dict[str, dict[str, Any]] = {}
    for r in _rows(backend, sql):
        after = max(r["share_24h"] or 0.0, r["share_48h"] or 0.0)
        if after <= 0:
            continue
        cur = best.get(r["campaign_id"])
        if cur is None or after > max(cur["share_24h"] or 0.0, cur["share_48h"] or 0.0):
            best[r["campaign_id"]] = {
                "model": r["model"],
                "released_at": r["released_at"].isoformat(),
                "share_before": r["share_before"],
                "share_24h": r["share_24h"],
                "share_48h": r["share_48h"],
            }
    return best


def _link_edges(edges: pa.Table, members: pa.Table) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Per campaign, its strongest :data:`MAX_LINK_EDGES` internal edges (not ``sync``) and the count.

    ``members``: account_id, campaign_id. In Arrow on the edge table the scan already holds:
    a hash join and one sort. The same selection as a window query (``row_number() OVER
    (PARTITION BY campaign ORDER BY weight DESC, kind, src, dst)``) took 217 s of a 295 s
    campaign step at seed scale (an 18,000-account hydra has millions of internal edges);
    this takes seconds. Ties break on kind, src, dst (byte order), so the choice is
    deterministic.
    """
    e = edges.select(["src", "dst", "kind", "weight"])
    e = e.filter(pc.not_equal(e.column("kind"), "sync"))
    by_src = members.rename_columns(["src", "campaign_id"])
    by_dst = members.rename_columns(["dst", "dst_campaign"])
    e = e.join(by_src, "src", join_type="inner").join(by_dst, "dst", join_type="inner")
    e = e.filter(pc.equal(e.column("campaign_id"), e.column("dst_campaign")))
    if e.num_rows == 0:
        return {}, {}
    e = e.sort_by(
        [
            ("campaign_id", "ascending"),
            ("weight", "descending"),
            ("kind", "ascending"),
            ("src", "ascending"),
            ("dst", "ascending"),
        ]
    )
    counts_t = e.group_by("campaign_id").aggregate([("campaign_id", "count")])
    counts = dict(
        zip(
            counts_t.column("campaign_id").to_pylist(),
            (int(n) for n in counts_t.column("campaign_id_count").to_pylist()),
            strict=True,
        )
    )
    links: dict[str, list[dict[str, Any]]] = {}
    start = 0
    for cid in sorted(counts):  # the sort grouped rows by campaign in this order
        top = e.slice(start, min(counts[cid], MAX_LINK_EDGES))
        links[cid] = [
            {"src": r["src"], "dst": r["dst"], "kind": r["kind"], "weight": round(float(r["weight"]), 4)}
            for r in top.select(["src", "dst", "kind", "weight"]).to_pylist()
        ]
        start += counts[cid]
    return links, counts


def _campaign_families(backend: Backend, stats: StatsNames, accounts: pa.Table) -> None:
    """Register ``_ds_campaign_families(family)``: template families a campaign's generator uses.

    Read from the statistics' value sets (which accounts used which family), not the exchanges.
    """
    backend.register("_ds_scored", accounts.select(["account_id", "flagged"]))
    backend.execute(
        "CREATE OR REPLACE TABLE _ds_campaign_families AS "
        "WITH u AS (SELECT DISTINCT val AS family, account_id "
        f"FROM {quote_name(stats.vals)} WHERE kind = 'family'), "
        "sizes AS (SELECT campaign_id, count(*) AS n FROM "
        f"{_MEMBERS} GROUP BY campaign_id), "
        "inside AS (SELECT u.family, m.campaign_id, count(*) AS k FROM u "
        f"JOIN {_MEMBERS} m USING (account_id) GROUP BY u.family, m.campaign_id), "
        "outside AS (SELECT u.family, count(*) AS k FROM u JOIN _ds_scored a USING (account_id) "
        "WHERE NOT a.flagged GROUP BY u.family) "
        "SELECT DISTINCT i.family FROM inside i JOIN sizes z USING (campaign_id) "
        "LEFT JOIN outside o ON o.family = i.family "
        "WHERE i.k >= greatest(2, ceil(0.1 * z.n)) AND coalesce(o.k, 0) <= 1"
    )


def _campaign_share(backend: Backend, stats: StatsNames) -> dict[str, float]:
    """Per account: the share of its exchanges whose family is a campaign's, from the statistics."""
    sql = (
        "SELECT c.account_id, CAST(coalesce(m.k, 0) AS DOUBLE) / c.n AS share "
        f"FROM (SELECT account_id, sum(n) AS n FROM {quote_name(stats.chunks)} GROUP BY account_id) c "
        "LEFT JOIN (SELECT v.account_id, sum(v.c) AS k "
        f"FROM {quote_name(stats.vals)} v JOIN _ds_campaign_families f ON f.family = v.val "
        "WHERE v.kind = 'family' GROUP BY v.account_id) m ON m.account_id = c.account_id"
    )
    return {r["account_id"]: float(r["share"]) for r in _rows(backend, sql)}


def campaign_summary(c: dict[str, Any]) -> str:
    """The plain-language summary of a campaign object (its ``summary`` field)."""
    dormant = len(c.get("dormant_accounts") or [])
    parts = [f"{c['size'] - dormant} linked accounts sent {c['exchanges']:,} requests"]
    if c.get("first_seen") and c.get("last_seen"):
        parts[0] += (
            f" between {c['first_seen'][:16].replace('T', ' ')}"
            f" and {c['last_seen'][:16].replace('T', ' ')} UTC"
        )
    mix = c.get("capability_mix") or {}
    if mix:
        top = sorted(mix.items(), key=lambda kv: -kv[1])[:2]
        parts.append("mostly " + " and ".join(f"{k} ({v:.0%})" for k, v in top))
    cot = c.get("cot_elicitation_share")
    if cot is not None and cot >= 0.05:
        parts.append(f"{cot:.0%} of prompts ask the model to expose its reasoning")
    infra = c.get("infrastructure") or {}
    shared = [
        f"{len(v)} shared {k.replace('_', ' ')}"
        for k, v in infra.items()
        if v and k in ("payment_fingerprints", "ips", "prefixes")
    ]
    if shared:
        parts.append("linked by " + ", ".join(shared))
    if c.get("metadata_clues"):
        clue = c["metadata_clues"][0]
        parts.append(
            f"request metadata {clue['key']}={clue['value']!r} recurs in {clue['accounts']} accounts"
        )
    pivot = c.get("release_pivot")
    if pivot and max(pivot.get("share_24h") or 0, pivot.get("share_48h") or 0) >= 0.2:
        parts.append(
            f"moved {max(pivot.get('share_24h') or 0, pivot.get('share_48h') or 0):.0%} of its traffic "
            f"to {pivot['model']} within 48 h of its release"
        )
    if dormant:
        parts.append(
            f"{dormant} more registered account{'s share their' if dormant > 1 else ' shares their'} "
            "cards or sign-ups and sent nothing"
        )
    return "; ".join(parts) + "."


def build_campaigns(
    backend: Backend,
    names: dict[str, str | None],
    accounts: pa.Table,
    edges: pa.Table,
    *,
    novelty_quantile: float = 0.99,
    novelty_links: int = 2,
    corroborated_score: float = 0.5,
    dossiers: bool = True,
    seed: int = 0,
    stats: StatsNames | None = None,
    max_group: int = EdgeParams().max_group,
    max_client: int | None = EdgeParams().max_client_accounts,
    organisation: dict[str, str] | None = None,
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Cluster flagged accounts and write each campaign's dossier.

    ``accounts`` has account_id, score, flagged, novelty, top_reasons (one row per scored
    account); returns it with ``flagged`` updated by corroboration and coordinated novelty and ``campaign_id``
    and ``campaign_share`` added, plus the campaign objects sorted by score then id.
    ``stats``: the statistics tables the scan finished from (the dossier reads them).
    ``max_group``: the linking cap the edges were built with; identity values held by more
    accounts than that, most of them flagged, join campaigns as hubs (module docstring).
    ``max_client``: the client-stack cap they were built with (``None``: no client hubs).
    ``organisation``: account -> the organisation it claims
    (:func:`~distillshield.detect.graph.organisations`), computed here when not given.
    """
    ex, acc = str(names["exchanges"]), str(names["accounts"])
    rel = names.get("releases")
    st = stats or StatsNames()
    model_flagged = pc.filter(accounts.column("account_id"), accounts.column("flagged")).to_pylist()
    # client stacks only cluster, and without dossiers nothing is clustered (a replay's steps)
    client_cap = max_client if dossiers else None
    hubs = hub_values(backend, st.vals, acc, model_flagged, max_group, client_cap) if model_flagged else {}
    if organisation is None:
        enr = names.get("account_enrichment")
        organisation = organisations(backend, accounts=acc, account_enrichment=str(enr)) if enr else None
    flagged, promoted = _promote(
        accounts,
        edges,
        novelty_quantile=novelty_quantile,
        novelty_links=novelty_links,
        corroborated_score=corroborated_score,
        hubs=hubs,
        organisation=organisation,
    )
    ids = accounts.column("account_id").to_pylist()
    reasons = accounts.column("top_reasons").to_pylist()
    for i, a in enumerate(ids):
        if a in promoted:
            reasons[i] = [promoted[a], *reasons[i]]
    flagged_ids = [a for a, f in zip(ids, flagged, strict=True) if f]
    flagged_set = set(flagged_ids)
    members_of = {v: [a for a in holders if a in flagged_set] for v, holders in hubs.items()}
    assign = _cluster(flagged_ids, edges, seed=seed, hubs=members_of) if dossiers else {}
    campaign_col = [assign.get(a) for a in ids]
    members = pa.table(
        {
            "account_id": pa.array([a for a in ids if a in assign], pa.string()),
            "campaign_id": pa.array([assign[a] for a in ids if a in assign], pa.string()),
        }
    )
    backend.register(_MEMBERS, members)
    scores = dict(zip(ids, accounts.column("score").to_pylist(), strict=True))
    out = (
        accounts.set_column(
            accounts.schema.get_field_index("flagged"), "flagged", pa.array(flagged, pa.bool_())
        )
        .set_column(
            accounts.schema.get_field_index("top_reasons"),
            "top_reasons",
            pa.array(reasons, pa.list_(pa.string())),
        )
        .append_column("campaign_id", pa.array(campaign_col, pa.string()))
    )
    if not dossiers:
        return out.append_column("campaign_share", pa.nulls(out.num_rows, pa.float64())), []
    _campaign_families(backend, st, out)
    share = _campaign_share(backend, st)
    out = out.append_column("campaign_share", pa.array([share.get(a) for a in ids], pa.float64()))
    if members.num_rows == 0:
        return out, []

    chunks, vals, activity = quote_name(st.chunks), quote_name(st.vals), quote_name(st.activity)
    base = {
        r["campaign_id"]: r
        for r in _rows(
            backend,
            "SELECT m.campaign_id, sum(c.n) AS exchanges, min(c.first_ts) AS first_seen, "
            "max(c.last_ts) AS last_seen, CAST(sum(c.expose_n) AS DOUBLE) / sum(c.n) AS cot "
            f"FROM {chunks} c JOIN {_MEMBERS} m ON m.account_id = c.account_id GROUP BY m.campaign_id",
        )
    }
    mix: dict[str, dict[str, float]] = {}
    for r in _rows(
        backend,
        f"SELECT m.campaign_id, v.val AS capability, sum(v.c) AS n FROM {vals} v "
        f"JOIN {_MEMBERS} m ON m.account_id = v.account_id WHERE v.kind = 'capability' "
        "GROUP BY m.campaign_id, v.val ORDER BY m.campaign_id, n DESC, capability",
    ):
        mix.setdefault(r["campaign_id"], {})[r["capability"]] = float(r["n"])
    # hourly timeline on UTC hours, summed from the statistics' 10-minute activity bins
    span = _rows(backend, f"SELECT min(first_ts) AS t0, max(last_ts) AS t1 FROM {chunks}")[0]
    t0 = span["t0"].replace(minute=0, second=0, microsecond=0) if span["t0"] is not None else None
    n_bins = math.floor((span["t1"] - t0).total_seconds() / 3600) + 1 if t0 is not None else 0
    timeline: dict[str, list[int]] = {}
    bin_s = float(stats_params().sync_bin_minutes) * 60.0
    if t0 is not None:
        for r in _rows(
            backend,
            f"SELECT m.campaign_id, floor((a.bin * {bin_s!r} - epoch(TIMESTAMPTZ '{t0.isoformat()}')) "
            f"/ 3600) AS b, sum(a.c) AS n FROM {activity} a JOIN {_MEMBERS} m ON m.account_id = a.account_id "
            "GROUP BY 1, 2",
        ):
            series = timeline.setdefault(r["campaign_id"], [0] * n_bins)
            hour = int(r["b"])
            if 0 <= hour < n_bins:
                series[hour] = int(r["n"])
    infra = _indicators(backend, st.vals, acc)
    clues = _metadata_clues(backend, st.vals)
    pivots = _release_pivots(backend, ex, rel)

    by_campaign: dict[str, list[str]] = {}
    for a, cid in assign.items():
        by_campaign.setdefault(cid, []).append(a)
    reasons_of = dict(zip(ids, reasons, strict=True))
    links, link_counts = _link_edges(edges, members)

    campaigns: list[dict[str, Any]] = []
    for cid, mem in by_campaign.items():
        mem.sort()
        b = base.get(cid, {})
        counts = mix.get(cid, {})
        total = sum(counts.values())
        common = Counter(r.split("=")[0].split(" (")[0] for a in mem for r in (reasons_of[a] or []))
        edges_c = links.get(cid, [])
        c: dict[str, Any] = {
            "id": cid,
            "actor": None,
            "accounts": mem,
            "size": len(mem),
            "score": float(np.median([scores[a] for a in mem])),
            "first_seen": b["first_seen"].isoformat() if b.get("first_seen") else None,
            "last_seen": b["last_seen"].isoformat() if b.get("last_seen") else None,
            "exchanges": int(b.get("exchanges", 0)),
            "campaign_exchanges_estimate": round(sum((share.get(a) or 0.0) for a in mem)),
            "capability_mix": {k: round(v / total, 4) for k, v in counts.items()} if total else {},
            "cot_elicitation_share": round(float(b["cot"]), 4) if b.get("cot") is not None else None,
            "infrastructure": infra.get(cid, {}),
            "metadata_clues": clues.get(cid, []),
            "release_pivot": pivots.get(cid),
            "timeline": {
                "start": t0.isoformat() if t0 else None,
                "bin_hours": 1,
                "counts": timeline.get(cid, []),
            },
            "link_edges": edges_c,
            "link_edge_count": link_counts.get(cid, 0),
            "top_reasons": [f"{k} ({n} of {len(mem)} accounts)" for k, n in common.most_common(6)],
        }
        c["summary"] = campaign_summary(c)
        campaigns.append(c)
    _attach_operators(campaigns)
    campaigns.sort(key=lambda c: (-c["score"], c["id"]))
    return out, campaigns


def _attach_operators(campaigns: list[dict[str, Any]]) -> None:
    """Operator profiles: campaigns sharing a payment fingerprint or metadata clue share one.

    A profile is only attached when money or metadata supports it (shared proxies alone are
    rented by many operators). The id hashes the profile's sorted clue values, so the same
    evidence gives the same id on every run.

    A clue ties a campaign to a profile only when the campaign holds at least
    :data:`OPERATOR_MIN_SHARE` of the clue's holders over all campaigns. A few of one
    operator's accounts that Leiden placed in another operator's cluster (they share its
    proxies) carry their own staff handle into that cluster's clues; at seed scale campaign
    B's harness tag was held by 2,721 accounts of B's cluster, 105 of C's and 39 of D's, and
    joined the three operators into one profile.
    """
    held: dict[str, dict[str, int]] = {}
    for c in campaigns:
        for i in c["infrastructure"].get("payment_fingerprints", []):
            held.setdefault(c["id"], {})[f"pay:{i['value']}"] = int(i["accounts"])
        for m in c["metadata_clues"]:
            held.setdefault(c["id"], {})[f"meta:{m['key']}={m['value']}"] = int(m["accounts"])
    total: Counter[str] = Counter()
    for counts in held.values():
        total.update(counts)
    clues: dict[str, set[str]] = {
        c["id"]: {v for v, n in held.get(c["id"], {}).items() if n >= OPERATOR_MIN_SHARE * total[v]}
        for c in campaigns
    }
    parent = {c["id"]: c["id"] for c in campaigns}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, str] = {}
    for cid in sorted(clues):
        for v in sorted(clues[cid]):
            if v in owner:
                parent[find(cid)] = find(owner[v])
            else:
                owner[v] = cid
    profile_clues: dict[str, set[str]] = {}
    for cid, vals in clues.items():
        profile_clues.setdefault(find(cid), set()).update(vals)
    for c in campaigns:
        vals = profile_clues[find(c["id"])]
        if vals:
            c["actor"] = "op-" + hashlib.sha256("\n".join(sorted(vals)).encode()).hexdigest()[:10]
            c["operator_evidence"] = sorted(vals)[:TOP_INDICATORS]
