"""Serve an ASGI app with uvicorn in a background thread (tests, benchmarks, demos)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["serving"]


@contextlib.contextmanager
def serving(
    app: Any, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 20.0
) -> Iterator[str]:
    """Run ``app`` on ``host:port`` (0 = a free port) until the block exits; yields ``http://host:port``.

    The lifespan runs (startup/shutdown), so the gateway's log is drained on exit.
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="distillshield-serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start on {host}:{port}")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
