"""Benchmark: how long the runs browser takes to open on a large runs directory (target < 1 s for 1,000; issue 19: 10,000).

Writes N synthetic run directories (config.toml, status.json, a small
events.jsonl) into a temp dir, then measures, for the TUI in a headless
terminal, the time from starting the app until the runs table holds N rows.
Also prints the part spent in `store.list_runs` alone (reading N status.json), and a refresh's with the
browser's cache (only the runs whose files changed, and the running ones, read again).

    python benchmarks/tui_browser.py [--runs 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from rnnlab import config, store
from rnnlab.tui import make_app

STATES = ("finished", "stopped", "diverged", "failed", "running")
ARCHS = ("lstm", "gru", "elman")


def make_runs(runs_dir: Path, count: int, seed: int = 0) -> None:
    """`count` plausible run directories; written directly (training 1,000 runs would take minutes)."""
    rng = random.Random(seed)
    start = 1_795_000_000.0
    for i in range(count):
        arch = ARCHS[i % len(ARCHS)]
        name = f"bench-{arch}-{i}"
        run = store.RunDir(runs_dir / f"2026{i // 10000:04d}-{i % 10000:06d}-{name}-{i % 65536:04x}")
        run.path.mkdir(parents=True)
        cfg = config.load(None, [f"name={name}", f"model.arch={arch}", f"train.lr={rng.choice((1e-3, 2e-3, 3e-3))}"])
        run.config_path.write_text(cfg.to_toml())
        state = STATES[i % len(STATES)]
        started = start + 60 * i
        # "running" on another host: it stays running (no pid check), like a run watched over SSH.
        run.write_status({
            "id": run.id, "name": name, "arch": arch, "task": "charlm", "state": state, "pid": 1,
            "host": "elsewhere", "step": 3000, "total_steps": 3000, "best_val": 1.2 + rng.random(),
            "last_val": 1.3, "started": started, "ended": started + 500, "updated": started + 500,
            "elapsed": 500.0, "error": None,
        })
        events = [{"kind": "start", "step": 0, "t": 0.0, "run_id": run.id}]
        events += [{"kind": "train", "step": s, "t": s * 0.1, "loss": 3 - s / 20, "lr": 2e-3, "grad_norm": 1.0,
                    "clipped": False, "tokens_per_s": 1e5} for s in range(1, 21)]
        events.append({"kind": "eval", "step": 20, "t": 2.0, "loss": 2.0, "best": True})
        run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))


async def time_open(runs_dir: Path, count: int) -> tuple[float, float, float]:
    """Seconds from app start until the table holds its first rows (a screenful: it adds the rest a chunk per
    repaint), until it holds all `count` rows, and until that frame is painted."""
    from textual.widgets import DataTable

    from rnnlab.tui.screens.runs import RunsScreen

    began, first = time.perf_counter(), None
    app = make_app(runs_dir=runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            screen = app.screen
            rows = screen.query_one(DataTable).row_count if isinstance(screen, RunsScreen) else 0
            if first is None and rows:  # (no pause here: a pause would wait for every chunk)
                first = time.perf_counter() - began
            if rows >= count:
                filled = time.perf_counter() - began
                await pilot.pause()  # let the screen draw the table (layout, column widths, first rows)
                painted = time.perf_counter() - began
                break
            await pilot.pause(0.005)
            if time.perf_counter() - began > 60:
                raise TimeoutError("the table never filled")
    return first, filled, painted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        began = time.perf_counter()
        make_runs(runs_dir, args.runs)
        print(f"wrote {args.runs} run directories in {time.perf_counter() - began:.1f} s")
        listing = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            rows = store.list_runs(runs_dir)
            listing.append(time.perf_counter() - began)
        assert len(rows) == args.runs
        cache: dict = {}
        store.list_runs(runs_dir, cache=cache)
        refresh = []
        for _ in range(args.repeat):  # the browser's 2 s refresh: only changed runs are read again
            began = time.perf_counter()
            store.list_runs(runs_dir, cache=cache)
            refresh.append(time.perf_counter() - began)
        timings = [asyncio.run(time_open(runs_dir, args.runs)) for _ in range(args.repeat)]
        first, opening, painting = [t[0] for t in timings], [t[1] for t in timings], [t[2] for t in timings]
    print(f"store.list_runs: median {statistics.median(listing) * 1000:.0f} ms "
          f"(min {min(listing) * 1000:.0f}, max {max(listing) * 1000:.0f})")
    print(f"store.list_runs, a refresh with its cache (the browser's, every 2 s; the {args.runs // 5} 'running' "
          f"runs read again): median {statistics.median(refresh) * 1000:.0f} ms")
    print(f"app start -> first rows in the table: median {statistics.median(first):.3f} s "
          f"(min {min(first):.3f}, max {max(first):.3f}); target < 1 s")
    print(f"app start -> table with {args.runs} rows: median {statistics.median(opening):.3f} s "
          f"(min {min(opening):.3f}, max {max(opening):.3f})")
    print(f"  ... and drawn on screen: median {statistics.median(painting):.3f} s "
          f"(min {min(painting):.3f}, max {max(painting):.3f})")


if __name__ == "__main__":
    main()
