"""Several providers seeing the same operators: ``Scenario.provider``.

Two simulations with the same seed and different providers have nothing in common but the
campaign operators: disjoint accounts, requests, e-mail hashes, payment fingerprints and
legitimate customers, and the same operator infrastructure (servers, proxy pools, client
harnesses), staff metadata and prompt templates. Without a provider nothing changes (the
single-provider outputs are byte-identical to before the field existed).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from distillshield.errors import ScenarioError
from distillshield.simulate import load_scenario, simulate

SCALE = 0.05


def _sim(tmp: Path, name: str, provider: str | None, **update: object) -> Path:
    sc = load_scenario("default").model_copy(update={"provider": provider, **update})
    out = tmp / name
    simulate(sc, out, scale=SCALE)
    return out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("providers")
    base = load_scenario("default")
    renamed = [c.model_copy(update={"id": f"b-{c.id}"}) for c in base.campaigns]
    return {
        "A": _sim(tmp, "A", "provider-a"),
        "B": _sim(tmp, "B", "provider-b"),
        "B_renamed": _sim(tmp, "B_renamed", "provider-b", campaigns=renamed),
    }


def _q(sql: str) -> list[tuple[object, ...]]:
    return duckdb.connect().execute(sql).fetchall()


def _values(data: Path, column: str, *, campaign: str | None, legit: bool = False) -> set[str]:
    """Distinct ``column`` values of the exchanges of one campaign's (or all legitimate) accounts."""
    where = "l.campaign_id IS NULL" if legit else f"l.campaign_id LIKE '%{campaign}'"
    rows = _q(
        f"SELECT DISTINCT e.{column} FROM read_parquet('{data}/exchanges/*.parquet') e "
        f"JOIN read_parquet('{data}/labels/accounts.parquet') l USING (account_id) "
        f"WHERE {where} AND e.{column} IS NOT NULL"
    )
    return {str(r[0]) for r in rows}


def _accounts(data: Path, column: str = "account_id") -> set[str]:
    return {str(r[0]) for r in _q(f"SELECT {column} FROM read_parquet('{data}/accounts.parquet')")}


def test_same_provider_same_data(worlds: dict[str, Path], small_dataset: Path, tmp_path: Path) -> None:
    sc = load_scenario("default").model_copy(update={"provider": "provider-a"})
    simulate(sc, tmp_path / "1", scale=0.01)
    simulate(sc, tmp_path / "2", scale=0.01)
    parts = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*.parquet"))
    assert len(parts) > 3
    for path in parts:
        assert (tmp_path / "1" / path).read_bytes() == (tmp_path / "2" / path).read_bytes(), path
    assert json.loads((worlds["A"] / "scenario.json").read_text())["provider"] == "provider-a"
    # single-provider output is unchanged: no provider key, and other account ids
    assert "provider" not in json.loads((small_dataset / "scenario.json").read_text())
    assert not _accounts(worlds["A"]) & _accounts(small_dataset)


def test_providers_share_no_account_request_or_customer(worlds: dict[str, Path]) -> None:
    a, b = worlds["A"], worlds["B"]
    assert _accounts(a) and not _accounts(a) & _accounts(b)
    for col in ("email_hash", "payment_fingerprint", "org_id"):
        assert not (_accounts(a, col) - {"None"}) & (_accounts(b, col) - {"None"}), col
    req = "SELECT request_id FROM read_parquet('{}/exchanges/*.parquet')"
    assert not {r[0] for r in _q(req.format(a))} & {r[0] for r in _q(req.format(b))}
    # legitimate customers are other people on other networks
    legit_a, legit_b = (
        _values(a, "ip", campaign=None, legit=True),
        _values(b, "ip", campaign=None, legit=True),
    )
    assert len(legit_a & legit_b) <= 0.02 * min(len(legit_a), len(legit_b))
    # the same number of accounts per population and campaign (same scenario, same scale)
    counts = "SELECT persona, count(*) FROM read_parquet('{}/labels/accounts.parquet') GROUP BY 1 ORDER BY 1"
    assert _q(counts.format(a)) == _q(counts.format(b))


def test_operators_bring_the_same_infrastructure_to_every_provider(worlds: dict[str, Path]) -> None:
    a, b = worlds["A"], worlds["B"]
    # campaign C runs from the operator's cloud server pools: all of them at both providers
    assert _values(a, "ip", campaign="campaign-c") == _values(b, "ip", campaign="campaign-c")
    # campaign D rotates through the same proxy exits (a sample of them per provider)
    ips_a, ips_b = _values(a, "ip", campaign="campaign-d"), _values(b, "ip", campaign="campaign-d")
    assert len(ips_a & ips_b) >= 0.5 * min(len(ips_a), len(ips_b))
    # campaign A: the operator's own servers leak through at both (its proxies are per account)
    assert _values(a, "ip", campaign="campaign-a") & _values(b, "ip", campaign="campaign-a")
    # campaign B: accounts bring their own networks, but the staff metadata is the operator's
    assert not _values(a, "ip", campaign="campaign-b") & _values(b, "ip", campaign="campaign-b")
    meta_b = _values(b, "metadata", campaign="campaign-b")
    assert meta_b and meta_b <= _values(a, "metadata", campaign="campaign-b")
    for c in ("campaign-a", "campaign-b", "campaign-c", "campaign-d"):
        # the operator's client harnesses (each account uses one of them at either provider)
        assert _values(a, "tls_fingerprint", campaign=c) & _values(b, "tls_fingerprint", campaign=c), c
        assert _values(a, "user_agent", campaign=c) & _values(b, "user_agent", campaign=c), c


def _templates(data: Path) -> dict[str, set[int]]:
    rows = _q(
        f"SELECT DISTINCT campaign_id, template_id FROM read_parquet('{data}/labels/exchanges/*.parquet') "
        "WHERE campaign_id IS NOT NULL AND template_id IS NOT NULL"
    )
    out: dict[str, set[int]] = {}
    for cid, tid in rows:
        out.setdefault(str(cid).removeprefix("b-"), set()).add(int(str(tid)))
    return out


def test_templates_follow_the_operator_not_the_campaign_name(worlds: dict[str, Path]) -> None:
    a, b, renamed = _templates(worlds["A"]), _templates(worlds["B"]), _templates(worlds["B_renamed"])
    assert set(a) == {"campaign-a", "campaign-b", "campaign-c", "campaign-d"}
    for c in a:
        # each run samples the operator's template frames; the samples overlap widely
        assert len(a[c] & b[c]) >= 0.5 * min(len(a[c]), len(b[c])), c
        assert len(b[c] & renamed[c]) >= 0.5 * min(len(b[c]), len(renamed[c])), c
    # and renaming the campaigns changes nothing of the operator's infrastructure
    assert _values(worlds["B"], "ip", campaign="campaign-c") == _values(
        worlds["B_renamed"], "ip", campaign="campaign-c"
    )


def test_provider_name_is_validated() -> None:
    with pytest.raises(ValueError):
        load_scenario("default").model_validate({**load_scenario("default").model_dump(), "provider": "a b"})


def test_provider_in_a_scenario_file(tmp_path: Path) -> None:
    text = (
        Path(__file__).resolve().parents[1] / "src/distillshield/simulate/scenarios/default.yaml"
    ).read_text()
    path = tmp_path / "p.yaml"
    path.write_text(text + "\nprovider: peer-1\n")
    assert load_scenario(path).provider == "peer-1"
    path.write_text(text + "\nprovider: ''\n")
    with pytest.raises(ScenarioError, match="provider"):
        load_scenario(path)
