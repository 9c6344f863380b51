"""LlamaIndex integration for OptiRoute: ``OptiRoute``, a FunctionCallingLLM usable as ``Settings.llm``.

``import llama_index_optiroute`` stays light: the routing core loads on the first routed call.
"""

from llama_index_optiroute.embeddings import MiniLMEmbedding
from llama_index_optiroute.llm import OptiRoute, RoutingDecisionEvent

__all__ = ["MiniLMEmbedding", "OptiRoute", "RoutingDecisionEvent"]
