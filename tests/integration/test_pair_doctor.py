"""pair and doctor against the real stub: each form, each failure, in one line."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server_stub.testing import StubServer
from tests.integration.agentproc import empty_config


def kiosk(
    *args: str, state_dir: Path, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_AGENT_")}
    env["KIOSK_AGENT_CONFIG"] = str(empty_config(state_dir.parent))
    env.pop("DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("form", ["token", "query", "short_code", "short_code_query"])
def test_pair_accepts_each_reference_form(
    stub: StubServer, tmp_path: Path, form: str
) -> None:
    """A bare token, ?token=, /s/CODE/ and ?token=CODE all pair the screen."""
    reference = {
        "token": stub.token,
        "query": f"{stub.url}/?token={stub.token}",
        "short_code": f"{stub.url}/s/{stub.short_code}/",
        "short_code_query": f"{stub.url}/?token={stub.short_code}",
    }[form]
    extra = ["--server", stub.url] if form == "token" else []

    result = kiosk("pair", reference, *extra, state_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Paired")
    token_file = tmp_path / "token"
    assert token_file.read_text().strip() == stub.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stub.token not in result.stdout


def test_pair_with_unknown_short_code_says_so(stub: StubServer, tmp_path: Path) -> None:
    """An unknown short code is reported, and nothing is stored."""
    result = kiosk("pair", f"{stub.url}/s/ZZZZZZ/", state_dir=tmp_path)

    assert result.returncode == 1
    assert "does not know the short code ZZZZZZ" in result.stdout
    assert not (tmp_path / "token").exists()


def test_pair_rejected_token(stub: StubServer, tmp_path: Path) -> None:
    """A well-formed token the server does not know is rejected plainly."""
    result = kiosk("pair", "0" * 64, "--server", stub.url, state_dir=tmp_path)

    assert result.returncode == 1
    assert "rejected the token" in result.stdout


def test_pair_bound_screen_names_the_key_hint(stub: StubServer, tmp_path: Path) -> None:
    """Pairing a screen bound elsewhere explains the unbind and gives our key."""
    httpx.get(
        f"{stub.url}/api/display/status/{stub.token}/",
        params={"dk": "another-device-key-000001"},
        timeout=5,
    )

    result = kiosk("pair", stub.token, "--server", stub.url, state_dir=tmp_path)

    key = (tmp_path / "device_key").read_text().strip()
    assert result.returncode == 1
    assert "bound to another device" in result.stdout and key[:8] in result.stdout


def test_pair_unreachable_server_names_the_cause(tmp_path: Path) -> None:
    """A refused connection is named as such."""
    url = f"http://127.0.0.1:{free_port()}"

    result = kiosk("pair", "ab" * 32, "--server", url, state_dir=tmp_path)

    assert result.returncode == 1
    assert "connection refused" in result.stdout


def test_unpair_keeps_the_device_key(stub: StubServer, tmp_path: Path) -> None:
    """unpair removes the token only."""
    kiosk("pair", stub.token, "--server", stub.url, state_dir=tmp_path)
    key = (tmp_path / "device_key").read_text()

    result = kiosk("unpair", state_dir=tmp_path)

    assert result.returncode == 0 and "Unpaired" in result.stdout
    assert not (tmp_path / "token").exists()
    assert (tmp_path / "device_key").read_text() == key


def _doctor_line(result: subprocess.CompletedProcess[str], name: str) -> str:
    for line in result.stdout.splitlines():
        if line[6:].startswith(f"{name}:"):
            return line
    raise AssertionError(f"no {name} line in:\n{result.stdout}")


def test_doctor_passes_the_network_checks_for_a_paired_screen(
    stub: StubServer, tmp_path: Path
) -> None:
    """A paired screen against a healthy server passes DNS to WebSocket."""
    stub.admin("POST", "/admin/clock", {"real": True})
    kiosk("pair", stub.token, "--server", stub.url, state_dir=tmp_path)

    result = kiosk("doctor", state_dir=tmp_path)

    for name in (
        "config",
        "token",
        "device key",
        "state dir",
        "dns",
        "tcp",
        "tls",
        "server",
        "websocket",
    ):
        assert _doctor_line(result, name).startswith("OK"), result.stdout


def test_doctor_names_a_stopped_server(stub: StubServer, tmp_path: Path) -> None:
    """With nothing listening, the tcp check fails and says so in one line."""
    url = f"http://127.0.0.1:{free_port()}"
    kiosk("pair", "ab" * 32, "--server", url, "--no-check", state_dir=tmp_path)

    result = kiosk("doctor", state_dir=tmp_path)

    assert result.returncode == 1
    assert _doctor_line(result, "tcp").startswith("FAIL")
    assert "Connect call failed" in result.stdout or "refused" in result.stdout


def test_doctor_names_a_wrong_token(stub: StubServer, tmp_path: Path) -> None:
    """An unknown token fails the server check with the reason."""
    kiosk("pair", "0" * 64, "--server", stub.url, "--no-check", state_dir=tmp_path)

    result = kiosk("doctor", state_dir=tmp_path)

    assert result.returncode == 1
    assert _doctor_line(result, "server").startswith("FAIL")
    assert "rejects the token" in _doctor_line(result, "server")


def test_doctor_names_a_bound_screen(stub: StubServer, tmp_path: Path) -> None:
    """A screen bound to another device fails the server check and gives our key."""
    httpx.get(
        f"{stub.url}/api/display/status/{stub.token}/",
        params={"dk": "another-device-key-000002"},
        timeout=5,
    )
    kiosk("pair", stub.token, "--server", stub.url, "--no-check", state_dir=tmp_path)

    result = kiosk("doctor", state_dir=tmp_path)

    line = _doctor_line(result, "server")
    assert result.returncode == 1
    assert line.startswith("FAIL") and "bound to another device" in line


def test_doctor_without_a_device_key_never_claims_the_screen(
    stub: StubServer, tmp_path: Path
) -> None:
    """With the key missing, doctor skips the server rather than bind a stand-in."""
    kiosk("pair", stub.token, "--server", stub.url, "--no-check", state_dir=tmp_path)
    for name in ("device_key", "device_key.bak"):
        (tmp_path / name).unlink()

    result = kiosk("doctor", state_dir=tmp_path)

    assert _doctor_line(result, "device key").startswith("FAIL")
    assert _doctor_line(result, "server").startswith("SKIP")
    assert stub.admin("GET", "/admin/state")["bindings"] == {stub.token: None}
