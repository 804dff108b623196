"""Writing the detection contract: ``accounts.parquet``, ``campaigns.json``, ``report.html``.

The layout is the one :mod:`distillshield.evaluate` reads (docs/evaluation.md), so every
detector in this package — scan, replay, the baseline — is scored the same way. Files are
written atomically (temporary file, then rename): a crash never leaves a half-written
verdict that a downstream consumer (the gateway, an analyst) would read as complete.
``scan.json`` records the run: window, step timings and row counts, summary figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from distillshield.schema import DETECTION_ACCOUNTS, write_table

__all__ = ["run_record", "write_detections", "write_flag_times", "write_parquet"]


def _write_json(path: Path, body: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write a table that has no canonical spec (fingerprints), atomically."""
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def run_record(data_dir: str | Path, summary: dict[str, Any], steps: Sequence[Any]) -> dict[str, Any]:
    """The body of ``scan.json``: input, summary figures, each step's rows and seconds."""
    return {
        "input": str(data_dir),
        "summary": summary,
        "steps": [{"name": s.name, "rows": s.rows, "seconds": round(s.seconds, 3)} for s in steps],
    }


def write_detections(
    out: Path,
    accounts: pa.Table,
    campaigns: list[dict[str, Any]],
    *,
    run: dict[str, Any] | None = None,
    report: bool = True,
    title: str = "distillshield scan",
) -> None:
    """Write the detection directory ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    write_table(accounts, out, DETECTION_ACCOUNTS)
    _write_json(out / "campaigns.json", campaigns)
    if run is not None:
        _write_json(out / "scan.json", run)
    if report:
        from distillshield.report import write_report

        summary = (run or {}).get("summary")
        write_report(
            out / "report.html",
            campaigns,
            accounts,
            title=title,
            source=str((run or {}).get("input", "")),
            summary=summary,
        )


def write_flag_times(
    out: Path, flagged_at: Mapping[str, datetime], campaign: Mapping[str, str], *, reason: str
) -> None:
    """The detection contract of a detector that is only a flag time per account: every
    account of ``flagged_at`` flagged (score 1) at its time, in ``campaign``'s cluster where
    it has one, with ``reason`` as its one reason; no report.

    What the analyses beside the detector write to be scored by the same evaluation as a
    replay: an oracle's flags (``bench/leakage_bound.py``), another threshold's
    (``bench/sweep_threshold.py``), or a third-party detector's verdicts.
    """
    ids = sorted(flagged_at)
    accounts = pa.table(
        {
            "account_id": pa.array(ids, pa.string()),
            "score": pa.array([1.0] * len(ids), pa.float64()),
            "flagged": pa.array([True] * len(ids), pa.bool_()),
            "campaign_id": pa.array([campaign.get(a) for a in ids], pa.string()),
            "first_flagged_at": pa.array([flagged_at[a] for a in ids], pa.timestamp("us", tz="UTC")),
            "top_reasons": pa.array([[reason]] * len(ids), pa.list_(pa.string())),
        }
    )
    members: dict[str, list[str]] = {}
    for a in ids:
        if a in campaign:
            members.setdefault(campaign[a], []).append(a)
    campaigns = [{"id": c, "accounts": m} for c, m in sorted(members.items())]
    write_detections(out, accounts, campaigns, report=False)
