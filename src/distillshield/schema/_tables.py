"""Arrow definitions of the canonical tables.

A field is required when ``nullable=False``: a reader refuses a file without it. Nullable
fields may be absent from a file and then read as null. Extra columns are ignored, so
providers can keep their own fields beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

#: Account-creation pathways named in the seed; the abused ones are education,
#: research_program and startup_program.
PATHWAYS: tuple[str, ...] = (
    "self_serve",
    "education",
    "research_program",
    "startup_program",
    "enterprise",
    "reseller",
)


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its name, Arrow schema and key column."""

    name: str
    schema: pa.Schema
    key: str | None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if not f.nullable)


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


EXCHANGES = TableSpec(
    "exchanges",
    pa.schema(
        [
            _f("request_id", pa.string(), False),
            _f("ts", TS, False),
            _f("account_id", pa.string(), False),
            _f("org_id", pa.string()),
            _f("api_key_id", pa.string()),
            _f("model", pa.string(), False),
            _f("endpoint", pa.string(), False),
            _f("ip", pa.string(), False),
            _f("user_agent", pa.string()),
            _f("tls_fingerprint", pa.string()),
            _f("metadata", pa.string()),
            _f("conversation_id", pa.string()),
            _f("n_messages", pa.int32(), False),
            _f("system_prompt", pa.string()),
            _f("prompt", pa.string()),
            _f("tools", pa.list_(pa.string())),
            _f("response", pa.string()),
            _f("input_tokens", pa.int32(), False),
            _f("output_tokens", pa.int32(), False),
            _f("reasoning_tokens", pa.int32()),
            _f("max_tokens", pa.int32()),
            _f("temperature", pa.float64()),
            _f("stream", pa.bool_(), False),
            _f("status", pa.int16(), False),
        ]
    ),
    key="request_id",
)

ACCOUNTS = TableSpec(
    "accounts",
    pa.schema(
        [
            _f("account_id", pa.string(), False),
            _f("org_id", pa.string()),
            _f("created_at", TS, False),
            _f("pathway", pa.string(), False),
            _f("email_domain", pa.string()),
            _f("email_hash", pa.string()),
            _f("declared_country", pa.string()),
            _f("signup_ip", pa.string()),
            _f("payment_fingerprint", pa.string()),
            _f("verified", pa.bool_(), False),
        ]
    ),
    key="account_id",
)

RELEASES = TableSpec(
    "releases",
    pa.schema([_f("model", pa.string(), False), _f("released_at", TS, False)]),
    key="model",
)

ACCOUNT_LABELS = TableSpec(
    "labels/accounts",
    pa.schema(
        [
            _f("account_id", pa.string(), False),
            _f("campaign_id", pa.string()),
            _f("actor", pa.string()),
            _f("persona", pa.string(), False),
        ]
    ),
    key="account_id",
)

EXCHANGE_LABELS = TableSpec(
    "labels/exchanges",
    pa.schema(
        [
            _f("request_id", pa.string(), False),
            _f("campaign_id", pa.string()),
            _f("capability", pa.string()),
            _f("cot_elicit", pa.bool_()),
            _f("template_id", pa.int32()),
        ]
    ),
    key="request_id",
)

#: What a detector writes to ``DET/accounts.parquet`` (docs/evaluation.md).
DETECTION_ACCOUNTS = TableSpec(
    "accounts",
    pa.schema(
        [
            _f("account_id", pa.string(), False),
            _f("score", pa.float64(), False),
            _f("flagged", pa.bool_(), False),
            _f("campaign_id", pa.string()),
            _f("first_flagged_at", TS),
            _f("top_reasons", pa.list_(pa.string())),
            _f("novelty", pa.float64()),
            _f("campaign_share", pa.float64()),
            _f("intel_confidence", pa.float64()),
            # the model flagged it on a handful of requests with no link to another flag, and
            # the evidence floor held it (detect/floor.py); the gateway acts on it as a thin flag
            _f("held", pa.bool_()),
        ]
    ),
    key="account_id",
)

#: What ``distillshield intel hunt`` writes to ``HUNT/intel_evidence.parquet`` and ``distillshield
#: scan --intel HUNT`` reads: peers' intelligence about one of our accounts (docs/intel.md).
INTEL_EVIDENCE = TableSpec(
    "intel_evidence",
    pa.schema(
        [
            _f("account_id", pa.string(), False),
            _f("intel_indicators", pa.int64(), False),
            _f("intel_exact_indicators", pa.int64(), False),
            _f("intel_kinds", pa.list_(pa.string())),
            _f("intel_campaigns", pa.list_(pa.string())),
            _f("intel_sources", pa.list_(pa.string())),
            _f("intel_exchanges", pa.int64(), False),
            _f("intel_confidence", pa.float64(), False),
            _f("first_seen", TS),
            _f("last_seen", TS),
        ]
    ),
    key="account_id",
)

#: Request-level signals computed from content at ingest (docs/signals.md). They survive
#: ``--no-content``: detection never needs the text once these exist.
SIGNALS = TableSpec(
    "derived/signals",
    pa.schema(
        [
            _f("request_id", pa.string(), False),
            _f("prompt_chars", pa.int32()),
            _f("response_chars", pa.int32()),
            _f("language", pa.string()),
            _f("template_id", pa.string()),
            _f("template_family", pa.string()),
            _f("cot_elicit", pa.string()),
            _f("cot_score", pa.float32()),
            _f("capability", pa.string()),
            _f("redactions", pa.int16()),
        ]
    ),
    key="request_id",
)

#: Per-exchange facts from metadata (IP and client); recomputable whenever lists change.
EXCHANGE_ENRICHMENT = TableSpec(
    "derived/enrichment",
    pa.schema(
        [
            _f("request_id", pa.string(), False),
            _f("ip_version", pa.int8()),
            _f("ip_country", pa.string()),
            _f("asn_name", pa.string()),
            _f("asn_network", pa.string()),
            _f("ip_prefix", pa.string()),
            _f("is_hosting", pa.bool_()),
            _f("is_vpn", pa.bool_()),
            _f("is_tor", pa.bool_()),
            _f("client_family", pa.string()),
            _f("sdk", pa.string()),
            _f("sdk_version", pa.string()),
            _f("client_os", pa.string()),
            _f("is_browser", pa.bool_()),
        ]
    ),
    key="request_id",
)

#: Per-account facts (sign-up data against observed traffic).
ACCOUNT_ENRICHMENT = TableSpec(
    "derived/accounts",
    pa.schema(
        [
            _f("account_id", pa.string(), False),
            _f("email_domain_class", pa.string()),
            _f("signup_country", pa.string()),
            _f("signup_is_hosting", pa.bool_()),
            _f("observed_countries", pa.list_(pa.string())),
            _f("declared_country_share", pa.float64()),
            _f("restricted_country_share", pa.float64()),
            _f("first_seen", TS),
            _f("age_days_at_first_request", pa.float64()),
        ]
    ),
    key="account_id",
)

#: One row per distinct prompt template seen at ingest, with its MinHash signature, so
#: near-duplicate families can be found later even when the text was not kept.
TEMPLATE_FINGERPRINTS = TableSpec(
    "derived/template_fingerprints",
    pa.schema(
        [
            _f("template_id", pa.string(), False),
            _f("minhash", pa.list_(pa.uint32())),
            _f("shingles", pa.int32()),
            _f("count", pa.int64()),
        ]
    ),
    key=None,
)

#: Near-duplicate template families over the whole dataset (LSH, docs/signals-template.md).
TEMPLATES = TableSpec(
    "derived/templates",
    pa.schema(
        [
            _f("template_id", pa.string(), False),
            _f("template_family", pa.string(), False),
            _f("count", pa.int64()),
        ]
    ),
    key="template_id",
)

SCHEMAS: dict[str, TableSpec] = {
    s.name: s
    for s in (
        EXCHANGES,
        ACCOUNTS,
        RELEASES,
        ACCOUNT_LABELS,
        EXCHANGE_LABELS,
        SIGNALS,
        EXCHANGE_ENRICHMENT,
        ACCOUNT_ENRICHMENT,
        TEMPLATE_FINGERPRINTS,
        TEMPLATES,
    )
}
