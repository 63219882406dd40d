"""The agent's live state, kept in ``status.json`` for ``kiosk-agent status``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agent import __version__
from agent.fsutil import atomic_write

log = structlog.get_logger(__name__)

STATUS_FILE = "status.json"

# Every key `status` promises, with its value before anything is known.
_EMPTY: dict[str, Any] = {
    "paired": False,
    "server": None,
    "device_key_hint": None,
    "revision": None,
    "etag": None,
    "last_poll_at": None,
    "poll_interval_s": None,
    "next_poll_at": None,
    "push": "disabled",
    "push_failures": 0,
    "last_change_at": None,
    "rendered_revision": None,
    "rendered_at": None,
    "offline_since": None,
    "last_error": None,
    "notice": None,
    "pid": None,
    "started_at": None,
    "updated_at": None,
    "version": __version__,
}


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StatusFile:
    """Holds the live state and rewrites the file atomically when it changes.

    A disk error is logged once and otherwise ignored: a full SD card must not
    take the screen down with it.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATUS_FILE
        self._data = dict(_EMPTY)
        self._write_failed = False

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._data)

    def update(self, **fields: Any) -> None:
        unknown = set(fields) - set(_EMPTY)
        if unknown:
            raise KeyError(f"unknown status field(s): {', '.join(sorted(unknown))}")
        if all(self._data.get(key) == value for key, value in fields.items()):
            return
        self._data.update(fields)
        self._data["updated_at"] = utc_now_iso()
        self._flush()

    def _flush(self) -> None:
        text = json.dumps(self._data, ensure_ascii=False, indent=2, sort_keys=True)
        try:
            atomic_write(self.path, text.encode("utf-8") + b"\n", mode=0o644)
        except OSError as exc:
            if not self._write_failed:
                log.warning("status_write_failed", error=str(exc))
            self._write_failed = True
        else:
            self._write_failed = False


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last status the agent wrote, or None if there is none readable."""
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
