"""The decision engine and the online risk model, one request at a time (no I/O but the
small scenario's indicator index): linking, sticky links, policy, cohorts, calibration."""

from __future__ import annotations

import json
import shutil
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillshield.detect.design import PSEUDO_REQUESTS
from distillshield.detect.model import load_model
from distillshield.gateway._types import Action, RequestContext
from distillshield.gateway.engine import Engine, _signup_key
from distillshield.gateway.policy import DEFAULT_POLICY, load_policy
from distillshield.gateway.risk import OnlineRisk, binomial_tail_bound
from distillshield.gateway.verdicts import AccountVerdict, Indicator, VerdictSet, build_verdicts

T0 = 1_770_000_000.0  # 2026-02-02, epoch seconds
DAY = 86_400.0


@dataclass(frozen=True)
class Acct:
    pathway: str | None = "self_serve"
    payment_fingerprint: str | None = None
    signup_ip: str | None = None
    created_at: float | None = None
    declared_country: str | None = None


class NoSignals:
    """A content-free caller: no request signals."""

    def for_request(self, ctx: RequestContext) -> None:
        return None


def _ctx(account: str, ts: float, *, ip: str = "203.0.113.7", i: int = 0, **kw: Any) -> RequestContext:
    return RequestContext(
        request_id=f"r-{account}-{ts}-{i}",
        ts=ts,
        account_id=account,
        api_key_id=None,
        model="m",
        endpoint="chat.completions",
        ip=ip,
        **kw,
    )


def _engine(verdicts: VerdictSet | None = None, accounts: dict[str, Acct] | None = None, **kw: Any) -> Engine:
    facts = accounts or {}
    return Engine(
        load_policy(DEFAULT_POLICY),
        verdicts=verdicts,
        signals=NoSignals(),
        account_facts=facts.get,
        **kw,
    )


CAMPAIGN = VerdictSet(
    accounts={"acct_member": AccountVerdict("campaign", "C1", 0.99, 0.97)},
    campaigns={"C1": 0.97},
    indicators={
        ("payment", "card-hydra"): Indicator("payment", "card-hydra", "C1", 5, 1.0),
        ("meta", "staff-7"): Indicator("meta", "staff-7", "C1", 4, 1.0),
    },
)


def test_default_policy_loads_with_its_examples() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert "linked-to-campaign" in policy.rule_ids and "online-risk" in policy.rule_ids


def test_a_new_head_sharing_a_campaign_card_is_protected_from_its_first_request() -> None:
    eng = _engine(CAMPAIGN, {"acct_new": Acct(payment_fingerprint="card-hydra")})
    d = eng.decide(_ctx("acct_new", T0))
    assert Action.PROTECT in d.actions and Action.MARK in d.actions
    assert d.forwards and d.campaign_id == "C1"
    assert "rule:linked-to-campaign" in d.reasons and any(r.startswith("link:payment") for r in d.reasons)


def test_an_unlinked_account_is_served_as_is() -> None:
    eng = _engine(CAMPAIGN, {"acct_dev": Acct(payment_fingerprint="card-own")})
    d = eng.decide(_ctx("acct_dev", T0))
    assert d.actions == frozenset({Action.ALLOW}) and d.campaign_id is None


def test_a_staff_handle_links_the_account_for_its_later_requests_until_the_campaign_is_gone() -> None:
    eng = _engine(CAMPAIGN)
    assert eng.decide(_ctx("acct_b", T0)).action == Action.ALLOW
    first = eng.decide(_ctx("acct_b", T0 + 60, metadata="staff-7"))
    assert first.campaign_id == "C1"
    later = eng.decide(_ctx("acct_b", T0 + 120))  # no metadata on this one
    assert later.campaign_id == "C1" and "link:sticky" in later.reasons
    # the batch no longer reports C1 (a cluster that dissolved): the link goes with it
    eng.set_verdicts(VerdictSet(campaigns={"C2": 0.99}))
    assert eng.decide(_ctx("acct_b", T0 + 180)).action == Action.ALLOW


def test_a_client_match_links_only_the_request() -> None:
    v = VerdictSet(
        campaigns={"C1": 0.97},
        indicators={
            ("client", "harness/1.0 | tls-x"): Indicator("client", "harness/1.0 | tls-x", "C1", 9, 0.99)
        },
    )
    eng = _engine(v, link_kinds=("client",))
    hit = eng.decide(_ctx("acct_x", T0, user_agent="harness/1.0", tls_fingerprint="tls-x"))
    assert hit.campaign_id == "C1"
    miss = eng.decide(_ctx("acct_x", T0 + 5, user_agent="curl/8", tls_fingerprint="tls-y"))
    assert miss.action == Action.ALLOW
    # by default a client is not a link (shared by strangers): the risk model weighs it
    assert _engine(v).decide(
        _ctx("acct_y", T0, user_agent="harness/1.0", tls_fingerprint="tls-x")
    ).action == (Action.ALLOW)


def test_an_analyst_allow_overrides_links_and_risk() -> None:
    v = CAMPAIGN.with_overrides({"acct_new": "allow"})
    eng = _engine(v, {"acct_new": Acct(payment_fingerprint="card-hydra")})
    assert eng.decide(_ctx("acct_new", T0)).action == Action.ALLOW


def test_confirmed_campaign_members_are_throttled_beyond_the_campaign_rate() -> None:
    eng = _engine(CAMPAIGN)
    decisions = [eng.decide(_ctx("acct_member", T0 + i * 0.01, i=i)) for i in range(200)]
    assert all(Action.PROTECT in d.actions for d in decisions if d.forwards)
    throttled = [d for d in decisions if d.action == Action.THROTTLE]
    assert throttled and all(d.retry_after and d.retry_after > 0 for d in throttled)


def test_a_suspect_verdict_lapses_once_the_account_outgrows_the_evidence_behind_it() -> None:
    """Scored "suspect" on 3 requests, with a floor of 4: the next 4 are protected, then the
    verdict describes less than half of the account's traffic and stops protecting on its own;
    one scored on 6 protects 6. A new publication (the next batch run, which saw the burst)
    starts the count again. A verdict whose request count is unknown (0) never lapses."""
    v = VerdictSet(
        accounts={
            "acct_sus": AccountVerdict("suspect", None, 0.6, 0.0, 3),
            "acct_more": AccountVerdict("suspect", None, 0.6, 0.0, 6),
            "acct_old": AccountVerdict("suspect", None, 0.6),
        }
    )
    eng = _engine(v, suspect_evidence_floor=4)
    burst = [eng.decide(_ctx("acct_sus", T0 + i, i=i)) for i in range(8)]
    assert [Action.PROTECT in d.actions for d in burst] == [True] * 4 + [False] * 4
    assert "rule:batch-suspect" in burst[0].reasons and "rule:batch-suspect" not in burst[4].reasons
    more = [Action.PROTECT in eng.decide(_ctx("acct_more", T0 + i, i=i)).actions for i in range(8)]
    assert more == [True] * 6 + [False] * 2
    assert all(Action.PROTECT in eng.decide(_ctx("acct_old", T0 + i, i=i)).actions for i in range(8))
    eng.set_verdicts(VerdictSet(accounts={"acct_sus": AccountVerdict("suspect", None, 0.7, 0.0, 11)}))
    assert Action.PROTECT in eng.decide(_ctx("acct_sus", T0 + 100)).actions


def test_a_flag_on_fewer_requests_than_the_floor_lapses_and_one_on_more_holds() -> None:
    """Flagged alone on 3 requests, with a floor of 4: protected and marked for the next 4,
    then the flag is stale and the account is served as before; flagged on 4 requests (the
    floor), or a campaign member scored on 2, stays protected until the next publication."""
    v = VerdictSet(
        accounts={
            "acct_few": AccountVerdict("flagged", None, 0.95, 0.0, 3),
            "acct_enough": AccountVerdict("flagged", None, 0.95, 0.0, 4),
            "acct_member": AccountVerdict("campaign", "C1", 0.95, 0.6, 2),
        },
        campaigns={"C1": 0.6},
    )
    eng = _engine(v, suspect_evidence_floor=4)
    few = [eng.decide(_ctx("acct_few", T0 + i, i=i)) for i in range(8)]
    assert [Action.PROTECT in d.actions for d in few] == [True] * 4 + [False] * 4
    assert [Action.MARK in d.actions for d in few] == [True] * 4 + [False] * 4
    assert "rule:campaign-suspect" in few[3].reasons and "rule:campaign-suspect" not in few[4].reasons
    for acct in ("acct_enough", "acct_member"):
        assert all(Action.PROTECT in eng.decide(_ctx(acct, T0 + i, i=i)).actions for i in range(8))
    eng.set_verdicts(VerdictSet(accounts={"acct_few": AccountVerdict("flagged", None, 0.97, 0.0, 11)}))
    assert Action.PROTECT in eng.decide(_ctx("acct_few", T0 + 100)).actions


def test_the_suspect_evidence_floor_is_the_model_pseudo_count_and_is_checked() -> None:
    assert _engine().suspect_evidence_floor == PSEUDO_REQUESTS
    with pytest.raises(ValueError, match="suspect_evidence_floor"):
        _engine(suspect_evidence_floor=0)


def test_verdict_request_counts_survive_publication_and_older_blobs_still_load() -> None:
    v = VerdictSet(
        accounts={"a": AccountVerdict("suspect", None, 0.6, 0.0, 5), "b": AccountVerdict("flagged")}
    )
    assert VerdictSet.from_bytes(v.to_bytes()).accounts == v.accounts
    # a set without counts serialises as before (same content hash for the fleet)
    plain = VerdictSet(accounts={"b": AccountVerdict("flagged", None, 0.95)})
    doc = json.loads(zlib.decompress(plain.to_bytes()))
    assert doc["accounts"] == {"b": ["flagged", None, 0.95, 0.0]}


def _scan_dir(out: Path, accounts: dict[str, list[Any]], n_requests: list[int] | None = None) -> Path:
    """A scan's output with no campaign: ``accounts.parquet`` (plus ``fingerprints.parquet``)."""
    ids = accounts["account_id"]
    pq.write_table(
        pa.table({**accounts, "campaign_id": pa.array([None] * len(ids), pa.string())}),
        out / "accounts.parquet",
    )
    (out / "campaigns.json").write_text(json.dumps({"campaigns": []}))
    if n_requests is not None:
        pq.write_table(pa.table({"account_id": ids, "n_requests": n_requests}), out / "fingerprints.parquet")
    return out


def test_build_verdicts_reads_the_requests_the_scan_saw(tmp_path: Path) -> None:
    scan = {"account_id": ["s", "q", "f"], "score": [0.7, 0.1, 0.95], "flagged": [False, False, True]}
    _scan_dir(tmp_path, scan)
    assert build_verdicts(tmp_path).accounts["s"].requests == 0  # no fingerprints: unknown
    got = build_verdicts(_scan_dir(tmp_path, scan, [4, 9, 5])).accounts
    assert got["s"] == AccountVerdict("suspect", None, 0.7, 0.0, 4) and "q" not in got
    assert got["f"] == AccountVerdict("flagged", None, 0.95, 0.0, 5)


def test_a_flag_the_batch_held_is_a_thin_flag_at_the_gateway(tmp_path: Path) -> None:
    # detect/floor.py holds a flag on a handful of requests with no link to another flag: the
    # batch does not report it, the gateway protects it as it would the thin flag (it lapses
    # after 10 more requests, Engine); a held account corroboration later flagged is flagged
    scan = {
        "account_id": ["h", "s", "f"],
        "score": [0.97, 0.7, 0.95],
        "flagged": [False, False, True],
        "held": [True, False, False],
    }
    got = build_verdicts(_scan_dir(tmp_path, scan, [3, 4, 40])).accounts
    assert got["h"] == AccountVerdict("flagged", None, 0.97, 0.0, 3)
    assert got["s"] == AccountVerdict("suspect", None, 0.7, 0.0, 4)
    assert got["f"] == AccountVerdict("flagged", None, 0.95, 0.0, 40)


def test_signup_key_matches_the_batch_signup_edges() -> None:
    assert _signup_key("198.51.100.23") == "198.51.100.0/24"
    assert _signup_key("2001:db8::1") == "2001:db8::1"
    assert _signup_key(None) is None


# -- the indicator index is relational: a shared NAT is not a campaign's --------------------


@pytest.fixture(scope="module")
def prepared(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from distillshield.prepare import prepare

    out = tmp_path_factory.mktemp("gw-engine") / "data"
    shutil.copytree(small_dataset, out)
    prepare(out)
    return out


def _shared_prefix(data: Path) -> tuple[str, list[str]]:
    """A /24 prefix used by the most legitimate accounts (a campus NAT or office egress)."""
    import duckdb

    con = duckdb.connect()
    row = con.execute(
        f"""
        SELECT en.ip_prefix, list(DISTINCT e.account_id ORDER BY e.account_id) AS accts
        FROM read_parquet('{data}/exchanges/*.parquet') e
        JOIN read_parquet('{data}/derived/enrichment/*.parquet') en USING (request_id)
        JOIN read_parquet('{data}/labels/accounts.parquet') l USING (account_id)
        WHERE l.campaign_id IS NULL
        GROUP BY 1 ORDER BY count(DISTINCT e.account_id) DESC, 1 LIMIT 1
        """
    ).fetchone()
    assert row is not None
    return str(row[0]), list(row[1])


def test_a_prefix_shared_with_legitimate_users_is_not_indexed(prepared: Path, tmp_path: Path) -> None:
    prefix, users = _shared_prefix(prepared)
    assert len(users) >= 10
    members, outsiders = users[:3], users[3:]
    det = tmp_path / "det"
    det.mkdir()
    pq.write_table(
        pa.table(
            {
                "account_id": members,
                "score": [0.99] * 3,
                "flagged": [True] * 3,
                "campaign_id": ["C1"] * 3,
            }
        ),
        det / "accounts.parquet",
    )
    (det / "campaigns.json").write_text(json.dumps([{"id": "C1", "score": 0.99}]))
    verdicts = build_verdicts(det, data=prepared, kinds=("prefix", "payment"))
    assert ("prefix", prefix) not in verdicts.indicators  # 3 members among many users
    # the same three accounts tie a value nobody else uses: a hand-made shared card
    eng = _engine(verdicts, {outsiders[0]: Acct()})
    ip = prefix.split("/")[0][:-1] + "9"
    d = eng.decide(_ctx(outsiders[0], T0, ip=ip))
    assert d.action == Action.ALLOW and d.campaign_id is None
    assert verdicts.until == "" and VerdictSet.from_bytes(verdicts.to_bytes()) == verdicts


def test_a_card_holder_registered_after_until_is_not_counted(prepared: Path, tmp_path: Path) -> None:
    """A card's specificity reads the account records created before ``until`` only: a holder
    registered later is the future. Members: every holder of a card but the last registered;
    with ``until`` at that registration the card is theirs alone (an indicator), without it
    one holder in four or more is not a member (not specific enough)."""
    import duckdb

    con = duckdb.connect()
    row = con.execute(
        f"""SELECT payment_fingerprint, list(account_id ORDER BY created_at, account_id),
                   max(created_at), count(DISTINCT created_at) = count(*)
            FROM read_parquet('{prepared}/accounts.parquet') WHERE payment_fingerprint IS NOT NULL
            GROUP BY 1 HAVING count(*) BETWEEN 4 AND 19 ORDER BY count(*) DESC, 1 LIMIT 1"""
    ).fetchone()
    assert row is not None and row[3], "a card with 4-19 holders registered at distinct times"
    card, holders, last = str(row[0]), list(row[1]), row[2]
    members = holders[:-1]
    det = tmp_path / "det"
    det.mkdir()
    pq.write_table(
        pa.table(
            {
                "account_id": members,
                "score": [0.99] * len(members),
                "flagged": [True] * len(members),
                "campaign_id": ["C1"] * len(members),
            }
        ),
        det / "accounts.parquet",
    )
    (det / "campaigns.json").write_text(json.dumps([{"id": "C1", "score": 0.99}]))
    then = build_verdicts(det, data=prepared, kinds=("payment",), until=last.isoformat())
    assert then.indicators[("payment", card)].specificity == 1.0
    assert ("payment", card) not in build_verdicts(det, data=prepared, kinds=("payment",)).indicators


def test_verdicts_remember_their_horizon() -> None:
    v = VerdictSet(campaigns={"C1": 0.9}, until="2026-02-03T00:00:00+00:00")
    back = VerdictSet.from_bytes(v.to_bytes())
    assert back.until == v.until and back.version == v.version
    assert VerdictSet(campaigns={"C1": 0.9}).version != v.version


# -- the online risk model -------------------------------------------------------------------


def test_binomial_tail_bound() -> None:
    assert binomial_tail_bound(3, 10, 0.5) == 1.0  # below the mean: no evidence
    assert binomial_tail_bound(10, 10, 0.5) == pytest.approx(0.5**10)
    assert binomial_tail_bound(9, 10, 0.1) < binomial_tail_bound(5, 10, 0.1) < 1.0


def _cohort_engine(accounts: dict[str, Acct], **risk: Any) -> Engine:
    return _engine(None, accounts, risk=OnlineRisk(**risk))


def _serve(eng: Engine, ctx: RequestContext, reasoning: int = 10) -> Any:
    d = eng.decide(ctx)
    eng.record(ctx, d, status=200, output_tokens=100, reasoning_tokens=reasoning, response_text=None)
    return d


def _population(n_old: int, n_fresh: int) -> dict[str, Acct]:
    accts = {f"old{i}": Acct(created_at=T0 - 400 * DAY) for i in range(n_old)}
    accts.update({f"new{i}": Acct(created_at=T0 - 2 * DAY) for i in range(n_fresh)})
    return accts


def _fresh_cohort(eng: Engine, client: str, n_old: int = 60, n_fresh: int = 25) -> float:
    """Old accounts on their own clients, then ``new0..`` arriving together on ``client``,
    ten seconds apart; returns the time after the last request."""
    t = T0
    for i in range(n_old):
        _serve(eng, _ctx(f"old{i}", t, user_agent=f"sdk/{i}"))
        t += 10
    for i in range(n_fresh):
        _serve(eng, _ctx(f"new{i}", t, user_agent=client))
        t += 10
    return t


def test_a_fresh_cohort_on_one_client_is_protected_and_old_accounts_are_not() -> None:
    accounts = _population(60, 25)
    eng = _cohort_engine(accounts)
    t = T0
    # background: old accounts on their own clients, then fresh accounts arriving on one harness
    for i in range(60):
        _serve(eng, _ctx(f"old{i}", t, user_agent=f"sdk/{i}", ip=f"198.51.{i}.1"))
        t += 10
    late = []
    for i in range(25):
        late.append(_serve(eng, _ctx(f"new{i}", t, user_agent="harness/2.0", ip=f"203.0.{i}.9")))
        t += 10
    assert late[0].action == Action.ALLOW  # one fresh account is no cohort
    assert Action.PROTECT in late[-1].actions and "rule:online-risk" in late[-1].reasons
    assert any(r.startswith("cohort:client") for r in late[-1].reasons)
    # an old account on the same client is not part of the cohort
    old = _serve(eng, _ctx("old0", t, user_agent="harness/2.0", ip="198.51.0.1"))
    assert old.action == Action.ALLOW
    # members keep it on their other clients
    again = _serve(eng, _ctx("new3", t + 5, user_agent="other/1", ip="203.0.3.9"))
    assert Action.PROTECT in again.actions


def test_batch_feedback_clears_a_cohort_the_batch_does_not_flag() -> None:
    accounts = _population(60, 25)
    # the value's own feedback, without members leaving on the batch's judgement (next test)
    eng = _cohort_engine(accounts, cleared_kinds=())
    t = _fresh_cohort(eng, "campus-lab/1")
    assert Action.PROTECT in _serve(eng, _ctx("new0", t, user_agent="campus-lab/1")).actions
    # the batch scan saw them all and flagged none (a class doing its assignment)
    iso = "2026-02-03T00:00:00+00:00"
    eng.set_verdicts(VerdictSet(until=iso))
    d = _serve(eng, _ctx("new0", t + 60, user_agent="campus-lab/1"))
    assert d.action == Action.ALLOW
    # had the batch flagged them, the cohort's risk would have grown instead
    eng2 = _cohort_engine(accounts, cleared_kinds=())
    t = _fresh_cohort(eng2, "farm/1")
    flagged = {f"new{i}": AccountVerdict("flagged", None, 0.95) for i in range(24)}
    eng2.set_verdicts(VerdictSet(accounts=flagged, until=iso))
    d2 = _serve(eng2, _ctx("new22", t + 60, user_agent="farm/1"))
    assert Action.PROTECT in d2.actions and d2.risk > 0.9


def test_a_member_the_batch_saw_and_did_not_flag_leaves_the_cohort_and_newcomers_still_join() -> None:
    accounts = _population(60, 27)
    eng = _cohort_engine(accounts)
    # 24 farm accounts and one new customer (new24) on the same stock release arrive together
    t = _fresh_cohort(eng, "sdk-stock/4.1")
    assert Action.PROTECT in _serve(eng, _ctx("new24", t, user_agent="sdk-stock/4.1")).actions
    # a batch run that saw all 25, within the cohort's window: it flags the farm and
    # clears the customer (no verdict)
    until = datetime.fromtimestamp(t + 1, UTC).isoformat()
    flagged = {f"new{i}": AccountVerdict("flagged", None, 0.95) for i in range(24)}
    eng.set_verdicts(VerdictSet(accounts=flagged, until=until))
    t += 60
    customer = _serve(eng, _ctx("new24", t, user_agent="sdk-stock/4.1"))
    assert customer.action == Action.ALLOW, customer.reasons
    assert _serve(eng, _ctx("new24", t + 1, user_agent="other/2")).action == Action.ALLOW
    # a fresh account no batch run has judged yet still joins the significant cohort
    for i in (25, 26):
        late = _serve(eng, _ctx(f"new{i}", t + 2 + i, user_agent="sdk-stock/4.1"))
    assert Action.PROTECT in late.actions and any(r.startswith("cohort:client") for r in late.reasons)
    # and a suspect keeps its membership (the batch did not clear it)
    eng2 = _cohort_engine(accounts)
    t = _fresh_cohort(eng2, "sdk-stock/4.1")
    held = {**flagged, "new24": AccountVerdict("suspect", None, 0.7, requests=1000)}
    eng2.set_verdicts(VerdictSet(accounts=held, until=datetime.fromtimestamp(t + 1, UTC).isoformat()))
    member = _serve(eng2, _ctx("new24", t + 60, user_agent="other/2"))
    assert any(r.startswith("cohort:client:member") for r in member.reasons), member.reasons


def test_only_the_cleared_kinds_memberships_end_with_a_batch_clearance() -> None:
    accounts = _population(60, 25)
    for cleared, kept in (((), True), (("template",), True), (("client",), False)):
        eng = _cohort_engine(accounts, cleared_kinds=cleared)
        t = _fresh_cohort(eng, "sdk-stock/4.1")
        flagged = {f"new{i}": AccountVerdict("flagged", None, 0.95) for i in range(24)}
        eng.set_verdicts(VerdictSet(accounts=flagged, until=datetime.fromtimestamp(t + 1, UTC).isoformat()))
        d = _serve(eng, _ctx("new24", t + 60, user_agent="other/2"))
        assert (Action.PROTECT in d.actions) is kept, (cleared, d.reasons)


def test_repeated_reasoning_exposure_raises_the_account_risk() -> None:
    eng = _cohort_engine({"a": Acct(created_at=T0 - 400 * DAY)})

    class Cot:
        def __init__(self) -> None:
            self.label = "none"

        def for_request(self, ctx: RequestContext) -> Any:
            return type("S", (), {"cot_elicit": self.label, "template_id": None, "capability": None})()

    cot = Cot()
    eng.signals = cot
    t = T0
    for i in range(300):  # a background where exposure requests are rare
        _serve(eng, _ctx(f"bg{i % 50}", t, i=i))
        t += 1
    cot.label = "expose_reasoning"
    first = _serve(eng, _ctx("a", t))
    assert first.action == Action.PROTECT and "rule:online-risk" not in first.reasons  # the request rule
    for i in range(6):
        _serve(eng, _ctx("a", t + i + 1, i=i))
    cot.label = "none"
    plain = _serve(eng, _ctx("a", t + 30))
    assert Action.PROTECT in plain.actions and any(r.startswith("expose:") for r in plain.reasons)


def _abroad_ip() -> tuple[str, str, str]:
    """An address, the country the bundled tables place it in, and another country."""
    from distillshield.gateway.engine import _IpCache

    ip = "8.8.8.8"
    seen = _IpCache(4).get(ip).country
    assert seen  # the offline tables place it
    return ip, seen, "DE" if seen != "DE" else "FR"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_first_contact_from_abroad_is_protected_for_the_first_requests_before_any_batch_run() -> None:
    """A fresh account that declared one country and calls from another is protected (rule
    online-risk, reason ``abroad:``) for its first ``abroad_requests`` requests only; the same
    call from the declared country (any case), from an aged account, or from an account a
    batch run has already seen is served as is."""
    ip, seen, away = _abroad_ip()
    accounts = {
        "abroad": Acct(created_at=T0 - DAY, declared_country=away),
        "home": Acct(created_at=T0 - DAY, declared_country=seen.lower()),
        "aged": Acct(created_at=T0 - 400 * DAY, declared_country=away),
        "judged": Acct(created_at=T0 - DAY, declared_country=away),
        "undeclared": Acct(created_at=T0 - DAY),
    }
    eng = _cohort_engine(accounts, abroad_requests=3)
    assert _serve(eng, _ctx("judged", T0, ip="192.0.2.1")).action == Action.ALLOW
    eng.set_verdicts(VerdictSet(until=_iso(T0 + 60)))  # a batch run saw "judged", and nothing flagged
    t = T0 + 120
    burst = [_serve(eng, _ctx("abroad", t + i, ip=ip, i=i)) for i in range(5)]
    assert [Action.PROTECT in d.actions for d in burst] == [True] * 3 + [False] * 2
    assert "rule:online-risk" in burst[0].reasons
    assert any(r.startswith(f"abroad:{away}>{seen}:0.90") for r in burst[0].reasons)
    for acct in ("home", "aged", "judged", "undeclared"):
        assert _serve(eng, _ctx(acct, t + 10, ip=ip)).action == Action.ALLOW, acct
    assert "abroad" not in OnlineRisk(abroad_requests=0).stats()["kinds"]  # 0: the term is off


def test_first_contact_from_abroad_is_worth_what_batch_verdicts_confirm() -> None:
    """Thirty fresh accounts called from abroad and a batch run flagged none of them (travellers,
    say): the term's learned precision falls to (0 + 0.9 * 10) / (30 + 10) and a new account
    abroad is no longer protected; had the batch flagged them, it would be."""
    ip, _, away = _abroad_ip()

    def run(flagged: bool) -> tuple[OnlineRisk, Engine]:
        accounts = {f"t{i}": Acct(created_at=T0 - DAY, declared_country=away) for i in range(31)}
        risk = OnlineRisk()
        eng = _engine(None, accounts, risk=risk)
        for i in range(30):
            _serve(eng, _ctx(f"t{i}", T0 + i, ip=ip))
        verdicts = {f"t{i}": AccountVerdict("flagged", None, 0.95) for i in range(30)} if flagged else {}
        eng.set_verdicts(VerdictSet(accounts=verdicts, until=_iso(T0 + 100)))
        return risk, eng

    risk, eng = run(False)
    assert risk.stats()["kinds"]["abroad"] == {"flagged": 0, "scanned": 30, "precision": 0.225}
    assert _serve(eng, _ctx("t30", T0 + 200, ip=ip)).action == Action.ALLOW
    risk, eng = run(True)
    assert risk.stats()["kinds"]["abroad"]["precision"] > 0.97
    assert Action.PROTECT in _serve(eng, _ctx("t30", T0 + 200, ip=ip)).actions


def test_risk_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="cohort kind"):
        OnlineRisk(cohort_kinds=("nope",))
    with pytest.raises(ValueError, match="cleared kind"):
        OnlineRisk(cleared_kinds=("nope",))
    with pytest.raises(ValueError):
        OnlineRisk(prior_precision=1.5)
    with pytest.raises(ValueError, match="model_at"):
        OnlineRisk(account_model=load_model(), model_at=1.0)
    with pytest.raises(ValueError, match="abroad_requests"):
        OnlineRisk(abroad_requests=-1)


def test_the_online_state_holds_at_most_max_accounts_and_forgets_the_least_recently_active() -> None:
    """In process (nothing shared): the bound holds, the account whose last request is oldest
    goes first, a forgotten account starts again as new, and the evidence it carried leaves
    the batch feedback with it (it is no longer counted, on either side)."""
    accounts = {f"a{i}": Acct(created_at=T0 - DAY) for i in range(4)}
    risk = OnlineRisk(max_accounts=2, account_model=load_model())
    eng = _engine(None, accounts, risk=risk)
    _agentic_session(eng, "a0", T0, 6, rotate_ips=True)  # the model term fires on a0
    _serve(eng, _ctx("a1", T0 + 300))
    _serve(eng, _ctx("a0", T0 + 400))  # a0 is now the more recently active
    assert risk.n_accounts == 2 and risk.forgotten == 0
    _serve(eng, _ctx("a2", T0 + 500))  # a third account: a1 (oldest last request) goes
    assert risk.n_accounts == 2 and risk.forgotten == 1
    assert risk.fleet_state("a1") is None and risk.fleet_state("a0") is not None
    _serve(eng, _ctx("a3", T0 + 600))  # now a0 goes, with the model term it carried
    assert risk.fleet_state("a0") is None and risk.forgotten == 2
    eng.set_verdicts(
        VerdictSet(accounts={"a0": AccountVerdict("flagged", None, 0.95)}, until="2026-02-03T00:00:00+00:00")
    )
    assert risk.stats()["kinds"]["model"]["flagged"] == 0  # a0 is not counted: it was forgotten
    _serve(eng, _ctx("a0", T0 + 700))
    state = risk.fleet_state("a0")
    assert state is not None and state.get()["n_requests"] == 1  # history gone in process
    assert risk.stats()["accounts_forgotten"] == 3  # a2 made room for a0
    with pytest.raises(ValueError, match="max_accounts"):
        OnlineRisk(max_accounts=0)


def _agentic_session(eng: Engine, account: str, t: float, n: int, *, rotate_ips: bool) -> list[Any]:
    """An agent loop: long, growing contexts for short answers, a reasoning model, seconds apart."""
    out = []
    for i in range(n):
        ip = f"203.0.{i}.9" if rotate_ips else "198.51.100.1"
        ctx = _ctx(
            account,
            t + 30 * i,
            ip=ip,
            i=i,
            input_tokens=20_000 + 2_000 * i,
            n_messages=10 + i,
            conversation_id=f"{account}-c1",
        )
        out.append(_serve(eng, ctx))
    return out


def test_the_account_model_protects_an_account_no_batch_run_has_judged_yet() -> None:
    accounts = {"new": Acct(created_at=T0 - DAY), "old": Acct(created_at=T0 - 400 * DAY)}
    eng = _engine(None, accounts, risk=OnlineRisk(account_model=load_model()))
    d = _agentic_session(eng, "new", T0, 6, rotate_ips=True)
    assert d[0].action == Action.ALLOW  # nothing known before the first exchange
    assert Action.PROTECT in d[-1].actions and "rule:online-risk" in d[-1].reasons
    reason = next(r for r in d[-1].reasons if r.startswith("model:"))
    head, prob = reason.split(":")[1:3]
    assert head == "agentic_extraction" and float(prob) >= 0.5
    # an account older than a billing cycle that no batch run has seen is a dormant one: the
    # next batch run reads its history, the term does not judge it
    assert _agentic_session(eng, "old", T0, 6, rotate_ips=True)[-1].action == Action.ALLOW
    # without the model the same traffic is served as is: the term, not something else, fired
    plain = _engine(None, accounts)
    assert _agentic_session(plain, "new", T0, 6, rotate_ips=True)[-1].action == Action.ALLOW
    # a batch run that has seen the account judges it from then on (it did not flag it)
    eng.set_verdicts(VerdictSet(until="2026-02-03T00:00:00+00:00"))
    later = _serve(eng, _ctx("new", T0 + DAY, ip="203.0.99.9", input_tokens=30_000, n_messages=30))
    assert later.action == Action.ALLOW and not any(r.startswith("model:") for r in later.reasons)


def test_the_account_model_term_is_worth_what_batch_verdicts_confirm() -> None:
    accounts = {f"a{i}": Acct(created_at=T0 - DAY) for i in range(30)}
    iso = "2026-02-03T00:00:00+00:00"

    def run(flagged: bool) -> OnlineRisk:
        risk = OnlineRisk(account_model=load_model())
        eng = _engine(None, accounts, risk=risk)
        for i in range(30):
            _agentic_session(eng, f"a{i}", T0 + 600 * i, 6, rotate_ips=True)
        verdicts = {f"a{i}": AccountVerdict("flagged", None, 0.95) for i in range(30)} if flagged else {}
        eng.set_verdicts(VerdictSet(accounts=verdicts, until=iso))
        return risk

    cleared, confirmed = run(False).stats()["kinds"]["model"], run(True).stats()["kinds"]["model"]
    assert cleared["scanned"] == confirmed["scanned"] == 30
    assert cleared["precision"] < 0.3 < 0.95 < confirmed["precision"]
    # a new account on which the cleared term fires is no longer protected by it
    risk = run(False)
    eng = _engine(None, {**accounts, "late": Acct(created_at=T0 - DAY)}, risk=risk)
    d = _agentic_session(eng, "late", T0 + 2 * DAY, 6, rotate_ips=True)[-1]
    assert d.action == Action.ALLOW
    value, reasons = risk.score_one(_ctx("late", T0 + 2 * DAY + 300), {})
    assert value < 0.3 and any(r.startswith("model:agentic_extraction") for r in reasons)


def test_ip_facts_fast_path_agrees_with_the_batch_enrichment() -> None:
    """The per-address lookup of a first-seen client IP gives exactly what the vectorised batch
    enrichment gives: prefix, ASN name, hosting flag and country, on addresses from everywhere."""
    import ipaddress
    import random

    from distillshield.gateway.engine import _IpCache

    cache = _IpCache(16)
    cache.warm()
    enricher = cache.enricher
    v4, v6 = enricher._table(False), enricher._table(True)
    hosting = enricher.lists.hosting_cidrs
    rng = random.Random(7)

    def inside(first: Any, last: Any, n: int) -> list[int]:
        out: list[int] = []
        for _ in range(n if len(first) else 0):
            k = rng.randrange(len(first))
            lo, hi = int(first[k]), int(last[k])
            out.append(rng.randint(lo, hi))
        return out

    ints4 = [rng.randrange(2**32) for _ in range(600)]
    ints4 += inside(v4.asn_first, v4.asn_last, 600)
    ints4 += inside(hosting.v4_start, hosting.v4_end, 150)
    ints4 += [0, 2**32 - 1, 0x7F000001, 0x0A000001, 0xC0A80101, 0x08080808]
    ints6 = [rng.randrange(2**125, 2**126) for _ in range(100)]  # 2000::/3 and around
    ints6 += inside(v6.asn_first, v6.asn_last, 500)
    ints6 += inside(hosting.v6_start, hosting.v6_end, 100)
    plain = [str(ipaddress.IPv4Address(i)) for i in ints4] + [str(ipaddress.IPv6Address(i)) for i in ints6]
    plain += ["::1", "::", "fe80::1", "2001:db8::1", "::1.2.3.4", "64:ff9b::808:808", "2001:DB8::A"]
    odd = ["::ffff:1.2.3.4", "1.2.3", "01.2.3.4", " 1.2.3.4", "1.2.3.4\n", "fe80::1%eth0", "x", ""]
    assert sum(1 for ip in plain if cache.lookup_batch(ip).asn) > 600  # not vacuous: most are named
    assert sum(1 for ip in plain if cache.lookup_batch(ip).country) > 600  # ... and placed
    assert any(cache.lookup_batch(ip).is_hosting for ip in plain)
    for ip in plain:
        fast = cache.lookup_one(ip)
        assert fast is not None, ip
        assert fast == cache.lookup_batch(ip), ip
    for ip in odd:  # not plain: the batch path answers (and the cache serves that)
        assert cache.lookup_one(ip) is None or cache.lookup_one(ip) == cache.lookup_batch(ip), ip
        assert cache.get(ip) == cache.lookup_batch(ip)
