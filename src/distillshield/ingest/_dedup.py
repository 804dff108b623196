"""Request-id dedup against what OUT already holds and what this run accepted.

Re-ingesting the same logs must add nothing, and 16M-exchange outputs must not need 16M
Python strings in memory, so the index keeps 64-bit hashes of request ids in sorted numpy
arrays: 8 bytes per stored exchange (128 MB at 16M). Two *different* ids colliding on 64
bits would drop the second as a duplicate; the chance is n²/2⁶⁵ (≈ 7·10⁻⁶ at 16M ids),
accepted and documented in docs/ingest.md.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa


class SeenIds:
    """Set of request-id hashes with batched membership tests."""

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._main = np.empty(0, dtype=np.uint64)
        self._recent = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return int(self._main.size + self._recent.size)

    def hash(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """64-bit hash per id (DuckDB's vectorised ``hash``; stable within a run)."""
        if len(ids) == 0:
            return np.empty(0, dtype=np.uint64)
        self._con.register("_ids", pa.table({"id": ids}))
        try:
            out = self._con.execute("SELECT hash(id) AS h FROM _ids").fetchnumpy()["h"]
        finally:
            self._con.unregister("_ids")
        return np.asarray(out, dtype=np.uint64)

    def _contains(self, h: np.ndarray) -> np.ndarray:
        out = np.zeros(h.size, dtype=bool)
        for arr in (self._main, self._recent):
            if arr.size:
                pos = np.searchsorted(arr, h)
                pos[pos == arr.size] = 0
                out |= arr[pos] == h
        return out

    @staticmethod
    def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Merge sorted ``b`` into sorted ``a`` in linear time (one copy)."""
        return np.insert(a, np.searchsorted(a, b), b) if a.size else b

    def add(self, h: np.ndarray) -> None:
        """Remember hashes: merged into a small sorted array, which joins the main one when
        it grows past a quarter of it, so each batch costs two binary searches and copies
        stay linear."""
        if not h.size:
            return
        self._recent = self._merge(self._recent, np.sort(h))
        if self._recent.size > max(1 << 16, self._main.size // 4):
            self._main = self._merge(self._main, self._recent)
            self._recent = np.empty(0, dtype=np.uint64)

    def keep_new(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Mask of ids neither seen before nor repeated earlier in ``ids``; records them as seen."""
        h = self.hash(ids)
        order = np.argsort(h, kind="stable")
        s = h[order]
        first_sorted = np.ones(s.size, dtype=bool)
        first_sorted[1:] = s[1:] != s[:-1]
        first = np.zeros(h.size, dtype=bool)
        first[order[first_sorted]] = True  # stable sort: the first occurrence in input order
        new: np.ndarray = first & ~self._contains(h)
        self.add(h[new])
        return new
