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


def experiment_tables(tmp_path: Path, steps: int, every: int) -> str:
    """The [model] .. [probes] tables of a tiny charlm experiment (only keys every arch has), as TOML."""
    return f"""[model]
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
"""


def sweep_file(tmp_path: Path, sweep: str, steps: int = 12, every: int = 4, name: str = "swp") -> Path:
    """A tiny charlm experiment file (only keys every arch has) with `sweep` as its [sweep] table's body."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""name = "{name}"
device = "cpu"
threads = 1
{experiment_tables(tmp_path, steps, every)}[sweep]
{sweep}
""", encoding="utf-8")
    return path


def interrupt_sweep(path: Path, runs_dir: Path, *options: str):
    """`rnnlab sweep FILE` in a subprocess, SIGINT once a trial is training past its first checkpoint;
    asserts it stopped (exit 130, record `stopped`, no trial left running or crashed) and returns the
    sweep and its runs' states (run id -> state)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from rnnlab import store

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    driver = subprocess.Popen([sys.executable, "-m", "rnnlab", "sweep", str(path), "--workers", "2", "--quiet",
                               "--runs-dir", str(runs_dir), *options], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a trial training, past its first checkpoint
        live = [r for r in store.list_runs(runs_dir) if r.state == "running" and r.step >= 60]
        if live and store.RunDir(live[0].path).checkpoint("last").exists():
            break
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the driver's whole group
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130, stderr
    [sweep] = store.list_sweeps(runs_dir)
    assert sweep.read()["state"] == "stopped"
    states = {r.id: r.state for r in store.list_runs(runs_dir)}
    assert "stopped" in states.values() and not {"running", "crashed"} & set(states.values())
    return sweep, states
