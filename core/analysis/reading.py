"""How much of a prompt the encoder reads: all of a short one, the head and the tail of a long one.

MiniLM's cost grows with the word pieces it reads (a 256-piece text takes about twice a 128-piece
one), and a long prompt's routing signal sits at its two ends: what is asked of the model (the
start: an instruction, a system preamble, the question stem) and the actual question (the end: the
latest user turn, the options of a multiple-choice question). So a text of at most ``max_tokens``
word pieces is read whole, and a longer one as its first ``head`` and its last
``long_tokens - 2 - head`` word pieces (plus ``[CLS]`` and ``[SEP]``), the head-and-tail truncation
that Sun et al. (2019, "How to Fine-Tune BERT for Text Classification?") found best for long texts.

Chosen by measurement: reading long prompts (more than 256 pieces) as 32 + 94 pieces left the
router's ``optiroute bench`` AIQ within 0.0005 of reading their first 256 on every shared set
(``benchmarks/reading_window.py``) and halves the encode of a long chat prompt
(``benchmarks/encoder_backends.py``). Reading *every* text at 128 pieces, the length MiniLM was
trained at, would speed MMLU-style batches too but cuts most multiple-choice prompts, which are
130-250 pieces long, and moved more decisions against torch (``encoder_backends.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optiroute.errors import InvalidInputError

__all__ = ["DEFAULT_WINDOW", "ReadingWindow"]


@dataclass(frozen=True)
class ReadingWindow:
    """Which word pieces of a tokenised text the encoder reads.

    Attributes:
        max_tokens: a text of at most this many word pieces (``[CLS]`` and ``[SEP]`` included) is
            read whole.
        long_tokens: a longer text is read as this many word pieces (``None``: cut at ``max_tokens``
            from the end, as sentence-transformers does).
        head: of those, the text's first ``head`` word pieces; the rest come from its end.
    """

    max_tokens: int = 256
    long_tokens: int | None = 128
    head: int = 32

    def __post_init__(self) -> None:
        if not 4 <= self.max_tokens <= 512:
            raise InvalidInputError(f"max_tokens must be in [4, 512], got {self.max_tokens}.")
        if self.long_tokens is not None:
            if not 4 <= self.long_tokens <= self.max_tokens:
                raise InvalidInputError(
                    f"long_tokens must be in [4, max_tokens={self.max_tokens}], got {self.long_tokens}.")
            if not 0 <= self.head <= self.long_tokens - 3:
                raise InvalidInputError(
                    f"head must leave room for the tail: 0 <= head <= {self.long_tokens - 3}, got {self.head}.")

    @property
    def tag(self) -> str:
        """Short label of the window for embedder names (embedding caches key on it)."""
        if self.long_tokens is None:
            return str(self.max_tokens)
        return f"{self.max_tokens}>{self.long_tokens}h{self.head}"

    def select(self, ids: Sequence[int]) -> list[int]:
        """The word-piece ids read of one text tokenised whole (``[CLS] ... [SEP]``)."""
        n = len(ids)
        if n <= self.max_tokens:
            return list(ids)
        if self.long_tokens is None:
            return [*ids[: self.max_tokens - 1], ids[-1]]
        tail = self.long_tokens - 2 - self.head
        # ids[0] is [CLS] and ids[-1] is [SEP]: keep both around the head and the tail.
        return [*ids[: 1 + self.head], *ids[n - 1 - tail :]]

    def is_cut(self, n_tokens: int) -> bool:
        """Whether a text of ``n_tokens`` word pieces is read only in part."""
        return n_tokens > self.max_tokens

    def word_budget(self) -> tuple[int, int]:
        """``(head, tail)`` words that hold every word piece this window reads of a longer text.

        A word is at least one word piece, so a text cut to its first ``head`` and last ``tail``
        words (``head + tail >= max_tokens``: still too long to be read whole) is read exactly as the
        whole text would be; the cut bounds the tokenizer's work on a 100,000-word paste.
        """
        if self.long_tokens is None:
            return self.max_tokens, 0
        head = max(self.head, self.max_tokens // 4)
        return head, max(self.long_tokens - 2 - self.head, self.max_tokens - head)


#: The window both encoder backends use unless told otherwise.
DEFAULT_WINDOW = ReadingWindow()
