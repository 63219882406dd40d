"""Runs the real ``kiosk-agent run`` in a subprocess and watches what it shows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 10.0


def terminate(
    proc: subprocess.Popen[bytes], timeout_s: float = 10.0
) -> tuple[int, float]:
    """SIGTERM, then SIGKILL after ``timeout_s``; the exit code and seconds taken."""
    started = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return code, time.monotonic() - started


def poll_until(
    predicate: Callable[[], Any],
    timeout_s: float,
    alive: Callable[[], bool],
    interval_s: float = 0.02,
) -> Any:
    """``predicate``'s first truthy value, or None once it times out or the
    process ends (so the caller can fail with that process's log)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if not alive():
            return None
        time.sleep(interval_s)
    return None


def read_json_log(path: Path) -> list[dict[str, Any]]:
    """An agent's JSON log, a record per line; other lines as ``raw`` records."""
    records = []
    for line in path.read_text("utf-8", "replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"event": "raw", "text": line})
    return records


def empty_config(directory: Path) -> Path:
    """An empty settings file, so no machine-wide config leaks into a test."""
    path = directory / "agent.toml"
    path.touch()
    return path


class AgentProcess:
    """One agent process with its own state directory and captured logs."""

    def __init__(
        self,
        state_dir: Path,
        server_url: str,
        token: str,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.server_url = server_url
        self.token = token
        self.env = env or {}
        self.args = args or []
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def screen(self) -> Path:
        return self.state_dir / "screen.html"

    def start(self) -> AgentProcess:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("KIOSK_AGENT_")
        }
        env.update(
            {
                "KIOSK_AGENT_CONFIG": str(empty_config(self.state_dir.parent)),
                "KIOSK_AGENT_LOG_FORMAT": "json",
                "KIOSK_AGENT_LOG_LEVEL": "debug",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        self.log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "run",
                "--server",
                self.server_url,
                "--token",
                self.token,
                "--state-dir",
                str(self.state_dir),
                "--renderer",
                "headless",
                *self.args,
            ],
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self, timeout_s: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the exit took."""
        assert self.proc is not None
        result = terminate(self.proc, timeout_s)
        self.log_file.close()
        return result

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def html(self) -> str:
        try:
            return self.screen.read_text("utf-8")
        except FileNotFoundError:
            return ""

    def status(self) -> dict[str, Any]:
        try:
            data = json.loads((self.state_dir / "status.json").read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def logs(self) -> list[dict[str, Any]]:
        return read_json_log(self.log_path)

    def raw_log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if e.get("event") == name]

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        what: str = "condition",
    ) -> Any:
        """Poll ``predicate`` until truthy; fail with the agent's log if it never is."""
        value = poll_until(predicate, timeout_s, self.alive)
        if value:
            return value
        tail = "\n".join(self.raw_log().splitlines()[-40:])
        raise AssertionError(f"timed out waiting for {what}; agent log tail:\n{tail}")
