"""A request-body size limit, enforced before any route (or its authentication) reads the body.

FastAPI reads and decodes a JSON body before the route's dependencies run, so without a limit an
anonymous client can make a service buffer and parse any amount of data before it answers 401.
:class:`RequestBodyLimit` wraps the whole app (an outer layer, see
:class:`~clpm_shared.web.layered_app.LayeredFastAPI`) and refuses with **413** problem details:

* at once, without reading a byte of the body, when ``Content-Length`` exceeds the limit;
* as soon as the bytes received exceed it when the length is not announced (chunked transfer
  encoding) or understated: the body is counted chunk by chunk as the app reads it and the read
  fails with a 413 :class:`~starlette.exceptions.HTTPException` (the app's handlers answer it).

A malformed ``Content-Length`` answers 400. Paths may carry their own limit (``limits``): an
entry ending in ``/`` covers every path under it (the longest such prefix wins; e.g. the local
issuer's forms), any other entry exactly that path (e.g. an upload route with a larger limit,
which must not extend to a neighbour such as ``/loops/import-7``).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clpm_shared.web.problems import problem_response

TYPE_TOO_LARGE = "urn:clpm:problem:body-too-large"


def _too_large(limit: int) -> str:
    return f"request body exceeds the limit of {limit} bytes"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (answered as 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))
        self.limit = limit


class RequestBodyLimit:
    """ASGI layer: at most ``max_bytes`` of body per HTTP request (``limits``: per path, or per
    path prefix ending in ``/``)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exact = {path: limit for path, limit in limits if not path.endswith("/")}
        # the longest matching prefix wins
        self.prefixes = sorted(
            ((path, limit) for path, limit in limits if path.endswith("/")),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def limit_for(self, path: str) -> int:
        exact = self.exact.get(path)
        if exact is not None:
            return exact
        for prefix, limit in self.prefixes:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        announced: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                announced = value
                break
        if announced is not None:
            try:
                length = int(announced)
                if length < 0:
                    raise ValueError
            except ValueError:
                await problem_response(
                    Request(scope), 400, "Content-Length: must be a non-negative integer"
                )(scope, receive, send)
                return
            if length > limit:
                await problem_response(
                    Request(scope),
                    413,
                    _too_large(limit),
                    type_=TYPE_TOO_LARGE,
                    headers={"Connection": "close"},  # the unread body ends the connection
                )(scope, receive, send)
                return

        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted_receive, send)
