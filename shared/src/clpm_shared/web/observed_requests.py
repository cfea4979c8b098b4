"""ASGI layer that times each HTTP request once and hands its status and duration to observers.

The access log (:mod:`clpm_shared.web.access_log`) and the gateway's request metrics both want
the same three facts of a request: its scope, the status it was answered with and how long it
took to its last byte. One layer, outermost, measures them once and calls each observer with
``(scope, status, elapsed_s)`` after the answer (and after a failure: status 500 when nothing
was sent, as the server then answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RequestObserver = Callable[[Scope, int, float], None]
"""Called with the request's scope, its status and the seconds to its last byte."""


class ObservedRequests:
    """The ASGI layer (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, observers: Sequence[RequestObserver]) -> None:
        self.app = app
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.observers:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except BaseException:
            status = status or 500  # the server answers 500 when nothing was sent
            raise
        finally:
            elapsed_s = time.perf_counter() - started
            for observe in self.observers:
                observe(scope, status, elapsed_s)
