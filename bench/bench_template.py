"""Template fingerprint: speed and quality on real prompts (the figures in docs/signals-template.md).

    python bench/bench_template.py [--corpus ../shared/data/prompts] [--rows 200000] [--repeat 5]
                                   [--skip-speed] [--skip-quality] [--no-sim]

Speed: ``template_ids`` prompts/s on batches of ``--rows`` prompts drawn (with repetition)
from (a) the default scenario's simulated traffic, (b) real legitimate prompts (hh-rlhf,
Arena-Hard, MT-bench), (c) a real mix (T0 template prompts, legitimate prompts, GSM8K in
wrappers); best of ``--repeat`` runs after a warm-up, wall clock, all cores. Also MinHash
rows/s and the families pipeline on the quality set.

Quality (needs the corpus; T0 templates from ../shared/data/prompts/templates):
adjusted Rand index of template id and template family against the true template, how many
ids each true template splits into, the share of legitimate prompts whose id (family) is
shared with a *different* legitimate prompt, and how GSM8K questions in three wrappers
written for this benchmark map to ids.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillshield.backends import get_backend
from distillshield.signals.lsh import distinct_templates, family_of, template_families
from distillshield.signals.template import signatures, skeleton, template_ids

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"

#: Three ways a benchmark harness or a harvester might wrap a GSM8K question ({q}).
GSM8K_WRAPPERS: dict[str, str] = {
    "label": (
        "Solve the following math problem step by step. Show your reasoning, then give the final "
        'answer on its own line as "#### <number>".\n\nProblem: {q}'
    ),
    "suffix": "{q}\nLet's think step by step.",
    "tutor": (
        "You are a meticulous math tutor. Read the question below carefully and explain every step "
        "of the solution before stating the final answer.\n\nQuestion:\n{q}\n\nAnswer:"
    ),
}


def read_jsonl(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_templates(corpus: Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for f in sorted((corpus / "templates").glob("*.jsonl")):
        for row in read_jsonl(f):
            texts.append(str(row["prompt"]))
            labels.append(f.stem)
    return texts, labels


def first_human_turn(chosen: str) -> str:
    return chosen.split("Human:", 1)[-1].split("\n\nAssistant:", 1)[0].strip()


def load_legit(corpus: Path) -> dict[str, list[str]]:
    legit = corpus / "legit"
    return {
        "hh_rlhf": [
            first_human_turn(str(r["chosen"]))
            for r in read_jsonl(legit / "hh_rlhf_helpful_base_test.jsonl.gz")
        ],
        "arena_hard": [str(r["prompt"]) for r in read_jsonl(legit / "arena_hard_v0.1.jsonl")],
        "mt_bench": [str(r["turns"][0]) for r in read_jsonl(legit / "mt_bench.jsonl")],  # type: ignore[index]
    }


def load_gsm8k(corpus: Path) -> list[str]:
    return [str(r["question"]) for r in read_jsonl(corpus / "capability" / "gsm8k_test.jsonl")]


def collision_share(texts: list[str], keys: list[str | None]) -> float:
    """Share of texts whose key is shared with a different text."""
    by_key: dict[str | None, set[str]] = defaultdict(set)
    for t, k in zip(texts, keys, strict=True):
        by_key[k].add(t)
    return float(np.mean([k is not None and len(by_key[k]) > 1 for k in keys]))


def families_for(texts: list[str]) -> list[str | None]:
    """Template family of every text, through the relational pipeline on DuckDB."""
    arr = pa.array(texts, pa.string())
    backend = get_backend("duckdb")
    backend.register("templates", distinct_templates([arr]))
    fams = template_families(backend, "templates")
    out: list[str | None] = family_of(template_ids(arr), fams).to_pylist()
    return out


def quality(corpus: Path) -> None:
    from sklearn.metrics import adjusted_rand_score

    texts, labels = load_templates(corpus)
    ids = template_ids(pa.array(texts)).to_pylist()
    fams = families_for(texts)
    print(f"## quality: {len(texts)} prompts, {len(set(labels))} true templates (T0, self-instruct)")
    print(f"adjusted Rand index, template_id:     {adjusted_rand_score(labels, ids):.3f}")
    print(f"adjusted Rand index, template_family: {adjusted_rand_score(labels, fams):.3f}")
    per: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
    for lab, i, f in zip(labels, ids, fams, strict=True):
        per[lab].append((i, f))
    n_ids = [len({i for i, _ in v}) for v in per.values()]
    n_fams = [len({f for _, f in v}) for v in per.values()]
    top = [Counter(i for i, _ in v).most_common(1)[0][1] / len(v) for v in per.values()]
    print(
        f"ids per true template: median {statistics.median(n_ids):.0f}, "
        f"<=3 ids for {sum(k <= 3 for k in n_ids)}/{len(n_ids)} templates; families per template: "
        f"median {statistics.median(n_fams):.0f}, <=3 for {sum(k <= 3 for k in n_fams)}/{len(n_fams)}"
    )
    print(f"share of a template's prompts on its most common id: median {statistics.median(top):.2f}")
    merged = Counter(i for v in per.values() for i in {i for i, _ in v})
    print(f"ids shared by two or more true templates: {sum(c > 1 for c in merged.values())}")
    print("per template (prompts, ids, families, top-id share):")
    for lab, v in sorted(per.items()):
        c = Counter(i for i, _ in v)
        top_share = c.most_common(1)[0][1] / len(v)
        print(f"  {lab:55s} {len(v):4d} {len(c):4d} {len({f for _, f in v}):4d} {top_share:5.2f}")

    legit = load_legit(corpus)
    all_legit = [t for ts in legit.values() for t in ts]
    lids = template_ids(pa.array(all_legit)).to_pylist()
    lfams = families_for(all_legit)
    print(
        f"## legitimate prompts ({len(all_legit)}): share whose id / family is shared with a different prompt"
    )
    id_share, fam_share = collision_share(all_legit, lids), collision_share(all_legit, lfams)
    print(f"  all        id {id_share:.4f}  family {fam_share:.4f}")
    start = 0
    for name, ts in legit.items():
        sl = slice(start, start + len(ts))
        start += len(ts)
        print(
            f"  {name:10s} id {collision_share(ts, lids[sl]):.4f}"
            f"  family {collision_share(ts, lfams[sl]):.4f}  (n={len(ts)})"
        )

    gsm = load_gsm8k(corpus)
    print(f"## GSM8K questions ({len(gsm)}) in three wrappers: ids / families per wrapper, top-id share")
    wrapped = {name: [w.replace("{q}", q) for q in gsm] for name, w in GSM8K_WRAPPERS.items()}
    every = [t for ts in wrapped.values() for t in ts]
    wids = template_ids(pa.array(every)).to_pylist()
    wfams = families_for(every)
    start = 0
    for name, ts in wrapped.items():
        sl = slice(start, start + len(ts))
        start += len(ts)
        c = Counter(wids[sl])
        print(
            f"  {name:8s} ids {len(c):5d}  families {len(set(wfams[sl])):5d}  "
            f"top-id share {c.most_common(1)[0][1] / len(ts):.3f}"
        )
    shared = set(wids[: len(gsm)]) & set(wids[len(gsm) :])
    print(f"  ids shared between wrappers: {len(shared)}")


def simulated_prompts() -> list[str]:
    from distillshield.simulate import load_scenario, simulate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        simulate(load_scenario("default"), out, scale=0.1)
        import pyarrow.dataset as ds

        col = ds.dataset(out / "exchanges", format="parquet").to_table(columns=["prompt"]).column("prompt")
    return [t for t in col.to_pylist() if t]


def _word(k: int) -> str:
    """A lowercase word unique to ``k`` (survives every mask, so skeletons stay distinct)."""
    out = "zq"
    while True:
        out += chr(ord("a") + k % 26)
        k //= 26
        if not k:
            return out


def rate(fn: Callable[[], object], rows: int, repeat: int) -> tuple[float, float]:
    """(rows per wall-clock second, rows per CPU second of this process), best of ``repeat``.

    The CPU figure is per core and less sensitive to other load on a shared machine.
    """
    fn()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return rows / best_wall, rows / best_cpu


def speed(corpus: Path | None, rows: int, repeat: int, sim: bool) -> None:
    sets: dict[str, list[str]] = {}
    if sim:
        sets["simulated default scenario"] = simulated_prompts()
    if corpus is not None:
        legit = load_legit(corpus)
        sets["real legitimate"] = [t for ts in legit.values() for t in ts]
        texts, _ = load_templates(corpus)
        gsm = load_gsm8k(corpus)
        sets["real mix"] = (
            texts
            + sets["real legitimate"]
            + [w.replace("{q}", q) for w in GSM8K_WRAPPERS.values() for q in gsm]
        )
    print(f"## speed: best of {repeat} after a warm-up, wall clock, {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    for name, texts in sets.items():
        # (a) traffic: `rows` prompts drawn with repetition, as templated traffic repeats;
        # (b) worst case: every prompt made distinct by a unique leading word, so there is
        #     no repeated skeleton to deduplicate before hashing
        picks = rng.integers(0, len(texts), rows)
        batch = pa.array([texts[i] for i in picks], pa.string())
        distinct = pa.array([f"{_word(k)} {texts[i]}" for k, i in enumerate(picks)], pa.string())
        chars = float(np.mean([len(t) for t in batch.to_pylist()]))
        r, cpu = rate(partial(template_ids, batch), rows, repeat)
        r_d, cpu_d = rate(partial(template_ids, distinct), rows, repeat)
        print(f"  template_ids  {name:30s} {r:9,.0f} prompts/s {cpu:9,.0f}/CPU-s  (mean {chars:.0f} chars)")
        label = "  same, every skeleton distinct"
        print(f"                {label:30s} {r_d:9,.0f} prompts/s {cpu_d:9,.0f}/CPU-s")
    for name, texts in sets.items():
        uniq = pa.array(sorted(set(texts))[:50_000])
        skel = skeleton(uniq)
        r, cpu = rate(partial(signatures, skel), len(uniq), repeat)
        print(f"  minhash       {name:30s} {r:9,.0f} skeletons/s {cpu:9,.0f}/CPU-s (64 perms, 3-grams)")
    if corpus is not None:
        texts = sets["real mix"]
        t0 = time.perf_counter()
        table = distinct_templates([pa.array(texts[i : i + 5000]) for i in range(0, len(texts), 5000)])
        t1 = time.perf_counter()
        backend = get_backend("duckdb")
        backend.register("templates", table)
        template_families(backend, "templates")
        t2 = time.perf_counter()
        print(
            f"  families: {len(texts)} prompts -> {table.num_rows} distinct templates in {t1 - t0:.2f} s, "
            f"LSH + connected components (DuckDB) {t2 - t1:.2f} s"
        )


def families_at_scale(n: int) -> None:
    """LSH + connected components on ``n`` synthetic distinct templates in clusters of ~10."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, (max(1, n // 10), 64), dtype=np.uint64).astype(np.uint32)
    sig = base[rng.integers(0, len(base), n)]
    noise = rng.random((n, 64)) < 0.2  # members of a cluster agree on ~64% of positions
    sig[noise] = rng.integers(0, 2**32, int(noise.sum()), dtype=np.uint64).astype(np.uint32)
    table = pa.table(
        {
            "template_id": pa.array([f"{i:016x}" for i in range(n)]),
            "minhash": pa.ListArray.from_arrays(
                pa.array(np.arange(0, 64 * n + 1, 64, dtype=np.int32)), pa.array(sig.reshape(-1))
            ),
            "shingles": pa.array(np.full(n, 20, np.int32)),
        }
    )
    backend = get_backend("duckdb")
    backend.register("templates", table)
    t = time.perf_counter()
    fams = template_families(backend, "templates")
    dt = time.perf_counter() - t
    k = len(set(fams.column("template_family").to_pylist()))
    print(f"  families: {n:,} synthetic distinct templates ({len(base):,} clusters)", end=" ")
    print(f"-> {k:,} families in {dt:.1f} s (LSH + verification + connected components, DuckDB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--no-sim", action="store_true", help="skip the simulated traffic speed set")
    ap.add_argument("--families-scale", type=int, default=300_000, help="synthetic templates (0: skip)")
    args = ap.parse_args()
    corpus: Path | None = args.corpus if (args.corpus / "templates").is_dir() else None
    if corpus is None:
        print(f"corpus {args.corpus} not found: quality figures and real-prompt speed sets skipped")
    if not args.skip_quality and corpus is not None:
        quality(corpus)
    if not args.skip_speed:
        speed(corpus, args.rows, args.repeat, not args.no_sim)
        if args.families_scale:
            families_at_scale(args.families_scale)


if __name__ == "__main__":
    main()
