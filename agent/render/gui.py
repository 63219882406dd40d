"""GTK plumbing for the webview: the GUI-thread hop, signals, and the locked page.

Everything here imports ``gi`` lazily, so importing this module needs no display.
GTK objects may only be touched on the thread that runs the GLib main loop; the
functions taking a widget or a WebKit view must be called there.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import structlog

from agent.errors import KioskError

log = structlog.get_logger(__name__)

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often WebKit checks the web process against its memory limit.
MEMORY_POLL_S = 10.0

# Applied to every page, whatever the page itself says: a kiosk shows no
# cursor and lets nobody select, drag or zoom what is on it.
LOCKDOWN_CSS = """
*, *::before, *::after {
  cursor: none !important;
  -webkit-user-select: none !important;
  user-select: none !important;
  -webkit-user-drag: none !important;
  -webkit-touch-callout: none !important;
}
"""

LOCKDOWN_JS = """
(() => {
  const stop = (e) => { e.preventDefault(); e.stopPropagation(); };
  const opts = { capture: true, passive: false };
  const multi = (e) => { if (e.touches && e.touches.length > 1) stop(e); };
  addEventListener("touchstart", multi, opts);
  addEventListener("touchmove", multi, opts);
  addEventListener("wheel", (e) => { if (e.ctrlKey) stop(e); }, opts);
  addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && "+-=0".includes(e.key)) stop(e);
  }, opts);
  for (const name of ["contextmenu", "selectstart", "dragstart", "dragover",
                      "drop", "gesturestart", "gesturechange"]) {
    addEventListener(name, stop, opts);
  }
})();
"""


class WebviewError(KioskError):
    """The GUI could not start, or the page did not do what it was asked."""


class GuiDispatcher:
    """Hands callables to the GLib main loop; ``post`` is safe from any thread.

    Callables run on the GUI thread in the order they were posted. Never wait
    on the GUI thread for something posted here: the loop would stop turning.
    """

    def __init__(self) -> None:
        from gi.repository import GLib

        self._glib: Any = GLib

    def post(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the GUI thread soon; an exception is logged, not raised."""
        self._glib.idle_add(_guarded(fn, repeat=False))

    def after(self, delay_s: float, fn: Callable[[], object]) -> int:
        """Run ``fn`` once on the GUI thread after ``delay_s``; returns a source id."""
        delay_ms = max(0, round(delay_s * 1000))
        source_id: int = self._glib.timeout_add(delay_ms, _guarded(fn, repeat=False))
        return source_id

    def every(self, interval_s: float, fn: Callable[[], object]) -> int:
        """Run ``fn`` on the GUI thread every ``interval_s``; returns a source id."""
        interval_ms = max(1, round(interval_s * 1000))
        source_id: int = self._glib.timeout_add(interval_ms, _guarded(fn, repeat=True))
        return source_id

    def cancel(self, source_id: int) -> None:
        """Stop a timer from ``after`` or ``every``; a finished one is ignored."""
        source = self._glib.MainContext.default().find_source_by_id(source_id)
        if source is not None and not source.is_destroyed():
            source.destroy()

    def on_signals(self, handler: Callable[[int], None]) -> list[int]:
        """Call ``handler(signum)`` on the GUI thread for SIGTERM and SIGINT.

        GTK's main loop runs in C, where Python signal handlers only run once
        control comes back to Python; GLib's own handler wakes the loop at once.
        """
        sources: list[int] = []
        for signum in HANDLED_SIGNALS:

            def run(signum: int = signum) -> bool:
                try:
                    handler(signum)
                except Exception:
                    log.exception("gui_signal_failed", signal=signum)
                return True

            sources.append(
                self._glib.unix_signal_add(self._glib.PRIORITY_HIGH, signum, run)
            )
        return sources


def monitor_geometry() -> tuple[int, int, int, int]:
    """The primary monitor's ``(x, y, width, height)``; raises WebviewError."""
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        gi.require_version("Gdk", "3.0")
        from gi.repository import Gdk, Gtk  # noqa: F401
    except (ImportError, ValueError) as exc:
        raise WebviewError(f"GTK 3 is not available: {exc}") from exc

    display = Gdk.Display.get_default()
    if display is None:
        raise WebviewError("no display to draw on (is DISPLAY or WAYLAND_DISPLAY set?)")
    monitor = display.get_primary_monitor() or display.get_monitor(0)
    if monitor is None:
        raise WebviewError("the display reports no monitor")
    area = monitor.get_geometry()
    return area.x, area.y, area.width, area.height


def find_webkit_view(widget: Any) -> Any | None:
    """The first ``WebKit2.WebView`` at or below ``widget``, or None."""
    from gi.repository import Gtk, WebKit2

    if isinstance(widget, WebKit2.WebView):
        return widget
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            found = find_webkit_view(child)
            if found is not None:
                return found
    return None


def lock_window(window: Any) -> None:
    """Frameless, no cursor, and asking the window manager for full screen.

    The window is already sized to the monitor: without a window manager the
    full-screen request is simply not answered, which is fine.
    """
    from gi.repository import Gdk

    window.set_decorated(False)
    window.fullscreen()
    gdk_window = window.get_window()
    if gdk_window is not None:
        blank = Gdk.Cursor.new_for_display(
            gdk_window.get_display(), Gdk.CursorType.BLANK_CURSOR
        )
        gdk_window.set_cursor(blank)


def lock_content(manager: Any) -> None:
    """Add the lockdown style and script to every page using ``manager``."""
    from gi.repository import WebKit2

    manager.add_style_sheet(
        WebKit2.UserStyleSheet(
            LOCKDOWN_CSS,
            WebKit2.UserContentInjectedFrames.ALL_FRAMES,
            WebKit2.UserStyleLevel.USER,
            None,
            None,
        )
    )
    manager.add_script(
        WebKit2.UserScript(
            LOCKDOWN_JS,
            WebKit2.UserContentInjectedFrames.ALL_FRAMES,
            WebKit2.UserScriptInjectionTime.START,
            None,
            None,
        )
    )


def kiosk_context(memory_limit_mb: int, data_manager: Any) -> Any:
    """A web context that keeps the web process's memory in check.

    By default WebKit lets a web process reach a third of 3 GB before it frees
    caches, and never stops it; a screen that runs for weeks needs both. Here
    it frees caches from a third of ``memory_limit_mb``, harder from half, and
    at the limit ends the web process, which the watchdog replaces like any
    other crash. ``data_manager`` is the one pywebview made:
    a context with a data manager of its own starts a second network process.
    """
    from gi.repository import WebKit2

    pressure = WebKit2.MemoryPressureSettings.new()
    pressure.set_memory_limit(memory_limit_mb)
    pressure.set_kill_threshold(1.0)
    pressure.set_poll_interval(MEMORY_POLL_S)
    context = WebKit2.WebContext(
        website_data_manager=data_manager,
        memory_pressure_settings=pressure,
    )
    # One local page: no back-forward cache, and a small memory cache.
    context.set_cache_model(WebKit2.CacheModel.DOCUMENT_VIEWER)
    return context


def kiosk_settings() -> Any:
    """WebKit settings for the page: no inspector, no pop-ups, no swipe history."""
    from gi.repository import WebKit2

    settings = WebKit2.Settings()
    settings.set_property("enable-developer-extras", False)
    settings.set_property("javascript-can-open-windows-automatically", False)
    settings.set_property("enable-back-forward-navigation-gestures", False)
    settings.set_property("zoom-text-only", False)
    return settings


def lock_view(view: Any, page_url: str) -> None:
    """Signal handlers and state that keep ``view`` on ``page_url`` only."""
    from gi.repository import Gdk, WebKit2

    view.set_zoom_level(1.0)
    view.set_background_color(Gdk.RGBA(0.0, 0.0, 0.0, 1.0))
    view.drag_dest_unset()

    def refuse_menu(*_args: object) -> bool:
        return True

    def keep_zoom(widget: Any, _param: object) -> None:
        if widget.get_zoom_level() != 1.0:
            widget.set_zoom_level(1.0)

    def decide(_view: Any, decision: Any, kind: Any) -> bool:
        if kind == WebKit2.PolicyDecisionType.RESPONSE:
            return False
        action = decision.get_navigation_action()
        allowed = kind == WebKit2.PolicyDecisionType.NAVIGATION_ACTION and (
            is_page_load(action.get_navigation_type(), action.get_request().get_uri())
        )
        uri = action.get_request().get_uri()
        if allowed:
            decision.use()
        else:
            # about:blank is pywebview's placeholder page, not a way out.
            if uri != "about:blank":
                log.warning("navigation_blocked", uri=uri[:80])
            decision.ignore()
        return True

    def is_page_load(nav_type: Any, uri: str) -> bool:
        plain = uri.split("#", 1)[0]
        return plain == page_url and nav_type in (
            WebKit2.NavigationType.OTHER,
            WebKit2.NavigationType.RELOAD,
        )

    view.connect("context-menu", refuse_menu)
    view.connect("notify::zoom-level", keep_zoom)
    view.connect("decide-policy", decide)


def _guarded(fn: Callable[[], object], *, repeat: bool) -> Callable[[], bool]:
    """A GLib source callback that logs instead of raising; True keeps a timer."""

    def run() -> bool:
        try:
            fn()
        except Exception:
            log.exception("gui_call_failed")
        return repeat

    return run
