"""The gateway's exchange log: every exchange, in the canonical schema, with no acknowledged loss.

The proxy calls :meth:`ExchangeLog.append` (or :meth:`ExchangeLog.append_sync`) once per
exchange, just before completing the response; a record is *acknowledged* when that call
returns. From then on it survives a crash of the gateway process, and ends up exactly once
in the sink: Parquet parts under ``OUT/exchanges/`` that ``distillshield.schema.read_table``
reads as the ``exchanges`` table (:class:`ParquetSink`), or entries of a Redis stream
(:class:`RedisStreamSink`).

How
---
1. **Write-ahead log.** ``append`` serialises the record as one JSON line whose last
   member ``"_crc"`` is the CRC32 of the rest, and writes it with a single ``os.write`` to
   the active segment ``WAL/seg-<seq>.wal``, opened ``O_APPEND``, under a lock. Records
   are never rewritten, so after a crash only the tail can be torn; a line that is
   incomplete or fails its checksum is dropped on recovery and counted
   (:attr:`LogStats.torn`). A torn line was never acknowledged: ``append`` returns only
   after ``os.write`` wrote all of it (a short or failed write also closes the segment, so
   later records never follow torn bytes).
2. **Segments and the flusher.** A segment closes after ``flush_rows`` records or
   ``flush_interval_s`` seconds (injected ``clock``). A background thread converts each
   closed segment, in order, into one sink batch and only then deletes it (parsing it with
   Arrow's JSON reader, which releases the GIL, so the event loop is barely disturbed).
   The sink names its output after the segment (``part-<seq>-<node>.parquet``; Redis:
   per-chunk delivery markers written in the same ``MULTI/EXEC`` as the ``XADD``\\s), so
   converting a segment again - after a crash between writing the part and deleting the
   segment - overwrites or skips instead of duplicating. If the sink fails (Redis down,
   disk full) the segment stays on disk and is retried with exponential backoff
   (:attr:`LogStats.sink_errors`); appends keep succeeding meanwhile.
3. **Recovery.** :meth:`ExchangeLog.start` takes an exclusive ``flock`` on the WAL
   directory, truncates torn tails, and queues every leftover segment of a previous run
   (:attr:`LogStats.replayed`) ahead of new traffic. Sequence numbers never go back: a
   high-water mark file (``WAL/HWM``), the leftover segments and the sink's existing parts
   all bound the next one, so a new segment can never overwrite an old part.
4. :meth:`ExchangeLog.close` closes the active segment and drains everything to the sink
   (within ``timeout``; what cannot be delivered stays in the WAL for the next start).

Records a sink cannot take (a value of the wrong type for its column) are moved to
``WAL/rejected/seg-<seq>.jsonl`` with the error and counted (:attr:`LogStats.rejected`):
never silently lost, never blocking the segments behind them. Required columns are
checked at ``append`` (a :class:`ValueError` before anything is written).

Durability trade-off (``fsync=``)
---------------------------------
``"none"`` (default)
    Acknowledge once the line is in the kernel's page cache. Survives the gateway process
    crashing or being ``SIGKILL``-ed (the kernel still writes the page out), not a power
    loss or kernel panic (the last few seconds of records may be lost, up to the kernel's
    dirty-page writeback, ~30 s by default). Costs one ``write`` syscall: a few µs.
``"batch"`` (group commit)
    Every ``batch_interval_s`` (default 2 ms) a syncer thread ``fdatasync``\\s the WAL and
    resolves every append written before it; ``append`` awaits that. Survives power loss.
    Adds up to ``batch_interval_s`` plus one ``fdatasync`` of latency per exchange (a few
    ms), little throughput: one sync covers every append waiting for it. Sink output is
    fsynced before its segment is deleted, and directory entries are synced.
``"always"``
    ``fdatasync`` inside every append (on a worker thread for the async ``append``).
    Survives power loss; the fsyncs serialise, so throughput is bounded by the disk's sync
    latency (hundreds per second on many SSDs). Mostly for tests and comparisons.

Data layout in the WAL and on the Redis stream: the record's own keys as JSON, except
``ts``, which is converted at ``append`` to an integer of **microseconds since the epoch,
UTC** (``append`` accepts epoch seconds as int/float, an aware or naive-UTC ``datetime``,
or an ISO-8601 string), and ``action``, stored as the lower-case name when given as an
:class:`enum.Enum` (e.g. :class:`~distillshield.gateway._types.Action`). Keys outside
:data:`LOG_SCHEMA` are kept in the WAL and the stream but not written to Parquet.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from distillshield.errors import SchemaError
from distillshield.schema import EXCHANGES, TableSpec, conform, read_table

if TYPE_CHECKING:
    import redis

__all__ = [
    "DECISION_FIELDS",
    "GATEWAY_EXCHANGES",
    "LOG_SCHEMA",
    "Batch",
    "ExchangeLog",
    "FsyncMode",
    "LogStats",
    "ParquetSink",
    "RedisStreamSink",
    "Segment",
    "Sink",
    "encode_record",
    "normalize_record",
    "read_gateway_log",
    "read_segment",
    "read_stream",
    "records_to_table",
]

_log = logging.getLogger(__name__)

FsyncMode = Literal["none", "batch", "always"]

#: The gateway's decision, logged beside the canonical columns (readers of ``exchanges``
#: ignore them; :func:`read_gateway_log` returns them).
DECISION_FIELDS = pa.schema(
    [
        pa.field("action", pa.string()),  # allow, mark, protect, throttle, block
        pa.field("reasons", pa.list_(pa.string())),  # stable reason codes
        pa.field("campaign_id", pa.string()),
        pa.field("risk", pa.float64()),
        pa.field("protected", pa.bool_()),  # the response's reasoning was stripped/summarised
        pa.field("marked", pa.bool_()),  # the response carries a campaign mark
    ]
)

#: What one Parquet part holds: the canonical ``exchanges`` columns, then the decision.
LOG_SCHEMA = pa.schema(list(EXCHANGES.schema) + list(DECISION_FIELDS))

#: ``exchanges`` as the gateway writes it; ``read_table(out, GATEWAY_EXCHANGES)`` keeps the
#: decision columns (null for parts written by anyone else).
GATEWAY_EXCHANGES = TableSpec(EXCHANGES.name, LOG_SCHEMA, EXCHANGES.key)

_REQUIRED = EXCHANGES.required
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SEG_RE = re.compile(r"^seg-(\d{12})\.wal$")
_NODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_SEQ_WIDTH = 12


# --------------------------------------------------------------------------- records


def _ts_us(ts: object) -> int:
    if isinstance(ts, bool):
        raise ValueError(f"ts must be a time, got {ts!r}")
    if isinstance(ts, int):
        return ts * 1_000_000
    if isinstance(ts, float):
        return round(ts * 1_000_000)
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return (ts - _EPOCH) // _US
    raise ValueError(f"ts must be epoch seconds, a datetime or an ISO-8601 string, got {ts!r}")


def normalize_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as the WAL stores it (``ts`` in µs since the epoch, ``action`` a name).

    Raises :class:`ValueError` when a required ``exchanges`` column is missing or null.
    """
    out = dict(record)
    missing = [name for name in _REQUIRED if out.get(name) is None]
    if missing:
        raise ValueError(f"exchange record lacks required column(s) {missing}")
    out["ts"] = _ts_us(out["ts"])
    action = out.get("action")
    if isinstance(action, enum.Enum):
        out["action"] = action.name.lower()
    return out


def _json_default(value: object) -> object:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, datetime):
        return _ts_us(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"cannot log a value of type {type(value).__name__}")


try:  # orjson is several times faster (the append's main cost); the stdlib is the fallback
    import orjson

    _ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes go through _json_default too

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTS)

    _loads: Callable[[bytes], Any] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)

except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _std_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode

    def _dumps(obj: Any) -> bytes:
        return _std_encode(obj).encode()

    _loads = json.loads
    _JSON_ERRORS = (ValueError,)


def _scrub(value: Any) -> Any:
    """``value`` with lone surrogates (valid in a Python str, not in UTF-8) made U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, Mapping):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


#: A WAL line is the record's JSON object with the checksum of that JSON added as its last
#: member, so a segment is plain JSON lines that Arrow's reader parses without the GIL.
_CRC_KEY = b',"_crc":"'
_CRC_TAIL = len(_CRC_KEY) + 8 + 2  # ,"_crc":"xxxxxxxx"}


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One WAL line: the record's JSON plus ``"_crc"`` (CRC32 of that JSON, hex), then ``\\n``.

    ``record`` must be a non-empty mapping (normalised: see :func:`normalize_record`).
    """
    try:
        payload = _dumps(record)
    except (TypeError, ValueError):
        # A client can smuggle a lone surrogate into a prompt (JSON "\\ud800"): it must not
        # keep the exchange out of the log. Anything else unserialisable still raises.
        payload = _dumps(_scrub(record))
    if len(payload) < 3 or payload[-1:] != b"}":
        raise ValueError("an exchange record must be a non-empty mapping")
    return b'%s,"_crc":"%08x"}\n' % (payload[:-1], zlib.crc32(payload))


def _payload(line: bytes) -> bytes:
    """The record's JSON in a WAL line (without newline), the checksum member removed."""
    return line[:-_CRC_TAIL] + b"}"


def _parse_line(line: bytes) -> dict[str, Any] | None:
    if len(line) < _CRC_TAIL + 3 or line[-_CRC_TAIL:-10] != _CRC_KEY or line[-2:] != b'"}':
        return None
    try:
        crc = int(line[-10:-2], 16)
    except ValueError:
        return None
    payload = _payload(line)
    if zlib.crc32(payload) != crc:
        return None
    try:
        record = _loads(payload)
    except _JSON_ERRORS:
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class Segment:
    """What :func:`read_segment` found in one WAL segment file."""

    lines: list[bytes]  # each intact WAL line, without its newline
    records: list[dict[str, Any]]
    bad: int  # lines dropped: torn (incomplete) or failing their checksum
    valid_end: int  # byte offset just past the last intact line
    size: int

    @property
    def payloads(self) -> list[bytes]:
        return [_payload(line) for line in self.lines]


def read_segment(path: str | Path) -> Segment:
    """Parse a WAL segment, checking every line's checksum; keep the intact records and
    count the rest."""
    data = Path(path).read_bytes()
    lines: list[bytes] = []
    records: list[dict[str, Any]] = []
    bad = 0
    valid_end = 0
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl
        line = data[pos:end]
        record = _parse_line(line) if nl >= 0 else None
        if record is None:
            bad += 1
        else:
            lines.append(line)
            records.append(record)
            valid_end = end + 1
        pos = end + 1
    return Segment(lines, records, bad, valid_end, n)


def records_to_table(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Normalised records (as in the WAL or the stream) as a table of :data:`LOG_SCHEMA`.

    Raises :class:`~distillshield.errors.SchemaError` (or an Arrow error) when a value does
    not fit its column.
    """
    arrays = [pa.array([r.get(f.name) for r in records], type=f.type) for f in LOG_SCHEMA]
    table = pa.Table.from_arrays(arrays, names=LOG_SCHEMA.names)
    return conform(table, GATEWAY_EXCHANGES)


_CONVERSION_ERRORS = (
    SchemaError,
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    TypeError,
    ValueError,
    OverflowError,
)

#: How Arrow's JSON reader parses a segment: ``ts`` arrives as integer microseconds.
_JSON_SCHEMA = pa.schema([pa.field(f.name, pa.int64() if f.name == "ts" else f.type) for f in LOG_SCHEMA])
_TS_INDEX = LOG_SCHEMA.get_field_index("ts")


def _segment_table(data: bytes) -> pa.Table | None:
    """A whole, intact segment as a conformed table, parsed by Arrow (which releases the
    GIL, so the event loop keeps running); ``None`` when anything is off (a torn tail, a
    value that does not fit), for the checked record-by-record path to handle."""
    if not data.endswith(b"\n"):
        return None
    try:
        raw = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16)),
            parse_options=pajson.ParseOptions(
                explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
        if raw.num_rows != data.count(b"\n"):
            return None
        raw = raw.set_column(_TS_INDEX, "ts", raw.column(_TS_INDEX).cast(LOG_SCHEMA.field("ts").type))
        return conform(raw, GATEWAY_EXCHANGES)
    except _CONVERSION_ERRORS:
        return None


def read_gateway_log(out_dir: str | Path) -> pa.Table:
    """Everything a :class:`ParquetSink` wrote under ``out_dir``, decision columns included.

    ``distillshield.schema.read_table(out_dir, EXCHANGES)`` reads the same parts as the
    canonical table (the decision columns dropped).
    """
    return read_table(out_dir, GATEWAY_EXCHANGES, optional=True)


# --------------------------------------------------------------------------- sinks


@dataclass(frozen=True)
class Batch:
    """One closed WAL segment, ready for a sink: ``table`` (conformed to
    :data:`GATEWAY_EXCHANGES`) and ``lines`` (the WAL lines of the same rows) row-aligned."""

    seq: int
    node: str
    table: pa.Table
    lines: bytes

    def payloads(self) -> list[bytes]:
        """Each row's record as JSON (as the WAL holds it, without the checksum)."""
        return [_payload(line) for line in self.lines.split(b"\n")[:-1]]


class Sink(Protocol):
    """Where the flusher delivers closed segments. Called from the flusher thread only.

    ``write`` must be idempotent per ``(node, seq)``: the same batch may be written again
    after a crash or an error, and must not then produce duplicates.
    """

    def open(self, node: str) -> int:
        """Prepare to write for ``node``; return the highest sequence number already written
        (0 if unknown), so the log never reuses one."""
        ...

    def write(self, batch: Batch, *, sync: bool) -> None:
        """Deliver ``batch``; when ``sync``, make it durable (fsync) before returning."""
        ...

    def close(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ParquetSink:
    """Zstd Parquet parts ``OUT/exchanges/part-<seq>-<node>.parquet``, written atomically.

    One part per WAL segment; its name depends only on the segment, so rewriting a segment
    replaces its part. Parts sort by sequence number, i.e. in append order per gateway.
    """

    def __init__(self, out_dir: str | Path, *, row_group_size: int = 65_536) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / EXCHANGES.name
        self.row_group_size = row_group_size
        self._node: str | None = None

    def _pattern(self, node: str) -> re.Pattern[str]:
        return re.compile(rf"^part-(\d{{{_SEQ_WIDTH}}})-{re.escape(node)}\.parquet(\.tmp)?$")

    def open(self, node: str) -> int:
        self._node = node
        self.dir.mkdir(parents=True, exist_ok=True)
        pattern = self._pattern(node)
        high = 0
        for path in self.dir.iterdir():
            m = pattern.match(path.name)
            if m is None:
                continue
            if m.group(2):  # a write that died before its rename: never visible, drop it
                path.unlink(missing_ok=True)
            else:
                high = max(high, int(m.group(1)))
        return high

    def part_path(self, seq: int, node: str | None = None) -> Path:
        node = node or self._node
        if node is None:
            raise RuntimeError("ParquetSink.open was not called")
        return self.dir / f"part-{seq:0{_SEQ_WIDTH}d}-{node}.parquet"

    def write(self, batch: Batch, *, sync: bool) -> None:
        path = self.part_path(batch.seq, batch.node)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(batch.table, tmp, compression="zstd", row_group_size=self.row_group_size)
        if sync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if sync:
            _fsync_dir(self.dir)

    def close(self) -> None:
        pass


class RedisStreamSink:
    """Entries ``{request_id, record}`` (``record``: the WAL JSON) on a Redis stream.

    A batch is sent in chunks of ``chunk`` records; each chunk is one ``MULTI/EXEC`` of its
    ``XADD``\\s plus a delivery marker ``<stream>:delivered:<node>:<seq>:<chunk>`` (expiring
    after ``dedupe_ttl_s``). A chunk whose marker exists is skipped, so a batch retried
    after an error or a crash is delivered exactly once. Redis' own persistence decides what
    survives a Redis restart; ``sync`` is not used. Read back with :func:`read_stream`.
    """

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "distillshield:exchanges",
        maxlen: int | None = 10_000_000,
        approximate: bool = True,
        chunk: int = 500,
        dedupe_ttl_s: int = 7 * 86_400,
        socket_timeout_s: float = 5.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.maxlen = maxlen
        self.approximate = approximate
        self.chunk = chunk
        self.dedupe_ttl_s = dedupe_ttl_s
        self.socket_timeout_s = socket_timeout_s
        self._client = client
        self._own_client = client is None
        self._node: str | None = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            import redis as redis_mod
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # Fail fast: the log retries whole batches with its own backoff.
            self._client = redis_mod.Redis.from_url(
                self.redis_url,
                socket_timeout=self.socket_timeout_s,
                socket_connect_timeout=self.socket_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        return self._client

    def marker(self, node: str, seq: int, chunk: int) -> str:
        return f"{self.stream}:delivered:{node}:{seq:0{_SEQ_WIDTH}d}:{chunk}"

    def open(self, node: str) -> int:
        self._node = node
        return 0

    def write(self, batch: Batch, *, sync: bool) -> None:
        client = self._redis()
        ids: list[str] = batch.table.column("request_id").to_pylist()
        payloads = batch.payloads()
        for index, start in enumerate(range(0, len(ids), self.chunk)):
            marker = self.marker(batch.node, batch.seq, index)
            if client.exists(marker):
                continue
            pipe = client.pipeline(transaction=True)
            for request_id, payload in zip(
                ids[start : start + self.chunk], payloads[start : start + self.chunk], strict=True
            ):
                pipe.xadd(
                    self.stream,
                    {"request_id": request_id, "record": payload},
                    maxlen=self.maxlen,
                    approximate=self.approximate,
                )
            pipe.set(marker, b"1", ex=self.dedupe_ttl_s)
            pipe.execute()

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None


def read_stream(
    client: redis.Redis,
    stream: str = "distillshield:exchanges",
    *,
    start: str = "-",
    end: str = "+",
    count: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(entry id, record)`` pairs from a :class:`RedisStreamSink` stream, oldest first.

    Turn the records into a canonical table with :func:`records_to_table`.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    entries: list[tuple[Any, Any]] = client.xrange(stream, min=start, max=end, count=count) or []
    for entry_id, fields in entries:
        raw = fields.get(b"record", fields.get("record"))
        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        out.append((ident, _loads(raw)))
    return out


# --------------------------------------------------------------------------- the log


@dataclass
class LogStats:
    """Counters for metrics (monotonic except ``segments_pending``)."""

    appended: int = 0  # acknowledged by this process
    replayed: int = 0  # found in a previous run's WAL at start
    flushed: int = 0  # delivered to the sink
    rejected: int = 0  # moved to WAL/rejected (did not fit the schema)
    sink_errors: int = 0  # failed delivery attempts (each is retried)
    torn: int = 0  # torn or corrupt WAL lines dropped at start (never acknowledged)
    sync_errors: int = 0  # failed fsyncs (the appends waiting on them failed too)
    segments_pending: int = 0  # WAL segments not yet delivered, the active one included
    last_error: str | None = None

    @property
    def pending(self) -> int:
        """Records in the WAL not yet delivered to the sink."""
        return self.appended + self.replayed - self.flushed - self.rejected


def _default_node(wal_dir: Path) -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:60] or "host"
    digest = hashlib.sha256(str(wal_dir.resolve()).encode()).hexdigest()[:8]
    return f"{host}-{digest}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


class ExchangeLog:
    """Durable, batched log of gateway exchanges (see the module docstring).

    ``wal_dir`` is this gateway instance's own directory (locked while open). ``node``
    names its output (default: the name kept in ``WAL/NODE``, first made from the host name
    and a hash of ``wal_dir``); gateways sharing an output directory need distinct nodes.
    ``flush_rows``/``flush_interval_s`` close a segment (and so make a part);
    ``batch_interval_s`` spaces group commits (``fsync="batch"``); ``backoff_s`` bounds the
    retry delay after a sink error; ``clock`` (seconds, monotonic) times segment age, and
    tests inject one.
    """

    def __init__(
        self,
        wal_dir: str | Path,
        sink: Sink,
        *,
        fsync: FsyncMode = "none",
        flush_rows: int = 10_000,
        flush_interval_s: float = 10.0,
        batch_interval_s: float = 0.002,
        node: str | None = None,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fsync not in ("none", "batch", "always"):
            raise ValueError(f"fsync must be 'none', 'batch' or 'always', not {fsync!r}")
        if flush_rows < 1 or flush_interval_s <= 0:
            raise ValueError("flush_rows must be >= 1 and flush_interval_s > 0")
        self.wal_dir = Path(wal_dir)
        self.sink = sink
        self.fsync: FsyncMode = fsync
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.batch_interval_s = batch_interval_s
        if node is not None and not _NODE_RE.fullmatch(node):
            raise ValueError(f"node must match [A-Za-z0-9_.-]+, got {node!r}")
        self._node_arg = node
        self.node = node or ""  # settled by start(): see _resolve_node
        self.backoff_s = backoff_s
        self.clock = clock
        self.stats = LogStats()

        self._lock = threading.Lock()
        self._flush_cv = threading.Condition(self._lock)  # wakes the flusher
        self._progress_cv = threading.Condition(self._lock)  # flusher made progress
        self._sync_req_cv = threading.Condition(self._lock)  # wakes the syncer
        self._sync_done_cv = threading.Condition(self._lock)  # a group commit finished

        self._started = False
        self._closing = False
        self._lock_fd: int | None = None
        # The active segment.
        self._fd: int | None = None
        self._seq = 0
        self._seg_count = 0
        self._seg_started = 0.0
        self._next_seq = 1
        self._hwm = 0
        self._closed: deque[int] = deque()  # closed segments awaiting delivery, in order
        self._checked: set[int] = set()  # ...of which these need the record-by-record path
        self._retry_at = 0.0  # time.monotonic() before which the flusher waits after an error
        self._stop_flusher = False
        # Group commit (fsync="batch").
        self._written = 0  # appends written to the WAL (an LSN)
        self._synced = 0  # LSN covered by the last successful fdatasync
        self._failed_from = 1  # the LSNs whose last fdatasync failed: [from, upto]
        self._failed_upto = 0
        self._sync_error: OSError | None = None
        self._sync_requested = False
        self._stop_syncer = False
        self._unsynced_fds: list[int] = []  # closed segments' fds, synced then closed by the syncer
        self._dir_dirty = False
        self._groups: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def durable(self) -> bool:
        return self.fsync != "none"

    def _seg_path(self, seq: int) -> Path:
        return self.wal_dir / f"seg-{seq:0{_SEQ_WIDTH}d}.wal"

    def start(self) -> None:
        """Lock the WAL directory, recover a previous run's segments and start the flusher.

        Leftover segments are delivered first, in order, by the flusher (``start`` does not
        wait for the sink: use :meth:`flush` for that).
        """
        if self._started or self._closing:
            raise RuntimeError("an ExchangeLog starts once (make a new one to reopen the WAL)")
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.wal_dir / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RuntimeError(f"{self.wal_dir} is in use by another ExchangeLog") from exc
            raise
        self._lock_fd = lock_fd
        try:
            self._recover()
        except BaseException:
            self._lock_fd = None
            os.close(lock_fd)
            raise
        self._started = True
        self._threads = [threading.Thread(target=self._flusher, name="exchange-log-flusher", daemon=True)]
        if self.fsync == "batch":
            self._threads.append(threading.Thread(target=self._syncer, name="exchange-log-sync", daemon=True))
        for thread in self._threads:
            thread.start()

    def _recover(self) -> None:
        for stale in self.wal_dir.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        hwm_path = self.wal_dir / "HWM"
        try:
            self._hwm = int(hwm_path.read_text().strip() or 0) if hwm_path.exists() else 0
        except ValueError:  # damaged by a power loss: the leftovers and the sink still bound it
            _log.warning("%s is unreadable; bounding sequence numbers by the WAL and the sink", hwm_path)
            self._hwm = 0
        leftovers = sorted(
            (int(m.group(1)), p) for p in self.wal_dir.iterdir() if (m := _SEG_RE.match(p.name))
        )
        self.node = self._resolve_node(bool(leftovers))
        sink_high = self.sink.open(self.node)
        high = max([self._hwm, sink_high, *(seq for seq, _ in leftovers)])
        for seq, path in leftovers:
            seg = read_segment(path)
            if seg.bad:
                self.stats.torn += seg.bad
                _log.warning("%s: dropped %d torn or corrupt WAL line(s) (never acknowledged)", path, seg.bad)
                if seg.valid_end < seg.size:
                    os.truncate(path, seg.valid_end)  # cut the torn tail: what remains is whole
            if not seg.records:
                self._retire(seq)
                continue
            self.stats.replayed += len(seg.records)
            self._closed.append(seq)
            if seg.bad:
                self._checked.add(seq)
        self._next_seq = high + 1
        self.stats.segments_pending = len(self._closed)

    def _resolve_node(self, has_leftovers: bool) -> str:
        """The node name, kept in ``WAL/NODE`` so output names survive restarts (a new
        container host name must not turn a replayed segment into a second part)."""
        path = self.wal_dir / "NODE"
        stored = path.read_text().strip() if path.exists() else ""
        if not _NODE_RE.fullmatch(stored):
            stored = ""
        node = self._node_arg or stored or _default_node(self.wal_dir)
        if stored and node != stored and has_leftovers:
            raise ValueError(
                f"{self.wal_dir} holds segments of node {stored!r}: start it as {stored!r} "
                f"(not {node!r}) until they are delivered, or they could be written twice"
            )
        if node != stored:
            self._write_small(path, node)
        return node

    def _write_small(self, path: Path, text: str) -> None:
        """Replace a small state file atomically (and durably unless ``fsync="none"``)."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(text + "\n")
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if self.durable:
            _fsync_dir(path.parent)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Stop accepting appends, deliver everything (waiting up to ``timeout`` seconds for
        the sink), stop the threads and release the WAL. Returns whether nothing is left
        pending; what is left stays in the WAL for the next :meth:`start`."""
        if not self._started:
            return self.stats.pending == 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._closing = True
            self._rotate_locked()
            self._retry_at = 0.0
            self._flush_cv.notify_all()
            while self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._progress_cv.wait(remaining)
            self._stop_flusher = True
            self._stop_syncer = True
            self._flush_cv.notify_all()
            self._sync_req_cv.notify_all()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self.sink.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._started = False
        self.stats.segments_pending = len(self._closed)
        return self.stats.pending == 0

    async def aclose(self, timeout: float | None = 30.0) -> bool:
        """:meth:`close` on a worker thread, for an event loop's shutdown hook."""
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> ExchangeLog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ appending

    def _open_segment_locked(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        fd = os.open(self._seg_path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._fd, self._seq, self._seg_count, self._seg_started = fd, seq, 0, self.clock()
        if self.fsync == "always":
            _fsync_dir(self.wal_dir)
        elif self.fsync == "batch":
            self._dir_dirty = True
        return fd

    def _rotate_locked(self) -> None:
        """Close the active segment and queue it for the flusher."""
        if self._fd is None:
            return
        if self.fsync == "batch":
            self._unsynced_fds.append(self._fd)  # the syncer syncs, then closes it
            self._sync_req_cv.notify()
        else:
            os.close(self._fd)
        self._closed.append(self._seq)
        self._fd = None
        self._seg_count = 0
        self._flush_cv.notify_all()

    def _write_locked(self, line: bytes) -> int:
        if not self._started or self._closing:
            raise RuntimeError("ExchangeLog is not open (call start(); append after close())")
        fd = self._fd if self._fd is not None else self._open_segment_locked()
        try:
            _write_all(fd, line)
        except BaseException:
            # Bytes of this line may be on disk: end the segment there, so the torn line
            # stays its tail and no acknowledged record is ever written after it.
            self._checked.add(self._seq)
            self._rotate_locked()
            raise
        if self.fsync == "always":
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self.stats.sync_errors += 1
                self.stats.last_error = f"fsync: {exc}"
                self._rotate_locked()
                raise
        self._seg_count += 1
        self._written += 1
        self.stats.appended += 1
        if self._seg_count >= self.flush_rows:
            self._rotate_locked()
        return self._written

    def _request_sync_locked(self) -> None:
        if not self._sync_requested:
            self._sync_requested = True
            self._sync_req_cv.notify()

    async def append(self, record: Mapping[str, Any]) -> None:
        """Log one exchange; acknowledged (durable per ``fsync``) when this returns.

        With ``fsync="none"`` this never yields to the event loop: it is one ``write``.
        """
        line = encode_record(normalize_record(record))
        if self.fsync == "none":
            with self._lock:
                self._write_locked(line)
            return
        if self.fsync == "always":
            await asyncio.to_thread(self._append_always, line)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._write_locked(line)
            self._groups.setdefault(loop, []).append(fut)
            self._request_sync_locked()
        await fut

    def append_sync(self, record: Mapping[str, Any]) -> None:
        """:meth:`append` for threads: blocks until acknowledged."""
        line = encode_record(normalize_record(record))
        if self.fsync == "always":
            self._append_always(line)
            return
        with self._lock:
            lsn = self._write_locked(line)
            if self.fsync == "none":
                return
            self._request_sync_locked()
            while True:
                if self._failed_from <= lsn <= self._failed_upto and self._sync_error is not None:
                    raise self._sync_error
                if self._synced >= lsn:
                    return
                self._sync_done_cv.wait()

    def _append_always(self, line: bytes) -> None:
        with self._lock:
            self._write_locked(line)  # writes and fdatasyncs

    # ------------------------------------------------------------------ group commit

    def _syncer(self) -> None:
        last = time.monotonic()
        while True:
            with self._lock:
                while not (self._sync_requested or self._unsynced_fds or self._stop_syncer):
                    self._sync_req_cv.wait()
                stopping = self._stop_syncer
            wait = self.batch_interval_s - (time.monotonic() - last)
            if wait > 0 and not stopping:
                time.sleep(wait)  # the group-commit window: let concurrent appends join
            with self._lock:
                target = self._written
                old = self._unsynced_fds
                self._unsynced_fds = []
                current = self._fd
                groups = self._groups
                self._groups = {}
                dir_dirty = self._dir_dirty
                self._dir_dirty = False
                self._sync_requested = False
                stopping = self._stop_syncer
            error: OSError | None = None
            try:
                for fd in [*old, *([current] if current is not None else [])]:
                    os.fdatasync(fd)
                if dir_dirty:
                    _fsync_dir(self.wal_dir)
            except OSError as exc:
                error = exc
            finally:
                for fd in old:
                    os.close(fd)
            last = time.monotonic()
            with self._lock:
                if error is None:
                    self._synced = max(self._synced, target)
                else:
                    self.stats.sync_errors += 1
                    self.stats.last_error = f"fsync: {error}"
                    self._sync_error = error
                    self._failed_from, self._failed_upto = self._synced + 1, target
                    if self._fd is not None and self._fd == current:
                        self._rotate_locked()
                self._sync_done_cv.notify_all()
                done = stopping and not (self._sync_requested or self._unsynced_fds)
            for loop, futures in groups.items():
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, futures, error)
            if done:
                return

    # ------------------------------------------------------------------ flushing

    def _rotate_if_due_locked(self) -> float:
        """Rotate the active segment if it is old enough; return seconds until it will be."""
        if self._fd is None:
            return self.flush_interval_s
        left = self.flush_interval_s - (self.clock() - self._seg_started)
        if left <= 0:
            self._rotate_locked()
            return self.flush_interval_s
        return left

    def _flusher(self) -> None:
        backoff = 0.0
        while True:
            with self._lock:
                while True:
                    due_in = self._rotate_if_due_locked()
                    self.stats.segments_pending = len(self._closed) + (self._fd is not None)
                    if self._stop_flusher:
                        return
                    now = time.monotonic()
                    if self._closed and now >= self._retry_at:
                        break
                    wait = due_in if not self._closed else min(due_in, self._retry_at - now)
                    self._flush_cv.wait(max(min(wait, 1.0), 0.001))
                seq = self._closed[0]
            try:
                delivered, rejected = self._deliver(seq)
            except Exception as exc:
                backoff = min(max(backoff * 2, self.backoff_s[0]), self.backoff_s[1])
                _log.warning(
                    "exchange log: delivering segment %d failed (retry in %.2fs): %s", seq, backoff, exc
                )
                with self._lock:
                    self.stats.sink_errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    self._retry_at = time.monotonic() + backoff
                    self._progress_cv.notify_all()
                continue
            backoff = 0.0
            with self._lock:
                self._closed.popleft()
                self.stats.flushed += delivered
                self.stats.rejected += rejected
                self.stats.segments_pending = len(self._closed) + (self._fd is not None)
                self._progress_cv.notify_all()

    def _deliver(self, seq: int) -> tuple[int, int]:
        path = self._seg_path(seq)
        if seq not in self._checked:
            data = path.read_bytes()
            table = _segment_table(data)
            if table is not None:  # the common case: one pass in Arrow, off the GIL
                self.sink.write(Batch(seq, self.node, table, data), sync=self.durable)
                self._retire(seq)
                return table.num_rows, 0
        # Record by record, checksums checked: recovered segments with bad lines, and
        # segments holding a value that does not fit its column.
        seg = read_segment(path)
        keep = list(range(len(seg.records)))
        bad: list[tuple[dict[str, Any], str]] = []
        try:
            table = records_to_table(seg.records)
        except _CONVERSION_ERRORS:
            keep = []
            for i, record in enumerate(seg.records):
                try:
                    records_to_table([record])
                except _CONVERSION_ERRORS as exc:
                    bad.append((record, f"{type(exc).__name__}: {exc}"))
                else:
                    keep.append(i)
            table = records_to_table([seg.records[i] for i in keep])
        if bad:
            self._write_rejected(seq, bad)
        if keep:
            lines = b"".join(seg.lines[i] + b"\n" for i in keep)
            self.sink.write(Batch(seq, self.node, table, lines), sync=self.durable)
        self._retire(seq)
        with self._lock:
            self._checked.discard(seq)
        return len(keep), len(bad)

    def _write_rejected(self, seq: int, bad: Iterable[tuple[dict[str, Any], str]]) -> None:
        folder = self.wal_dir / "rejected"
        folder.mkdir(exist_ok=True)
        path = folder / f"seg-{seq:0{_SEQ_WIDTH}d}.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            for record, error in bad:
                fh.write(_dumps({"error": error, "record": record}) + b"\n")
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        _log.error("exchange log: %s: records that do not fit the schema were set aside", path)

    def _retire(self, seq: int) -> None:
        """Delete a delivered segment, first recording that ``seq`` was used."""
        if seq > self._hwm:
            self._write_small(self.wal_dir / "HWM", str(seq))
            self._hwm = seq
        self._seg_path(seq).unlink(missing_ok=True)
        if self.durable:
            _fsync_dir(self.wal_dir)

    # ------------------------------------------------------------------ waiting

    def kick(self) -> None:
        """Wake the flusher now (e.g. after advancing an injected clock), retrying at once."""
        with self._lock:
            self._retry_at = 0.0
            self._flush_cv.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Close the active segment and wait until every segment is delivered (retrying a
        failing sink at once). Returns ``False`` if ``timeout`` passed first."""
        if not self._started:
            raise RuntimeError("ExchangeLog is not open")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._rotate_locked()
            self._retry_at = 0.0
            self._flush_cv.notify_all()
            while self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress_cv.wait(remaining)
            return True

    def wait_until(self, predicate: Callable[[LogStats], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate(stats)`` holds after some flusher progress (or an error)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not predicate(self.stats):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress_cv.wait(remaining)
            return True

    def snapshot(self) -> LogStats:
        """A consistent copy of :attr:`stats`."""
        with self._lock:
            return copy.copy(self.stats)
