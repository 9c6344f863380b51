"""The :class:`Router` facade and what it is composed of: the lazily built state, call
accounting and budgets, the fallback chain, saved-router artifacts, batch mode and routing a file.

May import: the layers below it (routing, quality, catalog, analysis, metrics, store, learning, schema, errors).
"""

from optiroute.router.router import Router

__all__ = ["Router"]
