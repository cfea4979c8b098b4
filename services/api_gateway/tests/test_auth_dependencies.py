"""Gateway security dependencies (401/403/503, role order) against the real OIDC provider.

A minimal FastAPI app uses exactly what the gateway's routers use (``require_role``,
``CurrentPrincipal``, ``mount_security``/``security_lifespan``), so these tests do not depend
on the data endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI

from clpm_api_gateway.security import (
    AdminPrincipal,
    CurrentPrincipal,
    EngineerPrincipal,
    mount_security,
    require_role,
    security_lifespan,
)
from clpm_shared.config import Settings, load_settings
from tests.harness.servers import OidcProvider, free_port


def oidc_settings(issuer: str, jwks_uri: str | None, **auth: Any) -> Settings:
    return load_settings(
        auth={
            "auth_mode": "oidc",
            "oidc_issuer": issuer,
            "oidc_jwks_uri": jwks_uri,
            "oidc_audience": "clpm-api",
            **auth,
        }
    )


def secured_app(settings: Settings) -> FastAPI:
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with security_lifespan(app, settings):
            yield

    app = FastAPI(lifespan=lifespan)
    mount_security(app, settings)

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"username": principal.username, "roles": sorted(principal.roles)}

    @app.get("/loops", dependencies=[Depends(require_role("viewer"))])
    async def read() -> dict[str, str]:
        return {"ok": "read"}

    @app.put("/loops/x/config")
    async def configure(principal: EngineerPrincipal) -> dict[str, str]:
        return {"ok": principal.username}

    @app.delete("/loops/x")
    async def delete(principal: AdminPrincipal) -> dict[str, str]:
        return {"ok": principal.username}

    return app


@pytest.fixture
async def client(oidc_provider: OidcProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = secured_app(oidc_settings(oidc_provider.issuer, oidc_provider.jwks_uri))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/loops")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="clpm"'
    basic = await client.get("/loops", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status_code == 401
    assert basic.headers["www-authenticate"].startswith("Bearer")


async def test_invalid_token_is_401_with_invalid_token_error(
    client: httpx.AsyncClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.password_token("admin")
    header, payload, signature = token.split(".")
    response = await client.get("/loops", headers=bearer(f"{header}.{payload}x.{signature}"))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="clpm", error="invalid_token"')
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("username", "read", "configure", "delete"),
    [
        ("viewer", 200, 403, 403),
        ("engineer", 200, 200, 403),
        ("admin", 200, 200, 200),
        ("norole", 403, 403, 403),
    ],
)
async def test_roles_grant_viewer_engineer_admin_in_order(
    client: httpx.AsyncClient,
    oidc_provider: OidcProvider,
    username: str,
    read: int,
    configure: int,
    delete: int,
) -> None:
    headers = bearer(oidc_provider.password_token(username))
    assert (await client.get("/loops", headers=headers)).status_code == read
    assert (await client.put("/loops/x/config", headers=headers)).status_code == configure
    denied = await client.delete("/loops/x", headers=headers)
    assert denied.status_code == delete
    if delete == 403:
        assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
        assert "admin" in denied.json()["detail"]


async def test_current_principal_reports_the_tokens_user(
    client: httpx.AsyncClient, oidc_provider: OidcProvider
) -> None:
    response = await client.get("/whoami", headers=bearer(oidc_provider.password_token("engineer")))
    assert response.json() == {"username": "engineer", "roles": ["engineer", "viewer"]}


async def test_identity_provider_down_is_503_with_retry_after(
    oidc_provider: OidcProvider,
) -> None:
    token = oidc_provider.password_token("viewer")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens here: connection refused
    app = secured_app(
        oidc_settings(
            oidc_provider.issuer,
            f"{closed}/realms/clpm/protocol/openid-connect/certs",
            oidc_jwks_min_refresh_s=5,
        )
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        response = await http.get("/loops", headers=bearer(token))
        again = await http.get("/loops", headers=bearer(token))
        missing = await http.get("/loops")
    assert response.status_code == 503
    assert 1 <= int(response.headers["retry-after"]) <= 5
    assert "Traceback" not in response.text
    assert again.status_code == 503
    assert missing.status_code == 401  # no token at all is still a 401
