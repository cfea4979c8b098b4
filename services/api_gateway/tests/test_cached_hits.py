"""The cached-hit layer: same answers as the routed endpoints, same refusals, falls through.

Two gateways on the same real PostgreSQL, influxd, Redis and OIDC provider: ``client`` with
the layer (the default) and ``routed`` with ``API_FAST_CACHED_HITS=false``. Answers live 60 s
here (also the near copy), so an answer cached by one request is still fresh for the next ones
however slow the machine is; the token leeway is 0 so that a short-lived token expires on time.
``app.state.cached_hits.answered`` counts the requests the layer answered itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pydantic_core
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jose import jwt

from clpm_api_gateway.app import create_app
from clpm_api_gateway.realtime_age import split_answer, with_current_age
from clpm_shared.config import Settings
from tests.harness.servers import OidcProvider

API = "/api/v1"
RAW = "FIC-101"  # raw samples until 10:59:59
AGG = "TIC-205"  # no raw data: realtime values and ts are null
H = dict[str, dict[str, str]]
AGGREGATED = {
    "loopId": AGG,
    "start": "2025-01-10T10:00:00Z",
    "end": "2025-01-10T11:00:00Z",
    "interval": "15m",
}
ORIGIN = {"Origin": "http://localhost:5173"}  # an allowed CORS origin: CORS headers too
AGE = re.compile(rb'"age_s":[^,]*,')


def with_overrides(base: Settings, fast: bool) -> Settings:
    concerns = {name: getattr(base, name) for name in Settings.__slots__}
    concerns["cache"] = base.cache.model_copy(
        update={"cache_ttl_realtime_s": 60.0, "cache_near_ttl_s": 60.0}
    )
    concerns["auth"] = base.auth.model_copy(update={"oidc_leeway_s": 0})
    concerns["api"] = base.api.model_copy(update={"api_fast_cached_hits": fast})
    return Settings(**concerns)


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    """The conftest's gateway settings with the overrides above (the layer on)."""
    return with_overrides(settings, fast=True)


@pytest.fixture(scope="module")
async def routed_gateway(settings: Settings, gateway: FastAPI) -> AsyncIterator[FastAPI]:
    app = create_app(with_overrides(settings, fast=False))
    async with LifespanManager(app):
        yield app


@pytest.fixture(scope="module")
async def routed(routed_gateway: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=routed_gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


def answered(app: FastAPI) -> int:
    return int(app.state.cached_hits.answered)


async def hit(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any],
    headers: dict[str, str],
    by: FastAPI | None = None,
) -> httpx.Response:
    """The answer once it is cached: one request to fill the cache, then the returned one.

    With ``by`` (the app of ``client``), also checks that the layer answered the second one
    (or, for the routed gateway, that it did not).
    """
    first = await client.get(path, params=params, headers=headers)
    assert first.status_code == 200, first.text
    before = answered(by) if by is not None else 0
    second = await client.get(path, params=params, headers=headers)
    if by is not None:
        layer_on = bool(by.state.resources.settings.api.api_fast_cached_hits)
        assert answered(by) == before + int(layer_on)
    return second


def headers_but_length(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    assert response.headers["content-length"] == str(len(response.content))
    return [(name, value) for name, value in response.headers.raw if name != b"content-length"]


@pytest.mark.parametrize("prefix", [API, ""])
async def test_aggregated_hit_is_byte_identical_to_the_routed_answer(
    client: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    gateway: FastAPI,
    routed_gateway: FastAPI,
    headers: H,
    prefix: str,
) -> None:
    viewer = headers["viewer"]
    fast = await hit(client, f"{prefix}/data/aggregated", AGGREGATED, viewer, gateway)
    slow = await hit(routed, f"{prefix}/data/aggregated", AGGREGATED, viewer, routed_gateway)
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    assert fast.headers.raw == slow.headers.raw
    assert "access-control-allow-origin" not in fast.headers
    assert fast.json()["pv"] == [7.0 + 15 * q for q in range(4)]  # means of minutes pooled


@pytest.mark.parametrize("path", [f"{API}/data/aggregated", "/data/realtime"])
async def test_a_cross_origin_hit_is_routed_and_gets_its_cors_headers(
    client: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    gateway: FastAPI,
    routed_gateway: FastAPI,
    headers: H,
    path: str,
) -> None:
    params = AGGREGATED if "aggregated" in path else {"loopId": AGG, "fields": "pv,Mode"}
    viewer = headers["viewer"] | ORIGIN
    await hit(client, path, params, headers["viewer"], gateway)  # cached, the layer answers
    before = answered(gateway)
    fast = await client.get(path, params=params, headers=viewer)
    slow = await hit(routed, path, params, viewer, routed_gateway)
    assert answered(gateway) == before, "the layer left the cross-origin request to FastAPI"
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    assert fast.headers.raw == slow.headers.raw
    assert fast.headers["access-control-allow-origin"] == ORIGIN["Origin"]


async def test_realtime_hit_without_values_is_byte_identical(
    client: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    gateway: FastAPI,
    routed_gateway: FastAPI,
    headers: H,
) -> None:
    params = {"loopId": AGG, "fields": "pv,Mode"}
    fast = await hit(client, "/data/realtime", params, headers["viewer"], gateway)
    slow = await hit(routed, "/data/realtime", params, headers["viewer"], routed_gateway)
    assert fast.content == slow.content
    assert fast.headers.raw == slow.headers.raw
    assert fast.json() == {
        "loop_id": AGG,
        "ts": None,
        "pv": None,
        "mode": None,
        "age_s": None,
        "times": {"pv": None, "mode": None},
    }


async def test_realtime_hit_has_the_routed_body_with_the_age_at_answer_time(
    client: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    gateway: FastAPI,
    routed_gateway: FastAPI,
    headers: H,
) -> None:
    params = {"loopId": RAW, "fields": "sp,op,Mode"}
    fast = await hit(client, f"{API}/data/realtime", params, headers["viewer"], gateway)
    slow = await hit(routed, f"{API}/data/realtime", params, headers["viewer"], routed_gateway)
    assert AGE.sub(b"", fast.content) == AGE.sub(b"", slow.content)
    assert headers_but_length(fast) == headers_but_length(slow)
    body = fast.json()
    assert body["ts"] == "2025-01-10T10:59:59.000Z"
    assert (body["sp"], body["op"], body["mode"]) == (50.0, 35.99, "MAN")
    expected_age = (
        datetime.now(UTC) - datetime(2025, 1, 10, 10, 59, 59, tzinfo=UTC)
    ).total_seconds()
    assert body["age_s"] == pytest.approx(expected_age, abs=5.0)  # not the age when cached
    await asyncio.sleep(1.1)
    later = (
        await client.get(f"{API}/data/realtime", params=params, headers=headers["viewer"])
    ).json()
    assert later["age_s"] >= body["age_s"] + 1.0  # from the same cached answer, a second older


def reference_with_age(payload: bytes, now: datetime) -> bytes:
    """What the realtime endpoint did before the splice: parse, set age_s, render again."""
    body = json.loads(payload)
    if body["ts"] is not None:
        ts = datetime.fromisoformat(body["ts"])
        body["age_s"] = round((now - ts).total_seconds(), 3)
    return pydantic_core.to_json(body)


@pytest.mark.parametrize(
    "body",
    [
        {"pv": 1.5, "op": -0.0, "sp": 1e-7, "ts": "2025-01-10T10:59:59.123Z", "age_s": 0.5},
        {"pv": 12345678.25, "mode": "AUT", "ts": "2025-01-10T10:59:59Z", "age_s": 3.0},
        {"pv": None, "op": 2.0, "ts": "2030-01-01T00:00:00.000Z", "age_s": -1.0},  # future
        {"pv": 1e300, "ts": "2025-01-10T10:59:59.999Z", "age_s": 1e-05},
        {"pv": None, "ts": None, "age_s": None},
    ],
)
async def test_spliced_age_gives_the_bytes_of_parse_and_render(body: dict[str, Any]) -> None:
    fields = [name for name in body if name not in ("ts", "age_s")]
    answer = {"loop_id": "A-1:x/y.z", "ts": body["ts"]}
    answer |= {name: body[name] for name in fields}
    answer |= {"age_s": body["age_s"], "times": {name: body["ts"] for name in fields}}
    payload = pydantic_core.to_json(answer)
    assert split_answer(payload) is not None  # the fast way, not the fallback
    for now in (
        datetime(2026, 11, 25, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2025, 1, 10, 10, 59, 59, 500_000, tzinfo=UTC),
        datetime(2031, 2, 3, 4, 5, 6, 789_123, tzinfo=UTC),
    ):
        assert with_current_age(payload, now) == reference_with_age(payload, now)


async def test_an_answer_of_another_shape_takes_the_general_way() -> None:
    payload = b'{"ts":"2025-01-10T10:00:00Z","loop_id":"X","age_s":1.0,"pv":1.0}'
    now = datetime(2025, 1, 10, 10, 0, 2, tzinfo=UTC)
    assert split_answer(payload) is None
    assert json.loads(with_current_age(payload, now))["age_s"] == 2.0


def signed(oidc_provider: OidcProvider, username: str, **changes: Any) -> str:
    claims: dict[str, Any] = jwt.get_unverified_claims(oidc_provider.password_token(username))
    claims.update(changes)
    return oidc_provider.sign(claims)


async def test_refused_tokens_are_refused_as_before_while_the_answer_is_cached(
    client: httpx.AsyncClient, gateway: FastAPI, headers: H, oidc_provider: OidcProvider
) -> None:
    path, params = f"{API}/data/realtime", {"loopId": RAW}
    await hit(client, path, params, headers["viewer"])
    now = int(time.time())
    viewer_token = headers["viewer"]["Authorization"].removeprefix("Bearer ")
    head, payload, signature = viewer_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["admin"]}
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused = {
        "no token": ({}, 401),
        "not bearer": ({"Authorization": f"Basic {viewer_token}"}, 401),
        "expired": (
            {"Authorization": f"Bearer {signed(oidc_provider, 'viewer', exp=now - 60)}"},
            401,
        ),
        "wrong audience": (
            {
                "Authorization": "Bearer "
                + signed(oidc_provider, "viewer", aud="account", azp="clpm-frontend")
            },
            401,
        ),
        "tampered": ({"Authorization": f"Bearer {head}.{tampered}.{signature}"}, 401),
        "no role": (headers["norole"], 403),
    }
    before = answered(gateway)
    for case, (sent, status) in refused.items():
        response = await client.get(path, params=params, headers=sent)
        assert response.status_code == status, case
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="clpm"'), case
        if status == 403:
            assert 'error="insufficient_scope"' in challenge
        elif case in ("no token", "not bearer"):  # no bearer token: a bare challenge
            assert challenge == 'Bearer realm="clpm"', case
        else:
            assert 'error="invalid_token"' in challenge, case
        assert response.headers["content-type"] == "application/problem+json", case
    assert answered(gateway) == before  # every refusal came from the routed endpoint
    assert (await client.get(path, params=params, headers=headers["viewer"])).status_code == 200
    assert answered(gateway) == before + 1


async def test_a_remembered_token_is_refused_once_it_expires(
    client: httpx.AsyncClient, gateway: FastAPI, headers: H, oidc_provider: OidcProvider
) -> None:
    path, params = f"{API}/data/realtime", {"loopId": RAW, "fields": "pv"}
    await hit(client, path, params, headers["viewer"])
    expires = time.time() + 3
    short = {"Authorization": f"Bearer {signed(oidc_provider, 'viewer', exp=int(expires))}"}
    before = answered(gateway)
    assert (await client.get(path, params=params, headers=short)).status_code == 200  # validated
    assert (await client.get(path, params=params, headers=short)).status_code == 200  # remembered
    assert answered(gateway) == before + 1
    await asyncio.sleep(max(0.0, int(expires) - time.time()) + 1.1)
    expired = await client.get(path, params=params, headers=short)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert "expired" in expired.json()["detail"]
    assert answered(gateway) == before + 1


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/data/realtime", {"loopId": "bad id!"}, "loopId"),
        ("/data/realtime", {"loopId": RAW, "fields": "OPX"}, "fields"),
        ("/data/realtime", {"loopId": RAW, "fields": ""}, "fields"),
        ("/data/aggregated", AGGREGATED | {"interval": " 1m" + " " * 15}, "interval"),
        ("/data/aggregated", AGGREGATED | {"interval": "7x"}, "interval"),
        ("/data/aggregated", AGGREGATED | {"end": "2025-01-10T09:00:00Z"}, "end"),
        ("/data/aggregated", AGGREGATED | {"start": "2025-01-10T10:00:00"}, "start"),
    ],
)
async def test_invalid_parameters_go_to_the_endpoint_that_names_them(
    client: httpx.AsyncClient,
    gateway: FastAPI,
    headers: H,
    path: str,
    params: dict[str, str],
    parameter: str,
) -> None:
    await hit(client, f"{API}/data/realtime", {"loopId": RAW}, headers["viewer"])  # token known
    before = answered(gateway)
    response = await client.get(f"{API}{path}", params=params, headers=headers["viewer"])
    assert response.status_code == 422
    assert parameter in [error["parameter"] for error in response.json()["errors"]]
    assert answered(gateway) == before


async def test_misses_no_cache_csv_and_unknown_loops_go_to_the_endpoint(
    client: httpx.AsyncClient, gateway: FastAPI, headers: H
) -> None:
    viewer = headers["viewer"]
    await hit(client, f"{API}/data/realtime", {"loopId": RAW}, viewer)
    before = answered(gateway)
    unknown = await client.get(f"{API}/data/realtime", params={"loopId": "NOPE-7"}, headers=viewer)
    assert unknown.status_code == 404
    window = AGGREGATED | {"start": "2025-01-10T10:05:00Z"}  # not asked before: a miss
    miss = await client.get(f"{API}/data/aggregated", params=window, headers=viewer)
    assert miss.status_code == 200
    assert answered(gateway) == before
    no_cache = await client.get(
        f"{API}/data/aggregated", params=window, headers=viewer | {"Cache-Control": "no-cache"}
    )
    assert no_cache.content == miss.content
    csv = await client.get(
        f"{API}/data/aggregated", params=window, headers=viewer | {"Accept": "text/csv"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    formatted = await client.get(
        f"{API}/data/aggregated", params=window | {"format": "csv"}, headers=viewer
    )
    assert formatted.headers["content-type"].startswith("text/csv")
    # open-ended (until now): at hourly buckets, as minute buckets may span at most 62 days
    open_ended = {key: value for key, value in window.items() if key != "end"} | {"interval": "1h"}
    assert (
        await client.get(f"{API}/data/aggregated", params=open_ended, headers=viewer)
    ).status_code == 200
    assert answered(gateway) == before
    assert (await client.get(f"{API}/data/aggregated", params=window, headers=viewer)).content == (
        miss.content
    )
    assert answered(gateway) == before + 1


async def test_a_change_of_the_loop_is_seen_at_once(
    client: httpx.AsyncClient, gateway: FastAPI, headers: H
) -> None:
    params = {"loopId": "LIC-300"}
    first = await hit(client, f"{API}/data/realtime", params, headers["viewer"])
    assert first.status_code == 200
    changed = await client.put(
        f"{API}/loops/LIC-300", json={"name": "Drum level 2"}, headers=headers["admin"]
    )
    assert changed.status_code == 200, changed.text
    before = answered(gateway)
    again = await client.get(f"{API}/data/realtime", params=params, headers=headers["viewer"])
    assert again.status_code == 200
    assert answered(gateway) == before  # the invalidation dropped the near copy: recomputed
