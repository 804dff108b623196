"""Top reasons: the few feature values that pushed an account's score up, in words an analyst reads.

The account model is additive in log-odds (:meth:`AccountModel.contributions`), so "why" has
an exact answer: the features with the largest positive contributions. Each reason shows
the *raw* value of the column behind the feature (a count, a share), not the transformed
model input, plus the contribution in log-odds, e.g. ``cot_expose_share=0.62 (+1.9)``. The
contributions are those of the model head that scored the account, and a model with one head
per tactic names it first, ``tactic:cot_harvest``, for accounts it finds more likely than not
a campaign's: which known way of harvesting the account resembles frames the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from distillshield.detect.design import Feature

__all__ = ["format_value", "top_reasons"]

#: Reasons kept per account.
TOP_K = 5
#: Contributions below this (log-odds) are not worth showing.
MIN_CONTRIBUTION = 0.25
#: Features whose positive contribution only means "less exculpatory evidence than the
#: average account" (no colleagues, no corporate address, not verified): they move the score
#: but are not a reason anyone can act on, so they are not shown.
NOT_REASONS = frozenset({"log_related_strong_neighbours", "email_domain_class=corporate", "verified"})


def format_value(value: object) -> str:
    """Compact rendering of a raw feature value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def top_reasons(
    table: pa.Table,
    contributions: np.ndarray,
    features: Sequence[Feature],
    *,
    novelty: np.ndarray | None = None,
    tactics: Sequence[str | None] | None = None,
    k: int = TOP_K,
) -> list[list[str]]:
    """Up to ``k`` reasons per row of ``table`` (rows aligned with ``contributions``).

    ``tactics`` (one per row, None to omit) is shown first as ``tactic:<name>``.
    Unflagged rows get reasons too (an analyst asks why an account came close). Detection
    rules that fired (a ``rules_fired`` column) are added as ``rule:<reason>``, and a novelty
    percentile of 0.99 or more as ``novelty_percentile=...``.
    """
    raw = {f.column: table.column(f.column).to_pylist() for f in features}
    fired = table.column("rules_fired").to_pylist() if "rules_fired" in table.column_names else None
    out: list[list[str]] = []
    for i in range(contributions.shape[0]):
        row = contributions[i]
        order = [int(j) for j in np.argsort(-row, kind="stable") if features[int(j)].name not in NOT_REASONS][
            :k
        ]
        reasons: list[str] = []
        if tactics is not None and tactics[i] is not None:
            reasons.append(f"tactic:{tactics[i]}")
        for j in order:
            if row[j] < MIN_CONTRIBUTION:
                break
            f = features[j]
            shown = f.name if f.transform == "onehot" else f"{f.column}={format_value(raw[f.column][i])}"
            reasons.append(f"{shown} (+{row[j]:.1f})")
        if fired is not None:
            reasons.extend(f"rule:{r}" for r in fired[i] or [])
        if novelty is not None and novelty[i] >= 0.99:
            reasons.append(f"novelty_percentile={novelty[i]:.3f}")
        out.append(reasons)
    return out
