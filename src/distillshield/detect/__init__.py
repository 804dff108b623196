"""Campaign detection: account scores with reasons, campaigns with evidence, replay.

The public API of issue 4's main job (docs/scoring.md):

>>> from distillshield.detect import scan, replay
>>> result = scan("DATA", "DET")                 # DET/accounts.parquet, campaigns.json, report.html
>>> replay("DATA", "DET-replay", every="6h")    # the same contract with first_flagged_at

Stages, in data-flow order: :mod:`.graph` (what the linking edges say per account),
:mod:`.design` (the model's feature list), :mod:`.model` (calibrated linear model, one head
per campaign tactic, stored as JSON), :mod:`.novelty` (unsupervised isolation percentile),
:mod:`.reasons` (top reasons), :mod:`.campaigns` (clusters and dossiers), :mod:`.scan` (the
chain of named steps), :mod:`.replay` (incremental, nothing from the future), :mod:`.train`
(fitting on simulated scenarios other than the evaluated one), :mod:`.output` (the detection
contract).
"""

from distillshield.detect.model import AccountModel, Head, default_model_path, load_model
from distillshield.detect.scan import ScanResult, StepStat, scan, scan_tables

__all__ = [
    "AccountModel",
    "Head",
    "ScanResult",
    "StepStat",
    "default_model_path",
    "load_model",
    "scan",
    "scan_tables",
]
