"""Benchmark: what the probes cost. The same run with probes at their default
cadence and with probes off, one after the other (after a warm-up), on CPU.

Prints training throughput (tokens over the wall time to the last step, probe
time included) for both and the ratio on/off (target >= 0.95), and checks that
the probes changed nothing: the two loss curves must be identical.

    python benchmarks/probes_overhead.py [--config experiments/quickstart.toml] [--steps 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rnnlab import config, store
from rnnlab.train import Trainer, prepare

ROOT = Path(__file__).resolve().parent.parent


def train(cfg: config.Config) -> dict:
    prepared = prepare(cfg)
    with tempfile.TemporaryDirectory() as runs_dir:
        run = store.create_run(Path(runs_dir), cfg.name)
        outcome = Trainer(prepared, run).train()
        assert outcome.state == "finished", outcome.error
        events = run.read_events()
    train_events = [e for e in events if e["kind"] == "train"]
    probe_kinds = {"gradnorm", "gradflow", "gates", "spectrum"}
    tokens = cfg.train.batch_size * cfg.task.seq_len * len(train_events)
    return {
        "steps": len(train_events), "seconds": train_events[-1]["t"],
        "tokens_per_s": tokens / train_events[-1]["t"],
        "probes": sum(e["kind"] in probe_kinds for e in events),
        "jacobians": sum(e["kind"] == "spectrum" and "jacobian" in e for e in events),
        "losses": [e["loss"] for e in train_events],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "quickstart.toml"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup-steps", type=int, default=100)
    args = parser.parse_args()

    base = ["device=cpu", f"train.steps={args.steps}", "train.eval_every=0", "train.checkpoint_every=0"]
    on = config.load(args.config, base)  # probes at their defaults
    off = config.load(args.config, base + ["probes.every=0"])
    print(f"{args.config}: {on.model.arch} {on.model.layers}x{on.model.hidden}, batch {on.train.batch_size}x"
          f"{on.task.seq_len}, {args.steps} steps; probes every {on.probes.every}, Jacobian every "
          f"{on.probes.jacobian_every}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    train(config.load(args.config, base + ["probes.every=0", f"train.steps={args.warmup_steps}"]))  # warm-up
    results = {"off": train(off), "on": train(on)}
    print(f"\n{'':6}{'steps':>7}{'seconds':>9}{'tokens/s':>10}{'probe events':>14}{'jacobians':>11}")
    for name, r in results.items():
        print(f"{name:6}{r['steps']:>7}{r['seconds']:>9.1f}{r['tokens_per_s']:>10.0f}{r['probes']:>14}{r['jacobians']:>11}")
    ratio = results["on"]["tokens_per_s"] / results["off"]["tokens_per_s"]
    print(f"\nthroughput probes on / off: {ratio:.3f} ({'ok' if ratio >= 0.95 else 'BELOW'} target >= 0.95)")
    same = results["on"]["losses"] == results["off"]["losses"]
    print(f"losses identical with and without probes: {same}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f}s in all)")
