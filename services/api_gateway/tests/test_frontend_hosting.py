"""The gateway serves the web front's runtime configuration and, with FRONTEND_DIST, its build.

The app runs on the embedded default (SQLite, embedded time-series store, local issuer) with a
small build directory written by the test: an index.html, a hashed asset and a favicon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings, load_settings
from tests.harness.servers import REALM_FILE

ISSUER = "http://127.0.0.1:8080/realms/clpm"
INDEX = "<!doctype html><title>CLPM</title><div id=root></div>"
ASSET = "console.log('clpm');"


def embedded_settings(tmp_path: Path, dist: Path | None) -> Settings:
    return load_settings(
        database={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}"},
        influx={"timeseries_backend": "embedded", "embedded_tsdb_path": tmp_path / "ts.db"},
        cache={"cache_backend": "memory"},
        auth={
            "auth_mode": "local",
            "oidc_issuer": ISSUER,
            "local_issuer_key_path": tmp_path / "issuer.pem",
            "local_realm_file": REALM_FILE,
        },
        api={"frontend_dist": dist},
    )


def write_build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-3f2a9c.js").write_text(ASSET)
    (dist / "assets" / "index-3f2a9c.js.map").write_text('{"sources": ["src/App.tsx"]}')
    (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (dist.parent / "secret.txt").write_text("not served")  # beside the build: never served


async def gateway_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8080"
        ) as http,
    ):
        yield http


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    dist = tmp_path / "dist"
    write_build(dist)
    async for http in gateway_client(embedded_settings(tmp_path, dist)):
        yield http


@pytest.fixture
async def unbuilt(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in gateway_client(embedded_settings(tmp_path, tmp_path / "missing")):
        yield http


async def test_frontend_config_is_public_and_names_the_issuer_and_client(
    served: httpx.AsyncClient,
) -> None:
    answer = await served.get("/api/v1/frontend-config")
    assert answer.status_code == 200
    assert answer.json() == {
        "oidc_issuer": ISSUER,
        "oidc_client_id": "clpm-frontend",
        "oidc_scope": "openid profile email",
        "api_base_url": "/api/v1",
        "auth_mode": "local",
    }
    discovery = await served.get("/realms/clpm/.well-known/openid-configuration")
    assert discovery.json()["issuer"] == answer.json()["oidc_issuer"]


@pytest.mark.parametrize("path", ["/", "/fleet", "/fleet/loops/TIC208031", "/clusters", "/apc"])
async def test_client_routes_load_the_app_shell(served: httpx.AsyncClient, path: str) -> None:
    answer = await served.get(path)
    assert answer.status_code == 200
    assert answer.text == INDEX
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"


async def test_files_are_served_with_hashed_assets_cached_for_good(
    served: httpx.AsyncClient,
) -> None:
    asset = await served.get("/assets/index-3f2a9c.js")
    assert asset.status_code == 200
    assert asset.text == ASSET
    assert "immutable" in asset.headers["cache-control"]
    assert "javascript" in asset.headers["content-type"]
    icon = await served.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    missing_asset = await served.get("/assets/gone-123.js")
    assert missing_asset.status_code == 404  # never the app shell in place of a script


async def test_api_routes_win_and_api_paths_never_fall_back(served: httpx.AsyncClient) -> None:
    assert (await served.get("/api/v1/loops")).status_code == 401
    assert (await served.get("/loops")).status_code == 401  # the unprefixed API route
    assert (await served.get("/health")).json()["status"] == "ok"
    for path in ("/api/v1/no-such-route", "/api/v1", "/realms/clpm/no-such-endpoint"):
        answer = await served.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"


async def test_paths_outside_the_build_are_not_served(served: httpx.AsyncClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        answer = await served.get(path)
        assert "not served" not in answer.text, path


async def test_a_nul_byte_in_the_path_is_a_404_not_a_500(served: httpx.AsyncClient) -> None:
    for path in ("/a%00b", "/assets/x%00.js", "/%00"):
        answer = await served.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"


async def test_without_a_build_only_the_configuration_is_served(
    unbuilt: httpx.AsyncClient,
) -> None:
    assert (await unbuilt.get("/api/v1/frontend-config")).status_code == 200
    assert (await unbuilt.get("/fleet")).status_code == 404


async def test_source_maps_are_not_served(served: httpx.AsyncClient) -> None:
    for path in ("/assets/index-3f2a9c.js.map", "/assets/index-3f2a9c.js.MAP"):
        answer = await served.get(path)
        assert answer.status_code == 404, path
        assert "sources" not in answer.text


async def test_the_app_carries_a_content_security_policy(served: httpx.AsyncClient) -> None:
    for path in ("/", "/fleet/loops/FIC-101", "/assets/index-3f2a9c.js", "/favicon.svg"):
        policy = (await served.get(path)).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", path  # no inline or foreign scripts
        assert directives["connect-src"] == "'self' http://127.0.0.1:8080", path  # + the issuer
        assert directives["frame-ancestors"] == "'none'", path
        assert directives["object-src"] == "'none'", path
