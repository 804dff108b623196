"""When did two replays first flag each account? Per true campaign, who moved and by how much.

Usage:
    python bench/compare_flag_times.py DATA BEFORE AFTER

``BEFORE`` and ``AFTER`` are ``distillshield replay`` output directories (their
``accounts.parquet`` with ``first_flagged_at``) of the same dataset ``DATA`` (with labels/).
Prints, per campaign and for legitimate accounts together, how many accounts were first
flagged later (and the median and largest delay in hours), earlier, or are flagged by one
replay only. Used for the evidence floor's cost in docs/results.md ("A flag on a handful of
requests needs a link").
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq


def first_flags(det: Path) -> dict[str, object]:
    t = pq.read_table(det / "accounts.parquet", columns=["account_id", "first_flagged_at"])
    ids, times = t.column("account_id").to_pylist(), t.column("first_flagged_at").to_pylist()
    return dict(zip(ids, times, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args()
    truth = {
        r["account_id"]: r["campaign_id"] or "legitimate"
        for r in pq.read_table(args.data / "labels" / "accounts.parquet").to_pylist()
    }
    before, after = first_flags(args.before), first_flags(args.after)
    later: dict[str, list[float]] = defaultdict(list)
    earlier: dict[str, int] = defaultdict(int)
    lost: dict[str, int] = defaultdict(int)
    gained: dict[str, int] = defaultdict(int)
    for account in sorted(set(before) | set(after)):
        group = truth.get(account, "unlabelled")
        b, a = before.get(account), after.get(account)
        if b is not None and a is None:
            lost[group] += 1
        elif b is None and a is not None:
            gained[group] += 1
        elif b is not None and a is not None and a != b:
            hours = (a - b).total_seconds() / 3600  # type: ignore[operator]
            if hours > 0:
                later[group].append(hours)
            else:
                earlier[group] += 1
    print("| group | first flagged later | median / max delay (h) | earlier | before only | after only |")
    print("|---|---|---|---|---|---|")
    for group in sorted(set(later) | set(earlier) | set(lost) | set(gained)):
        delays = later[group]
        spread = f"{statistics.median(delays):.1f} / {max(delays):.1f}" if delays else "-"
        print(f"| {group} | {len(delays)} | {spread} | {earlier[group]} | {lost[group]} | {gained[group]} |")


if __name__ == "__main__":
    main()
