from datetime import datetime, timezone

import pytest

from optiroute import FeedbackError, StoreError
from optiroute.store import DecisionRecord, FeedbackStore, MemoryFeedbackStore, SQLiteFeedbackStore


def _rec(i, model="m", q=0.8):
    return DecisionRecord(decision_id=f"d{i}", model=model, task_type="math", domain="math",
                          predicted_quality=q, created_at=datetime.now(timezone.utc))


@pytest.mark.parametrize("make", [lambda p: MemoryFeedbackStore(), lambda p: SQLiteFeedbackStore(p / "sub" / "fb.db")])
def test_feedback_moves_the_residual(make, tmp_path):
    store = make(tmp_path)
    for i in range(10):
        store.record_decision(_rec(i))
        store.record_feedback(f"d{i}", 0.0)  # thumbs down on a model predicted at 0.8
    corr = store.corrections()[("m", "math")]
    assert corr == pytest.approx(-0.8 * 10 / 15)
    assert store.feedback_count() == 10
    with pytest.raises(FeedbackError, match="Unknown decision"):
        store.record_feedback("nope", 1.0)
    with pytest.raises(FeedbackError, match="0..1"):
        store.record_feedback("d1", 2.0)
    with pytest.raises(FeedbackError):
        store.record_feedback("d1", float("nan"))


def test_sqlite_store_is_durable(tmp_path):
    path = tmp_path / "fb.db"
    s1 = SQLiteFeedbackStore(path)
    s1.record_decision(_rec(1))
    s1.record_feedback("d1", True)
    s1.close()
    s2 = SQLiteFeedbackStore(path)
    assert s2.get_decision("d1").model == "m"
    assert s2.corrections()[("m", "math")] == pytest.approx(0.2 / 6)


def test_memory_store_evicts_oldest():
    s = MemoryFeedbackStore(max_decisions=2)
    for i in range(3):
        s.record_decision(_rec(i))
    assert s.get_decision("d0") is None and s.get_decision("d2") is not None


def test_unopenable_store_gives_store_error(tmp_path):
    bad = tmp_path / "file"
    bad.write_text("x")
    with pytest.raises(StoreError, match="writable"):
        SQLiteFeedbackStore(bad / "fb.db").record_decision(_rec(1))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        SQLiteFeedbackStore(junk).record_decision(_rec(1))


def test_memory_run_index_follows_eviction_and_mixed_timestamps():
    s = MemoryFeedbackStore(max_decisions=2)
    naive = datetime(2026, 1, 1, 12, 0)
    aware = datetime(2026, 1, 1, 12, 0, 1, tzinfo=timezone.utc)
    s.record_decision(DecisionRecord(decision_id="a", model="m", task_type="t", domain="d",
                                     predicted_quality=0.5, created_at=aware, run_id="r"))
    s.record_decision(DecisionRecord(decision_id="b", model="m", task_type="t", domain="d",
                                     predicted_quality=0.5, created_at=naive, run_id="r"))
    assert s.decision_for_run("r").decision_id == "a"  # later timestamp wins, naive read as UTC
    s.record_decision(_rec(1))
    s.record_decision(_rec(2))  # evicts a and b
    assert s.decision_for_run("r") is None


def test_public_names_stay_exported():
    import optiroute

    assert optiroute.FeedbackStore is FeedbackStore
    assert optiroute.MemoryFeedbackStore is MemoryFeedbackStore
    assert optiroute.SQLiteFeedbackStore is SQLiteFeedbackStore
    assert issubclass(SQLiteFeedbackStore, FeedbackStore)
