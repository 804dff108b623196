"""The exception tree, drawn once so callers know what to catch.

    DistillShieldError                 everything this package raises on purpose
    ├── SchemaError                    a table does not fit the canonical schema (names file and column)
    ├── ScenarioError                  a scenario file is invalid (names file and field)
    └── DetectionsError                a detector output violates the evaluation contract

Every error carries the context a user needs to act on it (file, row, column), because a
one-line reason is what the CLI prints.
"""

from __future__ import annotations


class DistillShieldError(Exception):
    """Base class of every error this package raises deliberately."""


class SchemaError(DistillShieldError):
    """A table does not conform to the canonical schema."""


class ScenarioError(DistillShieldError):
    """A simulator scenario is invalid."""


class DetectionsError(DistillShieldError):
    """Detector output does not follow the contract in docs/evaluation.md."""
