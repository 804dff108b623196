"""Ground-truth traffic simulator: legitimate personas, hard negatives and campaigns.

See docs/simulator.md for what each persona models and why.
"""

from distillshield.simulate.engine import Manifest, simulate
from distillshield.simulate.scenario import Campaign, Population, Scenario, builtin_scenarios, load_scenario

__all__ = ["Campaign", "Manifest", "Population", "Scenario", "builtin_scenarios", "load_scenario", "simulate"]
