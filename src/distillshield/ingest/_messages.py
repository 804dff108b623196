"""Reading chat transcripts the way the canonical schema counts them.

Shared by every adapter because OpenAI, LiteLLM and OpenTelemetry all carry some variant
of the Chat Completions message list:

- ``n_messages``: messages sent that are not system/developer instructions (turn *k* of a
  chat sends 2*k*−1); tool results count, as they are turns the client sent;
- ``prompt``: the latest user message's text, text parts joined by newlines, images and
  other media as placeholders such as ``[image]``;
- ``system_prompt``: system and developer messages joined by blank lines;
- ``tools``: the names of tools offered;
- the visible answer: assistant text only (never reasoning content).
"""

from __future__ import annotations

from typing import Any

from distillshield.ingest._convert import RecordError
from distillshield.ingest._rules import Reason

SYSTEM_ROLES = frozenset({"system", "developer"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_MEDIA = {
    "image_url": "[image]",
    "input_image": "[image]",
    "image": "[image]",
    "input_audio": "[audio]",
    "audio": "[audio]",
    "file": "[file]",
    "input_file": "[file]",
    "video": "[video]",
}
#: Part types that carry no visible text (tool traffic, hidden reasoning).
_SILENT = frozenset(
    {"tool_call", "tool_call_response", "tool_use", "tool_result", "reasoning", "thinking", "function_call"}
)


def _bad(field: str, what: str, v: Any) -> RecordError:
    return RecordError(Reason.WRONG_TYPE, field, f"expected {what}, got {type(v).__name__}")


def part_text(part: Any, field: str) -> str | None:
    """Text of one content part (OpenAI ``{"type":"text","text"}`` or OTel ``content``)."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise _bad(field, "content part object", part)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text", part.get("content"))
        if text is None:
            return None
        if not isinstance(text, str):
            raise _bad(field, "text in content part", text)
        return text
    if kind == "refusal":
        r = part.get("refusal")
        return r if isinstance(r, str) else None
    modality = part.get("modality")
    if kind in ("blob", "uri", "file") and isinstance(modality, str):
        return f"[{modality}]"
    if isinstance(kind, str) and kind in _MEDIA:
        return _MEDIA[kind]
    return None  # tool calls, reasoning and unknown parts carry no visible text


def content_text(content: Any, field: str) -> str | None:
    """Text of a message's ``content`` (a string or a list of parts), parts joined by newlines."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise _bad(field, "string or list of content parts", content)
    texts = [t for t in (part_text(p, field) for p in content) if t is not None]
    return "\n".join(texts) if texts else None


def _message_text(m: dict[str, Any], field: str) -> str | None:
    if "content" in m:
        return content_text(m["content"], field)
    if "parts" in m:  # OpenTelemetry GenAI message
        return content_text(m["parts"], field)
    return None


def summarize_messages(messages: Any, field: str) -> tuple[int, str | None, str | None]:
    """``(n_messages, prompt, system_prompt)`` of a message list (or a bare prompt string)."""
    if messages is None:
        return 0, None, None
    if isinstance(messages, str):
        return 1, messages, None
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        raise _bad(field, "list of messages", messages)
    n = 0
    system: list[str] = []
    last_user: dict[str, Any] | None = None
    for m in messages:
        if not isinstance(m, dict):
            raise _bad(field, "message object", m)
        role = m.get("role")
        if role is not None and not isinstance(role, str):
            raise _bad(f"{field}/role", "string", role)
        if role in SYSTEM_ROLES:
            text = _message_text(m, field)
            if text:
                system.append(text)
            continue
        n += 1
        if role == "user":
            last_user = m
    prompt = _message_text(last_user, field) if last_user is not None else None
    return n, prompt, ("\n\n".join(system) if system else None)


def tool_names(tools: Any, field: str) -> list[str] | None:
    """Names of the tools offered: function tools by name, built-in tools by type."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise _bad(field, "list of tools", tools)
    names: list[str] = []
    for t in tools:
        if isinstance(t, str):
            names.append(t)
            continue
        if not isinstance(t, dict):
            raise _bad(field, "tool object", t)
        fn = t.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        name = name or t.get("name") or t.get("type")
        if not isinstance(name, str):
            raise _bad(f"{field}/name", "string", name)
        names.append(name)
    return names or None


def chat_response_text(body: Any, field: str) -> str | None:
    """Visible answer of a Chat Completions or Responses API body (choice 0 / message items)."""
    if body is None or isinstance(body, str):
        return body
    if not isinstance(body, dict):
        raise _bad(field, "response object", body)
    choices = body.get("choices")
    if isinstance(choices, list) and choices:
        c0 = choices[0]
        if not isinstance(c0, dict):
            raise _bad(f"{field}/choices", "choice object", c0)
        msg = c0.get("message")
        if isinstance(msg, dict):
            text = content_text(msg.get("content"), f"{field}/choices/0/message/content")
            if text is None and isinstance(msg.get("refusal"), str):
                return str(msg["refusal"])
            return text
        t = c0.get("text")  # legacy completions
        return t if isinstance(t, str) else None
    output = body.get("output")
    if isinstance(output, list):  # Responses API: message items hold output_text parts
        texts = []
        for item in output:
            if isinstance(item, dict) and item.get("type") == "message":
                t = content_text(item.get("content"), f"{field}/output")
                if t:
                    texts.append(t)
        return "\n".join(texts) if texts else None
    return None


def stream_text(chunks: list[Any], field: str) -> tuple[str | None, dict[str, Any]]:
    """Assemble ``chat.completion.chunk`` events: the answer text and a summary body.

    The summary carries the first chunk's id/created/model and the usage of whichever chunk
    reported it (``stream_options.include_usage``), so streamed and plain responses map alike.
    """
    text: list[str] = []
    summary: dict[str, Any] = {}
    for ch in chunks:
        if not isinstance(ch, dict):
            raise _bad(field, "chunk object", ch)
        for key in ("id", "created", "model"):
            if key not in summary and ch.get(key) is not None:
                summary[key] = ch[key]
        if ch.get("usage") is not None:
            summary["usage"] = ch["usage"]
        choices = ch.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                text.append(delta["content"])
    return ("".join(text) if text else None), summary
