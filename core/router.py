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
from .calls import arrays_within_budget
from .errors import InvalidInputError, RoutingFallbackWarning
from .feedback import DecisionRecord, FeedbackStore, MemoryFeedbackStore
from .latency import LatencyTracker
from .router_state import _State, build_state
from .router_store import StoreMixin
from .profiles import Preferences, PreferencesLike, coerce_preferences
from .prompts import RoutableText, to_routable
from .spend import Budget
from .types import Constraints, ConstraintsLike, Neighbour, RoutingDecision

if TYPE_CHECKING:
    from .analyzer import TaskAnalyzer
    from .embedding import Embedder
    from .index import OutcomeIndex
    from .registry import ModelCard, Registry

__all__ = ["Router"]


class Router(StoreMixin):
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
        store: where decisions, feedback, observed calls and spend go (default: in memory; pass
            ``SQLiteFeedbackStore(path)`` or any SQLAlchemy URL through ``open_store``). If the store
            fails (locked, read-only, unreachable) routing keeps working in a degraded mode: a
            :class:`~optiroute.errors.StoreDegradedWarning` is issued once and rows are kept in memory.
        budget: spend limits (router total, per caller key, per period) enforced by
            :meth:`begin_call`; decisions are made under the remaining amount.
        policy: thresholds of the task/domain filters and the generalist fallback.
        k: neighbours for kNN prediction; lam: prior strength of card predictions.
        keep_prompts: opt in to keeping prompt embeddings in memory (int8, bounded; see
            :mod:`optiroute.online`), so feedback also corrects predictions for *similar* prompts;
            off by default: then no prompt embedding or text is kept and feedback corrects by task
            type, domain and complexity (shared and per model) only.
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
        budget: Budget | None = None,
        policy: pol.PolicyConfig | None = None,
        k: int = 50,
        lam: float = 3.0,
        predictor: Any = None,
        keep_prompts: bool = False,
        _loader: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        from .online import FeedbackMemory

        self._memory = FeedbackMemory(keep_embeddings=keep_prompts)
        # predictor: a fitted optiroute.predictor_base.Predictor (Router.fit / Router.load pass it);
        # None (or a kNN one) means the kNN store + card priors with this router's k and lam.
        self._given = {"registry": registry, "index": index, "analyzer": analyzer,
                       "embedder": embedder, "models": list(models) if models else None,
                       "predictor": predictor}
        self._loader = _loader
        self.preferences = coerce_preferences(preferences)
        self.constraints = Constraints.coerce(constraints)
        self.store = store if store is not None else MemoryFeedbackStore()
        self.budget = budget
        self._degraded: MemoryFeedbackStore | None = None
        self._store_error: str | None = None
        self.policy = policy or pol.PolicyConfig()
        self._explore_rng = np.random.default_rng(self.policy.explore_seed)
        self._explore_lock = threading.Lock()
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
        return build_state(self, self._loader, self._given)

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
        # Checked before the cache: [] must not hit the default pool's entry (key () -> pool).
        if isinstance(names, str):
            raise InvalidInputError("candidates must be a list of model names, not one string.")
        if names is not None and len(names) == 0:
            raise InvalidInputError("candidates is empty; pass at least one model name or None.")
        key = tuple(names) if names else tuple(st.pool)
        hit = self._cand_cache.get(key)
        if hit is not None:
            return hit
        bad = [n for n in key if not isinstance(n, str) or not n.strip()]
        if bad:
            raise InvalidInputError(f"candidates must be non-empty model names (strings), got {bad[0]!r}.")
        cards = list({c.name: c for c in (st.registry.resolve(n) for n in key)}.values())
        entry = (cards, st.predictor.columns(cards))
        self._cand_cache[key] = entry
        return entry

    # ---------------------------------------------------------------------- routing
    def _arrays(
        self, items: list[RoutableText], prefs: Preferences, constraints: Constraints,
        candidates: Sequence[str] | None, *, batch: bool, show_progress: bool = False,
        embeddings: np.ndarray | None = None, explore: bool = False,
    ) -> RouteArrays:
        from .pipeline import route_arrays

        return route_arrays(self, items, prefs, constraints, candidates, batch=batch,
                            show_progress=show_progress, embeddings=embeddings, explore=explore)

    def _corrections(
        self, cards: list[ModelCard], tasks: list[str], domains: list[str], emb: np.ndarray,
        complexity: np.ndarray,
    ) -> np.ndarray | None:
        """Feedback corrections (n, m) from :mod:`optiroute.online` (pooled task/domain residuals,
        rated neighbours with ``keep_prompts``), staged for :meth:`_materialise`."""
        if not self._memory.history_loaded:  # feedback a durable store kept from earlier runs
            from .online import store_history

            self._memory.load_history(store_history(self.store))
        # The store's per-(model, task) residuals are the group estimate of groups="store" only.
        task_corr = self._store_corrections() if self._memory.groups == "store" else {}
        corr = self._memory.corrections([c.name for c in cards], tasks, domains, emb, task_corr, complexity)
        self._memory.stage(tasks, emb, corr)  # ``tasks`` is the RouteArrays' own list: its key
        return corr

    def decide(
        self,
        prompt_or_messages: Any,
        *,
        preferences: PreferencesLike = None,
        constraints: ConstraintsLike = None,
        candidates: Sequence[str] | None = None,
        user: str | None = None,
        run_id: str | None = None,
    ) -> RoutingDecision:
        """Choose a model for one prompt (a string or a chat history).

        Args:
            prompt_or_messages: the prompt, or messages as dicts / (role, content) pairs / objects
                with ``role``/``type`` and ``content``.
            preferences: a profile name, weights or :class:`Preferences` (default: the active
                :func:`optiroute.preferences` scope, else the router's default).
            constraints: hard constraints for this call (merged with the router's).
            candidates: model names or aliases to choose among (default: :attr:`models`).
            user: the caller's key, for per-user budgets and the stored record.
            run_id: the framework run id (LangChain run, LlamaIndex span), so feedback given on a
                run id finds this decision, also from another process sharing the store.

        Raises:
            InvalidInputError: empty, non-text or malformed prompt.
            InvalidPreferencesError, UnknownProfileError, InvalidConstraintsError.
            NoEligibleModelError: every candidate fails a hard constraint.
        """
        item = to_routable(prompt_or_messages)
        prefs = coerce_preferences(preferences, default=self.preferences)
        cons = self.constraints.merged(Constraints.coerce(constraints))
        arrays = arrays_within_budget(self, item, prefs, cons, candidates, user)
        keep = getattr(self.store, "keep_prompts", False)  # the store drops it otherwise, too
        decision = self._materialise(arrays, 0, uuid.uuid4().hex, run_id=run_id, user=user,
                                     prompt=item.text if keep else None)
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
        budget_usd: float | None = None,
        alpha: float | None = None,
        explore: bool = True,
    ) -> BatchDecisions:
        """Route many prompts at once, vectorised (one encode batch, one matrix, one argmax).

        Args:
            embeddings: optional precomputed (n, dim) unit embeddings of the same texts (made with
                this router's embedder and pruning), to skip encoding when routing the same prompts
                under many preferences.
            budget_usd: a total budget for the whole batch: the models are then chosen to maximise
                total predicted quality with total predicted cost within it (hard constraints still
                apply; preferences only shape the explanations), and a
                :class:`~optiroute.budgeted.BudgetedBatch` is returned. Raises
                :class:`~optiroute.errors.BudgetExceededError` (with the minimum budget) when even
                every prompt's cheapest eligible model costs more. See :mod:`optiroute.budgeted`.
            alpha: with ``budget_usd``, use Routoo's ``quality / cost**alpha`` selector instead of
                the default marginal-quality-per-dollar greedy.
            explore: apply the policy's exploration share (``PolicyConfig.explore``, off by default);
                ``False`` routes every prompt by score. Budgeted batches never explore.

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
                         show_progress=show_progress, explore=explore and budget_usd is None,
                         embeddings=None if embeddings is None else embeddings[s : s + batch_size])
            for s in range(0, len(items), batch_size)
        ]
        if budget_usd is not None:
            from .budgeted import allocate_batch

            return allocate_batch(parts, self._materialise, budget_usd, alpha=alpha)
        return BatchDecisions(parts, self._materialise)

    def choose_batch_model(self, texts: Sequence[Any], *, sample: float = 0.05, **kwargs: Any) -> Any:
        """Batch mode: route a seeded ``sample`` of a batch and pick ONE model for all of it.

        Returns a :class:`~optiroute.batch_mode.BatchModelChoice` (the model, and ``agreement``: the
        share of sampled prompts whose own routing chose it). Keyword arguments (``preferences``,
        ``constraints``, ``candidates``, ``seed``, ``min_sample``, ``embeddings``) are those of
        :func:`optiroute.batch_mode.choose_batch_model`.
        """
        from .batch_mode import choose_batch_model

        return choose_batch_model(self, texts, sample=sample, **kwargs)

    def predict_quality(self, texts: Sequence[Any], *, candidates: Sequence[str] | None = None) -> np.ndarray:
        """Predicted quality, shape (n_prompts, n_models); columns follow :attr:`models` (or
        ``candidates``)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]  # type: ignore[list-item]
        batch = self.decide_batch(
            texts, preferences="quality-first", candidates=candidates, constraints=None, explore=False
        )
        return np.concatenate([p.quality for p in batch.parts], axis=0)

    def _materialise(
        self, arrays: RouteArrays, i: int, decision_id: str, *, run_id: str | None = None,
        user: str | None = None, prompt: str | None = None,
    ) -> RoutingDecision:
        decision = arrays.decision(i, decision_id, self.policy.max_fallbacks, self._neighbours)
        # Feedback residuals are taken against the quality predicted *before* feedback corrections
        # (see optiroute.online: against the corrected one they settle at half the real gap).
        w = arrays.names.index(decision.model)
        emb_row, corr_row = self._memory.take(arrays.tasks, i)
        base = float(arrays.quality[i, w]) - (0.0 if corr_row is None else float(corr_row[w]))
        base = min(max(base, 0.0), 1.0)
        self._memory.remember(decision_id, emb_row, float(arrays.out.complexity[i]))
        self._store_write(
            "record_decision",
            DecisionRecord.model_construct(
                decision_id=decision_id, model=decision.model,
                task_type=decision.profile.task_type, domain=decision.profile.domain,
                predicted_quality=base, created_at=decision.created_at,
                run_id=None if run_id is None else str(run_id), user=user, prompt=prompt,
            ),
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


_ROUTER_KW = {"preferences", "constraints", "store", "budget", "policy", "k", "lam", "models",
              "keep_prompts"}
