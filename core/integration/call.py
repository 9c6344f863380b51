"""An admitted call: run its chain with fallbacks (whole answers and streams), account for every
attempt, and say what to stamp on the answer.

Every call is accounted exactly once, at its real end:

- **answered**: settled at the provider's usage (estimated when it reports none; for a stream, from
  the length actually streamed), ``ok=True``, and its latency feeds the tracker;
- **failed before answering** (every candidate failed, a non-retryable error, a cancelled call): the
  reservation is released, ``ok=False`` with the error's class name, nothing charged;
- **a stream failing or cancelled after some chunks**: ``ok=False`` with the error's class name (or
  ``"cancelled"`` when the consumer stopped or was cancelled), charged for what was streamed (the
  usage reported so far, else the streamed characters / 4 plus the estimated input), and the latency
  tracker is not fed;
- **a stream dropped unread**: nothing was reserved if it was never started (both adapters open
  streams lazily, on the first read); one dropped after starting is closed by Python (cancelled,
  as above), and an account garbage-collected while still open is released by a finaliser
  (:class:`~optiroute.router.calls.CallAccount`).

A per-call timeout (``timeout_s``) bounds each candidate's call (for streams: the wait for the first
chunk, the part where falling back is still possible); a candidate that exceeds it fails with
:class:`TimeoutError`, which is retryable, so the chain moves on. A synchronous call cannot be
interrupted, so it runs in a daemon thread that is abandoned at the deadline (its late answer is
discarded; the provider may still bill it); an async call is cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from optiroute.errors import FallbackExhaustedError
from optiroute.integration.deadline import acall_with_deadline, call_with_deadline, check_timeout
from optiroute.integration.meter import Meter, Usage, aclose_quietly, close_quietly, token_count
from optiroute.integration.workers import run_store_write
from optiroute.router.fallback import acall_with_fallbacks, call_with_fallbacks, is_retryable
from optiroute.schema.numbers import MAX_TOKENS, integer
from optiroute.store.memory import MemoryFeedbackStore

if TYPE_CHECKING:
    from optiroute.router.calls import CallAccount
    from optiroute.router.router import Router
    from optiroute.schema.decision import RoutingDecision

log = logging.getLogger(__name__)

__all__ = ["STAMP_KEY", "AsyncStreamStart", "CallPlan", "Route", "StreamStart", "Usage", "check_timeout",
           "writes_block"]

T = TypeVar("T")

#: Where both adapters put :meth:`CallPlan.summary` (LangChain ``response_metadata``, LlamaIndex
#: ``additional_kwargs``); feedback looks for the decision id there.
STAMP_KEY = "optiroute"


@dataclass(frozen=True)
class StreamStart(Generic[T]):
    """A stream whose candidate produced its first item (``None``: it ended empty) without failing."""

    key: str
    first: T | None
    rest: Iterator[T]
    started: float


@dataclass(frozen=True)
class AsyncStreamStart(Generic[T]):
    """Async twin of :class:`StreamStart`."""

    key: str
    first: T | None
    rest: AsyncIterator[T]
    started: float


def _cap(value: object) -> int | None:
    """A candidate client's own output cap, when it is a plausible one (else unknown)."""
    return token_count(value) or None


def _call_cap(value: object) -> int | None:
    """The caller's output cap, checked (a bad one is the caller's error, not a reason to guess)."""
    return None if value is None else integer(value, "max_tokens", lo=1, hi=MAX_TOKENS,
                                                  hint="It caps the answer's tokens; leave it out for no cap.")


def writes_block(router: Router) -> bool:
    """Whether ``router``'s store writes wait on a database (any store but the in-memory one), so
    an async caller makes them off the event loop (:func:`~optiroute.integration.workers.run_store_write`)."""
    return not isinstance(router.store, MemoryFeedbackStore)


@dataclass(frozen=True)
class Route:
    """A routing decision and the candidate keys to try, best first; not yet admitted.

    Kept apart from :class:`CallPlan` because LlamaIndex routes a tool call when it prepares it and
    calls the winner later: the budget is reserved only when the call is made (:meth:`admit`).
    """

    router: Router
    decision: RoutingDecision
    chain: tuple[str, ...]
    cards: Mapping[str, str]
    user: str | None = None
    run_id: str | None = None

    def admit(self, *, max_tokens: int | None = None,
              candidate_max_tokens: Mapping[str, int | None] | None = None) -> CallPlan:
        """Admit the call under the router's budget and return its plan.

        Args:
            max_tokens: the call's output-token cap, if the caller set one.
            candidate_max_tokens: candidate key -> that client's own cap; used when the call has no
                cap and every candidate in the chain has one, so the reservation is a true bound.

        Raises:
            BudgetExceededError: a budget scope has no room for the call's cost bound.
            InvalidInputError: ``max_tokens`` is not an integer in 1..1e9.
        """
        cap = _call_cap(max_tokens)
        if cap is None and candidate_max_tokens:
            caps = [_cap(candidate_max_tokens.get(k)) for k in self.chain]
            known = [c for c in caps if c is not None]
            cap = max(known) if known and len(known) == len(caps) else None
        account = self.router.open_call(self.decision, chain=[self.cards[k] for k in self.chain],
                                        user=self.user, run_id=self.run_id, max_tokens=cap)
        return CallPlan(self, account)


class CallPlan:
    """An admitted call: its decision, the chain of candidate keys, and its accounting.

    The plan runs the chain with the shared fallback rules (:mod:`optiroute.router.fallback`): a
    retryable failure leaves a row and moves on, anything else surfaces untouched. It closes the
    account exactly once: settled by the answering candidate, or released when no answer came.
    Candidate *keys* are the adapter's; what is recorded and stamped uses card names, like
    ``decision.model``.
    """

    def __init__(self, route: Route, account: CallAccount) -> None:
        self.route = route
        self.decision = route.decision
        self.chain = list(route.chain)
        self.account = account
        self.errors: dict[str, BaseException] = {}
        self._settling = False  # an answer's account is being closed in the store-write thread

    @property
    def run_id(self) -> str | None:
        """The framework run id the decision was recorded under."""
        return self.route.run_id

    @property
    def closed(self) -> bool:
        """True once the call was settled or released."""
        return self.account.closed

    def card(self, key: str) -> str:
        """The card name of a candidate key (names that are not keys pass through)."""
        return self.route.cards.get(key, key)

    def attempt_failed(self, key: str, exc: BaseException, seconds: float | None = None) -> None:
        """A candidate failed with a retryable error; the call moves down the chain."""
        self.errors[self.card(key)] = exc
        self.account.attempt_failed(self.card(key), exc, seconds)

    def succeeded(self, key: str, seconds: float, input_tokens: int | None = None,
                  output_tokens: int | None = None) -> None:
        """``key`` answered: settle the call at its cost, record latency and tokens."""
        self.account.succeeded(self.card(key), seconds, input_tokens, output_tokens)

    def failed(self, exc: BaseException | None) -> None:
        """No answer: release the budget reservation (idempotent; a no-op once closed, or once an
        answer's settlement was handed to the store-write thread: a caller cancelled while it runs
        must not release what the answer is charged)."""
        if not self._settling:
            self.account.failed(exc)

    def summary(self, answered_by: str, errors: Mapping[str, BaseException] | None = None) -> dict[str, Any]:
        """The one payload both adapters stamp on their answer (under :data:`STAMP_KEY`).

        ``decision.summary()`` plus ``answered_by`` (the card that answered) and, after a fallback,
        ``fell_back_from`` (card -> error class name); ``errors`` defaults to this plan's.
        """
        out = self.decision.summary()
        out["answered_by"] = self.card(answered_by)
        errs = self.errors if errors is None else errors
        if errs:
            out["fell_back_from"] = {self.card(m): type(e).__name__ for m, e in errs.items()}
        return out

    def _settle(self, key: str, started: float, usage: Callable[[T], Usage] | None, result: T | None,
                seconds: float | None = None) -> None:
        tokens: Usage = (None, None)
        if usage is not None and result is not None:
            try:
                tokens = usage(result)
            except Exception:  # the answer exists: a usage-parsing bug must not cost it
                log.debug("could not read token usage from %s's response", key, exc_info=True)
        self.succeeded(key, time.perf_counter() - started if seconds is None else seconds, *tokens)

    async def _aclose(self, close: Callable[..., None], *args: Any) -> None:
        """Close an answered call's account for an async caller: a database store's writes run in
        the store-write thread, off the event loop (:func:`~optiroute.integration.workers.run_store_write`);
        the in-memory store's take microseconds and stay inline. The caller takes the latency on the
        loop, at the answer, and passes it in."""
        if writes_block(self.route.router):
            self._settling = True
            await run_store_write(close, *args)
        else:
            close(*args)

    def _stream_ended(self, stream: StreamStart[Any] | AsyncStreamStart[Any], meter: Meter[Any],
                      error: str | None, seconds: float | None = None) -> None:
        """Close a relayed stream's account: settled (``error is None``) or cut off after output."""
        if self.closed:
            return
        tin, tout = meter.tokens()
        seconds = time.perf_counter() - stream.started if seconds is None else seconds
        if error is None:
            self.succeeded(stream.key, seconds, tin, tout)
            return
        if tout is None:  # nothing measured what streamed: charge the whole expected answer
            card = self.route.router.registry.resolve(self.card(stream.key))
            tout = int(round(self.decision.profile.est_output_tokens * card.verbosity))
        self.account.ended(self.card(stream.key), error, seconds, tin, tout)

    def _exhausted(self) -> FallbackExhaustedError:
        err = FallbackExhaustedError(self.errors)
        if self.errors:
            err.__cause__ = list(self.errors.values())[-1]
        return err

    # ------------------------------------------------------------------ whole answers
    def run(self, call: Callable[[str], T], *, usage: Callable[[T], Usage] | None = None,
            before: Callable[[str], None] | None = None, timeout_s: float | None = None) -> tuple[str, T]:
        """Call ``call(key)`` down the chain; returns ``(key, result)`` of the candidate that answered.

        Args:
            call: runs one candidate.
            usage: reads ``(input_tokens, output_tokens)`` from a result, for the cost settled.
            before: runs before each attempt's clock starts (e.g. a client-side rate limiter, whose
                wait is not the model's latency).
            timeout_s: seconds each candidate may take (``None``: no limit); one that takes longer
                fails with :class:`TimeoutError` and the chain moves on (see the module docstring).

        Raises:
            FallbackExhaustedError: every candidate failed with a retryable error.
            InvalidInputError: ``timeout_s`` is not a number of seconds in (0, 1e6].
            The first non-retryable error, untouched.
        """
        try:
            limit = check_timeout(timeout_s, "timeout_s")
        except BaseException as exc:
            self.failed(exc)
            raise
        keys = {self.card(k): k for k in self.chain}
        clock: list[float] = []

        def attempt(card: str) -> T:
            clock.clear()
            if before is not None:
                before(keys[card])
            clock.append(time.perf_counter())
            out = call_with_deadline(lambda: call(keys[card]), limit, card)
            self._settle(keys[card], clock[0], usage, out)
            return out

        def on_error(card: str, exc: BaseException) -> None:
            self.attempt_failed(keys[card], exc, time.perf_counter() - clock[0] if clock else None)

        try:
            card, out = call_with_fallbacks(list(keys), attempt, on_error=on_error)
        except BaseException as exc:
            self.failed(exc)
            raise
        return keys[card], out

    async def arun(self, call: Callable[[str], Awaitable[T]], *, usage: Callable[[T], Usage] | None = None,
                   before: Callable[[str], Awaitable[None]] | None = None,
                   timeout_s: float | None = None) -> tuple[str, T]:
        """Async twin of :meth:`run` (``before`` is awaited; a timed-out candidate is cancelled)."""
        try:
            limit = check_timeout(timeout_s, "timeout_s")
        except BaseException as exc:
            self.failed(exc)
            raise
        keys = {self.card(k): k for k in self.chain}
        clock: list[float] = []

        async def attempt(card: str) -> T:
            clock.clear()
            if before is not None:
                await before(keys[card])
            clock.append(time.perf_counter())
            out = await acall_with_deadline(call(keys[card]), limit, card)
            await self._aclose(self._settle, keys[card], clock[0], usage, out, time.perf_counter() - clock[0])
            return out

        def on_error(card: str, exc: BaseException) -> None:
            self.attempt_failed(keys[card], exc, time.perf_counter() - clock[0] if clock else None)

        try:
            card, out = await acall_with_fallbacks(list(keys), attempt, on_error=on_error)
        except BaseException as exc:
            self.failed(exc)
            raise
        return keys[card], out

    # ------------------------------------------------------------------ streams
    def open_stream(self, start: Callable[[str], Iterable[T]], *,
                    before: Callable[[str], None] | None = None, timeout_s: float | None = None) -> StreamStart[T]:
        """Walk the chain until a candidate's stream yields its first item (or ends empty).

        A candidate failing *before* its first item is a fallback case (nothing reached the caller);
        once an item exists, the caller is committed to that candidate (see :meth:`relay`).
        ``timeout_s`` bounds the wait for each candidate's first item (a slower one fails with
        :class:`TimeoutError` and the next is tried).

        Raises:
            FallbackExhaustedError: every candidate failed retryably before its first item.
            The first non-retryable error, untouched (the call is released either way).
        """
        try:
            limit = check_timeout(timeout_s, "timeout_s")
            for key in self.chain:
                if before is not None:
                    before(key)
                began = time.perf_counter()

                def first_of(key: str = key) -> tuple[Iterator[T], T | None]:
                    it = iter(start(key))
                    try:
                        return it, next(it, None)
                    except BaseException:
                        close_quietly(it)
                        raise

                try:
                    rest, first = call_with_deadline(first_of, limit, self.card(key))
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    self.attempt_failed(key, exc, time.perf_counter() - began)
                    continue
                return StreamStart(key, first, rest, began)
            raise self._exhausted()
        except BaseException as exc:
            self.failed(exc)
            raise

    async def aopen_stream(self, start: Callable[[str], AsyncIterable[T] | Awaitable[AsyncIterable[T]]], *,
                           before: Callable[[str], Awaitable[None]] | None = None,
                           timeout_s: float | None = None) -> AsyncStreamStart[T]:
        """Async twin of :meth:`open_stream`; ``start`` may return the stream or an awaitable of it."""
        try:
            limit = check_timeout(timeout_s, "timeout_s")
            for key in self.chain:
                if before is not None:
                    await before(key)
                began = time.perf_counter()

                async def first_of(key: str = key) -> tuple[AsyncIterator[T], T | None]:
                    made = start(key)
                    source: AsyncIterable[T] = await made if inspect.isawaitable(made) else made
                    it = aiter(source)
                    try:
                        return it, await anext(it, None)
                    except BaseException:
                        await aclose_quietly(it)
                        raise

                try:
                    rest, first = await acall_with_deadline(first_of(), limit, self.card(key))
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    self.attempt_failed(key, exc, time.perf_counter() - began)
                    continue
                return AsyncStreamStart(key, first, rest, began)
            raise self._exhausted()
        except BaseException as exc:
            self.failed(exc)
            raise

    def relay(self, stream: StreamStart[T], *, usage: Callable[[T], Usage] | None = None,
              each: Callable[[T], T] | None = None, size: Callable[[T], int] | None = None,
              additive_usage: bool = False) -> Iterator[T]:
        """Yield the opened stream (each item through ``each``) and account for it at its real end.

        Args:
            usage: reads ``(input_tokens, output_tokens)`` an item reports; the last report counts,
                or with ``additive_usage`` their sum (LangChain chunks carry increments).
            size: the characters of output an item carries; what streamed is charged by it when the
                provider reports no usage (without it, a cut-off stream is charged the whole
                expected answer).

        The stream ending normally settles the call (``ok=True``). The provider failing mid-stream
        closes it ``ok=False`` with the error's class name, charged for what streamed; the consumer
        stopping early (or the generator being closed or collected) closes it the same way as
        ``"cancelled"``. The provider's stream is closed in both cases.
        """
        meter: Meter[T] = Meter(usage, size, additive_usage)
        try:
            if stream.first is not None:
                meter.add(stream.first)
                yield each(stream.first) if each is not None else stream.first
            for item in stream.rest:
                meter.add(item)
                yield each(item) if each is not None else item
        except GeneratorExit:
            close_quietly(stream.rest)
            self._stream_ended(stream, meter, "cancelled")
            raise
        except BaseException as exc:
            close_quietly(stream.rest)
            self._stream_ended(stream, meter, type(exc).__name__)
            raise
        self._stream_ended(stream, meter, None)

    async def arelay(self, stream: AsyncStreamStart[T], *, usage: Callable[[T], Usage] | None = None,
                     each: Callable[[T], T] | None = None, size: Callable[[T], int] | None = None,
                     additive_usage: bool = False) -> AsyncIterator[T]:
        """Async twin of :meth:`relay` (task cancellation counts as ``"cancelled"``)."""
        meter: Meter[T] = Meter(usage, size, additive_usage)
        try:
            if stream.first is not None:
                meter.add(stream.first)
                yield each(stream.first) if each is not None else stream.first
            async for item in stream.rest:
                meter.add(item)
                yield each(item) if each is not None else item
        except (GeneratorExit, asyncio.CancelledError):
            self._stream_ended(stream, meter, "cancelled")
            await aclose_quietly(stream.rest)
            raise
        except BaseException as exc:
            self._stream_ended(stream, meter, type(exc).__name__)
            await aclose_quietly(stream.rest)
            raise
        # A stream that completed is settled like a whole answer (see _aclose); the error paths
        # above close the account inline, before the error or cancellation propagates.
        await self._aclose(self._stream_ended, stream, meter, None, time.perf_counter() - stream.started)
