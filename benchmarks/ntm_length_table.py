"""Benchmark: length generalisation on copy, NTM against LSTM (Graves et al. 2014, figures 4-6).

Trains each preset for each seed exactly as `rnnlab run PRESET --set seed=S` does (a subprocess with
OMP_NUM_THREADS=1, at most --jobs at a time: the NTM's many tiny ops gain nothing from a second
thread on a busy machine), then prints, per preset, the final evaluation's error rate (wrong copied
symbols / copied symbols) over the trained range of copy lengths (`task.train_lengths`) and at each
of `task.eval_lengths` (the `by_length` field of the eval event, each length on its own fixed batches),
one row per seed, as Markdown, with each run's steps and CPU seconds.

    python benchmarks/ntm_length_table.py [PRESET ...] [--seeds 0,1,2] [--jobs 2] [--runs-dir DIR]
    python benchmarks/ntm_length_table.py --tabulate DIR     # the tables of runs already made into DIR

Without presets: experiments/ntm-copy.toml and experiments/ntm-copy-lstm-baseline.toml (about 100 CPU
seconds per NTM run and 40 per LSTM run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rnnlab import store

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
DEFAULT = [EXPERIMENTS / "ntm-copy.toml", EXPERIMENTS / "ntm-copy-lstm-baseline.toml"]
CPU_FILE = "cpu_seconds"  # written into each run directory by this script: the trainer's user + system time


def train(preset: Path, seed: int, runs_dir: Path) -> None:
    """One headless run into runs_dir/<preset>-<seed>/; its CPU seconds beside it."""
    folder = runs_dir / f"{preset.stem}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=False)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "rnnlab", "run", str(preset), "--quiet", "--runs-dir",
                                str(folder), "--set", f"seed={seed}"], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{preset.name} seed {seed} failed (exit {os.waitstatus_to_exitcode(status)})")
    (run,) = folder.iterdir()
    (run / CPU_FILE).write_text(f"{usage.ru_utime + usage.ru_stime:.1f}\n")


def last_eval(run: store.RunDir) -> dict:
    evals = [e for e in run.read_events() if e.get("kind") == "eval"]
    if not evals or "by_length" not in evals[-1]:
        raise SystemExit(f"{run.path}: no eval event with by_length (does the preset set task.eval_lengths?)")
    return evals[-1]


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(name: str, runs: list[tuple[int, store.RunDir]]) -> str:
    """Markdown: one row per seed; the trained range, then each longer length (its multiple of the range's max)."""
    evals = [(seed, run, last_eval(run)) for seed, run in runs]
    low, high = evals[0][2]["trained_lengths"]
    lengths = sorted({int(n) for _, _, e in evals for n in e["by_length"]})
    header = [f"seed", f"trained {low}-{high}", *[f"{n} ({n / high:g}x)" for n in lengths], "steps", "CPU s"]
    lines = [f"**{name}** (error rate: wrong copied symbols; copy lengths)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for seed, run, event in evals:
        cpu = run.path / CPU_FILE
        cells = [str(seed), percent(event.get("error_rate")),
                 *[percent(event["by_length"].get(str(n), {}).get("error_rate")) for n in lengths],
                 str(event["step"]), cpu.read_text().strip() if cpu.exists() else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tabulate(runs_dir: Path) -> str:
    groups: dict[str, list[tuple[int, store.RunDir]]] = {}
    for folder in sorted(runs_dir.iterdir()):
        if not folder.is_dir() or "-seed" not in folder.name:
            continue
        preset, seed = folder.name.rsplit("-seed", 1)
        for run in folder.iterdir():
            if run.is_dir():
                groups.setdefault(preset, []).append((int(seed), store.RunDir(run)))
    if not groups:
        raise SystemExit(f"{runs_dir}: no runs made by this script")
    return "\n\n".join(table(preset, sorted(runs, key=lambda r: r[0])) for preset, runs in groups.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the runs go (default: a new temp dir)")
    parser.add_argument("--tabulate", type=Path, default=None, help="only print the tables of runs in DIR")
    args = parser.parse_args()
    if args.tabulate:
        print(tabulate(args.tabulate))
        return
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="ntm-lengths-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        for future in [pool.submit(train, p, s, runs_dir) for p in args.presets for s in seeds]:
            future.result()
    print(tabulate(runs_dir))
    print(f"\n{len(args.presets) * len(seeds)} runs in {time.perf_counter() - start:.0f} s wall, into {runs_dir}")


if __name__ == "__main__":
    main()
