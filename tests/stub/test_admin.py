"""The admin API, StubServer's lifecycle and the kiosk-stub command."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from server_stub.app import create_app
from server_stub.state import StubState
from server_stub.testing import StubServer
from tests.stub.helpers import DK, recv_json, snapshot_path, status_path, ws_url

KIOSK_STUB = str(Path(sys.executable).parent / "kiosk-stub")


def test_edit_changes_the_snapshot(stub: StubServer, http: httpx.Client) -> None:
    """A dotted-path edit shows in the next snapshot under a new revision."""
    before = stub.state.revision

    answer = stub.admin(
        "POST", "/admin/edit", {"path": "settings.name", "value": "Test School"}
    )

    body = http.get(snapshot_path(stub.token, dk=DK)).json()
    assert answer["revision"] == before + 1
    assert body["settings"]["name"] == "Test School"
    assert body["meta"]["schedule_revision"] == before + 1


def test_edit_without_value_is_400(stub: StubServer, http: httpx.Client) -> None:
    """An edit lacking value is refused with 400."""
    response = http.post("/admin/edit", json={"path": "settings.name"})

    assert response.status_code == 400


def test_announce_shows_in_snapshot(stub: StubServer, http: httpx.Client) -> None:
    """An announcement appears in the next live snapshot."""
    stub.admin("POST", "/admin/announce", {"title": "Fire drill", "body": "10:00"})

    items = http.get(snapshot_path(stub.token, dk=DK)).json()["announcements"]

    assert any(item["title"] == "Fire drill" for item in items)


def test_unbind_without_token_releases_all(
    stub: StubServer, http: httpx.Client
) -> None:
    """/admin/unbind with no token releases every screen."""
    http.get(status_path(stub.token, dk=DK))

    bindings = stub.admin("POST", "/admin/unbind")

    assert bindings == {stub.token: None}


def test_revision_can_go_down(stub: StubServer, http: httpx.Client) -> None:
    """/admin/revision sets a lower revision, seen by status and snapshot."""
    stub.admin("POST", "/admin/revision", {"revision": 3})

    status = http.get(status_path(stub.token, dk=DK, v="57")).json()
    snapshot = http.get(snapshot_path(stub.token, dk=DK))

    assert status["schedule_revision"] == 3
    assert snapshot.json()["meta"]["schedule_revision"] == 3
    assert snapshot.headers["X-Revision"] == "3"


def test_revision_must_be_an_integer(stub: StubServer, http: httpx.Client) -> None:
    """A non-integer revision is refused with 400."""
    assert http.post("/admin/revision", json={"revision": "9"}).status_code == 400
    assert http.post("/admin/revision", json={"revision": True}).status_code == 400


def test_state_counts_requests(stub: StubServer, http: httpx.Client) -> None:
    """/admin/state counts status and snapshot requests."""
    for _ in range(2):
        http.get(status_path(stub.token, dk=DK))
    http.get(snapshot_path(stub.token, dk=DK))

    state = stub.admin("GET", "/admin/state")

    assert state["counters"]["status"] == 2
    assert state["counters"]["snapshot"] == 1
    assert state["revision"] == stub.state.revision
    assert state["bindings"] == {stub.token: DK}


def test_unknown_fault_is_400(stub: StubServer, http: httpx.Client) -> None:
    """An unknown fault name is refused with 400 and nothing switched on."""
    response = http.post("/admin/faults", json={"building": True, "gremlins": True})

    assert response.status_code == 400
    assert "gremlins" in response.json()["error"]
    assert stub.state.faults == {}


def test_malformed_admin_body_is_400(stub: StubServer, http: httpx.Client) -> None:
    """A body that is not a JSON object is refused with 400, not a crash."""
    broken = http.post("/admin/faults", content=b"{not json")
    listed = http.post("/admin/faults", json=["building"])

    assert broken.status_code == 400
    assert listed.status_code == 400


def test_unknown_flag_token_is_400(stub: StubServer, http: httpx.Client) -> None:
    """Flags for a token the stub does not know are refused."""
    response = http.post("/admin/flags", json={"token": "0" * 64, "refresh": True})

    assert response.status_code == 400


def test_clock_needs_an_offset(stub: StubServer, http: httpx.Client) -> None:
    """A clock time without a UTC offset is refused."""
    response = http.post("/admin/clock", json={"now": "2026-04-22T09:00:00"})

    assert response.status_code == 400


def test_clock_can_be_frozen(stub: StubServer) -> None:
    """{"now": ..., "frozen": true} holds the school clock at that instant."""
    answer = stub.admin(
        "POST", "/admin/clock", {"now": "2026-04-22T10:00:00+03:00", "frozen": True}
    )
    time.sleep(0.01)

    assert answer["frozen"] is True
    assert stub.admin("GET", "/admin/state")["now"] == "2026-04-22T10:00:00+03:00"


def test_clock_offset_is_from_real_time(stub: StubServer) -> None:
    """{"offset_s": N} runs the school clock N seconds ahead of real time."""
    stub.admin("POST", "/admin/clock", {"offset_s": 3600})

    ahead = stub.state.now() - datetime.now(UTC)

    assert abs(ahead - timedelta(hours=1)) < timedelta(seconds=1)


async def test_admin_refuses_other_hosts() -> None:
    """A client that is not on loopback gets 403 from the admin API."""
    app = create_app(StubState())
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))

    async with httpx.AsyncClient(transport=transport, base_url="http://stub") as c:
        response = await c.get("/admin/state")

    assert response.status_code == 403


def test_state_is_there_before_start() -> None:
    """A StubServer's state, token and short code exist before it starts."""
    server = StubServer()

    assert len(server.token) == 64
    assert server.state.screens[server.token].short_code == server.short_code


def test_busy_port_fails_at_start() -> None:
    """start() on a port already taken raises OSError at once."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]

        with pytest.raises(OSError):
            StubServer(port=port).start()


async def test_stop_returns_quickly_with_an_open_socket() -> None:
    """stop() returns within 2 s while a WebSocket is still open."""
    server = await asyncio.to_thread(StubServer(state=StubState()).start)
    async with connect(ws_url(server), origin=server.url) as socket:  # type: ignore[arg-type]
        await socket.send('{"type":"ping"}')
        assert (await recv_json(socket))["type"] == "pong"

        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        elapsed = time.monotonic() - started

    assert elapsed < 2.0


@pytest.mark.parametrize(
    "command",
    [[KIOSK_STUB], [sys.executable, "-m", "server_stub"]],
    ids=["kiosk-stub", "python-m"],
)
def test_cli_help_explains_itself(command: list[str]) -> None:
    """kiosk-stub --help (or python -m server_stub) describes the stub."""
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=20
    )

    assert result.returncode == 0
    assert "school display server" in result.stdout
    assert "--port" in result.stdout
    assert "--no-rate-limit" in result.stdout
    assert "--log-level" in result.stdout


@pytest.mark.parametrize("token", ["abc", "g" * 64])
def test_cli_rejects_a_bad_token(token: str) -> None:
    """kiosk-stub --token that is not 32 or 64 hex exits with a usage error."""
    result = subprocess.run(
        [KIOSK_STUB, "--port", "0", "--token", token],
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 2
    assert "--token" in result.stderr


def test_cli_prints_url_and_token_and_stops_on_sigterm() -> None:
    """kiosk-stub --port 0 prints a working URL and its token, then exits on TERM."""
    process = subprocess.Popen(
        [KIOSK_STUB, "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url_line = process.stdout.readline()
        token_line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", url_line)
        token = re.search(r"screen token ([0-9a-f]{64})", token_line)
        assert url is not None
        assert token is not None
        state = httpx.get(url.group(0) + "/admin/state", timeout=5).json()
        assert state["screens"][0]["token_hint"] == token.group(1)[:6]

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert code == 0
