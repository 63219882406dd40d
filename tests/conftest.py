"""Shared fixtures: the stub server on loopback, and a clean environment."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["server_stub.pytest_plugin"]


@pytest.fixture(autouse=True)
def _no_agent_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings a developer or CI exported must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("KIOSK_AGENT_"):
            monkeypatch.delenv(name)
