"""Benchmark: start-up, from `rnnlab run` to its first training step, against what torch itself costs.

Issue 17's target: the first step within 1 s of `import torch` plus one optimizer construction (and one step of
it) on the same machine. Both are measured here as fresh processes, alternated, best of --repeats:

- the floor: `python -c "import torch; Adam(...).step()"`, the wall time of the whole process;
- rnnlab: `rnnlab run CONFIG --set train.steps=1 --json --runs-dir TMP`, the wall time until the first
  `train` event reaches stdout (so what is after the step, evaluation and checkpoints, is not counted),
  with the corpus cache warm (a cache of the benchmark's own, filled by one run first: every run after a
  user's first on a corpus) and with it off (RNNLAB_CACHE=off: a corpus seen for the first time).

    python benchmarks/startup.py [--config experiments/quickstart.toml] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ("import torch\n"
         "w = torch.zeros(4, requires_grad=True)\n"
         "opt = torch.optim.Adam([w], lr=1e-3)\n"
         "(w * w).sum().backward()\n"
         "opt.step()\n")


def floor_seconds(env: dict) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR], check=True, env=env)
    return time.perf_counter() - began


def first_step_seconds(config: str, env: dict) -> tuple[float, float]:
    """(seconds to the first train event, seconds of the whole command)."""
    with tempfile.TemporaryDirectory() as runs:
        began = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "rnnlab", "run", config, "--set", "train.steps=1",
                                  "--json", "--runs-dir", runs], stdout=subprocess.PIPE, text=True, env=env,
                                 cwd=ROOT)
        first = None
        for line in child.stdout:
            if first is None and json.loads(line).get("kind") == "train":
                first = time.perf_counter() - began
        child.wait()
        if child.returncode != 0 or first is None:
            raise SystemExit(f"rnnlab run failed (exit {child.returncode})")
        return first, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/quickstart.toml")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory() as cache:
        warm, cold = {**env, "RNNLAB_CACHE": cache}, {**env, "RNNLAB_CACHE": "off"}
        first_step_seconds(args.config, warm)  # fills the cache
        floors, firsts, wholes, colds = [], [], [], []
        for _ in range(args.repeats):  # alternated: a busy neighbour slows all alike
            floors.append(floor_seconds(env))
            first, whole = first_step_seconds(args.config, warm)
            firsts.append(first)
            wholes.append(whole)
            colds.append(first_step_seconds(args.config, cold)[0])
    floor, first = min(floors), min(firsts)
    print(f"import torch + Adam + one step (a process): best {floor:.2f} s of {listed(floors)}")
    print(f"rnnlab run {args.config} to its first train event, corpus cached: best {first:.2f} s of "
          f"{listed(firsts)} (whole command {min(wholes):.2f} s)")
    print(f"the same with the corpus cache off: best {min(colds):.2f} s of {listed(colds)}")
    verdict = "ok" if first - floor <= 1.0 else "OVER"
    print(f"difference, cached: {first - floor:+.2f} s ({verdict}: target <= 1 s); "
          f"uncached: {min(colds) - floor:+.2f} s")


def listed(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


if __name__ == "__main__":
    main()
