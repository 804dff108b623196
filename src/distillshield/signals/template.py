"""Template fingerprint: which prompt *wrapper* an exchange was sent with (docs/signals-template.md).

Distillation harvests through templates: one wrapper ("Solve the following problem step by
step ... Problem: {q}") around thousands of different slot values, sent from many accounts.
Each prompt looks ordinary; the repetition of the wrapper across volume and accounts does
not. The fingerprint makes that repetition countable without keeping any text:

* :func:`skeleton` reduces a prompt to its wrapper: lowercase, whitespace collapsed, and the
  parts that vary between uses of one template replaced by :data:`MASK`;
* :func:`template_ids` hashes the skeleton to 16 hex digits (equal skeleton, equal id);
* :func:`minhash` gives a MinHash signature of the skeleton's shingles, so that ids whose
  skeletons are *nearly* equal can be grouped into families (:mod:`distillshield.signals.lsh`).

What is masked, in this order (each step is a few RE2 passes of ``pyarrow.compute`` over the
whole batch, or numpy over per-line features; there is no per-row Python):

1. one pass over the raw text: inline code, quoted spans (double quotes greedily from the
   first to the last on a line, so a quoted passage with quotes inside goes whole; also
   typographic and CJK quotes, single-quoted spans), URLs, e-mail addresses, numbers
   (money, decimals, percentages, times);
2. per line, classified for the whole batch at once: fenced code blocks; list items
   (``- option`` -> ``- §``); the value of ``label: value`` lines (``Question: ...``,
   ``Review: ...``, also an instruction ending in a colon and its text); the line after a
   lead-in that ends in a colon; transcripts (three or more consecutive one-word labels:
   ``Amanda: ...`` / ``Jerry: ...``); long lines (:data:`LONG_LINE_BYTES`) and paragraphs of
   several prose lines (:data:`BLOCK_BYTES`), which are pasted content, except a leading
   ``label:`` line, a short last line of the prompt (``<text>`` / ``Let's think step by
   step.``), a paragraph followed by labelled fields (it is their instruction), and the
   closing question of a long last line (``<review> Did the reviewer like the movie?``);
   in the remaining lines, sentences of :data:`LONG_SENTENCE_CHARS` or more;
3. in prompts of at least :data:`NAMES_MIN_CHARS` characters, capitalised words in
   mid-sentence (names, places, titles);
4. lowercase, collapse whitespace, merge adjacent masks (``§, § and §`` -> ``§``), so the
   number of list items or transcript turns does not matter.

A prompt that is almost all slot (a pasted essay, a bare long question) would otherwise become
``§`` and share its id with every other such prompt; when fewer than
:data:`MIN_LITERAL_LETTERS` letters of wrapper survive, the skeleton is the text after step 1
only (head and tail of very long text), which identifies the prompt rather than a template.

Masking a wrapper's own fixed text is harmless (it is masked the same way every time); the
risk is leaving slot content behind (one template splits into many ids) or masking so much
that two wrappers coincide. The thresholds balance the two on public T0 template data and
real user prompts (docs/signals-template.md), not on the simulator's templates. Lengths are
UTF-8 bytes, which weighs a CJK character (3 bytes) like a short English word; no rule needs
spaces between words.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.signals._text import as_array, hash_strings, hex16, null_or_empty, splitmix64

__all__ = [
    "DEFAULT_NGRAM",
    "DEFAULT_NUM_PERM",
    "MASK",
    "minhash",
    "signatures",
    "skeleton",
    "skeleton_ids",
    "template_ids",
]

#: What replaces a slot. Not a character prompts normally contain, and one code point, so
#: merging adjacent masks is a cheap regex.
MASK = "§"

#: A line at least this long (UTF-8 bytes, after step 1) is content, not instruction.
LONG_LINE_BYTES = 200
#: A paragraph of two or more prose lines at least this long together (UTF-8 bytes) is content.
BLOCK_BYTES = 100
#: A sentence at least this long (characters) inside a shorter line is content.
LONG_SENTENCE_CHARS = 100
#: Longest ``label`` in a ``label: value`` line (an instruction may end in a colon too).
LABEL_MAX_CHARS = 100
#: A one-word label at most this long is a possible transcript turn (speaker name).
TURN_LABEL_CHARS = 24
#: This many consecutive one-word-label lines are a transcript (two are ``Question:/Answer:``).
TURN_RUN = 3
#: A long last line keeps its closing sentence when that is a question or a lead-in of at
#: most this many characters; a content paragraph keeps its last line when it is the
#: prompt's last and at most this many bytes (the instruction appended to pasted content).
KEEP_LAST_CHARS = 80
#: Below this many surviving letters the skeleton falls back to the lightly masked text.
MIN_LITERAL_LETTERS = 4
#: Capitalised words are masked only in prompts at least this long: in a short request the
#: entity *is* the request ("What is Oracle?"), in a long wrapper it is slot fill.
NAMES_MIN_CHARS = 80
#: The fallback skeleton of a long text keeps this much of its head and tail.
FALLBACK_HEAD_CHARS = 1000
FALLBACK_TAIL_CHARS = 500
#: Batches at least this large are split across threads (Arrow's kernels release the GIL).
PARALLEL_MIN_ROWS = 4096

DEFAULT_NUM_PERM = 64
DEFAULT_NGRAM = 3

_END = ".!?。！？"
# Step 1 (one pass over the raw text): code, quoted spans, URLs, e-mail, numbers. Double
# quotes are matched greedily within a line (first to last), so a quoted passage that itself
# contains quotes is masked whole rather than leaving its middle behind.
_SLOTS = "|".join(
    [
        r"`[^`\n]+`",
        r"\"[^\n]*\"",
        r"“[^\n]*”",
        r"«[^»\n]*»",
        r"「[^」\n]*」",
        r"『[^』\n]*』",
        r"\B'[^'\n]+'",
        r"(?:https?|ftp)://[^\s<>\"'`]+",
        r"\bwww\.[^\s<>\"'`]+",
        r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
        r"[$€£¥₹]?\p{Nd}+(?:[.,:/]\p{Nd}+)*%?",
    ]
)
_NONBLANK = r"\S"
# lines that might be structure (fence, list item, label, lead-in): the only ones the
# structural patterns below are run on
_STRUCTURE = r"^\s*(?:```|[-*•·]|\p{Nd}{1,3}[.)]|\(?[A-Za-z][.)])|[:：]"
_FENCE = r"^\s*```"
_LIST = r"^\s*(?:[-*•·]|\p{Nd}{1,3}[.)]|\(?[A-Za-z][.)])\s+\S"
_LABEL = rf"^\s*[^:：]{{1,{LABEL_MAX_CHARS}}}(?::\s|：)\s*\S"
_LABEL_ONLY = rf"^(?P<label>\s*[^:：]{{1,{LABEL_MAX_CHARS}}}[:：])"
_TURN_LABEL = rf"^\s*[^\s:：]{{1,{TURN_LABEL_CHARS}}}[:：]"
_LAST_ASK = rf"(?:^|[{_END}]\s+)(?P<last>[^{_END}]{{3,{KEEP_LAST_CHARS}}}[?？:：])\s*$"
_SENTENCE = rf"[^\n{_END}]{{{LONG_SENTENCE_CHARS},}}[{_END}]*"
_NAMES = r"([\p{Ll}\p{N},;] +)\p{Lu}[\p{Lu}\p{Ll}][\p{L}\p{M}'’.-]*(?:[ -]\p{Lu}[\p{L}\p{M}'’.-]*)*"
_SPACES = r"\s\s+|[\t\n\r\f\v]"
_MERGE = MASK + r"(?:[\s\p{P}]*" + MASK + r")+"
_LETTERS = rf"(?:\p{{L}}[^\p{{L}}]*){{{MIN_LITERAL_LETTERS}}}"
_CJK = r"([\p{Han}\p{Hiragana}\p{Katakana}])"

_BoolArray = npt.NDArray[np.bool_]


def _bools(a: pa.Array | pa.ChunkedArray) -> _BoolArray:
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def _match(arr: pa.Array, pattern: str) -> _BoolArray:
    return _bools(pc.match_substring_regex(arr, pattern))


def _on(arr: pa.Array, where: _BoolArray, pattern: str, replacement: str) -> pa.Array:
    """``replace_substring_regex`` on the rows ``where`` only (the rest are not scanned)."""
    if not where.any():
        return arr
    if where.all():
        return pc.replace_substring_regex(arr, pattern, replacement)
    sel = pa.array(where)
    return pc.replace_with_mask(
        arr, sel, pc.replace_substring_regex(pc.filter(arr, sel), pattern, replacement)
    )


def _mask_lines(pre: pa.Array) -> pa.Array:
    """Step 2 of the module docstring: classify every line of the batch at once, rebuild."""
    lists = pc.split_pattern(pre, "\n")
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    lines = lists.flatten()
    m = len(lines)
    if m == 0:
        return pre
    row = np.repeat(np.arange(len(pre)), np.diff(offsets))
    nbytes = np.asarray(pc.binary_length(lines), dtype=np.int64)
    blank = nbytes == 0
    short = np.flatnonzero(nbytes <= 8)
    if len(short):
        blank[short] |= ~_match(lines.take(pa.array(short)), _NONBLANK)
    code = np.zeros(m, bool)
    is_list = np.zeros(m, bool)
    is_label = np.zeros(m, bool)
    turn_label = np.zeros(m, bool)
    ends_colon = np.zeros(m, bool)
    cand = _match(lines, _STRUCTURE)
    if cand.any():
        sub = pc.filter(lines, pa.array(cand))
        code[cand] = _match(sub, _FENCE)
        is_list[cand] = _match(sub, _LIST)
        is_label[cand] = _match(sub, _LABEL)
        turn_label[cand] = _match(sub, _TURN_LABEL)
        rtrim = pc.utf8_rtrim_whitespace(sub)
        ends_colon[cand] = _bools(pc.ends_with(rtrim, ":")) | _bools(pc.ends_with(rtrim, "："))
    if code.any():  # everything between a fence line and the next one, fences included
        before: npt.NDArray[np.int64] = np.cumsum(code) - code
        first = offsets[:-1][row]
        code |= ((before - before[first]) % 2) == 1
    is_list &= ~code
    is_label &= ~is_list & ~code
    turn_label &= is_label
    ends_colon &= ~is_label & ~is_list & ~code

    # neighbours: the previous / next non-blank line of the same prompt
    nonblank = np.flatnonzero(~blank)
    prev = np.full(m, -1, np.int64)
    nxt = np.full(m, -1, np.int64)
    if len(nonblank) > 1:
        same = row[nonblank[1:]] == row[nonblank[:-1]]
        prev[nonblank[1:][same]] = nonblank[:-1][same]
        nxt[nonblank[:-1][same]] = nonblank[1:][same]
    has_prev, has_next = prev >= 0, nxt >= 0
    after_colon = np.zeros(m, bool)
    after_colon[has_prev] = ends_colon[prev[has_prev]]
    after_colon &= ~blank & ~code
    # transcript: three or more consecutive lines with one-word labels (Amanda: / Jerry: / ...)
    in_run = np.zeros(m, bool)
    if turn_label.any() and len(nonblank):
        t = turn_label[nonblank]
        start = np.r_[True, (t[1:] != t[:-1]) | (row[nonblank[1:]] != row[nonblank[:-1]])]
        run = np.cumsum(start) - 1
        in_run[nonblank] = t & (np.bincount(run)[run] >= TURN_RUN)

    plain = ~blank & ~code & ~is_list & ~is_label & ~ends_colon & ~after_colon
    long = plain & (nbytes >= LONG_LINE_BYTES)
    # paragraphs (runs of non-blank lines) with two or more prose lines (plain, or a colon
    # inside: "he said: ...") adding up to BLOCK_BYTES are pasted content. All their lines go
    # except a leading ``label: value`` / lead-in line and a short last line of the prompt.
    para = np.cumsum(blank | np.r_[True, row[1:] != row[:-1]])
    prose = plain | is_label
    n_prose = np.bincount(para[prose], minlength=int(para[-1]) + 1)
    prose_bytes = np.bincount(para[prose], weights=nbytes[prose], minlength=int(para[-1]) + 1)
    in_block = ~blank & (n_prose[para] >= 2) & (prose_bytes[para] >= BLOCK_BYTES)
    # ...unless labelled fields follow in a later paragraph: then it is their instruction
    last_label_para = np.full(len(pre), -1, np.int64)
    np.maximum.at(last_label_para, row[is_label], para[is_label])
    in_block &= para >= last_label_para[row]
    lead = (is_label | ends_colon) & ~(has_prev & (para[np.maximum(prev, 0)] == para))
    tail = ~has_next & (nbytes <= KEEP_LAST_CHARS) & (plain | ends_colon)
    masked = ~blank & (code | in_run | after_colon | (long & has_next) | (in_block & ~lead & ~tail))

    # output line = one of: a constant, the line sentence-masked, ``label: §``, or a long last
    # line's closing question; gathered with a single ``take`` from a pool of those pieces
    pieces: list[pa.Array] = [pa.array(["", MASK, "- " + MASK])]
    choice = np.where(masked, 1, 0).astype(np.int64)
    choice[is_list & ~masked] = 2
    kept = ~blank & ~masked & ~is_list
    choice[kept] = 3 + np.flatnonzero(kept)  # the line itself, unless a piece below replaces it
    pieces.append(lines)
    base = 3 + m
    for where, build in (
        # a line shorter (in bytes) than a long sentence (in characters) cannot contain one
        (((plain & ~long) | ends_colon) & ~masked & (nbytes >= LONG_SENTENCE_CHARS), _mask_sentences),
        (is_label & ~masked, _keep_label),
        (long & ~masked, _keep_last_ask),
    ):
        idx = np.flatnonzero(where)
        if len(idx):
            pieces.append(build(lines.take(pa.array(idx))))
            choice[idx] = base + np.arange(len(idx))
            base += len(idx)
    out = pa.concat_arrays([p.cast(pa.string()) for p in pieces]).take(pa.array(choice))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), out), "\n")


def _mask_sentences(lines: pa.Array) -> pa.Array:
    """Sentences of at least LONG_SENTENCE_CHARS characters become ``§``."""
    return pc.replace_substring_regex(lines, _SENTENCE, MASK)


def _keep_label(lines: pa.Array) -> pa.Array:
    """``label: value`` becomes ``label: §``."""
    label = pc.extract_regex(lines, _LABEL_ONLY).field("label")
    return pc.binary_join_element_wise(label, pa.scalar(MASK), " ")


def _keep_last_ask(lines: pa.Array) -> pa.Array:
    """A long line becomes ``§``, or ``§ <last sentence>`` when that ends in ``?`` or ``:``."""
    last = pc.fill_null(pc.extract_regex(lines, _LAST_ASK).field("last"), "")
    return pc.binary_join_element_wise(pa.scalar(MASK), last, " ")


def _normalise(arr: pa.Array) -> pa.Array:
    arr = pc.utf8_lower(arr)
    arr = pc.replace_substring_regex(arr, _SPACES, " ")
    arr = pc.replace_substring_regex(arr, _MERGE, MASK)
    return pc.utf8_trim_whitespace(arr)


def _light(pre: pa.Array) -> pa.Array:
    """The fallback skeleton: step 1 only (quotes, code, numbers...), head and tail of long text."""
    pre = pc.utf8_trim_whitespace(pre)
    long = _bools(pc.greater(pc.utf8_length(pre), FALLBACK_HEAD_CHARS + FALLBACK_TAIL_CHARS))
    if long.any():
        head = pc.utf8_slice_codeunits(pre, 0, FALLBACK_HEAD_CHARS)
        tail = pc.utf8_slice_codeunits(pre, -FALLBACK_TAIL_CHARS)
        cut = pc.binary_join_element_wise(head, tail, "\n" + MASK + "\n")
        pre = pc.if_else(pa.array(long), cut, pre)
    return _normalise(pre)


def _skeleton_chunk(text: pa.Array) -> pa.Array:
    """Skeletons of one batch of non-null strings (nulls are handled by the caller)."""
    pre = pc.replace_substring_regex(text, _SLOTS, MASK)
    out = _mask_lines(pre)
    named = _bools(pc.greater_equal(pc.utf8_length(text), NAMES_MIN_CHARS))
    out = _normalise(_on(out, named, _NAMES, r"\1" + MASK))
    fallback = ~_match(out, _LETTERS)
    if fallback.any():
        sel = pa.array(fallback)
        out = pc.replace_with_mask(out, sel, _light(pc.filter(pre, sel)))
    return out


def _map_chunks(fn: Callable[[pa.Array], pa.Array], texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``fn`` over the non-null strings of ``texts``, in slices on a thread pool when large."""
    arr = as_array(texts)
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    text = pc.fill_null(arr, "") if arr.null_count else arr
    n = len(text)
    workers = min(os.cpu_count() or 1, 8)
    if n < PARALLEL_MIN_ROWS or workers == 1:
        return fn(text)
    step = -(-n // workers)
    with ThreadPoolExecutor(workers) as pool:
        return pa.concat_arrays(list(pool.map(fn, [text.slice(i, step) for i in range(0, n, step)])))


def skeleton(texts: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """The normalised skeleton of every text (null for null text; ``""`` for empty text)."""
    arr = as_array(texts)
    out = _map_chunks(_skeleton_chunk, arr)
    if arr.null_count:
        out = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.string()), out)
    return out


def skeleton_ids(skeletons: pa.Array | pa.ChunkedArray, texts: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """Template ids from skeletons already computed for ``texts``.

    Null where the text is null or empty, or has nothing but whitespace (empty skeleton).
    """
    skel = as_array(skeletons)
    return hex16(hash_strings(skel), null_or_empty(as_array(texts)) | null_or_empty(skel))


def _ids_chunk(text: pa.Array) -> pa.Array:
    """Skeleton hashes of one slice; null where the skeleton is empty."""
    skel = _skeleton_chunk(text)
    return pa.array(hash_strings(skel), pa.uint64(), mask=null_or_empty(skel))


def template_ids(texts: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """16-hex template id of every text: a 64-bit hash of its skeleton.

    Null for null, empty or whitespace-only text. Large batches run on a thread pool; the
    result does not depend on batch size, order or thread count.
    """
    arr = as_array(texts)
    hashes = _map_chunks(_ids_chunk, arr)
    values = np.asarray(pc.fill_null(hashes, 0).to_numpy(), dtype=np.uint64)
    return hex16(values, null_or_empty(arr) | ~_bools(pc.is_valid(hashes)))


def minhash(
    texts: pa.Array | pa.ChunkedArray,
    *,
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = 0,
) -> npt.NDArray[np.uint32]:
    """MinHash signatures (uint32, ``[n, num_perm]``) of the skeletons' ``ngram``-word shingles.

    Words are whitespace-separated tokens of the skeleton; every CJK character counts as a
    word, so Chinese and Japanese get character shingles. A skeleton shorter than ``ngram``
    words is one shingle; null or empty text has none and gets the all-``0xFFFFFFFF``
    signature, which :func:`~distillshield.signals.lsh.band_keys` skips. The fraction of
    positions where two signatures agree estimates the Jaccard similarity of the shingle sets.
    """
    return signatures(skeleton(texts), num_perm=num_perm, ngram=ngram, seed=seed)[0]


def signatures(
    skeletons: pa.Array | pa.ChunkedArray,
    *,
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = 0,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """MinHash signatures of skeletons already computed, and each one's number of shingles.

    All shingles of the batch are hashed in one flat array (word hashes combined ``ngram`` at
    a time within each row), each is permuted by ``num_perm`` universal hash functions
    ``h(x) = (a*x + b) >> 32`` over 64-bit integers (a odd; Dietzfelbinger's multiply-shift,
    2-universal for 32-bit ``x``), and ``np.minimum.reduceat`` takes the per-row minimum.
    Memory is bounded by processing the flat shingle array in slices.
    """
    if num_perm < 1 or ngram < 1:
        raise ValueError("num_perm and ngram must be positive")
    skel = as_array(skeletons)
    n = len(skel)
    empty = np.uint32(np.iinfo(np.uint32).max)
    out = np.full((n, num_perm), empty, dtype=np.uint32)
    if n == 0:
        return out, np.zeros(0, np.int64)
    spaced = pc.replace_substring_regex(pc.fill_null(skel, ""), _CJK, r" \1 ")
    spaced = pc.utf8_trim_whitespace(pc.replace_substring_regex(spaced, _SPACES, " "))
    words = pc.split_pattern(spaced, " ")  # "" splits into [""]: counted as no word below
    word_off = np.asarray(words.offsets, dtype=np.int64)
    word_off -= word_off[0]
    word_hash = hash_strings(words.flatten(), salt=seed + 1)
    n_words = np.where(np.asarray(pc.binary_length(spaced)) > 0, np.diff(word_off), 0)
    n_sh = np.where(n_words >= ngram, n_words - ngram + 1, np.minimum(n_words, 1))
    total = int(n_sh.sum())
    if total == 0:
        return out, n_sh
    row = np.repeat(np.arange(n), n_sh)
    first_sh = np.cumsum(n_sh) - n_sh
    start = word_off[row] + (np.arange(total) - first_sh[row])
    end = word_off[row + 1]
    shingle = np.zeros(total, np.uint64)
    for j in range(ngram):
        idx = start + j
        w = np.where(idx < end, word_hash[np.minimum(idx, len(word_hash) - 1)], np.uint64(0))
        shingle = splitmix64(shingle ^ w)
    x = shingle >> np.uint64(32)
    keys = splitmix64(np.arange(2 * num_perm, dtype=np.uint64) + np.uint64(0x5EED0000 + seed * 0x10001))
    a = keys[:num_perm] | np.uint64(1)
    b = keys[num_perm:]
    has = n_sh > 0
    mins = np.full((int(has.sum()), num_perm), empty, dtype=np.uint32)
    slot = np.cumsum(has) - 1  # row -> index into mins
    step = max(1, (1 << 21) // num_perm)
    for lo in range(0, total, step):
        hi = min(total, lo + step)
        with np.errstate(over="ignore"):
            v = ((x[lo:hi, None] * a[None, :] + b[None, :]) >> np.uint64(32)).astype(np.uint32)
        r = row[lo:hi]
        seg = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        target = slot[r[seg]]
        mins[target] = np.minimum(mins[target], np.minimum.reduceat(v, seg, axis=0))
    out[has] = mins
    return out, n_sh
