"""enrich_dataset end to end on a small simulated dataset: outputs, idempotence, plausibility.

The plausibility checks compare personas through their ground-truth labels: a hydra reseller's
accounts exit through proxies all over the world, an individual developer mostly from home.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from distillshield.enrich import CLIENT_FAMILIES, enrich_dataset
from distillshield.schema import (
    ACCOUNT_ENRICHMENT,
    ACCOUNT_LABELS,
    ACCOUNTS,
    EXCHANGE_ENRICHMENT,
    EXCHANGES,
    read_table,
    table_paths,
    write_table,
)


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    from distillshield.simulate import load_scenario, simulate

    out = tmp_path_factory.mktemp("enrich") / "data"
    simulate(load_scenario("default"), out, scale=0.02)
    # a stale single-file output from an earlier run must not shadow the new parts
    write_table(EXCHANGE_ENRICHMENT.schema.empty_table(), out, EXCHANGE_ENRICHMENT)
    counts = enrich_dataset(out, chunk_rows=10_000)
    return out, counts


def _persona_of(data: Path) -> dict[str, str]:
    labels = read_table(
        data / "labels", ACCOUNT_LABELS.__class__("accounts", ACCOUNT_LABELS.schema, "account_id")
    )
    return dict(
        zip(labels.column("account_id").to_pylist(), labels.column("persona").to_pylist(), strict=True)
    )


def _exchange_facts(data: Path) -> pa.Table:
    ex = read_table(data, EXCHANGES, columns=["request_id", "account_id"])
    enr = read_table(data, EXCHANGE_ENRICHMENT)
    return ex.join(enr, "request_id")


def test_outputs_cover_every_exchange_and_account(enriched: tuple[Path, dict[str, int]]) -> None:
    data, counts = enriched
    ex = read_table(data, EXCHANGES, columns=["request_id"])
    enr = read_table(data, EXCHANGE_ENRICHMENT)
    assert counts["exchanges"] == ex.num_rows == enr.num_rows
    assert set(enr.column("request_id").to_pylist()) == set(ex.column("request_id").to_pylist())
    assert counts["parts"] == len(table_paths(data, EXCHANGE_ENRICHMENT)) > 1  # chunked, stale file gone
    assert all(p.parent.name == "enrichment" for p in table_paths(data, EXCHANGE_ENRICHMENT))
    assert counts["invalid_ips"] == 0 == enr.column("ip_version").null_count  # simulated IPs are real
    assert enr.column("ip_country").null_count == 0
    assert set(enr.column("client_family").to_pylist()) <= set(CLIENT_FAMILIES)
    accounts = read_table(data, ACCOUNT_ENRICHMENT)
    assert (
        counts["accounts"] == accounts.num_rows == read_table(data, ACCOUNTS, columns=["account_id"]).num_rows
    )
    assert (data / "derived" / "accounts.parquet").is_file()
    assert counts["hosting"] == pc.sum(enr.column("is_hosting").cast(pa.int64())).as_py()


def test_rerun_is_idempotent(enriched: tuple[Path, dict[str, int]]) -> None:
    data, counts = enriched
    before_ex = read_table(data, EXCHANGE_ENRICHMENT)
    before_acc = read_table(data, ACCOUNT_ENRICHMENT)
    again = enrich_dataset(data, chunk_rows=10_000)
    assert again == counts
    assert read_table(data, EXCHANGE_ENRICHMENT).equals(before_ex)
    assert read_table(data, ACCOUNT_ENRICHMENT).equals(before_acc)
    # a larger chunk size leaves fewer parts and no stale ones
    enrich_dataset(data, chunk_rows=1_000_000)
    assert len(table_paths(data, EXCHANGE_ENRICHMENT)) == 1
    assert read_table(data, EXCHANGE_ENRICHMENT).equals(before_ex)


def test_hydra_accounts_exit_away_from_their_declared_country(enriched: tuple[Path, dict[str, int]]) -> None:
    data, _ = enriched
    persona = _persona_of(data)
    share: dict[str, list[float]] = defaultdict(list)
    countries: dict[str, list[int]] = defaultdict(list)
    for row in read_table(data, ACCOUNT_ENRICHMENT).to_pylist():
        p = persona[row["account_id"]]
        if row["declared_country_share"] is not None:
            share[p].append(row["declared_country_share"])
            countries[p].append(len(row["observed_countries"]))
    hydra, dev = "attack.hydra_reseller", "legit.individual_developer"
    assert len(share[hydra]) >= 5 and len(share[dev]) >= 20
    assert statistics.median(share[hydra]) < 0.3 < 0.8 < statistics.median(share[dev])
    assert statistics.mean(countries[hydra]) > 3 * statistics.mean(countries[dev])


def test_egress_flags_are_plausible(enriched: tuple[Path, dict[str, int]]) -> None:
    data, _ = enriched
    persona = _persona_of(data)
    facts = _exchange_facts(data).to_pylist()
    by: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in facts:
        by[persona[str(row["account_id"])]].append(row)

    def rate(p: str, flag: str) -> float:
        rows = by[p]
        assert rows, p
        return sum(bool(r[flag]) for r in rows) / len(rows)

    # campaign C's operator runs its harness from cloud VMs; SaaS backends live there too
    assert rate("attack.agentic_coding_pivot", "is_hosting") > 0.9
    assert rate("legit.saas_backend", "is_hosting") > 0.9
    # a class behind the campus NAT and people at home are neither hosting nor VPN
    assert rate("legit.university_class", "is_hosting") == 0 == rate("legit.university_class", "is_vpn")
    assert rate("legit.individual_developer", "is_hosting") < 0.15
    assert rate("legit.individual_developer", "is_vpn") < 0.15
    # hydra resellers rotate residential proxies: many /24 prefixes per account
    prefixes: dict[str, set[str]] = defaultdict(set)
    for row in by["attack.hydra_reseller"]:
        prefixes[str(row["account_id"])].add(str(row["ip_prefix"]))
    assert statistics.median(len(v) for v in prefixes.values()) > 5
    # browsers only where a browser UA was sent
    assert all(r["client_family"] == "browser" for rows in by.values() for r in rows if r["is_browser"])
