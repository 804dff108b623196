"""When requests happen: diurnal profiles, sessions and load-balanced job queues.

All functions are vectorised over accounts/events and draw randomness only from the
generator they are handed. Times are int64 microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import numpy as np

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR


def _norm(w: list[float]) -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    out: np.ndarray = a / a.sum()
    return out


#: Share of a day's requests per local hour. Shapes follow well-known web/API traffic:
#: people work 9-18 with a lunch dip and a smaller evening peak; services follow their own
#: customers' day but never stop; an automated pipeline runs flat around the clock.
PROFILES: dict[str, np.ndarray] = {
    "office": _norm(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 3, 6, 9, 10, 10, 7, 9, 10, 10, 9, 7, 4, 3, 3, 2.5, 2, 1.5]
    ),
    "individual": _norm(
        [2, 1.2, 0.7, 0.4, 0.3, 0.4, 0.8, 2, 4, 6, 7, 7, 6, 7, 7, 7, 6, 6, 6, 7, 7, 6, 5, 3.5]
    ),
    "service": _norm(
        [4, 3.5, 3, 3, 3, 3.5, 4.5, 6, 7.5, 8.5, 9, 9, 8.5, 9, 9, 9, 8.5, 8, 7, 6.5, 6, 5.5, 5, 4.5]
    ),
    "pipeline": _norm(
        [9, 9, 9.5, 9, 9, 9.5, 9, 9.5, 10, 10, 10, 10, 9.5, 10, 10, 10, 10, 10, 9.5, 9.5, 9, 9, 9, 9]
    ),
    # an operator's pipeline supervised in office hours: flat, with more throughput when staff are in
    "operator": _norm([5, 5, 5, 5, 5, 5, 5, 6, 8, 10, 10, 10, 9, 10, 10, 10, 10, 9, 8, 7, 6, 6, 5, 5]),
}

#: Relative activity on Saturday/Sunday by profile (1.0 = no weekly rhythm).
WEEKEND: dict[str, float] = {
    "office": 0.25,
    "individual": 0.7,
    "service": 0.8,
    "pipeline": 1.0,
    "operator": 0.9,
}


def is_weekend(day_start_us: int) -> bool:
    """Whether the UTC day starting at ``day_start_us`` is a Saturday or Sunday."""
    weekday = (day_start_us // DAY + 3) % 7  # 1970-01-01 was a Thursday
    return bool(weekday >= 5)


def hours_to_times(
    rng: np.random.Generator,
    day_start_us: int,
    n: int,
    profile: np.ndarray,
    tz_hours: np.ndarray,
) -> np.ndarray:
    """Draw ``n`` timestamps within one UTC day whose *local* hour follows ``profile``.

    ``tz_hours`` (length n) is each event's UTC offset; a local hour falling outside the UTC
    day wraps around inside it, which keeps every day self-contained for streaming.
    """
    local = rng.choice(24, size=n, p=profile).astype(np.float64)
    utc = np.mod(local - tz_hours, 24.0)
    secs = utc * 3600.0 + rng.random(n) * 3600.0
    out: np.ndarray = day_start_us + (secs * US).astype(np.int64)
    return out


def daily_counts(
    rng: np.random.Generator,
    rates: np.ndarray,
    active_p: np.ndarray | float,
    *,
    dispersion: float = 2.0,
) -> np.ndarray:
    """Requests per account for one day: active with ``active_p``, then gamma-Poisson.

    The gamma multiplier (shape ``dispersion``) makes day-to-day volume bursty, as real
    per-account API usage is, instead of Poisson-smooth.
    """
    n = len(rates)
    active = rng.random(n) < active_p
    mult = rng.gamma(dispersion, 1.0 / dispersion, size=n)
    return rng.poisson(rates * mult * active).astype(np.int64)


def sessionize(
    rng: np.random.Generator,
    session_starts: np.ndarray,
    mean_turns: float,
    gap_median_s: float,
    *,
    max_turns: int = 60,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand session start times into turns.

    Returns (session index per turn, 1-based turn number, turn timestamp). Turns per session
    are 1 + geometric (mean ``mean_turns``); gaps between turns are log-normal around
    ``gap_median_s`` — people read, think and type between follow-ups.
    """
    n = len(session_starts)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if mean_turns <= 1.0:
        turns = np.ones(n, dtype=np.int64)
    else:
        turns = np.minimum(rng.geometric(1.0 / mean_turns, size=n), max_turns).astype(np.int64)
    sess = np.repeat(np.arange(n), turns)
    first = np.cumsum(turns) - turns
    turn_no = np.arange(len(sess)) - np.repeat(first, turns) + 1
    gaps = rng.lognormal(np.log(gap_median_s), 0.8, size=len(sess)) * US
    gaps[turn_no == 1] = 0.0
    csum = np.cumsum(gaps)
    offset = csum - np.repeat(csum[first], turns)
    ts = np.repeat(session_starts, turns) + offset.astype(np.int64)
    return sess, turn_no, ts


def round_robin(
    rng: np.random.Generator,
    times: np.ndarray,
    pool: np.ndarray,
    *,
    shuffle_p: float = 0.1,
) -> np.ndarray:
    """Assign time-ordered jobs to accounts in ``pool`` as a load balancer does.

    Mostly strict rotation (which is what makes the accounts' activity synchronised), with
    a share ``shuffle_p`` sent to a random account, as retries and worker restarts do.
    """
    order = np.argsort(times, kind="stable")
    k = len(pool)
    slot = (np.arange(len(times)) + int(rng.integers(k))) % k
    randomize = rng.random(len(times)) < shuffle_p
    slot[randomize] = rng.integers(0, k, size=int(randomize.sum()))
    out = np.empty(len(times), dtype=pool.dtype)
    out[order] = pool[slot]
    return out


def burst_times(
    rng: np.random.Generator,
    day_start_us: int,
    n: int,
    profile: np.ndarray,
    tz_hours: float,
    *,
    runs_per_day: float,
    run_minutes: float,
) -> np.ndarray:
    """``n`` timestamps grouped into batch *runs*, the way an operator's pipeline works.

    A harvesting pipeline is launched, drains its queue across all its accounts, and stops:
    activity comes in runs (log-normal length around ``run_minutes``) whose starts follow
    the operator's ``profile`` in its time zone. That, not any per-account habit, is what
    makes a load-balanced campaign's accounts move in step.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, int(rng.poisson(runs_per_day)))
    starts = hours_to_times(rng, day_start_us, k, profile, np.full(k, tz_hours))
    length = np.clip(rng.lognormal(np.log(run_minutes), 0.5, k), 5.0, 600.0) * 60 * US
    run = rng.choice(k, size=n, p=length / length.sum())
    ts: np.ndarray = starts[run] + (rng.random(n) * length[run]).astype(np.int64)
    clipped: np.ndarray = np.minimum(ts, day_start_us + DAY - 1)
    return clipped
