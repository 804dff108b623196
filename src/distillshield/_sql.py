"""SQL helpers every module that builds SQL shares (dependency-free, so cheap to import)."""

from __future__ import annotations

from distillshield.errors import DistillShieldError


class InvalidNameError(DistillShieldError, ValueError):
    """A table or view name that could smuggle SQL into the statements built around it."""


def quote_name(name: str) -> str:
    """A registered table or view name, double-quoted for SQL.

    Names come from callers; one that could close the quotes or end the statement is refused.
    """
    if not name or '"' in name or ";" in name or "\x00" in name:
        raise InvalidNameError(f"invalid table name {name!r}: not a safe SQL identifier")
    return f'"{name}"'
