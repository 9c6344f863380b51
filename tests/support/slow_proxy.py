"""A loopback TCP proxy that delays responses, to slow a local model server down on purpose.

Latency-first routing must react when a model gets slower, and the only honest way to show that is
to make a real server slower while calls are running. :class:`SlowProxy` sits between a client and
a server on ``127.0.0.1`` and holds back the first bytes of every response by :attr:`SlowProxy.delay`
seconds; the delay can be changed at any time, so a test (or a benchmark) can slow one model down and
speed it up again without restarting anything. Bytes are forwarded unchanged, so HTTP keep-alive,
streaming and any protocol work as they would without it.

The proxy runs its own asyncio loop in a daemon thread, listens on loopback only, and stops on
:meth:`SlowProxy.stop`, at interpreter exit, when used as a context manager, or by itself after
``lifetime_s`` seconds (a forgotten proxy never outlives a test session by much).
"""

from __future__ import annotations

import asyncio
import atexit
import threading

__all__ = ["SlowProxy"]

_CHUNK = 65536


class SlowProxy:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``, delaying each response.

    A "response" is the first upstream data after the client sent something, so with keep-alive
    connections each request/response exchange is delayed once (and a streamed answer once, before
    its first chunk).

    Args:
        upstream_port: the server's port on 127.0.0.1.
        delay: seconds added before each response (change :attr:`delay` at any time).
        lifetime_s: the proxy stops by itself after this many seconds.

    Example:
        ```python
        with SlowProxy(server.port, delay=0.2) as proxy:
            llm = ChatOpenAI(base_url=proxy.base_url, ...)
            proxy.delay = 1.5          # the model behind it is now 1.5 s slower per call
        ```
    """

    def __init__(self, upstream_port: int, *, delay: float = 0.0, lifetime_s: float = 900.0) -> None:
        if delay < 0 or lifetime_s <= 0:
            raise ValueError("delay must be >= 0 and lifetime_s > 0")
        self.upstream_port = upstream_port
        self.delay = float(delay)
        self.lifetime_s = lifetime_s
        self.port = 0
        self.responses = 0  # responses delayed so far (for tests that want to see traffic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (for OpenAI-compatible servers)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SlowProxy:
        """Start listening; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name=f"slow-proxy-{self.upstream_port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"SlowProxy did not start: {self._error!r}")
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Close the listener and every open connection (idempotent)."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:  # loop already closed
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> SlowProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start() if it happens before binding
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                tasks.add(task)
            try:
                await self._pipe(reader, writer)
            except asyncio.CancelledError:  # stop(): end quietly (asyncio logs cancelled handlers)
                pass
            finally:
                if task is not None:
                    tasks.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=self.lifetime_s)
        except asyncio.TimeoutError:
            pass
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()  # upstream down: the client sees the connection close, as it would
            return
        awaiting = asyncio.Event()  # set when the client sent a request not yet answered

        async def upstream() -> None:
            while data := await client_r.read(_CHUNK):
                awaiting.set()
                up_w.write(data)
                await up_w.drain()
            if up_w.can_write_eof():
                up_w.write_eof()

        async def downstream() -> None:
            while data := await up_r.read(_CHUNK):
                if awaiting.is_set():
                    awaiting.clear()
                    self.responses += 1
                    if self.delay > 0:
                        await asyncio.sleep(self.delay)
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            # The exchange is over when the server closes (downstream ends) or either side fails; a
            # client that half-closes (upstream ends cleanly) still gets the rest of the answer.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done and tasks[0].exception() is None and tasks[1] not in done:
                await tasks[1]
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (up_w, client_w):
                try:
                    w.close()
                except Exception:
                    pass
