"""Unsupervised novelty: how unlike the rest of the scanned population an account behaves.

The account model only knows the tactics it was trained on. An isolation forest fitted on
the population being scanned (no labels) ranks every account by how easily it is isolated
from the others in the same standardised feature space; the score is that rank as a
percentile in [0, 1] (1 = the most isolated account of this scan). It is a *triage signal*,
not a verdict: it is reported per account and surfaces in the reasons, and
:mod:`distillshield.detect.campaigns` promotes it to a flag only when several accounts that
are novel in the same scan are also linked to each other by infrastructure — an unseen
attack still has to run on coordinated accounts, while an unusual individual does not.
"""

from __future__ import annotations

import numpy as np

__all__ = ["novelty_scores"]

#: Below this many accounts the forest is not fitted (every score is 0).
MIN_POPULATION = 50


def novelty_scores(x: np.ndarray, *, seed: int = 0, n_estimators: int = 100) -> np.ndarray:
    """Percentile of isolation per row of ``x`` (``(rows, features)``), in [0, 1]."""
    n = x.shape[0]
    if n < MIN_POPULATION or x.shape[1] == 0:
        return np.zeros(n, dtype=np.float64)
    from sklearn.ensemble import IsolationForest

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    z = (x - mean) / np.where(scale > 1e-9, scale, 1.0)
    forest = IsolationForest(n_estimators=n_estimators, max_samples=min(256, n), random_state=seed)
    forest.fit(z)
    anomaly = -forest.score_samples(z)  # higher = more isolated
    # rank with ties sharing the highest rank, as a percentile: 1.0 = the most isolated
    order = np.sort(anomaly)
    rank = np.searchsorted(order, anomaly, side="right") - 1
    return np.asarray(rank / max(1, n - 1), dtype=np.float64)
