"""OPC UA bridge: the loops of a tag map read from an OPC UA server into the time-series store.

The tag map's tags are node ids (``ns=2;s=FIC101.PV``). The bridge connects with asyncua,
either subscribes to data changes (published every STREAM_INTERVAL) or reads every node once
per STREAM_INTERVAL, and on every tick of the interval grid writes one sample per loop (the
latest PV/SP/OP/mode, scaled and mode-mapped by the tag map; sample-and-hold, as historians
store report-by-exception values) exactly as the simulator does: measurement
``control_loops``, tags ``loop_id`` and ``Mode``, fields PV/SP/OP.

A lost connection is re-established with exponential backoff (with jitter) up to
OPCUA_RECONNECT_MAX_S; nothing is written for the time the server was away (values held from
before the outage are discarded, not repeated). Writes go through the same bounded buffer as
the simulator (:mod:`write_buffer`): while the store is down nothing is lost within
OPCUA_BUFFER_POINTS; beyond it the oldest points are dropped, counted and logged once per
outage. Credentials the server refuses stop the bridge with :class:`OpcUaAccessError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import (
    BadCertificateInvalid,
    BadCertificateUntrusted,
    BadIdentityTokenInvalid,
    BadIdentityTokenRejected,
    BadSecurityChecksFailed,
    BadSecurityModeRejected,
    BadSecurityPolicyRejected,
    BadUserAccessDenied,
    UaError,
)
from asyncua.ua.uatypes import Double

from clpm_shared.config import OpcUaMode, StreamingSettings
from clpm_shared.ingest.tag_map import LoopTags, TagMap
from clpm_shared.timeseries import Point, TimeSeriesStore, from_ns
from data_streaming_service.heartbeat import HeartbeatPublisher
from data_streaming_service.write_buffer import PointBuffer, StoreWriter

logger = logging.getLogger(__name__)

_NS = 1_000_000_000
_MODES = ("AUT", "MAN", "CAS")
_ROLES = ("pv", "sp", "op", "mode")
_ACCESS_ERRORS = (
    BadUserAccessDenied,
    BadIdentityTokenInvalid,
    BadIdentityTokenRejected,
    BadSecurityChecksFailed,
    BadSecurityModeRejected,
    BadSecurityPolicyRejected,
    BadCertificateInvalid,
    BadCertificateUntrusted,
)
_CONNECTION_ERRORS = (OSError, ConnectionError, TimeoutError, UaError)


class OpcUaAccessError(RuntimeError):
    """The OPC UA server refused the bridge's credentials or security settings."""


@dataclass(frozen=True)
class BridgeOptions:
    """How the bridge connects and streams (from settings and the command line)."""

    endpoint: str
    mode: OpcUaMode = OpcUaMode.SUBSCRIBE
    interval_s: float = 1.0
    buffer_max_points: int = 1_000_000
    user: str | None = None
    password: str | None = None
    security: str | None = None
    """asyncua security string: ``Policy,Mode,client_cert,client_key[,server_cert]``."""
    timeout_s: float = 4.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    duration_s: float | None = None
    flush_timeout_s: float = 8.0
    summary_every_s: float = 60.0
    heartbeat_every_s: float = 15.0

    @classmethod
    def from_settings(cls, streaming: StreamingSettings, **overrides: Any) -> BridgeOptions:
        """Options from STREAM_INTERVAL and OPCUA_*; ``overrides`` win (command line)."""
        if streaming.opcua_endpoint is None and "endpoint" not in overrides:
            raise ValueError("OPCUA_ENDPOINT: required for the OPC UA bridge")
        values: dict[str, Any] = {
            "endpoint": streaming.opcua_endpoint,
            "mode": streaming.opcua_mode,
            "interval_s": streaming.stream_interval,
            "buffer_max_points": streaming.opcua_buffer_points,
            "user": streaming.opcua_user,
            "password": (
                None
                if streaming.opcua_password is None
                else streaming.opcua_password.get_secret_value()
            ),
            "security": (
                None
                if streaming.opcua_security is None
                else streaming.opcua_security.get_secret_value()
            ),
            "timeout_s": streaming.opcua_timeout_s,
            "reconnect_max_s": streaming.opcua_reconnect_max_s,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class BridgeSummary:
    """What a run did; logged every ``summary_every_s`` and at shutdown."""

    loops: int = 0
    connects: int = 0
    connection_losses: int = 0
    ticks: int = 0
    samples: int = 0
    generated_points: int = 0
    written_points: int = 0
    dropped_points: int = 0
    buffered_points: int = 0
    unknown_nodes: int = 0
    flushed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BridgeSamples:
    """One tick's samples of the bridged loops (what the write buffer holds)."""

    samples: tuple[Point, ...]
    values: int

    @property
    def points(self) -> int:
        """Field values (PV, SP, OP) in these samples."""
        return self.values

    def to_points(self) -> list[Point]:
        return list(self.samples)


def scaled(raw: object, scale: float, offset: float) -> float | None:
    """``raw * scale + offset``; None for a missing, non-numeric or non-finite value."""
    if raw is None or isinstance(raw, str | bytes):
        return None
    try:
        value = float(raw) * scale + offset  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def mapped_mode(raw: object, mode_map: Mapping[str, str]) -> str | None:
    """The stored mode (AUT/MAN/CAS) of a raw mode value, None when it maps to none.

    The raw value is looked up as text (``1`` and ``1.0`` both as ``"1"``); without an entry
    a raw AUT/MAN/CAS (any case) is taken as it is.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or (isinstance(raw, float) and raw.is_integer()):
        key = str(int(raw))
    else:
        key = str(raw).strip()
    if key in mode_map:
        return mode_map[key]
    upper = key.upper()
    return upper if upper in _MODES else None


def sample_loops(
    t_ns: int, loops: tuple[LoopTags, ...], latest: Mapping[str, object]
) -> BridgeSamples:
    """One sample per loop from the latest raw values by node id; loops without a value skip."""
    moment = from_ns(t_ns)
    samples: list[Point] = []
    values = 0
    for loop in loops:
        pv = scaled(latest.get(loop.pv), loop.pv_scale, loop.pv_offset) if loop.pv else None
        sp = scaled(latest.get(loop.sp), loop.pv_scale, loop.pv_offset) if loop.sp else None
        op = scaled(latest.get(loop.op), loop.op_scale, loop.op_offset) if loop.op else None
        present = (pv is not None) + (sp is not None) + (op is not None)
        if not present:
            continue
        mode = mapped_mode(latest.get(loop.mode), loop.mode_map) if loop.mode else None
        samples.append(Point(loop.loop_id, moment, pv, sp, op, mode))
        values += present
    return BridgeSamples(tuple(samples), values)


class _DataChanges:
    """asyncua subscription handler: keeps the latest good value of every subscribed node."""

    def __init__(self, latest: dict[str, object], lost: asyncio.Event) -> None:
        self.latest = latest
        self.lost = lost

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        tag = node.nodeid.to_string()
        status = data.monitored_item.Value.StatusCode
        if status is not None and not status.is_good():
            self.latest.pop(tag, None)  # bad quality: not stored
        else:
            self.latest[tag] = val

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        if not status.Status.is_good():
            self.lost.set()


class OpcUaBridge:
    """Streams the loops of ``tag_map`` from an OPC UA server into ``store`` until stopped.

    Parameters
    ----------
    tag_map : TagMap
        Loops and their node ids (``pv``/``sp``/``op``/``mode``), scaling and mode maps.
    store : TimeSeriesStore
        Where samples are written.
    options : BridgeOptions
    heartbeat : HeartbeatPublisher, optional
        Records liveness for the container health probe.
    """

    def __init__(
        self,
        tag_map: TagMap,
        store: TimeSeriesStore,
        options: BridgeOptions,
        heartbeat: HeartbeatPublisher | None = None,
    ) -> None:
        self.tag_map = tag_map
        self.store = store
        self.options = options
        self.heartbeat = heartbeat
        self.buffer = PointBuffer(options.buffer_max_points)
        self.writer = StoreWriter(store, self.buffer, max_backoff_s=options.reconnect_max_s)
        self.summary = BridgeSummary(loops=len(tag_map.loops))
        self._interval_ns = round(options.interval_s * _NS)
        self._loops = tag_map.loops
        self._overflow_logged = False
        self._next_summary = 0.0
        self._next_heartbeat = 0.0
        self.connected = asyncio.Event()
        """Set while a session is up (tests and health reporting wait on it)."""

    async def run(self, stop: asyncio.Event) -> BridgeSummary:
        """Stream until ``stop`` is set (or ``duration_s``), then flush; return the summary."""
        writer_stop = asyncio.Event()
        writer_task = asyncio.create_task(self.writer.run(writer_stop), name="store-writer")
        deadline_task: asyncio.Task[None] | None = None
        if self.options.duration_s is not None:
            deadline_task = asyncio.create_task(_set_after(stop, self.options.duration_s))
        logger.info(
            "OPC UA bridge starting",
            extra={
                "endpoint": self.options.endpoint,
                "mode": self.options.mode.value,
                "loops": len(self._loops),
                "interval_s": self.options.interval_s,
                "buffer_max_points": self.options.buffer_max_points,
                "user": self.options.user,
                "security": self.options.security is not None,
            },
        )
        try:
            await self._connect_loop(stop)
        finally:
            if deadline_task is not None:
                deadline_task.cancel()
            deadline = time.monotonic() + self.options.flush_timeout_s
            writer_stop.set()
            self.buffer.wake()
            # on timeout the cancelled writer puts its batches back; flush gets the time left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer_task, self.options.flush_timeout_s)
            self.summary.flushed = await self.writer.flush(max(0.0, deadline - time.monotonic()))
            self._refresh_summary()
            if self.summary.flushed:
                logger.info("OPC UA bridge stopped; buffer flushed", extra=self.summary.as_dict())
            else:
                logger.error(
                    "OPC UA bridge stopped; the store did not take every point in time",
                    extra={**self.summary.as_dict(), "lost_points": self.buffer.points},
                )
        return self.summary

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        delay = self.options.reconnect_initial_s
        while not stop.is_set():
            client = await self._client()
            try:
                await client.connect()
            except _ACCESS_ERRORS as exc:
                await _disconnect_quietly(client)
                raise OpcUaAccessError(
                    f"OPC UA server {self.options.endpoint} refused the bridge's credentials or "
                    f"security settings ({type(exc).__name__}): check OPCUA_USER, "
                    "OPCUA_PASSWORD and OPCUA_SECURITY"
                ) from exc
            except _CONNECTION_ERRORS as exc:
                await _disconnect_quietly(client)
                if isinstance(exc, UaError) and str(exc).startswith("No matching endpoints"):
                    raise OpcUaAccessError(
                        f"OPC UA server {self.options.endpoint} offers no endpoint with the "
                        f"bridge's security settings ({exc}): check OPCUA_SECURITY"
                    ) from exc
                wait_s = delay * (0.75 + random.random() / 2)  # noqa: S311 - jitter
                logger.warning(
                    "OPC UA server not reachable; retrying",
                    extra={
                        "endpoint": self.options.endpoint,
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "retry_in_s": round(wait_s, 2),
                    },
                )
                await _sleep_unless(stop, wait_s)
                delay = min(delay * 2, self.options.reconnect_max_s)
                continue
            delay = self.options.reconnect_initial_s
            self.summary.connects += 1
            logger.info(
                "OPC UA session open",
                extra={"endpoint": self.options.endpoint, "connects": self.summary.connects},
            )
            try:
                await self._stream(client, stop)
            except _CONNECTION_ERRORS as exc:
                logger.warning(
                    "OPC UA connection failed while streaming",
                    extra={"endpoint": self.options.endpoint, "error": str(exc)[:300]},
                )
            finally:
                self.connected.clear()
                await _disconnect_quietly(client)
            if not stop.is_set():
                self.summary.connection_losses += 1
                logger.warning(
                    "OPC UA connection lost; reconnecting",
                    extra={
                        "endpoint": self.options.endpoint,
                        "losses": self.summary.connection_losses,
                    },
                )

    async def _client(self) -> Client:
        # asyncua probes the server every watchdog interval and, by default, calls a probe
        # slower than 1 s a lost connection: a busy server is not a lost one
        client = Client(
            self.options.endpoint,
            timeout=self.options.timeout_s,
            watchdog_intervall=self.options.timeout_s,
        )
        if self.options.security is not None:
            await client.set_security_string(self.options.security)
        if self.options.user is not None:
            client.set_user(self.options.user)
        if self.options.password is not None:
            client.set_password(self.options.password)
        return client

    async def _known_nodes(self, client: Client) -> dict[str, Node]:
        """The tag map's nodes the server has; unknown ones are logged once and left out."""
        tags = sorted(self.tag_map.by_tag())
        nodes = [client.get_node(tag) for tag in tags]
        results = await _read_in_batches(client, nodes, AttributeIds.NodeId)
        known: dict[str, Node] = {}
        unknown: list[str] = []
        for tag, node, result in zip(tags, nodes, results, strict=True):
            status = result.StatusCode
            if status is not None and status.value == StatusCodes.BadNodeIdUnknown:
                unknown.append(tag)
            else:
                known[tag] = node
        if unknown and self.summary.unknown_nodes != len(unknown):
            logger.error(
                "OPC UA nodes of the tag map not found on the server; those values are skipped",
                extra={"endpoint": self.options.endpoint, "nodes": unknown[:20]},
            )
        self.summary.unknown_nodes = len(unknown)
        return known

    async def _stream(self, client: Client, stop: asyncio.Event) -> None:
        """Tick until ``stop`` or the connection is lost."""
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        nodes = await self._known_nodes(client)
        latest: dict[str, object] = {}
        read: Callable[[], Awaitable[None]] | None = None
        if self.options.mode is OpcUaMode.SUBSCRIBE:
            period_ms = self.options.interval_s * 1000.0
            subscription = await client.create_subscription(period_ms, _DataChanges(latest, lost))
            if nodes:
                await subscription.subscribe_data_change(
                    list(nodes.values()), sampling_interval=Double(period_ms)
                )
        else:
            tags = list(nodes)
            node_list = list(nodes.values())

            async def read_all() -> None:
                results = await _read_in_batches(client, node_list, AttributeIds.Value)
                for tag, result in zip(tags, results, strict=True):
                    status = result.StatusCode
                    good = status is None or status.is_good()
                    if good and result.Value is not None:
                        latest[tag] = result.Value.Value
                    else:
                        latest.pop(tag, None)

            read = read_all
        self.connected.set()
        next_t = (time.time_ns() // self._interval_ns + 1) * self._interval_ns
        while not stop.is_set() and not lost.is_set():
            wait_s = (next_t - time.time_ns()) / _NS
            if wait_s > 0:
                await _wait_any((stop, lost), wait_s)
                continue
            if client.uaclient.state is not UaClientState.CONNECTED:
                break  # not sampling held values of a server that is gone
            if read is not None:
                await asyncio.wait_for(read(), self.options.timeout_s)
            self._append(sample_loops(next_t, self._loops, latest))
            now = time.time_ns()
            next_t += self._interval_ns
            if now - next_t > 5 * self._interval_ns:  # fell behind: skip ahead, do not burst
                next_t = (now // self._interval_ns + 1) * self._interval_ns
            await self._periodic()

    def _append(self, chunk: BridgeSamples) -> None:
        self.summary.ticks += 1
        if not chunk.samples:
            return
        dropped = self.buffer.append(chunk)
        self.summary.samples += len(chunk.samples)
        self.summary.generated_points += chunk.values
        if dropped and not self._overflow_logged:
            self._overflow_logged = True
            logger.error(
                "OPC UA bridge buffer full while the store is unavailable: dropping the oldest "
                "points (raise OPCUA_BUFFER_POINTS to keep more)",
                extra={
                    "buffer_max_points": self.buffer.max_points,
                    "dropped_points_total": self.buffer.dropped_points,
                },
            )
        elif not self.writer.store_down:
            self._overflow_logged = False  # the next outage that overflows is logged again

    async def _periodic(self) -> None:
        now = time.monotonic()
        if now >= self._next_summary:
            self._next_summary = now + self.options.summary_every_s
            self._refresh_summary()
            logger.info(
                "OPC UA bridge summary",
                extra={**self.summary.as_dict(), "store_down": self.writer.store_down},
            )
        if self.heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.options.heartbeat_every_s
            self._refresh_summary()
            await self.heartbeat.beat(
                {**self.summary.as_dict(), "store_down": self.writer.store_down}
            )

    def _refresh_summary(self) -> None:
        self.summary.written_points = self.writer.stats.written_points
        self.summary.dropped_points = self.buffer.dropped_points
        self.summary.buffered_points = self.buffer.points


_READ_BATCH = 1000
"""Nodes per Read request: servers limit MaxNodesPerRead (often to a few thousand)."""


async def _read_in_batches(
    client: Client, nodes: list[Node], attribute: AttributeIds
) -> list[ua.DataValue]:
    results: list[ua.DataValue] = []
    for first in range(0, len(nodes), _READ_BATCH):
        results += await client.read_attributes(nodes[first : first + _READ_BATCH], attribute)
    return results


async def _disconnect_quietly(client: Client) -> None:
    with contextlib.suppress(*_CONNECTION_ERRORS, RuntimeError):
        await asyncio.wait_for(client.disconnect(), 5.0)


async def _sleep_unless(stop: asyncio.Event, delay_s: float) -> None:
    if delay_s > 0:
        await _wait_any((stop,), delay_s)


async def _wait_any(events: tuple[asyncio.Event, ...], timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _set_after(event: asyncio.Event, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    event.set()
