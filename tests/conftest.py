"""Shared fixtures: the stub server on loopback and the real agent as a process."""

from __future__ import annotations

pytest_plugins = ["server_stub.pytest_plugin"]
