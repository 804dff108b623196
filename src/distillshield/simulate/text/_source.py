"""``TextSource``: the prompt and response text of every simulated exchange.

Construction does all the slow work once (vocabularies, frames, template sets, response
pools, corpus parsing); :meth:`TextSource.prompts` and :meth:`TextSource.responses` are
then vectorised over rows (see :mod:`._engine`). Everything is deterministic for the
constructor's ``seed`` and the generator passed to each call; nothing is module-level
mutable state.

Ground truth per prompt row: ``frame`` (template identity, shared across kinds when the
core template is the same text, e.g. "{problem}\\nLet's think step by step." in both a
benchmark run and a harvesting campaign; -1 for free text from the corpus),
``capability`` and ``cot_elicit``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.simulate.text import _attack as atk
from distillshield.simulate.text import _legit as lg
from distillshield.simulate.text import _vocab as vb
from distillshield.simulate.text._corpus import Corpus, asks_for_reasoning, load_corpus
from distillshield.simulate.text._engine import (
    NO_SEP,
    Frame,
    FrameChooser,
    FrameSet,
    VocabStore,
    empty_strings,
    replace_rows,
    stitch,
)
from distillshield.simulate.text._problems import CAP, CAPABILITIES, CODE_TASKS, ProblemBank, _Pool
from distillshield.simulate.text._responses import RESPONSE_KINDS, ResponsePool, build_pools
from distillshield.simulate.text._systems import (
    COMPUTER_TOOLS,
    HARNESS_TOOLS,
    VENDOR_TOOLS,
    _mix,
    harness_system_prompt,
    vendor_system_prompt,
)
from distillshield.simulate.text._tokens import tokens_from_counts

__all__ = ["PROMPT_KINDS", "PromptBatch", "ResponseBatch", "TextSource"]

LEGIT_KINDS: tuple[str, ...] = (
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
ATTACK_KINDS: tuple[str, ...] = (
    "cot_harvest",
    "answer_rationalization",
    "rubric_grading",
    "safe_rewrite",
    "agentic_coding",
    "tool_use",
    "computer_use",
    "vision",
    "reasoning_trace",
    "capability_sweep",
)
PROMPT_KINDS: tuple[str, ...] = LEGIT_KINDS + ATTACK_KINDS

_DYNAMIC = ("problem", "answer", "candidate", "candidate_b", "candidate2", "candidate_b2", "answer2")
_CAP_OBJ = np.array(CAPABILITIES, dtype=object)

#: Which problem sources each problem-wrapping kind draws from (corpus sources fall back
#: to built-in ones). Harvesting kinds weight what is most valuable for training:
#: math and code with verifiable answers first.
_PROBLEM_MIX: dict[str, tuple[tuple[str, float], ...]] = {
    "chat": (("gsm8k", 1.0), ("math", 1.0)),
    "benchmark_math": (("gsm8k", 1.0),),
    "cot_harvest": (
        ("gsm8k", 0.35),
        ("math", 0.15),
        ("logic", 0.12),
        ("seq", 0.08),
        ("humaneval", 0.12),
        ("code", 0.05),
        ("knowledge", 0.05),
        ("arena", 0.08),
    ),
    "answer_rationalization": (
        ("gsm8k", 0.45),
        ("math", 0.2),
        ("logic", 0.1),
        ("seq", 0.1),
        ("humaneval", 0.1),
        ("code", 0.05),
    ),
    "rubric_grading": (
        ("gsm8k", 0.3),
        ("math", 0.15),
        ("knowledge", 0.15),
        ("tqa", 0.15),
        ("code", 0.1),
        ("logic", 0.1),
        ("humaneval", 0.05),
    ),
    "reasoning_trace": (
        ("gsm8k", 0.3),
        ("math", 0.15),
        ("logic", 0.2),
        ("arena", 0.2),
        ("seq", 0.05),
        ("humaneval", 0.1),
    ),
    "capability_sweep": (
        ("gsm8k", 0.2),
        ("math", 0.15),
        ("seq", 0.07),
        ("logic", 0.05),
        ("knowledge", 0.05),
        ("concept", 0.18),
        ("tqa", 0.1),
        ("humaneval", 0.1),
        ("code", 0.1),
    ),
    "agentic_coding": (("humaneval", 0.6), ("code", 0.4)),
}

#: Share of English rows that come from the corpus's real prompts (frame -1) when a
#: corpus is loaded; the rest keeps built-in frames for breadth.
_CORPUS_SHARE = {"chat": 0.65, "chat_followup": 0.6, "coding_question": 0.5}

#: Template sets per attack kind: variant v uses set v % _N_SETS.
_N_SETS = 64

_HUMAN_PRE = (
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "hey ",
    "Hi, ",
    "hello! ",
    "quick question - ",
    "Question: ",
    "pls ",
    "Can you help? ",
    "ok so ",
    "I need help. ",
    "Hi there. ",
    "hey, ",
)
_HUMAN_POST = (
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    " thanks",
    " Thanks!",
    " thank you",
    " pls",
    " please",
    " :)",
    " ty",
    "\n\nThanks in advance.",
    " Thanks.",
    "??",
)
_HUMAN_CTX = (
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    " I'm a beginner.",
    " It's for work.",
    " Keep it short.",
    " My budget is limited.",
    " I need it by tomorrow.",
    " Be specific.",
    " I'm in the US.",
    " For a school project.",
    " No jargon please.",
    " Give examples.",
)
_HUMAN_PRE_FOREIGN = {
    "zh": ("", "", "", "你好，", "请问"),
    "ru": ("", "", "", "Привет! ", "Здравствуйте, "),
    "ko": ("", "", "", "안녕하세요. "),
    "es": ("", "", "", "Hola, ", "Oye, "),
    "ja": ("", "", "", "こんにちは。"),
    "de": ("", "", "", "Hallo, "),
    "fr": ("", "", "", "Bonjour, "),
    "pt": ("", "", "", "Olá, ", "Oi, "),
}
_HUMAN_POST_FOREIGN = {
    "zh": ("", "", "", "谢谢！", "谢谢"),
    "ru": ("", "", "", " Спасибо!"),
    "ko": ("", "", "", " 감사합니다."),
    "es": ("", "", "", " ¡Gracias!", " gracias"),
    "ja": ("", "", "", "よろしくお願いします。"),
    "de": ("", "", "", " Danke!"),
    "fr": ("", "", "", " Merci !"),
    "pt": ("", "", "", " Obrigado!", " valeu"),
}
_MACHINE_PRE = ("",) * 14 + ("\n", " ")
_MACHINE_POST = ("",) * 12 + ("\n", " ")
_ATK_AFFIX_FOREIGN = ("", "", "", "", "\n", " ")

#: Minor human typos: (pattern, replacement), applied once to a share of English rows.
_TYPOS = (
    (" the ", " teh "),
    ("you", "u"),
    ("please", "pls"),
    ("because", "bc"),
    ("definitely", "definately"),
    ("receive", "recieve"),
    ("don't", "dont"),
    ("I'm", "im"),
    ("'s ", "s "),
    (" a ", " a a "),
    ("ing ", "ign "),
    ("tion", "toin"),
    (", ", " ,"),
    (" ", "  "),
    ("e", ""),
    ("?", "??"),
)


@dataclass(frozen=True)
class PromptBatch:
    """n prompts (the latest user content) and their ground truth."""

    text: pa.StringArray
    frame: np.ndarray  # int32 template identity; -1 = free text (corpus)
    capability: np.ndarray  # object: one of CAPABILITIES
    cot_elicit: np.ndarray  # bool: explicitly asks for step-by-step / hidden reasoning


@dataclass(frozen=True)
class ResponseBatch:
    """n visible answers and their token estimate (reasoning tokens are the engine's)."""

    text: pa.StringArray
    output_tokens: np.ndarray  # int32, == estimate_tokens(text)


@dataclass
class _Def:
    """A frame before ids are assigned: ``core`` is the identity key (template without affixes)."""

    core: str
    template: str
    capability: str
    cot: bool
    lang: str
    label: str = ""
    corpus: bool = False
    free: bool = False
    sparse: bool = False  # a whole prompt drawn from a small fixed list (corpus template items)


@dataclass
class _Spec:
    """A prompt kind at construction: its frames and template groups."""

    name: str
    defs: list[_Def] = field(default_factory=list)
    groups: list[dict[str, list[tuple[int, float]]]] = field(default_factory=list)
    #: The group used when no variant is given: "every template of the kind". When it is
    #: appended after the variant groups, variants map onto groups[: all_group] only.
    all_group: int | None = None
    human: bool = False

    @property
    def n_variant(self) -> int:
        return len(self.groups) if self.all_group is None else self.all_group

    def add(self, d: _Def) -> int:
        self.defs.append(d)
        return len(self.defs) - 1


class _Kind:
    """A prompt kind ready to render."""

    def __init__(self, spec: _Spec, frames: list[Frame], store: VocabStore) -> None:
        self.name = spec.name
        self.human = spec.human
        self.fs = FrameSet(frames, store, vb.LANGS, _DYNAMIC)
        self.chooser = FrameChooser(spec.groups, vb.LANGS)
        self.all_group = 0 if spec.all_group is None else spec.all_group
        self.n_variant = spec.n_variant
        self.frame_ids = np.array([f.id for f in frames], dtype=np.int32)
        self.cot = np.array([f.cot_elicit for f in frames], dtype=bool)
        self.cap = np.array([-1 if f.capability == "*" else CAP[f.capability] for f in frames], dtype=np.int8)
        slots = [set(f.slots) for f in frames]
        self.uses = {name: np.array([name in s for s in slots], dtype=bool) for name in _DYNAMIC}
        self.uses_problem = np.zeros(len(frames), dtype=bool)
        for name in _DYNAMIC:
            self.uses_problem |= self.uses[name]
        for f, star, up in zip(frames, self.cap < 0, self.uses_problem, strict=True):
            if star and not up:
                raise ValueError(
                    f"{spec.name}: frame {f.template[:50]!r} takes its capability from a problem "
                    "but has no problem slot"
                )
        # Languages this kind can really render: a frame in that language, or a slot whose
        # vocabulary has a version in it (e.g. Spanish tickets in an English SaaS template).
        self.supported = [
            li
            for li, lang in enumerate(vb.LANGS)
            if li > 0 and (any(f.lang == lang for f in frames) or self.fs.has_lang_vocab(li))
        ]


def _wrap_atk(t: str) -> str:
    return "{atk_pre}" + t + "{atk_post}"


def _wrap_machine(t: str) -> str:
    """Stray whitespace of programmatic prompts, so it is not an attacker-only artefact."""
    return "{m_pre}" + t + "{m_post}"


def _wrap_human(t: str, ctx: bool = True) -> str:
    if ctx and "\n" not in t:
        return "{h_pre}" + t + "{h_ctx}{h_post}"
    return "{h_pre}" + t + "{h_post}"


def _label_capability(label: str) -> str:
    """Capability of a corpus template from its label (the T0 task it came from)."""
    lab = label.lower()
    if any(k in lab for k in ("summar", "tldr", "synthesize", "sum_up", "write_an_article")):
        return "writing"
    if any(
        k in lab
        for k in (
            "sentiment",
            "polarity",
            "opinion",
            "tone",
            "based_on_that",
            "same_thing",
            "paws",
            "is_correct",
            "decide",
            "automatic_system",
        )
    ):
        return "reasoning"
    if "generate" in lab or "common_gen" in lab:
        return "writing"
    return "knowledge"


def _spread(n: int, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """A length-n column with ``values`` at ``rows`` and "" elsewhere."""
    if len(rows) == n:
        return values
    return replace_rows(empty_strings(n), rows, values)


class TextSource:
    """Prompt and response text for the simulator.

    ``seed`` fixes everything built at construction (vocabularies, campaign template sets,
    tool suites, SaaS brands, response pools); each call's randomness comes from the
    generator it is given. ``corpus`` is an optional directory in the layout of
    ``shared/data/prompts`` whose real prompts replace built-in content where they fit
    (docs/simulator-text.md, "Corpus mode"); built-in frame ids do not change with it.
    """

    def __init__(self, *, seed: int, corpus: Path | None = None) -> None:
        self.seed = int(seed)
        self._tool_suites: list[list[str]] = []
        self.corpus: Corpus = load_corpus(Path(corpus)) if corpus is not None else Corpus()
        rng = np.random.default_rng([self.seed, 0x7E47])
        store = VocabStore()
        self._register_vocab(store, rng)
        specs = self._build_specs(store, rng)
        frames_by_kind = self._assign_ids(specs)
        store.freeze()
        self._store = store
        self._kinds = {name: _Kind(specs[name], frames_by_kind[name], store) for name in specs}
        self._bank = ProblemBank(store, vb.LANGS, self._corpus_pools())
        math_for_pool = self._bank.math.sample(1200, rng, np.zeros(1200, dtype=np.int64))
        self._pools: dict[str, ResponsePool] = build_pools(
            rng,
            vb.FEMALE_NAMES + vb.MALE_NAMES,
            math_for_pool,
            extra_chat=[t for t in self.corpus.assistant_turns if len(t) < 4000][:3000],
            extra_math=[(s, a) for _, a, s in self.corpus.gsm8k],
            extra_code=[code for _, code in self.corpus.humaneval],
        )
        self._foreign_p = np.array([vb.FOREIGN_WEIGHTS[lang] for lang in vb.LANGS[1:]], dtype=np.float64)

    # ------------------------------------------------------------------ construction

    def _register_vocab(self, store: VocabStore, rng: np.random.Generator) -> None:
        names = vb.FEMALE_NAMES + vb.MALE_NAMES
        simple = {
            "name_f": vb.FEMALE_NAMES,
            "name_m": vb.MALE_NAMES,
            "first": names,
            "first2": names,
            "city": vb.CITIES,
            "city2": vb.CITIES,
            "country": vb.COUNTRIES,
            "topic": vb.TOPICS_KNOWLEDGE,
            "audience": vb.AUDIENCES,
            "relation": vb.RELATIONS,
            "email_purpose": vb.EMAIL_PURPOSES,
            "dish": vb.DISHES,
            "hobby": vb.HOBBIES,
            "product": vb.PRODUCTS,
            "job": vb.JOBS,
            "poem_form": vb.POEM_FORMS,
            "poem_topic": vb.POEM_TOPICS,
            "health_topic": vb.HEALTH_TOPICS,
            "duration": vb.DURATIONS,
            "prog_lang": vb.PROG_LANGS,
            "code_howto": vb.CODE_HOWTO,
            "error_msg": vb.ERROR_MESSAGES,
            "code_snippet": vb.CODE_SNIPPETS,
            "regex_target": vb.REGEX_TARGETS,
            "language_name": vb.LANGUAGE_NAMES,
            "sentence": vb.SENTENCES,
            "passage": vb.PASSAGES,
            "draft_text": vb.DRAFT_TEXTS,
            "field": vb.FIELDS,
            "cs_concept": vb.CS_CONCEPTS,
            "proof_stmt": vb.PROOF_STATEMENTS,
            "aspect": vb.ASPECTS,
            "industry": vb.INDUSTRIES,
            "product_cat": vb.PRODUCT_CATEGORIES,
            "sensitive_q": vb.SENSITIVE_QUESTIONS,
            "sensitive_q@zh": vb.SENSITIVE_QUESTIONS_ZH,
            "rubric": vb.RUBRICS,
            "image_name": vb.IMAGE_NAMES,
            "vision_q": vb.VISION_QUESTIONS,
            "ui_task": vb.UI_TASKS,
            "screen_state": vb.SCREEN_STATES,
            "subject": vb.SUBJECTS,
            "math_topic": vb.MATH_TOPICS,
            "atk_code_task": atk.ATK_CODE_TASKS,
            "issue_text": atk.ISSUE_TEXTS,
            "cs_concept_impl": atk.CS_CONCEPT_IMPL,
            "ui_action": atk.UI_ACTIONS,
            "h_pre": _HUMAN_PRE,
            "h_post": _HUMAN_POST,
            "h_ctx": _HUMAN_CTX,
            "atk_pre": atk.ATK_PRE,
            "atk_post": atk.ATK_POST,
            "m_pre": _MACHINE_PRE,
            "m_post": _MACHINE_POST,
            "brand": lg.SAAS_BRANDS,
            "ugc_comment": lg.UGC_COMMENTS,
            "customer_msg": lg.CUSTOMER_MESSAGES,
            "resume": lg.RESUMES,
            "contract_clause": lg.CONTRACT_CLAUSES,
        }
        for name, values in simple.items():
            store.add(name, values)
        for name, values in {**lg.EXTRA_VOCAB, **atk.TOOL_VOCAB}.items():
            if not store.has(name):
                store.add(name, values)
        # Coding curriculum: every built-in task description is also a "write a function that ..." item.
        store.add("code_task_desc", [desc for desc, _, _ in CODE_TASKS])
        store.add("code_cmp", [f"{a} and {b}" for a, b in vb.CODE_COMPARE])
        store.add("concept_pair", [f"{a} and {b}" for a, b in vb.CONCEPT_PAIRS])
        store.add("ui_task_lower", [t[0].lower() + t[1:] for t in vb.UI_TASKS])
        for lang in vb.LANGS[1:]:
            store.add(f"h_pre@{lang}", _HUMAN_PRE_FOREIGN[lang])
            store.add(f"h_post@{lang}", _HUMAN_POST_FOREIGN[lang])
            store.add(f"h_ctx@{lang}", ("",))
            store.add(f"atk_pre@{lang}", _ATK_AFFIX_FOREIGN)
            store.add(f"atk_post@{lang}", _ATK_AFFIX_FOREIGN)
            store.add(f"m_pre@{lang}", _MACHINE_PRE)
            store.add(f"m_post@{lang}", _MACHINE_POST)
        # SaaS inputs, assembled from fragments so thousands of distinct inputs exist.
        store.add("ticket", [self._ticket(rng, names) for _ in range(3000)])
        for lang, items in lg.TICKETS_FOREIGN.items():
            store.add(f"ticket@{lang}", items)
        store.add("review", [self._join_parts(rng, lg.REVIEW_PARTS) for _ in range(2000)])
        store.add("email_thread", [self._email(rng, names) for _ in range(1500)])
        store.add("meeting_transcript", [self._meeting(rng, names) for _ in range(800)])
        store.add("product_name", [f"{b} {p.title()}" for b in lg.SAAS_BRANDS for p in vb.PRODUCTS])
        store.add("followup_q", [t for t, _, _ in lg.FOLLOWUP_EN if "{" not in t])
        # Tool-use requests per domain, rendered at construction (their own slots expanded).
        for domain, _, requests, foreign in atk.TOOL_DOMAINS:
            store.add(f"tr_{domain}", self._expand(rng, requests, 300))
            for lang, reqs in foreign.items():
                store.add(f"tr_{domain}@{lang}", self._expand(rng, reqs, 60))
            store.add(f"trj_{domain}", [self._tool_result(rng, domain) for _ in range(40)])
        for i, (rewordings, _, _) in enumerate(lg.ASSIGNMENTS):
            store.add(f"asg_{i}", rewordings)
        # Corpus content that fills existing slots.
        c = self.corpus
        if c.humaneval:
            store.add("code_snippet", [code for _, code in c.humaneval])
        for label, pairs in c.templates.items():
            store.add(f"tq_{label}", [p for p, _ in pairs])
            examples = [f"Input: {p}\nOutput: {a}" for p, a in pairs if a]
            if examples:
                store.add(f"tex_{label}", examples)
        passages = [
            p
            for label in ("xsum_DOC_tldr", "cnn_dailymail_3_0_0_tldr_summary")
            for p, _ in c.templates.get(label, [])
            if len(p) < 2500
        ]
        if passages:
            store.add("passage", [re.sub(r"\s*TL;DR:\s*$", "", p) for p in passages])
        self._add_free(store, "cx_chat", c.chat)
        self._add_free(store, "cx_fu", c.followups)
        if c.coding:
            store.add("cx_code_coding_0", c.coding)
        if c.gsm8k:
            for i in range(8):  # GSM8K problems assigned as homework in corpus mode
                q = c.gsm8k[int(rng.integers(0, len(c.gsm8k)))][0]
                store.add(f"asg_c{i}", [q])

    @staticmethod
    def _add_free(store: VocabStore, prefix: str, items: Sequence[tuple[str, str]]) -> None:
        buckets: dict[tuple[str, int], list[str]] = {}
        for text, cap in items:
            buckets.setdefault((cap, int(asks_for_reasoning(text))), []).append(text)
        for (cap, cot), texts in sorted(buckets.items()):
            store.add(f"{prefix}_{cap}_{cot}", texts)

    @staticmethod
    def _join_parts(rng: np.random.Generator, parts: dict[str, tuple[str, ...]]) -> str:
        out = [vals[int(rng.integers(0, len(vals)))] for vals in parts.values()]
        return " ".join(p for p in out if p)

    def _ticket(self, rng: np.random.Generator, names: Sequence[str]) -> str:
        text = self._join_parts(rng, lg.TICKET_PARTS)
        return text.replace("{order_no}", str(int(rng.integers(10000, 99999)))).replace(
            "{first}", names[int(rng.integers(0, len(names)))]
        )

    @staticmethod
    def _email(rng: np.random.Generator, names: Sequence[str]) -> str:
        a = lg.EMAIL_PARTS["a"][int(rng.integers(0, len(lg.EMAIL_PARTS["a"])))]
        b = lg.EMAIL_PARTS["b"][int(rng.integers(0, len(lg.EMAIL_PARTS["b"])))]
        dept = ("Finance", "Sales", "Engineering", "Ops", "Legal")[int(rng.integers(0, 5))]
        return (
            (a + b)
            .replace("{first2}", names[int(rng.integers(0, len(names)))])
            .replace("{first}", names[int(rng.integers(0, len(names)))])
            .replace("{dept}", dept)
        )

    @staticmethod
    def _meeting(rng: np.random.Generator, names: Sequence[str]) -> str:
        k = int(rng.integers(3, len(lg.MEETING_LINES) + 1))
        start = int(rng.integers(0, len(lg.MEETING_LINES) - k + 1))
        lines = "\n".join(lg.MEETING_LINES[start : start + k])
        return lines.replace("{first2}", names[int(rng.integers(0, len(names)))]).replace(
            "{first}", names[int(rng.integers(0, len(names)))]
        )

    def _expand(self, rng: np.random.Generator, templates: Sequence[str], n: int) -> list[str]:
        """Render ``n`` strings from slot templates using the plain vocab lists (construction time)."""
        vocab = {
            **{k: list(v) for k, v in lg.EXTRA_VOCAB.items()},
            **{k: list(v) for k, v in atk.TOOL_VOCAB.items()},
        }
        vocab.update(
            city=list(vb.CITIES),
            city2=list(vb.CITIES),
            first=list(vb.FEMALE_NAMES + vb.MALE_NAMES),
            product=list(vb.PRODUCTS),
            topic=list(vb.TOPICS_KNOWLEDGE),
        )
        out = []
        for _ in range(n):
            t = templates[int(rng.integers(0, len(templates)))]
            out.append(
                re.sub(
                    r"\{(\w+)\}", lambda m: (lambda v: v[int(rng.integers(0, len(v)))])(vocab[m.group(1)]), t
                )
            )
        return out

    @staticmethod
    def _tool_result(rng: np.random.Generator, domain: str) -> str:
        """A plausible JSON function result for ``domain`` (what a harness feeds back)."""
        city = vb.CITIES[int(rng.integers(0, len(vb.CITIES)))]
        n = int(rng.integers(1, 500))
        results: dict[str, object] = {
            "weather": {"location": city, "temp_c": n % 35, "condition": "partly cloudy", "humidity": n % 90},
            "travel": {
                "flights": [
                    {"id": f"FL{n}", "depart": "07:40", "price": n + 80},
                    {"id": f"FL{n + 7}", "depart": "13:15", "price": n + 120},
                ]
            },
            "calendar": {"events": [{"id": f"evt_{n}", "title": "Standup", "start": "09:30"}]},
            "email": {
                "messages": [{"id": f"m{n}", "subject": f"Invoice #{n}", "from": "billing@example.com"}]
            },
            "finance": {
                "ticker": "NVDA",
                "price": n + 100 + (n % 100) / 100,
                "change_pct": (n % 70 - 35) / 10,
            },
            "shop": {"order_id": f"A-{n}", "status": "in_transit", "eta": f"2025-05-{n % 28 + 1:02d}"},
            "database": {"rows": [[n], [n + 11]], "columns": ["count"]},
            "maps": {"duration_min": n % 90 + 5, "distance_km": n % 60 + 1},
            "compute": {"result": n * 37},
            "crm": {"customer_id": f"c_{n}", "open_tickets": [{"id": f"T-{n}", "status": "open"}]},
            "home": {"ok": True},
            "web": {"results": [{"title": f"Result {n}", "url": f"https://example.com/{n}"}]},
        }
        return json.dumps(results[domain], ensure_ascii=False)

    def _build_specs(self, store: VocabStore, rng: np.random.Generator) -> dict[str, _Spec]:
        c = self.corpus
        specs: dict[str, _Spec] = {}

        def free_kind(
            name: str,
            en: Sequence[lg.FD],
            foreign: dict[str, tuple[str, ...]],
            human: bool,
            corpus_prefix: str | None,
        ) -> _Spec:
            spec = _Spec(name, human=human)
            group: dict[str, list[tuple[int, float]]] = {}
            for t, cap, cot in en:
                tpl = _wrap_human(t) if human else _wrap_machine(t)
                group.setdefault("en", []).append((spec.add(_Def(t, tpl, cap, cot, "en")), 1.0))
            for lang, items in foreign.items():
                for t in items:
                    tpl = _wrap_human(t, ctx=False) if human else t
                    group.setdefault(lang, []).append((spec.add(_Def(t, tpl, "chat", False, lang)), 1.0))
            if corpus_prefix is not None:
                free = [(n, len(store.get(n))) for n in self._vocab_names(store, corpus_prefix)]
                total = sum(k for _, k in free)
                if total:
                    share = _CORPUS_SHARE[name]
                    budget = len(en) * share / (1.0 - share)
                    for vname, k in free:
                        _, vcap, vcot = vname.rsplit("_", 2)
                        d = _Def(
                            "{" + vname + "}",
                            "{" + vname + "}",
                            vcap,
                            vcot == "1",
                            "en",
                            label=vname,
                            corpus=True,
                            free=True,
                        )
                        group["en"].append((spec.add(d), budget * k / total))
            spec.groups = [group]
            return spec

        specs["chat"] = free_kind("chat", lg.CHAT_EN, lg.CHAT_FOREIGN, True, "cx_chat")
        specs["chat_followup"] = free_kind(
            "chat_followup", lg.FOLLOWUP_EN, lg.FOLLOWUP_FOREIGN, True, "cx_fu"
        )
        specs["coding_question"] = free_kind(
            "coding_question", lg.CODING_EN, lg.CODING_FOREIGN, True, "cx_code"
        )
        self._fix_foreign_caps(specs["coding_question"], "coding")
        specs["agent_step"] = free_kind("agent_step", lg.AGENT_STEP_EN, lg.AGENT_STEP_FOREIGN, False, None)
        self._fix_foreign_caps(specs["agent_step"], "agentic")

        # SaaS backends: one fixed template per product (variant); corpus templates add products.
        spec = _Spec("saas_input")
        for label, tpl, cap, _ in lg.SAAS_PRODUCTS:
            spec.groups.append({"en": [(spec.add(_Def(tpl, tpl, cap, False, "en", label=label)), 1.0)]})
        for label in c.templates:
            t = "{tq_" + label + "}"
            d = _Def(t, t, _label_capability(label), False, "en", label=label, corpus=True)
            spec.groups.append({"en": [(spec.add(d), 1.0)]})
        specs["saas_input"] = spec

        spec = _Spec("benchmark_math")
        for t, cap, cot in lg.BENCHMARK_FRAMES:
            spec.groups.append({"en": [(spec.add(_Def(t, _wrap_machine(t), cap, cot, "en")), 1.0)]})
        specs["benchmark_math"] = spec

        spec = _Spec("class_assignment", human=True)
        assignments = [(f"asg_{i}", cap, cot) for i, (_, cap, cot) in enumerate(lg.ASSIGNMENTS)]
        assignments += [(f"asg_c{i}", "math", True) for i in range(8) if store.has(f"asg_c{i}")]
        for slot, cap, cot_asg in assignments:
            group: dict[str, list[tuple[int, float]]] = {}
            for w, cot_w in lg.ASSIGNMENT_WRAPPERS:
                t = w.replace("{q}", "{" + slot + "}")
                d = _Def(
                    t,
                    _wrap_human(t),
                    cap,
                    cot_asg or cot_w,
                    "en",
                    label=slot,
                    corpus=slot.startswith("asg_c"),
                )
                group.setdefault("en", []).append((spec.add(d), 1.0))
            for lang, wrappers in lg.ASSIGNMENT_FOREIGN_WRAPPERS.items():
                for w, cot_w in wrappers:
                    t = w.replace("{q}", "{" + slot + "}")
                    d = _Def(
                        t,
                        _wrap_human(t, ctx=False),
                        cap,
                        cot_asg or cot_w,
                        lang,
                        label=slot,
                        corpus=slot.startswith("asg_c"),
                    )
                    group.setdefault(lang, []).append((spec.add(d), 0.5))
            spec.groups.append(group)
        specs["class_assignment"] = spec

        spec = _Spec("synthetic_data")
        for t, cap, cot in lg.SYNTHETIC_FRAMES:
            spec.groups.append({"en": [(spec.add(_Def(t, _wrap_machine(t), cap, cot, "en")), 1.0)]})
        for label in list(c.templates)[::7]:
            if not store.has(f"tex_{label}"):
                continue
            t = (
                "Below is an example input and output for a text task.\n\n{tex_"
                + label
                + "}\n\nGenerate {k} "
                "new, diverse input/output pairs in exactly the same format. Do not copy the example."
            )
            spec.groups.append(
                {
                    "en": [
                        (spec.add(_Def(t, t, "data_generation", False, "en", label=label, corpus=True)), 1.0)
                    ]
                }
            )
        specs["synthetic_data"] = spec
        for name in ("saas_input", "benchmark_math", "class_assignment", "synthetic_data"):
            self._add_all_group(specs[name])

        # Attack kinds: variant -> one of _N_SETS template sets (a campaign's paraphrases).
        def attack_kind(
            name: str,
            en: Sequence[lg.FD],
            foreign: dict[str, tuple[str, ...]],
            foreign_cap: str,
            extra: Sequence[_Def] = (),
            breadth: tuple[int, int] = (2, 5),
        ) -> _Spec:
            spec = _Spec(name)
            for t, cap, cot in en:
                spec.add(_Def(t, _wrap_atk(t), cap, cot, "en"))
            for d in extra:
                spec.add(d)
            for lang, items in foreign.items():
                for t in items:
                    cap = "*" if "{problem}" in t and foreign_cap != "grading" else foreign_cap
                    cot = name in ("cot_harvest", "answer_rationalization", "reasoning_trace") or bool(
                        re.search(r"步|шаг|단계|paso|ステップ|Schritt|étape|passo", t)
                    )
                    spec.add(_Def(t, _wrap_atk(t), cap, cot, lang))
            self._attack_sets(spec, rng, breadth, 4.0 if name == "capability_sweep" else 1.2)
            return spec

        specs["cot_harvest"] = attack_kind("cot_harvest", atk.COT_HARVEST_EN, atk.COT_HARVEST_FOREIGN, "*")
        specs["answer_rationalization"] = attack_kind(
            "answer_rationalization", atk.RATIONALIZATION_EN, atk.RATIONALIZATION_FOREIGN, "*"
        )
        judges = [self._judge_def(j) for j in c.judges]
        specs["rubric_grading"] = attack_kind(
            "rubric_grading", atk.RUBRIC_EN, atk.RUBRIC_FOREIGN, "grading", judges
        )
        specs["safe_rewrite"] = attack_kind(
            "safe_rewrite", atk.SAFE_REWRITE_EN, atk.SAFE_REWRITE_FOREIGN, "rewrite"
        )
        specs["agentic_coding"] = attack_kind(
            "agentic_coding", atk.AGENTIC_CODING_EN, atk.AGENTIC_CODING_FOREIGN, "agentic"
        )
        specs["tool_use"] = self._tool_use_spec(rng)
        specs["computer_use"] = attack_kind(
            "computer_use", atk.COMPUTER_USE_EN, atk.COMPUTER_USE_FOREIGN, "agentic"
        )
        specs["vision"] = attack_kind("vision", atk.VISION_EN, atk.VISION_FOREIGN, "vision")
        specs["reasoning_trace"] = attack_kind(
            "reasoning_trace", atk.REASONING_TRACE_EN, atk.REASONING_TRACE_FOREIGN, "reasoning"
        )
        raw = [
            _Def(
                "{tq_" + label + "}",
                "{tq_" + label + "}",
                _label_capability(label),
                False,
                "en",
                label=label,
                corpus=True,
                sparse=True,
            )
            for label in c.templates
        ]
        specs["capability_sweep"] = attack_kind(
            "capability_sweep",
            atk.CAPABILITY_SWEEP_EN,
            atk.CAPABILITY_SWEEP_FOREIGN,
            "knowledge",
            raw,
            (6, 12),
        )
        for name in ATTACK_KINDS:
            self._fix_foreign_caps(specs[name], None)
        return specs

    @staticmethod
    def _add_all_group(spec: _Spec) -> None:
        """variant=None: every template of the kind, one group (used by the engine's default)."""
        group: dict[str, list[tuple[int, float]]] = {}
        for g in spec.groups:
            for lang, members in g.items():
                group.setdefault(lang, []).extend(members)
        spec.all_group = len(spec.groups)
        spec.groups.append(group)

    @staticmethod
    def _vocab_names(store: VocabStore, prefix: str) -> list[str]:
        return sorted(n for n in store._ids if n.startswith(prefix + "_"))

    @staticmethod
    def _fix_foreign_caps(spec: _Spec, cap: str | None) -> None:
        """Foreign free-text frames default to "chat"; give them the kind's capability."""
        if cap is None:
            return
        for d in spec.defs:
            if d.lang != "en" and not d.corpus:
                d.capability = cap

    @staticmethod
    def _judge_def(judge: dict[str, str]) -> _Def:
        t = judge["prompt_template"]
        for src, dst in (
            ("{question_1}", "{problem}"),
            ("{question_2}", "{followup_q}"),
            ("{question}", "{problem}"),
            ("{ref_answer_1}", "{answer}"),
            ("{ref_answer_2}", "{answer2}"),
            ("{answer_a_1}", "{candidate}"),
            ("{answer_b_1}", "{candidate_b}"),
            ("{answer_a_2}", "{candidate2}"),
            ("{answer_b_2}", "{candidate_b2}"),
            ("{answer_1}", "{candidate}"),
            ("{answer_2}", "{candidate2}"),
            ("{answer_a}", "{candidate}"),
            ("{answer_b}", "{candidate_b}"),
            ("{answer}", "{candidate}"),
        ):
            t = t.replace(src, dst)
        cot = asks_for_reasoning(t)
        return _Def(t, _wrap_atk(t), "grading", cot, "en", label=judge["name"], corpus=True)

    @staticmethod
    def _attack_sets(spec: _Spec, rng: np.random.Generator, breadth: tuple[int, int], alpha: float) -> None:
        """_N_SETS campaign template sets, then the all-templates group.

        Raw corpus items used as whole prompts (``sparse``: 200 fixed texts each) join a set
        at most twice and with a small weight, so a curriculum sweep does not end up
        resending a handful of fixed texts.
        """
        by_lang: dict[str, list[int]] = {}
        sparse = [i for i, d in enumerate(spec.defs) if d.sparse]
        for i, d in enumerate(spec.defs):
            if not d.sparse:
                by_lang.setdefault(d.lang, []).append(i)
        for _ in range(_N_SETS):
            group: dict[str, list[tuple[int, float]]] = {}
            for lang, members in by_lang.items():
                lo, hi = breadth if lang == "en" else (1, 2)
                m = min(int(rng.integers(lo, hi + 1)), len(members))
                chosen = rng.choice(np.array(members), size=m, replace=False)
                # Campaigns lean on one main template and keep a few paraphrases in rotation;
                # a curriculum sweep spreads its volume more evenly.
                w = rng.dirichlet(np.full(m, alpha)) + 0.05
                group[lang] = [(int(f), float(x)) for f, x in zip(chosen, w, strict=True)]
            if sparse:
                k = min(int(rng.integers(0, 3)), len(sparse))
                group["en"] += [(int(f), 0.03) for f in rng.choice(np.array(sparse), size=k, replace=False)]
            spec.groups.append(group)
        spec.all_group = len(spec.groups)
        everything = {lang: [(i, 1.0) for i in members] for lang, members in by_lang.items()}
        everything.setdefault("en", []).extend((i, 0.1) for i in sparse)
        spec.groups.append(everything)

    def _tool_use_spec(self, rng: np.random.Generator) -> _Spec:
        spec = _Spec("tool_use")
        domain_frames: dict[str, dict[str, list[int]]] = {}
        for domain, tools, _, foreign in atk.TOOL_DOMAINS:
            schema = "\n".join(f"- {name}({params})" for name, params in tools)
            per: dict[str, list[int]] = {}
            for t, cap, cot in atk.TOOL_USE_WRAPPERS_EN:
                core = t.replace("{tool_request}", "{tr_" + domain + "}").replace("{tool_schema}", schema)
                core = core.replace("{tool_result_json}", "{trj_" + domain + "}")
                per.setdefault("en", []).append(
                    spec.add(_Def(core, _wrap_atk(core), cap, cot, "en", label=domain))
                )
            for lang, items in atk.TOOL_USE_FOREIGN.items():
                if lang not in foreign:
                    continue
                for t in items:
                    core = t.replace("{tool_request}", "{tr_" + domain + "}").replace("{tool_schema}", schema)
                    per.setdefault(lang, []).append(
                        spec.add(_Def(core, _wrap_atk(core), "tool_use", False, lang, label=domain))
                    )
            domain_frames[domain] = per
        domains = [d for d, _, _, _ in atk.TOOL_DOMAINS]
        self._tool_suites = []
        for _ in range(_N_SETS):
            k = int(rng.integers(2, 5))
            suite = [domains[int(i)] for i in rng.choice(len(domains), size=k, replace=False)]
            self._tool_suites.append(suite)
            # A campaign also settles on one to three prompt styles (plain request, inline
            # schema, function results...), the same for every domain it covers.
            n_wrap = len(atk.TOOL_USE_WRAPPERS_EN)
            styles = rng.choice(n_wrap, size=int(rng.integers(1, 4)), replace=False)
            group: dict[str, list[tuple[int, float]]] = {}
            for d in suite:
                for lang, members in domain_frames[d].items():
                    picked = [members[int(i)] for i in styles] if lang == "en" else members[:1]
                    group.setdefault(lang, []).extend((m, 1.0) for m in picked)
            spec.groups.append(group)
        spec.all_group = len(spec.groups)
        group = {}
        for per in domain_frames.values():
            for lang, members in per.items():
                group.setdefault(lang, []).extend((m, 1.0) for m in members)
        spec.groups.append(group)
        return spec

    def _assign_ids(self, specs: dict[str, _Spec]) -> dict[str, list[Frame]]:
        """Frame ids by core template: built-in frames first (stable with or without a corpus)."""
        ids: dict[tuple[str, str], int] = {}
        for corpus_pass in (False, True):
            for name in PROMPT_KINDS:
                if name not in specs:
                    continue
                for d in specs[name].defs:
                    if d.corpus == corpus_pass and not d.free and (d.core, d.lang) not in ids:
                        ids[(d.core, d.lang)] = len(ids)
        self._frame_rows: list[tuple[int, str, str, str, bool, str, str, bool]] = []
        out: dict[str, list[Frame]] = {}
        for name, spec in specs.items():
            frames = []
            for d in spec.defs:
                fid = -1 if d.free else ids[(d.core, d.lang)]
                frames.append(Frame(fid, name, d.lang, d.capability, d.cot, d.template, d.label))
                self._frame_rows.append((fid, name, d.lang, d.capability, d.cot, d.core, d.label, d.corpus))
            out[name] = frames
        return out

    def _corpus_pools(self) -> dict[str, _Pool]:
        c = self.corpus
        pools: dict[str, _Pool] = {}
        if c.gsm8k:
            pools["gsm8k"] = _Pool(
                [q for q, _, _ in c.gsm8k],
                [a for _, a, _ in c.gsm8k],
                [f"{s}\nThe answer is {a}." for _, a, s in c.gsm8k],
                [CAP["math"]] * len(c.gsm8k),
            )
        if c.humaneval:
            pools["humaneval"] = _Pool(
                [f"Complete the following Python function:\n\n```python\n{p}\n```" for p, _ in c.humaneval],
                [s for _, s in c.humaneval],
                [f"```python\n{s}\n```" for _, s in c.humaneval],
                [CAP["coding"]] * len(c.humaneval),
            )
        arena = [t for t, cap in c.chat if cap in ("reasoning", "math", "knowledge") and len(t) < 3000]
        if arena:
            pools["arena"] = _Pool(
                arena, [""] * len(arena), [""] * len(arena), [CAP["reasoning"]] * len(arena)
            )
        tqa = [
            (p, a)
            for label, items in c.templates.items()
            for p, a in items
            if a and len(p) < 1500 and _label_capability(label) != "writing"
        ]
        if tqa:
            pools["tqa"] = _Pool(
                [p for p, _ in tqa],
                [a for _, a in tqa],
                [f"The answer is {a}." for _, a in tqa],
                [CAP["knowledge"]] * len(tqa),
            )
        return pools

    # ------------------------------------------------------------------ public API

    def frame_table(self) -> pa.Table:
        """One row per (kind, frame): id, kind, lang, capability, cot_elicit, template, label, corpus.

        Ground truth for template-clustering evaluation; ``template`` is the core template
        (without the human/attacker affix slots). A frame id shared by several kinds means
        the same template text is sent by both (e.g. a benchmark and a harvesting campaign).
        """
        cols = list(zip(*self._frame_rows, strict=True))
        return pa.table(
            {
                "frame": pa.array(cols[0], type=pa.int32()),
                "kind": pa.array(cols[1], type=pa.string()),
                "lang": pa.array(cols[2], type=pa.string()),
                "capability": pa.array(cols[3], type=pa.string()),
                "cot_elicit": pa.array(cols[4], type=pa.bool_()),
                "template": pa.array(cols[5], type=pa.string()),
                "label": pa.array(cols[6], type=pa.string()),
                "corpus": pa.array(cols[7], type=pa.bool_()),
            }
        )

    def _langs(
        self, n: int, rng: np.random.Generator, lang_mix: float, supported: Sequence[int]
    ) -> np.ndarray:
        lidx = np.zeros(n, dtype=np.int64)
        if lang_mix <= 0 or not supported or n == 0:
            return lidx
        if not 0.0 <= lang_mix <= 1.0:
            raise ValueError(f"lang_mix must be in [0, 1], got {lang_mix}")
        foreign = np.flatnonzero(rng.random(n) < lang_mix)
        sup = np.asarray(supported, dtype=np.int64)
        p = self._foreign_p[sup - 1]
        lidx[foreign] = sup[rng.choice(len(sup), size=len(foreign), p=p / p.sum())]
        return lidx

    def prompts(
        self,
        kind: str,
        n: int,
        rng: np.random.Generator,
        *,
        variant: np.ndarray | None = None,
        lang_mix: float = 0.0,
    ) -> PromptBatch:
        """n prompts of ``kind``; ``variant`` picks each row's template family (docs/simulator-text.md)."""
        if kind not in PROMPT_KINDS:
            raise KeyError(f"unknown prompt kind {kind!r}; expected one of {', '.join(PROMPT_KINDS)}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if variant is not None:
            variant = np.asarray(variant, dtype=np.int64)
            if variant.shape != (n,):
                raise ValueError(f"variant must have shape ({n},), got {variant.shape}")
        if kind == "reseller_mix":
            return self._reseller(n, rng, variant, lang_mix)
        return self._render(self._kinds[kind], n, rng, variant, lang_mix)

    def _render(
        self, k: _Kind, n: int, rng: np.random.Generator, variant: np.ndarray | None, lang_mix: float
    ) -> PromptBatch:
        lidx = self._langs(n, rng, lang_mix, k.supported)
        group = np.full(n, k.all_group, dtype=np.int64) if variant is None else variant % k.n_variant
        fidx = k.chooser.choose(group, lidx, rng)
        cap = k.cap[fidx].copy()
        dyn: dict[str, pa.Array] = {}
        need = k.uses_problem[fidx]
        if need.any():
            rows = np.flatnonzero(need)
            used = {name for name in _DYNAMIC if k.uses[name][fidx].any()}
            graded = bool(used & {"candidate", "candidate_b", "candidate2", "candidate_b2", "answer2"})
            mix = _PROBLEM_MIX.get(k.name, (("math", 1.0),))
            prob = self._bank.sample(mix, len(rows), rng, lidx[rows], solution=graded)
            star = cap[rows] < 0
            cap[rows[star]] = prob.cap[star]
            m = len(rows)
            cols: dict[str, pa.Array] = {"problem": prob.text, "answer": prob.answer}
            if graded:
                # Candidate responses for grading: mostly this problem's solution, sometimes
                # another problem's (a wrong answer the reward model must catch).
                shift = pa.array((np.arange(m) + 1) % m)
                other = prob.solution.take(shift)
                wrong = pa.array(rng.random(m) < 0.3)
                cols["candidate"] = pc.if_else(wrong, other, prob.solution)
                cols["candidate_b"] = pc.if_else(wrong, prob.solution, other)
                cols["candidate2"] = other
                cols["candidate_b2"] = prob.solution
                cols["answer2"] = prob.answer.take(shift)
            for name in used:
                dyn[name] = _spread(n, rows, cols[name])
        text = k.fs.render(fidx, lidx, rng, dyn)
        if k.human:
            text = self._humanize(text, lidx, rng)
        return PromptBatch(text, k.frame_ids[fidx], _CAP_OBJ[cap], k.cot[fidx])

    def _humanize(self, text: pa.Array, lidx: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """Casing, dropped punctuation and typos on a share of rows (people are not templates)."""
        n = len(text)
        u = rng.random(n)
        typo = rng.random(n) < 0.12
        rule = rng.integers(0, len(_TYPOS), size=n)
        en = lidx == 0
        lower = en & (u < 0.15)
        rtrim = (u >= 0.15) & (u < 0.25)
        typo &= en
        rows = np.flatnonzero(lower | rtrim | typo)
        if len(rows) == 0:
            return text
        sub = text.take(pa.array(rows))
        sub = pc.if_else(pa.array(lower[rows]), pc.utf8_lower(sub), sub)
        sub = pc.if_else(pa.array(rtrim[rows]), pc.utf8_rtrim(sub, characters="?.! "), sub)
        t_rows = np.flatnonzero(typo[rows])
        if len(t_rows):
            pieces: list[tuple[np.ndarray, pa.Array]] = []
            r = rule[rows][t_rows]
            for ri in np.unique(r):
                pos = t_rows[r == ri]
                pat, rep = _TYPOS[int(ri)]
                pieces.append(
                    (pos, pc.replace_substring(sub.take(pa.array(pos)), pat, rep, max_replacements=1))
                )
            keep = np.flatnonzero(~typo[rows])
            pieces.append((keep, sub.take(pa.array(keep))))
            sub = stitch(pieces, len(rows))
        return replace_rows(text, rows, sub)

    def _reseller(
        self, n: int, rng: np.random.Generator, variant: np.ndarray | None, lang_mix: float
    ) -> PromptBatch:
        """A legitimate router's mixed end-user traffic: chat, coding, follow-ups, some agents."""
        subs = ("chat", "coding_question", "chat_followup", "agent_step")
        which = rng.choice(len(subs), size=n, p=[0.5, 0.22, 0.18, 0.10])
        pieces: list[tuple[np.ndarray, PromptBatch]] = []
        for si, sub in enumerate(subs):
            rows = np.flatnonzero(which == si)
            if len(rows):
                pieces.append((rows, self._render(self._kinds[sub], len(rows), rng, None, lang_mix)))
        frame = np.zeros(n, dtype=np.int32)
        cap = np.empty(n, dtype=object)
        cot = np.zeros(n, dtype=bool)
        for rows, pb in pieces:
            frame[rows], cap[rows], cot[rows] = pb.frame, pb.capability, pb.cot_elicit
        text = stitch([(rows, pb.text) for rows, pb in pieces], n)
        return PromptBatch(text, frame, cap, cot)

    def responses(
        self, kind: str, n: int, rng: np.random.Generator, *, visible_reasoning: np.ndarray | None = None
    ) -> ResponseBatch:
        """n responses in style ``kind`` (one of RESPONSE_KINDS); reasoning rows write out their steps."""
        pool = self._pools.get(kind)
        if pool is None:
            raise KeyError(f"unknown response kind {kind!r}; expected one of {', '.join(RESPONSE_KINDS)}")
        vr = (
            np.zeros(n, dtype=bool)
            if visible_reasoning is None
            else np.asarray(visible_reasoning, dtype=bool)
        )
        if vr.shape != (n,):
            raise ValueError(f"visible_reasoning must have shape ({n},), got {vr.shape}")
        oi = rng.integers(0, len(pool.openers), size=n)
        ci = rng.integers(0, len(pool.closers), size=n)
        bi = np.where(
            vr,
            pool.n_plain + rng.integers(0, pool.n_reasoning, size=n),
            rng.integers(0, pool.n_plain, size=n),
        )
        text = pc.binary_join_element_wise(
            pool.openers.take(pa.array(oi)),
            pool.bodies.take(pa.array(bi)),
            pool.closers.take(pa.array(ci)),
            NO_SEP,
        )
        narrow = pool.open_counts[0][oi] + pool.body_counts[0][bi] + pool.close_counts[0][ci]
        wide = pool.open_counts[1][oi] + pool.body_counts[1][bi] + pool.close_counts[1][ci]
        return ResponseBatch(text, tokens_from_counts(narrow, wide))

    def system_prompt(self, kind: str, variant: int) -> str | None:
        """The system prompt a request of ``kind`` carries for template/product ``variant`` (None = none)."""
        if kind not in PROMPT_KINDS:
            raise KeyError(f"unknown prompt kind {kind!r}")
        v = int(variant)
        brand = lg.SAAS_BRANDS[_mix(self.seed, v, len(lg.SAAS_BRANDS))]
        if kind == "agent_step":
            return vendor_system_prompt(self.seed, v)
        if kind == "agentic_coding":
            return harness_system_prompt(self.seed, v)
        if kind == "saas_input":
            n_builtin = len(lg.SAAS_PRODUCTS)
            labels = list(self.corpus.templates)
            g = v % (n_builtin + len(labels))
            if g < n_builtin:
                return lg.SAAS_PRODUCTS[g][3].replace("{brand}", brand)
            cap = _label_capability(labels[g - n_builtin])
            what = {
                "writing": "writing and summarization",
                "reasoning": "text classification",
                "knowledge": "document question answering",
            }[cap]
            return (
                f"You are the {what} engine of {brand}. Follow the instruction in the user message exactly "
                "and "
                "answer with only the requested output, no preamble."
            )
        if kind == "benchmark_math":
            return None if v % 2 == 0 else "You are a helpful assistant."
        if kind == "synthetic_data":
            return (
                f"You generate synthetic training and test data for {brand}. Output only valid data in the "
                "requested format. All people and companies must be fictional."
            )
        if kind == "reseller_mix":
            opts = (
                None,
                "You are a helpful assistant.",
                f"You are {brand} Assistant, a helpful AI assistant.",
            )
            return opts[v % 3]
        if kind == "rubric_grading" and self.corpus.judges:
            judge_sys = [j["system_prompt"] for j in self.corpus.judges]
            opts_j: tuple[str | None, ...] = atk.ATTACK_SYSTEM_PROMPTS["rubric_grading"] + tuple(judge_sys)
            return opts_j[v % len(opts_j)]
        opts2 = atk.ATTACK_SYSTEM_PROMPTS.get(kind)
        if opts2 is None:
            return None
        return opts2[v % len(opts2)]

    def tool_names(self, kind: str, variant: int) -> list[str]:
        """Tools offered in requests of ``kind`` (empty where the kind uses none)."""
        if kind not in PROMPT_KINDS:
            raise KeyError(f"unknown prompt kind {kind!r}")
        v = int(variant)
        if kind == "agent_step":
            return list(VENDOR_TOOLS[v % len(VENDOR_TOOLS)])
        if kind == "agentic_coding":
            return list(HARNESS_TOOLS[v % len(HARNESS_TOOLS)])
        if kind == "computer_use":
            return list(COMPUTER_TOOLS[v % len(COMPUTER_TOOLS)])
        if kind == "tool_use":
            suite = self._tool_suites[v % len(self._tool_suites)]
            return [name for d, tools, _, _ in atk.TOOL_DOMAINS if d in suite for name, _ in tools]
        return []
