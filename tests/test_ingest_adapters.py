"""Each format adapter against the sample files in tests/data/ingest (written from the
official schemas) and the canonical rows they must produce."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from distillshield.ingest import QUARANTINE, ingest
from distillshield.schema import ACCOUNTS, EXCHANGES, SIGNALS, read_table

DATA = Path(__file__).parent / "data" / "ingest"


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in read_table(out, EXCHANGES).to_pylist()}


def _check(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected column matches; columns not named must be null (nothing invented)."""
    for column in EXCHANGES.schema.names:
        assert row[column] == expected.get(column), f"{row['request_id']}: {column}"


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------- openai
def test_openai_logs_map_to_canonical_rows(tmp_path: Path) -> None:
    report = ingest("openai", [DATA / "openai" / "chat_logs.jsonl"], tmp_path)
    assert (report.read, report.accepted, report.quarantined, report.duplicates) == (9, 9, 0, 0)
    rows = _rows(tmp_path)
    _check(
        rows["chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu"],
        {
            "request_id": "chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu",
            "ts": _ts("2026-02-02T09:15:04.120"),
            "account_id": "acct_edu_3f9a21",
            "org_id": "org_univ_77",
            "api_key_id": "key_5c1e0b",
            "model": "gpt-4.1-mini",
            "endpoint": "chat.completions",
            "ip": "128.32.44.10",
            "user_agent": "OpenAI/Python 1.82.0",
            "tls_fingerprint": "t13d1516h2_8daaf6152771_e5627efa2ab1",
            "metadata": '{"user":"student-4471"}',
            "n_messages": 1,
            "system_prompt": "You are a helpful assistant for a university writing center.",
            "prompt": "Can you suggest a clearer title for my essay on urban heat islands?",
            "response": 'How about "Cooling the Concrete: Causes and Remedies of Urban Heat Islands"?',
            "input_tokens": 38,
            "output_tokens": 19,
            "reasoning_tokens": 0,
            "max_tokens": 256,
            "temperature": 0.7,
            "stream": False,
            "status": 200,
        },
    )
    # Multi-turn with a developer message: 5 non-system messages, reasoning tokens, o-series limit.
    r = rows["chatcmpl-BQx2a7Hh3sPq9Lm1vTc8Nw4Ey6Rb"]
    assert (r["n_messages"], r["system_prompt"]) == (5, "Answer with a short justification.")
    assert r["prompt"] == "Now explain how you checked 397, step by step."
    assert (r["reasoning_tokens"], r["output_tokens"], r["max_tokens"]) == (1152, 1214, 4096)
    assert r["metadata"] == '{"reasoning_effort":"high"}'
    # Tool transcript: tools offered by name, tool result counted as a message, no visible answer.
    r = rows["chatcmpl-BQx3cR2dWm8Kf5Tn0Yp7Gs1Lx9Ja"]
    assert r["tools"] == ["read_file", "apply_patch", "run_tests"]
    assert (r["n_messages"], r["response"], r["conversation_id"]) == (3, None, "sess_4e1f0c9a")
    # Streamed chunks are reassembled; usage comes from the final chunk.
    r = rows["chatcmpl-BQx4sT1"]
    assert (r["stream"], r["response"], r["input_tokens"], r["output_tokens"]) == (
        True,
        "Paris is the capital of France.",
        14,
        7,
    )
    assert rows["chatcmpl-BQx5vI9Mk2Rr"]["prompt"] == "Describe the trend in this chart.\n[image]"
    # A 429 bills nothing and has no answer; its id comes from the context.
    r = rows["req_8f14e45fceea167a5a36dedd4bea2543"]
    assert (r["status"], r["input_tokens"], r["output_tokens"], r["response"]) == (429, 0, 0, None)
    # Responses API: instructions are the system prompt, built-in tools named by type.
    r = rows["resp_68a1f0c2b9e48190a4f3"]
    assert (r["endpoint"], r["system_prompt"], r["prompt"]) == (
        "responses",
        "You are a support agent for an online store.",
        "Where is my order #A-20931?",
    )
    assert r["tools"] == ["lookup_order", "web_search"]
    assert (r["reasoning_tokens"], r["max_tokens"]) == (384, 800)
    assert r["metadata"] == (
        '{"metadata":{"ticket":"T-5531"},"reasoning_effort":"medium","safety_identifier":"hash_u_90a1c"}'
    )
    assert rows["chatcmpl-BQx9cOt"]["ip"] == "2a01:4f8:c2c:123f::1"
    # Secrets pasted into a prompt never reach storage.
    assert rows["chatcmpl-BQx8sEc"]["prompt"] == (
        "My script fails with 401. I call the API with key [API_KEY] and my email is [EMAIL] - what's wrong?"
    )
    signals = {r["request_id"]: r for r in read_table(tmp_path, SIGNALS).to_pylist()}
    assert signals["chatcmpl-BQx8sEc"]["redactions"] == 2
    assert signals["chatcmpl-BQx1f4kT9aJp2mW8rLd3eVn6Y0cZu"]["redactions"] == 0


def test_openai_account_facts_are_sourced_others_inferred(tmp_path: Path) -> None:
    ingest("openai", [DATA / "openai" / "chat_logs.jsonl"], tmp_path)
    accounts = {r["account_id"]: r for r in read_table(tmp_path, ACCOUNTS).to_pylist()}
    edu = accounts["acct_edu_3f9a21"]
    assert (edu["pathway"], edu["email_domain"], edu["declared_country"], edu["verified"]) == (
        "education",
        "berkeley.edu",
        "US",
        True,
    )
    assert edu["created_at"] == _ts("2025-09-01T12:00:00")
    inferred = accounts["acct_7d02bb"]
    # Inferred: first request seen, self_serve, unverified, nothing else.
    assert inferred["created_at"] == _ts("2026-02-02T09:25:11.003")
    assert (inferred["pathway"], inferred["verified"], inferred["email_domain"]) == (
        "self_serve",
        False,
        None,
    )
    import pyarrow.parquet as pq

    flags = dict(
        zip(
            *pq.read_table(tmp_path / "accounts.parquet", columns=["account_id", "inferred"])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    assert flags["acct_edu_3f9a21"] is False and flags["acct_7d02bb"] is True
    assert set(accounts) == {r["account_id"] for r in read_table(tmp_path, EXCHANGES).to_pylist()}


def test_openai_batch_files_join_on_custom_id(tmp_path: Path) -> None:
    report = ingest(
        "openai",
        [DATA / "openai" / "batch_input.jsonl", DATA / "openai" / "batch_output.jsonl"],
        tmp_path,
        defaults={"account_id": "acct_batch_01", "ip": "198.51.100.23", "ts": "2026-02-02T05:00:00Z"},
    )
    assert (report.read, report.accepted, report.quarantined) == (4, 4, 0)
    assert report.sources[0].source.endswith(
        "batch_input.jsonl + " + str(DATA / "openai" / "batch_output.jsonl")
    )
    rows = _rows(tmp_path)
    graded = rows["req_c81e728d9d4c2f636f067f89cc14862c"]
    _check(
        graded,
        {
            "request_id": "req_c81e728d9d4c2f636f067f89cc14862c",
            "ts": datetime.fromtimestamp(1770010050, UTC),  # the body's created wins over --default
            "account_id": "acct_batch_01",
            "model": "gpt-4.1-mini",
            "endpoint": "batch",
            "ip": "198.51.100.23",
            "n_messages": 1,
            "system_prompt": "Grade the answer from 1 to 10 using the rubric.",
            "prompt": "Rubric: correctness, clarity. Question: What is 7*8? Answer: 54.",
            "response": "2/10: 7*8 is 56, not 54.",
            "input_tokens": 41,
            "output_tokens": 12,
            "max_tokens": 64,
            "stream": False,
            "status": 200,
        },
    )
    failed = rows["req_a87ff679a2f3e71d9181a67b7542122c"]
    assert (failed["status"], failed["output_tokens"], failed["ts"]) == (400, 0, _ts("2026-02-02T05:00:00"))
    assert rows["req_eccbc87e4b5ce2fe28308fd9f2a7baf3"]["reasoning_tokens"] == 610


def test_openai_batch_unmatched_lines_are_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    lines_in = (DATA / "openai" / "batch_input.jsonl").read_text().splitlines()
    lines_out = (DATA / "openai" / "batch_output.jsonl").read_text().splitlines()
    (src / "a_in.jsonl").write_text("\n".join(lines_in[:3]) + "\n")  # task-3 has no input line
    orphan = lines_out[0].replace('"task-1"', '"task-9"')
    (src / "b_out.jsonl").write_text("\n".join([orphan, *lines_out[1:]]) + "\n")  # task-1: no output
    report = ingest("openai", [src], tmp_path / "out", defaults={"account_id": "a", "ip": "192.0.2.1"})
    assert report.reconciles
    q = read_table(tmp_path / "out", QUARANTINE).to_pylist()
    got = sorted((Path(r["file"]).name, r["line"], r["reason"]) for r in q)
    assert got == [
        ("a_in.jsonl", 2, "unmatched_batch"),  # task-1 input never answered
        ("b_out.jsonl", 1, "unmatched_batch"),  # task-9 output has no input
        ("b_out.jsonl", 4, "unmatched_batch"),  # task-3 output has no input
    ]
    assert report.accepted == 2 and report.read == 5


def test_openai_batch_output_without_input_file_is_an_input_error(tmp_path: Path) -> None:
    from distillshield.errors import DistillShieldError

    with pytest.raises(DistillShieldError, match="batch output file has no input file before it"):
        ingest("openai", [DATA / "openai" / "batch_output.jsonl"], tmp_path)


# --------------------------------------------------------------------------------------- litellm
def test_litellm_standard_logging_payload(tmp_path: Path) -> None:
    report = ingest("litellm", [DATA / "litellm" / "standard_logging.jsonl"], tmp_path)
    assert (report.read, report.accepted, report.quarantined) == (6, 6, 0)
    rows = _rows(tmp_path)
    _check(
        rows["chatcmpl-1"],
        {
            "request_id": "chatcmpl-1",
            "ts": datetime.fromtimestamp(1770040000, UTC),
            "account_id": "user_ml_17",
            "org_id": "org_acme",
            "api_key_id": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
            "model": "gpt-4.1-mini",
            "endpoint": "chat.completions",
            "ip": "203.0.113.41",
            "user_agent": "OpenAI/Python 1.82.0",
            "n_messages": 1,
            "system_prompt": "You are a concise assistant.",
            "prompt": "Give me three synonyms for 'rapid'.",
            "response": "Quick, swift, speedy.",
            "input_tokens": 24,
            "output_tokens": 15,
            "max_tokens": 100,
            "temperature": 0.2,
            "stream": False,
            "status": 200,
        },
    )
    agent = rows["chatcmpl-2"]
    assert (agent["stream"], agent["n_messages"], agent["tools"]) == (True, 3, ["bash", "str_replace_editor"])
    assert agent["user_agent"] == "claude-cli/1.0.98 (external, cli)"
    cot = rows["chatcmpl-3"]
    assert (cot["account_id"], cot["ip"], cot["reasoning_tokens"], cot["max_tokens"]) == (
        "user_ds_02",
        "185.220.101.33",
        2512,
        8000,
    )
    assert cot["metadata"] == '{"user":"cust-8812"}'
    failed = rows["chatcmpl-4"]
    assert (failed["status"], failed["response"]) == (429, None)
    emb = rows["chatcmpl-5"]
    assert (emb["endpoint"], emb["ip"], emb["output_tokens"]) == (
        "embeddings",
        "2001:db8:85a3::8a2e:370:7334",
        0,
    )
    web = rows["chatcmpl-6"]
    assert web["prompt"] == "What does this error mean?\n[image]"
    assert web["metadata"] == (
        '{"request_tags":["prod","chatbot"],"requester_custom_headers":{"x-session-tag":"landing"},"user":"visitor-51"}'
    )


def test_litellm_spend_logs_jsonl_and_csv(tmp_path: Path) -> None:
    report = ingest(
        "litellm", [DATA / "litellm" / "spend_logs.jsonl", DATA / "litellm" / "spend_logs.csv"], tmp_path
    )
    assert (report.read, report.accepted, report.quarantined) == (8, 8, 0)
    rows = _rows(tmp_path)
    r = rows["chatcmpl-sl1"]
    assert (r["ts"], r["conversation_id"], r["temperature"], r["max_tokens"]) == (
        _ts("2026-02-03T08:00:00"),
        "sess-2f9c",
        0.3,
        600,
    )
    assert r["prompt"] == "Refactor this function to use a dict lookup instead of if/elif."
    # Prompts not stored (the SpendLogs default): no content, n_messages 0.
    r = rows["chatcmpl-sl2"]
    assert (r["n_messages"], r["prompt"], r["response"], r["input_tokens"]) == (0, None, None, 300)
    assert rows["chatcmpl-sl3"]["status"] == 400
    r = rows["chatcmpl-sl4"]
    assert (r["endpoint"], r["account_id"], r["org_id"], r["reasoning_tokens"], r["response"]) == (
        "responses",
        "user_ds_02",
        None,
        1280,
        "Yes: 1001 = 7 × 143.",
    )
    # CSV export: JSON columns parsed, Postgres-style timestamps, numbers from text.
    r = rows["chatcmpl-sl11"]
    assert (r["ts"], r["input_tokens"], r["output_tokens"], r["system_prompt"]) == (
        _ts("2026-02-03T09:00:00.125"),
        64,
        210,
        "You are a grader.",
    )
    assert rows["chatcmpl-sl12"]["account_id"] == "user_web_88"
    assert rows["chatcmpl-sl13"]["response"] == "おはようございます / 좋은 아침 / สวัสดีตอนเช้า"
    assert rows["chatcmpl-sl14"]["endpoint"] == "messages"


# --------------------------------------------------------------------------------------- otel
def test_otel_spans(tmp_path: Path) -> None:
    report = ingest("otel", [DATA / "otel"], tmp_path)
    # traces.json: HTTP span and execute_tool span skipped; traces.jsonl: invoke_agent skipped.
    assert (report.read, report.accepted, report.quarantined, report.skipped) == (6, 6, 0, 3)
    rows = _rows(tmp_path)
    _check(
        rows["chatcmpl-otel0001"],
        {
            "request_id": "chatcmpl-otel0001",
            "ts": datetime(2026, 2, 2, 16, 33, 20, 1000, tzinfo=UTC),
            "account_id": "acct_tutor_11",
            "api_key_id": "key_0b7e",
            "model": "gpt-4.1-mini",
            "endpoint": "chat.completions",
            "ip": "81.2.69.142",
            "user_agent": "OpenAI/Python 1.82.0",
            "conversation_id": "conv_5j66UpCpwteGg4YSxUnt7lPY",
            "n_messages": 1,
            "system_prompt": "You are a math tutor.",
            "prompt": "What is the derivative of x^3?",
            "response": "3x^2.",
            "input_tokens": 25,
            "output_tokens": 6,
            "max_tokens": 200,
            "temperature": 0.5,
            "stream": False,
            "status": 200,
        },
    )
    agent = rows["otel-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"]
    # Reasoning parts are not the visible answer; the tool result counts as a message sent.
    assert (agent["response"], agent["n_messages"], agent["tools"]) == (
        "It is rainy in Paris, about 57°F.",
        3,
        ["get_weather"],
    )
    assert (agent["reasoning_tokens"], agent["stream"], agent["ip"]) == (
        768,
        True,
        "2001:67c:2e8:22::c100:68b",
    )
    assert agent["tls_fingerprint"] == "771,4865-4866-4867,0-23-65281,29-23-24,0"
    assert agent["metadata"] == '{"enduser.id":"end-user-5"}'
    emb = rows["otel-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"]
    assert (emb["endpoint"], emb["input_tokens"], emb["output_tokens"], emb["n_messages"]) == (
        "embeddings",
        12,
        0,
        0,
    )
    err = rows["otel-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8"]
    assert (err["status"], err["output_tokens"], err["response"]) == (429, 0, None)
    # JSON-lines export with structured (kvlist/array) message attributes and resource-level account.
    vision = rows["otel-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8"]
    assert (vision["account_id"], vision["org_id"], vision["system_prompt"]) == (
        "acct_res_77",
        "org_res_7",
        "Think carefully.",
    )
    assert vision["prompt"] == "Compare these two plots.\n[image]\n[image]"
    assert vision["response"] == "Plot A grows linearly; plot B exponentially."


def test_otel_unknown_operation_and_bad_attribute_are_quarantined(tmp_path: Path) -> None:
    import json

    good = json.loads((DATA / "otel" / "traces.jsonl").read_text().splitlines()[1])
    span = good["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad_op = json.loads(json.dumps(good))
    bad_op["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"] = {
        "stringValue": "rerank"
    }
    bad_attr = json.loads(json.dumps(good))
    bad_attr["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "many"}}
    )
    assert span["name"] == "chat gpt-5"
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(d) for d in (bad_op, bad_attr)) + '\n{"resourceSpans": [\n')
    report = ingest("otel", [f], tmp_path / "out")
    q = sorted(
        (r["location"], r["reason"], r["field"]) for r in read_table(tmp_path / "out", QUARANTINE).to_pylist()
    )
    assert q == [
        ("line 1, span 0", "unknown_enum", "gen_ai.operation.name"),
        ("line 2, span 0", "wrong_type", "attributes/gen_ai.usage.input_tokens"),
        ("line 3", "invalid_json", "$"),
    ]
    assert report.skipped == 2 and report.reconciles and report.read == 3


# --------------------------------------------------------------------------------------- canonical
def test_canonical_jsonl(tmp_path: Path) -> None:
    report = ingest("canonical", [DATA / "canonical" / "exchanges.jsonl"], tmp_path)
    assert (report.read, report.accepted) == (5, 5)
    rows = _rows(tmp_path)
    r = rows["req_6c1f0a9b2d3e4f50"]
    assert (r["ts"], r["metadata"], r["temperature"], r["tools"]) == (
        _ts("2026-02-04T08:00:00"),
        '{"user":"u_41ab"}',
        0.7,
        None,
    )
    agent = rows["req_77e2c41d90ab3f12"]
    assert (agent["tools"], agent["reasoning_tokens"], agent["metadata"]) == (
        ["bash", "str_replace_editor", "finish"],
        448,
        '{"safety_identifier":"sid_93"}',
    )
    assert rows["req_9d0e1f2a3b4c5d6e"]["prompt"] == "Contact me at [EMAIL] or call [PHONE]."
