"""OptiRoute: route every LLM call to the best model for the caller's preferences.

The public names are loaded lazily (PEP 562) so that ``import optiroute`` stays fast and never imports
torch; the heavy parts (embedder, analyzer heads, evaluation store) load on the first decision.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optiroute.errors import (
    ArtifactError,
    ArtifactNotFoundError,
    BudgetExceededError,
    CorruptArtifactError,
    DataFormatError,
    DependencyError,
    FallbackExhaustedError,
    FeedbackError,
    InvalidConstraintsError,
    InvalidInputError,
    InvalidPreferencesError,
    ModelNotFoundError,
    NoEligibleModelError,
    OptiRouteError,
    OptiRouteWarning,
    RegistryError,
    RoutingFallbackWarning,
    StoreDegradedWarning,
    StoreError,
    UnknownModelWarning,
    UnknownProfileError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from optiroute.analysis.shared_text import SharedText
    from optiroute.catalog.registry import ModelCard, Registry
    from optiroute.router.router import Router
    from optiroute.routing.batch import BatchDecisions
    from optiroute.routing.policy import PolicyConfig
    from optiroute.schema.budget import Budget, CallTicket
    from optiroute.schema.decision import Constraints, ModelScore, Neighbour, RoutingDecision, TaskProfile
    from optiroute.schema.preferences import DIMENSIONS, PROFILES, Preferences, preferences
    from optiroute.store import FeedbackStore, MemoryFeedbackStore, SQLiteFeedbackStore, SQLStore, open_store

__version__ = "0.1.0"

_LAZY = {
    "Router": "router.router",
    "BatchDecisions": "routing.batch",
    "Preferences": "schema.preferences",
    "PROFILES": "schema.preferences",
    "DIMENSIONS": "schema.preferences",
    "preferences": "schema.preferences",
    "Constraints": "schema.decision",
    "ModelScore": "schema.decision",
    "Neighbour": "schema.decision",
    "RoutingDecision": "schema.decision",
    "TaskProfile": "schema.decision",
    "ModelCard": "catalog.registry",
    "Registry": "catalog.registry",
    "PolicyConfig": "routing.policy",
    "Budget": "schema.budget",
    "CallTicket": "schema.budget",
    "FeedbackStore": "store",
    "MemoryFeedbackStore": "store",
    "SQLiteFeedbackStore": "store",
    "SQLStore": "store",
    "open_store": "store",
    "SharedText": "analysis.shared_text",
}

# The public names, sorted; every name of _LAZY is one of them (tests/test_architecture.py checks both).
__all__ = [
    "ArtifactError",
    "ArtifactNotFoundError",
    "BatchDecisions",
    "Budget",
    "BudgetExceededError",
    "CallTicket",
    "Constraints",
    "CorruptArtifactError",
    "DIMENSIONS",
    "DataFormatError",
    "DependencyError",
    "FallbackExhaustedError",
    "FeedbackError",
    "FeedbackStore",
    "InvalidConstraintsError",
    "InvalidInputError",
    "InvalidPreferencesError",
    "MemoryFeedbackStore",
    "ModelCard",
    "ModelNotFoundError",
    "ModelScore",
    "Neighbour",
    "NoEligibleModelError",
    "OptiRouteError",
    "OptiRouteWarning",
    "PROFILES",
    "PolicyConfig",
    "Preferences",
    "Registry",
    "RegistryError",
    "Router",
    "RoutingDecision",
    "RoutingFallbackWarning",
    "SQLStore",
    "SQLiteFeedbackStore",
    "SharedText",
    "StoreDegradedWarning",
    "StoreError",
    "TaskProfile",
    "UnknownModelWarning",
    "UnknownProfileError",
    "UnsupportedFormatError",
    "__version__",
    "open_store",
    "preferences",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optiroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
