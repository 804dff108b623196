"""The accounts (and releases) tables of the output dataset.

An output directory must be a complete canonical dataset, so every account that appears in
``exchanges`` gets an ``accounts`` row:

- *sourced* rows come from the input (a canonical dataset's ``accounts`` table, or the
  ``context.account`` object of an OpenAI-style log line) and are validated like exchanges;
- *inferred* rows are made for accounts the input says nothing about: ``created_at`` = the
  first request seen (across all runs into OUT), ``pathway`` = ``self_serve``,
  ``verified`` = false, every other fact null. They carry ``inferred = true`` in an extra
  column (readers ignore extra columns), so detection can tell a real sign-up date and
  pathway from a placeholder.

A sourced row replaces an inferred one; a later sourced row replaces an earlier one.
``OUT/accounts.parquet`` is rewritten whole (atomically) at the end of each run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distillshield.ingest._convert import ConvertError, RecordError, to_bool, to_str, to_ts
from distillshield.ingest._rules import MAX_SHORT_BYTES, TS_MAX, TS_MIN, Reason
from distillshield.ingest._validate import valid_ip
from distillshield.schema import ACCOUNTS, PATHWAYS, RELEASES, conform, table_paths

INFERRED_PATHWAY = "self_serve"
_REQUIRED = ACCOUNTS.required
_PATHWAYS = frozenset(PATHWAYS)

_ACCOUNT_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "account_id": to_str,
    "org_id": to_str,
    "created_at": to_ts,
    "pathway": to_str,
    "email_domain": to_str,
    "email_hash": to_str,
    "declared_country": to_str,
    "signup_ip": to_str,
    "payment_fingerprint": to_str,
    "verified": to_bool,
}


def account_facts(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Validate one account record into canonical values, or raise :class:`RecordError`."""
    out: dict[str, Any] = {}
    for name, conv in _ACCOUNT_CONVERTERS.items():
        v = raw.get(name)
        if v is None:
            out[name] = None
            continue
        try:
            out[name] = conv(v)
        except ConvertError as exc:
            raise RecordError(exc.reason, prefix + name, exc.detail) from None
        if isinstance(out[name], str) and len(out[name].encode()) > MAX_SHORT_BYTES:
            raise RecordError(Reason.FIELD_TOO_LARGE, prefix + name, f"over {MAX_SHORT_BYTES} bytes")
    for name in _REQUIRED:
        if out[name] is None:
            raise RecordError(Reason.MISSING_REQUIRED, prefix + name, f"{name} is required for an account")
    if not TS_MIN <= out["created_at"] <= TS_MAX:
        raise RecordError(Reason.BAD_TIMESTAMP, prefix + "created_at", f"{out['created_at']} is implausible")
    if out["pathway"] not in _PATHWAYS:
        raise RecordError(
            Reason.UNKNOWN_ENUM, prefix + "pathway", f"{out['pathway']!r} is not one of {', '.join(PATHWAYS)}"
        )
    if out["signup_ip"] is not None and not valid_ip(out["signup_ip"]):
        raise RecordError(
            Reason.INVALID_IP, prefix + "signup_ip", f"{out['signup_ip']!r} is not an IP address"
        )
    return out


def _atomic_write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


class AccountBook:
    """Accounts seen in this run, merged with OUT's at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.first_seen: dict[str, datetime] = {}
        self.org: dict[str, str] = {}
        self.sourced: dict[str, dict[str, Any]] = {}
        self.existing: dict[str, dict[str, Any]] = {}
        for path in table_paths(out, ACCOUNTS, optional=True):
            t = pq.read_table(path)
            inferred = t.column("inferred").to_pylist() if "inferred" in t.column_names else [False] * len(t)
            for row, inf in zip(conform(t, ACCOUNTS, str(path)).to_pylist(), inferred, strict=True):
                row["inferred"] = bool(inf)
                self.existing[row["account_id"]] = row

    def observe(self, exchanges: pa.Table) -> None:
        """Note first-seen time and org of each account in valid exchange rows."""
        if not exchanges.num_rows:
            return
        g = exchanges.group_by("account_id").aggregate([("ts", "min"), ("org_id", "max")])
        for acct, ts, org in zip(
            g.column("account_id").to_pylist(),
            g.column("ts_min").to_pylist(),
            g.column("org_id_max").to_pylist(),
            strict=True,
        ):
            prev = self.first_seen.get(acct)
            if prev is None or ts < prev:
                self.first_seen[acct] = ts
            if org is not None and acct not in self.org:
                self.org[acct] = org

    def add_sourced(self, facts: dict[str, Any]) -> bool:
        """Record sourced facts; False when identical to what OUT or this run already has."""
        acct = facts["account_id"]
        known = self.sourced.get(acct)
        if known is None:
            ex = self.existing.get(acct)
            if ex is not None and not ex["inferred"]:
                known = {k: v for k, v in ex.items() if k != "inferred"}
        self.sourced[acct] = facts
        return known != facts

    def write(self) -> tuple[int, int, int]:
        """Write ``OUT/accounts.parquet``; returns (sourced, inferred, total) row counts."""
        rows: dict[str, dict[str, Any]] = {}
        for acct, ex in self.existing.items():
            rows[acct] = dict(ex)
        for acct, facts in self.sourced.items():
            rows[acct] = {**facts, "inferred": False}
        for acct, ts in self.first_seen.items():
            row = rows.get(acct)
            if row is None:
                rows[acct] = {
                    **dict.fromkeys(ACCOUNTS.schema.names),
                    "account_id": acct,
                    "org_id": self.org.get(acct),
                    "created_at": ts,
                    "pathway": INFERRED_PATHWAY,
                    "verified": False,
                    "inferred": True,
                }
            elif row["inferred"]:
                if ts < row["created_at"]:
                    row["created_at"] = ts
                if row["org_id"] is None:
                    row["org_id"] = self.org.get(acct)
        ordered = [rows[k] for k in sorted(rows)]
        if not ordered:
            return 0, 0, 0
        table = conform(pa.Table.from_pylist(ordered), ACCOUNTS)
        inferred = [bool(r["inferred"]) for r in ordered]
        table = table.append_column(pa.field("inferred", pa.bool_(), nullable=False), pa.array(inferred))
        _atomic_write(table, self.out / "accounts.parquet")
        n_inf = sum(inferred)
        return len(ordered) - n_inf, n_inf, len(ordered)


class ReleaseBook:
    """Model release calendar rows carried over from canonical datasets (first date wins)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[str, datetime] = {}
        for path in table_paths(out, RELEASES, optional=True):
            for r in conform(pq.read_table(path), RELEASES, str(path)).to_pylist():
                self.rows[r["model"]] = r["released_at"]
        self.changed = False

    def add(self, facts: dict[str, Any]) -> bool:
        """Add one validated release; False if the model is already known (first date wins)."""
        model, at = facts["model"], facts["released_at"]
        if model in self.rows:
            return False
        self.rows[model] = at
        self.changed = True
        return True

    def write(self) -> None:
        if not self.changed:
            return
        models = sorted(self.rows)
        table = pa.table({"model": models, "released_at": [self.rows[m] for m in models]})
        _atomic_write(conform(table, RELEASES), self.out / "releases.parquet")
