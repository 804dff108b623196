"""Prompt and response text for the traffic simulator.

The simulator's personas ask :class:`TextSource` for ``n`` prompts of a *kind* (what a
legitimate customer or a distillation campaign sends) and ``n`` responses of a *style*;
both come back as Arrow string arrays built without per-row Python loops, plus the
ground truth a detector is later scored against (template identity, capability,
chain-of-thought elicitation). See docs/simulator-text.md for what each kind models and
why, the frame engine, and the optional real-prompt corpus.

    >>> import numpy as np
    >>> src = TextSource(seed=7)
    >>> batch = src.prompts("cot_harvest", 3, np.random.default_rng(0))
    >>> len(batch.text), bool(batch.cot_elicit.all())
    (3, True)
"""

from distillshield.simulate.text._corpus import CorpusError
from distillshield.simulate.text._problems import CAPABILITIES
from distillshield.simulate.text._responses import RESPONSE_KINDS
from distillshield.simulate.text._source import PROMPT_KINDS, PromptBatch, ResponseBatch, TextSource
from distillshield.simulate.text._tokens import estimate_tokens

__all__ = [
    "CAPABILITIES",
    "PROMPT_KINDS",
    "RESPONSE_KINDS",
    "CorpusError",
    "PromptBatch",
    "ResponseBatch",
    "TextSource",
    "estimate_tokens",
]
