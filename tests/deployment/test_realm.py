"""deploy/keycloak/clpm-realm.json: what Keycloak imports and what the test provider serves."""

from __future__ import annotations

from typing import Any

import pytest
from jose import jwt

from clpm_shared.config import load_settings
from tests.harness.servers import OidcProvider, load_realm

USERS = {
    "viewer": {"viewer"},
    "engineer": {"viewer", "engineer"},
    "admin": {"viewer", "engineer", "admin"},
    "norole": set(),
}


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    return load_realm()


def _clients(realm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {client["clientId"]: client for client in realm["clients"]}


def _mappers(realm: dict[str, Any], scope: str) -> dict[str, dict[str, Any]]:
    scopes = {s["name"]: s for s in realm["clientScopes"]}
    return {m["protocolMapper"]: m for m in scopes[scope]["protocolMappers"]}


def test_realm_roles_and_users(realm: dict[str, Any]) -> None:
    assert realm["realm"] == "clpm"
    assert realm["enabled"] is True
    assert {role["name"] for role in realm["roles"]["realm"]} == {"viewer", "engineer", "admin"}
    users = {user["username"]: user for user in realm["users"]}
    assert set(users) == set(USERS)
    for name, roles in USERS.items():
        assert set(users[name]["realmRoles"]) == roles
        passwords = [c for c in users[name]["credentials"] if c["type"] == "password"]
        assert passwords == [{"type": "password", "value": name, "temporary": False}]


def test_clients_for_the_api_the_browser_and_scripts(realm: dict[str, Any]) -> None:
    settings = load_settings()
    clients = _clients(realm)
    api = clients[settings.auth.oidc_audience]
    assert api["bearerOnly"] is True
    frontend = clients[settings.auth.oidc_frontend_client_id]
    assert frontend["publicClient"] is True
    assert frontend["standardFlowEnabled"] is True
    assert frontend["implicitFlowEnabled"] is False
    assert frontend["attributes"]["pkce.code.challenge.method"] == "S256"
    # the app through nginx (:80) and the Vite dev server (:5173) of the compose stacks
    assert {"http://localhost/*", "http://localhost:5173/*"} <= set(frontend["redirectUris"])
    cli = clients["clpm-cli"]
    assert cli["directAccessGrantsEnabled"] is True
    assert cli["secret"] == "clpm-cli-secret"


def test_keycloak_tokens_carry_what_the_gateway_checks(realm: dict[str, Any]) -> None:
    """An import that declares clientScopes gets none of Keycloak's built-in ones, so every
    scope a client uses must be declared here, with the mappers of sub, roles and audience."""
    declared = {scope["name"] for scope in realm["clientScopes"]}
    for client in realm["clients"]:
        missing = set(client.get("defaultClientScopes", [])) - declared
        assert not missing, f"{client['clientId']} uses undeclared scopes {missing}"
    assert set(realm["defaultDefaultClientScopes"]) <= declared
    roles = _mappers(realm, "roles")["oidc-usermodel-realm-role-mapper"]["config"]
    assert roles["claim.name"] == "realm_access.roles"
    assert roles["multivalued"] == "true"
    assert roles["access.token.claim"] == "true"
    assert _mappers(realm, "basic")["oidc-sub-mapper"]["config"]["access.token.claim"] == "true"
    profile = next(s for s in realm["clientScopes"] if s["name"] == "profile")
    claims = {m["config"].get("claim.name") for m in profile["protocolMappers"]}
    assert "preferred_username" in claims
    audience = _mappers(realm, "clpm-api-audience")["oidc-audience-mapper"]["config"]
    assert audience["included.client.audience"] == load_settings().auth.oidc_audience
    assert audience["access.token.claim"] == "true"
    for name in ("clpm-frontend", "clpm-cli"):
        scopes = set(_clients(realm)[name]["defaultClientScopes"])
        assert {"basic", "roles", "clpm-api-audience"} <= scopes, name


@pytest.mark.integration
def test_the_test_provider_serves_the_same_users_and_roles(oidc_provider: OidcProvider) -> None:
    for username, roles in USERS.items():
        claims = jwt.get_unverified_claims(oidc_provider.password_token(username))
        assert claims["preferred_username"] == username
        assert set(claims["realm_access"]["roles"]) == roles
        assert claims["aud"] == "clpm-api"
