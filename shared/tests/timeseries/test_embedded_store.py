"""Embedded SQLite store: several processes read while another process writes (WAL)."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clpm_shared.timeseries.base import Point, StoreUnavailableError
from clpm_shared.timeseries.embedded import EmbeddedStore

BASE = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)

WRITER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from clpm_shared.timeseries.base import Point
from clpm_shared.timeseries.embedded import EmbeddedStore

async def main() -> None:
    store = EmbeddedStore(sys.argv[1])
    base = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
    for batch in range(40):
        points = [Point(f"W{loop}", base + timedelta(seconds=batch * 50 + i), pv=float(i))
                  for loop in range(4) for i in range(50)]
        assert await store.write(points) == 200
        await asyncio.sleep(0.01)
    await store.close()

asyncio.run(main())
"""

READER = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from clpm_shared.timeseries.embedded import EmbeddedStore

async def main() -> None:
    store = EmbeddedStore(sys.argv[1])
    base = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
    counts = []
    while not counts or counts[-1] < 2000:
        series = await store.query_raw_many(["W0", "W3"], base, base + timedelta(hours=1))
        counts.append(len(series["W3"]))
        assert counts == sorted(counts), counts
    await store.close()
    print(len(counts))

asyncio.run(main())
"""


async def test_processes_read_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    reader_store = EmbeddedStore(path)
    await reader_store.ping()  # creates the file and schema before the children start
    pipe = asyncio.subprocess.PIPE
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(path), stdout=pipe, stderr=pipe
    )
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, str(path), stdout=pipe, stderr=pipe
    )
    try:
        seen: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page = await reader_store.query_raw("W1", BASE, BASE + timedelta(hours=1))
            seen.append(len(page.series))
            if seen[-1] == 2000:
                break
            await asyncio.sleep(0.005)
        assert seen[-1] == 2000
        assert seen == sorted(seen)
        assert len(set(seen)) > 2, "reads happened only before or after the writes"
        _, writer_err = await asyncio.wait_for(writer.communicate(), 60)
        assert writer.returncode == 0, writer_err
        out, reader_err = await asyncio.wait_for(reader.communicate(), 60)
        assert reader.returncode == 0, reader_err
        assert int(out) >= 1
        assert await reader_store.discover_loops() == ["W0", "W1", "W2", "W3"]
    finally:
        for child in (writer, reader):
            if child.returncode is None:
                child.kill()
                await child.communicate()
        await reader_store.close()


async def test_a_second_store_on_the_same_file_sees_committed_writes(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    first, second = EmbeddedStore(path), EmbeddedStore(path)
    try:
        await first.write([Point("TIC1", BASE, pv=1.0, mode="AUT")])
        latest = await second.latest("TIC1")
        assert latest is not None
        assert latest.values["PV"].value == 1.0
        assert latest.values["Mode"].value == "AUT"
    finally:
        await first.close()
        await second.close()


async def test_writing_the_same_time_again_merges_values(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "merge.db")
    try:
        await store.write([Point("TIC1", BASE, pv=1.0, sp=2.0, mode="AUT")])
        await store.write([Point("TIC1", BASE, pv=1.5, op=3.0)])
        series = (await store.query_raw("TIC1", BASE, BASE + timedelta(seconds=1))).series
        assert (series.pv.tolist(), series.sp.tolist(), series.op.tolist()) == ([1.5], [2.0], [3.0])
        assert series.mode.tolist() == ["AUT"]
    finally:
        await store.close()


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "closed.db")
    await store.close()
    assert await store.ping() is False
    with pytest.raises(StoreUnavailableError):
        await store.latest("TIC1")


async def test_an_unreadable_file_makes_the_store_unavailable(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage.db"
    not_a_database.write_bytes(b"this is not sqlite" * 100)
    store = EmbeddedStore(not_a_database)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailableError) as raised:
            await store.query_raw("TIC1", BASE, BASE + timedelta(seconds=1))
        assert raised.value.retry_after_s > 0
    finally:
        await store.close()


async def test_prune_deletes_samples_older_than_the_cutoff_and_moves_the_spans(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path / "ts.db")
    old = [Point("OLD-1", BASE + timedelta(minutes=i), pv=float(i)) for i in range(10)]
    mixed = [Point("MIX-1", BASE + timedelta(minutes=i), pv=float(i)) for i in range(10)]
    new = [Point("NEW-1", BASE + timedelta(hours=2, minutes=i), pv=float(i)) for i in range(5)]
    await store.write([*old, *mixed, *new])
    await store.write([Point("MIX-1", BASE + timedelta(hours=3), pv=99.0)])
    cutoff = BASE + timedelta(hours=1)
    assert await store.prune(cutoff) == 20  # OLD-1's 10 and MIX-1's first 10
    assert await store.discover_loops() == ["MIX-1", "NEW-1"]  # OLD-1 has nothing left
    mix_range = await store.time_range("MIX-1")
    assert mix_range is not None
    assert mix_range.start == BASE + timedelta(hours=3)  # the span starts at what remains
    assert await store.time_range("OLD-1") is None
    span = await store.query_raw_many(["NEW-1"], BASE, BASE + timedelta(hours=4))
    assert len(span["NEW-1"]) == 5  # newer than the cutoff: untouched
    assert await store.prune(cutoff) == 0
    await store.close()


async def test_writes_prune_past_the_retention_at_most_once_per_interval(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = EmbeddedStore(tmp_path / "ts.db", retention_s=3600.0, prune_interval_s=0.3)
    stale = [Point("FIC-101", now - timedelta(hours=2, seconds=i), pv=1.0) for i in range(5)]
    fresh = [Point("FIC-101", now - timedelta(seconds=i), pv=2.0) for i in range(5)]
    await store.write(fresh)  # the first write prunes (nothing old yet)
    await store.write(stale)  # within the interval: kept for now
    window = (now - timedelta(hours=3), now + timedelta(seconds=1))
    assert len((await store.query_raw_many(["FIC-101"], *window))["FIC-101"]) == 10
    await asyncio.sleep(0.35)
    await store.write([Point("FIC-101", now, pv=3.0)])  # past the interval: prunes
    kept = (await store.query_raw_many(["FIC-101"], *window))["FIC-101"]
    assert len(kept) == 5
    assert int(kept.t_ns.min()) >= int((now - timedelta(hours=1)).timestamp()) * 1_000_000_000
    await store.close()


async def test_no_retention_keeps_every_sample(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "ts.db", retention_s=0.0, prune_interval_s=0.0)
    ancient = [Point("FIC-101", BASE - timedelta(days=400 + i), pv=1.0) for i in range(3)]
    await store.write(ancient)
    await store.write([Point("FIC-101", BASE, pv=2.0)])
    found = await store.query_raw_many(
        ["FIC-101"], BASE - timedelta(days=500), BASE + timedelta(seconds=1)
    )
    assert len(found["FIC-101"]) == 4
    await store.close()
