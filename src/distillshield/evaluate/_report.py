"""The evaluation report: immutable values, and their stable JSON form.

The report is the contract between the harness and everything that consumes a score (the
CLI, CI thresholds, docs/results). Every key of :meth:`EvaluationReport.to_dict` is
documented in docs/evaluation.md; renaming one is a breaking change, so bump
``REPORT_VERSION`` when you do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Version of the JSON layout produced by :meth:`EvaluationReport.to_dict`.
REPORT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Counts:
    """How much there was to evaluate, so a metric can be read against its denominator."""

    accounts: int
    campaign_accounts: int
    legitimate_accounts: int
    flagged: int
    detection_rows: int
    unknown_accounts: int
    unknown_flagged: int
    campaigns: int
    detected_clusters: int
    campaign_objects: int
    exchanges: int
    campaign_exchanges: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "campaign_accounts": self.campaign_accounts,
            "legitimate_accounts": self.legitimate_accounts,
            "flagged": self.flagged,
            "detection_rows": self.detection_rows,
            "unknown_accounts": self.unknown_accounts,
            "unknown_flagged": self.unknown_flagged,
            "campaigns": self.campaigns,
            "detected_clusters": self.detected_clusters,
            "campaign_objects": self.campaign_objects,
            "exchanges": self.exchanges,
            "campaign_exchanges": self.campaign_exchanges,
        }


@dataclass(frozen=True)
class AccountMetrics:
    """Confusion counts over labelled accounts; positive = the account belongs to a campaign."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class PersonaFalsePositives:
    """False-positive rate among the legitimate accounts of one persona."""

    persona: str
    accounts: int
    flagged: int
    rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "accounts": self.accounts,
            "flagged": self.flagged,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class FalsePositives:
    """False-positive rate on legitimate accounts, overall and per persona (the hard negatives)."""

    accounts: int
    flagged: int
    rate: float | None
    by_persona: tuple[PersonaFalsePositives, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "flagged": self.flagged,
            "rate": self.rate,
            "by_persona": [p.to_dict() for p in self.by_persona],
        }


@dataclass(frozen=True)
class CampaignResult:
    """How well, and how fast, one true campaign was caught."""

    campaign_id: str
    actor: str | None
    accounts: int
    flagged: int
    recall: float | None
    # Recovery as a cluster: the detector cluster that holds most of the campaign's flagged accounts.
    best_cluster: str | None
    cluster_size: int | None
    overlap: int
    coverage: float | None
    purity: float | None
    attributed_actor: str | None
    actor_correct: bool | None
    # Speed: simulated hours from the campaign's first exchange.
    exchanges: int
    first_exchange_at: datetime | None
    first_flag_at: datetime | None
    hours_to_first_flag: float | None
    flagged_90pct_at: datetime | None
    hours_to_90pct_flagged: float | None
    leaked_exchanges: int
    leakage: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "actor": self.actor,
            "accounts": self.accounts,
            "flagged": self.flagged,
            "recall": self.recall,
            "best_cluster": self.best_cluster,
            "cluster_size": self.cluster_size,
            "overlap": self.overlap,
            "coverage": self.coverage,
            "purity": self.purity,
            "attributed_actor": self.attributed_actor,
            "actor_correct": self.actor_correct,
            "exchanges": self.exchanges,
            "first_exchange_at": _iso(self.first_exchange_at),
            "first_flag_at": _iso(self.first_flag_at),
            "hours_to_first_flag": self.hours_to_first_flag,
            "flagged_90pct_at": _iso(self.flagged_90pct_at),
            "hours_to_90pct_flagged": self.hours_to_90pct_flagged,
            "leaked_exchanges": self.leaked_exchanges,
            "leakage": self.leakage,
        }


@dataclass(frozen=True)
class Leakage:
    """Exchange-weighted harvest leakage over all campaigns: how much of the model they got."""

    exchanges: int
    leaked: int
    share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"exchanges": self.exchanges, "leaked": self.leaked, "share": self.share}


@dataclass(frozen=True)
class EvaluationReport:
    """Everything :func:`distillshield.evaluate.evaluate` measured for one detector run."""

    labels_dir: str
    detections_dir: str
    data_dir: str
    data_end_at: datetime | None
    counts: Counts
    accounts: AccountMetrics
    false_positives: FalsePositives
    adjusted_rand_index: float | None
    campaigns: tuple[CampaignResult, ...]
    leakage: Leakage

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with stable keys (docs/evaluation.md, "JSON report")."""
        return {
            "version": REPORT_VERSION,
            "inputs": {"labels": self.labels_dir, "detections": self.detections_dir, "data": self.data_dir},
            "data_end_at": _iso(self.data_end_at),
            "counts": self.counts.to_dict(),
            "accounts": self.accounts.to_dict(),
            "false_positives": self.false_positives.to_dict(),
            "adjusted_rand_index": self.adjusted_rand_index,
            "campaigns": [c.to_dict() for c in self.campaigns],
            "leakage": self.leakage.to_dict(),
        }
