"""``kiosk-agent doctor``: check each layer a screen depends on, and say what to fix.

Checks run in order from the inside out (settings, files, then DNS, TCP, TLS,
the API and the WebSocket, then the display and the service), and a layer that
fails skips the ones that depend on it, so the first FAIL is the thing to fix.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import ssl
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent.config import Settings, load_settings_leniently
from agent.errors import RejectedError, Rejection, TransientError
from agent.identity import BACKUP_FILE, KEY_FILE, is_valid_key, key_hint
from agent.pairflow import explain_unreachable
from agent.pairing import Pairing, PairingStore
from agent.transport.http import ServerApi
from agent.transport.push import push_url

MIN_FREE_BYTES = 50 * 1024 * 1024
CLOCK_SKEW_WARN_S = 60.0
# No real school server runs on a certificate issued before this year; a clock
# earlier than it is a Pi without a real-time clock that has not synced yet.
EARLIEST_SANE_YEAR = 2024
NET_TIMEOUT_S = 5.0


class Level(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Finding:
    name: str
    level: Level
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level.value:<5} {self.name}: {self.detail}"
        return f"{text}\n      fix: {self.fix}" if self.fix else text


@dataclass
class Context:
    """What earlier checks learned, for the later ones."""

    config_file: Path | None
    settings: Settings | None = None
    pairing: Pairing | None = None
    device_key: str | None = None
    host: str | None = None
    port: int | None = None
    addresses: list[str] = field(default_factory=list)
    reachable: bool = False
    api_ok: bool = False
    service_name: str = "kiosk-agent"


Check = Callable[[Context], Awaitable[Finding]]


async def run_doctor(
    config_file: Path | None, *, overrides: dict[str, object] | None = None
) -> list[Finding]:
    """Run every check in order; later checks see what earlier ones found."""
    ctx = Context(config_file)
    findings = []
    checks: list[Check] = [
        lambda c: check_config(c, overrides or {}),
        check_token,
        check_device_key,
        check_state_dir,
        check_clock,
        check_dns,
        check_tcp,
        check_tls,
        check_status_endpoint,
        check_websocket,
        check_display,
        check_service,
    ]
    for check in checks:
        findings.append(await check(ctx))
    return findings


async def check_config(ctx: Context, overrides: dict[str, object]) -> Finding:
    # Read the way `run` does, so the other checks see the settings the agent
    # would really use: a bad key falls back to its default there too.
    ctx.settings, problems = load_settings_leniently(
        ctx.config_file,
        **overrides,  # type: ignore[arg-type]
    )
    if problems:
        return Finding(
            "config",
            Level.FAIL,
            "; ".join(problems),
            "correct the setting in the file or variable named; until then the "
            "agent runs with its default",
        )
    where = ctx.config_file or "/etc/kiosk-agent/agent.toml (if present)"
    return Finding("config", Level.OK, f"settings parse ({where})")


async def check_token(ctx: Context) -> Finding:
    if ctx.settings is None:
        return _skip("token", "config")
    pairing, problem = PairingStore(ctx.settings).load()
    if pairing is None:
        return Finding(
            "token",
            Level.FAIL,
            problem,
            "run: kiosk-agent pair <token or display URL>",
        )
    ctx.pairing = pairing
    parts = urlsplit(pairing.server_url)
    ctx.host = parts.hostname
    ctx.port = parts.port or (443 if parts.scheme == "https" else 80)
    token_path = ctx.settings.token_path
    if ctx.settings.token is None and token_path.exists():
        mode = stat.S_IMODE(token_path.stat().st_mode)
        if mode & 0o077:
            return Finding(
                "token",
                Level.FAIL,
                f"{token_path} has mode {mode:04o}: other users can read the token",
                f"chmod 600 {token_path}",
            )
    return Finding(
        "token", Level.OK, f"token {pairing.token[:6]}… for {pairing.server_url}"
    )


async def check_device_key(ctx: Context) -> Finding:
    if ctx.settings is None:
        return _skip("device key", "config")
    problems = []
    keys = []
    for name in (KEY_FILE, BACKUP_FILE):
        path = ctx.settings.state_dir / name
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            text = path.read_text("ascii").strip()
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name} cannot be read ({exc})")
            continue
        if not is_valid_key(text):
            problems.append(f"{name} is damaged")
        else:
            keys.append(text)
        if mode & 0o077:
            problems.append(f"{name} has mode {mode:04o}, not 0600")
    if not keys:
        return Finding(
            "device key",
            Level.FAIL,
            "; ".join(problems) or "no device key",
            "start the agent once to create it (a new key needs the screen unbound "
            "by an administrator if it was paired before)",
        )
    ctx.device_key = keys[0]
    if problems:
        return Finding(
            "device key",
            Level.WARN,
            f"key {key_hint(keys[0])}… readable, but " + "; ".join(problems),
            f"chmod 600 {ctx.settings.state_dir}/device_key*; the agent repairs "
            "a damaged copy at its next start",
        )
    return Finding("device key", Level.OK, f"{key_hint(keys[0])}…, both copies 0600")


async def check_state_dir(ctx: Context) -> Finding:
    if ctx.settings is None:
        return _skip("state dir", "config")
    path = ctx.settings.state_dir
    if not path.is_dir():
        return Finding(
            "state dir", Level.FAIL, f"{path} does not exist", f"mkdir -m 700 {path}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        return Finding(
            "state dir",
            Level.FAIL,
            f"{path} is not writable by this user",
            f"run doctor as the agent's user, or chown it: chown kiosk: {path}",
        )
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        return Finding(
            "state dir",
            Level.FAIL,
            f"only {free // (1024 * 1024)} MB free on {path}",
            "free space on the SD card (old logs: journalctl --vacuum-size=50M)",
        )
    return Finding(
        "state dir", Level.OK, f"{path} writable, {free // (1024**2)} MB free"
    )


async def check_clock(ctx: Context) -> Finding:
    year = time.gmtime().tm_year
    if year < EARLIEST_SANE_YEAR:
        return Finding(
            "clock",
            Level.FAIL,
            f"the system clock says {time.strftime('%Y-%m-%d')}",
            "TLS will fail until the time is right: check NTP "
            "(timedatectl status) and that the network allows it",
        )
    return Finding("clock", Level.OK, time.strftime("%Y-%m-%d %H:%M:%S %Z"))


async def check_dns(ctx: Context) -> Finding:
    if ctx.host is None:
        return _skip("dns", "token")
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(ctx.host, ctx.port),
            NET_TIMEOUT_S,
        )
    except (OSError, TimeoutError) as exc:
        return Finding(
            "dns",
            Level.FAIL,
            f"cannot resolve {ctx.host}: {exc}",
            "check the server name in server_url and the network's DNS",
        )
    ctx.addresses = sorted({str(info[4][0]) for info in infos})
    return Finding("dns", Level.OK, f"{ctx.host} -> {', '.join(ctx.addresses)}")


async def check_tcp(ctx: Context) -> Finding:
    if not ctx.addresses:
        return _skip("tcp", "dns")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(ctx.host, ctx.port), NET_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        return Finding(
            "tcp",
            Level.FAIL,
            f"cannot connect to {ctx.host}:{ctx.port}: {reason}",
            "is the server up, the port right, and does a firewall allow it?",
        )
    writer.close()
    ctx.reachable = True
    return Finding("tcp", Level.OK, f"connected to {ctx.host}:{ctx.port}")


async def check_tls(ctx: Context) -> Finding:
    if not ctx.reachable or ctx.pairing is None:
        return _skip("tls", "tcp")
    if not ctx.pairing.server_url.startswith("https://"):
        level = Level.OK if _is_loopback(ctx.host) else Level.WARN
        return Finding(
            "tls",
            level,
            "plain http: traffic and the token are not encrypted",
            "" if level is Level.OK else "use an https:// server_url",
        )
    context = ssl.create_default_context()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                ctx.host, ctx.port, ssl=context, server_hostname=ctx.host
            ),
            NET_TIMEOUT_S,
        )
    except ssl.SSLCertVerificationError as exc:
        return Finding(
            "tls",
            Level.FAIL,
            f"certificate not trusted: {exc.verify_message}",
            "if the date is wrong fix the clock first; otherwise install the "
            "school's CA certificate or fix the server's certificate",
        )
    except (OSError, TimeoutError) as exc:
        return Finding("tls", Level.FAIL, f"TLS handshake failed: {exc}", "")
    writer.close()
    return Finding("tls", Level.OK, "certificate verified")


async def check_status_endpoint(ctx: Context) -> Finding:
    if not ctx.reachable or ctx.pairing is None or ctx.settings is None:
        return _skip("server", "tcp")
    if ctx.device_key is None:
        # Any key sent would claim the screen for it; only the real one may.
        return _skip("server", "device key")
    device_key = ctx.device_key
    async with ServerApi(
        ctx.pairing.server_url,
        ctx.pairing.token,
        device_key,
        timeout_s=ctx.settings.request_timeout_s,
    ) as api:
        try:
            await api.status(None)
        except RejectedError as exc:
            if exc.code is Rejection.SCREEN_BOUND:
                return Finding(
                    "server",
                    Level.FAIL,
                    "the screen is bound to another device",
                    "ask the administrator to unbind it; this device's key starts "
                    f"with {key_hint(device_key)}",
                )
            return Finding(
                "server",
                Level.FAIL,
                f"the server rejects the token ({exc})",
                "pair again with a valid token: kiosk-agent pair <token or URL>",
            )
        except TransientError as exc:
            return Finding(
                "server",
                Level.FAIL,
                f"status request failed: {explain_unreachable(exc)}",
                "a proxy or captive portal may be answering instead of the server",
            )
        skew = abs(api.clock.offset_ms) / 1000.0 if api.clock.known else 0.0
    ctx.api_ok = True
    if skew > CLOCK_SKEW_WARN_S:
        return Finding(
            "server",
            Level.WARN,
            f"token accepted, but this clock is {skew:.0f} s off the server's",
            "check NTP (timedatectl status); the screen corrects for it meanwhile",
        )
    return Finding("server", Level.OK, "token accepted, screen bound to this device")


async def check_websocket(ctx: Context) -> Finding:
    if not ctx.api_ok or ctx.pairing is None or ctx.device_key is None:
        return _skip("websocket", "server")
    if ctx.settings is not None and not ctx.settings.push_enabled:
        return Finding("websocket", Level.OK, "push disabled in settings; polling only")
    url, origin = push_url(ctx.pairing.server_url, ctx.pairing.token, ctx.device_key)
    try:
        async with connect(
            url,
            origin=websockets.typing.Origin(origin),
            open_timeout=NET_TIMEOUT_S,
            ping_interval=None,
            close_timeout=1,
        ):
            pass
    except InvalidStatus as exc:
        return Finding(
            "websocket",
            Level.WARN,
            f"handshake refused with {exc.response.status_code}",
            "updates still arrive by polling; a proxy may block WebSockets",
        )
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return Finding(
            "websocket",
            Level.WARN,
            f"could not open: {type(exc).__name__}",
            "updates still arrive by polling, just slower",
        )
    return Finding("websocket", Level.OK, "handshake accepted")


async def check_display(ctx: Context) -> Finding:
    if ctx.settings is not None and ctx.settings.renderer == "headless":
        return Finding("display", Level.OK, "headless renderer: no display needed")
    problems = []
    if not (os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")):
        problems.append("no WAYLAND_DISPLAY or DISPLAY in this shell")
    if importlib.util.find_spec("webview") is None:
        problems.append("pywebview is not installed")
    if not _webkit_available():
        problems.append("GTK WebKit 4.1 is not installed (gir1.2-webkit2-4.1)")
    if problems:
        # Under systemd the display belongs to cage, not to a technician's
        # shell, so a missing display variable alone is only a warning.
        only_env = len(problems) == 1 and problems[0].startswith("no WAYLAND")
        level = Level.WARN if only_env else Level.FAIL
        fix = (
            "none needed for the service, which starts its own display (cage)"
            if only_env
            else "apt-get install python3-gi gir1.2-webkit2-4.1 (or image/install.sh)"
        )
        return Finding("display", level, "; ".join(problems), fix)
    return Finding("display", Level.OK, "display and WebKit available")


async def check_service(ctx: Context) -> Finding:
    """The system unit enabled (Lite), or the desktop user's unit running.

    On Raspberry Pi OS with desktop the agent runs as the desktop user's
    service, started from the labwc autostart, and the system unit must stay
    off; so a disabled system unit is only a problem if the user unit is not
    running either.
    """
    if shutil.which("systemctl") is None:
        return Finding("service", Level.WARN, "systemctl not found", "")
    name = ctx.service_name
    try:
        enabled, state = await _systemctl("is-enabled", name)
        if enabled:
            return Finding("service", Level.OK, f"{name} is {state}")
        user_active, user_state = await _systemctl("--user", "is-active", name)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("service", Level.WARN, f"systemctl failed: {exc}", "")
    if user_active:
        return Finding(
            "service", Level.OK, f"{name} runs as this user's service ({user_state})"
        )
    return Finding(
        "service",
        Level.FAIL,
        f"{name} is not enabled ({state}) and no user service runs ({user_state})",
        f"systemctl enable --now {name}; on the desktop edition, start it from "
        "the labwc autostart instead (docs/install.md)",
    )


async def _systemctl(*args: str) -> tuple[bool, str]:
    """Whether ``systemctl *args`` succeeded, and what it printed."""
    result = await asyncio.to_thread(
        subprocess.run,
        ["systemctl", *args],
        capture_output=True,
        text=True,
        timeout=NET_TIMEOUT_S,
    )
    return result.returncode == 0, result.stdout.strip() or result.stderr.strip()


def _skip(name: str, because: str) -> Finding:
    return Finding(name, Level.SKIP, f"skipped: the {because} check did not pass")


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost")


def _webkit_available() -> bool:
    try:
        import gi

        gi.require_version("WebKit2", "4.1")
        from gi.repository import WebKit2  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True
