"""Hand-written linking edges for unit tests (the shape of :data:`distillshield.linking.EDGE_SCHEMA`)."""

from __future__ import annotations

import pyarrow as pa

from distillshield.linking import EDGE_SCHEMA


def edge_table(rows: list[tuple[str, str, str]]) -> pa.Table:
    """One unit-weight edge per ``(account, account, kind)``, endpoints in canonical order."""
    return pa.Table.from_pylist(
        [{"src": min(a, b), "dst": max(a, b), "kind": k, "weight": 1.0, "evidence": ""} for a, b, k in rows],
        schema=EDGE_SCHEMA,
    )
