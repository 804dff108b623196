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

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.linking.edges import EDGE_KINDS

__all__ = [
    "FEATURES",
    "HEAD_DIRECTIONS",
    "Feature",
    "design_matrix",
    "design_row",
    "feature_names",
    "head_features",
]

Transform = Literal["raw", "log1p", "onehot", "bool"]


@dataclass(frozen=True)
class Feature:
    """One model input: ``transform(column)`` with nulls read as ``fill``.

    ``onehot`` features are 1.0 when ``column == value``. ``direction`` is the sign the
    model's coefficient is *allowed* to take, declared from what the feature means rather
    than learned from the simulator: ``+1`` more is more suspicious, ``-1`` less is more
    suspicious, ``0`` either (the meaning cuts both ways). A fitted model cannot then decide
    that, say, sharing *no* address prefix with anyone is evidence of distillation because
    the simulated legitimate organisations happen to share many; it has to explain
    organisations with the features that describe them (related neighbours).

    ``prior`` marks a per-request share: it is shrunk towards ``prior`` (the value that is
    evidence of nothing) with :data:`PSEUDO_REQUESTS` pseudo-requests,
    ``(share * n + prior * a) / (n + a)``. One request that happened to use a reasoning model
    from an unusual address is not "100 % reasoning, one address per request"; a hundred are.
    Without it an incremental scan flags whoever has sent one odd request so far.
    """

    name: str
    column: str
    transform: Transform = "raw"
    fill: float = 0.0
    value: str | None = None
    direction: int = 0
    prior: float | None = None


def _f(
    name: str,
    column: str | None = None,
    transform: Transform = "raw",
    fill: float = 0.0,
    direction: int = 0,
    prior: float | None = None,
) -> Feature:
    return Feature(
        name=name, column=column or name, transform=transform, fill=fill, direction=direction, prior=prior
    )


def _share(name: str, direction: int, prior: float = 0.0) -> Feature:
    """A per-request share, null read as the prior, shrunk towards it for small accounts."""
    return _f(name, fill=prior, direction=direction, prior=prior)


#: Pseudo-requests of the shrinkage of shares (see :class:`Feature`).
PSEUDO_REQUESTS = 10.0


def _onehot(column: str, value: str, direction: int = 0) -> Feature:
    return Feature(
        name=f"{column}={value}", column=column, transform="onehot", value=value, direction=direction
    )


#: Every input of the account model, in order, with the direction its coefficient may take.
#: Not in the model on purpose: the sign-up ``pathway`` (a programme is not evidence; a
#: scorer that learns "education pathway = campaign" from one simulated operator flags every
#: benchmark researcher on a research programme), and the free-mail / academic e-mail
#: classes for the same reason. They stay in the fingerprint for analysts and rules.
FEATURES: tuple[Feature, ...] = (
    # volume and tokens
    _f("log_requests", "n_requests", "log1p", direction=+1),
    _f("log_requests_per_day", "requests_per_active_day", "log1p", direction=+1),
    _f("log_active_days", "active_days", "log1p"),
    _f("log_output_input_ratio", "output_input_ratio", "log1p"),  # agents send long contexts
    _share("max_token_saturation_share", +1),
    _share("reasoning_share", +1),
    # what is asked
    _share("cot_expose_share", +1),
    _share("step_by_step_share", +1),
    _f("capability_entropy", direction=-1),
    _share("top_capability_share", +1),
    _share("template_coverage", +1),
    _share("top_template_share", +1),
    _f("log_template_sharing", "template_sharing", "log1p", direction=+1),
    _share("multi_turn_share", -1, prior=0.5),
    # timing
    _f("interarrival_cv", fill=1.0),  # clockwork (low) and bursts (high) are both machine-like
    _f("hour_entropy", direction=+1),
    _share("night_share_local", +1, prior=0.25),
    _share("post_release_new_model_share", +1),
    # network and client
    _share("ips_per_request", +1),
    _f("log_distinct_ips", "distinct_ips", "log1p", direction=+1),
    _f("log_distinct_asns", "distinct_asns", "log1p", direction=+1),
    _f("log_distinct_countries", "distinct_countries", "log1p", direction=+1),
    _share("hosting_share", +1),
    _share("vpn_share", +1),
    _f("log_distinct_user_agents", "distinct_user_agents", "log1p", direction=+1),
    # account facts
    _f("log_account_age_days", "account_age_days", "log1p", direction=-1),
    _f("verified", transform="bool", direction=-1),
    _share("declared_country_share", -1, prior=1.0),
    _onehot("email_domain_class", "disposable", direction=+1),
    _onehot("email_domain_class", "corporate", direction=-1),
    # the company an account keeps (detect.graph)
    # ``sync`` is left out: a class doing one assignment is as synchronised as a botnet, and
    # fitted with it the model gave it no weight (docs/scoring.md); it stays in the dossier.
    # ``metadata`` is left out too: how many accounts share a metadata pair cannot tell an
    # operator's staff handle from a framework's default tag held by hundreds of customers
    # (126 of 150 legitimate holders of one injected tag were flagged: docs/results.md), and it
    # is 0 above ``max_group`` holders. Who the sharers are is the evidence:
    # ``metadata_peer_score`` (detect.neighbours) below.
    *(
        _f(f"log_deg_{k}", f"deg_{k}", "log1p", direction=+1)
        for k in EDGE_KINDS
        if k not in ("sync", "metadata")
    ),
    _f("metadata_peer_score", direction=+1),
    _f("log_related_strong_neighbours", "related_strong_neighbours", "log1p", direction=-1),
    _f("log_unrelated_strong_neighbours", "unrelated_strong_neighbours", "log1p", direction=+1),
    _f("unrelated_strong_share", direction=+1),
    # Not the strong *component*'s size or diversity: at seed scale (120k accounts) chance
    # prefix sharing between residential users percolates into one 36k-account component,
    # and a model that learned "big component = farm" on 5k-account scenarios flagged 2.5 %
    # of individual developers there (docs/results.md). Neighbour counts are local.
    # the hand-written detection rules (scoring/rules/*.yaml): their combined weight
    _f("rule_score", direction=+1),
)


#: Per-tactic exceptions to the declared directions: ``{head: {feature name: direction}}``.
#: A hydra reseller "spreads traffic so each account looks like a light user" (the public
#: reports, ../shared/docs/MISSION.md): for that tactic per-account volume is evidence in
#: either direction — a light account is as much its signature as a heavy one is a
#: harvester's elsewhere — so its head may weigh volume either way. The other heads keep
#: "more is more suspicious": lifting the sign for every head taught them "light accounts
#: are suspicious", a constant of the training scenarios' size that cost recall on heavier
#: accounts at seed scale (docs/results.md, "Per-account volume without a declared
#: direction"); a hydra's accounts are light at every scale.
#: Agentic extraction harvests through agent loops — long multi-turn sessions with tool
#: results — so for that tactic follow-up turns are the tactic itself, not the mark of a real
#: conversation that ``multi_turn_share``'s declared direction (more is less suspicious)
#: encodes for every other: its head may weigh them either way. It learns them as evidence
#: (+1.2 per unit), which is what tells its campaigns from a benchmark researcher's
#: single-turn burst to a reasoning model (docs/results.md, "Agentic extraction may weigh
#: follow-up turns either way").
#: An agentic-extraction operator spreads its harvest over hundreds of accounts "to look
#: uncoordinated" (the public reports), so for that tactic too a light account is as much the
#: signature as a heavy one: its head may weigh volume either way. Free on volume, and trained
#: with operators who drop the cheap clues (training scenario 4), it learns that a benchmark
#: researcher's burst of hundreds of requests in a day is not its tactic (docs/results.md,
#: "Training on operators who drop the cheap clues").
HEAD_DIRECTIONS: Mapping[str, Mapping[str, int]] = {
    "hydra_reseller": {"log_requests": 0, "log_requests_per_day": 0},
    "agentic_extraction": {"multi_turn_share": 0, "log_requests": 0, "log_requests_per_day": 0},
}


def head_features(
    head: str,
    features: Sequence[Feature] = FEATURES,
    directions: Mapping[str, Mapping[str, int]] = HEAD_DIRECTIONS,
) -> tuple[Feature, ...]:
    """``features`` with ``head``'s exceptions to the declared directions applied (an unknown
    feature name in ``directions`` is an error: a typo must not silently keep a sign)."""
    override = directions.get(head, {})
    known = {f.name for f in features}
    unknown = sorted(set(override) - known)
    if unknown:
        raise KeyError(f"direction override for head {head!r} names unknown features {unknown}")
    bad = {n: d for n, d in override.items() if d not in (-1, 0, 1)}
    if bad:
        raise ValueError(f"direction override for head {head!r}: directions must be -1, 0 or 1, got {bad}")
    return tuple(
        dataclasses.replace(f, direction=override[f.name]) if f.name in override else f for f in features
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
    """``(rows, len(features))`` float64 matrix of ``table`` (no NaN: nulls are filled).

    Shares (features with a ``prior``) are shrunk using the ``n_requests`` column.
    """
    if not features:
        return np.zeros((table.num_rows, 0))
    n: np.ndarray | None = None
    if any(f.prior is not None for f in features):
        n = _column(table, Feature("n_requests", "n_requests"))
    cols = []
    for f in features:
        values = _column(table, f)
        if f.prior is not None and n is not None:
            values = (values * n + f.prior * PSEUDO_REQUESTS) / (n + PSEUDO_REQUESTS)
        cols.append(values)
    return np.column_stack(cols)


def _scalar(feature: Feature, value: Any) -> float:
    """One value as :func:`_column` transforms a column of them (null and non-finite read
    as ``fill``)."""
    if feature.transform == "onehot":
        return 1.0 if value is not None and str(value) == feature.value else 0.0
    if value is None:
        return feature.fill
    try:
        x = float(value)
    except (TypeError, ValueError):
        return feature.fill
    if not math.isfinite(x):
        return feature.fill
    if feature.transform == "log1p":
        return math.log1p(max(x, 0.0))
    return x


def design_row(record: Mapping[str, Any], features: Sequence[Feature] = FEATURES) -> np.ndarray:
    """One account's model inputs from a mapping of its fingerprint columns: the row that
    :func:`design_matrix` gives for a one-row table holding ``record`` (tested equal).

    The difference is what a *missing key* means. In a table a column is there for every
    account and a null is "no evidence" (the feature's ``fill``); here a column absent from
    ``record`` is **unknown** and its feature is ``NaN``, for the caller to decide. The
    gateway's online scorer has an account's own traffic but not the graph of who else it
    shares infrastructure with, nor every account fact; it reads unknown inputs as the
    model's mean — a contribution of zero — rather than as "none".
    """
    n_val = record.get("n_requests")
    n = _scalar(Feature("n_requests", "n_requests"), n_val)
    out = np.empty(len(features), dtype=np.float64)
    for i, f in enumerate(features):
        if f.column not in record:
            out[i] = math.nan
            continue
        x = _scalar(f, record[f.column])
        if f.prior is not None:
            x = (x * n + f.prior * PSEUDO_REQUESTS) / (n + PSEUDO_REQUESTS)
        out[i] = x
    return out
