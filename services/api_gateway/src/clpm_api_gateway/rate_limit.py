"""A per-user rate limit on the gateway's expensive routes (token bucket, per process).

Each user (the token's subject) has a bucket of ``API_RATE_LIMIT_BURST`` requests that refills at
``API_RATE_LIMIT_PER_MIN`` per minute; a request finding it empty answers **429** with
``Retry-After`` (seconds until a request is allowed again). The buckets live in the process: with
N gateway replicas a user may make up to N times the rate. At most :data:`MAX_USERS` buckets are
kept (the least recently used go first; a forgotten user starts with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Request

from clpm_api_gateway.security import CurrentPrincipal
from clpm_shared.web.problems import ProblemError

PROBLEM_429: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many expensive requests of this user; retry after Retry-After"}
}
MAX_USERS = 10_000
TYPE_RATE_LIMITED = "urn:clpm:problem:rate-limited"


class RateLimiter:
    """Token buckets per key: ``burst`` requests at once, ``per_min`` per minute after that."""

    def __init__(
        self, per_min: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = per_min / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_s(self, key: str) -> float:
        """Take a request from ``key``'s bucket: 0 if allowed, else seconds until one is."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate_per_s
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_USERS:
            self._buckets.popitem(last=False)
        return wait


def rate_limiter(request: Request) -> RateLimiter:
    """The limiter that :func:`clpm_api_gateway.app.create_app` put on the app state."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def rate_limited(request: Request, principal: CurrentPrincipal) -> None:
    """Dependency of the expensive routes: 429 once the caller used up their requests."""
    wait = rate_limiter(request).wait_s(principal.subject)
    if wait > 0:
        raise ProblemError(
            429,
            "too many expensive requests; try again later",
            type_=TYPE_RATE_LIMITED,
            title="Too many requests",
            retry_after_s=max(1, math.ceil(wait)),
        )
