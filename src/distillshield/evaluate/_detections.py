"""Reading and validating a detector's output directory (the DET contract, docs/evaluation.md).

A detector that writes a malformed file should fail loudly here, naming the file and the first
offending row, rather than be scored on garbage: a NaN score or a duplicated account would
otherwise shift precision or leakage silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillshield.errors import DetectionsError, SchemaError
from distillshield.schema import DETECTION_ACCOUNTS, conform, table_paths

CAMPAIGNS_FILE = "campaigns.json"


@dataclass(frozen=True)
class DetectedCampaign:
    """One object of ``campaigns.json``: the detector's cluster and, optionally, its operator."""

    id: str
    accounts: tuple[str, ...]
    actor: str | None


@dataclass(frozen=True)
class Detections:
    """A validated detector output: one conformed row per account, plus its campaign objects."""

    accounts: pa.Table
    campaigns: tuple[DetectedCampaign, ...]


def _first_true(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Row index of the first true value of ``mask`` (nulls count as false), or None."""
    index = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if index is None or index < 0 else int(index)


def _account_at(table: pa.Table, row: int) -> str:
    if "account_id" not in table.column_names:
        return "?"
    return repr(table.column("account_id")[row].as_py())


def _check_part(path: Path) -> pa.Table:
    """Read one Parquet file of ``accounts`` and check it row by row (vectorised)."""
    try:
        raw = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DetectionsError(f"{path}: not a readable Parquet file: {exc}") from exc
    for name in DETECTION_ACCOUNTS.required:
        if name not in raw.column_names:
            raise DetectionsError(
                f"{path}: required column {name!r} is missing (has: {', '.join(raw.column_names)})"
            )
        row = _first_true(pc.is_null(raw.column(name)))
        if row is not None:
            what = f"{name} is null"
            if name == "score":
                what += " (every row needs a score in [0, 1], flagged or not)"
            raise DetectionsError(f"{path}: row {row} (account {_account_at(raw, row)}): {what}")
    try:
        table = conform(raw, DETECTION_ACCOUNTS, str(path))
    except SchemaError as exc:
        raise DetectionsError(str(exc)) from exc

    score = table.column("score")
    row = _first_true(pc.is_nan(score))
    if row is not None:
        raise DetectionsError(f"{path}: row {row} (account {_account_at(table, row)}): score is NaN")
    row = _first_true(pc.or_(pc.less(score, 0.0), pc.greater(score, 1.0)))
    if row is not None:
        raise DetectionsError(
            f"{path}: row {row} (account {_account_at(table, row)}): score {score[row].as_py()} "
            "is outside [0, 1]"
        )
    # A flag time on an account the detector did not flag is contradictory: was it flagged or not?
    unflagged_with_time = pc.and_(pc.invert(table.column("flagged")), pc.is_valid(table["first_flagged_at"]))
    row = _first_true(unflagged_with_time)
    if row is not None:
        raise DetectionsError(
            f"{path}: row {row} (account {_account_at(table, row)}): first_flagged_at is set "
            "but flagged is false"
        )
    return table


def _check_unique(table: pa.Table, where: Path) -> None:
    ids = table.column("account_id")
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        row = _first_true(pc.is_in(ids, value_set=dup.field("values")))
        assert row is not None
        account = ids[row].as_py()
        n = int(pc.sum(pc.equal(ids, account)).as_py())
        raise DetectionsError(
            f"{where}: account {account!r} appears {n} times (first at row {row}); "
            "each account must have exactly one row"
        )


def _campaign_object(item: Any, index: int, path: Path) -> DetectedCampaign:
    where = f"{path}: campaign [{index}]"
    if not isinstance(item, dict):
        raise DetectionsError(f"{where}: expected an object, got {type(item).__name__}")
    cid = item.get("id")
    if not isinstance(cid, str) or not cid:
        raise DetectionsError(f"{where}: 'id' must be a non-empty string, got {cid!r}")
    accounts = item.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise DetectionsError(f"{where} (id {cid!r}): 'accounts' must be a list of account id strings")
    actor = item.get("actor")
    if actor is not None and not isinstance(actor, str):
        raise DetectionsError(f"{where} (id {cid!r}): 'actor' must be a string or null, got {actor!r}")
    return DetectedCampaign(id=cid, accounts=tuple(accounts), actor=actor)


def _read_campaigns(path: Path) -> tuple[DetectedCampaign, ...]:
    if not path.is_file():
        return ()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DetectionsError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DetectionsError(f"{path}: expected a JSON list of campaign objects, got {type(data).__name__}")
    campaigns = tuple(_campaign_object(item, i, path) for i, item in enumerate(data))
    seen: set[str] = set()
    for i, campaign in enumerate(campaigns):
        if campaign.id in seen:
            raise DetectionsError(f"{path}: campaign [{i}]: id {campaign.id!r} is used twice")
        seen.add(campaign.id)
    return campaigns


def _check_consistent(accounts: pa.Table, campaigns: tuple[DetectedCampaign, ...], path: Path) -> None:
    """campaigns.json may not contradict the per-account campaign_id, which is what gets scored."""
    if not campaigns:
        return
    assigned = {
        a: c
        for a, c in zip(
            accounts.column("account_id").to_pylist(), accounts.column("campaign_id").to_pylist(), strict=True
        )
        if c is not None
    }
    for campaign in campaigns:
        for account in campaign.accounts:
            other = assigned.get(account)
            if other is not None and other != campaign.id:
                raise DetectionsError(
                    f"{path}: campaign {campaign.id!r} lists account {account!r}, but accounts.parquet "
                    f"puts it in campaign {other!r}"
                )


def load_detections(det_dir: str | Path) -> Detections:
    """Read ``DET/accounts.parquet`` (or ``DET/accounts/*.parquet``) and ``DET/campaigns.json``.

    Raises :class:`~distillshield.errors.DetectionsError` naming the file and the first
    offending row or account when the output breaks the contract.
    """
    root = Path(det_dir)
    if not root.is_dir():
        raise DetectionsError(f"{root}: detections directory not found")
    try:
        paths = table_paths(root, DETECTION_ACCOUNTS)
    except SchemaError as exc:
        raise DetectionsError(
            f"{root}: no accounts.parquet (see docs/evaluation.md, detector output)"
        ) from exc
    parts = [_check_part(p) for p in paths]
    accounts = pa.concat_tables(parts) if parts else DETECTION_ACCOUNTS.schema.empty_table()
    _check_unique(accounts, paths[0] if len(paths) == 1 else root / "accounts")
    campaigns = _read_campaigns(root / CAMPAIGNS_FILE)
    _check_consistent(accounts, campaigns, root / CAMPAIGNS_FILE)
    return Detections(accounts=accounts, campaigns=campaigns)
