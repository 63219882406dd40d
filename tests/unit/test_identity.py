"""The device key survives damage to either copy and is never silently replaced."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.identity import (
    BACKUP_FILE,
    KEY_FILE,
    IdentityError,
    is_valid_key,
    load_or_create,
)

KEY = "0f1e2d3c-4b5a-4697-8877-665544332211"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_uuid_key_in_both_copies_with_mode_0600(
    tmp_path: Path,
) -> None:
    """A new device gets a UUID4 key, written twice, readable only by its owner."""
    key = load_or_create(tmp_path)

    assert is_valid_key(key) and len(key) == 36 and key[14] == "4"
    for name in (KEY_FILE, BACKUP_FILE):
        assert (tmp_path / name).read_text().strip() == key
        assert _mode(tmp_path / name) == 0o600


def test_restart_returns_the_same_key(tmp_path: Path) -> None:
    """Loading twice gives the key made the first time."""
    assert load_or_create(tmp_path) == load_or_create(tmp_path)


@pytest.mark.parametrize("damage", [b"", b"\x00\xff garbage", b"short", b"x" * 100])
def test_damaged_primary_is_restored_from_backup(tmp_path: Path, damage: bytes) -> None:
    """An empty or corrupt primary is rebuilt from the backup, not regenerated."""
    (tmp_path / KEY_FILE).write_bytes(damage)
    (tmp_path / BACKUP_FILE).write_text(KEY + "\n")

    assert load_or_create(tmp_path) == KEY
    assert (tmp_path / KEY_FILE).read_text().strip() == KEY


def test_missing_backup_is_rewritten_from_primary(tmp_path: Path) -> None:
    """A lost backup copy is recreated from the primary."""
    (tmp_path / KEY_FILE).write_text(KEY)

    assert load_or_create(tmp_path) == KEY
    assert (tmp_path / BACKUP_FILE).read_text().strip() == KEY


def test_corrupt_copy_is_kept_aside_for_inspection(tmp_path: Path) -> None:
    """The damaged file is renamed, not overwritten, so a technician can look."""
    (tmp_path / KEY_FILE).write_bytes(b"\x00garbage")
    (tmp_path / BACKUP_FILE).write_text(KEY)

    load_or_create(tmp_path)

    kept = list(tmp_path.glob(f"{KEY_FILE}.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"\x00garbage"


def test_both_copies_corrupt_makes_a_new_key_and_logs_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With both copies garbage the key is lost: a new one, and a loud log line."""
    (tmp_path / KEY_FILE).write_text("??")
    (tmp_path / BACKUP_FILE).write_text("??")

    key = load_or_create(tmp_path)

    assert is_valid_key(key) and key != "??"
    assert "device_key_lost" in capsys.readouterr().out


def test_unreadable_key_raises_instead_of_replacing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key that exists but cannot be read is never replaced by a new one."""
    (tmp_path / KEY_FILE).write_text(KEY)
    (tmp_path / BACKUP_FILE).write_text(KEY)

    def failing_read(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", failing_read)

    with pytest.raises(IdentityError):
        load_or_create(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / KEY_FILE).read_text() == KEY
    assert (tmp_path / BACKUP_FILE).read_text() == KEY


def test_unreadable_primary_uses_backup_without_touching_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error on one copy falls back to the other and leaves it in place."""
    (tmp_path / KEY_FILE).write_text(KEY)
    (tmp_path / BACKUP_FILE).write_text(KEY)
    real_read = Path.read_bytes

    def failing_read(self: Path) -> bytes:
        if self.name == KEY_FILE:
            raise OSError(5, "Input/output error")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", failing_read)

    assert load_or_create(tmp_path) == KEY
    monkeypatch.undo()
    assert (tmp_path / KEY_FILE).read_text() == KEY


def test_key_shape_rules() -> None:
    """Keys follow the server's advice: 16 to 64 of [A-Za-z0-9._:-]."""
    assert is_valid_key(KEY)
    assert not is_valid_key("a" * 15)
    assert not is_valid_key("a" * 65)
    assert not is_valid_key("has space in it!!")
