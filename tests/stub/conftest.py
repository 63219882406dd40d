"""Fixtures for the stub server tests: an HTTP client and stubs with options."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from server_stub.state import StubState
from server_stub.testing import StubServer

StubFactory = Callable[..., StubServer]


@pytest.fixture
def http(stub: StubServer) -> Iterator[httpx.Client]:
    """A client for the default ``stub`` fixture."""
    with httpx.Client(base_url=stub.url, timeout=5) as client:
        yield client


@pytest.fixture
async def ahttp(stub: StubServer) -> AsyncIterator[httpx.AsyncClient]:
    """An async client for the default ``stub`` fixture, for WebSocket tests."""
    async with httpx.AsyncClient(base_url=stub.url, timeout=5) as client:
        yield client


@pytest.fixture
def make_stub() -> Iterator[StubFactory]:
    """Start stubs whose StubState takes the given options; stopped at teardown."""
    started: list[StubServer] = []

    def start(**options: Any) -> StubServer:
        server = StubServer(state=StubState(**options)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
