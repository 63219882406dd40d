"""The full-screen pywebview (GTK / WebKit2GTK) renderer and the process around it.

GTK owns the main thread; the agent's asyncio loop runs in a worker thread and
reaches the window only by posting work to the GLib loop. The page is loaded
once from a ``file://`` copy of the bundled page, and every view is handed to
``window.kiosk.apply`` in place. A watchdog on the GUI thread replaces the web
view when its web process dies or stops answering, and re-applies what was on
screen.

Known limits: needs WebKit2GTK 4.1 at version 2.40 or newer (for
``evaluate_javascript``); the process supports one ``run_with_webview`` call,
because pywebview keeps its windows in module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent.render.base import NoticeKind, Renderer
from agent.render.gui import (
    GuiDispatcher,
    WebviewError,
    find_webkit_view,
    kiosk_context,
    kiosk_settings,
    lock_content,
    lock_view,
    lock_window,
    monitor_geometry,
)

if TYPE_CHECKING:
    from agent.render.view import View

__all__ = ["WebviewError", "WebviewRenderer", "run_with_webview"]

log = structlog.get_logger(__name__)

LIVENESS_INTERVAL_S = 10.0
CALL_TIMEOUT_S = 15.0
LOAD_TIMEOUT_S = 30.0
RECREATE_MIN_GAP_S = 5.0
STOP_GRACE_S = 3.0
MEMORY_LIMIT_MB = 300
EXIT_OK = 0
EXIT_FAILED = 1
PAGE_FILES = ("index.html", "screen.css", "screen.js")
BLANK_HTML = "<!doctype html><html><body style='background:#000'></body></html>"
ALIVE_EXPRESSION = "window.kiosk.alive()"

# Called on the GUI thread with (JSON text the script produced, or an error).
Done = Callable[[str | None, BaseException | None], None]
# A function body run in the page and its string arguments. The body is fixed
# text, so the page compiles it once however many views are sent through it.
Call = tuple[str, dict[str, str]]


class Screen:
    """The window and its page. Every method runs on the GUI thread only.

    It remembers the last view and the notice shown after it, so a reload or a
    replaced web view shows the same thing again.
    """

    def __init__(
        self,
        dispatcher: GuiDispatcher,
        window: Any,
        page_url: str,
        *,
        liveness_interval_s: float = LIVENESS_INTERVAL_S,
        liveness_timeout_s: float = 5.0,
        memory_limit_mb: int = MEMORY_LIMIT_MB,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dispatcher = dispatcher
        self._window = window
        self._page_url = page_url
        self._interval_s = liveness_interval_s
        self._timeout_s = liveness_timeout_s
        self._memory_limit_mb = memory_limit_mb
        self._clock = clock
        self._view: Any = None
        self._context: Any = None
        self._content: Any = None
        self._settings: Any = None
        self._handlers: list[int] = []
        self._ready = False
        self._loading_since: float | None = None
        self._parked: list[tuple[Call | None, Done]] = []
        self._last_view: str | None = None
        self._last_notice: tuple[str, str, str | None] | None = None
        self._probe_deadline: int | None = None
        self._watchdog: int | None = None
        self._last_recreate_at = -math.inf
        self._recreate_pending = False
        self._closed = False
        self.recreations = 0

    def start(self) -> None:
        """Lock the window down, put our own web view in it and load the page."""
        from gi.repository import WebKit2

        native = self._window.native
        placeholder = find_webkit_view(native) if native is not None else None
        if placeholder is None:
            # pywebview builds the window while its loop starts; look again.
            self._dispatcher.after(0.05, self.start)
            return

        lock_window(native)
        # pywebview's own view carries its JS bridge and injected scripts; the
        # page needs neither, so it is swapped for a view configured here.
        self._context = kiosk_context(
            self._memory_limit_mb,
            placeholder.get_context().get_website_data_manager(),
        )
        self._content = WebKit2.UserContentManager()
        lock_content(self._content)
        self._settings = kiosk_settings()
        self._swap(placeholder)
        self._watchdog = self._dispatcher.every(self._interval_s, self._probe)
        log.info("webview_started", page=self._page_url.rsplit("/", 1)[-1])

    def show_view(self, payload: str, done: Done) -> None:
        """Apply a view (JSON text); clears any notice."""
        self._last_view = payload
        self._last_notice = None
        self._run(_apply_call(payload), done)

    def show_notice(self, kind: str, text: str, hint: str | None, done: Done) -> None:
        """Show a notice (or, for offline, the badge) over the current view."""
        self._last_notice = (kind, text, hint)
        self._run(_notice_call(kind, text, hint), done)

    def reload(self, done: Done) -> None:
        """Reload the page; ``done`` runs once the last view is back on it."""
        self._parked.append((None, done))
        self._load()

    def evaluate(self, expression: str, done: Done) -> None:
        """Evaluate a JS expression; ``done`` gets its value as JSON text."""
        self._run(_expression_call(expression), done)

    def close(self) -> None:
        """Stop the watchdog and destroy the window, which ends the GUI loop."""
        if self._closed:
            return
        self._closed = True
        for source in (self._watchdog, self._probe_deadline):
            if source is not None:
                self._dispatcher.cancel(source)
        native = self._window.native
        if native is not None:
            native.close()

    # -- page lifecycle ---------------------------------------------------

    def _swap(self, old: Any) -> None:
        """Put a fresh web view where ``old`` was and load the page in it."""
        from gi.repository import WebKit2

        new = WebKit2.WebView(
            web_context=self._context,
            user_content_manager=self._content,
            settings=self._settings,
        )
        # From here on, anything the old view reports is stale and ignored.
        self._view = new
        parent = old.get_parent()
        # A hung web process would outlive its view; end it before letting go.
        old.terminate_web_process()
        parent.remove(old)
        old.destroy()
        parent.add(new)
        new.show()

        lock_view(new, self._page_url)
        self._handlers = [
            new.connect("load-changed", self._on_load_changed),
            new.connect("web-process-terminated", self._on_terminated),
        ]
        self._load()

    def _load(self) -> None:
        self._ready = False
        self._loading_since = self._clock()
        self._view.load_uri(self._page_url)

    def _on_load_changed(self, view: Any, event: Any) -> None:
        from gi.repository import WebKit2

        if view is not self._view or event != WebKit2.LoadEvent.FINISHED:
            return
        self._ready = True
        self._loading_since = None
        self._replay()

    def _replay(self) -> None:
        """Put the remembered view and notice back, then run what was waiting."""
        parked, self._parked = self._parked, []
        calls = []
        if self._last_view is not None:
            calls.append(_apply_call(self._last_view))
        if self._last_notice is not None:
            calls.append(_notice_call(*self._last_notice))
        failures: list[BaseException] = []

        def step(_result: str | None, error: BaseException | None) -> None:
            if error is not None:
                failures.append(error)

        def replayed(_result: str | None, error: BaseException | None) -> None:
            step(None, error)
            first = failures[0] if failures else None
            if first is not None:
                log.warning("webview_replay_failed", error=str(first))
            for call, done in parked:
                if call is None:
                    done(None, first)
                else:
                    self._evaluate(call, done)

        # The page runs calls in the order they were sent, so waiting on the
        # last one is waiting on all of them.
        for call in calls[:-1]:
            self._evaluate(call, step)
        if calls:
            self._evaluate(calls[-1], replayed)
        else:
            replayed(None, None)

    def _run(self, call: Call, done: Done) -> None:
        if self._closed:
            done(None, WebviewError("the window is closed"))
        elif self._ready:
            self._evaluate(call, done)
        else:
            self._parked.append((call, done))

    def _evaluate(self, call: Call, done: Done) -> None:
        from gi.repository import GLib

        def finished(source: Any, result: Any) -> None:
            try:
                value = source.call_async_javascript_function_finish(result)
            except Exception as exc:
                message = getattr(exc, "message", None) or str(exc)
                done(None, WebviewError(f"page script failed: {message}"))
                return
            done(value.to_string() if value.is_string() else None, None)

        body, args = call
        # Data goes in as arguments, never spliced into the script's text.
        arguments = GLib.Variant(
            "a{sv}", {name: GLib.Variant("s", text) for name, text in args.items()}
        )
        self._view.call_async_javascript_function(
            body, -1, arguments, None, None, None, finished
        )

    # -- recovery -----------------------------------------------------------

    def _probe(self) -> None:
        """Ask the page whether it is alive; no answer in time replaces the view."""
        if self._closed or self._recreate_pending:
            return
        if not self._ready:
            started = self._loading_since
            if started is not None and self._clock() - started > LOAD_TIMEOUT_S:
                self._recreate("load_timeout")
            return
        if self._probe_deadline is not None:
            return

        view = self._view
        self._probe_deadline = self._dispatcher.after(
            self._timeout_s, lambda: self._probe_expired(view)
        )
        self._evaluate(
            _expression_call(ALIVE_EXPRESSION),
            lambda _result, error: self._probe_answered(view, error),
        )

    def _probe_answered(self, view: Any, error: BaseException | None) -> None:
        if view is not self._view:
            return
        if self._probe_deadline is not None:
            self._dispatcher.cancel(self._probe_deadline)
            self._probe_deadline = None
        if error is not None:
            self._recreate("alive_failed")

    def _probe_expired(self, view: Any) -> None:
        self._probe_deadline = None
        if view is self._view:
            self._recreate("unresponsive")

    def _on_terminated(self, view: Any, reason: Any) -> None:
        if view is self._view:
            self._recreate(getattr(reason, "value_nick", str(reason)))

    def _recreate(self, reason: str) -> None:
        """Replace the web view now, or after a short gap if it keeps dying."""
        if self._closed or self._recreate_pending:
            return
        self._recreate_pending = True
        # Never from inside the old view's own signal: destroying a widget
        # while it emits crashes WebKit.
        wait_s = self._last_recreate_at + RECREATE_MIN_GAP_S - self._clock()
        self._dispatcher.after(max(0.0, wait_s), lambda: self._replace(reason))

    def _replace(self, reason: str) -> None:
        self._recreate_pending = False
        if self._closed:
            return
        old = self._view
        for handler in self._handlers:
            old.disconnect(handler)
        if self._probe_deadline is not None:
            self._dispatcher.cancel(self._probe_deadline)
            self._probe_deadline = None

        self._swap(old)
        self._last_recreate_at = self._clock()
        self.recreations += 1
        log.warning("webview_recreated", reason=reason, count=self.recreations)


class WebviewRenderer(Renderer):
    """Shows views in the webview window without blocking the agent's loop.

    Each call hops to the GUI thread and waits at most ``call_timeout_s``; a page
    that does not answer raises WebviewError (the watchdog recovers the window).
    Cancelling a call stops the wait, not the work already posted to the GUI.
    """

    def __init__(
        self,
        screen: Screen,
        dispatcher: GuiDispatcher,
        *,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self._screen = screen
        self._dispatcher = dispatcher
        self._call_timeout_s = call_timeout_s
        self._closed = False

    async def show(self, view: View) -> None:
        """Apply ``view`` to the page in place and clear any notice."""
        payload = view.to_json()
        await self._call(lambda done: self._screen.show_view(payload, done))

    async def show_notice(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None:
        """Show a full-screen notice, or the offline badge for OFFLINE."""
        value = NoticeKind(kind).value
        await self._call(lambda done: self._screen.show_notice(value, text, hint, done))

    async def reload(self) -> None:
        """Reload the page and put the last view and notice back on it."""
        await self._call(self._screen.reload)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JS expression in the page (for checks and tools)."""
        text = await self._call(lambda done: self._screen.evaluate(expression, done))
        return None if text is None else json.loads(text)

    async def close(self) -> None:
        """Refuse further calls; the window itself closes when the agent returns."""
        self._closed = True

    async def _call(self, start: Callable[[Done], None]) -> str | None:
        if self._closed:
            raise WebviewError("the renderer is closed")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str | None] = loop.create_future()

        def settle(result: str | None, error: BaseException | None) -> None:
            if answer.done():
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result)

        def done(result: str | None, error: BaseException | None) -> None:
            # A closed loop means the agent has gone: nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, error)

        def begin() -> None:
            try:
                start(done)
            except Exception as exc:
                done(None, exc)

        self._dispatcher.post(begin)
        try:
            async with asyncio.timeout(self._call_timeout_s):
                return await answer
        except TimeoutError:
            raise WebviewError(
                f"the page did not answer within {self._call_timeout_s:g} s"
            ) from None


def run_with_webview(
    agent_main: Callable[[Renderer], Awaitable[int]],
    *,
    disable_compositing: bool = True,
    memory_limit_mb: int = MEMORY_LIMIT_MB,
    title: str = "kiosk-agent",
    liveness_timeout_s: float = 5.0,
    liveness_interval_s: float = LIVENESS_INTERVAL_S,
    page_dir: Path | None = None,
) -> int:
    """Show the window on this (main) thread and run ``agent_main`` beside it.

    Returns ``agent_main``'s exit code; 0 when SIGTERM or SIGINT stopped it
    (the agent is cancelled, the window closes within ``STOP_GRACE_S``); 1 when
    the window went away first or the agent crashed. ``memory_limit_mb`` is
    the web process's memory limit (see ``kiosk_context``). ``page_dir`` holds
    ``index.html`` and its files (default: the bundled page). Raises
    WebviewError when there is no display or no GTK WebKit.
    """
    if threading.current_thread() is not threading.main_thread():
        raise WebviewError("the webview must run on the main thread")
    if disable_compositing:
        # Read by WebKit when it starts: GPU compositing on a Pi's driver stack
        # is where blank or frozen screens come from.
        os.environ["WEBKIT_DISABLE_COMPOSITING_MODE"] = "1"
    x, y, width, height = monitor_geometry()
    webview = _import_webview()

    with tempfile.TemporaryDirectory(prefix="kiosk-page-") as tmp:
        page_url = write_page(page_dir or _bundled_page(), Path(tmp))
        window = webview.create_window(
            title,
            html=BLANK_HTML,
            x=x,
            y=y,
            width=width,
            height=height,
            frameless=True,
            easy_drag=False,
            focus=True,
            background_color="#000000",
            text_select=False,
            zoomable=False,
            draggable=False,
        )
        dispatcher = GuiDispatcher()
        screen = Screen(
            dispatcher,
            window,
            page_url,
            liveness_interval_s=liveness_interval_s,
            liveness_timeout_s=liveness_timeout_s,
            memory_limit_mb=memory_limit_mb,
        )
        renderer = WebviewRenderer(screen, dispatcher)
        agent = _AgentThread(
            agent_main, renderer, lambda: dispatcher.post(screen.close)
        )
        stop = _StopOnSignal(dispatcher, agent, screen)

        sources = dispatcher.on_signals(stop)
        dispatcher.post(screen.start)
        dispatcher.post(agent.start)
        try:
            webview.start(gui="gtk", private_mode=True)
        finally:
            for source in sources:
                dispatcher.cancel(source)

        if not agent.finished.is_set():
            if not stop.requested:
                log.error("webview_closed", detail="the window closed before the agent")
            agent.cancel()
            agent.finished.wait(STOP_GRACE_S)
    if stop.requested:
        return EXIT_OK
    if agent.exit_code is None:
        return EXIT_FAILED
    return agent.exit_code


def write_page(source: Path, target: Path) -> str:
    """Copy the page files into ``target``; returns the ``file://`` URL to load."""
    for name in PAGE_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    index = target / "index.html"
    if not index.is_file():
        raise WebviewError(f"no index.html in {source}")
    return index.resolve().as_uri()


class _AgentThread:
    """The worker thread running the agent's event loop."""

    def __init__(
        self,
        agent_main: Callable[[Renderer], Awaitable[int]],
        renderer: Renderer,
        on_exit: Callable[[], None],
    ) -> None:
        self._agent_main = agent_main
        self._renderer = renderer
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[int | None] | None = None
        self._cancel_requested = False
        self.exit_code: int | None = None
        self.finished = threading.Event()

    def start(self) -> None:
        """Start the thread (daemon: a stuck agent must not hold the process)."""
        threading.Thread(target=self._run, name="kiosk-agent-loop", daemon=True).start()

    def cancel(self) -> None:
        """Cancel the agent from any thread, also before its loop has started."""
        with self._lock:
            self._cancel_requested = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    def _run(self) -> None:
        try:
            self.exit_code = asyncio.run(self._main())
        except Exception:
            log.exception("agent_crashed")
        finally:
            self.finished.set()
            self._on_exit()

    async def _main(self) -> int | None:
        task = asyncio.current_task()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._task = task
            cancelled_early = self._cancel_requested
        try:
            if cancelled_early:
                return None
            return await self._agent_main(self._renderer)
        except asyncio.CancelledError:
            if self._cancel_requested:
                return None
            raise


class _StopOnSignal:
    """SIGTERM/SIGINT handler on the GUI thread: cancel the agent, then close."""

    def __init__(
        self, dispatcher: GuiDispatcher, agent: _AgentThread, screen: Screen
    ) -> None:
        self._dispatcher = dispatcher
        self._agent = agent
        self._screen = screen
        self.requested = False

    def __call__(self, signum: int) -> None:
        if self.requested:
            self._screen.close()
            return
        self.requested = True
        log.info("agent_stop_requested", signal=signal.Signals(signum).name)
        self._agent.cancel()
        # The agent closes the window when it returns; this is the backstop.
        self._dispatcher.after(STOP_GRACE_S, self._screen.close)


def _import_webview() -> Any:
    try:
        import webview
    except ImportError as exc:
        raise WebviewError(f"pywebview is not installed: {exc}") from exc
    try:
        import gi

        gi.require_version("WebKit2", "4.1")
        from gi.repository import WebKit2  # noqa: F401
    except (ImportError, ValueError) as exc:
        raise WebviewError(f"WebKit2GTK 4.1 is not available: {exc}") from exc
    # The page never opens links; pywebview must not hand them to a browser.
    webview.settings["OPEN_EXTERNAL_LINKS_IN_BROWSER"] = False
    return webview


def _bundled_page() -> Path:
    return Path(str(resources.files("agent.render") / "page"))


def _apply_call(payload: str) -> Call:
    # The page's apply takes the view's JSON text and parses it itself.
    return _returning_json("window.kiosk.apply(view)"), {"view": payload}


def _notice_call(kind: str, text: str, hint: str | None) -> Call:
    # An empty hint is no hint, to the page as here.
    args = {"kind": kind, "text": text, "hint": hint or ""}
    return _returning_json("window.kiosk.notice(kind, text, hint)"), args


def _expression_call(expression: str) -> Call:
    return _returning_json(expression), {}


def _returning_json(expression: str) -> str:
    return f"return JSON.stringify(({expression}) ?? null);"
