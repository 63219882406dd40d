"""``kiosk-agent demo``: the agent against a built-in sample school on loopback."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent import logs
from agent.config import Settings

if TYPE_CHECKING:
    from server_stub.testing import StubServer

DEMO_TITLES = (
    "Science fair entries close on Thursday",
    "Library closed for stocktaking after break",
    "Grade 4 trip: bring signed permission slips",
    "Football practice moved to the gym",
    "Well done to the reading challenge winners",
)


def choose_renderer(requested: str | None) -> str:
    """The webview when a display and GTK WebKit are available, else headless."""
    if requested:
        return requested
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    has_webkit = importlib.util.find_spec("webview") is not None
    return "webview" if has_display and has_webkit else "headless"


def run_demo(
    *,
    state_dir: Path | None,
    renderer: str | None,
    edit_every_s: float,
    duration_s: float | None,
    log_level: str,
) -> int:
    """Start the stub, run the agent against it and edit the school now and then."""
    from agent.cli import run_agent
    from server_stub.testing import StubServer

    temporary = state_dir is None
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    chosen = choose_renderer(renderer)
    logs.configure(log_level, "auto")
    with StubServer() as stub:
        settings = Settings.model_validate(
            {
                "server_url": stub.url,
                "token": stub.token,
                "state_dir": state_dir,
                "renderer": chosen,
                "log_level": log_level,
            }
        )
        print(
            f"demo: stub server {stub.url} (admin API {stub.url}/admin/state)\n"
            f"demo: state directory {state_dir}\n"
            f"demo: renderer {chosen}"
            + (
                f"; open {state_dir / 'screen.html'} in a browser to see the screen"
                " (removed when the demo ends; keep it with --state-dir)"
                if chosen == "headless"
                else ""
            )
            + f"\ndemo: editing the school every {edit_every_s:g} s; Ctrl-C stops",
            flush=True,
        )
        stop = threading.Event()
        editor = threading.Thread(
            target=_edit_loop, args=(stub, edit_every_s, stop), name="demo-editor"
        )
        editor.start()
        timer = None
        if duration_s is not None:
            timer = threading.Timer(
                duration_s, lambda: os.kill(os.getpid(), signal.SIGTERM)
            )
            timer.start()
        try:
            return run_agent(settings)
        finally:
            stop.set()
            if timer is not None:
                timer.cancel()
            editor.join(timeout=5)
            if temporary:
                shutil.rmtree(state_dir, ignore_errors=True)


def _edit_loop(stub: StubServer, every_s: float, stop: threading.Event) -> None:
    """Post an announcement edit through the admin API every ``every_s``."""
    count = 0
    while not stop.wait(every_s):
        title = DEMO_TITLES[count % len(DEMO_TITLES)]
        count += 1
        stamp = datetime.now().strftime("%H:%M:%S")
        try:
            answer = stub.admin(
                "POST",
                "/admin/announce",
                {"id": 900, "title": title, "body": f"Posted at {stamp}"},
            )
        except Exception as exc:  # the demo keeps going if one edit fails
            print(f"demo: edit failed: {exc}", flush=True)
            continue
        print(
            f"demo: {stamp} edited the school: revision {answer.get('revision')}"
            f" — “{title}”",
            flush=True,
        )
