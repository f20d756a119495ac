"""Rule rewards: scores the driver gives decoded responses against reference answers.

A reward is named the way a user writes it on the command line: ``numeric``, ``math``,
``format``, ``exact``, or a weighted sum of those such as ``math+0.1*format``. One call
scores a whole batch::

    score("math+0.1*format", responses, references)  # -> [1.1, 0.0, ...]

Every rule returns a float and never raises on a response: a response with no answer to
find, or one the math parser cannot read, scores 0. Only the *name* can be wrong, and an
unknown one is a :class:`~planner.errors.PlanError` naming the known ones.

What counts as the response's answer (:func:`answer_text`):

- text after an end-of-sequence marker (``</s>``, ``<|im_end|>``, ...) is not part of the
  response: responses decoded with special tokens kept still score right;
- with a ``</think>``, only what follows the last one is the answer (numbers inside the
  reasoning do not count), and an unclosed ``<think>`` (reasoning cut off by the length
  limit) has no answer at all, as in DeepSeek-R1's rule rewards (Guo et al. 2025, §2.2.2).

The ``format`` reward needs ``<think>``/``</think>`` in the text: decode with
``skip_special_tokens=False`` when those tags are special tokens (they are in
:mod:`executor.tiny_model`).

No torch here, and ``math_verify`` is imported inside :func:`math_reward` only, so that
importing this module costs nothing on the planning path.
"""

from __future__ import annotations

import math
import re
import threading
from enum import Enum
from typing import Callable, Sequence

from planner.errors import PlanError

RewardFn = Callable[[str, str], float]
"""``(response, reference) -> score``."""

END_MARKERS = ("</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<eos>")
"""End-of-sequence tokens of the common tokenizers; the response ends at the first one."""
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


# ---- finding the answer --------------------------------------------------------------------
def strip_end(response: str) -> str:
    """The response up to its first end-of-sequence marker."""
    cut = min((i for i in (response.find(m) for m in END_MARKERS) if i >= 0), default=len(response))
    return response[:cut]


def answer_text(response: str) -> str | None:
    """The part of a response that holds its answer, or None when it has none (see the module doc)."""
    text = strip_end(response)
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        return text[close + len(THINK_CLOSE):]
    if THINK_OPEN in text:
        return None
    return text


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``), braces balanced; None if there is none."""
    start = max(text.rfind(r"\boxed{"), text.rfind(r"\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i]
        i += 1
    return None  # unbalanced: the box was cut off


def final_answer(response: str) -> str | None:
    r"""The answer a response commits to, as text: the last ``\boxed{...}``, else what follows
    the last ``####`` (GSM8K's convention, Cobbe et al. 2021), else the whole answer text
    (whose last number :func:`parse_number` takes). None when there is no answer, or when
    the last box is cut off."""
    text = answer_text(response)
    if text is None:
        return None
    if r"\boxed{" in text or r"\fbox{" in text:
        return last_boxed(text)  # None when the box was cut off: a prefix of the answer is not one
    if "####" in text:
        after = text.rsplit("####", 1)[1].strip()
        return after.splitlines()[0] if after else None
    return text


_NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
"""A decimal number, with optional thousands separators and exponent: ``1,234.5``, ``3``, ``.5``, ``1e-3``."""
_NUMBER = re.compile(rf"(?<![\w.])-?(?:{_NUM})")
"""A number not glued to a word or a digit before it: in ``3-5`` the last number is 5, not -5."""
_FRACTION = re.compile(rf"(?<![\w.])(-?)({_NUM})\s*/\s*({_NUM})(?![\w.])")
_LATEX_FRAC = re.compile(r"(-?)\\[dt]?frac\{\s*([\d.,]+)\s*\}\{\s*([\d.,]+)\s*\}")
_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^}]*)\}")
_DROP = re.compile(r"\\[!,;:]|\^\{?\\circ\}?")
"""LaTeX spacing (``1\\,234``) and degrees: removed, so the digits around them join up."""
_BLANK = re.compile(r"\\?[$%]|\\ ")
"""Currency and percent signs: read as spaces."""


def _to_float(token: str) -> float | None:
    try:
        value = float(token.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _normalise(text: str) -> str:
    text = _TEXT_COMMAND.sub(r" \1 ", text).replace("{,}", ",")
    return _BLANK.sub(" ", _DROP.sub("", text))


def parse_number(text: str | None) -> float | None:
    r"""The last number in ``text`` as a float: decimals with thousands commas, ``a/b`` and
    ``\frac{a}{b}`` fractions; units, ``$`` and ``%`` are ignored. None if there is no number."""
    if text is None:
        return None
    text = _normalise(text)
    found: list[tuple[int, float]] = []  # (end position, value)
    taken: list[tuple[int, int]] = []
    for pattern in (_LATEX_FRAC, _FRACTION):
        for match in pattern.finditer(text):
            num, den = _to_float(match[2]), _to_float(match[3])
            taken.append(match.span())  # a fraction is one number, or none (x/0)
            if num is not None and den:
                found.append((match.end(), (-1.0 if match[1] else 1.0) * num / den))
    for match in _NUMBER.finditer(text):
        value = _to_float(match[0])
        if value is not None and not any(start <= match.start() < end for start, end in taken):
            found.append((match.end(), value))
    return max(found, key=lambda item: item[0])[1] if found else None


def numbers_equal(a: float, b: float, rel_tol: float = 1e-6) -> bool:
    """Equal up to a relative 1e-6: ``3.0`` is ``3``, and float noise in ``0.1 + 0.2`` is forgiven."""
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)


# ---- the rules -----------------------------------------------------------------------------
def numeric_reward(response: str, reference: str) -> float:
    """1.0 when the response's final answer is the reference's number (``3.0`` = ``3``,
    ``1,234`` = ``1234``); 0.0 otherwise, or when either has no number. A reference in
    GSM8K's form (a solution ending in ``#### 72``) is read the same way as a response."""
    got = parse_number(final_answer(response))
    want = parse_number(final_answer(reference))
    return float(got is not None and want is not None and numbers_equal(got, want))


def exact_reward(response: str, reference: str) -> float:
    """1.0 when the response (up to its end marker, surrounding whitespace dropped) is the
    reference string itself: the strictest check, for toy tasks with one-token answers."""
    return float(strip_end(response).strip() == reference.strip())


def math_reward(response: str, reference: str) -> float:
    r"""1.0 when ``math_verify`` finds the response's answer equal to the reference
    (symbolically: ``\frac{2}{4}`` = ``0.5``, sets, intervals, ...); 0.0 when it differs,
    when the response has no answer, or when either side cannot be parsed.

    The reference is tried as given and then wrapped in ``$...$`` (``math_verify`` reads
    bare LaTeX such as ``x^2`` only between delimiters). Outside the main thread the
    parser's signal-based timeouts are turned off, since ``signal.alarm`` works only there.
    """
    text = answer_text(response)
    if text is None or not reference.strip():
        return 0.0
    from math_verify import parse, verify  # lazily: heavy (sympy), and not for the planning path

    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(reference, parsing_timeout=timeout) or parse(f"${reference}$", parsing_timeout=timeout)
        answer = parse(text, parsing_timeout=timeout)
        if not gold or not answer:
            return 0.0
        return float(verify(gold, answer, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - a response the parser chokes on is a wrong answer, not a crash
        return 0.0


_FORMAT = re.compile(r"\s*<think>(?P<thought>(?:(?!<think>|</think>).)+)</think>(?P<answer>.*)", re.DOTALL)


def format_reward(response: str, reference: str = "") -> float:
    """1.0 for ``<think>reasoning</think> answer``: one non-empty think block at the start,
    closed, followed by a non-empty answer with no further tags; 0.0 otherwise. The
    reference is not used (DeepSeek-R1's format reward, Guo et al. 2025, §2.2.2)."""
    match = _FORMAT.fullmatch(strip_end(response))
    if match is None or not match["thought"].strip():
        return 0.0
    answer = match["answer"]
    return float(bool(answer.strip()) and THINK_OPEN not in answer and THINK_CLOSE not in answer)


# ---- the registry --------------------------------------------------------------------------
class RuleReward(str, Enum):
    NUMERIC = "numeric"
    MATH = "math"
    FORMAT = "format"
    EXACT = "exact"


RULES: dict[RuleReward, RewardFn] = {}


def _register(name: RuleReward, fn: RewardFn) -> None:
    if name in RULES:
        raise ValueError(f"rule reward {name.value!r} registered twice")
    RULES[name] = fn


_register(RuleReward.NUMERIC, numeric_reward)
_register(RuleReward.MATH, math_reward)
_register(RuleReward.FORMAT, format_reward)
_register(RuleReward.EXACT, exact_reward)

_TERM = re.compile(r"\s*(?:(?P<weight>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z_]+)\s*")


def parse_reward(name: str) -> tuple[tuple[RuleReward, float], ...]:
    """``"math+0.1*format"`` -> ``((MATH, 1.0), (FORMAT, 0.1))``; a bare name has weight 1."""
    terms = []
    for part in name.split("+"):
        match = _TERM.fullmatch(part)
        rule = match and next((r for r in RuleReward if r.value == match["name"]), None)
        if rule is None:
            raise PlanError(f"unknown reward {name!r}: use one of {', '.join(r.value for r in RuleReward)}, "
                            f"or a weighted sum such as math+0.1*format")
        terms.append((rule, float(match["weight"]) if match["weight"] else 1.0))
    return tuple(terms)


def get_reward(name: str) -> RewardFn:
    """The ``(response, reference) -> score`` function of a reward name (checked now, not per call)."""
    terms = parse_reward(name)
    if len(terms) == 1 and terms[0][1] == 1.0:
        return RULES[terms[0][0]]
    return lambda response, reference: sum(w * RULES[rule](response, reference) for rule, w in terms)


def score(name: str, responses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Score each decoded response against its reference answer with reward ``name``."""
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references")
    fn = get_reward(name)
    return [float(fn(response, reference)) for response, reference in zip(responses, references)]
