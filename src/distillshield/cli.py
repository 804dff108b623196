"""The ``distillshield`` command line.

Every command prints a table of what it did and exits non-zero with a one-line reason on
error (``DistillShieldError`` and file errors); tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from distillshield import __version__
from distillshield.errors import DistillShieldError

if TYPE_CHECKING:
    from distillshield.backends import Backend

app = typer.Typer(
    name="distillshield",
    help="Detect, attribute and blunt illicit distillation of an LLM API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables are the output: when piped (CI logs, files) don't squeeze them into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _fail(msg: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn expected failures into a one-line reason and exit status 1."""
    try:
        yield
    except DistillShieldError as exc:
        _fail(str(exc))
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=max(done, total) if total else None)

        yield update


def _version(value: bool) -> None:
    if value:
        console.print(f"distillshield {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Detect, attribute and blunt illicit distillation of an LLM API."""


# --------------------------------------------------------------------------------------- simulate
def _summary_table(manifest: Any) -> Table:
    t = Table(
        title=f"scenario {manifest.scenario} (seed {manifest.seed}, "
        f"scale {manifest.scale:g}, {manifest.days} days)"
    )
    t.add_column("persona")
    t.add_column("accounts", justify="right")
    t.add_column("exchanges", justify="right")
    for name, v in sorted(manifest.by_persona.items()):
        t.add_row(name, f"{v['accounts']:,}", f"{v['exchanges']:,}")
    t.add_row("[bold]total", f"[bold]{manifest.accounts:,}", f"[bold]{manifest.exchanges:,}")
    return t


def _campaign_table(manifest: Any) -> Table:
    t = Table(title="campaigns (ground truth)")
    for c in ("campaign", "accounts", "exchanges", "of which distillation"):
        t.add_column(c, justify="right" if c != "campaign" else "left")
    for cid, v in sorted(manifest.by_campaign.items()):
        t.add_row(cid, f"{v['accounts']:,}", f"{v['exchanges']:,}", f"{v['campaign_exchanges']:,}")
    return t


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Dataset directory to write (docs/schema.md).")],
    scenario: Annotated[
        str, typer.Option("--scenario", help="Built-in scenario name or a YAML file.")
    ] = "default",
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    scale: Annotated[
        float, typer.Option(min=0.0001, help="Multiply every account count and campaign volume.")
    ] = 1.0,
    corpus: Annotated[Path | None, typer.Option(help="Real prompts, e.g. ../shared/data/prompts.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output directory.")] = False,
) -> None:
    """Simulate API traffic with ground truth: legitimate personas and distillation campaigns."""
    from distillshield.simulate import load_scenario
    from distillshield.simulate import simulate as run

    with _errors():
        if corpus is not None and not corpus.is_dir():
            _fail(f"--corpus {corpus}: not a directory")
        sc = load_scenario(scenario, seed=seed)
        with _progress(f"simulating {sc.name}") as update:
            manifest = run(sc, out, scale=scale, corpus=corpus, progress=update, overwrite=overwrite)
    console.print(_summary_table(manifest))
    console.print(_campaign_table(manifest))
    console.print(f"wrote {out}")


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from distillshield.simulate import builtin_scenarios, load_scenario

    t = Table(title="built-in scenarios")
    for c in ("name", "days", "accounts", "campaign exchanges", "description"):
        t.add_column(c)
    for name in builtin_scenarios():
        sc = load_scenario(name)
        accts = sum(p.accounts for p in sc.legitimate) + sum(c.accounts for c in sc.campaigns)
        t.add_row(
            name, str(sc.days), f"{accts:,}", f"{sum(c.exchanges for c in sc.campaigns):,}", sc.description
        )
    console.print(t)


# --------------------------------------------------------------------------------------- detect / evaluate
@app.command()
def baseline(
    data: Annotated[Path, typer.Argument(help="Dataset directory (canonical schema).")],
    out: Annotated[Path, typer.Option("--out", help="Detections directory to write.")],
    quantile: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Per-account-day volume quantile used as the threshold.")
    ] = 0.99,
) -> None:
    """A deliberately trivial volume-threshold detector (the reference every detector must beat)."""
    from distillshield.scoring.baseline import volume_baseline

    with _errors(), err.status("scoring accounts (volume baseline)"):
        volume_baseline(data, out, quantile=quantile)
    console.print(f"wrote {out}")


@app.command()
def evaluate(
    labels: Annotated[Path, typer.Option("--labels", help="Ground-truth labels directory (DATA/labels).")],
    detections: Annotated[Path, typer.Option("--detections", help="Detector output directory (DET).")],
    data: Annotated[
        Path | None, typer.Option(help="Dataset directory (default: the parent of --labels).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Score detections against ground truth: accounts, campaigns, time to detect, harvest leakage."""
    from distillshield.evaluate import evaluate as run
    from distillshield.evaluate import render_report

    with _errors(), err.status("evaluating detections against ground truth"):
        report = run(labels, detections, data_dir=data)
    _print_report(render_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2, default=str))
        console.print(f"wrote {json_out}")


def _print_report(renderable: Any) -> None:
    if isinstance(renderable, list | tuple):
        for r in renderable:
            console.print(r)
    else:
        console.print(renderable)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Working directory for the demo.")] = Path("runs/demo"),
    scale: Annotated[
        float, typer.Option(min=0.0001, help="Scale the default scenario (e.g. 0.1 for a quick look).")
    ] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    corpus: Annotated[Path | None, typer.Option(help="Real prompts, e.g. ../shared/data/prompts.")] = None,
    every: Annotated[str, typer.Option(help="Replay cadence (12h keeps the demo under 3 minutes).")] = "12h",
) -> None:
    """The main job on the embedded default: simulate, prepare, scan, replay, evaluate."""
    from distillshield.detect import scan as run_scan
    from distillshield.detect.replay import replay as run_replay
    from distillshield.evaluate import evaluate as run_eval
    from distillshield.evaluate import render_report
    from distillshield.simulate import load_scenario
    from distillshield.simulate import simulate as run_sim

    data, det, rep = out / "data", out / "scan", out / "replay"
    with _errors():
        sc = load_scenario("default", seed=seed)
        with _progress("simulating default") as update:
            manifest = run_sim(sc, data, scale=scale, corpus=corpus, progress=update, overwrite=True)
        console.print(_summary_table(manifest))
        console.print(_campaign_table(manifest))
    _run_prepare(data, None, force=True, infra=None)
    with _errors():
        with err.status("scanning"):
            result = run_scan(data, det)
        console.print(_campaigns_table(result.campaigns, f"scan: {len(result.campaigns)} campaigns"))
        with _progress(f"replaying every {every}") as update:
            run_replay(data, rep, every=every, progress=update)
        with err.status("evaluating"):
            report = run_eval(data / "labels", rep, data_dir=data)
    console.print(f"[bold]evaluation of the replay[/] (every {every}; flags as they were raised):")
    _print_report(render_report(report))
    (out / "evaluation.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
    console.print(
        f"report: {det / 'report.html'} (scan), {rep / 'report.html'} (replay); "
        f"evaluation: {out / 'evaluation.json'}"
    )


rules_app = typer.Typer(help="Detection rules as data (docs/rules.md).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("lint")
def rules_lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Rule files or directories; default the shipped rules.")
    ] = None,
) -> None:
    """Validate rules: structure, SQL, columns, weights, and every positive/negative sample."""
    from distillshield.backends import get_backend
    from distillshield.scoring.rules import check_samples, lint, load_rules

    with _errors():
        rules = load_rules(paths or None)
        issues = lint(rules) + check_samples(rules, get_backend())
    for issue in issues:
        err.print(str(issue), highlight=False, soft_wrap=True)
    if issues:
        _fail(f"{len(issues)} issue(s) in {len(rules)} rule(s)")
    console.print(f"{len(rules)} rule(s) clean: lint and samples pass")


# ------------------------------------------------------------------------------ scan / replay / train
def _when(text: str | None, flag: str) -> datetime | None:
    """ISO date or timestamp; no zone means UTC (log timestamps are UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"{flag} {text!r}: not an ISO date or timestamp (e.g. 2026-02-03 or 2026-02-03T06:00Z)")
        raise  # unreachable: _fail exits
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_BackendOpt = Annotated[
    str | None, typer.Option("--backend", help="Query engine: duckdb (default) or spark (docs/spark.md).")
]
_ThinFloorOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Evidence floor: hold a flag on fewer requests than this unless a card, address, "
        "prefix, sign-up, metadata value or hub (a client stack dozens run, most of them "
        "flagged) links the account to another flagged one "
        "(default: the model's 10 pseudo-requests, detect.floor.THIN_FLOOR; 0: off).",
    ),
]
_DormantOpt = Annotated[
    bool,
    typer.Option(
        help="Also flag registered accounts with no request yet whose card or sign-up they share "
        "with at least two flagged accounts, most of those they share it with "
        "(detect.dormant).",
    ),
]
_BackendConfigOpt = Annotated[
    Path | None,
    typer.Option("--backend-config", help="TOML file: the backend and its options (docs/spark.md)."),
]


@contextmanager
def _engine(name: str | None, config: Path | None, memory_limit: str | None = None) -> Iterator[Backend]:
    """The backend from --backend, --backend-config and --memory-limit; closed afterwards."""
    from distillshield.backends import open_backend

    backend = open_backend(name, config, memory_limit=memory_limit)
    try:
        yield backend
    finally:
        backend.close()


def _campaigns_table(campaigns: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    for col in ("campaign", "actor", "accounts", "exchanges", "score", "first seen", "summary"):
        t.add_column(
            col, justify="right" if col in ("accounts", "exchanges", "score") else "left", overflow="fold"
        )
    for c in campaigns[:20]:
        t.add_row(
            c["id"],
            c.get("actor") or "—",
            f"{c['size']:,}",
            f"{c['exchanges']:,}",
            f"{c['score']:.2f}",
            (c.get("first_seen") or "")[:16].replace("T", " "),
            c.get("summary", ""),
        )
    if len(campaigns) > 20:
        t.caption = f"{len(campaigns) - 20} more in campaigns.json"
    return t


def _steps_table(result: Any, title: str) -> Table:
    t = Table(title=title)
    for c in ("step", "rows", "seconds"):
        t.add_column(c, justify="left" if c == "step" else "right")
    for s in result.steps:
        t.add_row(s.name, f"{s.rows:,}", f"{s.seconds:.2f}")
    return t


@app.command()
def scan(
    data: Annotated[Path, typer.Argument(help="Dataset directory (canonical schema; prepared if needed).")],
    out: Annotated[Path, typer.Option("--out", help="Detections directory to write.")],
    backend: _BackendOpt = None,
    backend_config: _BackendConfigOpt = None,
    since: Annotated[
        str | None, typer.Option(help="Only exchanges at or after this time (ISO, UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only exchanges before this time (ISO, UTC).")] = None,
    model: Annotated[Path | None, typer.Option(help="Account model JSON (default: the shipped one).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    memory_limit: Annotated[
        str | None, typer.Option(help="Engine memory cap, e.g. 6GB (spills to a temporary directory).")
    ] = None,
    daily: Annotated[
        bool, typer.Option(help="Also write daily_fingerprints.parquet (one row per account-day).")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Incremental state directory: summarise only [state's end, --until) and add it "
            "to the state; campaign ids stay stable across runs (docs/incremental.md)."
        ),
    ] = None,
    intel: Annotated[
        Path | None,
        typer.Option(
            help="Peers' evidence: the --out directory of `distillshield intel hunt`; raises the "
            "scores of accounts peers reported (noisy-OR, docs/intel.md)."
        ),
    ] = None,
    intel_weight: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Trust in peers' confidence: 1 as stated, 0 ignores it."),
    ] = 1.0,
    thin_floor: _ThinFloorOpt = 10,
    dormant: _DormantOpt = True,
) -> None:
    """Detect distillation campaigns: DET/accounts.parquet, campaigns.json and report.html."""
    from distillshield.detect import load_model
    from distillshield.detect import scan as run
    from distillshield.detect.incremental import scan_increment

    lo, hi = _when(since, "--since"), _when(until, "--until")
    if state is not None and daily:
        raise typer.BadParameter("--daily is not available with --state", param_hint="--daily")
    with _errors(), err.status(f"scanning {data}"), _engine(backend, backend_config, memory_limit) as engine:
        common: dict[str, Any] = {
            "since": lo,
            "until": hi,
            "backend": engine,
            "model": load_model(model),
            "report": report,
            "intel": intel,
            "intel_weight": intel_weight,
            "thin_floor": thin_floor,
            "dormant": dormant,
        }
        if state is not None:
            result = scan_increment(data, state, out, **common)
        else:
            result = run(data, out, daily=daily, **common)
    console.print(_steps_table(result, f"scan {data}"))
    console.print(_campaigns_table(result.campaigns, f"{len(result.campaigns)} campaigns"))
    s = result.summary
    if intel is not None:
        console.print(
            f"peers' intelligence: {s['intel_accounts']:,} account(s) reported, "
            f"{s['intel_flagged_by_intel']:,} flagged only because of it"
        )
    named = int(s.get("dormant_flagged", 0))
    dormant_note = f" and {named:,} registered account(s) with no request yet" if named else ""
    flagged = s["accounts_flagged"] - named
    console.print(f"{flagged:,} of {s['accounts_scanned']:,} accounts flagged{dormant_note}; wrote {out}")


@app.command()
def replay(
    data: Annotated[Path, typer.Argument(help="Dataset directory (canonical schema; prepared if needed).")],
    out: Annotated[Path, typer.Option("--out", help="Detections directory to write.")],
    every: Annotated[str, typer.Option(help="Cadence of the batch job, e.g. 6h, 30m, 1d.")] = "6h",
    backend: _BackendOpt = None,
    backend_config: _BackendConfigOpt = None,
    model: Annotated[Path | None, typer.Option(help="Account model JSON (default: the shipped one).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    memory_limit: Annotated[
        str | None, typer.Option(help="Engine memory cap, e.g. 6GB (spills to a temporary directory).")
    ] = None,
    thin_floor: _ThinFloorOpt = 10,
    dormant: _DormantOpt = True,
) -> None:
    """Run detection at a cadence on the data available at each step; fills first_flagged_at."""
    from distillshield.detect import load_model
    from distillshield.detect.replay import replay as run

    with (
        _errors(),
        _engine(backend, backend_config, memory_limit) as engine,
        _progress(f"replaying every {every}") as update,
    ):
        result = run(
            data,
            out,
            every=every,
            backend=engine,
            model=load_model(model),
            report=report,
            progress=update,
            thin_floor=thin_floor,
            dormant=dormant,
        )
    console.print(_campaigns_table(result.campaigns, f"{len(result.campaigns)} campaigns at the last step"))
    s = result.summary
    console.print(f"{s['steps']} steps; {s['accounts_flagged']:,} accounts flagged at some step; wrote {out}")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="Model JSON to write.")],
    scenario: Annotated[
        list[Path] | None, typer.Option(help="Training scenario YAML (repeatable); default the shipped ones.")
    ] = None,
    work: Annotated[Path | None, typer.Option(help="Keep the simulated training data here.")] = None,
    scale: Annotated[float, typer.Option(min=0.0001, help="Scale the training scenarios.")] = 1.0,
) -> None:
    """Fit the account model on simulated scenarios other than the evaluated ones."""
    from distillshield.detect.train import train as run

    with _errors():
        model = run(out, scenarios=scenario, work_dir=work, scale=scale, log=lambda m: err.print(m))
    console.print(
        f"trained on {model.provenance['rows']:,} rows "
        f"({model.provenance['positives']:,} campaign; heads: {', '.join(model.head_names)}); wrote {out}"
    )


# --------------------------------------------------------------------------------------- ingest
def _ingest_table(report: Any) -> Table:
    from collections import Counter

    t = Table(title=f"ingest --format {report.format} → {report.out}")
    t.add_column("source", overflow="fold")  # paths are long: wrap them, never cut them
    for c in ("table", "read", "accepted", "duplicates", "quarantined", "skipped"):
        t.add_column(c, justify="left" if c == "table" else "right")
    rows = report.sources
    lines: list[tuple[str, str, int, int, int, Counter[str], int]] = [
        (s.source, s.table, s.read, s.accepted, s.duplicates, s.quarantined, s.skipped) for s in rows
    ]
    if len(rows) > 40:  # e.g. a simulator dataset of 150 part files: one line per folder
        grouped: dict[tuple[str, str], list[Any]] = {}
        for s in rows:
            grouped.setdefault((str(Path(s.source.split(" + ")[0]).parent), s.table), []).append(s)
        lines = [
            (
                f"{folder}/ ({len(ss)} files)" if len(ss) > 1 else ss[0].source,
                table,
                sum(s.read for s in ss),
                sum(s.accepted for s in ss),
                sum(s.duplicates for s in ss),
                sum((s.quarantined for s in ss), start=Counter()),
                sum(s.skipped for s in ss),
            )
            for (folder, table), ss in grouped.items()
        ]
    for source, table, read, accepted, dups, quarantined, skipped in lines:
        q = sum(quarantined.values())
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(quarantined.items()))
        t.add_row(
            source,
            table,
            f"{read:,}",
            f"{accepted:,}",
            f"{dups:,}",
            f"{q:,}" + (f" ({reasons})" if reasons else ""),
            f"{skipped:,}" if skipped else "",
        )
    return t


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Log files or directories to read.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="Input format: canonical, openai, litellm or otel (docs/ingest.md)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Dataset directory to create or append to.")],
    no_content: Annotated[
        bool,
        typer.Option(
            "--no-content",
            help="Keep only derived fields: signals from redacted text, then drop prompt/response.",
        ),
    ] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per part file and per read (bounds memory).")
    ] = 100_000,
    enrich: Annotated[
        bool, typer.Option(help="Then enrich the whole dataset (IP, client, account facts).")
    ] = True,
    infra: Annotated[
        Path | None, typer.Option(help="Operator's hosting/VPN/Tor lists (docs/enrichment.md).")
    ] = None,
    default: Annotated[
        list[str] | None,
        typer.Option(
            "--default",
            help="COLUMN=VALUE for exchanges a source leaves without it, e.g. account_id=… ip=… ts=… "
            "(Batch API files carry no caller). Repeatable.",
        ),
    ] = None,
    backend: _BackendOpt = None,
    backend_config: _BackendConfigOpt = None,
) -> None:
    """Ingest provider logs into a canonical dataset: validate, quarantine, dedup, redact, signals."""
    from distillshield.ingest import ingest as run

    defaults: dict[str, str] = {}
    for item in default or []:
        column, sep, value = item.partition("=")
        if not sep or not column:
            _fail(f"--default {item!r}: expected COLUMN=VALUE")
        defaults[column.strip()] = value
    with _errors(), _progress(f"ingesting {fmt}") as update:
        report = run(
            fmt, inputs, out, no_content=no_content, chunk_rows=chunk_rows, progress=update, defaults=defaults
        )
    console.print(_ingest_table(report))
    status = "[green]reconciles[/]" if report.reconciles else "[bold red]DOES NOT RECONCILE[/]"
    console.print(
        f"read {report.read:,} = accepted {report.accepted:,} + duplicates {report.duplicates:,} "
        f"+ quarantined {report.quarantined:,}: {status}"
        + (f"; {report.skipped:,} non-exchange records skipped" if report.skipped else "")
    )
    console.print(
        f"{report.read / report.seconds if report.seconds else 0:,.0f} exchanges/s; "
        f"{len(report.exchange_parts)} exchange part(s), "
        f"{report.quarantine_rows_written:,} quarantine row(s) written; "
        f"{report.redactions:,} redaction(s); accounts: {report.accounts_sourced:,} sourced, "
        f"{report.accounts_inferred:,} inferred"
    )
    console.print(f"wrote {out} (report: {out / 'ingest_report.json'})")
    if not report.reconciles:
        raise typer.Exit(code=1)
    if enrich and report.exchange_parts:
        _run_prepare(out, ["enrichment"], force=True, infra=infra, backend=backend, config=backend_config)


def _run_prepare(
    data: Path,
    steps: list[str] | None,
    *,
    force: bool,
    infra: Path | None,
    backend: str | None = None,
    config: Path | None = None,
) -> None:
    from distillshield.enrich import InfraLists
    from distillshield.prepare import DRIVER_WORK
    from distillshield.prepare import prepare as run

    with _errors():
        lists = InfraLists.from_dir(infra) if infra else None
        with _engine(backend, config) as engine, _progress("preparing") as update:
            if engine.dialect != "duckdb":
                for step in steps or DRIVER_WORK:
                    if step in DRIVER_WORK:
                        err.print(f"{step}: on the driver: {DRIVER_WORK[step]}", highlight=False)
            results = run(data, steps=steps, force=force, lists=lists, progress=update, backend=engine)
    t = Table(title=f"prepared {data}")
    for c in ("step", "rows", "seconds", "rows/s", "note"):
        t.add_column(c, justify="left" if c in ("step", "note") else "right")
    for r in results:
        rate = f"{r.rows / r.seconds:,.0f}" if r.seconds else "—"
        t.add_row(r.name, f"{r.rows:,}", f"{r.seconds:.1f}", rate, r.skipped or "")
    console.print(t)


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="Dataset directory (canonical schema).")],
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated steps to run (signals, enrichment); default all.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute steps whose output already exists.")] = False,
    infra: Annotated[
        Path | None, typer.Option(help="Operator's hosting/VPN/Tor lists (docs/enrichment.md).")
    ] = None,
    backend: _BackendOpt = None,
    backend_config: _BackendConfigOpt = None,
) -> None:
    """Compute what detection reads from a canonical dataset: request signals and enrichment."""
    steps_list = steps.split(",") if steps else None
    _run_prepare(data, steps_list, force=force, infra=infra, backend=backend, config=backend_config)


# ------------------------------------------------------------------------------ verify
@app.command()
def verify(
    request: Annotated[
        Path | None, typer.Argument(help="Sign-up/upgrade request JSON file, or - for stdin.")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Verification policy YAML (docs/verify.md).")] = None,
    verdicts: Annotated[
        Path | None, typer.Option(help="Detection directory: links to known campaigns.")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Velocity state JSON, read and updated (sign-ups seen so far).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Assess without counting the sign-up.")] = False,
    evaluate: Annotated[
        Path | None,
        typer.Option(help="Instead: replay DATA's sign-ups and measure the policy against its labels."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --evaluate: the report as JSON.")] = False,
    peers: Annotated[
        list[Path] | None,
        typer.Option(
            "--peers",
            help="Peers' STIX bundle or MISP JSON (repeatable): addresses, prefixes, clients and "
            "keyed payment hashes they reported (docs/verify.md).",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Community key: lets --peers' keyed payment hashes match."),
    ] = None,
) -> None:
    """Verification risk of a sign-up or upgrade: risk, reasons, and the step to require."""
    from distillshield.access import (
        SignupRequest,
        VelocityState,
        Verifier,
        evaluate_signups,
        load_verify_policy,
    )
    from distillshield.gateway import build_verdicts

    with _errors():
        pol = load_verify_policy(policy) if policy else None
        known = build_verdicts(verdicts) if verdicts else None
        peer_key = _key(key_file, required=False)
        if evaluate is not None:
            # a replay spans the data's period: indicators are not aged out by today's date
            peer_index = _peer_index(peers, peer_key, as_of=None) if peers else None
            report = evaluate_signups(
                evaluate, policy=pol, verdicts=known, peers=peer_index, peer_key=peer_key
            )
            console.print(
                json.dumps(report.to_dict(), indent=2) if as_json else report.render(),
                markup=False,
                highlight=False,
            )
            return
        if request is None:
            _fail("give a REQUEST.json (or -) or --evaluate DATA")
            return
        raw = sys.stdin.read() if str(request) == "-" else request.read_text(encoding="utf-8")
        try:
            body = json.loads(raw)
            req = SignupRequest.from_mapping(body)
        except ValueError as exc:
            field = getattr(exc, "field", None)
            _fail(f"{request}: {exc}" + (f" (field {field!r})" if field else ""))
            return
        old = VelocityState.from_dict(json.loads(state.read_text())) if state and state.is_file() else None
        as_of = datetime.fromtimestamp(req.ts, UTC)
        peer_index = _peer_index(peers, peer_key, as_of=as_of) if peers else None
        verifier = Verifier(pol, verdicts=known, state=old, peers=peer_index, peer_key=peer_key)
        result = verifier.assess(req)
        if not dry_run:
            verifier.learn_one(req, result)
            if state is not None:
                tmp = state.with_suffix(state.suffix + ".tmp")
                tmp.write_text(json.dumps(verifier.state.to_dict()))
                tmp.replace(state)
    out = {"risk": result.risk, "step": result.step, "reasons": list(result.reasons)}
    console.print(json.dumps(out, indent=2), markup=False, highlight=False, soft_wrap=True)


# ------------------------------------------------------------------------------ intel
intel_app = typer.Typer(
    help="Intelligence sharing: STIX 2.1 / MISP export, TAXII 2.1 exchange, retro-hunt (docs/intel.md).",
    no_args_is_help=True,
)
app.add_typer(intel_app, name="intel")

_KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="Community key shared with peers (keyed hashes; docs/intel.md)."),
]
_TaxiiUserOpt = Annotated[str | None, typer.Option("--user", help="TAXII user.")]
_TaxiiPassOpt = Annotated[
    str | None, typer.Option("--password-env", help="Env var holding the TAXII password.")
]


def _peer_index(sources: list[Path], key: bytes | None, *, as_of: datetime | None) -> Any:
    """Peers' bundles as the verifier's indicator index; a rejected source is an error.

    ``as_of``: indicators that expired before it are left out (the request's time).
    """
    from distillshield.intel import IntelError
    from distillshield.intel.peers import load_peer_index

    try:
        index, skipped = load_peer_index(sources, community_key=key, as_of=as_of)
    except IntelError as exc:
        _fail(f"--peers: {exc}")
        raise
    for msg in skipped[:20]:
        err.print(f"skipped: {msg}", highlight=False, soft_wrap=True)
    if len(skipped) > 20:
        err.print(f"skipped: {len(skipped) - 20} more not shown ({len(skipped)} in all)", highlight=False)
    return index


def _key(path: Path | None, required: bool = True) -> bytes | None:
    from distillshield.intel import read_key

    if path is None:
        if required:
            _fail("--key-file is required: keyed hashes need the community key shared with peers")
        return None
    return read_key(path)


@intel_app.command("export")
def intel_export(
    det: Annotated[Path, typer.Argument(help="Detection directory written by `distillshield scan`.")],
    out: Annotated[Path, typer.Option("--out", help="Output file (JSON).")],
    fmt: Annotated[str, typer.Option("--format", help="stix or misp.")] = "stix",
    data: Annotated[
        Path | None, typer.Option(help="The prepared dataset: specific indicators, template signatures.")
    ] = None,
    tlp: Annotated[
        str, typer.Option(help="TLP 2.0 level: clear, green, amber, amber+strict, red.")
    ] = "amber",
    share_content: Annotated[
        bool, typer.Option(help="Include raw template text (customer data: off unless you mean it).")
    ] = False,
    key_file: _KeyFileOpt = None,
) -> None:
    """Export campaigns as a STIX 2.1 bundle or a MISP event (validated before writing)."""
    from distillshield.intel import export_misp, export_stix

    with _errors():
        key = _key(key_file)
        assert key is not None
        if fmt == "stix":
            doc = export_stix(det, data=data, tlp=tlp, share_content=share_content, community_key=key)
        elif fmt == "misp":
            doc = export_misp(det, data=data, tlp=tlp, share_content=share_content, community_key=key)
        else:
            _fail(f"--format {fmt!r}: expected stix or misp")
            return
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(out)
    n = len(doc.get("objects", [])) if fmt == "stix" else len(doc.get("Event", doc).get("Object", []))
    console.print(f"wrote {out} ({fmt}, {n} objects, TLP:{tlp.upper()})")


@intel_app.command("push")
def intel_push(
    bundle: Annotated[Path, typer.Argument(help="STIX bundle file to share.")],
    taxii: Annotated[str, typer.Option("--taxii", help="TAXII 2.1 discovery or API-root URL.")],
    collection: Annotated[str, typer.Option("--collection", help="Collection id or alias.")],
    user: _TaxiiUserOpt = None,
    password_env: _TaxiiPassOpt = None,
) -> None:
    """Validate a bundle and push it to a TAXII 2.1 collection."""
    import os

    from distillshield.intel import validate_bundle
    from distillshield.intel.taxii import push

    with _errors():
        doc = json.loads(bundle.read_text(encoding="utf-8"))
        errors = validate_bundle(doc)
        if errors:
            _fail(f"{bundle}: not a valid STIX 2.1 bundle: {errors[0]} (+{len(errors) - 1} more)")
        report = push(
            doc, taxii, collection, user=user, password=os.environ.get(password_env) if password_env else None
        )
    console.print(
        f"pushed {report.succeeded} of {report.total} objects "
        f"({report.failed} refused, {report.pending} pending)"
    )
    if not report.ok:
        raise typer.Exit(code=1)


@intel_app.command("pull")
def intel_pull(
    taxii: Annotated[str, typer.Option("--taxii", help="TAXII 2.1 discovery or API-root URL.")],
    collection: Annotated[str, typer.Option("--collection", help="Collection id or alias.")],
    dest: Annotated[Path, typer.Option("--dest", help="Directory the pulled bundles are written to.")],
    state: Annotated[
        Path, typer.Option("--state", help="Where the added_after high-water mark is remembered.")
    ] = Path("taxii-state.json"),
    user: _TaxiiUserOpt = None,
    password_env: _TaxiiPassOpt = None,
) -> None:
    """Pull what peers added since the last pull (added_after paging; the mark moves only after writing)."""
    import os

    from distillshield.intel.taxii import pull

    with _errors():
        dest.mkdir(parents=True, exist_ok=True)
        report = pull(
            taxii,
            collection,
            state,
            dest=dest,
            user=user,
            password=os.environ.get(password_env) if password_env else None,
        )
    console.print(
        f"pulled {len(report.objects)} objects in {report.pages} page(s) -> {report.path or '(nothing new)'}"
    )


@intel_app.command("hunt")
def intel_hunt(
    bundles: Annotated[list[Path], typer.Argument(help="Peers' STIX bundles or MISP JSON events.")],
    data_in: Annotated[Path, typer.Option("--in", help="Our prepared dataset to hunt in.")],
    out: Annotated[Path, typer.Option("--out", help="Where sightings are written.")],
    key_file: _KeyFileOpt = None,
) -> None:
    """Match peers' indicators against our traffic and accounts; report sightings."""
    from distillshield.intel import hunt, load_indicators

    with _errors():
        key = _key(key_file, required=False)
        imported = load_indicators(bundles, community_key=key)
        for msg in imported.rejected:
            err.print(f"rejected: {msg}", highlight=False, soft_wrap=True)
        for msg in imported.skipped[:20]:
            err.print(f"skipped: {msg}", highlight=False, soft_wrap=True)
        result = hunt(data_in, imported.indicators, out, community_key=key)
    console.print(
        json.dumps(result.summary, indent=2, default=str), markup=False, highlight=False, soft_wrap=True
    )


# ------------------------------------------------------------------------------ gateway
gateway_app = typer.Typer(
    help="The real-time enforcement gateway: an OpenAI-compatible proxy (docs/gateway.md).",
    invoke_without_command=True,
)
app.add_typer(gateway_app, name="gateway")

_StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Shared store: memory:// (default) or redis://host:port/db.")
]


@gateway_app.callback()
def gateway(
    ctx: typer.Context,
    upstream: Annotated[
        str | None,
        typer.Option(help="Base URL of the OpenAI-compatible model server, e.g. http://127.0.0.1:8000/v1."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Gateway TOML file (docs/gateway.md).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    store: _StoreOpt = None,
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (default: the shipped policy).")] = None,
    verdicts: Annotated[
        Path | None, typer.Option(help="Load a detection directory at start (memory store).")
    ] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Where exchanges are logged (WAL + Parquet).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes serving the one port (N > 1 needs a redis:// store; "
            "each worker logs through its own LOG_DIR/worker-<i>/wal).",
        ),
    ] = 1,
) -> None:
    """Serve the gateway: `distillshield gateway --upstream URL [--config FILE] [--workers N]`."""
    if ctx.invoked_subcommand is not None:
        return
    if upstream is None and config is None:
        console.print(ctx.get_help())
        raise typer.Exit(code=2)
    import uvicorn

    from distillshield.gateway import create_app, load_config, load_policy
    from distillshield.gateway._workers import (
        drain_orphan_logs,
        dump_stacks_on_sigusr1,
        serve_workers,
        shared_store_problem,
    )

    with _errors():
        cfg = load_config(
            config,
            upstream=upstream,
            store=store,
            policy=str(policy) if policy else None,
            verdicts=str(verdicts) if verdicts else None,
            log_dir=str(log_dir) if log_dir else None,
        )
    problem = shared_store_problem(cfg, workers)
    if problem is not None:
        err.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2)
    with _errors():
        drained = drain_orphan_logs(cfg, workers)
    for d in drained:
        if d.in_use:
            err.print(f"{d.wal_dir}: in use by another gateway process, left to it", highlight=False)
        else:
            done = "delivered" if d.delivered else "NOT all delivered (kept for the next start)"
            err.print(f"{d.wal_dir}: {d.records} exchange(s) left by an earlier run, {done}", highlight=False)
    if workers == 1:
        with _errors():
            application = create_app(cfg)
        err.print(f"distillshield gateway on http://{host}:{port} -> {cfg.upstream} (store {cfg.store})")
        dump_stacks_on_sigusr1()
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
        return
    if cfg.policy:
        with _errors():
            load_policy(cfg.policy)  # a bad policy fails here, once, not in every worker
    sink = f"{cfg.log_dir}/exchanges" if cfg.log_sink == "parquet" else "the Redis stream"
    err.print(
        f"distillshield gateway on http://{host}:{port} -> {cfg.upstream} (store {cfg.store}), "
        f"{workers} workers, logs {cfg.log_dir}/worker-<i>/wal -> {sink}"
    )
    if serve_workers(cfg, host=host, port=port, workers=workers) != 0:
        _fail("a gateway worker could not start (its reason is logged above); all workers were stopped")


@gateway_app.command("keys")
def gateway_keys(
    account: Annotated[str, typer.Argument(help="Account the new key authenticates as.")],
    store: _StoreOpt = "memory://",
    pathway: Annotated[str | None, typer.Option(help="Account pathway (education, self_serve...).")] = None,
    payment_fingerprint: Annotated[
        str | None, typer.Option(help="The account's payment fingerprint.")
    ] = None,
    org: Annotated[str | None, typer.Option(help="Organisation id.")] = None,
    created_at: Annotated[
        str | None, typer.Option(help="When the account was created (ISO time): fresh-account evidence.")
    ] = None,
    signup_ip: Annotated[str | None, typer.Option(help="The account's sign-up IP address.")] = None,
    declared_country: Annotated[
        str | None,
        typer.Option(help="Country the customer declared (ISO 3166 alpha-2): first-contact-abroad evidence."),
    ] = None,
) -> None:
    """Create an API key for ACCOUNT in the shared store; the secret is printed once."""
    import asyncio
    import secrets as _secrets

    from distillshield.gateway import KeyRecord, hash_key, open_store

    secret = "sk-ds-" + _secrets.token_urlsafe(24)
    created = _when(created_at, "--created-at")
    try:
        record = KeyRecord(
            f"key_{_secrets.token_hex(6)}",
            account,
            org,
            pathway,
            payment_fingerprint,
            created_at=created.timestamp() if created else None,
            signup_ip=signup_ip,
            declared_country=declared_country,
        )
    except ValueError as exc:
        _fail(f"--declared-country: {exc}")

    async def put() -> None:
        st = open_store(store, timeout_s=2.0)
        try:
            await st.put_key(hash_key(secret), record)
        finally:
            await st.close()

    with _errors():
        if store in (None, "memory://"):
            _fail("--store redis://... is needed: an in-memory store ends with this command")
        asyncio.run(put())
    console.print(
        json.dumps({"key": secret, "key_id": record.key_id, "account_id": account}),
        markup=False,
        highlight=False,
    )


@gateway_app.command("publish")
def gateway_publish(
    det: Annotated[Path, typer.Argument(help="Detection directory written by `distillshield scan`.")],
    store: _StoreOpt = None,
    data: Annotated[
        Path | None, typer.Option(help="The prepared dataset the detections came from (indicator index).")
    ] = None,
    overrides: Annotated[
        Path | None,
        typer.Option(help="JSON {account_id: block|allow}: analyst decisions laid over the detector's."),
    ] = None,
) -> None:
    """Publish batch verdicts to the shared store: every gateway picks them up without a restart."""
    import asyncio

    from distillshield.gateway import build_verdicts, open_store

    with _errors():
        if store in (None, "memory://"):
            _fail("--store redis://... is needed: gateways read verdicts from a shared store")
        over = json.loads(overrides.read_text()) if overrides else None
        verdicts = build_verdicts(det, data=data, overrides=over)
        blob = verdicts.to_bytes()

        async def put() -> None:
            st = open_store(store, timeout_s=5.0)
            try:
                await st.publish_verdicts(verdicts.version, blob)
            finally:
                await st.close()

        asyncio.run(put())
    kinds: dict[str, int] = {}
    for kind, _ in verdicts.indicators:
        kinds[kind] = kinds.get(kind, 0) + 1
    console.print(
        f"published verdicts {verdicts.version}: {len(verdicts.accounts)} accounts, "
        f"{len(verdicts.campaigns)} campaigns, indicators {kinds or 0} ({len(blob):,} bytes)"
    )


@gateway_app.command("replay")
def gateway_replay(
    data: Annotated[Path, typer.Argument(help="Prepared dataset (with labels for the evaluation).")],
    out: Annotated[Path, typer.Option("--out", help="Decisions, report.json and the batch state.")],
    every: Annotated[
        str, typer.Option(help="Batch cadence: verdicts refreshed from data before each step.")
    ] = "6h",
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (default: the shipped policy).")] = None,
    online_model: Annotated[
        str | None,
        typer.Option(
            help="Score new accounts online with an account model until a batch run judges them: "
            "'shipped' or a model file (default: off)."
        ),
    ] = None,
    online_model_at: Annotated[float, typer.Option(help="Probability at which that term fires.")] = 0.5,
    batch_dir: Annotated[
        Path | None,
        typer.Option(
            help="Batch state, detections and verdict cache (default OUT/batch); reuse one to rerun."
        ),
    ] = None,
) -> None:
    """The gateway's decisions over logged traffic in timestamp order: harvest leakage, legitimate cost."""
    from distillshield.gateway.replay import replay_gateway
    from distillshield.gateway.risk import online_risk

    with _errors(), _progress("gateway replay") as progress:
        report = replay_gateway(
            data,
            out,
            every=every,
            policy=policy,
            risk=online_risk(online_model, model_at=online_model_at),
            batch_dir=batch_dir,
            progress=progress,
        )
    console.print(report.table())


@gateway_app.command("mock-upstream")
def gateway_mock_upstream(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    latency: Annotated[float, typer.Option(help="Seconds before each answer.")] = 0.0,
) -> None:
    """Serve the in-repo mock OpenAI-compatible model (tests, benchmarks, demos)."""
    from distillshield.gateway.mock_upstream import MockConfig, serve_mock

    serve_mock(host, port, MockConfig(latency_s=latency))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
