"""What a lower flag threshold would buy in a batch replay, and what it would cost (docs/results.md).

Usage:
    python bench/sweep_threshold.py DATA --every 6h --out DIR [--thresholds 0.9,0.8,0.7,0.6]

Runs ``distillshield replay`` once, keeping every step's scores (``replay(on_step=...)``),
then for each threshold writes the detection contract of a detector that flags an account
at the first step where the shipped replay flagged it *or* its score reached the threshold
and the step's evidence floor did not hold it, and scores it with ``distillshield evaluate``
(the ground truth is read only there). It prints, per threshold, the legitimate accounts
flagged (by persona) and each campaign's leakage.

An approximation, said plainly: the steps' corroboration, campaigns and dormant naming ran at
the shipped threshold, so accounts a lower threshold would have flagged do not corroborate or
name others here; campaign ids are the last step's. Read the leakage and false-positive
columns, not coverage.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from distillshield.detect import ScanResult
from distillshield.detect.output import write_flag_times
from distillshield.detect.replay import replay
from distillshield.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--every", default="6h")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--thresholds", default="0.9,0.85,0.8,0.7,0.6")
    args = ap.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]

    # per account: the first step at which each threshold would flag it
    first: dict[float, dict[str, datetime]] = {t: {} for t in thresholds}
    last_campaign: dict[str, str] = {}

    def on_step(cut: datetime, step: ScanResult) -> None:
        acc = step.accounts
        cols = [acc.column(c).to_pylist() for c in ("account_id", "score", "flagged", "held", "campaign_id")]
        for a, score, flagged, held, campaign in zip(*cols, strict=True):
            if campaign is not None:
                last_campaign[a] = campaign
            for t in thresholds:
                if flagged or (score >= t and not held):
                    first[t].setdefault(a, cut)

    result = replay(args.data, args.out / "replay", every=args.every, report=False, on_step=on_step)
    summary = []
    for t in thresholds:
        det = args.out / f"t{t:g}"
        write_flag_times(det, first[t], last_campaign, reason=f"score >= {t}")
        body = evaluate(args.data / "labels", det, data_dir=args.data).to_dict()
        (det / "evaluation.json").write_text(json.dumps(body, indent=2, default=str))
        fp = body["false_positives"]
        personas = {p["persona"]: p["flagged"] for p in fp["by_persona"] if p["flagged"]}
        leak = {c["campaign_id"]: round(100 * c["leakage"], 2) for c in body["campaigns"]}
        summary.append(
            {"threshold": t, "legit_flagged": fp["flagged"], "by_persona": personas, "leakage_pct": leak}
        )
        print(f"threshold {t:g}: legitimate accounts flagged {fp['flagged']} {personas}; leakage % {leak}")
    (args.out / "sweep.json").write_text(
        json.dumps({"steps": result.summary["steps"], "sweep": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
