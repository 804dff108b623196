"""Account fingerprints: hand-computed values on a tiny dataset, directions on a simulated one."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillshield.backends import Backend, get_backend, transpile
from distillshield.errors import DistillShieldError
from distillshield.features import (
    FINGERPRINT_COLUMNS,
    account_fingerprints,
    fingerprint_sql,
    register_dataset,
)
from distillshield.features.stats import STATS_SCHEMAS, StatsNames, merge_statement, stats_statements
from distillshield.schema import ACCOUNT_LABELS, read_table

T0 = datetime(2026, 2, 1, 6, 0, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _tiny_backend() -> Backend:
    """Three accounts with traffic and one without; expected values are worked out in the tests."""
    ex = pa.table(
        {
            "request_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
            "account_id": ["a1", "a1", "a1", "a1", "a2", "a3", "a3"],
            # a1: gaps 10 s, 10 s, 20 s; r1 is 23:59:50 in the US (UTC-6), the others after midnight
            "ts": pa.array(
                [_at(-10), _at(0), _at(10), _at(30), _at(2 * 86400), _at(3600), _at(86400 - 10)],
                TS,
            ),
            "model": ["m1", "m1", "m2", "m1", "m1", "m2", "m2"],
            "ip": ["1.1.1.1", "1.1.1.2", "2.2.2.2", "1.1.1.1", "3.3.3.3", "4.4.4.4", "4.4.4.4"],
            "user_agent": ["ua1", "ua1", "ua2", None, "ua1", "ua3", "ua3"],
            "tls_fingerprint": ["x", "x", "x", "x", "y", "z", "z"],
            "conversation_id": ["c1", "c1", None, "c2", None, None, None],
            "n_messages": pa.array([1, 3, 1, 1, 1, 1, 1], pa.int32()),
            "input_tokens": pa.array([100, 100, 100, 100, 10, 10, 10], pa.int32()),
            "output_tokens": pa.array([50, 95, 10, 200, 10, 10, 10], pa.int32()),
            "reasoning_tokens": pa.array([None, 0, 5, 7, None, None, None], pa.int32()),
            "max_tokens": pa.array([None, 100, 100, None, None, None, None], pa.int32()),
            "metadata": pa.array([None] * 7, pa.string()),
        }
    )
    sig = pa.table(
        {
            "request_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
            "cot_elicit": [
                "expose_reasoning",
                "step_by_step",
                "none",
                "expose_reasoning",
                "none",
                "none",
                "none",
            ],
            "capability": ["coding", "coding", "math_reasoning", None, None, "coding", "coding"],
            "template_id": ["t1", "t1", "t2", None, "t9", "t8", "t8"],
            "template_family": ["f1", "f1", "f2", None, "f1", "f2", "f2"],
        }
    )
    enr = pa.table(
        {
            "request_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
            "ip_prefix": [
                "1.1.1.0/24",
                "1.1.1.0/24",
                "2.2.2.0/24",
                "1.1.1.0/24",
                "3.3.3.0/24",
                "4.4.4.0/24",
                "4.4.4.0/24",
            ],
            "asn_name": ["A", "A", "B", "A", "C", "D", "D"],
            "ip_country": ["US", "US", "DE", None, "FR", "JP", "JP"],
            "is_hosting": [True, False, None, False, False, True, True],
            "is_vpn": [False, False, False, True, False, False, False],
        }
    )
    acc = pa.table(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "created_at": pa.array([_at(-10 - 2 * 86400), _at(0), _at(0), _at(0)], TS),
            "pathway": ["education", "self_serve", "startup_program", "enterprise"],
            "verified": [False, True, True, True],
            "declared_country": ["us", None, "XX", "DE"],
        }
    )
    acc_enr = pa.table(
        {
            "account_id": ["a1", "a3"],
            "email_domain_class": ["disposable", "corporate"],
            # the whole dataset's shares, as prepare computes them: not what a window reads
            "declared_country_share": [0.125, 0.5],
        }
    )
    rel = pa.table({"model": ["m2", "m0"], "released_at": pa.array([_at(5), _at(-100 * 86400)], TS)})
    backend = get_backend()
    for name, table in [
        ("ex", ex),
        ("sig", sig),
        ("enr", enr),
        ("acc", acc),
        ("acc_enr", acc_enr),
        ("rel", rel),
    ]:
        backend.register(name, table)
    return backend


def _rows(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["account_id"]: r for r in table.to_pylist()}


def test_tiny_dataset_hand_computed() -> None:
    out = account_fingerprints(_tiny_backend())
    assert out.column_names == list(FINGERPRINT_COLUMNS)
    rows = _rows(out)
    assert list(rows) == ["a1", "a2", "a3"]  # a4 sent nothing: no row
    a1, a2, a3 = rows["a1"], rows["a2"], rows["a3"]
    approx = pytest.approx

    assert a1["n_requests"] == 4 and a1["active_days"] == 1 and a1["requests_per_active_day"] == 4.0
    assert a1["input_tokens"] == 400 and a1["output_tokens"] == 355
    assert a1["output_input_ratio"] == approx(355 / 400)
    assert a1["max_token_saturation_share"] == approx(0.5)  # r2 95 >= 0.95*100; r3 10 < 95
    assert a1["reasoning_share"] == approx(0.5)  # r3, r4
    assert a1["cot_expose_share"] == approx(0.5) and a1["step_by_step_share"] == approx(0.25)
    h = -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    assert a1["capability_entropy"] == approx(h) and a1["top_capability_share"] == approx(2 / 3)
    assert a1["distinct_templates"] == 2
    assert a1["template_coverage"] == approx(2 / 3) and a1["top_template_share"] == approx(2 / 3)
    assert a1["template_sharing"] == 1  # top family f1, also used by a2
    assert a1["multi_turn_share"] == approx(0.25) and a1["conversations"] == 2
    assert a1["interarrival_cv"] == approx(math.sqrt(2) / 4)  # gaps 10, 10, 20
    assert a1["hour_entropy"] == approx(-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)))
    assert a1["night_share_local"] == approx(0.75)
    assert a1["post_release_new_model_share"] == approx(0.5)  # r3 (m2), r4 (m1) in the window
    network = ("distinct_ips", "distinct_prefixes", "distinct_asns", "distinct_countries")
    assert [a1[c] for c in network] == [3, 2, 2, 2]
    assert a1["ips_per_request"] == approx(0.75)
    assert a1["hosting_share"] == approx(1 / 3) and a1["vpn_share"] == approx(0.25)
    assert a1["distinct_user_agents"] == 2 and a1["distinct_tls_fingerprints"] == 1
    assert a1["account_age_days"] == approx(2.0)
    assert (a1["pathway"], a1["verified"], a1["email_domain_class"]) == ("education", False, "disposable")
    # from the window's own located requests (r1, r2 US; r3 DE; r4 unlocated), not from
    # derived/accounts, which covers later requests too: a replay step must not read them
    assert a1["declared_country_share"] == approx(2 / 3)

    # one request: no gaps, no capability, no declared country, nothing in a release window
    assert a2["interarrival_cv"] is None and a2["capability_entropy"] is None
    assert a2["night_share_local"] is None and a2["post_release_new_model_share"] is None
    assert a2["max_token_saturation_share"] is None and a2["email_domain_class"] is None
    assert a2["template_sharing"] == 1  # f1, also a1's
    # two requests on two days, both on the new model inside its window; unknown country
    assert a3["active_days"] == 2 and a3["requests_per_active_day"] == 1.0
    assert a3["interarrival_cv"] is None and a3["night_share_local"] is None
    assert a3["post_release_new_model_share"] == 1.0
    assert a3["capability_entropy"] == 0.0 and a3["top_capability_share"] == 1.0
    assert a3["template_sharing"] == 1  # f2, also a1's (not its top family)
    assert a3["declared_country_share"] == 0.0  # declared XX, both requests from JP
    assert a2["declared_country_share"] is None  # nothing declared


def test_without_releases_the_pivot_is_null() -> None:
    out = account_fingerprints(_tiny_backend(), releases=None)
    assert out.column_names == list(FINGERPRINT_COLUMNS)
    assert out.column("post_release_new_model_share").null_count == out.num_rows


@pytest.mark.parametrize("releases", ["rel", None])
def test_sql_transpiles_to_spark(releases: str | None) -> None:
    for sql in stats_statements(releases=releases).values():
        assert "SELECT" in transpile(sql, "spark")
    assert "SELECT" in transpile(fingerprint_sql(), "spark")
    custom = fingerprint_sql(stats=StatsNames(vals="v1", chunks="c1"), accounts="a1")
    assert '"v1"' in custom and '"c1"' in custom and '"a1"' in custom
    transpile(custom, "spark")
    for key in STATS_SCHEMAS:
        assert "SELECT" in transpile(merge_statement(key, "st_files"), "spark")
    named = stats_statements(exchanges="x1", signals="s1", enrichment="e1", releases=releases)
    # the join is one statement; the statistics read its result, not the exchanges
    assert '"x1"' in named["rows"] and '"x1"' not in named["vals"]
    assert list(stats_statements(tables=("vals",))) == ["rows", "vals"]


def test_rejects_table_names_that_are_not_names() -> None:
    with pytest.raises(DistillShieldError):
        stats_statements(exchanges='ex"; DROP TABLE x; --')
    with pytest.raises(DistillShieldError):
        fingerprint_sql(accounts='acc"; DROP TABLE x; --')


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default scenario at 5 % scale, prepared (signals, enrichment, templates)."""
    from distillshield.prepare import prepare
    from distillshield.simulate import load_scenario, simulate

    out = tmp_path_factory.mktemp("features") / "data"
    simulate(load_scenario("default"), out, scale=0.05)
    prepare(out)
    return out


@pytest.fixture(scope="module")
def simulated(prepared: Path) -> pa.Table:
    backend = get_backend()
    names = register_dataset(backend, prepared)
    assert names["releases"] == "rel"
    table = account_fingerprints(backend, **names)  # type: ignore[arg-type]
    labels = read_table(prepared, ACCOUNT_LABELS, columns=["account_id", "persona"])
    return table.join(labels, "account_id")


def _mean(table: pa.Table, persona: str, column: str) -> float:
    sub = table.filter(pc.equal(table.column("persona"), persona)).column(column)
    mean = pc.mean(sub).as_py()
    assert mean is not None, f"no {column} for {persona}"
    return float(mean)


def test_simulated_one_row_per_active_account(simulated: pa.Table, prepared: Path) -> None:
    ex = pq.read_table(prepared / "exchanges", columns=["account_id"])
    assert simulated.num_rows == len(pc.unique(ex.column("account_id")))
    assert len(pc.unique(simulated.column("account_id"))) == simulated.num_rows
    for name in FINGERPRINT_COLUMNS:
        if name.endswith("_share"):
            col = simulated.column(name)
            assert pc.min(col).as_py() >= 0.0 and pc.max(col).as_py() <= 1.0, name


def test_simulated_directions(simulated: pa.Table) -> None:
    # campaign A harvests reasoning traces; individual developers do not ask for them
    assert _mean(simulated, "attack.cot_harvest", "cot_expose_share") > _mean(
        simulated, "legit.individual_developer", "cot_expose_share"
    )
    # hydra clusters rotate proxies: more addresses per request than any legitimate persona
    hydra = _mean(simulated, "attack.hydra_reseller", "ips_per_request")
    legit = simulated.filter(pc.starts_with(simulated.column("persona"), "legit."))
    assert hydra > float(pc.mean(legit.column("ips_per_request")).as_py())
    assert hydra > _mean(simulated, "legit.individual_developer", "ips_per_request")
    # campaign C pivots to the new model within a day; SaaS backends stay pinned
    assert _mean(simulated, "attack.agentic_coding_pivot", "post_release_new_model_share") > _mean(
        simulated, "legit.saas_backend", "post_release_new_model_share"
    )


def test_register_dataset_requires_prepared_tables(prepared: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("exchanges", "accounts.parquet"):
        src = prepared / name
        (bare / name).symlink_to(src, target_is_directory=src.is_dir())
    with pytest.raises(DistillShieldError, match="prepare"):
        register_dataset(get_backend(), bare)
