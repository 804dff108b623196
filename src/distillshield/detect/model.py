"""The account model: a standardised logistic regression, stored as reviewable JSON.

Why a linear model rather than boosted trees: in an exploratory comparison on the default
scenario (seeds the model never saw), a logistic regression flagged no legitimate account at
0.5 where histogram gradient boosting flagged 10-23 individual developers (docs/scoring.md);
its output is a log-loss-fitted probability (calibration is checked, not assumed: see
``distillshield evaluate`` reliability in docs/results.md); every score decomposes exactly into
per-feature contributions, which is what an analyst's "why was this flagged" needs; and the
file is a few kilobytes of JSON a reviewer can read and diff, with no pickle and no
dependency on the scikit-learn version that trained it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from distillshield.detect.design import FEATURES, Feature, feature_names
from distillshield.errors import DistillShieldError

__all__ = ["AccountModel", "default_model_path", "load_model"]

_FORMAT = "distillshield.account-model/1"


def default_model_path() -> Path:
    """The model shipped with the package (trained by ``distillshield train``)."""
    return Path(str(resources.files("distillshield.detect") / "models" / "account-lr.json"))


@dataclass(frozen=True)
class AccountModel:
    """``P(campaign | x) = sigmoid(intercept + coef . (x - mean) / scale)``.

    ``threshold`` is the flag cut-off on that probability; ``provenance`` records what the
    model was trained on (scenarios, seeds, cut-offs, rows) so a result can be traced.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise DistillShieldError("account model: features, mean, scale and coef differ in length")
        if any(s <= 0 or not math.isfinite(s) for s in self.scale):
            raise DistillShieldError("account model: every scale must be a positive finite number")
        if not 0.0 < self.threshold < 1.0:
            raise DistillShieldError(f"account model: threshold {self.threshold} not in (0, 1)")

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

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions, ``(rows, features)``; they sum to logit - intercept."""
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z * np.asarray(self.coef), dtype=np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability per row of the design matrix ``x``."""
        logit = self.contributions(x).sum(axis=1) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))), dtype=np.float64)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        *,
        features: Sequence[Feature] = FEATURES,
        c: float = 0.3,
        threshold: float = 0.5,
        provenance: dict[str, Any] | None = None,
    ) -> AccountModel:
        """Fit on a design matrix and 0/1 labels: L2-regularised, sign-constrained logistic regression.

        Minimises the mean log loss plus ``||w||^2 / (2 C n)`` (scikit-learn's convention for
        ``C``) with each coefficient bounded to its feature's declared ``direction``
        (:class:`~distillshield.detect.design.Feature`), by L-BFGS-B. Inputs are standardised
        first, so ``C`` weighs every feature alike.
        """
        from scipy.optimize import minimize
        from scipy.special import expit

        if x.shape[0] != y.shape[0] or x.shape[1] != len(features):
            raise DistillShieldError(
                f"fit: x {x.shape} does not match y {y.shape} and {len(features)} features"
            )
        if len(np.unique(y)) != 2:
            raise DistillShieldError("fit: training data needs both campaign and legitimate accounts")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        z = (x - mean) / scale
        t = np.asarray(y, dtype=np.float64)
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
            (0.0, None) if f.direction > 0 else (None, 0.0) if f.direction < 0 else (None, None)
            for f in features
        ]
        bounds.append((None, None))
        res = minimize(
            loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000}
        )
        if not res.success and not np.all(np.isfinite(res.x)):
            raise DistillShieldError(f"fit: optimiser failed: {res.message}")
        coef, intercept = res.x[:d], float(res.x[d])
        return cls(
            features=tuple(feature_names(features)),
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            coef=tuple(float(v) for v in coef),
            intercept=intercept,
            threshold=threshold,
            provenance=dict(provenance or {}),
        )

    def to_json(self) -> str:
        """Stable, human-diffable JSON (one feature per line)."""
        body = {
            "format": _FORMAT,
            "threshold": self.threshold,
            "intercept": self.intercept,
            "features": [
                {"name": n, "mean": m, "scale": s, "coef": c}
                for n, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
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
        """Parse :meth:`to_json` output; a malformed file is a :class:`DistillShieldError`."""
        try:
            body = json.loads(text)
            if body.get("format") != _FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {_FORMAT!r}")
            rows = body["features"]
            return cls(
                features=tuple(str(r["name"]) for r in rows),
                mean=tuple(float(r["mean"]) for r in rows),
                scale=tuple(float(r["scale"]) for r in rows),
                coef=tuple(float(r["coef"]) for r in rows),
                intercept=float(body["intercept"]),
                threshold=float(body.get("threshold", 0.5)),
                provenance=dict(body.get("provenance") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DistillShieldError(f"{source}: not an account model file: {exc}") from exc


def load_model(path: Path | None = None) -> AccountModel:
    """Load ``path`` or the shipped model."""
    p = path or default_model_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DistillShieldError(f"{p}: cannot read account model: {exc}") from exc
    return AccountModel.from_json(text, source=str(p))
