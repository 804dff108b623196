"""What peers' intelligence adds: ``scan --intel`` and ``verify --peers`` (docs/intel.md, docs/verify.md).

Usage:
    python bench/eval_intel_effect.py [--scale 0.1] [--seed N] [--out runs/intel-effect]

Two providers see the same simulated operators (``Scenario.provider``): provider A scans its
traffic and exports a STIX bundle; provider B imports it and (1) retro-hunts, then scans its
first 12 h, first 24 h and whole period with and without ``--intel``; (2) replays its
sign-ups through the verifier with and without A's indicators. Prints both tables. The
TAXII hop of ``tests/test_intel_roundtrip.py`` is left out: it moves the same bundle.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.access import evaluate_signups
from distillshield.detect import scan
from distillshield.intel.hunt import hunt
from distillshield.intel.imports import load_indicators
from distillshield.intel.peers import PeerIndex
from distillshield.intel.stix import export_stix
from distillshield.prepare import prepare
from distillshield.simulate import load_scenario, simulate

#: A fixed community key: the figures must not depend on a random one.
KEY = bytes.fromhex("8f3c2a51d0e94b7a6c1e5f2093b7d4a8e6f01c9b3a5d7e2f4c6b8a0d1e3f5a7c")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=None, help="scenario seed (default: the scenario's)")
    ap.add_argument("--out", type=Path, default=Path("runs/intel-effect"))
    args = ap.parse_args()
    world = load_scenario("default")
    if args.seed is not None:
        world = world.model_copy(update={"seed": args.seed})
    a, b = args.out / "a", args.out / "b"
    simulate(world.model_copy(update={"provider": "provider-a"}), a, scale=args.scale)
    simulate(world.model_copy(update={"provider": "provider-b"}), b, scale=args.scale)
    scan(a, args.out / "det-a", report=False)
    bundle = export_stix(args.out / "det-a", data=a, tlp="amber", community_key=KEY, producer="provider-a")
    (args.out / "bundle.json").write_text(json.dumps(bundle))
    prepare(b)
    imported = load_indicators([args.out / "bundle.json"], community_key=KEY)
    hunt(b, imported.indicators, args.out / "hunt", community_key=KEY)

    labels = pq.read_table(b / "labels" / "accounts.parquet", columns=["account_id", "campaign_id"])
    ids, cids = labels.column("account_id").to_pylist(), labels.column("campaign_id").to_pylist()
    campaign = {a for a, c in zip(ids, cids, strict=True) if c}
    t0 = pc.min(pq.read_table(b / "exchanges", columns=["ts"]).column("ts")).as_py()
    print("| B's traffic scanned | flagged without intel | with A's intel | of which legitimate |")
    print("|---|---|---|---|")
    for hours in (12, 24, None):
        until = t0 + timedelta(hours=hours) if hours else None
        flagged = []
        for name, intel in (("own", None), ("intel", args.out / "hunt")):
            r = scan(b, args.out / f"det-b-{name}-{hours}", until=until, report=False, intel=intel)
            flagged.append({x["account_id"] for x in r.accounts.to_pylist() if x["flagged"]})
        label = f"first {hours} h" if hours else "whole period"
        print(f"| {label} | {len(flagged[0])} | {len(flagged[1])} | {len(flagged[1] - campaign)} |")

    index = PeerIndex(imported.indicators)
    alone = evaluate_signups(b).overall
    shared = evaluate_signups(b, peers=index, peer_key=KEY).overall
    print(f"\n{alone['fraud'] + alone['legit']} sign-ups; {len(index)} of A's indicators usable at sign-up")
    print("| B's sign-ups | without peers | with A's bundle |\n|---|---|---|")
    for key, what in (
        ("fraud_escalated_share", "fraudulent, escalated"),
        ("fraud_stopped_share", "fraudulent, denied"),
        ("legit_friction_share", "legitimate, friction"),
        ("legit_denied_share", "legitimate, denied"),
    ):
        print(f"| {what} | {100 * alone[key]:.1f} % | {100 * shared[key]:.1f} % |")


if __name__ == "__main__":
    main()
