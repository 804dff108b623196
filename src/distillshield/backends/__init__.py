"""Execution backends: the only place that knows an engine.

Logic is written once as SQL in one reference dialect (DuckDB's) and handed to a backend,
which transpiles it with sqlglot for its own engine (splink's approach). Row-wise work
that SQL cannot express well (text fingerprints, IP lookups) is written as functions over
Arrow batches, which every engine can map over (DuckDB: directly; Spark: ``mapInArrow``).

    backend = get_backend("duckdb")
    backend.register("ex", "DATA/exchanges")            # a canonical table directory/file
    table = backend.query("SELECT account_id, count(*) n FROM ex GROUP BY 1")
"""

from distillshield._sql import quote_name
from distillshield.backends._base import Backend, BackendError, transpile
from distillshield.backends._duckdb import DuckDBBackend

__all__ = ["Backend", "BackendError", "DuckDBBackend", "get_backend", "quote_name", "transpile"]


def get_backend(name: str = "duckdb", **options: object) -> Backend:
    """A backend by name; optional engines are imported lazily with a clear install hint."""
    if name == "duckdb":
        return DuckDBBackend(**options)  # type: ignore[arg-type]
    raise BackendError(f"unknown backend {name!r} (available: duckdb; spark arrives with the [spark] extra)")
