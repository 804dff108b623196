"""The ingest run as a whole: dedup and re-ingest, part numbering and chunking, privacy
mode, crash recovery, and a simulator dataset through the canonical adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from distillshield.errors import DistillShieldError
from distillshield.ingest import FORMATS, QUARANTINE, ingest, redact
from distillshield.schema import ACCOUNTS, EXCHANGES, RELEASES, SIGNALS, read_table

DATA = Path(__file__).parent / "data" / "ingest"


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("part-*.parquet"))


def test_formats_are_registered() -> None:
    assert set(FORMATS) == {"canonical", "openai", "litellm", "otel"}


def test_reingest_adds_nothing(tmp_path: Path) -> None:
    inputs = [DATA / "openai" / "chat_logs.jsonl", DATA / "litellm", DATA / "otel"]
    first = ingest("openai", inputs[:1], tmp_path)
    ingest("litellm", inputs[1:2], tmp_path)
    ingest("otel", inputs[2:], tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("part-*.parquet")}
    n = read_table(tmp_path, EXCHANGES).num_rows
    again = ingest("openai", inputs[:1], tmp_path)
    assert (again.read, again.accepted, again.duplicates) == (first.read, 0, first.accepted)
    assert again.reconciles and again.exchange_parts == []
    assert read_table(tmp_path, EXCHANGES).num_rows == n
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("part-*.parquet")} == before
    ids = read_table(tmp_path, SIGNALS).column("request_id")
    assert len(ids) == n and pc.count_distinct(ids).as_py() == n


def test_duplicates_within_a_run_and_generated_ids_are_deterministic(tmp_path: Path) -> None:
    line = json.loads(
        (DATA / "openai" / "chat_logs.jsonl").read_text().splitlines()[5]
    )  # the 429: no response id
    del line["context"]["request_id"]
    other = json.loads(json.dumps(line))
    other["context"]["timestamp"] = "2026-02-02T10:21:31Z"
    f = tmp_path / "logs.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in (line, line, other)) + "\n")
    report = ingest("openai", [f], tmp_path / "a")
    assert (report.read, report.accepted, report.duplicates) == (3, 2, 1)
    ids = sorted(read_table(tmp_path / "a", EXCHANGES).column("request_id").to_pylist())
    assert all(i.startswith("oai-") and len(i) == 28 for i in ids) and ids[0] != ids[1]
    # Same records elsewhere: same ids (a hash of the record, not of where or when it was read).
    ingest("openai", [f], tmp_path / "b")
    assert sorted(read_table(tmp_path / "b", EXCHANGES).column("request_id").to_pylist()) == ids


def test_parts_continue_numbering_and_chunks_bound_part_size(tmp_path: Path) -> None:
    src = DATA / "canonical" / "exchanges.jsonl"
    existing = read_table(tmp_path, EXCHANGES, optional=True)
    assert existing.num_rows == 0
    (tmp_path / "exchanges").mkdir()
    # A part written by someone else (number 7) must not be overwritten.
    first = json.loads(src.read_text().splitlines()[0])
    ingest("canonical", [src], tmp_path / "tmp")
    pq.write_table(
        read_table(tmp_path / "tmp", EXCHANGES).slice(0, 1), tmp_path / "exchanges" / "part-00007.parquet"
    )
    report = ingest("canonical", [src], tmp_path, chunk_rows=2)
    assert _parts(tmp_path / "exchanges") == [
        "part-00007.parquet",
        "part-00008.parquet",
        "part-00009.parquet",
    ]
    assert _parts(tmp_path / "derived" / "signals") == ["part-00008.parquet", "part-00009.parquet"]
    assert (report.accepted, report.duplicates) == (4, 1)  # the row in part 7 is already stored
    sizes = [
        pq.ParquetFile(tmp_path / "exchanges" / p).metadata.num_rows for p in _parts(tmp_path / "exchanges")
    ]
    assert sizes == [1, 2, 2]
    assert first["request_id"] in read_table(tmp_path, EXCHANGES).column("request_id").to_pylist()


def test_no_content_keeps_only_derived_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"request": {"model": "m", "messages": [{"role": "user", "content": "mail a@b.io"}]}\n')
    report = ingest("openai", [DATA / "openai" / "chat_logs.jsonl", bad], tmp_path / "out", no_content=True)
    ex = read_table(tmp_path / "out", EXCHANGES)
    for column in ("prompt", "system_prompt", "response"):
        assert ex.column(column).null_count == ex.num_rows
    # Signals were computed from the (redacted) content before it was dropped.
    sig = {r["request_id"]: r for r in read_table(tmp_path / "out", SIGNALS).to_pylist()}
    assert sig["chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu"]["prompt_chars"] == len(
        "Can you suggest a clearer title for my essay on urban heat islands?"
    )
    assert sig["chatcmpl-BQx8sEc"]["redactions"] == 2
    assert sig["chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu"]["capability"] is not None
    # Metadata is not content (client identifiers): kept, and redacted like all stored text.
    assert ex.filter(pc.equal(ex["request_id"], "chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu"))["metadata"][
        0
    ].as_py() == ('{"user":"student-4471"}')
    q = read_table(tmp_path / "out", QUARANTINE).to_pylist()
    assert len(q) == report.quarantined == 1 and q[0]["raw"] is None and q[0]["raw_truncated"] is False


def test_quarantined_raw_records_are_redacted_and_not_duplicated(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(
        '{"request_id": "r", "prompt": "my key is sk-proj-Xa9fK2mPq7TzR4vL8wNc3Yb6Hd1", "ts": "never"}\n'
    )
    ingest("canonical", [f], tmp_path / "out")
    again = ingest("canonical", [f], tmp_path / "out")
    q = read_table(tmp_path / "out", QUARANTINE).to_pylist()
    assert len(q) == 1 and "sk-proj" not in q[0]["raw"] and "[API_KEY]" in q[0]["raw"]
    assert q[0]["request_id"] == "r" and q[0]["reason"] == "bad_timestamp"
    assert again.quarantined == 1 and again.quarantine_parts == []  # counted, but not stored twice


def test_interrupted_part_is_rolled_back(tmp_path: Path) -> None:
    ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path, chunk_rows=3)
    # Simulate a crash after signals part 2 was written but before exchanges part 2.
    orphan = tmp_path / "derived" / "signals" / "part-00002.parquet"
    pq.write_table(read_table(tmp_path, SIGNALS).slice(0, 1), orphan)
    (tmp_path / ".ingest-pending-2").touch()
    ingest("canonical", [DATA / "openai" / "chat_logs.jsonl"], tmp_path / "unused", chunk_rows=3)
    report = ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path)
    assert not (tmp_path / ".ingest-pending-2").exists()
    assert report.accepted == 0
    sig = read_table(tmp_path, SIGNALS).column("request_id").to_pylist()
    ex = read_table(tmp_path, EXCHANGES).column("request_id").to_pylist()
    assert sorted(sig) == sorted(ex)  # no signal row without its exchange


def test_one_ingest_per_output_directory(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".ingest.lock").write_text(str(os.getpid()))
    with pytest.raises(DistillShieldError, match="another ingest"):
        ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / ".ingest.lock").write_text(dead.stdout.strip())  # a crashed run's stale lock
    assert ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path).accepted == 5
    assert not (tmp_path / ".ingest.lock").exists()


@pytest.mark.parametrize(
    ("fmt", "inputs", "message"),
    [
        ("nope", ["{data}/canonical"], "unknown format 'nope'"),
        ("canonical", ["{tmp}/missing.jsonl"], "no such file or directory"),
        ("canonical", ["{tmp}/fake.parquet"], "not a readable Parquet file"),
        ("canonical", ["{tmp}/notes.txt"], "not a canonical input"),
        ("otel", ["{tmp}/empty"], "no input files"),
    ],
)
def test_unreadable_input_is_an_error_with_the_file_named(
    tmp_path: Path, fmt: str, inputs: list[str], message: str
) -> None:
    (tmp_path / "fake.parquet").write_text("not parquet")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    paths = [Path(p.format(tmp=tmp_path, data=DATA)) for p in inputs]
    with pytest.raises(DistillShieldError, match=message):
        ingest(fmt, paths, tmp_path / "out")
    assert not (tmp_path / "out" / "exchanges").exists()


def test_single_file_tables_in_out_are_refused(tmp_path: Path) -> None:
    ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path / "a")
    pq.write_table(read_table(tmp_path / "a", EXCHANGES), tmp_path / "b" / "exchanges.parquet") if (
        tmp_path / "b"
    ).mkdir() is None else None
    with pytest.raises(DistillShieldError, match="move this file"):
        ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path / "b")


def test_gzip_inputs(tmp_path: Path) -> None:
    import gzip

    src = DATA / "litellm" / "standard_logging.jsonl"
    gz = tmp_path / "logs.jsonl.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert ingest("litellm", [tmp_path], tmp_path / "out").accepted == 6


def test_defaults_fill_missing_columns_and_are_checked(tmp_path: Path) -> None:
    line = {
        "request_id": "r1",
        "ts": "2026-02-01T00:00:00Z",
        "model": "m",
        "endpoint": "batch",
        "n_messages": 1,
        "input_tokens": 1,
        "output_tokens": 1,
        "stream": False,
        "status": 200,
    }
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(line) + "\n")
    report = ingest("canonical", [f], tmp_path / "out", defaults={"account_id": "acct_z", "ip": "192.0.2.9"})
    assert report.accepted == 1
    row = read_table(tmp_path / "out", EXCHANGES).to_pylist()[0]
    assert (row["account_id"], row["ip"]) == ("acct_z", "192.0.2.9")
    with pytest.raises(DistillShieldError, match="not a column"):
        ingest("canonical", [f], tmp_path / "o2", defaults={"acount_id": "x"})
    with pytest.raises(DistillShieldError, match="n_messages"):
        ingest("canonical", [f], tmp_path / "o2", defaults={"n_messages": "many"})


def test_simulated_dataset_round_trips_through_canonical_ingest(small_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = ingest("canonical", [small_dataset], out, chunk_rows=20_000)
    src = read_table(small_dataset, EXCHANGES).sort_by("request_id")
    got = read_table(out, EXCHANGES).sort_by("request_id")
    assert report.reconciles and (report.accepted, report.quarantined) == (src.num_rows, 0)
    assert got.num_rows == src.num_rows
    for column in EXCHANGES.schema.names:
        if column in ("prompt", "system_prompt", "response", "metadata"):
            expected, _ = redact(src.column(column))
            assert got.column(column).combine_chunks().equals(expected), column
        else:
            assert got.column(column).equals(src.column(column)), column
    # Accounts and releases come through as sourced facts (no inferred rows).
    assert (
        read_table(out, ACCOUNTS)
        .sort_by("account_id")
        .equals(read_table(small_dataset, ACCOUNTS).sort_by("account_id"))
    )
    assert not any(pq.read_table(out / "accounts.parquet", columns=["inferred"]).column(0).to_pylist())
    assert (
        read_table(out, RELEASES)
        .sort_by("model")
        .equals(read_table(small_dataset, RELEASES).sort_by("model"))
    )
    for s in report.sources:  # many small part files are processed together; counts stay per file
        if s.table == "exchanges":
            assert s.read == s.accepted == pq.ParquetFile(s.source).metadata.num_rows
    accounts_src = next(s for s in report.sources if s.table == "accounts")
    assert accounts_src.accepted == read_table(small_dataset, ACCOUNTS).num_rows
    sig = read_table(out, SIGNALS)
    assert sig.num_rows == src.num_rows and set(sig.column("request_id").to_pylist()) == set(
        src.column("request_id").to_pylist()
    )
    assert json.loads((out / "ingest_report.json").read_text())["totals"]["accepted"] == src.num_rows
    # Ingesting the dataset again: every exchange, account and release is a duplicate.
    again = ingest("canonical", [small_dataset], out)
    by_table = {
        t: sum(s.duplicates for s in again.sources if s.table == t)
        for t in ("exchanges", "accounts", "releases")
    }
    assert again.accepted == 0 and sum(s.accepted for s in again.sources) == 0
    assert by_table == {
        "exchanges": src.num_rows,
        "accounts": read_table(small_dataset, ACCOUNTS).num_rows,
        "releases": read_table(small_dataset, RELEASES).num_rows,
    }


def test_report_lists_sources_in_input_order(tmp_path: Path) -> None:
    report = ingest(
        "litellm",
        [DATA / "litellm" / "standard_logging.jsonl", DATA / "litellm" / "spend_logs.csv"],
        tmp_path,
    )
    assert [Path(s.source).name for s in report.sources] == ["standard_logging.jsonl", "spend_logs.csv"]
    d = report.to_dict()
    assert d["totals"]["reconciles"] and d["equation"].startswith(
        "read = accepted + duplicates + quarantined"
    )
    assert pa.types.is_string(read_table(tmp_path, EXCHANGES).schema.field("request_id").type)


def test_dedup_index_matches_a_set_across_many_batches() -> None:
    import numpy as np

    from distillshield.ingest._dedup import SeenIds

    seen_ids = SeenIds()
    reference: set[str] = set()
    rng = np.random.default_rng(7)
    ids = [f"req_{i}" for i in rng.integers(0, 150_000, 300_000)]
    for k in range(0, len(ids), 7_000):  # many batches: the recent array is merged into main repeatedly
        chunk = ids[k : k + 7_000]
        expected = []
        for x in chunk:
            expected.append(x not in reference)
            reference.add(x)
        assert seen_ids.keep_new(pa.array(chunk)).tolist() == expected
    assert len(seen_ids) == len(reference)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    import gzip

    data = gzip.compress((DATA / "litellm" / "standard_logging.jsonl").read_bytes())
    bad = tmp_path / "in" / "logs.jsonl.gz"
    bad.parent.mkdir()
    bad.write_bytes(data[: len(data) // 2])  # cut mid-stream
    with pytest.raises(DistillShieldError, match=r"logs\.jsonl\.gz: unreadable"):
        ingest("litellm", [bad], tmp_path / "out")


def test_grouped_parquet_files_keep_per_file_counts_and_locations(tmp_path: Path) -> None:
    ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path / "ref")
    rows = read_table(tmp_path / "ref", EXCHANGES).to_pylist()
    src = tmp_path / "src"
    src.mkdir()
    for k in range(3):  # three small files; in file k, row k has an invalid IP
        part = [dict(r, request_id=f"{r['request_id']}-{k}") for r in rows]
        part[k]["ip"] = "not-an-ip"
        pq.write_table(pa.Table.from_pylist(part, schema=EXCHANGES.schema), src / f"p{k}.parquet")
    report = ingest("canonical", [src], tmp_path / "out", chunk_rows=1000)
    assert [(Path(s.source).name, s.read, s.accepted, dict(s.quarantined)) for s in report.sources] == [
        (f"p{k}.parquet", 5, 4, {"invalid_ip": 1}) for k in range(3)
    ]
    q = sorted(
        (Path(r["file"]).name, r["row"], r["request_id"])
        for r in read_table(tmp_path / "out", QUARANTINE).to_pylist()
    )
    assert q == [(f"p{k}.parquet", k, f"{rows[k]['request_id']}-{k}") for k in range(3)]
    assert len(_parts(tmp_path / "out" / "exchanges")) == 1
