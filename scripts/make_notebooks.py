"""Write the cookbook notebooks (outputs stripped). Re-run after editing the cell sources below."""

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]

SERVER = '''# Two real local models behind one OpenAI-compatible server on 127.0.0.1 (no API key, no network).
# The "-tools" aliases use chat formats that take a tool loop's history (the tool call, then its
# result) and force a valid call when `tool_choice` names the tool (optiroute.local.tool_chat).
from optiroute.local import LlamaServer, find_local_models

local = find_local_models()
smol = str(local["SmolLM2-135M-Instruct"].path)
specs = [
    {"model": smol, "model_alias": "smollm2", "chat_format": "chatml"},
    {"model": smol, "model_alias": "smollm2-tools", "chat_format": "chatml-tools"},
]
if "gemma-3-270m" in local:
    gemma = str(local["gemma-3-270m"].path)
    specs += [{"model": gemma, "model_alias": "gemma3-270m", "chat_format": "gemma"},
              {"model": gemma, "model_alias": "gemma3-270m-tools", "chat_format": "gemma-tools"}]
server = LlamaServer(specs).start()
server.base_url'''

CLIENT = '''from langchain_openai import ChatOpenAI


def local_chat(alias, max_tokens=48):
    # llama.cpp's server reads max_tokens from the body (langchain-openai sends max_completion_tokens),
    # and repeats a streamed tool call's name in every chunk: tool calls come back whole
    return ChatOpenAI(model=alias, base_url=server.base_url, api_key="not-needed", temperature=0,
                      extra_body={"max_tokens": max_tokens}, disable_streaming="tool_calling")'''

GRAPH = '''from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_graph(llm, force_tool=True):
    """model -> tool -> model. The first step (no tool result yet) is routed quality-first and calls
    the tool; the next one answers from the ToolMessage in its history, routed latency-first."""
    plan = llm.with_preferences("quality-first").bind_tools([multiply],
                                                           tool_choice="multiply" if force_tool else None)
    answer = llm.with_preferences("latency-first")

    def agent(state):
        has_result = any(isinstance(m, ToolMessage) for m in state["messages"])
        return {"messages": [(answer if has_result else plan).invoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([multiply]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile()


def run(graph, question):
    """Stream the graph token by token, printing each step's routing decision as it arrives; return
    the final messages."""
    final = None
    for mode, payload in graph.stream({"messages": [("user", question)]}, stream_mode=["messages", "values"]):
        if mode == "values":
            final = payload["messages"]
            continue
        chunk, meta = payload
        routed = chunk.response_metadata.get("optiroute")
        if routed:  # one chunk of each routed call carries its decision
            print(f"\\n[step {meta['langgraph_step']}] {routed['preferences']} -> {routed['model']}")
            print("   ", routed["reason"])
        if isinstance(chunk, ToolMessage):
            print(f"[tool] {chunk.name} -> {chunk.content}")
        elif isinstance(chunk.content, str) and chunk.content:
            print(chunk.content, end="")
        for call in getattr(chunk, "tool_calls", None) or []:
            if call.get("name"):
                print(f"    calls {call['name']}({call['args']})")
    print()
    return final'''

LANGGRAPH = [
    ("md", "# Per-step routing in a LangGraph tool loop\n\nEvery model call in a graph is routed on its own "
           "prompt, and each step can ask for its own preferences. Here an agent routes between two real local "
           "models: the first step must call a tool (quality-first), the tool runs, and the model answers from "
           "the tool's result, replayed as a `ToolMessage` (latency-first). The graph is streamed "
           "(`stream_mode=\"messages\"`) and each step prints the routing decision it got."),
    ("code", SERVER),
    ("code", CLIENT),
    ("code", GRAPH),
    ("code", '''from langchain_optiroute import ChatOptiRoute

candidates = {"SmolLM2-135M-Instruct": local_chat("smollm2-tools", 64)}
if "gemma-3-270m" in local:
    candidates["gemma-3-270m"] = local_chat("gemma3-270m-tools", 64)
llm = ChatOptiRoute(models=candidates)
graph = build_graph(llm)
messages = run(graph, "What is 6 times 7?")'''),
    ("md", "The loop really went model -> tool -> model, with the tool's result in the history the model "
           "answered from. (Both steps may go to the same model: for these prompts the router predicts the two "
           "tiny models about equally good and SmolLM2 faster; each decision names the runner-up, which is also "
           "its fallback.)"),
    ("code", '''from langchain_core.messages import AIMessage

print([type(m).__name__ for m in messages])
assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
call = messages[1].tool_calls[0]
assert call["name"] == "multiply" and messages[2].tool_call_id == call["id"]
steps = [m.response_metadata["optiroute"] for m in messages if isinstance(m, AIMessage)]
print([(s["preferences"], s["model"]) for s in steps])
assert [s["preferences"] for s in steps] == ["quality-first", "latency-first"]'''),
    ("md", "Tracing: each routed run starts as `optiroute` and ends naming the candidate that answered "
           "(`ls_provider` / `ls_model_name` in the run's metadata, which LangSmith uses for cost and model "
           "filters):"),
    ("code", '''from langchain_core.tracers.context import collect_runs

with collect_runs() as runs:
    graph.invoke({"messages": [("user", "What is 3 times 5?")]})
llm_runs, todo = [], list(runs.traced_runs)
while todo:
    r = todo.pop()
    todo.extend(r.child_runs)
    if r.run_type == "llm":
        llm_runs.append(r)
for r in sorted(llm_runs, key=lambda r: r.start_time):
    print(r.extra["metadata"]["ls_provider"], r.extra["metadata"]["ls_model_name"],
          r.extra["metadata"]["ls_gateway_info"]["decision_id"])
assert len(llm_runs) == 2'''),
    ("code", "server.stop()"),
]

HOSTED = [
    ("md", "# A hosted mix: OpenAI, Anthropic and Gemini behind one model\n\nThe same tool-loop graph with "
           "three hosted candidates. The hosted run happens only when `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` and "
           "`GOOGLE_API_KEY` are all set; offline, the very same graph runs on two local models served by "
           "llama.cpp on 127.0.0.1. Each step prints the routing decision it got."),
    ("code", GRAPH),
    ("code", '''import os

from langchain_optiroute import ChatOptiRoute

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY")
if all(os.environ.get(k) for k in KEYS):
    from langchain_anthropic import ChatAnthropic
    from langchain_google_genai import ChatGoogleGenerativeAI
    from langchain_openai import ChatOpenAI

    hosted = ChatOptiRoute(models=[ChatOpenAI(model="gpt-4o-mini"), ChatAnthropic(model="claude-haiku-4-5"),
                                   ChatGoogleGenerativeAI(model="gemini-2.5-flash")])
    # hosted models choose to call the tool themselves: no forced tool_choice
    run(build_graph(hosted, force_tool=False), "What is 6 times 7? Use the multiply tool.")
else:
    print("Set", ", ".join(KEYS), "to run the hosted mix; the local run below needs no key.")'''),
    ("md", "Offline, the same graph on two local models (a small model calls a tool only when the call names "
           "it, so the first step forces it):"),
    ("code", SERVER),
    ("code", CLIENT),
    ("code", '''candidates = {"SmolLM2-135M-Instruct": local_chat("smollm2-tools", 64)}
if "gemma-3-270m" in local:
    candidates["gemma-3-270m"] = local_chat("gemma3-270m-tools", 64)
messages = run(build_graph(ChatOptiRoute(models=candidates)), "What is 6 times 7?")
assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]'''),
    ("code", "server.stop()"),
]

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
    "langgraph_per_step_routing.ipynb": LANGGRAPH,
    "hosted_mix_langgraph.ipynb": HOSTED,
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
