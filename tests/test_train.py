"""The training loop: determinism, resume, clipping, schedules, divergence, TBPTT."""

from __future__ import annotations

import math
import os
import signal

import pytest
import torch

from rnnlab import store
from rnnlab.train import Trainer, checkpoint, prepare
from rnnlab.train.bptt import TruncatedBPTT
from rnnlab.train.optim import Schedule

from tiny import tiny_config

TIMING_KEYS = {"t", "tokens_per_s"}


def run_tiny(tmp_path, name="run", on_event=None, resume_from=None, run_dir=None, **extra):
    cfg = tiny_config(tmp_path, **extra)
    prepared = prepare(cfg)
    run_dir = run_dir or store.create_run(tmp_path / "runs", name)
    store.atomic_write(run_dir.config_path, cfg.to_toml().encode())
    outcome = Trainer(prepared, run_dir, on_event=on_event).train(resume_from=resume_from)
    return run_dir, outcome


def without_times(events):
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in events]


def test_same_seed_writes_identical_events(tmp_path):
    first, _ = run_tiny(tmp_path, "a", model__dropout=0.2)
    second, _ = run_tiny(tmp_path, "b", model__dropout=0.2)
    a, b = first.read_events(), second.read_events()
    for e in a + b:  # the run id differs by design
        e.pop("run_id", None)
    assert len(a) > 20
    assert without_times(a) == without_times(b)


def test_other_seed_changes_the_losses(tmp_path):
    first, _ = run_tiny(tmp_path, "a")
    second, _ = run_tiny(tmp_path, "b", seed=1)
    losses = lambda run: [e["loss"] for e in run.read_events() if e["kind"] == "train"]
    assert losses(first) != losses(second)


@pytest.mark.parametrize("algorithm", ["bptt", "tbptt"])
def test_sigint_then_resume_reproduces_the_uninterrupted_losses(tmp_path, algorithm):
    extra = dict(model__dropout=0.1, train__algorithm=algorithm, train__tbptt_k1=8, train__tbptt_k2=12,
                 train__steps=14, train__checkpoint_every=0)
    whole, outcome = run_tiny(tmp_path, "whole", **extra)
    assert outcome.state == "finished"

    def interrupt_at_step_5(event):
        if event["kind"] == "train" and event["step"] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal path: finish the step, checkpoint, stop

    stopped, outcome = run_tiny(tmp_path, "parts", on_event=interrupt_at_step_5, **extra)
    assert (outcome.state, outcome.step, outcome.exit_code) == ("stopped", 5, 130)
    assert stopped.read_status()["state"] == "stopped"
    saved = checkpoint.load(stopped.checkpoint("last"))
    assert saved["step"] == 5
    _, outcome = run_tiny(tmp_path, resume_from=saved, run_dir=stopped, **extra)
    assert outcome.state == "finished"

    def curve(run, kind):
        return [(e["step"], e["loss"]) for e in run.read_events() if e["kind"] == kind]

    assert curve(stopped, "train") == curve(whole, "train")
    assert curve(stopped, "eval") == curve(whole, "eval")
    assert [e["kind"] for e in stopped.read_events()].count("resume") == 1


def test_checkpoints_best_and_last(tmp_path):
    run, outcome = run_tiny(tmp_path, train__steps=8, train__eval_every=4)
    assert outcome.state == "finished"
    last = checkpoint.load(run.checkpoint("last"))
    best = checkpoint.load(run.checkpoint("best"))
    assert last["step"] == 8 and best["step"] in (4, 8)
    evals = [e for e in run.read_events() if e["kind"] == "eval"]
    assert best["best_val"] == pytest.approx(min(e["loss"] for e in evals))
    assert isinstance(last["vocab"], list) and "q" in last["vocab"]
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == 8
    assert status["best_val"] == pytest.approx(best["best_val"])


def test_norm_clipping_is_recorded_and_applied(tmp_path):
    run, _ = run_tiny(tmp_path, train__clip=1e-3, train__steps=3)
    train = [e for e in run.read_events() if e["kind"] == "train"]
    assert all(e["clipped"] and e["grad_norm"] > 1e-3 for e in train)
    assert run.read_status()["clipped_share"] == 1.0
    run, _ = run_tiny(tmp_path, train__clip_mode="none", train__clip=1e-3, train__steps=3)
    assert not any(e["clipped"] for e in run.read_events() if e["kind"] == "train")


def test_value_clipping_limits_every_gradient_element(tmp_path):
    cfg = tiny_config(tmp_path, train__clip_mode="value", train__clip=1e-4, train__steps=1)
    prepared = prepare(cfg)
    run = store.create_run(tmp_path / "runs", "v")
    trainer = Trainer(prepared, run)
    trainer.started, trainer.events = 0.0, run.event_writer()
    import time
    trainer.started = time.perf_counter()
    event = trainer.train_step()
    assert event["clipped"]
    grads = [p.grad for p in prepared.model.parameters() if p.grad is not None]
    assert max(float(g.abs().max()) for g in grads) <= 1e-4 + 1e-12


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad"])
def test_every_optimizer_lowers_the_loss(tmp_path, optimizer):
    lr = {"sgd": 1.0, "momentum": 0.3, "adagrad": 0.1}.get(optimizer, 1e-2)
    run, outcome = run_tiny(tmp_path, train__optimizer=optimizer, train__lr=lr, train__steps=30,
                            train__eval_every=0, model__arch="gru")
    assert outcome.state == "finished"
    losses = [e["loss"] for e in run.read_events() if e["kind"] == "train"]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.3


def schedule(tmp_path, **extra):
    return Schedule(tiny_config(tmp_path, **extra).train)


def test_schedules(tmp_path):
    s = schedule(tmp_path, train__lr=1.0, train__schedule="exponential", train__decay_rate=0.5, train__decay_steps=10)
    assert s.lr(1) == 1.0 and s.lr(11) == pytest.approx(0.5) and s.lr(6) == pytest.approx(0.5 ** 0.5)
    s = schedule(tmp_path, train__lr=1.0, train__schedule="staircase", train__decay_rate=0.5, train__decay_steps=10)
    assert (s.lr(10), s.lr(11), s.lr(21)) == (1.0, 0.5, 0.25)
    s = schedule(tmp_path, train__lr=1.0, train__schedule="step", train__decay_rate=0.1, train__milestones="[5, 8]")
    assert (s.lr(5), s.lr(6), s.lr(9)) == (1.0, pytest.approx(0.1), pytest.approx(0.01))
    s = schedule(tmp_path, train__lr=1.0, train__schedule="cosine", train__lr_min=0.1, train__steps=101)
    assert s.lr(1) == 1.0 and s.lr(51) == pytest.approx(0.55) and s.lr(101) == pytest.approx(0.1)
    s = schedule(tmp_path, train__lr=1.0, train__warmup_steps=4)
    assert [s.lr(i) for i in range(1, 6)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_plateau_divides_the_rate_by_four(tmp_path):
    s = schedule(tmp_path, train__lr=1.0, train__schedule="plateau", train__plateau_patience=2)
    assert not s.observe(2.0) and not s.observe(1.5)
    assert not s.observe(1.6)  # one bad evaluation: patience 2
    assert s.observe(1.7) and s.lr(100) == 0.25
    assert not s.observe(1.0) and s.lr(100) == 0.25


def test_nan_loss_stops_the_run_as_diverged(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)
    prepared = prepare(cfg)
    original = prepared.task.loss
    calls = {"n": 0}

    def loss_that_explodes(output, y, mask):
        calls["n"] += 1
        value = original(output, y, mask)
        return value * float("nan") if calls["n"] == 3 else value

    monkeypatch.setattr(prepared.task, "loss", loss_that_explodes)
    run = store.create_run(tmp_path / "runs", "nan")
    outcome = Trainer(prepared, run).train()
    assert (outcome.state, outcome.step, outcome.exit_code) == ("diverged", 2, 3)
    assert "loss became nan at step 3" in outcome.error
    status = run.read_status()
    assert status["state"] == "diverged" and "nan" in status["error"]


def test_truncated_bptt_carries_a_detached_state(tmp_path):
    cfg = tiny_config(tmp_path, train__algorithm="tbptt", train__tbptt_k1=5, train__tbptt_k2=5, model__arch="elman")
    prepared = prepare(cfg)
    model = prepared.model.double().eval()
    algo = TruncatedBPTT(prepared.task, 3, 5, 5, torch.device("cpu"))
    for _ in range(3):
        loss, tokens = algo.step_loss(model)
    assert tokens == 3 * 5 and algo.pos == 15
    assert not algo.state.requires_grad
    _, expected = model(algo.streams[:, :15])  # one pass over the same 15 tokens from zero
    torch.testing.assert_close(algo.state, expected.detach(), rtol=1e-12, atol=1e-12)


def test_truncated_bptt_backpropagates_through_k2_tokens_only(tmp_path):
    cfg = tiny_config(tmp_path, train__algorithm="tbptt", model__arch="elman")
    prepared = prepare(cfg)
    model = prepared.model.double().eval()
    algo = TruncatedBPTT(prepared.task, 2, 3, 7, torch.device("cpu"))
    algo.step_loss(model), algo.step_loss(model)  # advance past the start of the text
    inputs = []
    model.embed.register_forward_hook(lambda module, args, out: out.retain_grad() or inputs.append(out))
    loss, tokens = algo.step_loss(model)
    loss.backward()
    assert tokens == 2 * 3  # only the 3 new tokens count
    window = torch.cat([i.grad for i in inputs], dim=1)  # (B, k2, E): every window token gets a gradient
    assert window.shape[1] == 7 and bool((window.abs().sum(-1) > 0).all())
    assert algo.pos == 9 and math.isfinite(loss.item())


def test_threads_key_sets_torchs_thread_count(tmp_path):
    before = torch.get_num_threads()
    try:
        prepare(tiny_config(tmp_path, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
