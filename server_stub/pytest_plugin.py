"""A ``stub`` fixture: the stub server on loopback, fast and forgiving for tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server_stub.state import StubState
from server_stub.testing import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A fresh stub per test: no rate limit and no push drop window."""
    state = StubState(rate_limit=False, push_drop_window_s=0.0, heartbeat_s=20.0)
    with StubServer(state=state) as server:
        yield server
