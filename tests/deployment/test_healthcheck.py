"""The container health probe (python -m clpm_shared.healthcheck) against real servers."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clpm_shared.config import Settings, load_settings
from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.healthcheck import (
    UnhealthyError,
    check_heartbeat,
    default_max_age_s,
    probe,
)
from tests.harness.servers import free_port

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _ServiceHandler(BaseHTTPRequestHandler):
    """/health answers 200, /ready 503: a service that is alive but not ready."""

    def do_GET(self) -> None:
        status = {"/health": 200, "/ready": 503}.get(self.path, 404)
        body = b'{"status": "ok"}' if status == 200 else b'{"status": "not ready"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def http_service_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _ServiceHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def _settings(**overrides: dict[str, object]) -> Settings:
    return load_settings(**overrides)


def _run_probe(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the probe as Docker does: a fresh interpreter, settings from the environment."""
    return subprocess.run(
        [sys.executable, "-m", "clpm_shared.healthcheck", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,  # not the repository root, whose .env (if any) must not leak in
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_http_service_is_healthy_when_health_answers_and_unready_when_ready_fails(
    http_service_port: int,
) -> None:
    gateway = _settings(api={"api_port": http_service_port})
    assert "HTTP 200" in probe("api-gateway", gateway)
    with pytest.raises(UnhealthyError, match="HTTP 503"):
        probe("api-gateway", gateway, ready=True)
    diagnostics = _settings(diagnostics={"diag_port": http_service_port})
    assert f"127.0.0.1:{http_service_port}/health" in probe("diagnostics", diagnostics)


def test_http_service_with_nothing_listening_is_unhealthy() -> None:
    with pytest.raises(UnhealthyError, match="ConnectError"):
        probe("diagnostics", _settings(diagnostics={"diag_port": free_port()}), timeout_s=2)


def test_probe_process_exit_codes_follow_health(http_service_port: int, tmp_path: Path) -> None:
    healthy = _run_probe(["api-gateway"], {"API_PORT": str(http_service_port)}, tmp_path)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith("healthy:")
    unready = _run_probe(["api-gateway", "--ready"], {"API_PORT": str(http_service_port)}, tmp_path)
    assert unready.returncode == 1
    assert unready.stderr.strip() == (
        f"unhealthy: http://127.0.0.1:{http_service_port}/ready: HTTP 503"
    )
    unknown = _run_probe(["frontend"], {}, tmp_path)
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr


async def _beat(url: str, service: str, instance_id: str, at: datetime) -> None:
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            await HeartbeatRepository(session, service).beat(instance_id, at, {"loops": 3})
    finally:
        await engine.dispose()


async def test_worker_is_healthy_only_with_a_recent_heartbeat(postgres_url: str) -> None:
    settings = _settings(database={"database_url": postgres_url})
    with pytest.raises(UnhealthyError, match="no heartbeat of aggregation in the last 120 s"):
        await check_heartbeat(settings, "aggregation", max_age_s=120, now=NOW)

    await _beat(postgres_url, "aggregation", "3f2a1b9c0d4e-1a2b3c4d", NOW - timedelta(seconds=90))
    summary = await check_heartbeat(settings, "aggregation", max_age_s=120, now=NOW)
    assert summary == "aggregation: 1 instance(s) beat in the last 120 s"
    with pytest.raises(UnhealthyError, match="in the last 60 s"):
        await check_heartbeat(settings, "aggregation", max_age_s=60, now=NOW)
    # another service's heartbeat does not count
    with pytest.raises(UnhealthyError, match="no heartbeat of kpi-worker"):
        await check_heartbeat(settings, "kpi-worker", max_age_s=3600, now=NOW)


async def test_instance_prefix_looks_at_this_container_only(postgres_url: str) -> None:
    settings = _settings(database={"database_url": postgres_url})
    await _beat(postgres_url, "kpi-worker", "podA-11111111", NOW - timedelta(seconds=10))
    await _beat(postgres_url, "kpi-worker", "podB-22222222", NOW - timedelta(hours=2))
    assert "2 instance" not in await check_heartbeat(settings, "kpi-worker", max_age_s=600, now=NOW)
    assert await check_heartbeat(
        settings, "kpi-worker", max_age_s=600, instance_prefix="podA", now=NOW
    ) == ("kpi-worker (instances podA*): 1 instance(s) beat in the last 600 s")
    with pytest.raises(UnhealthyError, match=r"kpi-worker \(instances podB\*\)"):
        await check_heartbeat(
            settings, "kpi-worker", max_age_s=600, instance_prefix="podB", now=NOW
        )


async def test_unreachable_database_is_unhealthy_not_a_crash() -> None:
    url = f"postgresql+asyncpg://clpm:secret-pw@127.0.0.1:{free_port()}/clpm"
    settings = _settings(database={"database_url": url})
    with pytest.raises(UnhealthyError, match=r"^database") as caught:
        await check_heartbeat(settings, "aggregation", max_age_s=60, timeout_s=3)
    assert "secret-pw" not in str(caught.value)


def test_worker_probe_process_reads_the_database_from_settings(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_url}
    stale = _run_probe(["data-streaming", "--max-age-s", "30"], env, tmp_path)
    assert stale.returncode == 1
    assert stale.stderr.strip() == "unhealthy: no heartbeat of data-streaming in the last 30 s"


def test_default_heartbeat_ages_follow_the_worker_cycles() -> None:
    settings = _settings(
        aggregation={"polling_interval": 60_000},
        kpi={"kpi_window_min": 15},
        streaming={"stream_interval": 30.0},
    )
    assert default_max_age_s("aggregation", settings) == 240
    assert default_max_age_s("kpi-worker", settings) == 300
    assert default_max_age_s("data-streaming", settings) == 300
    quick = _settings(aggregation={"polling_interval": 1000}, streaming={"stream_interval": 1.0})
    assert default_max_age_s("aggregation", quick) == 120
    assert default_max_age_s("data-streaming", quick) == 60
