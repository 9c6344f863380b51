"""Where decisions, feedback, observed calls and spend go: the record types and the store
interface, the in-memory store, the SQL store (SQLite / PostgreSQL through SQLAlchemy) with its
schema migrations, and the guard that keeps routing alive when the store fails.

May import: optiroute.errors, optiroute.schema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optiroute.store.memory import MemoryFeedbackStore
from optiroute.store.records import DecisionRecord, FeedbackRecord, FeedbackStore, ObservationRecord

if TYPE_CHECKING:
    from optiroute.store.sql import SQLiteFeedbackStore, SQLStore, open_store

__all__ = ["DecisionRecord", "FeedbackRecord", "FeedbackStore", "MemoryFeedbackStore", "ObservationRecord",
           "SQLStore", "SQLiteFeedbackStore", "open_store"]

_SQL_NAMES = frozenset({"SQLStore", "SQLiteFeedbackStore", "open_store"})


def __getattr__(name: str) -> Any:
    """The SQL stores load on first use (PEP 562), so that importing the store never imports
    SQLAlchemy."""
    if name in _SQL_NAMES:
        return getattr(importlib.import_module("optiroute.store.sql"), name)
    raise AttributeError(f"module 'optiroute.store' has no attribute {name!r}")
