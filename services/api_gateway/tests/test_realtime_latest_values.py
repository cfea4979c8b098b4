"""/data/realtime of many loops answers from the latest-values table in Redis (CACHE_BACKEND=redis)
the same values as influxd's read, and reads influxd for loops the table does not hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from clpm_api_gateway.data_queries import realtime_body
from clpm_shared.config import Settings
from clpm_shared.timeseries import Point
from clpm_shared.timeseries.factory import create_store
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore

FIELDS = ("PV", "SP", "OP", "Mode")


async def test_realtime_of_many_loops_answers_from_redis_what_influxd_answers(
    gateway: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    headers: dict[str, dict[str, str]],
) -> None:
    assert isinstance(gateway.state.resources.store, LatestValuesStore)
    # taken now, not at collection: a key is only made by a sample newer than the TTL (300 s)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    kept = ["RT-KEPT-1", "RT-KEPT-2"]
    elsewhere = "RT-ELSEWHERE"
    writer = create_store(settings.influx, settings.cache)
    plain = InfluxQLStore(settings.influx)
    try:
        assert isinstance(writer, LatestValuesStore)
        await writer.write(
            [
                Point(kept[0], now, pv=1.5, sp=2.0, op=3.25, mode="AUT"),
                Point(kept[0], now + timedelta(seconds=1), pv=1.75),
                Point(kept[1], now, pv=10.0, sp=11.0, op=12.0, mode="CAS"),
            ]
        )
        await plain.write([Point(elsewhere, now, pv=5.0, sp=6.0, op=7.0, mode="MAN")])
        held = await writer.cached([*kept, elsewhere])
        assert held is not None
        assert set(held) == set(kept)
        loops = [*kept, elsewhere]
        response = await client.get(
            "/api/v1/data/realtime",
            params={"loopIds": ",".join(loops), "fields": "pv,sp,op,mode"},
            headers={**headers["engineer"], "Cache-Control": "no-cache"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] == 3
        from_influxd = await plain.latest_many(loops)
        for entry, loop_id in zip(body["loops"], loops, strict=True):
            expected = realtime_body(loop_id, from_influxd[loop_id], FIELDS, now)
            for name in ("loop_id", "ts", "pv", "sp", "op", "mode", "times"):
                assert entry[name] == expected[name], (loop_id, name)
        assert body["loops"][0]["pv"] == 1.75
        assert body["loops"][0]["sp"] == 2.0
    finally:
        await writer.close()
        await plain.close()
