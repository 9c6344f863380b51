"""A candidate server killed mid-run: routed calls fall back, none is lost, none raises.

Two real llama.cpp servers (SmolLM2-135M) on 127.0.0.1 back two model cards; quality-first routing
prefers the ``primary`` card. While concurrent routed calls are in flight, the primary server is
killed with SIGKILL (a crash, not a graceful shutdown): the requests it was serving lose their
connection, later ones are refused. Every call must still come back with an answer, from the primary
before the crash or from the backup afterwards, and say so in its metadata.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from optiroute import Router
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.local import LlamaServer
from optiroute.routing.policy import PolicyConfig

PRIMARY, BACKUP = "primary", "backup"


def _card(name: str, accuracy: float) -> ModelCard:
    return ModelCard(name=name, provider=f"server-{name}", kind="chat", input_usd_per_mtok=0.0,
                     output_usd_per_mtok=0.0, context_window=2048, ttft_s=0.2, tokens_per_s=100.0,
                     metrics={"accuracy": accuracy})


def _router() -> Router:
    # Cards nobody has outcomes for: confidence is the analyzer's alone, so min_confidence=0 keeps
    # the decision on the preference score (quality-first -> the more accurate primary).
    return Router(registry=Registry([_card(PRIMARY, 0.65), _card(BACKUP, 0.40)]),
                  policy=PolicyConfig(min_confidence=0.0), preferences="quality-first")


@pytest.fixture(scope="module")
def smol(local_models) -> str:
    return str(local_models["SmolLM2-135M-Instruct"].path)


def _server(smol: str) -> LlamaServer:
    return LlamaServer([{"model": smol, "model_alias": "smollm2", "chat_format": "chatml"}], threads=1).start()


@pytest.fixture(scope="module")
def backup_server(smol):
    server = _server(smol)
    yield server
    server.stop()


def _kill_after(server: LlamaServer, done: list, n: int, timeout: float = 120.0) -> threading.Thread:
    """Kill ``server`` (SIGKILL) once ``n`` calls have completed, while the rest are in flight."""

    def run() -> None:
        deadline = time.monotonic() + timeout
        while len(done) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait(timeout=10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _check(metas: list[dict], n: int) -> tuple[int, int]:
    """Every call answered, each by the primary (no fallback) or by the backup after the primary failed."""
    assert len(metas) == n
    assert len({m["decision_id"] for m in metas}) == n  # one decision per call, none lost or merged
    assert all(m["model"] == PRIMARY for m in metas)  # routing chose the primary every time
    by_primary = [m for m in metas if m["answered_by"] == PRIMARY]
    by_backup = [m for m in metas if m["answered_by"] == BACKUP]
    assert len(by_primary) + len(by_backup) == n
    assert all("fell_back_from" not in m for m in by_primary)
    assert all(list(m["fell_back_from"]) == [PRIMARY] for m in by_backup)
    return len(by_primary), len(by_backup)


def test_langchain_batch_survives_a_killed_server(smol, backup_server):
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import AIMessage
    from langchain_openai import ChatOpenAI

    from langchain_optiroute import ChatOptiRoute

    n, kill_at = 40, 5
    primary = _server(smol)
    done: list[object] = []

    class Done(BaseCallbackHandler):
        def on_llm_end(self, response, **kwargs) -> None:
            done.append(response)

    def chat(url: str) -> ChatOpenAI:
        # max_retries=0: a dead server should move the call down OptiRoute's fallback chain at once
        return ChatOpenAI(model="smollm2", base_url=url, api_key="not-needed", temperature=0, max_retries=0,
                          timeout=60, extra_body={"max_tokens": 8})

    llm = ChatOptiRoute(models={PRIMARY: chat(primary.base_url), BACKUP: chat(backup_server.base_url)},
                        router=_router())
    prompts = [f"Name a number bigger than {i}." for i in range(n)]
    killer = _kill_after(primary, done, kill_at)
    try:
        outs = llm.batch(prompts, config={"max_concurrency": 8, "callbacks": [Done()]}, return_exceptions=True)
    finally:
        killer.join(timeout=130)
        primary.stop()
    errors = [o for o in outs if isinstance(o, BaseException)]
    assert not errors, errors[:3]
    assert all(isinstance(o, AIMessage) and isinstance(o.content, str) for o in outs)
    by_primary, by_backup = _check([o.response_metadata["optiroute"] for o in outs], n)
    print(f"LangChain: {by_primary} answered by the primary, {by_backup} by the backup after it died")
    assert by_primary >= kill_at  # answered before the crash
    assert by_backup >= 1  # in flight or sent after the crash, answered by the backup


def test_llama_index_calls_survive_a_killed_server(smol, backup_server):
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    from llama_index_optiroute import OptiRoute

    n, kill_at = 12, 3
    primary = _server(smol)

    def like(url: str) -> OpenAILike:
        return OpenAILike(model="smollm2", api_base=url, api_key="not-needed", is_chat_model=True,
                          context_window=2048, max_tokens=8, temperature=0, max_retries=0, timeout=60)

    llm = OptiRoute(models={PRIMARY: like(primary.base_url), BACKUP: like(backup_server.base_url)}, router=_router())
    done: list[object] = []

    def one(i: int):
        resp = llm.chat([ChatMessage(role="user", content=f"Name a colour, number {i}.")])
        done.append(resp)
        return resp

    killer = _kill_after(primary, done, kill_at)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(one, i) for i in range(n)]
            responses = [f.result() for f in futures]  # re-raises if any call failed
    finally:
        killer.join(timeout=130)
        primary.stop()
    assert all(isinstance(r.message.content, str) for r in responses)
    by_primary, by_backup = _check([r.additional_kwargs["optiroute"] for r in responses], n)
    print(f"LlamaIndex: {by_primary} answered by the primary, {by_backup} by the backup after it died")
    assert by_primary >= kill_at
    assert by_backup >= 1
