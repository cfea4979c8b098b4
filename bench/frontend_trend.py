"""Trend smoothness of the web front with 100,000+ raw points in view, in headless Chromium.

``PYTHONPATH=. .venv/bin/python bench/frontend_trend.py [--hours H] [--interval S] [--steps N]``

Runs the gateway on the embedded default in a temporary directory (as the browser tests do),
writes ``--hours`` of the simulated plant at ``--interval`` seconds per sample (2.95 h at 10 Hz:
106,200 samples per loop), registers one loop, signs in, opens the loop and shows all of its
data (raw: the view is at most the 3-hour raw span). Then it alternates zoom in / zoom out with
the keyboard ``--steps`` times and times each step from the key press until two animation
frames later (React update, slicing, uPlot redraw of every visible point, PV-OP plot, paint),
and counts the browser's long tasks (> 50 ms). Baseline in the same run: the same steps on a
15-minute view (9,000 points). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.e2e.embedded_suite import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Suite,
    built_frontend,
    child_environment,
    realm_with_redirect,
    run_step,
    sign_in,
    start_process,
    stop_process,
)
from tests.harness.servers import free_port, wait_for

LOOP = "TIC208031"  # a sticky valve: a limit cycle, many reversals per screen

STEP_SCRIPT = """async (steps) => {
  const frame = document.querySelector('.trend-frame');
  frame.focus();
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  let longTasks = 0;
  const observer = new PerformanceObserver((list) => { longTasks += list.getEntries().length; });
  observer.observe({ entryTypes: ['longtask'] });
  const times = [];
  for (let i = 0; i < steps; i += 1) {
    const start = performance.now();
    const key = i % 2 === 0 ? '+' : '-';
    frame.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
    await nextFrame();
    await nextFrame();
    times.push(performance.now() - start);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  observer.disconnect();
  return { times, longTasks };
}"""


def samples_shown(page: Page) -> int:
    text = page.get_by_test_id("trend-summary").inner_text()
    return int(text.split(" ", 1)[0].replace(",", ""))


def measure(page: Page, steps: int) -> dict[str, Any]:
    visible = samples_shown(page)
    result = page.evaluate(STEP_SCRIPT, steps)
    times = sorted(result["times"])
    return {
        "points_in_view": visible,
        "step_ms_mean": round(statistics.fmean(times), 1),
        "step_ms_p95": round(times[int(0.95 * (len(times) - 1))], 1),
        "step_ms_max": round(times[-1], 1),
        "long_tasks": result["longTasks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hours", type=float, default=2.95, help="of data; up to 3 h the trend shows it raw"
    )
    parser.add_argument("--interval", type=float, default=0.1, help="seconds per sample")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    built_frontend()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="clpm-bench-") as directory:
        data_dir = Path(directory)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        realm = realm_with_redirect(data_dir / "realm.json", url)
        environment = child_environment(data_dir, port, free_port(), realm)
        environment["API_DEFAULT_LIMIT"] = "100000"  # fewer pages for the 100,000-point read
        log = data_dir / "bench.log"
        run_step(
            [python, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
            environment,
            log,
        )
        started = time.perf_counter()
        run_step(
            [
                python,
                "-m",
                "data_streaming_service",
                "--backfill",
                str(args.hours),
                "--backfill-only",
                "--interval",
                str(args.interval),
            ],
            environment,
            log,
            timeout=900,
        )
        backfill_s = time.perf_counter() - started
        gateway = start_process([python, "-m", "clpm_api_gateway"], environment, log)
        try:
            wait_for(lambda: httpx.get(f"{url}/health").raise_for_status(), gateway, timeout=60)
            suite = Suite(url, data_dir, [LOOP])
            with suite.api("admin") as admin:
                admin.post("/loops", json={"loop_id": LOOP, "unit": "bench"}).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = sign_in(browser, suite, "engineer")
                page.set_default_timeout(120_000)
                opened = time.perf_counter()
                page.goto(f"{url}/fleet/loops/{LOOP}")
                page.get_by_role("button", name="All").click()
                page.wait_for_function(
                    "() => /^[\\d,]{6,} samples/.test("
                    "document.querySelector('[data-testid=trend-summary]')?.textContent ?? '')"
                )
                page.locator(".trend-frame canvas").first.wait_for()
                load_s = time.perf_counter() - opened
                page.wait_for_timeout(1500)  # let the PV-OP plot and sparklines settle
                full = measure(page, args.steps)
                page.get_by_role("button", name="15 min").click()
                page.wait_for_timeout(1500)
                baseline = measure(page, args.steps)
                browser.close()
        finally:
            stop_process(gateway)
        print(
            json.dumps(
                {
                    "samples_per_loop": int(args.hours * 3600 / args.interval),
                    "backfill_s": round(backfill_s, 1),
                    "open_and_draw_all_s": round(load_s, 2),
                    "all_raw": full,
                    "baseline_15_min": baseline,
                    "chromium": subprocess.run(
                        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
                    ).stdout.strip(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
