"""The school model and the stub's clock, without a server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server_stub.school import School, load_sample
from server_stub.state import StubState, real_clock

# 2026-04-22 is a Wednesday, a school day.
SCHOOL_DAY = "2026-04-22"


def body_at(local: str, school: School | None = None) -> dict[str, Any]:
    """The body ``school`` (default: the sample) builds at ``local`` +03:00."""
    instant = datetime.fromisoformat(f"{SCHOOL_DAY}T{local}+03:00")
    return (school or School()).snapshot(instant, revision=1, ws_enabled=True)


def test_default_clock_is_mid_period() -> None:
    """Without a clock the sample school is inside its window, in a period."""
    state = StubState()

    body = state.school.snapshot(state.now(), revision=1, ws_enabled=True)

    assert body["meta"]["is_active_window"] is True
    assert body["state"]["type"] == "period"


def test_default_clock_ticks() -> None:
    """The default shifted clock moves with real time."""
    state = StubState()

    first = state.now()
    time.sleep(0.01)

    assert state.now() > first


def test_real_clock_option() -> None:
    """clock=real_clock runs the school on the wall clock."""
    state = StubState(clock=real_clock)

    assert abs(state.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_injected_clock_is_used() -> None:
    """An injected clock is the school's clock, unshifted."""
    fixed = datetime.fromisoformat(f"{SCHOOL_DAY}T05:00:00+03:00")

    state = StubState(clock=lambda: fixed)

    assert state.now() == fixed


def test_frozen_clock_stands_still() -> None:
    """set_clock(now=..., frozen=True) keeps the clock at that instant."""
    state = StubState()
    instant = datetime.fromisoformat(f"{SCHOOL_DAY}T10:00:00+03:00")

    state.set_clock(now=instant, frozen=True)
    time.sleep(0.01)

    assert state.now() == instant


def test_unfrozen_clock_resumes_where_it_stood() -> None:
    """Unfreezing lets the clock tick on from the frozen instant."""
    state = StubState()
    instant = datetime.fromisoformat(f"{SCHOOL_DAY}T10:00:00+03:00")
    state.set_clock(now=instant, frozen=True)

    state.set_clock()

    assert timedelta(0) <= state.now() - instant < timedelta(seconds=1)


def test_before_the_first_period_inside_the_window() -> None:
    """At 06:45 the state is before, with the school's copy and the first start."""
    body = body_at("06:45:00")

    assert body["state"]["type"] == "before"
    assert body["state"]["label"] == body["settings"]["display_before_title"]
    assert body["state"]["to"] == "07:00"
    assert body["state"]["remaining_seconds"] == 15 * 60
    assert body["next_period"]["index"] == 1
    assert body["day_path"]


def test_after_the_last_period_inside_the_window() -> None:
    """At 12:45 the state is after, the window still open."""
    body = body_at("12:45:00")

    assert body["state"]["type"] == "after"
    assert body["state"]["from"] == "12:40"
    assert body["meta"]["is_active_window"] is True
    assert body["next_period"] is None


def test_gap_between_blocks_is_day() -> None:
    """A time between two blocks that the timetable leaves open is day."""
    data = load_sample()
    data["bell"] = [b for b in data["bell"] if b["kind"] == "period"]

    body = body_at("08:40:00", School(data))

    assert body["state"]["type"] == "day"
    assert (body["state"]["from"], body["state"]["to"]) == ("08:30", "08:50")


def test_next_period_skips_a_break() -> None:
    """In the period before a break, next_period is the period after it."""
    body = body_at("08:00:00")

    assert body["current_period"]["index"] == 2
    assert body["next_period"]["index"] == 3


def test_window_end_closes_the_day() -> None:
    """At 12:55 the active window is over: OFF_HOURS with empty lists."""
    body = body_at("12:55:00")

    assert body["state"]["type"] == "OFF_HOURS"
    assert body["day_path"] == []


def test_sunday_is_a_school_day() -> None:
    """The school teaches Sunday to Thursday."""
    school = School()

    days = [datetime(2026, 4, 19 + n).date() for n in range(7)]

    assert [school.is_school_day(d) for d in days] == [True] * 5 + [False] * 2


def test_fixed_tokens_are_checked() -> None:
    """A token the API would refuse cannot be given to StubState."""
    with pytest.raises(ValueError, match="not a display token"):
        StubState(tokens=["not-hex"])


def test_fixed_tokens_are_used_in_lower_case() -> None:
    """Fixed tokens become the screens' tokens, lower-cased, in order."""
    tokens = ["AB" * 32, "cd" * 16]

    state = StubState(tokens=tokens)

    assert list(state.screens) == ["ab" * 32, "cd" * 16]
    assert state.default_token == "ab" * 32
