"""Which preferences and caller key apply to one call: the one precedence both adapters use
(see :mod:`optiroute.integration`)."""

from __future__ import annotations

from optiroute.schema.preferences import PreferencesLike, current_preferences

__all__ = ["PREFERENCES_METADATA_KEY", "USER_METADATA_KEY", "resolve_preferences", "resolve_user_key"]

#: LangChain config metadata keys that carry preferences / the caller key through a chain.
PREFERENCES_METADATA_KEY = "optiroute_preferences"
USER_METADATA_KEY = "optiroute_user_key"


def resolve_preferences(
    *, call: PreferencesLike = None, bound: PreferencesLike = None, metadata: PreferencesLike = None,
    field: PreferencesLike = None,
) -> PreferencesLike:
    """The preferences of one call, by the one documented precedence (see the module docstring).

    ``None`` everywhere returns ``None``, which :meth:`optiroute.Router.decide` reads as "the router's
    default". The value is returned as given; ``decide`` validates it, with its usual errors.
    """
    for value in (call, bound, current_preferences(), metadata, field):
        if value is not None:
            return value
    return None


def resolve_user_key(
    *, call: str | None = None, bound: str | None = None, metadata: str | None = None, field: str | None = None,
) -> str | None:
    """The caller key charged for per-user budgets: per call > bound > config metadata > field.

    Empty keys count as unset, so an empty metadata entry does not hide the constructor's key.
    """
    for value in (call, bound, metadata, field):
        if value:
            return value
    return None
