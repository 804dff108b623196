"""Format adapters, registered by the name ``--format`` takes."""

from __future__ import annotations

from distillshield.ingest.adapters._base import Adapter
from distillshield.ingest.adapters.canonical import CanonicalAdapter
from distillshield.ingest.adapters.litellm import LiteLLMAdapter
from distillshield.ingest.adapters.openai import OpenAIAdapter
from distillshield.ingest.adapters.otel import OTelAdapter

FORMATS: dict[str, Adapter] = {
    a.name: a for a in (CanonicalAdapter(), OpenAIAdapter(), LiteLLMAdapter(), OTelAdapter())
}

__all__ = ["FORMATS", "Adapter"]
