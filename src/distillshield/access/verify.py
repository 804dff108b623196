"""Verification risk at sign-up and upgrade: which step to require before an account is granted.

The seed case's accounts were farmed through the education, security-research and startup
pathways; the cheapest place to make a farm expensive is the door. A :class:`Verifier` takes
one :class:`SignupRequest` (pathway, e-mail domain, IP, declared country, payment and client
fingerprints, proofs already presented), weighs the evidence below and answers a
:class:`VerifyResult`: a risk in [0, 1], the reasons (each with its value), the evidence it
read and the verification step to require — ``none``, ``email_domain_proof``,
``institutional_proof``, ``payment_verification``, ``manual_review`` or ``deny`` — according to
the pathway's thresholds in a :class:`VerifyPolicy` (YAML, ``default_verify_policy.yaml``).

Risk model
    Naive-Bayes log-odds: start from the pathway's **prior** (the share of its sign-ups that
    are fraudulent, a deployment's base rate), add ``ln(LR)`` for every piece of evidence that
    fires, where ``LR = P(evidence | fraud) / P(evidence | legitimate)`` is a documented belief
    in the policy file, and read the posterior probability back
    (``risk = 1 / (1 + exp(-logit))``). Each reason names the evidence, its value and its
    factor (``email_disposable[mailinator.com] x50``), so an analyst can recompute the risk by
    hand. Evidence about one fact is counted once: the strongest campaign link, the strongest
    peer match, the strongest network flag (Tor > hosting > VPN), the country mismatch only
    when the address is not already flagged as an anonymising network (its country then says
    nothing).

Evidence (names as in the policy's ``evidence`` section)
    * ``email_disposable`` — a throwaway-mailbox domain (the ``disposable-email-domains`` list
      behind :class:`~distillshield.enrich.EmailClassifier`);
    * ``email_unexpected_class`` — an e-mail class the pathway does not expect (free-mail on
      education, a personal address on an enterprise contract; per pathway ``expected_email``);
    * ``institution_country`` — an academic domain whose country (``.edu`` is the US, else the
      country-code TLD) is neither the declared country nor the sign-up address's country;
    * ``restricted_declared`` / ``restricted_signup`` — declared country / sign-up address in a
      region where the service is not offered (``restricted_countries``);
    * ``country_mismatch`` — declared country differs from the sign-up address's country;
    * ``network_tor`` / ``network_hosting`` / ``network_vpn`` — the sign-up came through Tor, a
      datacenter or a VPN (:class:`~distillshield.enrich.InfraLists`);
    * ``velocity_prefix`` / ``velocity_payment`` / ``velocity_client`` / ``velocity_domain`` —
      other sign-ups on the same /24 (/48), payment fingerprint, client fingerprint
      (user agent ``|`` TLS, the gateway's ``client`` indicator format) or corporate e-mail
      domain within a sliding window (:class:`VelocityState`);
    * ``campaign_link`` — the payment, client or prefix is a specific indicator of a campaign
      known to batch detection (:meth:`VerdictSet.link
      <distillshield.gateway.verdicts.VerdictSet.link>`);
    * ``peer_indicator`` — a peer (another lab, a cloud provider) reported the value
      (:class:`PeerIndicators`: keyed payment hash, address, prefix, client, e-mail domain;
      :class:`distillshield.intel.peers.PeerIndex` answers from imported bundles);
    * ``account_verdict`` — for a request naming an existing account (an upgrade), its batch
      verdict (campaign, block, flagged, suspect, or ``allow`` — an analyst cleared it).

Legitimate look-alikes and how the evidence treats them
    A university class signs up together, from one campus NAT, on one university domain; a
    company's employees share an egress, a card and a domain. Strangers sharing nothing but
    infrastructure are a farm; members of one institution arriving together are not. So the
    prefix, payment and client velocities count only *unrelated* sign-ups: when the
    applicant's e-mail domain is institutional (academic or corporate), the sign-ups on the
    same key *with the same domain* are left out. That exemption is what a farm with its own
    custom domain would exploit, which ``velocity_domain`` watches (corporate domains only:
    academic domains are hard to obtain and legitimately arrive in cohorts at term start;
    free-mail is shared by the world). Popular clients (a browser build, an SDK release) are
    used by everyone: ``velocity_client`` compares the window against the fingerprint's own
    usual rate (``baseline_hours``), so only a burst of a rare tool fires.

Steps
    Per pathway, ascending ``min_risk`` thresholds each naming a step, in the order of
    :data:`STEPS`; the step required is that of the highest threshold the risk reaches, raised
    to any ``min_step`` floor of fired evidence (``restricted_declared`` → ``deny``, free-mail
    on an academic pathway → ``institutional_proof``). A proof the applicant already presented
    (``org_evidence``: ``email_verified``, ``domain_verified``, ``institution_confirmed``,
    ``payment_verified``, ``contract``) satisfies the step it covers (policy ``satisfied_by``);
    ``manual_review`` and ``deny`` are never satisfied by a proof.

Default numbers and why (``default_verify_policy.yaml`` repeats each argument beside it)
    They are beliefs about real base rates and costs, set before measuring and not fitted to
    the simulator (docs/verify.md shows what moves when they are wrong).

    * Priors: 5 % of sign-ups on the education, research and startup programs are farmed (the
      seed names them as the most abused), 2 % on self-serve, 0.5 % on enterprise and reseller
      (a sales contact and a contract come with them).
    * LRs, as ``P(evidence | fraud) / P(evidence | legitimate)``: a disposable mailbox 50 (well
      under 1 % of genuine applicants, a quarter or more of farmed ones); a restricted sign-up
      country 30 (travellers are rare, it is where the seed's operators were); Tor 10; a
      datacenter 5 (cloud desktops and CI are the genuine exceptions); a VPN 2 (10 %+ of
      genuine users); a country mismatch 3 (travel and expatriates: 5-10 % of genuine users);
      an unexpected e-mail class 4 (a fifth of students use a personal address; startups 2);
      an institution abroad 3; the third account on a card within 30 days 10; a fourth
      unrelated sign-up from one /24 within a week 5; a client or corporate-domain burst 2
      (popular software and team onboardings look the same); a confirmed campaign's card
      200, its client or /24 20; a peer's report 50.
    * Thresholds ``c / (c + b)`` from each step's cost ``c`` to a genuine applicant against its
      benefit ``b`` against a farm: e-mail proof and a card check 1:9 -> 0.10, an institutional
      document 1:3 -> 0.25, manual review 1:1 -> 0.50, deny 9:1 -> 0.90 (a wrongly refused
      customer is lost: deny only when nine to one sure).

Determinism and state
    Only the velocity state changes, in :meth:`Verifier.learn_one`, and only from the
    request's own ``ts`` (no wall clock, no randomness): replaying the same requests in the
    same order gives the same results. The state is :class:`~distillshield.features.online.
    WindowedCount` rings per key, so the state of several workers merges (:meth:`Verifier.merge`)
    and serialises (:meth:`VelocityState.to_dict`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distillshield._pydantic_errors import format_validation_error
from distillshield._yaml import read_yaml_mapping
from distillshield.enrich.account import EmailClassifier, normalise_domain
from distillshield.enrich.ip import InfraLists, IpEnricher
from distillshield.errors import DistillShieldError
from distillshield.features.online import WindowedCount
from distillshield.gateway.verdicts import VerdictSet
from distillshield.schema import PATHWAYS

__all__ = [
    "DEFAULT_VERIFY_POLICY",
    "PAYMENT_HASH_SCHEME",
    "PEER_KINDS",
    "PROOFS",
    "REQUEST_KINDS",
    "STEPS",
    "VELOCITY_KINDS",
    "IpLookup",
    "PeerIndicators",
    "RequestError",
    "SignupRequest",
    "StaticPeerIndicators",
    "VelocityState",
    "Verifier",
    "VerifyPolicy",
    "VerifyPolicyError",
    "VerifyResult",
    "load_verify_policy",
    "payment_hash",
    "verify_json",
]

#: Verification steps, weakest first (a policy's thresholds must follow this order).
STEPS: tuple[str, ...] = (
    "none",
    "email_domain_proof",
    "institutional_proof",
    "payment_verification",
    "manual_review",
    "deny",
)
_STEP_RANK = {s: i for i, s in enumerate(STEPS)}

#: Proofs an applicant may already have presented (``org_evidence``).
PROOFS: tuple[str, ...] = (
    "email_verified",
    "domain_verified",
    "institution_confirmed",
    "payment_verified",
    "contract",
)

#: ``signup`` (a new account) or ``upgrade`` (an existing account moving to ``pathway``).
REQUEST_KINDS: tuple[str, ...] = ("signup", "upgrade")

#: Kinds a :class:`PeerIndicators` source is asked about.
PEER_KINDS: tuple[str, ...] = ("payment_hash", "ip", "prefix", "client", "email_domain")

#: Keys the velocity state counts sign-ups on.
VELOCITY_KINDS: tuple[str, ...] = ("prefix", "payment", "client", "domain")

#: Verdict-set indicator kinds checked at sign-up (the rest, template and meta, need traffic).
_LINK_KINDS: tuple[str, ...] = ("payment", "client", "prefix")

_INSTITUTIONAL = frozenset({"academic", "corporate"})
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_DOMAIN_RE = re.compile(r"^(?=.{3,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_CC_ALIASES = {"UK": "GB"}

Step = Literal[
    "none", "email_domain_proof", "institutional_proof", "payment_verification", "manual_review", "deny"
]
Proof = Literal["email_verified", "domain_verified", "institution_confirmed", "payment_verified", "contract"]
EmailClass = Literal["disposable", "academic", "free-mail", "corporate"]


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
class VerifyPolicyError(DistillShieldError):
    """A verification policy that cannot be used, with the file and the part concerned."""


class RequestError(DistillShieldError):
    """A sign-up request that cannot be assessed; :attr:`field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------------------
# the request
# ---------------------------------------------------------------------------------------------
def _parse_ts(value: Any) -> float:
    if isinstance(value, bool):
        raise RequestError("ts", "must be epoch seconds or an ISO 8601 time, not a boolean")
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise RequestError("ts", "a datetime needs a time zone")
        ts = value.timestamp()
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RequestError("ts", f"not an ISO 8601 time: {value!r}") from exc
        if parsed.tzinfo is None:
            raise RequestError("ts", f"an ISO 8601 time needs a UTC offset (e.g. 'Z'): {value!r}")
        ts = parsed.timestamp()
    else:
        raise RequestError("ts", f"must be epoch seconds or an ISO 8601 time, got {type(value).__name__}")
    if not math.isfinite(ts):
        raise RequestError("ts", "must be finite")
    return ts


def _opt_str(data: Mapping[str, Any], key: str, max_len: int = 512) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(key, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if len(value) > max_len:
        raise RequestError(key, f"longer than {max_len} characters")
    return value or None


def _country(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if not _COUNTRY_RE.match(code):
        raise RequestError(key, f"must be an ISO 3166 alpha-2 code, got {value!r}")
    return code


@dataclass(frozen=True, slots=True)
class SignupRequest:
    """One sign-up (or upgrade) to assess. Build from JSON-like data with :meth:`from_mapping`.

    ``ts`` is epoch seconds (the request's own time: the velocity windows read nothing else);
    ``email_domain`` is the lower-case domain of the applicant's address (the local part is
    never kept); ``client_fingerprint`` is ``"<user agent> | <TLS fingerprint>"`` as the gateway
    keys its ``client`` indicator; ``payment_fingerprint`` is the payment processor's stable
    fingerprint of the instrument (never a card number).
    """

    pathway: str
    email_domain: str
    ip: str
    ts: float
    kind: str = "signup"
    account_id: str | None = None
    declared_country: str | None = None
    payment_fingerprint: str | None = None
    client_fingerprint: str | None = None
    org_evidence: tuple[str, ...] = ()

    #: Fields :meth:`from_mapping` accepts (``email`` is an alternative to ``email_domain``).
    FIELDS = (
        "kind",
        "account_id",
        "pathway",
        "email",
        "email_domain",
        "ip",
        "declared_country",
        "payment_fingerprint",
        "client_fingerprint",
        "org_evidence",
        "ts",
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SignupRequest:
        """Validate ``data``; a :class:`RequestError` names the first offending field."""
        if not isinstance(data, Mapping):
            raise RequestError("body", "a sign-up request is a JSON object")
        unknown = sorted(set(data) - set(cls.FIELDS))
        if unknown:
            raise RequestError(unknown[0], f"unknown field (known: {', '.join(cls.FIELDS)})")
        kind = _opt_str(data, "kind") or "signup"
        if kind not in REQUEST_KINDS:
            raise RequestError("kind", f"must be one of {', '.join(REQUEST_KINDS)}, got {kind!r}")
        account_id = _opt_str(data, "account_id", 128)
        if kind == "upgrade" and account_id is None:
            raise RequestError("account_id", "an upgrade names the account being upgraded")
        pathway = _opt_str(data, "pathway", 64)
        if pathway is None:
            raise RequestError("pathway", "required")
        if pathway not in PATHWAYS:
            raise RequestError("pathway", f"must be one of {', '.join(PATHWAYS)}, got {pathway!r}")
        email, domain_in = _opt_str(data, "email", 320), _opt_str(data, "email_domain", 253)
        if email is None and domain_in is None:
            raise RequestError("email", "required (or email_domain)")
        if email is not None:
            local, at, host = email.rpartition("@")
            if not at or not local or not host:
                raise RequestError("email", "not an e-mail address")
            domain = normalise_domain(host)
            if domain_in is not None and normalise_domain(domain_in) != domain:
                raise RequestError("email_domain", "differs from the domain of email")
            where = "email"
        else:
            domain, where = normalise_domain(domain_in), "email_domain"
        if domain is None or not _DOMAIN_RE.match(domain):
            raise RequestError(where, f"not a valid e-mail domain: {domain!r}")
        ip = _opt_str(data, "ip", 64)
        if ip is None:
            raise RequestError("ip", "required")
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError as exc:
            raise RequestError("ip", f"not an IP address: {ip!r}") from exc
        if "ts" not in data or data["ts"] is None:
            raise RequestError("ts", "required (epoch seconds or ISO 8601)")
        ts = _parse_ts(data["ts"])
        proofs_raw = data.get("org_evidence")
        proofs: tuple[str, ...] = ()
        if proofs_raw is not None:
            if isinstance(proofs_raw, str) or not isinstance(proofs_raw, Iterable):
                raise RequestError("org_evidence", f"must be a list of proofs ({', '.join(PROOFS)})")
            items = list(proofs_raw)
            bad = [p for p in items if p not in PROOFS]
            if bad:
                raise RequestError("org_evidence", f"unknown proof {bad[0]!r} (known: {', '.join(PROOFS)})")
            proofs = tuple(sorted(set(items)))
        return cls(
            pathway=pathway,
            email_domain=domain,
            ip=ip,
            ts=ts,
            kind=kind,
            account_id=account_id,
            declared_country=_country(_opt_str(data, "declared_country", 8), "declared_country"),
            payment_fingerprint=_opt_str(data, "payment_fingerprint", 256),
            client_fingerprint=_opt_str(data, "client_fingerprint", 1024),
            org_evidence=proofs,
        )

    def to_dict(self) -> dict[str, Any]:
        """The request as :meth:`from_mapping` reads it back."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "pathway": self.pathway,
            "email_domain": self.email_domain,
            "ip": self.ip,
            "ts": self.ts,
        }
        for key in ("account_id", "declared_country", "payment_fingerprint", "client_fingerprint"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.org_evidence:
            out["org_evidence"] = list(self.org_evidence)
        return out


# ---------------------------------------------------------------------------------------------
# peers
# ---------------------------------------------------------------------------------------------
class PeerIndicators(Protocol):
    """Indicators imported from peers (``distillshield.intel`` provides the real one).

    ``match(kind, value)`` returns a label for the report (campaign or source name) when a
    peer reported ``value`` under ``kind`` (:data:`PEER_KINDS`), else ``None``. Payment
    fingerprints are exchanged only as keyed hashes (:func:`payment_hash`), never in clear.
    """

    def match(self, kind: str, value: str) -> str | None: ...


#: The keyed-hash scheme peers share (docs/intel.md, "Keyed hashing"): the same bytes as
#: ``distillshield.intel``'s ``keyed_hash(key, "payment", fingerprint)``.
PAYMENT_HASH_SCHEME = "distillshield-hmac-sha256-v1"
_MIN_KEY_BYTES = 16


def payment_hash(fingerprint: str, key: bytes) -> str:
    """The keyed hash peers exchange instead of a payment fingerprint (hex).

    ``HMAC-SHA256(key, "distillshield-hmac-sha256-v1" 0x1f "payment" 0x1f fingerprint)``,
    the fingerprint trimmed and lower-cased: the scheme of ``distillshield.intel``, so a hash
    computed here matches one a peer published. Without the sharing community's ``key`` (at
    least 16 bytes) a hash cannot be tested against guessed fingerprints.
    """
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the community key has {len(key)} bytes; at least {_MIN_KEY_BYTES} are needed")
    msg = "\x1f".join((PAYMENT_HASH_SCHEME, "payment", fingerprint.strip().lower())).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class StaticPeerIndicators:
    """An in-memory :class:`PeerIndicators`: ``{(kind, value): label}``."""

    def __init__(self, entries: Mapping[tuple[str, str], str] | None = None) -> None:
        self._entries: dict[tuple[str, str], str] = {}
        for (kind, value), label in (entries or {}).items():
            self.add(kind, value, label)

    def add(self, kind: str, value: str, label: str) -> None:
        if kind not in PEER_KINDS:
            raise ValueError(f"unknown peer indicator kind {kind!r} (known: {', '.join(PEER_KINDS)})")
        key = value.lower() if kind == "email_domain" else value
        self._entries[(kind, key)] = label

    def match(self, kind: str, value: str) -> str | None:
        return self._entries.get((kind, value.lower() if kind == "email_domain" else value))

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Evidence(_Strict):
    """One piece of evidence: its likelihood ratio and an optional step floor."""

    lr: float = Field(gt=0)
    min_step: Step | None = None
    why: str = ""


class _Velocity(_Evidence):
    """A velocity evidence: fires at ``min_count`` unrelated earlier sign-ups in the window
    and, with a baseline, at ``burst_ratio`` times the key's own usual rate."""

    window_hours: float = Field(gt=0, le=24 * 366)
    min_count: int = Field(ge=1)
    baseline_hours: float = Field(default=0.0, ge=0, le=24 * 366)
    burst_ratio: float = Field(default=1.0, ge=1)


class _PerKind(_Strict):
    """Evidence with one likelihood ratio per kind (subclasses type ``lr``'s keys)."""

    lr: dict[str, float]
    why: str = ""

    @field_validator("lr")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x <= 0 for x in v.values()):
            raise ValueError("likelihood ratios must be > 0")
        return v


class _Campaign(_PerKind):
    lr: dict[Literal["payment", "client", "prefix"], float]  # type: ignore[assignment]
    min_step: Step | None = None


class _Peer(_PerKind):
    """Peers' reports, one likelihood ratio per kind asked (:data:`PEER_KINDS`)."""

    lr: dict[Literal["payment_hash", "ip", "prefix", "client", "email_domain"], float]  # type: ignore[assignment]
    min_step: Step | None = None


class _Verdict(_PerKind):
    lr: dict[Literal["campaign", "block", "flagged", "suspect", "allow"], float]  # type: ignore[assignment]
    min_step: dict[Literal["campaign", "block", "flagged", "suspect", "allow"], Step] = {}


class _EvidenceSet(_Strict):
    email_disposable: _Evidence
    email_unexpected_class: _Evidence
    institution_country: _Evidence
    restricted_declared: _Evidence
    restricted_signup: _Evidence
    country_mismatch: _Evidence
    network_tor: _Evidence
    network_hosting: _Evidence
    network_vpn: _Evidence
    velocity_prefix: _Velocity
    velocity_payment: _Velocity
    velocity_client: _Velocity
    velocity_domain: _Velocity
    campaign_link: _Campaign
    peer_indicator: _Peer
    account_verdict: _Verdict


class _Threshold(_Strict):
    min_risk: float = Field(gt=0, le=1)
    step: Step

    @field_validator("step")
    @classmethod
    def _not_none(cls, v: str) -> str:
        if v == "none":
            raise ValueError("a threshold names a step other than 'none'")
        return v


class _Pathway(_Strict):
    prior: float = Field(gt=0, lt=1)
    expected_email: list[EmailClass] | None = None
    unexpected_email_lr: float | None = Field(default=None, gt=0)
    unexpected_email_min_step: Step | None = None
    steps: list[_Threshold]
    why: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> _Pathway:
        for a, b in zip(self.steps, self.steps[1:], strict=False):
            if not b.min_risk > a.min_risk:
                raise ValueError(f"steps: min_risk must increase ({a.min_risk} then {b.min_risk})")
            if not _STEP_RANK[b.step] > _STEP_RANK[a.step]:
                raise ValueError(f"steps: {b.step} after {a.step} goes against the order {STEPS}")
        return self


class _Example(_Strict):
    name: str
    request: dict[str, Any]
    #: What the address is, so the example tests the policy, not the geo database's version.
    network: dict[Literal["country", "hosting", "vpn", "tor"], Any] = {}
    step: Step


class _PolicyModel(_Strict):
    version: Literal[1]
    restricted_countries: list[str]
    evidence: _EvidenceSet
    pathways: dict[str, _Pathway]
    satisfied_by: dict[Step, list[Proof]] = {}
    examples: list[_Example] = []

    @field_validator("restricted_countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        out = [c.strip().upper() for c in v]
        bad = [c for c in out if not _COUNTRY_RE.match(c)]
        if bad:
            raise ValueError(f"not ISO 3166 alpha-2 codes: {bad}")
        return sorted(set(out))

    @field_validator("pathways")
    @classmethod
    def _known(cls, v: dict[str, _Pathway]) -> dict[str, _Pathway]:
        unknown = sorted(set(v) - set(PATHWAYS))
        if unknown:
            raise ValueError(f"unknown pathway(s) {unknown} (known: {', '.join(PATHWAYS)})")
        if not v:
            raise ValueError("at least one pathway")
        return v

    @field_validator("satisfied_by")
    @classmethod
    def _satisfiable(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted(set(v) & {"none", "manual_review", "deny"})
        if bad:
            raise ValueError(f"{bad}: only a verification step can be satisfied by a proof")
        return v


@dataclass(frozen=True)
class VerifyPolicy:
    """A validated verification policy. Build with :func:`load_verify_policy` or
    :meth:`from_mapping`; the examples are checked when it is built."""

    model: _PolicyModel
    source: str = "<memory>"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<memory>") -> VerifyPolicy:
        try:
            model = _PolicyModel.model_validate(dict(data))
        except ValidationError as exc:
            raise VerifyPolicyError(format_validation_error(exc, source, "verification policy")) from exc
        policy = cls(model, source)
        policy._check_examples()
        return policy

    @classmethod
    def default(cls) -> VerifyPolicy:
        return load_verify_policy(DEFAULT_VERIFY_POLICY)

    @property
    def restricted(self) -> frozenset[str]:
        return frozenset(self.model.restricted_countries)

    @property
    def evidence(self) -> _EvidenceSet:
        return self.model.evidence

    @property
    def pathways(self) -> tuple[str, ...]:
        return tuple(self.model.pathways)

    def pathway(self, name: str) -> _Pathway:
        try:
            return self.model.pathways[name]
        except KeyError:
            raise RequestError(
                "pathway", f"{name!r} is not offered by the policy (offered: {', '.join(self.pathways)})"
            ) from None

    def velocity(self, kind: str) -> _Velocity:
        v: _Velocity = getattr(self.model.evidence, f"velocity_{kind}")
        return v

    def step_for(self, pathway: str, risk: float) -> str:
        """The threshold step the risk reaches on ``pathway`` (``none`` below the first)."""
        step = "none"
        for t in self.pathway(pathway).steps:
            if risk >= t.min_risk:
                step = t.step
        return step

    def _check_examples(self) -> None:
        for i, ex in enumerate(self.model.examples):
            where = f"{self.source}: example {i} ({ex.name!r})"
            try:
                req = SignupRequest.from_mapping(ex.request)
            except RequestError as exc:
                raise VerifyPolicyError(f"{where}: bad request: {exc}") from exc
            verifier = Verifier(self, infra=_StaticLookup({str(k): v for k, v in ex.network.items()}))
            try:
                got = verifier.assess(req)
            except RequestError as exc:
                raise VerifyPolicyError(f"{where}: {exc}") from exc
            if got.step != ex.step:
                raise VerifyPolicyError(
                    f"{where}: expected step {ex.step!r}, the policy gives {got.step!r} "
                    f"(risk {got.risk:.3f}; {'; '.join(got.reasons) or 'no evidence'})"
                )


def load_verify_policy(path: str | Path) -> VerifyPolicy:
    """Read and validate a verification policy (YAML); errors name the file and the part."""
    data = read_yaml_mapping(
        path,
        VerifyPolicyError,
        "verification policy",
        "a verification policy is a mapping (version, evidence, pathways)",
    )
    return VerifyPolicy.from_mapping(data, str(Path(path)))


#: The policy used when none is given.
DEFAULT_VERIFY_POLICY = Path(__file__).with_name("default_verify_policy.yaml")


# ---------------------------------------------------------------------------------------------
# velocity state
# ---------------------------------------------------------------------------------------------
#: Buckets per window: a window is counted to within 1/48 of its length.
_BUCKETS = 48


def _ring(hours: float) -> WindowedCount:
    return WindowedCount(hours * 3600.0 / _BUCKETS, _BUCKETS)


@dataclass
class _KeyState:
    short: WindowedCount
    long: WindowedCount | None  # window + baseline, when the kind has a baseline
    by_domain: dict[str, WindowedCount] = field(default_factory=dict)


class VelocityState:
    """Sign-ups per key (/24 prefix, payment, client, e-mail domain) in sliding windows.

    Per key a :class:`~distillshield.features.online.WindowedCount` over the kind's window
    (plus one over window + baseline when the kind has a baseline) and, for the
    institutional exemption, per (key, institutional domain) a count over the window.
    ``windows`` is the whole configuration: ``{kind: (window_hours, baseline_hours)}``;
    two states merge only when it is equal. Merging is key-wise ``WindowedCount.merge``, so
    it is associative and commutative and a split stream merges to the one-pass state.
    """

    def __init__(self, windows: Mapping[str, tuple[float, float]]) -> None:
        unknown = set(windows) - set(VELOCITY_KINDS)
        if unknown:
            raise ValueError(f"unknown velocity kind(s) {sorted(unknown)}")
        self.windows = {k: (float(w), float(b)) for k, (w, b) in sorted(windows.items())}
        self.keys: dict[str, dict[str, _KeyState]] = {k: {} for k in self.windows}
        self.updates = 0

    @classmethod
    def for_policy(cls, policy: VerifyPolicy) -> VelocityState:
        return cls(
            {k: (policy.velocity(k).window_hours, policy.velocity(k).baseline_hours) for k in VELOCITY_KINDS}
        )

    def _new(self, kind: str) -> _KeyState:
        w, b = self.windows[kind]
        return _KeyState(_ring(w), _ring(w + b) if b > 0 else None)

    def update(self, kind: str, key: str, ts: float, domain: str | None = None) -> None:
        """Count one sign-up on ``key`` at ``ts``; ``domain`` is the applicant's institutional
        e-mail domain (None for free-mail and disposable addresses)."""
        st = self.keys[kind].get(key)
        if st is None:
            st = self.keys[kind][key] = self._new(kind)
        st.short.update(ts)
        if st.long is not None:
            st.long.update(ts)
        if domain is not None:
            ring = st.by_domain.get(domain)
            if ring is None:
                ring = st.by_domain[domain] = _ring(self.windows[kind][0])
            ring.update(ts)
        self.updates += 1

    def counts(self, kind: str, key: str, now: float, domain: str | None = None) -> tuple[int, int, float]:
        """``(in window, of them with the same institutional domain, usual count per window)``.

        The usual count is the key's rate over the baseline (the ``baseline_hours`` before the
        window) scaled to the window's length; 0 without a baseline.
        """
        st = self.keys[kind].get(key)
        if st is None:
            return 0, 0, 0.0
        n = st.short.get(now)
        same = 0
        if domain is not None and domain in st.by_domain:
            same = st.by_domain[domain].get(now)
        usual = 0.0
        w, b = self.windows[kind]
        if st.long is not None and b > 0:
            usual = max(st.long.get(now) - n, 0) * w / b
        return n, same, usual

    def prune(self, now: float) -> int:
        """Drop keys with nothing left in their windows at ``now``; returns how many went."""
        dropped = 0
        for table in self.keys.values():
            for key in list(table):
                st = table[key]
                ring = st.long if st.long is not None else st.short
                if ring.get(now) == 0:
                    del table[key]
                    dropped += 1
                    continue
                for dom in [d for d, r in st.by_domain.items() if r.get(now) == 0]:
                    del st.by_domain[dom]
        return dropped

    def merge(self, other: VelocityState) -> None:
        if other.windows != self.windows:
            raise ValueError(
                f"cannot merge velocity states of different windows: {self.windows} vs {other.windows}"
            )
        for kind, table in other.keys.items():
            mine = self.keys[kind]
            for key, st in table.items():
                cur = mine.get(key)
                if cur is None:
                    cur = mine[key] = self._new(kind)
                cur.short.merge(st.short)
                if cur.long is not None and st.long is not None:
                    cur.long.merge(st.long)
                for dom, ring in st.by_domain.items():
                    if dom in cur.by_domain:
                        cur.by_domain[dom].merge(ring)
                    else:
                        cur.by_domain[dom] = ring.copy()
        self.updates += other.updates

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (sorted, so equal states serialise identically)."""
        keys: dict[str, Any] = {}
        for kind, table in self.keys.items():
            keys[kind] = {
                key: {
                    "s": st.short.to_dict(),
                    **({"l": st.long.to_dict()} if st.long is not None else {}),
                    **(
                        {"d": {d: r.to_dict() for d, r in sorted(st.by_domain.items())}}
                        if st.by_domain
                        else {}
                    ),
                }
                for key, st in sorted(table.items())
            }
        return {
            "v": 1,
            "windows": {k: list(v) for k, v in self.windows.items()},
            "keys": keys,
            "n": self.updates,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VelocityState:
        if d.get("v") != 1:
            raise ValueError(f"unknown velocity state version {d.get('v')!r}")
        out = cls({k: (float(v[0]), float(v[1])) for k, v in d["windows"].items()})
        for kind, table in d["keys"].items():
            for key, st in table.items():
                out.keys[kind][key] = _KeyState(
                    WindowedCount.from_dict(st["s"]),
                    WindowedCount.from_dict(st["l"]) if "l" in st else None,
                    {dom: WindowedCount.from_dict(r) for dom, r in st.get("d", {}).items()},
                )
        out.updates = int(d.get("n", 0))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VelocityState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable


# ---------------------------------------------------------------------------------------------
# the verifier
# ---------------------------------------------------------------------------------------------
class IpLookup(Protocol):
    """What the verifier needs to know about an address (an :class:`IpEnricher` is one):
    ``ip_country``, ``ip_prefix``, ``asn_name``, ``is_hosting``, ``is_vpn``, ``is_tor``."""

    def lookup(self, ip: str) -> Mapping[str, Any]: ...


class _StaticLookup:
    """Fixed facts for every address (policy examples): the prefix is still computed."""

    def __init__(self, network: Mapping[str, Any]) -> None:
        self.network = dict(network)

    def lookup(self, ip: str) -> Mapping[str, Any]:
        return {
            "ip_country": self.network.get("country"),
            "ip_prefix": _prefix(ip),
            "asn_name": None,
            "is_hosting": bool(self.network.get("hosting", False)),
            "is_vpn": bool(self.network.get("vpn", False)),
            "is_tor": bool(self.network.get("tor", False)),
        }


def _prefix(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _institution_country(domain: str) -> str | None:
    """The country of an academic domain: ``.edu`` is the US, else its country-code TLD."""
    tld = domain.rsplit(".", 1)[-1].upper()
    if tld == "EDU":
        return "US"
    tld = _CC_ALIASES.get(tld, tld)
    return tld if len(tld) == 2 and tld.isalpha() else None


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`Verifier.assess` answers.

    ``risk``: posterior probability of fraud; ``reasons``: the fired evidence, strongest
    first, each ``name[value] xLR`` (and ``floor:``/``satisfied:`` notes for the step);
    ``step``: the verification step to require; ``evidence``: every fact read (also those that
    did not fire), for the audit log and the velocity update.
    """

    risk: float
    reasons: tuple[str, ...]
    step: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "risk": round(self.risk, 6),
            "step": self.step,
            "reasons": list(self.reasons),
            "evidence": self.evidence,
        }


_NETWORK_ORDER = (("tor", "network_tor"), ("hosting", "network_hosting"), ("vpn", "network_vpn"))


class Verifier:
    """Assesses sign-up requests under a :class:`VerifyPolicy` (see the module docstring).

    ``verdicts``: batch detection's :class:`~distillshield.gateway.verdicts.VerdictSet` (campaign
    indicators and account verdicts); ``peers``: indicators imported from peers, with
    ``peer_key`` the sharing group's key for payment hashes (without it payment hashes are not
    checked); ``infra``: an :class:`~distillshield.enrich.IpEnricher`, the
    :class:`~distillshield.enrich.InfraLists` to build one from, or any :class:`IpLookup`;
    ``email``: the :class:`~distillshield.enrich.EmailClassifier`.

    :meth:`assess` is pure given the state; :meth:`learn_one` updates the velocity state;
    :meth:`verify` does both under a lock (what a server calls).
    """

    #: Addresses whose facts are cached (a few MB at most).
    CACHE_SIZE = 65_536
    #: Velocity keys with empty windows are dropped every this many learned sign-ups.
    PRUNE_EVERY = 4_096

    def __init__(
        self,
        policy: VerifyPolicy | None = None,
        *,
        verdicts: VerdictSet | None = None,
        peers: PeerIndicators | None = None,
        infra: IpEnricher | InfraLists | IpLookup | None = None,
        email: EmailClassifier | None = None,
        peer_key: bytes | None = None,
        state: VelocityState | None = None,
    ) -> None:
        self.policy = policy if policy is not None else VerifyPolicy.default()
        self.verdicts = verdicts
        self.peers = peers
        if peer_key is not None:
            payment_hash("", peer_key)  # refuse a short key now, not on the first paying sign-up
        self.peer_key = peer_key
        if isinstance(infra, InfraLists):
            infra = IpEnricher(infra)
        self._infra: IpLookup | None = infra
        self.email = email if email is not None else EmailClassifier()
        self.state = state if state is not None else VelocityState.for_policy(self.policy)
        if self.state.windows != VelocityState.for_policy(self.policy).windows:
            raise ValueError("the velocity state was built for other windows than the policy's")
        self._cache: dict[str, Mapping[str, Any]] = {}
        self._learned = 0
        self._lock = threading.Lock()

    # ---- addresses -------------------------------------------------------------------------
    @property
    def infra(self) -> IpLookup:
        if self._infra is None:
            self._infra = IpEnricher()
        return self._infra

    def prime(self, ips: Iterable[str]) -> None:
        """Look many addresses up at once (one vectorised batch when ``infra`` is an
        :class:`IpEnricher`): what a replay does before assessing."""
        todo = sorted({ip for ip in ips if ip not in self._cache})
        if not todo:
            return
        infra = self.infra
        if isinstance(infra, IpEnricher):
            for ip, row in zip(todo, infra.enrich(todo).to_pylist(), strict=True):
                self._cache[ip] = row
        else:
            for ip in todo:
                self._cache[ip] = dict(infra.lookup(ip))

    def _ip(self, ip: str) -> Mapping[str, Any]:
        facts = self._cache.get(ip)
        if facts is None:
            facts = dict(self.infra.lookup(ip))
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[ip] = facts
        return facts

    # ---- assessment ------------------------------------------------------------------------
    def assess(self, req: SignupRequest) -> VerifyResult:
        """The risk, reasons and step for ``req`` given what was learned so far (no update)."""
        pol = self.policy
        path = pol.pathway(req.pathway)
        ev = pol.evidence
        fired: list[tuple[str, str, float, str | None]] = []  # name, value, lr, min_step
        floor: str | None

        def fire(name: str, value: Any, lr: float, min_step: str | None = None) -> None:
            fired.append((name, str(value), lr, min_step))

        # e-mail
        eclass = self.email.classify(req.email_domain)
        institutional = req.email_domain if eclass in _INSTITUTIONAL else None
        if eclass == "disposable":
            fire("email_disposable", req.email_domain, ev.email_disposable.lr, ev.email_disposable.min_step)
        elif path.expected_email is not None and eclass not in path.expected_email:
            given = path.model_fields_set
            lr = (
                path.unexpected_email_lr
                if path.unexpected_email_lr is not None
                else ev.email_unexpected_class.lr
            )
            floor = (
                path.unexpected_email_min_step
                if "unexpected_email_min_step" in given
                else ev.email_unexpected_class.min_step
            )
            fire("email_unexpected_class", f"{eclass} on {req.pathway}", lr, floor)

        # address
        net = self._ip(req.ip)
        ip_country = net.get("ip_country")
        prefix = net.get("ip_prefix") or _prefix(req.ip)
        flags = {
            "tor": bool(net.get("is_tor")),
            "hosting": bool(net.get("is_hosting")),
            "vpn": bool(net.get("is_vpn")),
        }
        network = next((kind for kind, _ in _NETWORK_ORDER if flags[kind]), None)
        if network is not None:
            e = getattr(ev, f"network_{network}")
            fire(f"network_{network}", net.get("asn_name") or ip_country or "?", e.lr, e.min_step)

        declared = req.declared_country
        restricted = pol.restricted
        if declared is not None and declared in restricted:
            e = ev.restricted_declared
            fire("restricted_declared", declared, e.lr, e.min_step)
        if ip_country is not None and ip_country in restricted:
            e = ev.restricted_signup
            fire("restricted_signup", ip_country, e.lr, e.min_step)
        elif network is None and declared is not None and ip_country is not None and declared != ip_country:
            e = ev.country_mismatch
            fire("country_mismatch", f"{declared}->{ip_country}", e.lr, e.min_step)
        inst_country = _institution_country(req.email_domain) if eclass == "academic" else None
        if inst_country is not None:
            seen = {c for c in (declared, None if network else ip_country) if c is not None}
            if seen and inst_country not in seen:
                e = ev.institution_country
                fire("institution_country", f"{inst_country} vs {'/'.join(sorted(seen))}", e.lr, e.min_step)

        # velocity (unrelated earlier sign-ups on the same key)
        keys = self._velocity_keys(req, prefix, eclass)
        velocity: dict[str, Any] = {}
        for kind, key in keys.items():
            cfg = pol.velocity(kind)
            n, same, usual = self.state.counts(kind, key, req.ts, institutional if kind != "domain" else None)
            crowd = n - same
            velocity[kind] = {"count": n, "same_institution": same, "usual": round(usual, 3)}
            if crowd >= cfg.min_count and crowd >= cfg.burst_ratio * usual:
                detail = f"{crowd} in {cfg.window_hours:g}h" + (f", usual {usual:.1f}" if usual else "")
                fire(f"velocity_{kind}", detail, cfg.lr, cfg.min_step)

        # links to known campaigns (batch detection)
        links: list[tuple[float, str, str]] = []
        if self.verdicts is not None:
            values = {"payment": req.payment_fingerprint, "client": req.client_fingerprint, "prefix": prefix}
            for kind in _LINK_KINDS:
                lr_k = ev.campaign_link.lr.get(kind)  # type: ignore[call-overload]
                ind = self.verdicts.link(kind, values[kind])
                if ind is not None and lr_k is not None:
                    links.append((lr_k, kind, ind.campaign_id))
        if links:
            lr, kind, cid = max(links)
            fire("campaign_link", f"{cid} by {kind}", lr, ev.campaign_link.min_step)

        # peers
        peer_hits: list[tuple[float, str, str]] = []
        if self.peers is not None:
            asks: list[tuple[str, str | None]] = [
                ("ip", req.ip),
                ("prefix", prefix),
                ("client", req.client_fingerprint),
                ("email_domain", req.email_domain if eclass not in ("free-mail", None) else None),
            ]
            if self.peer_key is not None and req.payment_fingerprint is not None:
                asks.insert(0, ("payment_hash", payment_hash(req.payment_fingerprint, self.peer_key)))
            for kind, value in asks:
                lr_p = ev.peer_indicator.lr.get(kind)  # type: ignore[call-overload]
                if value is not None and lr_p is not None:
                    label = self.peers.match(kind, value)
                    if label is not None:
                        peer_hits.append((lr_p, kind, label))
        if peer_hits:
            # the strongest report only: several hits are usually one peer campaign seen twice
            lr, kind, label = max(peer_hits)
            fire("peer_indicator", f"{label} by {kind}", lr, ev.peer_indicator.min_step)

        # the account's own verdict (upgrades)
        verdict = None
        if self.verdicts is not None and req.account_id is not None:
            av = self.verdicts.account(req.account_id)
            if av is not None:
                verdict = av.verdict
                lr_v = ev.account_verdict.lr.get(av.verdict)  # type: ignore[call-overload]
                if lr_v is not None:
                    value = f"{av.verdict}" + (f" {av.campaign_id}" if av.campaign_id else "")
                    fire("account_verdict", value, lr_v, ev.account_verdict.min_step.get(av.verdict))  # type: ignore[call-overload]

        # combine
        logit = math.log(path.prior / (1.0 - path.prior)) + sum(math.log(lr) for _, _, lr, _ in fired)
        risk = 1.0 / (1.0 + math.exp(-logit)) if logit > -700 else 0.0
        step = pol.step_for(req.pathway, risk)
        reasons = [
            f"{name}[{value}] x{lr:g}" for name, value, lr, _ in sorted(fired, key=lambda f: (-f[2], f[0]))
        ]
        for name, _, _, floor in fired:
            if floor is not None and _STEP_RANK[floor] > _STEP_RANK[step]:
                step = floor
                reasons.append(f"floor:{floor} by {name}")
        required = step
        satisfied = self._satisfied(step, req.org_evidence)
        if satisfied is not None:
            reasons.append(f"satisfied:{step} by {satisfied}")
            step = "none"
        evidence: dict[str, Any] = {
            "pathway": req.pathway,
            "prior": path.prior,
            "email_class": eclass,
            "ip_country": ip_country,
            "ip_prefix": prefix,
            "asn_name": net.get("asn_name"),
            "network": network,
            "declared_country": declared,
            "institution_country": inst_country,
            "velocity": velocity,
            "campaign_links": [f"{cid} by {kind}" for _, kind, cid in sorted(links, reverse=True)],
            "peer_matches": [f"{label} by {kind}" for _, kind, label in sorted(peer_hits, reverse=True)],
            "account_verdict": verdict,
            "fired": {name: lr for name, _, lr, _ in fired},
            "logit": round(logit, 6),
            "required_step": required,
        }
        return VerifyResult(risk=risk, reasons=tuple(reasons), step=step, evidence=evidence)

    def _satisfied(self, step: str, proofs: tuple[str, ...]) -> str | None:
        accepted = self.policy.model.satisfied_by.get(step)  # type: ignore[call-overload]
        if not accepted:
            return None
        return next((p for p in proofs if p in accepted), None)

    def _velocity_keys(self, req: SignupRequest, prefix: str | None, eclass: str | None) -> dict[str, str]:
        keys: dict[str, str] = {}
        if prefix is not None:
            keys["prefix"] = prefix
        if req.payment_fingerprint is not None:
            keys["payment"] = req.payment_fingerprint
        if req.client_fingerprint is not None:
            keys["client"] = req.client_fingerprint
        if eclass == "corporate":
            keys["domain"] = req.email_domain
        return keys

    # ---- learning --------------------------------------------------------------------------
    def learn_one(self, req: SignupRequest, result: VerifyResult | None = None) -> None:
        """Count ``req`` in the velocity windows (every attempt counts, denied ones too: a
        farm's rejected heads are still its velocity)."""
        if result is not None:
            prefix, eclass = result.evidence.get("ip_prefix"), result.evidence.get("email_class")
        else:
            prefix, eclass = (
                self._ip(req.ip).get("ip_prefix") or _prefix(req.ip),
                self.email.classify(req.email_domain),
            )
        institutional = req.email_domain if eclass in _INSTITUTIONAL else None
        for kind, key in self._velocity_keys(req, prefix, eclass).items():
            self.state.update(kind, key, req.ts, institutional if kind != "domain" else None)
        self._learned += 1
        if self._learned % self.PRUNE_EVERY == 0:
            self.state.prune(req.ts)

    def verify(self, req: SignupRequest, *, learn: bool = True) -> VerifyResult:
        """:meth:`assess` then (unless ``learn`` is false) :meth:`learn_one`, atomically."""
        with self._lock:
            result = self.assess(req)
            if learn:
                self.learn_one(req, result)
            return result

    def merge(self, other: Verifier) -> None:
        """Fold another worker's velocity state into this one."""
        with self._lock:
            self.state.merge(other.state)


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------
def verify_json(
    verifier: Verifier, body: Any, *, now: float | None = None, learn: bool = True
) -> tuple[int, dict[str, Any]]:
    """The admin endpoint's work: ``(HTTP status, JSON body)`` for one request body.

    ``200`` with :meth:`VerifyResult.to_dict` (plus the normalised ``request``); ``400`` with
    ``{"error": ..., "field": ...}`` when the body is not a valid request. ``now`` fills a
    missing ``ts`` (the server's clock, passed in by the caller); ``"dry_run": true`` in the
    body assesses without counting the sign-up in the velocity windows.
    """
    if not isinstance(body, Mapping):
        return 400, {"error": "the body must be a JSON object", "field": "body"}
    data = dict(body)
    dry = data.pop("dry_run", False)
    if not isinstance(dry, bool):
        return 400, {"error": "dry_run: must be true or false", "field": "dry_run"}
    if data.get("ts") is None and now is not None:
        data["ts"] = now
    try:
        req = SignupRequest.from_mapping(data)
        result = verifier.verify(req, learn=learn and not dry)
    except RequestError as exc:
        return 400, {"error": str(exc), "field": exc.field}
    return 200, {**result.to_dict(), "request": req.to_dict()}
