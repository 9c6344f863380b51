"""The :class:`Router` facade and what it is composed of: the lazily built state, call
accounting and budgets, the fallback chain, saved-router artifacts, batch mode and routing a file.

May import: optiroute.routing, optiroute.fit and the layers below them.
"""
