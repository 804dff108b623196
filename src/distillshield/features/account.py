"""Behavioural fingerprint per account over the whole period (issue 4, docs/features.md).

No single request of a distillation campaign looks wrong; the aggregate does: volume
concentrated on a few valuable capabilities, prompts stamped from a handful of templates,
reasoning traces asked for again and again, machine-regular timing, traffic spread over
many addresses, and a rush onto a newly released model. This module turns a prepared
dataset (``distillshield prepare DATA``) into one row per account carrying those
aggregates, each a number a rule or a model can threshold and a reviewer can read.

All relational work is one statement in the reference SQL dialect (DuckDB's), built by
:func:`fingerprint_sql` and run through :meth:`Backend.query`, so it transpiles to Spark
unchanged. Shares are fractions in [0, 1]; entropies are in bits.

Columns (why each indicates distillation — and its legitimate look-alikes):

Volume and tokens
    ``n_requests``, ``active_days`` (distinct UTC dates), ``requests_per_active_day``,
    ``input_tokens``, ``output_tokens`` (sums) and ``output_input_ratio``: harvesting wants
    long answers to short prompts at volume. Look-alikes: SaaS backends and synthetic-data
    enterprises are high-volume too; writing assistants produce long outputs.
``max_token_saturation_share``
    Among requests with ``max_tokens`` set (> 0), the share whose output reached 95 % of
    it: harvesters set a high limit and let the model run to it to capture whole traces.
    Null when the account never sets ``max_tokens``. Look-alikes: clients with a small
    limit (summaries) saturate routinely.
``reasoning_share``
    Requests with ``reasoning_tokens > 0``: reasoning models are the ones worth copying.
    Look-alikes: anyone who simply defaults to a reasoning model.
``cot_expose_share``, ``step_by_step_share``
    From ``signals.cot_elicit``: prompts asking the model to reveal or reconstruct hidden
    reasoning (``expose_reasoning``) are the seed's chain-of-thought harvesting tell;
    ordinary "think step by step" is weaker. Look-alikes: benchmark researchers and
    teachers (step-by-step), a teacher supplying an answer key (a known expose false
    positive).
``capability_entropy``, ``top_capability_share``
    Shannon entropy (bits) of ``signals.capability`` over the account's requests, and the
    share of its most frequent capability: campaigns concentrate on a few valuable
    capabilities. Null when no request has a capability. Look-alikes: single-purpose
    SaaS backends and coding-agent vendors are concentrated too.
``distinct_templates``, ``template_coverage``, ``top_template_share``
    Distinct ``signals.template_id``; distinct ids per request *that has an id* (the
    curriculum coverage: a generator walks many problems through few frames, a person
    rarely repeats a frame); share of the most frequent id. Null without template ids.
    Look-alikes: a SaaS backend wraps every user input in one system frame; benchmark
    runs repeat a harness prompt.
``template_sharing``
    How many *other* accounts use the account's most frequent ``signals.template_family``
    (ties broken by family name): one operator's generator shows up across the accounts it
    farms. Null when the account has no family. Look-alikes: popular SDK examples and
    public benchmark prompts are shared by unrelated users.
``multi_turn_share``, ``conversations``
    Requests with ``n_messages > 1`` and distinct ``conversation_id``: harvesting is
    single-shot; people follow up. Look-alikes: batch classifiers and one-shot API
    integrations are single-turn too.
``interarrival_cv``
    Coefficient of variation (population std / mean) of the seconds between consecutive
    requests: scripts fire on a clock (low CV) or in tight bursts; people are irregular.
    Null below three requests or with a zero mean gap. Look-alikes: cron jobs, queue
    workers and SaaS backends are regular too.
``hour_entropy``, ``night_share_local``
    Entropy (bits) of the UTC hour of day — 24/7 operation approaches log2(24) ≈ 4.58 —
    and the share of requests between 00:00 and 06:00 in the declared country's local
    time (a representative UTC offset per country, :data:`COUNTRY_UTC_OFFSET`; null when
    the country is missing or unknown to that table): humans sleep where they say they
    live. Look-alikes: global SaaS backends, night owls, multi-time-zone countries.
``post_release_new_model_share``
    For each release in ``releases``, the requests falling in ``[released_at,
    released_at + 24 h)``; the share of those on the newly released model (a request in two
    overlapping windows counts in both). The seed's campaign C moved about half its traffic
    to a new model within a day. Null when the account sent nothing in any such window.
    Look-alikes: early adopters and evaluation teams; pinned production backends stay low.
``distinct_ips``, ``distinct_prefixes``, ``distinct_asns``, ``distinct_countries``,
``ips_per_request``
    From ``exchanges.ip`` and ``derived/enrichment`` (``ip_prefix``, ``asn_name``,
    ``ip_country``): hydra clusters rotate proxies so each account is seen from many
    addresses and networks. Look-alikes: mobile users, travellers, cloud egress pools.
``hosting_share``, ``vpn_share``
    Requests from hosting/VPN addresses (among those enrichment classified): proxies and
    scripts live in data centres. Look-alikes: SaaS backends run in clouds; corporate
    VPNs.
``distinct_user_agents``, ``distinct_tls_fingerprints``
    Client churn: pools of workers with mixed stacks, or rotation to look like many
    clients. Look-alikes: developers upgrading SDKs, several team members on one account.
``account_age_days``
    Days from ``accounts.created_at`` to the first request (negative: inconsistent logs):
    farmed accounts are used at once or aged in bulk. Look-alikes: a class that signs up
    and starts the same hour.
``pathway``, ``verified``, ``email_domain_class``, ``declared_country_share``
    Account facts (``accounts`` and ``derived/accounts``): abused pathways (education,
    research and startup programmes), unverified identities, disposable e-mail, activity
    far from the declared country. Look-alikes: students with free-mail, corporate VPN
    egress abroad.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from distillshield.backends import Backend, quote_name
from distillshield.errors import DistillShieldError
from distillshield.schema import (
    ACCOUNT_ENRICHMENT,
    ACCOUNTS,
    EXCHANGE_ENRICHMENT,
    EXCHANGES,
    RELEASES,
    SIGNALS,
    TableSpec,
    table_paths,
)

#: Output columns in order, with a one-line meaning (details in the module docstring).
FINGERPRINT_COLUMNS: dict[str, str] = {
    "account_id": "the account",
    "n_requests": "requests in the period",
    "active_days": "distinct UTC dates with a request",
    "requests_per_active_day": "n_requests / active_days",
    "input_tokens": "sum of input tokens",
    "output_tokens": "sum of output tokens (reasoning included)",
    "output_input_ratio": "output_tokens / input_tokens (null when no input tokens)",
    "max_token_saturation_share": "share of requests with max_tokens set whose output reached 95% of it",
    "reasoning_share": "share of requests with reasoning_tokens > 0",
    "cot_expose_share": "share of requests with cot_elicit = expose_reasoning",
    "step_by_step_share": "share of requests with cot_elicit = step_by_step",
    "capability_entropy": "Shannon entropy (bits) of the capability distribution",
    "top_capability_share": "share of the most frequent capability",
    "distinct_templates": "distinct template ids",
    "template_coverage": "distinct template ids / requests with a template id",
    "top_template_share": "share of the most frequent template id",
    "template_sharing": "other accounts using the account's top template family",
    "multi_turn_share": "share of requests with n_messages > 1",
    "conversations": "distinct conversation ids",
    "interarrival_cv": "coefficient of variation of gaps between consecutive requests",
    "hour_entropy": "Shannon entropy (bits) of the UTC hour of day",
    "night_share_local": "share of requests 00:00-06:00 in the declared country's local time",
    "post_release_new_model_share": "share on the new model within 24 h after its release",
    "distinct_ips": "distinct client addresses",
    "distinct_prefixes": "distinct /24 (IPv4) or /48 (IPv6) prefixes",
    "distinct_asns": "distinct ASN names",
    "distinct_countries": "distinct IP countries",
    "ips_per_request": "distinct_ips / n_requests",
    "hosting_share": "share of classified requests from hosting addresses",
    "vpn_share": "share of classified requests from VPN addresses",
    "distinct_user_agents": "distinct User-Agent strings",
    "distinct_tls_fingerprints": "distinct TLS fingerprints",
    "account_age_days": "days from sign-up to the first request",
    "pathway": "sign-up pathway",
    "verified": "passed identity/payment verification",
    "email_domain_class": "disposable / academic / free-mail / corporate",
    "declared_country_share": "share of located requests from the declared country",
}

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

#: Night, in local hours [start, end).
NIGHT_HOURS: tuple[float, float] = (0.0, 6.0)
#: Output reaching this fraction of ``max_tokens`` counts as saturated.
SATURATION = 0.95
#: Window after a release in which traffic on the new model counts as a pivot.
RELEASE_WINDOW_HOURS = 24


def _offsets_values() -> str:
    rows = ", ".join(f"('{c}', {off!r})" for c, off in sorted(COUNTRY_UTC_OFFSET.items()))
    return f"(VALUES {rows}) AS tz(country, utc_offset)"


def _distribution_sql(source: str, key: str) -> str:
    """Entropy (bits) and top share of ``key`` per account over rows of ``source`` where it is set."""
    return f"""
    SELECT account_id,
           -sum((c / t) * ln(c / t)) / ln(2) AS entropy,
           max(c) / max(t) AS top_share
    FROM (
        SELECT account_id, c, sum(c) OVER (PARTITION BY account_id) AS t
        FROM (
            SELECT account_id, CAST(count(*) AS DOUBLE) AS c
            FROM {source} WHERE {key} IS NOT NULL GROUP BY account_id, {key}
        ) AS counts
    ) AS shares
    GROUP BY account_id"""


def fingerprint_sql(
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    account_enrichment: str = "acc_enr",
    releases: str | None = "rel",
) -> str:
    """The one statement (reference dialect) behind :func:`account_fingerprints`.

    Table names are those given to :meth:`Backend.register`; ``releases=None`` leaves
    ``post_release_new_model_share`` null.
    """
    ex, sig, enr = quote_name(exchanges), quote_name(signals), quote_name(enrichment)
    acc, acc_enr = quote_name(accounts), quote_name(account_enrichment)
    night_lo, night_hi = NIGHT_HOURS
    if releases is None:
        release_cte = ""
        release_col = "CAST(NULL AS DOUBLE)"
        release_join = ""
    else:
        release_cte = f""",

release_pivot AS (
    SELECT e.account_id,
           avg(CASE WHEN e.model = r.model THEN 1.0 ELSE 0.0 END) AS new_model_share
    FROM e JOIN {quote_name(releases)} AS r
      ON e.ts >= r.released_at AND e.ts < r.released_at + INTERVAL {RELEASE_WINDOW_HOURS} HOUR
    GROUP BY e.account_id
)"""
        release_col = "pv.new_model_share"
        release_join = "LEFT JOIN release_pivot AS pv ON pv.account_id = b.account_id"
    return f"""
WITH e AS (
    SELECT x.account_id, x.request_id, x.ts, x.model, x.ip, x.user_agent, x.tls_fingerprint,
           x.conversation_id, x.n_messages, x.input_tokens, x.output_tokens,
           x.reasoning_tokens, x.max_tokens,
           s.cot_elicit, s.capability, s.template_id, s.template_family,
           n.ip_prefix, n.asn_name, n.ip_country, n.is_hosting, n.is_vpn
    FROM {ex} AS x
    LEFT JOIN {sig} AS s ON s.request_id = x.request_id
    LEFT JOIN {enr} AS n ON n.request_id = x.request_id
),
base AS (
    SELECT account_id,
           count(*) AS n_requests,
           count(DISTINCT CAST(ts AS DATE)) AS active_days,
           min(ts) AS first_request_at,
           CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
           CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
           avg(CASE WHEN max_tokens > 0 THEN
                   CASE WHEN output_tokens >= {SATURATION} * max_tokens THEN 1.0 ELSE 0.0 END
               END) AS max_token_saturation_share,
           avg(CASE WHEN reasoning_tokens > 0 THEN 1.0 ELSE 0.0 END) AS reasoning_share,
           avg(CASE WHEN cot_elicit = 'expose_reasoning' THEN 1.0 ELSE 0.0 END) AS cot_expose_share,
           avg(CASE WHEN cot_elicit = 'step_by_step' THEN 1.0 ELSE 0.0 END) AS step_by_step_share,
           count(DISTINCT template_id) AS distinct_templates,
           count(template_id) AS templated_requests,
           avg(CASE WHEN n_messages > 1 THEN 1.0 ELSE 0.0 END) AS multi_turn_share,
           count(DISTINCT conversation_id) AS conversations,
           count(DISTINCT ip) AS distinct_ips,
           count(DISTINCT ip_prefix) AS distinct_prefixes,
           count(DISTINCT asn_name) AS distinct_asns,
           count(DISTINCT ip_country) AS distinct_countries,
           avg(CASE WHEN is_hosting THEN 1.0 WHEN NOT is_hosting THEN 0.0 END) AS hosting_share,
           avg(CASE WHEN is_vpn THEN 1.0 WHEN NOT is_vpn THEN 0.0 END) AS vpn_share,
           count(DISTINCT user_agent) AS distinct_user_agents,
           count(DISTINCT tls_fingerprint) AS distinct_tls_fingerprints
    FROM e
    GROUP BY account_id
),
gaps AS (
    SELECT account_id,
           date_diff('microsecond',
                     lag(ts) OVER (PARTITION BY account_id ORDER BY ts, request_id), ts) / 1000000.0 AS gap_s
    FROM e
),
timing AS (
    SELECT account_id,
           CASE WHEN count(gap_s) >= 2 AND avg(gap_s) > 0
                THEN stddev_pop(gap_s) / avg(gap_s) END AS interarrival_cv
    FROM gaps
    GROUP BY account_id
),
cap AS ({_distribution_sql("e", "capability")}
),
tpl AS ({_distribution_sql("e", "template_id")}
),
hours AS ({_distribution_sql("e", "hour(ts)")}
),
fam_counts AS (
    SELECT account_id, template_family, count(*) AS c
    FROM e WHERE template_family IS NOT NULL
    GROUP BY account_id, template_family
),
top_fam AS (
    SELECT account_id, template_family
    FROM (
        SELECT account_id, template_family,
               row_number() OVER (PARTITION BY account_id ORDER BY c DESC, template_family) AS rk
        FROM fam_counts
    ) AS ranked
    WHERE rk = 1
),
fam_users AS (
    SELECT template_family, count(*) AS n_accounts FROM fam_counts GROUP BY template_family
),
sharing AS (
    SELECT t.account_id, u.n_accounts - 1 AS template_sharing
    FROM top_fam AS t JOIN fam_users AS u ON u.template_family = t.template_family
),
night AS (
    SELECT e.account_id,
           avg(CASE WHEN (hour(e.ts) + minute(e.ts) / 60.0 + tz.utc_offset + 24) % 24 >= {night_lo}
                     AND (hour(e.ts) + minute(e.ts) / 60.0 + tz.utc_offset + 24) % 24 < {night_hi}
                    THEN 1.0 ELSE 0.0 END) AS night_share_local
    FROM e
    JOIN {acc} AS a ON a.account_id = e.account_id
    JOIN {_offsets_values()} ON tz.country = upper(a.declared_country)
    GROUP BY e.account_id
){release_cte}
SELECT b.account_id,
       b.n_requests,
       b.active_days,
       CAST(b.n_requests AS DOUBLE) / b.active_days AS requests_per_active_day,
       b.input_tokens,
       b.output_tokens,
       CAST(b.output_tokens AS DOUBLE) / nullif(b.input_tokens, 0) AS output_input_ratio,
       b.max_token_saturation_share,
       b.reasoning_share,
       b.cot_expose_share,
       b.step_by_step_share,
       cap.entropy AS capability_entropy,
       cap.top_share AS top_capability_share,
       b.distinct_templates,
       CASE WHEN b.templated_requests > 0
            THEN CAST(b.distinct_templates AS DOUBLE) / b.templated_requests END AS template_coverage,
       tpl.top_share AS top_template_share,
       sh.template_sharing,
       b.multi_turn_share,
       b.conversations,
       tm.interarrival_cv,
       hr.entropy AS hour_entropy,
       ng.night_share_local,
       {release_col} AS post_release_new_model_share,
       b.distinct_ips,
       b.distinct_prefixes,
       b.distinct_asns,
       b.distinct_countries,
       CAST(b.distinct_ips AS DOUBLE) / b.n_requests AS ips_per_request,
       b.hosting_share,
       b.vpn_share,
       b.distinct_user_agents,
       b.distinct_tls_fingerprints,
       date_diff('microsecond', a.created_at, b.first_request_at) / 86400000000.0 AS account_age_days,
       a.pathway,
       a.verified,
       ae.email_domain_class,
       ae.declared_country_share
FROM base AS b
LEFT JOIN cap ON cap.account_id = b.account_id
LEFT JOIN tpl ON tpl.account_id = b.account_id
LEFT JOIN hours AS hr ON hr.account_id = b.account_id
LEFT JOIN sharing AS sh ON sh.account_id = b.account_id
LEFT JOIN timing AS tm ON tm.account_id = b.account_id
LEFT JOIN night AS ng ON ng.account_id = b.account_id
{release_join}
LEFT JOIN {acc} AS a ON a.account_id = b.account_id
LEFT JOIN {acc_enr} AS ae ON ae.account_id = b.account_id
ORDER BY b.account_id
"""


def account_fingerprints(
    backend: Backend,
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    releases: str | None = "rel",
    account_enrichment: str = "acc_enr",
) -> pa.Table:
    """One row per account with traffic, whole period: the columns of :data:`FINGERPRINT_COLUMNS`.

    The names are tables already registered on ``backend`` (see :func:`register_dataset`):
    ``exchanges`` and ``accounts`` canonical, ``signals``/``enrichment``/``account_enrichment``
    the prepared ``derived/signals``, ``derived/enrichment`` and ``derived/accounts``;
    ``releases`` optional (``None``: ``post_release_new_model_share`` is null). Accounts
    without a request have no row. Ordered by ``account_id``.
    """
    sql = fingerprint_sql(
        exchanges=exchanges,
        signals=signals,
        enrichment=enrichment,
        accounts=accounts,
        account_enrichment=account_enrichment,
        releases=releases,
    )
    return backend.query(sql)


def register_dataset(
    backend: Backend,
    data_dir: str | Path,
    *,
    exchanges: str = "ex",
    signals: str = "sig",
    enrichment: str = "enr",
    accounts: str = "acc",
    releases: str = "rel",
    account_enrichment: str = "acc_enr",
) -> dict[str, str | None]:
    """Register a prepared dataset's tables on ``backend`` under the names given.

    Returns the keyword arguments for :func:`account_fingerprints` —
    ``account_fingerprints(backend, **register_dataset(backend, DATA))`` — with
    ``releases`` set to ``None`` when the dataset has no release calendar. A missing
    derived table is an error that says to run ``distillshield prepare``.
    """
    root = Path(data_dir)
    wanted: list[tuple[str, str, TableSpec]] = [
        ("exchanges", exchanges, EXCHANGES),
        ("accounts", accounts, ACCOUNTS),
        ("signals", signals, SIGNALS),
        ("enrichment", enrichment, EXCHANGE_ENRICHMENT),
        ("account_enrichment", account_enrichment, ACCOUNT_ENRICHMENT),
        ("releases", releases, RELEASES),
    ]
    names: dict[str, str | None] = {}
    for arg, name, spec in wanted:
        paths = table_paths(root, spec, optional=True)
        if not paths:
            if spec is RELEASES:
                names[arg] = None
                continue
            hint = " (run `distillshield prepare` first)" if spec.name.startswith("derived/") else ""
            raise DistillShieldError(f"{root}: table {spec.name!r} not found{hint}")
        backend.register_table(name, root, spec)  # conformed: absent nullable columns read as null
        names[arg] = name
    return names
