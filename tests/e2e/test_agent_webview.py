"""The real agent in the real webview against the real stub server, under Xvfb.

Each agent is ``kiosk-agent run --renderer webview`` in its own process (through
``tests.e2e.agentdriver`` where a test reads the DOM). The checks on a running,
paired screen share one agent and one stub to keep the run short.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server_stub.state import StubState
from server_stub.testing import StubServer
from tests.e2e.agentview import WebviewAgent, still_running

pytestmark = pytest.mark.e2e

HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"><b>bold</b> & "quotes"'
HOSTILE_BODY = "<script>window.__pwned=2</script>"
NOTICE_SHOWN = "!document.getElementById('notice').hidden"


@pytest.fixture(scope="module")
def school() -> Iterator[StubServer]:
    """One stub for the shared screen: no rate limit, no push drop window."""
    state = StubState(rate_limit=False, push_drop_window_s=0.0)
    with StubServer(state=state) as server:
        yield server


@pytest.fixture(scope="module")
def screen(
    school: StubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebviewAgent]:
    """A paired agent showing the sample school; shared by the checks below."""
    state_dir = tmp_path_factory.mktemp("screen") / "state"
    agent = WebviewAgent(state_dir, school.url, school.token).start()
    try:
        agent.wait_for_js(
            f"document.getElementById('school').textContent === "
            f"{json.dumps(school_name(school))}",
            what="the school on screen",
        )
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def agents() -> Iterator[list[WebviewAgent]]:
    """Agents a test starts; each is stopped at teardown."""
    started: list[WebviewAgent] = []
    yield started
    for agent in started:
        if agent.proc is not None:
            agent.stop()


def school_name(stub: StubServer) -> str:
    name: str = stub.admin("GET", "/admin/state")["school_name"]
    return name


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the server is unreachable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def mark_page(agent: WebviewAgent) -> None:
    """Leave a mark that lives exactly as long as this page and its #school node."""
    agent.evaluate(
        "(() => { window.__e2eMark = 'kept';"
        " window.__e2eNode = document.getElementById('school'); return 0; })()"
    )


def test_cached_snapshot_is_shown_while_the_server_is_unreachable(
    screen: WebviewAgent, school: StubServer, agents: list[WebviewAgent], tmp_path: Path
) -> None:
    """A second run with the server gone paints the first run's snapshot."""
    state_dir = tmp_path / "state"
    shutil.copytree(screen.state_dir, state_dir)
    revision = json.loads((state_dir / "snapshot.json").read_text())["revision"]

    agent = WebviewAgent(state_dir, closed_port_url(), school.token).start()
    agents.append(agent)

    first = agent.first_paint()
    assert first["kind"] == "view"
    assert agent.text("school") == school_name(school)
    assert agent.evaluate("window.kiosk.alive().revision") == revision
    assert agent.logged("cache_shown")[0]["revision"] == revision


def test_announcement_push_changes_the_dom_in_place(
    screen: WebviewAgent, school: StubServer
) -> None:
    """An announcement edit reaches the page without a reload or a new node."""
    mark_page(screen)
    title = f"Assembly moved {uuid.uuid4().hex[:8]}"

    school.admin("POST", "/admin/announce", {"title": title, "body": "Hall B"})

    screen.wait_for_js(
        f"document.getElementById('news-list').textContent.includes({title!r})",
        what="the announcement on screen",
    )
    assert screen.evaluate("window.__e2eMark ?? null") == "kept"
    assert screen.evaluate("window.__e2eNode === document.getElementById('school')")
    sources = {e.get("source") for e in screen.logged("snapshot_applied")}
    assert "push" in sources


# The day list's offset and whether it sits on a row boundary.
DAY_LIST_PAGE = """(() => {
  const list = document.getElementById("day-list");
  const match = /translateY\\((-?[\\d.]+)px\\)/.exec(list.style.transform);
  const offset = match ? -Number(match[1]) : 0;
  const tops = Array.from(list.children, (row) => row.offsetTop - list.offsetTop);
  return {
    offset: offset,
    on_row: tops.includes(offset),
    overflowing: list.parentElement.classList.contains("overflowing"),
  };
})()"""


def test_a_long_day_list_turns_whole_pages_and_returns_to_the_top(
    screen: WebviewAgent, school: StubServer
) -> None:
    """A day list that does not fit moves a page at a time, rows kept whole."""
    # 1080p and the sample school's periods do not fit; the fastest speed holds
    # each page for 3 s.
    assert screen.evaluate(DAY_LIST_PAGE)["overflowing"]
    school.admin(
        "POST", "/admin/edit", {"path": "settings.periods_scroll_speed", "value": 5}
    )
    try:
        turned = screen.wait_for(
            lambda: (page := screen.evaluate(DAY_LIST_PAGE))["offset"] > 0 and page,
            timeout_s=20,
            what="the day list's next page",
        )
        assert turned["on_row"], turned
        screen.wait_for(
            lambda: screen.evaluate(DAY_LIST_PAGE)["offset"] == 0,
            timeout_s=40,
            what="the day list back at the top",
        )
    finally:
        school.admin(
            "POST",
            "/admin/edit",
            {"path": "settings.periods_scroll_speed", "value": 0.5},
        )


def test_arabic_school_is_laid_out_right_to_left(
    screen: WebviewAgent, school: StubServer
) -> None:
    """The Arabic sample school sets dir=rtl and lang=ar and flows right to left."""
    layout = screen.evaluate(
        "({dir: document.documentElement.dir, lang: document.documentElement.lang,"
        " direction: getComputedStyle(document.getElementById('school')).direction,"
        " text: document.getElementById('school').textContent})"
    )

    assert layout == {
        "dir": "rtl",
        "lang": "ar",
        "direction": "rtl",
        "text": school_name(school),
    }


def test_hostile_announcement_is_shown_as_text(
    screen: WebviewAgent, school: StubServer
) -> None:
    """Markup in an announcement is shown literally and creates no element."""
    school.admin(
        "POST", "/admin/announce", {"title": HOSTILE_TITLE, "body": HOSTILE_BODY}
    )

    screen.wait_for_js(
        "[...document.querySelectorAll('#news-list .ann-title')]"
        f".some(el => el.textContent === {json.dumps(HOSTILE_TITLE)})",
        what="the hostile title as text",
    )
    assert screen.evaluate("window.__pwned ?? null") is None
    assert (
        screen.evaluate(
            "document.querySelectorAll('#news-list img, #news-list b,"
            " #news-list script, #news-list .ann-title *, #news-list .ann-body *')"
            ".length"
        )
        == 0
    )
    assert screen.evaluate(
        f"document.getElementById('news-list').textContent"
        f".includes({json.dumps(HOSTILE_BODY)})"
    )


def test_reload_push_reloads_the_page_and_reapplies_the_view(
    screen: WebviewAgent, school: StubServer
) -> None:
    """A reload push gives a fresh page that shows the school again."""
    mark_page(screen)

    school.admin("POST", "/admin/push", {"type": "reload"})

    screen.wait_for_js(
        "window.__e2eMark === undefined && document.getElementById('school')"
        f".textContent === {json.dumps(school_name(school))}",
        what="a fresh page with the school",
    )
    assert screen.evaluate("window.kiosk.alive().revision") is not None
    # A new page starts its long day list at the top and holds it there for
    # the default 8 s, rather than turning on its first tick.
    page = screen.evaluate(DAY_LIST_PAGE)
    assert page["overflowing"] and page["offset"] == 0, page
    assert screen.logged("push_reload")
    assert screen.logged("screen_reload")


def test_killed_web_process_is_replaced_and_the_school_shown_again(
    screen: WebviewAgent, school: StubServer
) -> None:
    """After the WebKit web process is killed a new page shows the school."""
    mark_page(screen)
    before = screen.web_processes()
    assert before

    for pid in before:
        os.kill(pid, signal.SIGKILL)

    screen.wait_for_js(
        "window.__e2eMark === undefined && document.getElementById('school')"
        f".textContent === {json.dumps(school_name(school))}",
        timeout_s=20,
        what="the school on a new page",
    )
    recreated = screen.logged("webview_recreated")
    assert [e["reason"] for e in recreated][:1] == ["crashed"]
    assert not set(before) & set(screen.web_processes())


def test_web_process_over_its_memory_limit_is_replaced(
    screen: WebviewAgent, school: StubServer
) -> None:
    """A page past ``webkit_memory_limit_mb`` (300 MB) is ended and replaced."""
    before = screen.web_processes()
    hog = "(() => { window.__hog = new Uint8Array(400 << 20).fill(1); return 0; })()"

    assert screen.evaluate(hog) == 0

    screen.wait_for(
        lambda: any(
            e["reason"] == "exceeded-memory-limit"
            for e in screen.logged("webview_recreated")
        ),
        timeout_s=45,
        what="the web process ended for its memory",
    )
    screen.wait_for_js(
        "window.__hog === undefined && document.getElementById('school')"
        f".textContent === {json.dumps(school_name(school))}",
        timeout_s=20,
        what="the school on a new page",
    )
    assert not set(before) & set(screen.web_processes())


def test_unpaired_agent_shows_how_to_pair(
    stub: StubServer, agents: list[WebviewAgent], tmp_path: Path
) -> None:
    """Without a token the screen shows the pairing notice and the device key."""
    agent = WebviewAgent(tmp_path / "state", stub.url, None).start()
    agents.append(agent)

    agent.wait_for_js("window.kiosk.alive().notice === 'unpaired'")

    assert agent.evaluate(NOTICE_SHOWN)
    assert "kiosk-agent pair" in agent.text("notice-text")
    assert agent.text("notice-hint-text")


def test_screen_bound_elsewhere_shows_the_bound_notice(
    stub: StubServer, agents: list[WebviewAgent], tmp_path: Path
) -> None:
    """A token already bound to another device key shows the screen-bound notice."""
    other = httpx.get(
        f"{stub.url}/api/display/status/{stub.token}/",
        params={"dk": str(uuid.uuid4())},
        timeout=10,
    )
    assert other.status_code == 200
    agent = WebviewAgent(tmp_path / "state", stub.url, stub.token).start()
    agents.append(agent)

    agent.wait_for_js("window.kiosk.alive().notice === 'screen_bound'")

    assert agent.evaluate(NOTICE_SHOWN)
    hint = (tmp_path / "state" / "device_key").read_text().strip()[:8]
    assert agent.text("notice-hint-text") == hint


def test_unknown_token_shows_the_rejected_notice(
    stub: StubServer, agents: list[WebviewAgent], tmp_path: Path
) -> None:
    """A token the server does not know shows the token-rejected notice."""
    agent = WebviewAgent(tmp_path / "state", stub.url, "0" * 64).start()
    agents.append(agent)

    agent.wait_for_js("window.kiosk.alive().notice === 'token_rejected'")

    assert agent.evaluate(NOTICE_SHOWN)
    assert "token" in agent.text("notice-text")


def test_sigterm_stops_the_real_command_cleanly_within_five_seconds(
    stub: StubServer, agents: list[WebviewAgent], tmp_path: Path
) -> None:
    """``kiosk-agent run --renderer webview`` exits 0 in 5 s on SIGTERM."""
    agent = WebviewAgent(tmp_path / "state", stub.url, stub.token, plain=True)
    agents.append(agent.start())
    agent.wait_for(lambda: agent.logged("snapshot_applied"), 30, "a snapshot")
    web = agent.web_processes()

    code, elapsed = agent.stop()

    assert code == 0
    assert elapsed < 5.0
    assert [e["exit_code"] for e in agent.logged("agent_stopped")] == [0]
    assert web
    assert not still_running(web, within_s=5.0 - elapsed)
