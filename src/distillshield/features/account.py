"""Behavioural fingerprint per account over the whole period (issue 4, docs/features.md).

No single request of a distillation campaign looks wrong; the aggregate does: volume
concentrated on a few valuable capabilities, prompts stamped from a handful of templates,
reasoning traces asked for again and again, machine-regular timing, traffic spread over
many addresses, and a rush onto a newly released model. This module turns a prepared
dataset (``distillshield prepare DATA``) into one row per account carrying those
aggregates, each a number a rule or a model can threshold and a reviewer can read.

All relational work is SQL in the reference dialect (DuckDB's) run through
:meth:`Backend.query`, so it transpiles to Spark unchanged: one pass summarises the exchanges
into mergeable statistics (:mod:`distillshield.features.stats`), and :func:`fingerprint_sql`
finishes the columns from them — so a batch run and an incremental daily run share every
formula. Shares are fractions in [0, 1]; entropies are in bits.

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
    time (a representative UTC offset per country,
    :data:`distillshield.features.stats.COUNTRY_UTC_OFFSET`; null when the country is
    missing or unknown to that table): humans sleep where they say they
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
    egress abroad. ``declared_country_share`` is the window's (its located requests from the
    declared country), like every traffic statistic here; ``derived/accounts`` keeps the
    whole dataset's for analysts.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from distillshield.backends import Backend, quote_name
from distillshield.errors import DistillShieldError
from distillshield.features.stats import (
    StatsNames,
    StatsParams,
    compute_stats,
)
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


def _distribution_sql(vals: str, kind: str) -> str:
    """Entropy (bits) and top share of value kind ``kind`` per account, from ``vals`` counts."""
    return f"""
    SELECT account_id,
           -sum((c / t) * ln(c / t)) / ln(2) AS entropy,
           max(c) / max(t) AS top_share
    FROM (
        SELECT account_id, c, sum(c) OVER (PARTITION BY account_id) AS t
        FROM (
            SELECT account_id, CAST(sum(c) AS DOUBLE) AS c
            FROM {vals} WHERE kind = '{kind}' GROUP BY account_id, val
        ) AS counts
    ) AS shares
    GROUP BY account_id"""


def fingerprint_sql(
    *,
    stats: StatsNames | None = None,
    accounts: str = "acc",
    account_enrichment: str = "acc_enr",
) -> str:
    """The statement (reference dialect) that finishes fingerprints from statistics tables.

    ``stats`` names the tables of :mod:`distillshield.features.stats` (any number of chunks:
    a batch scan's one, or an incremental state's many); ``accounts`` and
    ``account_enrichment`` the canonical accounts and ``derived/accounts``.
    """
    st = stats or StatsNames()
    ch, vals = quote_name(st.chunks), quote_name(st.vals)
    acc, acc_enr = quote_name(accounts), quote_name(account_enrichment)
    return f"""
WITH base AS (
    SELECT account_id,
           CAST(sum(n) AS BIGINT) AS n_requests,
           min(first_ts) AS first_request_at,
           CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
           CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
           CAST(sum(sat_num) AS DOUBLE) / nullif(sum(sat_den), 0) AS max_token_saturation_share,
           CAST(sum(reasoning_n) AS DOUBLE) / sum(n) AS reasoning_share,
           CAST(sum(expose_n) AS DOUBLE) / sum(n) AS cot_expose_share,
           CAST(sum(step_n) AS DOUBLE) / sum(n) AS step_by_step_share,
           CAST(sum(templated_n) AS BIGINT) AS templated_requests,
           CAST(sum(multi_turn_n) AS DOUBLE) / sum(n) AS multi_turn_share,
           CAST(sum(hosting_num) AS DOUBLE) / nullif(sum(hosting_den), 0) AS hosting_share,
           CAST(sum(vpn_num) AS DOUBLE) / nullif(sum(vpn_den), 0) AS vpn_share,
           CASE WHEN count(night_n) > 0 THEN CAST(sum(night_n) AS DOUBLE) / sum(n) END AS night_share_local,
           CAST(sum(rel_new) AS DOUBLE) / nullif(sum(rel_n), 0) AS post_release_new_model_share
    FROM {ch} GROUP BY account_id
),
distinct_vals AS (
    SELECT account_id,
           count(*) FILTER (WHERE kind = 'date') AS active_days,
           count(*) FILTER (WHERE kind = 'template') AS distinct_templates,
           count(*) FILTER (WHERE kind = 'conversation') AS conversations,
           count(*) FILTER (WHERE kind = 'ip') AS distinct_ips,
           count(*) FILTER (WHERE kind = 'prefix') AS distinct_prefixes,
           count(*) FILTER (WHERE kind = 'asn') AS distinct_asns,
           count(*) FILTER (WHERE kind = 'country') AS distinct_countries,
           count(*) FILTER (WHERE kind = 'ua') AS distinct_user_agents,
           count(*) FILTER (WHERE kind = 'tls') AS distinct_tls_fingerprints
    FROM (SELECT DISTINCT account_id, kind, val FROM {vals}
          WHERE kind IN ('date', 'template', 'conversation', 'ip', 'prefix', 'asn', 'country', 'ua', 'tls')) d
    GROUP BY account_id
),
-- gap moments: each chunk's inside gaps, plus one gap across every boundary between
-- consecutive chunks of an account; merged with Chan's parallel formula
pieces AS (
    SELECT account_id, gap_n AS k, gap_mean AS mu, gap_m2 AS m2 FROM {ch} WHERE gap_n > 0
    UNION ALL
    SELECT account_id, 1 AS k, date_diff('microsecond', prev_last, first_ts) / 1000000.0 AS mu, 0.0 AS m2
    FROM (SELECT account_id, first_ts,
                 lag(last_ts) OVER (PARTITION BY account_id ORDER BY first_ts) AS prev_last
          FROM {ch}) AS ordered
    WHERE prev_last IS NOT NULL
),
moments AS (
    SELECT account_id, sum(k) AS k, sum(k * mu) / sum(k) AS mu FROM pieces GROUP BY account_id
),
timing AS (
    SELECT p.account_id,
           CASE WHEN max(m.k) >= 2 AND max(m.mu) > 0
                THEN sqrt(greatest(sum(p.m2 + p.k * (p.mu - m.mu) * (p.mu - m.mu)), 0.0) / max(m.k))
                     / max(m.mu)
           END AS interarrival_cv
    FROM pieces AS p JOIN moments AS m ON m.account_id = p.account_id
    GROUP BY p.account_id
),
cap AS ({_distribution_sql(vals, "capability")}
),
tpl AS ({_distribution_sql(vals, "template")}
),
hours AS ({_distribution_sql(vals, "hour")}
),
fam_counts AS (
    SELECT account_id, val AS template_family, sum(c) AS c
    FROM {vals} WHERE kind = 'family'
    GROUP BY account_id, val
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
-- from the window's own requests, not derived/accounts (which covers the whole dataset:
-- a replay step would read where the account's *later* requests came from)
declared AS (
    SELECT v.account_id,
           CAST(sum(CASE WHEN v.val = upper(a.declared_country) THEN v.c ELSE 0 END) AS DOUBLE)
               / sum(v.c) AS declared_country_share
    FROM {vals} AS v JOIN {acc} AS a ON a.account_id = v.account_id
    WHERE v.kind = 'country' AND a.declared_country IS NOT NULL
    GROUP BY v.account_id
)
SELECT b.account_id,
       b.n_requests,
       d.active_days,
       CAST(b.n_requests AS DOUBLE) / d.active_days AS requests_per_active_day,
       b.input_tokens,
       b.output_tokens,
       CAST(b.output_tokens AS DOUBLE) / nullif(b.input_tokens, 0) AS output_input_ratio,
       b.max_token_saturation_share,
       b.reasoning_share,
       b.cot_expose_share,
       b.step_by_step_share,
       cap.entropy AS capability_entropy,
       cap.top_share AS top_capability_share,
       d.distinct_templates,
       CASE WHEN b.templated_requests > 0
            THEN CAST(d.distinct_templates AS DOUBLE) / b.templated_requests END AS template_coverage,
       tpl.top_share AS top_template_share,
       sh.template_sharing,
       b.multi_turn_share,
       d.conversations,
       tm.interarrival_cv,
       hr.entropy AS hour_entropy,
       b.night_share_local,
       b.post_release_new_model_share,
       d.distinct_ips,
       d.distinct_prefixes,
       d.distinct_asns,
       d.distinct_countries,
       CAST(d.distinct_ips AS DOUBLE) / b.n_requests AS ips_per_request,
       b.hosting_share,
       b.vpn_share,
       d.distinct_user_agents,
       d.distinct_tls_fingerprints,
       date_diff('microsecond', a.created_at, b.first_request_at) / 86400000000.0 AS account_age_days,
       a.pathway,
       a.verified,
       ae.email_domain_class,
       dc.declared_country_share
FROM base AS b
JOIN distinct_vals AS d ON d.account_id = b.account_id
LEFT JOIN cap ON cap.account_id = b.account_id
LEFT JOIN tpl ON tpl.account_id = b.account_id
LEFT JOIN hours AS hr ON hr.account_id = b.account_id
LEFT JOIN sharing AS sh ON sh.account_id = b.account_id
LEFT JOIN timing AS tm ON tm.account_id = b.account_id
LEFT JOIN {acc} AS a ON a.account_id = b.account_id
LEFT JOIN {acc_enr} AS ae ON ae.account_id = b.account_id
LEFT JOIN declared AS dc ON dc.account_id = b.account_id
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
    stats: StatsNames | None = None,
    params: StatsParams | None = None,
) -> pa.Table:
    """One row per account with traffic, whole period: the columns of :data:`FINGERPRINT_COLUMNS`.

    The names are tables already registered on ``backend`` (see :func:`register_dataset`):
    ``exchanges`` and ``accounts`` canonical, ``signals``/``enrichment``/``account_enrichment``
    the prepared ``derived/signals``, ``derived/enrichment`` and ``derived/accounts``;
    ``releases`` optional (``None``: ``post_release_new_model_share`` is null). Accounts
    without a request have no row. Ordered by ``account_id``.

    ``stats``: statistics tables already registered (:mod:`distillshield.features.stats`),
    e.g. an incremental state's; the exchange arguments are then not read. Without it the
    exchanges are summarised first (as one chunk) into engine tables of default names.
    """
    if stats is None:
        stats = StatsNames()
        compute_stats(
            backend,
            exchanges=exchanges,
            signals=signals,
            enrichment=enrichment,
            accounts=accounts,
            releases=releases,
            params=params,
            into=stats,
            tables=("chunks", "vals"),
        )
    return backend.query(
        fingerprint_sql(stats=stats, accounts=accounts, account_enrichment=account_enrichment)
    )


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
