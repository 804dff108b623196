"""What the detector does with legitimate accounts that share a generic metadata tag.

Usage:
    python bench/eval_shared_tags.py DATA --out WORK [--holders 150,400] [--model MODEL.json]

Real API traffic carries request metadata that many unrelated customers share: a framework's
or an integration's default tag, a team convention (``"env": "prod"``). Metadata linking
exists for the opposite case — an operator's staff handle leaking into a farm's requests — and
a detector that learned "shared metadata = campaign" flags every customer of a popular
framework. The simulator's default scenario has no such tags (training scenarios do, with
other tags: ``simulate.persona.SHARED_TAGS``), so this script *injects* two pairs no scenario
uses — ``"env": "prod"`` and ``"sdk": "acme-agents/2.1"`` — into every request (joined to any
metadata already there) of ``H`` legitimate accounts of the prepared dataset ``DATA``: 70 %
individual developers, 20 % corporate-VPN employees, 10 % university students, chosen by a
seeded hash; with ``--with-campaign ID``, into every request of that campaign's accounts too
(a campaign running on the same popular framework as those customers: the hard case for
evidence read from who the sharers are). ``H`` below ``max_group`` (200) gives the tag pair
edges; above, none (a hub only when most holders are flagged).

For each ``H`` (and 0, the control) it writes a copy of ``DATA`` under ``WORK`` (exchanges
rewritten, everything else linked), runs ``distillshield scan`` with ``--model`` (default the
shipped model) and ``distillshield evaluate``, and prints per ``H``: tagged accounts flagged,
false positives overall, precision, recall and each campaign's coverage and purity.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import duckdb

from distillshield.detect import scan
from distillshield.detect.model import load_model
from distillshield.evaluate import evaluate

TAGS = '"env": "prod", "sdk": "acme-agents/2.1"'
MIX = (("legit.individual_developer", 0.7), ("legit.corporate_vpn", 0.2), ("legit.university_class", 0.1))


def tagged_copy(data: Path, out: Path, holders: int, seed: int, campaign: str | None = None) -> list[str]:
    """Copy of ``data`` at ``out`` with ``TAGS`` in every request of ``holders`` legitimate
    accounts (returned) and, with ``campaign``, of every account of that campaign too."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in data.iterdir():
        if entry.name != "exchanges" and not (out / entry.name).exists():
            os.symlink(entry.resolve(), out / entry.name)
    con = duckdb.connect()
    labels = str(data / "labels" / "accounts.parquet")
    chosen: list[str] = []
    for persona, share in MIX:
        k = round(holders * share)
        rows = con.execute(
            "SELECT account_id FROM read_parquet(?) WHERE persona = ? ORDER BY hash(account_id || ?) LIMIT ?",
            [labels, persona, str(seed), k],
        ).fetchall()
        chosen += [r[0] for r in rows]
    con.execute("CREATE TABLE tagged AS SELECT unnest(?::VARCHAR[]) AS account_id", [chosen])
    if campaign:
        con.execute(
            "INSERT INTO tagged SELECT account_id FROM read_parquet(?) WHERE campaign_id = ?",
            [labels, campaign],
        )
    (out / "exchanges").mkdir(exist_ok=True)
    for part in sorted((data / "exchanges").glob("*.parquet")):
        target = out / "exchanges" / part.name
        con.execute(
            f"""COPY (
                SELECT * REPLACE (
                    CASE WHEN account_id NOT IN (SELECT account_id FROM tagged) THEN metadata
                         WHEN metadata IS NULL THEN '{{{TAGS}}}'
                         ELSE rtrim(metadata, '}}') || ', {TAGS}}}' END AS metadata)
                FROM read_parquet('{part}')
            ) TO '{target}' (FORMAT parquet)"""
        )
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--holders", default="150,400")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--with-campaign",
        default=None,
        help="also tag every account of this campaign (a campaign running on a popular framework)",
    )
    args = ap.parse_args()
    model = load_model(args.model)
    print(
        "| tagged accounts | tagged flagged | false positives | precision | recall "
        + "| campaigns: coverage / purity |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for holders in [0, *(int(h) for h in args.holders.split(","))]:
        copy = args.out / f"tags-{holders}"
        chosen = tagged_copy(args.data, copy, holders, args.seed, args.with_campaign) if holders else []
        data = copy if holders else args.data
        det = args.out / f"det-{holders}"
        scan(data, det, model=model)
        r = evaluate(args.data / "labels", det, data_dir=args.data).to_dict()
        con = duckdb.connect()
        flagged = set()
        if chosen:
            flagged = {
                a
                for (a,) in con.execute(
                    "SELECT account_id FROM read_parquet(?) WHERE flagged", [str(det / "accounts.parquet")]
                ).fetchall()
            } & set(chosen)
        fp = r["false_positives"]
        camps = ", ".join(
            f"{c['campaign_id']} {c['coverage']:.1%} / {c['purity']:.1%}" for c in r["campaigns"]
        )
        print(
            f"| {holders} | {len(flagged)} | {fp['flagged']} ({fp['rate']:.2%}) | "
            f"{r['accounts']['precision']:.3f} | {r['accounts']['recall']:.3f} | {camps} |"
        )
        rows.append({"holders": holders, "tagged_flagged": len(flagged), "evaluation": r})
    (args.out / "shared_tags.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
