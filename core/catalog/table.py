"""A candidate list that keeps what was derived from its cards, so each decision does not redo it.

Routing one prompt reads the same facts of every candidate each time: prices and their tiers, latency
figures, context windows, verbosity, per-domain accuracy, the five card metrics. Read card by card
they cost about a quarter of a short prompt's decision outside the encode (41 candidates). A
:class:`CardTable` is the candidate list itself (a tuple of cards, so every function that takes cards
takes it) plus a memo of arrays derived from those cards alone; :func:`derived` returns a value from
the memo when the cards come as a table and computes it when they come as a plain list, so callers
that route once (tests, scripts) need nothing new.

A table is immutable and its memo is only valid while its cards do not change. The router builds one
per candidate list and drops them whenever a card is edited or a registry adds, removes or replaces
one (:func:`optiroute.catalog.registry.card_revision`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from optiroute.catalog.registry import ModelCard

__all__ = ["CardTable", "card_names", "derived", "keyed_rows"]

T = TypeVar("T")


class CardTable(tuple[ModelCard, ...]):
    """Candidate cards, in column order, with a memo of values derived from them.

    The values stored through :meth:`derived` must depend on the cards only (never on a prompt or a
    call's constraints unless those are part of the key), and callers must not modify them.
    """

    _memo: dict[Any, Any]

    def __new__(cls, cards: Iterable[ModelCard] = ()) -> CardTable:
        table = super().__new__(cls, cards)
        table._memo = {}
        return table

    def derived(self, key: Any, build: Callable[[], T]) -> T:
        """The value stored under ``key``, built by ``build()`` on first use (two threads may both
        build it; either result is the same, and the last one stays)."""
        try:
            value: T = self._memo[key]
        except KeyError:
            value = self._memo[key] = build()
        return value


def derived(cards: Sequence[ModelCard], key: Any, build: Callable[[], T]) -> T:
    """``build()``, remembered under ``key`` when ``cards`` is a :class:`CardTable`."""
    if isinstance(cards, CardTable):
        return cards.derived(key, build)
    return build()


def card_names(cards: Sequence[ModelCard]) -> list[str]:
    """The cards' names in column order (shared by a table's callers: do not modify)."""
    return derived(cards, "names", lambda: [c.name for c in cards])


def keyed_rows(keys: Sequence[str], memo: dict[str, np.ndarray], build: Callable[[str], np.ndarray]) -> np.ndarray:
    """(len(keys), m): the row of each key (a prompt's domain, say), each distinct key's row built
    once and kept in ``memo`` (a dict from :func:`derived`, so rows outlive the call)."""
    uniq = list(dict.fromkeys(keys))
    for k in uniq:
        if k not in memo:
            memo[k] = build(k)
    if len(uniq) == 1:
        return np.tile(memo[uniq[0]], (len(keys), 1))
    pos = {k: i for i, k in enumerate(uniq)}
    inverse = np.fromiter((pos[k] for k in keys), dtype=np.intp, count=len(keys))
    return np.stack([memo[k] for k in uniq])[inverse]
