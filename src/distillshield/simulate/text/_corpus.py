"""Reading the optional real-prompt corpus (layout of ``shared/data/prompts``).

Everything here is optional: a missing file simply leaves its part of the corpus empty
and the built-in content takes over, so the package never depends on the corpus being
present. A file that exists but does not parse raises :class:`CorpusError` naming the
file and line, because silently simulating from half a corpus would skew every metric
computed on the result.

Files used (relative to the corpus directory):

* ``legit/hh_rlhf_helpful_base_test.jsonl.gz`` (``chosen``): first Human turn → chat
  prompt; later Human turns → follow-ups; Assistant turns → chat response bodies.
* ``legit/arena_hard_v0.1.jsonl`` (``prompt``, ``cluster``) → chat / coding questions.
* ``legit/mt_bench.jsonl`` (``turns``, ``category``) → first turn chat, second turn follow-up.
* ``capability/gsm8k_test.jsonl`` (``question``, ``answer``) → math problems with answers.
* ``capability/humaneval.jsonl.gz`` (``prompt``, ``canonical_solution``) → code problems.
* ``capability/judge_prompts.jsonl`` → rubric-grading templates and judge system prompts.
* ``templates/*.jsonl`` (``prompt``, ``completion``; file name = template label) →
  templated traffic whose template identity is known.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillshield.errors import DistillShieldError

__all__ = ["Corpus", "CorpusError", "classify_capability", "load_corpus"]

#: Template prompts longer than this are cut (at a line break): a few wiki_hop prompts
#: exceed 20k characters and would dominate batch memory for no modelling benefit.
MAX_TEMPLATE_PROMPT_CHARS = 8000

_CODE_RE = re.compile(
    r"\b(python|javascript|typescript|java|c\+\+|c#|sql|rust|golang|kotlin|swift|php|code|coding|script|"
    r"regex|bash|html|css|api|docker|kubernetes|react|django|flask|pandas|numpy|compile|compiler|bug|debug|"
    r"programming|algorithm|vba|excel formula|linux|git)\b",
    re.IGNORECASE,
)
_MATH_RE = re.compile(
    r"\b(calculate|solve|equation|probability|integral|derivative|percent|percentage|how many|sum of|"
    r"average|prove)\b",
    re.IGNORECASE,
)
_WRITE_RE = re.compile(
    r"\b(write|essay|poem|story|email|rewrite|summarize|summarise|draft|letter|blog|compose|slogan|caption)\b",
    re.IGNORECASE,
)
_KNOW_RE = re.compile(
    r"^\s*(what|who|when|where|why|which|how does|how do|how is|is it true)\b", re.IGNORECASE
)
_COT_RE = re.compile(
    r"step[- ]by[- ]step|show (?:your|the|all) work|explain your reasoning|chain[- ]of[- ]thought|"
    r"show (?:your|the) (?:steps|working)",
    re.IGNORECASE,
)


class CorpusError(DistillShieldError):
    """A corpus file exists but cannot be parsed (names the file and line)."""


def classify_capability(text: str) -> str:
    """Rough capability label of a free-text prompt (corpus rows have no template to say it)."""
    if _CODE_RE.search(text):
        return "coding"
    if _MATH_RE.search(text):
        return "math"
    if _WRITE_RE.search(text):
        return "writing"
    if _KNOW_RE.search(text):
        return "knowledge"
    return "chat"


def asks_for_reasoning(text: str) -> bool:
    """Whether free text explicitly asks for step-by-step reasoning (ground truth for corpus rows)."""
    return _COT_RE.search(text) is not None


@dataclass
class Corpus:
    """The parts of the corpus the text source uses; empty lists where files are absent."""

    chat: list[tuple[str, str]] = field(default_factory=list)  # (prompt, capability)
    followups: list[tuple[str, str]] = field(default_factory=list)
    coding: list[str] = field(default_factory=list)
    assistant_turns: list[str] = field(default_factory=list)
    gsm8k: list[tuple[str, str, str]] = field(default_factory=list)  # (question, final answer, solution)
    humaneval: list[tuple[str, str]] = field(default_factory=list)  # (prompt, full solution)
    judges: list[dict[str, str]] = field(default_factory=list)
    templates: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # label -> (prompt, completion)

    @property
    def empty(self) -> bool:
        return not (self.chat or self.gsm8k or self.humaneval or self.judges or self.templates)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise CorpusError(f"{path}:{lineno}: expected a JSON object")
            yield row


def _field(row: dict[str, Any], name: str, path: Path) -> str:
    value = row.get(name)
    if not isinstance(value, str):
        raise CorpusError(f"{path}: row without a string field {name!r}")
    return value


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut if cut > limit // 2 else limit]


def _hh(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        chosen = _field(row, "chosen", path)
        turns = re.split(r"\n\n(Human|Assistant): ", chosen)
        # re.split with a group yields ["", role, text, role, text, ...]
        pairs = list(zip(turns[1::2], turns[2::2], strict=False))
        humans = [t.strip() for r, t in pairs if r == "Human" and t.strip()]
        if humans:
            corpus.chat.append((humans[0], classify_capability(humans[0])))
            corpus.followups.extend((h, classify_capability(h)) for h in humans[1:])
            if corpus.chat[-1][1] == "coding":
                corpus.coding.append(humans[0])
        corpus.assistant_turns.extend(t.strip() for r, t in pairs if r == "Assistant" and len(t.strip()) > 40)


def _arena(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        prompt = _field(row, "prompt", path).strip()
        cap = classify_capability(prompt + " " + str(row.get("cluster", "")))
        if cap == "coding":
            corpus.coding.append(prompt)
        else:
            corpus.chat.append((prompt, cap))


_MT_CAP = {
    "writing": "writing",
    "roleplay": "chat",
    "reasoning": "reasoning",
    "math": "math",
    "coding": "coding",
    "extraction": "writing",
    "stem": "knowledge",
    "humanities": "knowledge",
}


def _mt_bench(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        turns = row.get("turns")
        if isinstance(turns, str):  # some exports store the list as its Python repr
            turns = ast.literal_eval(turns)
        if not isinstance(turns, list) or not turns:
            raise CorpusError(f"{path}: row without a 'turns' list")
        cap = _MT_CAP.get(str(row.get("category", "")), "chat")
        corpus.chat.append((str(turns[0]), cap))
        corpus.followups.extend((str(t), cap) for t in turns[1:])


def _gsm8k(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        q = _field(row, "question", path).strip()
        a = _field(row, "answer", path)
        body, _, final = a.rpartition("####")
        solution = re.sub(r"<<[^>]*>>", "", body).strip()
        corpus.gsm8k.append((q, final.strip(), solution))


def _humaneval(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        prompt = _field(row, "prompt", path)
        corpus.humaneval.append(
            (prompt.strip("\n"), (prompt + _field(row, "canonical_solution", path)).strip("\n"))
        )


def _judges(path: Path, corpus: Corpus) -> None:
    for row in _rows(path):
        corpus.judges.append(
            {
                "name": _field(row, "name", path),
                "system_prompt": _field(row, "system_prompt", path),
                "prompt_template": _field(row, "prompt_template", path),
                "category": str(row.get("category", "general")),
            }
        )


def _templates(directory: Path, corpus: Corpus) -> None:
    for path in sorted(directory.glob("*.jsonl")):
        items = []
        for row in _rows(path):
            # Keep the template's own trailing newline: templated traffic carries such artefacts.
            prompt = _cut(_field(row, "prompt", path).lstrip(), MAX_TEMPLATE_PROMPT_CHARS)
            completion = _field(row, "completion", path).replace("<|endoftext|>", "").strip()
            if prompt.strip():
                items.append((prompt, completion))
        if items:
            corpus.templates[path.stem] = items


def load_corpus(root: Path) -> Corpus:
    """Load whatever part of the corpus exists under ``root``."""
    corpus = Corpus()
    readers = (
        ("legit/hh_rlhf_helpful_base_test.jsonl.gz", _hh),
        ("legit/arena_hard_v0.1.jsonl", _arena),
        ("legit/mt_bench.jsonl", _mt_bench),
        ("capability/gsm8k_test.jsonl", _gsm8k),
        ("capability/humaneval.jsonl.gz", _humaneval),
        ("capability/judge_prompts.jsonl", _judges),
    )
    for rel, reader in readers:
        path = root / rel
        if not path.exists() and path.suffix == ".gz":
            path = path.with_suffix("")  # accept an uncompressed copy
        elif not path.exists():
            gz = path.with_name(path.name + ".gz")
            path = gz if gz.exists() else path
        if path.exists():
            reader(path, corpus)
    if (root / "templates").is_dir():
        _templates(root / "templates", corpus)
    return corpus
