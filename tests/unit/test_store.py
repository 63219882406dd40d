"""The cached snapshot survives damage to the newest copy."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agent.store import PREVIOUS_FILE, SNAPSHOT_FILE, SnapshotStore, is_snapshot_shaped

BODY = {"meta": {"schedule_revision": 5}, "state": {"type": "period"}, "now": "x"}


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    """What was saved comes back with its ETag and revision."""
    store = SnapshotStore(tmp_path)
    store.save(BODY, etag='"abc"', revision=5)

    cached = store.load()

    assert cached is not None
    assert (cached.snapshot, cached.etag, cached.revision) == (BODY, '"abc"', 5)
    assert stat.S_IMODE((tmp_path / SNAPSHOT_FILE).stat().st_mode) == 0o600


def test_empty_directory_has_no_cache(tmp_path: Path) -> None:
    """No file means nothing to show, not an error."""
    assert SnapshotStore(tmp_path).load() is None


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b"\xff\xfe", b'{"snapshot": {"meta": 1}}', b"[]", b'{"x": 1}'],
)
def test_damaged_newest_copy_falls_back_to_previous(
    tmp_path: Path, damage: bytes
) -> None:
    """A corrupt snapshot.json still leaves the previous schedule to show."""
    store = SnapshotStore(tmp_path)
    store.save(BODY, etag='"one"', revision=5)
    store.save({**BODY, "now": "y"}, etag='"two"', revision=6)
    (tmp_path / SNAPSHOT_FILE).write_bytes(damage)

    cached = store.load()

    assert cached is not None and cached.etag == '"one"'
    assert (tmp_path / PREVIOUS_FILE).exists()


def test_both_copies_damaged_gives_none(tmp_path: Path) -> None:
    """When nothing is readable the store says so rather than raising."""
    (tmp_path / SNAPSHOT_FILE).write_text("{")
    (tmp_path / PREVIOUS_FILE).write_text("{")

    assert SnapshotStore(tmp_path).load() is None


def test_wrong_field_types_are_rejected(tmp_path: Path) -> None:
    """A revision that is not an integer makes the record invalid."""
    record = {
        "snapshot": BODY,
        "etag": 5,
        "revision": "x",
        "saved_at": "2026-01-01T00:00:00+00:00",
    }
    (tmp_path / SNAPSHOT_FILE).write_text(json.dumps(record))

    assert SnapshotStore(tmp_path).load() is None


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    """Atomic writes clean up after themselves."""
    store = SnapshotStore(tmp_path)
    for revision in range(3):
        store.save(BODY, etag=None, revision=revision)

    assert sorted(p.name for p in tmp_path.iterdir()) == [SNAPSHOT_FILE, PREVIOUS_FILE]


@pytest.mark.parametrize(
    ("body", "shaped"),
    [
        (BODY, True),
        ({"meta": {}}, False),
        ({"meta": {}, "state": "x"}, False),
        ([], False),
    ],
)
def test_snapshot_shape(body: object, shaped: bool) -> None:
    """Only objects with meta and state objects count as snapshots."""
    assert is_snapshot_shaped(body) is shaped
