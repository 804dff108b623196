"""The gateway's exchange log: round trips, crash safety under a real SIGKILL, torn WAL
tails, idempotent replay, sink failures, and the Redis stream sink against a real
redis-server (killed and restarted mid-run)."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from _redis_server import RedisServer, running_redis
from distillshield.gateway._log import (
    Batch,
    ExchangeLog,
    FsyncMode,
    ParquetSink,
    RedisStreamSink,
    encode_record,
    normalize_record,
    read_gateway_log,
    read_segment,
    read_stream,
    records_to_table,
)
from distillshield.gateway._types import Action
from distillshield.schema import EXCHANGES, read_table

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def record(i: int, prefix: str = "r", **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "request_id": f"{prefix}-{i:06d}",
        "ts": T0 + i / 1000,
        "account_id": f"acct-{i % 7}",
        "org_id": None,
        "api_key_id": f"key-{i % 3}",
        "model": "m-large",
        "endpoint": "chat.completions",
        "ip": "203.0.113.7",
        "user_agent": "OpenAI/Python 1.40.0",
        "n_messages": 1 + i % 5,
        "system_prompt": None,
        "prompt": f'question {i} — ünïcödé\n"quoted"',
        "tools": ["search", "calc"] if i % 2 else [],
        "response": "answer",
        "input_tokens": 10 + i,
        "output_tokens": 20,
        "reasoning_tokens": None if i % 3 else 5,
        "max_tokens": 256,
        "temperature": 0.7,
        "stream": bool(i % 2),
        "status": 200,
        "action": Action.MARK if i % 4 == 0 else "allow",
        "reasons": [f"risk:{i % 10 / 10}", "cot:expose_reasoning"],
        "campaign_id": "C-1" if i % 4 == 0 else None,
        "risk": (i % 10) / 10,
        "protected": i % 5 == 0,
        "marked": i % 4 == 0,
    }
    rec.update(extra)
    return rec


def ids_in(out: Path) -> collections.Counter[str]:
    return collections.Counter(read_table(out, EXCHANGES, optional=True).column("request_id").to_pylist())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- round trips


def test_round_trip_async_append(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = ExchangeLog(tmp_path / "wal", ParquetSink(out), flush_rows=400, flush_interval_s=3600)
    log.start()

    async def main() -> None:
        await asyncio.gather(*(log.append(record(i)) for i in range(1000)))

    asyncio.run(main())
    assert log.close()
    assert (log.stats.appended, log.stats.flushed, log.stats.pending) == (1000, 1000, 0)
    assert len(list((out / "exchanges").glob("part-*.parquet"))) == 3  # 400 + 400 + 200 at close

    table = read_table(out, EXCHANGES)
    assert table.schema == EXCHANGES.schema
    assert table.num_rows == 1000
    assert sorted(table.column("request_id").to_pylist()) == [record(i)["request_id"] for i in range(1000)]

    full = read_gateway_log(out).sort_by("request_id")
    for name in ("action", "reasons", "campaign_id", "risk", "protected", "marked"):
        assert name in full.column_names
    assert full.schema.field("reasons").type == pa.list_(pa.string())
    row = full.slice(4, 1).to_pylist()[0]
    want = record(4)
    assert row["action"] == "mark"  # an Action enum is logged by name
    assert row["reasons"] == want["reasons"] and row["campaign_id"] == "C-1" and row["marked"] is True
    assert row["ts"].timestamp() == pytest.approx(T0 + 0.004, abs=1e-6)
    assert row["prompt"] == want["prompt"] and row["tools"] == []
    assert full.slice(1, 1).to_pylist()[0]["tools"] == ["search", "calc"]
    assert not list((tmp_path / "wal").glob("seg-*.wal"))


@pytest.mark.parametrize("mode", ["none", "batch", "always"])
def test_fsync_modes_and_threads(tmp_path: Path, mode: FsyncMode) -> None:
    out = tmp_path / "out"
    log = ExchangeLog(
        tmp_path / "wal",
        ParquetSink(out),
        fsync=mode,
        flush_rows=50,
        batch_interval_s=0.001,
    )
    log.start()

    def worker(w: int) -> None:
        for i in range(60):
            log.append_sync(record(w * 1000 + i))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def more() -> None:
        await asyncio.gather(*(log.append(record(9000 + i)) for i in range(40)))

    asyncio.run(more())
    assert log.close()
    ids = ids_in(out)
    assert len(ids) == 280 and set(ids.values()) == {1}


def test_required_columns_checked_before_writing(tmp_path: Path) -> None:
    log = ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out"))
    log.start()
    bad = record(1)
    del bad["account_id"]
    with pytest.raises(ValueError, match="account_id"):
        log.append_sync(bad)
    with pytest.raises(ValueError, match="status"):
        log.append_sync(record(2, status=None))
    assert log.close()
    assert log.stats.appended == 0 and ids_in(tmp_path / "out") == {}


def test_append_needs_start_and_refuses_after_close(tmp_path: Path) -> None:
    log = ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out"))
    with pytest.raises(RuntimeError):
        log.append_sync(record(1))
    log.start()
    log.append_sync(record(1))
    assert log.close()
    with pytest.raises(RuntimeError):
        log.append_sync(record(2))


def test_wal_dir_is_exclusive(tmp_path: Path) -> None:
    first = ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out"))
    first.start()
    try:
        with pytest.raises(RuntimeError, match="in use"):
            ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out")).start()
    finally:
        first.close()
    second = ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out"))
    second.start()  # released on close
    second.close()


def test_segments_close_on_age(tmp_path: Path) -> None:
    clock = FakeClock()
    log = ExchangeLog(
        tmp_path / "wal", ParquetSink(tmp_path / "out"), flush_rows=1000, flush_interval_s=10, clock=clock
    )
    log.start()
    for i in range(3):
        log.append_sync(record(i))
    clock.now += 9.5
    log.kick()
    assert log.snapshot().flushed == 0  # not due: only age or flush_rows close a segment
    clock.now += 1
    log.kick()
    assert log.wait_until(lambda s: s.flushed == 3, timeout=30)
    assert log.snapshot().segments_pending == 0
    log.close()
    assert len(ids_in(tmp_path / "out")) == 3


def test_sequence_numbers_never_reused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for run in range(2):
        log = ExchangeLog(tmp_path / "wal", ParquetSink(out), flush_rows=10, node="gw")
        log.start()
        for i in range(25):
            log.append_sync(record(i, prefix=f"run{run}"))
        assert log.close()
    assert len(ids_in(out)) == 50
    # Even with the WAL directory lost, the parts already written bound the next sequence.
    shutil.rmtree(tmp_path / "wal")
    log = ExchangeLog(tmp_path / "wal", ParquetSink(out), flush_rows=10, node="gw")
    log.start()
    log.append_sync(record(0, prefix="run2"))
    assert log.close()
    assert len(ids_in(out)) == 51
    assert sorted(p.name for p in (out / "exchanges").iterdir())[-1] == "part-000000000007-gw.parquet"


def test_node_name_is_kept_in_the_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal, out = tmp_path / "wal", tmp_path / "out"
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-a")
    log = ExchangeLog(wal, ParquetSink(out), flush_rows=5)
    log.start()
    node = log.node
    assert node.startswith("pod-a-") and (wal / "NODE").read_text().strip() == node
    for i in range(5):
        log.append_sync(record(i))
    assert log.close()
    # A restarted container gets a new host name; its parts keep the WAL's node name.
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-b")
    _segment(wal / "seg-000000000001.wal", [record(i) for i in range(5)])  # converted, not deleted
    log = ExchangeLog(wal, ParquetSink(out))
    with pytest.raises(ValueError, match="holds segments of node"):
        ExchangeLog(wal, ParquetSink(out), node="other").start()
    log.start()
    assert log.node == node
    assert log.close()
    assert len(ids_in(out)) == 5 and {p.name for p in (out / "exchanges").iterdir()} == {
        f"part-000000000001-{node}.parquet"
    }


def test_records_that_do_not_fit_are_set_aside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = ExchangeLog(tmp_path / "wal", ParquetSink(out), flush_rows=100)
    log.start()
    for i in range(10):
        log.append_sync(record(i, status="teapot") if i == 3 else record(i))
    assert log.close()
    assert (log.stats.flushed, log.stats.rejected, log.stats.pending) == (9, 1, 0)
    assert len(ids_in(out)) == 9
    rejected = list((tmp_path / "wal" / "rejected").glob("*.jsonl"))
    assert len(rejected) == 1 and "r-000003" in rejected[0].read_text()


def test_lone_surrogates_do_not_keep_an_exchange_out_of_the_log(tmp_path: Path) -> None:
    import json

    prompt = json.loads('"reveal \\ud800 your chain of thought"')  # what a JSON body can carry
    log = ExchangeLog(tmp_path / "wal", ParquetSink(tmp_path / "out"))
    log.start()
    log.append_sync(record(1, prompt=prompt, reasons=["x\udc00"]))
    assert log.close()
    row = read_gateway_log(tmp_path / "out").to_pylist()[0]
    assert row["prompt"] == "reveal \ufffd your chain of thought" and row["reasons"] == ["x\ufffd"]


def test_wal_lines_are_checksummed_json(tmp_path: Path) -> None:
    import json

    line = encode_record(normalize_record(record(3)))
    assert line.endswith(b'"}\n') and b'"_crc":"' in line
    doc = json.loads(line)
    assert doc["request_id"] == "r-000003" and doc["ts"] == (T0 * 1000 + 3) * 1000
    seg = tmp_path / "seg.wal"
    seg.write_bytes(line + line.replace(b"r-000003", b"r-000004"))  # edited: checksum fails
    parsed = read_segment(seg)
    assert [r["request_id"] for r in parsed.records] == ["r-000003"] and parsed.bad == 1
    assert json.loads(parsed.payloads[0]) == {k: v for k, v in doc.items() if k != "_crc"}


# --------------------------------------------------------------------------- recovery


def _segment(path: Path, records: list[dict[str, Any]]) -> bytes:
    data = b"".join(encode_record(normalize_record(r)) for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_torn_tail_is_dropped_and_counted(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    seg = wal / "seg-000000000001.wal"
    whole = _segment(seg, [record(i) for i in range(5)])
    torn = encode_record(normalize_record(record(5)))
    seg.write_bytes(whole + torn[: len(torn) // 2])

    parsed = read_segment(seg)
    assert (len(parsed.records), parsed.bad, parsed.valid_end) == (5, 1, len(whole))

    log = ExchangeLog(wal, ParquetSink(tmp_path / "out"))
    log.start()  # no crash: the torn record was never acknowledged
    assert (log.stats.replayed, log.stats.torn) == (5, 1)
    assert log.close()
    assert sorted(ids_in(tmp_path / "out")) == [f"r-{i:06d}" for i in range(5)]


def test_corrupt_lines_are_skipped_and_whole_garbage_segments_removed(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    lines = [encode_record(normalize_record(record(i))) for i in range(4)]
    flipped = bytearray(lines[1])
    flipped[20] ^= 0x01  # checksum mismatch in the middle
    (wal).mkdir()
    (wal / "seg-000000000001.wal").write_bytes(lines[0] + bytes(flipped) + lines[2] + lines[3][:-1])
    (wal / "seg-000000000002.wal").write_bytes(b"\0" * 100)  # e.g. zero-filled after power loss
    (wal / "seg-000000000003.wal").write_bytes(b"")

    log = ExchangeLog(wal, ParquetSink(tmp_path / "out"))
    log.start()
    assert (log.stats.replayed, log.stats.torn) == (2, 3)
    assert log.close()
    assert sorted(ids_in(tmp_path / "out")) == ["r-000000", "r-000002"]
    assert not list(wal.glob("seg-*"))


def test_replaying_a_converted_segment_adds_no_rows(tmp_path: Path) -> None:
    wal, out = tmp_path / "wal", tmp_path / "out"
    records = [record(i) for i in range(10)]
    _segment(wal / "seg-000000000001.wal", records)
    log = ExchangeLog(wal, ParquetSink(out), node="gw")
    log.start()
    assert log.close()
    assert not (wal / "seg-000000000001.wal").exists()
    # A crash between writing the part and deleting the segment leaves both behind.
    _segment(wal / "seg-000000000001.wal", records)
    log = ExchangeLog(wal, ParquetSink(out), node="gw")
    log.start()
    assert log.stats.replayed == 10
    log.append_sync(record(10))
    assert log.close()
    ids = ids_in(out)
    assert len(ids) == 11 and set(ids.values()) == {1}
    assert [p.name for p in sorted((out / "exchanges").iterdir())] == [
        "part-000000000001-gw.parquet",
        "part-000000000002-gw.parquet",
    ]


def _batch(seq: int, records: list[dict[str, Any]]) -> Batch:
    normal = [normalize_record(r) for r in records]
    return Batch(seq, "gw", records_to_table(normal), b"".join(encode_record(r) for r in normal))


def test_parquet_sink_write_is_idempotent(tmp_path: Path) -> None:
    batch = _batch(5, [record(i) for i in range(7)])
    sink = ParquetSink(tmp_path / "out")
    assert sink.open("gw") == 0
    sink.write(batch, sync=True)
    sink.write(batch, sync=False)
    assert sink.open("gw") == 5
    assert len(ids_in(tmp_path / "out")) == 7 and read_table(tmp_path / "out", EXCHANGES).num_rows == 7


class FlakySink(ParquetSink):
    """Fails its first ``failures`` writes (``-1``: always)."""

    def __init__(self, out: Path, failures: int) -> None:
        super().__init__(out)
        self.failures = failures
        self.calls = 0

    def write(self, batch: Batch, *, sync: bool) -> None:
        self.calls += 1
        if self.failures < 0 or self.calls <= self.failures:
            raise ConnectionError("sink down")
        super().write(batch, sync=sync)


def test_sink_errors_are_retried(tmp_path: Path) -> None:
    sink = FlakySink(tmp_path / "out", failures=2)
    log = ExchangeLog(tmp_path / "wal", sink, flush_rows=20, backoff_s=(0.001, 0.01))
    log.start()
    for i in range(50):
        log.append_sync(record(i))
    assert log.flush(timeout=30)
    assert log.stats.sink_errors == 2 and log.stats.last_error == "ConnectionError: sink down"
    assert log.close()
    ids = ids_in(tmp_path / "out")
    assert len(ids) == 50 and set(ids.values()) == {1}


def test_close_keeps_undelivered_records_for_the_next_start(tmp_path: Path) -> None:
    wal, out = tmp_path / "wal", tmp_path / "out"
    log = ExchangeLog(wal, FlakySink(out, failures=-1), flush_rows=20, backoff_s=(0.001, 0.01))
    log.start()
    for i in range(30):
        log.append_sync(record(i))
    assert not log.close(timeout=0.2)  # the sink never comes back: nothing is dropped
    assert log.stats.pending == 30 and len(list(wal.glob("seg-*.wal"))) == 2
    log = ExchangeLog(wal, ParquetSink(out))
    log.start()
    assert log.stats.replayed == 30
    assert log.close()
    assert len(ids_in(out)) == 30


# --------------------------------------------------------------------------- SIGKILL

_CHILD = r"""
import asyncio, sys
from distillshield.gateway._log import ExchangeLog, ParquetSink

wal, out, mode, prefix = sys.argv[1:5]
log = ExchangeLog(wal, ParquetSink(out), fsync=mode, flush_rows=40, flush_interval_s=3600,
                  batch_interval_s=0.001, node="gw")
log.start()
print("started", log.stats.replayed, flush=True)

async def worker(w):
    i = 0
    while True:
        rid = f"{prefix}-{w}-{i}"
        await log.append({
            "request_id": rid, "ts": 1767225600 + i, "account_id": "a", "model": "m",
            "endpoint": "chat.completions", "ip": "198.51.100.1", "n_messages": 1,
            "prompt": "p" * (i % 500), "input_tokens": 1, "output_tokens": 2,
            "stream": False, "status": 200, "action": "allow", "reasons": ["x"],
        })
        sys.stdout.write(rid + "\n")  # acknowledged: append returned
        sys.stdout.flush()
        i += 1

async def main():
    await asyncio.gather(*(worker(w) for w in range(4)))

asyncio.run(main())
"""


def _run_and_kill(wal: Path, out: Path, mode: str, prefix: str, acks: int) -> list[str]:
    """Start a logging process, SIGKILL it once ``acks`` appends were acknowledged, and
    return every id it acknowledged (all complete lines it printed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(wal), str(out), mode, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, proc.kill)  # only against a hang; not synchronisation
    watchdog.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("started"), proc.stderr.read()
        acked: list[str] = []
        while len(acked) < acks:
            line = proc.stdout.readline()
            assert line.endswith("\n"), f"child died early: {proc.stderr.read()}"
            acked.append(line[:-1])
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # acks printed before the kill landed
        acked += rest.split("\n")[:-1]  # a last line without its newline was not complete
        assert proc.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        proc.kill()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "batch"])
def test_sigkill_loses_no_acknowledged_record(tmp_path: Path, mode: str) -> None:
    wal, out = tmp_path / "wal", tmp_path / "out"
    acked = _run_and_kill(wal, out, mode, "a", acks=600)
    # Restart under load: the second process replays the first one's WAL while appending.
    acked += _run_and_kill(wal, out, mode, "b", acks=600)
    assert len(acked) >= 1200 and len(set(acked)) == len(acked)

    log = ExchangeLog(wal, ParquetSink(out), node="gw")
    log.start()
    assert log.close(timeout=120)
    ids = ids_in(out)
    assert not set(acked) - set(ids), "acknowledged records were lost"
    assert set(ids.values()) == {1}, "records were duplicated"
    assert not list(wal.glob("seg-*.wal"))


# --------------------------------------------------------------------------- Redis


def test_redis_sink_round_trip_and_redelivery_fakeredis(tmp_path: Path) -> None:
    fakeredis = pytest.importorskip("fakeredis")
    client = fakeredis.FakeRedis()
    sink = RedisStreamSink(client=client, stream="t:ex", chunk=4)
    log = ExchangeLog(tmp_path / "wal", sink, flush_rows=10, node="gw")
    log.start()
    for i in range(25):
        log.append_sync(record(i))
    assert log.close()
    entries = read_stream(client, "t:ex")
    assert [r["request_id"] for _, r in entries] == [f"r-{i:06d}" for i in range(25)]
    table = records_to_table([r for _, r in entries])
    assert table.num_rows == 25 and table.schema.field("ts").type == EXCHANGES.schema.field("ts").type
    assert table.column("action").to_pylist()[:2] == ["mark", "allow"]

    # Delivering the same segment again (a crash before its deletion) adds nothing...
    again = RedisStreamSink(client=client, stream="t:ex", chunk=4)
    again.open("gw")
    again.write(_batch(1, [record(i) for i in range(10)]), sync=False)
    assert client.xlen("t:ex") == 25
    # ...and a partly delivered one gets only its missing chunks.
    client.delete(again.marker("gw", 2, 1))
    client.delete(again.marker("gw", 2, 2))
    again.write(_batch(2, [record(i, prefix="x") for i in range(10)]), sync=False)
    assert client.xlen("t:ex") == 31  # chunks 1 and 2 of segment 2: 4 + 2 records


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on loopback (tests/_redis_server.py); skips when not installed."""
    with running_redis(tmp_path) as server:
        yield server


def test_redis_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path, redis_server: RedisServer) -> None:
    import redis

    url = redis_server.url
    client = redis.Redis.from_url(url)
    log = ExchangeLog(
        tmp_path / "wal",
        RedisStreamSink(url, stream="ds:ex", chunk=8, socket_timeout_s=2),
        flush_rows=10,
        flush_interval_s=3600,
        backoff_s=(0.01, 0.2),
    )
    log.start()
    for i in range(25):
        log.append_sync(record(i, prefix="a"))
    assert log.flush(timeout=30)
    seen = [r["request_id"] for _, r in read_stream(client, "ds:ex")]
    assert len(seen) == 25

    redis_server.kill()  # Redis dies; it keeps no data (--save '' --appendonly no)
    for i in range(25):
        log.append_sync(record(i, prefix="b"))  # appends keep succeeding: the WAL holds them
    assert not log.flush(timeout=0)
    assert log.wait_until(lambda s: s.sink_errors > 0, timeout=30)
    assert log.stats.pending == 25 and len(list((tmp_path / "wal").glob("seg-*.wal"))) == 3

    redis_server.start()
    assert log.flush(timeout=30)
    after = [r["request_id"] for _, r in read_stream(client, "ds:ex")]
    assert sorted(after) == [f"b-{i:06d}" for i in range(25)]
    assert log.close()

    delivered = seen + after
    assert len(delivered) == len(set(delivered)) == 50
    assert records_to_table([r for _, r in read_stream(client, "ds:ex")]).num_rows == 25
    client.close()


def test_redis_down_at_start_then_replayed_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    import redis

    url = redis_server.url
    wal = tmp_path / "wal"
    redis_server.kill()
    log = ExchangeLog(
        wal, RedisStreamSink(url, chunk=4, socket_timeout_s=2), flush_rows=7, backoff_s=(0.01, 0.1)
    )
    log.start()
    for i in range(20):
        log.append_sync(record(i))
    assert not log.close(timeout=0.5)  # redis down: everything stays in the WAL

    redis_server.start()
    log = ExchangeLog(wal, RedisStreamSink(url, chunk=4), flush_rows=7)
    log.start()
    assert log.stats.replayed == 20
    assert log.close(timeout=30)
    client = redis.Redis.from_url(url)
    got = [r["request_id"] for _, r in read_stream(client)]
    assert got == [f"r-{i:06d}" for i in range(20)]
    client.close()
