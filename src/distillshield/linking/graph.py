"""Account clusters from evidence edges: connected components over the strong kinds.

Connected components are the simplest clustering that is exact, label-free and relational
(:func:`distillshield.signals.lsh.connected_components`, SQL label propagation that
transpiles to Spark). They are only safe over evidence that rarely joins strangers, hence the
default of :data:`~distillshield.linking.edges.STRONG_KINDS`: one coincidental weak edge (a
shared stock SDK build) would otherwise chain a class of students into a campaign.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from distillshield.backends import Backend
from distillshield.linking.edges import STRONG_KINDS
from distillshield.signals.lsh import connected_components

__all__ = ["COMPONENT_SCHEMA", "account_components"]

#: ``account_id`` and ``component`` (the smallest account id of its component).
COMPONENT_SCHEMA = pa.schema(
    [pa.field("account_id", pa.string(), nullable=False), pa.field("component", pa.string(), nullable=False)]
)

_EDGES = "_ds_link_component_edges"


def account_components(
    backend: Backend,
    edges: pa.Table,
    *,
    kinds: Sequence[str] = STRONG_KINDS,
    min_weight: float = 0.0,
) -> pa.Table:
    """One row per account that has a kept edge: its component, sorted by account id.

    ``edges`` is :func:`~distillshield.linking.edges.account_edges` output; an edge is kept when
    its kind is in ``kinds`` and its weight is at least ``min_weight``. Accounts without a kept
    edge are singletons and are left out (the caller treats a missing account as its own
    component). The component id is the smallest account id in it, so it does not depend on
    row order or engine.
    """
    keep = pc.and_(
        pc.is_in(edges.column("kind"), value_set=pa.array(list(kinds), pa.string())),
        pc.greater_equal(edges.column("weight"), min_weight),
    )
    backend.register(_EDGES, edges.filter(keep).select(["src", "dst"]))
    labels: str | None = None
    try:
        labels = connected_components(backend, _EDGES)
        out = backend.query(f"SELECT node AS account_id, label AS component FROM {labels} ORDER BY node")
    finally:
        if labels is not None:
            backend.execute(f"DROP TABLE IF EXISTS {labels}")
        empty = pa.array([], pa.string())
        backend.register(_EDGES, pa.table({"src": empty, "dst": empty}))  # drop the Arrow data
    return out.cast(COMPONENT_SCHEMA)
