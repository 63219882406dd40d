"""The WebSocket listener: push invalidations, kept alive, reconnected with backoff.

Push only makes updates fast; the poller keeps the screen right without it. So
this listener gives up after a run of failures instead of hammering a server or
a proxy that will not carry WebSockets, and a rejection (bad token, screen bound
elsewhere) stops it at once: HTTP will say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

import structlog
import websockets
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent import __version__
from agent.errors import RejectedError, Rejection, TransientError, Verdict, classify
from agent.redact import scrub

log = structlog.get_logger(__name__)

PING_INTERVAL_S = 30.0
DEAD_AFTER_S = 75.0
HEALTHY_WITHIN_S = 60.0
BACKOFF_MAX_S = 60.0
MAX_FAILURES = 10
OPEN_TIMEOUT_S = 10.0
# A socket that dies before this, having said nothing, counts as a failure:
# otherwise a server that accepts and drops at once would be retried forever.
MIN_USEFUL_S = 10.0

_REJECT_CODES = {
    4400: Rejection.DEVICE_REQUIRED,
    4403: Rejection.TOKEN_INVALID,
    4408: Rejection.SCREEN_BOUND,
}


class PushState(StrEnum):
    """The listener's lifecycle, as shown in ``status``."""

    DISABLED = "disabled"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    GIVEN_UP = "given_up"
    REJECTED = "rejected"


class EventKind(StrEnum):
    REFRESH = "refresh"
    RELOAD = "reload"


@dataclass(frozen=True)
class PushEvent:
    """A message that asks the screen to act; ``revision`` may be unknown."""

    kind: EventKind
    revision: int | None
    received_at: float


def push_url(server_url: str, token: str, device_key: str) -> tuple[str, str]:
    """The WebSocket URL and the Origin header for ``server_url``."""
    parts = urlsplit(server_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"token": token, "dk": device_key})
    url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws/display/?{query}"
    return url, f"{parts.scheme}://{parts.netloc}"


def parse_message(raw: str | bytes, received_at: float) -> PushEvent | None:
    """Turn one frame into an event; heartbeats, pongs and junk give None."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    revision = message.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int):
        revision = None
    if kind in ("snapshot_refresh", "invalidate", "patch"):
        return PushEvent(EventKind.REFRESH, revision, received_at)
    if kind == "reload":
        return PushEvent(EventKind.RELOAD, revision, received_at)
    return None


class PushListener:
    """Holds one WebSocket open and reports events; see :meth:`run`."""

    def __init__(
        self,
        url: str,
        origin: str,
        on_event: Callable[[PushEvent], None],
        *,
        on_state: Callable[[PushState, int], None] | None = None,
        ping_interval_s: float = PING_INTERVAL_S,
        dead_after_s: float = DEAD_AFTER_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        max_failures: int = MAX_FAILURES,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._origin = origin
        self._on_event = on_event
        self._on_state = on_state or (lambda state, failures: None)
        self._ping_interval_s = ping_interval_s
        self._dead_after_s = dead_after_s
        self._backoff_max_s = backoff_max_s
        self._max_failures = max_failures
        self._open_timeout_s = open_timeout_s
        self._sleep = sleep
        self._monotonic = monotonic
        self.state = PushState.DISABLED
        self.failures = 0
        self.rejection: RejectedError | None = None
        self.last_message_at: float | None = None
        self._heard = False

    def healthy(self) -> bool:
        """Connected and heard from within the last minute."""
        if self.state is not PushState.CONNECTED or self.last_message_at is None:
            return False
        return self._monotonic() - self.last_message_at < HEALTHY_WITHIN_S

    async def run(self) -> PushState:
        """Connect and listen until given up or rejected; returns the final state.

        Each dropped connection that had been useful starts a fresh run of
        retries; failures in a row back off 1, 2, 4 … 60 s with full jitter.
        Cancellation closes the socket and propagates.
        """
        while True:
            retrying = AsyncRetrying(
                retry=retry_if_exception(lambda e: classify(e) is Verdict.RETRY),
                wait=wait_random_exponential(multiplier=1, max=self._backoff_max_s),
                stop=stop_after_attempt(self._max_failures),
                sleep=self._sleep,
                before_sleep=self._backing_off,
            )
            try:
                await retrying(self._session)
            except RetryError as exc:
                last = exc.last_attempt.exception()
                # before_sleep counted all but the last failure.
                self.failures = exc.last_attempt.attempt_number
                log.warning(
                    "push_given_up",
                    failures=self.failures,
                    error=scrub(str(last)),
                    detail="relying on polling until the network recovers",
                )
                self._set(PushState.GIVEN_UP)
                return self.state
            except RejectedError as exc:
                log.warning("push_rejected", reason=exc.code.value, message=str(exc))
                self.rejection = exc
                self._set(PushState.REJECTED)
                return self.state

    async def _session(self) -> None:
        """One connection from handshake to close; raises if it was not useful."""
        self._set(PushState.CONNECTING)
        started = self._monotonic()
        self._heard = False
        try:
            async with self._connect() as socket:
                self._connected()
                await self._serve(socket)
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == 403:
                raise RejectedError(
                    Rejection.PUSH_REFUSED, "WebSocket refused at the handshake (403)"
                ) from exc
            raise TransientError(f"WebSocket handshake answered {code}") from exc
        except ConnectionClosed as exc:
            useful = self._heard or self._monotonic() - started >= MIN_USEFUL_S
            self._raise_for_close(exc, useful)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise TransientError(f"{type(exc).__name__}: {scrub(str(exc))}") from exc
        finally:
            if self.state is PushState.CONNECTED:
                self._set(PushState.BACKOFF)
        if not self._heard and self._monotonic() - started < MIN_USEFUL_S:
            raise TransientError("WebSocket closed before saying anything")
        # A useful connection ended: the next attempt starts a fresh series.
        self.failures = 0

    def _connect(self) -> connect:
        return connect(
            self._url,
            origin=websockets.typing.Origin(self._origin),
            open_timeout=self._open_timeout_s,
            ping_interval=None,
            close_timeout=2,
            user_agent_header=f"kiosk-agent/{__version__}",
        )

    async def _serve(self, socket: ClientConnection) -> None:
        """Read frames until the socket closes or goes silent too long."""
        pinger = asyncio.create_task(self._ping_forever(socket), name="push-ping")
        try:
            while True:
                try:
                    async with asyncio.timeout(self._dead_after_s):
                        raw = await socket.recv()
                except TimeoutError:
                    log.warning("push_silent", seconds=self._dead_after_s)
                    socket.transport.abort()
                    if self._heard:
                        return
                    raise TransientError("WebSocket silent since it opened") from None
                if not self._heard:
                    self._first_message()
                self.last_message_at = self._monotonic()
                event = parse_message(raw, self.last_message_at)
                if event is not None:
                    self._on_event(event)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def _ping_forever(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self._ping_interval_s)
                await socket.send('{"type":"ping"}')

    def _connected(self) -> None:
        log.debug("push_open")
        self.last_message_at = self._monotonic()
        self._set(PushState.CONNECTED)

    def _first_message(self) -> None:
        """The socket works: it counts as a success from here on."""
        self._heard = True
        if self.failures:
            log.info("push_recovered", after_failures=self.failures)
        else:
            log.info("push_connected")
        self.failures = 0
        self._set(PushState.CONNECTED)

    def _raise_for_close(self, exc: ConnectionClosed, useful: bool) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        rejection = _REJECT_CODES.get(code)
        if rejection is not None:
            raise RejectedError(rejection, f"WebSocket closed with {code}") from exc
        log.debug("push_closed", code=code)
        if not useful:
            raise TransientError(f"WebSocket closed with {code} at once") from exc

    def _backing_off(self, retry_state: RetryCallState) -> None:
        self.failures = retry_state.attempt_number
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        event = "push_failed" if self.failures == 1 else "push_retry"
        logger = log.warning if self.failures == 1 else log.debug
        logger(
            event,
            failures=self.failures,
            retry_in_s=round(retry_state.upcoming_sleep, 1),
            error=scrub(str(error)),
        )
        self._set(PushState.BACKOFF)

    def _set(self, state: PushState) -> None:
        self.state = state
        self._on_state(state, self.failures)
