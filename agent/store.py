"""The last good snapshot on disk, with the ETag and revision it came with.

Only applied snapshots are stored, so whatever is here is safe to show at boot
before any network. The previous copy is kept too: an SD card that corrupts the
newest file still leaves yesterday's schedule rather than a blank screen.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agent.fsutil import atomic_write, ensure_private_dir

log = structlog.get_logger(__name__)

SNAPSHOT_FILE = "snapshot.json"
PREVIOUS_FILE = "snapshot.prev.json"


@dataclass(frozen=True)
class Cached:
    """A snapshot as it was applied, and what the server said about it."""

    snapshot: dict[str, Any]
    etag: str | None
    revision: int | None
    saved_at: datetime
    # Which pairing fetched it (Pairing.owner); None in older caches.
    owner: str | None = None


def is_snapshot_shaped(body: object) -> bool:
    """True for a JSON object with the parts every real snapshot has."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("meta"), dict)
        and isinstance(body.get("state"), dict)
    )


class SnapshotStore:
    """Reads and writes the cached snapshot under ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir

    def load(self) -> Cached | None:
        """The newest readable copy, or None; damaged files are logged, not raised."""
        for name in (SNAPSHOT_FILE, PREVIOUS_FILE):
            cached = self._read(self._dir / name)
            if cached is not None:
                return cached
        return None

    def save(
        self,
        snapshot: dict[str, Any],
        *,
        etag: str | None,
        revision: int | None,
        owner: str | None = None,
    ) -> Cached:
        """Store an applied snapshot durably; raises ``OSError`` if the disk fails."""
        cached = Cached(snapshot, etag, revision, datetime.now(UTC), owner)
        record = {
            "etag": etag,
            "owner": owner,
            "revision": revision,
            "saved_at": cached.saved_at.isoformat(),
            "snapshot": snapshot,
        }
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        ensure_private_dir(self._dir)
        current = self._dir / SNAPSHOT_FILE
        if current.exists():
            os.replace(current, self._dir / PREVIOUS_FILE)
        atomic_write(current, data.encode("utf-8"), mode=0o600)
        return cached

    def _read(self, path: Path) -> Cached | None:
        try:
            record = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.warning("cache_unreadable", file=path.name, error=str(exc))
            return None
        try:
            return _parse(record)
        except KeyError as exc:
            log.warning("cache_invalid", file=path.name, error=f"missing field {exc}")
            return None
        except (TypeError, ValueError) as exc:
            log.warning("cache_invalid", file=path.name, error=str(exc))
            return None


def _parse(record: Any) -> Cached:
    snapshot = record["snapshot"]
    if not is_snapshot_shaped(snapshot):
        raise ValueError("not a snapshot")
    etag = record.get("etag")
    revision = record.get("revision")
    if etag is not None and not isinstance(etag, str):
        raise TypeError("etag is not a string")
    if revision is not None and (
        isinstance(revision, bool) or not isinstance(revision, int)
    ):
        raise TypeError("revision is not an integer")
    saved_at = datetime.fromisoformat(record["saved_at"])
    owner = record.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise TypeError("owner is not a string")
    return Cached(snapshot, etag, revision, saved_at, owner)
