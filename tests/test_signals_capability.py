"""Capability-targeting signal (distillshield.signals.capability).

Accuracy floors on real data come from the figures in docs/signals-cot-capability.md, with
margin; the arena-hard floor is low because its cluster names are noisy labels (see the doc).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from distillshield.signals import capability as cap
from distillshield.signals.capability import (
    AGENTIC,
    CATEGORIES,
    CHAT,
    CODING,
    CREATIVE,
    GRADING,
    MATH,
    REWRITE,
    category_map,
    classify,
    legit_prompts,
    reference_items,
)


def one(
    prompt: str | None, system: str | None = None, tools: list[str] | None = None, n: int = 1
) -> str | None:
    out = classify(
        pa.array([prompt], pa.string()),
        pa.array([system], pa.string()),
        pa.array([tools], pa.list_(pa.string())),
        pa.array([n], pa.int32()),
    ).to_pylist()
    label: str | None = out[0]
    return label


# --- API contract -----------------------------------------------------------------------------


def test_contract_and_optional_columns() -> None:
    prompts = pa.array(["Solve 2x + 3 = 7", "Tell me about Lisbon", None], pa.string())
    out = classify(prompts)
    assert out.type == pa.string()
    assert out.to_pylist() == [MATH, CHAT, None]
    assert classify(pa.array([], pa.string())).to_pylist() == []
    chunked = classify(pa.chunked_array([["Write a haiku about rain"], ["Translate 'hello' into French:"]]))
    assert chunked.to_pylist() == [CREATIVE, REWRITE]
    with pytest.raises(ValueError):
        classify(pa.array(["a", "b"]), pa.array(["x"]))


def test_null_prompt_is_decided_by_tools_or_system_prompt() -> None:
    assert one(None, tools=["read_file"]) == AGENTIC
    assert one(None, system="Please act as an impartial judge and evaluate the response.") == GRADING
    assert one(None, system="You are a Python coding assistant.") == CODING
    assert one(None, system="Be nice.") is None
    assert one(None) is None


def test_tools_and_agent_system_prompts_override_the_text() -> None:
    assert one("Fix the failing test in utils.py", tools=["read_file", "run_terminal_cmd"]) == AGENTIC
    assert one("Fix the failing test in utils.py", tools=[]) == CODING
    agent = "You are an autonomous coding agent operating in the user's IDE."
    assert one("Fix the failing test", system=agent) == AGENTIC
    assert one("continue", system="You have access to the following tools: search, open_url") == AGENTIC


def test_tool_transcripts_and_computer_use() -> None:
    assert one('<tool_result>{"temp": 21}</tool_result> What should I wear?') == AGENTIC
    assert one("Thought: I need the price.\nAction: search\nAction Input: AAPL price") == AGENTIC
    assert one("Here are the function results: []. Now summarize them.") == AGENTIC
    assert one("left_click at (512, 300), then type_text 'hello'") == AGENTIC
    # a bare tool output deep in a conversation is an agent turn; as a first message it is not
    assert one('{"status": "ok", "rows": 3}', n=7) == AGENTIC
    assert one('{"status": "ok", "rows": 3}', n=1) != AGENTIC


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Write a Python function that solves a quadratic equation.", CODING),
        ("Translate this SQL query to pandas: SELECT * FROM t WHERE x > 1", CODING),
        ("Grade this Python code on a rubric from 1 to 10: def f(x): return x", GRADING),
        ("Write a poem about prime numbers.", CREATIVE),
        ("Translate into German: the weather is nice today.", REWRITE),
        ("Rewrite this paragraph to sound more formal: hey guys, meeting moved.", REWRITE),
        ("A train travels 120 km in 1.5 hours. What is its average speed?", MATH),
        ("Janet has three times as many apples as Tom, who has five. How many apples in total?", MATH),
        ("Prove that the square root of 2 is irrational.", MATH),
        ("Pretend you are a pirate captain and stay in character.", CREATIVE),
        ("Please act as an impartial judge and evaluate the quality of the response below.", GRADING),
        ("Which response is better, A or B? Output your final verdict: [[A]] or [[B]].", GRADING),
        ("What are some good Nintendo 64 games for kids?", CHAT),
        ("How do I keep mosquitoes out of my house?", CHAT),
        ("Traceback (most recent call last):\n  File 'a.py', line 3\nKeyError: 'x'", CODING),
        ("你是一个严格的奖励模型。请判断下面的回答是否正确，输出0到1之间的分数。", GRADING),
        ("请把这段话翻译成英文：今天天气很好。", REWRITE),
        ("Переведи на английский: я люблю математику.", REWRITE),
        ("Resuelve la ecuación 3x + 2 = 11.", MATH),
    ],
)
def test_categories(prompt: str, expected: str) -> None:
    assert one(prompt) == expected


def test_deterministic_and_in_vocabulary() -> None:
    prompts = pa.array(["Solve x^2=4", "Write a story", "hi", "def f(): pass", None] * 50)
    a, b = classify(prompts), classify(prompts)
    assert a.equals(b)
    assert set(a.drop_null().to_pylist()) <= set(CATEGORIES)


# --- the fast paths never change an answer ----------------------------------------------------


def _all_texts(corpus: Path | None) -> list[str]:
    texts = [
        "Write a Python function that solves a quadratic equation.",
        "Please act as an impartial judge; assistant A's answer vs assistant B's answer.",
        "<function_results>ok</function_results>",
    ]
    if corpus is not None:
        texts += [it.prompt for it in reference_items(corpus)]
        texts += [p for ps in legit_prompts(corpus).values() for p in ps]
    return texts


def test_rare_gate_is_a_superset(prompts_corpus_or_none: Path | None) -> None:
    low = pc.utf8_lower(pa.array(_all_texts(prompts_corpus_or_none)))
    gate = cap._match(low, cap._RARE_GATE)
    for pattern in (cap._TRANSCRIPT, cap._GRADING_STRONG):
        hit = cap._match(low, pattern)
        assert not np.any(hit & ~gate)


def test_lazy_priority_scan_equals_eager_decision(prompts_corpus_or_none: Path | None) -> None:
    texts = _all_texts(prompts_corpus_or_none)
    low = pc.utf8_lower(pa.array(texts))
    strong = np.array([cap._match(low, cap._STRONG[c]) for c in cap.PRIORITY])
    weak = np.array(
        [
            cap._match(low, cap._WEAK[c]) if c in cap._WEAK else np.zeros(len(texts), bool)
            for c in cap.PRIORITY
        ]
    )
    eager = np.where(
        strong.any(axis=0),
        strong.argmax(axis=0),
        np.where(weak.any(axis=0), weak.argmax(axis=0), len(cap.PRIORITY)),
    )
    names = [*cap.PRIORITY, CHAT]
    assert classify(pa.array(texts)).to_pylist() == [names[i] for i in eager]


@pytest.fixture
def prompts_corpus_or_none() -> Path | None:
    """The real prompt sets when present; the structural checks also run without them."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"
    return path if path.is_dir() else None


# --- real prompt sets ------------------------------------------------------------------------


def test_category_map_is_well_formed() -> None:
    mapping = category_map()
    assert set(mapping) == {"arena_cluster", "mt_bench_category"}
    for table in mapping.values():
        assert set(table.values()) <= {*CATEGORIES, None}
    assert len(mapping["arena_cluster"]) == 250
    assert set(mapping["mt_bench_category"]) == {
        "writing",
        "roleplay",
        "reasoning",
        "math",
        "coding",
        "extraction",
        "stem",
        "humanities",
    }


@pytest.mark.corpus
def test_category_map_covers_every_arena_cluster(prompts_corpus: Path) -> None:
    path = prompts_corpus / "legit/arena_hard_v0.1.jsonl"
    clusters = {json.loads(line)["cluster"] for line in path.open()}
    assert clusters == set(category_map()["arena_cluster"])


@pytest.mark.corpus
def test_accuracy_on_real_sets(prompts_corpus: Path) -> None:
    # measured: gsm8k 0.989, humaneval 1.000, judge 8/8 (+8/8 filled), arena-hard 0.711, mt-bench 0.762
    floors = {
        "gsm8k": 0.96,
        "humaneval": 0.97,
        "judge": 1.0,
        "judge_filled": 1.0,
        "arena_hard": 0.62,
        "mt_bench": 0.68,
    }
    items = reference_items(prompts_corpus)
    pred = classify(
        pa.array([i.prompt for i in items]), pa.array([i.system_prompt for i in items], pa.string())
    ).to_pylist()
    for source, floor in floors.items():
        idx = [k for k, it in enumerate(items) if it.source == source]
        assert idx, source
        acc = sum(pred[k] == items[k].expected for k in idx) / len(idx)
        assert acc >= floor, (source, acc)


@pytest.mark.corpus
def test_judge_templates_are_grading_even_without_their_system_prompt(prompts_corpus: Path) -> None:
    judges = [it for it in reference_items(prompts_corpus) if it.source.startswith("judge")]
    assert len(judges) == 16
    assert classify(pa.array([j.prompt for j in judges])).to_pylist() == [GRADING] * 16


@pytest.mark.corpus
def test_everyday_chat_stays_general(prompts_corpus: Path) -> None:
    # measured: 96.7% of hh-rlhf first turns are general_chat; none are grading or agentic
    hh = legit_prompts(prompts_corpus)["hh_rlhf"]
    c = Counter(classify(pa.array(hh)).to_pylist())
    assert c[CHAT] / len(hh) >= 0.93
    assert c[GRADING] + c[AGENTIC] <= 2
