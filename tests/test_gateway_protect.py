"""Reasoning protection (distillshield.gateway.protect): bodies, streams, and their agreement.

The central property: for the same content, the concatenated output of a stream equals the
non-stream output, whatever the chunk boundaries (tags split as ``<thi`` + ``nk>`` included),
and answer text is never held back longer than a possible partial tag.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillshield.gateway.protect import (
    CLOSE_TAG,
    SUMMARY_PREFIX,
    ChatStreamProtector,
    ProtectReport,
    ResponsesStreamProtector,
    protect_chat_completion,
    protect_response,
    summarize_reasoning,
)

MODES = ("strip", "summary")

REASONING = (
    "Okay, the user wants 17 times 3. Let me think. 17 times 3 is 10 times 3 plus 7 times 3. "
    "That is 30 plus 21. So the answer is 51."
)
ANSWER = "The answer is **51** (a < b holds, and <b>bold</b> stays)."

# Texts whose every split point the stream is checked on.
SAMPLES = [
    f"<think>{REASONING}</think>\n\n{ANSWER}",
    "Intro a<b. <think>first block.</think> middle <think>Second. So done.</think> end <thin x </thinker> <",
    "<think>never closed, the model ran out of tokens. So it stops",
    "no tags at all, only < and <t and </ and a trailing </think",
    "<think></think>\n\nQwen3 with thinking switched off leaves an empty block.",
    "<think>a</think><think>b</think>c",
]
IMPLICIT = f"{REASONING}</think>\n\n{ANSWER}"


def chat_body(content: str | None = None, **message: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content, **message}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": msg, "finish_reason": "stop", "logprobs": None}],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 60,
            "completion_tokens_details": {"reasoning_tokens": 40},
        },
    }


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def stream_chunks(parts: list[str], key: str = "content") -> list[dict[str, Any]]:
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({key: p}) for p in parts]
    out.append(chunk({}, finish="stop"))
    out.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"completion_tokens": 60, "completion_tokens_details": {"reasoning_tokens": 40}},
        }
    )
    return out


def run_stream(protector: ChatStreamProtector, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in chunks:
        out += protector.feed(c)
    return out + protector.finish()


def joined(chunks: list[dict[str, Any]], key: str = "content", index: int = 0) -> str:
    return "".join(
        ch["delta"].get(key) or ""
        for c in chunks
        for ch in c.get("choices") or []
        if ch.get("index", 0) == index
    )


def non_stream(text: str, mode: str, implicit: bool | None) -> tuple[str, ProtectReport]:
    body, report = protect_chat_completion(chat_body(text), mode, implicit_think=implicit)
    return body["choices"][0]["message"]["content"], report


def streamed(parts: list[str], mode: str, implicit: bool | None) -> tuple[str, ProtectReport]:
    p = ChatStreamProtector(mode, implicit_think=implicit)
    return joined(run_stream(p, stream_chunks(parts))), p.report


def same_report(a: ProtectReport, b: ProtectReport) -> bool:
    keys = ("reasoning_chars_removed", "think_blocks_removed", "summarised", "summary_chars")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------


def test_summary_is_first_sentence_and_conclusion() -> None:
    assert summarize_reasoning(REASONING) == "Okay, the user wants 17 times 3. So the answer is 51."
    assert summarize_reasoning("") == ""
    assert summarize_reasoning("   \n ") == ""


def test_summary_is_short_and_deterministic() -> None:
    long = " ".join(
        f"Step {i}: we multiply the number {i} by itself and add it to the total." for i in range(400)
    )
    long += " Therefore the total is 21,413,400."
    s = summarize_reasoning(long)
    assert len(s) <= 200
    assert s == summarize_reasoning(long)
    assert s.endswith("Therefore the total is 21,413,400.")
    assert "Step 5" not in s  # the middle of the chain is never included


def test_summary_of_chinese_reasoning() -> None:
    s = summarize_reasoning("用户想知道十七乘以三。十七乘以三等于五十一。所以答案是五十一。")
    assert s.startswith("用户想知道十七乘以三。") and "所以答案是五十一" in s


# ---------------------------------------------------------------------------------------------
# Chat completions, non-stream
# ---------------------------------------------------------------------------------------------


def test_no_reasoning_is_identity() -> None:
    body = chat_body("Hello, <b>world</b> and a < b.")
    out, report = protect_chat_completion(body, "strip")
    assert out is body
    assert not report.changed
    assert report.reasoning_tokens == 40
    body2 = chat_body("Hi", reasoning_content=None)
    assert protect_chat_completion(body2, "summary")[0] is body2
    weird = {"object": "error", "error": {"message": "x"}}
    assert protect_chat_completion(weird, "strip")[0] is weird


def test_reasoning_content_strip_and_summary() -> None:
    body = chat_body("The answer is 51.", reasoning_content=REASONING)
    before = copy.deepcopy(body)
    out, report = protect_chat_completion(body, "strip")
    msg = out["choices"][0]["message"]
    assert msg["reasoning_content"] is None and msg["content"] == "The answer is 51."
    assert report.reasoning_chars_removed == len(REASONING) and report.reasoning_fields_removed == 1
    assert not report.summarised and report.changed
    assert out["usage"] == before["usage"] and report.reasoning_tokens == 40
    assert body == before  # the input is not mutated

    out, report = protect_chat_completion(body, "summary")
    msg = out["choices"][0]["message"]
    assert msg["reasoning_content"] == SUMMARY_PREFIX + summarize_reasoning(REASONING)
    assert report.summarised and report.summary_chars == len(msg["reasoning_content"])
    assert body == before


def test_reasoning_key_variants() -> None:
    both = chat_body("ok", reasoning=REASONING, reasoning_content=REASONING)
    out, report = protect_chat_completion(both, "summary")
    msg = out["choices"][0]["message"]
    assert msg["reasoning"] == msg["reasoning_content"] == SUMMARY_PREFIX + summarize_reasoning(REASONING)
    assert report.reasoning_chars_removed == len(REASONING)  # the duplicate is counted once
    details = chat_body("ok", reasoning_details=[{"type": "reasoning.text", "text": REASONING}])
    out, report = protect_chat_completion(details, "strip")
    assert "reasoning_details" not in out["choices"][0]["message"]
    assert report.reasoning_chars_removed == len(REASONING)
    out, _ = protect_chat_completion(details, "summary")
    assert out["choices"][0]["message"]["reasoning"].startswith(SUMMARY_PREFIX)
    block = {"type": "thinking", "thinking": REASONING, "signature": "sig"}
    blocks = chat_body("ok", reasoning_content=REASONING, thinking_blocks=[block])
    out, report = protect_chat_completion(blocks, "strip")
    assert "thinking_blocks" not in out["choices"][0]["message"] and "Let me think" not in json.dumps(out)
    chunks = [
        chunk({"reasoning_content": "Let me think", "thinking_blocks": [block]}),
        chunk({"content": "ok"}),
    ]
    assert "Let me think" not in json.dumps(run_stream(ChatStreamProtector("strip"), chunks))


def test_think_block_strip_and_summary() -> None:
    text = f"<think>{REASONING}</think>\n\n{ANSWER}"
    out, report = non_stream(text, "strip", None)
    assert out == ANSWER
    assert report.think_blocks_removed == 1 and report.reasoning_chars_removed == len(REASONING)
    out, report = non_stream(text, "summary", None)
    assert out == f"<think>{SUMMARY_PREFIX}{summarize_reasoning(REASONING)}</think>\n\n{ANSWER}"
    assert report.summarised


def test_missing_opening_tag() -> None:
    # Auto: an orphan </think> means the template opened the block in the prompt.
    assert non_stream(IMPLICIT, "strip", None)[0] == ANSWER
    assert non_stream(IMPLICIT, "strip", True)[0] == ANSWER
    # Told it never happens: only the stray tag goes.
    assert non_stream(IMPLICIT, "strip", False)[0] == f"{REASONING}\n\n{ANSWER}"
    # Told the block is open but it never closes: everything was reasoning.
    out, report = non_stream("still thinking when max_tokens hit", "strip", True)
    assert out == "" and report.think_blocks_removed == 1


def test_reasoning_fields_override_implicit_think() -> None:
    """A server that sends reasoning in a field parses it: its answer never starts in a block,
    even when the deployment is configured as "template opens the block"."""
    body = chat_body("The answer is 51.", reasoning_content=REASONING)
    out, _ = protect_chat_completion(body, "strip", implicit_think=True)
    assert out["choices"][0]["message"]["content"] == "The answer is 51."
    chunks = [
        chunk({"reasoning_content": REASONING}),
        chunk({"content": "The answer is 51."}),
        chunk({}, "stop"),
    ]
    assert (
        joined(run_stream(ChatStreamProtector("strip", implicit_think=True), chunks)) == "The answer is 51."
    )
    resp = response_body()
    out, _ = protect_response(resp, "strip", implicit_think=True)
    assert out["output"][1]["content"][0]["text"] == "The answer is 51."
    events = response_events(resp)
    streamed_out = run_events(ResponsesStreamProtector("strip", implicit_think=True), events)
    deltas = "".join(e["delta"] for e in streamed_out if e["type"] == "response.output_text.delta")
    assert deltas == "The answer is 51."


def test_unterminated_and_multiple_blocks() -> None:
    assert non_stream("<think>never closed", "strip", None)[0] == ""
    assert non_stream("a<think>x</think>b<think>y</think>c", "strip", None)[0] == "abc"
    out, report = non_stream("<think></think>\n\nHi", "summary", None)
    assert out == "Hi" and report.think_blocks_removed == 1 and not report.summarised


def test_logprobs_dropped_when_reasoning_removed() -> None:
    body = chat_body(f"<think>{REASONING}</think>ok")
    body["choices"][0]["logprobs"] = {"content": [{"token": "Okay", "logprob": -0.1}]}
    out, report = protect_chat_completion(body, "strip")
    assert out["choices"][0]["logprobs"] is None and report.logprobs_dropped == 1
    clean = chat_body("ok")
    clean["choices"][0]["logprobs"] = {"content": [{"token": "ok", "logprob": -0.1}]}
    assert protect_chat_completion(clean, "strip")[0] is clean


def test_legacy_completions_text() -> None:
    body = {
        "object": "text_completion",
        "choices": [{"index": 0, "text": f"<think>{REASONING}</think>\n\n51"}],
    }
    out, report = protect_chat_completion(body, "strip")
    assert out["choices"][0]["text"] == "51" and report.think_blocks_removed == 1


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="protect mode"):
        protect_chat_completion(chat_body("x"), "redact")
    with pytest.raises(ValueError, match="protect mode"):
        ChatStreamProtector("redact")


# ---------------------------------------------------------------------------------------------
# Chat completions, stream == non-stream
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("sample", range(len(SAMPLES)))
def test_stream_equals_body_at_every_split(mode: str, implicit: bool, sample: int) -> None:
    text = SAMPLES[sample]
    want, want_report = non_stream(text, mode, implicit)
    for i in range(len(text) + 1):
        got, report = streamed([text[:i], text[i:]], mode, implicit)
        assert got == want, (i, text[:i])
        assert same_report(report, want_report), (i, report, want_report)


@pytest.mark.parametrize("mode", MODES)
def test_stream_equals_body_at_every_pair_of_splits(mode: str) -> None:
    text = "x<think>ab. So c.</think>\n y<think>z"
    want, _ = non_stream(text, mode, False)
    for i, j in itertools.combinations(range(len(text) + 1), 2):
        assert streamed([text[:i], text[i:j], text[j:]], mode, False)[0] == want, (i, j)


@pytest.mark.parametrize("mode", MODES)
def test_stream_char_by_char_and_implicit(mode: str) -> None:
    for text in [*SAMPLES, IMPLICIT]:
        for implicit in (False, True):
            assert streamed(list(text), mode, implicit)[0] == non_stream(text, mode, implicit)[0]
    # "auto" agrees with the body whenever there is no orphan </think> ...
    for text in SAMPLES:
        assert streamed(list(text), mode, None)[0] == non_stream(text, mode, None)[0]


def test_auto_stream_cannot_recall_what_it_sent() -> None:
    got, report = streamed([REASONING, "</think>\n\n", ANSWER], "strip", None)
    assert got == f"{REASONING}\n\n{ANSWER}"  # the tag goes, the text before it was already out
    assert report.leaked_chars == len(REASONING)
    got, report = streamed([REASONING, "</think>\n\n", ANSWER], "strip", True)
    assert got == ANSWER and report.leaked_chars == 0


_PIECES = ["<think>", "</think>", "<", ">", "<thi", "nk>", "</th", "ink", "a", " ", "\n", "So x.", "<b>", "é"]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=25),
    st.lists(st.integers(0, 200), max_size=8),
    st.sampled_from(MODES),
    st.booleans(),
)
def test_stream_equals_body_property(pieces: list[str], cuts: list[int], mode: str, implicit: bool) -> None:
    text = "".join(pieces)
    points = sorted({c % (len(text) + 1) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    got, report = streamed(parts, mode, implicit)
    want, want_report = non_stream(text, mode, implicit)
    assert got == want
    assert same_report(report, want_report)


def test_answer_text_is_held_back_at_most_a_partial_tag() -> None:
    text = "Plain answer with < signs, a <b>tag</b>, </thin and <thinking> look-alikes, </"
    p = ChatStreamProtector("strip", implicit_think=False)
    sent = ""
    for i, ch in enumerate(text):
        for c in p.feed(chunk({"content": ch})):
            sent += c["choices"][0]["delta"].get("content") or ""
        assert text[: i + 1].startswith(sent)
        assert (i + 1) - len(sent) <= len(CLOSE_TAG) - 1
    sent += joined(p.finish())
    assert sent == text


def test_stream_reasoning_content_dropped_and_summary_sent_once() -> None:
    parts = ["Okay, the user wants 17 times 3. ", "Let me think. ", "So the answer is 51."]
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": p, "content": None}) for p in parts]
    chunks += [chunk({"content": "The answer "}), chunk({"content": "is 51."}), chunk({}, "stop")]
    for mode in MODES:
        p = ChatStreamProtector(mode)
        out = run_stream(p, chunks)
        reasoning = [c for c in out if c["choices"] and "reasoning_content" in c["choices"][0]["delta"]]
        assert joined(out) == "The answer is 51."
        assert out[0] == chunks[0]  # the role chunk passes through
        if mode == "strip":
            assert reasoning == [] and not p.report.summarised
        else:
            assert len(reasoning) == 1
            text = reasoning[0]["choices"][0]["delta"]["reasoning_content"]
            body = chat_body("The answer is 51.", reasoning_content="".join(parts))
            assert (
                text
                == protect_chat_completion(body, "summary")[0]["choices"][0]["message"]["reasoning_content"]
            )
            assert out.index(reasoning[0]) < next(i for i, c in enumerate(out) if joined([c]))
        assert p.report.reasoning_chars_removed == len("".join(parts))
        assert "Let me think" not in json.dumps(out)


def test_stream_summary_at_finish_when_no_content() -> None:
    chunks = [chunk({"reasoning": "Thinking it over. So no answer."}), chunk({}, "length")]
    out = run_stream(ChatStreamProtector("summary"), chunks)
    assert joined(out, "reasoning").startswith(SUMMARY_PREFIX)
    assert out[-1]["choices"][0]["finish_reason"] == "length"


def test_stream_held_text_flushed_into_finish_chunk() -> None:
    out = run_stream(ChatStreamProtector("strip"), [chunk({"content": "a <"}), chunk({}, "stop")])
    assert [c["choices"][0]["delta"].get("content") for c in out] == ["a ", "<"]
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    # no finish_reason at all: finish() flushes
    p = ChatStreamProtector("strip")
    assert joined(p.feed(chunk({"content": "a </th"}))) == "a "
    assert joined(p.finish()) == "</th"


def test_stream_usage_and_choices() -> None:
    p = ChatStreamProtector("strip")
    chunks = [
        {
            "choices": [
                {"index": 0, "delta": {"content": "<think>x"}},
                {"index": 1, "delta": {"content": "ok"}},
            ]
        },
        {
            "choices": [
                {"index": 1, "delta": {"content": "<think>y</think>!"}},
                {"index": 0, "delta": {"content": "</think>A"}},
            ]
        },
    ]
    out = run_stream(p, chunks)
    assert joined(out, index=0) == "A" and joined(out, index=1) == "ok!"
    assert p.report.think_blocks_removed == 2
    usage = {"choices": [], "usage": {"completion_tokens_details": {"reasoning_tokens": 7}}}
    assert p.feed(usage) == [usage] and p.report.reasoning_tokens == 7
    assert p.feed({"weird": True}) == [{"weird": True}]


def test_stream_logprobs_dropped_only_where_reasoning_was() -> None:
    lp = {"content": [{"token": "t", "logprob": -1.0}]}
    p = ChatStreamProtector("strip")
    a = p.feed({"choices": [{"index": 0, "delta": {"content": "plain"}, "logprobs": lp}]})
    b = p.feed({"choices": [{"index": 0, "delta": {"reasoning_content": "r"}, "logprobs": lp}]})
    assert a[0]["choices"][0]["logprobs"] == lp
    assert b == [] and p.report.logprobs_dropped == 1


# ---------------------------------------------------------------------------------------------
# Responses API
# ---------------------------------------------------------------------------------------------

SUMMARY_TEXT = "**Computing 17 x 3** The user wants a product. I will split it."


def response_body(answer: str = "The answer is 51.") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": SUMMARY_TEXT}],
                "content": [{"type": "reasoning_text", "text": REASONING}],
                "encrypted_content": "gAAAA-opaque",
            },
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": answer, "annotations": []}],
            },
        ],
        "usage": {"input_tokens": 9, "output_tokens": 70, "output_tokens_details": {"reasoning_tokens": 50}},
    }


def response_events(body: dict[str, Any], size: int = 7) -> list[dict[str, Any]]:
    """The event sequence an OpenAI-compatible server streams for ``body``."""
    rs, msg = body["output"]
    empty = {**body, "status": "in_progress", "output": [], "usage": None}
    ev: list[dict[str, Any]] = [
        {"type": "response.created", "response": empty},
        {"type": "response.in_progress", "response": empty},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**rs, "summary": [], "content": []},
        },
    ]
    base = {"item_id": "rs_1", "output_index": 0}
    ev.append(
        {
            "type": "response.reasoning_summary_part.added",
            **base,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        }
    )
    for i in range(0, len(SUMMARY_TEXT), size):
        ev.append(
            {
                "type": "response.reasoning_summary_text.delta",
                **base,
                "summary_index": 0,
                "delta": SUMMARY_TEXT[i : i + size],
            }
        )
    ev.append(
        {"type": "response.reasoning_summary_text.done", **base, "summary_index": 0, "text": SUMMARY_TEXT}
    )
    ev.append(
        {
            "type": "response.reasoning_summary_part.done",
            **base,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": SUMMARY_TEXT},
        }
    )
    ev.append(
        {
            "type": "response.content_part.added",
            **base,
            "content_index": 0,
            "part": {"type": "reasoning_text", "text": ""},
        }
    )
    for i in range(0, len(REASONING), size):
        ev.append(
            {
                "type": "response.reasoning_text.delta",
                **base,
                "content_index": 0,
                "delta": REASONING[i : i + size],
            }
        )
    ev.append({"type": "response.reasoning_text.done", **base, "content_index": 0, "text": REASONING})
    ev.append(
        {
            "type": "response.content_part.done",
            **base,
            "content_index": 0,
            "part": {"type": "reasoning_text", "text": REASONING},
        }
    )
    ev.append({"type": "response.output_item.done", "output_index": 0, "item": rs})
    text = msg["content"][0]["text"]
    mbase = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    ev.append(
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**msg, "content": [], "status": "in_progress"},
        }
    )
    ev.append(
        {
            "type": "response.content_part.added",
            **mbase,
            "part": {"type": "output_text", "text": "", "annotations": []},
        }
    )
    for i in range(0, len(text), size):
        ev.append(
            {"type": "response.output_text.delta", **mbase, "delta": text[i : i + size], "logprobs": []}
        )
    ev.append({"type": "response.output_text.done", **mbase, "text": text, "logprobs": []})
    ev.append({"type": "response.content_part.done", **mbase, "part": msg["content"][0]})
    ev.append({"type": "response.output_item.done", "output_index": 1, "item": msg})
    ev.append({"type": "response.completed", "response": body})
    return [{**e, "sequence_number": i} for i, e in enumerate(ev)]


def run_events(p: ResponsesStreamProtector, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in events:
        out += p.feed(e)
    return out + p.finish()


@pytest.mark.parametrize("mode", MODES)
def test_response_body(mode: str) -> None:
    body = response_body()
    before = copy.deepcopy(body)
    out, report = protect_response(body, mode)
    assert body == before
    rs = out["output"][0]
    assert rs["id"] == "rs_1" and rs["encrypted_content"] == "gAAAA-opaque" and rs["content"] == []
    assert out["output"][1] is body["output"][1]
    assert report.reasoning_chars_removed == len(REASONING) + len(SUMMARY_TEXT)
    assert report.reasoning_tokens == 50 and out["usage"] == before["usage"]
    if mode == "strip":
        assert rs["summary"] == [] and not report.summarised
    else:
        assert rs["summary"] == [
            {"type": "summary_text", "text": SUMMARY_PREFIX + summarize_reasoning(REASONING)}
        ]
        assert report.summarised
    assert "Let me think" not in json.dumps(out)


def test_response_identity_and_think_in_output_text() -> None:
    body = response_body()
    body["output"] = [body["output"][1]]
    assert protect_response(body, "strip")[0] is body
    opaque = response_body()
    opaque["output"][0] = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "x"}
    opaque["output"] = [opaque["output"][0]]
    assert protect_response(opaque, "strip")[0] is opaque
    tagged = response_body(f"<think>{REASONING}</think>\n\n{ANSWER}")
    out, report = protect_response(tagged, "strip")
    assert out["output"][1]["content"][0]["text"] == ANSWER and report.think_blocks_removed == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_response_stream_matches_body(mode: str, size: int) -> None:
    body = response_body(f"<think>{REASONING}</think>\n\n{ANSWER}")
    events = response_events(body, size)
    p = ResponsesStreamProtector(mode)
    out = run_events(p, events)
    protected, body_report = protect_response(body, mode)
    kinds = [e["type"] for e in out]
    # nothing of the raw reasoning leaves, in any event
    dumped = json.dumps(out)
    assert "Let me think" not in dumped and "I will split it" not in dumped
    assert not any(k.startswith("response.reasoning_text") for k in kinds)
    # sequence numbers stay gap-free
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    # the final response and the items equal the non-stream protection
    assert out[-1]["type"] == "response.completed" and out[-1]["response"] == protected
    items = [e["item"] for e in out if e["type"] == "response.output_item.done"]
    assert items == protected["output"]
    # answer text: deltas == done text == body text
    text = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    done = next(e for e in out if e["type"] == "response.output_text.done")
    assert text == done["text"] == protected["output"][1]["content"][0]["text"]
    summaries = [e for e in out if e["type"] == "response.reasoning_summary_text.delta"]
    if mode == "strip":
        assert summaries == []
    else:
        assert [e["delta"] for e in summaries] == [protected["output"][0]["summary"][0]["text"]]
        seq = kinds[kinds.index("response.reasoning_summary_part.added") :][:5]
        assert seq == [
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
        ]
    assert p.report.reasoning_chars_removed == body_report.reasoning_chars_removed
    assert p.report.summarised == body_report.summarised
    assert p.report.reasoning_tokens == 50


def test_response_stream_without_text_in_done_item() -> None:
    """Some servers stream the reasoning but send an empty done item: summarise what streamed."""
    events = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs_9", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.reasoning_text.delta",
            "item_id": "rs_9",
            "output_index": 0,
            "content_index": 0,
            "delta": REASONING,
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"id": "rs_9", "type": "reasoning", "summary": []},
        },
    ]
    out = run_events(ResponsesStreamProtector("summary"), events)
    done = out[-1]["item"]
    assert done["summary"][0]["text"] == SUMMARY_PREFIX + summarize_reasoning(REASONING)
    assert "content" not in done
    assert out[0]["type"] == "response.output_item.added"


def test_response_stream_passes_other_events() -> None:
    p = ResponsesStreamProtector("strip")
    ev = {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"a"'}
    assert p.feed(ev) == [ev]
    assert p.feed({"no": "type"}) == [{"no": "type"}]
