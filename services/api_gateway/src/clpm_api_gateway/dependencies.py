"""FastAPI dependencies of the gateway: settings, database session, time-series store, clients.

Everything is created once in the app's lifespan (:class:`GatewayResources` on
``app.state.resources``) and handed to endpoints through ``Annotated[..., Depends]`` aliases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clpm_api_gateway.response_cache import ResponseCache
from clpm_api_gateway.security import CurrentPrincipal
from clpm_shared.auth import Role
from clpm_shared.config import Settings
from clpm_shared.timeseries import TimeSeriesStore


@dataclass
class GatewayResources:
    """What the gateway's endpoints use, created in the lifespan and closed at shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: TimeSeriesStore
    cache: ResponseCache
    diagnostics: httpx.AsyncClient


def gateway_resources(request: Request) -> GatewayResources:
    """The lifespan's resources of the app serving ``request``."""
    found = getattr(request.app.state, "resources", None)
    if not isinstance(found, GatewayResources):
        raise RuntimeError("the gateway lifespan has not run (use LifespanManager in tests)")
    return found


async def resources(request: Request) -> GatewayResources:
    # async: FastAPI runs plain functions in a thread pool, which costs more than the call
    return gateway_resources(request)


ResourcesDep = Annotated[GatewayResources, Depends(resources)]


async def settings(request: Request) -> Settings:
    return gateway_resources(request).settings


SettingsDep = Annotated[Settings, Depends(settings)]


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request (connects lazily on the first query)."""
    async with gateway_resources(request).sessions() as opened:
        yield opened


SessionDep = Annotated[AsyncSession, Depends(session)]


async def store(request: Request) -> TimeSeriesStore:
    return gateway_resources(request).store


StoreDep = Annotated[TimeSeriesStore, Depends(store)]


async def diagnostics_client(request: Request) -> httpx.AsyncClient:
    return gateway_resources(request).diagnostics


DiagnosticsClientDep = Annotated[httpx.AsyncClient, Depends(diagnostics_client)]


async def fresh_answer(
    principal: CurrentPrincipal,
    cache_control: Annotated[
        str | None,
        Header(
            description="`no-cache` asks for an answer computed now, not a cached one "
            "(engineers and admins; a viewer's request is answered from the cache)"
        ),
    ] = None,
) -> bool:
    """True when an engineer (or admin) asked to bypass the response cache
    (``Cache-Control: no-cache``). A viewer's ``no-cache`` is ignored: otherwise any viewer could
    make every request cost a full computation."""
    asked = cache_control is not None and "no-cache" in cache_control.lower()
    return asked and principal.has_role(Role.ENGINEER)


FreshDep = Annotated[bool, Depends(fresh_answer)]
