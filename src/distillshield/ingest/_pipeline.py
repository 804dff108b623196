"""The ingest run: adapters → validation → dedup → redaction → signals → part files.

Data flow per batch (main thread): refused records go to the quarantine sink; candidate
rows are validated (vectorised), valid rows are deduplicated on request_id against OUT and
this run, and new rows are buffered. Every ``chunk_rows`` rows the buffer is handed to a
worker thread that redacts the text columns, computes request signals
(:func:`distillshield.signals.request_signals`), drops content under ``--no-content`` and
writes ``derived/signals/part-N`` then ``exchanges/part-N``. Reading the next batch and
writing earlier parts overlap (Arrow releases the GIL), which is what two cores buy.

Memory stays bounded: one buffered part plus :data:`WRITERS` parts being written, each at
most ``chunk_rows`` rows, plus 8 bytes per stored request id for dedup.

Crash safety: before writing part N the worker drops a marker ``.ingest-pending-N``;
signals are written before exchanges, and the marker is removed after both. A run that
finds a marker deletes signals part N if exchanges part N is missing (the rows were never
stored, so they will be ingested again) — no signals row ever lacks its exchange.
"""

from __future__ import annotations

import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.errors import DistillShieldError
from distillshield.ingest._accounts import AccountBook, ReleaseBook
from distillshield.ingest._batch import Batch, Rejected
from distillshield.ingest._dedup import SeenIds
from distillshield.ingest._mapping import convert_defaults
from distillshield.ingest._quarantine import QUARANTINE, QuarantineSink
from distillshield.ingest._report import IngestReport
from distillshield.ingest._rules import LONG_TEXT_COLUMNS
from distillshield.ingest._validate import validate
from distillshield.ingest.adapters import FORMATS
from distillshield.ingest.adapters._base import FactBatch, IngestInputError, ReadContext
from distillshield.ingest.redact import redact_chunked
from distillshield.schema import EXCHANGES, SIGNALS, TEMPLATE_FINGERPRINTS, conform, iter_batches, write_table

Progress = Callable[[int, int | None], None]
#: Parts processed at once. Two keep both cores busy while request signals (the costliest
#: step) run; memory is at most (WRITERS + 1) parts of ``chunk_rows`` rows.
WRITERS = 2
_PART = re.compile(r"^part-(\d+)\.parquet$")
_CONTENT = ("system_prompt", "prompt", "response")


def _part_numbers(folder: Path) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.iterdir() if (m := _PART.match(p.name))}


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One ingest per output directory: two writers would reuse part numbers."""
    path = out / ".ingest.lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, OSError):
                path.unlink(missing_ok=True)  # stale lock of a crashed run
                continue
            raise DistillShieldError(f"{out}: another ingest (pid {pid}) is writing to it") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _recover(out: Path) -> None:
    """Undo half-written parts of a crashed run (see the module docstring)."""
    for marker in out.glob(".ingest-pending-*"):
        n = int(marker.name.rsplit("-", 1)[1])
        ex = out / EXCHANGES.name / f"part-{n:05d}.parquet"
        sig = out / SIGNALS.name / f"part-{n:05d}.parquet"
        if not ex.exists():
            sig.unlink(missing_ok=True)
        marker.unlink()


def _signals(table: pa.Table, redactions: np.ndarray) -> pa.Table:
    from distillshield.signals import request_signals

    return request_signals(table, redactions=redactions)


def _fingerprints(table: pa.Table, signals: pa.Table, seen: set[str], lock: threading.Lock) -> pa.Table:
    """One row per template id of the batch: its count, and its MinHash signature if new.

    Only the first prompt of an id *in the whole run* is signed (every prompt with an id has
    the same skeleton); later batches record just the count, with a null signature.
    """
    from distillshield.signals.lsh import distinct_templates

    ids = pa.table({"template_id": signals.column("template_id"), "i": np.arange(table.num_rows)})
    ids = ids.filter(pc.is_valid(ids.column("template_id")))
    g = ids.group_by("template_id", use_threads=False).aggregate([("i", "min"), ("i", "count")])
    names = g.column("template_id").to_pylist()
    with lock:
        fresh = np.array([t not in seen for t in names], dtype=bool)
        seen.update(names)
    fp = distinct_templates([table.column("prompt").take(g.column("i_min").filter(pa.array(fresh)))])
    old = g.filter(pa.array(~fresh))
    old_rows = pa.table(
        {
            "template_id": old.column("template_id"),
            "minhash": pa.nulls(old.num_rows, fp.schema.field("minhash").type),
            "shingles": pa.nulls(old.num_rows, fp.schema.field("shingles").type),
            "count": old.column("i_count"),
        }
    )
    pos = pc.index_in(fp.column("template_id"), value_set=g.column("template_id").combine_chunks())
    fp = fp.set_column(
        fp.schema.get_field_index("count"), "count", g.column("i_count").combine_chunks().take(pos)
    )
    return pa.concat_tables([fp, old_rows.cast(fp.schema)])


class _PartWriter:
    """Buffers accepted rows and writes exchanges + signals parts on a worker thread."""

    def __init__(self, out: Path, *, next_part: int, chunk_rows: int, no_content: bool) -> None:
        self.out = out
        self.next_part = next_part
        self.chunk_rows = chunk_rows
        self.no_content = no_content
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="ingest-writer")
        self.pending: list[Future[None]] = []
        self.exchange_parts: list[str] = []
        self.signal_parts: list[str] = []
        self.redactions = 0
        self.lock = threading.Lock()
        self.seen_templates: set[str] = set()  # template ids already signed in this run

    def add(self, table: pa.Table) -> None:
        """Buffer rows; every full ``chunk_rows`` becomes a part (parts never exceed it)."""
        if not table.num_rows:
            return
        self.buffer.append(table)
        self.buffered += table.num_rows
        while self.buffered >= self.chunk_rows:
            whole = pa.concat_tables(self.buffer)
            self.buffer = [whole.slice(self.chunk_rows)] if whole.num_rows > self.chunk_rows else []
            self.buffered = whole.num_rows - self.chunk_rows
            self._submit(whole.slice(0, self.chunk_rows))

    def _submit(self, table: pa.Table | None = None) -> None:
        if table is None:
            if not self.buffer:
                return
            table = pa.concat_tables(self.buffer)
            self.buffer, self.buffered = [], 0
        part = self.next_part
        self.next_part += 1
        self._wait(WRITERS - 1)
        self.pending.append(self.pool.submit(self._write, table, part))

    def _wait(self, keep: int = 0) -> None:
        """Block until at most ``keep`` parts are in flight (re-raising a writer's error)."""
        while len(self.pending) > keep:
            self.pending.pop(0).result()

    def _write(self, table: pa.Table, part: int) -> None:
        # One chunk per column: RE2 patterns are compiled per kernel call, so redacting
        # a hundred small chunks would cost a hundred compilations of every pattern.
        table = table.combine_chunks()
        counts = np.zeros(table.num_rows, dtype=np.int64)
        for column in LONG_TEXT_COLUMNS:
            masked, n = redact_chunked(table.column(column))
            counts += n
            table = table.set_column(table.schema.get_field_index(column), column, masked)
        signals = _signals(table, counts)
        if self.no_content:
            # keep what template families need (signatures, not text) before the text goes
            fingerprints = _fingerprints(table, signals, self.seen_templates, self.lock)
            write_table(fingerprints, self.out, TEMPLATE_FINGERPRINTS, part=part)
            for column in _CONTENT:
                i = table.schema.get_field_index(column)
                table = table.set_column(i, column, pa.nulls(table.num_rows, pa.string()))
        marker = self.out / f".ingest-pending-{part}"
        marker.touch()
        sig_path = write_table(signals, self.out, SIGNALS, part=part)
        ex_path = write_table(table, self.out, EXCHANGES, part=part)
        marker.unlink()
        with self.lock:
            self.signal_parts.append(str(sig_path))
            self.exchange_parts.append(str(ex_path))
            self.redactions += int(counts.sum())

    def close(self) -> None:
        try:
            self._submit()
            self._wait()
        finally:
            self.pool.shutdown(wait=True)


def ingest(
    format: str,
    inputs: Sequence[Path],
    out: Path,
    *,
    no_content: bool = False,
    chunk_rows: int = 100_000,
    progress: Progress | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> IngestReport:
    """Turn provider logs in ``format`` into a canonical dataset in ``out`` (appending).

    ``defaults`` gives values for canonical columns a source lacks (``{"account_id": …,
    "ip": …, "ts": …}`` for Batch API files). Raises
    :class:`~distillshield.errors.DistillShieldError` with a one-line reason for an unknown
    format or an unreadable input; bad *records* never raise, they are quarantined.
    """
    adapter = FORMATS.get(format)
    if adapter is None:
        raise DistillShieldError(f"unknown format {format!r} (one of {', '.join(sorted(FORMATS))})")
    if chunk_rows < 1:
        raise DistillShieldError(f"--chunk-rows must be positive, got {chunk_rows}")
    if not inputs:
        raise DistillShieldError("no input given")
    try:
        default_values = convert_defaults(defaults or {})
    except ValueError as exc:
        raise DistillShieldError(str(exc)) from None
    out = Path(out)
    sources = adapter.plan([Path(p) for p in inputs])
    for single in (EXCHANGES, SIGNALS, QUARANTINE):
        f = out / f"{single.name}.parquet"
        if f.exists():
            raise DistillShieldError(
                f"{f}: ingest appends part files under {out / single.name}/; move this file to "
                f"{out / single.name}/part-00000.parquet first"
            )
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = IngestReport(format=format, out=str(out), no_content=no_content, chunk_rows=chunk_rows)
    ctx = ReadContext(defaults=default_values, chunk_rows=chunk_rows)
    with _lock(out):
        _recover(out)
        seen = _load_seen(out)
        next_part = 1 + max(_part_numbers(out / EXCHANGES.name) | _part_numbers(out / SIGNALS.name) | {-1})
        writer = _PartWriter(out, next_part=next_part, chunk_rows=chunk_rows, no_content=no_content)
        sink = QuarantineSink(
            out,
            no_content=no_content,
            flush_rows=chunk_rows,
            next_part=1 + max(_part_numbers(out / QUARANTINE.name) | {-1}),
        )
        accounts = AccountBook(out)
        releases = ReleaseBook(out)
        known = [s.rows for s in sources if s.rows is not None]
        total = sum(known) if len(known) == len(sources) else None
        done = 0
        group: list[Batch] = []
        grouped = 0
        try:
            for source in sources:
                report.source(
                    source.label, "exchanges" if source.kind not in ("accounts", "releases") else source.kind
                )
                for batch in _reading(source.label, adapter.read(source, ctx)):
                    if isinstance(batch, FactBatch):
                        _facts(batch, report, sink, accounts, releases)
                    else:
                        _receive(batch, report, sink)
                        group.append(batch)
                        grouped += batch.table.num_rows
                        # Parquet batches (no raw text held) are grouped up to chunk_rows;
                        # JSON batches carry raw records and go alone, bounding memory.
                        if grouped >= chunk_rows or batch.raws is not None:
                            _exchanges(group, report, sink, writer, accounts, seen)
                            group, grouped = [], 0
                    done += batch.read
                    if progress is not None:
                        progress(done, total)
            if group:
                _exchanges(group, report, sink, writer, accounts, seen)
        finally:
            writer.close()
            sink.flush()
        report.accounts_sourced, report.accounts_inferred, report.accounts_total = accounts.write()
        releases.write()
        report.exchange_parts = writer.exchange_parts
        report.signal_parts = writer.signal_parts
        report.quarantine_parts = sink.parts
        report.quarantine_rows_written = sink.rows_written
        report.redactions = writer.redactions + sink.redactions
        report.seconds = time.perf_counter() - started
        report.write(out / "ingest_report.json")
    return report


def _reading(label: str, batches: Iterator[Batch | FactBatch]) -> Iterator[Batch | FactBatch]:
    """The adapter's batches; an I/O failure *while reading* names the source (a corrupt
    gzip stream, a file removed mid-run), while errors writing OUT keep their own message."""
    try:
        yield from batches
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestInputError(f"{label}: unreadable: {exc}") from exc


def _load_seen(out: Path) -> SeenIds:
    seen = SeenIds()
    for t in iter_batches(out, EXCHANGES, columns=["request_id"], optional=True, batch_size=1 << 20):
        seen.add(seen.hash(t.column("request_id")))
    return seen


def _receive(batch: Batch, report: IngestReport, sink: QuarantineSink) -> None:
    """Count what a batch read and quarantine the records its adapter refused."""
    rep = report.source(batch.source)
    rep.read += batch.read
    rep.skipped += batch.skipped
    for r in batch.rejected:
        rep.quarantined[r.reason.value] += 1
    sink.add(batch.rejected)


def _exchanges(
    group: list[Batch],
    report: IngestReport,
    sink: QuarantineSink,
    writer: _PartWriter,
    accounts: AccountBook,
    seen: SeenIds,
) -> None:
    """Validate, quarantine, dedup and buffer the candidate rows of one or more batches.

    Several small batches (a dataset of many small Parquet parts) are processed as one
    table, so per-call overheads (validation kernels, id hashing, dedup lookups) are paid
    once per ``chunk_rows`` rows rather than once per file; counts go back to each source.
    """
    sizes = np.array([b.table.num_rows for b in group], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    table = group[0].table if len(group) == 1 else pa.concat_tables([b.table for b in group])
    pre = [(int(s) + i, r, f, d) for b, s in zip(group, starts, strict=True) for i, r, f, d in b.pre_errors]
    ok, errors = validate(table, pre)
    owner = np.repeat(np.arange(len(group)), sizes)
    if errors:
        rows = [e[0] for e in errors]
        ids = table.column("request_id").take(pa.array(rows, pa.int64())).to_pylist()
        by_batch: dict[int, list[tuple[int, tuple[int, Any, str, str]]]] = {}
        for k, e in enumerate(errors):
            by_batch.setdefault(int(owner[e[0]]), []).append((k, e))
        rejected: list[Rejected] = []
        for j, mine in by_batch.items():  # raw text is rendered per batch, in one go for its rows
            b = group[j]
            local = [e[0] - int(starts[j]) for _, e in mine]
            rep = report.source(b.source)
            for (k, (_, reason, field, detail)), li, (raw, cut, rhash) in zip(
                mine, local, b.raws_of(local), strict=True
            ):
                file, line, row, location = b.locate(li)
                rep.quarantined[reason.value] += 1
                rejected.append(
                    Rejected(file, line, row, location, reason, field, detail, raw, cut, rhash, ids[k])
                )
        sink.add(rejected)
    good = conform(table.filter(pa.array(ok)), EXCHANGES) if errors else conform(table, EXCHANGES)
    # Valid duplicates still inform accounts, so a re-run heals an interrupted one.
    accounts.observe(good)
    for b, s in zip(group, starts, strict=True):
        for i, facts in b.accounts.items():
            if ok[int(s) + i]:
                accounts.add_sourced(facts)
    new = seen.keep_new(good.column("request_id"))
    good_owner = owner[ok]
    accepted = np.bincount(good_owner[new], minlength=len(group))
    valid = np.bincount(good_owner, minlength=len(group))
    for j, b in enumerate(group):
        rep = report.source(b.source)
        rep.accepted += int(accepted[j])
        rep.duplicates += int(valid[j] - accepted[j])
    writer.add(good if bool(new.all()) else good.filter(pa.array(new)))


def _facts(
    batch: FactBatch, report: IngestReport, sink: QuarantineSink, accounts: AccountBook, releases: ReleaseBook
) -> None:
    rep = report.source(batch.source, batch.table)
    rep.read += batch.read
    for r in batch.rejected:
        rep.quarantined[r.reason.value] += 1
    sink.add(batch.rejected)
    for facts in batch.facts:
        # Adapters validated these rows already (refusals are in batch.rejected).
        fresh = accounts.add_sourced(facts) if batch.table == "accounts" else releases.add(facts)
        if fresh:
            rep.accepted += 1
        else:
            rep.duplicates += 1


__all__ = ["ingest"]
