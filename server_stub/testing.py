"""Run the stub in a background thread on 127.0.0.1, for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

import httpx
import uvicorn
from uvicorn.config import WS_PROTOCOLS

from server_stub.app import create_app
from server_stub.state import StubState

START_TIMEOUT_S = 10.0


class StubServer:
    """The stub on a free loopback port; a context manager (sync or async)."""

    def __init__(
        self,
        *,
        state: StubState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.state = state or StubState()
        self._host = host
        self._port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    @property
    def token(self) -> str:
        """The default screen's token."""
        return self.state.default_token

    @property
    def short_code(self) -> str:
        """The default screen's short code."""
        return self.state.screens[self.token].short_code

    def start(self) -> StubServer:
        """Serve in a background thread; returns once it accepts connections.

        Binding happens here, so a busy port raises OSError in the caller.
        """
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.create_server((self._host, self._port), family=family)
        host, port = listener.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._run, args=(listener,), name="stub-server", daemon=True
        )
        self._thread.start()
        ready = self._ready.wait(START_TIMEOUT_S)
        if not ready or self._server is None or not self._server.started:
            self.stop()
            raise RuntimeError("the stub server did not start")
        return self

    def stop(self) -> None:
        """Shut down within about a second, open WebSockets or not."""
        if self._server is not None:
            self._server.should_exit = True
            # Open WebSockets would hold a graceful shutdown; cut them short.
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def admin(
        self, method: str, path: str, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call the admin API; raises httpx.HTTPStatusError on an error answer."""
        response = httpx.request(method, f"{self.url}{path}", json=json, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> StubServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self, listener: socket.socket) -> None:
        """The server thread's body: its own event loop until shutdown."""
        asyncio.run(self._serve(listener))

    async def _serve(self, listener: socket.socket) -> None:
        """Serve on ``listener`` until told to stop; flags readiness on the way."""
        config = uvicorn.Config(
            create_app(self.state),
            log_level=self._log_level,
            log_config=None,
            # Request lines would carry whole tokens in their paths.
            access_log=False,
            lifespan="off",
            ws=_ws_protocol(),
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve(sockets=[listener]))
        # uvicorn exposes start-up only as a flag it sets; poll it briefly.
        while not self._server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def _ws_protocol() -> str:
    """uvicorn's sans-I/O websockets protocol where it has one, else the older one.

    The sans-I/O one avoids the deprecated websockets API on websockets >= 14.
    """
    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"
