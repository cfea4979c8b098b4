"""deploy/nginx/default.conf served by a real nginx: app shell, assets, and the API proxy.

The configuration is rendered the way the nginx image's entrypoint does (the CLPM_* variables
substituted), with two test-only changes: it listens on a free loopback port instead of 8080,
and serves a small stand-in of the Vite build output instead of /usr/share/nginx/html.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clpm_api_gateway.frontend_hosting import frontend_csp
from clpm_shared.config import load_settings
from tests.deployment.compose_engine import REPO_ROOT
from tests.harness.servers import free_port, require_binary, wait_for

TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "default.conf"
INDEX = "<!doctype html><title>CLPM</title><div id=root></div>"
OIDC_ORIGIN = "https://sso.plant.example:8443"


class _GatewayHandler(BaseHTTPRequestHandler):
    """Answers every request with what it received, like an API that echoes."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "path": self.path,
                "forwarded_for": self.headers.get("X-Forwarded-For"),
                "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "host": self.headers.get("Host"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Frontend:
    url: str
    gateway: ThreadingHTTPServer

    def get(self, path: str) -> Response:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return Response(
                    response.status, dict(response.headers.items()), response.read().decode()
                )
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers.items()), error.read().decode())


def render_template(gateway: str, resolver: str) -> str:
    """What the image's 20-envsubst-on-templates.sh makes of the template (CLPM_* only)."""
    text = TEMPLATE.read_text()
    return (
        text.replace("${CLPM_API_UPSTREAM}", gateway)
        .replace("${CLPM_DNS_RESOLVER}", resolver)
        .replace("${CLPM_OIDC_ORIGIN}", OIDC_ORIGIN)
    )


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frontend]:
    nginx = require_binary("nginx", "nginx-light")
    root = tmp_path_factory.mktemp("nginx")
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-4f2a9c.js").write_text("console.log('clpm');")
    gateway = ThreadingHTTPServer(("127.0.0.1", free_port()), _GatewayHandler)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    port = free_port()
    server = render_template(f"127.0.0.1:{gateway.server_address[1]}", "127.0.0.1")
    server = server.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    server = server.replace("root /usr/share/nginx/html;", f"root {dist};")
    (root / "default.conf").write_text(server)
    temp = root / "temp"
    temp.mkdir()
    (root / "nginx.conf").write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {root}/default.conf;
}}
"""
    )
    syntax = subprocess.run(
        [nginx, "-t", "-p", str(root), "-c", str(root / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert syntax.returncode == 0, syntax.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(root), "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    front = Frontend(f"http://127.0.0.1:{port}", gateway)
    try:

        def answers() -> None:
            assert front.get("/healthz").status == 200

        wait_for(answers, process, timeout=20)
        yield front
    finally:
        process.terminate()
        process.wait(10)
        gateway.shutdown()
        gateway.server_close()


def test_health_endpoint_of_nginx_itself(frontend: Frontend) -> None:
    response = frontend.get("/healthz")
    assert response.status == 200
    assert response.body == "ok\n"


def test_client_side_routes_get_the_uncached_app_shell(frontend: Frontend) -> None:
    for path in ("/", "/loops/FIC-101", "/fleet?sort=health"):
        response = frontend.get(path)
        assert response.status == 200, path
        assert response.body == INDEX, path
        assert response.headers["Cache-Control"] == "no-cache", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        header = response.headers["Content-Security-Policy"]
        policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
        assert policy["script-src"] == "'self'", path  # no inline or foreign script
        assert policy["connect-src"] == f"'self' {OIDC_ORIGIN}", path  # the sign-in's token calls
        assert policy["form-action"] == f"'self' {OIDC_ORIGIN}", path
        assert policy["frame-ancestors"] == "'none'", path


def test_the_app_shell_policy_is_the_gateways_own(frontend: Frontend) -> None:
    """nginx and the gateway serve the same app, so they send the same policy (no drift)."""
    settings = load_settings(auth={"oidc_issuer": f"{OIDC_ORIGIN}/realms/clpm"})
    assert frontend.get("/").headers["Content-Security-Policy"] == frontend_csp(settings)


def test_hashed_assets_are_cached_for_good_and_missing_ones_are_404(frontend: Frontend) -> None:
    asset = frontend.get("/assets/index-4f2a9c.js")
    assert asset.status == 200
    assert asset.body == "console.log('clpm');"
    assert "immutable" in asset.headers["Cache-Control"]
    assert asset.headers["X-Content-Type-Options"] == "nosniff"
    missing = frontend.get("/assets/index-000000.js")
    assert missing.status == 404  # not the app shell: a stale bundle must fail visibly


def test_api_requests_reach_the_gateway_unchanged(frontend: Frontend) -> None:
    response = frontend.get("/api/v1/data/raw?loopId=FIC-101&fields=pv,op")
    assert response.status == 200
    echoed = json.loads(response.body)
    assert echoed["path"] == "/api/v1/data/raw?loopId=FIC-101&fields=pv,op"
    assert echoed["forwarded_for"] == "127.0.0.1"
    assert echoed["forwarded_proto"] == "http"
    assert echoed["host"] == frontend.url.removeprefix("http://")
    for path in ("/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js", "/openapi.json"):
        assert json.loads(frontend.get(path).body)["path"] == path


def test_gateway_down_is_a_502_not_the_app_shell(frontend: Frontend) -> None:
    frontend.gateway.shutdown()
    frontend.gateway.server_close()
    response = frontend.get("/api/v1/loops")
    assert response.status == 502
    assert response.body != INDEX
