"""Apache Spark (PySpark >= 4, classic mode): the same SQL, on a cluster or in local mode.

All SQL in the package is written once in DuckDB's dialect. sqlglot transpiles it; where its
DuckDB -> Spark translation is wrong or drops a semantic the pipeline relies on, the AST is
rewritten here, before Spark SQL is generated (:data:`REWRITES`, applied by
:func:`spark_rewrite`; :func:`distillshield.backends.transpile` uses it for ``"spark"``).
Nothing in the shared SQL knows about Spark.

Statements (:meth:`SparkBackend._run`, parsed with sqlglot, never with regexes):

``CREATE [OR REPLACE] VIEW v AS q``    a temporary view from SQL text, resolved by name each
                                        time it is read (late binding, like a DuckDB view).
``CREATE [OR REPLACE] TABLE t AS q``   ``q`` is run and materialised (``localCheckpoint``:
                                        cached on the executors with its lineage cut, so a
                                        view may later be redefined over it without a
                                        recursive-view error, and iterative algorithms such
                                        as connected components keep short plans), then
                                        registered as a temporary view. Replacing or dropping
                                        it frees the cached blocks.
``DROP TABLE|VIEW [IF EXISTS] x``      the view is dropped and its cached blocks freed.
anything else                           ``spark.sql``; a query returns Arrow
                                        (``DataFrame.toArrow``).

Semantics that differ and are not rewritten (the shared SQL does not depend on them):
division by zero is NULL here (``spark.sql.ansi.enabled=false``, set by default) and ±inf in
DuckDB; ``ln``/``log`` of 0 is NULL here and an error in DuckDB; ``CAST(double AS VARCHAR)``
formats exponents differently (``1.0E20`` vs ``1e+20``) and ``CAST(timestamptz AS VARCHAR)``
has no ``+00`` suffix; ``date_diff`` with week/month/year units follows sqlglot's
translation; ``list(x ORDER BY y)`` loses its order; ``//`` on doubles (DuckDB: plain
division) is Spark's integral ``DIV``.

pyspark is imported when a :class:`SparkBackend` is created, so this module (and its rewrite
table) can be imported without it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pyarrow as pa
import sqlglot
from sqlglot import exp

from distillshield._sql import quote_name
from distillshield.backends._base import Backend, BackendError
from distillshield.schema import TableSpec

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["REWRITES", "SparkBackend", "is_uri", "spark_rewrite"]


# ----------------------------------------------------------------------------------- rewrites
def _double(e: exp.Expression) -> exp.Expression:
    """``e`` cast to DOUBLE (unchanged when it already is such a cast)."""
    if isinstance(e, exp.Cast) and e.to.is_type(exp.DataType.Type.DOUBLE):
        return e
    return exp.cast(e.copy(), exp.DataType.Type.DOUBLE)


def _micros(e: exp.Expression) -> exp.Expression:
    """Microseconds since the Unix epoch of timestamp (or date) ``e``, as BIGINT."""
    return exp.Anonymous(this="UNIX_MICROS", expressions=[exp.cast(e.copy(), exp.DataType.Type.TIMESTAMP)])


def _epoch(node: exp.Expression) -> exp.Expression:
    # DuckDB epoch(ts) is DOUBLE seconds with the fraction; Spark's unix_timestamp drops it.
    return exp.Div(this=_double(_micros(node.this)), expression=exp.Literal.number(1_000_000))


#: ``date_diff`` units DuckDB counts as boundaries crossed, and their length in microseconds.
_UNIT_MICROS: dict[str, int] = {
    "MICROSECOND": 1,
    "MICROSECONDS": 1,
    "US": 1,
    "MILLISECOND": 1_000,
    "MILLISECONDS": 1_000,
    "MS": 1_000,
    "SECOND": 1_000_000,
    "SECONDS": 1_000_000,
    "S": 1_000_000,
    "MINUTE": 60_000_000,
    "MINUTES": 60_000_000,
    "HOUR": 3_600_000_000,
    "HOURS": 3_600_000_000,
}


def _date_diff(node: exp.Expression) -> exp.Expression:
    # DuckDB date_diff(unit, a, b) counts unit boundaries between a and b (b - a, floored per
    # end point); Spark's datediff/timestampdiff truncates the elapsed time instead.
    unit = node.args.get("unit")
    name = (unit.name if unit is not None else "DAY").upper()
    start, end = node.expression, node.this
    if name in _UNIT_MICROS:
        size = _UNIT_MICROS[name]
        if size == 1:
            return exp.Paren(this=exp.Sub(this=_micros(end), expression=_micros(start)))

        def floored(e: exp.Expression) -> exp.Expression:
            return exp.Floor(this=exp.Div(this=_micros(e), expression=exp.Literal.number(size)))

        return exp.Paren(this=exp.Sub(this=floored(end), expression=floored(start)))
    if name in ("DAY", "DAYS", "D"):  # calendar (UTC) dates crossed
        return exp.Anonymous(
            this="DATEDIFF",
            expressions=[
                exp.cast(end.copy(), exp.DataType.Type.DATE),
                exp.cast(start.copy(), exp.DataType.Type.DATE),
            ],
        )
    return node


def _div(node: exp.Expression) -> exp.Expression:
    # DuckDB `/` always yields DOUBLE (also on DECIMAL literals such as 1000000.0); Spark keeps
    # DECIMAL and rounds to its result scale (an account age in days lost digits at 1e-6).
    if isinstance(node.this, exp.Cast) and node.this.to.is_type(exp.DataType.Type.DOUBLE):
        return node
    return exp.Div(this=_double(node.this), expression=node.expression)


def _avg(node: exp.Expression) -> exp.Expression:
    # DuckDB avg(DECIMAL) is DOUBLE; Spark's is DECIMAL(p+4, s+4): avg(CASE .. 1.0 ELSE 0.0)
    # would come back as a 5-digit decimal.
    if isinstance(node.this, exp.Distinct):
        return node
    return exp.Avg(this=_double(node.this))


#: Unsigned and 128-bit DuckDB types Spark lacks, and the signed type that holds them.
_TYPES: dict[object, exp.DataType] = {
    exp.DataType.Type.UTINYINT: exp.DataType.build("SMALLINT"),
    exp.DataType.Type.USMALLINT: exp.DataType.build("INT"),
    exp.DataType.Type.UINT: exp.DataType.build("BIGINT"),
    exp.DataType.Type.UBIGINT: exp.DataType.build("DECIMAL(20, 0)"),
    exp.DataType.Type.INT128: exp.DataType.build("DECIMAL(38, 0)"),
    exp.DataType.Type.UINT128: exp.DataType.build("DECIMAL(38, 0)"),
}


def _data_type(node: exp.Expression) -> exp.Expression:
    assert isinstance(node, exp.DataType)
    repl = _TYPES.get(node.this)
    return repl.copy() if repl is not None else node


def _list(node: exp.Expression) -> exp.Expression:
    # DuckDB list(x) keeps NULL elements; Spark's collect_list drops them. Collecting a
    # one-field struct (never null itself) and unwrapping keeps them.
    arg = node.this
    if isinstance(arg, exp.Distinct | exp.Order) or node.args.get("order"):
        return node
    struct = exp.Struct(expressions=[exp.alias_(arg.copy(), "v")])
    field = exp.Dot(this=exp.column("s"), expression=exp.to_identifier("v"))
    lam = exp.Lambda(this=field, expressions=[exp.to_identifier("s")])
    return exp.Anonymous(
        this="TRANSFORM", expressions=[exp.Anonymous(this="COLLECT_LIST", expressions=[struct]), lam]
    )


def _sort_array(node: exp.Expression) -> exp.Expression:
    # DuckDB array_sort puts NULLs last; Spark sort_array(x) puts them first, array_sort(x) last.
    asc = node.args.get("asc")
    if asc is None or (isinstance(asc, exp.Boolean) and asc.this):
        return exp.Anonymous(this="ARRAY_SORT", expressions=[node.this])
    return node


def _percentile_disc(node: exp.Expression) -> exp.Expression:
    # quantile_disc(x, q) -> percentile_disc(q) WITHIN GROUP (ORDER BY x): same definition
    # (smallest value whose cumulative share reaches q); Spark has no two-argument form.
    return exp.WithinGroup(
        this=exp.Anonymous(this="PERCENTILE_DISC", expressions=[node.expression]),
        expression=exp.Order(expressions=[exp.Ordered(this=node.this, nulls_first=False)]),
    )


def _percentile_cont(node: exp.Expression) -> exp.Expression:
    # quantile_cont(x, q) interpolates linearly, as Spark's percentile(x, q) does.
    return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])


def _log(node: exp.Expression) -> exp.Expression:
    # DuckDB log(x) is base 10; Spark's one-argument log is natural.
    if node.expression is None:
        return exp.Log(this=exp.Literal.number(10), expression=node.this)
    return node


def _md5(node: exp.Expression) -> exp.Expression:
    # Spark's md5 takes BINARY; make the UTF-8 encoding of the string explicit.
    if isinstance(node.this, exp.Cast) and node.this.to.is_type(exp.DataType.Type.BINARY):
        return node
    return exp.MD5(this=exp.cast(node.this.copy(), exp.DataType.Type.BINARY))


#: The DuckDB -> Spark rewrites: sqlglot node type -> (why, rewrite). Applied bottom-up to
#: the parsed reference-dialect AST before Spark SQL is generated.
REWRITES: dict[type[exp.Expression], tuple[str, Callable[[exp.Expression], exp.Expression]]] = {
    exp.TimeToUnix: ("epoch(ts): seconds with the fraction (unix_micros / 1e6)", _epoch),
    exp.DateDiff: ("date_diff(unit, a, b): DuckDB's boundary count, exact in microseconds", _date_diff),
    exp.Div: ("a / b: always DOUBLE, as in DuckDB", _div),
    exp.Avg: ("avg(x): DOUBLE, not DECIMAL", _avg),
    exp.DataType: ("unsigned / HUGEINT types: the signed type that holds them", _data_type),
    exp.ArrayAgg: ("list(x): keeps NULL elements", _list),
    exp.SortArray: ("array_sort(x): NULLs last", _sort_array),
    exp.PercentileDisc: ("quantile_disc(x, q): WITHIN GROUP form", _percentile_disc),
    exp.PercentileCont: ("quantile_cont(x, q): percentile(x, q)", _percentile_cont),
    exp.Log: ("log(x): base 10", _log),
    exp.MD5: ("md5(s): of the UTF-8 bytes", _md5),
}


def spark_rewrite(tree: exp.Expression) -> exp.Expression:
    """``tree`` (parsed as DuckDB SQL) with every :data:`REWRITES` entry applied."""

    def visit(node: exp.Expression) -> exp.Expression:
        entry = REWRITES.get(type(node))
        return entry[1](node) if entry is not None else node

    # bottom-up (children before their parents): a rewrite sees its arguments already
    # rewritten, and what it returns is not visited again
    root = tree.copy()
    for node in cast(list[exp.Expression], list(root.walk(bfs=False)))[::-1]:
        if node is root:
            continue
        new = visit(node)
        if new is not node:
            node.replace(new)
    return visit(root)


# ------------------------------------------------------------------------------ Arrow <-> Spark
def _to_spark_type(t: pa.DataType) -> pa.DataType:
    """An Arrow type Spark's Arrow conversion accepts, holding the same values."""
    if pa.types.is_dictionary(t):
        return _to_spark_type(t.value_type)
    if pa.types.is_timestamp(t):  # instants stay instants: tz-aware in UTC, naive stays naive
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_unsigned_integer(t):
        wider = {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}
        return wider.get(t.bit_width, pa.decimal128(20, 0))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_to_spark_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_to_spark_type(f.type)) for f in t])
    return t


def _to_spark(table: pa.Table) -> pa.Table:
    schema = pa.schema([f.with_type(_to_spark_type(f.type)) for f in table.schema])
    return table if schema.equals(table.schema) else table.cast(schema)


def _from_spark_type(t: pa.DataType) -> pa.DataType:
    """Spark's Arrow output as DuckDB would type it: plain (not large) strings and lists."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_from_spark_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _from_spark_type(f.type)) for f in t])
    return t


def _from_spark(table: pa.Table) -> pa.Table:
    # every column nullable, as DuckDB returns them: results of different queries concatenate
    schema = pa.schema([pa.field(f.name, _from_spark_type(f.type)) for f in table.schema])
    return table if schema.equals(table.schema) else table.cast(schema)


# ------------------------------------------------------------------------------------ backend
_JAVA_HINT = "Spark needs Java 17 or 21 (`java -version`; set JAVA_HOME)."


def is_uri(source: str | Path) -> bool:
    """A Hadoop file-system URI (``s3a://``, ``hdfs://``, ``abfss://``, ``file:/``...)."""
    text = str(source)
    return "://" in text or text.startswith("file:")


class SparkBackend(Backend):
    """Spark SQL through PySpark. The constructor arguments are its whole configuration.

    ``master``: ``local[N]`` (in process) or a cluster URL (``spark://host:7077``, ``yarn``,
    ``k8s://...``); ``None`` (the default) is the master ``spark-submit`` was given, else
    ``local[2]``. ``conf``: extra Spark settings (``{"spark.executor.memory": "4g"}``),
    applied last so they override the defaults set here. ``shuffle_partitions``: defaults to 4
    in local mode (Spark's 200 would make every small aggregation 200 tasks) and to Spark's
    own setting on a cluster. ``session``: an existing ``SparkSession`` to use (a notebook, a
    test fixture); only its runtime SQL settings are changed (time zone UTC, Arrow on, ANSI
    off) and :meth:`close` does not stop it.
    """

    dialect = "spark"

    def __init__(
        self,
        *,
        master: str | None = None,
        app_name: str = "distillshield",
        conf: dict[str, str] | None = None,
        shuffle_partitions: int | None = None,
        session: SparkSession | None = None,
    ):
        try:
            from pyspark import SparkConf, SparkContext
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - get_backend checks first
            raise BackendError("the spark backend needs pyspark: pip install 'distillshield[spark]'") from exc
        extra = {str(k): str(v) for k, v in (conf or {}).items()}
        if session is not None:
            master = str(session.sparkContext.master)
        elif master is None:  # spark-submit passes its --master as a JVM system property
            try:
                master = str(SparkConf().get("spark.master", None) or "local[2]")
            except Exception as exc:  # the JVM does not start: no Java
                raise BackendError(f"could not start Spark: {exc}. {_JAVA_HINT}") from exc
        assert master is not None
        local = master.startswith("local")
        # runtime SQL settings the shared SQL's semantics depend on
        runtime = {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.ansi.enabled": "false",  # x / 0 is NULL, not an error (DuckDB: inf)
        }
        partitions = shuffle_partitions if shuffle_partitions is not None else (4 if local else None)
        if partitions is not None:
            runtime["spark.sql.shuffle.partitions"] = str(int(partitions))
        self._warehouse: str | None = None
        self._owns_session = session is None
        if session is None:
            if local:  # workers run this interpreter (mapInArrow); an explicit setting wins
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
                os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
            self._warehouse = tempfile.mkdtemp(prefix="distillshield-spark-warehouse-")
            builder = SparkSession.builder.master(master).appName(app_name)
            settings = {
                "spark.sql.warehouse.dir": self._warehouse,
                "spark.ui.showConsoleProgress": "false",  # the CLI draws its own progress
                **runtime,
            }
            if local:
                settings.update(
                    {
                        "spark.ui.enabled": "false",
                        "spark.driver.host": "127.0.0.1",
                        "spark.driver.bindAddress": "127.0.0.1",
                    }
                )
            settings.update(extra)
            for key, value in settings.items():
                builder = builder.config(key, value)
            # a session already running in this process (a notebook's) is reused, not owned:
            # close() must not stop it, and its static settings stay as they are
            self._owns_session = SparkContext._active_spark_context is None
            try:
                session = builder.getOrCreate()
            except Exception as exc:  # no Java, bad master URL, ...
                shutil.rmtree(self._warehouse, ignore_errors=True)
                raise BackendError(f"could not start Spark (master {master!r}): {exc}. {_JAVA_HINT}") from exc
        # on a session started elsewhere, the runtime settings still apply (static ones cannot)
        for key, value in {**runtime, **extra}.items():
            if session.conf.get(key, None) != value and session.conf.isModifiable(key):
                session.conf.set(key, value)
        self.spark: SparkSession = session
        self._tables: dict[str, list[int]] = {}  # materialised table -> its cached RDD ids
        self._views: set[str] = set()
        # PySpark logs every failed statement with its stack trace; BackendError carries it
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    # ------------------------------------------------------------------ registration
    def register(self, name: str, source: str | Path | pa.Table) -> None:
        quote_name(name)  # refuse names that could smuggle SQL
        try:
            if isinstance(source, pa.Table):
                df = self.spark.createDataFrame(_to_spark(source))
            else:
                df = self._read_parquet(name, source)
        except BackendError:
            raise
        except Exception as exc:  # Spark's reason, with what was being registered
            what = "an Arrow table" if isinstance(source, pa.Table) else str(source)
            raise BackendError(f"cannot register {what} as {name!r}: {type(exc).__name__}: {exc}") from exc
        self._replace(name, df)

    def _read_parquet(self, name: str, source: str | Path) -> DataFrame:
        if is_uri(source):
            target = str(source)  # object storage / HDFS: Spark resolves it, unchanged
        else:
            path = Path(source)
            if path.is_dir():
                if not any(p.is_file() for p in path.rglob("*.parquet")):
                    raise BackendError(f"{path}: no Parquet files to register as {name!r}")
            elif not path.is_file():
                raise BackendError(f"{path}: not found (registering {name!r})")
            target = str(path)
        reader = (
            self.spark.read.option("mergeSchema", "true")  # union by column name, like DuckDB
            .option("recursiveFileLookup", "true")  # part files in sub-folders
            .option("pathGlobFilter", "*.parquet")
        )
        return reader.parquet(target)

    # A dataset root given as a URI (s3a://bucket/logs) is looked up through Hadoop's file
    # system API, never the local one; local roots are handled by the base class.
    def _table_source(self, root: str | Path, spec: TableSpec) -> str | Path:
        if not is_uri(root):
            return super()._table_source(root, spec)
        base = str(root).rstrip("/") + "/" + spec.name
        for candidate in (base + ".parquet", base):
            if self._uri_exists(candidate):
                return candidate
        raise BackendError(
            f"{spec.name}: no table found under {root} (looked for {base}.parquet and {base}/)"
        )

    def _table_columns(self, root: str | Path, spec: TableSpec, source: str | Path) -> set[str]:
        if not is_uri(root):
            return super()._table_columns(root, spec, source)
        return set(self._read_parquet(spec.name, source).columns)

    def _uri_exists(self, uri: str) -> bool:
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return bool(path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).exists(path))

    # ------------------------------------------------------------------ execution
    def _run(self, sql: str) -> pa.Table:
        statements = [cast(exp.Expression, s) for s in sqlglot.parse(sql, read="spark") if s is not None]
        if len(statements) == 1 and not isinstance(statements[0], exp.Create | exp.Drop):
            return self._collect(self.spark.sql(sql))  # the text as generated, not a round trip
        result = pa.table({})
        for stmt in statements:
            result = self._statement(stmt)
        return result

    def _statement(self, stmt: exp.Expression) -> pa.Table:
        if isinstance(stmt, exp.Create):
            self._create(stmt)
            return pa.table({})
        if isinstance(stmt, exp.Drop):
            self._drop(stmt)
            return pa.table({})
        return self._collect(self.spark.sql(stmt.sql(dialect="spark")))

    def _collect(self, df: DataFrame) -> pa.Table:
        if not df.columns:  # a command (SET, ...): run for its effect
            df.collect()
            return pa.table({})
        return _from_spark(df.toArrow())

    @staticmethod
    def _target(stmt: exp.Expression) -> str:
        target = stmt.this
        if not isinstance(target, exp.Table) or target.args.get("db") or target.args.get("catalog"):
            raise BackendError(f"spark backend: unsupported statement target {target.sql('spark')!r}")
        return str(target.name)

    def _exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _create(self, stmt: exp.Create) -> None:
        kind = str(stmt.args.get("kind") or "").upper()
        name = self._target(stmt)
        query = stmt.expression
        if kind not in ("TABLE", "VIEW") or not isinstance(query, exp.Query):
            raise BackendError(
                f"spark backend: only CREATE TABLE/VIEW ... AS SELECT, got {stmt.sql('spark')!r}"
            )
        if self._exists(name) and not stmt.args.get("replace"):
            if stmt.args.get("exists"):  # IF NOT EXISTS
                return
            raise BackendError(f"spark backend: {name!r} already exists")
        select = query.sql(dialect="spark")
        if kind == "VIEW":
            self._forget(name)
            self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {_ident(name)} AS {select}")
            self._views.add(name.lower())
            return
        # computed now and kept on the executors with its lineage cut; the RDDs it cached are
        # remembered so that replacing or dropping the table frees them
        before = self._persistent_rdds()
        df = self.spark.sql(select).localCheckpoint(eager=True)
        self._replace(name, df, sorted(self._persistent_rdds() - before))

    def _persistent_rdds(self) -> set[int]:
        try:
            return {int(k) for k in self.spark.sparkContext._jsc.getPersistentRDDs()}
        except Exception:  # never fail a statement over bookkeeping
            return set()

    def _replace(self, name: str, df: DataFrame, rdds: list[int] | None = None) -> None:
        self._forget(name)
        df.createOrReplaceTempView(name)
        if rdds:
            self._tables[name.lower()] = rdds
        self._views.add(name.lower())

    def _forget(self, name: str) -> None:
        """Free what a table of this name had cached (its view is replaced by the caller)."""
        rdds = self._tables.pop(name.lower(), [])
        if not rdds:
            return
        try:
            persistent = self.spark.sparkContext._jsc.getPersistentRDDs()
            for rid in rdds:
                rdd = persistent.get(rid)
                if rdd is not None:
                    rdd.unpersist(False)
        except Exception:  # the context cleaner frees them once unreferenced
            pass

    def _drop(self, stmt: exp.Drop) -> None:
        kind = str(stmt.args.get("kind") or "").upper()
        name = self._target(stmt)
        if kind not in ("TABLE", "VIEW"):
            raise BackendError(f"spark backend: only DROP TABLE/VIEW, got {stmt.sql('spark')!r}")
        if not self._exists(name):
            if stmt.args.get("exists"):
                return
            raise BackendError(f"spark backend: {kind.lower()} {name!r} does not exist")
        self._forget(name)
        self.spark.catalog.dropTempView(name)
        self._views.discard(name.lower())

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Free cached tables and drop the views this backend made; stop the session it started."""
        spark = getattr(self, "spark", None)
        if spark is None:
            return
        try:
            for name in list(self._tables):
                self._forget(name)
            for name in sorted(self._views):
                spark.catalog.dropTempView(name)
            if self._owns_session:
                spark.stop()
        finally:
            self._views.clear()
            self.spark = None  # type: ignore[assignment]
            if self._warehouse:
                shutil.rmtree(self._warehouse, ignore_errors=True)


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
