"""RTRL and the EKF on models too big for them: refused before a run exists; long steps give way to a stop,
whole, so a resume continues on the uninterrupted curve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from rnnlab import config, store
from rnnlab.cli import app
from rnnlab.models import build_model
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, checkpoint, ekf, prepare, rtrl
from rnnlab.train.ekf import ExtendedKalmanFilter
from rnnlab.train.rtrl import RTRL, OneStep, StepAbandoned

from tiny import overrides, tiny_config


def cli_sets(tmp_path, **extra) -> list[str]:
    return [item for text in overrides(tmp_path, **extra) for item in ("--set", text)]


def test_ekf_on_a_20k_parameter_lstm_is_refused_before_a_run_exists(tmp_path):
    # issue 12: such a model ran one EKF step for 11+ minutes at 5.8 GB
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["run", *cli_sets(tmp_path, model__hidden=64, train__algorithm="ekf"),
                                      "--runs-dir", str(runs)])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message and "parameters" in message and "GB" in message, message
    assert "over train.memory_budget_gb = 2" in message
    assert not runs.exists()


def test_the_estimates_grow_as_sensitivities_and_covariance_do(tmp_path):
    def needed(hidden, batch, algorithm):
        cfg = config.load(None, overrides(tmp_path, model__hidden=hidden, model__arch="elman"))
        model = build_model(cfg.model, build_task(cfg.task, 0).spec)
        step = OneStep(model)
        count, state_count = rtrl.state_parameters(step)
        total = rtrl.memory_needed(step, batch) + (ekf.memory_needed(step, batch) if algorithm == "ekf" else 0)
        return total, count, state_count

    small, count, state_count = needed(16, 4, "rtrl")
    assert small == 4 * 4 * 16 * state_count * 4  # four (B, S, P_s) float32 tensors
    assert needed(16, 8, "rtrl")[0] == 2 * small
    filtered, count, _ = needed(16, 4, "ekf")
    assert filtered - small >= 4 * count * count * 4  # four P x P float32 matrices on top
    budget = config.load(None, overrides(tmp_path, train__memory_budget_gb=0)).train.memory_budget_gb
    assert budget == 0  # 0: no limit (documented)


def small_setup(algorithm_class, **options):
    cfg = config.load(None, ["model.arch=elman", "model.hidden=4", "model.layers=1", "model.embed=3",
                             "task.name=sines", "task.length=600", "task.seq_len=12"])
    task = build_task(cfg.task, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec)
    generator = torch.Generator().manual_seed(3)
    if algorithm_class is RTRL:
        return model, generator, RTRL(task, model, 4, "batch", generator, torch.device("cpu"))
    return model, generator, ExtendedKalmanFilter(task, model, 4, generator, torch.device("cpu"), 1.0, 1e-4, 10.0)


def stop_after(calls: int):
    count = {"n": 0}

    def should_stop():
        count["n"] += 1
        return count["n"] > calls

    return should_stop


@pytest.mark.parametrize("algorithm_class", [RTRL, ExtendedKalmanFilter], ids=["rtrl", "ekf"])
def test_a_step_stopped_midway_is_given_up_whole(algorithm_class):
    model, generator, algorithm = small_setup(algorithm_class)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    covariance = getattr(algorithm, "covariance", None)
    undrawn = generator.get_state()
    algorithm.should_stop = stop_after(5)  # five of the twelve time steps done, then the signal
    with pytest.raises(StepAbandoned):
        algorithm.step_loss(model)
    for name, p in model.named_parameters():
        assert torch.equal(p, weights[name]) and p.grad is None, name  # no half-update, no half-gradient
    if covariance is not None:
        assert algorithm.covariance is covariance
    assert torch.equal(generator.get_state(), undrawn)  # the batch is drawn again on resume
    algorithm.should_stop = lambda: False
    loss, _ = algorithm.step_loss(model)  # and the next step is a whole ordinary one
    assert torch.isfinite(loss)


def test_sigterm_inside_a_long_rtrl_step_stops_the_run_within_a_second_or_two(tmp_path):
    # one step of this RTRL run takes ~10 s on a CPU core; the trainer used to finish it before stopping
    runs = tmp_path / "runs"
    sets = cli_sets(tmp_path, model__arch="elman", model__hidden=64, task__seq_len=96, train__batch_size=32,
                    train__algorithm="rtrl", train__steps=3, train__eval_every=0, probes__every=0, threads=1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    trainer = subprocess.Popen([sys.executable, "-m", "rnnlab", "run", *sets, "--runs-dir", str(runs), "-q"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(runs.glob("*/events.jsonl")) or b'"start"' not in next(runs.glob("*/events.jsonl")).read_bytes():
            assert trainer.poll() is None and time.monotonic() < deadline, trainer.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # well inside the first step
        sent = time.monotonic()
        trainer.send_signal(signal.SIGTERM)
        trainer.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        trainer.kill()
    (run_path,) = runs.iterdir()
    status = json.loads((run_path / "status.json").read_text())
    assert (trainer.returncode, status["state"], status["step"]) == (130, "stopped", 0), trainer.stderr.read()
    assert took < 4.0, f"SIGTERM took {took:.1f} s to be honoured"
    kinds = [json.loads(line)["kind"] for line in (run_path / "events.jsonl").read_text().splitlines()]
    assert "train" not in kinds and kinds[-2:] == ["checkpoint", "end"]


@pytest.mark.parametrize("algorithm", ["rtrl", "ekf"])
def test_a_run_stopped_mid_step_resumes_onto_the_uninterrupted_curve(tmp_path, algorithm):
    extra = dict(model__arch="elman", model__hidden=6, model__embed=4, task__seq_len=6, train__steps=5,
                 train__algorithm=algorithm, train__eval_every=0, train__checkpoint_every=0, probes__every=0)

    def train(name, resume_from=None, run=None, signal_on_batch=None):
        prepared = prepare(tiny_config(tmp_path, **extra))
        if signal_on_batch is not None:  # SIGINT while a batch is drawn: inside the step, before its first time step
            draw, calls = prepared.task.train_batch, {"n": 0}

            def train_batch(*args):
                calls["n"] += 1
                if calls["n"] == signal_on_batch:
                    os.kill(os.getpid(), signal.SIGINT)
                return draw(*args)

            prepared.task.train_batch = train_batch
        run = run or store.create_run(tmp_path / "runs", name)
        return run, Trainer(prepared, run).train(resume_from=resume_from)

    whole, outcome = train("whole")
    assert outcome.state == "finished"
    parts, outcome = train("parts", signal_on_batch=3)
    assert (outcome.state, outcome.step, outcome.error) == ("stopped", 2, None)
    _, outcome = train("parts", resume_from=checkpoint.load(parts.checkpoint("last"), keys=checkpoint.TRAINING_KEYS),
                       run=parts)
    assert outcome.state == "finished"

    def curve(run):
        return [(e["step"], e["loss"]) for e in run.read_events() if e["kind"] == "train"]

    assert curve(parts) == curve(whole)
