"""The persona machinery: accounts, per-account identity, and rendering request plans.

A persona decides *who* (its accounts and their infrastructure) and *when/what* (a
:class:`Plan` of requests per day); :meth:`Persona.render` turns a plan into canonical
``exchanges`` rows once, for every persona, so all traffic shares one set of mechanics
(tokens consistent with text, models, status codes, client fingerprints). Concrete
personas live in :mod:`distillshield.simulate.personas`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.errors import ScenarioError
from distillshield.simulate.clients import Client
from distillshield.simulate.context import SimContext
from distillshield.simulate.ids import hex_ids, stable_hash
from distillshield.simulate.text import estimate_tokens
from distillshield.simulate.timing import DAY, US

#: Which response style answers each prompt kind.
RESPONSE_KIND: dict[str, str] = {
    "chat": "chat",
    "chat_followup": "chat",
    "coding_question": "code",
    "agent_step": "agent",
    "saas_input": "chat",
    "benchmark_math": "math",
    "class_assignment": "chat",
    "synthetic_data": "data",
    "reseller_mix": "chat",
    "cot_harvest": "cot",
    "answer_rationalization": "cot",
    "rubric_grading": "grading",
    "safe_rewrite": "rewrite",
    "agentic_coding": "agent",
    "tool_use": "tool_call",
    "computer_use": "tool_call",
    "vision": "vision",
    "reasoning_trace": "cot",
    "capability_sweep": "cot",
}


@dataclass
class Plan:
    """The requests a persona makes in one day, before rendering."""

    acc: np.ndarray
    ts: np.ndarray
    kind: np.ndarray
    session: np.ndarray | None = None
    turn: np.ndarray | None = None
    variant: np.ndarray | None = None
    campaign: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.acc)

    def take(self, idx: np.ndarray | slice) -> Plan:
        """The plan restricted to rows ``idx`` (an index array, a mask or a slice)."""

        def sub(v: np.ndarray | None) -> np.ndarray | None:
            return None if v is None else v[idx]

        return Plan(
            self.acc[idx],
            self.ts[idx],
            self.kind[idx],
            sub(self.session),
            sub(self.turn),
            sub(self.variant),
            sub(self.campaign),
        )

    @staticmethod
    def concat(plans: list[Plan]) -> Plan:
        plans = [p for p in plans if len(p)]
        if not plans:
            z = np.zeros(0, dtype=np.int64)
            return Plan(z, z, np.zeros(0, dtype=object))

        def cat(name: str, default: Any) -> np.ndarray:
            parts = []
            for p in plans:
                v = getattr(p, name)
                parts.append(np.full(len(p), default) if v is None else v)
            return np.concatenate(parts)

        return Plan(
            acc=cat("acc", 0),
            ts=cat("ts", 0),
            kind=cat("kind", "chat"),
            session=cat("session", -1),
            turn=cat("turn", 1),
            variant=cat("variant", 0),
            campaign=cat("campaign", False),
        )


@dataclass
class Style:
    """How a persona's requests look on the wire (rendering parameters, all overridable)."""

    stream_p: float = 0.5
    temperature: dict[float | None, float] = field(
        default_factory=lambda: {None: 0.5, 0.7: 0.2, 0.0: 0.15, 1.0: 0.15}
    )
    max_tokens: dict[int | None, float] = field(
        default_factory=lambda: {None: 0.6, 1024: 0.15, 2048: 0.15, 4096: 0.1}
    )
    reasoning_p: float = 0.3
    small_model_p: float = 0.4
    ctx_growth: int = 350  # tokens of history added per previous turn
    err429_p: float = 0.003
    err4xx_p: float = 0.002
    err5xx_p: float = 0.001
    tools_p: float = 0.0
    tools_kind: str = "agentic_coding"
    system_kind: str | None = None
    conversation_ids: bool = True
    responses_api_p: float = 0.15
    batch_p: float = 0.0


@dataclass
class AccountDraft:
    """Per-account facts a persona fills in; becomes the ``accounts`` and label rows."""

    pathway: np.ndarray
    created_us: np.ndarray
    email_domain: np.ndarray
    declared_country: np.ndarray
    signup_ip: np.ndarray
    payment: np.ndarray  # payment instrument key (hashed on output), None for none
    verified: np.ndarray
    org: np.ndarray  # org key or None


#: Generic request-metadata pairs that frameworks, integrations and teams' conventions add to
#: requests, each shared by many unrelated accounts (weights: relative popularity). They are
#: the negatives of metadata linking: a staff handle shared by a farm's accounts is evidence;
#: a framework's default tag shared by hundreds of strangers is not. Personas send them only
#: when a scenario sets ``shared_tag_share`` (the shipped training scenarios do; the default
#: scenario does not, so its figures are unchanged) — ``bench/eval_shared_tags.py`` injects
#: *other* tags into the default scenario to measure what the detector does with them.
SHARED_TAGS: tuple[tuple[str, float], ...] = (
    ('"env": "production"', 8.0),
    ('"framework": "crewai"', 4.0),
    ('"source": "zapier"', 3.0),
    ('"app": "support-bot"', 2.0),
    ('"integration": "n8n"', 2.0),
    ('"client": "cursor"', 1.5),
    ('"tier": "pro"', 1.0),
    ('"framework": "autogen"', 1.0),
)

#: Parameters every persona accepts (name -> meaning), besides its own ``params_doc``.
COMMON_PARAMS: dict[str, str] = {
    "shared_tag_share": "share of accounts whose requests carry a generic shared metadata tag "
    "(SHARED_TAGS; each such account sends it on 30-100 % of its requests)",
}


class Persona(ABC):
    """Base class of every persona: legitimate or one campaign's operator."""

    #: Label written to ``labels/accounts.persona``.
    label: ClassVar[str]
    #: The ``Style`` a persona starts from; scenario ``params`` override fields of it.
    style_defaults: ClassVar[dict[str, Any]] = {}
    #: Behaviour parameters a scenario may set (name -> meaning); anything else is an error.
    params_doc: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        ctx: SimContext,
        key: str,
        n_accounts: int,
        params: dict[str, Any],
        *,
        campaign_id: str | None = None,
        actor: str | None = None,
        exchanges: int | None = None,
        window: tuple[float, float] | None = None,
    ) -> None:
        self.ctx = ctx
        self.key = key
        self.n = n_accounts
        self.campaign_id = campaign_id
        self.actor = actor
        self.exchanges = exchanges
        self.window = window or (0.0, float(ctx.days))
        unknown = sorted(
            k for k in params if not hasattr(Style, k) and k not in self.params_doc and k not in COMMON_PARAMS
        )
        if unknown:
            known = sorted([*self.params_doc, *COMMON_PARAMS, *Style.__dataclass_fields__])
            raise ScenarioError(f"{key}: unknown param(s) {unknown}; known: {', '.join(known)}")
        self.rng = ctx.rng("persona", key)
        self.ns = (
            stable_hash(ctx.seed, key) if ctx.provider is None else stable_hash(ctx.seed, ctx.provider, key)
        )
        #: The stream of the operator's infrastructure draws. For one provider it is ``rng``
        #: itself (the draws interleave as they always did); across providers it is keyed by
        #: the operator and tactic alone, so every provider sees the same servers and harnesses.
        self.operator_rng = (
            self.rng if ctx.provider is None or actor is None else ctx.operator_rng(actor, type(self).label)
        )
        style = {**self.style_defaults, **{k: v for k, v in params.items() if hasattr(Style, k)}}
        self.style = Style(**style)
        self.params = {k: v for k, v in params.items() if not hasattr(Style, k)}
        self._counter = 0
        self._sessions = 0
        self.account_ids = hex_ids("acct_", self.ns, np.arange(self.n), width=12)
        # filled by build(): identity per account
        self.tz = np.zeros(self.n)
        self.ip_pool = np.zeros(0, dtype=object)
        self.ip_off = np.zeros(self.n, dtype=np.int64)
        self.ip_len = np.ones(self.n, dtype=np.int64)
        self.clients: list[Client] = []
        self.acc_client = np.zeros(self.n, dtype=np.int64)
        self.adopt_at = np.full(self.n, np.iinfo(np.int64).max, dtype=np.int64)
        self.adopt_share = np.zeros(self.n)
        self.small_p = np.full(self.n, self.style.small_model_p)
        self.system_variant = np.full(self.n, -1, dtype=np.int64)
        self.org_key = np.full(self.n, None, dtype=object)
        self.n_keys = np.ones(self.n, dtype=np.int64)
        self.draft: AccountDraft | None = None
        self._tag_of: np.ndarray | None = None  # per account: index into SHARED_TAGS, -1 none
        self._tag_send = np.zeros(0)  # per account: share of its requests carrying the tag
        self.build()

    # ---- to implement -------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create accounts (``self.draft``) and their identity (IPs, clients, time zones)."""

    @abstractmethod
    def plan_day(self, d: int) -> Plan:
        """The requests of simulated day ``d`` (0-based)."""

    # ---- helpers for subclasses ---------------------------------------------------------
    def param(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def set_ips(self, pools: list[np.ndarray]) -> None:
        """Give each account its own list of egress IPs (CSR layout, vectorised lookup)."""
        lens = np.array([max(1, len(p)) for p in pools], dtype=np.int64)
        self.ip_len = lens
        self.ip_off = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self.ip_pool = np.concatenate([np.asarray(p, dtype=object) for p in pools])
        self._ip_arr = pa.array(self.ip_pool, type=pa.string())

    def set_clients(self, clients: list[Client], per_account: np.ndarray) -> None:
        self.clients = clients
        self.acc_client = per_account.astype(np.int64)
        # column views used by every render call
        self._fam = np.array([c.family for c in clients], dtype=object)
        self._ua = pa.array([c.user_agent for c in clients], type=pa.string())
        self._tls = pa.array([c.tls_fingerprint for c in clients], type=pa.string())

    def set_adoption(self, lag_hours: np.ndarray, share: np.ndarray) -> None:
        """Per account: hours after a new model's release before it moves ``share`` of traffic."""
        rel = self.ctx.models.new_releases
        if not rel:
            return
        first = rel[0][1]
        lag = np.where(np.isfinite(lag_hours), lag_hours, 1e9)
        self.adopt_at = first + (np.minimum(lag, 1e6) * 3600 * US).astype(np.int64)
        self.adopt_share = share

    def clip_window(self, plan: Plan) -> Plan:
        """Drop requests outside the persona's active window (campaign start/end)."""
        lo = self.ctx.start_us + int(self.window[0] * DAY)
        hi = self.ctx.start_us + int(self.window[1] * DAY)
        keep = (plan.ts >= lo) & (plan.ts < hi)
        return plan if keep.all() else plan.take(keep)

    def new_sessions(self, n: int) -> np.ndarray:
        out = np.arange(self._sessions, self._sessions + n, dtype=np.int64)
        self._sessions += n
        return out

    # ---- output -------------------------------------------------------------------------
    def accounts_table(self) -> tuple[pa.Table, pa.Table]:
        """(canonical accounts rows, account labels rows)."""
        d = self.draft
        assert d is not None, "build() must set self.draft"
        # a payment fingerprint is scoped to the provider's payment processor: the same card
        # gets another fingerprint at another provider, so payment evidence does not cross providers
        scope = "" if self.ctx.provider is None else f"-{self.ctx.provider}"
        key = f"pay-{self.ctx.seed}{scope}"
        pay = [None if p is None else _digest(f"{p}", key) for p in d.payment]
        local = [f"{self.key}-{i}" for i in range(self.n)]
        email_hash = [
            _digest(f"{loc}@{dom}", f"mail-{self.ctx.seed}{scope}")
            for loc, dom in zip(local, d.email_domain, strict=True)
        ]
        orgs = [
            None if o is None else "org_" + _digest(f"{self.key}/{o}", f"org-{self.ctx.seed}{scope}")[:12]
            for o in d.org
        ]
        self.org_ids = pa.array(orgs, type=pa.string())
        accounts = pa.table(
            {
                "account_id": self.account_ids,
                "org_id": self.org_ids,
                "created_at": pa.array(d.created_us.astype(np.int64), type=pa.timestamp("us", tz="UTC")),
                "pathway": pa.array(d.pathway.tolist(), type=pa.string()),
                "email_domain": pa.array(d.email_domain.tolist(), type=pa.string()),
                "email_hash": pa.array(email_hash, type=pa.string()),
                "declared_country": pa.array(d.declared_country.tolist(), type=pa.string()),
                "signup_ip": pa.array(d.signup_ip.tolist(), type=pa.string()),
                "payment_fingerprint": pa.array(pay, type=pa.string()),
                "verified": pa.array(d.verified.astype(bool)),
            }
        )
        labels = pa.table(
            {
                "account_id": self.account_ids,
                "campaign_id": pa.array([self.campaign_id] * self.n, type=pa.string()),
                "actor": pa.array([self.actor] * self.n, type=pa.string()),
                "persona": pa.array([self.label] * self.n, type=pa.string()),
            }
        )
        return accounts, labels

    def render(self, plan: Plan, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
        """Turn a plan into canonical exchanges and their labels (same row order)."""
        n = len(plan)
        st = self.style
        ctx = self.ctx
        acc = plan.acc.astype(np.int64)
        turn = (plan.turn if plan.turn is not None else np.ones(n, dtype=np.int64)).astype(np.int64)
        variant = plan.variant if plan.variant is not None else np.zeros(n, dtype=np.int64)
        session = plan.session if plan.session is not None else np.full(n, -1, dtype=np.int64)
        camp = plan.campaign if plan.campaign is not None else np.full(n, self.campaign_id is not None)

        request_id = hex_ids("req_", self.ns, np.arange(self._counter, self._counter + n))
        first_request = self._counter
        self._counter += n

        # --- text, grouped by prompt kind, built as Arrow and put back in plan order ---
        cot = np.zeros(n, dtype=bool)
        resp_tok = np.zeros(n, dtype=np.int64)
        capability = np.empty(n, dtype=object)
        frame = np.full(n, -1, dtype=np.int64)
        order: list[np.ndarray] = []
        p_parts: list[pa.Array] = []
        r_parts: list[pa.Array] = []
        for kind in np.unique(plan.kind):
            idx = np.nonzero(plan.kind == kind)[0]
            pb = ctx.text.prompts(
                str(kind), len(idx), rng, variant=variant[idx], lang_mix=self._lang_mix(str(kind))
            )
            cot[idx] = pb.cot_elicit
            capability[idx] = pb.capability
            frame[idx] = pb.frame
            rb = ctx.text.responses(
                RESPONSE_KIND.get(str(kind), "chat"), len(idx), rng, visible_reasoning=pb.cot_elicit
            )
            resp_tok[idx] = rb.output_tokens
            order.append(idx)
            p_parts.append(pb.text)
            r_parts.append(rb.text)
        inverse = pa.array(np.argsort(np.concatenate(order)) if order else np.zeros(0, np.int64))
        prompt_arr = (
            pa.concat_arrays([a.cast(pa.string()) for a in p_parts]).take(inverse)
            if order
            else pa.array([], pa.string())
        )
        resp_arr = (
            pa.concat_arrays([a.cast(pa.string()) for a in r_parts]).take(inverse)
            if order
            else pa.array([], pa.string())
        )
        prompt_tok = estimate_tokens(prompt_arr).astype(np.int64)

        # --- system prompt per account ---
        sys_text = np.full(n, None, dtype=object)
        sys_tok = np.zeros(n, dtype=np.int64)
        if st.system_kind is not None:
            variants = self.system_variant[acc]
            for v in np.unique(variants):
                if v < 0:
                    continue
                s = ctx.text.system_prompt(st.system_kind, int(v))
                if s is None:
                    continue
                m = variants == v
                sys_text[m] = s
                sys_tok[m] = int(estimate_tokens(pa.array([s]))[0])

        # --- model: base mix, then adoption of a newly released model ---
        cal = ctx.models
        model = np.where(rng.random(n) < self.small_p[acc], cal.small, cal.flagship).astype(object)
        for name, released in cal.new_releases:
            moved = (plan.ts >= np.maximum(self.adopt_at[acc], released)) & (
                rng.random(n) < self.adopt_share[acc]
            )
            model[moved] = name
        reasoning_names = [m for m in cal.names if cal.is_reasoning(m)]
        reasoning_model = np.isin(model, reasoning_names)

        # --- client, endpoint ---
        ci = self.acc_client[acc]
        fam_r = self._fam[ci]
        endpoint = np.full(n, "chat.completions", dtype=object)
        anth = np.isin(fam_r, ["anthropic-python", "anthropic-typescript"])
        endpoint[anth] = "messages"
        oai = np.isin(fam_r, ["openai-python", "openai-node"])
        endpoint[oai & (rng.random(n) < st.responses_api_p)] = "responses"
        if st.batch_p > 0:
            endpoint[rng.random(n) < st.batch_p] = "batch"

        # --- parameters ---
        temperature = _choice(rng, st.temperature, n, none=np.nan)
        max_tokens = _choice(rng, st.max_tokens, n).astype(np.int64)
        stream = (rng.random(n) < st.stream_p) & (endpoint != "batch")
        uses_reasoning = reasoning_model & ((rng.random(n) < st.reasoning_p) | cot)
        reasoning_tok = np.where(
            uses_reasoning, np.clip(rng.lognormal(np.log(500), 0.9, n), 16, 30000), 0
        ).astype(np.int64)
        tools = None
        has_tools = np.zeros(n, dtype=bool)
        n_tools = np.zeros(n, dtype=np.int64)
        if st.tools_p > 0:
            # the tool suite follows the request's template variant, so prompts and tools agree
            has_tools = rng.random(n) < st.tools_p
            suites, row_suite = np.unique(variant, return_inverse=True)
            names = [ctx.text.tool_names(st.tools_kind, int(v)) for v in suites]
            per_suite = pa.array(names, type=pa.list_(pa.string()))
            tools = per_suite.take(pa.array(row_suite, mask=~has_tools))
            n_tools = np.where(has_tools, np.array([len(x) for x in names])[row_suite], 0)

        # --- tokens consistent with text ---
        history = (turn - 1) * st.ctx_growth
        input_tokens = sys_tok + prompt_tok + history + 4 * (2 * turn - 1)
        input_tokens += 60 * n_tools  # tool schemas count as prompt tokens
        output_tokens = resp_tok + reasoning_tok
        output_tokens = np.where(max_tokens > 0, np.minimum(output_tokens, max_tokens), output_tokens)

        # --- status: rate limits, client errors, upstream errors ---
        u = rng.random(n)
        status = np.full(n, 200, dtype=np.int16)
        status[u < st.err429_p + st.err4xx_p + st.err5xx_p] = 500
        status[u < st.err429_p + st.err4xx_p] = 400
        status[u < st.err429_p] = 429
        failed = status != 200
        output_tokens[failed] = 0

        content = ctx.scenario.content
        resp_out: pa.Array = pc.if_else(pa.array(failed), pa.nulls(n, pa.string()), resp_arr)
        if content != "full":
            resp_out = pa.nulls(n, pa.string())
        prompt_out: pa.Array = prompt_arr
        sys_out = sys_text
        if content == "none":
            prompt_out = pa.nulls(n, pa.string())
            sys_out = np.full(n, None, dtype=object)

        ip = self._ip_arr.take(
            pa.array(self.ip_off[acc] + rng.integers(0, 1 << 30, size=n) % self.ip_len[acc])
        )
        conv = None
        if st.conversation_ids:
            conv = hex_ids("conv_", self.ns ^ 0x5A5A, np.maximum(session, 0), width=16)
            conv = pc.if_else(pa.array(session >= 0), conv, pa.nulls(n, pa.string()))
        key_idx = rng.integers(0, 1 << 20, size=n) % self.n_keys[acc]
        api_key = hex_ids("key_", self.ns ^ 0xA5A5, acc * 16 + key_idx, width=12)
        metadata = self._with_shared_tags(acc, first_request, self.metadata(plan, rng))

        table = pa.table(
            {
                "request_id": request_id,
                "ts": pa.array(plan.ts.astype(np.int64), type=pa.timestamp("us", tz="UTC")),
                "account_id": self.account_ids.take(pa.array(acc)),
                "org_id": self.org_ids.take(pa.array(acc)),
                "api_key_id": api_key,
                "model": pa.array(model, type=pa.string()),
                "endpoint": pa.array(endpoint, type=pa.string()),
                "ip": ip,
                "user_agent": self._ua.take(pa.array(ci)),
                "tls_fingerprint": self._tls.take(pa.array(ci)),
                "metadata": metadata if metadata is not None else pa.nulls(n, pa.string()),
                "conversation_id": conv if conv is not None else pa.nulls(n, pa.string()),
                "n_messages": pa.array((2 * turn - 1).astype(np.int32)),
                "system_prompt": pa.array(sys_out, type=pa.string()),
                "prompt": prompt_out,
                "tools": tools if tools is not None else pa.nulls(n, pa.list_(pa.string())),
                "response": resp_out,
                "input_tokens": pa.array(input_tokens.astype(np.int32)),
                "output_tokens": pa.array(output_tokens.astype(np.int32)),
                "reasoning_tokens": pa.array(
                    np.where(failed, 0, reasoning_tok).astype(np.int32), mask=~reasoning_model
                ),
                "max_tokens": pa.array(max_tokens.astype(np.int32), mask=max_tokens < 0),
                "temperature": pa.array(temperature, mask=np.isnan(temperature)),
                "stream": pa.array(stream),
                "status": pa.array(status),
            }
        )
        labels = pa.table(
            {
                "request_id": request_id,
                "campaign_id": pa.array(
                    np.full(n, self.campaign_id, dtype=object), type=pa.string(), mask=~camp
                ),
                # request-level truth for the request signals (template, CoT elicitation, capability)
                "capability": pa.array(capability, type=pa.string()),
                "cot_elicit": pa.array(cot),
                "template_id": pa.array(frame.astype(np.int32), mask=frame < 0),
            }
        )
        return table, labels

    def metadata(self, plan: Plan, rng: np.random.Generator) -> pa.Array | None:
        """Client-supplied metadata JSON per request (None = never sent)."""
        return None

    def _with_shared_tags(
        self, acc: np.ndarray, first_request: int, metadata: pa.Array | None
    ) -> pa.Array | None:
        """``metadata`` with the account's generic shared tag added (``shared_tag_share``).

        Drawn from generators of their own (keyed by the persona and the request counter), so
        a scenario without the parameter draws exactly what it always did.
        """
        share = float(self.param("shared_tag_share", 0.0))
        if share <= 0.0 or len(acc) == 0:
            return metadata
        if self._tag_of is None:
            g = np.random.default_rng([self.ns & 0xFFFFFFFF, 0x7A65])
            weights = np.array([w for _, w in SHARED_TAGS])
            tagged = g.random(self.n) < share
            tag = g.choice(len(SHARED_TAGS), size=self.n, p=weights / weights.sum())
            self._tag_of = np.where(tagged, tag, -1)
            self._tag_send = g.uniform(0.3, 1.0, self.n)
        g = np.random.default_rng([self.ns & 0xFFFFFFFF, 0x7A66, first_request])
        tag = self._tag_of[acc]
        send = (tag >= 0) & (g.random(len(acc)) < self._tag_send[acc])
        if not send.any():
            return metadata
        pairs = np.array([t for t, _ in SHARED_TAGS], dtype=object)[np.maximum(tag, 0)]
        alone = pa.array(np.char.add(np.char.add("{", pairs.astype(str)), "}").astype(object), pa.string())
        if metadata is None:
            return pc.if_else(pa.array(send), alone, pa.nulls(len(acc), pa.string()))
        # a request that already carries metadata (an end-user id): the tag joins the object
        joined = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(metadata, 0, -1), pa.array(pairs.astype(str), pa.string()), ", "
        )
        joined = pc.binary_join_element_wise(joined, pa.scalar("}"), "")
        with_tag = pc.if_else(pc.is_valid(metadata), joined, alone)
        return pc.if_else(pa.array(send), with_tag, metadata)

    def _lang_mix(self, kind: str) -> float:
        return float(self.param("lang_mix", 0.0))


def _choice(rng: np.random.Generator, weights: dict[Any, float], n: int, *, none: float = -1) -> np.ndarray:
    """``n`` draws from ``weights`` as a float array; a ``None`` key becomes ``none``."""
    keys = np.array([none if k is None else float(k) for k in weights], dtype=np.float64)
    p = np.array(list(weights.values()), dtype=np.float64)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _digest(value: str, key: str) -> str:
    import hashlib

    return hashlib.blake2b(value.encode(), key=key.encode()[:64], digest_size=12).hexdigest()
