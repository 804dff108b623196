"""The rule linter: small validator classes, each returning typed issues (pySigma's shape).

Each validator looks at the whole rule set (uniqueness needs all of it) and yields
:class:`LintIssue` values; none raises, so one ``distillshield rules lint`` run reports every
defect at once instead of the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from distillshield.features.account import FINGERPRINT_COLUMNS

if TYPE_CHECKING:
    from distillshield.scoring.rules import Rule

#: Arrow type of every fingerprint column (as :func:`fingerprint_sql` produces it), so that
#: samples can be materialised as a table and their values type-checked. A test pins that
#: this covers :data:`FINGERPRINT_COLUMNS` exactly.
FINGERPRINT_TYPES: dict[str, pa.DataType] = {name: pa.float64() for name in FINGERPRINT_COLUMNS} | {
    "account_id": pa.string(),
    "pathway": pa.string(),
    "email_domain_class": pa.string(),
    "verified": pa.bool_(),
    **{
        name: pa.int64()
        for name in (
            "n_requests",
            "active_days",
            "input_tokens",
            "output_tokens",
            "distinct_templates",
            "template_sharing",
            "conversations",
            "distinct_ips",
            "distinct_prefixes",
            "distinct_asns",
            "distinct_countries",
            "distinct_user_agents",
            "distinct_tls_fingerprints",
        )
    },
}

#: A rule's weight is its contribution to an evidence score in [0, 1]: it must be positive
#: (a rule that adds nothing is dead) and at most 1 (no single rule is proof on its own).
WEIGHT_RANGE: tuple[float, float] = (0.0, 1.0)

REFERENCE_DIALECT = "duckdb"


@dataclass(frozen=True)
class LintIssue:
    """One defect of one rule: ``code`` is stable (tests and CI match on it), ``message`` says what to fix."""

    rule_id: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule_id}: [{self.code}] {self.message}"


class RuleValidator(Protocol):
    """A check over a rule set; ``code`` names the defect it reports."""

    code: str

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]: ...


def parse_condition(condition: str) -> exp.Expression:
    """The condition as a sqlglot tree (reference dialect); raises ``sqlglot.errors.ParseError``."""
    # cast: sqlglot 30 annotates parse_one with its newer ``Expr`` base; older ones with Expression.
    tree = cast(
        "exp.Expression", sqlglot.parse_one(condition, read=REFERENCE_DIALECT, error_level=ErrorLevel.RAISE)
    )
    if tree is None:  # pragma: no cover - parse_one raises rather than return None on empty input
        raise sqlglot.errors.ParseError("empty condition")
    return tree


def _tree(condition: str) -> exp.Expression | None:
    try:
        return parse_condition(condition)
    except sqlglot.errors.SqlglotError:
        return None


_BOOLEAN_NODES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)


class UniqueIds:
    """Ids are what top_reasons, dashboards and suppressions refer to: two rules with one id are ambiguous."""

    code = "duplicate-id"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule_id, n in sorted(Counter(r.id for r in rules).items()):
            if n > 1:
                yield LintIssue(rule_id, self.code, f"id used by {n} rules")


class ConditionParses:
    """The condition must be one boolean SQL expression with no sub-query or statement in it.

    A condition is inlined into ``WHERE (...)``; a sub-query would read other tables and a
    non-boolean expression would fail only at run time on some engines.
    """

    code = "condition-invalid"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule in rules:
            try:
                tree = parse_condition(rule.condition)
            except sqlglot.errors.SqlglotError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                yield LintIssue(rule.id, self.code, f"condition does not parse: {first}")
                continue
            if any(isinstance(node, exp.Query | exp.Subquery) for node in tree.walk()):
                yield LintIssue(rule.id, self.code, "condition must not contain a query or sub-query")
                continue
            top = tree.unnest()
            if not isinstance(top, _BOOLEAN_NODES):
                yield LintIssue(
                    rule.id, self.code, f"condition is not a boolean expression (top node {top.key})"
                )


class ConditionColumnsKnown:
    """Every column a condition names must be a fingerprint column, unqualified: a typo would
    otherwise surface only as a run-time binder error (DuckDB) or, worse, silently never fire."""

    code = "unknown-column"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule in rules:
            tree = _tree(rule.condition)
            if tree is None:
                continue  # reported by ConditionParses
            for col in tree.find_all(exp.Column):
                if col.table:
                    yield LintIssue(rule.id, self.code, f"column {col.sql()!r} must not be qualified")
                elif col.name not in FINGERPRINT_COLUMNS:
                    yield LintIssue(rule.id, self.code, f"condition names unknown column {col.name!r}")


class ConditionTranspiles:
    """The same rule must run on Spark: the condition has to transpile there and read back.

    sqlglot passes what it does not understand through verbatim, so a successful transpile
    proves little: the Spark text is parsed again (catches operators Spark lacks, e.g. the
    ``&&`` DuckDB's ``list_has_any`` becomes) and functions sqlglot does not know (passed
    through as-is, maybe missing on the target engine) are refused.
    """

    code = "not-transpilable"

    def __init__(self, dialect: str = "spark") -> None:
        self.dialect = dialect

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule in rules:
            tree = _tree(rule.condition)
            if tree is None:
                continue
            unknown = sorted({f.name for f in tree.find_all(exp.Anonymous)})
            if unknown:
                yield LintIssue(
                    rule.id,
                    self.code,
                    f"function(s) {unknown} unknown to sqlglot: not portable to {self.dialect}",
                )
                continue
            try:
                native = sqlglot.transpile(
                    rule.condition,
                    read=REFERENCE_DIALECT,
                    write=self.dialect,
                    unsupported_level=ErrorLevel.RAISE,
                )[0]
                sqlglot.parse_one(native, read=self.dialect, error_level=ErrorLevel.RAISE)
            except sqlglot.errors.SqlglotError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                yield LintIssue(
                    rule.id, self.code, f"condition does not transpile to {self.dialect}: {first}"
                )


class SamplesPresent:
    """A rule without a positive sample is untested; without a negative one its false-positive
    boundary is undocumented. Both are required (panther-analysis' habit)."""

    code = "missing-samples"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule in rules:
            for kind in ("positive", "negative"):
                if not getattr(rule.samples, kind):
                    yield LintIssue(rule.id, self.code, f"no {kind} sample")


def _type_ok(value: object, t: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_string(t):
        return isinstance(value, str)
    if pa.types.is_boolean(t):
        return isinstance(value, bool)
    if pa.types.is_integer(t):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


class SampleColumnsKnown:
    """Samples are partial fingerprint rows: an unknown column (a typo) would be silently
    dropped and the sample would test something else than its author meant; a value of the
    wrong type would not fit the column."""

    code = "bad-sample"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        for rule in rules:
            for kind in ("positive", "negative"):
                for i, row in enumerate(getattr(rule.samples, kind)):
                    for col, value in row.items():
                        where = f"{kind} sample {i}"
                        if col not in FINGERPRINT_TYPES:
                            yield LintIssue(rule.id, self.code, f"{where} names unknown column {col!r}")
                        elif not _type_ok(value, FINGERPRINT_TYPES[col]):
                            yield LintIssue(
                                rule.id,
                                self.code,
                                f"{where}: {col}={value!r} does not fit type {FINGERPRINT_TYPES[col]}",
                            )


class WeightInRange:
    """Weights add up to an evidence score in [0, 1]; see :data:`WEIGHT_RANGE`."""

    code = "weight-out-of-range"

    def check(self, rules: Sequence[Rule]) -> Iterator[LintIssue]:
        lo, hi = WEIGHT_RANGE
        for rule in rules:
            if not lo < rule.weight <= hi:
                yield LintIssue(rule.id, self.code, f"weight {rule.weight} not in ({lo}, {hi}]")


#: The validators :func:`lint` runs by default, in report order.
DEFAULT_VALIDATORS: tuple[RuleValidator, ...] = (
    UniqueIds(),
    ConditionParses(),
    ConditionColumnsKnown(),
    ConditionTranspiles(),
    SamplesPresent(),
    SampleColumnsKnown(),
    WeightInRange(),
)


def lint(rules: Sequence[Rule], validators: Sequence[RuleValidator] = DEFAULT_VALIDATORS) -> list[LintIssue]:
    """Every issue every validator finds in ``rules`` (empty: the set is clean)."""
    return [issue for v in validators for issue in v.check(rules)]
