"""Accounts without traffic named by the card or sign-up they share with flags (detect/dormant.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from _edges import edge_table
from distillshield.detect.dormant import Dormant, name_dormant, with_dormant

#: Accounts with traffic in the window: four of a farm (three flagged, in one campaign), a
#: company's two employees (one flagged), two customers of a card shop nobody flagged.
ACTIVE = pa.table(
    {
        "account_id": ["farm-1", "farm-2", "farm-3", "farm-4", "emp-1", "emp-2", "shop-1", "shop-2"],
        "flagged": [True, True, True, False, True, False, False, False],
        "campaign_id": ["cmp-a", "cmp-a", "cmp-b", None, None, None, None, None],
    }
)


def _named(
    rows: list[tuple[str, str, str]], organisation: dict[str, str] | None = None, min_flagged: int = 2
) -> dict[str, Dormant]:
    named = name_dormant(ACTIVE, edge_table(rows), organisation=organisation, min_flagged=min_flagged)
    return {d.account_id: d for d in named}


def test_a_registered_account_on_a_farm_card_is_named_with_its_evidence() -> None:
    farm_card = [("sleeper", f"farm-{i}", "payment") for i in (1, 2, 3, 4)]
    named = _named(farm_card)
    assert set(named) == {"sleeper"}
    d = named["sleeper"]
    assert (d.flagged_partners, d.active_partners) == (3, 4)
    assert d.score == pytest.approx((3 + 1) / (4 + 2))
    assert d.campaign_id == "cmp-a"  # two of its three flagged partners
    assert d.reason.startswith(
        "dormant: no request in the window; its card is shared with 3 flagged of the 4"
    )


def test_one_flag_or_no_majority_names_nobody() -> None:
    one = [("s", "farm-1", "payment"), ("s", "shop-1", "payment")]  # 1 of 2: a single flag is not enough
    half = [("s", "farm-1", "payment"), ("s", "farm-2", "payment")] + [
        ("s", x, "payment") for x in ("shop-1", "shop-2")
    ]  # 2 of 4: not a majority
    assert _named(one) == {} and _named(half) == {}
    assert set(_named(half, min_flagged=1)) == set()  # the majority still binds
    assert set(_named(one, min_flagged=1)) == set()
    with pytest.raises(ValueError, match="min_flagged"):
        _named(one, min_flagged=0)


def test_sign_ups_count_client_stacks_and_addresses_do_not() -> None:
    assert set(_named([("s", "farm-1", "signup"), ("s", "farm-2", "signup")])) == {"s"}
    reason = _named([("s", "farm-1", "signup"), ("s", "farm-2", "payment")])["s"].reason
    assert "card or sign-up is shared with 2 flagged" in reason
    # a stock SDK release or an address is not a registration fact (and never reaches an
    # account without traffic from the linking step): ignored
    assert _named([("s", "farm-1", "client"), ("s", "farm-2", "ip")]) == {}


def test_a_colleague_does_not_convict_and_accounts_with_traffic_are_not_named() -> None:
    company = [("new-hire", "emp-1", "payment"), ("new-hire", "farm-1", "payment")]
    org = {"new-hire": "example.com", "emp-1": "example.com"}
    assert set(_named(company)) == {"new-hire"}  # two flagged holders of two
    assert _named(company, organisation=org) == {}  # the flagged colleague does not count
    # farm-4 has traffic and was not flagged: the model judged it; the card does not overrule
    assert "farm-4" not in _named([("farm-4", f"farm-{i}", "payment") for i in (1, 2, 3)])


def test_with_dormant_adds_rows_and_members_and_keeps_the_dossier() -> None:
    accounts = pa.table(
        {
            "account_id": ["farm-1", "farm-2"],
            "score": [0.9, 0.8],
            "flagged": [True, True],
            "novelty": [0.1, 0.2],
            "top_reasons": [["a"], ["b"]],
            "held": [False, False],
            "campaign_id": ["cmp-a", "cmp-a"],
            "campaign_share": [1.0, 1.0],
        }
    )
    named = name_dormant(accounts, edge_table([("zz", "farm-1", "payment"), ("zz", "farm-2", "payment")]))
    lost = name_dormant(accounts, edge_table([("yy", "farm-1", "signup"), ("yy", "farm-2", "signup")]))
    campaign = {"id": "cmp-a", "accounts": ["farm-1", "farm-2"], "size": 2, "score": 0.85, "exchanges": 40}
    other = {"id": "cmp-c", "accounts": ["c-1", "c-2"], "size": 2, "score": 0.7, "exchanges": 9}
    out, campaigns = with_dormant(accounts, [campaign, other], named)
    assert out.schema == accounts.schema and out.num_rows == 3
    row = out.to_pylist()[2]
    assert row["account_id"] == "zz" and row["flagged"] and row["campaign_id"] == "cmp-a"
    assert row["score"] == pytest.approx(0.75) and row["novelty"] is None and row["held"] is False
    a, c = campaigns
    assert a["accounts"] == ["farm-1", "farm-2", "zz"] and a["size"] == 3 and a["dormant_accounts"] == ["zz"]
    assert a["score"] == 0.85 and a["exchanges"] == 40  # the dossier is its active members'
    assert a["summary"].startswith("2 linked accounts sent 40 requests")
    assert "1 more registered account shares their cards or sign-ups and sent nothing" in a["summary"]
    assert c["dormant_accounts"] == [] and c["size"] == 2 and "registered" not in c["summary"]
    assert campaign["size"] == 2  # the input is not modified
    # a named account whose campaign the scan did not build (a replay step without dossiers)
    out, _ = with_dormant(accounts, [], lost)
    assert out.to_pylist()[2]["campaign_id"] is None and out.to_pylist()[2]["flagged"]
    assert with_dormant(accounts, [], [])[0] is accounts
