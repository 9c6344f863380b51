"""A real llama.cpp OpenAI-compatible server on 127.0.0.1, for tests, notebooks and benchmarks.

One process serves several model aliases (llama-cpp-python's multi-model config), e.g. the local GGUF
models of :mod:`optiroute.local.models` as ``smollm2`` (``chatml``), ``smollm2-tools``
(``chatml-tools``: grammar-constrained tool calls when ``tool_choice`` names a tool) and
``gemma3-270m``. The ``chatml-tools`` and ``gemma-tools`` formats (:mod:`optiroute.local.tool_chat`)
also take a tool loop's replayed history (the assistant's tool call, then the tool's result). It
binds loopback only and stops on :meth:`LlamaServer.stop`, at interpreter exit, or when used as a
context manager. Needs the ``local`` extra (``llama-cpp-python[server]``).
"""

from __future__ import annotations

import atexit
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# Runs llama_cpp.server with llama.cpp's repacked (AMX) weight buffers turned off (see
# optiroute.local.models.disable_repacked_weights for the crash this avoids) and with the tool-loop
# chat formats and request fix of optiroute.local.tool_chat.
_LAUNCH = """
import sys
from optiroute.local.models import disable_repacked_weights
from optiroute.local.tool_chat import serve
disable_repacked_weights()
serve(sys.argv[1])
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """Start/stop a llama_cpp.server process; ``base_url`` ends in ``/v1``.

    Args:
        models: model entries of llama-cpp-python's server config (``model``, ``model_alias``,
            ``chat_format``, ...); ``n_ctx``/``n_threads`` get small defaults.
        threads: CPU threads per model.
    """

    def __init__(self, models: list[dict], *, threads: int = 2) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._dir = tempfile.TemporaryDirectory(prefix="optiroute-llama-")
        cfg = {"host": "127.0.0.1", "port": self.port,
               "models": [{"n_ctx": 2048, "n_threads": threads, "verbose": False, **m} for m in models]}
        self.config = Path(self._dir.name) / "config.json"
        self.config.write_text(json.dumps(cfg), encoding="utf-8")
        self.log = Path(self._dir.name) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> LlamaServer:
        """Launch the server and wait until ``/v1/models`` answers."""
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCH, str(self.config)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited early:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama.cpp server did not become ready in time")

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate the server (idempotent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
