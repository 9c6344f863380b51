"""Vectorised routing results: one set of arrays per chunk of prompts, decisions built on demand.

``decide_batch`` over a million prompts produces arrays (winner per prompt, predicted quality and cost
matrices) without building a million Python objects; :class:`BatchDecisions` turns row ``i`` into a
full :class:`~optiroute.schema.decision.RoutingDecision` only when indexed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optiroute.routing.explain import build_decision
from optiroute.schema.decision import Neighbour, RoutingDecision, TaskProfile

if TYPE_CHECKING:
    from optiroute.analysis.analyzer import AnalyzerOutput
    from optiroute.quality.index import KNNResult
    from optiroute.schema.preferences import Preferences

__all__ = ["BatchDecisions", "RouteArrays"]


@dataclass(eq=False)
class RouteArrays:
    """All routing arrays of one chunk of n prompts over m candidates (rows = prompts).

    It also carries what feedback will need of each row, so a decision materialised late (``batch[i]``
    long after routing) loses nothing: the feedback corrections that were applied, and the prompts'
    int8 embeddings when the router keeps prompts.
    """

    names: list[str]
    winner: np.ndarray  # (n,) column of the chosen model
    total: np.ndarray  # (n, m) preference score
    sub: dict[str, np.ndarray]  # dimension -> (n, m) sub-score
    quality: np.ndarray  # (n, m) predicted quality, feedback corrections included
    cost: np.ndarray  # (n, m) predicted USD
    latency: np.ndarray  # (n, m) predicted seconds
    codes: np.ndarray  # (n, m) exclusion code, 0 = eligible
    support: np.ndarray  # (n, m) similarity mass behind the quality prediction
    confidence: np.ndarray  # (n,)
    nothing_fits: np.ndarray  # (n,) bool: the filters left nothing, the search was widened
    low_confidence: np.ndarray  # (n,) bool: the generalist was taken for low confidence
    tasks: list[str]
    domains: list[str]
    out: AnalyzerOutput
    in_tok: np.ndarray
    out_tok: np.ndarray
    pruned: list[bool]
    knn: KNNResult | None
    prefs: Preferences
    task_types: list[str]
    explored: np.ndarray  # (n,) bool: re-drawn by exploration
    corrections: np.ndarray | None = None  # (n, m) feedback corrections included in ``quality``
    card_names: list[str] | None = None  # the cards behind ``names`` when ``names`` are the caller's
    notes: list[str] | None = None  # how the caller's names resolved (family cards, unknown models)
    embeddings: np.ndarray | None = None  # (n, dim) int8, only when the router keeps prompts
    guarded: np.ndarray | None = None  # (n,) bool: sent to one model by the routing guard
    guard_reason: str | None = None  # why (the same for every guarded row of a pass)

    def correction(self, i: int, j: int) -> float:
        """The feedback correction applied to row ``i``, column ``j`` (0 without feedback)."""
        return 0.0 if self.corrections is None else float(self.corrections[i, j])

    def embedding(self, i: int) -> np.ndarray | None:
        """Row ``i``'s int8 embedding, when the router keeps prompts."""
        return None if self.embeddings is None else self.embeddings[i]

    def __len__(self) -> int:
        return len(self.winner)

    def profile(self, i: int) -> TaskProfile:
        """The analyzer's view of prompt ``i``."""
        tp = self.out.task_probs[i]
        dp = self.out.domain_probs[i]
        names = self.task_types
        return TaskProfile.model_construct(
            task_type=self.tasks[i],
            task_confidence=float(tp.max()),
            task_probs={n: round(float(p), 4) for n, p in zip(names, tp, strict=True)},
            domain=self.domains[i],
            domain_confidence=float(dp.max()),
            complexity=float(self.out.complexity[i]),
            est_input_tokens=int(self.in_tok[i]),
            est_output_tokens=int(self.out_tok[i]),
            pruned=bool(self.pruned[i]),
        )

    def relabelled(self, labels: list[str], notes: list[str] | None = None) -> RouteArrays:
        """These arrays with ``names`` set to the caller's own names (``card_names`` keeps the
        cards'), so decisions, fallbacks and scores give back the names they were given."""
        if len(labels) != len(self.names):
            raise ValueError(f"{len(labels)} labels for {len(self.names)} candidates")
        self.card_names = list(self.names)
        self.names = list(labels)
        self.notes = list(notes or [])
        return self

    def card_of(self, j: int) -> str:
        """The card name of column ``j``."""
        return self.card_names[j] if self.card_names is not None else self.names[j]

    def decision(
        self,
        i: int,
        decision_id: str,
        max_fallbacks: int,
        neighbours: Callable[[np.ndarray, np.ndarray], list[Neighbour]],
    ) -> RoutingDecision:
        """Build the full decision for prompt ``i``."""
        warnings: list[str] = []
        generalist_reason = None
        if self.nothing_fits[i]:
            generalist_reason = "no candidate is competent for this task type and domain, so the search was widened"
        elif self.low_confidence[i]:
            generalist_reason = (
                f"routing confidence {float(self.confidence[i]):.2f} is below the policy minimum "
                "(unfamiliar prompt, few similar stored prompts)"
            )
        if generalist_reason:
            warnings.append(f"OptiRoute fell back to the generalist model: {generalist_reason}.")
        warnings.extend(self.notes or [])  # how the caller's names resolved (warned once by the registry)
        nb: list[Neighbour] = []
        if self.knn is not None:
            nb = neighbours(self.knn.ids[i], self.knn.sims[i])
        decision = build_decision(
            decision_id=decision_id,
            names=self.names,
            cards=self.card_names,
            winner=int(self.winner[i]),
            total=self.total[i],
            sub={d: v[i] for d, v in self.sub.items()},
            quality=self.quality[i],
            cost=self.cost[i],
            latency=self.latency[i],
            codes=self.codes[i],
            profile=self.profile(i),
            prefs=self.prefs,
            confidence=float(self.confidence[i]),
            neighbours=nb,
            max_fallbacks=max_fallbacks,
            generalist_reason=generalist_reason,
            warnings=warnings,
            explored=bool(self.explored[i]),
        )
        if self.guarded is not None and self.guarded[i] and not self.explored[i]:
            decision = decision.model_copy(update={"reason": self.guard_reason or decision.reason})
        return decision


class BatchDecisions(Sequence[RoutingDecision]):
    """The decisions of :meth:`Router.decide_batch`, vectorised, with lazy per-item decisions.

    Attributes:
        parts: the :class:`RouteArrays` chunks, in prompt order.
    """

    def __init__(
        self,
        parts: list[RouteArrays],
        materialise: Callable[[RouteArrays, int, str], RoutingDecision],
    ) -> None:
        self.parts = parts
        self._materialise = materialise
        self._offsets = np.cumsum([0] + [len(p) for p in parts])
        self._cache: dict[int, RoutingDecision] = {}

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __repr__(self) -> str:
        """How many prompts, and how many went to each model (most first; at most five named)."""
        counts: dict[str, int] = {}
        for name in self.model_names:
            counts[name] = counts.get(name, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{m!r}: {n}" for m, n in top[:5]) + (f", ... {len(top) - 5} more" if len(top) > 5 else "")
        return f"{type(self).__name__}({len(self)} prompts; chosen {{{shown}}})"

    def _locate(self, i: int) -> tuple[RouteArrays, int]:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        p = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return self.parts[p], i - int(self._offsets[p])

    def __getitem__(self, i: int) -> RoutingDecision:  # type: ignore[override]
        if not isinstance(i, (int, np.integer)):
            raise TypeError("BatchDecisions is indexed by integer position")
        key = int(i) if i >= 0 else int(i) + len(self)
        if key not in self._cache:
            part, j = self._locate(key)
            self._cache[key] = self._materialise(part, j, uuid.uuid4().hex)
        return self._cache[key]

    def __iter__(self) -> Iterator[RoutingDecision]:
        for i in range(len(self)):
            yield self[i]

    @property
    def model_names(self) -> list[str]:
        """The chosen model of every prompt, without building decisions."""
        out: list[str] = []
        for p in self.parts:
            out.extend(p.names[j] for j in p.winner.tolist())
        return out

    def column(self, name: str) -> np.ndarray:
        """Concatenate one per-prompt array (``winner``, ``confidence``) or the chosen model's
        predicted ``quality`` / ``cost`` / ``latency`` over all chunks."""
        if name in ("quality", "cost", "latency"):
            return np.concatenate(
                [getattr(p, name)[np.arange(len(p)), p.winner] for p in self.parts]
            )
        return np.concatenate([getattr(p, name) for p in self.parts])
