"""Quality and speed of the chain-of-thought elicitation and capability signals.

    python bench/bench_cot_capability.py [quality] [speed] [model]
        [--corpus ../shared/data/prompts] [--scale 0.1] [--repeat 7]

``quality``  CoT precision/recall per split of the shipped labelled set (and recall per
             language), CoT false-positive and step-by-step rates on real legitimate prompts,
             capability accuracy per real source, and the confusion matrix on the mapped
             arena-hard clusters + MT-bench categories (docs/signals-cot-capability.md).
``speed``    prompts/s of ``cot_elicitation`` and ``classify`` on the default simulated
             scenario (typical traffic mix) and on real hh-rlhf prompts; best of ``--repeat``
             runs, CPU time of this process (robust to other load on the machine) and wall time.
``model``    the experiment behind "no shipped model": a char n-gram TF-IDF logistic
             regression trained on the ``dev`` split, against the rules, on the held-out splits
             and on real legitimate prompts.

With no sub-command all three run. Real-data sections are skipped when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distillshield.signals.capability import CATEGORIES, classify, legit_prompts, reference_items
from distillshield.signals.cot import EXPOSE, LABELS, STEP, cot_elicitation

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"


def load_eval() -> list[dict[str, Any]]:
    text = resources.files("distillshield.signals").joinpath("data/cot_eval.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def prf(truth: Sequence[str], pred: Sequence[str], label: str) -> tuple[float, float, int, int, int]:
    tp = sum(t == label and p == label for t, p in zip(truth, pred, strict=True))
    fp = sum(t != label and p == label for t, p in zip(truth, pred, strict=True))
    fn = sum(t == label and p != label for t, p in zip(truth, pred, strict=True))
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn


def cot_quality(corpus: Path | None) -> None:
    rows = load_eval()
    pred = cot_elicitation(pa.array([r["text"] for r in rows]))[0].to_pylist()
    print("## CoT elicitation: labelled set (src/distillshield/signals/data/cot_eval.jsonl)\n")
    print("| split | n | expose P | expose R | step P | step R | none P | none R |")
    print("|---|---|---|---|---|---|---|---|")
    for split in ("dev", "test", "test2", "all"):
        idx = [i for i, r in enumerate(rows) if split == "all" or r["split"] == split]
        t = [rows[i]["label"] for i in idx]
        p = [pred[i] for i in idx]
        cells = []
        for label in (EXPOSE, STEP, "none"):
            pr, rc, *_ = prf(t, p, label)
            cells += [f"{pr:.3f}", f"{rc:.3f}"]
        print(f"| {split} | {len(idx)} | " + " | ".join(cells) + " |")
    print("\nexpose_reasoning recall by language (all splits):")
    by_lang: dict[str, list[bool]] = {}
    for r, p in zip(rows, pred, strict=True):
        if r["label"] == EXPOSE:
            by_lang.setdefault(r["language"], []).append(p == EXPOSE)
    print("  " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(by_lang.items())))
    if corpus is None:
        print("\n(corpus absent: real-data figures skipped)")
        return
    print("\n## CoT elicitation on real legitimate prompts\n")
    print("| source | prompts | expose_reasoning | rate | step_by_step | rate |")
    print("|---|---|---|---|---|---|")
    total = Counter[str]()
    for name, prompts in legit_prompts(corpus).items():
        c = Counter(cot_elicitation(pa.array(prompts))[0].to_pylist())
        total.update(c)
        n = len(prompts)
        print(f"| {name} | {n} | {c[EXPOSE]} | {c[EXPOSE] / n:.4f} | {c[STEP]} | {c[STEP] / n:.4f} |")
    n = sum(total.values())
    print(
        f"| all | {n} | {total[EXPOSE]} | {total[EXPOSE] / n:.4f} | {total[STEP]} | {total[STEP] / n:.4f} |"
    )


def capability_quality(corpus: Path | None) -> None:
    if corpus is None:
        print("\n(corpus absent: capability figures skipped)")
        return
    items = reference_items(corpus)
    pred = classify(
        pa.array([i.prompt for i in items]), pa.array([i.system_prompt for i in items], pa.string())
    ).to_pylist()
    print("\n## Capability targeting on real prompt sets\n")
    print("| source | n | accuracy | predicted |")
    print("|---|---|---|---|")
    by_src: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_src.setdefault(it.source, []).append(i)
    for src, idx in by_src.items():
        acc = sum(pred[i] == items[i].expected for i in idx) / len(idx)
        dist = Counter(pred[i] for i in idx).most_common()
        print(f"| {src} | {len(idx)} | {acc:.3f} | " + ", ".join(f"{k} {v}" for k, v in dist) + " |")
    cats = list(CATEGORIES)
    mapped = [i for i, it in enumerate(items) if it.source in ("arena_hard", "mt_bench")]
    cm = Counter((items[i].expected, pred[i]) for i in mapped)
    print(
        "\nConfusion matrix, arena-hard (mapped clusters) + MT-bench (rows: expected, columns: predicted)\n"
    )
    print("| expected \\ predicted | " + " | ".join(cats) + " |")
    print("|---" * (len(cats) + 1) + "|")
    for e in cats:
        if any(cm[(e, p)] for p in cats):
            print(f"| {e} | " + " | ".join(str(cm[(e, p)]) for p in cats) + " |")
    print("\nCategory mix of real legitimate prompts (no ground truth; hh-rlhf is mostly everyday chat):\n")
    for name, prompts in legit_prompts(corpus).items():
        mix = Counter(classify(pa.array(prompts)).to_pylist())
        n = len(prompts)
        print(f"- {name} ({n}): " + ", ".join(f"{k} {v / n:.1%}" for k, v in mix.most_common()))


def _best(fn: Callable[[], object], n: int, repeat: int) -> tuple[float, float]:
    cpu, wall = 0.0, 0.0
    fn()  # warm-up: regex compilation, page faults
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        c1, w1 = time.process_time(), time.perf_counter()
        cpu, wall = max(cpu, n / max(c1 - c0, 1e-9)), max(wall, n / max(w1 - w0, 1e-9))
    return cpu, wall


def speed(corpus: Path | None, scale: float, repeat: int) -> None:
    import os

    import pyarrow.dataset as ds

    from distillshield.simulate import load_scenario, simulate

    print("\n## Throughput\n")
    print(
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, pyarrow {pa.__version__}; load average {os.getloadavg()[0]:.1f}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        simulate(load_scenario("default"), Path(tmp) / "d", scale=scale)
        cols = ["prompt", "system_prompt", "tools", "n_messages"]
        table = ds.dataset(Path(tmp) / "d" / "exchanges").to_table(columns=cols)
    sets: list[tuple[str, list[pa.ChunkedArray | pa.Array]]] = [
        (f"default scenario x{scale} ({table.num_rows} requests)", [table.column(c) for c in cols])
    ]
    if corpus is not None:
        hh = pa.array(legit_prompts(corpus)["hh_rlhf"] * 20)
        sets.append((f"hh-rlhf first turns x20 ({len(hh)})", [hh]))
    print("| data | mean chars | cot_elicitation CPU / wall (prompts/s) | classify CPU / wall (prompts/s) |")
    print("|---|---|---|---|")
    for name, args in sets:
        prompts = args[0]
        n = len(prompts)
        chars = float(np.nanmean(pa.compute.utf8_length(prompts).to_numpy(zero_copy_only=False)))
        c_cpu, c_wall = _best(lambda: cot_elicitation(prompts), n, repeat)  # noqa: B023
        k_cpu, k_wall = _best(lambda: classify(*args), n, repeat)  # noqa: B023
        print(f"| {name} | {chars:.0f} | {c_cpu:,.0f} / {c_wall:,.0f} | {k_cpu:,.0f} / {k_wall:,.0f} |")


def model_experiment(corpus: Path | None) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    rows = load_eval()
    dev = [r for r in rows if r["split"] == "dev"]
    legit = [p for ps in legit_prompts(corpus).values() for p in ps] if corpus is not None else []
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    x = vec.fit_transform([r["text"] for r in dev])
    clf = LogisticRegression(C=10, max_iter=5000, class_weight="balanced")
    clf.fit(x, [r["label"] == EXPOSE for r in dev])
    print("\n## Trained char n-gram model vs rules (expose_reasoning), model trained on `dev`\n")
    print("| split | method | precision | recall | legit expose rate |")
    print("|---|---|---|---|---|")
    legit_rule = np.array([p == EXPOSE for p in cot_elicitation(pa.array(legit))[0].to_pylist()], dtype=bool)
    legit_prob = clf.predict_proba(vec.transform(legit))[:, 1] if legit else np.zeros(0)
    for split in ("test", "test2"):
        part = [r for r in rows if r["split"] == split]
        truth = ["e" if r["label"] == EXPOSE else "o" for r in part]
        rule = np.array(
            [p == EXPOSE for p in cot_elicitation(pa.array([r["text"] for r in part]))[0].to_pylist()]
        )
        prob = clf.predict_proba(vec.transform([r["text"] for r in part]))[:, 1]
        variants = [("rules", rule, legit_rule)]
        for th in (0.5, 0.7):
            variants.append((f"model p>={th}", prob >= th, legit_prob >= th))
            variants.append((f"rules OR model p>={th}", rule | (prob >= th), legit_rule | (legit_prob >= th)))
        for name, hit, leg in variants:
            pr, rc, *_ = prf(truth, ["e" if h else "o" for h in hit], "e")
            rate = f"{leg.mean():.4f}" if len(leg) else "n/a"
            print(f"| {split} | {name} | {pr:.3f} | {rc:.3f} | {rate} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", choices=["quality", "speed", "model", []], default=[])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    what = set(args.what or ["quality", "speed", "model"])
    corpus: Path | None = args.corpus if args.corpus.is_dir() else None
    assert set(LABELS) == {EXPOSE, STEP, "none"}
    if "quality" in what:
        cot_quality(corpus)
        capability_quality(corpus)
    if "model" in what:
        model_experiment(corpus)
    if "speed" in what:
        speed(corpus, args.scale, args.repeat)


if __name__ == "__main__":
    main()
