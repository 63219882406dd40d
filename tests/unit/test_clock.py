"""The server clock offset is smoothed but follows real steps."""

from __future__ import annotations

import pytest

from agent.clock import ServerClock


def test_unknown_clock_has_zero_offset() -> None:
    """Before any header, local time is used as is."""
    clock = ServerClock(wall_ms=lambda: 1000.0)
    assert not clock.known and clock.offset_ms == 0.0 and clock.now_ms() == 1000.0


def test_first_sample_uses_the_request_midpoint() -> None:
    """The server stamped its answer halfway through the round trip."""
    clock = ServerClock()
    clock.observe(server_ms=10_500.0, sent_ms=9_000.0, received_ms=9_200.0)
    assert clock.offset_ms == pytest.approx(1_400.0)


def test_small_jitter_is_smoothed() -> None:
    """One slow answer moves the offset only part of the way."""
    clock = ServerClock()
    clock.observe(1_000.0, 0.0, 0.0)
    clock.observe(1_400.0, 0.0, 0.0)
    assert 1_000.0 < clock.offset_ms < 1_400.0


def test_large_step_is_taken_at_once() -> None:
    """An NTP step of minutes is adopted immediately."""
    clock = ServerClock()
    clock.observe(1_000.0, 0.0, 0.0)
    clock.observe(600_000.0, 0.0, 0.0)
    assert clock.offset_ms == 600_000.0
