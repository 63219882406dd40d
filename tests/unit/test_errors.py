"""One pure rule decides retry or give up, for the poller and the listener alike."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import (
    ConfigError,
    NotReadyError,
    PairingError,
    RejectedError,
    Rejection,
    TransientError,
    Verdict,
    classify,
)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (TransientError("server error 503"), Verdict.RETRY),
        (NotReadyError("BUILDING"), Verdict.RETRY),
        (OSError("disk"), Verdict.RETRY),
        (ValueError("unexpected"), Verdict.RETRY),
        (RejectedError(Rejection.SCREEN_BOUND, "bound"), Verdict.GIVE_UP),
        (RejectedError(Rejection.TOKEN_INVALID, "bad"), Verdict.GIVE_UP),
        (ConfigError("bad key"), Verdict.GIVE_UP),
        (PairingError("no token"), Verdict.GIVE_UP),
        (asyncio.CancelledError(), Verdict.GIVE_UP),
        (KeyboardInterrupt(), Verdict.GIVE_UP),
    ],
)
def test_classify_table(error: BaseException, verdict: Verdict) -> None:
    """Faults that may heal are retried; rejections and cancellation are not."""
    assert classify(error) is verdict
