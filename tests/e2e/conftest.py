"""Fixtures for the real-webview tests: each scenario runs in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PAGE = Path(__file__).with_name("page")
SCENARIO_TIMEOUT_S = 60.0


def _gui_unavailable() -> str | None:
    if not os.environ.get("DISPLAY"):
        return "DISPLAY is not set (run under xvfb-run)"
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        gi.require_version("WebKit2", "4.1")
        from gi.repository import WebKit2  # noqa: F401
    except (ImportError, ValueError) as exc:
        return f"GTK WebKit2 4.1 cannot be imported: {exc}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _gui_unavailable()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Outcome:
    """What a driver run printed and how it ended."""

    returncode: int
    events: list[dict[str, Any]]
    logs: list[dict[str, Any]] = field(default_factory=list)

    def first(self, event: str) -> dict[str, Any]:
        """The first observation named ``event``; fails the test if missing."""
        for item in self.events:
            if item["event"] == event:
                return item
        raise AssertionError(f"no {event!r} in {self.events} (logs: {self.logs})")

    def all(self, event: str) -> list[dict[str, Any]]:
        """Every observation named ``event``."""
        return [item for item in self.events if item["event"] == event]


def _parse(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def driver_command(scenario: str, page: Path = FIXTURE_PAGE) -> list[str]:
    """The command line that runs one driver scenario."""
    return [sys.executable, "-m", "tests.e2e.driver", scenario, "--page", str(page)]


@pytest.fixture
def run_scenario() -> Callable[..., Outcome]:
    """Run a driver scenario to completion and parse its output."""

    def run(scenario: str, page: Path = FIXTURE_PAGE) -> Outcome:
        done = subprocess.run(
            driver_command(scenario, page),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
            check=False,
        )
        return Outcome(done.returncode, _parse(done.stdout), _parse(done.stderr))

    return run


@pytest.fixture
def start_scenario() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start a driver scenario in the background; killed at teardown if alive."""
    started: list[subprocess.Popen[str]] = []

    def start(scenario: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            driver_command(scenario),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
