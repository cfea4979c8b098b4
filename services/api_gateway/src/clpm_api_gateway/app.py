"""FastAPI application of the API gateway (:8080)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clpm_shared import __version__
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine
from fastapi import FastAPI
from sqlalchemy import text

from clpm_api_gateway.security import mount_security, security_lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway; engines and clients are created in the lifespan."""
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = resolved
        app.state.engine = create_engine(resolved.database)
        async with security_lifespan(app, resolved):
            yield
        await app.state.engine.dispose()

    app = FastAPI(
        title="CLPM API gateway",
        version=__version__,
        description="Loop data, KPIs and diagnoses of the CLPM suite.",
        lifespan=lifespan,
    )
    mount_security(app, resolved)

    @app.get("/health", tags=["operations"], summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "api-gateway", "version": __version__}

    @app.get("/ready", tags=["operations"], summary="Readiness: dependencies reachable")
    async def ready() -> dict[str, str]:
        async with app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app
