"""Feedback from an adapter: find the decision behind a stamped answer, a run id or a decision id."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from optiroute.errors import FeedbackError
from optiroute.integration.call import STAMP_KEY

if TYPE_CHECKING:
    from optiroute.router.router import Router

__all__ = ["FeedbackTarget", "RunIndex", "decision_id_of", "feedback_target", "forward_feedback", "record_feedback"]

_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class RunIndex:
    """Run id -> decision id for the most recent calls of one adapter (thread-safe, bounded).

    Answers run-id feedback even when the router's store cannot look runs up (custom stores).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, run_id: UUID | str | None, decision_id: str) -> None:
        """Remember the decision made under ``run_id`` (no-op without a run id)."""
        if run_id is None:
            return
        with self._lock:
            self._runs[str(run_id)] = decision_id
            while len(self._runs) > self._limit:
                self._runs.popitem(last=False)

    def get(self, run_id: UUID | str) -> str | None:
        """The decision remembered for ``run_id``, if any."""
        with self._lock:
            return self._runs.get(str(run_id))


@dataclass(frozen=True)
class FeedbackTarget:
    """What a piece of feedback is about: a known decision id, or a run id to look up."""

    decision_id: str | None = None
    run_id: str | None = None


def feedback_target(target: str | UUID | Mapping[str, Any], *, runs: RunIndex | None = None) -> FeedbackTarget:
    """Read what feedback is about from a decision id, a run id or a stamped metadata dict.

    - a mapping: the stamped metadata (``response_metadata`` / ``additional_kwargs``, or the
      :data:`STAMP_KEY` payload itself) -> its decision id;
    - a :class:`~uuid.UUID`, or a string in canonical UUID form (with dashes) -> a run id, looked up
      in ``runs`` first;
    - any other string -> a decision id (``decide`` makes them as 32 hex digits), unless ``runs``
      knows it as a run id.

    Raises:
        FeedbackError: a mapping without a decision, or a target of another type.
    """
    if isinstance(target, Mapping):
        stamp = target.get(STAMP_KEY, target)
        did = stamp.get("decision_id") if isinstance(stamp, Mapping) else None
        if not did and isinstance(stamp, Mapping) and stamp.get("cached"):
            raise FeedbackError(
                "This answer was served from the LLM cache, so no routing decision was made for it; give "
                "feedback on the routed answer that filled the cache (its message, decision id or run id)."
            )
        if not did:
            raise FeedbackError(
                "This response carries no OptiRoute decision (no 'optiroute' entry in its metadata): was "
                "it produced by a routed model? Give feedback by decision id or run id instead."
            )
        return FeedbackTarget(decision_id=str(did))
    if not isinstance(target, (str, UUID)):
        raise FeedbackError(
            f"Cannot give feedback on a {type(target).__name__}; pass a routed response, a decision id "
            "or a run id."
        )
    key = str(target)
    known = runs.get(key) if runs is not None else None
    if known is not None:
        return FeedbackTarget(decision_id=known)
    if isinstance(target, UUID) or _RUN_ID.match(key):
        return FeedbackTarget(run_id=key)
    return FeedbackTarget(decision_id=key)


def decision_id_of(router: Router, target: str | UUID | Mapping[str, Any], *, runs: RunIndex | None = None) -> str:
    """The decision id feedback on ``target`` reaches (see :func:`feedback_target`); a run id not
    in ``runs`` is looked up in the router's store, so feedback also works from another process.

    Raises:
        FeedbackError: no decision is known for the target.
    """
    found = feedback_target(target, runs=runs)
    if found.decision_id is not None:
        return found.decision_id
    run_id = str(found.run_id)
    try:
        did = router.decision_for_run(run_id)
    except NotImplementedError:  # a custom store that does not index runs
        did = None
    if did is None:
        raise FeedbackError(
            f"No decision was recorded under run id {run_id!r}; pass the routed response or its "
            "decision id, or use a store shared with the process that made the call."
        )
    return did


def record_feedback(router: Router, target: str | UUID | Mapping[str, Any], score: float, *,
                    comment: str | None = None, runs: RunIndex | None = None) -> str:
    """Record a score (1.0 up, 0.0 down, or 0..1) for ``target``; returns the decision id it reached.

    Raises:
        FeedbackError: unknown decision or run, or a score outside 0..1.
    """
    did = decision_id_of(router, target, runs=runs)
    router.record_feedback(did, score, comment=comment)
    return did


def forward_feedback(router: Router, run: str | UUID, decision_ids: list[str], score: float, *,
                     comment: str | None = None) -> list[str]:
    """Record one rating on a run (a chain, an agent, a model call) for every decision a framework
    handler saw inside it; a run the handler did not see is looked up in the router's store (its
    latest decision), so a rating collected in another process that shares the store still arrives.
    Returns the decision ids rated.

    Raises:
        FeedbackError: no decision is known for the run, or the score is outside 0..1.
    """
    ids = list(dict.fromkeys(decision_ids))
    if not ids:
        return [record_feedback(router, run, score, comment=comment)]
    for did in ids:
        record_feedback(router, did, score, comment=comment)
    return ids
