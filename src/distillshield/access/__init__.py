"""Access controls: how much verification a sign-up or upgrade should face (docs/verify.md).

A :class:`Verifier` (policy from :func:`load_verify_policy`, campaign indicators from a
:class:`~distillshield.gateway.verdicts.VerdictSet`, peers' indicators through
:class:`PeerIndicators`) answers a :class:`VerifyResult` (risk, reasons, step) for each
:class:`SignupRequest`; :func:`verify_json` is the HTTP endpoint's body-in, status-and-body-out
function; :func:`evaluate_signups` measures a policy on a labelled account population.
"""

from distillshield.access.evaluate import SignupReport, evaluate_signups, first_clients
from distillshield.access.verify import (
    DEFAULT_VERIFY_POLICY,
    PAYMENT_HASH_SCHEME,
    PEER_KINDS,
    PROOFS,
    REQUEST_KINDS,
    STEPS,
    VELOCITY_KINDS,
    IpLookup,
    PeerIndicators,
    RequestError,
    SignupRequest,
    StaticPeerIndicators,
    VelocityState,
    Verifier,
    VerifyPolicy,
    VerifyPolicyError,
    VerifyResult,
    load_verify_policy,
    payment_hash,
    verify_json,
)

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
    "SignupReport",
    "SignupRequest",
    "StaticPeerIndicators",
    "VelocityState",
    "Verifier",
    "VerifyPolicy",
    "VerifyPolicyError",
    "VerifyResult",
    "evaluate_signups",
    "first_clients",
    "load_verify_policy",
    "payment_hash",
    "verify_json",
]
