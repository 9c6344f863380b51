"""A real llama.cpp OpenAI-compatible server on 127.0.0.1 serving the local GGUF test models.

One process serves several aliases (llama-cpp-python's multi-model config):

- ``smollm2``: SmolLM2-135M-Instruct, ``chatml`` (plain chat);
- ``smollm2-tools``: the same weights with ``chatml-function-calling`` (grammar-constrained tool
  calls when ``tool_choice`` names a tool);
- ``gemma3-270m``: Gemma-3-270m, a base model behind the ``gemma`` chat template.

The server binds loopback only, is started by a session fixture and stopped when the session ends
(and by an atexit hook if the session dies).
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """Start/stop a llama_cpp.server process; ``base_url`` ends in ``/v1``."""

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
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.config)],
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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
