"""Online state shared across gateway workers through the store: per account, and the
cohort windows per indicator value.

Each worker learns online (``OnlineRisk.learn_one``) from the requests it serves, in memory,
on the request path. In the background, every ``online_sync_s``, :meth:`OnlineShare.sync`
writes this worker's own state of every account that learned since the last round
(``put_online_many``) and reads the other workers' states of those accounts
(``get_online_many``), which ``OnlineRisk.merge_shared`` keeps as the account's peers state.
Nothing here runs on the request path: a slow or dead store delays the fleet view, never a
request (docs/gateway.md, "Online state across workers").

Why one blob per worker and not one merged blob per account: a worker's blob holds only its
own events, so a reader merges every blob but its own and nothing is counted twice — no
read-modify-write, no lock, and a dead worker's blob stays valid history (a restarted worker,
under a new id, reads its predecessor's blob as a peer's; under the same id it adopts it).

The cohort windows (``OnlineRisk``'s fresh-account cohorts) are shared in the same round, the
other way round: a value's users are a *union* (an account two workers saw is one user), so
each worker adds the users it stamped since the last round (account, last use, fresh) to the
value's sets in the store and reads back the fleet's counts, for those values and for every
value a fresh account used on this worker (the cohort test needs its fleet count); the
previous round's values are read once more, so a value whose users stopped arriving here still
converges to the fleet's count, as accounts do. Adding a
user twice is harmless (the latest use wins), so this needs no ids and no lock either.
"""

from __future__ import annotations

import asyncio

from distillshield.gateway._store import Store, StoreUnavailable
from distillshield.gateway.risk import OnlineRisk

__all__ = ["OnlineShare"]


class OnlineShare:
    """This worker's side of the fleet's per-account online state.

    ``risk`` the worker's online risk model, ``store`` the shared store, ``worker`` this
    worker's id (unique among the live workers), ``batch`` accounts per store round trip (a
    round trip's pipeline stays well inside the store's per-call timeout).
    """

    def __init__(self, risk: OnlineRisk, store: Store, worker: str, *, batch: int = 64) -> None:
        if not worker:
            raise ValueError("a worker id is required to share online state")
        self.risk = risk
        self.store = store
        self.worker = worker
        self.batch = max(1, int(batch))
        self._previous: list[str] = []  # accounts of the previous round, read once more
        self._previous_values: list[tuple[str, str]] = []  # values of the previous round
        self.values_synced = 0  # cohort values exchanged by the last round
        self.cohorts_fired = 0  # values the fleet's counts made significant in the last round
        risk.track_changes()

    async def sync(self) -> int:
        """One round; returns how many accounts were synced (read, and written when changed).

        The accounts that learned since the last round are read and written; the previous
        round's accounts are read once more, so an account whose traffic stopped converges to
        the fleet's final view on every worker that served it. Reading comes first: an
        account's first read tells whether a previous incarnation of this worker left a
        state to adopt before this one overwrites it. Raises :class:`StoreUnavailable` when
        the store fails; the accounts not written are kept for the next round.
        """
        changed = self.risk.changed()
        fresh = set(changed)
        todo = changed + [a for a in self._previous if a not in fresh]
        done = 0
        for i in range(0, len(todo), self.batch):
            chunk = todo[i : i + self.batch]
            try:
                states = await self.store.get_online_many(chunk)
                mine: dict[str, bytes] = {}
                for account_id in chunk:
                    self.risk.merge_shared(account_id, states.get(account_id, {}), self.worker)
                    if account_id in fresh:
                        blob = self.risk.own_state(account_id)
                        if blob is not None:
                            mine[account_id] = blob
                    await asyncio.sleep(0)  # decoding and encoding is CPU: let requests in between
                if mine:
                    await self.store.put_online_many(self.worker, mine)
            except StoreUnavailable:
                self.risk.mark_changed(a for a in todo[i:] if a in fresh)
                raise
            done += len(chunk)
        self._previous = changed
        await self._sync_cohorts()
        return done

    async def _sync_cohorts(self) -> None:
        """The cohort half of a round (see the module docstring). Entries a failed call did
        not write go back to the model for the next round; the exception propagates."""
        entries, horizon = self.risk.cohort_changes()
        changed = list(entries)
        for key in self._previous_values:  # read once more: the peers' users of the same round
            entries.setdefault(key, {})
        self._previous_values = changed
        keys = list(entries)
        self.values_synced = self.cohorts_fired = 0
        for i in range(0, len(keys), self.batch):
            chunk = {k: entries[k] for k in keys[i : i + self.batch]}
            try:
                counts = await self.store.sync_cohorts(chunk, horizon, self.risk.window_s)
            except StoreUnavailable:
                self.risk.requeue_cohort({k: entries[k] for k in keys[i:]})
                raise
            self.cohorts_fired += self.risk.merge_cohort(counts)
            self.values_synced += len(chunk)
            await asyncio.sleep(0)
