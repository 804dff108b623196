"""Mark: a keyed, per-campaign mark in answer text, so outputs (and models trained on them) can be traced.

Why. Withholding reasoning (``protect``) lowers what a distiller gets; a mark lets us *prove*
later where a copy came from: harvested answers found in a data set, a paste on the web, or a
student model that learnt from them. The gateway marks responses of a flagged campaign with
that campaign's tag (``Decision.mark_tag``) under a secret key held by the provider.

Two channels, with different jobs (docs/marking.md has the measurements and the limits):

(a) **Zero-width frames** — exact, fragile. ``HMAC-SHA256(key, "zw" | tag)`` truncated to 32
    bits, behind an 8-bit sync byte, written as five groups of eight zero-width characters
    (U+200B = 0, U+200C = 1), each group placed right after an ordinary space and before a plain
    word, a few words apart; at most three frames per text, one every ~120 words. Nothing is
    drawn for them, line breaking does not change (a break after the space stays where it
    was), NFKC leaves them alone. They decode exactly to the campaign, from one response. They
    are removed by anyone who looks — ``str.replace``, many "clean text" steps — so they only
    catch careless pipelines.

(b) **Keyed connector choice** — statistical, survives copy-paste, NFKC, whitespace and
    zero-width removal, and is the kind of signal a student can learn (a word choice keyed on
    its context, which imitation training fits; whether it did is what the test shows). English has
    interchangeable connector phrases: "for example" / "for instance", "Therefore," /
    "Thus,", "First," / "Firstly,", "toward" / "towards" (:data:`LEXICON`, 45 pairs). At every
    occurrence the variant is set to bit ``HMAC-SHA256(key, "lex" | tag | pair | previous
    word)`` (the previous word lower-cased; after a connector, that connector's pair). In
    text that was not marked for this tag, the observed variant agrees with the keyed one
    with probability exactly 1/2 at every distinct (pair, previous word) site,
    whatever the writer's habits, because the key is independent of the text; marked text
    agrees at every site. :func:`detect` counts agreements over distinct sites (majority vote
    when one site repeats) and reports the one-sided binomial p-value. Only the connector
    word changes; the meaning does not, and a reader sees ordinary English.

What is never touched: fenced and indented code, inline code, math (``$...$``, ``$$``,
``\\(...\\)``), HTML tags, URLs, block quotes and text in double quotes, and JSON answers
(content whose first non-blank character is ``{`` or ``[``). Numbers are never changed (the
channels only touch a connector phrase or the gap before a plain word).

Limits, honestly. Channel (b) is sparse: about one site per 1.3 KB of real assistant prose
(Anthropic hh-rlhf answers), one per 0.2 KB in connector-rich prose; at ``p <= 1e-3`` it needs
ten agreeing sites, so one 2 KB response is almost never enough on its own (docs/marking.md:
detection power by length). The evidence is meant to be pooled — :func:`detect` accepts many
texts (one account's answers, a scraped data set, samples from a suspect model) and pools
their sites. A paraphrase removes the signal; so does an adversary who reads this module and
rewrites every connector of :data:`LEXICON` to one fixed variant (the key stays secret, the
vocabulary cannot). Whether a student model absorbs the bias depends on how much marked data
it saw and how it was trained; this module gives the test, it cannot promise the effect. If a
student agrees with the keyed choice at a rate ``q`` instead of 1, the sites needed grow fast
(about 50 at q = 0.8, 480 at q = 0.6). English (Latin-script) prose only: other languages and
code-only answers carry no mark. Zero-width characters add a few tokens per
response and can break exact-match search of copied text; marks only go to flagged traffic.
p-values are per campaign; with many candidate tags use :attr:`MarkEvidence.p_adjusted`
(Bonferroni).

Streaming. :class:`StreamMarker` marks text deltas as they arrive, holding back only a word
that may still continue, or the few words of a connector phrase that may still match (and an
unfinished code fence, URL or HTML tag); its concatenated output equals :func:`mark_text` of
the concatenated input for every split (one engine serves both).
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_ALPHA",
    "LEXICON",
    "ZERO_WIDTH",
    "ChatStreamMarker",
    "MarkEvidence",
    "MarkReport",
    "StreamMarker",
    "decode_zero_width",
    "detect",
    "lexical_sites",
    "mark_chat_completion",
    "mark_response",
    "mark_text",
    "strip_zero_width",
    "zero_width_tag",
]

JSON = dict[str, Any]

#: p-value (after Bonferroni over the candidates) at or below which a campaign is "detected".
DEFAULT_ALPHA = 1e-3

_ZW0 = "\u200b"  # ZERO WIDTH SPACE: bit 0
_ZW1 = "\u200c"  # ZERO WIDTH NON-JOINER: bit 1
#: Invisible format characters removed before the lexical scan (ours and their usual kin).
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_SYNC = 0xB4
_FRAME_BYTES = 5  # sync + 32-bit tag
_ZW_START = 3  # first eligible word gap used
_ZW_GAP = 2  # eligible gaps between two groups of a frame
_ZW_PERIOD = 120  # eligible gaps between frame starts
_ZW_MAX_FRAMES = 3
_ZW_SLOTS = tuple(
    _ZW_START + f * _ZW_PERIOD + g * _ZW_GAP for f in range(_ZW_MAX_FRAMES) for g in range(_FRAME_BYTES)
)  # the eligible gaps (0-based) that receive a group
_ZW_LAST_GAP = _ZW_SLOTS[-1]
_ZW_RUN = re.compile("[\u200b\u200c]+")
_ZW_STRIP = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")

# Connector pairs: (variant 0, variant 1), and where they may be swapped.
#   "any"      anywhere in prose, as whole words;
#   "initial," at the start of a sentence, capitalised, followed by a comma;
#   "initial"  at the start of a sentence, capitalised, followed by a space.
# Every pair is interchangeable without a change of meaning in its position. Pairs that are
# only *usually* equivalent ("Finally," can mean "at last"; "That is," can be a pronoun
# and a verb; "since" can be temporal) are left out on purpose.
#: The lexical channel's vocabulary: ``((variant0, variant1), position)``.
LEXICON: tuple[tuple[tuple[str, str], str], ...] = (
    (("for example", "for instance"), "any"),
    (("toward", "towards"), "any"),
    (("afterward", "afterwards"), "any"),
    (("moreover", "furthermore"), "any"),
    (("nevertheless", "nonetheless"), "any"),
    (("keep in mind", "bear in mind"), "any"),
    (("as mentioned", "as noted"), "any"),
    (("a variety of", "a range of"), "any"),
    (("in order to", "so as to"), "any"),
    (("each other", "one another"), "any"),
    (("in spite of", "despite"), "any"),
    (("even though", "although"), "any"),
    (("maybe", "perhaps"), "any"),
    (("kind of", "sort of"), "any"),
    (("worth noting", "worth mentioning"), "any"),
    (("in the long run", "in the long term"), "any"),
    (("in addition", "additionally"), "initial,"),
    (("therefore", "thus"), "initial,"),
    (("in summary", "to summarize"), "initial,"),
    (("in conclusion", "to conclude"), "initial,"),
    (("in short", "in brief"), "initial,"),
    (("first", "firstly"), "initial,"),
    (("second", "secondly"), "initial,"),
    (("third", "thirdly"), "initial,"),
    (("as a result", "consequently"), "initial,"),
    (("in general", "generally"), "initial,"),
    (("specifically", "in particular"), "initial,"),
    (("similarly", "likewise"), "initial,"),
    (("in other words", "put another way"), "initial,"),
    (("of course", "naturally"), "initial,"),
    (("essentially", "basically"), "initial,"),
    (("by contrast", "in contrast"), "initial,"),
    (("that said", "that being said"), "initial,"),
    (("luckily", "fortunately"), "initial,"),
    (("in any case", "in any event"), "initial,"),
    (("broadly speaking", "generally speaking"), "initial,"),
    (("put simply", "simply put"), "initial,"),
    (("for this reason", "because of this"), "initial,"),
    (("alternatively", "as an alternative"), "initial,"),
    (("to do this", "to do so"), "initial,"),
    (("in the meantime", "meanwhile"), "initial,"),
    (("to begin with", "to start with"), "initial,"),
    (("overall", "on the whole"), "initial,"),
    (("typically", "usually"), "initial,"),
    (("make sure", "be sure"), "initial"),
)


@dataclass(frozen=True, slots=True)
class _Variant:
    group: int
    index: int
    text: str
    rule: str


def _index_lexicon() -> tuple[dict[str, tuple[_Variant, ...]], int]:
    by_first: dict[str, list[_Variant]] = defaultdict(list)
    seen: set[str] = set()
    for gid, (variants, rule) in enumerate(LEXICON):
        for i, text in enumerate(variants):
            if text in seen:
                raise AssertionError(f"lexicon variant {text!r} belongs to two pairs")
            seen.add(text)
            by_first[text.split(" ", 1)[0]].append(_Variant(gid, i, text, rule))
    longest = max(len(v) for pair, _ in LEXICON for v in pair)
    frozen = {k: tuple(sorted(v, key=lambda x: -len(x.text))) for k, v in by_first.items()}
    return frozen, longest


_BY_FIRST, _LONGEST = _index_lexicon()
_PREFIXES = frozenset(v[:i] for pair, _ in LEXICON for v in pair for i in range(1, len(v) + 1))
# Where the plain-prose fast path must stop: any character with a meaning of its own, or a
# word that may begin a connector phrase.


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex alternation shaped as a trie (``re`` tries alternatives one by one)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def walk(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + walk(child) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            return f"(?:{'|'.join(alts)})?" if alts else ""
        return alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"

    return walk(trie)


# Searched in the lower-cased buffer, ASCII word rules: both only ever add stops (``re`` is several
# times slower with IGNORECASE), and stopping early is always safe.
_INTERESTING = re.compile(
    r"[^\w \t,;'\-]|\b" + _trie_pattern(v for pair, _ in LEXICON for v in pair), re.ASCII
)
_INTERESTING_ANYCASE = re.compile(_INTERESTING.pattern, re.IGNORECASE)
# A zero-width gap inside a plain run: one space after a non-space, before a plain word + space.
_PLAIN_GAP = re.compile(r"(?<=\S) (?=[A-Za-z]{2,} )")
_PLAIN_NEUTRAL = " \t'-"

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"[ \t\r\f\v]+")
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_FENCE_PREFIX = re.compile(r"[ ]{0,3}(?:`*|~*)[ \t]*")
_HTML = re.compile(r"<[A-Za-z/!?][^<>\n]{0,300}>")
_HTML_MAX = 302
_PROSE_RUN = re.compile(r"[^\w\s`$\\<>\"“”\[\]()*_#+\-.!?:~{\u200b-\u200d\u2060\ufeff]+")
# Characters that leave "a sentence may start here" unchanged (markup around a first word).
_NEUTRAL = frozenset(" \t\r\f\v*_#>-+\"'“‘([")
_SENTENCE_END = frozenset(".!?:")
# What may directly precede a swapped phrase (else it is glued to something: "x.For").
_BEFORE_PHRASE = frozenset(' \t\r\f\v\n*_("“[')


def _tail_ok_any(buf: str, end: int, final: bool) -> bool | None:
    """Whether the text after an ``any`` phrase ends it as a word (None: need more text)."""
    if end >= len(buf):
        return None if not final else True
    c = buf[end]
    if c in ' \t\r\f\v\n,;:!?)"”':
        return True
    if c == ".":
        if end + 1 >= len(buf):
            return None if not final else True
        return buf[end + 1] in ' \t\r\f\v\n"”)'
    return False


def _cased(original: str, replacement: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def _check_key(key: bytes, tag: str) -> None:
    if not isinstance(key, bytes | bytearray) or not key:
        raise ValueError("mark key must be non-empty bytes (32 random bytes recommended)")
    if not isinstance(tag, str) or not tag:
        raise ValueError("mark tag (campaign id) must be a non-empty string")


def zero_width_tag(key: bytes, tag: str) -> bytes:
    """The 32-bit tag channel (a) writes for a campaign: ``HMAC-SHA256(key, "zw" | tag)[:4]``."""
    _check_key(key, tag)
    return hmac.new(bytes(key), b"distillshield/mark/v1/zw\x00" + tag.encode(), hashlib.sha256).digest()[:4]


class _Keyed:
    """The keyed bit of channel (b) for one (key, campaign), cached per site."""

    __slots__ = ("_base", "_cache")

    def __init__(self, key: bytes, tag: str) -> None:
        _check_key(key, tag)
        self._base = hmac.new(
            bytes(key), b"distillshield/mark/v1/lex\x00" + tag.encode() + b"\x00", hashlib.sha256
        )
        self._cache: dict[tuple[int, str], int] = {}

    def bit(self, group: int, ctx: str) -> int:
        site = (group, ctx)
        bit = self._cache.get(site)
        if bit is None:
            h = self._base.copy()
            h.update(f"{group}\x00{ctx}".encode())
            bit = self._cache[site] = h.digest()[0] & 1
        return bit


def _frame_groups(tag32: bytes) -> tuple[str, ...]:
    groups = []
    for byte in bytes([_SYNC]) + tag32:
        groups.append("".join(_ZW1 if byte >> (7 - i) & 1 else _ZW0 for i in range(8)))
    return tuple(groups)


# --------------------------------------------------------------------------------------------
# The engine: one incremental scanner for marking (stream and whole text) and for detection
# --------------------------------------------------------------------------------------------

_UNDECIDED, _PROSE, _PASSTHROUGH = 0, 1, 2


class _Engine:
    """Walks text left to right, tracking markdown regions, sentence starts and the previous
    word; at connector sites it swaps (embed) or records (scan), and it places zero-width
    groups. ``push`` consumes as far as the text is final and keeps the rest in ``_buf``.

    Every decision reads only text that is already in the buffer *and cannot change* with
    more input; when it would have to look past the end of the buffer, the engine stops and
    waits. That is what makes any split of the input give the same output.
    """

    def __init__(
        self, keyed: _Keyed | None, zw_groups: tuple[str, ...] | None, *, lexical: bool = True
    ) -> None:
        self._keyed = keyed
        self._zw = zw_groups
        self._lexical = lexical
        self._buf = ""
        self._out: list[str] = []
        self.sites: list[tuple[int, str, int]] = []  # (pair, previous word, observed variant)
        self.swaps = 0
        self.zw_groups = 0
        self.passthrough = False
        # state
        self._mode = _UNDECIDED
        self._fence: str | None = None  # the opening fence run while inside fenced code
        self._ticks = 0  # inline code opener length (0: not in inline code)
        self._math: str | None = None  # closing delimiter while inside math
        self._quote: str | None = None  # closing quote while inside a quotation
        self._line_start = True
        self._line_blocked = False  # a block quote or indented-code line
        self._sentence = True
        self._last = "\n"  # last character consumed (zero-width characters ignored)
        self._spaces = 0  # length of the space run just consumed
        self._before_spaces = "\n"  # the character before that run
        self._ctx = ""
        self._gaps = 0  # eligible word gaps seen (zero-width schedule)
        self._low = ""  # the buffer lower-cased, while ``_run`` walks it

    # -- helpers --------------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if text:
            self._out.append(text)

    def _consume(self, text: str) -> None:
        """Emit ``text`` unchanged and update the character-level state from its end."""
        if not text:
            return
        self._out.append(text)
        self._track(text)

    def _track(self, text: str) -> None:
        stripped = text.rstrip(" \t\r\f\v")
        trailing = len(text) - len(stripped)
        if stripped:
            if trailing:
                self._spaces = trailing
                self._before_spaces = stripped[-1]
            else:
                self._spaces = 0
            self._last = text[-1]
        else:
            if self._spaces == 0:
                self._before_spaces = self._last
            self._spaces += trailing
            self._last = text[-1]

    def _protected(self) -> bool:
        return bool(
            self._fence
            or self._ticks
            or self._math
            or self._quote
            or self._line_blocked
            or self._mode != _PROSE
        )

    def _newline(self) -> None:
        self._consume("\n")
        self._line_start = True
        self._line_blocked = False
        self._ticks = 0
        self._quote = None
        if self._math in ("$", "\\)"):
            self._math = None
        self._sentence = True

    # -- driver -----------------------------------------------------------------------------------

    def push(self, text: str) -> str:
        self._buf += text
        self._run(final=False)
        return self._take()

    def finish(self) -> str:
        self._run(final=True)
        return self._take()

    def _take(self) -> str:
        out = "".join(self._out)
        self._out.clear()
        return out

    def _run(self, final: bool) -> None:
        buf = self._buf
        low = buf.lower()
        self._low = low if len(low) == len(buf) else ""  # a few characters lower-case to two
        pos = 0
        n = len(buf)
        while pos < n:
            new = self._step(buf, pos, final)
            if new is None:
                break
            pos = new
        self._buf = buf[pos:]

    def _step(self, buf: str, pos: int, final: bool) -> int | None:
        c = buf[pos]
        n = len(buf)
        if self._mode == _PASSTHROUGH:
            self._emit(buf[pos:])
            return n
        if self._mode == _UNDECIDED:
            first = pos
            while first < n and (buf[first].isspace() or buf[first] in ZERO_WIDTH):
                first += 1
            if first == n:
                if not final:
                    return None  # only blank so far: JSON or prose is not known yet
                self._emit(buf[pos:])
                return n
            if buf[first] in "{[":
                self._mode = _PASSTHROUGH
                self.passthrough = True
                self._emit(buf[pos:])
                return n
            self._mode = _PROSE
        if c in ZERO_WIDTH:  # transparent: never changes the state
            self._emit(c)
            return pos + 1
        if c == "\n":
            self._newline()
            return pos + 1
        if self._fence is not None:
            return self._in_fence(buf, pos, final)
        if self._line_start:
            return self._at_line_start(buf, pos, final)
        if self._ticks:
            return self._in_code(buf, pos, final)
        if self._math is not None:
            return self._in_math(buf, pos, final)
        if c.isalnum() or c in " \t,;'-_":
            fast = self._plain(buf, pos, final)
            if fast is not None:
                return fast
        if c == "`":
            end = pos
            while end < n and buf[end] == "`":
                end += 1
            if end == n and not final:
                return None
            self._ticks = end - pos
            self._consume(buf[pos:end])
            self._sentence = False
            return end
        if c == "$" or c == "\\":
            return self._math_open(buf, pos, final)
        if c == "<":
            m = _HTML.match(buf, pos)
            if m is None:
                rest = buf[pos + 1 :]
                if (
                    not final
                    and len(rest) < _HTML_MAX
                    and not any(ch in "<>\n" for ch in rest)
                    and (not rest or rest[0].isalpha() or rest[0] in "/!?")
                ):
                    return None  # a tag may still be arriving
                self._consume("<")
                self._sentence = False
                return pos + 1
            self._consume(m.group())
            return m.end()
        if c in '"“”':
            if c == '"':
                self._quote = None if self._quote == '"' else ('"' if self._quote is None else self._quote)
            elif c == "“" and self._quote is None:
                self._quote = "”"
            elif c == "”" and self._quote == "”":
                self._quote = None
            self._consume(c)
            return pos + 1
        if c.isspace():
            m = _SPACE.match(buf, pos)
            end = m.end() if m else pos + 1
            self._consume(buf[pos:end])
            return end
        if c.isalnum() or c == "_":
            return self._word(buf, pos, final)
        m = _PROSE_RUN.match(buf, pos)
        end = m.end() if m else pos + 1
        self._consume(buf[pos:end])
        for ch in reversed(buf[pos:end]):  # the last character that says something decides
            if ch in _SENTENCE_END:
                self._sentence = True
                break
            if ch not in _NEUTRAL:
                self._sentence = False
                break
        return end

    def _plain(self, buf: str, pos: int, final: bool) -> int | None:
        """Consume a run of plain prose at once (same result as word-by-word), or None.

        The run stops before anything the word-by-word path treats specially (markup, sentence
        ends, a possible connector) and gives its last word back, since that word's meaning may
        depend on what follows (a URL scheme, a word still arriving).
        """
        m = _INTERESTING.search(self._low, pos) if self._low else _INTERESTING_ANYCASE.search(buf, pos)
        end = m.start() if m is not None else len(buf) if final else self._open_tail(buf, pos)
        while end > pos and (buf[end - 1].isalnum() or buf[end - 1] == "_"):
            end -= 1
        if end <= pos:
            return None
        seg = buf[pos:end]
        if self._zw is not None and self._gaps <= _ZW_LAST_GAP and not self._protected():
            if self._spaces == 0:
                prefix = self._last
            elif self._spaces == 1 and self._last == " ":
                prefix = self._before_spaces + " "
            else:
                prefix = "  "
            probe = prefix + seg
            count = probe.count(" ") and len(_PLAIN_GAP.findall(probe))
            if bisect.bisect_left(_ZW_SLOTS, self._gaps) == bisect.bisect_left(_ZW_SLOTS, self._gaps + count):
                self._gaps += count  # no group is due in this run
                self._out.append(seg)
            else:
                start = 0
                for gap in _PLAIN_GAP.finditer(probe):
                    at = gap.end() - len(prefix)
                    group = self._schedule()
                    if group is not None:
                        self._out.append(seg[start:at])
                        self._out.append(group)
                        start = at
                self._out.append(seg[start:])
        else:
            self._out.append(seg)
        self._track(seg)
        k = len(seg)
        while k and not (seg[k - 1].isalnum() or seg[k - 1] == "_"):
            k -= 1
        if k:
            j = k
            while j and (seg[j - 1].isalnum() or seg[j - 1] == "_"):
                j -= 1
            self._ctx = seg[j:k].lower()
        if seg.strip(_PLAIN_NEUTRAL):
            self._sentence = False
        return end

    def _open_tail(self, buf: str, pos: int) -> int:
        """Where a connector that may still be arriving starts (else the buffer's end)."""
        n = len(buf)
        low = self._low or buf.lower()
        for p in range(max(pos, n - _LONGEST), n):
            if (p == 0 or not (buf[p - 1].isalnum() or buf[p - 1] == "_")) and low[p:] in _PREFIXES:
                return p
        return n

    # -- regions ----------------------------------------------------------------------------------

    def _at_line_start(self, buf: str, pos: int, final: bool) -> int | None:
        n = len(buf)
        end = pos
        while end < n and buf[end] in " \t":
            end += 1
        if end == n and not final:
            return None
        indent = buf[pos:end]
        if "\t" in indent or len(indent) >= 4:
            self._line_start = False
            self._line_blocked = True  # indented code (or deep list continuation): left alone
            self._consume(indent)
            return end
        if end < n and buf[end] in "`~":
            run = end
            while run < n and buf[run] == buf[end]:
                run += 1
            if run == n and not final:
                return None
            if run - end >= 3:
                nl = buf.find("\n", run)
                if nl < 0 and not final:
                    return None  # the info string belongs to the opener: wait for its end
                stop = n if nl < 0 else nl
                self._fence = buf[end:run]
                self._line_start = False
                self._consume(buf[pos:stop])
                return stop
        self._line_start = False
        if end < n and buf[end] == ">":
            self._line_blocked = True
        self._consume(indent)
        return end

    def _in_fence(self, buf: str, pos: int, final: bool) -> int | None:
        fence = self._fence
        assert fence is not None
        n = len(buf)
        if self._line_start:
            line_end = buf.find("\n", pos)
            if line_end < 0 and not final and _FENCE_PREFIX.fullmatch(buf, pos):
                return None  # this line may still turn out to close the fence
            line_end = n if line_end < 0 else line_end
            line = buf[pos:line_end]
            closing = _FENCE.match(line)
            if (
                (line_end < n or final)
                and closing
                and closing.group(1)[0] == fence[0]
                and len(closing.group(1)) >= len(fence)
                and not line[closing.end() :].strip()
            ):
                self._fence = None
            self._line_start = False
            self._consume(line)
            return line_end
        line_end = buf.find("\n", pos)
        line_end = n if line_end < 0 else line_end
        self._consume(buf[pos:line_end])
        return line_end

    def _in_code(self, buf: str, pos: int, final: bool) -> int | None:
        n = len(buf)
        tick = buf.find("`", pos)
        nl = buf.find("\n", pos)
        stop = min(x for x in (tick, nl, n) if x >= 0)
        if stop > pos:
            self._consume(buf[pos:stop])
            return stop
        # at a backtick run
        end = pos
        while end < n and buf[end] == "`":
            end += 1
        if end == n and not final:
            return None
        if end - pos == self._ticks:
            self._ticks = 0
        self._consume(buf[pos:end])
        return end

    def _math_open(self, buf: str, pos: int, final: bool) -> int | None:
        n = len(buf)
        if pos + 1 >= n and not final:
            return None
        nxt = buf[pos + 1] if pos + 1 < n else ""
        if buf[pos] == "$":
            if nxt == "$":
                self._math = "$$"
                self._consume("$$")
                return pos + 2
            if nxt and not nxt.isspace() and not nxt.isdigit():
                self._math = "$"
            self._consume("$")
            return pos + 1
        if nxt in ("(", "["):
            self._math = "\\)" if nxt == "(" else "\\]"
            self._consume(buf[pos : pos + 2])
            return pos + 2
        self._consume(buf[pos : pos + 2] if nxt and nxt != "\n" else "\\")
        return pos + 2 if nxt and nxt != "\n" else pos + 1

    def _in_math(self, buf: str, pos: int, final: bool) -> int | None:
        closing = self._math
        assert closing is not None
        n = len(buf)
        c = buf[pos]
        if c in "$\\":
            if pos + len(closing) > n and not final:
                return None
            if buf.startswith(closing, pos):
                self._math = None
                self._consume(closing)
                return pos + len(closing)
            if c == "\\" and pos + 1 < n and buf[pos + 1] != "\n":
                self._consume(buf[pos : pos + 2])
                return pos + 2
            self._consume(c)
            return pos + 1
        stop = pos + 1
        while stop < n and buf[stop] not in "$\\\n":
            stop += 1
        self._consume(buf[pos:stop])
        return stop

    # -- words --------------------------------------------------------------------------------------

    def _word(self, buf: str, pos: int, final: bool) -> int | None:
        n = len(buf)
        m = _WORD.match(buf, pos)
        assert m is not None
        end = m.end()
        if end == n and not final:
            return None
        word = m.group()
        after = buf[end] if end < n else ""
        # URLs ("scheme://...", "www.") are skipped whole and do not count as words.
        if after == ":" and not final and n - end < 3 and "://".startswith(buf[end:]):
            return None
        if buf.startswith("://", end) or (after == "." and word.lower() == "www"):
            stop = end
            while stop < n and not buf[stop].isspace():
                stop += 1
            if stop == n and not final:
                return None
            self._consume(buf[pos:stop])
            self._sentence = False
            return stop
        prose = not self._protected()
        if prose and self._lexical and self._last in _BEFORE_PHRASE:
            site = self._site(buf, pos, word, final)
            if site is None:
                return None
            if site is not False:
                variant, phrase_end = site
                return self._phrase(buf, pos, variant, phrase_end)
        if prose and after == " ":
            self._gap(word)
        self._consume(word)
        self._ctx = word.lower()
        self._sentence = False
        return end

    def _site(
        self, buf: str, pos: int, word: str, final: bool
    ) -> tuple[_Variant, int] | Literal[False] | None:
        """The connector variant starting at ``pos``: (variant, end), False if none, None to wait."""
        candidates = _BY_FIRST.get(word.lower())
        if not candidates:
            return False
        n = len(buf)
        for variant in candidates:
            size = len(variant.text)
            if variant.rule != "any" and not (self._sentence and word[0].isupper()):
                continue
            span = buf[pos : pos + size]
            if len(span) < size:
                if not final and variant.text.startswith(span.lower()):
                    return None
                continue
            if span.lower() != variant.text:
                continue
            if variant.rule == "any":
                ok = _tail_ok_any(buf, pos + size, final)
                if ok is None:
                    return None
                if not ok or not (span.islower() or span.isupper() or span == _cased(span, variant.text)):
                    continue
            else:
                if span != _cased("A", variant.text):  # "For example", not "For Example"
                    continue
                if pos + size >= n:
                    if not final:
                        return None
                    continue
                want = "," if variant.rule == "initial," else " "
                if buf[pos + size] != want:
                    continue
            return variant, pos + size
        return False

    def _phrase(self, buf: str, pos: int, variant: _Variant, end: int) -> int:
        original = buf[pos:end]
        pair, _ = LEXICON[variant.group]
        ctx = self._ctx
        if buf[end : end + 1] == " " and " " not in original:
            self._gap(original)
        if self._keyed is not None:  # embed
            want = self._keyed.bit(variant.group, ctx)
            text = _cased(original, pair[want]) if want != variant.index else original
            if text != original:
                self.swaps += 1
            self.sites.append((variant.group, ctx, want))
        else:  # scan
            text = original
            self.sites.append((variant.group, ctx, variant.index))
        self._consume(text)
        self._ctx = f"\u00a7{variant.group}"
        self._sentence = False
        return end

    def _gap(self, word: str) -> None:
        """A word gap for the zero-width channel: one space, after text, before a plain word."""
        if self._zw is None or self._spaces != 1 or self._last != " " or self._before_spaces.isspace():
            return
        if len(word) < 2 or not word.isascii() or not word.isalpha():
            return
        group = self._schedule()
        if group is not None:
            self._out.append(group)

    def _schedule(self) -> str | None:
        """Count one eligible gap; the zero-width group that goes into it, if any."""
        assert self._zw is not None
        gap = self._gaps
        self._gaps += 1
        rel = gap - _ZW_START
        if rel < 0:
            return None
        frame, offset = divmod(rel, _ZW_PERIOD)
        if frame >= _ZW_MAX_FRAMES or offset % _ZW_GAP or offset // _ZW_GAP >= len(self._zw):
            return None
        self.zw_groups += 1
        return self._zw[offset // _ZW_GAP]


# --------------------------------------------------------------------------------------------
# Marking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkReport:
    """What marking did: zero-width groups written (5 per frame), connector sites seen and
    swapped (a site already on its keyed variant is left as is), and whether the text was
    skipped as JSON."""

    zero_width_groups: int = 0
    lexical_sites: int = 0
    lexical_swaps: int = 0
    skipped_json: bool = False

    def __add__(self, other: MarkReport) -> MarkReport:
        return MarkReport(
            self.zero_width_groups + other.zero_width_groups,
            self.lexical_sites + other.lexical_sites,
            self.lexical_swaps + other.lexical_swaps,
            self.skipped_json or other.skipped_json,
        )


def _engine(key: bytes, tag: str, zero_width: bool, lexical: bool) -> _Engine:
    keyed = _Keyed(key, tag)
    groups = _frame_groups(zero_width_tag(key, tag)) if zero_width else None
    return _Engine(keyed, groups, lexical=lexical)


def _report(engine: _Engine) -> MarkReport:
    return MarkReport(engine.zw_groups, len(engine.sites), engine.swaps, engine.passthrough)


class StreamMarker:
    """Mark a streamed answer's text deltas for one campaign.

    ``feed(delta)`` returns the marked text that is final so far (possibly ``""``: a word or a
    connector phrase that may still continue is held back); ``finish()`` returns the rest.
    Concatenated, the output equals ``mark_text(whole_text, key, tag)``.

    >>> m = StreamMarker(b"k" * 32, "C-1")
    >>> out = m.feed("Plain text, for exam") + m.feed("ple, stays readable.") + m.finish()
    >>> out == mark_text("Plain text, for example, stays readable.", b"k" * 32, "C-1")
    True
    """

    def __init__(self, key: bytes, tag: str, *, zero_width: bool = True, lexical: bool = True) -> None:
        self._engine = _engine(key, tag, zero_width, lexical)

    def feed(self, delta: str) -> str:
        return self._engine.push(delta)

    def finish(self) -> str:
        return self._engine.finish()

    @property
    def held(self) -> int:
        """Characters received but not yet released."""
        return len(self._engine._buf)

    @property
    def report(self) -> MarkReport:
        return _report(self._engine)


def _mark(text: str, key: bytes, tag: str, zero_width: bool, lexical: bool) -> tuple[str, MarkReport]:
    engine = _engine(key, tag, zero_width, lexical)
    out = engine.push(text) + engine.finish()
    return out, _report(engine)


def mark_text(text: str, key: bytes, tag: str, *, zero_width: bool = True, lexical: bool = True) -> str:
    """Mark ``text`` for campaign ``tag`` under ``key`` (both channels unless switched off).

    Deterministic: the same (text, key, tag) always gives the same output.
    """
    return _mark(text, key, tag, zero_width, lexical)[0]


def mark_chat_completion(body: JSON, key: bytes, tag: str) -> tuple[JSON, MarkReport]:
    """Mark every choice's ``message.content`` (or legacy ``text``) of a chat completion body.

    Reasoning fields, tool calls and ``<think>`` summaries are not the answer and are left to
    :mod:`~distillshield.gateway.protect`; the input body is not mutated.
    """
    report = MarkReport()
    choices = body.get("choices")
    if not isinstance(choices, list):
        return body, report
    new_choices: list[Any] = []
    for choice in choices:
        new_choice = choice
        if isinstance(choice, dict):
            msg = choice.get("message")
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                text, r = _mark(msg["content"], key, tag, True, True)
                report += r
                new_choice = {**choice, "message": {**msg, "content": text}}
            elif isinstance(choice.get("text"), str):
                text, r = _mark(choice["text"], key, tag, True, True)
                report += r
                new_choice = {**choice, "text": text}
        new_choices.append(new_choice)
    return {**body, "choices": new_choices}, report


def mark_response(body: JSON, key: bytes, tag: str) -> tuple[JSON, MarkReport]:
    """Mark the ``output_text`` parts of a Responses API body (input not mutated)."""
    report = MarkReport()
    output = body.get("output")
    if not isinstance(output, list):
        return body, report
    new_output: list[Any] = []
    for item in output:
        if isinstance(item, dict) and item.get("type") == "message" and isinstance(item.get("content"), list):
            parts: list[Any] = []
            for part in item["content"]:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "output_text"
                    and isinstance(part.get("text"), str)
                ):
                    text, r = _mark(part["text"], key, tag, True, True)
                    report += r
                    part = {**part, "text": text}
                parts.append(part)
            item = {**item, "content": parts}
        new_output.append(item)
    return {**body, "output": new_output}, report


class ChatStreamMarker:
    """Mark a streamed chat completion chunk by chunk (one :class:`StreamMarker` per choice).

    Held-back text of a choice is released in the chunk that carries its ``finish_reason``
    (clients stop reading a choice there), or by :meth:`finish` if none came.
    """

    def __init__(self, key: bytes, tag: str) -> None:
        _check_key(key, tag)
        self._key = bytes(key)
        self._tag = tag
        self._markers: dict[int, StreamMarker] = {}
        self._envelope: JSON = {"object": "chat.completion.chunk"}

    @property
    def report(self) -> MarkReport:
        total = MarkReport()
        for marker in self._markers.values():
            total += marker.report
        return total

    def feed(self, chunk: JSON) -> list[JSON]:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            return [chunk]
        self._envelope = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        new_choices: list[Any] = []
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                new_choices.append(choice)
                continue
            index = choice.get("index", 0)
            content = delta.get("content")
            finishing = choice.get("finish_reason") is not None
            marker = self._markers.get(index)
            if isinstance(content, str) or (finishing and marker is not None):
                if marker is None:
                    marker = self._markers[index] = StreamMarker(self._key, self._tag)
                text = marker.feed(content if isinstance(content, str) else "")
                if finishing:
                    text += marker.finish()
                if text != content and not (content is None and not text):
                    choice = {**choice, "delta": {**delta, "content": text}}
            new_choices.append(choice)
        return [{**chunk, "choices": new_choices}]

    def finish(self) -> list[JSON]:
        out: list[JSON] = []
        for index, marker in sorted(self._markers.items()):
            tail = marker.finish()
            if tail:
                part = {"index": index, "delta": {"content": tail}, "finish_reason": None}
                out.append({**self._envelope, "choices": [part]})
        return out


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkEvidence:
    """The evidence that text carries campaign ``tag``'s mark.

    ``zero_width_frames``: frames of channel (a) that decode exactly to this campaign (one is
    proof, up to a 2^-32 chance). ``lexical_sites`` / ``lexical_matches``: distinct connector
    sites of channel (b) and how many agree with the keyed choice; ``p_value`` is
    ``P(Binomial(sites, 1/2) >= matches)`` — the chance unmarked text agrees this well —
    and ``p_adjusted`` multiplies it by the number of candidates tested (Bonferroni).
    """

    tag: str
    zero_width_frames: int
    lexical_sites: int
    lexical_matches: int
    p_value: float
    p_adjusted: float

    @property
    def z(self) -> float:
        """Standardised agreement: (matches - sites/2) / sqrt(sites/4); 0 without sites."""
        if not self.lexical_sites:
            return 0.0
        return (self.lexical_matches - self.lexical_sites / 2) / math.sqrt(self.lexical_sites / 4)

    def is_detected(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.zero_width_frames > 0 or self.p_adjusted <= alpha

    @property
    def detected(self) -> bool:
        """Exact decode, or ``p_adjusted <= DEFAULT_ALPHA``."""
        return self.is_detected()


def strip_zero_width(text: str) -> str:
    """``text`` without zero-width / invisible format characters (what a cleaner would do)."""
    return _ZW_STRIP.sub("", text)


def decode_zero_width(text: str) -> list[bytes]:
    """Every 32-bit tag written by channel (a) in ``text``, in order (unkeyed: raw tags).

    Compare with :func:`zero_width_tag` of candidate campaigns; :func:`detect` does.
    """
    values: list[int | None] = []
    for run in _ZW_RUN.findall(text):
        values.append(int("".join("1" if ch == _ZW1 else "0" for ch in run), 2) if len(run) == 8 else None)
    tags = []
    i = 0
    while i + _FRAME_BYTES <= len(values):
        if values[i] == _SYNC and all(v is not None for v in values[i + 1 : i + _FRAME_BYTES]):
            tags.append(bytes(v for v in values[i + 1 : i + _FRAME_BYTES] if v is not None))
            i += _FRAME_BYTES
        else:
            i += 1
    return tags


def lexical_sites(text: str) -> list[tuple[int, str, int]]:
    """Connector sites of ``text`` as the detector sees them: ``(pair, previous word, variant)``.

    The text is cleaned first (zero-width characters removed, NFKC), so what a careless or a
    careful copier does to it does not move the sites.
    """
    engine = _Engine(None, None)
    engine.push(unicodedata.normalize("NFKC", strip_zero_width(text)))
    engine.finish()
    return engine.sites


def _binomial_sf(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exact."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / (1 << n)


def detect(text: str | Iterable[str], key: bytes, candidate_tags: Sequence[str]) -> list[MarkEvidence]:
    """Test ``text`` (or many texts, pooled) for the mark of each candidate campaign.

    Channel (a): exact decode of zero-width frames. Channel (b): sites are pooled over all
    texts and deduplicated by (pair, previous word) — the keyed choice is the same at equal
    sites, so repeats are not independent evidence; a repeated site counts once, with the
    majority variant (ties dropped). Returns one :class:`MarkEvidence` per candidate, most
    convincing first.
    """
    texts = [text] if isinstance(text, str) else list(text)
    tags = list(dict.fromkeys(candidate_tags))
    if not tags:
        return []
    for tag in tags:
        _check_key(key, tag)
    decoded: list[bytes] = []
    votes: dict[tuple[int, str], int] = defaultdict(int)
    for t in texts:
        decoded += decode_zero_width(t)
        for group, ctx, observed in lexical_sites(t):
            votes[(group, ctx)] += 1 if observed else -1
    sites = [(site, 1 if v > 0 else 0) for site, v in votes.items() if v != 0]
    out = []
    for tag in tags:
        keyed = _Keyed(key, tag)
        matches = sum(1 for (group, ctx), observed in sites if keyed.bit(group, ctx) == observed)
        frames = decoded.count(zero_width_tag(key, tag))
        p = _binomial_sf(matches, len(sites))
        out.append(MarkEvidence(tag, frames, len(sites), matches, p, min(1.0, p * len(tags))))
    out.sort(key=lambda e: (not e.detected, -e.zero_width_frames, e.p_value, e.tag))
    return out
