"""Quarantine and reconciliation: hypothesis mixes malformed rows of every kind with good
rows; counts must reconcile, every bad row must be quarantined with the right reason and
location, and every good row must land unchanged."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillshield.ingest import QUARANTINE, ingest
from distillshield.ingest._rules import MAX_TEXT_BYTES, RAW_LIMIT
from distillshield.schema import EXCHANGES, read_table

# Text without anything redaction would mask (no digits, no @): good rows must land unchanged.
TEXT = st.text(
    alphabet=st.characters(categories=("L", "Zs"), exclude_characters="\x00"), min_size=1, max_size=40
)
ENDPOINTS = ("chat.completions", "messages", "responses", "batch")
BASE = datetime(2026, 2, 1, tzinfo=UTC)


@st.composite
def good_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A valid exchange as canonical Python values."""
    return {
        "ts": BASE
        + timedelta(seconds=draw(st.integers(0, 30 * 86400)), microseconds=draw(st.integers(0, 999_999))),
        "account_id": draw(st.sampled_from(["acct_a", "acct_b", "acct_c"])),
        "org_id": draw(st.none() | st.just("org_1")),
        "model": draw(st.sampled_from(["atlas-2", "atlas-2-mini"])),
        "endpoint": draw(st.sampled_from(ENDPOINTS)),
        "ip": draw(st.sampled_from(["203.0.113.7", "198.51.100.250", "2001:db8::1", "10.0.0.1"])),
        "user_agent": draw(st.none() | st.sampled_from(["OpenAI/Python 1.82.0", "curl/8.7.1"])),
        "n_messages": draw(st.integers(0, 40)),
        "system_prompt": draw(st.none() | TEXT),
        "prompt": draw(st.none() | TEXT),
        "tools": draw(
            st.none() | st.lists(st.sampled_from(["bash", "search", "finish"]), min_size=1, max_size=3)
        ),
        "response": draw(st.none() | TEXT),
        "input_tokens": draw(st.integers(0, 200_000)),
        "output_tokens": draw(st.integers(0, 100_000)),
        "reasoning_tokens": draw(st.none() | st.integers(0, 50_000)),
        "max_tokens": draw(st.none() | st.integers(1, 100_000)),
        "temperature": draw(st.none() | st.sampled_from([0.0, 0.2, 0.7, 1.0, 2.0])),
        "stream": draw(st.booleans()),
        "status": draw(st.sampled_from([200, 400, 429, 500])),
    }


def _json_value(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["ts"] = row["ts"].isoformat()
    return out


@dataclass
class Case:
    """One input line: the JSON text, and what must happen to it."""

    text: str
    reason: str | None  # None: a good row
    field: str | None
    row: dict[str, Any]


REQUIRED = (
    "ts",
    "account_id",
    "model",
    "endpoint",
    "ip",
    "n_messages",
    "input_tokens",
    "output_tokens",
    "stream",
    "status",
)
WRONG_TYPES: dict[str, list[Any]] = {
    "input_tokens": ["many", [1], {"n": 1}, True, 1.5],
    "output_tokens": ["x", False],
    "n_messages": ["three", 2.5],
    "stream": ["sometimes", 1, 0],
    "temperature": ["hot", [0.5]],
    "status": ["OK", True],
    "tools": ["bash", [1, 2]],
    "account_id": [{"id": 1}, ["a"], 3.5],
    "ts": [True, ["2026-02-01"], {"t": 1}],
}
FAULTS = (
    "bad_timestamp",
    "wrong_type",
    "invalid_json",
    "field_too_large",
    "invalid_ip",
    "unknown_enum",
    "missing_required",
    "out_of_range",
)


@st.composite
def cases(draw: st.DrawFn, rid: int) -> Case:
    row = draw(good_rows())
    row["request_id"] = f"req_{rid:05d}"
    kind = draw(st.sampled_from((None, None, *FAULTS)))  # about one in five rows is good
    value = _json_value(row)
    field: str | None = None
    if kind == "bad_timestamp":
        value["ts"] = draw(
            st.sampled_from(
                [
                    "yesterday",
                    "2026-13-01T00:00:00Z",
                    "1970-01-01T00:00:00Z",
                    "2999-01-01T00:00:00Z",
                    "1.7e9x",
                ]
            )
        )
        field = "ts"
    elif kind == "wrong_type":
        field = draw(st.sampled_from(sorted(WRONG_TYPES)))
        value[field] = draw(st.sampled_from(WRONG_TYPES[field]))
    elif kind == "invalid_json":
        text = json.dumps(value)
        cut = draw(st.integers(1, len(text) - 1))
        return Case(text[:cut], "invalid_json", "$", row)  # truncated mid-record
    elif kind == "field_too_large":
        field = draw(st.sampled_from(["prompt", "response", "system_prompt"]))
        value[field] = "a" * (MAX_TEXT_BYTES + 1)
    elif kind == "invalid_ip":
        field = "ip"
        value["ip"] = draw(
            st.sampled_from(["999.1.1.1", "1.2.3", "::g", "localhost", "1.2.3.4:443", " 1.2.3.4", "01.2.3.4"])
        )
    elif kind == "unknown_enum":
        field = draw(st.sampled_from(["endpoint", "status"]))
        value[field] = (
            draw(st.sampled_from(["chat.completion", "images", "foo"]))
            if field == "endpoint"
            else draw(st.sampled_from([0, 99, 600, 1000]))
        )
    elif kind == "missing_required":
        field = draw(st.sampled_from(REQUIRED))
        if draw(st.booleans()):
            del value[field]
        else:
            value[field] = None
    elif kind == "out_of_range":
        field = draw(st.sampled_from(["input_tokens", "output_tokens", "n_messages", "max_tokens"]))
        value[field] = draw(st.sampled_from([-1, -500, 2**40]))
    return Case(json.dumps(value, ensure_ascii=False), kind, field, row)


@st.composite
def files(draw: st.DrawFn) -> list[Case]:
    n = draw(st.integers(1, 25))
    return [draw(cases(i)) for i in range(n)]


def _ingest(path: Path, out: Path) -> tuple[Any, dict[str, dict[str, Any]], list[dict[str, Any]]]:
    report = ingest("canonical", [path], out, chunk_rows=7)
    rows = (
        {r["request_id"]: r for r in read_table(out, EXCHANGES).to_pylist()}
        if (out / "exchanges").exists()
        else {}
    )
    quarantine = read_table(out, QUARANTINE).to_pylist() if (out / "quarantine").exists() else []
    return report, rows, quarantine


SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(files())
def test_jsonl_malformed_rows_are_quarantined_and_counts_reconcile(batch: list[Case]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("\n".join(c.text for c in batch) + "\n")
        report, rows, quarantine = _ingest(src, Path(tmp) / "out")
    good = [c for c in batch if c.reason is None]
    bad = {line: c for line, c in enumerate(batch, start=1) if c.reason is not None}
    assert report.reconciles
    assert (report.read, report.accepted, report.duplicates, report.quarantined) == (
        len(batch),
        len(good),
        0,
        len(bad),
    )
    assert report.quarantined_by_reason == {
        r: sum(c.reason == r for c in bad.values())
        for r in FAULTS
        if any(c.reason == r for c in bad.values())
    }
    got = {q["line"]: q for q in quarantine}
    assert set(got) == set(bad)
    for line, c in bad.items():
        q = got[line]
        assert (q["reason"], q["field"]) == (c.reason, c.field), (line, q["detail"])
        assert (q["file"], q["row"], q["location"]) == (str(src), line - 1, f"line {line}")
        raw = c.text.strip()  # lines are stripped of surrounding whitespace
        head = raw.encode()[:RAW_LIMIT].decode("utf-8", "ignore")  # cut at a byte limit, on a character
        assert q["raw"] == head and q["raw_truncated"] == (len(raw.encode()) > RAW_LIMIT)
    assert set(rows) == {c.row["request_id"] for c in good}
    for c in good:
        assert rows[c.row["request_id"]] == {
            **dict.fromkeys(EXCHANGES.schema.names),
            **c.row,
            "metadata": None,
        }


PARQUET_FAULTS = (
    "bad_timestamp",
    "wrong_type",
    "invalid_ip",
    "unknown_enum",
    "missing_required",
    "out_of_range",
)


@SETTINGS
@given(files())
def test_parquet_malformed_values_are_quarantined_per_row(batch: list[Case]) -> None:
    """The same faults through the vectorised Parquet path: one bad value costs one row.

    Columns holding a wrong-typed value are written as text, so Arrow cannot cast the
    column and the adapter falls back to per-value conversion for it.
    """
    # Parquet has no "object in a text column": wrong types exist only for non-text targets.
    batch = [
        c
        for c in batch
        if c.reason in (None, *PARQUET_FAULTS)
        and not (c.reason == "wrong_type" and c.field in ("ts", "account_id", "tools"))
    ]
    if not batch:
        return
    values = [json.loads(c.text) for c in batch]
    columns: dict[str, pa.Array] = {}
    for f in EXCHANGES.schema:
        col = [v.get(f.name) for v in values]
        wrong = any(c.reason in ("wrong_type", "bad_timestamp") and c.field == f.name for c in batch)
        if f.name == "ts" or wrong:
            columns[f.name] = pa.array(
                [None if x is None else json.dumps(x) if not isinstance(x, str) else x for x in col]
            )
        elif f.name in ("input_tokens", "output_tokens", "n_messages", "max_tokens", "reasoning_tokens"):
            columns[f.name] = pa.array(col, pa.int64())  # 2**40 must survive to be refused
        elif f.name == "status":
            columns[f.name] = pa.array(col, pa.int64())
        else:
            columns[f.name] = pa.array(col, f.type)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.parquet"
        pq.write_table(pa.table(columns), src)
        report, rows, quarantine = _ingest(src, Path(tmp) / "out")
    good = [c for c in batch if c.reason is None]
    bad = {i: c for i, c in enumerate(batch) if c.reason is not None}
    assert report.reconciles and (report.read, report.accepted, report.quarantined) == (
        len(batch),
        len(good),
        len(bad),
    )
    got = {q["row"]: q for q in quarantine}
    assert set(got) == set(bad)
    for i, c in bad.items():
        assert (got[i]["reason"], got[i]["field"], got[i]["location"]) == (c.reason, c.field, f"row {i}"), (
            got[i]["detail"]
        )
        assert got[i]["line"] is None and json.loads(got[i]["raw"])["request_id"] == c.row["request_id"]
    for c in good:
        assert rows[c.row["request_id"]] == {**dict.fromkeys(EXCHANGES.schema.names), **c.row}


def test_every_reason_has_a_precise_detail(tmp_path: Path) -> None:
    """Details name the value and the rule, for the one-line triage a human does."""
    ok = {
        "request_id": "r1",
        "ts": "2026-02-01T00:00:00Z",
        "account_id": "a",
        "model": "m",
        "endpoint": "chat.completions",
        "ip": "203.0.113.7",
        "n_messages": 1,
        "input_tokens": 1,
        "output_tokens": 1,
        "stream": False,
        "status": 200,
    }
    lines = [
        {**ok, "request_id": "r1", "ts": "1999-12-31T23:59:59Z"},
        {**ok, "request_id": "r2", "ip": "300.1.1.1"},
        {**ok, "request_id": "r3", "status": 700},
        {**ok, "request_id": "r4", "input_tokens": "lots"},
        {**ok, "request_id": "r5", "temperature": -1},
    ]
    f = tmp_path / "x.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")  # a blank line is not a record
    report = ingest("canonical", [f], tmp_path / "out")
    assert report.read == 5
    details = {q["request_id"]: q["detail"] for q in read_table(tmp_path / "out", QUARANTINE).to_pylist()}
    assert details["r1"] == "ts 1999-12-31 23:59:59+00:00 is outside 2000..2100"
    assert details["r2"] == "ip '300.1.1.1' is not an IPv4 or IPv6 address"
    assert details["r3"] == "status 700 is not an HTTP status (100..599)"
    assert details["r4"] == "input_tokens: expected int32, got str 'lots'"
    assert details["r5"] == "temperature -1.0 is not a finite number >= 0"


def test_oversized_record_is_refused_without_being_held(tmp_path: Path) -> None:
    from distillshield.ingest import _rules
    from distillshield.ingest.adapters import _base

    f = tmp_path / "big.jsonl"
    good = json.dumps(
        {
            "request_id": "ok",
            "ts": "2026-02-01T00:00:00Z",
            "account_id": "a",
            "model": "m",
            "endpoint": "chat.completions",
            "ip": "203.0.113.7",
            "n_messages": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "stream": False,
            "status": 200,
        }
    )
    f.write_text('{"prompt": "' + "x" * 5000 + '"}\n' + good + "\n")
    old = _base.MAX_RECORD_BYTES
    _base.MAX_RECORD_BYTES = 4096  # a small limit stands in for 32 MiB
    try:
        report = ingest("canonical", [f], tmp_path / "out")
    finally:
        _base.MAX_RECORD_BYTES = old
    assert old == _rules.MAX_RECORD_BYTES
    q = read_table(tmp_path / "out", QUARANTINE).to_pylist()
    assert [(x["line"], x["reason"], x["field"], x["raw_truncated"]) for x in q] == [
        (1, "field_too_large", "$", True)
    ]
    assert report.accepted == 1


def test_format_specific_faults_are_quarantined_with_reasons(tmp_path: Path) -> None:
    """OpenAI/LiteLLM shapes: nested wrong types, bad context fields, unknown call types."""
    base = json.loads(
        (Path(__file__).parent / "data" / "ingest" / "openai" / "chat_logs.jsonl").read_text().splitlines()[0]
    )

    def variant(path: tuple[str, ...], value: Any) -> str:
        rec = json.loads(json.dumps(base))
        cur = rec
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = value
        rec["response"]["id"] = f"chatcmpl-{'-'.join(path)}"
        return json.dumps(rec)

    lines = [
        variant(("response", "usage", "prompt_tokens"), "many"),
        variant(("context", "timestamp"), "02/02/2026 09:15"),
        variant(("context", "client_ip"), "128.32.44"),
        variant(("context", "endpoint"), "/v1/images/generations"),
        variant(("request", "messages"), "not a list"),
        variant(("context", "account", "pathway"), "vip"),
        variant(("context",), ["not", "an", "object"]),
        json.dumps(base)[:100],
    ]
    f = tmp_path / "logs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    report = ingest("openai", [f], tmp_path / "out")
    got = [(q["line"], q["reason"], q["field"]) for q in read_table(tmp_path / "out", QUARANTINE).to_pylist()]
    assert sorted(got) == [
        (1, "wrong_type", "input_tokens"),
        (2, "bad_timestamp", "ts"),
        (3, "invalid_ip", "ip"),
        (4, "unknown_enum", "endpoint"),
        (5, "wrong_type", "request/messages"),
        (6, "unknown_enum", "context/account/pathway"),
        (7, "wrong_type", "context"),
        (8, "invalid_json", "$"),
    ]
    assert report.reconciles and report.accepted == 0

    spend = json.loads(
        (Path(__file__).parent / "data" / "ingest" / "litellm" / "spend_logs.jsonl")
        .read_text()
        .splitlines()[0]
    )
    g = tmp_path / "spend.jsonl"
    g.write_text(
        "\n".join(
            [
                json.dumps({**spend, "request_id": "x1", "call_type": "image_generation"}),
                json.dumps({**spend, "request_id": "x2", "status": "partial"}),
                json.dumps({**spend, "request_id": "x3", "startTime": "soon"}),
                json.dumps({**spend, "request_id": "x4", "metadata": "oops"}),
            ]
        )
        + "\n"
    )
    ingest("litellm", [g], tmp_path / "out2")
    got = sorted(
        (q["line"], q["reason"], q["field"]) for q in read_table(tmp_path / "out2", QUARANTINE).to_pylist()
    )
    assert got == [
        (1, "unknown_enum", "endpoint"),
        (2, "unknown_enum", "status"),
        (3, "bad_timestamp", "ts"),
        (4, "wrong_type", "metadata"),
    ]


def test_csv_rows_with_wrong_field_count_or_bad_json_column(tmp_path: Path) -> None:
    src = (Path(__file__).parent / "data" / "ingest" / "litellm" / "spend_logs.csv").read_text().splitlines()
    header, first = src[0], src[1]
    bad_json = first.replace('"{""user_api_key""', '"{""user_api_key""::', 1)
    f = tmp_path / "s.csv"
    f.write_text("\n".join([header, first, "only,three,fields", bad_json]) + "\n")
    report = ingest("litellm", [f], tmp_path / "out")
    q = sorted(
        (x["line"], x["reason"], x["field"]) for x in read_table(tmp_path / "out", QUARANTINE).to_pylist()
    )
    assert q == [(3, "invalid_csv", "$"), (4, "invalid_json", "metadata")]
    assert (report.read, report.accepted, report.duplicates) == (3, 1, 0)
