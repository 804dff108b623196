"""The enforcement policy: which facts about a request lead to which countermeasures.

A policy is data (YAML), like the detection rules: an ordered list of rules, each a set of
conditions that must all hold (``match``) and the actions they trigger. Every matching rule
contributes its actions and its id as a reason code; the strongest action decides whether the
request reaches the model (docs/gateway.md). Rules may carry sample facts that must and must
not match, checked when the policy loads, so a policy edit that silently stops matching its
own examples is refused instead of deployed.

The policy is pure: :meth:`Policy.decide` maps :class:`Facts` to a
:class:`~distillshield.gateway._types.Decision` without I/O, so the proxy, the LiteLLM
guardrail and the offline replay evaluation all decide identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from distillshield._pydantic_errors import format_validation_error
from distillshield._yaml import read_yaml_mapping
from distillshield.errors import DistillShieldError
from distillshield.gateway._types import Action, Decision

__all__ = ["DEFAULT_POLICY", "Facts", "Policy", "PolicyError", "load_policy"]


class PolicyError(DistillShieldError):
    """A policy file that cannot be used, with the file and rule it concerns."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the policy may condition on, gathered by the engine for one request.

    ``verdict`` is the batch verdict for the account (``"campaign"``, ``"flagged"``,
    ``"block"``, ``"allow"`` or ``None`` when batch detection has not seen it);
    ``linked_campaign`` is a campaign this account is tied to online by a shared indicator
    (payment, client fingerprint, template...) while batch detection has not yet assigned it;
    ``risk`` is the online risk in [0, 1]; ``cot`` the request's chain-of-thought elicitation
    label. ``verdict_stale``: a ``suspect`` verdict, or a ``flagged`` one scored on fewer
    requests than the engine's floor, that the account has outgrown — since the verdicts were
    published it has sent at least as many requests as the batch had seen from it when it
    scored it, and at least the engine's floor (10 by default), so most of what it now sends
    is traffic the verdict never judged (:class:`~distillshield.gateway.engine.Engine`).
    """

    account_id: str
    verdict: str | None = None
    campaign_id: str | None = None
    campaign_score: float = 0.0
    account_score: float = 0.0
    linked_campaign: str | None = None
    link_evidence: tuple[str, ...] = ()
    risk: float = 0.0
    risk_reasons: tuple[str, ...] = ()
    cot: str | None = None
    capability: str | None = None
    model: str = ""
    endpoint: str = ""
    pathway: str | None = None
    store_degraded: bool = False
    verdict_stale: bool = False


_ACTIONS: dict[str, Action] = {a.name.lower(): a for a in Action}


class _Match(BaseModel):
    """Conditions of one rule; all given conditions must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: list[str] | None = None
    campaign_member: bool | None = None
    min_campaign_score: float | None = Field(default=None, ge=0, le=1)
    min_account_score: float | None = Field(default=None, ge=0, le=1)
    linked: bool | None = None
    min_risk: float | None = Field(default=None, ge=0, le=1)
    cot: list[str] | None = None
    capability: list[str] | None = None
    model: list[str] | None = None
    endpoint: list[str] | None = None
    pathway: list[str] | None = None
    account: list[str] | None = None
    store_degraded: bool | None = None
    verdict_stale: bool | None = None

    def holds(self, f: Facts) -> bool:
        if self.verdict is not None and f.verdict not in self.verdict:
            return False
        if self.campaign_member is not None and (f.campaign_id is not None) != self.campaign_member:
            return False
        if self.min_campaign_score is not None and (
            f.campaign_id is None or f.campaign_score < self.min_campaign_score
        ):
            return False
        if self.min_account_score is not None and f.account_score < self.min_account_score:
            return False
        if self.linked is not None and (f.linked_campaign is not None) != self.linked:
            return False
        if self.min_risk is not None and f.risk < self.min_risk:
            return False
        if self.cot is not None and f.cot not in self.cot:
            return False
        if self.capability is not None and f.capability not in self.capability:
            return False
        if self.model is not None and f.model not in self.model:
            return False
        if self.endpoint is not None and f.endpoint not in self.endpoint:
            return False
        if self.pathway is not None and f.pathway not in self.pathway:
            return False
        if self.account is not None and f.account_id not in self.account:
            return False
        if self.verdict_stale is not None and f.verdict_stale != self.verdict_stale:
            return False
        return self.store_degraded is None or f.store_degraded == self.store_degraded


class _Examples(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: list[dict[str, Any]] = []
    no_match: list[dict[str, Any]] = []


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    match: _Match
    actions: list[Literal["allow", "mark", "protect", "throttle", "block"]]
    refuse_reasoning: bool = False
    protect_mode: Literal["strip", "summary"] | None = None
    examples: _Examples = _Examples()


class _Bucket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: float = Field(gt=0)
    burst: float = Field(ge=1)


class _Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: _Bucket = _Bucket(rate_per_s=0.2, burst=10)
    campaign: _Bucket = _Bucket(rate_per_s=2.0, burst=40)


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    protect_mode: Literal["strip", "summary"] = "summary"
    fail_mode: Literal["open", "closed"] = "open"
    throttle: _Throttle = _Throttle()
    rules: list[_Rule]

    @model_validator(mode="after")
    def _unique_ids(self) -> _PolicyModel:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


@dataclass(frozen=True)
class Policy:
    """A validated policy. Build with :func:`load_policy` or :meth:`from_mapping`."""

    model: _PolicyModel
    source: str = "<memory>"
    _facts_fields: frozenset[str] = field(default=frozenset(Facts.__dataclass_fields__), repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<memory>") -> Policy:
        try:
            model = _PolicyModel.model_validate(dict(data))
        except ValidationError as exc:
            raise PolicyError(format_validation_error(exc, source, "policy")) from exc
        policy = cls(model, source)
        policy._check_examples()
        return policy

    @property
    def fail_mode(self) -> str:
        return self.model.fail_mode

    @property
    def throttle(self) -> _Throttle:
        return self.model.throttle

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.model.rules)

    def _check_examples(self) -> None:
        for rule in self.model.rules:
            for want, samples in ((True, rule.examples.match), (False, rule.examples.no_match)):
                for i, sample in enumerate(samples):
                    unknown = set(sample) - self._facts_fields
                    if unknown:
                        raise PolicyError(
                            f"{self.source}: rule {rule.id!r} example {i}: unknown fact(s) {sorted(unknown)}"
                        )
                    facts = Facts(**{"account_id": "example", **sample})
                    if rule.match.holds(facts) != want:
                        verb = "should match but does not" if want else "should not match but does"
                        raise PolicyError(f"{self.source}: rule {rule.id!r} example {i} {verb}: {sample}")

    def decide(self, facts: Facts) -> Decision:
        """The decision for ``facts``: union of the actions of every matching rule."""
        actions: set[Action] = set()
        reasons: list[str] = []
        refuse = False
        mode = self.model.protect_mode
        for rule in self.model.rules:
            if not rule.match.holds(facts):
                continue
            actions.update(_ACTIONS[a] for a in rule.actions)
            reasons.append(f"rule:{rule.id}")
            refuse = refuse or rule.refuse_reasoning
            if rule.protect_mode is not None:
                mode = rule.protect_mode
        if len(actions) > 1:
            actions.discard(Action.ALLOW)
        if not actions:
            actions.add(Action.ALLOW)
        campaign = facts.campaign_id or facts.linked_campaign
        if campaign is not None and any(r.startswith("rule:") for r in reasons):
            reasons.append(f"campaign:{campaign}")
        reasons.extend(facts.link_evidence[:3])
        if facts.risk > 0 and any(r.startswith("rule:") for r in reasons):
            reasons.append(f"risk:{facts.risk:.2f}")
            reasons.extend(facts.risk_reasons[:3])
        if facts.cot == "expose_reasoning":
            reasons.append("cot:expose_reasoning")
        return Decision(
            actions=frozenset(actions),
            reasons=tuple(reasons),
            campaign_id=campaign,
            risk=facts.risk,
            mark_tag=campaign if Action.MARK in actions else None,
            protect_mode=mode,
            refuse_reasoning_request=refuse and facts.cot == "expose_reasoning",
        )


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (YAML); errors name the file and the rule."""
    data = read_yaml_mapping(path, PolicyError, "policy", "a policy is a mapping with 'version' and 'rules'")
    return Policy.from_mapping(data, str(Path(path)))


#: The policy used when none is given (also shipped as ``gateway/default_policy.yaml``).
DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")
