"""systemd notify: READY, STATUS, WATCHDOG and STOPPING over ``$NOTIFY_SOCKET``.

Speaks the datagram protocol of ``sd_notify(3)`` directly, so the agent needs
no libsystemd binding. Without a notify socket (a terminal, a test, the
desktop autostart) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

NOTIFY_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


class Notifier:
    """sd_notify over $NOTIFY_SOCKET (paths and abstract '@' names); no-op if unset.

    Send failures never raise: the first is logged at WARNING, repeats at
    DEBUG, and the first success after a failure at INFO.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        path = socket_path if socket_path is not None else self._environ.get(NOTIFY_ENV)
        self._address = _address(path)
        if path and self._address is None:
            log.warning("notify_socket_invalid", socket=path)
        self._sock: socket.socket | None = None
        self._closed = False
        self._failing = False
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        """True while there is a notify socket to talk to."""
        return self._address is not None and not self._closed

    def ready(self, status: str | None = None) -> None:
        """Tell systemd start-up is done, optionally with a status line."""
        fields = ["READY=1"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
            self._last_status = status
        self._send(fields)

    def status(self, text: str) -> None:
        """Set the status line ``systemctl status`` shows; repeats are skipped."""
        if text == self._last_status:
            return
        self._last_status = text
        self._send([f"STATUS={_one_line(text)}"])

    def watchdog(self) -> None:
        """Ping the service watchdog; call at least every ``watchdog_interval_s``."""
        self._send(["WATCHDOG=1"])

    def stopping(self) -> None:
        """Tell systemd a clean shutdown has begun."""
        self._send(["STOPPING=1"])

    def watchdog_interval_s(self) -> float | None:
        """Seconds between pings (half of WATCHDOG_USEC), or None if not watched.

        ``WATCHDOG_PID`` names the process systemd expects the pings from. The
        agent also accepts its parent's pid there, because under ``cage`` the
        service's main process is the compositor, which never pings.
        """
        raw = self._environ.get(WATCHDOG_USEC_ENV)
        if not raw or not raw.isdigit() or int(raw) == 0:
            return None
        pid = self._environ.get(WATCHDOG_PID_ENV)
        if pid and pid not in (str(os.getpid()), str(os.getppid())):
            return None
        return int(raw) / 2_000_000

    def close(self) -> None:
        """Release the socket; later calls are no-ops. Safe to call twice."""
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, fields: list[str]) -> None:
        if not self.enabled:
            return
        assert self._address is not None
        message = "\n".join(fields).encode()

        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # A stuck manager must not stall the agent's event loop.
                self._sock.setblocking(False)
            self._sock.sendto(message, self._address)
        except OSError as exc:
            level = log.debug if self._failing else log.warning
            level("notify_failed", error=type(exc).__name__, detail=str(exc))
            self._failing = True
            return

        if self._failing:
            log.info("notify_recovered")
            self._failing = False


def _address(path: str | None) -> str | bytes | None:
    """The sendto address for a NOTIFY_SOCKET value, or None if unusable."""
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    if path.startswith("/"):
        return path
    return None


def _one_line(text: str) -> str:
    """Fold newlines, which would otherwise start a new notify field."""
    return " ".join(text.splitlines())
