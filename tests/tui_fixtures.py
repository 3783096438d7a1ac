"""Deterministic run directories for TUI tests and snapshots.

Real tiny trainings (so checkpoints load and sampling works), with every
time-dependent field (ids, times, throughput, pids) rewritten to fixed values,
so the same screens render the same pixels on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from rnnlab import store
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """The "started" column shows local time: pin the zone so snapshots match on every machine.
    A test file that imports it has it for every test (autouse)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


FIXED_START = 1_795_000_000.0  # 2026-11-18, a fixed "started" time for every fixture run


def _freeze(run: store.RunDir, new_id: str, started: float) -> store.RunDir:
    target = run.path.with_name(new_id)
    os.rename(run.path, target)
    run = store.RunDir(target)
    status = run.read_status_raw()
    status.update(id=new_id, pid=1, pid_start=None, host="fixture-host", started=started,
                  ended=started + 42.0 if status["state"] != "running" else None, updated=started + 42.0,
                  elapsed=42.0, versions={"rnnlab": "test", "torch": "test", "python": "test"})
    run.write_status(status)
    lines = []
    for event in run.event_reader().read_new():
        if "t" in event and event["t"] is not None:
            event["t"] = round(event["step"] * 0.5, 3)
        if "tokens_per_s" in event:
            event["tokens_per_s"] = 1000.0
        if event["kind"] == "start":
            event["run_id"] = new_id
        lines.append(json.dumps(event, separators=(",", ":")))
    run.events_path.write_text("\n".join(lines) + "\n")
    return run


def make_fixture_runs(runs_dir: Path, tmp_path: Path) -> dict[str, store.RunDir]:
    """Four runs: lstm finished (with probes), gru stopped, elman crashed-looking, and a corrupt dir."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    specs = {
        "lstm": ("20261118-100000-tiny-lstm-aaaa", dict(model__arch="lstm", train__steps=12, probes__every=4,
                                                         probes__jacobian_every=8, probes__jacobian_steps=4)),
        "gru": ("20261118-110000-tiny-gru-bbbb", dict(model__arch="gru", train__steps=8, probes__every=4)),
        "elman": ("20261118-120000-tiny-elman-cccc", dict(model__arch="elman", train__steps=6, probes__every=0)),
    }
    runs = {}
    for offset, (key, (run_id, extra)) in enumerate(specs.items()):
        cfg = tiny_config(tmp_path, name=f"tiny-{key}", **extra)
        prepared = prepare(cfg)
        run = store.create_run(runs_dir, cfg.name)
        store.atomic_write(run.config_path, cfg.to_toml().encode().replace(str(tmp_path).encode(), b"/fixture"))
        Trainer(prepared, run).train()
        runs[key] = _freeze(run, run_id, FIXED_START + 3600 * offset)
    runs["gru"].update_status(state="stopped")
    runs["elman"].update_status(state="running", host=__import__("socket").gethostname(), pid=2 ** 22 + 17)
    corrupt = runs_dir / "20261118-130000-broken-dddd"
    corrupt.mkdir()
    (corrupt / "status.json").write_text("{not json")
    (corrupt / "config.toml").write_text("")
    runs["corrupt"] = store.RunDir(corrupt)
    return runs


def copy_fixture_runs(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


async def wait_for(pilot, predicate, timeout: float = 30.0, what: str = "condition") -> float:
    """Poll the running app until `predicate()` holds; return the seconds it took.

    The timeout only ends a test that has already failed: generous, since CI's two cores are shared."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.01)
    return time.monotonic() - start


def tables_settled(app) -> bool:
    """No DataTable on the screen still owes the measuring it does on its next idle (new rows, grown cells).
    DataTable has no public flag for it: these are its own."""
    from textual.widgets import DataTable

    return not any(table._require_update_dimensions or table._updated_cells or table._new_rows
                   for table in app.screen.query(DataTable))


def screen_text(app) -> str:
    """Every cell of the current screen (toasts included, with run_test(notifications=True)) as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def toasts(app) -> list[str]:
    """The notifications on screen (run_test(notifications=True)), each as its plain text, lines joined."""
    return [" ".join(toast.render().plain.split()) for toast in app.screen.query("Toast")]


def start_endless_trainer(tmp_path: Path, runs_dir: Path):
    """A real tiny trainer (`rnnlab run` in a child) that trains until stopped, and its run directory."""
    from rnnlab import worker
    from tiny import overrides

    process = worker.start(runs_dir, None, overrides(tmp_path, train__steps=100000, train__eval_every=0,
                                                     train__checkpoint_every=0), log=tmp_path / "run.log")
    run = store.find_new_run(runs_dir, set(), process)
    assert run is not None, (tmp_path / "run.log").read_text()
    return process, run


def constant_lr_run(runs_dir: Path) -> store.RunDir:
    """A stopped run at step 319 of 1000 with a constant learning rate (float noise in its last digit):
    written event by event, so its plots are the same on every machine."""
    run = store.RunDir(runs_dir / "20261118-150000-constant-lr-ffff")
    run.path.mkdir(parents=True)
    run.write_status({"id": run.id, "name": "constant-lr", "arch": "gru", "task": "charlm", "state": "stopped",
                      "step": 319, "total_steps": 1000, "best_val": 1.9, "started": FIXED_START, "elapsed": 40.0,
                      "device": "cpu", "host": "fixture-host", "pid": 1})
    lrs = (0.003, 0.0030000000000000005, 0.0029999999999999996)
    events = [{"kind": "start", "step": 0, "t": 0.0, "device": "cpu", "params": 5000, "total_steps": 1000,
               "loss_unit": "nats/char", "baseline": 3.2, "baseline_label": "unigram", "ngram": 2.1}]
    for step in range(1, 320):
        events.append({"kind": "train", "step": step, "t": step * 0.125, "loss": 3.4 - 1.4 * step / 319
                       + 0.05 * ((step * 7919) % 13) / 13, "lr": lrs[step % 3], "grad_norm": 0.5 + (step % 17) / 4,
                       "clipped": False, "tokens_per_s": 1000.0})
        if step % 100 == 0:
            events.append({"kind": "eval", "step": step, "t": step * 0.125, "loss": 3.0 - step / 300})
    events.append({"kind": "end", "step": 319, "t": 40.0, "state": "stopped"})
    run.events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return run


SWEEP_ID = "20261118-160000-lr-sweep-abcd"


def synthetic_sweep(runs_dir: Path) -> store.SweepDir:
    """A sweep of train.lr (3 values) x model.arch (gru, lstm) x 2 seeds, written file by file so it looks
    the same on every machine: 9 trials finished, one running (on another host), one failed, one queued; the driver stopped."""
    from rnnlab.sweeps.spec import trial_key

    runs_dir.mkdir(parents=True, exist_ok=True)
    trials = []
    number = 0
    for arch in ("gru", "lstm"):
        for lr in (0.001, 0.01, 0.1):
            for seed in (0, 1):
                point = {"train.lr": lr, "model.arch": arch}
                state = "queued" if number == 11 else "failed" if number == 10 else \
                    "running" if number == 9 else "finished"
                trial = {"key": trial_key(point, seed), "point": point, "seed": seed, "overrides": [],
                         "run": None, "state": state, "error": "boom [red]x[/red]" if state == "failed" else None}
                trials.append(trial)
                if state != "queued":
                    run = store.RunDir(runs_dir / f"20261118-16{number:02d}00-lr-sweep-{number:04x}")
                    run.path.mkdir()
                    trial["run"] = run.id
                    step = 40 if state == "running" else 20 if state == "failed" else 100
                    # lower with lr (up to 0.01) and for lstm; seeds differ a little
                    loss = 2.0 - 0.3 * (lr >= 0.01) + 0.2 * (lr >= 0.1) - 0.1 * (arch == "lstm") + 0.01 * seed
                    run.write_status({"id": run.id, "name": "lr-sweep", "arch": arch, "task": "charlm",
                                      "state": state, "step": step, "total_steps": 100, "best_val": loss,
                                      "started": FIXED_START + 3600 + 60 * number, "elapsed": 30.0, "host": "fixture-host",
                                      "pid": 1, "sweep": SWEEP_ID, "trial": trial["key"],
                                      "point": {**point, "seed": seed}})
                    events = [{"kind": "start", "step": 0, "t": 0.0, "total_steps": 100},
                              {"kind": "eval", "step": step, "t": 30.0, "loss": loss, "best": True}]
                    run.events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
                number += 1
    sweep = store.SweepDir(runs_dir / store.SWEEPS / SWEEP_ID)
    sweep.path.mkdir(parents=True)
    sweep.write({"format": 1, "id": SWEEP_ID, "name": "lr-sweep", "file": "/fixture/lr.toml",
                 "created": FIXED_START + 3600, "ended": FIXED_START + 4500, "state": "stopped",
                 "spec": {"train.lr": [0.001, 0.01, 0.1], "model.arch": ["gru", "lstm"], "seeds": [0, 1],
                          "metric": "loss", "goal": "min"},
                 "metric": "loss", "goal": "min", "trials": trials})
    return sweep


LENGTHS_ID = "20261118-170000-ntm-copy-lengths-eeee"


def length_run(runs_dir: Path) -> store.RunDir:
    """A finished copy run trained on copy lengths 1-10 and scored at 15-40 (by_length in its evals): written
    event by event, so its plots are the same on every machine."""
    run = store.RunDir(runs_dir / LENGTHS_ID)
    run.path.mkdir(parents=True)
    run.write_status({"id": run.id, "name": "ntm-copy-lengths", "arch": "ntm", "task": "copy", "state": "finished",
                      "step": 1000, "total_steps": 1000, "best_val": 0.02, "started": FIXED_START + 7200,
                      "elapsed": 60.0, "device": "cpu", "host": "fixture-host", "pid": 1})
    events = [{"kind": "start", "step": 0, "t": 0.0, "device": "cpu", "params": 25000, "total_steps": 1000,
               "loss_unit": "nats/token", "baseline": 0.35, "baseline_label": "no memory"}]
    for step in range(10, 1001, 10):
        events.append({"kind": "train", "step": step, "t": step * 0.06, "loss": 0.4 * (1 - step / 1100)
                       + 0.02 * ((step * 7919) % 13) / 13, "lr": 0.001, "grad_norm": 1.0 + (step % 7) / 7,
                       "clipped": False, "tokens_per_s": 1000.0})
        if step % 200 == 0:
            learnt = step / 1000  # 0.2 .. 1.0: the error falls in the trained range first, then beyond it
            by_length = {str(n): {"loss": 2.0 * (1 - learnt) + n / 100, "error_rate": round(
                min(1.0, (1 - learnt) * 0.8 + n / 60 * (1.2 - learnt)), 4), "success": False} for n in (15, 20, 30, 40)}
            events.append({"kind": "eval", "step": step, "t": step * 0.06, "loss": 0.3 * (1 - learnt) + 0.01,
                           "baseline": 0.35, "error_rate": round(0.7 * (1 - learnt) ** 2, 4), "success": False,
                           "by_length": by_length, "trained_lengths": [1, 10], "length_metric": "error_rate",
                           "best": True})
    events.append({"kind": "end", "step": 1000, "t": 60.0, "state": "finished"})
    run.events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return run
