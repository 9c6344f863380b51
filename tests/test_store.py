"""The store contract (every backend) and the SQLite-specific behaviour: schema upgrades, locks,
read-only files, cross-process spend.

:class:`StoreContract` is reused by ``tests/integration/test_store_postgres.py`` against a real
PostgreSQL server, so every backend passes the same tests.
"""

from __future__ import annotations

import multiprocessing
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

import optiroute
from optiroute import FeedbackError, InvalidConstraintsError, StoreError
from optiroute.store import (
    DecisionRecord,
    MemoryFeedbackStore,
    ObservationRecord,
    SQLiteFeedbackStore,
    SQLStore,
    open_store,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
AMOUNT = 3 / 32  # exact in binary, so ledger sums compare exactly


def rec(i, *, model="m", q=0.8, run_id=None, user=None, prompt=None, at=T0):
    return DecisionRecord(decision_id=f"d{i}", model=model, task_type="math", domain="math",
                          predicted_quality=q, created_at=at, run_id=run_id, user=user, prompt=prompt)


class Backend:
    """Opens stores on one underlying database (a durable one reopens the same data)."""

    def __init__(self, name, make, durable):
        self.name, self.make, self.durable = name, make, durable
        self.opened = []

    def open(self, **kw):
        store = self.make(**kw)
        self.opened.append(store)
        return store


def spend_workload(store, n_threads, per_thread, worker=0):
    """``n_threads`` threads start together and each makes ``per_thread`` reserve/settle calls
    (settled at the reserved amount) against the router scope and one user scope; returns the
    user of every admitted call."""
    admitted, errors = [], []
    barrier = threading.Barrier(n_threads)

    def call(t):
        barrier.wait()
        try:
            for k in range(per_thread):
                user = f"u{(worker + t + k) % 4}"
                rid = store.reserve_spend(limits_for(user), AMOUNT)
                if rid is not None:
                    time.sleep(0.0005)
                    if store.settle_spend(rid, AMOUNT) is not True:
                        raise AssertionError(f"reservation {rid} was not settled")
                    admitted.append(user)
        except BaseException as exc:  # surfaced after join
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return admitted


USER_LIMITS = {"u0": 0.2, "u1": 0.5, "u2": 0.5, "u3": 0.5}
ROUTER_LIMIT = 1.5  # 16 * AMOUNT exactly


def limits_for(user):
    return {"router:t": ROUTER_LIMIT, f"user:t:{user}": USER_LIMITS[user]}


def check_ledger(store, admitted):
    """The ledger after a spend workload: exact counts, bounded overshoot, all-or-nothing."""
    # The router scope admits while its total < 1.5: exactly 16 calls of 3/32, no overshoot.
    assert len(admitted) == 16
    assert store.spent("router:t") == ROUTER_LIMIT
    for user, limit in USER_LIMITS.items():
        n = admitted.count(user)
        assert store.spent(f"user:t:{user}") == n * AMOUNT
        # overshoot at most one reservation; u0 (limit 0.2) admits at 0, 3/32, 6/32 then stops at 9/32
        assert n * AMOUNT < limit + AMOUNT
    assert admitted.count("u0") <= 3
    assert sum(store.spent(f"user:t:{u}") for u in USER_LIMITS) == store.spent("router:t")


class StoreContract:
    """Tests every backend must pass; subclasses provide a ``backend`` fixture."""

    def test_decisions_round_trip(self, backend):
        store = backend.open()
        store.record_decision(rec(1, run_id="r1", user="alice", q=0.25))
        got = store.get_decision("d1")
        assert (got.model, got.task_type, got.domain, got.predicted_quality) == ("m", "math", "math", 0.25)
        assert (got.run_id, got.user, got.prompt) == ("r1", "alice", None)
        assert got.created_at == T0
        assert store.get_decision("nope") is None
        assert store.schema_version == 2

    def test_feedback_history_joins_feedback_with_its_decisions(self, backend):
        store = backend.open()
        store.record_decision(rec(0, model="a", q=0.8))
        store.record_decision(rec(1, model="b", q=0.4))
        store.record_feedback("d1", 1.0)
        store.record_feedback("d0", 0.0)
        rows = store.feedback_history()
        assert [(m, s, q) for m, _, _, s, q in rows] == [
            ("b", 1.0, pytest.approx(0.4)), ("a", 0.0, pytest.approx(0.8))]
        assert {(t, d) for _, t, d, _, _ in rows} == {(store.get_decision("d0").task_type,
                                                      store.get_decision("d0").domain)}

    def test_feedback_moves_residuals_and_reads_back(self, backend):
        store = backend.open()
        for i in range(3):
            store.record_decision(rec(i))
        store.record_feedback("d0", 0.0, "wrong")
        store.record_feedback("d1", True)
        store.record_feedback("d1", 0.5)
        assert store.corrections()[("m", "math")] == pytest.approx((-0.8 + 0.2 - 0.3) / 8)
        assert store.feedback_count() == 3
        assert [(f.decision_id, f.score, f.comment) for f in store.feedback()] == [
            ("d0", 0.0, "wrong"), ("d1", 1.0, None), ("d1", 0.5, None)]
        assert [f.score for f in store.feedback("d1")] == [1.0, 0.5]
        assert store.feedback("d2") == []
        with pytest.raises(FeedbackError, match="Unknown decision"):
            store.record_feedback("nope", 1.0)
        with pytest.raises(FeedbackError, match="0..1"):
            store.record_feedback("d0", 1.5)

    def test_decision_for_run_is_the_latest(self, backend):
        store = backend.open()
        store.record_decision(rec(2, run_id="run", at=T0 + timedelta(seconds=2)))
        store.record_decision(rec(1, run_id="run", at=T0 + timedelta(seconds=1)))
        store.record_decision(rec(3, run_id="other", at=T0 + timedelta(seconds=9)))
        assert store.decision_for_run("run").decision_id == "d2"
        assert store.decision_for_run("missing") is None

    def test_observations_filters_and_limit(self, backend):
        store = backend.open()
        for i in range(5):
            store.record_observation(ObservationRecord(
                decision_id=f"d{i % 2}", model="a" if i < 3 else "b", latency_s=0.5 + i,
                input_tokens=10 * i, output_tokens=i, cost_usd=0.001 * i, ok=i != 4,
                error="boom" if i == 4 else None, user="alice", run_id=f"r{i}",
                created_at=T0 + timedelta(seconds=i)))
        assert [o.latency_s for o in store.observations(model="a")] == [0.5, 1.5, 2.5]
        assert [o.latency_s for o in store.observations(model="a", limit=2)] == [1.5, 2.5]
        assert [o.run_id for o in store.observations(decision_id="d1")] == ["r1", "r3"]
        last = store.observations(limit=1)[0]
        assert (last.model, last.ok, last.error, last.input_tokens, last.output_tokens) == ("b", False, "boom", 40, 4)
        assert (last.cost_usd, last.user, last.created_at) == (pytest.approx(0.004), "alice", T0 + timedelta(seconds=4))
        assert len(store.observations()) == 5

    def test_corrections_rebuilt_after_reopening(self, backend):
        if not backend.durable:
            pytest.skip(f"{backend.name} keeps nothing after close")
        store = backend.open()
        store.record_decision(rec(1, run_id="r1"))
        store.record_feedback("d1", 0.0)
        store.close()
        again = backend.open()
        assert again.corrections()[("m", "math")] == pytest.approx(-0.8 / 6)
        assert again.feedback_count() == 1
        assert again.decision_for_run("r1").decision_id == "d1"

    def test_prompts_are_kept_only_on_request(self, backend):
        store = backend.open()
        store.record_decision(rec(1, prompt="my secret prompt"))
        assert store.get_decision("d1").prompt is None
        keeper = backend.open(keep_prompts=True)
        keeper.record_decision(rec(2, prompt="kept prompt"))
        assert keeper.get_decision("d2").prompt == "kept prompt"
        if backend.durable:  # the dropped prompt was never written, not merely hidden
            assert keeper.get_decision("d1").prompt is None
            keeper.close()
            assert backend.open().get_decision("d2").prompt == "kept prompt"

    def test_spend_reserve_and_settle(self, backend):
        store = backend.open()
        limits = {"router": 1.0, "user:a": 0.25}
        first = store.reserve_spend(limits, 0.2)
        assert first is not None and store.spent("router") == pytest.approx(0.2)
        second = store.reserve_spend(limits, 0.2)  # user:a at 0.2 < 0.25: admitted, overshoots to 0.4
        assert second is not None and store.spent("user:a") == pytest.approx(0.4)
        # user:a is full: refused, and nothing is recorded in the router scope either
        assert store.reserve_spend(limits, 0.01) is None
        assert store.spent("router") == pytest.approx(0.4)
        assert store.settle_spend(first, 0.05) is True
        assert store.settle_spend(first, 0.05) is False  # idempotent
        assert store.settle_spend("unknown", 1.0) is False
        assert store.spent("user:a") == pytest.approx(0.25)
        assert store.settle_spend(second, 0.0) is True  # a failed call releases its reservation
        assert store.spent("user:a") == pytest.approx(0.05)
        assert store.reserve_spend(limits, 0.01) is not None
        assert store.spent("never-used") == 0.0
        assert store.reserve_spend({}, 1.0) is not None  # nothing to limit
        with pytest.raises(InvalidConstraintsError):
            store.reserve_spend(limits, -1.0)
        with pytest.raises(InvalidConstraintsError):
            store.reserve_spend({"x": float("nan")}, 1.0)
        with pytest.raises(InvalidConstraintsError):
            store.settle_spend(first, float("inf"))

    def test_spend_holds_under_200_threads(self, backend):
        store = backend.open()
        admitted = spend_workload(store, n_threads=200, per_thread=1)
        check_ledger(store, admitted)


@pytest.fixture(params=["memory", "sqlite", "sqlite-memory"])
def backend(request, tmp_path):
    if request.param == "memory":
        shared = MemoryFeedbackStore()
        b = Backend("memory", lambda keep_prompts=False: (
            shared if not keep_prompts else MemoryFeedbackStore(keep_prompts=True)), durable=False)
    elif request.param == "sqlite":
        path = tmp_path / "sub" / "store.db"
        b = Backend("sqlite", lambda keep_prompts=False: SQLiteFeedbackStore(
            path, keep_prompts=keep_prompts), durable=True)
    else:
        b = Backend("sqlite-memory", lambda keep_prompts=False: SQLStore(
            "sqlite://", keep_prompts=keep_prompts), durable=False)
    yield b
    for store in b.opened:
        store.close()


class TestStoreContract(StoreContract):
    pass


# ---------------------------------------------------------------------------- SQLite specifics
V1_DDL = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, model TEXT NOT NULL, task_type TEXT NOT NULL,
    domain TEXT NOT NULL, predicted_quality REAL NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT NOT NULL REFERENCES decisions(decision_id),
    score REAL NOT NULL, comment TEXT, created_at TEXT NOT NULL);
"""


def _v1_file(path):
    """A store file exactly as OptiRoute 0.1 wrote it (raw sqlite3, its DDL and row format)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_DDL)
    conn.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                 ("old1", "gpt-4o", "math", "math", 0.9, T0.isoformat()))
    conn.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                 ("old2", "gpt-4o", "code", "cs", 0.5, T0.isoformat()))
    conn.execute("INSERT INTO feedback (decision_id, score, comment, created_at) VALUES (?, ?, ?, ?)",
                 ("old1", 0.0, "bad", T0.isoformat()))
    conn.commit()
    conn.close()


def test_v1_file_is_upgraded_in_place(tmp_path):
    path = tmp_path / "v1.db"
    _v1_file(path)
    store = SQLiteFeedbackStore(path)
    assert store.schema_version == 2
    assert store.corrections() == {("gpt-4o", "math"): pytest.approx(-0.9 / 6)}
    old = store.get_decision("old1")
    assert (old.model, old.run_id, old.user, old.created_at) == ("gpt-4o", None, None, T0)
    assert [(f.decision_id, f.comment) for f in store.feedback()] == [("old1", "bad")]
    store.record_decision(rec(1, run_id="r1", user="bob"))
    store.record_feedback("old2", 1.0)
    assert store.decision_for_run("r1").user == "bob"
    assert store.reserve_spend({"s": 1.0}, 0.1) is not None
    store.close()
    conn = sqlite3.connect(path)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(decisions)")]
    assert cols == ["decision_id", "model", "task_type", "domain", "predicted_quality", "created_at",
                    "run_id", "user_key", "prompt"]
    assert [r[0] for r in conn.execute("SELECT version FROM optiroute_schema")] == [2]
    conn.close()
    assert SQLiteFeedbackStore(path).feedback_count() == 2  # reopening does not migrate again


def test_v1_file_opened_read_only_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "v1.db"
    _v1_file(path)
    with pytest.raises(StoreError, match="without read_only=True to upgrade"):
        SQLiteFeedbackStore(path, read_only=True).get_decision("old1")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    SQLiteFeedbackStore(path).record_decision(rec(1))
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO optiroute_schema VALUES (99, 'from the future', 'later')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"schema version 99.*Upgrade optiroute") as err:
        SQLiteFeedbackStore(path).get_decision("d1")
    assert str(path) in str(err.value)


def test_locked_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "locked.db"
    store = SQLiteFeedbackStore(path, keep_prompts=True, timeout_s=0.2)
    store.record_decision(rec(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.raises(StoreError, match="lock") as err:
            store.record_decision(rec(2, prompt="TOP SECRET PROMPT"))
        assert time.monotonic() - start < 5
        msg = str(err.value)
        assert str(path) in msg and "timeout_s" in msg and "Retry" in msg
        assert "TOP SECRET" not in msg  # statement parameters never reach the message
        with pytest.raises(StoreError, match="lock"):
            store.reserve_spend({"s": 1.0}, 0.1)
        with pytest.raises(StoreError, match="lock"):  # a second process opening it meanwhile
            SQLiteFeedbackStore(path, timeout_s=0.2).record_feedback("d1", 1.0)
    finally:
        blocker.rollback()
        blocker.close()
    store.record_decision(rec(2))  # the lock is gone: writes work again
    assert store.get_decision("d2") is not None


def test_read_only_stores(tmp_path):
    path = tmp_path / "ro.db"
    SQLiteFeedbackStore(path).record_decision(rec(1))
    # SQLite's own read-only mode (what a read-only mount does, and what root cannot bypass)
    ro = SQLStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert ro.get_decision("d1").model == "m"
    with pytest.raises(StoreError, match="read-only") as err:
        ro.record_decision(rec(2))
    assert str(path) in str(err.value) and "another path" in str(err.value)
    # the read_only option: reads work, writes are refused before touching the file
    opt = SQLiteFeedbackStore(path, read_only=True)
    assert opt.get_decision("d1") is not None and opt.schema_version == 2
    with pytest.raises(StoreError, match="read_only=True"):
        opt.reserve_spend({"s": 1.0}, 0.1)
    with pytest.raises(StoreError, match="missing.db"):
        SQLiteFeedbackStore(tmp_path / "missing.db", read_only=True).get_decision("d1")
    assert not (tmp_path / "missing.db").exists()


def test_unwritable_path_names_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="writable") as err:
        SQLiteFeedbackStore(blocker / "sub" / "fb.db").record_decision(rec(1))
    assert "a-file" in str(err.value)


def test_construction_does_no_io(tmp_path):
    store = SQLiteFeedbackStore(tmp_path / "later" / "fb.db")
    SQLStore(f"sqlite:///{tmp_path}/other/x.db")
    assert not (tmp_path / "later").exists() and not (tmp_path / "other").exists()
    store.record_decision(rec(1))
    assert (tmp_path / "later" / "fb.db").exists()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_errors_mask_passwords():
    pytest.importorskip("psycopg")
    store = SQLStore(f"postgresql://alice:s3cr3t-pw@127.0.0.1:{_closed_port()}/db", timeout_s=1)
    assert "s3cr3t-pw" not in repr(store) and "postgresql+psycopg" in store.url
    with pytest.raises(StoreError) as err:
        store.record_decision(rec(1))
    msg = str(err.value)
    assert "s3cr3t-pw" not in msg and "***" in msg and "server is running" in msg
    with pytest.raises(StoreError, match="not a database URL") as bad:
        SQLStore("nonsense://user:hunter2@:::")
    assert "hunter2" not in str(bad.value)


def test_open_store_picks_the_backend(tmp_path):
    assert isinstance(open_store(None), MemoryFeedbackStore)
    assert isinstance(open_store("memory"), MemoryFeedbackStore)
    file_store = open_store(tmp_path / "a.db", keep_prompts=True)
    assert isinstance(file_store, SQLiteFeedbackStore) and file_store.keep_prompts
    assert open_store(file_store) is file_store
    url_store = open_store(f"sqlite:///{tmp_path}/b.db")
    assert type(url_store) is SQLStore and url_store.path == tmp_path / "b.db"
    assert open_store("postgresql://u@localhost/db").url.startswith("postgresql+psycopg://")
    assert optiroute.SQLiteFeedbackStore is SQLiteFeedbackStore


def test_import_optiroute_does_not_import_sqlalchemy():
    code = ("import sys, optiroute, optiroute.store.records; optiroute.SQLiteFeedbackStore; "
            "print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _process_worker(url, worker, start, out):
    store = open_store(url)
    _ = store.schema_version  # open (and migrate) before the race starts
    start.wait()
    out.put(spend_workload(store, n_threads=4, per_thread=10, worker=worker))
    store.close()


def run_spend_processes(url, n_proc=4):
    """``n_proc`` processes (fork) x 4 threads, one shared database; returns all admitted users."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(url, w, start, out)) for w in range(n_proc)]
    for p in procs:
        p.start()
    start.set()
    admitted, results, deadline = [], 0, time.monotonic() + 120
    while results < n_proc:
        try:
            admitted += out.get(timeout=0.5)
            results += 1
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not failed and time.monotonic() < deadline, f"worker exit codes {failed}"
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return admitted


def test_spend_holds_across_processes_sharing_a_sqlite_file(tmp_path):
    path = tmp_path / "shared.db"
    admitted = run_spend_processes(str(path))
    check_ledger(SQLiteFeedbackStore(path), admitted)


def test_paths_with_url_characters_work(tmp_path):
    odd = tmp_path / "a?b#c%20d" / "my store.db"
    store = SQLiteFeedbackStore(odd)
    store.record_decision(rec(1))
    store.close()
    assert odd.exists()
    assert SQLiteFeedbackStore(odd, read_only=True).get_decision("d1").model == "m"
