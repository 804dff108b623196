"""Evaluation harness: score a detector's output against simulated ground truth.

    report = evaluate(Path("run/labels"), Path("det"))
    json.dumps(report.to_dict())          # stable keys, docs/evaluation.md
    for table in render_report(report):   # what the CLI prints
        console.print(table)

The detector output contract (``DET/accounts.parquet`` + ``DET/campaigns.json``) and every
metric's definition and edge cases are in docs/evaluation.md.
"""

from distillshield.evaluate._detections import DetectedCampaign, Detections, load_detections
from distillshield.evaluate._render import render_report
from distillshield.evaluate._report import (
    REPORT_VERSION,
    AccountMetrics,
    CampaignResult,
    Counts,
    EvaluationReport,
    FalsePositives,
    Leakage,
    PersonaFalsePositives,
)
from distillshield.evaluate.metrics import evaluate

__all__ = [
    "REPORT_VERSION",
    "AccountMetrics",
    "CampaignResult",
    "Counts",
    "DetectedCampaign",
    "Detections",
    "EvaluationReport",
    "FalsePositives",
    "Leakage",
    "PersonaFalsePositives",
    "evaluate",
    "load_detections",
    "render_report",
]
