"""The interval policy and the poll loop: when the agent asks the server."""

from __future__ import annotations

import asyncio
import time
from unittest.mock import MagicMock

import pytest
from tenacity import RetryCallState

from agent.errors import RejectedError, Rejection, TransientError
from agent.transport.poller import (
    ERROR_BACKOFF_MAX_S,
    REJECTED_RETRY_S,
    Cadence,
    Check,
    IntervalPolicy,
    Poller,
    Result,
    error_backoff,
)

FAST = Cadence.FAST


@pytest.mark.parametrize(
    ("unchanged", "cadence", "expected"),
    [
        (0, Cadence.FAST, 8.0),
        (1, Cadence.FAST, 12.0),
        (2, Cadence.FAST, 18.0),
        (3, Cadence.FAST, 27.0),
        (4, Cadence.FAST, 40.5),
        (5, Cadence.FAST, 45.0),
        (50, Cadence.FAST, 45.0),
        (0, Cadence.RELAXED, 60.0),
        (3, Cadence.RELAXED, 202.5),
        (9, Cadence.RELAXED, 300.0),
        (0, Cadence.IDLE, 60.0),
        (99, Cadence.IDLE, 300.0),
    ],
)
def test_interval_table(unchanged: int, cadence: Cadence, expected: float) -> None:
    """8 s after a change, x1.5 per unchanged answer, capped; 60 -> 300 s slow."""
    assert IntervalPolicy().interval(unchanged, cadence) == pytest.approx(expected)


def test_device_jitter_is_stable_and_within_twenty_percent() -> None:
    """Each device gets one fixed factor in [0.8, 1.2]; devices differ."""
    factors = {
        IntervalPolicy.for_device(f"device-key-{n:04d}-abcdef").jitter_factor
        for n in range(200)
    }
    again = IntervalPolicy.for_device("device-key-0001-abcdef").jitter_factor

    assert all(0.8 <= f <= 1.2 for f in factors)
    assert len(factors) > 150
    assert again == IntervalPolicy.for_device("device-key-0001-abcdef").jitter_factor


def _retry_state(attempt: int, error: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=MagicMock(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_error_backoff_is_bounded(attempt: int) -> None:
    """Backoff stays between 2 s and the cap, whatever the attempt."""
    delays = [
        error_backoff(_retry_state(attempt, TransientError("x"))) for _ in range(50)
    ]

    assert all(2.0 <= d <= ERROR_BACKOFF_MAX_S for d in delays)
    assert max(delays) <= min(ERROR_BACKOFF_MAX_S, 2.0 * 2 ** (attempt - 1)) + 1e-9


def test_error_backoff_honours_retry_after() -> None:
    """A server's Retry-After is a floor on the wait."""
    delay = error_backoff(_retry_state(1, TransientError("429", retry_after_s=30)))
    assert delay >= 30.0


class Script:
    """A fake coordinator check that replays results and records calls."""

    def __init__(self, *results: Result | BaseException) -> None:
        self.results = list(results)
        self.calls: list[tuple[Check, float]] = []

    async def __call__(self, check: Check) -> Result:
        self.calls.append((check, time.monotonic()))
        item = self.results.pop(0) if self.results else Result.UNCHANGED
        if isinstance(item, BaseException):
            raise item
        return item


async def _run_for(poller: Poller, seconds: float) -> None:
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _tiny(**kw: float) -> IntervalPolicy:
    bounds = {"fast_min_s": 0.05, "fast_max_s": 0.2, "slow_min_s": 5, "slow_max_s": 9}
    bounds.update(kw)
    return IntervalPolicy(**bounds)


async def test_unchanged_answers_stretch_the_interval() -> None:
    """Gaps between checks grow while nothing changes."""
    script = Script()
    poller = Poller(_tiny(), script, lambda: FAST)

    await _run_for(poller, 0.6)

    gaps = [b[1] - a[1] for a, b in zip(script.calls, script.calls[1:], strict=False)]
    assert len(gaps) >= 3
    assert gaps[2] > gaps[0] * 1.8


async def test_changed_answer_resets_to_the_minimum() -> None:
    """After a change the next check comes after the minimum interval again."""
    script = Script(
        Result.UNCHANGED, Result.UNCHANGED, Result.UNCHANGED, Result.CHANGED
    )
    schedules: list[float] = []
    poller = Poller(
        _tiny(), script, lambda: FAST, on_schedule=lambda i, d: schedules.append(i)
    )

    await _run_for(poller, 0.6)

    assert len(script.calls) >= 5
    assert pytest.approx(0.05) in schedules[1:]


async def test_poke_fetch_runs_promptly_and_a_burst_is_one_fetch() -> None:
    """Several pokes inside the window merge into a single fetch."""
    script = Script()
    poller = Poller(_tiny(fast_min_s=5, fast_max_s=5), script, lambda: FAST)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.01)
    script.calls.clear()

    for _ in range(5):
        poller.poke(Check.FETCH, 0.1)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    task.cancel()

    fetches = [c for c, _ in script.calls if c is Check.FETCH]
    assert fetches == [Check.FETCH]


async def test_transient_failure_is_retried_and_reported() -> None:
    """A failing check is retried with backoff; the failure is reported once per try."""
    failures: list[tuple[BaseException, float]] = []
    successes: list[bool] = []
    schedules: list[float] = []
    script = Script(TransientError("down", retry_after_s=0.0), Result.UNCHANGED)
    poller = Poller(
        _tiny(fast_min_s=5, fast_max_s=5),
        script,
        lambda: FAST,
        on_failure=lambda e, d: failures.append((e, d)),
        on_success=lambda: successes.append(True),
        on_schedule=lambda i, d: schedules.append(i),
    )
    poller.poke(Check.STATUS)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.05)
    # The backoff is at least 2 s; a poke is fresh evidence and retries now.
    poller.poke(Check.STATUS)
    await asyncio.sleep(0.1)
    task.cancel()

    assert len(failures) == 1 and isinstance(failures[0][0], TransientError)
    # While it backs off, the schedule reports the retry, not the 5 s interval.
    assert failures[0][1] in schedules
    assert successes == [True]
    assert len(script.calls) == 2


async def test_rejection_slows_polling_to_five_minutes() -> None:
    """After a rejection the next check is REJECTED_RETRY_S away."""
    schedules: list[float] = []
    script = Script(Result.REJECTED)
    poller = Poller(
        _tiny(), script, lambda: FAST, on_schedule=lambda i, d: schedules.append(i)
    )
    poller.poke(Check.STATUS)

    await _run_for(poller, 0.1)

    assert schedules[-1] == REJECTED_RETRY_S
    assert len(script.calls) == 1


async def test_unexpected_rejection_error_propagates_out_of_the_retry() -> None:
    """A RejectedError escaping a check is not retried in a loop."""
    script = Script(RejectedError(Rejection.TOKEN_INVALID, "no"))
    poller = Poller(_tiny(), script, lambda: FAST)
    poller.poke(Check.STATUS)

    with pytest.raises(RejectedError):
        await asyncio.wait_for(poller.run(), 1.0)
    assert len(script.calls) == 1


async def test_cadence_change_takes_effect_without_waiting_out_the_old_interval() -> (
    None
):
    """reschedule() recomputes the wait when push health changes."""
    cadence = [Cadence.RELAXED]
    script = Script()
    poller = Poller(_tiny(slow_min_s=30, slow_max_s=30), script, lambda: cadence[0])
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.05)
    count = len(script.calls)

    cadence[0] = Cadence.FAST
    poller.reschedule()
    await asyncio.sleep(0.15)
    task.cancel()

    assert len(script.calls) > count


async def test_cancellation_stops_the_loop_mid_sleep() -> None:
    """Cancelling run() ends it at once."""
    poller = Poller(_tiny(fast_min_s=60, fast_max_s=60), Script(), lambda: FAST)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.02)
    started = time.monotonic()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5


async def test_cancellation_during_a_check_is_not_retried() -> None:
    """A cancel that lands inside a check propagates instead of being retried."""
    started = asyncio.Event()

    async def slow_check(check: Check) -> Result:
        started.set()
        await asyncio.sleep(60)
        return Result.UNCHANGED

    poller = Poller(_tiny(), slow_check, lambda: FAST)
    poller.poke(Check.STATUS)
    task = asyncio.create_task(poller.run())
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)


async def test_a_fetch_keeps_a_later_follow_up_status_check() -> None:
    """The follow-up check scheduled after a push survives the push's fetch."""
    script = Script()
    poller = Poller(_tiny(fast_min_s=30, fast_max_s=30), script, lambda: FAST)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.01)
    script.calls.clear()

    poller.poke(Check.FETCH, 0.0)
    poller.poke(Check.STATUS, 0.15)
    await asyncio.sleep(0.3)
    task.cancel()

    assert [c for c, _ in script.calls] == [Check.FETCH, Check.STATUS]
