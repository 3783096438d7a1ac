"""The sweep driver: creates or reopens the sweep record (through rnnlab.store), hands the trials to a
backend, records what happens to each as it happens, and turns Ctrl-C into a clean stop of every trial.

The record is rewritten atomically after every change, so a driver killed at any moment leaves a
record that `rnnlab sweep --resume` can continue: a trial whose run id the record lacks is found by
the `sweep` and `trial` fields of its status.json.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as config_mod
from .. import store, worker
from ..errors import ConfigError, RunIsLive
from . import spec as spec_mod
from .trial import TrialJob

FINAL = ("finished", "diverged")  # a trial in one of these states is never run again


@dataclass
class Plan:
    """What a sweep will run: its record, and the trials still to run (index -> run id to resume, or None)."""

    sweep: store.SweepDir
    record: dict
    todo: dict[int, str | None] = field(default_factory=dict)


def new_sweep(path: Path, sweep_options: list[str], sets: list[str], runs_dir: Path) -> Plan:
    """Check the whole sweep (every point's config resolves), then write its record: nothing is written
    before every check has passed."""
    from ..tasks import TASKS

    base, table = spec_mod.read_sweep_file(path)
    if not table and not sweep_options:
        raise ConfigError("sweep", str(path), "the file has no [sweep] table and no --sweep was given",
                          '[sweep] with e.g. "model.hidden" = [32, 64], or --sweep model.hidden=32,64')
    base_cfg = config_mod.resolve(base, sets)
    spec = spec_mod.build_spec(table, sweep_options, base_cfg.seed, TASKS.get(base_cfg.task.name).main_metric)
    trials = spec.expand()
    spec_mod.check_trials(base, sets, trials)
    record = {
        "format": 1, "id": None, "name": base_cfg.name, "file": str(path), "created": time.time(),
        "state": "created", "driver": None, "spec": spec.table, "metric": spec.metric, "goal": spec.goal,
        "base": base, "sets": list(sets), "config": base_cfg.to_dict(),
        "trials": [{"key": t.key, "point": t.point, "seed": t.seed, "overrides": list(sets) + t.overrides(),
                    "run": None, "state": "queued", "error": None} for t in trials],
    }
    sweep = store.create_sweep(runs_dir, base_cfg.name, record)
    return Plan(sweep, record, {i: None for i in range(len(trials))})


def resume_sweep(runs_dir: Path, ref: str) -> Plan:
    """Reopen a sweep: finished (or diverged) trials stay; stopped, crashed or failed ones continue from
    their last checkpoint (a new run when they have none); trials never started start."""
    sweep = store.find_sweep(runs_dir, ref)
    record = sweep.read()
    driver = record.get("driver") or {}
    if record.get("state") == "running":  # `read` says crashed when its driver on this host is gone
        raise RunIsLive(f"sweep {sweep.id} is still running (driver pid {driver.get('pid')} on "
                        f"{driver.get('host')}); stop it first")
    found = sweep.trial_runs()
    plan = Plan(sweep, record)
    for index, trial in enumerate(record["trials"]):
        run = _trial_run(sweep, trial, found)
        if run is None:
            trial.update(run=None, state="queued", error=None)
            plan.todo[index] = None
            continue
        trial["run"] = run.id
        try:
            state = run.read_status().get("state")
        except (OSError, ValueError):
            state = None
        if state in FINAL:
            trial["state"] = state
        elif state == "running":
            raise RunIsLive(f"trial run {run.id} of sweep {sweep.id} is still running; stop it first")
        elif run.checkpoint("last").is_file():
            trial["state"] = "queued"
            plan.todo[index] = run.id
        else:  # nothing to continue from: start the trial again, in a new run directory
            trial.update(run=None, state="queued", error=None)
            plan.todo[index] = None
    return plan


def _trial_run(sweep: store.SweepDir, trial: dict, found: dict) -> store.RunDir | None:
    run_id = trial.get("run")
    if isinstance(run_id, str) and store.is_run_dir(sweep.runs_dir / run_id):
        return store.RunDir(sweep.runs_dir / run_id)
    candidates = found.get(trial.get("key"), [])
    return candidates[-1] if candidates else None  # the newest run of that trial


class Driver:
    """Runs a Plan on a backend; `on_change(record)` is called after every recorded change (the display)."""

    def __init__(self, plan: Plan, backend, on_change=lambda record: None):
        self.plan, self.backend, self.on_change = plan, backend, on_change
        self.sweep, self.record = plan.sweep, plan.record
        self.index = {t["key"]: i for i, t in enumerate(self.record["trials"])}
        self.stops = 0

    def save(self) -> None:
        self.sweep.write(self.record)
        self.on_change(self.record)

    def _interrupt(self, signum, frame) -> None:
        self.stops += 1
        self.backend.stop()  # a second Ctrl-C is forwarded too: trainers then stop at once

    def run(self) -> str:
        """Every planned trial to its end (or a stop); returns the sweep's state: finished or stopped."""
        self.record["state"] = "running"
        self.record["driver"] = worker.identity()  # pid, pid_start, host: so a resume can refuse a live sweep
        self.save()
        previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index, resume in self.plan.todo.items():
                trial = self.record["trials"][index]
                point = {**trial["point"], "seed": trial["seed"]}
                self.backend.submit(TrialJob(self.sweep.id, trial["key"], point, self.record["base"],
                                             trial["overrides"], str(self.sweep.runs_dir), resume))
            while not self.backend.idle():
                changed = False
                for message in self.backend.poll(0.25):
                    changed |= self._apply(message)
                if changed:
                    self.save()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.backend.close()
        states = [t["state"] for t in self.record["trials"]]
        stopped = self.stops > 0 or any(s in ("stopped", "queued", "running") for s in states)
        self.record["state"] = "stopped" if stopped else "finished"
        self.record["ended"] = time.time()
        self.save()
        return self.record["state"]

    def _apply(self, message: tuple) -> bool:
        kind, key = message[0], message[1]
        trial = self.record["trials"][self.index[key]]
        if kind == "taken":
            trial["state"] = "running"
        elif kind == "created":
            trial.update(run=message[2], state="running")
        elif kind == "ended":
            trial.update(state=message[2], error=message[3])
        elif kind == "error":
            trial.update(state="failed", error=message[2])
        elif kind == "lost":
            trial.update(state="crashed", error="its worker process died")
        elif kind == "skipped":
            trial["state"] = "queued"
        else:
            return False
        return True


def counts(record: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for trial in record["trials"]:
        out[trial["state"]] = out.get(trial["state"], 0) + 1
    return out
