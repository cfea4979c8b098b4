"""The suite on the embedded default, seeded with simulated data, for the browser tests.

:func:`running_suite` runs what ``deploy/local/run.sh`` runs, in a temporary directory and on a
free loopback port: migrations on SQLite; 3.5 hours of the data-streaming simulator's plant
written by its backfill into the embedded time-series store; the aggregation's backfill (which
registers the loops); the diagnostics service; the API gateway serving the built frontend; an
admin who places the loops in units and enables APC on one cascade loop through the API; and
the kpi-worker's run-once over the last hour, which sends the unhealthy loops to the
diagnostics service. One loop has its PV range configured; the others' spans are estimated.
One loop's transmitter drops out for the last 10 minutes of the hour (its samples are removed
from the store before the aggregation, as a dropout leaves them): its latest window is
"not assessed" (a third of its data). The hour of KPI windows is too little for a shift, day
or week rating: over those periods every loop is "not assessed" with the count of windows.

The realm is the real one (``deploy/keycloak/clpm-realm.json``) with this run's address added to
the frontend client's redirect URIs, as an operator would for another port. Chromium is Debian's
(``/usr/bin/chromium``, driven by Playwright); screenshots go to ``test-results/e2e/``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.harness.servers import REALM_FILE, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
SCREENSHOTS = ROOT / "test-results" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
BACKFILL_HOURS = 3.5  # longer than the raw span of the trend (3 h): zooming out shows aggregates
KPI_HOURS = 1.0
KPI_WINDOW = timedelta(minutes=15)
APC_LOOP = "FIC208040"  # a flow loop the simulator runs in cascade (CAS)
UNITS = {"TIC": "U208 reactor", "FIC": "U208 feed", "PIC": "U208 header", "LIC": "U208 drum"}
RANGED_LOOP = "TIC208031"  # the sticky valve: its PV range (0-500 degC) is configured
RANGED_SPAN = (0.0, 500.0)
ESTIMATED_LOOP = "TIC208030"  # the healthy loop: no PV range, its span is estimated
DROPOUT_LOOP = "LIC208050"  # its transmitter drops out for the last 10 minutes of the KPI hour
DROPOUT = timedelta(minutes=10)


@dataclass
class Suite:
    """The running suite: its URL, its data directory and its simulated loops."""

    url: str
    data_dir: Path
    loops: list[str]

    def token(self, username: str) -> str:
        answer = httpx.post(
            f"{self.url}/realms/clpm/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "clpm-cli",
                "client_secret": "clpm-cli-secret",
                "username": username,
                "password": username,
            },
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def api(self, username: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token(username)}"},
            timeout=30,
        )


def child_environment(data_dir: Path, port: int, diag_port: int, realm: Path) -> dict[str, str]:
    base = {
        name: value
        for name, value in os.environ.items()  # noqa: TID251 - a child process needs PATH and HOME
        if name in ("PATH", "HOME", "LANG", "TMPDIR")
    }
    return {
        **base,
        "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'clpm.db'}",
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(data_dir / "timeseries.db"),
        "CACHE_BACKEND": "memory",
        "AUTH_MODE": "local",
        "LOCAL_ISSUER_KEY_PATH": str(data_dir / "local-issuer-key.pem"),
        "LOCAL_REALM_FILE": str(realm),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "OIDC_ISSUER": f"http://127.0.0.1:{port}/realms/clpm",
        "DIAG_HOST": "127.0.0.1",
        "DIAG_PORT": str(diag_port),
        "DIAG_SERVICE_URL": f"http://127.0.0.1:{diag_port}",
        "FRONTEND_DIST": str(FRONTEND / "dist"),
        "STREAM_LOG_FILE": str(data_dir / "data-streaming.log"),
        "LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }


def run_step(
    command: list[str], environment: dict[str, str], log: Path, timeout: float = 120
) -> None:
    with log.open("ab") as out:
        result = subprocess.run(  # noqa: PLW1510 - the return code is checked below
            command,
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command[2:])} failed ({result.returncode}):\n{log.read_text()[-3000:]}",
            pytrace=False,
        )


def start_process(
    command: list[str], environment: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stale(index: Path) -> bool:
    """True if the build is missing or older than a source file of the app."""
    if not index.exists():
        return True
    built = index.stat().st_mtime
    sources = [FRONTEND / "index.html", FRONTEND / "package-lock.json"]
    sources += [path for path in (FRONTEND / "src").rglob("*") if path.is_file()]
    return any(path.stat().st_mtime > built for path in sources)


def built_frontend() -> Path:
    """``frontend/dist``, rebuilt when stale (``npm test`` in tests/run.sh builds it first)."""
    index = FRONTEND / "dist" / "index.html"
    if _stale(index):
        npm = shutil.which("npm")
        if npm is None or not (FRONTEND / "node_modules").exists():
            pytest.fail("frontend not built: run `npm ci && npm run build` in frontend/")
        subprocess.run([npm, "run", "build", "--prefix", str(FRONTEND)], check=True, cwd=ROOT)
    return index.parent


def realm_with_redirect(target: Path, origin: str) -> Path:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    for client in realm["clients"]:
        if client["clientId"] == "clpm-frontend":
            client["redirectUris"] = [*client["redirectUris"], f"{origin}/*"]
    target.write_text(json.dumps(realm))
    return target


def _seed_through_the_api(suite: Suite) -> None:
    """What an admin does first: units for the loops, APC on for one cascade loop, the PV
    range of one loop (the others keep an estimated span)."""
    with suite.api("admin") as admin:
        for loop_id in suite.loops:
            unit = UNITS.get(loop_id[:3])
            if unit:
                admin.put(
                    f"/loops/{loop_id}", json={"unit": unit, "area": "Plant 208"}
                ).raise_for_status()
        admin.put(
            f"/loops/{APC_LOOP}/config",
            json={"apc_enabled": True, "apc_modes": ["CAS"], "normal_modes": ["AUT", "CAS"]},
        ).raise_for_status()
        admin.put(
            f"/loops/{RANGED_LOOP}/config",
            json={"pv_lo": RANGED_SPAN[0], "pv_hi": RANGED_SPAN[1]},
        ).raise_for_status()


def _drop_out(store: Path, loop_id: str, start: datetime, end: datetime) -> None:
    """A transmitter dropout: the loop's samples of [start, end) removed from the embedded
    store (the simulator has no dropout profile; this is the state a dropout leaves)."""
    with closing(sqlite3.connect(store)) as db, db:
        removed = db.execute(
            "DELETE FROM samples WHERE loop_id = ? AND t_ns >= ? AND t_ns < ?",
            (loop_id, int(start.timestamp() * 1e9), int(end.timestamp() * 1e9)),
        ).rowcount
    if removed == 0:
        pytest.fail(f"no samples of {loop_id} in [{start}, {end}) to drop", pytrace=False)


@contextmanager
def running_suite(data_dir: Path) -> Iterator[Suite]:
    """Start and seed the suite in ``data_dir``; stop its processes on exit."""
    built_frontend()
    port, diag_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    realm = realm_with_redirect(data_dir / "clpm-realm.json", url)
    environment = child_environment(data_dir, port, diag_port, realm)
    python = sys.executable
    log = data_dir / "suite.log"

    run_step(
        [python, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        environment,
        log,
    )
    listing = subprocess.run(
        [python, "-m", "data_streaming_service", "--list-loops"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    loops = [line.split()[0] for line in listing.stdout.splitlines()[1:] if line.strip()]
    run_step(
        [
            python,
            "-m",
            "data_streaming_service",
            "--backfill",
            str(BACKFILL_HOURS),
            "--backfill-only",
        ],
        environment,
        log,
    )
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(
        now.timestamp() // KPI_WINDOW.total_seconds() * KPI_WINDOW.total_seconds(), UTC
    )
    start = end - timedelta(hours=KPI_HOURS)
    _drop_out(data_dir / "timeseries.db", DROPOUT_LOOP, end - DROPOUT, end)
    run_step(
        [python, "-m", "clpm_aggregation", "backfill", "--hours", str(BACKFILL_HOURS + 0.25)],
        environment,
        log,
    )
    processes = [
        start_process(
            [python, "-m", "clpm_diagnostics"], environment, data_dir / "diagnostics.log"
        ),
        start_process([python, "-m", "clpm_api_gateway"], environment, data_dir / "gateway.log"),
    ]
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{diag_port}/health", timeout=1).raise_for_status(),
            processes[0],
            timeout=60,
        )
        wait_for(
            lambda: httpx.get(f"{url}/health", timeout=1).raise_for_status(),
            processes[1],
            timeout=60,
        )
        suite = Suite(url, data_dir, loops)
        _seed_through_the_api(suite)
        run_step(
            [
                python,
                "-m",
                "clpm_kpi_worker",
                "run-once",
                "--start",
                start.isoformat(),
                "--end",
                end.isoformat(),
                "--no-progress",
            ],
            environment,
            log,
        )
        yield suite
    finally:
        for process in processes:
            stop_process(process)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(browser: Browser, suite: Suite, username: str, width: int = 1280) -> Page:
    """A new browser session signed in through the issuer's form (code flow with PKCE)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{suite.url}/")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{suite.url}/fleet**")
    return page


UNLABELLED_SCRIPT = """() => [
  ...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((element) => {
    if (element.type === 'hidden') return false;
    const named = element.labels?.length || element.getAttribute('aria-label')
      || element.getAttribute('aria-labelledby') || element.textContent.trim()
      || element.querySelector('img[alt]:not([alt=""])');
    return !named;
  })
  .map((element) => element.outerHTML.slice(0, 120))"""


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls, buttons and links of the page that have no accessible name."""
    found: list[str] = page.evaluate(UNLABELLED_SCRIPT)
    return found
