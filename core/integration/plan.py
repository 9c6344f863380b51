"""Routing one framework call: candidate keys to cards, tools, the decision, and admission."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from optiroute.errors import InvalidInputError
from optiroute.integration.call import CallPlan, Route, writes_block
from optiroute.integration.capabilities import apply_capabilities
from optiroute.integration.workers import run_in_worker, run_store_write

if TYPE_CHECKING:
    from optiroute.router.router import Router
    from optiroute.schema.decision import ConstraintsLike
    from optiroute.schema.preferences import PreferencesLike

__all__ = ["aadmit", "aplan_call", "aroute_call", "plan_call", "resolve_candidates", "route_call"]


def resolve_candidates(router: Router, candidates: Mapping[str, str]) -> dict[str, str]:
    """The caller's model name -> candidate key, one per card (resolved through the registry).

    Decisions come back in the caller's own model names (the card is a separate field). Two keys
    that resolve to the same card (aliases) route as one: the first key wins. Unknown names get a
    prior card (and one warning) from the registry.

    Raises:
        InvalidInputError: no candidates.
    """
    if not candidates:
        raise InvalidInputError("A routed model needs at least one candidate model; pass some in `models`.")
    by_card: dict[str, tuple[str, str]] = {}
    for key, name in candidates.items():
        by_card.setdefault(router.registry.resolve(name).name, (name, key))
    return dict(by_card.values())


def route_call(
    router: Router, messages: Any, *, candidates: Mapping[str, str], objects: Mapping[str, Any] | None = None,
    preferences: PreferencesLike = None,
    constraints: ConstraintsLike = None, user: str | None = None, run_id: UUID | str | None = None,
    needs_tools: bool = False, tool_capable: Collection[str] = (),
) -> Route:
    """Decide one call among ``candidates`` (key -> model name) without admitting it yet.

    Args:
        messages: the prompt or chat history, in any form :meth:`optiroute.Router.decide` accepts.
        preferences: already resolved (:func:`resolve_preferences`); ``None`` = the router's default.
        needs_tools: the call binds tools, so only keys in ``tool_capable`` may answer it.
        objects: candidate key -> the framework's model object: its own profile fills its card's
            context window and tool / JSON support (:mod:`optiroute.integration.capabilities`).

    Raises:
        InvalidInputError: no candidates, or tools are needed and no candidate can call them.
        NoEligibleModelError and the other errors of :meth:`optiroute.Router.decide`.
    """
    if objects:
        apply_capabilities(router, candidates, objects)
    names = resolve_candidates(router, candidates)
    pool = list(names)
    if needs_tools:
        pool = [n for n in pool if names[n] in tool_capable]
        if not pool:
            raise InvalidInputError(
                f"Tools were given but none of the candidates ({', '.join(names.values())}) supports tool "
                "calling; add a tool-capable candidate model, or call without tools."
            )
    rid = None if run_id is None else str(run_id)
    decision = router.decide(messages, preferences=preferences, constraints=constraints, candidates=pool,
                             user=user, run_id=rid)
    eligible = set(pool)
    order = [m for m in dict.fromkeys([decision.model, *decision.fallbacks]) if m in eligible]
    chain = tuple(names[m] for m in order)
    return Route(router, decision, chain, {names[m]: m for m in order}, user, rid)


def plan_call(
    router: Router, messages: Any, *, candidates: Mapping[str, str], objects: Mapping[str, Any] | None = None,
    preferences: PreferencesLike = None,
    constraints: ConstraintsLike = None, user: str | None = None, run_id: UUID | str | None = None,
    needs_tools: bool = False, tool_capable: Collection[str] = (), max_tokens: int | None = None,
    candidate_max_tokens: Mapping[str, int | None] | None = None,
) -> CallPlan:
    """Route one call and admit it: :func:`route_call` then :meth:`Route.admit` (see both)."""
    route = route_call(router, messages, candidates=candidates, objects=objects, preferences=preferences,
                       constraints=constraints,
                       user=user, run_id=run_id, needs_tools=needs_tools, tool_capable=tool_capable)
    return route.admit(max_tokens=max_tokens, candidate_max_tokens=candidate_max_tokens)


async def aroute_call(
    router: Router, messages: Any, *, candidates: Mapping[str, str], objects: Mapping[str, Any] | None = None,
    preferences: PreferencesLike = None,
    constraints: ConstraintsLike = None, user: str | None = None, run_id: UUID | str | None = None,
    needs_tools: bool = False, tool_capable: Collection[str] = (),
) -> Route:
    """:func:`route_call` in the routing worker pool (:mod:`~optiroute.integration.workers`), so an
    async caller's event loop is not blocked while the prompt is embedded and scored."""
    return await run_in_worker(route_call, router, messages, candidates=candidates, objects=objects,
                               preferences=preferences,
                               constraints=constraints, user=user, run_id=run_id, needs_tools=needs_tools,
                               tool_capable=tool_capable)


async def aadmit(route: Route, *, max_tokens: int | None = None,
                 candidate_max_tokens: Mapping[str, int | None] | None = None) -> CallPlan:
    """:meth:`Route.admit` for an async caller. A database store's budget reservation is a round trip,
    so it runs in the store-write thread (:func:`~optiroute.integration.workers.run_store_write`),
    not behind the decisions queued in the routing pool; with the in-memory store admission takes
    microseconds and runs inline, without a second thread hop after the decision's."""
    if writes_block(route.router):
        return await run_store_write(route.admit, max_tokens=max_tokens, candidate_max_tokens=candidate_max_tokens)
    return route.admit(max_tokens=max_tokens, candidate_max_tokens=candidate_max_tokens)


async def aplan_call(
    router: Router, messages: Any, *, candidates: Mapping[str, str], objects: Mapping[str, Any] | None = None,
    preferences: PreferencesLike = None,
    constraints: ConstraintsLike = None, user: str | None = None, run_id: UUID | str | None = None,
    needs_tools: bool = False, tool_capable: Collection[str] = (), max_tokens: int | None = None,
    candidate_max_tokens: Mapping[str, int | None] | None = None,
) -> CallPlan:
    """:func:`plan_call` in the routing worker pool: route and admit without blocking the loop."""
    return await run_in_worker(plan_call, router, messages, candidates=candidates, objects=objects,
                               preferences=preferences,
                               constraints=constraints, user=user, run_id=run_id, needs_tools=needs_tools,
                               tool_capable=tool_capable, max_tokens=max_tokens,
                               candidate_max_tokens=candidate_max_tokens)
