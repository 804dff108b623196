"""Template families: near-duplicate template ids grouped by MinHash LSH, relationally.

A template id is exact: two prompts share one only when their skeletons are identical. A
wrapper whose slots leave a little residue in the skeleton (a short review that is not
masked, a field that is sometimes present) splits into several ids whose skeletons are
still mostly the same text. Families put those back together:

1. :func:`distinct_templates` reduces a stream of prompt batches to one row per template id
   (``template_id, minhash, shingles, count``). Campaigns repeat their wrappers, so this table
   is far smaller than the exchanges, and it is the only input the rest needs.
2. :func:`band_keys` cuts each MinHash signature into ``bands`` bands of ``rows`` values and
   hashes each band: two templates with Jaccard similarity ``s`` share at least one band key
   with probability ``1 - (1 - s**rows)**bands`` (an S-curve around ``(1/bands)**(1/rows)``).
3. :func:`template_families` runs the rest as SQL in the reference dialect through
   :meth:`Backend.query`: a group-by on (band, key) links every template to the smallest
   template of each bucket it falls in (a star rather than all pairs, so a bucket of ``k``
   templates costs ``k`` edges, not ``k**2``, and the connected components are the same);
   optionally each link is verified by its full-signature agreement (:func:`verify_links`,
   row-wise numpy over the Arrow batch of links); connected components
   are found by iterative label propagation (every node takes the smallest label among itself
   and its neighbours, then the label of its label, until nothing changes), as splink does.
   A family id is the smallest template id in the component, so it does not depend on row
   order or on which engine ran it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.backends import Backend
from distillshield.signals._text import as_array, splitmix64
from distillshield.signals.template import DEFAULT_NGRAM, DEFAULT_NUM_PERM, signatures, skeleton, skeleton_ids

__all__ = [
    "DISTINCT_TEMPLATES_SCHEMA",
    "band_keys",
    "connected_components",
    "distinct_templates",
    "family_of",
    "template_families",
    "verify_links",
]

_EMPTY = np.uint32(np.iinfo(np.uint32).max)

#: The table :func:`template_families` reads (extra columns are ignored).
DISTINCT_TEMPLATES_SCHEMA = pa.schema(
    [
        pa.field("template_id", pa.string(), nullable=False),
        pa.field("minhash", pa.list_(pa.uint32())),
        pa.field("shingles", pa.int32()),
        pa.field("count", pa.int64()),
    ]
)


def band_keys(
    signatures: npt.NDArray[np.uint32],
    bands: int,
    rows: int,
    *,
    items: pa.Array | None = None,
) -> pa.Table:
    """One row per (item, band): ``item`` (row index, or ``items[i]``), ``band``, ``key`` (int64).

    ``key`` hashes the band's ``rows`` signature values together with the band number, so equal
    keys in one band mean (up to a 2**-64 accident) equal values. Items whose signature is
    empty (no shingles) get no rows: they would all share every key.
    """
    sig = np.asarray(signatures)
    if sig.ndim != 2:
        raise ValueError(f"signatures must be 2-D (items x permutations), got shape {sig.shape}")
    num_perm = sig.shape[1]
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(f"bands*rows = {bands}*{rows} must be between 1 and num_perm = {num_perm}")
    keep = ~np.all(sig == _EMPTY, axis=1)
    idx = np.flatnonzero(keep)
    cut = sig[idx, : bands * rows].reshape(len(idx), bands, rows).astype(np.uint64)
    h = np.broadcast_to(
        splitmix64(np.arange(bands, dtype=np.uint64) + np.uint64(0xB5AD4ECEDA1CE2A9)), (len(idx), bands)
    ).copy()
    for r in range(rows):
        h = splitmix64(h ^ cut[:, :, r])
    item_idx = np.repeat(idx, bands)
    item: pa.Array = pa.array(item_idx, pa.int64()) if items is None else as_array(items).take(item_idx)
    return pa.table(
        {
            "item": item,
            "band": pa.array(np.tile(np.arange(bands, dtype=np.int32), len(idx))),
            "key": pa.array(h.reshape(-1).view(np.int64)),
        }
    )


def _name(prefix: str) -> str:
    return f"_ds_{prefix}_{uuid.uuid4().hex[:10]}"


def connected_components(backend: Backend, edges: str, *, max_iterations: int = 64) -> str:
    """Connected components of the undirected graph in table/view ``edges(src, dst)``.

    Returns the name of a new table ``(node, label)``, one row per node that appears in an
    edge, ``label`` = the smallest node of its component (caller drops it). Label propagation:
    each round a node takes the minimum label over itself and its neighbours, then the label of
    that label (pointer jumping, which shortens long chains to logarithmic rounds); stops when a
    round changes nothing. Plain SQL (joins, ``min``, ``least``), so it transpiles to Spark.
    """
    und, lbl = _name("und"), _name("lbl")
    backend.execute(
        f"CREATE TABLE {und} AS SELECT src, dst FROM {edges} WHERE src <> dst "
        f"UNION SELECT dst AS src, src AS dst FROM {edges} WHERE src <> dst"
    )
    backend.execute(f"CREATE TABLE {lbl} AS SELECT DISTINCT src AS node, src AS label FROM {und}")
    try:
        for _ in range(max_iterations):
            hop, jump = _name("hop"), _name("jump")
            backend.execute(
                f"CREATE TABLE {hop} AS SELECT l.node, least(l.label, coalesce(m.label, l.label)) AS label "
                f"FROM {lbl} l LEFT JOIN (SELECT u.src AS node, min(n.label) AS label FROM {und} u "
                f"JOIN {lbl} n ON n.node = u.dst GROUP BY u.src) m ON m.node = l.node"
            )
            backend.execute(
                f"CREATE TABLE {jump} AS SELECT a.node, least(a.label, b.label) AS label "
                f"FROM {hop} a JOIN {hop} b ON b.node = a.label"
            )
            changed = (
                backend.query(
                    f"SELECT count(*) AS n FROM {jump} j JOIN {lbl} l ON l.node = j.node "
                    "WHERE j.label <> l.label"
                )
                .column("n")[0]
                .as_py()
            )
            backend.execute(f"DROP TABLE {hop}")
            backend.execute(f"DROP TABLE {lbl}")
            lbl = jump
            if not changed:
                return lbl
        raise RuntimeError(f"connected components did not converge in {max_iterations} rounds")
    except BaseException:
        backend.execute(f"DROP TABLE IF EXISTS {lbl}")
        raise
    finally:
        backend.execute(f"DROP TABLE IF EXISTS {und}")


def _signature_matrix(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint32]:
    """A ``list<uint32>`` column of equal-length signatures as an (n, num_perm) matrix."""
    col = as_array(column)
    n = len(col)
    if n == 0:
        return np.zeros((0, 0), np.uint32)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0), dtype=np.int64)
    if lengths.min() != lengths.max() or col.null_count:
        raise ValueError("every template needs a minhash signature of the same length")
    values = np.asarray(pc.list_flatten(col).cast(pa.uint32()).to_numpy(zero_copy_only=False))
    return values.reshape(n, int(lengths[0]))


def template_families(
    backend: Backend,
    templates: str,
    *,
    bands: int = 16,
    rows: int = 4,
    threshold: float | None = 0.5,
    min_shingles: int = 8,
) -> pa.Table:
    """``(template_id, template_family)`` for every distinct template id in table ``templates``.

    ``templates`` is a table or view registered in ``backend`` with the columns of
    :data:`DISTINCT_TEMPLATES_SCHEMA` (``shingles`` and ``count`` optional), as written by
    :func:`distinct_templates`. Templates whose skeleton has fewer than ``min_shingles``
    shingles are left alone (their family is their own id): on a handful of shingles MinHash
    is too coarse, and short prompts such as "how do I make X?" are phrasing, not wrappers.
    With ``threshold`` set, a link found by banding is kept only when the two full signatures
    agree on at least that share of positions (an estimate of their Jaccard similarity), which
    stops one unlucky band collision from chaining two unrelated families together.

    Bands default to 16 x 4 of the 64 permutations: a pair at Jaccard 0.5 is linked with
    probability 0.64, at 0.7 with 0.98, at 0.3 with 0.12 (then mostly removed by the threshold).
    """
    cols = backend.query(f"SELECT * FROM {templates} LIMIT 0").column_names
    extra = ", shingles" if "shingles" in cols else ""
    tbl = backend.query(f"SELECT template_id, minhash{extra} FROM {templates} WHERE template_id IS NOT NULL")
    # items are row numbers in template-id order, so the smallest item of a component is
    # its smallest template id, and the graph work joins integers rather than strings
    tbl = tbl.sort_by("template_id")
    if tbl.num_rows > 1:  # one row per template id (the table should already be distinct)
        tid = tbl.column("template_id").combine_chunks()
        repeat = pc.equal(tid.slice(1), tid.slice(0, len(tid) - 1))
        tbl = tbl.filter(pa.concat_arrays([pa.array([True]), pc.invert(repeat)]))
    ids = tbl.column("template_id").combine_chunks()
    sig = _signature_matrix(tbl.column("minhash"))
    eligible = np.ones(len(ids), bool)
    if extra:
        shingles = np.asarray(pc.fill_null(tbl.column("shingles"), 0).to_numpy(), dtype=np.int64)
        eligible &= shingles >= min_shingles
    sel = np.flatnonzero(eligible)
    keys = band_keys(sig[sel], bands, rows, items=pa.array(sel, pa.int64())) if len(sel) else None
    if keys is None or keys.num_rows == 0:  # nothing to link: every template is its own family
        return pa.table({"template_id": ids, "template_family": ids})
    bands_name, links_name, ids_name = "_ds_lsh_bands", "_ds_lsh_links", "_ds_lsh_ids"
    edges = _name("edges")
    created = [edges]
    backend.register(bands_name, keys)
    try:
        backend.execute(
            f"CREATE TABLE {edges} AS SELECT DISTINCT b.item AS src, r.root AS dst FROM {bands_name} b "
            f"JOIN (SELECT band, key, min(item) AS root FROM {bands_name} GROUP BY band, key "
            "HAVING count(*) > 1) r ON r.band = b.band AND r.key = b.key WHERE b.item <> r.root"
        )
        graph = edges
        if threshold is not None:
            pairs = backend.query(f"SELECT src, dst FROM {edges}")
            backend.register(links_name, verify_links(pairs, sig, threshold))
            graph = links_name
        labels = connected_components(backend, graph)
        created.append(labels)
        backend.register(
            ids_name, pa.table({"item": pa.array(np.arange(len(ids)), pa.int64()), "template_id": ids})
        )
        return backend.query(
            f"SELECT t.template_id, coalesce(f.template_id, t.template_id) AS template_family "
            f"FROM {ids_name} t LEFT JOIN {labels} c ON c.node = t.item "
            f"LEFT JOIN {ids_name} f ON f.item = c.label ORDER BY t.item"
        )
    finally:
        for name in created:
            backend.execute(f"DROP TABLE IF EXISTS {name}")
        for name in (bands_name, links_name, ids_name):
            _release(backend, name)


def verify_links(pairs: pa.Table, signatures: npt.NDArray[np.uint32], threshold: float) -> pa.Table:
    """The ``(src, dst)`` rows whose signatures agree on at least ``threshold`` of positions.

    ``src``/``dst`` index rows of ``signatures``. Row-wise work over an Arrow batch (on Spark:
    ``mapInArrow`` after joining each link to its two signatures); the share of agreeing
    MinHash positions is an unbiased estimate of the pair's Jaccard similarity.
    """
    src = np.asarray(pairs.column("src").to_numpy(), dtype=np.int64)
    dst = np.asarray(pairs.column("dst").to_numpy(), dtype=np.int64)
    keep = np.zeros(len(src), bool)
    step = 1 << 16
    for lo in range(0, len(src), step):
        agree = (signatures[src[lo : lo + step]] == signatures[dst[lo : lo + step]]).mean(axis=1)
        keep[lo : lo + step] = agree >= threshold - 1e-9
    return pa.table({"src": pa.array(src[keep], pa.int64()), "dst": pa.array(dst[keep], pa.int64())})


def _release(backend: Backend, name: str) -> None:
    """Replace a registered Arrow table by an empty one so the backend drops its reference."""
    backend.register(name, pa.table({"_": pa.array([], pa.int8())}))


def family_of(template_ids: pa.Array | pa.ChunkedArray, families: pa.Table) -> pa.StringArray:
    """The ``template_family`` of every id (its own id where ``families`` lacks it; null stays null)."""
    ids = as_array(template_ids)
    pos = pc.index_in(ids, value_set=families.column("template_id").combine_chunks())
    fam = families.column("template_family").combine_chunks().take(pos)
    return pc.coalesce(fam, ids)


def distinct_templates(
    batches: Iterable[pa.Array | pa.ChunkedArray],
    *,
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = 0,
) -> pa.Table:
    """Reduce a stream of prompt batches to one row per template id (:data:`DISTINCT_TEMPLATES_SCHEMA`).

    The skeleton of each batch is computed once; a MinHash signature is computed only for ids
    not seen in an earlier batch (one representative each: every prompt with that id has the
    same skeleton), so the cost after the first batches is the fingerprint alone. ``count`` is
    the number of prompts with the id; rows are sorted by ``template_id``.
    """
    known = pa.array([], pa.string())
    sig_parts: list[pa.Table] = []
    count_parts: list[pa.Table] = []
    for batch in batches:
        arr = as_array(batch)
        skel = skeleton(arr)
        ids = skeleton_ids(skel, arr)
        t = pa.table({"template_id": ids, "i": pa.array(np.arange(len(ids), dtype=np.int64))})
        t = t.filter(pc.is_valid(t.column("template_id")))
        if t.num_rows == 0:
            continue
        g = t.group_by("template_id", use_threads=False).aggregate([("i", "min"), ("i", "count")])
        count_parts.append(pa.table({"template_id": g.column("template_id"), "count": g.column("i_count")}))
        fresh = g.filter(pc.invert(pc.is_in(g.column("template_id"), value_set=known)))
        if fresh.num_rows == 0:
            continue
        sig, nsh = signatures(skel.take(fresh.column("i_min")), num_perm=num_perm, ngram=ngram, seed=seed)
        offsets = pa.array(np.arange(0, sig.size + 1, num_perm, dtype=np.int32))
        sig_parts.append(
            pa.table(
                {
                    "template_id": fresh.column("template_id"),
                    "minhash": pa.ListArray.from_arrays(offsets, pa.array(sig.reshape(-1))),
                    "shingles": pa.array(nsh.astype(np.int32)),
                }
            )
        )
        known = pa.concat_arrays([known, fresh.column("template_id").combine_chunks()])
    if not sig_parts:
        return DISTINCT_TEMPLATES_SCHEMA.empty_table()
    counts = (
        pa.concat_tables(count_parts).group_by("template_id", use_threads=False).aggregate([("count", "sum")])
    )
    sigs = pa.concat_tables(sig_parts)
    pos = pc.index_in(sigs.column("template_id"), value_set=counts.column("template_id").combine_chunks())
    out = sigs.append_column("count", counts.column("count_sum").combine_chunks().take(pos))
    out = out.sort_by("template_id")
    return out.select(DISTINCT_TEMPLATES_SCHEMA.names).cast(DISTINCT_TEMPLATES_SCHEMA)
