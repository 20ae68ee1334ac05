"""Retries of Management API calls (tenacity), inside one deadline, and the one
place where httpx's errors become `identity.errors`.

Worth another attempt: 5xx, 429, timeouts and connection errors. Waits are
what Auth0 asks for (`x-ratelimit-reset`, `Retry-After`) or exponential backoff
with jitter. Before each sleep the deadline is checked *with* the sleep ahead:
a wait that would not fit ends the call at once, as `RateLimited` after a 429
(the caller is a durable job that reschedules) and `UpstreamUnavailable`
otherwise. Time is measured on the injected clock, and the sleeps requested so
far count too, so a frozen test clock cannot make a call retry forever.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from identity.answers import requested_wait
from identity.errors import Auth0Error, RateLimited, UpstreamUnavailable

__all__ = ["Deadline", "Transient", "raise_for_transient", "with_retries"]

log = logging.getLogger("resetrelay.identity")

T = TypeVar("T")
MAX_ATTEMPTS: Final = 6
# 0.25 s, 0.5 s, 1 s, ... up to 4 s, plus up to 0.25 s of jitter so workers spread out.
_backoff: Final = wait_exponential(multiplier=0.25, max=4.0) + wait_random(0, 0.25)


class Transient(Exception):
    """An answer worth another attempt; `wait` is what Auth0 asked for, if anything."""

    def __init__(self, reason: str, *, wait: float | None = None, rate_limited: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.rate_limited = rate_limited


def raise_for_transient(response: httpx.Response, now: float) -> None:
    status = response.status_code
    if status == 429:
        raise Transient("429", wait=requested_wait(response.headers, now), rate_limited=True)
    if status >= 500:
        raise Transient(str(status), wait=requested_wait(response.headers, now))


class Deadline(stop_base):
    """Stop when the sleep ahead would end past the deadline."""

    def __init__(self, clock: Callable[[], float], seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.started = clock()

    def elapsed(self, slept: float = 0.0) -> float:
        return max(self.clock() - self.started, slept)

    def remaining(self, slept: float = 0.0) -> float:
        return self.seconds - self.elapsed(slept)

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.upcoming_sleep > self.remaining(retry_state.idle_for)


def _wait(retry_state: RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, Transient) and exc.wait:
        return exc.wait  # Auth0 said when
    return float(_backoff(retry_state))


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    reason = exc.reason if isinstance(exc, Transient) else type(exc).__name__
    log.info(
        "auth0 call retried",
        extra={"fields": {"reason": reason, "wait": round(retry_state.upcoming_sleep, 3)}},
    )


async def with_retries(
    call: Callable[[Deadline], Awaitable[T]],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    deadline_seconds: float,
) -> T:
    """Run `call(deadline)` until it returns, retrying transient failures."""
    deadline = Deadline(clock, deadline_seconds)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type((Transient, httpx.TransportError)),
        wait=_wait,
        stop=stop_after_attempt(MAX_ATTEMPTS) | deadline,
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await call(deadline)
    except Transient as exc:
        if exc.rate_limited:
            raise RateLimited(exc.wait) from exc
        raise UpstreamUnavailable(exc.wait, f"Auth0 answered {exc.reason}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamUnavailable(None, "timeout") from exc
    except httpx.HTTPError as exc:  # connection errors, protocol errors, bad encodings
        raise UpstreamUnavailable(None, type(exc).__name__) from exc
    except httpx.InvalidURL as exc:
        raise Auth0Error(0, "invalid_url", str(exc)) from exc
    raise UpstreamUnavailable(None, "no attempt made")  # pragma: no cover - tenacity always tries
