"""What one request may cost the server: its head's and its body's pace, its body's size, and
how many large ones are read at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class BodyLimit:
    """Bounds what a request costs before the route reads it.

    A body over ``max_bytes`` is refused with 413 (by header, and while streaming when chunked);
    a body that stalls for ``timeout_s`` between chunks, or is not whole after ``deadline_s``
    (a byte at a time, each just in time), gets 408, so a half-sent body does not hold its
    connection, its slot and memory forever; at most ``max_large`` bodies over ``large_bytes``
    (or of unknown length) are read and forecast at once, the rest wait their turn, so memory
    stays under about ``max_large * max_bytes`` whatever the clients do. A client that leaves
    before its body is read is one log line, not a traceback.

    Plain ASGI rather than ``@app.middleware``: Starlette's BaseHTTPMiddleware costs about a
    millisecond per request, half the serving budget.
    """

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        large_bytes: int,
        max_large: int,
        timeout_s: float,
        deadline_s: float,
    ) -> None:
        self.app, self.max_bytes, self.large_bytes = app, max_bytes, large_bytes
        self.timeout_s, self.deadline_s = timeout_s, deadline_s
        self.large = asyncio.Semaphore(max_large)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        large = int(length) > self.large_bytes or b"transfer-encoding" in headers
        seen = 0
        done = False
        deadline = asyncio.get_running_loop().time() + self.deadline_s

        async def bounded() -> dict:
            nonlocal seen, done
            if done:  # past the body: Starlette listens for a disconnect, with no deadline
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(self.timeout_s, left)))
            except TimeoutError:
                if left <= self.timeout_s:
                    raise HTTPException(
                        408, f"body not whole after {self.deadline_s:g} s"
                    ) from None
                raise HTTPException(408, f"no body data for {self.timeout_s:g} s") from None
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"body over {self.max_bytes} bytes")
            done = not message.get("more_body", False)
            return message

        try:
            if large:
                async with self.large:
                    await self.app(scope, bounded, send)
            else:
                await self.app(scope, bounded, send)
        except ClientDisconnect:
            client = scope.get("client") or ("?", 0)
            log.info("%s:%s left before its request was read", *client)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse({"detail": f"body over {self.max_bytes} bytes"}, status_code=413)
        await response(scope, receive, send)


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's head: a connection that
    has not sent a whole request line and headers within ``header_timeout_s`` of opening (or
    of its previous answer) is closed. uvicorn times a connection out only between requests,
    so without it headers sent a byte at a time, or a connection opened and left idle, held
    a socket and its memory for good; with it, thousands of idle connections close on their
    own, and ``limit_concurrency`` (forecast-serve's ``max_connections``) bounds the rest."""

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.head_timer: asyncio.TimerHandle | None = None
        self.waiting_after: Any = None  # the request cycle before the head awaited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        self._await_head()  # before the next cycle may start on pipelined data
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self.waiting_after:  # a whole head arrived: a request runs
            self._stop_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_timer()
        self.waiting_after = self.cycle
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_late)

    def _stop_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_late(self) -> None:
        if self.cycle is self.waiting_after and not self.transport.is_closing():
            log.info("%s:%s sent no whole request head in %g s: closed",
                     *(self.client or ("?", 0)), self.header_timeout_s)  # fmt: skip
            self.transport.close()
