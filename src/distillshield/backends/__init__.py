"""Execution backends: the only place that knows an engine.

Logic is written once as SQL in one reference dialect (DuckDB's) and handed to a backend,
which transpiles it with sqlglot for its own engine (splink's approach); where sqlglot's
translation falls short, the backend rewrites the AST (Spark: ``_spark.REWRITES``). Row-wise
work that SQL cannot express well (text fingerprints, IP lookups) is written as functions
over Arrow batches.

    backend = get_backend("duckdb")                     # or "spark" (the [spark] extra)
    backend.register("ex", "DATA/exchanges")            # a canonical table directory/file
    table = backend.query("SELECT account_id, count(*) n FROM ex GROUP BY 1")

    name, options = backend_options(None, "backend.toml")   # a backend configuration file
    with get_backend(name, **options) as backend: ...
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from distillshield._sql import quote_name
from distillshield.backends._base import Backend, BackendError, transpile
from distillshield.backends._config import BACKEND_OPTIONS, backend_options, load_backend_config
from distillshield.backends._duckdb import DuckDBBackend

__all__ = [
    "BACKEND_OPTIONS",
    "Backend",
    "BackendError",
    "DuckDBBackend",
    "backend_options",
    "get_backend",
    "load_backend_config",
    "open_backend",
    "quote_name",
    "transpile",
]

#: How to install an optional engine.
SPARK_HINT = "pip install 'distillshield[spark]' (and Java 17 or 21)"


def get_backend(name: str = "duckdb", **options: Any) -> Backend:
    """A backend by name; optional engines are imported lazily with a clear install hint."""
    if name == "duckdb":
        return DuckDBBackend(**options)
    if name == "spark":
        if importlib.util.find_spec("pyspark") is None:
            raise BackendError(f"the spark backend needs pyspark: {SPARK_HINT}")
        from distillshield.backends._spark import SparkBackend

        return SparkBackend(**options)
    raise BackendError(f"unknown backend {name!r} (available: duckdb, spark)")


def open_backend(name: str | None = None, config: str | Path | None = None, **overrides: Any) -> Backend:
    """:func:`get_backend` from a name, a configuration file and option overrides.

    ``name`` (the CLI's ``--backend``) wins over the file's ``backend``, which wins over
    ``duckdb``; non-None ``overrides`` (``memory_limit=...``) win over the file's section.
    """
    backend, options = backend_options(name, config, overrides)
    return get_backend(backend, **options)
