"""Run the stub in a background thread on 127.0.0.1, for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import httpx
import uvicorn

from server_stub.app import create_app
from server_stub.state import StubState

START_TIMEOUT_S = 10.0


class StubServer:
    """The stub on a free loopback port; a context manager (sync or async)."""

    def __init__(
        self, *, state: StubState | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._state = state
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    @property
    def state(self) -> StubState:
        assert self._state is not None, "start() the server first"
        return self._state

    @property
    def token(self) -> str:
        return self.state.default_token

    @property
    def short_code(self) -> str:
        return self.state.screens[self.token].short_code

    def start(self) -> StubServer:
        self._thread = threading.Thread(
            target=self._run, name="stub-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.url:
            raise RuntimeError("the stub server did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            # Open WebSockets would hold a graceful shutdown; cut them short.
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(5)

    def admin(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        """Call the admin API; raises on an error answer."""
        response = httpx.request(method, f"{self.url}{path}", json=json, timeout=10)
        response.raise_for_status()
        return response.json()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> StubServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        if self._state is None:
            self._state = StubState()
        config = uvicorn.Config(
            create_app(self._state),
            host=self._host,
            port=self._port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve())
        # uvicorn exposes start-up only as a flag it sets; poll it briefly.
        while not self._server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if self._server.started:
            sock = self._server.servers[0].sockets[0]
            host, port = sock.getsockname()[:2]
            self.url = f"http://{host}:{port}"
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
