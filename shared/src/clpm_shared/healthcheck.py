"""Container health probe of the CLPM services: ``python -m clpm_shared.healthcheck SERVICE``.

Docker ``HEALTHCHECK`` instructions, compose health checks and Kubernetes exec probes run it.
Exit status 0 means healthy; 1 unhealthy, with one line on stderr that says why; 2 a usage
error. Settings (ports, database) come from :mod:`clpm_shared.config`, like the service's own.

- ``api-gateway`` and ``diagnostics`` serve HTTP: ``GET http://127.0.0.1:<API_PORT|DIAG_PORT>/health``
  must answer 2xx; with ``--ready``, ``/ready`` (the service's dependencies are reachable).
- ``aggregation``, ``kpi-worker`` and ``data-streaming`` are workers: the newest row of
  ``worker_heartbeats`` whose ``service`` is that name must be younger than ``--max-age-s``
  (default: a few of the worker's own cycles, see :func:`default_max_age_s`).
  ``--instance-prefix`` looks only at instances whose id starts with the text (for example the
  container's host name, when several replicas share one database).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from clpm_shared.config import Settings, load_settings
from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository

HTTP_SERVICES = ("api-gateway", "diagnostics")
KPI_WORKER_MAX_HEARTBEAT_AGE_S = 300.0
WORKER_SERVICES = ("aggregation", "kpi-worker", "data-streaming")


class UnhealthyError(Exception):
    """The probed service is not healthy; the message says why (one line)."""


def default_max_age_s(service: str, settings: Settings) -> float:
    """How old a worker's newest heartbeat may be before the worker counts as stuck.

    aggregation: 4 polling intervals, at least 2 minutes; kpi-worker: 5 minutes (it beats every
    minute, during cycles too: ``clpm_kpi_worker.scheduler.HEARTBEAT_INTERVAL_S``);
    data-streaming: 10 stream intervals, at least 1 minute.
    """
    if service == "aggregation":
        return max(120.0, 4 * settings.aggregation.polling_interval / 1000)
    if service == "kpi-worker":
        return KPI_WORKER_MAX_HEARTBEAT_AGE_S
    if service == "data-streaming":
        return max(60.0, 10 * settings.streaming.stream_interval)
    raise ValueError(f"not a worker service: {service!r}")


def check_http(url: str, timeout_s: float) -> str:
    """GET ``url``; return a one-line summary, or raise :class:`UnhealthyError`."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise UnhealthyError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise UnhealthyError(f"{url}: HTTP {response.status_code}")
    return f"{url}: HTTP {response.status_code}"


async def check_heartbeat(
    settings: Settings,
    service: str,
    *,
    max_age_s: float,
    instance_prefix: str | None = None,
    timeout_s: float = 5.0,
    now: datetime | None = None,
) -> str:
    """Check that an instance of ``service`` wrote a heartbeat in the last ``max_age_s`` s."""
    since = (now or datetime.now(UTC)) - timedelta(seconds=max_age_s)
    engine = create_engine(settings.database)
    try:
        async with asyncio.timeout(timeout_s), create_session_factory(engine)() as session:
            instances = await HeartbeatRepository(session, service).live(since)
    except TimeoutError as exc:
        raise UnhealthyError(f"database did not answer within {timeout_s:g} s") from exc
    except (OSError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnhealthyError(f"database: {reason}") from exc
    finally:
        await engine.dispose()
    if instance_prefix:
        instances = [instance for instance in instances if instance.startswith(instance_prefix)]
    scope = service + (f" (instances {instance_prefix}*)" if instance_prefix else "")
    if not instances:
        raise UnhealthyError(f"no heartbeat of {scope} in the last {max_age_s:g} s")
    return f"{scope}: {len(instances)} instance(s) beat in the last {max_age_s:g} s"


def probe(
    service: str,
    settings: Settings,
    *,
    ready: bool = False,
    max_age_s: float | None = None,
    instance_prefix: str | None = None,
    timeout_s: float = 5.0,
) -> str:
    """Probe one service as its container health check does; raise :class:`UnhealthyError`."""
    if service in HTTP_SERVICES:
        port = settings.api.api_port if service == "api-gateway" else settings.diagnostics.diag_port
        path = "/ready" if ready else "/health"
        return check_http(f"http://127.0.0.1:{port}{path}", timeout_s)
    if service in WORKER_SERVICES:
        return asyncio.run(
            check_heartbeat(
                settings,
                service,
                max_age_s=max_age_s
                if max_age_s is not None
                else default_max_age_s(service, settings),
                instance_prefix=instance_prefix,
                timeout_s=timeout_s,
            )
        )
    raise ValueError(f"unknown service {service!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_shared.healthcheck",
        description="Exit 0 when the CLPM service in this container is healthy, 1 when not.",
    )
    parser.add_argument("service", choices=(*HTTP_SERVICES, *WORKER_SERVICES))
    parser.add_argument("--ready", action="store_true", help="HTTP services: probe /ready")
    parser.add_argument(
        "--max-age-s", type=float, default=None, help="workers: oldest acceptable heartbeat"
    )
    parser.add_argument(
        "--instance-prefix", default=None, help="workers: only instance ids starting with this"
    )
    parser.add_argument("--timeout-s", type=float, default=5.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        summary = probe(
            args.service,
            settings,
            ready=args.ready,
            max_age_s=args.max_age_s,
            instance_prefix=args.instance_prefix,
            timeout_s=args.timeout_s,
        )
    except UnhealthyError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(f"healthy: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
