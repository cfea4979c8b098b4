"""Local token issuer of the embedded run: Keycloak's OIDC endpoints served by the gateway itself.

With ``AUTH_MODE=local`` the suite needs no Keycloak: the gateway mounts this router at the
path of ``OIDC_ISSUER`` (``/realms/clpm``) with Keycloak's endpoint paths, so the frontend and
scripts work unchanged against either:

* ``GET  /.well-known/openid-configuration`` - discovery;
* ``GET  /protocol/openid-connect/certs`` - the public key (JWKS);
* ``POST /protocol/openid-connect/token`` - ``grant_type=password`` for confidential clients
  with direct access grants (``clpm-cli``), ``authorization_code`` with PKCE S256 for public
  clients (``clpm-frontend``; PKCE is mandatory, ``plain`` refused) and ``refresh_token``
  (rotating: each refresh token is good once);
* ``GET|POST /protocol/openid-connect/auth`` - a small accessible HTML sign-in form;
* ``GET|POST /protocol/openid-connect/logout`` - ends the session (its refresh tokens);
* ``GET|POST /protocol/openid-connect/userinfo`` - claims of the bearer token's user.

Users, passwords, roles and clients come from the realm export (``LOCAL_REALM_FILE``). Tokens are
RS256 JWTs shaped like Keycloak's (``kid``, ``iss``, ``aud=clpm-api``, ``azp``, ``typ``, ``sid``,
``preferred_username``, ``realm_access.roles``, ``exp``), signed with an RSA key kept at
``LOCAL_ISSUER_KEY_PATH`` (created with mode 0600 when missing) so tokens survive a restart.
Authorization codes, sessions and refresh tokens live in memory: a restart signs everyone out.

This issuer is meant for one machine: :func:`check_local_auth_binding` refuses a non-loopback
``API_HOST`` unless ``ALLOW_NON_LOOPBACK_LOCAL_AUTH=true``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jose import jwk, jwt
from jose.exceptions import JOSEError

from clpm_api_gateway.local_realm import (
    Realm,
    RealmClient,
    RealmUser,
    load_realm,
    with_issuer_origin,
)
from clpm_shared.auth import InvalidTokenError
from clpm_shared.config import AuthMode, AuthSettings, Settings, SettingsError

logger = logging.getLogger(__name__)

CODE_TTL_S = 60.0
MAX_FORM_BYTES = 16 * 1024
MAX_PENDING = 10_000  # codes / refresh tokens kept in memory at most
LOCKOUT_FAILURES = 5  # consecutive wrong passwords before a user is locked out ...
LOCKOUT_S = 30.0  # ... for this long (the realm enables brute-force protection)
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_HTML_HEADERS = {
    **_SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


# --------------------------------------------------------------------------- binding check


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (``127.0.0.0/8``, ``::1``); names are not resolved."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_local_auth_binding(settings: Settings, host: str | None = None) -> None:
    """Refuse to serve the local issuer beyond this machine unless explicitly forced.

    ``host`` is the address the gateway binds (``API_HOST`` unless overridden on the command
    line). Raises :class:`SettingsError` with one line naming the variables.
    """
    if settings.auth.auth_mode is not AuthMode.LOCAL:
        return
    bind = settings.api.api_host if host is None else host
    if is_loopback_host(bind) or settings.auth.allow_non_loopback_local_auth:
        return
    raise SettingsError(
        [
            f"invalid configuration: API_HOST ({bind!r}): AUTH_MODE=local serves its built-in "
            "token issuer on loopback only; bind 127.0.0.1 or ::1, use AUTH_MODE=oidc with "
            "Keycloak, or set ALLOW_NON_LOOPBACK_LOCAL_AUTH=true to force it"
        ]
    )


# --------------------------------------------------------------------------- signing key


def load_or_create_signing_key(path: Path) -> str:
    """The PEM of the issuer's RSA key; a new 2048-bit key is written (0600) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            try:
                os.link(temporary, path)  # atomic; a concurrent creator's key wins
                logger.info("created the local issuer key", extra={"path": str(path)})
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        logger.warning(
            "local issuer key is readable by others; chmod 600", extra={"path": str(path)}
        )
    try:
        pem_text = path.read_text(encoding="ascii")
        serialization.load_pem_private_key(pem_text.encode(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SettingsError(
            [f"invalid configuration: LOCAL_ISSUER_KEY_PATH ({str(path)!r}): not a PEM key: {exc}"]
        ) from None
    return pem_text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA JWK (used as ``kid``)."""
    canonical = json.dumps(
        {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}, separators=(",", ":")
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def pkce_s256(verifier: str) -> str:
    """``BASE64URL(SHA256(code_verifier))`` (RFC 7636 section 4.2)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


# --------------------------------------------------------------------------- protocol state


class OAuthError(Exception):
    """An OAuth 2.0 error answer (``{"error", "error_description"}``)."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated ``/auth`` request of a public client (code flow with PKCE S256)."""

    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    scope: str
    nonce: str | None

    def hidden_fields(self) -> dict[str, str]:
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "scope": self.scope,
        }
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


@dataclass(frozen=True, slots=True)
class _CodeGrant:
    request: AuthorizationRequest
    username: str
    session_id: str
    auth_time: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class _RefreshGrant:
    client_id: str
    username: str
    session_id: str
    scope: str
    auth_time: int
    expires_at: float


@dataclass
class _Lockout:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LocalIssuer:
    """Keys, realm and in-memory grant state of the local issuer."""

    issuer: str
    audience: str
    realm: Realm
    private_pem: str = field(repr=False)
    _codes: dict[str, _CodeGrant] = field(default_factory=dict, repr=False)
    _refresh: dict[str, _RefreshGrant] = field(default_factory=dict, repr=False)
    _lockouts: dict[str, _Lockout] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        public = jwk.construct(self.private_pem, "RS256").public_key().to_dict()
        self.kid = jwk_thumbprint(public)
        self.public_jwk: dict[str, Any] = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}
        self.jwks: dict[str, Any] = {"keys": [self.public_jwk]}

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> LocalIssuer:
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            audience=settings.oidc_audience,
            realm=with_issuer_origin(load_realm(settings.local_realm_file), settings.oidc_issuer),
            private_pem=load_or_create_signing_key(settings.local_issuer_key_path),
        )

    @property
    def mount_path(self) -> str:
        return urlsplit(self.issuer).path.rstrip("/")

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("auth"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "end_session_endpoint": self.endpoint("logout"),
            "jwks_uri": self.endpoint("certs"),
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "roles"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "preferred_username",
                "email",
                "name",
                "given_name",
                "family_name",
                "realm_access",
            ],
        }

    # -- clients and users ------------------------------------------------------------

    def client(self, client_id: str | None) -> RealmClient:
        found = self.realm.clients.get(client_id or "")
        if found is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        return found

    def authenticate_client(
        self, form: Mapping[str, str], authorization: str | None
    ) -> RealmClient:
        """The calling client, from HTTP Basic or ``client_id``/``client_secret`` in the form."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
                basic_id, basic_secret = decoded.split(":", 1)
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        client = self.client(client_id)
        if client.public:
            return client
        if (
            secret is None
            or client.secret is None
            or not hmac.compare_digest(secret.encode(), client.secret.encode())
        ):
            raise OAuthError("unauthorized_client", "invalid client credentials", 401)
        return client

    def check_password(self, username: str, password: str) -> RealmUser:
        """The user if the password is right; counts failures and locks out brute force."""
        now = time.monotonic()
        lockout = self._lockouts.get(username)
        if lockout is not None and lockout.locked_until > now:
            raise OAuthError("invalid_grant", "account temporarily locked: too many attempts", 401)
        user = self.realm.users.get(username)
        expected = user.password if user is not None else secrets.token_hex(16)
        if user is None or not hmac.compare_digest(password.encode(), expected.encode()):
            if user is not None:
                lockout = self._lockouts.setdefault(username, _Lockout())
                lockout.failures += 1
                if lockout.failures >= LOCKOUT_FAILURES:
                    lockout.failures = 0
                    lockout.locked_until = now + LOCKOUT_S
                    logger.warning("user locked out after failed logins", extra={"user": username})
            raise OAuthError("invalid_grant", "Invalid user credentials", 401)
        self._lockouts.pop(username, None)
        return user

    # -- tokens -----------------------------------------------------------------------

    def subject_of(self, username: str) -> str:
        """A stable UUID per realm user (Keycloak's subjects are UUIDs too)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}/users/{username}"))

    def sign(self, claims: Mapping[str, Any]) -> str:
        token: str = jwt.encode(
            dict(claims),
            self.private_pem,
            algorithm="RS256",
            headers={"kid": self.kid, "typ": "JWT"},
        )
        return token

    def _user_claims(self, user: RealmUser) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": self.subject_of(user.username),
            "preferred_username": user.username,
            "email_verified": user.email is not None,
        }
        if user.email:
            claims["email"] = user.email
        if user.full_name:
            claims["name"] = user.full_name
        if user.first_name:
            claims["given_name"] = user.first_name
        if user.last_name:
            claims["family_name"] = user.last_name
        return claims

    def userinfo(self, username: str) -> dict[str, Any]:
        user = self.realm.users.get(username)
        if user is None:
            raise OAuthError("invalid_token", "user no longer exists", 401)
        return self._user_claims(user)

    def issue_tokens(
        self,
        client: RealmClient,
        user: RealmUser,
        *,
        scope: str,
        session_id: str,
        auth_time: int,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """Keycloak's token response: access, refresh and (with scope openid) ID token."""
        now = int(time.time())
        lifespan = self.realm.access_token_lifespan_s
        user_claims = self._user_claims(user)
        access = {
            "exp": now + lifespan,
            "iat": now,
            "auth_time": auth_time,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience,
            "typ": "Bearer",
            "azp": client.client_id,
            "sid": session_id,
            "scope": scope,
            "realm_access": {"roles": list(user.roles)},
            **user_claims,
        }
        refresh_token = secrets.token_urlsafe(32)
        self._remember_refresh(
            refresh_token,
            _RefreshGrant(
                client_id=client.client_id,
                username=user.username,
                session_id=session_id,
                scope=scope,
                auth_time=auth_time,
                expires_at=time.monotonic() + self.realm.sso_session_idle_s,
            ),
        )
        response: dict[str, Any] = {
            "access_token": self.sign(access),
            "expires_in": lifespan,
            "refresh_expires_in": self.realm.sso_session_idle_s,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session_id,
            "scope": scope,
        }
        if "openid" in scope.split():
            id_claims = {
                "exp": now + lifespan,
                "iat": now,
                "auth_time": auth_time,
                "jti": str(uuid.uuid4()),
                "iss": self.issuer,
                "aud": client.client_id,
                "typ": "ID",
                "azp": client.client_id,
                "sid": session_id,
                **user_claims,
            }
            if nonce is not None:
                id_claims["nonce"] = nonce
            response["id_token"] = self.sign(id_claims)
        return response

    def _remember_refresh(self, token: str, grant: _RefreshGrant) -> None:
        now = time.monotonic()
        for key in [k for k, v in self._refresh.items() if v.expires_at <= now]:
            del self._refresh[key]
        while len(self._refresh) >= MAX_PENDING:
            del self._refresh[next(iter(self._refresh))]
        self._refresh[token] = grant

    # -- grants -----------------------------------------------------------------------

    def password_grant(self, client: RealmClient, form: Mapping[str, str]) -> dict[str, Any]:
        if not client.direct_access_grants:
            raise OAuthError("unauthorized_client", "client not allowed direct access grants")
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise OAuthError("invalid_request", "username and password are required")
        user = self.check_password(username, password)
        scope = _scope(form.get("scope"), default="profile email")
        return self.issue_tokens(
            client, user, scope=scope, session_id=str(uuid.uuid4()), auth_time=int(time.time())
        )

    def authorization_request(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """Validate an ``/auth`` request (client, redirect URI, PKCE); raises OAuthError.

        Errors about the client or redirect URI must be shown to the user, never redirected
        (an open redirector otherwise); callers tell them apart by ``error``.
        """
        client = self.realm.clients.get(params.get("client_id", ""))
        if client is None or not client.standard_flow:
            raise OAuthError("invalid_client", "unknown client or code flow not enabled")
        redirect_uri = params.get("redirect_uri", "")
        if not client.redirect_allowed(redirect_uri):
            raise OAuthError(
                "invalid_redirect_uri",
                f"redirect_uri {redirect_uri!r} is not registered for client "
                f"{client.client_id!r}; registered: {', '.join(client.redirect_uris)}",
            )
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not re.fullmatch(
            r"[A-Za-z0-9_-]{43}", challenge
        ):
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        nonce = params.get("nonce")
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=params.get("state", ""),
            code_challenge=challenge,
            scope=_scope(params.get("scope"), default="openid"),
            nonce=nonce if nonce else None,
        )

    def issue_code(self, request: AuthorizationRequest, user: RealmUser) -> str:
        now = time.monotonic()
        for key in [k for k, v in self._codes.items() if v.expires_at <= now]:
            del self._codes[key]
        while len(self._codes) >= MAX_PENDING:
            del self._codes[next(iter(self._codes))]
        code = secrets.token_urlsafe(32)
        self._codes[code] = _CodeGrant(
            request=request,
            username=user.username,
            session_id=str(uuid.uuid4()),
            auth_time=int(time.time()),
            expires_at=now + CODE_TTL_S,
        )
        return code

    def code_grant(self, client: RealmClient, form: Mapping[str, str]) -> dict[str, Any]:
        grant = self._codes.pop(form.get("code", ""), None)  # single use
        if grant is None or grant.expires_at <= time.monotonic():
            raise OAuthError("invalid_grant", "code is invalid, expired or already used")
        if grant.request.client_id != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant.request.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER_RE.fullmatch(verifier) or not hmac.compare_digest(
            pkce_s256(verifier), grant.request.code_challenge
        ):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        user = self.realm.users.get(grant.username)
        if user is None:
            raise OAuthError("invalid_grant", "user no longer exists")
        return self.issue_tokens(
            client,
            user,
            scope=grant.request.scope,
            session_id=grant.session_id,
            auth_time=grant.auth_time,
            nonce=grant.request.nonce,
        )

    def refresh_grant(self, client: RealmClient, form: Mapping[str, str]) -> dict[str, Any]:
        grant = self._refresh.pop(form.get("refresh_token", ""), None)  # rotating: single use
        if grant is None or grant.expires_at <= time.monotonic():
            raise OAuthError("invalid_grant", "refresh token is invalid, expired or used")
        if grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "refresh token was issued to another client")
        user = self.realm.users.get(grant.username)
        if user is None:
            raise OAuthError("invalid_grant", "user no longer exists")
        return self.issue_tokens(
            client, user, scope=grant.scope, session_id=grant.session_id, auth_time=grant.auth_time
        )

    def end_session(self, session_id: str) -> int:
        """Revoke every refresh token of a session; returns how many."""
        doomed = [k for k, v in self._refresh.items() if v.session_id == session_id]
        for key in doomed:
            del self._refresh[key]
        return len(doomed)

    def session_of_refresh_token(self, token: str) -> _RefreshGrant | None:
        return self._refresh.get(token)

    def read_id_token_hint(self, hint: str) -> dict[str, Any]:
        """Claims of an ID token this issuer signed (expired ones accepted, as a logout hint)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                hint,
                self.public_jwk,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "verify_exp": False},
            )
        except JOSEError:
            raise OAuthError(
                "invalid_request", "id_token_hint is not a token of this issuer"
            ) from None
        return claims


def _scope(requested: str | None, default: str) -> str:
    allowed = {"openid", "profile", "email", "roles", "offline_access"}
    words = [w for w in (requested or default).split() if w in allowed]
    return " ".join(dict.fromkeys(words)) or default


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; OAuthError if not one, or duplicated."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "form body too large", status_code=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # counted as it arrives, never buffered past the cap
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "form body too large", status_code=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"parameter {name!r} given more than once")
        form[name] = value
    return form


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = dict(_SECURITY_HEADERS)
    if exc.status_code == 401 and exc.error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="clpm"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status_code,
        headers=headers,
    )


# --------------------------------------------------------------------------- HTML


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - CLPM</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; color: #1b1f24; margin: 0; }}
main {{ max-width: 22rem; margin: 10vh auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.2); }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin-top: 1rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem; margin-top: .3rem;
         font-size: 1rem; border: 1px solid #5f6b7a; border-radius: 4px; }}
input:focus, button:focus {{ outline: 3px solid #0b5cad; outline-offset: 1px; }}
button {{ margin-top: 1.5rem; width: 100%; padding: .65rem; font-size: 1rem; color: #fff;
          background: #0b5cad; border: 0; border-radius: 4px; cursor: pointer; }}
.error {{ color: #a4141c; background: #fdecee; padding: .6rem; border-radius: 4px; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def login_page(
    request: AuthorizationRequest, *, error: str | None = None, username: str = ""
) -> str:
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in request.hidden_fields().items()
    )
    described = ' aria-describedby="login-error" aria-invalid="true"' if error else ""
    alert = (
        f'<p class="error" id="login-error" role="alert">{html.escape(error)}</p>' if error else ""
    )
    body = f"""<h1>Sign in to CLPM</h1>
{alert}
<form method="post" novalidate>
{hidden}
<label for="username">Username or email</label>
<input id="username" name="username" type="text" autocomplete="username" required
       autocapitalize="none" spellcheck="false" value="{html.escape(username)}"{described}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
       required{described}>
<button type="submit">Sign in</button>
</form>"""
    return _PAGE.format(title="Sign in", body=body)


def message_page(title: str, message: str) -> str:
    body = f'<h1>{html.escape(title)}</h1>\n<p role="status">{html.escape(message)}</p>'
    return _PAGE.format(title=html.escape(title), body=body)


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code, headers=_HTML_HEADERS)


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    separator = "&" if urlsplit(uri).query else "?"
    return f"{uri}{separator}{urlencode(params)}"


# --------------------------------------------------------------------------- router


def _find_user_by_login(issuer: LocalIssuer, login: str) -> str:
    """Keycloak lets users sign in by username or email (loginWithEmailAllowed)."""
    if login in issuer.realm.users:
        return login
    for user in issuer.realm.users.values():
        if user.email and user.email.lower() == login.lower():
            return user.username
    return login


def local_issuer_router(issuer: LocalIssuer) -> APIRouter:
    """Keycloak-path OIDC endpoints of ``issuer``, mounted at the issuer URL's path."""
    router = APIRouter(prefix=issuer.mount_path, include_in_schema=False)

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> JSONResponse:
        return JSONResponse(issuer.discovery())

    @router.get("/protocol/openid-connect/certs")
    async def certs() -> JSONResponse:
        return JSONResponse(issuer.jwks)

    @router.post("/protocol/openid-connect/token")
    async def token(request: Request) -> Response:
        try:
            form = await read_form(request)
            client = issuer.authenticate_client(form, request.headers.get("authorization"))
            grant_type = form.get("grant_type")
            if grant_type == "password":
                tokens = issuer.password_grant(client, form)
            elif grant_type == "authorization_code":
                tokens = issuer.code_grant(client, form)
            elif grant_type == "refresh_token":
                tokens = issuer.refresh_grant(client, form)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse(tokens, headers=_SECURITY_HEADERS)

    @router.get("/protocol/openid-connect/auth")
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            auth_request = issuer.authorization_request(params)
        except OAuthError as exc:
            return _authorization_error(exc, params)
        return _html(login_page(auth_request))

    @router.post("/protocol/openid-connect/auth")
    async def sign_in(request: Request) -> Response:
        try:
            form = await read_form(request)
        except OAuthError as exc:
            return _html(message_page("Sign-in failed", exc.description), 400)
        try:
            auth_request = issuer.authorization_request(form)
        except OAuthError as exc:
            return _authorization_error(exc, form)
        login = form.get("username", "").strip()
        try:
            user = issuer.check_password(
                _find_user_by_login(issuer, login), form.get("password", "")
            )
        except OAuthError as exc:
            message = (
                exc.description if "locked" in exc.description else "Invalid username or password."
            )
            return _html(login_page(auth_request, error=message, username=login), 401)
        code = issuer.issue_code(auth_request, user)
        target = _with_query(
            auth_request.redirect_uri,
            {"state": auth_request.state, "code": code, "iss": issuer.issuer},
        )
        return RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)

    async def logout(request: Request) -> Response:
        params: dict[str, str] = dict(request.query_params)
        try:
            if request.method == "POST":
                params.update(await read_form(request))
            client_id = params.get("client_id")
            session_id: str | None = None
            if hint := params.get("id_token_hint"):
                claims = issuer.read_id_token_hint(hint)
                session_id = claims.get("sid")
                client_id = client_id or claims.get("azp")
            if refresh := params.get("refresh_token"):
                grant = issuer.session_of_refresh_token(refresh)
                if grant is not None:
                    client = issuer.authenticate_client(
                        {**params, "client_id": client_id or grant.client_id},
                        request.headers.get("authorization"),
                    )
                    if client.client_id == grant.client_id:
                        session_id = grant.session_id
            if session_id is not None:
                issuer.end_session(session_id)
            redirect = params.get("post_logout_redirect_uri")
            if redirect:
                client = issuer.client(client_id)
                if not client.post_logout_redirect_allowed(redirect):
                    raise OAuthError(
                        "invalid_request",
                        f"post_logout_redirect_uri {redirect!r} is not registered",
                    )
                state = params.get("state")
                target = _with_query(redirect, {"state": state}) if state else redirect
                return RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)
        except OAuthError as exc:
            if request.method == "POST" and "refresh_token" in params:
                return _oauth_error(exc)
            return _html(message_page("Sign-out failed", exc.description), 400)
        if request.method == "POST" and "refresh_token" in params:
            return Response(status_code=204, headers=_SECURITY_HEADERS)
        return _html(message_page("Signed out", "You are signed out of CLPM."))

    router.add_api_route(
        "/protocol/openid-connect/logout", logout, methods=["GET", "POST"], response_model=None
    )

    async def userinfo(request: Request) -> Response:
        from clpm_api_gateway.security import token_validator  # noqa: PLC0415

        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        challenge = 'Bearer realm="clpm"'
        if scheme.lower() != "bearer" or not credentials.strip():
            return JSONResponse(
                {"error": "invalid_request", "error_description": "bearer token required"},
                status_code=401,
                headers={**_SECURITY_HEADERS, "WWW-Authenticate": challenge},
            )
        try:
            principal = await token_validator(request).validate(credentials.strip())
            claims = issuer.userinfo(principal.username)
        except (InvalidTokenError, OAuthError) as exc:
            return JSONResponse(
                {"error": "invalid_token", "error_description": str(exc)},
                status_code=401,
                headers={
                    **_SECURITY_HEADERS,
                    "WWW-Authenticate": f'{challenge}, error="invalid_token"',
                },
            )
        return JSONResponse(claims, headers=_SECURITY_HEADERS)

    router.add_api_route(
        "/protocol/openid-connect/userinfo", userinfo, methods=["GET", "POST"], response_model=None
    )
    return router


def _authorization_error(exc: OAuthError, params: Mapping[str, str]) -> Response:
    """Redirect errors back to the client only when client and redirect URI are trusted."""
    if exc.error in ("invalid_client", "invalid_redirect_uri"):
        return _html(message_page("Cannot sign in", exc.description), 400)
    target = _with_query(
        params["redirect_uri"],
        {
            "error": exc.error,
            "error_description": exc.description,
            "state": params.get("state", ""),
        },
    )
    return RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)


__all__ = [
    "AuthorizationRequest",
    "LocalIssuer",
    "OAuthError",
    "check_local_auth_binding",
    "is_loopback_host",
    "jwk_thumbprint",
    "load_or_create_signing_key",
    "local_issuer_router",
    "pkce_s256",
]
