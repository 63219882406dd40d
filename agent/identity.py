"""The device key: created once, kept forever, because the server binds to it.

A screen token is claimed by the first device key that uses it, and there is no
takeover: a Pi that loses its key is locked out until an administrator unbinds
the screen. So the key is written twice (``device_key`` and
``device_key.bak``), each atomically, and a new key is made only when neither
copy exists or both hold garbage. A copy that cannot be *read* (permissions,
I/O error) is never replaced: the key may still be in it.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from pathlib import Path

import structlog

from agent.errors import ConfigError
from agent.fsutil import atomic_write, ensure_private_dir

log = structlog.get_logger(__name__)

KEY_FILE = "device_key"
BACKUP_FILE = "device_key.bak"
_KEY_RE = re.compile(r"[A-Za-z0-9._:-]{16,64}")


class IdentityError(ConfigError):
    """The device key exists but cannot be read; a new one would lock us out."""


def is_valid_key(value: str) -> bool:
    """True for keys the server accepts and we are willing to send."""
    return _KEY_RE.fullmatch(value) is not None


def key_hint(key: str) -> str:
    """The first 8 characters: what an administrator reads off the screen."""
    return key[:8]


def load_or_create(state_dir: Path) -> str:
    """Return this device's key, repairing a damaged copy or creating the first.

    Raises :class:`IdentityError` when a copy exists but cannot be read, so the
    caller can keep the screen up and try again later instead of minting a key.
    """
    ensure_private_dir(state_dir)
    primary = state_dir / KEY_FILE
    backup = state_dir / BACKUP_FILE
    main_key, main_state = _read(primary)
    spare_key, spare_state = _read(backup)

    if main_state == "unreadable" or spare_state == "unreadable":
        if main_key or spare_key:
            key = main_key or spare_key
            assert key is not None
            log.warning("device_key_copy_unreadable", key=key_hint(key))
            return key
        raise IdentityError(
            f"the device key in {state_dir} exists but cannot be read; fix its "
            "permissions or the storage, a new key would lock this screen out"
        )

    if main_key and spare_key:
        if main_key != spare_key:
            log.warning("device_key_backup_differs", key=key_hint(main_key))
            _write(backup, main_key)
        return main_key

    if main_key or spare_key:
        key = main_key or spare_key
        assert key is not None
        damaged = backup if main_key else primary
        state = spare_state if main_key else main_state
        log.warning(
            "device_key_repaired", file=damaged.name, problem=state, key=key_hint(key)
        )
        _quarantine(damaged, state)
        _write(damaged, key)
        return key

    # Neither copy holds a key. If files were there, the key is lost for good.
    if main_state == "corrupt" or spare_state == "corrupt":
        log.error(
            "device_key_lost",
            detail="both copies are damaged; a new key was made and an "
            "administrator must unbind this screen on the server",
        )
        _quarantine(primary, main_state)
        _quarantine(backup, spare_state)
    key = str(uuid.uuid4())
    _write(primary, key)
    _write(backup, key)
    log.info("device_key_created", key=key_hint(key))
    return key


def _read(path: Path) -> tuple[str | None, str]:
    """Read one copy: (key, "ok") or (None, "missing" | "corrupt" | "unreadable")."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        log.error("device_key_read_failed", file=path.name, error=str(exc))
        return None, "unreadable"
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None, "corrupt"
    if not is_valid_key(text):
        return None, "corrupt"
    return text, "ok"


def _write(path: Path, key: str) -> None:
    atomic_write(path, (key + "\n").encode("ascii"), mode=0o600)


def _quarantine(path: Path, state: str) -> None:
    """Keep a damaged copy aside for a technician rather than overwrite it."""
    if state != "corrupt":
        return
    with contextlib.suppress(OSError):
        path.rename(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
