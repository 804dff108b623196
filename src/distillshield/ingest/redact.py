"""Mask secrets and personal data in stored text, vectorised with RE2.

Every text the ingest stores (prompt, system prompt, response, metadata, quarantined raw
records) passes through :func:`redact` first: logs from an API are full of what users
paste — their e-mail address, a colleague's phone number, the API key they are debugging.
Storing those would make the detection dataset itself a leak.

How it stays fast (the ingest must sustain well over 50k exchanges/s on two cores):

1. one RE2 pass of a combined pattern finds the few rows that may hold anything at all;
2. only those rows go through the patterns one by one (count, then replace);
3. card numbers and IBANs are confirmed with their checksums (Luhn + issuer prefix,
   ISO 13616 mod-97) in Python on those few candidates, so "1234 5678 9012 3456" in a
   maths question is left alone;
4. dictionary-encoded columns (a system prompt repeated a million times) are redacted
   once per distinct value.

Replacements are bracketed tokens (``[EMAIL]``, ``[API_KEY]``, …) that none of the
patterns match, so redaction is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PATTERNS", "Pattern", "redact", "redact_chunked"]


@dataclass(frozen=True)
class Pattern:
    """One kind of secret: an RE2 pattern (also valid Python ``re``) and its mask token.

    ``check``, when set, confirms each match in Python (checksums); unconfirmed matches
    are left as they are.
    """

    name: str
    regex: str
    token: str
    check: Callable[[str], bool] | None = None


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def luhn_ok(number: str) -> bool:
    """Luhn checksum of the digits in ``number``."""
    digits = [int(c) for c in _digits(number)]
    if not digits:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_ok(number: str) -> bool:
    """A payment card number: valid length for its issuer prefix and a good Luhn checksum."""
    d = _digits(number)
    n = len(d)
    issuer = (
        (d[0] == "4" and n in (13, 16, 19))  # Visa
        or (51 <= int(d[:2]) <= 55 and n == 16)  # Mastercard
        or (2221 <= int(d[:4]) <= 2720 and n == 16)  # Mastercard 2-series
        or (d[:2] in ("34", "37") and n == 15)  # American Express
        or ((d[:4] == "6011" or d[:2] == "65" or 644 <= int(d[:3]) <= 649) and 16 <= n <= 19)  # Discover
        or (3528 <= int(d[:4]) <= 3589 and 16 <= n <= 19)  # JCB
        or ((d[:2] in ("36", "38", "39") or 300 <= int(d[:3]) <= 305) and 14 <= n <= 19)  # Diners
    )
    return bool(issuer) and luhn_ok(d)


def iban_ok(text: str) -> bool:
    """ISO 13616 IBAN: length 15–34 and mod-97 remainder 1."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    numeric = "".join(str(int(c, 36)) for c in moved)
    return int(numeric) % 97 == 1


#: Applied in this order: enclosing forms (key blocks, JWTs, bearer headers) before the keys
#: they may contain; cards before phone numbers (a card's digit groups look like one).
PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "private_key",
        # The whole block; an unterminated one (truncated log) up to the end of its base64.
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
        r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
        "[PRIVATE_KEY]",
    ),
    Pattern("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "[JWT]"),
    Pattern("bearer", r"\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+[A-Za-z0-9._~+/-]{16,}=*", "Bearer [TOKEN]"),
    Pattern("api_key", r"\bsk-[A-Za-z0-9_-]{20,}", "[API_KEY]"),  # OpenAI sk-, sk-proj-; Anthropic sk-ant-
    Pattern("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[AWS_KEY]"),
    Pattern(
        "github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", "[GITHUB_TOKEN]"
    ),
    Pattern("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "[SLACK_TOKEN]"),
    Pattern("google_key", r"\bAIza[0-9A-Za-z_-]{35}", "[GOOGLE_KEY]"),
    Pattern("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]"),
    Pattern("card", r"\b(?:\d{4}[ -]?){3}\d{1,7}\b|\b\d{4}[ -]?\d{6}[ -]?\d{4,5}\b", "[CARD]", check=card_ok),
    Pattern("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", "[IBAN]", check=iban_ok),
    Pattern(
        "phone",
        r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?[ .-]?\d{2,4}[ .-]?\d{2,4}(?:[ .-]?\d{2,4})?"
        r"|\b\d{3}[.-]\d{3}[.-]\d{4}\b|\(\d{3}\) ?\d{3}[.-]\d{4}\b",
        "[PHONE]",
    ),
)

#: One RE2 pass with every pattern: rows that match nothing skip all further work.
_ANY = "|".join(f"(?:{p.regex})" for p in PATTERNS)
_COMPILED = {p.name: re.compile(p.regex) for p in PATTERNS if p.check is not None}


def _checked_sub(p: Pattern, texts: list[str | None]) -> tuple[list[str | None], np.ndarray]:
    rx = _COMPILED[p.name]
    check = p.check
    assert check is not None
    counts = np.zeros(len(texts), dtype=np.int32)
    out: list[str | None] = []
    for i, t in enumerate(texts):
        if t is None:
            out.append(t)
            continue

        def sub(m: re.Match[str], i: int = i) -> str:
            if check(m.group(0)):
                counts[i] += 1
                return p.token
            return m.group(0)

        out.append(rx.sub(sub, t))
    return out, counts


def _redact_plain(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    n = len(arr)
    counts = np.zeros(n, dtype=np.int32)
    if n == 0 or arr.null_count == n:
        return arr, counts
    cand = pc.fill_null(pc.match_substring_regex(arr, _ANY), False)
    idx = np.flatnonzero(cand.to_numpy(zero_copy_only=False))
    if not idx.size:
        return arr, counts
    sub = arr.take(pa.array(idx))
    sub_counts = np.zeros(idx.size, dtype=np.int32)
    for p in PATTERNS:
        if p.check is None:
            c = pc.fill_null(pc.count_substring_regex(sub, p.regex), 0).to_numpy(zero_copy_only=False)
            if c.any():
                sub = pc.replace_substring_regex(sub, p.regex, p.token)
                sub_counts += c.astype(np.int32)
        else:
            hit = np.flatnonzero(pc.fill_null(pc.match_substring_regex(sub, p.regex), False).to_numpy(False))
            if hit.size:
                texts = sub.to_pylist()
                new, c = _checked_sub(p, [texts[j] for j in hit])
                for j, t in zip(hit, new, strict=True):
                    texts[j] = t
                sub = pa.array(texts, pa.string())
                sub_counts[hit] += c
    counts[idx] = sub_counts
    return pc.replace_with_mask(arr, cand, sub), counts


def _redact_one(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    if pa.types.is_dictionary(arr.type):
        # Redact each distinct value once, then expand: repeated system prompts cost nothing.
        values, dcounts = _redact_plain(arr.dictionary.cast(pa.string()))
        idx = arr.indices
        counts = dcounts[pc.fill_null(idx, 0).to_numpy(zero_copy_only=False)] if len(dcounts) else None
        out = values.take(idx)
        if counts is None:
            counts = np.zeros(len(arr), dtype=np.int32)
        counts = np.where(pc.is_null(arr).to_numpy(zero_copy_only=False), 0, counts).astype(np.int32)
        return out, counts
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return _redact_plain(arr)


def redact_chunked(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """:func:`redact` chunk by chunk, without concatenating (the ingest's internal form)."""
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    outs: list[pa.Array] = []
    counts: list[np.ndarray] = []
    for ch in chunks:
        o, c = _redact_one(ch)
        outs.append(o)
        counts.append(c)
    total = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int32)
    return pa.chunked_array(outs, type=pa.string()), total


def redact(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.StringArray, np.ndarray]:
    """Mask secrets in ``texts``: ``(masked strings, per-row count of masks applied)``.

    Masks e-mail addresses, phone numbers, API keys and tokens (OpenAI/Anthropic ``sk-``,
    AWS ``AKIA``/``ASIA``, GitHub ``ghp_``/``github_pat_``, Slack ``xox*``, Google
    ``AIza``, JWTs, bearer tokens, private-key blocks), payment card numbers (Luhn and
    issuer checked) and IBANs (mod-97 checked). Nulls stay null with a count of 0.
    """
    out, counts = redact_chunked(texts)
    combined = out.combine_chunks() if out.num_chunks else pa.array([], pa.string())
    return combined, counts
