"""Benchmark: the task table — train each task's preset, then score its best checkpoint on fresh data.

Each preset is trained exactly as `rnnlab run PRESET` trains it (a subprocess,
into a scratch runs directory), then its best checkpoint is evaluated again,
on more data than training's periodic evaluations use: generated tasks on
`--sequences` fresh sequences (10,000 by default, the literature's success
criterion: under 1% errors on 10,000 sequences), language models and time
series on their whole validation text. Prints task, preset, arch, the best
checkpoint's step of the steps trained, the loss beside the task's baseline, the task's headline
metric and the training time.

    python benchmarks/task_table.py [PRESET ...] [--sequences 10000] [--runs-dir DIR]

Without presets it runs one per task (about 20 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from rnnlab import config, store
from rnnlab.models import build_model
from rnnlab.tasks import build_task
from rnnlab.train import checkpoint
from rnnlab.train.evaluation import validation_metrics

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
ONE_PER_TASK = [
    "copy-lstm", "ntm-copy", "adding-lstm", "temporal-order-lstm", "latch-lstm", "parity-lstm", "delay-recall",
    "birnn-flank-sum", "markov-source-lstm", "seq2seq-reverse", "seq2seq-sort", "seq2seq-addition",
    "seq2seq-dates", "seq2seq-translate", "mackey-glass-gru", "esn-mackey-glass", "narma10-lstm", "esn-narma10",
    "sines-gru", "quickstart", "bpe-lstm", "word-lstm", "read30-charlm",
]
# The first of these a task reports is its headline: what "solved" is judged on.
HEADLINES = [("error_rate", "error rate", "{:.2%}"), ("exact", "exact match", "{:.1%}"), ("nrmse_continuous", "NRMSE", "{:.4f}"),
             ("nrmse", "NRMSE (windows)", "{:.3f}"),
             ("mse", "MSE", "{:.4f}"), ("bpc", "bits/char", "{:.3f}")]


def train(preset: Path, runs_dir: Path) -> tuple[store.RunDir, float]:
    """Train one preset headless; the run directory and the wall time."""
    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnlab", "run", str(preset), "--quiet", "--runs-dir", str(runs_dir)],
                   check=True)
    seconds = time.perf_counter() - start
    (new,) = set(runs_dir.iterdir()) - before
    return store.RunDir(new), seconds


@torch.no_grad()
def rescore(run: store.RunDir, sequences: int) -> tuple[dict, object, config.Config, int]:
    """Validation metrics of the run's best checkpoint over enough batches for `sequences` sequences."""
    cfg = config.load(run.config_path)
    task = build_task(cfg.task, cfg.seed)
    model = build_model(cfg.model, task.spec)
    saved = checkpoint.load_for_run(run, "best")
    model.load_state_dict(saved["model"])
    batches = max(cfg.train.eval_batches, math.ceil(sequences / cfg.train.batch_size))
    tc = dataclasses.replace(cfg.train, eval_batches=batches)
    metrics = validation_metrics(model, task, tc, torch.device("cpu"), contextlib.nullcontext())
    return metrics, task, cfg, saved["step"]


def extras(metrics: dict) -> str:
    """What else tells the story: success, BLEU, the n-gram model, unknown words, free-running error."""
    parts = []
    if metrics.get("success") is not None:  # the adding problem's standard variant is judged on its MSE
        parts.append("success" if metrics["success"] else "not solved")
    elif "solved" in metrics:
        parts.append("solved (MSE < 0.01)" if metrics["solved"] else "not solved (MSE >= 0.01)")
    if "accuracy" in metrics:
        parts.append(f"{metrics['accuracy']:.1%} within 0.04")
    if "bleu" in metrics:
        parts.append(f"BLEU {metrics['bleu']:.1f}")
    if "ngram_bpc" in metrics:
        parts.append(f"KN n-gram {metrics['ngram_bpc']:.3f} bits/char")
    if "oov" in metrics:
        parts.append(f"<unk> {metrics['oov']:.1%}")
    for protocol in ("_continuous", ""):  # docs/series.md: the metric names say the protocol
        if f"persistence_nrmse{protocol}" in metrics:
            parts.append(f"persistence NRMSE {metrics[f'persistence_nrmse{protocol}']:.3f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("presets", nargs="*", default=ONE_PER_TASK, help="preset names (experiments/NAME.toml)")
    parser.add_argument("--sequences", type=int, default=10_000, help="fresh sequences to score a generated task on")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the runs here [default: a temp dir]")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))

    table = Table(title=f"tasks: best checkpoints rescored on {args.sequences:,} sequences (or the whole val text)")
    for column in ("task", "preset", "arch", "best/steps", "loss", "baseline", "headline", "also", "train s"):
        table.add_column(column, justify="right" if column in ("best/steps", "train s") else "left")
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or Path(scratch)
        for name in args.presets:
            run, seconds = train(EXPERIMENTS / f"{name}.toml", runs_dir)
            metrics, task, cfg, step = rescore(run, args.sequences)
            headline = next((f"{label} {fmt.format(metrics[key])}" for key, label, fmt in HEADLINES
                             if key in metrics), "")
            baseline = (f"{metrics['baseline']:.4g} ({task.baseline_label})"
                        if metrics.get("baseline") is not None else "")
            row = (cfg.task.name, name, cfg.model.arch, f"{step}/{cfg.train.steps}",
                   f"{metrics['loss']:.4g} {task.loss_unit}", baseline, headline, extras(metrics), f"{seconds:.0f}")
            print("  ".join(row), flush=True)  # a line per preset as it finishes, the table at the end
            table.add_row(*row)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
