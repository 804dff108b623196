"""Peers' indicators at sign-up: ``PeerIndex`` answers the verifier, and ``verify --peers``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from distillshield.access import SignupRequest, Verifier, VerifyPolicy, payment_hash
from distillshield.cli import app
from distillshield.intel import IndicatorSet, IntelIndicator
from distillshield.intel.peers import PeerIndex

KEY = bytes(range(32))
T = datetime(2026, 3, 1, tzinfo=UTC)


def _set() -> IndicatorSet:
    def ind(kind: str, value: str, **kw: object) -> IntelIndicator:
        return IntelIndicator(kind, value, campaign="op-x", source="lab-b", **kw)  # type: ignore[arg-type]

    return IndicatorSet(
        (
            ind("ipv4", "203.0.113.9"),
            ind("ipv6", "2001:db8::1"),
            ind("cidr", "198.51.100.0/22"),
            ind("cidr", "2001:db8:1::/48"),
            ind("user_agent", "HarvestKit/2.1", tls="t13d1516h2_aaa"),
            ind("user_agent", "FarmBot/0.9"),
            ind("payment_hash", payment_hash("card-77", KEY)),
            ind("template_id", "tpl-1"),  # needs traffic: not used at sign-up
            ind("ipv4", "192.0.2.50", valid_until=datetime(2026, 2, 1, tzinfo=UTC)),  # expired
        )
    )


def test_matching_rules() -> None:
    idx = PeerIndex(_set(), as_of=T)
    assert len(idx) == 7  # template id and the expired address left out
    assert idx.match("ip", "203.0.113.9") == "lab-b/op-x"
    assert idx.match("ip", "2001:0db8:0000::1") == "lab-b/op-x"  # canonical form
    assert idx.match("ip", "198.51.103.200") == "lab-b/op-x"  # inside the /22
    assert idx.match("ip", "198.51.104.1") is None
    assert idx.match("ip", "2001:db8:1:ff::7") == "lab-b/op-x"
    assert idx.match("ip", "192.0.2.50") is None  # expired before as_of
    assert idx.match("ip", "not an address") is None
    assert idx.match("prefix", "198.51.101.0/24") == "lab-b/op-x"  # the /24 lies in the /22
    assert idx.match("prefix", "203.0.113.0/24") is None  # one address is not the whole block
    assert idx.match("client", "HarvestKit/2.1 | t13d1516h2_aaa") == "lab-b/op-x"
    assert idx.match("client", "HarvestKit/2.1 | t13d1516h2_bbb") is None  # TLS must agree
    assert idx.match("client", "FarmBot/0.9 | anything") == "lab-b/op-x"  # peer gave no TLS
    assert idx.match("payment_hash", payment_hash("card-77", KEY)) == "lab-b/op-x"
    assert idx.match("email_domain", "farm.io") is None
    assert PeerIndex(_set()).match("ip", "192.0.2.50") == "lab-b/op-x"  # no as_of: nothing ages out


class _Net:
    def lookup(self, ip: str) -> dict[str, object]:
        return {
            "ip_country": "US",
            "ip_prefix": None,
            "asn_name": "HOME ISP",
            "is_hosting": False,
            "is_vpn": False,
            "is_tor": False,
        }


def _req(**kw: object) -> SignupRequest:
    base: dict[str, object] = {
        "pathway": "self_serve",
        "email": "dev@gmail.com",
        "ip": "192.0.2.1",
        "declared_country": "US",
        "ts": T.timestamp(),
    }
    base.update(kw)
    return SignupRequest.from_mapping(base)


def test_verifier_weighs_peer_reports_by_kind() -> None:
    policy = VerifyPolicy.default()
    lr = policy.evidence.peer_indicator.lr
    v = Verifier(policy, infra=_Net(), peers=PeerIndex(_set(), as_of=T), peer_key=KEY)
    assert v.assess(_req(ip="203.0.113.9")).evidence["fired"] == {"peer_indicator": lr["ip"]}
    paid = v.assess(_req(payment_fingerprint="card-77", ip="203.0.113.9"))
    assert paid.evidence["fired"] == {"peer_indicator": lr["payment_hash"]}  # strongest, once
    assert paid.evidence["peer_matches"] == ["lab-b/op-x by payment_hash", "lab-b/op-x by ip"]
    # a popular client stack alone is weak evidence: no friction for an otherwise plain sign-up
    client = v.assess(_req(client_fingerprint="FarmBot/0.9 | x"))
    assert client.evidence["fired"] == {"peer_indicator": lr["client"]}
    assert client.step == "none"
    assert lr["client"] < lr["prefix"] < lr["ip"] < lr["payment_hash"]


def _misp(path: Path) -> Path:
    event = {
        "Event": {
            "info": "op-x",
            "Tag": [{"name": 'distillshield:producer="lab-b"'}],
            "Attribute": [
                {"type": "ip-src", "value": "203.0.113.9", "uuid": "7bcd8a1f-4e9c-4d8b-8fa0-5a6b7c8d9ea2"},
                {
                    "type": "user-agent",
                    "value": "FarmBot/0.9",
                    "uuid": "8cde9b2a-5fad-4e9c-9ab1-6b7c8d9eafb3",
                },
            ],
        }
    }
    path.write_text(json.dumps(event))
    return path


def test_cli_verify_with_peers(tmp_path: Path) -> None:
    bundle = _misp(tmp_path / "peer.json")
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {"pathway": "self_serve", "email": "dev@gmail.com", "ip": "203.0.113.9", "ts": T.timestamp()}
        )
    )
    runner = CliRunner()
    plain = runner.invoke(app, ["verify", str(request), "--dry-run"])
    assert plain.exit_code == 0, plain.output
    assert "peer_indicator" not in plain.output
    res = runner.invoke(app, ["verify", str(request), "--dry-run", "--peers", str(bundle)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert any(r.startswith("peer_indicator[lab-b/op-x by ip]") for r in out["reasons"])
    assert out["risk"] > json.loads(plain.output)["risk"]
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    bad = runner.invoke(app, ["verify", str(request), "--peers", str(garbage)])
    assert bad.exit_code == 1 and "--peers" in bad.output
