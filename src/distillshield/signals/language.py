"""Which writing system a prompt is in — cheap, vectorised, and enough for "how much of this
account's traffic is not English" (a trait of the reported reasoning-trace campaign)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: (label, RE2 character class); the first script with any character wins, in this order,
#: because CJK/Hangul/kana text often carries Latin code or numbers too.
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("ko", r"[\x{AC00}-\x{D7AF}]"),
    ("ja", r"[\x{3040}-\x{30FF}]"),
    ("zh", r"[\x{4E00}-\x{9FFF}]"),
    ("cyrillic", r"[\x{0400}-\x{04FF}]"),
    ("arabic", r"[\x{0600}-\x{06FF}]"),
    ("devanagari", r"[\x{0900}-\x{097F}]"),
    ("thai", r"[\x{0E00}-\x{0E7F}]"),
    ("greek", r"[\x{0370}-\x{03FF}]"),
    ("hebrew", r"[\x{0590}-\x{05FF}]"),
)

#: Any non-ASCII character: only such texts are tested against the scripts.
_NON_ASCII = r"[^\x00-\x7F]"


def script_language(texts: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """Script label per text: ko, ja, zh, cyrillic, …, ``latin`` otherwise; null for null text."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    n = len(texts)
    out = np.full(n, "latin", dtype=object)
    # most prompts are plain ASCII: test the scripts only on rows with a non-ASCII character
    wide = pc.fill_null(pc.match_substring_regex(texts, _NON_ASCII), False).to_numpy(zero_copy_only=False)
    rows = np.nonzero(wide)[0]
    sub = texts.take(pa.array(rows))
    decided = np.zeros(len(rows), dtype=bool)
    for label, cls in _SCRIPTS:
        hit = pc.fill_null(pc.match_substring_regex(sub, cls), False).to_numpy(zero_copy_only=False)
        out[rows[hit & ~decided]] = label
        decided |= hit
    mask = pc.is_null(texts).to_numpy(zero_copy_only=False)
    return pa.array(out, type=pa.string(), mask=mask)
