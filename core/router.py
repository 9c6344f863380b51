"""The :class:`Router` facade: analyse, predict, score, choose; fit, save and load; learn from feedback.

One Router object owns the heavy state (embedder, analyzer heads, evaluation store, registry, feedback
store) and loads it lazily on first use, so constructing one (and the framework adapters that wrap
it) costs nothing. Routing is vectorised: :meth:`Router.decide` is a batch of one, and
:meth:`Router.decide_batch` routes many prompts with one encode batch, one prediction matrix and one
argmax, materialising explanations only for the decisions somebody reads.
"""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import policy as pol
from .batch import BatchDecisions, RouteArrays
from .errors import InvalidInputError, NoEligibleModelError, RoutingFallbackWarning
from .feedback import DecisionRecord, FeedbackStore, MemoryFeedbackStore
from .latency import LatencyTracker
from .profiles import Preferences, PreferencesLike, coerce_preferences
from .prompts import RoutableText, to_routable
from .scorer import card_matrix, score
from .types import Constraints, ConstraintsLike, Neighbour, RoutingDecision

if TYPE_CHECKING:
    from .analyzer import TaskAnalyzer
    from .embedding import Embedder
    from .index import OutcomeIndex
    from .predictors import QualityPredictor
    from .registry import ModelCard, Registry

__all__ = ["Router"]


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


class Router:
    """Routes prompts to the best model for the caller's preferences.

    Args:
        registry: model cards (default: the bundled registry).
        index: the evaluation store for kNN quality prediction (``None``: card priors only).
        analyzer: the task analyzer (default: the bundled heads).
        embedder: the sentence embedder (default: bundled MiniLM, shared per process).
        models: the default candidate pool (names or aliases); default: every model the store has
            outcomes for, else every chat/API card of the registry.
        preferences: the router's default preferences (a profile name, weights or Preferences).
        constraints: hard constraints applied to every decision (merged with per-call ones).
        store: where decisions and feedback go (default: in memory).
        policy: thresholds of the task/domain filters and the generalist fallback.
        k: neighbours for kNN prediction; lam: prior strength of card predictions.
    """

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        index: OutcomeIndex | None = None,
        analyzer: TaskAnalyzer | None = None,
        embedder: Embedder | None = None,
        models: Sequence[str] | None = None,
        preferences: PreferencesLike = None,
        constraints: ConstraintsLike = None,
        store: FeedbackStore | None = None,
        policy: pol.PolicyConfig | None = None,
        k: int = 50,
        lam: float = 3.0,
        _loader: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._given = {"registry": registry, "index": index, "analyzer": analyzer,
                       "embedder": embedder, "models": list(models) if models else None}
        self._loader = _loader
        self.preferences = coerce_preferences(preferences)
        self.constraints = Constraints.coerce(constraints)
        self.store = store if store is not None else MemoryFeedbackStore()
        self.policy = policy or pol.PolicyConfig()
        self.k, self.lam = k, lam
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._cand_cache: dict[tuple[str, ...], tuple[list[ModelCard], list[int | None]]] = {}
        self._latency = LatencyTracker()

    # ---------------------------------------------------------------- construction
    @classmethod
    def default(cls, **kwargs: Any) -> Router:
        """The bundled router: registry, analyzer and MMLU-Pro + LLMRouter evaluation store.

        Nothing is read until the first decision.
        """
        from .artifacts import load_default_parts

        return cls(_loader=load_default_parts, **kwargs)

    @classmethod
    def fit(cls, prompts: Any, outcomes: Any, prices: Any = None, **kwargs: Any) -> Router:
        """Fit a router on per-prompt outcomes in the documented CSV format (paths or DataFrames).

        Only rows with ``split == "train"`` are used when the prompts carry a split. See
        :func:`optiroute.training.fit_parts` for the keyword arguments.
        """
        from .training import fit_parts

        router_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _ROUTER_KW}
        parts = fit_parts(prompts, outcomes, prices, **kwargs)
        parts.update(router_kw)
        return cls(**parts)

    def save(self, directory: str | Path) -> Path:
        """Write a self-contained router directory (JSON + npz + Annoy; no pickle)."""
        from .artifacts import save_router

        return save_router(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> Router:
        """Load a directory written by :meth:`save`; files are checked against the manifest.

        Raises:
            ArtifactNotFoundError, CorruptArtifactError, UnsupportedFormatError.
        """
        from .artifacts import load_router_parts

        parts = load_router_parts(Path(directory))
        parts.update(kwargs)
        return cls(**parts)

    def _ensure(self) -> _State:
        if self._state is not None:
            return self._state
        with self._lock:
            if self._state is None:
                self._state = self._build_state()
        return self._state

    def _build_state(self) -> _State:
        from .analyzer import TaskAnalyzer
        from .embedding import get_default_embedder
        from .predictors import QualityPredictor
        from .registry import Registry

        parts = dict(self._loader()) if self._loader else {}
        for key, value in self._given.items():
            if value is not None:
                parts[key] = value
        registry = parts.get("registry") or Registry.default()
        index = parts.get("index")
        pool = parts.get("models")
        if not pool:
            pool = list(index.models) if index is not None else [
                c.name for c in registry if c.kind in ("api", "chat")
            ]
        predictor = QualityPredictor(index, lam=self.lam, k=self.k)
        return _State(
            registry=registry,
            analyzer=parts.get("analyzer") or TaskAnalyzer.default(),
            index=index,
            embedder=parts.get("embedder") or get_default_embedder(),
            pool=[registry.resolve(m).name for m in pool],
            predictor=predictor,
        )

    # -------------------------------------------------------------------- accessors
    @property
    def registry(self) -> Registry:
        """The model registry (loads the router state on first access)."""
        return self._ensure().registry

    @property
    def models(self) -> list[str]:
        """The default candidate pool; also the columns of :meth:`predict_quality`."""
        return list(self._ensure().pool)

    @property
    def index(self) -> OutcomeIndex | None:
        """The evaluation store used for kNN prediction, if any."""
        return self._ensure().index

    @property
    def analyzer(self) -> TaskAnalyzer:
        """The task analyzer."""
        return self._ensure().analyzer

    @property
    def embedder(self) -> Embedder:
        """The sentence embedder."""
        return self._ensure().embedder

    def _candidates(self, names: Sequence[str] | None) -> tuple[list[ModelCard], list[int | None]]:
        st = self._ensure()
        key = tuple(names) if names else tuple(st.pool)
        hit = self._cand_cache.get(key)
        if hit is not None:
            return hit
        if isinstance(names, str):
            raise InvalidInputError("candidates must be a list of model names, not one string.")
        if names is not None and len(names) == 0:
            raise InvalidInputError("candidates is empty; pass at least one model name or None.")
        cards = list({c.name: c for c in (st.registry.resolve(n) for n in key)}.values())
        entry = (cards, st.predictor.columns(cards))
        self._cand_cache[key] = entry
        return entry

    # ---------------------------------------------------------------------- routing
    def _arrays(
        self,
        items: list[RoutableText],
        prefs: Preferences,
        constraints: Constraints,
        candidates: Sequence[str] | None,
        *,
        batch: bool,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
    ) -> RouteArrays:
        from .embedding import prune_text

        st = self._ensure()
        cards, columns = self._candidates(candidates)
        pruned = [prune_text(it.text) for it in items]
        if embeddings is None:
            emb = st.embedder.encode([p for p, _ in pruned], show_progress=show_progress)
        else:
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.shape != (len(items), st.embedder.dim):
                raise InvalidInputError(
                    f"embeddings must have shape ({len(items)}, {st.embedder.dim}), got {emb.shape}."
                )
        out = st.analyzer.predict(emb)
        tasks = [st.analyzer.task_types[i] for i in out.task_probs.argmax(axis=1)]
        domains = [st.analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)]
        in_tok = np.array([max(1, it.total_chars // 4) for it in items], dtype=np.float32)
        out_tok = st.analyzer.output_tokens(out.task_probs)
        knn = st.predictor.neighbours(emb, exact=batch)
        corr = self._corrections(cards, tasks)
        quality, support = st.predictor.predict(
            knn, cards, domains, tasks, out.complexity, columns=columns, corrections=corr
        )
        pin = np.array([c.input_usd_per_mtok for c in cards], dtype=np.float32)
        pout = np.array([c.output_usd_per_mtok for c in cards], dtype=np.float32)
        cost = (in_tok[:, None] * pin + out_tok[:, None] * pout) / 1e6
        ttft = np.array([c.ttft_s for c in cards], dtype=np.float32)
        tps = np.array([max(c.tokens_per_s, 1e-3) for c in cards], dtype=np.float32)
        ratio = np.array(self._latency.ratios([c.name for c in cards], [_group(c) for c in cards]),
                         dtype=np.float32)
        latency = (ttft + out_tok[:, None] / tps) * ratio
        hard = pol.hard_mask(cards, constraints, in_tok + out_tok, cost, latency)
        dom = _domain_matrix(cards, domains)
        codes, nothing = pol.soft_mask(hard, quality, dom, self.policy)
        empty = ~(hard == 0).any(axis=1)
        if empty.any():
            i = int(empty.argmax())
            reasons = {c.name: pol.EXCLUSION_TEXT[int(hard[i, j])] for j, c in enumerate(cards)}
            raise NoEligibleModelError(
                f"No candidate passes the hard constraints ({int(empty.sum())} of {len(items)} "
                f"prompt(s)); relax one of them: " + "; ".join(f"{m}: {r}" for m, r in reasons.items()),
                exclusions=reasons,
            )
        table = score(prefs.normalized(), quality, cost, latency, card_matrix(cards), codes == 0)
        winner = table.total.argmax(axis=1)
        conf = pol.confidence(out.task_probs.max(axis=1), support, winner, self.lam)
        low = conf < self.policy.min_confidence
        general = nothing | low
        if general.any():
            gidx = pol.generalist_index(cards, hard == 0, self.policy.generalist)
            winner = np.where(general, gidx, winner)
            codes = np.where(general[:, None], hard, codes)
        return RouteArrays(
            names=[c.name for c in cards], winner=winner, total=table.total, sub=table.sub,
            quality=quality, cost=cost, latency=latency, codes=codes, support=support,
            confidence=conf, nothing_fits=nothing, low_confidence=low, tasks=tasks,
            domains=domains, out=out, in_tok=in_tok, out_tok=out_tok, pruned=[p for _, p in pruned],
            knn=knn, prefs=prefs, task_types=list(st.analyzer.task_types),
        )

    def _corrections(self, cards: list[ModelCard], tasks: list[str]) -> np.ndarray | None:
        corr = self.store.corrections()
        if not corr:
            return None
        ut = sorted(set(tasks))
        table = np.array([[corr.get((c.name, t), 0.0) for c in cards] for t in ut], dtype=np.float32)
        pos = {t: i for i, t in enumerate(ut)}
        return table[[pos[t] for t in tasks]]

    def decide(
        self,
        prompt_or_messages: Any,
        *,
        preferences: PreferencesLike = None,
        constraints: ConstraintsLike = None,
        candidates: Sequence[str] | None = None,
    ) -> RoutingDecision:
        """Choose a model for one prompt (a string or a chat history).

        Args:
            prompt_or_messages: the prompt, or messages as dicts / (role, content) pairs / objects
                with ``role``/``type`` and ``content``.
            preferences: a profile name, weights or :class:`Preferences` (default: the active
                :func:`optiroute.preferences` scope, else the router's default).
            constraints: hard constraints for this call (merged with the router's).
            candidates: model names or aliases to choose among (default: :attr:`models`).

        Raises:
            InvalidInputError: empty, non-text or malformed prompt.
            InvalidPreferencesError, UnknownProfileError, InvalidConstraintsError.
            NoEligibleModelError: every candidate fails a hard constraint.
        """
        item = to_routable(prompt_or_messages)
        prefs = coerce_preferences(preferences, default=self.preferences)
        cons = self.constraints.merged(Constraints.coerce(constraints))
        arrays = self._arrays([item], prefs, cons, candidates, batch=False)
        decision = self._materialise(arrays, 0, uuid.uuid4().hex)
        if decision.warnings:
            warnings.warn(decision.warnings[0], RoutingFallbackWarning, stacklevel=2)
        return decision

    def decide_batch(
        self,
        texts: Sequence[Any],
        *,
        preferences: PreferencesLike = None,
        constraints: ConstraintsLike = None,
        candidates: Sequence[str] | None = None,
        batch_size: int = 4096,
        show_progress: bool = False,
        embeddings: np.ndarray | None = None,
    ) -> BatchDecisions:
        """Route many prompts at once, vectorised (one encode batch, one matrix, one argmax).

        Args:
            embeddings: optional precomputed (n, dim) unit embeddings of the same texts (made with
                this router's embedder and pruning), to skip encoding when routing the same prompts
                under many preferences.

        Returns a :class:`BatchDecisions`: ``.model_names`` (one per prompt) and arrays are ready at
        once; indexing it (``batch[i]``) materialises a full :class:`RoutingDecision`.
        """
        if isinstance(texts, (str, bytes)):
            raise InvalidInputError("decide_batch takes a list of prompts; use decide() for one.")
        items = [to_routable(t) for t in texts]
        if not items:
            raise InvalidInputError("decide_batch got no prompts.")
        prefs = coerce_preferences(preferences, default=self.preferences)
        cons = self.constraints.merged(Constraints.coerce(constraints))
        parts = [
            self._arrays(items[s : s + batch_size], prefs, cons, candidates, batch=True,
                         show_progress=show_progress,
                         embeddings=None if embeddings is None else embeddings[s : s + batch_size])
            for s in range(0, len(items), batch_size)
        ]
        return BatchDecisions(parts, self._materialise)

    def predict_quality(self, texts: Sequence[Any], *, candidates: Sequence[str] | None = None) -> np.ndarray:
        """Predicted quality, shape (n_prompts, n_models); columns follow :attr:`models` (or
        ``candidates``)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]  # type: ignore[list-item]
        batch = self.decide_batch(
            texts, preferences="quality-first", candidates=candidates, constraints=None
        )
        return np.concatenate([p.quality for p in batch.parts], axis=0)

    def _materialise(self, arrays: RouteArrays, i: int, decision_id: str) -> RoutingDecision:
        decision = arrays.decision(i, decision_id, self.policy.max_fallbacks, self._neighbours)
        self.store.record_decision(
            DecisionRecord.model_construct(
                decision_id=decision_id, model=decision.model,
                task_type=decision.profile.task_type, domain=decision.profile.domain,
                predicted_quality=decision.chosen.predicted_quality, created_at=decision.created_at,
            )
        )
        return decision

    def _neighbours(self, ids: np.ndarray, sims: np.ndarray) -> list[Neighbour]:
        index = self._ensure().index
        if index is None:
            return []
        return [
            Neighbour.model_construct(
                prompt_id=index.prompt_ids[int(j)], similarity=round(float(s), 4),
                task=index.tasks[int(j)] or None,
            )
            for j, s in zip(ids[:5], sims[:5])
        ]

    # --------------------------------------------------------------------- feedback
    def record_feedback(self, decision_id: str, score: float, *, comment: str | None = None) -> None:
        """Attach feedback (1.0 = thumbs up, 0.0 = thumbs down, or any score in 0..1).

        Later decisions shift the chosen model's predicted quality for that task type by the shrunk
        mean residual of its feedback.

        Raises:
            FeedbackError: unknown decision id or score outside 0..1.
        """
        self.store.record_feedback(decision_id, score, comment)

    def record_observation(
        self, decision_id: str | None = None, *, model: str, latency_s: float,
        input_tokens: int | None = None, output_tokens: int | None = None,
        cost_usd: float | None = None, ok: bool = True,
    ) -> None:
        """Record an observed call; observed latency progressively replaces the card estimate
        (a damped running mean of the observed / estimated ratio per model)."""
        if not ok or latency_s is None or not np.isfinite(latency_s) or latency_s <= 0:
            return
        card = self.registry.resolve(model)
        est = card.latency_s(output_tokens if output_tokens is not None else 256)
        self._latency.observe(card.name, float(latency_s), est, group=_group(card))

    def latency_ratio(self, model: str) -> float | None:
        """The multiplier observed calls apply to ``model``'s card latency (``None`` before any
        observation); see :class:`~optiroute.latency.LatencyTracker` for how one slow call is damped."""
        return self._latency.ratio(self.registry.resolve(model).name)


def _group(card: ModelCard) -> str | None:
    """Latency group of a card: its provider, unless nothing is known about it."""
    return None if card.provider in ("", "unknown") else card.provider


def _domain_matrix(cards: Sequence[ModelCard], domains: Sequence[str]) -> np.ndarray:
    uniq, inv = np.unique(np.asarray(domains, dtype=str), return_inverse=True)
    table = np.array(
        [[c.accuracy_by_domain.get(d, np.nan) for c in cards] for d in uniq.tolist()],
        dtype=np.float32,
    )
    return table[inv.reshape(-1)]


_ROUTER_KW = {"preferences", "constraints", "store", "policy", "k", "lam", "models"}
