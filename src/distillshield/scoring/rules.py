"""Detection rules as data: YAML files over the per-account fingerprint (docs/rules.md).

Why data and not code: a threat-intel engineer must be able to read what fires and why,
change a threshold in review, and prove with sample rows that a change still catches what
it should and spares the look-alikes it names (pySigma / panther-analysis). A rule is a
boolean SQL condition over the columns of
:data:`~distillshield.features.account.FINGERPRINT_COLUMNS`, so it runs inside whatever
engine holds the fingerprints (DuckDB here, Spark after sqlglot transpiles it) and never
pulls rows into Python.

    rules = load_rules()                      # the shipped set (package data)
    assert not lint(rules) and not check_samples(rules, backend)
    firings = evaluate_rules(backend, "fp", rules)   # account_id, rule_id, reason, weight

A rule fires only when its condition is TRUE: a null feature (not measurable for that
account) never fires a rule, which keeps rules conservative on sparse data.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distillshield._yaml import read_yaml_mapping
from distillshield.backends import Backend, BackendError, quote_name
from distillshield.errors import DistillShieldError
from distillshield.scoring._rules_lint import (
    DEFAULT_VALIDATORS,
    FINGERPRINT_TYPES,
    WEIGHT_RANGE,
    ConditionColumnsKnown,
    ConditionParses,
    ConditionTranspiles,
    LintIssue,
    RuleValidator,
    SampleColumnsKnown,
    SamplesPresent,
    UniqueIds,
    WeightInRange,
    lint,
)

__all__ = [
    "DEFAULT_VALIDATORS",
    "FINGERPRINT_TYPES",
    "FIRINGS_SCHEMA",
    "WEIGHT_RANGE",
    "ConditionColumnsKnown",
    "ConditionParses",
    "ConditionTranspiles",
    "LintIssue",
    "Rule",
    "RuleError",
    "RuleValidator",
    "SampleColumnsKnown",
    "Samples",
    "SamplesPresent",
    "UniqueIds",
    "WeightInRange",
    "check_samples",
    "evaluate_rules",
    "lint",
    "load_rules",
    "rules_sql",
    "shipped_rules_dir",
]

#: Schema of :func:`evaluate_rules`' result: one row per (account, rule that fired).
FIRINGS_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
    ]
)

_SLUG = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
_REASON = r"^[a-z][a-z0-9_]*$"

SampleRow = dict[str, str | bool | int | float | None]


class RuleError(DistillShieldError):
    """A rule file cannot be read or does not fit the rule model (names the file and field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Samples(_Strict):
    """Partial fingerprint rows (column → value; unspecified columns are null)."""

    # YAML gives lists; tuples keep a frozen rule immutable all the way down.
    positive: tuple[SampleRow, ...] = Field(default=(), strict=False)
    negative: tuple[SampleRow, ...] = Field(default=(), strict=False)


class Rule(_Strict):
    """One detection. Structure is enforced here; semantics (SQL, columns, weight range,
    sample presence) by :func:`lint`, so a bad rule is reported with every defect at once."""

    id: str = Field(pattern=_SLUG, description="stable slug; appears in firings and dashboards")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1, description="why this behaviour indicates distillation")
    severity: Literal["low", "medium", "high"]
    condition: str = Field(min_length=1, description="boolean SQL (DuckDB dialect) over fingerprint columns")
    weight: float = Field(description="contribution to the account's evidence score")
    reason: str = Field(pattern=_REASON, description="short code shown in top_reasons")
    lookalikes: str = Field(min_length=1, description="legitimate personas that may trip it, and why keep it")
    samples: Samples


def shipped_rules_dir() -> Path:
    """The directory of rules shipped inside the package (``distillshield/scoring/rules``)."""
    return Path(str(importlib.resources.files("distillshield.scoring") / "rules"))


def _rule_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.is_file():
            files.append(p)
        else:
            raise RuleError(f"{p}: no such rule file or directory")
    return files


def _load_file(path: Path) -> Rule:
    data = read_yaml_mapping(path, RuleError, "rule", "a rule file holds one mapping")
    try:
        return Rule.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise RuleError(f"{path}: {problems}") from exc


def load_rules(paths: Iterable[str | Path] | None = None) -> list[Rule]:
    """Rules from YAML files (one rule per file) or directories of them; ``None``: the shipped set.

    Files are read in sorted order within a directory, so the result is deterministic.
    Unknown keys, wrong types and missing fields raise :class:`RuleError` naming the file
    and the field.
    """
    files = _rule_files([shipped_rules_dir()] if paths is None else paths)
    return [_load_file(f) for f in files]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rule_select(rule: Rule, table: str) -> str:
    return (
        f"SELECT CAST(account_id AS VARCHAR) AS account_id, {_literal(rule.id)} AS rule_id, "
        f"{_literal(rule.reason)} AS reason, CAST({float(rule.weight)!r} AS DOUBLE) AS weight "
        f"FROM {table} WHERE ({rule.condition})"
    )


def rules_sql(fingerprints_table_name: str, rules: Sequence[Rule]) -> str:
    """One statement (reference dialect): the UNION ALL of each rule's firings, ordered."""
    if not rules:
        raise DistillShieldError("rules_sql needs at least one rule")
    table = quote_name(fingerprints_table_name)
    body = "\nUNION ALL\n".join(_rule_select(r, table) for r in rules)
    return f"SELECT * FROM (\n{body}\n) AS firings ORDER BY account_id, rule_id"


def evaluate_rules(backend: Backend, fingerprints_table_name: str, rules: Sequence[Rule]) -> pa.Table:
    """Every (account, rule) where the rule's condition is TRUE, as :data:`FIRINGS_SCHEMA`.

    One statement for the whole set (a UNION ALL), run by ``backend`` on the registered
    fingerprint table, so the engine scans it once per rule without a round trip each.
    Rules are assumed linted; a failing condition raises :class:`BackendError` with the SQL.
    """
    if not rules:
        return FIRINGS_SCHEMA.empty_table()
    result = backend.query(rules_sql(fingerprints_table_name, rules))
    return pa.Table.from_arrays(
        [result.column(f.name).cast(f.type) for f in FIRINGS_SCHEMA], schema=FIRINGS_SCHEMA
    )


def _samples_table(rule: Rule) -> tuple[pa.Table, list[tuple[str, int, bool]]]:
    """The rule's samples as a full-width fingerprint table (nulls where unspecified)."""
    rows = [("positive", i, True, r) for i, r in enumerate(rule.samples.positive)]
    rows += [("negative", i, False, r) for i, r in enumerate(rule.samples.negative)]
    keys = [(kind, i, expected) for kind, i, expected, _ in rows]
    columns: dict[str, pa.Array] = {}
    for name, t in FINGERPRINT_TYPES.items():
        values = [r.get(name) for *_, r in rows]
        if name == "account_id":
            values = [f"sample-{n}" for n in range(len(rows))]
        columns[name] = pa.array(values, type=t)
    return pa.table(columns), keys


def check_samples(
    rules: Sequence[Rule], backend: Backend, *, table_name: str = "_rule_samples"
) -> list[LintIssue]:
    """Run each rule on its own samples through ``backend``; report every one that misfires.

    A positive sample must fire, a negative one must not. This is what proves a threshold
    edit in review: the author's intent, as rows, evaluated by the engine that runs the rule.
    Rules whose samples cannot be materialised or whose SQL fails are reported, not raised.
    """
    issues: list[LintIssue] = []
    for rule in rules:
        try:
            table, keys = _samples_table(rule)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            issues.append(LintIssue(rule.id, "sample-error", f"samples do not fit the fingerprint: {exc}"))
            continue
        if not keys:
            continue
        backend.register(table_name, table)
        try:
            fired = backend.query(_rule_select(rule, quote_name(table_name))).column("account_id").to_pylist()
        except BackendError as exc:
            first = str(exc).splitlines()[0]
            issues.append(LintIssue(rule.id, "sample-error", f"condition fails on samples: {first}"))
            continue
        fired_set = set(fired)
        for n, (kind, i, expected) in enumerate(keys):
            if (f"sample-{n}" in fired_set) != expected:
                verb = "does not fire" if expected else "fires"
                issues.append(LintIssue(rule.id, "sample-misfire", f"{kind} sample {i} {verb}"))
    return issues
