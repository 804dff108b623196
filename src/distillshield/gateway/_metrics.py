"""Prometheus metrics of one gateway app, in its own registry (no module-level state).

Label values are bounded: actions, rule ids and endpoints — never account or campaign ids,
which would explode the series count. The request path takes its labelled series through
:class:`Children` (each ``labels(...)`` looked up once, then a dict hit).

Several workers (``distillshield gateway --workers N``) share one port, so a scrape reaches
whichever worker accepts it. They run prometheus_client's multiprocess mode: every worker
keeps its values in memory-mapped files in one directory (``PROMETHEUS_MULTIPROC_DIR``, set
by the parent before the workers start, because prometheus_client picks its value storage
when it is imported), and ``/metrics`` on any worker reads them all. Counters and histograms
are summed over every worker that ever ran in the group, the dead included (a counter must
not go backwards when a worker is replaced); a gauge says how it combines (``GAUGE_MODES``):
the ones that describe a live process (requests in flight, records pending) count live
workers only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GAUGE_MODES", "Children", "GatewayMetrics", "forget_dead_workers", "multiprocess_ready"]

_Mode = Literal["sum", "livesum", "livemax", "mostrecent"]
#: How each gauge combines over the workers in multiprocess mode (prometheus_client modes;
#: ``live*`` ignores workers that are gone).
GAUGE_MODES: dict[str, _Mode] = {
    "distillshield_fail_mode": "mostrecent",
    "distillshield_store_degraded": "livemax",
    "distillshield_verdicts_loaded_timestamp_seconds": "livemax",
    "distillshield_verdict_accounts": "livemax",
    "distillshield_log_appended": "sum",  # acknowledged records since the group started
    "distillshield_log_pending": "livesum",
    "distillshield_log_sink_errors": "sum",
    "distillshield_in_flight": "livesum",
    "distillshield_online_accounts": "livesum",  # per-account online states held now
    "distillshield_online_accounts_forgotten": "sum",  # dropped by max_accounts since start
}

_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def multiprocess_ready(directory: str | Path) -> str | None:
    """Why this process cannot write multiprocess metrics into ``directory`` (``None`` if it can).

    prometheus_client chooses memory-mapped values when it is first imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; a worker started without it would count in private memory
    and every scrape would show one worker's numbers.
    """
    from prometheus_client import values

    env = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if env is None or Path(env).resolve() != Path(directory).resolve():
        return f"PROMETHEUS_MULTIPROC_DIR is {env!r}, not {str(directory)!r}"
    if values.ValueClass is values.MutexValue:
        return "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set"
    return None


def forget_dead_workers(directory: str | Path) -> list[int]:
    """Drop the live-gauge files of processes that no longer exist; returns their pids.

    A worker killed without shutting down leaves its ``live*`` gauges behind (a stuck
    "in flight" count); its replacement calls this when it starts. Counter and histogram
    files are kept: their totals include the dead.
    """
    from prometheus_client import multiprocess

    dead: set[int] = set()
    for path in Path(directory).glob("gauge_live*.db"):
        m = _LIVE_FILE.match(path.name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            dead.add(pid)
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return sorted(dead)


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


def _gauge(name: str, doc: str, labels: list[str] | None = None, *, registry: CollectorRegistry) -> Gauge:
    return Gauge(name, doc, labels or [], registry=registry, multiprocess_mode=GAUGE_MODES[name])


class GatewayMetrics:
    """The gateway's series. ``multiprocess_dir``: render every worker's values from that
    directory (module docstring); this process must have been started with
    ``PROMETHEUS_MULTIPROC_DIR`` pointing there (:func:`multiprocess_ready`)."""

    def __init__(self, fail_mode: str, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
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
        self.fail_mode = _gauge(
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
        self.cohort_values_synced = Counter(
            "distillshield_online_cohort_values_synced",
            "Indicator values whose fresh-account cohort window was exchanged with the fleet",
            registry=r,
        )
        self.cohorts_fired_by_fleet = Counter(
            "distillshield_online_cohorts_fired_by_fleet",
            "Fresh-account cohorts found significant on the fleet's counts at a sync",
            registry=r,
        )
        self.store_degraded = _gauge(
            "distillshield_store_degraded", "1 while the shared store is unreachable", registry=r
        )
        self.verdict_version = _gauge(
            "distillshield_verdicts_loaded_timestamp_seconds",
            "When the current verdicts were loaded",
            registry=r,
        )
        self.verdict_accounts = _gauge(
            "distillshield_verdict_accounts", "Accounts with a batch verdict", registry=r
        )
        self.policy_reloads = Counter(
            "distillshield_policy_reloads", "Policy reloads by outcome", ["outcome"], registry=r
        )
        self.log_appended = _gauge(
            "distillshield_log_appended", "Exchange log records acknowledged", registry=r
        )
        self.log_pending = _gauge(
            "distillshield_log_pending", "Exchange log records not yet in the sink", registry=r
        )
        self.log_sink_errors = _gauge(
            "distillshield_log_sink_errors", "Exchange log sink failures", registry=r
        )
        self.online_accounts = _gauge(
            "distillshield_online_accounts", "Per-account online states held in memory", registry=r
        )
        self.online_accounts_forgotten = _gauge(
            "distillshield_online_accounts_forgotten",
            "Per-account online states dropped by the online_max_accounts bound",
            registry=r,
        )
        self.in_flight = _gauge(
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
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def process_exited(self) -> None:
        """A clean stop: this worker's live gauges stop counting (multiprocess mode only)."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
