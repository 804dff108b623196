"""DuckDB and Spark run the same SQL to the same detections (issue 5, the Spark backend).

One module-scoped Spark session (``local[2]``, 4 shuffle partitions) serves every test. The
end-to-end comparison runs :func:`distillshield.detect.scan_tables` once per engine on the
small simulated dataset (tests/conftest.py) and compares what each step produced: the
behavioural fingerprint (``account_fingerprints``), the evidence edges (``account_edges``),
the graph features, the rule firings, the scores and the campaigns. Tolerances: 1e-9
absolute on features and edge weights (the same arithmetic in a different summation order),
1e-6 on model scores and novelty, exact on everything discrete (ids, flags, campaign
membership, edge evidence, rule firings).

Skipped when pyspark or a Java runtime is missing; scripts/test.sh installs Java, so it runs
in CI.
"""

from __future__ import annotations

import math
import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark", allow_module_level=True)

from distillshield.backends import BackendError, DuckDBBackend, transpile
from distillshield.backends._spark import REWRITES, SparkBackend
from distillshield.detect import scan_tables
from distillshield.detect.graph import GRAPH_COLUMNS
from distillshield.detect.scan import ScanResult
from distillshield.features import FINGERPRINT_COLUMNS
from distillshield.prepare import prepare
from distillshield.scoring.rules import evaluate_rules, load_rules

pytestmark = pytest.mark.spark

FEATURE_TOL = 1e-9
SCORE_TOL = 1e-6


# ------------------------------------------------------------------------------------ helpers
def _same(a: Any, b: Any, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return abs(x - y) <= tol
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    return bool(a == b)


def assert_tables_equal(
    duck: pa.Table, spark: pa.Table, key: str | list[str], tol: float, *, columns: list[str] | None = None
) -> None:
    """Same rows (matched on ``key``) and, column by column, the same values within ``tol``.

    Numbers compare within ``tol`` absolute (integers, decimals and floats alike: DuckDB sums
    integers to HUGEINT, Spark to BIGINT); everything else exactly. A failure names the first
    differing column and shows the differing rows: the key and both engines' values.
    """
    keys = [key] if isinstance(key, str) else list(key)
    cols = columns if columns is not None else duck.column_names
    absent = [c for c in cols if c not in spark.column_names]
    assert not absent, f"spark result lacks column(s) {absent}"
    order = [(k, "ascending") for k in keys]
    d = duck.sort_by(order).to_pylist()
    s = spark.sort_by(order).to_pylist()
    dk = [tuple(r[k] for k in keys) for r in d]
    sk = [tuple(r[k] for k in keys) for r in s]
    if dk != sk:
        only_d = sorted(set(dk) - set(sk))[:10]
        only_s = sorted(set(sk) - set(dk))[:10]
        raise AssertionError(
            f"different rows on {keys}: {len(d)} in duckdb, {len(s)} in spark; "
            f"only in duckdb {only_d}; only in spark {only_s}"
        )
    for col in cols:
        bad = [
            (k, a[col], b[col]) for k, a, b in zip(dk, d, s, strict=True) if not _same(a[col], b[col], tol)
        ]
        if bad:
            lines = "\n".join(
                f"  {dict(zip(keys, k, strict=True))}: duckdb={x!r} spark={y!r}" for k, x, y in bad[:10]
            )
            raise AssertionError(
                f"column {col!r} differs (tolerance {tol}) in {len(bad)} of {len(d)} rows; "
                f"first rows:\n{lines}"
            )


def test_assert_tables_equal_names_the_column_and_rows() -> None:
    duck = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "y": ["p", "q", "r"]})
    assert_tables_equal(
        duck,
        pa.table({"id": ["c", "b", "a"], "x": [3.0, 2.0 + 1e-12, 1.0], "y": ["r", "q", "p"]}),
        "id",
        1e-9,
    )
    spark = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.5, 3.0], "y": ["p", "q", "s"]})
    with pytest.raises(AssertionError, match=r"(?s)column 'x' differs.*'id': 'b'.*duckdb=2.0 spark=2.5"):
        assert_tables_equal(duck, spark, "id", 1e-9)
    with pytest.raises(AssertionError, match=r"only in spark \[\('d',\)\]"):
        assert_tables_equal(
            duck, pa.table({"id": ["a", "b", "d"], "x": [1.0, 2.0, 3.0], "y": ["p"] * 3}), "id", 0
        )


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def spark() -> Any:
    """The one Spark session of this module, inside a backend that owns (and stops) it."""
    backend = SparkBackend(master="local[2]", shuffle_partitions=4, app_name="distillshield-tests")
    yield backend
    backend.close()


@pytest.fixture()
def sb(spark: SparkBackend) -> Any:
    """A fresh backend on the shared session (what a notebook passing ``session=`` gets)."""
    backend = SparkBackend(session=spark.spark)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def prepared(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-data") / "data"
    shutil.copytree(small_dataset, out)
    prepare(out)
    return out


@pytest.fixture(scope="module")
def results(prepared: Path, spark: SparkBackend) -> dict[str, ScanResult]:
    with DuckDBBackend() as duck:
        d = scan_tables(prepared, backend=duck)
    with SparkBackend(session=spark.spark) as sparked:
        s = scan_tables(prepared, backend=sparked)
    return {"duckdb": d, "spark": s}


# ------------------------------------------------------------------------------- end to end
def test_fingerprints_match(results: dict[str, ScanResult]) -> None:
    cols = list(FINGERPRINT_COLUMNS)
    d, s = results["duckdb"].table, results["spark"].table
    assert d.num_rows > 100
    assert_tables_equal(d, s, "account_id", FEATURE_TOL, columns=cols)


def test_edges_match(results: dict[str, ScanResult]) -> None:
    d, s = results["duckdb"].edges, results["spark"].edges
    assert d.num_rows > 1000
    assert set(d.column("kind").to_pylist()) >= {"payment", "ip", "prefix", "metadata", "sync"}
    assert_tables_equal(d, s, ["kind", "src", "dst"], FEATURE_TOL)


def test_graph_features_match(results: dict[str, ScanResult]) -> None:
    cols = ["component", *GRAPH_COLUMNS]
    assert_tables_equal(
        results["duckdb"].table, results["spark"].table, "account_id", FEATURE_TOL, columns=cols
    )


def test_rule_firings_match(results: dict[str, ScanResult], spark: SparkBackend) -> None:
    d, s = results["duckdb"].table, results["spark"].table
    assert_tables_equal(d, s, "account_id", FEATURE_TOL, columns=["rule_score", "rules_fired"])
    assert sum(len(r) for r in d.column("rules_fired").to_pylist()) > 0
    # and the rule SQL itself, on one input table, through both engines
    rules = load_rules()
    fp = d.select(list(FINGERPRINT_COLUMNS))
    with DuckDBBackend() as duck, SparkBackend(session=spark.spark) as sparked:
        duck.register("fp", fp)
        sparked.register("fp", fp)
        fd, fs = evaluate_rules(duck, "fp", rules), evaluate_rules(sparked, "fp", rules)
    assert fd.num_rows > 0
    assert fd.equals(fs), "rule firings differ"


def test_scores_flags_and_campaigns_match(results: dict[str, ScanResult]) -> None:
    d, s = results["duckdb"], results["spark"]
    assert_tables_equal(
        d.accounts, s.accounts, "account_id", SCORE_TOL, columns=["score", "novelty", "campaign_share"]
    )
    assert_tables_equal(
        d.accounts, s.accounts, "account_id", 0, columns=["flagged", "campaign_id", "top_reasons"]
    )
    assert d.summary["accounts_flagged"] > 0 and d.campaigns
    assert {c["id"]: c["accounts"] for c in d.campaigns} == {c["id"]: c["accounts"] for c in s.campaigns}
    for dc, sc in zip(d.campaigns, s.campaigns, strict=True):  # the dossier, key by key
        for k in dc:
            assert _same(dc[k], sc[k], SCORE_TOL), (
                f"campaign {dc['id']} {k}: duckdb={dc[k]!r} spark={sc[k]!r}"
            )
    same = {k: v for k, v in d.summary.items() if k != "backend"}
    assert same == {k: v for k, v in s.summary.items() if k != "backend"}
    assert s.summary["backend"] == "spark"


# ------------------------------------------------------------------------------ the backend
def test_register_arrow_keeps_utc_timestamps_and_types(sb: SparkBackend) -> None:
    ts = [datetime(2026, 2, 2, 23, 59, 59, 500_000, tzinfo=UTC), datetime(2026, 2, 3, 0, 0, 1, tzinfo=UTC)]
    sb.register(
        "t",
        pa.table(
            {
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "n": pa.array([1, 2], pa.uint32()),  # Spark has no unsigned types
                "s": pa.array(["a", None], pa.large_string()),
            }
        ),
    )
    out = sb.query(
        "SELECT ts, n, s, epoch(ts) AS e, hour(ts) AS h, CAST(ts AS DATE) AS d, "
        "date_diff('microsecond', min(ts) OVER (), ts) AS us FROM t ORDER BY ts"
    )
    assert out.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert out.schema.field("s").type == pa.string() and out.schema.field("n").type == pa.int64()
    rows = out.to_pylist()
    assert [r["ts"] for r in rows] == ts
    assert rows[0]["e"] == pytest.approx(ts[0].timestamp(), abs=1e-6) and rows[0]["e"] % 1 == 0.5
    assert [r["h"] for r in rows] == [23, 0]
    assert [str(r["d"]) for r in rows] == ["2026-02-02", "2026-02-03"]
    assert [r["us"] for r in rows] == [0, 1_500_000]


def test_register_folder_unions_part_files_by_name(sb: SparkBackend, tmp_path: Path) -> None:
    folder = tmp_path / "tbl"
    (folder / "sub").mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"b": ["z"], "c": [1.5]}), folder / "sub" / "part-1.parquet")
    (folder / "notes.txt").write_text("not parquet")
    sql = "SELECT a, b, c FROM tbl ORDER BY b"
    with DuckDBBackend() as duck:
        duck.register("tbl", folder)
        expected = duck.query(sql).to_pylist()
    sb.register("tbl", folder)
    assert (
        sb.query(sql).to_pylist()
        == expected
        == [
            {"a": 1, "b": "x", "c": None},
            {"a": 2, "b": "y", "c": None},
            {"a": None, "b": "z", "c": 1.5},
        ]
    )
    sb.register("one", "file://" + str(folder / "part-0.parquet"))  # a URI passes through as is
    assert sb.query("SELECT count(*) AS n FROM one").to_pylist() == [{"n": 2}]
    with pytest.raises(BackendError, match="not found"):
        sb.register("x", tmp_path / "missing")
    with pytest.raises(BackendError, match=r"cannot register s3a://bucket/logs/exchanges"):  # Spark tried it
        sb.register("x", "s3a://bucket/logs/exchanges")


def test_register_table_finds_a_dataset_behind_a_uri(sb: SparkBackend, prepared: Path) -> None:
    """A dataset root given as a URI is discovered through Hadoop's file system, not os.path."""
    from distillshield.schema import ACCOUNTS, EXCHANGES

    sb.register_table("ex_uri", "file://" + str(prepared), EXCHANGES)  # a folder of part files
    sb.register_table("acc_uri", "file://" + str(prepared), ACCOUNTS)  # a single NAME.parquet
    with DuckDBBackend() as duck:
        duck.register_table("ex", prepared, EXCHANGES)
        n = duck.query("SELECT count(*) AS n, count(DISTINCT account_id) AS a FROM ex").to_pylist()
        schema = duck.query("SELECT * FROM ex LIMIT 0").schema
    assert sb.query("SELECT count(*) AS n, count(DISTINCT account_id) AS a FROM ex_uri").to_pylist() == n
    assert sb.query("SELECT * FROM ex_uri LIMIT 0").schema.names == schema.names
    assert sb.query("SELECT count(*) AS n FROM acc_uri").column("n")[0].as_py() > 100
    with pytest.raises(BackendError, match="no table found"):
        sb.register_table("nope", "file://" + str(prepared / "missing"), EXCHANGES)


def test_tables_views_and_drops(sb: SparkBackend) -> None:
    sb.register("src", pa.table({"x": [3, 1, 2]}))
    sb.execute("CREATE OR REPLACE VIEW v AS SELECT x FROM src WHERE x > 1")
    sb.execute("CREATE OR REPLACE TABLE m AS SELECT * FROM v ORDER BY x")
    sb.execute("CREATE OR REPLACE VIEW v AS SELECT * FROM m")  # a view over a table made from it
    sb.register("src", pa.table({"x": [10]}))  # views bind late; the table is a copy
    assert sb.query("SELECT x FROM v ORDER BY x").column("x").to_pylist() == [2, 3]
    with pytest.raises(BackendError, match="already exists"):
        sb.execute("CREATE TABLE m AS SELECT 1 AS x")
    sb.execute("DROP TABLE m")
    sb.execute("DROP TABLE IF EXISTS m")
    with pytest.raises(BackendError, match="does not exist"):
        sb.execute("DROP TABLE m")
    with pytest.raises(BackendError, match=r"(?s)nope.*SELECT nope FROM src"):
        sb.query("SELECT nope FROM src")


def test_campaign_hub_selection_runs_on_spark(sb: SparkBackend) -> None:
    from test_detect_units import check_hub_values

    check_hub_values(sb)


def test_rewrites_agree_with_duckdb(sb: SparkBackend) -> None:
    """Every entry of the rewrite table, on values where Spark's own reading would differ."""
    t = pa.table(
        {
            "g": ["a", "a", "a", "a", "b"],
            "x": [1, 2, 3, 4, 7],
            "s": ["p", None, "q", "r", "p"],
            "ts": pa.array(
                [
                    datetime(2026, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC),
                    datetime(2026, 1, 1, 0, 0, 1, 100_000, tzinfo=UTC),
                    datetime(2026, 1, 1, 23, 59, 0, tzinfo=UTC),
                    datetime(2026, 1, 2, 0, 1, 0, tzinfo=UTC),
                    datetime(2026, 1, 3, 12, 0, 0, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    sql = """
        SELECT g,
               sum(epoch(ts)) AS epoch_sum,
               max(date_diff('microsecond', TIMESTAMPTZ '2026-01-01 00:00:00+00', ts)) AS d_us,
               max(date_diff('second', TIMESTAMPTZ '2026-01-01 00:00:00.950+00', ts)) AS d_s,
               max(date_diff('hour', TIMESTAMPTZ '2026-01-01 00:59:00+00', ts)) AS d_h,
               max(date_diff('day', TIMESTAMPTZ '2026-01-01 23:00:00+00', ts)) AS d_d,
               avg(CASE WHEN x > 1 THEN 1.0 ELSE 0.0 END) AS share,
               sum(x) / 3.0 AS third,
               max(x) / 86400000000.0 AS tiny,
               quantile_disc(x, 0.26) AS qd,
               quantile_cont(x, 0.3) AS qc,
               median(x) AS med,
               array_sort(list(s)) AS ss,
               count(*) FILTER (WHERE s IS NOT NULL) AS n_s,
               max(log(x * 10)) AS lg,
               min(md5(s || chr(31))) AS h,
               CAST(max(x) AS UINTEGER) AS u,
               max(CAST(x AS VARCHAR)) AS v,
               max((hour(ts) + minute(ts) / 60.0 + 5.5 + 24) % 24) AS local
        FROM t GROUP BY g ORDER BY g
    """
    with DuckDBBackend() as duck:
        duck.register("t", t)
        expected = duck.query(sql)
    sb.register("t", t)
    got = sb.query(sql)
    assert_tables_equal(expected, got, "g", 1e-9)
    assert expected.schema.field("share").type == got.schema.field("share").type == pa.float64()
    assert len(REWRITES) >= 10
    assert "UNIX_MICROS" in transpile("SELECT epoch(ts) FROM t", "spark")
