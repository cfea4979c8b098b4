"""The gateway's access log: one JSON line per request (status, duration, caller), from the real
gateway process on the embedded default, and the layer's writing in process: lines of one
event-loop turn written together, failures logged as 500, ``logging`` when handlers are not
plain streams, nothing below ``info``."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from clpm_api_gateway.app import ACCESS_LOGGER
from clpm_shared.logs import JsonLineFormatter, configure_logging
from clpm_shared.web.access_log import AccessLines, LoggingLines, StreamLines, access_line_writer
from clpm_shared.web.observed_requests import ObservedRequests
from tests.harness.servers import REALM_FILE, free_port, migrate, wait_for

ISSUER_PATH = "/realms/clpm/protocol/openid-connect/token"


def gateway_environment(root: Path, port: int, log_level: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - a child process needs PATH
        "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'clpm.db'}",
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(root / "ts.db"),
        "CACHE_BACKEND": "memory",
        "AUTH_MODE": "local",
        "OIDC_ISSUER": f"http://127.0.0.1:{port}/realms/clpm",
        "LOCAL_ISSUER_KEY_PATH": str(root / "issuer.pem"),
        "LOCAL_REALM_FILE": str(REALM_FILE),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "LOG_LEVEL": log_level,
    }


def run_gateway(root: Path, log_level: str, requests: Any) -> list[dict[str, Any]]:
    """Start ``python -m clpm_api_gateway``, call ``requests(base_url)``, stop it: its log."""
    root.mkdir(parents=True, exist_ok=True)
    migrate(f"sqlite+aiosqlite:///{root / 'clpm.db'}")
    port = free_port()
    log = root / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "clpm_api_gateway"],
            env=gateway_environment(root, port, log_level),
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base_url}/health", timeout=1).raise_for_status(), process, 60)
        requests(base_url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == ACCESS_LOGGER]


def test_the_gateway_process_logs_each_request_once_with_status_duration_and_user(
    tmp_path: Path,
) -> None:
    statuses: list[int] = []

    def requests(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            answers = [
                http.get("/health"),  # the harness's readiness probe came before these
                token := http.post(
                    ISSUER_PATH,
                    data={
                        "grant_type": "password",
                        "client_id": "clpm-cli",
                        "client_secret": "clpm-cli-secret",
                        "username": "admin",
                        "password": "admin",
                    },
                ),
            ]
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            answers += [
                http.post("/api/v1/loops", json={"loop_id": "FIC-101", "unit": "U1"}),
                http.get("/api/v1/data/realtime", params={"loopId": "FIC-101"}),
                http.get("/api/v1/data/realtime", params={"loopId": "FIC-101"}),  # cached hit
                http.get("/api/v1/loops/NOPE-1"),
                http.get("/api/v1/data/realtime", params={"loopId": "bad id!"}),
                http.get("/api/v1/loops", headers={"Authorization": "Bearer forged"}),
            ]
            statuses.extend(answer.status_code for answer in answers)

    lines = run_gateway(tmp_path / "info", "info", requests)
    assert statuses == [200, 200, 201, 200, 200, 404, 422, 401]
    logged = access_lines(lines)[-len(statuses) :]
    assert [line["status"] for line in logged] == statuses
    assert len(access_lines(lines)) == len(statuses) + sum(
        line["path"] == "/health" for line in access_lines(lines)[: -len(statuses)]
    ), "one line per request, the readiness probes before them included"
    assert not [line for line in lines if line["logger"] == "uvicorn.access"], "logged twice"
    realtime_hit = logged[4]
    assert realtime_hit == realtime_hit | {
        "level": "info",
        "service": "api-gateway",
        "method": "GET",
        "path": "/api/v1/data/realtime",
        "status": 200,
        "user": "admin",
    }
    assert realtime_hit["event"].endswith(
        '- "GET /api/v1/data/realtime?loopId=FIC-101 HTTP/1.1" 200'
    )
    assert realtime_hit["client"].startswith("127.0.0.1:")
    assert 0 <= realtime_hit["duration_ms"] < 1000
    assert "user" not in logged[0], "/health has no caller"
    assert "user" not in logged[7], "a forged token names nobody"
    assert logged[5]["user"] == "admin"
    assert {line["ts"][:2] for line in logged} == {"20"}


def test_the_gateway_process_writes_no_access_log_below_info(tmp_path: Path) -> None:
    def requests(base_url: str) -> None:
        for _ in range(3):
            assert httpx.get(f"{base_url}/health", timeout=10).status_code == 200

    lines = run_gateway(tmp_path / "warning", "warning", requests)
    assert access_lines(lines) == []
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/fails":
        raise RuntimeError("broken endpoint")
    await asyncio.sleep(0)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def stream_handler() -> tuple[logging.StreamHandler[CountingStream], CountingStream]:
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter("api-gateway"))
    return handler, stream


async def test_lines_of_one_event_loop_turn_are_written_together(
    stream_handler: tuple[logging.StreamHandler[CountingStream], CountingStream],
) -> None:
    handler, stream = stream_handler
    write = StreamLines([handler])
    lines = AccessLines(write=write, service="api-gateway", logger_name=ACCESS_LOGGER)
    app = ObservedRequests(answer, observers=[lines])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        answers = await asyncio.gather(*(http.get(f"/x/{i}?n={i}") for i in range(40)))
        await asyncio.sleep(0)  # the turn after the last answer writes
        assert [response.status_code for response in answers] == [204] * 40
        assert (await http.get("/fails")).status_code == 500
    write.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted(line["path"] for line in lines[:40]) == sorted(f"/x/{i}" for i in range(40))
    assert {line["status"] for line in lines[:40]} == {204}
    assert lines[40]["path"] == "/fails"
    assert lines[40]["status"] == 500, "a failed request is logged as the 500 it gets"
    assert stream.writes < 20, "lines are written per event-loop turn, not per request"
    assert len(lines) == 41


async def test_lines_go_through_logging_when_handlers_are_not_plain_streams(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    writer = access_line_writer(logging.getLogger(ACCESS_LOGGER))
    assert writer is not None
    write, _ = writer
    assert isinstance(write, LoggingLines)  # pytest's capture handler is on the root logger
    lines = AccessLines(write=write, service="", logger_name=ACCESS_LOGGER)
    app = ObservedRequests(answer, observers=[lines])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        await http.get("/x/1?n=1")
    [record] = [record for record in caplog.records if record.name == ACCESS_LOGGER]
    assert record.getMessage().endswith('"GET /x/1?n=1 HTTP/1.1" 204')
    assert record.__dict__["status"] == 204
    assert record.__dict__["path"] == "/x/1"


def test_the_services_logging_configuration_gets_the_stream_writer() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("api-gateway", "info")
        writer = access_line_writer(logging.getLogger(ACCESS_LOGGER))
        assert writer is not None
        assert isinstance(writer[0], StreamLines)
        assert writer[1] == "api-gateway"
        configure_logging("api-gateway", "warning")
        assert access_line_writer(logging.getLogger(ACCESS_LOGGER)) is None
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
