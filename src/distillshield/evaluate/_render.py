"""Terminal rendering of an evaluation report (rich tables the CLI prints).

Undefined rates print as an em dash rather than 0, so a reader never mistakes "nothing to
measure" for "measured and bad".
"""

from __future__ import annotations

from rich.table import Table

from distillshield.evaluate._report import EvaluationReport

_NONE = "—"


def _pct(value: float | None) -> str:
    return _NONE if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return _NONE if value is None else f"{value:.{digits}f}"


def _hours(value: float | None) -> str:
    return _NONE if value is None else f"{value:.1f} h"


def _accounts_table(report: EvaluationReport) -> Table:
    a, c, fp = report.accounts, report.counts, report.false_positives
    table = Table(title="Accounts", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(
        "labelled accounts (campaign / legitimate)",
        f"{c.accounts} ({c.campaign_accounts} / {c.legitimate_accounts})",
    )
    table.add_row("flagged", str(c.flagged))
    table.add_row("TP / FP / FN / TN", f"{a.tp} / {a.fp} / {a.fn} / {a.tn}")
    table.add_row("precision", _num(a.precision))
    table.add_row("recall", _num(a.recall))
    table.add_row("F1", _num(a.f1))
    table.add_row("false-positive rate (legitimate)", f"{_pct(fp.rate)} ({fp.flagged}/{fp.accounts})")
    table.add_row("adjusted Rand index (flagged)", _num(report.adjusted_rand_index))
    leak = report.leakage
    table.add_row("harvest leakage (all campaigns)", f"{_pct(leak.share)} ({leak.leaked}/{leak.exchanges})")
    table.add_row(
        "accounts in detections unknown to labels", f"{c.unknown_accounts} ({c.unknown_flagged} flagged)"
    )
    table.add_row("detected clusters / campaign objects", f"{c.detected_clusters} / {c.campaign_objects}")
    return table


def _personas_table(report: EvaluationReport) -> Table:
    table = Table(title="False positives by persona (legitimate accounts)")
    table.add_column("persona")
    table.add_column("accounts", justify="right")
    table.add_column("flagged", justify="right")
    table.add_column("FPR", justify="right")
    for p in report.false_positives.by_persona:
        table.add_row(p.persona, str(p.accounts), str(p.flagged), _pct(p.rate))
    return table


def _campaigns_table(report: EvaluationReport) -> Table:
    table = Table(title="Campaigns")
    for name in ("campaign", "actor", "accounts", "recall", "cluster", "coverage", "purity"):
        table.add_column(name, justify="left" if name in ("campaign", "actor", "cluster") else "right")
    for name in ("first flag", "90% flagged", "leakage"):
        table.add_column(name, justify="right")
    for c in report.campaigns:
        cluster = _NONE if c.best_cluster is None else c.best_cluster
        if c.best_cluster is None and c.cluster_size == 1:
            cluster = "(singleton)"
        actor = c.actor or _NONE
        if c.attributed_actor is not None:
            actor += " ✓" if c.actor_correct else f" ✗ ({c.attributed_actor})"
        table.add_row(
            c.campaign_id,
            actor,
            str(c.accounts),
            _pct(c.recall),
            cluster,
            _pct(c.coverage),
            _pct(c.purity),
            _hours(c.hours_to_first_flag),
            _hours(c.hours_to_90pct_flagged),
            f"{_pct(c.leakage)} ({c.leaked_exchanges}/{c.exchanges})",
        )
    return table


def render_report(report: EvaluationReport) -> list[Table]:
    """The report as rich tables, in reading order: accounts, personas, campaigns."""
    return [_accounts_table(report), _personas_table(report), _campaigns_table(report)]
