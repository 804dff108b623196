"""Tests of the simulator's prompt/response text (distillshield.simulate.text).

Built-in content only unless marked ``corpus`` (needs ../shared/data/prompts; skipped
when absent). Throughput is measured by ``python -m distillshield.simulate.text._bench``,
not here.
"""

from __future__ import annotations

import doctest
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import distillshield.simulate.text as text_pkg
from distillshield.simulate.text import (
    CAPABILITIES,
    PROMPT_KINDS,
    RESPONSE_KINDS,
    CorpusError,
    PromptBatch,
    TextSource,
    estimate_tokens,
)
from distillshield.simulate.text._engine import parse_template
from distillshield.simulate.text._problems import ProblemBank
from distillshield.simulate.text._vocab import LANGS

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prompts"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/data/prompts not present")

LEGIT = (
    "chat",
    "chat_followup",
    "coding_question",
    "agent_step",
    "saas_input",
    "benchmark_math",
    "class_assignment",
    "synthetic_data",
    "reseller_mix",
)
ATTACK = tuple(k for k in PROMPT_KINDS if k not in LEGIT)
HUMAN = ("chat", "chat_followup", "coding_question", "class_assignment", "reseller_mix")
NON_LATIN = re.compile(r"[\u0400-\u04ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
COT_KINDS = ("cot_harvest", "answer_rationalization", "reasoning_trace")


def _lines(path: Path) -> list[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read().splitlines()
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def src() -> TextSource:
    return TextSource(seed=11)


def _batch(src: TextSource, kind: str, n: int = 300, seed: int = 5, lang_mix: float = 0.2) -> PromptBatch:
    variant = np.arange(n, dtype=np.int64) % 7
    return src.prompts(kind, n, np.random.default_rng(seed), variant=variant, lang_mix=lang_mix)


def _templates(src: TextSource) -> dict[int, str]:
    t = src.frame_table()
    return dict(zip(t.column("frame").to_pylist(), t.column("template").to_pylist(), strict=True))


# --- API and determinism -------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert sorted(text_pkg.__all__) == sorted(
        [
            "CAPABILITIES",
            "PROMPT_KINDS",
            "RESPONSE_KINDS",
            "CorpusError",
            "PromptBatch",
            "ResponseBatch",
            "TextSource",
            "estimate_tokens",
        ]
    )
    assert set(PROMPT_KINDS) == set(LEGIT) | set(ATTACK)
    assert len(PROMPT_KINDS) == 19
    assert set(RESPONSE_KINDS) == {
        "chat",
        "code",
        "math",
        "cot",
        "grading",
        "rewrite",
        "tool_call",
        "agent",
        "vision",
        "data",
    }


def test_package_doctest() -> None:
    result = doctest.testmod(text_pkg, verbose=False)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_every_kind_renders_n_rows_deterministically(src: TextSource, kind: str) -> None:
    a = _batch(src, kind)
    b = _batch(src, kind)
    assert isinstance(a.text, pa.StringArray) and len(a.text) == 300 and a.text.null_count == 0
    assert a.frame.dtype == np.int32 and a.frame.shape == (300,)
    assert a.cot_elicit.dtype == bool and a.capability.dtype == object
    assert set(a.capability) <= set(CAPABILITIES)
    assert a.text.equals(b.text)
    assert np.array_equal(a.frame, b.frame) and np.array_equal(a.cot_elicit, b.cot_elicit)
    assert list(a.capability) == list(b.capability)
    assert min(len(t) for t in a.text.to_pylist()) > 0


def test_same_seed_same_source_different_seed_different_sets() -> None:
    one, two, other = TextSource(seed=3), TextSource(seed=3), TextSource(seed=4)
    for kind in ("cot_harvest", "chat", "tool_use"):
        x = one.prompts(kind, 200, np.random.default_rng(1), variant=np.full(200, 9))
        y = two.prompts(kind, 200, np.random.default_rng(1), variant=np.full(200, 9))
        assert x.text.equals(y.text) and np.array_equal(x.frame, y.frame)
    # A campaign's template set (variant) is drawn from the seed.
    sets_3 = {
        tuple(
            sorted(
                set(
                    one.prompts(
                        "cot_harvest", 400, np.random.default_rng(v), variant=np.full(400, v)
                    ).frame.tolist()
                )
            )
        )
        for v in range(8)
    }
    sets_4 = {
        tuple(
            sorted(
                set(
                    other.prompts(
                        "cot_harvest", 400, np.random.default_rng(v), variant=np.full(400, v)
                    ).frame.tolist()
                )
            )
        )
        for v in range(8)
    }
    assert sets_3 != sets_4


def test_zero_rows_and_argument_validation(src: TextSource) -> None:
    for kind in PROMPT_KINDS:
        b = src.prompts(kind, 0, np.random.default_rng(0))
        assert len(b.text) == 0 and len(b.frame) == 0
    r = src.responses("chat", 0, np.random.default_rng(0))
    assert len(r.text) == 0 and len(r.output_tokens) == 0
    with pytest.raises(KeyError):
        src.prompts("not_a_kind", 3, np.random.default_rng(0))
    with pytest.raises(KeyError):
        src.responses("essay", 3, np.random.default_rng(0))
    with pytest.raises(ValueError):
        src.prompts("chat", 3, np.random.default_rng(0), variant=np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError):
        src.prompts("chat", 3, np.random.default_rng(0), lang_mix=1.5)
    with pytest.raises(ValueError):
        src.responses("chat", 3, np.random.default_rng(0), visible_reasoning=np.zeros(2, dtype=bool))


# --- template identity ----------------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k in PROMPT_KINDS if k not in HUMAN])
def test_frames_are_recoverable_from_text(src: TextSource, kind: str) -> None:
    """Every literal part of a row's frame appears in its text, in order (machine traffic is unperturbed)."""
    templates = _templates(src)
    b = _batch(src, kind, n=400, lang_mix=0.3)
    for text, fid in zip(b.text.to_pylist(), b.frame.tolist(), strict=True):
        assert fid >= 0
        pos = 0
        for part in parse_template(templates[fid])[0]:
            found = text.find(part, pos)
            assert found >= 0, (kind, fid, part, text[:200])
            pos = found + len(part)


@pytest.mark.parametrize("kind", ["saas_input", "benchmark_math", "synthetic_data"])
def test_fixed_template_kinds_repeat_one_template_per_variant(src: TextSource, kind: str) -> None:
    frames = [
        set(src.prompts(kind, 200, np.random.default_rng(v), variant=np.full(200, v)).frame) for v in range(6)
    ]
    assert all(len(f) == 1 for f in frames)
    assert len(set().union(*frames)) == 6


@pytest.mark.parametrize("kind", ATTACK)
def test_attack_variants_use_a_small_template_set(src: TextSource, kind: str) -> None:
    rng = np.random.default_rng(2)
    one = src.prompts(kind, 1000, rng, variant=np.full(1000, 3))
    everything = src.prompts(kind, 1000, rng)
    assert len(set(one.frame)) <= 12
    assert len(set(one.frame)) < len(set(everything.frame))


def test_class_assignment_students_paraphrase_one_assignment(src: TextSource) -> None:
    b = src.prompts("class_assignment", 300, np.random.default_rng(0), variant=np.full(300, 2))
    table = src.frame_table().to_pydict()
    labels = {
        lab
        for f, lab, k in zip(table["frame"], table["label"], table["kind"], strict=True)
        if f in set(b.frame.tolist()) and k == "class_assignment"
    }
    assert labels == {"asg_2"}
    assert len(set(b.text.to_pylist())) > 20  # many students, many wordings


def test_legit_human_prompts_are_diverse(src: TextSource) -> None:
    b = src.prompts("chat", 3000, np.random.default_rng(0))
    texts = b.text.to_pylist()
    assert len(set(texts)) > 0.6 * len(texts)
    assert len(set(b.frame.tolist())) > 60
    lengths = np.array([len(t) for t in texts])
    assert lengths.min() < 40 and np.percentile(lengths, 95) > 200
    assert sum(t == t.lower() and any(c.isalpha() for c in t) for t in texts) > 100  # casing variation


def test_reseller_mix_is_other_customers_traffic(src: TextSource) -> None:
    table = src.frame_table().to_pydict()
    by_kind: dict[int, set[str]] = {}
    for f, k in zip(table["frame"], table["kind"], strict=True):
        by_kind.setdefault(f, set()).add(k)
    b = src.prompts("reseller_mix", 1000, np.random.default_rng(0))
    kinds = set().union(*(by_kind[f] for f in b.frame.tolist() if f >= 0))
    assert {"chat", "coding_question", "chat_followup"} <= kinds
    assert len(set(b.capability)) >= 4


# --- ground truth: cot_elicit, capability ---------------------------------------------


def test_cot_elicitation_ground_truth(src: TextSource) -> None:
    for kind in COT_KINDS:
        assert _batch(src, kind).cot_elicit.all(), kind
    chat = src.prompts("chat", 3000, np.random.default_rng(0))
    assert chat.cot_elicit.mean() < 0.05
    assert not src.prompts("safe_rewrite", 300, np.random.default_rng(0)).cot_elicit.any()
    templates = _templates(src)
    bench = src.prompts("benchmark_math", 50, np.random.default_rng(0), variant=np.full(50, 0))
    assert bench.cot_elicit.all() and "Let's think step by step" in templates[int(bench.frame[0])]
    direct = src.prompts("benchmark_math", 50, np.random.default_rng(0), variant=np.full(50, 5))
    assert not direct.cot_elicit.any() and templates[int(direct.frame[0])] == "Q: {problem}\nA:"


def test_capabilities_match_what_campaigns_target(src: TextSource) -> None:
    expect = {
        "safe_rewrite": {"rewrite"},
        "rubric_grading": {"grading"},
        "tool_use": {"tool_use"},
        "vision": {"vision"},
        "synthetic_data": {"data_generation"},
        "agent_step": {"agentic"},
    }
    for kind, caps in expect.items():
        assert set(_batch(src, kind).capability) <= caps, kind
    sweep = src.prompts("capability_sweep", 2000, np.random.default_rng(0))
    assert {"math", "coding", "knowledge", "reasoning"} <= set(sweep.capability)
    assert len(set(sweep.text.to_pylist())) > 0.75 * 2000  # broad curriculum, few repeats


# --- realism: overlap where real traffic overlaps, difference where it differs -------


def test_benchmark_and_cot_harvest_share_wording(src: TextSource) -> None:
    t = src.frame_table().to_pydict()
    bench = {f for f, k in zip(t["frame"], t["kind"], strict=True) if k == "benchmark_math"}
    harvest = {f for f, k in zip(t["frame"], t["kind"], strict=True) if k == "cot_harvest"}
    assert bench & harvest  # the same template text is sent by researchers and harvesters
    phrase = "think step by step"
    b = src.prompts("benchmark_math", 500, np.random.default_rng(0), variant=np.arange(500) % 9)
    h = src.prompts("cot_harvest", 500, np.random.default_rng(0), variant=np.arange(500) % 64)
    assert any(phrase in x.lower() for x in b.text.to_pylist())
    assert any(phrase in x.lower() for x in h.text.to_pylist())


def test_agent_vendor_and_harness_overlap_but_differ(src: TextSource) -> None:
    vendor = _templates(src)
    t = src.frame_table().to_pydict()
    agent = {f for f, k in zip(t["frame"], t["kind"], strict=True) if k == "agent_step"}
    harness = {f for f, k in zip(t["frame"], t["kind"], strict=True) if k == "agentic_coding"}
    assert agent & harness and harness - agent
    assert any(vendor[f] == "continue" for f in agent & harness)
    assert src.tool_names("agent_step", 0) != src.tool_names("agentic_coding", 0)
    assert len(src.system_prompt("agent_step", 1) or "") > 1000
    assert src.system_prompt("agentic_coding", 1) != src.system_prompt("agent_step", 1)


def test_answer_rationalization_states_the_answer(src: TextSource) -> None:
    t = src.frame_table().to_pydict()
    for tpl, k in zip(t["template"], t["kind"], strict=True):
        if k == "answer_rationalization":
            assert "{answer}" in tpl and "{problem}" in tpl
    # Built-in linear equations: the stated answer is the true solution.
    b = src.prompts("answer_rationalization", 3000, np.random.default_rng(0))
    checked = 0
    for x in b.text.to_pylist():
        m = re.search(r"Solve for x: (\d+)x \+ (\d+) = (-?\d+)", x)
        if m:
            a, c0, c = map(int, m.groups())
            assert re.search(rf"(?<![\d-]){(c - c0) // a}(?!\d)", x.replace(m.group(0), ""))
            checked += 1
    assert checked > 3
    assert not any(
        "{answer}" in tpl for tpl, k in zip(t["template"], t["kind"], strict=True) if k == "cot_harvest"
    )


def test_math_generator_answers_are_correct(src: TextSource) -> None:
    bank: ProblemBank = src._bank
    p = bank.sample((("math", 1.0),), 2000, np.random.default_rng(0), np.zeros(2000, dtype=np.int64))
    for text, ans, sol in zip(p.text.to_pylist(), p.answer.to_pylist(), p.solution.to_pylist(), strict=True):
        assert "{" not in text and "{" not in sol
        assert ans in sol.splitlines()[-1], (text, sol, ans)
        assert int(ans) >= 0 or "Solve for x" in text


def test_languages_follow_lang_mix(src: TextSource) -> None:
    for kind in ("chat", "cot_harvest", "reasoning_trace", "safe_rewrite", "chat_followup"):
        none = src.prompts(kind, 1000, np.random.default_rng(0), lang_mix=0.0)
        assert not any(NON_LATIN.search(x) for x in none.text.to_pylist()), kind
        some = src.prompts(kind, 1000, np.random.default_rng(0), lang_mix=0.6)
        share = np.mean([bool(NON_LATIN.search(x)) for x in some.text.to_pylist()])
        assert share > 0.2, (kind, share)
    trace = src.prompts("reasoning_trace", 2000, np.random.default_rng(1), lang_mix=0.8).text.to_pylist()
    scripts = {
        "zh": r"[\u4e00-\u9fff]",
        "ru": r"[\u0400-\u04ff]",
        "ko": r"[\uac00-\ud7af]",
        "ja": r"[\u3040-\u30ff]",
        "es": r"\b(razonamiento|palabra)\b",
        "de": r"\bDenkprozess\b",
        "fr": r"\braisonnement\b",
    }
    for lang, pattern in scripts.items():
        assert any(re.search(pattern, x) for x in trace), lang
    assert set(LANGS) >= {"en", "zh", "ru", "ko", "es"}


# --- responses and tokens -------------------------------------------------------------


def test_estimate_tokens_rule() -> None:
    arr = pa.array(["abcd" * 10, "", None, "你好世界", "hello 世界", "привет", "a"])
    assert estimate_tokens(arr).tolist() == [10, 1, 1, 4, 4, 3, 1]
    assert estimate_tokens(arr).dtype == np.int32
    chunked = pa.chunked_array([arr.slice(0, 3), arr.slice(3)])
    assert estimate_tokens(chunked).tolist() == [10, 1, 1, 4, 4, 3, 1]
    assert estimate_tokens(arr.slice(3, 2)).tolist() == [4, 4]
    assert estimate_tokens(arr.cast(pa.large_string())).tolist() == [10, 1, 1, 4, 4, 3, 1]
    assert estimate_tokens(pa.array(["🙂🙂"])).tolist() == [2]
    big = pa.array(["x" * 4000] * 5000)  # crosses the scan window
    assert (estimate_tokens(big) == 1000).all()


@pytest.mark.parametrize("kind", RESPONSE_KINDS)
def test_responses(src: TextSource, kind: str) -> None:
    vr = np.random.default_rng(0).random(600) < 0.5
    a = src.responses(kind, 600, np.random.default_rng(1), visible_reasoning=vr)
    b = src.responses(kind, 600, np.random.default_rng(1), visible_reasoning=vr)
    assert a.text.equals(b.text) and np.array_equal(a.output_tokens, b.output_tokens)
    assert a.output_tokens.dtype == np.int32
    assert np.array_equal(a.output_tokens, estimate_tokens(a.text))
    lengths = np.array([len(x) for x in a.text.to_pylist()])
    assert lengths.max() <= 6000 and lengths.min() > 0
    assert lengths[vr].mean() > lengths[~vr].mean()
    assert len(set(a.text.to_pylist())) > 200


def test_response_lengths_are_heavy_tailed(src: TextSource) -> None:
    for kind in ("chat", "cot", "code"):
        r = src.responses(kind, 5000, np.random.default_rng(0), visible_reasoning=np.ones(5000, dtype=bool))
        lengths = np.array([len(x) for x in r.text.to_pylist()])
        assert np.percentile(lengths, 99) > 1.6 * np.median(lengths), kind
    cot = src.responses("cot", 2000, np.random.default_rng(0), visible_reasoning=np.ones(2000, dtype=bool))
    assert np.median([len(x) for x in cot.text.to_pylist()]) > 1500


def test_system_prompts_and_tools(src: TextSource) -> None:
    assert src.system_prompt("chat", 0) is None
    saas = [src.system_prompt("saas_input", v) for v in range(12)]
    assert all(s for s in saas) and len(set(saas)) == 12
    assert src.system_prompt("saas_input", 3) == src.system_prompt("saas_input", 3)
    assert src.tool_names("chat", 0) == []
    assert {"read_file", "run_terminal_cmd"} <= set(src.tool_names("agent_step", 0))
    # A tool-use campaign's prompts match the tools it offers.
    for v in range(5):
        tools = set(src.tool_names("tool_use", v))
        b = src.prompts("tool_use", 300, np.random.default_rng(v), variant=np.full(300, v))
        for x in b.text.to_pylist():
            named = set(re.findall(r"^- (\w+)\(", x, flags=re.MULTILINE))
            assert named <= tools
    with pytest.raises(KeyError):
        src.system_prompt("nope", 0)


# --- corpus mode ----------------------------------------------------------------------


def test_empty_or_missing_corpus_dir_is_builtin(tmp_path: Path) -> None:
    a = TextSource(seed=2, corpus=tmp_path)
    b = TextSource(seed=2)
    for kind in ("chat", "cot_harvest", "saas_input"):
        x = a.prompts(kind, 100, np.random.default_rng(0), variant=np.arange(100))
        y = b.prompts(kind, 100, np.random.default_rng(0), variant=np.arange(100))
        assert x.text.equals(y.text)


def test_malformed_corpus_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "capability").mkdir()
    (tmp_path / "capability" / "gsm8k_test.jsonl").write_text(
        '{"question": "q", "answer": "#### 1"}\nnot json\n'
    )
    with pytest.raises(CorpusError, match=r"gsm8k_test\.jsonl:2"):
        TextSource(seed=0, corpus=tmp_path)


def test_small_synthetic_corpus_is_used(tmp_path: Path) -> None:
    (tmp_path / "capability").mkdir()
    (tmp_path / "legit").mkdir()
    (tmp_path / "templates").mkdir()
    q = "Zorblax has 7 quiblets and buys 5 more. How many quiblets does Zorblax have?"
    (tmp_path / "capability" / "gsm8k_test.jsonl").write_text(
        json.dumps({"question": q, "answer": "7+5=12\n#### 12"})
    )
    with gzip.open(tmp_path / "legit" / "hh_rlhf_helpful_base_test.jsonl.gz", "wt") as fh:
        fh.write(
            json.dumps({"chosen": "\n\nHuman: What is a wombat?\n\nAssistant: A marsupial.\n\nHuman: Where?"})
        )
    (tmp_path / "templates" / "toy_label.jsonl").write_text(
        json.dumps({"prompt": "Toy input\n", "completion": "x"})
    )
    src = TextSource(seed=0, corpus=tmp_path)
    bench = src.prompts("benchmark_math", 20, np.random.default_rng(0), variant=np.zeros(20, dtype=np.int64))
    assert all(q in x for x in bench.text.to_pylist())
    rat = src.prompts("answer_rationalization", 400, np.random.default_rng(0))
    assert any(q in x and "12" in x.replace(q, "") for x in rat.text.to_pylist())
    chat = src.prompts("chat", 2000, np.random.default_rng(0))
    assert "What is a wombat?" in chat.text.to_pylist()
    assert (chat.frame == -1).any()


@needs_corpus
@pytest.mark.corpus
def test_corpus_mode_uses_real_prompts() -> None:
    src = TextSource(seed=5, corpus=CORPUS)
    hh = [
        json.loads(line)["chosen"] for line in _lines(CORPUS / "legit" / "hh_rlhf_helpful_base_test.jsonl.gz")
    ]
    arena = [json.loads(line)["prompt"] for line in _lines(CORPUS / "legit" / "arena_hard_v0.1.jsonl")]
    firsts = {c.split("\n\nHuman: ")[1].split("\n\nAssistant:")[0].strip() for c in hh} | {
        a.strip() for a in arena
    }
    chat = src.prompts("chat", 3000, np.random.default_rng(0))
    free = [x for x, f in zip(chat.text.to_pylist(), chat.frame.tolist(), strict=True) if f == -1]
    assert len(free) > 0.4 * 3000
    assert np.mean([x in firsts for x in free]) > 0.6  # the rest are lightly perturbed copies
    gsm = [json.loads(line) for line in _lines(CORPUS / "capability" / "gsm8k_test.jsonl")]
    answers = {g["question"].strip(): g["answer"].rsplit("####", 1)[1].strip() for g in gsm}
    bench = src.prompts(
        "benchmark_math", 300, np.random.default_rng(0), variant=np.zeros(300, dtype=np.int64)
    )
    assert sum(any(q in x for q in answers) for x in bench.text.to_pylist()[:50]) == 50
    rat = src.prompts("answer_rationalization", 600, np.random.default_rng(0), variant=np.arange(600) % 64)
    hits = 0
    for x in rat.text.to_pylist():
        for q, a in answers.items():
            if q in x:
                assert a in x.replace(q, ""), (q, a)
                hits += 1
                break
    assert hits > 100
    # Templates become SaaS products with a frame per template label; judges become rubric frames.
    t = src.frame_table().to_pydict()
    labels = {lab for lab, k in zip(t["label"], t["kind"], strict=True) if k == "saas_input"}
    assert "samsum_Sum_up_the_following_dialogue" in labels
    judges = {lab for lab, k in zip(t["label"], t["kind"], strict=True) if k == "rubric_grading"}
    assert {"pair-v2", "single-v1"} <= judges
    saas = src.prompts("saas_input", 200, np.random.default_rng(0), variant=np.full(200, 20))
    assert len(set(saas.frame)) == 1 and len(set(saas.text.to_pylist())) > 100
    # Built-in frame ids are stable whether or not a corpus is loaded.
    plain = TextSource(seed=5).frame_table().to_pydict()
    ids_plain = dict(zip(plain["template"], plain["frame"], strict=True))
    ids_corpus = dict(zip(t["template"], t["frame"], strict=True))
    assert all(ids_corpus[tpl] == fid for tpl, fid in ids_plain.items())
