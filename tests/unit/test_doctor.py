"""Each doctor check in its passing and failing form."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent import doctor
from agent.config import Settings
from agent.doctor import Context, Level
from agent.pairing import Pairing

TOKEN = "ab" * 32
KEY = "0f1e2d3c-4b5a-4697-8877-665544332211"


def ctx(tmp_path: Path, **settings: Any) -> Context:
    context = Context(config_file=None)
    context.settings = Settings(state_dir=tmp_path, **settings)
    return context


async def test_config_passes_and_fails(tmp_path: Path) -> None:
    """A valid file is OK; a bad value is FAIL naming the key."""
    good = tmp_path / "good.toml"
    good.write_text('renderer = "headless"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("poll_min_s = -3\n")

    assert (await doctor.check_config(Context(good), {})).level is Level.OK
    context = Context(bad)
    finding = await doctor.check_config(context, {})
    assert finding.level is Level.FAIL and "poll_min_s" in finding.detail
    assert "default" in finding.fix
    # The other checks go on with what the agent would use: the default.
    assert context.settings is not None
    assert context.settings.poll_min_s == Settings().poll_min_s


async def test_token_missing_fails_and_present_passes(tmp_path: Path) -> None:
    """No token is FAIL with the pair command; a stored 0600 token is OK."""
    context = ctx(tmp_path, server_url="https://school.example")
    missing = await doctor.check_token(context)
    assert missing.level is Level.FAIL and "kiosk-agent pair" in missing.fix

    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "token").chmod(0o600)
    present = await doctor.check_token(context)
    assert present.level is Level.OK and TOKEN not in present.detail
    assert context.host == "school.example" and context.port == 443


async def test_token_readable_by_others_fails(tmp_path: Path) -> None:
    """A token file with group or world bits is FAIL with chmod 600."""
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "token").chmod(0o644)

    finding = await doctor.check_token(ctx(tmp_path, server_url="https://s.example"))

    assert finding.level is Level.FAIL and "chmod 600" in finding.fix


async def test_device_key_states(tmp_path: Path) -> None:
    """Both copies 0600 is OK, a loose mode is WARN, none is FAIL."""
    context = ctx(tmp_path)
    assert (await doctor.check_device_key(context)).level is Level.FAIL

    for name in ("device_key", "device_key.bak"):
        (tmp_path / name).write_text(KEY)
        (tmp_path / name).chmod(0o600)
    assert (await doctor.check_device_key(context)).level is Level.OK

    (tmp_path / "device_key").chmod(0o644)
    loose = await doctor.check_device_key(context)
    assert loose.level is Level.WARN and "0644" in loose.detail


async def test_state_dir_missing_and_low_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing directory fails; so does one on a nearly full disk."""
    assert (await doctor.check_state_dir(ctx(tmp_path / "absent"))).level is Level.FAIL
    assert (await doctor.check_state_dir(ctx(tmp_path))).level is Level.OK

    monkeypatch.setattr(
        doctor.shutil, "disk_usage", lambda path: type("U", (), {"free": 1024})()
    )
    low = await doctor.check_state_dir(ctx(tmp_path))
    assert low.level is Level.FAIL and "MB free" in low.detail


async def test_clock_before_sane_year_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pi that booted in 1970 is told to fix the time before TLS can work."""
    assert (await doctor.check_clock(Context(None))).level is Level.OK

    monkeypatch.setattr(
        doctor.time, "gmtime", lambda *a: type("T", (), {"tm_year": 1970})()
    )
    finding = await doctor.check_clock(Context(None))
    assert finding.level is Level.FAIL and "NTP" in finding.fix


async def test_dns_failure_and_success(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not resolve is FAIL; loopback resolves."""
    context = Context(None)
    context.host, context.port = "127.0.0.1", 80
    assert (await doctor.check_dns(context)).level is Level.OK

    async def no_dns(*args: object) -> list[object]:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(
        doctor.asyncio,
        "get_running_loop",
        lambda: type("L", (), {"getaddrinfo": no_dns})(),
    )
    context.host = "school.example"
    finding = await doctor.check_dns(context)
    assert finding.level is Level.FAIL and "cannot resolve" in finding.detail


async def test_tcp_refused_fails_and_listening_passes() -> None:
    """A closed port is FAIL; a listening one is OK."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        context = Context(None)
        context.host, context.port = "127.0.0.1", listener.getsockname()[1]
        context.addresses = ["127.0.0.1"]
        assert (await doctor.check_tcp(context)).level is Level.OK
    closed = await doctor.check_tcp(context)
    assert closed.level is Level.FAIL and "cannot connect" in closed.detail


async def test_tls_plain_http_on_loopback_is_ok_and_elsewhere_warns() -> None:
    """http is fine for a loopback stub and a warning for a real server."""
    context = Context(None)
    context.reachable = True
    context.pairing = Pairing("http://127.0.0.1:8000", TOKEN)
    context.host = "127.0.0.1"
    assert (await doctor.check_tls(context)).level is Level.OK

    context.pairing = Pairing("http://school.example", TOKEN)
    context.host = "school.example"
    assert (await doctor.check_tls(context)).level is Level.WARN


async def test_tls_untrusted_certificate_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate that does not verify is FAIL, pointing at the clock first."""

    async def bad_cert(*args: object, **kwargs: object) -> object:
        error = ssl.SSLCertVerificationError("certificate verify failed")
        error.verify_message = "certificate has expired"
        raise error

    monkeypatch.setattr(doctor.asyncio, "open_connection", bad_cert)
    context = Context(None)
    context.reachable = True
    context.pairing = Pairing("https://school.example", TOKEN)
    context.host, context.port = "school.example", 443

    finding = await doctor.check_tls(context)

    assert finding.level is Level.FAIL and "clock" in finding.fix


async def test_display_headless_needs_nothing(tmp_path: Path) -> None:
    """The headless renderer needs no display."""
    finding = await doctor.check_display(ctx(tmp_path, renderer="headless"))
    assert finding.level is Level.OK


async def test_display_missing_webkit_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without WebKit the webview renderer cannot work: FAIL with the package."""
    monkeypatch.setattr(doctor, "_webkit_available", lambda: False)
    monkeypatch.setenv("DISPLAY", ":99")

    finding = await doctor.check_display(ctx(tmp_path, renderer="webview"))

    assert finding.level is Level.FAIL and "gir1.2-webkit2-4.1" in finding.fix


@pytest.mark.parametrize(
    ("system", "user", "level"),
    [
        ((0, "enabled"), (3, "inactive"), Level.OK),
        ((1, "disabled"), (0, "active"), Level.OK),
        ((1, "disabled"), (3, "inactive"), Level.FAIL),
    ],
    ids=["system-enabled", "desktop-user-service", "neither"],
)
async def test_service_system_or_desktop_user(
    monkeypatch: pytest.MonkeyPatch,
    system: tuple[int, str],
    user: tuple[int, str],
    level: Level,
) -> None:
    """The enabled system unit or a running user unit passes; neither is FAIL."""
    monkeypatch.setattr(doctor.shutil, "which", lambda name: "/bin/systemctl")

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        code, text = user if "--user" in command else system
        return subprocess.CompletedProcess(command, code, text + "\n", "")

    monkeypatch.setattr(doctor.subprocess, "run", run)
    finding = await doctor.check_service(Context(None))

    assert finding.level is level, finding
    if level is Level.FAIL:
        assert "systemctl enable" in finding.fix and "labwc" in finding.fix
