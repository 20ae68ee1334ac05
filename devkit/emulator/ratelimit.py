"""A token bucket over the Management API, answering `x-ratelimit-*` headers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimitConfig", "TokenBucket"]


@dataclass(frozen=True)
class RateLimitConfig:
    per_second: float
    burst: int

    @classmethod
    def free_plan(cls) -> RateLimitConfig:
        """Auth0's Free plan: 2 requests per second, burst 2, whole Management API."""
        return cls(per_second=2.0, burst=2)


class TokenBucket:
    def __init__(self, config: RateLimitConfig, clock: Callable[[], float]) -> None:
        if config.per_second <= 0 or config.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.config = config
        self.clock = clock
        self.level = float(config.burst)
        self.updated = clock()

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request if there is one: (allowed, x-ratelimit-* headers)."""
        now = self.clock()
        rate, burst = self.config.per_second, self.config.burst
        self.level = min(float(burst), self.level + max(0.0, now - self.updated) * rate)
        self.updated = now
        allowed = self.level >= 1
        if allowed:
            self.level -= 1
        # When the next whole request is added (Unix seconds, as Auth0 sends it).
        reset = math.ceil(now + max(0.0, 1 - self.level) / rate)
        return allowed, {
            "x-ratelimit-limit": str(burst),
            "x-ratelimit-remaining": str(math.floor(self.level)),
            "x-ratelimit-reset": str(reset),
        }
