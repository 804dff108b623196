"""The frame engine: vectorised template rendering over Arrow.

A *frame* is a template such as ``"Explain {concept} to a {audience}."``: literal parts
interleaved with slot names. Rendering n rows must not loop over rows in Python (the
simulator emits tens of thousands of exchanges per second), so the engine renders every
row of a :class:`FrameSet` in one pass, whichever frame each row uses:

* All frames of a set are padded to the same number of slots ``K``. Literal part ``j`` of
  every frame is one small Arrow array indexed by frame, so ``lits[j].take(frame)`` gives
  each row its literal; a missing part is ``""``.
* Every slot vocabulary lives in one concatenated Arrow array (:class:`VocabStore`). A
  row's slot value is one index into it: ``searchsorted`` over a cumulative-weight array
  in which vocabulary ``v`` occupies the interval ``(v, v + 1]`` draws from the right
  vocabulary with the right weights for all rows at once.
* Values that are not drawn from a vocabulary (a generated math problem, a corpus
  question, a number computed for that row) are *dynamic* columns passed in by the
  caller and spliced with ``if_else``.
* ``binary_join_element_wise(lit0, val0, lit1, ..., litK, "")`` builds the strings.

Language is a third index: a slot looks up ``name@lang`` first and falls back to
``name``, so the same English frame renders Spanish support tickets for Spanish rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NO_SEP",
    "Frame",
    "FrameChooser",
    "FrameSet",
    "VocabStore",
    "empty_strings",
    "parse_template",
    "replace_rows",
    "stitch",
]

#: Arrow scalars, not Python strings, for compute-function arguments: pyarrow converts a
#: Python ``str`` argument through a path that retries an optional pandas import on every
#: call (~0.1 ms each), which dominated small batches.
NO_SEP = pa.scalar("", type=pa.string())

_SLOT_RE = re.compile(r"(?<!\{)\{([A-Za-z][A-Za-z0-9_]*)\}(?!\})")


def parse_template(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split ``template`` into literal parts and slot names (``len(parts) == len(slots) + 1``).

    Only ``{identifier}`` is a slot, so JSON and code braces in templates stay literal, and
    a doubled ``{{name}}`` (a placeholder the product itself uses) is literal too.
    """
    parts: list[str] = []
    slots: list[str] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        parts.append(template[pos : m.start()])
        slots.append(m.group(1))
        pos = m.end()
    parts.append(template[pos:])
    return tuple(parts), tuple(slots)


@dataclass(frozen=True)
class Frame:
    """One template and the ground truth it carries (id -1 for internal sub-templates)."""

    id: int
    kind: str
    lang: str
    capability: str  # "*" = taken from the problem the frame wraps
    cot_elicit: bool
    template: str
    label: str = ""

    @property
    def parts(self) -> tuple[str, ...]:
        return parse_template(self.template)[0]

    @property
    def slots(self) -> tuple[str, ...]:
        return parse_template(self.template)[1]


class VocabStore:
    """Every slot vocabulary concatenated into one Arrow array, so one ``take`` serves all slots.

    Vocabulary 0 is the empty string, used for padded (absent) slots. Call :meth:`freeze`
    once after the last :meth:`add`; draws are then fully vectorised.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"": 0}
        self._values: list[list[str]] = [[""]]
        self._weights: list[np.ndarray] = [np.ones(1)]
        self._frozen = False
        self.values: pa.Array = pa.array([""], type=pa.string())
        self._cum: np.ndarray = np.ones(1)
        self.start: np.ndarray = np.zeros(1, dtype=np.int64)
        self.size: np.ndarray = np.ones(1, dtype=np.int64)

    def add(
        self, name: str, values: Sequence[str], weights: Sequence[float] | np.ndarray | None = None
    ) -> int:
        """Register (or extend) a vocabulary; returns its id."""
        if self._frozen:
            raise RuntimeError("VocabStore is frozen")
        vals = [str(v) for v in values]
        if not vals:
            raise ValueError(f"vocabulary {name!r} is empty")
        w = np.ones(len(vals)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(vals) or not np.all(w > 0):
            raise ValueError(f"vocabulary {name!r}: weights must be positive, one per value")
        if name in self._ids:
            vid = self._ids[name]
            self._values[vid].extend(vals)
            self._weights[vid] = np.concatenate([self._weights[vid], w])
            return vid
        vid = len(self._values)
        self._ids[name] = vid
        self._values.append(vals)
        self._weights.append(w)
        return vid

    def has(self, name: str) -> bool:
        return name in self._ids

    def get(self, name: str) -> list[str]:
        """The values of one vocabulary (construction-time use only)."""
        return list(self._values[self._ids[name]])

    def vid(self, slot: str, lang: str) -> int | None:
        """Vocabulary id for ``slot`` in ``lang``: ``slot@lang`` if registered, else ``slot``."""
        return self._ids.get(f"{slot}@{lang}", self._ids.get(slot))

    def freeze(self) -> None:
        """Concatenate everything into the Arrow array and the cumulative-weight index."""
        sizes = np.array([len(v) for v in self._values], dtype=np.int64)
        self.size = sizes
        self.start = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        cums = []
        for vid, w in enumerate(self._weights):
            c = np.cumsum(w) / w.sum()
            c[-1] = 1.0
            cums.append(vid + c)
        self._cum = np.concatenate(cums)
        self.values = pa.array([s for vals in self._values for s in vals], type=pa.string())
        self._frozen = True

    def draw(self, vids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One weighted draw per row from vocabulary ``vids[i]``; global indexes into :attr:`values`."""
        u = rng.random(len(vids))
        idx = np.searchsorted(self._cum, vids.astype(np.float64) + u, side="right")
        # Guard the float edge (u rounding up to the next vocabulary's boundary).
        hi = self.start[vids] + self.size[vids] - 1
        return np.asarray(np.minimum(idx, hi), dtype=np.int64)


class FrameSet:
    """A group of frames rendered together (all of one prompt kind, or an internal sub-template set).

    ``dynamic`` names the slots filled from caller-supplied per-row columns instead of a
    vocabulary. Unknown slots raise at construction, so a typo in content fails fast.
    """

    def __init__(
        self,
        frames: Sequence[Frame],
        store: VocabStore,
        langs: Sequence[str],
        dynamic: Sequence[str] = (),
    ) -> None:
        if not frames:
            raise ValueError("a FrameSet needs at least one frame")
        self.frames = list(frames)
        self.langs = list(langs)
        self.dynamic = list(dynamic)
        self.store = store
        parsed = [parse_template(f.template) for f in self.frames]
        nf = len(self.frames)
        k = max(len(s) for _, s in parsed)
        self.k = k
        self.lits: list[pa.Array] = []
        self._lit_used: list[bool] = []
        for j in range(k + 1):
            col = [p[j] if j < len(p) else "" for p, _ in parsed]
            self.lits.append(pa.array(col, type=pa.string()))
            self._lit_used.append(any(col))
        dyn_code = {name: -2 - i for i, name in enumerate(self.dynamic)}
        table = np.zeros((nf, max(k, 1), len(self.langs)), dtype=np.int64)
        repeat = np.full((nf, max(k, 1)), -1, dtype=np.int64)
        for fi, (frame, (_, slots)) in enumerate(zip(self.frames, parsed, strict=True)):
            first: dict[str, int] = {}
            for j, slot in enumerate(slots):
                if slot in dyn_code:
                    table[fi, j, :] = dyn_code[slot]
                    continue
                if slot in first:
                    repeat[fi, j] = first[slot]
                    continue
                first[slot] = j
                for li, lang in enumerate(self.langs):
                    vid = store.vid(slot, frame.lang if frame.lang != "en" else lang)
                    if vid is None:
                        raise KeyError(f"frame {frame.label or frame.template[:60]!r}: unknown slot {slot!r}")
                    table[fi, j, li] = vid
        self._table = table
        self._repeat = repeat
        self._has_repeat = bool((repeat >= 0).any())
        self.frame_ids = np.array([f.id for f in self.frames], dtype=np.int32)
        self.cot = np.array([f.cot_elicit for f in self.frames], dtype=bool)
        self.capability = [f.capability for f in self.frames]
        self.frame_lang = np.array(
            [self.langs.index(f.lang) if f.lang in self.langs else 0 for f in self.frames]
        )

    def has_lang_vocab(self, li: int) -> bool:
        """Whether any slot resolves to a language-specific vocabulary for language ``li``."""
        return bool((self._table[:, :, li] != self._table[:, :, 0]).any())

    def render(
        self,
        fidx: np.ndarray,
        lidx: np.ndarray,
        rng: np.random.Generator,
        dyn: Mapping[str, pa.Array] | None = None,
    ) -> pa.Array:
        """Render row i with local frame ``fidx[i]`` in language ``lidx[i]``.

        Per slot position: at most one ``take`` from the vocabulary, one ``take`` from the
        concatenated dynamic columns and one ``if_else`` to merge them, whatever the
        number of frames.
        """
        n = len(fidx)
        if n == 0:
            return pa.array([], type=pa.string())
        dyn = dyn or {}
        fidx_pa = pa.array(fidx.astype(np.int64))
        table = self._table[fidx, :, lidx] if self.k else np.zeros((n, 0), dtype=np.int64)
        dyn_all: pa.Array | None = None
        dyn_base = np.zeros(len(self.dynamic), dtype=np.int64)
        if self.dynamic and (table < 0).any():
            codes = np.unique(table[table < 0])
            names = [self.dynamic[int(-2 - c)] for c in codes]
            missing = [name for name in names if name not in dyn]
            if missing:
                raise KeyError(f"dynamic column(s) {missing} not supplied")
            pieces = []
            for i, (c, name) in enumerate(zip(codes, names, strict=True)):
                dyn_base[int(-2 - c)] = i * n
                pieces.append(dyn[name].cast(pa.string()))
            pieces.append(pa.array([""], type=pa.string()))  # the empty value for rows without the slot
            dyn_all = pa.concat_arrays(pieces)
        rows = np.arange(n, dtype=np.int64)
        args: list[pa.Array | str] = []
        cols: list[pa.Array | None] = []
        for j in range(self.k + 1):
            if self._lit_used[j]:
                args.append(self.lits[j].take(fidx_pa))
            if j == self.k:
                break
            vids = table[:, j]
            dyn_mask = vids < 0
            vocab_mask = vids > 0
            col: pa.Array | None = None
            if vocab_mask.any():
                idx = self.store.draw(np.where(vocab_mask, vids, 0), rng)
                col = self.store.values.take(pa.array(idx))
            if dyn_all is not None and dyn_mask.any():
                didx = np.where(dyn_mask, dyn_base[np.where(dyn_mask, -2 - vids, 0)] + rows, len(dyn_all) - 1)
                dcol = dyn_all.take(pa.array(didx))
                col = dcol if col is None else pc.if_else(pa.array(dyn_mask), dcol, col)
            if self._has_repeat:
                rep = self._repeat[fidx, j]
                for src in np.unique(rep[rep >= 0]):
                    src_col = cols[int(src)]
                    if src_col is not None:
                        base = col if col is not None else empty_strings(n)
                        col = pc.if_else(pa.array(rep == src), src_col, base)
            cols.append(col)
            if col is not None:
                args.append(col)
        if not args:
            return empty_strings(n)
        if len(args) == 1:
            return args[0]
        out: pa.Array = pc.binary_join_element_wise(*args, NO_SEP)
        return out


def empty_strings(n: int) -> pa.Array:
    """n empty strings without materialising n Python objects."""
    offsets = pa.py_buffer(np.zeros(n + 1, dtype=np.int32).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"")])


class FrameChooser:
    """Picks a frame per row from ``groups`` (a variant's template set) and the row's language.

    ``groups[g][lang]`` lists ``(local frame index, weight)``. Rows whose language has no
    frame in their group fall back to the group's English frames, keeping their language
    for slot vocabularies (so an English SaaS template still wraps a Spanish ticket). The
    weighted draw uses the same block-offset ``searchsorted`` trick as :class:`VocabStore`.
    """

    def __init__(
        self, groups: Sequence[Mapping[str, Sequence[tuple[int, float]]]], langs: Sequence[str]
    ) -> None:
        self.n_groups = len(groups)
        self.n_langs = len(langs)
        members: list[int] = []
        cums: list[np.ndarray] = []
        start: list[int] = []
        count: list[int] = []
        for g, grp in enumerate(groups):
            en = list(grp.get("en", [])) or [m for lst in grp.values() for m in lst]
            if not en:
                raise ValueError(f"template group {g} is empty")
            for li, lang in enumerate(langs):
                lst = list(grp.get(lang, [])) or en
                w = np.array([max(float(wt), 1e-9) for _, wt in lst])
                c = np.cumsum(w) / w.sum()
                c[-1] = 1.0
                block = g * self.n_langs + li
                start.append(len(members))
                count.append(len(lst))
                members.extend(int(f) for f, _ in lst)
                cums.append(block + c)
        self._members = np.array(members, dtype=np.int64)
        self._cum = np.concatenate(cums)
        self._start = np.array(start, dtype=np.int64)
        self._count = np.array(count, dtype=np.int64)

    def choose(self, group: np.ndarray, lidx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        block = (np.asarray(group, dtype=np.int64) % self.n_groups) * self.n_langs + lidx
        idx = np.searchsorted(self._cum, block + rng.random(len(block)), side="right")
        idx = np.clip(idx, self._start[block], self._start[block] + self._count[block] - 1)
        return np.asarray(self._members[idx], dtype=np.int64)


def stitch(pieces: Sequence[tuple[np.ndarray, pa.Array]], n: int) -> pa.Array:
    """Put per-group results back in row order: ``pieces`` partition ``range(n)``."""
    pieces = [p for p in pieces if len(p[0])]
    if not pieces:
        return pa.array([], type=pa.string())
    if len(pieces) == 1:
        return pieces[0][1]
    order = np.concatenate([idx for idx, _ in pieces])
    values = pa.concat_arrays([arr for _, arr in pieces])
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(len(order), dtype=np.int64)
    out: pa.Array = values.take(pa.array(inverse))
    return out


def replace_rows(text: pa.Array, idx: np.ndarray, new: pa.Array) -> pa.Array:
    """``text`` with rows ``idx`` replaced by ``new`` (one concat and one take)."""
    if len(idx) == 0:
        return text
    perm = np.arange(len(text), dtype=np.int64)
    perm[idx] = len(text) + np.arange(len(idx), dtype=np.int64)
    out: pa.Array = pa.concat_arrays([text, new.cast(text.type)]).take(pa.array(perm))
    return out
