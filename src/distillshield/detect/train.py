"""Fitting the account model on simulated scenarios that are not the ones it is evaluated on.

``distillshield train --out MODEL.json`` simulates each training scenario
(``detect/training/train-*.yaml`` by default: other seeds, campaign sizes, volumes, windows
and tactic parameters than ``default``), prepares it, and builds the scan's per-account
table at several cut-offs after the start (6 and 12 hours, 1, 2, 4 and 7 days, and the whole
period) with exactly the code the scan runs (:func:`distillshield.detect.scan.account_table`
over :func:`~distillshield.detect.scan.register_window`). Training on early cut-offs is what
lets an incremental replay flag a campaign on its first day: the model has seen what a
campaign looks like after six hours, not only after two weeks.

Labels come from each scenario's ``labels/accounts``: an account is positive when it has a
campaign id, and its persona (``attack.<tactic>``) names the model head it trains
(:mod:`distillshield.detect.model`). The fitted model records its provenance (scenarios,
seeds, cut-offs, rows, positives per head) in the model file.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.backends import get_backend
from distillshield.detect.design import FEATURES, HEAD_DIRECTIONS, Feature, feature_names
from distillshield.detect.model import SINGLE_HEAD, AccountModel
from distillshield.detect.neighbours import score_with_peers
from distillshield.detect.scan import SCORING_EDGES, account_table, register_window
from distillshield.errors import DistillShieldError
from distillshield.prepare import prepare
from distillshield.schema import ACCOUNT_LABELS, read_table

__all__ = [
    "CUTOFF_DAYS",
    "PEER_ROUNDS",
    "fit_with_peers",
    "train",
    "training_groups",
    "training_scenarios",
    "training_table",
]

#: Fits after the first whose ``metadata_peer_score`` comes from the previous fit's scores.
PEER_ROUNDS = 2

#: Cut-offs after the start of the data (days) at which training rows are taken; None = all.
CUTOFF_DAYS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 7.0, None)


def training_scenarios() -> list[Path]:
    """The shipped training scenarios."""
    root = Path(str(resources.files("distillshield.detect") / "training"))
    return sorted(root.glob("train-*.yaml"))


def training_table(data_dir: Path, cutoffs: Sequence[float | None] = CUTOFF_DAYS) -> pa.Table:
    """The scan's per-account table of one prepared, labelled dataset at each cut-off.

    Adds ``label`` (1 = the account belongs to a campaign), ``tactic`` (a campaign account's
    persona without its ``attack.`` prefix, or :data:`~distillshield.detect.model.SINGLE_HEAD`
    when the labels give none; null for legitimate accounts) and ``cutoff_days`` (-1 = all).
    """
    labels = read_table(data_dir, ACCOUNT_LABELS)
    # campaign accounts only: an account is positive exactly when it has a tactic here
    tactic = {
        a: (str(p).removeprefix("attack.") if p else SINGLE_HEAD)
        for a, p, pos in zip(
            labels.column("account_id").to_pylist(),
            labels.column("persona").to_pylist(),
            pc.is_valid(labels.column("campaign_id")).to_pylist(),
            strict=True,
        )
        if pos
    }
    parts = []
    for cut in cutoffs:
        backend = get_backend()
        names = register_window(backend, data_dir)
        if cut is not None:
            t0 = backend.query("SELECT min(ts) AS t0 FROM ex_all").column("t0")[0].as_py()
            names = register_window(backend, data_dir, until=t0 + timedelta(days=cut))
        table, _ = account_table(backend, names, edge_params=SCORING_EDGES)
        ids = table.column("account_id").to_pylist()
        table = table.append_column(
            "label", pa.array([int(a in tactic) for a in ids], pa.int64())
        ).append_column("tactic", pa.array([tactic.get(a) for a in ids], pa.string()))
        parts.append(table.append_column("cutoff_days", pa.array([-1.0 if cut is None else cut] * len(ids))))
    return pa.concat_tables(parts)


def training_groups(scenario: str, table: pa.Table) -> np.ndarray:
    """Each row's population for :func:`fit_with_peers`: its scenario and cut-off."""
    return np.char.add(f"{scenario}/", table.column("cutoff_days").to_numpy().astype(str))


def fit_with_peers(
    table: pa.Table,
    groups: np.ndarray,
    *,
    c: float,
    threshold: float,
    rounds: int = PEER_ROUNDS,
    features: Sequence[Feature] = FEATURES,
    head_directions: Mapping[str, Mapping[str, int]] = HEAD_DIRECTIONS,
) -> AccountModel:
    """Fit the account model on a stacked training ``table`` (``label`` column, and ``tactic``
    for one head per tactic; ``groups`` names each row's population: scenario and cut-off).
    ``features``: :data:`~distillshield.detect.design.FEATURES` under other declared
    directions (the same names, in order), for experiments on the sign constraints; the design
    matrix is always built from ``FEATURES``. ``head_directions``: per-tactic exceptions to
    the declared directions (default :data:`~distillshield.detect.design.HEAD_DIRECTIONS`).

    ``metadata_peer_score`` is computed from the model's own scores
    (:func:`~distillshield.detect.neighbours.score_with_peers`), so the fit alternates: first
    with the feature at 0 everywhere, then ``rounds`` times with the feature computed from the
    previous fit — the same two-pass scoring the scan runs with the final model.
    """
    y = table.column("label").to_numpy()
    tactics = (
        np.asarray(table.column("tactic").to_pylist(), dtype=object)
        if "tactic" in table.column_names
        else None
    )
    if feature_names(features) != feature_names(FEATURES):
        raise DistillShieldError("fit_with_peers: features must be FEATURES' names, in order")
    _, x = score_with_peers(_Zero(), table, features=FEATURES, groups=groups)
    model = AccountModel.fit(
        x, y, tactics=tactics, features=features, c=c, threshold=threshold, head_directions=head_directions
    )
    for _ in range(rounds):
        _, x = score_with_peers(model, table, features=FEATURES, groups=groups)
        model = AccountModel.fit(
            x,
            y,
            tactics=tactics,
            features=features,
            c=c,
            threshold=threshold,
            head_directions=head_directions,
        )
    return model


def _per_head(table: pa.Table) -> dict[str, int]:
    """Training rows per head (what each tactic's regression was fitted on, besides negatives)."""
    counts = Counter(t for t in table.column("tactic").to_pylist() if t is not None)
    return dict(sorted(counts.items()))


class _Zero:
    """A stand-in first pass that scores every account 0 (the first fit's peers)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))


def train(
    out: Path,
    *,
    scenarios: Sequence[Path] | None = None,
    work_dir: Path | None = None,
    scale: float = 1.0,
    cutoffs: Sequence[float | None] = CUTOFF_DAYS,
    c: float = 0.3,
    threshold: float = 0.9,
    log: Callable[[str], None] | None = None,
) -> AccountModel:
    """Simulate, prepare and featurise each scenario, fit, and save the model to ``out``."""
    from distillshield.simulate import load_scenario, simulate

    say = log or (lambda _msg: None)
    paths = list(scenarios) if scenarios else training_scenarios()
    tables: list[pa.Table] = []
    groups: list[np.ndarray] = []
    used: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="distillshield-train-") as tmp:
        base = work_dir or Path(tmp)
        for path in paths:
            sc = load_scenario(path)
            data = base / sc.name
            say(f"simulating {sc.name} (seed {sc.seed}, scale {scale})")
            simulate(sc, data, scale=scale, overwrite=True)
            say(f"preparing {sc.name}")
            prepare(data)
            say(f"featurising {sc.name} at cut-offs {list(cutoffs)}")
            table = training_table(data, cutoffs)
            tables.append(table)
            groups.append(training_groups(sc.name, table))
            y = table.column("label").to_numpy()
            used.append(
                {
                    "scenario": sc.name,
                    "seed": sc.seed,
                    "scale": scale,
                    "rows": len(y),
                    "positives": int(y.sum()),
                }
            )
    stacked = pa.concat_tables(tables)
    y_all = stacked.column("label").to_numpy()
    fitted = fit_with_peers(stacked, np.concatenate(groups), c=c, threshold=threshold)
    model = dataclasses.replace(
        fitted,
        provenance={
            "name": "account-lr",
            "trainer": "distillshield train",
            "regularisation_C": c,
            "cutoff_days": [cc for cc in cutoffs],
            "scenarios": used,
            "rows": len(y_all),
            "positives": int(y_all.sum()),
            "positives_per_head": _per_head(stacked),
            "peer_rounds": PEER_ROUNDS,
            "head_directions": {h: dict(d) for h, d in HEAD_DIRECTIONS.items()},
        },
    )
    model.save(out)
    say(f"wrote {out}")
    return model
