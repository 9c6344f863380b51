"""The store contract against a real PostgreSQL server (started by the ``postgres_url`` fixture),
plus what only a server shows: the spend ledger shared by several processes, concurrent first opens
that race to migrate, a newer schema refused, and lock timeouts reported as StoreError."""

from __future__ import annotations

import threading
import uuid

import pytest

from optiroute import StoreError
from optiroute.store import SQLStore
from tests.support.pg_server import create_database
from tests.test_store import Backend, check_ledger, rec, run_spend_processes
from tests.test_store import StoreContract as _Contract


@pytest.fixture
def fresh_db(postgres_url):
    """A new, empty database on the session's server for each test."""
    return create_database(postgres_url, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def backend(fresh_db):
    b = Backend("postgres", lambda keep_prompts=False: SQLStore(fresh_db, keep_prompts=keep_prompts),
                durable=True)
    yield b
    for store in b.opened:
        store.close()


class TestPostgresStoreContract(_Contract):
    pass


def test_spend_holds_across_processes_sharing_a_server(fresh_db):
    admitted = run_spend_processes(fresh_db)
    store = SQLStore(fresh_db)
    check_ledger(store, admitted)
    store.close()


def test_concurrent_first_opens_migrate_once(fresh_db):
    stores = [SQLStore(fresh_db) for _ in range(8)]
    errors = []
    barrier = threading.Barrier(len(stores))

    def open_it(store):
        barrier.wait()
        try:
            store.record_decision(rec(id(store)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(s.schema_version == 2 for s in stores)
    with stores[0]._ensure().connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT version FROM optiroute_schema ORDER BY 1")] == [1, 2]
    for s in stores:
        s.close()


def test_newer_schema_is_refused(fresh_db):
    store = SQLStore(fresh_db)
    store.record_decision(rec(1))
    with store._ensure().begin() as conn:
        conn.exec_driver_sql("INSERT INTO optiroute_schema VALUES (99, 'future', 'later')")
    store.close()
    with pytest.raises(StoreError, match=r"schema version 99.*Upgrade optiroute"):
        SQLStore(fresh_db).get_decision("d1")


def test_lock_timeout_is_a_store_error(fresh_db):
    store = SQLStore(fresh_db, timeout_s=0.3)
    rid = store.reserve_spend({"s": 1.0}, 0.1)
    blocker = SQLStore(fresh_db)
    with blocker._ensure().connect() as conn, conn.begin():
        conn.exec_driver_sql("SELECT * FROM spend_scopes WHERE scope = 's' FOR UPDATE")
        with pytest.raises(StoreError, match="lock") as err:
            store.reserve_spend({"s": 1.0}, 0.1)
        assert "timeout_s" in str(err.value) and fresh_db.rsplit("/", 1)[1] in str(err.value)
    assert store.settle_spend(rid, 0.1) is True  # the lock is gone
    assert store.spent("s") == pytest.approx(0.1)
    store.close()
    blocker.close()


def test_another_applications_database_is_refused_unless_shared(fresh_db):
    """A database holding tables OptiRoute did not create is left untouched unless shared on purpose."""
    import sqlalchemy as sa

    engine = sa.create_engine(fresh_db.replace("postgresql://", "postgresql+psycopg://", 1)
                              if fresh_db.startswith("postgresql://") else fresh_db)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id integer PRIMARY KEY)")
    with pytest.raises(StoreError, match=r"did not create \(orders\).*share_database=True"):
        SQLStore(fresh_db).get_decision("x")
    assert set(sa.inspect(engine).get_table_names()) == {"orders"}
    shared = SQLStore(fresh_db, share_database=True)
    shared.record_decision(rec(1))
    assert shared.get_decision("d1").model == "m"
    shared.close()
    assert {"orders", "decisions", "optiroute_schema"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
