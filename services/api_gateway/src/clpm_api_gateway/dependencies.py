"""FastAPI dependencies of the gateway: settings, database session, time-series store, clients.

Everything is created once in the app's lifespan (:class:`GatewayResources` on
``app.state.resources``) and handed to endpoints through ``Annotated[..., Depends]`` aliases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
from clpm_shared.cache import Cache
from clpm_shared.config import Settings
from clpm_shared.timeseries import TimeSeriesStore
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


@dataclass
class GatewayResources:
    """What the gateway's endpoints use, created in the lifespan and closed at shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: TimeSeriesStore
    cache: Cache
    diagnostics: httpx.AsyncClient


def resources(request: Request) -> GatewayResources:
    found = getattr(request.app.state, "resources", None)
    if not isinstance(found, GatewayResources):
        raise RuntimeError("the gateway lifespan has not run (use LifespanManager in tests)")
    return found


ResourcesDep = Annotated[GatewayResources, Depends(resources)]


def settings(request: Request) -> Settings:
    return resources(request).settings


SettingsDep = Annotated[Settings, Depends(settings)]


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request (connects lazily on the first query)."""
    async with resources(request).sessions() as opened:
        yield opened


SessionDep = Annotated[AsyncSession, Depends(session)]


def store(request: Request) -> TimeSeriesStore:
    return resources(request).store


StoreDep = Annotated[TimeSeriesStore, Depends(store)]


def diagnostics_client(request: Request) -> httpx.AsyncClient:
    return resources(request).diagnostics


DiagnosticsClientDep = Annotated[httpx.AsyncClient, Depends(diagnostics_client)]


def fresh_answer(
    cache_control: Annotated[
        str | None,
        Header(description="`no-cache` asks for an answer computed now, not a cached one"),
    ] = None,
) -> bool:
    """True when the client asked to bypass the response cache (``Cache-Control: no-cache``)."""
    return cache_control is not None and "no-cache" in cache_control.lower()


FreshDep = Annotated[bool, Depends(fresh_answer)]
