"""Protect reasoning: strip raw reasoning from responses, or replace it by a short summary.

Why. A distiller's most valuable harvest is the model's reasoning trace: a student trained on
(question, reasoning, answer) learns far more per exchange than from the answer alone
(docs/signals-cot-capability.md, MISSION.md "blunt"). For traffic the gateway has flagged, the
``PROTECT`` action (:class:`~distillshield.gateway._types.Decision`, ``protect_mode``) removes
the trace — ``"strip"`` — or swaps it for a two-sentence extractive summary — ``"summary"`` —
so a client that shows "thinking" still has something to show.

Where reasoning travels in OpenAI-compatible responses (all three are handled):

* a separate field of the chat message / stream delta: ``reasoning_content`` (vLLM,
  DeepSeek, llama.cpp), ``reasoning`` (newer vLLM, OpenRouter, Ollama), ``thinking``, and
  the structured lists ``reasoning_details`` (OpenRouter) and ``thinking_blocks`` (LiteLLM's
  Anthropic / Bedrock thinking);
* ``<think>...</think>`` blocks inside ``content`` (a server without a reasoning parser). When
  the chat template already opened the block in the prompt (DeepSeek-R1-0528, Qwen3
  thinking), the output starts *inside* it and only ``</think>`` appears;
* OpenAI Responses API output items of ``type: "reasoning"`` (``summary`` and ``content``
  parts) in ``/v1/responses`` bodies, and their stream events
  (``response.reasoning_text.delta``, ``response.reasoning_summary_text.delta``, ...).

What each mode produces.

* ``strip`` — string reasoning fields become ``null`` (what a non-reasoning response looks
  like), ``reasoning_details`` / ``thinking_blocks`` are removed, ``<think>`` blocks are cut
  out together with the whitespace that followed a block at the very start of the answer, and
  Responses reasoning items keep their ``id`` (multi-turn clients refer to it) but lose their
  ``summary`` and ``content`` text. ``encrypted_content`` is left alone: it is opaque to the
  client.
* ``summary`` — each of those is replaced by :data:`SUMMARY_PREFIX` + :func:`summarize_reasoning`
  (first informative sentence + the last conclusion-like one, at most 200 characters; no model
  call, deterministic). A ``<think>`` block becomes ``<think>[summary]...</think>`` so clients
  that render thinking panels keep working. In a stream the summary is sent once, when the
  reasoning section ends (first answer text, tool call or ``finish_reason`` of that choice; the
  Responses ``output_item.done`` of the reasoning item).

Token logprobs of a choice whose reasoning was removed are dropped (they would spell the
reasoning out token by token). ``usage`` — including ``reasoning_tokens`` — is left untouched
(billing and client accounting must not change); :class:`ProtectReport` reports it.

Streaming. :class:`ChatStreamProtector` and :class:`ResponsesStreamProtector` are per-stream
state machines fed each parsed SSE ``data:`` object. Reasoning deltas are dropped as they come;
``<think>`` tags may be split across chunks (``<thi`` + ``nk>``), so answer text that ends with
a proper prefix of a tag is held back — never more than ``len("</think>") - 1`` characters —
and released with the next chunk or at the end of the choice. The concatenated stream output
equals the non-stream output for the same content (tests check every split point).

The one case a stream cannot match: a server that opens the think block in the prompt, when
nobody told us (``implicit_think=None``, "auto"). The non-stream path sees the orphan
``</think>`` and removes everything before it; a stream has already sent that text when the
tag arrives. It removes the tag and counts what went out in :attr:`ProtectReport.leaked_chars`.
Configure ``implicit_think=True`` for such models (then streams and bodies agree again). With
``implicit_think=False`` an orphan ``</think>`` tag is removed and the text before it kept.

Limits. Reasoning that a model writes into the answer without tags (a prompt asking for
"step by step" in plain prose) is answer text and is not touched here — refusing such requests
is the policy's job (``Decision.refuse_reasoning_request``). A literal ``<think>`` inside an
answer (say, an explanation of these tags) is treated as a block: in-band tags cannot be told
apart from their mention.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = [
    "SUMMARY_PREFIX",
    "ChatStreamProtector",
    "ProtectMode",
    "ProtectReport",
    "ResponsesStreamProtector",
    "protect_chat_completion",
    "protect_response",
    "summarize_reasoning",
]

#: The protection modes; functions take the plain string and raise ``ValueError`` on others.
ProtectMode = Literal["strip", "summary"]
_MODES: tuple[ProtectMode, ...] = ("strip", "summary")

#: Marks a summarised reasoning text, so a client (and a log reader) can tell it is not raw.
SUMMARY_PREFIX = "[reasoning summary] "
#: Longest summary body, in characters (the prefix comes on top).
SUMMARY_LIMIT = 200

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

#: String-valued reasoning fields of a chat message / delta, in the order their text is read.
_STR_KEYS = ("reasoning_content", "reasoning", "thinking")
#: Structured reasoning fields (OpenRouter ``reasoning_details``, LiteLLM's Anthropic-style
#: ``thinking_blocks``): removed in both modes.
_LIST_KEYS = ("reasoning_details", "thinking_blocks")
#: Where text sits inside a structured reasoning entry.
_DETAIL_TEXT = ("text", "summary", "content", "thinking")
#: Where a summary goes when reasoning only came as ``reasoning_details``.
_FALLBACK_KEY = "reasoning"

_RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)

JSON = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtectReport:
    """What protection did to one response (for the gateway's log line and metrics).

    ``reasoning_chars_removed`` counts raw reasoning characters withheld (in ``summary`` mode
    too: the summary replaces them); ``think_blocks_removed`` the ``<think>`` blocks cut out of
    answer text; ``reasoning_fields_removed`` the reasoning fields / Responses reasoning items
    emptied; ``summarised`` whether any summary was sent (``summary_chars`` its length,
    prefix included); ``leaked_chars`` answer text a stream had already sent before an
    unannounced ``</think>`` showed it was reasoning (see the module docstring);
    ``logprobs_dropped`` the choices / events whose token logprobs were removed;
    ``reasoning_tokens`` the upstream's own count from ``usage`` (left untouched in the body),
    ``None`` when it reported none.
    """

    reasoning_chars_removed: int = 0
    think_blocks_removed: int = 0
    reasoning_fields_removed: int = 0
    summarised: bool = False
    summary_chars: int = 0
    leaked_chars: int = 0
    logprobs_dropped: int = 0
    reasoning_tokens: int | None = None

    @property
    def changed(self) -> bool:
        """Whether the response was altered at all."""
        return bool(
            self.reasoning_chars_removed
            or self.think_blocks_removed
            or self.reasoning_fields_removed
            or self.summarised
            or self.logprobs_dropped
        )

    def as_dict(self) -> dict[str, int | bool | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Tally:
    """Mutable counterpart of :class:`ProtectReport` while a body or stream is processed."""

    __slots__ = ("blocks", "chars", "fields", "leaked", "logprobs", "summaries", "summary_chars", "tokens")

    def __init__(self) -> None:
        self.chars = 0
        self.blocks = 0
        self.fields = 0
        self.summaries = 0
        self.summary_chars = 0
        self.leaked = 0
        self.logprobs = 0
        self.tokens: int | None = None

    def summary(self, text: str) -> None:
        self.summaries += 1
        self.summary_chars += len(text)

    def usage(self, usage: Any, *detail_keys: str) -> None:
        if not isinstance(usage, dict):
            return
        for key in detail_keys:
            details = usage.get(key)
            if isinstance(details, dict):
                value = details.get("reasoning_tokens")
                if isinstance(value, int) and not isinstance(value, bool):
                    self.tokens = value
                    return

    def freeze(self) -> ProtectReport:
        return ProtectReport(
            reasoning_chars_removed=self.chars,
            think_blocks_removed=self.blocks,
            reasoning_fields_removed=self.fields,
            summarised=self.summaries > 0,
            summary_chars=self.summary_chars,
            leaked_chars=self.leaked,
            logprobs_dropped=self.logprobs,
            reasoning_tokens=self.tokens,
        )


def _check_mode(mode: str) -> None:
    """Modes arrive as plain strings (``Decision.protect_mode``): checked here, not by type."""
    if mode not in _MODES:
        raise ValueError(f"protect mode must be one of {_MODES}, got {mode!r}")


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n+")
_MARKUP = re.compile(r"^(?:[#>*\-+]+\s*|\d+[.)]\s+|\*\*)+")
_SPACES = re.compile(r"\s+")
_CONCLUSION = re.compile(
    r"\b(?:so|therefore|thus|hence|the answer|final answer|in conclusion|in summary|overall|"
    r"that means|which means|this means|this gives|we get|the result|conclude|so the)\b"
    r"|\\boxed|=|所以|因此|答案|综上",
)  # matched against the lower-cased sentence (IGNORECASE is several times slower)


def _informative(sentence: str) -> bool:
    """Whether a sentence says something ("Okay.", "Hmm, wait." do not); CJK has no spaces to count."""
    return len(sentence.split()) >= 3 or (not sentence.isascii() and len(sentence) >= 5)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


_WINDOW = 800  # characters read at each end of a long trace


def _sentences(text: str) -> list[str]:
    pieces = (_SPACES.sub(" ", _MARKUP.sub("", p.strip())).strip() for p in _SENTENCE_END.split(text))
    return [p for p in pieces if p]


def summarize_reasoning(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """A short, deterministic, extractive summary of a reasoning trace (no model call).

    The first informative sentence (the trace restating the task) and the last
    conclusion-like one (``so``, ``therefore``, ``the answer``, an ``=``...; else the last
    sentence), at most ``limit`` characters together. Returns ``""`` for blank input. It is
    meant to tell a reader *what* was reasoned about, not to reproduce *how*: the steps in
    between are what a distiller wants and are never included.

    >>> summarize_reasoning("Okay. The user wants 12*3. 12*3 is 10*3 plus 2*3. So the answer is 36.")
    'The user wants 12*3. So the answer is 36.'
    """
    if len(text) > 2 * _WINDOW:  # only the opening and the closing matter: split just those
        head_s, tail_s = _sentences(text[:_WINDOW]), _sentences(text[-_WINDOW:])[1:]
        sentences = head_s + tail_s
        if not head_s or not tail_s:
            return _clip(sentences[0], limit) if sentences else ""
    else:
        sentences = _sentences(text)
    if not sentences:
        return ""
    informative = [s for s in sentences if _informative(s)] or sentences
    first = informative[0]
    rest = informative[1:]
    last = next((s for s in reversed(rest) if _CONCLUSION.search(s.lower())), rest[-1] if rest else "")
    if not last:
        return _clip(first, limit)
    half = (limit - 1) // 2
    head = _clip(first, max(half, limit - 1 - len(last)))
    tail = _clip(last, limit - 1 - len(head))
    return f"{head} {tail}"


def _summary_text(reasoning: str) -> str:
    body = summarize_reasoning(reasoning)
    return SUMMARY_PREFIX + body if body else ""


# --------------------------------------------------------------------------------------------
# <think> blocks inside answer text
# --------------------------------------------------------------------------------------------


def _partial_tag_start(buf: str, start: int, tags: tuple[str, ...]) -> int:
    """Index where the longest suffix of ``buf[start:]`` that is a proper prefix of a tag starts."""
    longest = max(len(t) for t in tags) - 1
    for size in range(min(longest, len(buf) - start), 0, -1):
        tail = buf[len(buf) - size :]
        if any(t.startswith(tail) for t in tags):
            return len(buf) - size
    return len(buf)


def _opens_implicitly(text: str) -> bool:
    """Whether ``text`` has a ``</think>`` with no ``<think>`` before it (block opened in the prompt)."""
    close = text.find(CLOSE_TAG)
    return close >= 0 and OPEN_TAG not in text[:close]


class _ThinkFilter:
    """Removes ``<think>`` blocks from text fed piece by piece; holds back only partial tags.

    ``push`` returns the answer text that is final so far; ``finish`` returns the rest (a
    held partial tag is answer text after all; an unterminated block is closed). Feeding a
    text whole and in any split gives the same concatenated output.
    """

    __slots__ = ("_at_start", "_inside", "_mode", "_parts", "_pending", "_skip_ws", "_tally", "emitted")

    def __init__(self, mode: str, implicit: bool, tally: _Tally) -> None:
        self._mode = mode
        self._inside = implicit
        self._tally = tally
        self._pending = ""
        self._parts: list[str] = []  # the current block's text (summary mode needs it)
        self._at_start = True  # no answer text other than whitespace sent yet
        self._skip_ws = False
        self.emitted = 0  # answer characters sent

    @property
    def holding(self) -> bool:
        return bool(self._pending) or self._inside

    def _answer(self, text: str, out: list[str]) -> None:
        if self._skip_ws:
            stripped = text.lstrip()
            if not stripped:
                return
            self._skip_ws = False
            text = stripped
        if text:
            if self._at_start and not text.isspace():
                self._at_start = False
            self.emitted += len(text)
            out.append(text)

    def _close(self, out: list[str]) -> None:
        reasoning = "".join(self._parts)
        self._parts.clear()
        self._inside = False
        self._tally.blocks += 1
        self._tally.chars += len(reasoning)
        replacement = _summary_text(reasoning) if self._mode == "summary" else ""
        if replacement:
            self._tally.summary(replacement)
            self._answer(OPEN_TAG + replacement + CLOSE_TAG, out)
        elif self._at_start:
            self._skip_ws = True  # the answer starts after the block: drop the "\n\n" separator

    def push(self, text: str) -> str:
        buf = self._pending + text
        self._pending = ""
        out: list[str] = []
        i = 0
        n = len(buf)
        while i < n:
            if self._inside:
                j = buf.find(CLOSE_TAG, i)
                if j < 0:
                    k = _partial_tag_start(buf, i, (CLOSE_TAG,))
                    if self._mode == "summary":
                        self._parts.append(buf[i:k])
                    else:
                        self._tally.chars += k - i
                    self._pending = buf[k:]
                    break
                if self._mode == "summary":
                    self._parts.append(buf[i:j])
                else:
                    self._tally.chars += j - i
                self._close(out)
                i = j + len(CLOSE_TAG)
                continue
            j = buf.find("<", i)
            if j < 0:
                self._answer(buf[i:], out)
                break
            self._answer(buf[i:j], out)
            if buf.startswith(OPEN_TAG, j):
                self._inside = True
                i = j + len(OPEN_TAG)
            elif buf.startswith(CLOSE_TAG, j):
                # An orphan close: what came before was reasoning that we could not know was.
                self._tally.leaked += self.emitted
                i = j + len(CLOSE_TAG)
            elif _partial_tag_start(buf, j, (OPEN_TAG, CLOSE_TAG)) == j:
                self._pending = buf[j:]
                break
            else:
                self._answer("<", out)
                i = j + 1
        return "".join(out)

    def finish(self) -> str:
        out: list[str] = []
        if self._inside:
            if self._mode == "summary":
                self._parts.append(self._pending)
            else:
                self._tally.chars += len(self._pending)
            self._pending = ""
            self._close(out)
        elif self._pending:
            pending, self._pending = self._pending, ""
            self._answer(pending, out)
        return "".join(out)


def _filter_text(text: str, mode: str, implicit: bool | None, tally: _Tally) -> str:
    """Non-stream ``<think>`` removal; ``implicit=None`` decides from the text itself."""
    if implicit is not True and OPEN_TAG not in text and CLOSE_TAG not in text:
        return text
    opened = _opens_implicitly(text) if implicit is None else implicit
    filt = _ThinkFilter(mode, opened, tally)
    leaked_before = tally.leaked
    result = filt.push(text) + filt.finish()
    if implicit is None:
        tally.leaked = leaked_before  # a body is seen whole: nothing was sent early
    return result


# --------------------------------------------------------------------------------------------
# Chat completions (non-stream)
# --------------------------------------------------------------------------------------------


def _detail_text(value: Any) -> int:
    """Characters of text in a ``reasoning_details`` value (for the report)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_detail_text(value.get(k)) for k in _DETAIL_TEXT)
    if isinstance(value, list):
        return sum(_detail_text(v) for v in value)
    return 0


def _detail_source(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_detail_source(value.get(k)) for k in _DETAIL_TEXT if value.get(k))
    if isinstance(value, list):
        return "\n".join(s for s in (_detail_source(v) for v in value) if s)
    return ""


def _protect_message(message: JSON, mode: str, implicit: bool | None, tally: _Tally) -> tuple[JSON, bool]:
    """Protect one chat message (or a legacy ``choice`` with ``text``); returns (message, changed)."""
    new = message
    changed = False
    source = ""
    str_keys = [k for k in _STR_KEYS if isinstance(message.get(k), str) and message[k]]
    list_keys = [k for k in _LIST_KEYS if message.get(k)]
    if str_keys or list_keys:
        new = dict(message)
        changed = True
        seen: set[str] = set()
        for key in str_keys:
            value = message[key]
            if value not in seen:  # servers that send both names send the same text twice
                seen.add(value)
                tally.chars += len(value)
            source = source or value
            tally.fields += 1
            new[key] = None
        for key in list_keys:
            tally.chars += _detail_text(message[key])
            source = source or _detail_source(message[key])
            tally.fields += 1
            del new[key]
        if mode == "summary":
            summary = _summary_text(source)
            if summary:
                tally.summary(summary)
                for key in str_keys or [_FALLBACK_KEY]:
                    new[key] = summary
    for key in ("content", "text"):
        content = message.get(key)
        if isinstance(content, str) and content:
            # A server that sends reasoning in a field parses it: the answer never starts in a block.
            filtered = _filter_text(content, mode, False if str_keys or list_keys else implicit, tally)
            if filtered != content:
                if new is message:
                    new = dict(message)
                new[key] = filtered
                changed = True
    return new, changed


def protect_chat_completion(
    body: JSON, mode: str, *, implicit_think: bool | None = None
) -> tuple[JSON, ProtectReport]:
    """Protect a non-streaming ``/v1/chat/completions`` (or ``/v1/completions``) body.

    Returns the protected body — the *same object* when there was no reasoning to protect —
    and a report. The input is never mutated. ``implicit_think``: ``True`` when the model's
    chat template opens the think block in the prompt, ``False`` when it never does, ``None``
    to decide per message from an orphan ``</think>``.
    """
    _check_mode(mode)
    tally = _Tally()
    tally.usage(body.get("usage"), "completion_tokens_details", "output_tokens_details")
    choices = body.get("choices")
    if not isinstance(choices, list):
        return body, tally.freeze()
    new_choices: list[Any] = []
    any_changed = False
    for choice in choices:
        if not isinstance(choice, dict):
            new_choices.append(choice)
            continue
        message = choice.get("message")
        target: JSON = message if isinstance(message, dict) else choice
        protected, changed = _protect_message(target, mode, implicit_think, tally)
        if not changed:
            new_choices.append(choice)
            continue
        any_changed = True
        new_choice = dict(protected) if target is choice else {**choice, "message": protected}
        if new_choice.get("logprobs") is not None:
            new_choice["logprobs"] = None
            tally.logprobs += 1
        new_choices.append(new_choice)
    if not any_changed:
        return body, tally.freeze()
    return {**body, "choices": new_choices}, tally.freeze()


# --------------------------------------------------------------------------------------------
# Chat completions (stream)
# --------------------------------------------------------------------------------------------


class _ChoiceStream:
    __slots__ = ("done", "filters", "keys", "open", "parsed", "parts")

    def __init__(self) -> None:
        self.filters: dict[str, _ThinkFilter] = {}  # "content" / "text"
        self.keys: list[str] = []  # reasoning field names seen in the current section
        self.parts: list[str] = []  # reasoning text of the current section (summary mode)
        self.open = False  # a reasoning-field section is in progress
        self.parsed = False  # reasoning came in a field: the server parses it out of the text
        self.done = False


class ChatStreamProtector:
    """Protect a streamed chat completion, chunk by chunk.

    Feed every parsed SSE ``data:`` object (``chat.completion.chunk``) to :meth:`feed`, send
    what it returns (zero or more chunks, in order), and call :meth:`finish` at ``[DONE]`` or
    end of stream and send what it returns. :attr:`report` is the running report.

    >>> p = ChatStreamProtector("strip")
    >>> out = p.feed({"choices": [{"index": 0, "delta": {"content": "<thi"}}]})
    >>> out += p.feed({"choices": [{"index": 0, "delta": {"content": "nk>hmm</think>Hi"}}]})
    >>> "".join(c["choices"][0]["delta"]["content"] for c in out + p.finish())
    'Hi'
    """

    def __init__(self, mode: str, *, implicit_think: bool | None = None) -> None:
        _check_mode(mode)
        self._mode = mode
        self._implicit = implicit_think
        self._tally = _Tally()
        self._choices: dict[int, _ChoiceStream] = {}
        self._envelope: JSON = {"object": "chat.completion.chunk"}

    @property
    def report(self) -> ProtectReport:
        return self._tally.freeze()

    def _state(self, index: int) -> _ChoiceStream:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceStream()
        return state

    def _filter(self, state: _ChoiceStream, key: str) -> _ThinkFilter:
        filt = state.filters.get(key)
        if filt is None:
            implicit = bool(self._implicit) and not state.parsed
            filt = state.filters[key] = _ThinkFilter(self._mode, implicit, self._tally)
        return filt

    def _end_section(self, index: int, state: _ChoiceStream) -> JSON | None:
        """Close a reasoning-field section; in summary mode, the chunk carrying its summary."""
        if not state.open:
            return None
        state.open = False
        keys = [k for k in state.keys if k in _STR_KEYS] or [_FALLBACK_KEY]
        source = "".join(state.parts)
        state.keys.clear()
        state.parts.clear()
        if self._mode != "summary":
            return None
        summary = _summary_text(source)
        if not summary:
            return None
        self._tally.summary(summary)
        delta = dict.fromkeys(keys, summary)
        return {**self._envelope, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}

    def _take_reasoning(self, delta: JSON, state: _ChoiceStream) -> JSON:
        """Remove reasoning fields from a delta (returns a new delta if any were present)."""
        present = [k for k in (*_STR_KEYS, *_LIST_KEYS) if k in delta]
        if not present:
            return delta
        new = {k: v for k, v in delta.items() if k not in present}
        texts = [delta[k] for k in _STR_KEYS if isinstance(delta.get(k), str) and delta[k]]
        details = [delta[k] for k in _LIST_KEYS if delta.get(k)]
        if not texts and not details:
            return new  # "reasoning_content": null alongside content: nothing to count
        state.open = True
        state.parsed = True
        for key in present:
            if key not in state.keys and (delta[key] or key in _LIST_KEYS):
                state.keys.append(key)
                self._tally.fields += 1
        text = texts[0] if texts else _detail_source(details[0])
        self._tally.chars += len(text) if texts else sum(_detail_text(d) for d in details)
        if self._mode == "summary":
            state.parts.append(text)
        return new

    def feed(self, chunk: JSON) -> list[JSON]:
        """Process one stream chunk; returns the chunks to send in its place."""
        if not isinstance(chunk, dict):
            return [chunk]
        self._tally.usage(chunk.get("usage"), "completion_tokens_details", "output_tokens_details")
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return [chunk]
        self._envelope = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        before: list[JSON] = []
        new_choices: list[Any] = []
        changed = False
        for choice in choices:
            if not isinstance(choice, dict):
                new_choices.append(choice)
                continue
            new_choice = self._feed_choice(choice, before)
            if new_choice is not choice:
                changed = True
            if new_choice is not None:
                new_choices.append(new_choice)
        if not changed:
            return [*before, chunk]
        if not new_choices and choices and chunk.get("usage") is None:
            return before
        return [*before, {**chunk, "choices": new_choices}]

    def _feed_choice(self, choice: JSON, before: list[JSON]) -> JSON | None:
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        state = self._state(index)
        delta = choice.get("delta")
        is_chat = isinstance(delta, dict)
        holder: JSON = delta if isinstance(delta, dict) else choice
        new_holder = self._take_reasoning(holder, state) if is_chat else holder
        touched = new_holder is not holder
        key = "content" if is_chat else "text"
        content = new_holder.get(key)
        finishing = choice.get("finish_reason") is not None
        ends_section = (isinstance(content, str) and content != "") or bool(new_holder.get("tool_calls"))
        if state.open and (ends_section or finishing):
            summary_chunk = self._end_section(index, state)
            if summary_chunk is not None:
                before.append(summary_chunk)
        filt = state.filters.get(key)
        if (isinstance(content, str) and content) or (finishing and filt is not None):
            filt = self._filter(state, key)
            text = content if isinstance(content, str) else ""
            out = filt.push(text)
            if finishing:
                out += filt.finish()
                state.filters.pop(key, None)
            if out != text or (content is None and out):
                new_holder = dict(new_holder) if new_holder is holder else new_holder
                new_holder[key] = out
                touched = True
        if finishing:
            state.done = True
        if not touched:
            return choice
        new_choice = {**choice, "delta": new_holder} if is_chat else dict(new_holder)
        if new_choice.get("logprobs") is not None:
            new_choice["logprobs"] = None
            self._tally.logprobs += 1
        if not finishing and _empty_delta(new_holder if is_chat else None, new_choice, key):
            return None
        return new_choice

    def finish(self) -> list[JSON]:
        """Flush held text and pending summaries of choices that never sent ``finish_reason``."""
        out: list[JSON] = []
        for index in sorted(self._choices):
            state = self._choices[index]
            summary_chunk = self._end_section(index, state)
            if summary_chunk is not None:
                out.append(summary_chunk)
            for key, filt in list(state.filters.items()):
                text = filt.finish()
                if text:
                    part: JSON = {"index": index, "finish_reason": None}
                    if key == "content":
                        part["delta"] = {"content": text}
                    else:
                        part["text"] = text
                    out.append({**self._envelope, "choices": [part]})
            state.filters.clear()
        return out


def _empty_delta(delta: JSON | None, choice: JSON, key: str) -> bool:
    """Whether a rewritten choice carries nothing worth sending."""
    if delta is not None:
        return all(v in (None, "") for v in delta.values()) and choice.get("logprobs") is None
    return choice.get(key) in (None, "") and choice.get("logprobs") is None


# --------------------------------------------------------------------------------------------
# Responses API
# --------------------------------------------------------------------------------------------


def _texts(parts: Any) -> list[str]:
    if not isinstance(parts, list):
        return []
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def _reasoning_item(item: JSON, mode: str, tally: _Tally, *, count: bool = True) -> JSON:
    """A Responses reasoning item with its text withheld (same object if it had none)."""
    content = _texts(item.get("content"))
    summary = _texts(item.get("summary"))
    chars = sum(map(len, content)) + sum(map(len, summary))
    if not chars:
        return item
    new = dict(item)
    if "content" in item:
        new["content"] = []
    new["summary"] = []
    if count:
        tally.chars += chars
        tally.fields += 1
    if mode == "summary":
        text = _summary_text("\n".join(content) if any(content) else "\n\n".join(summary))
        if text:
            if count:
                tally.summary(text)
            new["summary"] = [{"type": "summary_text", "text": text}]
    return new


def _message_item(item: JSON, mode: str, implicit: bool | None, tally: _Tally) -> JSON:
    content = item.get("content")
    if not isinstance(content, list):
        return item
    new_parts: list[Any] = []
    changed = False
    for part in content:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str) and part.get("type") in ("output_text", "text"):
            filtered = _filter_text(text, mode, implicit, tally)
            if filtered != text:
                changed = True
                new_part = {**part, "text": filtered}
                if new_part.get("logprobs"):
                    new_part["logprobs"] = []
                    tally.logprobs += 1
                new_parts.append(new_part)
                continue
        new_parts.append(part)
    return {**item, "content": new_parts} if changed else item


def _protect_response(body: JSON, mode: str, implicit: bool | None, tally: _Tally, *, count: bool) -> JSON:
    tally.usage(body.get("usage"), "output_tokens_details", "completion_tokens_details")
    output = body.get("output")
    if not isinstance(output, list):
        return body
    sink = tally if count else _Tally()
    if any(isinstance(i, dict) and i.get("type") == "reasoning" for i in output):
        implicit = False  # the server parses reasoning into items: answers never start in a block
    new_output: list[Any] = []
    changed = False
    for item in output:
        new_item = item
        if isinstance(item, dict):
            if item.get("type") == "reasoning":
                new_item = _reasoning_item(item, mode, sink)
            elif item.get("type") == "message":
                new_item = _message_item(item, mode, implicit, sink)
        changed = changed or new_item is not item
        new_output.append(new_item)
    return {**body, "output": new_output} if changed else body


def protect_response(
    body: JSON, mode: str, *, implicit_think: bool | None = None
) -> tuple[JSON, ProtectReport]:
    """Protect a non-streaming OpenAI Responses API body (``object: "response"``).

    Reasoning items keep ``id``, ``type`` and any ``encrypted_content``; their ``summary`` is
    emptied (``strip``) or set to one summary part (``summary``), their ``content`` emptied.
    ``<think>`` blocks inside ``output_text`` parts are handled as in chat content. The same
    object is returned when there was nothing to protect.
    """
    _check_mode(mode)
    tally = _Tally()
    return _protect_response(body, mode, implicit_think, tally, count=True), tally.freeze()


class ResponsesStreamProtector:
    """Protect a streamed Responses API answer, event by event.

    Feed each parsed SSE event object (the ``data:`` JSON; its ``type`` names the event) to
    :meth:`feed` and send what it returns; :meth:`finish` at end of stream. Reasoning deltas,
    reasoning parts and reasoning content parts are dropped; the reasoning item's
    ``output_item.done`` is sent with its text withheld and, in ``summary`` mode, preceded by
    one ``reasoning_summary_part.added`` / ``reasoning_summary_text.delta`` /
    ``reasoning_summary_text.done`` / ``reasoning_summary_part.done`` sequence carrying the
    summary. ``sequence_number`` is renumbered so it stays gap-free. ``output_index`` values
    are unchanged (reasoning items are emptied, not removed).
    """

    def __init__(self, mode: str, *, implicit_think: bool | None = None) -> None:
        _check_mode(mode)
        self._mode = mode
        self._implicit = implicit_think
        self._tally = _Tally()
        self._reasoning_ids: set[str] = set()
        self._saw_reasoning = False
        self._streamed: dict[str, int] = {}  # reasoning item id -> characters seen in deltas
        self._parts: dict[str, list[str]] = {}  # reasoning item id -> reasoning_text deltas
        self._summary_parts: dict[str, list[str]] = {}
        self._filters: dict[tuple[str, int], _ThinkFilter] = {}
        self._sent: dict[tuple[str, int], list[str]] = {}
        self._seq: int | None = None

    @property
    def report(self) -> ProtectReport:
        return self._tally.freeze()

    def _done_implicit(self) -> bool:
        """How "done" texts are protected so they equal what was streamed ("auto" acts as False
        in a stream; a reasoning item means the server parses reasoning out of the text)."""
        return bool(self._implicit) and not self._saw_reasoning

    def _number(self, events: Iterable[JSON], numbered: bool) -> list[JSON]:
        out = list(events)
        if not numbered:
            return out
        for i, event in enumerate(out):
            assert self._seq is not None
            out[i] = {**event, "sequence_number": self._seq}
            self._seq += 1
        return out

    def feed(self, event: JSON) -> list[JSON]:
        """Process one stream event; returns the events to send in its place."""
        if not isinstance(event, dict):
            return [event]
        numbered = isinstance(event.get("sequence_number"), int)
        if numbered and self._seq is None:
            self._seq = event["sequence_number"]
        return self._number(self._events(event), numbered)

    def _is_reasoning(self, event: JSON) -> bool:
        item_id = event.get("item_id")
        return isinstance(item_id, str) and item_id in self._reasoning_ids

    def _events(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if not isinstance(kind, str):
            return [event]
        if kind in _RESPONSE_EVENTS and isinstance(event.get("response"), dict):
            resp = _protect_response(
                event["response"], self._mode, self._done_implicit(), self._tally, count=False
            )
            return [event if resp is event["response"] else {**event, "response": resp}]
        if kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "reasoning":
                self._saw_reasoning = True
                if isinstance(item.get("id"), str):
                    self._reasoning_ids.add(item["id"])
                new = _reasoning_item(item, self._mode, _Tally())
                if new is not item:
                    return [{**event, "item": {**new, "summary": []}}]
            return [event]
        if kind.startswith("response.reasoning"):
            self._take_delta(kind, event)
            return []
        if kind in ("response.content_part.added", "response.content_part.done"):
            part = event.get("part")
            if self._is_reasoning(event) or (isinstance(part, dict) and part.get("type") == "reasoning_text"):
                return []
            if kind == "response.content_part.done" and isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    filtered = _filter_text(text, self._mode, self._done_implicit(), _Tally())
                    if filtered != text:
                        return [{**event, "part": {**part, "text": filtered}}]
            return [event]
        if kind == "response.output_item.done":
            return self._item_done(event)
        if kind == "response.output_text.delta":
            return self._text_delta(event)
        if kind == "response.output_text.done":
            return self._text_done(event)
        return [event]

    def _take_delta(self, kind: str, event: JSON) -> None:
        delta = event.get("delta")
        if not isinstance(delta, str) or not delta:
            return
        item_id = event.get("item_id")
        key = item_id if isinstance(item_id, str) else ""
        self._streamed[key] = self._streamed.get(key, 0) + len(delta)
        self._tally.chars += len(delta)
        if self._mode == "summary":
            target = self._summary_parts if "summary" in kind else self._parts
            target.setdefault(key, []).append(delta)

    def _item_done(self, event: JSON) -> list[JSON]:
        item = event.get("item")
        if not isinstance(item, dict):
            return [event]
        if item.get("type") == "message":
            new = _message_item(item, self._mode, self._done_implicit(), _Tally())
            return [event if new is item else {**event, "item": new}]
        if item.get("type") != "reasoning":
            return [event]
        item_id = item.get("id") if isinstance(item.get("id"), str) else ""
        assert isinstance(item_id, str)
        streamed = self._streamed.pop(item_id, 0)
        parts = self._parts.pop(item_id, [])
        summary_parts = self._summary_parts.pop(item_id, [])
        if not _texts(item.get("content")) and not _texts(item.get("summary")) and streamed:
            # The done item carries no text (some servers): summarise what was streamed.
            item = {**item, "content": [{"type": "reasoning_text", "text": "".join(parts)}]}
            if not parts:
                item["summary"] = [{"type": "summary_text", "text": "".join(summary_parts)}]
        sink = _Tally()
        new = _reasoning_item(item, self._mode, sink)
        if streamed:
            self._tally.fields += 1
        else:  # nothing was streamed: count the item itself
            self._tally.chars += sink.chars
            self._tally.fields += sink.fields
        if "content" not in event["item"]:  # only added above to summarise the streamed text
            new = {k: v for k, v in new.items() if k != "content"}
        out: list[JSON] = []
        summary = _texts(new.get("summary"))
        if summary:
            text = summary[0]
            self._tally.summary(text)
            base = {"item_id": item_id, "output_index": event.get("output_index", 0), "summary_index": 0}
            out += [
                {
                    "type": "response.reasoning_summary_part.added",
                    **base,
                    "part": {"type": "summary_text", "text": ""},
                },
                {"type": "response.reasoning_summary_text.delta", **base, "delta": text},
                {"type": "response.reasoning_summary_text.done", **base, "text": text},
                {
                    "type": "response.reasoning_summary_part.done",
                    **base,
                    "part": {"type": "summary_text", "text": text},
                },
            ]
        out.append({**event, "item": new})
        return out

    def _text_key(self, event: JSON) -> tuple[str, int]:
        item_id = event.get("item_id")
        index = event.get("content_index", 0)
        return (item_id if isinstance(item_id, str) else "", index if isinstance(index, int) else 0)

    def _text_delta(self, event: JSON) -> list[JSON]:
        delta = event.get("delta")
        if not isinstance(delta, str):
            return [event]
        key = self._text_key(event)
        filt = self._filters.get(key)
        if filt is None:
            filt = self._filters[key] = _ThinkFilter(self._mode, self._done_implicit(), self._tally)
            self._sent[key] = []
        out = filt.push(delta)
        self._sent[key].append(out)
        if out == delta:
            return [event]
        if not out:
            return []
        new = {**event, "delta": out}
        if new.get("logprobs"):
            new["logprobs"] = []
            self._tally.logprobs += 1
        return [new]

    def _text_done(self, event: JSON) -> list[JSON]:
        key = self._text_key(event)
        filt = self._filters.pop(key, None)
        sent = self._sent.pop(key, [])
        if filt is None:
            text = event.get("text")
            if isinstance(text, str):
                filtered = _filter_text(text, self._mode, self._done_implicit(), self._tally)
                if filtered != text:
                    return [{**event, "text": filtered}]
            return [event]
        out: list[JSON] = []
        tail = filt.finish()
        if tail:
            sent.append(tail)
            out.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": key[0],
                    "output_index": event.get("output_index", 0),
                    "content_index": key[1],
                    "delta": tail,
                }
            )
        text = "".join(sent)
        out.append(event if event.get("text") == text else {**event, "text": text})
        return out

    def finish(self) -> list[JSON]:
        """End of stream: nothing is normally left (``output_text.done`` flushes each part)."""
        out: list[JSON] = []
        for (item_id, index), filt in list(self._filters.items()):
            tail = filt.finish()
            if tail:
                out.append(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": index,
                        "delta": tail,
                    }
                )
        self._filters.clear()
        numbered = self._seq is not None
        return self._number(out, numbered)
