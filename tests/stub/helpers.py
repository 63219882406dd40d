"""Small shared pieces for the stub server tests: device keys, URLs, WS reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from server_stub.testing import StubServer

DK = "device-0001-aaaa-bbbb"
OTHER_DK = "device-0002-cccc-dddd"
# Long enough for a frame sent now to arrive over loopback, short enough to
# keep "nothing arrived" checks cheap.
QUIET_S = 0.4


def status_path(token: str, **params: str) -> str:
    """The status URL path for ``token`` with ``params`` as its query."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"/api/display/status/{token}/" + (f"?{query}" if query else "")


def snapshot_path(token: str, **params: str) -> str:
    """The snapshot URL path for ``token`` with ``params`` as its query."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"/api/display/snapshot/{token}/" + (f"?{query}" if query else "")


def ws_url(server: StubServer, token: str | None = None, dk: str | None = DK) -> str:
    """The WebSocket URL of ``server``; ``None`` leaves a parameter out."""
    params = {"token": server.token if token is None else token, "dk": dk}
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return server.url.replace("http://", "ws://") + f"/ws/display/?{query}"


async def recv_json(socket: ClientConnection, timeout_s: float = 3.0) -> Any:
    """The next text frame from ``socket`` decoded; raises TimeoutError if none."""
    async with asyncio.timeout(timeout_s):
        raw = await socket.recv()
    return json.loads(raw)


async def nothing_arrives(socket: ClientConnection, wait_s: float = QUIET_S) -> bool:
    """True when no frame arrives on ``socket`` within ``wait_s`` seconds."""
    try:
        async with asyncio.timeout(wait_s):
            await socket.recv()
    except TimeoutError:
        return True
    return False
