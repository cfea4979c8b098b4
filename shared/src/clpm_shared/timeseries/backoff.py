"""Retry delays of the InfluxDB backends: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay ``backoff_s * 2**attempt``."""

    max_retries: int
    backoff_s: float = 0.2
    max_backoff_s: float = 10.0

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (0-based); a server's Retry-After wins."""
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_backoff_s)
        base = min(self.backoff_s * 2.0**attempt, self.max_backoff_s)
        return base * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not cryptography

    def retry_after_s(self) -> float:
        """What to tell callers once retries are exhausted (>= 1 s, for a Retry-After header)."""
        return max(1.0, round(min(self.backoff_s * 2.0**self.attempts, self.max_backoff_s), 1))
