"""Peers' indicators at sign-up: an :class:`~distillshield.intel.IndicatorSet` as the verifier's
:class:`~distillshield.access.PeerIndicators` (``distillshield verify --peers BUNDLE``).

The hunt (:mod:`distillshield.intel.hunt`) looks for peers' indicators in traffic we already
served; a sign-up has no traffic yet, only what the request carries: an address, a client
fingerprint, a payment fingerprint. Those are the kinds a peer shares that can be checked
before the first request:

=============  ===================================================================================
asked kind     matches a peer indicator
=============  ===================================================================================
ip             ``ipv4`` / ``ipv6`` equal to the address (canonical forms), or a ``cidr`` holding it
prefix         a ``cidr`` holding the whole /24 (IPv4) or /48 (IPv6) the verifier asks about
client         ``user_agent`` equal to the client's user agent, and its TLS fingerprint when the
               peer gave one (the client fingerprint is ``"<user agent> | <TLS fingerprint>"``)
payment_hash   ``payment_hash`` equal (both are keyed hashes under the community key)
email_domain   never: peers do not share e-mail domains (customer data, and too common)
=============  ===================================================================================

Indicators whose ``valid_until`` is before ``as_of`` are dropped when the index is built, so
a stale bundle does not add friction for ever. Template and metadata indicators need traffic
and stay with the hunt. The label reported is ``"<source>/<peer campaign>"``.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from distillshield.intel._common import IntelError
from distillshield.intel.imports import IndicatorSet, IntelIndicator, load_indicators

__all__ = ["PeerIndex", "load_peer_index"]

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _label(ind: IntelIndicator) -> str:
    return f"{ind.source or 'peer'}/{ind.campaign or ind.ref or ind.kind}"


class PeerIndex:
    """Answers :meth:`match` from a peer :class:`IndicatorSet` (implements ``PeerIndicators``)."""

    def __init__(self, indicators: IndicatorSet, *, as_of: datetime | None = None) -> None:
        self._ips: dict[str, str] = {}
        self._nets: dict[int, dict[_Net, str]] = defaultdict(dict)  # prefix length -> network -> label
        self._uas: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        self._payments: dict[str, str] = {}
        self.used = 0
        for ind in indicators.items:
            if as_of is not None and ind.valid_until is not None and ind.valid_until < as_of:
                continue
            if ind.kind in ("ipv4", "ipv6"):
                try:
                    self._ips.setdefault(str(ipaddress.ip_address(ind.value)), _label(ind))
                except ValueError:
                    continue
            elif ind.kind == "cidr":
                try:
                    net = ipaddress.ip_network(ind.value, strict=False)
                except ValueError:
                    continue
                self._nets[net.prefixlen].setdefault(net, _label(ind))
            elif ind.kind == "user_agent":
                self._uas[ind.value].append((ind.tls, _label(ind)))
            elif ind.kind == "payment_hash":
                self._payments.setdefault(ind.value, _label(ind))
            else:
                continue
            self.used += 1

    def __len__(self) -> int:
        return self.used

    def _in_nets(self, net: _Net) -> str | None:
        """The label of a peer prefix holding all of ``net`` (the most specific first)."""
        for length in sorted(self._nets, reverse=True):
            if length > net.prefixlen:
                continue
            try:
                outer = net.supernet(new_prefix=length)
            except ValueError:  # a length of the other address family
                continue
            hit = self._nets[length].get(outer)
            if hit is not None:
                return hit
        return None

    def match(self, kind: str, value: str) -> str | None:
        """A label when a peer reported ``value`` under ``kind``, else None (see the module table)."""
        if kind == "payment_hash":
            return self._payments.get(value)
        if kind == "ip":
            try:
                addr = ipaddress.ip_address(value.strip())
            except ValueError:
                return None
            exact = self._ips.get(str(addr))
            return exact if exact is not None else self._in_nets(ipaddress.ip_network(addr))
        if kind == "prefix":
            try:
                return self._in_nets(ipaddress.ip_network(value.strip(), strict=False))
            except ValueError:
                return None
        if kind == "client":
            ua, sep, tls = value.partition(" | ")
            for want_tls, label in self._uas.get(ua.strip(), ()):
                if want_tls is None or (sep and want_tls == tls.strip()):
                    return label
            return None
        return None


def load_peer_index(
    sources: list[Path], *, community_key: bytes | None, as_of: datetime | None
) -> tuple[PeerIndex, list[str]]:
    """Peers' bundles / MISP events as a :class:`PeerIndex`, and the skipped objects' reasons.

    A rejected source is an :class:`~distillshield.intel.IntelError` naming it, not an empty
    peer set: a verifier silently running without the peers it was configured with would
    look like one that checks them.
    """
    imported = load_indicators(sources, community_key=community_key)
    if imported.rejected:
        raise IntelError("; ".join(imported.rejected))
    return PeerIndex(imported.indicators, as_of=as_of), list(imported.skipped)
