"""Scoring: turning per-account evidence into flags, scores and reasons (the DET contract).

For now only :func:`~distillshield.scoring.baseline.volume_baseline`, the trivial detector
every real one must beat; see docs/evaluation.md for the output it writes.
"""

from distillshield.scoring.baseline import volume_baseline

__all__ = ["volume_baseline"]
