"""Benchmark: how long `n` takes to open the launch screen and `c` to resume a run, key press to screen.

In a headless app (120x40) driven by Pilot:

- n: from the key to the LaunchScreen's mount (Screen._on_mount, so imports made on the way count) and
  to its form being ready (validated); "cold" presses n 50 ms after the app starts, "warm" after 5 s.
- c: on a stopped tiny run (a real trainer, hidden 16), from the key to the header's "resuming" line
  and to the first step of the resumed trainer (its start-up: torch, the task, the checkpoint).

    python benchmarks/tui_open_times.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import textual.screen

from rnnlab import store, worker
from rnnlab.tui import make_app
from rnnlab.tui.screens.runs import RunsScreen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny import overrides  # noqa: E402

MOUNTED: dict[str, float] = {}
_original_on_mount = textual.screen.Screen._on_mount


def _on_mount(self, event):
    MOUNTED.setdefault(type(self).__name__, time.perf_counter())
    return _original_on_mount(self, event)


textual.screen.Screen._on_mount = _on_mount


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError
        await pilot.pause(0.005)


async def time_n(wait: float) -> tuple[float, float]:
    MOUNTED.clear()
    app = make_app(runs_dir=Path(tempfile.mkdtemp()))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause(wait)
        start = time.perf_counter()
        await pilot.press("n")
        await until(pilot, lambda: getattr(app.screen, "valid", False))
        return MOUNTED["LaunchScreen"] - start, time.perf_counter() - start


async def time_c(tmp: Path) -> tuple[float | None, float]:
    runs_dir = tmp / "runs"
    process = worker.start(runs_dir, None, overrides(tmp, train__steps=100000, train__eval_every=0,
                                                     train__checkpoint_every=0), log=tmp / "run.log")
    run = store.find_new_run(runs_dir, set(), process)
    app = make_app(runs_dir=runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_live(run, process)
        await until(pilot, lambda: getattr(app.screen, "curves", None) is not None and app.screen.curves.step > 2)
        screen = app.screen
        await pilot.press("s")
        await until(pilot, lambda: screen.state == "stopped" and process.poll() is not None)
        stopped_at = screen.curves.step
        start = time.perf_counter()
        await pilot.press("c")
        header = screen.query_one("#header")
        notice = None
        while screen.curves.step <= stopped_at or screen.curves.train_loss.xs[-1] <= stopped_at:
            if notice is None and "resuming" in header.render().plain:
                notice = time.perf_counter() - start
            await pilot.pause(0.005)
        resumed = time.perf_counter() - start
        await pilot.press("s")
        screen.process.wait(30)
    return notice, resumed


def one(kind: str) -> list[float | None]:
    if kind == "c":
        with tempfile.TemporaryDirectory() as tmp:
            return list(asyncio.run(time_c(Path(tmp))))
    return list(asyncio.run(time_n(0.05 if kind == "n-cold" else 5.0)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", choices=("n-cold", "n-warm", "c"), help="one measurement, in this process")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    for kind in ("n-cold", "n-warm", "c"):  # each in a fresh process: torch is imported once per process
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--one", kind], check=True, text=True,
                                          capture_output=True).stdout.splitlines()[-1]) for _ in range(args.repeat)]
        first = [r[0] for r in runs if r[0] is not None]
        shown = " ".join(f"{v:.2f}" for v in first) or "never"
        if kind == "c":
            print(f"c: 'resuming' line after {shown} s; training again after "
                  f"{' '.join(f'{r[1]:.1f}' for r in runs)} s")
        else:
            print(f"{kind}: screen mounted after {shown} s; form ready after "
                  f"{' '.join(f'{r[1]:.2f}' for r in runs)} s")


if __name__ == "__main__":
    main()
