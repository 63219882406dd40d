"""Runs one scripted scenario in the real webview and prints what it saw.

GTK must own the main thread, so every e2e test runs this file in a subprocess:
``python -m tests.e2e.driver SCENARIO --page DIR``. Each observation is one JSON
line on stdout: ``{"event": ..., ...}``; the process exit code is the one
``run_with_webview`` returned. Logs go to stderr as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent import logs
from agent.render.base import NoticeKind, Renderer
from agent.render.view import Announcement, View
from agent.render.webview import WebviewRenderer, run_with_webview

HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"\u2028'
SCHOOL = "Riverside Secondary"
Scenario = Callable[[WebviewRenderer], Awaitable[int]]


def emit(event: str, **fields: Any) -> None:
    """Print one observation as a JSON line."""
    print(json.dumps({"event": event, **fields}), flush=True)


def make_view(school: str = SCHOOL, revision: int = 1, **extra: Any) -> View:
    """A small live view; ``extra`` overrides any View field."""
    fields: dict[str, Any] = {"school": school, "revision": revision, "screen": "live"}
    fields.update(extra)
    return View(**fields)


async def text_of(renderer: WebviewRenderer, element_id: str) -> Any:
    """The textContent of one element, or None when it is missing."""
    return await renderer.evaluate(
        f"document.getElementById({json.dumps(element_id)})?.textContent ?? null"
    )


async def painted(renderer: WebviewRenderer) -> None:
    """Wait until the page has had two animation frames since now."""
    await renderer.evaluate(
        "(() => { window.__e2eFrames = 0; requestAnimationFrame(() =>"
        " requestAnimationFrame(() => { window.__e2eFrames = 2; })); return 0; })()"
    )
    for _ in range(100):
        if await renderer.evaluate("window.__e2eFrames") == 2:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("no animation frames")


async def wait_for(probe: Callable[[], Awaitable[Any]], timeout_s: float = 10.0) -> Any:
    """Poll ``probe`` until it returns something truthy; errors count as no."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = await probe()
        except Exception:
            value = None
        if value:
            return value
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not met in time")


def web_processes() -> list[int]:
    """PIDs of WebKit web processes below this process."""
    found = []
    pending = [os.getpid()]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in map(int, children):
                pending.append(child)
                try:
                    name = Path(f"/proc/{child}/comm").read_text().strip()
                except OSError:
                    continue
                if name.startswith("WebKitWebProces"):
                    found.append(child)
    return found


# -- scenarios ---------------------------------------------------------------


async def applied(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    emit("school", text=await text_of(renderer, "school"))
    emit("url", href=await renderer.evaluate("location.href"))
    return 0


async def in_place(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view(revision=1))
    await renderer.evaluate(
        "(() => { window.__e2eMark = 'kept'; window.__e2eBody = document.body;"
        " return 0; })()"
    )
    await renderer.show(make_view("Hillside Academy", revision=2))
    emit("school", text=await text_of(renderer, "school"))
    emit(
        "same_page",
        mark=await renderer.evaluate("window.__e2eMark ?? null"),
        same_body=await renderer.evaluate("window.__e2eBody === document.body"),
    )
    return 0


async def hostile(renderer: WebviewRenderer) -> int:
    item = Announcement(
        id="a1", title=HOSTILE, body="<script>window.__pwned=2</script>"
    )
    await renderer.show(make_view(HOSTILE, announcements=(item,)))
    await painted(renderer)
    emit("school", text=await text_of(renderer, "school"))
    emit(
        "dom",
        pwned=await renderer.evaluate("window.__pwned ?? null"),
        injected=await renderer.evaluate(
            "document.querySelectorAll('#school *, img[src=x], b').length"
        ),
        body=await renderer.evaluate("document.body.textContent.includes('<script>')"),
    )
    return 0


async def rtl(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view("مدرسة الأمل", dir="rtl", lang="ar"))
    emit(
        "layout",
        dir=await renderer.evaluate("document.documentElement.dir"),
        direction=await renderer.evaluate(
            "getComputedStyle(document.getElementById('school')).direction"
        ),
        text=await text_of(renderer, "school"),
    )
    # Notice text is English, so it stays left to right on an Arabic page.
    await renderer.show_notice(NoticeKind.SCREEN_BOUND, "Bound elsewhere.")
    emit(
        "notice_layout",
        direction=await renderer.evaluate(
            "getComputedStyle(document.getElementById('notice-text')).direction"
        ),
    )
    return 0


async def notices(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    for kind in NoticeKind:
        text = f"notice {kind.value} text"
        await renderer.show_notice(kind, text, hint="HINT-123")
        box = "offline" if kind is NoticeKind.OFFLINE else "notice"
        emit(
            "notice",
            kind=kind.value,
            visible=await renderer.evaluate(
                f"!document.getElementById('{box}').hidden"
            ),
            shown=await renderer.evaluate(
                f"document.getElementById('{box}').textContent.includes({text!r})"
            ),
        )
    await renderer.show(make_view(revision=2))
    emit(
        "cleared",
        hidden=await renderer.evaluate("document.getElementById('notice').hidden"),
    )
    return 0


async def reload(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    await renderer.show_notice(NoticeKind.OFFLINE, "offline badge", hint=None)
    await renderer.evaluate("(() => { window.__e2eMark = 'before'; return 0; })()")
    await renderer.reload()
    emit(
        "reloaded",
        mark=await renderer.evaluate("window.__e2eMark ?? null"),
        school=await text_of(renderer, "school"),
        offline=await renderer.evaluate("!document.getElementById('offline').hidden"),
    )
    return 0


async def crash(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    await renderer.evaluate("(() => { window.__e2eMark = 'before'; return 0; })()")
    before = web_processes()
    emit("killing", pids=before)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    await _recovered(renderer, before)
    return 0


async def hang(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    await renderer.evaluate("(() => { window.__e2eMark = 'before'; return 0; })()")
    before = web_processes()
    emit("stopping", pids=before)
    for pid in before:
        os.kill(pid, signal.SIGSTOP)
    await _recovered(renderer, before)
    return 0


async def _recovered(renderer: WebviewRenderer, before: list[int]) -> None:
    async def fresh_page() -> bool:
        mark = await renderer.evaluate("window.__e2eMark ?? null")
        return mark is None and await text_of(renderer, "school") == SCHOOL

    await wait_for(fresh_page, timeout_s=20)
    after = web_processes()
    emit("recovered", school=await text_of(renderer, "school"), pids=after)
    emit("old_gone", gone=all(pid not in after for pid in before))


async def navigate(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    await renderer.evaluate("(() => { window.__e2eMark = 'kept'; return 0; })()")
    await renderer.evaluate(
        "(() => { location.href = 'file:///etc/hostname'; return 0; })()"
    )
    await renderer.evaluate(
        "(() => { const a = document.createElement('a'); a.href = 'file:///etc/';"
        " document.body.append(a); a.click(); return 0; })()"
    )
    await renderer.evaluate("(() => { history.back(); return 0; })()")
    await asyncio.sleep(0.5)
    emit(
        "still_here",
        mark=await renderer.evaluate("window.__e2eMark ?? null"),
        href=await renderer.evaluate("location.href"),
    )
    return 0


async def idle(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view())
    emit("ready", pids=web_processes())
    await asyncio.Event().wait()
    return 0


async def screenshot(renderer: WebviewRenderer) -> int:
    await renderer.show(make_view("SCHOOL HEADER TEXT"))
    await painted(renderer)
    colours = await renderer.evaluate(
        "(() => { const s = document.getElementById('school');"
        " const r = s.getBoundingClientRect();"
        " return {background: getComputedStyle(document.body).backgroundColor,"
        " text: getComputedStyle(s).color,"
        " box: [r.left, r.top, r.width, r.height],"
        " ratio: window.devicePixelRatio}; })()"
    )
    emit("colours", **colours)
    width, height, pixels = await asyncio.to_thread(capture_root)
    emit("capture", **summarise(width, height, pixels, colours))
    return 0


def capture_root() -> tuple[int, int, bytes]:
    """Grab the X root window (what a person would see) from the GUI thread."""
    from gi.repository import Gdk, GLib

    result: dict[str, Any] = {}
    done = threading.Event()

    def grab() -> bool:
        root = Gdk.get_default_root_window()
        width, height = root.get_width(), root.get_height()
        pixbuf = Gdk.pixbuf_get_from_window(root, 0, 0, width, height)
        rowstride, channels = pixbuf.get_rowstride(), pixbuf.get_n_channels()
        data = pixbuf.get_pixels()
        rows = [
            data[y * rowstride : y * rowstride + width * channels]
            for y in range(height)
        ]
        if channels == 4:
            rows = [bytes(b for i, b in enumerate(row) if i % 4 != 3) for row in rows]
        result.update(width=width, height=height, pixels=b"".join(rows))
        done.set()
        return False

    GLib.idle_add(grab)
    if not done.wait(10):
        raise TimeoutError("screenshot did not finish")
    return result["width"], result["height"], result["pixels"]


def summarise(
    width: int, height: int, pixels: bytes, colours: dict[str, Any]
) -> dict[str, Any]:
    """Fractions of background pixels overall and of text pixels in the header."""
    background = _rgb(colours["background"])
    text = _rgb(colours["text"])
    scale = colours["ratio"] or 1
    left, top, box_w, box_h = (round(v * scale) for v in colours["box"])

    def near(i: int, colour: tuple[int, int, int]) -> bool:
        return all(abs(pixels[i + c] - colour[c]) <= 24 for c in range(3))

    step = 7
    sampled = range(0, width * height, step)
    bg = sum(near(p * 3, background) for p in sampled) / len(sampled)
    header = [
        (y * width + x) * 3
        for y in range(max(0, top), min(height, top + box_h))
        for x in range(max(0, left), min(width, left + box_w))
    ]
    text_px = sum(near(i, text) for i in header)
    return {
        "size": [width, height],
        "background_fraction": round(bg, 3),
        "header_text_pixels": text_px,
        "header_pixels": len(header),
    }


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (round(float(v)) for v in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


SCENARIOS: dict[str, Scenario] = {
    "applied": applied,
    "in_place": in_place,
    "hostile": hostile,
    "rtl": rtl,
    "notices": notices,
    "reload": reload,
    "crash": crash,
    "hang": hang,
    "navigate": navigate,
    "idle": idle,
    "screenshot": screenshot,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--page", type=Path, required=True)
    parser.add_argument("--liveness-interval-s", type=float, default=0.5)
    parser.add_argument("--liveness-timeout-s", type=float, default=1.0)
    args = parser.parse_args()
    logs.configure("info", "json", stream=sys.stderr)
    scenario = SCENARIOS[args.scenario]

    async def agent_main(renderer: Renderer) -> int:
        assert isinstance(renderer, WebviewRenderer)
        try:
            return await scenario(renderer)
        except Exception as exc:
            emit("error", type=type(exc).__name__, message=str(exc))
            return 3

    return run_with_webview(
        agent_main,
        page_dir=args.page,
        liveness_interval_s=args.liveness_interval_s,
        liveness_timeout_s=args.liveness_timeout_s,
    )


if __name__ == "__main__":
    sys.exit(main())
