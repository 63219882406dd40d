"""The server's clock, as seen through ``X-Server-Time-MS`` headers.

A Pi without a real-time clock may boot hours off until NTP answers, and a
classroom screen must still count down to the bell correctly, so the screen
runs on local time plus a smoothed offset to the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# New samples move the offset a quarter of the way: one slow answer cannot jerk
# the countdown, but a real clock step settles within a few polls.
_SMOOTHING = 0.25
# A jump this large is a clock step (NTP sync, server change), not jitter.
_STEP_MS = 5_000.0


class ServerClock:
    """Smoothed ``server time - local time`` in milliseconds."""

    def __init__(self, wall_ms: Callable[[], float] | None = None) -> None:
        self._wall_ms = wall_ms or (lambda: time.time() * 1000.0)
        self._offset_ms: float | None = None

    @property
    def offset_ms(self) -> float:
        """Add to local epoch milliseconds to get the server's; 0 until known."""
        return self._offset_ms or 0.0

    @property
    def known(self) -> bool:
        return self._offset_ms is not None

    def now_ms(self) -> float:
        """The server's epoch milliseconds now, by our best estimate."""
        return self._wall_ms() + self.offset_ms

    def observe(self, server_ms: float, sent_ms: float, received_ms: float) -> None:
        """Take one header reading; the request's midpoint is when it was stamped."""
        sample = server_ms - (sent_ms + received_ms) / 2.0
        if self._offset_ms is None or abs(sample - self._offset_ms) > _STEP_MS:
            self._offset_ms = sample
        else:
            self._offset_ms += _SMOOTHING * (sample - self._offset_ms)
