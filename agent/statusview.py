"""A one-screen, human summary of ``status.json`` for technicians."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any


def summary(data: dict[str, Any], *, now: datetime | None = None) -> str:
    """Plain lines a technician can read over the phone."""
    now = now or datetime.now(UTC)
    running = _alive(data.get("pid"))
    lines = [
        f"agent:        {'running' if running else 'not running'}"
        f" (pid {data.get('pid') or '-'}, version {data.get('version', '?')})",
        f"paired:       {'yes' if data.get('paired') else 'no'}"
        f"  server {data.get('server') or '-'}",
        f"device key:   {data.get('device_key_hint') or '-'}…",
        f"showing:      revision {_v(data.get('rendered_revision'))}"
        f" since {_ago(data.get('rendered_at'), now)}",
        f"last change:  {_ago(data.get('last_change_at'), now)}",
        f"last reply:   {_ago(data.get('last_poll_at'), now)},"
        f" every {_v(data.get('poll_interval_s'))} s",
        f"push:         {data.get('push', '-')}"
        + (
            f" (failures in a row: {data['push_failures']})"
            if data.get("push_failures")
            else ""
        ),
    ]
    if data.get("notice"):
        lines.append(f"notice:       {data['notice']}")
    if data.get("offline_since"):
        lines.append(f"offline:      since {_ago(data['offline_since'], now)}")
    error = data.get("last_error")
    if isinstance(error, dict):
        since = f" ({_ago(error['at'], now)})" if error.get("at") else ""
        lines.append(
            f"last error:   {error.get('code', '?')}: {error.get('message', '')}{since}"
        )
    return "\n".join(lines)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _v(value: object) -> str:
    return "-" if value is None else str(value)


def _ago(stamp: object, now: datetime) -> str:
    if not isinstance(stamp, str):
        return "never"
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{stamp} ({seconds} s ago)"
    if seconds < 7200:
        return f"{stamp} ({seconds // 60} min ago)"
    return f"{stamp} ({seconds // 3600} h ago)"
