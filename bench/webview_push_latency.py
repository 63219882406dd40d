"""Push-to-pixels latency, first paint and memory of the agent in the real webview.

Run by hand under a display, from the repository root:

    xvfb-run -a -s "-screen 0 1920x1080x24" \\
        .venv/bin/python bench/webview_push_latency.py --soak-s 900

The stub server runs in this process on 127.0.0.1 with its real limits (rate
limit on; a second push for the school inside 3 s is dropped, hence edits 3.5 s
apart). The agent is ``kiosk-agent run --renderer webview`` in its own process
(through ``tests.e2e.agentdriver``, which adds a request channel to the page),
so its memory is measured without the stub's or this script's.

- first paint: from just before the process is started to the second animation
  frame after the cached snapshot was applied (state directory filled by an
  earlier run); ``--starts`` runs.
- latency: each edit renames the school (the header is always on screen) through
  ``POST /admin/edit``; measured from just before the admin call to the second
  animation frame after the new name is in the DOM (a MutationObserver in the
  page stamps ``Date.now()``; page and script share the machine's clock).
- idle CPU: CPU time of the agent and its WebKit processes over ``--idle-s``
  with the live screen up and no edits, as a share of one core.
- memory: PSS summed over the agent and its WebKit processes, at idle (after
  start-up and ``--settle-s``), each minute of the soak, and after it (again
  after ``--settle-s``). The soak keeps editing every ``--gap-s``.

PSS shares a library's pages among every process that maps it, so a second
WebKit program running at the same time (another agent, the e2e tests) makes
the figures look smaller than they are: run this alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY_S = 60.0
POLL_S = 0.02

# The page keeps a map of marker -> epoch ms at which the marker was painted.
HOOK = """(() => {
  if (window.__bench) return 0;
  window.__bench = { wanted: new Set(), painted: {} };
  const check = () => {
    const text = document.getElementById("school").textContent;
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
    parser.add_argument("--starts", type=int, default=5, help="first-paint runs")
    parser.add_argument("--soak-s", type=float, default=900.0, help="edit this long")
    parser.add_argument("--min-edits", type=int, default=100)
    parser.add_argument("--gap-s", type=float, default=3.5)
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument(
        "--idle-s", type=float, default=60.0, help="CPU sample, no edits"
    )
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args()
    # The agent helper lives with the e2e tests, which are not an installed package.
    sys.path.insert(0, str(ROOT))
    from server_stub.testing import StubServer

    with StubServer() as stub, tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "state"
        result: dict[str, Any] = {"machine": _machine()}
        result["first_paint"] = _first_paints(stub, state_dir, args.starts)
        result.update(_soak(stub, state_dir, args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _start(stub: Any, state_dir: Path) -> Any:
    from tests.e2e.agentview import WebviewAgent

    return WebviewAgent(state_dir, stub.url, stub.token).start()


def _first_paints(stub: Any, state_dir: Path, starts: int) -> dict[str, Any]:
    """Fill the cache with one run, then time ``starts`` cold starts from it."""
    filler = _start(stub, state_dir)
    filler.wait_for_js("window.kiosk.alive().revision !== null", 30, "a snapshot")
    filler.stop()

    runs: list[float] = []
    for _ in range(starts):
        agent = _start(stub, state_dir)
        try:
            event = agent.first_paint()
            if event.get("kind") != "view":
                raise RuntimeError(f"the first paint was not the cache: {event}")
            runs.append(round(event["painted_ms"] - agent.started_ms, 1))
        finally:
            agent.stop()
    return {"runs_ms": runs, "median_ms": round(statistics.median(runs), 1)}


def _soak(stub: Any, state_dir: Path, args: Any) -> dict[str, Any]:
    from tests.e2e.agentview import cpu_seconds, pss_kib

    agent = _start(stub, state_dir)
    try:
        agent.wait_for_js("window.kiosk.alive().revision !== null", 30, "a snapshot")
        time.sleep(args.settle_s)
        idle = pss_kib(agent.pid)
        cpu_before = cpu_seconds(agent.pid)
        time.sleep(args.idle_s)
        idle_cpu = (cpu_seconds(agent.pid) - cpu_before) / args.idle_s
        agent.evaluate(HOOK)

        latencies: list[float] = []
        missed = 0
        samples = [{"t_s": 0, **idle}]
        started = time.monotonic()
        next_sample = started + SAMPLE_EVERY_S
        n = 0
        while time.monotonic() - started < args.soak_s or n < args.min_edits:
            latency = _edit(agent, stub, f"bench-{n}", args.timeout_s)
            if latency is None:
                missed += 1
            else:
                latencies.append(latency)
            n += 1
            if time.monotonic() >= next_sample:
                elapsed = round(time.monotonic() - started)
                samples.append({"t_s": elapsed, **pss_kib(agent.pid)})
                next_sample += SAMPLE_EVERY_S
            time.sleep(args.gap_s)
        soaked_s = time.monotonic() - started
        time.sleep(args.settle_s)
        after = pss_kib(agent.pid)
        recreated = len(agent.logged("webview_recreated"))
    finally:
        code, _ = agent.stop()

    ordered = sorted(latencies)
    return {
        "edits": n,
        "painted": len(ordered),
        "missed": missed,
        "latency_ms": _spread(ordered),
        "memory": {
            "idle": idle,
            "after_soak": after,
            "growth_kib": after["pss_kib"] - idle["pss_kib"],
            "samples": samples,
        },
        "idle_cpu_percent": round(100 * idle_cpu, 1),
        "soak_s": round(soaked_s),
        "webview_recreated": recreated,
        "agent_exit": code,
    }


def _edit(agent: Any, stub: Any, marker: str, timeout_s: float) -> float | None:
    """Rename the school; ms from the admin call to the painted name, or None."""
    key = json.dumps(marker)
    agent.evaluate(f"(window.__bench.wanted.add({key}), 0)")
    started_ms = time.time() * 1000
    stub.admin("POST", "/admin/edit", {"path": "settings.name", "value": marker})
    deadline = time.monotonic() + timeout_s
    probe = f"window.__bench ? (window.__bench.painted[{key}] ?? null) : 'gone'"
    while time.monotonic() < deadline:
        value = agent.evaluate(probe)
        if value == "gone":
            # The page was replaced (reload or watchdog); hook it again.
            agent.evaluate(HOOK)
            agent.evaluate(f"(window.__bench.wanted.add({key}), __benchCheck(), 0)")
        elif value is not None:
            return float(value) - started_ms
        time.sleep(POLL_S)
    print(f"{marker}: not painted within {timeout_s:g} s", file=sys.stderr)
    return None


def _spread(ordered: list[float]) -> dict[str, float]:
    if not ordered:
        return {}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[round(0.9 * (len(ordered) - 1))], 1),
        "p99": round(p99, 1),
        "max": round(ordered[-1], 1),
        "min": round(ordered[0], 1),
    }


def _machine() -> dict[str, Any]:
    import os

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "display": os.environ.get("DISPLAY", ""),
    }


if __name__ == "__main__":
    sys.exit(main())
