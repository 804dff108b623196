"""Ingest: provider logs in, a canonical dataset out (docs/ingest.md).

``ingest(format, inputs, out)`` reads OpenAI-style, LiteLLM, OpenTelemetry GenAI or
canonical logs, validates every record (refused ones go to ``OUT/quarantine`` with a
precise reason and location), drops request ids OUT already holds, masks secrets and
personal data (:func:`redact`), computes request-level signals and appends part files.
The report reconciles: read = accepted + duplicates + quarantined, per source.
"""

from __future__ import annotations

from distillshield.ingest._pipeline import ingest
from distillshield.ingest._quarantine import QUARANTINE
from distillshield.ingest._report import IngestReport, SourceReport
from distillshield.ingest._rules import Reason
from distillshield.ingest.adapters import FORMATS
from distillshield.ingest.redact import redact

__all__ = ["FORMATS", "QUARANTINE", "IngestReport", "Reason", "SourceReport", "ingest", "redact"]
