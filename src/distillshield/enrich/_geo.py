"""geoip2fast's bundled country + ASN tables, read directly as flat sorted arrays.

Shared by the enrichment layer (:class:`~distillshield.enrich.IpEnricher`) and the simulator's
address space (:mod:`distillshield.simulate.network`), so that both see exactly the same
geography.  Why not a ``GeoIP2Fast`` instance: it keeps its tables in *module globals*, so
loading the IPv6 file in one instance silently replaces the tables of every other instance in
the process.  Reading the files ourselves (gzip + pickle, the structure ``GeoIP2Fast`` itself
unpacks) keeps every user independent and gives arrays that ``numpy.searchsorted`` can query
for a whole batch at once.  Nothing is ever downloaded: geoip2fast's updater is never called.

Each caller caches the tables it loads on its own instances (about 0.4 s for IPv4, 0.7 s for
IPv6); this module holds no state.
"""

from __future__ import annotations

import gzip
import importlib.resources
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

_DATA_FILES: Final[Mapping[bool, str]] = MappingProxyType(
    {False: "geoip2fast-asn.dat.gz", True: "geoip2fast-asn-ipv6.dat.gz"}
)
V4_MAX: Final = 2**32 - 1
#: geoip2fast reports the first 16 entries of its country list (reserved / private ranges, and by
#: an off-by-one in the IPv4 file also Andorra) as "--"; we mirror that as "no country".
_PRIVATE_COUNTRY_ENTRIES: Final = 16
#: ASN names geoip2fast uses for "no name".
_UNNAMED: Final = frozenset({"", "<unknown>"})


@dataclass(frozen=True)
class GeoTable:
    """One geoip2fast data file as flat, sorted arrays (IPv4 as int64, IPv6 as Python ints).

    Country blocks and ASN blocks are two independent sorted lists of CIDR-aligned ranges
    (``*_first`` .. ``*_last``).  ``country_idx`` / ``asn_idx`` index ``country_codes`` /
    ``asn_names``; ``asn_prefix`` is the announced prefix length of each ASN block.
    """

    v6: bool
    country_first: npt.NDArray[Any]
    country_last: npt.NDArray[Any]
    country_idx: npt.NDArray[np.int64]
    country_codes: tuple[str | None, ...]
    asn_first: npt.NDArray[Any]
    asn_last: npt.NDArray[Any]
    asn_prefix: npt.NDArray[np.int64]
    asn_idx: npt.NDArray[np.int64]
    asn_names: tuple[str, ...]
    asn_named: npt.NDArray[np.bool_]  # per entry of asn_names: a real name, not "" / "<unknown>"

    def country_at(self, ip: int) -> tuple[int, str | None]:
        """(row in the country table, country) of ``ip``; row -1 when geoip2fast has no block."""
        i = int(np.searchsorted(self.country_first, ip, side="right")) - 1
        if i < 0 or ip > self.country_last[i]:
            return -1, None
        return i, self.country_codes[int(self.country_idx[i])]

    def asn_at(self, ip: int) -> str | None:
        """ASN name of the block holding ``ip`` (None: no block, or an unnamed one)."""
        j = int(np.searchsorted(self.asn_first, ip, side="right")) - 1
        if j < 0 or ip > self.asn_last[j]:
            return None
        name = self.asn_names[int(self.asn_idx[j])]
        return None if name in _UNNAMED else name

    def locate(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Rows of the country block and of the named ASN block holding each address (-1: none).

        The vectorised twin of :meth:`country_at` + :meth:`asn_at` with ``GeoIP2Fast.lookup``'s
        rule that an address outside every country block has no ASN either.  ``values`` is int64
        for an IPv4 table and an object array of Python ints for an IPv6 one.
        """
        n = len(values)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        i = np.searchsorted(self.country_first, values, side="right").astype(np.int64) - 1
        ok = i >= 0
        ok[ok] = values[ok] <= self.country_last[i[ok]]
        country_row = np.where(ok, i, -1)
        j = np.searchsorted(self.asn_first, values, side="right").astype(np.int64) - 1
        hit = ok & (j >= 0)
        hit[hit] = values[hit] <= self.asn_last[j[hit]]
        hit[hit] = self.asn_named[self.asn_idx[j[hit]]]
        return country_row, np.where(hit, j, -1)


def _flat(chunks: list[list[int]]) -> list[int]:
    return [x for chunk in chunks for x in chunk]


def load_geo_table(v6: bool) -> GeoTable:
    """Read one of geoip2fast's bundled data files (never its updater: nothing is downloaded).

    ``v6=False`` reads ``geoip2fast-asn.dat.gz`` (IPv4); ``v6=True`` reads
    ``geoip2fast-asn-ipv6.dat.gz`` and keeps only its IPv6 part, since IPv4 addresses are always
    looked up in the IPv4 file.
    """
    name = _DATA_FILES[v6]
    resource = importlib.resources.files("geoip2fast").joinpath(name)
    with resource.open("rb") as raw, gzip.GzipFile(fileobj=raw) as fh:
        loaded = pickle.load(fh)  # geoip2fast's own bundled file, the same load GeoIP2Fast performs
    try:
        version, info, _total, database = loaded
        (_idx, _idx_asn, country_names, asn_names, first, first_asn, cids, aids, nlen, nlen_asn) = database
    except (TypeError, ValueError) as exc:
        raise RuntimeError(f"unexpected layout of geoip2fast data file {name}") from exc
    if version not in (120, 121) or not (info.get("country") and info.get("asn")):
        raise RuntimeError(f"geoip2fast data file {name} is not a country+ASN file of format 120/121")
    c_first, c_len, c_idx = _flat(first), _flat(nlen), _flat(cids)
    a_first, a_len, a_idx = _flat(first_asn), _flat(nlen_asn), _flat(aids)
    codes = tuple(
        None if i < _PRIVATE_COUNTRY_ENTRIES else str(s).split(":", 1)[0] for i, s in enumerate(country_names)
    )
    if v6:
        c_keep = [i for i, x in enumerate(c_first) if x > V4_MAX]
        a_keep = [i for i, x in enumerate(a_first) if x > V4_MAX]
        cf = np.array([c_first[i] for i in c_keep], dtype=object)
        cl = np.array([c_first[i] + (1 << (128 - c_len[i])) - 1 for i in c_keep], dtype=object)
        ci = np.array([c_idx[i] for i in c_keep], dtype=np.int64)
        af = np.array([a_first[i] for i in a_keep], dtype=object)
        ap = np.array([a_len[i] for i in a_keep], dtype=np.int64)
        al = np.array([int(f) + (1 << (128 - int(p))) - 1 for f, p in zip(af, ap, strict=True)], dtype=object)
        ai = np.array([a_idx[i] for i in a_keep], dtype=np.int64)
    else:
        cf = np.array(c_first, dtype=np.int64)
        cl = cf + (np.int64(1) << (32 - np.array(c_len, dtype=np.int64))) - 1
        ci = np.array(c_idx, dtype=np.int64)
        af = np.array(a_first, dtype=np.int64)
        ap = np.array(a_len, dtype=np.int64)
        al = af + (np.int64(1) << (32 - ap)) - 1
        ai = np.array(a_idx, dtype=np.int64)
    names = tuple(str(n) for n in asn_names)
    named = np.fromiter((n not in _UNNAMED for n in names), dtype=bool, count=len(names))
    return GeoTable(v6, cf, cl, ci, codes, af, al, ap, ai, names, named)
