"""A frozen replica (SIGSTOP) holding row locks in an open transaction cannot stall the others.

The frozen replica is a real second process that takes what a replica holds in the middle of a
unit (a write transaction with the ``loop_watermarks`` row locks, through the same engine
factory and thus the same session settings) and is then stopped with SIGSTOP. The healthy
instance's compare-and-set UPDATE then waits at most DB_LOCK_TIMEOUT_S, and the server ends the
frozen session after DB_IDLE_IN_TRANSACTION_TIMEOUT_S, releasing the locks; without those
timeouts the UPDATE waits for as long as the freeze lasts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from clpm_aggregation.service import AggregationService
from clpm_shared.config import DatabaseSettings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.influxql import InfluxQLStore
from services.aggregation.tests.conftest import (
    BASE,
    Database,
    TestClock,
    aggregation_settings,
    plant_points,
)

MINUTE = timedelta(minutes=1)
LOCKER = """
import asyncio, sys
from sqlalchemy import text
from clpm_shared.config import DatabaseSettings
from clpm_shared.db import create_engine

async def main() -> None:
    engine = create_engine(DatabaseSettings(database_url=sys.argv[1], db_lock_timeout_s=2,
                                            db_idle_in_transaction_timeout_s=3))
    async with engine.connect() as connection:  # a transaction begins with the statement
        await connection.execute(text("SELECT loop_id FROM loop_watermarks FOR UPDATE"))
        print("locked", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_frozen_lock_holder_delays_the_healthy_replica_by_seconds_not_the_freeze(
    influx: InfluxQLStore, database: Database, clock: TestClock
) -> None:
    url = database.server.url(database.name)
    settings = DatabaseSettings(
        database_url=url, db_lock_timeout_s=2, db_idle_in_transaction_timeout_s=3
    )
    engine = create_engine(settings)
    loops = [f"FRZ{k}" for k in range(4)]
    await influx.write(plant_points(loops, BASE, 6 * 60, seed=9))
    healthy = AggregationService(
        aggregation_settings(agg_lease_s=60.0),
        influx,
        create_session_factory(engine),
        instance_id="healthy:1",
        clock=clock,
    )
    clock.set(BASE + 3 * MINUTE + timedelta(seconds=5))
    await healthy.run_cycle()  # watermarks exist and stand at minute 3

    frozen = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCKER, url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert frozen.stdout is not None
        assert await asyncio.wait_for(frozen.stdout.readline(), 30) == b"locked\n"
        os.kill(frozen.pid, signal.SIGSTOP)
        clock.set(BASE + 6 * MINUTE + timedelta(seconds=5))
        started = time.monotonic()
        failures = 0
        while True:
            assert time.monotonic() - started < 20, "the healthy replica is stalled"
            try:
                report = await asyncio.wait_for(healthy.run_cycle(), 25)
            except SQLAlchemyError:  # lock_timeout: the cycle ends, the next one retries
                failures += 1
                await asyncio.sleep(0.5)
                continue
            if report.buckets_written:
                break
        recovered_s = time.monotonic() - started
        assert frozen.returncode is None  # still frozen all along
    finally:
        os.kill(frozen.pid, signal.SIGKILL)
        await frozen.wait()
    async with create_session_factory(engine)() as session:
        marks = await WatermarkRepository(session).get(loops)
    await engine.dispose()
    assert set(marks.values()) == {BASE + 6 * MINUTE}
    assert recovered_s < 10  # idle-in-transaction timeout (3 s) + a retry, not the freeze
    assert failures >= 1  # the lock wait was cut off by lock_timeout at least once
