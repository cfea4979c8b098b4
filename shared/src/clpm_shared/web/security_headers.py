"""Response headers every answer of the HTTP services carries (an outer ASGI layer).

* ``X-Content-Type-Options: nosniff``: a browser never guesses another type than the one sent;
* ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``;
* ``Cache-Control: no-store`` on answers under ``no_store_prefixes`` (the API, the issuer) that
  set no ``Cache-Control`` of their own: answers about loops are not kept by browsers or proxies
  (the gateway's own cache is on the server).

A header the application already set is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, no_store_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.no_store_prefixes = tuple(no_store_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(self.no_store_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _ALWAYS if name not in present]
                if no_store and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
