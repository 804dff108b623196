"""The personas: legitimate customers (including the hard negatives) and campaign operators.

Each class documents which public fact or real-world traffic pattern it models; the
parameters' rationale is in docs/simulator.md. Volumes are heavy-tailed, rhythms follow
the account's own time zone, and attackers reuse infrastructure imperfectly.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.simulate.clients import ClientFamily
from distillshield.simulate.geo import (
    COVER_COUNTRIES,
    DEVELOPER_COUNTRIES,
    DISPOSABLE,
    FREEMAIL,
    FREEMAIL_W,
    UNIVERSITIES,
    company_domains,
    pick,
    tz_of,
)
from distillshield.simulate.ids import stable_hash
from distillshield.simulate.network import UNIVERSITY_ASN, NetKind
from distillshield.simulate.persona import AccountDraft, Persona, Plan
from distillshield.simulate.timing import (
    DAY,
    HOUR,
    PROFILES,
    US,
    WEEKEND,
    burst_times,
    daily_counts,
    hours_to_times,
    is_weekend,
    round_robin,
    sessionize,
)

YEAR_DAYS = 365


# ---------------------------------------------------------------------------------------------
# shared building blocks
# ---------------------------------------------------------------------------------------------
def _freemail(rng: np.random.Generator, n: int) -> np.ndarray:
    p = np.array(FREEMAIL_W) / sum(FREEMAIL_W)
    return np.array(FREEMAIL, dtype=object)[rng.choice(len(FREEMAIL), size=n, p=p)]


def _created(rng: np.random.Generator, start_us: int, n: int, lo_days: float, hi_days: float) -> np.ndarray:
    """Creation times log-uniform between ``lo_days`` and ``hi_days`` before the start."""
    age = np.exp(rng.uniform(np.log(lo_days), np.log(hi_days), size=n))
    return (start_us - age * DAY).astype(np.int64)


def _human_plan(
    p: Persona,
    d: int,
    sessions_per_day: np.ndarray,
    active_p: np.ndarray | float,
    profile: str,
    mean_turns: float,
    gap_s: float,
    first_kind: np.ndarray,
    followup_kind: str,
) -> Plan:
    """Sessions of people (or their agents) working in their own time zone."""
    rng = p.rng
    day0 = p.ctx.day_start(d)
    rate = sessions_per_day * (WEEKEND[profile] if is_weekend(day0) else 1.0)
    counts = daily_counts(rng, rate, active_p)
    acc = np.repeat(np.arange(len(counts)), counts)
    starts = hours_to_times(rng, day0, len(acc), PROFILES[profile], p.tz[acc])
    sess, turn, ts = sessionize(rng, starts, mean_turns, gap_s)
    acc_t = acc[sess]
    kind = np.where(turn == 1, first_kind[acc_t], followup_kind).astype(object)
    return Plan(acc=acc_t, ts=ts, kind=kind, session=p.new_sessions(len(starts))[sess], turn=turn)


def _by_country(ctx: Any, rng: np.random.Generator, kind: str, country: np.ndarray) -> np.ndarray:
    """One IP of ``kind`` per row, in that row's country (one address-space call per country)."""
    out = np.empty(len(country), dtype=object)
    for c in np.unique(country):
        m = country == c
        out[m] = ctx.address.sample(kind, int(m.sum()), rng, country=str(c))
    return out


def _groups(n: int, size: int) -> tuple[np.ndarray, int]:
    """Split ``n`` accounts into consecutive groups of ``size`` (a class, a company)."""
    group = np.arange(n) // max(1, size)
    return group, int(group.max()) + 1


def _payments(rng: np.random.Generator, shared: np.ndarray, pool: int, operator: str) -> np.ndarray:
    """Payment instrument keys: accounts in ``shared`` draw from the operator's ``pool`` of
    cards (the shared-payment link of the seed's campaign A); the rest have their own."""
    n = len(shared)
    pooled = np.char.add(f"{operator}-shared-", rng.integers(0, pool, n).astype(str))
    own = np.char.add(f"{operator}-own-", np.arange(n).astype(str))
    return np.where(shared, pooled, own).astype(object)


def _campus(ctx: Any, rng: np.random.Generator, domain: str, country: str, k: int) -> np.ndarray:
    """``k`` addresses of the university's own network (any campus in ``country`` if unknown)."""
    asn = UNIVERSITY_ASN.get(domain)
    return cast(np.ndarray, ctx.address.sample("campus", k, rng, country=country, asn_name=asn))


# ---------------------------------------------------------------------------------------------
# legitimate personas
# ---------------------------------------------------------------------------------------------
class IndividualDeveloper(Persona):
    """Self-serve developers and tinkerers: the long, heavy-tailed bulk of any API's accounts.

    Chat and coding questions in multi-turn sessions from home or mobile connections, many
    SDKs, and curiosity spikes on new models (some try a release within hours — which a
    naive "model pivot" signal mistakes for campaign C).
    """

    label = "legit.individual_developer"
    params_doc: ClassVar[dict[str, str]] = {
        "sessions_median": "median sessions per active day (log-normal, sigma 1.1)"
    }
    style_defaults: ClassVar[dict[str, Any]] = {"stream_p": 0.55, "reasoning_p": 0.3, "small_model_p": 0.45}

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        country = pick(rng, DEVELOPER_COUNTRIES, n)
        self.tz = tz_of(country) + rng.normal(0, 1.0, n)
        email = np.where(rng.random(n) < 0.7, _freemail(rng, n), company_domains(rng, n))
        uni = rng.random(n) < 0.05
        email[uni] = np.array([u[0] for u in UNIVERSITIES], dtype=object)[
            rng.integers(0, len(UNIVERSITIES), uni.sum())
        ]
        home = _by_country(ctx, rng, "residential", country)
        mobile = _by_country(ctx, rng, "mobile", country)
        vpn = ctx.address.sample("vpn", n, rng)
        has_mobile = rng.random(n) < 0.35
        has_vpn = rng.random(n) < 0.08
        pools = [
            np.array(
                [home[i]] + ([mobile[i]] if has_mobile[i] else []) + ([vpn[i]] if has_vpn[i] else []),
                dtype=object,
            )
            for i in range(n)
        ]
        self.set_ips(pools)
        weights: dict[ClientFamily, float] = {
            "openai-python": 0.3,
            "openai-node": 0.14,
            "anthropic-python": 0.1,
            "anthropic-typescript": 0.04,
            "langchain": 0.08,
            "litellm": 0.05,
            "python-requests": 0.08,
            "python-httpx": 0.05,
            "curl": 0.06,
            "browser": 0.08,
            "go-http": 0.02,
        }
        clients = ctx.clients.mix(weights, n, rng)
        self.set_clients(clients, np.arange(n))
        self.rate = np.exp(rng.normal(np.log(float(self.param("sessions_median", 1.5))), 1.1, n))
        self.active = rng.beta(1.5, 2.5, n)
        self.first_kind = pick(rng, {"chat": 0.55, "coding_question": 0.45}, n)
        curious = rng.random(n) < 0.25
        self.set_adoption(
            np.where(curious, rng.exponential(6, n), rng.exponential(120, n)), rng.uniform(0.3, 0.9, n)
        )
        self.small_p = rng.beta(2, 2.5, n)
        self.draft = AccountDraft(
            pathway=np.where(rng.random(n) < 0.94, "self_serve", "startup_program").astype(object),
            created_us=_created(rng, ctx.start_us, n, 14, 3 * YEAR_DAYS),
            email_domain=email,
            declared_country=country,
            signup_ip=np.array([pool[0] for pool in pools], dtype=object),
            payment=np.array([f"card-{i}" if rng.random() < 0.85 else None for i in range(n)], dtype=object),
            verified=rng.random(n) < 0.6,
            org=np.full(n, None, dtype=object),
        )

    def plan_day(self, d: int) -> Plan:
        return _human_plan(
            self, d, self.rate, self.active, "individual", 3.0, 70.0, self.first_kind, "chat_followup"
        )


class SaasBackend(Persona):
    """A SaaS product's backend: one system-prompt template, millions of times, from cloud IPs.

    The classic false positive for "template repetition" and "cloud egress": huge volume,
    one template, fixed parameters — but one long-lived, paying, verified account whose
    rhythm follows its own customers' day.
    """

    label = "legit.saas_backend"
    params_doc: ClassVar[dict[str, str]] = {
        "daily_median": "median requests per day per account",
        "variant_offset": "first SaaS template id (to vary products between populations)",
    }
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.2,
        "reasoning_p": 0.05,
        "small_model_p": 0.7,
        "system_kind": "saas_input",
        "conversation_ids": False,
        "temperature": {0.2: 0.5, 0.0: 0.3, None: 0.2},
        "max_tokens": {512: 0.5, 1024: 0.3, 256: 0.2},
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        country = pick(
            rng,
            {"US": 0.5, "GB": 0.1, "DE": 0.1, "FR": 0.05, "IN": 0.1, "SG": 0.05, "CA": 0.05, "AU": 0.05},
            n,
        )
        self.tz = tz_of(country)
        pools = []
        for c in country:
            net = ctx.address.networks("cloud", 1, rng, country=str(c))[0]
            pools.append(ctx.address.addresses(net, int(rng.integers(2, 8)), rng))
        self.set_ips(pools)
        clients = ctx.clients.mix(
            {"openai-python": 0.45, "openai-node": 0.3, "python-httpx": 0.1, "litellm": 0.15}, n, rng
        )
        self.set_clients(clients, np.arange(n))
        self.system_variant = np.arange(n, dtype=np.int64) + int(self.param("variant_offset", 0))
        self.rate = np.exp(rng.normal(np.log(float(self.param("daily_median", 400))), 0.9, n))
        self.small_p = np.where(rng.random(n) < 0.7, 1.0, 0.0)
        self.set_adoption(rng.exponential(400, n), np.where(rng.random(n) < 0.2, 1.0, 0.0))
        self.n_keys = rng.integers(1, 4, n)
        self.draft = AccountDraft(
            pathway=pick(rng, {"enterprise": 0.45, "self_serve": 0.4, "startup_program": 0.15}, n),
            created_us=_created(rng, ctx.start_us, n, 60, 3 * YEAR_DAYS),
            email_domain=company_domains(rng, n),
            declared_country=country,
            signup_ip=ctx.address.sample("residential", n, rng, country="US"),
            payment=np.array([f"corp-card-{i}" for i in range(n)], dtype=object),
            verified=rng.random(n) < 0.95,
            org=np.arange(n).astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        day0 = self.ctx.day_start(d)
        counts = daily_counts(rng, self.rate * (0.8 if is_weekend(day0) else 1.0), 0.99, dispersion=12.0)
        acc = np.repeat(np.arange(self.n), counts)
        ts = hours_to_times(rng, day0, len(acc), PROFILES["service"], self.tz[acc])
        return Plan(
            acc=acc,
            ts=ts,
            kind=np.full(len(acc), "saas_input", dtype=object),
            variant=self.system_variant[acc],
        )

    def metadata(self, plan: Plan, rng: np.random.Generator) -> pa.Array | None:
        users = rng.zipf(1.6, len(plan)) % 50_000
        return _json_user("u_", users, plan.acc, self.ns, share=0.6, rng=rng)


class CodingAgentVendor(Persona):
    """A coding-agent company: long multi-turn tool sessions with growing context, at scale.

    Looks like campaign C (agentic coding, tools, volume, fast move to a new model — vendors
    switch within a day because their users ask for it) but it is a handful of old, paying
    accounts serving many end users (``user`` metadata) with real session structure.
    """

    label = "legit.coding_agent_vendor"
    params_doc: ClassVar[dict[str, str]] = {"sessions_median": "median agent sessions per day per account"}
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.9,
        "reasoning_p": 0.5,
        "small_model_p": 0.15,
        "tools_p": 0.97,
        "tools_kind": "agent_step",
        "system_kind": "agent_step",
        "ctx_growth": 1800,
        "max_tokens": {8192: 0.5, 4096: 0.3, 16384: 0.2},
        "temperature": {None: 0.4, 0.0: 0.3, 0.2: 0.3},
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        country = pick(rng, {"US": 0.7, "GB": 0.1, "DE": 0.1, "IL": 0.1}, n)
        self.tz = tz_of(country)
        pools = [ctx.address.sample("cloud", int(rng.integers(8, 40)), rng) for _ in range(n)]
        self.set_ips(pools)
        clients = ctx.clients.mix(
            {"openai-node": 0.4, "anthropic-typescript": 0.3, "python-httpx": 0.3}, n, rng
        )
        self.set_clients(clients, np.arange(n))
        self.system_variant = np.arange(n, dtype=np.int64)
        self.sessions = np.exp(rng.normal(np.log(float(self.param("sessions_median", 60))), 0.7, n))
        self.first_kind = np.full(n, "coding_question", dtype=object)
        self.set_adoption(rng.uniform(2, 36, n), rng.uniform(0.5, 0.8, n))
        self.n_keys = rng.integers(2, 6, n)
        self.draft = AccountDraft(
            pathway=pick(rng, {"enterprise": 0.7, "startup_program": 0.3}, n),
            created_us=_created(rng, ctx.start_us, n, 120, 2 * YEAR_DAYS),
            email_domain=company_domains(rng, n),
            declared_country=country,
            signup_ip=ctx.address.sample("corporate", n, rng),
            payment=np.array([f"vendor-card-{i}" for i in range(n)], dtype=object),
            verified=np.ones(n, dtype=bool),
            org=np.arange(n).astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        plan = _human_plan(self, d, self.sessions, 1.0, "service", 14.0, 9.0, self.first_kind, "agent_step")
        plan.variant = self.system_variant[plan.acc]  # the vendor's own agent: its prompts and tools
        return plan

    def metadata(self, plan: Plan, rng: np.random.Generator) -> pa.Array | None:
        session = plan.session if plan.session is not None else np.zeros(len(plan), np.int64)
        return _json_user("dev-", np.maximum(session, 0) % 20_000, plan.acc, self.ns, 1.0, rng)


class BenchmarkResearcher(Persona):
    """Researchers who run a GSM8K-style benchmark with "think step by step" for a day.

    The hard negative for chain-of-thought harvesting: a burst of hundreds of math questions
    asking for step-by-step reasoning, from a script, on one day — then back to light use.
    """

    label = "legit.benchmark_researcher"
    params_doc: ClassVar[dict[str, str]] = {}
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.1,
        "reasoning_p": 0.6,
        "small_model_p": 0.3,
        "temperature": {0.0: 0.8, None: 0.2},
        "max_tokens": {1024: 0.4, 2048: 0.4, 512: 0.2},
        "conversation_ids": False,
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        uni = rng.integers(0, len(UNIVERSITIES), n)
        country = np.array([UNIVERSITIES[i][1] for i in uni], dtype=object)
        self.tz = tz_of(country)
        pools = [
            np.concatenate(
                [_campus(ctx, rng, UNIVERSITIES[u][0], str(c), 1), ctx.address.sample("cloud", 2, rng)]
            )
            for u, c in zip(uni, country, strict=True)
        ]
        self.set_ips(pools)
        clients = ctx.clients.mix({"openai-python": 0.6, "python-requests": 0.2, "litellm": 0.2}, n, rng)
        self.set_clients(clients, np.arange(n))
        self.burst_day = rng.integers(0, ctx.days, n)
        self.burst_size = rng.integers(250, 1319, n)
        self.eval_format = rng.integers(0, 64, n)  # each lab's harness words its prompt its own way
        self.set_adoption(rng.exponential(48, n), rng.uniform(0.3, 1.0, n))
        self.draft = AccountDraft(
            pathway=pick(rng, {"research_program": 0.5, "education": 0.3, "self_serve": 0.2}, n),
            created_us=_created(rng, ctx.start_us, n, 10, 2 * YEAR_DAYS),
            email_domain=np.array([UNIVERSITIES[i][0] for i in uni], dtype=object),
            declared_country=country,
            signup_ip=np.array([p[0] for p in pools], dtype=object),
            payment=np.array([None if rng.random() < 0.6 else f"card-r{i}" for i in range(n)], dtype=object),
            verified=rng.random(n) < 0.7,
            org=np.full(n, None, dtype=object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        day0 = self.ctx.day_start(d)
        light = _human_plan(
            self,
            d,
            np.full(self.n, 0.8),
            0.4,
            "office",
            2.0,
            60.0,
            np.full(self.n, "chat", dtype=object),
            "chat_followup",
        )
        who = np.nonzero(self.burst_day == d)[0]
        plans = [light]
        for a in who:
            k = int(self.burst_size[a])
            t0 = day0 + int((rng.uniform(9, 15) - self.tz[a]) % 24 * HOUR)
            # a script with a few parallel workers: steady spacing, small jitter
            ts = t0 + np.sort(rng.uniform(0, k * rng.uniform(1.5, 6.0), k) * US).astype(np.int64)
            ts = np.minimum(ts, day0 + DAY - 1)
            plans.append(
                Plan(
                    acc=np.full(k, a),
                    ts=ts,
                    kind=np.full(k, "benchmark_math", dtype=object),
                    variant=np.full(k, self.eval_format[a]),
                )
            )
        return Plan.concat(plans)


class UniversityClass(Persona):
    """A class behind one campus NAT doing the same assignment at the same hour.

    New accounts (made at term start), education pathway, one shared IP, synchronised
    activity and near-identical prompts — every campaign signal at once, all innocent.
    """

    label = "legit.university_class"
    params_doc: ClassVar[dict[str, str]] = {
        "class_size": "students per class (each class has its own campus NAT and lab hours)"
    }
    style_defaults: ClassVar[dict[str, Any]] = {"stream_p": 0.7, "reasoning_p": 0.2, "small_model_p": 0.6}

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        self.klass, k = _groups(n, int(self.param("class_size", 60)))
        uni = rng.choice(len(UNIVERSITIES) - 3, size=k, replace=k > len(UNIVERSITIES) - 3)
        country = np.array([UNIVERSITIES[i][1] for i in uni], dtype=object)
        nat = [
            _campus(ctx, rng, UNIVERSITIES[u][0], str(c), int(rng.integers(1, 3)))
            for u, c in zip(uni, country, strict=True)
        ]
        homes = ctx.address.sample("residential", n, rng, country=None)
        self.set_ips([np.concatenate([nat[self.klass[i]], [homes[i]]]) for i in range(n)])
        self.tz = tz_of(country[self.klass])
        clients = ctx.clients.mix({"browser": 0.5, "openai-python": 0.5}, n, rng)
        self.set_clients(clients, np.arange(n))
        # lab sessions: two weekdays at a fixed local hour per class
        self.lab_days = [rng.choice(5, 2, replace=False) for _ in range(k)]
        self.lab_hour = rng.integers(9, 17, k)
        self.assignment = np.arange(k) * 100
        term_start = ctx.start_us - rng.integers(5, 40, k) * DAY
        created = term_start[self.klass] + rng.exponential(2 * DAY, n).astype(np.int64)
        self.set_adoption(rng.exponential(200, n), rng.uniform(0, 0.5, n))
        self.draft = AccountDraft(
            pathway=np.full(n, "education", dtype=object),
            created_us=np.minimum(created, ctx.start_us - HOUR),
            email_domain=np.array([UNIVERSITIES[uni[c]][0] for c in self.klass], dtype=object),
            declared_country=country[self.klass],
            signup_ip=np.array([nat[c][0] for c in self.klass], dtype=object),
            payment=np.full(n, None, dtype=object),
            verified=rng.random(n) < 0.3,
            org=self.klass.astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        day0 = self.ctx.day_start(d)
        weekday = int((day0 // DAY + 3) % 7)
        plans = [
            _human_plan(
                self,
                d,
                np.full(self.n, 0.5),
                0.3,
                "individual",
                2.5,
                80.0,
                np.full(self.n, "chat", dtype=object),
                "chat_followup",
            )
        ]
        for c in range(len(self.lab_hour)):
            if weekday not in self.lab_days[c]:
                continue
            members = np.nonzero(self.klass == c)[0]
            present = members[rng.random(len(members)) < 0.85]
            start = day0 + int(((self.lab_hour[c] - self.tz[members[0]]) % 24) * HOUR)
            starts = start + (rng.uniform(0, 50 * 60, len(present)) * US).astype(np.int64)
            sess, turn, ts = sessionize(rng, starts, 4.0, 120.0)
            week = (d // 7) % 3
            plans.append(
                Plan(
                    acc=present[sess],
                    ts=ts,
                    kind=np.where(turn == 1, "class_assignment", "chat_followup").astype(object),
                    session=self.new_sessions(len(starts))[sess],
                    turn=turn,
                    variant=np.full(len(ts), self.assignment[c] + week),
                )
            )
        return Plan.concat(plans)


class CorporateVPN(Persona):
    """Employees of one company behind a few corporate egress IPs.

    Hundreds of accounts share IPs, an org, a payment method and an e-mail domain — the
    shared-infrastructure links of a hydra cluster, with ordinary office behaviour.
    """

    label = "legit.corporate_vpn"
    params_doc: ClassVar[dict[str, str]] = {
        "company_size": "employees (accounts) per company behind one egress"
    }
    style_defaults: ClassVar[dict[str, Any]] = {"stream_p": 0.8, "reasoning_p": 0.3, "small_model_p": 0.4}

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        self.company, k = _groups(n, int(self.param("company_size", 120)))
        country = pick(rng, {"US": 0.5, "GB": 0.15, "DE": 0.15, "FR": 0.1, "JP": 0.1}, k)
        egress = [
            ctx.address.sample(
                cast(NetKind, str(rng.choice(["corporate", "vpn"], p=[0.7, 0.3]))),
                int(rng.integers(2, 6)),
                rng,
                country=str(c),
            )
            for c in country
        ]
        self.set_ips([egress[c] for c in self.company])
        self.tz = tz_of(country[self.company])
        tool = ctx.clients.mix({"python-httpx": 0.4, "openai-python": 0.3, "browser": 0.3}, k, rng)
        self.set_clients(tool, self.company)
        self.rate = np.exp(rng.normal(np.log(1.5), 0.8, n))
        self.first_kind = pick(rng, {"chat": 0.6, "coding_question": 0.4}, n)
        self.set_adoption(np.full(n, 24.0 * rng.uniform(2, 10)), np.full(n, rng.uniform(0.3, 0.9)))
        domains = company_domains(rng, k)
        self.draft = AccountDraft(
            pathway=np.full(n, "enterprise", dtype=object),
            created_us=_created(rng, ctx.start_us, n, 10, 2 * YEAR_DAYS),
            email_domain=domains[self.company],
            declared_country=country[self.company],
            signup_ip=np.array([egress[c][0] for c in self.company], dtype=object),
            payment=np.array([f"corp-{c}" for c in self.company], dtype=object),
            verified=np.ones(n, dtype=bool),
            org=self.company.astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        return _human_plan(self, d, self.rate, 0.6, "office", 3.0, 90.0, self.first_kind, "chat_followup")


class LegitReseller(Persona):
    """A legitimate router/reseller serving many end users from one account.

    High, diverse volume with many ``user`` ids and all models (routers add a new model the
    day it ships); it is one account with a contract, not thousands of light ones.
    """

    label = "legit.reseller"
    params_doc: ClassVar[dict[str, str]] = {"daily_median": "median requests per day per reseller account"}
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.7,
        "reasoning_p": 0.3,
        "small_model_p": 0.4,
        "conversation_ids": False,
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        self.tz = np.zeros(n)
        self.set_ips([ctx.address.sample("cloud", int(rng.integers(10, 30)), rng) for _ in range(n)])
        self.set_clients(ctx.clients.mix({"python-httpx": 0.5, "openai-node": 0.5}, n, rng), np.arange(n))
        self.rate = np.exp(rng.normal(np.log(float(self.param("daily_median", 1500))), 0.5, n))
        self.set_adoption(rng.uniform(1, 12, n), rng.uniform(0.2, 0.5, n))
        self.n_keys = rng.integers(3, 10, n)
        self.draft = AccountDraft(
            pathway=np.full(n, "reseller", dtype=object),
            created_us=_created(rng, ctx.start_us, n, 200, 3 * YEAR_DAYS),
            email_domain=company_domains(rng, n),
            declared_country=pick(rng, {"US": 0.6, "GB": 0.2, "DE": 0.2}, n),
            signup_ip=ctx.address.sample("corporate", n, rng),
            payment=np.array([f"reseller-{i}" for i in range(n)], dtype=object),
            verified=np.ones(n, dtype=bool),
            org=np.arange(n).astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        counts = daily_counts(rng, self.rate, 1.0, dispersion=20.0)
        acc = np.repeat(np.arange(self.n), counts)
        ts = hours_to_times(
            rng, self.ctx.day_start(d), len(acc), PROFILES["service"], rng.choice([-6.0, 1.0, 8.0], len(acc))
        )
        kind = pick(rng, {"reseller_mix": 0.6, "chat": 0.2, "coding_question": 0.2}, len(acc))
        return Plan(acc=acc, ts=ts, kind=kind)

    def metadata(self, plan: Plan, rng: np.random.Generator) -> pa.Array | None:
        return _json_user("eu_", rng.zipf(1.4, len(plan)) % 200_000, plan.acc, self.ns, 0.95, rng)


class EnterpriseSynthetic(Persona):
    """An enterprise generating synthetic training data under contract.

    Legitimately *is* bulk generation for training: templated prompts, high temperature,
    long outputs, batch endpoint, around the clock for days. What differs is who: one
    verified, long-standing enterprise account with stable infrastructure.
    """

    label = "legit.enterprise_synthetic_data"
    params_doc: ClassVar[dict[str, str]] = {"daily_median": "median requests per job day per account"}
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.0,
        "reasoning_p": 0.2,
        "small_model_p": 0.2,
        "batch_p": 0.7,
        "conversation_ids": False,
        "temperature": {1.0: 0.6, 0.9: 0.4},
        "max_tokens": {4096: 0.6, 8192: 0.4},
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        self.tz = np.full(n, -5.0)
        self.set_ips([ctx.address.sample("cloud", 3, rng, country="US") for _ in range(n)])
        self.set_clients(ctx.clients.mix({"openai-python": 1.0}, n, rng), np.arange(n))
        self.rate = np.exp(rng.normal(np.log(float(self.param("daily_median", 1200))), 0.4, n))
        self.job_days = [
            set(rng.choice(ctx.days, max(1, ctx.days // 2), replace=False).tolist()) for _ in range(n)
        ]
        self.draft = AccountDraft(
            pathway=np.full(n, "enterprise", dtype=object),
            created_us=_created(rng, ctx.start_us, n, 300, 3 * YEAR_DAYS),
            email_domain=company_domains(rng, n),
            declared_country=np.full(n, "US", dtype=object),
            signup_ip=ctx.address.sample("corporate", n, rng, country="US"),
            payment=np.array([f"ent-{i}" for i in range(n)], dtype=object),
            verified=np.ones(n, dtype=bool),
            org=np.arange(n).astype(object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        on = np.array([d in s for s in self.job_days])
        counts = daily_counts(rng, self.rate * on, 1.0, dispersion=30.0)
        acc = np.repeat(np.arange(self.n), counts)
        ts = hours_to_times(rng, self.ctx.day_start(d), len(acc), PROFILES["pipeline"], self.tz[acc])
        return Plan(acc=acc, ts=ts, kind=np.full(len(acc), "synthetic_data", dtype=object), variant=acc)


# ---------------------------------------------------------------------------------------------
# campaigns
# ---------------------------------------------------------------------------------------------
class _Campaign(Persona):
    """Common operator mechanics: a daily budget, a work schedule in the operator's zone."""

    #: Operator's UTC offset; the seed's campaigns were run from UTC+8, but scenarios may change it.
    def operator_tz(self) -> float:
        return float(self.param("operator_tz", 8.0))

    def template_sets(self) -> np.ndarray:
        """The operator's few prompt-template sets (a campaign reuses them across all accounts).

        Each campaign gets its own block of the text source's 64 sets, from a stable hash of
        its id, so two campaigns rarely share templates — as two operators rarely would. Across
        providers the block follows the operator and tactic instead, so the operator's
        templates are the same at every provider whatever each calls the campaign.
        """
        k = int(self.param("template_sets", 4))
        owner = self.campaign_id if self.ctx.provider is None else f"{self.actor}/{self.label}"
        base = (stable_hash(owner) % 16) * 4
        return (base + np.arange(k)) % 64

    def render(self, plan: Plan, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        if plan.variant is None:
            sets = self.template_sets()
            plan = Plan(
                plan.acc,
                plan.ts,
                plan.kind,
                plan.session,
                plan.turn,
                sets[rng.integers(0, len(sets), len(plan))],
                plan.campaign,
            )
        return super().render(plan, rng)

    def daily_budget(self, d: int) -> float:
        lo, hi = self.window
        span = max(1e-9, hi - lo)
        overlap = max(0.0, min(d + 1, hi) - max(d, lo))
        return float(self.exchanges or 0) * overlap / span

    def queue_times(self, d: int, n: int, profile: str = "operator") -> np.ndarray:
        """Job times of one day: batch runs of the operator's pipeline (see ``burst_times``)."""
        return burst_times(
            self.rng,
            self.ctx.day_start(d),
            n,
            PROFILES[profile],
            self.operator_tz(),
            runs_per_day=float(self.param("runs_per_day", self.runs_per_day)),
            run_minutes=float(self.param("run_minutes", self.run_minutes)),
        )

    #: Defaults of the pipeline's batch runs (scenario params ``runs_per_day``/``run_minutes``).
    runs_per_day: ClassVar[float] = 6.0
    run_minutes: ClassVar[float] = 45.0

    def cover_countries(self, n: int) -> np.ndarray:
        return pick(self.rng, self.param("declared_countries", COVER_COUNTRIES), n)


class CotHarvest(_Campaign):
    """Campaign A: chain-of-thought harvesting, rubric grading and "safe rewrites".

    Public facts: synchronised traffic with identical patterns, shared payment methods,
    coordinated timing — load balancing across accounts for throughput and to stay under
    limits. Imperfect operators: a share of accounts pay with their own card, some traffic
    leaks through the operator's own servers rather than the residential proxies.
    """

    label = "attack.cot_harvest"
    params_doc: ClassVar[dict[str, str]] = {
        "operator_tz": "operator's UTC offset (default 8)",
        "template_sets": "how many prompt-template sets the operator rotates (default 4)",
        "declared_countries": "weights of countries accounts declare",
        "runs_per_day": "batch runs of the pipeline per day",
        "run_minutes": "median length of a batch run",
        "lang_mix": "share of prompts in other languages",
        "servers": "operator servers some traffic leaks through (0: residential exits only)",
        "payment_methods": "shared cards",
        "signup_waves": "sign-up batches",
        "mix": "prompt-kind weights",
    }
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.05,
        "reasoning_p": 0.9,
        "small_model_p": 0.0,
        "conversation_ids": False,
        "temperature": {0.7: 0.6, 1.0: 0.4},
        "max_tokens": {8192: 0.6, 4096: 0.4},
        "err429_p": 0.02,
    }

    def build(self) -> None:
        rng, op, n, ctx = self.rng, self.operator_rng, self.n, self.ctx
        country = self.cover_countries(n)
        self.tz = np.full(n, self.operator_tz())
        # ``servers: 0`` is an operator whose traffic and sign-ups all leave from residential
        # proxies: no server of its own leaks into any account's addresses.
        servers = ctx.address.sample("hosting", int(self.param("servers", 4)), op)
        pools = [
            np.concatenate(
                [ctx.address.sample("residential", 2, rng, country=str(c))]
                + ([rng.choice(servers, 1)] if len(servers) else [])
            )
            for c in country
        ]
        self.set_ips(pools)
        harness = ctx.clients.sample("openai-python", 1, op, recent=0.3) + ctx.clients.sample(
            "python-httpx", 1, op
        )
        self.set_clients(harness, (rng.random(n) < 0.15).astype(np.int64))
        cards = int(self.param("payment_methods", max(2, n // 12)))
        shared = rng.random(n) < 0.75
        payment = _payments(rng, shared, cards, "opA")
        waves = int(self.param("signup_waves", 3))
        wave = rng.integers(0, waves, n)
        wave_t = ctx.start_us + (self.window[0] - rng.uniform(3, 25, waves)) * DAY
        created = (wave_t[wave] + np.sort(rng.uniform(0, 3 * HOUR, n))).astype(np.int64)
        aged = rng.random(n) < 0.15  # bought, aged accounts
        created[aged] = _created(rng, ctx.start_us, int(aged.sum()), 90, 700)
        self.draft = AccountDraft(
            pathway=pick(rng, {"self_serve": 0.65, "startup_program": 0.35}, n),
            created_us=created,
            email_domain=np.where(
                rng.random(n) < 0.2,
                np.array(DISPOSABLE, dtype=object)[rng.integers(0, len(DISPOSABLE), n)],
                _freemail(rng, n),
            ),
            declared_country=country,
            signup_ip=np.where(
                rng.random(n) < (0.6 if len(servers) else 0.0),
                rng.choice(servers, n) if len(servers) else np.full(n, None, dtype=object),
                np.array([p[0] for p in pools], dtype=object),
            ),
            payment=payment.astype(object),
            verified=rng.random(n) < 0.3,
            org=np.full(n, None, dtype=object),
        )
        self.set_adoption(rng.exponential(72, n) + 24, np.full(n, 0.4))

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        k = int(rng.poisson(self.daily_budget(d)))
        ts = self.queue_times(d, k)
        active = np.sort(rng.choice(self.n, max(1, int(self.n * rng.uniform(0.6, 0.95))), replace=False))
        acc = round_robin(rng, ts, active, shuffle_p=0.1)
        kind = pick(
            rng,
            self.param(
                "mix",
                {
                    "cot_harvest": 0.45,
                    "answer_rationalization": 0.2,
                    "rubric_grading": 0.2,
                    "safe_rewrite": 0.15,
                },
            ),
            k,
        )
        return self.clip_window(Plan(acc=acc, ts=ts, kind=kind))

    def _lang_mix(self, kind: str) -> float:
        return float(self.param("lang_mix", 0.15))


class AgenticExtraction(_Campaign):
    """Campaign B: agentic reasoning, tool use, coding, computer use and vision.

    Public facts: hundreds of accounts over several access pathways (varied account types to
    look uncoordinated); attributed partly through request metadata matching the operator's
    staff; a later phase targeted reconstructing reasoning traces.
    """

    label = "attack.agentic_extraction"
    params_doc: ClassVar[dict[str, str]] = {
        "operator_tz": "operator's UTC offset (default 8)",
        "template_sets": "how many prompt-template sets the operator rotates (default 4)",
        "declared_countries": "weights of countries accounts declare",
        "runs_per_day": "batch runs of the pipeline per day",
        "run_minutes": "median length of a batch run",
        "lang_mix": "share of prompts in other languages",
        "pathways": "weights of sign-up pathways",
        "staff_handles": "operator staff ids that leak into metadata",
        "staff_metadata_share": "share of requests carrying a staff id",
        "harness_metadata_share": "share of requests carrying the harness build header (default 0.02)",
        "trace_phase_at": "fraction of the window after which the reasoning-trace phase starts",
    }
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.4,
        "reasoning_p": 0.7,
        "small_model_p": 0.05,
        "tools_p": 0.6,
        "tools_kind": "tool_use",
        "ctx_growth": 900,
        "max_tokens": {8192: 0.5, 4096: 0.3, None: 0.2},
        "err429_p": 0.01,
    }

    def build(self) -> None:
        rng, n, ctx = self.rng, self.n, self.ctx
        pathway = pick(
            rng,
            self.param("pathways", {"education": 0.35, "research_program": 0.3, "startup_program": 0.35}),
            n,
        )
        country = self.cover_countries(n)
        self.tz = np.full(n, self.operator_tz()) + rng.normal(0, 0.5, n)
        kinds = rng.choice(["residential", "cloud", "hosting", "mobile"], n, p=[0.45, 0.25, 0.2, 0.1])
        self.set_ips(
            [
                ctx.address.sample(
                    cast(NetKind, str(kinds[i])),
                    int(rng.integers(1, 4)),
                    rng,
                    country=str(country[i]) if kinds[i] != "hosting" else None,
                )
                for i in range(n)
            ]
        )
        fams: dict[ClientFamily, float] = {
            "openai-python": 0.3,
            "anthropic-python": 0.25,
            "openai-node": 0.15,
            "python-httpx": 0.1,
            "langchain": 0.1,
            "litellm": 0.1,
        }
        clients = ctx.clients.mix(fams, 12, self.operator_rng)
        self.set_clients(clients, rng.integers(0, len(clients), n))
        edu = pathway == "education"
        email = np.where(rng.random(n) < 0.3, company_domains(rng, n), _freemail(rng, n))
        email[edu] = np.array([u[0] for u in UNIVERSITIES], dtype=object)[
            rng.integers(0, len(UNIVERSITIES), int(edu.sum()))
        ]
        cards = rng.integers(0, max(2, n // 20), n)
        no_pay = np.isin(pathway, ["education", "research_program"]) & (rng.random(n) < 0.7)
        payment = np.char.add("opB-card-", cards.astype(str)).astype(object)
        payment[no_pay] = None
        self.staff = [
            f"{h}"
            for h in self.param(
                "staff_handles", ["lw.eval", "zhangq-dev", "mk_harness", "yjc.rl", "tan.data", "opsbot-7"]
            )
        ]
        self.set_adoption(rng.exponential(48, n) + 12, rng.uniform(0.3, 0.6, n))
        self.rate = np.exp(rng.normal(np.log(1.0), 0.6, n))
        self.draft = AccountDraft(
            pathway=pathway,
            created_us=_created(rng, ctx.start_us - int(self.window[0] * DAY) * 0, n, 2, 120),
            email_domain=email,
            declared_country=country,
            signup_ip=_by_country(ctx, rng, "residential", country),
            payment=payment,
            verified=rng.random(n) < 0.5,
            org=np.full(n, None, dtype=object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        budget = self.daily_budget(d)
        if budget <= 0:
            return Plan.concat([])
        mean_turns, cap = 4.0, 12
        # expected turns of a geometric session capped at `cap` turns
        expected = (1 - (1 - 1 / mean_turns) ** cap) * mean_turns
        n_sessions = int(rng.poisson(budget / expected))
        # each account runs its share of sessions; volume is uneven across accounts
        acc_s = rng.choice(self.n, n_sessions, p=self.rate / self.rate.sum())
        starts = hours_to_times(rng, self.ctx.day_start(d), n_sessions, PROFILES["operator"], self.tz[acc_s])
        sess, turn, ts = sessionize(rng, starts, mean_turns, 4.0, max_turns=cap)
        acc = acc_s[sess]
        phase2 = (d - self.window[0]) / max(1e-9, self.window[1] - self.window[0]) >= float(
            self.param("trace_phase_at", 0.65)
        )
        mix = {
            "agentic_coding": 0.3,
            "tool_use": 0.25,
            "computer_use": 0.15,
            "vision": 0.15,
            "coding_question": 0.15,
        }
        if phase2:
            mix = {**{k: v * 0.55 for k, v in mix.items()}, "reasoning_trace": 0.45}
        first = pick(rng, mix, n_sessions)[sess]
        kind = np.where(
            turn == 1,
            first,
            np.where(np.isin(first, ["agentic_coding", "tool_use", "computer_use"]), "agent_step", first),
        )
        return self.clip_window(
            Plan(
                acc=acc,
                ts=ts,
                kind=kind.astype(object),
                session=self.new_sessions(n_sessions)[sess],
                turn=turn,
            )
        )

    def metadata(self, plan: Plan, rng: np.random.Generator) -> pa.Array | None:
        n = len(plan)
        share = float(self.param("staff_metadata_share", 0.04))
        staff = np.array(self.staff, dtype=object)[rng.integers(0, len(self.staff), n)]
        out = np.full(n, None, dtype=object)
        leak = rng.random(n) < share
        out[leak] = np.char.add(np.char.add('{"user": "', staff[leak].astype(str)), '"}')
        build = rng.random(n) < float(self.param("harness_metadata_share", 0.02))
        out[build & ~leak] = '{"x-harness": "agent-eval/0.9.3"}'
        return pa.array(out, type=pa.string())

    def _lang_mix(self, kind: str) -> float:
        return float(self.param("lang_mix", 0.1 if kind == "reasoning_trace" else 0.0))


class AgenticCodingPivot(_Campaign):
    """Campaign C: very high-volume agentic coding and tool orchestration.

    Public facts: ~13M exchanges, caught while running; moved about half its traffic to a
    newly released model within 24 hours. Pools of startup/self-serve accounts behind cloud
    servers, round-robin around the clock, system prompts copied from popular coding agents.
    """

    label = "attack.agentic_coding_pivot"
    params_doc: ClassVar[dict[str, str]] = {
        "operator_tz": "operator's UTC offset (default 8)",
        "template_sets": "how many prompt-template sets the operator rotates (default 4)",
        "declared_countries": "weights of countries accounts declare",
        "runs_per_day": "batch runs of the pipeline per day",
        "run_minutes": "median length of a batch run",
        "lang_mix": "share of prompts in other languages",
        "pool_size": "accounts per server pool",
        "pivot_hours": "hours after a release when traffic moves",
        "pivot_share": "share of traffic moved to the new model",
    }
    runs_per_day = 14.0
    run_minutes = 90.0
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.3,
        "reasoning_p": 0.6,
        "small_model_p": 0.0,
        "tools_p": 0.9,
        "tools_kind": "agentic_coding",
        "system_kind": "agent_step",
        "ctx_growth": 1200,
        "conversation_ids": False,
        "max_tokens": {16384: 0.5, 8192: 0.5},
        "temperature": {None: 0.5, 0.0: 0.5},
        "err429_p": 0.03,
    }

    def build(self) -> None:
        rng, op, n, ctx = self.rng, self.operator_rng, self.n, self.ctx
        country = self.cover_countries(n)
        self.tz = np.full(n, self.operator_tz())
        n_pools = max(1, n // int(self.param("pool_size", 25)))
        self.pool = rng.integers(0, n_pools, n)
        servers = [
            ctx.address.sample(
                "cloud", int(op.integers(3, 10)), op, country=str(op.choice(["SG", "JP", "US"]))
            )
            for _ in range(n_pools)
        ]
        self.set_ips([servers[p] for p in self.pool])
        official = ctx.clients.sample("anthropic-python", 1, op, recent=0.5) + ctx.clients.sample(
            "openai-python", 1, op
        )
        spoof = ctx.clients.spoofed("openai-python", "go-http", 1, op)
        clients = official + spoof
        self.set_clients(clients, rng.choice(3, n, p=[0.45, 0.35, 0.2]))
        self.system_variant = rng.integers(0, 3, n)  # copies of popular coding agents' prompts
        pivot_h = float(self.param("pivot_hours", op.uniform(3, 20)))
        self.set_adoption(
            np.full(n, pivot_h) + rng.uniform(0, 3, n), np.full(n, float(self.param("pivot_share", 0.5)))
        )
        self.draft = AccountDraft(
            pathway=pick(rng, {"startup_program": 0.5, "self_serve": 0.4, "enterprise": 0.1}, n),
            created_us=(ctx.start_us + (self.window[0] - rng.uniform(1, 30, n)) * DAY).astype(np.int64),
            email_domain=np.where(rng.random(n) < 0.5, company_domains(rng, n), _freemail(rng, n)),
            declared_country=country,
            signup_ip=np.array([servers[p][0] for p in self.pool], dtype=object),
            payment=_payments(rng, rng.random(n) < 0.5, max(2, n // 6), "opC"),
            verified=rng.random(n) < 0.4,
            org=np.full(n, None, dtype=object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        k = int(rng.poisson(self.daily_budget(d)))
        ts = self.queue_times(d, k, "pipeline")
        live = np.nonzero(rng.random(self.n) < 0.85)[0]
        acc = round_robin(rng, ts, live if len(live) else np.arange(self.n), shuffle_p=0.25)
        kind = pick(
            rng, {"agentic_coding": 0.6, "coding_question": 0.2, "tool_use": 0.1, "agent_step": 0.1}, k
        )
        turn = np.where(kind == "agent_step", rng.integers(2, 6, k), 1)
        return self.clip_window(Plan(acc=acc, ts=ts, kind=kind, turn=turn))


class HydraReseller(_Campaign):
    """Campaign D: a proxy reseller's "hydra cluster" of thousands of light accounts.

    Public facts: one network managed 20,000+ accounts at once, spread traffic so each looked
    like a light user, and mixed distillation traffic with unrelated customers' requests.
    Requests rotate through residential and datacenter proxies in many countries, so
    declared and observed countries disagree; a few leak from the restricted home region.
    Only the distillation requests carry the campaign's exchange label.
    """

    label = "attack.hydra_reseller"
    params_doc: ClassVar[dict[str, str]] = {
        "operator_tz": "operator's UTC offset (default 8)",
        "template_sets": "how many prompt-template sets the operator rotates (default 4)",
        "declared_countries": "weights of countries accounts declare",
        "runs_per_day": "batch runs of the pipeline per day",
        "run_minutes": "median length of a batch run",
        "lang_mix": "share of prompts in other languages",
        "residential_exits": "residential proxy exits",
        "datacenter_exits": "datacenter proxy exits",
        "customer_share": "unrelated customers' traffic relative to distillation",
        "leak_share": "share of requests leaking from the home region",
        "leak_countries": "where leaked requests come from (default CN, HK)",
    }
    style_defaults: ClassVar[dict[str, Any]] = {
        "stream_p": 0.4,
        "reasoning_p": 0.5,
        "small_model_p": 0.2,
        "conversation_ids": False,
        "err429_p": 0.01,
    }

    def build(self) -> None:
        rng, op, n, ctx = self.rng, self.operator_rng, self.n, self.ctx
        country = pick(rng, {**COVER_COUNTRIES, "BR": 0.05, "IN": 0.05, "NL": 0.05, "ES": 0.04}, n)
        self.tz = np.full(n, self.operator_tz())
        exits = np.concatenate(
            [
                ctx.address.sample("residential", int(self.param("residential_exits", max(300, 3 * n))), op),
                ctx.address.sample("hosting", int(self.param("datacenter_exits", max(60, n // 3))), op),
                ctx.address.sample("mobile", max(60, n // 3), op),
            ]
        )
        self.exits = exits
        self.leak_ips = np.concatenate(
            [
                ctx.address.sample("residential", 5, op, country=str(c))
                for c in self.param("leak_countries", ["CN", "HK"])
            ]
        )
        self.set_ips([exits])  # all accounts rotate through the same exit pool
        self.ip_off = np.zeros(n, dtype=np.int64)
        self.ip_len = np.full(n, len(exits), dtype=np.int64)
        clients = ctx.clients.mix(
            {"openai-python": 0.4, "openai-node": 0.2, "python-requests": 0.2, "anthropic-python": 0.2},
            20,
            op,
        )
        clients += ctx.clients.spoofed("openai-python", "go-http", 2, op)
        self.set_clients(clients, rng.integers(0, len(clients), n))
        email = np.where(
            rng.random(n) < 0.3,
            np.array(DISPOSABLE, dtype=object)[rng.integers(0, len(DISPOSABLE), n)],
            _freemail(rng, n),
        )
        self.set_adoption(rng.exponential(30, n), rng.uniform(0.2, 0.6, n))
        self.draft = AccountDraft(
            pathway=pick(rng, {"self_serve": 0.8, "startup_program": 0.1, "education": 0.1}, n),
            created_us=_created(rng, ctx.start_us, n, 1, 200),
            email_domain=email,
            declared_country=country,
            signup_ip=rng.choice(exits, n),
            payment=_payments(rng, rng.random(n) < 0.15, max(2, n // 40), "hydra"),
            verified=rng.random(n) < 0.2,
            org=np.full(n, None, dtype=object),
        )

    def plan_day(self, d: int) -> Plan:
        rng = self.rng
        distill = int(rng.poisson(self.daily_budget(d)))
        other = int(rng.poisson(self.daily_budget(d) * float(self.param("customer_share", 0.6))))
        k = distill + other
        ts = np.concatenate([self.queue_times(d, distill), self.queue_times(d, other, "individual")])
        # spread over the farm so every account stays a light user
        acc = rng.integers(0, self.n, k)
        camp = np.arange(k) < distill
        kind = np.where(
            camp,
            pick(rng, {"capability_sweep": 0.6, "cot_harvest": 0.25, "coding_question": 0.15}, k),
            pick(rng, {"chat": 0.6, "coding_question": 0.25, "chat_followup": 0.15}, k),
        ).astype(object)
        return self.clip_window(Plan(acc=acc, ts=ts, kind=kind, campaign=camp))

    def render(self, plan: Plan, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        table, labels = super().render(plan, rng)
        leak = rng.random(len(plan)) < float(self.param("leak_share", 0.01))
        if leak.any():
            leaked = pa.array(rng.choice(self.leak_ips, len(plan)), type=pa.string())
            ips = pc.if_else(pa.array(leak), leaked, table.column("ip"))
            table = table.set_column(table.schema.get_field_index("ip"), "ip", ips)
        return table, labels

    def _lang_mix(self, kind: str) -> float:
        return float(self.param("lang_mix", 0.1))


def _json_user(
    prefix: str, ids: np.ndarray, acc: np.ndarray, ns: int, share: float, rng: np.random.Generator
) -> pa.Array:
    """``{"user": "<prefix><hash>"}`` for a share of requests (end-user ids a backend forwards)."""
    from distillshield.simulate.ids import hex_ids

    keyed = hex_ids(prefix, ns, ids.astype(np.uint64) * np.uint64(1 << 20) + acc.astype(np.uint64), width=10)
    js = pc.binary_join_element_wise('{"user": "', keyed, '"}', "")
    return pc.if_else(pa.array(rng.random(len(ids)) < share), js, pa.nulls(len(ids), pa.string()))


#: Persona types a scenario may name (legitimate populations and campaign tactics).
LEGITIMATE: dict[str, type[Persona]] = {
    "individual_developer": IndividualDeveloper,
    "saas_backend": SaasBackend,
    "coding_agent_vendor": CodingAgentVendor,
    "benchmark_researcher": BenchmarkResearcher,
    "university_class": UniversityClass,
    "corporate_vpn": CorporateVPN,
    "legit_reseller": LegitReseller,
    "enterprise_synthetic_data": EnterpriseSynthetic,
}
TACTICS: dict[str, type[Persona]] = {
    "cot_harvest": CotHarvest,
    "agentic_extraction": AgenticExtraction,
    "agentic_coding_pivot": AgenticCodingPivot,
    "hydra_reseller": HydraReseller,
}
