"""The API documentation pages (``/docs``, ``/redoc``) with their scripts served by the service.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: blank on a machine without internet,
and a third party's script running next to the user's bearer token. Here the pages reference
only this origin: the assets ship in the ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2,
without source maps; one Python dependency pinned in ``uv.lock``, so they are there wherever a
service is installed, with or without a Node build) and are served under ``/docs/assets/``.
Each page carries a Content-Security-Policy: scripts from this origin plus, by hash, the page's
own inline start-up script; requests only to this origin; no framing.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_assets() -> Path:
    """The directory of the packaged Swagger UI and ReDoc files."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def docs_csp(html: str) -> str:
    """The pages' policy; the page's inline scripts are allowed by their SHA-256 only.

    Styles may be inline: ReDoc and Swagger UI set them at run time. ReDoc's search index runs
    in a worker it creates from a ``blob:`` URL.
    """
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": docs_csp(html)})


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (create the app with both URLs ``None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_PATH, StaticFiles(directory=docs_assets()), name="docs-assets")

    def root_of(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_of(request)
        return _with_csp(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                # no badge image from the public validator service
                swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
            )
        )

    async def oauth2_redirect() -> HTMLResponse:
        return _with_csp(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = root_of(request)
        return _with_csp(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )

    for path, endpoint in (
        (DOCS_PATH, swagger_ui),
        (OAUTH2_REDIRECT_PATH, oauth2_redirect),
        (REDOC_PATH, redoc),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)


__all__ = ["docs_assets", "docs_csp", "install_api_docs"]
