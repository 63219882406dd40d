"""Push-to-screen latency of the headless agent against the stub, on loopback.

Run by hand (not part of the test suite):

    .venv/bin/python bench/headless_push_latency.py --edits 100

It starts the stub server in this process and the real agent as a subprocess
with the headless renderer, makes edits through the stub's admin API, and
times each from the admin call to the new text being in screen.html. It also
times the first screen from process start with a cached snapshot and with the
server unreachable. Figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server_stub.state import StubState
from server_stub.testing import StubServer

POLL_S = 0.002


def start_agent(
    state_dir: Path, url: str, token: str, log: Path
) -> subprocess.Popen[bytes]:
    config = state_dir.parent / "agent.toml"
    config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_AGENT_")}
    env.update(
        {
            "KIOSK_AGENT_CONFIG": str(config),
            "KIOSK_AGENT_LOG_FORMAT": "json",
            "KIOSK_AGENT_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
        }
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--server",
            url,
            "--token",
            token,
            "--state-dir",
            str(state_dir),
            "--renderer",
            "headless",
        ],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for_text(path: Path, text: str, timeout_s: float = 10.0) -> float:
    """Monotonic time at which ``text`` first appears in ``path``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if text in path.read_text("utf-8"):
                return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(POLL_S)
    raise TimeoutError(f"{text!r} never appeared in {path}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument(
        "--spacing-s",
        type=float,
        default=1.6,
        help="time between edits; the agent fetches at most 1/s and 40/min",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    state_dir = work / "state"
    log = work / "agent.log"
    state = StubState(rate_limit=True, push_drop_window_s=0.0)
    with StubServer(state=state) as stub:
        agent = start_agent(state_dir, stub.url, stub.token, log)
        screen = state_dir / "screen.html"
        school = str(state.school.data["settings"]["name"])
        try:
            wait_for_text(screen, school, 15)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = json.loads((state_dir / "status.json").read_text())
                if status.get("push") == "connected":
                    break
                time.sleep(0.05)
            latencies = []
            for n in range(args.edits):
                title = f"Bench edit {n:04d}"
                started = time.monotonic()
                stub.admin("POST", "/admin/announce", {"id": 77, "title": title})
                latencies.append((wait_for_text(screen, title) - started) * 1000)
                time.sleep(args.spacing_s)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)

    # Cold start with the cache and no server: time to the first screen.
    screen.unlink()
    started = time.monotonic()
    offline = start_agent(state_dir, "http://127.0.0.1:9", "ab" * 32, log)
    try:
        first_paint_ms = (wait_for_text(screen, school, 10) - started) * 1000
    finally:
        offline.send_signal(signal.SIGTERM)
        offline.wait(10)

    sources = [
        json.loads(line).get("source")
        for line in log.read_text().splitlines()
        if '"snapshot_applied"' in line
    ]
    print(
        json.dumps(
            {
                "edits": len(latencies),
                "push_to_screen_ms": {
                    "median": round(statistics.median(latencies), 1),
                    "p90": round(percentile(latencies, 0.90), 1),
                    "p99": round(percentile(latencies, 0.99), 1),
                    "max": round(max(latencies), 1),
                },
                "applied_by_push": sources.count("push"),
                "applied_by_poll": sources.count("poll"),
                "first_screen_from_cache_offline_ms": round(first_paint_ms, 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
