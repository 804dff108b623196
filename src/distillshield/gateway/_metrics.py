"""Prometheus metrics of one gateway app, in its own registry (no module-level state).

Label values are bounded: actions, rule ids and endpoints — never account or campaign ids,
which would explode the series count. The request path takes its labelled series through
:class:`Children` (each ``labels(...)`` looked up once, then a dict hit).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Children", "GatewayMetrics"]


class Children:
    """``metric.labels(*values)``, cached by label values: prometheus_client validates and
    converts the values on every ``labels`` call (some µs each, several per request) before
    returning the same child object it returned the first time. Label values here are bounded
    (see the module docstring), so the cache is too."""

    __slots__ = ("_cache", "_labels")

    def __init__(self, metric: Any) -> None:
        self._labels = metric.labels
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._labels(*values)
        return child


#: Added-latency buckets (seconds): the target is p50 <= 1 ms, p99 <= 5 ms.
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class GatewayMetrics:
    def __init__(self, fail_mode: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "distillshield_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.decisions = Counter(
            "distillshield_decisions", "Decisions by strongest action", ["action"], registry=r
        )
        self.rules = Counter("distillshield_rule_matches", "Policy rule matches", ["rule"], registry=r)
        self.added_latency = Histogram(
            "distillshield_added_latency_seconds",
            "Time a proxied request spends in the gateway, minus its waits on the upstream",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "distillshield_upstream_errors", "Upstream failures", ["kind"], registry=r
        )
        self.store_errors = Counter("distillshield_store_errors", "Shared-store failures", ["op"], registry=r)
        self.fail_mode = Gauge(
            "distillshield_fail_mode",
            "Configured behaviour when the store is down (1 = active)",
            ["mode"],
            registry=r,
        )
        self.fail_mode_applied = Counter(
            "distillshield_fail_mode_applied", "Requests decided by the fail mode", ["mode"], registry=r
        )
        self.online_synced = Counter(
            "distillshield_online_synced",
            "Accounts whose online state was exchanged with the other workers through the store",
            registry=r,
        )
        self.store_degraded = Gauge(
            "distillshield_store_degraded", "1 while the shared store is unreachable", registry=r
        )
        self.verdict_version = Gauge(
            "distillshield_verdicts_loaded_timestamp_seconds",
            "When the current verdicts were loaded",
            registry=r,
        )
        self.verdict_accounts = Gauge(
            "distillshield_verdict_accounts", "Accounts with a batch verdict", registry=r
        )
        self.policy_reloads = Counter(
            "distillshield_policy_reloads", "Policy reloads by outcome", ["outcome"], registry=r
        )
        self.log_appended = Gauge(
            "distillshield_log_appended", "Exchange log records acknowledged", registry=r
        )
        self.log_pending = Gauge(
            "distillshield_log_pending", "Exchange log records not yet in the sink", registry=r
        )
        self.log_sink_errors = Gauge(
            "distillshield_log_sink_errors", "Exchange log sink failures", registry=r
        )
        self.in_flight = Gauge(
            "distillshield_in_flight", "Proxied requests in the gateway (admission control)", registry=r
        )
        self.admission_rejected = Counter(
            "distillshield_admission_rejected",
            "Requests turned away with 503 by admission control",
            ["reason"],
            registry=r,
        )
        for mode in ("open", "closed"):
            self.fail_mode.labels(mode).set(1 if mode == fail_mode else 0)
        # the labelled series the request path touches, pre-bound
        self.request = Children(self.requests)  # (endpoint, status)
        self.decision = Children(self.decisions)  # (action,)
        self.rule = Children(self.rules)  # (rule id,)
        self.latency = Children(self.added_latency)  # (endpoint,)

    def set_fail_mode(self, fail_mode: str) -> None:
        for mode in ("open", "closed"):
            self.fail_mode.labels(mode).set(1 if mode == fail_mode else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
