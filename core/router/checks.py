"""The Router facade's argument checks, in one place: settings, ids, batch options, feedback and
observations. Numbers go through :mod:`optiroute.schema.numbers`, so every message names the argument
and its allowed range."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from optiroute.errors import FeedbackError, InvalidConstraintsError, InvalidInputError
from optiroute.routing.policy import PolicyConfig
from optiroute.schema.budget import Budget
from optiroute.schema.numbers import MAX_COUNT, MAX_USD, integer, real
from optiroute.store.records import FeedbackStore

__all__ = ["MAX_COMMENT_CHARS", "MAX_NEIGHBOURS", "batch_options", "call_ids", "feedback_ids", "model_names",
           "router_settings"]

#: The most neighbours a kNN prediction may use.
MAX_NEIGHBOURS = 10_000
#: The longest feedback comment kept.
MAX_COMMENT_CHARS = 10_000


def router_settings(k: Any, lam: Any, budget: Any, policy: Any, store: Any) -> tuple[int, float]:
    """``(k, lam)`` checked, and the types of ``budget``, ``policy`` and ``store``.

    Raises:
        InvalidInputError: ``k`` not an integer in 1..10000, ``lam`` not in (0, 1e6], a policy or store
            of the wrong type. InvalidConstraintsError: a budget that is not a :class:`Budget`.
    """
    k = integer(k, "Router 'k' (neighbours per prediction)", lo=1, hi=MAX_NEIGHBOURS)
    lam = real(lam, "Router 'lam' (prior strength)", lo=0.0, lo_open=True, hi=1e6,
               hint="It weighs the card prior against the neighbours' evidence; the default is 3.")
    if budget is not None and not isinstance(budget, Budget):
        raise InvalidConstraintsError(f"budget must be a Budget (or None), got {type(budget).__name__}.")
    if policy is not None and not isinstance(policy, PolicyConfig):
        raise InvalidInputError(f"policy must be a PolicyConfig (or None), got {type(policy).__name__}.")
    if store is not None and not isinstance(store, FeedbackStore):
        raise InvalidInputError(f"store must be a FeedbackStore (see open_store), got {type(store).__name__}.")
    return k, lam


def model_names(models: Sequence[str] | None) -> list[str] | None:
    """The default pool as given (``None`` or empty: the store's models)."""
    if models is None:
        return None
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise InvalidInputError("models must be a list of model names, not one string.")
    bad = [m for m in models if not isinstance(m, str) or not m.strip()]
    if bad:
        raise InvalidInputError(f"models must be non-empty model names (strings), got {bad[0]!r}.")
    return list(models) or None


def call_ids(user: Any, run_id: Any) -> None:
    """The caller key is a string and the run id a string or UUID (either may be ``None``)."""
    if user is not None and not isinstance(user, str):
        raise InvalidInputError(f"user must be the caller's key (a string) or None, got {type(user).__name__}.")
    if run_id is not None and not isinstance(run_id, (str, UUID)):
        raise InvalidInputError(f"run_id must be a string or UUID (or None), got {type(run_id).__name__}.")


def batch_options(texts: Any, batch_size: Any, budget_usd: Any, alpha: Any) -> tuple[int, float | None, float | None]:
    """``decide_batch``'s options checked: ``(batch_size, budget_usd, alpha)``."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidInputError("decide_batch takes a list of prompts; use decide() for one.")
    size = integer(batch_size, "batch_size", lo=1, hi=MAX_COUNT)
    budget = None if budget_usd is None else real(
        budget_usd, "budget_usd", lo=0.0, hi=MAX_USD, error=InvalidConstraintsError,
        hint="It is the whole batch's predicted cost in USD.")
    a = None if alpha is None else real(alpha, "alpha", lo=0.0, hi=100.0, error=InvalidConstraintsError,
                                        hint="It is Routoo's cost exponent (quality / cost**alpha).")
    return size, budget, a


def feedback_ids(decision_id: Any, run_id: Any, comment: Any) -> None:
    """Feedback's decision id, run id and comment have the right types (the score is the store's check)."""
    if decision_id is not None and not isinstance(decision_id, str):
        raise FeedbackError(f"decision_id must be a decision's id (a string) or None, "
                            f"got {type(decision_id).__name__}.")
    if run_id is not None and not isinstance(run_id, (str, UUID)):
        raise FeedbackError(f"run_id must be a string or UUID, got {type(run_id).__name__}.")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS):
        raise FeedbackError(f"comment must be a string of at most {MAX_COMMENT_CHARS} characters (or None).")
