"""Online learning from feedback: pooled group residuals and a kNN memory of rated prompts.

Feedback on a decision gives one residual, ``score - q``, where ``q`` is the quality predicted for
the chosen model *before* feedback corrections. Two estimates are learned from residuals:

1. **Groups** (always): a ridge fit of the residual on five one-hot blocks: task type, domain and
   complexity decile shared by all models, and (model, task type) and (model, domain). Feedback
   only reaches the models routing chooses, and a predictor that is miscalibrated for every model
   alike (e.g. all under-predicted on a data set harder than assumed, or on hard prompts) would
   otherwise make whichever model got feedback look better or worse *than the others*, and routing
   would drift towards or away from it for no real reason (a model chosen mostly for hard prompts
   would inherit the difficulty miscalibration). The shared blocks absorb what the observed models
   have in common: with equal priors, when K models show the same offset, 3K/(3K+2) of it also
   applies to models never observed (60 % of a lone model's residual), so a model that keeps
   disappointing still loses ground against the others, more slowly. Each block's ridge prior is
   estimated by empirical Bayes (noise variance / variance between its cells, method of moments,
   bounded): where models really differ per task or domain, the per-model blocks learn fast; where
   the differences are noise, they stay near zero, so a few lucky or unlucky votes do not reorder
   models whose predicted qualities are close. Solved by block coordinate descent, warm-started,
   only when feedback arrived since the last solve. Kept per event: the block ids and the residual.
2. **Nearest rated prompts** (only with ``keep_prompts=True`` on the router): the residuals of the
   ``k`` rated prompts nearest to the query *that were routed to that model*, minus their group
   estimate, weighted ``exp((cos - 1) / tau)`` as in the evaluation store and shrunk by
   ``local_prior``: ``group(query) + sum w_i (r_i - group_i) / (sum w_i + local_prior)``. A query unlike
   every rated prompt keeps the group estimate.

Residuals are taken against the prediction *before* feedback: taken against the corrected one, each
correction feeds back into its own residuals and a shrunk mean settles at about half the real gap.

Memory is bounded: group events (5 int32 ids and a float each), rated prompts (an int8 unit vector
of ``dim`` bytes, ids, residual and score) and decisions awaiting feedback (their complexity, a
number, plus the embedding with ``keep_prompts``) live in bounded rings or queues, oldest first out.
No embedding or text of a prompt is kept unless the router was built with ``keep_prompts=True``;
everything lives in process memory (:meth:`FeedbackMemory.load_history` refills the groups from a
durable store).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from optiroute.errors import InvalidInputError, StoreError

__all__ = ["FeedbackMemory", "store_history"]

#: Block coordinate descent stops when no coefficient moves more than TOL, or after MAX_SWEEPS.
MAX_SWEEPS, TOL = 200, 1e-6
#: Bounds of the empirical-Bayes block priors, and the smallest noise variance assumed.
PRIOR_RANGE, NOISE_FLOOR = (1.0, 1e4), 1e-3
#: Starting ridge prior of every block before empirical Bayes moves it.
START_PRIOR = 20.0
#: Coefficient blocks: shared task type, shared domain, shared complexity decile, model x task
#: type, model x domain.
BLOCKS = 5


def _cbin(complexity: float | None) -> str:
    """Complexity decile key ('?' when unknown, e.g. history read back from a store)."""
    if complexity is None or not np.isfinite(complexity):
        return "?"
    return str(min(int(complexity * 10), 9))


def _q8(emb: np.ndarray) -> np.ndarray:
    """Unit vectors -> int8 (x127), the evaluation store's format."""
    return np.clip(np.rint(np.asarray(emb, dtype=np.float32) * 127.0), -127, 127).astype(np.int8)


class FeedbackMemory:
    """Pooled group residuals and a bounded kNN memory of rated prompts, for one router.

    Args:
        keep_embeddings: keep the embedding of each routed prompt until its feedback arrives, and
            of each rated prompt afterwards (the router's ``keep_prompts``).
        groups: ``"pooled"`` (default) for the ridge fit above; ``"store"`` for the store's shrunk
            mean residual per (model, task type) alone, as before this module (kept for comparison;
            rated prompts are then not used).
        group_prior: ridge prior of every group coefficient; ``None`` (default) estimates one per
            block by empirical Bayes (:attr:`block_priors`).
        capacity: rated prompts kept (a ring: the oldest is overwritten first).
        max_events: group feedback events kept (a ring).
        max_pending: routed decisions whose embedding waits for feedback (oldest dropped first).
        k: rated neighbours per (query, model).
        tau: similarity temperature of neighbour weights.
        local_prior: pseudo-weight of the group estimate against the rated neighbours.
    """

    def __init__(
        self,
        *,
        keep_embeddings: bool = False,
        groups: str = "pooled",
        group_prior: float | None = None,
        capacity: int = 20_000,
        max_events: int = 100_000,
        max_pending: int = 20_000,
        k: int = 16,
        tau: float = 0.1,
        local_prior: float = 1.0,
    ) -> None:
        if groups not in ("pooled", "store"):
            raise InvalidInputError(f"FeedbackMemory groups must be 'pooled' or 'store', got {groups!r}.")
        if min(capacity, max_events, k) < 1 or max_pending < 0 or min(tau, local_prior) <= 0 or (
                group_prior is not None and group_prior <= 0):
            raise InvalidInputError(
                "FeedbackMemory needs capacity, max_events and k >= 1, max_pending >= 0, and positive "
                "tau, local_prior and group_prior (or group_prior=None for empirical Bayes)."
            )
        self.keep_embeddings, self.groups, self.group_prior = keep_embeddings, groups, group_prior
        self.capacity, self.max_events, self.max_pending = capacity, max_events, max_pending
        self.k, self.tau, self.local_prior = k, tau, local_prior
        self._lock = threading.RLock()
        self._fid: dict[tuple[str, ...], int] = {}  # group feature key -> coefficient index
        self._ev_feat = np.zeros((max_events, BLOCKS), dtype=np.int32)
        self._ev_resid = np.zeros(max_events, dtype=np.float32)
        self._ev_size = self._ev_next = 0
        self._beta = np.zeros(0, dtype=np.float64)
        #: Ridge prior of each block, in :data:`BLOCKS` order (estimated when group_prior is None).
        self.block_priors = np.full(BLOCKS, START_PRIOR if group_prior is None else group_prior)
        self._dirty = False
        self._emb: np.ndarray | None = None  # (capacity, dim) int8, allocated on first add
        self._feat = np.zeros((capacity, BLOCKS), dtype=np.int32)
        self._model = np.zeros(capacity, dtype=np.int32)
        self._mid: dict[str, int] = {}
        self._resid = np.zeros(capacity, dtype=np.float32)
        self._score = np.zeros(capacity, dtype=np.float32)
        self._size = self._next = 0
        self._pending: OrderedDict[str, tuple[np.ndarray | None, float | None]] = OrderedDict()
        #: Set once :meth:`load_history` ran (the router fills the groups from its store once).
        self.history_loaded = False

    # ----------------------------------------------------------------- inspection
    def __len__(self) -> int:
        """Rated prompts currently in the kNN memory."""
        return self._size

    @property
    def events(self) -> int:
        """Feedback events the group estimates learn from."""
        return self._ev_size

    @property
    def pending(self) -> int:
        """Routed decisions whose embedding waits for feedback."""
        return len(self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes held by the bounded arrays (rated prompts and group events)."""
        emb = 0 if self._emb is None else self._emb.nbytes
        arrays = (self._feat, self._resid, self._score, self._model, self._ev_feat, self._ev_resid)
        return emb + sum(a.nbytes for a in arrays)

    # ----------------------------------------------------------------- routing side
    def remember(self, decision_id: str, embedding: np.ndarray | None, complexity: float | None) -> None:
        """Keep what feedback on a routed decision will need: the analyzer's complexity estimate (a
        number) and, with ``keep_embeddings`` only, the prompt's embedding."""
        if self.max_pending == 0:
            return
        row = None
        if self.keep_embeddings and embedding is not None:
            row = embedding if embedding.dtype == np.int8 else _q8(embedding)
        with self._lock:
            self._pending[decision_id] = (row, complexity)
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)

    # ----------------------------------------------------------------- feedback side
    def _features(self, model: str, task: str, domain: str, complexity: float | None) -> np.ndarray:
        keys = (("t", task), ("d", domain), ("c", _cbin(complexity)),
                ("mt", model, task), ("md", model, domain))
        return np.array([self._fid.setdefault(k, len(self._fid)) for k in keys], dtype=np.int32)

    def learn(self, decision_id: str | None, score: float, *, model: str, task: str, domain: str,
              base_quality: float) -> bool:
        """Learn from feedback on a decision; returns whether its prompt entered the kNN memory."""
        resid = float(score) - float(base_quality)
        with self._lock:
            row, cx = self._pending.pop(decision_id, (None, None)) if decision_id else (None, None)
            feat = self._features(model, task, domain, cx)
            self._ev_feat[self._ev_next], self._ev_resid[self._ev_next] = feat, resid
            self._ev_next = (self._ev_next + 1) % self.max_events
            self._ev_size = min(self._ev_size + 1, self.max_events)
            self._dirty = True
            if row is None or not self.keep_embeddings:
                return False
            if self._emb is None:
                self._emb = np.zeros((self.capacity, row.shape[0]), dtype=np.int8)
            pos = self._next
            self._emb[pos], self._feat[pos] = row, feat
            self._model[pos] = self._mid.setdefault(model, len(self._mid))
            self._resid[pos], self._score[pos] = resid, score
            self._next = (self._next + 1) % self.capacity
            self._size = min(self._size + 1, self.capacity)
        return True

    def load_history(self, rows: Iterable[tuple[str, str, str, float, float]]) -> int:
        """Refill the group estimates from ``(model, task, domain, score, base_quality)`` rows (e.g.
        a durable store's feedback joined with its decisions); returns how many were read."""
        self.history_loaded = True
        n = 0
        for model, task, domain, score, base in rows:
            self.learn(None, score, model=model, task=task, domain=domain, base_quality=base)
            n += 1
        return n

    def _solve(self) -> np.ndarray:
        """Ridge coefficients of the group blocks (block coordinate descent, warm-started)."""
        with self._lock:
            if not self._dirty:
                return self._beta
            feat = self._ev_feat[: self._ev_size].copy()
            r = self._ev_resid[: self._ev_size].astype(np.float64)
            nf = len(self._fid)
            self._dirty = False
        beta = np.zeros(nf)
        beta[: len(self._beta)] = self._beta
        lam = self.block_priors.copy()
        counts = [np.bincount(feat[:, b], minlength=nf) for b in range(BLOCKS)]
        for _ in range(MAX_SWEEPS):
            before = beta.copy()
            for b in range(BLOCKS):
                part = r - (beta[feat].sum(axis=1) - beta[feat[:, b]])
                sums = np.bincount(feat[:, b], weights=part, minlength=nf)
                touched = counts[b] > 0
                n = counts[b][touched]
                if self.group_prior is None:  # empirical Bayes: prior = noise / between-cell variance
                    noise = max(float(np.mean((part - beta[feat[:, b]]) ** 2)), NOISE_FLOOR)
                    spread = (float(np.sum(sums[touched] ** 2 / n)) - noise * len(n)) / float(n.sum())
                    lam[b] = float(np.clip(noise / max(spread, 1e-12), *PRIOR_RANGE))
                beta[touched] = sums[touched] / (n + lam[b])
            if np.abs(beta - before).max(initial=0.0) < TOL:
                break
        with self._lock:
            self._beta, self.block_priors = beta, lam
        return beta

    def _group(self, models: Sequence[str], tasks: Sequence[str], domains: Sequence[str],
               complexity: np.ndarray | None, beta: np.ndarray) -> np.ndarray:
        """Group estimate (n, m): the sum of the block coefficients of each (prompt, model)."""
        fid = self._fid

        def coef(*key: str) -> float:
            j = fid.get(key)
            return float(beta[j]) if j is not None and j < len(beta) else 0.0

        shared_t = _table([""], tasks, lambda _, t: coef("t", t))
        shared_d = _table([""], domains, lambda _, d: coef("d", d))
        own_t = _table(models, tasks, lambda m, t: coef("mt", m, t))
        own_d = _table(models, domains, lambda m, d: coef("md", m, d))
        bins = [_cbin(float(c)) for c in complexity] if complexity is not None else [_cbin(None)] * len(tasks)
        shared_c = _table([""], bins, lambda _, c: coef("c", c))
        return shared_t + shared_d + shared_c + own_t + own_d

    # ----------------------------------------------------------------- corrections
    def local(
        self, embeddings: np.ndarray, models: Sequence[str], *, chunk: int = 512
    ) -> tuple[np.ndarray, np.ndarray]:
        """Weighted sum of de-grouped residuals and weight of the ``k`` nearest rated prompts per
        (query, model): ``(num, den)`` of shape (n, len(models)), 0 where a model has none.

        Vectorised: one matrix product per chunk of queries, one partial sort per model.
        """
        n = len(embeddings)
        num = np.zeros((n, len(models)), dtype=np.float32)
        den = np.zeros_like(num)
        with self._lock:
            size = self._size
            if size == 0 or self._emb is None:
                return num, den
            mem = self._emb[:size].astype(np.float32) / 127.0
            feat, resid = self._feat[:size].copy(), self._resid[:size].astype(np.float64)
            row_model = self._model[:size].copy()
            want = [self._mid.get(m, -1) for m in models]
        beta = self._solve()
        resid = resid - beta[feat].sum(axis=1)
        mem /= np.maximum(np.linalg.norm(mem, axis=1, keepdims=True), 1e-12)
        groups = [(j, np.flatnonzero(row_model == mid)) for j, mid in enumerate(want) if mid >= 0]
        groups = [(j, rows) for j, rows in groups if len(rows)]
        q = np.asarray(embeddings, dtype=np.float32)
        for s in range(0, n, chunk):
            sims = q[s : s + chunk] @ mem.T
            for j, rows in groups:
                sm = sims[:, rows]
                k = min(self.k, len(rows))
                if k < len(rows):
                    part = np.argpartition(-sm, k - 1, axis=1)[:, :k]
                    sm = np.take_along_axis(sm, part, axis=1)
                    r = resid[rows][part]
                else:
                    r = np.broadcast_to(resid[rows], sm.shape)
                w = np.exp((sm - 1.0) / self.tau)
                num[s : s + chunk, j] = (w * r).sum(axis=1)
                den[s : s + chunk, j] = w.sum(axis=1)
        return num, den

    def corrections(
        self,
        models: Sequence[str],
        tasks: Sequence[str],
        domains: Sequence[str],
        embeddings: np.ndarray | None,
        task_corrections: Mapping[tuple[str, str], float],
        complexity: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Additive quality corrections of shape (n_prompts, n_models); ``None`` without feedback.

        Args:
            models: candidate names (output columns).
            tasks, domains: the analyzer's task type and domain per prompt.
            embeddings: the prompts' unit embeddings (used when rated prompts are kept).
            task_corrections: the store's ``(model, task type) -> shrunk mean residual``, the group
                estimate when ``groups="store"``.
            complexity: the analyzer's complexity estimate per prompt (0..1), if known.
        """
        if self.groups == "store":
            if not task_corrections:
                return None
            return _table(models, tasks, lambda m, t: task_corrections.get((m, t), 0.0))
        if self._ev_size == 0:
            return None
        out = self._group(models, tasks, domains, complexity, self._solve())
        if self._size > 0 and embeddings is not None:
            num, den = self.local(embeddings, models)
            out = out + num / (den + self.local_prior)
        return out.astype(np.float32)


def _table(models: Sequence[str], keys: Sequence[str], value: Any) -> np.ndarray:
    """(n, m) matrix of ``value(model, key_of_row)``, looking each distinct key up once."""
    uniq, inv = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    table = np.array([[value(m, u) for m in models] for u in uniq.tolist()], dtype=np.float32)
    return table.reshape(len(uniq), len(models))[inv.reshape(-1)]


def store_history(store: Any) -> Iterator[tuple[str, str, str, float, float]]:
    """``(model, task, domain, score, base_quality)`` of every feedback a store holds, oldest first.

    Empty for stores that cannot read feedback back, and when the store fails (routing must not).
    """
    try:
        rows = store.feedback_history()
    except (AttributeError, NotImplementedError, StoreError):
        return
    yield from rows
