"""The ingest report: per-source counts that reconcile exactly.

For every source (a file, or a Batch API input+output pair):

    read = accepted + duplicates + quarantined

``read`` counts input records (JSONL lines that are not blank, CSV data rows, Parquet rows,
GenAI spans); ``accepted`` rows were written; ``duplicates`` were valid but their key
(request_id; account_id for account rows) was already in OUT or earlier in this run;
``quarantined`` went to OUT/quarantine with a reason. ``skipped`` counts records that are
not exchanges at all (OpenTelemetry spans without a GenAI operation) and is outside
``read``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SourceReport:
    """Counts for one input source and the table it feeds."""

    source: str
    table: str = "exchanges"
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    skipped: int = 0

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.duplicates + self.n_quarantined

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "table": self.table,
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.n_quarantined,
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "skipped": self.skipped,
            "reconciles": self.reconciles,
        }


@dataclass
class IngestReport:
    """What one ``ingest`` run did (also written to ``OUT/ingest_report.json``)."""

    format: str
    out: str
    no_content: bool
    chunk_rows: int
    sources: list[SourceReport] = field(default_factory=list)
    exchange_parts: list[str] = field(default_factory=list)
    signal_parts: list[str] = field(default_factory=list)
    quarantine_parts: list[str] = field(default_factory=list)
    quarantine_rows_written: int = 0
    accounts_sourced: int = 0
    accounts_inferred: int = 0
    accounts_total: int = 0
    redactions: int = 0
    seconds: float = 0.0
    _index: dict[tuple[str, str], SourceReport] = field(default_factory=dict, repr=False)

    def source(self, name: str, table: str = "exchanges") -> SourceReport:
        """The report line for ``name`` (created on first use, in input order)."""
        key = (name, table)
        rep = self._index.get(key)
        if rep is None:
            rep = self._index[key] = SourceReport(name, table)
            self.sources.append(rep)
        return rep

    def _total(self, attr: str, table: str = "exchanges") -> int:
        return sum(int(getattr(s, attr)) for s in self.sources if s.table == table)

    @property
    def read(self) -> int:
        return self._total("read")

    @property
    def accepted(self) -> int:
        return self._total("accepted")

    @property
    def duplicates(self) -> int:
        return self._total("duplicates")

    @property
    def quarantined(self) -> int:
        return self._total("n_quarantined")

    @property
    def skipped(self) -> int:
        return self._total("skipped")

    @property
    def quarantined_by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in self.sources:
            total.update(s.quarantined)
        return total

    @property
    def reconciles(self) -> bool:
        """Every source's equation holds (so the totals' does too)."""
        return all(s.reconciles for s in self.sources)

    @property
    def rate(self) -> float:
        """Exchanges read per second of wall time."""
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "out": self.out,
            "no_content": self.no_content,
            "chunk_rows": self.chunk_rows,
            "equation": "read = accepted + duplicates + quarantined (per source)",
            "totals": {
                "read": self.read,
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "quarantined": self.quarantined,
                "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
                "skipped": self.skipped,
                "reconciles": self.reconciles,
            },
            "sources": [s.to_dict() for s in self.sources],
            "parts": {
                "exchanges": self.exchange_parts,
                "signals": self.signal_parts,
                "quarantine": self.quarantine_parts,
            },
            "quarantine_rows_written": self.quarantine_rows_written,
            "accounts": {
                "sourced": self.accounts_sourced,
                "inferred": self.accounts_inferred,
                "total": self.accounts_total,
            },
            "redactions": self.redactions,
            "seconds": round(self.seconds, 3),
            "exchanges_per_second": round(self.rate, 1),
        }

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
