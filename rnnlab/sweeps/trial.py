"""One sweep trial, run inside a worker process: what `rnnlab run` does (load the config with the
trial's overrides, prepare, create the run directory, train), or what `rnnlab run --resume` does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrialJob:
    """What a backend needs to run one trial; plain data, so it pickles to any worker."""

    sweep: str  # the sweep id
    key: str  # the trial key (its point and seed, canonical JSON)
    point: dict  # swept key -> value, with "seed"
    base: dict  # the experiment file's config, without [sweep]
    overrides: list[str]  # the sweep's --set values, then the point's
    runs_dir: str
    resume: str | None = None  # a run id to continue from its last checkpoint
    extra: dict = field(default_factory=dict)


def run_trial(job: TrialJob, notify=lambda message: None, should_start=lambda: True):
    """Train one trial to its end state and return its Outcome (rnnlab.train.Outcome).

    `notify(message)` hears `("created", key, run_id)` as soon as the run directory exists;
    `should_start()` is asked once more just before the directory is made (a stop may have come
    while the model was being built). Returns None when it was not started."""
    trainer = start_trial(job, should_start)
    if trainer is None:
        return None
    notify(("created", job.key, trainer.run.id))
    return trainer.train()


def start_trial(job: TrialJob, should_start=lambda: True):
    """The first half of `run_trial`: the trial's Trainer, its run directory made (or reopened to
    resume), not yet trained; None when `should_start()` said no. (The Ray backend reports the run
    id between the halves.)"""
    from .. import config as config_mod
    from .. import store
    from ..train import Trainer, prepare, resume_trainer

    runs_dir = Path(job.runs_dir)
    if job.resume is not None:
        run_dir = store.RunDir(runs_dir / job.resume)
        trainer = resume_trainer(run_dir)
        if not should_start():
            return None
    else:
        cfg = config_mod.resolve(job.base, job.overrides)
        prepared = prepare(cfg)
        if not should_start():
            return None
        run_dir = store.create_run(runs_dir, cfg.name, config_text=cfg.to_toml())
        trainer = Trainer(prepared, run_dir)
        trainer.status_fields = {"sweep": job.sweep, "trial": job.key, "point": job.point}
    return trainer
