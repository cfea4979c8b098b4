"""What a security review of the gateway found, replayed against the real servers.

Each test reproduces one finding the way the review did (real HTTP on loopback to the gateway
under uvicorn, real PostgreSQL, Redis, influxd and OIDC provider, or the embedded default) and
asserts that it now holds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import stat
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from jose import jwt
from sqlalchemy import text

from clpm_api_gateway.app import create_app
from clpm_api_gateway.csv_export import columnar_csv
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine
from clpm_shared.web.access_log import path_and_query
from tests.harness.asgi_server import serve_in_thread
from tests.harness.servers import REALM_FILE, OidcProvider, free_port, migrate

MIB = 1024 * 1024
H = dict[str, dict[str, str]]
BODY_ROUTES = (
    ("POST", "/api/v1/loops"),
    ("PUT", "/api/v1/loops/FIC-101"),
    ("PUT", "/api/v1/loops/FIC-101/config"),
    ("POST", "/api/v1/loops/FIC-101/config"),
    ("POST", "/api/v1/loops/FIC-101/diagnostics/run"),
    ("POST", "/loops"),  # the unprefixed copy
)


def exchange(url: str, head: str, parts: Iterable[bytes], timeout: float = 10.0) -> int:
    """Send a raw HTTP/1.1 request (``head`` without the blank line) and the body ``parts``;
    returns the answer's status. Stops sending when the server closes the connection."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n")
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of a JSON-ish body in chunked transfer encoding, then the last chunk."""
    sent = 0
    while sent < total:
        chunk = b"0," * (size // 2)
        sent += len(chunk)
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def with_api(settings: Settings, **api: object) -> Settings:
    """``settings`` with some API settings changed."""
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    parts["api"] = settings.api.model_copy(update=api)
    return Settings(**parts)


@pytest.fixture(scope="module")
def gateway_url(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def embedded_url(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        database={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}"},
        influx={"timeseries_backend": "embedded", "embedded_tsdb_path": tmp_path / "ts.db"},
        cache={"cache_backend": "memory"},
        auth={
            "auth_mode": "local",
            "oidc_issuer": "http://127.0.0.1:8080/realms/clpm",
            "local_issuer_key_path": tmp_path / "issuer.pem",
            "local_realm_file": REALM_FILE,
        },
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


# -- 1. bodies: refused with 413 before they are read ------------------------------------------


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_an_announced_large_body_is_refused_before_it_is_read(
    gateway_url: str, method: str, path: str
) -> None:
    """100 MiB announced, 16 bytes sent: the answer comes at once, the rest is never awaited."""
    started = time.monotonic()
    status = exchange(
        gateway_url,
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * MIB}",
        [b"[0,0,0,0,0,0,0,0"],
    )
    assert status == 413
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_streamed_body_is_cut_off_at_the_limit(gateway_url: str, method: str, path: str) -> None:
    """No Content-Length (chunked): counted as it arrives; unauthenticated, so without the
    limit the answer would be a 401 after reading and decoding all of it."""
    status = exchange(
        gateway_url,
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked",
        chunked(3 * MIB),
    )
    assert status == 413


def test_a_body_within_the_limit_reaches_the_route(gateway_url: str) -> None:
    body = b'{"loop_id": "X-1", "name": "x"}'
    status = exchange(
        gateway_url,
        f"POST /api/v1/loops HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close",
        [body],
    )
    assert status == 401  # read, then refused for the missing token


def test_a_malformed_content_length_is_a_400(gateway_url: str) -> None:
    status = exchange(
        gateway_url,
        "POST /api/v1/loops HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\nConnection: close",
        [],
    )
    assert status == 400


@pytest.mark.parametrize("announce", [True, False])
def test_the_local_issuer_token_endpoint_refuses_large_forms_before_reading(
    embedded_url: str, announce: bool
) -> None:
    """The issuer's forms are capped at 16 KiB (it used to read the whole body first)."""
    path = "/realms/clpm/protocol/openid-connect/token"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    )
    if announce:
        status = exchange(embedded_url, head + f"Content-Length: {100 * MIB}", [b"grant_type="])
    else:
        status = exchange(embedded_url, head + "Transfer-Encoding: chunked", chunked(MIB))
    assert status == 413


def test_the_body_limit_is_a_setting() -> None:
    assert load_settings().api.api_max_body_bytes == MIB
    small = load_settings(api={"api_max_body_bytes": 4096})
    assert small.api.api_max_body_bytes == 4096


def test_the_limit_setting_applies(settings: Settings) -> None:
    tight = with_api(settings, api_max_body_bytes=2048)
    with serve_in_thread(create_app(tight)) as url:
        status = exchange(
            url,
            "POST /api/v1/loops HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 4096\r\nConnection: close",
            [b" " * 4096],
        )
    assert status == 413


# -- 4. a NUL byte in a path (embedded default, no build needed for the API paths) --------------


def test_a_nul_byte_in_a_path_is_never_a_500(embedded_url: str) -> None:
    for path in ("/a%00b", "/api/v1/loops/a%00b", "/realms/clpm/%00"):
        status = exchange(
            embedded_url, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close", []
        )
        assert status in (401, 404), path


# -- 3. the cost of one request is bounded; a viewer cannot bypass the cache or flood -----------


@pytest.fixture(scope="module")
async def gateway_client(
    settings: Settings, seeded: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http


def ago(**span: float) -> str:
    return (datetime.now(UTC) - timedelta(**span)).isoformat()


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start": ago(seconds=99_990), "interval": "1s"}, "interval"),  # the review's request
        ({"start": ago(hours=3), "interval": "10s"}, "end"),  # raw: API_MAX_RAW_RANGE_H (2 h)
        ({"start": ago(days=63), "interval": "1m"}, "end"),  # agg_1m: 62 days
        ({"start": ago(days=4000), "interval": "1h"}, "end"),  # agg_1h: 3660 days
    ],
)
async def test_aggregated_ranges_are_bounded_per_resolution(
    gateway_client: httpx.AsyncClient, headers: H, params: dict[str, str], parameter: str
) -> None:
    answer = await gateway_client.get(
        "/api/v1/data/aggregated",
        params={"loopId": "FIC-101", **params},
        headers=headers["viewer"] | {"Cache-Control": "no-cache"},
    )
    assert answer.status_code == 422, answer.text
    assert [error["parameter"] for error in answer.json()["errors"]] == [parameter]


async def test_a_long_range_without_aggregates_does_not_scan_raw_samples(
    gateway_client: httpx.AsyncClient, headers: H
) -> None:
    """FIC-101 has raw samples but no aggregates: 60 days of minutes answer no buckets (the
    raw fallback is for ranges up to API_MAX_RAW_RANGE_H), and a 1-hour range still falls back."""
    long = await gateway_client.get(
        "/api/v1/data/aggregated",
        params={
            "loopId": "FIC-101",
            "start": "2024-11-12T00:00:00Z",
            "end": "2025-01-12T00:00:00Z",
        },
        headers=headers["viewer"],
    )
    assert long.status_code == 200
    assert long.json()["count"] == 0
    short = await gateway_client.get(
        "/api/v1/data/aggregated",
        params={
            "loopId": "FIC-101",
            "start": "2025-01-10T10:00:00Z",
            "end": "2025-01-10T11:00:00Z",
        },
        headers=headers["viewer"],
    )
    assert short.json()["source"] == "raw"
    assert short.json()["count"] == 60


async def test_only_engineers_can_bypass_the_cache(
    gateway_client: httpx.AsyncClient, headers: H, settings: Settings
) -> None:
    params = {"loopId": "TIC-205", "start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:30:00Z"}

    async def first_mean(role: str, **extra: str) -> float:
        answer = await gateway_client.get(
            "/api/v1/data/aggregated", params=params, headers=headers[role] | extra
        )
        assert answer.status_code == 200
        value: float = answer.json()["pv"][0]
        return value

    assert await first_mean("viewer") == 0.0  # computed and cached
    engine = create_engine(settings.database)
    try:
        async with engine.begin() as connection:  # changed behind the gateway's back
            await connection.execute(
                text("UPDATE agg_1m SET pv_mean = 99 WHERE loop_id = 'TIC-205' AND pv_mean = 0")
            )
        assert await first_mean("viewer", **{"Cache-Control": "no-cache"}) == 0.0
        assert await first_mean("engineer", **{"Cache-Control": "no-cache"}) == 99.0
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE agg_1m SET pv_mean = 0 WHERE loop_id = 'TIC-205' AND pv_mean = 99")
            )
        await engine.dispose()


async def test_expensive_requests_are_rate_limited_per_user(
    settings: Settings, seeded: dict[str, Any], headers: H
) -> None:
    app = create_app(with_api(settings, api_rate_limit_per_min=6, api_rate_limit_burst=3))
    params = {"loopId": "FIC-101", "start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:01:00Z"}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        statuses = [
            (await http.get("/api/v1/data/raw", params=params, headers=headers["viewer"]))
            for _ in range(4)
        ]
        assert [answer.status_code for answer in statuses] == [200, 200, 200, 429]
        refused = statuses[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 10  # 6 per minute: one every 10 s
        other_user = await http.get("/api/v1/data/raw", params=params, headers=headers["engineer"])
        assert other_user.status_code == 200
        cheap = await http.get(
            "/api/v1/data/realtime", params={"loopId": "FIC-101"}, headers=headers["viewer"]
        )
        assert cheap.status_code == 200  # only the expensive routes count


# -- 5. a validly signed token with malformed time claims is a 401, not a 500 --------------------


@pytest.mark.parametrize("exp", [None, [1], "4102444800"])
async def test_a_signed_token_with_a_malformed_exp_is_refused_with_401(
    gateway_client: httpx.AsyncClient, oidc_provider: OidcProvider, exp: object
) -> None:
    claims = jwt.get_unverified_claims(oidc_provider.password_token("admin"))
    claims["exp"] = exp
    answer = await gateway_client.get(
        "/api/v1/loops", headers={"Authorization": f"Bearer {oidc_provider.sign(claims)}"}
    )
    assert answer.status_code == 401
    assert "exp" in answer.json()["detail"]


async def test_answers_carry_nosniff_frame_protection_and_no_store(
    gateway_client: httpx.AsyncClient, headers: H
) -> None:
    for path, auth in (
        ("/api/v1/loops", headers["viewer"]),
        ("/api/v1/loops", {}),
        ("/health", {}),
    ):
        answer = await gateway_client.get(path, headers=auth)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
    api = await gateway_client.get("/api/v1/loops", headers=headers["viewer"])
    assert api.headers["cache-control"] == "no-store"
    config = await gateway_client.get("/api/v1/frontend-config")
    assert config.headers["cache-control"] == "no-cache"  # its own choice is kept


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    text = columnar_csv(
        {"name": ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-2", "FIC-101"], "v": [1.0] * 5},
        ["name", "v"],
    )
    cells = [line.split(",", 1)[0] for line in text.splitlines()[1:]]
    assert all(cell.strip('"').startswith("'") for cell in cells[:4]), cells
    assert cells[4] == "FIC-101"


def test_token_like_query_parameters_never_reach_the_access_log() -> None:
    scope = {
        "path": "/realms/clpm/protocol/openid-connect/logout",
        "query_string": b"id_token_hint=eyJhbGciOi.secret.sig&state=s1&code=abc",
    }
    line = path_and_query(scope)
    assert "eyJhbGciOi" not in line
    assert "abc" not in line
    assert "id_token_hint=***" in line
    assert "state=s1" in line


# -- 5. a forged Host never becomes a redirect target ------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/loops/", "/loops/", "/api/v1/loops/FIC-101/", "/docs/"])
def test_a_trailing_slash_does_not_redirect_to_a_forged_host(
    gateway_url: str, headers: H, path: str
) -> None:
    for auth in ({}, headers["viewer"]):
        answer = httpx.get(
            gateway_url + path,
            headers={"Host": "evil.example", **auth},
            follow_redirects=False,
        )
        assert "evil.example" not in answer.headers.get("location", ""), path
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer.headers["content-type"].startswith("application/problem+json")


# -- 5. the embedded default's SQLite files are private ----------------------------------------


def test_the_embedded_databases_are_created_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}"
    previous = os.umask(0o022)  # the usual umask: files 0644, readable by every local user
    try:
        migrate(database_url)
        settings = load_settings(
            database={"database_url": database_url},
            influx={"timeseries_backend": "embedded", "embedded_tsdb_path": tmp_path / "ts.db"},
            cache={"cache_backend": "memory"},
            auth={
                "auth_mode": "local",
                "oidc_issuer": "http://127.0.0.1:8080/realms/clpm",
                "local_issuer_key_path": tmp_path / "issuer.pem",
                "local_realm_file": REALM_FILE,
            },
        )
        with serve_in_thread(create_app(settings)) as url:
            token = httpx.post(
                f"{url}/realms/clpm/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "clpm-cli",
                    "client_secret": "clpm-cli-secret",
                    "username": "admin",
                    "password": "admin",
                },
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            created = httpx.post(f"{url}/api/v1/loops", json={"loop_id": "FIC-1"}, headers=auth)
            assert created.status_code == 201, created.text
            raw = httpx.get(
                f"{url}/api/v1/data/raw",
                params={
                    "loopId": "FIC-1",
                    "start": "2025-01-10T10:00:00Z",
                    "end": "2025-01-10T11:00:00Z",
                },
                headers=auth,
            )
            assert raw.status_code == 200, raw.text
            # while the gateway holds its connections the journal files exist
            files = {
                path.name: stat.S_IMODE(path.stat().st_mode)
                for stem in ("clpm.db", "ts.db")
                for path in tmp_path.glob(f"{stem}*")
            }
    finally:
        os.umask(previous)
    assert {"clpm.db", "clpm.db-wal", "clpm.db-shm", "ts.db", "ts.db-wal"} <= set(files), files
    assert all(mode == 0o600 for mode in files.values()), {k: oct(v) for k, v in files.items()}


# -- 5. after a key rotation the gateway's memory of accepted tokens does not outlive the key --


@pytest.fixture
def rotating_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """A provider of its own: rotating its key withdraws the key the shared one signs with."""
    server = OidcProvider("oidc-provider-rotating", free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


async def test_a_token_of_a_withdrawn_key_is_refused_at_once_after_the_rotation(
    settings: Settings, rotating_provider: OidcProvider
) -> None:
    auth = settings.auth.model_copy(
        update={
            "oidc_issuer": rotating_provider.issuer,
            "oidc_jwks_uri": rotating_provider.jwks_uri,
            "oidc_jwks_min_refresh_s": 0.0,
        }
    )
    parts = {name: getattr(settings, name) for name in Settings.__slots__}
    app = create_app(Settings(**{**parts, "auth": auth}))
    old = {"Authorization": f"Bearer {rotating_provider.password_token('viewer')}"}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        assert (await http.get("/api/v1/loops", headers=old)).status_code == 200  # remembered
        claims = jwt.get_unverified_claims(old["Authorization"].removeprefix("Bearer "))
        new_kid = rotating_provider.rotate_key()
        new_token = rotating_provider.sign(claims)
        assert jwt.get_unverified_header(new_token)["kid"] == new_kid
        new = {"Authorization": f"Bearer {new_token}"}
        # the first token of the new key makes the gateway fetch the JWKS: the old key is gone
        assert (await http.get("/api/v1/loops", headers=new)).status_code == 200
        refused = await http.get("/api/v1/loops", headers=old)
        assert refused.status_code == 401, refused.text  # not 60 s later: now
        assert (await http.get("/api/v1/loops", headers=new)).status_code == 200


# -- 5. the API documentation loads nothing from elsewhere and carries a CSP -------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_api_docs_reference_only_same_origin_assets_that_are_served(
    gateway_url: str, page: str
) -> None:
    answer = httpx.get(gateway_url + page)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"].split()[0] == "'self'"
    assert "unsafe-inline" not in directives["script-src"]
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # every inline script is allowed by its hash, nothing else
    inline = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in inline
    }
    assert set(directives["script-src"].split()[1:]) == hashes
    references = re.findall(r'(?:src|href|spec-url)="([^"]*)"', answer.text)
    references += re.findall(r"url: '([^']*)'", answer.text)  # Swagger UI's document
    if page != "/docs/oauth2-redirect":
        assert len(references) >= 2, answer.text
    for reference in references:
        assert reference.startswith("/"), reference
        assert not reference.startswith("//"), reference  # not another host
        served = httpx.get(gateway_url + reference)
        assert served.status_code == 200, reference
        assert len(served.content) > 1000, reference
