"""Tables of the durable store and the ordered migrations that build them.

The schema is versioned so that a database written by an older OptiRoute is upgraded in place and one
written by a newer OptiRoute is refused instead of being misread:

- **v1** is the layout of OptiRoute 0.1's ``SQLiteFeedbackStore``: tables ``decisions`` and
  ``feedback``, and no version table. A database with those tables and no ``optiroute_schema`` table
  is therefore detected as v1.
- **v2** adds ``run_id``, ``user_key`` and ``prompt`` to ``decisions`` (the caller's key is stored as
  ``user_key`` because ``user`` is a reserved word in PostgreSQL), the ``observations`` table, the
  spend ledger (``spend_scopes`` with one row of running totals per scope, ``spend_reservations``
  with one row per reservation and scope), their indexes, and the ``optiroute_schema`` table that
  records every applied version.

To change the schema, append a step to :data:`MIGRATIONS` (never edit a released one) and describe
the new tables below; :data:`SCHEMA_VERSION` follows the list. Timestamps are ISO-8601 text (UTC),
as in v1, so every SQL dialect stores and orders them the same way.

Importing this module imports SQLAlchemy: only :mod:`optiroute.store.sql` imports it, lazily.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace

import sqlalchemy as sa

from optiroute.errors import StoreError

__all__ = [
    "MIGRATIONS",
    "OWN_TABLES",
    "SCHEMA_VERSION",
    "decisions",
    "detect_version",
    "feedback",
    "foreign_tables",
    "ledger_statements",
    "metadata",
    "migrate",
    "observations",
    "schema_table",
    "spend_reservations",
    "spend_scopes",
]

#: The current schema (v2) as used by the queries of :mod:`optiroute.store.sql`.
metadata = sa.MetaData()

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("decision_id", sa.Text, primary_key=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("task_type", sa.Text, nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("predicted_quality", sa.Float, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("user_key", sa.Text),
    sa.Column("prompt", sa.Text),
)

feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
)

observations = sa.Table(
    "observations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Text),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("latency_s", sa.Float),
    sa.Column("input_tokens", sa.Integer),
    sa.Column("output_tokens", sa.Integer),
    sa.Column("cost_usd", sa.Float),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("user_key", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Index("ix_observations_model", "model", "id"),
    sa.Index("ix_observations_decision_id", "decision_id"),
)

spend_scopes = sa.Table(
    "spend_scopes", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("settled", sa.Float, nullable=False, default=0.0),
    sa.Column("reserved", sa.Float, nullable=False, default=0.0),
)

spend_reservations = sa.Table(
    "spend_reservations", metadata,
    sa.Column("reservation_id", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("cost_usd", sa.Float),
    sa.Column("settled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("settled_at", sa.Text),
    sa.Index("ix_spend_reservations_scope", "scope"),
)

schema_table = sa.Table(
    "optiroute_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)

_decisions_run_index = sa.Index("ix_decisions_run_id", decisions.c.run_id, decisions.c.created_at)
_feedback_decision_index = sa.Index("ix_feedback_decision_id", feedback.c.decision_id)

# v1 exactly as OptiRoute 0.1 wrote it (SQLite); other dialects get the same columns via SQLAlchemy.
_V1_SQLITE = (
    """CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, model TEXT NOT NULL, task_type TEXT NOT NULL,
    domain TEXT NOT NULL, predicted_quality REAL NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT NOT NULL REFERENCES decisions(decision_id),
    score REAL NOT NULL, comment TEXT, created_at TEXT NOT NULL)""",
)
_v1_metadata = sa.MetaData()
sa.Table(
    "decisions", _v1_metadata,
    *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
      for c in list(decisions.columns)[:6]),
)
sa.Table(
    "feedback", _v1_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Text, sa.ForeignKey("decisions.decision_id"), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
)


def _v1(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        for ddl in _V1_SQLITE:
            conn.exec_driver_sql(ddl)
    else:
        _v1_metadata.create_all(conn)


def _v2(conn: sa.Connection) -> None:
    prep = conn.dialect.identifier_preparer
    for name in ("run_id", "user_key", "prompt"):
        conn.exec_driver_sql(f"ALTER TABLE decisions ADD COLUMN {prep.quote(name)} TEXT")
    for table in (observations, spend_scopes, spend_reservations, schema_table):
        table.create(conn)
    _decisions_run_index.create(conn)
    _feedback_decision_index.create(conn)


#: Ordered migration steps: (version reached, description, function applying it in a transaction).
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "decisions and feedback (OptiRoute 0.1 layout)", _v1),
    (2, "run ids, users, opt-in prompts, observations, spend ledger, version table", _v2),
]

#: The schema version this code reads and writes.
SCHEMA_VERSION = MIGRATIONS[-1][0]


#: The tables OptiRoute creates (every version); SQLite's own ``sqlite_*`` tables are not counted.
OWN_TABLES = frozenset({"decisions", "feedback", "observations", "spend_scopes", "spend_reservations",
                        "optiroute_schema"})


def foreign_tables(conn: sa.Connection) -> list[str]:
    """Tables and views of the database behind ``conn`` (its default schema) that OptiRoute did not
    create, sorted: a non-empty list means the database belongs to another application."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    return sorted(n for n in names if n not in OWN_TABLES and not n.startswith("sqlite_"))


def detect_version(conn: sa.Connection) -> int:
    """The schema version of the database behind ``conn``: 0 when it has none of our tables.

    Raises:
        StoreError: the version table exists but is empty (a broken earlier migration).
    """
    names = set(sa.inspect(conn).get_table_names())
    if schema_table.name in names:
        version = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
        if version is None:
            raise StoreError(
                "The store's optiroute_schema table is empty, so its schema version is unknown; "
                "restore the database from a backup or point OptiRoute at a new one."
            )
        return int(version)
    if "decisions" in names and "feedback" in names:
        return 1
    return 0


def migrate(conn: sa.Connection, where: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` inside the caller's write transaction.

    The caller holds the database's write lock (``BEGIN IMMEDIATE`` in SQLite, an advisory lock in
    PostgreSQL), so concurrent openers migrate one after the other and the second sees the work of
    the first. Returns the version found before migrating.

    Raises:
        StoreError: the database was written by a newer OptiRoute (``where`` names it).
    """
    found = detect_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"The store {where} has schema version {found}, but this OptiRoute knows versions up to "
            f"{SCHEMA_VERSION}: it was written by a newer release. Upgrade optiroute "
            "(pip install -U optiroute) or use another store."
        )
    applied = [(v, d) for v, d, step in MIGRATIONS if v > found]
    for version, _, step in MIGRATIONS:
        if version > found:
            step(conn)
    if applied:
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        conn.execute(
            sa.insert(schema_table),
            [{"version": v, "description": d, "applied_at": now} for v, d in applied],
        )
    return found


@functools.lru_cache(maxsize=1)
def ledger_statements() -> SimpleNamespace:
    """The ledger's statements, built once with bound parameters (SQLAlchemy's statement building
    costs more than SQLite's write itself)."""
    r, s = spend_reservations, spend_scopes
    keys = s.c.scope.in_(sa.bindparam("keys", expanding=True))
    mine = sa.and_(r.c.reservation_id == sa.bindparam("rid"), r.c.settled == sa.false())
    return SimpleNamespace(
        lock=sa.select(s.c.scope, s.c.settled, s.c.reserved).where(keys).order_by(s.c.scope)
        .with_for_update(),
        add=sa.insert(r),
        reserve=sa.update(s).where(keys).values(reserved=s.c.reserved + sa.bindparam("amount")),
        open_rows=sa.select(r.c.scope, r.c.amount).where(mine).with_for_update(),
        close_rows=sa.update(r).where(mine).values(
            settled=True, cost_usd=sa.bindparam("cost"), settled_at=sa.bindparam("at")),
        settle=sa.update(s).where(keys).values(
            settled=s.c.settled + sa.bindparam("cost"), reserved=s.c.reserved - sa.bindparam("amount")),
        spent=sa.select(s.c.settled + s.c.reserved).where(s.c.scope == sa.bindparam("scope")),
    )
