"""Benchmark: what running trials through `rnnlab sweep` costs, beyond the training itself.

A 24-trial sweep of tiny charlm runs (3 archs x 4 hidden sizes x 2 seeds, `--steps` steps each, one
torch thread per trial) is run three ways, each from a fresh runs directory:

  1. `rnnlab sweep FILE --workers 2`: the time from the command to the first trial's first step
     (its status `started` plus the `t` of its first `train` event), the wall time, and the per-trial
     overhead: (wall x workers - the trials' summed training time) / trials (target < 1 s);
  2. `rnnlab sweep FILE --workers 1`: the same pool, one worker;
  3. the trials one by one, each its own `rnnlab run` process (what a shell loop would do).

Parallel efficiency = (one by one) / (2 workers' wall x 2), and the same against the 1-worker sweep.

    python benchmarks/sweep_overhead.py [--steps 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnlab import store
from rnnlab.sweeps.driver import new_sweep

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from tiny import sweep_file  # noqa: E402

SWEEP = '"model.arch" = ["elman", "gru", "lstm"]\n"model.hidden" = [8, 16, 24, 32]\nseeds = [0, 1]\n'


def experiment(folder: Path, steps: int) -> Path:
    """Tiny trials: no evaluation or checkpoint but the final ones."""
    return sweep_file(folder, SWEEP, steps=steps, every=0, name="bench")


def trained_seconds(runs_dir: Path) -> tuple[float, float, int]:
    """(summed training time, the wall time of the first trial's first step, trials finished)."""
    total, first, done = 0.0, float("inf"), 0
    for summary in store.list_runs(runs_dir):
        run = store.RunDir(summary.path)
        status = run.read_status()
        done += status["state"] == "finished"
        total += status.get("elapsed") or 0.0
        first_train = next((e for e in run.read_events() if e["kind"] == "train"), None)
        if first_train is not None:
            first = min(first, status["started"] + first_train["t"])
    return total, first, done


def sweep(path: Path, runs_dir: Path, workers: int) -> dict:
    began = time.time()
    subprocess.run([sys.executable, "-m", "rnnlab", "sweep", str(path), "--workers", str(workers), "--quiet",
                    "--runs-dir", str(runs_dir)], check=True)
    wall = time.time() - began
    trained, first, done = trained_seconds(runs_dir)
    return {"wall": wall, "trained": trained, "first_step": first - began, "done": done,
            "overhead": (wall * workers - trained) / done}


def one_by_one(path: Path, runs_dir: Path) -> dict:
    """The same 24 trials as separate `rnnlab run` processes (the sweep's own trial overrides)."""
    plan_dir = runs_dir.parent / "plan"
    trials = new_sweep(path, [], [], plan_dir).record["trials"]
    began = time.time()
    for trial in trials:
        command = [sys.executable, "-m", "rnnlab", "run", str(path), "--quiet", "--runs-dir", str(runs_dir)]
        for text in trial["overrides"]:
            command += ["--set", text]
        subprocess.run(command, check=True)
    wall = time.time() - began
    trained, _, done = trained_seconds(runs_dir)
    return {"wall": wall, "trained": trained, "done": done, "overhead": (wall - trained) / done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        path = experiment(folder, args.steps)
        pool = sweep(path, folder / "pool", args.workers)
        single = sweep(path, folder / "single", 1)
        serial = one_by_one(path, folder / "serial")
    print(json.dumps({"pool": pool, "single_worker": single, "one_by_one": serial}, indent=1))
    print(f"{pool['done']} trials of {args.steps} steps; {args.workers} workers")
    print(f"first trial's first step: {pool['first_step']:.2f} s after the command")
    print(f"per-trial overhead: {pool['overhead']:.3f} s with {args.workers} workers, {single['overhead']:.3f} s "
          f"with 1, {serial['overhead']:.3f} s as separate `rnnlab run` processes")
    print(f"wall: {pool['wall']:.1f} s ({args.workers} workers), {single['wall']:.1f} s (1 worker), "
          f"{serial['wall']:.1f} s (one by one)")
    print(f"parallel efficiency (speedup / workers): {single['wall'] / (pool['wall'] * args.workers):.2f} against "
          f"the 1-worker sweep; {serial['wall'] / (pool['wall'] * args.workers):.2f} against one by one (a speedup "
          f"of {serial['wall'] / pool['wall']:.1f}x: each separate process imports torch again)")


if __name__ == "__main__":
    main()
