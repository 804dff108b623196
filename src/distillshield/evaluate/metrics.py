"""Scoring a detector's output against the simulator's ground truth.

Definitions and edge-case conventions live in docs/evaluation.md; this module implements them.
Account-level tables are small (one row per account) and are joined in DuckDB next to the
exchange-level work, which must scale to tens of millions of rows: exchanges are only ever
scanned by DuckDB straight from Parquet, never materialised in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import adjusted_rand_score

from distillshield.errors import SchemaError
from distillshield.evaluate._detections import Detections, load_detections
from distillshield.evaluate._report import (
    AccountMetrics,
    CampaignResult,
    Counts,
    EvaluationReport,
    FalsePositives,
    Leakage,
    PersonaFalsePositives,
)
from distillshield.schema import (
    ACCOUNT_LABELS,
    EXCHANGE_LABELS,
    EXCHANGES,
    TableSpec,
    read_table,
    table_paths,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000


def _in_labels_dir(spec: TableSpec) -> TableSpec:
    """``labels/accounts`` → ``accounts``: the same table, addressed from inside the labels dir."""
    return TableSpec(spec.name.split("/", 1)[1], spec.schema, spec.key)


def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, or None when the denominator is 0 (the rate is undefined)."""
    return None if denominator == 0 else numerator / denominator


def account_metrics(tp: int, fp: int, fn: int, tn: int) -> AccountMetrics:
    """Precision, recall and F1 from confusion counts.

    Precision is None when nothing was flagged and recall None when there are no campaign
    accounts: an undefined rate is reported as undefined, not as a flattering or damning 0.
    F1 uses the form 2·TP / (2·TP + FP + FN), which equals the harmonic mean whenever that is
    defined and is 0 (not None) when campaign accounts exist but none was caught, e.g. a
    detector that flags nothing; it is None only when there are neither positives nor flags.
    """
    f1_denominator = 2 * tp + fp + fn
    return AccountMetrics(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=ratio(tp, tp + fp),
        recall=ratio(tp, tp + fn),
        f1=None if f1_denominator == 0 else 2 * tp / f1_denominator,
    )


def adjusted_rand_index(campaign_ids: Sequence[str | None], clusters: Sequence[str | None]) -> float | None:
    """ARI between true campaigns and detector clusters over the flagged accounts.

    Null entries are singletons on either side: a legitimate account belongs to no campaign
    (so it can only be "right" when the detector left it unclustered), and a flagged account
    without a detector campaign_id was not linked to anything. None when no flagged account
    belongs to a campaign: all-singleton partitions agree trivially (sklearn says 1.0), which
    would reward a detector that caught nothing.
    """
    if len(campaign_ids) != len(clusters):
        raise ValueError("campaign_ids and clusters must have the same length")
    if all(c is None for c in campaign_ids):
        return None
    return float(adjusted_rand_score(_codes(campaign_ids), _codes(clusters)))


def _codes(values: Sequence[str | None]) -> npt.NDArray[np.int64]:
    """Integer cluster codes, each null getting a code of its own (a singleton)."""
    encoded = pa.array(values, pa.string()).dictionary_encode()
    nulls: npt.NDArray[np.bool_] = pc.is_null(encoded.indices).to_numpy(zero_copy_only=False)
    codes: npt.NDArray[np.int64] = (
        pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    )
    codes[nulls] = len(encoded.dictionary) + np.arange(int(nulls.sum()), dtype=np.int64)
    return codes


@dataclass(frozen=True)
class ClusterMatch:
    """The detector cluster that best recovers one campaign."""

    cluster: str | None
    cluster_size: int | None
    overlap: int


def best_cluster(overlaps: dict[str, int], cluster_sizes: dict[str, int], unclustered: int) -> ClusterMatch:
    """Pick the detector cluster holding most of a campaign's flagged accounts.

    ``overlaps`` maps detector cluster → number of the campaign's flagged accounts in it;
    ``unclustered`` counts its flagged accounts with a null detector campaign_id, each a
    singleton cluster of size 1 (reported as cluster None). Ties go to the purer (smaller)
    cluster, then to a named cluster over a singleton, then to the smallest id, so the choice
    never depends on row order. No flagged account → cluster None, size None, overlap 0.
    """
    candidates: list[tuple[int, int, int, str, str | None]] = [
        (-n, cluster_sizes[c], 0, c, c) for c, n in overlaps.items() if n > 0
    ]
    if unclustered:
        candidates.append((-1, 1, 1, "", None))
    if not candidates:
        return ClusterMatch(cluster=None, cluster_size=None, overlap=0)
    neg_overlap, size, _, _, cluster = min(candidates)
    return ClusterMatch(cluster=cluster, cluster_size=size, overlap=-neg_overlap)


def flagged_by_index(
    flag_times_us: Sequence[int], n_accounts: int, share: tuple[int, int] = (9, 10)
) -> int | None:
    """Time by which ``share`` (a fraction num/den) of ``n_accounts`` were flagged, or None.

    Needs ceil(n·num/den) accounts flagged, computed in integers so 90% of 70 is 63, never
    64 through a float rounding error.
    """
    num, den = share
    needed = (n_accounts * num + den - 1) // den
    if n_accounts == 0 or needed > len(flag_times_us):
        return None
    return sorted(flag_times_us)[max(needed, 1) - 1]


def _to_datetime(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _hours(start_us: int | None, end_us: int | None) -> float | None:
    """Simulated hours from start to end, clamped at 0: a flag before the campaign's first
    exchange means it was caught before it harvested anything, which is 0 hours, not less."""
    if start_us is None or end_us is None:
        return None
    return max(0, end_us - start_us) / _US_PER_HOUR


def _resolve_dirs(labels_dir: Path, data_dir: Path | None) -> tuple[Path, Path]:
    """``--labels DIR/labels`` implies data in DIR; a dataset dir given as labels also works."""
    if data_dir is not None:
        return labels_dir, data_dir
    if (labels_dir / "labels").is_dir():
        return labels_dir / "labels", labels_dir
    return labels_dir, labels_dir.parent


def _read_labels(labels_dir: Path) -> pa.Table:
    labels = read_table(labels_dir, _in_labels_dir(ACCOUNT_LABELS))
    ids = labels.column("account_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")[0].as_py()
        raise SchemaError(f"{labels_dir}/accounts: account {dup!r} is labelled more than once")
    return labels


class _Query:
    """A DuckDB connection whose errors name the SQL that failed (wrapped as SchemaError,
    since a failing query here means an input table lacks a column or has a bad type)."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        # Epoch arithmetic makes results independent of this, but keep any timestamp
        # rendering DuckDB does in UTC, the schema's time zone.
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = false")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            raise SchemaError(f"evaluation query failed: {exc}\nSQL: {sql.strip()}") from exc

    def close(self) -> None:
        self.con.close()


def _flag_table(detections: Detections) -> pa.Table:
    """account_id, flagged, cluster, flag_us: the detector's verdict per account.

    cluster is kept only for flagged accounts (an unflagged account has not been attributed
    to anything actionable); flag_us is null for flagged accounts without first_flagged_at,
    to be filled with the end of the data in SQL.
    """
    det = detections.accounts
    flagged = det.column("flagged")
    flag_us = pc.cast(det.column("first_flagged_at"), pa.int64())
    cluster = pc.if_else(flagged, det.column("campaign_id"), pa.scalar(None, pa.string()))
    return pa.table(
        {
            "account_id": det.column("account_id"),
            "flagged": flagged,
            "cluster": cluster,
            "flag_us": flag_us,
        }
    )


@dataclass(frozen=True)
class _Inputs:
    """Where the inputs are and what the first pass over the exchanges found."""

    labels_dir: Path
    detections_dir: Path
    data_dir: Path
    exchange_paths: list[str]
    exchange_label_paths: list[str]
    end_us: int | None
    n_exchanges: int


def evaluate(labels_dir: Path, detections_dir: Path, *, data_dir: Path | None = None) -> EvaluationReport:
    """Score the detector output in ``detections_dir`` against ground truth.

    ``labels_dir`` holds ``accounts`` and ``exchanges`` labels (normally ``DIR/labels``);
    ``data_dir`` holds the ``exchanges`` traffic and defaults to the labels dir's parent.
    Raises DetectionsError for a detector output that breaks the contract and SchemaError for
    unusable ground truth.
    """
    labels_dir, data_dir = _resolve_dirs(Path(labels_dir), None if data_dir is None else Path(data_dir))
    detections = load_detections(detections_dir)
    labels = _read_labels(labels_dir)
    exchange_paths = [str(p) for p in table_paths(data_dir, EXCHANGES)]
    exchange_label_paths = [str(p) for p in table_paths(labels_dir, _in_labels_dir(EXCHANGE_LABELS))]

    q = _Query()
    try:
        q.con.register("labels", labels)
        q.con.register("det", _flag_table(detections))
        n_exchanges, end_us = q.rows(
            "SELECT count(*), max(epoch_us(ts)) FROM read_parquet(?, union_by_name = true)",
            [exchange_paths],
        )[0]
        # One row per labelled account with the detector's verdict. A flagged account with no
        # first_flagged_at was flagged by a batch run after the data ended: its flag time is the
        # last exchange in the dataset, so batch-only detection scores full leakage.
        q.rows(
            """
            CREATE TEMP TABLE acct AS
            SELECT l.account_id, l.campaign_id, l.actor, l.persona,
                   coalesce(d.flagged, false) AS flagged,
                   d.cluster,
                   CASE WHEN d.flagged THEN coalesce(d.flag_us, ?) END AS flag_us
            FROM labels l LEFT JOIN det d USING (account_id)
            """,
            [end_us],
        )
        inputs = _Inputs(
            labels_dir=labels_dir,
            detections_dir=Path(detections_dir),
            data_dir=data_dir,
            exchange_paths=exchange_paths,
            exchange_label_paths=exchange_label_paths,
            end_us=end_us,
            n_exchanges=n_exchanges,
        )
        return _assemble(q, detections, inputs)
    finally:
        q.close()


def _assemble(q: _Query, detections: Detections, inputs: _Inputs) -> EvaluationReport:
    # count(*) FILTER, not count_if: the latter is NULL, not 0, over no rows.
    tp, fp, fn, tn = q.rows(
        """
        SELECT count(*) FILTER (WHERE flagged AND campaign_id IS NOT NULL),
               count(*) FILTER (WHERE flagged AND campaign_id IS NULL),
               count(*) FILTER (WHERE NOT flagged AND campaign_id IS NOT NULL),
               count(*) FILTER (WHERE NOT flagged AND campaign_id IS NULL)
        FROM acct
        """
    )[0]
    n_unknown, n_unknown_flagged = q.rows(
        "SELECT count(*), count(*) FILTER (WHERE flagged) FROM det ANTI JOIN labels USING (account_id)"
    )[0]

    personas = tuple(
        PersonaFalsePositives(persona=p, accounts=n, flagged=f, rate=ratio(f, n))
        for p, n, f in q.rows(
            "SELECT persona, count(*), count(*) FILTER (WHERE flagged) FROM acct WHERE campaign_id IS NULL "
            "GROUP BY persona ORDER BY persona"
        )
    )
    false_positives = FalsePositives(
        accounts=fp + tn, flagged=fp, rate=ratio(fp, fp + tn), by_persona=personas
    )

    flagged_rows = q.rows("SELECT campaign_id, cluster FROM acct WHERE flagged ORDER BY account_id")
    ari = adjusted_rand_index([r[0] for r in flagged_rows], [r[1] for r in flagged_rows])

    cluster_sizes: dict[str, int] = dict(
        q.rows("SELECT cluster, count(*) FROM acct WHERE flagged AND cluster IS NOT NULL GROUP BY cluster")
    )
    overlaps: dict[str, dict[str, int]] = {}
    for campaign, cluster, n in q.rows(
        "SELECT campaign_id, cluster, count(*) FROM acct "
        "WHERE flagged AND campaign_id IS NOT NULL AND cluster IS NOT NULL GROUP BY ALL"
    ):
        overlaps.setdefault(campaign, {})[cluster] = n

    per_campaign: dict[str, tuple[Any, ...]] = {
        row[0]: row[1:]
        for row in q.rows(
            """
            SELECT campaign_id, count(*),
                   count(*) FILTER (WHERE flagged),
                   count(*) FILTER (WHERE flagged AND cluster IS NULL),
                   min(actor),  -- one operator per campaign; min() keeps a mixed label deterministic
                   list(flag_us) FILTER (WHERE flag_us IS NOT NULL)
            FROM acct WHERE campaign_id IS NOT NULL GROUP BY campaign_id
            """
        )
    }

    # The exchange-level pass: each campaign exchange (by its exchange label) against the flag
    # time of the account that sent it. Leaked = served at or before that flag (the exchange
    # that triggered a flag was itself answered), or the sender was never flagged.
    per_campaign_exchanges: dict[str, tuple[int, int | None, int]] = {
        c: (n, first, leaked)
        for c, n, first, leaked in q.rows(
            """
            WITH cx AS (
                SELECT l.campaign_id, x.account_id, epoch_us(x.ts) AS ts_us
                FROM read_parquet(?, union_by_name = true) AS x
                JOIN read_parquet(?, union_by_name = true) AS l USING (request_id)
                WHERE l.campaign_id IS NOT NULL
            )
            SELECT cx.campaign_id, count(*), min(cx.ts_us),
                   count(*) FILTER (WHERE a.flag_us IS NULL OR cx.ts_us <= a.flag_us)
            FROM cx LEFT JOIN acct AS a USING (account_id)
            GROUP BY cx.campaign_id
            """,
            [inputs.exchange_paths, inputs.exchange_label_paths],
        )
    }

    actor_of_cluster = {c.id: c.actor for c in detections.campaigns}
    campaigns = tuple(
        _campaign_result(
            campaign,
            per_campaign.get(campaign),
            per_campaign_exchanges.get(campaign, (0, None, 0)),
            overlaps.get(campaign, {}),
            cluster_sizes,
            actor_of_cluster,
        )
        for campaign in sorted(set(per_campaign) | set(per_campaign_exchanges))
    )
    n_campaign_exchanges = sum(v[0] for v in per_campaign_exchanges.values())
    n_leaked = sum(v[2] for v in per_campaign_exchanges.values())
    counts = Counts(
        accounts=tp + fp + fn + tn,
        campaign_accounts=tp + fn,
        legitimate_accounts=fp + tn,
        flagged=tp + fp,
        detection_rows=detections.accounts.num_rows,
        unknown_accounts=n_unknown,
        unknown_flagged=n_unknown_flagged,
        campaigns=len(campaigns),
        detected_clusters=len(cluster_sizes),
        campaign_objects=len(detections.campaigns),
        exchanges=inputs.n_exchanges,
        campaign_exchanges=n_campaign_exchanges,
    )
    return EvaluationReport(
        labels_dir=str(inputs.labels_dir),
        detections_dir=str(inputs.detections_dir),
        data_dir=str(inputs.data_dir),
        data_end_at=_to_datetime(inputs.end_us),
        counts=counts,
        accounts=account_metrics(tp, fp, fn, tn),
        false_positives=false_positives,
        adjusted_rand_index=ari,
        campaigns=campaigns,
        leakage=Leakage(
            exchanges=n_campaign_exchanges, leaked=n_leaked, share=ratio(n_leaked, n_campaign_exchanges)
        ),
    )


def _campaign_result(
    campaign: str,
    accounts_row: tuple[Any, ...] | None,
    exchanges_row: tuple[int, int | None, int],
    overlaps: dict[str, int],
    cluster_sizes: dict[str, int],
    actor_of_cluster: dict[str, str | None],
) -> CampaignResult:
    n_accounts, n_flagged, n_unclustered, actor, flag_times = accounts_row or (0, 0, 0, None, None)
    flag_times = list(flag_times or [])
    n_exchanges, first_us, n_leaked = exchanges_row
    match = best_cluster(overlaps, cluster_sizes, n_unclustered)
    attributed = None if match.cluster is None else actor_of_cluster.get(match.cluster)
    first_flag_us = min(flag_times) if flag_times else None
    ninety_us = flagged_by_index(flag_times, n_accounts)
    return CampaignResult(
        campaign_id=campaign,
        actor=actor,
        accounts=n_accounts,
        flagged=n_flagged,
        recall=ratio(n_flagged, n_accounts),
        best_cluster=match.cluster,
        cluster_size=match.cluster_size,
        overlap=match.overlap,
        coverage=ratio(match.overlap, n_accounts),
        purity=None if match.cluster_size is None else match.overlap / match.cluster_size,
        attributed_actor=attributed,
        actor_correct=None if attributed is None else attributed == actor,
        exchanges=n_exchanges,
        first_exchange_at=_to_datetime(first_us),
        first_flag_at=_to_datetime(first_flag_us),
        hours_to_first_flag=_hours(first_us, first_flag_us),
        flagged_90pct_at=_to_datetime(ninety_us),
        hours_to_90pct_flagged=_hours(first_us, ninety_us),
        leaked_exchanges=n_leaked,
        leakage=ratio(n_leaked, n_exchanges),
    )
