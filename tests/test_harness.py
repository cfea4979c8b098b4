"""Each real server of the test harness starts and really serves."""

from __future__ import annotations

import json
import urllib.request

import asyncpg
import redis
from jose import jwt

from tests.harness.servers import (
    InfluxServer,
    OidcProvider,
    PostgresServer,
    RedisServer,
    load_realm,
)


async def test_postgres_serves_a_migrated_database(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            )
        }
        assert {"loops", "agg_1m", "kpi_results"} <= tables
        assert await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()


def test_postgres_can_be_stopped_and_started_again(postgres_server: PostgresServer) -> None:
    postgres_server.stop()
    assert not postgres_server.running
    postgres_server.start()
    assert postgres_server.psql("SELECT 40 + 2") == "42"


def test_redis_answers_set_and_get(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("clpm:harness", "ok")
        assert client.get("clpm:harness") == b"ok"
    finally:
        client.close()


def test_influxd_writes_and_reads_line_protocol(
    influx_server: InfluxServer, influx_database: str
) -> None:
    line = b"control_loops,loop_id=TIC1,Mode=AUT PV=1.5,SP=2,OP=40 1700000000000000000"
    request = urllib.request.Request(f"{influx_server.url}/write?db={influx_database}", data=line)
    with urllib.request.urlopen(request) as response:
        assert response.status == 204
    result = influx_server.query('SELECT "PV" FROM control_loops', influx_database)
    assert result["results"][0]["series"][0]["values"] == [[1700000000000000000, 1.5]]


def test_oidc_provider_issues_keycloak_shaped_tokens(oidc_provider: OidcProvider) -> None:
    with urllib.request.urlopen(oidc_provider.discovery_url) as response:
        discovery = json.load(response)
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["jwks_uri"].endswith("/realms/clpm/protocol/openid-connect/certs")
    assert discovery["token_endpoint"].endswith("/realms/clpm/protocol/openid-connect/token")
    with urllib.request.urlopen(discovery["jwks_uri"]) as response:
        jwks = json.load(response)
    token = oidc_provider.password_token("engineer")
    assert jwt.get_unverified_header(token)["kid"] == jwks["keys"][0]["kid"]
    claims = jwt.decode(
        token, jwks, algorithms=["RS256"], audience="clpm-api", issuer=oidc_provider.issuer
    )
    assert claims["preferred_username"] == "engineer"
    assert sorted(claims["realm_access"]["roles"]) == ["engineer", "viewer"]
    assert claims["azp"] == "clpm-cli"


def test_oidc_provider_users_and_roles_come_from_the_deployment_realm(
    oidc_provider: OidcProvider,
) -> None:
    realm = load_realm()
    for user in realm["users"]:
        token = oidc_provider.password_token(user["username"])
        roles = jwt.get_unverified_claims(token)["realm_access"]["roles"]
        assert sorted(roles) == sorted(user["realmRoles"])
