"""OptiRoute: route every LLM call to the best model for the caller's preferences.

The public names are loaded lazily (PEP 562) so that ``import optiroute`` stays fast and never imports
torch; the heavy parts (embedder, analyzer heads, evaluation store) load on the first decision.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
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
    from .batch import BatchDecisions
    from .feedback import FeedbackStore, MemoryFeedbackStore, SQLiteFeedbackStore, SQLStore, open_store
    from .policy import PolicyConfig
    from .spend import Budget, CallTicket
    from .profiles import DIMENSIONS, PROFILES, Preferences, preferences
    from .registry import ModelCard, Registry
    from .router import Router
    from .types import Constraints, ModelScore, Neighbour, RoutingDecision, TaskProfile

__version__ = "0.1.0"

_LAZY = {
    "Router": "router",
    "BatchDecisions": "batch",
    "Preferences": "profiles",
    "PROFILES": "profiles",
    "DIMENSIONS": "profiles",
    "preferences": "profiles",
    "Constraints": "types",
    "ModelScore": "types",
    "Neighbour": "types",
    "RoutingDecision": "types",
    "TaskProfile": "types",
    "ModelCard": "registry",
    "Registry": "registry",
    "PolicyConfig": "policy",
    "Budget": "spend",
    "CallTicket": "spend",
    "FeedbackStore": "feedback",
    "MemoryFeedbackStore": "feedback",
    "SQLiteFeedbackStore": "feedback",
    "SQLStore": "feedback",
    "open_store": "feedback",
}

__all__ = sorted(
    [
        *_LAZY,
        "ArtifactError",
        "ArtifactNotFoundError",
        "BudgetExceededError",
        "CorruptArtifactError",
        "DataFormatError",
        "DependencyError",
        "FallbackExhaustedError",
        "FeedbackError",
        "InvalidConstraintsError",
        "InvalidInputError",
        "InvalidPreferencesError",
        "ModelNotFoundError",
        "NoEligibleModelError",
        "OptiRouteError",
        "OptiRouteWarning",
        "RegistryError",
        "RoutingFallbackWarning",
        "StoreDegradedWarning",
        "StoreError",
        "UnknownModelWarning",
        "UnknownProfileError",
        "UnsupportedFormatError",
        "__version__",
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optiroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
