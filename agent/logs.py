"""Logging set-up: readable on a terminal, JSON lines in a pipe, native in journald.

Events are short snake_case names with fields. The Pi's journal is small, so the
agent logs state changes rather than heartbeats, and a warning that repeats
faster than the budget allows is folded into one line with a count.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

from agent.redact import scrub

SYSLOG_IDENTIFIER = "kiosk-agent"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
REPEAT_WINDOW_S = 60.0
REPEAT_BUDGET = 5
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def configure(
    level: str = "info", fmt: str = "auto", *, stream: TextIO | None = None
) -> str:
    """Configure structlog and the stdlib loggers; returns the format chosen.

    ``auto`` picks ``journal`` under systemd (``JOURNAL_STREAM`` set), ``console``
    on a terminal and ``json`` otherwise.
    """
    out = stream or sys.stderr
    chosen = _choose(fmt, out)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        RepeatLimiter(),
        _scrub_strings,
    ]
    factory: Any = structlog.PrintLoggerFactory(file=out)
    if chosen == "journal" and os.path.exists(JOURNAL_SOCKET):
        processors.append(JournalRenderer())
        factory = JournalLoggerFactory(JOURNAL_SOCKET, fallback=out)
    elif chosen == "console":
        processors += [
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=out.isatty()),
        ]
    else:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=_LEVELS[level], stream=out, force=True)
    # These libraries narrate every request and frame; we log what matters.
    for noisy in ("httpx", "httpcore", "websockets", "asyncio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen


def _choose(fmt: str, out: TextIO) -> str:
    if fmt != "auto":
        return fmt
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        return "journal"
    return "console" if out.isatty() else "json"


def _scrub_strings(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Last line of defence: no field may carry a whole token."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = scrub(value)
    return event


class RepeatLimiter:
    """Drops a warning or error that repeats more than the budget in a window.

    The first line after a quiet window reports how many were folded away.
    """

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        budget: int = REPEAT_BUDGET,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._budget = budget
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, int, int]] = {}

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if method not in ("warning", "error"):
            return event
        name = str(event.get("event"))
        now = self._monotonic()
        start, count, dropped = self._seen.get(name, (now, 0, 0))
        if now - start >= self._window_s:
            start, count = now, 0
            if dropped:
                event["suppressed"] = dropped
            dropped = 0
        count += 1
        if count > self._budget:
            self._seen[name] = (start, count, dropped + 1)
            raise structlog.DropEvent
        self._seen[name] = (start, count, dropped)
        return event


class JournalRenderer:
    """Renders an event as journald's native fields (KEY=value lines)."""

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> bytes:
        name = str(event.pop("event", ""))
        level = str(event.pop("level", method))
        exc = event.pop("exc_info", None)
        fields = " ".join(f"{key}={value}" for key, value in event.items())
        lines = {
            "MESSAGE": f"{name} {fields}".strip(),
            "PRIORITY": str(_PRIORITY.get(level, 6)),
            "SYSLOG_IDENTIFIER": SYSLOG_IDENTIFIER,
            "EVENT": name,
        }
        for key, value in event.items():
            field = "".join(c if c.isalnum() else "_" for c in key.upper()).lstrip("_")
            if field and field not in lines:
                lines[field] = str(value)
        if exc:
            lines["EXCEPTION"] = str(exc)
        return b"".join(_journal_field(k, v) for k, v in lines.items())


def _journal_field(key: str, value: str) -> bytes:
    data = value.encode("utf-8", "replace")
    if b"\n" not in data:
        return key.encode() + b"=" + data + b"\n"
    # Multi-line values use the length-prefixed binary form.
    return key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"


class JournalLogger:
    """Sends pre-rendered entries to journald; falls back to a stream if it fails."""

    def __init__(self, path: str, fallback: TextIO) -> None:
        self._path = path
        self._fallback = fallback
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def msg(self, message: bytes) -> None:
        try:
            self._socket.sendto(message, self._path)
        except OSError:
            self._fallback.write(message.decode("utf-8", "replace") + "\n")

    log = debug = info = warning = error = critical = exception = msg


class JournalLoggerFactory:
    def __init__(self, path: str, fallback: TextIO) -> None:
        self._logger = JournalLogger(path, fallback)

    def __call__(self, *args: Any) -> JournalLogger:
        return self._logger
