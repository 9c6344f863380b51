"""The :class:`Router` facade: analyse, predict, score, choose; fit, save and load; learn from feedback.

One Router object owns the heavy state (embedder, analyzer heads, evaluation store, registry) and
loads it lazily on first use, so constructing one (and the framework adapters that wrap it) costs
nothing. It is composed, not inherited: a :class:`~optiroute.router.state.RouterState` (the heavy
parts), a :class:`~optiroute.store.guarded.GuardedStore` (decisions, feedback, spend; degraded mode),
a :class:`~optiroute.router.feedback.FeedbackLoop` (what feedback taught it) and a
:class:`~optiroute.learning.latency.LatencyTracker`. Each collaborator receives the parts it needs
(:class:`~optiroute.routing.pipeline.RoutingContext`, :class:`~optiroute.router.calls.CallContext`),
never the router.

Routing is vectorised: :meth:`Router.decide` is a batch of one, and :meth:`Router.decide_batch` routes
many prompts with one encode batch, one prediction matrix and one argmax, materialising explanations
only for the decisions somebody reads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.analysis.embedding import Embedder, MiniLMEmbedder
from optiroute.analysis.prompts import RoutableText, to_routable
from optiroute.analysis.shared_text import SharedText
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.catalog.table import card_names, derived
from optiroute.errors import InvalidInputError, NoEligibleModelError, RoutingFallbackWarning
from optiroute.fit.training import fit_parts  # the layer above: pandas, torch, sklearn
from optiroute.learning.feedback_memory import FeedbackMemory
from optiroute.learning.latency import LatencyTracker
from optiroute.quality.base import Predictor
from optiroute.quality.index import OutcomeIndex
from optiroute.router import artifacts, checks
from optiroute.router.batch_mode import BatchModelChoice, choose_batch_model
from optiroute.router.calls import (
    CallAccount,
    CallContext,
    begin_call,
    check_usage,
    end_call,
    latency_group,
    observe_latency,
    remaining_usd,
)
from optiroute.router.feedback import FeedbackLoop
from optiroute.router.guard import guard_from_fit
from optiroute.router.state import RouterState, build_state
from optiroute.routing import policy as pol
from optiroute.routing.batch import BatchDecisions, RouteArrays
from optiroute.routing.budgeted import BudgetedBatch, allocate_batch
from optiroute.routing.guard import RoutingGuard
from optiroute.routing.pipeline import RoutingContext, route_arrays
from optiroute.schema.budget import Budget, CallTicket, scope_keys
from optiroute.schema.decision import Constraints, ConstraintsLike, RoutingDecision
from optiroute.schema.numbers import MAX_USD, real
from optiroute.schema.preferences import Preferences, PreferencesLike, coerce_preferences
from optiroute.store.guarded import GuardedStore
from optiroute.store.memory import MemoryFeedbackStore
from optiroute.store.records import FeedbackStore, ObservationRecord

__all__ = ["Router"]

log = logging.getLogger(__name__)


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
        store: where decisions, feedback, observed calls and spend go (default: in memory; pass
            ``SQLiteFeedbackStore(path)`` or any SQLAlchemy URL through ``open_store``). If the store
            fails (locked, read-only, unreachable) routing keeps working in a degraded mode: a
            :class:`~optiroute.errors.StoreDegradedWarning` is issued once and rows are kept in memory.
        budget: spend limits (router total, per caller key, per period) enforced by
            :meth:`begin_call`; decisions are made under the remaining amount.
        policy: thresholds of the task/domain filters and the generalist fallback.
        k: neighbours for kNN prediction; lam: prior strength of card predictions.
        predictor: a fitted quality predictor (:meth:`fit` and :meth:`load` pass it); ``None`` (or a
            kNN one) means the kNN store + card priors with this router's ``k`` and ``lam``.
        guard: where routing measured no better than one model (:meth:`fit` measures it; see
            :mod:`optiroute.routing.guard`); ``None``: always route.
        shared_text: text the training prompts share (a system prompt, few-shot examples, a template
            around the question), removed from what is embedded and analysed
            (:mod:`optiroute.analysis.shared_text`). :meth:`fit` learns it; ``None`` (the bundled
            default, routers saved before it existed) embeds prompts as given. Cost and the
            context-window check always count the whole prompt.
        keep_prompts: opt in to keeping prompt embeddings in memory (int8, bounded; see
            :mod:`optiroute.learning.feedback_memory`), so feedback also corrects predictions for
            *similar* prompts; off by default: then no prompt embedding or text is kept and feedback
            corrects by task type, domain and complexity (shared and per model) only.
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
        predictor: Predictor | None = None,
        keep_prompts: bool = False,
        guard: RoutingGuard | None = None,
        shared_text: SharedText | None = None,
        _loader: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        k, lam = checks.router_settings(k, lam, budget, policy, store)
        self._given = {"registry": registry, "index": index, "analyzer": analyzer,
                       "embedder": embedder, "models": checks.model_names(models),
                       "predictor": predictor}
        self._loader = _loader
        self.preferences = coerce_preferences(preferences)
        self.constraints = Constraints.coerce(constraints)
        self._store = GuardedStore(store if store is not None else MemoryFeedbackStore())
        self._feedback = FeedbackLoop(FeedbackMemory(keep_embeddings=bool(keep_prompts)), self._store)
        self.budget = budget
        self.policy = policy or pol.PolicyConfig()
        self._explorer = pol.Explorer(self.policy.explore_seed)
        self.k, self.lam = k, lam
        self.guard = guard
        if shared_text is not None and not isinstance(shared_text, SharedText):
            raise InvalidInputError("shared_text must be a SharedText (SharedText.learn(prompts)) or None, "
                                    f"got {type(shared_text).__name__}.")
        #: What this router strips from prompts before embedding them (see the class docstring).
        self.shared_text = shared_text
        self._state: RouterState | None = None
        self._lock = threading.RLock()
        self._latency = LatencyTracker()
        self._ready = False  # set once a decision has loaded every part (the first one logs its load)

    # ---------------------------------------------------------------- construction
    @classmethod
    def default(cls, **kwargs: Any) -> Router:
        """The bundled router: registry, analyzer and MMLU-Pro + LLMRouter evaluation store.

        Nothing is read until the first decision.
        """
        return cls(_loader=artifacts.load_default_parts, **kwargs)

    @classmethod
    def fit(cls, prompts: Any, outcomes: Any, prices: Any = None, **kwargs: Any) -> Router:
        """Fit a router on per-prompt outcomes in the documented CSV format (paths or DataFrames).

        Only rows with ``split == "train"`` are used when the prompts carry a split. See
        :func:`optiroute.fit.training.fit_parts` for the keyword arguments.
        """
        router_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _ROUTER_KW}
        parts = fit_parts(prompts, outcomes, prices, **kwargs)
        check = parts.pop("cv", None)
        if check is not None:
            parts["guard"] = guard_from_fit(check, parts["registry"])
        parts.update(router_kw)
        return cls(**parts)

    def save(self, directory: str | Path) -> Path:
        """Write a self-contained router directory (JSON + npz + Annoy; no pickle)."""
        return artifacts.save_router(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> Router:
        """Load a directory written by :meth:`save`; files are checked against the manifest.

        The directory is untrusted: the manifest is size- and depth-limited and validated, every
        file it lists must be a plain name of a regular file inside the directory within a size cap,
        checksums must match, and array shapes, dtypes and dimensions are checked against each other
        and against the embedder's dimension (``embedder=`` if given, else MiniLM's 384).

        Raises:
            ArtifactNotFoundError, CorruptArtifactError (naming the file and field), UnsupportedFormatError.
        """
        embedder = kwargs.get("embedder")
        dim = getattr(embedder, "dim", None) if embedder is not None else MiniLMEmbedder.dim
        parts = artifacts.load_router_parts(Path(directory), dim=dim if isinstance(dim, int) else None)
        parts.update(kwargs)
        return cls(**parts)

    # -------------------------------------------------------------------- accessors
    @property
    def state(self) -> RouterState:
        """The heavy parts (loaded on first access): registry, analyzer, index, embedder, pool,
        predictor. Onboarding changes them through its methods."""
        if self._state is not None:
            return self._state
        with self._lock:
            if self._state is None:
                self._state = build_state(self._loader, self._given, k=self.k, lam=self.lam)
        return self._state

    @property
    def registry(self) -> Registry:
        """The model registry (loads the router state on first access)."""
        return self.state.registry

    @property
    def models(self) -> list[str]:
        """The default candidate pool; also the columns of :meth:`predict_quality`."""
        return self.state.pool

    @property
    def index(self) -> OutcomeIndex | None:
        """The evaluation store used for kNN prediction, if any."""
        return self.state.index

    @property
    def analyzer(self) -> TaskAnalyzer:
        """The task analyzer."""
        return self.state.analyzer

    @property
    def embedder(self) -> Embedder:
        """The sentence embedder."""
        return self.state.embedder

    @property
    def predictor(self) -> Predictor:
        """The quality predictor in use (its ``kind`` and, after ``fit(predictor="auto")``, its
        ``selection``)."""
        return self.state.predictor

    @property
    def store(self) -> FeedbackStore:
        """Where decisions, feedback, observations and spend are recorded."""
        return self._store.store

    @property
    def feedback_memory(self) -> FeedbackMemory:
        """What feedback taught this router (:class:`~optiroute.learning.feedback_memory.FeedbackMemory`):
        pooled task/domain residuals and, with ``keep_prompts=True``, the rated-prompt kNN memory."""
        return self._feedback.memory

    # ---------------------------------------------------------------------- routing
    def _routing_context(self, st: RouterState) -> RoutingContext:
        return RoutingContext(
            embedder=st.embedder, analyzer=st.analyzer, predictor=st.predictor, policy=self.policy,
            lam=self.lam, corrections=self._feedback.corrections, latency_ratios=self._latency_ratios,
            explorer=self._explorer, keep_embeddings=self._feedback.memory.keep_embeddings,
            guard=self.guard, shared_text=self.shared_text,
        )

    def _route(
        self, items: list[RoutableText], prefs: Preferences, constraints: Constraints,
        candidates: Sequence[str] | None, *, batch: bool, show_progress: bool = False,
        embeddings: np.ndarray | None = None, explore: bool = False,
    ) -> RouteArrays:
        first = not self._ready
        if first:
            t0 = time.perf_counter()
            log.info("OptiRoute: the first decision loads the model cards, analyzer, outcome store and embedder "
                     "(a few seconds; Router.warm_up() does it at start-up)")
        st = self.state
        cards, columns = st.candidates(candidates)
        arrays = route_arrays(self._routing_context(st), items, prefs, constraints, cards, columns, batch=batch,
                              show_progress=show_progress, embeddings=embeddings, explore=explore)
        if first and embeddings is None:  # precomputed embeddings leave the embedder unloaded
            self._ready = True
            log.info("OptiRoute: router ready (first decision took %.1f s)", time.perf_counter() - t0)
        return arrays.relabelled(st.labels(candidates, cards), st.notes(candidates))

    def warm_up(self) -> Router:
        """Load everything a decision needs now, instead of during the first one (the bundled router's
        model cards, analyzer, outcome store and the MiniLM embedder: a few seconds, several times
        that with the torch encoder).

        Call it when a server or an adapter starts, so the first user does not wait. It routes one
        fixed text and records nothing (no decision, feedback or spend). Returns the router itself.
        Progress is logged at INFO on the ``optiroute.router.router`` logger.
        """
        if not self._ready:
            self.predict_quality(["warm-up"])
        return self

    def _route_within_budget(
        self, item: RoutableText, prefs: Preferences, cons: Constraints, candidates: Sequence[str] | None,
        user: str | None,
    ) -> RouteArrays:
        """Route one prompt under the room left in its budget scopes (``max_cost_usd``).

        Budgets steer here and are enforced at admission (:meth:`begin_call`): when no candidate fits
        the room left, the decision is made without the cap and admission refuses the call, so the
        refusal is recorded against a decision id like every other call.
        """
        remaining = remaining_usd(self._call_context(), user)
        if remaining is not None and remaining > 0:
            try:
                return self._route([item], prefs, cons.merged(Constraints(max_cost_usd=remaining)),
                                   candidates, batch=False, explore=True)
            except NoEligibleModelError:
                pass
        return self._route([item], prefs, cons, candidates, batch=False, explore=True)

    def _latency_ratios(self, cards: Sequence[ModelCard]) -> np.ndarray:
        groups = derived(cards, "latency_groups", lambda: [latency_group(c) for c in cards])
        return np.asarray(self._latency.ratios(card_names(cards), groups), dtype=np.float32)

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
        checks.call_ids(user, run_id)
        item = to_routable(prompt_or_messages)
        prefs = coerce_preferences(preferences, default=self.preferences)
        cons = self.constraints.merged(Constraints.coerce(constraints))
        arrays = self._route_within_budget(item, prefs, cons, candidates, user)
        keep = getattr(self.store, "keep_prompts", False)  # the store drops it otherwise, too
        decision = self._materialise(arrays, 0, uuid.uuid4().hex, run_id=run_id, user=user,
                                     prompt=item.text if keep else None)
        if decision.generalist_fallback:  # name notes were warned once by the registry already
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
                this router's embedder and pruning, after :attr:`shared_text` is removed), to skip
                encoding when routing the same prompts under many preferences.
            budget_usd: a total budget for the whole batch: the models are then chosen to maximise
                total predicted quality with total predicted cost within it (hard constraints still
                apply; preferences only shape the explanations), and a
                :class:`~optiroute.routing.budgeted.BudgetedBatch` is returned. Raises
                :class:`~optiroute.errors.BudgetExceededError` (with the minimum budget) when even
                every prompt's cheapest eligible model costs more. See :mod:`optiroute.routing.budgeted`.
            alpha: with ``budget_usd``, use Routoo's ``quality / cost**alpha`` selector instead of
                the default marginal-quality-per-dollar greedy.
            explore: apply the policy's exploration share (``PolicyConfig.explore``, off by default);
                ``False`` routes every prompt by score. Budgeted batches never explore.

        Returns a :class:`BatchDecisions`: ``.model_names`` (one per prompt) and arrays are ready at
        once; indexing it (``batch[i]``) materialises a full :class:`RoutingDecision`.
        """
        batch_size, budget_usd, alpha = checks.batch_options(texts, batch_size, budget_usd, alpha)
        items = [to_routable(t) for t in texts]
        if not items:
            raise InvalidInputError("decide_batch got no prompts.")
        prefs = coerce_preferences(preferences, default=self.preferences)
        cons = self.constraints.merged(Constraints.coerce(constraints))
        parts = [
            self._route(items[s : s + batch_size], prefs, cons, candidates, batch=True,
                        show_progress=show_progress, explore=explore and budget_usd is None,
                        embeddings=None if embeddings is None else embeddings[s : s + batch_size])
            for s in range(0, len(items), batch_size)
        ]
        if budget_usd is not None:
            batch: BudgetedBatch = allocate_batch(parts, self._materialise, budget_usd, alpha=alpha)
            return batch
        return BatchDecisions(parts, self._materialise)

    def choose_batch_model(self, texts: Sequence[Any], *, sample: float = 0.05, **kwargs: Any) -> BatchModelChoice:
        """Batch mode: route a seeded ``sample`` of a batch and pick ONE model for all of it.

        Returns a :class:`~optiroute.router.batch_mode.BatchModelChoice` (the model, and ``agreement``:
        the share of sampled prompts whose own routing chose it). Keyword arguments (``preferences``,
        ``constraints``, ``candidates``, ``seed``, ``min_sample``, ``embeddings``) are those of
        :func:`optiroute.router.batch_mode.choose_batch_model`.
        """
        return choose_batch_model(self, texts, sample=sample, **kwargs)

    def predict_quality(self, texts: Sequence[Any], *, candidates: Sequence[str] | None = None) -> np.ndarray:
        """Predicted quality, shape (n_prompts, n_models); columns follow :attr:`models` (or
        ``candidates``)."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        batch = self.decide_batch(
            texts, preferences="quality-first", candidates=candidates, constraints=None, explore=False
        )
        return np.concatenate([p.quality for p in batch.parts], axis=0)

    def _materialise(
        self, arrays: RouteArrays, i: int, decision_id: str, *, run_id: str | None = None,
        user: str | None = None, prompt: str | None = None,
    ) -> RoutingDecision:
        decision = arrays.decision(i, decision_id, self.policy.max_fallbacks, self.state.neighbours)
        self._feedback.record_decision(arrays, i, decision, run_id=run_id, user=user, prompt=prompt)
        return decision

    # ------------------------------------------------------------------ calls and budgets
    def _call_context(self) -> CallContext:
        return CallContext(registry=self.registry, budget=self.budget, store=self._store, latency=self._latency)

    def open_call(
        self, decision: RoutingDecision, *, chain: Sequence[str] = (), user: str | None = None,
        run_id: UUID | str | None = None, max_tokens: int | None = None,
    ) -> CallAccount:
        """Admit a call to ``decision.model`` (or its fallbacks ``chain``) and return its accounting,
        which records every attempt and settles the budget exactly once (what the adapters use).

        Raises:
            BudgetExceededError: a budget scope has no room for the call's cost bound.
        """
        return CallAccount(self._call_context(), decision, chain=chain, user=user,
                           run_id=None if run_id is None else str(run_id), max_tokens=max_tokens)

    def begin_call(
        self, decision: RoutingDecision, *, chain: Sequence[str] = (), user: str | None = None,
        run_id: UUID | str | None = None, max_tokens: int | None = None,
    ) -> CallTicket:
        """Admit a call to ``decision.model`` (or its fallbacks ``chain``) under the budget.

        Raises:
            BudgetExceededError: a budget scope has no room for the call's cost bound.
        """
        return begin_call(self._call_context(), decision, chain=chain, user=user,
                          run_id=None if run_id is None else str(run_id), max_tokens=max_tokens)

    def end_call(
        self, ticket: CallTicket, *, model: str, input_tokens: int | None = None,
        output_tokens: int | None = None, ok: bool = True, error: str | None = None,
        latency_s: float | None = None, decision: RoutingDecision | None = None,
    ) -> float:
        """Settle a call admitted by :meth:`begin_call` and record it; returns the USD charged."""
        return end_call(self._call_context(), ticket, model=model, input_tokens=input_tokens,
                        output_tokens=output_tokens, ok=ok, error=error, latency_s=latency_s, decision=decision)

    def spent(self, user: str | None = None) -> dict[str, float]:
        """USD spent (settled + reserved) per budget scope of ``user`` (router scope included)."""
        if self.budget is None:
            return {}
        return {k: self._store.spent(k) for k in scope_keys(self.budget, user)}

    # ------------------------------------------------------------------ feedback and observations
    def record_feedback(
        self, decision_id: str | None, score: float, *, comment: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Attach feedback (1.0 = thumbs up, 0.0 = thumbs down, or any score in 0..1).

        Later decisions shift predicted quality by the residuals (score - quality predicted before
        feedback) pooled per task type and domain, shared across models and per model, and, with
        ``keep_prompts=True``, by the feedback on the most similar rated prompts
        (:mod:`optiroute.learning.feedback_memory`).

        Args:
            decision_id: the decision's id; ``None`` to find it by ``run_id`` in the store.
            run_id: the run id the decision was made under (``decide(run_id=...)``).

        Raises:
            FeedbackError: unknown decision id or run id, or a score outside 0..1.
        """
        checks.feedback_ids(decision_id, run_id, comment)
        self._feedback.record_feedback(decision_id, score, comment, run_id)

    def decision_for_run(self, run_id: UUID | str) -> str | None:
        """The id of the latest decision recorded under ``run_id`` (any store sharing this router's
        database sees it), or ``None``."""
        return self._store.decision_for_run(run_id)

    def store_status(self) -> dict[str, Any]:
        """``{"degraded": bool, "error": last store error or None, "buffered_decisions": n}``."""
        return self._store.status()

    def record_observation(
        self, decision_id: str | None = None, *, model: str, latency_s: float,
        input_tokens: int | None = None, output_tokens: int | None = None,
        cost_usd: float | None = None, ok: bool = True,
    ) -> None:
        """Record an observed call made outside :meth:`begin_call`/:meth:`end_call`: one row in
        the store, and observed latency progressively replaces the card estimate (a damped running
        mean of the observed / estimated ratio per model).

        Raises:
            InvalidInputError: latency outside 0..1e6 s, token counts that are not integers in 0..1e9,
                a cost outside 0..1e9 USD (each message names the field and the range).
        """
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"record_observation needs the model's name, got {model!r}.")
        if decision_id is not None and not isinstance(decision_id, str):
            raise InvalidInputError(f"decision_id must be a string or None, got {type(decision_id).__name__}.")
        tin, tout, seconds = check_usage(input_tokens, output_tokens, latency_s)
        if seconds is None:
            raise InvalidInputError("record_observation needs latency_s, the call's wall time in seconds.")
        cost = None if cost_usd is None else real(cost_usd, "cost_usd", lo=0.0, hi=MAX_USD)
        card = self.registry.resolve(model)
        self._store.write("record_observation", ObservationRecord(
            decision_id=decision_id, model=card.name, latency_s=seconds,
            input_tokens=tin, output_tokens=tout, cost_usd=cost, ok=bool(ok),
            error=None, user=None, run_id=None, created_at=datetime.now(timezone.utc),
        ))
        if ok and seconds > 0:
            observe_latency(self._latency, card, seconds, tout)

    def latency_ratio(self, model: str) -> float | None:
        """The multiplier observed calls apply to ``model``'s card latency (``None`` before any
        observation); see :class:`~optiroute.learning.latency.LatencyTracker` for how one slow call
        is damped."""
        return self._latency.ratio(self.registry.resolve(model).name)


_ROUTER_KW = {"preferences", "constraints", "store", "budget", "policy", "k", "lam", "models",
              "keep_prompts"}
