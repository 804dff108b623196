"""Single-request fast path: every request-level signal of one prompt, as the batch functions give it.

The signals in this package are vectorised over Arrow arrays: fast per batch, but each
``pyarrow.compute`` kernel call costs microseconds of fixed overhead, so one prompt takes
milliseconds (``template_ids`` alone runs some thirty kernels). An enforcement gateway scores
requests one at a time, inside the request's latency budget. :class:`ScalarSignals` computes
the same values for one request in plain Python over one string, with the *same* regular
expressions evaluated by the *same* engine:

* the pattern strings, thresholds and weights are imported from :mod:`.template`, :mod:`.cot`,
  :mod:`.capability` and :mod:`.language`, never restated here;
* they are compiled with RE2 (the ``google-re2`` bindings), the engine behind Arrow's
  ``match_substring_regex`` / ``replace_substring_regex`` / ``extract_regex``, with Arrow's
  options (UTF-8, case-sensitive, leftmost-first) and matched against the UTF-8 bytes, as Arrow
  does. So ``\\b``, ``\\w``, ``\\s`` (ASCII in RE2), ``$`` (end of text only) and the Unicode
  classes mean exactly what they mean in the batch path, and matching is linear-time whatever
  the input (no backtracking blow-up on adversarial prompts);
* searches that always run together on one text (the capability patterns, the chain-of-thought
  features) are one ``RE2::Set`` pass, which reports every pattern that matches anywhere: what
  each pattern's own search says;
* replacement follows ``RE2::GlobalReplace`` (what Arrow's ``replace_substring_regex`` calls);
* ``utf8_lower`` and ``utf8_trim_whitespace`` are Arrow's per-code-point mappings (utf8proc,
  whose Unicode version is not Python's): the tables are read from pyarrow itself once per
  process, so a lower-cased prompt is byte-identical to the batch path's;
* the per-line and per-feature logic mirrors the batch code step by step, in the same order.

``tests/test_signals_scalar.py`` checks equality value for value against the batch functions
on the simulated traffic, the real prompt corpus and generated edge cases.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2
from re2 import _re2

from distillshield.signals import capability as _cap
from distillshield.signals import cot as _cot
from distillshield.signals import language as _lang
from distillshield.signals import template as _tpl

__all__ = ["OneRequestSignals", "ScalarSignals"]

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_LEN_MIX = 0xD6E8FEB86659FD93
_MASK = _tpl.MASK.encode()
_NL = b"\n"


@dataclass(frozen=True, slots=True)
class OneRequestSignals:
    """The request-level signals of one request (the ``derived/signals`` values that need text)."""

    template_id: str | None  # == template_ids(pa.array([prompt]))[0]
    cot_elicit: str | None  # 'expose_reasoning' | 'step_by_step' | 'none'; None for a null prompt
    cot_score: float  # the float32 exposure score, as a Python float (0.0 for a null prompt)
    capability: str | None  # one of capability.CATEGORIES; None for a null prompt with no evidence
    language: str | None  # script label; None for a null prompt


# --------------------------------------------------------------------------------------------
# RE2, as Arrow calls it
# --------------------------------------------------------------------------------------------


class _Re:
    """One RE2 program over UTF-8 bytes: ``search`` (PartialMatch), ``sub`` (GlobalReplace),
    ``group`` (extract_regex). Compiled once; RE2 objects are safe to share between threads."""

    __slots__ = ("_match", "_rewrite", "pattern")

    def __init__(self, pattern: str, rewrite: str | None = None) -> None:
        regexp = _re2.RE2(pattern.encode(), re2.Options())  # RE2's defaults are Arrow's (Quiet aside)
        if not regexp.ok():
            raise ValueError(f"RE2 rejects {pattern!r}: {regexp.error()}")
        self.pattern = pattern
        self._match: Callable[[object, bytes, int, int], list[tuple[int, int]]] = regexp.Match
        self._rewrite = _parse_rewrite(rewrite) if rewrite is not None else None

    def search(self, text: bytes) -> bool:
        return self._match(_UNANCHORED, text, 0, len(text))[0][0] >= 0

    def group(self, text: bytes, index: int) -> bytes | None:
        """Group ``index`` of the first match ("" when it did not take part), None without a match."""
        spans = self._match(_UNANCHORED, text, 0, len(text))
        if spans[0][0] < 0:
            return None
        start, end = spans[index]
        return text[start:end] if start >= 0 else b""

    def sub(self, text: bytes) -> bytes:
        """``RE2::GlobalReplace(&text, re, rewrite)``, including its rule for empty matches."""
        rewrite = self._rewrite
        assert rewrite is not None, "compiled without a rewrite string"
        match = self._match
        end = len(text)
        out: list[bytes] = []
        p = 0
        lastend = -1
        count = 0
        while p <= end:
            spans = match(_UNANCHORED, text, p, end)
            start, stop = spans[0]
            if start < 0:
                break
            if p < start:
                out.append(text[p:start])
            if start == lastend and start == stop:
                # an empty match right where the last one ended: copy one character, move on
                n = _utf8_len(text[p]) if p < end else 1
                out.append(text[p : p + n])
                p += n
                continue
            for piece in rewrite:
                if isinstance(piece, bytes):
                    out.append(piece)
                else:
                    s, e = spans[piece]
                    if s >= 0:
                        out.append(text[s:e])
            p = stop
            lastend = stop
            count += 1
        if count == 0:
            return text
        if p < end:
            out.append(text[p:])
        return b"".join(out)


class _ReSet:
    """Several :class:`_Re` programs searched in one pass (an ``RE2::Set``, unanchored):
    :meth:`matches` is the positions in ``members`` of those that match somewhere in the text,
    which is what each one's ``search`` says (a set reports every pattern that matches).

    A set's DFA can run out of memory on an adversarial text, and then reports no match at
    all: an empty pattern, which always matches, is added last, and when it is missing from the
    answer every member is searched on its own instead."""

    __slots__ = ("_match", "_sentinel", "index", "members")

    def __init__(self, members: Sequence[_Re]) -> None:
        options = re2.Options()
        options.max_mem = 64 << 20  # the DFA's budget (no effect on what matches)
        regexps = _re2.Set(_UNANCHORED, options)
        for rx in members:
            if regexps.Add(rx.pattern.encode()) < 0:
                raise ValueError(f"RE2::Set rejects {rx.pattern!r}")
        self._sentinel = regexps.Add(b"")
        if not regexps.Compile():
            raise ValueError("RE2::Set does not compile")
        self._match: Callable[[bytes], list[int]] = regexps.Match
        self.members = tuple(members)
        self.index = {rx: i for i, rx in enumerate(self.members)}  # by identity

    def matches(self, text: bytes) -> Sequence[int]:
        got = self._match(text)
        if self._sentinel in got:
            return got
        return [i for i, rx in enumerate(self.members) if rx.search(text)]


def _utf8_len(lead: int) -> int:
    if lead < 0x80 or lead >= 0xF8 or 0x80 <= lead < 0xC0:
        return 1
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _parse_rewrite(rewrite: str) -> tuple[bytes | int, ...]:
    r"""RE2's rewrite syntax: ``\0``..``\9`` are groups, ``\\`` is a backslash."""
    raw = rewrite.encode()
    pieces: list[bytes | int] = []
    lit = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):  # backslash
            nxt = raw[i + 1]
            if 0x30 <= nxt <= 0x39:
                if lit:
                    pieces.append(bytes(lit))
                    lit.clear()
                pieces.append(nxt - 0x30)
                i += 2
                continue
            if nxt == 0x5C:
                lit.append(0x5C)
                i += 2
                continue
            raise ValueError(f"invalid rewrite string {rewrite!r}")
        lit.append(c)
        i += 1
    if lit:
        pieces.append(bytes(lit))
    return tuple(pieces)


# --------------------------------------------------------------------------------------------
# Arrow's string kernels on one string
# --------------------------------------------------------------------------------------------


@functools.cache
def _arrow_text_tables() -> tuple[dict[int, int], str]:
    """(``utf8_lower`` as a ``str.translate`` table, the characters ``utf8_trim_whitespace`` trims).

    Read off pyarrow itself: every code point (surrogates aside) as a one-character string,
    lower-cased and trimmed by Arrow in one call each. Both are per-code-point maps (utf8proc's
    simple case mapping, not Python's full one: ``İ`` -> ``i``, no final sigma), so the tables
    reproduce them exactly. About 0.1 s, once per process.
    """
    cps = np.r_[np.arange(0, 0xD800), np.arange(0xE000, 0x110000)].astype(np.uint32)
    data = cps.tobytes().decode("utf-32-le").encode()
    width = np.where(cps < 0x80, 1, np.where(cps < 0x800, 2, np.where(cps < 0x10000, 3, 4)))
    offsets = np.r_[0, np.cumsum(width)].astype(np.int32)
    chars = pa.StringArray.from_buffers(len(cps), pa.py_buffer(offsets), pa.py_buffer(data))
    lowered = pc.utf8_lower(chars)
    low_cps = np.frombuffer("".join(lowered.to_pylist()).encode("utf-32-le"), np.uint32)
    if len(low_cps) != len(cps):  # not one code point to one: would need a different mapping
        raise RuntimeError("pyarrow's utf8_lower is not a per-code-point map")
    changed = np.flatnonzero(low_cps != cps)
    table = {int(cps[i]): int(low_cps[i]) for i in changed}
    trimmed = np.asarray(pc.binary_length(pc.utf8_trim_whitespace(chars))) == 0
    spaces = "".join(chr(int(c)) for c in cps[trimmed])
    return table, spaces


@functools.cache
def _lower_differs() -> re.Pattern[str]:
    """A character class holding every character on which ``str.lower`` is not Arrow's
    ``utf8_lower`` (``İ``, code points newer in one of the two Unicode versions...) and ``Σ``.

    ``str.lower`` maps code point by code point (full mapping), except the context-dependent
    final sigma, hence ``Σ``: on a text with none of these characters ``text.lower()`` *is*
    the per-code-point map, some ten times faster than ``str.translate`` with a dict. The
    class may hold more than those characters (never fewer): the astral ones are one range
    from the first to the last, so that ``re`` keeps its one-lookup set for the rest. About
    0.2 s, once per process.
    """
    table, _ = _arrow_text_tables()
    differ = {c for c in range(0x110000) if chr(c).lower() != chr(table.get(c, c))}
    differ.add(0x03A3)  # GREEK CAPITAL LETTER SIGMA: "ς" or "σ" by context in str.lower
    bmp = "".join(re.escape(chr(c)) for c in sorted(differ) if c < 0x10000)
    astral = [c for c in differ if c >= 0x10000]
    span = f"{re.escape(chr(min(astral)))}-{re.escape(chr(max(astral)))}" if astral else ""
    return re.compile(f"[{bmp}{span}]")


def _hash_keys(n: int) -> list[int]:
    """``_text._hash_each``'s position keys (salt 0), forced odd."""
    return [_splitmix64(j + 1) | 1 for j in range(n)]


def _splitmix64(x: int) -> int:
    z = (x + _GOLDEN) & _M64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & _M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _M64
    z ^= z >> 31
    return z


_KEYS = _hash_keys(512)
_KEYS_U64 = np.array(_KEYS, dtype=np.uint64)


def _hash_one(data: bytes) -> int:
    """``_text.hash_strings`` of one string (salt 0): position-keyed 8-byte chunks, splitmix64.

    The keyed sum is taken modulo 2**64: numpy's ``uint64`` dot product wraps exactly so
    (integer dot products never go through floating point), for up to 512 chunks."""
    n = (len(data) + 7) // 8
    padded = data.ljust(8 * n, b"\0")
    if n <= len(_KEYS):
        total = int(np.dot(np.frombuffer(padded, dtype="<u8"), _KEYS_U64[:n]))
    else:
        chunks = struct.unpack(f"<{n}Q", padded)
        total = sum(map(operator.mul, chunks, _hash_keys(n))) & _M64
    return _splitmix64(total ^ ((len(data) * _LEN_MIX) & _M64))


# --------------------------------------------------------------------------------------------
# The fast path
# --------------------------------------------------------------------------------------------


class ScalarSignals:
    """Compiles every pattern once (constructor); thread-safe to call.

    ``compute(prompt, system_prompt, tools, n_messages)`` returns what ``template_ids``,
    ``cot_elicitation``, ``classify`` and ``script_language`` return for a one-row batch.
    Nothing is mutated after construction, so one instance serves every thread.
    """

    #: A prompt with at least this many line breaks gets its template id from the batch path:
    #: the per-line rules cost some 20 us a line here, ``template_ids`` about 40 ms plus 2.5 us a
    #: line, so this bounds the worst case (a 20,000-line prompt) at the batch path's cost.
    BATCH_MIN_LINES = 4096

    def __init__(self) -> None:
        self._lower_table, self._spaces = _arrow_text_tables()
        self._lower_differs = _lower_differs().search
        # template
        self._slots = _Re(_tpl._SLOTS, _tpl.MASK)
        self._nonblank = _Re(_tpl._NONBLANK)
        self._structure = _Re(_tpl._STRUCTURE)
        self._fence = _Re(_tpl._FENCE)
        self._list = _Re(_tpl._LIST)
        self._label = _Re(_tpl._LABEL)
        self._turn_label = _Re(_tpl._TURN_LABEL)
        self._label_only = _Re(_tpl._LABEL_ONLY)
        self._last_ask = _Re(_tpl._LAST_ASK)
        self._sentence = _Re(_tpl._SENTENCE, _tpl.MASK)
        self._names = _Re(_tpl._NAMES, r"\1" + _tpl.MASK)
        self._spaces_re = _Re(_tpl._SPACES, " ")
        self._merge = _Re(_tpl._MERGE, _tpl.MASK)
        self._letters = _Re(_tpl._LETTERS)
        # chain-of-thought elicitation
        self._prefilter = _Re(_cot._PREFILTER_ANY_CASE)
        self._gate = _Re(_cot._GATE_UNION)
        features = dict(_cot._FEATURES)
        self._step = _Re(features["step"])
        self._features = tuple(
            (name, name in _cot._STEP_NEEDS, _Re(pattern))
            for name, pattern in _cot._FEATURES
            if name != "step"
        )
        # capability
        self._agent_system = _Re(_cap._AGENT_SYSTEM)
        self._grading_strong = _Re(_cap._GRADING_STRONG)
        self._rare_gate = _Re(_cap._RARE_GATE)
        self._strong = tuple(_Re(_cap._STRONG[cat]) for cat in _cap.PRIORITY)
        self._weak_any = _Re(_cap._WEAK_ANY)
        self._weak = tuple(
            (k, _Re(_cap._WEAK[cat])) for k, cat in enumerate(_cap.PRIORITY) if cat in _cap._WEAK
        )
        self._bare_tool_output = _Re(_cap._BARE_TOOL_OUTPUT)
        self._rare_cats = tuple(cat in (_cap.AGENTIC, _cap.GRADING) for cat in _cap.PRIORITY)
        self._names_out: tuple[str, ...] = (*_cap.PRIORITY, _cap.CHAT)
        # the searches of one text that always run together, in one pass each
        self._cot_set = _ReSet([self._gate, self._step, *(rx for _, _, rx in self._features)])
        self._levels_set = _ReSet(
            [*self._strong, self._rare_gate, self._weak_any, *(rx for _, rx in self._weak)]
        )
        # language
        self._non_ascii = _Re(_lang._NON_ASCII)
        self._scripts = tuple((label, _Re(cls)) for label, cls in _lang._SCRIPTS)

    # ---------------------------------------------------------------------------- public

    def compute(
        self,
        prompt: str | None,
        system_prompt: str | None = None,
        tools: Sequence[str] | None = None,
        n_messages: int = 1,
    ) -> OneRequestSignals:
        """All signals of one request: equal to the batch functions' values for a one-row batch.

        ``tools`` are the names of the tools offered (the canonical ``tools`` column);
        ``n_messages`` the number of messages in the request (a bare tool output at 3 or more
        is an agent turn, as in :func:`~distillshield.signals.capability.classify`).
        """
        if prompt is None:
            return OneRequestSignals(
                template_id=None,
                cot_elicit=None,
                cot_score=0.0,
                capability=self._classify(None, None, system_prompt, tools, n_messages),
                language=None,
            )
        raw = prompt.encode()
        low = self._lower(prompt).encode()
        label, score = self._cot(raw, low)
        return OneRequestSignals(
            template_id=self.template_id(prompt, raw),
            cot_elicit=label,
            cot_score=score,
            capability=self._classify(prompt, low, system_prompt, tools, n_messages),
            language=self._language(raw),
        )

    def template_id(self, prompt: str | None, raw: bytes | None = None) -> str | None:
        """``template_ids`` of one prompt (None for null, empty or whitespace-only text)."""
        if not prompt:
            return None
        if prompt.count("\n") >= self.BATCH_MIN_LINES:
            one: str | None = _tpl.template_ids(pa.array([prompt], pa.string()))[0].as_py()
            return one
        skel = self.skeleton(prompt, raw)
        if not skel:
            return None
        return f"{_hash_one(skel):016x}"

    def skeleton(self, prompt: str, raw: bytes | None = None) -> bytes | None:
        """``template.skeleton`` of one non-null prompt, as UTF-8 bytes (None where Arrow gives null)."""
        pre = self._slots.sub(prompt.encode() if raw is None else raw)
        out = self._mask_lines(pre)
        if out is not None:
            if len(prompt) >= _tpl.NAMES_MIN_CHARS:
                out = self._names.sub(out)
            out = self._normalise(out)
        if out is None or not self._letters.search(out):
            out = self._light(pre)
        return out

    # ---------------------------------------------------------------------------- text kernels

    def _lower(self, text: str) -> str:
        if text.isascii() or self._lower_differs(text) is None:
            return text.lower()  # the same code points as the table's (see _lower_differs)
        return text.translate(self._lower_table)

    def _normalise(self, text: bytes) -> bytes:
        out = self._lower(text.decode()).encode()
        out = self._merge.sub(self._spaces_re.sub(out))
        return out.decode().strip(self._spaces).encode()

    def _light(self, pre: bytes) -> bytes:
        text = pre.decode().strip(self._spaces)
        if len(text) > _tpl.FALLBACK_HEAD_CHARS + _tpl.FALLBACK_TAIL_CHARS:
            text = (
                text[: _tpl.FALLBACK_HEAD_CHARS]
                + "\n"
                + _tpl.MASK
                + "\n"
                + text[len(text) - _tpl.FALLBACK_TAIL_CHARS :]
            )
        return self._normalise(text.encode())

    # ---------------------------------------------------------------------------- template lines

    def _mask_lines(self, pre: bytes) -> bytes | None:
        """``template._mask_lines`` on one prompt: the same per-line masks, rule for rule."""
        return self._mask_line(pre) if _NL not in pre else self._mask_many(pre)

    def _mask_many(self, pre: bytes) -> bytes | None:
        """:meth:`_mask_lines` of any prompt (one line included: see :meth:`_mask_line`)."""
        lines = pre.split(_NL)
        m = len(lines)
        nbytes = [len(line) for line in lines]
        blank = [
            n == 0 or (n <= 8 and not self._nonblank.search(line))
            for n, line in zip(nbytes, lines, strict=True)
        ]
        code = [False] * m
        is_list = [False] * m
        is_label = [False] * m
        turn_label = [False] * m
        ends_colon = [False] * m
        for i, line in enumerate(lines):
            if self._structure.search(line):
                code[i] = self._fence.search(line)
                is_list[i] = self._list.search(line)
                is_label[i] = self._label.search(line)
                turn_label[i] = self._turn_label.search(line)
                ends_colon[i] = line.decode().rstrip(self._spaces).endswith((":", "："))
        if any(code):  # everything between a fence line and the next one, fences included
            fences = 0
            for i in range(m):
                fence = code[i]
                if fences % 2 == 1:
                    code[i] = True
                fences += fence
        for i in range(m):
            is_list[i] = is_list[i] and not code[i]
            is_label[i] = is_label[i] and not is_list[i] and not code[i]
            turn_label[i] = turn_label[i] and is_label[i]
            ends_colon[i] = ends_colon[i] and not is_label[i] and not is_list[i] and not code[i]

        # neighbours: the previous / next non-blank line
        nonblank = [i for i in range(m) if not blank[i]]
        prev = [-1] * m
        nxt = [-1] * m
        for a, b in itertools.pairwise(nonblank):
            prev[b] = a
            nxt[a] = b
        after_colon = [
            prev[i] >= 0 and ends_colon[prev[i]] and not blank[i] and not code[i] for i in range(m)
        ]
        in_run = [False] * m
        if any(turn_label) and nonblank:
            start = 0
            while start < len(nonblank):
                flag = turn_label[nonblank[start]]
                stop = start
                while stop < len(nonblank) and turn_label[nonblank[stop]] == flag:
                    stop += 1
                if flag and stop - start >= _tpl.TURN_RUN:
                    for j in nonblank[start:stop]:
                        in_run[j] = True
                start = stop

        plain = [
            not (blank[i] or code[i] or is_list[i] or is_label[i] or ends_colon[i] or after_colon[i])
            for i in range(m)
        ]
        long = [plain[i] and nbytes[i] >= _tpl.LONG_LINE_BYTES for i in range(m)]
        para = [0] * m
        p = 0
        for i in range(m):
            if i == 0 or blank[i]:
                p += 1
            para[i] = p
        n_prose = [0] * (p + 1)
        prose_bytes = [0] * (p + 1)
        last_label_para = -1
        for i in range(m):
            if plain[i] or is_label[i]:
                n_prose[para[i]] += 1
                prose_bytes[para[i]] += nbytes[i]
            if is_label[i]:
                last_label_para = max(last_label_para, para[i])

        out: list[bytes | None] = []
        for i, line in enumerate(lines):
            if blank[i]:
                out.append(b"")
                continue
            in_block = (
                n_prose[para[i]] >= 2
                and prose_bytes[para[i]] >= _tpl.BLOCK_BYTES
                and para[i] >= last_label_para
            )
            has_prev, has_next = prev[i] >= 0, nxt[i] >= 0
            lead = (is_label[i] or ends_colon[i]) and not (has_prev and para[prev[i]] == para[i])
            tail = not has_next and nbytes[i] <= _tpl.KEEP_LAST_CHARS and (plain[i] or ends_colon[i])
            masked = (
                code[i]
                or in_run[i]
                or after_colon[i]
                or (long[i] and has_next)
                or (in_block and not lead and not tail)
            )
            if masked:
                out.append(_MASK)
            elif is_list[i]:
                out.append(b"- " + _MASK)
            elif is_label[i]:
                label = self._label_only.group(line, 1)
                out.append(None if label is None else label + b" " + _MASK)
            elif long[i]:
                last = self._last_ask.group(line, 1)
                out.append(_MASK + b" " + (last or b""))
            elif (plain[i] or ends_colon[i]) and nbytes[i] >= _tpl.LONG_SENTENCE_CHARS:
                out.append(self._sentence.sub(line))
            else:
                out.append(line)
        if any(piece is None for piece in out):
            return None  # Arrow's binary_join: a null piece makes the whole prompt null
        return _NL.join(piece for piece in out if piece is not None)

    def _mask_line(self, line: bytes) -> bytes | None:
        """:meth:`_mask_lines` of a one-line prompt: the same rules, where a line has no
        neighbours (no previous line ending with a colon, no run of turn labels shorter than
        ``TURN_RUN`` lines, no paragraph of two prose lines, no next line)."""
        n = len(line)
        if n == 0 or (n <= 8 and not self._nonblank.search(line)):
            return b""  # blank
        code = is_list = is_label = turn_label = ends_colon = False
        if self._structure.search(line):
            code = self._fence.search(line)  # a lone fence line is code (fences included)
            is_list = self._list.search(line)
            is_label = self._label.search(line)
            turn_label = self._turn_label.search(line)
            ends_colon = line.decode().rstrip(self._spaces).endswith((":", "："))
        is_list = is_list and not code
        is_label = is_label and not is_list and not code
        turn_label = turn_label and is_label
        ends_colon = ends_colon and not is_label and not is_list and not code
        in_run = turn_label and _tpl.TURN_RUN <= 1
        plain = not (code or is_list or is_label or ends_colon)
        if code or in_run:
            return _MASK
        if is_list:
            return b"- " + _MASK
        if is_label:
            label = self._label_only.group(line, 1)
            return None if label is None else label + b" " + _MASK
        if plain and n >= _tpl.LONG_LINE_BYTES:
            last = self._last_ask.group(line, 1)
            return _MASK + b" " + (last or b"")
        if (plain or ends_colon) and n >= _tpl.LONG_SENTENCE_CHARS:
            return self._sentence.sub(line)
        return line

    # ---------------------------------------------------------------------------- cot

    def _cot(self, raw: bytes, low: bytes) -> tuple[str, float]:
        """``cot_elicitation`` of one non-null prompt: (label, float32 score as float)."""
        if not self._prefilter.search(raw):
            return _cot.NONE, 0.0
        hits = self._cot_set.matches(low)
        index = self._cot_set.index
        gate = index[self._gate] in hits
        step = index[self._step] in hits
        if not gate and not step:
            return _cot.NONE, 0.0
        feat = {"step": step}
        for name, wide, rx in self._features:
            feat[name] = (gate or (wide and step)) and index[rx] in hits
        miss = 1.0
        for weight, names in _cot._TERMS:
            if all(feat[name] for name in names):
                miss *= 1.0 - weight
        score = 1.0 - miss
        if feat["topic"]:
            score = score * _cot._TOPIC_DAMP
        if feat["third_party"] and not feat["self"] and not feat["you"]:
            score = score * _cot._TOPIC_DAMP
        if feat["no_explain"] and not feat["obj"]:
            score = 0.0
        strong_step = feat["obj"] or feat["reason_req"]
        is_step = (
            step
            and not (feat["procedural"] and not strong_step)
            and not feat["topic"]
            and not feat["no_explain"]
        )
        label = _cot.EXPOSE if score >= _cot.THRESHOLD else _cot.STEP if is_step else _cot.NONE
        return label, float(np.float32(score))

    # ---------------------------------------------------------------------------- capability

    def _levels(self, low: bytes, *, with_weak: bool = True) -> tuple[int, int]:
        """``capability._levels`` of one lower-cased text: (strong, weak) index, -1 for none."""
        hits = self._levels_set.matches(low)
        index = self._levels_set.index
        rare: bool | None = None
        for k, strong in enumerate(self._strong):
            if self._rare_cats[k]:
                if rare is None:
                    rare = index[self._rare_gate] in hits
                if not rare:
                    continue
            if index[strong] in hits:
                return k, -1
        if not with_weak or index[self._weak_any] not in hits:
            return -1, -1
        for k, weak in self._weak:
            if index[weak] in hits:
                return -1, k
        return -1, -1

    def _classify(
        self,
        prompt: str | None,
        low: bytes | None,
        system_prompt: str | None,
        tools: Sequence[str] | None,
        n_messages: int,
    ) -> str | None:
        """``classify`` of one request (``low`` is the lower-cased prompt's bytes)."""
        decided = weak = -1
        if tools is not None and len(tools) > 0:
            decided = 0  # PRIORITY.index(AGENTIC)
        sys_low: bytes | None = None
        if system_prompt is not None and decided < 0:
            sys_low = self._lower(system_prompt).encode()
            if self._agent_system.search(sys_low):
                decided = _cap.PRIORITY.index(_cap.AGENTIC)
            elif self._grading_strong.search(sys_low):
                decided = _cap.PRIORITY.index(_cap.GRADING)
        if prompt is not None and decided < 0:
            if low is None:
                low = self._lower(prompt).encode()
            decided, weak = self._levels(low)
            if decided < 0 and weak < 0 and n_messages >= 3 and self._bare_tool_output.search(low):
                decided = _cap.PRIORITY.index(_cap.AGENTIC)
        if sys_low is not None and decided < 0 and weak < 0:
            decided, _ = self._levels(sys_low, with_weak=False)
        if decided >= 0:
            return self._names_out[decided]
        if weak >= 0:
            return self._names_out[weak]
        return None if prompt is None else _cap.CHAT

    # ---------------------------------------------------------------------------- language

    def _language(self, raw: bytes) -> str:
        if not self._non_ascii.search(raw):
            return "latin"
        for label, rx in self._scripts:
            if rx.search(raw):
                return label
        return "latin"
