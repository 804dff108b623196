"""Problems that harvesting prompts wrap: each with a known answer and a worked solution.

Why answers matter: campaign A's "write the reasoning behind a finished answer" prompts
(answer rationalisation) and its rubric-grading prompts both need the problem's real
answer and a candidate solution, and the response pools need worked solutions. The
built-in math generator therefore computes answers with numpy instead of sampling text,
so every generated problem is solvable and its stated answer is right.

Sources (``ProblemBank.SOURCES``): generated ``math`` and ``seq``; fixed lists ``logic``,
``knowledge`` and ``code``; corpus ``gsm8k``, ``humaneval``, ``arena`` and ``tqa``
(template QA items), each falling back to a built-in source when no corpus is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillshield.simulate.text._engine import NO_SEP, Frame, FrameSet, VocabStore, empty_strings, stitch
from distillshield.simulate.text._vocab import CS_CONCEPTS, TOPICS_KNOWLEDGE

__all__ = ["CAPABILITIES", "CODE_TASKS", "ProblemBank", "Problems"]

CAPABILITIES: tuple[str, ...] = (
    "chat",
    "writing",
    "coding",
    "math",
    "reasoning",
    "agentic",
    "tool_use",
    "vision",
    "grading",
    "rewrite",
    "knowledge",
    "data_generation",
)
CAP = {c: i for i, c in enumerate(CAPABILITIES)}

Draw = Callable[[np.random.Generator, int], dict[str, np.ndarray]]


def _ri(rng: np.random.Generator, lo: int, hi: int, m: int) -> np.ndarray:
    """m integers uniform in [lo, hi]."""
    return rng.integers(lo, hi + 1, size=m, dtype=np.int64)


def _pick(rng: np.random.Generator, values: Sequence[int], m: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)[rng.integers(0, len(values), size=m)]


def _d_collect(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c = _ri(rng, 5, 40, m), _ri(rng, 2, 6, m), _ri(rng, 3, 12, m)
    r1 = b * c
    r2 = a + r1
    d = 2 + (rng.random(m) * (r2 - 2)).astype(np.int64)
    return {"a": a, "b": b, "c": c, "d": d, "r1": r1, "r2": r2, "ans": r2 - d}


def _d_distance(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c, d = _ri(rng, 40, 120, m), _ri(rng, 2, 5, m), _ri(rng, 30, 110, m), _ri(rng, 2, 4, m)
    return {"a": a, "b": b, "c": c, "d": d, "r1": a * b, "r2": c * d, "ans": a * b + c * d}


def _d_discount(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a = 20 * _ri(rng, 2, 25, m)
    b = _pick(rng, (10, 15, 20, 25, 30, 40, 50), m)
    r1 = a * b // 100
    r2 = a - r1
    c = np.minimum(_ri(rng, 2, 15, m), r2 - 1)
    return {"a": a, "b": b, "c": c, "r1": r1, "r2": r2, "ans": r2 - c}


def _d_wage(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c, d = _ri(rng, 12, 45, m), _ri(rng, 4, 10, m), _ri(rng, 3, 6, m), _ri(rng, 2, 8, m)
    return {"a": a, "b": b, "c": c, "d": d, "r1": a * b, "r2": a * b * c, "ans": a * b * c * d}


def _d_fraction_left(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    b = _ri(rng, 2, 6, m)
    a = b * _ri(rng, 6, 30, m)
    r1 = a // b
    c = 1 + (rng.random(m) * (a - r1 - 1)).astype(np.int64)
    return {"a": a, "b": b, "c": c, "r1": r1, "r2": r1 + c, "ans": a - r1 - c}


def _d_ages(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a = _ri(rng, 6, 40, m)
    b = _ri(rng, 2, 15, m)
    b = b + ((a + b) % 2)  # brother's age even, so half of it is whole
    return {"a": a, "b": b, "r1": a + b, "ans": (a + b) // 2}


def _d_average(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c, d = (_ri(rng, 62, 96, m) for _ in range(4))
    s = a + b + c + d
    lo = -((-(s + 50)) // 5)
    hi = (s + 100) // 5
    e = lo + (rng.random(m) * (hi - lo + 1)).astype(np.int64)
    e = np.minimum(e, hi)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "r1": 5 * e, "r2": s, "ans": 5 * e - s}


def _d_path(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c = _ri(rng, 8, 30, m), _ri(rng, 4, 20, m), _ri(rng, 1, 3, m)
    r1, r2 = a + 2 * c, b + 2 * c
    return {"a": a, "b": b, "c": c, "r1": r1, "r2": r2, "r3": r1 * r2, "r4": a * b, "ans": r1 * r2 - a * b}


def _d_unit_price(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, p, c = _ri(rng, 2, 8, m), _ri(rng, 2, 9, m), _ri(rng, 3, 15, m)
    return {"a": a, "b": a * p, "c": c, "r1": p, "ans": c * p}


def _d_pages(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, c = _ri(rng, 10, 45, m), _ri(rng, 2, 9, m)
    b = a * c + _ri(rng, 20, 300, m)
    return {"a": a, "b": b, "c": c, "r1": a * c, "ans": b - a * c}


def _d_ratio(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, k = _ri(rng, 2, 7, m), _ri(rng, 2, 7, m), _ri(rng, 2, 9, m)
    return {"a": a, "b": b, "c": a * k, "r1": k, "r2": b * k, "ans": a * k + b * k}


def _d_interest(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a = 100 * _ri(rng, 5, 80, m)
    b, c = _ri(rng, 2, 8, m), _ri(rng, 2, 6, m)
    r1 = a * b // 100
    return {"a": a, "b": b, "c": c, "r1": r1, "r2": r1 * c, "ans": a + r1 * c}


def _d_tank(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    c = _ri(rng, 1, 6, m)
    net = _ri(rng, 2, 15, m)
    k = _ri(rng, 5, 40, m)
    return {"a": net * k, "b": net + c, "c": c, "r1": net, "ans": k}


def _d_bill(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    k, p, b = _ri(rng, 2, 7, m), _ri(rng, 12, 60, m), _ri(rng, 2, 8, m)
    return {"k": k, "a": (k + 1) * p, "b": b, "r1": k + 1, "r2": p, "ans": p + b}


def _d_eggs(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a = 12 * _ri(rng, 1, 6, m)
    b, c, d = _ri(rng, 3, 7, m), _ri(rng, 2, 6, m), _ri(rng, 2, 4, m)
    r1 = a * b * d
    return {"a": a, "b": b, "c": c, "d": d, "r1": r1, "r2": r1 // 12, "ans": r1 // 12 * c}


def _d_change(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b, c, d = _ri(rng, 1, 4, m), _ri(rng, 8, 25, m), _ri(rng, 1, 3, m), _ri(rng, 15, 40, m)
    r1, r2 = a * b, c * d
    total = r1 + r2
    e = np.select([total < 50, total < 100, total < 200], [50, 100, 200], default=500)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "r1": r1, "r2": r2, "r3": total, "ans": e - total}


def _d_speed(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    v, b, t = _ri(rng, 8, 30, m), _ri(rng, 2, 5, m), _ri(rng, 2, 9, m)
    return {"a": v * b, "b": b, "c": v * t, "r1": v, "ans": t}


def _d_growth(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a = 100 * _ri(rng, 12, 250, m)
    b = _ri(rng, 2, 15, m)
    r1 = a * b // 100
    return {"a": a, "b": b, "r1": r1, "ans": a + r1}


def _d_consecutive(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    mm = _ri(rng, 4, 300, m)
    return {"a": 3 * mm + 3, "r1": mm, "r2": mm + 1, "ans": mm + 2}


def _d_linear(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, x, b = _ri(rng, 2, 12, m), _ri(rng, -9, 20, m), _ri(rng, 1, 40, m)
    return {"a": a, "b": b, "c": a * x + b, "r1": a * x, "ans": x}


def _d_square(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    s = _ri(rng, 3, 30, m)
    return {"a": s * s, "r1": s, "ans": 4 * s}


def _d_rows(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    a, b = _ri(rng, 3, 12, m), _ri(rng, 4, 15, m)
    c = 1 + (rng.random(m) * (a * b // 3)).astype(np.int64)
    return {"a": a, "b": b, "c": c, "r1": a * b, "ans": a * b - c}


DRAWS: dict[str, Draw] = {
    "collect": _d_collect,
    "distance": _d_distance,
    "discount": _d_discount,
    "wage": _d_wage,
    "fraction_left": _d_fraction_left,
    "ages": _d_ages,
    "average": _d_average,
    "path": _d_path,
    "unit_price": _d_unit_price,
    "pages": _d_pages,
    "ratio": _d_ratio,
    "interest": _d_interest,
    "tank": _d_tank,
    "bill": _d_bill,
    "eggs": _d_eggs,
    "change": _d_change,
    "speed": _d_speed,
    "growth": _d_growth,
    "consecutive": _d_consecutive,
    "linear": _d_linear,
    "square": _d_square,
    "rows": _d_rows,
}


@dataclass(frozen=True)
class MathTemplate:
    """A word-problem template: text and worked solution share the numbers of one draw."""

    draw: str
    text: str
    solution: str
    lang: str = "en"
    items: tuple[str, ...] = ("",)


MATH_TEMPLATES: tuple[MathTemplate, ...] = (
    MathTemplate(
        "collect",
        "{name} has {a} {item}. {Pron} buys {b} packs with {c} {item} in each pack, then gives {d} {item} "
        "to a "
        "friend. How many {item} does {name} have now?",
        "{name} buys {b} × {c} = {r1} {item}.\nSo {pron} has {a} + {r1} = {r2} {item}.\n"
        "After giving away {d}, {pron} has {r2} - {d} = {ans} {item}.",
        items=("stickers", "marbles", "baseball cards", "seashells", "pencils", "trading cards"),
    ),
    MathTemplate(
        "distance",
        "A {item} travels at {a} km per hour for {b} hours, then at {c} km per hour for {d} hours. What is "
        "the "
        "total distance it travels, in kilometers?",
        "In the first part it travels {a} × {b} = {r1} km.\nIn the second part it travels {c} × {d} = {r2} "
        "km.\n"
        "The total distance is {r1} + {r2} = {ans} km.",
        items=("train", "bus", "car", "truck"),
    ),
    MathTemplate(
        "discount",
        "A {item} costs ${a}. During a sale it is {b}% off, and {name} also has a coupon for ${c} off the "
        "sale "
        "price. How much does {name} pay?",
        "The discount is {b}% of ${a} = ${r1}.\nThe sale price is ${a} - ${r1} = ${r2}.\n"
        "With the coupon, {name} pays ${r2} - ${c} = ${ans}.",
        items=("jacket", "pair of headphones", "backpack", "blender", "lamp", "video game"),
    ),
    MathTemplate(
        "wage",
        "{name} earns ${a} per hour. {Pron} works {b} hours a day, {c} days a week. How much does {pron} "
        "earn in "
        "{d} weeks?",
        "Per day: {a} × {b} = ${r1}.\nPer week: {r1} × {c} = ${r2}.\nIn {d} weeks: {r2} × {d} = ${ans}.",
    ),
    MathTemplate(
        "fraction_left",
        "A bakery made {a} {item}. It sold 1/{b} of them in the morning and {c} more in the afternoon. How "
        "many "
        "{item} are left?",
        "In the morning it sold {a} / {b} = {r1} {item}.\nIn total it sold {r1} + {c} = {r2}.\n"
        "So {a} - {r2} = {ans} {item} are left.",
        items=("muffins", "croissants", "cupcakes", "bagels", "cookies"),
    ),
    MathTemplate(
        "ages",
        "{name} is {a} years old. {Poss} brother is {b} years older, and {poss} sister is half as old as the "
        "brother. How old is the sister?",
        "The brother is {a} + {b} = {r1} years old.\nThe sister is half of that: {r1} / 2 = {ans} years old.",
    ),
    MathTemplate(
        "average",
        "{name} scored {a}, {b}, {c} and {d} on four tests. What score does {pron} need on the fifth test "
        "to have "
        "an average of {e}?",
        "An average of {e} over five tests needs a total of 5 × {e} = {r1} points.\n"
        "The first four tests add up to {a} + {b} + {c} + {d} = {r2}.\nSo {pron} needs {r1} - {r2} = {ans}.",
    ),
    MathTemplate(
        "path",
        "A rectangular garden is {a} meters long and {b} meters wide. A path {c} meters wide runs around the "
        "outside of the garden. What is the area of the path, in square meters?",
        "With the path, the outer rectangle is {a} + 2×{c} = {r1} m by {b} + 2×{c} = {r2} m, so its area is "
        "{r1} × {r2} = {r3} m².\nThe garden's area is {a} × {b} = {r4} m².\nThe path's area is {r3} - {r4} "
        "= {ans} m².",
    ),
    MathTemplate(
        "unit_price",
        "{a} {item} cost ${b}. How much do {c} {item} cost?",
        "One costs ${b} / {a} = ${r1}.\nSo {c} cost {c} × ${r1} = ${ans}.",
        items=("notebooks", "bottles of juice", "movie tickets", "bags of rice", "pens"),
    ),
    MathTemplate(
        "pages",
        "{name} reads {a} pages a day. {Poss} book has {b} pages. How many pages are left after {c} days?",
        "In {c} days {pron} reads {a} × {c} = {r1} pages.\nPages left: {b} - {r1} = {ans}.",
    ),
    MathTemplate(
        "ratio",
        "The ratio of {item} in a club is {a}:{b}. If there are {c} in the first group, how many members "
        "does "
        "the club have in total?",
        "{c} / {a} = {r1}, so each part of the ratio is {r1} people.\nThe second group has {b} × {r1} = "
        "{r2}.\n"
        "Total: {c} + {r2} = {ans}.",
        items=("boys to girls", "adults to children", "beginners to experts"),
    ),
    MathTemplate(
        "interest",
        "{name} deposits ${a} in an account that pays {b}% simple interest per year. How much money is in "
        "the "
        "account after {c} years?",
        "Interest per year: {b}% of ${a} = ${r1}.\nOver {c} years: {r1} × {c} = ${r2}.\nTotal: ${a} + ${r2} "
        "= ${ans}.",
    ),
    MathTemplate(
        "tank",
        "A tank holds {a} liters. It is filled at {b} liters per minute but leaks {c} liters per minute. "
        "How many "
        "minutes does it take to fill the empty tank?",
        "The tank gains {b} - {c} = {r1} liters per minute.\nTime: {a} / {r1} = {ans} minutes.",
    ),
    MathTemplate(
        "bill",
        "{name} and {k} friends split a restaurant bill of ${a} equally, and each person also leaves a ${b} "
        "tip. "
        "How much does each person pay in total?",
        "There are {k} + 1 = {r1} people.\nEach share of the bill is ${a} / {r1} = ${r2}.\n"
        "With the tip each pays ${r2} + ${b} = ${ans}.",
    ),
    MathTemplate(
        "eggs",
        "{name}'s farm has {a} hens. Each hen lays {b} eggs a week, and {name} sells the eggs for ${c} per "
        "dozen. "
        "How much money does {pron} make in {d} weeks?",
        "Eggs in {d} weeks: {a} × {b} × {d} = {r1}.\nThat is {r1} / 12 = {r2} dozen.\nRevenue: {r2} × ${c} "
        "= ${ans}.",
    ),
    MathTemplate(
        "change",
        "{name} buys {a} shirts at ${b} each and {c} pairs of pants at ${d} each. {Pron} pays with ${e}. "
        "How much "
        "change does {pron} get?",
        "Shirts: {a} × ${b} = ${r1}.\nPants: {c} × ${d} = ${r2}.\nTotal: ${r1} + ${r2} = ${r3}.\n"
        "Change: ${e} - ${r3} = ${ans}.",
    ),
    MathTemplate(
        "speed",
        "A cyclist rides {a} km in {b} hours. At the same speed, how many hours will it take to ride {c} km?",
        "Speed: {a} / {b} = {r1} km per hour.\nTime for {c} km: {c} / {r1} = {ans} hours.",
    ),
    MathTemplate(
        "growth",
        "A town had {a} residents. Its population grew by {b}% this year. How many residents does it have "
        "now?",
        "Growth: {b}% of {a} = {r1}.\nNew population: {a} + {r1} = {ans}.",
    ),
    MathTemplate(
        "consecutive",
        "The sum of three consecutive integers is {a}. What is the largest of the three?",
        "Call them n, n + 1 and n + 2. Then 3n + 3 = {a}, so n = {r1}.\nThe integers are {r1}, {r2} and "
        "{ans}; the "
        "largest is {ans}.",
    ),
    MathTemplate(
        "linear",
        "Solve for x: {a}x + {b} = {c}",
        "Subtract {b} from both sides: {a}x = {c} - {b} = {r1}.\nDivide by {a}: x = {r1} / {a} = {ans}.",
    ),
    MathTemplate(
        "square",
        "A square has an area of {a} square centimeters. What is its perimeter in centimeters?",
        "The side is √{a} = {r1} cm.\nThe perimeter is 4 × {r1} = {ans} cm.",
    ),
    MathTemplate(
        "rows",
        "{name} plants {a} rows of {item} with {b} plants in each row. {c} of the plants do not survive. "
        "How many "
        "plants survive?",
        "{a} × {b} = {r1} plants in total.\n{r1} - {c} = {ans} survive.",
        items=("tomatoes", "tulips", "lettuce", "peppers", "sunflowers"),
    ),
    # Non-English word problems: harvesting campaigns and the Google-reported coercion
    # campaign used many languages, and real multilingual math evals (MGSM) exist too.
    MathTemplate(
        "collect",
        "{name}有{a}张贴纸。又买了{b}包，每包{c}张，然后送给朋友{d}张。{name}现在有多少张贴纸？",
        "买了 {b} × {c} = {r1} 张。\n一共有 {a} + {r1} = {r2} 张。\n"
        "送出 {d} 张后还剩 {r2} - {d} = {ans} 张。",
        lang="zh",
    ),
    MathTemplate(
        "wage",
        "{name}每小时赚{a}元，每天工作{b}小时，每周工作{c}天。{d}周一共能赚多少钱？",
        "每天：{a} × {b} = {r1} 元。\n每周：{r1} × {c} = {r2} 元。\n{d} 周：{r2} × {d} = {ans} 元。",
        lang="zh",
    ),
    MathTemplate(
        "tank",
        "一个水箱能装{a}升水。进水速度是每分钟{b}升，但每分钟漏水{c}升。把空水箱装满需要多少分钟？",
        "每分钟净增 {b} - {c} = {r1} 升。\n需要 {a} / {r1} = {ans} 分钟。",
        lang="zh",
    ),
    MathTemplate(
        "collect",
        # Abbreviated units ("шт.", "наб.") keep the numerals free of Russian case agreement.
        "У {name} в коллекции было {a} шт. марок. Потом купили ещё {b} наб. по {c} шт. "
        "и подарили другу {d} шт. Сколько марок осталось?",
        "Куплено {b} × {c} = {r1} шт.\nВсего {a} + {r1} = {r2} шт.\nОсталось {r2} - {d} = {ans} шт.",
        lang="ru",
    ),
    MathTemplate(
        "speed",
        "Велосипедист проехал {a} км за {b} ч. За сколько часов он проедет {c} км с той же скоростью?",
        "Скорость: {a} / {b} = {r1} км/ч.\nВремя: {c} / {r1} = {ans} ч.",
        lang="ru",
    ),
    MathTemplate(
        "wage",
        "{name} gana {a} dólares por hora. Trabaja {b} horas al día, {c} días a la semana. ¿Cuánto gana en "
        "{d} "
        "semanas?",
        "Por día: {a} × {b} = {r1}.\nPor semana: {r1} × {c} = {r2}.\nEn {d} semanas: {r2} × {d} = {ans} "
        "dólares.",
        lang="es",
    ),
    MathTemplate(
        "fraction_left",
        "Una panadería hizo {a} panes. Vendió 1/{b} por la mañana y {c} más por la tarde. ¿Cuántos panes "
        "quedan?",
        "Por la mañana vendió {a} / {b} = {r1}.\nEn total vendió {r1} + {c} = {r2}.\nQuedan {a} - {r2} = "
        "{ans}.",
        lang="es",
    ),
    MathTemplate(
        "pages",
        "{name}는 하루에 {a}쪽씩 책을 읽습니다. 책은 모두 {b}쪽입니다. {c}일 후에 남은 쪽수는 몇 쪽입니까?",
        "{c}일 동안 읽은 쪽수: {a} × {c} = {r1}쪽.\n남은 쪽수: {b} - {r1} = {ans}쪽.",
        lang="ko",
    ),
    MathTemplate(
        "linear",
        "次の方程式を解きなさい：{a}x + {b} = {c}",
        "両辺から {b} を引くと {a}x = {r1}。\n両辺を {a} で割ると x = {ans}。",
        lang="ja",
    ),
)

NAMES_BY_LANG: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "zh": (("小红", "王芳", "李娜", "张丽"), ("小明", "李华", "张伟", "王强")),
    "ru": (("Маши", "Ани", "Оли", "Кати"), ("Пети", "Саши", "Димы", "Ивана")),
    "es": (("Lucía", "Carmen", "Sofía", "Valentina"), ("Mateo", "Diego", "Pablo", "Javier")),
    "ko": (("지우", "서연", "민지", "하은"), ("민준", "서준", "도윤", "현우")),
    "ja": (("さくら", "ゆい"), ("たろう", "けんた")),
}

# (question, short answer): classic reasoning puzzles whose answers are fixed.
LOGIC: tuple[tuple[str, str], ...] = (
    ("If all bloops are razzies and all razzies are lazzies, are all bloops definitely lazzies?", "Yes"),
    (
        "A bat and a ball cost $1.10 in total. The bat costs $1.00 more than the ball. How much does the "
        "ball cost?",
        "$0.05",
    ),
    (
        "If it takes 5 machines 5 minutes to make 5 widgets, how long would it take 100 machines to make "
        "100 widgets?",
        "5 minutes",
    ),
    (
        "A patch of lily pads doubles in size every day. If it takes 48 days to cover the whole lake, how "
        "long does "
        "it take to cover half of the lake?",
        "47 days",
    ),
    ("Sally has 3 brothers. Each of her brothers has 2 sisters. How many sisters does Sally have?", "1"),
    (
        "A is the father of B. B is the father of C. What is the relationship between A and C?",
        "A is C's grandfather",
    ),
    (
        "Three friends, Ann, Ben and Cal, finished a race. Ann did not finish last. Ben finished after Cal. "
        "Cal did "
        "not finish first. In what order did they finish?",
        "Ann, Cal, Ben",
    ),
    ("If today is Wednesday, what day of the week will it be 100 days from now?", "Friday"),
    ("What is the angle between the hour and minute hands of a clock at 3:15?", "7.5 degrees"),
    ("How many times do the hour and minute hands of a clock overlap in 24 hours?", "22"),
    ("A farmer has 17 sheep and all but 9 run away. How many are left?", "9"),
    ("What is the next letter in the sequence O, T, T, F, F, S, S, E, ...?", "N"),
    (
        "Five people each shake hands with every other person exactly once. How many handshakes are there?",
        "10",
    ),
    (
        "A snail climbs 3 meters up a 10-meter well each day and slips back 2 meters each night. On which "
        "day does "
        "it reach the top?",
        "Day 8",
    ),
    (
        "Mary's father has five daughters: Nana, Nene, Nini and Nono. What is the fifth daughter's name?",
        "Mary",
    ),
    (
        "Some cats are black, and all black things are hard to see at night. Can we conclude that some cats "
        "are "
        "hard to see at night?",
        "Yes",
    ),
    ("A train leaves at 14:45 and the trip takes 2 hours 50 minutes. When does it arrive?", "17:35"),
    ("Which number should replace the question mark: 2, 6, 12, 20, 30, ?", "42"),
    ("You are running a race and overtake the person in second place. What place are you in now?", "Second"),
    (
        "A box has 4 red, 5 blue and 6 green balls. What is the minimum number of balls you must draw "
        "without "
        "looking to be sure of getting two of the same color?",
        "4",
    ),
    ("If 3 cats catch 3 mice in 3 minutes, how many cats are needed to catch 100 mice in 100 minutes?", "3"),
    ("Tom is taller than Jim. Jim is taller than Sam. Is Sam taller than Tom?", "No"),
    (
        "A doctor gives you 3 pills and tells you to take one every half hour. How many minutes do the "
        "pills last?",
        "60 minutes",
    ),
    ("How many squares of any size are there on a standard 8x8 chessboard?", "204"),
    (
        "What is the smallest positive integer that leaves a remainder of 1 when divided by 2, 3, 4, 5 and "
        "6?",
        "61",
    ),
    ("If you flip a fair coin three times, what is the probability of getting at least one head?", "7/8"),
    ("All roses are flowers. Some flowers fade quickly. Does it follow that some roses fade quickly?", "No"),
    (
        "Two trains 300 km apart travel toward each other at 70 km/h and 80 km/h. After how many hours do "
        "they "
        "meet?",
        "2 hours",
    ),
)

KNOWLEDGE: tuple[tuple[str, str], ...] = (
    ("What is the capital of Australia?", "Canberra"),
    ("Why is the sky blue?", "Rayleigh scattering: shorter blue wavelengths of sunlight scatter more in air"),
    ("What is the powerhouse of the cell?", "The mitochondrion"),
    ("Who wrote 'One Hundred Years of Solitude'?", "Gabriel García Márquez"),
    ("What is the chemical formula of table salt?", "NaCl"),
    ("In what year did the Berlin Wall fall?", "1989"),
    ("What is the largest planet in the solar system?", "Jupiter"),
    ("What does DNA stand for?", "Deoxyribonucleic acid"),
    ("What is the speed of light in a vacuum, approximately?", "About 300,000 km per second"),
    ("Which gas do plants absorb for photosynthesis?", "Carbon dioxide"),
    ("What is the time complexity of binary search?", "O(log n)"),
    ("Who proposed the theory of general relativity?", "Albert Einstein"),
    ("What is the longest river in South America?", "The Amazon"),
    ("What is the boiling point of water at sea level in Fahrenheit?", "212 °F"),
    ("Which organ produces insulin?", "The pancreas"),
    ("What is the derivative of sin(x)?", "cos(x)"),
    ("What treaty ended World War I?", "The Treaty of Versailles"),
    ("What is the main function of red blood cells?", "Carrying oxygen from the lungs to the body's tissues"),
    ("What is Avogadro's number, approximately?", "6.022 × 10^23"),
    (
        "What is the difference between weather and climate?",
        "Weather is short-term atmospheric conditions; climate is the long-term average",
    ),
    ("Who painted 'The Starry Night'?", "Vincent van Gogh"),
    ("What is the hardest natural substance?", "Diamond"),
    ("What does HTTP stand for?", "Hypertext Transfer Protocol"),
    ("Which element has atomic number 6?", "Carbon"),
    ("What is the smallest prime number?", "2"),
    ("What causes the seasons on Earth?", "The tilt of Earth's axis relative to its orbit"),
    ("What is the official language of Brazil?", "Portuguese"),
    (
        "What is GDP?",
        "The total market value of all final goods and services produced in a country in a period",
    ),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong"),
    ("What is the integral of 1/x?", "ln|x| + C"),
    ("What is the largest ocean on Earth?", "The Pacific Ocean"),
    ("What year did the French Revolution begin?", "1789"),
    (
        "What is entropy, in thermodynamics?",
        "A measure of the number of microscopic states consistent with a "
        "macrostate; it never decreases in an isolated system",
    ),
    ("What is the function of the hippocampus?", "Forming new long-term memories and spatial navigation"),
    ("Which programming language introduced the borrow checker?", "Rust"),
)

# (description, signature, solution body including the def line)
CODE_TASKS: tuple[tuple[str, str, str], ...] = (
    (
        "returns the n-th Fibonacci number",
        "fibonacci(n: int) -> int",
        "def fibonacci(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n  "
        "  return a",
    ),
    (
        "checks whether a string is a palindrome, ignoring case and non-alphanumeric characters",
        "is_palindrome(s: str) -> bool",
        "def is_palindrome(s: str) -> bool:\n    cleaned = [c.lower() for c in s if c.isalnum()]\n"
        "    return cleaned == cleaned[::-1]",
    ),
    (
        "merges two sorted lists into one sorted list",
        "merge_sorted(a: list[int], b: list[int]) -> list[int]",
        "def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n    i = j = 0\n    out = []\n"
        "    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n            out.append(a[i]); i += "
        "1\n"
        "        else:\n            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]",
    ),
    (
        "returns the longest common prefix of a list of strings",
        "longest_common_prefix(words: list[str]) -> str",
        "def longest_common_prefix(words: list[str]) -> str:\n    if not words:\n        return ''\n"
        "    prefix = words[0]\n    for w in words[1:]:\n        while not w.startswith(prefix):\n"
        "            prefix = prefix[:-1]\n    return prefix",
    ),
    (
        "computes the greatest common divisor of two integers",
        "gcd(a: int, b: int) -> int",
        "def gcd(a: int, b: int) -> int:\n    while b:\n        a, b = b, a % b\n    return abs(a)",
    ),
    (
        "flattens an arbitrarily nested list",
        "flatten(items: list) -> list",
        "def flatten(items: list) -> list:\n    out = []\n    for x in items:\n        if isinstance(x, "
        "list):\n"
        "            out.extend(flatten(x))\n        else:\n            out.append(x)\n    return out",
    ),
    (
        "returns the indices of the two numbers in a list that add up to a target",
        "two_sum(nums: list[int], target: int) -> tuple[int, int]",
        "def two_sum(nums: list[int], target: int) -> tuple[int, int]:\n    seen = {}\n"
        "    for i, x in enumerate(nums):\n        if target - x in seen:\n            return seen[target - "
        "x], i\n"
        "        seen[x] = i\n    raise ValueError('no solution')",
    ),
    (
        "checks whether a string of brackets ()[]{} is balanced",
        "is_balanced(s: str) -> bool",
        "def is_balanced(s: str) -> bool:\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n"
        "    for c in s:\n        if c in '([{':\n            stack.append(c)\n        elif c in pairs:\n"
        "            if not stack or stack.pop() != pairs[c]:\n                return False\n    return not "
        "stack",
    ),
    (
        "converts a Roman numeral to an integer",
        "roman_to_int(s: str) -> int",
        "def roman_to_int(s: str) -> int:\n    val = "
        "{'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n"
        "    total = 0\n    for i, c in enumerate(s):\n        if i + 1 < len(s) and val[c] < val[s[i + "
        "1]]:\n"
        "            total -= val[c]\n        else:\n            total += val[c]\n    return total",
    ),
    (
        "rotates a square matrix 90 degrees clockwise",
        "rotate(matrix: list[list[int]]) -> list[list[int]]",
        "def rotate(matrix: list[list[int]]) -> list[list[int]]:\n    return [list(row) for row in "
        "zip(*matrix[::-1])]",
    ),
    (
        "returns the first non-repeating character in a string, or None",
        "first_unique(s: str) -> str | None",
        "from collections import Counter\n\ndef first_unique(s: str) -> str | None:\n    counts = "
        "Counter(s)\n"
        "    return next((c for c in s if counts[c] == 1), None)",
    ),
    (
        "returns all prime numbers up to n using the Sieve of Eratosthenes",
        "primes_up_to(n: int) -> list[int]",
        "def primes_up_to(n: int) -> list[int]:\n    if n < 2:\n        return []\n    sieve = [True] * (n "
        "+ 1)\n"
        "    sieve[0] = sieve[1] = False\n    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n"
        "            sieve[i * i :: i] = [False] * len(sieve[i * i :: i])\n"
        "    return [i for i, p in enumerate(sieve) if p]",
    ),
    (
        "groups a list of words into lists of anagrams",
        "group_anagrams(words: list[str]) -> list[list[str]]",
        "from collections import defaultdict\n\ndef group_anagrams(words: list[str]) -> list[list[str]]:\n"
        "    groups = defaultdict(list)\n    for w in words:\n        groups[''.join(sorted(w))].append(w)\n"
        "    return list(groups.values())",
    ),
    (
        "implements binary search on a sorted list, returning -1 if the target is absent",
        "binary_search(items: list[int], target: int) -> int",
        "def binary_search(items: list[int], target: int) -> int:\n    lo, hi = 0, len(items) - 1\n"
        "    while lo <= hi:\n        mid = (lo + hi) // 2\n        if items[mid] == target:\n            "
        "return mid\n"
        "        if items[mid] < target:\n            lo = mid + 1\n        else:\n            hi = mid - "
        "1\n    return -1",
    ),
    (
        "returns the maximum sum of a contiguous subarray",
        "max_subarray(nums: list[int]) -> int",
        "def max_subarray(nums: list[int]) -> int:\n    best = cur = nums[0]\n    for x in nums[1:]:\n"
        "        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best",
    ),
    (
        "removes duplicates from a list while preserving order",
        "dedupe(items: list) -> list",
        "def dedupe(items: list) -> list:\n    seen = set()\n    out = []\n    for x in items:\n"
        "        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out",
    ),
    (
        "returns the k most frequent elements of a list",
        "top_k(items: list[int], k: int) -> list[int]",
        "from collections import Counter\n\ndef top_k(items: list[int], k: int) -> list[int]:\n"
        "    return [x for x, _ in Counter(items).most_common(k)]",
    ),
    (
        "computes the Levenshtein edit distance between two strings",
        "edit_distance(a: str, b: str) -> int",
        "def edit_distance(a: str, b: str) -> int:\n    prev = list(range(len(b) + 1))\n"
        "    for i, ca in enumerate(a, 1):\n        cur = [i]\n        for j, cb in enumerate(b, 1):\n"
        "            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))\n        prev = "
        "cur\n"
        "    return prev[-1]",
    ),
    (
        "parses a query string like 'a=1&b=2' into a dictionary",
        "parse_query(qs: str) -> dict[str, str]",
        "def parse_query(qs: str) -> dict[str, str]:\n    out = {}\n    for pair in qs.split('&'):\n"
        "        if pair:\n            key, _, value = pair.partition('=')\n            out[key] = value\n  "
        "  return out",
    ),
    (
        "implements an LRU cache with get and put in O(1)",
        "class LRUCache",
        "from collections import OrderedDict\n\nclass LRUCache:\n    def __init__(self, capacity: int) -> "
        "None:\n"
        "        self.capacity = capacity\n        self.data: OrderedDict[int, int] = OrderedDict()\n\n"
        "    def get(self, key: int) -> int:\n        if key not in self.data:\n            return -1\n"
        "        self.data.move_to_end(key)\n        return self.data[key]\n\n"
        "    def put(self, key: int, value: int) -> None:\n        self.data[key] = value\n"
        "        self.data.move_to_end(key)\n        if len(self.data) > self.capacity:\n"
        "            self.data.popitem(last=False)",
    ),
    (
        "counts the islands of '1's in a grid of '1's and '0's",
        "count_islands(grid: list[list[str]]) -> int",
        "def count_islands(grid: list[list[str]]) -> int:\n    rows, cols = len(grid), len(grid[0]) if grid "
        "else 0\n"
        "    seen = set()\n\n    def fill(r: int, c: int) -> None:\n        stack = [(r, c)]\n        while "
        "stack:\n"
        "            r, c = stack.pop()\n            if (r, c) in seen or not (0 <= r < rows and 0 <= c < "
        "cols):\n"
        "                continue\n            if grid[r][c] != '1':\n                continue\n"
        "            seen.add((r, c))\n            stack += [(r + 1, c), (r - 1, c), (r, c + 1), (r, c - "
        "1)]\n\n"
        "    count = 0\n    for r in range(rows):\n        for c in range(cols):\n"
        "            if grid[r][c] == '1' and (r, c) not in seen:\n                fill(r, c)\n             "
        "   count += 1\n"
        "    return count",
    ),
    (
        "returns the power set of a list",
        "power_set(items: list) -> list[list]",
        "def power_set(items: list) -> list[list]:\n    out = [[]]\n    for x in items:\n"
        "        out += [s + [x] for s in out]\n    return out",
    ),
    (
        "checks whether a year is a leap year",
        "is_leap(year: int) -> bool",
        "def is_leap(year: int) -> bool:\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
    ),
    (
        "returns the length of the longest substring without repeating characters",
        "longest_unique_substring(s: str) -> int",
        "def longest_unique_substring(s: str) -> int:\n    last = {}\n    start = best = 0\n"
        "    for i, c in enumerate(s):\n        if c in last and last[c] >= start:\n            start = "
        "last[c] + 1\n"
        "        last[c] = i\n        best = max(best, i - start + 1)\n    return best",
    ),
    (
        "converts a non-negative integer to its binary representation as a string",
        "to_binary(n: int) -> str",
        "def to_binary(n: int) -> str:\n    if n == 0:\n        return '0'\n    digits = []\n    while n:\n"
        "        digits.append(str(n % 2))\n        n //= 2\n    return ''.join(reversed(digits))",
    ),
    (
        "checks whether two strings are anagrams of each other",
        "are_anagrams(a: str, b: str) -> bool",
        "def are_anagrams(a: str, b: str) -> bool:\n    return sorted(a.replace(' ', '').lower()) == "
        "sorted(b.replace(' ', '').lower())",
    ),
)


@dataclass(frozen=True)
class Problems:
    """Per-row problem text, its answer, a worked solution and its capability code."""

    text: pa.Array
    answer: pa.Array
    solution: pa.Array
    cap: np.ndarray  # int8 codes into CAPABILITIES


class _Pool:
    """A fixed list of problems sampled uniformly (built-in lists and corpus files)."""

    def __init__(
        self, text: Sequence[str], answer: Sequence[str], solution: Sequence[str], cap: Sequence[int]
    ):
        self.text = pa.array(list(text), type=pa.string())
        self.answer = pa.array(list(answer), type=pa.string())
        self.solution = pa.array(list(solution), type=pa.string())
        self.cap = np.asarray(cap, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.text)

    def sample(self, n: int, rng: np.random.Generator) -> Problems:
        idx = rng.integers(0, len(self), size=n)
        ipa = pa.array(idx)
        return Problems(self.text.take(ipa), self.answer.take(ipa), self.solution.take(ipa), self.cap[idx])


_PRON = pa.array(["she", "he"])
_PRON_CAP = pa.array(["She", "He"])
_POSS = pa.array(["her", "his"])
_POSS_CAP = pa.array(["Her", "His"])


class _MathGenerator:
    """Vectorised word problems: numbers drawn per template, answers computed, text rendered by a FrameSet."""

    def __init__(self, store: VocabStore, langs: Sequence[str]) -> None:
        self.langs = list(langs)
        dyn = [
            "name",
            "pron",
            "Pron",
            "poss",
            "Poss",
            "item",
            "a",
            "b",
            "c",
            "d",
            "e",
            "k",
            "r1",
            "r2",
            "r3",
            "r4",
            "ans",
        ]
        self.templates = MATH_TEMPLATES
        self.text_fs = FrameSet(
            [Frame(-1, "math", t.lang, "math", False, t.text) for t in self.templates], store, self.langs, dyn
        )
        self.sol_fs = FrameSet(
            [Frame(-1, "math", t.lang, "math", False, t.solution) for t in self.templates],
            store,
            self.langs,
            dyn,
        )
        by_lang: dict[str, list[int]] = {}
        for i, t in enumerate(self.templates):
            by_lang.setdefault(t.lang, []).append(i)
        self.by_lang = [np.array(by_lang.get(lang, by_lang["en"]), dtype=np.int64) for lang in self.langs]
        self.items = [pa.array(list(t.items), type=pa.string()) for t in self.templates]
        en_f, en_m = store.get("name_f"), store.get("name_m")
        self.names: list[tuple[pa.Array, pa.Array]] = []
        for lang in self.langs:
            f, m = NAMES_BY_LANG.get(lang, (tuple(en_f), tuple(en_m)))
            self.names.append((pa.array(list(f), type=pa.string()), pa.array(list(m), type=pa.string())))

    def sample(self, n: int, rng: np.random.Generator, lidx: np.ndarray, solution: bool = True) -> Problems:
        t = np.empty(n, dtype=np.int64)
        for li in np.unique(lidx):
            rows = np.flatnonzero(lidx == li)
            choices = self.by_lang[int(li)]
            t[rows] = choices[rng.integers(0, len(choices), size=len(rows))]
        nums = {
            k: np.zeros(n, dtype=np.int64)
            for k in ("a", "b", "c", "d", "e", "k", "r1", "r2", "r3", "r4", "ans")
        }
        item_pieces: list[tuple[np.ndarray, pa.Array]] = []
        for ti in np.unique(t):
            rows = np.flatnonzero(t == ti)
            tpl = self.templates[int(ti)]
            for key, val in DRAWS[tpl.draw](rng, len(rows)).items():
                nums[key][rows] = val
            items = self.items[int(ti)]
            item_pieces.append((rows, items.take(pa.array(rng.integers(0, len(items), size=len(rows))))))
        female = rng.random(n) < 0.5
        name_pieces: list[tuple[np.ndarray, pa.Array]] = []
        for li in np.unique(lidx):
            f, m = self.names[int(li)]
            for is_f, pool in ((True, f), (False, m)):
                rows = np.flatnonzero((lidx == li) & (female == is_f))
                if len(rows):
                    name_pieces.append(
                        (rows, pool.take(pa.array(rng.integers(0, len(pool), size=len(rows)))))
                    )
        gender = pa.array(np.where(female, 0, 1))
        dyn: dict[str, pa.Array] = {
            "name": stitch(name_pieces, n),
            "item": stitch(item_pieces, n),
            "pron": _PRON.take(gender),
            "Pron": _PRON_CAP.take(gender),
            "poss": _POSS.take(gender),
            "Poss": _POSS_CAP.take(gender),
        }
        for key, val in nums.items():
            dyn[key] = pc.cast(pa.array(val), pa.string())
        lidx_t = lidx.astype(np.int64)
        text = self.text_fs.render(t, lidx_t, rng, dyn)
        # Worked solutions cost a second render; only grading and response pools need them.
        sol = self.sol_fs.render(t, lidx_t, rng, dyn) if solution else empty_strings(n)
        return Problems(text, dyn["ans"], sol, np.full(n, CAP["math"], dtype=np.int8))


_COMMA = pa.scalar(", ")
_SEQ_Q = pa.scalar("What number comes next in the sequence ")
_SEQ_END = pa.scalar(", ...?")
_SEQ_NEXT = pa.scalar(", so the next term is ")
_DOT = pa.scalar(".")


def _sequences(n: int, rng: np.random.Generator) -> Problems:
    """ "What comes next" number sequences of five kinds, answer computed."""
    kind = rng.integers(0, 5, size=n)
    a0 = rng.integers(1, 30, size=n).astype(np.int64)
    d = rng.integers(2, 12, size=n).astype(np.int64)
    r = rng.integers(2, 4, size=n).astype(np.int64)
    k = np.arange(6, dtype=np.int64)[None, :]
    terms = np.where(
        (kind == 0)[:, None],
        a0[:, None] + d[:, None] * k,
        np.where(
            (kind == 1)[:, None],
            a0[:, None] * r[:, None] ** k,
            np.where(
                (kind == 2)[:, None],
                (k + d[:, None] // 2) ** 2,
                np.where((kind == 3)[:, None], a0[:, None] + d[:, None] * k * (k + 1) // 2, a0[:, None] * 0),
            ),
        ),
    )
    # kind 4: Fibonacci-like with two random seeds
    fib = np.zeros((n, 6), dtype=np.int64)
    fib[:, 0] = a0 % 9 + 1
    fib[:, 1] = d
    for j in range(2, 6):
        fib[:, j] = fib[:, j - 1] + fib[:, j - 2]
    terms = np.where((kind == 4)[:, None], fib, terms)
    cols = [pc.cast(pa.array(terms[:, j]), pa.string()) for j in range(6)]
    seq = pc.binary_join_element_wise(*cols[:5], _COMMA)
    text = pc.binary_join_element_wise(_SEQ_Q, seq, _SEQ_END, NO_SEP)
    rule = pa.array(
        np.array(
            [
                "Each term adds the same amount",
                "Each term is multiplied by the same factor",
                "The terms are consecutive perfect squares",
                "The differences grow by a constant step",
                "Each term is the sum of the two before it",
            ]
        )[kind],
        type=pa.string(),
    )
    sol = pc.binary_join_element_wise(rule, _SEQ_NEXT, cols[5], _DOT, NO_SEP)
    return Problems(text, cols[5], sol, np.full(n, CAP["reasoning"], dtype=np.int8))


class ProblemBank:
    """Mixes problem sources per row; corpus sources fall back to built-in ones when absent."""

    #: Question forms x concepts: a generated, answer-free source so a curriculum sweep has
    #: hundreds of distinct conceptual questions without a corpus.
    CONCEPT_FORMS: tuple[str, ...] = (
        "What is {c}?",
        "Why does {c} matter?",
        "Give a concrete example of {c}.",
        "What problem does {c} solve?",
        "What are common misconceptions about {c}?",
        "How would you explain {c} to a beginner?",
        "What are the limitations of {c}?",
        "How has our understanding of {c} changed over time?",
    )

    SOURCES: tuple[str, ...] = (
        "math",
        "seq",
        "logic",
        "knowledge",
        "code",
        "gsm8k",
        "humaneval",
        "arena",
        "tqa",
        "concept",
    )
    FALLBACK: ClassVar[dict[str, str]] = {
        "gsm8k": "math",
        "humaneval": "code",
        "arena": "logic",
        "tqa": "knowledge",
    }

    def __init__(self, store: VocabStore, langs: Sequence[str], corpus_pools: dict[str, _Pool] | None = None):
        self.math = _MathGenerator(store, langs)
        self.pools: dict[str, _Pool] = {
            "logic": _Pool(
                [q for q, _ in LOGIC],
                [a for _, a in LOGIC],
                [f"The answer is {a}." for _, a in LOGIC],
                [CAP["reasoning"]] * len(LOGIC),
            ),
            "knowledge": _Pool(
                [q for q, _ in KNOWLEDGE],
                [a for _, a in KNOWLEDGE],
                [f"{a}." for _, a in KNOWLEDGE],
                [CAP["knowledge"]] * len(KNOWLEDGE),
            ),
            "code": _Pool(
                [f"Write a Python function `{sig}` that {desc}." for desc, sig, _ in CODE_TASKS],
                [sol for _, _, sol in CODE_TASKS],
                [f"```python\n{sol}\n```" for _, _, sol in CODE_TASKS],
                [CAP["coding"]] * len(CODE_TASKS),
            ),
        }
        concepts = [c for c in (*TOPICS_KNOWLEDGE, *CS_CONCEPTS)]
        questions = [form.replace("{c}", c) for form in self.CONCEPT_FORMS for c in concepts]
        self.pools["concept"] = _Pool(
            questions, [""] * len(questions), [""] * len(questions), [CAP["knowledge"]] * len(questions)
        )
        self.pools.update(corpus_pools or {})

    def has(self, source: str) -> bool:
        return source in self.pools or source in ("math", "seq")

    def resolve(self, source: str) -> str:
        while not self.has(source):
            source = self.FALLBACK[source]
        return source

    def sample(
        self,
        mix: Sequence[tuple[str, float]],
        n: int,
        rng: np.random.Generator,
        lidx: np.ndarray,
        solution: bool = True,
    ) -> Problems:
        """n problems drawn from the weighted source ``mix``, in row order (``solution=False``
        skips rendering worked solutions where the caller does not use them)."""
        weights: dict[str, float] = {}
        for src, w in mix:
            key = self.resolve(src)
            weights[key] = weights.get(key, 0.0) + w
        names = list(weights)
        p = np.array([weights[s] for s in names], dtype=np.float64)
        which = (
            rng.choice(len(names), size=n, p=p / p.sum()) if len(names) > 1 else np.zeros(n, dtype=np.int64)
        )
        pieces: list[tuple[np.ndarray, Problems]] = []
        for si in range(len(names)):
            rows = np.flatnonzero(which == si)
            if len(rows) == 0:
                continue
            src = names[si]
            if src == "math":
                prob = self.math.sample(len(rows), rng, lidx[rows], solution)
            elif src == "seq":
                prob = _sequences(len(rows), rng)
            else:
                prob = self.pools[src].sample(len(rows), rng)
            pieces.append((rows, prob))
        cap = np.zeros(n, dtype=np.int8)
        for rows, prob in pieces:
            cap[rows] = prob.cap
        return Problems(
            stitch([(r, pr.text) for r, pr in pieces], n),
            stitch([(r, pr.answer) for r, pr in pieces], n),
            stitch([(r, pr.solution) for r, pr in pieces], n),
            cap,
        )
