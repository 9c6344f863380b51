"""Scoring a candidate's answers during onboarding: reference answers or a routed LLM judge.

Multiple-choice references (one letter A-J, as in MMLU-Pro) are compared with the letter the answer
commits to; other references by normalised exact match. Without a reference, a judge grades 0..10:
the router itself picks the judge among its own models under ``quality-first`` (never the model being
onboarded), so the judge is the best model the caller already trusts.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from optiroute.errors import InvalidInputError

if TYPE_CHECKING:
    from optiroute.router.router import Router

__all__ = ["JUDGE_PROMPT", "JudgeFn", "choice_letter", "parse_grade", "reference_score"]

JudgeFn = Callable[[str, str], str]

#: What the judge is asked; ``{question}`` and ``{answer}`` are filled in.
JUDGE_PROMPT = (
    "You are grading an AI assistant's answer. Rate its correctness and helpfulness from 0 (useless or "
    "wrong) to 10 (fully correct and helpful). Reply with the grade only, as 'Grade: N'.\n\n"
    "[Question]\n{question}\n\n[Answer]\n{answer}\n"
)


_LETTER_PATTERNS = tuple(re.compile(p, re.MULTILINE) for p in (
    r"(?i:answer is)\s*:?\s*\(?([A-J])\b", r"(?i:answer)\s*:\s*\(?([A-J])\b", r"^\s*\(?([A-J])[\).:]",
    r"\(([A-J])\)", r"\b([A-J])\b",
))


def choice_letter(answer: str) -> str | None:
    """The multiple-choice letter (A-J) an answer commits to, or ``None``.

    Tries MMLU-Pro's "The answer is (X)" first, then "Answer: X", a leading "X." / "(X)", any "(X)",
    and finally the first standalone capital A-J.
    """
    for pat in _LETTER_PATTERNS:
        m = pat.search(answer)
        if m:
            return m.group(1)
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s.]", "", text.lower())).strip().rstrip(".")


def reference_score(answer: str, reference: str) -> float:
    """1.0 if ``answer`` matches ``reference``: letter for one-letter references, else normalised
    exact match (or the reference as the answer's last line)."""
    ref = reference.strip()
    if re.fullmatch(r"[A-Ja-j]", ref):
        return float(choice_letter(answer) == ref.upper())
    lines = [ln for ln in answer.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return float(_norm(answer) == _norm(ref) or _norm(last) == _norm(ref))


def parse_grade(text: str) -> float | None:
    """A judge's 0..10 grade scaled to 0..1 (``Grade: 7``, ``7/10``, ``7``), or ``None``."""
    m = re.search(r"grade\s*[:=]?\s*(\d+(?:\.\d+)?)", text, flags=re.IGNORECASE) or re.search(
        r"(\d+(?:\.\d+)?)\s*(?:/\s*10|out of 10)", text) or re.search(r"(?<![\d.])(\d+(?:\.\d+)?)", text)
    if not m:
        return None
    g = float(m.group(1))
    return g / 10.0 if 0.0 <= g <= 10.0 else None


def _judge(router: Router, model: str, question: str, answer: str, judge_fn: JudgeFn) -> tuple[float | None, str]:
    """Grade with a judge the router itself chooses (quality-first, the new model excluded)."""
    others = [m for m in router.models if m != model]
    if not others:
        raise InvalidInputError("The router has no other model to act as judge; pass references or a scorer.")
    prompt = JUDGE_PROMPT.format(question=question, answer=answer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a low-confidence fallback is still a valid judge choice
        judge = router.decide(question, preferences="quality-first", candidates=others).model
    return parse_grade(judge_fn(judge, prompt)), f"judge:{judge}"
