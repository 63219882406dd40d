"""The real webview under a display server: views, notices, recovery, exit."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.agentview import still_running
from tests.e2e.conftest import FIXTURE_PAGE, ROOT, Outcome
from tests.e2e.driver import HOSTILE, SCHOOL

pytestmark = pytest.mark.e2e

BUNDLED_PAGE = ROOT / "agent" / "render" / "page"
Run = Callable[..., Outcome]


def _bundled_or_skip() -> Path:
    missing = [
        n
        for n in ("index.html", "screen.css", "screen.js")
        if not (BUNDLED_PAGE / n).is_file()
    ]
    if missing:
        pytest.skip(f"the bundled page lacks {', '.join(missing)}")
    return BUNDLED_PAGE


@pytest.fixture(params=["fixture", "bundled"])
def page(request: pytest.FixtureRequest) -> Path:
    """The stand-in page, then the page the agent ships."""
    return FIXTURE_PAGE if request.param == "fixture" else _bundled_or_skip()


def test_view_is_applied_to_the_dom(run_scenario: Run, page: Path) -> None:
    """A shown view's school name is in the DOM of the file:// page."""
    outcome = run_scenario("applied", page)

    assert outcome.returncode == 0, outcome.events
    assert outcome.first("school")["text"] == SCHOOL
    assert outcome.first("url")["href"].startswith("file:///")


def test_update_is_applied_in_place(run_scenario: Run, page: Path) -> None:
    """A second view changes the text without reloading the page."""
    outcome = run_scenario("in_place", page)

    assert outcome.first("school")["text"] == "Hillside Academy"
    assert outcome.first("same_page") == {
        "event": "same_page",
        "mark": "kept",
        "same_body": True,
    }


def test_hostile_strings_are_shown_as_text(run_scenario: Run, page: Path) -> None:
    """Markup in snapshot strings reaches the screen as text, never as elements."""
    outcome = run_scenario("hostile", page)

    assert outcome.first("school")["text"] == HOSTILE
    dom = outcome.first("dom")
    assert dom["pwned"] is None
    assert dom["injected"] == 0


def test_rtl_view_lays_out_right_to_left(run_scenario: Run, page: Path) -> None:
    """An Arabic view switches the document and its text to right-to-left."""
    outcome = run_scenario("rtl", page)
    layout = outcome.first("layout")

    assert layout["dir"] == "rtl"
    assert layout["direction"] == "rtl"
    assert layout["text"] == "مدرسة الأمل"
    assert outcome.first("notice_layout")["direction"] == "ltr"


def test_each_notice_is_shown_and_cleared_by_a_view(run_scenario: Run) -> None:
    """Every notice kind becomes visible with its text; the next view hides it."""
    outcome = run_scenario("notices")

    shown = {n["kind"]: (n["visible"], n["shown"]) for n in outcome.all("notice")}
    assert shown == {
        "unpaired": (True, True),
        "screen_bound": (True, True),
        "token_rejected": (True, True),
        "offline": (True, True),
        "waiting": (True, True),
    }
    assert outcome.first("cleared")["hidden"] is True


def test_reload_reapplies_the_last_view_and_notice(run_scenario: Run) -> None:
    """After reload() the page is new but shows the same view and badge."""
    reloaded = run_scenario("reload").first("reloaded")

    assert reloaded["mark"] is None
    assert reloaded["school"] == SCHOOL
    assert reloaded["offline"] is True


def test_navigation_away_is_blocked(run_scenario: Run) -> None:
    """Setting location, clicking a link and going back leave the page in place."""
    outcome = run_scenario("navigate")

    still = outcome.first("still_here")
    assert still["mark"] == "kept"
    assert still["href"].endswith("/index.html")
    blocked = [e for e in outcome.logs if e.get("event") == "navigation_blocked"]
    assert blocked


def test_killed_web_process_is_replaced(run_scenario: Run) -> None:
    """A crashed web process gets a new web view showing the last view."""
    outcome = run_scenario("crash")

    assert outcome.first("recovered")["school"] == SCHOOL
    assert outcome.first("old_gone")["gone"] is True
    reasons = [
        e["reason"] for e in outcome.logs if e.get("event") == "webview_recreated"
    ]
    assert reasons[:1] == ["crashed"]


def test_hung_web_process_is_replaced(run_scenario: Run) -> None:
    """A page that stops answering alive() is replaced and its process ended."""
    outcome = run_scenario("hang")

    assert outcome.first("recovered")["school"] == SCHOOL
    assert outcome.first("old_gone")["gone"] is True
    reasons = [
        e["reason"] for e in outcome.logs if e.get("event") == "webview_recreated"
    ]
    assert reasons[:1] == ["unresponsive"]


def test_screenshot_shows_background_and_header_text(
    run_scenario: Run, page: Path
) -> None:
    """Real pixels: the page background fills the screen, the header has text."""
    outcome = run_scenario("screenshot", page)

    capture = outcome.first("capture")
    assert capture["size"] == [1920, 1080]
    assert capture["background_fraction"] > 0.5
    assert capture["header_text_pixels"] > 200


def test_sigterm_exits_cleanly_within_five_seconds(
    start_scenario: Callable[[str], subprocess.Popen[str]],
) -> None:
    """SIGTERM stops the agent, closes the window and ends the process in 5 s."""
    proc = start_scenario("idle")
    ready = _wait_for_line(proc, '"ready"', timeout_s=30)

    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    returncode = proc.wait(timeout=10)
    elapsed = time.monotonic() - started

    assert returncode == 0
    assert elapsed < 5.0
    assert ready and not still_running(ready, within_s=5.0 - elapsed)


def _wait_for_line(
    proc: subprocess.Popen[str], needle: str, timeout_s: float
) -> list[int]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 0.2)
        if readable:
            line = proc.stdout.readline()
            if needle in line:
                import json

                pids: list[int] = json.loads(line)["pids"]
                return pids
    raise AssertionError(f"no {needle} from the driver in {timeout_s} s")
