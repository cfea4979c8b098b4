"""FastAPI with ASGI layers outside its own middleware stack (error pages, CORS...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp


class LayeredFastAPI(FastAPI):
    """A FastAPI app whose ``outer_layers`` wrap its whole middleware stack, the first outermost.

    Starlette puts error handling outermost and every ``add_middleware`` layer inside it; a layer
    here sees each request before any of them and each answer after them all (the access log,
    the gateway's answers to fresh cached hits). Set the layers before the first request.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.outer_layers: list[Callable[[ASGIApp], ASGIApp]] = []

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for wrap in reversed(self.outer_layers):
            app = wrap(app)
        return app
