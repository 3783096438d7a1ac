"""Tiny experiments that train in well under a second on CPU."""

from __future__ import annotations

from pathlib import Path

from rnnlab import config

TEXT = (
    "the quick brown fox jumps over the lazy dog. " * 40
    + "a stitch in time saves nine; all that glitters is not gold. " * 40
)


def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def overrides(tmp_path: Path, **extra) -> list[str]:
    """--set strings for a tiny run; keyword arguments override (train__steps=5 -> train.steps=5)."""
    values = {
        "device": "cpu", "task.corpus": str(corpus(tmp_path)), "task.seq_len": 16,
        "model.hidden": 16, "model.layers": 1, "model.embed": 8,
        "train.steps": 12, "train.batch_size": 4, "train.eval_every": 4, "train.eval_batches": 2,
        "train.checkpoint_every": 4,
    }
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in values.items()]


def tiny_config(tmp_path: Path, **extra) -> config.Config:
    return config.load(None, overrides(tmp_path, **extra))


def sweep_file(tmp_path: Path, sweep: str, steps: int = 12, every: int = 4, name: str = "swp") -> Path:
    """A tiny charlm experiment file (only keys every arch has) with `sweep` as its [sweep] table's body."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""name = "{name}"
device = "cpu"
threads = 1
[model]
hidden = 16
layers = 1
embed = 8
[task]
corpus = "{corpus(tmp_path)}"
seq_len = 16
[train]
steps = {steps}
batch_size = 4
eval_every = {every}
eval_batches = 2
checkpoint_every = {every}
[probes]
every = 0
[sweep]
{sweep}
""", encoding="utf-8")
    return path
