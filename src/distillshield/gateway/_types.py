"""The gateway's value objects: what a request is, and what was decided about it.

Kept free of I/O so the proxy, the LiteLLM guardrail and the offline replay share one
decision vocabulary (docs/gateway.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.IntEnum):
    """Countermeasures, ordered by severity: the strongest matching one wins.

    ``PROTECT`` and ``MARK`` alter the response; ``THROTTLE`` and ``BLOCK`` stop the request
    before it reaches the model. A decision may carry several (protect + mark), see
    :class:`Decision`.
    """

    ALLOW = 0
    MARK = 1
    PROTECT = 2
    THROTTLE = 3
    BLOCK = 4


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the gateway knows about one request before forwarding it.

    ``prompt`` is the last user turn (text only), ``system_prompt`` the concatenated system
    turns; both may be ``None`` for content-free callers. ``ts`` is epoch seconds (the
    request's arrival time; the offline replay passes the logged time).
    """

    request_id: str
    ts: float
    account_id: str
    api_key_id: str | None
    model: str
    endpoint: str
    ip: str
    user_agent: str | None = None
    tls_fingerprint: str | None = None
    metadata: str | None = None
    conversation_id: str | None = None
    n_messages: int = 1
    system_prompt: str | None = None
    prompt: str | None = None
    tools: tuple[str, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The gateway's verdict on one request.

    ``actions`` holds every countermeasure that applies (e.g. ``{PROTECT, MARK}``);
    :attr:`action` is the strongest. ``reasons`` are stable reason codes (``campaign:C-12``,
    ``cot:expose_reasoning``, ``risk:0.93``...) sent in the ``x-distillshield-reasons``
    header and logged. ``mark_tag`` is the campaign id the response is marked for;
    ``retry_after`` is set on throttles (seconds). ``protect_mode`` is ``"strip"`` or
    ``"summary"``.
    """

    actions: frozenset[Action] = frozenset({Action.ALLOW})
    reasons: tuple[str, ...] = ()
    campaign_id: str | None = None
    risk: float = 0.0
    retry_after: float | None = None
    mark_tag: str | None = None
    protect_mode: str = "strip"
    refuse_reasoning_request: bool = False
    fail_mode: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> Action:
        return max(self.actions) if self.actions else Action.ALLOW

    @property
    def forwards(self) -> bool:
        """Whether the request reaches the model at all."""
        return self.action < Action.THROTTLE and not self.refuse_reasoning_request
