"""A circuit breaker in front of a time-series server: fail at once while it is known to be down.

Without it every request retries with backoff on its own while the server is down (seconds
each) and holds its caller that long; behind a gateway the callers pile up. The breaker counts
failed attempts across all callers of one store:

* **closed**: requests go through; ``failures`` consecutive failed attempts open it;
* **open** for ``open_s``: every request fails at once with
  :class:`~clpm_shared.timeseries.base.StoreUnavailableError` whose ``retry_after_s`` is the time
  left, and callers sleeping between two retries are woken to fail at once too;
* **half-open** after that: one request goes through as a probe (the others still fail at
  once); its success closes the breaker, its failure opens it again.

A store recovers on its own: the first request after ``open_s`` probes the server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from enum import StrEnum

from clpm_shared.timeseries.base import StoreUnavailableError

logger = logging.getLogger(__name__)

PAUSE_SLICE_S = 0.05


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Shared by every request of one store (one event loop)."""

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        open_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = failures
        self.open_s = open_s
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0

    def retry_after_s(self) -> float:
        """Seconds until the breaker lets a probe through (at least 1, for Retry-After)."""
        left = self.opened_at + self.open_s - self.clock()
        return float(max(1, math.ceil(left)))

    def _reject(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"{self.name} is down (circuit breaker open after {self.threshold} failed "
            "attempts); not asked again before the retry time",
            retry_after_s=self.retry_after_s(),
        )

    def admit(self) -> None:
        """Let a request through, or raise :class:`StoreUnavailableError` at once."""
        if self.state is BreakerState.CLOSED:
            return
        if self.state is BreakerState.OPEN and self.clock() >= self.opened_at + self.open_s:
            self.state = BreakerState.HALF_OPEN  # this caller is the probe
            logger.info("probing %s again", self.name)
            return
        raise self._reject()

    def check_open(self) -> None:
        """Raise if the breaker opened meanwhile (e.g. while the caller waited for a slot)."""
        if self.state is BreakerState.OPEN:
            raise self._reject()

    def record_success(self) -> None:
        if self.state is not BreakerState.CLOSED:
            logger.info("%s answers again; circuit breaker closed", self.name)
        self.state = BreakerState.CLOSED
        self.failures = 0

    def record_failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self.threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            logger.warning(
                "%s is down; circuit breaker open: requests fail at once for %.1f s",
                self.name,
                self.open_s,
            )

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` between two attempts; raise within ``PAUSE_SLICE_S`` if the breaker
        opens meanwhile (polled: no event bound to one event loop)."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_open()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, PAUSE_SLICE_S))
