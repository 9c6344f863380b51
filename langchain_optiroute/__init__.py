"""LangChain integration for OptiRoute: ``ChatOptiRoute``, a chat model that routes every call.

``import langchain_optiroute`` stays light: the routing core (embedder, analyzer, store) loads on the
first routed call.
"""

from langchain_optiroute._routing import DECISION_EVENT
from langchain_optiroute.callbacks import OptiRouteCallbackHandler
from langchain_optiroute.chat_model import ChatOptiRoute

__all__ = ["DECISION_EVENT", "ChatOptiRoute", "OptiRouteCallbackHandler"]
