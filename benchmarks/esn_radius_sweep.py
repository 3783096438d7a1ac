"""Benchmark: the spectral radius of an echo state network on Mackey-Glass, scored by both protocols.

The classic sweep (Jaeger; Lukosevicius 2012, "A practical guide to applying ESNs"): the one-step NRMSE
against W's spectral radius. Three trainings, each scored two ways (task.protocol):

  old         the older esn-mackey-glass preset: leak 1, alpha 1e-6, fitted on 20 batches of 32 random
              100-step windows, each from a zero state
  tut-win     ReservoirPy's tutorial reservoir (leak 0.3, alpha 1e-8) fitted that same windowed way
              (washout 0): the `rnnlab run` protocol an auditor compared with ReservoirPy
  tutorial    experiments/esn-mackey-glass.toml, the tutorial setting: one 2,000-step fit, washout 100

  windows     the held-out part in seq_len windows from a zero state, every step scored (tutorial: the
              next 2,000 steps as one window)
  cont        the held-out stretch after a 100-step warm-up that is run but not scored

Every run is an ordinary `rnnlab` training (library calls, a scratch runs directory); each cell is the
geometric mean over the seeds (NRMSEs span decades), the best radius of each column is starred.

    python benchmarks/esn_radius_sweep.py [--radii 0.3 0.5 ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from rnnlab import config, store
from rnnlab.train import Trainer, prepare

PRESET = Path(__file__).resolve().parent.parent / "experiments" / "esn-mackey-glass.toml"
WINDOWED_FIT = ["model.washout=0", "task.length=20000", "task.eval_steps=0", "task.seq_len=100", "train.steps=20",
                "train.batch_size=32", "train.eval_batches=10"]
SETTINGS = {"old": WINDOWED_FIT + ["model.leak=1.0", "train.ridge_alpha=1e-6"], "tut-win": WINDOWED_FIT,
            "tutorial": []}
PROTOCOLS = {"windows": "nrmse", "continuous": "nrmse_continuous"}
SHORT = {"windows": "windows", "continuous": "cont"}


def score(sets: list[str], runs: Path) -> float:
    cfg = config.load(PRESET, sets + ["probes.every=0", "device=cpu", "train.checkpoint_every=0"])
    run = store.create_run(runs, cfg.name)
    Trainer(prepare(cfg), run).train()
    last = [e for e in run.read_events() if e["kind"] == "eval"][-1]
    return last[PROTOCOLS[cfg.task.protocol]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radii", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9, 1.1, 1.25, 1.5, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    columns = [(setting, protocol) for setting in SETTINGS for protocol in PROTOCOLS]
    table, started = {}, time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        for radius in args.radii:
            for setting, protocol in columns:
                values = [score(SETTINGS[setting] + [f"model.spectral_radius={radius}", f"task.protocol={protocol}",
                                                     f"seed={seed}"], Path(runs)) for seed in args.seeds]
                table[radius, setting, protocol] = math.exp(sum(map(math.log, values)) / len(values)), values
    best = {column: min(args.radii, key=lambda r: table[(r, *column)][0]) for column in columns}
    print(f"NRMSE, geometric mean over seeds {args.seeds} ({time.perf_counter() - started:.0f} s in all)")
    print("radius  " + "  ".join(f"{s + ' ' + SHORT[p]:>17}" for s, p in columns))
    for radius in args.radii:
        cells = [f"{table[(radius, *c)][0]:.2e}{'*' if best[c] == radius else ' '}" for c in columns]
        print(f"{radius:<6}  " + "  ".join(f"{cell:>17}" for cell in cells))
    for column in columns:
        spread = ", ".join(f"{v:.2e}" for v in table[(best[column], *column)][1])
        print(f"best {' '.join(column)}: radius {best[column]} (seeds: {spread})")


if __name__ == "__main__":
    main()
