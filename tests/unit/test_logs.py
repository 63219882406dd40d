"""Logs: tokens scrubbed, repeats folded, journald fields kept."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from agent import logs
from agent.logs import JournalRenderer, RepeatLimiter

TOKEN = "9f" * 32


def test_json_lines_never_carry_a_whole_token() -> None:
    """Any field that contains a token is cut to a hint."""
    out = io.StringIO()
    logs.configure("info", "json", stream=out)

    structlog.get_logger("t").warning(
        "oops", url=f"https://s/api/display/status/{TOKEN}/"
    )

    line = json.loads(out.getvalue().splitlines()[-1])
    assert TOKEN not in out.getvalue()
    assert "9f9f9f…" in line["url"] and line["event"] == "oops"


def test_quiet_levels_are_filtered() -> None:
    """Below the configured level nothing is written."""
    out = io.StringIO()
    logs.configure("warning", "json", stream=out)

    structlog.get_logger("t").info("poll_ok")

    assert out.getvalue() == ""


def test_repeat_limiter_folds_a_storm_and_reports_the_count_later() -> None:
    """After the budget repeats are dropped; the next window says how many."""
    now = [0.0]
    limiter = RepeatLimiter(window_s=60, budget=2, monotonic=lambda: now[0])
    kept = 0
    for _ in range(5):
        try:
            limiter(None, "warning", {"event": "server_unreachable"})
            kept += 1
        except structlog.DropEvent:
            pass

    now[0] = 61.0
    event = limiter(None, "warning", {"event": "server_unreachable"})

    assert kept == 2
    assert event["suppressed"] == 3


def test_info_is_never_rate_limited() -> None:
    """State changes at INFO always get through."""
    limiter = RepeatLimiter(window_s=1000, budget=1)
    for _ in range(3):
        assert limiter(None, "info", {"event": "snapshot_applied"})["event"]


def test_journal_renderer_maps_priority_and_keeps_fields() -> None:
    """Entries carry PRIORITY, SYSLOG_IDENTIFIER and one field per event key."""
    entry = JournalRenderer()(
        None, "warning", {"event": "push_failed", "level": "warning", "failures": 3}
    )

    fields = dict(line.split("=", 1) for line in entry.decode().splitlines())
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "kiosk-agent"
    assert fields["EVENT"] == "push_failed" and fields["FAILURES"] == "3"
    assert fields["MESSAGE"] == "push_failed failures=3"


@pytest.fixture(autouse=True)
def _reset_logging() -> None:
    yield
    structlog.reset_defaults()
