"""Detection rules as data: loading, linting, sample checks and evaluation (scoring/rules.py)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
import yaml

from distillshield.backends import DuckDBBackend
from distillshield.errors import DistillShieldError
from distillshield.features.account import FINGERPRINT_COLUMNS
from distillshield.scoring.rules import (
    FINGERPRINT_TYPES,
    FIRINGS_SCHEMA,
    Rule,
    RuleError,
    check_samples,
    evaluate_rules,
    lint,
    load_rules,
    rules_sql,
    shipped_rules_dir,
)


def _rule(**overrides: Any) -> Rule:
    """A valid rule, with fields replaced as a test needs."""
    data: dict[str, Any] = {
        "id": "test-rule",
        "title": "t",
        "description": "d",
        "severity": "medium",
        "condition": "cot_expose_share >= 0.2 AND n_requests >= 50",
        "weight": 0.5,
        "reason": "cot_harvesting",
        "lookalikes": "l",
        "samples": {
            "positive": [{"cot_expose_share": 0.5, "n_requests": 100}],
            "negative": [{"cot_expose_share": 0.0, "n_requests": 100}],
        },
    }
    data.update(overrides)
    return Rule.model_validate(data)


def _codes(rules: list[Rule]) -> list[str]:
    return [issue.code for issue in lint(rules)]


def _fingerprints(rows: list[dict[str, Any]]) -> pa.Table:
    """A full-width fingerprint table: the given values, nulls everywhere else."""
    return pa.table(
        {name: pa.array([r.get(name) for r in rows], type=t) for name, t in FINGERPRINT_TYPES.items()}
    )


# --- the shipped set -------------------------------------------------------------------------


def test_shipped_rules_load_lint_clean_and_samples_behave() -> None:
    rules = load_rules()
    assert 6 <= len(rules) <= 10
    assert lint(rules) == []
    assert check_samples(rules, DuckDBBackend()) == []


def test_shipped_rule_files_are_named_by_id_and_ship_as_package_data() -> None:
    files = sorted(p.name for p in (importlib.resources.files("distillshield.scoring") / "rules").iterdir())
    ids = sorted(f"{r.id}.yaml" for r in load_rules())
    assert [f for f in files if f.endswith(".yaml")] == ids
    assert shipped_rules_dir().is_dir()


def test_shipped_rules_are_portable_to_spark() -> None:
    sql = rules_sql("fp", load_rules())
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "UNION ALL" in spark


def test_fingerprint_types_cover_exactly_the_fingerprint_columns() -> None:
    assert list(FINGERPRINT_TYPES) == list(FINGERPRINT_COLUMNS)


# --- loading -----------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_load_rules_reads_files_and_directories_in_sorted_order(tmp_path: Path) -> None:
    base = _rule().model_dump(mode="json")
    _write(tmp_path, "b.yaml", {**base, "id": "b-rule"})
    _write(tmp_path, "a.yaml", {**base, "id": "a-rule"})
    assert [r.id for r in load_rules([tmp_path])] == ["a-rule", "b-rule"]
    assert [r.id for r in load_rules([tmp_path / "b.yaml"])] == ["b-rule"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"thresold": 3}, "thresold"),
        ({"samples": {"positive": [], "negative": [], "neutral": []}}, "samples.neutral"),
        ({"severity": "critical"}, "severity"),
        ({"weight": "0.5"}, "weight"),
        ({"id": "Not A Slug"}, "id"),
        ({"reason": "Has Spaces"}, "reason"),
    ],
)
def test_load_rules_rejects_bad_fields_naming_file_and_field(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    path = _write(tmp_path, "bad.yaml", {**_rule().model_dump(mode="json"), **change})
    with pytest.raises(RuleError) as err:
        load_rules([path])
    assert str(path) in str(err.value)
    assert f"field {field}" in str(err.value)


def test_load_rules_rejects_missing_field_non_mapping_and_missing_path(tmp_path: Path) -> None:
    data = _rule().model_dump(mode="json")
    del data["condition"]
    with pytest.raises(RuleError, match="field condition"):
        load_rules([_write(tmp_path, "a.yaml", data)])
    with pytest.raises(RuleError, match="one mapping"):
        load_rules([_write(tmp_path, "b.yaml", [1, 2])])
    with pytest.raises(RuleError, match="no such rule file"):
        load_rules([tmp_path / "absent.yaml"])


def test_rules_are_immutable() -> None:
    rule = _rule()
    with pytest.raises(ValueError, match="frozen"):
        rule.weight = 0.9


# --- the linter catches each kind of defect ---------------------------------------------------


def test_valid_rule_lints_clean() -> None:
    assert lint([_rule()]) == []


def test_lint_duplicate_ids() -> None:
    assert _codes([_rule(), _rule()]) == ["duplicate-id"]


@pytest.mark.parametrize(
    "condition",
    [
        "cot_expose_share >= AND",  # does not parse
        "n_requests + 1",  # not boolean
        "n_requests > (SELECT max(n_requests) FROM fp)",  # sub-query
    ],
)
def test_lint_invalid_conditions(condition: str) -> None:
    assert "condition-invalid" in _codes([_rule(condition=condition)])


@pytest.mark.parametrize(
    "condition", ["n_request >= 50", "fp.n_requests >= 50", "n_requests >= 50 AND exchanges_total > 1"]
)
def test_lint_unknown_or_qualified_columns(condition: str) -> None:
    assert _codes([_rule(condition=condition)]) == ["unknown-column"]


@pytest.mark.parametrize(
    "condition",
    [
        "my_udf(n_requests) > 1",  # unknown function: passed through, may not exist on Spark
        "list_has_any([1], [2]) AND n_requests > 1",  # becomes `&&`, which Spark cannot read
    ],
)
def test_lint_conditions_not_portable_to_spark(condition: str) -> None:
    assert _codes([_rule(condition=condition)]) == ["not-transpilable"]


def test_lint_missing_samples() -> None:
    issues = lint([_rule(samples={"positive": [], "negative": []})])
    assert [(i.code, i.message) for i in issues] == [
        ("missing-samples", "no positive sample"),
        ("missing-samples", "no negative sample"),
    ]


@pytest.mark.parametrize(
    "row",
    [
        {"n_request": 100},  # unknown column
        {"n_requests": "many"},  # string in an integer column
        {"n_requests": 1.5},  # float in an integer column
        {"verified": 1},  # integer in a boolean column
        {"cot_expose_share": True},  # boolean in a double column
        {"pathway": 3},  # integer in a string column
    ],
)
def test_lint_bad_sample_rows(row: dict[str, Any]) -> None:
    rule = _rule(samples={"positive": [{"cot_expose_share": 0.5, "n_requests": 100}], "negative": [row]})
    issues = lint([rule])
    assert [i.code for i in issues] == ["bad-sample"]
    assert "negative sample 0" in issues[0].message


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5])
def test_lint_weight_out_of_range(weight: float) -> None:
    assert _codes([_rule(weight=weight)]) == ["weight-out-of-range"]


def test_lint_issue_names_rule_and_code() -> None:
    (issue,) = lint([_rule(weight=2.0)])
    assert str(issue).startswith("test-rule: [weight-out-of-range]")


# --- sample checks ---------------------------------------------------------------------------


def test_check_samples_reports_misfires_both_ways() -> None:
    rule = _rule(
        samples={
            "positive": [{"cot_expose_share": 0.5, "n_requests": 100}, {"cot_expose_share": 0.1}],
            "negative": [{"cot_expose_share": 0.0}, {"cot_expose_share": 0.9, "n_requests": 60}],
        }
    )
    issues = check_samples([rule], DuckDBBackend())
    assert [(i.code, i.message) for i in issues] == [
        ("sample-misfire", "positive sample 1 does not fire"),
        ("sample-misfire", "negative sample 1 fires"),
    ]


def test_check_samples_reports_unmaterialisable_samples_and_failing_sql() -> None:
    bad_type = _rule(samples={"positive": [{"n_requests": "many"}], "negative": [{}]})
    bad_sql = _rule(id="bad-sql", condition="n_requests >= 'x' + 1")
    issues = check_samples([bad_type, bad_sql], DuckDBBackend())
    assert [(i.rule_id, i.code) for i in issues] == [
        ("test-rule", "sample-error"),
        ("bad-sql", "sample-error"),
    ]


# --- evaluation ------------------------------------------------------------------------------


def test_evaluate_rules_returns_every_firing() -> None:
    backend = DuckDBBackend()
    backend.register(
        "fp",
        _fingerprints(
            [
                # harvester: CoT exposure at volume, rotating proxies abroad
                {
                    "account_id": "acct-harvest",
                    "n_requests": 500,
                    "cot_expose_share": 0.6,
                    "distinct_prefixes": 40,
                    "ips_per_request": 0.5,
                    "declared_country_share": 0.0,
                },
                # benchmark researcher: heavy step-by-step, one office network
                {
                    "account_id": "acct-bench",
                    "n_requests": 5000,
                    "step_by_step_share": 0.95,
                    "cot_expose_share": 0.0,
                    "distinct_prefixes": 1,
                    "ips_per_request": 0.0002,
                    "declared_country_share": 1.0,
                },
                # farmed sign-up: abused pathway, throwaway address, unverified, used at once
                {
                    "account_id": "acct-farm",
                    "n_requests": 3,
                    "pathway": "education",
                    "email_domain_class": "disposable",
                    "verified": False,
                    "account_age_days": 0.2,
                },
                # nothing measured: nulls never fire
                {"account_id": "acct-empty"},
            ]
        ),
    )
    rules = load_rules()
    by_id = {r.id: r for r in rules}
    got = evaluate_rules(backend, "fp", rules)
    assert got.schema == FIRINGS_SCHEMA
    assert got.to_pylist() == [
        {
            "account_id": "acct-farm",
            "rule_id": "abused-pathway-throwaway",
            "reason": by_id["abused-pathway-throwaway"].reason,
            "weight": by_id["abused-pathway-throwaway"].weight,
        },
        {
            "account_id": "acct-harvest",
            "rule_id": "cot-expose-at-volume",
            "reason": "cot_harvesting",
            "weight": by_id["cot-expose-at-volume"].weight,
        },
        {
            "account_id": "acct-harvest",
            "rule_id": "hydra-ip-rotation",
            "reason": "ip_rotation_country_mismatch",
            "weight": by_id["hydra-ip-rotation"].weight,
        },
    ]


def test_evaluate_rules_with_no_rules_or_no_firing_is_empty_with_schema() -> None:
    backend = DuckDBBackend()
    backend.register("fp", _fingerprints([{"account_id": "a", "n_requests": 1}]))
    assert evaluate_rules(backend, "fp", []).schema == FIRINGS_SCHEMA
    none = evaluate_rules(backend, "fp", [_rule()])
    assert none.num_rows == 0
    assert none.schema == FIRINGS_SCHEMA


def test_evaluate_rules_works_on_a_narrow_table() -> None:
    """A table with only the columns the rules name is enough (the engine binds by name)."""
    backend = DuckDBBackend()
    backend.register(
        "fp",
        pa.table({"account_id": ["a", "b"], "n_requests": [100, 100], "cot_expose_share": [0.5, 0.1]}),
    )
    assert evaluate_rules(backend, "fp", [_rule()]).column("account_id").to_pylist() == ["a"]


def test_rules_sql_refuses_an_unsafe_table_name() -> None:
    with pytest.raises(DistillShieldError, match="invalid table name"):
        rules_sql('fp"; DROP TABLE x; --', [_rule()])
