"""Tests for the systemd units, sysusers and tmpfiles files in systemd/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
KIOSK_UNIT = SYSTEMD_DIR / "kiosk-agent.service"
HEADLESS_UNIT = SYSTEMD_DIR / "kiosk-agent-headless.service"
USER_UNIT = SYSTEMD_DIR / "user" / "kiosk-agent.service"
BACKOFF_DROPIN = SYSTEMD_DIR / "kiosk-agent.service.d" / "restart-backoff.conf"
ALL_UNITS = [KIOSK_UNIT, HEADLESS_UNIT, USER_UNIT]
_EXEC_PATH = re.compile(r"^(Exec\w+=[-+@!:]*)(/\S+)(.*)$")

Directives = dict[tuple[str, str], list[str]]


def parse_unit(path: Path) -> Directives:
    """Every (section, key) of a unit file with its values in file order."""
    found: Directives = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.setdefault((section, key.strip()), []).append(value.strip())
    return found


def words(unit: Directives, section: str, key: str) -> set[str]:
    """The space-separated words of every value of a list-valued directive."""
    return {word for value in unit.get((section, key), []) for word in value.split()}


def with_stub_commands(unit: Path, folder: Path) -> Path:
    """A copy of the unit whose missing Exec commands point at stub scripts.

    ``systemd-analyze verify`` refuses commands that do not exist, and cage and
    the installed agent are not on a development machine.
    """
    stubs = folder / "stubs"
    lines = []
    for line in unit.read_text().splitlines():
        match = _EXEC_PATH.match(line)
        if match and not Path(match[2]).exists():
            stub = stubs / match[2].lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
            line = f"{match[1]}{stub}{match[3]}"
        lines.append(line)
    copy = folder / unit.name
    copy.write_text("\n".join(lines) + "\n")
    return copy


@pytest.mark.parametrize(
    "unit", ALL_UNITS, ids=lambda p: str(p.relative_to(SYSTEMD_DIR))
)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit without errors or warnings."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    copy = with_stub_commands(unit, tmp_path)
    runtime = tmp_path / "run"
    runtime.mkdir()
    scope = ["--user"] if unit == USER_UNIT else []

    result = subprocess.run(
        [tool, *scope, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize(
    "unit", ALL_UNITS, ids=lambda p: str(p.relative_to(SYSTEMD_DIR))
)
def test_unit_is_notify_type_with_watchdog(unit: Path) -> None:
    """Every unit waits for READY=1 and expects watchdog pings."""
    parsed = parse_unit(unit)

    assert parsed[("Service", "Type")] == ["notify"]
    assert parsed[("Service", "WatchdogSec")] == ["60"]


@pytest.mark.parametrize(
    "unit", ALL_UNITS, ids=lambda p: str(p.relative_to(SYSTEMD_DIR))
)
def test_unit_always_restarts(unit: Path) -> None:
    """Every unit restarts after any exit, with a pause and a start limit."""
    parsed = parse_unit(unit)

    assert parsed[("Service", "Restart")] == ["always"]
    assert ("Service", "RestartSec") in parsed
    assert ("Unit", "StartLimitIntervalSec") in parsed
    assert ("Unit", "StartLimitBurst") in parsed


@pytest.mark.parametrize("unit", [KIOSK_UNIT, HEADLESS_UNIT], ids=["kiosk", "headless"])
def test_unit_wants_but_does_not_require_network(unit: Path) -> None:
    """The network is wanted, but neither required nor waited for."""
    parsed = parse_unit(unit)

    assert "network-online.target" in words(parsed, "Unit", "Wants")
    for key in ("After", "Requires", "Requisite", "BindsTo", "PartOf"):
        assert "network-online.target" not in words(parsed, "Unit", key)


def test_kiosk_unit_runs_agent_inside_cage_on_tty1() -> None:
    """cage on tty1 is the main process and the agent its client."""
    parsed = parse_unit(KIOSK_UNIT)

    assert parsed[("Service", "ExecStart")] == [
        "/usr/bin/cage -d -s -- /opt/kiosk-agent/venv/bin/kiosk-agent run"
    ]
    assert parsed[("Service", "NotifyAccess")] == ["all"]
    assert parsed[("Service", "TTYPath")] == ["/dev/tty1"]
    assert parsed[("Service", "PAMName")] == ["login"]
    assert parsed[("Service", "User")] == ["kiosk"]
    assert "getty@tty1.service" in words(parsed, "Unit", "Conflicts")


def test_kiosk_unit_keeps_its_directories_and_logs_to_journal() -> None:
    """State, config and logs directories are managed; logs go to the journal."""
    parsed = parse_unit(KIOSK_UNIT)

    assert parsed[("Service", "StateDirectory")] == ["kiosk-agent"]
    assert parsed[("Service", "StateDirectoryMode")] == ["0700"]
    assert parsed[("Service", "ConfigurationDirectory")] == ["kiosk-agent"]
    assert parsed[("Service", "LogsDirectory")] == ["kiosk-agent"]
    assert parsed[("Service", "SyslogIdentifier")] == ["kiosk-agent"]
    assert "KIOSK_AGENT_LOG_FORMAT=journal" in parsed[("Service", "Environment")]


def test_kiosk_unit_is_hardened_but_keeps_gpu_and_jit() -> None:
    """Sandboxing is on, except what a WebKit page on the GPU cannot live with."""
    parsed = parse_unit(KIOSK_UNIT)

    for key, value in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
    ]:
        assert parsed[("Service", key)] == [value], key
    for key in ("MemoryDenyWriteExecute", "PrivateDevices", "ProtectClock"):
        assert ("Service", key) not in parsed, key


def test_backoff_keys_live_only_in_the_dropin() -> None:
    """RestartSteps is kept out of the main unit, which systemd 252 must accept."""
    main = parse_unit(KIOSK_UNIT)
    dropin = parse_unit(BACKOFF_DROPIN)

    assert ("Service", "RestartSteps") not in main
    assert ("Service", "RestartSteps") in dropin
    assert ("Service", "RestartMaxDelaySec") in dropin


def test_sysusers_creates_kiosk_with_device_groups() -> None:
    """The kiosk user is a system user in the display and input groups."""
    lines = [
        line.split()
        for line in (SYSTEMD_DIR / "kiosk-agent.sysusers").read_text().splitlines()
        if line and not line.startswith("#")
    ]

    assert lines[0][:2] == ["u", "kiosk"]
    assert {"video", "render", "input"} <= {f[2] for f in lines if f[0] == "m"}


def test_tmpfiles_makes_state_dir_private_to_kiosk() -> None:
    """The state directory is created 0700 and owned by kiosk."""
    text = (SYSTEMD_DIR / "kiosk-agent.tmpfiles").read_text()

    assert "d /var/lib/kiosk-agent 0700 kiosk kiosk -" in text.splitlines()
