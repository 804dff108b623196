"""Evidence edges between accounts: the raw material for linking accounts into campaigns.

A hydra cluster spreads one operator's traffic over many accounts so that each looks like a
light user. What the accounts cannot cheaply stop sharing is *infrastructure*: the payment
instrument that pays for them, the proxy addresses their traffic leaves from, the client stack
that sends it, the prompt wrappers it is stamped from, and the sign-up script that created
them. :func:`account_edges` turns each of those into edges ``(src, dst, kind, weight,
evidence)`` between account ids, ``src < dst``, one row per (pair, kind).

How pairs are generated (and why nothing is quadratic in the number of accounts)
    Every kind is a *shared value*: accounts are grouped by the value (a payment fingerprint,
    an IP, a ``/24`` or ``/48`` prefix, a user-agent + TLS pair, a template family, a sign-up
    address) and pairs are generated only inside a group. A group of ``n`` accounts yields
    ``n (n - 1) / 2`` pairs, so groups larger than a cap are skipped entirely. That is not
    only a cost guard: a value shared by hundreds of accounts is infrastructure everyone uses
    (a campus NAT, a mobile carrier's CGNAT, a corporate VPN egress, the default user agent of
    a popular SDK, a public benchmark prompt), and it says nothing about who operates them.

Weights (label-free, one formula for every shared-value kind; ``sync`` below is the exception)
    A shared value held by ``n`` of the ``N`` accounts is evidence in proportion to how
    surprising it is that two accounts hold it: its inverse document frequency
    ``log(N / n)``, normalised by the largest possible value ``log(N / 2)`` (a value shared by
    exactly two accounts), so ``weight = log(N / n) / log(N / 2)`` lies in (0, 1] and falls
    smoothly as the group grows. When a pair shares several values of one kind (several proxy
    addresses), the edge takes the rarest one (the largest weight) and ``evidence`` says how
    many values were shared; values from one proxy pool are not independent, so adding them up
    would over-count. Nothing here is fitted to the simulator: the only knobs are the caps,
    the time windows and what is taken as a value.

Kinds
    ``payment``   same ``accounts.payment_fingerprint`` (cap ``max_group``).
    ``ip``        same ``exchanges.ip`` used by both accounts within ``window_hours`` of each
                  other (an address is reassigned over weeks; a proxy serves a cluster now).
    ``prefix``    same ``derived/enrichment.ip_prefix`` (``/24`` or ``/48``) within the window:
                  proxy pools rotate addresses inside a prefix.
    ``client``    identical (``user_agent``, ``tls_fingerprint``) pair used by at most
                  ``max_client_accounts`` accounts: a custom or pinned client stack is a
                  fingerprint, a stock SDK string joins everyone.
    ``template``  same ``derived/signals.template_family``, used at least ``min_template_uses``
                  times by each account (once is phrasing; a generator repeats its frame),
                  cap ``max_group``: a generator's
                  wrapper used across the accounts it farms. A SaaS system prompt used by one
                  account yields no pair at all; a public prompt used by many gets a low weight.
    ``signup``    accounts created from the same ``signup_ip`` (IPv4 addresses are taken at
                  their ``/24``) within ``signup_window_hours`` of each other: sequential
                  sign-ups by one script.
    ``metadata``  the same ``"key": "value"`` string pair in both accounts' request ``metadata``
                  (cap ``max_group``): operator-identifying clues such as a staff handle or
                  an internal harness build leaking into requests. Per-end-user ids a SaaS
                  sends are unique to one account and yield no pair; a generic value
                  (``"env": "prod"``) is common and weighs little. Not strong on its own:
                  a popular framework's default tag joins strangers.
    ``sync``      synchronised activity: Pearson correlation of the two accounts' request
                  counts per ``sync_bin_minutes`` bin over the whole timeline (zeros
                  included), for pairs that already share another edge and were co-active in
                  at least ``min_sync_bins`` bins; weight ``r`` (edges with ``r <= 0`` are
                  dropped). Round-robin load balancing makes one operator's accounts rise and
                  fall together. Restricting to candidate pairs keeps it linear in the other
                  edges rather than quadratic in accounts, and it is not a rarity weight: a
                  class doing one assignment in one hour is synchronised too, so ``sync``
                  corroborates, it never links on its own. Each account's candidates are
                  capped at its ``sync_partners`` strongest (summed weight of the other
                  edges, ties by id; counted once as the smaller and once as the larger id
                  of a pair): inside a hydra of thousands of accounts every account shares a
                  proxy with hundreds of siblings, and correlating all those pairs took 279 s
                  of a 1,170 s scan at seed scale for a kind no score reads.

All relational work is SQL in the reference dialect run through :meth:`Backend.query`, so it
transpiles to Spark (:func:`edge_statements` exposes every statement for that check).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from distillshield._sql import quote_name
from distillshield.backends import Backend
from distillshield.features.stats import StatsNames, StatsParams, compute_stats

__all__ = [
    "EDGE_KINDS",
    "EDGE_SCHEMA",
    "STRONG_KINDS",
    "EdgeParams",
    "account_edges",
    "edge_statements",
    "stats_params",
]

#: Every kind :func:`account_edges` can produce, in output order.
EDGE_KINDS: tuple[str, ...] = ("payment", "ip", "prefix", "client", "template", "signup", "metadata", "sync")

#: Kinds that are infrastructure or money shared at the same time, safe to take alone as
#: "same operator" for connected components (same operator, not "fraudulent": a company's
#: employees behind one VPN on one corporate card form one component, which is right).
#: ``client``, ``template`` and ``sync`` are not: a stock SDK version or a popular prompt
#: skeleton looks rare in a small population and coincides across strangers (on the default
#: scenario a university student and a campaign account share an SDK build nobody else in a
#: 5 % sample uses), and a class is as synchronised as a botnet. They corroborate; they do
#: not merge.
STRONG_KINDS: tuple[str, ...] = ("payment", "ip", "prefix", "signup")

#: The columns of the edge table.
EDGE_SCHEMA = pa.schema(
    [
        pa.field("src", pa.string(), nullable=False),
        pa.field("dst", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class EdgeParams:
    """The knobs of :func:`account_edges`; see the module docstring for why each exists."""

    max_group: int = 200
    max_client_accounts: int = 20
    signup_window_hours: float = 6.0
    min_template_uses: int = 3
    sync_bin_minutes: float = 10.0
    min_sync_bins: int = 3
    sync_partners: int = 20
    kinds: tuple[str, ...] = EDGE_KINDS


#: Name under which :func:`account_edges` registers the candidate pairs for ``sync``.
_CANDIDATES = "_ds_link_candidates"


def _weight(n: str, total: str) -> str:
    """SQL for the normalised IDF weight of a value shared by ``n`` of ``total`` accounts."""
    return (
        f"CASE WHEN {total} <= 2 THEN 1.0 ELSE greatest(0.0, least(1.0, "
        f"ln(CAST({total} AS DOUBLE) / {n}) / ln(CAST({total} AS DOUBLE) / 2))) END"
    )


def _pick(pairs: str, kind: str, accounts: str) -> str:
    """Reduce ``pairs(src, dst, val, n)`` to one edge per pair: the rarest value, ties by value.

    ``evidence`` names the value (truncated), how many accounts hold it and how many distinct
    values of this kind the pair shares.
    """
    return (
        f"SELECT src, dst, '{kind}' AS kind, {_weight('n', 'total')} AS weight, "
        f"'{kind}=' || left(val, 40) || ' accounts=' || CAST(n AS VARCHAR) "
        "|| ' shared=' || CAST(shared AS VARCHAR) AS evidence "
        "FROM (SELECT src, dst, val, n, "
        "row_number() OVER (PARTITION BY src, dst ORDER BY n, val) AS rk, "
        "count(*) OVER (PARTITION BY src, dst) AS shared "
        f"FROM (SELECT DISTINCT src, dst, val, n FROM ({pairs}) p) d) r "
        f"CROSS JOIN (SELECT count(DISTINCT account_id) AS total FROM {accounts}) t WHERE rk = 1"
    )


def _static_pairs(members: str, cap: str, min_uses: int = 1) -> str:
    """Pairs inside groups of ``members(val, account_id, c)`` of size 2..cap, with the group size.

    ``c`` is how often the account used the value. An account joins a value's group only when
    it used it at least ``min_uses`` times (an account that used a prompt skeleton once was
    phrasing, not running a generator).
    """
    return (
        f"WITH m AS (SELECT val, account_id FROM ({members}) x WHERE val IS NOT NULL "
        f"GROUP BY val, account_id HAVING sum(c) >= {int(min_uses)}), "
        "g AS (SELECT val, count(*) AS n FROM m GROUP BY val), "
        f"k AS (SELECT m.val, m.account_id, g.n FROM m JOIN g ON g.val = m.val "
        f"WHERE g.n >= 2 AND g.n <= {cap}) "
        "SELECT a.account_id AS src, b.account_id AS dst, a.val, a.n "
        "FROM k a JOIN k b ON b.val = a.val AND a.account_id < b.account_id"
    )


def _event_bins(events: str, window_s: float) -> str:
    """``events(val, account_id, ts)`` as ``(val, account_id, bin, t0, t1)`` rows, one per event."""
    w = f"{window_s!r}"
    return (
        f"SELECT val, account_id, CAST(floor(epoch(ts) / {w}) AS BIGINT) AS bin, "
        f"epoch(ts) AS t0, epoch(ts) AS t1 FROM ({events}) ev"
    )


def _windowed_pairs(bins: str, window_s: float, cap: str) -> str:
    """Pairs of accounts that used one value within ``window_s`` seconds of each other.

    ``bins(val, account_id, bin, t0, t1)``: time cut into bins one window long, with the first
    and last use (epoch seconds) of the value by the account in the bin — possibly several rows
    per key (one per statistics chunk), merged here by min/max. Two uses in one bin are always
    within the window; uses two or more bins apart never are; for neighbouring bins the
    closest possible uses are the last of the earlier bin and the first of the later one. So
    the test is exact while the join only ever meets rows of one value and adjacent bins.
    """
    w = f"{window_s!r}"
    return (
        "WITH e AS (SELECT val, account_id, bin, min(t0) AS t0, max(t1) AS t1 "
        f"FROM ({bins}) x WHERE val IS NOT NULL GROUP BY val, account_id, bin), "
        "g AS (SELECT val, count(DISTINCT account_id) AS n FROM e GROUP BY val), "
        "s AS (SELECT e.val, e.account_id, e.bin, g.n, e.t0, e.t1 FROM e "
        f"JOIN g ON g.val = e.val WHERE g.n >= 2 AND g.n <= {cap}) "
        "SELECT DISTINCT a.account_id AS src, b.account_id AS dst, a.val, a.n "
        "FROM s a JOIN s b ON b.val = a.val AND a.account_id < b.account_id "
        "AND b.bin >= a.bin - 1 AND b.bin <= a.bin + 1 "
        f"WHERE a.bin = b.bin OR (b.bin = a.bin + 1 AND b.t0 - a.t1 <= {w}) "
        f"OR (a.bin = b.bin + 1 AND a.t0 - b.t1 <= {w})"
    )


def _sync_sql(activity: str, candidates: str, min_bins: int, partners: int) -> str:
    """Pearson correlation of per-bin request counts for the pairs in ``candidates(src, dst, weight)``.

    A pair is kept when it is among the ``partners`` strongest of its smaller id's pairs or of
    its larger id's pairs (summed weight over the candidate edges, rounded to 1e-9 so engines
    that sum in another order rank alike; ties by the other id).

    ``activity(account_id, bin, c)``: request counts per synchronisation bin (several rows per
    key when the statistics span several chunks; they are summed).

    Over the whole observed timeline of ``T`` bins, zeros included, from sums alone:
    ``r = (T Sxy - Sx Sy) / sqrt((T Sxx - Sx^2) (T Syy - Sy^2))``. Only bins where both
    accounts are active contribute to ``Sxy``, so the join touches co-active bins of candidate
    pairs only, never all pairs of accounts.
    """
    return (
        f"WITH x AS (SELECT account_id, bin, CAST(sum(c) AS DOUBLE) AS c FROM {activity} "
        "GROUP BY account_id, bin), "
        "span AS (SELECT max(bin) - min(bin) + 1 AS t FROM x), "
        "m AS (SELECT account_id, sum(c) AS s, sum(c * c) AS ss FROM x GROUP BY account_id), "
        "p AS (SELECT src, dst FROM (SELECT src, dst, "
        "row_number() OVER (PARTITION BY src ORDER BY w DESC, dst) AS rs, "
        "row_number() OVER (PARTITION BY dst ORDER BY w DESC, src) AS rd "
        f"FROM (SELECT src, dst, round(sum(weight), 9) AS w FROM {candidates} GROUP BY src, dst) pw) ranked "
        f"WHERE rs <= {int(partners)} OR rd <= {int(partners)}), "
        "co AS (SELECT p.src, p.dst, sum(a.c * b.c) AS sxy, count(*) AS nco FROM p "
        "JOIN x a ON a.account_id = p.src JOIN x b ON b.account_id = p.dst AND b.bin = a.bin "
        f"GROUP BY p.src, p.dst HAVING count(*) >= {int(min_bins)}), "
        "r AS (SELECT co.src, co.dst, co.nco, (span.t * co.sxy - ma.s * mb.s) / "
        "sqrt((span.t * ma.ss - ma.s * ma.s) * (span.t * mb.ss - mb.s * mb.s)) AS r "
        "FROM co JOIN m ma ON ma.account_id = co.src JOIN m mb ON mb.account_id = co.dst CROSS JOIN span "
        "WHERE span.t * ma.ss > ma.s * ma.s AND span.t * mb.ss > mb.s * mb.s) "
        "SELECT src, dst, 'sync' AS kind, least(1.0, r) AS weight, "
        "'sync r=' || CAST(round(r, 3) AS VARCHAR) || ' bins=' || CAST(nco AS VARCHAR) AS evidence "
        "FROM r WHERE r > 0"
    )


def edge_statements(
    *,
    stats: StatsNames | None = None,
    accounts: str = "acc",
    window_hours: float = 24,
    params: EdgeParams | None = None,
    candidates: str = "_ds_link_candidates",
) -> dict[str, str]:
    """The SQL statement (reference dialect) that produces each edge kind, by kind.

    Exchange-derived kinds read the statistics tables ``stats``
    (:mod:`distillshield.features.stats`, taken with bins ``window_hours`` wide);
    ``payment`` and ``signup`` read ``accounts``. The ``sync`` statement reads the candidate
    pairs from table ``candidates(src, dst, weight)`` (:func:`account_edges` fills it with the pairs
    every other kind found).
    """
    p = params or EdgeParams()
    st = stats or StatsNames()
    vals, bins = quote_name(st.vals), quote_name(st.bins)
    cap = str(int(p.max_group))
    window_s = float(window_hours) * 3600.0
    ipv4_24 = "nullif(regexp_extract(signup_ip, '^([0-9]+[.][0-9]+[.][0-9]+)[.][0-9]+$', 1), '')"

    def of(kind: str) -> str:
        return f"SELECT val, account_id, c FROM {vals} WHERE kind = '{kind}'"

    def binned(kind: str) -> str:
        return f"SELECT val, account_id, bin, t0, t1 FROM {bins} WHERE kind = '{kind}'"

    members = {
        "payment": _static_pairs(
            f"SELECT payment_fingerprint AS val, account_id, 1 AS c FROM {accounts}", cap
        ),
        "ip": _windowed_pairs(binned("ip"), window_s, cap),
        "prefix": _windowed_pairs(binned("prefix"), window_s, cap),
        "client": _static_pairs(of("client"), str(int(min(p.max_client_accounts, p.max_group)))),
        "template": _static_pairs(of("family"), cap, p.min_template_uses),
        "signup": _windowed_pairs(
            _event_bins(
                f"SELECT coalesce({ipv4_24} || '.0/24', signup_ip) AS val, account_id, created_at AS ts "
                f"FROM {accounts}",
                float(p.signup_window_hours) * 3600.0,
            ),
            float(p.signup_window_hours) * 3600.0,
            cap,
        ),
        "metadata": _static_pairs(of("metadata"), cap),
    }
    sync = _sync_sql(quote_name(st.activity), candidates, p.min_sync_bins, p.sync_partners)
    unknown = set(p.kinds) - set(EDGE_KINDS)
    if unknown:
        raise ValueError(f"unknown edge kinds {sorted(unknown)}; known: {list(EDGE_KINDS)}")
    return {kind: sync if kind == "sync" else _pick(members[kind], kind, accounts) for kind in p.kinds}


def stats_params(window_hours: float = 24, params: EdgeParams | None = None) -> StatsParams:
    """The statistics bins :func:`account_edges` needs for this window and these knobs."""
    return StatsParams(
        window_hours=float(window_hours), sync_bin_minutes=(params or EdgeParams()).sync_bin_minutes
    )


def account_edges(
    backend: Backend,
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    window_hours: float = 24,
    params: EdgeParams | None = None,
    stats: StatsNames | None = None,
) -> pa.Table:
    """Evidence edges between accounts (:data:`EDGE_SCHEMA`), sorted by kind, src, dst.

    Table arguments are names registered in ``backend``: canonical ``exchanges`` and
    ``accounts``, ``derived/signals`` and ``derived/enrichment``. ``window_hours`` is how close
    in time two accounts must use one address (``ip``) or prefix (``prefix``) to be linked;
    the other knobs are in ``params`` (defaults: :class:`EdgeParams`).

    ``stats``: statistics tables already registered (taken with :func:`stats_params` of the
    same window and knobs), e.g. an incremental state's; the exchange arguments are then not
    read. Without it the exchanges are summarised first into engine tables of default names.
    """
    if stats is None:
        stats = StatsNames()
        compute_stats(
            backend,
            exchanges=exchanges,
            signals=signals,
            enrichment=enrichment,
            accounts=accounts,
            releases=None,
            params=stats_params(window_hours, params),
            into=stats,
            tables=("vals", "bins", "activity"),
        )
    statements = edge_statements(
        stats=stats,
        accounts=accounts,
        window_hours=window_hours,
        params=params,
        candidates=_CANDIDATES,
    )
    parts = [backend.query(sql).cast(EDGE_SCHEMA) for kind, sql in statements.items() if kind != "sync"]
    if "sync" in statements:
        found = pa.concat_tables(parts) if parts else EDGE_SCHEMA.empty_table()
        backend.register(_CANDIDATES, found.select(["src", "dst", "weight"]))
        try:
            parts.append(backend.query(statements["sync"]).cast(EDGE_SCHEMA))
        finally:  # replace by an empty table so the backend lets go of the Arrow data
            empty = pa.array([], pa.string())
            backend.register(
                _CANDIDATES, pa.table({"src": empty, "dst": empty, "weight": pa.array([], pa.float64())})
            )
    if not parts:
        return EDGE_SCHEMA.empty_table()
    out = pa.concat_tables(parts)
    rank = pc.index_in(out.column("kind"), value_set=pa.array(EDGE_KINDS))
    out = out.append_column("_rank", rank).sort_by(
        [("_rank", "ascending"), ("src", "ascending"), ("dst", "ascending")]
    )
    return out.drop_columns(["_rank"])


def edges_touching(
    edges: pa.Table,
    kinds: Iterable[str],
    accounts: Iterable[str] | pa.Array,
    *,
    ends: Literal["both", "either", "one"],
) -> pa.Table:
    """The rows of an :data:`EDGE_SCHEMA` table whose kind is one of ``kinds`` and with
    ``ends`` of their two accounts in ``accounts``: ``"both"`` (edges among a set),
    ``"either"`` (edges that touch it) or ``"one"`` (edges that cross its boundary).

    Filtered in Arrow before anything is pulled into Python: at seed scale the edge table has
    millions of rows and the steps that call this (campaigns, the evidence floor, accounts
    without traffic) need a few thousand.
    """
    value_set = accounts if isinstance(accounts, pa.Array) else pa.array(list(accounts), pa.string())
    src = pc.is_in(edges.column("src"), value_set=value_set)
    dst = pc.is_in(edges.column("dst"), value_set=value_set)
    inside = {"both": pc.and_, "either": pc.or_, "one": pc.xor}[ends](src, dst)
    kind = pc.is_in(edges.column("kind"), value_set=pa.array(list(kinds), pa.string()))
    return edges.filter(pc.and_(kind, inside))
