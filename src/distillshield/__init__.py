"""distillshield: detect, attribute and blunt illicit distillation of an LLM API.

The package follows the data flow: ``schema`` (canonical tables) → ingest → enrich →
features → linking → scoring/campaigns → actions → intelligence → reporting, with
``simulate`` (ground-truth traffic) and ``evaluate`` (metrics) beside it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
