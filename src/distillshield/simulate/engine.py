"""Run a scenario: accounts first, then day by day, streaming Parquet part files.

Memory is bounded by one persona-day chunk (at most ``chunk_rows`` rows), whatever the
scenario's size. The output directory follows docs/schema.md, with ground truth kept apart
under ``labels/`` and a ``manifest.json`` that records what was produced.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillshield import __version__
from distillshield.errors import ScenarioError
from distillshield.schema import ACCOUNT_LABELS, ACCOUNTS, EXCHANGE_LABELS, EXCHANGES, RELEASES, write_table
from distillshield.simulate.context import SimContext, to_us
from distillshield.simulate.persona import Persona
from distillshield.simulate.personas import LEGITIMATE, TACTICS
from distillshield.simulate.scenario import Scenario
from distillshield.simulate.text import TextSource

#: Called after each written chunk with (rows written so far, expected total or None).
Progress = Callable[[int, int | None], None]


@dataclass
class Manifest:
    """What a simulation produced; written to ``OUT/manifest.json``."""

    scenario: str
    seed: int
    scale: float
    version: str
    start: str
    days: int
    content: str
    corpus: str | None
    accounts: int = 0
    exchanges: int = 0
    parts: int = 0
    by_persona: dict[str, dict[str, int]] = field(default_factory=dict)
    by_campaign: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def build_personas(ctx: SimContext) -> list[Persona]:
    """Instantiate every population and campaign of the scenario (order fixed by the file)."""
    sc = ctx.scenario
    out: list[Persona] = []
    for i, pop in enumerate(sc.legitimate):
        cls = LEGITIMATE.get(pop.persona)
        if cls is None:
            raise ScenarioError(
                f"legitimate[{i}]: unknown persona {pop.persona!r}; known: {', '.join(LEGITIMATE)}"
            )
        out.append(cls(ctx, f"legit/{i}/{pop.persona}", pop.accounts, dict(pop.params)))
    for c in sc.campaigns:
        cls = TACTICS.get(c.tactic)
        if cls is None:
            raise ScenarioError(f"campaign {c.id}: unknown tactic {c.tactic!r}; known: {', '.join(TACTICS)}")
        end = float(sc.days if c.end_day is None else c.end_day)
        out.append(
            cls(
                ctx,
                f"campaign/{c.id}",
                c.accounts,
                dict(c.params),
                campaign_id=c.id,
                actor=c.actor,
                exchanges=c.exchanges,
                window=(c.start_day, end),
            )
        )
    return out


def estimate_rows(scenario: Scenario) -> int:
    """A rough expected exchange count, for progress bars only."""
    legit = sum(p.accounts for p in scenario.legitimate) * scenario.days * 4
    return int(legit + sum(c.exchanges for c in scenario.campaigns) * 1.3)


def simulate(
    scenario: Scenario,
    out: str | Path,
    *,
    scale: float = 1.0,
    corpus: str | Path | None = None,
    chunk_rows: int = 250_000,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Simulate ``scenario`` into the dataset directory ``out``; returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ScenarioError(f"output directory {out} is not empty (use --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    sc = scenario.scaled(scale)
    text = TextSource(seed=sc.seed, corpus=Path(corpus) if corpus else None)
    ctx = SimContext.build(sc, text)
    manifest = Manifest(
        sc.name,
        sc.seed,
        scale,
        __version__,
        sc.start.isoformat(),
        sc.days,
        sc.content,
        str(corpus) if corpus else None,
    )
    personas = build_personas(ctx)

    accounts, labels = zip(*(p.accounts_table() for p in personas), strict=True)
    write_table(pa.concat_tables(accounts), out, ACCOUNTS)
    write_table(pa.concat_tables(labels), out, ACCOUNT_LABELS)
    releases = pa.table(
        {
            "model": [m.name for m in sc.models],
            "released_at": pa.array([to_us(m.released_at) for m in sc.models], pa.timestamp("us", tz="UTC")),
        }
    )
    write_table(releases, out, RELEASES)
    manifest.accounts = sum(p.n for p in personas)
    for p in personas:
        entry = manifest.by_persona.setdefault(p.label, {"accounts": 0, "exchanges": 0})
        entry["accounts"] += p.n
        if p.campaign_id:
            manifest.by_campaign[p.campaign_id] = {"accounts": p.n, "exchanges": 0, "campaign_exchanges": 0}

    expected = estimate_rows(sc)
    part = 0
    for d in range(sc.days):
        for p in personas:
            plan = p.plan_day(d)
            if not len(plan):
                continue
            render_rng = ctx.rng("render", p.key, d)
            # sessions that run past the end of the period are cut there
            order = np.argsort(plan.ts, kind="stable")  # each part file is in time order
            order = order[plan.ts[order] < ctx.day_start(sc.days)]
            plan = plan.take(order)
            for lo in range(0, len(plan), chunk_rows):
                sl = slice(lo, lo + chunk_rows)
                piece = plan.take(sl)
                ex, lab = p.render(piece, render_rng)
                write_table(ex, out, EXCHANGES, part=part)
                write_table(lab, out, EXCHANGE_LABELS, part=part)
                part += 1
                manifest.exchanges += ex.num_rows
                manifest.by_persona[p.label]["exchanges"] += ex.num_rows
                if p.campaign_id:
                    mc = manifest.by_campaign[p.campaign_id]
                    mc["exchanges"] += ex.num_rows
                    mc["campaign_exchanges"] += int(np.sum(lab.column("campaign_id").is_valid()))
                if progress:
                    progress(manifest.exchanges, expected)
    manifest.parts = part
    (out / "manifest.json").write_text(manifest.to_json())
    # the provider field is only written when set, so single-provider outputs stay as they were
    (out / "scenario.json").write_text(
        sc.model_dump_json(indent=2, exclude={"provider"} if sc.provider is None else None)
    )
    return manifest
