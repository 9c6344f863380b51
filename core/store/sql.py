"""Durable stores on SQLAlchemy Core: any SQLAlchemy URL, SQLite files, PostgreSQL servers.

:class:`SQLStore` implements :class:`~optiroute.store.records.FeedbackStore` with SQL queries on the tables
of :mod:`optiroute.store.schema`; :mod:`optiroute.store.engine` opens the database on first use
(never at construction), migrates it, runs the transactions and turns every failure into a
:class:`~optiroute.errors.StoreError` that names the store and says what to do.
:class:`SQLiteFeedbackStore` is the one-file flavour (WAL mode, busy timeout, file and directory
created on first use); :func:`open_store` picks a store from a path or URL.

The spend ledger keeps one row of running totals per scope (``settled``, ``reserved``) and one row
per reservation and scope. A reservation creates missing scope rows (``INSERT ... ON CONFLICT DO
NOTHING``), locks the scope rows in key order (``SELECT ... FOR UPDATE`` in PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already holds the database's write lock), checks ``settled + reserved < limit``
for every scope and only then writes, all in one transaction; locking in key order means two
reservations never deadlock. Other dialects get the same SQL, untested. Totals are floats: sums of
amounts that are not exact binary fractions can differ from the exact sum by rounding (~1e-16 USD).
"""

from __future__ import annotations

import functools
import importlib
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from optiroute.errors import DependencyError, StoreError
from optiroute.store.memory import MemoryFeedbackStore
from optiroute.store.records import DecisionRecord, FeedbackRecord, FeedbackStore, ObservationRecord

__all__ = ["SQLStore", "SQLiteFeedbackStore", "open_store"]


def _iso(dt: datetime) -> str:
    """UTC ISO-8601 with microseconds, so text order is time order in every dialect."""
    dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    return dt.isoformat(timespec="microseconds")


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


class SQLStore(FeedbackStore):
    """A store in any database SQLAlchemy reaches (tested: SQLite, PostgreSQL via psycopg 3).

    Args:
        url: an SQLAlchemy URL (string or ``sqlalchemy.engine.URL``), e.g. ``sqlite:////var/lib/app/optiroute.db`` or
            ``postgresql+psycopg://user:pw@host/db`` (``postgresql://`` means psycopg 3 here).
        keep_prompts: store decision prompt text (off by default: prompts are dropped).
        read_only: never write: no migration, no directory creation; writers raise StoreError.
        timeout_s: how long to wait for another writer's lock before failing with StoreError.
        engine_options: extra keyword arguments for ``sqlalchemy.create_engine`` (pool sizes...).
        share_database: a database holding tables OptiRoute did not create is refused with a
            StoreError unless this is True; OptiRoute then adds its tables beside them and leaves the
            database's settings (SQLite's journal mode) alone.

    Attributes:
        url: the URL with its password masked (safe to log).
        path: the SQLite file (``None`` for servers and in-memory SQLite).
    """

    def __init__(
        self, url: Any, *, keep_prompts: bool = False, read_only: bool = False,
        timeout_s: float = 30.0, engine_options: Mapping[str, Any] | None = None,
        share_database: bool = False,
    ) -> None:
        super().__init__(keep_prompts=keep_prompts)
        try:
            from optiroute.store.engine import Database
        except ImportError:
            raise DependencyError(
                "Durable stores need SQLAlchemy 2: pip install 'sqlalchemy>=2.0,<3'."
            ) from None
        self._db = Database(url, read_only=read_only, timeout_s=timeout_s,
                            engine_options=engine_options, share_database=share_database)
        self.url: str = self._db.url
        self.read_only = read_only
        self.timeout_s = float(timeout_s)
        self.path: Path | None = self._db.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _on_open(self, engine: Any) -> None:
        """Rebuild the feedback residuals from the database (called when it is opened)."""
        import sqlalchemy as sa

        from optiroute.store.schema import decisions as d
        from optiroute.store.schema import feedback as f

        q = sa.select(d.c.model, d.c.task_type, f.c.score - d.c.predicted_quality).select_from(
            f.join(d, f.c.decision_id == d.c.decision_id)
        )
        with self._db.connect(engine, write=False) as conn:
            self._load_residuals([tuple(r) for r in conn.execute(q)])

    def _ensure(self) -> Any:
        """The engine, opening (and migrating) the database on first use."""
        return self._db.engine(self._on_open)

    def _tx(self, action: str, *, write: bool) -> Any:
        return self._db.tx(action, write=write, on_open=self._on_open)

    def reload(self) -> None:
        """Re-read the feedback residuals (to see feedback written by other processes)."""
        engine = self._ensure()
        with self._db.guard("reading feedback"):
            self._on_open(engine)

    def corrections(self) -> dict[tuple[str, str], float]:
        self._ensure()  # opening the database loads the residuals
        return super().corrections()

    def feedback_count(self) -> int:
        self._ensure()
        return super().feedback_count()

    @property
    def schema_version(self) -> int:
        """The database's schema version (opening it, and upgrading it unless read-only)."""
        self._ensure()
        return self._db.version

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ decisions and feedback
    @staticmethod
    @functools.cache
    def _on_conflict(dialect: str, table: Any, keys: tuple[str, ...], update: bool) -> Any:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE/NOTHING`` for ``table``, built once per
        dialect (building it per call costs more than the SQLite write itself)."""
        stmt = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(table)
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=list(keys))
        rest = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=rest)

    def _upsert(self, conn: Any, table: Any, values: dict[str, Any], keys: Sequence[str]) -> None:
        import sqlalchemy as sa

        name = conn.dialect.name
        if name in ("sqlite", "postgresql"):
            conn.execute(self._on_conflict(name, table, tuple(keys), True), values)
            return
        cond = sa.and_(*(table.c[k] == values[k] for k in keys))
        conn.execute(sa.delete(table).where(cond))
        conn.execute(sa.insert(table), values)

    def _put_decision(self, rec: DecisionRecord) -> None:
        from optiroute.store.schema import decisions

        values = {
            "decision_id": rec.decision_id, "model": rec.model, "task_type": rec.task_type,
            "domain": rec.domain, "predicted_quality": float(rec.predicted_quality),
            "created_at": _iso(rec.created_at), "run_id": rec.run_id, "user_key": rec.user,
            "prompt": rec.prompt if self.keep_prompts else None,
        }
        with self._tx("recording a decision", write=True) as conn:
            self._upsert(conn, decisions, values, ["decision_id"])

    @staticmethod
    def _decision(row: Any) -> DecisionRecord:
        return DecisionRecord(
            decision_id=row.decision_id, model=row.model, task_type=row.task_type,
            domain=row.domain, predicted_quality=float(row.predicted_quality),
            created_at=datetime.fromisoformat(row.created_at), run_id=row.run_id,
            user=row.user_key, prompt=row.prompt,
        )

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        import sqlalchemy as sa

        from optiroute.store.schema import decisions as d

        with self._tx("reading a decision", write=False) as conn:
            row = conn.execute(sa.select(d).where(d.c.decision_id == decision_id)).first()
        return None if row is None else self._decision(row)

    def decision_for_run(self, run_id: str) -> DecisionRecord | None:
        import sqlalchemy as sa

        from optiroute.store.schema import decisions as d

        q = sa.select(d).where(d.c.run_id == str(run_id)).order_by(d.c.created_at.desc()).limit(1)
        with self._tx("looking up a run id", write=False) as conn:
            row = conn.execute(q).first()
        return None if row is None else self._decision(row)

    def _put_feedback(self, decision_id: str, score: float, comment: str | None) -> None:
        import sqlalchemy as sa

        from optiroute.store.schema import feedback

        with self._tx("recording feedback", write=True) as conn:
            conn.execute(sa.insert(feedback), {
                "decision_id": decision_id, "score": score, "comment": comment, "created_at": _now()
            })

    def feedback(self, decision_id: str | None = None) -> list[FeedbackRecord]:
        import sqlalchemy as sa

        from optiroute.store.schema import feedback as f

        q = sa.select(f).order_by(f.c.id)
        if decision_id is not None:
            q = q.where(f.c.decision_id == decision_id)
        with self._tx("reading feedback", write=False) as conn:
            rows = conn.execute(q).all()
        return [
            FeedbackRecord(decision_id=r.decision_id, score=float(r.score), comment=r.comment,
                           created_at=datetime.fromisoformat(r.created_at))
            for r in rows
        ]

    def feedback_history(self) -> list[tuple[str, str, str, float, float]]:
        import sqlalchemy as sa

        from optiroute.store.schema import decisions as d
        from optiroute.store.schema import feedback as f

        q = sa.select(d.c.model, d.c.task_type, d.c.domain, f.c.score, d.c.predicted_quality).select_from(
            f.join(d, f.c.decision_id == d.c.decision_id)).order_by(f.c.id)
        with self._tx("reading feedback", write=False) as conn:
            return [(str(m), str(t), str(dom), float(sc), float(q_)) for m, t, dom, sc, q_ in conn.execute(q)]

    # ------------------------------------------------------------------ observations
    def _put_observation(self, rec: ObservationRecord) -> None:
        import sqlalchemy as sa

        from optiroute.store.schema import observations

        values = rec.model_dump(exclude={"user", "created_at"})
        values.update(user_key=rec.user, created_at=_iso(rec.created_at))
        with self._tx("recording an observation", write=True) as conn:
            conn.execute(sa.insert(observations), values)

    def observations(
        self, *, model: str | None = None, decision_id: str | None = None, limit: int | None = None
    ) -> list[ObservationRecord]:
        import sqlalchemy as sa

        from optiroute.store.schema import observations as o

        q = sa.select(o).order_by(o.c.id.desc())
        if model is not None:
            q = q.where(o.c.model == model)
        if decision_id is not None:
            q = q.where(o.c.decision_id == decision_id)
        if limit is not None:
            q = q.limit(max(int(limit), 0))
        with self._tx("reading observations", write=False) as conn:
            rows = conn.execute(q).all()
        return [
            ObservationRecord(
                decision_id=r.decision_id, model=r.model, latency_s=r.latency_s,
                input_tokens=r.input_tokens, output_tokens=r.output_tokens, cost_usd=r.cost_usd,
                ok=bool(r.ok), error=r.error, user=r.user_key, run_id=r.run_id,
                created_at=datetime.fromisoformat(r.created_at),
            )
            for r in reversed(rows)
        ]

    # ------------------------------------------------------------------ spend ledger
    def _lock_scopes(self, conn: Any, keys: list[str], *, create: bool) -> dict[str, float]:
        """Create missing scope rows (if ``create``), then lock them in key order;
        returns ``{scope: settled + reserved}``."""
        import sqlalchemy as sa

        from optiroute.store.schema import spend_scopes as s

        if create:
            rows = [{"scope": k, "settled": 0.0, "reserved": 0.0} for k in keys]
            name = conn.dialect.name
            if name in ("sqlite", "postgresql"):
                conn.execute(self._on_conflict(name, s, ("scope",), False), rows)
            else:
                have = set(conn.execute(sa.select(s.c.scope).where(s.c.scope.in_(keys))).scalars())
                if missing := [r for r in rows if r["scope"] not in have]:
                    conn.execute(sa.insert(s), missing)
        locked = conn.execute(_ledger().lock, {"keys": keys}).all()
        return {r.scope: float(r.settled) + float(r.reserved) for r in locked}

    def _reserve(self, scopes: dict[str, float], amount: float) -> str | None:
        q = _ledger()
        keys = sorted(scopes)
        rid = uuid.uuid4().hex
        with self._tx("reserving spend", write=True) as conn:
            totals = self._lock_scopes(conn, keys, create=True)
            if any(totals[k] >= scopes[k] for k in keys):
                return None
            now = _now()
            conn.execute(q.add, [
                {"reservation_id": rid, "scope": k, "amount": amount, "cost_usd": None,
                 "settled": False, "created_at": now, "settled_at": None}
                for k in keys
            ])
            conn.execute(q.reserve, {"keys": keys, "amount": amount})
        return rid

    def _settle(self, reservation_id: str, cost_usd: float) -> bool:
        q = _ledger()
        with self._tx("settling spend", write=True) as conn:
            rows = conn.execute(q.open_rows, {"rid": reservation_id}).all()
            if not rows:
                return False
            done = conn.execute(q.close_rows, {"rid": reservation_id, "cost": cost_usd, "at": _now()})
            if done.rowcount == 0:
                return False  # a concurrent settle of the same id won
            keys = sorted(row.scope for row in rows)
            self._lock_scopes(conn, keys, create=False)
            conn.execute(q.settle, {"keys": keys, "cost": cost_usd, "amount": float(rows[0].amount)})
        return True

    def spent(self, scope: str) -> float:
        with self._tx("reading spend", write=False) as conn:
            value = conn.execute(_ledger().spent, {"scope": scope}).scalar()
        return 0.0 if value is None else float(value)


def _ledger() -> Any:
    """The ledger's prepared statements (:func:`optiroute.store.schema.ledger_statements`, built once)."""
    from optiroute.store.schema import ledger_statements

    return ledger_statements()


def _sqlite_url(path: Path, read_only: bool) -> Any:
    """The URL object of ``path`` (an object, not a string: any character in the path survives)."""
    from sqlalchemy.engine import URL

    if read_only:
        db = "file:" + quote(str(path.absolute()))
        return URL.create("sqlite", database=db, query={"mode": "ro", "uri": "true"})
    return URL.create("sqlite", database=str(path.absolute()))


class SQLiteFeedbackStore(SQLStore):
    """One SQLite file (WAL mode), created with its directory on first use; residuals are rebuilt
    from it on open. A file written by OptiRoute 0.1 (schema v1) is upgraded in place.

    Args:
        path: the database file.
        keep_prompts: store decision prompt text (off by default).
        read_only: open with SQLite's ``mode=ro``; reads work, writers raise StoreError.
        timeout_s: SQLite busy timeout: how long a writer waits for another process's lock.
        share_database: open a file that holds other applications' tables (see :class:`SQLStore`).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, keep_prompts: bool = False, read_only: bool = False,
        timeout_s: float = 30.0, share_database: bool = False,
    ) -> None:
        file = Path(path).expanduser()
        super().__init__(_sqlite_url(file, read_only), keep_prompts=keep_prompts,
                         read_only=read_only, timeout_s=timeout_s, share_database=share_database)
        self.path = file


def open_store(
    target: str | os.PathLike[str] | FeedbackStore | None, *, keep_prompts: bool = False,
    read_only: bool = False, timeout_s: float = 30.0, share_database: bool = False,
) -> FeedbackStore:
    """A store from a path or URL (no I/O until first use).

    ``None`` or ``"memory"`` gives a :class:`MemoryFeedbackStore`; a string with ``://`` is an
    SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``; ``postgresql://`` also means
    psycopg 3); anything else is an SQLite file path. A store passed in is returned as is.

    A database that already holds tables OptiRoute did not create (another application's) is
    refused on first use with a :class:`~optiroute.errors.StoreError`, before anything in it changes;
    pass ``share_database=True`` to share it on purpose (OptiRoute adds its six tables and leaves the
    journal mode alone).

    Raises:
        StoreError: a target that is neither a store, a path nor a URL, or a bad ``timeout_s``.
    """
    if isinstance(target, FeedbackStore):
        return target
    if target is None or str(target) in ("memory", ":memory:"):
        return MemoryFeedbackStore(keep_prompts=keep_prompts)
    if not isinstance(target, (str, os.PathLike)):
        raise StoreError(f"open_store takes a path, a database URL or a store, got {type(target).__name__}.")
    text = os.fspath(target)
    if not isinstance(text, str) or not text.strip():
        raise StoreError("open_store needs a non-empty path or database URL.")
    if "://" in text:
        return SQLStore(text, keep_prompts=keep_prompts, read_only=read_only, timeout_s=timeout_s,
                        share_database=share_database)
    return SQLiteFeedbackStore(text, keep_prompts=keep_prompts, read_only=read_only,
                               timeout_s=timeout_s, share_database=share_database)
