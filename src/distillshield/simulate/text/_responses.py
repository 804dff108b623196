"""Response pools: a few thousand plausible answer bodies per style, built once.

Why pools: a scenario has millions of exchanges and responses only need to be
*plausible* (length, shape, style), not answers to their own prompt, so bodies are
assembled at construction with ordinary Python from content banks and the problem
generators, then sampled per row with one ``take``. Each body's additive token counts
(:func:`._tokens.text_counts`) are stored, so a batch's token estimate is a sum of
integers and equals ``estimate_tokens`` of the assembled text exactly.

Lengths are heavy-tailed (a geometric number of sections), and bounded: bodies are cut at
a line boundary below :data:`MAX_BODY_CHARS` so a response never exceeds
:data:`MAX_RESPONSE_CHARS`. A ``reasoning`` sub-pool per style holds the longer bodies
that write out step-by-step reasoning, used for rows with ``visible_reasoning``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from distillshield.simulate.text._attack import TOOL_DOMAINS, TOOL_VOCAB
from distillshield.simulate.text._problems import CODE_TASKS, LOGIC, Problems
from distillshield.simulate.text._tokens import text_counts
from distillshield.simulate.text._vocab import CITIES, CONCEPT_PAIRS, TOPICS_KNOWLEDGE

__all__ = ["MAX_RESPONSE_CHARS", "RESPONSE_KINDS", "ResponsePool", "build_pools"]

RESPONSE_KINDS: tuple[str, ...] = (
    "chat",
    "code",
    "math",
    "cot",
    "grading",
    "rewrite",
    "tool_call",
    "agent",
    "vision",
    "data",
)
MAX_BODY_CHARS = 5600
MAX_RESPONSE_CHARS = 6000
_POOL_PLAIN = 1500
_POOL_REASONING = 900


def _cap(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """Cut at the last line break before ``limit`` (keeps code blocks and lists readable)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip()


@dataclass(frozen=True)
class ResponsePool:
    """Openers, bodies (plain then reasoning) and closers of one response style, with token counts."""

    openers: pa.Array
    bodies: pa.Array
    closers: pa.Array
    n_plain: int
    n_reasoning: int
    open_counts: tuple[np.ndarray, np.ndarray]
    body_counts: tuple[np.ndarray, np.ndarray]
    close_counts: tuple[np.ndarray, np.ndarray]

    @classmethod
    def build(
        cls, openers: Sequence[str], plain: Sequence[str], reasoning: Sequence[str], closers: Sequence[str]
    ) -> ResponsePool:
        op = pa.array(list(openers), type=pa.string())
        body = pa.array([_cap(b) for b in plain] + [_cap(b) for b in reasoning], type=pa.string())
        cl = pa.array(list(closers), type=pa.string())
        return cls(
            op, body, cl, len(plain), len(reasoning), text_counts(op), text_counts(body), text_counts(cl)
        )


def _geo(rng: np.random.Generator, p: float, lo: int, hi: int) -> int:
    """Heavy-ish tail: lo + geometric, clipped."""
    return int(min(hi, lo + rng.geometric(p) - 1))


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(0, len(items)))]


# --- content banks ------------------------------------------------------------------

_CHAT_SENT = (
    "The most important thing is to start small and build a routine you can actually keep.",
    "It depends a lot on your situation, but a few general principles apply to almost everyone.",
    "{Topic} is often misunderstood, so it helps to separate the basic idea from the details.",
    "In short, {topic} comes down to a handful of simple mechanisms that interact in complex ways.",
    "Many people find it useful to write down what they want to achieve before they begin.",
    "If you're on a tight budget, focus on the essentials first and add extras later.",
    "A common mistake is trying to change everything at once.",
    "Keep in mind that results vary, and what works for one person may not work for another.",
    "You can usually find good, free resources online, including courses and community forums.",
    "If symptoms persist or get worse, it's a good idea to talk to a professional.",
    "The key trade-off is between cost and convenience.",
    "Historically, {topic} developed over many decades, with several competing explanations along the way.",
    "Researchers still debate some aspects of {topic}, but the core idea is well established.",
    "A simple analogy: think of it like a bucket that fills and drains at the same time.",
    "When in doubt, keep the tone polite and specific, and propose a concrete next step.",
    "If you visit {city}, plan at least one unstructured afternoon to wander around.",
    "The local food scene is one of the highlights, so leave room for a few long meals.",
    "Try to book popular attractions in advance, especially on weekends.",
    "Consistency matters more than intensity, especially in the first few weeks.",
    "It's worth comparing at least three options before you commit.",
    "The numbers can look intimidating, but the underlying logic is straightforward.",
    "Be careful with sources that promise quick results; they are rarely reliable.",
    "For most people, the default settings are a perfectly reasonable starting point.",
    "Once you have the basics down, you can experiment and adjust to your own preferences.",
    "A good rule of thumb is to spend the first week just observing before you change anything.",
    "If you share a bit more about your situation, I can give more specific advice.",
    "There is no single right answer here; it comes down to what you value most.",
    "Most experts recommend a gradual approach rather than a dramatic change.",
    "It also helps to set a specific, measurable goal and a date to review your progress.",
    "The short version: it is safe for most people, but there are a few exceptions worth knowing.",
    "Cost varies widely by location, so treat these numbers as rough estimates.",
    "The main downside is the time it takes up front; after that it mostly runs on its own.",
    "Many people overlook this step, and it is often the one that makes the biggest difference.",
    "You might also consider asking a friend or colleague to review it before you send it.",
    "In practice, the difference is smaller than it looks on paper.",
    "Start with the simplest option, and only move to something more complex if you need it.",
    "The underlying principle is the same in every case: match the tool to the problem.",
    "A checklist can help you stay consistent, especially when you are busy.",
    "If you're unsure, the official documentation or a qualified professional is the safest source.",
    "{Topic} has been studied extensively, and the main findings are fairly consistent.",
)
_CHAT_HEAD = (
    "Getting started",
    "Key points",
    "Things to avoid",
    "Budget",
    "A simple plan",
    "Why it matters",
    "Common mistakes",
    "Next steps",
    "Day 1",
    "Day 2",
    "Option A",
    "Option B",
    "Tips",
)
_CHAT_OPEN = (
    "",
    "",
    "",
    "Sure! ",
    "Great question! ",
    "Of course. ",
    "Happy to help. ",
    "Absolutely! ",
    "Good question. ",
    "Here's an overview.\n\n",
    "Certainly. ",
    "Sure, here you go:\n\n",
)
_CHAT_CLOSE = (
    "",
    "",
    "",
    "\n\nLet me know if you'd like more detail on any of these.",
    "\n\nHope this helps!",
    "\n\nWould you like me to tailor this to your situation?",
    "\n\nFeel free to ask if you have follow-up questions.",
)
_EMAIL_BODY = (
    "Subject: {subject}\n\nHi {first},\n\nI hope you're doing well. I'm writing to {purpose}. {extra}\n\n"
    "Please let me know if you have any questions.\n\nBest regards,\n{first2}"
)
_EMAIL_SUBJECTS = ("Quick request", "Following up", "Update on the project", "Meeting next week", "Thank you")
_EMAIL_PURPOSES = (
    "ask whether we could move the deadline to next Friday",
    "follow up on the invoice from March",
    "let you know that I'll be out of office on Monday",
    "thank you for your help last week",
    "share the latest version of the report",
)
_EMAIL_EXTRA = (
    "I've attached the relevant documents for reference.",
    "I understand this is short notice.",
    "I'd be happy to discuss this on a call if that's easier.",
    "",
)

_REASON_OPEN = (
    "Let me think through this step by step.\n\n",
    "Let's break this down.\n\n",
    "To answer this, I'll work through it carefully.\n\n",
    "Step-by-step reasoning:\n\n",
    "Let me reason about this before answering.\n\n",
)
_REASON_STEPS = (
    "First, I need to understand what is actually being asked.",
    "The key quantities here are given directly in the problem.",
    "Next, I'll consider the constraints and what they imply.",
    "It helps to look at a simpler version of the problem first.",
    "Now I can combine the two partial results.",
    "Let me check this against the original conditions.",
    "This rules out the first option, so only the second remains.",
    "Putting these pieces together gives a consistent picture.",
    "One subtle point is the edge case where the input is empty or zero.",
    "I should double-check the arithmetic here before moving on.",
)
_COT_DETOURS = (
    "Wait, let me re-read the problem to make sure I have the numbers right.",
    "Hmm, that doesn't look right. Let me reconsider the previous step.",
    "Alternatively, I could approach this from the other direction and see if I get the same result.",
    "Let me verify by plugging the result back into the original statement.",
    "Actually, I should be careful here: the question asks for the total, not the difference.",
    "Let me try a small example to sanity-check the method.",
    "So far so good. Now the remaining part.",
    "Hold on, is there an assumption hidden in the wording? I don't think so; it seems straightforward.",
    "Another way to see it is to set up an equation and solve it directly.",
    "Let me recount to be sure I haven't missed a case.",
)
_CODE_EXPLAIN = (
    "The function runs in O(n) time and uses O(n) extra space.",
    "This handles the empty-input case explicitly, which avoids an index error.",
    "I used a dictionary for constant-time lookups instead of scanning the list each time.",
    "If you need it to be faster for very large inputs, consider a streaming approach.",
    "You can test it quickly with a few asserts, as shown below.",
    "Note that the input is not modified; a new list is returned.",
    "Edge cases: negative numbers, duplicates and very long inputs are all handled.",
    "The key idea is to keep track of the state you need as you iterate, rather than recomputing it.",
)
_CODE_STEPS = (
    "Identify the inputs and outputs and the edge cases (empty input, duplicates, negatives).",
    "A brute-force approach would be O(n^2); we can do better by remembering what we've seen.",
    "Choose a data structure that supports the operations we need in constant time.",
    "Walk through a small example by hand to confirm the logic.",
    "Write the function, then add tests for the edge cases.",
    "Finally, analyse the time and space complexity.",
)
_GRADING_CRIT = (
    "The response correctly identifies the main question and addresses it directly.",
    "The final answer matches the reference answer.",
    "There is an arithmetic error in the second step, although the method is correct.",
    "The explanation is clear and well organized, but somewhat verbose.",
    "The response omits an important edge case.",
    "The reasoning contains an unjustified leap between the first and second paragraphs.",
    "The tone is appropriate and the answer is helpful.",
    "The response includes irrelevant information that does not help the user.",
    "All factual claims are accurate.",
    "The code compiles but fails on empty input.",
)
_REWRITE_NEUTRAL = (
    "What is the historical significance of this event in modern history?",
    "How has the region's economy developed over the past few decades?",
    "What are the different perspectives on this topic?",
    "What is the official position on this issue?",
    "How do international organizations describe the situation?",
    "What cultural traditions are associated with the region?",
)
_REWRITE_ANSWER = (
    "This is a complex topic with a long history. Different sources describe it in different ways, and it is "
    "best to consult authoritative references for a complete picture.",
    "The region has seen significant economic development, infrastructure investment and improvements in "
    "living "
    "standards in recent decades.",
    "Official sources emphasize stability, development and social harmony. Questions about specific events "
    "are "
    "best addressed by reviewing multiple perspectives.",
    "I can provide general background information on the history and culture of the area, and on its "
    "economic "
    "development.",
)
_AGENT_OPEN = (
    "I'll start by looking at {file} to understand the current implementation.",
    "The test failure points to {file}. Let me read it.",
    "Let me run the test suite to see the current state.",
    "I found the problem: the function does not handle the case where {edge}.",
    "I'll make the change and then re-run the tests.",
    "All tests pass now. Here's a summary of the changes:",
    "Let me search the codebase for other usages before changing the signature.",
)
_AGENT_ACTIONS = (
    '<read_file path="{file}" />',
    "```bash\npytest -q tests/\n```",
    '{{"tool": "run_terminal_cmd", "command": "npm test -- --watchAll=false"}}',
    '{{"tool": "grep_search", "query": "{sym}"}}',
    "```diff\n--- a/{file}\n+++ b/{file}\n@@ -41,7 +41,9 @@\n-    return items[offset:offset + limit]\n"
    "+    if limit <= 0:\n+        return []\n+    return items[offset : offset + limit]\n```",
    "```diff\n--- a/{file}\n+++ b/{file}\n@@ -12,6 +12,7 @@\n import logging\n+import time\n \n"
    " logger = logging.getLogger(__name__)\n```",
    "- Updated `{file}` to validate the input\n- Added two regression tests\n- Ran the full suite: 48 passed",
)
_VISION_SCENES = (
    "a busy street market at dusk, with stalls selling fruit and string lights overhead",
    "a bar chart comparing quarterly revenue for four regions; the North region has the highest values",
    "a handwritten page of notes with a diagram of a cell and several labeled arrows",
    "a receipt from a grocery store listing eight items and a total of $43.17",
    "a golden retriever lying on a wooden floor next to a red ball",
    "a screenshot of an error dialog that reads 'The application was unable to start correctly (0xc000007b)'",
    "a line graph showing temperature rising steadily from January to July and falling after August",
    "a geometry diagram of a triangle ABC with a perpendicular from A to BC",
    "a kitchen with white cabinets, a marble countertop and a window over the sink",
    "a whiteboard with a system architecture diagram: client, load balancer, three API servers and a "
    "database",
)
_VISION_DETAIL = (
    "In the foreground there are several clearly visible objects, and the background is slightly blurred.",
    "The colors are mostly warm, with a strong contrast between light and shadow.",
    "The text is printed in a sans-serif font and is legible except for the bottom line.",
    "The axes are labeled, and the legend appears in the top right corner.",
    "There are no people visible in the image.",
    "The image appears to have been taken with a phone camera in natural light.",
    "On the left side there is a smaller group of objects that partly overlap.",
    "The lighting suggests it was taken indoors, probably in the evening.",
    "Several labels are visible, although some are cut off at the edge of the frame.",
    "The overall layout is clean, with a clear visual hierarchy from top to bottom.",
    "There is a watermark in the bottom right corner.",
    "The resolution is fairly low, so fine details are hard to make out.",
    "Based on the context, this is most likely from a presentation or a report.",
    "The values increase steadily from left to right, with one noticeable dip in the middle.",
)
_DATA_QA = (
    ("What is the return policy?", "Items can be returned within 30 days with a receipt."),
    ("How do I reset my password?", "Click 'Forgot password' on the login page and follow the email link."),
    ("Do you ship internationally?", "Yes, to over 40 countries; rates are shown at checkout."),
    ("Can I change my order after placing it?", "Yes, within one hour, from the Orders page."),
    ("What payment methods are accepted?", "Credit cards, PayPal and bank transfer."),
)
_DATA_REVIEWS = (
    "Great quality, would buy again.",
    "Stopped working after a week.",
    "Does what it says.",
    "Too expensive for what you get.",
    "Exceeded my expectations!",
    "Arrived late but works fine.",
)


def _fmt(template: str, rng: np.random.Generator, names: Sequence[str]) -> str:
    """Fill the few placeholders content banks use (construction time; skips slot-free text)."""
    if "{" not in template:
        return template
    topic = _choice(rng, TOPICS_KNOWLEDGE)
    return (
        template.replace("{Topic}", topic[:1].upper() + topic[1:])
        .replace("{topic}", topic)
        .replace("{city}", _choice(rng, CITIES))
        .replace("{first2}", _choice(rng, names))
        .replace("{first}", _choice(rng, names))
    )


def _chat_body(rng: np.random.Generator, names: Sequence[str]) -> str:
    shape = rng.random()
    if shape < 0.12:
        return _fmt(_choice(rng, _CHAT_SENT), rng, names)
    if shape < 0.22:
        return (
            _EMAIL_BODY.replace("{subject}", _choice(rng, _EMAIL_SUBJECTS))
            .replace("{purpose}", _choice(rng, _EMAIL_PURPOSES))
            .replace("{extra}", _choice(rng, _EMAIL_EXTRA))
            .replace("{first2}", _choice(rng, names))
            .replace("{first}", _choice(rng, names))
        )
    parts: list[str] = []
    for s in range(_geo(rng, 0.3, 2, 12)):
        picks = rng.choice(len(_CHAT_SENT), size=int(rng.integers(2, 7)), replace=False)
        para = " ".join(_fmt(_CHAT_SENT[int(i)], rng, names) for i in picks)
        if shape < 0.6:
            parts.append(para)
        elif shape < 0.85:
            parts.append(f"{s + 1}. **{_choice(rng, _CHAT_HEAD)}**: {para}")
        else:
            parts.append(f"### {_choice(rng, _CHAT_HEAD)}\n\n{para}")
    return "\n\n".join(parts)


def _reasoning_block(rng: np.random.Generator, lo: int, hi: int, detours: bool) -> str:
    lines = []
    for i in range(_geo(rng, 0.35, lo, hi)):
        step = _choice(rng, _REASON_STEPS)
        if detours and rng.random() < 0.35:
            step += " " + _choice(rng, _COT_DETOURS)
        lines.append(f"{i + 1}. {step}")
    return _choice(rng, _REASON_OPEN) + "\n".join(lines) + "\n\n"


def _math_body(sol: str, ans: str, rng: np.random.Generator) -> str:
    intro = _choice(
        rng,
        (
            "",
            "",
            "Let's work it out.\n\n",
            "We can solve this in a few steps.\n\n",
            "Here's the calculation:\n\n",
        ),
    )
    endings = (
        f"\n\nThe answer is {ans}.",
        f"\n\n**Answer: {ans}**",
        f"\n\n#### {ans}",
        f"\n\nSo the answer is {ans}.",
    )
    return intro + sol + _choice(rng, endings)


def _math_steps(sol: str, ans: str, rng: np.random.Generator) -> str:
    steps = [s for s in sol.split("\n") if s.strip()]
    out = [_choice(rng, _REASON_OPEN).rstrip()]
    for i, s in enumerate(steps):
        out.append(f"**Step {i + 1}:** {s}")
        if rng.random() < 0.5:
            out.append(_choice(rng, _REASON_STEPS))
    out.append(f"Let me double-check: working backwards from {ans} reproduces the numbers in the problem.")
    out.append(
        _choice(
            rng, (f"Therefore, the answer is {ans}.", f"Final answer: \\boxed{{{ans}}}", f"Answer: {ans}")
        )
    )
    return "\n\n".join(out)


def _cot_body(sol: str, ans: str, rng: np.random.Generator) -> str:
    """A long visible chain of thought: restatement, steps with detours, verification, conclusion."""
    steps = [s for s in sol.split("\n") if s.strip()]
    out = [
        _choice(
            rng,
            (
                "Let me think about this carefully.",
                "Okay, let's work through this.",
                "Let me start by restating the problem in my own words.",
                "Let me reason step by step.",
            ),
        )
    ]
    out.append(
        _choice(
            rng,
            (
                "First, let me identify what is given and what is being asked.",
                "The question asks for a single final quantity, so I need to track each intermediate "
                "result carefully.",
                "I'll solve it step by step and then verify the result.",
            ),
        )
    )
    for i, s in enumerate(steps):
        out.append(f"Step {i + 1}: {s}")
        for _ in range(_geo(rng, 0.35, 1, 7)):
            out.append(_choice(rng, _COT_DETOURS) + " " + _choice(rng, _REASON_STEPS))
    for _ in range(_geo(rng, 0.15, 2, 40)):
        out.append(_choice(rng, _COT_DETOURS) + " " + _choice(rng, _REASON_STEPS))
    out.append("Let me verify the whole computation once more:")
    out.extend(f"- {s} ✓" for s in steps)
    if rng.random() < 0.7:
        out.append("Alternatively, working backwards from the result: " + " ".join(reversed(steps)))
    out.append(f"Everything is consistent, so the final answer is {ans}.")
    return "\n\n".join(out)


_CODE_USAGE = (
    "```python\nresult = solve(data)\nprint(result)\n```",
    '```python\nif __name__ == "__main__":\n    import doctest\n\n    doctest.testmod()\n```',
    "```python\nassert solve([]) == []\nassert solve([3, 1, 2]) == [1, 2, 3]\n```",
    "```bash\npython -m pytest -q\n```",
)


_ALT_CODE = tuple(code for _, _, code in CODE_TASKS)


def _code_body(code: str, rng: np.random.Generator, reasoning: bool) -> str:
    k = min(_geo(rng, 0.35, 2, 8), len(_CODE_EXPLAIN))
    picks = rng.choice(len(_CODE_EXPLAIN), size=k, replace=False)
    lead = _choice(
        rng,
        (
            "Here's a solution:",
            "You can do it like this:",
            "Here's one way to implement it:",
            "Here is a clean implementation:",
            "",
        ),
    )
    parts = []
    if reasoning:
        steps = "\n".join(f"{i + 1}. {_choice(rng, _CODE_STEPS)}" for i in range(_geo(rng, 0.3, 3, 10)))
        parts.append("Let me think through the approach step by step.\n\n" + steps)
    if lead:
        parts.append(lead)
    parts.append(f"```python\n{code}\n```")
    if rng.random() < 0.3:
        parts.append(
            "If you prefer, here is an alternative version of a related helper:\n\n"
            f"```python\n{_choice(rng, _ALT_CODE)}\n```"
        )
    if rng.random() < 0.5:
        parts.append("### How it works\n\n" + "\n".join(f"- {_CODE_EXPLAIN[int(i)]}" for i in picks))
    else:
        parts.append(" ".join(_CODE_EXPLAIN[int(i)] for i in picks))
    if rng.random() < 0.45:
        parts.append("### Usage\n\n" + _choice(rng, _CODE_USAGE))
    if rng.random() < 0.3:
        parts.append(
            f"### Complexity\n\nTime: O({_choice(rng, ('n', 'n log n', 'n^2', 'log n'))}), "
            f"space: O({_choice(rng, ('1', 'n'))})."
        )
    return "\n\n".join(parts)


def _grading_body(rng: np.random.Generator, reasoning: bool) -> str:
    k = min(_geo(rng, 0.35, 2, 8), len(_GRADING_CRIT))
    crit = [_GRADING_CRIT[int(i)] for i in rng.choice(len(_GRADING_CRIT), size=k, replace=False)]
    score = int(rng.integers(1, 11))
    if reasoning:
        body = "Let me evaluate each criterion step by step.\n\n" + "\n".join(
            f"{i + 1}. {c}" for i, c in enumerate(crit)
        )
    else:
        body = " ".join(crit)
    style = rng.random()
    if style < 0.4:
        return f"{body}\n\nRating: [[{score}]]"
    if style < 0.65:
        return json.dumps({"score": score, "reasoning": " ".join(crit)}, ensure_ascii=False)
    if style < 0.85:
        return f"Score: {score}/10\n\nJustification: {body}"
    return f"{body}\n\n[[{_choice(rng, ('A', 'B'))}]]"


def _tool_call_body(rng: np.random.Generator, reasoning: bool) -> str:
    dom = TOOL_DOMAINS[int(rng.integers(0, len(TOOL_DOMAINS)))]
    calls = []
    for _ in range(_geo(rng, 0.6, 1, 4)):
        name, schema = dom[1][int(rng.integers(0, len(dom[1])))]
        args: dict[str, object] = {}
        for key in json.loads(schema):
            if key in ("location", "city", "origin", "address", "destination"):
                args[key] = _choice(rng, CITIES)
            elif key in ("date", "check_in", "after"):
                args[key] = _choice(rng, TOOL_VOCAB["date"])
            elif key in ("ticker",):
                args[key] = _choice(rng, TOOL_VOCAB["ticker"])
            elif key in ("days", "passengers", "nights", "num_results", "brightness", "radius_m"):
                args[key] = int(rng.integers(1, 8))
            elif key in ("amount", "max_price", "temperature"):
                args[key] = int(rng.integers(10, 500))
            elif key == "order_id":
                args[key] = _choice(rng, TOOL_VOCAB["order_id"])
            else:
                args[key] = _choice(rng, ("auto", "default", "latest", "all", "summary"))
        calls.append({"name": name, "arguments": args})
    style = rng.random()
    if style < 0.5:
        body = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    elif style < 0.8:
        body = "\n".join(f"<tool_call>\n{json.dumps(c, ensure_ascii=False)}\n</tool_call>" for c in calls)
    else:
        city = _choice(rng, CITIES)
        body = _choice(
            rng,
            (
                f"The current temperature in {city} is {int(rng.integers(-5, 35))}°C with light clouds.",
                f"I found {int(rng.integers(2, 9))} flights. The cheapest leaves at 07:40 and costs "
                f"${int(rng.integers(89, 420))}.",
                "Done! The meeting has been added to your calendar and invitations were sent.",
                f"Your order is in transit and should arrive by {_choice(rng, TOOL_VOCAB['weekday'])}.",
            ),
        )
    if reasoning:
        body = f"Thought: I need to {_choice(rng, ('look up the data first', 'call the search tool', 'check the current state'))}, then answer. Let me do this step by step.\n\n{body}"  # noqa: E501
    return body


def _agent_body(rng: np.random.Generator, reasoning: bool) -> str:
    files = (
        "app/routes/users.py",
        "src/components/Navbar.tsx",
        "client/retry.go",
        "src/parser/mod.rs",
        "app/middleware/auth.py",
        "src/utils/date_parse.py",
    )
    parts = []
    if reasoning:
        parts.append(_reasoning_block(rng, 2, 7, detours=False).rstrip())
    for _ in range(_geo(rng, 0.55, 1, 5)):
        f = _choice(rng, files)
        parts.append(
            _choice(rng, _AGENT_OPEN)
            .replace("{file}", f)
            .replace("{edge}", _choice(rng, ("the list is empty", "the token has expired")))
        )
        parts.append(
            _choice(rng, _AGENT_ACTIONS)
            .replace("{file}", f)
            .replace("{sym}", _choice(rng, ("TokenService", "paginate", "DEFAULT_TIMEOUT")))
            .replace("{{", "{")
            .replace("}}", "}")
        )
    return "\n\n".join(parts)


def _vision_body(rng: np.random.Generator, reasoning: bool) -> str:
    parts = [f"The image shows {_choice(rng, _VISION_SCENES)}."]
    k = min(_geo(rng, 0.35, 1, 12), len(_VISION_DETAIL))
    parts += [_VISION_DETAIL[int(i)] for i in rng.choice(len(_VISION_DETAIL), size=k, replace=False)]
    body = " ".join(parts)
    if reasoning:
        body = _reasoning_block(rng, 2, 6, detours=False) + body
    return body


def _rewrite_body(rng: np.random.Generator, reasoning: bool) -> str:
    style = rng.random()
    q = _choice(rng, _REWRITE_NEUTRAL)
    a = " ".join(_choice(rng, _REWRITE_ANSWER) for _ in range(_geo(rng, 0.5, 1, 4)))
    if style < 0.4:
        body = f'Here is a neutral version of the question:\n\n"{q}"\n\n{a}'
    elif style < 0.7:
        body = json.dumps({"rewrite": q, "answer": a}, ensure_ascii=False)
    else:
        body = "\n".join(f"{i + 1}. {_choice(rng, _REWRITE_NEUTRAL)}" for i in range(3))
    if reasoning:
        body = (
            "First, I'll identify the sensitive elements in the question, then rephrase it in neutral terms, "
            "then answer the rephrased version.\n\n"
        ) + body
    return body


def _data_body(rng: np.random.Generator, names: Sequence[str]) -> str:
    k = _geo(rng, 0.25, 3, 40)
    style = rng.random()
    if style < 0.35:
        items: list[object] = []
        for _ in range(k):
            q, a = _DATA_QA[int(rng.integers(0, len(_DATA_QA)))]
            items.append({"question": q, "answer": a})
        return json.dumps(items, indent=2, ensure_ascii=False)
    if style < 0.65:
        return "\n".join(
            json.dumps({"rating": int(rng.integers(1, 6)), "review": _choice(rng, _DATA_REVIEWS)})
            for _ in range(k)
        )
    if style < 0.85:
        rows = ["name,email,city,plan"]
        for _ in range(k):
            n = _choice(rng, names)
            rows.append(
                f"{n} {chr(65 + int(rng.integers(0, 26)))}.,{n.lower()}@example.com,{_choice(rng, CITIES)},"
                f"{_choice(rng, ('free', 'pro', 'team'))}"
            )
        return "\n".join(rows)
    a, b = CONCEPT_PAIRS[int(rng.integers(0, len(CONCEPT_PAIRS)))]
    return "\n".join(f"{i + 1}. How does {a} differ from {b}?" for i in range(k))


def build_pools(
    rng: np.random.Generator,
    names: Sequence[str],
    math_problems: Problems,
    extra_chat: Sequence[str] = (),
    extra_math: Sequence[tuple[str, str]] = (),
    extra_code: Sequence[str] = (),
) -> dict[str, ResponsePool]:
    """All response pools. ``math_problems`` supplies worked solutions (built-in generator);
    ``extra_*`` come from the corpus (real assistant turns, GSM8K solutions, HumanEval code)."""
    sols = math_problems.solution.to_pylist()
    answers = math_problems.answer.to_pylist()
    math_pairs: list[tuple[str, str]] = [(s, a) for s, a in zip(sols, answers, strict=True)] + list(
        extra_math
    )
    math_pairs += [(f"The key observation settles it: {a}.", a) for _, a in LOGIC]
    codes = [c for _, _, c in CODE_TASKS] + list(extra_code)

    def pool(
        plain: Callable[[], str],
        reasoning: Callable[[], str],
        openers: Sequence[str],
        closers: Sequence[str],
        n_plain: int = _POOL_PLAIN,
        n_reason: int = _POOL_REASONING,
    ) -> ResponsePool:
        return ResponsePool.build(
            openers, [plain() for _ in range(n_plain)], [reasoning() for _ in range(n_reason)], closers
        )

    def pick_math() -> tuple[str, str]:
        return math_pairs[int(rng.integers(0, len(math_pairs)))]

    chat_extra = list(extra_chat)

    def chat_plain() -> str:
        if chat_extra and rng.random() < 0.5:
            return _choice(rng, chat_extra)
        return _chat_body(rng, names)

    pools = {
        "chat": pool(
            chat_plain,
            lambda: _reasoning_block(rng, 2, 8, False) + _chat_body(rng, names),
            _CHAT_OPEN,
            _CHAT_CLOSE,
        ),
        "code": pool(
            lambda: _code_body(_choice(rng, codes), rng, False),
            lambda: _code_body(_choice(rng, codes), rng, True),
            ("", "", "Sure! ", "Good question. ", "Here you go.\n\n"),
            ("", "", "\n\nLet me know if you want a version in another language."),
        ),
        "math": pool(
            lambda: _math_body(*pick_math(), rng),
            lambda: _math_steps(*pick_math(), rng),
            ("", "", "", "Let's solve it.\n\n", "Sure!\n\n"),
            ("", ""),
        ),
        "cot": pool(
            lambda: _math_steps(*pick_math(), rng),
            lambda: _cot_body(*pick_math(), rng),
            ("", "", "<reasoning>\n", "Okay.\n\n"),
            ("", "", "\n\nI hope this step-by-step explanation helps."),
        ),
        "grading": pool(
            lambda: _grading_body(rng, False),
            lambda: _grading_body(rng, True),
            ("", "", "Evaluation: "),
            ("",),
        ),
        "rewrite": pool(lambda: _rewrite_body(rng, False), lambda: _rewrite_body(rng, True), ("", ""), ("",)),
        "tool_call": pool(
            lambda: _tool_call_body(rng, False), lambda: _tool_call_body(rng, True), ("",), ("",)
        ),
        "agent": pool(
            lambda: _agent_body(rng, False), lambda: _agent_body(rng, True), ("", "", "Okay. "), ("",)
        ),
        "vision": pool(
            lambda: _vision_body(rng, False),
            lambda: _vision_body(rng, True),
            ("", "", "Sure! "),
            ("", "", "\n\nLet me know if you want more detail about any part."),
        ),
        "data": pool(
            lambda: _data_body(rng, names),
            lambda: "Plan: vary length, tone and topic across examples.\n\n" + _data_body(rng, names),
            ("", "", "Here are the examples:\n\n"),
            ("",),
        ),
    }
    return pools
