"""``otel``: OpenTelemetry GenAI spans exported as OTLP/JSON.

Accepts a single ``ExportTraceServiceRequest`` document (``{"resourceSpans": …}``) or JSON
lines of them (what the Collector's file exporter writes). Attributes are OTLP
``{key, value: {stringValue|intValue|doubleValue|boolValue|arrayValue|kvlistValue}}``;
resource attributes apply to every span under them.

A span is an exchange when ``gen_ai.operation.name`` is ``chat``, ``text_completion``,
``generate_content`` or ``embeddings``. Spans without it (HTTP, database…) and agent spans
(``invoke_agent``, ``create_agent``, ``execute_tool``) are *skipped* (counted, outside
``read``); any other operation name is quarantined as ``unknown_enum``.

Attributes follow the GenAI semantic conventions (``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.input.messages``, …) plus ``client.address`` and
``user_agent.original``. The billing account is not a semconv concept: providers set
``distillshield.account_id`` (also ``distillshield.org_id``, ``distillshield.api_key_id``,
``distillshield.request_id``, ``distillshield.endpoint``, ``distillshield.tls_fingerprint``)
on the span or its resource; ``user.id`` and ``enduser.id`` are the fallbacks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distillshield.ingest._batch import Batch, RowBuilder
from distillshield.ingest._convert import RecordError, to_ts_unix_nano
from distillshield.ingest._mapping import F, FieldMapping
from distillshield.ingest._messages import content_text, summarize_messages, tool_names
from distillshield.ingest._rules import Reason
from distillshield.ingest.adapters._base import (
    JSON_SUFFIXES,
    Adapter,
    IngestInputError,
    ReadContext,
    Source,
    expand,
    iter_lines,
    open_binary,
    parse_json,
    too_large,
)
from distillshield.ingest.adapters.openai import endpoint_name

#: GenAI operations that are model requests, and the endpoint each becomes.
OPERATIONS = {
    "chat": "chat.completions",
    "text_completion": "completions",
    "generate_content": "generate_content",
    "embeddings": "embeddings",
}
#: Client-side agent spans: they wrap model requests but are not requests themselves.
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "execute_tool"})
#: A whole-document export is parsed in memory; bigger ones must use JSON lines.
MAX_DOCUMENT_BYTES = 1 << 30
_STATUS_ERROR = (2, "STATUS_CODE_ERROR")


def any_value(v: Any, key: str) -> Any:
    """Decode one OTLP ``AnyValue`` (ints arrive as strings in OTLP/JSON)."""
    if not isinstance(v, dict):
        raise RecordError(
            Reason.WRONG_TYPE, f"attributes/{key}", f"expected an AnyValue object, got {type(v).__name__}"
        )
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        iv = v["intValue"]
        try:
            return int(iv)
        except (TypeError, ValueError):
            raise RecordError(
                Reason.WRONG_TYPE, f"attributes/{key}", f"intValue {iv!r} is not an integer"
            ) from None
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [any_value(x, key) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return attributes((v["kvlistValue"] or {}).get("values", []), key + ".")
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"] or "").decode("utf-8", "replace")
    if not v:
        return None
    raise RecordError(Reason.WRONG_TYPE, f"attributes/{key}", f"unknown AnyValue kind {sorted(v)!r}")


def attributes(kvs: Any, prefix: str = "") -> dict[str, Any]:
    """OTLP ``[{key, value}]`` → ``{key: value}``."""
    if kvs is None:
        return {}
    if not isinstance(kvs, list):
        raise RecordError(Reason.WRONG_TYPE, "attributes", f"expected a list, got {type(kvs).__name__}")
    out: dict[str, Any] = {}
    for kv in kvs:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise RecordError(Reason.WRONG_TYPE, "attributes", "attribute without a string key")
        out[kv["key"]] = any_value(kv.get("value"), prefix + kv["key"])
    return out


def _structured(attrs: dict[str, Any], key: str) -> Any:
    """A content attribute: structured, or JSON text as semconv allows on spans."""
    v = attrs.get(key)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError as exc:
            raise RecordError(
                Reason.INVALID_JSON, key, f"{key}: invalid JSON: {exc.msg} at char {exc.pos}"
            ) from None
    return v


def _derive(rec: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = rec["attrs"]
    op = attrs.get("gen_ai.operation.name")
    n, prompt, system = summarize_messages(
        _structured(attrs, "gen_ai.input.messages"), "gen_ai.input.messages"
    )
    instructions = _structured(attrs, "gen_ai.system_instructions")
    if instructions is not None:
        text = content_text(instructions, "gen_ai.system_instructions")
        system = "\n\n".join(t for t in (text, system) if t) or None
    outputs = _structured(attrs, "gen_ai.output.messages")
    answer = None
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        first = outputs[0]
        answer = content_text(first.get("parts", first.get("content")), "gen_ai.output.messages")
    status_code = (rec.get("status") or {}).get("code")
    failed = status_code in _STATUS_ERROR or attrs.get("error.type") is not None
    out: dict[str, Any] = {
        "endpoint": OPERATIONS.get(op) if isinstance(op, str) else None,
        "n_messages": n,
        "prompt": prompt,
        "system_prompt": system,
        "tools": tool_names(_structured(attrs, "gen_ai.tool.definitions"), "gen_ai.tool.definitions"),
        "response": None if failed else answer,
        "stream": False,
        "status": 500 if failed else 200,
    }
    if op == "embeddings":
        out["output_tokens"] = 0  # embeddings generate no tokens; semconv records none
    if failed and attrs.get("gen_ai.usage.output_tokens") is None:
        out["input_tokens"] = attrs.get("gen_ai.usage.input_tokens", 0)
        out["output_tokens"] = 0
    meta = {
        k: attrs[k]
        for k in ("enduser.id", "user.id", "session.id", "gen_ai.agent.name")
        if attrs.get(k) is not None
    }
    if meta:
        out["metadata"] = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return out


def _request_id(rec: dict[str, Any]) -> str | None:
    t, s = rec.get("traceId"), rec.get("spanId")
    return f"otel-{t}-{s}" if isinstance(t, str) and isinstance(s, str) and t and s else None


MAPPING = FieldMapping(
    fields=(
        F("request_id", "attrs/distillshield.request_id", "attrs/gen_ai.response.id", "_span_id"),
        F("ts", "startTimeUnixNano", convert=to_ts_unix_nano),
        F(
            "account_id",
            "attrs/distillshield.account_id",
            "resource/distillshield.account_id",
            "attrs/user.id",
            "attrs/enduser.id",
        ),
        F("org_id", "attrs/distillshield.org_id", "resource/distillshield.org_id"),
        F("api_key_id", "attrs/distillshield.api_key_id"),
        F("model", "attrs/gen_ai.request.model", "attrs/gen_ai.response.model"),
        F("endpoint", "attrs/distillshield.endpoint", convert=endpoint_name),
        F("ip", "attrs/client.address"),
        F("user_agent", "attrs/user_agent.original"),
        F("tls_fingerprint", "attrs/distillshield.tls_fingerprint", "attrs/tls.client.ja3"),
        F("conversation_id", "attrs/gen_ai.conversation.id"),
        F("input_tokens", "attrs/gen_ai.usage.input_tokens", "attrs/gen_ai.usage.prompt_tokens"),
        F("output_tokens", "attrs/gen_ai.usage.output_tokens", "attrs/gen_ai.usage.completion_tokens"),
        F("reasoning_tokens", "attrs/gen_ai.usage.reasoning.output_tokens"),
        F("max_tokens", "attrs/gen_ai.request.max_tokens"),
        F("temperature", "attrs/gen_ai.request.temperature"),
        F("stream", "attrs/gen_ai.request.stream"),
        F("status", "attrs/http.response.status_code"),
    ),
    derive=_derive,
    id_prefix="otel",
)


def _spans(doc: Any) -> Iterator[tuple[dict[str, Any] | RecordError, bytes]]:
    """Each span of an export request as ``(record, raw)``, or an error for a bad one."""
    if not isinstance(doc, dict):
        yield (
            RecordError(
                Reason.WRONG_TYPE, "$", f"expected an export request object, got {type(doc).__name__}"
            ),
            b"",
        )
        return
    for rs in doc.get("resourceSpans") or []:
        if not isinstance(rs, dict):
            yield (
                RecordError(Reason.WRONG_TYPE, "resourceSpans", "expected an object"),
                json.dumps(rs).encode(),
            )
            continue
        try:
            resource = attributes((rs.get("resource") or {}).get("attributes"))
            resource_error = None
        except RecordError as exc:
            resource, resource_error = {}, exc
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for span in (ss.get("spans") if isinstance(ss, dict) else None) or []:
                raw = json.dumps(span, ensure_ascii=False, sort_keys=True).encode()
                if resource_error is not None:
                    yield resource_error, raw
                    continue
                if not isinstance(span, dict):
                    yield RecordError(Reason.WRONG_TYPE, "spans", "expected a span object"), raw
                    continue
                try:
                    attrs = attributes(span.get("attributes"))
                except RecordError as exc:
                    yield exc, raw
                    continue
                rec = {
                    "attrs": attrs,
                    "resource": resource,
                    "traceId": span.get("traceId"),
                    "spanId": span.get("spanId"),
                    "name": span.get("name"),
                    "startTimeUnixNano": span.get("startTimeUnixNano"),
                    "status": span.get("status") if isinstance(span.get("status"), dict) else {},
                }
                rec["_span_id"] = _request_id(rec)
                yield rec, raw


class OTelAdapter(Adapter):
    name = "otel"
    summary = "OpenTelemetry GenAI spans as OTLP/JSON (one export document, or JSON lines of them)"

    def plan(self, inputs: Sequence[Path]) -> list[Source]:
        sources = []
        for f in expand(inputs, JSON_SUFFIXES):
            sources.append(Source(str(f), (f,), "jsonl" if _is_jsonl(f) else "document"))
        return sources

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Batch]:
        b = RowBuilder(source.label, MAPPING, ctx.defaults, ctx.batch_rows)
        path = source.paths[0]
        span_no = 0
        docs: Iterator[tuple[int | None, bytes, bool]]
        if source.kind == "jsonl":
            docs = ((line, raw, complete) for line, raw, complete in iter_lines(path))
        else:
            docs = iter([_whole(path)])
        for line, raw, complete in docs:
            try:
                if not complete:
                    raise too_large()
                doc = parse_json(raw)
            except RecordError as exc:
                # A broken export request hides how many spans it had: it counts as one record.
                b.reject_error(raw, exc, file=source.label, line=line, row=span_no)
                span_no += 1
                continue
            for k, (rec, span_raw) in enumerate(_spans(doc)):
                span = k if line is not None else span_no
                if isinstance(rec, RecordError):
                    b.reject(
                        span_raw,
                        file=source.label,
                        line=line,
                        row=span_no,
                        span=span,
                        reason=rec.reason,
                        field=rec.field,
                        detail=rec.detail,
                    )
                else:
                    op = rec["attrs"].get("gen_ai.operation.name")
                    if op is None or op in AGENT_OPERATIONS:
                        b.skip()
                    elif op not in OPERATIONS:
                        b.reject(
                            span_raw,
                            file=source.label,
                            line=line,
                            row=span_no,
                            span=span,
                            reason=Reason.UNKNOWN_ENUM,
                            field="gen_ai.operation.name",
                            detail=f"gen_ai.operation.name {op!r} is not one of {', '.join(OPERATIONS)}",
                        )
                    else:
                        b.add(rec, span_raw, file=source.label, line=line, row=span_no, span=span)
                span_no += 1
                if b.full():
                    yield b.take()
        if len(b) or b.skipped:
            yield b.take()


def _is_jsonl(path: Path) -> bool:
    """JSON lines when the first line is a complete JSON value on its own."""
    for _, raw, complete in iter_lines(path):
        if not complete:
            return True
        try:
            parse_json(raw)
        except RecordError:
            return False
        return True
    return True


def _whole(path: Path) -> tuple[int | None, bytes, bool]:
    with open_binary(path) as f:
        data = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IngestInputError(
            f"{path}: OTLP/JSON document over {MAX_DOCUMENT_BYTES:,} bytes; export JSON lines"
        )
    return None, data, True
