"""The training loop: one run from its first (or resumed) step to its end state.

Everything it reports goes into the run directory (status.json, events.jsonl,
checkpoints/) and, for a live display, to an optional `on_event` callback.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..probes import Prober
from ..config import Config
from ..errors import CheckpointError, describe_os_error, first_line
from ..models import build_model, count_parameters
from .. import store
from ..store import RunDir
from ..tasks import build_task
from ..worker import EXIT_CODES, StopSignal
from . import checkpoint
from .algorithms import StepAbandoned, check_algorithm, make_algorithm
from .device import check_precision, resolve_device
from .divergence import DivergenceWatch
from .optim import Schedule, make_optimizer
from .evaluation import validation_metrics
from .steps import StepContext, StepResult
from .threads import choose_threads

STATUS_SECONDS = 5.0  # how stale status.json's step may get between evaluations


@dataclass
class Prepared:
    """A validated experiment, ready to run; nothing written to disk yet."""

    cfg: Config
    task: object
    model: torch.nn.Module
    device: torch.device


def prepare(cfg: Config) -> Prepared:
    """Build device, task and model; every config error surfaces here, before a run dir exists."""
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)  # weights are the first thing drawn from the seed
    task = build_task(cfg.task, cfg.seed)
    model = build_model(cfg.model, task.spec).to(device)
    torch.set_num_threads(choose_threads(cfg.threads, model, device))  # threads = 0: chosen (threads.py)
    if device.type == "cpu":
        # Denormal floats (below 1.2e-38 in float32) make CPU matmuls ~10x slower: an untrained residual
        # net's softmax gradient was 8% denormal and its step 2.5x slower than with them flushed to zero
        # (benchmarks/custom_cells_speed.py, against --keep-denormal). Nothing above that bound changes.
        torch.set_flush_denormal(True)
    check_algorithm(cfg, model, task)
    return Prepared(cfg, task, model, device)


@dataclass
class Outcome:
    state: str
    step: int
    error: str | None = None
    final: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]


class Trainer:
    def __init__(self, prepared: Prepared, run: RunDir, on_event=None):
        self.p, self.cfg, self.run = prepared, prepared.cfg, run
        self.model, self.task, self.device = prepared.model, prepared.task, prepared.device
        self.on_event = on_event
        self.status_fields: dict = {}  # extra status.json fields for a fresh start (a sweep trial's link)
        tc = self.cfg.train
        self.optimizer = make_optimizer(self.model.parameters(), tc)
        self.schedule = Schedule(tc)
        self.generator = torch.Generator().manual_seed(self.cfg.seed + 1)  # batches
        self.algorithm, step_kind = make_algorithm(self.cfg, self.task, self.model, self.generator, self.device)
        self.step, self.best_val, self.last_val, self.elapsed_before = 0, math.inf, None, 0.0
        self.clipped_steps, self.resumed = 0, False
        self.prober = Prober(self.cfg.probes, self.model, self.task, self.device)
        self.no_memory = self.task.metrics(0.0)  # the baselines, for the start event and the divergence bar
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.precision == "bf16"
                         else contextlib.nullcontext())
        self.stepper = step_kind(StepContext(self.model, self.algorithm, self.optimizer, self.schedule, tc,
                                             self.prober, self.autocast))
        self.watch = DivergenceWatch(tc.diverge_factor if self.stepper.watched else 0.0, tc.diverge_patience,
                                     self.no_memory.get("baseline"))

    # -- reporting -------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def emit(self, kind: str, **payload) -> dict:
        event = {"kind": kind, "step": self.step, "t": round(self.elapsed(), 3), **payload}
        self.events.write(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def status(self, **fields) -> None:
        self.run.update_status(**store.status.progress(step=self.step, best_val=_finite(self.best_val),
                                                       last_val=self.last_val, elapsed=self.elapsed()), **fields)

    # -- checkpoints -------------------------------------------------------------
    def payload(self) -> dict:
        return {
            "format": 1, "step": self.step, "elapsed": self.elapsed(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "algorithm": self.algorithm.state_dict(),
            "rng": checkpoint.rng_state(self.generator), "best_val": self.best_val,
            "clipped_steps": self.clipped_steps, "arch": self.cfg.model.arch, "task": self.cfg.task.name,
            "loss_reference": self.watch.reference,
            **self.task.checkpoint_extras(),
        }

    def save(self, which: str) -> None:
        checkpoint.save(self.run, which, self.payload())
        self.emit("checkpoint", which=which)

    def restore(self, saved: dict, source: Path | str = "the checkpoint") -> None:
        """Continue from a checkpoint (its keys checked by checkpoint.load); one CheckpointError naming
        `source` if a part does not fit this config. Nothing is written: the caller may still give up."""
        checkpoint.load_model(self.model, saved["model"], source)
        try:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.schedule.load_state_dict(saved["schedule"])
            self.algorithm.load_state_dict(saved["algorithm"])
            checkpoint.restore_rng(saved["rng"], self.generator)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
            raise CheckpointError(f"{source} does not match the run's config: its optimizer, schedule, "
                                  f"algorithm or RNG state does not fit ({first_line(error)})") from None
        self.step, self.best_val = saved["step"], saved["best_val"]
        self.elapsed_before, self.clipped_steps = saved["elapsed"], saved["clipped_steps"]
        reference = saved.get("loss_reference")  # absent before divergence was watched: the next loss sets it
        if reference is not None and (isinstance(reference, bool) or not isinstance(reference, (int, float))):
            raise CheckpointError(f"{source}: its loss_reference is a {type(reference).__name__}, not a number")
        self.watch.reference = reference
        self.resumed = True

    # -- one step, one evaluation ---------------------------------------------------
    def train_step(self) -> dict:
        """One step of whichever algorithm (steps.py), then the tail every algorithm shares."""
        began = time.perf_counter()
        return self.finish_step(self.stepper.take(self.step + 1), began)

    def finish_step(self, result: StepResult, began: float) -> dict:
        """Check the step, apply it, count it, report it: its train event, then the probes due."""
        # a non-finite loss, or a finite one that has blown up (divergence.py), ends the run unapplied
        reason = self.stepper.non_finite(result)
        if reason is None and self.stepper.watched:
            reason = self.watch.observe(result.loss)
        if reason is not None:
            raise Diverged(f"{reason} at step {self.step + 1}{self.stepper.where(result)}; {self.stepper.advice}")
        if result.apply is not None:
            result.apply()
        self.step += 1
        self.clipped_steps += result.clipped
        seconds = time.perf_counter() - began
        event = self.emit("train", loss=result.loss, lr=result.lr, grad_norm=result.grad_norm,
                          clipped=result.clipped, tokens_per_s=round(result.tokens / max(seconds, 1e-9), 1),
                          **result.extras)
        if result.gradnorm is not None:
            self.emit("gradnorm", **result.gradnorm, clipped_share=round(self.clipped_steps / self.step, 5))
        if self.prober.due(self.step):
            for kind, payload in self.prober.run(self.model, self.step):
                self.emit(kind, **payload)
        return event

    @torch.no_grad()
    def evaluate(self) -> dict:
        tc = self.cfg.train
        metrics = validation_metrics(self.model, self.task, tc, self.device, self.autocast)
        self.last_val = metrics["loss"]
        best = metrics["loss"] < self.best_val
        if best:
            self.best_val = metrics["loss"]
        event = self.emit("eval", **metrics, best=best)
        if self.schedule.observe(metrics["loss"]):
            self.emit("log", message=f"validation plateau: lr divided by {tc.plateau_divisor:g}")
        if best:
            self.save("best")
        return event

    # -- the run ----------------------------------------------------------------------
    def start_status(self, resumed: bool) -> None:
        status = store.status.running(run_id=self.run.id, name=self.cfg.name, arch=self.cfg.model.arch,
                                      task=self.cfg.task.name, device=str(self.device),
                                      total_steps=self.cfg.train.steps, params=count_parameters(self.model),
                                      torch_version=torch.__version__, trial=self.status_fields)
        if not resumed:
            status["started"] = time.time()
            self.run.write_status(status)
            self.status()
        else:
            self.status(**status)

    def train(self, resume_from: dict | None = None) -> Outcome:
        """Run to the end state; from `resume_from`, or from what `restore` loaded, or from step 0."""
        self.started = time.perf_counter()
        if resume_from is not None:
            self.restore(resume_from)
        self.events = self.run.event_writer()
        tc = self.cfg.train
        try:
            self.start_status(resumed=self.resumed)
            if self.resumed:
                self.emit("resume", message=f"resumed from step {self.step}")
            else:
                self.emit("start", run_id=self.run.id, device=str(self.device), params=count_parameters(self.model),
                          total_steps=tc.steps, arch=self.cfg.model.arch, task=self.cfg.task.name,
                          threads=torch.get_num_threads(), baseline=self.no_memory.get("baseline"), ngram=self.no_memory.get("ngram"),
                          loss_unit=self.task.loss_unit, baseline_label=self.task.baseline_label)
            return self._loop()
        finally:
            self.events.close()

    def _loop(self) -> Outcome:
        tc = self.cfg.train
        state, error = "finished", None
        with StopSignal() as stop:
            self.algorithm.should_stop = lambda: stop.requested  # RTRL and EKF look between time steps
            try:
                status_due = time.perf_counter() + STATUS_SECONDS
                while self.step < tc.steps:
                    self.train_step()
                    if time.perf_counter() >= status_due:  # `runs ls` and the browser read the step here
                        self.status()
                        status_due = time.perf_counter() + STATUS_SECONDS
                    if tc.eval_every and self.step % tc.eval_every == 0 and self.step < tc.steps:
                        self.evaluate()
                        self.status()
                    if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                        self.save("last")
                        self.status()
                    if stop.requested:
                        state = "stopped"
                        break
                    if tc.time_limit and self.elapsed() >= tc.time_limit:
                        self.emit("log", message=f"time limit of {tc.time_limit:g}s reached")
                        break
            except StepAbandoned:  # nothing of the step was applied: last.pt below is the state before it
                state = "stopped"
            except Diverged as diverged:
                state, error = "diverged", str(diverged)
            except KeyboardInterrupt:
                state, error = "stopped", "interrupted twice: stopped without a final checkpoint"
            except Exception as failure:  # recorded in the run, then reported in one line
                state, error = "failed", (describe_os_error(failure) if isinstance(failure, OSError)
                                          else f"{failure.__class__.__name__}: {failure}")
                self.emit("log", level="error", message=error, traceback=traceback.format_exc())
        final = {}
        if state == "finished":
            final = self.evaluate()
        if state in ("finished", "stopped") and error is None:
            self.save("last")
        self.emit("end", state=state, error=error)
        self.status(**store.status.ended(state=state, error=error, clipped_share=self.clipped_steps / max(self.step, 1)))
        return Outcome(state, self.step, error, final)


def resume_trainer(run: RunDir, overrides: list[str] = ()) -> "Trainer":
    """A Trainer that continues `run` from its last checkpoint (`rnnlab run --resume`, a resumed sweep
    trial), every check done first; then the run's config.toml is rewritten with the overrides."""
    from .. import config as config_mod
    from ..errors import ConfigError, RunIsLive

    status = run.checked_status()
    if status.get("state") == "running":
        raise RunIsLive(f"run {run.id} is still running (pid {status.get('pid')}); stop it first")
    cfg = config_mod.load(run.config_path, list(overrides))
    saved = checkpoint.load(run.checkpoint("last"), keys=checkpoint.TRAINING_KEYS)
    if saved["step"] >= cfg.train.steps:
        raise ConfigError("train.steps", cfg.train.steps, f"run {run.id} already reached step {saved['step']}",
                          f"--set train.steps=N with N > {saved['step']}")
    trainer = Trainer(prepare(cfg), run)
    trainer.restore(saved, run.checkpoint("last"))  # a checkpoint that does not fit the config fails here
    run.write_config(cfg.to_toml())  # the first write: every check has passed
    return trainer


class Diverged(Exception):
    pass


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
