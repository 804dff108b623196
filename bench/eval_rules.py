"""Per-persona firing rates of the shipped rules on a simulated, prepared dataset.

    python bench/eval_rules.py DATA        # DATA from `distillshield simulate` then `distillshield prepare`

Ground truth (labels/accounts) is used only to report, never by the rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

from distillshield.backends import get_backend
from distillshield.features import account_fingerprints, register_dataset
from distillshield.schema import ACCOUNT_LABELS
from distillshield.scoring.rules import evaluate_rules, load_rules


def main() -> None:
    data = Path(sys.argv[1])
    b = get_backend()
    fp = account_fingerprints(b, **register_dataset(b, data))
    b.register("fp", fp)
    b.register("fired", evaluate_rules(b, "fp", load_rules()))
    b.register_table("lab", data, ACCOUNT_LABELS)
    rows = b.query(
        "SELECT l.persona, r.rule_id, count(DISTINCT r.account_id) AS fired, any_value(n.n) AS accounts "
        "FROM fired r JOIN lab l USING (account_id) "
        "JOIN (SELECT persona, count(*) AS n FROM lab JOIN fp USING (account_id) GROUP BY 1) n "
        "USING (persona) "
        "GROUP BY 1, 2 ORDER BY 2, 1"
    ).to_pylist()
    print("| rule | persona | accounts fired / active accounts |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['rule_id']} | {r['persona']} | {r['fired']} / {r['accounts']} |")


if __name__ == "__main__":
    main()
