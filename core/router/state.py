"""The Router's heavy state and how it is assembled (lazily, on the first decision).

:func:`build_state` merges what a loader provides (the bundled default, a saved directory) with what
the caller passed explicitly, and picks the quality predictor: the fitted one, or the kNN predictor
rebuilt with the router's own ``k``/``lam``. :class:`RouterState` is what the rest of the router and
onboarding work with; it changes only through its methods, which keep the candidate cache in step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.analysis.embedding import Embedder, get_default_embedder
from optiroute.catalog.registry import ModelCard, Registry, card_revision
from optiroute.catalog.table import CardTable
from optiroute.errors import InvalidInputError
from optiroute.quality.base import Predictor
from optiroute.quality.index import OutcomeIndex
from optiroute.quality.knn import QualityPredictor
from optiroute.schema.decision import Neighbour

__all__ = ["RouterState", "build_state"]


class RouterState:
    """Everything heavy, loaded once: registry, analyzer, outcome index, embedder, the default
    candidate pool and the quality predictor."""

    def __init__(
        self,
        registry: Registry,
        analyzer: TaskAnalyzer,
        index: OutcomeIndex | None,
        embedder: Embedder,
        pool: list[str],
        predictor: Predictor,
    ) -> None:
        self.registry = registry
        self.analyzer = analyzer
        self.embedder = embedder
        self._index = index
        self._pool = pool
        self._predictor = predictor
        #: Per candidate list: its cards as a table (which keeps what decisions derive from them) and
        #: their predictor columns; valid while no card changes (``_revision``).
        self._cache: dict[tuple[str, ...], tuple[CardTable, list[int | None]]] = {}
        self._revision = card_revision()
        #: The caller's names of the cached candidate lists and their resolution notes (per decision
        #: they cost more than the rest of the scoring: every name resolved again).
        self._names: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self._lock = threading.Lock()

    @property
    def index(self) -> OutcomeIndex | None:
        """The evaluation store used for kNN prediction, if any."""
        return self._index

    @property
    def pool(self) -> list[str]:
        """The default candidate pool (a copy)."""
        return list(self._pool)

    @property
    def predictor(self) -> Predictor:
        """The quality predictor in use."""
        return self._predictor

    def candidates(self, names: Sequence[str] | None) -> tuple[CardTable, list[int | None]]:
        """The cards of ``names`` (default: the pool), de-duplicated, and their predictor columns.

        The same table comes back for the same names until a card or the registry changes, so what a
        decision derives from the cards is computed once per candidate list.

        Raises:
            InvalidInputError: one string instead of a list, an empty list, or an empty name.
            ModelNotFoundError: a name the registry cannot resolve (strict registries only).
        """
        # Checked before the cache: [] must not hit the default pool's entry (key () -> pool).
        if isinstance(names, (str, bytes)):
            raise InvalidInputError("candidates must be a list of model names, not one string.")
        if names is not None and not isinstance(names, Sequence):
            raise InvalidInputError(f"candidates must be a list of model names (or None), got {type(names).__name__}.")
        if names is not None and len(names) == 0:
            raise InvalidInputError("candidates is empty; pass at least one model name or None.")
        key = tuple(names) if names else tuple(self._pool)
        if self._revision != card_revision():
            self.forget_candidates()
        try:
            hit = self._cache.get(key)
        except TypeError:  # an unhashable name; the check below says which
            hit = None
        if hit is not None:  # only checked names are cached
            return hit
        bad = [n for n in key if not isinstance(n, str) or not n.strip()]
        if bad:
            raise InvalidInputError(f"candidates must be non-empty model names (strings), got {bad[0]!r}.")
        cards = CardTable({c.name: c for c in (self.registry.resolve(n) for n in key)}.values())
        entry = (cards, self._predictor.columns(cards))
        self._cache[key] = entry
        return entry

    def labels(self, names: Sequence[str] | None, cards: Sequence[ModelCard]) -> list[str]:
        """The caller's own name of each card of :meth:`candidates` (the first name that resolved to
        it), so decisions give back the names they were given."""
        return self._resolved_names(names, cards)[0]

    def notes(self, names: Sequence[str] | None) -> list[str]:
        """What the caller should know of how its names resolved (family cards, ambiguous names,
        priors of unknown models), one line each."""
        return self._resolved_names(names, self.candidates(names)[0])[1]

    def _resolved_names(self, names: Sequence[str] | None, cards: Sequence[ModelCard]) -> tuple[list[str], list[str]]:
        key = tuple(names) if names else tuple(self._pool)
        hit = self._names.get(key)
        if hit is not None and len(hit[0]) == len(cards):
            return hit
        first: dict[str, str] = {}
        for n in key:
            first.setdefault(self.registry.resolve(n).name, n)
        labels = [first.get(c.name, c.name) for c in cards]
        notes = list(dict.fromkeys(n for n in (self.registry.note(n) for n in key) if n))
        self._names[key] = (labels, notes)
        return labels, notes

    def neighbours(self, ids: np.ndarray, sims: np.ndarray) -> list[Neighbour]:
        """The five nearest stored prompts of one routed prompt, for its explanation."""
        if self._index is None:
            return []
        return [
            Neighbour(prompt_id=self._index.prompt_ids[j], similarity=round(s, 4), task=self._index.tasks[j] or None)
            for j, s in zip(ids[:5].tolist(), sims[:5].tolist(), strict=True)
        ]

    # ------------------------------------------------------------------ changes (onboarding)
    def add_to_pool(self, name: str) -> None:
        """Add a registered model to the default pool."""
        with self._lock:
            if name not in self._pool:
                self._pool.append(name)
            self._cache.clear()
            self._names.clear()

    def replace_index(self, index: OutcomeIndex) -> None:
        """Route with ``index`` from now on (a kNN predictor reading the old one follows it)."""
        with self._lock:
            old, self._index = self._index, index
            if getattr(self._predictor, "index", None) is old:
                self._predictor.index = index  # type: ignore[attr-defined]
            self._cache.clear()
            self._names.clear()

    def replace_predictor(self, predictor: Predictor) -> None:
        """Predict quality with ``predictor`` from now on."""
        with self._lock:
            self._predictor = predictor
            self._cache.clear()
            self._names.clear()

    def forget_candidates(self) -> None:
        """Drop the cached candidate tables and columns (after the registry or the index changed)."""
        with self._lock:
            self._revision = card_revision()
            self._cache.clear()
            self._names.clear()


def _pool_names(registry: Registry, pool: Sequence[str]) -> list[str]:
    """The pool as its owner named it (a fit's data, a saved router), one name per card."""
    seen: set[str] = set()
    out: list[str] = []
    for m in pool:
        card = registry.resolve(m).name
        if card not in seen:
            seen.add(card)
            out.append(m)
    return out


def build_state(loader: Callable[[], dict[str, Any]] | None, given: dict[str, Any], *, k: int,
                lam: float) -> RouterState:
    """Load the heavy parts once: registry, analyzer, store, embedder, pool and predictor.

    Args:
        loader: returns the parts of a bundled or saved router (``None``: nothing to load).
        given: parts the caller passed explicitly; they win over the loader's.
        k, lam: the kNN predictor's neighbours and prior strength (when the predictor is kNN).
    """
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
    embedder = parts.get("embedder") or get_default_embedder()
    dim = getattr(embedder, "dim", None)
    if index is not None and isinstance(dim, int) and index.dim != dim:
        raise InvalidInputError(
            f"The evaluation store holds embeddings of dimension {index.dim}, but the embedder makes {dim}; "
            "use the embedder the store was built with, or fit the router again with this one."
        )
    chosen = parts.get("predictor")
    predictor: Predictor
    if chosen is None or getattr(chosen, "kind", "knn") == "knn":
        predictor = QualityPredictor(index, lam=lam, k=k, observed_n0=getattr(chosen, "observed_n0", None))
        predictor.selection = getattr(chosen, "selection", None)
    else:
        predictor = chosen
    return RouterState(
        registry=registry,
        analyzer=parts.get("analyzer") or TaskAnalyzer.default(),
        index=index,
        embedder=embedder,
        pool=_pool_names(registry, pool),
        predictor=predictor,
    )
