"""Shared state of the gateway: API keys, published verdicts, rate-limit buckets, online state.

Two implementations behind one small async interface: :class:`MemoryStore` (one process,
the embedded default and unit tests) and :class:`RedisStore` (a real Redis shared by every
gateway worker and by ``distillshield gateway publish``). The hot path touches the store
only for rate-limit buckets of accounts that a policy throttles; keys and verdicts are read
into a local cache and refreshed in the background, so a slow or dead Redis never sits on a
legitimate customer's request (docs/gateway.md, "failure modes").

Keys are stored by SHA-256 of the secret, never in clear: a leaked store does not leak
credentials.

Online state: per account, one blob per worker (the worker's own events only, never merged
with others'), so any worker merges the others' blobs with its own without counting an event
twice (docs/gateway.md, "Online state across workers"). Redis keeps them in one hash per
account that expires ``ONLINE_TTL_S`` after the account's last write by any worker.

Cohort windows: per indicator value (``(kind, value)``: a client fingerprint, a /24, a
template id, a sign-up /24), the users every worker saw within the online model's window, each
with its last use and whether it is a fresh account; a union, so an account two workers saw
is one user. Redis keeps two sorted sets per value (all users, fresh users; score = last use,
only ever raised), trimmed to the window on every touch and expiring a window after the last.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

#: A cohort window entry per value: account -> (last use, epoch seconds; fresh account).
CohortUsers = Mapping[str, tuple[float, bool]]

__all__ = [
    "ONLINE_TTL_S",
    "CohortUsers",
    "KeyRecord",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreUnavailable",
    "hash_key",
    "open_store",
]


#: How long an account's online state stays in Redis after its last write (any worker's).
ONLINE_TTL_S = 7 * 86_400


class StoreUnavailable(RuntimeError):  # noqa: N818 - reads as a condition, like ConnectionRefused
    """The shared store could not be reached; the caller applies the configured fail mode."""


def hash_key(secret: str) -> str:
    """The registry id of an API key secret (SHA-256 hex): what the store holds."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What an API key resolves to. ``payment_fingerprint``, ``pathway``, ``created_at``,
    ``signup_ip`` and ``declared_country`` come from the account record and feed online
    linking and risk (a new head of a known hydra pays with a card the campaign already used;
    farmed accounts arrive fresh, together, from the same sign-up infrastructure; a reseller's
    new heads are used from abroad from their first request)."""

    key_id: str
    account_id: str
    org_id: str | None = None
    pathway: str | None = None
    payment_fingerprint: str | None = None
    disabled: bool = False
    created_at: float | None = None  # account creation, epoch seconds (fresh-account cohorts)
    signup_ip: str | None = None  # sign-up address (sign-up infrastructure cohorts)
    declared_country: str | None = None  # ISO 3166 alpha-2 the customer declared (first contact abroad)

    def __post_init__(self) -> None:
        # compared with GeoIP country codes on every request: "Germany" or "deu" would read as
        # abroad everywhere, so a code that cannot match is refused where the key is made
        c = self.declared_country
        if c is not None:
            if not (isinstance(c, str) and len(c) == 2 and c.isascii() and c.isalpha()):
                raise ValueError(f"declared_country must be an ISO 3166 alpha-2 code such as 'DE', got {c!r}")
            object.__setattr__(self, "declared_country", c.upper())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> KeyRecord:
        return cls(**json.loads(raw))


class Store(Protocol):
    """The operations the gateway needs from shared state."""

    async def get_key(self, key_hash: str) -> KeyRecord | None: ...
    async def put_key(self, key_hash: str, record: KeyRecord) -> None: ...
    async def verdict_version(self) -> str | None: ...
    async def get_verdicts(self, version: str) -> bytes | None: ...
    async def publish_verdicts(self, version: str, blob: bytes) -> None: ...
    async def take(self, bucket: str, rate_per_s: float, burst: float, now: float) -> float:
        """Take one token; return 0.0 when granted, else the seconds until one is available."""
        ...

    async def put_online(self, account_id: str, worker: str, blob: bytes) -> None:
        """Store this worker's online state of an account (its own events only)."""
        ...

    async def get_online(self, account_id: str) -> dict[str, bytes]:
        """Every worker's online state of an account: merged, they are the fleet's view."""
        ...

    async def put_online_many(self, worker: str, states: Mapping[str, bytes]) -> None:
        """:meth:`put_online` for many accounts at once (account -> blob; one round trip)."""
        ...

    async def get_online_many(self, account_ids: Sequence[str]) -> dict[str, dict[str, bytes]]:
        """:meth:`get_online` for many accounts at once (accounts with no state are left out)."""
        ...

    async def sync_cohorts(
        self, entries: Mapping[tuple[str, str], CohortUsers], horizon: float, ttl_s: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Add each value's users (keeping every user's latest use), drop uses before
        ``horizon``, and return the fleet's ``(users, fresh users)`` per value of ``entries``
        (an empty mapping only reads). A value untouched for ``ttl_s`` may be forgotten."""
        ...

    async def ping(self) -> None: ...
    async def close(self) -> None: ...


def _bucket_take(
    tokens: float, last: float, rate: float, burst: float, now: float
) -> tuple[float, float, float]:
    """Token-bucket arithmetic shared by both stores: (tokens after, stamp, wait)."""
    tokens = min(burst, tokens + max(0.0, now - last) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, now, 0.0
    return tokens, now, (1.0 - tokens) / rate


class MemoryStore:
    """In-process store: one gateway process, tests, and the offline replay."""

    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        self._verdicts: dict[str, bytes] = {}
        self._version: str | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._online: dict[str, dict[str, bytes]] = {}
        self._cohorts: dict[tuple[str, str], dict[str, tuple[float, bool]]] = {}

    async def get_key(self, key_hash: str) -> KeyRecord | None:
        return self._keys.get(key_hash)

    async def put_key(self, key_hash: str, record: KeyRecord) -> None:
        self._keys[key_hash] = record

    async def verdict_version(self) -> str | None:
        return self._version

    async def get_verdicts(self, version: str) -> bytes | None:
        return self._verdicts.get(version)

    async def publish_verdicts(self, version: str, blob: bytes) -> None:
        self._verdicts = {version: blob}
        self._version = version

    def take_sync(self, bucket: str, rate_per_s: float, burst: float, now: float) -> float:
        tokens, last = self._buckets.get(bucket, (burst, now))
        tokens, last, wait = _bucket_take(tokens, last, rate_per_s, burst, now)
        self._buckets[bucket] = (tokens, last)
        return wait

    async def take(self, bucket: str, rate_per_s: float, burst: float, now: float) -> float:
        return self.take_sync(bucket, rate_per_s, burst, now)

    async def put_online(self, account_id: str, worker: str, blob: bytes) -> None:
        self._online.setdefault(account_id, {})[worker] = blob

    async def get_online(self, account_id: str) -> dict[str, bytes]:
        return dict(self._online.get(account_id, {}))

    async def put_online_many(self, worker: str, states: Mapping[str, bytes]) -> None:
        for account_id, blob in states.items():
            self._online.setdefault(account_id, {})[worker] = blob

    async def get_online_many(self, account_ids: Sequence[str]) -> dict[str, dict[str, bytes]]:
        return {a: dict(self._online[a]) for a in account_ids if self._online.get(a)}

    async def sync_cohorts(
        self, entries: Mapping[tuple[str, str], CohortUsers], horizon: float, ttl_s: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for key, users in entries.items():
            held = self._cohorts.setdefault(key, {})
            for account, (ts, fresh) in users.items():
                prev = held.get(account)
                if prev is None or prev[0] < ts:
                    held[account] = (ts, fresh or (prev is not None and prev[1]))
            for account in [a for a, (ts, _) in held.items() if ts < horizon]:
                del held[account]
            out[key] = (len(held), sum(1 for _, f in held.values() if f))
        return out

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


# Atomic token bucket: KEYS[1] bucket, ARGV rate, burst, now. Returns the wait in seconds
# (as a string: Lua numbers would be truncated to integers by the Redis protocol).
_TAKE_LUA = """
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2]); local now = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(v[1]) or burst; local last = tonumber(v[2]) or now
local dt = now - last; if dt < 0 then dt = 0 end
tokens = math.min(burst, tokens + dt * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return tostring(wait)
"""


# Cohort windows of several values in one call: KEYS are (every user, fresh users) per value;
# ARGV: horizon (exclusive, "(<ts>"), ttl seconds, then per value the number of users m and m
# (account, last use, fresh 0/1) triples. Returns users, fresh users per value after adding
# and trimming. One script call per batch of values instead of seven commands per value: a
# round's client-side cost is the commands it packs (bench/bench_cohort_share.py).
_COHORT_LUA = """
local horizon, ttl = ARGV[1], tonumber(ARGV[2])
local i, out = 3, {}
for v = 1, #KEYS, 2 do
  local every, fresh = KEYS[v], KEYS[v + 1]
  local m = tonumber(ARGV[i]); i = i + 1
  for _ = 1, m do
    redis.call('ZADD', every, 'GT', ARGV[i + 1], ARGV[i])
    if ARGV[i + 2] == '1' then redis.call('ZADD', fresh, 'GT', ARGV[i + 1], ARGV[i]) end
    i = i + 3
  end
  redis.call('ZREMRANGEBYSCORE', every, '-inf', horizon)
  redis.call('ZREMRANGEBYSCORE', fresh, '-inf', horizon)
  if m > 0 then redis.call('EXPIRE', every, ttl); redis.call('EXPIRE', fresh, ttl) end
  out[#out + 1] = redis.call('ZCARD', every); out[#out + 1] = redis.call('ZCARD', fresh)
end
return out
"""


class RedisStore:
    """Shared store on a real Redis (``redis://host:port/db``).

    Every call is bounded by ``timeout_s``; a failure raises :class:`StoreUnavailable` so
    the engine can apply the policy's fail mode instead of hanging the request.
    """

    def __init__(self, url: str, *, prefix: str = "ds:", timeout_s: float = 0.05) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._take = self._redis.register_script(_TAKE_LUA)
        self._cohort = self._redis.register_script(_COHORT_LUA)

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _call(self, what: str, coro: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis {self.url}: {what}: {exc}") from exc

    async def get_key(self, key_hash: str) -> KeyRecord | None:
        raw = await self._call("get key", self._redis.hget(self._k("keys"), key_hash))
        return None if raw is None else KeyRecord.from_json(raw)

    async def put_key(self, key_hash: str, record: KeyRecord) -> None:
        await self._call("put key", self._redis.hset(self._k("keys"), key_hash, record.to_json()))

    async def verdict_version(self) -> str | None:
        raw = await self._call("verdict version", self._redis.get(self._k("verdicts", "version")))
        return None if raw is None else bytes(raw).decode()

    async def get_verdicts(self, version: str) -> bytes | None:
        raw = await self._call("get verdicts", self._redis.get(self._k("verdicts", version)))
        return None if raw is None else bytes(raw)

    async def publish_verdicts(self, version: str, blob: bytes) -> None:
        # Write the blob first, then move the version pointer: a reader never sees a
        # version whose blob is missing. Old blobs expire after a day.
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._k("verdicts", version), blob, ex=86_400)
        pipe.set(self._k("verdicts", "version"), version)
        await self._call("publish verdicts", pipe.execute())

    async def take(self, bucket: str, rate_per_s: float, burst: float, now: float) -> float:
        raw = await self._call(
            "rate limit", self._take(keys=[self._k("bucket", bucket)], args=[rate_per_s, burst, now])
        )
        wait = float(raw)
        return wait if math.isfinite(wait) else 0.0

    async def put_online(self, account_id: str, worker: str, blob: bytes) -> None:
        await self.put_online_many(worker, {account_id: blob})

    async def get_online(self, account_id: str) -> dict[str, bytes]:
        return (await self.get_online_many([account_id])).get(account_id, {})

    async def put_online_many(self, worker: str, states: Mapping[str, bytes]) -> None:
        # one pipeline, not a transaction: each account's hash is independent; the TTL is the
        # hash's, renewed by every write (a per-field TTL needs Redis 7.4's HEXPIRE)
        pipe = self._redis.pipeline(transaction=False)
        for account_id, blob in states.items():
            key = self._k("online", account_id)
            pipe.hset(key, worker, blob)
            pipe.expire(key, ONLINE_TTL_S)
        await self._call("put online state", pipe.execute())

    async def get_online_many(self, account_ids: Sequence[str]) -> dict[str, dict[str, bytes]]:
        pipe = self._redis.pipeline(transaction=False)
        for account_id in account_ids:
            pipe.hgetall(self._k("online", account_id))
        raw = await self._call("get online state", pipe.execute())
        return {
            a: {bytes(k).decode(): bytes(v) for k, v in r.items()}
            for a, r in zip(account_ids, raw, strict=True)
            if r
        }

    def _cohort_keys(self, kind: str, value: str) -> tuple[str, str]:
        # the value hashed: a client string is long, a template id is not; one key shape
        digest = hashlib.blake2b(value.encode("utf-8"), digest_size=12).hexdigest()
        base = self._k("cohort", kind, digest)
        return base + ":a", base + ":f"

    async def sync_cohorts(
        self, entries: Mapping[tuple[str, str], CohortUsers], horizon: float, ttl_s: float
    ) -> dict[tuple[str, str], tuple[int, int]]:
        # one script call: atomic, though nothing needs it to be (each value's sets are
        # independent, and ZADD GT keeps the latest use whatever order workers write in;
        # Redis >= 6.2). The caller bounds the batch (a script blocks the server while it runs)
        keys = list(entries)
        names: list[str] = []
        args: list[Any] = [f"({horizon!r}", max(1, math.ceil(ttl_s))]
        for key in keys:
            names += self._cohort_keys(*key)
            users = entries[key]
            args.append(len(users))
            for account, (ts, fresh) in users.items():
                args += [account, repr(float(ts)), 1 if fresh else 0]
        raw = await self._call("sync cohort windows", self._cohort(keys=names, args=args))
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for j, key in enumerate(keys):
            out[key] = (int(raw[2 * j]), int(raw[2 * j + 1]))
        return out

    async def ping(self) -> None:
        await self._call("ping", self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def open_store(url: str | None, **kwargs: Any) -> MemoryStore | RedisStore:
    """``None``/``memory://`` → :class:`MemoryStore`; ``redis://…`` → :class:`RedisStore`."""
    if url is None or url in ("", "memory://"):
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, **kwargs)
    raise ValueError(f"store URL {url!r}: expected memory:// or redis://host:port/db")
