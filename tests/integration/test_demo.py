"""The README's first command: the demo runs, edits arrive by push, it stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_shows_edits_arriving_by_push(tmp_path: Path) -> None:
    """kiosk-agent demo edits the sample school and the agent applies it by push."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_AGENT_")}
    env.pop("DISPLAY", None)
    env["KIOSK_AGENT_CONFIG"] = str(tmp_path / "agent.toml")
    (tmp_path / "agent.toml").touch()

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "demo",
            "--duration",
            "9",
            "--edit-every",
            "3.5",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "edited the school" in result.stdout
    applied = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and '"snapshot_applied"' in line
    ]
    assert any(event.get("source") == "push" for event in applied)
    assert (tmp_path / "state" / "screen.html").exists()
