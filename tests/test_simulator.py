"""The simulator: determinism, reconciliation, and persona distributions.

Distribution tests check what a detector will lean on: personas must differ where real
traffic differs and overlap where it overlaps (the hard negatives), so these tests assert
both directions.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from distillshield.errors import ScenarioError
from distillshield.schema import ACCOUNT_LABELS, ACCOUNTS, EXCHANGE_LABELS, EXCHANGES, read_table
from distillshield.simulate import load_scenario, simulate
from distillshield.simulate.text import estimate_tokens


def _con(data: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW ex AS SELECT * FROM read_parquet('{data}/exchanges/*.parquet')")
    con.execute(f"CREATE VIEW acc AS SELECT * FROM read_parquet('{data}/accounts.parquet')")
    con.execute(f"CREATE VIEW la AS SELECT * FROM read_parquet('{data}/labels/accounts.parquet')")
    con.execute(f"CREATE VIEW le AS SELECT * FROM read_parquet('{data}/labels/exchanges/*.parquet')")
    con.execute(
        "CREATE VIEW exl AS SELECT ex.*, la.persona, la.campaign_id AS acct_campaign "
        "FROM ex JOIN la USING (account_id)"
    )
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = con.execute(sql).fetchone()
    assert row is not None
    return float(row[0])


# ------------------------------------------------------------------------- determinism
def test_same_seed_same_data_and_other_seed_other_data(tmp_path: Path) -> None:
    sc = load_scenario("default")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(sc, a, scale=0.02)
    simulate(sc, b, scale=0.02)
    simulate(load_scenario("default", seed=8), c, scale=0.02)
    for spec in (EXCHANGES, ACCOUNTS, EXCHANGE_LABELS, ACCOUNT_LABELS):
        assert read_table(a, spec).equals(read_table(b, spec)), spec.name
    assert not read_table(a, EXCHANGES).equals(read_table(c, EXCHANGES))


# ------------------------------------------------------------------------- reconciliation
def test_counts_reconcile_and_keys_are_unique(small_dataset: Path) -> None:
    con = _con(small_dataset)
    manifest = json.loads((small_dataset / "manifest.json").read_text())
    n_ex = _one(con, "SELECT count(*) FROM ex")
    assert n_ex == manifest["exchanges"] > 20_000
    assert _one(con, "SELECT count(DISTINCT request_id) FROM ex") == n_ex
    assert _one(con, "SELECT count(*) FROM le JOIN ex USING (request_id)") == n_ex
    assert (
        _one(con, "SELECT count(*) FROM acc") == manifest["accounts"] == _one(con, "SELECT count(*) FROM la")
    )
    assert _one(con, "SELECT count(*) FROM ex ANTI JOIN acc USING (account_id)") == 0
    assert sum(v["exchanges"] for v in manifest["by_persona"].values()) == n_ex
    # the whole dataset conforms to the canonical schema (read_table validates it)
    assert read_table(small_dataset, EXCHANGES, columns=["request_id", "ts"]).num_rows == n_ex


def test_every_persona_and_campaign_is_present(small_dataset: Path) -> None:
    con = _con(small_dataset)
    personas = {r[0] for r in con.execute("SELECT DISTINCT persona FROM exl").fetchall()}
    assert {
        "legit.individual_developer",
        "legit.saas_backend",
        "legit.coding_agent_vendor",
        "legit.benchmark_researcher",
        "legit.university_class",
        "legit.corporate_vpn",
        "legit.reseller",
        "legit.enterprise_synthetic_data",
        "attack.cot_harvest",
        "attack.agentic_extraction",
        "attack.agentic_coding_pivot",
        "attack.hydra_reseller",
    } <= personas
    camps = {
        r[0]
        for r in con.execute("SELECT DISTINCT campaign_id FROM le WHERE campaign_id IS NOT NULL").fetchall()
    }
    assert camps == {"campaign-a", "campaign-b", "campaign-c", "campaign-d"}


def test_timestamps_inside_the_scenario_and_campaign_windows(small_dataset: Path) -> None:
    con = _con(small_dataset)
    lo, hi = con.execute("SELECT min(ts)::VARCHAR, max(ts)::VARCHAR FROM ex").fetchone()  # type: ignore[misc]
    assert str(lo).startswith("2026-02-02") and str(hi).startswith("2026-02-15")
    # campaign A runs from day 1 to day 9
    a_lo, a_hi = con.execute(
        "SELECT min(ts)::VARCHAR, max(ts)::VARCHAR FROM ex JOIN le USING (request_id) "
        "WHERE le.campaign_id='campaign-a'"
    ).fetchone()  # type: ignore[misc]
    assert str(a_lo) >= "2026-02-03" and str(a_hi) < "2026-02-11"


def test_hydra_accounts_mix_campaign_and_other_customers_traffic(small_dataset: Path) -> None:
    con = _con(small_dataset)
    share = _one(
        con,
        "SELECT avg(CASE WHEN le.campaign_id IS NULL THEN 1 ELSE 0 END) FROM exl "
        "JOIN le USING (request_id) WHERE persona='attack.hydra_reseller'",
    )
    assert 0.2 < share < 0.6
    # every other persona's exchange labels equal the account label
    assert (
        _one(
            con,
            "SELECT count(*) FROM exl JOIN le USING (request_id) WHERE persona<>'attack.hydra_reseller' "
            "AND le.campaign_id IS DISTINCT FROM exl.acct_campaign",
        )
        == 0
    )


# ------------------------------------------------------------------------- consistency
def test_tokens_are_consistent_with_text(small_dataset: Path) -> None:
    ex = read_table(
        small_dataset,
        EXCHANGES,
        columns=[
            "prompt",
            "response",
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "max_tokens",
            "status",
        ],
    )
    ok = np.asarray(ex.column("status").to_numpy() == 200)
    inp = ex.column("input_tokens").to_numpy()
    assert (inp >= estimate_tokens(ex.column("prompt"))).all()
    out = ex.column("output_tokens").to_numpy()
    rt = ex.column("reasoning_tokens").fill_null(0).to_numpy()
    visible = estimate_tokens(ex.column("response").fill_null(""))
    mt = ex.column("max_tokens").fill_null(2**31 - 1).to_numpy()
    untruncated = ok & (out < mt)
    assert np.array_equal(out[untruncated], (visible + rt)[untruncated])
    assert (out[~ok] == 0).all() and ex.filter(pa.array(~ok)).column("response").null_count == (~ok).sum()
    assert (out <= mt).all()


def test_reasoning_tokens_only_on_reasoning_models(small_dataset: Path) -> None:
    con = _con(small_dataset)
    assert (
        _one(con, "SELECT count(*) FROM ex WHERE model='atlas-2-mini' AND reasoning_tokens IS NOT NULL") == 0
    )
    assert _one(con, "SELECT count(*) FROM ex WHERE model='atlas-2' AND reasoning_tokens IS NULL") == 0


# ---------------------------------------------------------------- distinct where real traffic differs
def test_humans_hold_multi_turn_conversations_harvesters_do_not(small_dataset: Path) -> None:
    con = _con(small_dataset)
    multi = dict(
        con.execute(
            "SELECT persona, avg(CASE WHEN n_messages>1 THEN 1 ELSE 0 END) FROM exl GROUP BY 1"
        ).fetchall()
    )
    assert multi["legit.individual_developer"] > 0.4
    assert multi["attack.cot_harvest"] == 0.0
    assert multi["legit.coding_agent_vendor"] > 0.8


def test_campaign_accounts_are_younger_than_developers(small_dataset: Path) -> None:
    con = _con(small_dataset)
    age = dict(
        con.execute(
            "SELECT persona, median(date_diff('day', created_at, TIMESTAMPTZ '2026-02-02 00:00:00+00')) "
            "FROM acc JOIN la USING (account_id) GROUP BY 1"
        ).fetchall()
    )
    assert age["attack.cot_harvest"] < 60 < age["legit.individual_developer"]
    assert age["attack.agentic_coding_pivot"] < 60


def test_hydra_rotates_ips_and_its_egress_disagrees_with_declared_country(small_dataset: Path) -> None:
    from distillshield.simulate.network import AddressSpace

    con = _con(small_dataset)
    ips_per_req = dict(
        con.execute(
            "SELECT persona, avg(n_ip / n) FROM (SELECT persona, account_id, "
            "count(DISTINCT ip) n_ip, count(*) n "
            "FROM exl GROUP BY 1, 2 HAVING count(*) >= 3) GROUP BY 1"
        ).fetchall()
    )
    assert ips_per_req["attack.hydra_reseller"] > 0.8 > ips_per_req["legit.individual_developer"]
    rows = con.execute(
        "SELECT persona, ip, declared_country FROM exl JOIN acc USING (account_id) "
        "WHERE persona IN ('attack.hydra_reseller','legit.individual_developer') "
        "USING SAMPLE 1500 ROWS (reservoir, 1)"
    ).fetchall()
    space = AddressSpace()
    mismatch: dict[str, list[bool]] = {}
    for persona, ip, declared in rows:
        mismatch.setdefault(persona, []).append(space.lookup(ip)[0] != declared)
    assert (
        np.mean(mismatch["attack.hydra_reseller"])
        > 0.5
        > 0.25
        > np.mean(mismatch["legit.individual_developer"])
    )


def test_load_balanced_campaign_is_synchronised(small_dataset: Path) -> None:
    """Per-10-minute activity of campaign A's accounts correlates far more than developers'."""
    con = _con(small_dataset)

    def mean_pairwise_corr(persona: str) -> float:
        rows = con.execute(
            "SELECT account_id, CAST(epoch(ts) // 600 AS BIGINT) b, count(*) FROM exl WHERE persona=? "
            "AND ts < TIMESTAMPTZ '2026-02-09 00:00:00+00' AND ts >= TIMESTAMPTZ '2026-02-04 00:00:00+00' "
            "GROUP BY 1, 2",
            [persona],
        ).fetchall()
        accts = sorted({r[0] for r in rows})
        buckets = sorted({r[1] for r in rows})
        bi = {b: i for i, b in enumerate(range(min(buckets), max(buckets) + 1))}
        m = np.zeros((len(accts), len(bi)))
        ai = {a: i for i, a in enumerate(accts)}
        for a, b, c in rows:
            m[ai[a], bi[b]] = c
        m = m[m.sum(axis=1) >= 20][:40]
        c = np.corrcoef(m)
        return float(np.nanmean(c[np.triu_indices(len(c), 1)]))

    assert mean_pairwise_corr("attack.cot_harvest") > 2 * max(
        0.05, mean_pairwise_corr("legit.individual_developer")
    )


def test_campaign_c_pivots_half_its_traffic_to_the_new_model_within_a_day(small_dataset: Path) -> None:
    con = _con(small_dataset)
    share = dict(
        con.execute(
            "SELECT persona, avg(CASE WHEN model='atlas-3' THEN 1 ELSE 0 END) FROM exl "
            "WHERE ts >= TIMESTAMPTZ '2026-02-10 17:00:00+00' AND ts < TIMESTAMPTZ '2026-02-11 17:00:00+00' "
            "GROUP BY 1"
        ).fetchall()
    )
    assert 0.35 < share["attack.agentic_coding_pivot"] < 0.65
    assert share["legit.individual_developer"] < 0.3
    assert share["legit.saas_backend"] < 0.3
    # before the release nobody uses it
    assert (
        _one(
            con, "SELECT count(*) FROM ex WHERE model='atlas-3' AND ts < TIMESTAMPTZ '2026-02-09 17:00:00+00'"
        )
        == 0
    )


def test_staff_metadata_only_in_campaign_b(small_dataset: Path) -> None:
    con = _con(small_dataset)
    rows = dict(
        con.execute(
            "SELECT persona, count(*) FROM exl WHERE metadata LIKE '%zhangq-dev%' "
            "OR metadata LIKE '%lw.eval%' GROUP BY 1"
        ).fetchall()
    )
    assert set(rows) == {"attack.agentic_extraction"}


def test_shared_tags_are_generic_and_change_nothing_else(tmp_path: Path) -> None:
    """``shared_tag_share``: generic tags (simulate.persona.SHARED_TAGS) on a share of a
    persona's accounts, each held by many unrelated accounts, joined into any metadata already
    sent (valid JSON); drawn apart from everything else, so every other column is identical."""
    from distillshield.simulate.persona import SHARED_TAGS

    sc = load_scenario("default")
    with_tags = sc.model_copy(
        update={
            "legitimate": [
                pop.model_copy(update={"params": {**pop.params, "shared_tag_share": share}})
                if (share := {"individual_developer": 0.5, "saas_backend": 1.0}.get(pop.persona))
                else pop
                for pop in sc.legitimate
            ]
        }
    )
    plain, tagged = tmp_path / "plain", tmp_path / "tagged"
    simulate(sc, plain, scale=0.05)
    simulate(with_tags, tagged, scale=0.05)
    a, b = read_table(plain, EXCHANGES), read_table(tagged, EXCHANGES)
    for name in a.column_names:
        if name != "metadata":
            assert a.column(name).equals(b.column(name)), name
    con = _con(tagged)
    pairs = [t for t, _ in SHARED_TAGS]
    holders = dict(
        con.execute(
            "SELECT t, count(DISTINCT account_id) FROM exl, unnest(?::VARCHAR[]) AS u(t) "
            "WHERE contains(metadata, t) GROUP BY t",
            [pairs],
        ).fetchall()
    )
    assert max(holders.values()) >= 10  # a popular tag joins many strangers
    personas = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT persona FROM exl, unnest(?::VARCHAR[]) AS u(t) WHERE contains(metadata, t)",
            [pairs],
        ).fetchall()
    }
    assert personas == {"legit.individual_developer", "legit.saas_backend"}
    # a SaaS request that forwards an end-user id carries both, as one JSON object
    both = con.execute(
        "SELECT metadata FROM exl WHERE persona = 'legit.saas_backend' AND metadata LIKE '%\"user\"%' "
        "AND metadata LIKE '%, %' LIMIT 50"
    ).fetchall()
    assert both
    for (m,) in both:
        obj = json.loads(m)
        assert "user" in obj and len(obj) == 2
    # untagged requests keep their metadata exactly
    same = _one(
        con,
        f"SELECT count(*) FROM read_parquet('{plain}/exchanges/*.parquet') p JOIN ex USING (request_id) "
        "WHERE p.metadata IS NOT DISTINCT FROM ex.metadata",
    )
    assert 0 < same < b.num_rows


# ---------------------------------------------------------------- overlap where real traffic overlaps
def test_an_operator_with_no_servers_signs_up_from_its_own_exits(tmp_path: Path) -> None:
    """``servers: 0`` (campaign A; bench/scenarios/evasive-4.yaml): no server of the
    operator's in any account's addresses, so no two accounts sign up from one address;
    with the default four servers most of them do."""
    sc = load_scenario("default")
    own = sc.model_copy(
        update={
            "campaigns": [
                c.model_copy(update={"params": {**c.params, "servers": 0}}) if c.id == "campaign-a" else c
                for c in sc.campaigns
            ]
        }
    )
    shared = (
        "SELECT count(*) FROM (SELECT signup_ip FROM acc JOIN la USING (account_id) "
        "WHERE campaign_id = 'campaign-a' GROUP BY 1 HAVING count(*) > 1)"
    )
    simulate(own, tmp_path / "own", scale=0.1)
    simulate(sc, tmp_path / "servers", scale=0.1)
    assert _one(_con(tmp_path / "own"), shared) == 0
    assert _one(_con(tmp_path / "servers"), shared) > 0


def test_hard_negatives_share_campaign_traits(small_dataset: Path) -> None:
    con = _con(small_dataset)
    # a class shares a campus NAT like a hydra cluster shares proxies
    class_share = _one(
        con,
        "SELECT max(n) FROM (SELECT ip, count(DISTINCT account_id) n FROM exl "
        "WHERE persona='legit.university_class' GROUP BY ip)",
    )
    assert class_share >= 5
    # class accounts are as new as campaign accounts
    assert (
        _one(
            con,
            "SELECT median(date_diff('day', created_at, TIMESTAMPTZ '2026-02-02 00:00:00+00')) "
            "FROM acc JOIN la USING (account_id) WHERE persona='legit.university_class'",
        )
        < 60
    )
    # coding-agent vendors offer tools like campaign C and also move to the new model quickly
    tools = dict(
        con.execute(
            "SELECT persona, avg(CASE WHEN tools IS NOT NULL THEN 1 ELSE 0 END) FROM exl GROUP BY 1"
        ).fetchall()
    )
    assert tools["legit.coding_agent_vendor"] > 0.8 and tools["attack.agentic_coding_pivot"] > 0.8
    # benchmark researchers ask for step-by-step reasoning like a chain-of-thought harvester
    sbs = dict(
        con.execute(
            "SELECT persona, avg(CASE WHEN lower(prompt) LIKE '%step by step%' OR "
            "lower(prompt) LIKE '%step-by-step%' THEN 1 ELSE 0 END) FROM exl GROUP BY 1"
        ).fetchall()
    )
    assert sbs["legit.benchmark_researcher"] > 0.3 and sbs["attack.cot_harvest"] > 0.2
    assert sbs["legit.individual_developer"] < 0.1


def test_volume_alone_does_not_separate(small_dataset: Path) -> None:
    """Some legitimate accounts out-send the median campaign account; many campaign accounts are light."""
    con = _con(small_dataset)
    per = con.execute("SELECT acct_campaign IS NOT NULL, count(*) FROM exl GROUP BY account_id, 1").fetchall()
    legit = np.array([n for bad, n in per if not bad])
    bad = np.array([n for b, n in per if b])
    assert (legit > np.median(bad)).sum() >= 10
    assert np.quantile(bad, 0.25) < np.quantile(legit, 0.9)


def test_heavy_tailed_volume_and_daytime_rhythm_for_developers(small_dataset: Path) -> None:
    con = _con(small_dataset)
    vol = np.sort(
        [
            r[0]
            for r in con.execute(
                "SELECT count(*) FROM exl WHERE persona='legit.individual_developer' GROUP BY account_id"
            ).fetchall()
        ]
    )[::-1]
    assert vol[: max(1, len(vol) // 10)].sum() / vol.sum() > 0.3
    # local night (0-6h in the declared country's zone) is quiet
    from distillshield.simulate.geo import TZ

    rows = con.execute(
        "SELECT hour(ts), declared_country FROM exl JOIN acc USING (account_id) "
        "WHERE persona='legit.individual_developer'"
    ).fetchall()
    local = np.array([(h + TZ.get(c, 0.0)) % 24 for h, c in rows])
    assert np.mean(local < 6) < 0.15


# ------------------------------------------------------------------------- scenarios
def test_scaled_scenario_and_errors(tmp_path: Path) -> None:
    sc = load_scenario("default")
    half = sc.scaled(0.5)
    assert half.campaigns[0].exchanges == sc.campaigns[0].exchanges // 2
    with pytest.raises(ScenarioError, match="unknown scenario"):
        load_scenario("no-such-scenario")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nstart: 2026-01-01\ndays: 3\nmodels: [{name: m, released_at: 2025-01-01}]\nbogus: 1\n"
    )
    with pytest.raises(ScenarioError, match="bogus"):
        load_scenario(bad)
    typo_pop = sc.legitimate[0].model_copy(update={"params": {"sesions": 2}})
    typo = sc.model_copy(update={"legitimate": [typo_pop]})
    with pytest.raises(ScenarioError, match=r"unknown param\(s\) \['sesions'\]"):
        simulate(typo, tmp_path / "typo", scale=0.01)
    with pytest.raises(ScenarioError, match="not empty"):
        out = tmp_path / "o"
        out.mkdir()
        (out / "f").write_text("x")
        simulate(sc, out, scale=0.01)


def test_content_free_scenario_has_no_text(tmp_path: Path) -> None:
    sc = load_scenario("default").model_copy(update={"content": "none"})
    simulate(sc, tmp_path / "d", scale=0.01)
    ex = read_table(
        tmp_path / "d", EXCHANGES, columns=["prompt", "response", "system_prompt", "input_tokens"]
    )
    assert ex.column("prompt").null_count == ex.num_rows == ex.column("response").null_count
    assert ex.column("system_prompt").null_count == ex.num_rows
    assert min(ex.column("input_tokens").to_pylist()) > 0


@pytest.mark.corpus
def test_corpus_mode_draws_real_prompts(tmp_path: Path, prompts_corpus: Path) -> None:
    """With --corpus, math problems come from GSM8K and chat from real assistant logs."""
    import gzip

    questions = [
        json.loads(line)["question"] for line in (prompts_corpus / "capability" / "gsm8k_test.jsonl").open()
    ]
    with gzip.open(prompts_corpus / "legit" / "hh_rlhf_helpful_base_test.jsonl.gz", "rt") as fh:
        first_turns = [
            json.loads(line)["chosen"].split("\n\nHuman: ")[1].split("\n\nAssistant:")[0] for line in fh
        ]
    simulate(load_scenario("default"), tmp_path / "d", scale=0.02, corpus=prompts_corpus)
    con = _con(tmp_path / "d")
    bench = [
        r[0]
        for r in con.execute(
            "SELECT prompt FROM exl WHERE persona='legit.benchmark_researcher' "
            "AND prompt LIKE '%step by step%' LIMIT 200"
        ).fetchall()
    ]
    assert bench and sum(any(q[:60] in p for q in questions[:1319]) for p in bench[:50]) >= 25
    chat = [
        r[0]
        for r in con.execute(
            "SELECT prompt FROM exl WHERE persona='legit.individual_developer' AND n_messages=1 LIMIT 300"
        ).fetchall()
    ]
    hits = sum(any(t[:40] in p for t in first_turns if len(t) > 40) for p in chat[:100])
    assert hits >= 5
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["corpus"] == str(prompts_corpus)
