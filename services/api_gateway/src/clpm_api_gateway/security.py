"""Authentication and role checks of the gateway: FastAPI dependencies over clpm_shared.auth.

Use in endpoints::

    from clpm_api_gateway.security import CurrentPrincipal, require_role, EngineerPrincipal

    @router.get("/loops")
    async def list_loops(principal: ViewerPrincipal) -> ...:          # viewer or higher
        ...

    @router.put("/loops/{loop_id}/config", dependencies=[Depends(require_role("engineer"))])
    async def update_config(...) -> ...:
        ...

Roles are ordered ``viewer`` < ``engineer`` < ``admin`` (an admin passes every check).
Answers (RFC 6750):

* no or malformed ``Authorization`` header, or an invalid/expired/forged token
  -> **401** with ``WWW-Authenticate: Bearer realm="clpm"`` (plus ``error="invalid_token"`` and
  a description when a token was presented);
* valid token without the role -> **403** with ``WWW-Authenticate: Bearer
  error="insufficient_scope"``;
* identity provider unreachable, so the signing keys cannot be fetched -> **503** with
  ``Retry-After``.

They are raised as :class:`fastapi.HTTPException` with those headers; an application-wide
exception handler may reshape the body (problem details) but must keep ``exc.headers``.
:data:`AUTH_RESPONSES` documents them in OpenAPI (``APIRouter(responses=AUTH_RESPONSES)``).

Wiring (done in :func:`clpm_api_gateway.app.create_app`): :func:`mount_security` mounts the
local issuer's routes when ``AUTH_MODE=local``, and :func:`security_lifespan`, entered in the
app's lifespan, puts a :class:`~clpm_shared.auth.TokenValidator` on ``app.state.token_validator``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clpm_shared.auth import (
    IdentityProviderUnavailableError,
    InvalidTokenError,
    Principal,
    Role,
    StaticKeySource,
    TokenValidator,
)
from clpm_shared.config import AuthMode, Settings

REALM = "clpm"

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name="bearer",
    description="Access token from the CLPM realm (Keycloak, or the local issuer in the "
    "embedded run); audience clpm-api.",
)

UPLOAD_PATH = "/loops/import"
"""The route of historian uploads, which has its own body limit."""


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def unauthorized(description: str | None = None) -> HTTPException:
    """A 401 with the RFC 6750 challenge (``error=invalid_token`` when a token was given)."""
    challenge = f'Bearer realm="{REALM}"'
    if description is not None:
        challenge += f', error="invalid_token", error_description="{_quoted(description)}"'
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=description or "authentication required: send 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": challenge},
    )


def forbidden(required: Role) -> HTTPException:
    """A 403 for an authenticated caller who lacks ``required``."""
    description = f"requires role {required.value} or higher"
    return HTTPException(
        status_code=status.HTTP_403_FORBIDDEN,
        detail=description,
        headers={
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
            f'error_description="{description}"'
        },
    )


def provider_unavailable(exc: IdentityProviderUnavailableError) -> HTTPException:
    """A 503 telling the client when to retry."""
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="identity provider unavailable: cannot verify the token now",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def token_validator(request: Request) -> TokenValidator:
    """The validator that :func:`security_lifespan` put on the app state."""
    validator = getattr(request.app.state, "token_validator", None)
    if not isinstance(validator, TokenValidator):
        raise RuntimeError("security_lifespan() was not entered in the app's lifespan")
    return validator


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """FastAPI dependency: the caller of a request with a valid bearer token, else 401/503."""
    if credentials is None or not credentials.credentials:
        raise unauthorized()
    try:
        principal = await token_validator(request).validate(credentials.credentials)
    except InvalidTokenError as exc:
        raise unauthorized(str(exc)) from None
    except IdentityProviderUnavailableError as exc:
        raise provider_unavailable(exc) from None
    request.state.principal = principal  # for access logs and auditing
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
"""Any authenticated caller (roles not checked)."""


def require_role(role: Role | str) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency factory: the caller, if they hold ``role`` or a higher one (else 403)."""
    required = Role(role)

    async def check_role(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(required):
            raise forbidden(required)
        return principal

    check_role.__name__ = f"require_{required.value}"
    return check_role


ViewerPrincipal = Annotated[Principal, Depends(require_role(Role.VIEWER))]
EngineerPrincipal = Annotated[Principal, Depends(require_role(Role.ENGINEER))]
AdminPrincipal = Annotated[Principal, Depends(require_role(Role.ADMIN))]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or expired bearer token (see WWW-Authenticate)"},
    403: {"description": "Authenticated, but the role is insufficient"},
    503: {"description": "Identity provider unavailable; retry after Retry-After seconds"},
}


def mount_security(app: FastAPI, settings: Settings) -> None:
    """Mount the local issuer's Keycloak-shaped routes when ``AUTH_MODE=local``."""
    if settings.auth.auth_mode is AuthMode.LOCAL:
        from clpm_api_gateway.local_issuer import LocalIssuer, local_issuer_router  # noqa: PLC0415

        issuer = LocalIssuer.from_settings(settings.auth)
        app.state.local_issuer = issuer
        app.include_router(local_issuer_router(issuer))


def body_limits_of(app: FastAPI, settings: Settings) -> tuple[tuple[str, int], ...]:
    """Path prefixes with their own body limit instead of ``API_MAX_BODY_BYTES``: the issuer's
    forms (smaller) and the historian upload ``/loops/import`` (``API_MAX_UPLOAD_BYTES``)."""
    prefix = settings.api.api_prefix.rstrip("/")
    upload = settings.api.api_max_upload_bytes
    limits: list[tuple[str, int]] = [(f"{prefix}{UPLOAD_PATH}", upload), (UPLOAD_PATH, upload)]
    local = getattr(app.state, "local_issuer", None)
    if local is not None:
        from clpm_api_gateway.local_issuer import MAX_FORM_BYTES  # noqa: PLC0415

        limit = min(MAX_FORM_BYTES, settings.api.api_max_body_bytes)
        limits.append((local.mount_path.rstrip("/") + "/", limit))
    return tuple(limits)


@asynccontextmanager
async def security_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[TokenValidator]:
    """Create the token validator on ``app.state.token_validator``; close it on shutdown."""
    local = getattr(app.state, "local_issuer", None)
    if settings.auth.auth_mode is AuthMode.LOCAL and local is not None:
        validator = TokenValidator(settings.auth, StaticKeySource(local.jwks))
    else:
        validator = TokenValidator.for_oidc(settings.auth)
    app.state.token_validator = validator
    try:
        yield validator
    finally:
        await validator.aclose()


__all__ = [
    "AUTH_RESPONSES",
    "AdminPrincipal",
    "CurrentPrincipal",
    "EngineerPrincipal",
    "Principal",
    "Role",
    "ViewerPrincipal",
    "bearer_scheme",
    "body_limits_of",
    "current_principal",
    "mount_security",
    "require_role",
    "security_lifespan",
]
