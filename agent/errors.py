"""One exception root for the agent, and the single retry-or-give-up rule."""

from __future__ import annotations

from enum import StrEnum


class KioskError(Exception):
    """Root of every error the agent raises on purpose."""


class ConfigError(KioskError):
    """The settings or the state directory are unusable; fix and restart."""


class PairingError(KioskError):
    """A token or display URL could not be turned into a working pairing."""


class TransientError(KioskError):
    """The server or the network failed in a way that may heal by itself.

    ``retry_after_s`` is the server's own hint (HTTP ``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReadyError(TransientError):
    """The server answered, but with nothing to apply yet (placeholder, older body).

    Retried like any transient fault, but it does not mean the screen is offline.
    """


class RejectedError(KioskError):
    """The server refused this screen for a reason waiting will not fix.

    ``code`` is one of the :class:`Rejection` values.
    """

    def __init__(self, code: Rejection, message: str) -> None:
        super().__init__(message)
        self.code = code


class Rejection(StrEnum):
    """Why the server refuses this screen."""

    SCREEN_BOUND = "screen_bound"
    TOKEN_INVALID = "token_invalid"
    DEVICE_REQUIRED = "device_required"
    # A WebSocket handshake 403 does not say why; HTTP is asked instead.
    PUSH_REFUSED = "push_refused"


class Verdict(StrEnum):
    """What a failed attempt means for the next one."""

    RETRY = "retry"
    GIVE_UP = "give_up"


def classify(error: BaseException) -> Verdict:
    """Decide whether an attempt that raised ``error`` is worth repeating soon.

    Rejections and configuration errors will fail the same way again; network
    and server faults may heal. Anything unexpected is retried, because a kiosk
    that stops trying is a blank classroom screen. Cancellation and interpreter
    exits are never retried: they must propagate.
    """
    if not isinstance(error, Exception):
        return Verdict.GIVE_UP
    if isinstance(error, RejectedError | ConfigError | PairingError):
        return Verdict.GIVE_UP
    return Verdict.RETRY
