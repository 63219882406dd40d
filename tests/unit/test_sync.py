"""The coordinator's decisions: what reaches the screen, and when."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from agent import sync
from agent.config import Settings
from agent.pairing import PairingStore
from agent.render.base import NoticeKind
from agent.render.view import View
from agent.store import SnapshotStore
from agent.sync import Coordinator
from agent.transport import poller

SERVER = "http://school.test"
TOKEN = "cd" * 32
STATUS = f"{SERVER}/api/display/status/{TOKEN}/"
SNAPSHOT = f"{SERVER}/api/display/snapshot/{TOKEN}/"


class FakeRenderer:
    """Records what the coordinator asked the screen to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def show(self, view: View) -> None:
        self.calls.append(("show", view))

    async def show_notice(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None:
        self.calls.append(("notice", (kind, text, hint)))

    async def reload(self) -> None:
        self.calls.append(("reload", None))

    async def close(self) -> None:
        self.calls.append(("close", None))

    def shown(self) -> list[View]:
        return [arg for name, arg in self.calls if name == "show"]

    def notices(self) -> list[NoticeKind]:
        return [arg[0] for name, arg in self.calls if name == "notice"]


def snapshot(revision: int, title: str = "Hello", **meta: Any) -> dict[str, Any]:
    return {
        "now": "2026-04-22T09:12:05+03:00",
        "meta": {"schedule_revision": revision, "is_active_window": True, **meta},
        "settings": {"name": "Test School", "theme": "indigo"},
        "state": {"type": "period", "label": "Maths", "from": "08:50", "to": "09:35"},
        "day_path": [],
        "current_period": None,
        "next_period": None,
        "duty": {"items": []},
        "announcements": [{"id": 1, "title": title, "body": "", "level": "info"}],
        "standby": [],
        "excellence": [],
    }


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "server_url": SERVER,
        "token": TOKEN,
        "state_dir": tmp_path,
        "renderer": "headless",
        "push_enabled": False,
        "poll_min_s": 0.05,
        "poll_max_s": 0.1,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(coordinator: Coordinator) -> AsyncIterator[None]:
    task = asyncio.create_task(coordinator.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def snapshot_response(
    revision: int, title: str = "Hello", **headers: str
) -> httpx.Response:
    return httpx.Response(
        200,
        json=snapshot(revision, title),
        headers={"ETag": f'"etag-{revision}"', **headers},
    )


@respx.mock
async def test_cached_snapshot_is_shown_before_any_request(tmp_path: Path) -> None:
    """The last good schedule is on screen before the network is touched."""
    SnapshotStore(tmp_path).save(snapshot(57, "Cached"), etag='"e57"', revision=57)
    renderer = FakeRenderer()
    seen_before_request: list[int] = []

    def on_request(request: httpx.Request) -> httpx.Response:
        seen_before_request.append(len(renderer.shown()))
        return httpx.Response(304, headers={"X-Schedule-Revision": "57"})

    respx.get(STATUS).mock(side_effect=on_request)
    snap = respx.get(SNAPSHOT).mock(side_effect=on_request)
    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: seen_before_request)

    assert snap.calls.last.request.headers["If-None-Match"] == '"e57"'
    assert seen_before_request[0] >= 1
    assert renderer.shown()[0].revision == 57


@respx.mock
async def test_first_fetch_is_applied_and_stored_with_etag(tmp_path: Path) -> None:
    """With no cache the agent fetches at once, shows it and stores revision + ETag."""
    respx.get(SNAPSHOT).mock(return_value=snapshot_response(58))
    respx.get(STATUS).respond(304, headers={"X-Schedule-Revision": "58"})
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: renderer.shown())

    assert renderer.notices()[0] is NoticeKind.WAITING
    cached = SnapshotStore(tmp_path).load()
    assert cached is not None and (cached.revision, cached.etag) == (58, '"etag-58"')


@respx.mock
async def test_older_revision_never_takes_the_screen_back(tmp_path: Path) -> None:
    """A lagging replica's older body is refused; the cache keeps the newer one."""
    SnapshotStore(tmp_path).save(snapshot(60, "Newer"), etag='"e60"', revision=60)
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 61}
    )
    snap = respx.get(SNAPSHOT).mock(return_value=snapshot_response(59, "Older"))
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: snap.called)
        await asyncio.sleep(0.1)

    assert [v.revision for v in renderer.shown()] == [60]
    cached = SnapshotStore(tmp_path).load()
    assert cached is not None and cached.revision == 60


@respx.mock
async def test_a_cache_from_another_pairing_is_never_shown(tmp_path: Path) -> None:
    """A screen paired to a new token forgets the old school's schedule:
    never shown, and its higher revision does not hold back the new one."""
    SnapshotStore(tmp_path).save(
        snapshot(60, "Old school"), etag='"e60"', revision=60, owner="0" * 16
    )
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 5}
    )
    respx.get(SNAPSHOT).mock(return_value=snapshot_response(5, "New school"))
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: renderer.shown())

    assert [v.revision for v in renderer.shown()] == [5]
    cached = SnapshotStore(tmp_path).load()
    pairing, _ = PairingStore(settings(tmp_path)).load()
    assert cached is not None and pairing is not None
    assert (cached.revision, cached.owner) == (5, pairing.owner)


@respx.mock
async def test_a_cache_from_this_pairing_is_shown_first(tmp_path: Path) -> None:
    """The screen's own cached schedule is on screen before any request."""
    pairing, _ = PairingStore(settings(tmp_path)).load()
    assert pairing is not None
    SnapshotStore(tmp_path).save(
        snapshot(60), etag='"e60"', revision=60, owner=pairing.owner
    )
    respx.get(STATUS).respond(503)
    snap = respx.get(SNAPSHOT).respond(503)
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: snap.called)

    assert renderer.shown()[0].revision == 60


@respx.mock
async def test_stale_body_of_the_same_revision_is_not_applied(tmp_path: Path) -> None:
    """A STALE body served while rebuilding does not replace what is shown."""
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 61}
    )
    stale = snapshot(60, "Stale", is_stale=True)
    snap = respx.get(SNAPSHOT).respond(
        200, json=stale, headers={"ETag": '"stale"', "X-Snapshot-Cache": "STALE"}
    )
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: snap.called)
        await asyncio.sleep(0.1)

    assert len(renderer.shown()) == 1
    cached = SnapshotStore(tmp_path).load()
    assert cached is not None and cached.etag == '"e60"'


@respx.mock
async def test_lower_revision_is_accepted_after_the_server_insists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real reset: status keeps reporting the lower revision long enough."""
    monkeypatch.setattr(sync, "RESET_CONFIRM_S", 0.2)
    monkeypatch.setattr(sync, "OLDER_RETRY_S", 0.1)
    monkeypatch.setattr(poller, "ERROR_BACKOFF_MIN_S", 0.1)
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 3}
    )
    respx.get(SNAPSHOT).mock(return_value=snapshot_response(3, "After reset"))
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        # NotReadyError backs off >= 2 s; the retry after it confirms the reset.
        await until(lambda: len(renderer.shown()) >= 2, timeout_s=8)

    assert renderer.shown()[-1].revision == 3


@respx.mock
async def test_screen_bound_shows_notice_with_key_hint_and_keeps_running(
    tmp_path: Path,
) -> None:
    """screen_bound is a full-screen notice naming this device's key, not an exit."""
    respx.get(SNAPSHOT).respond(
        403, json={"detail": "screen_bound", "message": "bound"}
    )
    renderer = FakeRenderer()
    coordinator = Coordinator(settings(tmp_path), renderer)

    async with running(coordinator):
        await until(lambda: NoticeKind.SCREEN_BOUND in renderer.notices())
        key = (tmp_path / "device_key").read_text().strip()

    _, (_, _, hint) = next(
        c
        for c in renderer.calls
        if c[0] == "notice" and c[1][0] is NoticeKind.SCREEN_BOUND
    )
    assert hint == key[:8]


@respx.mock
async def test_unpaired_screen_says_so(tmp_path: Path) -> None:
    """Without a token the screen shows the pairing notice and makes no request."""
    renderer = FakeRenderer()
    route = respx.get(url__startswith=SERVER)

    async with running(Coordinator(settings(tmp_path, token=None), renderer)):
        await until(lambda: NoticeKind.UNPAIRED in renderer.notices())

    assert not route.called
    _, (_, text, hint) = next(
        c for c in renderer.calls if c[0] == "notice" and c[1][0] is NoticeKind.UNPAIRED
    )
    assert socket.gethostname() in text and "kiosk-agent pair" in text
    assert hint == (tmp_path / "device_key").read_text().strip()[:8]


@respx.mock
async def test_server_outage_marks_offline_but_keeps_content(tmp_path: Path) -> None:
    """5xx keeps the last good snapshot on screen with an offline badge."""
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    respx.get(STATUS).respond(503)
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: any(v.offline_since for v in renderer.shown()))

    assert all(v.revision == 60 for v in renderer.shown())
    assert NoticeKind.TOKEN_REJECTED not in renderer.notices()


@respx.mock
async def test_server_back_with_an_older_revision_is_no_longer_offline(
    tmp_path: Path,
) -> None:
    """A server that answers, even with a body that is not applied, is not down.

    A restored or restarted server may report a lower revision for a while:
    the screen keeps the newer schedule but drops the offline badge.
    """
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    down = True

    def status(request: httpx.Request) -> httpx.Response:
        if down:
            return httpx.Response(503)
        return httpx.Response(
            200, json={"fetch_required": True, "schedule_revision": 5}
        )

    def body(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503) if down else snapshot_response(5, "Reset")

    respx.get(STATUS).mock(side_effect=status)
    snap = respx.get(SNAPSHOT).mock(side_effect=body)
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: any(v.offline_since for v in renderer.shown()))
        down = False
        calls = snap.call_count
        await until(lambda: snap.call_count > calls)
        await until(lambda: renderer.shown()[-1].offline_since is None)

    assert {v.revision for v in renderer.shown()} == {60}


@respx.mock
async def test_offline_badge_time_follows_the_server_clock(tmp_path: Path) -> None:
    """With the device clock an hour slow, "saved at" is an hour later too,
    matching the page's server-corrected clock."""
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    saved = SnapshotStore(tmp_path).load()
    assert saved is not None
    ahead_ms = 3_600_000
    server_now = str(int(time.time() * 1000) + ahead_ms)
    respx.get(STATUS).respond(503, headers={"X-Server-Time-MS": server_now})
    respx.get(SNAPSHOT).respond(503, headers={"X-Server-Time-MS": server_now})
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        view = await until(
            lambda: next((v for v in renderer.shown() if v.offline_since), None)
        )

    assert view.saved_at is not None
    shift = datetime.fromisoformat(view.saved_at) - saved.saved_at
    assert abs(shift.total_seconds() - ahead_ms / 1000) < 5


@respx.mock
async def test_reload_flag_reloads_the_page_after_applying(tmp_path: Path) -> None:
    """A status reload request refetches and reloads the renderer."""
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    respx.get(STATUS).respond(200, json={"fetch_required": True, "reload": True})
    respx.get(SNAPSHOT).mock(return_value=snapshot_response(60))
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: ("reload", None) in renderer.calls)

    names = [name for name, _ in renderer.calls]
    assert names.index("reload") > names.index("show")


@respx.mock
async def test_day_boundary_refetches_although_the_revision_did_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the window's end the snapshot is fetched, since status would say 304."""
    from datetime import UTC, datetime, timedelta

    monkeypatch.setattr(sync, "WAKE_JITTER_MAX_S", 0.0)
    monkeypatch.setattr(sync, "BOUNDARY_REFETCH_S", (0.0,))
    end = datetime.now(UTC) + timedelta(seconds=0.5)
    body = snapshot(60)
    body["meta"]["active_window"] = {
        "start": "2020-01-01T06:30:00+00:00",
        "end": end.isoformat(),
    }
    respx.get(STATUS).respond(304, headers={"X-Schedule-Revision": "60"})
    route = respx.get(SNAPSHOT).respond(200, json=body, headers={"ETag": '"e60"'})
    renderer = FakeRenderer()

    async with running(
        Coordinator(settings(tmp_path, poll_min_s=30, poll_max_s=30), renderer)
    ):
        await until(lambda: route.call_count == 1)
        await asyncio.sleep(0.2)
        assert route.call_count == 1
        await until(lambda: route.call_count == 2, timeout_s=3)

    assert route.calls.last.request.headers["If-None-Match"] == '"e60"'


@respx.mock
async def test_not_modified_with_a_newer_revision_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 304 whose X-Revision is newer than the screen's is retried, not trusted."""
    monkeypatch.setattr(poller, "ERROR_BACKOFF_MIN_S", 0.05)
    monkeypatch.setattr(sync, "NOT_MODIFIED_RETRY_S", 0.05)
    SnapshotStore(tmp_path).save(snapshot(69), etag='"e69"', revision=69)
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 70}
    )
    respx.get(SNAPSHOT).mock(
        side_effect=[
            httpx.Response(304, headers={"X-Revision": "70"}),
            snapshot_response(70, "Rebuilt"),
        ]
    )
    renderer = FakeRenderer()

    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: any(v.revision == 70 for v in renderer.shown()))

    cached = SnapshotStore(tmp_path).load()
    assert cached is not None and cached.revision == 70


@respx.mock
async def test_a_failed_render_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A screen write that failed (say, a full disk) is retried by housekeeping."""
    monkeypatch.setattr(sync, "HOUSEKEEPING_S", 0.05)
    SnapshotStore(tmp_path).save(snapshot(60), etag='"e60"', revision=60)
    respx.get(SNAPSHOT).respond(304, headers={"X-Revision": "60"})
    respx.get(STATUS).respond(304, headers={"X-Schedule-Revision": "60"})

    class FullDisk(FakeRenderer):
        failures = 2

        async def show(self, view: View) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError(28, "No space left on device")
            await super().show(view)

    renderer = FullDisk()
    async with running(Coordinator(settings(tmp_path), renderer)):
        await until(lambda: renderer.shown())

    assert renderer.failures == 0
    assert renderer.shown()[0].revision == 60
