"""Per-kind precision of account edges against ground truth on a simulated, prepared dataset.

    python bench/eval_linking.py DATA   # DATA from `distillshield simulate` then `distillshield prepare`

Ground truth (labels/accounts) is used only to report: the share of each kind's edges that
join two accounts of one campaign, two legitimate accounts, or mix the two.
"""

from __future__ import annotations

import sys
from pathlib import Path

from distillshield.backends import get_backend
from distillshield.linking import account_edges
from distillshield.schema import ACCOUNT_LABELS, ACCOUNTS, EXCHANGE_ENRICHMENT, EXCHANGES, SIGNALS


def main() -> None:
    data = Path(sys.argv[1])
    b = get_backend()
    for name, spec in (
        ("ex", EXCHANGES),
        ("sig", SIGNALS),
        ("enr", EXCHANGE_ENRICHMENT),
        ("acc", ACCOUNTS),
        ("lab", ACCOUNT_LABELS),
    ):
        b.register_table(name, data, spec)
    b.register("e", account_edges(b))
    rows = b.query(
        "SELECT kind, count(*) AS edges, "
        "round(avg(CASE WHEN la.campaign_id = lb.campaign_id THEN 1.0 ELSE 0 END), 3) AS same_campaign, "
        "round(avg(CASE WHEN la.campaign_id IS NULL AND lb.campaign_id IS NULL THEN 1.0 ELSE 0 END), 3) "
        "AS legit_legit, "
        "round(avg(CASE WHEN coalesce(la.campaign_id, '') <> coalesce(lb.campaign_id, '') "
        "THEN 1.0 ELSE 0 END), 3) AS mixed "
        "FROM e JOIN lab la ON la.account_id = e.src JOIN lab lb ON lb.account_id = e.dst "
        "GROUP BY kind ORDER BY kind"
    ).to_pylist()
    print("| kind | edges | same campaign | legit–legit | mixed |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['edges']} | {r['same_campaign']} | {r['legit_legit']} | {r['mixed']} |")


if __name__ == "__main__":
    main()
