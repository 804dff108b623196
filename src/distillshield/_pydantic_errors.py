"""One way to report a pydantic ``ValidationError`` in a file-loading error message.

Policies, configs and other data files are validated with pydantic; their loaders raise the
project's own errors with a one-line explanation that names the file and every failing
field (``rules.0.id: String should match pattern ...; version: Input should be 1``).
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["format_validation_error"]


def format_validation_error(exc: ValidationError, source: str, what: str | None = None) -> str:
    """``"{source}: invalid {what}: loc: msg; loc: msg"`` (``"{source}: loc: msg; ..."``
    without ``what``): every error of ``exc``, its location dotted (``rules.0.id``)."""
    details = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
    return f"{source}: invalid {what}: {details}" if what else f"{source}: {details}"
