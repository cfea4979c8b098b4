"""Progress of a historical catch-up: buckets done of total, rates and ETA, logged every few s."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class ProgressMeter:
    """Counts loop-minute buckets (and raw samples) done against a known total.

    ``log_every_s`` throttles the progress lines; :meth:`finish` logs the summary line.
    """

    total: int
    label: str = "backfill"
    log_every_s: float = 5.0
    monotonic: Callable[[], float] = time.monotonic
    done: int = 0
    samples: int = 0
    started: float = field(default=0.0)
    _last_log: float = field(default=0.0)
    logged: bool = False

    def __post_init__(self) -> None:
        self.started = self.monotonic()
        self._last_log = self.started

    def fields(self) -> dict[str, float | int]:
        elapsed = max(self.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        left = max(0, self.total - self.done)
        return {
            "buckets_done": self.done,
            "buckets_total": self.total,
            "percent": round(100.0 * self.done / self.total, 1) if self.total else 100.0,
            "buckets_per_s": round(rate, 1),
            "samples_per_s": round(self.samples / elapsed, 1),
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(left / rate, 1) if rate > 0 else -1.0,
        }

    def advance(self, buckets: int, samples: int) -> None:
        """Record finished work; log a progress line when ``log_every_s`` has passed."""
        self.done += buckets
        self.samples += samples
        now = self.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            self.logged = True
            logger.info(f"{self.label} progress", extra=self.fields())

    def finish(self) -> None:
        logger.info(f"{self.label} done", extra=self.fields())
