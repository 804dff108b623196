"""Online risk: how much an account's live traffic looks like a harvest, in [0, 1].

A :class:`RiskModel` learns from each finished exchange (``learn_one``) and scores each new
request (``score_one``) before it is forwarded; :class:`OnlineRisk` also listens to every
batch verdict refresh (``on_verdicts``), which is how it calibrates itself.

Why an online model at all: batch detection runs every few hours, and a campaign's first
hours — before any batch run has seen it — are served unprotected (docs/gateway-evaluation.md
measures this: it is most of the leakage). What can be known in those hours is evidence that
needs no history of the account: *many fresh accounts showing up together on the same
infrastructure*, and requests that ask for the model's hidden reasoning.

Evidence (each fires with a reason code):

``cohort:<kind>``
    The request comes from a *fresh* account (created less than ``fresh_days`` before the
    gateway first saw it) and its value of ``kind`` — client fingerprint (user agent + TLS),
    /24 egress prefix, request template id, sign-up /24 — has, within the last
    ``window_s``, ``k`` fresh users out of ``n`` users, which is improbable if accounts
    picked values independently of their age: the binomial tail ``P(X >= k)``,
    ``X ~ Bin(n, p)`` with ``p`` the fresh share among *all* accounts active in the window
    (learned online), is below ``alpha`` (Chernoff bound ``exp(-n KL(k/n || p))``, an upper
    bound, so the test is conservative). This is a hydra's new heads arriving together
    from one operator's tooling or servers; it adapts to the provider's own base rate of new
    accounts rather than a fixed count. The account keeps the membership for its later
    requests (it joined the cohort; its other templates are no less its) — except a
    membership of a client-stack cohort, which ends once a batch run has judged the account
    and not flagged it (:data:`CLEARED_KINDS`, :meth:`OnlineRisk._clear_members`).
``expose``
    The account's count of requests asking to expose the model's hidden reasoning is
    improbable under the background rate of such requests (all traffic, learned online;
    inflated by campaigns, hence conservative): the same binomial test. One curious request
    never fires it.
``abroad:<declared>><seen>``
    The request comes from a *fresh* account that no batch run has judged yet (first seen
    after the horizon of the verdicts in force), within its first ``abroad_requests``
    requests, and exits from a country other than the one the customer declared
    (``declared_country`` on the key record; the request's country from the same offline
    GeoIP tables as the batch enrichment). This is a hydra reseller's new head — bought to
    serve customers where the service is not offered, used from there from its first
    request — before anything ties it to its campaign; the batch model's hydra head reads
    the same evidence over the whole history (``declared_country_share``). A traveller or a
    student abroad looks the same, so the term is bounded twice: to the account's first
    ``abroad_requests`` requests (the account model's pseudo-requests, 10: after them the
    account's own traffic is the evidence) and to the hours before the next batch run,
    whose verdict then replaces it; and what it is worth is learned from batch feedback like
    every other term, so on traffic where fresh accounts abroad are mostly customers it
    falls below the policy's threshold by itself.
``model:<head>`` (only with ``account_model``; off by default)
    The batch account model (:mod:`distillshield.detect.model`, one head per campaign tactic)
    scored on the account's own online features — the batch definitions of the same
    traffic, tested equal — for a *fresh* account that no batch run has judged yet (first
    seen after the horizon of the verdicts in force). Fires while the probability is at
    least ``model_at``; once a batch run has seen the account its verdict is the judgement.
    What the gateway cannot know (who shares the account's card or addresses: the graph
    features; account facts a key record lacks) is read as the model's mean, contributing
    nothing. Off by default because it costs more than it saves on a benchmark researcher's
    burst: the tactic heads read a high reasoning-model share as agentic extraction, in
    batch too (docs/gateway-evaluation.md, "The account model online").

What a fired term is worth is **learned from batch detection**, not set by hand: at each
verdict refresh (:meth:`OnlineRisk.on_verdicts`), every account on which a term fired and
which the batch scan could see (first seen before the verdicts' ``until``) counts as a
success when batch flagged it and a failure otherwise. A term's risk is the posterior mean
share of flagged accounts, shrunk twice: per value (``cohort:client=X``; for the model
term, per head) towards its kind's share, and the kind's share towards ``prior_precision``
with ``prior_strength`` pseudo-accounts. Before any batch evidence the risk of a fired term
is ``prior_precision`` (0.9: a cohort that improbable is presumed coordinated); a university
class behind one campus NAT — a true fresh cohort that batch detection does not flag — has its NAT value
cleared after the first batch run that sees it (60 unflagged of 60: ``(0 + 9) / (60 +
10) = 0.13``), and a kind that fires mostly on accounts batch clears loses its prior too.
The policy's ``online-risk`` threshold (0.8) then reads as "at least 80 % of the accounts on
which this evidence fired turn out to be campaign accounts".

Thresholds and why:

* ``alpha = 1e-6`` — a per-value test run on every request: with 10^3–10^4 distinct values
  active in a window, the chance that independent sign-ups trip it anywhere in a window is
  at most ~1 % (Bonferroni); it is a significance level, not a count fitted to traffic.
* ``fresh_days = 30`` — one billing cycle: an account younger than its first invoice.
  Farmed accounts are used within days; buying aged accounts defeats this term (and costs
  the operator money, which is the point).
* ``window_s = 6 h`` — the batch cadence: the cohort must be visible before batch detection
  can act, and a value's users older than that are the batch's job.
* ``prior_precision = 0.9``, ``prior_strength = 10`` — what an uncorroborated, improbable
  fresh cohort is presumed to be, worth ten accounts of batch evidence: three flagged
  accounts outweigh it less than ten cleared ones do.

Memory: per account its :class:`~distillshield.features.online.AccountOnline` state (the
online features, also used for reason codes), its first-seen time and at most
``max_memberships`` cohort memberships — at most ``max_accounts`` accounts, the one whose
last request is oldest forgotten first; per value its users within the window and its batch
feedback (at most ``max_values`` values, least recently used dropped first). Why a bound:
an account costs about 6 KiB of memory after one request and 13–18 KiB after 20–200
(``bench/bench_online_memory.py``, docs/gateway.md "Memory"), so a provider's whole customer
base does not fit one process; a worker holds its recently active accounts. What forgetting
costs: in process, the forgotten account's history (it starts again as new on its next
request: first seen then, so also *unjudged* until the next batch horizon, which only lets
the model term look at it again while the account is fresh); with a shared store, none of
its features — an account is forgotten only after its state was written (never while it has
changes the next sync has not sent), and on its return the worker adopts its own blob back,
as after a restart (:meth:`OnlineRisk.merge_shared`), first-seen time included, and the
exposure test and model term run again on it. Its fresh-account cohort memberships are not in
the blob and are lost (its values' current windows judge it again).

Across workers (docs/gateway.md, "Online state across workers"): an account's state here is
*this worker's own* events; :meth:`OnlineRisk.merge_shared` takes the other workers' states
of the account (from the shared store, in the background) and keeps them merged as its
*peers* state, never mixed into the own one, so writing the own state back never counts a
peer's event twice. The fleet view is own ⊕ peers: the exposure test reads it (as the two
counts it needs, which add exactly) and :meth:`OnlineRisk.fleet_state` builds it whole.

The cohort windows are shared too (:meth:`OnlineRisk.cohort_changes` /
:meth:`OnlineRisk.merge_cohort`): each value keeps this worker's exact window *and* the
fleet's ``(users, fresh users)`` — a union kept in the store — as of the last sync, and the
test fires on whichever is more improbable (a fleet count more than ``grain_s`` old is not
used). Behind sticky routing (an account pinned to one of W workers) each worker sees about
1/W of a value's users, so without the fleet's counts a cohort needed about W times as many
fresh accounts to fire anywhere. Memberships are assigned by each worker to the fresh users
it has seen, when either view becomes significant. The base rates and the batch feedback
stay per worker: ratios every worker estimates from a sample of the same traffic.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from distillshield.features.online import AccountOnline, OnlineConfig, OnlineEvent
from distillshield.gateway._types import Decision, RequestContext

__all__ = [
    "COHORT_KINDS",
    "DEFAULT_MAX_ACCOUNTS",
    "OnlineRisk",
    "RiskModel",
    "binomial_tail_bound",
    "online_risk",
]

#: Per-account online states a worker holds by default (module docstring, "Memory").
DEFAULT_MAX_ACCOUNTS = 200_000

#: Indicator kinds a fresh-account cohort is looked for on (see :class:`OnlineRisk`).
COHORT_KINDS: tuple[str, ...] = ("client", "prefix", "template", "signup")
#: Cohort kinds whose memberships end when a batch run judges the member and does not flag
#: it (:meth:`OnlineRisk._clear_members`): a client stack is an SDK release, which a new
#: customer shares with a farm by chance as often as by design; a prompt template is the
#: farm's own generator. Batch detection draws the same line (a client-stack hub clusters
#: but does not corroborate: :mod:`distillshield.detect.campaigns`).
CLEARED_KINDS: tuple[str, ...] = ("client",)

log = logging.getLogger("distillshield.gateway")

_FLAGGED = frozenset({"campaign", "flagged", "block"})
_EXPOSE = "expose_reasoning"


class RiskModel(Protocol):
    def score_one(self, ctx: RequestContext, signals: dict[str, Any]) -> tuple[float, tuple[str, ...]]: ...

    def learn_one(
        self,
        ctx: RequestContext,
        decision: Decision,
        *,
        status: int,
        output_tokens: int,
        reasoning_tokens: int | None,
    ) -> None: ...


def binomial_tail_bound(k: int, n: int, p: float) -> float:
    """Chernoff upper bound on ``P(X >= k)`` for ``X ~ Bin(n, p)``: ``exp(-n KL(k/n || p))``
    when ``k > n p``, else 1. Exact when ``k == n`` (``p ** n``)."""
    if n <= 0 or k <= n * p:
        return 1.0
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    q = k / n
    kl = q * math.log(q / p) + ((1.0 - q) * math.log((1.0 - q) / (1.0 - p)) if q < 1.0 else 0.0)
    return math.exp(-n * kl)


class _Recent:
    """Distinct users of one value within a sliding window, and how many are fresh.

    A user's last use is re-stamped at most every ``grain`` seconds, so a user may leave
    the window up to ``grain`` early (the queue then holds at most ``window / grain``
    entries per user).
    """

    __slots__ = ("fresh", "last", "n", "queue")

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, bool]] = {}
        self.queue: deque[tuple[float, str]] = deque()
        self.n = 0
        self.fresh = 0

    def add(self, ts: float, account: str, fresh: bool, grain: float) -> bool:
        """Record a use; returns whether the user's last use was (re-)stamped."""
        prev = self.last.get(account)
        if prev is None:
            self.n += 1
            self.fresh += fresh
        elif ts - prev[0] < grain:
            return False
        self.last[account] = (ts, fresh)
        self.queue.append((ts, account))
        return True

    def expire(self, now: float, window: float) -> None:
        q, last = self.queue, self.last
        horizon = now - window
        while q and q[0][0] < horizon:
            ts, account = q.popleft()
            cur = last.get(account)
            if cur is not None and cur[0] == ts:
                del last[account]
                self.n -= 1
                self.fresh -= cur[1]


class _Value:
    """One indicator value: its recent users, its fresh users ever, and batch feedback."""

    __slots__ = ("cohort", "flagged", "fleet", "recent", "scanned", "swept")

    def __init__(self) -> None:
        self.recent = _Recent()
        self.swept = False
        self.cohort: set[str] = set()  # accounts on which the cohort term fired for this value
        self.flagged = 0
        self.scanned = 0
        # the fleet's (users, fresh users, newest request when read), from the last sync
        # that read this value
        self.fleet: tuple[int, int, float] | None = None

    def bound(self, p: float, now: float, max_age: float) -> tuple[float, int, int, bool]:
        """The cohort test on the more improbable of the two views — this worker's users
        (exact, now) and the fleet's union (as of the last sync that read the value, when
        that is less than ``max_age`` old): ``(bound, fresh, users, from_fleet)``. Either view
        is a valid test of the same hypothesis; taking the smaller bound at most doubles the
        false-alarm rate (``2 alpha``)."""
        r = self.recent
        local = binomial_tail_bound(r.fresh, r.n, p)
        if self.fleet is not None and now - self.fleet[2] <= max_age:
            n, k, _ = self.fleet
            fleet = binomial_tail_bound(k, n, p)
            if fleet < local:
                return fleet, k, n, True
        return local, r.fresh, r.n, False


class _Account:
    __slots__ = (
        "claimed",
        "cleared",
        "created",
        "expose",
        "first_seen",
        "memberships",
        "model",
        "online",
        "peer_digests",
        "peers",
    )

    def __init__(self, online: AccountOnline, first_seen: float, created: float | None) -> None:
        self.online = online  # this worker's own events only (what it writes to the store)
        self.first_seen = first_seen
        self.created = created
        self.memberships: list[tuple[str, str]] = []
        # memberships a batch run judged: it saw the account in the cohort and did not flag it
        self.cleared: tuple[tuple[str, str], ...] = ()
        self.expose: str | None = None  # the evidence, once the exposure test fired
        self.model: tuple[float, str, str] | None = None  # (probability, head, top input) while >= model_at
        self.peers: AccountOnline | None = None  # the other workers' states, merged
        self.peer_digests: dict[str, bytes] = {}  # worker -> digest of its state merged in peers
        self.claimed = False  # the store's state under this worker's id was looked at (adopted)

    def exposure(self) -> tuple[int, int]:
        """Fleet-wide ``(requests, requests asking to expose the reasoning)``: own + peers —
        the ``n_requests`` and ``cot_expose_share * n_requests`` of own ⊕ peers (counts add
        exactly), without building the merged state on the request path."""
        own, peers = self.online, self.peers
        n, k = own.n.n, own.counts["expose"].n
        if peers is not None:
            n, k = n + peers.n.n, k + peers.counts["expose"].n
        return n, k

    @property
    def fresh_age_days(self) -> float | None:
        return None if self.created is None else (self.first_seen - self.created) / 86_400.0


class OnlineRisk:
    """Fresh-account cohorts and reasoning-exposure counts, calibrated by batch verdicts.

    Constructor arguments are the whole configuration (the module docstring justifies each
    default): ``cohort_kinds`` (subset of :data:`COHORT_KINDS`), ``cleared_kinds`` (those
    whose memberships a batch run's judgement ends: :data:`CLEARED_KINDS`), ``window_s``,
    ``fresh_days``, ``alpha``, ``prior_precision``, ``prior_strength``, ``grain_s`` (how
    often a user's last use is re-stamped in a value's window), ``max_values``,
    ``max_memberships``, ``max_cohort`` (accounts remembered per value for feedback),
    ``max_accounts`` (per-account states held; least recently active forgotten first),
    ``online_config`` (:class:`~distillshield.features.online.OnlineConfig` of the
    per-account states) and ``abroad_requests`` (how many of a fresh, unjudged account's
    first requests the ``abroad`` term looks at; 0 turns it off).

    ``score_one`` reads ``signals`` as the engine builds them: ``template_id``,
    ``ip_prefix``, ``client`` (user agent + TLS), ``signup_prefix``, ``ip_country``,
    ``declared_country`` and ``account_created`` (epoch seconds; ``None`` when the account
    record has no creation time: such an account is never "fresh").
    """

    def __init__(
        self,
        *,
        cohort_kinds: Iterable[str] = COHORT_KINDS,
        cleared_kinds: Iterable[str] = CLEARED_KINDS,
        window_s: float = 6 * 3600.0,
        fresh_days: float = 30.0,
        alpha: float = 1e-6,
        prior_precision: float = 0.9,
        prior_strength: float = 10.0,
        grain_s: float = 600.0,
        max_values: int = 200_000,
        max_memberships: int = 8,
        max_cohort: int = 4096,
        max_accounts: int = DEFAULT_MAX_ACCOUNTS,
        online_config: OnlineConfig | None = None,
        account_model: Any = None,
        model_at: float = 0.5,
        abroad_requests: int = 10,
    ) -> None:
        kinds = tuple(cohort_kinds)
        unknown = set(kinds) - set(COHORT_KINDS)
        if unknown:
            raise ValueError(f"unknown cohort kind(s) {sorted(unknown)}; known: {COHORT_KINDS}")
        cleared = tuple(cleared_kinds)
        if set(cleared) - set(COHORT_KINDS):
            raise ValueError(
                f"unknown cleared kind(s) {sorted(set(cleared) - set(COHORT_KINDS))}; known: {COHORT_KINDS}"
            )
        if not 0.0 < prior_precision < 1.0 or prior_strength <= 0 or not 0.0 < alpha < 1.0:
            raise ValueError("prior_precision and alpha must lie in (0, 1), prior_strength above 0")
        if not 0.0 < model_at < 1.0:
            raise ValueError(f"model_at must lie in (0, 1), got {model_at}")
        if max_accounts < 1:
            raise ValueError(f"max_accounts must be at least 1, got {max_accounts}")
        if abroad_requests < 0:
            raise ValueError(f"abroad_requests must be at least 0 (0: off), got {abroad_requests}")
        self.cohort_kinds = kinds
        self.cleared_kinds = cleared
        self.window_s = float(window_s)
        self.fresh_days = float(fresh_days)
        self.alpha = float(alpha)
        self.prior_precision = float(prior_precision)
        self.prior_strength = float(prior_strength)
        self.grain_s = float(grain_s)
        self.max_values = int(max_values)
        self.max_memberships = int(max_memberships)
        self.max_cohort = int(max_cohort)
        self.max_accounts = int(max_accounts)
        self.online_config = online_config or OnlineConfig()
        # least recently active first (learn_one moves an account to the end)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self.forgotten = 0  # accounts dropped by the max_accounts bound
        self._values: OrderedDict[tuple[str, str], _Value] = OrderedDict()
        self._active = _Recent()  # every account active in the window: the fresh base rate
        self._requests = 0
        self._expose = 0
        self._expose_fired: set[str] = set()
        self.abroad_requests = int(abroad_requests)
        self._abroad_fired: set[str] = set()
        # batch feedback per term kind: [flagged, scanned]
        self.account_model = account_model
        self.model_at = float(model_at)
        self._scorer = _ModelTerm(account_model) if account_model is not None else None
        terms = (
            *kinds,
            "expose",
            *(("abroad",) if self.abroad_requests else ()),
            *(("model",) if self._scorer is not None else ()),
        )
        self._kind_feedback: dict[str, list[int]] = {k: [0, 0] for k in terms}
        # the account-model term: per head [flagged, scanned]; accounts it fired on -> head
        self._head_feedback: dict[str, list[int]] = {}
        self._model_fired: dict[str, str] = {}
        self._until: float | None = None  # data horizon of the verdicts in force (None: none yet)
        self._last_ts = 0.0
        self._changed: set[str] | None = None  # accounts learned since the last sync (when shared)
        # cohort sharing (when shared): users stamped per value since the last sync, and the
        # values fresh accounts used (whose fleet counts the cohort test needs)
        self._stamped: dict[tuple[str, str], dict[str, tuple[float, bool]]] | None = None
        self._wanted: set[tuple[str, str]] = set()

    @property
    def n_accounts(self) -> int:
        """Per-account states held (at most ``max_accounts``, see "Memory"). Not ``__len__``:
        an empty model would be falsy, and ``risk or OnlineRisk()`` would replace it."""
        return len(self._accounts)

    # -- helpers ---------------------------------------------------------------------------
    def _kind_precision(self, kind: str) -> float:
        f, s = self._kind_feedback[kind]
        return (f + self.prior_precision * self.prior_strength) / (s + self.prior_strength)

    def _value_precision(self, kind: str, value: _Value) -> float:
        prior = self._kind_precision(kind)
        return (value.flagged + prior * self.prior_strength) / (value.scanned + self.prior_strength)

    def _fresh(self, acct: _Account | None, created: float | None, ts: float) -> bool:
        if acct is not None:
            age = acct.fresh_age_days
        else:
            age = None if created is None else (ts - created) / 86_400.0
        return age is not None and age < self.fresh_days

    @staticmethod
    def _values_of(signals: dict[str, Any]) -> dict[str, Any]:
        return {
            "client": signals.get("client"),
            "prefix": signals.get("ip_prefix"),
            "template": signals.get("template_id"),
            "signup": signals.get("signup_prefix"),
        }

    def _value(self, kind: str, value: str, create: bool) -> _Value | None:
        key = (kind, value)
        v = self._values.get(key)
        if v is None:
            if not create:
                return None
            v = self._values[key] = _Value()
            if len(self._values) > self.max_values:
                self._values.popitem(last=False)
        else:
            self._values.move_to_end(key)
        return v

    def _head_precision(self, head: str) -> float:
        prior = self._kind_precision("model")
        f, s = self._head_feedback.get(head, (0, 0))
        return (f + prior * self.prior_strength) / (s + self.prior_strength)

    def _unjudged(self, acct: _Account) -> bool:
        """No batch run has seen the account yet: it arrived after the verdicts' horizon."""
        return self._until is None or acct.first_seen >= self._until

    def _abroad(self, acct: _Account | None, signals: dict[str, Any], ts: float) -> str | None:
        """``"<declared>><seen>"`` when the ``abroad`` term applies to this request (module
        docstring), else ``None``. ``acct`` is the account's state *before* this request."""
        if not self.abroad_requests:
            return None
        seen, home = signals.get("ip_country"), signals.get("declared_country")
        if not seen or not home:
            return None
        seen, home = str(seen).upper(), str(home).upper()
        if seen == home:
            return None
        if acct is not None and (not self._unjudged(acct) or acct.exposure()[0] >= self.abroad_requests):
            return None
        if not self._fresh(acct, _as_float(signals.get("account_created")), ts):
            return None
        return f"{home}>{seen}"

    def _base_fresh(self) -> float:
        a = self._active
        return (a.fresh + 1.0) / (a.n + 2.0)

    # -- scoring ---------------------------------------------------------------------------
    def score_one(self, ctx: RequestContext, signals: dict[str, Any]) -> tuple[float, tuple[str, ...]]:
        acct = self._accounts.get(ctx.account_id)
        risk = 0.0
        reasons: list[tuple[float, str]] = []
        # cohort memberships already held (the account joined a cohort earlier)
        if acct is not None:
            for kind, value in acct.memberships:
                v = self._values.get((kind, value))
                if v is not None:
                    prec = self._value_precision(kind, v)
                    reasons.append((prec, f"cohort:{kind}:member:{prec:.2f}"))
        # a cohort on this request's values
        if self._fresh(acct, signals.get("account_created"), ctx.ts):
            p = self._base_fresh()
            for kind, value in self._values_of(signals).items():
                if kind not in self.cohort_kinds or value is None:
                    continue
                if acct is not None and ((kind, value) in acct.memberships or (kind, value) in acct.cleared):
                    continue
                v = self._values.get((kind, value))
                if v is None:
                    continue
                v.recent.expire(ctx.ts, self.window_s)
                bound, k, n, fleet = v.bound(p, ctx.ts, self.grain_s)
                if bound < self.alpha:
                    prec = self._value_precision(kind, v)
                    where = "fleet:" if fleet else ""
                    reasons.append((prec, f"cohort:{kind}:{k}/{n}fresh:{where}p<{bound:.0e}:{prec:.2f}"))
        # first contact from abroad, until a batch run has judged the account
        away = self._abroad(acct, signals, ctx.ts)
        if away is not None:
            prec = self._kind_precision("abroad")
            reasons.append((prec, f"abroad:{away}:{prec:.2f}"))
        # the batch account model on the account's own traffic, until a batch run has judged it
        if acct is not None and acct.model is not None and self._unjudged(acct):
            prob, head, top = acct.model
            prec = self._head_precision(head)
            reasons.append((prec, f"model:{head}:{prob:.2f}:{top}:{prec:.2f}"))
        # reasoning exposure (tested when the account sends such a request, see learn_one)
        if acct is not None and acct.expose is not None:
            prec = self._kind_precision("expose")
            reasons.append((prec, f"expose:{acct.expose}:{prec:.2f}"))
        if not reasons:
            return 0.0, ()
        reasons.sort(key=lambda r: -r[0])
        risk = reasons[0][0]
        return risk, tuple(r for _, r in reasons)

    # -- learning --------------------------------------------------------------------------
    def learn_one(
        self,
        ctx: RequestContext,
        decision: Decision,
        *,
        status: int,
        output_tokens: int,
        reasoning_tokens: int | None,
    ) -> None:
        sig = decision.extra  # the engine copies the request's signals there
        ts = ctx.ts
        self._last_ts = max(self._last_ts, ts)
        acct = self._accounts.get(ctx.account_id)
        # on the state before this request, as score_one saw it
        abroad = self._abroad(acct, sig, ts) is not None
        if acct is None:
            created = _as_float(sig.get("account_created"))
            acct = self._accounts[ctx.account_id] = _Account(
                AccountOnline(self.online_config, created_at=created), ts, created
            )
            if len(self._accounts) > self.max_accounts:
                self._forget()
        else:
            self._accounts.move_to_end(ctx.account_id)
        fresh = self._fresh(acct, None, ts)
        cot = sig.get("cot_elicit")
        acct.online.update(
            OnlineEvent(
                ts=ts,
                model=ctx.model,
                ip=ctx.ip,
                ip_prefix=_as_str(sig.get("ip_prefix")),
                asn=_as_str(sig.get("asn")),
                is_hosting=_as_bool(sig.get("is_hosting")),
                user_agent=ctx.user_agent,
                tls_fingerprint=ctx.tls_fingerprint,
                conversation_id=ctx.conversation_id,
                n_messages=ctx.n_messages,
                input_tokens=ctx.input_tokens,
                output_tokens=output_tokens,
                max_tokens=ctx.max_tokens,
                reasoning_tokens=reasoning_tokens,
                template_id=_as_str(sig.get("template_id")),
                cot_elicit=_as_str(cot),
                capability=_as_str(sig.get("capability")),
            )
        )
        self._requests += 1
        if cot == _EXPOSE:
            self._expose += 1
        self._active.add(ts, ctx.account_id, fresh, self.grain_s)
        self._active.expire(ts, self.window_s)
        client = sig.get("client")
        if client is None and ctx.user_agent:
            client = f"{ctx.user_agent} | {ctx.tls_fingerprint or ''}"
        values = {
            "client": client,
            "prefix": _as_str(sig.get("ip_prefix")),
            "template": _as_str(sig.get("template_id")),
            "signup": _as_str(sig.get("signup_prefix")),
        }
        p = self._base_fresh()
        for kind in self.cohort_kinds:
            value = values[kind]
            if value is None:
                continue
            v = self._value(kind, value, create=True)
            assert v is not None
            stamped = v.recent.add(ts, ctx.account_id, fresh, self.grain_s)
            if self._stamped is not None:  # shared: remember what the next sync sends and reads
                if stamped:
                    self._stamped.setdefault((kind, value), {})[ctx.account_id] = (ts, fresh)
                if fresh:
                    self._wanted.add((kind, value))
            v.recent.expire(ts, self.window_s)
            if (fresh or not v.swept) and v.bound(p, ts, self.grain_s)[0] < self.alpha:
                self._join(kind, value, v, ctx.account_id)
        if cot == _EXPOSE and acct.expose is None:
            self._test_expose(ctx.account_id, acct)
        if abroad:
            self._abroad_fired.add(ctx.account_id)
        if self._scorer is not None:
            self._score_model(ctx.account_id, acct)
        if self._changed is not None:
            self._changed.add(ctx.account_id)

    def _forget(self) -> None:
        """Drop least recently active accounts down to ``max_accounts`` (see the module
        docstring, "Memory"). An account with changes the next sync has not written yet is
        kept — and so is every more recent one, this round: the bound is exceeded by at most
        the accounts of one sync interval."""
        while len(self._accounts) > self.max_accounts:
            victim = next(iter(self._accounts))
            if self._changed is not None and victim in self._changed:
                return
            del self._accounts[victim]
            self._expose_fired.discard(victim)
            self._abroad_fired.discard(victim)
            self._model_fired.pop(victim, None)
            self.forgotten += 1

    def _join(self, kind: str, value: str, v: _Value, account_id: str | None) -> None:
        """A significant cohort on ``value``: when it first is, every fresh user this worker
        has in the window joins (those who came before it was significant too); later, each
        fresh newcomer (``account_id``; ``None`` when a sync, not a request, found it)."""
        if v.swept:
            joiners = [] if account_id is None else [account_id]
        else:
            v.swept = True
            joiners = [a for a, (_, f) in v.recent.last.items() if f]
        for a in joiners:
            member = self._accounts.get(a)
            if (
                member is not None
                and a not in v.cohort
                and len(v.cohort) < self.max_cohort
                and len(member.memberships) < self.max_memberships
            ):
                member.memberships.append((kind, value))
                v.cohort.add(a)

    def _score_model(self, account_id: str, acct: _Account) -> None:
        """The account model on the account's fleet-wide online features (own ⊕ peers), while
        no batch run has judged the account and only for a fresh one (first contact of a new
        account; an older account the batch has not seen is a dormant one, whose history the
        next batch run reads); fires at ``model_at``."""
        assert self._scorer is not None
        if not self._unjudged(acct) or not self._fresh(acct, None, acct.first_seen):
            acct.model = None
            return
        # the own state as is when no peer's is known (the common case: no copy)
        state = acct.online if acct.peers is None else self.fleet_state(account_id)
        assert state is not None
        prob, head, top = self._scorer.score(state.get())
        if prob >= self.model_at:
            acct.model = (prob, head, top)
            self._model_fired[account_id] = head
        else:
            acct.model = None

    def _test_expose(self, account_id: str, acct: _Account) -> None:
        """The reasoning-exposure test on the account's fleet-wide counts (own ⊕ peers)."""
        n, k = acct.exposure()
        base = (self._expose + 1.0) / (self._requests + 2.0)
        bound = binomial_tail_bound(k, n, base)
        if k >= 2 and bound < self.alpha:
            acct.expose = f"{k}/{n}:p<{bound:.0e}"
            self._expose_fired.add(account_id)

    # -- sharing the per-account state across workers ----------------------------------------
    def track_changes(self) -> None:
        """Start recording which accounts learned something (for :meth:`changed`) and which
        cohort users were stamped (for :meth:`cohort_changes`). Called by whoever shares the
        state (the gateway's online sync): a process that does not share never holds them."""
        if self._changed is None:
            self._changed = set()
        if self._stamped is None:
            self._stamped = {}

    def changed(self) -> list[str]:
        """The accounts that learned since the last call (forgotten by this call)."""
        out = list(self._changed or ())
        if self._changed is not None:
            self._changed.clear()
        return out

    def mark_changed(self, account_ids: Iterable[str]) -> None:
        """Record ``account_ids`` as changed again (a sync that failed retries them)."""
        if self._changed is not None:
            self._changed.update(a for a in account_ids if a in self._accounts)

    def own_state(self, account_id: str) -> bytes | None:
        """This worker's own state of the account, serialised (what it writes to the store);
        ``None`` for an account it never served, or whose store state it has not looked at
        yet (see :meth:`merge_shared`: writing first would overwrite a predecessor's)."""
        acct = self._accounts.get(account_id)
        return acct.online.to_bytes() if acct is not None and acct.claimed else None

    def merge_shared(self, account_id: str, states: Mapping[str, bytes], worker: str) -> bool:
        """Take the fleet's states of an account (worker id -> blob, as the store holds them).

        The blob under ``worker`` (this worker's id) is its own: written by this process, it
        is ignored; found before this process wrote the account, it is a previous incarnation's
        (a restart under the same id) and is merged into the own state, once. Every other
        blob is a peer's: when any changed, the peers state is rebuilt from all of them (a
        merge cannot be undone), and the exposure test runs again on the fleet's counts.
        A blob that does not decode or does not merge (another ``OnlineConfig``, other account
        facts: a rolling deploy) is left out. Returns whether the fleet view changed; the
        caller writes the own state (:meth:`own_state`) after this call.
        """
        acct = self._accounts.get(account_id)
        if acct is None:
            return False
        changed = False
        if not acct.claimed:
            acct.claimed = True
            previous = states.get(worker)
            state = self._decode(account_id, worker, previous, acct) if previous is not None else None
            if state is not None:
                acct.online.merge(state)
                if state.gaps.n:  # adopted history (a restart, or an account forgotten here)
                    acct.first_seen = min(acct.first_seen, state.gaps.first_us / 1e6)
                changed = True
        digests = {
            w: hashlib.blake2b(blob, digest_size=16).digest() for w, blob in states.items() if w != worker
        }
        if digests != acct.peer_digests:
            acct.peer_digests = digests
            peers: AccountOnline | None = None
            for w in sorted(digests):
                state = self._decode(account_id, w, states[w], acct)
                if state is None:
                    continue
                if peers is None:
                    peers = state
                else:
                    peers.merge(state)
            acct.peers = peers
            changed = True
        if changed and acct.expose is None:
            self._test_expose(account_id, acct)
        if changed and self._scorer is not None:
            self._score_model(account_id, acct)
        return changed

    # -- sharing the cohort windows across workers ------------------------------------------
    def cohort_changes(self) -> tuple[dict[tuple[str, str], dict[str, tuple[float, bool]]], float]:
        """What this worker has for the fleet's cohort windows since the last call (forgotten
        by this call): per value ``(kind, value)``, the users it stamped (account -> (last use,
        fresh)) — an empty dict for a value a fresh account used and whose fleet counts the
        test needs — and the window's horizon (the newest request minus ``window_s``)."""
        out = self._stamped if self._stamped is not None else {}
        for key in self._wanted:
            out.setdefault(key, {})
        if self._stamped is not None:
            self._stamped = {}
        self._wanted = set()
        return out, self._last_ts - self.window_s

    def requeue_cohort(self, entries: Mapping[tuple[str, str], Mapping[str, tuple[float, bool]]]) -> None:
        """Give back entries a failed sync did not write (they go out with the next round)."""
        if self._stamped is None:
            return
        for key, users in entries.items():
            if not users:
                self._wanted.add(key)
                continue
            mine = self._stamped.setdefault(key, {})
            for account, (ts, fresh) in users.items():
                if account not in mine or mine[account][0] < ts:
                    mine[account] = (ts, fresh)

    def merge_cohort(self, counts: Mapping[tuple[str, str], tuple[int, int]]) -> int:
        """Take the fleet's ``(users, fresh users)`` per value in the window (the union of
        every worker's users, from the store). A value the fleet's counts make significant
        sweeps this worker's fresh users into the cohort, as a significant local count does;
        the other workers do the same with theirs at their own sync. Returns how many values
        became significant by this call."""
        p = self._base_fresh()
        fired = 0
        for key, (n, k) in counts.items():
            v = self._values.get(key)
            if v is None:
                continue
            v.fleet = (int(n), int(k), self._last_ts)
            if not v.swept and v.bound(p, self._last_ts, self.grain_s)[0] < self.alpha:
                self._join(key[0], key[1], v, None)
                fired += 1
        return fired

    def _decode(self, account_id: str, worker: str, blob: bytes, acct: _Account) -> AccountOnline | None:
        """A worker's state of the account, or ``None`` (logged) when it cannot merge with ours."""
        try:
            state = AccountOnline.from_bytes(blob, self.online_config)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("online state of %s from worker %s left out: %s", account_id, worker, exc)
            return None
        own = acct.online
        if state.created_at != own.created_at or state.declared_country != own.declared_country:
            log.warning("online state of %s from worker %s left out: other account facts", account_id, worker)
            return None
        return state

    def fleet_state(self, account_id: str) -> AccountOnline | None:
        """The account's fleet view, own ⊕ peers, as a new state (``None``: never served here).
        Builds a copy (a few hundred µs): for reports, tests and the model term (after the
        answer), not the request path."""
        acct = self._accounts.get(account_id)
        if acct is None:
            return None
        out = acct.online.copy()
        if acct.peers is not None:
            out.merge(acct.peers)
        return out

    # -- calibration by batch verdicts -----------------------------------------------------
    def on_verdicts(self, verdicts: Any) -> None:
        """Recount, for every term, how many accounts it fired on were flagged by batch.

        Only accounts first seen before the verdicts' ``until`` count (the batch scan could
        see them); without ``until``, the newest request seen so far stands in for it.
        """
        until = _epoch(getattr(verdicts, "until", None)) or self._last_ts
        self._until = until
        for kind in self._kind_feedback:
            self._kind_feedback[kind] = [0, 0]

        def tally(accounts: Iterable[str]) -> tuple[int, int]:
            f = s = 0
            for a in accounts:
                st = self._accounts.get(a)
                if st is None or st.first_seen >= until:
                    continue
                s += 1
                v = verdicts.account(a)
                if v is not None and v.verdict in _FLAGGED:
                    f += 1
            return f, s

        for (kind, _), value in self._values.items():
            if not value.cohort:
                continue
            value.flagged, value.scanned = tally(value.cohort)
            fb = self._kind_feedback[kind]
            fb[0] += value.flagged
            fb[1] += value.scanned
        self._clear_members(verdicts, until)
        f, s = tally(self._expose_fired)
        self._kind_feedback["expose"] = [f, s]
        if self.abroad_requests:
            f, s = tally(self._abroad_fired)
            self._kind_feedback["abroad"] = [f, s]
        if self._scorer is not None:
            by_head: dict[str, list[str]] = {}
            for a, head in self._model_fired.items():
                by_head.setdefault(head, []).append(a)
            self._head_feedback = {h: list(tally(accts)) for h, accts in by_head.items()}
            self._kind_feedback["model"] = [
                sum(fs[0] for fs in self._head_feedback.values()),
                sum(fs[1] for fs in self._head_feedback.values()),
            ]

    def _clear_members(self, verdicts: Any, until: float) -> None:
        """A member of a cohort on a :attr:`cleared_kinds` value (a client stack, by
        default) that a batch run has judged keeps its membership only if the batch flagged
        it or holds it suspect. Such a cohort is evidence about the *value* — most of its
        fresh users are one operator's — and a stock SDK release is shared with a farm by
        whoever happens to upgrade that week; the batch, which saw the account's whole
        traffic, its graph and its account facts, has weighed the rest, so its verdict is
        the judgement, as for the model term. Without this a new customer on a farm's SDK
        release stays protected for as long as the farm's cohort is significant: on the
        held-out scenario evasive-3, a benchmark researcher's burst of 1,033 requests, 30
        hours after it joined a client cohort of 37 fresh farm accounts
        (docs/gateway-evaluation.md). Template cohorts are not ended this way: there the same
        rule left 1,558 of campaign B's exchanges unprotected — accounts the batch had not
        flagged yet whose prompts came from the farm's generator. The member stays in the
        value's cohort for the tally above (a cleared member is a failure of the value's
        evidence), and the value does not fire on it again; a cohort it joins later is new
        evidence and counts until the next batch run judges it."""
        if not self.cleared_kinds:
            return
        for account_id, acct in self._accounts.items():
            if not acct.memberships or acct.first_seen >= until:
                continue
            ended = [m for m in acct.memberships if m[0] in self.cleared_kinds]
            if not ended:
                continue
            v = verdicts.account(account_id)
            if v is not None and (v.verdict in _FLAGGED or v.verdict == "suspect"):
                continue
            acct.memberships = [m for m in acct.memberships if m[0] not in self.cleared_kinds]
            # bounded: a value dropped from memory and met again could be joined and cleared twice
            acct.cleared = tuple(dict.fromkeys((*acct.cleared, *ended)))[-self.max_memberships :]

    def stats(self) -> dict[str, Any]:
        """Sizes and the learned term precisions (for metrics and the replay report)."""
        return {
            "accounts": len(self._accounts),
            "accounts_forgotten": self.forgotten,
            "values": len(self._values),
            "fresh_base": round(self._base_fresh(), 4),
            "kinds": {
                k: {"flagged": f, "scanned": s, "precision": round(self._kind_precision(k), 4)}
                for k, (f, s) in self._kind_feedback.items()
            },
        }


def online_risk(
    model: str | None = None, *, model_at: float = 0.5, max_accounts: int = DEFAULT_MAX_ACCOUNTS
) -> OnlineRisk:
    """The gateway's :class:`OnlineRisk` as configured: ``model`` is the account model its
    ``model`` term scores new accounts with — ``None`` (the term is off, the default),
    ``"shipped"`` (the packaged model, :func:`~distillshield.detect.model.load_model`) or a
    model file written by ``distillshield train``; ``model_at`` the probability it fires at;
    ``max_accounts`` the per-account states held (module docstring, "Memory")."""
    if model is None:
        return OnlineRisk(max_accounts=max_accounts)
    from pathlib import Path

    from distillshield.detect.model import load_model

    loaded = load_model(None if model == "shipped" else Path(model))
    return OnlineRisk(account_model=loaded, model_at=model_at, max_accounts=max_accounts)


def _as_str(x: Any) -> str | None:
    return None if x is None else str(x)


def _as_bool(x: Any) -> bool | None:
    if x is None or x == "":
        return None
    if isinstance(x, str):
        return x.lower() in ("1", "true", "yes")
    return bool(x)


def _as_float(x: Any) -> float | None:
    if x is None or x == "":
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _epoch(until: Any) -> float | None:
    if not until:
        return None
    if isinstance(until, datetime):
        return until.timestamp()
    try:
        return datetime.fromisoformat(str(until).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _ModelTerm:
    """The batch account model (:class:`~distillshield.detect.model.AccountModel`) on what
    the gateway knows of an account: its own traffic's features, under the batch names and
    definitions (:data:`~distillshield.features.online.SHARED_FEATURES`, tested equal).

    What the gateway does not know is read as *unknown* — the model's mean, a contribution of
    zero — not as "none" (:func:`~distillshield.detect.design.design_row`): the graph
    features (who shares a card, an address, a staff handle with the account: the batch
    join), the account facts a key record does not carry (verified, e-mail domain class),
    ``template_sharing``, the rule score, and the features whose inputs this state is not fed
    (the declared country, so night share and declared-country share; the address's country
    and VPN flag).
    """

    #: online features whose inputs :meth:`OnlineRisk.learn_one` does not feed
    UNFED: frozenset[str] = frozenset(
        {"night_share_local", "declared_country_share", "distinct_countries", "vpn_share"}
    )

    def __init__(self, model: Any) -> None:
        from distillshield.detect.design import FEATURES, design_row
        from distillshield.features.online import SHARED_FEATURES

        model.check_features(FEATURES)
        self.model = model
        self._features = FEATURES
        self._design_row = design_row
        self._columns = tuple(c for c in SHARED_FEATURES if c not in self.UNFED)
        self._heads = model.head_names

    def score(self, features: Mapping[str, Any]) -> tuple[float, str, str]:
        """``(probability, winning head, its largest contribution as name=value)``."""
        record = {c: features.get(c) for c in self._columns}
        row = self._design_row(record, self._features)
        prob, contrib, win = self.model.explain_row(row)
        top = int(contrib.argmax())
        f = self._features[top]
        value = record.get(f.column)
        shown = "null" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
        return prob, self._heads[win], f"{f.column}={shown}"
