"""A real ``redis-server`` on loopback for tests: throwaway, no persistence, restartable.

Used by the Redis tests of the exchange log and the gateway's chaos tests (Redis killed and
restarted mid-run on the same port). ``/usr/bin/redis-server`` (Debian's package; the
project's scripts install it) or whichever ``redis-server`` is on ``PATH``; the tests that use
it skip when neither exists or the ``redis`` client is not installed.

Usage in a test module::

    @pytest.fixture
    def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
        with running_redis(tmp_path) as server:
            yield server

    def test_x(redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url)
        redis_server.kill()   # Redis dies; it kept no data
        redis_server.start()  # back on the same port, empty
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "free_port", "redis_binary", "running_redis"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server on 127.0.0.1:``port`` without persistence (``--save ''``,
    ``--appendonly no``), restartable on its port."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 30.0) -> None:
        """Launch it and wait until it answers PING (fails the test with its output if not)."""
        import redis

        self.proc = proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []

        def pump() -> None:  # keep the pipe drained; the output explains a failed start
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
                return
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    pytest.fail("redis-server did not start:\n" + "".join(output))
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


@contextlib.contextmanager
def running_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` (working directory under ``tmp_path``), killed on exit;
    skips the test when redis-server or the ``redis`` client is not installed."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); CI installs it")
    pytest.importorskip("redis")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(binary, free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()
