"""Sign-up verification risk (distillshield.access): evidence, policy, velocity, HTTP, evaluation."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from distillshield.access import (
    DEFAULT_VERIFY_POLICY,
    STEPS,
    RequestError,
    SignupRequest,
    StaticPeerIndicators,
    VelocityState,
    Verifier,
    VerifyPolicy,
    VerifyPolicyError,
    evaluate_signups,
    load_verify_policy,
    payment_hash,
    verify_json,
)
from distillshield.gateway.verdicts import AccountVerdict, Indicator, VerdictSet

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0
DAY = 86_400.0


class FakeNet:
    """An IpLookup with facts per address (default: a residential address in ``country``)."""

    def __init__(self, facts: Mapping[str, Mapping[str, Any]] | None = None, country: str = "US") -> None:
        self.facts = dict(facts or {})
        self.country = country

    def lookup(self, ip: str) -> Mapping[str, Any]:
        base = {
            "ip_country": self.country,
            "ip_prefix": ".".join(ip.split(".")[:3]) + ".0/24",
            "asn_name": "HOME ISP",
            "is_hosting": False,
            "is_vpn": False,
            "is_tor": False,
        }
        return {**base, **self.facts.get(ip, {})}


@pytest.fixture(scope="module")
def policy() -> VerifyPolicy:
    return VerifyPolicy.default()


@pytest.fixture(scope="module")
def policy_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DEFAULT_VERIFY_POLICY.read_text(encoding="utf-8"))
    return doc


def req(**kw: Any) -> SignupRequest:
    base: dict[str, Any] = {
        "pathway": "self_serve",
        "email": "dev@gmail.com",
        "ip": "198.51.100.7",
        "declared_country": "US",
        "ts": T0,
    }
    base.update(kw)
    return SignupRequest.from_mapping(base)


def verifier(policy: VerifyPolicy, net: FakeNet | None = None, **kw: Any) -> Verifier:
    return Verifier(policy, infra=net or FakeNet(), **kw)


def fired(v: Verifier, r: SignupRequest) -> dict[str, float]:
    out: dict[str, float] = v.assess(r).evidence["fired"]
    return out


# ---------------------------------------------------------------------------------------------
# evidence, one kind at a time
# ---------------------------------------------------------------------------------------------
def test_plain_signup_has_no_evidence_and_prior_risk(policy: VerifyPolicy) -> None:
    res = verifier(policy).assess(req())
    assert res.evidence["fired"] == {}
    assert res.step == "none" and res.reasons == ()
    assert res.risk == pytest.approx(policy.pathway("self_serve").prior)


def test_disposable_email(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    assert "email_disposable" in fired(v, req(email="x@mailinator.com"))
    assert "email_disposable" in fired(v, req(email="x@sub.mailinator.com"))  # subdomains inherit
    assert "email_disposable" not in fired(v, req(email="x@gmail.com"))
    res = v.assess(req(email="x@mailinator.com"))
    assert res.reasons[0] == "email_disposable[mailinator.com] x50"


def test_free_mail_on_academic_pathway(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    res = v.assess(req(pathway="education", email="s@gmail.com"))
    assert "email_unexpected_class" in res.evidence["fired"]
    assert res.step == "institutional_proof"  # a floor: an e-mail proof of gmail proves nothing
    assert any(r.startswith("floor:institutional_proof") for r in res.reasons)
    # the university address is what the pathway expects
    assert fired(v, req(pathway="education", email="s@mit.edu")) == {}
    # free-mail is fine on self-serve, and weak on the startup program (pathway override, no floor)
    assert fired(v, req(email="s@gmail.com")) == {}
    startup = v.assess(req(pathway="startup_program", email="s@gmail.com"))
    assert startup.evidence["fired"] == {"email_unexpected_class": 2.0}
    assert startup.step == "none"


def test_institution_country(policy: VerifyPolicy) -> None:
    v = verifier(policy, FakeNet(country="US"))
    got = v.assess(req(pathway="education", email="s@ox.ac.uk", declared_country="US"))
    assert "institution_country" in got.evidence["fired"]
    assert got.evidence["institution_country"] == "GB"
    assert got.step == "email_domain_proof"
    assert "institution_country" not in fired(v, req(pathway="education", email="s@mit.edu"))  # .edu = US
    gb = verifier(policy, FakeNet(country="GB"))
    assert "institution_country" not in fired(
        gb, req(pathway="education", email="s@ox.ac.uk", declared_country="GB")
    )


def test_restricted_regions(policy: VerifyPolicy) -> None:
    v = verifier(policy, FakeNet(country="KP"))
    res = v.assess(req(declared_country="KP"))
    assert res.step == "deny" and "restricted_declared" in res.evidence["fired"]
    res = v.assess(req(declared_country="US"))
    assert "restricted_signup" in res.evidence["fired"]
    assert "country_mismatch" not in res.evidence["fired"]  # one fact, counted once
    assert res.step == "manual_review"
    assert fired(verifier(policy, FakeNet(country="US")), req()) == {}


def test_restricted_list_is_configurable(policy_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(policy_doc)
    doc["restricted_countries"] = ["FR"]
    doc["examples"] = []
    pol = VerifyPolicy.from_mapping(doc)
    v = verifier(pol, FakeNet(country="FR"))
    assert "restricted_signup" in fired(v, req())
    assert "restricted_signup" not in fired(verifier(pol, FakeNet(country="RU")), req())


def test_country_mismatch(policy: VerifyPolicy) -> None:
    v = verifier(policy, FakeNet(country="FR"))
    res = v.assess(req(declared_country="US"))
    assert res.evidence["fired"] == {"country_mismatch": 3.0}
    assert res.step == "none"  # a traveller on self-serve is not stopped for it alone
    assert fired(v, req(declared_country="FR")) == {}
    assert fired(v, req(declared_country=None)) == {}


def test_network_flags_strongest_counted_once(policy: VerifyPolicy) -> None:
    ip = "203.0.113.9"
    net = FakeNet({ip: {"is_tor": True, "is_hosting": True, "ip_country": "DE"}})
    got = fired(verifier(policy, net), req(ip=ip))
    assert got == {"network_tor": 10.0}  # no hosting on top, and no country mismatch via Tor
    net = FakeNet({ip: {"is_hosting": True, "is_vpn": True}})
    assert fired(verifier(policy, net), req(ip=ip)) == {"network_hosting": 5.0}
    net = FakeNet({ip: {"is_vpn": True}})
    assert fired(verifier(policy, net), req(ip=ip)) == {"network_vpn": 2.0}
    assert fired(verifier(policy, FakeNet()), req(ip=ip)) == {}


def test_real_ip_lookup_flags_a_datacenter(policy: VerifyPolicy) -> None:
    v = Verifier(policy)  # the shipped lists and geoip2fast's tables
    res = v.assess(req(ip="8.8.8.8"))
    assert res.evidence["network"] == "hosting"
    assert res.evidence["ip_prefix"] == "8.8.8.0/24"


# ---------------------------------------------------------------------------------------------
# velocity
# ---------------------------------------------------------------------------------------------
def test_velocity_prefix_counts_unrelated_signups_in_window(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    for i in range(3):
        r = req(email=f"u{i}@gmail.com", ip=f"198.51.100.{10 + i}", ts=T0 + i * HOUR)
        assert "velocity_prefix" not in fired(v, r)
        v.learn_one(r, v.assess(r))
    fourth = req(email="u9@gmail.com", ip="198.51.100.99", ts=T0 + 3 * HOUR)
    res = v.assess(fourth)
    assert "velocity_prefix" in res.evidence["fired"]
    assert res.evidence["velocity"]["prefix"]["count"] == 3
    assert any(r.startswith("velocity_prefix[3 in 168h]") for r in res.reasons)
    # another /24, or the same one after the week has passed: nothing
    assert "velocity_prefix" not in fired(v, req(ip="198.51.101.5", ts=T0 + 4 * HOUR))
    assert "velocity_prefix" not in fired(v, req(ip="198.51.100.5", ts=T0 + 8 * DAY))


def test_velocity_exempts_members_of_one_institution(policy: VerifyPolicy) -> None:
    """A class behind its campus NAT: same academic domain, same /24 — not a crowd."""
    v = verifier(policy, FakeNet(country="GB"))
    for i in range(20):
        r = req(pathway="education", email=f"s{i}@ox.ac.uk", declared_country="GB", ts=T0 + i * 60)
        v.learn_one(r, v.assess(r))
    student = req(pathway="education", email="s99@ox.ac.uk", declared_country="GB", ts=T0 + HOUR)
    res = v.assess(student)
    assert res.evidence["velocity"]["prefix"] == {"count": 20, "same_institution": 20, "usual": 0.0}
    assert res.step == "none"
    # a stranger on free-mail behind the same address is counted against the crowd of 20
    stranger = v.assess(req(pathway="education", email="x@gmail.com", declared_country="GB", ts=T0 + HOUR))
    assert "velocity_prefix" in stranger.evidence["fired"]


def test_velocity_payment_third_account_on_a_card(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    for i in range(2):
        r = req(email=f"p{i}@gmail.com", ip=f"192.0.2.{i}", payment_fingerprint="card-1", ts=T0 + i * DAY)
        assert "velocity_payment" not in fired(v, r)
        v.learn_one(r)
    third = req(email="p3@gmail.com", ip="203.0.113.3", payment_fingerprint="card-1", ts=T0 + 3 * DAY)
    assert "velocity_payment" in fired(v, third)
    assert "velocity_payment" not in fired(v, req(payment_fingerprint="card-2", ts=T0 + 3 * DAY))
    # 30-day window
    assert "velocity_payment" not in fired(v, req(payment_fingerprint="card-1", ts=T0 + 40 * DAY))


def test_company_card_for_company_seats_is_not_velocity(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    for i in range(10):
        r = req(
            pathway="enterprise", email=f"e{i}@acme-corp.com", payment_fingerprint="corp", ts=T0 + i * HOUR
        )
        v.learn_one(r)
    seat = v.assess(
        req(pathway="enterprise", email="new@acme-corp.com", payment_fingerprint="corp", ts=T0 + DAY)
    )
    assert "velocity_payment" not in seat.evidence["fired"]
    other = v.assess(req(email="x@gmail.com", payment_fingerprint="corp", ts=T0 + DAY))
    assert "velocity_payment" in other.evidence["fired"]


def test_velocity_client_needs_a_burst_over_its_usual_rate(policy: VerifyPolicy) -> None:
    tool = "farm-harness/0.1 | tls-abc"
    v = verifier(policy)
    for i in range(5):
        r = req(email=f"c{i}@gmail.com", ip=f"192.0.{i}.1", client_fingerprint=tool, ts=T0 + i * 600)
        v.learn_one(r)
    assert "velocity_client" in fired(v, req(client_fingerprint=tool, ip="192.0.9.9", ts=T0 + HOUR))
    # a popular client: the same day's 5 sign-ups are its usual rate (5 a day for 20 days)
    popular = "browser | tls-common"
    w = verifier(policy)
    for d in range(20):
        for i in range(5):
            w.learn_one(req(email=f"b{d}.{i}@gmail.com", ip=f"10.{d}.{i}.1", client_fingerprint=popular,
                            ts=T0 + d * DAY + i * HOUR))  # fmt: skip
    got = w.assess(req(client_fingerprint=popular, ip="10.99.0.1", ts=T0 + 19 * DAY + 6 * HOUR))
    assert got.evidence["velocity"]["client"]["count"] >= 5
    assert got.evidence["velocity"]["client"]["usual"] > 1
    assert "velocity_client" not in got.evidence["fired"]


def test_velocity_domain_counts_corporate_domains_only(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    for i in range(5):
        v.learn_one(req(email=f"a{i}@newco-farm.io", ip=f"192.0.{i}.2", ts=T0 + i * 60))
        v.learn_one(req(pathway="education", email=f"s{i}@mit.edu", ip=f"192.1.{i}.2", ts=T0 + i * 60))
        v.learn_one(req(email=f"g{i}@gmail.com", ip=f"192.2.{i}.2", ts=T0 + i * 60))
    assert "velocity_domain" in fired(v, req(email="z@newco-farm.io", ip="203.0.113.1", ts=T0 + HOUR))
    assert "velocity_domain" not in fired(
        v, req(pathway="education", email="z@mit.edu", ip="203.0.113.1", ts=T0 + HOUR)
    )
    assert "velocity_domain" not in fired(v, req(email="z@gmail.com", ip="203.0.113.1", ts=T0 + HOUR))


def test_velocity_state_merge_equals_one_pass_and_round_trips(policy: VerifyPolicy) -> None:
    reqs = [
        req(
            email=f"u{i}@{'acme.io' if i % 3 else 'gmail.com'}",
            ip=f"198.51.{i % 4}.{i}",
            payment_fingerprint=f"card-{i % 5}",
            client_fingerprint=f"tool-{i % 2}",
            ts=T0 + i * 1800,
        )
        for i in range(60)
    ]
    one = verifier(policy)
    for r in reqs:
        one.learn_one(r)
    parts = [verifier(policy) for _ in range(3)]
    for i, r in enumerate(reqs):
        parts[(i * 7) % 3].learn_one(r)
    merged = verifier(policy)
    for p in (parts[2], parts[0], parts[1]):
        merged.merge(p)
    assert merged.state == one.state
    probe = req(email="q@gmail.com", ip="198.51.1.200", payment_fingerprint="card-1",
                client_fingerprint="tool-1", ts=T0 + 31 * HOUR)  # fmt: skip
    assert merged.assess(probe) == one.assess(probe)
    again = VelocityState.from_dict(one.state.to_dict())
    assert again == one.state
    with pytest.raises(ValueError, match="different windows"):
        again.merge(VelocityState({"prefix": (1.0, 0.0)}))


def test_velocity_prune_drops_expired_keys(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    v.learn_one(req(payment_fingerprint="card-x", client_fingerprint="t"))
    assert v.state.prune(T0 + HOUR) == 0
    dropped = v.state.prune(T0 + 60 * DAY)
    assert dropped == 3  # prefix, payment, client (gmail has no domain key)
    assert all(not t for t in v.state.keys.values())


def test_learning_prunes_expired_keys_periodically(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    v.PRUNE_EVERY = 2
    v.learn_one(req(payment_fingerprint="old-card"))
    v.learn_one(req(email="n@gmail.com", ip="192.0.2.77", ts=T0 + 90 * DAY))
    assert "old-card" not in v.state.keys["payment"]
    assert list(v.state.keys["prefix"]) == ["192.0.2.0/24"]


def test_determinism_given_request_order(policy: VerifyPolicy) -> None:
    reqs = [
        req(email=f"u{i}@{['gmail.com', 'mailinator.com', 'acme.io'][i % 3]}",
            ip=f"198.51.{i % 2}.{i}", payment_fingerprint=f"card-{i % 4}", ts=T0 + i * 900)
        for i in range(40)
    ]  # fmt: skip
    runs = []
    for _ in range(2):
        v = verifier(policy)
        runs.append([v.verify(r) for r in reqs])
    assert runs[0] == runs[1]
    # assess alone does not change the state
    v = verifier(policy)
    before = v.state.to_dict()
    v.assess(reqs[0])
    assert v.state.to_dict() == before


def test_risk_is_the_documented_log_odds(policy: VerifyPolicy) -> None:
    ip = "203.0.113.50"
    v = verifier(policy, FakeNet({ip: {"is_hosting": True}}))
    res = v.assess(req(pathway="startup_program", email="x@mailinator.com", ip=ip))
    prior = policy.pathway("startup_program").prior
    logit = math.log(prior / (1 - prior)) + sum(math.log(lr) for lr in res.evidence["fired"].values())
    assert res.risk == pytest.approx(1 / (1 + math.exp(-logit)))
    assert res.evidence["fired"] == {"email_disposable": 50.0, "network_hosting": 5.0}
    assert res.step == "deny"


# ---------------------------------------------------------------------------------------------
# campaigns, peers, verdicts, proofs
# ---------------------------------------------------------------------------------------------
def _verdicts() -> VerdictSet:
    ind = {
        ("payment", "card-evil"): Indicator("payment", "card-evil", "campaign-x", 12, 1.0),
        ("prefix", "198.51.100.0/24"): Indicator("prefix", "198.51.100.0/24", "campaign-y", 5, 0.97),
    }
    accounts = {
        "acct-bad": AccountVerdict("campaign", "campaign-x", 0.99, 0.99),
        "acct-ok": AccountVerdict("allow"),
    }
    return VerdictSet(accounts=accounts, indicators=ind)


def test_campaign_link_strongest_counted_once(policy: VerifyPolicy) -> None:
    v = verifier(policy, verdicts=_verdicts())
    res = v.assess(req(payment_fingerprint="card-evil"))  # prefix 198.51.100.0/24 too
    assert res.evidence["fired"] == {"campaign_link": 200.0}
    assert res.evidence["campaign_links"] == ["campaign-x by payment", "campaign-y by prefix"]
    assert res.step == "manual_review"
    clean = v.assess(req(ip="192.0.2.1", payment_fingerprint="card-ok"))
    assert clean.evidence["fired"] == {}


def test_peer_indicators(policy: VerifyPolicy) -> None:
    key = b"sharing-group-key"
    peers = StaticPeerIndicators(
        {
            ("payment_hash", payment_hash("card-7", key)): "peer:lab-b",
            ("email_domain", "Farm-Mail.io"): "peer:cloud-c",
        }
    )
    with_key = verifier(policy, peers=peers, peer_key=key)
    assert "peer_indicator" in fired(with_key, req(payment_fingerprint="card-7"))
    assert "peer_indicator" not in fired(with_key, req(payment_fingerprint="card-8"))
    without_key = verifier(policy, peers=peers)
    assert "peer_indicator" not in fired(without_key, req(payment_fingerprint="card-7"))
    assert with_key.assess(req(email="a@farm-mail.io")).evidence["peer_matches"] == [
        "peer:cloud-c by email_domain"
    ]
    with pytest.raises(ValueError, match="unknown peer indicator kind"):
        peers.add("payment", "x", "y")


def test_payment_hash_is_the_intel_scheme() -> None:
    key = bytes(range(32))
    h = payment_hash(" Card-7 ", key)
    assert h == payment_hash("card-7", key) and len(h) == 64
    assert payment_hash("card-7", key) != payment_hash("card-7", bytes(range(1, 33)))
    with pytest.raises(ValueError, match="at least 16"):
        payment_hash("card-7", b"short")
    keyed = pytest.importorskip("distillshield.intel._keyed")
    assert h == keyed.keyed_hash(key, "payment", "card-7")


def test_upgrade_uses_the_account_verdict(policy: VerifyPolicy) -> None:
    v = verifier(policy, verdicts=_verdicts())
    bad = v.assess(req(kind="upgrade", account_id="acct-bad", ip="192.0.2.1", pathway="startup_program"))
    assert bad.step == "deny" and "account_verdict" in bad.evidence["fired"]
    ok = v.assess(req(kind="upgrade", account_id="acct-ok", email="x@mailinator.com", ip="192.0.2.1"))
    assert ok.evidence["fired"]["account_verdict"] == 0.05
    assert ok.step == "none"  # an analyst's allow outweighs a throwaway address


def test_presented_proof_satisfies_its_step_only(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    res = v.assess(req(pathway="education", email="s@gmail.com", org_evidence=["institution_confirmed"]))
    assert res.step == "none"
    assert res.evidence["required_step"] == "institutional_proof"
    assert "satisfied:institutional_proof by institution_confirmed" in res.reasons
    # an e-mail click does not prove an institution
    res = v.assess(req(pathway="education", email="s@gmail.com", org_evidence=["email_verified"]))
    assert res.step == "institutional_proof"
    # manual review is never satisfied by a proof
    res = v.assess(req(email="x@mailinator.com", org_evidence=list(("contract", "payment_verified"))))
    assert res.step == "manual_review"


# ---------------------------------------------------------------------------------------------
# the request
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pathway": None}, "pathway"),
        ({"pathway": "vip"}, "pathway"),
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": None}, "ip"),
        ({"email": "no-at-sign"}, "email"),
        ({"email": None}, "email"),
        ({"email": "a@bad_domain"}, "email"),
        ({"ts": None}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "2026-01-01T00:00:00"}, "ts"),
        ({"ts": True}, "ts"),
        ({"ts": float("nan")}, "ts"),
        ({"declared_country": "USA"}, "declared_country"),
        ({"org_evidence": ["bribe"]}, "org_evidence"),
        ({"org_evidence": "email_verified"}, "org_evidence"),
        ({"kind": "merge"}, "kind"),
        ({"kind": "upgrade"}, "account_id"),
        ({"payment_fingerprint": 42}, "payment_fingerprint"),
        ({"colour": "blue"}, "colour"),
        ({"email_domain": "other.org"}, "email_domain"),
    ],
)
def test_request_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    body: dict[str, Any] = {"pathway": "self_serve", "email": "a@gmail.com", "ip": "192.0.2.1", "ts": 0}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}  # None: the field is left out
    with pytest.raises(RequestError) as err:
        SignupRequest.from_mapping(body)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")


def test_request_normalisation() -> None:
    r = SignupRequest.from_mapping(
        {
            "pathway": "education",
            "email": "Ada.L@Cs.OX.ac.UK",
            "ip": "2001:db8::1",
            "declared_country": "gb",
            "ts": "2026-01-01T00:00:00Z",
            "org_evidence": ["email_verified", "email_verified"],
        }
    )
    assert r.email_domain == "cs.ox.ac.uk" and r.declared_country == "GB" and r.ts == T0
    assert r.org_evidence == ("email_verified",)
    assert SignupRequest.from_mapping(r.to_dict()) == r
    assert (
        SignupRequest.from_mapping(
            {**r.to_dict(), "email_domain": None, "email": "x@cs.ox.ac.uk"}
        ).email_domain
        == "cs.ox.ac.uk"
    )


def test_pathway_missing_from_policy_is_a_request_error(policy_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(policy_doc)
    del doc["pathways"]["reseller"]
    pol = VerifyPolicy.from_mapping(doc)
    with pytest.raises(RequestError) as err:
        verifier(pol).assess(req(pathway="reseller"))
    assert err.value.field == "pathway"


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
def test_default_policy_loads_and_covers_every_pathway(policy: VerifyPolicy) -> None:
    from distillshield.schema import PATHWAYS

    assert set(policy.pathways) == set(PATHWAYS)
    assert policy.restricted == {"CN", "RU", "KP", "IR"}
    for name in PATHWAYS:
        steps = [t.step for t in policy.pathway(name).steps]
        assert steps == sorted(steps, key=STEPS.index)


def _broken(doc: dict[str, Any], edit: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    edit(out)
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["evidence"]["email_disposable"].update(weight=3), "weight"),
        (lambda d: d["evidence"].update(vibes={"lr": 2}), "vibes"),
        (lambda d: d["evidence"].pop("velocity_prefix"), "velocity_prefix"),
        (lambda d: d["evidence"]["email_disposable"].update(lr=0), "lr"),
        (lambda d: d["evidence"]["velocity_prefix"].update(min_count=0), "min_count"),
        (lambda d: d["pathways"].update(vip=d["pathways"]["self_serve"]), "unknown pathway"),
        (lambda d: d["pathways"]["education"].update(prior=1.5), "prior"),
        (lambda d: d["pathways"]["education"]["steps"].reverse(), "must increase"),
        (
            lambda d: d["pathways"]["self_serve"].update(
                steps=[{"min_risk": 0.1, "step": "deny"}, {"min_risk": 0.5, "step": "manual_review"}]
            ),
            "against the order",
        ),
        (
            lambda d: d["pathways"]["self_serve"]["steps"].insert(0, {"min_risk": 0.01, "step": "none"}),
            "none",
        ),
        (lambda d: d["pathways"]["education"].update(expected_email=["pigeon"]), "expected_email"),
        (lambda d: d["satisfied_by"].update(manual_review=["contract"]), "only a verification step"),
        (lambda d: d["satisfied_by"].update(email_domain_proof=["a-smile"]), "satisfied_by"),
        (lambda d: d.update(restricted_countries=["Russia"]), "alpha-2"),
        (lambda d: d.update(version=2), "version"),
    ],
)
def test_policy_validation_errors(policy_doc: dict[str, Any], edit: Any, message: str) -> None:
    with pytest.raises(VerifyPolicyError, match=message):
        VerifyPolicy.from_mapping(_broken(policy_doc, edit), "test.yaml")


def test_policy_examples_are_checked_at_load(policy_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(policy_doc)
    doc["evidence"]["email_disposable"]["lr"] = 1.5  # the throwaway-mailbox examples no longer hold
    with pytest.raises(VerifyPolicyError, match=r"example 4 \('throwaway mailbox on self-serve'\)"):
        VerifyPolicy.from_mapping(doc, "edited.yaml")
    bad = copy.deepcopy(policy_doc)
    bad["examples"] = [{"name": "bad", "request": {"pathway": "self_serve"}, "step": "none"}]
    with pytest.raises(VerifyPolicyError, match="bad request: email"):
        VerifyPolicy.from_mapping(bad)


def test_load_verify_policy_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(VerifyPolicyError, match="is a mapping"):
        load_verify_policy(p)
    p.write_text("version: [1\n")
    with pytest.raises(VerifyPolicyError, match="cannot read"):
        load_verify_policy(p)
    with pytest.raises(VerifyPolicyError, match="cannot read"):
        load_verify_policy(tmp_path / "absent.yaml")


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------
def test_verify_json(policy: VerifyPolicy) -> None:
    v = verifier(policy)
    body = {"pathway": "education", "email": "s@gmail.com", "ip": "192.0.2.1", "declared_country": "US"}
    status, out = verify_json(v, body, now=T0)
    assert status == 200
    assert out["step"] == "institutional_proof" and 0 < out["risk"] < 1
    assert out["request"]["email_domain"] == "gmail.com" and out["request"]["ts"] == T0
    assert isinstance(out["reasons"], list) and out["evidence"]["email_class"] == "free-mail"
    assert v.state.updates > 0  # counted in the velocity windows

    status, out = verify_json(v, {**body, "ip": "not-an-ip"}, now=T0)
    assert (status, out["field"]) == (400, "ip")
    status, out = verify_json(v, {**body, "pathway": "vip"}, now=T0)
    assert (status, out["field"]) == (400, "pathway")
    status, out = verify_json(v, body)  # no ts and no server time
    assert (status, out["field"]) == (400, "ts")
    status, out = verify_json(v, ["not", "an", "object"])
    assert (status, out["field"]) == (400, "body")
    status, out = verify_json(v, {**body, "dry_run": "yes"}, now=T0)
    assert (status, out["field"]) == (400, "dry_run")

    before = v.state.to_dict()
    status, _ = verify_json(v, {**body, "dry_run": True}, now=T0 + 1)
    assert status == 200 and v.state.to_dict() == before


# ---------------------------------------------------------------------------------------------
# evaluation on the simulator's population
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_report(small_dataset: Path) -> Any:
    return evaluate_signups(small_dataset, keep_decisions=True)


def test_evaluation_counts_reconcile(small_dataset: Path, small_report: Any) -> None:
    from distillshield.schema import ACCOUNT_LABELS, ACCOUNTS, read_table

    acc = read_table(small_dataset, ACCOUNTS).to_pylist()
    lab = {r["account_id"]: r for r in read_table(small_dataset, ACCOUNT_LABELS).to_pylist()}
    r = small_report
    assert r.accounts == len(acc)
    assessed = r.accounts - r.overall["skipped"]
    assert sum(p["fraud"] + p["legit"] for p in r.pathways) == assessed
    assert sum(p["accounts"] for p in r.personas) == assessed
    assert len(r.decisions) == assessed
    for p in r.pathways:
        fraud = sum(1 for a in acc if a["pathway"] == p["pathway"] and lab[a["account_id"]]["campaign_id"])
        legit = sum(
            1 for a in acc if a["pathway"] == p["pathway"] and not lab[a["account_id"]]["campaign_id"]
        )
        assert (p["fraud"], p["legit"]) == (fraud, legit)
        assert sum(p["fraud_steps"].values()) == fraud and sum(p["legit_steps"].values()) == legit
        assert p["fraud_escalated"] == fraud - p["fraud_steps"]["none"]
        assert p["fraud_stopped"] == p["fraud_steps"]["deny"] <= p["fraud_escalated"]
    assert r.overall["fraud"] == sum(1 for a in acc if lab[a["account_id"]]["campaign_id"])
    # the pathways the scenario's attackers use are the ones marked abused
    assert {p["pathway"] for p in r.pathways if p["abused"]} >= {"education", "startup_program", "self_serve"}
    md = r.render()
    assert "| education |" in md and "attack.hydra_reseller" in md
    assert r.to_dict()["overall"] == r.overall


def test_evaluation_separates_fraud_from_legitimate_signups(small_report: Any) -> None:
    r = small_report
    for p in r.pathways:
        if p["abused"] and p["fraud"] >= 5:
            assert p["fraud_escalated_share"] > p["legit_friction_share"], p
    # robust margins: the academic / program pathways rest on e-mail class and geography
    for name in ("education", "startup_program"):
        p = r.pathway(name)
        assert p["fraud_escalated_share"] - p["legit_friction_share"] >= 0.4, p
    assert r.overall["fraud_escalated_share"] - r.overall["legit_friction_share"] >= 0.3
    assert r.overall["legit_friction_share"] <= 0.05
    # the legitimate look-alikes of a farm: a class on one NAT and domain, a company on one card
    assert r.persona("legit.university_class")["escalated_share"] == 0
    assert r.persona("legit.corporate_vpn")["escalated_share"] == 0


def test_evaluation_is_deterministic(small_dataset: Path, small_report: Any) -> None:
    again = evaluate_signups(small_dataset, keep_decisions=True)
    assert again.to_dict(decisions=True) == small_report.to_dict(decisions=True)
