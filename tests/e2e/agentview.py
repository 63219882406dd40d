"""Starts the real agent with the webview in a subprocess and looks into its page.

``WebviewAgent`` runs ``tests.e2e.agentdriver`` (the command line's ``run``
plus a request channel) or, with ``plain=True``, ``python -m agent run`` itself.
Used by the e2e tests, ``bench/screenshots.py`` and the webview benchmark.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.agentproc import poll_until, read_json_log, terminate

ROOT = Path(__file__).resolve().parents[2]
REQUEST_TIMEOUT_S = 20.0
START_TIMEOUT_S = 30.0


class AgentGone(AssertionError):
    """The agent process ended while something was expected of it."""


class WebviewAgent:
    """One agent process with its own state directory; stop it with ``stop()``."""

    def __init__(
        self,
        state_dir: Path,
        server_url: str | None,
        token: str | None,
        *,
        plain: bool = False,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.server_url = server_url
        self.token = token
        self.plain = plain
        self.args = args or []
        self.env = env or {}
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_ms = 0.0
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._write = threading.Lock()

    def command(self) -> list[str]:
        """The command line this agent runs."""
        module = ["agent", "run"] if self.plain else ["tests.e2e.agentdriver"]
        options = ["--state-dir", str(self.state_dir), "--renderer", "webview"]
        if self.server_url is not None:
            options += ["--server", self.server_url]
        if self.token is not None:
            options += ["--token", self.token]
        return [sys.executable, "-m", *module, *options, *self.args]

    def start(self) -> WebviewAgent:
        """Start the process; returns at once (see ``first_paint``)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir.parent / "agent.toml"
        config.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_AGENT_")}
        env.update(
            {
                "KIOSK_AGENT_CONFIG": str(config),
                "KIOSK_AGENT_LOG_FORMAT": "json",
                "KIOSK_AGENT_LOG_LEVEL": "info",
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        self._log_file = self.log_path.open("ab")
        self.started_ms = time.time() * 1000
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
        )
        threading.Thread(target=self._read, name="agent-stdout", daemon=True).start()
        return self

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # -- the page ---------------------------------------------------------------

    def request(self, timeout_s: float = REQUEST_TIMEOUT_S, **body: Any) -> Any:
        """Send one request to the driver and return its value; raises on error."""
        assert self.proc is not None and self.proc.stdin is not None
        ident = next(self._ids)
        line = json.dumps({"id": ident, **body}) + "\n"
        with self._write:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        with self._changed:
            ready = self._changed.wait_for(
                lambda: ident in self._answers or not self.alive(), timeout_s
            )
            answer = self._answers.pop(ident, None)
        if answer is None:
            what = "ended" if ready else f"did not answer in {timeout_s:g} s"
            raise AgentGone(f"the agent {what}; log tail:\n{self.log_tail()}")
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer.get("value")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JS expression in the page."""
        return self.request(eval=expression)

    def text(self, element_id: str) -> Any:
        """An element's textContent, or None when it is missing."""
        return self.evaluate(
            f"document.getElementById({json.dumps(element_id)})?.textContent ?? null"
        )

    def wait_for_js(
        self, expression: str, timeout_s: float = 15.0, what: str = ""
    ) -> Any:
        """Poll a JS expression until its value is truthy; returns that value."""

        def probe() -> Any:
            try:
                return self.evaluate(expression)
            except RuntimeError:
                return None

        return self.wait_for(probe, timeout_s, what or expression)

    def wait_for(
        self, predicate: Callable[[], Any], timeout_s: float = 15.0, what: str = ""
    ) -> Any:
        """Poll ``predicate`` until truthy; fail with the log tail if it never is."""
        value = poll_until(predicate, timeout_s, self.alive, interval_s=0.05)
        if value:
            return value
        raise AssertionError(
            f"timed out waiting for {what or 'condition'}; log tail:\n{self.log_tail()}"
        )

    def first_paint(self, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
        """The driver's first_paint event (what was painted and when)."""

        def seen() -> dict[str, Any] | None:
            found = [e for e in self.events if e.get("event") == "first_paint"]
            return found[0] if found else None

        event: dict[str, Any] = self.wait_for(seen, timeout_s, "the first paint")
        return event

    def capture(self, path: Path) -> list[int]:
        """Save the whole X screen as PNG; returns its size."""
        size: list[int] = self.request(capture=str(path))
        return size

    # -- logs and processes ------------------------------------------------------

    def logs(self) -> list[dict[str, Any]]:
        """The agent's log as parsed JSON lines (other lines as ``raw``)."""
        return read_json_log(self.log_path)

    def logged(self, event: str) -> list[dict[str, Any]]:
        """Every log record named ``event``."""
        return [e for e in self.logs() if e.get("event") == event]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def web_processes(self) -> list[int]:
        """PIDs of the WebKit web processes below the agent."""
        return [
            pid
            for pid in descendants(self.pid)
            if _comm(pid).startswith("WebKitWebProces")
        ]

    def stop(self, timeout_s: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the exit took."""
        assert self.proc is not None
        code, elapsed = terminate(self.proc, timeout_s)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._log_file.close()
        return code, elapsed

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._changed:
                if "id" in message:
                    self._answers[message["id"]] = message
                else:
                    self.events.append(message)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (not ``root`` itself)."""
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def still_running(pids: list[int], within_s: float = 0.0) -> list[int]:
    """Those of ``pids`` still running after up to ``within_s`` (zombies count
    as ended).

    WebKit's helpers end by themselves once the UI process's connection
    drops, a moment after it exits, so callers give them a short while.
    """
    deadline = time.monotonic() + within_s
    while True:
        alive = []
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[-1].split()[0] != "Z":
                alive.append(pid)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def pss_kib(root: int) -> dict[str, Any]:
    """PSS and RSS (KiB) summed over ``root`` and every process below it.

    Also the anonymous, file-backed and shared-memory parts of the PSS, and
    ``by_process``: each process's PSS under its command name.
    """
    parts = {"pss_anon_kib": "Pss_Anon", "pss_file_kib": "Pss_File"}
    parts["pss_shmem_kib"] = "Pss_Shmem"
    totals: dict[str, Any] = {"pss_kib": 0, "rss_kib": 0, **dict.fromkeys(parts, 0)}
    totals["by_process"] = {}
    for pid in [root, *descendants(root)]:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {ln.split(":")[0]: ln.split()[1] for ln in lines[1:] if ":" in ln}
        totals["pss_kib"] += int(fields.get("Pss", 0))
        totals["rss_kib"] += int(fields.get("Rss", 0))
        for key, field in parts.items():
            totals[key] += int(fields.get(field, 0))
        name = _comm(pid) or str(pid)
        totals["by_process"][name] = totals["by_process"].get(name, 0) + int(
            fields.get("Pss", 0)
        )
    return totals


def cpu_seconds(root: int) -> float:
    """CPU time (user plus system) used so far by ``root`` and its processes."""
    ticks = 0
    for pid in [root, *descendants(root)]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which may itself hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
