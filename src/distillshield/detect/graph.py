"""Graph features per account: what the evidence edges say about who an account travels with.

A hydra cluster is built so that each account looks like a light, ordinary user; what gives it
away is the company it keeps. This step turns the evidence edges of
:func:`distillshield.linking.account_edges` into per-account numbers a scorer can read:

``deg_<kind>``
    How many accounts this one shares ``<kind>`` evidence with (payment, ip, prefix, signup,
    metadata, client, template, sync).
``strong_neighbours`` / ``unrelated_strong_neighbours`` / ``unrelated_strong_share``
    Accounts linked by a *strong* kind (money or addresses shared at the same time), and how
    many of those present as a different organisation (``related_strong_neighbours`` the
    rest: colleagues, classmates): a different corporate or academic
    e-mail domain, or both on free-mail / disposable addresses (strangers by their own
    account). Colleagues behind one corporate VPN on one corporate card share a domain; a
    class behind a campus NAT shares the university's domain; a farm of accounts sharing
    proxies and cards while each claims to be an unrelated person is exactly the hydra
    pattern, and an attacker cannot remove it without buying a separate identity *and*
    separate infrastructure per account — which is what the farm exists to avoid.
``component_size``, ``component_countries``, ``component_domains``
    The strong connected component (:func:`distillshield.linking.account_components`): its
    size and how many distinct declared countries and e-mail domains its members claim,
    per member (``(distinct - 1) / (size - 1)``, 0 for a singleton). A company is one
    domain in one country; an operator's farm claims many.

All relational work is one statement in the reference SQL dialect, run through
:meth:`Backend.query`, so it transpiles to Spark like every other step.
"""

from __future__ import annotations

import pyarrow as pa

from distillshield._sql import quote_name
from distillshield.backends import Backend
from distillshield.linking import STRONG_KINDS, account_components
from distillshield.linking.edges import EDGE_KINDS

__all__ = [
    "GRAPH_COLUMNS",
    "STRANGER_DOMAIN_CLASSES",
    "graph_features",
    "graph_features_sql",
    "organisations",
]

#: E-mail domain classes that say nothing about a shared organisation: two accounts on them
#: are strangers by their own account even when both use one provider's domain.
STRANGER_DOMAIN_CLASSES: tuple[str, ...] = ("free-mail", "disposable", "unknown")
_STRANGER_SQL = ", ".join(f"'{k}'" for k in STRANGER_DOMAIN_CLASSES)

#: Columns of :func:`graph_features` besides ``account_id`` and ``component``.
GRAPH_COLUMNS: tuple[str, ...] = (
    *(f"deg_{k}" for k in EDGE_KINDS),
    "strong_neighbours",
    "unrelated_strong_neighbours",
    "unrelated_strong_share",
    "related_strong_neighbours",
    "component_size",
    "component_countries",
    "component_domains",
)

_EDGES = "_ds_graph_edges"
_COMPONENTS = "_ds_graph_components"


def graph_features_sql(
    *, edges: str, components: str, population: str, accounts: str, account_enrichment: str
) -> str:
    """The statement behind :func:`graph_features` (reference dialect).

    ``population(account_id)`` is the set of accounts to describe (normally those with
    traffic); ``edges`` the edge table, ``components(account_id, component)`` the strong
    components (accounts absent from it are singletons).
    """
    e, c, pop = quote_name(edges), quote_name(components), quote_name(population)
    acc, acc_enr = quote_name(accounts), quote_name(account_enrichment)
    strong = ", ".join(f"'{k}'" for k in STRONG_KINDS)
    degs = ",\n           ".join(
        f"CAST(sum(CASE WHEN u.kind = '{k}' THEN 1 ELSE 0 END) AS BIGINT) AS deg_{k}" for k in EDGE_KINDS
    )
    deg_cols = ", ".join(f"coalesce(d.deg_{k}, 0) AS deg_{k}" for k in EDGE_KINDS)
    return f"""
WITH ident AS (
    SELECT a.account_id, a.declared_country,
           lower(a.email_domain) AS domain,
           coalesce(n.email_domain_class, 'unknown') AS domain_class
    FROM {acc} AS a LEFT JOIN {acc_enr} AS n ON n.account_id = a.account_id
),
u AS (
    SELECT src AS a, dst AS b, kind FROM {e}
    UNION ALL
    SELECT dst AS a, src AS b, kind FROM {e}
),
deg AS (
    SELECT u.a AS account_id,
           {degs}
    FROM u GROUP BY u.a
),
strong AS (
    SELECT DISTINCT u.a, u.b FROM u WHERE u.kind IN ({strong})
),
unrel AS (
    SELECT s.a AS account_id, count(*) AS strong_neighbours,
           CAST(sum(CASE WHEN ia.domain_class IN ({_STRANGER_SQL})
                          OR ib.domain_class IN ({_STRANGER_SQL})
                          OR ia.domain IS NULL OR ib.domain IS NULL
                          OR ia.domain <> ib.domain THEN 1 ELSE 0 END) AS BIGINT)
               AS unrelated_strong_neighbours
    FROM strong AS s
    LEFT JOIN ident AS ia ON ia.account_id = s.a
    LEFT JOIN ident AS ib ON ib.account_id = s.b
    GROUP BY s.a
),
member AS (
    SELECT p.account_id, coalesce(c.component, p.account_id) AS component
    FROM {pop} AS p LEFT JOIN {c} AS c ON c.account_id = p.account_id
),
comp AS (
    SELECT m.component, count(*) AS size,
           count(DISTINCT i.declared_country) AS countries,
           count(DISTINCT i.domain) AS domains
    FROM member AS m LEFT JOIN ident AS i ON i.account_id = m.account_id
    GROUP BY m.component
)
SELECT m.account_id, m.component,
       {deg_cols},
       coalesce(r.strong_neighbours, 0) AS strong_neighbours,
       coalesce(r.unrelated_strong_neighbours, 0) AS unrelated_strong_neighbours,
       CASE WHEN coalesce(r.strong_neighbours, 0) = 0 THEN 0.0
            ELSE CAST(r.unrelated_strong_neighbours AS DOUBLE) / r.strong_neighbours END
           AS unrelated_strong_share,
       coalesce(r.strong_neighbours, 0) - coalesce(r.unrelated_strong_neighbours, 0)
           AS related_strong_neighbours,
       k.size AS component_size,
       CASE WHEN k.size > 1 THEN CAST(greatest(k.countries - 1, 0) AS DOUBLE) / (k.size - 1) ELSE 0.0 END
           AS component_countries,
       CASE WHEN k.size > 1 THEN CAST(greatest(k.domains - 1, 0) AS DOUBLE) / (k.size - 1) ELSE 0.0 END
           AS component_domains
FROM member AS m
JOIN comp AS k ON k.component = m.component
LEFT JOIN deg AS d ON d.account_id = m.account_id
LEFT JOIN unrel AS r ON r.account_id = m.account_id
ORDER BY m.account_id
"""


def graph_features(
    backend: Backend,
    edges: pa.Table,
    *,
    population: str,
    accounts: str = "acc",
    account_enrichment: str = "acc_enr",
) -> pa.Table:
    """Per-account graph features (:data:`GRAPH_COLUMNS`) plus the strong ``component`` id.

    ``population`` names a registered table with an ``account_id`` column: the accounts to
    describe (one output row each, ordered by account id).
    """
    components = account_components(backend, edges)
    backend.register(_EDGES, edges.select(["src", "dst", "kind"]))
    backend.register(_COMPONENTS, components)
    try:
        sql = graph_features_sql(
            edges=_EDGES,
            components=_COMPONENTS,
            population=population,
            accounts=accounts,
            account_enrichment=account_enrichment,
        )
        return backend.query(sql)
    finally:  # let the backend drop its reference to the Arrow data
        empty = pa.array([], pa.string())
        backend.register(_EDGES, pa.table({"src": empty, "dst": empty, "kind": empty}))
        backend.register(_COMPONENTS, pa.table({"account_id": empty, "component": empty}))


def organisations(
    backend: Backend, *, accounts: str = "acc", account_enrichment: str = "acc_enr"
) -> dict[str, str]:
    """account -> the organisation it claims: its lower-cased corporate or academic e-mail domain.

    Accounts on free-mail, disposable or unclassified domain (:data:`STRANGER_DOMAIN_CLASSES`)
    claim none. Two accounts with the same organisation are *related* in the sense of
    ``related_strong_neighbours``: colleagues behind one VPN on one corporate card, or a class
    behind a campus NAT, whose shared infrastructure their shared employer explains.
    """
    acc, acc_enr = quote_name(accounts), quote_name(account_enrichment)
    table = backend.query(
        f"SELECT a.account_id, lower(a.email_domain) AS org FROM {acc} AS a "
        f"LEFT JOIN {acc_enr} AS n ON n.account_id = a.account_id "
        "WHERE a.email_domain IS NOT NULL "
        f"AND coalesce(n.email_domain_class, 'unknown') NOT IN ({_STRANGER_SQL})"
    )
    return dict(zip(table.column("account_id").to_pylist(), table.column("org").to_pylist(), strict=True))
