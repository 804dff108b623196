"""What a valid canonical exchange is, as data: reasons, limits and enumerations.

Kept in one place because two validators enforce it — a per-record one for formats parsed
in Python (JSON, CSV) and a vectorised one for canonical Parquet — and both must quarantine
the same row for the same reason (tests run one input through both to check).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class Reason(StrEnum):
    """Why a record was quarantined (the ``reason`` column; docs/ingest.md explains each)."""

    INVALID_JSON = "invalid_json"
    INVALID_CSV = "invalid_csv"
    MISSING_REQUIRED = "missing_required"
    WRONG_TYPE = "wrong_type"
    BAD_TIMESTAMP = "bad_timestamp"
    FIELD_TOO_LARGE = "field_too_large"
    INVALID_IP = "invalid_ip"
    UNKNOWN_ENUM = "unknown_enum"
    OUT_OF_RANGE = "out_of_range"
    UNMATCHED_BATCH = "unmatched_batch"


#: Endpoints a canonical exchange may name. ``docs/schema.md`` lists the first four; the
#: others are real API surfaces that adapters can meet (legacy completions, embeddings,
#: Gemini-style generate_content).
ENDPOINTS: frozenset[str] = frozenset(
    {
        "chat.completions",
        "messages",
        "responses",
        "batch",
        "completions",
        "embeddings",
        "generate_content",
    }
)

#: HTTP status codes are 100..599; anything else is a logging bug, not a status.
STATUS_MIN, STATUS_MAX = 100, 599

#: Plausible request times. Logs from before 2000 or after 2100 are clock or unit errors
#: (e.g. milliseconds read as seconds), and detection would silently mis-bucket them.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)

#: A single text field (prompt, system prompt, response, metadata) above this is refused:
#: 1 MiB is far beyond any real prompt or answer and bounds the memory of one batch.
MAX_TEXT_BYTES = 1 << 20
#: Identifiers, model names, user agents and the like: anything longer is garbage.
MAX_SHORT_BYTES = 4096
#: At most this many tool names per request, each a short string.
MAX_TOOLS = 1024
#: One input record (a JSONL line, a CSV row) above this is refused before parsing.
MAX_RECORD_BYTES = 32 << 20
#: Quarantine keeps at most this much of the raw record (UTF-8 bytes), enough to debug.
RAW_LIMIT = 4096

#: Text columns checked against MAX_TEXT_BYTES (and redacted); other string columns use
#: MAX_SHORT_BYTES.
LONG_TEXT_COLUMNS: tuple[str, ...] = ("system_prompt", "prompt", "response", "metadata")
SHORT_TEXT_COLUMNS: tuple[str, ...] = (
    "request_id",
    "account_id",
    "org_id",
    "api_key_id",
    "model",
    "endpoint",
    "ip",
    "user_agent",
    "tls_fingerprint",
    "conversation_id",
)
#: Integer columns that must not be negative.
NON_NEGATIVE: tuple[str, ...] = (
    "n_messages",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "max_tokens",
)
