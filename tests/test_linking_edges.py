"""Account edges (distillshield.linking): hand-computed cases, the simulator, Spark transpilation."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.backends import Backend, get_backend, transpile
from distillshield.linking import (
    EDGE_KINDS,
    EDGE_SCHEMA,
    STRONG_KINDS,
    EdgeParams,
    account_components,
    account_edges,
    edge_statements,
    edges_touching,
)
from distillshield.schema._tables import ACCOUNTS, EXCHANGE_ENRICHMENT, EXCHANGES, SIGNALS

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a day boundary: 24 h bins start here


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _table(schema: pa.Schema, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def _tiny_backend() -> Backend:
    """Six accounts built so that every kind has one edge that must appear and one that must not.

    * payment: a1, a2 share p1 (edge); a3 alone with p2 (no edge).
    * ip: 10.0.0.1 by a1 at +1 h and a2 at +24.5 h: neighbouring day bins, 23.5 h apart (edge);
      10.0.0.2 by a3 at +1 h and a4 at +26 h: 25 h apart (no edge);
      10.0.0.9 by a1..a5 at +2 h: 5 accounts > max_group 4 (no edges, the NAT cap).
    * prefix: 10.0.0.0/24 is held by 5 accounts (capped); 10.0.1.1 (a5) and 10.0.1.2 (a6), 1 h
      apart, share 10.0.1.0/24 only (a prefix edge, no ip edge).
    * client: (ua-x, tls-x) by a1, a2 (edge); (sdk, tls-s) by a3..a6, 4 > max_client_accounts 3.
    * template: family f1 three times each by a3, a4 (edge); f2 three times by a5 and once by a6
      (below min_template_uses: no edge).
    * signup: a1 192.0.2.10 at 0 h, a2 192.0.2.99 at 2 h, a3 192.0.2.50 at 10 h: one /24 of 3
      accounts, only a1-a2 within 6 h; a4, a5 from 2001:db8::1 1 h apart (edge).
    """
    accounts = [
        ("a1", "p1", "192.0.2.10", 0.0),
        ("a2", "p1", "192.0.2.99", 2.0),
        ("a3", "p2", "192.0.2.50", 10.0),
        ("a4", None, "2001:db8::1", 20.0),
        ("a5", None, "2001:db8::1", 21.0),
        ("a6", None, None, 30.0),
    ]
    acc = _table(
        ACCOUNTS.schema,
        [
            {
                "account_id": a,
                "created_at": _h(t),
                "pathway": "self_serve",
                "signup_ip": ip,
                "payment_fingerprint": pf,
                "verified": True,
            }
            for a, pf, ip, t in accounts
        ],
    )
    client = {"a1": ("ua-x", "tls-x"), "a2": ("ua-x", "tls-x")}
    uses: list[tuple[str, str, float, str | None]] = [
        ("a1", "10.0.0.1", 1.0, None),
        ("a2", "10.0.0.1", 24.5, None),
        ("a3", "10.0.0.2", 1.0, None),
        ("a4", "10.0.0.2", 26.0, None),
        *[(a, "10.0.0.9", 2.0, None) for a in ("a1", "a2", "a3", "a4", "a5")],
        ("a5", "10.0.1.1", 40.0, None),
        ("a6", "10.0.1.2", 41.0, None),
        *[(a, "10.0.0.3", 50.0 + 100 * i + k, "f1") for i, a in enumerate(("a3", "a4")) for k in range(3)],
        *[("a5", "10.0.1.3", 300.0 + k, "f2") for k in range(3)],
        ("a6", "10.0.1.4", 500.0, "f2"),
    ]
    ex_rows, sig_rows, enr_rows = [], [], []
    for i, (a, ip, t, family) in enumerate(uses):
        rid = f"r{i:03d}"
        ua, tls = client.get(a, ("sdk", "tls-s"))
        ex_rows.append(
            {
                "request_id": rid,
                "ts": _h(t),
                "account_id": a,
                "model": "m",
                "endpoint": "chat.completions",
                "ip": ip,
                "user_agent": None if a == "a1" and i > 0 else ua,
                "tls_fingerprint": tls,
                "n_messages": 1,
                "input_tokens": 1,
                "output_tokens": 1,
                "stream": False,
                "status": 200,
            }
        )
        sig_rows.append({"request_id": rid, "template_id": family, "template_family": family})
        enr_rows.append({"request_id": rid, "ip_prefix": ip.rsplit(".", 1)[0] + ".0/24"})
    backend = get_backend()
    backend.register("acc", acc)
    backend.register("ex", _table(EXCHANGES.schema, ex_rows))
    backend.register("sig", _table(SIGNALS.schema, sig_rows))
    backend.register("enr", _table(EXCHANGE_ENRICHMENT.schema, enr_rows))
    return backend


TINY = EdgeParams(max_group=4, max_client_accounts=3, signup_window_hours=6.0, min_template_uses=3)


def test_tiny_dataset_hand_computed_edges() -> None:
    edges = account_edges(_tiny_backend(), params=TINY)
    assert edges.schema == EDGE_SCHEMA
    got = {(r["kind"], r["src"], r["dst"]): r["weight"] for r in edges.to_pylist()}
    # N = 6 accounts; a value held by n accounts weighs log(6 / n) / log(6 / 2)
    expected = {
        ("payment", "a1", "a2"): 1.0,
        ("ip", "a1", "a2"): 1.0,
        ("prefix", "a5", "a6"): 1.0,
        ("client", "a1", "a2"): 1.0,
        ("template", "a3", "a4"): 1.0,
        ("signup", "a1", "a2"): math.log(2) / math.log(3),
        ("signup", "a4", "a5"): 1.0,
    }
    assert set(got) == set(expected)
    for key, weight in expected.items():
        assert got[key] == pytest.approx(weight)
    evidence = {(r["kind"], r["src"], r["dst"]): r["evidence"] for r in edges.to_pylist()}
    assert evidence["ip", "a1", "a2"] == "ip=10.0.0.1 accounts=2 shared=1"
    assert evidence["signup", "a1", "a2"] == "signup=192.0.2.0/24 accounts=3 shared=1"
    # output order is fixed: kind order of EDGE_KINDS, then src, dst
    kinds = edges.column("kind").to_pylist()
    assert kinds == sorted(kinds, key=EDGE_KINDS.index)


def test_tiny_dataset_caps_and_windows_are_parameters() -> None:
    backend = _tiny_backend()
    # without the cap the NAT address 10.0.0.9 links all five accounts that used it at +2 h
    wide = account_edges(backend, params=EdgeParams(max_group=10, kinds=("ip",)))
    pairs = {(r["src"], r["dst"]) for r in wide.to_pylist()}
    assert len(pairs) == 10
    assert all(r["weight"] < 1.0 for r in wide.to_pylist() if r["src"] != "a1" or r["dst"] != "a2")
    # a 26 h window also catches a3-a4 on 10.0.0.2 (25 h apart)
    only_ip = EdgeParams(max_group=4, kinds=("ip",))
    long = account_edges(backend, window_hours=26, params=only_ip)
    assert {(r["src"], r["dst"]) for r in long.to_pylist()} == {("a1", "a2"), ("a3", "a4")}
    # a 23 h window loses a1-a2 (23.5 h apart across the bin boundary)
    assert account_edges(backend, window_hours=23, params=only_ip).num_rows == 0


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown edge kinds"):
        edge_statements(params=EdgeParams(kinds=("ip", "telepathy")))


def test_every_statement_transpiles_to_spark() -> None:
    for kind, sql in edge_statements(params=EdgeParams()).items():
        spark = transpile(sql, "spark")
        assert sqlglot.parse_one(spark, read="spark") is not None, kind


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backend, pa.Table]:
    """The default scenario at 5 % scale, prepared, registered, with its edges."""
    from distillshield.prepare import prepare
    from distillshield.simulate import load_scenario, simulate

    out: Path = tmp_path_factory.mktemp("link") / "data"
    simulate(load_scenario("default"), out, scale=0.05)
    prepare(out)
    backend = get_backend()
    backend.register("ex", out / "exchanges")
    backend.register("sig", out / "derived" / "signals")
    backend.register("enr", out / "derived" / "enrichment")
    backend.register("acc", out / "accounts.parquet")
    backend.register("lab", out / "labels" / "accounts.parquet")
    return backend, account_edges(backend)


def test_simulated_strong_components_recover_campaign_a(simulated: tuple[Backend, pa.Table]) -> None:
    backend, edges = simulated
    assert set(edges.column("kind").to_pylist()) <= set(EDGE_KINDS)
    assert all(
        s < d for s, d in zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(), strict=True)
    )
    backend.register("comps", account_components(backend, edges))
    rows = backend.query(
        "SELECT l.account_id, l.campaign_id, l.persona, coalesce(c.component, l.account_id) AS comp "
        "FROM lab l LEFT JOIN comps c ON c.account_id = l.account_id"
    ).to_pylist()
    camp_a = [r["comp"] for r in rows if r["campaign_id"] == "campaign-a"]
    assert camp_a
    biggest = max(set(camp_a), key=camp_a.count)
    assert camp_a.count(biggest) / len(camp_a) >= 0.8
    campaign_comps = {r["comp"] for r in rows if r["campaign_id"] is not None}
    uni = [r for r in rows if r["persona"] == "legit.university_class"]
    assert uni
    assert not {r["comp"] for r in uni} & campaign_comps


def test_simulated_strong_edges_never_join_campaign_and_legit(simulated: tuple[Backend, pa.Table]) -> None:
    backend, edges = simulated
    backend.register("all_edges", edges)
    mixed = backend.query(
        "SELECT e.kind, count(*) AS n FROM all_edges e "
        "JOIN lab a ON a.account_id = e.src JOIN lab b ON b.account_id = e.dst "
        "WHERE coalesce(a.campaign_id, '') <> coalesce(b.campaign_id, '') GROUP BY e.kind"
    ).to_pylist()
    assert not [r for r in mixed if r["kind"] in STRONG_KINDS]


def test_sync_correlates_only_candidate_pairs() -> None:
    """s1, s2 share a card (a candidate pair); s3 moves with them but shares nothing.

    10-minute bins 0..5 (s3's late request sets the timeline to T = 6): s1 = [1, 1, 1, 0, 0, 0],
    s2 = [1, 1, 2, 0, 0, 0], so Sx = 3, Sxx = 3, Sy = 4, Syy = 6, Sxy = 4 and
    r = (6*4 - 3*4) / sqrt((6*3 - 9) * (6*6 - 16)) = 12 / sqrt(180) = 2 / sqrt(5).
    """
    acc = _table(
        ACCOUNTS.schema,
        [
            {
                "account_id": a,
                "created_at": _h(-100 * i),
                "pathway": "self_serve",
                "payment_fingerprint": pf,
                "verified": True,
            }
            for i, (a, pf) in enumerate((("s1", "pp"), ("s2", "pp"), ("s3", None)))
        ],
    )
    uses = (
        [("s1", b) for b in (0, 1, 2)] + [("s2", b) for b in (0, 1, 2, 2)] + [("s3", b) for b in (0, 1, 2, 5)]
    )
    ex = _table(
        EXCHANGES.schema,
        [
            {
                "request_id": f"q{i}",
                "ts": T0 + timedelta(minutes=10 * b + 1),
                "account_id": a,
                "model": "m",
                "endpoint": "chat.completions",
                "ip": f"10.{i}.0.1",
                "n_messages": 1,
                "input_tokens": 1,
                "output_tokens": 1,
                "stream": False,
                "status": 200,
            }
            for i, (a, b) in enumerate(uses)
        ],
    )
    backend = get_backend()
    backend.register("acc", acc)
    backend.register("ex", ex)
    backend.register("sig", _table(SIGNALS.schema, []))
    backend.register("enr", _table(EXCHANGE_ENRICHMENT.schema, []))
    edges = account_edges(backend).to_pylist()
    assert [(r["kind"], r["src"], r["dst"]) for r in edges] == [("payment", "s1", "s2"), ("sync", "s1", "s2")]
    assert edges[1]["weight"] == pytest.approx(2 / math.sqrt(5))
    assert edges[1]["evidence"] == "sync r=0.894 bins=3"


@pytest.mark.parametrize("seed", range(4))
def test_components_match_networkx_on_random_kept_edges(seed: int) -> None:
    """Only edges of the chosen kinds and weight are used; components equal networkx's."""
    nx = pytest.importorskip("networkx")
    rng = random.Random(seed)
    n = rng.choice([6, 50, 200])
    rows = []
    for _ in range(rng.randint(1, 2 * n)):
        a, b = sorted(rng.sample(range(n), 2))
        kind = rng.choice(EDGE_KINDS)
        rows.append(
            {"src": f"u{a:03d}", "dst": f"u{b:03d}", "kind": kind, "weight": rng.random(), "evidence": ""}
        )
    edges = pa.Table.from_pylist(rows, schema=EDGE_SCHEMA)
    got = account_components(get_backend(), edges, kinds=STRONG_KINDS, min_weight=0.3).to_pylist()
    g = nx.Graph()
    g.add_edges_from((r["src"], r["dst"]) for r in rows if r["kind"] in STRONG_KINDS and r["weight"] >= 0.3)
    expected = {node: min(comp) for comp in nx.connected_components(g) for node in comp}
    assert {r["account_id"]: r["component"] for r in got} == expected
    assert [r["account_id"] for r in got] == sorted(expected)


_ACCTS = st.sampled_from([f"a{i}" for i in range(8)])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(_ACCTS, _ACCTS, st.sampled_from(["payment", "ip", "signup"])), max_size=30),
    kinds=st.sets(st.sampled_from(["payment", "ip", "signup", "client"])),
    accounts=st.sets(_ACCTS),
    ends=st.sampled_from(["both", "either", "one"]),
)
def test_edges_touching_is_the_plain_filter(
    rows: list[tuple[str, str, str]], kinds: set[str], accounts: set[str], ends: str
) -> None:
    """The Arrow filter every detection step uses keeps exactly the rows a plain Python
    predicate keeps, in order, for each of its three boundary modes."""
    table = pa.table(
        {
            "src": [r[0] for r in rows],
            "dst": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
            "weight": [1.0] * len(rows),
            "evidence": ["x"] * len(rows),
        },
        schema=EDGE_SCHEMA,
    )
    inside = {
        "both": lambda s, d: s and d,
        "either": lambda s, d: s or d,
        "one": lambda s, d: s != d,
    }[ends]
    expected = [r for r in rows if r[2] in kinds and inside(r[0] in accounts, r[1] in accounts)]
    for given_accounts in (accounts, pa.array(sorted(accounts), pa.string())):
        got = edges_touching(table, kinds, given_accounts, ends=ends)  # type: ignore[arg-type]
        cols = [got.column(c).to_pylist() for c in ("src", "dst", "kind")]
        assert list(zip(*cols, strict=True)) == expected
