"""The real ``kiosk-agent run --renderer webview``, with a line protocol to its page.

``python -m tests.e2e.agentdriver RUN-OPTIONS...`` runs the command line's own
``run`` (settings, logging, coordinator, exit codes) unchanged; the only addition
is a reader on stdin that lets a test or a benchmark look into the page. One JSON
request a line on stdin, one JSON answer a line on stdout:

    {"id": 1, "eval": "document.title"}     -> {"id": 1, "value": "School display"}
    {"id": 2, "paint": true}                -> {"id": 2, "value": EPOCH_MS}
    {"id": 3, "capture": "/tmp/screen.png"} -> {"id": 3, "value": [1920, 1080]}

``paint`` answers once the page has drawn two animation frames from now, with the
page's ``Date.now()`` at the second. A failed request answers ``{"id", "error"}``.
The driver also prints ``{"event": "first_paint", "kind": ..., "painted_ms": ...}``
once, after the first view or notice reached the screen. Closing stdin stops the
agent as SIGTERM would. Logs go to stderr exactly as the command line writes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from agent import cli
from agent.render import webview as webview_module
from agent.render.base import NoticeKind, Renderer
from agent.render.view import View
from agent.render.webview import WebviewRenderer

AgentMain = Callable[[Renderer], Awaitable[int]]
PAINT_POLL_S = 0.005
PAINT_TIMEOUT_S = 10.0
MARK_FRAMES = (
    "(() => { window.__driverPainted = null; requestAnimationFrame(() =>"
    " requestAnimationFrame(() => { window.__driverPainted = Date.now(); }));"
    " return 0; })()"
)


def emit(message: dict[str, Any]) -> None:
    """Write one JSON line on stdout (the only writer of stdout)."""
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def painted_at(renderer: WebviewRenderer) -> float:
    """The page's epoch ms at the second animation frame drawn after this call."""
    await renderer.evaluate(MARK_FRAMES)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PAINT_TIMEOUT_S
    while loop.time() < deadline:
        value = await renderer.evaluate("window.__driverPainted")
        if value is not None:
            return float(value)
        await asyncio.sleep(PAINT_POLL_S)
    raise TimeoutError("the page drew no frames")


class FirstPaint(Renderer):
    """Passes every call through; reports when the first screen was drawn."""

    def __init__(self, inner: WebviewRenderer) -> None:
        self._inner = inner
        self._reported = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def show(self, view: View) -> None:
        """Show ``view``; the first time, report when it was painted."""
        await self._inner.show(view)
        self._first("view")

    async def show_notice(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None:
        """Show a notice; the first time, report when it was painted."""
        await self._inner.show_notice(kind, text, hint=hint)
        self._first(NoticeKind(kind).value)

    async def reload(self) -> None:
        """Reload the page."""
        await self._inner.reload()

    async def close(self) -> None:
        """Close the renderer."""
        await self._inner.close()

    def _first(self, kind: str) -> None:
        if self._reported:
            return
        self._reported = True
        # Measured beside the agent, so its next step is not held up by this.
        task = asyncio.create_task(self._report(kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, kind: str) -> None:
        try:
            emit(
                {
                    "event": "first_paint",
                    "kind": kind,
                    "painted_ms": await painted_at(self._inner),
                }
            )
        except Exception as exc:
            emit({"event": "first_paint", "kind": kind, "error": str(exc)})


async def answer(renderer: WebviewRenderer, request: dict[str, Any]) -> Any:
    """Carry out one request from stdin."""
    if "eval" in request:
        return await renderer.evaluate(str(request["eval"]))
    if request.get("paint"):
        return await painted_at(renderer)
    if "capture" in request:
        return await asyncio.to_thread(capture_root, str(request["capture"]))
    raise ValueError(f"unknown request: {sorted(request)}")


async def serve_requests(renderer: WebviewRenderer) -> None:
    """Answer requests from stdin until it closes, then stop the process."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    try:
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
    except (OSError, ValueError):
        # stdin is not a pipe (say /dev/null): run without requests.
        return
    pending: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        task = loop.create_task(handle(renderer, line))
        pending.add(task)
        task.add_done_callback(pending.discard)
    # Nobody is listening any more: stop the way a service manager would.
    os.kill(os.getpid(), signal.SIGTERM)


async def handle(renderer: WebviewRenderer, line: bytes) -> None:
    """Answer one request line; any failure becomes an error answer."""
    request: dict[str, Any] = {}
    try:
        request = json.loads(line)
        emit({"id": request.get("id"), "value": await answer(renderer, request)})
    except Exception as exc:
        emit({"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"})


def capture_root(path: str) -> list[int]:
    """Save the X root window (what a person would see) as PNG at ``path``."""
    from gi.repository import Gdk, GLib

    result: dict[str, Any] = {}
    done = threading.Event()

    def grab() -> bool:
        try:
            root = Gdk.get_default_root_window()
            width, height = root.get_width(), root.get_height()
            pixbuf = Gdk.pixbuf_get_from_window(root, 0, 0, width, height)
            pixbuf.savev(path, "png", [], [])
            result["size"] = [width, height]
        except Exception as exc:
            result["error"] = exc
        done.set()
        return False

    GLib.idle_add(grab)
    if not done.wait(10):
        raise TimeoutError("the capture did not finish")
    if "error" in result:
        raise result["error"]
    size: list[int] = result["size"]
    return size


def with_requests(agent_main: AgentMain) -> AgentMain:
    """Wrap the command line's agent so requests are served beside it."""

    async def run(renderer: Renderer) -> int:
        assert isinstance(renderer, WebviewRenderer)
        requests = asyncio.create_task(serve_requests(renderer))
        try:
            return await agent_main(FirstPaint(renderer))
        finally:
            requests.cancel()

    return run


def main(argv: list[str]) -> int:
    real = webview_module.run_with_webview

    def run_with_webview(agent_main: AgentMain, **options: Any) -> int:
        return real(with_requests(agent_main), **options)

    # The command line imports run_with_webview when it runs, so this is the one
    # it gets; everything else is the shipped code path.
    webview_module.run_with_webview = run_with_webview
    return cli.main(["run", "--renderer", "webview", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
