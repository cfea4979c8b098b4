"""The service records heartbeats for the container health probe and removes them on stop."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.db.models import WorkerHeartbeat
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.timeseries import EmbeddedStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.heartbeat import SERVICE, HeartbeatPublisher
from data_streaming_service.streaming import StreamingService, StreamOptions


async def test_heartbeat_while_streaming_and_removed_on_stop(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    store = EmbeddedStore(tmp_path / "ts.db")
    generator = ControlLoopDataGenerator(loop_specs(3, seed=1, interval_s=0.1), interval_s=0.1)
    options = StreamOptions(interval_s=0.1, heartbeat_every_s=0.2)
    publisher = HeartbeatPublisher(sessions, "test-host-0001")
    stop = asyncio.Event()
    task = asyncio.create_task(StreamingService(generator, store, options, publisher).run(stop))
    since = datetime.now(UTC) - timedelta(seconds=5)
    live: list[str] = []
    try:
        for _ in range(100):  # poll with a deadline (10 s)
            async with sessions() as session:
                live = await HeartbeatRepository(session, SERVICE).live(since)
            if live:
                break
            await asyncio.sleep(0.1)
        async with sessions() as session:
            row = (await session.execute(select(WorkerHeartbeat))).scalars().one()
    finally:
        stop.set()
        await task
    assert live == ["test-host-0001"]
    assert row.service == "data-streaming"
    assert row.stats is not None
    assert row.stats["loops"] == 3
    assert "store_down" in row.stats
    async with sessions() as session:
        assert await HeartbeatRepository(session, SERVICE).live(since) == []
    await store.close()
    await engine.dispose()


async def test_unreachable_database_does_not_stop_the_heartbeat_caller(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/not-migrated.db")
    publisher = HeartbeatPublisher(create_session_factory(engine), "x")
    assert await publisher.beat({"loops": 1}) is False
    await publisher.remove()  # logs, does not raise
    await engine.dispose()
