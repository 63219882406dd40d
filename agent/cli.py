"""The ``kiosk-agent`` command: run, pair, unpair, status, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from agent import __version__, logs
from agent.config import Settings, load_settings, load_settings_leniently
from agent.errors import ConfigError, KioskError
from agent.render.base import Renderer

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        print(f"kiosk-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KioskError as exc:
        print(f"kiosk-agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk-agent",
        description=(
            "Keeps a classroom display showing its school's day. Settings come "
            "from /etc/kiosk-agent/agent.toml, then KIOSK_AGENT_* environment "
            "variables, then these flags."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"kiosk-agent {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="show the schedule and keep it current (the main job)",
        description="Show the cached schedule at once, then keep the screen "
        "current until stopped (SIGTERM or Ctrl-C).",
    )
    _add_settings_flags(run)
    run.add_argument(
        "--renderer", choices=("webview", "headless"), help="how to draw the screen"
    )
    run.add_argument(
        "--no-push", action="store_true", help="poll only; never open the WebSocket"
    )
    run.set_defaults(handler=_cmd_run)

    pair = commands.add_parser(
        "pair",
        help="pair this screen with a token or display URL",
        description="Check a token against the server and store it. Accepts a bare "
        "token, a display URL with ?token=…, or a short-code URL /s/CODE/.",
    )
    pair.add_argument("reference", metavar="TOKEN_OR_URL")
    _add_settings_flags(pair)
    pair.add_argument(
        "--no-check",
        action="store_true",
        help="store the token even if the server cannot be reached to check it",
    )
    pair.set_defaults(handler=_cmd_pair)

    unpair = commands.add_parser(
        "unpair",
        help="forget the token (the device key is kept)",
        description="Remove the stored token. The device key stays, so pairing "
        "again with the same token works without an administrator.",
    )
    _add_settings_flags(unpair)
    unpair.set_defaults(handler=_cmd_unpair)

    status = commands.add_parser(
        "status",
        help="what the running agent is doing",
        description="Summarise the running agent's state from status.json.",
    )
    _add_settings_flags(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(handler=_cmd_status)

    doctor = commands.add_parser(
        "doctor",
        help="check settings, files, network, server, display and service",
        description="Check each layer this screen depends on and say what to fix. "
        "Exits non-zero when any check fails.",
    )
    _add_settings_flags(doctor)
    doctor.set_defaults(handler=_cmd_doctor)

    demo = commands.add_parser(
        "demo",
        help="run the agent against a built-in sample school",
        description="Start the stub server on 127.0.0.1 with a sample school, pair "
        "with it, run the agent, and edit the school every few seconds so pushes "
        "can be watched arriving. Uses the webview when a display exists, else "
        "the headless renderer.",
    )
    demo.add_argument(
        "--state-dir", type=Path, help="where to keep state (default: a temp dir)"
    )
    demo.add_argument(
        "--renderer", choices=("webview", "headless"), help="override the choice"
    )
    demo.add_argument(
        "--edit-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between edits (default 5)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default /etc/kiosk-agent/agent.toml)",
    )
    parser.add_argument(
        "--server", metavar="URL", help="school server, e.g. https://school.example"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="screen token (prefer `pair`, which stores it 0600)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="state directory (default /var/lib/kiosk-agent)",
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", choices=("auto", "console", "json", "journal"))


def _common_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every subcommand takes from its command line."""
    return {
        "server_url": args.server,
        "token": args.token,
        "state_dir": args.state_dir,
        "log_level": args.log_level,
        "log_format": args.log_format,
    }


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, **_common_overrides(args))


# -- run --------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    # The main job never stops on bad settings: a kiosk that exits shows a
    # black screen (and under systemd, a restart loop). Each bad source or key
    # is logged and falls back to its default instead.
    settings, problems = load_settings_leniently(
        args.config,
        **_common_overrides(args),
        renderer=args.renderer,
        push_enabled=False if args.no_push else None,
    )
    logs.configure(settings.log_level, settings.log_format)
    for problem in problems:
        log.error("config_invalid", detail=problem)
    try:
        _check_state_dir(settings.state_dir)
    except ConfigError as exc:
        # The cached schedule may still be readable; show it and say why.
        log.error("state_dir_unwritable", detail=str(exc))
    return run_agent(settings)


def run_agent(settings: Settings) -> int:
    """Run the coordinator with the configured renderer until stopped."""
    if settings.renderer == "webview":
        from agent.render.webview import run_with_webview

        code = run_with_webview(
            lambda renderer: _serve(settings, renderer),
            disable_compositing=settings.webkit_disable_compositing,
            memory_limit_mb=settings.webkit_memory_limit_mb,
        )
    else:
        from agent.render.headless import HeadlessRenderer

        renderer = HeadlessRenderer(settings.state_dir / "screen.html")
        code = asyncio.run(_until_signalled(lambda: _serve(settings, renderer)))
    # The last line a technician sees from this run, whichever renderer.
    log.info("agent_stopped", exit_code=code)
    return code


async def _serve(settings: Settings, renderer: Renderer) -> int:
    """The agent's main coroutine; returns 0 when cancelled (a clean stop)."""
    from agent.health import Notifier
    from agent.sync import Coordinator

    notifier = Notifier()
    coordinator = Coordinator(settings, renderer, notifier=notifier)
    try:
        await coordinator.run()
    except asyncio.CancelledError:
        log.info("agent_stopping")
        notifier.stopping()
        raise
    finally:
        await renderer.close()
        notifier.close()
    return EXIT_OK


async def _until_signalled(main: Callable[[], Awaitable[int]]) -> int:
    """Run ``main`` and cancel it on SIGTERM or SIGINT; a cancel is a clean exit."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return EXIT_OK
        raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _check_state_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"state directory {state_dir}: {exc.strerror}") from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"state directory {state_dir} is not writable by this user")


# -- pair / unpair -----------------------------------------------------------


def _cmd_pair(args: argparse.Namespace) -> int:
    from agent.pairflow import pair

    settings = _settings(args)
    logs.configure(settings.log_level or "warning", "console")
    _check_state_dir(settings.state_dir)
    report = asyncio.run(pair(settings, args.reference, check=not args.no_check))
    print(report.message)
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_unpair(args: argparse.Namespace) -> int:
    from agent.pairing import PairingStore

    settings = _settings(args)
    if PairingStore(settings).forget():
        print(
            "Unpaired: the token is removed; the device key is kept. "
            "Restart the agent (systemctl restart kiosk-agent) to show the "
            "pairing screen."
        )
    else:
        print("This screen was not paired; nothing to do.")
    return EXIT_OK


# -- status -------------------------------------------------------------------


def _cmd_status(args: argparse.Namespace) -> int:
    from agent.state import STATUS_FILE, read_status
    from agent.statusview import summary

    settings = _settings(args)
    data = read_status(settings.state_dir)
    if data is None:
        path = settings.state_dir / STATUS_FILE
        if path.exists():
            why = (
                f"{path} exists but cannot be read as a status (damaged, or not "
                "readable by this user); a running agent rewrites it at its "
                "next poll, so try again shortly, or read "
                "`journalctl -u kiosk-agent`."
            )
        else:
            why = (
                f"No status.json in {settings.state_dir}: the agent has not run "
                "with this state directory yet (or use --state-dir)."
            )
        print(why, file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print(summary(data))
    return EXIT_OK


# -- doctor -------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from agent.doctor import Level, run_doctor

    overrides = {
        "server_url": args.server,
        "token": args.token,
        "state_dir": args.state_dir,
    }
    findings = asyncio.run(
        run_doctor(
            args.config, overrides={k: v for k, v in overrides.items() if v is not None}
        )
    )
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if f.level is Level.FAIL]
    print(f"\n{len(failed)} check(s) failed." if failed else "\nAll checks passed.")
    return EXIT_FAILED if failed else EXIT_OK


# -- demo ---------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    return run_demo(
        state_dir=args.state_dir,
        renderer=args.renderer,
        edit_every_s=args.edit_every,
        duration_s=args.duration,
        log_level=args.log_level,
    )
