"""Everything the stub server knows and can be told: screens, bindings, faults."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog

from server_stub.school import School, school_day_anchor

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

log = structlog.get_logger(__name__)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
TOKEN_RE = re.compile(r"[0-9a-f]{64}|[0-9a-f]{32}")
# Real servers keep a built body this long before rebuilding it unasked.
CACHE_TTL_S = 300.0
# More snapshot requests than this per minute for one token get LOOP answers.
LOOP_PER_MINUTE = 120


def new_token() -> str:
    """A fresh 64-hex screen token."""
    return secrets.token_hex(32)


def new_short_code() -> str:
    """A fresh 6-character short code from the people-friendly alphabet."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def real_clock() -> datetime:
    """The wall-clock time; pass as ``StubState(clock=real_clock)`` to use it."""
    return datetime.now(UTC)


def token_hint(token: str) -> str:
    """The first characters of a token, safe to log."""
    return token[:6] + "…"


@dataclass
class Built:
    """One snapshot build: the body as it was, and its ETag."""

    body: dict[str, Any]
    etag: str
    revision: int
    built_at: float


@dataclass
class Screen:
    """One display screen: its token, short code, binding and one-shot flags."""

    token: str
    short_code: str
    bound_to: str | None = None
    refresh: bool = False
    reload: bool = False
    bucket: float = 3.0
    bucket_at: float = 0.0
    minute: deque[float] = field(default_factory=deque)


class StubState:
    """Mutable state of one stub server; used only from its event loop.

    ``clock`` returns an aware datetime; without one the school runs on the
    real time shifted so that it is 09:12 on a school day at construction and
    ticks on from there (about 3.7 hours later the day ends, as it would).
    ``max_sockets`` caps open WebSockets for the school (refusal 4429).
    """

    def __init__(
        self,
        *,
        tokens: list[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        school: School | None = None,
        rate_limit: bool = True,
        push_drop_window_s: float = 3.0,
        heartbeat_s: float = 20.0,
        ws_reject_style: Literal["handshake", "close"] = "handshake",
        cache_ttl_s: float = CACHE_TTL_S,
        max_sockets: int | None = None,
    ) -> None:
        self.school = school or School()
        self.screens: dict[str, Screen] = {}
        for token in tokens or [new_token()]:
            self.add_screen(token)
        self.rate_limit = rate_limit
        self.push_drop_window_s = push_drop_window_s
        self.heartbeat_s = heartbeat_s
        self.ws_reject_style = ws_reject_style
        self.cache_ttl_s = cache_ttl_s
        self.max_sockets = max_sockets
        self.revision = 57
        self.ws_enabled = True
        self.faults: dict[str, Any] = {}
        self.counters = {
            "status": 0,
            "snapshot": 0,
            "ws_connects": 0,
            "pushes": 0,
            "pushes_dropped": 0,
        }
        self.sockets: set[WebSocket] = set()
        self.last_push_at = -1e9
        self._built: Built | None = None
        self._previous: Built | None = None
        self._build_count = 0
        self._clock = clock or real_clock
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        if clock is None:
            real = real_clock()
            self._offset = school_day_anchor(self.school, real) - real

    # -- screens and binding ------------------------------------------------

    def add_screen(self, token: str) -> Screen:
        """Register a screen for ``token`` with a fresh short code.

        Raises ValueError for a token the API would refuse (not 32/64 hex).
        """
        if not TOKEN_RE.fullmatch(token.lower()):
            raise ValueError(f"not a display token: {token_hint(token)}")
        screen = Screen(token.lower(), new_short_code())
        self.screens[screen.token] = screen
        return screen

    @property
    def default_token(self) -> str:
        """The first screen's token."""
        return next(iter(self.screens))

    def screen_for_code(self, code: str) -> Screen | None:
        """The screen with short code ``code`` (any case), if there is one."""
        return next(
            (s for s in self.screens.values() if s.short_code == code.upper()), None
        )

    def claim(self, screen: Screen, device_key: str) -> bool:
        """Bind on first use; True if ``device_key`` owns the screen."""
        if screen.bound_to is None:
            screen.bound_to = device_key
            log.info(
                "screen_claimed", token=token_hint(screen.token), device=device_key[:8]
            )
        return screen.bound_to == device_key

    # -- clock --------------------------------------------------------------

    def now(self) -> datetime:
        """The school's clock: frozen, or the injected clock plus the offset."""
        if self._frozen is not None:
            return self._frozen
        return self._clock() + self._offset

    def set_clock(
        self,
        *,
        now: datetime | None = None,
        offset_s: float | None = None,
        real: bool = False,
        frozen: bool = False,
    ) -> None:
        """Jump to ``now``, run ``offset_s`` ahead of real time, or run real.

        ``frozen`` stops the clock at the instant chosen (the current one when
        nothing else is given); a later call without it lets the clock tick on
        from there. Every change drops the cached snapshot body.
        """
        target = now if now is not None else self._frozen
        if real:
            self._clock, self._offset = real_clock, timedelta(0)
        elif offset_s is not None:
            self._clock, self._offset = real_clock, timedelta(seconds=offset_s)
        elif target is not None:
            self._clock, self._offset = real_clock, target - real_clock()
        self._frozen = None
        if frozen:
            self._frozen = now if now is not None else self.now()
        self._built = None

    def now_ms(self) -> int:
        """The school's clock in epoch milliseconds, for X-Server-Time-MS."""
        return int(self.now().timestamp() * 1000)

    # -- snapshots ----------------------------------------------------------

    def snapshot(self) -> tuple[Built, str]:
        """The current build and its cache state (MISS when just rebuilt)."""
        built = self._built
        fresh = (
            built is not None
            and built.revision == self.revision
            and time.monotonic() - built.built_at < self.cache_ttl_s
        )
        if fresh:
            assert built is not None
            return built, "HIT"
        if built is not None and built.revision != self.revision:
            self._previous = built
        self._build_count += 1
        body = self.school.snapshot(
            self.now(), revision=self.revision, ws_enabled=self.ws_enabled
        )
        seed = f"{self.revision}:{self._build_count}:{secrets.token_hex(4)}"
        etag = '"' + hashlib.sha256(seed.encode()).hexdigest()[:32] + '"'
        self._built = Built(body, etag, self.revision, time.monotonic())
        return self._built, "MISS"

    def previous(self) -> Built | None:
        """The last build of an earlier revision, which the stale fault serves."""
        return self._previous

    def bump(self) -> int:
        """Raise the revision by one, as any staff edit does; returns it."""
        self.revision += 1
        return self.revision

    def set_revision(self, revision: int) -> None:
        """Set the revision, lower too, and drop the cached body."""
        if self._built is not None and self._built.revision != revision:
            self._previous = self._built
        self.revision = revision
        self._built = None

    # -- rate limiting --------------------------------------------------------

    def rate_limited(self, screen: Screen) -> bool:
        """A token bucket per screen: bursts of 3, refilled at 1 a second."""
        if not self.rate_limit:
            return False
        now = time.monotonic()
        screen.bucket = min(3.0, screen.bucket + (now - screen.bucket_at))
        screen.bucket_at = now
        if screen.bucket < 1.0:
            return True
        screen.bucket -= 1.0
        return False

    def looping(self, screen: Screen) -> bool:
        """More than LOOP_PER_MINUTE snapshot requests in a minute."""
        now = time.monotonic()
        screen.minute.append(now)
        while screen.minute and now - screen.minute[0] >= 60.0:
            screen.minute.popleft()
        return len(screen.minute) > LOOP_PER_MINUTE

    # -- admin view -------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The state as /admin/state reports it."""
        return {
            "revision": self.revision,
            "ws_enabled": self.ws_enabled,
            "school_name": self.school.data.get("settings", {}).get("name", ""),
            "now": self.school.local(self.now()).isoformat(),
            "screens": [
                {"token_hint": s.token[:6], "short_code": s.short_code}
                for s in self.screens.values()
            ],
            "bindings": {s.token: s.bound_to for s in self.screens.values()},
            "faults": dict(self.faults),
            "sockets": len(self.sockets),
            "counters": dict(self.counters),
        }
