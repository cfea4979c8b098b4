"""The realm served by the local issuer: users, passwords, roles and clients from a Keycloak export.

The embedded run reads the same ``clpm-realm.json`` that Keycloak imports in the docker
deployment (``LOCAL_REALM_FILE``), so both offer the same users, roles and clients. Only the
parts the local issuer uses are read: realm name and token lifespans, enabled users with their
password credential and realm roles, and clients (public or confidential, which grants they
enable, redirect URI patterns).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clpm_shared.config import SettingsError


@dataclass(frozen=True, slots=True)
class RealmUser:
    """A user who may sign in, with the realm roles their tokens carry."""

    username: str
    password: str
    roles: tuple[str, ...]
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True, slots=True)
class RealmClient:
    """An OAuth client of the realm: public (browser, PKCE) or confidential (with a secret)."""

    client_id: str
    public: bool
    secret: str | None
    standard_flow: bool  # authorization code (+ refresh token)
    direct_access_grants: bool  # grant_type=password
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]

    def redirect_allowed(self, uri: str) -> bool:
        """Keycloak's matching: exact, or prefix when the registered pattern ends with ``*``."""
        return _matches(uri, self.redirect_uris)

    def post_logout_redirect_allowed(self, uri: str) -> bool:
        return _matches(uri, self.post_logout_redirect_uris)


@dataclass(frozen=True, slots=True)
class Realm:
    name: str
    access_token_lifespan_s: int
    sso_session_idle_s: int
    users: Mapping[str, RealmUser]
    clients: Mapping[str, RealmClient]


def _matches(uri: str, patterns: tuple[str, ...]) -> bool:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return False
    for pattern in patterns:
        if pattern.endswith("*"):
            if uri.startswith(pattern[:-1]):
                return True
        elif uri == pattern:
            return True
    return False


def _client(entry: Mapping[str, Any]) -> RealmClient:
    redirects = tuple(str(uri) for uri in entry.get("redirectUris", []))
    attributes = entry.get("attributes", {}) or {}
    logout = str(attributes.get("post.logout.redirect.uris", "") or "")
    post_logout = redirects if logout.strip() == "+" else tuple(u for u in logout.split("##") if u)
    return RealmClient(
        client_id=str(entry["clientId"]),
        public=bool(entry.get("publicClient", False)),
        secret=str(entry["secret"]) if entry.get("secret") else None,
        standard_flow=bool(entry.get("standardFlowEnabled", True)),
        direct_access_grants=bool(entry.get("directAccessGrantsEnabled", False)),
        redirect_uris=redirects,
        post_logout_redirect_uris=post_logout,
    )


def _user(entry: Mapping[str, Any]) -> RealmUser | None:
    credentials = entry.get("credentials", []) or []
    password = next((c.get("value") for c in credentials if c.get("type") == "password"), None)
    if not password:
        return None  # no password credential: cannot sign in here
    return RealmUser(
        username=str(entry["username"]),
        password=str(password),
        roles=tuple(str(role) for role in entry.get("realmRoles", []) or []),
        email=entry.get("email"),
        first_name=entry.get("firstName"),
        last_name=entry.get("lastName"),
    )


def load_realm(path: Path) -> Realm:
    """Read a Keycloak realm export; :class:`SettingsError` naming ``LOCAL_REALM_FILE`` if bad."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        users = {}
        for entry in data.get("users", []):
            user = _user(entry) if entry.get("enabled", True) else None
            if user is not None:
                users[user.username] = user
        clients = {
            str(entry["clientId"]): _client(entry)
            for entry in data.get("clients", [])
            if entry.get("enabled", True) and not entry.get("bearerOnly", False)
        }
        return Realm(
            name=str(data["realm"]),
            access_token_lifespan_s=int(data.get("accessTokenLifespan", 300)),
            sso_session_idle_s=int(data.get("ssoSessionIdleTimeout", 1800)),
            users=users,
            clients=clients,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SettingsError(
            [
                f"invalid configuration: LOCAL_REALM_FILE ({str(path)!r}): "
                f"{type(exc).__name__}: {exc}"
            ]
        ) from None


__all__ = ["Realm", "RealmClient", "RealmUser", "load_realm"]


def _origins_of(issuer: str) -> tuple[str, ...]:
    """The issuer's origin, and on loopback the same port under the other loopback name."""
    parts = urlsplit(issuer)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    aliases = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname in aliases:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{aliases[parts.hostname]}{port}")
    return tuple(origins)


def with_issuer_origin(realm: Realm, issuer: str) -> Realm:
    """The realm with the issuer's own origin registered for its browser clients.

    In the embedded run the gateway serves the web front from the issuer's origin, on whatever
    ``API_PORT`` it was given; the realm file lists only the default ports. Public clients of
    the code flow accept ``<origin>/*`` as redirect and post-logout URIs too.
    """
    patterns = tuple(f"{origin}/*" for origin in _origins_of(issuer))
    clients = {}
    for client_id, client in realm.clients.items():
        clients[client_id] = client
        if client.public and client.standard_flow:
            clients[client_id] = replace(
                client,
                redirect_uris=tuple(dict.fromkeys((*client.redirect_uris, *patterns))),
                post_logout_redirect_uris=tuple(
                    dict.fromkeys((*client.post_logout_redirect_uris, *patterns))
                ),
            )
    return replace(realm, clients=clients)
