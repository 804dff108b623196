"""``distillshield gateway --workers N``: one gateway served by N processes on one port.

Serving
-------
The parent process binds the port once and runs uvicorn's own process supervisor
(:class:`uvicorn.supervisors.Multiprocess`, what ``uvicorn --workers N`` runs). It spawns N
worker processes that accept connections on the shared listening socket, pings them, replaces
one that dies, and on SIGINT / SIGTERM sends every worker SIGTERM and waits for it; each worker
then stops like a single gateway (answers in flight finish, the lifespan shutdown writes the
online state to the store and drains the exchange log). SIGHUP replaces the workers one by
one, SIGTTIN / SIGTTOU add or remove one.

Why uvicorn's supervisor rather than our own (fork N servers on ``SO_REUSEPORT``): it is the
maintained path for exactly this job — health checks, restarts, rolling replacement, stopping
the group when a worker cannot start — and the gateway already runs on uvicorn; a shared
listening socket also works where ``SO_REUSEPORT`` does not balance (it is Linux-specific).
We drive the supervisor directly rather than through ``uvicorn.run(..., workers=N)`` for one
reason: to see the workers' exit codes, so that a worker that cannot start makes the command
fail instead of exiting 0.

uvicorn starts each worker as a fresh interpreter (multiprocessing "spawn") that imports
:func:`worker_app` by name and calls it; the configuration reaches it through the environment
variable :data:`ENV` (the validated :class:`GatewayConfig` as JSON — secrets stay in the
environment variables the config names, which the workers inherit).

Per worker
----------
uvicorn does not tell a worker which one it is, so a worker *claims* an index: the first ``i``
whose ``LOG_DIR/worker-<i>/CLAIM`` it can ``flock`` (held for the process's life; the kernel
releases it when the process dies). Workers started together get 0..N-1; a worker uvicorn
starts in place of a crashed one gets the index the dead one held, and with it

- its write-ahead log ``LOG_DIR/worker-<i>/wal``, whose leftover segments it replays on start
  (the node name kept in ``WAL/NODE`` keeps their Parquet part names, so nothing is written
  twice);
- its worker id ``<base>:<i>`` (``base``: the configured ``worker_id``, else ``host:port``),
  so the shared online state takes the same-id adoption path (``OnlineRisk.merge_shared``).

Every worker's log delivers into the one sink: Parquet parts
``LOG_DIR/exchanges/part-<seq>-<node>.parquet``, one node per worker WAL (the layout
``ExchangeLog`` was built for: "gateways sharing an output directory need distinct nodes"),
so ``LOG_DIR`` stays one dataset directory whose ``exchanges`` table is the whole gateway's
traffic; or the one Redis stream.

A WAL that no worker of this run opens — ``LOG_DIR/wal`` of a single-process run when N > 1,
``LOG_DIR/worker-<j>`` with ``j >= N`` of a run with more workers (or of a worker added by
SIGTTIN or during a SIGHUP replacement) — would keep its unsent records until some later run
opened it: :func:`drain_orphan_logs` delivers them in the parent before the workers start.

A worker, or the parent, that hangs (a stop that never ends, a worker that answers no ping)
prints every thread's stack to its standard error on SIGUSR1 (:func:`dump_stacks_on_sigusr1`):
the one way to see where a live process is stuck without a debugger on the host.
"""

from __future__ import annotations

import errno
import faulthandler
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillshield.gateway._metrics import forget_dead_workers, multiprocess_ready
from distillshield.gateway.config import GatewayConfig

__all__ = [
    "ENV",
    "DrainedLog",
    "claim_worker_index",
    "drain_orphan_logs",
    "metrics_dir_for",
    "serve_workers",
    "shared_store_problem",
    "worker_app",
    "worker_wal_dir",
]

#: Environment variable carrying ``{"config": GatewayConfig, "worker_base": str}`` (JSON) to
#: the worker processes.
ENV = "DISTILLSHIELD_GATEWAY_WORKER"
#: Indices tried when claiming (far above any worker count; only a bound against a loop).
_MAX_INDEX = 4096
_WORKER_DIR_RE = re.compile(r"^worker-(\d+)$")
_SEG_RE = re.compile(r"^seg-\d+\.wal$")
_claims: list[int] = []  # lock fds held for the life of a worker process


def worker_dir(log_dir: str | Path, index: int) -> Path:
    return Path(log_dir) / f"worker-{index}"


def worker_wal_dir(log_dir: str | Path, index: int) -> Path:
    """Worker ``index``'s write-ahead log: ``LOG_DIR/worker-<index>/wal``."""
    return worker_dir(log_dir, index) / "wal"


def metrics_dir_for(log_dir: str | Path) -> Path:
    """Where the workers of a group keep their Prometheus values: ``LOG_DIR/metrics``."""
    return Path(log_dir) / "metrics"


def shared_store_problem(config: GatewayConfig, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve ``config`` (``None`` when they can)."""
    if workers > 1 and config.store in ("", "memory://"):
        return (
            f"--workers {workers} needs a shared store: set --store redis://host:port/db "
            '(or store = "redis://..." in the config file). With memory:// each worker process '
            "would keep its own API keys, batch verdicts, rate limits and online state."
        )
    return None


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive ``flock`` on ``path`` (created), or ``None`` if another
    open file holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def claim_worker_index(log_dir: str | Path) -> tuple[int, int]:
    """Lock the lowest free ``LOG_DIR/worker-<i>/CLAIM`` and write this process's pid in it;
    returns ``(i, fd)``: the claim lasts while ``fd`` is open (the process's life, for a
    worker)."""
    for index in range(_MAX_INDEX):
        fd = _try_lock(worker_dir(log_dir, index) / "CLAIM")
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # which process is worker i, for operators
            return index, fd
    raise RuntimeError(f"{log_dir}: no free worker index below {_MAX_INDEX}")


def dump_stacks_on_sigusr1() -> bool:
    """Make SIGUSR1 print every thread's Python stack to standard error (:mod:`faulthandler`,
    which writes from the signal handler itself, so it works while the event loop or a thread
    is blocked). Returns whether it was installed (POSIX only)."""
    if not hasattr(signal, "SIGUSR1"):
        return False
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return True


def worker_app() -> Any:
    """The ASGI app of one worker process (the factory uvicorn calls in each worker).

    A failure here is logged and ends the process with uvicorn's start-up failure status,
    which stops the whole group (any other exception would make uvicorn restart the worker
    forever).
    """
    from uvicorn.config import STARTUP_FAILURE

    from distillshield.gateway.app import create_app, open_exchange_log

    dump_stacks_on_sigusr1()
    try:
        spec = json.loads(os.environ[ENV])
        config = GatewayConfig.model_validate(spec["config"])
        if config.metrics_dir is not None:
            problem = multiprocess_ready(config.metrics_dir)
            if problem is not None:
                raise RuntimeError(f"metrics: {problem}")
            forget_dead_workers(config.metrics_dir)
        index, fd = claim_worker_index(config.log_dir)
        _claims.append(fd)
        config = config.model_copy(update={"worker_id": f"{spec['worker_base']}:{index}"})
        exchange_log = open_exchange_log(config, worker_wal_dir(config.log_dir, index))
        return create_app(config, exchange_log=exchange_log)
    except Exception as exc:
        logging.getLogger("uvicorn.error").error("distillshield gateway worker cannot start: %s", exc)
        sys.exit(STARTUP_FAILURE)


@dataclass(frozen=True)
class DrainedLog:
    """An orphaned WAL delivered (or not) by :func:`drain_orphan_logs`."""

    wal_dir: Path
    records: int  # records found in its segments
    delivered: bool  # all of them reached the sink (else they stay for a later run)
    in_use: bool = False  # another live process holds it: left alone


def _orphans(log_dir: Path, workers: int) -> list[tuple[Path, Path | None]]:
    """``(wal_dir, claim_file)`` of the WALs with segments that no worker of a run with
    ``workers`` processes opens."""
    found: list[tuple[Path, Path | None]] = []
    if workers > 1:
        found.append((log_dir / "wal", None))
    if log_dir.is_dir():
        for entry in sorted(log_dir.iterdir()):
            m = _WORKER_DIR_RE.match(entry.name)
            if m and (workers == 1 or int(m.group(1)) >= workers):
                found.append((entry / "wal", entry / "CLAIM"))
    return [
        (wal, claim)
        for wal, claim in found
        if wal.is_dir() and any(_SEG_RE.match(p.name) for p in wal.iterdir())
    ]


def drain_orphan_logs(config: GatewayConfig, workers: int, *, timeout_s: float = 30.0) -> list[DrainedLog]:
    """Deliver what earlier runs left in WALs that a run of ``workers`` processes does not
    open (see the module docstring). A WAL another live process holds is left alone."""
    from distillshield.gateway.app import open_exchange_log

    out: list[DrainedLog] = []
    for wal, claim in _orphans(Path(config.log_dir), workers):
        fd = _try_lock(claim) if claim is not None else None
        if claim is not None and fd is None:
            out.append(DrainedLog(wal, 0, False, in_use=True))
            continue
        try:
            log = open_exchange_log(config, wal)
            try:
                log.start()
            except RuntimeError:  # "in use by another ExchangeLog": a live single-process gateway
                out.append(DrainedLog(wal, 0, False, in_use=True))
                continue
            records = log.stats.replayed
            out.append(DrainedLog(wal, records, log.close(timeout=timeout_s)))
        finally:
            if fd is not None:
                os.close(fd)
    return out


def serve_workers(config: GatewayConfig, *, host: str, port: int, workers: int) -> int:
    """Serve ``config`` with ``workers`` processes on ``host:port`` until SIGINT/SIGTERM.

    Returns 0 after a clean stop, 1 when a worker failed to start (uvicorn then stopped the
    others; the worker logged why).
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    if workers < 2:
        raise ValueError("serve_workers is for two or more workers")
    problem = shared_store_problem(config, workers)
    if problem is not None:
        raise ValueError(problem)
    uv = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    sock = uv.bind_socket()
    base = config.worker_id or f"{socket.gethostname()}:{sock.getsockname()[1]}"
    # one metrics directory for this group (module docstring of gateway._metrics), emptied:
    # files of an earlier run would be summed into this one's counters
    metrics_dir = Path(config.metrics_dir or metrics_dir_for(config.log_dir))
    if metrics_dir.is_dir():
        shutil.rmtree(metrics_dir)
    metrics_dir.mkdir(parents=True)
    config = config.model_copy(update={"metrics_dir": str(metrics_dir)})
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by the workers' first import
    os.environ[ENV] = json.dumps({"config": config.model_dump(mode="json"), "worker_base": base})
    supervisor = Multiprocess(uv, sockets=[sock])
    dump_stacks_on_sigusr1()
    try:
        supervisor.run()
    finally:
        sock.close()
    return 1 if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0
