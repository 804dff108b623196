"""Online per-account features: small mergeable estimators, updated on every request.

The batch fingerprint (:mod:`distillshield.features.account`) is finished from mergeable
per-account statistics (:mod:`distillshield.features.stats`). A real-time gateway needs the
same numbers *while* the traffic arrives, one request at a time, kept in process or
serialised into a key-value store. This module is that state, river-style: every estimator
has ``update(...)``, ``get()``, an in-place ``merge(other)`` (associative and commutative),
``to_dict()`` / ``from_dict()`` (JSON-safe and compact: integers, floats, short strings, and
base64 for packed sketches) and ``__eq__``; constructor arguments are its whole
configuration, and two estimators merge only when their configurations are equal
(:class:`ValueError` otherwise). Time is always passed in, as Unix epoch seconds — nothing
here reads the wall clock — and is kept internally as integer microseconds, the batch
tables' resolution, so online gaps equal the batch ``date_diff('microsecond', ...)`` ones.

Estimators
    :class:`Count`, :class:`Sum`, :class:`Share` (numerator / denominator),
    :class:`Moments` (Welford updates, Chan merges), :class:`InterArrival` (gap moments
    plus first/last time: the cross-chunk gap of ``stats.fingerprint_sql``),
    :class:`WindowedCount` (a ring of time buckets), :class:`ActiveBins` (distinct time
    bins as a bitset: active days), :class:`DistinctCount` (exact set of 64-bit hashes up to
    a cap, then HyperLogLog registers), :class:`TopK` (exact counts up to a capacity, then
    mergeable Misra-Gries, plus distinct keys), :class:`Entropy` (exact counts over a small
    category set).

:class:`AccountOnline`
    One account's aggregate: ``update(OnlineEvent)`` per request, ``get()`` the feature
    dict. Every batch column that can be computed from the account's own requests is
    there under the batch name and definition (:data:`SHARED_FEATURES`); the rest are
    listed with the reason in :data:`NOT_ONLINE`; :data:`ONLINE_ONLY` are extra
    recent-activity numbers the batch table does not have.

Mergeability contract (checked by ``tests/test_features_online.py``): split one stream of
events over N workers, merge the N states in any grouping and order, and the result equals
one worker's state —

* exactly (integers) for counts, sums, shares, windowed counts, active bins, the exact
  phase of distinct counts and top-k, and the HyperLogLog registers themselves (a register
  is a max over the hashes seen, whatever the split);
* to 1e-9 relative for moments (floating-point merge order);
* inter-arrival moments need *time-disjoint* pieces (each worker's events all before or
  all after the other's; touching at one instant is fine), merged time-adjacent piece by
  piece (in either direction) — how an account's stream splits under sticky routing,
  restarts, or hourly roll-ups. Pieces that interleave in time merge with the gap count,
  first/last time and mean gap still exact, but the gap variance is estimated (pooled
  squared CV of the pieces, right for randomly routed requests) and the state is marked
  approximate (:attr:`InterArrival.approximate`). Within one stream, requests counted up
  to ``reorder`` (default 8) places out of time order — concurrent requests completing
  out of order — are absorbed exactly;
* beyond a sketch's cap: distinct counts are the HyperLogLog estimate (standard error
  ``1.04 / sqrt(2**precision)``, 3.25 % at the default precision 10; estimator: Ertl 2017,
  the one Redis uses); top-k counts are Misra-Gries lower bounds with
  ``true - max_error <= count <= true`` per key, so the top share is within
  ``max_error / total`` below the truth. Split-and-merge may then give different
  (equally bounded) top-k counters than one pass.

Serialised size (compact JSON, :meth:`AccountOnline.to_bytes`), measured on the default
scenario at 10 % scale: median 1.7 kB per account (1 kB for accounts with at most 20
requests), 90th percentile 2.9 kB, largest 4.2 kB; zlib takes the median to 1 kB. The
template counts dominate (about 11 bytes per distinct template id while exact); every
sketch is bounded — a distinct count holds at most ``8 * cap`` bytes exactly, then
``0.75 * 2**precision`` bytes of registers (768 at precision 10), before base64's 4/3.
No library does this here: Apache DataSketches' HLL was considered, but its estimate is
not exact for small sets (5 values read 5.00000005) and a merged sketch differs from a
one-pass one (the HIP accumulator is dropped on union), both of which the batch-agreement
and split-and-merge contracts need.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, ClassVar, Self

from distillshield.features.stats import (
    COUNTRY_UTC_OFFSET,
    NIGHT_HOURS,
    RELEASE_WINDOW_HOURS,
    SATURATION,
)

__all__ = [
    "NOT_ONLINE",
    "ONLINE_FEATURES",
    "ONLINE_ONLY",
    "SHARED_FEATURES",
    "AccountOnline",
    "ActiveBins",
    "Count",
    "DistinctCount",
    "Entropy",
    "Estimator",
    "InterArrival",
    "Moments",
    "OnlineConfig",
    "OnlineEvent",
    "Share",
    "Sum",
    "TopK",
    "WindowedCount",
    "hash64",
]

_US = 1_000_000
_DAY_US = 86_400 * _US
_HOUR_US = 3_600 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(ts: float) -> int:
    """Epoch seconds to integer microseconds (the batch tables' resolution)."""
    return round(ts * _US)


def hash64(value: str) -> int:
    """A stable 64-bit hash of a string (BLAKE2b, 8 bytes, little-endian): same in every process."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# --------------------------------------------------------------------------------------
# base class


class Estimator:
    """Common behaviour: configuration checks, equality, copies and the JSON codec.

    Subclasses define ``update(...)``, ``get()``, ``merge(other)``, ``to_dict()``,
    ``from_dict(d)`` and :meth:`_config` (the constructor arguments; two estimators merge
    only when these are equal).
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]  # mutable

    def _config(self) -> tuple[Any, ...]:
        return ()

    def _check(self, other: object) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        assert isinstance(other, Estimator)
        if other._config() != self._config():
            raise ValueError(
                f"cannot merge {type(self).__name__}s of different configuration: "
                f"{self._config()} vs {other._config()}"
            )

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    def copy(self) -> Self:
        """An independent copy (through the codec)."""
        return type(self).from_dict(self.to_dict())

    def to_bytes(self) -> bytes:
        """Compact JSON (UTF-8) of :meth:`to_dict`: what a key-value store holds."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls.from_dict(json.loads(data))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Estimator)
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


# --------------------------------------------------------------------------------------
# additive estimators


class Count(Estimator):
    """How many updates (or the sum of ``k``). ``get()``: the count, 0 when empty."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def get(self) -> int:
        return self.n

    def merge(self, other: Count) -> None:
        self._check(other)
        self.n += other.n

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls()
        out.n = int(d["n"])
        return out


class Sum(Estimator):
    """Sum of the values given; ``None`` is skipped (SQL ``sum``). ``get()``: 0 when empty."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total: int | float = 0

    def update(self, x: float | None) -> None:
        if x is not None:
            self.total += x

    def get(self) -> int | float:
        return self.total

    def merge(self, other: Sum) -> None:
        self._check(other)
        self.total += other.total

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.total}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls()
        out.total = d["s"]
        return out


class Share(Estimator):
    """``num / den``: ``update(hit, counted=True)`` adds one to the denominator when
    ``counted`` and one to the numerator when also ``hit``. ``get()``: ``None`` while the
    denominator is 0 (SQL ``x / nullif(den, 0)``)."""

    __slots__ = ("den", "num")

    def __init__(self) -> None:
        self.num = 0
        self.den = 0

    def update(self, hit: bool, counted: bool = True) -> None:
        if counted:
            self.den += 1
            if hit:
                self.num += 1

    def get(self) -> float | None:
        return self.num / self.den if self.den else None

    def merge(self, other: Share) -> None:
        self._check(other)
        self.num += other.num
        self.den += other.den

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.num, "d": self.den}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls()
        out.num, out.den = int(d["n"]), int(d["d"])
        return out


class Moments(Estimator):
    """Count, mean and sum of squared deviations (``m2``) of a stream of numbers.

    Welford's update, Chan's parallel merge. ``get()``: the mean (``None`` when empty);
    :attr:`variance` is the population variance (SQL ``var_pop``).
    """

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def get(self) -> float | None:
        return self.mean if self.n else None

    @property
    def variance(self) -> float | None:
        return max(self.m2, 0.0) / self.n if self.n else None

    @property
    def std(self) -> float | None:
        v = self.variance
        return math.sqrt(v) if v is not None else None

    def copy(self) -> Self:
        out = type(self)()
        out.n, out.mean, out.m2 = self.n, self.mean, self.m2
        return out

    def merge(self, other: Moments) -> None:
        self._check(other)
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        d = other.mean - self.mean
        self.mean += d * other.n / n
        self.m2 += other.m2 + d * d * self.n * other.n / n
        self.n = n

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "m": self.mean, "s": self.m2}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls()
        out.n, out.mean, out.m2 = int(d["n"]), float(d["m"]), float(d["s"])
        return out


# --------------------------------------------------------------------------------------
# time


class InterArrival(Estimator):
    """Seconds between consecutive events: the gap :class:`Moments` plus first/last time.

    ``update(ts)`` with ``ts`` in epoch seconds (kept as integer microseconds). ``get()``:
    the coefficient of variation (population std / mean) of the gaps, with the batch
    ``interarrival_cv`` rule: ``None`` below two gaps or with a zero mean gap.

    Events may arrive out of order by up to ``reorder`` places (concurrent requests finishing
    in another order than they started): the newest ``reorder`` times are held in a sorted
    tail and only older ones are committed into the gap moments, so such disorder is
    absorbed exactly. An event older than every held one lands in the committed past: exact
    when it precedes the first event (a gap is prepended), otherwise the count, span and
    mean gap stay exact but the variance is rescaled and :attr:`approximate` is set (it
    then sticks).

    Merge of time-disjoint pieces (one ends no later than the other starts) is exact: the
    gap across the boundary is added, as ``fingerprint_sql`` does across chunks, and the
    result is the same state one pass would hold. Pieces that interleave cannot be merged
    exactly from these statistics: the count, first/last time and mean gap stay exact, the
    variance is estimated by the pieces' pooled squared CV (right for randomly routed
    requests) and :attr:`approximate` is set. Merging pieces out of time order (a and c
    before the b between them) is the interleaved case too: merge time-adjacent pieces.
    """

    __slots__ = ("approximate", "c_first", "c_last", "c_n", "gaps", "reorder", "tail")

    DEFAULT_REORDER: ClassVar[int] = 8

    def __init__(self, reorder: int = DEFAULT_REORDER) -> None:
        if reorder < 0:
            raise ValueError("reorder must be >= 0")
        self.reorder = int(reorder)
        self.c_n = 0  # committed events (all older than the tail) and their gap moments
        self.c_first = 0
        self.c_last = 0
        self.gaps = Moments()
        self.tail: list[int] = []  # the newest events, sorted, at most `reorder` of them
        self.approximate = False

    def _config(self) -> tuple[Any, ...]:
        return (self.reorder,)

    @property
    def n(self) -> int:
        """Events seen."""
        return self.c_n + len(self.tail)

    @property
    def first_us(self) -> int:
        """Earliest event (epoch microseconds; 0 when empty)."""
        if self.c_n:
            return self.c_first
        return self.tail[0] if self.tail else 0

    @property
    def last_us(self) -> int:
        """Latest event (epoch microseconds; 0 when empty)."""
        if self.tail:
            return self.tail[-1]
        return self.c_last if self.c_n else 0

    def update(self, ts: float) -> None:
        self._update_us(_us(ts))

    def _update_us(self, t: int) -> None:
        if self.c_n and t < self.c_last:
            self._late(t)
            return
        tail = self.tail
        if not tail or t >= tail[-1]:
            tail.append(t)
        else:
            bisect.insort(tail, t)
        if len(tail) > self.reorder:
            self._commit(tail.pop(0))

    def _commit(self, t: int) -> None:
        if self.c_n:
            self.gaps.update((t - self.c_last) / _US)
            self.c_last = t
        else:
            self.c_first = self.c_last = t
        self.c_n += 1

    def _late(self, t: int) -> None:
        """An event older than the newest committed one."""
        g = self.gaps
        if t <= self.c_first:  # before everything: prepend the gap, exactly
            first = Moments()
            first.update((self.c_first - t) / _US)
            first.merge(g)
            self.gaps, self.c_first = first, t
        else:  # inside the committed span: keep count, span and mean; rescale the variance
            k = self.c_n
            mean = (self.c_last - self.c_first) / _US / k
            cv2 = g.m2 / (g.n * g.mean * g.mean) if g.n and g.mean > 0 else 0.0
            g.n, g.mean, g.m2 = k, mean, cv2 * mean * mean * k
            self.approximate = True
        self.c_n += 1

    def _folded(self) -> Moments:
        """The gap moments of all events (committed and held)."""
        if not self.tail:
            return self.gaps
        g = self.gaps.copy()
        prev = self.c_last if self.c_n else None
        for t in self.tail:
            if prev is not None:
                g.update((t - prev) / _US)
            prev = t
        return g

    @property
    def mean_gap(self) -> float | None:
        """Mean seconds between consecutive events (``None`` below two events)."""
        return self._folded().get()

    @property
    def cv(self) -> float | None:
        g = self._folded()
        if g.n >= 2 and g.mean > 0:
            return math.sqrt(max(g.m2, 0.0) / g.n) / g.mean
        return None

    @property
    def burstiness(self) -> float | None:
        """Goh–Barabási ``(std - mean) / (std + mean)`` of the gaps: -1 clockwork, 0 Poisson, →1 bursts."""
        g = self._folded()
        if g.n < 2:
            return None
        s = math.sqrt(max(g.m2, 0.0) / g.n)
        return (s - g.mean) / (s + g.mean) if s + g.mean > 0 else None

    def get(self) -> float | None:
        return self.cv

    def merge(self, other: InterArrival) -> None:
        self._check(other)
        if other.n == 0:
            return
        if self.n == 0:
            self._set(other)
            return
        a, b = sorted((self, other), key=lambda p: (p.first_us, p.last_us))
        approximate = self.approximate or other.approximate
        out = InterArrival(self.reorder)
        if a.last_us <= b.first_us:
            # one pass over a's events then b's: committed pieces joined by their boundary gap
            out._set(a)
            if b.c_n:
                for t in out.tail:
                    out._commit(t)
                out.tail = []
                gaps = out.gaps
                if out.c_n:
                    gaps.update((b.c_first - out.c_last) / _US)
                    gaps.merge(b.gaps)
                    out.c_last = b.c_last
                    out.c_n += b.c_n
                else:
                    out.gaps, out.c_n, out.c_first, out.c_last = b.gaps.copy(), b.c_n, b.c_first, b.c_last
                out.tail = list(b.tail)
            else:
                out.tail += b.tail
            while len(out.tail) > out.reorder:
                out._commit(out.tail.pop(0))
        else:
            n, first, last = a.n + b.n, min(a.first_us, b.first_us), max(a.last_us, b.last_us)
            folded = [p._folded() for p in (a, b)]
            k = n - 1
            mean = (last - first) / _US / k
            live = [g for g in folded if g.n and g.mean > 0]
            w = sum(g.n for g in live)
            cv2 = sum(g.m2 / (g.mean * g.mean) for g in live) / w if w else 0.0
            out.gaps.n, out.gaps.mean, out.gaps.m2 = k, mean, cv2 * mean * mean * k
            out.c_n, out.c_first, out.c_last = n, first, last
            approximate = True
        self._set(out)
        self.approximate = approximate

    def _set(self, other: InterArrival) -> None:
        self.c_n, self.c_first, self.c_last = other.c_n, other.c_first, other.c_last
        self.gaps = other.gaps.copy()
        self.tail = list(other.tail)
        self.approximate = other.approximate

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.reorder == self.DEFAULT_REORDER else {"r": self.reorder}
        if self.c_n:
            out["n"], out["a"], out["b"] = self.c_n, self.c_first, self.c_last
            if self.gaps.n:
                out["g"] = [self.gaps.n, self.gaps.mean, self.gaps.m2]
        if self.tail:  # deltas: from the last committed event (or absolute), then successive
            prev = self.c_last if self.c_n else 0
            out["t"] = [t - p for p, t in zip([prev, *self.tail], self.tail, strict=False)]
        if self.approximate:
            out["x"] = 1
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls(int(d.get("r", cls.DEFAULT_REORDER)))
        if "n" in d:
            out.c_n, out.c_first, out.c_last = int(d["n"]), int(d["a"]), int(d["b"])
        if "g" in d:
            out.gaps.n, out.gaps.mean, out.gaps.m2 = int(d["g"][0]), float(d["g"][1]), float(d["g"][2])
        t = out.c_last if out.c_n else 0
        for delta in d.get("t", ()):
            t += int(delta)
            out.tail.append(t)
        out.approximate = bool(d.get("x", 0))
        return out


class WindowedCount(Estimator):
    """Counts (or sums of ``k``) in a ring of ``n_buckets`` time buckets ``width_s`` wide.

    Buckets are aligned to the Unix epoch. The head is the newest bucket seen; buckets
    ``n_buckets`` or more behind it are dropped, and so is an update that falls there.
    ``get(now)``: the total over the ``n_buckets`` buckets ending with ``now``'s bucket,
    i.e. over ``[start of bucket(now) - (n_buckets - 1) * width_s, end of bucket(now))``
    (``now`` defaults to the newest event): never anything older. For ``now`` at or after
    the newest event the answer is exact; for an earlier ``now`` buckets already dropped
    are missing. Merge is bucket-wise sum then the same eviction, so the state is a
    function of the multiset of updates alone.
    """

    __slots__ = ("buckets", "head", "n_buckets", "width_s", "width_us")

    def __init__(self, width_s: float = 60.0, n_buckets: int = 60) -> None:
        if width_s <= 0 or n_buckets < 1:
            raise ValueError("width_s must be > 0 and n_buckets >= 1")
        self.width_s = float(width_s)
        self.n_buckets = int(n_buckets)
        self.width_us = _us(self.width_s)
        self.head: int | None = None
        self.buckets: dict[int, int] = {}

    def _config(self) -> tuple[Any, ...]:
        return (self.width_s, self.n_buckets)

    def update(self, ts: float, k: int = 1) -> None:
        self._update_us(_us(ts), k)

    def _update_us(self, t: int, k: int = 1) -> None:
        if k == 0:
            return
        b = t // self.width_us
        if self.head is None or b > self.head:
            self.head = b
            self._evict()
        elif b <= self.head - self.n_buckets:
            return
        self.buckets[b] = self.buckets.get(b, 0) + k

    def _evict(self) -> None:
        assert self.head is not None
        low = self.head - self.n_buckets
        if any(b <= low for b in self.buckets):
            self.buckets = {b: c for b, c in self.buckets.items() if b > low}

    def get(self, now: float | None = None) -> int:
        if self.head is None:
            return 0
        nb = self.head if now is None else _us(now) // self.width_us
        return sum(c for b, c in self.buckets.items() if nb - self.n_buckets < b <= nb)

    def merge(self, other: WindowedCount) -> None:
        self._check(other)
        if other.head is None:
            return
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c
        self.head = other.head if self.head is None else max(self.head, other.head)
        self._evict()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if (self.width_s, self.n_buckets) != (60.0, 60):
            out["w"], out["k"] = self.width_s, self.n_buckets
        if self.head is not None:
            out["h"] = self.head
            flat: list[int] = []
            for b in sorted(self.buckets, reverse=True):
                if self.buckets[b]:
                    flat += [self.head - b, self.buckets[b]]
            out["c"] = flat
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls(float(d.get("w", 60.0)), int(d.get("k", 60)))
        if "h" in d:
            out.head = int(d["h"])
            flat = d["c"]
            out.buckets = {out.head - int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return out


class ActiveBins(Estimator):
    """Distinct time bins ``bin_s`` wide (epoch-aligned) with at least one event, exactly.

    A bitset from the earliest bin seen: 14 active days over a month cost 8 hex digits.
    ``get()``: the number of distinct bins (0 when empty). With ``bin_s = 86400`` this is
    the batch ``active_days`` (distinct UTC dates).
    """

    __slots__ = ("bin_s", "bin_us", "bits", "origin")

    def __init__(self, bin_s: float = 86_400.0) -> None:
        if bin_s <= 0:
            raise ValueError("bin_s must be > 0")
        self.bin_s = float(bin_s)
        self.bin_us = _us(self.bin_s)
        self.origin: int | None = None
        self.bits = 0

    def _config(self) -> tuple[Any, ...]:
        return (self.bin_s,)

    def update(self, ts: float) -> None:
        self._update_us(_us(ts))

    def _update_us(self, t: int) -> None:
        self._add_bits(t // self.bin_us, 1)

    def _add_bits(self, origin: int, bits: int) -> None:
        if self.origin is None:
            self.origin, self.bits = origin, bits
        elif origin >= self.origin:
            self.bits |= bits << (origin - self.origin)
        else:
            self.bits = (self.bits << (self.origin - origin)) | bits
            self.origin = origin

    def get(self) -> int:
        return self.bits.bit_count()

    def merge(self, other: ActiveBins) -> None:
        self._check(other)
        if other.origin is not None:
            self._add_bits(other.origin, other.bits)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.bin_s == 86_400.0 else {"w": self.bin_s}
        if self.origin is not None:
            out["o"], out["b"] = self.origin, format(self.bits, "x")
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls(float(d.get("w", 86_400.0)))
        if "o" in d:
            out.origin, out.bits = int(d["o"]), int(d["b"], 16)
        return out


# --------------------------------------------------------------------------------------
# sketches


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        z_old = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3.0


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_old = z
        z += x * y
        y += y
        if z == z_old:
            return z


class _Registers:
    """HyperLogLog registers over 64-bit hashes (not an estimator on its own).

    Register ``h mod 2**p`` keeps the maximum of (trailing zeros of ``h >> p``) + 1;
    the estimate is Ertl's improved raw estimator ("New cardinality estimation algorithms
    for HyperLogLog sketches", 2017, as in Redis), unbiased over the whole range without
    bias tables. Registers of a set of hashes do not depend on insertion order or split.
    """

    __slots__ = ("p", "r")

    def __init__(self, p: int) -> None:
        self.p = p
        self.r = bytearray(1 << p)

    def add(self, h: int) -> None:
        p = self.p
        w = h >> p
        rho = (w & -w).bit_length() if w else 65 - p
        i = h & ((1 << p) - 1)
        if rho > self.r[i]:
            self.r[i] = rho

    def merge(self, other: _Registers) -> None:
        self.r = bytearray(map(max, self.r, other.r))

    def estimate(self) -> float:
        m, q = 1 << self.p, 64 - self.p
        counts = [self.r.count(v) for v in range(q + 2)]
        z = m * _tau((m - counts[q + 1]) / m)
        for k in range(q, 0, -1):
            z = 0.5 * (z + counts[k])
        z += m * _sigma(counts[0] / m)
        return (m * m / (2.0 * math.log(2.0))) / z

    def encode(self) -> dict[str, str]:
        """Sparse (``s``: sorted ``index << 6 | value`` words, 2 bytes for p <= 10 else 3)
        or dense (``d``: 6 bits per register, 4 registers in 3 bytes), whichever is smaller."""
        width = 2 if self.p <= 10 else 3
        nonzero = [(i, v) for i, v in enumerate(self.r) if v]
        if len(nonzero) * width < len(self.r) * 3 // 4:
            return {"s": _b64(b"".join(((i << 6) | v).to_bytes(width, "big") for i, v in nonzero))}
        packed = bytearray()
        r = self.r
        for i in range(0, len(r), 4):
            packed += (r[i] | r[i + 1] << 6 | r[i + 2] << 12 | r[i + 3] << 18).to_bytes(3, "little")
        return {"d": _b64(bytes(packed))}

    @classmethod
    def decode(cls, p: int, d: Mapping[str, Any]) -> _Registers:
        out = cls(p)
        if "s" in d:
            raw, width = _unb64(d["s"]), 2 if p <= 10 else 3
            for j in range(0, len(raw), width):
                word = int.from_bytes(raw[j : j + width], "big")
                out.r[word >> 6] = word & 63
        else:
            raw = _unb64(d["d"])
            for j in range(0, len(raw), 3):
                v = int.from_bytes(raw[j : j + 3], "little")
                i = j // 3 * 4
                out.r[i], out.r[i + 1], out.r[i + 2], out.r[i + 3] = (
                    v & 63,
                    v >> 6 & 63,
                    v >> 12 & 63,
                    v >> 18 & 63,
                )
        return out


_HEX64 = re.compile("[0-9a-f]{16}")


def _check_precision(precision: int) -> None:
    if not 4 <= precision <= 16:
        raise ValueError("precision must be in [4, 16]")


class DistinctCount(Estimator):
    """Distinct values: exact up to ``cap``, then a HyperLogLog of ``2**precision`` registers.

    Values are strings, hashed with :func:`hash64` (a collision of two of an account's
    values is a ~n²/2**65 event). ``get()``: the exact count while :attr:`is_exact`, else
    the estimate (standard error :attr:`relative_error`). The exact set serialises as 8
    bytes per value; the registers as at most ``0.75 * 2**precision`` bytes.
    """

    __slots__ = ("cap", "exact", "precision", "regs")

    DEFAULT_CAP: ClassVar[int] = 64
    DEFAULT_PRECISION: ClassVar[int] = 10

    def __init__(self, cap: int = DEFAULT_CAP, precision: int = DEFAULT_PRECISION) -> None:
        _check_precision(precision)
        if cap < 0:
            raise ValueError("cap must be >= 0")
        self.cap = int(cap)
        self.precision = int(precision)
        self.exact: set[int] | None = set()
        self.regs: _Registers | None = None

    def _config(self) -> tuple[Any, ...]:
        return (self.cap, self.precision)

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    @property
    def relative_error(self) -> float:
        """Standard error of the estimate once past the cap (0 while exact)."""
        return 0.0 if self.exact is not None else 1.04 / math.sqrt(1 << self.precision)

    def update(self, value: str) -> None:
        self.add_hash(hash64(value))

    def add_hash(self, h: int) -> None:
        if self.exact is None:
            assert self.regs is not None
            self.regs.add(h)
        else:
            self.exact.add(h)
            if len(self.exact) > self.cap:
                self._to_sketch()

    def _to_sketch(self) -> _Registers:
        if self.regs is None:
            self.regs = _Registers(self.precision)
            for h in self.exact or ():
                self.regs.add(h)
            self.exact = None
        return self.regs

    def get(self) -> float:
        if self.exact is not None:
            return float(len(self.exact))
        assert self.regs is not None
        return self.regs.estimate()

    def merge(self, other: DistinctCount) -> None:
        self._check(other)
        if self.exact is not None and other.exact is not None:
            self.exact |= other.exact
            if len(self.exact) > self.cap:
                self._to_sketch()
            return
        regs = self._to_sketch()
        if other.exact is not None:
            for h in other.exact:
                regs.add(h)
        else:
            assert other.regs is not None
            regs.merge(other.regs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cap != self.DEFAULT_CAP:
            out["c"] = self.cap
        if self.precision != self.DEFAULT_PRECISION:
            out["p"] = self.precision
        if self.exact is not None:
            if self.exact:
                out["e"] = _b64(b"".join(h.to_bytes(8, "big") for h in sorted(self.exact)))
        else:
            assert self.regs is not None
            out.update(self.regs.encode())
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls(int(d.get("c", cls.DEFAULT_CAP)), int(d.get("p", cls.DEFAULT_PRECISION)))
        if "s" in d or "d" in d:
            out.exact = None
            out.regs = _Registers.decode(out.precision, d)
        elif "e" in d:
            raw = _unb64(d["e"])
            out.exact = {int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)}
        return out


class TopK(Estimator):
    """Counts per key: exact up to ``capacity`` distinct keys, then mergeable Misra-Gries.

    While :attr:`is_exact` every key's count is kept. When a new key would make it
    ``capacity + 1`` keys, the (``capacity // 2 + 1``)-th largest count is subtracted from
    every counter and the non-positive ones dropped (the Agarwal et al. 2012 mergeable
    summary): each kept count is then a lower bound, ``true - max_error <= count <= true``,
    with ``max_error <= (total - sum(counts)) / (capacity // 2 + 1)``. From that moment the
    distinct keys are also counted by HyperLogLog registers (``precision``).

    Keys that are all 16 lowercase hex digits (64-bit ids, as template ids are) serialise
    packed, 8 bytes each. ``get()``: ``[(key, count), ...]`` by count descending then key
    ([] when empty);
    :attr:`top_share` (max count / total), :attr:`distinct`, :attr:`total`.
    """

    __slots__ = ("capacity", "counts", "max_error", "precision", "regs", "total")

    DEFAULT_CAPACITY: ClassVar[int] = 128

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, precision: int = DistinctCount.DEFAULT_PRECISION
    ) -> None:
        _check_precision(precision)
        if capacity < 2:
            raise ValueError("capacity must be >= 2")
        self.capacity = int(capacity)
        self.precision = int(precision)
        self.counts: dict[str, int] = {}
        self.total = 0
        self.max_error = 0
        self.regs: _Registers | None = None

    def _config(self) -> tuple[Any, ...]:
        return (self.capacity, self.precision)

    @property
    def is_exact(self) -> bool:
        return self.regs is None

    def update(self, key: str, k: int = 1) -> None:
        self.total += k
        counts = self.counts
        if self.regs is not None:
            self.regs.add(hash64(key))
        counts[key] = counts.get(key, 0) + k
        if len(counts) > self.capacity:
            self._purge()

    def _sketch(self) -> _Registers:
        if self.regs is None:
            self.regs = _Registers(self.precision)
            for key in self.counts:
                self.regs.add(hash64(key))
        return self.regs

    def _purge(self) -> None:
        self._sketch()
        keep = self.capacity // 2
        c = sorted(self.counts.values(), reverse=True)[keep]
        self.counts = {key: v - c for key, v in self.counts.items() if v > c}
        self.max_error += c

    def get(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))

    @property
    def top_share(self) -> float | None:
        if not self.total:
            return None
        return max(self.counts.values()) / self.total if self.counts else 0.0

    @property
    def distinct(self) -> float:
        return float(len(self.counts)) if self.regs is None else self.regs.estimate()

    def merge(self, other: TopK) -> None:
        self._check(other)
        exact = self.regs is None and other.regs is None
        if exact and len(self.counts.keys() | other.counts.keys()) <= self.capacity:
            for key, v in other.counts.items():
                self.counts[key] = self.counts.get(key, 0) + v
            self.total += other.total
            return
        regs = self._sketch()
        if other.regs is None:
            for key in other.counts:
                regs.add(hash64(key))
        else:
            regs.merge(other.regs)
        for key, v in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + v
        self.total += other.total
        self.max_error += other.max_error
        if len(self.counts) > self.capacity:
            self._purge()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"N": self.total}
        keys = sorted(self.counts)
        if keys and all(_HEX64.fullmatch(k) for k in keys):
            # 64-bit hex ids (template ids are): packed, 8 bytes each, counts alongside
            out["x"] = _b64(b"".join(bytes.fromhex(k) for k in keys))
            out["n"] = [self.counts[k] for k in keys]
        else:
            out["c"] = {k: self.counts[k] for k in keys}
        if self.capacity != self.DEFAULT_CAPACITY:
            out["k"] = self.capacity
        if self.precision != DistinctCount.DEFAULT_PRECISION:
            out["p"] = self.precision
        if self.regs is not None:
            out["e"] = self.max_error
            out["r"] = self.regs.encode()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls(int(d.get("k", cls.DEFAULT_CAPACITY)), int(d.get("p", DistinctCount.DEFAULT_PRECISION)))
        out.total = int(d["N"])
        if "x" in d:
            raw = _unb64(d["x"])
            keys = [raw[i : i + 8].hex() for i in range(0, len(raw), 8)]
            out.counts = {k: int(v) for k, v in zip(keys, d["n"], strict=True)}
        else:
            out.counts = {str(k): int(v) for k, v in d["c"].items()}
        if "r" in d:
            out.max_error = int(d["e"])
            out.regs = _Registers.decode(out.precision, d["r"])
        return out


class Entropy(Estimator):
    """Exact counts over a small category set (capabilities, hours of day).

    ``update(category)``; ``None`` is skipped (SQL ``WHERE val IS NOT NULL``). ``get()``:
    Shannon entropy in bits, ``None`` when nothing was counted; :attr:`top_share` is the
    share of the most frequent category. Unbounded: meant for vocabularies of a few dozen.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def update(self, category: str | None, k: int = 1) -> None:
        if category is not None:
            self.counts[category] = self.counts.get(category, 0) + k

    def get(self) -> float | None:
        t = sum(self.counts.values())
        if not t:
            return None
        return -sum((c / t) * math.log(c / t) for c in self.counts.values()) / math.log(2)

    @property
    def top_share(self) -> float | None:
        t = sum(self.counts.values())
        return max(self.counts.values()) / t if t else None

    def merge(self, other: Entropy) -> None:
        self._check(other)
        for key, v in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {"c": dict(sorted(self.counts.items()))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        out = cls()
        out.counts = {str(k): int(v) for k, v in d["c"].items()}
        return out


# --------------------------------------------------------------------------------------
# the per-account aggregate

#: Batch fingerprint columns (:data:`distillshield.features.account.FINGERPRINT_COLUMNS`)
#: that :meth:`AccountOnline.get` returns under the same name and definition.
SHARED_FEATURES: tuple[str, ...] = (
    "n_requests",
    "active_days",
    "requests_per_active_day",
    "input_tokens",
    "output_tokens",
    "output_input_ratio",
    "max_token_saturation_share",
    "reasoning_share",
    "cot_expose_share",
    "step_by_step_share",
    "capability_entropy",
    "top_capability_share",
    "distinct_templates",
    "template_coverage",
    "top_template_share",
    "multi_turn_share",
    "conversations",
    "interarrival_cv",
    "hour_entropy",
    "night_share_local",
    "post_release_new_model_share",
    "distinct_ips",
    "distinct_prefixes",
    "distinct_asns",
    "distinct_countries",
    "ips_per_request",
    "hosting_share",
    "vpn_share",
    "distinct_user_agents",
    "distinct_tls_fingerprints",
    "account_age_days",
    "declared_country_share",
)

#: Batch fingerprint columns not computed online, and why.
NOT_ONLINE: dict[str, str] = {
    "account_id": "the key, not a feature",
    "template_sharing": "cross-account: how many other accounts use this account's top template "
    "family needs every account's families (a gateway-wide family index, not per-account state)",
    "pathway": "an account fact (accounts table), looked up, not computed from traffic",
    "verified": "an account fact (accounts table), looked up, not computed from traffic",
    "email_domain_class": "an account fact (derived/accounts), looked up, not computed from traffic",
}

#: Extra online features (no batch column): recent activity for throttling and timing shape.
ONLINE_ONLY: dict[str, str] = {
    "requests_last_hour": "requests in the 60 one-minute buckets ending with now's minute",
    "requests_last_day": "requests in the 24 one-hour buckets ending with now's hour",
    "output_tokens_last_hour": "output tokens in the 60 one-minute buckets ending with now's minute",
    "interarrival_mean_s": "mean seconds between consecutive requests",
    "burstiness": "(std - mean) / (std + mean) of the gaps: -1 clockwork, 0 Poisson, toward 1 bursty",
}

#: Every key of :meth:`AccountOnline.get`, in order.
ONLINE_FEATURES: tuple[str, ...] = SHARED_FEATURES + tuple(ONLINE_ONLY)

_COT_EXPOSE = "expose_reasoning"
_COT_STEP = "step_by_step"


@dataclass(frozen=True, slots=True)
class OnlineEvent:
    """One request as the online features see it (canonical column names, see docs/schema.md).

    ``ts`` is epoch seconds (quantised to microseconds). Network fields come from IP
    enrichment (``ip_prefix``, ``asn`` = ``asn_name``, ``ip_country``, ``is_hosting``,
    ``is_vpn``), content fields from the request signals (``template_id``, ``cot_elicit``
    one of ``expose_reasoning`` / ``step_by_step`` / ``none``, ``capability``); ``None``
    where unknown, exactly as the batch tables hold null. ``output_tokens`` and
    ``reasoning_tokens`` are known after the response: a gateway updates once the
    response is done (or updates the request part and the response part separately on
    two states and merges them — every statistic is per request, see ``update``).
    """

    ts: float
    model: str | None = None
    ip: str | None = None
    ip_prefix: str | None = None
    asn: str | None = None
    ip_country: str | None = None
    is_hosting: bool | None = None
    is_vpn: bool | None = None
    user_agent: str | None = None
    tls_fingerprint: str | None = None
    conversation_id: str | None = None
    n_messages: int | None = 1
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    max_tokens: int | None = None
    reasoning_tokens: int | None = None
    template_id: str | None = None
    template_family: str | None = None
    cot_elicit: str | None = None
    capability: str | None = None

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> OnlineEvent:
        """From a joined exchanges + signals + enrichment row (canonical column names;
        ``ts`` a timezone-aware datetime or epoch seconds; ``asn_name`` or ``asn``)."""
        ts = rec["ts"]
        if isinstance(ts, datetime):
            ts = ((ts - _EPOCH) // timedelta(microseconds=1)) / _US
        return cls(
            ts=float(ts),
            model=rec.get("model"),
            ip=rec.get("ip"),
            ip_prefix=rec.get("ip_prefix"),
            asn=rec.get("asn_name", rec.get("asn")),
            ip_country=rec.get("ip_country"),
            is_hosting=rec.get("is_hosting"),
            is_vpn=rec.get("is_vpn"),
            user_agent=rec.get("user_agent"),
            tls_fingerprint=rec.get("tls_fingerprint"),
            conversation_id=rec.get("conversation_id"),
            n_messages=rec.get("n_messages"),
            input_tokens=rec.get("input_tokens"),
            output_tokens=rec.get("output_tokens"),
            max_tokens=rec.get("max_tokens"),
            reasoning_tokens=rec.get("reasoning_tokens"),
            template_id=rec.get("template_id"),
            template_family=rec.get("template_family"),
            cot_elicit=rec.get("cot_elicit"),
            capability=rec.get("capability"),
        )


@dataclass(frozen=True)
class OnlineConfig:
    """Everything shared by all accounts' states (a state merges only with an equal config).

    ``releases``: ``(model, released_at epoch seconds)`` pairs — the release calendar of
    ``post_release_new_model_share``; a request is judged against the calendar known when
    it is counted (a release added later does not re-count past requests).
    ``distinct_cap`` / ``precision``: :class:`DistinctCount`; ``template_capacity``:
    :class:`TopK` of template ids; ``reorder``: :class:`InterArrival`'s tolerance for
    requests counted out of time order.
    """

    releases: tuple[tuple[str, float], ...] = ()
    distinct_cap: int = DistinctCount.DEFAULT_CAP
    precision: int = DistinctCount.DEFAULT_PRECISION
    template_capacity: int = TopK.DEFAULT_CAPACITY
    reorder: int = InterArrival.DEFAULT_REORDER
    release_window_s: float = RELEASE_WINDOW_HOURS * 3600.0
    saturation: float = SATURATION

    def fingerprint(self) -> str:
        """8 hex digits identifying the configuration (stored with each account's state)."""
        return hashlib.blake2b(repr(self).encode(), digest_size=4).hexdigest()


# serialised component names (short: they are repeated in every account's state)
_DISTINCT = ("ip", "prefix", "asn", "country", "ua", "tls", "conv")
_SHARES = ("sat", "hosting", "vpn", "declared", "release")  # own denominators
_COUNTS = ("reason", "expose", "step", "multi", "night")  # numerators over n_requests
_PARTS = {  # to_dict key -> attribute
    "n": "n",
    "in": "input_tokens",
    "out": "output_tokens",
    "tpl": "templates",
    "cap": "capability",
    "hour": "hours",
    "day": "days",
    "gap": "gaps",
    "w1h": "last_hour",
    "w1d": "last_day",
    "t1h": "tokens_last_hour",
}


class AccountOnline(Estimator):
    """One account's online features. ``update(OnlineEvent)``, ``get(now=None)``, ``merge``.

    ``declared_country`` (ISO code, any case) and ``created_at`` (epoch seconds) are the
    account facts that ``night_share_local``, ``declared_country_share`` and
    ``account_age_days`` need (``None``: those features are ``None``, as in batch).

    :meth:`get` returns :data:`ONLINE_FEATURES`: the :data:`SHARED_FEATURES` with the batch
    definitions (``distillshield.features.account``; numbers as ``float``, ``None`` where
    batch is null), then :data:`ONLINE_ONLY`. Not online (:data:`NOT_ONLINE`):
    ``template_sharing`` (cross-account) and the account facts ``pathway``, ``verified``,
    ``email_domain_class``. :meth:`approximate_features` names the features currently
    estimated by a sketch past its cap (or from gap pieces that interleaved in time).

    A gateway that learns the response later can count a request in two steps:
    :meth:`update_request` when it arrives (everything but the response) and
    :meth:`update_response` when it completes (output and reasoning tokens, max-token
    saturation); :meth:`update` is both at once. Only the gap features care about order,
    and they absorb requests counted up to ``OnlineConfig.reorder`` places out of order.

    :meth:`to_dict` does not hold the shared :class:`OnlineConfig` (only its
    fingerprint): pass the same config to :meth:`from_dict`.
    """

    __slots__ = (
        "_created_us",
        "_night_offset_min",
        "_releases_us",
        "_sat",
        "capability",
        "config",
        "counts",
        "created_at",
        "days",
        "declared_country",
        "distinct",
        "gaps",
        "hours",
        "input_tokens",
        "last_day",
        "last_hour",
        "n",
        "output_tokens",
        "shares",
        "templates",
        "tokens_last_hour",
    )

    def __init__(
        self,
        config: OnlineConfig | None = None,
        *,
        declared_country: str | None = None,
        created_at: float | None = None,
    ) -> None:
        self.config = cfg = config or OnlineConfig()
        self.declared_country = declared_country.upper() if declared_country else None
        self.created_at = created_at
        self._created_us = _us(created_at) if created_at is not None else None
        offset = COUNTRY_UTC_OFFSET.get(self.declared_country) if self.declared_country else None
        self._night_offset_min = round(offset * 60) if offset is not None else None
        window = _us(cfg.release_window_s)
        self._releases_us = tuple((m, _us(t), _us(t) + window) for m, t in cfg.releases)
        self._sat = Fraction(repr(cfg.saturation))
        self.n = Count()
        self.input_tokens = Sum()
        self.output_tokens = Sum()
        self.shares = {k: Share() for k in _SHARES}
        self.counts = {k: Count() for k in _COUNTS}
        self.templates = TopK(cfg.template_capacity, cfg.precision)
        self.capability = Entropy()
        self.hours = Entropy()
        self.days = ActiveBins(86_400.0)
        self.distinct = {k: DistinctCount(cfg.distinct_cap, cfg.precision) for k in _DISTINCT}
        self.gaps = InterArrival(cfg.reorder)
        self.last_hour = WindowedCount(60.0, 60)
        self.last_day = WindowedCount(3600.0, 24)
        self.tokens_last_hour = WindowedCount(60.0, 60)

    def _config(self) -> tuple[Any, ...]:
        return (self.config, self.declared_country, self.created_at)

    def update(self, e: OnlineEvent) -> None:
        """Count one request with its response."""
        self.update_request(e)
        self.update_response(e)

    def update_request(self, e: OnlineEvent) -> None:
        """Count what the request alone tells (ignores ``output_tokens``, ``reasoning_tokens``)."""
        t = _us(e.ts)
        s, c = self.shares, self.counts
        self.n.update()
        self.input_tokens.update(e.input_tokens)
        if e.cot_elicit == _COT_EXPOSE:
            c["expose"].update()
        elif e.cot_elicit == _COT_STEP:
            c["step"].update()
        if e.n_messages is not None and e.n_messages > 1:
            c["multi"].update()
        s["hosting"].update(e.is_hosting is True, e.is_hosting is not None)
        s["vpn"].update(e.is_vpn is True, e.is_vpn is not None)
        s["declared"].update(
            self.declared_country is not None and e.ip_country == self.declared_country,
            e.ip_country is not None,
        )
        for model, start, end in self._releases_us:
            if start <= t < end:
                s["release"].update(e.model == model)
        sec = (t // _US) % 86_400
        if self._night_offset_min is not None:
            local = (sec // 60 + self._night_offset_min + 1440) % 1440
            if NIGHT_HOURS[0] * 60 <= local < NIGHT_HOURS[1] * 60:
                c["night"].update()
        self.hours.update(str(sec // 3600))
        self.days._update_us(t)
        if e.template_id is not None:
            self.templates.update(e.template_id)
        self.capability.update(e.capability)
        d = self.distinct
        for key, value in (
            ("ip", e.ip),
            ("prefix", e.ip_prefix),
            ("asn", e.asn),
            ("country", e.ip_country),
            ("ua", e.user_agent),
            ("tls", e.tls_fingerprint),
            ("conv", e.conversation_id),
        ):
            if value is not None:
                d[key].update(value)
        self.gaps._update_us(t)
        self.last_hour._update_us(t)
        self.last_day._update_us(t)

    def update_response(self, e: OnlineEvent) -> None:
        """Count what the response tells (``output_tokens``, ``reasoning_tokens``, with
        ``max_tokens`` and ``ts`` of the request); call once per request, after or without
        :meth:`update_request`."""
        self.output_tokens.update(e.output_tokens)
        mx = e.max_tokens
        if mx is not None and mx > 0:
            sat = self._sat
            self.shares["sat"].update(
                e.output_tokens is not None and e.output_tokens * sat.denominator >= sat.numerator * mx
            )
        if e.reasoning_tokens is not None and e.reasoning_tokens > 0:
            self.counts["reason"].update()
        if e.output_tokens:
            self.tokens_last_hour._update_us(_us(e.ts), e.output_tokens)

    def get(self, now: float | None = None) -> dict[str, float | None]:
        """Feature name -> value (:data:`ONLINE_FEATURES`). ``now`` (epoch seconds) only
        moves the recent-activity windows; it defaults to the newest request."""
        n = self.n.n
        s = {k: v.get() for k, v in self.shares.items()}
        c = {k: v.n / n if n else None for k, v in self.counts.items()}
        dist = {k: v.get() for k, v in self.distinct.items()}
        active = self.days.get()
        tin, tout = self.input_tokens.total, self.output_tokens.total
        tpl = self.templates
        gaps = self.gaps
        return {
            "n_requests": float(n),
            "active_days": float(active),
            "requests_per_active_day": n / active if active else None,
            "input_tokens": float(tin),
            "output_tokens": float(tout),
            "output_input_ratio": tout / tin if tin else None,
            "max_token_saturation_share": s["sat"],
            "reasoning_share": c["reason"],
            "cot_expose_share": c["expose"],
            "step_by_step_share": c["step"],
            "capability_entropy": self.capability.get(),
            "top_capability_share": self.capability.top_share,
            "distinct_templates": tpl.distinct,
            "template_coverage": tpl.distinct / tpl.total if tpl.total else None,
            "top_template_share": tpl.top_share,
            "multi_turn_share": c["multi"],
            "conversations": dist["conv"],
            "interarrival_cv": gaps.cv,
            "hour_entropy": self.hours.get(),
            "night_share_local": c["night"] if self._night_offset_min is not None else None,
            "post_release_new_model_share": s["release"],
            "distinct_ips": dist["ip"],
            "distinct_prefixes": dist["prefix"],
            "distinct_asns": dist["asn"],
            "distinct_countries": dist["country"],
            "ips_per_request": dist["ip"] / n if n else None,
            "hosting_share": s["hosting"],
            "vpn_share": s["vpn"],
            "distinct_user_agents": dist["ua"],
            "distinct_tls_fingerprints": dist["tls"],
            "account_age_days": (
                (gaps.first_us - self._created_us) / _DAY_US if n and self._created_us is not None else None
            ),
            "declared_country_share": s["declared"] if self.declared_country is not None else None,
            "requests_last_hour": float(self.last_hour.get(now)),
            "requests_last_day": float(self.last_day.get(now)),
            "output_tokens_last_hour": float(self.tokens_last_hour.get(now)),
            "interarrival_mean_s": gaps.mean_gap,
            "burstiness": gaps.burstiness,
        }

    def approximate_features(self) -> set[str]:
        """Features of :meth:`get` that are estimates right now (empty while all is exact)."""
        out: set[str] = set()
        names = {
            "ip": ("distinct_ips", "ips_per_request"),
            "prefix": ("distinct_prefixes",),
            "asn": ("distinct_asns",),
            "country": ("distinct_countries",),
            "ua": ("distinct_user_agents",),
            "tls": ("distinct_tls_fingerprints",),
            "conv": ("conversations",),
        }
        for key, est in self.distinct.items():
            if not est.is_exact:
                out.update(names[key])
        if not self.templates.is_exact:
            out.update(("distinct_templates", "template_coverage", "top_template_share"))
        if self.gaps.approximate:
            out.update(("interarrival_cv", "burstiness"))  # count, span and mean gap stay exact
        return out

    def merge(self, other: AccountOnline) -> None:
        self._check(other)
        mine, theirs = dict(self._parts()), dict(other._parts())
        for name, part in mine.items():
            part.merge(theirs[name])  # type: ignore[attr-defined]

    def _parts(self) -> Iterable[tuple[str, Estimator]]:
        for key, attr in _PARTS.items():
            yield key, getattr(self, attr)
        yield from self.shares.items()
        yield from self.counts.items()
        yield from self.distinct.items()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": 1, "cfg": self.config.fingerprint()}
        if self.declared_country is not None:
            out["dc"] = self.declared_country
        if self.created_at is not None:
            out["ca"] = self.created_at
        for name, part in self._parts():
            d = part.to_dict()
            if d != _EMPTY.get(name):
                out[name] = d
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], config: OnlineConfig | None = None) -> Self:
        cfg = config or OnlineConfig()
        if d.get("v") != 1:
            raise ValueError(f"unknown AccountOnline state version {d.get('v')!r}")
        if d.get("cfg") != cfg.fingerprint():
            raise ValueError("AccountOnline state was written under another OnlineConfig")
        out = cls(cfg, declared_country=d.get("dc"), created_at=d.get("ca"))
        for name, part in list(out._parts()):
            if name in d:
                loaded = type(part).from_dict(d[name])
                if name in _PARTS:
                    setattr(out, _PARTS[name], loaded)
                else:
                    table: dict[str, Any] = (
                        out.shares if name in _SHARES else out.counts if name in _COUNTS else out.distinct
                    )
                    table[name] = loaded
        return out

    def copy(self) -> Self:
        return type(self).from_dict(self.to_dict(), self.config)

    @classmethod
    def from_bytes(cls, data: bytes, config: OnlineConfig | None = None) -> Self:
        return cls.from_dict(json.loads(data), config)


#: The serialised form of each empty component under the default config (left out of to_dict).
_EMPTY: dict[str, dict[str, Any]] = {name: part.to_dict() for name, part in AccountOnline()._parts()}
