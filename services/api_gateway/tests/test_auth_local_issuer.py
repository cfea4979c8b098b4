"""Local issuer of the embedded run, end to end through the gateway's own routes.

Password grant, authorization code with PKCE through the HTML form (as a browser submits it),
refresh rotation, logout, userinfo, brute-force lockout, key persistence, and the refusal to
serve on a non-loopback address.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jose import jwt

from clpm_api_gateway.app import create_app
from clpm_api_gateway.local_issuer import check_local_auth_binding, is_loopback_host
from clpm_api_gateway.security import mount_security, security_lifespan
from clpm_shared.auth import Role, TokenValidator
from clpm_shared.config import Settings, SettingsError, load_settings
from tests.harness.servers import REALM_FILE

ISSUER = "http://127.0.0.1:8080/realms/clpm"
OIDC = "/realms/clpm/protocol/openid-connect"
FRONTEND_REDIRECT = "http://localhost:5173/callback"


def local_settings(tmp_path: Path, **api: Any) -> Settings:
    return load_settings(
        auth={
            "auth_mode": "local",
            "oidc_issuer": ISSUER,
            "local_issuer_key_path": tmp_path / "keys" / "issuer.pem",
            "local_realm_file": REALM_FILE,
        },
        api=api,
    )


def issuer_app(settings: Settings) -> FastAPI:
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with security_lifespan(app, settings):
            yield

    app = FastAPI(lifespan=lifespan)
    mount_security(app, settings)
    return app


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = issuer_app(local_settings(tmp_path))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8080"
        ) as http,
    ):
        yield app, http


def validator_of(app: FastAPI) -> TokenValidator:
    checker = app.state.token_validator
    assert isinstance(checker, TokenValidator)
    return checker


async def password_grant(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "password",
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "username": username,
            "password": password,
        },
    )


class FormReader(HTMLParser):
    """Collects a page's form inputs and labels, like a browser filling the form would."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str]] = {}
        self.labels: set[str] = set()
        self.alerts = 0
        self.method = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.method = attributes.get("method", "")
        elif tag == "input":
            self.inputs[attributes["name"]] = attributes
        elif tag == "label":
            self.labels.add(attributes.get("for", ""))
        if attributes.get("role") == "alert":
            self.alerts += 1


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


async def sign_in_with_browser(
    http: httpx.AsyncClient, username: str, password: str, challenge: str, **extra: str
) -> httpx.Response:
    """GET the login page, then submit its form with the user's credentials."""
    params = {
        "response_type": "code",
        "client_id": "clpm-frontend",
        "redirect_uri": FRONTEND_REDIRECT,
        "scope": "openid profile",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    page = await http.get(f"{OIDC}/auth", params=params)
    assert page.status_code == 200, page.text
    form = FormReader()
    form.feed(page.text)
    fields = {name: attrs.get("value", "") for name, attrs in form.inputs.items()}
    fields.update(username=username, password=password)
    return await http.post(f"{OIDC}/auth", data=fields)


async def code_flow_tokens(http: httpx.AsyncClient, username: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    redirect = await sign_in_with_browser(http, username, username, challenge)
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    response = await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "clpm-frontend",
            "code": code,
            "redirect_uri": FRONTEND_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


# --------------------------------------------------------------------------- discovery, keys


async def test_discovery_and_certs_use_keycloak_paths(
    gateway: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    _, http = gateway
    discovery = (await http.get("/realms/clpm/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == ISSUER
    assert discovery["jwks_uri"] == f"{ISSUER}/protocol/openid-connect/certs"
    assert discovery["token_endpoint"] == f"{ISSUER}/protocol/openid-connect/token"
    assert discovery["authorization_endpoint"] == f"{ISSUER}/protocol/openid-connect/auth"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    keys = (await http.get(f"{OIDC}/certs")).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["alg"] == "RS256"
    assert "d" not in keys[0]  # public half only
    key_file = tmp_path / "keys" / "issuer.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_key_is_persisted_so_tokens_survive_a_restart(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    first, second = issuer_app(settings), issuer_app(settings)
    async with LifespanManager(first), LifespanManager(second):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(first), base_url="http://127.0.0.1:8080"
        ) as http:
            token = (await password_grant(http, "viewer", "viewer")).json()["access_token"]
        principal = await validator_of(second).validate(token)  # the "restarted" gateway
    assert principal.username == "viewer"


# --------------------------------------------------------------------------- password grant


async def test_password_grant_token_is_keycloak_shaped_and_validates(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = gateway
    response = await password_grant(http, "engineer", "engineer")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900  # the realm's accessTokenLifespan
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.get_unverified_claims(token)
    keys = (await http.get(f"{OIDC}/certs")).json()["keys"]
    assert header["alg"] == "RS256"
    assert header["kid"] == keys[0]["kid"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "clpm-api"
    assert claims["azp"] == "clpm-cli"
    assert claims["typ"] == "Bearer"
    assert claims["preferred_username"] == "engineer"
    assert sorted(claims["realm_access"]["roles"]) == ["engineer", "viewer"]
    assert claims["exp"] - claims["iat"] == 900

    principal = await validator_of(app).validate(token)
    assert principal.has_role(Role.ENGINEER)
    assert not principal.has_role(Role.ADMIN)

    # An OIDC-mode consumer reading the JWKS over HTTP accepts it too.
    oidc_auth = load_settings(
        auth={"oidc_issuer": ISSUER, "oidc_jwks_uri": None, "oidc_audience": "clpm-api"}
    ).auth
    remote = TokenValidator.for_oidc(oidc_auth, client=http)
    assert (await remote.validate(token)).username == "engineer"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"username": "viewer", "password": "wrong"}, 401, "invalid_grant"),
        ({"username": "nobody", "password": "nobody"}, 401, "invalid_grant"),
        ({"client_secret": "guess"}, 401, "unauthorized_client"),
        ({"client_id": "clpm-frontend", "client_secret": ""}, 400, "unauthorized_client"),
        ({"client_id": "unknown"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"password": None}, 400, "invalid_request"),
    ],
)
async def test_password_grant_refusals(
    gateway: tuple[FastAPI, httpx.AsyncClient],
    form: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    _, http = gateway
    data: dict[str, str | None] = {
        "grant_type": "password",
        "client_id": "clpm-cli",
        "client_secret": "clpm-cli-secret",
        "username": "viewer",
        "password": "viewer",
        **form,
    }
    response = await http.post(
        f"{OIDC}/token", data={k: v for k, v in data.items() if v is not None}
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


async def test_token_endpoint_accepts_basic_client_auth_and_refuses_json(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    form = {"grant_type": "password", "username": "admin", "password": "admin"}
    ok = await http.post(f"{OIDC}/token", data=form, auth=("clpm-cli", "clpm-cli-secret"))
    assert ok.status_code == 200
    as_json = await http.post(
        f"{OIDC}/token", json={**form, "client_id": "clpm-cli", "client_secret": "clpm-cli-secret"}
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


async def test_repeated_wrong_passwords_lock_the_user_out(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    for _ in range(5):
        assert (await password_grant(http, "admin", "guess")).status_code == 401
    locked = await password_grant(http, "admin", "admin")  # right password, but locked now
    assert locked.status_code == 401
    assert "locked" in locked.json()["error_description"]
    assert (await password_grant(http, "viewer", "viewer")).status_code == 200  # others unaffected


# --------------------------------------------------------------------------- code flow + PKCE


async def test_login_form_is_accessible(gateway: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = gateway
    _, challenge = pkce_pair()
    page = await http.get(
        f"{OIDC}/auth",
        params={
            "response_type": "code",
            "client_id": "clpm-frontend",
            "redirect_uri": FRONTEND_REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": '"><script>alert(1)</script>',
        },
    )
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "<script>" not in page.text  # reflected parameters are escaped
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    form = FormReader()
    form.feed(page.text)
    assert form.method == "post"
    assert {"username", "password"} <= form.labels  # every visible field has a label
    assert form.inputs["username"]["autocomplete"] == "username"
    assert form.inputs["password"]["autocomplete"] == "current-password"
    assert form.inputs["password"]["type"] == "password"


async def test_authorization_code_flow_with_pkce(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = gateway
    verifier, challenge = pkce_pair()
    redirect = await sign_in_with_browser(http, "admin", "admin", challenge)
    assert redirect.status_code == 303
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == FRONTEND_REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-123"]
    assert query["iss"] == [ISSUER]

    exchange = {
        "grant_type": "authorization_code",
        "client_id": "clpm-frontend",
        "code": query["code"][0],
        "redirect_uri": FRONTEND_REDIRECT,
        "code_verifier": verifier,
    }
    response = await http.post(f"{OIDC}/token", data=exchange)
    assert response.status_code == 200, response.text
    tokens = response.json()
    principal = await validator_of(app).validate(tokens["access_token"])
    assert principal.username == "admin"
    assert principal.has_role(Role.ADMIN)
    assert jwt.get_unverified_claims(tokens["access_token"])["azp"] == "clpm-frontend"
    id_claims = jwt.get_unverified_claims(tokens["id_token"])
    assert id_claims["aud"] == "clpm-frontend"
    assert id_claims["nonce"] == "n-456"
    assert id_claims["typ"] == "ID"

    replay = await http.post(f"{OIDC}/token", data=exchange)  # codes are single use
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    userinfo = await http.get(
        f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["preferred_username"] == "admin"
    assert userinfo.json()["email"] == "admin@clpm.local"
    assert (await http.get(f"{OIDC}/userinfo")).status_code == 401


async def test_wrong_pkce_verifier_is_rejected(gateway: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = gateway
    verifier, challenge = pkce_pair()
    redirect = await sign_in_with_browser(http, "viewer", "viewer", challenge)
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    other_verifier, _ = pkce_pair()
    response = await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "clpm-frontend",
            "code": code,
            "redirect_uri": FRONTEND_REDIRECT,
            "code_verifier": other_verifier,
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed",
    }
    assert "access_token" not in response.text
    retry = await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "clpm-frontend",
            "code": code,
            "redirect_uri": FRONTEND_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert retry.status_code == 400  # the failed attempt consumed the code


async def test_wrong_password_in_the_form_shows_an_error_and_no_code(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    _, challenge = pkce_pair()
    response = await sign_in_with_browser(http, "viewer", "not-it", challenge)
    assert response.status_code == 401
    assert "location" not in response.headers
    form = FormReader()
    form.feed(response.text)
    assert form.alerts == 1
    assert form.inputs["username"]["value"] == "viewer"
    assert form.inputs["password"].get("value", "") == ""  # never echoed back


async def test_email_can_be_used_to_sign_in(gateway: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, http = gateway
    _, challenge = pkce_pair()
    response = await sign_in_with_browser(http, "engineer@clpm.local", "engineer", challenge)
    assert response.status_code == 303


async def test_unregistered_redirect_uri_is_never_redirected_to(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    _, challenge = pkce_pair()
    page = await http.get(
        f"{OIDC}/auth",
        params={
            "response_type": "code",
            "client_id": "clpm-frontend",
            "redirect_uri": "https://attacker.example/callback",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 400
    assert "location" not in page.headers


@pytest.mark.parametrize(
    "pkce",
    [
        {},
        {"code_challenge_method": "plain", "code_challenge": "x" * 43},
        {"code_challenge_method": "S256", "code_challenge": "short"},
    ],
)
async def test_code_flow_requires_pkce_s256(
    gateway: tuple[FastAPI, httpx.AsyncClient], pkce: dict[str, str]
) -> None:
    _, http = gateway
    response = await http.get(
        f"{OIDC}/auth",
        params={
            "response_type": "code",
            "client_id": "clpm-frontend",
            "redirect_uri": FRONTEND_REDIRECT,
            "state": "s",
            **pkce,
        },
    )
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s"]


async def test_refresh_tokens_rotate_and_logout_ends_the_session(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = gateway
    tokens = await code_flow_tokens(http, "engineer")
    refresh = {"grant_type": "refresh_token", "client_id": "clpm-frontend"}
    renewed = await http.post(
        f"{OIDC}/token", data={**refresh, "refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200
    assert (await validator_of(app).validate(renewed.json()["access_token"])).username == (
        "engineer"
    )
    reused = await http.post(
        f"{OIDC}/token", data={**refresh, "refresh_token": tokens["refresh_token"]}
    )
    assert reused.status_code == 400  # a refresh token is good once

    other_client = await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "refresh_token": renewed.json()["refresh_token"],
        },
    )
    assert other_client.status_code == 400
    # the attempt by another client consumed it; sign in again for the logout checks
    tokens = await code_flow_tokens(http, "engineer")

    logout = await http.get(
        f"{OIDC}/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://localhost:5173/",
            "state": "bye",
        },
    )
    assert logout.status_code == 303
    assert logout.headers["location"] == "http://localhost:5173/?state=bye"
    after = await http.post(
        f"{OIDC}/token", data={**refresh, "refresh_token": tokens["refresh_token"]}
    )
    assert after.status_code == 400

    evil = await http.get(
        f"{OIDC}/logout",
        params={"client_id": "clpm-frontend", "post_logout_redirect_uri": "https://evil.example/"},
    )
    assert evil.status_code == 400
    assert "location" not in evil.headers


async def test_backchannel_logout_with_refresh_token(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = gateway
    tokens = (await password_grant(http, "viewer", "viewer")).json()
    logout = await http.post(
        f"{OIDC}/logout",
        data={
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert logout.status_code == 204
    refresh = await http.post(
        f"{OIDC}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "clpm-cli",
            "client_secret": "clpm-cli-secret",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refresh.status_code == 400


# --------------------------------------------------------------------------- the real app


async def test_gateway_app_serves_the_local_issuer_in_local_mode(tmp_path: Path) -> None:
    settings = load_settings(
        database={"database_url": f"sqlite:///{tmp_path / 'clpm.db'}"},
        influx={"timeseries_backend": "embedded", "embedded_tsdb_path": tmp_path / "ts.db"},
        cache={"cache_backend": "memory"},
        auth={
            "auth_mode": "local",
            "oidc_issuer": ISSUER,
            "local_issuer_key_path": tmp_path / "issuer.pem",
            "local_realm_file": REALM_FILE,
        },
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8080"
        ) as http,
    ):
        discovery = await http.get("/realms/clpm/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == ISSUER
        token = (await password_grant(http, "admin", "admin")).json()["access_token"]
        assert (await validator_of(app).validate(token)).has_role(Role.ADMIN)


# --------------------------------------------------------------------------- loopback only


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_allowed(tmp_path: Path, host: str) -> None:
    assert is_loopback_host(host)
    check_local_auth_binding(local_settings(tmp_path, api_host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "clpm.example.com"])
def test_non_loopback_bind_is_refused_in_local_mode(tmp_path: Path, host: str) -> None:
    settings = local_settings(tmp_path, api_host=host)
    with pytest.raises(SettingsError) as refused:
        check_local_auth_binding(settings)
    assert len(refused.value.lines) == 1
    assert "API_HOST" in refused.value.lines[0]
    assert "ALLOW_NON_LOOPBACK_LOCAL_AUTH" in refused.value.lines[0]
    forced = load_settings(
        auth={"auth_mode": "local", "allow_non_loopback_local_auth": True}, api={"api_host": host}
    )
    check_local_auth_binding(forced)  # explicitly forced
    check_local_auth_binding(load_settings(auth={"auth_mode": "oidc"}, api={"api_host": host}))


def test_gateway_process_refuses_to_start_on_a_public_address(tmp_path: Path) -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - a child process needs PATH
        "AUTH_MODE": "local",
        "API_HOST": "127.0.0.1",
        "LOCAL_ISSUER_KEY_PATH": str(tmp_path / "issuer.pem"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'clpm.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "clpm_api_gateway", "--host", "0.0.0.0"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "API_HOST ('0.0.0.0')" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "issuer.pem").exists()  # refused before creating anything


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9123", "http://localhost:9123"])
async def test_sign_in_works_on_any_api_port(tmp_path: Path, origin: str) -> None:
    """API_PORT=9123 (OIDC_ISSUER follows it in run.sh): the app's own origin is registered,
    though the realm file lists only the default ports."""
    settings = load_settings(
        auth={
            "auth_mode": "local",
            "oidc_issuer": "http://127.0.0.1:9123/realms/clpm",
            "local_issuer_key_path": tmp_path / "issuer.pem",
            "local_realm_file": REALM_FILE,
        }
    )
    app = issuer_app(settings)
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "clpm-frontend",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s1",
    }
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=origin) as http,
    ):
        page = await http.get(f"{OIDC}/auth", params={**params, "redirect_uri": f"{origin}/"})
        assert page.status_code == 200
        assert "<form" in page.text
        other = "http://127.0.0.1:9124/"
        refused = await http.get(f"{OIDC}/auth", params={**params, "redirect_uri": other})
        assert refused.status_code == 400
        assert html.unescape(refused.text).count(f"'{other}'") == 1  # the error names the URI
