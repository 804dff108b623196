"""The account model: sign-constrained logistic regressions, one per campaign tactic, stored as
reviewable JSON.

Why a linear model rather than boosted trees: in an exploratory comparison on the default
scenario (seeds the model never saw), a logistic regression flagged no legitimate account at
0.5 where histogram gradient boosting flagged 10-23 individual developers (docs/scoring.md);
its output is a log-loss-fitted probability (calibration is checked, not assumed: see
``distillshield evaluate`` reliability in docs/results.md); every score decomposes exactly into
per-feature contributions, which is what an analyst's "why was this flagged" needs; and the
file is a few kilobytes of JSON a reviewer can read and diff, with no pickle and no
dependency on the scikit-learn version that trained it.

Why one regression per tactic (a *head*) rather than one for every campaign: the tactics'
evidence points in opposite directions on some features. A chain-of-thought harvest asks
short questions for long answers; an agentic harvest sends long, growing contexts for short
answers. A single linear score must take one side, and the side the larger campaigns in the
training data pull towards leaves the other tactic's accounts to the evidence they share
with their operator (a card, a staff handle); when the operator strips that, they score like
developers (docs/results.md, "One head per tactic"). Each head is fitted on one tactic's
accounts against every legitimate account, under the same declared directions; an account's
probability is its most confident head's, and its reasons are that head's contributions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from distillshield.detect.design import FEATURES, Feature, feature_names, head_features
from distillshield.errors import DistillShieldError

__all__ = ["AccountModel", "Head", "default_model_path", "load_model"]

_FORMAT = "distillshield.account-model/2"
#: One regression, no heads: what `distillshield train` wrote before 2026-11-27 (still read).
_FORMAT_V1 = "distillshield.account-model/1"
#: The head of a model fitted without tactic labels, and of a format-1 file.
SINGLE_HEAD = "campaign"


def default_model_path() -> Path:
    """The model shipped with the package (trained by ``distillshield train``)."""
    return Path(str(resources.files("distillshield.detect") / "models" / "account-lr.json"))


@dataclass(frozen=True)
class Head:
    """One tactic's regression: ``logit = intercept + coef . z`` on the model's standardised ``z``."""

    name: str
    coef: tuple[float, ...]
    intercept: float


@dataclass(frozen=True)
class AccountModel:
    """``P(campaign | x) = max over heads of sigmoid(intercept + coef . (x - mean) / scale)``.

    Every head reads the same features, standardised alike (``mean``, ``scale``: the whole
    training table's). ``threshold`` is the flag cut-off on that probability; ``provenance``
    records what the model was trained on (scenarios, seeds, cut-offs, rows) so a result can
    be traced.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    heads: tuple[Head, ...]
    threshold: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == n):
            raise DistillShieldError("account model: features, mean and scale differ in length")
        if not self.heads:
            raise DistillShieldError("account model: no heads")
        for h in self.heads:
            if len(h.coef) != n:
                raise DistillShieldError(
                    f"account model: head {h.name!r} has {len(h.coef)} coefficients for {n} features"
                )
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise DistillShieldError(f"account model: head names repeat: {names}")
        if any(s <= 0 or not math.isfinite(s) for s in self.scale):
            raise DistillShieldError("account model: every scale must be a positive finite number")
        if not 0.0 < self.threshold < 1.0:
            raise DistillShieldError(f"account model: threshold {self.threshold} not in (0, 1)")

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``mean``, ``scale``, the heads' weights ``(heads, features)`` and intercepts as
        read-only arrays, built once: the model is immutable, and rebuilding them on every
        call was most of the cost of scoring one account (the gateway's online model term
        scores one row per request)."""
        mean = np.asarray(self.mean, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        w = np.array([h.coef for h in self.heads], dtype=np.float64).reshape(len(self.heads), -1)
        b = np.array([h.intercept for h in self.heads], dtype=np.float64)
        for a in (mean, scale, w, b):
            a.flags.writeable = False
        return mean, scale, w, b

    @property
    def head_names(self) -> tuple[str, ...]:
        """The heads' names, in file order (the tactics the model was trained on)."""
        return tuple(h.name for h in self.heads)

    def check_features(self, features: Sequence[Feature] = FEATURES) -> None:
        """Refuse to score with a design matrix the model was not trained on."""
        names = tuple(feature_names(features))
        if names != self.features:
            missing = sorted(set(self.features) - set(names))
            extra = sorted(set(names) - set(self.features))
            raise DistillShieldError(
                f"account model was trained on other features (missing {missing}, extra {extra}); "
                "retrain with `distillshield train`"
            )

    def _z(self, x: np.ndarray) -> np.ndarray:
        mean, scale, _, _ = self._arrays
        return np.asarray((x - mean) / scale, dtype=np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Every head's log-odds, ``(rows, heads)``.

        Summed per row and head, as the single regression always was, rather than one BLAS
        matrix product, whose rounding may depend on the matrix's shape and a row's place in
        it: an account's score should not move in its last bit because other accounts joined
        the table (replay verdicts are compared across steps).
        """
        return self._logits(self._z(x))

    def _weights(self) -> np.ndarray:
        return self._arrays[2]

    def _logits(self, z: np.ndarray) -> np.ndarray:
        w = self._weights()
        out = np.empty((z.shape[0], len(self.heads)), dtype=np.float64)
        for j, h in enumerate(self.heads):
            out[:, j] = (z * w[j]).sum(axis=1) + h.intercept
        return out

    def winning_heads(self, x: np.ndarray) -> np.ndarray:
        """Per row, the index of the head that gives the highest probability (first on ties)."""
        return self.explain(x)[2]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions of each row's winning head, ``(rows, features)``;
        they sum to that head's logit minus its intercept."""
        return self.explain(x)[1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability per row of the design matrix ``x`` (the winning head's)."""
        return self.explain(x)[0]

    def explain(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probability, contributions, winning head index)`` per row, from one pass over the
        heads (what a scan needs together)."""
        z = self._z(x)
        logits = self._logits(z)
        win = np.asarray(np.argmax(logits, axis=1), dtype=np.int64)
        best = logits[np.arange(len(win)), win]
        prob = 1.0 / (1.0 + np.exp(-np.clip(best, -50.0, 50.0)))
        return np.asarray(prob, dtype=np.float64), np.asarray(z * self._weights()[win], dtype=np.float64), win

    def explain_row(self, row: np.ndarray) -> tuple[float, np.ndarray, int]:
        """:meth:`explain` of one account's inputs (:func:`~distillshield.detect.design.design_row`),
        where a ``NaN`` input is *unknown* and read as the model's mean: it contributes
        nothing to any head, so the score rests on what is known. ``(probability,
        contributions, winning head index)``.

        The arithmetic of :meth:`explain` on a one-row matrix, operation for operation (so the
        same bits: tested on random rows), without its batch bookkeeping — the gateway's
        online model term calls this once per request, where that bookkeeping was most of
        the cost."""
        mean, scale, w, b = self._arrays
        z = ((np.where(np.isnan(row), mean, row) - mean) / scale).reshape(1, -1)
        logits = (z * w).sum(axis=1) + b
        win = int(np.argmax(logits))
        prob = 1.0 / (1.0 + np.exp(-np.clip(logits[win : win + 1], -50.0, 50.0)))
        return float(prob[0]), z[0] * w[win], win

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        *,
        tactics: np.ndarray | None = None,
        features: Sequence[Feature] = FEATURES,
        c: float = 0.3,
        threshold: float = 0.5,
        provenance: dict[str, Any] | None = None,
        head_directions: Mapping[str, Mapping[str, int]] | None = None,
    ) -> AccountModel:
        """Fit on a design matrix and 0/1 labels: one L2-regularised, sign-constrained logistic
        regression per tactic.

        ``tactics`` names each positive row's tactic (values on negative rows are ignored);
        each head is fitted on its tactic's rows against every negative row. Without it there
        is one head, :data:`SINGLE_HEAD`, on every row. A head minimises the mean log loss plus
        ``||w||^2 / (2 C n)`` (scikit-learn's convention for ``C``; ``n`` its rows) with each
        coefficient bounded to its feature's declared ``direction``
        (:class:`~distillshield.detect.design.Feature`), by L-BFGS-B; ``head_directions``
        (``{head: {feature: direction}}``, e.g.
        :data:`~distillshield.detect.design.HEAD_DIRECTIONS`) overrides a direction for one
        head. Inputs are standardised first, over all rows, so ``C`` weighs every feature alike.
        """
        if x.shape[0] != y.shape[0] or x.shape[1] != len(features):
            raise DistillShieldError(
                f"fit: x {x.shape} does not match y {y.shape} and {len(features)} features"
            )
        if len(np.unique(y)) != 2:
            raise DistillShieldError("fit: training data needs both campaign and legitimate accounts")
        positive = np.asarray(y) == 1
        if tactics is None:
            names = np.full(len(y), SINGLE_HEAD, dtype=object)
        else:
            if len(tactics) != len(y):
                raise DistillShieldError(f"fit: {len(tactics)} tactics for {len(y)} rows")
            names = np.asarray(tactics, dtype=object)
            if any(t is None or t == "" for t in names[positive]):
                raise DistillShieldError("fit: every campaign row needs a tactic")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        z = (x - mean) / scale
        heads = []
        for name in sorted({str(t) for t in names[positive]}):
            rows = ~positive | (positive & (names == name))
            try:
                feats = head_features(name, features, head_directions or {})
            except (KeyError, ValueError) as exc:
                raise DistillShieldError(f"fit: {exc}") from exc
            coef, intercept = _fit_head(z[rows], positive[rows].astype(np.float64), feats, c)
            heads.append(Head(name=name, coef=tuple(float(v) for v in coef), intercept=intercept))
        return cls(
            features=tuple(feature_names(features)),
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            heads=tuple(heads),
            threshold=threshold,
            provenance=dict(provenance or {}),
        )

    def to_json(self) -> str:
        """Stable, human-diffable JSON (one feature per line, one coefficient per head)."""
        body = {
            "format": _FORMAT,
            "threshold": self.threshold,
            "heads": [{"name": h.name, "intercept": h.intercept} for h in self.heads],
            "features": [
                {"name": n, "mean": m, "scale": s, "coef": {h.name: h.coef[i] for h in self.heads}}
                for i, (n, m, s) in enumerate(zip(self.features, self.mean, self.scale, strict=True))
            ],
            "provenance": self.provenance,
        }
        return json.dumps(body, indent=1, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        """Write atomically (tmp + rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<model>") -> AccountModel:
        """Parse :meth:`to_json` output (or a format-1 file: one head, :data:`SINGLE_HEAD`);
        a malformed file is a :class:`DistillShieldError`."""
        try:
            body = json.loads(text)
            fmt = body.get("format")
            rows = body["features"]
            if fmt == _FORMAT:
                heads = tuple(
                    Head(
                        name=str(h["name"]),
                        coef=tuple(float(r["coef"][h["name"]]) for r in rows),
                        intercept=float(h["intercept"]),
                    )
                    for h in body["heads"]
                )
            elif fmt == _FORMAT_V1:
                coef = tuple(float(r["coef"]) for r in rows)
                heads = (Head(name=SINGLE_HEAD, coef=coef, intercept=float(body["intercept"])),)
            else:
                raise ValueError(f"format {fmt!r}, expected {_FORMAT!r} or {_FORMAT_V1!r}")
            return cls(
                features=tuple(str(r["name"]) for r in rows),
                mean=tuple(float(r["mean"]) for r in rows),
                scale=tuple(float(r["scale"]) for r in rows),
                heads=heads,
                threshold=float(body.get("threshold", 0.5)),
                provenance=dict(body.get("provenance") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DistillShieldError(f"{source}: not an account model file: {exc}") from exc


def _fit_head(
    z: np.ndarray, t: np.ndarray, features: Sequence[Feature], c: float
) -> tuple[np.ndarray, float]:
    """One sign-constrained, L2-regularised logistic regression on standardised ``z``."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, d = z.shape
    penalty = 1.0 / (2.0 * c * n)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:d], params[d]
        logit = z @ w + b
        # log(1 + e^m) - t m, computed stably
        value = float(np.mean(np.logaddexp(0.0, logit) - t * logit) + penalty * float(w @ w))
        g = (expit(logit) - t) / n
        grad = np.concatenate([z.T @ g + 2.0 * penalty * w, [g.sum()]])
        return value, grad

    bounds: list[tuple[float | None, float | None]] = [
        (0.0, None) if f.direction > 0 else (None, 0.0) if f.direction < 0 else (None, None) for f in features
    ]
    bounds.append((None, None))
    res = minimize(
        loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000}
    )
    if not res.success and not np.all(np.isfinite(res.x)):
        raise DistillShieldError(f"fit: optimiser failed: {res.message}")
    return res.x[:d], float(res.x[d])


def load_model(path: Path | None = None) -> AccountModel:
    """Load ``path`` or the shipped model."""
    p = path or default_model_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DistillShieldError(f"{p}: cannot read account model: {exc}") from exc
    return AccountModel.from_json(text, source=str(p))
