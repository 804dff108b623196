"""Writing the detection contract: ``accounts.parquet``, ``campaigns.json``, ``report.html``.

The layout is the one :mod:`distillshield.evaluate` reads (docs/evaluation.md), so every
detector in this package — scan, replay, the baseline — is scored the same way. Files are
written atomically (temporary file, then rename): a crash never leaves a half-written
verdict that a downstream consumer (the gateway, an analyst) would read as complete.
``scan.json`` records the run: window, step timings and row counts, summary figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from distillshield.schema import DETECTION_ACCOUNTS, write_table

__all__ = ["write_detections"]


def _write_json(path: Path, body: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


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
