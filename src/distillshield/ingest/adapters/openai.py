"""``openai``: OpenAI-style request/response logs, and Batch API input/output files.

**Log lines** (JSONL, one request per line) use this envelope, which is what a provider's
gateway naturally has at hand — the request body, the response body, and what it knows
about the caller::

    {"request":  { Chat Completions or Responses API request body },
     "response": { response body } | [ stream chunks ] | null,
     "context":  {"request_id", "timestamp", "account_id", "org_id", "api_key_id",
                  "client_ip", "user_agent", "tls_fingerprint", "status", "endpoint",
                  "conversation_id", "account": { accounts-table facts }}}

A streamed response may be logged as the list of ``chat.completion.chunk`` events; the
answer is reassembled and usage taken from the chunk that carries it.

**Batch API**: pass each batch's input file (``custom_id, method, url, body``) followed by
its output file (``custom_id, response: {status_code, request_id, body}, error``); lines
are joined on ``custom_id``. A batch carries no caller facts, so account, IP and time come
from an optional ``context`` object on output lines or from ``--default`` (e.g.
``--default account_id=acct_1 --default ip=203.0.113.7``); the time falls back to the
response body's ``created``. Unmatched lines are quarantined as ``unmatched_batch``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distillshield.ingest._accounts import account_facts
from distillshield.ingest._batch import Batch, RowBuilder
from distillshield.ingest._convert import ConvertError, RecordError, to_int16, to_str
from distillshield.ingest._mapping import F, FieldMapping
from distillshield.ingest._messages import chat_response_text, stream_text, summarize_messages, tool_names
from distillshield.ingest._rules import Reason
from distillshield.ingest.adapters._base import (
    JSON_SUFFIXES,
    Adapter,
    IngestInputError,
    ReadContext,
    Source,
    expand,
    expect_object,
    iter_lines,
    parse_json,
    too_large,
)

#: URL paths and SDK method names that providers log, mapped to canonical endpoints.
ENDPOINT_ALIASES = {
    "/v1/chat/completions": "chat.completions",
    "/chat/completions": "chat.completions",
    "chat.completions.create": "chat.completions",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "responses.create": "responses",
    "/v1/messages": "messages",
    "/v1/embeddings": "embeddings",
    "/v1/batches": "batch",
}


def endpoint_name(value: Any) -> str:
    """Canonical endpoint for a logged URL path or name (unknown names pass to validation)."""
    s = to_str(value).strip()
    return ENDPOINT_ALIASES.get(s.rstrip("/"), s)


def _responses_messages(request: dict[str, Any]) -> list[Any]:
    """Responses API ``instructions`` + ``input`` as a chat-style message list."""
    msgs: list[Any] = []
    if isinstance(request.get("instructions"), str):
        msgs.append({"role": "system", "content": request["instructions"]})
    inp = request.get("input")
    if isinstance(inp, str):
        msgs.append({"role": "user", "content": inp})
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict) and item.get("type") == "reasoning":
                continue  # hidden reasoning carried between turns, not a message sent
            if isinstance(item, dict) and "role" not in item:
                item = {**item, "role": "tool" if item.get("type") == "function_call_output" else "assistant"}
            msgs.append(item)
    elif inp is not None:
        raise RecordError(
            Reason.WRONG_TYPE, "request/input", f"expected text or a list, got {type(inp).__name__}"
        )
    return msgs


def _derive(record: dict[str, Any]) -> dict[str, Any]:
    """What the field table cannot say: transcript summary, tools, answer, metadata, defaults."""
    req = record.get("request") or {}
    resp = record.get("response")
    ctx = record.get("context") or {}
    is_responses_api = "messages" not in req and ("input" in req or "instructions" in req)
    messages = _responses_messages(req) if is_responses_api else req.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise RecordError(
            Reason.WRONG_TYPE, "request/messages", f"expected a list, got {type(messages).__name__}"
        )
    n, prompt, system = summarize_messages(messages, "request/messages")
    tools = tool_names(
        req.get("tools") if req.get("tools") is not None else req.get("functions"), "request/tools"
    )
    answer = record.get("_stream_text") if "_stream_text" in record else chat_response_text(resp, "response")
    meta = {
        k: req[k]
        for k in ("user", "safety_identifier", "metadata", "reasoning_effort")
        if req.get(k) is not None
    }
    if isinstance(req.get("reasoning"), dict) and req["reasoning"].get("effort") is not None:
        meta.setdefault("reasoning_effort", req["reasoning"]["effort"])
    out: dict[str, Any] = {
        "n_messages": n,
        "prompt": prompt,
        "system_prompt": system,
        "tools": tools,
        "response": answer,
        "metadata": json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if meta
        else None,
        "stream": False,
        "endpoint": "responses" if is_responses_api else "chat.completions",
    }
    has_answer = isinstance(resp, dict) and ("choices" in resp or "output" in resp)
    if has_answer:
        out["status"] = 200
    try:
        failed = to_int16(ctx["status"]) >= 400 if ctx.get("status") is not None else False
    except ConvertError:
        failed = False  # the status field itself is refused with its own reason
    if failed or (isinstance(resp, dict) and "error" in resp and not has_answer):
        # An error bills nothing: docs/schema.md says output_tokens is 0 on error.
        usage = resp.get("usage") if isinstance(resp, dict) else None
        if usage is None:
            out["input_tokens"] = 0
            out["output_tokens"] = 0
        out["response"] = None
    return out


MAPPING = FieldMapping(
    fields=(
        F("request_id", "context/request_id", "response/id"),
        F("ts", "context/timestamp", "response/created", "response/created_at"),
        F("account_id", "context/account_id"),
        F("org_id", "context/org_id"),
        F("api_key_id", "context/api_key_id"),
        F("model", "request/model", "response/model"),
        F("endpoint", "context/endpoint", convert=endpoint_name),
        F("ip", "context/client_ip"),
        F("user_agent", "context/user_agent"),
        F("tls_fingerprint", "context/tls_fingerprint"),
        F("conversation_id", "context/conversation_id"),
        F("input_tokens", "response/usage/prompt_tokens", "response/usage/input_tokens"),
        F("output_tokens", "response/usage/completion_tokens", "response/usage/output_tokens"),
        F(
            "reasoning_tokens",
            "response/usage/completion_tokens_details/reasoning_tokens",
            "response/usage/output_tokens_details/reasoning_tokens",
        ),
        F("max_tokens", "request/max_completion_tokens", "request/max_tokens", "request/max_output_tokens"),
        F("temperature", "request/temperature"),
        F("stream", "request/stream"),
        F("status", "context/status"),
    ),
    derive=_derive,
    id_prefix="oai",
)


def prepare(record: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Check the envelope's shape, reassemble streams; returns (record, account facts)."""
    rec = expect_object(record, "$")
    for key in ("request", "context"):
        if rec.get(key) is not None:
            expect_object(rec[key], key)
    resp = rec.get("response")
    if isinstance(resp, list):
        text, summary = stream_text(resp, "response")
        rec = {**rec, "response": summary, "_stream_text": text}
    elif resp is not None and not isinstance(resp, dict):
        raise RecordError(
            Reason.WRONG_TYPE, "response", f"expected an object or chunk list, got {type(resp).__name__}"
        )
    ctx = rec.get("context") or {}
    account = None
    if ctx.get("account") is not None:
        facts = dict(expect_object(ctx["account"], "context/account"))
        facts.setdefault("account_id", ctx.get("account_id"))
        account = account_facts(facts, prefix="context/account/")
    return rec, account


def _sniff(path: Path) -> str:
    """``log``, ``batch_input`` or ``batch_output`` from the first parseable line."""
    for _, raw, complete in iter_lines(path):
        if not complete:
            continue
        try:
            first = parse_json(raw)
        except RecordError:
            continue
        if isinstance(first, dict) and "custom_id" in first:
            return "batch_input" if "body" in first else "batch_output"
        return "log"
    return "log"


class OpenAIAdapter(Adapter):
    name = "openai"
    summary = "OpenAI-style logs {request, response, context} (JSONL) and Batch API input+output files"

    def plan(self, inputs: Sequence[Path]) -> list[Source]:
        sources: list[Source] = []
        pending: Path | None = None
        for f in expand(inputs, JSON_SUFFIXES):
            kind = _sniff(f)
            if kind == "batch_input":
                if pending is not None:
                    raise IngestInputError(f"{pending}: batch input file has no output file after it")
                pending = f
            elif kind == "batch_output":
                if pending is None:
                    raise IngestInputError(f"{f}: batch output file has no input file before it")
                sources.append(Source(f"{pending} + {f}", (pending, f), "batch"))
                pending = None
            else:
                sources.append(Source(str(f), (f,), "log"))
        if pending is not None:
            raise IngestInputError(f"{pending}: batch input file has no output file after it")
        return sources

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Batch]:
        b = RowBuilder(source.label, MAPPING, ctx.defaults, ctx.batch_rows)
        if source.kind == "batch":
            yield from _read_batch(source, b)
            return
        path = source.paths[0]
        for row, (line, raw, complete) in enumerate(iter_lines(path)):
            try:
                if not complete:
                    raise too_large()
                record, account = prepare(parse_json(raw))
            except RecordError as exc:
                b.reject_error(raw, exc, file=str(path), line=line, row=row)
            else:
                b.add(record, raw, file=str(path), line=line, row=row, account=account)
            if b.full():
                yield b.take()
        if len(b):
            yield b.take()


def _read_batch(source: Source, b: RowBuilder) -> Iterator[Batch]:
    """Join a batch input file (held in memory: ≤ 50k requests by API limits) with its output."""
    in_path, out_path = source.paths
    inputs: dict[str, tuple[int, int, bytes, dict[str, Any]]] = {}
    for row, (line, raw, complete) in enumerate(iter_lines(in_path)):
        try:
            if not complete:
                raise too_large()
            rec = expect_object(parse_json(raw), "$")
            cid = rec.get("custom_id")
            if not isinstance(cid, str):
                raise RecordError(
                    Reason.MISSING_REQUIRED, "custom_id", "batch input line without a custom_id"
                )
            if cid in inputs:
                raise RecordError(
                    Reason.UNMATCHED_BATCH, "custom_id", f"custom_id {cid!r} repeats line {inputs[cid][0]}"
                )
            expect_object(rec.get("body"), "body")
        except RecordError as exc:
            b.reject_error(raw, exc, file=str(in_path), line=line, row=row)
            continue
        inputs[cid] = (line, row, raw, rec)
    if b.full():
        yield b.take()
    for row, (line, raw, complete) in enumerate(iter_lines(out_path)):
        try:
            if not complete:
                raise too_large()
            out = expect_object(parse_json(raw), "$")
            cid = out.get("custom_id")
            if not isinstance(cid, str) or cid not in inputs:
                raise RecordError(Reason.UNMATCHED_BATCH, "custom_id", f"no input line has custom_id {cid!r}")
            _, _, in_raw, in_rec = inputs.pop(cid)
            resp = out.get("response")
            if not isinstance(resp, dict):
                err = out.get("error")
                raise RecordError(
                    Reason.MISSING_REQUIRED,
                    "response",
                    f"batch request {cid!r} has no response (error: {err!r})",
                )
            context = dict(expect_object(out.get("context") or {}, "context"))
            context.setdefault("endpoint", "batch")
            context.setdefault("status", resp.get("status_code"))
            if resp.get("request_id") is not None:
                context.setdefault("request_id", resp.get("request_id"))
            record, account = prepare(
                {"request": in_rec.get("body"), "response": resp.get("body"), "context": context}
            )
        except RecordError as exc:
            b.reject_error(raw, exc, file=str(out_path), line=line, row=row)
        else:
            # The pair is one record: its raw text and hash cover both lines.
            b.add(record, in_raw + b"\n" + raw, file=str(out_path), line=line, row=row, account=account)
        if b.full():
            yield b.take()
    for cid, (line, row, raw, _) in sorted(inputs.items(), key=lambda kv: kv[1][0]):
        b.reject(
            raw,
            file=str(in_path),
            line=line,
            row=row,
            reason=Reason.UNMATCHED_BATCH,
            field="custom_id",
            detail=f"no output line has custom_id {cid!r}",
        )
        if b.full():
            yield b.take()
    if len(b):
        yield b.take()
