"""Optional helpers for small local models (no network, no API key), used by the demo and the
cookbook: find the GGUF model packages that are installed, run one in-process, or serve it as an
OpenAI-compatible server on 127.0.0.1. Needs the ``local`` extra (llama-cpp-python).

May import: optiroute.errors.
"""

from optiroute.local.models import LocalModel, find_local_models, run_local
from optiroute.local.server import LlamaServer, free_port

__all__ = ["LlamaServer", "LocalModel", "find_local_models", "free_port", "run_local"]
