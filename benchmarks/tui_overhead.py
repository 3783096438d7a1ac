"""Benchmark: does watching a run in the app slow training down?

Trains the same run twice as `rnnlab run` child processes (exactly what the
app launches): once alone, once with the app (headless, same process as this
script, same 2 cores) showing its live screen until the run ends. Prints both
throughputs (tokens over the wall time to the last step, from the run's own
events) and the ratio watched/alone (target >= 0.9).

    python benchmarks/tui_overhead.py [--steps 400]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rnnlab import store, worker
from rnnlab.tui import make_app

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "experiments" / "quickstart.toml"


def throughput(run: store.RunDir, tokens_per_step: int) -> tuple[int, float]:
    train = [e for e in run.read_events() if e["kind"] == "train"]
    return len(train), len(train) * tokens_per_step / train[-1]["t"]


def start(runs_dir: Path, steps: int):
    overrides = ["device=cpu", f"train.steps={steps}", "train.eval_every=100", "train.checkpoint_every=0"]
    process = worker.start(runs_dir, PRESET, overrides, log=runs_dir / "log.txt")
    run = store.find_new_run(runs_dir, set(), process)
    assert run is not None, (runs_dir / "log.txt").read_text()
    return process, run


async def watched(runs_dir: Path, steps: int) -> store.RunDir:
    app = make_app(runs_dir=runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        process, run = start(runs_dir, steps)
        app.open_live(run, process)
        while process.poll() is None:  # the app repaints as events arrive, as it would for a user
            await pilot.pause(0.2)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    tokens_per_step = 32 * 128  # the quickstart preset's batch x seq_len
    with tempfile.TemporaryDirectory() as tmp:
        alone_dir, watched_dir = Path(tmp) / "alone", Path(tmp) / "watched"
        alone_dir.mkdir(), watched_dir.mkdir()
        began = time.perf_counter()
        process, alone = start(alone_dir, args.steps)
        process.wait()
        print(f"alone:   done in {time.perf_counter() - began:.0f}s")
        began = time.perf_counter()
        shown = asyncio.run(watched(watched_dir, args.steps))
        print(f"watched: done in {time.perf_counter() - began:.0f}s")
        steps_a, rate_a = throughput(alone, tokens_per_step)
        steps_b, rate_b = throughput(shown, tokens_per_step)
    print(f"\n{'':9}{'steps':>7}{'tokens/s':>10}")
    print(f"{'alone':9}{steps_a:>7}{rate_a:>10.0f}\n{'watched':9}{steps_b:>7}{rate_b:>10.0f}")
    ratio = rate_b / rate_a
    print(f"\nthroughput watched / alone: {ratio:.3f} ({'ok' if ratio >= 0.9 else 'BELOW'} target >= 0.9)")


if __name__ == "__main__":
    main()
