"""Detection quality on held-out datasets: scan + replay + evaluate, one markdown row each (docs/results.md).

Usage:
    python bench/eval_detection.py [--every 6h] [--out runs/results] [--model MODEL.json] DATA...

Each DATA is a simulated dataset (with labels/). For each it runs ``distillshield scan``
(batch verdicts, used for calibration) and ``distillshield replay --every`` (incremental
verdicts with first_flagged_at, used for every other figure), evaluates the replay with
``distillshield evaluate`` and prints: account precision/recall, false-positive rate overall
and the worst hard-negative persona, per campaign coverage, purity, hours to first flag and
to 90 % flagged, and harvest leakage; then a reliability table of the batch scores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from distillshield.detect import scan
from distillshield.detect.model import load_model
from distillshield.detect.replay import replay
from distillshield.evaluate import evaluate

HARD_NEGATIVES = (
    "legit.university_class",
    "legit.corporate_vpn",
    "legit.saas_backend",
    "legit.benchmark_researcher",
    "legit.reseller",
    "legit.enterprise_synthetic_data",
    "legit.coding_agent_vendor",
)


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:.1%}" if pct else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--every", default="6h")
    ap.add_argument("--out", type=Path, default=Path("runs/results"))
    ap.add_argument("--model", type=Path, default=None, help="account model JSON (default: the shipped one)")
    args = ap.parse_args()
    model = load_model(args.model)
    scores: list[float] = []
    truth: list[int] = []
    print("| dataset | precision | recall | FPR | worst hard negative | ARI | scan s | replay s |")
    print("|---|---|---|---|---|---|---|---|")
    camp_rows = []
    for data in args.data:
        name = data.name
        det, rep = args.out / name / "scan", args.out / name / "replay"
        t0 = time.perf_counter()
        scan(data, det, model=model)
        t_scan = time.perf_counter() - t0
        t0 = time.perf_counter()
        replay(data, rep, every=args.every, model=model)
        t_rep = time.perf_counter() - t0
        r = evaluate(data / "labels", rep, data_dir=data).to_dict()
        (args.out / name / "evaluation.json").write_text(json.dumps(r, indent=1, default=str))
        fps = {p["persona"]: p for p in r["false_positives"]["by_persona"]}
        worst = max(
            ((p, fps[p]["rate"] or 0.0) for p in HARD_NEGATIVES if p in fps),
            key=lambda z: z[1],
            default=("—", 0.0),
        )
        fp = r["false_positives"]
        print(
            f"| {name} | {_fmt(r['accounts']['precision'])} | {_fmt(r['accounts']['recall'])} | "
            f"{_fmt(fp['rate'], True)} ({fp['flagged']}/{fp['accounts']}) | {worst[0]} {worst[1]:.1%} | "
            f"{_fmt(r['adjusted_rand_index'])} | {t_scan:.0f} | {t_rep:.0f} |"
        )
        for c in r["campaigns"]:
            camp_rows.append(
                f"| {name} | {c['campaign_id']} | {c['accounts']} | {_fmt(c['coverage'], True)} | "
                f"{_fmt(c['purity'], True)} | {_fmt(c['hours_to_first_flag'])} | "
                f"{_fmt(c['hours_to_90pct_flagged'])} | "
                f"{_fmt(c['leakage'], True)} |"
            )
        acc = pq.read_table(det / "accounts.parquet", columns=["account_id", "score"])
        lab = {
            x["account_id"]: x["campaign_id"] is not None
            for x in pq.read_table(data / "labels" / "accounts.parquet").to_pylist()
        }
        for a, s in zip(acc.column("account_id").to_pylist(), acc.column("score").to_pylist(), strict=True):
            scores.append(s)
            truth.append(int(lab.get(a, False)))
    print()
    print("| dataset | campaign | accounts | coverage | purity | h to first flag | h to 90 % | leakage |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(camp_rows))
    s, t = np.array(scores), np.array(truth)
    edges = np.array([0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0 + 1e-9])
    print()
    print("| score bin | accounts | mean score | campaign share |")
    print("|---|---|---|---|")
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (s >= lo) & (s < hi)
        if m.any():
            ece += m.sum() / len(s) * abs(s[m].mean() - t[m].mean())
            print(f"| [{lo:.2f}, {min(hi, 1):.2f}) | {m.sum()} | {s[m].mean():.3f} | {t[m].mean():.3f} |")
    print(
        f"\nBrier score {np.mean((s - t) ** 2):.4f}; expected calibration error {ece:.4f} "
        "(batch scan scores, all datasets)"
    )


if __name__ == "__main__":
    main()
