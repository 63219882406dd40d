"""A5: the WebSocket handshake, refusals, heartbeats, pushes and WS faults."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server_stub.testing import StubServer
from tests.stub.conftest import StubFactory
from tests.stub.helpers import (
    DK,
    OTHER_DK,
    nothing_arrives,
    recv_json,
    snapshot_path,
    status_path,
    ws_url,
)


def open_socket(
    server: StubServer, token: str | None = None, dk: str | None = DK
) -> connect:
    """A connect() to ``server`` with the right Origin."""
    return connect(ws_url(server, token, dk), origin=server.url, open_timeout=5)  # type: ignore[arg-type]


async def handshake_status(server: StubServer, url: str, origin: str | None) -> int:
    """The HTTP status a refused handshake got; fails if it was accepted."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=origin, open_timeout=5):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code


async def close_code(socket: ClientConnection) -> int | None:
    """The code the server closed ``socket`` with, waiting up to 3 s."""
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(3):
            while True:
                await socket.recv()
    return socket.close_code


async def test_accepted_with_origin(stub: StubServer) -> None:
    """A good token, key and Origin open a socket that answers ping."""
    async with open_socket(stub) as socket:
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_missing_origin_is_403(stub: StubServer) -> None:
    """No Origin header is refused at the handshake with 403."""
    assert await handshake_status(stub, ws_url(stub), None) == 403


async def test_wrong_origin_is_403(stub: StubServer) -> None:
    """An Origin naming another host is refused at the handshake with 403."""
    url = ws_url(stub)

    assert await handshake_status(stub, url, "http://elsewhere.invalid") == 403


async def test_unknown_token_is_403(stub: StubServer) -> None:
    """An unknown token is refused at the handshake with 403."""
    url = ws_url(stub, token="0" * 64)

    assert await handshake_status(stub, url, stub.url) == 403


async def test_missing_token_is_403(stub: StubServer) -> None:
    """A missing token is refused at the handshake with 403."""
    url = ws_url(stub, token="")

    assert await handshake_status(stub, url, stub.url) == 403


async def test_missing_device_key_is_403(stub: StubServer) -> None:
    """A missing device key is refused at the handshake with 403."""
    assert await handshake_status(stub, ws_url(stub, dk=None), stub.url) == 403


async def test_bound_elsewhere_is_403(
    stub: StubServer, ahttp: httpx.AsyncClient
) -> None:
    """A key other than the bound one is refused at the handshake with 403."""
    await ahttp.get(snapshot_path(stub.token, dk=DK))

    assert await handshake_status(stub, ws_url(stub, dk=OTHER_DK), stub.url) == 403


async def test_socket_claims_the_screen(
    stub: StubServer, ahttp: httpx.AsyncClient
) -> None:
    """The first key on the WebSocket binds the screen for HTTP too."""
    async with open_socket(stub, dk=OTHER_DK):
        response = await ahttp.get(status_path(stub.token, dk=DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "screen_bound"


@pytest.mark.parametrize(
    ("token", "dk", "expected"),
    [("", DK, 4400), (None, None, 4400), ("0" * 64, DK, 4403)],
)
async def test_close_style_refusals(
    make_stub: StubFactory, token: str | None, dk: str | None, expected: int
) -> None:
    """In close style a refusal is an accepted socket closed with 4400/4403."""
    server = make_stub(ws_reject_style="close")

    async with open_socket(server, token, dk) as socket:
        assert await close_code(socket) == expected


async def test_close_style_bound_elsewhere(make_stub: StubFactory) -> None:
    """In close style another device's socket is closed with 4408."""
    server = make_stub(ws_reject_style="close")
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.get(snapshot_path(server.token, dk=DK))

    async with open_socket(server, dk=OTHER_DK) as socket:
        assert await close_code(socket) == 4408


async def test_heartbeat_at_the_interval(make_stub: StubFactory) -> None:
    """Heartbeats arrive at the configured interval."""
    server = make_stub(heartbeat_s=0.2)

    async with open_socket(server) as socket:
        started = time.monotonic()
        first = await recv_json(socket)
        second = await recv_json(socket)
        elapsed = time.monotonic() - started

    assert first == second == {"type": "heartbeat"}
    assert 0.35 <= elapsed < 1.5


async def test_no_heartbeat_before_the_interval(stub: StubServer) -> None:
    """With the default 20 s interval nothing arrives unasked at first."""
    async with open_socket(stub) as socket:
        assert await nothing_arrives(socket)


async def test_announce_pushes_snapshot_refresh(stub: StubServer) -> None:
    """An announcement pushes snapshot_refresh with the new revision and reason."""
    async with open_socket(stub) as socket:
        answer = stub.admin("POST", "/admin/announce", {"title": "Assembly"})

        message = await recv_json(socket)

    assert answer["pushed"] is True
    assert message == {
        "type": "snapshot_refresh",
        "revision": answer["revision"],
        "reason": "content_changed",
    }


async def test_legacy_push_sends_invalidate(stub: StubServer) -> None:
    """With legacy_push on, a change pushes invalidate with the revision."""
    stub.admin("POST", "/admin/faults", {"legacy_push": True})

    async with open_socket(stub) as socket:
        answer = stub.admin("POST", "/admin/bump")

        message = await recv_json(socket)

    assert message == {"type": "invalidate", "revision": answer["revision"]}


async def test_bump_without_push_sends_nothing(stub: StubServer) -> None:
    """A bump with push false changes the revision silently."""
    async with open_socket(stub) as socket:
        answer = stub.admin("POST", "/admin/bump", {"push": False})

        assert answer["pushed"] is False
        assert await nothing_arrives(socket)


async def test_drop_window_drops_second_push(make_stub: StubFactory) -> None:
    """A second push inside the drop window is lost and reported pushed false."""
    server = make_stub(push_drop_window_s=3.0)

    async with open_socket(server) as socket:
        first = server.admin("POST", "/admin/bump")
        second = server.admin("POST", "/admin/bump")

        message = await recv_json(socket)
        assert await nothing_arrives(socket)

    assert first["pushed"] is True
    assert second["pushed"] is False
    assert message["revision"] == first["revision"]
    assert server.admin("GET", "/admin/state")["counters"]["pushes_dropped"] == 1


async def test_admin_push_bypasses_drop_window(make_stub: StubFactory) -> None:
    """/admin/push reaches sockets even right after another push."""
    server = make_stub(push_drop_window_s=3.0)

    async with open_socket(server) as socket:
        server.admin("POST", "/admin/bump")
        sent = server.admin("POST", "/admin/push", {"type": "reload"})

        first = await recv_json(socket)
        second = await recv_json(socket)

    assert sent == {"sent_to": 1}
    assert first["type"] == "snapshot_refresh"
    assert second == {"type": "reload"}


async def test_ws_disabled_closes_open_sockets(stub: StubServer) -> None:
    """Switching ws_enabled off closes open sockets."""
    async with open_socket(stub) as socket:
        stub.admin("POST", "/admin/ws_enabled", {"enabled": False})

        assert await close_code(socket) == 1000


async def test_ws_disabled_refuses_new_sockets(stub: StubServer) -> None:
    """With ws_enabled off new sockets are refused with 403."""
    stub.admin("POST", "/admin/ws_enabled", {"enabled": False})

    assert await handshake_status(stub, ws_url(stub), stub.url) == 403


def test_ws_disabled_shows_in_snapshot(stub: StubServer, http: httpx.Client) -> None:
    """After ws_enabled off, the next snapshot has meta.ws_enabled false."""
    assert http.get(snapshot_path(stub.token, dk=DK)).json()["meta"]["ws_enabled"]
    stub.admin("POST", "/admin/ws_enabled", {"enabled": False})

    meta = http.get(snapshot_path(stub.token, dk=DK)).json()["meta"]

    assert meta["ws_enabled"] is False


async def test_ws_refuse_fault(stub: StubServer) -> None:
    """ws_refuse refuses new sockets at the handshake with 403."""
    stub.admin("POST", "/admin/faults", {"ws_refuse": True})

    assert await handshake_status(stub, ws_url(stub), stub.url) == 403


async def test_ws_silent_sends_no_heartbeat(make_stub: StubFactory) -> None:
    """ws_silent stops heartbeats."""
    server = make_stub(heartbeat_s=0.1)
    server.admin("POST", "/admin/faults", {"ws_silent": True})

    async with open_socket(server) as socket:
        assert await nothing_arrives(socket)


async def test_ws_silent_sends_no_pong(stub: StubServer) -> None:
    """ws_silent leaves a ping unanswered."""
    stub.admin("POST", "/admin/faults", {"ws_silent": True})

    async with open_socket(stub) as socket:
        await socket.send('{"type":"ping"}')

        assert await nothing_arrives(socket)


async def test_ws_drop_closes_open_sockets_with_1012(stub: StubServer) -> None:
    """ws_drop closes open sockets with 1012, as a server restart does."""
    async with open_socket(stub) as socket:
        stub.admin("POST", "/admin/faults", {"ws_drop": True})

        assert await close_code(socket) == 1012


async def test_ws_drop_once_lets_new_sockets_stay(stub: StubServer) -> None:
    """After ws_drop true, a new socket stays open."""
    stub.admin("POST", "/admin/faults", {"ws_drop": True})

    async with open_socket(stub) as socket:
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_ws_drop_always_closes_new_sockets(stub: StubServer) -> None:
    """ws_drop "always" closes each new socket with 1012."""
    stub.admin("POST", "/admin/faults", {"ws_drop": "always"})

    async with open_socket(stub) as socket:
        assert await close_code(socket) == 1012


async def test_non_object_message_keeps_socket(stub: StubServer) -> None:
    """A text frame that is JSON but not an object does not end the socket."""
    async with open_socket(stub) as socket:
        await socket.send("[1, 2]")
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_open_sockets_are_counted(stub: StubServer) -> None:
    """/admin/state reports open sockets and connection attempts."""
    async with open_socket(stub) as socket:
        await socket.send('{"type":"ping"}')
        await recv_json(socket)

        state = stub.admin("GET", "/admin/state")

    assert state["sockets"] == 1
    assert state["counters"]["ws_connects"] == 1


async def test_binary_frame_keeps_socket(stub: StubServer) -> None:
    """A binary frame is ignored and the socket stays open."""
    async with open_socket(stub) as socket:
        await socket.send(b"\x00\x01")
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_ws_enabled_again_accepts_sockets(stub: StubServer) -> None:
    """Switching ws_enabled back on lets sockets connect again."""
    stub.admin("POST", "/admin/ws_enabled", {"enabled": False})
    stub.admin("POST", "/admin/ws_enabled", {"enabled": True})

    async with open_socket(stub) as socket:
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_long_device_key_binds_like_http(
    stub: StubServer, ahttp: httpx.AsyncClient
) -> None:
    """A key over 64 characters is cut alike on HTTP and WS, so it is one device."""
    long_key = "k" * 80
    await ahttp.get(snapshot_path(stub.token, dk=long_key))

    async with open_socket(stub, dk=long_key) as socket:
        await socket.send('{"type":"ping"}')

        assert await recv_json(socket) == {"type": "pong"}


async def test_socket_limit_refuses_at_handshake(make_stub: StubFactory) -> None:
    """Past max_sockets a new socket is refused at the handshake with 403."""
    server = make_stub(max_sockets=1)

    async with open_socket(server) as socket:
        await socket.send('{"type":"ping"}')
        await recv_json(socket)

        assert await handshake_status(server, ws_url(server), server.url) == 403


async def test_socket_limit_close_style_is_4429(make_stub: StubFactory) -> None:
    """In close style a socket past max_sockets is closed with 4429."""
    server = make_stub(max_sockets=1, ws_reject_style="close")

    async with open_socket(server) as first:
        await first.send('{"type":"ping"}')
        await recv_json(first)

        async with open_socket(server) as second:
            assert await close_code(second) == 4429


async def test_admin_push_leaves_drop_window_alone(make_stub: StubFactory) -> None:
    """A raw push does not open the drop window: the next edit still pushes."""
    server = make_stub(push_drop_window_s=3.0)

    async with open_socket(server) as socket:
        server.admin("POST", "/admin/push", {"type": "reload"})
        answer = server.admin("POST", "/admin/bump")

        first = await recv_json(socket)
        second = await recv_json(socket)

    assert answer["pushed"] is True
    assert first == {"type": "reload"}
    assert second["revision"] == answer["revision"]


async def test_ws_silent_swallows_pushes(stub: StubServer) -> None:
    """While ws_silent is on, an edit's push never reaches the socket."""
    stub.admin("POST", "/admin/faults", {"ws_silent": True})

    async with open_socket(stub) as socket:
        stub.admin("POST", "/admin/announce", {"title": "Unheard"})

        assert await nothing_arrives(socket)
