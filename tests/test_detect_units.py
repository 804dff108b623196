"""Detection building blocks on hand-built inputs: design matrix, model, novelty, graph, clustering."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from _edges import edge_table
from distillshield.backends import get_backend
from distillshield.detect import AccountModel, load_model
from distillshield.detect.campaigns import MERGE_MIN_EDGES, _cluster, campaign_id_for
from distillshield.detect.design import (
    FEATURES,
    HEAD_DIRECTIONS,
    PSEUDO_REQUESTS,
    Feature,
    design_matrix,
    design_row,
    feature_names,
    head_features,
)
from distillshield.detect.graph import graph_features
from distillshield.detect.neighbours import PEER_COLUMN, SHARED_COLUMN, peer_scores, score_with_peers
from distillshield.detect.novelty import novelty_scores
from distillshield.detect.reasons import top_reasons
from distillshield.errors import DistillShieldError

# ----------------------------------------------------------------------------------- design


def test_shares_are_shrunk_towards_their_prior_for_small_accounts() -> None:
    feats = (
        Feature("reasoning_share", "reasoning_share", prior=0.0),
        Feature("declared_country_share", "declared_country_share", fill=1.0, prior=1.0),
        Feature("log_requests", "n_requests", "log1p"),
    )
    t = pa.table(
        {
            "n_requests": [1, 1000, None],
            "reasoning_share": [1.0, 1.0, None],
            "declared_country_share": [0.0, 0.0, None],
        }
    )
    x = design_matrix(t, feats)
    a = PSEUDO_REQUESTS
    assert x[0, 0] == pytest.approx(1.0 / (1.0 + a))  # one odd request is weak evidence
    assert x[1, 0] == pytest.approx(1000.0 / (1000.0 + a))  # a thousand are not
    assert x[0, 1] == pytest.approx(a / (1.0 + a))  # shrunk towards "at home"
    assert x[2, 0] == 0.0 and x[2, 1] == 1.0  # null = the prior, no NaN
    assert x[1, 2] == pytest.approx(math.log1p(1000))
    assert not np.isnan(x).any()


def test_onehot_bool_and_missing_column() -> None:
    feats = (
        Feature("d", "email_domain_class", "onehot", value="disposable"),
        Feature("v", "verified", "bool"),
    )
    t = pa.table({"email_domain_class": ["disposable", "corporate", None], "verified": [True, False, None]})
    assert design_matrix(t, feats).tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(KeyError, match="needs column"):
        design_matrix(pa.table({"x": [1]}), feats)


def _random_fingerprints(rng: np.random.Generator, rows: int) -> pa.Table:
    """Every column the model reads, with nulls, zeros, negatives and non-finite values."""
    cols: dict[str, Any] = {}
    for f in FEATURES:
        if f.column in cols:
            continue
        if f.transform == "onehot":
            pool = ["disposable", "corporate", "free", None]
            cols[f.column] = [pool[int(i)] for i in rng.integers(0, 4, rows)]
        elif f.transform == "bool":
            cols[f.column] = [None if u < 0.2 else bool(u < 0.6) for u in rng.random(rows)]
        else:
            vals = rng.lognormal(1.0, 2.0, rows) * rng.choice([1.0, -1.0, 0.0], rows, p=[0.8, 0.1, 0.1])
            vals[rng.random(rows) < 0.05] = np.inf
            cols[f.column] = [
                None if u < 0.2 else float(v) for u, v in zip(rng.random(rows), vals, strict=True)
            ]
    return pa.table(cols)


def test_design_row_is_the_design_matrix_row_of_the_same_record() -> None:
    t = _random_fingerprints(np.random.default_rng(7), 200)
    x = design_matrix(t)
    for i, rec in enumerate(t.to_pylist()):
        assert design_row(rec).tolist() == pytest.approx(x[i].tolist(), rel=1e-12, abs=1e-12)


def test_design_row_reads_an_absent_column_as_unknown_and_the_model_as_its_mean() -> None:
    rec = _random_fingerprints(np.random.default_rng(8), 1).to_pylist()[0]
    graph = [f for f in FEATURES if f.column.startswith("deg_")]
    partial = {k: v for k, v in rec.items() if k not in {f.column for f in graph}}
    row = design_row(partial)
    gone = [i for i, f in enumerate(FEATURES) if f in graph]
    assert np.isnan(row[gone]).all() and not np.isnan(np.delete(row, gone)).any()
    model = load_model()
    prob, contrib, win = model.explain_row(row)
    at_mean = row.copy()
    at_mean[gone] = np.asarray(model.mean)[gone]
    p2, c2, w2 = model.explain(at_mean.reshape(1, -1))
    assert prob == p2[0] and win == w2[0] and contrib.tolist() == c2[0].tolist()
    assert (contrib[gone] == 0.0).all()  # an unknown input moves no head


def test_one_row_scoring_is_the_batch_arithmetic_on_arrays_built_once() -> None:
    """Scoring reads mean, scale and weights as arrays built once per model (the gateway
    scores one row per request); ``explain_row`` gives ``explain``'s bits; a caller cannot
    write into the arrays, and a model derived with ``dataclasses.replace`` builds its own
    rather than reading a stale copy."""
    import dataclasses

    model = load_model()
    mean, scale, w, b = model._arrays
    assert model._arrays[0] is mean  # built once
    assert mean.tolist() == list(model.mean) and scale.tolist() == list(model.scale)
    assert [tuple(r) for r in w.tolist()] == [tuple(h.coef) for h in model.heads]
    assert b.tolist() == [h.intercept for h in model.heads]
    with pytest.raises(ValueError):
        mean[0] = 0.0
    # the one-row path is the batch path's arithmetic: the same bits, unknown inputs included
    rng = np.random.default_rng(7)
    for _ in range(300):
        row = mean + rng.normal(size=mean.size) * scale * rng.choice([0.5, 2.0, 10.0])
        row[rng.random(mean.size) < 0.3] = np.nan
        prob, contrib, win = model.explain_row(row)
        p2, c2, w2 = model.explain(np.where(np.isnan(row), mean, row).reshape(1, -1))
        assert prob == p2[0] and win == w2[0] and np.array_equal(contrib, c2[0])
    shifted = dataclasses.replace(model, mean=tuple(m + 1.0 for m in model.mean))
    assert shifted._arrays[0].tolist() == [m + 1.0 for m in model.mean]
    x = np.asarray(model.mean).reshape(1, -1)
    assert shifted.predict_proba(x)[0] != model.predict_proba(x)[0]


def test_every_feature_declares_a_valid_direction() -> None:
    assert len(set(feature_names())) == len(FEATURES)
    assert all(f.direction in (-1, 0, 1) for f in FEATURES)
    assert not any(f.column == "pathway" for f in FEATURES)  # a programme is not evidence
    assert not any(f.column.startswith("component_") for f in FEATURES)  # percolates at scale


# ----------------------------------------------------------------------------------- model


def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[Feature, ...]]:
    rng = np.random.default_rng(seed)
    n = 400
    y = (rng.random(n) < 0.3).astype(np.int64)
    good = y * 2.0 + rng.normal(0, 1, n)  # truly positive evidence
    wrong_sign = -y * 1.5 + rng.normal(0, 1, n)  # data says "less is suspicious", declared +1
    free = y * -1.0 + rng.normal(0, 1, n)
    x = np.column_stack([good, wrong_sign, free])
    feats = (
        Feature("good", "good", direction=+1),
        Feature("bad", "bad", direction=+1),
        Feature("free", "free"),
    )
    return x, y, feats


def test_fit_respects_declared_directions_and_separates() -> None:
    x, y, feats = _toy()
    m = AccountModel.fit(x, y, features=feats, c=1.0)
    assert m.head_names == ("campaign",)  # no tactics: one head
    coef = m.heads[0].coef
    assert coef[0] > 0.5
    assert coef[1] == pytest.approx(0.0, abs=1e-9)  # clamped at the bound, not negative
    assert coef[2] < 0  # free to go either way
    p = m.predict_proba(x)
    assert ((p >= 0.5) == (y == 1)).mean() > 0.85


def test_contributions_sum_to_the_logit() -> None:
    x, y, feats = _toy(1)
    m = AccountModel.fit(x, y, features=feats)
    logit = m.contributions(x).sum(axis=1) + m.heads[0].intercept
    assert np.allclose(1 / (1 + np.exp(-logit)), m.predict_proba(x))


def _two_tactics(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[Feature, ...]]:
    """Two tactics whose evidence points in opposite directions on a free feature ("ratio":
    long answers to short prompts vs long contexts for short answers) and share a directed
    one ("young")."""
    rng = np.random.default_rng(seed)
    n = 600
    kind = rng.choice(["legit", "harvest", "agent"], n, p=[0.6, 0.2, 0.2])
    ratio = np.where(kind == "harvest", 2.0, np.where(kind == "agent", -2.0, 0.0)) + rng.normal(0, 0.7, n)
    young = np.where(kind == "legit", 0.0, 1.0) + rng.normal(0, 1.0, n)
    x = np.column_stack([ratio, young])
    y = (kind != "legit").astype(np.int64)
    tactics = np.where(kind == "legit", None, kind).astype(object)
    return x, y, tactics, (Feature("ratio", "ratio"), Feature("young", "young", direction=+1))


def test_one_head_per_tactic_separates_what_one_regression_cannot() -> None:
    """Opposite evidence on one feature: a single regression cannot use it (it sits between
    the tactics), one head per tactic can; the probability is the most confident head's and
    the contributions are that head's, summing to its logit."""
    x, y, tactics, feats = _two_tactics()
    single = AccountModel.fit(x, y, features=feats, c=1.0)
    heads = AccountModel.fit(x, y, tactics=tactics, features=feats, c=1.0)
    assert heads.head_names == ("agent", "harvest")
    agent, harvest = heads.heads
    assert agent.coef[0] < 0 < harvest.coef[0]
    assert agent.coef[1] >= 0 and harvest.coef[1] >= 0  # declared direction holds in every head
    acc_single = ((single.predict_proba(x) >= 0.5) == (y == 1)).mean()
    acc_heads = ((heads.predict_proba(x) >= 0.5) == (y == 1)).mean()
    assert acc_heads > acc_single + 0.1
    logits = heads.logits(x)
    win = heads.winning_heads(x)
    assert np.array_equal(win, logits.argmax(axis=1))
    assert np.allclose(heads.predict_proba(x), 1 / (1 + np.exp(-logits.max(axis=1))))
    intercepts = np.array([h.intercept for h in heads.heads])[win]
    assert np.allclose(heads.contributions(x).sum(axis=1) + intercepts, logits.max(axis=1))
    # on the rows a head wins, it is the tactic that produced them more often than not
    for i, name in enumerate(heads.head_names):
        won = (win == i) & (y == 1)
        assert (tactics[won] == name).mean() > 0.9


def test_fit_with_tactics_refuses_unnamed_campaign_rows() -> None:
    x, y, tactics, feats = _two_tactics(1)
    tactics = tactics.copy()
    tactics[np.flatnonzero(y == 1)[0]] = None
    with pytest.raises(DistillShieldError, match="needs a tactic"):
        AccountModel.fit(x, y, tactics=tactics, features=feats)
    with pytest.raises(DistillShieldError, match="tactics for"):
        AccountModel.fit(x, y, tactics=tactics[:-1], features=feats)


def test_a_head_may_override_a_declared_direction() -> None:
    """ "young" is declared +1; an exception for the agent head lets its data say "older is
    more suspicious" there, and only there; a typo in the exception is an error."""
    x, y, tactics, feats = _two_tactics(2)
    older_agents = np.where(tactics == "agent", -3.0, 0.0)
    x = x.copy()
    x[:, 1] += np.where(y == 1, older_agents, 0.0)
    plain = AccountModel.fit(x, y, tactics=tactics, features=feats, c=1.0)
    freed = AccountModel.fit(
        x, y, tactics=tactics, features=feats, c=1.0, head_directions={"agent": {"young": 0}}
    )
    assert plain.heads[0].coef[1] == pytest.approx(0.0, abs=1e-9)  # clamped by the declared sign
    assert freed.heads[0].coef[1] < -0.5  # the agent head reads it the other way
    assert freed.heads[1].coef == plain.heads[1].coef  # the other head is unchanged
    with pytest.raises(DistillShieldError, match="unknown features"):
        AccountModel.fit(x, y, tactics=tactics, features=feats, head_directions={"agent": {"yuong": 0}})
    with pytest.raises(DistillShieldError, match="must be -1, 0 or 1"):
        AccountModel.fit(x, y, tactics=tactics, features=feats, head_directions={"agent": {"young": 2}})


def test_the_shipped_head_directions_name_real_features_and_heads() -> None:
    assert set(HEAD_DIRECTIONS) <= set(load_model().head_names)
    for head in HEAD_DIRECTIONS:
        lifted = {f.name: f.direction for f in head_features(head)}
        assert all(lifted[n] == d for n, d in HEAD_DIRECTIONS[head].items())
    assert head_features("no-such-head") == FEATURES


def test_fit_with_peers_refuses_features_other_than_the_models() -> None:
    from distillshield.detect.train import fit_with_peers

    with pytest.raises(DistillShieldError, match="FEATURES' names"):
        fit_with_peers(
            pa.table({"label": [0, 1]}), np.array(["g", "g"]), c=0.3, threshold=0.9, features=FEATURES[:-1]
        )


def test_format_1_model_files_still_load_as_one_head() -> None:
    """A model written before heads existed scores exactly as it did."""
    x, y, feats = _toy(3)
    m = AccountModel.fit(x, y, features=feats)
    v1 = {
        "format": "distillshield.account-model/1",
        "threshold": m.threshold,
        "intercept": m.heads[0].intercept,
        "features": [
            {"name": n, "mean": mu, "scale": sc, "coef": c}
            for n, mu, sc, c in zip(m.features, m.mean, m.scale, m.heads[0].coef, strict=True)
        ],
        "provenance": {},
    }
    old = AccountModel.from_json(json.dumps(v1))
    assert old.head_names == ("campaign",)
    assert np.array_equal(old.predict_proba(x), m.predict_proba(x))


def test_model_json_round_trip_and_errors(tmp_path: object) -> None:
    x, y, feats = _toy(2)
    m = AccountModel.fit(x, y, features=feats, provenance={"name": "toy"})
    again = AccountModel.from_json(m.to_json())
    assert again == m
    x2, y2, tactics, feats2 = _two_tactics(2)
    multi = AccountModel.fit(x2, y2, tactics=tactics, features=feats2)
    assert AccountModel.from_json(multi.to_json()) == multi
    with pytest.raises(DistillShieldError, match="not an account model"):
        AccountModel.from_json(json.dumps({"format": "other"}))
    with pytest.raises(DistillShieldError, match="not an account model"):
        AccountModel.from_json("{")
    with pytest.raises(DistillShieldError, match="other features"):
        m.check_features(FEATURES)
    with pytest.raises(DistillShieldError, match="both campaign and legitimate"):
        AccountModel.fit(x, np.zeros(len(y), dtype=np.int64), features=feats)


def test_shipped_model_matches_the_feature_list() -> None:
    m = load_model()
    m.check_features(FEATURES)
    assert 0 < m.threshold < 1
    assert m.provenance.get("scenarios"), "the shipped model records what it was trained on"
    trained_on = {s["scenario"] for s in m.provenance["scenarios"]}
    assert "default" not in trained_on  # evaluated on default: never fitted on it
    assert len(m.heads) >= 2, "one head per tactic the training scenarios simulate"
    for head in m.heads:
        for f, c in zip(head_features(head.name), head.coef, strict=True):
            assert c * f.direction >= -1e-9, (head.name, f.name)
    assert m.provenance["head_directions"] == {h: dict(d) for h, d in HEAD_DIRECTIONS.items()}


# ----------------------------------------------------------------------------------- novelty and reasons


def test_metadata_peer_score_is_the_other_holders_mean_score_of_the_worst_pair() -> None:
    """Leave-one-out mean of the other holders' scores per shared pair, maximum over pairs,
    0 without a shared pair; a pair held once in its population has no peers; populations
    (training's scenario/cut-off groups) are kept apart."""
    shared = pa.array(
        [
            ["env=prod", "handle=jdoe"],  # a generic tag and a staff handle
            ["handle=jdoe"],
            ["handle=jdoe"],
            ["env=prod"],
            ["env=prod"],
            [],
            None,
            ["only=me"],
        ],
        pa.list_(pa.string()),
    )
    score = np.array([0.2, 0.9, 0.7, 0.1, 0.0, 0.99, 0.99, 0.99])
    got = peer_scores(shared, score)
    # row 0: handle peers (0.9 + 0.7) / 2 = 0.8 beats its tag's peers (0.1 + 0.0) / 2
    assert got.tolist() == pytest.approx([0.8, (0.2 + 0.7) / 2, (0.2 + 0.9) / 2, 0.1, 0.15, 0, 0, 0])
    # two populations: rows 0-2 and 3-7; the tag's holders no longer meet across them
    groups = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    got = peer_scores(shared, score, groups)
    assert got.tolist() == pytest.approx([0.8, 0.45, 0.55, 0.0, 0.1, 0, 0, 0])


def test_score_with_peers_reads_the_models_own_first_pass() -> None:
    """The peers' scores are the model's with the feature at 0; a legitimate crowd sharing a
    tag scores low however large it is, a farm sharing a handle high."""

    class ByReasoning:
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return x[:, 0]

    feats = (Feature("reasoning_share", "reasoning_share"), Feature(PEER_COLUMN, PEER_COLUMN))
    crowd = 300
    table = pa.table(
        {
            "reasoning_share": [0.05] * crowd + [0.95] * 20 + [0.1],
            SHARED_COLUMN: [["env=prod"]] * crowd + [["handle=jdoe"]] * 21,
        }
    )
    out, x = score_with_peers(ByReasoning(), table, features=feats)
    peers = out.column(PEER_COLUMN).to_numpy()
    assert peers[:crowd] == pytest.approx([0.05] * crowd)
    assert peers[-1] == pytest.approx(0.95)  # the quiet account in the farm
    assert x[:, 1].tolist() == peers.tolist()
    # a model without the feature: the column is 0 and the matrix ignores it
    plain = (Feature("reasoning_share", "reasoning_share"),)
    out, x = score_with_peers(ByReasoning(), table, features=plain)
    assert x.shape == (table.num_rows, 1) and out.column(PEER_COLUMN).to_numpy().max() == 0


def test_novelty_is_a_seeded_percentile_and_finds_the_outlier() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (300, 4))
    x[17] = [12, -12, 12, -12]
    a, b = novelty_scores(x, seed=5), novelty_scores(x, seed=5)
    assert np.array_equal(a, b)
    assert a[17] == 1.0 and a.min() >= 0.0 and a.max() <= 1.0
    assert novelty_scores(x[:10]).tolist() == [0.0] * 10  # too few to say what is normal


def test_reasons_show_raw_values_of_the_largest_contributions() -> None:
    feats = (Feature("log_requests", "n_requests", "log1p"), Feature("cot", "cot_expose_share"))
    t = pa.table({"n_requests": [5000, 3], "cot_expose_share": [0.62, 0.0]})
    contrib = np.array([[0.3, 2.0], [0.1, -1.0]])
    r = top_reasons(t, contrib, feats, novelty=np.array([0.995, 0.2]))
    assert r[0][0] == "cot_expose_share=0.62 (+2.0)"
    assert r[0][1] == "n_requests=5000 (+0.3)"
    assert r[0][-1].startswith("novelty_percentile=")
    assert r[1] == []


# ----------------------------------------------------------------------------------- graph features


def test_graph_features_tell_colleagues_from_strangers() -> None:
    b = get_backend()
    acc = pa.table(
        {
            "account_id": ["c1", "c2", "c3", "h1", "h2", "h3", "x"],
            "email_domain": [
                "acme.com",
                "acme.com",
                "acme.com",
                "gmail.com",
                "mail.ru",
                "gmail.com",
                "z.org",
            ],
            "declared_country": ["DE", "DE", "DE", "US", "BR", "IN", "FR"],
        }
    )
    cls = ["corporate"] * 3 + ["free-mail"] * 3 + ["corporate"]
    b.register("acc", acc)
    b.register("acc_enr", pa.table({"account_id": acc.column("account_id"), "email_domain_class": cls}))
    b.register("pop", acc.select(["account_id"]))
    edges = edge_table(
        [
            ("c1", "c2", "payment"),
            ("c2", "c3", "ip"),
            ("c1", "c3", "prefix"),
            ("h1", "h2", "ip"),
            ("h2", "h3", "payment"),
            ("h1", "h3", "template"),  # weak: not a strong neighbour
        ]
    )
    g = {r["account_id"]: r for r in graph_features(b, edges, population="pop").to_pylist()}
    assert g["c1"]["strong_neighbours"] == 2 and g["c1"]["unrelated_strong_neighbours"] == 0
    assert g["c1"]["related_strong_neighbours"] == 2
    assert g["h2"]["unrelated_strong_neighbours"] == 2 and g["h2"]["unrelated_strong_share"] == 1.0
    assert g["h1"]["strong_neighbours"] == 1 and g["h1"]["deg_template"] == 1
    assert g["c1"]["component_size"] == 3 and g["c1"]["component_countries"] == 0.0
    assert g["h1"]["component_size"] == 3 and g["h1"]["component_countries"] == 1.0  # 3 countries / 3
    assert g["h1"]["component_domains"] == 0.5  # gmail.com twice, mail.ru once
    assert g["x"]["component_size"] == 1 and g["x"]["strong_neighbours"] == 0
    assert g["c1"]["component"] == g["c3"]["component"] != g["h1"]["component"]


# ----------------------------------------------------------------------------------- clustering


def _clique(prefix: str, n: int, kind: str) -> list[tuple[str, str, str]]:
    names = [f"{prefix}{i:02d}" for i in range(n)]
    return [(a, b, kind) for i, a in enumerate(names) for b in names[i + 1 :]]


def test_leiden_separates_two_farms_bridged_by_a_coincidental_prefix() -> None:
    rows = (
        _clique("a", 12, "ip")
        + _clique("d", 20, "prefix")
        + [("a00", "d00", "prefix"), ("a01", "d01", "prefix")]
    )
    flagged = sorted({x for r in rows for x in r[:2]})
    assign = _cluster(flagged, edge_table(rows))
    a_ids = {assign[f"a{i:02d}"] for i in range(12)}
    d_ids = {assign[f"d{i:02d}"] for i in range(20)}
    assert len(a_ids) == 1 and len(d_ids) == 1 and a_ids != d_ids


def test_shared_money_merges_communities_and_ids_are_deterministic() -> None:
    bridge = [(f"a{i:02d}", f"d{i:02d}", "payment") for i in range(MERGE_MIN_EDGES)]
    rows = _clique("a", 12, "ip") + _clique("d", 20, "prefix") + bridge
    flagged = sorted({x for r in rows for x in r[:2]})
    assign = _cluster(flagged, edge_table(rows))
    assert len(set(assign.values())) == 1
    assert set(assign.values()) == {campaign_id_for(flagged)}
    again = _cluster(list(reversed(flagged)), edge_table(list(reversed(rows))))
    assert again == assign


def test_unflagged_accounts_never_join_a_campaign() -> None:
    rows = [*_clique("a", 5, "payment"), ("a00", "zz", "payment")]
    assign = _cluster([f"a{i:02d}" for i in range(5)], edge_table(rows))
    assert "zz" not in assign and len(assign) == 5


def test_an_over_cap_staff_handle_joins_its_fragments_and_loners_but_not_another_campaign() -> None:
    # one operator's accounts in three payment fragments plus four loners with no edge; a
    # second campaign (d) holds a few of the handle's holders inside a larger community
    rows = (
        _clique("a", 6, "payment")
        + _clique("b", 5, "payment")
        + _clique("c", 4, "payment")
        + _clique("d", 12, "ip")
    )
    loners = [f"z{i}" for i in range(4)]
    flagged = sorted({x for r in rows for x in r[:2]} | set(loners))
    holders = [f"a{i:02d}" for i in range(6)] + [f"b{i:02d}" for i in range(3)] + ["c00"]
    holders += [*loners, "d00", "d01", "d02"]
    before = _cluster(flagged, edge_table(rows))
    assert len({before[a] for a in holders if a in before}) == 4 and not set(loners) & set(before)
    assign = _cluster(flagged, edge_table(rows), hubs={'metadata="user": "ops-1"': sorted(holders)})
    joined = {assign[x] for x in [f"a{i:02d}" for i in range(6)] + [f"b{i:02d}" for i in range(5)] + loners}
    assert len(joined) == 1  # fragment b: 3 of its 5 members hold the handle, so all 5 come
    assert assign["c00"] != assign["a00"] and assign["c01"] == assign["c00"]  # 1 of 4: stays
    assert {assign[f"d{i:02d}"] for i in range(12)} == {before["d00"]}  # 3 of 12: untouched
    # loners alone under a hub form a campaign; a hub with one flagged holder makes none
    only = _cluster([*loners, "y"], edge_table([]), hubs={"payment=card-9": loners, "payment=card-7": ["y"]})
    assert set(only) == set(loners) and len(set(only.values())) == 1


def test_a_client_stack_places_its_loners_in_the_campaign_holding_most_of_its_holders() -> None:
    from distillshield.detect.campaigns import _cluster

    # one operator's 12-account campaign (one card clique) spread over pinned client stacks of
    # two to four of its accounts, none half of the campaign; stacks also have flagged loners.
    # A 20-account farm (d) runs three of those releases on a few of its accounts.
    rows = _clique("a", 12, "payment") + _clique("d", 20, "ip") + _clique("c", 2, "payment")
    flagged = sorted({x for r in rows for x in r[:2]} | {"z0", "z1", "z2", "y0", "y1", "x"})
    stack1 = ["a00", "a01", "a02", "a03", "d00", "z0", "z1", "x"]  # 4 in a, 1 in d: a's
    stack2 = ["a04", "a05", "a06", "d01", "d02", "y0"]  # 3 in a, 2 in d: a's (3 of 5)
    stack3 = ["a07", "a08", "d03", "d04", "y1"]  # 2 in a: too few to say
    before = _cluster(flagged, edge_table(rows))
    assert set(before) == {x for r in rows for x in r[:2]}  # loners are in no campaign
    # a stock release that campaign c's two accounts and three of d's run: it is d's, but a
    # client stack is no identity, so c (all of whose members hold it) does not merge into d
    stack4 = ["c00", "c01", "d05", "d06", "d07"]
    stack5 = ["d02", "d03", "d04", "x"]  # d's: the loner x runs a's stack and d's
    hubs = {f"client=s{i + 1}": s for i, s in enumerate([stack1, stack2, stack3, stack4, stack5])}
    assign = _cluster(flagged, edge_table(rows), hubs=hubs)
    assert assign["z0"] == assign["z1"] == assign["y0"] == assign["a00"]  # loners come along
    # d shares three stacks with a, but 5 of its 20 accounts hold them: not woven together
    assert assign["d00"] == assign["d01"] == before["d00"] != assign["a00"]
    assert assign["c00"] == before["c00"] != assign["d05"]
    assert "y1" not in assign  # its stack's campaign is not clear; alone it is no campaign
    assert "x" not in assign  # it would bridge a and d


def test_client_stacks_weave_one_operators_card_groups_into_one_campaign() -> None:
    from distillshield.detect.campaigns import _cluster

    # one operator pays with three cards (three cliques of 6) and spreads each card's accounts
    # over the same four pinned stacks, with cardless loners on them; another campaign (e)
    # shares one stock release with it
    rows = _clique("g", 6, "payment") + _clique("h", 6, "payment") + _clique("k", 6, "payment")
    rows += _clique("e", 8, "payment")
    stacks: dict[str, list[str]] = {f"client=t{j}": [f"z{j}"] for j in range(4)}
    for group in "ghk":
        for i in range(6):
            stacks[f"client=t{i % 4}"].append(f"{group}{i:02d}")
    stacks["client=t0"] += ["e00", "e01"]
    flagged = sorted({x for r in rows for x in r[:2]} | {f"z{j}" for j in range(4)})
    before = _cluster(flagged, edge_table(rows))
    assert len({before[f"{g}00"] for g in "ghk"}) == 3  # three card groups, no pair edge between
    assign = _cluster(flagged, edge_table(rows), hubs={v: sorted(h) for v, h in stacks.items()})
    operator = {assign[a] for a in flagged if a[0] in "ghkz"}
    assert len(operator) == 1 and "z0" in assign  # one campaign, its loners included
    assert assign["e00"] == before["e00"] != assign["g00"]  # one shared release ties nothing
    # two shared stacks are not enough: with only t0 and t1 the groups stay apart
    two = {v: h for v, h in stacks.items() if v in ("client=t0", "client=t1")}
    apart = _cluster(flagged, edge_table(rows), hubs={v: sorted(h) for v, h in two.items()})
    assert len({apart[f"{g}00"] for g in "ghk"}) == 3


def test_a_stack_no_community_owns_gathers_its_loners_and_the_pairs_holding_it() -> None:
    from distillshield.detect.campaigns import _cluster

    # an operator that shares nothing but its harness: one card per account (loners) but for
    # two pairs on a shared card, all on one pinned stack; a farm (f, 10 accounts on one
    # proxy) runs the release on one account
    rows = _clique("p", 2, "payment") + _clique("q", 2, "payment") + _clique("f", 10, "ip")
    loners = [f"z{i}" for i in range(8)]
    flagged = sorted({x for r in rows for x in r[:2]} | set(loners) | {"w0", "w1"})
    harness = [*loners, "p00", "p01", "q00", "q01", "f00"]
    before = _cluster(flagged, edge_table(rows))
    assert not set(loners) & set(before) and before["p00"] != before["q00"]
    assign = _cluster(flagged, edge_table(rows), hubs={"client=h": harness, "client=k": ["w0", "w1", "f01"]})
    assert {assign[a] for a in [*loners, "p00", "p01", "q00", "q01"]} == {assign["z0"]}
    assert assign["f00"] == before["f00"] != assign["z0"]  # 1 of 10 holds it: not gathered
    assert "w0" not in assign  # two loners are too few to gather
    # a stack whose holders sit mostly in communities is not gathered: 8 loners, 10 holders
    # in communities that none owns
    many = rows + _clique("r", 3, "payment") + _clique("s", 3, "payment")
    spread = [*harness, "r00", "r01", "r02", "s00", "s01"]
    flagged2 = sorted({x for r in many for x in r[:2]} | set(loners))
    apart = _cluster(flagged2, edge_table(many), hubs={"client=h": spread})
    assert not set(loners) & set(apart) and apart["p00"] != apart["q00"]


def test_hub_values_are_over_cap_cards_and_handles_held_mostly_by_flagged_accounts() -> None:
    check_hub_values(get_backend("duckdb"))


def check_hub_values(b: Any) -> None:
    """The hub selection on backend ``b`` (also run on Spark by tests/test_spark_parity.py)."""
    from distillshield.detect.campaigns import hub_values
    from distillshield.features.stats import StatsNames

    st = StatsNames()
    ids = [f"u{i:02d}" for i in range(12)]
    rows: list[tuple[str, str, str]] = []
    rows += [(a, "metadata", '"user": "ops-1"') for a in ids[:6]]  # 6 holders, 5 flagged
    rows += [(a, "metadata", '"sdk": "stock"') for a in ids[:6]]  # ... so this is a hub too
    rows += [(a, "metadata", '"env": "prod"') for a in ids[4:12]]  # 8 holders, 2 flagged
    rows += [(a, "metadata", '"user": "few"') for a in ids[:3]]  # all flagged, under the cap
    rows += [(a, "ip", "10.0.0.1") for a in ids]  # not an identity kind
    rows += [(a, "client", "pinned") for a in [*ids[:3], "u06", "u07"]]  # 5 holders, 4 flagged
    rows += [(a, "client", "stock") for a in ids[2:12]]  # 10 holders, 4 flagged: everyone's SDK
    b.register(
        st.vals,
        pa.table(
            {
                "chunk": ["c"] * len(rows),
                "account_id": [r[0] for r in rows],
                "kind": [r[1] for r in rows],
                "val": [r[2] for r in rows],
                "c": [1] * len(rows),
            }
        ),
    )
    cards = ["card-1"] * 5 + ["card-2"] * 4 + [None] * 3
    b.register("acc", pa.table({"account_id": ids, "payment_fingerprint": cards}))
    flagged = [*ids[:5], "u06"]
    hubs = hub_values(b, st.vals, "acc", flagged, max_group=3)  # no client stacks by default
    assert (
        hubs
        == {  # every holder, the unflagged u05 included
            'metadata="sdk": "stock"': ids[:6],
            'metadata="user": "ops-1"': ids[:6],
            "payment=card-1": ids[:5],
        }
    )
    assert hub_values(b, st.vals, "acc", flagged, max_group=6) == {}  # nothing over the cap
    # client stacks have their own, smaller cap (linking's max_client_accounts)
    with_clients = hub_values(b, st.vals, "acc", flagged, max_group=6, max_client=4)
    assert with_clients == {"client=pinned": [*ids[:3], "u06", "u07"]}
    assert hub_values(b, st.vals, "acc", flagged, max_group=6, max_client=5) == {}


def test_operator_profiles_ignore_a_clue_carried_by_a_few_misplaced_accounts() -> None:
    from distillshield.detect.campaigns import _attach_operators

    def campaign(cid: str, cards: dict[str, int], clues: dict[str, int]) -> dict[str, object]:
        return {
            "id": cid,
            "infrastructure": {
                "payment_fingerprints": [{"value": v, "accounts": n} for v, n in cards.items()]
            },
            "metadata_clues": [{"key": "user", "value": v, "accounts": n} for v, n in clues.items()],
        }

    cs = [
        campaign("b", {"card-b": 20}, {"ops-1": 900}),
        campaign("c", {"card-c": 40}, {"ops-1": 30}),  # 30 of B's accounts placed in C: 3 %
        campaign("e", {"card-e": 5}, {"ops-1": 200}),  # the same staff in a second campaign: 18 %
        campaign("f", {"card-c": 10}, {}),  # paid with C's card
        campaign("g", {}, {}),
    ]
    _attach_operators(cs)
    actor = {str(c["id"]): c.get("actor") for c in cs}
    assert actor["b"] == actor["e"] != actor["c"] == actor["f"]
    assert actor["g"] is None and actor["b"] and actor["c"]
    assert "meta:user=ops-1" not in cs[1]["operator_evidence"]


def test_corroboration_and_coordinated_novelty() -> None:
    from distillshield.detect.campaigns import _promote

    accounts = pa.table(
        {
            "account_id": ["f", "s1", "s2", "s3", "n1", "n2", "n3", "lone", "h1", "h2", "h3"],
            "score": [0.95, 0.6, 0.3, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
            "flagged": [True, False, False, False, False, False, False, False, False, False, False],
            "novelty": [0.5, 0.5, 0.5, 0.5, 0.995, 0.995, 0.995, 0.999, 0.995, 0.995, 0.995],
        }
    )
    edges = edge_table(
        [
            ("f", "s1", "payment"),  # sibling on the flagged account's card, likely: flagged
            ("f", "s2", "payment"),  # sibling but unlikely on its own: not flagged
            ("f", "s3", "prefix"),  # a shared prefix is not an identity: not flagged
            ("n1", "n2", "ip"),
            ("n2", "n3", "ip"),
            ("n1", "n3", "metadata"),
            # three unusual backends in one hosting /24: neighbours, not coordinated
            ("h1", "h2", "prefix"),
            ("h2", "h3", "prefix"),
            ("h1", "h3", "prefix"),
        ]
    )
    flagged, why = _promote(accounts, edges, novelty_quantile=0.99, novelty_links=2, corroborated_score=0.5)
    assert set(why) == {"s1", "n1", "n2", "n3"}
    # an over-cap staff handle held mostly by flagged accounts corroborates like a card edge
    hubs = {'metadata="user": "ops-1"': ["f", "s2", "s3"]}
    _, why_hub = _promote(
        accounts, edges, novelty_quantile=0.99, novelty_links=2, corroborated_score=0.5, hubs=hubs
    )
    assert set(why_hub) - set(why) == {"s3"}  # s2 holds it too but is unlikely on its own
    assert why_hub["s3"] == "corroborated: holds a metadata value shared by 3 accounts, 1 of them flagged"
    _, alone = _promote(
        accounts, edge_table([]), novelty_quantile=0.99, novelty_links=2, corroborated_score=0.5, hubs=hubs
    )
    assert set(alone) == {"s3"}
    _, by_stack = _promote(
        accounts,
        edge_table([]),
        novelty_quantile=0.99,
        novelty_links=2,
        corroborated_score=0.5,
        hubs={"client=abc": ["f", "s1", "s2"]},
    )
    assert by_stack == {}  # a client stack clusters, it does not corroborate
    assert why["s1"].startswith("corroborated") and why["n1"].startswith("coordinated_novelty")
    assert flagged.tolist() == [True, True, False, False, True, True, True, False, False, False, False]


def test_organisations_are_corporate_or_academic_domains_only() -> None:
    from distillshield.detect.graph import organisations

    b = get_backend()
    b.register(
        "acc",
        pa.table(
            {
                "account_id": ["c1", "c2", "u1", "f1", "d1", "n1", "z1"],
                "email_domain": ["ACME.com", "acme.com", "uni.edu", "gmail.com", "tmp.io", "x.org", None],
            }
        ),
    )
    b.register(
        "acc_enr",
        pa.table(
            {
                "account_id": ["c1", "c2", "u1", "f1", "d1", "z1"],  # n1 has no enrichment row
                "email_domain_class": [
                    "corporate",
                    "corporate",
                    "academic",
                    "free-mail",
                    "disposable",
                    "corporate",
                ],
            }
        ),
    )
    assert organisations(b) == {"c1": "acme.com", "c2": "acme.com", "u1": "uni.edu"}


def test_coordinated_novelty_ignores_colleagues() -> None:
    """Three unusual accounts on one card and one egress: a farm when they are strangers, a
    team when they share their employer's domain (the model's ``related`` neighbours)."""
    from distillshield.detect.campaigns import _promote

    ids = ["a", "b", "c"]
    accounts = pa.table(
        {"account_id": ids, "score": [0.0] * 3, "flagged": [False] * 3, "novelty": [0.995] * 3}
    )
    edges = edge_table([("a", "b", "payment"), ("b", "c", "payment"), ("a", "c", "ip")])
    kw: dict[str, Any] = {"novelty_quantile": 0.99, "novelty_links": 2, "corroborated_score": 0.5}
    _, strangers = _promote(accounts, edges, **kw, organisation={"a": "x.com", "b": "y.com"})
    assert set(strangers) == set(ids)
    flagged, team = _promote(accounts, edges, **kw, organisation=dict.fromkeys(ids, "acme.com"))
    assert team == {} and not flagged.any()
    # two colleagues and a stranger: each colleague has one non-colleague partner, not two
    _, mixed = _promote(accounts, edges, **kw, organisation={"a": "acme.com", "b": "acme.com"})
    assert set(mixed) == {"c"}
