"""Push-to-pixels latency and memory of the agent with the real webview.

Run by hand under a display (e.g. ``xvfb-run -a -s "-screen 0 1920x1080x24"``):

    .venv/bin/python bench/webview_push_latency.py --edits 120 --soak-s 120

Starts the stub server on 127.0.0.1, runs the real coordinator with the webview
renderer in this process, and edits an announcement through the stub's admin
API. Latency is measured from just before the admin call to the moment the page
has the new text in its DOM and has drawn two animation frames since (a hook
in the page records ``Date.now()``; page and bench share the machine's clock).
Memory is the PSS sum of this process and its WebKit children, at start and
after the soak. Edits are spaced ``--gap-s`` apart because the server drops a
second push for the same school inside about 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The page keeps a map of marker -> epoch ms at which the marker was painted.
HOOK = """(() => {
  if (window.__bench) return 0;
  window.__bench = { wanted: new Set(), painted: {} };
  const check = () => {
    const text = document.body.textContent;
    for (const marker of window.__bench.wanted) {
      if (text.includes(marker)) {
        window.__bench.wanted.delete(marker);
        requestAnimationFrame(() => requestAnimationFrame(() => {
          window.__bench.painted[marker] = Date.now();
        }));
      }
    }
  };
  new MutationObserver(check).observe(document.body,
    { subtree: true, childList: true, characterData: true });
  window.__benchCheck = check;
  return 0;
})()"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=120)
    parser.add_argument("--gap-s", type=float, default=3.5)
    parser.add_argument("--soak-s", type=float, default=3600.0)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    args = parser.parse_args()

    from agent import logs
    from agent.config import load_settings
    from agent.render.webview import run_with_webview
    from server_stub.testing import StubServer

    logs.configure("warning", "console")
    with StubServer() as stub, tempfile.TemporaryDirectory() as state:
        settings = load_settings(
            None,
            environ={},
            server_url=stub.url,
            token=stub.token,
            state_dir=Path(state),
            renderer="webview",
        )

        async def agent_main(renderer: Any) -> int:
            return await _measure(renderer, settings, stub, args)

        return run_with_webview(agent_main)


async def _measure(renderer: Any, settings: Any, stub: Any, args: Any) -> int:
    from agent.sync import Coordinator

    coordinator = asyncio.create_task(
        Coordinator(settings, renderer).run(), name="bench-coordinator"
    )
    try:
        await _wait_for_page(renderer)
        await asyncio.sleep(5)
        start_mem = _pss_kib()
        latencies = await _edit_loop(renderer, stub, args)
        await asyncio.sleep(args.soak_s)
        end_mem = _pss_kib()
    finally:
        coordinator.cancel()
        await asyncio.gather(coordinator, return_exceptions=True)

    _report(latencies, args.edits, start_mem, end_mem, args.soak_s)
    return 0


async def _wait_for_page(renderer: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            alive = await renderer.evaluate("window.kiosk.alive()")
        except Exception:
            alive = None
        if alive and alive.get("revision") is not None:
            await renderer.evaluate(HOOK)
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the agent never put a snapshot on screen")


async def _edit_loop(renderer: Any, stub: Any, args: Any) -> list[float]:
    latencies: list[float] = []
    for n in range(args.edits):
        marker = f"bench-{os.getpid()}-{n}"
        await renderer.evaluate(f"window.__bench.wanted.add({json.dumps(marker)})")
        started_ms = time.time() * 1000
        await asyncio.to_thread(
            stub.admin,
            "POST",
            "/admin/announce",
            {"title": marker, "body": "latency probe"},
        )
        painted = await _painted_at(renderer, marker, args.timeout_s)
        if painted is None:
            print(f"edit {n}: not painted within {args.timeout_s:g} s", file=sys.stderr)
        else:
            latencies.append(painted - started_ms)
        await asyncio.sleep(args.gap_s)
    return latencies


async def _painted_at(renderer: Any, marker: str, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    key = json.dumps(marker)
    while time.monotonic() < deadline:
        # The hook is gone if the watchdog replaced the page; put it back.
        await renderer.evaluate(HOOK)
        await renderer.evaluate(
            f"(window.__bench.wanted.add({key}), window.__benchCheck(), 0)"
        )
        value = await renderer.evaluate(f"window.__bench.painted[{key}] ?? null")
        if value is not None:
            return float(value)
        await asyncio.sleep(0.01)
    return None


def _pss_kib() -> dict[str, int]:
    """PSS and RSS (KiB) summed over this process and all its descendants."""
    totals = {"pss_kib": 0, "rss_kib": 0, "processes": 0}
    for pid in _descendants(os.getpid()):
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {ln.split(":")[0]: ln.split()[1] for ln in lines[1:] if ":" in ln}
        totals["pss_kib"] += int(fields.get("Pss", 0))
        totals["rss_kib"] += int(fields.get("Rss", 0))
        totals["processes"] += 1
    return totals


def _descendants(root: int) -> list[int]:
    found, pending = [root], [root]
    while pending:
        pid = pending.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def _report(
    latencies: list[float],
    edits: int,
    start_mem: dict[str, int],
    end_mem: dict[str, int],
    soak_s: float,
) -> None:
    ordered = sorted(latencies)
    result: dict[str, Any] = {"edits": edits, "painted": len(ordered)}
    if ordered:
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        result.update(
            median_ms=round(statistics.median(ordered), 1),
            p99_ms=round(p99, 1),
            max_ms=round(ordered[-1], 1),
        )
    result.update(memory_start=start_mem, memory_after_soak=end_mem, soak_s=soak_s)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
