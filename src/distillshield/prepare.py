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

Where the work runs (``backend``, e.g. ``prepare --backend spark``): the relational parts go
through the backend — account enrichment's per-account aggregation and the template
families' band join and connected components. The row-wise parts run in this process over
Arrow batches streamed from the dataset, whatever the backend (:data:`DRIVER_WORK`): signal
extraction, per-exchange IP/client lookups and template MinHash signatures. They are linear
in the exchanges and bounded in memory by ``chunk_rows``; running them inside Spark
(``mapInArrow`` over the same batch functions) is the next step for datasets one machine
cannot stream through in time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distillshield.backends import Backend, get_backend
from distillshield.enrich import InfraLists
from distillshield.errors import DistillShieldError
from distillshield.schema import (
    EXCHANGE_ENRICHMENT,
    EXCHANGES,
    SIGNALS,
    TEMPLATE_FINGERPRINTS,
    TEMPLATES,
    TableSpec,
    iter_batches,
    rechunk,
    table_paths,
    write_table,
)

#: Per step, the row-wise work that runs in this process (on Spark: the driver), not in the backend.
DRIVER_WORK: dict[str, str] = {
    "signals": "request signals over Arrow batches (all of the step)",
    "enrichment": "per-exchange IP and client lookups over Arrow batches (account facts run in the backend)",
    "templates": "template skeletons and MinHash signatures (band join and families run in the backend)",
}

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
    batches = iter_batches(data, EXCHANGES, columns=_SIGNAL_INPUTS, batch_size=opts["chunk_rows"])
    for part, batch in enumerate(rechunk(batches, opts["chunk_rows"])):
        write_table(request_signals(batch), data, SIGNALS, part=part)
        rows += batch.num_rows
        if opts.get("progress"):
            opts["progress"](rows, None)
    return rows


def _enrichment(data: Path, opts: dict[str, Any]) -> int:
    from distillshield.enrich import enrich_dataset

    counts = enrich_dataset(
        data, lists=opts.get("lists"), chunk_rows=opts["chunk_rows"], backend=opts.get("backend")
    )
    return int(counts.get("exchanges", 0))


def _has_content(data: Path) -> bool:
    for batch in iter_batches(data, EXCHANGES, columns=["prompt"]):
        if batch.column("prompt").null_count < batch.num_rows:
            return True
    return False


def _backend(opts: dict[str, Any]) -> Backend:
    backend: Backend | None = opts.get("backend")
    return backend if backend is not None else get_backend()


def _fingerprints(data: Path, opts: dict[str, Any]) -> pa.Table | None:
    """Distinct templates with signatures: from the text if kept, else from ingest's fingerprints."""
    from distillshield.signals.lsh import distinct_templates

    if _has_content(data):
        rows = opts["chunk_rows"]
        batches = rechunk(iter_batches(data, EXCHANGES, columns=["prompt"], batch_size=rows), rows)
        prompts = (b.column("prompt") for b in batches)
        return distinct_templates(prompts)
    parts = table_paths(data, TEMPLATE_FINGERPRINTS, optional=True)
    if not parts:
        return None
    backend = _backend(opts)
    backend.register("fp", data / TEMPLATE_FINGERPRINTS.name)
    return backend.query(
        # later batches of a run (and later runs) record only counts: take any signature
        "SELECT template_id, any_value(minhash) AS minhash, any_value(shingles) AS shingles, "
        "sum(count)::BIGINT AS count FROM fp GROUP BY template_id ORDER BY template_id"
    )


def _templates(data: Path, opts: dict[str, Any]) -> int:
    """Near-duplicate template families (LSH), written to derived/templates and into signals."""
    from distillshield.signals.lsh import family_of, template_families

    distinct = _fingerprints(data, opts)
    if distinct is None:
        raise DistillShieldError(
            f"{data}: no prompt text and no template fingerprints; ingest with --no-content keeps them"
        )
    backend = _backend(opts)
    backend.register("tpl", distinct)
    families = template_families(backend, "tpl")
    counts = distinct.select(["template_id", "count"])
    out = families.join(counts, "template_id", join_type="left outer").select(
        ["template_id", "template_family", "count"]
    )
    _clear(data, TEMPLATES)
    write_table(out, data, TEMPLATES)
    # fill template_family in every signals part, in place (atomic per part)
    for path in table_paths(data, SIGNALS):
        sig = pq.read_table(path)
        fam = family_of(sig.column("template_id"), families)
        sig = sig.set_column(sig.schema.get_field_index("template_family"), "template_family", fam)
        write_table(sig, data, SIGNALS, part=int(path.stem.rsplit("-", 1)[1]))  # atomic replace
    return int(out.num_rows)


STEPS: tuple[Step, ...] = (
    Step("signals", SIGNALS, _signals, "request-level signals from content"),
    Step("enrichment", EXCHANGE_ENRICHMENT, _enrichment, "IP, client and account enrichment"),
    Step("templates", TEMPLATES, _templates, "near-duplicate template families (LSH)"),
)


def prepare(
    data_dir: str | Path,
    *,
    steps: Sequence[str] | None = None,
    force: bool = False,
    lists: InfraLists | None = None,
    chunk_rows: int = 250_000,
    progress: Callable[[int, int | None], None] | None = None,
    backend: Backend | None = None,
) -> list[StepResult]:
    """Run the preparation steps on ``data_dir``; returns what each step did.

    ``backend`` runs the relational parts (default: an in-process DuckDB); the row-wise
    parts run here whatever it is (:data:`DRIVER_WORK`).
    """
    data = Path(data_dir)
    table_paths(data, EXCHANGES)  # fails early, naming what is missing
    known = {s.name: s for s in STEPS}
    wanted = list(steps) if steps else [s.name for s in STEPS]
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise DistillShieldError(f"unknown step(s) {unknown}; known: {', '.join(known)}")
    opts: dict[str, Any] = {
        "lists": lists,
        "chunk_rows": chunk_rows,
        "progress": progress,
        "backend": backend,
    }
    results = []
    for name in wanted:
        if not force and table_paths(data, known[name].output, optional=True):
            results.append(StepResult(name, 0, 0.0, skipped="already present (use --force to recompute)"))
            continue
        t0 = time.perf_counter()
        rows = known[name].run(data, opts)
        results.append(StepResult(name, rows, time.perf_counter() - t0))
    return results
