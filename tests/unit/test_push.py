"""The WebSocket listener against small real servers on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from agent.errors import Rejection
from agent.transport.push import (
    EventKind,
    PushEvent,
    PushListener,
    PushState,
    parse_message,
    push_url,
)

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.mark.parametrize(
    ("raw", "kind", "revision"),
    [
        (
            '{"type":"snapshot_refresh","revision":59,"reason":"content_changed"}',
            EventKind.REFRESH,
            59,
        ),
        ('{"type":"invalidate","revision":60}', EventKind.REFRESH, 60),
        ('{"type":"snapshot_refresh","revision":null}', EventKind.REFRESH, None),
        ('{"type":"snapshot_refresh"}', EventKind.REFRESH, None),
        ('{"type":"patch","revision":61}', EventKind.REFRESH, 61),
        ('{"type":"reload"}', EventKind.RELOAD, None),
    ],
)
def test_messages_that_ask_for_action(
    raw: str, kind: EventKind, revision: int | None
) -> None:
    """Refresh (new and legacy), patch and reload become events."""
    event = parse_message(raw, 1.0)
    assert event == PushEvent(kind, revision, 1.0)


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"heartbeat"}',
        '{"type":"pong"}',
        "not json",
        "[1,2]",
        '{"type":"x"}',
        b"\xff",
    ],
)
def test_other_frames_are_ignored(raw: str | bytes) -> None:
    """Heartbeats, pongs and junk produce no event."""
    assert parse_message(raw, 1.0) is None


def test_push_url_and_origin() -> None:
    """https becomes wss, and Origin names the server."""
    url, origin = push_url(
        "https://school.example:8443/base", "ab" * 32, "dk-1234567890abcdef"
    )
    assert url.startswith("wss://school.example:8443/base/ws/display/?token=")
    assert "dk=dk-1234567890abcdef" in url
    assert origin == "https://school.example:8443"


class Server:
    """A loopback WebSocket server whose behaviour a test chooses."""

    def __init__(self) -> None:
        self.origins: list[str | None] = []
        self.received: list[str] = []
        self.handler: Handler = self._hold
        self.refuse = False
        self.port = 0

    def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        self.origins.append(request.headers.get("Origin"))
        if self.refuse:
            return connection.respond(HTTPStatus.FORBIDDEN, "refused\n")
        return None

    async def _hold(self, ws: ServerConnection) -> None:
        async for message in ws:
            self.received.append(str(message))

    async def handle(self, ws: ServerConnection) -> None:
        await self.handler(ws)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    async with serve(
        state.handle, "127.0.0.1", 0, process_request=state.process_request
    ) as srv:
        state.port = srv.sockets[0].getsockname()[1]
        yield state


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def _listener(port: int, events: list[PushEvent], **kw: Any) -> PushListener:
    kw.setdefault("sleep", _no_sleep)
    return PushListener(
        f"ws://127.0.0.1:{port}/ws/display/?token=t&dk=d",
        f"http://127.0.0.1:{port}",
        events.append,
        **kw,
    )


async def test_events_arrive_and_origin_is_sent(server: Server) -> None:
    """Refresh and reload messages reach the callback; Origin is on the handshake."""

    async def talk(ws: ServerConnection) -> None:
        await ws.send('{"type":"heartbeat"}')
        await ws.send('{"type":"snapshot_refresh","revision":59}')
        await ws.send('{"type":"reload"}')
        await asyncio.sleep(5)

    server.handler = talk
    events: list[PushEvent] = []
    listener = _listener(server.port, events)
    task = asyncio.create_task(listener.run())
    for _ in range(100):
        if len(events) == 2:
            break
        await asyncio.sleep(0.01)
    assert listener.state is PushState.CONNECTED and listener.healthy()
    task.cancel()

    assert [(e.kind, e.revision) for e in events] == [
        (EventKind.REFRESH, 59),
        (EventKind.RELOAD, None),
    ]
    assert server.origins == [f"http://127.0.0.1:{server.port}"]


async def test_handshake_403_is_a_rejection_not_an_outage(server: Server) -> None:
    """A 403 at the handshake stops the listener at once."""
    server.refuse = True
    listener = _listener(server.port, [])

    assert await asyncio.wait_for(listener.run(), 5) is PushState.REJECTED
    assert len(server.origins) == 1


@pytest.mark.parametrize(
    ("code", "rejection"),
    [
        (4400, Rejection.DEVICE_REQUIRED),
        (4403, Rejection.TOKEN_INVALID),
        (4408, Rejection.SCREEN_BOUND),
    ],
)
async def test_close_codes_after_accept_are_rejections(
    server: Server, code: int, rejection: Rejection
) -> None:
    """Servers that accept then close with 44xx are rejecting the screen."""

    async def close(ws: ServerConnection) -> None:
        await ws.close(code, "no")

    server.handler = close
    listener = _listener(server.port, [])

    assert await asyncio.wait_for(listener.run(), 5) is PushState.REJECTED
    assert listener.rejection is not None and listener.rejection.code is rejection


async def test_too_many_screens_close_is_retried(server: Server) -> None:
    """4429 (too many screens) is transient: it backs off and eventually gives up."""

    async def close(ws: ServerConnection) -> None:
        await ws.close(4429, "busy")

    server.handler = close
    listener = _listener(server.port, [], max_failures=3)

    assert await asyncio.wait_for(listener.run(), 5) is PushState.GIVEN_UP
    assert len(server.origins) == 3


async def test_gives_up_after_failures_in_a_row() -> None:
    """Connection refused ten times in a row: stop and rely on polling."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    states: list[tuple[PushState, int]] = []
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    listener = _listener(
        port, [], sleep=record_sleep, on_state=lambda s, n: states.append((s, n))
    )

    assert await asyncio.wait_for(listener.run(), 10) is PushState.GIVEN_UP
    assert len(slept) == 9
    assert all(0 <= s <= min(60, 2**i) for i, s in enumerate(slept))
    assert states[-1] == (PushState.GIVEN_UP, 10)


async def test_silent_socket_is_declared_dead_and_retried(server: Server) -> None:
    """No message within the dead-after window: close and reconnect."""

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    server.handler = silent
    listener = _listener(server.port, [], dead_after_s=0.1, max_failures=2)

    assert await asyncio.wait_for(listener.run(), 5) is PushState.GIVEN_UP
    assert len(server.origins) == 2


async def test_client_pings_with_json(server: Server) -> None:
    """The listener sends {"type":"ping"} on its interval."""

    async def chatty(ws: ServerConnection) -> None:
        await ws.send('{"type":"heartbeat"}')
        async for message in ws:
            server.received.append(str(message))

    server.handler = chatty
    listener = _listener(server.port, [], ping_interval_s=0.05)
    task = asyncio.create_task(listener.run())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(server.received) >= 3
    assert all(json.loads(m) == {"type": "ping"} for m in server.received)


async def test_useful_connection_that_drops_resets_the_failure_count(
    server: Server,
) -> None:
    """A server restart (1012) after a healthy session starts a fresh series."""
    sessions = 0

    async def restart(ws: ServerConnection) -> None:
        nonlocal sessions
        sessions += 1
        await ws.send('{"type":"heartbeat"}')
        await ws.close(1012, "restart")

    server.handler = restart
    listener = _listener(server.port, [], max_failures=2)
    task = asyncio.create_task(listener.run())
    await asyncio.sleep(0.5)
    task.cancel()

    # Each session said something, so none counts as a failure: no give-up.
    assert sessions >= 3
    assert listener.state is not PushState.GIVEN_UP
