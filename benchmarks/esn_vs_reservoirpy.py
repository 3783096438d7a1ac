"""Benchmark: rnnlab's echo state network beside ReservoirPy's, on ReservoirPy's own Mackey-Glass series.

ReservoirPy's tutorial setting (300 units, spectral radius 1.25, leak 0.3, W 10% connected, input scaling 1,
ridge 1e-8; fit on the first 2,000 steps with a 100-step warm-up, predict the next 2,000 one step ahead with
the state carried on), for each seed:

  series      reservoirpy.datasets.mackey_glass(4001, tau=17, seed=S) (RK4, h = 1, a random history around
              x0 = 1.2), standardised by the mean and std of its first 2,001 values
  reservoirpy Reservoir(300, sr=1.25, lr=0.3, rc_connectivity=0.1, input_connectivity=1, seed=S) >> Ridge(1e-8),
              fitted with warmup=100, run on steps 2,000-3,999
  rnnlab      experiments/esn-mackey-glass.toml on the same values saved as an .npy (task.name = "series_file",
              so the series is identical), seed S: nrmse_continuous of its eval event

Both columns are RMSE / std of the target over the 2,000 scored steps (rnnlab's NRMSE; ReservoirPy's own
`nrmse` divides by the range max - min instead, ~4x smaller on this series, shown in the last column).
The two libraries draw their random reservoirs differently, so a seed is a different reservoir in each:
compare the spread over seeds, not seed by seed.

Needs ReservoirPy, which rnnlab does not depend on: `pip install reservoirpy` into rnnlab's venv (it adds
scipy; measured with reservoirpy 0.4.2, numpy 2.4). Without it the script says so and exits 2.
Measured (2 busy cores, ~3 min): rnnlab 2.1e-3, 4.7e-4, 1.3e-3, 5.7e-4, 6.5e-4 for seeds 0-4 (geometric mean
8.7e-4); ReservoirPy 1.4e-3, 1.2e-3, 1.2e-3, 1.9e-3, 1.8e-3 (1.5e-3): the same range.

    python benchmarks/esn_vs_reservoirpy.py [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from rnnlab import config, store
from rnnlab.train import Trainer, prepare

PRESET = Path(__file__).resolve().parent.parent / "experiments" / "esn-mackey-glass.toml"
FIT, SCORED, WARMUP = 2000, 2000, 100


def reservoirpy_score(series: np.ndarray, seed: int) -> tuple[float, float]:
    """ReservoirPy's tutorial ESN on the standardised series (T,): (RMSE / std, RMSE / range) of its forecast."""
    from reservoirpy.nodes import Reservoir, Ridge
    x = series[:, None]  # (T, 1)
    esn = Reservoir(300, sr=1.25, lr=0.3, rc_connectivity=0.1, input_connectivity=1.0, input_scaling=1.0,
                    seed=seed) >> Ridge(ridge=1e-8)
    esn.fit(x[:FIT], x[1:FIT + 1], warmup=WARMUP)
    predicted = esn.run(x[FIT:FIT + SCORED])  # (SCORED, 1): the state carried on from the fit
    target = x[FIT + 1:FIT + SCORED + 1]
    rmse = float(np.sqrt(np.mean((predicted - target) ** 2)))
    return rmse / float(target.std()), rmse / float(target.max() - target.min())


def rnnlab_score(path: Path, seed: int, runs: Path) -> float:
    cfg = config.load(PRESET, ["task.name=series_file", f"task.path={path}", f"seed={seed}", "probes.every=0",
                               "device=cpu", "train.checkpoint_every=0"])
    run = store.create_run(runs, cfg.name)
    Trainer(prepare(cfg), run).train()
    return [e for e in run.read_events() if e["kind"] == "eval"][-1]["nrmse_continuous"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    try:
        from reservoirpy.datasets import mackey_glass
    except ImportError:
        print("esn_vs_reservoirpy: needs reservoirpy (pip install reservoirpy), which rnnlab does not depend on",
              file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(1)
    print("| seed | rnnlab | reservoirpy | reservoirpy, RMSE / range |")
    print("|---|---|---|---|")
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            raw = mackey_glass(FIT + SCORED + 1, tau=17, seed=seed).ravel()  # (4001,)
            # rnnlab's series_file standardises by the training part (its first FIT + 1 values: FIT pairs)
            standard = (raw - raw[:FIT + 1].mean()) / raw[:FIT + 1].std()
            path = Path(scratch) / f"mackey-glass-{seed}.npy"
            np.save(path, raw)
            mine = rnnlab_score(path, seed, Path(scratch) / "runs")
            by_std, by_range = reservoirpy_score(standard, seed)
            ours.append(mine)
            theirs.append(by_std)
            print(f"| {seed} | {mine:.2e} | {by_std:.2e} | {by_range:.2e} |")
    geo = lambda values: math.exp(statistics.fmean(math.log(v) for v in values))  # noqa: E731 (NRMSEs span decades)
    print(f"\ngeometric mean: rnnlab {geo(ours):.2e}, reservoirpy {geo(theirs):.2e} (RMSE / std of the target)")


if __name__ == "__main__":
    main()
