"""Redaction: every secret kind is masked and counted, look-alikes are left alone."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.ingest import redact
from distillshield.ingest.redact import card_ok, iban_ok, luhn_ok

SECRETS = [
    ("email", "reach me at dana.kim+work@mail.example.co.uk please", "reach me at [EMAIL] please"),
    ("openai key", "OPENAI_API_KEY=sk-proj-Xa9fK2mPq7TzR4vL8wNc3Yb6Hd1", "OPENAI_API_KEY=[API_KEY]"),
    ("anthropic key", "key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345", "key: [API_KEY]"),
    ("aws key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = [AWS_KEY]"),
    ("github pat", "token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "token [GITHUB_TOKEN]"),
    ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[GITHUB_TOKEN]"),
    ("slack", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "SLACK=[SLACK_TOKEN]"),
    ("google", "maps key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "maps key [GOOGLE_KEY]"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "[JWT]",
    ),
    ("bearer", "Authorization: Bearer 0123456789abcdefABCDEF.xyz", "Authorization: Bearer [TOKEN]"),
    (
        "private key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY----- done",
        "[PRIVATE_KEY] done",
    ),
    ("visa", "card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
    ("amex", "amex 3782-822463-10005", "amex [CARD]"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [IBAN] thanks"),
    ("iban compact", "send to GB82WEST12345698765432", "send to [IBAN]"),
    ("us phone", "call (415) 555-0132 or 415.555.0199", "call [PHONE] or [PHONE]"),
    ("intl phone", "WhatsApp +44 20 7946 0958", "WhatsApp [PHONE]"),
]


@pytest.mark.parametrize(("kind", "text", "masked"), SECRETS, ids=[s[0] for s in SECRETS])
def test_each_secret_kind_is_masked(kind: str, text: str, masked: str) -> None:
    out, counts = redact(pa.array([text]))
    assert out.to_pylist() == [masked]
    assert counts.tolist() == [masked.count("[")]


LOOKALIKES = [
    "What is 1234 5678 9012 3456 divided by 4?",  # fails Luhn
    "Years: 2024 2025 2026 2027",  # 16 digits, no issuer prefix
    "Order GB82 WEST 1234 5698 7654 33 is an invalid IBAN",  # bad mod-97
    "The task-ask-sky-skill mapping",  # sk- inside words, too short
    "Solve 12*7 = 84, then 3-4-5 triangles",
    "Think step by step about x@y",  # not an address
    "ISO 8601 date 2026-02-01T10:00:00Z",
    "version 1.82.0 of the SDK",
]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_look_alikes_are_left_alone(text: str) -> None:
    out, counts = redact(pa.array([text]))
    assert out.to_pylist() == [text] and counts.tolist() == [0]


def test_nulls_dictionaries_and_chunks() -> None:
    out, counts = redact(pa.array([None, "a@b.io", "", None]))
    assert out.to_pylist() == [None, "[EMAIL]", "", None] and counts.tolist() == [0, 1, 0, 0]
    d = pa.array(["sys a@b.io", None, "plain", "sys a@b.io"]).dictionary_encode()
    out, counts = redact(d)
    assert out.to_pylist() == ["sys [EMAIL]", None, "plain", "sys [EMAIL]"] and counts.tolist() == [
        1,
        0,
        0,
        1,
    ]
    chunked = pa.chunked_array([pa.array(["x@y.org"]), pa.array(["none", "AKIAIOSFODNN7EXAMPLE"])])
    out, counts = redact(chunked)
    assert isinstance(out, pa.StringArray)
    assert out.to_pylist() == ["[EMAIL]", "none", "[AWS_KEY]"] and counts.dtype == np.int32


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_ok("5500 0000 0000 0004") and not card_ok("1234 5678 9012 3456")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


WORDS = st.text(alphabet="abcdefghij klmnopqrstuvwxyz.,;:!?'", max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(WORDS, st.sampled_from(SECRETS), WORDS), min_size=1, max_size=10))
def test_secrets_inside_arbitrary_text_are_masked_and_redaction_is_idempotent(
    rows: list[tuple[str, tuple[str, str, str], str]],
) -> None:
    texts = [f"{a} {secret[1]} {b}" for a, secret, b in rows]
    out, counts = redact(pa.array(texts))
    for (a, secret, b), masked, n in zip(rows, out.to_pylist(), counts, strict=True):
        assert masked == f"{a} {secret[2]} {b}"
        assert n == secret[2].count("[")
    again, counts2 = redact(out)
    assert again.to_pylist() == out.to_pylist() and not counts2.any()


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, max_size=20))
def test_plain_text_is_unchanged(texts: list[str]) -> None:
    out, counts = redact(pa.array(texts, pa.string()))
    assert out.to_pylist() == texts and not counts.any()
