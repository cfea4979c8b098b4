"""Two gateway processes sharing Redis: each keeps a near copy for CACHE_NEAR_TTL_S, so a change
made through one shows in the other after at most that long (and at once in the first). A copy
read in the second half of its lifetime is renewed from Redis, so the change may show there from
that point on (test_near_copy_renewal.py tests the renewal itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app
from clpm_api_gateway.response_cache import NEAR_RENEW_AHEAD
from clpm_shared.config import Settings

API = "/api/v1"
NEAR_TTL_S = 2.0
H = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
async def two_processes(
    settings: Settings, seeded: object
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["cache"] = settings.cache.model_copy(update={"cache_near_ttl_s": NEAR_TTL_S})
    first, second = create_app(Settings(**parts)), create_app(Settings(**parts))
    async with (
        LifespanManager(first),
        LifespanManager(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
    ):
        yield a, b


async def lic_criticality(http: httpx.AsyncClient, headers: H) -> int:
    body = (
        await http.get(
            f"{API}/fleet/summary",
            params={"top": 50, "period": "window"},
            headers=headers["viewer"],
        )
    ).json()
    return int(next(a["criticality"] for a in body["bad_actors"] if a["loop_id"] == "LIC-300"))


async def test_change_through_one_process_reaches_the_other_within_the_near_ttl(
    two_processes: tuple[httpx.AsyncClient, httpx.AsyncClient], headers: H
) -> None:
    a, b = two_processes
    cached_at = time.monotonic()
    assert await lic_criticality(b, headers) == 1  # now in Redis and in b's memory
    changed = await a.put(
        f"{API}/loops/LIC-300/config", json={"criticality": 2}, headers=headers["engineer"]
    )
    assert changed.status_code == 200
    changed_at = time.monotonic()
    assert await lic_criticality(a, headers) == 2, "the changing process drops its copies"
    while await lic_criticality(b, headers) != 2:
        assert time.monotonic() < changed_at + NEAR_TTL_S + 5, "near copy outlived its TTL"
        await asyncio.sleep(0.05)
    seen_at = time.monotonic()
    # b's copy was stored after cached_at, so it could neither expire nor be renewed (read
    # again from Redis) before cached_at + (1 - NEAR_RENEW_AHEAD) x TTL
    assert seen_at - cached_at >= NEAR_TTL_S * (1 - NEAR_RENEW_AHEAD)
