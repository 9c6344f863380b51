"""One default router per process, shared by every adapter built without one."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import optiroute

if TYPE_CHECKING:
    from optiroute.router.router import Router

__all__ = ["router_or_default", "shared_default_router"]

_DEFAULT: Router | None = None
_DEFAULT_LOCK = threading.Lock()


def shared_default_router() -> Router:
    """One ``Router.default()`` per process, shared by every adapter built without a router.

    Frameworks rebuild models freely (LangChain ``configurable_fields``, LlamaIndex ``model_copy``);
    one shared router keeps one feedback store and one latency tracker, and the lock keeps two
    first calls on two threads from building two.
    """
    global _DEFAULT
    router = _DEFAULT
    if router is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = optiroute.Router.default()
            router = _DEFAULT
    return router


def router_or_default(router: Router | None) -> Router:
    """``router``, or the process-wide :func:`shared_default_router` when it is ``None``."""
    return router if router is not None else shared_default_router()
