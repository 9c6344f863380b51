"""Spend budgets, per-call accounting rows, feedback by run id and the store's degraded mode."""

from __future__ import annotations

import threading
import warnings
from datetime import datetime, timezone

import pytest

from optiroute import (
    Budget,
    BudgetExceededError,
    FeedbackError,
    InvalidConstraintsError,
    MemoryFeedbackStore,
    Router,
    StoreDegradedWarning,
    StoreError,
)
from optiroute.schema.budget import scope_keys

CANDS = ["gpt-4o", "gpt-4o-mini"]
TEXT = "Prove that there are infinitely many primes, step by step."


@pytest.fixture(scope="module")
def shared_router(default_router):
    """The bundled router's heavy state, reused under new budgets and stores (cheap to build)."""
    default_router.decide(TEXT, candidates=CANDS)  # load once
    return default_router


def make(shared_router, **kw):
    r = Router(registry=shared_router.registry, index=shared_router.index,
               analyzer=shared_router.analyzer, embedder=shared_router.embedder, **kw)
    return r


@pytest.mark.parametrize("fields", [{"total_usd": -1}, {"total_usd": float("nan")},
                                    {"users": {"bob": -2.0}}, {"period": "week"}, {"bogus": 1}])
def test_bad_budgets_are_rejected_with_a_fix(fields):
    with pytest.raises(InvalidConstraintsError, match="budget"):
        Budget(**fields)


def test_scope_keys_per_router_user_and_period():
    b = Budget(total_usd=5, per_user_usd=1, users={"vip": 3}, period="day", name="app")
    now = datetime(2026, 12, 3, tzinfo=timezone.utc)
    assert scope_keys(b, "vip", now) == {"router:app:2026-12-03": 5.0, "user:app:vip:2026-12-03": 3.0}
    assert scope_keys(b, "ann", now)["user:app:ann:2026-12-03"] == 1.0
    assert scope_keys(b, None, now) == {"router:app:2026-12-03": 5.0}
    assert scope_keys(Budget(), "x") == {}


def test_call_is_reserved_then_settled_at_its_actual_cost(shared_router):
    router = make(shared_router, budget=Budget(total_usd=1.0))
    d = router.decide(TEXT, candidates=CANDS, preferences="quality-first")
    ticket = router.begin_call(d, max_tokens=100)
    assert ticket.reserved_usd > 0
    assert router.spent() == {"router:default": pytest.approx(ticket.reserved_usd)}
    card = router.registry.resolve(d.model)
    cost = router.end_call(ticket, model=d.model, input_tokens=1000, output_tokens=50)
    assert cost == pytest.approx(card.cost_usd(1000, 50))
    assert router.spent()["router:default"] == pytest.approx(cost)
    rows = router.store.observations(decision_id=d.decision_id)
    assert len(rows) == 1 and rows[0].ok and rows[0].cost_usd == pytest.approx(cost)
    assert router.end_call(ticket, model=d.model) == 0.0  # closing twice charges nothing


def test_exhausted_budget_refuses_at_admission_and_leaves_a_row(shared_router):
    router = make(shared_router, budget=Budget(per_user_usd=0.0001))
    d = router.decide(TEXT, candidates=CANDS, preferences="quality-first", user="ann")
    ticket = router.begin_call(d, user="ann", max_tokens=1000)
    router.end_call(ticket, model="gpt-4o", input_tokens=10_000, output_tokens=1000)
    d2 = router.decide(TEXT, candidates=CANDS, user="ann", run_id="r-ann")
    with pytest.raises(BudgetExceededError, match="budget reached"):
        router.begin_call(d2, user="ann", run_id="r-ann")
    rows = router.store.observations(decision_id=d2.decision_id)
    assert [(r.ok, r.error, r.user, r.run_id) for r in rows] == [
        (False, "BudgetExceededError", "ann", "r-ann")]
    # another user is not affected
    d3 = router.decide(TEXT, candidates=CANDS, user="bob")
    router.end_call(router.begin_call(d3, user="bob"), model=d3.model)


def test_a_nearly_spent_budget_routes_to_a_cheaper_model(shared_router):
    router = make(shared_router, budget=Budget(total_usd=1.0))
    big, small = CANDS  # decisions name candidates as the caller did
    d = router.decide(TEXT, candidates=CANDS, preferences="quality-first")
    assert d.model == big
    gpt4o = d.score_of(big).predicted_cost_usd
    mini = d.score_of(small).predicted_cost_usd
    room = (gpt4o + mini) / 2  # leave room for the cheap model only
    t = router.begin_call(d)
    card = router.registry.resolve("gpt-4o")
    spend_tokens = (1.0 - room) * 1e6 / card.input_usd_per_mtok
    router.end_call(t, model="gpt-4o", input_tokens=int(spend_tokens), output_tokens=0)
    assert router.decide(TEXT, candidates=CANDS, preferences="quality-first").model == small


def test_budget_holds_under_200_concurrent_callers(shared_router):
    limit = 0.05
    router = make(shared_router, budget=Budget(total_usd=limit))
    d = router.decide(TEXT, candidates=CANDS, preferences="quality-first")
    outcomes: list[str] = []
    reserved: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(200)

    def caller() -> None:
        start.wait()
        try:
            t = router.begin_call(d, chain=CANDS, max_tokens=200)
        except BudgetExceededError:
            with lock:
                outcomes.append("refused")
            return
        router.end_call(t, model="gpt-4o", input_tokens=d.profile.est_input_tokens, output_tokens=200)
        with lock:
            outcomes.append("ok")
            reserved.append(t.reserved_usd)

    threads = [threading.Thread(target=caller) for _ in range(200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    spent = router.spent()["router:default"]
    assert outcomes.count("ok") >= 1 and outcomes.count("refused") >= 1
    assert spent <= limit + max(reserved) + 1e-12
    assert len(router.store.observations()) == 200  # every call has its row


def test_feedback_by_run_id(shared_router):
    router = make(shared_router)
    d = router.decide(TEXT, candidates=CANDS, run_id="run-123")
    router.record_feedback(None, 1.0, run_id="run-123")
    assert [f.score for f in router.store.feedback(d.decision_id)] == [1.0]
    with pytest.raises(FeedbackError, match="run id"):
        router.record_feedback(None, 1.0, run_id="nope")


class BrokenStore(MemoryFeedbackStore):
    """A store whose database went away (locked, read-only, unreachable)."""

    def _fail(self, *a, **k):
        raise StoreError("Feedback store 'x.db' failed: database is locked.")

    record_decision = record_observation = record_feedback = corrections = _fail  # type: ignore[assignment]
    decision_for_run = _fail  # type: ignore[assignment]


def test_a_failing_store_degrades_to_memory_and_routing_keeps_working(shared_router):
    router = make(shared_router, store=BrokenStore())
    with pytest.warns(StoreDegradedWarning, match="routing continues"):
        d = router.decide(TEXT, candidates=CANDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreDegradedWarning)  # warned once, not per call
        d2 = router.decide(TEXT, candidates=CANDS, run_id="r1")
        router.record_feedback(d.decision_id, 0.0)
        router.record_feedback(None, 1.0, run_id="r1")
        router.record_observation(d2.decision_id, model=d2.model, latency_s=0.5)
    status = router.store_status()
    assert status["degraded"] and "locked" in status["error"] and status["buffered_decisions"] == 2
    with pytest.raises(FeedbackError):
        router.record_feedback("unknown-id", 1.0)


def test_a_budget_with_an_unreadable_ledger_refuses_rather_than_overspends(shared_router):
    class NoLedger(MemoryFeedbackStore):
        def reserve_spend(self, scopes, amount):
            raise StoreError("Feedback store 'x.db' is read-only.")

    router = make(shared_router, store=NoLedger(), budget=Budget(total_usd=10))
    d = router.decide(TEXT, candidates=CANDS)
    with pytest.raises(BudgetExceededError, match="refused while a budget is set"):
        router.begin_call(d)


def test_prompt_text_is_stored_only_when_the_store_opts_in(shared_router, tmp_path):
    from optiroute.store import SQLiteFeedbackStore

    for keep in (False, True):
        store = SQLiteFeedbackStore(tmp_path / f"keep-{keep}.db", keep_prompts=keep)
        router = make(shared_router, store=store)
        d = router.decide(TEXT, candidates=CANDS)
        assert store.get_decision(d.decision_id).prompt == (TEXT if keep else None)
        store.close()


def test_a_really_locked_sqlite_store_degrades_and_recovers(shared_router, tmp_path):
    import sqlite3

    from optiroute.store import SQLiteFeedbackStore

    path = tmp_path / "locked.db"
    store = SQLiteFeedbackStore(path, timeout_s=0.2)
    store.corrections()  # create the file and schema
    holder = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    router = make(shared_router, store=store)
    try:
        with pytest.warns(StoreDegradedWarning, match="locked"):
            d = router.decide(TEXT, candidates=CANDS)
        router.record_feedback(d.decision_id, 1.0)  # kept in memory meanwhile
        assert router.store_status()["degraded"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    d2 = router.decide(TEXT, candidates=CANDS)  # the lock is gone: writes reach the file again
    assert store.get_decision(d2.decision_id) is not None
    store.close()


def test_accounting_failures_never_cost_the_answer_or_hide_the_provider_error(shared_router, monkeypatch, caplog):
    """CallAccount closes calls for the adapters: when settling breaks, the answer (after success)
    and the provider's exception (after failure) must still reach the caller; the bug is logged."""
    from optiroute.router import calls

    router = make(shared_router, budget=Budget(total_usd=1.0))
    d = router.decide(TEXT, candidates=CANDS)

    def broken(*args, **kwargs):
        raise RuntimeError("ledger bug")

    monkeypatch.setattr(calls, "end_call", broken)
    with caplog.at_level("WARNING", logger="optiroute.router.calls"):
        assert calls.CallAccount(router, d).succeeded(d.model, 0.1, 10, 10) == 0.0
        calls.CallAccount(router, d).failed(TimeoutError("slow"))  # does not raise
    assert sum("could not account" in r.getMessage() for r in caplog.records) == 2
