"""A backend configuration file (TOML): which engine, and that engine's constructor options.

    backend = "spark"              # optional; the CLI's --backend wins over it

    [spark]
    master = "local[8]"            # or spark://host:7077, yarn, k8s://...
    app_name = "distillshield-scan"
    shuffle_partitions = 64
    [spark.conf]                   # any Spark setting, passed through as strings
    "spark.executor.memory" = "4g"

    [duckdb]
    memory_limit = "4GB"
    threads = 8

A section holds the keyword arguments of that backend's constructor (``SparkBackend``,
``DuckDBBackend``) and nothing else: an unknown key is an error naming the key and the file,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from distillshield.backends._base import BackendError

__all__ = ["BACKEND_OPTIONS", "load_backend_config"]

#: Per backend: option -> (accepted Python types, what it is). ``session`` (an object) and
#: anything else not listed cannot come from a file.
BACKEND_OPTIONS: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "duckdb": {
        "database": ((str,), "database file (default: in memory)"),
        "memory_limit": ((str,), "memory cap, e.g. '6GB' (large joins spill to a temporary directory)"),
        "threads": ((int,), "worker threads"),
    },
    "spark": {
        "master": ((str,), "local[N], spark://host:port, yarn, k8s://..."),
        "app_name": ((str,), "application name shown by the cluster manager"),
        "shuffle_partitions": ((int,), "spark.sql.shuffle.partitions (default 4 in local mode)"),
        "conf": ((dict,), "table of extra Spark settings (strings)"),
    },
}


def _check(path: Path, section: str, key: str, value: Any) -> Any:
    options = BACKEND_OPTIONS[section]
    if key not in options:
        raise BackendError(
            f"{path}: unknown key {key!r} in [{section}] (known: {', '.join(sorted(options))})"
        )
    types, _ = options[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise BackendError(
            f"{path}: [{section}] {key} must be {' or '.join(t.__name__ for t in types)}, "
            f"got {type(value).__name__}"
        )
    if isinstance(value, dict):  # [spark.conf]: settings, passed to Spark as strings
        bad = [k for k, v in value.items() if isinstance(v, dict | list)]
        if bad:
            raise BackendError(
                f"{path}: [{section}.{key}] {bad[0]!r} must be a single value, not a table or list"
            )
        return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
    return value


def load_backend_config(path: str | Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """``(backend name or None, {backend: constructor options})`` from TOML file ``path``.

    Every section is validated, not only the selected backend's, so the file is either
    right or refused. Raises :class:`BackendError` naming the file and the offending key.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackendError(f"{p}: cannot read backend config: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BackendError(f"{p}: not valid TOML: {exc}") from exc
    name = data.pop("backend", None)
    if name is not None and (not isinstance(name, str) or name not in BACKEND_OPTIONS):
        raise BackendError(f"{p}: backend = {name!r} is not one of {', '.join(BACKEND_OPTIONS)}")
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key not in BACKEND_OPTIONS or not isinstance(value, dict):
            raise BackendError(
                f"{p}: unknown key {key!r} (expected 'backend' and sections "
                f"{', '.join(f'[{b}]' for b in BACKEND_OPTIONS)})"
            )
        sections[key] = {k: _check(p, key, k, v) for k, v in value.items()}
    return name, sections


def backend_options(
    name: str | None, config: str | Path | None, overrides: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The backend to build and its options: ``name`` (e.g. ``--backend``) over the file's
    ``backend`` over ``"duckdb"``; ``overrides`` (non-None values) over the file's section."""
    chosen, sections = load_backend_config(config) if config is not None else (None, {})
    backend = name or chosen or "duckdb"
    if backend not in BACKEND_OPTIONS:
        raise BackendError(f"unknown backend {backend!r} (available: {', '.join(BACKEND_OPTIONS)})")
    options = dict(sections.get(backend, {}))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in BACKEND_OPTIONS[backend]:
            hint = "; memory: spark.driver.memory / spark.executor.memory in [spark.conf]"
            raise BackendError(
                f"option {key} does not apply to the {backend} backend "
                f"(its options: {', '.join(sorted(BACKEND_OPTIONS[backend]))}"
                f"{hint if backend == 'spark' else ''})"
            )
        options[key] = value
    return backend, options
