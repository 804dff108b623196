"""A deliberately trivial volume detector, so the evaluation harness runs end to end.

It flags an account as soon as one UTC day's request count exceeds a threshold. It is the
floor every real detector must beat, and it shows why volume alone fails: hydra clusters keep
each account light (missed), while SaaS backends and benchmark runs are heavy (false
positives). Everything runs in DuckDB straight from Parquet, so it scales with the data.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from distillshield.errors import SchemaError
from distillshield.schema import DETECTION_ACCOUNTS, EXCHANGES, table_paths, write_table

_US_PER_DAY = 86_400_000_000


def _sql_list(values: list[str]) -> str:
    """A SQL list literal: views cannot take prepared parameters, so paths are inlined, quoted."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _threshold(con: duckdb.DuckDBPyConnection, daily_threshold: int | None, quantile: float) -> int:
    """The count a day must exceed: given, or an observed per-account-day count at ``quantile``.

    quantile_disc returns a count that actually occurred, so the threshold is an integer and
    "exceeds" means at least threshold + 1 requests.
    """
    if daily_threshold is not None:
        return daily_threshold
    row = con.execute("SELECT quantile_disc(n, ?) FROM daily", [quantile]).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def volume_baseline(
    data_dir: Path,
    out_dir: Path,
    *,
    daily_threshold: int | None = None,
    quantile: float = 0.99,
) -> Path:
    """Write a detector output (``out_dir/accounts.parquet``, ``campaigns.json``) for ``data_dir``.

    - Per account and UTC day, count requests. The threshold is ``daily_threshold`` or else
      the ``quantile`` of those counts over all account-days with traffic.
    - An account is flagged at the timestamp of the exchange that first pushes one day's
      running count above the threshold (ties in ts broken by request_id): that is
      ``first_flagged_at``, as an online counter at the gateway would have fired.
    - score = cume_dist of the account's maximum daily count among accounts with traffic
      (the share of accounts whose peak day is no busier): 1.0 for the busiest.
    - campaign_id is null (no linking) and campaigns.json is ``[]``.

    Accounts without any exchange are not written; the evaluator counts them as unflagged.
    """
    if daily_threshold is not None and daily_threshold < 0:
        raise ValueError(f"daily_threshold must be >= 0, got {daily_threshold}")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    paths = [str(p) for p in table_paths(Path(data_dir), EXCHANGES)]
    out = Path(out_dir)

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Days are cut on epoch microseconds, so they are UTC days whatever the session zone.
        # A view, not a table: the exchanges are scanned from Parquet twice rather than held.
        con.execute(
            f"""
            CREATE TEMP VIEW x AS
            SELECT account_id, request_id, epoch_us(ts) AS ts_us, epoch_us(ts) // {_US_PER_DAY} AS day
            FROM read_parquet({_sql_list(paths)}, union_by_name = true)
            """
        )
        con.execute("CREATE TEMP TABLE daily AS SELECT account_id, day, count(*) AS n FROM x GROUP BY ALL")
        threshold = _threshold(con, daily_threshold, quantile)
        result = con.execute(
            """
            WITH hot AS (  -- only days over the threshold can flag: rank just their exchanges
                SELECT account_id, day FROM daily WHERE n > $threshold
            ),
            running AS (
                SELECT account_id, ts_us,
                       row_number() OVER (PARTITION BY account_id, day ORDER BY ts_us, request_id) AS k
                FROM x SEMI JOIN hot USING (account_id, day)
            ),
            first_flag AS (
                SELECT account_id, min(ts_us) AS flag_us FROM running WHERE k > $threshold GROUP BY account_id
            ),
            peak AS (
                SELECT account_id, max(n) AS peak FROM daily GROUP BY account_id
            )
            SELECT p.account_id,
                   cume_dist() OVER (ORDER BY p.peak) AS score,
                   f.flag_us IS NOT NULL AS flagged,
                   f.flag_us
            FROM peak p LEFT JOIN first_flag f USING (account_id)
            ORDER BY p.account_id
            """,
            {"threshold": threshold},
        )
        # DuckDB 1.4 renamed fetch_arrow_table to to_arrow_table; we support >= 1.1.
        fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
        accounts: pa.Table = fetch()
    except duckdb.Error as exc:
        raise SchemaError(f"{data_dir}: volume baseline query failed: {exc}") from exc
    finally:
        con.close()

    flagged = accounts.column("flagged")
    reason = f"daily_volume>={threshold + 1}"
    reasons = pa.array([[reason] if f else None for f in flagged.to_pylist()], type=pa.list_(pa.string()))
    flag_time_type = DETECTION_ACCOUNTS.schema.field("first_flagged_at").type
    table = pa.table(
        {
            "account_id": accounts.column("account_id"),
            "score": accounts.column("score"),
            "flagged": flagged,
            "campaign_id": pa.nulls(accounts.num_rows, pa.string()),
            "first_flagged_at": accounts.column("flag_us").cast(pa.int64()).cast(flag_time_type),
            "top_reasons": reasons,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out, DETECTION_ACCOUNTS)
    (out / "campaigns.json").write_text("[]\n", encoding="utf-8")
    return out
