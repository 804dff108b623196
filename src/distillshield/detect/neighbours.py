"""Metadata peers: how the accounts that share an account's request metadata score themselves.

Metadata linking exists for an operator's staff handle or internal harness tag leaking into a
farm's requests. The obvious feature — how many accounts share a metadata pair with this one
(``deg_metadata``) — cannot tell that from a framework's default tag or a team convention
(``"env": "prod"``) shared by hundreds of ordinary customers. Measured: with a model that read
``log_deg_metadata``, injecting one generic tag pair into 150 legitimate accounts of the
default scenario flagged 126 of them (``bench/eval_shared_tags.py``, docs/results.md). It is
also scale-dependent: a pair held by more than ``max_group`` accounts yields no edges, so at
seed scale campaign B's handles gave every one of its accounts a degree of 0.

``metadata_peer_score`` asks instead *who* the sharers are: for each metadata pair the
account sent that at least one other account sent too, the mean score of those other
accounts (leave-one-out), and the maximum over its pairs; 0 when it shares none. The sharers'
scores are the model's own, computed first with this feature at 0 (:func:`score_with_peers`),
so a legitimate account sharing a tag with legitimate accounts gets a low value however many
there are, and an account sharing a staff handle with harvesting accounts a high one. It is
computed from each pair's holders (:func:`distillshield.detect.scan.account_table`'s
``shared_metadata``), not from pair edges: linear in holders, no cap, the same at 5,000 and
120,000 accounts.

An attacker who reads this can still strip metadata entirely (then nothing links through it,
as before); what it cannot do is hide in a crowd of legitimate sharers — a pair shared with
legitimate accounts dilutes the mean, which is why the mean is per pair and the account keeps
its most incriminating pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.detect.design import FEATURES, Feature, design_matrix

__all__ = ["PEER_COLUMN", "SHARED_COLUMN", "Scorer", "peer_scores", "score_with_peers"]

#: The feature column this module fills.
PEER_COLUMN = "metadata_peer_score"
#: The list column (metadata pairs the account shares with at least one other) it reads.
SHARED_COLUMN = "shared_metadata"


class Scorer(Protocol):
    """What scores the first pass: an :class:`~distillshield.detect.model.AccountModel`."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


def peer_scores(
    shared: pa.Array | pa.ChunkedArray, score: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the maximum over its shared pairs of the other holders' mean ``score``.

    ``shared`` is a list<string> column (one list per row), ``score`` the rows' scores;
    ``groups`` (optional, one label per row) keeps populations apart — the training table
    stacks one population per scenario and cut-off, and a pair held in two of them is two
    pairs. Rows sharing nothing get 0.
    """
    n = len(score)
    out = np.zeros(n, dtype=np.float64)
    if n == 0:
        return out
    if isinstance(shared, pa.ChunkedArray):
        shared = shared.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(shared), 0).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n), lengths)
    if rows.size == 0:
        return out
    vals = np.asarray(pc.list_flatten(shared).to_numpy(zero_copy_only=False), dtype=object)
    keys = (
        vals
        if groups is None
        else np.char.add(np.asarray(groups, dtype=str)[rows], "\x1f" + vals.astype(str))
    )
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=score[rows])
    held = counts[inverse]
    ok = held >= 2  # a pair this population alone holds once has no peers
    loo = np.zeros(rows.size)
    loo[ok] = (sums[inverse][ok] - score[rows][ok]) / (held[ok] - 1)
    np.maximum.at(out, rows[ok], loo[ok])
    return out


def score_with_peers(
    model: Scorer,
    table: pa.Table,
    *,
    features: Sequence[Feature] = FEATURES,
    groups: np.ndarray | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """``table`` with :data:`PEER_COLUMN` filled, and its design matrix.

    The peers' scores are ``model``'s on the same table with the peer feature at 0 — every
    account's own evidence, graph included, but not its peers' peers. ``table`` needs
    :data:`SHARED_COLUMN`; for ``features`` without the peer feature the column stays 0 and
    no first pass runs.
    """
    names = [f.column for f in features]
    zeros = pa.array(np.zeros(table.num_rows), pa.float64())
    table = _set(table, PEER_COLUMN, zeros)
    x0 = design_matrix(table, features)
    if PEER_COLUMN not in names or table.num_rows == 0:
        return table, x0
    first = np.asarray(model.predict_proba(x0))
    peers = peer_scores(table.column(SHARED_COLUMN), first, groups)
    table = _set(table, PEER_COLUMN, pa.array(peers, pa.float64()))
    # only the peer feature's column changes: rebuild that one, not the whole matrix
    x = x0.copy()
    for i, f in enumerate(features):
        if f.column == PEER_COLUMN:
            x[:, i] = design_matrix(table, [f])[:, 0]
    return table, x


def _set(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)
