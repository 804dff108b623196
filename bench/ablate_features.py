"""Refit the account model with some fingerprint columns blanked: what does the model lose without them?

Usage:
    distillshield train --out /tmp/trainp/model.json --work /tmp/trainp   # simulates + prepares train-{1,2,3}
    python bench/ablate_features.py --work /tmp/trainp --blank night_share_local --out /tmp/abl/nonight.json
    python bench/eval_detection.py --model /tmp/abl/nonight.json --out /tmp/abl/nonight /tmp/ev11 ...
    python bench/ablate_features.py --work /tmp/trainp --free log_requests,log_requests_per_day --out M.json

A blanked column is null in every training row, so the feature reads as its "no evidence"
fill everywhere and its coefficient fits to 0; every other step is the shipped trainer's
(:func:`distillshield.detect.train.training_table` at the shipped cut-offs,
:func:`~distillshield.detect.train.fit_with_peers` with the ``C`` and threshold the shipped
model file records). With no ``--blank`` it reproduces the shipped model from the same
prepared data. ``--free`` refits with the named model features' declared directions
(``detect.design.Feature.direction``) lifted: either sign is allowed. The fitted model file
keeps every feature, so ``scan --model`` and ``replay --model`` read it unchanged, and one
head per tactic, as the shipped one. The per-account training tables are built afresh on
every run (about a minute in all), so they always come from the current feature code.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillshield.detect.design import FEATURES, HEAD_DIRECTIONS
from distillshield.detect.model import load_model
from distillshield.detect.train import fit_with_peers, training_groups, training_scenarios, training_table
from distillshield.simulate import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description="Refit the account model with some fingerprint columns blanked.")
    ap.add_argument("--work", type=Path, required=True, help="data prepared by `distillshield train --work`")
    ap.add_argument("--blank", default="", help="comma-separated fingerprint columns to blank")
    ap.add_argument("--free", default="", help="comma-separated model features whose sign is left free")
    ap.add_argument("--out", type=Path, required=True, help="model JSON to write")
    args = ap.parse_args()
    blank = [c for c in args.blank.split(",") if c]
    free = {f for f in args.free.split(",") if f}
    unknown = free - {f.name for f in FEATURES}
    if unknown:
        raise SystemExit(f"--free: no model feature {sorted(unknown)}")
    features = tuple(dataclasses.replace(f, direction=0) if f.name in free else f for f in FEATURES)
    tables, groups = [], []
    for path in training_scenarios():
        name = load_scenario(path).name
        # featurised afresh every run (about 20 s a scenario): a cached table outlives the
        # feature code that built it (one once lacked the tactic column the heads train on)
        table = training_table(args.work / name)
        tables.append(table)
        groups.append(training_groups(name, table))
    stacked = pa.concat_tables(tables)
    for col in blank:
        i = stacked.schema.get_field_index(col)
        if i < 0:
            raise SystemExit(f"--blank: no column {col!r} in the training table")
        stacked = stacked.set_column(i, col, pa.nulls(stacked.num_rows, stacked.schema.field(col).type))
    shipped = load_model()  # refit with the shipped model's regularisation and threshold
    c = float(shipped.provenance.get("regularisation_C", 0.3))
    model = fit_with_peers(
        stacked, np.concatenate(groups), c=c, threshold=shipped.threshold, features=features
    )
    model = dataclasses.replace(
        model,
        provenance={
            "name": "account-lr-ablation",
            "blanked": blank,
            "free": sorted(free),
            "head_directions": {h: dict(d) for h, d in HEAD_DIRECTIONS.items()},
            "rows": stacked.num_rows,
        },
    )
    model.save(args.out)
    for head in model.heads:
        print(f"head {head.name}")
        for name, coef, scale in zip(model.features, head.coef, model.scale, strict=True):
            if coef:
                print(f"  {name:40s} {coef / scale:8.2f} per unit")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
