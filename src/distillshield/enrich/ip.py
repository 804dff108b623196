"""IP enrichment: country, ASN, announced network, /24 or /48 prefix, hosting / VPN / Tor flags.

Why: distillation campaigns reach the API through proxy-reseller "hydra" clusters and rented
servers, so *where* a request comes from is one of the strongest attribution signals we have.
Each exchange's client address is looked up once here and the facts are written beside it
(``derived/enrichment``), so every detector reads the same, recomputable answers:

* **country** and **ASN name / announced network** from geoip2fast's bundled MaxMind GeoLite2
  tables (offline; read through :mod:`distillshield.enrich._geo`);
* **prefix** (/24 for IPv4, /48 for IPv6): the unit that proxy pools and NAT rotate within, so
  accounts sharing a prefix are linked even when their exact addresses differ;
* **is_hosting / is_vpn / is_tor** from lists the operator controls (:class:`InfraLists`):
  CIDR ranges plus ASN names, and exact Tor exit addresses.

The flags are facts, not verdicts: SaaS backends run in clouds, employees egress through
corporate VPNs, a whole class shares one campus NAT (docs/enrichment.md lists the look-alikes).

Speed: a batch is dictionary-encoded so each distinct address is looked up once; IPv4 parsing,
geography and list membership are vectorised (regex + integer arithmetic + ``searchsorted`` over
sorted ranges).  Only IPv6 addresses are parsed one by one (Python's ``ipaddress``), which is
fine because they are a small share of distinct addresses in API logs.
"""

from __future__ import annotations

import csv
import fnmatch
import importlib.resources
import io
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.enrich._geo import V4_MAX, GeoTable, load_geo_table

IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]

#: Columns :meth:`IpEnricher.enrich` returns, in order (a subset of ``EXCHANGE_ENRICHMENT``).
IP_FIELDS: Final = pa.schema(
    [
        pa.field("ip_version", pa.int8()),
        pa.field("ip_country", pa.string()),
        pa.field("asn_name", pa.string()),
        pa.field("asn_network", pa.string()),
        pa.field("ip_prefix", pa.string()),
        pa.field("is_hosting", pa.bool_()),
        pa.field("is_vpn", pa.bool_()),
        pa.field("is_tor", pa.bool_()),
    ]
)

#: A dotted quad as ``ipaddress`` accepts it: four decimal octets 0-255, no leading zeros.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_RE: Final = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"


# ---------------------------------------------------------------------------------------------
# CIDR sets: sorted, merged integer ranges
# ---------------------------------------------------------------------------------------------
def _merge_v4(start: IntArray, end: IntArray) -> tuple[IntArray, IntArray]:
    """Sorted, disjoint, non-adjacent ranges covering the same addresses (vectorised)."""
    if len(start) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > reach[:-1] + 1
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)


def _merge_v6(ranges: Iterable[tuple[int, int]]) -> tuple[ObjArray, ObjArray]:
    starts: list[int] = []
    ends: list[int] = []
    for s, e in sorted(ranges):
        if starts and s <= ends[-1] + 1:
            ends[-1] = max(ends[-1], e)
        else:
            starts.append(s)
            ends.append(e)
    return np.array(starts, dtype=object), np.array(ends, dtype=object)


def _inside(starts: npt.NDArray[Any], ends: npt.NDArray[Any], values: npt.NDArray[Any]) -> BoolArray:
    """Whether each value lies in one of the sorted disjoint ranges (one ``searchsorted``)."""
    if len(starts) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    k = np.searchsorted(starts, values, side="right").astype(np.int64) - 1
    hit = k >= 0
    hit[hit] = values[hit] <= ends[k[hit]]
    return hit


@dataclass(frozen=True, eq=False)
class CidrSet:
    """A set of IPv4 and IPv6 networks as merged, sorted integer ranges.

    Membership of a whole batch is one ``numpy.searchsorted`` per family, whatever the number
    of networks (42k datacenter ranges cost the same as 40).  A single address is a /32 or /128.
    """

    v4_start: IntArray
    v4_end: IntArray
    v6_start: ObjArray
    v6_end: ObjArray

    @classmethod
    def empty(cls) -> CidrSet:
        return cls.of(())

    @classmethod
    def of(cls, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network | str]) -> CidrSet:
        """A set from network objects or CIDR / address strings (host bits may be set)."""
        s4: list[int] = []
        e4: list[int] = []
        r6: list[tuple[int, int]] = []
        for item in networks:
            net = item if not isinstance(item, str) else ipaddress.ip_network(item.strip(), strict=False)
            lo, hi = int(net.network_address), int(net.broadcast_address)
            if net.version == 4:
                s4.append(lo)
                e4.append(hi)
            else:
                r6.append((lo, hi))
        v4s, v4e = _merge_v4(np.array(s4, dtype=np.int64), np.array(e4, dtype=np.int64))
        v6s, v6e = _merge_v6(r6)
        return cls(v4s, v4e, v6s, v6e)

    def union(self, other: CidrSet) -> CidrSet:
        v4s, v4e = _merge_v4(
            np.concatenate([self.v4_start, other.v4_start]), np.concatenate([self.v4_end, other.v4_end])
        )
        pairs = zip(
            [*self.v6_start.tolist(), *other.v6_start.tolist()],
            [*self.v6_end.tolist(), *other.v6_end.tolist()],
            strict=True,
        )
        v6s, v6e = _merge_v6(pairs)
        return CidrSet(v4s, v4e, v6s, v6e)

    def contains_v4(self, values: IntArray) -> BoolArray:
        """Membership of IPv4 addresses given as int64."""
        return _inside(self.v4_start, self.v4_end, values)

    def contains_v6(self, values: ObjArray) -> BoolArray:
        """Membership of IPv6 addresses given as Python ints (object array)."""
        return _inside(self.v6_start, self.v6_end, values)

    def __contains__(self, ip: object) -> bool:
        addr = ipaddress.ip_address(str(ip))
        if addr.version == 4:
            return bool(self.contains_v4(np.array([int(addr)], dtype=np.int64))[0])
        return bool(self.contains_v6(np.array([int(addr)], dtype=object))[0])

    @property
    def addresses(self) -> int:
        """How many addresses the set covers (IPv4 and IPv6 together)."""
        v4 = int((self.v4_end - self.v4_start + 1).sum())
        return v4 + sum(int(e) - int(s) + 1 for s, e in zip(self.v6_start, self.v6_end, strict=True))

    def __len__(self) -> int:
        """Number of merged ranges."""
        return len(self.v4_start) + len(self.v6_start)


# ---------------------------------------------------------------------------------------------
# ASN names
# ---------------------------------------------------------------------------------------------
#: Tokens dropped from the end of a name (legal forms) and, for AS/ASN, also from the start, so
#: "Voxility LLP", "VOXILITY, RO" and "AS-VOXILITY" meet at "VOXILITY".
_LEGAL_FORMS: Final = frozenset(
    (
        "INC", "LLC", "LTD", "LIMITED", "GMBH", "MBH", "SRL", "SARL", "SA", "SAS", "SAU", "SL", "SLU", "BV",
        "NV", "AB", "AS", "ASN", "OY", "OYJ", "AG", "KG", "CO", "CORP", "CORPORATION", "COMPANY", "PLC",
        "PTE", "PTY", "SPA", "SRO", "OU", "LLP", "JSC", "PJSC", "OOO", "ZAO", "KK", "PVT", "SDN", "BHD",
    )
)  # fmt: skip
_MIN_KEY_CHARS: Final = 3
_COUNTRY_SUFFIX: Final = re.compile(r",\s*[A-Z]{2}\s*$")
_PARENS: Final = re.compile(r"\([^)]*\)")


def normalise_asn_name(name: str) -> str:
    """The comparison key of an ASN name: upper case, punctuation to spaces, legal forms dropped.

    ``"Hetzner Online GmbH"`` -> ``"HETZNER ONLINE"``; ``"S.A."`` and ``"SA"`` are the same.
    Both list entries and geoip2fast's names go through this, so matching is symmetric.
    """
    tokens = re.sub(r"[^0-9A-Z]+", " ", name.upper().replace(".", "")).split()
    while len(tokens) > 1 and tokens[-1] in _LEGAL_FORMS:
        tokens.pop()
    while len(tokens) > 1 and tokens[0] in ("AS", "ASN"):
        tokens.pop(0)
    return " ".join(tokens)


def asn_name_keys(entry: str) -> frozenset[str]:
    """Every key under which a list entry may match a geoip2fast name.

    Lists write names in several ways: ``"HANDLE - Organisation, CC"`` (bad-asn-list, X4B),
    ``"Name (comment)"``, or geoip2fast's own spelling.  geoip2fast (GeoLite2) names a network by
    its handle for ARIN/APNIC-style registrations and by the organisation for RIPE ones, so both
    halves are kept, with the parenthesised comment and the trailing country code removed.
    """
    text = _COUNTRY_SUFFIX.sub("", _PARENS.sub("", entry).strip()).strip()
    forms = {text, text.split(",", 1)[0]}
    if " - " in text:
        handle, org = text.split(" - ", 1)
        forms |= {handle, org, org.split(",", 1)[0]}
    return frozenset(k for k in map(normalise_asn_name, forms) if len(k) >= _MIN_KEY_CHARS)


@dataclass(frozen=True, eq=False)
class AsnNames:
    """ASN names from a list, with their normalised matching keys (:func:`asn_name_keys`)."""

    entries: tuple[str, ...] = ()
    keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[str]) -> AsnNames:
        ents = tuple(dict.fromkeys(e.strip() for e in entries if e and e.strip()))
        return cls(ents, frozenset(k for e in ents for k in asn_name_keys(e)))

    def union(self, other: AsnNames) -> AsnNames:
        return AsnNames.of((*self.entries, *other.entries))

    def matches(self, name: str | None) -> bool:
        """Whether a geoip2fast ASN name is on the list."""
        return name is not None and normalise_asn_name(name) in self.keys

    def __len__(self) -> int:
        return len(self.entries)


# ---------------------------------------------------------------------------------------------
# list files
# ---------------------------------------------------------------------------------------------
#: Which files of a directory feed which list (shell patterns, matched case-insensitively).
#: The first group follows ../shared/data/infra (lord-alfred/ipranges, X4BNet/lists_vpn,
#: brianhama/bad-asn-list, SecOps-Institute Tor list); the second is the shipped defaults' names.
_FILE_ROLES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("tor_exits", ("tor-exit-nodes.lst", "tor_exits*.txt", "tor_exits*.lst")),
    ("vpn_cidrs", ("x4b_vpn_ipv4.txt", "x4b_vpn_ipv6.txt", "vpn_cidrs*.txt")),
    (
        "hosting_cidrs",
        ("ipranges_*.txt", "x4b_datacenter_ipv4.txt", "x4b_datacenter_ipv6.txt", "hosting_cidrs*.txt"),
    ),
    ("vpn_asns", ("x4b_vpn_asn.txt", "vpn_asn*.txt")),
    ("hosting_asns", ("x4b_datacenter_asn.txt", "bad-asn-list.csv", "hosting_asn*.txt", "hosting_asn*.csv")),
)
_AS_LINE: Final = re.compile(r"^AS\d+\b\s*(?:#\s*(?P<name>.*))?$", re.IGNORECASE)


def _role(filename: str) -> str | None:
    low = filename.lower()
    for role, patterns in _FILE_ROLES:
        if any(fnmatch.fnmatchcase(low, p) for p in patterns):
            return role
    return None


_V4_CIDR_RE: Final = rf"^{_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?[0-9]))?$"


def _list_tokens(text: str) -> tuple[list[int], list[str]]:
    """(line numbers, first token) of each content line: ``#`` comments and blanks dropped.

    Only the first whitespace-, comma- or semicolon-separated token is read, so lists that put a
    note after the range still load.
    """
    nos: list[int] = []
    tokens: list[str] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            nos.append(no)
            tokens.append(re.split(r"[\s,;]+", line, maxsplit=1)[0])
    return nos, tokens


def parse_cidr_lines(text: str, source: str) -> CidrSet:
    """The networks of a CIDR / address list (one per line, ``#`` comments); bad lines are errors.

    Host bits may be set (``10.0.0.1/8`` means ``10.0.0.0/8``); a bare address is a /32 or
    /128.  IPv4 lines, the bulk of real lists, are parsed with pyarrow kernels (42k datacenter
    ranges in ~30 ms); IPv6 lines with ``ipaddress``.  An error names the file and line.
    """
    nos, tokens = _list_tokens(text)
    arr = pa.array(tokens, type=pa.string())
    is4 = pc.fill_null(pc.match_substring_regex(arr, _V4_CIDR_RE), False).to_numpy(zero_copy_only=False)
    s4 = np.zeros(0, dtype=np.int64)
    e4 = np.zeros(0, dtype=np.int64)
    if is4.any():
        v4 = arr.filter(pa.array(is4))
        has_len = pc.match_substring(v4, "/")
        full = pc.if_else(has_len, v4, pc.binary_join_element_wise(v4, pa.scalar("/32"), ""))
        nums = (
            pc.list_flatten(pc.split_pattern_regex(full, r"[./]")).cast(pa.int64()).to_numpy().reshape(-1, 5)
        )
        ip = (nums[:, 0] << 24) | (nums[:, 1] << 16) | (nums[:, 2] << 8) | nums[:, 3]
        size = np.int64(1) << (32 - nums[:, 4])
        s4 = ip & ~(size - 1)
        e4 = s4 + size - 1
    r6: list[tuple[int, int]] = []
    for i in np.flatnonzero(~is4).tolist():
        try:
            net = ipaddress.ip_network(tokens[i], strict=False)
        except ValueError as exc:
            raise ValueError(f"{source}:{nos[i]}: not an IP network or address: {tokens[i]!r}") from exc
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:  # e.g. an IPv4 form the fast path does not take
            s4 = np.append(s4, lo)
            e4 = np.append(e4, hi)
        else:
            r6.append((lo, hi))
    v4s, v4e = _merge_v4(s4, e4)
    v6s, v6e = _merge_v6(r6)
    return CidrSet(v4s, v4e, v6s, v6e)


def parse_asn_lines(text: str, source: str) -> list[str]:
    """ASN *names* from a list file (numbers are dropped: geoip2fast has none to match them to).

    Formats: CSV ``ASN,Entity`` (bad-asn-list; a header row is skipped); ``AS123 # name``
    (X4B; a line without a ``#`` name contributes nothing); or one name per line (the shipped
    defaults, in geoip2fast's spelling), where ``#`` starts a comment.
    """
    if source.lower().endswith(".csv"):
        names = []
        for row in csv.reader(io.StringIO(text), skipinitialspace=True):
            if len(row) >= 2 and row[0].strip().upper().removeprefix("AS").isdigit() and row[1].strip():
                names.append(row[1].strip())
        return names
    names = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _AS_LINE.match(line)
        if m:
            if m.group("name") and m.group("name").strip():
                names.append(m.group("name").strip())
            continue
        name = re.split(r"\s#", line, maxsplit=1)[0].strip()
        if name:
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# the lists
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class InfraLists:
    """Operator-configurable infrastructure lists behind ``is_hosting``, ``is_vpn`` and ``is_tor``.

    * ``hosting_cidrs`` / ``vpn_cidrs``: address ranges of clouds, hosting providers, VPN exits;
    * ``hosting_asns`` / ``vpn_asns``: ASN *names* (geoip2fast has names, not numbers; matched
      after :func:`normalise_asn_name`);
    * ``tor_exits``: exact Tor exit addresses.

    :meth:`default` is the small list shipped with the package (a starting point, see
    docs/enrichment.md); :meth:`from_dir` reads an operator's files; :meth:`merge` combines.
    """

    hosting_cidrs: CidrSet = field(default_factory=CidrSet.empty)
    vpn_cidrs: CidrSet = field(default_factory=CidrSet.empty)
    tor_exits: CidrSet = field(default_factory=CidrSet.empty)
    hosting_asns: AsnNames = field(default_factory=AsnNames)
    vpn_asns: AsnNames = field(default_factory=AsnNames)
    sources: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        hosting_cidrs: Iterable[str] = (),
        vpn_cidrs: Iterable[str] = (),
        tor_exits: Iterable[str] = (),
        hosting_asn_names: Iterable[str] = (),
        vpn_asn_names: Iterable[str] = (),
    ) -> InfraLists:
        """Lists from in-memory values (CIDRs / addresses and ASN names)."""
        return cls(
            CidrSet.of(hosting_cidrs),
            CidrSet.of(vpn_cidrs),
            CidrSet.of(tor_exits),
            AsnNames.of(hosting_asn_names),
            AsnNames.of(vpn_asn_names),
            ("<memory>",),
        )

    @classmethod
    def default(cls) -> InfraLists:
        """The small lists shipped in ``distillshield/enrich/data/infra`` (read on each call)."""
        root = importlib.resources.files("distillshield.enrich").joinpath("data", "infra")
        files = sorted((f.name, f.read_text(encoding="utf-8")) for f in root.iterdir() if f.is_file())
        return cls._from_texts(files, prefix="distillshield:enrich/data/infra/")

    @classmethod
    def from_dir(cls, path: str | Path) -> InfraLists:
        """Lists from an operator's directory, in the formats of ../shared/data/infra.

        Recognised file names (case-insensitive): ``ipranges_*.txt``, ``x4b_datacenter_ipv4.txt``,
        ``x4b_datacenter_ipv6.txt``, ``hosting_cidrs*.txt`` (hosting CIDRs); ``x4b_vpn_ipv4.txt``,
        ``x4b_vpn_ipv6.txt``, ``vpn_cidrs*.txt`` (VPN CIDRs); ``x4b_datacenter_ASN.txt``,
        ``bad-asn-list.csv``, ``hosting_asn*.txt`` (hosting ASN names); ``x4b_vpn_ASN.txt``,
        ``vpn_asn*.txt`` (VPN ASN names); ``tor-exit-nodes.lst``, ``tor_exits*.txt`` (Tor
        exits).  Other files are ignored; a directory with none of these is an error.
        """
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory of infrastructure lists")
        files = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(root.iterdir()) if p.is_file()]
        lists = cls._from_texts(files, prefix=f"{root}/")
        if not lists.sources:
            raise FileNotFoundError(
                f"{root}: no recognised list files (expected e.g. ipranges_*.txt, x4b_vpn_ipv4.txt, "
                "x4b_datacenter_ASN.txt, bad-asn-list.csv, tor-exit-nodes.lst; see docs/enrichment.md)"
            )
        return lists

    @classmethod
    def _from_texts(cls, files: Sequence[tuple[str, str]], *, prefix: str) -> InfraLists:
        nets: dict[str, CidrSet] = {
            "hosting_cidrs": CidrSet.empty(),
            "vpn_cidrs": CidrSet.empty(),
            "tor_exits": CidrSet.empty(),
        }
        names: dict[str, list[str]] = {"hosting_asns": [], "vpn_asns": []}
        used: list[str] = []
        for name, text in files:
            role = _role(name)
            if role is None:
                continue
            source = prefix + name
            used.append(source)
            if role in nets:
                nets[role] = nets[role].union(parse_cidr_lines(text, source))
            else:
                names[role].extend(parse_asn_lines(text, source))
        return cls(
            nets["hosting_cidrs"],
            nets["vpn_cidrs"],
            nets["tor_exits"],
            AsnNames.of(names["hosting_asns"]),
            AsnNames.of(names["vpn_asns"]),
            tuple(used),
        )

    def merge(self, other: InfraLists) -> InfraLists:
        """The union of two sets of lists (e.g. the defaults plus an operator's own)."""
        return InfraLists(
            self.hosting_cidrs.union(other.hosting_cidrs),
            self.vpn_cidrs.union(other.vpn_cidrs),
            self.tor_exits.union(other.tor_exits),
            self.hosting_asns.union(other.hosting_asns),
            self.vpn_asns.union(other.vpn_asns),
            (*self.sources, *other.sources),
        )

    def summary(self) -> dict[str, int]:
        """Sizes of each list (ranges after merging, names, exits), for reports and logs."""
        return {
            "hosting_ranges": len(self.hosting_cidrs),
            "vpn_ranges": len(self.vpn_cidrs),
            "tor_exit_addresses": self.tor_exits.addresses,
            "hosting_asn_names": len(self.hosting_asns),
            "vpn_asn_names": len(self.vpn_asns),
        }


# ---------------------------------------------------------------------------------------------
# address parsing and formatting
# ---------------------------------------------------------------------------------------------
def _format_v4(ints: IntArray) -> pa.StringArray:
    """Dotted quads for many IPv4 integers (pyarrow string kernels, no Python loop)."""
    parts = [pa.array((ints >> shift) & 255).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _with_suffix(text: pa.StringArray, suffix: str) -> pa.StringArray:
    return pc.binary_join_element_wise(text, pa.scalar(suffix), "")


@dataclass(frozen=True)
class _Parsed:
    """Distinct addresses split by family: positions in the distinct list and integer values."""

    v4_pos: IntArray
    v4: IntArray
    v6_pos: IntArray
    v6: ObjArray


def _parse(uniques: pa.StringArray) -> _Parsed:
    """Parse distinct address strings; anything ``ipaddress`` would reject is left out (invalid).

    IPv4 is validated and converted with pyarrow kernels.  Strings with a colon go through
    ``ipaddress.IPv6Address`` one by one; an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``, what
    dual-stack servers log for IPv4 clients) counts as the IPv4 address it carries.
    """
    text = pc.utf8_trim_whitespace(uniques)
    is4 = pc.fill_null(pc.match_substring_regex(text, _V4_RE), False).to_numpy(zero_copy_only=False)
    v4_pos = np.flatnonzero(is4).astype(np.int64)
    if len(v4_pos):
        quads = pc.list_flatten(pc.split_pattern(text.filter(pa.array(is4)), "."))
        octets = quads.cast(pa.int64()).to_numpy().reshape(-1, 4)
        v4 = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    else:
        v4 = np.zeros(0, dtype=np.int64)
    colon = pc.fill_null(pc.match_substring(text, ":"), False).to_numpy(zero_copy_only=False) & ~is4
    cand = np.flatnonzero(colon)
    extra_pos: list[int] = []
    extra_v4: list[int] = []
    pos6: list[int] = []
    val6: list[int] = []
    for i, s in zip(cand.tolist(), text.take(pa.array(cand)).to_pylist(), strict=True):
        value = _v6_int(s)
        if value is None:
            continue
        if value >> 32 == 0xFFFF:  # ::ffff:a.b.c.d, IPv4-mapped
            extra_pos.append(i)
            extra_v4.append(value & V4_MAX)
        else:
            pos6.append(i)
            val6.append(value)
    if extra_pos:
        v4_pos = np.concatenate([v4_pos, np.array(extra_pos, dtype=np.int64)])
        v4 = np.concatenate([v4, np.array(extra_v4, dtype=np.int64)])
    return _Parsed(v4_pos, v4.astype(np.int64), np.array(pos6, dtype=np.int64), np.array(val6, dtype=object))


def _v6_int(text: str) -> int | None:
    """An IPv6 address as an int, or None; ``inet_pton`` first (50x faster than ``ipaddress``)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        pass
    try:  # forms inet_pton rejects but ipaddress takes, e.g. a zone id ("fe80::1%eth0")
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _format_v6(value: int) -> str:
    """RFC 5952 text of an IPv6 address (``inet_ntop``; ``ipaddress`` inside ``::/96``, where
    ``inet_ntop`` would print a dotted IPv4 tail)."""
    if value >> 96:
        return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))
    return str(ipaddress.IPv6Address(value))


def _as_string_array(ips: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Array:
    if isinstance(ips, pa.ChunkedArray):
        ips = ips.combine_chunks() if ips.num_chunks != 1 else ips.chunk(0)
    elif not isinstance(ips, pa.Array):
        ips = pa.array(list(ips), type=pa.string())
    if pa.types.is_dictionary(ips.type):
        return ips
    if not pa.types.is_string(ips.type):
        ips = ips.cast(pa.string())
    return ips


#: :data:`_V4_RE` compiled, for :meth:`IpEnricher.lookup_plain` (the same addresses as :func:`_parse`).
_PLAIN_V4 = re.compile(_V4_RE)


# ---------------------------------------------------------------------------------------------
# the enricher
# ---------------------------------------------------------------------------------------------
class IpEnricher:
    """Looks up batches of client addresses (see the module docstring for what and why).

    Holds the geoip2fast tables it loads (IPv4 on first use, IPv6 only when a batch has IPv6
    addresses) and a cache of which ASN names are on the lists, so keep one instance for a run.
    """

    def __init__(self, lists: InfraLists | None = None) -> None:
        self.lists = lists if lists is not None else InfraLists.default()
        self._tables: dict[bool, GeoTable] = {}
        self._codes: dict[bool, pa.Array] = {}
        self._names: dict[bool, pa.Array] = {}
        # per table, per ASN name id: 0 unknown yet, else 1 + hosting bit + 2 * vpn bit
        self._asn_flags: dict[bool, npt.NDArray[np.int8]] = {}
        self._hosting_names: dict[str, bool] = {}  # lookup_plain's cache

    def enrich(self, ips: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Table:
        """One row per input address with the columns of :data:`IP_FIELDS`.

        Invalid or missing addresses give nulls in every column (never an exception).  A valid
        address outside geoip2fast's blocks (private, reserved) has a version and prefix, null
        country / ASN, and flags from the lists alone.
        """
        arr = _as_string_array(ips)
        if pa.types.is_dictionary(arr.type):
            indices, uniques = arr.indices, arr.dictionary.cast(pa.string())
        else:
            enc = pc.dictionary_encode(arr)
            indices, uniques = enc.indices, enc.dictionary
        m = len(uniques)
        parsed = _parse(uniques)
        parts = [self._facts_v4(parsed.v4), self._facts_v6(parsed.v6)]
        valid = np.zeros(m + 1, dtype=bool)
        valid[parsed.v4_pos] = True
        valid[parsed.v6_pos] = True
        invalid_pos = np.flatnonzero(~valid)  # includes the sentinel m, the row for null inputs
        parts.append(
            pa.Table.from_arrays([pa.nulls(len(invalid_pos), f.type) for f in IP_FIELDS], schema=IP_FIELDS)
        )
        pos = np.concatenate([parsed.v4_pos, parsed.v6_pos, invalid_pos])
        row_of = np.empty(m + 1, dtype=np.int64)
        row_of[pos] = np.arange(len(pos), dtype=np.int64)
        idx = pc.fill_null(indices.cast(pa.int64()), m).to_numpy()
        facts = pa.concat_tables(parts).combine_chunks()
        return facts.take(pa.array(row_of[idx]))

    def lookup(self, ip: str) -> dict[str, Any]:
        """The facts about one address, as a dict (convenience for tests and notebooks)."""
        row: dict[str, Any] = self.enrich(pa.array([ip], type=pa.string())).to_pylist()[0]
        return row

    def warm(self) -> None:
        """Load both address families' tables now (0.4 s for IPv4, 0.7 s for IPv6) rather than
        in the middle of the first request that needs them (the gateway calls this at start)."""
        self._table(False)
        self._table(True)

    def lookup_plain(self, ip: str) -> tuple[str, str | None, bool, str | None] | None:
        """``(prefix, asn_name, is_hosting, country)`` of one plain address, without Arrow; ``None`` when
        ``ip`` is not a plain dotted quad or plain IPv6 address (then use :meth:`enrich`).

        For the gateway: :meth:`enrich` has ~2.5 ms of fixed Arrow cost even for one address,
        which would land on the first request of every new client address; this is a few
        binary searches (~20 µs) in the same tables with the same rules — same prefix, same
        ASN name, same hosting flag, same country (``tests/test_gateway_engine.py`` compares the two on
        thousands of addresses). IPv4-mapped IPv6, zone ids and anything unusual return None.
        """
        if _PLAIN_V4.fullmatch(ip):
            a, b, c, d = (int(x) for x in ip.split("."))
            value, v6 = (a << 24) | (b << 16) | (c << 8) | d, False
            prefix = f"{a}.{b}.{c}.0/24"
        elif ":" in ip and ip.strip() == ip and "%" not in ip:
            try:
                value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
            except (OSError, ValueError):
                return None
            if value >> 32 == 0xFFFF:  # IPv4-mapped: the batch code reads the IPv4 inside
                return None
            v6 = True
            net = (value >> 80) << 80
            text = (
                socket.inet_ntop(socket.AF_INET6, net.to_bytes(16, "big"))
                if net >> 96
                else str(ipaddress.IPv6Address(net))
            )
            prefix = f"{text}/48"
        else:
            return None
        table = self._table(v6)
        # GeoIP2Fast's rule, as in GeoTable.locate: no country block, no ASN either
        i = int(np.searchsorted(table.country_first, value, side="right")) - 1
        asn: str | None = None
        country: str | None = None
        if i >= 0 and value <= table.country_last[i]:
            country = table.country_codes[int(table.country_idx[i])]
            j = int(np.searchsorted(table.asn_first, value, side="right")) - 1
            if j >= 0 and value <= table.asn_last[j]:
                k = int(table.asn_idx[j])
                if table.asn_named[k]:
                    asn = table.asn_names[k]
        arr = np.array([value], dtype=object if v6 else np.int64)
        cidrs = self.lists.hosting_cidrs
        hosting = bool((cidrs.contains_v6(arr) if v6 else cidrs.contains_v4(arr))[0])
        if not hosting and asn is not None:
            flag = self._hosting_names.get(asn)
            if flag is None:
                flag = self._hosting_names[asn] = normalise_asn_name(asn) in self.lists.hosting_asns.keys
            hosting = flag
        return prefix, asn, hosting, country

    # ---- internals -------------------------------------------------------------------------
    def _table(self, v6: bool) -> GeoTable:
        table = self._tables.get(v6)
        if table is None:
            table = self._tables[v6] = load_geo_table(v6)
            self._codes[v6] = pa.array(table.country_codes, type=pa.string())
            self._names[v6] = pa.array(table.asn_names, type=pa.string())
            self._asn_flags[v6] = np.zeros(len(table.asn_names), dtype=np.int8)
        return table

    def _asn_list_flags(self, v6: bool, name_ids: IntArray) -> tuple[BoolArray, BoolArray]:
        """(hosting, vpn) for ASN name ids, normalising each distinct name once per instance."""
        flags = self._asn_flags[v6]
        todo = np.unique(name_ids[flags[name_ids] == 0])
        if len(todo):
            names = self._tables[v6].asn_names
            hosting, vpn = self.lists.hosting_asns, self.lists.vpn_asns
            for k in todo.tolist():
                key = normalise_asn_name(names[k])
                flags[k] = 1 + (key in hosting.keys) + 2 * (key in vpn.keys)
        f = flags[name_ids] - 1
        return (f & 1).astype(bool), (f & 2).astype(bool)

    def _geo_columns(
        self, v6: bool, values: npt.NDArray[Any]
    ) -> tuple[pa.Array, pa.Array, IntArray, IntArray, BoolArray]:
        table = self._table(v6)
        crow, arow = table.locate(values)
        has_c, has_a = crow >= 0, arow >= 0
        cidx = pa.array(table.country_idx[np.maximum(crow, 0)], mask=~has_c)
        nidx = table.asn_idx[np.maximum(arow, 0)]
        country = self._codes[v6].take(cidx)
        asn_name = self._names[v6].take(pa.array(nidx, mask=~has_a))
        return country, asn_name, arow, nidx, has_a

    def _flags(
        self,
        v6: bool,
        nidx: IntArray,
        has_a: BoolArray,
        in_host: BoolArray,
        in_vpn: BoolArray,
        tor: BoolArray,
    ) -> list[pa.Array]:
        host_asn, vpn_asn = self._asn_list_flags(v6, nidx)
        return [
            pa.array(in_host | (host_asn & has_a)),
            pa.array(in_vpn | (vpn_asn & has_a)),
            pa.array(tor),
        ]

    def _facts_v4(self, v: IntArray) -> pa.Table:
        if len(v) == 0:
            return IP_FIELDS.empty_table()
        country, asn_name, arow, nidx, has_a = self._geo_columns(False, v)
        table = self._tables[False]
        # announced networks: format each distinct ASN block once
        rows, inv = np.unique(arow[has_a], return_inverse=True)
        nets = _with_suffix(_format_v4(table.asn_first[rows]), "/")
        nets = pc.binary_join_element_wise(nets, pa.array(table.asn_prefix[rows]).cast(pa.string()), "")
        take = np.zeros(len(v), dtype=np.int64)
        take[has_a] = inv.reshape(-1)
        asn_network = nets.take(pa.array(take, mask=~has_a))
        prefix = _with_suffix(_format_v4(v & ~np.int64(255)), "/24")
        lists = self.lists
        flags = self._flags(
            False,
            nidx,
            has_a,
            lists.hosting_cidrs.contains_v4(v),
            lists.vpn_cidrs.contains_v4(v),
            lists.tor_exits.contains_v4(v),
        )
        version = pa.array(np.full(len(v), 4, dtype=np.int8))
        return pa.Table.from_arrays(
            [version, country, asn_name, asn_network, prefix, *flags], schema=IP_FIELDS
        )

    @staticmethod
    def _v6_strings(keys: npt.NDArray[Any], ok: BoolArray, fmt: Callable[[Any], str]) -> pa.Array:
        """``fmt`` of each key where ``ok`` (null elsewhere), formatting each distinct key once."""
        uniq, inv = np.unique(keys[ok], return_inverse=True)
        texts = pa.array([fmt(k) for k in uniq.tolist()], type=pa.string())
        take = np.zeros(len(keys), dtype=np.int64)
        take[ok] = inv.reshape(-1)
        return texts.take(pa.array(take, mask=~ok))

    def _facts_v6(self, v: ObjArray) -> pa.Table:
        if len(v) == 0:
            return IP_FIELDS.empty_table()
        country, asn_name, arow, nidx, has_a = self._geo_columns(True, v)
        table = self._tables[True]
        asn_network = self._v6_strings(
            arow, has_a, lambda r: f"{_format_v6(int(table.asn_first[r]))}/{int(table.asn_prefix[r])}"
        )
        p48 = np.array([x >> 80 for x in v.tolist()], dtype=object)
        prefix = self._v6_strings(
            p48, np.ones(len(v), dtype=bool), lambda p: f"{_format_v6(int(p) << 80)}/48"
        )
        lists = self.lists
        flags = self._flags(
            True,
            nidx,
            has_a,
            lists.hosting_cidrs.contains_v6(v),
            lists.vpn_cidrs.contains_v6(v),
            lists.tor_exits.contains_v6(v),
        )
        version = pa.array(np.full(len(v), 6, dtype=np.int8))
        return pa.Table.from_arrays(
            [version, country, asn_name, asn_network, prefix, *flags], schema=IP_FIELDS
        )
