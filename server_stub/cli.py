"""``kiosk-stub``: run the stub school server on loopback."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from agent import logs
from server_stub.state import TOKEN_RE, StubState, real_clock
from server_stub.testing import StubServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kiosk-stub",
        description="A stand-in for a school display server, with a sample school, "
        "for tests and demos. It binds 127.0.0.1 and has an admin API under /admin/ "
        "(see the README).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--token",
        action="append",
        help="a screen token (64 hex); repeat for more screens; default: a random one",
    )
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="answer every snapshot request (no 429s)",
    )
    parser.add_argument(
        "--push-drop-window",
        type=float,
        default=3.0,
        metavar="S",
        help="drop a second push inside S seconds, as real servers do (default 3)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=20.0,
        metavar="S",
        help="WebSocket heartbeat interval (default 20)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="how much to log to stderr (default info)",
    )
    parser.add_argument(
        "--real-clock",
        action="store_true",
        help="use the real time instead of a clock that puts the school mid-morning",
    )
    args = parser.parse_args(argv)

    tokens = [t.lower() for t in args.token] if args.token else None
    if tokens and not all(TOKEN_RE.fullmatch(t) for t in tokens):
        parser.error("--token must be 64 (or 32) hexadecimal characters")
    logs.configure(args.log_level, stream=sys.stderr)
    state = StubState(
        tokens=tokens,
        rate_limit=not args.no_rate_limit,
        push_drop_window_s=args.push_drop_window,
        heartbeat_s=args.heartbeat,
        clock=real_clock if args.real_clock else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = StubServer(
        state=state, host=args.host, port=args.port, log_level=args.log_level
    )
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"kiosk-stub: cannot serve: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"stub server: {server.url}", flush=True)
        for screen in state.screens.values():
            print(
                f"  screen token {screen.token}  short code {screen.short_code}"
                f"  ({server.url}/s/{screen.short_code}/)",
                flush=True,
            )
        print(f"  admin API: {server.url}/admin/state", flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0
