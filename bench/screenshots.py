"""Remake the screenshots in docs/screenshots/ from the real agent and webview.

Run under a 1920x1080 display, from the repository root:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python bench/screenshots.py

Each screen is the real ``kiosk-agent run --renderer webview`` against the stub
server on 127.0.0.1, with the stub's clock set to a fixed school-day instant so
the pictures come out the same each time. The X screen is captured once the
page has painted and settled; ``pngquant`` (if installed) shrinks the files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# A Sunday, a school day for the sample school (Sunday to Thursday).
SCHOOL_DAY = "2026-12-06"
SETTLE_S = 1.5
MAX_BYTES = 400_000

Prepare = Callable[[Any], str | None]


def live_day(stub: Any) -> str | None:
    """Mid-morning in period 3; returns the token to pair with."""
    stub.admin("POST", "/admin/clock", {"now": f"{SCHOOL_DAY}T09:12:00+03:00"})
    token: str = stub.token
    return token


def before_school(stub: Any) -> str | None:
    """05:40 on a school day, before the active window opens."""
    stub.admin("POST", "/admin/clock", {"now": f"{SCHOOL_DAY}T05:40:00+03:00"})
    token: str = stub.token
    return token


def not_paired(stub: Any) -> str | None:
    """No token at all."""
    return None


def screen_bound(stub: Any) -> str | None:
    """The token is first used by another device, which the server binds it to."""
    import httpx

    httpx.get(
        f"{stub.url}/api/display/status/{stub.token}/",
        params={"dk": str(uuid.uuid4())},
        timeout=10,
    ).raise_for_status()
    token: str = stub.token
    return token


SHOWS_VIEW = "window.kiosk.alive().revision !== null"
SHOWS_NOTICE = "['unpaired', 'screen_bound'].includes(window.kiosk.alive().notice)"
# Each screen: how to set the stub up, and when the page shows what is wanted.
SHOTS: dict[str, tuple[Prepare, str]] = {
    "live-day": (live_day, SHOWS_VIEW),
    "before-school": (before_school, SHOWS_VIEW),
    "not-paired": (not_paired, SHOWS_NOTICE),
    "screen-bound": (screen_bound, SHOWS_NOTICE),
}


def shoot(name: str, out_dir: Path, work: Path) -> Path:
    """Start a stub and an agent, capture the screen, stop both."""
    from server_stub.testing import StubServer
    from tests.e2e.agentview import WebviewAgent

    prepare, ready = SHOTS[name]
    target = out_dir / f"{name}.png"
    with StubServer() as stub:
        token = prepare(stub)
        agent = WebviewAgent(work / name / "state", stub.url, token).start()
        try:
            agent.wait_for_js(ready, timeout_s=30, what=f"the {name} screen")
            time.sleep(SETTLE_S)
            agent.request(paint=True)
            raw = work / f"{name}.raw.png"
            size = agent.capture(raw)
        finally:
            code, _ = agent.stop()
    if size != [1920, 1080]:
        print(f"{name}: the display is {size[0]}x{size[1]}, not 1920x1080")
    shrink(raw, target)
    print(f"{name}: {target} {target.stat().st_size // 1024} KiB (agent exit {code})")
    return target


def shrink(source: Path, target: Path) -> None:
    """Quantise with pngquant when it is there and the file is large; else copy."""
    quantiser = shutil.which("pngquant")
    if source.stat().st_size > MAX_BYTES and quantiser:
        command = [quantiser, "--force", "--quality=70-95", "--output", str(target)]
        subprocess.run(
            [*command, "256", "--", str(source)],
            check=True,
        )
    else:
        shutil.copyfile(source, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(SHOTS)}")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(SHOTS))
    if unknown:
        parser.error(f"unknown screen(s): {', '.join(unknown)}")
    # The agent helper lives with the e2e tests, which are not an installed package.
    sys.path.insert(0, str(ROOT))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiosk-shots-") as tmp:
        for name in args.names or list(SHOTS):
            shoot(name, args.out, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
