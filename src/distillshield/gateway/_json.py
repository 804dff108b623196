"""JSON on the gateway's hot path: orjson when it is installed, the standard library otherwise.

Bodies are parsed once per request and per answer, and re-serialised only when the gateway
changed them (a protected or marked answer, a stream asked for its usage); orjson does both
several times faster than :mod:`json`. Output is compact UTF-8 either way (no spaces, no
``\\uXXXX`` escapes), so the bytes are the same with or without orjson for ordinary values.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FAST", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    FAST = False

    def loads(data: bytes | str) -> Any:
        """Parse JSON (raises ``ValueError``)."""
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

else:
    FAST = True

    def loads(data: bytes | str) -> Any:
        """Parse JSON (raises ``ValueError``)."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return orjson.dumps(obj)
