"""The real agent process against the real stub server, over loopback sockets."""

from __future__ import annotations

import html
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_stub.testing import StubServer
from tests.integration.agentproc import AgentProcess, empty_config
from tests.integration.conftest import QUICK_POLL, AgentFactory


def applied(agent: AgentProcess, revision: int) -> dict[str, Any] | None:
    """The snapshot_applied log event for ``revision``, if it happened."""
    for event in agent.events("snapshot_applied"):
        if event.get("revision") == revision:
            return event
    return None


def school_name(stub: StubServer) -> str:
    return str(stub.admin("GET", "/admin/state").get("school_name", ""))


def wait_connected(agent: AgentProcess) -> None:
    agent.wait_for(
        lambda: agent.status().get("push") == "connected", what="push connected"
    )


def wait_first_render(agent: AgentProcess) -> int:
    """Wait for the first applied snapshot; returns its revision."""
    status = agent.wait_for(
        lambda: agent.status() if agent.status().get("rendered_revision") else None,
        what="first render",
    )
    return int(status["rendered_revision"])


def announce(stub: StubServer, title: str) -> int:
    return int(
        stub.admin("POST", "/admin/announce", {"title": title, "body": "x"})["revision"]
    )


def test_first_render_then_pushed_edit_arrives_by_push(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """An edit reaches screen.html through the WebSocket, not the 30 s poll."""
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)

    revision = announce(stub, "Pushed edit arrives")

    agent.wait_for(
        lambda: "Pushed edit arrives" in agent.html(),
        timeout_s=5,
        what="edit on screen",
    )
    event = agent.wait_for(lambda: applied(agent, revision), what="applied event")
    assert event["source"] == "push"
    assert isinstance(event["latency_ms"], int)
    assert agent.status()["revision"] == revision


def test_legacy_invalidate_message_is_understood(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """Older servers' {"type": "invalidate"} triggers the same fetch."""
    stub.admin("POST", "/admin/faults", {"legacy_push": True})
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)

    revision = announce(stub, "Legacy push works")

    event = agent.wait_for(
        lambda: applied(agent, revision), timeout_s=5, what="legacy push applied"
    )
    assert event["source"] == "push"


def test_polling_alone_picks_up_changes_when_the_handshake_is_refused(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """A refused WebSocket is a rejection; polling still carries every edit."""
    stub.admin("POST", "/admin/faults", {"ws_refuse": True})
    agent = agent_factory(env=QUICK_POLL)
    wait_first_render(agent)
    agent.wait_for(
        lambda: agent.status().get("push") == "rejected", what="push rejected"
    )

    revision = announce(stub, "Seen by polling")

    event = agent.wait_for(lambda: applied(agent, revision), what="applied by poll")
    assert event["source"] == "poll"
    assert "Seen by polling" in agent.html()


def test_silent_socket_is_dropped_and_polling_carries_on(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """A socket that never speaks is declared dead; edits still arrive by poll."""
    stub.admin("POST", "/admin/faults", {"ws_silent": True})
    agent = agent_factory(
        env={
            **QUICK_POLL,
            "KIOSK_AGENT_PUSH_DEAD_AFTER_S": "0.6",
            "KIOSK_AGENT_PUSH_PING_INTERVAL_S": "0.2",
        }
    )
    wait_first_render(agent)
    agent.wait_for(lambda: agent.events("push_silent"), what="silence detected")

    revision = announce(stub, "Silent socket fallback")

    assert (
        agent.wait_for(lambda: applied(agent, revision), what="applied by poll")[
            "source"
        ]
        == "poll"
    )


def test_push_gives_up_then_rearms_after_the_network_recovers(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """Ten failed connects stop push; a poll success after a failure re-arms it."""
    stub.admin("POST", "/admin/faults", {"ws_drop": "always"})
    agent = agent_factory(env={**QUICK_POLL, "KIOSK_AGENT_PUSH_BACKOFF_MAX_S": "0.05"})
    wait_first_render(agent)
    agent.wait_for(
        lambda: agent.status().get("push") == "given_up", timeout_s=20, what="given up"
    )

    stub.admin("DELETE", "/admin/faults")
    stub.admin("POST", "/admin/faults", {"http_status": 503})
    agent.wait_for(lambda: agent.status().get("offline_since"), what="offline")
    stub.admin("DELETE", "/admin/faults")

    wait_connected(agent)
    assert agent.events("server_recovered")


def test_screen_bound_to_another_device_is_shown_and_the_agent_stays_up(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """screen_bound replaces the schedule with a notice quoting our key hint."""
    httpx.get(
        f"{stub.url}/api/display/status/{stub.token}/",
        params={"dk": "someone-elses-device-key-0001"},
        timeout=5,
    )
    agent = agent_factory()

    def bound_status() -> dict[str, Any] | None:
        # The notice reaches status.json first, then the error that caused it.
        status = agent.status()
        reported = status.get("notice") == "screen_bound" and status.get("last_error")
        return status if reported else None

    status = agent.wait_for(bound_status, what="screen_bound notice and error")
    hint = (agent.state_dir / "device_key").read_text().strip()[:8]
    assert hint in agent.html()
    assert status["last_error"]["code"] == "screen_bound"
    assert agent.alive()


def test_placeholders_never_reach_the_screen(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """BUILDING answers are retried, not shown; the real snapshot follows."""
    agent = agent_factory(env=QUICK_POLL)
    first = wait_first_render(agent)
    stub.admin("POST", "/admin/faults", {"building": True})

    revision = announce(stub, "After the build")
    agent.wait_for(lambda: agent.events("snapshot_not_ready"), what="placeholder seen")

    assert agent.status()["rendered_revision"] == first
    assert "After the build" not in agent.html()
    stub.admin("DELETE", "/admin/faults")
    agent.wait_for(
        lambda: applied(agent, revision), timeout_s=15, what="real snapshot applied"
    )
    assert "After the build" in agent.html()


def test_captive_portal_keeps_the_schedule_and_marks_offline(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """A login page answering instead of the server is an outage, not data."""
    agent = agent_factory(env=QUICK_POLL)
    first = wait_first_render(agent)
    before = agent.html()
    stub.admin("POST", "/admin/faults", {"captive_portal": True})
    announce(stub, "Hidden by the portal")

    agent.wait_for(lambda: agent.status().get("offline_since"), what="offline")

    assert agent.status()["rendered_revision"] == first
    assert "Wi-Fi" not in agent.html() and "login" not in agent.html().lower()
    assert school_name(stub) in agent.html() or school_name(stub) in before


def test_cached_school_is_shown_when_the_server_is_down(
    agent_factory: AgentFactory, stub: StubServer, tmp_path: Path
) -> None:
    """A restart with the server unreachable shows the saved schedule at once."""
    state = tmp_path / "cached"
    first = agent_factory(state_dir=state)
    wait_first_render(first)
    key = (state / "device_key").read_text()
    first.stop()
    (state / "screen.html").unlink()

    second = agent_factory(state_dir=state, server_url="http://127.0.0.1:9")

    second.wait_for(lambda: second.screen.exists(), timeout_s=2, what="cached screen")
    assert (
        html.escape(school_name(stub)) in second.html()
        or school_name(stub) in second.html()
    )
    assert (state / "device_key").read_text() == key
    second.wait_for(lambda: second.status().get("offline_since"), what="offline marked")


def test_sigterm_exits_cleanly_within_five_seconds(agent_factory: AgentFactory) -> None:
    """SIGTERM is a clean stop: exit code 0, well inside systemd's patience."""
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)

    code, seconds = agent.stop()

    assert code == 0
    assert seconds < 5
    assert agent.events("agent_stopping")
    assert [e["exit_code"] for e in agent.events("agent_stopped")] == [0]


def test_hostile_announcement_text_is_escaped(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """Markup in snapshot text is shown as text, never parsed."""
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)
    hostile = '<img src=x onerror="alert(1)"></script><script>alert(2)</script>'

    revision = announce(stub, hostile)
    agent.wait_for(lambda: applied(agent, revision), what="hostile edit applied")

    page = agent.html()
    assert "<img src=x" not in page
    assert "<script>alert(2)" not in page
    assert html.escape(hostile, quote=False)[:20] in page or "&lt;img" in page


def test_token_is_never_printed_whole(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """Logs and status.json carry only a token hint."""
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)
    announce(stub, "Token check")
    agent.stop()

    assert stub.token not in agent.raw_log()
    assert stub.token not in (agent.state_dir / "status.json").read_text()
    assert stub.token[:6] in agent.raw_log()


def test_ws_enabled_off_closes_push_and_on_reopens_it(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """The server's ws_enabled switch is followed at run time."""
    agent = agent_factory(env=QUICK_POLL)
    wait_first_render(agent)
    wait_connected(agent)

    stub.admin("POST", "/admin/ws_enabled", {"enabled": False})
    agent.wait_for(
        lambda: agent.status().get("push") == "disabled", what="push disabled"
    )
    stub.admin("POST", "/admin/ws_enabled", {"enabled": True})

    wait_connected(agent)


def test_reload_push_refetches_and_reloads(
    agent_factory: AgentFactory, stub: StubServer
) -> None:
    """{"type": "reload"} refetches the snapshot and reloads the screen."""
    agent = agent_factory()
    wait_first_render(agent)
    wait_connected(agent)

    stub.admin("POST", "/admin/push", {"type": "reload"})

    agent.wait_for(lambda: agent.events("screen_reload"), timeout_s=5, what="reload")


def test_restart_keeps_the_device_key_and_the_binding(
    agent_factory: AgentFactory, stub: StubServer, tmp_path: Path
) -> None:
    """The same state dir keeps one key, so the bound screen accepts it again."""
    state = tmp_path / "restart"
    first = agent_factory(state_dir=state)
    wait_first_render(first)
    key = (state / "device_key").read_text()
    first.stop()

    second = agent_factory(state_dir=state)
    wait_connected(second)

    assert (state / "device_key").read_text() == key
    assert second.status().get("notice") is None
    bindings = stub.admin("GET", "/admin/state")["bindings"]
    assert key.strip() in json.dumps(bindings)


def test_status_command_summarises_the_running_agent(
    agent_factory: AgentFactory,
) -> None:
    """kiosk-agent status reads status.json and prints a human summary."""
    agent = agent_factory()
    revision = wait_first_render(agent)

    result = subprocess.run(
        [sys.executable, "-m", "agent", "status", "--state-dir", str(agent.state_dir)],
        capture_output=True,
        text=True,
        timeout=20,
        env={
            "KIOSK_AGENT_CONFIG": str(empty_config(agent.state_dir.parent)),
            "PATH": "/usr/bin:/bin",
        },
    )

    assert result.returncode == 0, result.stderr
    assert "running" in result.stdout
    assert f"revision {revision}" in result.stdout


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "has not run"), (b'{"state": "runn', "cannot be read")],
    ids=["missing", "damaged"],
)
def test_status_command_tells_a_missing_file_from_a_damaged_one(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    """Without a usable status.json, status fails and says which case it is."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    if content is not None:
        (state_dir / "status.json").write_bytes(content)

    result = subprocess.run(
        [sys.executable, "-m", "agent", "status", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=20,
        env={
            "KIOSK_AGENT_CONFIG": str(empty_config(tmp_path)),
            "PATH": "/usr/bin:/bin",
        },
    )

    assert result.returncode != 0
    assert says in result.stderr


def test_systemd_hears_ready_status_and_watchdog(
    agent_factory: AgentFactory, tmp_path: Path
) -> None:
    """READY after the first screen, readable STATUS lines, WATCHDOG pings."""
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(10)
    agent = agent_factory(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            messages.append(listener.recv(4096).decode())
            joined = "\n".join(messages)
            if "WATCHDOG=1" in joined and "showing revision" in joined:
                break
    finally:
        listener.close()
    agent.stop()

    joined = "\n".join(messages)
    assert messages[0].startswith("READY=1") or "READY=1" in messages[0]
    assert "WATCHDOG=1" in joined
    assert "STATUS=showing revision" in joined


def test_bad_config_is_logged_and_the_screen_still_runs(
    agent_factory: AgentFactory, tmp_path: Path
) -> None:
    """A typo in agent.toml falls back to defaults instead of a black screen."""
    bad = tmp_path / "bad.toml"
    bad.write_text('request_timeout_s = "soon"\nbrightness = 3\n')

    agent = agent_factory(env={"KIOSK_AGENT_CONFIG": str(bad)})

    wait_first_render(agent)
    problems = [e["detail"] for e in agent.events("config_invalid")]
    assert any("request_timeout_s" in p for p in problems)
    assert any("brightness" in p for p in problems)
    assert agent.alive()
