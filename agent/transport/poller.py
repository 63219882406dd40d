"""When to ask the server: the adaptive interval policy and the poll loop.

Polling never stops; it is what keeps a screen right when pushes are lost. The
loop asks a ``check`` callable supplied by the coordinator and only decides
*when*: after the interval, early when poked (a push, a follow-up, a wake-up
time), or after an error backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_never,
    wait_random_exponential,
)

from agent.errors import TransientError, Verdict, classify

log = structlog.get_logger(__name__)

GROWTH = 1.5
JITTER = 0.20
REJECTED_RETRY_S = 300.0
ERROR_BACKOFF_MIN_S = 2.0
ERROR_BACKOFF_MAX_S = 120.0


class Cadence(StrEnum):
    """Which schedule applies right now."""

    FAST = "fast"  # inside the active window, push not healthy
    RELAXED = "relaxed"  # push healthy: polling is only a safety net
    IDLE = "idle"  # outside the active window


class Check(StrEnum):
    """What the loop asks the coordinator to do."""

    STATUS = "status"  # cheap revision check, snapshot only if changed
    FETCH = "fetch"  # go straight to the snapshot (a push said it changed)


class Result(StrEnum):
    """What one check found."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IntervalPolicy:
    """Interval after ``n`` unchanged answers: min x 1.5^n, capped, jittered.

    The jitter is a fixed factor per device, so a school's screens spread out
    over the interval instead of polling in lockstep after a power cut.
    """

    fast_min_s: float = 8.0
    fast_max_s: float = 45.0
    slow_min_s: float = 60.0
    slow_max_s: float = 300.0
    jitter_factor: float = 1.0

    @classmethod
    def for_device(cls, device_key: str, **bounds: float) -> IntervalPolicy:
        digest = hashlib.sha256(device_key.encode()).digest()
        fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
        return cls(jitter_factor=1.0 - JITTER + 2 * JITTER * fraction, **bounds)

    def interval(self, unchanged: int, cadence: Cadence) -> float:
        low, high = (
            (self.fast_min_s, self.fast_max_s)
            if cadence is Cadence.FAST
            else (self.slow_min_s, self.slow_max_s)
        )
        base = min(high, low * GROWTH ** min(unchanged, 64))
        return base * self.jitter_factor


def error_backoff(retry_state: RetryCallState) -> float:
    """Delay before retrying a failed check: jittered exponential, or Retry-After."""
    wait = wait_random_exponential(
        multiplier=ERROR_BACKOFF_MIN_S, min=ERROR_BACKOFF_MIN_S, max=ERROR_BACKOFF_MAX_S
    )(retry_state)
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, TransientError) and error.retry_after_s is not None:
        return max(wait, error.retry_after_s)
    return wait


class Poller:
    """Runs ``check`` forever on the policy's schedule; never returns.

    Cancelling :meth:`run` stops it at once (mid-sleep or mid-check).
    """

    def __init__(
        self,
        policy: IntervalPolicy,
        check: Callable[[Check], Awaitable[Result]],
        cadence: Callable[[], Cadence],
        *,
        on_failure: Callable[[BaseException, float], None] | None = None,
        on_success: Callable[[], None] | None = None,
        on_schedule: Callable[[float, float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._check = check
        self._cadence = cadence
        self._on_failure = on_failure or (lambda error, delay: None)
        self._on_success = on_success or (lambda: None)
        self._on_schedule = on_schedule or (lambda interval, due: None)
        self._monotonic = monotonic
        self._unchanged = 0
        self._rejected = False
        self._last_check = monotonic()
        self._pokes: dict[Check, float] = {}
        self._poked = asyncio.Event()
        self._rescheduled = asyncio.Event()

    def poke(self, check: Check = Check.STATUS, delay_s: float = 0.0) -> None:
        """Ask for a check within ``delay_s``; pokes inside that window merge."""
        due = self._monotonic() + delay_s
        self._pokes[check] = min(due, self._pokes.get(check, due))
        self._poked.set()

    def reschedule(self) -> None:
        """Recompute the next poll now (the cadence may have changed)."""
        self._rescheduled.set()

    async def run(self) -> NoReturn:
        while True:
            check = await self._next_due()
            await self._run_check(check)

    async def _next_due(self) -> Check:
        """Sleep until a poke or the interval falls due; say which check to run."""
        while True:
            now = self._monotonic()
            interval = self._current_interval()
            due_poll = self._last_check + interval
            self._on_schedule(interval, due_poll)
            candidates = [(due, check) for check, due in self._pokes.items()]
            candidates.append((due_poll, Check.STATUS))
            due, check = min(
                candidates, key=lambda item: (item[0], item[1] != Check.FETCH)
            )
            if due <= now:
                self._take_pokes(check)
                return check
            await self._idle(due - now)

    def _take_pokes(self, check: Check) -> None:
        # A fetch also answers a status poke that is already due, but not a
        # later one: that is a follow-up meant to catch a dropped push.
        self._pokes.pop(check, None)
        status_due = self._pokes.get(Check.STATUS, float("inf"))
        if check is Check.FETCH and status_due <= self._monotonic():
            self._pokes.pop(Check.STATUS)

    def _current_interval(self) -> float:
        if self._rejected:
            return REJECTED_RETRY_S
        return self._policy.interval(self._unchanged, self._cadence())

    async def _run_check(self, first: Check) -> None:
        """One check, retried through transient failures with backoff."""
        pending = [first]

        async def attempt() -> Result:
            # A poke that arrived during backoff decides what the retry does.
            check = pending.pop() if pending else self._pop_due_or(Check.STATUS)
            return await self._check(check)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: classify(e) is Verdict.RETRY),
            wait=error_backoff,
            stop=stop_never,
            sleep=self._backoff,
            before_sleep=self._report_failure,
            reraise=True,
        )
        result: Result = await retrying(attempt)
        self._record(result)

    def _pop_due_or(self, default: Check) -> Check:
        now = self._monotonic()
        for check in (Check.FETCH, Check.STATUS):
            if self._pokes.get(check, now + 1) <= now:
                self._take_pokes(check)
                return check
        return default

    def _record(self, result: Result) -> None:
        self._last_check = self._monotonic()
        self._rejected = result is Result.REJECTED
        self._unchanged = 0 if result is Result.CHANGED else self._unchanged + 1
        if result is not Result.REJECTED:
            self._on_success()

    def _report_failure(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        delay = retry_state.upcoming_sleep
        if error is not None:
            self._on_failure(error, delay)
        # While backing off, the next check is the retry, not the interval.
        self._on_schedule(delay, self._monotonic() + delay)

    async def _idle(self, seconds: float) -> None:
        """Wait between checks; a poke or a cadence change ends it early."""
        await _wait_any((self._poked, self._rescheduled), seconds)

    async def _backoff(self, seconds: float) -> None:
        """Wait after a failure; only a poke (fresh evidence) ends it early."""
        await _wait_any((self._poked,), seconds)


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Clear ``events``, then wait until one is set or ``seconds`` pass."""
    for event in events:
        event.clear()
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(
            waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
