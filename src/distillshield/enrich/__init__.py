"""Enrichment: the facts about each exchange and account that detection reads (docs/enrichment.md).

Per exchange (``derived/enrichment``): IP country, ASN name and announced network, /24 or /48
prefix, hosting / VPN / Tor flags (:class:`IpEnricher` with operator-configurable
:class:`InfraLists`), and the client software behind the User-Agent (:func:`parse_clients`).
Per account (``derived/accounts``): e-mail domain class, sign-up country and hosting flag,
observed egress countries against the declared one, first request and account age then
(:func:`account_enrichment`, SQL through a :class:`~distillshield.backends.Backend`).

Everything is offline (geoip2fast's bundled data, lists shipped or supplied by the operator) and
recomputable: re-running :func:`enrich_dataset` after a list update replaces the derived tables.

    counts = enrich_dataset(Path("DATA"))                        # shipped default lists
    counts = enrich_dataset(Path("DATA"), lists=InfraLists.from_dir("my-lists"))
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from distillshield.enrich.account import (
    EMAIL_CLASSES,
    RESTRICTED_COUNTRIES,
    EmailClassifier,
    account_age_sql,
    account_enrichment,
    email_domain_class,
)
from distillshield.enrich.client import CLIENT_FAMILIES, ClientParser, parse_clients
from distillshield.enrich.ip import CidrSet, InfraLists, IpEnricher
from distillshield.schema import (
    ACCOUNT_ENRICHMENT,
    ACCOUNTS,
    EXCHANGE_ENRICHMENT,
    EXCHANGES,
    TableSpec,
    iter_batches,
    rechunk,
    table_paths,
    write_table,
)

if TYPE_CHECKING:
    from distillshield.backends import Backend

__all__ = [
    "CLIENT_FAMILIES",
    "EMAIL_CLASSES",
    "RESTRICTED_COUNTRIES",
    "CidrSet",
    "ClientParser",
    "EmailClassifier",
    "InfraLists",
    "IpEnricher",
    "account_age_sql",
    "account_enrichment",
    "email_domain_class",
    "enrich_dataset",
    "enrich_exchanges",
    "parse_clients",
]

#: Exchange columns enrichment reads (content is never touched).
EXCHANGE_INPUTS: Final = ("request_id", "ip", "user_agent")

# Names under which enrich_dataset registers its inputs on the backend (prefixed so that a
# caller's own backend keeps its views).
_EX, _ENR, _ACC = "distillshield_enrich_ex", "distillshield_enrich_enr", "distillshield_enrich_acc"


def enrich_exchanges(batch: pa.Table, *, ip_enricher: IpEnricher, client_parser: ClientParser) -> pa.Table:
    """``EXCHANGE_ENRICHMENT`` rows for a batch of exchanges (needs request_id, ip, user_agent)."""
    ip = ip_enricher.enrich(batch.column("ip"))
    client = client_parser.parse(batch.column("user_agent"))
    return pa.Table.from_arrays(
        [batch.column("request_id"), *ip.columns, *client.columns], schema=EXCHANGE_ENRICHMENT.schema
    )


def _clear(root: Path, spec: TableSpec) -> None:
    """Remove every stored version of ``spec`` (single file, parts, leftover temporaries)."""
    for path in table_paths(root, spec, optional=True):
        path.unlink()
    folder = root / spec.name
    if folder.is_dir():
        for tmp in folder.rglob("*.parquet.tmp"):
            tmp.unlink()
        if not any(folder.rglob("*")):
            shutil.rmtree(folder)


def _source(root: Path, spec: TableSpec) -> Path:
    """The file or folder holding ``spec`` (whichever ``table_paths`` reads)."""
    table_paths(root, spec)  # raises, naming what is missing
    base = root / spec.name
    single = base.with_name(base.name + ".parquet")
    return single if single.is_file() else base


def _true(col: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.fill_null(col, False).cast(pa.int64())).as_py() or 0)


def enrich_dataset(
    data_dir: str | Path,
    *,
    lists: InfraLists | None = None,
    backend: Backend | None = None,
    chunk_rows: int = 250_000,
    restricted_countries: Iterable[str] = RESTRICTED_COUNTRIES,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, int]:
    """Write ``DATA/derived/enrichment`` (part files) and ``DATA/derived/accounts.parquet``.

    Exchanges stream through in chunks of ``chunk_rows`` (memory stays bounded by one chunk);
    stale outputs are deleted first, so re-running is idempotent.  ``lists`` defaults to
    :meth:`InfraLists.default`; ``backend`` to an in-process DuckDB.  Returns counts: exchanges,
    parts, accounts, and how many exchanges had an invalid IP or a hosting / VPN / Tor /
    browser flag.
    """
    data = Path(data_dir)
    table_paths(data, EXCHANGES)  # fail early, naming what is missing
    table_paths(data, ACCOUNTS)
    ip_enricher = IpEnricher(lists)
    client_parser = ClientParser()
    counts = dict.fromkeys(("exchanges", "parts", "invalid_ips", "hosting", "vpn", "tor", "browser"), 0)

    _clear(data, EXCHANGE_ENRICHMENT)
    batches = iter_batches(data, EXCHANGES, columns=list(EXCHANGE_INPUTS), batch_size=chunk_rows)
    for part, batch in enumerate(rechunk(batches, chunk_rows)):
        out = enrich_exchanges(batch, ip_enricher=ip_enricher, client_parser=client_parser)
        write_table(out, data, EXCHANGE_ENRICHMENT, part=part)
        counts["parts"] += 1
        counts["exchanges"] += out.num_rows
        counts["invalid_ips"] += out.column("ip_version").null_count
        for key, column in (
            ("hosting", "is_hosting"),
            ("vpn", "is_vpn"),
            ("tor", "is_tor"),
            ("browser", "is_browser"),
        ):
            counts[key] += _true(out.column(column))
        if progress is not None:
            progress(counts["exchanges"], None)
    if counts["parts"] == 0:  # no exchanges: still leave a (empty) table for readers
        write_table(EXCHANGE_ENRICHMENT.schema.empty_table(), data, EXCHANGE_ENRICHMENT, part=0)
        counts["parts"] = 1

    if backend is None:
        from distillshield.backends import get_backend

        backend = get_backend("duckdb")
    backend.register(_EX, _source(data, EXCHANGES))
    backend.register(_ENR, _source(data, EXCHANGE_ENRICHMENT))
    backend.register(_ACC, _source(data, ACCOUNTS))
    accounts = account_enrichment(
        backend,
        exchanges=_EX,
        enrichment=_ENR,
        accounts=_ACC,
        restricted_countries=restricted_countries,
        ip_enricher=ip_enricher,
    )
    _clear(data, ACCOUNT_ENRICHMENT)
    write_table(accounts, data, ACCOUNT_ENRICHMENT)
    counts["accounts"] = accounts.num_rows
    return counts
