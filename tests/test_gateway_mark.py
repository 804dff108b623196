"""Campaign marks (distillshield.gateway.mark): round trip, false positives, invisibility, streams.

Texts come from a seeded generator of assistant-style answers (prose with the connectors real
answers use, numbers, lists, code blocks, inline code, URLs and quotations). The measured
detection power and false-positive rates in docs/marking.md come from
``test_report_power_and_false_positives`` (run with ``-s`` to print the tables).
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.gateway.mark import (
    DEFAULT_ALPHA,
    LEXICON,
    ZERO_WIDTH,
    ChatStreamMarker,
    MarkEvidence,
    StreamMarker,
    decode_zero_width,
    detect,
    lexical_sites,
    mark_chat_completion,
    mark_response,
    mark_text,
    strip_zero_width,
    zero_width_tag,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
TAG, OTHER = "C-7", "C-12"

# ---------------------------------------------------------------------------------------------
# A seeded generator of assistant-style answers
# ---------------------------------------------------------------------------------------------

_S = [
    "the function",
    "this approach",
    "the model",
    "your code",
    "the cache",
    "a simple loop",
    "the server",
    "the test suite",
    "this option",
    "the database",
    "the parser",
    "each worker",
    "the scheduler",
    "the client",
]
_V = [
    "handles",
    "returns",
    "improves",
    "reduces",
    "changes",
    "stores",
    "checks",
    "avoids",
    "needs",
    "supports",
    "validates",
    "rewrites",
    "logs",
    "caches",
]
_O = [
    "the edge cases",
    "most errors",
    "the latency",
    "a list of values",
    "the input",
    "memory use",
    "the configuration",
    "duplicate keys",
    "user requests",
    "the results",
    "the session state",
    "old entries",
]
_T = [
    "in most cases",
    "when the input is large",
    "without extra work",
    "at startup",
    "for every request",
    "after the first call",
    "on each run",
    "",
    "",
    "",
]
_INITIAL = [pair for pair, rule in LEXICON if rule.startswith("initial")]
_ANY = [
    "{S} {v} {o}, for example {o2}.",
    "{S} {v} {o} toward the end of the run.",
    "{S} {v} {o} in order to keep {o2} small.",
    "{S} and {S2} depend on each other.",
    "{S} {v} {o} even though {S2} {v2} {o2}.",
    "Maybe {S} {v} {o} afterward.",
    "{S} {v} a variety of checks.",
    "Keep in mind that {S} {v} {o}.",
    "It is worth noting that {S} {v} {o}.",
    "{S} {v} {o}; moreover, {S2} {v2} {o2}.",
    "{S} {v} {o} in spite of {o2}.",
    "As mentioned, {S} {v} {o}.",
    "{S} {v} {o} nevertheless.",
    "{S} is a kind of {o2} in the long run.",
]


def _sentence(rng: random.Random) -> str:
    s, s2 = rng.sample(_S, 2)
    fill = {
        "S": s,
        "S2": s2,
        "v": rng.choice(_V),
        "v2": rng.choice(_V),
        "o": rng.choice(_O),
        "o2": rng.choice(_O),
    }
    r = rng.random()
    if r < 0.12:
        text = rng.choice(_ANY).format(**fill)
        if rng.random() < 0.4:  # a writer's own preference for the other variant
            for pair, _ in LEXICON:
                if pair[0] in text.lower():
                    text = re.sub(re.escape(pair[0]), pair[1], text, count=1, flags=re.I)
                    break
    elif r < 0.24:
        pair = rng.choice(_INITIAL)
        lead = pair[0] if rng.random() < 0.7 else pair[1]
        sep = " " if lead in ("make sure", "be sure") else ", "
        text = f"{lead.capitalize()}{sep}{fill['S']} {fill['v']} {fill['o']}."
    elif r < 0.30:
        ms, mb = rng.randint(2, 900), rng.randint(1, 640) / 10
        text = f"{fill['S'].capitalize()} takes {ms} ms and uses {mb} MB."
    else:
        tail = rng.choice(_T)
        text = f"{fill['S'].capitalize()} {fill['v']} {fill['o']}{' ' + tail if tail else ''}."
    return text[0].upper() + text[1:]


def answer(seed: int, size: int = 2000, extras: bool = True) -> str:
    """A deterministic assistant-style answer of at least ``size`` characters."""
    rng = random.Random(seed)
    blocks: list[str] = []
    total = 0
    while total < size:
        r = rng.random()
        if extras and r < 0.08:
            block = (
                f"```python\ndef f(x):\n    # for example, therefore\n    return x * {rng.randint(2, 9)}\n```"
            )
        elif extras and r < 0.14:
            block = "\n".join(f"{i + 1}. {_sentence(rng)}" for i in range(rng.randint(2, 4)))
        elif extras and r < 0.18:
            url = f"https://example.com/docs/for-example?id={rng.randint(1, 99)}"
            block = f"See {url} and `for example()` for details."
        elif extras and r < 0.21:
            quote = f'He said "for example, toward {rng.randint(1, 9)}".'
            block = f"> For example, a quoted line stays as it was.\n\n{quote}"
        else:
            block = " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))
        blocks.append(block)
        total += len(block) + 2
    return "\n\n".join(blocks)


SAMPLE = answer(3, 1500)


# ---------------------------------------------------------------------------------------------
# Round trip, keys, campaigns
# ---------------------------------------------------------------------------------------------


def evidence(text: str | list[str], key: bytes = KEY, tags: tuple[str, ...] = (TAG,)) -> MarkEvidence:
    result = detect(text, key, list(tags))
    return next(e for e in result if e.tag == tags[0])


def test_round_trip_many_seeds() -> None:
    for seed in range(120):
        text = answer(seed, 1500)
        marked = mark_text(text, KEY, TAG)
        assert marked == mark_text(text, KEY, TAG)  # deterministic
        e = evidence(marked, tags=(TAG, OTHER))
        assert e.zero_width_frames >= 1 and e.detected
        assert e.lexical_matches == e.lexical_sites  # every connector site agrees
        assert decode_zero_width(marked)[0] == zero_width_tag(KEY, TAG)


def test_wrong_key_and_other_campaign_do_not_detect() -> None:
    for seed in range(60):
        marked = mark_text(answer(seed, 1500), KEY, TAG)
        wrong = evidence(marked, key=OTHER_KEY)
        assert wrong.zero_width_frames == 0 and not wrong.detected
        other = evidence(marked, tags=(OTHER, TAG))
        assert other.zero_width_frames == 0 and not other.detected


def test_result_order_and_bonferroni() -> None:
    marked = mark_text(answer(1, 3000), KEY, TAG)
    result = detect(marked, KEY, ["C-1", "C-2", TAG, "C-3"])
    assert result[0].tag == TAG and result[0].detected
    assert all(e.p_adjusted == min(1.0, e.p_value * 4) for e in result)
    assert detect(marked, KEY, []) == []


def test_unknown_campaign_is_still_decoded() -> None:
    marked = mark_text(SAMPLE, KEY, "C-99")
    assert zero_width_tag(KEY, "C-99") in decode_zero_width(marked)
    assert decode_zero_width(SAMPLE) == []


def test_key_and_tag_validation() -> None:
    with pytest.raises(ValueError, match="key"):
        mark_text("x", b"", TAG)
    with pytest.raises(ValueError, match="tag"):
        StreamMarker(KEY, "")
    with pytest.raises(ValueError, match="key"):
        detect("x", b"", [TAG])


# ---------------------------------------------------------------------------------------------
# What must not change
# ---------------------------------------------------------------------------------------------

_VARIANTS = {v for pair, _ in LEXICON for v in pair}
_GROUP_OF = {v: g for g, (pair, _) in enumerate(LEXICON) for v in pair}
_ANY_VARIANT = re.compile(
    r"\b(" + "|".join(re.escape(v) for v in sorted(_VARIANTS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)


def _canonical(text: str) -> str:
    """``text`` with every connector variant replaced by its pair's id."""
    return _ANY_VARIANT.sub(lambda m: f"\u00a7{_GROUP_OF[m.group().lower()]}", text)


def _diff_is_only_swaps(original: str, changed: str) -> bool:
    """Whether the two texts differ only by swapping connector variants within their pairs."""
    return _canonical(original) == _canonical(changed)


def test_reader_sees_only_connector_swaps() -> None:
    for seed in range(80):
        text = answer(seed, 1500)
        marked = mark_text(text, KEY, TAG)
        visible = strip_zero_width(marked)
        # removing the zero-width characters leaves exactly the lexical-only marking
        assert visible == mark_text(text, KEY, TAG, zero_width=False)
        # NFKC of the rendered text equals the original's, up to connector swaps
        assert _diff_is_only_swaps(
            unicodedata.normalize("NFKC", text), unicodedata.normalize("NFKC", visible)
        )
        # the only new characters are the two zero-width ones
        added = set(marked) - set(text) - set("".join(_VARIANTS)) - set("".join(_VARIANTS).upper())
        assert added <= {"\u200b", "\u200c"}
        # and they sit after a plain space, before an ASCII letter
        for m in re.finditer("[\u200b\u200c]+", marked):
            assert marked[m.start() - 1] == " " and marked[m.end()].isascii() and marked[m.end()].isalpha()
            assert len(m.group()) == 8


def test_code_json_urls_numbers_quotes_untouched() -> None:
    text = (
        "Intro sentence with several plain words to reach the frames here. For example, this changes.\n\n"
        "```python\nfor example in examples:  # For example, therefore\n    pass\n```\n\n"
        "    For example, indented code.\n"
        "> For example, a block quote.\n"
        'He wrote "for example, toward x" and `for example` and $for example$ and <i>for example</i>.\n'
        "See https://example.com/toward/for-example?x=1 and www.example.org/towards now.\n"
        "It costs 3.50 USD, 1,024 items, 1e-9 s, v2.3.1, 0x1F and 42%."
    )
    raw = mark_text(text, KEY, TAG)
    assert ZERO_WIDTH & set(raw)  # the text was marked...
    for keep in [
        "```python\nfor example in examples:  # For example, therefore\n    pass\n```",
        "    For example, indented code.",
        "> For example, a block quote.",
        '"for example, toward x"',
        "`for example`",
        "$for example$",
        "<i>for example</i>",
        "https://example.com/toward/for-example?x=1",
        "www.example.org/towards",
        "3.50 USD, 1,024 items, 1e-9 s, v2.3.1, 0x1F and 42%.",
    ]:
        assert keep in raw, keep  # ...but not inside any of these, not even invisibly
    assert re.findall(r"\d+", raw) == re.findall(r"\d+", text)
    assert re.search("For (instance|example), this changes", strip_zero_width(raw))


def test_json_answers_are_not_marked() -> None:
    for doc in [
        '{"text": "For example, therefore toward and more words here"}',
        '  [1, 2, "for example"]',
        "",
    ]:
        assert mark_text(doc, KEY, TAG) == doc
    payload = json.dumps({"answer": SAMPLE})
    assert mark_text(payload, KEY, TAG) == payload
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": payload}}]}
    out, report = mark_chat_completion(body, KEY, TAG)
    assert out["choices"][0]["message"]["content"] == payload and report.skipped_json


def test_case_and_phrase_boundaries() -> None:
    text = (
        "Toward the end. FOR EXAMPLE, shouting. For Example, title case. "
        "x.For example, glued. Forexample. towardness."
    )
    sites = lexical_sites(text)
    assert [LEXICON[g][0] for g, _, _ in sites] == [("toward", "towards"), ("for example", "for instance")]
    marked = strip_zero_width(mark_text(text, KEY, TAG))
    assert marked.split(". ")[2:] == text.split(". ")[2:]
    assert marked.split(". ")[1] in ("FOR EXAMPLE, shouting", "FOR INSTANCE, shouting")


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


def stream_mark(parts: list[str], key: bytes = KEY, tag: str = TAG) -> tuple[str, int]:
    m = StreamMarker(key, tag)
    out, held = "", 0
    for p in parts:
        out += m.feed(p)
        held = max(held, m.held)
    return out + m.finish(), held


def test_stream_equals_whole_at_every_split() -> None:
    whole = mark_text(SAMPLE, KEY, TAG)
    for i in range(len(SAMPLE) + 1):
        assert stream_mark([SAMPLE[:i], SAMPLE[i:]])[0] == whole, i


def test_stream_char_by_char_holds_little() -> None:
    for seed in range(10):
        text = answer(seed, 2000)
        out, held = stream_mark(list(text))
        assert out == mark_text(text, KEY, TAG)
        # a word, a connector phrase, or an unfinished URL / fence line / HTML tag
        assert held <= 80


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 10_000), st.lists(st.integers(0, 5000), max_size=40))
def test_stream_equals_whole_property(seed: int, cuts: list[int]) -> None:
    text = answer(seed, 600)
    points = sorted({c % (len(text) + 1) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert stream_mark(parts)[0] == mark_text(text, KEY, TAG)


_ATOMS = [
    "For example,",
    " for instance",
    "Therefore,",
    " toward",
    "\n",
    "```",
    "`",
    "$",
    "$$",
    "\\(",
    "<b>",
    "<",
    ">",
    '"',
    "“",
    "”",
    "http",
    "://x.y",
    "www.",
    " ",
    "  ",
    "word",
    ".",
    "First, ",
    "In other words, ",
    "> ",
    "    ",
    "{",
    "[",
    "\u200b",
    "é",
    "1.",
    "Make sure ",
    "a variety of",
    "_x",
]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(_ATOMS), max_size=40), st.lists(st.integers(0, 400), max_size=10))
def test_stream_equals_whole_on_markup_soup(atoms: list[str], cuts: list[int]) -> None:
    text = "".join(atoms)
    points = sorted({c % (len(text) + 1) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    whole = mark_text(text, KEY, TAG)
    assert stream_mark(parts)[0] == whole
    assert stream_mark(list(text))[0] == whole
    # detection sees in the marked text the sites that were marked
    assert [s[:2] for s in lexical_sites(strip_zero_width(whole))] == [s[:2] for s in lexical_sites(text)]


def test_chat_stream_marker_matches_body() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": SAMPLE}, "finish_reason": "stop"}
        ]
    }
    want = mark_chat_completion(body, KEY, TAG)[0]["choices"][0]["message"]["content"]
    m = ChatStreamMarker(KEY, TAG)
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    ]
    chunks += [
        {"choices": [{"index": 0, "delta": {"content": SAMPLE[i : i + 5]}, "finish_reason": None}]}
        for i in range(0, len(SAMPLE), 5)
    ]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out: list[dict[str, Any]] = []
    for c in chunks:
        out += m.feed(c)
    out += m.finish()
    got = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
    assert got == want
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    assert m.report.zero_width_groups >= 5


def test_mark_bodies_do_not_mutate() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": SAMPLE}}]}
    before = json.dumps(body)
    out, report = mark_chat_completion(body, KEY, TAG)
    assert json.dumps(body) == before and out["choices"][0]["message"]["content"] == mark_text(
        SAMPLE, KEY, TAG
    )
    assert report.zero_width_groups >= 5 and report.lexical_sites >= 1
    resp: dict[str, Any] = {
        "output": [{"type": "message", "content": [{"type": "output_text", "text": SAMPLE}]}]
    }
    out2, _ = mark_response(resp, KEY, TAG)
    assert out2["output"][0]["content"][0]["text"] == mark_text(SAMPLE, KEY, TAG)
    assert resp["output"][0]["content"][0]["text"] == SAMPLE


# ---------------------------------------------------------------------------------------------
# Robustness: what a copier does to the text
# ---------------------------------------------------------------------------------------------


def test_survives_nfkc_and_zero_width_removal() -> None:
    texts = [answer(seed, 2000) for seed in range(40)]
    marked = [mark_text(t, KEY, TAG) for t in texts]
    # NFKC keeps both channels
    nfkc = evidence([unicodedata.normalize("NFKC", m) for m in marked])
    assert nfkc.zero_width_frames >= 40 and nfkc.detected
    # a careful copier strips the zero-width characters: the lexical channel remains
    cleaned = [strip_zero_width(m) for m in marked]
    e = evidence(cleaned, tags=(TAG, OTHER))
    assert e.zero_width_frames == 0
    assert e.lexical_matches == e.lexical_sites and e.lexical_sites >= 20 and e.detected
    # ...plus whitespace normalisation and a fullwidth-comma round trip
    squashed = [" ".join(c.replace(",", "，").split()) for c in cleaned]
    assert evidence([unicodedata.normalize("NFKC", s) for s in squashed]).detected
    # unmarked texts pooled the same way do not
    assert not evidence(texts).detected


def power_table(
    texts_for: Any, lengths: list[int], n: int, alpha: float = DEFAULT_ALPHA
) -> list[tuple[int, float, float, float, float, float]]:
    """Per length: mean sites, power (lexical only, zero-width stripped), zero-width decode
    rate, false-positive rate on unmarked text and on text marked for another campaign."""
    rows = []
    for length in lengths:
        sites = hits = zw = fp_clean = fp_other = 0
        for seed in range(n):
            text = texts_for(seed, length)
            marked = mark_text(text, KEY, TAG)
            e = evidence(strip_zero_width(marked))
            sites += e.lexical_sites
            hits += e.p_value <= alpha
            zw += evidence(marked).zero_width_frames > 0
            fp_clean += evidence(text).p_value <= alpha
            fp_other += evidence(mark_text(text, KEY, f"{OTHER}-{seed}")).is_detected(alpha)
        rows.append((length, sites / n, hits / n, zw / n, fp_clean / n, fp_other / n))
    return rows


def test_false_positive_rate_on_seeded_texts() -> None:
    """Unmarked texts and texts marked for other campaigns, tested for TAG: at alpha = 0.01
    the rate must stay near 1% (the test is exact and conservative); none at DEFAULT_ALPHA."""
    n = 300
    p_clean, p_other = [], []
    for seed in range(n):
        text = answer(1000 + seed, 4000)
        p_clean.append(evidence(text).p_value)
        other = evidence(mark_text(text, KEY, f"X-{seed}"))
        assert other.zero_width_frames == 0
        p_other.append(other.p_value)
    for ps in (p_clean, p_other):
        assert sum(p <= 0.01 for p in ps) <= 9  # expected <= 3; 9 is beyond the 99.9th percentile
        assert sum(p <= DEFAULT_ALPHA for p in ps) <= 2
        assert 0.35 < sum(p <= 0.5 for p in ps) / n < 0.75  # p-values are not piled up near 0 or 1


def test_power_grows_with_length() -> None:
    rows = power_table(lambda seed, size: answer(2000 + seed, size, extras=False), [1000, 4000, 16000], 40)
    sites = [r[1] for r in rows]
    power = [r[2] for r in rows]
    assert sites == sorted(sites) and power == sorted(power)
    assert power[-1] >= 0.9  # ~16 KB of connector-rich prose: detected from one text
    assert all(r[3] == 1.0 for r in rows)  # zero-width frames always decode
    assert all(r[4] == 0.0 and r[5] == 0.0 for r in rows)


SHARED = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "prompts"
    / "legit"
    / "hh_rlhf_helpful_base_test.jsonl.gz"
)


def _hh_answers() -> list[str]:
    import gzip

    out = []
    with gzip.open(SHARED, "rt") as fh:
        for line in fh:
            for turn in re.split(r"\n\n(?=Human:|Assistant:)", json.loads(line)["chosen"]):
                if turn.startswith("Assistant:"):
                    out.append(turn[len("Assistant:") :].strip())
    return out


@pytest.mark.slow
def test_report_power_and_false_positives() -> None:
    """The tables of docs/marking.md: ``pytest tests/test_gateway_mark.py -k report -s``."""
    lengths = [500, 1000, 2000, 4000, 8000, 16000, 32000]
    tables = {"generator (seeded answers)": lambda seed, size: answer(5000 + seed, size)}
    if SHARED.is_file():
        hh = _hh_answers()

        def pooled(seed: int, size: int) -> str:
            """Consecutive real assistant answers (Anthropic hh-rlhf), pooled to ``size``."""
            rng = random.Random(seed)
            i = rng.randrange(len(hh))
            parts: list[str] = []
            while sum(map(len, parts)) < size:
                parts.append(hh[i % len(hh)])
                i += 1
            return "\n\n".join(parts)

        tables["hh-rlhf assistant turns, pooled"] = pooled
    for name, fn in tables.items():
        rows = power_table(fn, lengths, 100)
        print(f"\n{name}: alpha={DEFAULT_ALPHA}, 100 texts per length")
        print("chars | sites/text | power (b only) | zero-width decode | FPR unmarked | FPR other campaign")
        for length, sites, power, zw, fp1, fp2 in rows:
            print(f"{length:>6} | {sites:10.1f} | {power:14.2f} | {zw:17.2f} | {fp1:12.3f} | {fp2:18.3f}")
        assert all(r[3] == 1.0 for r in rows)
        assert [r[1] for r in rows] == sorted(r[1] for r in rows)
        assert rows[-1][2] >= 0.9
        assert sum(r[4] + r[5] for r in rows) <= 0.05  # at most ~5 of 1,400 tests at alpha = 1e-3
