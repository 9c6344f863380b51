"""One SQL database as the stores see it: engine, transactions, schema check, errors that say what to do.

:class:`Database` wraps a SQLAlchemy engine created on first use (never at construction: building a
store does no I/O), opened with the schema brought to the current version
(:mod:`optiroute.store.schema`), and re-created after ``fork()`` so a child never shares its parent's
connections. Transactions are the only way in (:meth:`Database.tx`):

- SQLite: a busy timeout is set on every new connection; a file that is OptiRoute's alone is put in
  WAL mode with ``synchronous=NORMAL`` (commits survive a crash of the process; a power loss may
  lose the last few, never corrupting the file), while a file shared with another application
  (``share_database=True``) keeps its journal mode and synchronous setting; a write is one
  ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two writers never deadlock
  upgrading a read lock), waiting up to ``timeout_s`` for another process. Threads of one process
  queue on a Python lock before that, which is far cheaper than SQLite's sleep-and-retry.
- PostgreSQL: ``lock_timeout`` (and psycopg's ``connect_timeout``) make a held row lock or an
  unreachable server fail after ``timeout_s`` instead of hanging; migrations run under an advisory
  lock.

A database that holds tables OptiRoute did not create is refused (:class:`~optiroute.errors.StoreError`
saying how to share it on purpose) unless the store was opened with ``share_database=True``.

Every failure (SQLAlchemy, driver, file system) becomes :class:`~optiroute.errors.StoreError` naming
the store (password masked; statement parameters, which may hold prompt text, never included) and
saying how to fix it. SQLAlchemy is imported here, lazily by :mod:`optiroute.store.sql`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa

from optiroute.errors import DependencyError, OptiRouteError, StoreError
from optiroute.schema.numbers import MAX_SECONDS, real

__all__ = ["Database", "mask_secrets"]

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x0071_7275  # PostgreSQL advisory lock id held while migrating


def mask_secrets(text: str) -> str:
    """Hide ``user:password@`` and ``password=...`` in a URL or message."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", text)


def _advice(low: str, orig: BaseException, timeout_s: float) -> str:
    """What to do about a database error whose lower-cased message is ``low``."""
    if "locked" in low or "lock timeout" in low or "busy" in low:
        return (f"another process or connection holds a write lock on it and did not release it "
                f"within {timeout_s:g} s. Retry later, stop the process holding the lock, or raise "
                "timeout_s.")
    if "readonly" in low or "read-only" in low or "read only" in low:
        return ("it is read-only for this process: the path (or database) is not writable. Choose "
                "another path, fix its permissions, or open it with read_only=True to read only.")
    if isinstance(orig, OSError) or "unable to open" in low:
        return ("check that the path is writable and that its parent is a directory you can write "
                "to, or choose another path.")
    if "permission denied" in low or "must be owner" in low:
        return ("the database user lacks privileges on OptiRoute's tables: grant them (or let it create "
                "them) or use another database or user.")
    if "not a database" in low or "malformed" in low:
        return "it is not an SQLite database or it is corrupted: move it away or choose another path."
    if "password" in low or "authentication" in low:
        return "check the user name and password in the URL."
    if "does not exist" in low and "database" in low:
        return "create the database first (e.g. createdb) or fix the database name in the URL."
    if "connect" in low or "timeout expired" in low:
        return ("check that the database server is running and reachable at the URL's host and "
                "port, and that the URL is right.")
    return "check the database and the URL, then retry."


class Database:
    """Engine and transactions of one store database (see the module docstring).

    Args:
        url: an SQLAlchemy URL (string or URL object); ``postgresql://`` (no driver) means psycopg 3.
        read_only: never write: no migration, no directory creation, writers refused.
        timeout_s: how long to wait for another writer's lock.
        share_database: open a database that holds other applications' tables too (refused
            otherwise); its journal mode is then left alone.
        engine_options: extra keyword arguments for ``sqlalchemy.create_engine``.
    """

    def __init__(self, url: Any, *, read_only: bool, timeout_s: float,
                 engine_options: Mapping[str, Any] | None = None, share_database: bool = False) -> None:
        try:
            parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(str(url))
        except (sa.exc.ArgumentError, ValueError):
            raise StoreError(
                f"{mask_secrets(str(url))!r} is not a database URL; use a file path, "
                "'sqlite:////abs/path.db' or 'postgresql+psycopg://user:password@host:5432/db'."
            ) from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.sa_url = parsed
        self.url = parsed.render_as_string(hide_password=True)
        self.read_only = read_only
        self.share_database = bool(share_database)
        self.timeout_s = real(timeout_s, "timeout_s", lo=0.0, lo_open=True, hi=MAX_SECONDS, error=StoreError,
                              hint="It is how long a writer waits for another's lock.")
        self._wal = False  # set once the database is known to be OptiRoute's own (see _open_schema)
        self.engine_options = dict(engine_options or {})
        self.sqlite = parsed.get_backend_name() == "sqlite"
        db = parsed.database or ""
        self.memory = self.sqlite and (db in ("", ":memory:") or parsed.query.get("mode") == "memory")
        self.path: Path | None = None
        if self.sqlite and not self.memory:
            self.path = Path(unquote(db[5:].split("?")[0]) if db.startswith("file:") else db)
        self.version = 0
        self._engine: Any = None
        self._pid = 0
        self._open_lock = threading.RLock()
        self._write_lock = threading.Lock()

    @property
    def where(self) -> str:
        """How messages name this store: its file path, else its masked URL."""
        return repr(str(self.path)) if self.path is not None else repr(self.url)

    # ------------------------------------------------------------------ errors
    def error(self, action: str, exc: BaseException) -> StoreError:
        """A StoreError for ``exc`` raised while ``action``; only the driver's own message is used."""
        orig = getattr(exc, "orig", None) or exc
        detail = " ".join(str(orig).split()) or type(orig).__name__
        if self.sa_url.password:
            detail = detail.replace(str(self.sa_url.password), "***")
        detail = mask_secrets(detail)[:500]
        advice = _advice(detail.lower(), orig, self.timeout_s)
        return StoreError(f"The OptiRoute store {self.where} failed while {action} ({detail}): {advice}")

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Translate database, driver and file-system errors into StoreError."""
        try:
            yield
        except OptiRouteError:
            raise
        except ImportError as exc:
            raise DependencyError(
                f"The driver for {self.url!r} is not installed ({exc}); for PostgreSQL run "
                "pip install 'optiroute[postgres]' (psycopg 3)."
            ) from None
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise self.error(action, exc) from None
        except Exception as exc:  # driver errors raised outside SQLAlchemy (connect events)
            import sqlite3

            if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
                raise self.error(action, exc) from None
            raise

    # ------------------------------------------------------------------ engine
    def _create_engine(self) -> Any:
        opts: dict[str, Any] = {}
        if self.memory:
            opts.update(poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
        elif self.sqlite and not self.read_only and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.sqlite:
            opts.update(pool_pre_ping=True)
            if self.sa_url.get_dialect().driver in ("psycopg", "psycopg2"):
                # an unreachable server fails after timeout_s instead of libpq's unbounded wait
                opts["connect_args"] = {"connect_timeout": max(int(self.timeout_s), 1)}
        opts.update(self.engine_options)
        engine = sa.create_engine(self.sa_url, **opts)
        timeout_ms = max(int(self.timeout_s * 1000), 1)
        if self.sqlite:

            @sa.event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (_sqlite_begin)
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                if self._wal:  # our own file in WAL mode: fsync at checkpoints, not per commit
                    cur.execute("PRAGMA synchronous = NORMAL")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Any) -> None:
                conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('optiroute_begin', '')}")

        elif engine.dialect.name == "postgresql":

            @sa.event.listens_for(engine, "connect")
            def _pg_connect(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute(f"SET lock_timeout = {timeout_ms}")
                cur.close()
                dbapi_conn.commit()

        return engine

    def engine(self, on_open: Callable[[Any], None] | None = None) -> Any:
        """The engine, opening the database (schema check or migration, then ``on_open(engine)``)
        on first use and again in a forked child."""
        with self._open_lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:  # forked child: never reuse the parent's connections
                self._engine.dispose(close=False)
                self._engine = None
                self._write_lock = threading.Lock()  # the parent's may have been held at fork()
            with self.guard("opening it"):
                engine = self._create_engine()
                try:
                    self.version = self._open_schema(engine)
                    if on_open is not None:
                        on_open(engine)
                except BaseException:
                    engine.dispose()
                    raise
            self._engine, self._pid = engine, os.getpid()
            return engine

    def _open_schema(self, engine: Any) -> int:
        from optiroute.store import schema as ss

        with self.connect(engine, write=False) as conn:
            found = ss.detect_version(conn)
            foreign = ss.foreign_tables(conn)
        if foreign and not self.share_database:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            raise StoreError(
                f"The database {self.where} holds tables OptiRoute did not create ({shown}): it looks like "
                "another application's database, so OptiRoute leaves it untouched (no tables added, no "
                "settings such as SQLite's journal mode changed). Give OptiRoute a database or SQLite file "
                "of its own, or share this one on purpose with open_store(..., share_database=True): "
                f"OptiRoute then adds its tables ({', '.join(sorted(ss.OWN_TABLES))}) and changes nothing else."
            )
        if found == ss.SCHEMA_VERSION:
            self._own_journal(engine, foreign)
            return found
        if found > ss.SCHEMA_VERSION or not self.read_only:
            with self.connect(engine, write=True) as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                ss.migrate(conn, self.where)
            self._own_journal(engine, foreign)
            return ss.SCHEMA_VERSION
        raise StoreError(
            f"The store {self.where} has schema version {found} and this OptiRoute needs "
            f"{ss.SCHEMA_VERSION}; it was opened read-only, so it cannot be upgraded. Open it once "
            "without read_only=True to upgrade it in place."
        )

    def _own_journal(self, engine: Any, foreign: list[str]) -> None:
        """Put an SQLite file that is OptiRoute's alone into WAL mode (readers never block the writer).
        A shared database (``share_database=True`` with other tables), an in-memory one and a
        read-only one keep their journal mode: it belongs to whoever else uses the file."""
        if not self.sqlite or self.memory or self.read_only or foreign:
            return
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            mode = str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode != "wal":  # persistent: stays WAL for every later connection
                mode = str(cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            if mode == "wal":
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()
        except Exception:  # e.g. another process holds a lock right now: it stays as it is, correct but slower
            log.debug("could not switch %s to WAL mode", self.where, exc_info=True)
            return
        finally:
            raw.close()
        self._wal = mode == "wal"

    @contextmanager
    def connect(self, engine: Any, *, write: bool) -> Iterator[Any]:
        """A connection in a transaction (SQLite writes: ``BEGIN IMMEDIATE`` behind a thread lock)."""
        serial = self.memory or (self.sqlite and write)
        with self._write_lock if serial else nullcontext(), engine.connect() as conn:
            if self.sqlite:
                conn.execution_options(optiroute_begin="IMMEDIATE" if write else "")
            with conn.begin():
                yield conn

    @contextmanager
    def tx(self, action: str, *, write: bool, on_open: Callable[[Any], None] | None = None
           ) -> Iterator[Any]:
        """One transaction; errors become StoreError naming the store and ``action``."""
        if write and self.read_only:
            raise StoreError(
                f"The store {self.where} was opened with read_only=True, so it cannot be written "
                f"while {action}; open it without read_only=True to record data."
            )
        engine = self.engine(on_open)
        with self.guard(action), self.connect(engine, write=write) as conn:
            yield conn

    def close(self) -> None:
        """Dispose of the engine; the next transaction opens it again."""
        with self._open_lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None
