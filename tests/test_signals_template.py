"""Template fingerprint (signals/template.py) and template families (signals/lsh.py).

Hand-built cases pin the behaviour a detector relies on (slots masked, instructions kept,
ids stable); property checks compare MinHash with exact Jaccard and SQL connected components
with networkx; the corpus tests measure quality on real prompts with floors set below the
figures in docs/signals-template.md (skipped when ../shared/data is absent).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.backends import DuckDBBackend, get_backend
from distillshield.signals.lsh import (
    DISTINCT_TEMPLATES_SCHEMA,
    band_keys,
    connected_components,
    distinct_templates,
    family_of,
    template_families,
)
from distillshield.signals.template import (
    MASK,
    PARALLEL_MIN_ROWS,
    minhash,
    signatures,
    skeleton,
    template_ids,
)


def ids(*texts: str | None) -> list[str | None]:
    out: list[str | None] = template_ids(pa.array(list(texts), pa.string())).to_pylist()
    return out


def same(*texts: str) -> bool:
    return len(set(ids(*texts))) == 1


# --------------------------------------------------------------------------- skeleton / ids


def test_id_is_16_hex_and_null_for_null_or_empty() -> None:
    out = ids("Write a haiku about the sea.", None, "")
    assert re.fullmatch(r"[0-9a-f]{16}", out[0] or "")
    assert out[1:] == [None, None]
    assert skeleton(pa.array([None, ""], pa.string())).to_pylist() == [None, ""]


def test_numbers_money_and_percentages_are_slots() -> None:
    assert same(
        "A shirt costs $20 and is 15% off. What is the price after 3 days?",
        "A shirt costs $1,299.50 and is 7.5% off. What is the price after 12 days?",
    )


def test_names_in_a_long_wrapper_are_slots() -> None:
    wrapper = "Write a short, friendly birthday message for my colleague {}. We work together in {} sales."
    assert same(wrapper.format("Maria", "Berlin"), wrapper.format("John Smith", "New York"))


def test_short_requests_keep_their_entity() -> None:
    # "What is X?" is phrasing, not a wrapper: different entities are different requests
    assert not same("What is Oracle?", "What is Black Friday?")


def test_quoted_spans_code_urls_and_emails_are_slots() -> None:
    assert same('Translate "good morning" into French.', 'Translate "where is the station?" into French.')
    assert same("Fix `foo(x)` please", "Fix `bar.baz()` please")
    assert same("Summarise https://example.com/a?b=1 for me", "Summarise http://news.org/x for me")
    assert same("Reply to alice@example.com politely", "Reply to bob.smith@corp.co.uk politely")
    code_a = "Why does this fail?\n```python\nimport os\nprint(os.getcwd())\n```\nThanks"
    code_b = "Why does this fail?\n```js\nconst x = 1;\nconsole.log(y)\nlet z;\n```\nThanks"
    assert same(code_a, code_b)


def test_labelled_slots_and_lead_ins_are_masked() -> None:
    assert same(
        "Question: What is the capital of France?\nAnswer:", "Question: Why is the sky blue?\nAnswer:"
    )
    assert same(
        "Classify the sentiment of the review below:\nI loved it!",
        "Classify the sentiment of the review below:\nTerrible, would not buy again. Broke in a week.",
    )
    assert same(
        "Sum up the dialogue:\nAmanda: hi\nJerry: hello\nAmanda: bye",
        "Sum up the dialogue:\nTom: are you coming?\nKim: no\nTom: ok\nKim: see you",
    )


def test_problem_in_its_own_paragraph_is_a_slot() -> None:
    long_a = (
        "Janet's ducks lay sixteen eggs per day. She eats three for breakfast every morning and bakes "
        "muffins for her friends every day with four. How much does she make every day at the market?"
    )
    long_b = (
        "A robe takes two bolts of blue fiber and half that much white fiber. How many bolts in total "
        "does it take to make one robe for a customer who ordered it last week in the shop?"
    )
    assert same(f"{long_a}\nLet's think step by step.", f"{long_b}\nLet's think step by step.")
    assert same(
        f"Solve the problem and explain each step.\n\nProblem:\n{long_a}",
        f"Solve the problem and explain each step.\n\nProblem:\n{long_b}",
    )


def test_different_instructions_differ() -> None:
    problem = "Problem: A train leaves at noon and travels for two hours at a steady speed of sixty km/h."
    wrappers = [
        f"Solve the following problem step by step.\n{problem}",
        f"Write out your full chain of thought before answering.\n{problem}",
        f"Grade the following answer on a scale of one to ten.\n{problem}",
        f"Translate the following into German.\n{problem}",
    ]
    assert len(set(ids(*wrappers))) == len(wrappers)
    assert not same("Question: x?\nAnswer:", "Q: x?\nA:")


def test_mostly_slot_prompts_fall_back_to_their_own_text() -> None:
    # without the fallback both would be a bare MASK and share an id
    a = "I " + "really enjoyed the trip to the mountains and the food was excellent " * 5
    b = "We " + "found the hotel noisy and the staff rude, but the view made up for it " * 5
    sa, sb = skeleton(pa.array([a, b])).to_pylist()
    assert sa != sb and sa != MASK and sb != MASK


def test_cjk_wrappers() -> None:
    wrap = "请一步一步地解答下面的数学题，并在最后给出答案。\n\n题目：{}"
    q1 = "小明有五个苹果，他给了小红两个，又买了三个。请问小明现在有几个苹果？"
    q2 = "一辆汽车每小时行驶六十公里，行驶了三个小时以后又行驶了四十公里，一共行驶了多少公里？"
    assert same(wrap.format(q1), wrap.format(q2))
    assert not same(wrap.format(q1), "请把下面的句子翻译成英文。\n\n题目：" + q1)
    # a long CJK problem in its own paragraph is content (lengths count UTF-8 bytes)
    assert same(f"{q1}\n让我们一步一步地思考。", f"{q2}\n让我们一步一步地思考。")


def test_whitespace_and_case_do_not_matter() -> None:
    assert same("Summarize the text below.\nText: abc", "  SUMMARIZE   the text below.\r\n\nText:   xyz  ")


def test_deterministic_and_independent_of_batch() -> None:
    texts = [f"Rate this answer from 1 to {i}: {'good ' * (i % 7)}" for i in range(PARALLEL_MIN_ROWS + 100)]
    texts[5] = None  # type: ignore[call-overload]
    big = template_ids(pa.array(texts, pa.string())).to_pylist()
    assert big == template_ids(pa.array(texts, pa.string())).to_pylist()
    alone = [ids(t)[0] for t in texts[:10]]
    assert big[:10] == alone
    chunked = pa.chunked_array([pa.array(texts[:7], pa.string()), pa.array(texts[7:20], pa.string())])
    assert template_ids(chunked).to_pylist() == big[:20]
    assert template_ids(pa.array(texts[:20], pa.large_string())).to_pylist() == big[:20]
    assert big[5] is None


def test_known_ids_are_stable() -> None:
    """Ids are stored fingerprints: a silent change of skeleton or hash would orphan history."""
    texts = pa.array(["Question: What is 2+2?\nAnswer:", 'Translate "hello" into French, please.'])
    assert skeleton(texts).to_pylist() == [
        f"question: {MASK} answer:",
        f"translate {MASK} into french, please.",
    ]
    assert template_ids(texts).to_pylist() == ["3f1530d48e997326", "2fcb2c08957cbf93"]


_PIECES = st.sampled_from(
    [
        "Question:",
        "Answer:",
        "\n",
        "\n\n",
        " ",
        "- ",
        "1. ",
        '"',
        "'",
        "```",
        "§",
        ":",
        "?",
        ". ",
        "Bob",
        "42",
        "https://x.io/a",
        "a@b.co",
        "请回答：",
        "问题",
        "long " * 30,
        "\t",
        "Amanda: hi\n",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.lists(_PIECES, max_size=12).map("".join)), max_size=12))
def test_any_text_gets_a_well_formed_id_independent_of_its_batch(texts: list[str]) -> None:
    batch = template_ids(pa.array(texts, pa.string())).to_pylist()
    assert len(batch) == len(texts)
    for text, tid in zip(texts, batch, strict=True):
        assert tid is None or re.fullmatch(r"[0-9a-f]{16}", tid)
        if re.fullmatch(r"[ \t\n\r\f\v]*", text):
            assert tid is None
        if re.search(r"\w", text):
            assert tid is not None
        assert ids(text) == [tid]


def test_string_hash_ignores_buffer_position_and_separates_strings() -> None:
    """Strings are hashed 8 bytes at a time from shifted aligned words: check every alignment."""
    from distillshield.signals._text import hash_strings

    rng = random.Random(1)
    strings = ["".join(rng.choice("ab§é \n") for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    base = hash_strings(pa.array(strings))
    for k in range(1, 9):
        shifted = hash_strings(pa.array(["x" * k, *strings]))[1:]
        assert (shifted == base).all()
        assert (hash_strings(pa.array(strings).slice(k)) == base[k:]).all()
    assert len(set(base.tolist())) == len(set(strings))
    assert len({int(v) for v in hash_strings(pa.array(["", "\x00", "\x00\x00", "a", "a\x00"]))}) == 5


# --------------------------------------------------------------------------- minhash


def _shingles(skel: str, k: int) -> set[tuple[str, ...]]:
    words = re.sub(r"([\u4e00-\u9fff\u3040-\u30ff])", r" \1 ", skel).split()
    if not words:
        return set()
    if len(words) < k:
        return {tuple(words)}
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def test_minhash_estimates_jaccard() -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(400)]
    texts = []
    for _ in range(60):  # pairs with overlap from none to total
        base = rng.choices(vocab, k=40)
        other = list(base)
        for j in rng.sample(range(40), rng.randint(0, 40)):
            other[j] = rng.choice(vocab)
        texts += [" ".join(base), " ".join(other)]
    skel = skeleton(pa.array(texts)).to_pylist()
    sig = minhash(pa.array(texts), num_perm=256)
    errors = []
    for i in range(0, len(texts), 2):
        a, b = _shingles(skel[i], 3), _shingles(skel[i + 1], 3)
        exact = len(a & b) / len(a | b)
        estimate = float(np.mean(sig[i] == sig[i + 1]))
        errors.append(abs(exact - estimate))
    assert np.mean(errors) < 0.03
    assert max(errors) < 0.12  # ~4 standard deviations at 256 permutations


def test_minhash_shape_empty_rows_and_seed() -> None:
    texts = pa.array(["one two three four", None, "", "one two three four", "一二三四五"], pa.string())
    sig = minhash(texts, num_perm=32, ngram=2)
    assert sig.shape == (5, 32) and sig.dtype == np.uint32
    assert (sig[1] == np.iinfo(np.uint32).max).all() and (sig[2] == np.iinfo(np.uint32).max).all()
    assert (sig[0] == sig[3]).all()
    assert not (sig[4] == np.iinfo(np.uint32).max).all()  # CJK: character shingles
    assert (minhash(texts, num_perm=32, ngram=2) == sig).all()
    assert not (minhash(texts, num_perm=32, ngram=2, seed=1)[0] == sig[0]).all()
    _, n_sh = signatures(pa.array(["a b c d", "a", ""]), ngram=3)
    assert n_sh.tolist() == [2, 1, 0]


# --------------------------------------------------------------------------- LSH and families


def test_band_keys() -> None:
    sig = np.array(
        [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 9, 9], [7, 7, 7, 7, 7, 7], [np.iinfo(np.uint32).max] * 6],
        dtype=np.uint32,
    )
    t = band_keys(sig, bands=3, rows=2)
    assert t.column_names == ["item", "band", "key"] and t.num_rows == 9  # empty row 3 skipped
    key = {(r["item"], r["band"]): r["key"] for r in t.to_pylist()}
    assert key[(0, 0)] == key[(1, 0)] and key[(0, 1)] == key[(1, 1)] and key[(0, 2)] != key[(1, 2)]
    assert key[(2, 0)] != key[(2, 1)]  # the band number is part of the key
    named = band_keys(sig, 3, 2, items=pa.array(["a", "b", "c", "d"]))
    assert set(named.column("item").to_pylist()) == {"a", "b", "c"}
    with pytest.raises(ValueError):
        band_keys(sig, bands=4, rows=2)


def _union_find(nodes: list[int], edges: list[tuple[int, int]]) -> dict[int, int]:
    parent = {n: n for n in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in nodes}


@pytest.mark.parametrize("seed", range(6))
def test_connected_components_match_networkx(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([5, 40, 300])
    m = rng.randint(1, 2 * n)
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(m)]
    if seed == 0:  # a long path: the worst case for plain label propagation
        edges = [(i, i + 1) for i in range(0, n - 1)]
    backend = DuckDBBackend()
    backend.register("e", pa.table({"src": [a for a, _ in edges], "dst": [b for _, b in edges]}))
    labels_table = connected_components(backend, "e")
    got = {
        r["node"]: r["label"] for r in backend.query(f"SELECT node, label FROM {labels_table}").to_pylist()
    }
    nodes = sorted({a for e in edges for a in e if e[0] != e[1]})
    expected = _union_find(nodes, [e for e in edges if e[0] != e[1]])
    assert got == expected  # label = smallest node of the component
    nx = pytest.importorskip("networkx")
    g = nx.Graph()
    g.add_edges_from(e for e in edges if e[0] != e[1])
    assert sorted(sorted(c) for c in nx.connected_components(g)) == sorted(
        sorted(k for k, v in got.items() if v == label) for label in set(got.values())
    )


class _Recording(DuckDBBackend):
    """DuckDB backend that keeps every reference-dialect statement it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[str] = []

    def query(self, sql: str) -> pa.Table:
        self.statements.append(sql)
        return super().query(sql)


def _wrapper_family_corpus() -> tuple[list[str], list[str]]:
    """Two wrappers whose slot sometimes leaves a short residue line, and unrelated prompts."""
    rng = random.Random(0)
    grade = (
        "You are grading an answer written by a student for a university course in statistics.\n"
        "Read the question and the answer, then give a score from one to ten and explain the score "
        "in two sentences, mentioning any mistake the student made.\n\nQuestion: {q}\nAnswer: {a}\n{extra}"
    )
    tutor = (
        "Act as a patient tutor for a high school student preparing for a final exam in chemistry.\n"
        "Explain the concept below in simple words, give one everyday example and finish with a "
        "question that checks understanding.\n\nConcept: {q}\n{extra}"
    )
    extras = ["", "Be strict.", "Be kind.", "Keep it short.", "No jargon please."]
    texts, labels = [], []
    for i in range(60):
        texts.append(grade.format(q=f"question {i}?", a=f"answer {i}", extra=rng.choice(extras)))
        labels.append("grade")
        texts.append(tutor.format(q=f"concept {i}", extra=rng.choice(extras)))
        labels.append("tutor")
    for i, t in enumerate(["How do I bake bread?", "Tell me a joke about cats.", "What is Oracle?"]):
        texts.append(t)
        labels.append(f"free{i}")
    return texts, labels


def test_template_families_merge_near_duplicates_only() -> None:
    texts, labels = _wrapper_family_corpus()
    arr = pa.array(texts)
    table = distinct_templates([arr.slice(0, 50), arr.slice(50)])
    assert table.schema == DISTINCT_TEMPLATES_SCHEMA
    assert sum(table.column("count").to_pylist()) == len(texts)
    backend = _Recording()
    backend.register("templates", table)
    fams = template_families(backend, "templates")
    assert fams.column_names == ["template_id", "template_family"]
    assert fams.num_rows == table.num_rows
    fam = family_of(template_ids(arr), fams).to_pylist()
    tid = template_ids(arr).to_pylist()
    by_label: dict[str, set[str | None]] = defaultdict(set)
    for lab, f in zip(labels, fam, strict=True):
        by_label[lab].add(f)
    assert len({i for i, lab in zip(tid, labels, strict=True) if lab == "grade"}) > 1  # ids split...
    assert len(by_label["grade"]) == 1 and len(by_label["tutor"]) == 1  # ...families do not
    assert by_label["grade"] != by_label["tutor"]
    for i in range(3):  # short free text: its own family
        (f,) = by_label[f"free{i}"]
        assert f == tid[labels.index(f"free{i}")]
    # the family id is the smallest template id of the family
    for lab in ("grade", "tutor"):
        (f,) = by_label[lab]
        assert f == min(i for i, la in zip(tid, labels, strict=True) if la == lab)
    # every statement is reference-dialect SQL that sqlglot can write for Spark
    for sql in backend.statements:
        assert sqlglot.transpile(sql, read="duckdb", write="spark")
    # deterministic, and no intermediate tables left behind
    again = template_families(backend, "templates")
    assert again.equals(fams)
    left = backend.query("SELECT table_name FROM information_schema.tables").column(0).to_pylist()
    assert not [t for t in left if t.startswith("_ds_") and "lsh" not in t]


def test_template_families_without_threshold_or_shingles_column() -> None:
    texts, labels = _wrapper_family_corpus()
    table = distinct_templates([pa.array(texts)]).drop_columns(["shingles", "count"])
    backend = get_backend("duckdb")
    backend.register("t", table)
    fams = template_families(backend, "t", threshold=None, min_shingles=0)
    fam = family_of(template_ids(pa.array(texts)), fams).to_pylist()
    assert len({f for f, lab in zip(fam, labels, strict=True) if lab == "grade"}) == 1
    backend.register("twice", pa.concat_tables([table, table]))  # duplicate rows are tolerated
    assert template_families(backend, "twice", threshold=None, min_shingles=0).equals(fams)


def test_distinct_templates_stream_equals_one_batch() -> None:
    texts, _ = _wrapper_family_corpus()
    arr = pa.array([*texts, None, ""], pa.string())
    one = distinct_templates([arr])
    many = distinct_templates([arr.slice(i, 17) for i in range(0, len(arr), 17)])
    assert one.equals(many)
    assert distinct_templates([]).num_rows == 0


# --------------------------------------------------------------------------- real prompts


def _jsonl(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _families(texts: list[str]) -> list[str | None]:
    arr = pa.array(texts)
    backend = get_backend("duckdb")
    backend.register("templates", distinct_templates([arr]))
    out: list[str | None] = family_of(template_ids(arr), template_families(backend, "templates")).to_pylist()
    return out


def _shared_share(texts: list[str], keys: list[str | None]) -> float:
    by_key: dict[str | None, set[str]] = defaultdict(set)
    for t, k in zip(texts, keys, strict=True):
        by_key[k].add(t)
    return float(np.mean([len(by_key[k]) > 1 for k in keys]))


@pytest.mark.corpus
def test_recovers_real_templates(prompts_corpus: Path) -> None:
    """T0 prompts with known template (figures in docs/signals-template.md: ARI 0.76 / 0.78)."""
    from sklearn.metrics import adjusted_rand_score

    texts, labels = [], []
    for f in sorted((prompts_corpus / "templates").glob("*.jsonl")):
        for row in _jsonl(f):
            texts.append(str(row["prompt"]))
            labels.append(f.stem)
    tid = template_ids(pa.array(texts)).to_pylist()
    fam = _families(texts)
    ari_id = adjusted_rand_score(labels, tid)
    ari_fam = adjusted_rand_score(labels, fam)
    assert ari_id > 0.65
    assert ari_fam > 0.65 and ari_fam > ari_id - 0.03
    per: dict[str, Counter[str | None]] = defaultdict(Counter)
    for lab, i in zip(labels, tid, strict=True):
        per[lab][i] += 1
    top_share = [c.most_common(1)[0][1] / sum(c.values()) for c in per.values()]
    assert np.median([len(c) for c in per.values()]) <= 4
    assert np.median(top_share) > 0.8


@pytest.mark.corpus
def test_legitimate_prompts_rarely_share_an_id(prompts_corpus: Path) -> None:
    """Real user prompts: measured 1.8% (id) and 2.6% (family) share with a different prompt."""
    legit = prompts_corpus / "legit"
    texts = [
        str(r["chosen"]).split("Human:", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
        for r in _jsonl(legit / "hh_rlhf_helpful_base_test.jsonl.gz")
    ]
    texts += [str(r["prompt"]) for r in _jsonl(legit / "arena_hard_v0.1.jsonl")]
    texts += [str(r["turns"][0]) for r in _jsonl(legit / "mt_bench.jsonl")]  # type: ignore[index]
    assert _shared_share(texts, template_ids(pa.array(texts)).to_pylist()) < 0.04
    assert _shared_share(texts, _families(texts)) < 0.05


@pytest.mark.corpus
def test_benchmark_wrappers_mask_the_question(prompts_corpus: Path) -> None:
    """GSM8K questions in three wrappers: each wrapper is one id (or a few), never shared."""
    questions = [str(r["question"]) for r in _jsonl(prompts_corpus / "capability" / "gsm8k_test.jsonl")]
    wrappers = [
        "Solve the following math problem step by step. Show your reasoning, then give the final "
        'answer on its own line as "#### <number>".\n\nProblem: {q}',
        "{q}\nLet's think step by step.",
        "You are a meticulous math tutor. Read the question below carefully and explain every step "
        "of the solution before stating the final answer.\n\nQuestion:\n{q}\n\nAnswer:",
    ]
    seen: list[set[str | None]] = []
    for w in wrappers:
        got = Counter(template_ids(pa.array([w.replace("{q}", q) for q in questions])).to_pylist())
        assert got.most_common(1)[0][1] / len(questions) > 0.95
        assert len(got) <= 40
        seen.append(set(got))
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
