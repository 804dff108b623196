"""Bring a canonical dataset up to what detection reads, as a chain of named steps.

Ingest computes request signals while content is at hand; a dataset that arrived already in
the canonical schema (the simulator's, or a provider's own export) gets them here. Each step
writes one derived table, can be run alone (``--steps``), and is skipped when its output
exists unless forced — so a long run can be inspected and resumed step by step, the way
splink's pipelines are.

    steps:  signals     derived/signals      request-level signals from content (docs/signals.md)
            enrichment  derived/enrichment   IP and client facts per exchange (docs/enrichment.md)
                        derived/accounts     account facts against observed traffic
            templates   derived/templates    near-duplicate template families (LSH), written
                                             back into derived/signals.template_family
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillshield.enrich import InfraLists
from distillshield.errors import DistillShieldError
from distillshield.schema import (
    EXCHANGE_ENRICHMENT,
    EXCHANGES,
    SIGNALS,
    TableSpec,
    iter_batches,
    table_paths,
    write_table,
)

#: Exchange columns the signal functions read.
_SIGNAL_INPUTS = ["request_id", "prompt", "response", "system_prompt", "tools", "n_messages"]


@dataclass(frozen=True)
class StepResult:
    """What one step did: rows written, seconds taken, or why it was skipped."""

    name: str
    rows: int
    seconds: float
    skipped: str | None = None


@dataclass(frozen=True)
class Step:
    """A named unit of preparation and the table it produces."""

    name: str
    output: TableSpec
    run: Callable[[Path, dict[str, Any]], int]
    doc: str


def _clear(root: Path, spec: TableSpec) -> None:
    for p in table_paths(root, spec, optional=True):
        p.unlink()
    d = root / spec.name
    if d.is_dir() and not any(d.iterdir()):
        shutil.rmtree(d)


def _signals(data: Path, opts: dict[str, Any]) -> int:
    from distillshield.signals import request_signals

    _clear(data, SIGNALS)
    rows = 0
    for part, batch in enumerate(
        iter_batches(data, EXCHANGES, columns=_SIGNAL_INPUTS, batch_size=opts["chunk_rows"])
    ):
        write_table(request_signals(batch), data, SIGNALS, part=part)
        rows += batch.num_rows
        if opts.get("progress"):
            opts["progress"](rows, None)
    return rows


def _enrichment(data: Path, opts: dict[str, Any]) -> int:
    from distillshield.enrich import enrich_dataset

    counts = enrich_dataset(data, lists=opts.get("lists"), chunk_rows=opts["chunk_rows"])
    return int(counts.get("exchanges", 0))


STEPS: tuple[Step, ...] = (
    Step("signals", SIGNALS, _signals, "request-level signals from content"),
    Step("enrichment", EXCHANGE_ENRICHMENT, _enrichment, "IP, client and account enrichment"),
)


def prepare(
    data_dir: str | Path,
    *,
    steps: Sequence[str] | None = None,
    force: bool = False,
    lists: InfraLists | None = None,
    chunk_rows: int = 250_000,
    progress: Callable[[int, int | None], None] | None = None,
) -> list[StepResult]:
    """Run the preparation steps on ``data_dir``; returns what each step did."""
    data = Path(data_dir)
    table_paths(data, EXCHANGES)  # fails early, naming what is missing
    known = {s.name: s for s in STEPS}
    wanted = list(steps) if steps else [s.name for s in STEPS]
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise DistillShieldError(f"unknown step(s) {unknown}; known: {', '.join(known)}")
    opts: dict[str, Any] = {"lists": lists, "chunk_rows": chunk_rows, "progress": progress}
    results = []
    for name in wanted:
        if not force and table_paths(data, known[name].output, optional=True):
            results.append(StepResult(name, 0, 0.0, skipped="already present (use --force to recompute)"))
            continue
        t0 = time.perf_counter()
        rows = known[name].run(data, opts)
        results.append(StepResult(name, rows, time.perf_counter() - t0))
    return results
