"""The one call path both framework adapters translate: plan, admit, run with fallbacks, stamp, feedback.

Modules: :mod:`~optiroute.integration.precedence` (which preferences win),
:mod:`~optiroute.integration.plan` (route and admit), :mod:`~optiroute.integration.call` (run the
chain, streams, stamping, accounting at each call's real end), :mod:`~optiroute.integration.deadline`
(the per-call timeout), :mod:`~optiroute.integration.meter` (what a stream produced),
:mod:`~optiroute.integration.feedback`, :mod:`~optiroute.integration.workers` (async callers route
in a bounded pool of threads, and write to a database store in a thread of their own, off the event
loop), and :mod:`~optiroute.integration.default_router`.

Everything a routed call *means* lives here, framework-free, so LangChain's ``ChatOptiRoute`` and
LlamaIndex's ``OptiRoute`` cannot disagree on it (which preferences win, how candidate keys map to
cards, how the answer is stamped, how feedback finds its decision); an adapter only turns its
framework's call into :func:`plan_call` and the plan's results back into framework objects. The
adapters import nothing from the core but ``optiroute``'s top-level names and this package (an
import-linter contract), so what else they need is re-exported here.

Importing it is light (no numpy, no router): the core loads on the first routed call, which keeps
``import langchain_optiroute`` / ``import llama_index_optiroute`` fast.

Which preferences apply, highest first (:func:`resolve_preferences`, the same in both adapters):

1. the per-call argument (``invoke(..., preferences=...)``, ``chat(..., preferences=...)``); LangChain's
   ``.bind(preferences=...)`` arrives as a per-call argument too, which a real per-call one overrides;
2. bound preferences (``with_preferences(...)`` in both adapters);
3. an active ``optiroute.preferences(...)`` scope;
4. config metadata ``{"optiroute_preferences": ...}`` (LangChain only);
5. the adapter's constructor field;
6. the router's default.

The caller key charged for budgets follows the same order without the scope (:func:`resolve_user_key`).

May import: optiroute.router and the layers below it; framework-free (no LangChain, no LlamaIndex).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optiroute.integration.call import (
    STAMP_KEY,
    AsyncStreamStart,
    CallPlan,
    Route,
    StreamStart,
    Usage,
    check_timeout,
)
from optiroute.integration.deadline import own_error
from optiroute.integration.default_router import router_or_default, shared_default_router
from optiroute.integration.feedback import (
    FeedbackTarget,
    RunIndex,
    decision_id_of,
    feedback_target,
    forward_feedback,
    record_feedback,
)
from optiroute.integration.plan import aadmit, aplan_call, aroute_call, plan_call, resolve_candidates, route_call
from optiroute.integration.precedence import (
    PREFERENCES_METADATA_KEY,
    USER_METADATA_KEY,
    resolve_preferences,
    resolve_user_key,
)
from optiroute.router.fallback import acall_with_fallbacks, call_with_fallbacks, is_retryable

if TYPE_CHECKING:
    from optiroute.analysis.embedding import MiniLMEmbedder

__all__ = [
    "PREFERENCES_METADATA_KEY", "STAMP_KEY", "USER_METADATA_KEY",
    "AsyncStreamStart", "CallPlan", "FeedbackTarget", "Route", "RunIndex", "StreamStart", "Usage",
    "aadmit", "acall_with_fallbacks", "aplan_call", "aroute_call", "call_with_fallbacks", "check_timeout",
    "decision_id_of", "feedback_target",
    "get_default_embedder", "is_retryable", "forward_feedback", "own_error", "plan_call", "record_feedback",
    "resolve_candidates",
    "resolve_preferences", "resolve_user_key", "route_call", "router_or_default", "sentence_model",
    "shared_default_router",
]


def get_default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder the routers share (:mod:`optiroute.analysis.embedding`).

    Imported on first use: the embedding module brings numpy, which an adapter import must not.
    """
    from optiroute.analysis.embedding import get_default_embedder as shared

    return shared()


def sentence_model() -> Any:
    """The shared embedder's SentenceTransformer, loaded once per process.

    For embedding documents whole: routing's long-prompt pruning is for prompts, not for RAG text.
    """
    return get_default_embedder().model()
