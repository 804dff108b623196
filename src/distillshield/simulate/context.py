"""What every persona shares in one simulation: calendar, models, identity and text sources."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distillshield.simulate.clients import ClientCatalog
from distillshield.simulate.network import AddressSpace
from distillshield.simulate.scenario import Scenario
from distillshield.simulate.text import TextSource
from distillshield.simulate.timing import DAY, US


def to_us(dt: object) -> int:
    """Microseconds since the epoch for a timezone-aware datetime."""
    from datetime import datetime

    assert isinstance(dt, datetime)
    return round(dt.timestamp() * US)


@dataclass(frozen=True)
class ModelCalendar:
    """The provider's models: which existed at the start, which are released during the run."""

    names: tuple[str, ...]
    released_us: np.ndarray
    reasoning: np.ndarray
    start_us: int

    @property
    def flagship(self) -> str:
        """The newest reasoning-capable model available at the start."""
        ok = [i for i in range(len(self.names)) if self.released_us[i] <= self.start_us and self.reasoning[i]]
        ok = ok or [int(np.argmin(self.released_us))]
        return self.names[max(ok, key=lambda i: self.released_us[i])]

    @property
    def small(self) -> str:
        """The newest model without reasoning available at the start (else the flagship)."""
        ok = [
            i
            for i in range(len(self.names))
            if self.released_us[i] <= self.start_us and not self.reasoning[i]
        ]
        if not ok:
            return self.flagship
        return self.names[max(ok, key=lambda i: self.released_us[i])]

    @property
    def new_releases(self) -> list[tuple[str, int]]:
        """Models released during the simulated period, in release order."""
        rel = [(self.names[i], int(self.released_us[i])) for i in range(len(self.names))]
        return sorted((r for r in rel if r[1] > self.start_us), key=lambda r: r[1])

    def is_reasoning(self, name: str) -> bool:
        return bool(self.reasoning[self.names.index(name)])


@dataclass(frozen=True)
class SimContext:
    """Shared, read-only inputs of every persona in one run."""

    scenario: Scenario
    seed: int
    start_us: int
    days: int
    models: ModelCalendar
    address: AddressSpace
    clients: ClientCatalog
    text: TextSource

    @classmethod
    def build(cls, scenario: Scenario, text: TextSource) -> SimContext:
        start = to_us(scenario.start)
        start -= start % DAY  # days are UTC days
        cal = ModelCalendar(
            names=tuple(m.name for m in scenario.models),
            released_us=np.array([to_us(m.released_at) for m in scenario.models], dtype=np.int64),
            reasoning=np.array([m.reasoning for m in scenario.models], dtype=bool),
            start_us=start,
        )
        return cls(scenario, scenario.seed, start, scenario.days, cal, AddressSpace(), ClientCatalog(), text)

    @property
    def provider(self) -> str | None:
        """The provider whose traffic this is (``Scenario.provider``); None for a single provider."""
        return self.scenario.provider

    def rng(self, *key: object) -> np.random.Generator:
        """An independent generator per (seed, key): adding a persona never shifts another's draws.

        With a ``provider``, the key is salted with it: every account, customer and request of
        one provider differs from another's.
        """
        from distillshield.simulate.ids import stable_hash

        if self.provider is None:
            return np.random.default_rng([self.seed, stable_hash(*key)])
        return np.random.default_rng([self.seed, stable_hash("provider", self.provider, *key)])

    def operator_rng(self, *key: object) -> np.random.Generator:
        """A generator per (seed, key) that no provider salt touches: an operator's infrastructure
        (servers, proxy pools, client harnesses) is the same whichever provider it attacks."""
        from distillshield.simulate.ids import stable_hash

        return np.random.default_rng([self.seed, stable_hash("operator", *key)])

    def day_start(self, d: int) -> int:
        return self.start_us + d * DAY
