"""Each candidate's expected answer length for a prompt, which its cost and latency estimates use.

The analyzer gives one answer length per task type (``output_tokens`` in its metadata): measured for
``math`` and ``knowledge`` (the median stored answer of MMLU-Pro's outcomes) and an assumed table for the
others. A card's ``verbosity`` scales it per model. On the bundled cards verbosity was measured on
MMLU-Pro's 5-shot chain-of-thought answers, and the bundled analyzer calls 97 % of those prompts
``math`` or ``knowledge`` (a 600-prompt sample of the train split: 61.5 % knowledge, 35.7 % math;
mean probability of the two 0.92). So it says how long a model's worked answer to such a question is:
gpt-4o writes 4.0 times the pooled median there (354 tokens against 79), because it reasons step by
step where most of the 31 models answer in a line. Nothing measured says it writes four times as much
for a haiku, an email or a chat turn, and applying it there made gpt-4o's estimate for a haiku
0.57 s + 496 x 4.03 tokens / 64 tokens/s = 31.6 s.

So a card's verbosity applies in proportion to the prompt's probability of being a task type it was
measured on: the multiplier is ``verbosity ** p`` with ``p`` = P(math) + P(knowledge) for the bundled
cards' MMLU-Pro measurement (about 1 on MMLU-Pro-like prompts, so the bundled router's MMLU-Pro figures
are unchanged; about 0 on a haiku, so 8.4 s). Verbosity that :meth:`Router.fit` measured on the
caller's own outcomes covers whatever tasks those outcomes hold and applies in full.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optiroute.catalog.registry import ModelCard
from optiroute.catalog.table import derived

__all__ = ["MMLU_PRO_TASKS", "answer_tokens", "verbosity_reach"]

#: Task types the bundled cards' verbosity was measured on (MMLU-Pro prompts as the analyzer labels them).
MMLU_PRO_TASKS = ("math", "knowledge")


def _measured_on_own_data(card: ModelCard) -> bool:
    return str(card.sources.get("verbosity", "")).startswith("Router.fit")


def verbosity_reach(cards: Sequence[ModelCard], task_probs: np.ndarray, task_types: Sequence[str]) -> np.ndarray:
    """(n_prompts, n_models) share in 0..1 of each card's verbosity that applies to each prompt."""
    cols = [i for i, t in enumerate(task_types) if t in MMLU_PRO_TASKS]
    probs = np.asarray(task_probs, dtype=np.float32)
    share = np.clip(probs[:, cols].sum(axis=1), 0.0, 1.0) if cols else np.zeros(len(probs), dtype=np.float32)
    full = derived(cards, "verbosity_own", lambda: np.array([_measured_on_own_data(c) for c in cards], dtype=bool))
    return np.where(full[None, :], np.float32(1.0), share[:, None]).astype(np.float32)


def answer_tokens(out_tok: np.ndarray, cards: Sequence[ModelCard], task_probs: np.ndarray,
                  task_types: Sequence[str]) -> np.ndarray:
    """(n_prompts, n_models) expected answer tokens: the analyzer's estimate times ``verbosity ** reach``."""
    verbosity = derived(cards, "verbosity", lambda: np.array([c.verbosity for c in cards], dtype=np.float32))
    reach = verbosity_reach(cards, task_probs, task_types)
    return (np.asarray(out_tok, dtype=np.float32)[:, None] * np.power(verbosity[None, :], reach)).astype(np.float32)
