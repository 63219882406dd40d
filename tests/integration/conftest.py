"""Fixtures that run the real agent process against the real stub on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server_stub.testing import StubServer
from tests.integration.agentproc import AgentProcess

# Fast enough that polling-only paths finish in seconds, slow enough that a
# change seen within a second of an edit can only have come by push.
QUICK_POLL = {"KIOSK_AGENT_POLL_MIN_S": "0.5", "KIOSK_AGENT_POLL_MAX_S": "1"}
SLOW_POLL = {"KIOSK_AGENT_POLL_MIN_S": "30", "KIOSK_AGENT_POLL_MAX_S": "45"}

AgentFactory = Callable[..., AgentProcess]


@pytest.fixture
def agent_factory(tmp_path: Path, stub: StubServer) -> Iterator[AgentFactory]:
    """Start agents (stopped at teardown); each gets its own state dir by default."""
    started: list[AgentProcess] = []

    def start(
        *,
        env: dict[str, str] | None = None,
        state_dir: Path | None = None,
        server_url: str | None = None,
        token: str | None = None,
        args: list[str] | None = None,
    ) -> AgentProcess:
        agent = AgentProcess(
            state_dir or tmp_path / f"state{len(started)}",
            server_url or stub.url,
            token or stub.token,
            env={**SLOW_POLL, **(env or {})},
            args=args,
        )
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        if agent.alive():
            agent.stop()
