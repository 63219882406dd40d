"""The headless renderer writes one readable, safe, self-contained page."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agent.render.base import NoticeKind
from agent.render.headless import HeadlessRenderer, render_page
from agent.render.view import build_view, notice_view

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
HOSTILE_BODY = "</script><script>alert(2)</script>"
NOW = datetime(2026, 4, 22, 6, 12, 5, tzinfo=UTC)


def _snapshot(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"snapshot-{name}.json").read_text())
    return data


def _hostile() -> dict[str, Any]:
    snapshot = _snapshot("period")
    snapshot["settings"]["name"] = "Hill School <b>"
    snapshot["announcements"] = [
        {"id": 7, "title": HOSTILE_TITLE, "body": HOSTILE_BODY, "level": "info"}
    ]
    return snapshot


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _embedded(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="kiosk-view">(.*?)</script>', page, re.S
    )
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def _static(page: str) -> str:
    """The pre-rendered markup between the body markers."""
    return page.split("<!-- kiosk:body -->", 1)[1].split("<!-- /kiosk:body -->")[0]


async def test_show_writes_page_with_mode_0644(tmp_path: Path) -> None:
    """The page is world-readable and nothing else is left in the directory."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)

    await renderer.show(build_view(_snapshot("period")))

    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert _names(tmp_path) == ["screen.html"]
    assert renderer.last_view is not None and renderer.last_view.revision == 57


async def test_failed_write_keeps_the_old_page_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash during replace leaves the previous page and no temp file."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)
    await renderer.show(build_view(_snapshot("period")))
    before = out.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await renderer.show(build_view(_snapshot("before-hours")))

    assert out.read_bytes() == before
    assert _names(tmp_path) == ["screen.html"]


def test_page_is_self_contained() -> None:
    """CSS and JS are inlined; no stylesheet link or external script remains."""
    page = render_page(build_view(_snapshot("period")), now=NOW)

    assert "screen.css" not in page and 'src="screen.js"' not in page
    assert "<style>" in page and "window.kiosk" in page
    assert not re.search(r"<(link|script)[^>]+(href|src)=", page)


def test_static_markup_has_school_blocks_and_announcements() -> None:
    """A program grepping the file finds the day's content as text."""
    page = render_page(build_view(_snapshot("period")), now=NOW)
    static = _static(page)

    for text in ("مدرسة الأفق الابتدائية", "رياضيات", "علوم", "الفسحة", "تنبيه"):
        assert text in static
    assert "أ. منيرة" in static and "أ. وليد" in static
    assert 'class="blk is-period is-now"' in static


def test_static_clock_shows_school_time() -> None:
    """With ``now`` given the static clock reads the school's wall time."""
    static = _static(render_page(build_view(_snapshot("period")), now=NOW))

    assert '<span id="clock-hm" class="hm">09:12</span>' in static


def test_hostile_text_is_escaped_in_static_markup() -> None:
    """Markup in snapshot text appears only as escaped text in the HTML."""
    page = render_page(build_view(_hostile()), now=NOW)
    static = _static(page)

    assert HOSTILE_TITLE not in page and HOSTILE_BODY not in page
    assert escape(HOSTILE_TITLE) in static and escape(HOSTILE_BODY) in static
    assert "Hill School &lt;b&gt;" in static
    assert "<img src=x" not in page and "<script>alert" not in page


def test_hostile_text_is_escaped_in_embedded_json() -> None:
    """The embedded JSON cannot end its script element and still decodes."""
    page = render_page(build_view(_hostile()), now=NOW)
    match = re.search(r'id="kiosk-view">(.*?)</script>', page, re.S)
    assert match is not None

    assert "<" not in match.group(1)
    assert _embedded(page)["announcements"][0]["body"] == HOSTILE_BODY


def test_embedded_json_matches_the_view() -> None:
    """The page embeds exactly the view the JS applies."""
    view = build_view(_snapshot("period"))

    assert _embedded(render_page(view)) == json.loads(view.to_json())


def test_arabic_school_page_is_rtl() -> None:
    """An Arabic school gets ``dir="rtl"`` and ``lang="ar"`` on the root."""
    page = render_page(build_view(_snapshot("period")))

    assert re.search(r'<html lang="ar" dir="rtl" data-theme="emerald"', page)
    assert "--accent:#22C55E" in page


def test_idle_screen_shows_copy_strings() -> None:
    """Before school the static page shows the server's title and badge."""
    page = render_page(build_view(_snapshot("before-hours")), now=NOW)

    assert 'data-screen="before"' in page
    assert "صباح الخير، يبدأ اليوم الدراسي قريبًا" in _static(page)
    assert '<div id="idle-badge" class="badge">مرحبًا</div>' in page


async def test_notice_page_contains_text_and_hint(tmp_path: Path) -> None:
    """A screen-bound notice shows the agent's text and the key hint."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)

    await renderer.show_notice(
        NoticeKind.SCREEN_BOUND, "Ask the administrator <now>.", hint="3f9a1c2e"
    )

    page = out.read_text()
    assert 'data-notice="screen_bound"' in page
    # English text keeps left to right whatever the school's direction.
    assert '<div id="notice" class="notice" dir="ltr" lang="en">' in page
    assert "Ask the administrator &lt;now&gt;." in _static(page)
    assert '<span id="notice-hint-text" class="hint-text">3f9a1c2e</span>' in page
    assert _embedded(page)["notice"] == "screen_bound"


async def test_show_after_notice_clears_it(tmp_path: Path) -> None:
    """``show`` replaces a notice page with the schedule."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)
    await renderer.show_notice(NoticeKind.UNPAIRED, "Not paired.")

    await renderer.show(build_view(_snapshot("period")))

    assert "data-notice" not in out.read_text().split(">", 2)[1]


async def test_offline_view_shows_badge_over_content(tmp_path: Path) -> None:
    """An offline view keeps the schedule and adds the saved-at badge."""
    out = tmp_path / "screen.html"
    view = build_view(
        _snapshot("period"),
        offline_since=datetime(2026, 4, 22, 7, 0, tzinfo=UTC),
        saved_at=datetime(2026, 4, 22, 6, 12, tzinfo=UTC),
    )

    await HeadlessRenderer(out).show(view)

    static = _static(out.read_text())
    assert '<div id="offline" class="offline">' in static
    assert "يُعرض الجدول المحفوظ الساعة 09:12" in static
    assert "رياضيات" in static


async def test_offline_notice_badges_the_last_view(tmp_path: Path) -> None:
    """An OFFLINE notice with a view on screen is a badge, not a full notice."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)
    await renderer.show(build_view(_snapshot("period")))

    await renderer.show_notice(NoticeKind.OFFLINE, "Offline since 09:20")

    page = out.read_text()
    assert "Offline since 09:20" in _static(page) and "رياضيات" in _static(page)
    assert "data-notice" not in page.split(">", 2)[1]


async def test_offline_notice_without_a_view_says_waiting(tmp_path: Path) -> None:
    """With nothing on screen an OFFLINE notice becomes the waiting notice."""
    out = tmp_path / "screen.html"

    await HeadlessRenderer(out).show_notice(NoticeKind.OFFLINE, "No server yet.")

    page = out.read_text()
    assert 'data-notice="waiting"' in page and "No server yet." in page


async def test_reload_rewrites_the_last_page(tmp_path: Path) -> None:
    """``reload`` writes the same content again after the file is lost."""
    out = tmp_path / "screen.html"
    renderer = HeadlessRenderer(out)
    await renderer.show(build_view(_snapshot("period")))
    out.unlink()

    await renderer.reload()

    assert "رياضيات" in out.read_text()


async def test_closed_renderer_refuses_to_write(tmp_path: Path) -> None:
    """Using a closed renderer is a clear error."""
    renderer = HeadlessRenderer(tmp_path / "screen.html")
    await renderer.close()

    with pytest.raises(RuntimeError):
        await renderer.show(build_view({}))


def test_static_markup_keeps_the_page_ids() -> None:
    """The pre-rendered body has every id the page skeleton has, so JS finds them."""
    template = (
        resources.files("agent.render")
        .joinpath("page", "index.html")
        .read_text(encoding="utf-8")
    )
    ids = re.compile(r'\bid="([^"]+)"')
    skeleton = set(ids.findall(_static(template)))

    for content in (
        build_view(_snapshot("period")),
        notice_view(NoticeKind.WAITING, ""),
    ):
        assert set(ids.findall(_static(render_page(content)))) == skeleton


def test_static_list_items_use_the_template_classes() -> None:
    """Pre-rendered items carry the classes of the page's item templates."""
    page = render_page(build_view(_snapshot("period")), now=NOW)
    static = _static(page)

    for name in ("tpl-block", "tpl-person", "tpl-ann"):
        template = re.search(rf'<template id="{name}">(.*?)</template>', page)
        assert template is not None
        for cls in re.findall(r'class="([^"]+)"', template.group(1)):
            assert f'class="{cls}' in static or f" {cls}" in static, cls


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_script_parses(tmp_path: Path) -> None:
    """screen.js is valid JavaScript as node reads it."""
    script = tmp_path / "screen.js"
    script.write_text(
        resources.files("agent.render").joinpath("page", "screen.js").read_text()
    )

    result = subprocess.run(
        ["node", "--check", str(script)], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
