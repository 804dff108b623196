"""Sufficient statistics per account: the one pass over exchanges everything else is built from.

Every whole-period aggregate a scan needs — the behavioural fingerprint
(:mod:`distillshield.features.account`) and the evidence edges
(:mod:`distillshield.linking.edges`) — is computed from four small tables of per-account
summaries rather than from the exchanges themselves. The summaries of two time chunks merge
by plain SQL aggregation (sums, minima, maxima, unions), so:

* a batch scan is "summarise one chunk (the whole window), then finish";
* an incremental daily run (:mod:`distillshield.detect.incremental`) summarises only the new
  day, appends it to the summaries persisted from earlier days, and finishes over all of
  them — the exchanges of earlier days are never read again, and the result equals a batch
  run over the whole period (up to floating-point summation order), because both go
  through the same finishing SQL.

This is the classic mergeable-aggregate design (river's ``learn_one``/merge, Spark's partial
aggregation) applied to the whole feature set: every statistic is either additive
(counts, token sums, share numerators and denominators), an extreme (first and last
request), a set (distinct values, kept as ``(value, count)`` rows), or a moment triple
merged with Chan's parallel formula (inter-arrival gaps).

Tables (``chunk`` labels the time chunk a row summarises; a batch run uses one chunk):

``chunks``    one row per (chunk, account): request count, first/last request time,
              token sums, numerators and denominators of every share, the gap moments
              ``(gap_n, gap_mean, gap_m2)`` of consecutive requests *inside* the chunk, local
              night requests, and release-window counts.
``vals``      ``(chunk, account_id, kind, val, c)``: how often the account used each value of
              each kind (``date``, ``hour``, ``conversation``, ``template``, ``capability``,
              ``family``, ``ip``, ``prefix``, ``asn``, ``country``, ``ua``, ``tls``,
              ``client``, ``metadata``) — distinct counts, distributions (entropy, top
              share) and the shared-value edge kinds all read it.
``bins``      ``(chunk, kind, val, account_id, bin, t0, t1)``: first and last use of each
              address (``ip``) and prefix (``prefix``) per co-use window bin, for the
              windowed ``ip``/``prefix`` edges.
``activity``  ``(chunk, account_id, bin, c)``: requests per synchronisation bin, for ``sync``.

Privacy: the tables hold the same fingerprints the detection contract already exposes
(addresses, hashed client stacks, template ids, metadata pairs); no prompt or response text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from distillshield._sql import quote_name
from distillshield.backends import Backend

__all__ = [
    "METADATA_PAIR",
    "ROWS_TABLE",
    "STATS_SCHEMAS",
    "VAL_GROUPS",
    "VAL_KINDS",
    "StatsNames",
    "StatsParams",
    "compute_stats",
    "merge_statement",
    "stats_statements",
    "summarise",
]

#: A ``"key": "value"`` string pair inside request metadata (see ``metadata`` edges).
METADATA_PAIR = r'"[^"\\]{1,64}"[ ]*:[ ]*"[^"\\]{1,128}"'

#: Output rows reaching this fraction of ``max_tokens`` count as saturated.
SATURATION = 0.95
#: Window after a release in which traffic on the new model counts as a pivot.
RELEASE_WINDOW_HOURS = 24
#: Night, in local hours [start, end).
NIGHT_HOURS: tuple[float, float] = (0.0, 6.0)

#: Representative UTC offset (hours) of each country's population centre, for local night
#: time. Coarse by design (one zone per country, no daylight saving): the feature asks
#: "does this account sleep where it says it lives", which an hour's error does not change.
COUNTRY_UTC_OFFSET: dict[str, float] = {
    "US": -6.0, "CA": -5.0, "MX": -6.0, "BR": -3.0, "AR": -3.0, "CL": -4.0, "CO": -5.0,
    "PE": -5.0, "GB": 0.0, "IE": 0.0, "PT": 0.0, "IS": 0.0, "FR": 1.0, "DE": 1.0, "NL": 1.0,
    "BE": 1.0, "ES": 1.0, "IT": 1.0, "PL": 1.0, "SE": 1.0, "NO": 1.0, "DK": 1.0, "CH": 1.0,
    "AT": 1.0, "CZ": 1.0, "HU": 1.0, "NG": 1.0, "FI": 2.0, "GR": 2.0, "RO": 2.0, "UA": 2.0,
    "IL": 2.0, "EG": 2.0, "ZA": 2.0, "TR": 3.0, "RU": 3.0, "SA": 3.0, "KE": 3.0, "IR": 3.5,
    "AE": 4.0, "PK": 5.0, "IN": 5.5, "BD": 6.0, "ID": 7.0, "VN": 7.0, "TH": 7.0, "CN": 8.0,
    "HK": 8.0, "TW": 8.0, "SG": 8.0, "MY": 8.0, "PH": 8.0, "KR": 9.0, "KP": 9.0, "JP": 9.0,
    "AU": 10.0, "NZ": 12.0,
}  # fmt: skip

#: Value kinds in ``vals``, grouped by the pass over the exchange rows that yields them.
#: Each group is one ``GROUP BY account_id, <its key>`` over the joined exchanges
#: (:data:`_GROUP_KEYS`); its kinds are rolled up from that smaller result, so the wide rows
#: are hashed five times, not once per kind, and expressions such as the client hash run once
#: per distinct value, not per row. Which kinds share a group is about cardinality only — the
#: network columns are functions of the address, the template family and capability of the
#: template — so a combined key is barely more numerous than the finest of its columns.
#: Measured on three seed-scale days (3.3M exchanges) the value-kind aggregations were
#: 2.4 s of the pass against 8 s for the join that feeds them; grouping saves ~3 % of the
#: ``vals`` statement there (docs/benchmarks.md, run 10).
VAL_GROUPS: dict[str, dict[str, str]] = {
    # hour buckets; the date and the hour of day are read off the bucket, not cast per row
    "time": {"date": "CAST(CAST(hb AS DATE) AS VARCHAR)", "hour": "CAST(hour(hb) AS VARCHAR)"},
    "net": {"ip": "ip", "prefix": "ip_prefix", "asn": "asn_name", "country": "ip_country"},
    "client": {
        "ua": "user_agent",
        "tls": "tls_fingerprint",
        # null when either part is (|| propagates null); hashed once per distinct pair
        "client": "md5(user_agent || chr(31) || tls_fingerprint)",
    },
    "content": {"template": "template_id", "family": "template_family", "capability": "capability"},
    "conversation": {"conversation": "conversation_id"},
}

#: The key columns each group aggregates over; a column not in the joined rows is derived
#: by :data:`_DERIVED` (``hb``: the request's UTC hour).
_GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "time": ("hb",),
    "net": ("ip", "ip_prefix", "asn_name", "ip_country"),
    "client": ("user_agent", "tls_fingerprint"),
    "content": ("template_id", "template_family", "capability"),
    "conversation": ("conversation_id",),
}
_DERIVED: dict[str, str] = {"hb": "date_trunc('hour', ts)"}

#: Every value kind in ``vals`` (``metadata`` comes from its own regular-expression pass).
VAL_KINDS: tuple[str, ...] = (*(k for g in VAL_GROUPS.values() for k in g), "metadata")

_TS = pa.timestamp("us", tz="UTC")

#: Arrow schema of each statistics table (what is persisted between incremental runs).
STATS_SCHEMAS: dict[str, pa.Schema] = {
    "chunks": pa.schema(
        [
            ("chunk", pa.string()),
            ("account_id", pa.string()),
            ("n", pa.int64()),
            ("first_ts", _TS),
            ("last_ts", _TS),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("sat_num", pa.int64()),
            ("sat_den", pa.int64()),
            ("reasoning_n", pa.int64()),
            ("expose_n", pa.int64()),
            ("step_n", pa.int64()),
            ("templated_n", pa.int64()),
            ("multi_turn_n", pa.int64()),
            ("hosting_num", pa.int64()),
            ("hosting_den", pa.int64()),
            ("vpn_num", pa.int64()),
            ("vpn_den", pa.int64()),
            ("gap_n", pa.int64()),
            ("gap_mean", pa.float64()),
            ("gap_m2", pa.float64()),
            ("night_n", pa.int64()),
            ("rel_n", pa.int64()),
            ("rel_new", pa.int64()),
        ]
    ),
    "vals": pa.schema(
        [
            ("chunk", pa.string()),
            ("account_id", pa.string()),
            ("kind", pa.string()),
            ("val", pa.string()),
            ("c", pa.int64()),
        ]
    ),
    "bins": pa.schema(
        [
            ("chunk", pa.string()),
            ("kind", pa.string()),
            ("val", pa.string()),
            ("account_id", pa.string()),
            ("bin", pa.int64()),
            ("t0", pa.float64()),
            ("t1", pa.float64()),
        ]
    ),
    "activity": pa.schema(
        [("chunk", pa.string()), ("account_id", pa.string()), ("bin", pa.int64()), ("c", pa.int64())]
    ),
}


@dataclass(frozen=True)
class StatsParams:
    """Bin widths fixed when statistics are taken (an incremental state refuses a change).

    ``window_hours``: how close in time two accounts must use one address or prefix to be
    linked (the ``ip``/``prefix`` edge window; bins are this wide and aligned to the Unix
    epoch, so with 24 h they are UTC days). ``sync_bin_minutes``: the activity-series bin of
    ``sync`` edges.
    """

    window_hours: float = 24.0
    sync_bin_minutes: float = 10.0


@dataclass(frozen=True)
class StatsNames:
    """Where the four statistics tables are registered on a backend."""

    chunks: str = "_ds_st_chunks"
    vals: str = "_ds_st_vals"
    bins: str = "_ds_st_bins"
    activity: str = "_ds_st_activity"

    def items(self) -> list[tuple[str, str]]:
        """``(table key, registered name)`` pairs, in :data:`STATS_SCHEMAS` order."""
        return [(k, getattr(self, k)) for k in STATS_SCHEMAS]


def _offsets_values() -> str:
    rows = ", ".join(f"('{c}', {off!r})" for c, off in sorted(COUNTRY_UTC_OFFSET.items()))
    return f"(VALUES {rows}) AS tz(country, utc_offset)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: What each statistics table reads of the joined rows: exchange (``x``), signal (``s``) and
#: enrichment (``n``) columns. The ``rows`` statement joins the union of what the requested
#: tables read, once.
_READS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "chunks": (
        (
            "account_id",
            "ts",
            "model",
            "n_messages",
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "max_tokens",
        ),
        ("cot_elicit", "template_id"),
        ("is_hosting", "is_vpn"),
    ),
    "vals": (
        ("account_id", "ts", "ip", "user_agent", "tls_fingerprint", "conversation_id", "metadata"),
        ("capability", "template_id", "template_family"),
        ("ip_prefix", "asn_name", "ip_country"),
    ),
    "bins": (("account_id", "ts", "ip"), (), ("ip_prefix",)),
    "activity": (("account_id", "ts"), (), ()),
}

#: Where :func:`compute_stats` materialises the joined rows while it takes the statistics.
ROWS_TABLE = "_ds_st_rows"


def _rows_statement(ex: str, sig: str, enr: str, tables: tuple[str, ...]) -> str:
    """The exchanges joined with their signals and enrichment: only the columns ``tables``
    read, one join for all of them.

    The join on ``request_id`` is the costliest step of the statistics pass (one join took
    51 s at seed scale; on three seed-scale days 8 s against 2.4 s for every value-kind
    aggregation together), so it runs once and the statements read its result, instead of
    each statement joining for itself (five joins before). Only
    the columns read are kept: a full-width copy of 23M rows spilled under a 6 GB limit.
    """
    picked: list[list[str]] = [[], [], []]
    for t in tables:
        for i, reads in enumerate(_READS[t]):
            picked[i].extend(c for c in reads if c not in picked[i])
    x_cols, s_cols, n_cols = picked
    cols = ", ".join([f"x.{c}" for c in x_cols] + [f"s.{c}" for c in s_cols] + [f"n.{c}" for c in n_cols])
    joins = (f"\nLEFT JOIN {sig} AS s ON s.request_id = x.request_id" if s_cols else "") + (
        f"\nLEFT JOIN {enr} AS n ON n.request_id = x.request_id" if n_cols else ""
    )
    return f"SELECT {cols}\nFROM {ex} AS x{joins}"


def stats_statements(
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    releases: str | None = "rel",
    chunk: str = "all",
    params: StatsParams | None = None,
    rows: str = ROWS_TABLE,
    tables: tuple[str, ...] = tuple(STATS_SCHEMAS),
) -> dict[str, str]:
    """One SELECT (reference dialect) per statistics table, plus ``rows``.

    ``rows`` is the join of the registered exchanges, signals and enrichment (the columns
    ``tables`` read); the statistics statements read it from the table named ``rows``, so
    it must be created first (:func:`compute_stats` does). ``releases=None``: no release
    calendar (release-window counts are zero).
    """
    p = params or StatsParams()
    ex, sig, enr = quote_name(exchanges), quote_name(signals), quote_name(enrichment)
    acc = quote_name(accounts)
    e = f"{quote_name(rows)} AS e"
    label = _literal(chunk)
    night_lo, night_hi = NIGHT_HOURS

    if releases is None:
        rel_cte = "rp AS (SELECT CAST(NULL AS VARCHAR) AS account_id, 0 AS rel_n, 0 AS rel_new WHERE 1 = 0)"
    else:
        rel_cte = f"""rp AS (
    SELECT e.account_id, count(*) AS rel_n,
           sum(CASE WHEN e.model = r.model THEN 1 ELSE 0 END) AS rel_new
    FROM {e} JOIN {quote_name(releases)} AS r
      ON e.ts >= r.released_at AND e.ts < r.released_at + INTERVAL {RELEASE_WINDOW_HOURS} HOUR
    GROUP BY e.account_id
)"""
    local = "(hour(e.ts) + minute(e.ts) / 60.0 + tz.utc_offset + 24) % 24"
    chunks = f"""WITH g AS (
    SELECT account_id,
           date_diff('microsecond',
                     lag(ts) OVER (PARTITION BY account_id ORDER BY ts), ts) / 1000000.0 AS gap_s
    FROM {e}
),
gm AS (
    SELECT account_id, count(gap_s) AS gap_n, avg(gap_s) AS gap_mean,
           coalesce(var_pop(gap_s) * count(gap_s), 0.0) AS gap_m2
    FROM g GROUP BY account_id
),
night AS (
    SELECT e.account_id,
           sum(CASE WHEN {local} >= {night_lo} AND {local} < {night_hi} THEN 1 ELSE 0 END) AS night_n
    FROM {e}
    JOIN {acc} AS a ON a.account_id = e.account_id
    JOIN {_offsets_values()} ON tz.country = upper(a.declared_country)
    GROUP BY e.account_id
),
{rel_cte},
b AS (
    SELECT account_id,
           count(*) AS n,
           min(ts) AS first_ts,
           max(ts) AS last_ts,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(CASE WHEN max_tokens > 0 AND output_tokens >= {SATURATION} * max_tokens THEN 1 ELSE 0 END)
               AS sat_num,
           sum(CASE WHEN max_tokens > 0 THEN 1 ELSE 0 END) AS sat_den,
           sum(CASE WHEN reasoning_tokens > 0 THEN 1 ELSE 0 END) AS reasoning_n,
           sum(CASE WHEN cot_elicit = 'expose_reasoning' THEN 1 ELSE 0 END) AS expose_n,
           sum(CASE WHEN cot_elicit = 'step_by_step' THEN 1 ELSE 0 END) AS step_n,
           count(template_id) AS templated_n,
           sum(CASE WHEN n_messages > 1 THEN 1 ELSE 0 END) AS multi_turn_n,
           sum(CASE WHEN is_hosting THEN 1 ELSE 0 END) AS hosting_num,
           count(is_hosting) AS hosting_den,
           sum(CASE WHEN is_vpn THEN 1 ELSE 0 END) AS vpn_num,
           count(is_vpn) AS vpn_den
    FROM {e} GROUP BY account_id
)
SELECT {label} AS chunk, b.account_id, b.n, b.first_ts, b.last_ts,
       CAST(b.input_tokens AS BIGINT) AS input_tokens, CAST(b.output_tokens AS BIGINT) AS output_tokens,
       b.sat_num, b.sat_den, b.reasoning_n, b.expose_n, b.step_n, b.templated_n, b.multi_turn_n,
       b.hosting_num, b.hosting_den, b.vpn_num, b.vpn_den,
       gm.gap_n, gm.gap_mean, gm.gap_m2, night.night_n,
       coalesce(rp.rel_n, 0) AS rel_n, coalesce(rp.rel_new, 0) AS rel_new
FROM b
LEFT JOIN gm ON gm.account_id = b.account_id
LEFT JOIN night ON night.account_id = b.account_id
LEFT JOIN rp ON rp.account_id = b.account_id"""

    def key_exprs(keys: tuple[str, ...]) -> list[str]:
        return [_DERIVED.get(k, k) for k in keys]

    groups = [
        f"g_{name} AS (SELECT account_id, "
        + ", ".join(f"{x} AS {k}" for x, k in zip(key_exprs(keys), keys, strict=True))
        + f", count(*) AS c FROM {e} GROUP BY account_id, "
        + ", ".join(key_exprs(keys))
        + ")"
        for name, keys in _GROUP_KEYS.items()
    ]
    parts = [
        # a kind that is its group's whole key is already aggregated (no second pass over,
        # e.g., millions of single-turn conversation ids)
        f"SELECT account_id, '{kind}' AS kind, {expr} AS val, c FROM g_{name} WHERE {expr} IS NOT NULL"
        if _GROUP_KEYS[name] == (expr,)
        else f"SELECT account_id, '{kind}' AS kind, {expr} AS val, sum(c) AS c FROM g_{name} "
        f"WHERE {expr} IS NOT NULL GROUP BY account_id, {expr}"
        for name, kinds in VAL_GROUPS.items()
        for kind, expr in kinds.items()
    ]
    parts.append(
        "SELECT account_id, 'metadata' AS kind, val, count(*) AS c FROM ("
        f"SELECT account_id, unnest(regexp_extract_all(metadata, '{METADATA_PAIR}')) AS val "
        f"FROM {e} WHERE metadata IS NOT NULL) m GROUP BY account_id, val"
    )
    vals = (
        "WITH "
        + ",\n".join(groups)
        + f"\nSELECT {label} AS chunk, account_id, kind, val, CAST(c AS BIGINT) AS c FROM (\n"
        + "\nUNION ALL\n".join(parts)
        + "\n) v"
    )

    w = float(p.window_hours) * 3600.0
    bins = (
        f"WITH u AS (SELECT 'ip' AS kind, ip AS val, account_id, ts FROM {e} WHERE ip IS NOT NULL "
        "UNION ALL "
        f"SELECT 'prefix' AS kind, ip_prefix AS val, account_id, ts FROM {e} WHERE ip_prefix IS NOT NULL)\n"
        f"SELECT {label} AS chunk, kind, val, account_id, CAST(floor(epoch(ts) / {w!r}) AS BIGINT) AS bin, "
        "min(epoch(ts)) AS t0, max(epoch(ts)) AS t1 "
        f"FROM u GROUP BY kind, val, account_id, CAST(floor(epoch(ts) / {w!r}) AS BIGINT)"
    )
    s = float(p.sync_bin_minutes) * 60.0
    sbin = f"CAST(floor(epoch(ts) / {s!r}) AS BIGINT)"
    activity = (
        f"SELECT {label} AS chunk, account_id, {sbin} AS bin, count(*) AS c "
        f"FROM {e} GROUP BY account_id, {sbin}"
    )
    built = {"chunks": chunks, "vals": vals, "bins": bins, "activity": activity}
    unknown = set(tables) - set(built)
    if unknown:
        raise ValueError(f"unknown statistics table(s) {sorted(unknown)}; known: {list(built)}")
    return {"rows": _rows_statement(ex, sig, enr, tables), **{t: built[t] for t in built if t in tables}}


#: How rows of one statistics table from several chunks merge into one row per key, for the
#: tables whose consumers only ever aggregate across chunks (``chunks`` is not among them:
#: the inter-arrival moments need each chunk's first and last request).
_MERGE: dict[str, str] = {
    "vals": "SELECT 'merged' AS chunk, account_id, kind, val, CAST(sum(c) AS BIGINT) AS c "
    "FROM {src} GROUP BY account_id, kind, val",
    "bins": "SELECT 'merged' AS chunk, kind, val, account_id, bin, min(t0) AS t0, max(t1) AS t1 "
    "FROM {src} GROUP BY kind, val, account_id, bin",
    "activity": "SELECT 'merged' AS chunk, account_id, bin, CAST(sum(c) AS BIGINT) AS c "
    "FROM {src} GROUP BY account_id, bin",
}


def merge_statement(table: str, source: str) -> str:
    """SELECT (reference dialect) of ``source``'s rows — table ``table`` of several chunks'
    statistics — as one chunk labelled ``merged``; ``chunks`` rows are kept as they are.

    Every consumer (fingerprints, edges, campaigns) reads the statistics through sums,
    minima, maxima and distinct counts over chunks, so the merged table gives the same
    result; it is what an incremental run finishes from, instead of re-reading every chunk's
    rows once per edge kind (at seed scale after four days the edges step took 126 s over
    the per-chunk Parquet files against 68 s for a batch scan's single chunk).
    """
    src = quote_name(source)
    if table == "chunks":
        return f"SELECT * FROM {src}"
    if table not in _MERGE:
        raise ValueError(f"unknown statistics table {table!r}; known: {list(STATS_SCHEMAS)}")
    return _MERGE[table].format(src=src)


def compute_stats(
    backend: Backend,
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    releases: str | None = "rel",
    chunk: str = "all",
    params: StatsParams | None = None,
    into: StatsNames | None = None,
    tables: tuple[str, ...] = tuple(STATS_SCHEMAS),
) -> dict[str, pa.Table]:
    """Summarise the registered exchanges as one chunk.

    With ``into``, the tables are created inside the engine under those names (a batch scan
    finishes from them without a round trip through Python) and the result is empty; without
    it, the tables are returned as Arrow, conformed to :data:`STATS_SCHEMAS` (what an
    incremental run persists). ``tables``: which of the four to take.
    """
    sql = stats_statements(
        exchanges=exchanges,
        signals=signals,
        enrichment=enrichment,
        accounts=accounts,
        releases=releases,
        chunk=chunk,
        params=params,
        rows=ROWS_TABLE,
        tables=tables,
    )
    target = into or StatsNames(*(f"_ds_st_fetch_{key}" for key in STATS_SCHEMAS))
    backend.execute(f"CREATE OR REPLACE TABLE {quote_name(ROWS_TABLE)} AS {sql['rows']}")
    try:
        for key, name in target.items():
            if key in tables:
                backend.execute(f"CREATE OR REPLACE TABLE {quote_name(name)} AS {sql[key]}")
    finally:
        # the joined rows are the largest thing a scan holds; the statistics replace them
        backend.execute(f"DROP TABLE IF EXISTS {quote_name(ROWS_TABLE)}")
    if into is not None:
        return {}
    # Materialised first, then fetched: DuckDB 1.5 can deadlock streaming the Arrow result of
    # the ``vals`` statement straight out of the query (seen at seed scale); a table is safe.
    out = {}
    for key, name in target.items():
        if key in tables:
            out[key] = backend.query(f"SELECT * FROM {quote_name(name)}").cast(STATS_SCHEMAS[key])
            backend.execute(f"DROP TABLE IF EXISTS {quote_name(name)}")
    return out


def summarise(
    backend: Backend,
    names: Mapping[str, str | None],
    *,
    chunk: str = "all",
    params: StatsParams | None = None,
    into: StatsNames | None = None,
) -> dict[str, pa.Table]:
    """:func:`compute_stats` over the tables of a registered window.

    ``names``: what :func:`distillshield.detect.scan.register_window` (or
    :func:`distillshield.features.register_dataset`) returned — ``exchanges``, ``signals``,
    ``enrichment``, ``accounts`` and ``releases`` (``None`` without a release calendar).
    """
    return compute_stats(
        backend,
        exchanges=str(names["exchanges"]),
        signals=str(names["signals"]),
        enrichment=str(names["enrichment"]),
        accounts=str(names["accounts"]),
        releases=names["releases"],
        chunk=chunk,
        params=params,
        into=into,
    )
