"""The web front in the gateway: its runtime configuration and, when built, its files.

* ``GET {API_PREFIX}/frontend-config`` (no auth) tells the single-page app where to sign in:
  the OIDC issuer (``OIDC_ISSUER``; Keycloak, or this gateway with ``AUTH_MODE=local``), the
  public client (``OIDC_FRONTEND_CLIENT_ID``) and the API base path. One build of the app thus
  works behind nginx (docker), the Vite dev server and the gateway alike.
* With ``FRONTEND_DIST`` pointing at a Vite build (``frontend/dist``, the embedded run), the
  gateway serves it: files by their path (``/assets/*`` cached for good, their names carry a
  content hash) and ``index.html`` for every other ``GET`` that no API route answered, so that
  client-side routes such as ``/fleet/loops/FIC-101`` survive a reload. Paths under the API
  prefix and the issuer's ``/realms/`` never fall back to the app (they answer 404). Source
  maps (``*.map``) are never served (they would publish the app's sources); every file carries
  a Content-Security-Policy (:func:`frontend_csp`): scripts only from this origin, requests only
  to this origin and the OIDC issuer, no framing.

:func:`install_frontend` must run after every API router is included: its catch-all route
only sees what they do not answer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from clpm_shared.config import Settings
from clpm_shared.web.problems import TYPE_NOT_FOUND, problem_response

logger = logging.getLogger("clpm_api_gateway.frontend_hosting")

OIDC_SCOPE = "openid profile email"
_RESERVED_PREFIXES = ("realms/", "docs", "redoc", "openapi.json")
_IMMUTABLE = "public, max-age=31536000, immutable"


class FrontendConfig(BaseModel):
    """What the web front needs to know at run time."""

    oidc_issuer: str = Field(examples=["http://127.0.0.1:8080/realms/clpm"])
    oidc_client_id: str = Field(examples=["clpm-frontend"])
    oidc_scope: str = Field(examples=[OIDC_SCOPE])
    api_base_url: str = Field(examples=["/api/v1"])
    auth_mode: str = Field(examples=["local"], description="local (built-in issuer) or oidc")


def frontend_config_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["operations"])
    config = FrontendConfig(
        oidc_issuer=settings.auth.oidc_issuer.rstrip("/"),
        oidc_client_id=settings.auth.oidc_frontend_client_id,
        oidc_scope=OIDC_SCOPE,
        api_base_url=settings.api.api_prefix.rstrip("/"),
        auth_mode=settings.auth.auth_mode.value,
    )

    @router.get(
        "/frontend-config",
        summary="Sign-in settings of the web front (public)",
        response_model=FrontendConfig,
    )
    async def frontend_config(response: Response) -> FrontendConfig:
        response.headers["Cache-Control"] = "no-cache"
        return config

    return router


def frontend_csp(settings: Settings) -> str:
    """The app's Content-Security-Policy: its own scripts only; fetches to itself and the issuer.

    Styles may be inline (uPlot and React set style attributes); the issuer's origin is needed
    for the token requests of the sign-in (PKCE) and as the target of its sign-in form.
    """
    issuer = urlsplit(settings.auth.oidc_issuer)
    origin = f" {issuer.scheme}://{issuer.netloc}" if issuer.scheme and issuer.netloc else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src 'self'{origin}; object-src 'none'; "
        f"base-uri 'self'; form-action 'self'{origin}; frame-ancestors 'none'"
    )


def built_frontend(settings: Settings) -> Path | None:
    """The build directory if ``FRONTEND_DIST`` is set and holds an ``index.html``."""
    dist = settings.api.frontend_dist
    if dist is None:
        return None
    if not (dist / "index.html").is_file():
        logger.warning(
            "FRONTEND_DIST has no index.html: the web front is not served "
            "(build it with `npm run build` in frontend/)",
            extra={"path": str(dist)},
        )
        return None
    return dist.resolve()


def install_frontend(app: FastAPI, settings: Settings) -> None:
    """Add the configuration route, and the built app's files when there is a build."""
    prefix = settings.api.api_prefix.rstrip("/")
    app.include_router(frontend_config_router(settings), prefix=prefix)
    dist = built_frontend(settings)
    if dist is None:
        return
    reserved = (prefix.lstrip("/") + "/", *_RESERVED_PREFIXES) if prefix else _RESERVED_PREFIXES
    index = dist / "index.html"
    csp = frontend_csp(settings)
    no_cache = {"Cache-Control": "no-cache", "Content-Security-Policy": csp}

    async def serve_frontend(request: Request, path: str) -> Response:
        if path.startswith(reserved) or path == prefix.lstrip("/"):
            return problem_response(
                request, 404, f"no route {request.url.path}", type_=TYPE_NOT_FOUND
            )
        if "\x00" in path:  # no file name holds a NUL (resolve() would raise ValueError)
            return problem_response(request, 404, "no such file", type_=TYPE_NOT_FOUND)
        if path.lower().endswith(".map"):  # source maps publish the sources
            return problem_response(request, 404, "no such file", type_=TYPE_NOT_FOUND)
        if path:
            candidate = (dist / path).resolve()
            if candidate.is_relative_to(dist) and candidate.is_file():
                cache = _IMMUTABLE if path.startswith("assets/") else "no-cache"
                headers = {"Cache-Control": cache, "Content-Security-Policy": csp}
                return FileResponse(candidate, headers=headers)
            if path.startswith("assets/"):
                return problem_response(
                    request, 404, f"no file {request.url.path}", type_=TYPE_NOT_FOUND
                )
        return FileResponse(index, headers=no_cache)

    app.add_api_route(
        "/{path:path}",
        serve_frontend,
        methods=["GET", "HEAD"],
        include_in_schema=False,
        response_model=None,
    )
