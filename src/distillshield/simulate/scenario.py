"""Scenario files: who is on the platform, for how long, and which campaigns run.

A scenario is YAML validated strictly (unknown keys are errors, so a typo cannot silently
change a simulation). Built-in scenarios live in ``simulate/scenarios/*.yaml``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distillshield.errors import ScenarioError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRelease(_Strict):
    """A model on the provider's release calendar."""

    name: str
    released_at: datetime
    reasoning: bool = True

    @field_validator("released_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class Population(_Strict):
    """A legitimate persona and how many accounts it has."""

    persona: str
    accounts: int = Field(ge=1)
    params: dict[str, Any] = Field(default_factory=dict)


class Campaign(_Strict):
    """One distillation campaign: an operator, a tactic, its accounts and its volume."""

    id: str
    actor: str
    tactic: str
    accounts: int = Field(ge=1)
    exchanges: int = Field(ge=1)
    start_day: float = Field(default=0.0, ge=0)
    end_day: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Scenario(_Strict):
    """A whole simulation, deterministic for its ``seed``."""

    name: str
    description: str = ""
    seed: int = 0
    start: datetime
    days: int = Field(ge=1, le=366)
    models: list[ModelRelease] = Field(min_length=1)
    content: Literal["full", "no_response", "none"] = "full"
    #: Which provider's view of the world this is (None: the single-provider simulator). Two
    #: runs with the same seed and different providers share every campaign operator's
    #: infrastructure and templates but have different accounts, ids and legitimate customers.
    provider: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    restricted_countries: list[str] = Field(default_factory=lambda: ["CN", "RU", "KP", "IR"])
    legitimate: list[Population] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        ids = [c.id for c in self.campaigns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"campaign ids must be unique, got {ids}")
        for c in self.campaigns:
            end = self.days if c.end_day is None else c.end_day
            if not c.start_day < end <= self.days:
                raise ValueError(f"campaign {c.id}: need start_day < end_day <= days ({c.start_day}, {end})")
        return self

    def scaled(self, factor: float) -> Scenario:
        """The same scenario with every account count and campaign volume times ``factor``."""
        if factor <= 0:
            raise ScenarioError(f"--scale must be positive, got {factor}")
        if factor == 1.0:
            return self
        leg = [p.model_copy(update={"accounts": max(1, round(p.accounts * factor))}) for p in self.legitimate]
        camp = [
            c.model_copy(
                update={
                    "accounts": max(1, round(c.accounts * factor)),
                    "exchanges": max(1, round(c.exchanges * factor)),
                }
            )
            for c in self.campaigns
        ]
        return self.model_copy(update={"legitimate": leg, "campaigns": camp})


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    root = resources.files("distillshield.simulate") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path, *, seed: int | None = None) -> Scenario:
    """Load a built-in scenario by name, or a YAML file by path; ``seed`` overrides the file's."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        text, source = path.read_text(), str(path)
    else:
        res = resources.files("distillshield.simulate") / "scenarios" / f"{name_or_path}.yaml"
        if not res.is_file():
            raise ScenarioError(
                f"unknown scenario {str(name_or_path)!r}; built-in: {', '.join(builtin_scenarios())}"
            )
        text, source = res.read_text(), f"built-in scenario {name_or_path}"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: expected a mapping at top level")
    if seed is not None:
        raw["seed"] = seed
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top>"
        raise ScenarioError(f"{source}: {where}: {first['msg']} ({exc.error_count()} error(s))") from exc
