"""The OptiRoute error tree.

Every error we raise is an :class:`OptiRouteError`, so callers can catch one base class, and every
message says how to fix the problem. Errors that describe bad caller input also subclass
:class:`ValueError` (and lookup failures :class:`KeyError`) so code written against the standard
exceptions keeps working. Provider errors (from OpenAI, Anthropic, ...) are never wrapped: they pass
through untouched so existing retry and error handling keeps seeing the exceptions it knows.

Tree::

    OptiRouteError
    ├── InvalidInputError (ValueError)          bad prompt or messages, router settings, usage reports
    ├── InvalidPreferencesError (ValueError)    NaN / out-of-range weights, unknown dimension
    │   └── UnknownProfileError                 a profile name we do not know
    ├── InvalidConstraintsError (ValueError)
    ├── NoEligibleModelError                    every candidate was excluded (reasons attached)
    ├── BudgetExceededError                     a spend budget has no room for the call / batch
    ├── ModelNotFoundError (KeyError)           registry lookup / remove of an unknown model
    ├── RegistryError (ValueError)              a malformed card or registry file
    ├── DataFormatError (ValueError)            malformed prompts/outcomes/prices for ``fit``
    │                                           (numbers out of range name the column and row)
    ├── ArtifactError                           saved router directory problems
    │   ├── ArtifactNotFoundError (FileNotFoundError)
    │   ├── CorruptArtifactError                a file is unreadable, inconsistent or hostile
    │   │                                       (names the file and field)
    │   └── UnsupportedFormatError              a format version we cannot read
    ├── DependencyError (ImportError)           an optional extra is not installed
    ├── FallbackExhaustedError                  every model of a fallback chain failed (transiently)
    ├── FeedbackError (ValueError)              unknown decision id, bad score
    └── StoreError                              the feedback store cannot be opened or written, or
                                                belongs to another application (share_database)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ArtifactError",
    "BudgetExceededError",
    "ArtifactNotFoundError",
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
    "RegistryError",
    "StoreError",
    "UnknownModelWarning",
    "ModelNameWarning",
    "UnknownProfileError",
    "OptiRouteWarning",
    "RoutingFallbackWarning",
    "StoreDegradedWarning",
]


class OptiRouteError(Exception):
    """Base class of every error OptiRoute raises itself."""


class InvalidInputError(OptiRouteError, ValueError):
    """The prompt or message list cannot be routed (empty, wrong type, undecodable), or a setting or
    usage report is out of range (the message names the field and the allowed range)."""


class InvalidPreferencesError(OptiRouteError, ValueError):
    """Preference weights are malformed: NaN, outside 0..1, or an unknown dimension."""


class UnknownProfileError(InvalidPreferencesError):
    """A named preference profile does not exist."""


class InvalidConstraintsError(OptiRouteError, ValueError):
    """Hard constraints are malformed (negative budget, unknown field, ...)."""


class NoEligibleModelError(OptiRouteError):
    """Every candidate model was excluded by the hard constraints.

    Attributes:
        exclusions: model name -> the reason it was excluded, so the caller can see which
            constraint to relax.
    """

    def __init__(self, message: str, exclusions: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.exclusions: dict[str, str] = dict(exclusions or {})


class BudgetExceededError(OptiRouteError):
    """A spend budget (router, caller key or batch) has no room left for the call or batch."""


class ModelNotFoundError(OptiRouteError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence.
        return str(self.args[0]) if self.args else ""


class RegistryError(OptiRouteError, ValueError):
    """A model card or registry file is malformed."""


class DataFormatError(OptiRouteError, ValueError):
    """Training or evaluation data does not follow the documented CSV format."""


class ArtifactError(OptiRouteError):
    """A saved router directory cannot be used."""


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """The saved router directory or one of its files is missing."""


class CorruptArtifactError(ArtifactError):
    """A file in a saved router directory is unreadable or inconsistent with the others."""


class UnsupportedFormatError(ArtifactError):
    """A saved router was written in a format this version cannot read."""


class DependencyError(OptiRouteError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class FallbackExhaustedError(OptiRouteError):
    """Every model of the fallback chain failed with a retryable (transient) provider error.

    Attributes:
        errors: model name -> the exception it raised, in the order tried.
    """

    def __init__(self, errors: Mapping[str, BaseException]) -> None:
        detail = "; ".join(f"{m}: {type(e).__name__}: {e}" for m, e in errors.items())
        super().__init__(
            f"All {len(errors)} routed models failed with retryable errors ({detail}). Check that the "
            "providers are reachable, or add more candidates."
        )
        self.errors: dict[str, BaseException] = dict(errors)


class FeedbackError(OptiRouteError, ValueError):
    """Feedback cannot be recorded (unknown decision, score out of range)."""


class StoreError(OptiRouteError):
    """The feedback/observation store cannot be opened, read or written."""


class OptiRouteWarning(UserWarning):
    """Base class of OptiRoute warnings."""


class UnknownModelWarning(OptiRouteWarning):
    """A model name has no card; it is routed with a prior card built from what can be known of it."""


class ModelNameWarning(OptiRouteWarning):
    """A model name resolved to its family's card (a snapshot without its own card) or was ambiguous."""


class RoutingFallbackWarning(OptiRouteWarning):
    """Routing fell back to the generalist model or widened its search."""


class StoreDegradedWarning(OptiRouteWarning):
    """The feedback/observation store failed; routing continues with rows kept in memory."""
