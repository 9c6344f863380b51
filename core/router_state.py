"""The Router's heavy state and how it is assembled (lazily, on the first decision).

``build_state`` merges what a loader provides (the bundled default, a saved directory) with what the
caller passed explicitly, and picks the quality predictor: the fitted one, or the kNN predictor
rebuilt with the router's own ``k``/``lam``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .analyzer import TaskAnalyzer
    from .embedding import Embedder
    from .index import OutcomeIndex
    from .predictors import QualityPredictor
    from .registry import ModelCard, Registry

__all__ = ["build_state", "domain_matrix", "latency_group"]


class _State:
    """Everything heavy, loaded once."""

    def __init__(
        self,
        registry: Registry,
        analyzer: TaskAnalyzer,
        index: OutcomeIndex | None,
        embedder: Embedder,
        pool: list[str],
        predictor: QualityPredictor,
    ) -> None:
        self.registry = registry
        self.analyzer = analyzer
        self.index = index
        self.embedder = embedder
        self.pool = pool
        self.predictor = predictor


def build_state(router: Any, loader: Callable[[], dict[str, Any]] | None, given: dict[str, Any]) -> _State:
    """Load the heavy parts once: registry, analyzer, store, embedder, pool and predictor."""
    from .analyzer import TaskAnalyzer
    from .embedding import get_default_embedder
    from .predictors import QualityPredictor
    from .registry import Registry

    parts = dict(loader()) if loader else {}
    for key, value in given.items():
        if value is not None:
            parts[key] = value
    registry = parts.get("registry") or Registry.default()
    index = parts.get("index")
    pool = parts.get("models")
    if not pool:
        pool = list(index.models) if index is not None else [
            c.name for c in registry if c.kind in ("api", "chat")
        ]
    chosen = parts.get("predictor")
    if chosen is None or getattr(chosen, "kind", "knn") == "knn":
        predictor = QualityPredictor(index, lam=router.lam, k=router.k)
        predictor.selection = getattr(chosen, "selection", None)
    else:
        predictor = chosen
    return _State(
        registry=registry,
        analyzer=parts.get("analyzer") or TaskAnalyzer.default(),
        index=index,
        embedder=parts.get("embedder") or get_default_embedder(),
        pool=[registry.resolve(m).name for m in pool],
        predictor=predictor,
    )


def latency_group(card: ModelCard) -> str | None:
    """Latency group of a card: its provider, unless nothing is known about it."""
    return None if card.provider in ("", "unknown") else card.provider


def domain_matrix(cards: Sequence[ModelCard], domains: Sequence[str]) -> np.ndarray:
    uniq, inv = np.unique(np.asarray(domains, dtype=str), return_inverse=True)
    table = np.array(
        [[c.accuracy_by_domain.get(d, np.nan) for c in cards] for d in uniq.tolist()],
        dtype=np.float32,
    )
    return table[inv.reshape(-1)]
