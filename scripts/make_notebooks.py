"""Write the cookbook notebooks (outputs stripped). Re-run after editing the cell sources below."""

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]

SERVER = '''# Two real local models behind one OpenAI-compatible server on 127.0.0.1 (no API key, no network).
from optiroute.local import LlamaServer, find_local_models

local = find_local_models()
specs = [
    {"model": str(local["SmolLM2-135M-Instruct"].path), "model_alias": "smollm2", "chat_format": "chatml"},
    {"model": str(local["SmolLM2-135M-Instruct"].path), "model_alias": "smollm2-tools",
     "chat_format": "chatml-function-calling"},
]
if "gemma-3-270m" in local:
    specs.append({"model": str(local["gemma-3-270m"].path), "model_alias": "gemma3-270m", "chat_format": "gemma"})
server = LlamaServer(specs).start()
server.base_url'''

CLIENT = '''from langchain_openai import ChatOpenAI


def local_chat(alias, max_tokens=48):
    # llama.cpp's server reads max_tokens from the body (langchain-openai sends max_completion_tokens)
    return ChatOpenAI(model=alias, base_url=server.base_url, api_key="not-needed",
                      temperature=0, extra_body={"max_tokens": max_tokens})'''

NOTEBOOKS = {
    "langchain_replace_llm.ipynb": [
        ("md", "# Replace the LLM in an existing LangChain chain\n\nAn LCEL chain `prompt | llm | parser` keeps "
               "working unchanged when `llm` becomes a `ChatOptiRoute`: every call is analysed and sent to the "
               "candidate that best fits the preferences. Here the candidates are two real local models served by "
               "llama.cpp on 127.0.0.1."),
        ("code", SERVER),
        ("code", CLIENT),
        ("code", '''from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_optiroute import ChatOptiRoute

candidates = {"SmolLM2-135M-Instruct": local_chat("smollm2")}
if "gemma-3-270m" in local:
    candidates["gemma-3-270m"] = local_chat("gemma3-270m")
llm = ChatOptiRoute(models=candidates, preferences="latency-first")

prompt = ChatPromptTemplate.from_messages([("user", "Give one tip about {topic}.")])
chain = prompt | llm | StrOutputParser()          # the chain itself is unchanged
print(chain.invoke({"topic": "sleep"}))'''),
        ("md", "The decision travels with the answer in `response_metadata['optiroute']`:"),
        ("code", '''msg = (prompt | llm).invoke({"topic": "studying"})
meta = msg.response_metadata["optiroute"]
print(meta["model"], "|", meta["reason"])
assert meta["model"] in candidates'''),
        ("md", "Per-call preferences win over the constructor's "
               "(invoke kwarg > bind > config metadata > constructor):"),
        ("code", '''for prefs in ("latency-first", "quality-first", {"accuracy": 0.2, "cost": 0.8}):
    m = llm.invoke("Name a large city.", preferences=prefs)
    print(prefs, "->", m.response_metadata["optiroute"]["model"])'''),
        ("code", "server.stop()"),
    ],
    "langgraph_per_step_routing.ipynb": [
        ("md", "# Per-step routing in a LangGraph agent\n\nEvery model call in a graph is routed on its own "
               "prompt, and each node can ask for its own preferences. The tool step uses a model served with a "
               "function-calling chat format (grammar-constrained when `tool_choice` names the tool)."),
        ("code", SERVER),
        ("code", CLIENT),
        ("code", '''from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

from langchain_optiroute import ChatOptiRoute, OptiRouteCallbackHandler


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b

llm = ChatOptiRoute(models={"SmolLM2-135M-Instruct": local_chat("smollm2-tools", 64)})

class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]

def plan(state):      # must call the tool; routed quality-first
    tool_llm = llm.bind_tools([multiply], tool_choice="multiply")
    return {"messages": [tool_llm.invoke(state["messages"], preferences="quality-first")]}

def answer(state):    # prose answer; routed latency-first (restates the tool result: llama.cpp
                      # rejects replayed tool-call histories)
    q, result = state["messages"][0].content, state["messages"][-1].content
    return {"messages": [llm.invoke(f"The tool returned {result}. Answer: {q}", preferences="latency-first")]}

g = StateGraph(State)
g.add_node("plan", plan)
g.add_node("tools", ToolNode([multiply]))
g.add_node("answer", answer)
g.add_edge(START, "plan")
g.add_edge("plan", "tools")
g.add_edge("tools", "answer")
g.add_edge("answer", END)
graph = g.compile()'''),
        ("code", '''import uuid

handler, run_id = OptiRouteCallbackHandler(), uuid.uuid4()
out = graph.invoke({"messages": [HumanMessage("What is 6 times 7?")]},
                   config={"callbacks": [handler], "run_id": run_id})
for m in out["messages"]:
    routed = m.response_metadata.get("optiroute") if hasattr(m, "response_metadata") else None
    shown = getattr(m, "tool_calls", None) or str(m.content)[:80]
    print(type(m).__name__, shown, "|", routed and routed["preferences"])
decisions = handler.decision_ids(run_id)
print(len(decisions), "routed model calls in this run")
assert len(set(decisions)) == 2'''),
        ("code", "server.stop()"),
    ],
    "decisions_and_feedback.ipynb": [
        ("md", "# Reading a routing decision and giving feedback\n\nA decision explains itself: the analyzer's "
               "view of the prompt, every candidate's sub-scores and predictions, the neighbours used, and one "
               "sentence saying why the winner won. Feedback on a decision shifts later routing."),
        ("code", '''from optiroute import Router

router = Router.default()
candidates = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b-instruct"]
d = router.decide("Prove that the square root of 2 is irrational.", preferences="balanced", candidates=candidates)
print(d.model, "| runner-up:", d.runner_up)
print(d.reason)
print(d.profile.task_type, d.profile.domain, round(d.profile.complexity, 2), "confidence", round(d.confidence, 2))'''),
        ("code", '''import pandas as pd

pd.DataFrame([{"model": s.model, "score": round(s.score, 3), "quality": round(s.predicted_quality, 3),
               "cost $": s.predicted_cost_usd, "latency s": round(s.predicted_latency_s, 2), **s.sub_scores,
               "excluded": s.excluded} for s in d.scores])'''),
        ("code", '''[(n.prompt_id, n.task, n.similarity) for n in d.neighbours]'''),
        ("md", "Thumbs down on the chosen model for this kind of prompt, a few times, and watch routing change:"),
        ("code", '''first, thumbs_down = d.model, 0
while d.model == first and thumbs_down < 40:
    router.record_feedback(d.decision_id, 0.0)
    thumbs_down += 1
    d = router.decide("Prove that the square root of 2 is irrational.", preferences="balanced", candidates=candidates)
print(f"after {thumbs_down} thumbs-down: {first} -> {d.model}")
assert d.model != first'''),
        ("md", "With LangChain, feedback can name the AI message, the run id or the decision id: "
               "`llm.record_feedback(ai_message, 1.0)`."),
    ],
}

NOTEBOOKS["llama_index_rag_and_agent.ipynb"] = [
    ("md", "# LlamaIndex: RAG on a latency-first profile, and an agent on the router\n\n`OptiRoute` is a "
           "`FunctionCallingLLM`, so it can be `Settings.llm` for query engines and agents. Embeddings come from "
           "the same offline MiniLM the router uses (`MiniLMEmbedding`); the LLM candidates are real local models "
           "served by llama.cpp on 127.0.0.1."),
    ("code", SERVER),
    ("code", '''from llama_index.llms.openai_like import OpenAILike


def local_llm(alias, tools=False):
    return OpenAILike(model=alias, api_base=server.base_url, api_key="not-needed", is_chat_model=True,
                      is_function_calling_model=tools, context_window=2048, max_tokens=64, temperature=0)'''),
    ("code", '''from llama_index.core import Document, Settings, VectorStoreIndex

import optiroute
from llama_index_optiroute import MiniLMEmbedding, OptiRoute

candidates = {"SmolLM2-135M-Instruct": local_llm("smollm2")}
if "gemma-3-270m" in local:
    candidates["gemma-3-270m"] = local_llm("gemma3-270m")
Settings.llm = OptiRoute(models=candidates, preferences="latency-first")
Settings.embed_model = MiniLMEmbedding()

docs = [Document(text=t) for t in (
    "The Eiffel Tower is in Paris and was completed in 1889.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
    "The Amazon is the largest rainforest on Earth.",
)]
engine = VectorStoreIndex.from_documents(docs).as_query_engine(similarity_top_k=1)
resp = engine.query("How tall is Mount Fuji?")
print(resp.source_nodes[0].node.get_content())
print(str(resp)[:200])'''),
    ("md", "Query engines call `predict`, which drops per-call kwargs, so preferences go in a scope:"),
    ("code", '''with optiroute.preferences("quality-first"):
    print(str(engine.query("When was the Eiffel Tower completed?"))[:200])
from llama_index.core.base.llms.types import ChatMessage

d = Settings.llm.with_preferences("latency-first").chat([ChatMessage(role="user", content="Hi!")])
print(d.additional_kwargs["optiroute"]["model"], "|", d.additional_kwargs["optiroute"]["reason"])'''),
    ("md", "An agent on the router: the tool step is routed among function-calling candidates, then the "
           "winner prepares its own tool call. (`tool_choice` names the tool: llama.cpp only constrains named tools.)"),
    ("code", '''from llama_index.core.tools import FunctionTool


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b

tool = FunctionTool.from_defaults(fn=multiply)
agent_llm = OptiRoute(models={"SmolLM2-135M-Instruct": local_llm("smollm2-tools", tools=True)})
out = agent_llm.predict_and_call([tool], user_msg="What is 6 times 7?", tool_choice="multiply")
print(out.sources[0].tool_name, out.sources[0].raw_input, "->", out.response)'''),
    ("code", "Settings.llm = None\nserver.stop()"),
]


def main() -> None:
    out = ROOT / "cookbook"
    out.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
        old = nbf.read(out / name, as_version=4).cells if (out / name).exists() else []
        if len(old) == len(nb.cells):  # re-running keeps the cell ids, so a diff shows only edited cells
            for cell, before in zip(nb.cells, old, strict=True):
                if "id" in before:
                    cell["id"] = before["id"]
        nbf.write(nb, out / name)
        print("wrote", out / name)


if __name__ == "__main__":
    main()
