"""The model's view of an account: a fixed, documented list of numeric features.

Each :class:`Feature` names the column of the scan's per-account table it reads (the
behavioural fingerprint of :mod:`distillshield.features` joined to the graph features of
:mod:`distillshield.detect.graph`), how it is transformed and what a missing value means.
Counts enter as ``log1p`` (a harvester's volume is orders of magnitude, not a linear
excess); shares stay in [0, 1]; categories are one-hot. Missing values are filled with the
value that says "no evidence" (e.g. no release in the window: pivot share 0), never with a
statistic of the data, so the same account gets the same vector whatever else is scanned.

The list is the model's contract: the shipped model file stores the feature names and
:func:`design_matrix` refuses a model whose names differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.linking.edges import EDGE_KINDS

__all__ = ["FEATURES", "Feature", "design_matrix", "feature_names"]

Transform = Literal["raw", "log1p", "onehot", "bool"]


@dataclass(frozen=True)
class Feature:
    """One model input: ``transform(column)`` with nulls read as ``fill``.

    ``onehot`` features are 1.0 when ``column == value``. ``reason`` is how the value is
    shown to an analyst when the feature drives a flag (formatted with the raw value).
    """

    name: str
    column: str
    transform: Transform = "raw"
    fill: float = 0.0
    value: str | None = None
    reason: str = ""


def _f(name: str, column: str | None = None, transform: Transform = "raw", fill: float = 0.0) -> Feature:
    return Feature(name=name, column=column or name, transform=transform, fill=fill)


def _onehot(column: str, value: str) -> Feature:
    return Feature(name=f"{column}={value}", column=column, transform="onehot", value=value)


#: Every input of the account model, in order.
FEATURES: tuple[Feature, ...] = (
    # volume and tokens
    _f("log_requests", "n_requests", "log1p"),
    _f("log_requests_per_day", "requests_per_active_day", "log1p"),
    _f("log_active_days", "active_days", "log1p"),
    _f("log_output_input_ratio", "output_input_ratio", "log1p"),
    _f("max_token_saturation_share"),
    _f("reasoning_share"),
    # what is asked
    _f("cot_expose_share"),
    _f("step_by_step_share"),
    _f("capability_entropy"),
    _f("top_capability_share"),
    _f("template_coverage"),
    _f("top_template_share"),
    _f("log_template_sharing", "template_sharing", "log1p"),
    _f("multi_turn_share"),
    # timing
    _f("interarrival_cv", fill=1.0),
    _f("hour_entropy"),
    _f("night_share_local", fill=0.25),
    _f("post_release_new_model_share"),
    # network and client
    _f("ips_per_request"),
    _f("log_distinct_ips", "distinct_ips", "log1p"),
    _f("log_distinct_asns", "distinct_asns", "log1p"),
    _f("log_distinct_countries", "distinct_countries", "log1p"),
    _f("hosting_share"),
    _f("vpn_share"),
    _f("log_distinct_user_agents", "distinct_user_agents", "log1p"),
    # account facts
    _f("log_account_age_days", "account_age_days", "log1p"),
    _f("verified", transform="bool"),
    _f("declared_country_share", fill=1.0),
    *(
        _onehot("pathway", v)
        for v in ("education", "research_program", "startup_program", "self_serve", "enterprise")
    ),
    *(_onehot("email_domain_class", v) for v in ("disposable", "academic", "free-mail", "corporate")),
    # the company an account keeps (detect.graph)
    *(_f(f"log_deg_{k}", f"deg_{k}", "log1p") for k in EDGE_KINDS),
    _f("log_strong_neighbours", "strong_neighbours", "log1p"),
    _f("log_unrelated_strong_neighbours", "unrelated_strong_neighbours", "log1p"),
    _f("unrelated_strong_share"),
    _f("log_component_size", "component_size", "log1p"),
    _f("component_countries"),
    _f("component_domains"),
)


def feature_names(features: Sequence[Feature] = FEATURES) -> list[str]:
    """The names of ``features``, in order (what a model file stores)."""
    return [f.name for f in features]


def _column(table: pa.Table, feature: Feature) -> np.ndarray:
    if feature.column not in table.column_names:
        raise KeyError(
            f"feature {feature.name!r} needs column {feature.column!r}, not in {table.column_names}"
        )
    col = table.column(feature.column)
    if feature.transform == "onehot":
        hit = pc.fill_null(pc.equal(col.cast(pa.string()), feature.value), False)
        return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=np.float64)
    if feature.transform == "bool":
        col = pc.cast(col, pa.float64())
    values = pc.fill_null(pc.cast(col, pa.float64()), feature.fill).to_numpy(zero_copy_only=False)
    values = np.asarray(values, dtype=np.float64)
    values = np.where(np.isfinite(values), values, feature.fill)
    if feature.transform == "log1p":
        values = np.log1p(np.clip(values, 0.0, None))
    return np.asarray(values, dtype=np.float64)


def design_matrix(table: pa.Table, features: Sequence[Feature] = FEATURES) -> np.ndarray:
    """``(rows, len(features))`` float64 matrix of ``table`` (no NaN: nulls are filled)."""
    if not features:
        return np.zeros((table.num_rows, 0))
    return np.column_stack([_column(table, f) for f in features])
