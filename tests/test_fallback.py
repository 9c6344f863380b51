import asyncio

import httpx
import openai
import pytest

from optiroute import InvalidInputError
from optiroute.router.fallback import FallbackExhaustedError, acall_with_fallbacks, call_with_fallbacks, is_retryable


def _openai_status(cls, code):
    req = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return cls("boom", response=httpx.Response(code, request=req), body=None)


@pytest.mark.parametrize(
    "exc, retry",
    [
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (openai.APITimeoutError(request=httpx.Request("POST", "http://127.0.0.1")), True),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1")), True),
        (_openai_status(openai.RateLimitError, 429), True),
        (_openai_status(openai.InternalServerError, 503), True),
        (_openai_status(openai.BadRequestError, 400), False),
        (_openai_status(openai.AuthenticationError, 401), False),
        (ValueError("bad"), False),
        (InvalidInputError("ours"), False),
    ],
)
def test_classification(exc, retry):
    assert is_retryable(exc) is retry


def test_chain_moves_on_only_for_retryable_errors():
    calls = []

    def call(model):
        calls.append(model)
        if model == "a":
            raise TimeoutError("a timed out")
        return f"answer from {model}"

    assert call_with_fallbacks(["a", "b", "c"], call) == ("b", "answer from b")
    assert calls == ["a", "b"]

    def bad(model):
        raise ValueError("your request is malformed")

    with pytest.raises(ValueError, match="malformed"):
        call_with_fallbacks(["a", "b"], bad)


def test_exhausted_chain_reports_every_error():
    seen = []
    with pytest.raises(FallbackExhaustedError) as err:
        call_with_fallbacks(["a", "b"], lambda m: (_ for _ in ()).throw(ConnectionError(m)),
                            on_error=lambda m, e: seen.append(m))
    assert list(err.value.errors) == ["a", "b"] == seen
    assert isinstance(err.value.__cause__, ConnectionError)


def test_async_chain():
    async def call(model):
        if model == "a":
            raise asyncio.TimeoutError()
        return model

    assert asyncio.run(acall_with_fallbacks(["a", "b"], call)) == ("b", "b")
