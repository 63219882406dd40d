"""Tests for the shell scripts: the installer and the image stage."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "image" / "install.sh"
SCRIPTS = [
    INSTALLER,
    REPO / "image" / "pi-gen" / "prepare.sh",
    REPO / "image" / "pi-gen" / "stage-kiosk" / "prerun.sh",
    REPO / "image" / "pi-gen" / "stage-kiosk" / "00-install-agent" / "00-run.sh",
    REPO / "systemd" / "kiosk-agent-firstboot",
]
SHELL_SNIPPETS = [REPO / "systemd" / "labwc-autostart"]


@pytest.mark.parametrize("script", SCRIPTS + SHELL_SNIPPETS, ids=lambda p: p.name)
def test_script_is_shellcheck_clean(script: Path) -> None:
    """shellcheck finds nothing to complain about."""
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")

    result = subprocess.run(
        [tool, "-x", str(script)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_executable(script: Path) -> None:
    """Every script can be run directly (pi-gen skips run.sh files that cannot)."""
    assert script.stat().st_mode & 0o111


def test_installer_help_exits_zero_and_lists_options() -> None:
    """--help prints usage with every option and changes nothing."""
    result = subprocess.run(
        ["bash", str(INSTALLER), "--help"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )

    assert result.returncode == 0
    for option in ("--source", "--server", "--no-enable", "--uninstall", "--purge"):
        assert option in result.stdout


def test_installer_rejects_unknown_option() -> None:
    """An unknown option stops the installer before it touches anything."""
    result = subprocess.run(
        ["bash", str(INSTALLER), "--frobnicate"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )

    assert result.returncode != 0
    assert "==> error: unknown option '--frobnicate'" in result.stderr


def test_installer_rejects_purge_without_uninstall() -> None:
    """--purge alone is refused, so state is never removed by accident."""
    result = subprocess.run(
        ["bash", str(INSTALLER), "--purge"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )

    assert result.returncode != 0
    assert "--purge only goes with --uninstall" in result.stderr
