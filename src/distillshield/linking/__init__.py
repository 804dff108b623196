"""Linking accounts into campaigns (hydra clusters), as SQL run through a :class:`Backend`.

    edges = account_edges(backend)            # tables registered as ex, sig, enr, acc
    clusters = account_components(backend, edges)   # connected components, strong kinds

Edge kinds, their weights and why: :mod:`distillshield.linking.edges` and docs/linking.md.
"""

from distillshield.linking.edges import (
    EDGE_KINDS,
    EDGE_SCHEMA,
    STRONG_KINDS,
    EdgeParams,
    account_edges,
    edge_statements,
    edges_touching,
)
from distillshield.linking.graph import COMPONENT_SCHEMA, account_components

__all__ = [
    "COMPONENT_SCHEMA",
    "EDGE_KINDS",
    "EDGE_SCHEMA",
    "STRONG_KINDS",
    "EdgeParams",
    "account_components",
    "account_edges",
    "edge_statements",
    "edges_touching",
]
