"""Text repeated across a router's prompts (a system prompt, a few-shot prefix, a template around the
question), learned when the router is fitted and removed from what is embedded.

Why: MiniLM reads 256 word pieces, and long prompts are pruned to their first and last words
(:func:`optiroute.analysis.embedding.prune_text`). When every prompt carries the same 1,000-token
system prompt or the same five worked examples, the embedder sees mostly that shared part, every
prompt gets nearly the same vector and routing degrades to one model. What tells prompts apart is
what varies, so that is what the router embeds and analyses; the token estimate of the
context-window constraint and the cost still count the whole prompt.

What is learned (:meth:`SharedText.learn`, from the training prompts):

- **shared lines**: lines (whitespace-normalised, blank lines ignored) that open (close) more than
  ``threshold`` of the prompts, i.e. lie in their leading (trailing) run of lines shared by more than
  ``threshold`` of the prompts; a prompt's leading and trailing runs of such lines (and the blank
  lines among them) are removed. Lines in the middle of a prompt are kept, even when shared, so an
  answer option or a heading inside the question stays.
- **a shared opening and closing** inside the first and last kept line: the longest start (end) at a
  word boundary, at least :data:`MIN_INLINE_CHARS` characters, that more than ``threshold`` of the
  prompts share after their shared lines are removed (a template with the question on the same line,
  ``"You are a helpful assistant. Question: {q} Answer briefly."``).

The threshold is a strict majority (:data:`MAJORITY`): text in at most half of the prompts is left
alone, because it is what tells those prompts apart from the rest (one of two templates, one task's
instruction). A prompt that would be left with no text (it *is* the shared text) is routed on its
original text. Fewer than :data:`MIN_PROMPTS` training prompts learn nothing: with three prompts,
two sharing a line is no evidence of a template.

Learning is one pass over the prompts' lines plus a sort; stripping is a line split and set lookups
(microseconds per prompt). The learned text is saved as JSON in the router's manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = ["MAJORITY", "MIN_INLINE_CHARS", "MIN_PROMPTS", "SharedText"]

#: A line (or an opening) is shared when MORE than this share of the training prompts has it.
MAJORITY = 0.5
#: Fewer training prompts than this learn nothing.
MIN_PROMPTS = 10
#: A shared opening or closing inside a line shorter than this is natural language ("What is the"),
#: not a template, and is kept.
MIN_INLINE_CHARS = 24
#: Caps of what a (possibly hostile) manifest may hold.
_MAX_LINES = 10_000
_MAX_CHARS = 1_000_000


def _norm(line: str) -> str:
    return " ".join(line.split())


def _common_start(texts: Sequence[str], need: int) -> str:
    """The longest start of at least ``need`` of ``texts``, cut back to end at whitespace.

    Strings sharing a start are contiguous once sorted, so the longest start shared by ``need`` of
    them is the longest common prefix of the first and last of some window of ``need`` sorted strings.
    """
    if need < 1 or len(texts) < need:
        return ""
    ordered = sorted(texts)
    best = ""
    for i in range(len(ordered) - need + 1):
        a, b = ordered[i], ordered[i + need - 1]
        lo, hi = len(best), min(len(a), len(b))
        if a[: lo + 1] != b[: lo + 1]:
            continue  # cannot beat the best so far
        while lo < hi:  # binary search on slice equality (C-speed comparisons)
            mid = (lo + hi + 1) // 2
            if a[:mid] == b[:mid]:
                lo = mid
            else:
                hi = mid - 1
        best = a[:lo]
    cut = max(best.rfind(" "), best.rfind("\n"), best.rfind("\t"))
    start = best[: cut + 1] if cut >= 0 else ""
    return start if len(start.strip()) >= MIN_INLINE_CHARS else ""


class SharedText(BaseModel):
    """What a router's prompts share, learned at fit time, and how to remove it from one prompt.

    Attributes:
        leading: shared lines (whitespace-normalised) removed from the start of a prompt: lines that
            open more than ``threshold`` of the training prompts (within their leading shared run).
        trailing: the same for the end of a prompt. Kept apart from ``leading`` so that a line of a
            few-shot prefix (an example's ``"J. 10"`` option) is never cut from the end of a question.
        prefix: a shared opening removed from the start of the first kept line ("" for none).
        suffix: a shared closing removed from the end of the last kept line ("" for none).
        threshold: the share of prompts a line or opening had to exceed.
        prompts: how many training prompts it was learned from.
        stripped: how many of them had text removed.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    leading: list[str] = Field(default_factory=list, max_length=_MAX_LINES)
    trailing: list[str] = Field(default_factory=list, max_length=_MAX_LINES)
    prefix: str = Field(default="", max_length=_MAX_CHARS)
    suffix: str = Field(default="", max_length=_MAX_CHARS)
    threshold: float = Field(default=MAJORITY, ge=MAJORITY, lt=1.0)
    prompts: int = Field(default=0, ge=0)
    stripped: int = Field(default=0, ge=0)

    _head: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _tail: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("leading", "trailing")
    @classmethod
    def _lines(cls, value: list[str]) -> list[str]:
        if sum(len(v) for v in value) > _MAX_CHARS:
            raise ValueError(f"the shared lines hold more than {_MAX_CHARS} characters")
        if any(not v or v != _norm(v) for v in value):
            raise ValueError("a shared line is empty or not whitespace-normalised")
        return value

    def model_post_init(self, context: object, /) -> None:
        self._head, self._tail = frozenset(self.leading), frozenset(self.trailing)

    @classmethod
    def learn(cls, texts: Sequence[str], *, threshold: float = MAJORITY) -> SharedText:
        """Learn what more than ``threshold`` of ``texts`` share (see the module docstring).

        Two passes: lines in more than ``threshold`` of the prompts anywhere are candidates; of
        those, a line is *leading* (*trailing*) when it lies in the leading (trailing) run of shared
        lines of more than ``threshold`` of the prompts.

        Args:
            texts: the training prompts (the text the router analyses, e.g. the routed strings).
            threshold: a share in [0.5, 1); the default, a strict majority, is what this library
                measured and recommends (``benchmarks/results/shared_prefix.md``).
        """
        if not MAJORITY <= threshold < 1.0:
            raise ValueError(f"threshold must be in [{MAJORITY}, 1), got {threshold!r}")
        texts = [t for t in texts if isinstance(t, str)]
        n = len(texts)
        if n < MIN_PROMPTS:
            return cls(threshold=threshold, prompts=n)
        need = int(threshold * n) + 1  # strictly more than threshold * n
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update({k for k in map(_norm, t.splitlines()) if k})
        common = frozenset(k for k, c in counts.items() if c >= need)
        heads: Counter[str] = Counter()
        tails: Counter[str] = Counter()
        for t in texts:
            _, head, tail = _strip_lines(t, common, common)
            heads.update(set(head))
            tails.update(set(tail))
        lead = frozenset(k for k, c in heads.items() if c >= need)
        trail = frozenset(k for k, c in tails.items() if c >= need)
        rest = [_strip_lines(t, lead, trail)[0] for t in texts]
        prefix = _common_start(rest, need)
        suffix = _common_start([r[::-1] for r in rest], need)[::-1]
        learned = cls(leading=sorted(lead), trailing=sorted(trail), prefix=prefix, suffix=suffix,
                      threshold=threshold, prompts=n)
        stripped = sum(learned.varying(t) != t for t in texts)
        return learned.model_copy(update={"stripped": stripped})

    @property
    def empty(self) -> bool:
        """Whether nothing was learned (every prompt is embedded as given)."""
        return not (self.leading or self.trailing or self.prefix or self.suffix)

    def varying(self, text: str) -> str:
        """``text`` without the shared leading and trailing text: what the router embeds. The lines
        kept are kept byte for byte (a question pasted after a system prompt comes back exactly as
        it was); the original text when nothing else is left (a prompt that *is* the shared text is
        routed on all of it)."""
        if self.empty:
            return text
        kept = _strip_lines(text, self._head, self._tail)[0]
        if self.prefix and kept.startswith(self.prefix) and kept[len(self.prefix):].strip():
            kept = kept[len(self.prefix):]
        if self.suffix and kept.endswith(self.suffix) and kept[: -len(self.suffix)].strip():
            kept = kept[: -len(self.suffix)]
        return kept if kept.strip() else text

    def varying_all(self, texts: Sequence[str]) -> list[str]:
        """:meth:`varying` of each text."""
        return [self.varying(t) for t in texts]

    def summary(self) -> str:
        """One line for people: how much is removed, from how many training prompts (never the text)."""
        if self.empty:
            return f"no shared text (learned from {self.prompts} prompts)"
        lines = set(self.leading) | set(self.trailing)
        chars = sum(len(x) for x in lines) + len(self.prefix) + len(self.suffix)
        return (f"{len(lines)} shared lines and {len(self.prefix) + len(self.suffix)} characters of shared "
                f"opening/closing ({chars} characters) removed from {self.stripped} of {self.prompts} training "
                f"prompts (shared by more than {self.threshold:.0%} of them)")


def _strip_lines(text: str, head: frozenset[str], tail: frozenset[str]) -> tuple[str, list[str], list[str]]:
    """``text`` without its leading run of ``head`` (and blank) lines and its trailing run of ``tail``
    (and blank) lines, and the keys of the lines removed from each end; ``text`` itself (nothing
    removed) when that would leave nothing."""
    if not head and not tail:
        return text, [], []
    lines = text.splitlines(keepends=True)
    keys = [_norm(x) for x in lines]
    i, j = 0, len(lines)
    while i < j and (not keys[i] or keys[i] in head):
        i += 1
    while j > i and (not keys[j - 1] or keys[j - 1] in tail):
        j -= 1
    if i == j:
        return text, [], []
    kept = "".join(lines[i:j])
    if j < len(lines):  # the kept lines as they were: only the break before the removed ones goes
        kept = kept.rstrip("\r\n")
    return kept, [k for k in keys[:i] if k], [k for k in keys[j:] if k]
