"""``distillshield gateway --workers N``: N processes on one port sharing one Redis.

The end-to-end test runs the real command (``python -m distillshield.cli gateway --workers 2``)
against a real ``redis-server`` and the mock model over HTTP, SIGKILLs one worker, and stops the
group with SIGTERM; the others check the pieces in process: the refusal of a memory store,
worker index claims, the worker factory, and the delivery of WALs no worker opens.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from _redis_server import RedisServer, free_port, running_redis
from distillshield.cli import app as cli_app
from distillshield.gateway import _workers as workers_mod
from distillshield.gateway import load_config, open_store
from distillshield.gateway._log import encode_record, normalize_record
from distillshield.gateway._metrics import forget_dead_workers, multiprocess_ready
from distillshield.gateway._workers import (
    ENV,
    claim_worker_index,
    drain_orphan_logs,
    worker_app,
    worker_wal_dir,
)
from distillshield.gateway.mock_upstream import MockConfig, running_mock
from distillshield.schema import EXCHANGES, read_table

ADMIN = "admin-token-for-tests"


# ------------------------------------------------------------------------------ in process


@pytest.mark.parametrize("store", [None, "memory://"])
def test_workers_refuse_a_store_that_is_not_shared(tmp_path: Path, store: str | None) -> None:
    args = ["gateway", "--workers", "2", "--upstream", "http://127.0.0.1:9/v1"]
    args += ["--log-dir", str(tmp_path / "log")] + (["--store", store] if store else [])
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "--workers 2 needs a shared store" in text and "--store redis://" in text
    assert not (tmp_path / "log").exists()  # refused before anything was opened


def test_worker_index_claims_are_exclusive_and_freed_with_their_holder(tmp_path: Path) -> None:
    i0, fd0 = claim_worker_index(tmp_path)
    i1, fd1 = claim_worker_index(tmp_path)
    try:
        assert (i0, i1) == (0, 1)
        assert (tmp_path / "worker-0" / "CLAIM").read_text().strip() == str(os.getpid())
        os.close(fd0)  # the holder is gone (a crashed worker: the kernel releases its lock)
        i2, fd0 = claim_worker_index(tmp_path)
        assert i2 == 0  # its replacement gets its index, hence its WAL and its worker id
    finally:
        os.close(fd0)
        os.close(fd1)


def test_worker_factory_takes_an_index_its_own_wal_and_a_derived_worker_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims: list[int] = []
    monkeypatch.setattr(workers_mod, "_claims", claims)
    log_dir = tmp_path / "log"
    cfg = load_config(None, upstream="http://127.0.0.1:9/v1", log_dir=str(log_dir))
    monkeypatch.setenv(ENV, json.dumps({"config": cfg.model_dump(mode="json"), "worker_base": "gw-a"}))
    try:
        apps = [worker_app(), worker_app()]
        for i, application in enumerate(apps):
            gw = application.gateway  # type: ignore[attr-defined]
            assert gw.worker_id == f"gw-a:{i}"
            assert gw.exchange_log.wal_dir == worker_wal_dir(log_dir, i) == log_dir / f"worker-{i}" / "wal"
            assert gw.exchange_log.sink.dir == log_dir / "exchanges"  # one sink for all workers
            assert gw.config.log_dir == str(log_dir)
    finally:
        for fd in claims:
            os.close(fd)
    monkeypatch.setenv(ENV, "{not json")
    with pytest.raises(SystemExit) as exc:  # uvicorn's start-up failure: the group stops
        worker_app()
    assert exc.value.code == 3


def test_metrics_files_of_dead_workers_stop_counting_in_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer exists
    names = [
        f"gauge_livesum_{gone.pid}.db",  # a killed worker's in-flight count: dropped
        f"gauge_livemax_{gone.pid}.db",
        f"counter_{gone.pid}.db",  # its requests still count
        f"gauge_livesum_{os.getpid()}.db",  # a live worker's: kept
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert forget_dead_workers(tmp_path) == [gone.pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    # a worker whose prometheus_client was not started in multiprocess mode is refused
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert "PROMETHEUS_MULTIPROC_DIR is None" in (multiprocess_ready(tmp_path) or "")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert "imported before" in (multiprocess_ready(tmp_path) or "")  # this process: too late


def _segment(wal: Path, ids: list[str]) -> None:
    rows = [
        {
            "request_id": rid,
            "ts": 1_760_000_000 + n,
            "account_id": "acct_o",
            "model": "m",
            "endpoint": "chat.completions",
            "ip": "203.0.113.7",
            "n_messages": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "stream": False,
            "status": 200,
        }
        for n, rid in enumerate(ids)
    ]
    wal.mkdir(parents=True, exist_ok=True)
    (wal / "seg-000000000001.wal").write_bytes(b"".join(encode_record(normalize_record(r)) for r in rows))


def test_wals_no_worker_opens_are_delivered_before_the_workers_start(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    cfg = load_config(None, upstream="http://127.0.0.1:9/v1", log_dir=str(log_dir))
    _segment(log_dir / "wal", ["single-1", "single-2"])  # left by a crashed single-process run
    _segment(worker_wal_dir(log_dir, 1), ["w1-1"])  # worker 1 of this run replays it itself
    _segment(worker_wal_dir(log_dir, 2), ["w2-1"])  # left by a run with three workers
    _segment(worker_wal_dir(log_dir, 3), ["w3-1"])  # ...and a live process holds this one
    held = workers_mod._try_lock(log_dir / "worker-3" / "CLAIM")
    assert held is not None
    try:
        drained = {d.wal_dir: d for d in drain_orphan_logs(cfg, workers=2)}
    finally:
        os.close(held)
    assert set(drained) == {log_dir / "wal", worker_wal_dir(log_dir, 2), worker_wal_dir(log_dir, 3)}
    assert (drained[log_dir / "wal"].records, drained[log_dir / "wal"].delivered) == (2, True)
    assert (drained[worker_wal_dir(log_dir, 2)].records, drained[worker_wal_dir(log_dir, 2)].delivered) == (
        1,
        True,
    )
    assert drained[worker_wal_dir(log_dir, 3)].in_use
    ids = read_table(log_dir, EXCHANGES, columns=["request_id"]).column(0).to_pylist()
    assert collections.Counter(ids) == {"single-1": 1, "single-2": 1, "w2-1": 1}
    assert not list((log_dir / "wal").glob("seg-*.wal"))
    assert list(worker_wal_dir(log_dir, 1).glob("seg-*.wal"))  # left for worker 1
    assert list(worker_wal_dir(log_dir, 3).glob("seg-*.wal"))  # left to its live holder
    # a single-process run opens LOG_DIR/wal: every worker-<i> WAL is an orphan then
    assert {d.wal_dir for d in drain_orphan_logs(cfg, workers=1)} == {
        worker_wal_dir(log_dir, 1),
        worker_wal_dir(log_dir, 3),
    }


# ------------------------------------------------------------------------------ end to end


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on loopback (tests/_redis_server.py); skips when not installed."""
    with running_redis(tmp_path) as server:
        yield server


def _wait(what: str, cond: Callable[[], bool], timeout: float = 60.0, out: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            tail = out.read_text()[-3000:] if out is not None and out.exists() else ""
            raise AssertionError(f"{what}: not within {timeout}s\n{tail}")
        time.sleep(0.05)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _one(url: str, key: str, n: int) -> tuple[int | str, str | None]:
    """One request on a new connection (so the workers take turns accepting); a third are
    streams, acknowledged only when ``[DONE]`` arrived. A failure returns its status and
    the start of its body (for the assertion message) instead of 200."""
    body = {"model": "mock-plain", "messages": [{"role": "user", "content": f"request {n}"}]}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(timeout=10.0) as client:
        if n % 3 == 0:
            body["stream"] = True
            with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                text = "".join(r.iter_text())
                ok = r.status_code == 200 and "data: [DONE]" in text
                return (200 if ok else f"{r.status_code}: {text[:300]}"), r.headers.get("x-request-id")
        r = client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
        ok = r.status_code == 200 and bool(r.json().get("choices"))
        return (200 if ok else f"{r.status_code}: {r.text[:300]}"), r.headers.get("x-request-id")


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` on a new connection, as ``{(sample name, sorted labels): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    with httpx.Client(timeout=10.0) as client:
        text = client.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _online(redis_url: str, account: str) -> dict[str, bytes]:
    async def get() -> dict[str, bytes]:
        store = open_store(redis_url, timeout_s=2.0)
        try:
            return await store.get_online(account)
        finally:
            await store.close()

    return asyncio.run(get())


def _n_requests(states: dict[str, bytes]) -> dict[str, int]:
    from distillshield.features.online import AccountOnline

    return {w: int(AccountOnline.from_bytes(b).get()["n_requests"] or 0) for w, b in states.items()}


def _stop(proc: subprocess.Popen[bytes], log_dir: Path, out: Path, timeout: float = 120.0) -> int:
    """SIGTERM the group and wait for it. One that does not stop in time is made to print
    every process's stacks (SIGUSR1, ``gateway._workers.dump_stacks_on_sigusr1``), killed with
    its workers, and the test fails with where it was stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the parent stops every worker; each drains
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pids = [proc.pid]
        for claim_file in log_dir.glob("worker-*/CLAIM"):
            with contextlib.suppress(ValueError):
                pids.append(int(claim_file.read_text()))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(2.0)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(
            f"the gateway group (parent {pids[0]}, workers {pids[1:]}) did not stop within {timeout}s "
            f"of SIGTERM; its stacks:\n{out.read_text()[-12000:]}"
        ) from None


@pytest.mark.slow
def test_two_workers_share_one_redis_survive_a_crash_and_log_every_acknowledged_exchange(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    log_dir, out = tmp_path / "log", tmp_path / "gateway.out"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = f"{socket.gethostname()}:{port}"  # the default worker-id base: host:port
    workers = {f"{base}:0", f"{base}:1"}
    acked: collections.Counter[str] = collections.Counter()
    per_account: collections.Counter[str] = collections.Counter()
    sent = 0

    def batch(keys: dict[str, str], n: int = 8) -> None:
        """``n`` concurrent requests over the accounts; every one must be acknowledged."""
        nonlocal sent
        jobs = [(acct, keys[acct], sent + i) for i, acct in enumerate(sorted(keys) * (n // len(keys)))]
        sent += len(jobs)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda j: (j[0], *_one(url, j[1], j[2])), jobs))
        for acct, status, rid in results:
            assert status == 200 and rid, (acct, status, rid)
            acked[rid] += 1
            per_account[acct] += 1

    with running_mock(MockConfig(reasoning="none")) as upstream:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(
            f'upstream = "{upstream}"\nstore = "{redis_server.url}"\nlog_dir = "{log_dir}"\n'
            "online_sync_s = 0.1\nverdict_refresh_s = 0.5\n"
            # a loaded 2-core CI runner can stall a Redis round trip past the 50 ms default:
            # the first use of a key in each worker would then be a fail-mode 503
            "store_timeout_s = 5.0\n"
        )
        cmd = [sys.executable, "-m", "distillshield.cli", "gateway", "--config", str(cfg)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DISTILLSHIELD_ADMIN_TOKEN": ADMIN}
        proc = subprocess.Popen(
            [*cmd, "--workers", "2", "--port", str(port)],
            stdout=out.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            _wait("gateway up", lambda: _up(url) or proc.poll() is not None, out=out)
            assert proc.poll() is None, out.read_text()[-3000:]
            # keys registered through one worker are in Redis: every worker accepts them
            keys = {}
            for acct in ("acct_a", "acct_b"):
                r = httpx.post(
                    f"{url}/admin/keys",
                    json={"account_id": acct},
                    headers={"authorization": f"Bearer {ADMIN}"},
                    timeout=10,
                )
                assert r.status_code == 201, r.text
                keys[acct] = r.json()["key"]

            # 1. traffic until each account's online state in Redis holds both workers' blobs
            def both_served() -> bool:
                batch(keys)
                return all(set(_online(redis_server.url, a)) == workers for a in keys)

            _wait("both workers served both accounts", both_served, out=out)

            # 2. the fleet view has converged (nothing counted twice, nothing missing) ...
            def converged() -> bool:
                return all(
                    sum(_n_requests(_online(redis_server.url, a)).values()) == per_account[a] for a in keys
                )

            _wait("online state converged", converged, out=out)

            def unflushed_in_worker_0() -> bool:  # (segments become Parquet parts every 10 s)
                if any(p.stat().st_size for p in worker_wal_dir(log_dir, 0).glob("seg-*.wal")):
                    return True
                batch(keys)
                _wait("online state converged", converged, out=out)
                return False

            _wait("worker 0 holding records in its WAL", unflushed_in_worker_0, out=out)
            # ... then worker 0 dies without any shutdown: its WAL must be replayed
            claim = log_dir / "worker-0" / "CLAIM"
            dead = int(claim.read_text())
            os.kill(dead, signal.SIGKILL)
            _wait("dead worker reaped", lambda: not Path(f"/proc/{dead}").exists(), out=out)
            before = _online(redis_server.url, "acct_a")[f"{base}:0"]

            # 3. uvicorn replaces it; the replacement claims index 0: same WAL (replayed),
            # same worker id (adopts its predecessor's online state instead of overwriting it)
            def replaced() -> bool:
                text = claim.read_text().strip()
                return bool(text) and int(text) != dead

            _wait("worker 0 replaced", replaced, out=out)

            def replacement_served() -> bool:
                batch(keys)
                return _online(redis_server.url, "acct_a")[f"{base}:0"] != before

            _wait("the replacement served acct_a", replacement_served, out=out)
            batch(keys)

            # 4. /metrics is the group's, whichever worker answers the scrape: every request
            # counted once (the killed worker's included), nothing left in flight, and the
            # killed worker's live gauges dropped by its replacement. Online states held is a
            # live sum: worker 1 holds both accounts, the replacement at least acct_a (it
            # served it) and at most both; the dead worker's two would make it 5 or 6
            def metrics_agree() -> bool:
                scrapes = [_scrape(url) for _ in range(6)]  # new connections: both workers answer
                return all(
                    m.get(("distillshield_requests_total", (("endpoint", "chat"), ("status", "200"))))
                    == len(acked)
                    and m.get(("distillshield_in_flight", ())) == 0
                    and 3 <= m.get(("distillshield_online_accounts", ()), 0) <= 4
                    and m.get(("distillshield_online_accounts_forgotten", ())) == 0
                    for m in scrapes
                )

            _wait("/metrics counts every worker's requests", metrics_agree, out=out)
            metrics_dir = log_dir / "metrics"
            assert list(metrics_dir.glob("counter_*.db")) and not list(
                metrics_dir.glob(f"gauge_live*_{dead}.db")
            )

            # 5. a live worker prints its threads' stacks on SIGUSR1 and keeps running (the
            # signal's default action would end it, and uvicorn would start another)
            worker_1 = int((log_dir / "worker-1" / "CLAIM").read_text())
            os.kill(worker_1, signal.SIGUSR1)
            _wait("worker 1's stack dump", lambda: "most recent call first" in out.read_text(), out=out)
            batch(keys)
            assert Path(f"/proc/{worker_1}").exists()
            assert int((log_dir / "worker-1" / "CLAIM").read_text()) == worker_1
        finally:
            code = _stop(proc, log_dir, out)
        assert code == 0, out.read_text()[-3000:]

    # every acknowledged exchange is in the log exactly once, and nothing else is
    logged = collections.Counter(read_table(log_dir, EXCHANGES, columns=["request_id"]).column(0).to_pylist())
    assert logged == acked and set(logged.values()) == {1}
    for i in (0, 1):  # drained on SIGTERM
        assert not list(worker_wal_dir(log_dir, i).glob("seg-*.wal"))
    # the parts come from exactly the two workers' WALs (one node each, kept across the restart)
    nodes = {(worker_wal_dir(log_dir, i) / "NODE").read_text().strip() for i in (0, 1)}
    parts = list((log_dir / "exchanges").glob("part-*.parquet"))
    assert len(nodes) == 2 and {p.stem.split("-", 2)[2] for p in parts} == nodes
    # the online state: one blob per worker id (the replacement reused its id), and the
    # fleet's count of each account's requests is exact: the replacement adopted the blob of
    # its predecessor (synced before the kill) instead of overwriting it
    for acct in ("acct_a", "acct_b"):
        counts = _n_requests(_online(redis_server.url, acct))
        assert set(counts) == workers and all(counts.values())
        assert sum(counts.values()) == per_account[acct], (acct, counts, per_account[acct])


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_group_and_fails_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "missing-keys.jsonl"
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        'upstream = "http://127.0.0.1:9/v1"\nstore = "redis://127.0.0.1:9/0"\n'
        f'keys_file = "{missing}"\nlog_dir = "{tmp_path / "log"}"\n'
    )
    cmd = [sys.executable, "-m", "distillshield.cli", "gateway", "--config", str(cfg)]
    done = subprocess.run(
        [*cmd, "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # uvicorn stops the parent when a worker fails before serving; the command says so and
    # exits 1 (uvicorn.run(workers=N) itself would have exited 0)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "missing-keys.jsonl" in done.stderr and "could not start" in done.stderr
