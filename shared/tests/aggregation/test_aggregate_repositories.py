"""Aggregate, watermark, lease and heartbeat repositories on real PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clpm_shared.aggregation import STAT_COLUMNS, BucketTable, minute_buckets
from clpm_shared.db.models import Agg1m
from clpm_shared.db.repositories.aggregates import AggregateRepository
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from clpm_shared.db.repositories.leases import WorkLeaseRepository
from clpm_shared.db.repositories.loops import LoopRepository
from clpm_shared.db.repositories.watermarks import WatermarkRepository
from clpm_shared.timeseries.base import RawSeries

Sessions = async_sessionmaker[AsyncSession]
S = 1_000_000_000
T0 = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
T0_NS = 1_736_503_200 * S
_numbers = itertools.count()


def loop_names(label: str, n: int) -> list[str]:
    k = next(_numbers)
    return [f"R{k:03d}_{label}_{i:02d}" for i in range(n)]


def sample_table(loop_ids: list[str], minutes: int, offset: float = 0.0) -> BucketTable:
    rng = np.random.default_rng(len(loop_ids) + minutes)
    raw = []
    for loop_id in loop_ids:
        n = minutes * 60
        t = T0_NS + np.arange(n, dtype=np.int64) * S
        pv = rng.normal(50, 2, n) + offset
        sp = np.full(n, 50.0)
        op = rng.uniform(0, 100, n)
        op[::7] = np.nan
        mode = np.where(np.arange(n) % 4 == 0, "MAN", "AUT").astype(object)
        raw.append(RawSeries(loop_id, t, pv, sp, op, mode))
    table = minute_buckets(raw).buckets
    return table


def assert_tables_equal(got: BucketTable, want: BucketTable) -> None:
    assert got.loop_ids.tolist() == want.loop_ids.tolist()
    assert got.bucket_ns.tolist() == want.bucket_ns.tolist()
    for name in STAT_COLUMNS:
        np.testing.assert_array_equal(got.stats[name], want.stats[name], err_msg=name)
    assert got.mode_share_maps() == want.mode_share_maps()
    assert got.mode_dominant.tolist() == want.mode_dominant.tolist()


async def test_upsert_then_read_returns_the_same_columns(sessions: Sessions) -> None:
    loops = loop_names("rt", 3)
    table = sample_table(loops, 5)
    async with sessions() as session, session.begin():
        assert await AggregateRepository(session).upsert("agg_1m", table) == 15
    async with sessions() as session:
        got = await AggregateRepository(session).read(
            "agg_1m", loops, T0, T0 + timedelta(minutes=5)
        )
    assert_tables_equal(got, table)


async def test_upsert_is_idempotent_and_overwrites_recomputed_buckets(sessions: Sessions) -> None:
    loops = loop_names("idem", 2)
    first = sample_table(loops, 3)
    second = sample_table(loops, 3, offset=10.0)
    for table in (first, first, second):
        async with sessions() as session, session.begin():
            await AggregateRepository(session).upsert("agg_1m", table)
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Agg1m).where(Agg1m.loop_id.in_(loops))
        )
        got = await AggregateRepository(session).read("agg_1m", loops, T0, T0 + timedelta(hours=1))
    assert count == 6
    assert_tables_equal(got, second)


async def test_a_rolled_back_upsert_leaves_nothing(sessions: Sessions) -> None:
    loops = loop_names("rb", 2)

    async def write_then_fail() -> None:
        async with sessions() as session, session.begin():
            await AggregateRepository(session).upsert("agg_1m", sample_table(loops, 2))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await write_then_fail()
    async with sessions() as session:
        got = await AggregateRepository(session).read("agg_1m", loops, T0, T0 + timedelta(hours=1))
    assert len(got) == 0


async def test_two_upserts_in_one_transaction_and_both_tables(sessions: Sessions) -> None:
    loops = loop_names("two", 2)
    a, b = sample_table(loops[:1], 2), sample_table(loops[1:], 2)
    async with sessions() as session, session.begin():
        repository = AggregateRepository(session)
        await repository.upsert("agg_1m", a)
        await repository.upsert("agg_1m", b)
        await repository.upsert("agg_1h", a)
    async with sessions() as session:
        repository = AggregateRepository(session)
        minutes = await repository.read("agg_1m", loops, T0, T0 + timedelta(hours=1))
        hours = await repository.read("agg_1h", loops, T0, T0 + timedelta(hours=1))
    assert len(minutes) == 4
    assert_tables_equal(hours, a)


async def test_read_is_limited_to_the_window_and_loops(sessions: Sessions) -> None:
    loops = loop_names("win", 3)
    async with sessions() as session, session.begin():
        await AggregateRepository(session).upsert("agg_1m", sample_table(loops, 10))
    async with sessions() as session:
        got = await AggregateRepository(session).read(
            "agg_1m", loops[1:2], T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
        )
    assert got.loop_ids.tolist() == [loops[1]] * 3
    assert got.bucket_ns.tolist() == [T0_NS + m * 60 * S for m in (2, 3, 4)]


async def test_read_of_some_statistics_returns_those_with_the_mode_shares(
    sessions: Sessions,
) -> None:
    loops = loop_names("cols", 2)
    written = sample_table(loops, 5)
    async with sessions() as session, session.begin():
        await AggregateRepository(session).upsert("agg_1m", written)
    async with sessions() as session:
        repository = AggregateRepository(session)
        got = await repository.read(
            "agg_1m", loops, T0, T0 + timedelta(minutes=5), statistics=("pv_mean", "sp_mean")
        )
        with pytest.raises(ValueError, match="statistics: unknown columns"):
            await repository.read("agg_1m", loops, T0, T0 + timedelta(minutes=5), ("pv_avg",))
    assert set(got.stats) == {"pv_mean", "sp_mean"}
    assert got.bucket_ns.tolist() == written.bucket_ns.tolist()
    np.testing.assert_array_equal(got.stats["pv_mean"], written.stats["pv_mean"])
    np.testing.assert_array_equal(got.stats["sp_mean"], written.stats["sp_mean"])
    assert got.mode_share_maps() == written.mode_share_maps()


async def test_read_without_mode_shares_returns_the_counts_and_no_modes(
    sessions: Sessions,
) -> None:
    loops = loop_names("counts", 2)
    written = sample_table(loops, 5)
    assert written.modes  # the written rows do carry mode shares
    counts = ("pv_count", "sp_count", "op_count")
    async with sessions() as session, session.begin():
        await AggregateRepository(session).upsert("agg_1m", written)
    async with sessions() as session:
        got = await AggregateRepository(session).read(
            "agg_1m", loops, T0, T0 + timedelta(minutes=5), statistics=counts, mode_shares=False
        )
    assert got.loop_ids.tolist() == written.loop_ids.tolist()
    assert got.bucket_ns.tolist() == written.bucket_ns.tolist()
    for name in counts:
        np.testing.assert_array_equal(got.stats[name], written.stats[name])
    assert got.modes == ()
    assert got.mode_shares.shape == (len(written), 0)


async def test_watermarks_initialize_once_and_advance_as_compare_and_set(
    sessions: Sessions,
) -> None:
    loops = loop_names("wm", 3)
    later = T0 + timedelta(minutes=5)
    async with sessions() as session, session.begin():
        repository = WatermarkRepository(session)
        await repository.initialize({loops[0]: T0, loops[1]: T0})
        await repository.initialize({loops[0]: later, loops[2]: later})  # keeps loops[0] at T0
    async with sessions() as session, session.begin():
        repository = WatermarkRepository(session)
        assert await repository.get(loops) == {loops[0]: T0, loops[1]: T0, loops[2]: later}
        assert await repository.advance({loops[0]: T0, loops[2]: later}, later + timedelta(1)) == 2
        assert await repository.advance({loops[1]: later}, later + timedelta(1)) == 0  # stale
    async with sessions() as session:
        marks = await WatermarkRepository(session).get(loops)
    assert marks == {loops[0]: later + timedelta(1), loops[1]: T0, loops[2]: later + timedelta(1)}


async def test_watermarks_of_thousands_of_loops_move_in_one_compare_and_set(
    sessions: Sessions,
) -> None:
    """More loops than an IN-list batch (one array parameter on PostgreSQL): all are read and
    moved, and one stale expectation among them is counted as not moved."""
    loops = [f"WM{next(_numbers):03d}_{i:04d}" for i in range(2_500)]
    later = T0 + timedelta(minutes=1)
    async with sessions() as session, session.begin():
        repository = WatermarkRepository(session)
        await repository.initialize(dict.fromkeys(loops, T0))
        expected = dict.fromkeys(loops, T0)
        expected[loops[1_700]] = later  # stale: the row holds T0
        assert await repository.advance(expected, later) == len(loops) - 1
        assert await repository.advance_within(loops, T0, later) == 1
        marks = await repository.get(loops)
    assert marks == dict.fromkeys(loops, later)


async def test_advance_within_never_moves_a_watermark_older_than_the_window(
    sessions: Sessions,
) -> None:
    loops = loop_names("within", 3)
    async with sessions() as session, session.begin():
        repository = WatermarkRepository(session)
        await repository.initialize(
            {loops[0]: T0 - timedelta(hours=2), loops[1]: T0, loops[2]: T0 + timedelta(hours=3)}
        )
        moved = await repository.advance_within(
            loops, T0 - timedelta(hours=1), T0 + timedelta(minutes=1)
        )
        assert moved == 1
        marks = await repository.get(loops)
    assert marks[loops[0]] == T0 - timedelta(hours=2)
    assert marks[loops[1]] == T0 + timedelta(minutes=1)
    assert marks[loops[2]] == T0 + timedelta(hours=3)


async def test_leases_go_to_one_owner_until_they_expire(sessions: Sessions) -> None:
    loops = loop_names("lease", 4)
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(loops)
    now = T0
    async with sessions() as session, session.begin():
        leases = WorkLeaseRepository(session, "test-work")
        assert set(loops) <= set(await leases.claimable(now, 10_000))
        assert await leases.claim("a", loops[:3], now, now + timedelta(seconds=30)) == loops[:3]
    async with sessions() as session, session.begin():
        leases = WorkLeaseRepository(session, "test-work")
        assert await leases.claim("b", loops, now, now + timedelta(seconds=30)) == [loops[3]]
        assert await leases.held("a", now) == loops[:3]
        assert not set(loops) & set(await leases.claimable(now, 10_000))
        assert (await leases.owners(now))["a"] == 3
    later = now + timedelta(seconds=31)
    async with sessions() as session, session.begin():
        leases = WorkLeaseRepository(session, "test-work")
        assert await leases.renew("b", later, later + timedelta(seconds=30)) == []  # expired
        assert await leases.claim("b", loops[:2], later, later + timedelta(seconds=30)) == loops[:2]
        assert await leases.held("b", later) == loops[:2]
        assert await leases.release("b", [loops[0]]) == 1
        assert await leases.renew("b", later, later + timedelta(seconds=60)) == [loops[1]]
        assert await WorkLeaseRepository(session, "other-work").held("b", later) == []


async def test_racing_claims_give_each_loop_to_exactly_one_owner(sessions: Sessions) -> None:
    loops = loop_names("race", 40)
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(loops)

    async def claim(owner: str) -> list[str]:
        async with sessions() as session, session.begin():
            leases = WorkLeaseRepository(session, "race-work")
            return await leases.claim(owner, loops, T0, T0 + timedelta(minutes=1))

    results = await asyncio.gather(*(claim(f"owner{i}") for i in range(4)))
    won = [loop_id for result in results for loop_id in result]
    assert sorted(won) == sorted(loops)


async def test_heartbeats_list_live_instances(sessions: Sessions) -> None:
    service = f"svc{next(_numbers)}"
    async with sessions() as session, session.begin():
        beats = HeartbeatRepository(session, service)
        await beats.beat("host:1", T0, {"cycles": 1})
        await beats.beat("host:2", T0 - timedelta(minutes=5), {})
        await beats.beat("host:1", T0 + timedelta(seconds=1), {"cycles": 2})
    async with sessions() as session, session.begin():
        beats = HeartbeatRepository(session, service)
        assert await beats.live(T0 - timedelta(minutes=1)) == ["host:1"]
        assert await beats.live(T0 - timedelta(hours=1)) == ["host:1", "host:2"]
        await beats.remove("host:1")
        assert await beats.live(T0 - timedelta(hours=1)) == ["host:2"]


async def test_concurrent_advance_from_the_same_watermark_commits_only_once(
    sessions: Sessions,
) -> None:
    loops = loop_names("cas", 2)
    async with sessions() as session, session.begin():
        await WatermarkRepository(session).initialize(dict.fromkeys(loops, T0))
    expected = dict.fromkeys(loops, T0)
    new = T0 + timedelta(minutes=1)
    first = sessions()
    await first.begin()
    assert await WatermarkRepository(first).advance(expected, new) == 2

    async def second_writer() -> int:
        async with sessions() as session, session.begin():
            return await WatermarkRepository(session).advance(expected, new)

    racing = asyncio.create_task(second_writer())
    await asyncio.sleep(0.2)
    assert not racing.done()  # blocked behind the first writer's row locks
    await first.commit()
    await first.close()
    assert await asyncio.wait_for(racing, 30) == 0


async def test_ten_thousand_discovered_loops_register_in_one_call(sessions: Sessions) -> None:
    """Columns filled by Python-side defaults count against the driver's parameter limit."""
    prefix = f"M{next(_numbers):03d}"
    loops = [f"{prefix}_{i:05d}" for i in range(10_000)]
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered(loops)
    async with sessions() as session:
        known = set(await LoopRepository(session).all_ids())
    assert set(loops) <= known


async def test_discovery_leaves_renamed_and_deleted_loops_alone(sessions: Sessions) -> None:
    renamed, deleted, new = loop_names("disc", 3)
    async with sessions() as session, session.begin():
        loops = LoopRepository(session)
        await loops.register_discovered([renamed, deleted])
        await loops.save(renamed, {"name": "Reactor inlet temperature"})
        await loops.soft_delete(deleted)
    async with sessions() as session, session.begin():
        await LoopRepository(session).register_discovered([renamed, deleted, new])
    async with sessions() as session:
        loops = LoopRepository(session)
        kept = await loops.get(renamed)
        gone = await loops.get(deleted, include_deleted=True)
        added = await loops.get(new)
    assert kept is not None
    assert kept.name == "Reactor inlet temperature"
    assert gone is not None
    assert gone.deleted_at is not None
    assert gone.name == deleted
    assert added is not None
    assert added.name == new
