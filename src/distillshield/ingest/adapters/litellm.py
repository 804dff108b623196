"""``litellm``: LiteLLM proxy logs — StandardLoggingPayload and LiteLLM_SpendLogs rows.

Accepts JSON lines of either shape (a logging callback's ``standard_logging_object``, or
SpendLogs rows exported as JSON) and CSV exports of ``LiteLLM_SpendLogs`` (JSON-typed
columns — metadata, messages, response, proxy_server_request, request_tags — hold JSON
text). Field names follow LiteLLM's ``StandardLoggingPayload`` TypedDict and the
``LiteLLM_SpendLogs`` model in its ``schema.prisma``.

The *account* is whoever LiteLLM bills: the virtual key's user (``user_api_key_user_id``;
SpendLogs ``user``), else its team, else the key hash itself. ``end_user`` (the ``user``
field a client sends for its own customers) goes to ``metadata``. SpendLogs do not store
prompts unless ``store_prompts_in_spend_logs`` is on; without messages ``n_messages`` is 0
and the content columns are null.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distillshield.ingest._batch import Batch, RowBuilder
from distillshield.ingest._convert import RecordError, to_str
from distillshield.ingest._mapping import F, FieldMapping, lookup
from distillshield.ingest._messages import chat_response_text, summarize_messages, tool_names
from distillshield.ingest._rules import MAX_RECORD_BYTES, Reason
from distillshield.ingest.adapters._base import (
    JSON_SUFFIXES,
    Adapter,
    ReadContext,
    Source,
    expand,
    expect_object,
    iter_lines,
    open_binary,
    parse_json,
    too_large,
)

#: LiteLLM ``call_type`` (sync and async spellings) → canonical endpoint.
CALL_TYPES = {
    "completion": "chat.completions",
    "acompletion": "chat.completions",
    "text_completion": "completions",
    "atext_completion": "completions",
    "responses": "responses",
    "aresponses": "responses",
    "anthropic_messages": "messages",
    "embedding": "embeddings",
    "aembedding": "embeddings",
    "create_batch": "batch",
    "acreate_batch": "batch",
    "generate_content": "generate_content",
    "agenerate_content": "generate_content",
}
#: SpendLogs columns that hold JSON (text in a CSV export).
JSON_COLUMNS = (
    "metadata",
    "messages",
    "response",
    "proxy_server_request",
    "request_tags",
    "model_parameters",
)


def call_type(value: Any) -> str:
    """Canonical endpoint for a LiteLLM call type; unknown ones fail validation by name."""
    s = to_str(value)
    return CALL_TYPES.get(s, s)


def _request_body(rec: dict[str, Any]) -> dict[str, Any]:
    """The client's request as the proxy logged it (``proxy_server_request`` or its body)."""
    psr = rec.get("proxy_server_request")
    if isinstance(psr, dict):
        body = psr.get("body")
        return body if isinstance(body, dict) else psr
    return {}


def _status(rec: dict[str, Any]) -> int | None:
    status = rec.get("status")
    if status is None:
        return None
    if status == "success":
        return 200
    if status == "failure":
        code = lookup(rec, ("error_information", "error_code")) or lookup(
            rec, ("metadata", "error_information", "error_code")
        )
        try:
            n = int(str(code))
        except ValueError:
            return 500
        return n if 100 <= n <= 599 else 500
    raise RecordError(Reason.UNKNOWN_ENUM, "status", f"status {status!r} is not 'success' or 'failure'")


def _derive(rec: dict[str, Any]) -> dict[str, Any]:
    body = _request_body(rec)
    messages = rec.get("messages")
    if messages in ({}, "{}", [], ""):  # SpendLogs default when prompts are not stored
        messages = None
    if messages is None:
        messages = body.get("messages")
    n, prompt, system = summarize_messages(messages, "messages")
    params: dict[str, Any] = rec["model_parameters"] if isinstance(rec.get("model_parameters"), dict) else {}
    tools = tool_names(params.get("tools", body.get("tools")), "model_parameters/tools")
    status = _status(rec)
    response = rec.get("response")
    answer = None
    if (status is None or status < 400) and not isinstance(response, list):  # lists: embeddings
        answer = chat_response_text(response, "response") if response not in ({}, "{}", "") else None
    meta_src: dict[str, Any] = rec["metadata"] if isinstance(rec.get("metadata"), dict) else {}
    meta = {
        "user": rec.get("end_user") or meta_src.get("user_api_key_end_user_id"),
        "request_tags": rec.get("request_tags") or None,
        "requester_custom_headers": meta_src.get("requester_custom_headers"),
        "requester_metadata": meta_src.get("requester_metadata"),
    }
    meta = {k: v for k, v in meta.items() if v not in (None, {}, [], "")}
    return {
        "n_messages": n,
        "prompt": prompt,
        "system_prompt": system,
        "tools": tools,
        "response": answer,
        "status": status,
        "stream": False,
        "metadata": json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if meta
        else None,
    }


MAPPING = FieldMapping(
    fields=(
        F("request_id", "request_id", "id"),
        F("ts", "startTime", "start_time"),
        F(
            "account_id",
            "metadata/user_api_key_user_id",
            "user",
            "metadata/user_api_key_team_id",
            "team_id",
            "metadata/user_api_key_hash",
            "api_key",
        ),
        F("org_id", "organization_id", "metadata/user_api_key_org_id"),
        F("api_key_id", "api_key", "metadata/user_api_key_hash"),
        F("model", "model", "model_group"),
        F("endpoint", "call_type", convert=call_type),
        F("ip", "requester_ip_address", "metadata/requester_ip_address"),
        F(
            "user_agent",
            "user_agent",
            "metadata/user_agent",
            "proxy_server_request/headers/user-agent",
            "proxy_server_request/headers/User-Agent",
        ),
        F("conversation_id", "session_id"),
        F("input_tokens", "prompt_tokens"),
        F("output_tokens", "completion_tokens"),
        F(
            "reasoning_tokens",
            "metadata/usage_object/completion_tokens_details/reasoning_tokens",
            "response/usage/completion_tokens_details/reasoning_tokens",
        ),
        F(
            "max_tokens",
            "model_parameters/max_completion_tokens",
            "model_parameters/max_tokens",
            "proxy_server_request/body/max_tokens",
            "proxy_server_request/max_tokens",
        ),
        F(
            "temperature",
            "model_parameters/temperature",
            "proxy_server_request/body/temperature",
            "proxy_server_request/temperature",
        ),
        F(
            "stream",
            "stream",
            "model_parameters/stream",
            "proxy_server_request/body/stream",
            "proxy_server_request/stream",
        ),
    ),
    derive=_derive,
    id_prefix="litellm",
)


def _csv_records(path: Path) -> Iterator[tuple[int, int, bytes, dict[str, Any] | RecordError]]:
    """``(line, row, raw, record or error)`` per CSV data row, JSON columns parsed."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
    with open_binary(path) as fb, io.TextIOWrapper(fb, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        prev = reader.line_num
        row = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = prev + 1
                prev = reader.line_num
                yield line, row, b"", RecordError(Reason.INVALID_CSV, "$", f"malformed CSV: {exc}")
                row += 1
                continue
            line, prev = prev + 1, reader.line_num
            buf = io.StringIO()
            csv.writer(buf).writerow(values)
            raw = buf.getvalue().rstrip("\r\n").encode()
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield (
                    line,
                    row,
                    raw,
                    RecordError(
                        Reason.INVALID_CSV, "$", f"{len(values)} fields where the header has {len(header)}"
                    ),
                )
                row += 1
                continue
            rec: dict[str, Any] = {}
            err: RecordError | None = None
            for k, v in zip(header, values, strict=True):
                if v == "":
                    rec[k] = None
                elif k in JSON_COLUMNS:
                    try:
                        rec[k] = json.loads(v)
                    except json.JSONDecodeError as exc:
                        err = RecordError(
                            Reason.INVALID_JSON, k, f"column {k}: invalid JSON: {exc.msg} at char {exc.pos}"
                        )
                        break
                else:
                    rec[k] = v
            yield line, row, raw, (err if err is not None else rec)
            row += 1


class LiteLLMAdapter(Adapter):
    name = "litellm"
    summary = "LiteLLM StandardLoggingPayload / SpendLogs rows (JSON lines) or SpendLogs CSV export"

    def plan(self, inputs: Sequence[Path]) -> list[Source]:
        return [
            Source(str(f), (f,), "csv" if f.name.lower().removesuffix(".gz").endswith(".csv") else "jsonl")
            for f in expand(inputs, (*JSON_SUFFIXES, ".csv"))
        ]

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Batch]:
        b = RowBuilder(source.label, MAPPING, ctx.defaults, ctx.batch_rows)
        path = source.paths[0]
        if source.kind == "csv":
            for line, row, raw, rec in _csv_records(path):
                if isinstance(rec, RecordError):
                    b.reject(
                        raw,
                        file=source.label,
                        line=line,
                        row=row,
                        reason=rec.reason,
                        field=rec.field,
                        detail=rec.detail,
                    )
                else:
                    b.add(rec, raw, file=source.label, line=line, row=row)
                if b.full():
                    yield b.take()
        else:
            for row, (line, raw, complete) in enumerate(iter_lines(path)):
                try:
                    if not complete:
                        raise too_large()
                    rec = expect_object(parse_json(raw), "$")
                    for key in ("metadata", "model_parameters"):
                        if rec.get(key) is not None:
                            expect_object(rec[key], key)
                except RecordError as exc:
                    b.reject_error(raw, exc, file=source.label, line=line, row=row)
                else:
                    b.add(rec, raw, file=source.label, line=line, row=row)
                if b.full():
                    yield b.take()
        if len(b):
            yield b.take()
