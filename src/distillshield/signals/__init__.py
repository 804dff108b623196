"""Request-level signals: what one exchange says about distillation (docs/signals.md).

Every signal is a vectorised function over Arrow arrays, so the same code runs per batch at
ingest, inside DuckDB, or under Spark's ``mapInArrow``. :func:`request_signals` computes them
all from content once; with ``--no-content`` only these derived values are kept.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.schema import SIGNALS, conform

__all__ = ["request_signals"]


def request_signals(exchanges: pa.Table, *, redactions: np.ndarray | None = None) -> pa.Table:
    """The ``derived/signals`` rows for a batch of canonical exchanges (same order)."""
    from distillshield.signals.capability import classify
    from distillshield.signals.cot import cot_elicitation
    from distillshield.signals.language import script_language
    from distillshield.signals.template import template_ids

    n = exchanges.num_rows
    prompt = exchanges.column("prompt")
    response = exchanges.column("response")
    cot_label, cot_score = cot_elicitation(prompt)
    table = pa.table(
        {
            "request_id": exchanges.column("request_id"),
            "prompt_chars": pc.utf8_length(prompt).cast(pa.int32()),
            "response_chars": pc.utf8_length(response).cast(pa.int32()),
            "language": script_language(prompt),
            "template_id": template_ids(prompt),
            "template_family": pa.nulls(n, pa.string()),
            "cot_elicit": cot_label,
            "cot_score": pa.array(
                np.asarray(cot_score, dtype=np.float32),
                mask=pc.is_null(prompt).to_numpy(zero_copy_only=False),
            ),
            "capability": classify(
                prompt,
                exchanges.column("system_prompt"),
                exchanges.column("tools"),
                exchanges.column("n_messages"),
            ),
            "redactions": pa.array(
                np.zeros(n, dtype=np.int16) if redactions is None else redactions.astype(np.int16)
            ),
        }
    )
    return conform(table, SIGNALS)
