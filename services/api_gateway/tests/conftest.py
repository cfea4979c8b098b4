"""Fixtures of the gateway tests: the app on real PostgreSQL, influxd, Redis and OIDC provider.

One gateway per test module (``client``), with a fresh database and InfluxDB database, seeded
with known data (``seeded``): loop FIC-101 has one hour of 1 Hz raw samples and no aggregates,
loop TIC-205 has one hour of 1-minute aggregates (and one hourly bucket) and no raw data.
Tokens come from the provider's password grant for the realm users viewer/engineer/admin/norole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from clpm_api_gateway.app import create_app
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import (
    Agg1h,
    Agg1m,
    ApcAttainment,
    DiagnosticResult,
    KpiResult,
    Loop,
    LoopConfig,
)
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.factory import create_store
from tests.harness.servers import InfluxServer, OidcProvider, RedisServer, free_port

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
RAW_LOOP = "FIC-101"
AGG_LOOP = "TIC-205"
RAW_SAMPLES = 3600
ROLES = ("viewer", "engineer", "admin", "norole")


def raw_points() -> list[Point]:
    """FIC-101: sample i at BASE + i s: PV = i mod 60, SP = 50, OP = i / 100, AUT then MAN."""
    return [
        Point(
            RAW_LOOP,
            BASE + timedelta(seconds=i),
            pv=float(i % 60),
            sp=50.0,
            op=i / 100,
            mode="AUT" if i < RAW_SAMPLES // 2 else "MAN",
        )
        for i in range(RAW_SAMPLES)
    ]


def minute_buckets() -> list[Agg1m]:
    """TIC-205: minute m of the hour has PV mean m, min m - 1, max m + 1, 60 samples."""
    return [
        Agg1m(
            loop_id=AGG_LOOP,
            bucket_start=BASE + timedelta(minutes=m),
            pv_count=60,
            pv_mean=float(m),
            pv_min=m - 1.0,
            pv_max=m + 1.0,
            sp_count=60,
            sp_mean=30.0,
            sp_min=30.0,
            sp_max=30.0,
            op_count=60,
            op_mean=10.0 + m,
            op_min=10.0 + m,
            op_max=10.0 + m,
        )
        for m in range(60)
    ]


def gateway_settings(
    postgres_url: str,
    influx_url: str,
    influx_database: str,
    redis_url: str,
    oidc: OidcProvider,
    diag_url: str,
    **api: Any,
) -> Settings:
    return load_settings(
        database={"database_url": postgres_url, "db_pool_size": 5},
        influx={
            "timeseries_backend": "influxql",
            "influxdb_url": influx_url,
            "influxdb_database": influx_database,
            "influxdb_username": None,
            "influxdb_timeout_s": 5.0,
            "influxdb_max_retries": 0,
        },
        cache={"cache_backend": "redis", "redis_url": redis_url},
        auth={
            "auth_mode": "oidc",
            "oidc_issuer": oidc.issuer,
            "oidc_jwks_uri": oidc.jwks_uri,
            "oidc_audience": "clpm-api",
        },
        api={"diag_service_url": diag_url, "diag_timeout_s": 2.0, **api},
    )


@pytest.fixture(scope="module")
def headers(oidc_provider: OidcProvider) -> dict[str, dict[str, str]]:
    """``Authorization`` headers per realm user (tokens valid 15 minutes: one set per module)."""
    return {
        role: {"Authorization": f"Bearer {oidc_provider.password_token(role)}"} for role in ROLES
    }


@pytest.fixture(scope="module")
def unreachable_url() -> str:
    """A loopback URL where nothing listens (the diagnostics service is down)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def settings(
    postgres_url: str,
    influx_server: InfluxServer,
    influx_database: str,
    redis_server: RedisServer,
    oidc_provider: OidcProvider,
    unreachable_url: str,
) -> Settings:
    return gateway_settings(
        postgres_url,
        influx_server.url,
        influx_database,
        redis_server.url,
        oidc_provider,
        unreachable_url,
        api_max_raw_range_h=2.0,
        api_max_limit=5000,
        api_default_limit=1000,
    )


@pytest.fixture(scope="module")
async def seeded(settings: Settings) -> dict[str, Any]:
    """Known rows in PostgreSQL and known samples in influxd; returns what was written."""
    store = create_store(settings.influx)
    try:
        written = await store.write(raw_points())
    finally:
        await store.close()
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        session.add_all(
            [
                Loop(loop_id=RAW_LOOP, name="Feed flow", unit="U100", area="Reactors"),
                Loop(loop_id=AGG_LOOP, name="Reactor temperature", unit="U100", area="Reactors"),
                Loop(
                    loop_id="LIC-300",
                    name="Drum level",
                    unit="U200",
                    area="Utilities",
                    data_source="import",
                    data_source_detail="utilities-2024.csv",
                ),
                Loop(loop_id="PIC-400", name="Header pressure", unit="U200", area="Utilities"),
            ]
        )
        await session.flush()
        session.add_all(
            [
                LoopConfig(loop_id=AGG_LOOP, criticality=5, loop_type="temperature"),
                LoopConfig(loop_id="LIC-300", criticality=1, apc_enabled=True),
            ]
        )
        session.add_all(minute_buckets())
        session.add(
            Agg1h(
                loop_id=AGG_LOOP,
                bucket_start=BASE + timedelta(hours=5),
                pv_count=3600,
                pv_mean=7.5,
                pv_min=1.0,
                pv_max=9.0,
                sp_count=3600,
                sp_mean=30.0,
                op_count=3600,
                op_mean=12.0,
            )
        )
        session.add_all(kpi_rows())
        session.add_all(diagnostic_rows())
        session.add_all(apc_rows())
        await session.commit()
    await engine.dispose()
    return {"raw_points": written}


def kpi_rows() -> list[KpiResult]:
    """FIC-101: four 15-minute windows (health 90, 85, 70, 50; % of an estimated span);
    TIC-205: one (health 40); LIC-300: one (health 95; % of its configured span); PIC-400:
    none (offline)."""
    rows = []
    for index, (health, status) in enumerate(
        [(90.0, "good"), (85.0, "good"), (70.0, "fair"), (50.0, "poor")]
    ):
        start = BASE + timedelta(minutes=15 * index)
        rows.append(
            KpiResult(
                loop_id=RAW_LOOP,
                window_start=start,
                window_end=start + timedelta(minutes=15),
                samples=900,
                service_factor=1.0 - 0.1 * index,
                saturation=0.01 * index,
                harris_index=0.5,
                osc_regularity=0.8 + index,
                op_travel_per_hour=12.0,
                sp_changes=index,
                error_std_pct=2.0 + index,
                span_source="estimated",
                health_score=health,
                status=status,
                main_problem="oscillation" if index == 3 else None,
                mode_shares={"AUT": 1.0},
            )
        )
    rows.append(
        KpiResult(
            loop_id=AGG_LOOP,
            window_start=BASE,
            window_end=BASE + timedelta(minutes=15),
            health_score=40.0,
            status="poor",
            main_problem="stiction",
        )
    )
    rows.append(
        KpiResult(
            loop_id="LIC-300",
            window_start=BASE,
            window_end=BASE + timedelta(minutes=15),
            error_std_pct=0.5,
            span_source="configured",
            health_score=95.0,
            status="good",
        )
    )
    return rows


def diagnostic_rows() -> list[DiagnosticResult]:
    """TIC-205: an older window with one finding, the newest window with two."""
    older, newer = BASE - timedelta(hours=1), BASE
    return [
        DiagnosticResult(
            loop_id=AGG_LOOP,
            window_start=older,
            window_end=older + timedelta(hours=1),
            category="saturation",
            severity=0.3,
            confidence=0.9,
            evidence={"saturation": 0.2},
            recommendation="Check the valve sizing.",
            trigger="scheduled",
        ),
        DiagnosticResult(
            loop_id=AGG_LOOP,
            window_start=newer,
            window_end=newer + timedelta(hours=1),
            category="oscillation",
            severity=0.6,
            confidence=0.8,
            evidence={"period_s": 120.0},
            recommendation="Find the source of the oscillation.",
            trigger="scheduled",
        ),
        DiagnosticResult(
            loop_id=AGG_LOOP,
            window_start=newer,
            window_end=newer + timedelta(hours=1),
            category="stiction",
            severity=0.8,
            confidence=0.85,
            evidence={
                "stiction_index": 0.78,
                # as the analytics store it: the findings the root cause explains
                "explained": [
                    {
                        "category": "aggressive_tuning",
                        "severity": 0.4,
                        "confidence": 0.5,
                        "evidence": {"op_reversals_per_hour": 300.0},
                        "recommendation": "Reduce the controller gain.",
                        "explained": [],
                    }
                ],
            },
            recommendation="Inspect the valve for static friction.",
            trigger="scheduled",
        ),
    ]


def apc_rows() -> list[ApcAttainment]:
    """LIC-300: two windows, 900 samples each, attainment 1.0 and 0.5 (weighted mean 0.75)."""
    return [
        ApcAttainment(
            loop_id="LIC-300",
            window_start=BASE + timedelta(minutes=15 * index),
            window_end=BASE + timedelta(minutes=15 * (index + 1)),
            samples=900,
            attainment=value,
            wrong_mode_share=1.0 - value,
            saturated_share=0.0,
            bad_data_share=0.0,
        )
        for index, value in enumerate((1.0, 0.5))
    ]


@pytest.fixture(scope="module")
async def gateway(settings: Settings, seeded: dict[str, Any]) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture(scope="module")
async def client(gateway: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
