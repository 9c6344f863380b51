"""Untrusted input everywhere: numbers at the edges, hostile saved routers, exact call accounting of
streams, foreign databases, the CLI's bad options and the per-call timeout.

Each test is one row (or one part of a row) of the README's bad-input table. Hermetic and fast: a
router fitted on the MMLU-Pro slice with the hash embedder, fake LangChain and LlamaIndex candidates.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from typer.testing import CliRunner

from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute
from optiroute import (
    Budget,
    Constraints,
    CorruptArtifactError,
    DataFormatError,
    FallbackExhaustedError,
    InvalidConstraintsError,
    InvalidInputError,
    InvalidPreferencesError,
    MemoryFeedbackStore,
    OptiRouteError,
    Preferences,
    Router,
    StoreError,
    open_store,
)
from optiroute import integration as oi
from optiroute.cli.app import app
from optiroute.quality.index import OutcomeIndex
from optiroute.router.artifacts import seal
from optiroute.schema import files
from tests.support.fakes import HashEmbedder
from tests.support.lc_fakes import EchoChat

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
TEXT = "Prove that there are infinitely many primes, step by step."
BIG, SMALL = "gpt-4o", "gpt-4o-mini"


@pytest.fixture(scope="module")
def fitted() -> Router:
    return Router.fit(SLICE / "prompts.csv.gz", SLICE / "outcomes.csv.gz", SLICE / "prices.csv",
                      embedder=HashEmbedder(), predictor="knn")


def budgeted(fitted: Router, **kw: Any) -> Router:
    """A router sharing the fitted parts, with a budget and its own store (so its ledger is clean)."""
    kw.setdefault("budget", Budget(total_usd=10.0))
    return Router(registry=fitted.registry, index=fitted.index, analyzer=fitted.analyzer,
                  embedder=fitted.embedder, store=MemoryFeedbackStore(), **kw)


@contextmanager
def no_hang(seconds: int):
    """Fail (instead of hanging the suite) when the body takes longer than ``seconds``."""
    def boom(*_: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s: it hangs")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ================================================================================================
# 1. Numbers at the edges: finite, in range, integer where meant, NumPy scalars accepted.


@pytest.mark.parametrize("kw", [{"lam": float("nan")}, {"lam": 0.0}, {"lam": float("inf")}, {"k": 0},
                                {"k": 2.5}, {"k": "50"}, {"lam": True}])
def test_router_settings_out_of_range(kw):
    with pytest.raises(InvalidInputError, match="'k'|'lam'"):
        Router.default(**kw)


@pytest.mark.parametrize("cons, field", [({"min_context": 10**30}, "min_context"),
                                         ({"max_cost_usd": 1e308}, "max_cost_usd"),
                                         ({"max_latency_s": float("inf")}, "max_latency_s"),
                                         ({"min_context": 8192.5}, "min_context")])
def test_constraints_at_the_edges_name_the_field_and_range(fitted, cons, field):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow warning leaks either
        with pytest.raises(InvalidConstraintsError, match=rf"{field}' must be (a finite number|an integer) .*\d"):
            fitted.decide(TEXT, constraints=cons)


def test_the_largest_allowed_constraints_route_without_warnings(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        d = fitted.decide(TEXT, constraints={"min_context": 1, "max_cost_usd": 1e9, "max_latency_s": 1e6})
    assert np.isfinite(d.confidence) and all(np.isfinite(s.score) for s in d.scores)


def test_numpy_scalars_are_numbers(fitted):
    prefs = {"accuracy": np.float32(0.7), "cost": np.float64(0.3), "latency": np.int64(0)}
    d = fitted.decide(TEXT, preferences=prefs, constraints={"min_context": np.int32(100),
                                                             "max_cost_usd": np.float32(5.0)})
    assert d.preferences.accuracy == pytest.approx(0.7)
    assert Budget(total_usd=np.float32(2.5)).total_usd == 2.5
    with pytest.raises(InvalidPreferencesError, match="0..1"):
        Preferences(accuracy=np.bool_(True))


def test_fit_refuses_negative_or_fractional_tokens_and_infinite_costs():
    prompts = pd.DataFrame({"prompt_id": ["1", "2"], "split": ["train"] * 2, "text": ["a b c", "d e f"]})
    base = pd.DataFrame({"prompt_id": ["1", "2"], "model": ["m", "m"], "score": [1.0, 0.0]})
    for column, bad, match in [("output_tokens", [-5000, 10], "output_tokens.*integer in 0"),
                               ("output_tokens", [10.5, 10], "output_tokens.*integer"),
                               ("cost_usd", [float("inf"), 0.1], "cost_usd.*finite"),
                               ("cost_usd", [-1.0, 0.1], "cost_usd")]:
        with pytest.raises(DataFormatError, match=match):
            Router.fit(prompts, base.assign(**{column: bad}), embedder=HashEmbedder(), predictor="knn")
    with pytest.raises(DataFormatError, match="'text' holds bytes in row 1"):
        Router.fit(prompts.assign(text=["fine", b"\xff raw"]), base, embedder=HashEmbedder(), predictor="knn")
    with pytest.raises(DataFormatError, match="'model' is empty in row 0"):
        Router.fit(prompts, base.assign(model=["  ", "m"]), embedder=HashEmbedder(), predictor="knn")


def test_cards_refuse_infinite_prices_and_absurd_sizes():
    from optiroute import ModelCard, RegistryError

    for field, value in [("input_usd_per_mtok", float("inf")), ("output_usd_per_mtok", -1),
                         ("context_window", 10**30), ("tokens_per_s", 0), ("verbosity", float("nan"))]:
        fields = {"name": "x", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 1.0, field: value}
        with pytest.raises(RegistryError, match=field):
            ModelCard(**fields)


def test_end_call_with_bad_usage_leaves_the_call_open_for_a_corrected_report(fitted):
    router = budgeted(fitted)
    d = router.decide(TEXT, candidates=[BIG, SMALL])
    ticket = router.begin_call(d, max_tokens=100)
    for bad in ({"output_tokens": -5000}, {"input_tokens": 2.5}, {"latency_s": float("nan")},
                {"output_tokens": 10**12}):
        with pytest.raises(InvalidInputError, match="tokens|latency_s"):
            router.end_call(ticket, model=d.model, **bad)
        assert not ticket.closed
    assert router.spent()["router:default"] == pytest.approx(ticket.reserved_usd)  # still reserved
    cost = router.end_call(ticket, model=d.model, input_tokens=np.int64(10), output_tokens=5)
    assert router.spent()["router:default"] == pytest.approx(cost)
    with pytest.raises(InvalidInputError, match="max_tokens"):
        router.begin_call(d, max_tokens=-1)


def test_record_observation_and_feedback_check_their_numbers(fitted):
    from optiroute import FeedbackError

    with pytest.raises(InvalidInputError, match="latency_s"):
        fitted.record_observation(model=BIG, latency_s=-1.0)
    with pytest.raises(InvalidInputError, match="cost_usd"):
        fitted.record_observation(model=BIG, latency_s=1.0, cost_usd=float("inf"))
    d = fitted.decide(TEXT)
    fitted.record_feedback(d.decision_id, np.float32(0.5))
    with pytest.raises(FeedbackError, match="0..1"):
        fitted.record_feedback(d.decision_id, np.float64("nan"))
    with pytest.raises(FeedbackError, match="decision_id"):
        fitted.record_feedback(["not", "an", "id"], 1.0)  # type: ignore[arg-type]


def test_bad_policy_and_batch_settings(fitted):
    from optiroute import PolicyConfig

    with pytest.raises(InvalidInputError, match="explore"):
        PolicyConfig(explore=float("nan"))
    with pytest.raises(InvalidInputError, match="max_fallbacks"):
        PolicyConfig(max_fallbacks=-1)
    with pytest.raises(InvalidConstraintsError, match="budget_usd"):
        fitted.decide_batch([TEXT], budget_usd=float("inf"))
    with pytest.raises(InvalidInputError, match="unit vectors"):
        fitted.decide_batch([TEXT], embeddings=np.full((1, 384), 1e30, dtype=np.float64))


# ================================================================================================
# 2. Saved routers are untrusted.


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("untrusted") / "router"
    fitted.save(d)
    return d


def copy(saved: Path, tmp_path: Path) -> Path:
    d = tmp_path / "r"
    shutil.copytree(saved, d)
    return d


def edit(d: Path, change, *, reseal: bool = True) -> None:
    m = json.loads((d / "manifest.json").read_text())
    change(m)
    (d / "manifest.json").write_text(json.dumps(seal(m) if reseal else m))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_saved_manifest_has_its_own_checksum(saved, tmp_path):
    assert "checksum" in json.loads((saved / "manifest.json").read_text())
    d = copy(saved, tmp_path)
    edit(d, lambda m: m.update(lam=4.0), reseal=False)
    with pytest.raises(CorruptArtifactError, match="own checksum"):
        Router.load(d)


def test_a_file_outside_the_directory_is_refused_on_its_name_alone(saved, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    messages = []
    for name in ("../secret.json", "../does-not-exist.json", "/etc/passwd", "sub/x.json"):
        d = tmp_path / f"case{len(messages)}"
        shutil.copytree(saved, d)
        edit(d, lambda m, name=name: m["files"].update({name: "0" * 64}))
        with pytest.raises(CorruptArtifactError, match="not a plain file name") as err:
            Router.load(d)
        messages.append(str(err.value).replace(name, "NAME").replace(str(d), "DIR"))
    assert len(set(messages)) == 1  # the same words whether the target exists or not


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "outside"])
def test_devices_fifos_and_symlinks_out_are_refused_without_hanging(saved, tmp_path, target):
    d = copy(saved, tmp_path)
    victim = d / "index.npz"
    victim.unlink()
    if target == "fifo":
        os.mkfifo(d / "pipe")
        victim.symlink_to(d / "pipe")
    elif target == "outside":
        shutil.copy(saved / "index.npz", tmp_path / "index-elsewhere.npz")
        victim.symlink_to(tmp_path / "index-elsewhere.npz")
    else:
        victim.symlink_to(target)
    with no_hang(10), pytest.raises(CorruptArtifactError, match="index.npz.*(symbolic link|not a regular file)"):
        Router.load(d)
    (d / "manifest.json").unlink()
    os.mkfifo(d / "manifest.json")  # even the manifest itself
    with no_hang(10), pytest.raises(CorruptArtifactError, match="manifest.json.*not a regular file"):
        Router.load(d)


def test_a_deeply_nested_or_oversized_manifest_is_refused(saved, tmp_path, monkeypatch):
    d = copy(saved, tmp_path)
    (d / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CorruptArtifactError, match="manifest.json.*nests"):
        Router.load(d)
    d2 = tmp_path / "d2"
    shutil.copytree(saved, d2)
    monkeypatch.setitem(files.CAPS, "registry.json", 100)
    with pytest.raises(CorruptArtifactError, match="registry.json.*more than the 100 bytes"):
        Router.load(d2)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(k="50"), "field 'k'.*integer"),
    (lambda m: m.update(lam=float("nan")), "field 'lam'"),
    (lambda m: m.update(models="gpt-4o"), "models"),
    (lambda m: m["policy"].update(explore=0.9), "policy.*explore"),
    (lambda m: m["policy"].update(task_floor="high"), "policy.*task_floor"),
    (lambda m: m.update(surprise=1), "surprise"),
    (lambda m: m["files"].update({"registry.json": "not-a-digest"}), "SHA-256"),
    (lambda m: m["files"].pop("registry.json"), "does not list 'registry.json'"),
])
def test_manifest_fields_are_validated(saved, tmp_path, change, match):
    d = copy(saved, tmp_path)
    edit(d, change)
    with pytest.raises(CorruptArtifactError, match=match):
        Router.load(d)


def _replace_index(d: Path, index: OutcomeIndex) -> None:
    (d / "index.ann").unlink()
    index.save(d, with_ann=False)
    edit(d, lambda m: (m["files"].pop("index.ann"), m["files"].update({"index.npz": sha(d / "index.npz")})))


def test_index_arrays_of_the_wrong_dimension_fail_at_load(fitted, saved, tmp_path):
    ix = fitted.index
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((len(ix), 128)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    d = copy(saved, tmp_path)
    _replace_index(d, OutcomeIndex(emb, ix.prompt_ids, ix.tasks, ix.models, ix.scores, ix.costs))
    with pytest.raises(CorruptArtifactError, match=r"index.npz.*'embeddings'.*128.*384"):
        Router.load(d)
    with pytest.raises(CorruptArtifactError, match=r"analyzer.npz.*384"):
        Router.load(saved, embedder=type("Small", (), {"dim": 128, "encode": None})())


def test_index_arrays_that_disagree_fail_at_load(fitted, saved, tmp_path):
    ix = fitted.index
    bad = ix.scores.copy()
    bad[0, 0] = 7.0  # a score outside 0..1
    d = copy(saved, tmp_path)
    _replace_index(d, OutcomeIndex(ix.matrix, ix.prompt_ids, ix.tasks, ix.models, bad, ix.costs))
    with pytest.raises(CorruptArtifactError, match=r"index.npz.*'scores'"):
        Router.load(d)


def test_an_annoy_file_of_the_wrong_size_fails_at_load(saved, tmp_path):
    d = copy(saved, tmp_path)
    with open(d / "index.ann", "ab") as f:
        f.write(b"\0" * 7)
    edit(d, lambda m: m["files"].update({"index.ann": sha(d / "index.ann")}))
    with pytest.raises(CorruptArtifactError, match="index.ann.*Annoy"):
        Router.load(d)


def test_learned_predictor_weights_are_checked_against_the_embedder(tmp_path):
    from optiroute.quality.mlp import MLPPredictor

    src = Path(__file__).parent / "fixtures" / "saved_router_0_1" / "mlp"
    d = tmp_path / "mlp"
    shutil.copytree(src, d)
    with np.load(d / "predictor.npz") as z:
        arrays = dict(z)
    arrays["w_W1"] = arrays["w_W1"][:100]  # a first layer for 100-d embeddings
    np.savez_compressed(d / "predictor.npz", **arrays)
    edit(d, lambda m: m["files"].update({"predictor.npz": sha(d / "predictor.npz")}))
    with pytest.raises(CorruptArtifactError, match=r"predictor.npz.*'w_W1'.*384"):
        Router.load(d)
    with pytest.raises(CorruptArtifactError, match="predictor.npz"):
        MLPPredictor.load(d, None, dim=384)


# ================================================================================================
# 3. Calls are accounted exactly once, at their real end (both adapters, one core path).


class BreaksMidStream(EchoChat):
    """Streams two chunks of 40 characters without usage, then the connection drops."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        yield ChatGenerationChunk(message=AIMessageChunk(content="abcd" * 10))
        yield ChatGenerationChunk(message=AIMessageChunk(content="efgh" * 10))
        raise ConnectionResetError("connection reset mid-stream")

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        for chunk in self._stream(messages):
            await asyncio.sleep(0)
            yield chunk


class StreamLLM(CustomLLM):
    """A LlamaIndex candidate streaming ``parts`` (no usage), optionally failing after them."""

    model: str = "echo"
    parts: list[str] = ["abcd" * 10, "efgh" * 10]
    fail_after: bool = False
    delay: float = 0.0
    started: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        time.sleep(self.delay)
        return CompletionResponse(text="".join(self.parts))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.started += 1

        def gen() -> CompletionResponseGen:
            time.sleep(self.delay)
            text = ""
            for p in self.parts:
                text += p
                yield CompletionResponse(text=text, delta=p)
            if self.fail_after:
                raise ConnectionResetError("connection reset mid-stream")

        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        self.started += 1

        async def gen() -> CompletionResponseAsyncGen:
            text = ""
            for p in self.parts:
                await asyncio.sleep(self.delay)
                text += p
                yield CompletionResponse(text=text, delta=p)

        return gen()


def rows(router: Router) -> list[Any]:
    return router.store.observations()


def expected_cost(router: Router, d, output_tokens: int, input_tokens: int | None = None) -> float:
    card = router.registry.resolve(d.model)
    return card.cost_usd(d.profile.est_input_tokens if input_tokens is None else input_tokens, output_tokens)


def test_langchain_stream_failing_mid_way_is_not_ok_and_costs_what_streamed(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[BreaksMidStream(model_name=BIG)], router=router)
    got = []
    with pytest.raises(ConnectionResetError):
        for chunk in llm.stream(TEXT):
            got.append(chunk)
    assert len(got) == 2
    row = rows(router)[-1]
    assert (row.ok, row.error, row.output_tokens) == (False, "ConnectionResetError", 20)  # 80 characters / 4
    d = router.store.get_decision(row.decision_id)
    assert row.cost_usd == pytest.approx(router.registry.resolve(d.model).cost_usd(row.input_tokens, 20))
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd) and row.cost_usd > 0
    assert router.latency_ratio(BIG) is None  # a cut-off call does not feed the latency tracker


async def test_langchain_async_stream_failing_mid_way(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[BreaksMidStream(model_name=BIG)], router=router)
    with pytest.raises(ConnectionResetError):
        async for _ in llm.astream(TEXT):
            pass
    row = rows(router)[-1]
    assert (row.ok, row.error, row.output_tokens) == (False, "ConnectionResetError", 20)
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd)


def test_langchain_stream_completing_is_settled_ok_with_its_usage(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[EchoChat(model_name=BIG)], router=router)
    text = "".join(c.content for c in llm.stream(TEXT))
    row = rows(router)[-1]
    assert row.ok and row.error is None and (row.input_tokens, row.output_tokens) == (5, len(text.split()))
    assert router.latency_ratio(BIG) is not None


def test_langchain_stream_stopped_by_the_consumer_is_cancelled(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[BreaksMidStream(model_name=BIG)], router=router)
    stream = llm.stream(TEXT)
    next(stream)
    stream.close()
    gc.collect()
    row = rows(router)[-1]
    assert (row.ok, row.error, row.output_tokens) == (False, "cancelled", 10)
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd)


def test_llama_index_stream_failing_mid_way(fitted):
    router = budgeted(fitted)
    llm = OptiRoute(models={BIG: StreamLLM(model=BIG, fail_after=True)}, router=router)
    got = []
    with pytest.raises(ConnectionResetError):
        for item in llm.stream_complete(TEXT):
            got.append(item)
    assert len(got) == 2
    row = rows(router)[-1]
    assert (row.ok, row.error, row.output_tokens) == (False, "ConnectionResetError", 20)
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd) and row.cost_usd > 0


def test_llama_index_stream_dropped_unread_reserves_nothing(fitted):
    router = budgeted(fitted)
    cand = StreamLLM(model=BIG)
    llm = OptiRoute(models={BIG: cand}, router=router)
    stream = llm.stream_chat([ChatMessage(role="user", content=TEXT)])
    assert cand.started == 0 and router.spent()["router:default"] == 0.0  # routed, not admitted
    del stream
    gc.collect()
    assert router.spent()["router:default"] == 0.0 and rows(router) == []


def test_llama_index_stream_dropped_after_one_item_is_cancelled(fitted):
    router = budgeted(fitted)
    llm = OptiRoute(models={BIG: StreamLLM(model=BIG)}, router=router)
    stream = llm.stream_complete(TEXT)
    assert next(stream).delta == "abcd" * 10
    del stream
    gc.collect()
    row = rows(router)[-1]
    assert (row.ok, row.error, row.output_tokens) == (False, "cancelled", 10)
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd)


async def test_llama_index_async_stream_cancelled_by_its_task(fitted):
    router = budgeted(fitted)
    llm = OptiRoute(models={BIG: StreamLLM(model=BIG, delay=0.05, parts=["ab" * 10] * 50)}, router=router)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in await llm.astream_complete(TEXT):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = rows(router)[-1]
    assert row.ok is False and row.error == "cancelled" and 0 < row.output_tokens < 250
    assert router.spent()["router:default"] == pytest.approx(row.cost_usd)


def test_an_admitted_call_dropped_without_closing_is_released_by_a_finaliser(fitted):
    router = budgeted(fitted)
    plan = oi.plan_call(router, TEXT, candidates={BIG: BIG})
    assert router.spent()["router:default"] > 0  # reserved
    del plan
    gc.collect()
    assert router.spent()["router:default"] == 0.0
    row = rows(router)[-1]
    assert (row.ok, row.error, row.cost_usd) == (False, "abandoned", 0.0)


def test_the_core_stream_path_charges_the_whole_estimate_when_nothing_measures_the_stream(fitted):
    router = budgeted(fitted)
    plan = oi.plan_call(router, TEXT, candidates={BIG: BIG})

    def start(key: str):
        yield "x"
        raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        list(plan.relay(plan.open_stream(start)))
    row = rows(router)[-1]
    card = router.registry.resolve(plan.decision.model)
    assert row.output_tokens == round(plan.decision.profile.est_output_tokens * card.verbosity)
    assert not row.ok and row.cost_usd > 0


# ================================================================================================
# 4. Foreign databases.


def _sqlite(path: Path) -> tuple[set[str], str]:
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return tables, mode


def test_open_store_refuses_another_applications_database_and_leaves_it_untouched(tmp_path):
    from optiroute.store import DecisionRecord

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ann')")
    conn.commit()
    conn.close()
    before = _sqlite(path)
    assert before == ({"users"}, "delete")
    with pytest.raises(StoreError, match=r"did not create \(users\).*share_database=True"):
        open_store(path).corrections()
    assert _sqlite(path) == before  # no table added, journal mode unchanged
    shared = open_store(path, share_database=True)
    shared.record_decision(DecisionRecord(decision_id="d1", model="m", task_type="math", domain="math",
                                          predicted_quality=0.5, created_at=datetime.now(timezone.utc)))
    assert shared.get_decision("d1").model == "m"
    shared.close()
    tables, mode = _sqlite(path)
    assert {"users", "decisions", "feedback", "observations"} <= tables and mode == "delete"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ann",)]
    conn.close()
    with pytest.raises(StoreError, match="share_database"):  # still foreign without the flag
        open_store(path).corrections()


def test_open_store_puts_its_own_file_in_wal_mode(tmp_path):
    store = open_store(tmp_path / "own.db")
    store.corrections()
    store.close()
    tables, mode = _sqlite(tmp_path / "own.db")
    assert mode == "wal" and "optiroute_schema" in tables
    with pytest.raises(StoreError):
        open_store(42)  # type: ignore[arg-type]


# ================================================================================================
# 5. Every CLI command validates its options first: exit 2, one line, no file written.

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "300"})


def one_error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.mark.parametrize("extra", [[], ["--no-cold-start"]])
@pytest.mark.parametrize("price", ["-1", "nan", "inf", "1e400"])
def test_models_add_with_a_bad_price_writes_nothing(tmp_path, extra, price):
    reg = tmp_path / "reg.json"
    res = cli("models", "add", "--registry", str(reg), "--name", "x", "--input-price", price,
              "--output-price", "1", *extra)
    assert "--input-price" in one_error_line(res) and not reg.exists()


def test_models_add_keeps_a_good_registry_when_the_card_is_bad(tmp_path):
    reg = tmp_path / "reg.json"
    assert cli("models", "add", "--registry", str(reg), "--name", "ok-7b", "--input-price", "1",
               "--output-price", "2", "--no-cold-start").exit_code == 0
    before = reg.read_bytes()
    card = tmp_path / "card.yaml"
    card.write_text("name: bad\ninput_usd_per_mtok: -3\noutput_usd_per_mtok: 1\n")
    assert "input_usd_per_mtok" in one_error_line(cli("models", "add", "--registry", str(reg), "--card", str(card)))
    card.write_text("- not a mapping\n")
    one_error_line(cli("models", "add", "--registry", str(reg), "--card", str(card)))
    assert reg.read_bytes() == before
    assert cli("models", "list", "--registry", str(reg)).exit_code == 0  # every later command still works


@pytest.mark.parametrize("args", [
    ["explain", "hi", "--top", "abc"],
    ["explain", "hi", "--top", "0"],
    ["route"],
    ["no-such-command"],
    ["route", "hi", "--no-such-option"],
    ["route", "hi", "-p", "{" * 5000],
    ["route-batch", "--input", "in.csv", "--out", "out.csv", "--chunk", "0"],
    ["route-batch", "--input", "in.csv", "--out", "out.csv", "--budget", "-5"],
    ["select-models", "--data", ".", "--k", "0"],
    ["select-models", "--data", ".", "--k", "2", "--cost-weight", "nan"],
    ["bench", "--data", ".", "--overhead-n", "-1"],
    ["onboard", "--router", ".", "--model", "m", "--base-url", "ftp://x", "--prompts", "p.csv"],
    ["onboard", "--router", ".", "--model", "m", "--base-url", "http://x", "--prompts", "p.csv", "--timeout", "0"],
    ["onboard", "--router", ".", "--model", "m", "--base-url", "http://x", "--prompts", "p.csv", "--price-in", "1"],
])
def test_bad_options_exit_2_with_one_line_before_any_work(args):
    one_error_line(cli(*args))


def test_fit_refuses_an_output_path_that_is_a_file_before_embedding(tmp_path):
    out = tmp_path / "taken"
    out.write_text("mine")
    assert "--out" in one_error_line(cli("fit", "--prompts", str(SLICE / "prompts.csv.gz"), "--out", str(out)))
    assert out.read_text() == "mine"


# ================================================================================================
# 6. The per-call timeout applies to the candidate call and falls back.


class SlowChat(EchoChat):
    """Answers after ``delay`` seconds (sync, async and before its first streamed chunk)."""

    delay: float = 3.0

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        time.sleep(self.delay)
        return super()._generate(messages, stop=stop, **kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        await asyncio.sleep(self.delay)
        return super()._generate(messages, stop=stop, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        time.sleep(self.delay)
        yield from super()._stream(messages, stop=stop, **kwargs)


def _slow_first(router: Router, cls=SlowChat, **kw) -> tuple[ChatOptiRoute, str]:
    """A ChatOptiRoute whose routed first choice is slow and whose second is fast."""
    first = router.decide(TEXT, candidates=[BIG, SMALL], preferences="quality-first").model
    slow_key = BIG if first == BIG else SMALL  # decisions name candidates as the caller did
    fast_key = SMALL if slow_key == BIG else BIG
    models = {slow_key: cls(model_name=slow_key), fast_key: EchoChat(model_name=fast_key)}
    return ChatOptiRoute(models=models, router=router, preferences="quality-first", **kw), fast_key


def test_langchain_timeout_moves_to_the_next_candidate(fitted):
    router = budgeted(fitted)
    llm, fast = _slow_first(router, timeout=0.3)
    started = time.monotonic()
    msg = llm.invoke(TEXT)
    assert time.monotonic() - started < 2.5
    meta = msg.response_metadata["optiroute"]
    assert meta["answered_by"] == fast  # the caller's own name
    assert list(meta["fell_back_from"].values()) == ["TimeoutError"]
    failed = [r for r in rows(router) if not r.ok]
    assert [r.error for r in failed] == ["TimeoutError"]


async def test_langchain_timeout_async_and_streams(fitted):
    router = budgeted(fitted)
    llm, fast = _slow_first(router, timeout=0.3)
    started = time.monotonic()
    msg = await llm.ainvoke(TEXT)
    chunks = list(llm.stream(TEXT))
    assert time.monotonic() - started < 4.0
    assert msg.response_metadata["optiroute"]["answered_by"] == fast
    stamped = next(c for c in chunks if "optiroute" in c.response_metadata)
    assert stamped.response_metadata["optiroute"]["answered_by"] == fast


def test_every_candidate_timing_out_exhausts_the_chain(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[SlowChat(model_name=BIG), SlowChat(model_name=SMALL)], router=router, timeout=0.2)
    with pytest.raises(FallbackExhaustedError, match="TimeoutError"):
        llm.invoke(TEXT)
    assert router.spent()["router:default"] == 0.0


def test_llama_index_timeout(fitted):
    router = budgeted(fitted)
    first = router.decide(TEXT, candidates=[BIG, SMALL], preferences="quality-first").model
    slow_key = BIG if first == BIG else SMALL  # decisions name candidates as the caller did
    fast_key = SMALL if slow_key == BIG else BIG
    llm = OptiRoute(models={slow_key: StreamLLM(model=slow_key, delay=3.0), fast_key: StreamLLM(model=fast_key)},
                    router=router, preferences="quality-first", timeout=0.3)
    started = time.monotonic()
    resp = llm.complete(TEXT)
    text = "".join(r.delta or "" for r in llm.stream_complete(TEXT))
    assert time.monotonic() - started < 4.0 and text == "abcd" * 10 + "efgh" * 10
    assert resp.additional_kwargs["optiroute"]["answered_by"] == fast_key


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "soon"])
def test_a_bad_timeout_is_refused_at_construction(value):
    with pytest.raises(InvalidInputError, match="timeout"):
        ChatOptiRoute(models=[EchoChat(model_name=BIG)], timeout=value)
    with pytest.raises(InvalidInputError, match="timeout"):
        OptiRoute(models={BIG: StreamLLM(model=BIG)}, timeout=value)


def test_no_thread_is_left_waiting_after_a_fast_call(fitted):
    router = budgeted(fitted)
    llm = ChatOptiRoute(models=[EchoChat(model_name=BIG)], router=router, timeout=5.0)
    before = threading.active_count()
    llm.invoke(TEXT)
    time.sleep(0.05)
    assert threading.active_count() <= before


def test_optiroute_errors_are_the_only_errors_of_the_validation_layer():
    from optiroute.schema.numbers import integer, real

    for fn, value in [(real, "1"), (real, None), (real, 10**400), (integer, 1.5), (integer, float("inf"))]:
        with pytest.raises(OptiRouteError):
            fn(value, "x", lo=0, hi=10)
    assert isinstance(Constraints(min_context=np.uint16(5)).min_context, int)
