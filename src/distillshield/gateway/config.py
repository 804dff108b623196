"""Gateway configuration: one TOML file, every field documented, unknown keys refused.

Secrets (the upstream API key, the admin token, the marking key) are never written in the
file: it names the environment variables that hold them, so the file can be committed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distillshield._pydantic_errors import format_validation_error
from distillshield.errors import DistillShieldError
from distillshield.gateway.risk import DEFAULT_MAX_ACCOUNTS

__all__ = ["ConfigError", "GatewayConfig", "load_config"]


class ConfigError(DistillShieldError):
    """A gateway configuration that cannot be used (names the file and the key)."""


class GatewayConfig(BaseModel):
    """Everything ``distillshield gateway`` needs; see docs/gateway.md for each field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: str = Field(description="Base URL of the OpenAI-compatible model server (…/v1 is appended)")
    upstream_api_key_env: str | None = Field(None, description="env var holding the upstream's API key")
    upstream_timeout_s: float = Field(600.0, gt=0, description="read timeout for the upstream")
    upstream_connect_timeout_s: float = Field(5.0, gt=0)
    upstream_client: Literal["auto", "aiohttp", "httpx"] = Field(
        "auto", description="HTTP client for the upstream: auto = aiohttp when installed, else httpx"
    )
    max_in_flight: int = Field(
        0, ge=0, description="admission control: proxied requests handled at once (0 = no limit)"
    )
    max_queued: int = Field(0, ge=0, description="requests waiting for a slot beyond max_in_flight")
    queue_timeout_s: float = Field(1.0, gt=0, description="how long a queued request waits for a slot")
    gc_tune: bool = Field(
        True, description="after start-up: freeze the loaded state out of the cyclic GC, collect less often"
    )
    online_model: str | None = Field(
        None,
        description="account model the online risk scores new accounts with until a batch run has "
        "judged them: 'shipped', a model file, or unset (off; docs/gateway-evaluation.md measures why)",
    )
    online_model_at: float = Field(0.5, gt=0, lt=1, description="probability at which that term fires")
    online_max_accounts: int = Field(
        DEFAULT_MAX_ACCOUNTS,
        ge=1,
        description="per-account online states a worker holds (about 6-18 KiB each); the least "
        "recently active is forgotten first (docs/gateway.md, 'Memory')",
    )
    store: str = Field("memory://", description="memory:// (one process) or redis://host:port/db")
    store_timeout_s: float = Field(0.05, gt=0, description="per-call Redis timeout on the request path")
    policy: str | None = Field(None, description="policy YAML (default: the shipped default policy)")
    policy_refresh_s: float = Field(2.0, gt=0, description="how often the policy file is checked for edits")
    verdict_refresh_s: float = Field(2.0, gt=0, description="how often the store's verdict version is polled")
    verdicts: str | None = Field(None, description="a detection directory loaded at start (memory store)")
    log_dir: str = Field("gateway-logs", description="WAL + canonical Parquet exchanges (DATA/exchanges)")
    log_sink: Literal["parquet", "redis"] = "parquet"
    log_fsync: Literal["none", "batch", "always"] = "none"
    log_content: Literal["full", "none"] = Field(
        "full", description="'none' logs fingerprints and counts only (prompts/responses dropped)"
    )
    admin_token_env: str = Field(
        "DISTILLSHIELD_ADMIN_TOKEN", description="env var holding the admin bearer token"
    )
    mark_key_env: str = Field("DISTILLSHIELD_MARK_KEY", description="env var holding the marking key")
    max_request_bytes: int = Field(2_000_000, gt=0)
    trust_forwarded_for: bool = Field(False, description="take the client IP from X-Forwarded-For")
    tls_fingerprint_header: str | None = Field(
        "x-ja4", description="header set by the TLS-terminating load balancer with the client's fingerprint"
    )
    keys_file: str | None = Field(
        None,
        description="JSON lines of API keys loaded into the store at start: "
        '{"key_sha256": ..., "account_id": ..., "pathway": ..., "payment_fingerprint": ...}',
    )
    key_cache_s: float = Field(30.0, ge=0, description="how long a resolved API key is cached in process")
    verify_peers: list[str] = Field(
        default_factory=list,
        description="peers' STIX bundles / MISP events for /admin/verify (reloaded when a file changes)",
    )
    peer_key_env: str | None = Field(
        None, description="env var holding the sharing community's key (peers' keyed payment hashes)"
    )
    metrics_public: bool = Field(True, description="serve /metrics without the admin token")
    worker_id: str | None = Field(
        None,
        min_length=1,
        description="this worker's id in the shared online state (unique among live workers); "
        "default hostname:pid; with `gateway --workers N`, worker i is <worker_id or hostname:port>:<i>",
    )
    online_sync_s: float = Field(
        1.0,
        ge=0,
        description="how often per-account online state is shared through a Redis store (0 = per worker)",
    )
    metrics_dir: str | None = Field(
        None,
        description="prometheus multiprocess directory: every worker's series, summed by /metrics; "
        "`gateway --workers N` sets it to LOG_DIR/metrics (the process needs PROMETHEUS_MULTIPROC_DIR "
        "set to it before start)",
    )

    def secret(self, env_name: str | None) -> str | None:
        return None if env_name is None else os.environ.get(env_name)


def load_config(path: str | Path | None = None, **overrides: object) -> GatewayConfig:
    """Read ``path`` (TOML) and apply CLI ``overrides`` (``None`` values are ignored)."""
    data: dict[str, object] = {}
    source = "<command line>"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read gateway config: {exc}") from exc
        data = dict(data.get("gateway", data))  # type: ignore[call-overload]
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, "gateway config")) from exc
