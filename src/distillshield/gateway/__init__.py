"""The real-time enforcement layer: an OpenAI-compatible proxy and its decision engine.

Public API (docs/gateway.md)::

    create_app(config, transport=..., store=...)   the ASGI app (Starlette)
    Engine(policy, verdicts=...)                   decide / record, shared with LiteLLM and replay
    load_policy(path), Policy, Facts               enforcement policy as data
    build_verdicts(det_dir, data=...)              batch verdicts + campaign indicator index
    open_store(url), KeyRecord, hash_key           shared state (memory:// or redis://)
"""

from __future__ import annotations

from distillshield.gateway._store import (
    KeyRecord,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
    hash_key,
    open_store,
)
from distillshield.gateway._types import Action, Decision, RequestContext
from distillshield.gateway.app import Gateway, create_app
from distillshield.gateway.config import ConfigError, GatewayConfig, load_config
from distillshield.gateway.engine import Engine
from distillshield.gateway.policy import DEFAULT_POLICY, Facts, Policy, PolicyError, load_policy
from distillshield.gateway.verdicts import AccountVerdict, Indicator, VerdictSet, build_verdicts

__all__ = [
    "DEFAULT_POLICY",
    "AccountVerdict",
    "Action",
    "ConfigError",
    "Decision",
    "Engine",
    "Facts",
    "Gateway",
    "GatewayConfig",
    "Indicator",
    "KeyRecord",
    "MemoryStore",
    "Policy",
    "PolicyError",
    "RedisStore",
    "RequestContext",
    "StoreUnavailable",
    "VerdictSet",
    "build_verdicts",
    "create_app",
    "hash_key",
    "load_config",
    "load_policy",
    "open_store",
]
