"""LlamaIndex integration for OptiRoute: ``OptiRoute``, a FunctionCallingLLM usable as ``Settings.llm``.

``import llama_index_optiroute`` stays light: the routing core loads on the first routed call.
"""

from llama_index_optiroute._events import RUN_ID_TAG, RoutingDecisionEvent
from llama_index_optiroute.embeddings import MiniLMEmbedding
from llama_index_optiroute.feedback import OptiRouteEventHandler
from llama_index_optiroute.llm import OptiRoute

__all__ = ["RUN_ID_TAG", "MiniLMEmbedding", "OptiRoute", "OptiRouteEventHandler", "RoutingDecisionEvent"]
